//! Slow clients (issue 16, point 6): slow-loris connections that never finish their request
//! head must not keep a normal request from being answered, nor be held for ever; a request
//! head or body sent too slowly and an idle kept-alive connection are closed after their
//! timeouts; the journal stays under its byte cap.
//!
//! The slow-loris tests run the server in a child process (see `connections.rs`), so its fd
//! limit can be set without touching this process, and its runtime serves only the twin: the
//! latencies measured are the server's, not those of the 1,000 attacking tasks here.

use super::connections::{
    CHILD_ENV, OK, REQUEST, ServerChild, ask, read_response, serve_until_stdin_closes, set_fd_limit,
};
use lightsout_twin::{Format, ServerOptions, Twin, TwinServer, parse_definition};
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// How long one normal request may go unanswered before the test calls it lost (the old
/// server never answered it at all with a full fd table).
const LOST: Duration = Duration::from_secs(10);

/// Request heads that never end: a partial request line, and a request line with a partial
/// header.
const PARTIAL: [&[u8]; 2] = [b"GET /pi", b"GET /ping HTTP/1.1\r\nHost: t\r\nX-Slow: aaaa"];

/// `n` slow-loris clients: each keeps one connection open with a partial request head, and
/// when the server closes it opens another, until stopped.
struct Slowloris {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<u32>>,
}

impl Slowloris {
    /// Starts `n` clients and returns once each has connected and sent its partial head.
    async fn start(addr: SocketAddr, n: usize) -> Self {
        let (stop, stopped) = watch::channel(false);
        let (ready_tx, mut ready) = mpsc::channel(n);
        let tasks = (0..n)
            .map(|i| {
                let (ready, stopped) = (ready_tx.clone(), stopped.clone());
                tokio::spawn(hold(addr, PARTIAL[i % 2], ready, stopped))
            })
            .collect();
        drop(ready_tx);
        for _ in 0..n {
            ready
                .recv()
                .await
                .expect("a slow-loris client failed to connect");
        }
        Slowloris { stop, tasks }
    }

    /// Stops the clients; returns how many times the server closed each one's connection.
    async fn stop(self) -> Vec<u32> {
        self.stop.send(true).expect("clients listening");
        let mut closed = Vec::with_capacity(self.tasks.len());
        for t in self.tasks {
            closed.push(t.await.expect("slow-loris task"));
        }
        closed
    }
}

/// One slow-loris client; returns how many of its connections the server closed.
async fn hold(
    addr: SocketAddr,
    partial: &'static [u8],
    ready: mpsc::Sender<()>,
    mut stopped: watch::Receiver<bool>,
) -> u32 {
    let mut closed = 0;
    let mut ready = Some(ready);
    let mut buf = [0u8; 256];
    loop {
        let connected = tokio::select! {
            c = TcpStream::connect(addr) => c,
            _ = stopped.changed() => return closed,
        };
        let Ok(mut s) = connected else { continue };
        // A write to a connection the server already closed fails; the read below sees it.
        let _ = s.write_all(partial).await;
        if let Some(r) = ready.take() {
            let _ = r.send(()).await;
        }
        tokio::select! {
            // End of stream, a reset, or (never expected) an answer: the server let go.
            _ = s.read(&mut buf) => closed += 1,
            _ = stopped.changed() => return closed,
        }
    }
}

/// One normal request on a fresh connection; its latency from connect to the whole answer.
///
/// It runs on a thread of its own with blocking sockets, as a separate client would: the
/// slow-loris tasks of this process's runtime do not delay it, so the time is the server's.
async fn timed_request(addr: SocketAddr) -> Duration {
    tokio::task::spawn_blocking(move || {
        let t0 = Instant::now();
        let mut s = std::net::TcpStream::connect_timeout(&addr, LOST).expect("connect");
        s.set_read_timeout(Some(LOST)).expect("read timeout");
        s.write_all(REQUEST).expect("write request");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                Ok(_) => panic!("the server closed a normal request's connection"),
                Err(e) => panic!("a normal request got no answer within {LOST:?}: {e}"),
            }
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(head.starts_with(OK), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().expect("content-length"));
        s.read_exact(&mut vec![0u8; len]).expect("body");
        t0.elapsed()
    })
    .await
    .expect("request thread")
}

fn max_and_p99(mut lat: Vec<Duration>) -> (Duration, Duration) {
    lat.sort();
    let p99 = lat[(lat.len() * 99).div_ceil(100) - 1];
    (lat[lat.len() - 1], p99)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // the measured latencies, for the record
async fn thousand_half_open_connections_for_30s_and_normal_requests_answered_within_100ms() {
    const HALF_OPEN: usize = 1_000;
    // Room for the 1,000 under the default half-open cap (the limit minus 256): the server
    // holds every one until its header-read timeout. (With fewer fds than slow-loris clients,
    // the cap closes the oldest and they reconnect at once: the next test.)
    const CHILD_FDS: u64 = HALF_OPEN as u64 + 512;
    const HOLD: Duration = Duration::from_secs(30);
    // One normal request every 200 ms: ~150 of them over the 30 s.
    const EVERY: Duration = Duration::from_millis(200);
    if let Ok(fds) = std::env::var(CHILD_ENV) {
        return serve_until_stdin_closes(&fds).await;
    }
    set_fd_limit(u64::MAX);
    let server = ServerChild::spawn(
        "slow_clients::thousand_half_open_connections_for_30s_and_normal_requests_answered_within_100ms",
        CHILD_FDS,
    );
    let attack = Slowloris::start(server.addr, HALF_OPEN).await;
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut tick = tokio::time::interval(EVERY);
    while start.elapsed() < HOLD {
        tick.tick().await;
        latencies.push(timed_request(server.addr).await);
    }
    let closed = attack.stop().await;
    let n = latencies.len();
    let (max, p99) = max_and_p99(latencies);
    eprintln!(
        "1,000 half-open for {HOLD:?}: {n} normal requests, max {max:?}, p99 {p99:?}; \
         slow-loris connections closed by the server: {}",
        closed.iter().sum::<u32>()
    );
    // The bound the issue sets.
    assert!(max < Duration::from_millis(100), "max latency {max:?}");
    // Held connections are let go (after 5 to 6.8 s, so 4 to 6 times each in 30 s), not
    // kept for the whole attack.
    let never = closed.iter().filter(|c| **c == 0).count();
    assert_eq!(
        never, 0,
        "{never} slow-loris connections were held for {HOLD:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // the measured latencies, for the record
async fn with_96_fds_and_300_half_open_a_normal_request_is_still_answered() {
    // 96 fds: the 300 slow-loris connections cannot all be accepted at once.
    const CHILD_FDS: u64 = 96;
    const HALF_OPEN: usize = 300;
    // The normal request's connection waits in the accept queue behind at most the 300
    // attackers' connections, each accepted and, past the half-open cap (48 here), closed in
    // far less than a millisecond; 1 s leaves a wide margin on a loaded machine. The old
    // server never answered (it waited for fds the held connections never gave back).
    const BOUND: Duration = Duration::from_secs(1);
    if let Ok(fds) = std::env::var(CHILD_ENV) {
        return serve_until_stdin_closes(&fds).await;
    }
    set_fd_limit(u64::MAX);
    let server = ServerChild::spawn(
        "slow_clients::with_96_fds_and_300_half_open_a_normal_request_is_still_answered",
        CHILD_FDS,
    );
    let attack = Slowloris::start(server.addr, HALF_OPEN).await;
    let mut latencies = Vec::new();
    for _ in 0..20 {
        latencies.push(timed_request(server.addr).await);
    }
    attack.stop().await;
    let (max, p99) = max_and_p99(latencies);
    eprintln!("96 fds, 300 half-open: 20 normal requests, max {max:?}, p99 {p99:?}");
    assert!(max < BOUND, "max latency {max:?}");
}

const PING: &str = "
name: ping
provenance: {source: tests/it/slow_clients.rs}
routes:
  - {method: GET, path: /ping, response: {status: 200, body: {pong: true}}}
";

fn ping() -> Twin {
    let (def, diags) = parse_definition(PING, Format::Yaml);
    assert!(diags.is_empty(), "{diags:?}");
    Twin::new(def.expect("ping twin"), super::support::opts()).expect("ping twin")
}

/// Reads until the server closes `s` (end of stream or reset); the time that took, or `None`
/// if it sent bytes instead.
async fn until_closed(s: &mut (impl AsyncReadExt + Unpin)) -> Option<Instant> {
    let mut buf = [0u8; 256];
    match s.read(&mut buf).await {
        Ok(0) | Err(_) => Some(Instant::now()),
        Ok(_) => None,
    }
}

#[tokio::test]
async fn header_read_and_idle_timeouts_close_slow_and_idle_connections_and_slow_bodies() {
    let header_read = Duration::from_millis(500);
    let idle = Duration::from_secs(2);
    let server = TwinServer::start_with(
        vec![ping()],
        SocketAddr::from(([127, 0, 0, 1], 0)),
        ServerOptions {
            header_read_timeout: header_read,
            idle_timeout: idle,
            max_half_open: None,
        },
    )
    .await
    .expect("bind");
    let addr = server.local_addr();

    // 1. A head sent one byte every 50 ms never completes: closed after the header-read
    //    timeout, however steadily bytes arrive, and well before the idle timeout.
    // Taken before connecting: the server's clock starts at accept, after this.
    let t0 = Instant::now();
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = slow.split();
    // The request line and the start of a header at once, then its value one byte at a time.
    let trickle = async {
        let _ = wr
            .write_all(b"GET /ping HTTP/1.1\r\nHost: t\r\nX-Slow: ")
            .await;
        while wr.write_all(b"a").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let closed = tokio::select! {
        () = trickle => Some(Instant::now()),
        r = tokio::time::timeout(LOST, until_closed(&mut rd)) => {
            r.ok().map(|c| c.expect("a slow head got an answer"))
        }
    };
    let closed = closed
        .expect("a slowly sent head was never closed")
        .duration_since(t0);
    assert!(
        closed >= header_read,
        "closed after {closed:?}, before the timeout"
    );
    assert!(
        closed < idle,
        "closed after {closed:?}: not the header-read timeout"
    );

    // 2. A kept-alive connection outlives the header-read timeout between requests (it is
    //    idle, not half-open), then is closed after the idle timeout.
    let mut kept = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(ask(&mut kept).await, OK);
    tokio::time::sleep(header_read * 2).await;
    // Taken before sending: the server's idle clock starts when it has answered, after this.
    let sent = Instant::now();
    kept.write_all(REQUEST).await.expect("second request");
    assert_eq!(read_response(&mut kept, &mut Vec::new()).await, OK);
    let closed = tokio::time::timeout(LOST, until_closed(&mut kept))
        .await
        .expect("an idle connection was never closed")
        .expect("no bytes on an idle connection");
    let after = closed.duration_since(sent);
    assert!(after >= idle, "idle connection closed after {after:?}");

    // 3. A body trickled after a complete head gets as long as the head had, then `408` and
    //    the connection closed.
    let mut trickled = TcpStream::connect(addr).await.expect("connect");
    trickled
        .write_all(b"POST /ping HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nab")
        .await
        .expect("head");
    let status = tokio::time::timeout(LOST, read_response(&mut trickled, &mut Vec::new()))
        .await
        .expect("a trickled body was never answered");
    assert_eq!(status, "http/1.1 408 request timeout");
    assert!(
        tokio::time::timeout(LOST, until_closed(&mut trickled))
            .await
            .expect("closed after the 408")
            .is_some()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn journal_stays_under_its_byte_cap_with_large_headers() {
    // The case: 2,000 requests with 90 KB of headers each (816 MB before). The
    // default cap is 64 MiB; each entry counts GET (3) + /ping (5) + host t (5) + x-big and
    // its 90,000-byte value (90,005) = 90,018 bytes.
    const REQUESTS: u64 = 2_000;
    const ENTRY: u64 = 90_018;
    const CAP: u64 = 64 << 20;
    let server = TwinServer::start(vec![ping()], SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let big = "b".repeat(90_000);
    let head = format!("GET /ping HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n");
    let mut s = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let mut buf = Vec::new();
    for _ in 0..REQUESTS {
        s.write_all(head.as_bytes()).await.expect("request");
        assert_eq!(read_response(&mut s, &mut buf).await, OK);
    }
    let c = super::support::client();
    let stats: serde_json::Value = c
        .get(format!("{}/__twin/journal/stats", server.url()))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats JSON");
    let kept = CAP / ENTRY;
    assert_eq!(stats["max_bytes"], CAP);
    assert_eq!(stats["entries"], kept, "{stats}");
    assert_eq!(stats["bytes"], kept * ENTRY, "{stats}");
    assert!(stats["bytes"].as_u64().expect("bytes") <= CAP);
    assert_eq!(stats["dropped"], REQUESTS - kept, "{stats}");

    let resp = c
        .get(format!("{}/__twin/journal", server.url()))
        .send()
        .await
        .expect("journal");
    let header = |name: &str| resp.headers()[name].to_str().expect("ascii").to_string();
    assert_eq!(header("x-twin-journal-bytes"), (kept * ENTRY).to_string());
    assert_eq!(
        header("x-twin-journal-dropped"),
        (REQUESTS - kept).to_string()
    );
    let journal: Vec<serde_json::Value> = resp.json().await.expect("journal JSON");
    assert_eq!(journal.len() as u64, kept);
    // The oldest went first: the newest `kept` requests remain.
    assert_eq!(journal[0]["seq"], REQUESTS - kept + 1);
    assert_eq!(journal[journal.len() - 1]["seq"], REQUESTS);
    server.shutdown().await;
}
