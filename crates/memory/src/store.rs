//! The storage trait: two required methods, so that a Postgres backend is a second
//! implementation and not a rewrite.

use crate::{Error, Fingerprint, Kind, NewRecord, Record, RecordId, Status, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One write. A batch of changes passed to [`Store::apply`] is atomic: all or none.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // built once per write; boxing `Put` would only add noise
pub enum Change {
    /// Create a record, or, for [`crate::Identity::Id`] / [`crate::Identity::Key`], update the
    /// matching one with a new version when any field differs (an upsert).
    Put(NewRecord),
    /// Create `new` and mark `old` superseded by it: `old` gets a new version with status
    /// [`Status::Superseded`], `superseded_by = new` and `valid_to = new.valid_from`; `new`
    /// gets `supersedes = old`. Both are kept.
    Supersede {
        /// The record being replaced; must be current and not already superseded.
        old: RecordId,
        /// Its replacement.
        new: Box<NewRecord>,
    },
    /// Change a record's status (not to `superseded`: use [`Change::Supersede`]).
    /// `deprecated` closes valid time at `at`; `accepted` opens it at `at`.
    SetStatus {
        /// The record.
        id: RecordId,
        /// The new status.
        status: Status,
        /// When it takes effect; now when `None`.
        at: Option<Timestamp>,
    },
    /// An eval failure: the lesson for this fingerprint is created or its count incremented
    /// (and its green streak reset, and a retired lesson brought back).
    LessonFailed {
        /// Requirement + category.
        fingerprint: Fingerprint,
        /// When; now when `None`.
        at: Option<Timestamp>,
    },
    /// A green eval run of `requirement`: each live lesson of it counts one more green run
    /// in a row, and is retired (status `deprecated`, valid time closed) at `retire_after`.
    Green {
        /// Requirement id, exactly as in the fingerprints.
        requirement: String,
        /// Green runs in a row that retire a lesson (`>= 1`).
        retire_after: u32,
        /// When; now when `None`.
        at: Option<Timestamp>,
    },
}

/// What one [`Change`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The change's subject: the new record of a put or supersede, the record whose status
    /// changed, the lesson; for a green run, the lessons it retired.
    pub ids: Vec<RecordId>,
    /// Created, updated or unchanged.
    pub outcome: Outcome,
}

/// Whether a change wrote anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A new record.
    Created,
    /// A new version of an existing record (or counters changed).
    Updated,
    /// Nothing differed.
    Unchanged,
}

/// Which versions a [`Query`] sees.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Records in force at a time, as currently known: status accepted (or superseded /
    /// deprecated with a `valid_to`, which were accepted until then) and
    /// `valid_from <= at < valid_to`. The default for retrieval, with `at` = now.
    InForce {
        /// The valid-time instant.
        at: Timestamp,
    },
    /// Current versions whose status is one of these (all when empty).
    Current {
        /// Statuses to keep.
        statuses: Vec<Status>,
    },
    /// The versions the store believed at `at` (transaction time), any status.
    KnownAt(Timestamp),
    /// Every version ever written.
    AllVersions,
}

/// A read. Results come ordered by BM25 (best first) when `text` is set, else by id and
/// version.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Free text; turned into an FTS5 query of its words joined with `OR` (see
    /// [`crate::retrieve::match_expression`]; on Postgres a `tsquery` of the same words
    /// joined with `|`); a backend may drop very common words when rarer ones remain (the
    /// SQLite store keeps the 8 rarest by document frequency).
    pub text: Option<String>,
    /// Only these ids (all when empty).
    pub ids: Vec<RecordId>,
    /// Only these kinds (all when empty).
    pub kinds: Vec<Kind>,
    /// Which versions.
    pub filter: Filter,
    /// When set and `text` is not: records with a scope glob whose literal directory prefix
    /// is an ancestor of one of these repository paths (a superset of the glob matches,
    /// served by an index; callers match the globs themselves), most recently recorded first.
    pub touched: Vec<String>,
    /// At most this many hits; `0` = no limit.
    pub limit: usize,
}

impl Query {
    /// Everything in force now, no text, no limit.
    pub fn in_force() -> Self {
        Query {
            text: None,
            ids: Vec::new(),
            kinds: Vec::new(),
            filter: Filter::InForce { at: crate::now() },
            touched: Vec::new(),
            limit: 0,
        }
    }

    /// Current versions of all records, any status.
    pub fn all_current() -> Self {
        Query {
            filter: Filter::Current {
                statuses: Vec::new(),
            },
            ..Query::in_force()
        }
    }

    /// The current version of one record, any status.
    pub fn by_id(id: RecordId) -> Self {
        Query {
            ids: vec![id],
            ..Query::all_current()
        }
    }
}

/// One query result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The record version.
    pub record: Record,
    /// The text score when the query had text, lower is better (negative): SQLite's FTS5
    /// `bm25()` with the store's column weights, or minus Postgres's `ts_rank` (see
    /// the `postgres` module). Comparable within one result list, not across backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bm25: Option<f64>,
}

/// A decision-memory backend.
///
/// Contract: records are never deleted; every change of a record writes a new version and
/// closes the old one's transaction time; a batch is atomic and isolated from concurrent
/// writers (several processes may share one store).
pub trait Store {
    /// Applies `changes` in one transaction, returning one [`Applied`] per change, and
    /// calling `progress` with the number of changes done after each (inside the
    /// transaction: nothing is visible to others until all are done).
    ///
    /// # Errors
    /// Any failing change rolls the whole batch back and returns its error
    /// ([`Error::Invalid`], [`Error::NotFound`], [`Error::Conflict`]) or the backend's.
    fn apply_batch(
        &self,
        changes: &[Change],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Applied>, Error>;

    /// [`Store::apply_batch`] without progress reports.
    ///
    /// # Errors
    /// As [`Store::apply_batch`].
    fn apply(&self, changes: &[Change]) -> Result<Vec<Applied>, Error> {
        self.apply_batch(changes, &mut |_| {})
    }

    /// Runs a read.
    ///
    /// # Errors
    /// Backend failures; a malformed text query never errors (it is reduced to words).
    fn query(&self, query: &Query) -> Result<Vec<Hit>, Error>;
}

macro_rules! forward_store {
    ($($t:ty),+) => {$(
        impl<S: Store + ?Sized> Store for $t {
            fn apply_batch(
                &self,
                changes: &[Change],
                progress: &mut dyn FnMut(usize),
            ) -> Result<Vec<Applied>, Error> {
                (**self).apply_batch(changes, progress)
            }
            fn query(&self, query: &Query) -> Result<Vec<Hit>, Error> {
                (**self).query(query)
            }
        }
    )+};
}
forward_store!(&S, Box<S>, Arc<S>);
