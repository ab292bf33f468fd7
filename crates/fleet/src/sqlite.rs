//! The one way the `SQLite` backends open their state file.

use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

/// How long a connection waits for another process's write lock before it fails.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens (creating its parent directory when missing) the `SQLite` file at `path` in WAL mode
/// with `synchronous = FULL` (a commit is on disk when it returns) and [`BUSY_TIMEOUT`].
///
/// # Errors
/// The file cannot be created or opened, or a pragma is refused.
pub(crate) fn open(path: &Path) -> rusqlite::Result<Connection> {
    if let Some(dir) = path.parent() {
        // An error here resurfaces, with its path, when SQLite opens the file.
        let _ = std::fs::create_dir_all(dir);
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}
