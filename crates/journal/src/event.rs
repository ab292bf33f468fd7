//! The events a run streams to its `EventSink`s (`lightsout-factory`): progress for the CLI,
//! lines for the report and the audit log.

use serde::{Deserialize, Serialize};

/// Something that happened in a run. Serialised with a `type` tag (`{"type":"merged",...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum Event {
    /// A run started or resumed.
    RunStarted {
        /// The run id.
        run_id: String,
        /// Tasks in the plan.
        tasks: usize,
        /// Tasks already merged, failed or blocked (non-zero on a resume).
        done: usize,
        /// Whether this is a `--resume`.
        resumed: bool,
    },
    /// A task is not built again: its inputs are unchanged since run `built_by` and its
    /// work is on main.
    TaskUnchanged {
        /// Task id.
        task: String,
        /// The run that built it.
        built_by: String,
    },
    /// A task's dependencies are all merged.
    TaskReady {
        /// The task.
        task: String,
    },
    /// An agent started on a task.
    AttemptStarted {
        /// The task.
        task: String,
        /// 1-based attempt.
        attempt: u32,
        /// The agent label (replays say `(replay)`).
        agent: String,
    },
    /// An attempt ended.
    AttemptFinished {
        /// The task.
        task: String,
        /// 1-based attempt.
        attempt: u32,
        /// Whether it passed checks, guards and holdout.
        passed: bool,
        /// The stage that failed it.
        failed_stage: Option<lightsout_core::FailedStage>,
        /// Its USD cost, when known.
        cost_usd: Option<f64>,
        /// Input + output tokens.
        tokens: u64,
    },
    /// A task passed and entered the merge queue.
    TaskPassed {
        /// The task.
        task: String,
    },
    /// A merge started (rebase, then holdout on the merged result).
    Merging {
        /// The task.
        task: String,
    },
    /// Main fast-forwarded to the task's commit.
    Merged {
        /// The task.
        task: String,
        /// The new main commit.
        commit: String,
    },
    /// The merged result regressed; main was not moved and the task went back to its agent.
    MergeReverted {
        /// The task.
        task: String,
        /// Redacted feedback.
        feedback: String,
    },
    /// The rebase conflicted; the conflict went back to the agent as a task of its own.
    ConflictRouted {
        /// The task.
        task: String,
        /// The new task.
        to: String,
        /// Conflicting files.
        files: Vec<String>,
    },
    /// A task failed for good.
    TaskFailed {
        /// The task.
        task: String,
        /// Why.
        reason: String,
    },
    /// A task cannot run because a dependency failed.
    TaskBlocked {
        /// The task.
        task: String,
        /// The failed dependency.
        by: String,
    },
    /// The holdout's strength is being measured on the merged build (after the last merge).
    StrengthStarted {
        /// The commit measured (main's head).
        commit: String,
    },
    /// One more mutant of the merged build judged.
    StrengthProgress {
        /// Mutants judged so far.
        done: usize,
        /// Mutants to judge.
        total: usize,
        /// Killed so far.
        killed: usize,
    },
    /// The holdout's strength was measured (the survivors are in the run's results, for
    /// humans only).
    StrengthMeasured {
        /// Mutants killed.
        killed: usize,
        /// Mutants judged.
        total: usize,
        /// `killed / total`.
        kill_rate: f64,
        /// Wilson 95% lower bound of the kill rate.
        lower: f64,
        /// Wilson 95% upper bound of the kill rate.
        upper: f64,
    },
    /// The holdout's strength could not be measured.
    StrengthNotMeasured {
        /// Why.
        reason: String,
    },
    /// The run ended.
    RunFinished {
        /// Tasks merged.
        merged: usize,
        /// Tasks failed or blocked.
        failed: usize,
        /// Total USD cost reported by agents.
        cost_usd: f64,
    },
}
