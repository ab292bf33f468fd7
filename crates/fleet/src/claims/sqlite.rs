//! [`SqliteClaims`]: the [`ClaimStore`] in a `SQLite` file, for one machine.
//!
//! - Each write is one `BEGIN IMMEDIATE` transaction: `SQLite` has one writer at a time, so
//!   claims are exclusive without row locks; a connection waits up to 30 s for
//!   another process's write.
//! - The clock is this machine's (`SystemTime`), shared by every process on it.
//! - The merge lock is a `flock` on `<database>.merge.lock`, freed by the kernel when its
//!   holder dies.
//! - Migrations: versions in the `lightsout_schema` table (name `claims`), so the file can
//!   also hold the spec queue, which versions itself with `PRAGMA user_version`.

use super::{
    Claim, ClaimStore, MergeLock, PlannedTask, Settle, TaskRecord, TaskStatus, check_plan,
    lease_ms, settled, stale,
};
use crate::Error;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The claims schema, also brought up to date by the budget store of the same file (its ledger
/// reads the claims).
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: tasks and the token counter.
    r"
    CREATE TABLE claim_tasks (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        status TEXT NOT NULL,
        worker TEXT,
        token INTEGER NOT NULL DEFAULT 0,
        lease_until INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        detail TEXT,
        UNIQUE (run_id, task_id)
    );
    CREATE INDEX claim_tasks_open ON claim_tasks (seq) WHERE status IN ('ready', 'claimed');
    CREATE TABLE claim_tokens (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last INTEGER NOT NULL
    );
    INSERT INTO claim_tokens (id, last) VALUES (1, 0);
    ",
    // 2: dependencies (a task is blocked until they are done), estimates, priorities.
    r"
    ALTER TABLE claim_tasks ADD COLUMN estimate_ms INTEGER;
    ALTER TABLE claim_tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE claim_deps (
        run_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        dep_id TEXT NOT NULL,
        PRIMARY KEY (run_id, task_id, dep_id)
    );
    CREATE INDEX claim_deps_dep ON claim_deps (run_id, dep_id);
    DROP INDEX claim_tasks_open;
    CREATE INDEX claim_tasks_open ON claim_tasks (priority DESC, seq)
        WHERE status IN ('ready', 'claimed');
    ",
];

/// Makes ready the blocked tasks of run `?1` (among those `AND`-ed in by the caller) whose
/// dependencies are all done.
const UNBLOCK: &str = "UPDATE claim_tasks SET status = 'ready' \
     WHERE run_id = ?1 AND status = 'blocked' AND NOT EXISTS ( \
         SELECT 1 FROM claim_deps d JOIN claim_tasks u \
         ON u.run_id = d.run_id AND u.task_id = d.dep_id \
         WHERE d.run_id = claim_tasks.run_id AND d.task_id = claim_tasks.task_id \
         AND u.status <> 'done')";

/// Task claims in a `SQLite` file, normally `.lightsout/state.db` ([`SqliteClaims::in_repo`]).
#[derive(Debug)]
pub struct SqliteClaims {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteClaims {
    /// Opens (creating it and its parent directory when missing) the store at `path` and
    /// brings its schema up to date.
    ///
    /// # Errors
    /// The file cannot be created or opened, or its claims schema is newer than this version.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let err = |source| Error::Sqlite {
            path: path.to_owned(),
            source,
        };
        let conn = crate::sqlite::open(path).map_err(err)?;
        let s = Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        };
        s.migrate()?;
        Ok(s)
    }

    /// Opens `.lightsout/state.db` of the repository at `repo`.
    ///
    /// # Errors
    /// As [`SqliteClaims::open`].
    pub fn in_repo(repo: &Path) -> Result<Self, Error> {
        Self::open(&repo.join(".lightsout").join(crate::queue::STATE_DB))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        |source| Error::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // Transactions roll back on drop, so a poisoned lock is still a consistent connection.
        lightsout_stdx::lock(&self.conn)
    }

    fn migrate(&self) -> Result<(), Error> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS lightsout_schema (
                 name TEXT PRIMARY KEY,
                 version INTEGER NOT NULL
             )",
        )
        .map_err(self.err())?;
        let version: i64 = tx
            .query_row(
                "SELECT version FROM lightsout_schema WHERE name = 'claims'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?
            .unwrap_or(0);
        let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        if version > known {
            return Err(Error::Corrupt {
                store: self.path.display().to_string(),
                message: format!(
                    "claims schema version {version} is newer than this lightsout knows \
                     ({known}); upgrade lightsout"
                ),
            });
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(m).map_err(self.err())?;
            tx.execute(
                "INSERT INTO lightsout_schema (name, version) VALUES ('claims', ?1)
                 ON CONFLICT (name) DO UPDATE SET version = excluded.version",
                params![i64::try_from(i + 1).unwrap_or(i64::MAX)],
            )
            .map_err(self.err())?;
        }
        tx.commit().map_err(self.err())
    }
}

/// This machine's clock in ms since the Unix epoch: the `SQLite` stores' clock, by which
/// leases are counted.
pub(crate) fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// The `WHERE` clause of a write by a claim still held: token `?3` of task `?2` of run `?1`,
/// claimed, lease not lapsed at `?4`.
const HELD: &str = "run_id = ?1 AND task_id = ?2 AND token = ?3 AND status = 'claimed' \
                    AND lease_until > ?4";

impl ClaimStore for SqliteClaims {
    fn enqueue_plan(&self, run: &str, plan: &[PlannedTask]) -> Result<usize, Error> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        let known: std::collections::HashSet<String> = {
            let mut st = tx
                .prepare("SELECT task_id FROM claim_tasks WHERE run_id = ?1")
                .map_err(self.err())?;
            st.query_map(params![run], |r| r.get(0))
                .map_err(self.err())?
                .collect::<Result<_, _>>()
                .map_err(self.err())?
        };
        check_plan(run, plan, &known)?;
        let mut added = 0;
        {
            let mut task = tx
                .prepare(
                    "INSERT INTO claim_tasks (run_id, task_id, status, estimate_ms, priority) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (run_id, task_id) DO NOTHING",
                )
                .map_err(self.err())?;
            let mut dep = tx
                .prepare(
                    "INSERT INTO claim_deps (run_id, task_id, dep_id) VALUES (?1, ?2, ?3) \
                     ON CONFLICT DO NOTHING",
                )
                .map_err(self.err())?;
            for t in plan {
                let status = if t.deps.is_empty() {
                    TaskStatus::Ready
                } else {
                    TaskStatus::Blocked
                };
                let estimate = t.estimate_ms.map(|e| i64::try_from(e).unwrap_or(i64::MAX));
                let n = task
                    .execute(params![run, t.task, status.as_str(), estimate, t.priority])
                    .map_err(self.err())?;
                if n == 1 {
                    for d in &t.deps {
                        dep.execute(params![run, t.task, d]).map_err(self.err())?;
                    }
                }
                added += n;
            }
        }
        // Dependencies that were already done when their dependents arrived.
        tx.execute(UNBLOCK, params![run]).map_err(self.err())?;
        tx.commit().map_err(self.err())?;
        Ok(added)
    }

    fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Claim>, Error> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        let now = now_ms();
        let next: Option<i64> = tx
            .query_row(
                "SELECT seq FROM claim_tasks WHERE status = 'ready' \
                 OR (status = 'claimed' AND lease_until <= ?1) \
                 ORDER BY priority DESC, seq LIMIT 1",
                params![now],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        let Some(seq) = next else {
            return Ok(None);
        };
        let token: i64 = tx
            .query_row(
                "UPDATE claim_tokens SET last = last + 1 WHERE id = 1 RETURNING last",
                [],
                |r| r.get(0),
            )
            .map_err(self.err())?;
        let until = now.saturating_add(lease_ms(lease));
        let claim = tx
            .query_row(
                "UPDATE claim_tasks SET status = 'claimed', worker = ?2, token = ?3, \
                 lease_until = ?4, attempts = attempts + 1 WHERE seq = ?1 \
                 RETURNING run_id, task_id, attempts",
                params![seq, worker, token, until],
                |r| {
                    Ok(Claim {
                        run: r.get(0)?,
                        task: r.get(1)?,
                        worker: worker.to_owned(),
                        token: token.cast_unsigned(),
                        lease_until_ms: until,
                        attempt: r.get(2)?,
                    })
                },
            )
            .map_err(self.err())?;
        tx.commit().map_err(self.err())?;
        Ok(Some(claim))
    }

    fn heartbeat(&self, claim: &Claim, lease: Duration) -> Result<Claim, Error> {
        let conn = self.conn();
        let now = now_ms();
        let until = now.saturating_add(lease_ms(lease));
        let n = conn
            .execute(
                &format!("UPDATE claim_tasks SET lease_until = ?5 WHERE {HELD}"),
                params![claim.run, claim.task, claim.token.cast_signed(), now, until],
            )
            .map_err(self.err())?;
        if n == 0 {
            return Err(stale(claim));
        }
        Ok(Claim {
            lease_until_ms: until,
            ..claim.clone()
        })
    }

    fn settle(&self, claim: &Claim, outcome: &Settle) -> Result<(), Error> {
        let (status, detail) = settled(outcome);
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        let n = tx
            .execute(
                &format!(
                    "UPDATE claim_tasks SET status = ?5, detail = ?6, lease_until = NULL \
                     WHERE {HELD}"
                ),
                params![
                    claim.run,
                    claim.task,
                    claim.token.cast_signed(),
                    now_ms(),
                    status.as_str(),
                    detail
                ],
            )
            .map_err(self.err())?;
        if n == 1 && status == TaskStatus::Done {
            tx.execute(
                &format!(
                    "{UNBLOCK} AND task_id IN \
                     (SELECT task_id FROM claim_deps WHERE run_id = ?1 AND dep_id = ?2)"
                ),
                params![claim.run, claim.task],
            )
            .map_err(self.err())?;
        }
        if n == 0 {
            // Already settled this way under this token (a retried call) is success.
            let now: Option<(String, i64)> = tx
                .query_row(
                    "SELECT status, token FROM claim_tasks WHERE run_id = ?1 AND task_id = ?2",
                    params![claim.run, claim.task],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(self.err())?;
            if now != Some((status.as_str().to_owned(), claim.token.cast_signed())) {
                return Err(stale(claim));
            }
        }
        tx.commit().map_err(self.err())
    }

    fn tasks(&self, run: &str) -> Result<Vec<TaskRecord>, Error> {
        let conn = self.conn();
        let mut deps: std::collections::HashMap<String, Vec<String>> =
            std::collections::HashMap::new();
        {
            let mut st = conn
                .prepare(
                    "SELECT task_id, dep_id FROM claim_deps WHERE run_id = ?1 \
                     ORDER BY task_id, dep_id",
                )
                .map_err(self.err())?;
            let rows = st
                .query_map(params![run], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(self.err())?;
            for row in rows {
                let (task, dep) = row.map_err(self.err())?;
                deps.entry(task).or_default().push(dep);
            }
        }
        let mut st = conn
            .prepare(
                "SELECT task_id, status, worker, token, attempts, lease_until, detail, \
                 estimate_ms, priority FROM claim_tasks WHERE run_id = ?1 ORDER BY seq",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map(params![run], |r| {
                Ok((
                    r.get::<_, String>(1)?,
                    TaskRecord {
                        task: r.get(0)?,
                        status: TaskStatus::Ready,
                        worker: r.get(2)?,
                        token: r.get::<_, i64>(3)?.cast_unsigned(),
                        attempts: r.get(4)?,
                        lease_until_ms: r.get(5)?,
                        detail: r.get(6)?,
                        deps: Vec::new(),
                        estimate_ms: r.get::<_, Option<i64>>(7)?.map(i64::cast_unsigned),
                        priority: r.get(8)?,
                    },
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (status, mut rec) = row.map_err(self.err())?;
            rec.status = TaskStatus::parse(&status).ok_or_else(|| Error::Corrupt {
                store: self.path.display().to_string(),
                message: format!("task {} has the unknown status `{status}`", rec.task),
            })?;
            rec.deps = deps.remove(&rec.task).unwrap_or_default();
            out.push(rec);
        }
        Ok(out)
    }

    fn runs(&self) -> Result<Vec<String>, Error> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT run_id FROM claim_tasks GROUP BY run_id ORDER BY MIN(seq)")
            .map_err(self.err())?;
        st.query_map([], |r| r.get(0))
            .map_err(self.err())?
            .collect::<Result<_, _>>()
            .map_err(self.err())
    }

    fn now_ms(&self) -> Result<i64, Error> {
        Ok(now_ms())
    }

    fn try_merge_lock(&self, holder: &str) -> Result<Option<MergeLock>, Error> {
        let mut name = self.path.clone().into_os_string();
        name.push(".merge.lock");
        let path = PathBuf::from(name);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io {
                op: "open",
                path: path.clone(),
                source,
            })?;
        match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(MergeLock::new(holder, Box::new(lock)))),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(Error::Io {
                op: "lock",
                path,
                source: e.into(),
            }),
        }
    }
}
