//! Real-browser tests: headless Debian Chromium loads `report.html` from disk, we check the DOM it
//! built (`--dump-dom`) and prove from Chromium's own network log (`--log-net-log`) that the page
//! requested nothing.
//!
//! How "no network request" is established: Chromium's net log records every `URL_REQUEST` the
//! network service starts. Requests made on behalf of a page carry that page's top-frame site in
//! their `network_isolation_key` (`file://` for a page loaded from disk) and the page's origin as
//! `initiator`; the browser's own background traffic (component updater, time sync, sign-in)
//! carries `initiator: "not an origin"` and no `file://` key. The test fails on any page-attributed
//! request. A control page that does fetch (an `<img>` to 127.0.0.1) is run through the same
//! harness first, so the detector is proven to see page requests in this Chromium build: a test
//! that could not fail would prove nothing. `--host-resolver-rules` maps every host but 127.0.0.1 to
//! "not found", so neither the page nor the browser can reach beyond loopback.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::fixtures::{hostile_report, sample_report};
use crate::write_report;

/// Finds the Chromium binary: `$LIGHTSOUT_CHROMIUM`, else `chromium` (Debian) or
/// `chromium-browser` on `PATH`. Panics with instructions when none is found: the test must not pass
/// silently on a machine without a browser.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("LIGHTSOUT_CHROMIUM") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "LIGHTSOUT_CHROMIUM={} is not a file: point it at a Chromium binary or unset it",
            p.display()
        );
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "chromium not found: the report's browser test needs headless Chromium. Install it with \
         `apt-get install -y chromium` (scripts/test does this), or set LIGHTSOUT_CHROMIUM to the binary"
    );
}

/// What one headless load produced.
struct Load {
    dom: String,
    /// URLs of requests attributed to the page.
    page_requests: Vec<String>,
    /// Number of `URL_REQUEST_START_JOB` events seen at all (browser and page).
    all_requests: usize,
}

/// Loads `page` in a fresh headless Chromium profile and returns the serialised DOM and the page's
/// network requests from the net log.
fn load(page: &Path) -> Load {
    let profile = tempfile::tempdir().unwrap();
    let netlog = profile.path().join("netlog.json");
    let browser = chromium();
    let mut child = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("profile").display()
        ))
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    // Watchdog: a wedged browser must fail the test, not hang the suite. The channel is signalled
    // as soon as the browser exits; only a browser still running after a minute is killed.
    let pid = child.id();
    let (done, wait) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if wait.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let stderr = child.stderr.take().expect("piped stderr");
    let err_reader =
        std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let status = child.wait().expect("wait for chromium");
    let _ = done.send(());
    watchdog.join().unwrap();
    let dom = reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    assert!(
        status.success(),
        "chromium failed ({status}); stderr:\n{stderr}"
    );

    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&netlog).expect("chromium wrote the net log"))
            .expect("the net log is JSON");
    let types = &log["constants"]["logEventTypes"];
    let start_job = types["URL_REQUEST_START_JOB"]
        .as_u64()
        .expect("net log names URL_REQUEST_START_JOB");
    let mut page_requests = Vec::new();
    let mut all_requests = 0;
    for e in log["events"].as_array().expect("net log events") {
        if e["type"].as_u64() != Some(start_job) {
            continue;
        }
        all_requests += 1;
        let p = &e["params"];
        let nik = p["network_isolation_key"].as_str().unwrap_or("");
        let initiator = p["initiator"].as_str().unwrap_or("not an origin");
        if nik.contains("file://") || initiator != "not an origin" {
            page_requests.push(p["url"].as_str().unwrap_or("?").to_string());
        }
    }
    Load {
        dom,
        page_requests,
        all_requests,
    }
}

#[test]
fn control_page_requests_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("control.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><title>control</title></head><body><p id=\"c\">control</p>\
         <img src=\"http://127.0.0.1:9/probe.png\"></body></html>",
    )
    .unwrap();
    let load = load(&page);
    assert!(load.dom.contains("id=\"c\""), "{}", load.dom);
    assert!(
        load.page_requests
            .iter()
            .any(|u| u == "http://127.0.0.1:9/probe.png"),
        "the detector must see the control page's request; saw {:?} of {} requests",
        load.page_requests,
        load.all_requests
    );
}

#[test]
fn report_renders_in_chromium_without_network_requests() {
    let dir = tempfile::tempdir().unwrap();
    let report = sample_report();
    let (_, html) = write_report(dir.path(), &report).unwrap();
    let load = load(&html);
    assert!(
        load.page_requests.is_empty(),
        "report.html made network requests: {:?}",
        load.page_requests
    );
    let dom = &load.dom;
    for needle in [
        "Lightsout run report",
        "20261127-060000-a1b2",
        "Gate passed",
        "Ship: the merged result meets the verification gate",
        "id=\"replay-banner\"",
        "REQ-1",
        "Create a short link",
        "100.0%",
        "[0.912, 1.000]",
        "status mismatch",
        "<svg id=\"task-graph\"",
        "Slack notification on create",
        "3f9c2e1d8a7b",
        "DEC-1",
        "Creating a resource answers 201, not 200.",
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"",
    ] {
        assert!(dom.contains(needle), "DOM lacks {needle:?}");
    }
    // Chromium built the graph: one node group per task and one path per dependency edge.
    assert_eq!(dom.matches("<g class=\"node st-merged\">").count(), 4);
    assert_eq!(dom.matches("<path class=\"edge\"").count(), 3);
    assert!(!dom.contains("id=\"incidents\""));
}

#[test]
fn hostile_report_stays_inert_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (_, html) = write_report(dir.path(), &hostile_report()).unwrap();
    let load = load(&html);
    assert!(
        load.page_requests.is_empty(),
        "hostile report made network requests: {:?}",
        load.page_requests
    );
    let dom = &load.dom;
    // The injected markup is text in the DOM, not elements.
    for element in [
        "<script",
        "<img",
        "<iframe",
        "<foreignobject",
        "<foreignObject",
    ] {
        assert!(!dom.contains(element), "DOM holds a {element} element");
    }
    assert!(dom.contains("&lt;script&gt;alert('xss')&lt;/script&gt;"));
    assert!(dom.contains("&lt;img src=http://127.0.0.1:9/pwn.png onerror=alert(1)&gt;"));
    // Incidents come first, before the verdict.
    let incidents = dom.find("id=\"incidents\"").expect("incidents section");
    let verdict = dom.find("id=\"verdict\"").expect("verdict section");
    assert!(incidents < verdict);
    assert!(dom.contains("Leaks and policy violations (2)"));
    assert!(dom.contains("canary leak"));
}
