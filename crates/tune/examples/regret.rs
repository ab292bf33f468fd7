//! Convergence and regret of the tuner on replay agents of known quality (issue 22):
//! A passes 90% of first attempts at $1, B 85% at $0.30, C 40% at $0.10.
//!
//! `cargo run -p lightsout-tune --release --example regret [SEEDS] [TASKS] [MAX_EXPLORATION] [RUN_SIZE]`

#![allow(clippy::print_stdout)] // an example prints its table

use lightsout_tune::sim::{ReplayArm, SimOptions, simulate};

use lightsout_tune::config::TuningConfig;
use lightsout_tune::sim::Trace;

/// The rows of the table: after this many tasks.
const CHECKPOINTS: [u32; 8] = [20, 50, 100, 200, 300, 500, 1000, 2000];

/// Sums over the seeds at one checkpoint: USD regret, floor violations, passes lost, share
/// of picks B overall and since the previous checkpoint.
type Sums = (f64, f64, f64, f64, f64);

/// What the seeds add up to.
#[derive(Default)]
struct Tally {
    /// Per seed, the task at which the tuner settled on B (`None`: it never did).
    settled: Vec<Option<u32>>,
    /// Seeds that ever promoted C.
    wrong: usize,
    /// Promotions after the first, over all seeds.
    flips: usize,
    /// One row per checkpoint.
    sums: Vec<Sums>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seeds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let tasks: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let explore: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0.3);
    let run_size: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let cfg = config(explore);
    let arms: Vec<ReplayArm> = lightsout_tune::sim::replay_abc();
    let mut tally = Tally {
        sums: vec![(0.0, 0.0, 0.0, 0.0, 0.0); CHECKPOINTS.len()],
        ..Tally::default()
    };
    for seed in 0..seeds {
        let t = simulate(
            &cfg,
            &arms,
            &SimOptions {
                kind: "code".into(),
                tasks,
                run_size,
                seed,
                promotion_draws: 2000,
            },
        );
        tally.add(&t);
    }
    println!("seeds {seeds}, tasks {tasks}, max_exploration {explore}, run size {run_size}");
    tally.print(seeds, tasks);
}

/// The three replay variants A, B, C under incumbent A, with `explore` as
/// `max_exploration`.
fn config(explore: f64) -> TuningConfig {
    let toml = format!(
        r#"
[agent.x]
preset = "replay"
[tuning]
incumbent = "A"
[tuning.objective]
margin = 0.10
confidence = 0.95
min_tasks = 20
[tuning.bounds]
kinds = ["code"]
max_exploration = {explore}
bench_below = 0.5
[[tuning.variant]]
name = "A"
agent = "x"
[[tuning.variant]]
name = "B"
agent = "x"
[[tuning.variant]]
name = "C"
agent = "x"
"#
    );
    lightsout_tune::config::load(&toml)
        .expect("valid config")
        .expect("[tuning] present")
}

impl Tally {
    /// Adds one seed's trace.
    fn add(&mut self, t: &Trace) {
        self.settled.push(t.settled_on("B"));
        self.wrong += usize::from(t.promotions.iter().any(|(_, v)| v == "C"));
        self.flips += t.promotions.len().saturating_sub(1);
        for (i, &c) in CHECKPOINTS.iter().enumerate() {
            if let Some(r) = t.regret.get(c as usize - 1) {
                let b_share = t.picks[..c as usize].iter().filter(|p| *p == "B").count() as f64
                    / f64::from(c);
                let sums = &mut self.sums[i];
                sums.0 += r.usd_regret;
                sums.1 += f64::from(r.floor_violations);
                sums.2 += r.passes_lost;
                sums.3 += b_share;
                let from = if i == 0 {
                    0
                } else {
                    CHECKPOINTS[i - 1] as usize
                };
                let window = &t.picks[from..c as usize];
                sums.4 += window.iter().filter(|p| *p == "B").count() as f64 / window.len() as f64;
            }
        }
    }

    /// Prints the promotion summary and the table, averaged over `seeds`, up to `tasks`.
    fn print(&self, seeds: u64, tasks: u32) {
        let mut done: Vec<u32> = self.settled.iter().filter_map(|s| *s).collect();
        done.sort_unstable();
        let never = self.settled.iter().filter(|s| s.is_none()).count();
        if !done.is_empty() {
            let q = |p: f64| done[((done.len() - 1) as f64 * p).round() as usize];
            println!(
                "B promoted and kept: {} of {seeds}; tasks to promotion: min {} median {} p90 {} max {}",
                done.len(),
                done[0],
                q(0.5),
                q(0.9),
                done[done.len() - 1]
            );
        }
        println!(
            "never settled on B: {never}; seeds that ever promoted C: {}; promotions after the first: {}",
            self.wrong, self.flips
        );
        println!(
            "| tasks | USD regret (Σ USD/merged above B) | floor violations (C picks) | passes lost vs B | share of picks B | B since the previous row |"
        );
        println!("|---:|---:|---:|---:|---:|---:|");
        let n = seeds as f64;
        for (i, &c) in CHECKPOINTS.iter().enumerate() {
            if c <= tasks {
                let sums = self.sums[i];
                println!(
                    "| {c} | {:.1} | {:.1} | {:.2} | {:.0}% | {:.0}% |",
                    sums.0 / n,
                    sums.1 / n,
                    sums.2 / n,
                    sums.3 / n * 100.0,
                    sums.4 / n * 100.0
                );
            }
        }
    }
}
