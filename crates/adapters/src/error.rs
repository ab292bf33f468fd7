//! The crate's one error type.

use std::path::{Path, PathBuf};

/// Why an adapter could not do its work. The messages are the factory's own for the same
/// failure; `lightsout-factory` keeps it whole as its `Error::Adapters`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `lightsout.toml` or the holdout suite it names cannot be used, or the audit log
    /// cannot be written.
    #[error("{0}")]
    Config(String),
    /// The holdout evaluation could not run.
    #[error("holdout eval: {0}")]
    Eval(String),
    /// A file operation failed.
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
    /// The fence refused or could not be built.
    #[error(transparent)]
    Fence(#[from] lightsout_fence::FenceError),
    /// A git command failed.
    #[error(transparent)]
    Git(#[from] lightsout_git::Error),
}

impl Error {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// Writes `bytes` to `path` atomically ([`lightsout_stdx::write_atomic`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    lightsout_stdx::write_atomic(path, bytes).map_err(|e| Error::io("write", path, e))
}
