//! Integration tests of `lightsout-memory`: one binary, one module per topic.

mod guards;
mod import_export;
mod lessons;
mod retrieval;
mod store;

use lightsout_memory::{Memory, NewRecord, SqliteStore, parse_time};

/// A memory on a real database file in a fresh temporary folder.
pub(crate) fn temp_memory() -> (tempfile::TempDir, Memory<SqliteStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mem = Memory::open(dir.path().join(".lightsout/memory.db")).expect("open");
    (dir, mem)
}

/// A decision valid from `date` (YYYY-MM-DD).
pub(crate) fn decision_at(title: &str, text: &str, date: &str) -> NewRecord {
    let mut d = NewRecord::decision(title, text);
    d.valid_from = Some(parse_time(date).expect("date"));
    d
}
