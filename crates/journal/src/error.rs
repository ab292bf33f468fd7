//! The crate's one error type.

use std::path::{Path, PathBuf};

/// Why a journal could not be read or written. Each variant's message is its context; the
/// cause is its `source` (print the chain, as `anyhow`'s `{:#}` does). `lightsout-factory`
/// keeps it whole as its `Error::JournalEntry`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
    /// A complete line of the journal is not an entry.
    #[error("journal {path}: line {line}")]
    Line {
        /// The journal file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What the JSON parser found wrong.
        #[source]
        source: serde_json::Error,
    },
    /// An entry could not be serialised (not expected: entries are plain data).
    #[error("journal {path}")]
    Serialise {
        /// The journal file.
        path: PathBuf,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
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
