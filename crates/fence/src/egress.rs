//! The named-hosts egress proxy of `network = "hosts"`.
//!
//! An agent that must reach its model API, and nothing else, runs in a fresh network
//! namespace whose only interface is its own loopback. Inside that namespace, on
//! `127.0.0.1:3128`, the fence serves an HTTP `CONNECT` proxy (RFC 9110 §9.3.6), and the
//! agent gets `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` pointing at it. The proxy's listening
//! socket is created by a thread that has entered the agent's namespace with `setns(2)`;
//! every outbound connection is made by threads that stay in the factory's namespace, so the
//! agent can reach exactly the hosts of [`HostList`], through the proxy, and no other address
//! at all (there is no route out of its namespace).
//!
//! Only `CONNECT` tunnels are served (HTTPS and any TLS protocol); a plain-HTTP request is
//! refused. A refused tunnel answers `403 Forbidden` and is recorded, by host and port, for
//! the call's [`FenceReport`](super::policy::FenceReport).

use super::FenceError;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// The port the proxy listens on inside the agent's network namespace. Each agent has a
/// namespace of its own, so the port is always free.
pub const PROXY_PORT: u16 = 3128;

/// Most refused destinations kept for one call.
const MAX_DENIED: usize = 100;

/// Longest request head read from the agent, in bytes.
const MAX_HEAD: usize = 16 * 1024;

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
    stop: Arc<AtomicBool>,
    denied: Arc<Mutex<Vec<String>>>,
    listener: Option<std::thread::JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        let stop = Arc::new(AtomicBool::new(false));
        let denied = Arc::new(Mutex::new(Vec::new()));

        // Handlers are started from this side, so their outbound sockets are created in
        // the factory's namespace.
        let (conn_tx, conn_rx) = mpsc::channel::<TcpStream>();
        {
            let denied = Arc::clone(&denied);
            std::thread::spawn(move || {
                for stream in conn_rx {
                    let hosts = Arc::clone(&hosts);
                    let denied = Arc::clone(&denied);
                    std::thread::spawn(move || serve(stream, &hosts, &denied));
                }
            });
        }
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let stop_l = Arc::clone(&stop);
        let listener = std::thread::spawn(move || {
            // This thread, and only this thread, moves into the agent's namespace.
            if let Err(e) = nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET) {
                let _ = ready_tx.send(Err(format!(
                    "cannot enter the agent's network namespace ({e}); network = \"hosts\" \
                     needs the factory to run as root (CAP_SYS_ADMIN)"
                )));
                return;
            }
            let l = match TcpListener::bind(("127.0.0.1", PROXY_PORT))
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
            {
                Ok(l) => l,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!(
                        "cannot listen on 127.0.0.1:{PROXY_PORT} in the agent's namespace: {e}"
                    )));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            while !stop_l.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        if conn_tx.send(s).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                stop,
                denied,
                listener: Some(listener),
            }),
            Ok(Err(detail)) => Err(FenceError::IsolationUnavailable { detail }),
            Err(_) => Err(FenceError::IsolationUnavailable {
                detail: "the egress proxy thread ended before listening".into(),
            }),
        }
    }

    /// Stops accepting (open tunnels end with the agent's process) and returns the refused
    /// destinations, in the order first seen.
    pub(crate) fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.listener.take() {
            let _ = h.join();
        }
        lock(&self.denied).clone()
    }
}

impl Drop for Egress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Splits `host:port` (or `[v6]:port`) of a `CONNECT` target.
fn split_target(target: &str) -> Option<(String, u16)> {
    let (host, port) = target.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), port.parse().ok()?))
}

fn refuse(mut client: TcpStream, denied: &Mutex<Vec<String>>, what: String) {
    let body = format!("lightsout fence: {what} is not in [fence] hosts\n");
    let _ = write!(
        client,
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\nX-Lightsout-Fence: denied\r\n\r\n{body}",
        body.len()
    );
    let mut d = lock(denied);
    if d.len() < MAX_DENIED && !d.contains(&what) {
        d.push(what);
    }
}

/// Serves one proxy connection: a `CONNECT` to an allowed host becomes a tunnel, anything
/// else is refused.
fn serve(mut client: TcpStream, hosts: &HostList, denied: &Mutex<Vec<String>>) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    let end = loop {
        match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > MAX_HEAD {
            return;
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let mut parts = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !method.eq_ignore_ascii_case("CONNECT") {
        let host = target
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or(target);
        refuse(client, denied, format!("plain HTTP to {host}"));
        return;
    }
    let Some((host, port)) = split_target(target) else {
        refuse(client, denied, format!("`{target}`"));
        return;
    };
    if !hosts.allows(&host, port) {
        refuse(client, denied, format!("{host}:{port}"));
        return;
    }
    let upstream = (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| {
            addrs.find_map(|a| TcpStream::connect_timeout(&a, Duration::from_secs(10)).ok())
        });
    let Some(mut upstream) = upstream else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let _ = client.set_read_timeout(None);
    if end < head.len() && upstream.write_all(&head[end..]).is_err() {
        return;
    }
    let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = up.join();
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn connect_targets_split_with_ipv6() {
        assert_eq!(split_target("a.b:443"), Some(("a.b".into(), 443)));
        assert_eq!(split_target("[::1]:8443"), Some(("::1".into(), 8443)));
        assert_eq!(split_target("nope"), None);
    }
}
