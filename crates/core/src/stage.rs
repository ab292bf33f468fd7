//! The closed sets and records of the per-attempt stages: [`FailedStage`], [`LeakClass`],
//! [`HookDecision`], guard requests and findings, [`AttemptMetrics`] (with
//! [`FinalOutcome`]) and [`Lesson`].

use crate::Usage;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The stage that failed an attempt.
///
/// Serialised as the lower-case word (`"holdout"`, `"leak"`), the form journals, `state.json`,
/// metrics lines and reports have always carried, so old files read unchanged. It derefs to
/// that word, so `record.failed_stage.as_deref() == Some("leak")` reads as before.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum FailedStage {
    /// The agent could not run, or ended without usable work (`agent`).
    Agent,
    /// The visible checks failed (`checks`).
    Checks,
    /// A memory guard found a blocking reversal of a settled decision (`guards`).
    Guards,
    /// The holdout suite failed the candidate (`holdout`).
    Holdout,
    /// A policy of the fence was hit: a budget ran out, a write outside the worktree, a
    /// damaged `.git` (`policy`).
    Policy,
    /// Holdout text was about to cross the fence (`leak`); see [`LeakClass`].
    Leak,
}

impl FailedStage {
    /// Every stage, in pipeline order.
    pub const ALL: [FailedStage; 6] = [
        FailedStage::Agent,
        FailedStage::Checks,
        FailedStage::Guards,
        FailedStage::Holdout,
        FailedStage::Policy,
        FailedStage::Leak,
    ];

    /// The lower-case word it is serialised as.
    pub fn as_str(self) -> &'static str {
        match self {
            FailedStage::Agent => "agent",
            FailedStage::Checks => "checks",
            FailedStage::Guards => "guards",
            FailedStage::Holdout => "holdout",
            FailedStage::Policy => "policy",
            FailedStage::Leak => "leak",
        }
    }
}

impl std::ops::Deref for FailedStage {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// Compares with the serialised word (`stage == "holdout"`).
impl PartialEq<&str> for FailedStage {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for FailedStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that names no [`FailedStage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStage(pub String);

impl fmt::Display for UnknownStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown stage `{}`", self.0)
    }
}

impl std::error::Error for UnknownStage {}

impl FromStr for FailedStage {
    type Err = UnknownStage;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FailedStage::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStage(s.to_owned()))
    }
}

/// Which class of holdout text was about to cross the fence, as a recorded leak tells it (the
/// eval crate's `LeakKind` is the finer kind its scanner reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeakClass {
    /// A canary string planted in the holdout (proof that holdout files were read).
    Canary,
    /// Scenario text itself: a verbatim run, a literal or a near copy.
    Verbatim,
}

impl LeakClass {
    /// The class of a recorded leak, from its reason: the fence words a canary hit
    /// `holdout canary from <file>`; every other reason is scenario text. The journal keeps
    /// only the reason, so this is where the two are told apart.
    pub fn of_reason(reason: &str) -> LeakClass {
        if reason.contains("canary") {
            LeakClass::Canary
        } else {
            LeakClass::Verbatim
        }
    }
}

/// What an attempt hook decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision", content = "reason")]
pub enum HookDecision {
    /// Go on.
    Proceed,
    /// Fail this attempt with the reason (feedback for the next one).
    FailAttempt(String),
    /// Fail the whole task now (a budget ran out, a policy was hit); dependents are blocked.
    StopTask(String),
    /// Holdout text (a canary or a verbatim run of scenario text) was about to cross the
    /// fence: the task stops at once (nothing of it merges, its dependents are blocked), the
    /// attempt is recorded at the `leak` stage, and the run ends failed. The other tasks go
    /// on. The reason names the scenario file, never the holdout text.
    Leak(String),
}

impl HookDecision {
    /// The more severe of two decisions: `Leak` > `StopTask` > `FailAttempt` > `Proceed`
    /// (the first wins a tie).
    #[must_use]
    pub fn worst(self, other: HookDecision) -> HookDecision {
        fn rank(d: &HookDecision) -> u8 {
            match d {
                HookDecision::Proceed => 0,
                HookDecision::FailAttempt(_) => 1,
                HookDecision::StopTask(_) => 2,
                HookDecision::Leak(_) => 3,
            }
        }
        if rank(&other) > rank(&self) {
            other
        } else {
            self
        }
    }

    /// The stage a failing decision records (`policy`, or `leak` for holdout text), `None`
    /// for [`HookDecision::Proceed`].
    pub fn failed_stage(&self) -> Option<FailedStage> {
        match self {
            HookDecision::Proceed => None,
            HookDecision::FailAttempt(_) | HookDecision::StopTask(_) => Some(FailedStage::Policy),
            HookDecision::Leak(_) => Some(FailedStage::Leak),
        }
    }
}

/// A finding of a memory guard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardFinding {
    /// The decision or rule it concerns (`DEC-1`).
    pub rule: String,
    /// What the diff did, for the agent (no holdout text).
    pub message: String,
    /// Whether it fails the attempt.
    pub blocking: bool,
}

/// What a guard inspects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardRequest {
    /// The task.
    pub task_id: String,
    /// Requirements it serves.
    pub requirements: Vec<String>,
    /// The worktree.
    pub worktree: PathBuf,
    /// The commit the task branch was cut from (or last rebased onto).
    pub base: String,
    /// The attempt's head commit.
    pub head: String,
    /// `git diff base head` (unified, may be long).
    pub diff: String,
}

/// How a task ended, as recorded on its last attempt in the fix loop
/// ([`AttemptMetrics::final_outcome`]); serialised as `"merged"` or `"failed"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinalOutcome {
    /// Every stage passed and the work merged.
    Merged,
    /// The task used up its attempts or was stopped by policy.
    Failed,
}

/// The task kind a metrics line without `task_kind` counts under
/// ([`AttemptMetrics::kind_key`]).
pub const UNRECORDED_KIND: &str = "unrecorded";

/// One attempt's metrics: what the factory gives [`Recall::record_attempt`], and one line of
/// `.lightsout/metrics.jsonl`, which `lightsout_tune` reads back in every version written.
///
/// Invariant: `attempt >= 1` (1-based). The fields a line written before them lacks read as
/// their default (`task_kind` and after: `None`); unknown fields are ignored, so a newer
/// factory's lines still read.
///
/// [`Recall::record_attempt`]: crate::Recall::record_attempt
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptMetrics {
    /// The run.
    pub run_id: String,
    /// The task.
    pub task_id: String,
    /// Requirements it serves.
    #[serde(default)]
    pub requirements: Vec<String>,
    /// 1-based attempt.
    pub attempt: u32,
    /// The agent label (`claude-code`; `replay` runs say so).
    #[serde(default)]
    pub agent: String,
    /// Whether the agent was a replay.
    #[serde(default)]
    pub replay: bool,
    /// Tokens, cost, wall time.
    #[serde(default)]
    pub usage: Usage,
    /// Whether the attempt passed every stage.
    pub passed: bool,
    /// The stage that failed it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_stage: Option<FailedStage>,
    /// Whether a human had to step in (a crashed run resumed by hand with `--resume`).
    #[serde(default)]
    pub human_intervened: bool,
    /// The task kind (`code`, `docs`, ...). The fields from here on are optional in the JSON
    /// line, so lines written before them still read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_kind: Option<String>,
    /// The `[agent.<name>]` profile `lightsout.toml` names for the task kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_profile: Option<String>,
    /// The model, when a `[[tuning.variant]]` names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The prompt variant: the `[[tuning.variant]]` the attempt ran under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// On the task's last attempt in the fix loop: [`FinalOutcome::Merged`] (it passed every
    /// stage) or [`FinalOutcome::Failed`] (attempts used up or stopped by policy). A later
    /// merge conflict sends a task back as a further attempt, which records its own outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_outcome: Option<FinalOutcome>,
    /// The redacted failure category, `stage: category` (`holdout: timeout`); `leak` alone
    /// for a holdout leak, whose reason names holdout files. Never holdout text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_category: Option<String>,
}

impl AttemptMetrics {
    /// The failure category of an attempt that failed at `stage` with `feedback`: the stage
    /// and the last `: `-separated part of the feedback's first line (the category of a
    /// redacted holdout result); `leak` alone for a leak.
    pub fn category(stage: FailedStage, feedback: Option<&str>) -> String {
        if stage == FailedStage::Leak {
            return stage.as_str().to_owned();
        }
        let category = feedback
            .and_then(|t| t.lines().next())
            .and_then(|first| first.rsplit(": ").next())
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .unwrap_or("failed");
        format!("{stage}: {category}")
    }

    /// What the attempt counts as in a roll-up: its declared variant, else its agent profile,
    /// else its agent label (lines written before variants existed).
    pub fn variant_key(&self) -> &str {
        self.variant
            .as_deref()
            .or(self.agent_profile.as_deref())
            .unwrap_or(&self.agent)
    }

    /// The task kind it counts under: `task_kind`, else [`UNRECORDED_KIND`].
    pub fn kind_key(&self) -> &str {
        self.task_kind.as_deref().unwrap_or(UNRECORDED_KIND)
    }

    /// The failure category it counts under when it failed: `failure_category`, else the
    /// failed stage, else `unknown`; `None` when it passed.
    pub fn category_key(&self) -> Option<&str> {
        (!self.passed).then(|| {
            self.failure_category
                .as_deref()
                .or(self.failed_stage.map(FailedStage::as_str))
                .unwrap_or("unknown")
        })
    }
}

/// A lesson: a fingerprinted failure, so the next run (and the agent) can learn from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lesson {
    /// Stable fingerprint: sha256 of the stage and the redacted feedback, first 16 hex.
    pub fingerprint: String,
    /// The task.
    pub task_id: String,
    /// Requirements involved.
    pub requirements: Vec<String>,
    /// The stage that failed (never `leak`: a leak's reason names holdout files).
    pub stage: FailedStage,
    /// The redacted feedback (never holdout text).
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_read_and_write_the_journal_words() {
        for st in FailedStage::ALL {
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()));
            assert_eq!(serde_json::from_str::<FailedStage>(&json).unwrap(), st);
            assert_eq!(st.as_str().parse::<FailedStage>(), Ok(st));
        }
        assert!("nope".parse::<FailedStage>().is_err());
        assert_eq!(Some(FailedStage::Leak).as_deref(), Some("leak"));
    }

    #[test]
    fn categories_name_the_stage_and_the_redacted_category() {
        assert_eq!(
            AttemptMetrics::category(
                FailedStage::Holdout,
                Some("REQ-1: 2 of 5 trials failed: status mismatch\nmore")
            ),
            "holdout: status mismatch"
        );
        assert_eq!(
            AttemptMetrics::category(FailedStage::Leak, Some("holdout/a.feature")),
            "leak"
        );
        assert_eq!(
            AttemptMetrics::category(FailedStage::Checks, None),
            "checks: failed"
        );
    }

    #[test]
    fn leak_kinds_come_from_the_recorded_reason() {
        assert_eq!(
            LeakClass::of_reason("holdout canary from holdout/a.feature"),
            LeakClass::Canary
        );
        assert_eq!(
            LeakClass::of_reason("verbatim scenario text from holdout/a.feature"),
            LeakClass::Verbatim
        );
    }
}
