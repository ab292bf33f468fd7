//! The roll-up behind `lightsout metrics`: attempts grouped per variant and task kind, with
//! Wilson intervals on the rates and medians with quantiles on cost, tokens and time.
//!
//! Sources:
//! - Wilson score interval: [`lightsout_eval::stats::wilson95`] (Wilson 1927), the same
//!   interval the holdout's satisfaction uses.
//! - Quantiles: R's default, type 7 of R. J. Hyndman and Y. Fan, "Sample quantiles in
//!   statistical packages", The American Statistician 50(4), 1996 (numpy's `linear`):
//!   linear interpolation between order statistics at `h = (n - 1) p`.

use crate::record::{AttemptMetrics, FinalOutcome, tokens, usd};
use lightsout_eval::stats::{Interval, wilson95};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// A proportion with its Wilson 95% interval.
///
/// Invariant: `successes <= trials`; `rate` is `None` exactly when `trials == 0`, and then
/// `wilson` is `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// Successes.
    pub successes: u32,
    /// Trials.
    pub trials: u32,
    /// `successes / trials`, in `0..=1`.
    pub rate: Option<f64>,
    /// The Wilson 95% interval.
    pub wilson: Interval,
}

impl Rate {
    /// `successes` of `trials` (clamped to `trials`).
    pub fn new(successes: u32, trials: u32) -> Self {
        let successes = successes.min(trials);
        Rate {
            successes,
            trials,
            rate: (trials > 0).then(|| f64::from(successes) / f64::from(trials)),
            wilson: wilson95(successes, trials),
        }
    }
}

/// Order statistics of a sample: median and the 10th, 25th, 75th and 90th percentiles
/// (Hyndman–Fan type 7), the minimum and maximum.
///
/// Invariant: `min <= p10 <= p25 <= median <= p75 <= p90 <= max`; `n >= 1`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Sample size.
    pub n: usize,
    /// Smallest value.
    pub min: f64,
    /// 10th percentile.
    pub p10: f64,
    /// 25th percentile.
    pub p25: f64,
    /// Median.
    pub median: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Largest value.
    pub max: f64,
}

impl Quantiles {
    /// The quantiles of `values` (NaNs dropped); `None` when none are left.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Quantiles {
            n: v.len(),
            min: v[0],
            p10: quantile_sorted(&v, 0.10),
            p25: quantile_sorted(&v, 0.25),
            median: quantile_sorted(&v, 0.5),
            p75: quantile_sorted(&v, 0.75),
            p90: quantile_sorted(&v, 0.90),
            max: v[v.len() - 1],
        })
    }
}

/// Hyndman–Fan type 7 quantile `p` (in `0..=1`) of a non-empty sorted sample.
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    let h = (n - 1) as f64 * p.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// One variant on one task kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// The variant ([`AttemptMetrics::variant_key`]).
    pub variant: String,
    /// The task kind ([`AttemptMetrics::kind_key`]).
    pub kind: String,
    /// Attempts recorded.
    pub attempts: u32,
    /// Distinct tasks (run and task id) with an attempt here.
    pub tasks: u32,
    /// First attempts that passed, of first attempts.
    pub first_attempt_pass: Rate,
    /// Attempts that passed, of attempts.
    pub attempt_pass: Rate,
    /// Tasks that merged, of tasks.
    pub merged: Rate,
    /// Cost per attempt, USD, over the attempts whose agent reported a cost.
    pub usd_per_attempt: Option<Quantiles>,
    /// Tokens per attempt.
    pub tokens_per_attempt: Option<Quantiles>,
    /// Wall time per attempt, ms.
    pub wall_ms_per_attempt: Option<Quantiles>,
    /// Total reported cost of the attempts, USD.
    pub usd_total: f64,
    /// `usd_total` over merged tasks, USD; `None` when nothing merged.
    pub usd_per_merged_task: Option<f64>,
    /// Failed attempts per failure category ([`AttemptMetrics::category_key`]).
    pub failure_categories: BTreeMap<String, u32>,
}

/// The whole roll-up, groups ordered by task kind then variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    /// Attempts read (after de-duplication).
    pub attempts: usize,
    /// Distinct runs.
    pub runs: usize,
    /// Per variant and task kind.
    pub groups: Vec<Group>,
}

impl Rollup {
    /// The group of `variant` on `kind`.
    pub fn group(&self, variant: &str, kind: &str) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| g.variant == variant && g.kind == kind)
    }
}

/// Rolls `records` up per variant and task kind.
///
/// A (run, task, attempt) recorded twice (a crashed run resumed) counts once, as its last
/// line. A task counts as merged when its last line says `final_outcome = "merged"` or any
/// of its attempts passed (lines written before `final_outcome` existed).
pub fn rollup(records: &[AttemptMetrics]) -> Rollup {
    let mut latest: BTreeMap<(&str, &str, u32), &AttemptMetrics> = BTreeMap::new();
    for r in records {
        latest.insert((&r.run_id, &r.task_id, r.attempt), r);
    }
    let runs: BTreeSet<&str> = latest.keys().map(|k| k.0).collect();
    let mut by_group: BTreeMap<(&str, &str), Vec<&AttemptMetrics>> = BTreeMap::new();
    for r in latest.values() {
        by_group
            .entry((r.kind_key(), r.variant_key()))
            .or_default()
            .push(r);
    }
    let groups = by_group
        .into_iter()
        .map(|((kind, variant), rs)| group(variant, kind, &rs))
        .collect();
    Rollup {
        attempts: latest.len(),
        runs: runs.len(),
        groups,
    }
}

fn group(variant: &str, kind: &str, rs: &[&AttemptMetrics]) -> Group {
    let count = |it: usize| u32::try_from(it).unwrap_or(u32::MAX);
    let firsts: Vec<_> = rs.iter().filter(|r| r.attempt == 1).collect();
    let mut tasks: BTreeMap<(&str, &str), bool> = BTreeMap::new();
    for r in rs {
        let merged = tasks.entry((&r.run_id, &r.task_id)).or_default();
        *merged |= r.passed || r.final_outcome == Some(FinalOutcome::Merged);
    }
    let merged = count(tasks.values().filter(|m| **m).count());
    let usd: Vec<f64> = rs.iter().filter_map(|r| usd(&r.usage)).collect();
    let usd_total: f64 = usd.iter().sum();
    let mut failure_categories = BTreeMap::new();
    for c in rs.iter().filter_map(|r| r.category_key()) {
        *failure_categories.entry(c.to_owned()).or_default() += 1;
    }
    Group {
        variant: variant.to_owned(),
        kind: kind.to_owned(),
        attempts: count(rs.len()),
        tasks: count(tasks.len()),
        first_attempt_pass: Rate::new(
            count(firsts.iter().filter(|r| r.passed).count()),
            count(firsts.len()),
        ),
        attempt_pass: Rate::new(
            count(rs.iter().filter(|r| r.passed).count()),
            count(rs.len()),
        ),
        merged: Rate::new(merged, count(tasks.len())),
        usd_per_attempt: Quantiles::of(&usd),
        tokens_per_attempt: Quantiles::of(
            &rs.iter()
                .map(|r| tokens(&r.usage) as f64)
                .collect::<Vec<_>>(),
        ),
        wall_ms_per_attempt: Quantiles::of(
            &rs.iter()
                .map(|r| r.usage.wall_ms as f64)
                .collect::<Vec<_>>(),
        ),
        usd_total,
        usd_per_merged_task: (merged > 0).then(|| usd_total / f64::from(merged)),
        failure_categories,
    }
}

fn pct(r: &Rate) -> String {
    match r.rate {
        Some(p) => format!(
            "{:>3.0}% [{:>3.0}–{:>3.0}] {}/{}",
            p * 100.0,
            r.wilson.low * 100.0,
            r.wilson.high * 100.0,
            r.successes,
            r.trials
        ),
        None => "–".into(),
    }
}

/// The roll-up as a plain-text table for people: one line per variant and task kind (first-
/// attempt pass rate with its Wilson 95% interval, merged rate, median USD and wall time per
/// attempt with p25–p75, USD per merged task), then the failure categories.
pub fn render_text(r: &Rollup) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} attempts in {} run{}",
        r.attempts,
        r.runs,
        if r.runs == 1 { "" } else { "s" }
    );
    if r.groups.is_empty() {
        out.push_str(
            "no attempts recorded yet (.lightsout/metrics.jsonl is written by `lightsout run`)\n",
        );
        return out;
    }
    let _ = writeln!(
        out,
        "{:<12} {:<16} {:>5} {:>8} {:<24} {:<24} {:<22} {:<22} {:>10}",
        "kind",
        "variant",
        "tasks",
        "attempts",
        "first-attempt pass",
        "merged",
        "USD/attempt med [IQR]",
        "wall s med [IQR]",
        "USD/merged"
    );
    for g in &r.groups {
        let q = |q: Option<Quantiles>, scale: f64, prec: usize| {
            q.map_or_else(
                || "–".to_owned(),
                |q| {
                    format!(
                        "{:.prec$} [{:.prec$}–{:.prec$}]",
                        q.median / scale,
                        q.p25 / scale,
                        q.p75 / scale
                    )
                },
            )
        };
        let _ = writeln!(
            out,
            "{:<12} {:<16} {:>5} {:>8} {:<24} {:<24} {:<22} {:<22} {:>10}",
            g.kind,
            g.variant,
            g.tasks,
            g.attempts,
            pct(&g.first_attempt_pass),
            pct(&g.merged),
            q(g.usd_per_attempt, 1.0, 3),
            q(g.wall_ms_per_attempt, 1000.0, 1),
            g.usd_per_merged_task
                .map_or_else(|| "–".to_owned(), |u| format!("{u:.3}"))
        );
    }
    let failing: Vec<_> = r
        .groups
        .iter()
        .filter(|g| !g.failure_categories.is_empty())
        .collect();
    if !failing.is_empty() {
        out.push_str("\nfailure categories (failed attempts):\n");
        for g in failing {
            let cats: Vec<String> = g
                .failure_categories
                .iter()
                .map(|(c, n)| format!("{c} ×{n}"))
                .collect();
            let _ = writeln!(out, "  {}/{}: {}", g.kind, g.variant, cats.join(", "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Usage;

    fn rec(
        run: &str,
        task: &str,
        attempt: u32,
        variant: &str,
        passed: bool,
        usd: f64,
    ) -> AttemptMetrics {
        AttemptMetrics {
            run_id: run.into(),
            task_id: task.into(),
            requirements: vec![],
            attempt,
            agent: "x".into(),
            replay: false,
            usage: Usage {
                input_tokens: 80,
                output_tokens: 20,
                cost_usd: Some(usd),
                wall_ms: 1000 * u64::from(attempt),
            },
            passed,
            failed_stage: (!passed).then_some(lightsout_core::FailedStage::Holdout),
            human_intervened: false,
            task_kind: Some("code".into()),
            agent_profile: None,
            model: None,
            variant: Some(variant.into()),
            final_outcome: None,
            failure_category: None,
        }
    }

    #[test]
    fn quantiles_match_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4, 10], [10, 25, 50, 75, 90]) = 1.4, 2, 3, 4, 7.6
        let q = Quantiles::of(&[10.0, 2.0, 3.0, 1.0, 4.0]).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(q.p10, 1.4) && close(q.p25, 2.0) && close(q.median, 3.0));
        assert!(close(q.p75, 4.0) && close(q.p90, 7.6) && close(q.max, 10.0));
        assert_eq!(Quantiles::of(&[]), None);
        assert!(close(Quantiles::of(&[5.0]).unwrap().p90, 5.0));
    }

    #[test]
    fn rates_costs_and_merges_per_variant() {
        let rs = vec![
            rec("r1", "T1", 1, "a", true, 1.0),
            rec("r1", "T2", 1, "a", false, 1.0),
            rec("r1", "T2", 2, "a", true, 1.0),
            rec("r1", "T3", 1, "b", false, 0.3),
            rec("r1", "T3", 2, "b", false, 0.3),
            // The same attempt again after a resume: counts once, as the last line.
            rec("r1", "T3", 2, "b", false, 0.3),
        ];
        let r = rollup(&rs);
        assert_eq!((r.attempts, r.runs, r.groups.len()), (5, 1, 2));
        let a = r.group("a", "code").unwrap();
        assert_eq!((a.tasks, a.attempts), (2, 3));
        assert_eq!(
            (a.first_attempt_pass.successes, a.first_attempt_pass.trials),
            (1, 2)
        );
        assert_eq!((a.merged.successes, a.merged.trials), (2, 2));
        assert!((a.usd_per_merged_task.unwrap() - 1.5).abs() < 1e-9);
        // statsmodels: proportion_confint(1, 2, method="wilson") = (0.0945, 0.9055)
        assert!((a.first_attempt_pass.wilson.low - 0.0945).abs() < 1e-4);
        assert!((a.first_attempt_pass.wilson.high - 0.9055).abs() < 1e-4);
        let b = r.group("b", "code").unwrap();
        assert_eq!(b.usd_per_merged_task, None);
        assert_eq!(b.merged.rate, Some(0.0));
        assert_eq!(b.failure_categories.get("holdout"), Some(&2));
        let text = render_text(&r);
        assert!(text.contains("5 attempts in 1 run\n"), "{text}");
        assert!(text.contains("code/b: holdout ×2"), "{text}");
    }

    proptest::proptest! {
        #[test]
        fn quantiles_are_ordered(v in proptest::collection::vec(-1e6f64..1e6, 1..60)) {
            let q = Quantiles::of(&v).unwrap();
            proptest::prop_assert!(q.min <= q.p10 && q.p10 <= q.p25 && q.p25 <= q.median);
            proptest::prop_assert!(q.median <= q.p75 && q.p75 <= q.p90 && q.p90 <= q.max);
        }
    }
}
