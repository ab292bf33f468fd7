//! [`SqliteQueue`]: the [`QueueStore`] on a `SQLite` file (bundled `SQLite`, WAL).
//!
//! - Journal: WAL (<https://sqlite.org/wal.html>) with `synchronous = FULL`: a change that
//!   `apply` returned survives a `kill -9` or a power cut, and readers never block the writer.
//! - Concurrency: each change is one `BEGIN IMMEDIATE` transaction; a connection waits up to
//!   30 s for another process's write lock (`queue add` while a runner records a
//!   finished entry) instead of failing.
//! - Migrations: `PRAGMA user_version` holds the schema version.
//! - Adding is idempotent: a unique index on the spec of queued entries.

use super::{QueueChange, QueueEntry, QueueError, QueueStatus, QueueStore};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The state store's file name under `.lightsout/`.
pub const STATE_DB: &str = "state.db";

const MIGRATIONS: &[&str] = &[
    // 1: the queue and the runner's flags.
    r"
    CREATE TABLE queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        spec TEXT NOT NULL,
        status TEXT NOT NULL,
        run_id TEXT,
        added_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        detail TEXT
    );
    CREATE TABLE flags (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    ",
    // 2: a spec is queued at most once (adding is idempotent). A queued duplicate made before
    // holds no run and no outcome: only the first of them is kept.
    r"
    DELETE FROM queue WHERE status = 'queued' AND id NOT IN
        (SELECT MIN(id) FROM queue WHERE status = 'queued' GROUP BY spec);
    CREATE UNIQUE INDEX queue_queued_spec ON queue (spec) WHERE status = 'queued';
    ",
];

const COLUMNS: &str = "id, spec, status, run_id, added_at, started_at, finished_at, detail";

/// The queue in a `SQLite` file, normally `.lightsout/state.db` ([`SqliteQueue::in_repo`]).
#[derive(Debug)]
pub struct SqliteQueue {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteQueue {
    /// Opens (creating it and its parent directory when missing) the store at `path` and
    /// brings its schema up to date.
    ///
    /// # Errors
    /// The file cannot be created or opened, or its schema is newer than this version knows.
    pub fn open(path: &Path) -> Result<Self, QueueError> {
        let err = |source| QueueError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let conn = crate::sqlite::open(path).map_err(err)?;
        let q = SqliteQueue {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        };
        q.migrate()?;
        Ok(q)
    }

    /// Opens `.lightsout/state.db` of the repository at `repo`.
    ///
    /// # Errors
    /// As [`SqliteQueue::open`].
    pub fn in_repo(repo: &Path) -> Result<Self, QueueError> {
        Self::open(&repo.join(".lightsout").join(STATE_DB))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> QueueError + '_ {
        |source| QueueError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-applied change (transactions roll
        // back on drop), so a poisoned lock is still a consistent connection.
        lightsout_stdx::lock(&self.conn)
    }

    fn migrate(&self) -> Result<(), QueueError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.err())?;
        let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        if version > known {
            return Err(QueueError::Corrupt {
                store: self.path.display().to_string(),
                message: format!(
                    "schema version {version} is newer than this lightsout knows ({known}); \
                     upgrade lightsout"
                ),
            });
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(m).map_err(self.err())?;
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(i + 1).unwrap_or(i64::MAX),
            )
            .map_err(self.err())?;
        }
        tx.commit().map_err(self.err())
    }

    fn row(&self, r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<QueueEntry, QueueError>> {
        let id: i64 = r.get(0)?;
        let status: String = r.get(2)?;
        let Some(st) = QueueStatus::parse(&status) else {
            return Ok(Err(QueueError::Corrupt {
                store: self.path.display().to_string(),
                message: format!("entry {id} has the unknown status `{status}`"),
            }));
        };
        Ok(Ok(QueueEntry {
            id: id.cast_unsigned(),
            spec: r.get(1)?,
            status: st,
            run_id: r.get(3)?,
            added_at: r.get(4)?,
            started_at: r.get(5)?,
            finished_at: r.get(6)?,
            detail: r.get(7)?,
        }))
    }

    fn get(&self, conn: &Connection, id: u64) -> Result<Option<QueueEntry>, QueueError> {
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM queue WHERE id = ?1"),
            params![id.cast_signed()],
            |r| self.row(r),
        )
        .optional()
        .map_err(self.err())?
        .transpose()
    }
}

pub(super) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl QueueStore for SqliteQueue {
    fn entries(&self) -> Result<Vec<QueueEntry>, QueueError> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!("SELECT {COLUMNS} FROM queue ORDER BY id"))
            .map_err(self.err())?;
        let rows = st.query_map([], |r| self.row(r)).map_err(self.err())?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.map_err(self.err())??);
        }
        Ok(out)
    }

    fn apply(&self, change: &QueueChange) -> Result<Option<QueueEntry>, QueueError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        let touched = match change {
            QueueChange::Add { spec } => {
                let n = tx
                    .execute(
                        "INSERT INTO queue (spec, status, added_at) VALUES (?1, 'queued', ?2) \
                         ON CONFLICT DO NOTHING",
                        params![spec, now()],
                    )
                    .map_err(self.err())?;
                if n == 1 {
                    Some(tx.last_insert_rowid().cast_unsigned())
                } else {
                    tx.query_row(
                        "SELECT id FROM queue WHERE spec = ?1 AND status = 'queued'",
                        params![spec],
                        |r| r.get::<_, i64>(0),
                    )
                    .optional()
                    .map_err(self.err())?
                    .map(i64::cast_unsigned)
                }
            }
            QueueChange::Remove { id } => {
                let before = self.get(&tx, *id)?;
                let n = tx
                    .execute(
                        "DELETE FROM queue WHERE id = ?1 AND status != 'running'",
                        params![id.cast_signed()],
                    )
                    .map_err(self.err())?;
                tx.commit().map_err(self.err())?;
                return Ok(before.filter(|_| n == 1));
            }
            QueueChange::Start { id, run_id } => {
                let n = tx
                    .execute(
                        "UPDATE queue SET status = 'running', run_id = ?2, \
                         started_at = COALESCE(started_at, ?3) WHERE id = ?1 AND \
                         (status = 'queued' OR (status = 'running' AND run_id = ?2))",
                        params![id.cast_signed(), run_id, now()],
                    )
                    .map_err(self.err())?;
                (n == 1).then_some(*id)
            }
            QueueChange::Finish { id, status, detail } => {
                let n = tx
                    .execute(
                        "UPDATE queue SET status = ?2, detail = ?3, finished_at = ?4 \
                         WHERE id = ?1 AND status = 'running'",
                        params![id.cast_signed(), status.as_str(), detail, now()],
                    )
                    .map_err(self.err())?;
                (n == 1).then_some(*id)
            }
            QueueChange::Stop(on) => {
                tx.execute(
                    "INSERT INTO flags (name, value) VALUES ('stop', ?1) \
                     ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    params![i64::from(*on)],
                )
                .map_err(self.err())?;
                None
            }
        };
        let entry = match touched {
            Some(id) => self.get(&tx, id)?,
            None => None,
        };
        tx.commit().map_err(self.err())?;
        Ok(entry)
    }

    fn stop_requested(&self) -> Result<bool, QueueError> {
        let conn = self.conn();
        let v: Option<i64> = conn
            .query_row("SELECT value FROM flags WHERE name = 'stop'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.err())?;
        Ok(v.unwrap_or(0) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteQueue) {
        let d = tempfile::tempdir().unwrap();
        let q = SqliteQueue::in_repo(d.path()).unwrap();
        (d, q)
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let (d, q) = store();
        q.conn().pragma_update(None, "user_version", 99).unwrap();
        drop(q);
        let e = SqliteQueue::in_repo(d.path()).unwrap_err();
        assert!(e.to_string().contains("newer"), "{e}");
    }
}
