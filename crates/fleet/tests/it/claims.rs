//! One suite for [`ClaimStore`], called once per backend.

use lightsout_fleet::Error;
use lightsout_fleet::claims::{Claim, ClaimStore, PgClaims, PlannedTask, SqliteClaims, TaskStatus};
use lightsout_fleet::testing::{fresh_database, restart_server};
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::{Arc, Barrier};
use std::time::Duration;

pub(crate) const LONG: Duration = Duration::from_secs(600);

/// Opens a new handle on one store, as a separate worker would: a new connection (`SQLite`
/// file, Postgres pool) to the same data.
pub(crate) type Open = Arc<dyn Fn() -> Box<dyn ClaimStore> + Send + Sync>;

pub(crate) fn sqlite() -> (tempfile::TempDir, Open) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let open: Open = Arc::new(move || Box::new(SqliteClaims::open(&path).unwrap()));
    (dir, open)
}

pub(crate) fn postgres() -> Open {
    let url = fresh_database("claims");
    Arc::new(move || Box::new(PgClaims::connect(&url, 4).unwrap()))
}

pub(crate) fn tasks(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("T{i:04}")).collect()
}

pub(crate) fn assert_stale(r: Result<impl std::fmt::Debug, Error>) {
    match r {
        Err(Error::Stale { .. }) => {}
        other => panic!("expected a stale-claim refusal, got {other:?}"),
    }
}

/// N tasks, M workers claiming at once (each its own connection), leases holding: every task
/// is claimed exactly once, tokens are distinct, and the queue then runs dry.
fn claims_are_exclusive_under_concurrency(open: &Open) {
    const N: usize = 200;
    const M: usize = 8;
    assert_eq!(open().enqueue("run", &tasks(N)).unwrap(), N);
    let start = Arc::new(Barrier::new(M));
    let workers: Vec<_> = (0..M)
        .map(|w| {
            let (open, start) = (open.clone(), start.clone());
            std::thread::spawn(move || {
                let store = open();
                start.wait();
                let mut got = Vec::new();
                while let Some(c) = store.claim(&format!("w{w}"), LONG).unwrap() {
                    got.push(c);
                }
                got
            })
        })
        .collect();
    let claims: Vec<Claim> = workers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let mut per_task: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &claims {
        *per_task.entry(&c.task).or_default() += 1;
    }
    assert_eq!(per_task.len(), N, "every task claimed");
    assert!(per_task.values().all(|&n| n == 1), "no task claimed twice");
    let mut tokens: Vec<u64> = claims.iter().map(|c| c.token).collect();
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), N, "fencing tokens are distinct");
    let store = open();
    assert_eq!(store.claim("late", LONG).unwrap(), None);
    for c in &claims {
        store.complete(c).unwrap();
    }
    let all = store.tasks("run").unwrap();
    assert!(all.iter().all(|t| t.status == TaskStatus::Done));
}

/// A lapsed lease is claimed again under a higher token; the old holder can no longer
/// heartbeat, complete or fail; the new holder can.
fn a_lapsed_lease_is_reclaimed_and_the_old_token_refused(open: &Open) {
    let (a, b) = (open(), open());
    a.enqueue("run", &tasks(1)).unwrap();
    // A lease of 0 ms lapses at once: no sleeping for a clock.
    let old = a.claim("a", Duration::ZERO).unwrap().unwrap();
    assert_eq!(old.attempt, 1);
    assert_stale(a.heartbeat(&old, LONG));
    let new = b.claim("b", LONG).unwrap().unwrap();
    assert_eq!(new.task, old.task);
    assert!(new.token > old.token, "{} > {}", new.token, old.token);
    assert_eq!(new.attempt, 2);
    assert_stale(a.complete(&old));
    assert_stale(a.fail(&old, "late"));
    assert_stale(a.release(&old));
    // While b's lease holds, nobody else gets the task.
    assert_eq!(a.claim("a", LONG).unwrap(), None);
    let new = b.heartbeat(&new, LONG).unwrap();
    b.complete(&new).unwrap();
    // A retried completion (a lost reply) succeeds; the old holder still cannot.
    b.complete(&new).unwrap();
    assert_stale(a.complete(&old));
    let rec = &b.tasks("run").unwrap()[0];
    assert_eq!(
        (rec.status, rec.token, rec.worker.as_deref()),
        (TaskStatus::Done, new.token, Some("b"))
    );
}

/// Settled tasks stay settled: not claimed again, not revived by enqueueing them again;
/// a released task comes back under a new token.
fn settled_tasks_are_never_claimed_again(open: &Open) {
    let s = open();
    assert_eq!(s.enqueue("run", &tasks(3)).unwrap(), 3);
    let t0 = s.claim("w", LONG).unwrap().unwrap();
    let t1 = s.claim("w", LONG).unwrap().unwrap();
    let t2 = s.claim("w", LONG).unwrap().unwrap();
    assert_eq!(
        [&t0.task, &t1.task, &t2.task],
        ["T0000", "T0001", "T0002"],
        "oldest first"
    );
    s.complete(&t0).unwrap();
    s.fail(&t1, "tests failed").unwrap();
    s.release(&t2).unwrap();
    assert_stale(s.complete(&t2));
    assert_eq!(
        s.enqueue("run", &tasks(3)).unwrap(),
        0,
        "enqueue is idempotent"
    );
    let again = s.claim("w", LONG).unwrap().unwrap();
    assert_eq!(again.task, "T0002");
    assert!(again.token > t2.token);
    assert_eq!(s.claim("w", LONG).unwrap(), None);
    let recs = s.tasks("run").unwrap();
    let status: Vec<_> = recs.iter().map(|r| r.status).collect();
    assert_eq!(
        status,
        [TaskStatus::Done, TaskStatus::Failed, TaskStatus::Claimed]
    );
    assert_eq!(recs[1].detail.as_deref(), Some("tests failed"));
}

/// The merge lock admits one holder at a time, across connections.
fn the_merge_lock_admits_one_holder(open: &Open) {
    let (a, b) = (open(), open());
    let held = a.try_merge_lock("a").unwrap().unwrap();
    assert_eq!(held.holder(), "a");
    assert!(b.try_merge_lock("b").unwrap().is_none());
    assert!(a.try_merge_lock("a2").unwrap().is_none(), "not re-entrant");
    drop(held);
    let held = b.try_merge_lock("b").unwrap().unwrap();
    assert!(a.try_merge_lock("a").unwrap().is_none());
    drop(held);
}

fn planned(task: &str, deps: &[&str], estimate_ms: u64, priority: i64) -> PlannedTask {
    PlannedTask {
        task: task.into(),
        deps: deps.iter().map(|d| (*d).to_owned()).collect(),
        estimate_ms: Some(estimate_ms),
        priority,
    }
}

/// A plan with dependencies: a task is blocked until every dependency is done (a failed one
/// keeps it blocked), the highest priority among ready tasks is claimed first, re-enqueueing
/// is a no-op, and the store gives back dependencies, estimates and priorities as planned.
fn a_plan_is_claimed_in_dependency_order(open: &Open) {
    use TaskStatus::{Blocked, Claimed, Done, Failed, Ready};
    let s = open();
    let plan = [
        planned("A", &[], 10, 1),
        planned("B", &[], 20, 5),
        planned("C", &["A", "B"], 30, 9),
        planned("D", &["C"], 40, 0),
        planned("E", &["B"], 5, 0),
    ];
    assert_eq!(s.enqueue_plan("run", &plan).unwrap(), 5);
    assert_eq!(s.enqueue_plan("run", &plan).unwrap(), 0, "idempotent");
    let status = |s: &dyn ClaimStore| -> Vec<TaskStatus> {
        s.tasks("run").unwrap().iter().map(|t| t.status).collect()
    };
    assert_eq!(status(&*s), [Ready, Ready, Blocked, Blocked, Blocked]);
    let tb = s.claim("w", LONG).unwrap().unwrap();
    assert_eq!(tb.task, "B", "priority 5 before priority 1");
    let ta = s.claim("w", LONG).unwrap().unwrap();
    assert_eq!(ta.task, "A");
    assert_eq!(s.claim("w", LONG).unwrap(), None, "C, D, E are blocked");
    s.complete(&tb).unwrap();
    assert_eq!(status(&*s), [Claimed, Done, Blocked, Blocked, Ready]);
    s.complete(&ta).unwrap();
    let tc = s.claim("w", LONG).unwrap().unwrap();
    assert_eq!(tc.task, "C", "priority 9 before E's 0");
    s.fail(&tc, "tests failed").unwrap();
    let te = s.claim("w", LONG).unwrap().unwrap();
    assert_eq!(te.task, "E");
    s.complete(&te).unwrap();
    assert_eq!(
        s.claim("w", LONG).unwrap(),
        None,
        "D waits on a failed task"
    );
    assert_eq!(status(&*s), [Done, Done, Failed, Blocked, Done]);
    let recs = s.tasks("run").unwrap();
    assert_eq!(recs[2].deps, ["A", "B"]);
    assert_eq!(
        (recs[3].estimate_ms, recs[3].priority),
        (Some(40), 0),
        "{:?}",
        recs[3]
    );
    // A later plan may depend on tasks the run has; done ones count at once.
    assert_eq!(
        s.enqueue_plan("run", &[planned("F", &["E"], 1, 0)])
            .unwrap(),
        1
    );
    assert_eq!(s.claim("w", LONG).unwrap().unwrap().task, "F");
    assert_eq!(s.runs().unwrap(), ["run"]);
    let now = s.now_ms().unwrap();
    assert!(now > 1_700_000_000_000, "ms since the epoch: {now}");
}

/// Plans that would leave tasks blocked forever are refused whole: an unknown dependency, a
/// cycle.
fn a_plan_with_an_unknown_dependency_or_a_cycle_is_refused(open: &Open) {
    let s = open();
    let unknown = [planned("A", &[], 1, 0), planned("B", &["Z"], 1, 0)];
    let e = s.enqueue_plan("run", &unknown).unwrap_err();
    assert!(
        matches!(&e, lightsout_fleet::Error::Plan { task, .. } if task == "B"),
        "{e}"
    );
    let cycle = [
        planned("A", &["C"], 1, 0),
        planned("B", &["A"], 1, 0),
        planned("C", &["B"], 1, 0),
    ];
    let e = s.enqueue_plan("run", &cycle).unwrap_err();
    assert!(e.to_string().contains("cycle"), "{e}");
    assert!(s.tasks("run").unwrap().is_empty(), "nothing added");
}

/// Eight workers drain a fan-in (40 roots, one sink depending on all of them, one task after
/// the sink) with the roots completed concurrently: no task is claimed before its
/// dependencies were completed, and the sink is unblocked exactly once.
fn concurrent_completions_unblock_a_fan_in_once(open: &Open) {
    const ROOTS: usize = 40;
    const M: usize = 8;
    let roots: Vec<String> = (0..ROOTS).map(|i| format!("R{i:02}")).collect();
    let mut plan: Vec<PlannedTask> = roots.iter().map(PlannedTask::new).collect();
    plan.push(PlannedTask {
        deps: roots.clone(),
        ..PlannedTask::new("SINK")
    });
    plan.push(PlannedTask {
        deps: vec!["SINK".into()],
        ..PlannedTask::new("LAST")
    });
    open().enqueue_plan("run", &plan).unwrap();
    let deps: std::collections::HashMap<String, Vec<String>> = plan
        .iter()
        .map(|t| (t.task.clone(), t.deps.clone()))
        .collect();
    let deps = Arc::new(deps);
    let completed = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let left = Arc::new(std::sync::atomic::AtomicUsize::new(plan.len()));
    let start = Arc::new(Barrier::new(M));
    let workers: Vec<_> = (0..M)
        .map(|w| {
            let (open, deps, completed, left, start) = (
                open.clone(),
                deps.clone(),
                completed.clone(),
                left.clone(),
                start.clone(),
            );
            std::thread::spawn(move || {
                let store = open();
                start.wait();
                while left.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                    let Some(c) = store.claim(&format!("w{w}"), LONG).unwrap() else {
                        let recs = store.tasks("run").unwrap();
                        let open: Vec<_> = recs
                            .iter()
                            .filter(|r| r.status != TaskStatus::Done)
                            .collect();
                        assert!(
                            open.is_empty() || open.iter().any(|r| r.status != TaskStatus::Blocked),
                            "blocked forever: {open:?}"
                        );
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    {
                        let done = completed.lock().unwrap();
                        for d in &deps[&c.task] {
                            assert!(done.contains(d), "{} claimed before {d} was done", c.task);
                        }
                    }
                    completed.lock().unwrap().insert(c.task.clone());
                    store.complete(&c).unwrap();
                    left.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let recs = open().tasks("run").unwrap();
    assert!(
        recs.iter()
            .all(|r| r.status == TaskStatus::Done && r.attempts == 1)
    );
}

both!(
    claims_are_exclusive_under_concurrency,
    a_lapsed_lease_is_reclaimed_and_the_old_token_refused,
    settled_tasks_are_never_claimed_again,
    the_merge_lock_admits_one_holder,
    a_plan_is_claimed_in_dependency_order,
    a_plan_with_an_unknown_dependency_or_a_cycle_is_refused,
    concurrent_completions_unblock_a_fan_in_once
);

/// Postgres restarted under a store: the store reconnects; a claim made before the restart is
/// still held under its token (not lost), no task is handed out twice, and the merge lock,
/// whose session died with the server, can be taken again.
#[test]
fn postgres_store_reconnects_after_a_server_restart() {
    let _alone = crate::server_alone();
    let open = postgres();
    let s = open();
    s.enqueue("run", &tasks(2)).unwrap();
    let held = s.claim("w", LONG).unwrap().unwrap();
    let lock = s.try_merge_lock("w").unwrap().unwrap();
    restart_server();
    let held = s.heartbeat(&held, LONG).unwrap();
    let next = s.claim("w", LONG).unwrap().unwrap();
    assert_ne!(next.task, held.task);
    assert_eq!(s.claim("w", LONG).unwrap(), None);
    s.complete(&held).unwrap();
    s.complete(&next).unwrap();
    drop(lock);
    assert!(s.try_merge_lock("w").unwrap().is_some());
    // A second handle opened after the restart sees the same state.
    let recs = open().tasks("run").unwrap();
    assert!(
        recs.iter()
            .all(|r| r.status == TaskStatus::Done && r.attempts == 1)
    );
}
