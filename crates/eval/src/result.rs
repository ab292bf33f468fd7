//! The versioned result document: Run → Scenario → Trial → Step, with timings in ms.

use crate::Error;
use crate::gate::{GatePolicy, GateVerdict};
use crate::scenario::CheckKind;
use crate::stats::{Sequential, TrialStats};
use crate::twins::{TwinEvidence, TwinState};
use lightsout_spec::StepKeyword;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the result document's shape. Bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The kind of a failure: what agents may learn under the default redaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureCategory {
    /// Response status differs.
    Status,
    /// A response header differs or is missing.
    Header,
    /// A JSON value differs, is missing, or the body is not JSON.
    Json,
    /// The body text differs.
    Body,
    /// A response took longer than allowed.
    Latency,
    /// The connection failed.
    Connection,
    /// A request, command or trial ran out of time.
    Timeout,
    /// A command could not run or exited with the wrong code.
    Process,
    /// A command's output differs.
    Output,
    /// A twin's state differs.
    TwinState,
    /// A twin's journal does not show the expected requests.
    TwinJournal,
    /// A twin could not be reached or rejected a control call.
    TwinUnavailable,
    /// A twin the scenario needs is retired (its lifecycle says so): the scenario was stopped
    /// instead of passing on a stale imitation.
    TwinRetired,
    /// A load latency quantile is over its limit.
    LoadLatency,
    /// A load error rate is over its limit.
    LoadErrors,
    /// Malformed input drew a 5xx or no response.
    Adversarial,
    /// The target is not running or not answering.
    TargetDown,
    /// The step could not be performed as written.
    StepError,
    /// A custom step failed.
    Custom,
}

impl FailureCategory {
    /// A short phrase for feedback (`status mismatch`); never carries scenario values.
    pub fn describe(self) -> &'static str {
        match self {
            FailureCategory::Status => "status mismatch",
            FailureCategory::Header => "header mismatch",
            FailureCategory::Json => "JSON value mismatch",
            FailureCategory::Body => "body mismatch",
            FailureCategory::Latency => "response slower than allowed",
            FailureCategory::Connection => "connection failure",
            FailureCategory::Timeout => "timeout",
            FailureCategory::Process => "process failed or wrong exit code",
            FailureCategory::Output => "process output mismatch",
            FailureCategory::TwinState => "third-party state mismatch",
            FailureCategory::TwinJournal => "unexpected calls to a third-party service",
            FailureCategory::TwinUnavailable => "third-party twin unavailable",
            FailureCategory::TwinRetired => "third-party twin retired",
            FailureCategory::LoadLatency => "latency under load over the limit",
            FailureCategory::LoadErrors => "error rate under load over the limit",
            FailureCategory::Adversarial => "server error or no response on malformed input",
            FailureCategory::TargetDown => "service not running",
            FailureCategory::StepError => "step could not be performed",
            FailureCategory::Custom => "custom check failed",
        }
    }
}

/// A step's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It ran and held.
    Passed,
    /// It ran and failed.
    Failed,
    /// It did not run because an earlier step failed or the trial timed out.
    Skipped,
}

/// A failure with its detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The category.
    pub category: FailureCategory,
    /// The detail (may carry scenario values; redacted from agent feedback by default).
    pub message: String,
}

/// One step of one trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Its keyword.
    pub keyword: StepKeyword,
    /// Its text as written.
    pub text: String,
    /// Its outcome.
    pub status: StepStatus,
    /// Wall time, ms (0 when skipped).
    pub duration_ms: f64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// One trial (trajectory) of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialResult {
    /// 0-based trial index.
    pub index: u32,
    /// True when every step passed.
    pub passed: bool,
    /// Wall time, ms.
    pub duration_ms: f64,
    /// The first failure's category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureCategory>,
    /// Steps in order.
    pub steps: Vec<StepResult>,
}

/// All trials of one scenario and their statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Opaque stable id (see [`crate::scenario::scenario_id`]).
    pub id: String,
    /// Name as written (holdout text).
    pub name: String,
    /// File, relative to the suite root.
    pub path: PathBuf,
    /// Requirement ids.
    pub satisfies: Vec<String>,
    /// Tags with `@`.
    pub tags: Vec<String>,
    /// Check kind.
    pub kind: CheckKind,
    /// In the guard (regression) bucket: passed every trial on the baseline, or tagged
    /// `@regression`.
    pub guard: bool,
    /// A guard scenario that failed at least one trial now.
    pub regression: bool,
    /// Statistics over the trials.
    pub stats: TrialStats,
    /// Why the trials stopped.
    pub stopped: Sequential,
    /// Wall time of all trials, ms.
    pub duration_ms: f64,
    /// The trials.
    pub trials: Vec<TrialResult>,
    /// The twins this scenario's evidence rests on that are not fresh (suspect, drifted,
    /// retired), each with its state (see [`crate::twins`]); empty when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale_twins: Vec<TwinEvidence>,
}

/// Suite totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Scenarios run.
    pub scenarios: usize,
    /// Scenarios whose every trial passed.
    pub passed: usize,
    /// Scenarios with no passing trial.
    pub failed: usize,
    /// Scenarios with both passing and failing trials.
    pub flaky: usize,
    /// Guard scenarios that regressed.
    pub regressions: usize,
    /// Trials run in total.
    pub trials: u64,
    /// Suite satisfaction: the mean of the scenarios' satisfactions (each scenario weighs the
    /// same, however many trials the sequential gate gave it); 0 for an empty suite.
    pub satisfaction: f64,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Start time, RFC 3339 UTC.
    pub started_at: String,
    /// Wall time of the run including target start-up, ms.
    pub duration_ms: f64,
    /// The target: its URL, or its command.
    pub target: String,
    /// Requested trials per scenario (`--trials`).
    pub trials: u32,
    /// Cap on trials per scenario (`--max-trials`).
    pub max_trials: u32,
    /// Per scenario.
    pub scenarios: Vec<ScenarioResult>,
    /// Totals.
    pub summary: Summary,
    /// The gate's verdict.
    pub gate: GateVerdict,
    /// The policy the gate judged with, each rule with its source (empty in documents written
    /// before it was recorded).
    #[serde(default)]
    pub policy: GatePolicy,
    /// Every twin of the run with its lifecycle state, as it reported it at the start
    /// (`GET /__twin/lifecycle`); empty when the run had no twin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub twins: Vec<TwinEvidence>,
}

/// One requirement whose evidence rests on a twin that is not fresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeakenedEvidence {
    /// The requirement id (`untraced` for a scenario with none).
    pub requirement: String,
    /// The scenario ids that rest on the twin.
    pub scenarios: Vec<String>,
    /// The twin and its state.
    pub twin: TwinEvidence,
}

impl Summary {
    /// Totals over `scenarios`.
    pub fn of(scenarios: &[ScenarioResult]) -> Summary {
        let n = scenarios.len();
        Summary {
            scenarios: n,
            passed: scenarios
                .iter()
                .filter(|s| s.stats.trials > 0 && s.stats.passes == s.stats.trials)
                .count(),
            failed: scenarios.iter().filter(|s| s.stats.passes == 0).count(),
            flaky: scenarios.iter().filter(|s| s.stats.flaky).count(),
            regressions: scenarios.iter().filter(|s| s.regression).count(),
            trials: scenarios.iter().map(|s| u64::from(s.stats.trials)).sum(),
            satisfaction: if n == 0 {
                0.0
            } else {
                scenarios.iter().map(|s| s.stats.satisfaction).sum::<f64>() / n as f64
            },
        }
    }
}

impl RunResult {
    /// Reads a result document (a baseline).
    ///
    /// # Errors
    /// [`Error::Io`] when unreadable, [`Error::Json`] when malformed, [`Error::Schema`] when
    /// its `schema_version` is not [`SCHEMA_VERSION`].
    pub fn read(path: &Path) -> Result<RunResult, Error> {
        let text = std::fs::read_to_string(path)?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        let version = v.get("schema_version").and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(SCHEMA_VERSION)) {
            return Err(Error::Schema(format!(
                "{} has schema_version {version:?}, this build reads {SCHEMA_VERSION}",
                path.display()
            )));
        }
        Ok(serde_json::from_value(v)?)
    }

    /// Per requirement and twin, the scenarios whose evidence rests on a twin that is not
    /// fresh, in requirement then twin order.
    pub fn weakened(&self) -> Vec<WeakenedEvidence> {
        weakened(&self.scenarios)
    }

    /// The document as pretty JSON.
    ///
    /// # Errors
    /// [`Error::Json`] (not expected for this type).
    pub fn to_json(&self) -> Result<String, Error> {
        Ok(serde_json::to_string_pretty(self)?)
    }
}

/// Per requirement and twin, the scenarios of `scenarios` whose evidence rests on a twin that
/// is not fresh, in requirement then twin order.
pub fn weakened(scenarios: &[ScenarioResult]) -> Vec<WeakenedEvidence> {
    // Keyed by state too: one twin has one state in a run, but documents merged from several
    // runs may not agree, and the worse state must never hide behind the better.
    let mut by: std::collections::BTreeMap<(String, String, TwinState), WeakenedEvidence> =
        std::collections::BTreeMap::new();
    for s in scenarios {
        let untraced = ["untraced".to_owned()];
        let reqs: &[String] = if s.satisfies.is_empty() {
            &untraced
        } else {
            &s.satisfies
        };
        for t in &s.stale_twins {
            for r in reqs {
                let e = by
                    .entry((r.clone(), t.name.clone(), t.state))
                    .or_insert_with(|| WeakenedEvidence {
                        requirement: r.clone(),
                        scenarios: Vec::new(),
                        twin: t.clone(),
                    });
                if !e.scenarios.contains(&s.id) {
                    e.scenarios.push(s.id.clone());
                }
            }
        }
    }
    by.into_values().collect()
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory, then rename
/// ([`lightsout_stdx::write_atomic`]).
///
/// # Errors
/// [`Error::Io`] when the directory is not writable.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), Error> {
    Ok(lightsout_stdx::write_atomic(path, contents)?)
}
