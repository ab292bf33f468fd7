//! End-to-end tests of `lightsout replay`: a run judged by the eval engine against a service
//! that calls the Slack twin, replayed offline from its recorded commits and twin tapes.

use crate::run::{CANARY, Project, project};
use assert_cmd::Command;
use serde_json::Value;

/// The service: `GET /notify` posts to the Slack twin when `flag.txt` says `on`, and answers
/// whether Slack said `ok`.
const APP: &str = r#"import http.server, json, os, sys, urllib.request
SLACK = os.environ.get("LIGHTSOUT_TWIN_SLACK_URL", "")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/notify":
            return self.reply(200, b"up")
        ok = False
        if open("flag.txt").read().strip() == "on":
            req = urllib.request.Request(SLACK + "/api/chat.postMessage",
                data=json.dumps({"channel": "C0GENERAL1", "text": "hello"}).encode(),
                headers={"Content-Type": "application/json", "Authorization": "Bearer xoxb-twin-bot"})
            try:
                with urllib.request.urlopen(req) as r:
                    ok = json.load(r).get("ok") is True
            except Exception:
                ok = False
        self.reply(200, json.dumps({"notified": ok}).encode())
    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

fn new_file(path: &str, text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut s = format!(
        "diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{} @@\n",
        lines.len()
    );
    for l in lines {
        s.push('+');
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// One task, REQ-1: its first attempt never notifies (the holdout fails it), its second
/// does; then it merges. Three evaluations: two candidates and the merged result.
fn notifying_project() -> Project {
    let p = project(&[("REQ-1", "slack notice", &[])], 1, "../holdout");
    std::fs::write(
        p.repo().join("lightsout.toml"),
        "[run]\njobs = 1\nattempts = 3\n\n[agents]\ndefault = \"replay\"\n\n\
         [agent.replay]\npreset = \"replay\"\ntrajectory = \"../trajectory\"\n\n\
         [holdout]\npath = \"../holdout\"\ntrials = 3\n\n\
         [target]\ncommand = \"python3 app.py {port}\"\n\n\
         [twins]\nslack = \"builtin\"\n",
    )
    .unwrap();
    // The spec names the Slack call and the answer, so the agent's diff may carry them
    // (the leak scanner allows what the visible spec says).
    let spec = p.repo().join("specs/demo.md");
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "Write a few files.",
        "Write a few files. `GET /notify` posts to Slack's `POST /api/chat.postMessage` \
         (from `LIGHTSOUT_TWIN_SLACK_URL`) and answers `{\"notified\": true}` when Slack \
         said ok.",
    );
    std::fs::write(&spec, text).unwrap();
    p.commit_all("config");
    std::fs::write(
        p.root.join("holdout/notify.scenario.md"),
        format!(
            "<!-- canary: {CANARY} -->\n## Scenario: a notice reaches Slack\nSatisfies: REQ-1\n\n\
             - **WHEN** I send `GET /notify`\n- **THEN** the status is 200\n\
             - **AND** the body contains `\"notified\": true`\n\
             - **AND** twin `slack` received 1 requests to `POST /api/chat.postMessage`\n"
        ),
    )
    .unwrap();
    let t = p.root.join("trajectory/REQ-1");
    std::fs::create_dir_all(&t).unwrap();
    let mut first = new_file("app.py", APP);
    first.push_str(&new_file("flag.txt", "off"));
    std::fs::write(t.join("1.patch"), first).unwrap();
    std::fs::write(
        t.join("2.patch"),
        "diff --git a/flag.txt b/flag.txt\n--- a/flag.txt\n+++ b/flag.txt\n@@ -1 +1 @@\n-off\n+on\n",
    )
    .unwrap();
    p.run().args(["--run-id", "r1"]).assert().code(0);
    p
}

fn replay(p: &Project) -> (i32, Value) {
    replay_json(&p.repo(), "r1")
}

/// `lightsout replay RUN --format json` in `repo` (the holdout where its config says, and
/// `LIGHTSOUT_BIN` for a runner that calls `lightsout`, and the lightened example's
/// `LIGHTSOUT_TRIALS`): the exit code and the report.
fn replay_json(repo: &std::path::Path, run: &str) -> (i32, Value) {
    let out = Command::cargo_bin("lightsout")
        .unwrap()
        .current_dir(repo)
        .env_remove("LIGHTSOUT_HOLDOUT")
        .env("LIGHTSOUT_BIN", assert_cmd::cargo::cargo_bin("lightsout"))
        .env("LIGHTSOUT_TRIALS", crate::LIGHT_TRIALS)
        .args(["replay", run, "--format", "json"])
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), json)
}

fn record(p: &Project, name: &str) -> std::path::PathBuf {
    p.run_dir("r1").join("eval/replay").join(name)
}

#[test]
fn a_finished_run_replays_offline_to_the_same_verdict() {
    let p = notifying_project();
    let worktrees = p.git(&["worktree", "list"]);
    // The run kept what replay needs: the commit judged and the twin's exchanges.
    let rec: Value =
        serde_json::from_slice(&std::fs::read(record(&p, "REQ-1-2-candidate.json")).unwrap())
            .unwrap();
    let tape = rec["twins"]["slack"]["tape"]["exchanges"]
        .as_array()
        .unwrap();
    assert_eq!(tape.len(), 3, "one notice per trial: {rec}");
    assert_eq!(tape[0]["request"]["path"], "/api/chat.postMessage");
    assert_eq!(tape[0]["response"]["body"]["ok"], true);

    let (code, out) = replay(&p);
    assert_eq!(code, 0, "{out:#}");
    assert_eq!(out["verdict"], "same");
    let steps: Vec<(String, String)> = out["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                format!("{}-{}", s["stage"].as_str().unwrap(), s["attempt"]),
                s["decision"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("candidate-1".to_owned(), "failed the holdout".to_owned()),
            ("candidate-2".to_owned(), "passed the holdout".to_owned()),
            ("merged-2".to_owned(), "merge".to_owned()),
        ]
    );
    // Holdout discipline: everything the replay wrote is under the run's hidden eval/, and
    // it left no worktree and no change in the repository.
    let out_dir = std::path::PathBuf::from(out["out_dir"].as_str().unwrap());
    assert!(
        out_dir.starts_with(p.run_dir("r1").join("eval")),
        "{out_dir:?}"
    );
    assert!(out_dir.join("replay.json").is_file());
    assert!(!p.run_dir("r1").join("replay-work").exists());
    assert_eq!(p.git(&["worktree", "list"]), worktrees);
    assert_eq!(p.git(&["status", "--porcelain"]), "");
}

#[test]
fn a_changed_twin_response_is_the_first_difference_and_a_missing_record_is_named() {
    let p = notifying_project();
    let path = record(&p, "REQ-1-2-candidate.json");
    let original = std::fs::read(&path).unwrap();
    let mut rec: Value = serde_json::from_slice(&original).unwrap();
    rec["twins"]["slack"]["tape"]["exchanges"][0]["response"]["body"] =
        serde_json::json!({"ok": false, "error": "channel_not_found"});
    std::fs::write(&path, serde_json::to_vec(&rec).unwrap()).unwrap();

    let (code, out) = replay(&p);
    assert_eq!(code, 1, "{out:#}");
    assert_eq!(out["verdict"], "differs");
    let d = &out["difference"];
    assert_eq!(d["step"]["step"], 2, "{d:#}");
    assert_eq!(d["step"]["stage"], "candidate");
    assert!(
        d["what"].as_str().unwrap().starts_with("scenario `"),
        "{d:#}"
    );
    assert!(
        d["recorded"].as_str().unwrap().starts_with("passed"),
        "{d:#}"
    );
    assert!(
        d["replayed"].as_str().unwrap().starts_with("failed"),
        "{d:#}"
    );

    // For people: the step, then both sides.
    let human = Command::cargo_bin("lightsout")
        .unwrap()
        .current_dir(p.repo())
        .env_remove("LIGHTSOUT_HOLDOUT")
        .args(["replay", "r1"])
        .output()
        .unwrap();
    assert_eq!(human.status.code(), Some(1));
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("differs at step 2 (REQ-1 attempt 2 candidate): scenario `"),
        "{text}"
    );
    assert!(text.contains("  run:    passed"), "{text}");
    assert!(text.contains("  replay: failed"), "{text}");

    // A holdout edited since the run is not the one the run judged with.
    std::fs::write(&path, &original).unwrap();
    let scenario = p.root.join("holdout/notify.scenario.md");
    let text = std::fs::read_to_string(&scenario).unwrap();
    std::fs::write(&scenario, format!("{text}\n")).unwrap();
    let (code, out) = replay(&p);
    assert_eq!(code, 2, "{out:#}");
    assert!(
        out["missing"].as_str().unwrap().contains("changed since"),
        "{out:#}"
    );
    std::fs::write(&scenario, text).unwrap();

    // Without the record of an evaluation, the run cannot be replayed, and replay says why.
    std::fs::remove_file(&path).unwrap();
    let (code, out) = replay(&p);
    assert_eq!(code, 2, "{out:#}");
    assert_eq!(out["verdict"], "unreplayable");
    assert!(
        out["missing"]
            .as_str()
            .unwrap()
            .contains("REQ-1-2-candidate.json"),
        "{out:#}"
    );
}

/// The bundled example, set up as `scripts/demo` sets it up but with a lighter gate
/// ([`crate::lightened_example`]), built by `lightsout run` with its replay agent; the
/// holdout is judged by the example's runner (`[holdout] command = "sh run.sh"`), which serves
/// the built-in Slack twin itself.
fn bundled_example_run() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _holdout) = crate::lightened_example(dir.path());
    let bin = assert_cmd::cargo::cargo_bin("lightsout");
    let out = Command::cargo_bin("lightsout")
        .unwrap()
        .current_dir(&repo)
        .env_remove("LIGHTSOUT_HOLDOUT")
        .env("LIGHTSOUT_BIN", &bin)
        .env("LIGHTSOUT_TRIALS", crate::LIGHT_TRIALS)
        .args([
            "run",
            "specs/url-shortener.md",
            "--run-id",
            "demo",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, repo)
}

#[test]
fn the_bundled_example_replays_offline_to_the_same_verdict_and_names_a_changed_result() {
    let _example = crate::bundled_example_lock();
    let (_dir, repo) = bundled_example_run();
    // The single-machine run built what the trajectory builds: the tree the fleet e2e
    // (`fleet_remote`) also checks its main against.
    let root = lightsout_factory::testing::git(&repo, &["rev-list", "--max-parents=0", "main"]);
    assert_eq!(
        lightsout_factory::testing::git(&repo, &["rev-parse", "main^{tree}"]),
        crate::trajectory_tree(&repo, root.trim()),
        "main after a single-machine run of the example"
    );
    // The same run serves the tuner's end-to-end checks (one demo run, not two).
    crate::tune::demo_metrics_and_tuner(&repo, "demo");
    let records = repo.join(".lightsout/runs/demo/eval/replay");
    let (code, out) = replay_json(&repo, "demo");
    assert_eq!(code, 0, "{out:#}");
    assert_eq!(out["verdict"], "same", "{out:#}");
    let steps = out["steps"].as_array().unwrap();
    // Every evaluation the run made was replayed: one record each, all judged by the runner.
    let mut names: Vec<String> = std::fs::read_dir(&records)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(steps.len(), names.len(), "{names:?} {out:#}");
    assert!(
        steps.iter().any(|s| s["decision"] == "failed the holdout"),
        "the example's first attempts fail the holdout: {out:#}"
    );
    assert!(steps.iter().any(|s| s["decision"] == "merge"), "{out:#}");
    let rec: Value =
        serde_json::from_slice(&std::fs::read(records.join(&names[0])).unwrap()).unwrap();
    assert_eq!(rec["judge"], "runner", "{rec:#}");
    assert!(rec["twins"].as_object().unwrap().is_empty());
    assert!(!rec["requirement_results"].as_array().unwrap().is_empty());
    // Holdout discipline: no scenario text in a record, only ids and counts.
    let holdout = repo.parent().unwrap().join("url-shortener-holdout");
    let scenario = std::fs::read_to_string(holdout.join("redirect.scenario.md")).unwrap();
    let title = scenario
        .lines()
        .find(|l| l.starts_with("## "))
        .expect("a scenario heading");
    for name in &names {
        let text = std::fs::read_to_string(records.join(name)).unwrap();
        assert!(!text.contains(title.trim_start_matches("## ")), "{name}");
    }

    // A recorded result that the build does not give is the first difference; it is put in
    // the first step's record, so that the replay stops there.
    let first = &steps[0];
    let path = records.join(format!(
        "{}-{}-{}.json",
        first["task"].as_str().unwrap(),
        first["attempt"],
        first["stage"].as_str().unwrap()
    ));
    let mut rec: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let req = rec["requirement_results"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let passes = rec["requirement_results"][0]["passes"].as_u64().unwrap();
    rec["requirement_results"][0]["passes"] = Value::from(u64::from(passes == 0));
    std::fs::write(&path, serde_json::to_vec(&rec).unwrap()).unwrap();
    let (code, out) = replay_json(&repo, "demo");
    assert_eq!(code, 1, "{out:#}");
    let d = &out["difference"];
    assert_eq!(d["step"]["step"], 1, "{d:#}");
    assert_eq!(d["what"], format!("requirement `{req}`"), "{d:#}");
    assert_ne!(d["recorded"], d["replayed"], "{d:#}");
}
