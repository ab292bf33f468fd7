//! Property tests of the graph invariants on random task graphs.

use crate::{build, reaches};
use lightsout_graph::{Edge, EdgeKind, TaskEntry, TaskFormat, TaskGraph, TaskList};
use proptest::prelude::*;
use std::collections::HashSet;

/// A random DAG: `n` tasks, edges only from a lower to a higher index, random estimates.
fn dag() -> impl Strategy<Value = (usize, Vec<(usize, usize)>, Vec<Option<u8>>)> {
    (1usize..40).prop_flat_map(|n| {
        (
            Just(n),
            proptest::collection::vec((0..n, 0..n), 0..(n * 3)),
            proptest::collection::vec(proptest::option::of(0u8..10), n),
        )
            .prop_map(|(n, pairs, est)| {
                let edges = pairs
                    .into_iter()
                    .filter(|(a, b)| a != b)
                    .map(|(a, b)| (a.min(b), a.max(b)))
                    .collect();
                (n, edges, est)
            })
    })
}

fn to_list(n: usize, edges: &[(usize, usize)], est: &[Option<u8>]) -> TaskList {
    let mut l = TaskList::new("p", TaskFormat::TaskMaster);
    // Shuffle ids against indices so the order of input is not the topological order.
    for i in (0..n).rev() {
        let mut t = TaskEntry::new("p", format!("t{i}"), format!("task {i}"));
        t.depends_on = edges
            .iter()
            .filter(|e| e.1 == i)
            .map(|e| format!("t{}", e.0))
            .collect();
        t.estimate_hours = est[i].map(f64::from);
        l.tasks.push(t);
    }
    l
}

fn path_weight(g: &TaskGraph, path: &[usize]) -> f64 {
    path.iter().map(|&i| g.weight(i)).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_edge_goes_to_a_later_wave_and_every_task_is_in_one_wave((n, edges, est) in dag()) {
        let (g, diags) = build(vec![to_list(n, &edges, &est)]);
        prop_assert!(diags.is_empty(), "{diags:?}");
        let waves = g.waves().unwrap();
        let mut seen = vec![0usize; n];
        let mut wave_of = vec![0usize; n];
        for (w, wave) in waves.iter().enumerate() {
            prop_assert!(!wave.is_empty());
            for &t in wave {
                seen[t] += 1;
                wave_of[t] = w;
            }
        }
        prop_assert!(seen.iter().all(|&c| c == 1));
        for (a, b, _) in g.edges() {
            prop_assert!(wave_of[a] < wave_of[b]);
        }
        // Longest-path layering: a task in wave w > 0 has a predecessor in wave w - 1.
        for t in 0..n {
            if wave_of[t] > 0 {
                prop_assert!(g.predecessors(t).iter().any(|&p| wave_of[p] + 1 == wave_of[t]));
            }
        }
    }

    #[test]
    fn the_critical_path_is_a_path_at_least_as_long_as_any_path(
        (n, edges, est) in dag(),
        walks in proptest::collection::vec((0usize..40, proptest::collection::vec(0usize..8, 0..40)), 1..8),
    ) {
        let (g, _) = build(vec![to_list(n, &edges, &est)]);
        let cp = g.critical_path().unwrap();
        prop_assert!(!cp.tasks.is_empty());
        for w in cp.tasks.windows(2) {
            prop_assert!(g.successors(w[0]).contains(&w[1]));
        }
        prop_assert!((path_weight(&g, &cp.tasks) - cp.length).abs() < 1e-9);
        // Random walks along edges are paths; none is longer.
        for (start, choices) in walks {
            let mut path = vec![start % n];
            for c in choices {
                let next = g.successors(*path.last().unwrap());
                if next.is_empty() { break; }
                path.push(next[c % next.len()]);
            }
            prop_assert!(path_weight(&g, &path) <= cp.length + 1e-9);
        }
    }

    #[test]
    fn ready_tasks_respect_the_order(
        (n, edges, est) in dag(),
        done_bits in proptest::collection::vec(any::<bool>(), 40),
    ) {
        let (g, _) = build(vec![to_list(n, &edges, &est)]);
        let done: HashSet<usize> = (0..n).filter(|&i| done_bits[i]).collect();
        let ready = g.ready(&done);
        for t in 0..n {
            let preds_done = g.predecessors(t).iter().all(|p| done.contains(p));
            let is_ready = ready.contains(&t);
            // Ready exactly when not done and every prerequisite is done.
            prop_assert_eq!(is_ready, !done.contains(&t) && preds_done);
        }
        // Marking more tasks done never makes a task ready whose prerequisites are open.
        let fewer: HashSet<usize> = done.iter().copied().filter(|i| i % 2 == 0).collect();
        for t in g.ready(&fewer) {
            prop_assert!(g.predecessors(t).iter().all(|p| fewer.contains(p)));
        }
    }

    #[test]
    fn transitive_reduction_keeps_reachability((n, edges, est) in dag()) {
        let (g, _) = build(vec![to_list(n, &edges, &est)]);
        let red: HashSet<(usize, usize)> = g.transitive_reduction().unwrap().into_iter().collect();
        let all: HashSet<(usize, usize)> = g.edges().map(|(a, b, _)| (a, b)).collect();
        prop_assert!(red.is_subset(&all));
        // Every removed edge is implied by a longer path of kept edges.
        let mut reduced = petgraph::graph::DiGraph::<(), ()>::new();
        for _ in 0..n { reduced.add_node(()); }
        for &(a, b) in &red {
            reduced.add_edge(petgraph::graph::NodeIndex::new(a), petgraph::graph::NodeIndex::new(b), ());
        }
        for &(a, b) in all.difference(&red) {
            prop_assert!(petgraph::algo::has_path_connecting(&reduced, petgraph::graph::NodeIndex::new(a), petgraph::graph::NodeIndex::new(b), None));
            prop_assert!(reaches(&g, a, b));
        }
    }

    #[test]
    fn back_edges_make_cycles_that_are_reported_as_real_cycles(
        (n, edges, est) in dag(),
        back in proptest::collection::vec((0usize..40, 0usize..40), 1..4),
    ) {
        let mut list = to_list(n, &edges, &est);
        let mut added = false;
        for (a, b) in back {
            let (a, b) = (a % n, b % n);
            if a >= b { continue; }
            // b → a closes a cycle when a reaches b.
            let t = list.tasks.iter_mut().find(|t| t.id == format!("t{a}")).unwrap();
            t.depends_on.push(format!("t{b}"));
            added = true;
        }
        let (g, diags) = build(vec![list.clone()]);
        let cycles: Vec<_> = diags.iter().filter(|d| d.code == "LS350").collect();
        prop_assert_eq!(cycles.len(), g.cycle_count());
        if !added { prop_assert_eq!(g.cycle_count(), 0); }
        for d in cycles {
            // "dependency cycle: p#tA → p#tB → ... → p#tA": each task depends on the next,
            // the direction `spec check` prints cycles in.
            let path: Vec<&str> = d.message.trim_start_matches("dependency cycle: ").split(" → ").collect();
            prop_assert_eq!(path.first(), path.last());
            for w in path.windows(2) {
                let (a, b) = (g.find(w[0]).unwrap(), g.find(w[1]).unwrap());
                prop_assert!(g.successors(b).contains(&a), "{} does not depend on {}", w[0], w[1]);
            }
        }
        let (repaired, _) = TaskGraph::build(vec![list], &lightsout_graph::Options::default().with_repair(true));
        prop_assert_eq!(repaired.cycle_count(), 0);
        prop_assert_eq!(repaired.waves().unwrap().iter().map(Vec::len).sum::<usize>(), n);
    }

    #[test]
    fn guesses_never_make_a_cycle_error_and_every_written_edge_stays(
        (n, edges, est) in dag(),
        guesses in proptest::collection::vec((0usize..40, 0usize..40), 0..12),
    ) {
        let mut list = to_list(n, &edges, &est);
        let guesses: HashSet<(usize, usize)> = guesses
            .into_iter()
            .map(|(a, b)| (a % n, b % n))
            .filter(|(a, b)| a != b)
            .collect();
        for &(a, b) in &guesses {
            list.edges.push(Edge { from: format!("t{a}"), to: format!("t{b}"), kind: EdgeKind::Inferred });
        }
        for repair in [false, true] {
            let (g, diags) = TaskGraph::build(
                vec![list.clone()],
                &lightsout_graph::Options::default().with_repair(repair),
            );
            prop_assert_eq!(g.cycle_count(), 0);
            prop_assert!(diags.iter().all(|d| d.code == "LS366"), "{:?}", diags);
            let at = |i: usize| g.find(&format!("t{i}")).unwrap();
            // Every written edge is kept: the guesses alone paid for the cycles.
            for &(a, b) in &edges {
                prop_assert!(g.successors(at(a)).contains(&at(b)));
            }
            // A guess is kept, or dropped with one note because it would close a cycle.
            let mut dropped = 0;
            for &(a, b) in &guesses {
                if !g.successors(at(a)).contains(&at(b)) {
                    dropped += 1;
                    prop_assert!(reaches(&g, at(b), at(a)), "t{} → t{} closed no cycle", a, b);
                }
            }
            prop_assert_eq!(dropped, diags.len());
        }
    }

    #[test]
    fn repair_yields_an_acyclic_graph_and_reports_every_edge_it_drops(
        n in 2usize..30,
        written in proptest::collection::vec((0usize..30, 0usize..30), 0..60),
        guesses in proptest::collection::vec((0usize..30, 0usize..30), 0..12),
    ) {
        let written: HashSet<(usize, usize)> =
            written.into_iter().map(|(a, b)| (a % n, b % n)).filter(|(a, b)| a != b).collect();
        let mut list = TaskList::new("p", TaskFormat::TaskMaster);
        for i in 0..n {
            let mut t = TaskEntry::new("p", format!("t{i}"), "");
            t.depends_on = written.iter().filter(|e| e.1 == i).map(|e| format!("t{}", e.0)).collect();
            list.tasks.push(t);
        }
        for (a, b) in guesses {
            let (a, b) = (a % n, b % n);
            if a != b {
                list.edges.push(Edge { from: format!("t{a}"), to: format!("t{b}"), kind: EdgeKind::Inferred });
            }
        }
        let (g, diags) = TaskGraph::build(vec![list], &lightsout_graph::Options::default().with_repair(true));
        prop_assert_eq!(g.cycle_count(), 0);
        prop_assert!(g.waves().is_ok());
        let at = |i: usize| g.find(&format!("t{i}")).unwrap();
        let lost = written.iter().filter(|&&(a, b)| !g.successors(at(a)).contains(&at(b))).count();
        prop_assert_eq!(lost, diags.iter().filter(|d| d.code == "LS364").count());
        prop_assert!(diags.iter().all(|d| d.code == "LS364" || d.code == "LS366"), "{:?}", diags);
    }

    /// The markdown readers never panic on lines made of the pieces teams write task lists
    /// with (bold and suffixed ids, labels, prose dependencies, multi-byte text), their spans
    /// stay inside the input, and the graph built from them is acyclic or reports why.
    #[test]
    fn markdown_readers_never_panic_and_keep_spans_inside(
        pieces in proptest::collection::vec(
            proptest::sample::select(vec![
                "- [ ] ", "- [x] ", "  ", "\n", "**", "`", "T0", "T01", "1", "0", "a", "A", ".",
                ":", "_", "[P]", "[US1]", "[FR-001, FR-002]", " after T01", " depends on T0",
                "Blocks: T1", " requires T01a", "## User Story 2\n", "### x\n", "é", "😀",
                "TXXX", "(P) ", "_Requirements: 1.1_", "**Requirements**: 1", "```\n", "10a",
            ]),
            0..80,
        ),
    ) {
        let text: String = pieces.concat();
        for format in [TaskFormat::SpecKit, TaskFormat::Kiro, TaskFormat::OpenSpec] {
            let (lists, diags) = lightsout_graph::read::read(format, text.as_bytes(), "f", None);
            for d in &diags {
                prop_assert!(d.span.start <= d.span.end && d.span.end <= text.len(), "{:?}", d);
            }
            for t in lists.iter().flat_map(|l| &l.tasks) {
                prop_assert!(t.span.end <= text.len() && text.is_char_boundary(t.span.start));
            }
            for repair in [false, true] {
                let (g, diags) = TaskGraph::build(
                    lists.clone(),
                    &lightsout_graph::Options::default().with_repair(repair),
                );
                if g.cycle_count() > 0 {
                    prop_assert!(!repair);
                    prop_assert!(diags.iter().any(|d| d.code == "LS350"));
                }
            }
        }
    }
}
