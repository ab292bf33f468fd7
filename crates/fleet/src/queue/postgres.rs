//! `PgQueue`: the [`QueueStore`] on a `PostgreSQL` server, shared by every worker of a fleet.
//!
//! - Each change is one transaction (one statement, or a read and a write in one); the
//!   conditional `UPDATE`s of `Start` and `Finish` make two runners racing for one entry
//!   start it once.
//! - Migrations: version in `lightsout_schema` (name `queue`), applied under an advisory lock.
//! - Lost connections are retried with backoff for [`crate::RECONNECT_FOR`]. Every change is
//!   idempotent: `Add` too, through a unique index on the spec of queued entries (an `Add`
//!   retried after a lost reply finds the entry the first try made).

use super::sqlite::now;
use super::{QueueChange, QueueEntry, QueueError, QueueStatus, QueueStore};
use crate::pg::{Pg, conn, migrate, pg_err, retry};

const MIGRATIONS: &[&str] = &[
    // 1: the queue and the runner's flags.
    r"
    CREATE TABLE lightsout_queue (
        id BIGSERIAL PRIMARY KEY,
        spec TEXT NOT NULL,
        status TEXT NOT NULL,
        run_id TEXT,
        added_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        detail TEXT
    );
    CREATE TABLE lightsout_flags (
        name TEXT PRIMARY KEY,
        value BIGINT NOT NULL
    );
    ",
    // 2: a spec is queued at most once (adding is idempotent). A queued duplicate made before
    // holds no run and no outcome: only the first of them is kept.
    r"
    DELETE FROM lightsout_queue WHERE status = 'queued' AND id NOT IN
        (SELECT MIN(id) FROM lightsout_queue WHERE status = 'queued' GROUP BY spec);
    CREATE UNIQUE INDEX lightsout_queue_queued_spec ON lightsout_queue (spec)
        WHERE status = 'queued';
    ",
];

const COLUMNS: &str = "id, spec, status, run_id, added_at, started_at, finished_at, detail";

/// The spec queue on a `PostgreSQL` server: a [`QueueStore`](super::QueueStore).
#[derive(Debug)]
pub struct PgQueue {
    pg: Pg,
}

impl PgQueue {
    /// Connects to the server at `url` (`postgres://user[:password]@host:port/database`;
    /// no TLS) and brings the schema up to date.
    ///
    /// # Errors
    /// The URL is malformed, the server cannot be reached within [`crate::RECONNECT_FOR`],
    /// or its queue schema is newer than this version knows.
    pub fn connect(url: &str) -> Result<Self, QueueError> {
        let pg = Pg::connect(url, 4)?;
        let (pool, server) = (pg.pool(), pg.server().to_owned());
        pg.block(async move { retry(|| migrate(&pool, &server, "queue", MIGRATIONS)).await })?;
        Ok(Self { pg })
    }

    fn entry(&self, r: &tokio_postgres::Row) -> Result<QueueEntry, QueueError> {
        let id: i64 = r.get(0);
        let status: &str = r.get(2);
        let Some(status) = QueueStatus::parse(status) else {
            return Err(QueueError::Corrupt {
                store: self.pg.server().to_owned(),
                message: format!("entry {id} has the unknown status `{status}`"),
            });
        };
        Ok(QueueEntry {
            id: id.cast_unsigned(),
            spec: r.get(1),
            status,
            run_id: r.get(3),
            added_at: r.get(4),
            started_at: r.get(5),
            finished_at: r.get(6),
            detail: r.get(7),
        })
    }
}

impl QueueStore for PgQueue {
    fn entries(&self) -> Result<Vec<QueueEntry>, QueueError> {
        let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
        let rows = self.pg.block(async move {
            retry(|| async {
                let c = conn(&pool, &server).await?;
                c.query(
                    &format!("SELECT {COLUMNS} FROM lightsout_queue ORDER BY id"),
                    &[],
                )
                .await
                .map_err(pg_err(&server))
            })
            .await
        })?;
        rows.iter().map(|r| self.entry(r)).collect()
    }

    fn apply(&self, change: &QueueChange) -> Result<Option<QueueEntry>, QueueError> {
        let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
        let change = change.clone();
        let row = self.pg.block(async move {
            retry(|| async {
                let c = conn(&pool, &server).await?;
                apply_once(&c, &change).await.map_err(pg_err(&server))
            })
            .await
        })?;
        row.as_ref().map(|r| self.entry(r)).transpose()
    }

    fn stop_requested(&self) -> Result<bool, QueueError> {
        let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
        self.pg.block(async move {
            retry(|| async {
                let c = conn(&pool, &server).await?;
                let v = c
                    .query_opt("SELECT value FROM lightsout_flags WHERE name = 'stop'", &[])
                    .await
                    .map_err(pg_err(&server))?;
                Ok(v.is_some_and(|r| r.get::<_, i64>(0) != 0))
            })
            .await
        })
    }
}

/// Applies `change` in one statement; the row it added or touched (for `Remove`, as it was).
async fn apply_once(
    c: &deadpool_postgres::Client,
    change: &QueueChange,
) -> Result<Option<tokio_postgres::Row>, tokio_postgres::Error> {
    match change {
        QueueChange::Add { spec } => {
            // Two tries: the queued entry an insert ran into may start before it is read.
            for _ in 0..2 {
                let added = c
                    .query_opt(
                        &format!(
                            "INSERT INTO lightsout_queue (spec, status, added_at) \
                             VALUES ($1, 'queued', $2) \
                             ON CONFLICT (spec) WHERE status = 'queued' DO NOTHING \
                             RETURNING {COLUMNS}"
                        ),
                        &[spec, &now()],
                    )
                    .await?;
                if added.is_some() {
                    return Ok(added);
                }
                let queued = c
                    .query_opt(
                        &format!(
                            "SELECT {COLUMNS} FROM lightsout_queue \
                             WHERE spec = $1 AND status = 'queued'"
                        ),
                        &[spec],
                    )
                    .await?;
                if queued.is_some() {
                    return Ok(queued);
                }
            }
            Ok(None)
        }
        QueueChange::Remove { id } => {
            c.query_opt(
                &format!(
                    "DELETE FROM lightsout_queue WHERE id = $1 AND status != 'running' \
                     RETURNING {COLUMNS}"
                ),
                &[&id.cast_signed()],
            )
            .await
        }
        QueueChange::Start { id, run_id } => {
            c.query_opt(
                &format!(
                    "UPDATE lightsout_queue SET status = 'running', run_id = $2, \
                     started_at = COALESCE(started_at, $3) WHERE id = $1 AND \
                     (status = 'queued' OR (status = 'running' AND run_id = $2)) \
                     RETURNING {COLUMNS}"
                ),
                &[&id.cast_signed(), run_id, &now()],
            )
            .await
        }
        QueueChange::Finish { id, status, detail } => {
            c.query_opt(
                &format!(
                    "UPDATE lightsout_queue SET status = $2, detail = $3, finished_at = $4 \
                     WHERE id = $1 AND status = 'running' RETURNING {COLUMNS}"
                ),
                &[&id.cast_signed(), &status.as_str(), detail, &now()],
            )
            .await
        }
        QueueChange::Stop(on) => {
            c.execute(
                "INSERT INTO lightsout_flags (name, value) VALUES ('stop', $1) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                &[&i64::from(*on)],
            )
            .await?;
            Ok(None)
        }
    }
}
