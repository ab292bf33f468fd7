//! The run-metrics store: one row per attempt, in the project's state database
//! (`.lightsout/state.db`, `SQLite`, the embedded default) beside the spec queue's tables, or
//! on the fleet's `PostgreSQL` server (feature `postgres`; [`MetricsStore::open_url`] with a
//! `postgres://` URL), so every worker of a fleet records into, and the tuner reads from, one
//! table.
//!
//! Each row holds the attempt's task kind, agent profile, model, prompt variant, tokens, USD,
//! wall time, whether it was a first attempt that passed, the task's final outcome and the
//! redacted failure category as columns (for people querying the table), and the whole
//! [`AttemptMetrics`] as JSON (what [`MetricsStore::records`] reads back, so fields added later
//! survive a round trip). Both backends have the same tables and behave the same; the tests
//! run against both.
//!
//! - **Key.** `(run_id, task_id, attempt)`: an attempt recorded again (a run killed after
//!   recording it and resumed) replaces the earlier row, so it counts once, at its last
//!   writing (`SQLite`: a new `rowid`; Postgres: a new `pos` from its sequence).
//! - **Migrations.** On open, in one transaction, by the fleet's stores' own
//!   [`lightsout_fleet::sqlite::migrate`] (or `lightsout_fleet::pg::migrate`, under an
//!   advisory lock so workers starting at once migrate once): the version of the `metrics`
//!   schema is kept in the `lightsout_schema` table (a `SQLite` file's `PRAGMA user_version`
//!   belongs to the queue). A schema newer than this build is refused, never rewritten.
//! - **Atomic.** Every write is one transaction; the `SQLite` file is in WAL mode with
//!   `synchronous = FULL`, so a committed attempt survives a `kill -9` or a power cut.
//!   Postgres calls retry a lost connection with backoff for the fleet's `RECONNECT_FOR`
//!   (60 s); a write is idempotent by its key, so a retried one counts once.
//! - **Old runs.** [`MetricsStore::import_jsonl`] brings `.lightsout/metrics.jsonl` (what the
//!   factory wrote before this store) in once: the bytes imported are remembered per file in
//!   `metrics_import`, so a second call imports only complete lines appended since, and a torn
//!   last line waits until it is complete.

use crate::record::{AttemptMetrics, LineDiagnostic, parse_jsonl, usd};
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use std::path::{Path, PathBuf};

/// The state database's file name under `.lightsout/`.
pub const STATE_DB: &str = "state.db";

/// The metrics lines the factory wrote before this store, under `.lightsout/`.
pub const METRICS_JSONL: &str = "metrics.jsonl";

pub use lightsout_stdx::{POSTGRES_SCHEMES, is_postgres_url};

/// The schema, one migration per version (version `i + 1` after `MIGRATIONS[i]`).
const MIGRATIONS: &[&str] = &[r"
CREATE TABLE metrics_attempt (
    run_id             TEXT    NOT NULL,
    task_id            TEXT    NOT NULL,
    attempt            INTEGER NOT NULL CHECK (attempt >= 1),
    task_kind          TEXT,
    agent              TEXT    NOT NULL,
    agent_profile      TEXT,
    model              TEXT,
    variant            TEXT,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    usd                REAL,
    wall_ms            INTEGER NOT NULL,
    passed             INTEGER NOT NULL,
    first_attempt_pass INTEGER NOT NULL,
    final_outcome      TEXT,
    failure_category   TEXT,
    record             TEXT    NOT NULL,
    PRIMARY KEY (run_id, task_id, attempt)
);
CREATE INDEX metrics_attempt_variant ON metrics_attempt (task_kind, variant);
CREATE TABLE metrics_import (
    path  TEXT    PRIMARY KEY,
    bytes INTEGER NOT NULL
);
"];

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `SQLite` refused an operation on the file.
    #[error("{}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The store is not a metrics store this build can read (its schema is newer), or a
    /// `postgres://` URL was given to a build without the Postgres backend.
    #[error("{}: {message}", path.display())]
    Corrupt {
        /// The database file, or the server as `host:port/database`.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The `PostgreSQL` server refused an operation, or could not be reached for longer
    /// than the fleet's stores retry.
    #[error("metrics store: {source}")]
    Postgres {
        /// The cause (it names the server as `host:port/database`, never the password).
        #[source]
        source: lightsout_fleet::Error,
    },
    /// A `metrics.jsonl` to import could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// What [`MetricsStore::import_jsonl`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Imported {
    /// Records inserted (or replacing a row with the same key).
    pub records: usize,
    /// Lines skipped, with why (line numbers count from the start of the file).
    pub skipped: Vec<LineDiagnostic>,
}

/// The metrics table of a state database ([module docs](self)).
#[derive(Debug)]
pub struct MetricsStore {
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Sqlite {
        conn: Connection,
        path: PathBuf,
    },
    #[cfg(feature = "postgres")]
    Postgres(postgres::PgMetrics),
}

impl MetricsStore {
    /// Opens (creating it and its directory when missing) the store in the `SQLite` file at
    /// `path` and brings its schema up to date.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the file cannot be opened or migrated;
    /// [`StoreError::Corrupt`] when its schema is newer than this build.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            // An error here resurfaces, with its path, when SQLite opens the file.
            let _ = std::fs::create_dir_all(dir);
        }
        let mut conn =
            lightsout_fleet::sqlite::open(path).map_err(|source| StoreError::Sqlite {
                path: path.to_path_buf(),
                source,
            })?;
        lightsout_fleet::sqlite::migrate(&mut conn, path, "metrics", MIGRATIONS).map_err(|e| {
            match e {
                lightsout_fleet::Error::Sqlite { path, source } => {
                    StoreError::Sqlite { path, source }
                }
                other => StoreError::Corrupt {
                    path: path.to_path_buf(),
                    message: other.to_string(),
                },
            }
        })?;
        Ok(MetricsStore {
            backend: Backend::Sqlite {
                conn,
                path: path.to_path_buf(),
            },
        })
    }

    /// Opens the store `location` names: a `postgres://` or `postgresql://` URL is the
    /// fleet's `PostgreSQL` server (`postgres://user[:password]@host:port/database`, no TLS;
    /// the tables are created or migrated on connect), anything else the path of a `SQLite`
    /// file (as [`open`](Self::open)).
    ///
    /// # Errors
    /// As [`open`](Self::open); [`StoreError::Postgres`] when the server cannot be reached or
    /// refuses the migration; [`StoreError::Corrupt`] when its `metrics` schema is newer than
    /// this build, or when this build has no Postgres backend (feature `postgres`).
    pub fn open_url(location: &str) -> Result<Self, StoreError> {
        if !is_postgres_url(location) {
            return Self::open(Path::new(location));
        }
        #[cfg(feature = "postgres")]
        {
            postgres::PgMetrics::connect(location).map(|pg| MetricsStore {
                backend: Backend::Postgres(pg),
            })
        }
        #[cfg(not(feature = "postgres"))]
        {
            Err(StoreError::Corrupt {
                path: PathBuf::from("postgres"),
                message: "this build of lightsout-tune has no Postgres backend (feature \
                          `postgres`)"
                    .into(),
            })
        }
    }

    /// Opens `.lightsout/state.db` of the project at `project` and imports its
    /// `.lightsout/metrics.jsonl` (what older runs wrote), once.
    ///
    /// # Errors
    /// As [`open`](Self::open) and [`import_jsonl`](Self::import_jsonl).
    pub fn open_project(project: &Path) -> Result<(Self, Imported), StoreError> {
        let dir = project.join(".lightsout");
        let mut s = Self::open(&dir.join(STATE_DB))?;
        let imported = s.import_jsonl(&dir.join(METRICS_JSONL))?;
        Ok((s, imported))
    }

    /// Where the store is, for messages: the `SQLite` file's path, or the server as
    /// `host:port/database` (never the password).
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Sqlite { path, .. } => path.display().to_string(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => format!("postgres {}", pg.server()),
        }
    }

    /// Records one attempt (replacing a row with the same run, task and attempt), in one
    /// transaction.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] or [`StoreError::Postgres`] when the row cannot be written.
    pub fn record(&mut self, r: &AttemptMetrics) -> Result<(), StoreError> {
        self.record_all(std::slice::from_ref(r))
    }

    /// Records `records` in one transaction: all of them or none.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] or [`StoreError::Postgres`] when a row cannot be written
    /// (nothing is).
    pub fn record_all(&mut self, records: &[AttemptMetrics]) -> Result<(), StoreError> {
        let rows = records.iter().map(Row::of).collect::<Result<Vec<_>, _>>()?;
        match &mut self.backend {
            Backend::Sqlite { conn, path } => {
                let err = sqlite_err(path);
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(&err)?;
                for r in &rows {
                    insert(&tx, r).map_err(&err)?;
                }
                tx.commit().map_err(&err)
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.record_all(rows, None),
        }
    }

    /// Every attempt recorded, oldest first (a replaced attempt counts at its last writing).
    /// A row whose JSON this build cannot read is a diagnostic, not an error; its `line` is
    /// the row's position (1-based).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] or [`StoreError::Postgres`] when the table cannot be read.
    pub fn records(&self) -> Result<(Vec<AttemptMetrics>, Vec<LineDiagnostic>), StoreError> {
        let texts = match &self.backend {
            Backend::Sqlite { conn, path } => {
                let err = sqlite_err(path);
                let mut stmt = conn
                    .prepare("SELECT record FROM metrics_attempt ORDER BY rowid")
                    .map_err(&err)?;
                let rows = stmt
                    .query_map([], |r| r.get::<_, String>(0))
                    .map_err(&err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(&err)?
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.texts()?,
        };
        let mut out = Vec::new();
        let mut diags = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            match serde_json::from_str::<AttemptMetrics>(text) {
                Ok(r) => out.push(r),
                Err(e) => diags.push(LineDiagnostic {
                    line: i + 1,
                    message: format!("row not readable: {e}"),
                }),
            }
        }
        Ok((out, diags))
    }

    /// Imports the complete lines of the `metrics.jsonl` at `jsonl` not imported before (a
    /// missing file imports nothing). The records and the new offset are written in one
    /// transaction, so an import cut short is redone whole, and each line counts once.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the file exists but cannot be read; [`StoreError::Sqlite`]
    /// or [`StoreError::Postgres`] when the store cannot be written.
    pub fn import_jsonl(&mut self, jsonl: &Path) -> Result<Imported, StoreError> {
        let bytes = match std::fs::read(jsonl) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Imported::default()),
            Err(source) => {
                return Err(StoreError::Io {
                    path: jsonl.to_path_buf(),
                    source,
                });
            }
        };
        let key = std::path::absolute(jsonl)
            .unwrap_or_else(|_| jsonl.to_path_buf())
            .to_string_lossy()
            .into_owned();
        match &mut self.backend {
            Backend::Sqlite { conn, path } => {
                let err = sqlite_err(path);
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(&err)?;
                let done: usize = tx
                    .query_row(
                        "SELECT bytes FROM metrics_import WHERE path = ?1",
                        [&key],
                        |r| r.get::<_, i64>(0),
                    )
                    .optional()
                    .map_err(&err)?
                    .and_then(|b| usize::try_from(b).ok())
                    .unwrap_or(0);
                let plan = ImportPlan::of(&bytes, done)?;
                if plan.end == plan.start {
                    return Ok(plan.imported);
                }
                for r in &plan.rows {
                    insert(&tx, r).map_err(&err)?;
                }
                tx.execute(
                    "INSERT INTO metrics_import (path, bytes) VALUES (?1, ?2)
                     ON CONFLICT (path) DO UPDATE SET bytes = excluded.bytes",
                    params![key, i64::try_from(plan.end).unwrap_or(i64::MAX)],
                )
                .map_err(&err)?;
                tx.commit().map_err(&err)?;
                Ok(plan.imported)
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.import(key, &bytes),
        }
    }
}

fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// What one import of a `metrics.jsonl` writes: the rows of its complete lines from byte
/// `start` to byte `end`, and the report.
struct ImportPlan {
    start: usize,
    end: usize,
    rows: Vec<Row>,
    imported: Imported,
}

impl ImportPlan {
    /// The plan for `bytes` of which the first `done` were imported before.
    fn of(bytes: &[u8], done: usize) -> Result<Self, StoreError> {
        // A file shorter than what was imported was replaced: import it from the start.
        let start = if done > bytes.len() { 0 } else { done };
        // Only whole lines: a torn last line is left for when it is complete.
        let end = bytes[start..]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(start, |i| start + i + 1);
        let first_line = newlines(&bytes[..start]);
        let torn =
            (end < bytes.len() && !bytes[end..].iter().all(u8::is_ascii_whitespace)).then(|| {
                LineDiagnostic {
                    line: first_line + newlines(&bytes[start..end]) + 1,
                    message:
                        "incomplete last line (a write cut short): imported once it ends with \
                          a newline"
                            .into(),
                }
            });
        if end == start {
            return Ok(Self {
                start,
                end,
                rows: Vec::new(),
                imported: Imported {
                    records: 0,
                    skipped: torn.into_iter().collect(),
                },
            });
        }
        let text = String::from_utf8_lossy(&bytes[start..end]);
        let (records, mut skipped) = parse_jsonl(&text);
        for d in &mut skipped {
            d.line += first_line;
        }
        skipped.extend(torn);
        let rows = records.iter().map(Row::of).collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            start,
            end,
            imported: Imported {
                records: rows.len(),
                skipped,
            },
            rows,
        })
    }
}

/// The number of `\n` in `b`.
fn newlines(b: &[u8]) -> usize {
    b.split(|c| *c == b'\n').count() - 1
}

/// One `metrics_attempt` row, as both backends write it.
struct Row {
    run_id: String,
    task_id: String,
    attempt: i64,
    task_kind: Option<String>,
    agent: String,
    agent_profile: Option<String>,
    model: Option<String>,
    variant: Option<String>,
    input_tokens: i64,
    output_tokens: i64,
    usd: Option<f64>,
    wall_ms: i64,
    passed: bool,
    first_attempt_pass: bool,
    final_outcome: Option<&'static str>,
    failure_category: Option<String>,
    record: String,
}

impl Row {
    fn of(r: &AttemptMetrics) -> Result<Self, StoreError> {
        let record = serde_json::to_string(r).map_err(|e| StoreError::Corrupt {
            path: PathBuf::from(&r.run_id),
            message: format!("attempt {} of task {}: {e}", r.attempt, r.task_id),
        })?;
        let i = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Ok(Self {
            run_id: r.run_id.clone(),
            task_id: r.task_id.clone(),
            attempt: i64::from(r.attempt),
            task_kind: r.task_kind.clone(),
            agent: r.agent.clone(),
            agent_profile: r.agent_profile.clone(),
            model: r.model.clone(),
            variant: r.variant.clone(),
            input_tokens: i(r.usage.input_tokens),
            output_tokens: i(r.usage.output_tokens),
            usd: usd(&r.usage),
            wall_ms: i(r.usage.wall_ms),
            passed: r.passed,
            first_attempt_pass: r.attempt == 1 && r.passed,
            final_outcome: r.final_outcome.map(|o| match o {
                crate::record::FinalOutcome::Merged => "merged",
                crate::record::FinalOutcome::Failed => "failed",
            }),
            failure_category: r.failure_category.clone(),
            record,
        })
    }
}

fn insert(tx: &rusqlite::Transaction<'_>, r: &Row) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO metrics_attempt (run_id, task_id, attempt, task_kind, agent,
             agent_profile, model, variant, input_tokens, output_tokens, usd, wall_ms, passed,
             first_attempt_pass, final_outcome, failure_category, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            r.run_id,
            r.task_id,
            r.attempt,
            r.task_kind,
            r.agent,
            r.agent_profile,
            r.model,
            r.variant,
            r.input_tokens,
            r.output_tokens,
            r.usd,
            r.wall_ms,
            r.passed,
            r.first_attempt_pass,
            r.final_outcome,
            r.failure_category,
            r.record,
        ],
    )?;
    Ok(())
}

/// The Postgres backend: the same tables on the fleet's server, through the fleet's pool and
/// retry ([`lightsout_fleet::pg`]).
#[cfg(feature = "postgres")]
mod postgres {
    use super::{ImportPlan, Imported, Row, StoreError};
    use lightsout_fleet::pg::{Pg, conn, migrate, pg_err, retry};

    /// The schema on Postgres: as `SQLite`'s, with `pos` (from a sequence, renewed when an
    /// attempt is recorded again) in place of the `rowid` order.
    const MIGRATIONS: &[&str] = &[r"
    CREATE TABLE metrics_attempt (
        run_id             TEXT    NOT NULL,
        task_id            TEXT    NOT NULL,
        attempt            BIGINT  NOT NULL CHECK (attempt >= 1),
        task_kind          TEXT,
        agent              TEXT    NOT NULL,
        agent_profile      TEXT,
        model              TEXT,
        variant            TEXT,
        input_tokens       BIGINT  NOT NULL,
        output_tokens      BIGINT  NOT NULL,
        usd                DOUBLE PRECISION,
        wall_ms            BIGINT  NOT NULL,
        passed             BOOLEAN NOT NULL,
        first_attempt_pass BOOLEAN NOT NULL,
        final_outcome      TEXT,
        failure_category   TEXT,
        record             TEXT    NOT NULL,
        pos                BIGSERIAL NOT NULL,
        PRIMARY KEY (run_id, task_id, attempt)
    );
    CREATE INDEX metrics_attempt_variant ON metrics_attempt (task_kind, variant);
    CREATE INDEX metrics_attempt_pos ON metrics_attempt (pos);
    CREATE TABLE metrics_import (
        path  TEXT   PRIMARY KEY,
        bytes BIGINT NOT NULL
    );
    "];

    const INSERT: &str = "INSERT INTO metrics_attempt (run_id, task_id, attempt, task_kind,
             agent, agent_profile, model, variant, input_tokens, output_tokens, usd, wall_ms,
             passed, first_attempt_pass, final_outcome, failure_category, record)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (run_id, task_id, attempt) DO UPDATE SET
             task_kind = excluded.task_kind, agent = excluded.agent,
             agent_profile = excluded.agent_profile, model = excluded.model,
             variant = excluded.variant, input_tokens = excluded.input_tokens,
             output_tokens = excluded.output_tokens, usd = excluded.usd,
             wall_ms = excluded.wall_ms, passed = excluded.passed,
             first_attempt_pass = excluded.first_attempt_pass,
             final_outcome = excluded.final_outcome,
             failure_category = excluded.failure_category, record = excluded.record,
             pos = DEFAULT";

    #[derive(Debug)]
    pub(super) struct PgMetrics {
        pg: Pg,
    }

    fn store_err(source: lightsout_fleet::Error) -> StoreError {
        match source {
            lightsout_fleet::Error::Corrupt { store, message } => StoreError::Corrupt {
                path: store.into(),
                message,
            },
            source => StoreError::Postgres { source },
        }
    }

    impl PgMetrics {
        pub(super) fn connect(url: &str) -> Result<Self, StoreError> {
            let pg = Pg::connect(url, 2).map_err(store_err)?;
            let (pool, server) = (pg.pool(), pg.server().to_owned());
            pg.block(async move { retry(|| migrate(&pool, &server, "metrics", MIGRATIONS)).await })
                .map_err(store_err)?;
            Ok(Self { pg })
        }

        pub(super) fn server(&self) -> &str {
            self.pg.server()
        }

        /// Writes `rows` in one transaction, and the import offset `(path, bytes)` with them.
        pub(super) fn record_all(
            &self,
            rows: Vec<Row>,
            offset: Option<(String, i64)>,
        ) -> Result<(), StoreError> {
            let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
            self.pg
                .block(async move {
                    retry(|| async {
                        let err = pg_err(&server);
                        let mut c = conn(&pool, &server).await?;
                        let tx = c.transaction().await.map_err(&err)?;
                        let stmt = tx.prepare(INSERT).await.map_err(&err)?;
                        for r in &rows {
                            tx.execute(
                                &stmt,
                                &[
                                    &r.run_id,
                                    &r.task_id,
                                    &r.attempt,
                                    &r.task_kind,
                                    &r.agent,
                                    &r.agent_profile,
                                    &r.model,
                                    &r.variant,
                                    &r.input_tokens,
                                    &r.output_tokens,
                                    &r.usd,
                                    &r.wall_ms,
                                    &r.passed,
                                    &r.first_attempt_pass,
                                    &r.final_outcome,
                                    &r.failure_category,
                                    &r.record,
                                ],
                            )
                            .await
                            .map_err(&err)?;
                        }
                        if let Some((path, bytes)) = &offset {
                            tx.execute(
                                "INSERT INTO metrics_import (path, bytes) VALUES ($1, $2)
                                 ON CONFLICT (path) DO UPDATE SET bytes = excluded.bytes",
                                &[path, bytes],
                            )
                            .await
                            .map_err(&err)?;
                        }
                        tx.commit().await.map_err(&err)
                    })
                    .await
                })
                .map_err(store_err)
        }

        /// The `record` column of every row, by `pos`.
        pub(super) fn texts(&self) -> Result<Vec<String>, StoreError> {
            let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
            self.pg
                .block(async move {
                    retry(|| async {
                        let c = conn(&pool, &server).await?;
                        let rows = c
                            .query("SELECT record FROM metrics_attempt ORDER BY pos", &[])
                            .await
                            .map_err(pg_err(&server))?;
                        Ok(rows.iter().map(|r| r.get(0)).collect())
                    })
                    .await
                })
                .map_err(store_err)
        }

        /// Imports what `bytes` (the file known as `key`) holds past its recorded offset.
        /// The offset is read, and rewritten with the rows, so a concurrent import of the
        /// same file at worst writes the same rows twice (they replace each other).
        pub(super) fn import(&self, key: String, bytes: &[u8]) -> Result<Imported, StoreError> {
            let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
            let k = key.clone();
            let done: Option<i64> = self
                .pg
                .block(async move {
                    retry(|| async {
                        let c = conn(&pool, &server).await?;
                        let row = c
                            .query_opt("SELECT bytes FROM metrics_import WHERE path = $1", &[&k])
                            .await
                            .map_err(pg_err(&server))?;
                        Ok(row.map(|r| r.get(0)))
                    })
                    .await
                })
                .map_err(store_err)?;
            let done = done.and_then(|b| usize::try_from(b).ok()).unwrap_or(0);
            let plan = ImportPlan::of(bytes, done)?;
            if plan.end == plan.start {
                return Ok(plan.imported);
            }
            let end = i64::try_from(plan.end).unwrap_or(i64::MAX);
            self.record_all(plan.rows, Some((key, end)))?;
            Ok(plan.imported)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"run_id":"r1","task_id":"T1","requirements":["REQ-1"],"attempt":1,"agent":"replay","replay":true,"usage":{"input_tokens":100,"output_tokens":20,"cost_usd":0.03,"wall_ms":900},"passed":false,"failed_stage":"holdout","human_intervened":false}"#;

    /// Where a test's store lives: a `SQLite` file in a temporary directory, or a fresh
    /// database on the test server (`LIGHTSOUT_TEST_PG_URL`; without it the test fails).
    enum At {
        Sqlite(tempfile::TempDir),
        Postgres(String),
    }

    impl At {
        fn sqlite() -> Self {
            At::Sqlite(tempfile::tempdir().unwrap())
        }

        fn postgres() -> Self {
            At::Postgres(lightsout_fleet::testing::fresh_database("tune"))
        }

        /// Opens (again) the store.
        fn open(&self) -> MetricsStore {
            match self {
                At::Sqlite(dir) => {
                    let p = dir.path().join(".lightsout").join(STATE_DB);
                    MetricsStore::open_url(p.to_str().unwrap()).unwrap()
                }
                At::Postgres(url) => MetricsStore::open_url(url).unwrap(),
            }
        }

        fn try_open(&self) -> Result<MetricsStore, StoreError> {
            match self {
                At::Sqlite(dir) => MetricsStore::open(&dir.path().join(".lightsout/state.db")),
                At::Postgres(url) => MetricsStore::open_url(url),
            }
        }

        /// Runs `sql` on the store outside of it.
        fn execute(&self, sql: &str) {
            match self {
                At::Sqlite(dir) => {
                    let c = Connection::open(dir.path().join(".lightsout/state.db")).unwrap();
                    c.execute_batch(sql).unwrap();
                }
                At::Postgres(url) => {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let (c, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                            .await
                            .unwrap();
                        let driver = tokio::spawn(connection);
                        c.batch_execute(sql).await.unwrap();
                        drop(c);
                        let _ = driver.await;
                    });
                }
            }
        }
    }

    /// Runs each named test against both backends, as `sqlite::NAME` and `postgres::NAME`
    /// (the shape of the fleet suite's `both!`).
    macro_rules! both {
        ($($name:ident),+) => {
            mod sqlite {
                $( #[test] fn $name() { super::$name(&super::At::sqlite()); } )+
            }
            mod postgres {
                $( #[test] fn $name() { super::$name(&super::At::postgres()); } )+
            }
        };
    }

    both!(
        records_round_trip_and_a_rerecorded_attempt_counts_once,
        jsonl_is_imported_once_and_then_only_what_was_appended,
        a_newer_schema_is_refused_not_rewritten,
        a_batch_is_written_whole_or_not_at_all
    );

    fn rec(run: &str, task: &str, attempt: u32, passed: bool) -> AttemptMetrics {
        let mut r = parse_jsonl(LINE).0.remove(0);
        r.run_id = run.into();
        r.task_id = task.into();
        r.attempt = attempt;
        r.passed = passed;
        r.task_kind = Some("code".into());
        r.variant = Some("b".into());
        r.model = Some("cheap".into());
        r
    }

    fn records_round_trip_and_a_rerecorded_attempt_counts_once(at: &At) {
        let mut s = at.open();
        s.record(&rec("r1", "T1", 1, false)).unwrap();
        s.record(&rec("r1", "T1", 2, true)).unwrap();
        s.record(&rec("r1", "T2", 1, true)).unwrap();
        // The same attempt again (a resumed run): the later writing wins, and counts last.
        let mut again = rec("r1", "T1", 2, true);
        again.usage.wall_ms = 5;
        s.record(&again).unwrap();
        drop(s);
        let s = at.open();
        let (recs, diags) = s.records().unwrap();
        assert!(diags.is_empty());
        assert_eq!(
            recs,
            vec![rec("r1", "T1", 1, false), rec("r1", "T2", 1, true), again]
        );
    }

    fn a_batch_is_written_whole_or_not_at_all(at: &At) {
        let mut s = at.open();
        s.record(&rec("r1", "T1", 1, true)).unwrap();
        // The second row breaks the attempt >= 1 check: the first is not written either.
        let bad = vec![rec("r2", "T1", 1, true), rec("r2", "T2", 0, true)];
        assert!(s.record_all(&bad).is_err());
        let (recs, _) = s.records().unwrap();
        assert_eq!(recs, vec![rec("r1", "T1", 1, true)]);
    }

    fn jsonl_is_imported_once_and_then_only_what_was_appended(at: &At) {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = dir.path().join(METRICS_JSONL);
        // Two lines, a bad one, and a torn last line.
        let two = LINE.replace("\"T1\"", "\"T2\"");
        std::fs::write(&jsonl, format!("{LINE}\n{two}\nnot json\n{{\"run_id\":")).unwrap();
        let mut s = at.open();
        let imported = s.import_jsonl(&jsonl).unwrap();
        assert_eq!(imported.records, 2);
        let lines: Vec<usize> = imported.skipped.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![3, 4], "the bad line and the torn one");
        drop(s);
        let mut s = at.open();
        let again = s.import_jsonl(&jsonl).unwrap();
        assert_eq!(again.records, 0, "nothing new: nothing imported");
        assert_eq!(again.skipped.len(), 1, "the torn line is still pending");
        assert!(again.skipped[0].message.contains("incomplete"));
        assert_eq!(s.records().unwrap().0.len(), 2);
        drop(s);
        // The torn line completed by an older factory still appending: imported then.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&jsonl)
            .unwrap();
        std::io::Write::write_all(
            &mut f,
            LINE.replace(
                "{\"run_id\":\"r1\",\"task_id\":\"T1\"",
                "\"r2\",\"task_id\":\"T3\"",
            )
            .as_bytes(),
        )
        .unwrap();
        std::io::Write::write_all(&mut f, b"\n").unwrap();
        drop(f);
        let mut s = at.open();
        let third = s.import_jsonl(&jsonl).unwrap();
        assert_eq!(third.records, 1, "{third:?}");
        let (recs, _) = s.records().unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[2].task_id, "T3");
    }

    fn a_newer_schema_is_refused_not_rewritten(at: &At) {
        drop(at.open());
        at.execute("UPDATE lightsout_schema SET version = 99 WHERE name = 'metrics'");
        let e = at.try_open().unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("upgrade lightsout"), "{e}");
        // Refused, not rewritten: the version is still 99.
        let e = at.try_open().unwrap_err();
        assert!(e.to_string().contains("version 99"), "{e}");
    }

    #[test]
    fn open_project_imports_the_projects_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let lo = dir.path().join(".lightsout");
        std::fs::create_dir_all(&lo).unwrap();
        std::fs::write(lo.join(METRICS_JSONL), format!("{LINE}\n")).unwrap();
        let (s, imported) = MetricsStore::open_project(dir.path()).unwrap();
        assert_eq!(imported.records, 1);
        assert_eq!(s.location(), lo.join(STATE_DB).display().to_string());
        assert_eq!(s.records().unwrap().0.len(), 1);
    }

    #[test]
    fn the_queue_user_version_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.db");
        let c = Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", 3).unwrap();
        drop(c);
        drop(MetricsStore::open(&p).unwrap());
        let c = Connection::open(&p).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 3);
    }
}
