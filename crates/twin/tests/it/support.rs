//! Shared helpers: start a twin on a free loopback port, a reqwest client, httpbin.

use lightsout_twin::{ServerHandle, Twin, TwinOptions, TwinServer, builtin};
use std::net::SocketAddr;

pub(crate) fn opts() -> TwinOptions {
    TwinOptions {
        latency: false,
        ..TwinOptions::default()
    }
}

pub(crate) async fn serve(name: &str) -> (Twin, ServerHandle) {
    let twin = builtin::load(name, opts()).unwrap();
    let server = TwinServer::start(vec![twin.clone()], SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    (twin, server)
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Advances the twin's virtual clock through the control API.
pub(crate) async fn advance(c: &reqwest::Client, url: &str, ms: u64) -> u64 {
    let r: serde_json::Value = c
        .post(format!("{url}/__twin/clock"))
        .json(&serde_json::json!({"advance_ms": ms}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["now_ms"].as_u64().unwrap()
}

/// A real httpbin (PyPI) under gunicorn on a free loopback port; killed on drop.
pub(crate) struct Httpbin {
    child: std::process::Child,
    pub(crate) url: String,
}

impl Httpbin {
    pub(crate) async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "gunicorn",
                "-w",
                "2",
                "-b",
                &format!("127.0.0.1:{port}"),
                "httpbin:app",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 with httpbin + gunicorn (scripts/test installs them)");
        let url = format!("http://127.0.0.1:{port}");
        let c = client();
        // Readiness: poll until gunicorn answers (bounded, ~15 s).
        for _ in 0..300 {
            if c.get(format!("{url}/get"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Httpbin { child, url };
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("httpbin did not start on {url}; is `pip install httpbin gunicorn` done?");
    }
}

impl Drop for Httpbin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
