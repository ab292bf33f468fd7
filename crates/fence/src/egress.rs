//! The named-hosts egress proxy of `network = "hosts"`.
//!
//! An agent that must reach its model API, and nothing else, runs in a fresh network
//! namespace whose only interface is its own loopback. Inside that namespace, on
//! `127.0.0.1:3128`, the fence serves an HTTP `CONNECT` proxy (RFC 9110 §9.3.6), and the
//! agent gets `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` pointing at it. The proxy's listening
//! socket is created by a thread that has entered the agent's namespace with `setns(2)` and
//! ends right after; the server itself (hyper's HTTP/1.1 server, its `CONNECT` upgrade and
//! `tokio::io::copy_bidirectional`) runs on a thread that stays in the factory's namespace,
//! so every outbound connection is made there. The agent can reach exactly the hosts of
//! [`HostList`], through the proxy, and no other address at all (there is no route out of
//! its namespace).
//!
//! Only `CONNECT` tunnels are served (HTTPS and any TLS protocol); a plain-HTTP request is
//! refused. A refused request answers `403 Forbidden` with `X-Lightsout-Fence: denied` and
//! is recorded, by host and port, for the call's
//! [`FenceReport`](super::policy::FenceReport); so is a request hyper cannot parse. A request
//! head must arrive within 30 s and fit in 16 KiB.
//!
//! Sources: RFC 9110 §9.3.6; hyper's `upgrade` module
//! (<https://docs.rs/hyper/1/hyper/upgrade/index.html>) and its `http_proxy` example.

use super::FenceError;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use lightsout_stdx::lock;
use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The port the proxy listens on inside the agent's network namespace. Each agent has a
/// namespace of its own, so the port is always free.
pub const PROXY_PORT: u16 = 3128;

/// Most refused destinations kept for one call.
const MAX_DENIED: usize = 100;

/// Longest request head read from the agent, in bytes (hyper answers `431` beyond it).
const MAX_HEAD: usize = 16 * 1024;

/// Longest wait for a request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait for one upstream address to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a request hyper could not parse is recorded as.
const MALFORMED: &str = "a malformed proxy request";

/// The hosts an agent may reach (`[fence] hosts`): `host` (port 443), `host:port`, or
/// `*.domain` (any subdomain, port 443) and `*.domain:port`. Names compare without case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostList(Vec<(String, u16)>);

impl HostList {
    /// Parses the `[fence] hosts` entries.
    ///
    /// # Errors
    /// [`FenceError::IsolationUnavailable`] naming an entry with no host or an invalid port
    /// (the fence refuses to start rather than guess).
    pub fn parse(entries: &[String]) -> Result<Self, FenceError> {
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let e = e.trim().to_ascii_lowercase();
            let (host, port) = match e.rsplit_once(':') {
                Some((h, p)) => {
                    let port = p
                        .parse::<u16>()
                        .map_err(|_| FenceError::IsolationUnavailable {
                            detail: format!("[fence] hosts entry `{e}` has an invalid port"),
                        })?;
                    (h.to_owned(), port)
                }
                None => (e.clone(), 443),
            };
            if host.is_empty() {
                return Err(FenceError::IsolationUnavailable {
                    detail: format!("[fence] hosts entry `{e}` names no host"),
                });
            }
            out.push((host, port));
        }
        Ok(Self(out))
    }

    /// Whether `host:port` may be reached.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.0.iter().any(|(pattern, p)| {
            *p == port
                && match pattern.strip_prefix("*.") {
                    Some(domain) => host
                        .strip_suffix(domain)
                        .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
                    None => *pattern == host,
                }
        })
    }

    /// Whether the list is empty (the agent can reach nothing).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A running proxy for one agent call; [`Egress::finish`] stops it.
pub(crate) struct Egress {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    denied: Arc<Mutex<Vec<String>>>,
    server: Option<std::thread::JoinHandle<()>>,
}

impl Egress {
    /// Serves the proxy inside the network namespace of process `pid` (the sandbox's
    /// process of the call, which has already entered the new namespace).
    ///
    /// # Errors
    /// [`FenceError::IsolationUnavailable`] when the namespace cannot be entered (this
    /// needs `CAP_SYS_ADMIN`, as root) or the port cannot be bound in it.
    pub(crate) fn start(pid: u32, hosts: Arc<HostList>) -> Result<Self, FenceError> {
        let ns_path = format!("/proc/{pid}/ns/net");
        let ns = std::fs::File::open(&ns_path).map_err(|e| FenceError::IsolationUnavailable {
            detail: format!("cannot open {ns_path}: {e}"),
        })?;
        // This thread, and only this thread, moves into the agent's namespace; the socket
        // it binds stays there when the thread ends.
        let bound = std::thread::spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                format!(
                    "cannot enter the agent's network namespace ({e}); network = \"hosts\" \
                     needs the factory to run as root (CAP_SYS_ADMIN)"
                )
            })?;
            TcpListener::bind(("127.0.0.1", PROXY_PORT)).map_err(|e| {
                format!("cannot listen on 127.0.0.1:{PROXY_PORT} in the agent's namespace: {e}")
            })
        })
        .join()
        .unwrap_or_else(|_| Err("the egress proxy's namespace thread panicked".into()))
        .map_err(|detail| FenceError::IsolationUnavailable { detail })?;
        Self::serve(bound, hosts)
    }

    /// Serves the proxy on `listener` (already bound, in whichever namespace) from a new
    /// thread of the caller's namespace, where every upstream connection is made.
    ///
    /// # Errors
    /// [`FenceError::IsolationUnavailable`] when the listener or the server's runtime
    /// cannot be set up.
    fn serve(listener: TcpListener, hosts: Arc<HostList>) -> Result<Self, FenceError> {
        let unavailable = |what: &str, e: std::io::Error| FenceError::IsolationUnavailable {
            detail: format!("the egress proxy cannot start ({what}: {e})"),
        };
        listener
            .set_nonblocking(true)
            .map_err(|e| unavailable("non-blocking listener", e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| unavailable("runtime", e))?;
        let denied = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let server = {
            let denied = Arc::clone(&denied);
            std::thread::spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => {
                            let _ = ready_tx.send(Ok(()));
                            l
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    loop {
                        tokio::select! {
                            _ = &mut stopped => return,
                            accepted = listener.accept() => match accepted {
                                Ok((stream, _)) => {
                                    tokio::spawn(connection(
                                        stream,
                                        Arc::clone(&hosts),
                                        Arc::clone(&denied),
                                    ));
                                }
                                // Out of descriptors and the like: wait, keep serving.
                                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                            },
                        }
                    }
                });
                // Open tunnels end here; a name lookup still running is not waited for.
                runtime.shutdown_background();
            })
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                stop: Some(stop),
                denied,
                server: Some(server),
            }),
            Ok(Err(e)) => Err(unavailable("listener", e)),
            Err(_) => Err(FenceError::IsolationUnavailable {
                detail: "the egress proxy thread ended before listening".into(),
            }),
        }
    }

    /// Stops the proxy (open tunnels end; the agent's process is gone by now) and returns
    /// the refused destinations, in the order first seen.
    pub(crate) fn finish(mut self) -> Vec<String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = h.join();
        }
        lock(&self.denied).clone()
    }
}

impl Drop for Egress {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Records a refused destination (once, at most [`MAX_DENIED`]).
fn record(denied: &Mutex<Vec<String>>, what: String) {
    let mut d = lock(denied);
    if d.len() < MAX_DENIED && !d.contains(&what) {
        d.push(what);
    }
}

/// Serves one connection of the agent with hyper's HTTP/1.1 server.
async fn connection(
    stream: tokio::net::TcpStream,
    hosts: Arc<HostList>,
    denied: Arc<Mutex<Vec<String>>>,
) {
    let service = {
        let denied = Arc::clone(&denied);
        hyper::service::service_fn(move |req| {
            let hosts = Arc::clone(&hosts);
            let denied = Arc::clone(&denied);
            async move { Ok::<_, Infallible>(handle(req, &hosts, &denied).await) }
        })
    };
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .auto_date_header(false)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    if let Err(e) = served
        && e.is_parse()
    {
        record(&denied, MALFORMED.into());
    }
}

fn response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res
}

/// The `403` of a refused request, recorded as `what`.
fn refuse(denied: &Mutex<Vec<String>>, what: String) -> Response<Full<Bytes>> {
    let mut res = response(
        StatusCode::FORBIDDEN,
        format!("lightsout fence: {what} is not in [fence] hosts\n"),
    );
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    h.insert(CONNECTION, HeaderValue::from_static("close"));
    h.insert("x-lightsout-fence", HeaderValue::from_static("denied"));
    record(denied, what);
    res
}

/// Answers one request: a `CONNECT` to an allowed host becomes a tunnel once the `200` is
/// sent (hyper hands the connection over, with any bytes the client sent early); anything
/// else is refused.
async fn handle(
    req: Request<Incoming>,
    hosts: &HostList,
    denied: &Mutex<Vec<String>>,
) -> Response<Full<Bytes>> {
    if req.method() != Method::CONNECT {
        let host = req
            .uri()
            .authority()
            .map(ToString::to_string)
            .or_else(|| {
                req.headers()
                    .get(HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| req.uri().to_string());
        return refuse(denied, format!("plain HTTP to {host}"));
    }
    let target = req.uri().authority().and_then(|a| {
        let host = a.host().trim_start_matches('[').trim_end_matches(']');
        Some((host.to_owned(), a.port_u16()?))
    });
    let Some((host, port)) = target else {
        return refuse(denied, format!("`{}`", req.uri()));
    };
    if !hosts.allows(&host, port) {
        return refuse(denied, format!("{host}:{port}"));
    }
    let Some(mut upstream) = dial(&host, port).await else {
        return response(StatusCode::BAD_GATEWAY, String::new());
    };
    tokio::spawn(async move {
        if let Ok(upgraded) = hyper::upgrade::on(req).await {
            let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(upgraded), &mut upstream).await;
        }
    });
    let mut res = response(StatusCode::OK, String::new());
    res.extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(
            b"Connection Established",
        ));
    res
}

/// Connects to the first address of `host:port` that answers within [`CONNECT_TIMEOUT`].
async fn dial(host: &str, port: u16) -> Option<tokio::net::TcpStream> {
    let addrs = tokio::net::lookup_host((host, port)).await.ok()?;
    for addr in addrs {
        if let Ok(Ok(s)) =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await
        {
            return Some(s);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    #[test]
    fn host_list_matches_names_ports_and_subdomains() {
        let h = HostList::parse(&[
            "api.anthropic.com".into(),
            "127.0.0.1:8080".into(),
            "*.example.org".into(),
        ])
        .unwrap();
        assert!(h.allows("api.anthropic.com", 443));
        assert!(h.allows("API.Anthropic.com.", 443));
        assert!(!h.allows("api.anthropic.com", 80));
        assert!(!h.allows("evil-api.anthropic.com", 443));
        assert!(h.allows("127.0.0.1", 8080));
        assert!(h.allows("a.b.example.org", 443));
        assert!(!h.allows("example.org", 443));
        assert!(!h.allows("badexample.org", 443));
        assert!(HostList::parse(&["x:notaport".into()]).is_err());
        assert!(HostList::default().is_empty());
    }

    /// Reads a response head (up to the blank line) byte by byte, leaving the rest.
    fn head(s: &mut std::net::TcpStream) -> String {
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        while !out.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap() == 1 {
            out.push(b[0]);
        }
        String::from_utf8(out).unwrap()
    }

    /// The proxy served in this process's own namespace (as the fence serves it in the
    /// agent's): a `CONNECT` to a listed host tunnels both ways, including bytes sent before
    /// the `200` arrived; a plain-HTTP request, a `CONNECT` to an unlisted host or port and
    /// an unparsable request are refused with `403` (the last closed) and each is recorded.
    #[test]
    fn only_connect_to_a_listed_host_is_tunnelled_and_every_refusal_is_recorded() {
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = upstream.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in upstream.incoming() {
                let Ok(mut s) = s else { return };
                let mut buf = [0u8; 4];
                while s.read_exact(&mut buf).is_ok() {
                    let _ = s.write_all(&buf.map(|c| c.to_ascii_uppercase()));
                }
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = listener.local_addr().unwrap();
        let hosts = Arc::new(HostList::parse(&[format!("127.0.0.1:{port}")]).unwrap());
        let egress = Egress::serve(listener, hosts).unwrap();

        // Allowed: the first bytes of the tunnel travel with the request head.
        let mut c = std::net::TcpStream::connect(proxy).unwrap();
        write!(
            c,
            "CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\nping"
        )
        .unwrap();
        assert!(head(&mut c).starts_with("HTTP/1.1 200 Connection Established\r\n"));
        let mut echoed = [0u8; 4];
        c.read_exact(&mut echoed).unwrap();
        assert_eq!(&echoed, b"PING");

        let refused = |request: &str| {
            let mut c = std::net::TcpStream::connect(proxy).unwrap();
            c.write_all(request.as_bytes()).unwrap();
            let mut text = String::new();
            let _ = c.read_to_string(&mut text);
            text
        };
        let plain = refused("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert!(plain.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{plain}");
        assert!(plain.contains("x-lightsout-fence: denied"), "{plain}");
        let unlisted = refused("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
        assert!(
            unlisted.starts_with("HTTP/1.1 403 Forbidden\r\n"),
            "{unlisted}"
        );
        let other_port = refused(&format!("CONNECT 127.0.0.1:{} HTTP/1.1\r\n\r\n", port ^ 1));
        assert!(
            other_port.starts_with("HTTP/1.1 403 Forbidden\r\n"),
            "{other_port}"
        );
        let origin = refused("GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n");
        assert!(origin.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{origin}");
        let garbage = refused("\x16\x03\x01 not http at all\r\n\r\n");
        assert!(!garbage.contains(" 200 "), "{garbage}");

        // The tunnel still works after the refusals on other connections.
        c.write_all(b"pong").unwrap();
        c.read_exact(&mut echoed).unwrap();
        assert_eq!(&echoed, b"PONG");
        drop(c);
        assert_eq!(
            egress.finish(),
            vec![
                "plain HTTP to example.com".to_owned(),
                "example.com:443".into(),
                format!("127.0.0.1:{}", port ^ 1),
                "plain HTTP to 10.0.0.1".into(),
                MALFORMED.into(),
            ]
        );
    }
}
