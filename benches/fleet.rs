//! Task claims per second on Postgres against `SQLite` (issue 21): 10,000 ready tasks and 32
//! simulated workers (threads), each looping claim → complete until the run is drained. One
//! element is one task claimed and completed (two durable transactions: `SQLite` with WAL and
//! `synchronous = FULL`, Postgres with its default `fsync = on`, `synchronous_commit = on`).
//!
//! Both stores are shared the way one `lightsout worker --jobs 32` shares its store: one
//! `SqliteClaims` (one connection behind a mutex; `SQLite` has one writer anyway) and one
//! `PgClaims` with a pool of 32 connections. Postgres is the server `scripts/pg-start`
//! started (`LIGHTSOUT_TEST_PG_URL`); without it only `SQLite` is measured, and a line says so.
//!
//! Run: `eval "$(scripts/pg-start)"; cargo bench -p lightsout-benches --bench fleet; scripts/pg-stop`.

#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)] // a bench reports on stdout

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lightsout_fleet::claims::{ClaimStore, PgClaims, SqliteClaims};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const TASKS: usize = 10_000;
const WORKERS: usize = 32;
const LEASE: Duration = Duration::from_secs(600);

/// Enqueues a fresh run of [`TASKS`] (untimed), then times [`WORKERS`] threads draining it.
fn drain(store: &Arc<dyn ClaimStore>, run: &str) -> Duration {
    let tasks: Vec<String> = (0..TASKS).map(|i| format!("T{i:05}")).collect();
    store.enqueue(run, &tasks).expect("enqueue");
    let start = Arc::new(Barrier::new(WORKERS + 1));
    let threads: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (store, start) = (store.clone(), start.clone());
            std::thread::spawn(move || {
                let worker = format!("w{w}");
                start.wait();
                let mut n = 0_usize;
                while let Some(c) = store.claim(&worker, LEASE).expect("claim") {
                    store.complete(&c).expect("complete");
                    n += 1;
                }
                n
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    let done: usize = threads.into_iter().map(|h| h.join().expect("worker")).sum();
    let took = t0.elapsed();
    assert_eq!(done, TASKS, "every task claimed once");
    took
}

fn bench_backend(c: &mut Criterion, name: &str, store: &Arc<dyn ClaimStore>) {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let mut g = c.benchmark_group("claims");
    g.throughput(Throughput::Elements(TASKS as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    g.bench_function(format!("{name}/{TASKS}_tasks_{WORKERS}_workers"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    drain(
                        store,
                        &format!("run-{}", RUN.fetch_add(1, Ordering::Relaxed)),
                    )
                })
                .sum()
        });
    });
    g.finish();
}

fn bench_claims(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite: Arc<dyn ClaimStore> =
        Arc::new(SqliteClaims::open(&dir.path().join("state.db")).expect("sqlite store"));
    bench_backend(c, "sqlite", &sqlite);
    if lightsout_fleet::testing::server_url().is_none() {
        eprintln!(
            "fleet bench: Postgres not measured: LIGHTSOUT_TEST_PG_URL is not set \
             (eval \"$(scripts/pg-start)\" first)"
        );
        return;
    }
    let url = lightsout_fleet::testing::fresh_database("bench");
    let pg: Arc<dyn ClaimStore> = Arc::new(PgClaims::connect(&url, WORKERS).expect("pg store"));
    bench_backend(c, "postgres", &pg);
}

criterion_group!(benches, bench_claims);
criterion_main!(benches);
