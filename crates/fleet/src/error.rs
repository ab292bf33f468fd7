//! The crate's one error type.

use std::path::PathBuf;

/// Errors of the fleet's stores.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `SQLite` state store failed.
    #[error("state store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The `SQLite` error.
        #[source]
        source: rusqlite::Error,
    },
    /// The `PostgreSQL` server refused a statement, or could not be reached for longer than
    /// the store retries ([`crate::RECONNECT_FOR`]).
    #[cfg(feature = "postgres")]
    #[error("postgres {server}: {source}")]
    Postgres {
        /// The server, as `host:port/database` (never the password).
        server: String,
        /// The client's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// No connection could be taken from the pool.
    #[cfg(feature = "postgres")]
    #[error("postgres {server}: {source}")]
    Pool {
        /// The server, as `host:port/database`.
        server: String,
        /// The pool's error.
        #[source]
        source: deadpool_postgres::PoolError,
    },
    /// The store holds something this version cannot read, or a schema newer than it knows.
    #[error("state store {store}: {message}")]
    Corrupt {
        /// The database file or server.
        store: String,
        /// What is wrong.
        message: String,
    },
    /// A file operation failed (the merge lock's file, a runner lock, the store's runtime).
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`open`, `create`, `start runtime`).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A plan handed to `enqueue_plan` names a dependency the run does not have, or its
    /// dependencies form a cycle (its tasks would stay blocked forever).
    #[error("run {run}: task {task}: {message}")]
    Plan {
        /// The run.
        run: String,
        /// The task.
        task: String,
        /// What is wrong (an unknown dependency, a cycle).
        message: String,
    },
    /// The partition rule: a write by a claim whose lease lapsed, or whose fencing token is no
    /// longer the task's newest (another worker re-claimed it), or that was already settled.
    #[error(
        "claim of task {task} of run {run} with token {token} is no longer held \
         (its lease lapsed, or a newer claim or a settlement replaced it)"
    )]
    Stale {
        /// The run.
        run: String,
        /// The task.
        task: String,
        /// The claim's fencing token.
        token: u64,
    },
}

impl Error {
    /// Whether the error is a lost or refused connection (the server restarting, a network
    /// cut), which the Postgres stores retry with backoff, rather than an answer.
    pub fn is_connection(&self) -> bool {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres { source, .. } => pg_connection_error(source),
            #[cfg(feature = "postgres")]
            Self::Pool { source, .. } => match source {
                deadpool_postgres::PoolError::Backend(e) => pg_connection_error(e),
                deadpool_postgres::PoolError::Timeout(_) => true,
                _ => false,
            },
            _ => false,
        }
    }
}

/// A closed connection, an I/O error, or a server-side connection exception
/// (SQLSTATE class 08) or shutdown (57P01 `admin_shutdown`, 57P02 `crash_shutdown`,
/// 57P03 `cannot_connect_now`): <https://www.postgresql.org/docs/current/errcodes-appendix.html>.
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
