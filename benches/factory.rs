//! Scheduler benchmark for `lightsout-factory` (issue 7): simulated agents with known
//! durations on random layered task graphs of 10 to 10,000 tasks, N = 1..16 agents.
//!
//! Reported (printed as a table, then timed by criterion):
//! - makespan / lower bound, the lower bound being `max(critical path, total work / N)`
//!   (goal: within 5%), for the factory's scheduler (HLFET: highest bottom level first)
//!   side by side with the naive baseline, FIFO list scheduling (ready tasks in the order
//!   they became ready);
//! - scheduler overhead per task: wall time spent inside the scheduler's calls divided by
//!   the number of tasks (goal: at most 1 ms).

#![allow(clippy::print_stdout, missing_docs)] // a bench reports on stdout; criterion_group! is undocumented

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use lightsout_factory::sched::simulate;
use std::collections::{BinaryHeap, VecDeque};
use std::hint::black_box;

/// xorshift64*: deterministic graphs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A layered DAG of `n` tasks: about `sqrt(n)` layers; each task depends on 1 to 3 tasks of
/// earlier layers (mostly the previous one); durations 5..120 minutes, as agent tasks vary.
fn graph(n: usize, seed: u64) -> (Vec<f64>, Vec<(usize, usize)>) {
    let mut rng = Rng(seed | 1);
    let layers = ((n as f64).sqrt().round() as usize).clamp(2, n.max(2));
    let per = n.div_ceil(layers);
    let durations: Vec<f64> = (0..n).map(|_| 5.0 + rng.below(116) as f64).collect();
    let mut edges = Vec::new();
    for i in per.min(n)..n {
        let layer = i / per;
        let k = 1 + rng.below(3) as usize;
        for _ in 0..k {
            let from_layer = if rng.below(4) == 0 {
                rng.below(layer as u64) as usize
            } else {
                layer - 1
            };
            let lo = from_layer * per;
            let hi = ((from_layer + 1) * per).min(n);
            edges.push((lo + rng.below((hi - lo) as u64) as usize, i));
        }
    }
    edges.sort_unstable();
    edges.dedup();
    (durations, edges)
}

/// The baseline: FIFO list scheduling, no priorities.
fn simulate_fifo(d: &[f64], edges: &[(usize, usize)], agents: usize) -> f64 {
    #[derive(PartialEq)]
    struct F(f64, usize);
    impl Eq for F {}
    impl Ord for F {
        fn cmp(&self, o: &Self) -> std::cmp::Ordering {
            o.0.total_cmp(&self.0).then(o.1.cmp(&self.1))
        }
    }
    impl PartialOrd for F {
        fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(o))
        }
    }
    let n = d.len();
    let mut deps = vec![0usize; n];
    let mut out = vec![Vec::new(); n];
    for &(a, b) in edges {
        deps[b] += 1;
        out[a].push(b);
    }
    let mut ready: VecDeque<usize> = (0..n).filter(|&i| deps[i] == 0).collect();
    let mut running = BinaryHeap::new();
    let mut now = 0.0;
    loop {
        while running.len() < agents {
            let Some(i) = ready.pop_front() else { break };
            running.push(F(now + d[i], i));
        }
        let Some(F(t, i)) = running.pop() else { break };
        now = t;
        for &b in &out[i] {
            deps[b] -= 1;
            if deps[b] == 0 {
                ready.push_back(b);
            }
        }
    }
    now
}

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
const AGENTS: [usize; 5] = [1, 2, 4, 8, 16];
const SEEDS: u64 = 5;

fn table() {
    println!(
        "\nfactory scheduler: makespan / max(critical path, work/N), mean and worst of {SEEDS} graphs"
    );
    println!(
        "{:>7} {:>3} | {:>14} {:>14} | {:>14} | {:>16}",
        "tasks", "N", "HLFET mean", "HLFET worst", "FIFO mean", "overhead/task"
    );
    let mut worst_all: f64 = 1.0;
    let mut overhead_worst: f64 = 0.0;
    for &n in &SIZES {
        for &a in &AGENTS {
            let (mut sum, mut worst, mut fsum, mut ns, mut tasks) =
                (0.0, 1.0f64, 0.0, 0u128, 0usize);
            for seed in 0..SEEDS {
                let (d, e) = graph(n, 0x9E37_79B9 + seed * 7919 + n as u64);
                let r = simulate(&d, &e, a).expect("a DAG");
                sum += r.ratio();
                worst = worst.max(r.ratio());
                fsum += simulate_fifo(&d, &e, a) / r.lower_bound;
                ns += r.scheduler_ns;
                tasks += n;
            }
            let per_task_us = ns as f64 / tasks as f64 / 1_000.0;
            worst_all = worst_all.max(worst);
            overhead_worst = overhead_worst.max(per_task_us);
            println!(
                "{n:>7} {a:>3} | {:>14.4} {:>14.4} | {:>14.4} | {:>13.3} µs",
                sum / SEEDS as f64,
                worst,
                fsum / SEEDS as f64,
                per_task_us
            );
        }
    }
    println!(
        "worst ratio {worst_all:.4} (goal <= 1.05); worst scheduler overhead {overhead_worst:.3} µs per task (goal <= 1000 µs)\n"
    );
}

fn bench(c: &mut Criterion) {
    table();
    let mut g = c.benchmark_group("factory_schedule");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(2));
    g.warm_up_time(std::time::Duration::from_millis(300));
    for &n in &[100usize, 10_000] {
        let (d, e) = graph(n, 42);
        for &a in &[4usize, 16] {
            g.bench_with_input(BenchmarkId::new(format!("hlfet/{n}"), a), &a, |b, &a| {
                b.iter(|| black_box(simulate(&d, &e, a).expect("a DAG")));
            });
            g.bench_with_input(BenchmarkId::new(format!("fifo/{n}"), a), &a, |b, &a| {
                b.iter(|| black_box(simulate_fifo(&d, &e, a)));
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
