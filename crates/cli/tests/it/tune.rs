//! `lightsout metrics` and `lightsout tune show|promote|propose|accept` end to end: on a
//! project's older `.lightsout/metrics.jsonl` (imported into the run-metrics store) and on the
//! bundled demo's run ([`demo_metrics_and_tuner`]).

use assert_cmd::Command;
use predicates::str::contains;
use std::fmt::Write as _;
use std::path::Path;

const CONFIG: &str = r#"
[agents]
default = "big"

[agent.big]
preset = "claude-code"

[agent.small]
preset = "claude-code"

[tuning]
incumbent = "A"
seed = 3

[tuning.bounds]
kinds = ["code"]
max_exploration = 0.5

[[tuning.variant]]
name = "A"
agent = "big"

[[tuning.variant]]
name = "B"
agent = "small"
model = "cheap"
"#;

/// `lightsout ARGS --project DIR`, run in `dir`.
fn lightsout(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::cargo_bin("lightsout").unwrap();
    c.current_dir(dir).args(args).arg("--project").arg(dir);
    c
}

/// `n` first attempts of `variant` on `code`, `passes` of them passing, at `usd` each.
fn lines(out: &mut String, run: &str, variant: &str, n: u32, passes: u32, usd: f64) {
    for i in 0..n {
        let ok = i < passes;
        let _ = writeln!(
            out,
            r#"{{"run_id":"{run}","task_id":"{variant}{i}","attempt":1,"agent":"claude-code","usage":{{"input_tokens":1000,"output_tokens":200,"cost_usd":{usd},"wall_ms":{}}},"passed":{ok},{}"human_intervened":false,"task_kind":"code","variant":"{variant}"}}"#,
            1000 + i,
            if ok {
                ""
            } else {
                r#""failed_stage":"holdout","failure_category":"holdout: status mismatch","#
            }
        );
    }
}

fn project(config: &str, metrics: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("lightsout.toml"), config).unwrap();
    std::fs::create_dir_all(t.path().join(".lightsout")).unwrap();
    std::fs::write(t.path().join(".lightsout/metrics.jsonl"), metrics).unwrap();
    t
}

#[test]
fn metrics_rolls_up_per_variant_and_kind_in_text_and_json() {
    let mut m = String::new();
    lines(&mut m, "r1", "A", 10, 9, 1.0);
    lines(&mut m, "r1", "B", 10, 8, 0.3);
    // A line written before task kinds and variants were recorded, and a torn last line.
    m.push_str(r#"{"run_id":"r0","task_id":"T1","requirements":[],"attempt":1,"agent":"replay (replay)","replay":true,"usage":{"input_tokens":0,"output_tokens":0,"cost_usd":0.0,"wall_ms":14},"passed":true,"human_intervened":false}"#);
    m.push_str("\n{\"run_id\":\"r2\",\"task");
    let t = project(CONFIG, &m);
    lightsout(t.path(), &["metrics"])
        .assert()
        .success()
        .stdout(contains("21 attempts in 2 runs"))
        .stdout(contains("code         A"))
        .stdout(contains(" 90% [ 60–"))
        .stdout(contains("unrecorded   replay (replay)"))
        .stdout(contains("code/B: holdout: status mismatch ×2"))
        .stderr(contains("metrics.jsonl:22: skipped"));
    let out = lightsout(t.path(), &["metrics", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let b = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["variant"] == "B")
        .unwrap();
    assert_eq!(b["first_attempt_pass"]["successes"], 8);
    assert_eq!(b["first_attempt_pass"]["trials"], 10);
    assert!((b["usd_per_attempt"]["median"].as_f64().unwrap() - 0.3).abs() < 1e-9);
    assert!(b["first_attempt_pass"]["wilson"]["low"].as_f64().unwrap() > 0.4);
}

#[test]
fn metrics_with_no_runs_says_so() {
    let t = tempfile::tempdir().unwrap();
    lightsout(t.path(), &["metrics"])
        .assert()
        .success()
        .stdout(contains("no attempts recorded yet"));
}

#[test]
fn tune_show_prints_posteriors_and_the_next_pick_reproducibly() {
    let mut m = String::new();
    lines(&mut m, "r1", "A", 10, 9, 1.0);
    lines(&mut m, "r1", "B", 10, 8, 0.3);
    let t = project(CONFIG, &m);
    let out = lightsout(t.path(), &["tune", "show"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("code (default A):"), "{text}");
    assert!(text.contains("(10, 2)"), "A's Beta(1 + 9, 1 + 1): {text}");
    assert!(text.contains("promotion: keep A"), "{text}");
    assert!(text.contains("next pick: code: "), "{text}");
    let again = lightsout(t.path(), &["tune", "show"]).output().unwrap();
    assert_eq!(
        String::from_utf8(again.stdout).unwrap(),
        text,
        "same evidence, same draws"
    );
    let json = lightsout(t.path(), &["tune", "show", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["kinds"][0]["arms"][1]["variant"], "B");
    assert_eq!(v["kinds"][0]["arms"][1]["alpha"], 9.0);
}

#[test]
fn tune_promote_applies_only_what_the_test_grants() {
    let mut m = String::new();
    lines(&mut m, "r1", "A", 10, 9, 1.0);
    lines(&mut m, "r1", "B", 10, 8, 0.3);
    let t = project(CONFIG, &m);
    lightsout(t.path(), &["tune", "promote"])
        .assert()
        .success()
        .stdout(contains("code: A stays the default"));
    assert!(!t.path().join(".lightsout/tuning.json").exists());
    // Much evidence that B is within the margin and far cheaper.
    let mut m = String::new();
    lines(&mut m, "r1", "A", 300, 270, 1.0);
    lines(&mut m, "r1", "B", 400, 350, 0.3);
    let t = project(CONFIG, &m);
    lightsout(t.path(), &["tune", "promote"])
        .assert()
        .success()
        .stdout(contains("code: B promoted over A"));
    let state = std::fs::read_to_string(t.path().join(".lightsout/tuning.json")).unwrap();
    assert!(state.contains("\"variant\": \"B\""), "{state}");
    lightsout(t.path(), &["tune", "show"])
        .assert()
        .success()
        .stdout(contains("code (default B):"));
}

#[test]
fn tuning_cannot_reach_the_holdout_gate_budgets_or_fence() {
    for (key, value) in [
        ("holdout", "{ trials = 1 }"),
        ("gate", "{ min_satisfaction = 0.0 }"),
        ("budget", "{ usd = 1000.0 }"),
        ("fence", "{ network = true }"),
    ] {
        let config = CONFIG.replace("seed = 3", &format!("seed = 3\n{key} = {value}"));
        let t = project(&config, "");
        lightsout(t.path(), &["tune", "show"])
            .assert()
            .code(2)
            .stderr(contains(format!("[tuning] cannot reach `{key}`")));
        // `lightsout run` reads the same file the same way.
        let out = Command::cargo_bin("lightsout")
            .unwrap()
            .current_dir(t.path())
            .args(["config", "check", "--config"])
            .arg(t.path().join("lightsout.toml"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(all.contains(&format!("cannot reach `{key}`")), "{all}");
    }
}

#[test]
fn tune_show_without_a_tuning_section_says_what_to_declare() {
    let t = project("[agent.a]\npreset = \"claude-code\"\n", "");
    lightsout(t.path(), &["tune", "show"])
        .assert()
        .code(1)
        .stderr(contains("no [tuning] section"));
}

/// A project whose `writer` profile is a replay (no model): its `propose/1.patch` writes
/// `PROMPT.md`. A holdout beside it holds a scenario with a canary.
fn proposal_project(metrics: &str) -> tempfile::TempDir {
    let config = format!(
        "{CONFIG}\n[agent.writer]\npreset = \"replay\"\ntrajectory = \"traj\"\n\n\
         [holdout]\npath = \"holdout\"\n"
    );
    let t = project(&config, metrics);
    let patch = "diff --git a/PROMPT.md b/PROMPT.md\nnew file mode 100644\n--- /dev/null\n\
                 +++ b/PROMPT.md\n@@ -0,0 +1,3 @@\n+Check the status codes first.\n+\n+{{task}}\n";
    std::fs::create_dir_all(t.path().join("traj/propose")).unwrap();
    std::fs::write(t.path().join("traj/propose/1.patch"), patch).unwrap();
    std::fs::create_dir_all(t.path().join("holdout")).unwrap();
    std::fs::write(
        t.path().join("holdout/secret.scenario.md"),
        "# Secret\n<!-- canary: ls-canary-tune-9b1e -->\n\n## Scenario: the vault answers\n\
         Satisfies: REQ-1\n\n- **GIVEN** the service is running\n- **WHEN** I send `GET /vault`\n\
         - **THEN** the status is 200\n",
    )
    .unwrap();
    t
}

#[test]
fn a_proposal_is_written_from_redacted_categories_and_waits_for_a_human() {
    let mut m = String::new();
    lines(&mut m, "r1", "A", 10, 7, 1.0);
    let t = proposal_project(&m);
    lightsout(
        t.path(),
        &["tune", "propose", "--agent", "writer", "--name", "A-terse"],
    )
    .assert()
    .success()
    .stdout(contains(
        "proposed variant A-terse (from A, written by writer)",
    ))
    .stdout(contains("lightsout tune accept A-terse"));
    let dir = t.path().join(".lightsout/tuning/proposals");
    let template = std::fs::read_to_string(dir.join("A-terse.md")).unwrap();
    assert_eq!(template, "Check the status codes first.\n\n{{task}}\n");
    // What the agent was given: the redacted categories, nothing of the holdout.
    let input = std::fs::read_to_string(dir.join("A-terse.input.md")).unwrap();
    assert!(
        input.contains("code / A: holdout: status mismatch: 3"),
        "{input}"
    );
    assert!(
        !input.contains("ls-canary-tune-9b1e") && !input.contains("vault"),
        "{input}"
    );
    // Proposed: waiting, not an arm.
    let show = |t: &tempfile::TempDir| {
        let out = lightsout(t.path(), &["tune", "show", "--format", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = show(&t);
    assert_eq!(v["waiting"], serde_json::json!(["A-terse"]));
    let arms = |v: &serde_json::Value| -> Vec<String> {
        v["kinds"][0]["arms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["variant"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(arms(&v), vec!["A", "B"]);
    lightsout(t.path(), &["tune", "accept", "A-terse"])
        .assert()
        .success()
        .stdout(contains("A-terse is ready"));
    let v = show(&t);
    assert_eq!(arms(&v), vec!["A", "B", "A-terse"]);
    lightsout(t.path(), &["tune", "accept", "nope"])
        .assert()
        .code(2)
        .stderr(contains("no proposal named `nope`"));
}

#[test]
fn holdout_text_in_the_evidence_never_reaches_the_proposing_agent() {
    // A failure category that carries the holdout's canary (as a broken redactor would).
    let mut m = String::new();
    lines(&mut m, "r1", "A", 4, 1, 1.0);
    let m = m.replace("status mismatch", "ls-canary-tune-9b1e");
    let t = proposal_project(&m);
    lightsout(t.path(), &["tune", "propose", "--agent", "writer"])
        .assert()
        .code(2)
        .stderr(contains("holds holdout text"));
    // Refused before any agent ran: no proposal was saved.
    assert!(!t.path().join(".lightsout/tuning/proposals.json").exists());
    assert!(!t.path().join(".lightsout/tuning/proposals").exists());
}

/// `lightsout metrics` and `lightsout tune show` on the bundled demo after its run (called by
/// the demo's end-to-end test in `replay.rs`, so the demo runs once): the store holds the
/// run's attempts under the variant the tuner chose, and every choice is in the audit log
/// with the seed that reproduces it.
pub(crate) fn demo_metrics_and_tuner(repo: &Path, run: &str) {
    let out = lightsout(repo, &["metrics", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let g = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "code" && g["variant"] == "replay")
        .unwrap_or_else(|| panic!("no code/replay group: {v:#}"));
    assert!(
        g["attempts"].as_u64().unwrap() > g["tasks"].as_u64().unwrap(),
        "{g:#}"
    );
    assert!(
        g["first_attempt_pass"]["trials"].as_u64().unwrap() > 0,
        "{g:#}"
    );
    lightsout(repo, &["metrics"])
        .assert()
        .success()
        .stdout(contains("code         replay"));
    lightsout(repo, &["tune", "show"])
        .assert()
        .success()
        .stdout(contains("code (default replay):"))
        .stdout(contains("next pick: code: replay"));
    // The report shows the choices.
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo.join(".lightsout/runs").join(run).join("report.json")).unwrap(),
    )
    .unwrap();
    let vc = &report["variant_choices"];
    assert!(!vc["choices"].as_array().unwrap().is_empty(), "{vc:#}");
    assert!(
        vc["choices"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["variant"] == "replay")
    );
    // The audit log: one variant choice per task, with why and the seed.
    let audit = std::fs::read_to_string(repo.join(".lightsout/runs").join(run).join("audit.jsonl"))
        .unwrap();
    let choices: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "variant_choice")
        .collect();
    assert!(choices.len() > 1, "no variant_choice in the audit log");
    // The run-level entry first: what reproduces the choices.
    assert!(choices[0]["task"].is_null(), "{:#}", choices[0]);
    assert!(choices[0]["details"]["seed"].is_u64(), "{:#}", choices[0]);
    for c in &choices[1..] {
        let d = &c["details"];
        assert_eq!(d["variant"], "replay", "{c:#}");
        assert_eq!(d["mode"], "exploit", "{c:#}");
        assert!(
            d["seed"].is_u64() && d["posterior_means"]["replay"].is_f64(),
            "{c:#}"
        );
    }
}
