//! The task list readers on small inputs: task-master JSON, cc-sdd markers, optional tasks,
//! Lightsout specs (default tasks and the `## Tasks` section), multi-spec plans.

use crate::{at, build, codes, ids, reaches};
use lightsout_graph::{EdgeKind, Options, TaskFormat, TaskGraph, TaskList, load, read};

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

const SPEC_KIT_AS_WRITTEN: &str = "\
## Phase 1: Setup
- [ ] **T001** Create project
- [ ] **T002**: Snapshot the grep output to `out/grep.txt`
- [x] **T003** · [P] Lint config
- [ ] T009 Implement checksum verification
- [ ] T009a [P] [FR-008] Download the reference set
- [ ] T009b [P] Configure logging after T009a's download
  - **Depends on**: T001
- [ ] T010 `[api] [P]` Add the isShort field
- [ ] T011 Compare against the baseline after T002's grep snapshot
- [ ] T012 Wire it up (depends on T010)
  **Blocks**: T013

## Phase 3: User Story 1 - Sign in (Priority: P1)
- [ ] T013 Build the sign-in form
- [ ] T014 [US2] Share the session
- [ ] TXXX [P] Documentation updates
- [ ] Test the login by hand
";

#[test]
fn spec_kit_lists_as_teams_write_them() {
    let path = std::path::Path::new("feature/tasks.md");
    assert_eq!(
        read::detect(path, b"# Tasks\n\n- [ ] **T001** Fetch the hero video\n"),
        Some(TaskFormat::SpecKit),
        "bold task ids are Spec Kit tasks"
    );
    let (lists, diags) = read::read(
        TaskFormat::SpecKit,
        SPEC_KIT_AS_WRITTEN.as_bytes(),
        "f",
        None,
    );
    // Only the template placeholder is worth a word; T009a is no placeholder and no
    // duplicate of T009, and "Test the login by hand" is no task.
    assert_eq!(codes(&diags), ["LS359"], "{diags:#?}");
    assert!(diags[0].message.contains("`TXXX`"));
    let l = &lists[0];
    let task = |id: &str| l.tasks.iter().find(|t| t.id == id).unwrap();
    let got: Vec<&str> = l.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        got,
        [
            "T001", "T002", "T003", "T009", "T009a", "T009b", "T010", "T011", "T012", "T013",
            "T014", "TXXX"
        ]
    );
    assert_eq!(
        task("T002").title,
        "Snapshot the grep output to `out/grep.txt`"
    );
    assert!(task("T003").done && task("T003").parallel);
    assert_eq!(task("T003").title, "Lint config");
    assert!(task("T009a").parallel);
    assert_eq!(task("T009a").requirements, ["FR-008"]);
    assert!(task("T010").parallel);
    assert_eq!(task("T010").title, "Add the isShort field");
    // Written dependencies, in the line or under it; `Blocks:` the other way round.
    assert_eq!(task("T009b").depends_on, ["T001"]);
    assert_eq!(task("T012").depends_on, ["T010"]);
    let edge = |from: &str, to: &str| {
        l.edges
            .iter()
            .find(|e| e.from == from && e.to == to)
            .map(|e| e.kind)
    };
    assert_eq!(edge("T012", "T013"), Some(EdgeKind::Explicit));
    // Prose is a guess.
    assert_eq!(edge("T009a", "T009b"), Some(EdgeKind::Inferred));
    assert_eq!(edge("T002", "T011"), Some(EdgeKind::Inferred));
    // The story of the phase heading, unless the task names its own.
    assert_eq!(task("T013").requirements, ["US1"]);
    assert_eq!(task("T014").requirements, ["US2"]);
}

#[test]
fn a_guess_and_a_written_dependency_make_no_false_cycle_and_repair_keeps_the_authors_edge() {
    // The issue's plan: T001's description mentions T003's snapshot; the author wrote that
    // T003 depends on T001.
    let md = "\
## Phase 1: Setup
- [ ] T001 Record the baseline after T003's grep snapshot
- [ ] T002 Prepare fixtures
- [ ] T003 Take the grep snapshot (depends on T001)
";
    let (lists, rdiags) = read::read(TaskFormat::SpecKit, md.as_bytes(), "f", None);
    assert!(rdiags.is_empty(), "{rdiags:#?}");
    for repair in [false, true] {
        let (g, diags) = TaskGraph::build(lists.clone(), &Options::default().with_repair(repair));
        assert_eq!(codes(&diags), ["LS366"], "{diags:#?}");
        assert_eq!(g.cycle_count(), 0);
        assert!(g.edges().any(|(a, b, k)| a == at(&g, "T001")
            && b == at(&g, "T003")
            && k == EdgeKind::Explicit));
        assert!(!reaches(&g, at(&g, "T003"), at(&g, "T001")));
    }
}

#[test]
fn kiro_letter_suffixed_ids_are_distinct_and_nested_tasks_are_sub_tasks() {
    let md = "\
- [ ] 3. Endpoints
  - [ ] 3.6 Session endpoint
    - [ ] 3.6a Return session metadata
    - [ ] 3.6b Return the document count
  - [ ] 3.7 Privacy endpoint
- [ ] 10. Install the skills
  - [ ] 10a. Clone the repository
  - [ ] 10b. Copy the skills
- [ ] 11. [P] Docs
  - **Requirements**: 1.2, 3.4
- [ ] 12. [P] Changelog
  - _Requirements: 1.1_
";
    let (lists, diags) = read::read(TaskFormat::Kiro, md.as_bytes(), "k", None);
    assert!(diags.is_empty(), "{diags:#?}");
    let (g, diags) = build(lists);
    assert!(diags.iter().all(|d| d.code != "LS356"), "{diags:#?}");
    assert_eq!(g.len(), 10);
    let sub = |child: &str, parent: &str| {
        g.edges()
            .any(|(a, b, k)| a == at(&g, child) && b == at(&g, parent) && k == EdgeKind::Subtask)
    };
    assert!(sub("3.6a", "3.6") && sub("3.6b", "3.6") && sub("3.6", "3"));
    assert!(sub("10a", "10") && sub("10b", "10"));
    let t = |id: &str| &g.tasks()[at(&g, id)];
    assert_eq!(t("11").requirements, ["1.2", "3.4"]);
    assert!(t("11").parallel && t("12").parallel);
    assert_eq!(t("11").title, "Docs");
    let w = g.levels().unwrap();
    assert_eq!(w[at(&g, "11")], w[at(&g, "12")]);
}

#[test]
fn task_master_spans_on_one_line_equal_the_naive_computation() {
    let mut tasks = Vec::new();
    for i in 1..=300 {
        tasks.push(serde_json::json!({
            "id": i, "title": format!("Tâche {i} — \"quoted\" \\ é"), "status": "pending",
            "dependencies": if i > 1 { vec![i - 1] } else { vec![] },
            "subtasks": [{"id": 1, "title": format!("sub {i}"), "dependencies": []}]
        }));
    }
    let json = serde_json::json!({"master": {"tasks": tasks}}).to_string();
    assert!(!json.contains('\n'));
    let (lists, diags) = read::read(TaskFormat::TaskMaster, json.as_bytes(), "p", None);
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(lists[0].tasks.len(), 600);
    for t in &lists[0].tasks {
        let naive = lightsout_spec::Span::from_range(&json, t.span.start, t.span.end);
        assert_eq!(t.span, naive);
        // The span is the title as written in the file.
        let written: String = serde_json::from_str(&json[t.span.start..t.span.end]).unwrap();
        assert_eq!(written, t.title);
    }
}

#[test]
fn spec_kit_story_labels_cover_the_specs_user_stories() {
    let dir = tempfile::tempdir().unwrap();
    let feature = dir.path().join("001-sign-in");
    std::fs::create_dir(&feature).unwrap();
    std::fs::write(
        feature.join("spec.md"),
        "# Feature Specification: Sign in

## User Scenarios & Testing

### User Story 1 - Sign in (Priority: P1)

A user signs in with a password.

**Acceptance Scenarios**:

1. **Given** an account, **When** the user signs in, **Then** a session starts.

### User Story 2 - Sign out (Priority: P2)

A user signs out.

## Requirements

### Functional Requirements

- **FR-001**: System MUST check the password.
- **FR-002**: System MUST end the session on sign-out.
",
    )
    .unwrap();
    std::fs::write(
        feature.join("tasks.md"),
        "## Phase 3: User Story 1 - Sign in (Priority: P1)\n- [ ] **T001** [US1] Password check\n",
    )
    .unwrap();
    let loaded = load::load(std::slice::from_ref(&feature)).unwrap();
    let reqs: Vec<String> = loaded.lists[0]
        .requirements
        .iter()
        .flatten()
        .map(|r| r.id.clone())
        .collect();
    assert!(reqs.contains(&"US-1".to_owned()), "{reqs:?}");
    let (_, diags) = TaskGraph::build(loaded.lists, &Options::default());
    let uncovered: Vec<&str> = diags
        .iter()
        .filter(|d| d.code == "LS353")
        .map(|d| d.message.as_str())
        .collect();
    // US-1 is covered by the [US1] task; US-2 is not; the FRs are not counted as uncovered
    // (no task traces an FR), which a note says.
    assert_eq!(uncovered.len(), 1, "{diags:#?}");
    assert!(uncovered[0].contains("`US-2`"), "{uncovered:?}");
    assert!(
        diags
            .iter()
            .any(|d| d.code == "LS363" && d.message.contains("FR-")),
        "{diags:#?}"
    );
}

#[test]
fn a_task_list_with_no_task_in_it_is_not_a_silent_success() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = dir.path().join("tasks.md");
    std::fs::write(&tasks, "# Tasks\n\n- [ ] 1. Create the project\n").unwrap();
    let loaded = load::load(std::slice::from_ref(&tasks)).unwrap();
    let (g, _) = TaskGraph::build(loaded.lists, &Options::default());
    assert_eq!(g.len(), 1);
    std::fs::write(
        &tasks,
        "# Tasks\n\n- [ ] Create the project\n- [ ] Ship it\n",
    )
    .unwrap();
    let loaded = load::load(std::slice::from_ref(&tasks)).unwrap();
    let (g, mut diags) = TaskGraph::build(loaded.lists, &Options::default());
    diags.extend(loaded.diagnostics);
    assert_eq!(g.len(), 0);
    assert!(
        diags
            .iter()
            .any(|d| d.severity == lightsout_spec::Severity::Error),
        "{diags:#?}"
    );
}

/// A spec that cannot be read (here a dangling link named `spec.md`) is an error naming it,
/// with the spec stage's error kept as its source.
#[test]
fn an_unreadable_spec_is_an_error_that_keeps_the_spec_error() {
    let dir = tempfile::tempdir().unwrap();
    let feature = dir.path().join("feature");
    std::fs::create_dir_all(&feature).unwrap();
    std::os::unix::fs::symlink(feature.join("missing.md"), feature.join("spec.md")).unwrap();
    let e = load::load(&[dir.path().to_path_buf()]).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("cannot read {}", feature.join("spec.md").display())
    );
    let source = std::error::Error::source(&e).expect("the spec error is kept");
    assert!(source.is::<lightsout_spec::Error>(), "{source:?}");
}
