//! One suite for [`JournalStore`], called once per backend.

use lightsout_fleet::Error;
use lightsout_fleet::journal::{ClaimRun, JournalStore, PgJournal, SqliteJournal};
use lightsout_fleet::testing::fresh_database;
use serde_json::json;
use std::sync::{Arc, Barrier};

type Open = Arc<dyn Fn() -> Box<dyn JournalStore> + Send + Sync>;

fn sqlite() -> (tempfile::TempDir, Open) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let open: Open = Arc::new(move || Box::new(SqliteJournal::open(&path).unwrap()));
    (dir, open)
}

fn postgres() -> Open {
    let url = fresh_database("journal");
    Arc::new(move || Box::new(PgJournal::connect(&url, 2).unwrap()))
}

both!(
    entries_read_back_in_seq_order_with_the_stores_time,
    a_retried_append_writes_nothing_and_a_different_one_is_refused,
    the_newest_entries_per_task_come_from_its_newest_claim,
    two_workers_append_to_one_fleet_run_at_once
);

fn claim(run: &str, task: &str, token: u64, worker: &str) -> ClaimRun {
    ClaimRun {
        run: run.into(),
        task: task.into(),
        token,
        worker: worker.into(),
        id: format!("{run}-{task}-{token}"),
    }
}

/// A journal line as the factory writes it (minified JSON, tagged `entry`).
fn line(kind: &str, task: &str, n: u64) -> String {
    json!({"entry": kind, "task": task, "attempt": n}).to_string()
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

/// Entries appended out of order read back by `seq`, each with its claim's run, task, token
/// and worker, the JSON given, and the store's time of the append (the test server runs on
/// this machine, so its clock is this one's).
fn entries_read_back_in_seq_order_with_the_stores_time(open: &Open) {
    let s = open();
    let c = claim("r1", "T1", 5, "w1/0");
    let before = now_ms();
    for seq in [2, 0, 1] {
        assert!(
            s.append(&c, seq, &line("attempt_started", "T1", seq))
                .unwrap()
        );
    }
    let after = now_ms();
    let rows = s.entries("r1", None).unwrap();
    let seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [0, 1, 2]);
    for r in &rows {
        assert_eq!(
            (&*r.run, &*r.task, r.token, &*r.worker, &*r.claim_run),
            ("r1", "T1", 5, "w1/0", "r1-T1-5")
        );
        assert_eq!(
            r.entry,
            json!({"entry": "attempt_started", "task": "T1", "attempt": r.seq})
        );
        // A second's slack either way for the server's rounding and clock reads.
        assert!(
            (before - 1_000..=after + 1_000).contains(&r.at_ms),
            "{} not within [{before}, {after}]",
            r.at_ms
        );
    }
    // Appended in the order 2, 0, 1: the store's times say so.
    assert!(rows[2].at_ms <= rows[0].at_ms && rows[0].at_ms <= rows[1].at_ms);
    assert!(s.entries("other", None).unwrap().is_empty());
}

/// An append retried after a lost reply finds its row and writes nothing, whatever the JSON's
/// spacing and key order; a different entry, or the same entry under another token, at a known key is
/// refused and leaves the stored one; text that is not JSON is refused and stores nothing.
fn a_retried_append_writes_nothing_and_a_different_one_is_refused(open: &Open) {
    let s = open();
    let c = claim("r1", "T1", 3, "w1/0");
    let first = line("merged", "T1", 1);
    assert!(s.append(&c, 0, &first).unwrap());
    assert!(!s.append(&c, 0, &first).unwrap(), "a retry writes nothing");
    let reordered = r#"{ "entry": "merged", "task": "T1", "attempt": 1 }"#;
    assert!(
        !s.append(&c, 0, reordered).unwrap(),
        "the same JSON, spaced and reordered"
    );
    let e = s.append(&c, 0, &line("merged", "T1", 2)).unwrap_err();
    assert!(
        matches!(e, Error::Corrupt { .. }) && e.to_string().contains("other content"),
        "{e}"
    );
    let mut other_token = c.clone();
    other_token.token = 4;
    assert!(matches!(
        s.append(&other_token, 0, &first),
        Err(Error::Corrupt { .. })
    ));
    assert!(s.append(&c, 1, "{\"entry\": ").is_err(), "not JSON");
    let rows = s.entries("r1", None).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0].entry,
        serde_json::from_str::<serde_json::Value>(&first).unwrap()
    );
    assert_eq!(rows[0].token, 3);
}

/// The newest `n` entries of each task are those of its newest claim (the greatest token)
/// first, then the older claim's last ones; read in task, token, `seq` order. Other runs'
/// entries stay out; `n = 0` reads none.
fn the_newest_entries_per_task_come_from_its_newest_claim(open: &Open) {
    let s = open();
    let (old, new) = (claim("r1", "T1", 3, "w1/0"), claim("r1", "T1", 7, "w2/0"));
    let t2 = claim("r1", "T2", 5, "w1/0");
    // The newer claim's entries go in first: order comes from tokens, not from the clock.
    for seq in 0..3 {
        s.append(&new, seq, &line("attempt_started", "T1", seq))
            .unwrap();
    }
    for seq in 0..5 {
        s.append(&old, seq, &line("attempt_started", "T1", seq))
            .unwrap();
    }
    for seq in 0..2 {
        s.append(&t2, seq, &line("attempt_started", "T2", seq))
            .unwrap();
    }
    s.append(&claim("r2", "T1", 9, "w3/0"), 0, &line("merged", "T1", 0))
        .unwrap();
    let key = |rows: &[lightsout_fleet::journal::JournalRow]| {
        rows.iter()
            .map(|r| (r.task.clone(), r.token, r.seq))
            .collect::<Vec<_>>()
    };
    let t = |task: &str, token: u64, seq: u64| (task.to_owned(), token, seq);
    assert_eq!(
        key(&s.entries("r1", Some(4)).unwrap()),
        [
            t("T1", 3, 4),
            t("T1", 7, 0),
            t("T1", 7, 1),
            t("T1", 7, 2),
            t("T2", 5, 0),
            t("T2", 5, 1)
        ]
    );
    assert_eq!(
        key(&s.entries("r1", Some(1)).unwrap()),
        [t("T1", 7, 2), t("T2", 5, 1)]
    );
    assert!(s.entries("r1", Some(0)).unwrap().is_empty());
    let all = s.entries("r1", None).unwrap();
    assert_eq!(all.len(), 10);
    assert!(all.iter().all(|r| r.run == "r1"));
    assert_eq!(key(&all)[..5], [0, 1, 2, 3, 4].map(|n| t("T1", 3, n)));
}

/// Two workers (each its own connection) append to one fleet run at once: each its own
/// task's claim run, and both the same rows of a third (as a retry racing its first try
/// would). Every row is stored once, in `seq` order per claim run, and each contested row was
/// written by exactly one of them.
fn two_workers_append_to_one_fleet_run_at_once(open: &Open) {
    const N: u64 = 40;
    let start = Arc::new(Barrier::new(2));
    let shared = claim("r1", "T3", 9, "w1/0");
    let threads: Vec<_> = ["T1", "T2"]
        .into_iter()
        .enumerate()
        .map(|(i, task)| {
            // Opened here: a thread that failed before the barrier would leave the other
            // waiting for ever (concurrent opens are `sqlite`'s own test).
            let store = open();
            let (start, shared) = (start.clone(), shared.clone());
            std::thread::spawn(move || {
                let mine = claim("r1", task, i as u64 + 1, &format!("w{i}/0"));
                start.wait();
                let mut won = 0;
                for seq in 0..N {
                    assert!(store.append(&mine, seq, &line("a", task, seq)).unwrap());
                    won += u64::from(store.append(&shared, seq, &line("a", "T3", seq)).unwrap());
                }
                won
            })
        })
        .collect();
    let won: u64 = threads.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(won, N, "each contested row written once");
    let rows = open().entries("r1", None).unwrap();
    assert_eq!(rows.len() as u64, 3 * N);
    for (task, token) in [("T1", 1), ("T2", 2), ("T3", 9)] {
        let seqs: Vec<u64> = rows
            .iter()
            .filter(|r| r.task == task)
            .inspect(|r| assert_eq!(r.token, token))
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, (0..N).collect::<Vec<_>>(), "{task}");
    }
}
