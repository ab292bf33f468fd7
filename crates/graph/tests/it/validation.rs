//! Validation: cycles with their path, dangling and self dependencies, coverage, overlap,
//! and the `repair` option.

use crate::{at, build, codes};
use lightsout_graph::{Options, RequirementRef, Task, TaskFormat, TaskGraph, TaskList};
use lightsout_spec::{Severity, Span};

fn task(id: &str, deps: &[&str], reqs: &[&str]) -> Task {
    let mut t = Task::new("s", id, format!("task {id}"));
    t.depends_on = deps.iter().map(|d| (*d).to_owned()).collect();
    t.requirements = reqs.iter().map(|r| (*r).to_owned()).collect();
    t
}

fn list(tasks: Vec<Task>) -> TaskList {
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
    assert!(
        cycle[0].message.contains("s#A → s#B → s#C → s#A"),
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
        diags[0].message.contains("removing `s#C` → `s#A`"),
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
