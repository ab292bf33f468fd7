//! The spec queue: specs lined up to be built one after another, each in a run of its own
//! (`lightsout queue add|list|remove|stop`, `lightsout run --queue`).
//!
//! The queue lives in the state store behind [`QueueStore`], whose three required methods
//! ([`QueueStore::entries`], [`QueueStore::apply`], [`QueueStore::stop_requested`]) are all a
//! backend implements: [`SqliteQueue`] keeps it in `.lightsout/state.db` (one machine), and
//! `PgQueue` (feature `postgres`) on a `PostgreSQL` server shared by a fleet; one test suite
//! runs against both. Every change is one atomic [`QueueChange`], so a `kill -9` leaves each
//! entry either before or after it.
//!
//! An entry's life: [`QueueStatus::Queued`] → [`QueueStatus::Running`] (with the run id the
//! runner chose, recorded *before* the run starts, so a killed runner's entry names the run to
//! resume) → [`QueueStatus::Passed`], [`QueueStatus::Failed`] or [`QueueStatus::Error`].

#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::PgQueue;
pub use sqlite::{STATE_DB, SqliteQueue};

use serde::{Deserialize, Serialize};

/// Where an entry of the queue stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueStatus {
    /// Waiting for its turn.
    Queued,
    /// Its run started and has not been recorded as finished: being built now, or its runner
    /// was killed (then `lightsout run --queue --resume` resumes the run).
    Running,
    /// Every task merged and the gate did not fail.
    Passed,
    /// The run finished with a failed or blocked task, or a gate that failed or lacked
    /// evidence, or its specs were not ready.
    Failed,
    /// The run could not go on (an infrastructure error); `detail` says why.
    Error,
}

impl QueueStatus {
    /// The stored and printed name (`queued`, `running`, `passed`, `failed`, `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Error => "error",
        }
    }

    /// The status named `s` ([`QueueStatus::as_str`]), if any.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Passed,
            Self::Failed,
            Self::Error,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// Whether the entry's build is over (passed, failed or error).
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Passed | Self::Failed | Self::Error)
    }
}

/// One spec (a file, or a folder of specs built as one plan) in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QueueEntry {
    /// Position and identity: increasing in the order entries were added, never reused.
    pub id: u64,
    /// The spec path, relative to the repository root when it lies inside it.
    pub spec: String,
    /// Where it stands.
    pub status: QueueStatus,
    /// The run that builds (or built) it, once started.
    pub run_id: Option<String>,
    /// When it was added (RFC 3339, UTC).
    pub added_at: String,
    /// When its run started (RFC 3339, UTC).
    pub started_at: Option<String>,
    /// When its run finished (RFC 3339, UTC).
    pub finished_at: Option<String>,
    /// The outcome in one line (the gate line, or the error).
    pub detail: Option<String>,
}

/// One atomic change of the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueChange {
    /// Appends `spec` at the end as [`QueueStatus::Queued`], unless it is queued already:
    /// then it touches that entry (adding is idempotent, so a retried or repeated add never
    /// builds a spec twice; a spec running or finished may be queued again).
    Add {
        /// The spec path as stored ([`QueueEntry::spec`]).
        spec: String,
    },
    /// Removes entry `id` unless it is [`QueueStatus::Running`].
    Remove {
        /// The entry.
        id: u64,
    },
    /// Marks entry `id` running in run `run_id`. Applies to a queued entry, or to a running
    /// one with the same run id (a resumed run).
    Start {
        /// The entry.
        id: u64,
        /// The run that builds it.
        run_id: String,
    },
    /// Records entry `id`'s outcome; applies to a running entry only.
    Finish {
        /// The entry.
        id: u64,
        /// Passed, failed or error.
        status: QueueStatus,
        /// The outcome in one line.
        detail: String,
    },
    /// Sets (`true`) or clears (`false`) the request to stop the runner before its next spec.
    Stop(bool),
}

/// Errors of a queue store: the crate's [`Error`](crate::Error).
pub type QueueError = crate::Error;

/// The queue's storage. Backends implement the three required methods; everything else is
/// built on them.
///
/// Contract: entries come back in [`QueueEntry::id`] order; each [`QueueChange`] is applied
/// atomically and durably (after `apply` returns, a `kill -9` does not undo it), and two
/// processes applying changes at once never lose one.
pub trait QueueStore: Send + Sync {
    /// Every entry, oldest first.
    ///
    /// # Errors
    /// The store cannot be read.
    fn entries(&self) -> Result<Vec<QueueEntry>, QueueError>;

    /// Applies `change` atomically. Returns the entry it added or touched (as it is after the
    /// change; for `Remove`, as it was), or `None` when it applied to nothing: an unknown
    /// id, a running entry to remove, an entry not in the state the change needs, or `Stop`.
    ///
    /// # Errors
    /// The store cannot be written.
    fn apply(&self, change: &QueueChange) -> Result<Option<QueueEntry>, QueueError>;

    /// Whether a stop was requested ([`QueueChange::Stop`]) and not cleared since.
    ///
    /// # Errors
    /// The store cannot be read.
    fn stop_requested(&self) -> Result<bool, QueueError>;

    /// Appends `spec` (or finds it queued already: [`QueueChange::Add`]); returns its entry.
    ///
    /// # Errors
    /// The store cannot be written, or (a broken backend) added nothing.
    fn add(&self, spec: &str) -> Result<QueueEntry, QueueError> {
        self.apply(&QueueChange::Add {
            spec: spec.to_owned(),
        })?
        .ok_or_else(|| QueueError::Corrupt {
            store: String::new(),
            message: "adding an entry returned none".into(),
        })
    }

    /// The entry a runner builds next: the first running one (a run to resume), else the
    /// first queued one.
    ///
    /// # Errors
    /// The store cannot be read.
    fn next(&self) -> Result<Option<QueueEntry>, QueueError> {
        let all = self.entries()?;
        Ok(all
            .iter()
            .find(|e| e.status == QueueStatus::Running)
            .or_else(|| all.iter().find(|e| e.status == QueueStatus::Queued))
            .cloned())
    }
}

/// The run id of queue entry `id` started now: `queue-<id>-<YYYYMMDD>-<HHMMSS>` (UTC).
pub fn run_id_for(id: u64) -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "queue-{id}-{:04}{:02}{:02}-{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// Takes the queue runner's lock, `.lightsout/queue.lock` of the repository at `repo`: held by
/// the one `lightsout run --queue` building the queue, released when dropped or when the
/// process dies (a `flock`, so a `kill -9` never leaves it held). `None` when another process
/// holds it.
///
/// # Errors
/// [`crate::Error::Io`] when the lock file cannot be created.
pub fn runner_lock(
    repo: &std::path::Path,
) -> Result<Option<nix::fcntl::Flock<std::fs::File>>, crate::Error> {
    let dir = repo.join(".lightsout");
    std::fs::create_dir_all(&dir).map_err(|source| crate::Error::Io {
        op: "create",
        path: dir.clone(),
        source,
    })?;
    let path = dir.join("queue.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| crate::Error::Io {
            op: "open",
            path: path.clone(),
            source,
        })?;
    Ok(nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).ok())
}
