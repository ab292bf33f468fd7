//! The task list readers on small inputs: task-master JSON, cc-sdd markers, optional tasks,
//! Lightsout specs (default tasks and the `## Tasks` section), multi-spec plans.

use crate::{at, build, codes, ids, reaches};
use lightsout_graph::{EdgeKind, Options, TaskFormat, TaskGraph, TaskList, read};

#[test]
fn task_master_tagged_json_with_subtasks_and_string_ids() {
    let json = r#"{"master": {"tasks": [
      {"id": 1, "title": "Set up", "status": "done", "dependencies": [],
       "subtasks": [{"id": 1, "title": "Init repo", "status": "done", "dependencies": []},
                    {"id": 2, "title": "CI", "status": "pending", "dependencies": [1]}]},
      {"id": 2, "title": "API", "status": "pending", "dependencies": [1, "1.2"]},
      {"id": 3, "title": "Docs", "status": "cancelled", "dependencies": [2]},
      {"id": 4, "title": "Release", "status": "pending", "dependencies": [2, 3, 99]}
    ], "metadata": {}}}"#;
    let (lists, diags) = read::read(TaskFormat::TaskMaster, json.as_bytes(), "proj", None);
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].spec_id, "proj");
    let (g, diags) = build(lists);
    assert_eq!(
        ids(&g, &(0..g.len()).collect::<Vec<_>>()),
        ["1", "1.1", "1.2", "2", "3", "4"]
    );
    // The bad edge (99) is reported, not dropped silently as task-master's loader does.
    // Also noted: 1 is done while its sub-task 1.2 is open, and cancelled 3 waits for 2.
    assert_eq!(codes(&diags), ["LS351", "LS365", "LS365"]);
    assert!(
        diags
            .iter()
            .any(|d| d.code == "LS351" && d.message.contains("`99`"))
    );
    // 1.2 depends on its sibling 1.1; both finish before 1.
    assert!(
        g.edges()
            .any(|(a, b, k)| a == at(&g, "1.1") && b == at(&g, "1.2") && k == EdgeKind::Explicit)
    );
    assert!(
        g.edges()
            .any(|(a, b, k)| a == at(&g, "1.2") && b == at(&g, "1") && k == EdgeKind::Subtask)
    );
    // Ready: 1.2 (its sibling is done). Cancelled 3 does not block 4.
    assert_eq!(ids(&g, &g.ready(&Default::default())), ["1.2"]);
    let done = [at(&g, "1.2"), at(&g, "1"), at(&g, "2")].into();
    assert_eq!(ids(&g, &g.ready(&done)), ["4"]);
    // The span points at the title.
    assert_eq!(g.tasks()[at(&g, "2")].span.line, 5);
}

#[test]
fn task_master_bad_json_is_an_error_with_a_location() {
    let (lists, diags) = read::read(
        TaskFormat::TaskMaster,
        b"{\"tasks\": [\n  {\"id\": 1,, }\n]}",
        "p",
        None,
    );
    assert!(lists.is_empty());
    assert_eq!(codes(&diags), ["LS360"]);
    assert_eq!(diags[0].span.line, 2);
    let (lists, diags) = read::read(TaskFormat::TaskMaster, b"[1, 2]", "p", None);
    assert!(lists.is_empty());
    assert_eq!(codes(&diags), ["LS360"]);
}

#[test]
fn task_master_legacy_form_and_several_tags() {
    let (lists, _) = read::read(
        TaskFormat::TaskMaster,
        br#"{"tasks": [{"id": 1, "title": "a"}]}"#,
        "p",
        None,
    );
    assert_eq!(lists.len(), 1);
    let two = br#"{"master": {"tasks": [{"id": 1, "title": "a"}]}, "feature-x": {"tasks": [{"id": 1, "title": "b"}]}}"#;
    let (lists, _) = read::read(TaskFormat::TaskMaster, two, "p", None);
    let tags: Vec<&str> = lists.iter().map(|l| l.spec_id.as_str()).collect();
    assert_eq!(tags, ["feature-x", "master"]);
    let (g, diags) = build(lists);
    assert!(diags.is_empty());
    assert_eq!(g.tasks()[0].key, "feature-x#1");
    assert_eq!(g.find("1"), None, "ambiguous without the tag");
    assert!(g.find("master#1").is_some());
}

#[test]
fn kiro_optional_tasks_block_nothing_and_cc_sdd_markers_are_read() {
    let md = "\
- [ ] 1. Core
  - [ ] 1.1 Types
    - _Requirements: 1.1_
  - [ ]* 1.2 Property test for types
    - _Requirements: 1.1_
- [ ] 2. (P) API
  - _Requirements: 2.1_
  - Estimate: 3h
- [ ] 3. (P) CLI
  - _Requirements: 2.2_
  - _Depends: 1.1_
  - Touches: src/cli/**
- [ ] 4.* Docs
  - _Requirements: 3.1_
- [ ] 5. Release
  - _Requirements: 3.2_
";
    let (lists, diags) = read::read(TaskFormat::Kiro, md.as_bytes(), "k", None);
    assert!(diags.is_empty(), "{diags:#?}");
    let (g, diags) = build(lists);
    assert!(diags.is_empty(), "{diags:#?}");
    let t = |id: &str| &g.tasks()[at(&g, id)];
    assert!(t("1.2").optional && t("4").optional && !t("1.1").optional);
    assert!(t("2").parallel && t("3").parallel);
    assert_eq!(t("2").estimate_hours, Some(3.0));
    assert_eq!(t("3").touches, ["src/cli/**"]);
    // The parent waits for 1.1, not for the optional 1.2.
    assert!(reaches(&g, at(&g, "1.1"), at(&g, "1")));
    assert!(!reaches(&g, at(&g, "1.2"), at(&g, "1")));
    // 2 and 3 run side by side after 1; 5 waits for them, not for the optional 4.
    let w = g.levels().unwrap();
    assert_eq!(w[at(&g, "2")], w[at(&g, "3")]);
    assert!(reaches(&g, at(&g, "3"), at(&g, "5")));
    assert!(!reaches(&g, at(&g, "4"), at(&g, "5")));
    assert!(
        g.edges()
            .any(|(a, b, k)| a == at(&g, "1.1") && b == at(&g, "3") && k == EdgeKind::Explicit)
    );
}

const STORAGE: &str = "---
id: storage
title: Storage
kind: architectural
version: 1
status: ready
---
## Intent
Where links live.

## Behaviour
### REQ-1: Schema
The store SHALL keep links in SQLite.
Touches: src/db/**
Estimate: 2h

### REQ-2: Migrations
The store SHALL migrate the schema on start.
Depends on: REQ-1
Estimate: 1h
";

const SHORTENER: &str = "---
id: shortener
title: Shortener
kind: feature
version: 1
status: ready
depends_on: [storage]
---
## Intent
Short links.

## Behaviour
### REQ-1: Create a short link
When a user posts a URL, the service shall return a short code.
Touches: src/api/**
Estimate: 3h

### REQ-2: Resolve a short link
When a user opens a short code, the service shall redirect.
Depends on: REQ-1, storage#REQ-2
Estimate: 1h

## Tasks
- [ ] T1: Create endpoint (REQ-1)
- [ ] T2: Redirect endpoint (REQ-2) depends on T1
";

fn specs() -> Vec<lightsout_spec::Spec> {
    [SHORTENER, STORAGE]
        .iter()
        .map(|s| {
            let (spec, _) = lightsout_spec::parse(s.as_bytes(), None, None);
            spec
        })
        .collect()
}

#[test]
fn architectural_specs_come_before_the_features_that_depend_on_them() {
    let specs = specs();
    let (g, diags) = TaskGraph::from_specs(&specs, &Options::default());
    assert!(
        diags
            .iter()
            .all(|d| d.severity != lightsout_spec::Severity::Error),
        "{diags:#?}"
    );
    // Storage has no ## Tasks: one task per requirement, and it is placed first.
    assert_eq!(g.specs()[0].id, "storage");
    assert_eq!(g.specs()[0].format, TaskFormat::Requirements);
    assert_eq!(
        g.specs()[1].format,
        TaskFormat::Lightsout,
        "{:?}",
        specs[0].tasks
    );
    let (s1, s2) = (at(&g, "storage#REQ-1"), at(&g, "storage#REQ-2"));
    let (t1, t2) = (at(&g, "T1"), at(&g, "T2"));
    assert!(reaches(&g, s1, s2));
    // Front-matter depends_on: storage's last task before the feature's first.
    assert!(
        g.edges()
            .any(|(a, b, k)| a == s2 && b == t1 && k == EdgeKind::CrossSpec)
    );
    // Requirement-level `Depends on: storage#REQ-2` gives a requirement edge to T2 too.
    assert!(reaches(&g, s2, t2));
    let waves = g.waves().unwrap();
    assert_eq!(waves.len(), 4);
    assert_eq!(waves[0], [s1]);
    // Estimates follow the requirements the tasks trace to: 2 + 1 + 3 + 1 hours.
    let cp = g.critical_path().unwrap();
    assert_eq!(cp.tasks, [s1, s2, t1, t2]);
    assert!((cp.length - 7.0).abs() < 1e-9, "{cp:?}");
    assert_eq!(g.tasks()[t1].touches, ["src/api/**"]);
}

#[test]
fn a_spec_without_a_tasks_section_gives_one_task_per_requirement() {
    let (spec, _) = lightsout_spec::parse(STORAGE.as_bytes(), None, None);
    let list = TaskList::from_spec(&spec);
    assert_eq!(list.format, TaskFormat::Requirements);
    assert_eq!(list.tasks.len(), 2);
    assert_eq!(list.tasks[1].depends_on, ["REQ-1"]);
    assert_eq!(list.tasks[1].requirements, ["REQ-2"]);
}
