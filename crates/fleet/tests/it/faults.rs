//! Faults the fleet's claim store must survive (issue 21), one function per fault, run
//! against both backends where the fault exists on both: a partition between a worker and the
//! store longer than the lease, the store going away mid-run (a Postgres restart; on `SQLite`
//! another process holding the write lock), and two workers racing for the merge lock. The
//! first two run in worker mode: each claim kept by a [`Keeper`] and its work driven by
//! [`Keeper::hold`], the code `lightsout worker` runs.

use crate::claims::{LONG, Open, assert_stale, tasks};
use lightsout_fleet::Error;
use lightsout_fleet::claims::{
    Claim, ClaimStore, Keeper, Lost, MergeLock, PlannedTask, Settle, TaskRecord, TaskStatus,
};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// A worker's view of the store through a link that can be cut: while cut, every call
/// blocks, as one over a dead TCP connection does, and goes through once the link heals.
struct Partitioned {
    inner: Box<dyn ClaimStore>,
    cut: Arc<AtomicBool>,
}

impl Partitioned {
    fn wait(&self) {
        while self.cut.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl ClaimStore for Partitioned {
    fn enqueue_plan(&self, run: &str, plan: &[PlannedTask]) -> Result<usize, Error> {
        self.wait();
        self.inner.enqueue_plan(run, plan)
    }
    fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Claim>, Error> {
        self.wait();
        self.inner.claim(worker, lease)
    }
    fn heartbeat(&self, claim: &Claim, lease: Duration) -> Result<Claim, Error> {
        self.wait();
        self.inner.heartbeat(claim, lease)
    }
    fn settle(&self, claim: &Claim, outcome: &Settle) -> Result<(), Error> {
        self.wait();
        self.inner.settle(claim, outcome)
    }
    fn tasks(&self, run: &str) -> Result<Vec<TaskRecord>, Error> {
        self.wait();
        self.inner.tasks(run)
    }
    fn runs(&self) -> Result<Vec<String>, Error> {
        self.wait();
        self.inner.runs()
    }
    fn now_ms(&self) -> Result<i64, Error> {
        self.wait();
        self.inner.now_ms()
    }
    fn try_merge_lock(&self, holder: &str) -> Result<Option<MergeLock>, Error> {
        self.wait();
        self.inner.try_merge_lock(holder)
    }
}

/// A partition longer than the lease, through a link cut inside the process (both backends):
/// see [`partition`].
pub(crate) fn a_partitioned_worker_stops_before_its_task_is_claimed_again(open: &Open) {
    let cut = Arc::new(AtomicBool::new(false));
    let a: Arc<dyn ClaimStore> = Arc::new(Partitioned {
        inner: open(),
        cut: cut.clone(),
    });
    partition(&a, open().as_ref(), &|on| cut.store(on, Ordering::SeqCst));
}

/// What a worker's agent leaves behind: when its work was dropped (stopped) by the worker.
struct Agent {
    stopped: Arc<Mutex<Option<Instant>>>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        *self.stopped.lock().unwrap() = Some(Instant::now());
    }
}

/// A partition longer than the lease, in worker mode: worker a claims a task and runs its
/// "agent" (work that never ends by itself) under [`Keeper::hold`], as `lightsout worker`
/// does; `cut(true)` cuts its link to the store; worker b polls for the task. a's keeper
/// stops the agent (drops the work) no later than the moment b gets the task, so a stopped
/// before anyone else could start. Once the link heals (`cut(false)`), every write a makes
/// under its old token is refused: the keeper's finish, the merge step's fenced merge lock and
/// renewal (its [`ClaimGuard`](lightsout_fleet::claims::ClaimGuard)), and the raw heartbeat,
/// complete, fail and release; b's claim, under a greater token, completes.
fn partition(a: &Arc<dyn ClaimStore>, b: &dyn ClaimStore, cut: &dyn Fn(bool)) {
    // Heartbeats every 267 ms; `hold` gives up 640 ms after the last one got through (its
    // deadline less a margin of 160 ms), which a loaded machine's slow commit stays within.
    let lease = Duration::from_millis(800);
    b.enqueue("run", &tasks(1)).unwrap();
    let keeper = Keeper::claim_next(a.clone(), "a", lease)
        .unwrap()
        .expect("the task");
    let old = keeper.claim();
    let guard = keeper.guard();
    let stopped = Arc::new(Mutex::new(None));
    let agent = Agent {
        stopped: stopped.clone(),
    };
    let worker = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let held = rt.block_on(keeper.hold(async move {
            let _agent = agent;
            std::future::pending::<()>().await;
        }));
        (keeper, held)
    });
    // A lease and a half with the link up: heartbeats keep the claim, nobody else gets it.
    std::thread::sleep(lease * 3 / 2);
    assert_eq!(guard.lost(), None);
    assert!(stopped.lock().unwrap().is_none(), "the agent runs");
    assert_eq!(b.claim("b", LONG).unwrap(), None);
    cut(true);
    let (new, taken_at) = loop {
        if let Some(c) = b.claim("b", LONG).unwrap() {
            break (c, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (keeper, held) = worker.join().unwrap();
    assert_eq!(held, Err(Lost::Deadline));
    assert_eq!(keeper.lost(), Some(Lost::Deadline));
    let stopped_at = stopped.lock().unwrap().expect("the agent was stopped");
    assert!(
        stopped_at <= taken_at,
        "worker a stopped its agent {:?} after b took the task",
        stopped_at - taken_at
    );
    assert!(keeper.deadline() <= taken_at);
    assert!(new.token > old.token, "{} > {}", new.token, old.token);
    assert_eq!(new.attempt, 2);
    cut(false);
    assert_stale(guard.try_merge_lock());
    assert_stale(guard.renew());
    let renewed = keeper.claim();
    assert_stale(a.heartbeat(&renewed, LONG));
    assert_stale(a.complete(&renewed));
    assert_stale(a.fail(&renewed, "late"));
    assert_stale(a.release(&renewed));
    assert_stale(a.try_merge_lock_for(&renewed, LONG));
    assert_stale(keeper.finish(&Settle::Done));
    // The refused merge let the lock go: the new holder takes it and merges.
    let lock = b
        .try_merge_lock_for(&new, LONG)
        .unwrap()
        .expect("the lock is free");
    b.complete(&new).unwrap();
    drop(lock);
    let rec = &b.tasks("run").unwrap()[0];
    assert_eq!(
        (rec.status, rec.token, rec.worker.as_deref(), rec.attempts),
        (TaskStatus::Done, new.token, Some("b"), 2)
    );
}

/// A TCP relay on loopback between a store client and the Postgres server that can be cut:
/// cutting shuts every relayed connection down and, until it heals, drops each new one as
/// soon as it is accepted (a network partition as the client sees it).
struct Relay {
    port: u16,
    cut: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let live = Arc::new(Mutex::new(Vec::<std::net::TcpStream>::new()));
        let (c, l) = (cut.clone(), live.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if c.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(upstream) else {
                    continue;
                };
                let mut keep = l.lock().unwrap();
                for s in [&client, &server] {
                    keep.push(s.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Self { port, cut, live }
    }

    fn set_cut(&self, on: bool) {
        self.cut.store(on, Ordering::SeqCst);
        if on {
            for s in self.live.lock().unwrap().drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// `url` (`postgres://user@127.0.0.1:PORT/db`) with its port replaced by `port`.
fn via_port(url: &str, port: u16) -> String {
    let (head, rest) = url.rsplit_once(':').expect("a port in the URL");
    let (_, db) = rest.split_once('/').expect("a database in the URL");
    format!("{head}:{port}/{db}")
}

/// The server's address in `url`.
fn server_addr(url: &str) -> std::net::SocketAddr {
    let (_, rest) = url.rsplit_once('@').expect("user@host:port in the URL");
    let (hostport, _) = rest.split_once('/').expect("a database in the URL");
    hostport.parse().expect("host:port")
}

/// The store goes away mid-run (`outage`, called once a quarter of the tasks are done):
/// four workers, each with its own connection, claiming and completing 120 tasks carry on
/// once it is back. No claim is lost (every task ends done; a lost claim would leave its task
/// claimed under a ten-minute lease) and none is doubled (each task completed once, on its
/// first attempt).
pub(crate) fn workers_carry_on_after_a_store_outage(open: &Open, outage: &dyn Fn()) {
    const N: usize = 120;
    const M: usize = 4;
    open().enqueue("run", &tasks(N)).unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(M));
    let workers: Vec<_> = (0..M)
        .map(|w| {
            let (open, done, start) = (open.clone(), done.clone(), start.clone());
            std::thread::spawn(move || {
                let store = open();
                start.wait();
                let mut mine = Vec::new();
                while let Some(c) = store.claim(&format!("w{w}"), LONG).unwrap() {
                    std::thread::sleep(Duration::from_millis(2));
                    store.complete(&c).unwrap();
                    done.fetch_add(1, Ordering::SeqCst);
                    mine.push(c.task);
                }
                mine
            })
        })
        .collect();
    while done.load(Ordering::SeqCst) < N / 4 {
        std::thread::sleep(Duration::from_millis(2));
    }
    outage();
    let completed: Vec<String> = workers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let distinct: BTreeSet<&String> = completed.iter().collect();
    assert_eq!(completed.len(), N, "each task completed once");
    assert_eq!(distinct.len(), N);
    let recs = open().tasks("run").unwrap();
    assert!(
        recs.iter()
            .all(|r| r.status == TaskStatus::Done && r.attempts == 1),
        "{:?}",
        recs.iter()
            .filter(|r| r.status != TaskStatus::Done || r.attempts != 1)
            .collect::<Vec<_>>()
    );
}

/// The store goes away mid-run (`outage`), in worker mode: four workers, each with its own
/// connection (`open_worker`), claim 120 tasks through a [`Keeper`] and run each under
/// [`Keeper::hold`], as `lightsout worker` does. The outage comes while every worker holds a
/// task; each of those tasks then renews its claim through the keeper (the merge step's
/// [`ClaimGuard::renew`](lightsout_fleet::claims::ClaimGuard::renew): reconnected, with
/// backoff) before it ends, and the workers drain the rest. No claim is lost (no keeper gives
/// up, every task ends done; a lost claim would leave its task claimed) and none is doubled
/// (each task completed once, on its first attempt).
pub(crate) fn kept_claims_carry_on_after_a_store_outage(
    open: &Open,
    open_worker: &Open,
    outage: &dyn Fn(),
) {
    const N: usize = 120;
    const M: usize = 4;
    // Heartbeats every 2 s; a worker gives up 5 s after its last heartbeat got through
    // (its deadline less the 1 s margin of `hold`). The outages here (every connection cut
    // and the server unreachable for a second, a lock held for a second) are far shorter.
    let lease = Duration::from_secs(6);
    open().enqueue("run", &tasks(N)).unwrap();
    let holding = Arc::new(Barrier::new(M + 1));
    let back = Arc::new(Barrier::new(M + 1));
    let workers: Vec<_> = (0..M)
        .map(|w| {
            let (open, holding, back) = (open_worker.clone(), holding.clone(), back.clone());
            std::thread::spawn(move || {
                let store: Arc<dyn ClaimStore> = Arc::from(open());
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let mut mine = Vec::new();
                let mut first = true;
                while let Some(keeper) =
                    Keeper::claim_next(store.clone(), &format!("w{w}"), lease).unwrap()
                {
                    let claim = keeper.claim();
                    let work = async {
                        if std::mem::take(&mut first) {
                            holding.wait();
                            back.wait();
                            // A heartbeat through the keeper, retried until the store is back.
                            let guard = keeper.guard();
                            tokio::task::spawn_blocking(move || guard.renew())
                                .await
                                .unwrap()
                                .unwrap();
                        } else {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                    };
                    let held = rt.block_on(keeper.hold(work));
                    assert_eq!(held, Ok(()), "worker w{w} lost task {}", claim.task);
                    keeper.finish(&Settle::Done).unwrap();
                    mine.push(claim.task);
                }
                mine
            })
        })
        .collect();
    holding.wait();
    outage();
    back.wait();
    let completed: Vec<String> = workers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let distinct: BTreeSet<&String> = completed.iter().collect();
    assert_eq!(completed.len(), N, "each task completed once");
    assert_eq!(distinct.len(), N);
    let recs = open().tasks("run").unwrap();
    assert!(
        recs.iter()
            .all(|r| r.status == TaskStatus::Done && r.attempts == 1),
        "{:?}",
        recs.iter()
            .filter(|r| r.status != TaskStatus::Done || r.attempts != 1)
            .collect::<Vec<_>>()
    );
}

/// Two workers racing for the merge lock: both ask at once, one wins, the other waits in
/// [`ClaimStore::merge_lock`] and gets the lock only after the winner let it go.
pub(crate) fn racing_mergers_one_wins_the_other_waits(open: &Open) {
    let events = Arc::new(Mutex::new(Vec::<(String, &str)>::new()));
    let start = Arc::new(Barrier::new(2));
    let mergers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|who| {
            let (open, events, start) = (open.clone(), events.clone(), start.clone());
            std::thread::spawn(move || {
                let store = open();
                start.wait();
                let lock = store
                    .merge_lock(who, Duration::from_millis(20), LONG)
                    .unwrap()
                    .expect("the lock, in the end");
                events.lock().unwrap().push((who.to_owned(), "enter"));
                // Long enough that the other certainly asks while this one holds it.
                std::thread::sleep(Duration::from_millis(200));
                events.lock().unwrap().push((who.to_owned(), "leave"));
                drop(lock);
            })
        })
        .collect();
    for m in mergers {
        m.join().unwrap();
    }
    let ev = events.lock().unwrap().clone();
    assert_eq!(ev.len(), 4, "{ev:?}");
    let (first, second) = (&ev[0].0, &ev[2].0);
    assert_ne!(first, second, "{ev:?}");
    assert_eq!(
        ev.iter().map(|e| (e.0.as_str(), e.1)).collect::<Vec<_>>(),
        [
            (first.as_str(), "enter"),
            (first.as_str(), "leave"),
            (second.as_str(), "enter"),
            (second.as_str(), "leave")
        ],
        "one holder at a time"
    );
}

mod sqlite {
    use super::*;

    #[test]
    fn a_partitioned_worker_stops_before_its_task_is_claimed_again() {
        let (_dir, open) = crate::claims::sqlite();
        super::a_partitioned_worker_stops_before_its_task_is_claimed_again(&open);
    }

    /// `SQLite` has no server to restart; its outage is another process holding the write
    /// lock for a second (`BEGIN EXCLUSIVE`): writers wait (busy timeout) and carry on.
    #[test]
    fn workers_carry_on_after_a_store_outage() {
        let (dir, open) = crate::claims::sqlite();
        let path = dir.path().join("state.db");
        super::workers_carry_on_after_a_store_outage(&open, &move || {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.busy_timeout(Duration::from_secs(30)).unwrap();
            c.execute_batch("BEGIN EXCLUSIVE").unwrap();
            std::thread::sleep(Duration::from_secs(1));
            c.execute_batch("COMMIT").unwrap();
        });
    }

    /// Worker mode, the same outage: another connection holds the write lock for a second.
    #[test]
    fn kept_claims_carry_on_after_a_store_outage() {
        let (dir, open) = crate::claims::sqlite();
        let path = dir.path().join("state.db");
        super::kept_claims_carry_on_after_a_store_outage(&open, &open, &move || {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.busy_timeout(Duration::from_secs(30)).unwrap();
            c.execute_batch("BEGIN EXCLUSIVE").unwrap();
            std::thread::sleep(Duration::from_secs(1));
            c.execute_batch("COMMIT").unwrap();
        });
    }

    #[test]
    fn racing_mergers_one_wins_the_other_waits() {
        let (_dir, open) = crate::claims::sqlite();
        super::racing_mergers_one_wins_the_other_waits(&open);
    }
}

mod postgres {
    #[test]
    fn a_partitioned_worker_stops_before_its_task_is_claimed_again() {
        let _server = crate::server();
        super::a_partitioned_worker_stops_before_its_task_is_claimed_again(
            &crate::claims::postgres(),
        );
    }

    /// The partition as a cut TCP link: worker a reaches the server through a relay that
    /// drops every connection; its store retries (with backoff) until the link heals.
    #[test]
    fn a_worker_cut_off_by_the_network_stops_before_its_task_is_claimed_again() {
        let _server = crate::server();
        let url = lightsout_fleet::testing::fresh_database("claims");
        let relay = super::Relay::start(super::server_addr(&url));
        let a: std::sync::Arc<dyn lightsout_fleet::claims::ClaimStore> = std::sync::Arc::new(
            lightsout_fleet::claims::PgClaims::connect(&super::via_port(&url, relay.port), 2)
                .unwrap(),
        );
        let b = lightsout_fleet::claims::PgClaims::connect(&url, 2).unwrap();
        super::partition(&a, &b, &|on| relay.set_cut(on));
    }

    /// The server restarted (fast shutdown: every connection cut) mid-run.
    #[test]
    fn workers_carry_on_after_a_store_outage() {
        let _alone = crate::server_alone();
        super::workers_carry_on_after_a_store_outage(
            &crate::claims::postgres(),
            &lightsout_fleet::testing::restart_server,
        );
    }

    /// Worker mode, with the server gone for the workers as a restart makes it: every
    /// connection of theirs cut at once and none accepted for a second (through the loopback
    /// relay, so the other tests keep the server; the real restart is the test above).
    #[test]
    fn kept_claims_carry_on_after_a_store_outage() {
        let _server = crate::server();
        let url = lightsout_fleet::testing::fresh_database("claims");
        let relay = super::Relay::start(super::server_addr(&url));
        let via = super::via_port(&url, relay.port);
        let direct = url.clone();
        let open: crate::claims::Open = std::sync::Arc::new(move || {
            Box::new(lightsout_fleet::claims::PgClaims::connect(&direct, 4).unwrap())
        });
        let open_worker: crate::claims::Open = std::sync::Arc::new(move || {
            Box::new(lightsout_fleet::claims::PgClaims::connect(&via, 4).unwrap())
        });
        super::kept_claims_carry_on_after_a_store_outage(&open, &open_worker, &|| {
            relay.set_cut(true);
            std::thread::sleep(std::time::Duration::from_secs(1));
            relay.set_cut(false);
        });
    }

    #[test]
    fn racing_mergers_one_wins_the_other_waits() {
        let _server = crate::server();
        super::racing_mergers_one_wins_the_other_waits(&crate::claims::postgres());
    }
}
