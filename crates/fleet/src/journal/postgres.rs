//! `PgJournal`: the [`JournalStore`] on a `PostgreSQL` server, one journal for the whole
//! fleet.
//!
//! - Table `lightsout_journal (claim_run, seq, run_id, task_id, token, worker, entry, at)`,
//!   key `(claim_run, seq)`, indexed by `(run_id, task_id, token, seq)`; `entry` is `jsonb`
//!   (queryable: `entry->>'entry'` is the entry's kind), `at` the server's
//!   `clock_timestamp()` when the row was written.
//! - An append is `INSERT … ON CONFLICT (claim_run, seq) DO NOTHING`, then, when the key was
//!   taken, a read comparing the stored row with the one given (`jsonb` equality). Two
//!   appends of one row at once: the second waits on the first's key and finds its row.
//! - Lost connections are retried with backoff for [`crate::RECONNECT_FOR`]; an append lost
//!   after its commit is retried into its own row, which it finds and leaves.

use super::{ClaimRun, JournalRow, JournalStore, differs, limit, parse, stored};
use crate::Error;
use crate::pg::{Pg, conn, migrate, pg_err, retry};

const MIGRATIONS: &[&str] = &[
    // 1: the entries, keyed by claim run and seq; read by run and task.
    r"
    CREATE TABLE lightsout_journal (
        claim_run TEXT NOT NULL,
        seq BIGINT NOT NULL CHECK (seq >= 0),
        run_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        token BIGINT NOT NULL,
        worker TEXT NOT NULL,
        entry JSONB NOT NULL,
        at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (claim_run, seq)
    );
    CREATE INDEX lightsout_journal_run ON lightsout_journal (run_id, task_id, token, seq);
    ",
];

/// The shared journal on a `PostgreSQL` server: a [`JournalStore`](super::JournalStore).
#[derive(Debug)]
pub struct PgJournal {
    pg: Pg,
}

impl PgJournal {
    /// Connects to the server at `url` (`postgres://user[:password]@host:port/database`;
    /// no TLS) with a pool of at most `max_connections`, and brings the schema up to date.
    ///
    /// # Errors
    /// The URL is malformed, the server cannot be reached within [`crate::RECONNECT_FOR`], or
    /// its journal schema is newer than this version knows.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, Error> {
        let pg = Pg::connect(url, max_connections)?;
        let (pool, server) = (pg.pool(), pg.server().to_owned());
        pg.block(async move { retry(|| migrate(&pool, &server, "journal", MIGRATIONS)).await })?;
        Ok(Self { pg })
    }
}

impl JournalStore for PgJournal {
    fn append(&self, claim: &ClaimRun, seq: u64, entry: &str) -> Result<bool, Error> {
        let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
        let (claim, entry) = (claim.clone(), entry.to_owned());
        self.pg.block(async move {
            retry(|| async {
                let err = pg_err(&server);
                let c = conn(&pool, &server).await?;
                let (seq, token) = (stored(seq), stored(claim.token));
                let written = c
                    .execute(
                        "INSERT INTO lightsout_journal \
                         (claim_run, seq, run_id, task_id, token, worker, entry) \
                         VALUES ($1, $2, $3, $4, $5, $6, CAST($7::text AS jsonb)) \
                         ON CONFLICT (claim_run, seq) DO NOTHING",
                        &[
                            &claim.id,
                            &seq,
                            &claim.run,
                            &claim.task,
                            &token,
                            &claim.worker,
                            &entry,
                        ],
                    )
                    .await
                    .map_err(&err)?;
                if written == 1 {
                    return Ok(true);
                }
                let same: bool = c
                    .query_one(
                        "SELECT entry = CAST($3::text AS jsonb) AND run_id = $4 \
                         AND task_id = $5 AND token = $6 AND worker = $7 \
                         FROM lightsout_journal WHERE claim_run = $1 AND seq = $2",
                        &[
                            &claim.id,
                            &seq,
                            &entry,
                            &claim.run,
                            &claim.task,
                            &token,
                            &claim.worker,
                        ],
                    )
                    .await
                    .map_err(&err)?
                    .get(0);
                if same {
                    Ok(false)
                } else {
                    Err(differs(&server, &claim, seq.cast_unsigned()))
                }
            })
            .await
        })
    }

    fn entries(&self, run: &str, newest_per_task: Option<usize>) -> Result<Vec<JournalRow>, Error> {
        let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
        let run = run.to_owned();
        let limit = limit(newest_per_task);
        let rows = self.pg.block(async move {
            retry(|| async {
                let c = conn(&pool, &server).await?;
                c.query(
                    "SELECT run_id, task_id, token, worker, claim_run, seq, entry::text, \
                         (extract(epoch FROM at) * 1000)::bigint FROM ( \
                         SELECT *, row_number() OVER \
                             (PARTITION BY task_id ORDER BY token DESC, seq DESC) AS nth \
                         FROM lightsout_journal WHERE run_id = $1) j \
                     WHERE nth <= $2 ORDER BY task_id, token, seq",
                    &[&run, &limit],
                )
                .await
                .map_err(pg_err(&server))
            })
            .await
        })?;
        rows.iter()
            .map(|r| {
                let (claim_run, seq): (String, i64) = (r.get(4), r.get(5));
                let seq = seq.cast_unsigned();
                Ok(JournalRow {
                    run: r.get(0),
                    task: r.get(1),
                    token: r.get::<_, i64>(2).cast_unsigned(),
                    worker: r.get(3),
                    entry: parse(self.pg.server(), &claim_run, seq, r.get(6))?,
                    claim_run,
                    seq,
                    at_ms: r.get(7),
                })
            })
            .collect()
    }
}
