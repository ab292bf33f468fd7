//! The fence around the factory: budgets, the process policy, holdout protection and the
//! audit log.
//!
//! A factory that runs with the lights off must fail closed. Everything in this module is
//! written so that a missing piece of information stops work instead of letting it through.
//!
//! # Brief overview
//! - [`budget`]: [`budget::BudgetLedger`] caps attempts, wall time (ms), tokens and USD per
//!   task, per run and per UTC day. Every agent call [reserves](budget::BudgetLedger::reserve)
//!   its expected cost first and [settles](budget::BudgetLedger::settle) the actual usage
//!   after. [`budget::AgentRouting`] maps task kinds to (cheaper) agents.
//! - [`policy`]: [`policy::Fence`] runs one agent process behind an environment allowlist, an
//!   output cap (bytes), a wall-time limit that kills the whole process group, the worktree as
//!   working directory, optional Linux namespaces (no network, private PID space), and
//!   detection of writes outside the worktree and of a deleted or damaged `.git` link. The
//!   outcome is a [`policy::FenceReport`] of [`policy::Violation`]s.
//! - [`holdout`]: refuses a holdout directory that overlaps the repository or a worktree
//!   ([`holdout::check_holdout_location`]) and scans every prompt, feedback file and diff that
//!   crosses the fence ([`holdout::Crossing`]) with a caller-supplied [`holdout::LeakScan`].
//! - [`audit`]: the hash-chained `.lightsout/runs/<id>/audit.jsonl`
//!   ([`audit::AuditLog`]) and its verifier ([`audit::verify`]).
//!
//! All fallible functions return [`FenceError`].
//!
//! # Example
//! ```
//! use lightsout_factory::fence::budget::{BudgetConfig, BudgetLedger, Limits, Usage};
//!
//! let config = BudgetConfig {
//!     per_task: Limits { attempts: Some(2), tokens: Some(1_000), ..Limits::default() },
//!     ..BudgetConfig::default()
//! };
//! let ledger = BudgetLedger::in_memory(config);
//! let reservation = ledger.reserve("T1", Usage::tokens(400))?;
//! // ... run the agent here ...
//! let settled = ledger.settle(reservation, Usage::tokens(350))?;
//! assert!(settled.overruns.is_empty());
//! assert_eq!(ledger.task_used("T1").tokens, 350);
//! # Ok::<(), lightsout_factory::fence::FenceError>(())
//! ```

pub mod audit;
pub mod budget;
pub mod holdout;
pub mod policy;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Every failure of the fence.
///
/// Messages are lower case with no trailing period. Variants that stop work on purpose
/// ([`FenceError::BudgetExceeded`], [`FenceError::Leak`], [`FenceError::HoldoutOverlap`],
/// [`FenceError::HoldoutSymlink`]) carry the data a run report needs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FenceError {
    /// A file or directory could not be read or written.
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file of the fence (ledger, audit log, head) could not be parsed or written.
    #[error("invalid json in {}: {source}", path.display())]
    Json {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A budget would be exceeded by the requested reservation; the call must not start.
    #[error("{0}")]
    BudgetExceeded(budget::BudgetExceeded),
    /// A reservation was settled or released on a ledger that did not grant it.
    #[error("reservation {id} was not granted by this ledger")]
    ForeignReservation {
        /// The reservation id.
        id: u64,
    },
    /// Holdout text (a canary or a long verbatim run) was found in text crossing the fence.
    #[error("{0}")]
    Leak(holdout::LeakHit),
    /// The holdout directory overlaps the repository or a worktree.
    #[error(
        "holdout directory {} overlaps {}: move the holdout outside the repository and every worktree",
        holdout.display(),
        other.display()
    )]
    HoldoutOverlap {
        /// The canonical holdout path.
        holdout: PathBuf,
        /// The canonical repository or worktree path it overlaps.
        other: PathBuf,
    },
    /// A symlink inside the repository or a worktree resolves into the holdout directory.
    #[error(
        "symlink {} resolves into the holdout directory {}: remove the link",
        link.display(),
        holdout.display()
    )]
    HoldoutSymlink {
        /// The symlink found.
        link: PathBuf,
        /// The canonical holdout path.
        holdout: PathBuf,
    },
    /// A glob pattern in the configuration is invalid.
    #[error("invalid pattern `{pattern}`: {source}")]
    Pattern {
        /// The pattern as written.
        pattern: String,
        /// The underlying error.
        #[source]
        source: globset::Error,
    },
    /// The requested namespace isolation cannot be set up on this machine; the fence refuses
    /// to run the agent unisolated.
    #[error(
        "namespace isolation is unavailable ({detail}): install util-linux `unshare` and allow user namespaces, or set network = \"inherit\""
    )]
    IsolationUnavailable {
        /// What was tried and what failed.
        detail: String,
    },
    /// The agent process could not be started.
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An audit log cannot be appended to because it is not intact.
    #[error("audit log {} is not intact ({detail}): run `lightsout audit verify` and keep the file as evidence", path.display())]
    AuditBroken {
        /// The log file.
        path: PathBuf,
        /// The first problem found.
        detail: String,
    },
}

impl FenceError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, `fsync`, then
/// `rename` over the target, then `fsync` of the directory. A `kill -9` at any point leaves
/// either the old or the new content, never a mixture.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FenceError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|e| FenceError::io(&dir, e))?;
    let file_name = path
        .file_name()
        .map_or_else(|| "fence".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        FenceError::io(path, e)
    })
}
