//! The fleet's shared run journal: every entry of every claim's factory run, in the store, so
//! a fleet run's history can be read in one place (`lightsout status --run RUN`).
//!
//! A fleet worker builds each task it claims in a factory run of its own on its own clone
//! (run id `<run>-<task>-<token>`, the *claim run*), whose journal (`journal.jsonl`) stays on
//! that worker's disk. The worker mirrors each entry, after writing it locally, into the
//! store with [`JournalStore::append`]: keyed by the claim run and the entry's `seq` (its
//! 0-based line in the local journal), with the fleet run, the task, the claim's fencing token
//! and the worker beside it, the entry as JSON, and the store's timestamp.
//!
//! This crate knows nothing of the factory's `Entry` type: an entry is JSON text, checked to
//! be JSON by the store and returned as a [`serde_json::Value`].
//!
//! - Appends are idempotent by (claim run, `seq`): an append retried after a lost reply (the
//!   Postgres backend retries lost connections) finds its row and writes nothing; an append of
//!   a *different* entry at a known (claim run, `seq`) is refused with [`Error::Corrupt`].
//! - Order: a claim run's entries read back in `seq` order whatever order they were appended
//!   in; a task's claim runs in fencing-token order (a later claim of a task has a greater
//!   token), so a task's history reads claim by claim.
//! - Appends are not fenced: a worker whose claim lapsed still records what it did, under its
//!   own (older) token, which tells its entries from the new holder's.
//!
//! [`SqliteJournal`] (one machine, `.lightsout/state.db`) and `PgJournal` (feature `postgres`)
//! implement [`JournalStore`]; one test suite runs against both.

#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::PgJournal;
pub use sqlite::SqliteJournal;

use crate::Error;
use crate::claims::Claim;

/// Which claim's factory run an entry belongs to: the key of [`JournalStore::append`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClaimRun {
    /// The fleet run.
    pub run: String,
    /// The task of the run the claim is for.
    pub task: String,
    /// The claim's fencing token.
    pub token: u64,
    /// The worker holding the claim (as it named itself to the claim store).
    pub worker: String,
    /// The factory run's id on the worker (`<run>-<task>-<token>` for `lightsout worker`):
    /// its local journal is `.lightsout/runs/<id>/journal.jsonl` of the worker's clone.
    pub id: String,
}

impl ClaimRun {
    /// The claim run of `claim` whose factory run is `id`.
    pub fn of(claim: &Claim, id: impl Into<String>) -> Self {
        Self {
            run: claim.run.clone(),
            task: claim.task.clone(),
            token: claim.token,
            worker: claim.worker.clone(),
            id: id.into(),
        }
    }
}

/// One journal entry as the store holds it ([`JournalStore::entries`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JournalRow {
    /// The fleet run.
    pub run: String,
    /// The task.
    pub task: String,
    /// The fencing token of the claim whose run wrote it.
    pub token: u64,
    /// The worker that wrote it.
    pub worker: String,
    /// The claim run's id ([`ClaimRun::id`]).
    pub claim_run: String,
    /// Its 0-based line in the claim run's local journal.
    pub seq: u64,
    /// The entry (for the factory, a `lightsout_journal::Entry`, tagged `entry`).
    pub entry: serde_json::Value,
    /// When the store took it, in ms since the Unix epoch, by the store's clock (the database
    /// server's on Postgres, the machine's on `SQLite`).
    pub at_ms: i64,
}

/// The shared journal ([module docs](self)). Each method is one statement or transaction.
pub trait JournalStore: Send + Sync {
    /// Appends `entry` (JSON text) as entry `seq` of `claim`'s run. Returns `true` when it
    /// was written now, `false` when the store held it already (a retried append).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the store holds a different entry (or one of another fleet
    /// run, task, token or worker) at `claim`'s run and `seq`; an error of the backend when
    /// `entry` is not JSON or the store cannot be written.
    fn append(&self, claim: &ClaimRun, seq: u64, entry: &str) -> Result<bool, Error>;

    /// The entries of fleet run `run`: every one (`newest_per_task: None`), or only the
    /// newest `n` of each task (by token, then `seq`). Ordered by task, then token, then
    /// `seq`.
    ///
    /// # Errors
    /// The store cannot be read; [`Error::Corrupt`] when a stored entry is not JSON.
    fn entries(&self, run: &str, newest_per_task: Option<usize>) -> Result<Vec<JournalRow>, Error>;
}

impl<T: JournalStore + ?Sized> JournalStore for std::sync::Arc<T> {
    fn append(&self, claim: &ClaimRun, seq: u64, entry: &str) -> Result<bool, Error> {
        (**self).append(claim, seq, entry)
    }

    fn entries(&self, run: &str, newest_per_task: Option<usize>) -> Result<Vec<JournalRow>, Error> {
        (**self).entries(run, newest_per_task)
    }
}

impl<T: JournalStore + ?Sized> JournalStore for Box<T> {
    fn append(&self, claim: &ClaimRun, seq: u64, entry: &str) -> Result<bool, Error> {
        (**self).append(claim, seq, entry)
    }

    fn entries(&self, run: &str, newest_per_task: Option<usize>) -> Result<Vec<JournalRow>, Error> {
        (**self).entries(run, newest_per_task)
    }
}

/// `v` as a stored integer (tokens and `seq`s past `i64::MAX` are clamped; none are reached).
pub(crate) fn stored(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// How many entries per task a read keeps, as a stored integer.
pub(crate) fn limit(newest_per_task: Option<usize>) -> i64 {
    newest_per_task.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// The error of an append that met a different entry at its key.
pub(crate) fn differs(store: &str, claim: &ClaimRun, seq: u64) -> Error {
    Error::Corrupt {
        store: store.to_owned(),
        message: format!(
            "journal entry {seq} of claim run {} (run {}, task {}, token {}, worker {}) is \
             stored already with other content",
            claim.id, claim.run, claim.task, claim.token, claim.worker
        ),
    }
}

/// Parses a stored entry (checked to be JSON when it was appended, so only a row edited by
/// hand fails).
pub(crate) fn parse(
    store: &str,
    claim_run: &str,
    seq: u64,
    text: &str,
) -> Result<serde_json::Value, Error> {
    serde_json::from_str(text).map_err(|_| Error::Corrupt {
        store: store.to_owned(),
        message: format!("journal entry {seq} of claim run {claim_run} is not JSON"),
    })
}
