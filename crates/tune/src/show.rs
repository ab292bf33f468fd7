//! `lightsout tune show`: per tuned task kind, each variant's posterior, its probability of
//! being best, the promotion verdict and the next pick.

use crate::config::TuningConfig;
use crate::rollup::Rollup;
use crate::select::{Arm, Bandit, Pick, Promotion, RunExploration};
use crate::state::TuningState;
use rand::SeedableRng as _;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Monte Carlo draws behind each probability of being best.
pub const PROMOTION_DRAWS: u32 = 4000;

/// One tuned kind in `tune show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindView {
    /// The task kind.
    pub kind: String,
    /// The variants with their posteriors, in declaration order.
    pub arms: Vec<Arm>,
    /// The promotion test.
    pub promotion: Promotion,
    /// What the bandit would pick next (with one exploration left in the run).
    pub next: Pick,
}

/// Everything `tune show` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneView {
    /// The seed the draws used: `[tuning] seed` mixed with the attempts recorded, so the
    /// same evidence shows the same draws.
    pub seed: u64,
    /// Variants declared but not eligible (proposed, without `auto_accept`).
    pub waiting: Vec<String>,
    /// Per tuned kind, in `[tuning.bounds] kinds` order.
    pub kinds: Vec<KindView>,
}

/// The RNG seed for draws over `rollup`: `cfg.seed` mixed with the attempts recorded
/// (splitmix64's increment), so every new attempt gives new draws and the same evidence
/// gives the same ones.
pub fn seed_for(cfg: &TuningConfig, rollup: &Rollup) -> u64 {
    cfg.seed ^ (rollup.attempts as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A bandit over `rollup` with the defaults of `state` applied.
pub fn bandit<'c>(cfg: &'c TuningConfig, rollup: &Rollup, state: &TuningState) -> Bandit<'c> {
    let mut b = Bandit::from_rollup(cfg, rollup);
    for (kind, p) in &state.defaults {
        b.set_default(kind, &p.variant);
    }
    b
}

/// Builds the view.
pub fn view(cfg: &TuningConfig, rollup: &Rollup, state: &TuningState) -> TuneView {
    let b = bandit(cfg, rollup, state);
    let seed = seed_for(cfg, rollup);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let kinds = cfg
        .bounds
        .kinds
        .iter()
        .filter_map(|kind| {
            let promotion = b.promotion(kind, PROMOTION_DRAWS, &mut rng)?;
            let next = b.pick(
                kind,
                &mut RunExploration {
                    allowed: 1,
                    spent: 0,
                },
                &mut rng,
            );
            Some(KindView {
                kind: kind.clone(),
                arms: b.arms(kind),
                promotion,
                next,
            })
        })
        .collect();
    TuneView {
        seed,
        waiting: cfg
            .variants
            .iter()
            .filter(|v| !cfg.eligible().any(|e| e.name == v.name))
            .map(|v| v.name.clone())
            .collect(),
        kinds,
    }
}

/// The view as text for people.
pub fn render_text(v: &TuneView, cfg: &TuningConfig) -> String {
    let mut out = String::new();
    let o = &cfg.objective;
    let _ = writeln!(
        out,
        "objective: least USD per merged task with first-attempt pass ≥ {}'s − {:.2}; \
         promote at P(best) ≥ {:.2} after ≥ {} first attempts",
        cfg.incumbent, o.margin, o.confidence, o.min_tasks
    );
    let _ = writeln!(
        out,
        "bounds: kinds [{}], exploration ≤ {:.0}% of a run, benched below {:.0}% (Wilson upper bound)",
        cfg.bounds.kinds.join(", "),
        cfg.bounds.max_exploration * 100.0,
        cfg.bounds.bench_below * 100.0
    );
    if !v.waiting.is_empty() {
        let _ = writeln!(
            out,
            "waiting for a human (status = \"proposed\", auto_accept = false): {}",
            v.waiting.join(", ")
        );
    }
    if v.kinds.is_empty() {
        out.push_str("no task kind is tuned: list kinds in [tuning.bounds] kinds\n");
    }
    for k in &v.kinds {
        let _ = writeln!(out, "\n{} (default {}):", k.kind, k.promotion.default);
        let _ = writeln!(
            out,
            "  {:<16} {:>6} {:>14} {:>7} {:>16} {:>10} {:>11} {:>7}",
            "variant",
            "first",
            "Beta(α, β)",
            "mean",
            "Wilson 95%",
            "USD/att",
            "USD/merged",
            "P(best)"
        );
        for a in &k.arms {
            let money = |x: Option<f64>| x.map_or_else(|| "–".to_owned(), |u| format!("{u:.3}"));
            let _ = writeln!(
                out,
                "  {:<16} {:>6} {:>14} {:>7.3} {:>16} {:>10} {:>11} {:>7.3}{}",
                a.variant,
                format!("{}/{}", a.evidence.first_passes, a.evidence.first_attempts),
                format!("({:.0}, {:.0})", a.alpha, a.beta),
                a.mean,
                format!("[{:.3}, {:.3}]", a.wilson.low, a.wilson.high),
                money(a.evidence.median_usd),
                money(a.usd_per_merged_task),
                k.promotion.p_best.get(&a.variant).copied().unwrap_or(0.0),
                if a.benched { "  benched" } else { "" }
            );
        }
        let verdict = match &k.promotion.promote {
            Some(p) => format!("promote {p} (`lightsout tune promote` applies it)"),
            None if k.promotion.p_best.values().all(|p| *p == 0.0) => {
                format!("keep {} (no evidence yet)", k.promotion.default)
            }
            None => format!(
                "keep {} (leader {} at {:.3})",
                k.promotion.default,
                k.promotion.leader,
                k.promotion
                    .p_best
                    .get(&k.promotion.leader)
                    .copied()
                    .unwrap_or(0.0)
            ),
        };
        let _ = writeln!(out, "  promotion: {verdict}");
        let _ = writeln!(out, "  next pick: {}", k.next.explain());
    }
    out
}
