//! `PgClaims`: the [`ClaimStore`] on a `PostgreSQL` server, shared by a fleet of workers.
//!
//! - Claiming is one statement: `UPDATE … FROM (SELECT … ORDER BY seq LIMIT 1 FOR UPDATE SKIP
//!   LOCKED)`, so concurrent claimers each lock a different row and never wait on one another
//!   (graphile-worker, River, `solid_queue`, pgmq do the same). Tokens come from one sequence.
//! - The clock is the server's (`clock_timestamp()`), so workers' clocks never decide a lease.
//! - The merge lock is a session-level advisory lock (`pg_try_advisory_lock`) on a connection
//!   taken out of the pool for as long as the lock is held; the server frees it when that
//!   session ends (the holder dropped it, died, or lost its connection).
//!   <https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS>
//! - Lost connections are retried with backoff for [`crate::RECONNECT_FOR`]. A retried write
//!   is safe: enqueue skips existing tasks, a settlement already applied under the same token
//!   succeeds, and a claim whose reply was lost lapses with its lease and is claimed again.

use super::{
    Claim, ClaimStore, MergeLock, Settle, TaskRecord, TaskStatus, lease_ms, settled, stale,
};
use crate::Error;
use crate::pg::{Pg, conn, migrate, pg_err, retry};
use std::time::Duration;

const MIGRATIONS: &[&str] = &[
    // 1: tasks and the token sequence.
    r"
    CREATE SEQUENCE lightsout_claim_token;
    CREATE TABLE lightsout_tasks (
        seq BIGSERIAL PRIMARY KEY,
        run_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('ready', 'claimed', 'done', 'failed')),
        worker TEXT,
        token BIGINT NOT NULL DEFAULT 0,
        lease_until TIMESTAMPTZ,
        attempts INTEGER NOT NULL DEFAULT 0,
        detail TEXT,
        UNIQUE (run_id, task_id)
    );
    CREATE INDEX lightsout_tasks_open ON lightsout_tasks (seq)
        WHERE status IN ('ready', 'claimed');
    ",
];

/// The advisory lock key of the merge lock ("lightsou" in ASCII). Advisory locks are
/// per database, so each fleet's database has its own.
const MERGE_LOCK: i64 = 0x6c69_6768_7473_6f75;

/// Milliseconds since the Unix epoch of a `timestamptz` expression, as SQL.
macro_rules! epoch_ms {
    ($e:literal) => {
        concat!("(extract(epoch FROM ", $e, ") * 1000)::bigint")
    };
}

const CLAIM: &str = concat!(
    "UPDATE lightsout_tasks t SET status = 'claimed', worker = $1, \
     token = nextval('lightsout_claim_token'), \
     lease_until = clock_timestamp() + $2::float8 * interval '1 millisecond', \
     attempts = t.attempts + 1 \
     FROM (SELECT seq FROM lightsout_tasks \
           WHERE status = 'ready' OR (status = 'claimed' AND lease_until <= clock_timestamp()) \
           ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) next \
     WHERE t.seq = next.seq \
     RETURNING t.run_id, t.task_id, t.token, t.attempts, ",
    epoch_ms!("t.lease_until")
);

/// The `WHERE` clause of a write by a claim still held: token `$3` of task `$2` of run `$1`.
const HELD: &str = "run_id = $1 AND task_id = $2 AND token = $3 AND status = 'claimed' \
                    AND lease_until > clock_timestamp()";

/// Task claims on a `PostgreSQL` server ([module docs](self)).
#[derive(Debug)]
pub struct PgClaims {
    pg: Pg,
}

impl PgClaims {
    /// Connects to the server at `url` (`postgres://user[:password]@host:port/database`;
    /// no TLS) with a pool of at most `max_connections`, and brings the schema up to date.
    ///
    /// # Errors
    /// The URL is malformed, the server cannot be reached within
    /// [`crate::RECONNECT_FOR`], or its claims schema is newer than this version knows.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, Error> {
        let pg = Pg::connect(url, max_connections)?;
        let (pool, server) = (pg.pool(), pg.server().to_owned());
        pg.block(async move { retry(|| migrate(&pool, &server, "claims", MIGRATIONS)).await })?;
        Ok(Self { pg })
    }

    /// Runs `op(pool, server)` on the store's runtime, retried on lost connections.
    fn run<T, F, Fut>(&self, op: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: Fn(deadpool_postgres::Pool, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, Error>> + Send,
    {
        let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
        self.pg
            .block(async move { retry(|| op(pool.clone(), server.clone())).await })
    }
}

impl ClaimStore for PgClaims {
    fn enqueue(&self, run: &str, tasks: &[String]) -> Result<usize, Error> {
        let (run, tasks) = (run.to_owned(), tasks.to_vec());
        self.run(move |pool, server| {
            let (run, tasks) = (run.clone(), tasks.clone());
            async move {
                let c = conn(&pool, &server).await?;
                let n = c
                    .execute(
                        "INSERT INTO lightsout_tasks (run_id, task_id, status) \
                         SELECT $1, t, 'ready' FROM unnest($2::text[]) WITH ORDINALITY AS u(t, n) \
                         ORDER BY n ON CONFLICT (run_id, task_id) DO NOTHING",
                        &[&run, &tasks],
                    )
                    .await
                    .map_err(pg_err(&server))?;
                Ok(n as usize)
            }
        })
    }

    fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Claim>, Error> {
        let worker = worker.to_owned();
        let ms = lease_ms(lease) as f64;
        self.run(move |pool, server| {
            let worker = worker.clone();
            async move {
                let c = conn(&pool, &server).await?;
                let st = c.prepare_cached(CLAIM).await.map_err(pg_err(&server))?;
                let row = c
                    .query_opt(&st, &[&worker, &ms])
                    .await
                    .map_err(pg_err(&server))?;
                Ok(row.map(|r| Claim {
                    run: r.get(0),
                    task: r.get(1),
                    worker,
                    token: r.get::<_, i64>(2).cast_unsigned(),
                    attempt: r.get::<_, i32>(3).cast_unsigned(),
                    lease_until_ms: r.get(4),
                }))
            }
        })
    }

    fn heartbeat(&self, claim: &Claim, lease: Duration) -> Result<Claim, Error> {
        let held = claim.clone();
        let ms = lease_ms(lease) as f64;
        let until = self.run(move |pool, server| {
            let held = held.clone();
            async move {
                let c = conn(&pool, &server).await?;
                let sql = format!(
                    "UPDATE lightsout_tasks SET \
                     lease_until = clock_timestamp() + $4::float8 * interval '1 millisecond' \
                     WHERE {HELD} RETURNING {}",
                    epoch_ms!("lease_until")
                );
                let st = c.prepare_cached(&sql).await.map_err(pg_err(&server))?;
                let row = c
                    .query_opt(
                        &st,
                        &[&held.run, &held.task, &held.token.cast_signed(), &ms],
                    )
                    .await
                    .map_err(pg_err(&server))?;
                Ok(row.map(|r| r.get::<_, i64>(0)))
            }
        })?;
        match until {
            Some(ms) => Ok(Claim {
                lease_until_ms: ms,
                ..claim.clone()
            }),
            None => Err(stale(claim)),
        }
    }

    fn settle(&self, claim: &Claim, outcome: &Settle) -> Result<(), Error> {
        let (status, detail) = settled(outcome);
        let (held, detail) = (claim.clone(), detail.map(str::to_owned));
        let applied = self.run(move |pool, server| {
            let (held, detail) = (held.clone(), detail.clone());
            async move {
                let c = conn(&pool, &server).await?;
                let sql = format!(
                    "UPDATE lightsout_tasks SET status = $4, detail = $5, lease_until = NULL \
                     WHERE {HELD}"
                );
                let st = c.prepare_cached(&sql).await.map_err(pg_err(&server))?;
                let token = held.token.cast_signed();
                let n = c
                    .execute(
                        &st,
                        &[&held.run, &held.task, &token, &status.as_str(), &detail],
                    )
                    .await
                    .map_err(pg_err(&server))?;
                if n == 1 {
                    return Ok(true);
                }
                // Already settled this way under this token (a retried call) is success.
                let now = c
                    .query_opt(
                        "SELECT status, token FROM lightsout_tasks \
                         WHERE run_id = $1 AND task_id = $2",
                        &[&held.run, &held.task],
                    )
                    .await
                    .map_err(pg_err(&server))?;
                Ok(now.is_some_and(|r| {
                    r.get::<_, &str>(0) == status.as_str() && r.get::<_, i64>(1) == token
                }))
            }
        })?;
        if applied { Ok(()) } else { Err(stale(claim)) }
    }

    fn tasks(&self, run: &str) -> Result<Vec<TaskRecord>, Error> {
        let run = run.to_owned();
        let rows = self.run(move |pool, server| {
            let run = run.clone();
            async move {
                let c = conn(&pool, &server).await?;
                let sql = format!(
                    "SELECT task_id, status, worker, token, attempts, {}, detail \
                     FROM lightsout_tasks WHERE run_id = $1 ORDER BY seq",
                    epoch_ms!("lease_until")
                );
                c.query(&sql, &[&run]).await.map_err(pg_err(&server))
            }
        })?;
        rows.iter()
            .map(|r| {
                let status: &str = r.get(1);
                let task: String = r.get(0);
                Ok(TaskRecord {
                    status: TaskStatus::parse(status).ok_or_else(|| Error::Corrupt {
                        store: self.pg.server().to_owned(),
                        message: format!("task {task} has the unknown status `{status}`"),
                    })?,
                    task,
                    worker: r.get(2),
                    token: r.get::<_, i64>(3).cast_unsigned(),
                    attempts: r.get::<_, i32>(4).cast_unsigned(),
                    lease_until_ms: r.get(5),
                    detail: r.get(6),
                })
            })
            .collect()
    }

    fn try_merge_lock(&self, holder: &str) -> Result<Option<MergeLock>, Error> {
        let session = self.run(|pool, server| async move {
            let c = conn(&pool, &server).await?;
            let got: bool = c
                .query_one("SELECT pg_try_advisory_lock($1)", &[&MERGE_LOCK])
                .await
                .map_err(pg_err(&server))?
                .get(0);
            // Out of the pool: the lock lives as long as this session, and no other user of
            // the pool may get the session while it holds the lock.
            Ok(got.then(|| deadpool_postgres::Object::take(c)))
        })?;
        let Some(client) = session else {
            return Ok(None);
        };
        let held = MergeSession {
            client: Some(client),
            rt: self.pg.handle()?,
        };
        Ok(Some(MergeLock::new(holder, Box::new(held))))
    }
}

/// The session holding the merge lock. Dropping it unlocks before it returns, so the next
/// `try_merge_lock` anywhere in the fleet sees the lock free (closing the connection alone
/// would free it only once the server noticed).
struct MergeSession {
    client: Option<deadpool_postgres::ClientWrapper>,
    rt: tokio::runtime::Handle,
}

impl Drop for MergeSession {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt.spawn(async move {
            // A failure means the session is gone, and the lock with it.
            let _ = client
                .execute("SELECT pg_advisory_unlock($1)", &[&MERGE_LOCK])
                .await;
            drop(client);
            let _ = tx.send(());
        });
        // Returns at once if the runtime is gone (the task, and the sender, were dropped).
        let _ = rx.recv();
    }
}
