//! `lightsout audit verify|show` end to end, on logs written by the real `AuditLog`.

use assert_cmd::Command;
use lightsout_fence::audit::{AuditKind, AuditLog, AuditRecord};
use predicates::prelude::*;
use predicates::str::contains;
use serde_json::json;
use std::path::Path;

fn lightsout(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("lightsout").unwrap();
    c.current_dir(dir);
    c
}

/// A project with run `r1` holding four entries.
fn project() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let log = AuditLog::for_run(t.path(), "r1").unwrap();
    log.append(AuditRecord::new(
        AuditKind::RunStart,
        None,
        &[],
        json!({"spec": "specs/a.md"}),
    ))
    .unwrap();
    log.append(AuditRecord::new(
        AuditKind::AgentCall,
        Some("T1"),
        &["REQ-1"],
        json!({"tokens": 1200}),
    ))
    .unwrap();
    log.append(AuditRecord::new(
        AuditKind::PolicyHit,
        Some("T2"),
        &["REQ-2"],
        json!({"violation": "timed_out"}),
    ))
    .unwrap();
    log.append(AuditRecord::new(
        AuditKind::Merge,
        Some("T1"),
        &["REQ-1"],
        json!({"sha": "abc"}),
    ))
    .unwrap();
    t
}

fn log_path(t: &tempfile::TempDir) -> std::path::PathBuf {
    t.path().join(".lightsout/runs/r1/audit.jsonl")
}

#[test]
fn intact_log_verifies_with_exit_0() {
    let t = project();
    lightsout(t.path())
        .args(["audit", "verify", "r1"])
        .assert()
        .code(0)
        .stdout(contains("intact").and(contains("4 entries")));
    let out = lightsout(t.path())
        .args(["audit", "verify", "r1", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["intact"], json!(true));
    assert_eq!(v["entries"], json!(4));
}

#[test]
fn one_edited_line_exits_1() {
    let t = project();
    let path = log_path(&t);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("1200", "12");
    std::fs::write(&path, text).unwrap();
    lightsout(t.path())
        .args(["audit", "verify", path.to_str().unwrap()])
        .assert()
        .code(1)
        .stdout(contains("TAMPERED").and(contains("line 2")));
}

#[test]
fn one_deleted_line_exits_1() {
    let t = project();
    let path = log_path(&t);
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&path, format!("{}\n", kept.join("\n"))).unwrap();
    let out = lightsout(t.path())
        .args(["audit", "verify", "r1", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["intact"], json!(false));
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "chain_broken")
    );
}

#[test]
fn missing_run_exits_2_and_says_what_to_do() {
    let t = project();
    lightsout(t.path())
        .args(["audit", "verify", "nope"])
        .assert()
        .code(2)
        .stderr(contains("no audit log").and(contains("run id")));
}

#[test]
fn show_filters_by_kind_and_task() {
    let t = project();
    lightsout(t.path())
        .args(["audit", "show", "r1", "--task", "T1"])
        .assert()
        .code(0)
        .stdout(
            contains("agent_call")
                .and(contains("merge"))
                .and(contains("policy_hit").not()),
        );
    let out = lightsout(t.path())
        .args([
            "audit",
            "show",
            "r1",
            "--kind",
            "policy_hit",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["requirements"], json!(["REQ-2"]));
}

/// `lightsout audit show r1 | head -c0`: the reader goes away before the first byte, and the
/// command ends as `cat` would (killed by SIGPIPE), never with a Rust panic.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::Stdio;
    let t = project();
    for format in ["human", "json"] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("lightsout"))
            .args(["audit", "show", "r1", "--format", format])
            .current_dir(t.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before the command writes
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{format}: {stderr}");
        assert_eq!(
            out.status.signal(),
            Some(13),
            "{format}: SIGPIPE, as `cat`: {stderr}"
        );
    }
}
