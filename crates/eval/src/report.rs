//! Renderings of a [`RunResult`]: `JUnit` XML, a markdown summary, and the redacted feedback
//! for agents.

use crate::Error;
use crate::result::{FailureCategory, RunResult, ScenarioResult, StepStatus};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

fn dur(ms: f64) -> Duration {
    Duration::from_secs_f64((ms / 1000.0).max(0.0))
}

fn first_failure(s: &ScenarioResult, trial: usize) -> (String, String) {
    let t = &s.trials[trial];
    t.steps
        .iter()
        .find_map(|st| st.failure.as_ref())
        .map_or_else(
            || ("timeout".to_owned(), "the trial failed".to_owned()),
            |f| {
                (
                    format!("{:?}", f.category).to_lowercase(),
                    f.message.clone(),
                )
            },
        )
}

/// `JUnit` XML (one `<testsuite>` per scenario file, one `<testcase>` per scenario).
///
/// A scenario whose trials all passed is a success; one with passes and failures is a success
/// with its failed trials as `<flakyFailure>` reruns; one with no pass is a `<failure>` with the
/// other failed trials as `<rerunFailure>`. This is the Maven Surefire rerun convention that
/// `quick-junit` follows.
///
/// # Errors
/// [`Error::Junit`] when serialising fails.
pub fn junit(run: &RunResult) -> Result<String, Error> {
    let mut report = Report::new("lightsout-eval");
    report.set_time(dur(run.duration_ms));
    let mut by_file: BTreeMap<String, Vec<&ScenarioResult>> = BTreeMap::new();
    for s in &run.scenarios {
        by_file
            .entry(s.path.display().to_string())
            .or_default()
            .push(s);
    }
    for (file, scenarios) in by_file {
        let mut suite = TestSuite::new(file.clone());
        for s in scenarios {
            let failed: Vec<usize> = s
                .trials
                .iter()
                .enumerate()
                .filter(|(_, t)| !t.passed)
                .map(|(i, _)| i)
                .collect();
            let reruns = |skip: usize| -> Vec<TestRerun> {
                failed
                    .iter()
                    .skip(skip)
                    .map(|&i| {
                        let (ty, msg) = first_failure(s, i);
                        let mut r = TestRerun::new(NonSuccessKind::Failure);
                        r.set_type(ty)
                            .set_message(msg)
                            .set_time(dur(s.trials[i].duration_ms));
                        r
                    })
                    .collect()
            };
            let status = if failed.is_empty() {
                TestCaseStatus::success()
            } else if s.stats.passes > 0 {
                TestCaseStatus::Success {
                    flaky_runs: reruns(0),
                }
            } else {
                let (ty, msg) = first_failure(s, failed[0]);
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                st.set_type(ty).set_message(msg);
                st.add_reruns(reruns(1));
                st
            };
            let mut case = TestCase::new(s.name.clone(), status);
            case.set_classname(s.id.clone())
                .set_time(dur(s.duration_ms))
                .set_assertions(s.trials.len());
            case.add_property(quick_junit::Property::new(
                "satisfies",
                s.satisfies.join(","),
            ));
            case.add_property(quick_junit::Property::new(
                "satisfaction",
                format!("{:.4}", s.stats.satisfaction),
            ));
            case.add_property(quick_junit::Property::new(
                "wilson_low",
                format!("{:.4}", s.stats.wilson.low),
            ));
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string().map_err(|e| Error::Junit(e.to_string()))
}

/// A markdown summary for humans (it names scenarios; not for agents).
pub fn markdown(run: &RunResult) -> String {
    let mut out = String::new();
    let verdict = if run.gate.passed { "PASSED" } else { "FAILED" };
    let _ = writeln!(out, "# Holdout evaluation: gate {verdict}\n");
    let s = &run.summary;
    let _ = writeln!(
        out,
        "{} scenarios, {} trials in {:.1} s: {} passed, {} failed, {} flaky, {} regressions; suite satisfaction {:.3}.\n",
        s.scenarios,
        s.trials,
        run.duration_ms / 1000.0,
        s.passed,
        s.failed,
        s.flaky,
        s.regressions,
        s.satisfaction
    );
    out.push_str("| Scenario | Requirement | Kind | Passes | Satisfaction | Wilson 95% | pass@k | pass^k | Flags |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for sc in &run.scenarios {
        let st = &sc.stats;
        let mut flags = Vec::new();
        if st.flaky {
            flags.push("flaky");
        }
        if sc.guard {
            flags.push("guard");
        }
        if sc.regression {
            flags.push("REGRESSION");
        }
        let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.3}"));
        let _ = writeln!(
            out,
            "| {} `{}` | {} | {} | {}/{} | {:.3} | [{:.3}, {:.3}] | {} (k={}) | {} | {} |",
            sc.name.replace('|', "\\|"),
            sc.id,
            sc.satisfies.join(", "),
            sc.kind.as_str(),
            st.passes,
            st.trials,
            st.satisfaction,
            st.wilson.low,
            st.wilson.high,
            opt(st.pass_at_k),
            st.k,
            opt(st.pass_hat_k),
            flags.join(" ")
        );
    }
    out.push_str("\n## Gate\n\n");
    for r in &run.gate.reasons {
        let mark = if r.passed { "pass" } else { "FAIL" };
        let _ = writeln!(out, "- {mark}: {}: {}", r.rule, r.detail);
    }
    out
}

/// How much of a failure agent feedback may reveal. Each level hides more than the previous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedactLevel {
    /// Nothing is hidden: scenario names, failing steps and values. For humans only.
    None,
    /// The default: the requirement id, the opaque scenario id, the check kind, the trial
    /// counts and the failure category; never the scenario's text, steps or values.
    #[default]
    Requirement,
    /// Only the failure categories and trial counts; not even which requirement.
    Category,
    /// Only the verdict and the number of failing scenarios.
    Full,
}

impl std::str::FromStr for RedactLevel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "none" => Ok(RedactLevel::None),
            "requirement" => Ok(RedactLevel::Requirement),
            "category" => Ok(RedactLevel::Category),
            "full" => Ok(RedactLevel::Full),
            other => Err(Error::Policy(format!(
                "unknown redaction level `{other}`; use none, requirement, category or full"
            ))),
        }
    }
}

fn categories(s: &ScenarioResult) -> Vec<FailureCategory> {
    let mut cats: Vec<FailureCategory> = s.trials.iter().filter_map(|t| t.failure).collect();
    cats.sort();
    cats.dedup();
    cats
}

fn category_text(s: &ScenarioResult) -> String {
    categories(s)
        .iter()
        .map(|c| c.describe())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The feedback file for agents, redacted at `level`.
///
/// At the default level a line reads `REQ-3 (S-1a2b3c4d, behavioural): 2 of 5 trials failed:
/// status mismatch`. The text is assembled only from requirement ids, opaque ids, counts and
/// the fixed phrases of [`FailureCategory::describe`], so it cannot carry scenario text; a
/// test and [`crate::LeakScanner`] check it.
pub fn feedback(run: &RunResult, level: RedactLevel) -> String {
    let mut out = String::new();
    let failing: Vec<&ScenarioResult> = run
        .scenarios
        .iter()
        .filter(|s| s.stats.passes < s.stats.trials)
        .collect();
    let verdict = if run.gate.passed { "passed" } else { "failed" };
    let _ = writeln!(
        out,
        "Holdout evaluation: gate {verdict}; {} of {} scenarios had failing trials.",
        failing.len(),
        run.scenarios.len()
    );
    match level {
        RedactLevel::Full => {}
        RedactLevel::Category => {
            let mut counts: BTreeMap<&'static str, (usize, u32)> = BTreeMap::new();
            for s in &failing {
                for t in s.trials.iter().filter(|t| !t.passed) {
                    let c = t.failure.map_or("timeout", FailureCategory::describe);
                    let e = counts.entry(c).or_default();
                    e.1 += 1;
                }
                for c in categories(s) {
                    counts.entry(c.describe()).or_default().0 += 1;
                }
            }
            for (c, (scenarios, trials)) in counts {
                let _ = writeln!(
                    out,
                    "- {c}: {trials} failed trial(s) in {scenarios} scenario(s)"
                );
            }
        }
        RedactLevel::Requirement => {
            for s in &failing {
                let reqs = if s.satisfies.is_empty() {
                    "an untraced requirement".to_owned()
                } else {
                    s.satisfies.join(", ")
                };
                let mut line = format!(
                    "- {reqs} ({}, {}): {} of {} trials failed: {}",
                    s.id,
                    s.kind.as_str(),
                    s.stats.trials - s.stats.passes,
                    s.stats.trials,
                    category_text(s)
                );
                if s.regression {
                    line.push_str(" (a regression: it passed on the baseline)");
                }
                let _ = writeln!(out, "{line}");
            }
        }
        RedactLevel::None => {
            for s in &failing {
                let _ = writeln!(
                    out,
                    "- {} ({}; {}): {} of {} trials failed",
                    s.name,
                    s.satisfies.join(", "),
                    s.id,
                    s.stats.trials - s.stats.passes,
                    s.stats.trials
                );
                if let Some(t) = s.trials.iter().find(|t| !t.passed) {
                    for st in &t.steps {
                        let mark = match st.status {
                            StepStatus::Passed => "ok",
                            StepStatus::Failed => "FAILED",
                            StepStatus::Skipped => "skipped",
                        };
                        let _ = writeln!(out, "  - [{mark}] {:?} {}", st.keyword, st.text);
                        if let Some(f) = &st.failure {
                            let _ = writeln!(out, "    {}", f.message);
                        }
                    }
                }
            }
        }
    }
    if level != RedactLevel::Full {
        for r in run.gate.reasons.iter().filter(|r| !r.passed) {
            if level == RedactLevel::Category {
                let _ = writeln!(out, "Gate rule not met: {}", r.rule);
            } else {
                let _ = writeln!(out, "Gate rule not met: {}: {}", r.rule, r.detail);
            }
        }
    }
    out
}
