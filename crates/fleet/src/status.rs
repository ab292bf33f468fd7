//! What `lightsout status` shows: the fleet as its claim store sees it at one instant
//! ([`snapshot`]): the workers (from live leases), each run's leases with the time they have
//! left, its task counts, and the critical path of what remains; with [`attach_journal`],
//! the newest entries of each task's journal in the store.

use crate::Error;
use crate::claims::{ClaimStore, RemainingPath, TaskStatus, critical_path};
use crate::journal::{JournalRow, JournalStore};
use std::collections::BTreeMap;

/// The fleet at one instant of the store's clock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FleetStatus {
    /// The store's clock when it was read, ms since the Unix epoch.
    pub now_ms: i64,
    /// Workers holding at least one claim, live or lapsed, by name.
    pub workers: Vec<WorkerStatus>,
    /// The runs shown, oldest first.
    pub runs: Vec<RunStatus>,
}

/// A worker, as its claims show it (the store keeps no other record of workers: a worker
/// that holds nothing is not seen).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkerStatus {
    /// Its name (`host-pid/job` for `lightsout worker`).
    pub worker: String,
    /// Claims it holds whose lease has not lapsed.
    pub live: usize,
    /// Claims of it whose lease lapsed and that nobody has re-claimed yet: the worker is
    /// presumed dead or cut off.
    pub lapsed: usize,
    /// The least time left on its live leases, in ms (`None` without one).
    pub next_lapse_in_ms: Option<i64>,
}

/// Counts of a run's tasks by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Counts {
    /// Waiting for a dependency.
    pub blocked: usize,
    /// Waiting for a worker.
    pub ready: usize,
    /// Held by a worker (live or lapsed lease).
    pub claimed: usize,
    /// Done.
    pub done: usize,
    /// Failed.
    pub failed: usize,
}

/// One claimed task.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseStatus {
    /// The task.
    pub task: String,
    /// Its holder.
    pub worker: String,
    /// The claim's fencing token.
    pub token: u64,
    /// Which claim of the task this is (1 on the first).
    pub attempt: u32,
    /// Time left on the lease in ms, by the store's clock; 0 or less when it lapsed.
    pub left_ms: i64,
}

/// One run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunStatus {
    /// The run.
    pub run: String,
    /// Its tasks by status.
    pub counts: Counts,
    /// Its claimed tasks, least time left first.
    pub leases: Vec<LeaseStatus>,
    /// The critical path of what remains, when the store knows estimates.
    pub critical_path: Option<RemainingPath>,
    /// A lower bound on the time to finish, in ms: the longer of the critical path and the
    /// remaining work spread over the live workers (`None` without a path or a live worker).
    pub bound_ms: Option<u64>,
    /// What the store could not say (no dependencies, no estimates), in words.
    pub notes: Vec<String>,
    /// The newest journal entries of each task, as [`attach_journal`] read them from the
    /// shared journal (ordered by task, token, `seq`); `None` (and left out of the JSON) when
    /// not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<Vec<JournalRow>>,
}

/// Reads the fleet from `store`: every run it holds, or only `run`.
///
/// # Errors
/// The store cannot be read; [`Error::Corrupt`] when `run` is given and the store holds no
/// task of it.
pub fn snapshot(store: &dyn ClaimStore, run: Option<&str>) -> Result<FleetStatus, Error> {
    let now_ms = store.now_ms()?;
    let runs = match run {
        Some(r) => vec![r.to_owned()],
        None => store.runs()?,
    };
    let mut workers: BTreeMap<String, WorkerStatus> = BTreeMap::new();
    let mut out = Vec::new();
    for r in runs {
        let tasks = store.tasks(&r)?;
        if tasks.is_empty() && run.is_some() {
            return Err(Error::Corrupt {
                store: "claim store".into(),
                message: format!("no task of run {r}"),
            });
        }
        let mut counts = Counts::default();
        let mut leases = Vec::new();
        for t in &tasks {
            match t.status {
                TaskStatus::Blocked => counts.blocked += 1,
                TaskStatus::Ready => counts.ready += 1,
                TaskStatus::Claimed => counts.claimed += 1,
                TaskStatus::Done => counts.done += 1,
                TaskStatus::Failed => counts.failed += 1,
            }
            if t.status != TaskStatus::Claimed {
                continue;
            }
            let worker = t.worker.clone().unwrap_or_default();
            let left_ms = t.lease_until_ms.map_or(0, |u| u - now_ms);
            let w = workers
                .entry(worker.clone())
                .or_insert_with(|| WorkerStatus {
                    worker: worker.clone(),
                    live: 0,
                    lapsed: 0,
                    next_lapse_in_ms: None,
                });
            if left_ms > 0 {
                w.live += 1;
                w.next_lapse_in_ms = Some(w.next_lapse_in_ms.map_or(left_ms, |m| m.min(left_ms)));
            } else {
                w.lapsed += 1;
            }
            leases.push(LeaseStatus {
                task: t.task.clone(),
                worker,
                token: t.token,
                attempt: t.attempts,
                left_ms,
            });
        }
        leases.sort_by_key(|l| l.left_ms);
        let mut notes = Vec::new();
        if tasks.iter().all(|t| t.deps.is_empty()) {
            notes.push(
                "the store holds no dependencies for this run (enqueued as a flat list): \
                 every task is its own path"
                    .to_owned(),
            );
        }
        let path = critical_path(&tasks);
        if path.is_none() && counts.done < tasks.len() {
            notes.push(
                "the store holds no estimates for the remaining tasks: no critical path".to_owned(),
            );
        }
        if let Some(p) = path.as_ref().filter(|p| !p.unestimated.is_empty()) {
            notes.push(format!(
                "{} remaining task(s) have no estimate and count as 0",
                p.unestimated.len()
            ));
        }
        out.push(RunStatus {
            run: r,
            counts,
            leases,
            critical_path: path,
            bound_ms: None,
            notes,
            journal: None,
        });
    }
    let live = workers.values().filter(|w| w.live > 0).count() as u64;
    for r in &mut out {
        r.bound_ms = r
            .critical_path
            .as_ref()
            .filter(|_| live > 0)
            .map(|p| p.estimate_ms.max(p.remaining_ms.div_ceil(live)));
    }
    Ok(FleetStatus {
        now_ms,
        workers: workers.into_values().collect(),
        runs: out,
    })
}

/// Reads into every run of `status` the newest `per_task` entries of each of its tasks from
/// the shared journal ([`JournalStore::entries`]).
///
/// # Errors
/// The journal cannot be read.
pub fn attach_journal(
    status: &mut FleetStatus,
    journal: &dyn JournalStore,
    per_task: usize,
) -> Result<(), Error> {
    for r in &mut status.runs {
        r.journal = Some(journal.entries(&r.run, Some(per_task))?);
    }
    Ok(())
}
