//! Trial statistics: satisfaction, the Wilson score interval, pass@k, pass^k, flakiness and
//! the sequential stopping rule.
//!
//! Sources:
//! - Wilson score interval: E. B. Wilson, "Probable inference, the law of succession, and
//!   statistical inference", JASA 22 (1927); the same formula as statsmodels'
//!   `proportion_confint(method="wilson")`.
//! - pass@k: Chen et al., "Evaluating Large Language Models Trained on Code" (2021), the
//!   unbiased estimator `1 - C(n-c, k) / C(n, k)` in its numerically stable product form.
//! - pass^k: Yao et al., "τ-bench" (2024), the estimator `C(c, k) / C(n, k)`: the chance that
//!   k trials drawn without replacement all pass.

use serde::{Deserialize, Serialize};

/// The two-sided 95% normal quantile, `Φ⁻¹(0.975)`.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A closed interval `[low, high]` of proportions. Invariant: `0 <= low <= high <= 1`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower bound, in `0..=1`.
    pub low: f64,
    /// Upper bound, in `low..=1`.
    pub high: f64,
}

/// The Wilson score interval for `passes` successes out of `trials`, at normal quantile `z`.
///
/// With no trials nothing is known and the interval is `[0, 1]`. `passes` above `trials` is
/// clamped to `trials`. `k` passes of `k` give a lower bound of `k / (k + z²)`.
pub fn wilson(passes: u32, trials: u32, z: f64) -> Interval {
    if trials == 0 {
        return Interval {
            low: 0.0,
            high: 1.0,
        };
    }
    let n = f64::from(trials);
    let p = f64::from(passes.min(trials)) / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let low = (centre - half).clamp(0.0, 1.0);
    let high = (centre + half).clamp(low, 1.0);
    // Exact edges: the formula gives 0 and 1 up to rounding at p = 0 and p = 1.
    Interval {
        low: if passes == 0 { 0.0 } else { low },
        high: if passes >= trials { 1.0 } else { high },
    }
}

/// The Wilson 95% interval (`z = 1.96`); see [`wilson`].
pub fn wilson95(passes: u32, trials: u32) -> Interval {
    wilson(passes, trials, Z95)
}

/// Chen et al.'s unbiased pass@k from `n` trials of which `c` passed: the chance that at least
/// one of `k` trials drawn without replacement passes.
///
/// Returns `None` when `k == 0` or `k > n`. `c` above `n` is clamped to `n`.
pub fn pass_at_k(n: u32, c: u32, k: u32) -> Option<f64> {
    if k == 0 || k > n {
        return None;
    }
    let c = c.min(n);
    if n - c < k {
        return Some(1.0);
    }
    // 1 - prod_{i = n-c+1}^{n} (1 - k / i)
    let mut prod = 1.0;
    for i in (n - c + 1)..=n {
        prod *= 1.0 - f64::from(k) / f64::from(i);
    }
    Some(1.0 - prod)
}

/// The pass^k estimator `C(c, k) / C(n, k)`: the chance that all of `k` trials drawn without
/// replacement pass (reliability rather than capability).
///
/// Returns `None` when `k == 0` or `k > n`. `c` above `n` is clamped to `n`.
pub fn pass_hat_k(n: u32, c: u32, k: u32) -> Option<f64> {
    if k == 0 || k > n {
        return None;
    }
    let c = c.min(n);
    if c < k {
        return Some(0.0);
    }
    // prod_{i=0}^{k-1} (c - i) / (n - i)
    let mut prod = 1.0;
    for i in 0..k {
        prod *= f64::from(c - i) / f64::from(n - i);
    }
    Some(prod)
}

/// Summary statistics of one scenario's trials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialStats {
    /// Trials that passed.
    pub passes: u32,
    /// Trials run.
    pub trials: u32,
    /// `passes / trials`, 0 when no trial ran.
    pub satisfaction: f64,
    /// Wilson 95% interval of the satisfaction.
    pub wilson: Interval,
    /// The `k` used for pass@k and pass^k: the requested trial count, capped at `trials`.
    pub k: u32,
    /// pass@k (Chen et al. 2021); `None` when no trial ran.
    pub pass_at_k: Option<f64>,
    /// pass^k (Yao et al. 2024); `None` when no trial ran.
    pub pass_hat_k: Option<f64>,
    /// True when some trials passed and some failed.
    pub flaky: bool,
}

impl TrialStats {
    /// Statistics for `passes` of `trials`, with pass@k/pass^k at `k = min(k, trials)`.
    pub fn new(passes: u32, trials: u32, k: u32) -> Self {
        let passes = passes.min(trials);
        let k = k.min(trials).max(u32::from(trials > 0));
        TrialStats {
            passes,
            trials,
            satisfaction: if trials == 0 {
                0.0
            } else {
                f64::from(passes) / f64::from(trials)
            },
            wilson: wilson95(passes, trials),
            k,
            pass_at_k: pass_at_k(trials, passes, k),
            pass_hat_k: pass_hat_k(trials, passes, k),
            flaky: passes > 0 && passes < trials,
        }
    }
}

/// What the sequential gate decides after a trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sequential {
    /// Run another trial.
    Continue,
    /// Stop: the Wilson lower bound is at or above the threshold.
    ClearPass,
    /// Stop: the Wilson upper bound is below the threshold.
    ClearFail,
    /// Stop: the minimum trials ran and no threshold applies, or the cap was reached.
    Done,
}

/// The sequential stopping rule.
///
/// Runs at least `min_trials`, except that a scenario whose Wilson 95% upper bound has fallen
/// below the `threshold` stops at once (`ClearFail`: no further trial can lift it to a pass
/// within the cap's interval); with a `threshold`, keeps going while the interval straddles
/// it, and stops at `max_trials` whatever the interval says. Without a threshold it stops at
/// `min_trials`. `max_trials` below `min_trials` is treated as `min_trials`.
///
/// Looking at the interval after every trial inflates the chance of a wrong early stop a little
/// above 5% (the usual peeking caveat); the cap bounds the cost, and the gate judges the final
/// interval, not the stopping reason.
pub fn sequential(
    passes: u32,
    trials: u32,
    min_trials: u32,
    max_trials: u32,
    threshold: Option<f64>,
) -> Sequential {
    let max_trials = max_trials.max(min_trials);
    if trials < min_trials {
        return match threshold {
            Some(t) if trials > 0 && wilson95(passes, trials).high < t => Sequential::ClearFail,
            _ => Sequential::Continue,
        };
    }
    let Some(threshold) = threshold else {
        return Sequential::Done;
    };
    let ci = wilson95(passes, trials);
    if ci.low >= threshold {
        Sequential::ClearPass
    } else if ci.high < threshold {
        Sequential::ClearFail
    } else if trials >= max_trials {
        Sequential::Done
    } else {
        Sequential::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    /// Reference values from statsmodels 0.14
    /// `statsmodels.stats.proportion.proportion_confint(c, n, alpha=0.05, method="wilson")`.
    const WILSON_REF: &[(u32, u32, f64, f64)] = &[
        (0, 1, 0.0, 0.793_450_685_622_762_7),
        (1, 1, 0.206_549_314_377_237_4, 1.0),
        (5, 5, 0.565_517_535_216_825_2, 1.0),
        (4, 5, 0.375_534_629_762_525_2, 0.963_775_891_367_569_8),
        (0, 10, 0.0, 0.277_532_799_862_889_26),
        (7, 10, 0.396_778_147_461_145_37, 0.892_208_732_593_698_9),
        (35, 35, 0.901_099_007_675_595_8, 1.0),
        (34, 35, 0.854_669_127_663_863_2, 0.994_938_508_144_555_6),
        (50, 100, 0.403_831_530_365_995_6, 0.596_168_469_634_004_4),
        (1, 20, 0.008_881_448_800_795_402, 0.236_131_193_446_742_1),
    ];

    /// Reference values from the numpy estimator printed in Chen et al. (2021), Figure 3:
    /// `1 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1))` (1.0 when `n - c < k`).
    const PASS_AT_K_REF: &[(u32, u32, u32, f64)] = &[
        (10, 3, 1, 0.300_000_000_000_000_04),
        (10, 3, 5, 0.916_666_666_666_666_6),
        (10, 0, 5, 0.0),
        (10, 10, 1, 1.0),
        (20, 5, 10, 0.983_746_130_030_959_8),
        (5, 2, 2, 0.7),
        (200, 13, 100, 0.999_919_497_198_805_5),
    ];

    /// Reference values from Python's `math.comb(c, k) / math.comb(n, k)` (τ-bench pass^k).
    const PASS_HAT_K_REF: &[(u32, u32, u32, f64)] = &[
        (10, 7, 3, 0.291_666_666_666_666_7),
        (5, 5, 5, 1.0),
        (5, 4, 5, 0.0),
        (20, 15, 10, 0.016_253_869_969_040_248),
    ];

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn wilson_matches_statsmodels() {
        for &(c, n, lo, hi) in WILSON_REF {
            let ci = wilson95(c, n);
            assert!(close(ci.low, lo), "{c}/{n}: low {} != {lo}", ci.low);
            assert!(close(ci.high, hi), "{c}/{n}: high {} != {hi}", ci.high);
        }
    }

    #[test]
    fn design_note_arithmetic_holds() {
        // k of k gives a lower bound of k / (k + z²): 0.9 needs 35 trials, 34 is not enough.
        assert!(wilson95(35, 35).low >= 0.9);
        assert!(wilson95(34, 34).low < 0.9);
        let k = 20.0;
        assert!(close(wilson95(20, 20).low, k / (k + Z95 * Z95)));
    }

    #[test]
    fn pass_at_k_matches_chen_reference() {
        for &(n, c, k, want) in PASS_AT_K_REF {
            let got = pass_at_k(n, c, k).unwrap();
            assert!(close(got, want), "pass@{k} n={n} c={c}: {got} != {want}");
        }
        assert_eq!(pass_at_k(3, 1, 4), None);
        assert_eq!(pass_at_k(3, 1, 0), None);
    }

    #[test]
    fn pass_hat_k_matches_reference() {
        for &(n, c, k, want) in PASS_HAT_K_REF {
            let got = pass_hat_k(n, c, k).unwrap();
            assert!(close(got, want), "pass^{k} n={n} c={c}: {got} != {want}");
        }
    }

    #[test]
    fn sequential_stops_when_clear_and_at_cap() {
        // No threshold: exactly the minimum.
        assert_eq!(sequential(3, 3, 3, 50, None), Sequential::Done);
        assert_eq!(sequential(2, 2, 3, 50, None), Sequential::Continue);
        // 5/5 straddles 0.9; keeps going until 35/35 clears it.
        assert_eq!(sequential(5, 5, 5, 50, Some(0.9)), Sequential::Continue);
        assert_eq!(sequential(34, 34, 5, 50, Some(0.9)), Sequential::Continue);
        assert_eq!(sequential(35, 35, 5, 50, Some(0.9)), Sequential::ClearPass);
        // 0/5 is clearly below 0.9.
        assert_eq!(sequential(0, 5, 5, 50, Some(0.9)), Sequential::ClearFail);
        // A clear failure stops before the minimum; a straddling interval does not.
        assert_eq!(sequential(0, 3, 35, 50, Some(0.9)), Sequential::ClearFail);
        assert_eq!(sequential(3, 3, 35, 50, Some(0.9)), Sequential::Continue);
        // The cap wins.
        assert_eq!(sequential(10, 10, 5, 10, Some(0.9)), Sequential::Done);
    }

    #[test]
    fn stats_flag_flaky_only_when_mixed() {
        assert!(TrialStats::new(2, 5, 5).flaky);
        assert!(!TrialStats::new(5, 5, 5).flaky);
        assert!(!TrialStats::new(0, 5, 5).flaky);
        let none = TrialStats::new(0, 0, 5);
        assert_eq!((none.satisfaction, none.pass_at_k), (0.0, None));
    }

    /// Coverage of the Wilson 95% interval: the probability, over `Binomial(k, p)`, that the
    /// interval of the observed count contains `p`, computed exactly (the sum of the binomial
    /// probabilities of the counts whose interval contains `p`).
    fn coverage(k: u32, p: f64) -> f64 {
        let mut prob = (1.0 - p).powi(k as i32); // P(X = 0)
        let mut covered = 0.0;
        for c in 0..=k {
            if c > 0 {
                // P(X = c) from P(X = c - 1).
                prob *= f64::from(k - c + 1) / f64::from(c) * p / (1.0 - p);
            }
            let ci = wilson95(c, k);
            if ci.low <= p && p <= ci.high {
                covered += prob;
            }
        }
        covered
    }

    #[test]
    fn wilson_covers_95_percent_on_average_and_the_simulation_agrees() {
        // Exact coverage over a grid of p in [0.05, 0.95] for k in {5, 20, 100}. Pointwise, no
        // interval for a binomial count keeps 0.94 everywhere at nominal 0.95: coverage
        // oscillates with p because the count is discrete (Brown, Cai and DasGupta 2001,
        // "Interval estimation for a binomial proportion", Statistical Science 16(2)); Wilson's
        // dips reach 0.892 at k = 5 and 0.927 at k = 100. What the gate relies on is that the
        // mean coverage over p holds the nominal level and the dips stay bounded.
        for (k, worst_allowed) in [(5u32, 0.89), (20, 0.915), (100, 0.925)] {
            let grid: Vec<f64> = (0..=900)
                .map(|i| coverage(k, 0.05 + f64::from(i) * 0.001))
                .collect();
            let mean = grid.iter().sum::<f64>() / grid.len() as f64;
            let worst = grid.iter().copied().fold(1.0, f64::min);
            assert!(mean >= 0.94, "k={k}: mean coverage {mean:.4}");
            assert!(worst >= worst_allowed, "k={k}: worst coverage {worst:.4}");
        }
        // A seeded simulation: drawing k trials at rate p and asking whether the interval
        // contains p agrees with the exact figure, so the interval is computed as it claims.
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        for k in [5u32, 20, 100] {
            let mut total = 0.0;
            for i in 0..=18 {
                let p = 0.05 + f64::from(i) * 0.05;
                let runs = 4000;
                let mut inside = 0u32;
                for _ in 0..runs {
                    let c = (0..k).filter(|_| rng.r#gen::<f64>() < p).count() as u32;
                    let ci = wilson95(c, k);
                    inside += u32::from(ci.low <= p && p <= ci.high);
                }
                let sim = f64::from(inside) / f64::from(runs);
                // 4000 runs: a standard error of about 0.0035 around the exact coverage.
                let exact = coverage(k, p);
                assert!(
                    (sim - exact).abs() < 0.02,
                    "k={k} p={p:.2}: simulated {sim:.4} vs exact {exact:.4}"
                );
                total += sim;
            }
            let mean = total / 19.0;
            assert!(mean >= 0.94, "k={k}: simulated mean coverage {mean:.4}");
        }
    }

    fn binom(n: u32, k: u32) -> f64 {
        (0..k).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
    }

    proptest! {
        #[test]
        fn wilson_is_ordered_and_contains_the_estimate(n in 1u32..2000, c_frac in 0.0f64..=1.0) {
            let c = ((f64::from(n) * c_frac) as u32).min(n);
            let ci = wilson95(c, n);
            let p = f64::from(c) / f64::from(n);
            prop_assert!(0.0 <= ci.low && ci.low <= p + 1e-12);
            prop_assert!(p - 1e-12 <= ci.high && ci.high <= 1.0);
        }

        #[test]
        fn wilson_lower_bound_grows_with_passes(n in 1u32..500, c in 0u32..500) {
            let c = c.min(n.saturating_sub(1));
            prop_assert!(wilson95(c + 1, n).low >= wilson95(c, n).low);
        }

        #[test]
        fn wilson_narrows_with_more_trials(n in 1u32..500) {
            let a = wilson95(n, n);
            let b = wilson95(2 * n, 2 * n);
            prop_assert!(b.low >= a.low);
        }

        #[test]
        fn pass_at_k_equals_the_binomial_form(n in 1u32..40, c in 0u32..40, k in 1u32..40) {
            let c = c.min(n);
            let k = k.min(n);
            let got = pass_at_k(n, c, k).unwrap();
            let want = if n - c < k { 1.0 } else { 1.0 - binom(n - c, k) / binom(n, k) };
            prop_assert!((got - want).abs() < 1e-9, "{got} vs {want}");
            prop_assert!((0.0..=1.0).contains(&got));
        }

        #[test]
        fn pass_at_one_is_satisfaction_and_bounds_pass_hat(n in 1u32..60, c in 0u32..60, k in 1u32..60) {
            let c = c.min(n);
            let k = k.min(n);
            let s = TrialStats::new(c, n, 1);
            prop_assert!((s.pass_at_k.unwrap() - s.satisfaction).abs() < 1e-12);
            let hat = pass_hat_k(n, c, k).unwrap();
            let at = pass_at_k(n, c, k).unwrap();
            // All k passing is never likelier than at least one passing.
            prop_assert!(hat <= at + 1e-12);
            prop_assert!((0.0..=1.0).contains(&hat));
        }

        #[test]
        fn sequential_never_exceeds_the_cap(
            min in 1u32..20, extra in 0u32..60, t in 0.0f64..1.0, p in 0.0f64..1.0,
        ) {
            let max = min + extra;
            // Replay a deterministic pass pattern with rate p until the rule stops.
            let mut passes = 0u32;
            let mut trials = 0u32;
            loop {
                let decision = sequential(passes, trials, min, max, Some(t));
                if decision != Sequential::Continue {
                    break;
                }
                trials += 1;
                if (f64::from(trials) * p).floor() > (f64::from(trials - 1) * p).floor() {
                    passes += 1;
                }
                prop_assert!(trials <= max);
            }
            prop_assert!(trials <= max);
            // Only a clear failure stops short of the minimum.
            let decision = sequential(passes, trials, min, max, Some(t));
            prop_assert!(trials >= min || decision == Sequential::ClearFail);
        }
    }
}
