//! Slow and idle clients: the phase of every connection a [`crate::TwinServer`] holds, the
//! half-open cap and the per-connection watchdog that enforces the header-read and idle
//! timeouts of [`ServerOptions`].
//!
//! A connection is in one of three phases:
//!
//! - **half-open**: from accept, or from the first byte of a kept-alive connection's next
//!   request, until hyper has parsed the request head. It may last
//!   [`ServerOptions::header_read_timeout`]. At most the half-open cap are held at once: at
//!   the cap the accept loop closes the oldest half-open connection once it has had
//!   [`MIN_HALF_OPEN_AGE`], and until then accepts nothing (new connections wait in the
//!   kernel's queue, costing no fd). A slow-loris client cannot fill the fd table, every
//!   accepted client gets at least [`MIN_HALF_OPEN_AGE`] to send its head, and under a flood
//!   of reconnecting slow-loris clients the server still accepts `cap / MIN_HALF_OPEN_AGE`
//!   connections a second, so a normal client waits about `queued / that rate`.
//! - **busy**: a request is being answered. The watchdog sets no deadline here: the body
//!   must arrive within the header-read timeout (else `408`, see `server`), and a twin's
//!   latency and its handler bound the rest.
//! - **idle**: answered and kept alive, no byte of the next request yet. It may last
//!   [`ServerOptions::idle_timeout`].
//!
//! hyper's own `header_read_timeout` is not used: in hyper 1.x its clock starts whenever the
//! connection waits for a head, including the keep-alive wait after a response (hyper 1.12,
//! `proto::h1::conn::Conn::poll_read_head` and `State::idle`), so a 5 s
//! header timeout would also close every idle connection after 5 s and the idle timeout could
//! never be longer. The watchdog here tells the two waits apart.

use lightsout_stdx::lock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Default [`ServerOptions::header_read_timeout`]: 5 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`ServerOptions::idle_timeout`]: 30 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time an accepted connection may stay half-open before the half-open cap can close it:
/// 50 ms, ample for a client to send a request head it already has.
pub const MIN_HALF_OPEN_AGE: Duration = Duration::from_millis(50);
/// File descriptors the default half-open cap leaves for requests in flight, idle kept-alive
/// connections and the process's own files: 256, or half the limit when that is lower.
pub const FD_RESERVE: usize = 256;

/// How a [`crate::TwinServer`] treats slow and idle clients.
///
/// The defaults hold 1,000 slow-loris connections with a normal request still answered at once
/// (issue 16): a client gets 5 s to send a request head, a kept-alive connection 30 s between
/// requests, and half-open connections never take the last file descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerOptions {
    /// Wait for a complete request head: from accept for a new connection, from the first
    /// byte of the request for a kept-alive one. The connection is then closed without an
    /// answer, between this and 1.36 times this (spread over connections, so that a burst of
    /// slow clients is not closed all at once). A request's body then gets as long again,
    /// from its head, or is answered `408` and the connection closed. Default
    /// [`DEFAULT_HEADER_READ_TIMEOUT`] (5 s).
    pub header_read_timeout: Duration,
    /// Longest wait of a kept-alive connection, after an answer, for the first byte of its next
    /// request; the connection is then closed. Default [`DEFAULT_IDLE_TIMEOUT`] (30 s).
    pub idle_timeout: Duration,
    /// Most connections held at once whose request head is not complete (half-open); at the
    /// cap the oldest is closed (once it is [`MIN_HALF_OPEN_AGE`] old) before the next is
    /// accepted. `None` (the default): the soft `RLIMIT_NOFILE` when the
    /// server starts minus [`FD_RESERVE`] (minus half the limit when that is lower), e.g. 768
    /// for 1,024 fds, 48 for 96. `Some(0)` is taken as 1.
    pub max_half_open: Option<usize>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_half_open: None,
        }
    }
}

impl ServerOptions {
    /// The half-open cap these options give in this process now (at least 1).
    pub fn resolved_max_half_open(&self) -> usize {
        self.max_half_open
            .unwrap_or_else(default_max_half_open)
            .max(1)
    }
}

/// The soft `RLIMIT_NOFILE` minus [`FD_RESERVE`] (or minus half of it when lower); 768 when
/// the limit cannot be read.
fn default_max_half_open() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    soft - (soft / 2).min(FD_RESERVE)
}

const HALF_OPEN: u8 = 0;
const BUSY: u8 = 1;
const IDLE: u8 = 2;

/// What the watchdog reads: the phase and since when, plus the key in the registry.
struct Slot {
    phase: u8,
    since: Instant,
    ticket: u64,
}

/// One accepted connection.
pub(crate) struct Conn {
    /// Mirrors `slot.phase`, so a read checks it without a lock.
    phase: AtomicU8,
    /// Written only with the registry locked (lock order: registry, then slot).
    slot: Mutex<Slot>,
    /// Wakes the watchdog: a phase change or an eviction.
    wake: Notify,
    evicted: AtomicBool,
}

/// `timeout` plus 0 to 23/64 (about a third) of it, by `ticket`: connections opened together
/// (a slow-loris burst) are not all closed, and so do not all reconnect, in the same instant,
/// which would queue a normal client behind the whole herd.
fn spread(timeout: Duration, ticket: u64) -> Duration {
    let step = u32::try_from(ticket % 24).unwrap_or(0);
    timeout + timeout * step / 64
}

impl Conn {
    fn deadline(&self, opts: &ServerOptions) -> Option<Instant> {
        let slot = lock(&self.slot);
        match slot.phase {
            HALF_OPEN => Some(slot.since + spread(opts.header_read_timeout, slot.ticket)),
            IDLE => Some(slot.since + opts.idle_timeout),
            _ => None,
        }
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

#[derive(Default)]
struct Registry {
    next: u64,
    half_open: BTreeMap<u64, Arc<Conn>>,
    idle: BTreeMap<u64, Arc<Conn>>,
}

/// The connections of one server by phase, oldest first, and the options they run under.
pub(crate) struct Tracker {
    reg: Mutex<Registry>,
    opts: ServerOptions,
    cap: usize,
}

impl Tracker {
    pub(crate) fn new(opts: ServerOptions) -> Self {
        Tracker {
            reg: Mutex::new(Registry::default()),
            cap: opts.resolved_max_half_open(),
            opts,
        }
    }

    /// The options with the half-open cap resolved.
    pub(crate) fn options(&self) -> ServerOptions {
        ServerOptions {
            max_half_open: Some(self.cap),
            ..self.opts
        }
    }

    /// Waits until one more connection may be accepted: fewer than the cap are half-open, or
    /// the oldest half-open one is [`MIN_HALF_OPEN_AGE`] old, which it then closes.
    pub(crate) async fn room(&self) {
        loop {
            let wait = {
                let mut reg = lock(&self.reg);
                if reg.half_open.len() < self.cap {
                    return;
                }
                let Some(oldest) = reg.half_open.first_entry() else {
                    return;
                };
                let ready = lock(&oldest.get().slot).since + MIN_HALF_OPEN_AGE;
                if ready <= Instant::now() {
                    tracing::debug!("half-open cap {} reached: closing the oldest", self.cap);
                    oldest.remove().evict();
                    return;
                }
                ready
            };
            tokio::time::sleep_until(wait).await;
        }
    }

    /// A new connection, half-open from now.
    pub(crate) fn accept(&self) -> Arc<Conn> {
        let mut reg = lock(&self.reg);
        reg.next += 1;
        let conn = Arc::new(Conn {
            phase: AtomicU8::new(HALF_OPEN),
            slot: Mutex::new(Slot {
                phase: HALF_OPEN,
                since: Instant::now(),
                ticket: reg.next,
            }),
            wake: Notify::new(),
            evicted: AtomicBool::new(false),
        });
        let ticket = reg.next;
        reg.half_open.insert(ticket, conn.clone());
        conn
    }

    /// Moves `conn` to `phase` with a fresh ticket and `since = now`.
    fn set(&self, conn: &Arc<Conn>, phase: u8) {
        let mut reg = lock(&self.reg);
        let mut slot = lock(&conn.slot);
        match slot.phase {
            HALF_OPEN => drop(reg.half_open.remove(&slot.ticket)),
            IDLE => drop(reg.idle.remove(&slot.ticket)),
            _ => {}
        }
        reg.next += 1;
        slot.phase = phase;
        slot.since = Instant::now();
        slot.ticket = reg.next;
        conn.phase.store(phase, Ordering::SeqCst);
        let ticket = reg.next;
        match phase {
            HALF_OPEN => drop(reg.half_open.insert(ticket, conn.clone())),
            IDLE => drop(reg.idle.insert(ticket, conn.clone())),
            _ => {}
        }
    }

    /// Bytes arrived on `conn`: an idle connection starts its next request (half-open).
    pub(crate) fn on_read(&self, conn: &Arc<Conn>) {
        if conn.phase.load(Ordering::SeqCst) == IDLE {
            self.set(conn, HALF_OPEN);
            conn.wake.notify_one();
        }
    }

    /// hyper parsed a request head on `conn`.
    pub(crate) fn on_request(&self, conn: &Arc<Conn>) {
        self.set(conn, BUSY);
    }

    /// The answer to `conn`'s request is ready; it waits for the next one.
    pub(crate) fn on_response(&self, conn: &Arc<Conn>) {
        self.set(conn, IDLE);
        conn.wake.notify_one();
    }

    /// `conn` ended.
    pub(crate) fn on_close(&self, conn: &Arc<Conn>) {
        let mut reg = lock(&self.reg);
        let mut slot = lock(&conn.slot);
        match slot.phase {
            HALF_OPEN => drop(reg.half_open.remove(&slot.ticket)),
            IDLE => drop(reg.idle.remove(&slot.ticket)),
            _ => {}
        }
        slot.phase = BUSY;
        conn.phase.store(BUSY, Ordering::SeqCst);
    }

    /// Out of file descriptors: closes the oldest half-open connection, else the oldest idle
    /// one. Returns whether one was closed.
    pub(crate) fn evict_for_fd(&self) -> bool {
        let mut reg = lock(&self.reg);
        let victim = match reg.half_open.pop_first() {
            Some((_, c)) => Some(c),
            None => reg.idle.pop_first().map(|(_, c)| c),
        };
        victim.inspect(|c| c.evict()).is_some()
    }

    /// Runs `conn_fut` (the hyper connection of `conn`) until it ends, its deadline passes or
    /// the cap evicts it; dropping it then closes the socket.
    pub(crate) async fn watch<F: Future>(&self, conn: &Arc<Conn>, conn_fut: F) {
        tokio::pin!(conn_fut);
        loop {
            if conn.evicted.load(Ordering::SeqCst) {
                return;
            }
            let deadline = conn.deadline(&self.opts);
            let expiry = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut conn_fut => return,
                () = conn.wake.notified() => {}
                () = expiry => {
                    if conn.deadline(&self.opts).is_some_and(|d| d <= Instant::now()) {
                        tracing::debug!("closing a connection: header-read or idle timeout");
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(cap: usize) -> ServerOptions {
        ServerOptions {
            max_half_open: Some(cap),
            ..ServerOptions::default()
        }
    }

    fn evicted(c: &Conn) -> bool {
        c.evicted.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    #[allow(clippy::many_single_char_names)] // connections a to d, in accept order
    async fn at_the_cap_the_oldest_half_open_is_closed_once_old_enough() {
        let t = Tracker::new(opts(2));
        let a = t.accept();
        let b = t.accept();
        t.on_request(&b);
        t.on_response(&b);
        // Idle connections do not count: one half-open, room for another at once.
        t.room().await;
        let c = t.accept();
        // At the cap: the oldest half-open (a) is closed, but not before it had its minimum
        // age (paused time: the wait is exactly the rest of it).
        let t0 = Instant::now();
        t.room().await;
        assert!(evicted(&a));
        assert_eq!(t0.elapsed(), MIN_HALF_OPEN_AGE);
        assert!(!evicted(&b) && !evicted(&c));
        let d = t.accept();
        // An idle connection that starts its next request is half-open again, and newest:
        // c goes next.
        t.on_read(&b);
        t.room().await;
        assert!(evicted(&c));
        t.room().await;
        assert!(evicted(&d), "d is older than b");
        assert!(!evicted(&b));
    }

    #[tokio::test]
    async fn out_of_fds_evicts_half_open_first_then_idle() {
        let t = Tracker::new(opts(10));
        let idle = t.accept();
        t.on_request(&idle);
        t.on_response(&idle);
        let busy = t.accept();
        t.on_request(&busy);
        let half = t.accept();
        assert!(t.evict_for_fd());
        assert!(half.evicted.load(Ordering::SeqCst));
        assert!(t.evict_for_fd());
        assert!(idle.evicted.load(Ordering::SeqCst));
        assert!(!t.evict_for_fd(), "a busy connection is never evicted");
        assert!(!busy.evicted.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn closed_connections_leave_the_registry() {
        let t = Tracker::new(opts(1));
        let a = t.accept();
        t.on_close(&a);
        let t0 = Instant::now();
        t.room().await;
        assert_eq!(t0.elapsed(), Duration::ZERO, "room at once: a is gone");
        assert!(!evicted(&a));
    }

    #[test]
    fn default_cap_leaves_a_reserve_of_fds() {
        let cap = ServerOptions::default().resolved_max_half_open();
        let (soft, _) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        let soft = usize::try_from(soft).unwrap_or(usize::MAX);
        assert!(cap < soft && cap >= soft / 2, "cap {cap} for {soft} fds");
        assert_eq!(
            ServerOptions {
                max_half_open: Some(0),
                ..ServerOptions::default()
            }
            .resolved_max_half_open(),
            1
        );
    }
}
