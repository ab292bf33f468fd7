//! End-to-end: the real `lightsout strength` binary with cosmic-ray (installed by scripts/test)
//! on a tiny Python service whose one function has 7 mutants, judged by a two-scenario holdout.

use assert_cmd::Command;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const CALC: &str = "def is_big(n):\n    return n > 100\n";

const SERVER: &str = r#"import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

from calc import is_big


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        query = parse_qs(urlsplit(self.path).query)
        body = json.dumps({"big": is_big(int(query.get("n", ["0"])[0]))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

/// Checks far from the boundary only: `>` to `>=` and 100 to 99 or 101 survive; `<`, `<=`,
/// `==` and `!=` are killed.
const HOLDOUT: &str = "# Size\n\n## Scenario: a large number is big\nSatisfies: REQ-1\n\n\
    - **WHEN** I send `GET /big?n=150`\n- **THEN** the status is 200\n\
    - **AND** the JSON at `$.big` is true\n\n\
    ## Scenario: a small number is not big\nSatisfies: REQ-1\n\n\
    - **WHEN** I send `GET /big?n=5`\n- **THEN** the JSON at `$.big` is false\n";

fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() {
            for (k, v) in tree(&e.path()) {
                out.insert(format!("{name}/{k}"), v);
            }
        } else {
            out.insert(name, std::fs::read(e.path()).unwrap());
        }
    }
    out
}

fn strength(project: &Path, holdout: &Path, extra: &[&str]) -> std::process::Output {
    Command::cargo_bin("lightsout")
        .unwrap()
        .arg("strength")
        .arg(project)
        .arg("--scenarios")
        .arg(holdout)
        .args(["--target", "python3 server.py {port}", "--path", "calc.py"])
        .args(["--format", "json", "--timeout", "30", "--jobs", "2"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn strength_counts_kills_and_names_survivors_without_touching_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let (project, holdout) = (dir.path().join("svc"), dir.path().join("holdout"));
    std::fs::create_dir_all(&project).unwrap();
    std::fs::create_dir_all(&holdout).unwrap();
    std::fs::write(project.join("calc.py"), CALC).unwrap();
    std::fs::write(project.join("server.py"), SERVER).unwrap();
    std::fs::write(holdout.join("big.scenario.md"), HOLDOUT).unwrap();
    let before = tree(&project);

    let out = strength(&project, &holdout, &["--min-kill-rate", "0.5"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("7/7 mutants"),
        "progress on stderr: {stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["tool"], "cosmic-ray");
    assert_eq!(report["total"], 7);
    assert_eq!(report["killed"], 4, "{report:#}");
    assert_eq!(report["survived"], 3, "{report:#}");
    let rate = report["kill_rate"].as_f64().unwrap();
    assert!((rate - 4.0 / 7.0).abs() < 1e-9);
    let survivors: Vec<&Value> = report["mutants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] == "survived")
        .collect();
    assert_eq!(survivors.len(), 3);
    for s in &survivors {
        assert_eq!(s["file"], "calc.py");
        assert_eq!(s["line"], 2);
        assert!(s["operator"].as_str().unwrap().starts_with("core/"));
    }
    assert!(
        survivors
            .iter()
            .any(|s| s["operator"] == "core/ReplaceComparisonOperator_Gt_GtE")
    );
    assert_eq!(tree(&project), before, "the user's tree was modified");

    // The same measurement against a higher bar exits 1; the text table names the survivor.
    let out = strength(&project, &holdout, &["--min-kill-rate", "0.6"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("below --min-kill-rate"));
    assert_eq!(tree(&project), before);
}

#[test]
fn strength_refuses_a_holdout_that_fails_the_unmutated_build() {
    let dir = tempfile::tempdir().unwrap();
    let (project, holdout) = (dir.path().join("svc"), dir.path().join("holdout"));
    std::fs::create_dir_all(&project).unwrap();
    std::fs::create_dir_all(&holdout).unwrap();
    std::fs::write(
        project.join("calc.py"),
        "def is_big(n):\n    return n < 100\n",
    )
    .unwrap();
    std::fs::write(project.join("server.py"), SERVER).unwrap();
    std::fs::write(holdout.join("big.scenario.md"), HOLDOUT).unwrap();
    let out = strength(&project, &holdout, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not pass on the unmutated build"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A project from `lightsout init greeter` whose service is `SERVER` + `CALC` (committed before
/// the run; the replay agent only adds notes), built by `lightsout run` with the eval engine,
/// and judged by `holdout` (scenario text). `gate` is added to the spec's `## Verification gate`.
struct Project {
    _tmp: tempfile::TempDir,
    repo: std::path::PathBuf,
}

/// Scenarios far from the boundary (4 of the 7 mutants of `CALC` killed).
const WEAK: &str = "## Scenario: a large number is big\nSatisfies: REQ-1\n\n\
    - **WHEN** I send `GET /big?n=150`\n- **THEN** the JSON at `$.big` is true\n\n\
    ## Scenario: a small number is not big\nSatisfies: REQ-2\n\n\
    - **WHEN** I send `GET /big?n=5`\n- **THEN** the JSON at `$.big` is false\n";

/// `WEAK` and the boundary: all 7 killed.
const STRONG: &str = "## Scenario: a large number is big\nSatisfies: REQ-1\n\n\
    - **WHEN** I send `GET /big?n=150`\n- **THEN** the JSON at `$.big` is true\n\n\
    ## Scenario: just above the boundary is big\nSatisfies: REQ-1\n\n\
    - **WHEN** I send `GET /big?n=101`\n- **THEN** the JSON at `$.big` is true\n\n\
    ## Scenario: a small number is not big\nSatisfies: REQ-2\n\n\
    - **WHEN** I send `GET /big?n=5`\n- **THEN** the JSON at `$.big` is false\n\n\
    ## Scenario: the boundary is not big\nSatisfies: REQ-2\n\n\
    - **WHEN** I send `GET /big?n=100`\n- **THEN** the JSON at `$.big` is false\n";

fn lightsout(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("lightsout").unwrap();
    c.current_dir(dir).env_remove("LIGHTSOUT_HOLDOUT");
    c
}

fn new_file(path: &str, line: &str) -> String {
    format!(
        "diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+{line}\n"
    )
}

impl Project {
    fn new(gate: &str, holdout: &str) -> Project {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        lightsout(&root)
            .args(["init", "greeter"])
            .assert()
            .success();
        let repo = root.join("greeter");
        let spec = repo.join("specs/greeter.md");
        let mut text = std::fs::read_to_string(&spec).unwrap();
        for (from, to) in crate::init::FILL {
            text = text.replace(from, to);
        }
        text = text.replace(
            "## Verification gate\n",
            &format!("## Verification gate\n{gate}"),
        );
        std::fs::write(&spec, text).unwrap();
        let config = std::fs::read_to_string(repo.join("lightsout.toml"))
            .unwrap()
            .replace("default = \"claude\"", "default = \"replay\"")
            .replace("# [agent.replay]", "[agent.replay]")
            .replace("# preset = \"replay\"", "preset = \"replay\"")
            .replace(
                "# trajectory = \"trajectory\"",
                "trajectory = \"../trajectory\"",
            )
            .replace("# [target]", "[target]")
            .replace(
                "# command = \"python3 app.py --port {port}\"",
                "command = \"PYTHONDONTWRITEBYTECODE=1 python3 server.py {port}\"",
            )
            .replace("# ready_path = \"/healthz\"", "ready_path = \"/big?n=1\"")
            .replace("# ready_timeout_ms = 30000", "ready_timeout_ms = 10000");
        // Only calc.py is mutated (7 mutants); each judged in under a second.
        let config = format!("{config}\n[strength]\npaths = [\"calc.py\"]\ntimeout_s = 30\n");
        std::fs::write(repo.join("lightsout.toml"), config).unwrap();
        std::fs::write(repo.join("calc.py"), CALC).unwrap();
        std::fs::write(repo.join("server.py"), SERVER).unwrap();
        let hold = root.join("greeter-holdout");
        std::fs::remove_file(hold.join("example.scenario.md")).unwrap();
        std::fs::write(hold.join("big.scenario.md"), holdout).unwrap();
        let traj = root.join("trajectory");
        for (task, patch) in [
            ("REQ-1", new_file("notes/one.txt", "one")),
            ("REQ-2", new_file("notes/two.txt", "two")),
        ] {
            std::fs::create_dir_all(traj.join(task)).unwrap();
            std::fs::write(traj.join(task).join("1.patch"), patch).unwrap();
        }
        let git = |args: &[&str]| lightsout_factory::testing::git(&repo, args);
        git(&["init", "-q", "-b", "main"]);
        git(&["add", "-A"]);
        git(&["commit", "-qm", "init"]);
        Project { _tmp: tmp, repo }
    }

    fn report(&self, run: &str) -> Value {
        let path = self
            .repo
            .join(".lightsout/runs")
            .join(run)
            .join("report.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }
}

/// A spec line asking for strength: the Wilson lower bound of the kill rate must reach 0.6
/// (7 of 7 killed give 0.646; 4 of 7 is a kill rate of 0.571).
const STRENGTH_RULE: &str =
    "- Holdout strength: the Wilson lower bound of mutants killed is at least 0.6.\n";

#[test]
fn a_min_strength_rule_fails_a_weak_holdout_and_passes_a_strong_one_under_run() {
    let weak = Project::new(STRENGTH_RULE, WEAK);
    lightsout(&weak.repo)
        .args(["spec", "check", "specs/greeter.md"])
        .assert()
        .success();
    let out = lightsout(&weak.repo)
        .args(["run", "--run-id", "weak"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("gate: FAIL"), "{stdout}");
    assert!(
        stdout.contains("strength: 4 of 7 mutants killed"),
        "{stdout}"
    );
    let report = weak.report("weak");
    assert_eq!(report["gate"]["outcome"], "fail", "{}", report["gate"]);
    let reasons = report["gate"]["reasons"].to_string();
    assert!(
        reasons.contains("Holdout strength") && reasons.contains("below 0.6"),
        "{reasons}"
    );
    let rule = report["gate"]["policy"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"].as_str().unwrap().contains("Holdout strength"))
        .unwrap_or_else(|| panic!("{}", report["gate"]["policy"]));
    assert!(
        rule["source"]
            .as_str()
            .unwrap()
            .starts_with("spec specs/greeter.md:"),
        "{rule}"
    );
    let st = &report["strength"];
    assert_eq!(st["killed"]["passes"], 4, "{st}");
    assert_eq!(st["killed"]["trials"], 7, "{st}");
    let survivors = st["survivors"].as_array().unwrap();
    assert_eq!(survivors.len(), 3);
    assert!(
        survivors
            .iter()
            .all(|s| s["file"] == "calc.py" && s["line"] == 2)
    );
    let html = std::fs::read_to_string(weak.repo.join(".lightsout/runs/weak/report.html")).unwrap();
    assert!(
        html.contains("id=\"strength\"") && html.contains("core/ReplaceComparisonOperator_Gt_GtE")
    );
    // The survivors stay with the run's hidden results: nothing an agent saw names them.
    let journal =
        std::fs::read_to_string(weak.repo.join(".lightsout/runs/weak/journal.jsonl")).unwrap();
    assert!(!journal.contains("ReplaceComparisonOperator"), "{journal}");
    assert!(
        weak.repo
            .join(".lightsout/runs/weak/eval/strength.json")
            .is_file()
    );
    assert!(
        !weak
            .repo
            .join(".lightsout/runs/weak/strength-work")
            .exists(),
        "the mutant copies are removed"
    );

    let strong = Project::new(STRENGTH_RULE, STRONG);
    let out = lightsout(&strong.repo)
        .args(["run", "--run-id", "strong"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = strong.report("strong");
    assert_eq!(report["gate"]["outcome"], "pass", "{}", report["gate"]);
    assert_eq!(report["strength"]["killed"]["passes"], 7);
    assert!(
        report["gate"]["reasons"]
            .to_string()
            .contains("held: Holdout strength"),
        "{}",
        report["gate"]["reasons"]
    );
    lightsout(&strong.repo)
        .args(["report", "strong"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "strength: 7 of 7 mutants killed (100.0%",
        ));
}

#[test]
fn strength_report_adds_the_figure_to_a_finished_run() {
    // No strength rule and no --strength: the run does not measure it.
    let p = Project::new("", STRONG);
    lightsout(&p.repo)
        .args(["run", "--run-id", "r1"])
        .assert()
        .success()
        .stdout(predicates::str::contains("strength: not measured"));
    assert!(p.report("r1").get("strength").is_none());
    let holdout = p.repo.parent().unwrap().join("greeter-holdout");
    let out = lightsout(&p.repo)
        .arg("strength")
        .arg(".")
        .arg("--scenarios")
        .arg(&holdout)
        .args(["--report", "r1", "--format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("strength: 7 of 7 mutants killed"),
        "{stderr}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let head = lightsout_factory::testing::git(&p.repo, &["rev-parse", "HEAD"]);
    assert_eq!(doc["build"], head.trim(), "the committed main was measured");
    let report = p.report("r1");
    assert_eq!(report["strength"]["killed"]["passes"], 7);
    assert_eq!(report["strength"]["build"], head.trim());
    assert_eq!(report["gate"]["outcome"], "pass");
    lightsout(&p.repo)
        .args(["report", "r1"])
        .assert()
        .success()
        .stdout(predicates::str::contains("strength: 7 of 7 mutants killed"));
}
