//! This crate provides the state a fleet of Lightsout workers shares: task claims with leases
//! and fencing tokens, the fleet-wide merge lock, the spec queue, the day budget and the
//! shared run journal; each behind one trait with two backends, `SQLite` (the embedded
//! default, one machine) and `PostgreSQL` (many machines; feature `postgres`, on by default).
//!
//! # Brief overview
//! - [`claims::ClaimStore`]: enqueue a run's ready tasks, claim one with a lease and a fencing
//!   token, heartbeat, complete / fail / release under that token (a stale token is refused:
//!   [`Error::Stale`]), and [`claims::ClaimStore::try_merge_lock`]. Backends
//!   [`claims::SqliteClaims`] and `claims::PgClaims`.
//! - [`queue::QueueStore`]: the spec queue of `lightsout queue` and `lightsout run --queue`.
//!   Backends [`queue::SqliteQueue`] and `queue::PgQueue`.
//! - [`budget::BudgetStore`]: the day budget every worker shares: reserve / settle a call's
//!   attempt, wall ms, tokens and micro-USD against the day's caps, atomically; a reservation
//!   tied to a claim that is lost before it settles counts as spent at its reserved amounts
//!   (the budget fails closed). Backends
//!   [`budget::SqliteBudget`] and `budget::PgBudget`; [`budget::SharedDay`] is one worker's
//!   share of it, as the factory's fence hook uses it.
//! - [`journal::JournalStore`]: every journal entry of the factory runs a fleet's workers
//!   make for their claims, keyed by claim run and `seq` (appends idempotent), read per run
//!   and task. Backends [`journal::SqliteJournal`] and `journal::PgJournal`.
//! - [`claims::Keeper`]: a worker's hold on one claim (heartbeats, the deadline, the work
//!   stopped when the claim is lost), and its [`claims::ClaimGuard`] for the merge step.
//! - [`status::snapshot`]: workers, leases, task counts and the critical path, as
//!   `lightsout status` shows them.
//! - The Postgres backends run their migrations on connect and retry lost connections with
//!   backoff for [`RECONNECT_FOR`].
//!
//! The traits are blocking, like the memory crate's `Store`: a call is one short
//! transaction. The Postgres backends drive tokio-postgres on a small runtime of their own,
//! so they can be called from plain threads and from inside the factory's runtime alike.
//!
//! # Example
//! ```
//! use lightsout_fleet::claims::{ClaimStore, SqliteClaims};
//! use std::time::Duration;
//!
//! let dir = tempfile::tempdir()?;
//! let store = SqliteClaims::in_repo(dir.path())?;
//! store.enqueue("run-1", &["T001".into(), "T002".into()])?;
//! let claim = store.claim("worker-a", Duration::from_secs(30))?.expect("a ready task");
//! assert_eq!(claim.task, "T001");
//! let claim = store.heartbeat(&claim, Duration::from_secs(30))?;
//! store.complete(&claim)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod budget;
pub mod claims;
mod error;
pub mod journal;
/// The blocking bridge to tokio-postgres every Postgres store uses (the fleet's, and
/// `lightsout-tune`'s metrics and `lightsout-fence`'s audit chain): pool, retry, migrations.
#[cfg(feature = "postgres")]
pub mod pg;
pub mod queue;
pub mod sqlite;
pub mod status;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::Error;
#[cfg(feature = "postgres")]
pub use pg::RECONNECT_FOR;
