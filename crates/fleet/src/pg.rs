//! The bridge from the stores' blocking traits to tokio-postgres: a connection pool
//! (deadpool-postgres) driven by a small runtime the store owns, and retry with backoff on
//! lost connections.
//!
//! The traits are blocking, like the `SQLite` backends beside them, so a store works the same
//! from a thread or from inside the factory's tokio runtime: each call is spawned on the
//! store's own runtime and the caller waits on a channel (never `block_on` inside a runtime,
//! which tokio forbids).

use crate::Error;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::future::Future;
use std::time::{Duration, Instant};

/// How long a Postgres store keeps retrying a lost connection (a server restart, a network
/// cut) before it returns the error: 60 s, with backoff from 50 ms doubling to 2 s.
pub const RECONNECT_FOR: Duration = Duration::from_secs(60);

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A pool of connections to one server and the runtime that drives them.
pub struct Pg {
    rt: Option<tokio::runtime::Runtime>,
    pool: Pool,
    server: String,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Pg {
    /// Connects lazily to the server at `url` (`postgres://user[:password]@host:port/db`,
    /// or the key=value form) with at most `max_connections` connections.
    ///
    /// # Errors
    /// [`Error::Postgres`] when `url` does not parse; [`Error::Io`] when the runtime cannot
    /// start; [`Error::Corrupt`] when the pool cannot be built.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, Error> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|source| Error::Postgres {
            server: "(url)".into(),
            source,
        })?;
        config.connect_timeout(Duration::from_secs(5));
        if config.get_application_name().is_none() {
            config.application_name("lightsout");
        }
        let server = shown(&config);
        let mgr = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lightsout-pg")
            .enable_all()
            .build()
            .map_err(|source| Error::Io {
                op: "start the postgres runtime for",
                path: server.clone().into(),
                source,
            })?;
        let pool = {
            let _in_rt = rt.enter();
            Pool::builder(mgr)
                .max_size(max_connections.max(1))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(RECONNECT_FOR))
                .create_timeout(Some(Duration::from_secs(10)))
                .build()
                .map_err(|e| Error::Corrupt {
                    store: server.clone(),
                    message: format!("cannot build the connection pool: {e}"),
                })?
        };
        Ok(Self {
            rt: Some(rt),
            pool,
            server,
        })
    }

    /// `host:port/database`, for messages.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The pool, to move into a future given to [`Pg::block`].
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    /// A handle on the store's runtime, for work that outlives one call (the merge lock's
    /// session).
    ///
    /// # Errors
    /// [`Error::Corrupt`] once the runtime has stopped.
    pub fn handle(&self) -> Result<tokio::runtime::Handle, Error> {
        self.rt
            .as_ref()
            .map(|rt| rt.handle().clone())
            .ok_or_else(|| self.gone())
    }

    /// Runs `fut` on the store's runtime and waits for it (from a plain thread or from inside
    /// another runtime alike).
    ///
    /// # Errors
    /// What `fut` returns; [`Error::Corrupt`] once the runtime has stopped.
    pub fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let Some(rt) = &self.rt else {
            return Err(self.gone());
        };
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().unwrap_or_else(|_| Err(self.gone()))
    }

    fn gone(&self) -> Error {
        Error::Corrupt {
            store: self.server.clone(),
            message: "the postgres runtime stopped".into(),
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        // Dropping a runtime waits for its tasks, which tokio refuses inside another runtime.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn shown(c: &tokio_postgres::Config) -> String {
    let host = match c.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", c.get_dbname().unwrap_or("-"))
}

/// Wraps a client error with the server's name.
pub fn pg_err(server: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |source| Error::Postgres {
        server: server.to_owned(),
        source,
    }
}

/// A connection from `pool`.
///
/// # Errors
/// [`Error::Pool`] when none can be had.
pub async fn conn(pool: &Pool, server: &str) -> Result<Object, Error> {
    pool.get().await.map_err(|source| Error::Pool {
        server: server.to_owned(),
        source,
    })
}

/// Runs `op` until it succeeds, fails with an answer, or connections have been failing for
/// [`RECONNECT_FOR`]; waits between tries with exponential backoff.
///
/// # Errors
/// What `op` returned last.
pub async fn retry<T, F, Fut>(mut op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let deadline = Instant::now() + RECONNECT_FOR;
    let mut backoff = FIRST_BACKOFF;
    loop {
        match op().await {
            Err(e) if e.is_connection() && Instant::now() < deadline => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            r => return r,
        }
    }
}

/// The blocking form of [`retry`], for a caller whose `op` waits on [`Pg::block`] itself
/// (a write transaction driven step by step): runs `op` until it succeeds, fails with an
/// error `is_connection` does not call a lost connection, or connections have been failing
/// for [`RECONNECT_FOR`]; sleeps between tries with the same backoff. Generic over the error,
/// so a store with its own error type (the decision memory's) shares the policy.
///
/// # Errors
/// What `op` returned last.
pub fn retry_blocking<T, E>(
    is_connection: impl Fn(&E) -> bool,
    mut op: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + RECONNECT_FOR;
    let mut backoff = FIRST_BACKOFF;
    loop {
        match op() {
            Err(e) if is_connection(&e) && Instant::now() < deadline => {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            r => return r,
        }
    }
}

/// Brings the schema named `name` up to date: `migrations[i]` takes it from version `i` to
/// `i + 1`. Versions live in `lightsout_schema`; the whole migration is one transaction under
/// a transaction-level advisory lock, so workers starting at once apply each step once.
///
/// # Errors
/// [`Error::Postgres`] or [`Error::Pool`] when the server fails; [`Error::Corrupt`] when
/// the `name` schema is newer than `migrations` knows.
pub async fn migrate(
    pool: &Pool,
    server: &str,
    name: &str,
    migrations: &[&str],
) -> Result<(), Error> {
    let err = pg_err(server);
    let mut c = conn(pool, server).await?;
    let tx = c.transaction().await.map_err(&err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(&err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS lightsout_schema (
             name TEXT PRIMARY KEY,
             version INTEGER NOT NULL
         )",
    )
    .await
    .map_err(&err)?;
    let version: i32 = tx
        .query_opt(
            "SELECT version FROM lightsout_schema WHERE name = $1",
            &[&name],
        )
        .await
        .map_err(&err)?
        .map_or(0, |r| r.get(0));
    let known = i32::try_from(migrations.len()).unwrap_or(i32::MAX);
    if version > known {
        return Err(Error::Corrupt {
            store: server.to_owned(),
            message: format!(
                "{name} schema version {version} is newer than this lightsout knows ({known}); \
                 upgrade lightsout"
            ),
        });
    }
    for (i, m) in migrations.iter().enumerate().skip(version as usize) {
        tx.batch_execute(m).await.map_err(&err)?;
        let v = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO lightsout_schema (name, version) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET version = excluded.version",
            &[&name, &v],
        )
        .await
        .map_err(&err)?;
    }
    tx.commit().await.map_err(&err)
}

/// The advisory lock key that serialises migrations ("lightsom" in ASCII).
const MIGRATION_LOCK: i64 = 0x6c69_6768_7473_6f6d;
