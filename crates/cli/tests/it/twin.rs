//! End-to-end tests of `lightsout twin`: the real binary serving, listing, importing and
//! checking drift from a cassette.

use assert_cmd::Command;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("lightsout")
}

struct Served(Child);
impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `lightsout twin serve ... --port 0 --format json` and returns the printed URLs.
fn serve(args: &[&str]) -> (Served, Vec<Value>, std::process::ChildStdout) {
    let mut child = std::process::Command::new(bin())
        .args(["twin", "serve"])
        .args(args)
        .args(["--port", "0", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut lines = Vec::new();
    let n = args
        .iter()
        .filter(|a| !a.starts_with("--") && a.parse::<u64>().is_err())
        .count();
    for _ in 0..n {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        lines.push(serde_json::from_str(&line).unwrap());
    }
    (Served(child), lines, reader.into_inner())
}

/// Minimal HTTP/1.1 client over std (the cli crate has no HTTP client dependency).
fn http(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let hostport = url.trim_start_matches("http://");
    let (host, prefix) = hostport
        .split_once('/')
        .map_or((hostport, String::new()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(host).unwrap();
    let mut req = format!(
        "{method} {prefix}{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(k);
        req.push_str(": ");
        req.push_str(v);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn list_names_the_builtins() {
    let out = Command::new(bin())
        .args(["twin", "list", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: Vec<Value> = serde_json::from_slice(&out).unwrap();
    let names: Vec<&str> = v.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["slack", "github", "okta"]);
}

#[test]
fn serve_slack_with_a_seed_answers_over_http() {
    let (_child, lines, _out) = serve(&["slack", "--seed", "7", "--no-latency"]);
    let url = lines[0]["url"].as_str().unwrap().to_string();
    assert_eq!(lines[0]["seed"], 7);
    let (status, body) = http(
        &url,
        "POST",
        "/api/chat.postMessage",
        &[
            ("Authorization", "Bearer xoxb-twin-bot"),
            ("Content-Type", "application/json"),
        ],
        r#"{"channel":"C0GENERAL1","text":"hi"}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["ok"], true);
    let (status, _) = http(&url, "POST", "/api/files.upload", &[], "");
    assert_eq!(status, 501);
}

#[test]
fn serve_two_twins_on_one_port() {
    let (_child, lines, _out) = serve(&["slack", "github", "--no-latency"]);
    let gh = lines.iter().find(|l| l["name"] == "github").unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(gh.ends_with("/github"));
    let (status, _) = http(&gh, "GET", "/repos/octocat/hello-world", &[], "");
    assert_eq!(status, 200);
}

#[test]
fn unknown_twin_is_a_usage_error() {
    Command::new(bin())
        .args(["twin", "serve", "jira", "--port", "0"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("twin list"));
}

#[test]
fn import_openapi_writes_a_skeleton_twin_that_serves() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("pets.yaml");
    std::fs::write(&spec, "openapi: 3.0.3\ninfo: {title: Pets, version: '1'}\npaths:\n  /pets:\n    get:\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              example: [{id: 1, name: Rex}]\n").unwrap();
    let out = dir.path().join("twin");
    Command::new(bin())
        .args(["twin", "import-openapi"])
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    // --format json: the same import as one object, the YAML inline without --out.
    let json = Command::new(bin())
        .args([
            "twin",
            "import-openapi",
            "--format",
            "json",
            "--name",
            "pets",
        ])
        .arg(&spec)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["name"], "pets");
    assert_eq!(json["routes"], 1);
    assert!(json["written"].is_null());
    assert!(json["twin_yaml"].as_str().unwrap().contains("/pets"));
    let (_child, lines, _o) = serve(&[out.to_str().unwrap()]);
    let (status, body) = http(lines[0]["url"].as_str().unwrap(), "GET", "/pets", &[], "");
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()[0]["name"],
        "Rex"
    );
}

#[test]
fn drift_against_a_cassette_updates_the_manifest_and_sets_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let twin_dir = dir.path().join("t");
    std::fs::create_dir_all(&twin_dir).unwrap();
    std::fs::write(twin_dir.join("twin.yaml"), "name: hello\nprovenance: {source: test}\nroutes:\n  - {method: GET, path: /hello, response: {body: {greeting: hi}}}\n").unwrap();
    let cassette = |greeting: &str| {
        serde_json::json!({"upstream": "http://real", "interactions": [{"recorded_at": "2026-01-01T00:00:00Z",
        "request": {"method": "GET", "path": "/hello", "query": "", "headers": [], "body": null},
        "response": {"status": 200, "headers": [["content-type", "application/json; charset=utf-8"]], "body": {"greeting": greeting}}}]})
    };
    let same = dir.path().join("same.json");
    std::fs::write(&same, cassette("hi").to_string()).unwrap();
    let changed = dir.path().join("changed.json");
    std::fs::write(&changed, cassette("hello").to_string()).unwrap();
    Command::new(bin())
        .args(["twin", "drift"])
        .arg(&twin_dir)
        .arg("--against")
        .arg(&same)
        .assert()
        .code(0);
    let out = Command::new(bin())
        .args(["twin", "drift"])
        .arg(&twin_dir)
        .arg("--against")
        .arg(&changed)
        .args(["--format", "json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&out).unwrap();
    // The only exchange differs (fidelity 0 < 0.5): drifted at once, not merely suspect.
    assert_eq!(report["status_after"], "drifted");
    assert_eq!(report["differences"][0]["pointer"], "/body/greeting");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(twin_dir.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["status"], "drifted");
    assert_eq!(manifest["checks"].as_array().unwrap().len(), 2);
}

#[test]
fn serve_flags_set_the_header_read_timeout_and_the_journal_byte_cap() {
    let (_child, lines, _out) = serve(&[
        "slack",
        "--no-latency",
        "--header-read-timeout-ms",
        "300",
        "--idle-timeout-ms",
        "60000",
        "--max-half-open",
        "64",
        "--journal-max-bytes",
        "1000",
    ]);
    let url = lines[0]["url"].as_str().unwrap().to_string();
    // A request head that never ends is closed after the flag's 300 ms (5 s by default).
    let t0 = std::time::Instant::now();
    let mut s = std::net::TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(4)))
        .unwrap();
    s.write_all(b"GET /api/auth.test HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .expect("closed by the server within 4 s, not left to time out");
    assert!(rest.is_empty(), "no answer to a half-sent request");
    assert!(t0.elapsed() >= std::time::Duration::from_millis(300));
    // Each of these requests counts 400+ bytes: a 1,000-byte cap keeps two.
    let pad = "x".repeat(400);
    for _ in 0..4 {
        http(&url, "POST", "/api/files.upload", &[("X-Pad", &pad)], "");
    }
    let (status, body) = http(&url, "GET", "/__twin/journal/stats", &[], "");
    assert_eq!(status, 200);
    let journal: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(journal["max_bytes"], 1000);
    assert_eq!(journal["entries"], 2, "{journal}");
    assert_eq!(journal["dropped"], 2, "{journal}");
    assert!(journal["bytes"].as_u64().unwrap() <= 1000);
}

/// `lightsout twin ...` in `dir` (its `.lightsout/twins` is the state directory).
fn twin_in(dir: &std::path::Path, args: &[&str]) -> assert_cmd::assert::Assert {
    Command::new(bin())
        .current_dir(dir)
        .env_remove("LIGHTSOUT_TWIN_STATE_DIR")
        .arg("twin")
        .args(args)
        .assert()
}

fn json_out(a: &assert_cmd::assert::Assert) -> Value {
    serde_json::from_slice(&a.get_output().stdout).unwrap()
}

#[test]
fn mark_status_and_serve_follow_a_builtin_twins_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let st = json_out(&twin_in(dir.path(), &["status", "--format", "json"]).success());
    let all: Vec<(&str, &str)> = st
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        all,
        [("slack", "fresh"), ("github", "fresh"), ("okta", "fresh")]
    );
    // A mark needs a reason.
    twin_in(dir.path(), &["mark", "slack", "drifted", "--reason", " "]).failure();
    twin_in(
        dir.path(),
        &[
            "mark",
            "slack",
            "drifted",
            "--reason",
            "chat.postMessage grew a field",
        ],
    )
    .success();
    let st = json_out(&twin_in(dir.path(), &["status", "slack", "--format", "json"]).success());
    assert_eq!(st[0]["status"], "drifted");
    assert_eq!(st[0]["marks"], 1);
    assert!(
        st[0]["reason"]
            .as_str()
            .unwrap()
            .contains("chat.postMessage grew a field")
    );
    // `twin serve` reads the same manifest: its start-up line and its control API say drifted.
    let mut child = std::process::Command::new(bin())
        .current_dir(dir.path())
        .env_remove("LIGHTSOUT_TWIN_STATE_DIR")
        .args(["twin", "serve", "slack", "--port", "0", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let served = Served(child);
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["status"], "drifted");
    let (status, body) = http(
        v["url"].as_str().unwrap(),
        "GET",
        "/__twin/lifecycle",
        &[],
        "",
    );
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "drifted"
    );
    drop(served);
    // Retired: refused with its date and reason, unless forced.
    twin_in(
        dir.path(),
        &[
            "mark",
            "slack",
            "retired",
            "--reason",
            "Slack retired the v1 API",
        ],
    )
    .success();
    let out = twin_in(dir.path(), &["serve", "slack", "--port", "0"]).failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("twin slack retired since "), "{err}");
    assert!(err.contains("Slack retired the v1 API"), "{err}");
    // Fresh again by hand (after re-recording): served as fresh.
    twin_in(
        dir.path(),
        &["mark", "slack", "fresh", "--reason", "re-recorded"],
    )
    .success();
    let st = json_out(&twin_in(dir.path(), &["status", "slack", "--format", "json"]).success());
    assert_eq!(
        (st[0]["status"].as_str(), st[0]["marks"].as_u64()),
        (Some("fresh"), Some(3))
    );
}

/// A scenario that names the Slack twin, against a static file server.
const SLACK_SCENARIO: &str = "## Scenario: the alpha file is served\nSatisfies: REQ-1\n\n\
     - **WHEN** I send `GET /a.txt`\n- **THEN** the status is 200\n\
     - **AND** twin `slack` received 0 requests to `POST /api/chat.postMessage`\n";

#[test]
fn eval_carries_the_twin_states_and_weakens_what_rests_on_a_suspect_twin() {
    // The runner path's pieces: `twin serve` (as run.sh starts it) and `lightsout eval`,
    // whose result JSON carries each twin's state and the weakened requirements.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "alpha").unwrap();
    let suite = dir.path().join("suite");
    std::fs::create_dir(&suite).unwrap();
    std::fs::write(suite.join("a.scenario.md"), SLACK_SCENARIO).unwrap();
    let state = dir.path().join("state");
    let state_s = state.to_str().unwrap();
    twin_in(
        dir.path(),
        &[
            "mark",
            "slack",
            "suspect",
            "--state-dir",
            state_s,
            "--reason",
            "one odd check",
        ],
    )
    .success();
    let mut child = std::process::Command::new(bin())
        .env("LIGHTSOUT_TWIN_STATE_DIR", &state)
        .args(["twin", "serve", "slack", "--port", "0", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _served = Served(child);
    let url = serde_json::from_str::<Value>(&line).unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let eval = |extra: &[&str]| {
        Command::new(bin())
            .current_dir(dir.path())
            .args(["eval", "--scenarios", suite.to_str().unwrap()])
            .args(["--twin", &format!("slack={url}")])
            .args([
                "--target",
                "python3 -m http.server {port} --bind 127.0.0.1",
                "--format",
                "json",
            ])
            .args(extra)
            .assert()
    };
    // Suspect weakens: the gate passes, saying so; the result names the twin and its state.
    let out = eval(&[]).success();
    let run: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(run["twins"][0]["name"], "slack");
    assert_eq!(run["twins"][0]["state"], "suspect");
    assert_eq!(run["scenarios"][0]["stale_twins"][0]["state"], "suspect");
    let text = run["gate"]["reasons"].to_string();
    assert!(
        text.contains("REQ-1 weakened: rests on twin slack (suspect since "),
        "{text}"
    );
    // A rule can make it fail.
    let gate = dir.path().join("strict.toml");
    std::fs::write(&gate, "[[rule]]\nfail_on_twin = \"suspect\"\n").unwrap();
    eval(&["--gate", gate.to_str().unwrap()]).code(1);
}

#[test]
fn a_builtin_twin_marked_drifted_weakens_the_verdict_of_its_requirements_in_the_report() {
    // Issue 22's "done when": `lightsout run` with the eval engine and the built-in Slack twin,
    // marked drifted by a human; the build is right and its scenario passes against the twin,
    // but the requirement rests on a drifted imitation, so the report says so and the gate
    // fails.
    let p = crate::run::project(&[("REQ-1", "alpha file", &[])], 1, "../holdout");
    std::fs::write(
        p.repo().join("lightsout.toml"),
        "[run]\njobs = 1\nattempts = 1\n\n[agents]\ndefault = \"replay\"\n\n\
         [agent.replay]\npreset = \"replay\"\ntrajectory = \"../trajectory\"\n\n\
         [holdout]\npath = \"../holdout\"\n\n\
         [target]\ncommand = \"python3 -m http.server {port} --bind 127.0.0.1\"\n\n\
         [twins]\nslack = \"builtin\"\n",
    )
    .unwrap();
    std::fs::write(p.root.join("holdout/files.scenario.md"), SLACK_SCENARIO).unwrap();
    p.patch("REQ-1", 1, &crate::run::new_file("a.txt", "alpha"));
    twin_in(
        &p.repo(),
        &[
            "mark",
            "slack",
            "drifted",
            "--reason",
            "Slack now rate-limits per workspace",
        ],
    )
    .success();
    p.run().args(["--run-id", "d1"]).assert().failure();
    // The evaluation itself: the scenario passed every trial against the twin...
    let eval: Value = serde_json::from_slice(
        &std::fs::read(p.run_dir("d1").join("eval/REQ-1-1-candidate.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        eval["scenarios"][0]["stats"]["passes"],
        eval["scenarios"][0]["stats"]["trials"]
    );
    assert_eq!(eval["twins"][0]["state"], "drifted");
    assert_eq!(eval["gate"]["passed"], false);
    // ... and the report says which requirement rests on which twin in which state.
    let out = Command::new(bin())
        .current_dir(p.repo())
        .args(["report", "d1", "--format", "json"])
        .assert();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let report = &v["report"];
    assert_eq!(report["gate"]["outcome"], "fail");
    let reasons = report["gate"]["reasons"].to_string();
    assert!(
        reasons.contains("REQ-1 FAILS: rests on twin slack (drifted since "),
        "{reasons}"
    );
    let weak = &report["weakened"][0];
    assert_eq!(weak["requirement"], "REQ-1");
    assert_eq!(weak["twin"], "slack");
    assert_eq!(weak["state"], "drifted");
    assert_eq!(
        weak["reason"],
        "marked by hand: Slack now rate-limits per workspace"
    );
    // The page shows it too.
    let html = std::fs::read_to_string(p.run_dir("d1").join("report.html")).unwrap();
    assert!(html.contains("Evidence resting on stale twins (1)"));
}
