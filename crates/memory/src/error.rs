//! The crate's one error type.

use crate::RecordId;
use std::path::PathBuf;

/// Everything that can go wrong in `lightsout-memory`.
///
/// Problems *in imported text* are not errors: importers return them as diagnostics
/// next to the records they could read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The SQLite library reported an error (including `SQLITE_BUSY` after the busy timeout).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An argument or a record is not valid (bad glob, regex, id, empty title...).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// No record has this id.
    #[error("no record {0}; run `lightsout memory list --all` to see the ids")]
    NotFound(RecordId),
    /// The write contradicts the record's state (superseding a superseded record...).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Running git failed.
    #[error("git: {0}")]
    Git(String),
    /// JSON (de)serialisation of a stored column failed: the database was edited by hand.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// The database was written by a newer version of Lightsout.
    #[error(
        "database schema version {found} is newer than this build supports ({supported}); upgrade lightsout"
    )]
    SchemaTooNew {
        /// `PRAGMA user_version` found.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
