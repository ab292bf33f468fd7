//! The fleet's claim store under load (issue 21), Postgres against `SQLite`:
//!
//! - `claims/*`: claims per second. 10,000 ready tasks and 32 simulated workers (threads),
//!   each looping claim → complete until the run is drained. One element is one task claimed
//!   and completed (two durable transactions: `SQLite` with WAL and `synchronous = FULL`,
//!   Postgres with its default `fsync = on`, `synchronous_commit = on`). Also printed, from
//!   one more drain: the latency a worker pays per claim and per completion (p50, p99), i.e.
//!   the scheduler's overhead per task as one worker sees it.
//! - `makespan/*`: a simulated 1,000-task plan (a random DAG, seeded; T-shirt estimates
//!   XS..XL scaled to 1 h = 10 ms of sleep) run by 8 simulated workers that claim through the
//!   store (critical-path priorities, dependencies unblocked by the store), against the
//!   bound max(critical path, total work / 8) and against the same list schedule simulated
//!   with no store at all (so what is left is the store's overhead).
//!
//! Both stores are shared the way one `lightsout worker --jobs N` shares its store: one
//! `SqliteClaims` (one connection behind a mutex; `SQLite` has one writer anyway) and one
//! `PgClaims` with a pool of N connections. Postgres is the server `scripts/pg-start`
//! started (`LIGHTSOUT_TEST_PG_URL`); without it only `SQLite` is measured, and a line says so.
//!
//! Run: `eval "$(scripts/pg-start)"; cargo bench -p lightsout-benches --bench fleet; scripts/pg-stop`.

#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)] // a bench reports on stdout
#![allow(clippy::cast_precision_loss)] // figures printed to a few digits

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use hdrhistogram::Histogram;
use lightsout_fleet::claims::{ClaimStore, PgClaims, PlannedTask, SqliteClaims};
use rand::{Rng, SeedableRng};
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const TASKS: usize = 10_000;
const WORKERS: usize = 32;
const LEASE: Duration = Duration::from_secs(600);

const PLAN_TASKS: usize = 1_000;
const PLAN_WORKERS: usize = 8;
/// Simulated milliseconds per estimated hour.
const MS_PER_HOUR: u64 = 10;

static RUN: AtomicU64 = AtomicU64::new(0);

fn next_run() -> String {
    format!("run-{}", RUN.fetch_add(1, Ordering::Relaxed))
}

/// Per-operation latencies of one drain, in microseconds.
struct Latency {
    claim: Histogram<u64>,
    complete: Histogram<u64>,
}

/// Enqueues a fresh run of [`TASKS`] (untimed), then times [`WORKERS`] threads draining it;
/// with `lat`, records each claim's and completion's latency.
fn drain(store: &Arc<dyn ClaimStore>, lat: Option<&Mutex<Latency>>) -> Duration {
    let run = next_run();
    let tasks: Vec<String> = (0..TASKS).map(|i| format!("T{i:05}")).collect();
    store.enqueue(&run, &tasks).expect("enqueue");
    let start = Barrier::new(WORKERS + 1);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..WORKERS)
            .map(|w| {
                let start = &start;
                s.spawn(move || {
                    let worker = format!("w{w}");
                    start.wait();
                    let mut n = 0_usize;
                    loop {
                        let t0 = Instant::now();
                        let Some(c) = store.claim(&worker, LEASE).expect("claim") else {
                            break;
                        };
                        let t1 = Instant::now();
                        store.complete(&c).expect("complete");
                        if let Some(lat) = lat {
                            let mut l = lat.lock().expect("latency");
                            let _ = l.claim.record(micros(t1 - t0));
                            let _ = l.complete.record(micros(t1.elapsed()));
                        }
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
    })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn bench_claims(c: &mut Criterion, name: &str, store: &Arc<dyn ClaimStore>) {
    let mut g = c.benchmark_group("claims");
    g.throughput(Throughput::Elements(TASKS as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    g.bench_function(format!("{name}/{TASKS}_tasks_{WORKERS}_workers"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| drain(store, None)).sum());
    });
    g.finish();
    let lat = Mutex::new(Latency {
        claim: Histogram::new(3).expect("histogram"),
        complete: Histogram::new(3).expect("histogram"),
    });
    let took = drain(store, Some(&lat));
    let l = lat.into_inner().expect("latency");
    println!(
        "fleet {name}: one drain of {TASKS} tasks by {WORKERS} workers in {:.2} s = {:.0} tasks/s, \
         {:.1} us of store time per task across the fleet; per worker: claim p50 {} us p99 {} us, \
         complete p50 {} us p99 {} us",
        took.as_secs_f64(),
        TASKS as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / TASKS as f64,
        l.claim.value_at_quantile(0.5),
        l.claim.value_at_quantile(0.99),
        l.complete.value_at_quantile(0.5),
        l.complete.value_at_quantile(0.99),
    );
}

/// A random DAG of [`PLAN_TASKS`] tasks (seeded): each task depends on 0 to 3 of the 60
/// tasks before it; estimates are T-shirt sizes XS 1 h, S 2 h, M 4 h, L 8 h, XL 16 h drawn
/// 20/30/30/15/5 %. Priorities are bottom levels (the longest path from the task to the end),
/// so the store hands out tasks in critical-path order.
struct Plan {
    tasks: Vec<PlannedTask>,
    /// Milliseconds of simulated work per task.
    ms: Vec<u64>,
    critical_path_ms: u64,
    work_ms: u64,
}

fn plan() -> Plan {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
    let mut ms = Vec::with_capacity(PLAN_TASKS);
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(PLAN_TASKS);
    for i in 0..PLAN_TASKS {
        let hours = match rng.gen_range(0..100) {
            0..20 => 1,
            20..50 => 2,
            50..80 => 4,
            80..95 => 8,
            _ => 16,
        };
        ms.push(hours * MS_PER_HOUR);
        let k = if i == 0 {
            0
        } else {
            rng.gen_range(0..=3.min(i))
        };
        let mut d: Vec<usize> = (0..k)
            .map(|_| rng.gen_range(i.saturating_sub(60)..i))
            .collect();
        d.sort_unstable();
        d.dedup();
        deps.push(d);
    }
    // Longest path ending at each task (top) and starting at it (bottom level).
    let mut top = vec![0_u64; PLAN_TASKS];
    for i in 0..PLAN_TASKS {
        top[i] = deps[i].iter().map(|&d| top[d]).max().unwrap_or(0) + ms[i];
    }
    let mut bottom = ms.clone();
    for i in (0..PLAN_TASKS).rev() {
        for &d in &deps[i] {
            bottom[d] = bottom[d].max(bottom[i] + ms[d]);
        }
    }
    let name = |i: usize| format!("P{i:04}");
    let tasks = (0..PLAN_TASKS)
        .map(|i| PlannedTask {
            task: name(i),
            deps: deps[i].iter().map(|&d| name(d)).collect(),
            estimate_ms: Some(ms[i]),
            priority: i64::try_from(bottom[i]).unwrap_or(i64::MAX),
        })
        .collect();
    Plan {
        tasks,
        critical_path_ms: top.iter().copied().max().unwrap_or(0),
        work_ms: ms.iter().sum(),
        ms,
    }
}

/// The same list schedule with no store: an event simulation in which a free worker takes
/// the ready task of highest priority at once. Its makespan, in ms.
fn list_schedule(p: &Plan) -> u64 {
    let index: HashMap<&str, usize> = p
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.task.as_str(), i))
        .collect();
    let mut waits: Vec<usize> = p.tasks.iter().map(|t| t.deps.len()).collect();
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); p.tasks.len()];
    for (i, t) in p.tasks.iter().enumerate() {
        for d in &t.deps {
            after[index[d.as_str()]].push(i);
        }
    }
    // Ready: by priority, then index (the store's order: priority, then age).
    let mut ready: BinaryHeap<(i64, std::cmp::Reverse<usize>)> = (0..p.tasks.len())
        .filter(|&i| waits[i] == 0)
        .map(|i| (p.tasks[i].priority, std::cmp::Reverse(i)))
        .collect();
    let mut running: BinaryHeap<std::cmp::Reverse<(u64, usize)>> = BinaryHeap::new();
    let (mut now, mut free) = (0_u64, PLAN_WORKERS);
    loop {
        while free > 0 {
            let Some((_, std::cmp::Reverse(i))) = ready.pop() else {
                break;
            };
            running.push(std::cmp::Reverse((now + p.ms[i], i)));
            free -= 1;
        }
        let Some(std::cmp::Reverse((t, i))) = running.pop() else {
            return now;
        };
        now = t;
        free += 1;
        for &k in &after[i] {
            waits[k] -= 1;
            if waits[k] == 0 {
                ready.push((p.tasks[k].priority, std::cmp::Reverse(k)));
            }
        }
    }
}

/// Runs the plan once through `store` with [`PLAN_WORKERS`] threads; the makespan.
fn run_plan(store: &Arc<dyn ClaimStore>, p: &Plan) -> Duration {
    let run = next_run();
    store.enqueue_plan(&run, &p.tasks).expect("enqueue plan");
    let ms: HashMap<&str, u64> = p
        .tasks
        .iter()
        .zip(&p.ms)
        .map(|(t, &m)| (t.task.as_str(), m))
        .collect();
    let done = AtomicUsize::new(0);
    let start = Barrier::new(PLAN_WORKERS + 1);
    std::thread::scope(|s| {
        for w in 0..PLAN_WORKERS {
            let (start, done, ms) = (&start, &done, &ms);
            s.spawn(move || {
                let worker = format!("w{w}");
                start.wait();
                while done.load(Ordering::SeqCst) < PLAN_TASKS {
                    match store.claim(&worker, LEASE).expect("claim") {
                        Some(c) => {
                            std::thread::sleep(Duration::from_millis(ms[c.task.as_str()]));
                            store.complete(&c).expect("complete");
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                        // Nothing ready yet: poll again shortly (a worker would LISTEN).
                        None => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
            });
        }
        start.wait();
        let t0 = Instant::now();
        while done.load(Ordering::SeqCst) < PLAN_TASKS {
            std::thread::sleep(Duration::from_micros(200));
        }
        t0.elapsed()
    })
}

fn bench_makespan(c: &mut Criterion, name: &str, store: &Arc<dyn ClaimStore>, p: &Plan) {
    let makespans = Mutex::new(Vec::new());
    let mut g = c.benchmark_group("makespan");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    g.bench_function(
        format!("{name}/{PLAN_TASKS}_tasks_{PLAN_WORKERS}_workers"),
        |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let m = run_plan(store, p);
                        makespans.lock().expect("makespans").push(m);
                        m
                    })
                    .sum()
            });
        },
    );
    g.finish();
    let mut m: Vec<f64> = makespans
        .into_inner()
        .expect("makespans")
        .iter()
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    m.sort_by(f64::total_cmp);
    let median = m[m.len() / 2];
    let bound = p
        .critical_path_ms
        .max(p.work_ms.div_ceil(PLAN_WORKERS as u64)) as f64;
    let list = list_schedule(p) as f64;
    println!(
        "fleet {name}: makespan of {PLAN_TASKS} tasks on {PLAN_WORKERS} workers: median {median:.0} ms \
         over {} runs (min {:.0}, max {:.0}); bound max(critical path {} ms, work/{PLAN_WORKERS} {} ms) \
         = {bound:.0} ms, ratio {:.3}; the same list schedule without a store {list:.0} ms \
         (ratio {:.3}); store overhead {:.2} ms of worker time per task",
        m.len(),
        m[0],
        m[m.len() - 1],
        p.critical_path_ms,
        p.work_ms.div_ceil(PLAN_WORKERS as u64),
        median / bound,
        list / bound,
        (median - list) * PLAN_WORKERS as f64 / PLAN_TASKS as f64,
    );
}

fn benches(c: &mut Criterion) {
    let p = plan();
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite: Arc<dyn ClaimStore> =
        Arc::new(SqliteClaims::open(&dir.path().join("state.db")).expect("sqlite store"));
    let pg: Option<Arc<dyn ClaimStore>> = if lightsout_fleet::testing::server_url().is_some() {
        let url = lightsout_fleet::testing::fresh_database("bench");
        Some(Arc::new(
            PgClaims::connect(&url, WORKERS).expect("pg store"),
        ))
    } else {
        eprintln!(
            "fleet bench: Postgres not measured: LIGHTSOUT_TEST_PG_URL is not set \
             (eval \"$(scripts/pg-start)\" first)"
        );
        None
    };
    let only = std::env::var("LIGHTSOUT_BENCH_FLEET").unwrap_or_default();
    let want = |part: &str| only.is_empty() || only.split(',').any(|o| o == part);
    for (name, store) in [("sqlite", Some(&sqlite)), ("postgres", pg.as_ref())] {
        let Some(store) = store else { continue };
        if want("makespan") {
            bench_makespan(c, name, store, &p);
        }
        if want("claims") {
            bench_claims(c, name, store);
        }
    }
}

criterion_group!(fleet, benches);
criterion_main!(fleet);
