//! End-to-end: the real `lightsout eval` binary against a real local httpbin (`PyPI` `httpbin`
//! under gunicorn, installed by scripts/test), using the bundled holdout suite in
//! examples/httpbin-holdout.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

const HTTPBIN: &str = "python3 -m gunicorn -b 127.0.0.1:{port} httpbin:app";

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/httpbin-holdout")
}

fn lightsout() -> Command {
    Command::cargo_bin("lightsout").unwrap()
}

#[test]
fn httpbin_suite_passes_the_gate_with_every_check_kind() {
    let dir = tempfile::tempdir().unwrap();
    let (junit, feedback, out) = (
        dir.path().join("junit.xml"),
        dir.path().join("feedback.txt"),
        dir.path().join("result.json"),
    );
    let assert = lightsout()
        .args(["eval", "--scenarios"])
        .arg(example().join("suite"))
        .args([
            "--target",
            HTTPBIN,
            "--ready-path",
            "/get",
            "--trials",
            "1",
            "--max-trials",
            "16",
        ])
        .arg("--gate")
        .arg(example().join("gate.toml"))
        .args(["--format", "json", "--junit"])
        .arg(&junit)
        .arg("--feedback")
        .arg(&feedback)
        .arg("--output")
        .arg(&out)
        .assert();
    let output = assert.get_output().clone();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(run["schema_version"], 1);
    assert_eq!(run["gate"]["passed"], true);
    let scenarios = run["scenarios"].as_array().unwrap();
    assert!(scenarios.len() >= 15);
    for kind in ["behavioural", "load", "adversarial"] {
        assert!(
            scenarios.iter().any(|s| s["kind"] == kind),
            "no {kind} scenario"
        );
    }
    // The guard bucket (@regression) and the sequential gate (@critical needs 16/16 for 0.8).
    assert!(scenarios.iter().any(|s| s["guard"] == true));
    let critical = scenarios
        .iter()
        .find(|s| {
            s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "@critical")
        })
        .unwrap();
    assert_eq!(critical["stats"]["trials"], 16);
    assert_eq!(critical["stopped"], "clear_pass");
    // Every trial has timed steps.
    let step = &scenarios[0]["trials"][0]["steps"][0];
    assert!(step["duration_ms"].as_f64().is_some() && step["status"] == "passed");
    // Files written, and the result file is the same document.
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(file["scenarios"], run["scenarios"]);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuites") && xml.contains("status.feature"));
    let fb = std::fs::read_to_string(&feedback).unwrap();
    assert!(fb.contains("gate passed; 0 of"), "{fb}");
}

#[test]
fn wrong_expectation_fails_the_gate_with_a_redacted_reason() {
    let dir = tempfile::tempdir().unwrap();
    let feedback = dir.path().join("feedback.txt");
    let assert = lightsout()
        .args(["eval", "--scenarios"])
        .arg(example().join("wrong"))
        .args([
            "--target",
            HTTPBIN,
            "--ready-path",
            "/get",
            "--trials",
            "2",
            "--feedback",
        ])
        .arg(&feedback)
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(
        stdout.contains("FAIL") && stdout.contains("gate FAILED"),
        "{stdout}"
    );
    // Humans see the detail ...
    assert!(stdout.contains("expected status 200, got 418"), "{stdout}");
    // ... the agent feedback names only the requirement and the kind of failure.
    let fb = std::fs::read_to_string(&feedback).unwrap();
    assert!(
        // The first failure is already a clear failure against the floor's 0.95 (Wilson upper
        // bound 0.79), so the sequential gate stops the scenario after one trial.
        fb.contains("HB-3") && fb.contains("1 of 1 trials failed: status mismatch"),
        "{fb}"
    );
    for secret in [
        "teapot", "418", "/status", "200", "<html>", "web page", "canary",
    ] {
        assert!(!fb.contains(secret), "feedback leaks `{secret}`:\n{fb}");
    }
}

#[test]
fn unknown_step_is_a_load_error_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("typo.scenario.md"),
        "## Scenario: typo\nSatisfies: REQ-1\n\n- **WHEN** I send `GET /get`\n- **THEN** the status code is 200\n",
    )
    .unwrap();
    let assert = lightsout()
        .args(["eval", "--scenarios"])
        .arg(dir.path())
        .args(["--url", "http://127.0.0.1:9"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.contains("LS501") && stderr.contains("typo.scenario.md:5:1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the nearest known step is `the status is 200`"),
        "{stderr}"
    );
}

#[test]
fn a_target_that_never_starts_exits_3_with_its_output() {
    // Exit 3, not 2: the service under test failed, not lightsout, so that a holdout runner can
    // hand it back to the agent as a failed attempt.
    let assert = lightsout()
        .args(["eval", "--scenarios"])
        .arg(example().join("wrong"))
        .args(["--target", "echo cannot-bind-{port} >&2; exit 1"])
        .assert()
        .code(3);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.starts_with("error: the service did not start") && stderr.contains("cannot-bind-"),
        "{stderr}"
    );
}

#[test]
fn target_and_url_are_exclusive_and_one_is_required() {
    lightsout()
        .args(["eval", "--scenarios", "x"])
        .assert()
        .code(2);
    lightsout()
        .args([
            "eval",
            "--scenarios",
            "x",
            "--url",
            "http://127.0.0.1:9",
            "--target",
            "true",
        ])
        .assert()
        .code(2);
}

#[test]
fn gate_rules_come_from_a_spec_verification_gate_section() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.md");
    std::fs::write(
        &spec,
        "---\nid: teapot\ntitle: Teapot\nkind: feature\nversion: 1\nstatus: ready\n---\n\n## Verification gate\n- Every scenario has a Wilson lower bound of at least 0.7 over 3 trials.\n- No regression on scenarios that passed on main.\n",
    )
    .unwrap();
    let assert = lightsout()
        .args(["eval", "--scenarios"])
        .arg(example().join("wrong"))
        .args([
            "--target",
            HTTPBIN,
            "--ready-path",
            "/get",
            "--format",
            "json",
            "--gate",
        ])
        .arg(&spec)
        .assert()
        .code(1);
    let run: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    // "over 3 trials" raises the minimum, but a failed trial makes the scenario answer to the
    // floor's 0.95 as well, and 0 of 1 (upper bound 0.79) is already clearly below it: the
    // sequential gate stops there instead of spending two more trials on a known failure.
    assert_eq!(run["scenarios"][0]["stats"]["trials"], 1);
    assert_eq!(run["scenarios"][0]["stopped"], "clear_fail");
    let reasons = run["gate"]["reasons"].as_array().unwrap();
    assert!(
        reasons[0]["rule"]
            .as_str()
            .unwrap()
            .starts_with("Every scenario has a Wilson lower bound")
            && reasons[0]["passed"] == false,
        "{reasons:?}"
    );
}
