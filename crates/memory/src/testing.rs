//! Test doubles for the [`Store`] trait (feature `testing`), in the manner of `tower-test`.

use crate::store::{Applied, Change, Hit, Query, Store};
use crate::{Error, Memory, SqliteStore};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh in-memory [`Memory`].
///
/// # Errors
/// SQLite errors.
pub fn memory() -> Result<Memory<SqliteStore>, Error> {
    Memory::open_in_memory()
}

/// A store that forwards to an inner one but fails every write batch after the first
/// `ok_batches`, to test how callers handle a failing memory.
#[derive(Debug)]
pub struct FailingStore<S> {
    inner: S,
    ok_batches: usize,
    seen: AtomicUsize,
}

impl<S> FailingStore<S> {
    /// Wraps `inner`, letting `ok_batches` write batches through.
    pub fn new(inner: S, ok_batches: usize) -> Self {
        FailingStore {
            inner,
            ok_batches,
            seen: AtomicUsize::new(0),
        }
    }
}

impl<S: Store> Store for FailingStore<S> {
    fn apply_batch(
        &self,
        changes: &[Change],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Applied>, Error> {
        if self.seen.fetch_add(1, Ordering::SeqCst) >= self.ok_batches {
            return Err(Error::Conflict(
                "injected failure (testing::FailingStore)".into(),
            ));
        }
        self.inner.apply_batch(changes, progress)
    }

    fn query(&self, query: &Query) -> Result<Vec<Hit>, Error> {
        self.inner.query(query)
    }
}

/// The environment variable holding the test server's URL
/// (`postgres://postgres@127.0.0.1:PORT/postgres`, printed by `scripts/pg-start`); the same
/// one `lightsout-fleet`'s tests read.
pub const TEST_PG_URL: &str = "LIGHTSOUT_TEST_PG_URL";

/// The test server's URL.
///
/// # Panics
/// When [`TEST_PG_URL`] is not set, with how to start a server: the Postgres tests fail,
/// they never skip.
pub fn require_server_url() -> String {
    std::env::var(TEST_PG_URL)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{TEST_PG_URL} is not set: the Postgres tests of the memory need a real server. \
                 Start one with `eval \"$(scripts/pg-start)\"` (stop it with `scripts/pg-stop`), \
                 or run `scripts/test`, which does both"
            )
        })
}

/// Creates an empty schema on the test server and returns a URL whose connections use it
/// (`?options=-csearch_path%3D<schema>`), so each test has a store of its own and tests
/// run side by side without colliding. Cheaper than a database per test.
///
/// # Panics
/// When [`TEST_PG_URL`] is not set, or the schema cannot be created.
#[cfg(feature = "postgres")]
pub fn fresh_schema_url(label: &str) -> String {
    use std::sync::atomic::AtomicU32;
    static N: AtomicU32 = AtomicU32::new(0);
    let url = require_server_url();
    let label: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    let name = format!(
        "mem_{label}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the test schema");
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test server {url}: {e}"));
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
            ))
            .await
            .unwrap_or_else(|e| panic!("cannot create schema {name}: {e}"));
        drop(client);
        let _ = driver.await;
    });
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{name}")
}
