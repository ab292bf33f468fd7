//! [`Keeper`]: holds one claim for a worker, heartbeating it on a thread of its own, and
//! says when the worker must stop (the partition rule, from the worker's side).
//!
//! The worker counts its lease from *before* it asked for the claim, by its own monotonic
//! clock, and moves that deadline only when a heartbeat succeeds (to the instant the heartbeat
//! was *sent* plus the lease). The store counts the same lease from when it granted the claim
//! (later) and renews it from when the heartbeat arrived (later again). So as long as the two
//! clocks run at the same rate, the worker's deadline passes before the store's, and a worker
//! that stops at its deadline has stopped before any other worker can claim the task. A
//! heartbeat that cannot reach the store (a partition, a server restart longer than the
//! lease) blocks on its own thread; the deadline does not wait for it.

use super::{Claim, ClaimStore, Settle};
use crate::Error;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Why a [`Keeper`] gave its claim up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lost {
    /// No heartbeat got through before the worker's deadline (the store unreachable, or too
    /// slow): the store may hand the task to another worker from now on.
    Deadline,
    /// The store refused a heartbeat: the lease had lapsed, or another claim replaced it.
    Refused,
}

#[derive(Debug)]
struct State {
    claim: Claim,
    deadline: Instant,
    lost: Option<Lost>,
    stop: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lightsout_stdx::lock(&self.state)
    }
}

/// One claim held by a worker: heartbeats every third of the lease on its own thread, and
/// [`Keeper::lost`] once the claim can no longer be trusted. The worker polls
/// [`Keeper::lost`] (or blocks in [`Keeper::wait_lost`]) while its agent runs, stops the
/// agent when it says so, and ends the claim with [`Keeper::finish`].
///
/// Losing is final: a heartbeat that succeeds after the deadline does not revive the claim.
pub struct Keeper {
    shared: Arc<Shared>,
    store: Arc<dyn ClaimStore>,
    lease: Duration,
}

impl std::fmt::Debug for Keeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keeper")
            .field("state", &self.shared.state)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl Keeper {
    /// Starts keeping `claim`, granted for `lease` by a call to [`ClaimStore::claim`] made at
    /// `asked` (an [`Instant`] taken just *before* that call).
    pub fn start(
        store: Arc<dyn ClaimStore>,
        claim: Claim,
        lease: Duration,
        asked: Instant,
    ) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                claim,
                deadline: asked + lease,
                lost: None,
                stop: false,
            }),
            changed: Condvar::new(),
        });
        let (s, st) = (shared.clone(), store.clone());
        // Detached (see Drop). Without a thread there are no heartbeats: the claim lapses at
        // its first deadline, which `lost` reports like any other.
        let _ = std::thread::Builder::new()
            .name("lightsout-heartbeat".into())
            .spawn(move || beat(&s, st.as_ref(), lease));
        Self {
            shared,
            store,
            lease,
        }
    }

    /// The claim as last renewed.
    pub fn claim(&self) -> Claim {
        self.shared.lock().claim.clone()
    }

    /// When the worker must have stopped unless a heartbeat gets through first.
    pub fn deadline(&self) -> Instant {
        self.shared.lock().deadline
    }

    /// Whether (and why) the claim is lost; the worker must stop its agent at once if so.
    pub fn lost(&self) -> Option<Lost> {
        let mut s = self.shared.lock();
        settle_deadline(&mut s);
        s.lost.clone()
    }

    /// Blocks until the claim is lost or `timeout` passes; the reason when lost.
    pub fn wait_lost(&self, timeout: Duration) -> Option<Lost> {
        let until = Instant::now() + timeout;
        let mut s = self.shared.lock();
        loop {
            settle_deadline(&mut s);
            let now = Instant::now();
            if s.lost.is_some() || now >= until {
                return s.lost.clone();
            }
            let wake = until.min(s.deadline).saturating_duration_since(now);
            s = self
                .shared
                .changed
                .wait_timeout(s, wake)
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
    }

    /// Stops heartbeating and ends the claim with `outcome` under its fencing token. A lost
    /// claim is not written at all (not even released: the store may be unreachable, and the
    /// lease lapses on its own): [`Error::Stale`] at once, and the worker discards its work.
    ///
    /// # Errors
    /// [`Error::Stale`] when the claim was lost or the store refuses the token; the store
    /// cannot be written.
    pub fn finish(self, outcome: &Settle) -> Result<(), Error> {
        let (claim, lost) = {
            let mut s = self.shared.lock();
            settle_deadline(&mut s);
            s.stop = true;
            (s.claim.clone(), s.lost.clone())
        };
        self.shared.changed.notify_all();
        if lost.is_some() {
            return Err(super::stale(&claim));
        }
        self.store.settle(&claim, outcome)
    }

    /// The lease each heartbeat asks for.
    pub fn lease(&self) -> Duration {
        self.lease
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        // The heartbeat thread ends at its next wake-up; it is not joined, as it may be blocked
        // on an unreachable store.
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
    }
}

/// Marks the claim lost once its deadline has passed.
fn settle_deadline(s: &mut State) {
    if s.lost.is_none() && Instant::now() >= s.deadline {
        s.lost = Some(Lost::Deadline);
    }
}

/// The heartbeat thread: every `lease / 3`, renew; stop when told or when lost.
fn beat(shared: &Shared, store: &dyn ClaimStore, lease: Duration) {
    let every = lease / 3;
    let mut next = Instant::now() + every;
    loop {
        let held = {
            let mut s = shared.lock();
            loop {
                settle_deadline(&mut s);
                if s.stop || s.lost.is_some() {
                    return;
                }
                let now = Instant::now();
                if now >= next {
                    break;
                }
                s = shared
                    .changed
                    .wait_timeout(s, next - now)
                    .map_or_else(|e| e.into_inner().0, |(g, _)| g);
            }
            s.claim.clone()
        };
        let sent = Instant::now();
        let r = store.heartbeat(&held, lease);
        let mut s = shared.lock();
        settle_deadline(&mut s);
        if s.lost.is_none() && !s.stop {
            match r {
                Ok(renewed) => {
                    s.claim = renewed;
                    s.deadline = sent + lease;
                }
                Err(Error::Stale { .. }) => s.lost = Some(Lost::Refused),
                // A failed heartbeat (the store retried for as long as it does) is not yet a
                // lost claim: the deadline decides.
                Err(_) => {}
            }
        }
        drop(s);
        shared.changed.notify_all();
        next = sent + every;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::SqliteClaims;

    #[test]
    fn a_kept_claim_outlives_its_lease_and_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ClaimStore> =
            Arc::new(SqliteClaims::open(&dir.path().join("s.db")).unwrap());
        store.enqueue("r", &["T1".into()]).unwrap();
        let lease = Duration::from_millis(300);
        let asked = Instant::now();
        let claim = store.claim("w", lease).unwrap().unwrap();
        let k = Keeper::start(store.clone(), claim.clone(), lease, asked);
        // Three leases long: only heartbeats keep it.
        assert_eq!(k.wait_lost(lease * 3), None);
        assert!(k.claim().lease_until_ms > claim.lease_until_ms);
        assert_eq!(store.claim("other", lease).unwrap(), None);
        k.finish(&Settle::Done).unwrap();
    }
}
