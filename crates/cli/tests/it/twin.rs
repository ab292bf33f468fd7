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
