//! `lightsout plan ...` end to end: the real binary on real task lists and specs.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::{Path, PathBuf};

fn graph_corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../graph/tests/corpus")
        .join(rel)
}

fn lightsout() -> Command {
    let mut c = Command::cargo_bin("lightsout").expect("binary built");
    c.env("NO_COLOR", "1");
    c
}

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).expect("stdout is JSON")
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
";

const SHORTENER_V1: &str = "---
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

### REQ-2: Resolve a short link
When a user opens a short code, the service shall redirect.
Depends on: REQ-1
Touches: src/api/**
";

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("storage.md"), STORAGE).unwrap();
    std::fs::write(dir.path().join("shortener.md"), SHORTENER_V1).unwrap();
    dir
}

#[test]
fn a_directory_of_specs_is_one_plan_with_the_architecture_first() {
    let dir = project();
    let out = lightsout()
        .args(["plan", "--format", "json"])
        .arg(dir.path())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let plan = json(&out);
    assert_eq!(plan["specs"][0]["id"], "storage");
    assert_eq!(plan["specs"][0]["kind"], "architectural");
    let waves = plan["waves"].as_array().unwrap();
    assert_eq!(waves.len(), 3);
    assert_eq!(waves[0], serde_json::json!(["storage#REQ-1"]));
    assert_eq!(
        plan["critical_path"]["tasks"],
        serde_json::json!(["storage#REQ-1", "shortener#REQ-1", "shortener#REQ-2"])
    );
    assert_eq!(plan["ready"], serde_json::json!(["storage#REQ-1"]));
}

#[test]
fn human_output_shows_waves_critical_path_and_ready_tasks_with_requirements() {
    let dir = project();
    lightsout()
        .arg("plan")
        .arg(dir.path())
        .args(["--done", "storage#REQ-1"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "critical path (3 task(s)): storage#REQ-1 → shortener#REQ-1 → shortener#REQ-2",
        ))
        .stdout(predicate::str::contains("ready now (1): shortener#REQ-1"))
        .stdout(predicate::str::contains(
            "[x] storage#REQ-1  Schema  (REQ-1)",
        ))
        .stdout(predicate::str::contains("wave 3 (1 task(s))"));
}

#[test]
fn dot_and_mermaid_render() {
    let dir = project();
    lightsout()
        .args(["plan", "--format", "dot"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::starts_with("digraph plan {"))
        .stdout(predicate::str::contains(
            "\"storage#REQ-1\" -> \"shortener#REQ-1\"",
        ));
    lightsout()
        .args(["plan", "--format", "mermaid"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::starts_with("flowchart LR"))
        .stdout(predicate::str::contains("n0 --> n1"));
}

#[test]
fn a_cycle_exits_1_with_its_path_and_repair_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = dir.path().join("tasks.json");
    std::fs::write(
        &tasks,
        r#"{"tasks": [
          {"id": 1, "title": "a", "dependencies": [3]},
          {"id": 2, "title": "b", "dependencies": [1]},
          {"id": 3, "title": "c", "dependencies": [2]}
        ]}"#,
    )
    .unwrap();
    lightsout()
        .arg("plan")
        .arg(&tasks)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error[LS350]: dependency cycle:"))
        .stderr(predicate::str::contains("#1 → "))
        .stdout(predicate::str::contains("1 dependency cycle(s)"));
    lightsout()
        .arg("plan")
        .arg(&tasks)
        .arg("--repair")
        .assert()
        .success()
        .stderr(predicate::str::contains("warning[LS364]"));
}

#[test]
fn kiro_folder_and_an_unknown_done_id() {
    let kiro = graph_corpus("kiro/ccache-adoption");
    let out = lightsout()
        .args(["plan", "--format", "json"])
        .arg(&kiro)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let plan = json(&out);
    assert_eq!(plan["tasks"].as_array().unwrap().len(), 7);
    assert_eq!(plan["waves"].as_array().unwrap().len(), 4);
    lightsout()
        .arg("plan")
        .arg(&kiro)
        .args(["--done", "nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--done names `nope`"));
}

#[test]
fn overlapping_touches_fail_only_under_strict() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SHORTENER_V1
        .replace("Depends on: REQ-1\n", "")
        .replace("depends_on: [storage]\n", "");
    std::fs::write(dir.path().join("shortener.md"), spec).unwrap();
    lightsout()
        .arg("plan")
        .arg(dir.path())
        .assert()
        .success()
        .stderr(predicate::str::contains("warning[LS357]"));
    lightsout()
        .arg("plan")
        .arg(dir.path())
        .arg("--strict")
        .assert()
        .code(1);
}

#[test]
fn impact_lists_the_tasks_a_spec_change_invalidates() {
    let old = project();
    let new = project();
    let v2 = SHORTENER_V1.replace("version: 1", "version: 2").replace(
        "return a short code.",
        "return a short code of 7 characters.",
    );
    std::fs::write(new.path().join("shortener.md"), v2).unwrap();
    let out = lightsout()
        .args(["plan", "--format", "json", "--impact"])
        .arg(old.path().join("shortener.md"))
        .arg(new.path().join("shortener.md"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report = json(&out);
    assert_eq!(report["changed"], serde_json::json!(["shortener#REQ-1"]));
    let tasks: Vec<&str> = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task"].as_str().unwrap())
        .collect();
    assert_eq!(tasks, ["shortener#REQ-1", "shortener#REQ-2"]);
    lightsout()
        .args(["plan", "--impact"])
        .arg(old.path())
        .arg(new.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("invalidated tasks (2):"))
        .stdout(
            predicate::str::contains("shortener#REQ-2")
                .and(predicate::str::contains("downstream of shortener#REQ-1")),
        );
}

#[test]
fn usage_errors_exit_2() {
    let empty = tempfile::tempdir().unwrap();
    lightsout()
        .arg("plan")
        .current_dir(empty.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("specs"));
    lightsout()
        .args(["plan", "/definitely/not/here"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("error:"));
}

/// A Lightsout spec's own `## Tasks` checklist (`- [ ] T1: ... (REQ-1) depends on T0`) is
/// read as the spec's breakdown, not mistaken for a Spec Kit task list given by name.
#[test]
fn a_lightsout_spec_with_its_own_task_list_is_planned_from_it() {
    let d = tempfile::tempdir().unwrap();
    let spec = d.path().join("links.md");
    std::fs::write(
        &spec,
        "---\nid: links\ntitle: Links\nkind: feature\nversion: 1\nstatus: ready\n---\n\
         ## Intent\nShort links.\n\n## Behaviour\n\
         ### REQ-1: Create\nThe service SHALL create a link.\n\n\
         ### REQ-2: Redirect\nThe service SHALL redirect.\n\n\
         ### REQ-3: Notify\nThe service SHALL notify Slack.\n\n\
         ## Tasks\n\
         - [ ] T1: Store and create endpoint (REQ-1)\n\
         - [ ] T2: Redirect endpoint (REQ-2) depends on T1\n\
         - [x] T3: Slack notifier (REQ-3) depends on T1\n",
    )
    .unwrap();
    let out = lightsout()
        .args(["plan", "--format", "json"])
        .arg(&spec)
        .output()
        .unwrap();
    let v = json(&out.stdout);
    assert_eq!(v["specs"][0]["format"], "lightsout", "{v}");
    let tasks = v["tasks"].as_array().unwrap();
    let by_id = |id: &str| tasks.iter().find(|t| t["id"] == id).unwrap().clone();
    assert_eq!(tasks.len(), 3);
    assert_eq!(by_id("T1")["title"], "Store and create endpoint");
    assert_eq!(by_id("T2")["requirements"], serde_json::json!(["REQ-2"]));
    assert_eq!(by_id("T2")["depends_on"], serde_json::json!(["links#T1"]));
    assert_eq!(by_id("T3")["depends_on"], serde_json::json!(["links#T1"]));
    assert_eq!(by_id("T3")["done"], true);
}

/// Spec Kit lists as teams write them (bold ids), and a guess from prose that would close a
/// cycle with the author's dependency: a plan, a note, exit 0.
#[test]
fn bold_spec_kit_ids_are_planned_and_a_guessed_cycle_is_only_a_note() {
    let d = tempfile::tempdir().unwrap();
    let tasks = d.path().join("tasks.md");
    std::fs::write(
        &tasks,
        "## Phase 1: Setup\n\
         - [ ] **T001** Record the baseline after T003's grep snapshot\n\
         - [ ] **T002** Prepare fixtures\n\
         - [ ] **T003** Take the grep snapshot (depends on T001)\n",
    )
    .unwrap();
    lightsout()
        .arg("plan")
        .arg(&tasks)
        .assert()
        .code(0)
        .stderr(predicate::str::contains("info[LS366]"))
        .stdout(predicate::str::contains("plan: 3 task(s)"));
}

#[test]
fn a_task_list_with_no_task_exits_1() {
    let d = tempfile::tempdir().unwrap();
    let tasks = d.path().join("tasks.md");
    std::fs::write(&tasks, "# Tasks\n\n- [ ] Create the project\n").unwrap();
    lightsout()
        .arg("plan")
        .arg(&tasks)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "error[LS367]: the plan has no task",
        ));
}

/// A diagnostic in a one-line `tasks.json` gives its line and column, without printing the
/// whole file as "the line".
#[test]
fn a_one_line_tasks_json_is_not_quoted_whole_under_a_diagnostic() {
    let d = tempfile::tempdir().unwrap();
    let tasks: Vec<serde_json::Value> = (1..=200)
        .map(|i| {
            let deps = if i == 200 { vec![999] } else { vec![] };
            serde_json::json!({"id": i, "title": format!("Task number {i}"), "dependencies": deps})
        })
        .collect();
    let file = d.path().join("tasks.json");
    std::fs::write(&file, serde_json::json!({ "tasks": tasks }).to_string()).unwrap();
    lightsout().arg("plan").arg(&file).assert().code(1).stderr(
        predicate::str::contains("error[LS351]")
            .and(predicate::str::contains("tasks.json:1:"))
            .and(predicate::str::contains("Task number 1\"").not()),
    );
}

const CYCLE: &str = "---
id: cyc
title: Cycle
kind: feature
version: 1
status: ready
---
## Intent
A cycle.

## Behaviour
### REQ-1: One
The service SHALL do one.
Depends on: REQ-2

### REQ-2: Two
The service SHALL do two.
Depends on: REQ-3

### REQ-3: Three
The service SHALL do three.
Depends on: REQ-1
";

/// `lightsout plan` with no path reads `specs/` at the repository root, as `lightsout run`
/// does, and prints a cycle in the direction `lightsout spec check` prints it.
#[test]
fn plan_defaults_to_specs_and_prints_cycles_as_spec_check_does() {
    let d = tempfile::tempdir().unwrap();
    std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(d.path())
        .status()
        .unwrap();
    std::fs::create_dir_all(d.path().join("specs/sub")).unwrap();
    std::fs::write(d.path().join("specs/c.md"), CYCLE).unwrap();
    let check = lightsout()
        .args(["spec", "check", "specs"])
        .current_dir(d.path())
        .assert()
        .code(1);
    let out = check.get_output();
    let check = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        check.contains("cycle: REQ-1 → REQ-2 → REQ-3 → REQ-1"),
        "{check}"
    );
    // From a subdirectory too: the default is the repository's specs/, not ./specs.
    let plan = lightsout()
        .arg("plan")
        .current_dir(d.path().join("specs/sub"))
        .assert()
        .code(1);
    let plan = String::from_utf8_lossy(&plan.get_output().stderr).into_owned();
    assert!(
        plan.contains("cycle: cyc#REQ-1 → cyc#REQ-2 → cyc#REQ-3 → cyc#REQ-1"),
        "{plan}"
    );
}
