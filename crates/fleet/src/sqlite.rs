//! The one way the `SQLite` stores open the project's state file (`.lightsout/state.db`) and
//! migrate their schema in it: the fleet's claims, queue and budget, and `lightsout-tune`'s
//! run metrics.

use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

/// How long a connection waits for another process's write lock before it fails.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens (creating its parent directory when missing) the `SQLite` file at `path` in WAL mode
/// with `synchronous = FULL` (a commit is on disk when it returns) and [`BUSY_TIMEOUT`].
///
/// # Errors
/// The file cannot be created or opened, or a pragma is refused.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    if let Some(dir) = path.parent() {
        // An error here resurfaces, with its path, when SQLite opens the file.
        let _ = std::fs::create_dir_all(dir);
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Turning WAL on takes an exclusive lock, and SQLite answers `SQLITE_BUSY` at once when
    // another connection is opening the same fresh file (the busy handler is not asked):
    // two workers starting together. Try again until the busy timeout.
    let until = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Ok(()) => break,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < until =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// [`open`]s the file at `path` and [`migrate`]s each `(name, migrations)` schema in it, in
/// order: what a store of this crate does when it opens.
///
/// # Errors
/// [`crate::Error::Sqlite`] when the file cannot be opened; as [`migrate`] for a schema.
pub fn open_migrated(path: &Path, schemas: &[(&str, &[&str])]) -> Result<Connection, crate::Error> {
    let mut conn = open(path).map_err(|source| crate::Error::Sqlite {
        path: path.to_owned(),
        source,
    })?;
    for (name, migrations) in schemas {
        migrate(&mut conn, path, name, migrations)?;
    }
    Ok(conn)
}

/// Brings the schema named `name` in the file at `path` up to date: `migrations[i]` takes it
/// from version `i` to `i + 1`, versions kept in the `lightsout_schema` table, all in one
/// immediate transaction.
///
/// # Errors
/// The file cannot be written, or its `name` schema is newer than this version knows.
pub fn migrate(
    conn: &mut Connection,
    path: &Path,
    name: &str,
    migrations: &[&str],
) -> Result<(), crate::Error> {
    use rusqlite::OptionalExtension as _;
    let err = |source| crate::Error::Sqlite {
        path: path.to_owned(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS lightsout_schema (
             name TEXT PRIMARY KEY,
             version INTEGER NOT NULL
         )",
    )
    .map_err(err)?;
    let version: i64 = tx
        .query_row(
            "SELECT version FROM lightsout_schema WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()
        .map_err(err)?
        .unwrap_or(0);
    let known = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    if version > known {
        return Err(crate::Error::Corrupt {
            store: path.display().to_string(),
            message: format!(
                "{name} schema version {version} is newer than this lightsout knows ({known}); \
                 upgrade lightsout"
            ),
        });
    }
    for (i, m) in migrations
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.execute_batch(m).map_err(err)?;
        tx.execute(
            "INSERT INTO lightsout_schema (name, version) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET version = excluded.version",
            rusqlite::params![name, i64::try_from(i + 1).unwrap_or(i64::MAX)],
        )
        .map_err(err)?;
    }
    tx.commit().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Workers starting together open one fresh state file at once: each gets its
    /// connection and its migrated schema, none a "database is locked".
    #[test]
    fn many_connections_open_and_migrate_one_fresh_file_at_once() {
        for _ in 0..100 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.db");
            let start = std::sync::Arc::new(std::sync::Barrier::new(8));
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        let mut conn = open(&path)?;
                        migrate(&mut conn, &path, "t", &["CREATE TABLE t (x INTEGER)"])
                            .map_err(|e| rusqlite::Error::InvalidParameterName(e.to_string()))
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap().unwrap();
            }
        }
    }
}
