//! End-to-end tests of `lightsout report RUN`: the real binary on a fabricated run directory
//! (a journal written the way the factory writes it) in a real git repository.

use assert_cmd::Command;
use lightsout_factory::{Plan, Task};
use predicates::prelude::*;
use serde_json::{Value, json};
use std::path::Path;

fn git_repo(dir: &Path) {
    let ok = std::process::Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git init");
}

/// A finished run `r1`: T1 failed its first attempt at the holdout, then passed and merged.
fn fabricate(repo: &Path) {
    let plan = Plan {
        tasks: vec![Task {
            id: "T1".into(),
            title: "Serve health".into(),
            spec_id: "svc".into(),
            requirement_ids: vec!["REQ-1".into()],
            ..Task::default()
        }],
    };
    let attempt = |n: u32, passed: bool| {
        let mut a = json!({
            "attempt": n, "agent": "replay", "replay": true, "summary": "patch",
            "usage": {"input_tokens": 10, "output_tokens": 5, "wall_ms": 7},
            "outcome": {"kind": "completed"}, "passed": passed,
        });
        if !passed {
            a["failed_stage"] = json!("holdout");
            a["feedback"] = json!("REQ-1: status mismatch");
        }
        a
    };
    let entries = [
        json!({"entry": "run_started", "run_id": "r1", "at": "2026-11-27T06:00:00Z",
               "main": "main", "base": "b0", "plan": plan}),
        json!({"entry": "attempt_finished", "task": "T1", "record": attempt(1, false)}),
        json!({"entry": "attempt_finished", "task": "T1", "record": attempt(2, true)}),
        json!({"entry": "merged", "task": "T1", "commit": "abc123"}),
        json!({"entry": "run_finished", "at": "2026-11-27T06:00:42Z"}),
    ];
    let dir = repo.join(".lightsout/runs/r1");
    std::fs::create_dir_all(&dir).unwrap();
    let text: String = entries.iter().map(|e| e.to_string() + "\n").collect();
    std::fs::write(dir.join("journal.jsonl"), text).unwrap();
}

fn lightsout(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("lightsout").unwrap();
    c.current_dir(dir);
    c
}

#[test]
fn writes_html_and_json_and_prints_the_paths() {
    let tmp = tempfile::tempdir().unwrap();
    git_repo(tmp.path());
    fabricate(tmp.path());
    let run = tmp.path().join(".lightsout/runs/r1");
    lightsout(tmp.path())
        .args(["report", "r1"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("gate: NOT EVALUATED")
                .and(predicate::str::contains("replay of a recorded trajectory"))
                .and(predicate::str::contains("report.html")),
        );
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("REQ-1") && html.contains("abc123"));
    let report: Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["tasks"][0]["attempts"], 2);
    assert_eq!(report["tasks"][0]["tokens_in"], 20);
    assert_eq!(
        report["requirements"][0]["failures"][0]["category"],
        "holdout"
    );

    let out = lightsout(tmp.path())
        .args(["report", "r1", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert!(v["report_html"].as_str().unwrap().ends_with("report.html"));
    assert_eq!(v["report"]["run_id"], "r1");
    assert_eq!(v["report"]["gate"]["outcome"], "not_evaluated");
}

#[test]
fn an_unknown_run_says_where_to_look() {
    let tmp = tempfile::tempdir().unwrap();
    git_repo(tmp.path());
    lightsout(tmp.path())
        .args(["report", "nope"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("no run `nope`")
                .and(predicate::str::contains(".lightsout/runs")),
        );
}

/// `lightsout report` with no run reports the run whose journal was written last, whatever
/// its id; with no run at all it says how to start one.
#[test]
fn without_a_run_id_the_latest_run_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    git_repo(tmp.path());
    lightsout(tmp.path())
        .arg("report")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("lightsout run"));
    fabricate(tmp.path());
    // An older run whose id sorts after r1: the journal's time decides, not the name.
    let old = tmp.path().join(".lightsout/runs/z-old");
    std::fs::create_dir_all(&old).unwrap();
    let journal = old.join("journal.jsonl");
    std::fs::copy(
        tmp.path().join(".lightsout/runs/r1/journal.jsonl"),
        &journal,
    )
    .unwrap();
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&journal)
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    lightsout(tmp.path())
        .arg("report")
        .assert()
        .success()
        .stdout(predicate::str::contains("run r1 (the latest)"));
    assert!(tmp.path().join(".lightsout/runs/r1/report.html").is_file());
    assert!(!old.join("report.html").exists());
}
