//! Helpers for tests and benches that need a real `PostgreSQL` server (feature `testing`).
//!
//! The server is the one `scripts/pg-start` starts (`scripts/test` does it around
//! `cargo test`); its URL comes from [`TEST_PG_URL`]. Without it the helpers panic with a
//! message saying how to start one: the Postgres tests fail, they never skip.

use std::sync::atomic::{AtomicU32, Ordering};

/// The environment variable holding the test server's URL
/// (`postgres://postgres@127.0.0.1:PORT/postgres`, printed by `scripts/pg-start`).
pub const TEST_PG_URL: &str = "LIGHTSOUT_TEST_PG_URL";

/// The environment variable holding the test server's directory (for `scripts/pg-restart`).
pub const TEST_PG_DIR: &str = "LIGHTSOUT_TEST_PG_DIR";

/// The test server's URL, if [`TEST_PG_URL`] is set.
pub fn server_url() -> Option<String> {
    std::env::var(TEST_PG_URL).ok().filter(|u| !u.is_empty())
}

/// The test server's URL.
///
/// # Panics
/// When [`TEST_PG_URL`] is not set, with how to start a server.
pub fn require_server_url() -> String {
    server_url().unwrap_or_else(|| {
        panic!(
            "{TEST_PG_URL} is not set: the Postgres tests need a real server. Start one with \
             `eval \"$(scripts/pg-start)\"` (stop it with `scripts/pg-stop`), or run \
             `scripts/test`, which does both"
        )
    })
}

/// Creates an empty database on the test server and returns its URL, so each test has a
/// store of its own.
///
/// # Panics
/// When [`TEST_PG_URL`] is not set, or the database cannot be created.
pub fn fresh_database(label: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let url = require_server_url();
    let name = format!(
        "lightsout_{label}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the test database");
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test server {url}: {e}"));
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        drop(client);
        let _ = driver.await;
    });
    let base = url.split_once('?').map_or(url.as_str(), |(b, _)| b);
    let (server, _db) = base.rsplit_once('/').expect("a postgres:// URL");
    format!("{server}/{name}")
}

/// Restarts the test server (fast shutdown: every connection is cut) with
/// `scripts/pg-restart`, and returns once it accepts connections again.
///
/// # Panics
/// When [`TEST_PG_DIR`] is not set or the restart fails.
pub fn restart_server() {
    let dir = std::env::var(TEST_PG_DIR).unwrap_or_else(|_| {
        panic!(
            "{TEST_PG_DIR} is not set: start the test server with `eval \"$(scripts/pg-start)\"`"
        )
    });
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-restart");
    let status = std::process::Command::new(&script)
        .arg(&dir)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        status.success(),
        "{} {dir} failed: {status}",
        script.display()
    );
}

/// An error [`crate::Error::is_connection`] calls a lost connection (a pool that timed out
/// waiting for one), for test doubles of the stores: what a Postgres store returns once the
/// server has been unreachable for [`crate::RECONNECT_FOR`].
pub fn lost_connection(server: &str) -> crate::Error {
    crate::Error::Pool {
        server: server.to_owned(),
        source: deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait),
    }
}
