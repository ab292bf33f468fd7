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
