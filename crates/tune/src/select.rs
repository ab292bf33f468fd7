//! Selection from evidence: a constrained Thompson-sampling bandit over the declared variants
//! of one task kind, and promotion to default by the posterior probability of being best.
//!
//! **The model.** Each variant `v` has a first-attempt pass rate `p_v` with a `Beta(1 + s,
//! 1 + f)` posterior (a uniform prior, `s` passes and `f` failures of first attempts) and a
//! cost `c_v`, the observed median USD of an attempt. The objective ([`Minimise`]) is the
//! expected USD per merged task, `c_v / p_v`, subject to the non-inferiority constraint
//! `p_v >= p_incumbent - margin` against the *declared* incumbent.
//!
//! **A pick** ([`Bandit::pick`]): a variant never tried on the kind is tried first (one
//! first attempt each, in declaration order, so every arm has a cost); otherwise draw
//! `p̃_v` from every posterior, keep the variants whose draw meets the constraint against the
//! incumbent's draw (the incumbent always does), and take the least `c_v / p̃_v`. This is
//! Thompson sampling (W. R. Thompson, "On the likelihood that one unknown probability exceeds
//! another in view of the evidence of two samples", Biometrika 25, 1933; D. Russo et al., "A
//! Tutorial on Thompson Sampling", Foundations and Trends in ML 11(1), 2018, §7.2 on
//! constraints handled by solving the sampled problem). A variant whose Wilson 95% upper
//! bound on `p_v` is below `bench_below` is benched and never drawn; the incumbent is never
//! benched. A pick off the current default spends exploration, and at most
//! `floor(max_exploration × planned tasks)` picks of a run may ([`RunExploration`]); past
//! that the default runs.
//!
//! **Promotion** ([`Bandit::promotion`]): the probability that each variant is the best
//! feasible one under the joint posterior, estimated from `draws` Monte Carlo draws of the
//! same sampled problem; a challenger becomes the default when its probability is at least
//! `confidence` and it has at least `min_tasks` first attempts. This is the stopping rule of
//! S. L. Scott, "Multi-armed bandit experiments in the online service economy", Applied
//! Stochastic Models in Business and Industry 31(1), 2015 (Google Analytics content
//! experiments: end when one arm's posterior probability of being optimal passes 95%).
//! Checked once per run (a look per run, not per task), it is a Bayesian sequential rule:
//! the declared confidence is a posterior probability, not a frequentist error rate.
//!
//! Invariant: a pick or a promotion is always a declared, eligible variant
//! ([`TuningConfig::eligible`]) of a kind in `[tuning.bounds] kinds`; nothing else.

use crate::config::{Minimise, TuningConfig};
use crate::rollup::Rollup;
use lightsout_eval::stats::{Interval, wilson95};
use rand::Rng;
use rand_distr::{Beta, Distribution as _};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What is known of one variant on one task kind.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Evidence {
    /// First attempts recorded.
    pub first_attempts: u32,
    /// First attempts that passed. Invariant: `first_passes <= first_attempts`.
    pub first_passes: u32,
    /// Median USD of an attempt; `None` before any attempt.
    pub median_usd: Option<f64>,
}

impl Evidence {
    /// The `Beta(1 + passes, 1 + failures)` posterior's `(alpha, beta)`.
    pub fn posterior(&self) -> (f64, f64) {
        let s = self.first_passes.min(self.first_attempts);
        (1.0 + f64::from(s), 1.0 + f64::from(self.first_attempts - s))
    }

    /// The Wilson 95% interval of the first-attempt pass rate.
    pub fn wilson(&self) -> Interval {
        wilson95(self.first_passes, self.first_attempts)
    }
}

/// One variant as the bandit sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    /// The variant's name.
    pub variant: String,
    /// Its evidence on the kind.
    pub evidence: Evidence,
    /// Posterior `alpha` (1 + passes).
    pub alpha: f64,
    /// Posterior `beta` (1 + failures).
    pub beta: f64,
    /// Posterior mean of the first-attempt pass rate, `alpha / (alpha + beta)`.
    pub mean: f64,
    /// Wilson 95% interval of the observed first-attempt pass rate.
    pub wilson: Interval,
    /// Point estimate of USD per merged task, `median_usd / mean`.
    pub usd_per_merged_task: Option<f64>,
    /// Benched: the Wilson upper bound is below `bench_below` (never for the incumbent).
    pub benched: bool,
}

/// Why a variant was picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PickReason {
    /// The kind is not in `[tuning.bounds] kinds`: the default, untouched.
    NotTuned,
    /// Never tried on this kind: tried once so it has a cost.
    Untried,
    /// The least sampled USD per merged task among feasible variants.
    Sampled,
    /// The sample preferred another variant but the run's exploration is spent.
    ExplorationSpent,
}

/// One variant's draw in a pick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draw {
    /// The variant.
    pub variant: String,
    /// Sampled first-attempt pass rate.
    pub pass: f64,
    /// `median_usd / pass`.
    pub usd_per_merged_task: f64,
    /// Whether the draw meets the constraint against the incumbent's draw.
    pub feasible: bool,
}

/// A choice of variant for one task, with why: what the audit log and the report record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pick {
    /// The task kind.
    pub kind: String,
    /// The chosen variant.
    pub variant: String,
    /// The default at the time.
    pub default: String,
    /// Why.
    pub reason: PickReason,
    /// Whether it spent exploration (chose other than the default).
    pub explored: bool,
    /// The draws it compared (empty unless `reason` is `sampled` or `exploration-spent`).
    pub draws: Vec<Draw>,
}

impl Pick {
    /// One line for the audit log: `code: b (sampled; default a; b 0.87 → $0.34, ...)`.
    pub fn explain(&self) -> String {
        let why = match self.reason {
            PickReason::NotTuned => "kind not tuned",
            PickReason::Untried => "untried on this kind",
            PickReason::Sampled => "least sampled USD per merged task among feasible",
            PickReason::ExplorationSpent => "sample preferred another; exploration spent",
        };
        let mut s = format!(
            "{}: {} ({why}; default {}",
            self.kind, self.variant, self.default
        );
        for d in &self.draws {
            let _ = write!(
                s,
                "; {} p̃={:.3} ${:.3}/merged{}",
                d.variant,
                d.pass,
                d.usd_per_merged_task,
                if d.feasible { "" } else { " infeasible" }
            );
        }
        s.push(')');
        s
    }
}

/// A run's exploration allowance: at most `floor(max_exploration × planned)` picks off the
/// default. Invariant: `spent <= allowed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunExploration {
    /// Picks off the default the run may make.
    pub allowed: u32,
    /// Picks off the default made so far.
    pub spent: u32,
}

impl RunExploration {
    /// The allowance of a run of `planned` tuned tasks under `max_exploration` (in `0..=1`).
    pub fn new(max_exploration: f64, planned: u32) -> Self {
        let allowed = (max_exploration.clamp(0.0, 1.0) * f64::from(planned)).floor() as u32;
        RunExploration { allowed, spent: 0 }
    }
}

/// The result of the promotion test for one kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    /// The kind.
    pub kind: String,
    /// The default before the test.
    pub default: String,
    /// Posterior probability of being the best feasible variant, per variant (sums to 1).
    pub p_best: BTreeMap<String, f64>,
    /// The variant most probably best.
    pub leader: String,
    /// `Some(leader)` when it is not the default, `p_best >= confidence` and it has at
    /// least `min_tasks` first attempts: the new default.
    pub promote: Option<String>,
    /// Monte Carlo draws behind `p_best`.
    pub draws: u32,
}

/// The bandit over one configuration's variants, with the evidence of every kind.
#[derive(Debug, Clone)]
pub struct Bandit<'c> {
    cfg: &'c TuningConfig,
    evidence: BTreeMap<String, BTreeMap<String, Evidence>>,
    defaults: BTreeMap<String, String>,
}

impl<'c> Bandit<'c> {
    /// A bandit with no evidence; every kind's default is the incumbent.
    pub fn new(cfg: &'c TuningConfig) -> Self {
        Bandit {
            cfg,
            evidence: BTreeMap::new(),
            defaults: BTreeMap::new(),
        }
    }

    /// A bandit with the evidence of a roll-up (lines of undeclared variants are ignored).
    pub fn from_rollup(cfg: &'c TuningConfig, rollup: &Rollup) -> Self {
        let mut b = Bandit::new(cfg);
        for g in &rollup.groups {
            if cfg.variant(&g.variant).is_some() {
                b.set_evidence(
                    &g.kind,
                    &g.variant,
                    Evidence {
                        first_attempts: g.first_attempt_pass.trials,
                        first_passes: g.first_attempt_pass.successes,
                        median_usd: g.usd_per_attempt.map(|q| q.median),
                    },
                );
            }
        }
        b
    }

    /// Sets the evidence of `variant` on `kind`.
    pub fn set_evidence(&mut self, kind: &str, variant: &str, e: Evidence) {
        self.evidence
            .entry(kind.to_owned())
            .or_default()
            .insert(variant.to_owned(), e);
    }

    /// The evidence of `variant` on `kind` (empty when none).
    pub fn evidence(&self, kind: &str, variant: &str) -> Evidence {
        self.evidence
            .get(kind)
            .and_then(|m| m.get(variant))
            .copied()
            .unwrap_or_default()
    }

    /// Sets the default of `kind` (a promotion). Ignored unless `variant` is eligible.
    pub fn set_default(&mut self, kind: &str, variant: &str) {
        if self.cfg.eligible().any(|v| v.name == variant) {
            self.defaults.insert(kind.to_owned(), variant.to_owned());
        }
    }

    /// The default of `kind`: the last promoted variant, else the incumbent.
    pub fn default_for(&self, kind: &str) -> &str {
        self.defaults
            .get(kind)
            .map_or(self.cfg.incumbent.as_str(), String::as_str)
    }

    /// The eligible variants on `kind`, in declaration order, with their posteriors.
    pub fn arms(&self, kind: &str) -> Vec<Arm> {
        self.cfg
            .eligible()
            .map(|v| {
                let e = self.evidence(kind, &v.name);
                let (alpha, beta) = e.posterior();
                let mean = alpha / (alpha + beta);
                let wilson = e.wilson();
                Arm {
                    variant: v.name.clone(),
                    evidence: e,
                    alpha,
                    beta,
                    mean,
                    wilson,
                    usd_per_merged_task: e.median_usd.map(|c| objective(self.cfg, c, mean)),
                    benched: v.name != self.cfg.incumbent
                        && e.first_attempts > 0
                        && wilson.high < self.cfg.bounds.bench_below,
                }
            })
            .collect()
    }

    /// Draws one sampled problem over `arms` (benched ones left out) and returns the draws
    /// and the index (into the draws) of the least feasible objective.
    fn sample<R: Rng + ?Sized>(&self, arms: &[&Arm], rng: &mut R) -> (Vec<Draw>, Option<usize>) {
        let incumbent = &self.cfg.incumbent;
        let passes: Vec<f64> = arms
            .iter()
            .map(|a| Beta::new(a.alpha, a.beta).map_or(a.mean, |b| b.sample(rng)))
            .collect();
        let floor = arms
            .iter()
            .zip(&passes)
            .find(|(a, _)| &a.variant == incumbent)
            .map_or(0.0, |(_, p)| p - self.cfg.objective.margin);
        let draws: Vec<Draw> = arms
            .iter()
            .zip(&passes)
            .map(|(a, &p)| Draw {
                variant: a.variant.clone(),
                pass: p,
                usd_per_merged_task: objective(self.cfg, a.evidence.median_usd.unwrap_or(0.0), p),
                feasible: &a.variant == incumbent || p >= floor,
            })
            .collect();
        let best = draws
            .iter()
            .enumerate()
            .filter(|(_, d)| d.feasible)
            .min_by(|(_, a), (_, b)| a.usd_per_merged_task.total_cmp(&b.usd_per_merged_task))
            .map(|(i, _)| i);
        (draws, best)
    }

    /// Picks the variant for one task of `kind`, spending `run`'s exploration when it picks
    /// off the default. See the module docs for the rule.
    pub fn pick<R: Rng + ?Sized>(&self, kind: &str, run: &mut RunExploration, rng: &mut R) -> Pick {
        let arms = self.arms(kind);
        // A promoted default that has since been benched gives way to the incumbent.
        let default = match self.default_for(kind) {
            d if arms.iter().any(|a| a.variant == d && a.benched) => self.cfg.incumbent.clone(),
            d => d.to_owned(),
        };
        let mut pick = Pick {
            kind: kind.to_owned(),
            variant: default.clone(),
            default: default.clone(),
            reason: PickReason::NotTuned,
            explored: false,
            draws: Vec::new(),
        };
        if !self.cfg.tunes(kind) {
            return pick;
        }
        let live: Vec<&Arm> = arms.iter().filter(|a| !a.benched).collect();
        let (want, reason, draws) =
            if let Some(a) = live.iter().find(|a| a.evidence.median_usd.is_none()) {
                (a.variant.clone(), PickReason::Untried, Vec::new())
            } else {
                let (draws, best) = self.sample(&live, rng);
                let want = best.map_or_else(|| default.clone(), |i| draws[i].variant.clone());
                (want, PickReason::Sampled, draws)
            };
        pick.draws = draws;
        if want == default {
            pick.reason = if reason == PickReason::Untried {
                PickReason::Untried
            } else {
                PickReason::Sampled
            };
        } else if run.spent < run.allowed {
            run.spent += 1;
            pick.variant = want;
            pick.reason = reason;
            pick.explored = true;
        } else {
            pick.reason = PickReason::ExplorationSpent;
        }
        pick
    }

    /// The promotion test for `kind` with `draws` Monte Carlo draws (see the module docs).
    /// `None` when the kind is not tuned.
    pub fn promotion<R: Rng + ?Sized>(
        &self,
        kind: &str,
        draws: u32,
        rng: &mut R,
    ) -> Option<Promotion> {
        if !self.cfg.tunes(kind) {
            return None;
        }
        let arms = self.arms(kind);
        let live: Vec<&Arm> = arms
            .iter()
            .filter(|a| !a.benched && a.evidence.median_usd.is_some())
            .collect();
        let mut wins: BTreeMap<String, u32> = arms.iter().map(|a| (a.variant.clone(), 0)).collect();
        let draws = draws.max(1);
        for _ in 0..draws {
            let (d, best) = self.sample(&live, rng);
            if let Some(i) = best {
                *wins.entry(d[i].variant.clone()).or_default() += 1;
            }
        }
        let p_best: BTreeMap<String, f64> = wins
            .into_iter()
            .map(|(v, w)| (v, f64::from(w) / f64::from(draws)))
            .collect();
        let default = self.default_for(kind).to_owned();
        let leader = p_best
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or_else(|| default.clone(), |(v, _)| v.clone());
        let o = &self.cfg.objective;
        let promote = (leader != default
            && p_best.get(&leader).copied().unwrap_or(0.0) >= o.confidence
            && self.evidence(kind, &leader).first_attempts >= o.min_tasks)
            .then(|| leader.clone());
        Some(Promotion {
            kind: kind.to_owned(),
            default,
            p_best,
            leader,
            promote,
            draws,
        })
    }
}

/// The objective of a variant costing `usd` per attempt that passes first time with
/// probability `pass`; `+∞` when `pass` is 0.
pub fn objective(cfg: &TuningConfig, usd: f64, pass: f64) -> f64 {
    match cfg.objective.minimise {
        Minimise::UsdPerMergedTask => {
            if pass > 0.0 {
                usd / pass
            } else {
                f64::INFINITY
            }
        }
    }
}
