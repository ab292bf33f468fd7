//! End-to-end tests of the one gate: `lightsout run` on a project made by `lightsout init`
//! judges with the spec's gate, `[gate]`, the holdout's `gate.toml` and the floor, runs the
//! trials the rules ask for, refuses specs that are not ready, and treats a service that does not
//! start as a failed attempt. `lightsout eval` fails a flaky scenario however good the average.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn lightsout(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("lightsout").unwrap();
    c.current_dir(dir).env_remove("LIGHTSOUT_HOLDOUT");
    c
}

fn git(dir: &Path, args: &[&str]) -> String {
    lightsout_factory::testing::git(dir, args)
}

/// A patch that adds `path` with one line.
fn new_file(path: &str, line: &str) -> String {
    format!(
        "diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+{line}\n"
    )
}

/// A project from `lightsout init greeter`, its spec filled in as a user would, a replay agent,
/// the built-in eval engine serving the worktree with `python3 -m http.server`, and a holdout
/// with one `@critical` scenario per requirement.
struct Init {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Init {
    fn new(extra_gate: &str, fill: bool) -> Init {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        lightsout(&root).args(["init", "greeter"]).assert().success();
        let repo = root.join("greeter");
        let spec = repo.join("specs/greeter.md");
        let mut text = std::fs::read_to_string(&spec).unwrap();
        if fill {
            for (from, to) in crate::init::FILL {
                text = text.replace(from, to);
            }
        }
        text = text.replace(
            "## Verification gate\n",
            &format!("## Verification gate\n{extra_gate}"),
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
                "command = \"python3 -m http.server {port} --bind 127.0.0.1\"",
            )
            .replace("# ready_path = \"/healthz\"", "ready_path = \"/\"")
            .replace("# ready_timeout_ms = 30000", "ready_timeout_ms = 10000");
        std::fs::write(repo.join("lightsout.toml"), config).unwrap();
        let holdout = root.join("greeter-holdout");
        std::fs::remove_file(holdout.join("example.scenario.md")).unwrap();
        std::fs::write(
            holdout.join("greeter.scenario.md"),
            "## Scenario: health answers\nSatisfies: REQ-1\nTags: @critical\n\n\
             - **WHEN** I send `GET /healthz`\n- **THEN** the status is 200\n\n\
             ## Scenario: Ada is greeted\nSatisfies: REQ-2\n\n\
             - **WHEN** I send `GET /hello/Ada`\n- **THEN** the status is 200\n",
        )
        .unwrap();
        let traj = root.join("trajectory");
        for (task, patch) in [
            ("REQ-1", new_file("healthz", "ok")),
            ("REQ-2", new_file("hello/Ada", "Hello, Ada!")),
        ] {
            std::fs::create_dir_all(traj.join(task)).unwrap();
            std::fs::write(traj.join(task).join("1.patch"), patch).unwrap();
        }
        git(&repo, &["init", "-q", "-b", "main"]);
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-qm", "init"]);
        Init { _tmp: tmp, root }
    }

    fn repo(&self) -> PathBuf {
        self.root.join("greeter")
    }

    fn run_dir(&self, id: &str) -> PathBuf {
        self.repo().join(".lightsout/runs").join(id)
    }

    fn json(&self, path: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }
}

#[test]
fn a_spec_gate_needing_16_trials_gets_16_under_run_and_the_report_says_where_it_came_from() {
    // 0.8 is reached by k of k trials only from k = 16 (16 / 19.84 = 0.806).
    let p = Init::new(
        "- Every @critical scenario has a Wilson lower bound of at least 0.8.\n",
        true,
    );
    lightsout(&p.repo())
        .args(["spec", "check", "specs/greeter.md"])
        .assert()
        .success();
    lightsout(&p.repo())
        .args(["run", "--run-id", "g16"])
        .assert()
        .code(0);
    let eval = p.json(&p.run_dir("g16").join("eval/REQ-1-1-candidate.json"));
    let critical = &eval["scenarios"][0];
    assert_eq!(critical["tags"][0], "@critical");
    assert!(
        critical["stats"]["trials"].as_u64().unwrap() >= 16,
        "{}",
        critical["stats"]
    );
    // The untagged scenario runs the default trials, as the floor and the spec ask nothing more.
    let eval2 = p.json(&p.run_dir("g16").join("eval/REQ-2-1-candidate.json"));
    let plain = eval2["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["satisfies"][0] == "REQ-2")
        .unwrap();
    assert!(plain["stats"]["trials"].as_u64().unwrap() >= 5);
    // The report lists the resolved policy with where each rule came from.
    let report = p.json(&p.run_dir("g16").join("report.json"));
    assert_eq!(report["gate"]["outcome"], "pass", "{}", report["gate"]);
    let policy = report["gate"]["policy"].as_array().unwrap();
    let rule = policy
        .iter()
        .find(|r| r["rule"].as_str().unwrap().contains("@critical"))
        .unwrap_or_else(|| panic!("no @critical rule in {policy:?}"));
    assert_eq!(rule["trials"], 16);
    assert!(
        rule["source"]
            .as_str()
            .unwrap()
            .starts_with("spec specs/greeter.md:"),
        "{rule}"
    );
    assert!(policy.iter().any(|r| r["source"] == "floor"));
    let html = std::fs::read_to_string(p.run_dir("g16").join("report.html")).unwrap();
    assert!(html.contains("Resolved gate policy") && html.contains("spec specs/greeter.md:"));
}

#[test]
fn a_not_ready_spec_stops_the_run_unless_allowed_and_then_the_report_says_so() {
    // The template as `init` wrote it: its placeholders are LS205 errors.
    let p = Init::new("", false);
    lightsout(&p.repo())
        .args(["run", "--run-id", "nr"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("LS205")
                .and(predicate::str::contains("--allow-not-ready")),
        );
    assert!(!p.run_dir("nr").exists(), "nothing was built");
    let out = lightsout(&p.repo())
        .args(["run", "--run-id", "nr", "--allow-not-ready"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not ready"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = p.json(&p.run_dir("nr").join("report.json"));
    let findings = report["not_ready"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f.as_str().unwrap().contains("LS205")),
        "{findings:?}"
    );
    let html = std::fs::read_to_string(p.run_dir("nr").join("report.html")).unwrap();
    assert!(html.contains("id=\"not-ready\"") && html.contains("--allow-not-ready"));
    // `lightsout report` says it too.
    lightsout(&p.repo())
        .args(["report", "nr"])
        .assert()
        .stdout(predicate::str::contains("NOT READY"));
}

#[test]
fn a_service_that_does_not_start_is_a_failed_attempt_and_the_agent_tries_again() {
    let p = Init::new("", true);
    // The first attempt's service exits at once; the second one serves.
    let config = std::fs::read_to_string(p.repo().join("lightsout.toml"))
        .unwrap()
        .replace(
            "command = \"python3 -m http.server {port} --bind 127.0.0.1\"",
            "command = \"test -f broken && exit 1; python3 -m http.server {port} --bind 127.0.0.1\"",
        )
        .replace("ready_timeout_ms = 10000", "ready_timeout_ms = 3000");
    std::fs::write(p.repo().join("lightsout.toml"), config).unwrap();
    git(&p.repo(), &["commit", "-qam", "a start command that can fail"]);
    let traj = p.root.join("trajectory/REQ-1");
    std::fs::write(
        traj.join("1.patch"),
        format!("{}{}", new_file("healthz", "ok"), new_file("broken", "yes")),
    )
    .unwrap();
    std::fs::write(
        traj.join("2.patch"),
        "diff --git a/broken b/broken\ndeleted file mode 100644\n--- a/broken\n+++ /dev/null\n@@ -1 +0,0 @@\n-yes\n",
    )
    .unwrap();
    lightsout(&p.repo())
        .args(["run", "--run-id", "ns"])
        .assert()
        .code(0);
    let state = p.json(&p.run_dir("ns").join("state.json"));
    let task = state["run"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"]["id"] == "REQ-1")
        .unwrap();
    let attempts = task["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0]["failed_stage"], "holdout");
    let fb = attempts[0]["feedback"].as_str().unwrap();
    assert!(
        fb.contains("did not start or answer its readiness probe within 3 s"),
        "{fb}"
    );
    assert_eq!(task["status"], "merged");
}

#[test]
fn a_flaky_scenario_fails_the_gate_however_good_the_average() {
    // Every third request lacks the header: 30% wrong. Ten other scenarios pass every trial, so
    // the suite's mean satisfaction is far above the floor's 0.95; judged on its own, it fails.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("app.py"),
        "import http.server, sys\n\
         n = 0\n\
         class H(http.server.BaseHTTPRequestHandler):\n\
         \x20   def do_GET(self):\n\
         \x20       global n\n\
         \x20       n += 1\n\
         \x20       self.send_response(200)\n\
         \x20       if self.path != '/flaky' or n % 3:\n\
         \x20           self.send_header('X-Trace', 'yes')\n\
         \x20       self.send_header('Content-Length', '2')\n\
         \x20       self.end_headers()\n\
         \x20       self.wfile.write(b'ok')\n\
         \x20   def log_message(self, *a):\n\
         \x20       pass\n\
         http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n",
    )
    .unwrap();
    let suite = tmp.path().join("suite");
    std::fs::create_dir(&suite).unwrap();
    let mut text = String::new();
    for i in 0..10 {
        text.push_str(&format!(
            "## Scenario: steady {i}\nSatisfies: REQ-1\n\n- **WHEN** I send `GET /steady/{i}`\n\
             - **THEN** the status is 200\n- **AND** the header `X-Trace` contains `yes`\n\n"
        ));
    }
    text.push_str(
        "## Scenario: traced\nSatisfies: REQ-2\n\n- **WHEN** I send `GET /flaky`\n\
         - **THEN** the status is 200\n- **AND** the header `X-Trace` contains `yes`\n",
    );
    std::fs::write(suite.join("s.scenario.md"), text).unwrap();
    let out = lightsout(tmp.path())
        .args(["eval", "--scenarios"])
        .arg(&suite)
        .args(["--target", "python3 app.py {port}", "--trials", "5"])
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(run["summary"]["satisfaction"].as_f64().unwrap() > 0.95, "{}", run["summary"]);
    assert_eq!(run["gate"]["status"], "failed");
    let reasons = run["gate"]["reasons"].to_string();
    assert!(reasons.contains("FLAKY") && reasons.contains("REQ-2"), "{reasons}");
    assert!(reasons.contains("\"source\":\"floor\""), "{reasons}");
}
