//! Task claims: which worker builds which task of a run, for how long, under which fencing
//! token; and the fleet-wide merge lock.
//!
//! [`ClaimStore`] is the trait; [`SqliteClaims`] (one machine, `.lightsout/state.db`) and
//! `PgClaims` (a fleet, a `PostgreSQL` server; feature `postgres`) implement it, and one test
//! suite runs against both.
//!
//! # Lease and fencing rules
//! - [`ClaimStore::claim`] hands the oldest claimable task (ready, or claimed with a lapsed
//!   lease) to one worker, with a lease of the length asked for and a *fencing token*: a number
//!   taken from one counter of the whole store, so every claim's token is greater than every
//!   earlier claim's, of any task (the fencing tokens of Kleppmann's "How to do distributed
//!   locking", 2016). On Postgres the pick is `SELECT … FOR UPDATE SKIP LOCKED`, the pattern of
//!   graphile-worker, River, `solid_queue` and pgmq: claimers never wait on each other's rows.
//! - Every later write of the claim ([`ClaimStore::heartbeat`], [`ClaimStore::settle`]) names
//!   its token and is applied only while the task is still claimed under that token *and* the
//!   lease has not lapsed, by the store's clock (the database server's on Postgres, so
//!   workers' clocks do not matter). Otherwise it fails with [`Error::Stale`]: a worker cut off
//!   for longer than its lease can no longer write, whether or not another worker re-claimed
//!   the task. That is the partition rule; the worker must stop its agent when it sees it.
//! - A settled task (done or failed) is never claimed again; enqueueing it again is a no-op.
//!   A released task is claimable again at once, under a new token.
//! - A task enqueued with dependencies ([`ClaimStore::enqueue_plan`]) is
//!   [`TaskStatus::Blocked`] until every one of them is done; the transaction that completes
//!   its last dependency makes it ready. A failed dependency leaves it blocked. Among ready
//!   tasks the highest [`PlannedTask::priority`] is claimed first, then the oldest.
//! - A merge is a write of the claim too: [`ClaimStore::try_merge_lock_for`] takes the merge
//!   lock only while the claim is still held, and renews its lease.

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod sqlite;

mod keeper;
mod path;

pub use keeper::{ClaimGuard, Keeper, Lost};
pub use path::{RemainingPath, critical_path};
#[cfg(feature = "postgres")]
pub use postgres::PgClaims;
pub use sqlite::SqliteClaims;
pub(crate) use sqlite::now_ms as sqlite_now_ms;

use crate::Error;
use std::time::Duration;

/// A worker's hold on one task, as [`ClaimStore::claim`] granted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The run the task belongs to.
    pub run: String,
    /// The task's id in the run's plan.
    pub task: String,
    /// The worker that holds it (as it named itself to [`ClaimStore::claim`]).
    pub worker: String,
    /// The fencing token: greater than every token the store granted before, for any task.
    pub token: u64,
    /// When the lease lapses, in milliseconds since the Unix epoch, by the store's clock.
    pub lease_until_ms: i64,
    /// How many times the task has been claimed, this claim included (1 on the first).
    pub attempt: u32,
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting for a dependency to be done.
    Blocked,
    /// Waiting for a worker.
    Ready,
    /// Held by a worker (or held until its lapsed lease is re-claimed).
    Claimed,
    /// Completed by the holder of its newest token.
    Done,
    /// Failed by the holder of its newest token; not retried by the store.
    Failed,
}

impl TaskStatus {
    /// The stored name (`blocked`, `ready`, `claimed`, `done`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blocked => "blocked",
            Self::Ready => "ready",
            Self::Claimed => "claimed",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// The status named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Blocked,
            Self::Ready,
            Self::Claimed,
            Self::Done,
            Self::Failed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// One task of a run as the store holds it ([`ClaimStore::tasks`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    /// The task's id.
    pub task: String,
    /// Where it stands.
    pub status: TaskStatus,
    /// The worker of its newest claim, if it was ever claimed.
    pub worker: Option<String>,
    /// Its newest fencing token (0 before its first claim).
    pub token: u64,
    /// How many times it was claimed.
    pub attempts: u32,
    /// When the current lease lapses (ms since the Unix epoch), while claimed.
    pub lease_until_ms: Option<i64>,
    /// The reason given by [`Settle::Failed`].
    pub detail: Option<String>,
    /// The tasks of the same run it waits for ([`PlannedTask::deps`]), in enqueue order.
    pub deps: Vec<String>,
    /// Its estimate in milliseconds of work, if it was enqueued with one.
    pub estimate_ms: Option<u64>,
    /// Its claim priority ([`PlannedTask::priority`]).
    pub priority: i64,
}

/// One task of a plan handed to [`ClaimStore::enqueue_plan`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlannedTask {
    /// The task's id in the run.
    pub task: String,
    /// Tasks of the same run that must be done before it is claimable: tasks of this plan or
    /// tasks the run already has.
    pub deps: Vec<String>,
    /// Its estimate in milliseconds of work (a T-shirt size's hours, say), shown by
    /// `lightsout status` and used for the critical path; `None` when unknown.
    pub estimate_ms: Option<u64>,
    /// Higher is claimed first among ready tasks (then the oldest): the length of the longest
    /// path from the task to the end of the plan gives critical-path list scheduling.
    pub priority: i64,
}

impl PlannedTask {
    /// A task with no dependencies, no estimate and priority 0.
    pub fn new(task: impl Into<String>) -> Self {
        Self {
            task: task.into(),
            ..Self::default()
        }
    }
}

/// How a holder ends its claim ([`ClaimStore::settle`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// The task is built and merged: never claimed again.
    Done,
    /// The task failed for the reason given: never claimed again.
    Failed(String),
    /// The holder gives the task back unfinished (it is shutting down): claimable at once.
    Released,
}

/// The fleet-wide merge lock, held until dropped (or until the holder's process dies: a
/// `flock` on `SQLite`, a session advisory lock on Postgres, both freed by the OS or server).
///
/// On Postgres the lock lives in one database session: if the server restarts, the session
/// and the lock are gone. A holder therefore never moves main on the lock alone; the merge
/// itself is a compare-and-swap of the branch (see `ARCHITECTURE.md`).
pub struct MergeLock {
    holder: String,
    _held: Box<dyn Send + Sync>,
}

impl MergeLock {
    pub(crate) fn new(holder: &str, held: Box<dyn Send + Sync>) -> Self {
        Self {
            holder: holder.to_owned(),
            _held: held,
        }
    }

    /// The worker that took it.
    pub fn holder(&self) -> &str {
        &self.holder
    }
}

impl std::fmt::Debug for MergeLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeLock")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

/// Task claims with leases and fencing tokens, and the merge lock. The rules are in the
/// [module docs](self).
///
/// The required methods are each one transaction of their own on every backend, which a
/// default method built on the others could not promise.
pub trait ClaimStore: Send + Sync {
    /// Adds the tasks of `plan` to `run`, in order, skipping tasks the run already has
    /// (whatever their status: enqueueing is idempotent and never revives a settled task, nor
    /// changes a known task's dependencies). A task is added blocked when one of its
    /// dependencies is not done, else ready. Returns how many were added. One transaction.
    ///
    /// # Errors
    /// [`Error::Plan`] when a dependency names a task neither in `plan` nor in the run (nothing
    /// is added then); the store cannot be written.
    fn enqueue_plan(&self, run: &str, plan: &[PlannedTask]) -> Result<usize, Error>;

    /// Adds `tasks` of `run` as ready (no dependencies, no estimate, priority 0); as
    /// [`ClaimStore::enqueue_plan`].
    ///
    /// # Errors
    /// As [`ClaimStore::enqueue_plan`].
    fn enqueue(&self, run: &str, tasks: &[String]) -> Result<usize, Error> {
        let plan: Vec<PlannedTask> = tasks.iter().map(PlannedTask::new).collect();
        self.enqueue_plan(run, &plan)
    }

    /// Claims the oldest claimable task of any run for `worker`, for `lease` (0 is allowed:
    /// a claim that lapses at once). `None` when no task is ready and no lease has lapsed.
    ///
    /// # Errors
    /// The store cannot be written.
    fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Claim>, Error>;

    /// Extends `claim`'s lease to `lease` from now; returns the claim with its new
    /// [`Claim::lease_until_ms`].
    ///
    /// # Errors
    /// [`Error::Stale`] when the claim is no longer held (the partition rule); the store
    /// cannot be written.
    fn heartbeat(&self, claim: &Claim, lease: Duration) -> Result<Claim, Error>;

    /// Ends `claim` with `outcome`. Applying the same settlement twice (a retry after a lost
    /// reply) succeeds.
    ///
    /// # Errors
    /// [`Error::Stale`] when the claim is no longer held; the store cannot be written.
    fn settle(&self, claim: &Claim, outcome: &Settle) -> Result<(), Error>;

    /// Every task of `run`, in the order they were enqueued.
    ///
    /// # Errors
    /// The store cannot be read, or holds a status this version does not know.
    fn tasks(&self, run: &str) -> Result<Vec<TaskRecord>, Error>;

    /// The runs the store holds tasks of, oldest first (by their first enqueued task).
    ///
    /// # Errors
    /// The store cannot be read.
    fn runs(&self) -> Result<Vec<String>, Error>;

    /// The store's clock, in milliseconds since the Unix epoch: the clock leases are counted
    /// by (the database server's on Postgres), to show how long a lease has left.
    ///
    /// # Errors
    /// The store cannot be reached.
    fn now_ms(&self) -> Result<i64, Error>;

    /// Takes the fleet-wide merge lock for `holder` unless someone holds it: `None` then.
    ///
    /// # Errors
    /// The lock cannot be asked for (its file cannot be opened, the server is unreachable).
    fn try_merge_lock(&self, holder: &str) -> Result<Option<MergeLock>, Error>;

    /// Takes the merge lock for the holder of `claim`, only while the claim is still held: the
    /// claim's lease is renewed to `lease` after the lock is taken (a fenced write), and on
    /// [`Error::Stale`] the lock is let go. `None` when someone else holds the lock.
    ///
    /// # Errors
    /// [`Error::Stale`] when the claim is no longer held (a re-claimed task is never merged by
    /// its old holder); as [`ClaimStore::try_merge_lock`].
    fn try_merge_lock_for(
        &self,
        claim: &Claim,
        lease: Duration,
    ) -> Result<Option<MergeLock>, Error> {
        let Some(lock) = self.try_merge_lock(&claim.worker)? else {
            return Ok(None);
        };
        self.heartbeat(claim, lease)?;
        Ok(Some(lock))
    }

    /// Waits for the merge lock: [`ClaimStore::try_merge_lock`] retried with backoff (10 ms
    /// doubling to `poll`) until it is free, or `None` once `patience` has passed.
    ///
    /// # Errors
    /// As [`ClaimStore::try_merge_lock`].
    fn merge_lock(
        &self,
        holder: &str,
        poll: Duration,
        patience: Duration,
    ) -> Result<Option<MergeLock>, Error> {
        let give_up = std::time::Instant::now() + patience;
        let mut wait = Duration::from_millis(10).min(poll);
        loop {
            if let Some(lock) = self.try_merge_lock(holder)? {
                return Ok(Some(lock));
            }
            let now = std::time::Instant::now();
            if now >= give_up {
                return Ok(None);
            }
            std::thread::sleep(wait.min(give_up - now));
            wait = (wait * 2).min(poll);
        }
    }

    /// [`ClaimStore::settle`] with [`Settle::Done`].
    ///
    /// # Errors
    /// As [`ClaimStore::settle`].
    fn complete(&self, claim: &Claim) -> Result<(), Error> {
        self.settle(claim, &Settle::Done)
    }

    /// [`ClaimStore::settle`] with [`Settle::Failed`].
    ///
    /// # Errors
    /// As [`ClaimStore::settle`].
    fn fail(&self, claim: &Claim, reason: &str) -> Result<(), Error> {
        self.settle(claim, &Settle::Failed(reason.to_owned()))
    }

    /// [`ClaimStore::settle`] with [`Settle::Released`].
    ///
    /// # Errors
    /// As [`ClaimStore::settle`].
    fn release(&self, claim: &Claim) -> Result<(), Error> {
        self.settle(claim, &Settle::Released)
    }
}

/// The stored status and detail of `outcome`.
pub(crate) fn settled(outcome: &Settle) -> (TaskStatus, Option<&str>) {
    match outcome {
        Settle::Done => (TaskStatus::Done, None),
        Settle::Failed(reason) => (TaskStatus::Failed, Some(reason)),
        Settle::Released => (TaskStatus::Ready, None),
    }
}

/// `lease` in whole milliseconds, saturating.
pub(crate) fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

/// Checks that every dependency of `plan` is a task of `plan` or one of `known` (the run's
/// tasks already in the store), and that the plan's new tasks have no cycle (Kahn's
/// algorithm over the edges between them; tasks in `known` cannot wait for new ones).
pub(crate) fn check_plan(
    run: &str,
    plan: &[PlannedTask],
    known: &std::collections::HashSet<String>,
) -> Result<(), Error> {
    use std::collections::HashMap;
    let bad = |task: &str, message: String| Error::Plan {
        run: run.to_owned(),
        task: task.to_owned(),
        message,
    };
    let new: Vec<&PlannedTask> = plan.iter().filter(|t| !known.contains(&t.task)).collect();
    let index: HashMap<&str, usize> = new
        .iter()
        .enumerate()
        .map(|(i, t)| (t.task.as_str(), i))
        .collect();
    let mut waits = vec![0_usize; new.len()];
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); new.len()];
    for (i, t) in new.iter().enumerate() {
        for d in &t.deps {
            match index.get(d.as_str()) {
                Some(&j) => {
                    waits[i] += 1;
                    after[j].push(i);
                }
                None if known.contains(d) => {}
                None => {
                    return Err(bad(
                        &t.task,
                        format!("depends on {d}, which is neither in the plan nor in the run"),
                    ));
                }
            }
        }
    }
    let mut free: Vec<usize> = (0..new.len()).filter(|&i| waits[i] == 0).collect();
    let mut seen = 0;
    while let Some(i) = free.pop() {
        seen += 1;
        for &k in &after[i] {
            waits[k] -= 1;
            if waits[k] == 0 {
                free.push(k);
            }
        }
    }
    if let Some(i) = (0..new.len())
        .find(|&i| waits[i] > 0)
        .filter(|_| seen < new.len())
    {
        return Err(bad(
            &new[i].task,
            "is on a dependency cycle: it would stay blocked forever".into(),
        ));
    }
    Ok(())
}

pub(crate) fn stale(claim: &Claim) -> Error {
    Error::Stale {
        run: claim.run.clone(),
        task: claim.task.clone(),
        token: claim.token,
    }
}
