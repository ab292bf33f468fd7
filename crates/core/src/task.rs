//! [`Task`]: one unit of agent work, and its ids.

use serde::{Deserialize, Serialize};

/// A task id, unique in a run; a valid git ref component (`T1`, `REQ-2`, `shortener-T3`,
/// `T1.rebase-1` for a routed-back conflict). See [`valid_task_id`].
pub type TaskId = String;

/// A requirement id as a spec writes it (`REQ-1`, `FR-002`, Kiro `1.1`).
pub type RequirementId = String;

/// One unit of agent work: builds part of a spec on its own branch.
///
/// This is the one task shape that crosses stages: the factory's plan holds these, the agent's
/// `TaskContext` is built from one, and the memory stage ([`crate::Recall`]) gets one for its
/// context pack. (The task graph's parsed entries, with spans and typed requirement
/// references, are `lightsout_graph::TaskEntry`.)
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Task {
    /// Id, unique in the plan; a valid git ref component (`T1`, `REQ-2`, `shortener-T3`).
    pub id: TaskId,
    /// Short title.
    pub title: String,
    /// Task kind (`code` by default); selects the agent profile in `lightsout.toml`.
    pub kind: String,
    /// The spec the task comes from.
    pub spec_id: String,
    /// Requirement ids the task serves; the holdout scenarios of these judge it.
    pub requirement_ids: Vec<RequirementId>,
    /// Ids of tasks that must be merged before this one starts.
    pub depends_on: Vec<TaskId>,
    /// Estimated effort in hours, used as the scheduling weight (1.0 when unknown).
    pub estimate_hours: f64,
    /// The spec excerpt shown to the agent (the requirements' text, markdown).
    pub spec_excerpt: String,
    /// Constraints, `CON-n: text`.
    pub constraints: Vec<String>,
    /// Anti-spec items, `ANTI-n: text`.
    pub anti_spec: Vec<String>,
    /// Visible acceptance criteria, one Given/When/Then scenario per entry.
    pub acceptance_criteria: Vec<String>,
}

/// Whether `id` can be used as a task id: ASCII letters, digits, `-`, `_`, and single dots
/// not at the ends (so `lightsout/<run>/<id>` is a valid branch name).
pub fn valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.starts_with(['.', '-'])
        && !id.ends_with('.')
        && !id.contains("..")
        && id.rsplit_once('.').is_none_or(|(_, ext)| ext != "lock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_must_fit_in_a_branch_name() {
        assert!(valid_task_id("T1"));
        assert!(valid_task_id("REQ-1.rebase-1"));
        for bad in ["", "a b", "a..b", ".a", "a.", "x.lock", "a/b", "a:b", "-x"] {
            assert!(!valid_task_id(bad), "{bad}");
        }
    }
}
