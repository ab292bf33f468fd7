//! `lightsout status` end to end: the real binary reads a claim store that a plan was
//! enqueued into and workers claimed from, and the journal entries they mirrored into it
//! (through the library, as `lightsout worker` does), on `SQLite` and on the real Postgres
//! test server (`LIGHTSOUT_TEST_PG_URL`; without it the Postgres test fails).

use assert_cmd::Command;
use lightsout_fleet::claims::{ClaimStore, PgClaims, PlannedTask, SqliteClaims};
use lightsout_fleet::journal::{ClaimRun, JournalStore, PgJournal, SqliteJournal};
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

/// Journal entries of run r1 as workers mirror them: task A's claim run (token 1) wrote 4,
/// task B's (token 2) 2, the last of a kind this version does not know.
fn fill_journal(journal: &dyn JournalStore) {
    let claim = |task: &str, token| ClaimRun {
        run: "r1".into(),
        task: task.into(),
        token,
        worker: "worker-a".into(),
        id: format!("r1-{task}-{token}"),
    };
    let (a, b) = (claim("A", 1), claim("B", 2));
    for (seq, e) in [
        r#"{"entry":"attempt_started","task":"A","attempt":1,"head":"h"}"#,
        r#"{"entry":"merge_started","task":"A","onto":"aaaaaaaaaaaaaaaa"}"#,
        r#"{"entry":"merge_verified","task":"A","commit":"0123456789abcdef"}"#,
        r#"{"entry":"merged","task":"A","commit":"0123456789abcdef"}"#,
    ]
    .into_iter()
    .enumerate()
    {
        journal.append(&a, seq as u64, e).unwrap();
    }
    journal
        .append(
            &b,
            0,
            r#"{"entry":"attempt_started","task":"B","attempt":1,"head":"h"}"#,
        )
        .unwrap();
    journal
        .append(&b, 1, r#"{"entry":"from_the_future","task":"B"}"#)
        .unwrap();
}

/// `status --run` shows the newest entries of each task's journal from the store (3 by
/// default, `--journal N`), in text and in JSON; `--journal 0` and a status of every run
/// leave the journal out.
fn shows_the_newest_journal_entries_per_task(store: &str) {
    let out = status(store, &["--run", "r1", "--format", "json"]);
    assert!(out.status.success(), "{out:?}");
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = j["runs"][0]["journal"].as_array().unwrap();
    let keys: Vec<(&str, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["task"].as_str().unwrap(),
                r["token"].as_u64().unwrap(),
                r["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("A", 1, 1),
            ("A", 1, 2),
            ("A", 1, 3),
            ("B", 2, 0),
            ("B", 2, 1)
        ]
    );
    assert_eq!(rows[2]["entry"]["entry"], "merged");
    assert_eq!(rows[2]["worker"], "worker-a");
    assert_eq!(rows[2]["claim_run"], "r1-A-1");
    assert!(rows[2]["at_ms"].as_i64().unwrap() > 0);

    let out = status(store, &["--run", "r1"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let journal = &text[text
        .find("journal, newest 3 entries per task")
        .expect(&text)..];
    for want in [
        "merge_started aaaaaaaaaa",
        "merged 0123456789",
        "attempt_started attempt 1",
        "from_the_future",
    ] {
        assert!(journal.contains(want), "{want:?} not in:\n{text}");
    }
    assert_eq!(journal.matches("attempt_started").count(), 1, "{text}");

    let out = status(
        store,
        &["--run", "r1", "--journal", "1", "--format", "json"],
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        j["runs"][0]["journal"].as_array().unwrap().len(),
        2,
        "{j:#}"
    );
    for extra in [&["--run", "r1", "--journal", "0"][..], &[]] {
        let mut args = vec!["--format", "json"];
        args.extend_from_slice(extra);
        let j: Value = serde_json::from_slice(&status(store, &args).stdout).unwrap();
        assert!(
            j["runs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r.get("journal").is_none()),
            "{extra:?}: {j:#}"
        );
    }
}

#[test]
fn status_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    fill(&SqliteClaims::open(&path).unwrap());
    shows_workers_leases_counts_and_the_critical_path(path.to_str().unwrap());
    fill_journal(&SqliteJournal::open(&path).unwrap());
    shows_the_newest_journal_entries_per_task(path.to_str().unwrap());
}

#[test]
fn status_on_postgres() {
    let url = lightsout_fleet::testing::fresh_database("status");
    fill(&PgClaims::connect(&url, 2).unwrap());
    shows_workers_leases_counts_and_the_critical_path(&url);
    fill_journal(&PgJournal::connect(&url, 1).unwrap());
    shows_the_newest_journal_entries_per_task(&url);
}

#[test]
fn status_of_a_missing_store_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = status(dir.path().join("none.db").to_str().unwrap(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such store"));
}
