//! One suite for [`QueueStore`], called once per backend.

use lightsout_fleet::queue::{PgQueue, QueueChange, QueueStatus, QueueStore, SqliteQueue};
use lightsout_fleet::testing::fresh_database;
use std::sync::{Arc, Barrier};

type Open = Arc<dyn Fn() -> Box<dyn QueueStore> + Send + Sync>;

fn sqlite() -> (tempfile::TempDir, Open) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().to_owned();
    let open: Open = Arc::new(move || Box::new(SqliteQueue::in_repo(&repo).unwrap()));
    (dir, open)
}

fn postgres() -> Open {
    let url = fresh_database("queue");
    Arc::new(move || Box::new(PgQueue::connect(&url).unwrap()))
}

fn entries_go_queued_running_finished_in_order(open: &Open) {
    let q = open();
    let a = q.add("specs/a.md").unwrap();
    let b = q.add("specs/b.md").unwrap();
    assert!(a.id < b.id);
    assert_eq!(q.next().unwrap().unwrap().id, a.id);
    let started = q
        .apply(&QueueChange::Start {
            id: a.id,
            run_id: "r1".into(),
        })
        .unwrap()
        .unwrap();
    assert_eq!(started.status, QueueStatus::Running);
    assert_eq!(started.run_id.as_deref(), Some("r1"));
    // A running entry is next again (resume), it cannot be removed, and only its own run
    // may start it again.
    assert_eq!(q.next().unwrap().unwrap().id, a.id);
    assert_eq!(q.apply(&QueueChange::Remove { id: a.id }).unwrap(), None);
    let other = QueueChange::Start {
        id: a.id,
        run_id: "r2".into(),
    };
    assert_eq!(q.apply(&other).unwrap(), None);
    let finish = QueueChange::Finish {
        id: a.id,
        status: QueueStatus::Passed,
        detail: "gate: PASS".into(),
    };
    assert_eq!(
        q.apply(&finish).unwrap().unwrap().status,
        QueueStatus::Passed
    );
    // Finishing twice applies to nothing.
    assert_eq!(q.apply(&finish).unwrap(), None);
    assert_eq!(q.next().unwrap().unwrap().id, b.id);
    assert_eq!(
        q.apply(&QueueChange::Remove { id: b.id })
            .unwrap()
            .map(|e| e.spec),
        Some("specs/b.md".into())
    );
    assert_eq!(q.next().unwrap(), None);
    assert_eq!(q.entries().unwrap().len(), 1);
}

fn the_queue_and_the_stop_flag_survive_reopening(open: &Open) {
    let q = open();
    q.add("specs/a.md").unwrap();
    assert!(!q.stop_requested().unwrap());
    q.apply(&QueueChange::Stop(true)).unwrap();
    drop(q);
    let q = open();
    assert!(q.stop_requested().unwrap());
    assert_eq!(q.entries().unwrap()[0].spec, "specs/a.md");
    q.apply(&QueueChange::Stop(false)).unwrap();
    assert!(!q.stop_requested().unwrap());
    // Ids are never reused, even after the last entry is removed.
    let id = q.entries().unwrap()[0].id;
    q.apply(&QueueChange::Remove { id }).unwrap();
    assert!(q.add("specs/b.md").unwrap().id > id);
}

/// Two runners (two connections) racing to start the same entry: exactly one wins, and the
/// entries added meanwhile by others are all kept.
fn racing_runners_start_an_entry_once(open: &Open) {
    const M: usize = 4;
    let id = open().add("specs/a.md").unwrap().id;
    let start = Arc::new(Barrier::new(M));
    let racers: Vec<_> = (0..M)
        .map(|i| {
            let (open, start) = (open.clone(), start.clone());
            std::thread::spawn(move || {
                let q = open();
                start.wait();
                q.add(&format!("specs/added-{i}.md")).unwrap();
                q.apply(&QueueChange::Start {
                    id,
                    run_id: format!("run-{i}"),
                })
                .unwrap()
                .is_some()
            })
        })
        .collect();
    let won = racers
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|&w| w)
        .count();
    assert_eq!(won, 1);
    assert_eq!(open().entries().unwrap().len(), M + 1);
}

/// Adding a spec that is queued already finds its entry instead of adding another, also
/// when racing runners add it at once; once it has started, it may be queued again.
fn adding_a_queued_spec_again_adds_nothing(open: &Open) {
    const M: usize = 4;
    let q = open();
    let a = q.add("specs/a.md").unwrap();
    let b = q.add("specs/b.md").unwrap();
    assert_eq!(q.add("specs/a.md").unwrap(), a);
    assert_eq!(q.entries().unwrap().len(), 2);
    let start = Arc::new(Barrier::new(M));
    let racers: Vec<_> = (0..M)
        .map(|_| {
            let (open, start) = (open.clone(), start.clone());
            std::thread::spawn(move || {
                let q = open();
                start.wait();
                q.add("specs/c.md").unwrap().id
            })
        })
        .collect();
    let ids: std::collections::BTreeSet<u64> =
        racers.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(ids.len(), 1, "one entry for c: {ids:?}");
    assert_eq!(q.entries().unwrap().len(), 3);
    q.apply(&QueueChange::Start {
        id: b.id,
        run_id: "r1".into(),
    })
    .unwrap()
    .unwrap();
    let again = q.add("specs/b.md").unwrap();
    assert!(
        again.id > b.id,
        "a running spec can be queued for another build"
    );
    assert_eq!(q.add("specs/b.md").unwrap(), again);
    assert_eq!(q.entries().unwrap().len(), 4);
}

both!(
    entries_go_queued_running_finished_in_order,
    the_queue_and_the_stop_flag_survive_reopening,
    racing_runners_start_an_entry_once,
    adding_a_queued_spec_again_adds_nothing
);

/// A Postgres queue whose schema is newer than this version is refused, as on `SQLite`.
#[test]
fn postgres_refuses_a_newer_schema() {
    let _server = crate::server();
    let url = fresh_database("queue");
    drop(PgQueue::connect(&url).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        c.execute(
            "UPDATE lightsout_schema SET version = 99 WHERE name = 'queue'",
            &[],
        )
        .await
        .unwrap();
        drop(c);
        let _ = driver.await;
    });
    let e = PgQueue::connect(&url).unwrap_err();
    assert!(e.to_string().contains("newer"), "{e}");
}
