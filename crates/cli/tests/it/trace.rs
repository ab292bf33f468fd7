//! Traceability end to end: `lightsout run` passes the holdout's coverage (ids only) to the
//! spec check (LS103), and `report.json` / `report.html` carry requirement → scenario ids →
//! tasks → attempts → commits → gate, with the orphans both ways.

use crate::run::{new_file, project, task};
use serde_json::Value;

/// Scenario files beside the runner: the runner judges, the files say what covers what.
/// Their names and steps hold words that must never reach the spec check's output.
fn scenario(req: &str, name: &str) -> String {
    format!(
        "# {req}\n\n## Scenario: {name}\nSatisfies: {req}\n\n- **GIVEN** the service is running\n\
         - **WHEN** I send `GET /zebra-quartz-{req}`\n- **THEN** the status is 200\n"
    )
}

#[test]
fn run_turns_on_ls103_and_the_report_carries_the_chain_and_the_orphans() {
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

    // REQ-3 has no holdout scenario: the spec is not ready, and the check says so by id only.
    let out = p.run().args(["--run-id", "t1"]).output().unwrap();
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
    // `spec check --holdout` reports the same, without a run.
    let check = assert_cmd::Command::cargo_bin("lightsout")
        .unwrap()
        .current_dir(p.repo())
        .args(["spec", "check", "specs", "--holdout"])
        .arg(&h)
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

    // --quiet (CI): the findings and the summary, no progress lines.
    let quiet = p
        .run()
        .args(["--run-id", "t1", "--allow-not-ready", "--quiet"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(stderr.contains("--allow-not-ready"), "{stderr}");
    assert!(!stderr.contains("attempt 1 by"), "{stderr}");
    let summary = String::from_utf8_lossy(&quiet.stdout);
    assert!(summary.contains("gate:"), "{summary}");
    assert!(
        summary.contains("orphans: requirements without a holdout scenario: REQ-3; scenarios naming unknown requirements: S-"),
        "{summary}"
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(p.run_dir("t1").join("report.json")).unwrap())
            .unwrap();
    let req = |id: &str| {
        report["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no requirement {id}"))
            .clone()
    };
    // requirement → scenario ids → tasks
    let r1 = req("REQ-1");
    let s1 = r1["scenario_ids"].as_array().unwrap();
    assert_eq!(s1.len(), 1, "{r1}");
    assert!(s1[0].as_str().unwrap().starts_with("S-"), "{r1}");
    assert_eq!(r1["tasks"], serde_json::json!(["REQ-1"]));
    assert_eq!(req("REQ-3")["scenario_ids"], serde_json::json!([]));
    // task → attempts → commits → merge commit on main
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
    // → the gate
    assert!(report["gate"]["outcome"].is_string());
    // Orphans both ways.
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
    // The page shows the chain, with ids and no scenario text.
    let html = std::fs::read_to_string(p.run_dir("t1").join("report.html")).unwrap();
    assert!(html.contains("id=\"traceability\""));
    assert!(html.contains(s1[0].as_str().unwrap()));
    assert!(html.contains("names REQ-99"));
    assert!(!html.contains("zebra"));
}
