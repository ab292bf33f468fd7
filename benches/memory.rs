//! Decision memory on 100k records: insert rate, and context-pack latency side by side with
//! the raw FTS5 query it wraps (`MATCH ... ORDER BY rank LIMIT 64` on the index alone: the 32 candidates the pack wants, fetched twice over).
//!
//! Goal (issue 6): context pack ≤ 1.5× raw, p99 < 5 ms. Besides criterion's estimates, the
//! setup prints p50/p99 of both over the same query set, measured with an HDR histogram.
//! "Raw" runs the same `MATCH` expression the store plans (the 8 rarest query words); the
//! naive query with every word `OR`ed is printed too, as the reference without pruning.

#![allow(clippy::print_stdout, missing_docs)] // a bench reports on stdout

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use hdrhistogram::Histogram;
use lightsout_memory::{Change, Filter, Memory, NewRecord, Query, SqliteStore, Store};
use std::hint::black_box;
use std::time::{Duration, Instant};

const RECORDS: usize = 100_000;
const BATCH: usize = 1_000;
const QUERIES: usize = 200;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A 4,000-word vocabulary of pseudo-words, drawn with a Zipf-like skew (the square of a
/// uniform index), so some words are common and most are rare, as in prose.
struct Vocab(Vec<String>);
impl Vocab {
    fn new() -> Self {
        const SYL: [&str; 20] = [
            "ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "fa", "gu", "ho", "ji", "ve",
            "zo", "bi", "ce", "xu", "wa", "yo",
        ];
        let mut v = Vec::new();
        for a in SYL {
            for b in SYL {
                for c in ["n", "r", "s", "t", "l", "m", "k", "d", "x", "z"] {
                    v.push(format!("{a}{b}{c}"));
                }
            }
        }
        Vocab(v)
    }
    fn word(&self, rng: &mut Rng) -> &str {
        let u = rng.below(1 << 16) as f64 / f64::from(1 << 16);
        &self.0[((u * u) * self.0.len() as f64) as usize]
    }
    fn words(&self, rng: &mut Rng, n: usize) -> String {
        (0..n).map(|_| self.word(rng)).collect::<Vec<_>>().join(" ")
    }
}

fn record(v: &Vocab, rng: &mut Rng) -> NewRecord {
    let mut r = NewRecord::decision(v.words(rng, 6), v.words(rng, 30));
    r.context = v.words(rng, 20);
    r.consequences = v.words(rng, 10);
    r.scope.paths.push(format!("src/mod{}/**", rng.below(200)));
    r.scope.tags = vec![v.word(rng).to_owned(), v.word(rng).to_owned()];
    r
}

fn fill(store: &SqliteStore, v: &Vocab, rng: &mut Rng, n: usize) -> Duration {
    let t = Instant::now();
    let mut left = n;
    while left > 0 {
        let k = left.min(BATCH);
        let batch: Vec<Change> = (0..k).map(|_| Change::Put(record(v, rng))).collect();
        store.apply(&batch).expect("insert");
        left -= k;
    }
    t.elapsed()
}

struct Task {
    text: String,
    touched: Vec<String>,
}

fn tasks(v: &Vocab, rng: &mut Rng) -> Vec<Task> {
    (0..QUERIES)
        .map(|_| Task {
            text: v.words(rng, 8),
            touched: vec![format!("src/mod{}/lib.rs", rng.below(200))],
        })
        .collect()
}

fn percentiles(name: &str, passes: usize, mut f: impl FnMut(&Task), ts: &[Task]) -> (f64, f64) {
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    for _ in 0..passes {
        for t in ts {
            let s = Instant::now();
            f(t);
            h.record(s.elapsed().as_micros() as u64).expect("record");
        }
    }
    let (p50, p99) = (
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
    );
    println!(
        "memory/{name}: p50 {p50:.3} ms, p99 {p99:.3} ms ({} calls)",
        h.len()
    );
    (p50, p99)
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = Vocab::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mem = Memory::open(dir.path().join("memory.db")).expect("open");
    let took = fill(mem.store(), &v, &mut rng, RECORDS);
    println!(
        "memory/insert: {RECORDS} records in {:.2} s = {:.0} records/s (batches of {BATCH}, one transaction each, WAL)",
        took.as_secs_f64(),
        RECORDS as f64 / took.as_secs_f64()
    );
    let ts = tasks(&v, &mut rng);
    let store = mem.store();
    percentiles(
        "raw_fts5_unpruned_or_query",
        1,
        |t| {
            black_box(store.raw_fts_unpruned(&t.text, 32).expect("raw"));
        },
        &ts,
    );
    let (raw50, raw99) = percentiles(
        "raw_fts5",
        5,
        |t| {
            black_box(store.raw_fts(&t.text, 64).expect("raw"));
        },
        &ts,
    );
    let (p50, p99) = percentiles(
        "context_pack",
        5,
        |t| {
            black_box(mem.context_pack(&t.text, &t.touched, 1500).expect("pack"));
        },
        &ts,
    );
    percentiles(
        "text_candidates_query",
        5,
        |t| {
            black_box(
                store
                    .query(&Query {
                        text: Some(t.text.clone()),
                        ids: Vec::new(),
                        kinds: Vec::new(),
                        filter: Filter::InForce {
                            at: lightsout_memory::now(),
                        },
                        touched: Vec::new(),
                        limit: 32,
                    })
                    .expect("query"),
            );
        },
        &ts,
    );
    percentiles(
        "scope_candidates_query",
        5,
        |t| {
            black_box(
                store
                    .query(&Query {
                        text: None,
                        ids: Vec::new(),
                        kinds: Vec::new(),
                        filter: Filter::InForce {
                            at: lightsout_memory::now(),
                        },
                        touched: t.touched.clone(),
                        limit: 32,
                    })
                    .expect("query"),
            );
        },
        &ts,
    );
    let (np50, np99) = percentiles(
        "context_pack_no_touched",
        5,
        |t| {
            black_box(mem.context_pack(&t.text, &[], 1500).expect("pack"));
        },
        &ts,
    );
    println!(
        "memory/ratio context_pack/raw: p50 {:.2}x, p99 {:.2}x (no touched paths: p50 {:.2}x, p99 {:.2}x)",
        p50 / raw50,
        p99 / raw99,
        np50 / raw50,
        np99 / raw99
    );

    let mut g = c.benchmark_group("memory");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    let mut i = 0;
    g.bench_function("raw_fts5_100k", |b| {
        b.iter(|| {
            i = (i + 1) % ts.len();
            black_box(store.raw_fts(&ts[i].text, 64).expect("raw"))
        });
    });
    g.bench_function("context_pack_100k", |b| {
        b.iter(|| {
            i = (i + 1) % ts.len();
            black_box(
                mem.context_pack(&ts[i].text, &ts[i].touched, 1500)
                    .expect("pack"),
            )
        });
    });
    g.bench_function("insert_batch_1000", |b| {
        b.iter_batched(
            || {
                (0..BATCH)
                    .map(|_| Change::Put(record(&v, &mut rng)))
                    .collect::<Vec<_>>()
            },
            |batch| store.apply(&batch).expect("insert"),
            BatchSize::LargeInput,
        );
    });
    g.bench_function("insert_one_per_transaction", |b| {
        b.iter_batched(
            || Change::Put(record(&v, &mut rng)),
            |one| store.apply(std::slice::from_ref(&one)).expect("insert"),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

criterion_group!(memory, benches);
criterion_main!(memory);
