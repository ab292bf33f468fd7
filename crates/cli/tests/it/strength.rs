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
