//! The crate's one error type.

use std::path::PathBuf;

/// Why an agent call could not be made at all.
///
/// An agent that runs and does poor work is *not* an error: it returns an [`AgentReport`]
/// whose [`Outcome`] says so. Errors are infrastructure problems (a missing binary, an
/// unreadable trajectory) that retrying the same call will not fix.
///
/// [`AgentReport`]: crate::AgentReport
/// [`Outcome`]: crate::Outcome
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The agent program could not be started.
    #[error(
        "cannot start agent `{program}`: {source}; check that it is installed and on the allowed PATH"
    )]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing a file of the agent's (prompt, transcript, trajectory) failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`write prompt`, `read trajectory`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Waiting on or signalling the agent process failed.
    #[error("agent process: {0}")]
    Process(#[source] std::io::Error),
    /// The agent is misconfigured (an empty program, an unknown preset).
    #[error("invalid agent configuration: {0}")]
    Config(String),
    /// A recorded trajectory's metadata (`<task>/<attempt>.json` beside the patch) is not
    /// the JSON a [`ReplayAgent`](crate::ReplayAgent) reads.
    #[error("invalid agent configuration: {path}: {source}")]
    Trajectory {
        /// The metadata file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// The name the agent interface uses for [`Error`].
pub type AgentError = Error;
