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
    /// The PostgreSQL server refused a statement or the connection failed.
    #[cfg(feature = "postgres")]
    #[error("postgres {server}: {source}")]
    Postgres {
        /// The server, as `host:port/database` (never the password).
        server: String,
        /// The client's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// No connection to the PostgreSQL server could be taken from the pool.
    #[cfg(feature = "postgres")]
    #[error("postgres {server}: {source}")]
    Pool {
        /// The server, as `host:port/database`.
        server: String,
        /// The pool's error.
        #[source]
        source: deadpool_postgres::PoolError,
    },
    /// An argument or a record is not valid (id, empty title, multi-line field...).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A path glob (a scope or a guard's) does not parse.
    #[error("invalid input: bad glob `{glob}`: {source}")]
    Glob {
        /// The glob as given.
        glob: String,
        /// The parser's error.
        #[source]
        source: globset::Error,
    },
    /// A guard's regular expression does not compile.
    #[error(
        "invalid input: bad regex `{regex}`{}: {source}",
        .record.map(|r| format!(" in {r}")).unwrap_or_default()
    )]
    Regex {
        /// The expression as given.
        regex: String,
        /// The stored record whose guard it is, when it comes from the store.
        record: Option<RecordId>,
        /// The compiler's error.
        #[source]
        source: regex::Error,
    },
    /// No record has this id.
    #[error("no record {0}; run `lightsout memory list --all` to see the ids")]
    NotFound(RecordId),
    /// The write contradicts the record's state (superseding a superseded record...).
    #[error("conflict: {0}")]
    Conflict(String),
    /// git ran and failed (an unknown revision, not a repository): its message.
    #[error("git: {0}")]
    Git(String),
    /// git could not be started.
    #[error("git: cannot run git ({source}); is git installed and on PATH?")]
    GitSpawn {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `git show -s --format=%ct` did not print a commit time.
    #[error("git: cannot read the commit time of `{rev}`: {stderr}")]
    CommitTime {
        /// The revision.
        rev: String,
        /// git's standard error, trimmed.
        stderr: String,
        /// Why its output is not a number.
        #[source]
        source: std::num::ParseIntError,
    },
    /// JSON (de)serialisation of a stored column failed: the database was edited by hand.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// The database was written by a newer version of Lightsout (SQLite's
    /// `PRAGMA user_version`, or the `memory` row of Postgres's `lightsout_schema`).
    #[error(
        "database schema version {found} is newer than this build supports ({supported}); upgrade lightsout"
    )]
    SchemaTooNew {
        /// The schema version found.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
}

impl Error {
    /// Whether the error is a lost or refused connection to the Postgres server (a restart,
    /// a network cut), which `PgStore` retries with backoff, rather than an answer.
    pub fn is_connection(&self) -> bool {
        match self {
            #[cfg(feature = "postgres")]
            Error::Postgres { source, .. } => pg_connection_error(source),
            #[cfg(feature = "postgres")]
            Error::Pool { source, .. } => match source {
                deadpool_postgres::PoolError::Backend(e) => pg_connection_error(e),
                deadpool_postgres::PoolError::Timeout(_) => true,
                _ => false,
            },
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The fleet's Postgres bridge ([`lightsout_fleet::pg`]) reports in the fleet's error type;
/// its client and pool errors keep their source and the memory's messages, the rest keep
/// their message (the server is named as `host:port/database`, never with the password).
#[cfg(feature = "postgres")]
impl From<lightsout_fleet::Error> for Error {
    fn from(e: lightsout_fleet::Error) -> Self {
        match e {
            lightsout_fleet::Error::Postgres { server, source } => {
                Error::Postgres { server, source }
            }
            lightsout_fleet::Error::Pool { server, source } => Error::Pool { server, source },
            lightsout_fleet::Error::Io { path, source, .. } => Error::Io { path, source },
            lightsout_fleet::Error::Corrupt { store, message } => {
                Error::Invalid(format!("postgres {store}: {message}"))
            }
            other => Error::Invalid(other.to_string()),
        }
    }
}

/// A closed connection, an I/O error, or a server-side connection exception (SQLSTATE class
/// 08) or shutdown (57P01 `admin_shutdown`, 57P02 `crash_shutdown`, 57P03
/// `cannot_connect_now`): <https://www.postgresql.org/docs/current/errcodes-appendix.html>.
/// The rule `lightsout-fleet`'s stores retry on.
#[cfg(feature = "postgres")]
fn pg_connection_error(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let c = code.code();
        return c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03");
    }
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    false
}
