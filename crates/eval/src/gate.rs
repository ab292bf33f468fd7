//! The gate: a policy (from a TOML/YAML file or from a spec's `## Verification gate` rules)
//! judged against a run, giving a verdict with reasons.
//!
//! # One resolved policy
//! `lightsout run`, `lightsout eval` and `lightsout report` judge with the policy of
//! [`GatePolicy::resolve`]: every rule of every source (the spec's gate, `[gate]` in
//! `lightsout.toml`, the holdout's `gate.toml`, `--gate` files) is kept, each tagged with where
//! it came from, and the built-in floor ([`GatePolicy::floor`]) is always added. A verdict needs
//! every rule to hold, so the resolved policy is never weaker than any of its sources: the
//! strictest wins and nothing is dropped.
//!
//! # Judged per scenario, never by an average
//! Each rule is judged on each matching scenario by that scenario's own trials:
//! - `min_lower_bound = b`: the scenario's Wilson 95% lower bound must be at least `b`. All
//!   trials passing but too few of them to reach `b` (k of k gives `k / (k + 3.84)`) is
//!   [`GateStatus::InsufficientEvidence`], never a pass.
//! - `min_satisfaction = s`: a scenario whose every trial passed holds; a scenario with a
//!   failing trial is flaky and holds only when its own Wilson lower bound is at least `s`.
//! - `trials = n`: a scenario that ran fewer than `n` trials without failing is insufficient
//!   evidence.
//!
//! One rule is not about scenarios but about the holdout itself:
//! - `min_strength = b`: the holdout must kill mutants of the merged build (`lightsout
//!   strength`) with a Wilson 95% lower bound of the kill rate of at least `b`. It is the
//!   **lower bound**, not the point estimate, that must clear `b`: 67 of 70 mutants killed
//!   (95.7%) gives a lower bound of 0.881, which does not clear 0.9. A kill rate at or above `b`
//!   whose bound is below it is [`GateStatus::InsufficientEvidence`] (too few mutants judged), a
//!   kill rate below `b` fails, and no measurement at all is insufficient evidence. It is judged
//!   by [`GatePolicy::evaluate_strength`] on the merged build after the last merge, never by
//!   [`GatePolicy::evaluate`] (a candidate's holdout run has no mutants), and takes no `tag`.
//!
//! And one is about the twins the evidence was gathered against (see [`crate::twins`]):
//! - every verdict in which some scenario rests on a twin that is not fresh carries a
//!   [`TWIN_FIDELITY_RULE`] reason (source `floor`, no rule can loosen it): a scenario resting on
//!   a drifted or retired twin fails, one resting on a suspect twin is named as weakened and
//!   holds;
//! - `fail_on_twin = "suspect"` (or `"drifted"`, `"retired"`): a matching scenario resting on a
//!   twin in that state or a worse one fails.
//!
//! The trial counts the runner uses come from the same rules ([`GatePolicy::trials_for`]): the
//! larger of a rule's `trials` and the fewest trials whose all-pass lower bound reaches its
//! `min_lower_bound` (0.9 needs 35).
//!
//! Policy file (TOML; YAML has the same shape):
//! ```toml
//! [[rule]]
//! tag = "@critical"
//! min_lower_bound = 0.9   # every @critical scenario: Wilson 95% lower bound >= 0.9
//! trials = 35             # and at least 35 trials (capped by --max-trials)
//!
//! [[rule]]
//! min_satisfaction = 0.95 # mean satisfaction of the whole suite
//!
//! [[rule]]
//! no_regressions = true   # no guard-bucket scenario may fail
//!
//! [[rule]]
//! min_strength = 0.8      # Wilson 95% lower bound of the share of mutants the holdout kills
//!
//! [[rule]]
//! tag = "@critical"
//! fail_on_twin = "suspect" # @critical evidence may not rest on a suspect twin either
//! ```

use crate::Error;
use crate::result::ScenarioResult;
use crate::twins::TwinState;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One gate rule; the same data as `lightsout_spec::GateRule` without its source position.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// The rule as written, for reasons (optional in files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Where the rule came from (`spec specs/x.md:155`, `lightsout.toml [gate]`, `holdout
    /// gate.toml`, `floor`); set by [`GatePolicy::resolve`], shown in reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Tag the rule applies to (`@critical`); all scenarios when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Each matching scenario's Wilson 95% lower bound must be at least this (0..=1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_lower_bound: Option<f64>,
    /// The mean satisfaction of the matching scenarios must be at least this (0..=1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_satisfaction: Option<f64>,
    /// Minimum trials for matching scenarios (capped by `--max-trials`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trials: Option<u32>,
    /// No guard-bucket scenario may regress.
    #[serde(default)]
    pub no_regressions: bool,
    /// The holdout's strength: the Wilson 95% lower bound of the share of mutants of the merged
    /// build it kills must be at least this (`0..1`). Judged by
    /// [`GatePolicy::evaluate_strength`], never per scenario; a rule with it takes no `tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_strength: Option<f64>,
    /// A matching scenario whose evidence rests on a twin in this state or a worse one fails
    /// (`suspect`, `drifted` or `retired`; see [`crate::twins`]). Drifted and retired twins
    /// fail the gate without any rule; `fail_on_twin = "suspect"` makes a suspect twin fail
    /// too instead of only weakening.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_on_twin: Option<TwinState>,
}

impl PolicyRule {
    fn applies_to(&self, tags: &[String]) -> bool {
        self.tag.as_deref().is_none_or(|t| {
            let t = t.trim_start_matches('@');
            tags.iter().any(|x| x.trim_start_matches('@') == t)
        })
    }

    /// The same rule with `text` and `source` cleared: two rules with equal keys demand the
    /// same thing.
    fn key(&self) -> PolicyRule {
        PolicyRule {
            text: None,
            source: None,
            ..self.clone()
        }
    }

    /// The fewest trials this rule asks of a scenario it applies to: its `trials`, and the
    /// fewest trials whose all-pass Wilson lower bound reaches its `min_lower_bound`.
    fn min_trials(&self) -> Option<u32> {
        let from_bound = self.min_lower_bound.and_then(trials_to_reach);
        match (self.trials, from_bound) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    fn label(&self) -> String {
        if let Some(t) = &self.text {
            return t.clone();
        }
        let scope = self
            .tag
            .as_deref()
            .map_or("all scenarios".to_owned(), |t| format!("{t} scenarios"));
        let mut parts = Vec::new();
        if let Some(b) = self.min_lower_bound {
            parts.push(format!("{scope}: Wilson lower bound >= {b}"));
        }
        if let Some(s) = self.min_satisfaction {
            parts.push(format!("{scope}: satisfaction >= {s}"));
        }
        if self.no_regressions {
            parts.push("no regressions".to_owned());
        }
        if let Some(b) = self.min_strength {
            parts.push(format!(
                "holdout strength: Wilson lower bound of mutants killed >= {b}"
            ));
        }
        if let Some(t) = self.fail_on_twin {
            parts.push(format!(
                "{scope}: no evidence resting on a twin {} or worse",
                t.as_str()
            ));
        }
        if parts.is_empty()
            && let Some(n) = self.trials
        {
            parts.push(format!("{scope}: at least {n} trials"));
        }
        parts.join("; ")
    }
}

/// A gate policy: every rule must hold.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatePolicy {
    /// The rules.
    #[serde(default, rename = "rule", alias = "rules")]
    pub rules: Vec<PolicyRule>,
}

/// Where a gate rule or a whole verdict stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    /// Every check held with enough trials.
    Passed,
    /// Nothing failed, but too few trials ran to clear a bound (k of k trials give a Wilson
    /// lower bound of `k / (k + 3.84)`): never a pass.
    InsufficientEvidence,
    /// A check failed.
    Failed,
}

impl GateStatus {
    /// `passed`, `insufficient_evidence` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            GateStatus::Passed => "passed",
            GateStatus::InsufficientEvidence => "insufficient_evidence",
            GateStatus::Failed => "failed",
        }
    }

    /// The worse of the two: failed over insufficient evidence over passed.
    #[must_use]
    pub fn worst(self, other: GateStatus) -> GateStatus {
        self.max(other)
    }
}

fn passed_status() -> GateStatus {
    GateStatus::Passed
}

/// One rule's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateReason {
    /// The rule, as written or derived.
    pub rule: String,
    /// Where the rule came from (see [`PolicyRule::source`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Whether it held (`status == Passed`).
    pub passed: bool,
    /// Held, failed, or not enough trials to tell.
    #[serde(default = "passed_status")]
    pub status: GateStatus,
    /// Why, naming scenario ids and requirement ids only (never scenario text).
    pub detail: String,
}

/// The gate's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateVerdict {
    /// True when every rule held (`status == Passed`).
    pub passed: bool,
    /// The worst status of the rules: one failed rule fails the gate; otherwise one rule
    /// without enough trials makes it insufficient evidence.
    #[serde(default = "passed_status")]
    pub status: GateStatus,
    /// One reason per rule check.
    pub reasons: Vec<GateReason>,
}

/// How reports name `rule`: its text as written, or a description derived from its fields
/// (`@critical scenarios: Wilson lower bound >= 0.9`).
pub fn rule_label(rule: &PolicyRule) -> String {
    rule.label()
}

/// The fewest trials `rule` asks of each scenario it applies to: its `trials`, or what its
/// `min_lower_bound` needs ([`trials_to_reach`]), whichever is larger.
pub fn rule_min_trials(rule: &PolicyRule) -> Option<u32> {
    rule.min_trials()
}

/// One source of gate rules for [`GatePolicy::resolve`].
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyLayer {
    /// Where the rules come from, for reports (`spec specs/x.md`, `lightsout.toml [gate]`).
    pub source: String,
    /// The rules.
    pub policy: GatePolicy,
}

impl PolicyLayer {
    /// A layer of `policy` from `source`.
    pub fn new(source: impl Into<String>, policy: GatePolicy) -> Self {
        PolicyLayer {
            source: source.into(),
            policy,
        }
    }
}

/// The fewest trials `k` whose all-pass Wilson 95% lower bound, `k / (k + z²)`, is at least
/// `bound`; `None` when no count reaches it (`bound >= 1`) or the bound asks nothing
/// (`bound <= 0`). 0.9 gives 35, 0.8 gives 16.
pub fn trials_to_reach(bound: f64) -> Option<u32> {
    if bound.is_nan() || bound <= 0.0 {
        return None;
    }
    if bound >= 1.0 {
        return None;
    }
    let z2 = crate::stats::Z95 * crate::stats::Z95;
    // k / (k + z²) >= b  ⇔  k >= b z² / (1 - b); the loop absorbs rounding at the boundary.
    let mut k = (bound * z2 / (1.0 - bound)).ceil().max(1.0);
    if k > f64::from(u32::MAX) {
        return None;
    }
    while crate::stats::wilson95(k as u32, k as u32).low < bound {
        k += 1.0;
    }
    Some(k as u32)
}

/// What the gate knows about the holdout's strength, for `min_strength` rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrengthEvidence {
    /// A measurement: `killed` of `total` judged mutants (timeouts and builds the holdout could
    /// not run against count as killed, as in [`crate::StrengthReport`]).
    Measured {
        /// Mutants killed.
        killed: u32,
        /// Mutants judged (equivalent and unapplicable ones left out).
        total: u32,
        /// True when `total` is a seeded sample of the mutants (more could be judged).
        sampled: bool,
    },
    /// No usable measurement, and why (`not measured`, the tool failed, another build).
    Missing(String),
}

impl StrengthEvidence {
    /// The evidence of a strength report.
    pub fn of(report: &crate::StrengthReport) -> Self {
        let total = report.total;
        let killed = total.saturating_sub(report.survived);
        StrengthEvidence::Measured {
            killed: u32::try_from(killed).unwrap_or(u32::MAX),
            total: u32::try_from(total).unwrap_or(u32::MAX),
            sampled: report.sample_seed.is_some(),
        }
    }

    /// The status of a `min_strength = bound` rule, and why.
    fn judge(&self, bound: f64) -> (GateStatus, String) {
        let (killed, total, sampled) = match self {
            StrengthEvidence::Missing(why) => {
                return (
                    GateStatus::InsufficientEvidence,
                    format!("holdout strength {why}"),
                );
            }
            StrengthEvidence::Measured {
                killed,
                total,
                sampled,
            } => (*killed, *total, *sampled),
        };
        if total == 0 {
            return (
                GateStatus::InsufficientEvidence,
                "no mutant was judged".to_owned(),
            );
        }
        let killed = killed.min(total);
        let w = crate::stats::wilson95(killed, total);
        let rate = f64::from(killed) / f64::from(total);
        let figure = format!(
            "{killed} of {total} mutants killed ({:.1}%), Wilson 95% lower bound {:.3}",
            rate * 100.0,
            w.low
        );
        if w.low >= bound {
            (GateStatus::Passed, format!("{figure} >= {bound}"))
        } else if rate >= bound {
            let more = if sampled {
                "judge more of them (`[strength] max_mutants`)"
            } else {
                "every mutant was judged: kill more of them"
            };
            let need = mutants_to_reach(rate, bound).map_or(String::new(), |n| {
                format!(" (at this kill rate about {n} mutants would)")
            });
            (
                GateStatus::InsufficientEvidence,
                format!("{figure} < {bound}: too few mutants to clear the bound{need}; {more}"),
            )
        } else {
            (
                GateStatus::Failed,
                format!("{figure}: the kill rate is below {bound}"),
            )
        }
    }
}

/// The fewest mutants `n` at kill rate `rate` whose Wilson lower bound reaches `bound`;
/// `None` when the rate is not above the bound (no count reaches it) or past a million.
fn mutants_to_reach(rate: f64, bound: f64) -> Option<u32> {
    if rate.is_nan() || rate <= bound || !(0.0..=1.0).contains(&rate) {
        return None;
    }
    (1..=1_000_000u32).find(|&n| {
        // `rate` is in (bound, 1], so the product fits a u32 for n <= 1e6.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let k = (rate * f64::from(n)).floor() as u32;
        crate::stats::wilson95(k, n).low >= bound
    })
}

impl GatePolicy {
    /// The built-in policy: every scenario's satisfaction at least 0.95 (a scenario with a
    /// failing trial holds only when its own Wilson lower bound reaches 0.95) and no
    /// regressions. [`resolve`](Self::resolve) always includes it as the floor.
    pub fn default_policy() -> Self {
        GatePolicy {
            rules: vec![
                PolicyRule {
                    min_satisfaction: Some(0.95),
                    ..PolicyRule::default()
                },
                PolicyRule {
                    no_regressions: true,
                    ..PolicyRule::default()
                },
            ],
        }
    }

    /// True when the policy has no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The floor every resolved policy contains: [`default_policy`](Self::default_policy)
    /// with source `floor`.
    pub fn floor() -> Self {
        let mut p = Self::default_policy();
        for r in &mut p.rules {
            r.source = Some("floor".to_owned());
        }
        p
    }

    /// The one policy that `run`, `eval` and `report` judge with: every rule of every layer, in
    /// layer order, each with its layer's source (a rule that already names a source keeps it),
    /// then the [`floor`](Self::floor). A rule demanding exactly what an earlier one demands is
    /// kept once, with both sources named (`spec x.md; holdout gate.toml`).
    ///
    /// Invariant: for any scenario results, a verdict that passes under the resolved policy
    /// passes under every layer, and [`trials_for`](Self::trials_for) and
    /// [`threshold_for`](Self::threshold_for) are at least every layer's (nothing is dropped,
    /// the strictest wins; a property test holds it).
    ///
    /// # Errors
    /// [`Error::Policy`] when a rule is invalid (see [`from_toml`](Self::from_toml)).
    pub fn resolve(layers: impl IntoIterator<Item = PolicyLayer>) -> Result<Self, Error> {
        let mut rules: Vec<PolicyRule> = Vec::new();
        let all = layers
            .into_iter()
            .chain(std::iter::once(PolicyLayer::new("floor", Self::floor())));
        for layer in all {
            for rule in layer.policy.rules {
                let source = rule.source.clone().unwrap_or_else(|| layer.source.clone());
                let key = rule.key();
                if let Some(same) = rules.iter_mut().find(|r| r.key() == key) {
                    let named = same.source.get_or_insert_with(String::new);
                    if !named.split("; ").any(|s| s == source) {
                        if !named.is_empty() {
                            named.push_str("; ");
                        }
                        named.push_str(&source);
                    }
                    continue;
                }
                rules.push(PolicyRule {
                    source: Some(source),
                    ..rule
                });
            }
        }
        GatePolicy { rules }.validate()
    }

    /// A policy from a spec's parsed `## Verification gate` rules.
    pub fn from_spec_rules(rules: &[lightsout_spec::GateRule]) -> Self {
        GatePolicy {
            rules: rules
                .iter()
                .map(|r| PolicyRule {
                    text: Some(r.text.clone()),
                    source: None,
                    tag: r.tag.clone(),
                    min_lower_bound: r.min_lower_bound,
                    min_satisfaction: r.min_satisfaction,
                    trials: r.trials,
                    no_regressions: r.no_regressions,
                    min_strength: r.min_strength,
                    fail_on_twin: None,
                })
                .collect(),
        }
    }

    /// A policy from `spec`'s gate rules, each with source `spec <path>:<line>`.
    pub fn from_spec(spec: &lightsout_spec::Spec) -> Self {
        let path = spec
            .path
            .as_deref()
            .map_or_else(|| spec.meta.id.clone(), |p| p.display().to_string());
        let mut p = Self::from_spec_rules(&spec.gate);
        for (rule, src) in p.rules.iter_mut().zip(&spec.gate) {
            rule.source = Some(format!("spec {path}:{}", src.span.line));
        }
        p
    }

    /// Parses a policy from TOML text.
    ///
    /// # Errors
    /// [`Error::Policy`] when the text is not a valid policy.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let p: GatePolicy = toml::from_str(text).map_err(|e| Error::Policy(e.to_string()))?;
        p.validate()
    }

    /// Parses a policy from YAML text.
    ///
    /// # Errors
    /// [`Error::Policy`] when the text is not a valid policy.
    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        let p: GatePolicy =
            serde_norway::from_str(text).map_err(|e| Error::Policy(e.to_string()))?;
        p.validate()
    }

    /// The policy as TOML (the format [`from_toml`](Self::from_toml) reads), sources included.
    ///
    /// # Errors
    /// [`Error::Policy`] when a value cannot be written (a NaN threshold).
    pub fn to_toml(&self) -> Result<String, Error> {
        toml::to_string(self).map_err(|e| Error::Policy(e.to_string()))
    }

    /// Reads a policy file: `.yaml`/`.yml` as YAML, anything else as TOML.
    ///
    /// # Errors
    /// [`Error::Io`] when unreadable, [`Error::Policy`] when invalid.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)?;
        let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if yaml {
            Self::from_yaml(&text)
        } else {
            Self::from_toml(&text)
        }
        .map_err(|e| match e {
            Error::Policy(m) => Error::Policy(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    fn validate(self) -> Result<Self, Error> {
        for r in &self.rules {
            for v in [r.min_lower_bound, r.min_satisfaction]
                .into_iter()
                .flatten()
            {
                if !(0.0..=1.0).contains(&v) {
                    return Err(Error::Policy(format!("threshold {v} is outside 0..=1")));
                }
            }
            if let Some(b) = r.min_lower_bound
                && b >= 1.0
            {
                return Err(Error::Policy(format!(
                    "a Wilson lower bound of {b} can never be reached (k of k trials give \
                     k / (k + 3.84)); use a bound below 1"
                )));
            }
            if let Some(t) = r.fail_on_twin
                && !t.is_stale()
            {
                return Err(Error::Policy(format!(
                    "fail_on_twin = \"{}\": name a state that weakens evidence: \"suspect\", \
                     \"drifted\" or \"retired\"",
                    t.as_str()
                )));
            }
            if let Some(b) = r.min_strength {
                if !(0.0..1.0).contains(&b) {
                    return Err(Error::Policy(format!(
                        "min_strength = {b}: the Wilson lower bound of a kill rate is below 1 \
                         (n of n mutants killed give n / (n + 3.84)); use a share in 0..1 (0.8)"
                    )));
                }
                if let Some(t) = &r.tag {
                    return Err(Error::Policy(format!(
                        "min_strength measures the whole holdout, not {t} scenarios; put it in a \
                         rule of its own without a tag"
                    )));
                }
            }
        }
        Ok(self)
    }

    /// The Wilson lower bound the sequential gate aims at for a scenario with `tags`: the
    /// highest `min_lower_bound` of the rules that apply, if any.
    pub fn threshold_for(&self, tags: &[String]) -> Option<f64> {
        self.rules
            .iter()
            .filter(|r| r.applies_to(tags))
            .filter_map(|r| r.min_lower_bound)
            .max_by(f64::total_cmp)
    }

    /// The Wilson lower bound a scenario with `tags` must reach once one of its trials failed
    /// (it is flaky): the highest `min_lower_bound` or `min_satisfaction` of the rules that
    /// apply, if any. The runner keeps running trials, up to its cap, while the interval
    /// straddles it.
    pub fn flaky_threshold_for(&self, tags: &[String]) -> Option<f64> {
        self.rules
            .iter()
            .filter(|r| r.applies_to(tags))
            .flat_map(|r| [r.min_lower_bound, r.min_satisfaction])
            .flatten()
            .max_by(f64::total_cmp)
    }

    /// The fewest trials the rules ask of a scenario with `tags`: the largest of each applying
    /// rule's `trials` and the trials its `min_lower_bound` needs ([`trials_to_reach`]).
    pub fn trials_for(&self, tags: &[String]) -> Option<u32> {
        self.rules
            .iter()
            .filter(|r| r.applies_to(tags))
            .filter_map(PolicyRule::min_trials)
            .max()
    }

    /// The largest [`trials_for`](Self::trials_for) over every rule, whatever its tag: the cap
    /// a runner needs so that no scenario is cut short of what a rule asks.
    pub fn max_trials_needed(&self) -> Option<u32> {
        self.rules.iter().filter_map(PolicyRule::min_trials).max()
    }

    /// The highest `min_strength` of the rules: the Wilson lower bound the holdout's kill rate
    /// must reach, when a rule asks for one (every rule must hold, so the highest decides).
    pub fn min_strength(&self) -> Option<f64> {
        self.rules
            .iter()
            .filter_map(|r| r.min_strength)
            .max_by(f64::total_cmp)
    }

    /// Judges the `min_strength` rules against what is known of the holdout's strength: one
    /// reason per rule (none when no rule asks for strength). See the module docs for the
    /// rule; the details name counts only, never a surviving mutant (survivors are for the
    /// humans who own the holdout).
    pub fn evaluate_strength(&self, strength: &StrengthEvidence) -> Vec<GateReason> {
        self.rules
            .iter()
            .filter_map(|rule| {
                let b = rule.min_strength?;
                let (status, detail) = strength.judge(b);
                Some(GateReason {
                    rule: rule.label(),
                    source: rule.source.clone(),
                    passed: status == GateStatus::Passed,
                    status,
                    detail,
                })
            })
            .collect()
    }

    /// [`evaluate`](Self::evaluate) and [`evaluate_strength`](Self::evaluate_strength) in one
    /// verdict: the per-scenario reasons, then the strength reasons.
    pub fn evaluate_with_strength(
        &self,
        scenarios: &[ScenarioResult],
        strength: &StrengthEvidence,
    ) -> GateVerdict {
        let mut v = self.evaluate(scenarios);
        v.reasons.extend(self.evaluate_strength(strength));
        v.status = v
            .reasons
            .iter()
            .fold(GateStatus::Passed, |acc, r| acc.worst(r.status));
        v.passed = v.status == GateStatus::Passed;
        v
    }

    /// Judges `scenarios` against every rule, each scenario by its own trials (see the module
    /// docs). An empty policy passes with no reasons. `min_strength` is not judged here (see
    /// [`evaluate_strength`](Self::evaluate_strength)).
    pub fn evaluate(&self, scenarios: &[ScenarioResult]) -> GateVerdict {
        let mut reasons = Vec::new();
        for rule in &self.rules {
            let label = rule.label();
            let matching: Vec<&ScenarioResult> = scenarios
                .iter()
                .filter(|s| rule.applies_to(&s.tags))
                .collect();
            let mut push = |status: GateStatus, detail: String| {
                reasons.push(GateReason {
                    rule: label.clone(),
                    source: rule.source.clone(),
                    passed: status == GateStatus::Passed,
                    status,
                    detail,
                });
            };
            if let Some(bound) = rule.min_lower_bound {
                let (status, detail) = judge_each(&matching, bound, rule.min_trials(), true);
                push(status, detail);
            }
            if let Some(min) = rule.min_satisfaction {
                let (status, detail) = judge_each(&matching, min, rule.trials, false);
                push(status, detail);
            }
            if rule.min_lower_bound.is_none()
                && rule.min_satisfaction.is_none()
                && let Some(n) = rule.trials
            {
                let (status, detail) = judge_trials(&matching, n);
                push(status, detail);
            }
            if let Some(worst) = rule.fail_on_twin {
                let (status, detail) = judge_twins(&matching, worst);
                push(status, detail);
            }
            if rule.no_regressions {
                let reg: Vec<String> = scenarios
                    .iter()
                    .filter(|s| s.regression)
                    .map(|s| format!("{} ({})", s.id, reqs(s)))
                    .collect();
                let guards = scenarios.iter().filter(|s| s.guard).count();
                let status = if reg.is_empty() {
                    GateStatus::Passed
                } else {
                    GateStatus::Failed
                };
                push(
                    status,
                    if reg.is_empty() {
                        format!("{guards} guard scenario(s), none regressed")
                    } else {
                        format!("regressed: {}", reg.join("; "))
                    },
                );
            }
        }
        if scenarios.iter().any(|s| !s.stale_twins.is_empty()) {
            let all: Vec<&ScenarioResult> = scenarios.iter().collect();
            let (status, detail) = judge_twins(&all, TwinState::Drifted);
            reasons.push(GateReason {
                rule: TWIN_FIDELITY_RULE.to_owned(),
                source: Some("floor".to_owned()),
                passed: status == GateStatus::Passed,
                status,
                detail,
            });
        }
        let status = reasons
            .iter()
            .fold(GateStatus::Passed, |acc, r| acc.worst(r.status));
        GateVerdict {
            passed: status == GateStatus::Passed,
            status,
            reasons,
        }
    }
}

/// The rule every verdict carries when some scenario rests on a twin that is not fresh (see
/// [`crate::twins`]): drifted and retired fail, suspect is named as weakened and holds.
pub const TWIN_FIDELITY_RULE: &str = "twin fidelity: evidence resting on a drifted or retired twin fails; on a suspect twin it is weakened";

/// Scenarios resting on stale twins: `Failed` when one rests on a twin at `worst` or beyond,
/// else `Passed`; the detail names, per requirement, the twin, its state and since when, and
/// the scenario ids (never the reason text, which a human wrote and agents read this).
fn judge_twins(matching: &[&ScenarioResult], worst: TwinState) -> (GateStatus, String) {
    let owned: Vec<ScenarioResult> = matching.iter().map(|s| (*s).clone()).collect();
    let weak = crate::result::weakened(&owned);
    if weak.is_empty() {
        return (
            GateStatus::Passed,
            format!(
                "{} scenario(s), none resting on a twin that is not fresh",
                matching.len()
            ),
        );
    }
    let fails = |t: TwinState| t.is_stale() && t >= worst;
    let status = if weak.iter().any(|w| fails(w.twin.state)) {
        GateStatus::Failed
    } else {
        GateStatus::Passed
    };
    let notes: Vec<String> = weak
        .iter()
        .map(|w| {
            let since = w
                .twin
                .since
                .as_deref()
                .map(|t| format!(" since {}", t.split('T').next().unwrap_or(t)))
                .unwrap_or_default();
            let verdict = if fails(w.twin.state) {
                "FAILS"
            } else {
                "weakened"
            };
            format!(
                "{} {verdict}: rests on twin {} ({}{since}) via {}",
                w.requirement,
                w.twin.name,
                w.twin.state.as_str(),
                w.scenarios.join(", ")
            )
        })
        .collect();
    (status, notes.join("; "))
}

/// One scenario against a threshold: `Passed`, `InsufficientEvidence` or `Failed`, and why.
///
/// With `bound_rule` (a `min_lower_bound`) every scenario must reach the bound; otherwise (a
/// `min_satisfaction`) a scenario whose every trial passed holds and a flaky one must reach it.
fn judge_one(
    s: &ScenarioResult,
    threshold: f64,
    min_trials: Option<u32>,
    bound_rule: bool,
) -> (GateStatus, Option<String>) {
    let st = &s.stats;
    let low = st.wilson.low;
    let what = || {
        format!(
            "{} ({}) {}/{} trials, lower bound {low:.3}",
            s.id,
            reqs(s),
            st.passes,
            st.trials
        )
    };
    if st.trials == 0 {
        return (
            GateStatus::InsufficientEvidence,
            Some(format!("{} ({}) ran no trial", s.id, reqs(s))),
        );
    }
    let clean = st.passes == st.trials;
    if !clean {
        return if low >= threshold {
            (GateStatus::Passed, None)
        } else if st.passes == 0 {
            (GateStatus::Failed, Some(format!("{}: failed", what())))
        } else {
            (
                GateStatus::Failed,
                Some(format!("{}: FLAKY, bound below {threshold}", what())),
            )
        };
    }
    let short = min_trials.is_some_and(|n| st.trials < n);
    if (bound_rule && low < threshold) || short {
        let need = min_trials.map_or(String::new(), |n| format!(", needs {n}"));
        return (
            GateStatus::InsufficientEvidence,
            Some(format!("{}: too few trials{need}", what())),
        );
    }
    (GateStatus::Passed, None)
}

fn judge_each(
    matching: &[&ScenarioResult],
    threshold: f64,
    min_trials: Option<u32>,
    bound_rule: bool,
) -> (GateStatus, String) {
    let mut status = GateStatus::Passed;
    let mut notes = Vec::new();
    for s in matching {
        let (st, note) = judge_one(s, threshold, min_trials, bound_rule);
        status = status.worst(st);
        notes.extend(note);
    }
    let kind = if bound_rule {
        "Wilson lower bound"
    } else {
        "satisfaction (flaky: Wilson lower bound)"
    };
    let detail = if notes.is_empty() {
        format!(
            "{} scenario(s), each with {kind} >= {threshold}",
            matching.len()
        )
    } else {
        notes.join("; ")
    };
    (status, detail)
}

fn judge_trials(matching: &[&ScenarioResult], n: u32) -> (GateStatus, String) {
    let short: Vec<String> = matching
        .iter()
        .filter(|s| s.stats.trials < n)
        .map(|s| format!("{} ({}) {} trials", s.id, reqs(s), s.stats.trials))
        .collect();
    if short.is_empty() {
        (
            GateStatus::Passed,
            format!("{} scenario(s) with at least {n} trials", matching.len()),
        )
    } else {
        (
            GateStatus::InsufficientEvidence,
            format!("fewer than {n} trials: {}", short.join("; ")),
        )
    }
}

fn reqs(s: &ScenarioResult) -> String {
    if s.satisfies.is_empty() {
        "untraced".to_owned()
    } else {
        s.satisfies.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::CheckKind;
    use crate::stats::{Sequential, TrialStats};

    pub(crate) fn scenario(id: &str, tags: &[&str], passes: u32, trials: u32) -> ScenarioResult {
        ScenarioResult {
            id: id.to_owned(),
            name: format!("name of {id}"),
            path: "x.scenario.md".into(),
            satisfies: vec!["REQ-1".to_owned()],
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            kind: CheckKind::Behavioural,
            guard: false,
            regression: false,
            stats: TrialStats::new(passes, trials, trials),
            stopped: Sequential::Done,
            duration_ms: 1.0,
            trials: Vec::new(),
            stale_twins: Vec::new(),
        }
    }

    fn on_twin(mut s: ScenarioResult, state: TwinState) -> ScenarioResult {
        s.stale_twins.push(crate::twins::TwinEvidence {
            name: "slack".to_owned(),
            state,
            since: Some("2026-12-07T01:02:03Z".to_owned()),
            reason: Some("marked by hand: secret human words".to_owned()),
        });
        s
    }

    #[test]
    fn a_drifted_twin_fails_the_requirements_resting_on_it_and_says_which() {
        let p = GatePolicy::default_policy();
        let clean = scenario("S-00000001", &[], 5, 5);
        assert!(p.evaluate(std::slice::from_ref(&clean)).passed);
        let mut other = scenario("S-00000002", &[], 5, 5);
        other.satisfies = vec!["REQ-2".to_owned()];
        let v = p.evaluate(&[on_twin(clean, TwinState::Drifted), other]);
        assert_eq!(v.status, GateStatus::Failed);
        let r = v
            .reasons
            .iter()
            .find(|r| r.rule == TWIN_FIDELITY_RULE)
            .expect("a twin fidelity reason");
        assert_eq!(r.status, GateStatus::Failed);
        assert_eq!(
            r.detail,
            "REQ-1 FAILS: rests on twin slack (drifted since 2026-12-07) via S-00000001"
        );
        // The reason a human wrote stays out of the verdict (agents read gate details).
        assert!(!r.detail.contains("secret"));
        // REQ-2 rests on no stale twin: not named.
        assert!(!r.detail.contains("REQ-2"));
    }

    #[test]
    fn a_suspect_twin_weakens_by_default_and_fails_under_fail_on_twin_suspect() {
        let s = on_twin(scenario("S-00000001", &[], 5, 5), TwinState::Suspect);
        let v = GatePolicy::default_policy().evaluate(std::slice::from_ref(&s));
        assert!(v.passed, "{v:?}");
        let r = v
            .reasons
            .iter()
            .find(|r| r.rule == TWIN_FIDELITY_RULE)
            .unwrap();
        assert!(
            r.detail
                .starts_with("REQ-1 weakened: rests on twin slack (suspect"),
            "{}",
            r.detail
        );
        let strict = GatePolicy::from_toml("[[rule]]\nfail_on_twin = \"suspect\"\n").unwrap();
        let v = strict.evaluate(std::slice::from_ref(&s));
        assert_eq!(v.status, GateStatus::Failed);
        assert!(
            v.reasons[0]
                .rule
                .contains("no evidence resting on a twin suspect or worse")
        );
        // Tag-scoped: a rule for @critical leaves other scenarios weakened only.
        let tagged =
            GatePolicy::from_toml("[[rule]]\ntag = \"@critical\"\nfail_on_twin = \"suspect\"\n")
                .unwrap();
        assert!(tagged.evaluate(std::slice::from_ref(&s)).passed);
        assert!(GatePolicy::from_toml("[[rule]]\nfail_on_twin = \"fresh\"\n").is_err());
        assert!(GatePolicy::from_toml("[[rule]]\nfail_on_twin = \"stale\"\n").is_err());
    }

    #[test]
    fn all_fresh_twins_add_no_reason() {
        let v = GatePolicy::default_policy().evaluate(&[scenario("S-00000001", &[], 5, 5)]);
        assert!(v.reasons.iter().all(|r| r.rule != TWIN_FIDELITY_RULE));
    }

    #[test]
    fn toml_and_yaml_policies_parse_the_same() {
        let t = GatePolicy::from_toml(
            "[[rule]]\ntag = \"@critical\"\nmin_lower_bound = 0.9\n[[rule]]\nno_regressions = true\n",
        )
        .unwrap();
        let y = GatePolicy::from_yaml(
            "rule:\n  - tag: \"@critical\"\n    min_lower_bound: 0.9\n  - no_regressions: true\n",
        )
        .unwrap();
        assert_eq!(t, y);
        assert!(GatePolicy::from_toml("[[rule]]\nmin_satisfaction = 1.5\n").is_err());
        assert!(GatePolicy::from_toml("[[rule]]\nbogus = 1\n").is_err());
    }

    #[test]
    fn verdict_names_failing_rules_by_id_only() {
        let policy = GatePolicy::from_toml(
            "[[rule]]\ntag = \"@critical\"\nmin_lower_bound = 0.5\n[[rule]]\nmin_satisfaction = 0.9\n[[rule]]\nno_regressions = true\n",
        )
        .unwrap();
        let mut reg = scenario("S-3", &[], 4, 5);
        reg.guard = true;
        reg.regression = true;
        let run = vec![
            scenario("S-1", &["@critical"], 5, 5),
            scenario("S-2", &["@critical"], 1, 5),
            reg,
        ];
        let v = policy.evaluate(&run);
        assert!(!v.passed);
        assert_eq!(v.reasons.len(), 3);
        assert!(!v.reasons[0].passed && v.reasons[0].detail.contains("S-2"));
        assert!(!v.reasons[0].detail.contains("S-1"));
        assert!(!v.reasons[1].passed);
        assert!(!v.reasons[2].passed && v.reasons[2].detail.contains("S-3"));
        for r in &v.reasons {
            assert!(!r.detail.contains("name of"));
        }
        assert_eq!(policy.threshold_for(&["@critical".to_owned()]), Some(0.5));
        assert_eq!(policy.threshold_for(&[]), None);
    }

    #[test]
    fn spec_gate_rules_become_a_policy() {
        let rule = lightsout_spec::GateRule {
            text: "Every @critical scenario: Wilson lower bound >= 0.9 over 35 trials".to_owned(),
            min_lower_bound: Some(0.9),
            trials: Some(35),
            min_satisfaction: None,
            tag: Some("@critical".to_owned()),
            no_regressions: false,
            min_strength: None,
            span: lightsout_spec::Span::default(),
        };
        let p = GatePolicy::from_spec_rules(&[rule]);
        assert_eq!(p.trials_for(&["@critical".to_owned()]), Some(35));
        assert_eq!(
            p.rules[0].label(),
            "Every @critical scenario: Wilson lower bound >= 0.9 over 35 trials"
        );
    }

    #[test]
    fn trials_follow_from_the_bound() {
        assert_eq!(trials_to_reach(0.9), Some(35));
        assert_eq!(trials_to_reach(0.8), Some(16));
        assert_eq!(trials_to_reach(0.5), Some(4));
        assert_eq!(trials_to_reach(1.0), None);
        assert_eq!(trials_to_reach(0.0), None);
        for b in [0.3, 0.7, 0.9, 0.95, 0.99] {
            let k = trials_to_reach(b).unwrap();
            assert!(crate::stats::wilson95(k, k).low >= b);
            assert!(
                crate::stats::wilson95(k - 1, k - 1).low < b,
                "{b}: {k} is not the fewest"
            );
        }
        let p = GatePolicy::from_toml("[[rule]]\ntag = \"@critical\"\nmin_lower_bound = 0.8\n")
            .unwrap();
        assert_eq!(p.trials_for(&["@critical".to_owned()]), Some(16));
        assert_eq!(p.trials_for(&[]), None);
        assert_eq!(p.max_trials_needed(), Some(16));
        assert!(GatePolicy::from_toml("[[rule]]\nmin_lower_bound = 1.0\n").is_err());
    }

    #[test]
    fn too_few_clean_trials_are_insufficient_evidence_not_a_pass() {
        let p = GatePolicy::from_toml("[[rule]]\ntag = \"@critical\"\nmin_lower_bound = 0.8\n")
            .unwrap();
        let v = p.evaluate(&[scenario("S-1", &["@critical"], 1, 1)]);
        assert_eq!(v.status, GateStatus::InsufficientEvidence);
        assert!(!v.passed);
        assert!(
            v.reasons[0].detail.contains("needs 16"),
            "{}",
            v.reasons[0].detail
        );
        let v = p.evaluate(&[scenario("S-1", &["@critical"], 16, 16)]);
        assert_eq!(v.status, GateStatus::Passed);
        // A failure is a failure, however few trials ran.
        let v = p.evaluate(&[scenario("S-1", &["@critical"], 0, 3)]);
        assert_eq!(v.status, GateStatus::Failed);
    }

    #[test]
    fn a_flaky_scenario_does_not_hide_in_an_average() {
        // 30% of requests wrong: 3 of 10 trials fail. Averaged over 20 clean scenarios the
        // suite's satisfaction is 0.967, above 0.95; judged on its own it fails.
        let p = GatePolicy::from_toml("[[rule]]\nmin_satisfaction = 0.95\n").unwrap();
        let mut run: Vec<ScenarioResult> = (0..20)
            .map(|i| scenario(&format!("S-{i}"), &[], 10, 10))
            .collect();
        run.push(scenario("S-flaky", &[], 7, 10));
        let v = p.evaluate(&run);
        assert_eq!(v.status, GateStatus::Failed);
        assert!(v.reasons[0].detail.contains("S-flaky") && v.reasons[0].detail.contains("FLAKY"));
        // Flaky but with enough trials for its own bound to clear the rule: it holds.
        let p = GatePolicy::from_toml("[[rule]]\nmin_satisfaction = 0.8\n").unwrap();
        assert!(p.evaluate(&[scenario("S-1", &[], 98, 100)]).passed);
        assert_eq!(p.flaky_threshold_for(&[]), Some(0.8));
        assert_eq!(p.threshold_for(&[]), None);
    }

    #[test]
    fn resolve_keeps_every_rule_with_its_source_and_adds_the_floor() {
        let spec = GatePolicy::from_toml(
            "[[rule]]\ntag = \"@critical\"\nmin_lower_bound = 0.8\n[[rule]]\nno_regressions = true\n",
        )
        .unwrap();
        let holdout = GatePolicy::from_toml(
            "[[rule]]\ntag = \"@critical\"\nmin_lower_bound = 0.9\ntrials = 40\n",
        )
        .unwrap();
        let r = GatePolicy::resolve([
            PolicyLayer::new("spec specs/x.md:12", spec),
            PolicyLayer::new("holdout gate.toml", holdout),
        ])
        .unwrap();
        let sources: Vec<&str> = r.rules.iter().filter_map(|x| x.source.as_deref()).collect();
        assert_eq!(
            sources,
            [
                "spec specs/x.md:12",
                "spec specs/x.md:12; floor",
                "holdout gate.toml",
                "floor"
            ]
        );
        assert_eq!(r.trials_for(&["@critical".to_owned()]), Some(40));
        // Round trip through the file format the holdout runner reads.
        let back = GatePolicy::from_toml(&r.to_toml().unwrap()).unwrap();
        assert_eq!(back, r);
    }

    fn measured(killed: u32, total: u32, sampled: bool) -> StrengthEvidence {
        StrengthEvidence::Measured {
            killed,
            total,
            sampled,
        }
    }

    #[test]
    fn min_strength_is_judged_on_the_wilson_lower_bound_of_the_kill_rate() {
        let p = GatePolicy::from_toml("[[rule]]\nmin_strength = 0.9\n").unwrap();
        assert_eq!(p.min_strength(), Some(0.9));
        assert_eq!(
            rule_label(&p.rules[0]),
            "holdout strength: Wilson lower bound of mutants killed >= 0.9"
        );
        // 140 of 140: lower bound 0.973.
        let r = p.evaluate_strength(&measured(140, 140, false));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status, GateStatus::Passed, "{}", r[0].detail);
        // 67 of 70 (95.7%) clears 0.9 as a point estimate, not as a lower bound (0.881).
        let r = p.evaluate_strength(&measured(67, 70, true));
        assert_eq!(r[0].status, GateStatus::InsufficientEvidence);
        assert!(r[0].detail.contains("0.881"), "{}", r[0].detail);
        assert!(r[0].detail.contains("max_mutants"), "{}", r[0].detail);
        let n = mutants_to_reach(67.0 / 70.0, 0.9).unwrap();
        assert!(n > 70, "{n}");
        let r = p.evaluate_strength(&measured(67, 70, false));
        assert!(
            r[0].detail.contains("every mutant was judged"),
            "{}",
            r[0].detail
        );
        // Five of five killed is not evidence of 90%.
        let r = p.evaluate_strength(&measured(5, 5, false));
        assert_eq!(r[0].status, GateStatus::InsufficientEvidence);
        // 4 of 7 killed is below the bar, however few mutants.
        let r = p.evaluate_strength(&measured(4, 7, false));
        assert_eq!(r[0].status, GateStatus::Failed);
        // No measurement, or nothing judged: never a pass.
        let r = p.evaluate_strength(&StrengthEvidence::Missing("not measured".into()));
        assert_eq!(r[0].status, GateStatus::InsufficientEvidence);
        assert!(r[0].detail.contains("not measured"));
        let r = p.evaluate_strength(&measured(0, 0, false));
        assert_eq!(r[0].status, GateStatus::InsufficientEvidence);
        // The per-scenario verdict ignores it; the combined one does not.
        let run = [scenario("S-1", &[], 5, 5)];
        assert!(p.evaluate(&run).passed);
        let v = p.evaluate_with_strength(&run, &measured(4, 7, false));
        assert_eq!(v.status, GateStatus::Failed);
        assert!(!v.passed);
        // A policy without a strength rule has no strength reason.
        assert!(
            GatePolicy::default_policy()
                .evaluate_strength(&measured(0, 9, false))
                .is_empty()
        );
    }

    #[test]
    fn min_strength_is_validated_resolved_and_round_trips() {
        assert!(GatePolicy::from_toml("[[rule]]\nmin_strength = 1.0\n").is_err());
        assert!(GatePolicy::from_toml("[[rule]]\nmin_strength = -0.1\n").is_err());
        let e = GatePolicy::from_toml("[[rule]]\ntag = \"@critical\"\nmin_strength = 0.8\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("without a tag"), "{e}");
        let y = GatePolicy::from_yaml("rule:\n  - min_strength: 0.8\n").unwrap();
        assert_eq!(y.min_strength(), Some(0.8));
        let spec = GatePolicy::from_toml("[[rule]]\nmin_strength = 0.7\n").unwrap();
        let holdout = GatePolicy::from_toml("[[rule]]\nmin_strength = 0.85\n").unwrap();
        let r = GatePolicy::resolve([
            PolicyLayer::new("spec specs/x.md:9", spec),
            PolicyLayer::new("holdout gate.toml", holdout),
        ])
        .unwrap();
        // Both kept with their sources; the higher minimum decides.
        assert_eq!(r.min_strength(), Some(0.85));
        let strength: Vec<(Option<f64>, Option<&str>)> = r
            .rules
            .iter()
            .filter(|x| x.min_strength.is_some())
            .map(|x| (x.min_strength, x.source.as_deref()))
            .collect();
        assert_eq!(
            strength,
            [
                (Some(0.7), Some("spec specs/x.md:9")),
                (Some(0.85), Some("holdout gate.toml"))
            ]
        );
        // 0.8 as a lower bound: 0.7 holds, 0.85 does not, so the verdict fails.
        let v = r.evaluate_with_strength(&[], &measured(80, 100, false));
        assert_eq!(v.status, GateStatus::Failed);
        let back = GatePolicy::from_toml(&r.to_toml().unwrap()).unwrap();
        assert_eq!(back, r);
        assert!(r.to_toml().unwrap().contains("min_strength = 0.85"));
    }

    fn arb_rule() -> impl Strategy<Value = PolicyRule> {
        (
            proptest::option::of(prop_oneof![
                Just("@critical".to_owned()),
                Just("@slow".to_owned())
            ]),
            proptest::option::of(0.05f64..0.99),
            proptest::option::of(0.05f64..1.0),
            proptest::option::of(1u32..50),
            any::<bool>(),
            proptest::option::of(0.05f64..0.99),
        )
            .prop_map(|(tag, b, s, trials, no_regressions, strength)| PolicyRule {
                // A strength rule takes no tag.
                tag: if strength.is_some() { None } else { tag },
                min_lower_bound: b,
                min_satisfaction: s,
                trials,
                no_regressions,
                min_strength: strength,
                ..PolicyRule::default()
            })
    }

    fn arb_state() -> impl Strategy<Value = TwinState> {
        prop_oneof![
            Just(TwinState::Fresh),
            Just(TwinState::Suspect),
            Just(TwinState::Drifted),
            Just(TwinState::Retired),
            Just(TwinState::Unknown),
        ]
    }

    proptest! {
        /// Resting on a stale twin never makes a verdict better, and resting on a drifted or
        /// retired one always fails it, whatever the policy.
        #[test]
        fn stale_twins_only_ever_weaken(
            rules in proptest::collection::vec(arb_rule(), 0..4),
            results in proptest::collection::vec((0u32..6, 1u32..6, arb_state()), 1..5),
        ) {
            let policy = GatePolicy { rules };
            let scenarios: Vec<ScenarioResult> = results
                .iter()
                .enumerate()
                .map(|(i, &(p, n, _))| scenario(&format!("S-{i:08}"), &[], p.min(n), n))
                .collect();
            let plain = policy.evaluate(&scenarios);
            let stale: Vec<ScenarioResult> = scenarios
                .into_iter()
                .zip(&results)
                .map(|(s, &(_, _, st))| if st.is_stale() { on_twin(s, st) } else { s })
                .collect();
            let weak = policy.evaluate(&stale);
            prop_assert!(weak.status >= plain.status);
            if results.iter().any(|r| matches!(r.2, TwinState::Drifted | TwinState::Retired)) {
                prop_assert_eq!(weak.status, GateStatus::Failed);
            }
        }
    }

    fn arb_strength() -> impl Strategy<Value = StrengthEvidence> {
        prop_oneof![
            Just(StrengthEvidence::Missing("not measured".to_owned())),
            (0u32..120, 0u32..=120, any::<bool>()).prop_map(|(total, killed, sampled)| {
                StrengthEvidence::Measured {
                    killed: killed.min(total),
                    total,
                    sampled,
                }
            }),
        ]
    }

    fn arb_scenario() -> impl Strategy<Value = ScenarioResult> {
        (
            proptest::sample::subsequence(vec!["@critical", "@slow"], 0..=2),
            0u32..60,
            0u32..=60,
            any::<bool>(),
        )
            .prop_map(|(tags, trials, passes, regression)| {
                let mut s = scenario("S", &tags, passes.min(trials), trials);
                s.regression = regression;
                s.guard = regression;
                s
            })
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_resolved_policy_is_never_weaker_than_any_source(
            layers in proptest::collection::vec(proptest::collection::vec(arb_rule(), 0..4), 1..4),
            run in proptest::collection::vec(arb_scenario(), 0..6),
            strength in arb_strength(),
            tags in proptest::sample::subsequence(vec!["@critical".to_owned(), "@slow".to_owned()], 0..=2),
        ) {
            let policies: Vec<GatePolicy> = layers.into_iter().map(|rules| GatePolicy { rules }).collect();
            let resolved = GatePolicy::resolve(
                policies.iter().enumerate().map(|(i, p)| PolicyLayer::new(format!("layer {i}"), p.clone())),
            ).unwrap();
            let v = resolved.evaluate_with_strength(&run, &strength);
            for p in policies.iter().chain(std::iter::once(&GatePolicy::floor())) {
                let each = p.evaluate_with_strength(&run, &strength);
                // Never a better status than any source gives.
                prop_assert!(v.status >= each.status, "{:?} < {:?}", v.status, each.status);
                prop_assert!(resolved.min_strength().unwrap_or(0.0) >= p.min_strength().unwrap_or(0.0));
                prop_assert!(resolved.trials_for(&tags) >= p.trials_for(&tags));
                prop_assert!(resolved.threshold_for(&tags).unwrap_or(0.0) >= p.threshold_for(&tags).unwrap_or(0.0));
                prop_assert!(resolved.flaky_threshold_for(&tags).unwrap_or(0.0) >= p.flaky_threshold_for(&tags).unwrap_or(0.0));
            }
        }
    }
}
