//! The run-metrics store: one row per attempt in the project's state database
//! (`.lightsout/state.db`, `SQLite`), beside the spec queue's tables.
//!
//! Each row holds the attempt's task kind, agent profile, model, prompt variant, tokens, USD,
//! wall time, whether it was a first attempt that passed, the task's final outcome and the
//! redacted failure category as columns (for people querying the file), and the whole
//! [`AttemptMetrics`] as JSON (what [`MetricsStore::records`] reads back, so fields added later
//! survive a round trip).
//!
//! - **Key.** `(run_id, task_id, attempt)`: an attempt recorded again (a run killed after
//!   recording it and resumed) replaces the earlier row, so it counts once.
//! - **Migrations.** On open, inside one immediate transaction, by the fleet's stores' own
//!   [`lightsout_fleet::sqlite::migrate`]: the version of the `metrics` schema is kept in the
//!   file's `lightsout_schema` table (the file's `PRAGMA user_version` belongs to the queue). A
//!   file newer than this build is refused, never rewritten.
//! - **Atomic.** Every write is one transaction; the file is in WAL mode with
//!   `synchronous = FULL`, so a committed attempt survives a `kill -9` or a power cut.
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
    /// The file is not a metrics store this build can read.
    #[error("{}: {message}", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        message: String,
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

/// The metrics table of a state database.
#[derive(Debug)]
pub struct MetricsStore {
    conn: Connection,
    path: PathBuf,
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
        let conn = lightsout_fleet::sqlite::open(path).map_err(|source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
        let mut s = MetricsStore {
            conn,
            path: path.to_path_buf(),
        };
        s.migrate()?;
        Ok(s)
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

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Brings the `metrics` schema up to date ([`lightsout_fleet::sqlite::migrate`]: versions
    /// in the file's `lightsout_schema` table, one immediate transaction).
    fn migrate(&mut self) -> Result<(), StoreError> {
        lightsout_fleet::sqlite::migrate(&mut self.conn, &self.path, "metrics", MIGRATIONS).map_err(
            |e| match e {
                lightsout_fleet::Error::Sqlite { path, source } => {
                    StoreError::Sqlite { path, source }
                }
                other => StoreError::Corrupt {
                    path: self.path.clone(),
                    message: other.to_string(),
                },
            },
        )
    }

    /// Records one attempt (replacing a row with the same run, task and attempt), in one
    /// transaction.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the row cannot be written.
    pub fn record(&mut self, r: &AttemptMetrics) -> Result<(), StoreError> {
        self.record_all(std::slice::from_ref(r))
    }

    /// Records `records` in one transaction: all of them or none.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when a row cannot be written (nothing is).
    pub fn record_all(&mut self, records: &[AttemptMetrics]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        for r in records {
            insert(&tx, r).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Every attempt recorded, oldest first (a replaced attempt counts at its last writing).
    /// A row whose JSON this build cannot read is a diagnostic, not an error; its `line` is
    /// the row's position (1-based).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the table cannot be read.
    pub fn records(&self) -> Result<(Vec<AttemptMetrics>, Vec<LineDiagnostic>), StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT record FROM metrics_attempt ORDER BY rowid")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.err())?;
        let mut out = Vec::new();
        let mut diags = Vec::new();
        for (i, row) in rows.enumerate() {
            let text = row.map_err(self.err())?;
            match serde_json::from_str::<AttemptMetrics>(&text) {
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
    /// when the store cannot be written.
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
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let done: usize = tx
            .query_row(
                "SELECT bytes FROM metrics_import WHERE path = ?1",
                [&key],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map_err(err)?
            .and_then(|b| usize::try_from(b).ok())
            .unwrap_or(0);
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
            return Ok(Imported {
                records: 0,
                skipped: torn.into_iter().collect(),
            });
        }
        let text = String::from_utf8_lossy(&bytes[start..end]);
        let (records, mut skipped) = parse_jsonl(&text);
        for d in &mut skipped {
            d.line += first_line;
        }
        skipped.extend(torn);
        for r in &records {
            insert(&tx, r).map_err(err)?;
        }
        tx.execute(
            "INSERT INTO metrics_import (path, bytes) VALUES (?1, ?2)
             ON CONFLICT (path) DO UPDATE SET bytes = excluded.bytes",
            params![key, i64::try_from(end).unwrap_or(i64::MAX)],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Imported {
            records: records.len(),
            skipped,
        })
    }
}

/// The number of `\n` in `b`.
fn newlines(b: &[u8]) -> usize {
    b.split(|c| *c == b'\n').count() - 1
}

fn insert(tx: &rusqlite::Transaction<'_>, r: &AttemptMetrics) -> rusqlite::Result<()> {
    let json =
        serde_json::to_string(r).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
    let i = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
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
            i(r.usage.input_tokens),
            i(r.usage.output_tokens),
            usd(&r.usage),
            i(r.usage.wall_ms),
            r.passed,
            r.attempt == 1 && r.passed,
            r.final_outcome.map(|o| match o {
                crate::record::FinalOutcome::Merged => "merged",
                crate::record::FinalOutcome::Failed => "failed",
            }),
            r.failure_category,
            json,
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"run_id":"r1","task_id":"T1","requirements":["REQ-1"],"attempt":1,"agent":"replay","replay":true,"usage":{"input_tokens":100,"output_tokens":20,"cost_usd":0.03,"wall_ms":900},"passed":false,"failed_stage":"holdout","human_intervened":false}"#;

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

    #[test]
    fn records_round_trip_and_a_rerecorded_attempt_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".lightsout/state.db");
        let mut s = MetricsStore::open(&p).unwrap();
        s.record(&rec("r1", "T1", 1, false)).unwrap();
        s.record(&rec("r1", "T1", 2, true)).unwrap();
        // The same attempt again (a resumed run): the later writing wins.
        let mut again = rec("r1", "T1", 2, true);
        again.usage.wall_ms = 5;
        s.record(&again).unwrap();
        drop(s);
        let s = MetricsStore::open(&p).unwrap();
        let (recs, diags) = s.records().unwrap();
        assert!(diags.is_empty());
        assert_eq!(recs, vec![rec("r1", "T1", 1, false), again]);
    }

    #[test]
    fn jsonl_is_imported_once_and_then_only_what_was_appended() {
        let dir = tempfile::tempdir().unwrap();
        let lo = dir.path().join(".lightsout");
        std::fs::create_dir_all(&lo).unwrap();
        let jsonl = lo.join(METRICS_JSONL);
        // Two lines, a bad one, and a torn last line.
        let two = LINE.replace("\"T1\"", "\"T2\"");
        std::fs::write(&jsonl, format!("{LINE}\n{two}\nnot json\n{{\"run_id\":")).unwrap();
        let (s, imported) = MetricsStore::open_project(dir.path()).unwrap();
        assert_eq!(imported.records, 2);
        let lines: Vec<usize> = imported.skipped.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![3, 4], "the bad line and the torn one");
        drop(s);
        let (s, again) = MetricsStore::open_project(dir.path()).unwrap();
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
        let (s, third) = MetricsStore::open_project(dir.path()).unwrap();
        assert_eq!(third.records, 1, "{third:?}");
        let (recs, _) = s.records().unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[2].task_id, "T3");
    }

    #[test]
    fn a_newer_schema_is_refused_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.db");
        drop(MetricsStore::open(&p).unwrap());
        let c = Connection::open(&p).unwrap();
        c.execute(
            "UPDATE lightsout_schema SET version = 99 WHERE name = 'metrics'",
            [],
        )
        .unwrap();
        drop(c);
        let e = MetricsStore::open(&p).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("upgrade lightsout"));
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
