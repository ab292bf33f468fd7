//! The task list readers (Spec Kit, Kiro/cc-sdd, OpenSpec `tasks.md`, task-master JSON) and the
//! graph built from what they read never panic on any bytes; every diagnostic span lies inside
//! the input; and when the graph is acyclic its waves hold every task once, with every edge
//! going to a later wave.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lightsout_graph::{Options, TaskFormat, TaskGraph, read};

fuzz_target!(|data: &[u8]| {
    let text_len = String::from_utf8_lossy(data).len();
    for format in [
        TaskFormat::SpecKit,
        TaskFormat::Kiro,
        TaskFormat::OpenSpec,
        TaskFormat::TaskMaster,
    ] {
        let (lists, diags) = read::read(format, data, "fuzz", None);
        for d in &diags {
            assert!(
                d.span.start <= d.span.end && d.span.end <= text_len,
                "{d:?}"
            );
        }
        for repair in [false, true] {
            let (graph, _) =
                TaskGraph::build(lists.clone(), &Options::default().with_repair(repair));
            let _ = graph.ready(&Default::default());
            let _ = graph.impact(&["1".to_owned()]);
            if let Ok(waves) = graph.waves() {
                let mut seen = vec![0u8; graph.len()];
                let mut wave_of = vec![0usize; graph.len()];
                for (w, wave) in waves.iter().enumerate() {
                    for &t in wave {
                        seen[t] += 1;
                        wave_of[t] = w;
                    }
                }
                assert!(seen.iter().all(|&s| s == 1));
                for (a, b, _) in graph.edges() {
                    assert!(wave_of[a] < wave_of[b]);
                }
                let _ = graph.critical_path();
                let _ = graph.transitive_reduction();
                let plan = graph.plan(&Default::default(), Vec::new());
                let _ = lightsout_graph::render_human(&plan);
                let _ = lightsout_graph::render_mermaid(&graph, &plan);
                let _ = lightsout_graph::render_dot(&graph, &plan);
            } else {
                assert!(!repair, "repair leaves no cycle");
            }
        }
    }
});
