//! The error of the async runner ([`crate::ops`]) and the integrity check
//! ([`crate::integrity`]).

use std::path::PathBuf;

/// Why a git command could not be run or failed. `lightsout-factory` keeps it whole as its
/// `Error::GitRun`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A git command failed.
    #[error("git {args} (in {dir}): {stderr}")]
    Git {
        /// The arguments.
        args: String,
        /// Where it ran.
        dir: PathBuf,
        /// Its stderr.
        stderr: String,
    },
    /// A file operation failed (git could not be started).
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
