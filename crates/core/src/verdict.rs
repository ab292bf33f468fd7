//! What the holdout says: [`Verdict`], [`RequirementResult`], and when it ran
//! ([`EvalStage`]).

use serde::{Deserialize, Serialize};

/// When the holdout runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvalStage {
    /// On the task's branch, before merging.
    Candidate,
    /// On the task's branch rebased onto main: the merged result, before main moves.
    Merged,
}

impl EvalStage {
    /// `candidate` or `merged`.
    pub fn as_str(self) -> &'static str {
        match self {
            EvalStage::Candidate => "candidate",
            EvalStage::Merged => "merged",
        }
    }
}

/// The result for one requirement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequirementResult {
    /// Requirement id.
    pub id: String,
    /// Trials run.
    pub trials: u32,
    /// Trials passed (`<= trials`).
    pub passed: u32,
    /// Failure category when some trial failed (`status mismatch`, `timeout`), never
    /// scenario text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// A holdout verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// True when every requested requirement passed.
    pub passed: bool,
    /// Per requirement.
    pub requirements: Vec<RequirementResult>,
    /// Feedback for the agent, already redacted: requirement ids and failure categories,
    /// never scenario names, steps or values.
    pub feedback: String,
}
