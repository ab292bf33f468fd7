//! Validation: cycles with their path, dangling and self dependencies, coverage, overlap,
//! and the `repair` option.

use crate::{at, build, codes};
use lightsout_graph::{Options, RequirementRef, TaskEntry, TaskFormat, TaskGraph, TaskList};
use lightsout_spec::{Severity, Span};

fn task(id: &str, deps: &[&str], reqs: &[&str]) -> TaskEntry {
    let mut t = TaskEntry::new("s", id, format!("task {id}"));
    t.depends_on = deps.iter().map(|d| (*d).to_owned()).collect();
    t.requirements = reqs.iter().map(|r| (*r).to_owned()).collect();
    t
}

fn list(tasks: Vec<TaskEntry>) -> TaskList {
    let mut l = TaskList::new("s", TaskFormat::Lightsout);
    l.tasks = tasks;
    l
}

fn req(id: &str) -> RequirementRef {
    RequirementRef {
        id: id.to_owned(),
        depends_on: vec![],
        touches: vec![],
        estimate_hours: None,
        path: None,
        span: Span::default(),
    }
}

#[test]
fn a_cycle_is_reported_with_its_full_path_and_leaves_no_waves() {
    let (g, diags) = build(vec![list(vec![
        task("A", &["C"], &["R"]),
        task("B", &["A"], &["R"]),
        task("C", &["B"], &["R"]),
        task("D", &[], &["R"]),
    ])]);
    let cycle: Vec<_> = diags.iter().filter(|d| d.code == "LS350").collect();
    assert_eq!(cycle.len(), 1, "{diags:#?}");
    assert_eq!(cycle[0].severity, Severity::Error);
    // In the direction `spec check` prints cycles: A depends on C, C on B, B on A.
    assert!(
        cycle[0].message.contains("s#A → s#C → s#B → s#A"),
        "{}",
        cycle[0].message
    );
    assert_eq!(g.cycle_count(), 1);
    assert!(g.waves().is_err());
    assert!(g.critical_path().is_err());
    // D is not on the cycle and can start; the cycle's tasks never become ready.
    assert_eq!(crate::ids(&g, &g.ready(&Default::default())), ["D"]);
}

#[test]
fn repair_breaks_the_cycle_and_says_which_edge_it_removed() {
    let lists = vec![list(vec![
        task("A", &["C"], &["R"]),
        task("B", &["A"], &["R"]),
        task("C", &["B"], &["R"]),
    ])];
    let (g, diags) = TaskGraph::build(lists, &Options::default().with_repair(true));
    assert_eq!(codes(&diags), ["LS364"]);
    assert!(
        diags[0]
            .message
            .contains("broken by dropping the dependency of `s#B` on `s#A` (explicit edge)"),
        "{}",
        diags[0].message
    );
    assert_eq!(g.cycle_count(), 0);
    assert_eq!(g.waves().unwrap().len(), 3);
}

#[test]
fn dangling_and_self_dependencies_are_errors_not_silently_dropped() {
    let (g, diags) = build(vec![list(vec![
        task("A", &["A"], &["R"]),
        task("B", &["Z9", "A"], &["R"]),
    ])]);
    assert_eq!(codes(&diags), ["LS351", "LS352"]);
    let dangling = diags.iter().find(|d| d.code == "LS351").unwrap();
    assert!(dangling.message.contains("`Z9`"));
    assert_eq!(dangling.severity, Severity::Error);
    // The good edge stays.
    assert_eq!(g.edge_count(), 1);
    let (_, repaired) = TaskGraph::build(
        vec![list(vec![
            task("A", &["A"], &["R"]),
            task("B", &["Z9"], &["R"]),
        ])],
        &Options::default().with_repair(true),
    );
    assert_eq!(codes(&repaired), ["LS364", "LS364"]);
    assert!(repaired.iter().all(|d| d.severity == Severity::Warning));
}

#[test]
fn coverage_requirements_without_tasks_and_tasks_without_requirements() {
    let mut l = list(vec![
        task("T1", &[], &["REQ-1"]),
        task("T2", &[], &[]),
        task("T3", &[], &["REQ-9"]),
    ]);
    l.requirements = Some(vec![req("REQ-1"), req("REQ-2")]);
    let (_, diags) = build(vec![l]);
    assert_eq!(codes(&diags), ["LS353", "LS354", "LS355"]);
    let d353 = diags.iter().find(|d| d.code == "LS353").unwrap();
    assert!(d353.message.contains("`REQ-2`"));
    let d355 = diags.iter().find(|d| d.code == "LS355").unwrap();
    assert_eq!(d355.severity, Severity::Error);
    assert!(d355.message.contains("`REQ-9`"));
}

#[test]
fn kiro_criteria_and_whole_requirements_trace_each_other() {
    let mut l = list(vec![task("1", &[], &["1"]), task("2", &[], &["2.1"])]);
    l.requirements = Some(vec![req("1.1"), req("1.2"), req("2")]);
    let (_, diags) = build(vec![l]);
    assert!(diags.is_empty(), "{diags:#?}");
}

#[test]
fn story_labels_against_fr_ids_skip_coverage_with_a_note() {
    let mut l = list(vec![task("T1", &[], &["US1"])]);
    l.traces_requirements = false;
    l.requirements = Some(vec![req("FR-001")]);
    let (_, diags) = build(vec![l]);
    assert_eq!(codes(&diags), ["LS363"]);
    assert_eq!(diags[0].severity, Severity::Info);
}

#[test]
fn overlapping_touches_in_one_wave_are_likely_conflicts_and_not_reordered() {
    let mut a = task("A", &[], &["R"]);
    a.touches = vec!["src/api/**".into()];
    let mut b = task("B", &[], &["R"]);
    b.touches = vec!["src/api/routes.rs".into()];
    let mut c = task("C", &["A"], &["R"]);
    c.touches = vec!["src/api/**".into()];
    let mut d = task("D", &[], &["R"]);
    d.touches = vec!["docs/**".into()];
    let (g, diags) = build(vec![list(vec![a, b, c, d])]);
    assert_eq!(codes(&diags), ["LS357"]);
    assert!(
        diags[0].message.contains("`s#A` and `s#B`"),
        "{}",
        diags[0].message
    );
    let conflicts = g.conflicts().unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!((conflicts[0].a, conflicts[0].b), (at(&g, "A"), at(&g, "B")));
    // Nothing moved: A and B still share wave 0.
    assert_eq!(g.levels().unwrap()[at(&g, "B")], 0);
}

#[test]
fn a_bad_glob_is_reported() {
    let mut a = task("A", &[], &["R"]);
    a.touches = vec!["src/[".into()];
    let (_, diags) = build(vec![list(vec![a])]);
    assert_eq!(codes(&diags), ["LS358"]);
}

#[test]
fn a_done_task_with_open_prerequisites_is_noted() {
    let mut b = task("B", &["A"], &["R"]);
    b.done = true;
    let (_, diags) = build(vec![list(vec![task("A", &[], &["R"]), b])]);
    assert_eq!(codes(&diags), ["LS365"]);
}

#[test]
fn a_missing_dependency_spec_is_a_warning() {
    let mut l = list(vec![task("A", &[], &["R"])]);
    l.depends_on_specs = vec!["storage".into()];
    let (_, diags) = build(vec![l]);
    assert_eq!(codes(&diags), ["LS361"]);
    assert_eq!(diags[0].severity, Severity::Warning);
}

fn inferred(l: &mut TaskList, from: &str, to: &str) {
    l.edges.push(lightsout_graph::Edge {
        from: from.to_owned(),
        to: to.to_owned(),
        kind: lightsout_graph::EdgeKind::Inferred,
    });
}

fn has_edge(g: &TaskGraph, from: &str, to: &str) -> bool {
    g.edges()
        .any(|(a, b, _)| a == at(g, from) && b == at(g, to))
}

#[test]
fn a_guessed_dependency_that_closes_a_cycle_is_dropped_with_a_note_not_an_error() {
    // The issue's case: B depends on A as written; A's description says "after B's
    // snapshot", a guess. Written and guessed together make a cycle; the guess goes.
    let mut l = list(vec![task("A", &[], &["R"]), task("B", &["A"], &["R"])]);
    inferred(&mut l, "B", "A");
    for repair in [false, true] {
        let (g, diags) = TaskGraph::build(vec![l.clone()], &Options::default().with_repair(repair));
        assert_eq!(codes(&diags), ["LS366"], "{diags:#?}");
        assert_eq!(diags[0].severity, Severity::Info);
        assert!(
            diags[0]
                .message
                .contains("dependency of `s#A` on `s#B`, guessed from the task's description, would close the cycle s#A → s#B → s#A"),
            "{}",
            diags[0].message
        );
        assert_eq!(g.cycle_count(), 0);
        // The author's edge is kept, the guess is not.
        assert!(has_edge(&g, "A", "B"));
        assert!(!has_edge(&g, "B", "A"));
    }
}

#[test]
fn a_guess_that_closes_no_cycle_is_kept_and_a_written_cycle_stays_an_error() {
    let mut l = list(vec![
        task("A", &["C"], &["R"]),
        task("B", &["A"], &["R"]),
        task("C", &["B"], &["R"]),
        task("D", &[], &["R"]),
    ]);
    inferred(&mut l, "D", "A");
    let (g, diags) = build(vec![l.clone()]);
    // The written cycle is an error; the guess D → A closes nothing and is no finding.
    assert_eq!(codes(&diags), ["LS350"], "{diags:#?}");
    assert_eq!(g.cycle_count(), 1);
    assert!(has_edge(&g, "D", "A"));
    // With --repair, the written cycle is broken and the guess kept.
    let (g, diags) = TaskGraph::build(vec![l], &Options::default().with_repair(true));
    assert_eq!(codes(&diags), ["LS364"]);
    assert_eq!(g.cycle_count(), 0);
    assert!(has_edge(&g, "D", "A"));
}

#[test]
fn repair_drops_list_order_before_a_dependency_the_author_wrote() {
    // Kiro order 1 → 2 → 3, and the author wrote that 1 depends on 3: the cycle is an error,
    // and --repair drops an order edge, never `_Depends: 3_`.
    let md = "- [ ] 1. First\n  - _Depends: 3_\n- [ ] 2. Second\n- [ ] 3. Third\n";
    let (lists, d) = lightsout_graph::read::read(TaskFormat::Kiro, md.as_bytes(), "k", None);
    assert!(d.is_empty(), "{d:#?}");
    let (g, diags) = build(lists.clone());
    let cycle: Vec<_> = diags.iter().filter(|d| d.code == "LS350").collect();
    assert_eq!(cycle.len(), 1, "{diags:#?}");
    assert!(
        cycle[0].message.contains("k#1 → k#3 → k#2 → k#1"),
        "{}",
        cycle[0].message
    );
    let (g2, diags) = TaskGraph::build(lists, &Options::default().with_repair(true));
    let repaired: Vec<_> = diags.iter().filter(|d| d.code == "LS364").collect();
    assert_eq!(repaired.len(), 1, "{diags:#?}");
    assert!(
        repaired[0].message.contains("(sequence edge)"),
        "{}",
        repaired[0].message
    );
    assert_eq!(g2.cycle_count(), 0);
    assert!(has_edge(&g2, "3", "1"), "the written dependency is kept");
    assert!(g.cycle_count() == 1);
}

#[test]
fn plan_prints_a_cycle_in_the_direction_spec_check_does() {
    let src = "---
id: s
title: S
kind: feature
version: 1
status: draft
---
## Behaviour
### REQ-1: One
The service shall work.

## Tasks
- [ ] T1: First (REQ-1) depends on T3
- [ ] T2: Second (REQ-1) depends on T1
- [ ] T3: Third (REQ-1) depends on T2
";
    let (spec, _) = lightsout_spec::parse(src.as_bytes(), None, None);
    let checked = lightsout_spec::check(&spec, src, &lightsout_spec::CheckOptions::default());
    let spec_cycle = checked
        .iter()
        .find(|d| d.message.contains("dependency cycle"))
        .map(|d| d.message.rsplit(": ").next().unwrap_or("").to_owned())
        .expect("spec check reports the cycle");
    let (_, diags) = TaskGraph::from_specs(&[spec], &Options::default());
    let plan_cycle = diags
        .iter()
        .find(|d| d.code == "LS350")
        .map(|d| {
            d.message
                .trim_start_matches("dependency cycle: ")
                .replace("s#", "")
        })
        .expect("plan reports the cycle");
    assert_eq!(spec_cycle, "T1 → T3 → T2 → T1");
    assert_eq!(plan_cycle, spec_cycle);
}

#[test]
fn an_empty_plan_is_an_error_and_an_empty_list_a_warning() {
    let (_, diags) = build(vec![TaskList::new("s", TaskFormat::SpecKit)]);
    assert_eq!(codes(&diags), ["LS367", "LS367"]);
    assert!(diags.iter().any(|d| d.severity == Severity::Error));
    let (_, diags) = build(vec![
        TaskList::new("empty", TaskFormat::Kiro),
        list(vec![task("A", &[], &[])]),
    ]);
    let empty: Vec<_> = diags.iter().filter(|d| d.code == "LS367").collect();
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0].severity, Severity::Warning);
    assert!(empty[0].message.contains("`empty`"), "{}", empty[0].message);
}
