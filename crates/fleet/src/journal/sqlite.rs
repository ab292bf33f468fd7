//! [`SqliteJournal`]: the [`JournalStore`] in a `SQLite` file, for the workers of one machine.
//! Each append is one statement (`INSERT … ON CONFLICT DO NOTHING`), then, when the key was
//! taken, one read of the stored row, compared with the one given as JSON values (key order
//! and spacing aside, as `jsonb` equality on Postgres); `json()` checks the entry is JSON and
//! stores it minified.

use super::{ClaimRun, JournalRow, JournalStore, differs, limit, parse, stored};
use crate::Error;
use rusqlite::{Connection, ToSql, params, params_from_iter};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const MIGRATIONS: &[&str] = &[
    // 1: the entries, keyed by claim run and seq; read by run and task.
    r"
    CREATE TABLE journal_entries (
        claim_run TEXT NOT NULL,
        seq INTEGER NOT NULL CHECK (seq >= 0),
        run_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        token INTEGER NOT NULL,
        worker TEXT NOT NULL,
        entry TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        PRIMARY KEY (claim_run, seq)
    );
    CREATE INDEX journal_entries_run ON journal_entries (run_id, task_id, token, seq);
    ",
];

/// The shared journal in a `SQLite` file, normally `.lightsout/state.db`.
#[derive(Debug)]
pub struct SqliteJournal {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteJournal {
    /// Opens (creating it and its parent directory when missing) the store at `path` and
    /// brings its journal schema up to date.
    ///
    /// # Errors
    /// The file cannot be created or opened, or its journal schema is newer than this
    /// version knows.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let conn = crate::sqlite::open_migrated(path, &[("journal", MIGRATIONS)])?;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        |source| Error::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn store(&self) -> String {
        self.path.display().to_string()
    }
}

impl JournalStore for SqliteJournal {
    fn append(&self, claim: &ClaimRun, seq: u64, entry: &str) -> Result<bool, Error> {
        let conn = lightsout_stdx::lock(&self.conn);
        let (seq_v, token, now) = (
            stored(seq),
            stored(claim.token),
            crate::claims::sqlite_now_ms(),
        );
        // ?1 to ?6 name the row and its claim in both statements.
        let key: [&dyn ToSql; 6] = [
            &claim.id,
            &seq_v,
            &claim.run,
            &claim.task,
            &token,
            &claim.worker,
        ];
        let written = conn
            .execute(
                "INSERT INTO journal_entries \
                 (claim_run, seq, run_id, task_id, token, worker, entry, at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, json(?7), ?8) \
                 ON CONFLICT (claim_run, seq) DO NOTHING",
                params_from_iter(key.iter().copied().chain([&entry as &dyn ToSql, &now])),
            )
            .map_err(self.err())?;
        if written == 1 {
            return Ok(true);
        }
        // Compared as JSON values (key order aside), as `jsonb` equality compares on Postgres.
        let (stored_entry, same_claim): (String, bool) = conn
            .query_row(
                "SELECT entry, run_id = ?3 AND task_id = ?4 AND token = ?5 AND worker = ?6 \
                 FROM journal_entries WHERE claim_run = ?1 AND seq = ?2",
                key.as_slice(),
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(self.err())?;
        let same = same_claim
            && serde_json::from_str::<serde_json::Value>(&stored_entry).ok()
                == serde_json::from_str::<serde_json::Value>(entry).ok();
        if same {
            Ok(false)
        } else {
            Err(differs(&self.store(), claim, seq))
        }
    }

    fn entries(&self, run: &str, newest_per_task: Option<usize>) -> Result<Vec<JournalRow>, Error> {
        let conn = lightsout_stdx::lock(&self.conn);
        let mut st = conn
            .prepare(
                "SELECT run_id, task_id, token, worker, claim_run, seq, entry, at_ms FROM ( \
                     SELECT *, row_number() OVER \
                         (PARTITION BY task_id ORDER BY token DESC, seq DESC) AS nth \
                     FROM journal_entries WHERE run_id = ?1) \
                 WHERE nth <= ?2 ORDER BY task_id, token, seq",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map(params![run, limit(newest_per_task)], |r| {
                let row = JournalRow {
                    run: r.get(0)?,
                    task: r.get(1)?,
                    token: r.get::<_, i64>(2)?.cast_unsigned(),
                    worker: r.get(3)?,
                    claim_run: r.get(4)?,
                    seq: r.get::<_, i64>(5)?.cast_unsigned(),
                    entry: serde_json::Value::Null,
                    at_ms: r.get(7)?,
                };
                Ok((row, r.get::<_, String>(6)?))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (mut row, entry) = row.map_err(self.err())?;
            row.entry = parse(&self.store(), &row.claim_run, row.seq, &entry)?;
            out.push(row);
        }
        Ok(out)
    }
}
