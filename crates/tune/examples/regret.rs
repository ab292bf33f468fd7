//! Convergence and regret of the tuner on replay agents of known quality (issue 22):
//! A passes 90% of first attempts at $1, B 85% at $0.30, C 40% at $0.10.
//!
//! `cargo run -p lightsout-tune --release --example regret [SEEDS] [TASKS] [MAX_EXPLORATION] [RUN_SIZE]`

#![allow(clippy::print_stdout)] // an example prints its table

use lightsout_tune::sim::{ReplayArm, SimOptions, simulate};

fn main() {
    let mut args = std::env::args().skip(1);
    let seeds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let tasks: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let explore: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0.3);
    let run_size: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
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
    let cfg = lightsout_tune::config::load(&toml)
        .expect("valid config")
        .expect("[tuning] present");
    let arms: Vec<ReplayArm> = lightsout_tune::sim::replay_abc();
    let mut settled = Vec::new();
    let (mut wrong, mut flips) = (0, 0);
    let checkpoints = [20u32, 50, 100, 200, 300, 500, 1000, 2000];
    let mut sums = vec![(0.0, 0.0, 0.0, 0.0, 0.0); checkpoints.len()];
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
        settled.push(t.settled_on("B"));
        wrong += usize::from(t.promotions.iter().any(|(_, v)| v == "C"));
        flips += t.promotions.len().saturating_sub(1);
        for (i, &c) in checkpoints.iter().enumerate() {
            if let Some(r) = t.regret.get(c as usize - 1) {
                let b_share = t.picks[..c as usize].iter().filter(|p| *p == "B").count() as f64
                    / f64::from(c);
                sums[i].0 += r.usd_regret;
                sums[i].1 += f64::from(r.floor_violations);
                sums[i].2 += r.passes_lost;
                sums[i].3 += b_share;
                let from = if i == 0 {
                    0
                } else {
                    checkpoints[i - 1] as usize
                };
                let window = &t.picks[from..c as usize];
                sums[i].4 +=
                    window.iter().filter(|p| *p == "B").count() as f64 / window.len() as f64;
            }
        }
    }
    let mut done: Vec<u32> = settled.iter().filter_map(|s| *s).collect();
    done.sort_unstable();
    let never = settled.iter().filter(|s| s.is_none()).count();
    println!("seeds {seeds}, tasks {tasks}, max_exploration {explore}, run size {run_size}");
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
        "never settled on B: {never}; seeds that ever promoted C: {wrong}; promotions after the first: {flips}"
    );
    println!(
        "| tasks | USD regret (Σ USD/merged above B) | floor violations (C picks) | passes lost vs B | share of picks B | B since the previous row |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let n = seeds as f64;
    for (i, &c) in checkpoints.iter().enumerate() {
        if c <= tasks {
            println!(
                "| {c} | {:.1} | {:.1} | {:.2} | {:.0}% | {:.0}% |",
                sums[i].0 / n,
                sums[i].1 / n,
                sums[i].2 / n,
                sums[i].3 / n * 100.0,
                sums[i].4 / n * 100.0
            );
        }
    }
}
