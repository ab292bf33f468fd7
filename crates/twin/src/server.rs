//! Serving twins: the `tower::Service` impls (in process, no socket) and [`TwinServer`], an
//! HTTP/1.1 server on hyper that can break connections on purpose (`WireMock`'s four faults)
//! and holds slow clients ([`ServerOptions`]: header-read and idle timeouts, a half-open cap,
//! see `conns`).

use crate::Error;
use crate::conns::{Conn, ServerOptions, Tracker};
use crate::engine::{ConnectionFault, Twin, TwinRequest, TwinResponse};
use crate::record::Recorder;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use hyper_util::rt::TokioIo;
use rand::{RngCore, SeedableRng};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Several twins sharing one port, each under `/{name}` (or one twin at the root).
#[derive(Clone, Debug)]
pub struct Universe {
    mounts: Arc<Vec<(String, Twin)>>,
}

impl Universe {
    /// One twin served at the root (`/`), or several, each under `/{name}`.
    pub fn new(twins: Vec<Twin>) -> Self {
        let single = twins.len() == 1;
        let mounts = twins
            .into_iter()
            .map(|t| {
                let prefix = if single {
                    String::new()
                } else {
                    format!("/{}", t.name())
                };
                (prefix, t)
            })
            .collect();
        Universe {
            mounts: Arc::new(mounts),
        }
    }

    /// The mounted twins with their path prefixes (`""` for a single twin).
    pub fn mounts(&self) -> &[(String, Twin)] {
        &self.mounts
    }

    fn route(&self, path: &str) -> Option<(&Twin, usize)> {
        self.mounts.iter().find_map(|(prefix, t)| {
            if prefix.is_empty() {
                return Some((t, 0));
            }
            let rest = path.strip_prefix(prefix.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then_some((t, prefix.len()))
        })
    }
}

/// Reads a hyper request into a [`TwinRequest`], enforcing `limit` bytes (`413` beyond) and,
/// when given, a time limit for the whole body (`408` and `Connection: close` beyond, so a
/// client trickling its body cannot hold a connection).
async fn read_request<B>(
    req: http::Request<B>,
    limit: usize,
    body_timeout: Option<Duration>,
) -> Result<TwinRequest, TwinResponse>
where
    B: Body + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // `Connection: close`: the rest of an oversized body is never read, so the connection
    // cannot be reused for another request.
    let too_large = || {
        TwinResponse::json(
            413,
            &serde_json::json!({"error": "payload too large", "limit_bytes": limit}),
        )
        .with_header("Connection", "close")
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let collect = Limited::new(body, limit).collect();
    let collected = match body_timeout {
        Some(t) => tokio::time::timeout(t, collect).await.map_err(|_| {
            TwinResponse::json(
                408,
                &serde_json::json!({
                    "error": "request body not received in time",
                    "timeout_ms": u64::try_from(t.as_millis()).unwrap_or(u64::MAX),
                }),
            )
            .with_header("Connection", "close")
        })?,
        None => collect.await,
    };
    let body = match collected {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(_) => {
            return Err(TwinResponse::json(
                400,
                &serde_json::json!({"error": "bad request body"}),
            ));
        }
    };
    Ok(TwinRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers: parts.headers,
        body,
    })
}

/// Converts an engine answer to an HTTP response; a fault rides along as an extension.
pub fn to_http(resp: TwinResponse) -> http::Response<Full<Bytes>> {
    let mut out = http::Response::new(Full::new(resp.body));
    *out.status_mut() = http::StatusCode::from_u16(resp.status).unwrap_or(http::StatusCode::OK);
    for (k, v) in resp.headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(&v),
        ) {
            out.headers_mut().append(k, v);
        }
    }
    if let Some(f) = resp.fault {
        out.extensions_mut().insert(f);
    }
    out
}

type BoxFut = Pin<Box<dyn Future<Output = Result<http::Response<Full<Bytes>>, Infallible>> + Send>>;

async fn twin_call<B>(
    twin: Twin,
    strip: usize,
    req: http::Request<B>,
    body_timeout: Option<Duration>,
) -> http::Response<Full<Bytes>>
where
    B: Body + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limit = twin.def().body_limit_bytes;
    let mut tr = match read_request(req, limit, body_timeout).await {
        Ok(r) => r,
        Err(resp) => return to_http(resp),
    };
    if strip > 0 {
        tr.path = tr.path[strip..].to_string();
        if tr.path.is_empty() {
            tr.path.push('/');
        }
    }
    let resp = twin.handle(&tr);
    if resp.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(resp.delay_ms)).await;
    }
    to_http(resp)
}

impl<B> tower::Service<http::Request<B>> for Twin
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFut;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> BoxFut {
        let twin = self.clone();
        Box::pin(async move { Ok(twin_call(twin, 0, req, None).await) })
    }
}

impl<B> tower::Service<http::Request<B>> for Universe
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFut;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> BoxFut {
        let u = self.clone();
        Box::pin(async move { Ok(u.answer(req, None).await) })
    }
}

impl Universe {
    /// Answers `req` from the twin mounted at its path, giving its body `body_timeout`.
    async fn answer<B>(
        &self,
        req: http::Request<B>,
        body_timeout: Option<Duration>,
    ) -> http::Response<Full<Bytes>>
    where
        B: Body + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if let Some((t, strip)) = self.route(req.uri().path()).map(|(t, s)| (t.clone(), s)) {
            return twin_call(t, strip, req, body_timeout).await;
        }
        let names: Vec<&str> = self.mounts.iter().map(|(p, _)| p.as_str()).collect();
        to_http(
            TwinResponse::json(
                501,
                &serde_json::json!({"error": "no twin mounted here", "mounts": names}),
            )
            .with_header("X-Twin-Unsupported", req.uri().path()),
        )
    }
}

#[derive(Clone)]
enum Handler {
    Twins(Universe),
    Record(Recorder),
}

impl Handler {
    /// Answers `req`; its body must arrive within `body_timeout`.
    async fn call(
        self,
        req: http::Request<hyper::body::Incoming>,
        body_timeout: Duration,
    ) -> http::Response<Full<Bytes>> {
        match self {
            Handler::Twins(u) => u.answer(req, Some(body_timeout)).await,
            Handler::Record(r) => match read_request(req, 16 << 20, Some(body_timeout)).await {
                Ok(tr) => to_http(r.handle(&tr).await),
                Err(resp) => to_http(resp),
            },
        }
    }
}

/// A running HTTP server for twins (or a recording proxy). Drop it, or call
/// [`ServerHandle::shutdown`], to stop it.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
    names: Vec<String>,
    options: ServerOptions,
}

impl ServerHandle {
    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// URL of one twin by name (its prefix when several share the port).
    pub fn url_of(&self, name: &str) -> Option<String> {
        let multi = self.names.len() > 1;
        self.names.iter().find(|n| *n == name).map(|n| {
            if multi {
                format!("{}/{n}", self.url())
            } else {
                self.url()
            }
        })
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The options the server runs under, with the half-open cap resolved (`Some`).
    pub fn options(&self) -> ServerOptions {
        self.options
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s), then returns.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
    }
}

/// Starts servers. Must be called inside a tokio runtime.
#[derive(Debug, Clone, Copy)]
pub struct TwinServer;

impl TwinServer {
    /// Serves `twins` on `addr` (port 0 picks a free port) with the default
    /// [`ServerOptions`]. One twin is served at the root; several are mounted under `/{name}`.
    /// Each twin learns its URL (for issuers and `Link`s).
    ///
    /// # Errors
    /// [`Error::Io`] when the address cannot be bound.
    pub async fn start(twins: Vec<Twin>, addr: SocketAddr) -> Result<ServerHandle, Error> {
        Self::start_with(twins, addr, ServerOptions::default()).await
    }

    /// As [`TwinServer::start`], with `options` for slow and idle clients.
    ///
    /// # Errors
    /// [`Error::Io`] when the address cannot be bound.
    #[allow(clippy::unused_async)] // async by contract: callers await it; binding may await again
    pub async fn start_with(
        twins: Vec<Twin>,
        addr: SocketAddr,
        options: ServerOptions,
    ) -> Result<ServerHandle, Error> {
        let listener = bind(addr).map_err(|e| Error::io(addr.to_string(), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io(addr.to_string(), e))?;
        let multi = twins.len() > 1;
        for t in &twins {
            let url = if multi {
                format!("http://{local}/{}", t.name())
            } else {
                format!("http://{local}")
            };
            t.set_base_url(&url);
        }
        let names = twins.iter().map(|t| t.name().to_string()).collect();
        Ok(spawn(
            listener,
            local,
            Handler::Twins(Universe::new(twins)),
            names,
            options,
        ))
    }

    /// Serves a recording proxy on `addr` (default [`ServerOptions`]).
    ///
    /// # Errors
    /// [`Error::Io`] when the address cannot be bound.
    #[allow(clippy::unused_async)] // async by contract, as `start`
    pub async fn start_recorder(
        recorder: Recorder,
        addr: SocketAddr,
    ) -> Result<ServerHandle, Error> {
        let listener = bind(addr).map_err(|e| Error::io(addr.to_string(), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io(addr.to_string(), e))?;
        Ok(spawn(
            listener,
            local,
            Handler::Record(recorder),
            Vec::new(),
            ServerOptions::default(),
        ))
    }
}

/// Pending connections the kernel queues before `accept` (std's default is 128). A burst of
/// thousands of connects (a load test, the 10k-connection test) otherwise overflows the queue
/// and clients wait for SYN retransmits; the kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 4096;

/// Binds a non-blocking listener with `SO_REUSEADDR` and [`LISTEN_BACKLOG`].
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

fn spawn(
    listener: TcpListener,
    addr: SocketAddr,
    handler: Handler,
    names: Vec<String>,
    options: ServerOptions,
) -> ServerHandle {
    let tracker = Arc::new(Tracker::new(options));
    let options = tracker.options();
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut conn_no: u64 = 0;
        loop {
            tokio::select! {
                () = tracker.room() => {}
                _ = rx.changed() => break,
            }
            tokio::select! {
                accepted = listener.accept() => {
                    let stream = match accepted {
                        Ok((s, _)) => s,
                        Err(e) => {
                            out_of_fds(&tracker, &e).await;
                            continue;
                        }
                    };
                    conn_no += 1;
                    serve_connection(stream, conn_no, &handler, &tracker, &graceful);
                }
                _ = rx.changed() => break,
            }
        }
        drop(listener);
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    });
    ServerHandle {
        addr,
        stop: Some(tx),
        task: Some(task),
        names,
        options,
    }
}

/// `accept` failed. Out of file descriptors (`EMFILE`, `ENFILE`), the oldest half-open (else
/// idle) connection is closed to make room; otherwise, or with nothing to close, the loop
/// backs off 5 ms instead of spinning.
async fn out_of_fds(tracker: &Tracker, e: &io::Error) {
    let fds = matches!(
        e.raw_os_error(),
        Some(n) if n == nix::errno::Errno::EMFILE as i32 || n == nix::errno::Errno::ENFILE as i32
    );
    if fds && tracker.evict_for_fd() {
        tracing::debug!("accept failed: {e}; closed the oldest half-open or idle connection");
        tokio::time::sleep(Duration::from_millis(1)).await;
    } else {
        tracing::warn!("accept failed: {e}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Spawns the task serving one accepted connection under the tracker's watchdog.
fn serve_connection(
    stream: TcpStream,
    conn_no: u64,
    handler: &Handler,
    tracker: &Arc<Tracker>,
    graceful: &hyper_util::server::graceful::GracefulShutdown,
) {
    let _ = stream.set_nodelay(true);
    let conn = tracker.accept();
    let slot = Arc::new(AtomicU8::new(0));
    let io = TokioIo::new(FaultIo {
        inner: stream,
        slot: slot.clone(),
        pending: None,
        seed: conn_no,
        conn: conn.clone(),
        tracker: tracker.clone(),
    });
    let h = handler.clone();
    // The body gets as long as the head had: a trickled body cannot hold the connection.
    let body_timeout = tracker.options().header_read_timeout;
    let (svc_conn, svc_tracker) = (conn.clone(), tracker.clone());
    let svc = hyper::service::service_fn(move |req| {
        svc_tracker.on_request(&svc_conn);
        let (h, slot) = (h.clone(), slot.clone());
        let (conn, tracker) = (svc_conn.clone(), svc_tracker.clone());
        async move {
            let resp = h.call(req, body_timeout).await;
            if let Some(f) = resp.extensions().get::<ConnectionFault>() {
                slot.store(fault_code(*f), Ordering::SeqCst);
            }
            tracker.on_response(&conn);
            Ok::<_, Infallible>(resp)
        }
    });
    let http = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, svc);
    let fut = graceful.watch(http);
    let tracker = tracker.clone();
    tokio::spawn(async move {
        tracker.watch(&conn, fut).await;
        tracker.on_close(&conn);
    });
}

fn fault_code(f: ConnectionFault) -> u8 {
    match f {
        ConnectionFault::Reset => 1,
        ConnectionFault::Empty => 2,
        ConnectionFault::MalformedChunk => 3,
        ConnectionFault::RandomClose => 4,
    }
}

/// A TCP stream that, once its slot holds a fault, replaces the response bytes with the
/// fault's bytes and then fails the write so hyper closes the connection.
struct FaultIo {
    inner: TcpStream,
    slot: Arc<AtomicU8>,
    pending: Option<(Vec<u8>, usize)>,
    seed: u64,
    /// The connection's phase: a byte read on an idle connection starts a request.
    conn: Arc<Conn>,
    tracker: Arc<Tracker>,
}

impl AsyncRead for FaultIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.tracker.on_read(&self.conn);
        }
        polled
    }
}

impl AsyncWrite for FaultIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let code = self.slot.load(Ordering::SeqCst);
        if code == 0 {
            return Pin::new(&mut self.inner).poll_write(cx, buf);
        }
        if self.pending.is_none() {
            let bytes = match code {
                1 => {
                    // SO_LINGER 0: closing sends RST instead of FIN (no blocking: zero timeout).
                    let _ = socket2::SockRef::from(&self.inner).set_linger(Some(Duration::ZERO));
                    Vec::new()
                }
                3 => b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nthis chunk size is not hex\r\n".to_vec(),
                4 => {
                    let mut b = vec![0u8; 64];
                    rand_chacha::ChaCha8Rng::seed_from_u64(self.seed).fill_bytes(&mut b);
                    b
                }
                _ => Vec::new(),
            };
            self.pending = Some((bytes, 0));
        }
        let this = &mut *self;
        if let Some((bytes, off)) = this.pending.as_mut() {
            while *off < bytes.len() {
                match Pin::new(&mut this.inner).poll_write(cx, &bytes[*off..]) {
                    Poll::Ready(Ok(0)) => break,
                    Poll::Ready(Ok(n)) => *off += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        let kind = if code == 1 {
            io::ErrorKind::ConnectionReset
        } else {
            io::ErrorKind::BrokenPipe
        };
        Poll::Ready(Err(io::Error::new(kind, "twin connection fault injected")))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
