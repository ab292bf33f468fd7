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
//!   succeeds, and a claim carries a reference of its own (`claim_ref`), so a retry after a
//!   lost reply returns the task that claim took instead of taking a second one.
//! - Unblocking: the transaction that completes a task locks its blocked dependents
//!   (`FOR UPDATE`, in `seq` order) before it checks their other dependencies in a statement
//!   of its own, so two dependencies completed at once cannot both miss the other's
//!   completion (each statement of a `READ COMMITTED` transaction sees what committed before
//!   it began); `enqueue_plan` share-locks the dependencies it names for the same reason.

use super::{
    Claim, ClaimStore, MergeLock, PlannedTask, Settle, TaskRecord, TaskStatus, check_plan,
    lease_ms, settled, stale,
};
use crate::Error;
use crate::pg::{Pg, conn, migrate, pg_err, retry};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The claims schema, also brought up to date by the budget store of the same database (its
/// ledger reads the claims).
pub(crate) const MIGRATIONS: &[&str] = &[
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
    // 2: dependencies (a task is blocked until they are done), estimates, priorities, and
    // the reference of the claim that took a task (a retried claim finds its own).
    r"
    ALTER TABLE lightsout_tasks DROP CONSTRAINT lightsout_tasks_status_check;
    ALTER TABLE lightsout_tasks ADD CONSTRAINT lightsout_tasks_status_check
        CHECK (status IN ('blocked', 'ready', 'claimed', 'done', 'failed'));
    ALTER TABLE lightsout_tasks ADD COLUMN estimate_ms BIGINT,
        ADD COLUMN priority BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN claim_ref TEXT;
    CREATE TABLE lightsout_task_deps (
        run_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        dep_id TEXT NOT NULL,
        PRIMARY KEY (run_id, task_id, dep_id)
    );
    CREATE INDEX lightsout_task_deps_dep ON lightsout_task_deps (run_id, dep_id);
    DROP INDEX lightsout_tasks_open;
    CREATE INDEX lightsout_tasks_open ON lightsout_tasks (priority DESC, seq)
        WHERE status IN ('ready', 'claimed');
    ",
];

/// Makes ready the blocked tasks of run `$1` whose dependencies are all done, among all of
/// them (`UNBLOCK_RUN`) or those with the `seq`s `$2` (`UNBLOCK_SEQS`). The anti-join names the
/// dependency table's key (`run_id`, `task_id`) with the run as a parameter, so the planner
/// looks dependencies up by key even with stale statistics (a bench run on a fresh table once
/// scanned every dependency of the run per blocked task).
const UNBLOCK_WAITING: &str = "NOT EXISTS ( \
         SELECT 1 FROM lightsout_task_deps d JOIN lightsout_tasks u \
         ON u.run_id = $1 AND u.task_id = d.dep_id \
         WHERE d.run_id = $1 AND d.task_id = t.task_id AND u.status <> 'done')";

/// The blocked dependents of task `$2` of run `$1`, locked, in `seq` order: driven from the
/// dependency index (`run_id`, `dep_id`).
const LOCK_DEPENDENTS: &str = "SELECT t.seq FROM lightsout_task_deps d \
     JOIN lightsout_tasks t ON t.run_id = $1 AND t.task_id = d.task_id \
     WHERE d.run_id = $1 AND d.dep_id = $2 AND t.status = 'blocked' \
     ORDER BY t.seq FOR UPDATE OF t";

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
     attempts = t.attempts + 1, claim_ref = $3 \
     FROM (SELECT seq FROM lightsout_tasks \
           WHERE status = 'ready' OR (status = 'claimed' AND lease_until <= clock_timestamp()) \
           ORDER BY priority DESC, seq LIMIT 1 FOR UPDATE SKIP LOCKED) next \
     WHERE t.seq = next.seq \
     RETURNING t.run_id, t.task_id, t.token, t.attempts, ",
    epoch_ms!("t.lease_until")
);

/// The task claim `$1` took, if it took one (a retry after a lost reply).
const CLAIMED_BY: &str = concat!(
    "SELECT run_id, task_id, token, attempts, ",
    epoch_ms!("lease_until"),
    " FROM lightsout_tasks WHERE claim_ref = $1 AND status = 'claimed'"
);

/// A reference unique to one `claim` call of this process.
fn claim_ref(worker: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{worker}/{}/{}/{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The `WHERE` clause of a write by a claim still held: token `$3` of task `$2` of run `$1`.
const HELD: &str = "run_id = $1 AND task_id = $2 AND token = $3 AND status = 'claimed' \
                    AND lease_until > clock_timestamp()";

/// Task claims on a `PostgreSQL` server: a [`ClaimStore`](super::ClaimStore).
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
    fn enqueue_plan(&self, run: &str, plan: &[PlannedTask]) -> Result<usize, Error> {
        let (run, plan) = (run.to_owned(), Arc::new(plan.to_vec()));
        self.run(move |pool, server| {
            let (run, plan) = (run.clone(), plan.clone());
            async move {
                let err = pg_err(&server);
                let mut c = conn(&pool, &server).await?;
                let tx = c.transaction().await.map_err(&err)?;
                let known: HashSet<String> = tx
                    .query(
                        "SELECT task_id FROM lightsout_tasks WHERE run_id = $1",
                        &[&run],
                    )
                    .await
                    .map_err(&err)?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                check_plan(&run, &plan, &known)?;
                // Share-lock the known dependencies: a completion racing this enqueue then
                // commits before or after it, never unseen by both.
                let named: Vec<&String> = plan
                    .iter()
                    .flat_map(|t| &t.deps)
                    .filter(|d| known.contains(*d))
                    .collect();
                if !named.is_empty() {
                    tx.execute(
                        "SELECT 1 FROM lightsout_tasks WHERE run_id = $1 \
                         AND task_id = ANY($2) ORDER BY seq FOR SHARE",
                        &[&run, &named],
                    )
                    .await
                    .map_err(&err)?;
                }
                let ids: Vec<&str> = plan.iter().map(|t| t.task.as_str()).collect();
                let status: Vec<&str> = plan
                    .iter()
                    .map(|t| {
                        if t.deps.is_empty() {
                            "ready"
                        } else {
                            "blocked"
                        }
                    })
                    .collect();
                let estimate: Vec<Option<i64>> = plan
                    .iter()
                    .map(|t| t.estimate_ms.map(|e| i64::try_from(e).unwrap_or(i64::MAX)))
                    .collect();
                let priority: Vec<i64> = plan.iter().map(|t| t.priority).collect();
                let added: HashSet<String> = tx
                    .query(
                        "INSERT INTO lightsout_tasks \
                         (run_id, task_id, status, estimate_ms, priority) \
                         SELECT $1, t, s, e, p \
                         FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[]) \
                         WITH ORDINALITY AS u(t, s, e, p, n) \
                         ORDER BY n ON CONFLICT (run_id, task_id) DO NOTHING RETURNING task_id",
                        &[&run, &ids, &status, &estimate, &priority],
                    )
                    .await
                    .map_err(&err)?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let (mut from, mut to) = (Vec::new(), Vec::new());
                for t in plan.iter().filter(|t| added.contains(&t.task)) {
                    for d in &t.deps {
                        from.push(t.task.as_str());
                        to.push(d.as_str());
                    }
                }
                if !from.is_empty() {
                    tx.execute(
                        "INSERT INTO lightsout_task_deps (run_id, task_id, dep_id) \
                         SELECT $1, t, d FROM unnest($2::text[], $3::text[]) AS u(t, d) \
                         ON CONFLICT DO NOTHING",
                        &[&run, &from, &to],
                    )
                    .await
                    .map_err(&err)?;
                }
                // Dependencies that were already done when their dependents arrived: only
                // tasks that name a task the run had can be waiting on nothing.
                let on_known: Vec<&str> = plan
                    .iter()
                    .filter(|t| added.contains(&t.task) && t.deps.iter().any(|d| known.contains(d)))
                    .map(|t| t.task.as_str())
                    .collect();
                if !on_known.is_empty() {
                    tx.execute(
                        &format!(
                            "UPDATE lightsout_tasks t SET status = 'ready' \
                             WHERE t.run_id = $1 AND t.task_id = ANY($2) \
                             AND t.status = 'blocked' AND {UNBLOCK_WAITING}"
                        ),
                        &[&run, &on_known],
                    )
                    .await
                    .map_err(&err)?;
                }
                tx.commit().await.map_err(&err)?;
                if added.len() >= 100 {
                    // Fresh statistics for the planner after a large plan (best effort).
                    let _ = c
                        .batch_execute("ANALYZE lightsout_tasks, lightsout_task_deps")
                        .await;
                }
                Ok(added.len())
            }
        })
    }

    fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Claim>, Error> {
        let worker = worker.to_owned();
        let ms = lease_ms(lease) as f64;
        let reference = claim_ref(&worker);
        let tried = Arc::new(AtomicBool::new(false));
        self.run(move |pool, server| {
            let (worker, reference, tried) = (worker.clone(), reference.clone(), tried.clone());
            async move {
                let c = conn(&pool, &server).await?;
                let to_claim = |r: tokio_postgres::Row| Claim {
                    run: r.get(0),
                    task: r.get(1),
                    worker: worker.clone(),
                    token: r.get::<_, i64>(2).cast_unsigned(),
                    attempt: r.get::<_, i32>(3).cast_unsigned(),
                    lease_until_ms: r.get(4),
                };
                if tried.swap(true, Ordering::SeqCst) {
                    // A retry: the try before may have claimed a task and lost only the reply.
                    let mine = c
                        .query_opt(CLAIMED_BY, &[&reference])
                        .await
                        .map_err(pg_err(&server))?;
                    if let Some(r) = mine {
                        return Ok(Some(to_claim(r)));
                    }
                }
                let st = c.prepare_cached(CLAIM).await.map_err(pg_err(&server))?;
                let row = c
                    .query_opt(&st, &[&worker, &ms, &reference])
                    .await
                    .map_err(pg_err(&server))?;
                Ok(row.map(to_claim))
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
                let err = pg_err(&server);
                let mut c = conn(&pool, &server).await?;
                let tx = c.transaction().await.map_err(&err)?;
                let sql = format!(
                    "UPDATE lightsout_tasks SET status = $4, detail = $5, lease_until = NULL \
                     WHERE {HELD}"
                );
                let st = tx.prepare_cached(&sql).await.map_err(&err)?;
                let token = held.token.cast_signed();
                let n = tx
                    .execute(
                        &st,
                        &[&held.run, &held.task, &token, &status.as_str(), &detail],
                    )
                    .await
                    .map_err(&err)?;
                if n == 1 {
                    if status == TaskStatus::Done {
                        unblock_dependents(&tx, &held.run, &held.task)
                            .await
                            .map_err(&err)?;
                    }
                    tx.commit().await.map_err(&err)?;
                    return Ok(true);
                }
                // Already settled this way under this token (a retried call) is success.
                let now = tx
                    .query_opt(
                        "SELECT status, token FROM lightsout_tasks \
                         WHERE run_id = $1 AND task_id = $2",
                        &[&held.run, &held.task],
                    )
                    .await
                    .map_err(&err)?;
                Ok(now.is_some_and(|r| {
                    r.get::<_, &str>(0) == status.as_str() && r.get::<_, i64>(1) == token
                }))
            }
        })?;
        if applied { Ok(()) } else { Err(stale(claim)) }
    }

    fn tasks(&self, run: &str) -> Result<Vec<TaskRecord>, Error> {
        let run = run.to_owned();
        let (rows, dep_rows) = self.run(move |pool, server| {
            let run = run.clone();
            async move {
                let c = conn(&pool, &server).await?;
                let sql = format!(
                    "SELECT task_id, status, worker, token, attempts, {}, detail, \
                     estimate_ms, priority FROM lightsout_tasks WHERE run_id = $1 ORDER BY seq",
                    epoch_ms!("lease_until")
                );
                let tasks = c.query(&sql, &[&run]).await.map_err(pg_err(&server))?;
                let deps = c
                    .query(
                        "SELECT task_id, dep_id FROM lightsout_task_deps WHERE run_id = $1 \
                         ORDER BY task_id, dep_id",
                        &[&run],
                    )
                    .await
                    .map_err(pg_err(&server))?;
                Ok((tasks, deps))
            }
        })?;
        let mut deps: HashMap<String, Vec<String>> = HashMap::new();
        for r in &dep_rows {
            deps.entry(r.get(0)).or_default().push(r.get(1));
        }
        rows.iter()
            .map(|r| {
                let status: &str = r.get(1);
                let task: String = r.get(0);
                Ok(TaskRecord {
                    status: TaskStatus::parse(status).ok_or_else(|| Error::Corrupt {
                        store: self.pg.server().to_owned(),
                        message: format!("task {task} has the unknown status `{status}`"),
                    })?,
                    deps: deps.remove(&task).unwrap_or_default(),
                    task,
                    worker: r.get(2),
                    token: r.get::<_, i64>(3).cast_unsigned(),
                    attempts: r.get::<_, i32>(4).cast_unsigned(),
                    lease_until_ms: r.get(5),
                    detail: r.get(6),
                    estimate_ms: r.get::<_, Option<i64>>(7).map(i64::cast_unsigned),
                    priority: r.get(8),
                })
            })
            .collect()
    }

    fn runs(&self) -> Result<Vec<String>, Error> {
        self.run(|pool, server| async move {
            let c = conn(&pool, &server).await?;
            let rows = c
                .query(
                    "SELECT run_id FROM lightsout_tasks GROUP BY run_id ORDER BY MIN(seq)",
                    &[],
                )
                .await
                .map_err(pg_err(&server))?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn now_ms(&self) -> Result<i64, Error> {
        self.run(|pool, server| async move {
            let c = conn(&pool, &server).await?;
            let r = c
                .query_one(concat!("SELECT ", epoch_ms!("clock_timestamp()")), &[])
                .await
                .map_err(pg_err(&server))?;
            Ok(r.get(0))
        })
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

/// Makes ready the blocked dependents of `task` whose other dependencies are done: locks them
/// first (in `seq` order), then checks in a statement of its own (see the module docs).
async fn unblock_dependents(
    tx: &deadpool_postgres::Transaction<'_>,
    run: &str,
    task: &str,
) -> Result<(), tokio_postgres::Error> {
    let locked: Vec<i64> = tx
        .query(LOCK_DEPENDENTS, &[&run, &task])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !locked.is_empty() {
        tx.execute(
            &format!(
                "UPDATE lightsout_tasks t SET status = 'ready' \
                 WHERE t.seq = ANY($2) AND t.status = 'blocked' AND {UNBLOCK_WAITING}"
            ),
            &[&run, &locked],
        )
        .await?;
    }
    Ok(())
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
