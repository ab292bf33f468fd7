//! `lightsout spec ...` end to end: the real binary on real files.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example() -> PathBuf {
    root().join("examples/specs")
}

fn corpus(rel: &str) -> PathBuf {
    root().join("crates/spec/tests/corpus").join(rel)
}

fn lightsout() -> Command {
    let mut c = Command::cargo_bin("lightsout").expect("binary built");
    c.env("NO_COLOR", "1");
    c
}

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).expect("stdout is JSON")
}

const READY: &str = "---
id: ping
title: Ping
kind: constraint
version: 1
status: ready
---

## Constraints
- CON-1: GET /ping answers within 50 ms at p99.
";

#[test]
fn check_bundled_example_is_ready() {
    lightsout()
        .args(["spec", "check", "--strict"])
        .arg(example())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("ready"))
        .stdout(predicate::str::contains("url-shortener.md"))
        .stdout(predicate::str::contains("\x1b[").not());
}

#[test]
fn check_reports_rustc_style_with_caret_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("ping.md");
    std::fs::write(&f, READY.replace("within 50 ms at p99", "fast")).expect("write");
    // A weak word is a judgement call: pedantic only.
    lightsout()
        .args(["spec", "check"])
        .arg(&f)
        .assert()
        .stdout(predicate::str::contains("LS202").not());
    lightsout()
        .args(["spec", "check", "--lint", "pedantic"])
        .arg(&f)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("error[LS202]: weak word \"fast\""))
        .stdout(predicate::str::contains("ping.md:10:28"))
        .stdout(predicate::str::contains(
            "10 | - CON-1: GET /ping answers fast.",
        ))
        .stdout(predicate::str::contains(
            "   |                            ^^^^\n",
        ))
        .stdout(predicate::str::contains("= help:"));
}

#[test]
fn strict_makes_warnings_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("ping.md");
    std::fs::write(
        &f,
        READY.replace("within 50 ms at p99", "within the budget"),
    )
    .expect("write");
    lightsout().args(["spec", "check"]).arg(&f).assert().code(0);
    lightsout()
        .args(["spec", "check", "--strict"])
        .arg(&f)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("warning[LS203]"));
}

#[test]
fn check_json_report() {
    // OpenSpec's own specs are valid OpenSpec: the default rules find nothing wrong.
    let out = lightsout()
        .args(["spec", "check", "--format", "json"])
        .arg(corpus("openspec/specs"))
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["version"], "1");
    let files = v["files"].as_array().expect("files");
    assert_eq!(files.len(), 12);
    let validate = files
        .iter()
        .find(|f| f["spec_id"] == "cli-validate")
        .expect("cli-validate");
    assert_eq!(validate["requirements"], 12);
    assert_eq!(validate["dialect"], "openspec");
    assert_eq!(v["summary"]["verdict"], "ready");
    assert_eq!(v["summary"]["errors"], 0);

    // The judgement calls (weak words, scenario shape) are opt-in, and then they count.
    let out = lightsout()
        .args(["spec", "check", "--lint", "pedantic", "--format", "json"])
        .arg(corpus("openspec/specs"))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert!(
        v["summary"]["score"]
            .as_f64()
            .is_some_and(|s| s > 0.0 && s < 1.0)
    );
    assert_eq!(v["summary"]["verdict"], "not-ready");
}

#[test]
fn check_sarif_is_2_1_0() {
    let out = lightsout()
        .args(["spec", "check", "--format", "sarif"])
        .arg(corpus("spec-kit/spec-template.md"))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "lightsout");
    let results = run["results"].as_array().expect("results");
    assert!(!results.is_empty());
    let r = &results[0];
    assert!(r["ruleId"].as_str().is_some_and(|s| s.starts_with("LS")));
    let region = &r["locations"][0]["physicalLocation"]["region"];
    assert!(region["startLine"].as_u64().is_some_and(|l| l >= 1));
    let idx = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
    assert_eq!(run["tool"]["driver"]["rules"][idx]["id"], r["ruleId"]);
}

#[test]
fn dialect_override() {
    let out = lightsout()
        .args(["spec", "check", "--format", "json", "--dialect", "openspec"])
        .arg(corpus("kiro/coap-transport/requirements.md"))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    assert_eq!(json(&out)["files"][0]["dialect"], "openspec");
}

#[test]
fn usage_and_io_errors_exit_2() {
    lightsout()
        .args(["spec", "check", "/no/such/spec.md"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error: "))
        .stderr(predicate::str::contains("/no/such/spec.md"));
    lightsout().args(["spec", "check"]).assert().code(2);
    lightsout()
        .args(["spec", "check", "--format", "xml", "x.md"])
        .assert()
        .code(2);
    let empty = tempfile::tempdir().expect("tempdir");
    lightsout()
        .args(["spec", "check"])
        .arg(empty.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no spec files"));
}

#[test]
fn bad_bytes_are_findings_not_crashes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, &[u8], &str); 3] = [
        ("empty.md", b"", "LS001"),
        ("bin.md", b"\x7fELF\x00\x01", "LS003"),
        ("latin1.md", b"---\nid: caf\xe9\n---\n", "LS002"),
    ];
    for (name, bytes, code) in cases {
        let f = dir.path().join(name);
        std::fs::write(&f, bytes).expect("write");
        lightsout()
            .args(["spec", "check"])
            .arg(&f)
            .assert()
            .code(1)
            .stdout(predicate::str::contains(format!("error[{code}]")))
            .stdout(predicate::str::contains(format!("{name}:")));
    }
}

#[test]
fn show_json_and_markdown() {
    let f = example().join("url-shortener.md");
    let out = lightsout()
        .args(["spec", "show", "--format", "json"])
        .arg(&f)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["meta"]["id"], "url-shortener");
    assert_eq!(v["requirements"][1]["id"], "REQ-2");
    assert_eq!(v["requirements"][1]["depends_on"][0], "REQ-1");
    assert_eq!(
        v["requirements"][0]["statements"][0]["ears"],
        "event-driven"
    );
    lightsout()
        .args(["spec", "show", "--format", "markdown"])
        .arg(&f)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "### REQ-4: Survive a Slack outage",
        ));
}

#[test]
fn schema_is_json_schema_of_the_spec() {
    let out = lightsout()
        .args(["spec", "schema"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["title"], "Spec");
    assert!(v["properties"]["requirements"].is_object());
    let out = lightsout()
        .args(["spec", "schema", "report"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert_eq!(json(&out)["title"], "JsonReport");
}

#[test]
fn diff_by_id_and_version_bump() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = std::fs::read_to_string(example().join("url-shortener.md")).expect("example");
    let old = dir.path().join("old.md");
    let new = dir.path().join("new.md");
    std::fs::write(&old, &src).expect("write");
    let changed = src.replace("at most 3 times", "at most 5 times").replace(
        "### REQ-3: Notify Slack of a new link",
        "### REQ-3: Notify Slack of every new link",
    );
    std::fs::write(&new, &changed).expect("write");
    lightsout()
        .args(["spec", "diff"])
        .arg(&old)
        .arg(&new)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("~ REQ-3 (modified: title)"))
        .stdout(predicate::str::contains("~ REQ-4 (modified: body)"))
        .stdout(predicate::str::contains("error[LS310]"));
    std::fs::write(&new, changed.replace("version: 2", "version: 3")).expect("write");
    let out = lightsout()
        .args(["spec", "diff", "--format", "json"])
        .arg(&old)
        .arg(&new)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["changes"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["changes"][0]["kind"], "modified");
}
