//! [`RunState`]: everything known about a run, rebuilt from its journal by replaying the
//! entries in order, and written to [`STATE_FILE`] (`state.json`) in the run directory.

use crate::journal::Entry;
use crate::plan::{Plan, Task};
use lightsout_agent::{Outcome, Usage};
use lightsout_core::FailedStage;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// File name of the run state inside `.lightsout/runs/<id>/`: `{"schema": "lightsout-run/1",
/// "totals": ..., "run": RunState}`, rewritten atomically at the end of every run or resume.
/// (`report.json` and `report.html` beside it are the outcome report, see `lightsout_report`.)
pub const STATE_FILE: &str = "state.json";

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskPhase {
    /// Not started (dependencies pending, or no free agent yet).
    #[default]
    Pending,
    /// An agent is working on it (or will again, after a reverted merge).
    Running,
    /// Passed checks, guards and holdout; waiting in the merge queue.
    Passed,
    /// Being rebased and verified on the merged result.
    Merging,
    /// On main.
    Merged,
    /// Failed for good.
    Failed,
    /// Not run: a dependency failed.
    Blocked,
    /// Its rebase conflicted; a task of its own (`routed_to`) redoes the work.
    Rerouted,
}

impl TaskPhase {
    /// Whether the task will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskPhase::Merged | TaskPhase::Failed | TaskPhase::Blocked | TaskPhase::Rerouted
        )
    }
}

/// One attempt at a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1-based attempt.
    pub attempt: u32,
    /// Agent label.
    pub agent: String,
    /// Whether the agent was a replay of a recorded trajectory.
    pub replay: bool,
    /// The agent's summary.
    pub summary: String,
    /// Tokens, USD, wall ms.
    pub usage: Usage,
    /// How the agent call ended.
    pub outcome: Outcome,
    /// Whether the attempt passed every stage.
    pub passed: bool,
    /// The stage that failed it: `policy`, `leak`, `agent`, `checks`, `guards` or `holdout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_stage: Option<FailedStage>,
    /// The feedback given to the next attempt (redacted for the holdout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    /// The worktree HEAD after the attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Whether a human had to step in (the attempt ran in a resumed run).
    #[serde(default)]
    pub human_intervened: bool,
}

/// Everything known about one task.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskState {
    /// The task as planned (or as routed back after a conflict).
    pub task: Task,
    /// For a routed-back conflict task: the task it redoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Where it is.
    pub status: TaskPhase,
    /// Its branch, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Its worktree, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<PathBuf>,
    /// The commit its branch is based on (updated by each rebase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Requirements merged at `base` (its regression bucket).
    #[serde(default)]
    pub regression: Vec<String>,
    /// Finished attempts.
    pub attempts: Vec<AttemptRecord>,
    /// The attempt under way and the worktree HEAD it started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_attempt: Option<(u32, String)>,
    /// Feedback for the next attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_feedback: Option<String>,
    /// The commit that passed (queued for merge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    /// Merges started.
    #[serde(default)]
    pub merges: u32,
    /// The rebased commit verified on the merged result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<String>,
    /// Main's commit after this task merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_commit: Option<String>,
    /// Why it failed or was blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The conflict task now doing its work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routed_to: Option<String>,
    /// Merge reverts (regressions) so far.
    #[serde(default)]
    pub reverts: u32,
    /// Not built in this run: its inputs are unchanged since the run named here, whose
    /// commit (`merge_commit`) is on main.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unchanged: Option<String>,
}

impl TaskState {
    /// Sum of the attempts' USD cost (attempts without a reported cost count 0); `0.0`, never
    /// `-0.0`, when none reported one (`Sum for f64` starts from `-0.0`, which prints as `-0.0`).
    pub fn cost_usd(&self) -> f64 {
        self.attempts
            .iter()
            .filter_map(|a| a.usage.cost_usd)
            .fold(0.0, |sum, c| sum + c)
    }

    /// Sum of the attempts' input + output tokens.
    pub fn tokens(&self) -> u64 {
        self.attempts
            .iter()
            .map(|a| a.usage.input_tokens + a.usage.output_tokens)
            .sum()
    }
}

/// Run totals.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RunTotals {
    /// Tasks planned (routed-back conflict tasks not counted twice).
    pub tasks: usize,
    /// Planned tasks merged in this run.
    pub merged: usize,
    /// Planned tasks not built again: inputs unchanged and their work on main.
    #[serde(default)]
    pub unchanged: usize,
    /// Planned tasks failed.
    pub failed: usize,
    /// Planned tasks blocked by a failed dependency.
    pub blocked: usize,
    /// Planned tasks not finished (the run was interrupted).
    pub unfinished: usize,
    /// Attempts made.
    pub attempts: usize,
    /// Input + output tokens.
    pub tokens: u64,
    /// USD reported by agents.
    pub cost_usd: f64,
    /// Agent wall time, summed, in ms.
    pub agent_wall_ms: u64,
}

/// Everything known about a run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunState {
    /// Run id.
    pub run_id: String,
    /// Start time (RFC 3339).
    pub started_at: String,
    /// End time of the last finish (RFC 3339), when finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The main branch name.
    pub main: String,
    /// Main's commit at the start.
    pub base: String,
    /// Main's commit after the last merge.
    pub main_head: String,
    /// The commit the main checkout was last synced to.
    pub checkout: String,
    /// A checkout sync that was started and not confirmed (`from`, `to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_sync: Option<(String, String)>,
    /// Requirements merged so far, in merge order.
    pub merged_requirements: Vec<String>,
    /// Planned tasks in plan order, then routed-back conflict tasks.
    pub tasks: Vec<TaskState>,
    /// The number of planned tasks (a prefix of `tasks`).
    pub planned: usize,
    /// The resolved gate policy of the run (see `lightsout_eval::GatePolicy::resolve`).
    #[serde(default)]
    pub policy: lightsout_eval::GatePolicy,
    /// Not-ready findings of specs built anyway (`--allow-not-ready`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready: Vec<String>,
    /// `run --strength`: measure the holdout's strength after the last merge.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strength: bool,
}

impl RunState {
    /// Rebuilds the state from journal entries.
    pub fn replay<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Self {
        let mut s = RunState::default();
        for e in entries {
            s.apply(e);
        }
        s
    }

    /// The state of task `id`.
    pub fn task(&self, id: &str) -> Option<&TaskState> {
        self.tasks.iter().find(|t| t.task.id == id)
    }

    fn task_mut(&mut self, id: &str) -> Option<&mut TaskState> {
        self.tasks.iter_mut().find(|t| t.task.id == id)
    }

    /// The planned task a task belongs to (itself, or the parent of a conflict task).
    pub fn root_of<'a>(&'a self, id: &'a str) -> &'a str {
        self.task(id)
            .and_then(|t| t.parent.as_deref())
            .unwrap_or(id)
    }

    /// The plan the run works through (planned tasks only).
    pub fn plan(&self) -> Plan {
        Plan {
            tasks: self.tasks[..self.planned]
                .iter()
                .map(|t| t.task.clone())
                .collect(),
        }
    }

    /// Applies one journal entry.
    pub fn apply(&mut self, e: &Entry) {
        match e {
            Entry::RunStarted {
                run_id,
                at,
                main,
                base,
                plan,
                policy,
                not_ready,
                strength,
            } => {
                self.strength = *strength;
                self.run_id.clone_from(run_id);
                self.policy.clone_from(policy);
                self.not_ready.clone_from(not_ready);
                self.started_at.clone_from(at);
                self.main.clone_from(main);
                self.base.clone_from(base);
                self.main_head.clone_from(base);
                self.checkout.clone_from(base);
                self.planned = plan.tasks.len();
                self.tasks = plan
                    .tasks
                    .iter()
                    .map(|t| TaskState {
                        task: t.clone(),
                        ..TaskState::default()
                    })
                    .collect();
            }
            Entry::TaskUnchanged { .. }
            | Entry::TaskStarted { .. }
            | Entry::AttemptStarted { .. }
            | Entry::AttemptFinished { .. }
            | Entry::TaskFailed { .. }
            | Entry::TaskBlocked { .. } => self.apply_task_entry(e),
            Entry::MergeStarted { .. }
            | Entry::MergeReverted { .. }
            | Entry::ConflictRouted { .. }
            | Entry::MergeVerified { .. }
            | Entry::Merged { .. } => self.apply_merge_entry(e),
            Entry::CheckoutSyncStarted { from, to } => {
                self.checkout_sync = Some((from.clone(), to.clone()));
            }
            Entry::CheckoutSynced { commit } => {
                self.checkout_sync = None;
                self.checkout.clone_from(commit);
            }
            Entry::RunFinished { at } => {
                self.finished_at = Some(at.clone());
            }
        }
    }

    /// A task's own progress: unchanged, started, its attempts, failed or blocked.
    fn apply_task_entry(&mut self, e: &Entry) {
        match e {
            Entry::TaskUnchanged {
                task,
                commit,
                built_by,
            } => {
                let mut reqs = Vec::new();
                if let Some(t) = self.task_mut(task) {
                    t.status = TaskPhase::Merged;
                    t.merge_commit = Some(commit.clone());
                    t.unchanged = Some(built_by.clone());
                    reqs.clone_from(&t.task.requirement_ids);
                }
                self.add_merged_requirements(reqs);
            }
            Entry::TaskStarted {
                task,
                branch,
                worktree,
                base,
                regression,
            } => {
                if let Some(t) = self.task_mut(task) {
                    t.status = TaskPhase::Running;
                    t.branch = Some(branch.clone());
                    t.worktree = Some(worktree.clone());
                    t.base = Some(base.clone());
                    t.regression.clone_from(regression);
                }
            }
            Entry::AttemptStarted {
                task,
                attempt,
                head,
            } => {
                if let Some(t) = self.task_mut(task) {
                    t.status = TaskPhase::Running;
                    t.open_attempt = Some((*attempt, head.clone()));
                }
            }
            Entry::AttemptFinished { task, record } => {
                if let Some(t) = self.task_mut(task) {
                    t.open_attempt = None;
                    if record.passed {
                        t.status = TaskPhase::Passed;
                        t.candidate.clone_from(&record.commit);
                        t.pending_feedback = None;
                    } else {
                        t.pending_feedback.clone_from(&record.feedback);
                    }
                    t.attempts.push(record.clone());
                }
            }
            Entry::TaskFailed { task, reason } => {
                let parent = self.task(task).and_then(|t| t.parent.clone());
                for id in std::iter::once(task.clone()).chain(parent) {
                    if let Some(t) = self.task_mut(&id) {
                        t.status = TaskPhase::Failed;
                        t.open_attempt = None;
                        t.failure = Some(reason.clone());
                    }
                }
            }
            Entry::TaskBlocked { task, by } => {
                if let Some(t) = self.task_mut(task) {
                    t.status = TaskPhase::Blocked;
                    t.failure = Some(format!("blocked: dependency {by} failed"));
                }
            }
            _ => {}
        }
    }

    /// The merge queue's steps for a task: started, reverted, rerouted, verified, merged.
    fn apply_merge_entry(&mut self, e: &Entry) {
        match e {
            Entry::MergeStarted { task, .. } => {
                if let Some(t) = self.task_mut(task) {
                    t.status = TaskPhase::Merging;
                    t.merges += 1;
                    t.verified = None;
                }
            }
            Entry::MergeReverted {
                task,
                commit,
                feedback,
                regression,
            } => {
                let head = self.main_head.clone();
                if let Some(t) = self.task_mut(task) {
                    t.status = TaskPhase::Running;
                    t.reverts += 1;
                    t.candidate = None;
                    t.verified = None;
                    t.pending_feedback = Some(feedback.clone());
                    t.regression.clone_from(regression);
                    t.base = Some(head);
                    let _ = commit;
                }
            }
            Entry::ConflictRouted {
                task, to, feedback, ..
            } => {
                let root = self.root_of(task).to_owned();
                if let Some(t) = self.task_mut(task) {
                    t.status = TaskPhase::Rerouted;
                    t.candidate = None;
                    t.routed_to = Some(to.id.clone());
                }
                if let Some(r) = self.task_mut(&root) {
                    r.status = TaskPhase::Rerouted;
                    r.routed_to = Some(to.id.clone());
                }
                if self.task(&to.id).is_none() {
                    self.tasks.push(TaskState {
                        task: to.clone(),
                        parent: Some(root),
                        pending_feedback: Some(feedback.clone()),
                        ..TaskState::default()
                    });
                }
            }
            Entry::MergeVerified { task, commit } => {
                if let Some(t) = self.task_mut(task) {
                    t.verified = Some(commit.clone());
                }
            }
            Entry::Merged { task, commit } => {
                self.main_head.clone_from(commit);
                let parent = self.task(task).and_then(|t| t.parent.clone());
                let mut reqs = Vec::new();
                for id in std::iter::once(task.clone()).chain(parent) {
                    if let Some(t) = self.task_mut(&id) {
                        t.status = TaskPhase::Merged;
                        t.merge_commit = Some(commit.clone());
                        reqs.extend(t.task.requirement_ids.iter().cloned());
                    }
                }
                self.add_merged_requirements(reqs);
            }
            _ => {}
        }
    }

    /// Adds requirements now on main to the regression bucket (each once, in order).
    fn add_merged_requirements(&mut self, reqs: Vec<String>) {
        for r in reqs {
            if !self.merged_requirements.contains(&r) {
                self.merged_requirements.push(r);
            }
        }
    }

    /// Totals over the planned tasks (conflict tasks' attempts counted).
    pub fn totals(&self) -> RunTotals {
        let mut t = RunTotals {
            tasks: self.planned,
            ..RunTotals::default()
        };
        for (i, s) in self.tasks.iter().enumerate() {
            if i < self.planned {
                match s.status {
                    TaskPhase::Merged if s.unchanged.is_some() => t.unchanged += 1,
                    TaskPhase::Merged => t.merged += 1,
                    TaskPhase::Failed => t.failed += 1,
                    TaskPhase::Blocked => t.blocked += 1,
                    _ => t.unfinished += 1,
                }
            }
            t.attempts += s.attempts.len();
            t.tokens += s.tokens();
            t.cost_usd += s.cost_usd();
            t.agent_wall_ms += s.attempts.iter().map(|a| a.usage.wall_ms).sum::<u64>();
        }
        t
    }

    /// True when every planned task is merged, failed or blocked.
    pub fn is_complete(&self) -> bool {
        self.tasks[..self.planned].iter().all(|t| {
            matches!(
                t.status,
                TaskPhase::Merged | TaskPhase::Failed | TaskPhase::Blocked
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_with_no_reported_cost_costs_positive_zero() {
        let t = TaskState::default();
        assert!(t.cost_usd().is_sign_positive(), "printed as $-0.0000");
        assert_eq!(format!("{:.4}", t.cost_usd()), "0.0000");
    }
}
