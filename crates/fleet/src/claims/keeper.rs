//! [`Keeper`]: holds one claim for a worker, heartbeating it on a thread of its own, and
//! says when the worker must stop (the partition rule, from the worker's side). It is the one
//! lease and heartbeat implementation of a worker: `lightsout worker` holds each claim through
//! one ([`Keeper::claim_next`], [`Keeper::hold`], [`Keeper::finish`]), and the merge step
//! writes under the same claim through its [`ClaimGuard`] (the fenced merge lock, the fenced
//! renewal before main moves).
//!
//! The worker counts its lease from *before* it asked for the claim, by its own monotonic
//! clock, and moves that deadline only when a heartbeat succeeds (to the instant the heartbeat
//! was *sent* plus the lease). The store counts the same lease from when it granted the claim
//! (later) and renews it from when the heartbeat arrived (later again). So as long as the two
//! clocks run at the same rate, the worker's deadline passes before the store's, and a worker
//! that stops at its deadline has stopped before any other worker can claim the task. A
//! heartbeat that cannot reach the store (a partition, a server restart longer than the
//! lease) blocks on its own thread; the deadline does not wait for it.

use super::{Claim, ClaimStore, MergeLock, Settle};
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

    /// Claims the next claimable task for `worker` ([`ClaimStore::claim`], lease `lease`)
    /// and starts keeping it; `None` when no task is claimable. The lease is counted from
    /// just before the call, by this process's monotonic clock.
    ///
    /// # Errors
    /// As [`ClaimStore::claim`].
    pub fn claim_next(
        store: Arc<dyn ClaimStore>,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Self>, Error> {
        let asked = Instant::now();
        Ok(store
            .claim(worker, lease)?
            .map(|claim| Self::start(store, claim, lease, asked)))
    }

    /// The claim as last renewed.
    pub fn claim(&self) -> Claim {
        self.shared.lock().claim.clone()
    }

    /// A handle on this claim for work that runs beside the worker's loop (the merge step):
    /// it sees the same claim, deadline and loss, and its writes are fenced by the claim's
    /// token. It does not keep the claim alive: heartbeats stop when the [`Keeper`] finishes
    /// or is dropped.
    pub fn guard(&self) -> ClaimGuard {
        ClaimGuard {
            shared: self.shared.clone(),
            store: self.store.clone(),
            lease: self.lease,
        }
    }

    /// Drives `work` while the claim is kept: its output, or why the claim was lost, in
    /// which case `work` is dropped at once (a child process spawned with `kill_on_drop`
    /// dies with it; a spawned task must be aborted by the caller). A refused heartbeat is
    /// seen within [`Keeper::POLL`]; the deadline is kept with a margin ([`Keeper::margin`]):
    /// `hold` gives the claim up that long *before* it, so the work has stopped by the
    /// deadline even when this thread is scheduled late. Giving up is final, as any loss is
    /// ([`Keeper::lost`] and the [`ClaimGuard`] say so from then on).
    ///
    /// # Errors
    /// [`Lost`] when the claim was lost before `work` finished.
    #[cfg(feature = "async")]
    pub async fn hold<F: std::future::Future>(&self, work: F) -> Result<F::Output, Lost> {
        let mut work = std::pin::pin!(work);
        let (margin, poll) = (self.margin(), self.poll());
        loop {
            let deadline = {
                let mut s = self.shared.lock();
                settle_deadline(&mut s);
                if s.lost.is_none() && Instant::now() + margin >= s.deadline {
                    s.lost = Some(Lost::Deadline);
                }
                if let Some(lost) = s.lost.clone() {
                    drop(s);
                    self.shared.changed.notify_all();
                    return Err(lost);
                }
                s.deadline
            };
            let wake = deadline
                .checked_sub(margin)
                .unwrap_or(deadline)
                .min(Instant::now() + poll);
            tokio::select! {
                out = &mut work => return Ok(out),
                () = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    /// At most how long [`Keeper::hold`] takes to see a refused heartbeat: a tenth of the
    /// lease, at most 100 ms.
    pub const POLL: Duration = Duration::from_millis(100);

    #[cfg(feature = "async")]
    fn poll(&self) -> Duration {
        (self.lease / 10).clamp(Duration::from_millis(1), Self::POLL)
    }

    /// How long before its deadline [`Keeper::hold`] gives the claim up: a fifth of the
    /// lease, at most one second.
    pub fn margin(&self) -> Duration {
        (self.lease / 5).min(Duration::from_secs(1))
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

    /// The error a write under this claim gets once it is no longer held
    /// ([`Error::Stale`]), to report a loss in the store's words.
    pub fn stale(&self) -> Error {
        super::stale(&self.claim())
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
        // A failed heartbeat (the store retried for as long as it does) is not yet a lost
        // claim: the deadline decides.
        let _ = shared.record(r, sent, lease);
        next = sent + every;
    }
}

impl Shared {
    /// Records the answer to a heartbeat sent at `sent`: a renewal moves the deadline to
    /// `sent + lease` (never back), a refusal loses the claim. Returns the claim as renewed,
    /// or the error; a renewal that arrives after the claim was lost (or finished) is
    /// [`Error::Stale`]: losing is final.
    fn record(
        &self,
        answer: Result<Claim, Error>,
        sent: Instant,
        lease: Duration,
    ) -> Result<Claim, Error> {
        let mut s = self.lock();
        settle_deadline(&mut s);
        let out = match answer {
            Ok(_) if s.lost.is_some() || s.stop => Err(super::stale(&s.claim)),
            Ok(renewed) => {
                s.claim = renewed.clone();
                s.deadline = s.deadline.max(sent + lease);
                Ok(renewed)
            }
            Err(e @ Error::Stale { .. }) => {
                if s.lost.is_none() && !s.stop {
                    s.lost = Some(Lost::Refused);
                }
                Err(e)
            }
            Err(e) => Err(e),
        };
        drop(s);
        self.changed.notify_all();
        out
    }
}

/// A handle on a [`Keeper`]'s claim ([`Keeper::guard`]) for work that runs beside the
/// worker's loop, such as the merge step of `lightsout_factory::fleet::RemoteMain`. Every
/// write it makes names the claim's fencing token, and none is made once the keeper has lost
/// the claim.
#[derive(Clone)]
pub struct ClaimGuard {
    shared: Arc<Shared>,
    store: Arc<dyn ClaimStore>,
    lease: Duration,
}

impl std::fmt::Debug for ClaimGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimGuard")
            .field("state", &self.shared.state)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl ClaimGuard {
    /// The claim as last renewed.
    pub fn claim(&self) -> Claim {
        self.shared.lock().claim.clone()
    }

    /// Whether (and why) the keeper lost the claim.
    pub fn lost(&self) -> Option<Lost> {
        let mut s = self.shared.lock();
        settle_deadline(&mut s);
        s.lost.clone()
    }

    /// The claim held now, or [`Error::Stale`] when the keeper lost it or finished.
    fn held(&self) -> Result<Claim, Error> {
        let mut s = self.shared.lock();
        settle_deadline(&mut s);
        if s.lost.is_some() || s.stop {
            return Err(super::stale(&s.claim));
        }
        Ok(s.claim.clone())
    }

    /// A heartbeat now, through the keeper: renews the lease under the claim's token and moves
    /// the keeper's deadline, as its own heartbeats do. The merge step calls it just before
    /// it moves main, so main moves only while the claim holds, for a whole lease ahead.
    ///
    /// # Errors
    /// [`Error::Stale`] when the keeper lost the claim or the store refuses the token (the
    /// keeper then counts the claim lost); the store cannot be written.
    pub fn renew(&self) -> Result<Claim, Error> {
        let held = self.held()?;
        let sent = Instant::now();
        let answer = self.store.heartbeat(&held, self.lease);
        self.shared.record(answer, sent, self.lease)
    }

    /// The fleet's merge lock for this claim ([`ClaimStore::try_merge_lock_for`]: taken only
    /// while the claim holds, which renews its lease); `None` while someone else holds it.
    ///
    /// # Errors
    /// [`Error::Stale`] when the keeper lost the claim or the store refuses the token; as
    /// [`ClaimStore::try_merge_lock`].
    pub fn try_merge_lock(&self) -> Result<Option<MergeLock>, Error> {
        let held = self.held()?;
        let sent = Instant::now();
        match self.store.try_merge_lock_for(&held, self.lease) {
            Ok(Some(lock)) => {
                // The fenced write renewed the lease from `sent` on; a loss meanwhile lets
                // the lock go.
                self.shared.record(Ok(held), sent, self.lease)?;
                Ok(Some(lock))
            }
            Ok(None) => Ok(None),
            Err(e) => self.shared.record(Err(e), sent, self.lease).map(|_| None),
        }
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
