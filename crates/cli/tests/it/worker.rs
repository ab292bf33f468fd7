//! `lightsout worker` end to end: real worker processes against the real Postgres test server
//! (`LIGHTSOUT_TEST_PG_URL`, started by `scripts/pg-start`; without it these tests fail).

use assert_cmd::Command;
use lightsout_fleet::testing::fresh_database;
use std::path::Path;
use std::process::{Command as Std, Stdio};

fn lightsout() -> Command {
    Command::cargo_bin("lightsout").unwrap()
}

fn status(url: &str, run: &str) -> String {
    let out = lightsout()
        .args(["worker", "status", "--store", url, run])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The lines of `log`, sorted.
fn lines(log: &Path) -> Vec<String> {
    let mut l: Vec<String> = std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    l.sort();
    l
}

/// Two worker processes of two jobs each drain one run: every task is run exactly once, a
/// failing command fails its task (exit 1), and the store shows every task settled.
#[test]
fn two_workers_run_every_task_once() {
    let url = fresh_database("worker");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let tasks: Vec<String> = (1..=12).map(|i| format!("T{i:02}")).collect();
    lightsout()
        .args(["worker", "enqueue", "--store", &url, "run-1"])
        .args(&tasks)
        .assert()
        .success();
    let script = format!(
        "echo \"$LIGHTSOUT_TASK\" >> '{}'; [ \"$LIGHTSOUT_TASK\" != T07 ]",
        log.display()
    );
    let workers: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| {
            Std::new(env!("CARGO_BIN_EXE_lightsout"))
                .args(["worker", "--store", &url, "--jobs", "2", "--name", name])
                .args(["--", "sh", "-c", &script])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = workers
        .into_iter()
        .map(|w| w.wait_with_output().unwrap().status.code().unwrap())
        .collect();
    assert_eq!(lines(&log), tasks, "every task ran exactly once");
    assert!(
        codes.contains(&1),
        "the worker that failed T07 exits 1: {codes:?}"
    );
    let shown = status(&url, "run-1");
    assert_eq!(shown.matches(" done ").count(), 11, "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("T07") && l.contains(" failed ")),
        "{shown}"
    );
}

/// A worker killed with SIGKILL mid-task: its lease lapses, another worker claims the task
/// under a higher fencing token and completes it.
#[test]
fn a_killed_workers_task_is_claimed_again_after_its_lease() {
    let url = fresh_database("worker");
    let dir = tempfile::tempdir().unwrap();
    let (started, pid) = (dir.path().join("started"), dir.path().join("pid"));
    lightsout()
        .args(["worker", "enqueue", "--store", &url, "run-1", "T1"])
        .assert()
        .success();
    let script = format!(
        "echo $$ > '{}'; echo \"$LIGHTSOUT_FENCING_TOKEN\" > '{}'; exec sleep 60",
        pid.display(),
        started.display()
    );
    let mut a = Std::new(env!("CARGO_BIN_EXE_lightsout"))
        .args([
            "worker",
            "--store",
            &url,
            "--lease-ms",
            "500",
            "--name",
            "a",
        ])
        .args(["--", "sh", "-c", &script])
        .spawn()
        .unwrap();
    // Wait until worker a runs the task (its command wrote the token), then kill it.
    let token_a: u64 = loop {
        if let Some(t) = std::fs::read_to_string(&started)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break t;
        }
        assert!(a.try_wait().unwrap().is_none(), "worker a ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    a.kill().unwrap();
    a.wait().unwrap();
    if let Ok(p) = std::fs::read_to_string(&pid) {
        let _ = Std::new("kill").arg(p.trim()).status();
    }
    // The lease (500 ms) must lapse before another worker may take the task: waiting out a
    // lease is the behaviour under test, not a stand-in for synchronisation.
    std::thread::sleep(std::time::Duration::from_millis(700));
    let token_file = dir.path().join("token_b");
    let out = lightsout()
        .args(["worker", "--store", &url, "--name", "b", "--"])
        .args([
            "sh",
            "-c",
            &format!(
                "echo \"$LIGHTSOUT_FENCING_TOKEN\" > '{}'",
                token_file.display()
            ),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let token_b: u64 = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(token_b > token_a, "{token_b} > {token_a}");
    let shown = status(&url, "run-1");
    let row = shown.lines().find(|l| l.starts_with("T1")).unwrap();
    assert!(row.contains(" done ") && row.contains("b/0"), "{shown}");
}
