//! Graph stage: build + validate, waves and critical path on a synthetic graph of 100 000
//! tasks and ~500 000 edges (goal: all of it under 0.5 s on the 2-core CI machine), and the
//! in-process half of the task-master comparison: reading, validating and planning the same
//! 1 000-task `tasks.json` that `benches/compare/taskmaster.sh` feeds to
//! `task-master validate-dependencies` (the process-level side by side lives in that script,
//! since task-master is a Node CLI).
//!
//! The file-reading path (`graph/read-tasks-json`): reading a task-master `tasks.json` of 10k
//! and 100k tasks (~5 dependencies each, the recipe of the in-memory graph below) laid out on
//! one line, as most JSON writers emit it, and indented, then the same plus build, waves and
//! critical path: what `lightsout plan tasks.json` does apart from the disk and the printing.
//! Reading was quadratic on one line (a span's column counted from the line start per task:
//! 49 s of CPU for 100k tasks against 0.5 s indented); both layouts should now cost the same.
//!
//! Memory: peak and current resident set size (`VmHWM` / `VmRSS` from `/proc/self/status`)
//! are printed before and after one build of the 100k graph; the workspace forbids the
//! `unsafe` a counting allocator would need.

#![allow(missing_docs)] // criterion_group! generates undocumented functions
#![allow(clippy::print_stderr)] // the memory figures are printed for the report

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use lightsout_graph::{Options, TaskEntry, TaskFormat, TaskGraph, TaskList, read};
use std::hint::black_box;
use std::time::Duration;

const TASKS: usize = 100_000;
const DEPS_PER_TASK: usize = 5;

/// Deterministic synthetic list: task `i` depends on up to 5 distinct earlier tasks, picked by
/// a linear congruential generator from the previous 2 000 (a realistic locality: most work
/// depends on recent work), so the graph is a DAG with ~500k edges and a few hundred waves.
fn synthetic(n: usize) -> TaskList {
    let mut list = TaskList::new("bench", TaskFormat::TaskMaster);
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    list.tasks.reserve(n);
    for i in 0..n {
        let mut t = TaskEntry::new("bench", i.to_string(), "");
        let window = i.min(2_000);
        let mut deps: Vec<usize> = Vec::with_capacity(DEPS_PER_TASK);
        if window > 0 {
            for _ in 0..DEPS_PER_TASK.min(window) {
                let mut d = i - 1 - next() % window;
                while deps.contains(&d) {
                    d = if d == 0 { i - 1 } else { d - 1 };
                }
                deps.push(d);
            }
        }
        t.depends_on = deps.into_iter().map(|d| d.to_string()).collect();
        list.tasks.push(t);
    }
    list
}

/// The 1 000-task task-master file of `benches/compare/taskmaster.sh` (same recipe: task `i`
/// depends on `i-1`, `(7i mod (i-1)) + 1` and `(13i mod (i-1)) + 1`).
fn taskmaster_json(n: usize) -> String {
    let mut tasks = Vec::with_capacity(n);
    for i in 1..=n {
        let mut deps: Vec<usize> = Vec::new();
        if i > 1 {
            deps = vec![i - 1, (i * 7) % (i - 1) + 1, (i * 13) % (i - 1) + 1];
            deps.sort_unstable();
            deps.dedup();
        }
        tasks.push(serde_json::json!({
            "id": i, "title": format!("Task {i}"), "description": format!("Generated task {i}"),
            "details": "", "testStrategy": "", "status": "pending", "dependencies": deps,
            "priority": "medium", "subtasks": []
        }));
    }
    serde_json::json!({"master": {"tasks": tasks, "metadata": {"description": "bench"}}})
        .to_string()
}

/// The synthetic list of [`synthetic`] as a task-master `tasks.json`, on one line or
/// indented by two spaces.
fn synthetic_json(n: usize, indented: bool) -> String {
    let list = synthetic(n);
    let tasks: Vec<serde_json::Value> = list
        .tasks
        .iter()
        .map(|t| {
            let deps: Vec<u64> = t.depends_on.iter().filter_map(|d| d.parse().ok()).collect();
            serde_json::json!({
                "id": t.id.parse::<u64>().unwrap_or(0), "title": format!("Task {}", t.id),
                "description": format!("Generated task {}", t.id), "details": "",
                "testStrategy": "", "status": "pending", "dependencies": deps,
                "priority": "medium", "subtasks": []
            })
        })
        .collect();
    let root =
        serde_json::json!({"master": {"tasks": tasks, "metadata": {"description": "bench"}}});
    if indented {
        serde_json::to_string_pretty(&root).unwrap_or_default()
    } else {
        root.to_string()
    }
}

fn bench_read(c: &mut Criterion) {
    let mut g = c.benchmark_group("graph/read-tasks-json");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(6))
        .warm_up_time(Duration::from_secs(1));
    for n in [10_000, TASKS] {
        for (layout, indented) in [("one-line", false), ("indented", true)] {
            let json = synthetic_json(n, indented);
            let label = format!("{}k {layout}", n / 1000);
            g.throughput(criterion::Throughput::Bytes(json.len() as u64));
            g.bench_function(format!("read {label}"), |b| {
                b.iter(|| {
                    black_box(read::read(
                        TaskFormat::TaskMaster,
                        json.as_bytes(),
                        "bench",
                        None,
                    ))
                });
            });
            g.bench_function(format!("read+build+waves+critical_path {label}"), |b| {
                b.iter(|| {
                    let (lists, _) =
                        read::read(TaskFormat::TaskMaster, json.as_bytes(), "bench", None);
                    let (graph, diags) = TaskGraph::build(lists, &Options::default());
                    black_box((
                        graph.waves().map(|w| w.len()),
                        graph.critical_path().map(|c| c.length),
                        diags.len(),
                    ))
                });
            });
        }
    }
    g.finish();
}

fn status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn report_memory() {
    let before_rss = status_kb("VmRSS:").unwrap_or(0);
    let list = synthetic(TASKS);
    let with_input = status_kb("VmRSS:").unwrap_or(0);
    let (graph, diags) = TaskGraph::build(vec![list], &Options::default());
    let waves = graph.waves().map_or(0, |w| w.len());
    let cp = graph.critical_path().map_or(0, |c| c.tasks.len());
    let after_rss = status_kb("VmRSS:").unwrap_or(0);
    let peak = status_kb("VmHWM:").unwrap_or(0);
    eprintln!(
        "graph/100k: {} tasks, {} edges, {} waves, critical path {} tasks, {} diagnostics",
        graph.len(),
        graph.edge_count(),
        waves,
        cp,
        diags.len()
    );
    eprintln!(
        "graph/100k memory: RSS {before_rss} kB before, {with_input} kB with the input lists, {after_rss} kB with the graph built (graph + tasks ≈ {} kB); peak RSS (VmHWM) {peak} kB",
        after_rss.saturating_sub(before_rss)
    );
}

fn bench(c: &mut Criterion) {
    report_memory();
    let input = synthetic(TASKS);
    let mut g = c.benchmark_group("graph/100k");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("build+validate", |b| {
        b.iter_batched(
            || vec![input.clone()],
            |lists| black_box(TaskGraph::build(lists, &Options::default())),
            BatchSize::LargeInput,
        );
    });
    let (graph, _) = TaskGraph::build(vec![input.clone()], &Options::default());
    g.bench_function("waves", |b| {
        b.iter(|| black_box(graph.waves().map(|w| w.len())));
    });
    g.bench_function("critical_path", |b| {
        b.iter(|| black_box(graph.critical_path().map(|c| c.length)));
    });
    g.bench_function("build+validate+waves+critical_path", |b| {
        b.iter_batched(
            || vec![input.clone()],
            |lists| {
                let (g, d) = TaskGraph::build(lists, &Options::default());
                black_box((
                    g.waves().map(|w| w.len()),
                    g.critical_path().map(|c| c.length),
                    d.len(),
                ))
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();

    let json = taskmaster_json(1_000);
    let mut g = c.benchmark_group("graph/taskmaster-1k");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    g.bench_function("lightsout read+validate+plan", |b| {
        b.iter(|| {
            let (lists, _) = read::read(TaskFormat::TaskMaster, json.as_bytes(), "bench", None);
            let (graph, diags) = TaskGraph::build(lists, &Options::default());
            black_box((
                graph.waves().map(|w| w.len()),
                graph.critical_path().map(|c| c.length),
                diags.len(),
            ))
        });
    });
    g.finish();
}

criterion_group!(benches, bench, bench_read);
criterion_main!(benches);
