//! The Wilson score interval, so that a report built from raw counts shows the same interval as the
//! eval engine.

/// The two-sided 95% normal quantile, `Φ⁻¹(0.975)`.
const Z95: f64 = 1.959_963_984_540_054;

/// Wilson 95% score interval `(lower, upper)` for `passes` successes in `trials` trials.
///
/// Returns `(0.0, 1.0)` when `trials == 0` (nothing is known). `passes` above `trials` is capped.
/// Both ends are clamped to `[0, 1]` against rounding.
///
/// Source: E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
/// JASA 22 (1927) 209-212; identical to statsmodels'
/// `statsmodels.stats.proportion.proportion_confint(count, nobs, alpha=0.05, method="wilson")`.
pub(super) fn wilson95(passes: u32, trials: u32) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let n = f64::from(trials);
    let p = f64::from(passes.min(trials)) / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    (
        (centre - half).clamp(0.0, 1.0),
        (centre + half).clamp(0.0, 1.0),
    )
}

#[cfg(test)]
mod tests {
    use super::wilson95;
    use proptest::prelude::*;

    /// Reference values: statsmodels 0.14 `proportion_confint(x, n, method="wilson")`.
    #[test]
    fn matches_statsmodels_reference_values() {
        let cases = [
            (8, 10, 0.490_162_471_5, 0.943_317_848_5),
            (10, 10, 0.722_467_200_1, 1.0),
            (0, 10, 0.0, 0.277_532_799_9),
            (35, 35, 0.901_099_007_7, 1.0),
            (1, 2, 0.094_531_205_7, 0.905_468_794_3),
            (45, 50, 0.786_397_685_6, 0.956_524_235_1),
        ];
        for (x, n, lo, hi) in cases {
            let (l, h) = wilson95(x, n);
            assert!((l - lo).abs() < 1e-9, "{x}/{n}: lower {l} != {lo}");
            assert!((h - hi).abs() < 1e-9, "{x}/{n}: upper {h} != {hi}");
        }
    }

    #[test]
    fn no_trials_is_the_whole_unit_interval() {
        assert_eq!(wilson95(0, 0), (0.0, 1.0));
        assert_eq!(wilson95(3, 0), (0.0, 1.0));
    }

    proptest! {
        #[test]
        fn interval_contains_the_rate(trials in 1u32..10_000, passes in 0u32..10_000) {
            let passes = passes.min(trials);
            let (l, h) = wilson95(passes, trials);
            let p = f64::from(passes) / f64::from(trials);
            prop_assert!((0.0..=1.0).contains(&l) && (0.0..=1.0).contains(&h));
            prop_assert!(l <= p + 1e-12 && p <= h + 1e-12);
        }

        #[test]
        fn all_passes_lower_bound_is_k_over_k_plus_z2(k in 1u32..5_000) {
            // k of k passes: lower = k / (k + z²), the arithmetic the spec format warns about.
            let (l, _) = wilson95(k, k);
            let z2 = super::Z95 * super::Z95;
            prop_assert!((l - f64::from(k) / (f64::from(k) + z2)).abs() < 1e-9);
        }
    }
}
