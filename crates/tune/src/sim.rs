//! Replay agents of known quality, to measure how fast the [`Bandit`] converges and what it
//! costs on the way (its regret against always picking the best arm).
//!
//! Each [`ReplayArm`] passes a first attempt with a fixed probability at a fixed USD. Tasks
//! come in runs of `run_size`; each run has its exploration allowance
//! ([`RunExploration`]) and ends with one promotion test, as the factory would run them.
//! The environment (whether an attempt passes) and the policy (the bandit's draws) use two
//! `ChaCha8` streams from the one seed, so a change to the policy does not change the coins.
//!
//! Regret is the pseudo-regret of the bandit literature (expected, from the arms' true
//! parameters, not the realised coins), split in three because the objective is constrained:
//! - `usd_regret`: the sum over tasks of `c_a / p_a − c* / p*` (expected USD per merged task
//!   above the best feasible arm's) for each pick `a` that meets the true constraint;
//! - `floor_violations`: picks of an arm that does not meet it (cheaper per merged task, but
//!   not allowed);
//! - `passes_lost`: the sum of `p* − p_a`, first-attempt passes below always-best.

use crate::config::TuningConfig;
use crate::select::{Bandit, Evidence, RunExploration, objective};
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A replay agent of known quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayArm {
    /// The declared variant it plays.
    pub variant: String,
    /// Probability that a first attempt passes, in `0..=1`.
    pub pass: f64,
    /// USD per attempt.
    pub usd: f64,
}

/// How a simulation runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimOptions {
    /// The task kind (must be in `[tuning.bounds] kinds`).
    pub kind: String,
    /// Tasks in all.
    pub tasks: u32,
    /// Tasks per run (each run has its own exploration allowance and one promotion test).
    pub run_size: u32,
    /// Seed of both random streams.
    pub seed: u64,
    /// Monte Carlo draws per promotion test.
    pub promotion_draws: u32,
}

/// Cumulative regret after `task` tasks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegretPoint {
    /// Tasks so far.
    pub task: u32,
    /// Expected USD per merged task above the best feasible arm, summed over feasible picks.
    pub usd_regret: f64,
    /// Picks of an arm below the true pass-rate floor.
    pub floor_violations: u32,
    /// Expected first-attempt passes below always-best.
    pub passes_lost: f64,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// The best feasible arm under the true parameters.
    pub best: String,
    /// The variant picked for each task.
    pub picks: Vec<String>,
    /// Promotions: (tasks done when promoted, the new default).
    pub promotions: Vec<(u32, String)>,
    /// Cumulative regret after each task (`regret[i].task == i + 1`).
    pub regret: Vec<RegretPoint>,
}

impl Trace {
    /// Tasks done when `variant` was last promoted and stayed the default to the end;
    /// `None` when it is not the final default by promotion.
    pub fn settled_on(&self, variant: &str) -> Option<u32> {
        match self.promotions.last() {
            Some((t, v)) if v == variant => Some(*t),
            _ => None,
        }
    }
}

/// The best feasible arm under the true parameters: the least `usd / pass` among arms with
/// `pass >= incumbent's pass − margin`.
pub fn best_arm<'a>(cfg: &TuningConfig, arms: &'a [ReplayArm]) -> Option<&'a ReplayArm> {
    let inc = arms.iter().find(|a| a.variant == cfg.incumbent)?;
    let floor = inc.pass - cfg.objective.margin;
    arms.iter()
        .filter(|a| a.variant == cfg.incumbent || a.pass >= floor)
        .min_by(|a, b| objective(cfg, a.usd, a.pass).total_cmp(&objective(cfg, b.usd, b.pass)))
}

/// Runs the simulation. Arms not declared in `cfg` are never picked; a pick of a declared
/// variant with no arm counts as a failing free attempt.
pub fn simulate(cfg: &TuningConfig, arms: &[ReplayArm], opts: &SimOptions) -> Trace {
    let mut bandit = Bandit::new(cfg);
    let mut policy = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut coins = ChaCha8Rng::seed_from_u64(opts.seed ^ 0xC01D_C0FF_EE00_0001);
    let best = best_arm(cfg, arms);
    let floor = arms
        .iter()
        .find(|a| a.variant == cfg.incumbent)
        .map_or(0.0, |a| a.pass - cfg.objective.margin);
    let mut trace = Trace {
        best: best.map(|b| b.variant.clone()).unwrap_or_default(),
        picks: Vec::new(),
        promotions: Vec::new(),
        regret: Vec::new(),
    };
    let mut acc = RegretPoint {
        task: 0,
        usd_regret: 0.0,
        floor_violations: 0,
        passes_lost: 0.0,
    };
    let run_size = opts.run_size.max(1);
    let mut run = RunExploration::new(cfg.bounds.max_exploration, run_size);
    for t in 0..opts.tasks {
        if t > 0 && t.is_multiple_of(run_size) {
            promote(&mut bandit, opts, &mut policy, t, &mut trace);
            run = RunExploration::new(cfg.bounds.max_exploration, run_size);
        }
        let pick = bandit.pick(&opts.kind, &mut run, &mut policy);
        let arm = arms.iter().find(|a| a.variant == pick.variant);
        let (p, usd) = arm.map_or((0.0, 0.0), |a| (a.pass, a.usd));
        let passed = coins.gen_bool(p.clamp(0.0, 1.0));
        let mut e = bandit.evidence(&opts.kind, &pick.variant);
        e = Evidence {
            first_attempts: e.first_attempts + 1,
            first_passes: e.first_passes + u32::from(passed),
            median_usd: Some(usd),
        };
        bandit.set_evidence(&opts.kind, &pick.variant, e);
        if let Some(b) = best {
            if arm.is_some() && (pick.variant == cfg.incumbent || p >= floor) {
                acc.usd_regret += objective(cfg, usd, p) - objective(cfg, b.usd, b.pass);
            } else {
                acc.floor_violations += 1;
            }
            acc.passes_lost += b.pass - p;
        }
        acc.task = t + 1;
        trace.regret.push(acc);
        trace.picks.push(pick.variant);
    }
    if opts.tasks > 0 && opts.tasks.is_multiple_of(run_size) {
        promote(&mut bandit, opts, &mut policy, opts.tasks, &mut trace);
    }
    trace
}

fn promote(
    bandit: &mut Bandit<'_>,
    opts: &SimOptions,
    rng: &mut ChaCha8Rng,
    done: u32,
    trace: &mut Trace,
) {
    if let Some(p) = bandit.promotion(&opts.kind, opts.promotion_draws, rng)
        && let Some(v) = p.promote
    {
        bandit.set_default(&opts.kind, &v);
        trace.promotions.push((done, v));
    }
}

/// The replay agents of issue 22: `A` passes 90% of first attempts at $1, `B` 85% at $0.30,
/// `C` 40% at $0.10.
pub fn replay_abc() -> Vec<ReplayArm> {
    [("A", 0.90, 1.00), ("B", 0.85, 0.30), ("C", 0.40, 0.10)]
        .into_iter()
        .map(|(v, pass, usd)| ReplayArm {
            variant: v.into(),
            pass,
            usd,
        })
        .collect()
}
