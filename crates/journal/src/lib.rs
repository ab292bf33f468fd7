//! The run journal of a Lightsout run: `.lightsout/runs/<id>/journal.jsonl`, one JSON
//! [`Entry`] per line, appended and `fsync`ed before the factory acts on it; the [`Plan`] it
//! records; [`RunState`], rebuilt by replaying the entries in order; and the [`Event`]s a run
//! streams to its progress display and audit log.
//!
//! # Brief overview
//! - [`journal`]: [`Journal::open`] (cuts a partial last line left by a kill) and
//!   [`Journal::append`] (one line, `fsync`, then to the journal's [`Mirror`] if it has one:
//!   a fleet worker's copy in the shared store); [`read`] ignores a partial last line.
//! - [`state`]: [`RunState::replay`] folds entries into the run's state; [`STATE_FILE`] is
//!   where the factory writes it.
//! - [`plan`]: [`Plan`], the tasks of a run as journaled.
//! - [`event`]: [`Event`], what a run reports as it goes, and [`EventSink`], what receives it.
//!
//! The serialised forms here are the bytes of journals already on disk: a new field is
//! optional (`#[serde(default)]`), a renamed one keeps its old name.
//!
//! # Example
//! ```
//! use lightsout_journal::{Entry, Journal, RunState, read};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("journal.jsonl");
//! let mut journal = Journal::open(&path)?;
//! journal.append(&Entry::TaskFailed { task: "T1".into(), reason: "no agent".into() })?;
//! let entries = read(&path)?;
//! assert_eq!(entries.len(), 1);
//! assert!(RunState::replay(&entries).tasks.is_empty()); // no plan journaled yet
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
pub mod event;
pub mod journal;
pub mod plan;
pub mod state;

pub use error::Error;
pub use event::{Event, EventSink, NoEvents, VecEvents};
pub use journal::{Entry, Journal, Mirror, read, write_atomic};
pub use plan::{Plan, Task};
pub use state::{AttemptRecord, RunState, RunTotals, STATE_FILE, TaskPhase, TaskState};
