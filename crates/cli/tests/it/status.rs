//! `lightsout status` end to end: the real binary reads a claim store that a plan was
//! enqueued into and workers claimed from (through the library, as `lightsout worker` does),
//! on `SQLite` and on the real Postgres test server (`LIGHTSOUT_TEST_PG_URL`; without it the
//! Postgres test fails).

use assert_cmd::Command;
use lightsout_fleet::claims::{ClaimStore, PgClaims, PlannedTask, SqliteClaims};
use serde_json::Value;
use std::time::Duration;

const HOUR_MS: u64 = 3_600_000;

fn planned(task: &str, deps: &[&str], estimate_ms: u64) -> PlannedTask {
    PlannedTask {
        task: task.into(),
        deps: deps.iter().map(|d| (*d).to_owned()).collect(),
        estimate_ms: Some(estimate_ms),
        priority: 0,
    }
}

/// Run r1: A done; B claimed by worker-a (live lease); C claimed by worker-b (lease lapsed);
/// D waits on B and C; E ready. Run flat: two tasks enqueued without a plan.
fn fill(store: &dyn ClaimStore) {
    let plan = [
        planned("A", &[], HOUR_MS),
        planned("B", &["A"], 2 * HOUR_MS),
        planned("C", &["A"], HOUR_MS / 2),
        planned("D", &["B", "C"], 4 * HOUR_MS),
        planned("E", &[], HOUR_MS),
    ];
    store.enqueue_plan("r1", &plan).unwrap();
    let long = Duration::from_secs(600);
    let a = store.claim("worker-a", long).unwrap().unwrap();
    assert_eq!(a.task, "A");
    store.complete(&a).unwrap();
    assert_eq!(store.claim("worker-a", long).unwrap().unwrap().task, "B");
    assert_eq!(
        store
            .claim("worker-b", Duration::ZERO)
            .unwrap()
            .unwrap()
            .task,
        "C"
    );
    store.enqueue("flat", &["X1".into(), "X2".into()]).unwrap();
}

fn status(store: &str, extra: &[&str]) -> std::process::Output {
    Command::cargo_bin("lightsout")
        .unwrap()
        .args(["status", "--store", store])
        .args(extra)
        .output()
        .unwrap()
}

fn shows_workers_leases_counts_and_the_critical_path(store: &str) {
    let out = status(store, &["--format", "json"]);
    assert!(out.status.success(), "{out:?}");
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let workers = j["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{j:#}");
    assert_eq!(
        (
            &workers[0]["worker"],
            &workers[0]["live"],
            &workers[0]["lapsed"]
        ),
        (&Value::from("worker-a"), &Value::from(1), &Value::from(0))
    );
    assert!(workers[0]["next_lapse_in_ms"].as_i64().unwrap() > 0);
    assert_eq!(
        (
            &workers[1]["worker"],
            &workers[1]["live"],
            &workers[1]["lapsed"]
        ),
        (&Value::from("worker-b"), &Value::from(0), &Value::from(1))
    );
    let runs = j["runs"].as_array().unwrap();
    let names: Vec<&str> = runs.iter().map(|r| r["run"].as_str().unwrap()).collect();
    assert_eq!(names, ["r1", "flat"]);
    let r1 = &runs[0];
    assert_eq!(
        r1["counts"],
        serde_json::json!({"blocked": 1, "ready": 1, "claimed": 2, "done": 1, "failed": 0})
    );
    let leases = r1["leases"].as_array().unwrap();
    assert_eq!(leases.len(), 2);
    assert_eq!(leases[0]["task"], "C", "the lapsed lease first");
    assert!(leases[0]["left_ms"].as_i64().unwrap() <= 0);
    assert_eq!(leases[1]["task"], "B");
    assert!(leases[1]["left_ms"].as_i64().unwrap() > 0);
    // B (2 h) -> D (4 h) is longer than C (0.5 h) -> D; A is done and does not count.
    let cp = &r1["critical_path"];
    assert_eq!(cp["tasks"], serde_json::json!(["B", "D"]));
    assert_eq!(cp["estimate_ms"], 6 * HOUR_MS);
    assert_eq!(cp["remaining_ms"], 15 * HOUR_MS / 2);
    // One live worker: the remaining 7.5 h of work is the bound.
    assert_eq!(r1["bound_ms"], 15 * HOUR_MS / 2);
    let flat = &runs[1];
    assert_eq!(flat["critical_path"], Value::Null);
    let notes = flat["notes"].to_string();
    assert!(
        notes.contains("no dependencies") && notes.contains("no estimates"),
        "{notes}"
    );

    let out = status(store, &["--run", "r1"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "workers: 1 live, 2 seen",
        "run r1: 1 blocked, 1 ready, 2 claimed, 1 done, 0 failed",
        "lapsed",
        "critical path of what remains: B -> D (6.0 h of 7.5 h remaining work)",
        "at least 7.5 h more with 1 live worker(s)",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    assert!(!text.contains("run flat"), "--run shows one run:\n{text}");

    let out = status(store, &["--run", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no task of run nope"));
}

#[test]
fn status_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    fill(&SqliteClaims::open(&path).unwrap());
    shows_workers_leases_counts_and_the_critical_path(path.to_str().unwrap());
}

#[test]
fn status_on_postgres() {
    let url = lightsout_fleet::testing::fresh_database("status");
    fill(&PgClaims::connect(&url, 2).unwrap());
    shows_workers_leases_counts_and_the_critical_path(&url);
}

#[test]
fn status_of_a_missing_store_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = status(dir.path().join("none.db").to_str().unwrap(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such store"));
}
