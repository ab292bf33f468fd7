//! Traceability end to end: `lightsout run` passes the holdout's coverage (ids only) to the
//! spec check (LS103), and `report.json` / `report.html` carry requirement → scenario ids →
//! tasks → attempts → commits → gate, with the orphans both ways.

use crate::run::{Project, new_file, project, task};
use serde_json::Value;
use std::process::Output;

/// Scenario files beside the runner: the runner judges, the files say what covers what.
/// Their names and steps hold words that must never reach the spec check's output.
fn scenario(req: &str, name: &str) -> String {
    format!(
        "# {req}\n\n## Scenario: {name}\nSatisfies: {req}\n\n- **GIVEN** the service is running\n\
         - **WHEN** I send `GET /zebra-quartz-{req}`\n- **THEN** the status is 200\n"
    )
}

/// Three requirements, REQ-2 after REQ-1; scenario files cover REQ-1, REQ-2 and an unknown
/// REQ-99, none REQ-3. REQ-1's first attempt fails the holdout (a typo), its second fixes it.
fn traced_project() -> Project {
    let p = project(
        &[
            ("REQ-1", "alpha file", &[]),
            ("REQ-2", "beta file", &["REQ-1"]),
            ("REQ-3", "gamma file", &[]),
        ],
        1,
        "../holdout",
    );
    let h = p.root.join("holdout");
    std::fs::write(h.join("one.scenario.md"), scenario("REQ-1", "zebra one")).unwrap();
    std::fs::write(h.join("two.scenario.md"), scenario("REQ-2", "zebra two")).unwrap();
    std::fs::write(h.join("gone.scenario.md"), scenario("REQ-99", "zebra gone")).unwrap();
    p.holdout("REQ-1", "grep -qx alpha a.txt");
    p.holdout("REQ-2", "grep -qx beta b.txt");
    p.holdout("REQ-3", "grep -qx gamma c.txt");
    p.patch("REQ-1", 1, &new_file("a.txt", "alhpa"));
    p.patch(
        "REQ-1",
        2,
        "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-alhpa\n+alpha\n",
    );
    p.patch("REQ-2", 1, &new_file("b.txt", "beta"));
    p.patch("REQ-3", 1, &new_file("c.txt", "gamma"));
    p
}

/// REQ-3 has no holdout scenario: the spec is not ready, and the check says so by id only.
fn assert_ls103_stops_the_run_by_id_only(out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("LS103") && stderr.contains("requirement `REQ-3` has no holdout scenario"),
        "{stderr}"
    );
    assert!(!stderr.contains("REQ-1` has no holdout"), "{stderr}");
    assert!(
        !stderr.contains("zebra"),
        "scenario text reached the spec stage:\n{stderr}"
    );
}

/// `spec check --holdout` reports the same, without a run.
fn assert_spec_check_reports_the_same(p: &Project) {
    let check = assert_cmd::Command::cargo_bin("lightsout")
        .unwrap()
        .current_dir(p.repo())
        .args(["spec", "check", "specs", "--holdout"])
        .arg(p.root.join("holdout"))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let check = String::from_utf8_lossy(&check);
    assert!(
        check.contains("requirement `REQ-3` has no holdout scenario"),
        "{check}"
    );
    assert!(!check.contains("zebra"), "{check}");
}

/// --quiet (CI): the findings and the summary, no progress lines.
fn assert_quiet_prints_the_findings_and_the_summary_only(quiet: &Output) {
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(stderr.contains("--allow-not-ready"), "{stderr}");
    assert!(!stderr.contains("attempt 1 by"), "{stderr}");
    let summary = String::from_utf8_lossy(&quiet.stdout);
    assert!(summary.contains("gate:"), "{summary}");
    assert!(
        summary.contains("orphans: requirements without a holdout scenario: REQ-3; scenarios naming unknown requirements: S-"),
        "{summary}"
    );
}

/// requirement → scenario ids → tasks; returns REQ-1's scenario id.
fn assert_requirements_carry_scenario_ids_and_tasks(report: &Value) -> String {
    let req = |id: &str| {
        report["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no requirement {id}"))
            .clone()
    };
    let r1 = req("REQ-1");
    let s1 = r1["scenario_ids"].as_array().unwrap();
    assert_eq!(s1.len(), 1, "{r1}");
    assert!(s1[0].as_str().unwrap().starts_with("S-"), "{r1}");
    assert_eq!(r1["tasks"], serde_json::json!(["REQ-1"]));
    assert_eq!(req("REQ-3")["scenario_ids"], serde_json::json!([]));
    s1[0].as_str().unwrap().to_owned()
}

/// task → attempts → commits → merge commit on main
fn assert_tasks_carry_attempts_commits_and_the_merge(p: &Project, report: &Value) {
    let t1 = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "REQ-1")
        .unwrap();
    let history = t1["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{t1}");
    assert_eq!(history[0]["passed"], false);
    assert_eq!(history[0]["failed_stage"], "holdout");
    assert_eq!(history[1]["passed"], true);
    for a in history {
        let c = a["commit"].as_str().unwrap();
        p.git(&["cat-file", "-e", &format!("{c}^{{commit}}")]);
    }
    let merged = t1["merge_commit"].as_str().unwrap();
    p.git(&["merge-base", "--is-ancestor", merged, "main"]);
    let state = p.report("t1");
    assert_eq!(task(&state, "REQ-1")["merge_commit"], merged);
}

/// Orphans both ways.
fn assert_orphans_both_ways(report: &Value) {
    let o = &report["orphans"];
    assert_eq!(o["coverage_known"], true);
    assert_eq!(
        o["requirements_without_scenarios"],
        serde_json::json!(["REQ-3"])
    );
    let unknown = o["scenarios_with_unknown_requirements"].as_array().unwrap();
    assert_eq!(unknown.len(), 1, "{o}");
    assert_eq!(unknown[0]["requirements"], serde_json::json!(["REQ-99"]));
    assert_eq!(o["tasks_without_requirements"], serde_json::json!([]));
}

/// The page shows the chain, with ids (REQ-1's `scenario_id`) and no scenario text.
fn assert_the_page_shows_the_chain(p: &Project, scenario_id: &str) {
    let html = std::fs::read_to_string(p.run_dir("t1").join("report.html")).unwrap();
    assert!(html.contains("id=\"traceability\""));
    assert!(html.contains(scenario_id));
    assert!(html.contains("names REQ-99"));
    assert!(!html.contains("zebra"));
}

#[test]
fn run_turns_on_ls103_and_the_report_carries_the_chain_and_the_orphans() {
    let p = traced_project();
    let out = p.run().args(["--run-id", "t1"]).output().unwrap();
    assert_ls103_stops_the_run_by_id_only(&out);
    assert_spec_check_reports_the_same(&p);

    let quiet = p
        .run()
        .args(["--run-id", "t1", "--allow-not-ready", "--quiet"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert_quiet_prints_the_findings_and_the_summary_only(&quiet);
    let report: Value =
        serde_json::from_slice(&std::fs::read(p.run_dir("t1").join("report.json")).unwrap())
            .unwrap();
    let s1 = assert_requirements_carry_scenario_ids_and_tasks(&report);
    assert_tasks_carry_attempts_commits_and_the_merge(&p, &report);
    // → the gate
    assert!(report["gate"]["outcome"].is_string());
    assert_orphans_both_ways(&report);
    assert_the_page_shows_the_chain(&p, &s1);
}
