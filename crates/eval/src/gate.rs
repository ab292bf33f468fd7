//! The gate: a policy (from a TOML/YAML file or from a spec's `## Verification gate` rules)
//! judged against a run, giving a verdict with reasons.
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
//! ```

use crate::Error;
use crate::result::ScenarioResult;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One gate rule; the same data as `lightsout_spec::GateRule` without its source position.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// The rule as written, for reasons (optional in files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
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
}

impl PolicyRule {
    fn applies_to(&self, tags: &[String]) -> bool {
        self.tag.as_deref().is_none_or(|t| {
            let t = t.trim_start_matches('@');
            tags.iter().any(|x| x.trim_start_matches('@') == t)
        })
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

/// One rule's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateReason {
    /// The rule, as written or derived.
    pub rule: String,
    /// Whether it held.
    pub passed: bool,
    /// Why, naming scenario ids and requirement ids only (never scenario text).
    pub detail: String,
}

/// The gate's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateVerdict {
    /// True when every rule held.
    pub passed: bool,
    /// One reason per rule check.
    pub reasons: Vec<GateReason>,
}

impl GatePolicy {
    /// The policy used when none is given: suite satisfaction ≥ 0.95 and no regressions.
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

    /// A policy from a spec's parsed `## Verification gate` rules.
    pub fn from_spec_rules(rules: &[lightsout_spec::GateRule]) -> Self {
        GatePolicy {
            rules: rules
                .iter()
                .map(|r| PolicyRule {
                    text: Some(r.text.clone()),
                    tag: r.tag.clone(),
                    min_lower_bound: r.min_lower_bound,
                    min_satisfaction: r.min_satisfaction,
                    trials: r.trials,
                    no_regressions: r.no_regressions,
                })
                .collect(),
        }
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

    /// The minimum trials the rules ask for a scenario with `tags`.
    pub fn trials_for(&self, tags: &[String]) -> Option<u32> {
        self.rules
            .iter()
            .filter(|r| r.applies_to(tags))
            .filter_map(|r| r.trials)
            .max()
    }

    /// Judges `scenarios` against every rule. An empty policy passes with no reasons.
    pub fn evaluate(&self, scenarios: &[ScenarioResult]) -> GateVerdict {
        let mut reasons = Vec::new();
        for rule in &self.rules {
            let label = rule.label();
            let matching: Vec<&ScenarioResult> = scenarios
                .iter()
                .filter(|s| rule.applies_to(&s.tags))
                .collect();
            if let Some(bound) = rule.min_lower_bound {
                let below: Vec<String> = matching
                    .iter()
                    .filter(|s| s.stats.wilson.low < bound)
                    .map(|s| {
                        format!(
                            "{} ({}) lower bound {:.3} after {}/{}",
                            s.id,
                            reqs(s),
                            s.stats.wilson.low,
                            s.stats.passes,
                            s.stats.trials
                        )
                    })
                    .collect();
                reasons.push(GateReason {
                    rule: label.clone(),
                    passed: below.is_empty(),
                    detail: if below.is_empty() {
                        format!("{} scenario(s) at or above {bound}", matching.len())
                    } else {
                        format!("below {bound}: {}", below.join("; "))
                    },
                });
            }
            if let Some(min) = rule.min_satisfaction {
                let sat = if matching.is_empty() {
                    1.0
                } else {
                    matching.iter().map(|s| s.stats.satisfaction).sum::<f64>()
                        / matching.len() as f64
                };
                reasons.push(GateReason {
                    rule: label.clone(),
                    passed: sat >= min,
                    detail: format!(
                        "satisfaction {sat:.3} over {} scenario(s) (needs {min})",
                        matching.len()
                    ),
                });
            }
            if rule.no_regressions {
                let reg: Vec<String> = scenarios
                    .iter()
                    .filter(|s| s.regression)
                    .map(|s| format!("{} ({})", s.id, reqs(s)))
                    .collect();
                let guards = scenarios.iter().filter(|s| s.guard).count();
                reasons.push(GateReason {
                    rule: label.clone(),
                    passed: reg.is_empty(),
                    detail: if reg.is_empty() {
                        format!("{guards} guard scenario(s), none regressed")
                    } else {
                        format!("regressed: {}", reg.join("; "))
                    },
                });
            }
        }
        GateVerdict {
            passed: reasons.iter().all(|r| r.passed),
            reasons,
        }
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
        }
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
            span: lightsout_spec::Span::default(),
        };
        let p = GatePolicy::from_spec_rules(&[rule]);
        assert_eq!(p.trials_for(&["@critical".to_owned()]), Some(35));
        assert_eq!(
            p.rules[0].label(),
            "Every @critical scenario: Wilson lower bound >= 0.9 over 35 trials"
        );
    }
}
