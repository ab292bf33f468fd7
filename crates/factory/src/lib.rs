//! This crate provides the Lightsout run loop: it takes a plan of tasks derived from specs,
//! runs coding agents on them in isolated git worktrees, judges each attempt with visible
//! checks, memory guards and the holdout suite, merges passing work through a merge queue
//! that never leaves main broken, and journals every step so a killed run resumes.
//!
//! # Brief overview
//! - [`Factory`] runs ([`Factory::run`]) or resumes ([`Factory::resume`]) a [`Plan`]; the
//!   per-task loop is agent → visible checks → [`DiffGuard`] → [`Evaluator`] (holdout, redacted
//!   feedback) → retry until `[run] attempts` are used.
//! - The merge queue rebases a passing branch onto main, re-runs checks and the holdout on
//!   the merged result (with every requirement already on main as the regression bucket),
//!   and only then moves main with a compare-and-swap `git update-ref`. A regression routes
//!   the task back to its agent (main never saw it); a conflict becomes a task of its own
//!   (`<task>.rebase-<n>`). Main receives one squashed commit per task, with trailers
//!   (`Lightsout-Run`, `-Task`, `-Requirements`, `-Gate`). Attempt commits are never
//!   deleted by a run: refs under `refs/lightsout/<run>/` keep every pre-rebase, merged and
//!   final head, and a finished task's worktree and branch are removed; [`gc`] prunes old
//!   runs.
//! - [`inputs`]: each task's input key (`.lightsout/inputs.json`); a task whose key is
//!   unchanged and whose commit is on main is not built again (`RunOptions::rebuild`
//!   forces it).
//! - [`journal`]: `.lightsout/runs/<id>/journal.jsonl`, append + fsync; [`RunState`] is
//!   rebuilt from it and written to `state.json`; [`outcome`] turns a run
//!   directory into the outcome report (`report.json` + `report.html`, see [`report`]).
//! - [`sched::Scheduler`]: critical-path list scheduling, shared with the [`sched::simulate`]
//!   benchmark.
//! - Stage traits: [`Evaluator`], [`DiffGuard`], [`Recall`], [`AttemptHook`], [`EventSink`],
//!   [`Planner`]; the agents come from `lightsout-agent`, and the plain data that crosses the
//!   stages ([`Task`], [`Verdict`], [`FailedStage`], `Usage`) from `lightsout-core`.
//! - [`queue`]: the spec queue in the state store (`.lightsout/state.db`) behind
//!   [`queue::QueueStore`].
//! - [`Config`] reads `lightsout.toml`.
//! - [`fleet`]: where a merge publishes main ([`fleet::MergeTarget`]: the repository's own
//!   main, or a fleet's remote with its merge lock and a compare-and-swap push), and a fleet
//!   run's plan shared through the remote.
//!
//! # Example
//! ```
//! use lightsout_factory::sched::simulate;
//!
//! // Four tasks: 0 → 1 → 3 and 0 → 2 → 3, two agents.
//! let r = simulate(&[1.0, 5.0, 1.0, 1.0], &[(0, 1), (0, 2), (1, 3), (2, 3)], 2).unwrap();
//! assert_eq!(r.critical_path, 7.0);
//! assert_eq!(r.makespan, 7.0); // the critical path is the bound here, and it is met
//! ```
//! Running a real plan needs a git repository; see `crates/factory/tests/it/` and the
//! `lightsout run` command.

#![deny(missing_docs)]

pub mod agent_check;
mod checks;
pub mod config;
mod engine;
mod error;
pub mod event;
mod factory;
pub mod fenced;
pub mod fleet;
pub mod gc;
mod git;
pub mod inputs;
pub mod instructions;
pub mod integrity;
pub mod journal;
mod judge;
mod memory;
pub mod outcome;
pub mod plan;
pub use lightsout_fleet::queue;
pub mod replay;
pub mod report;
pub mod sched;
pub mod stages;
pub mod state;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use config::{Config, Redaction};
pub use engine::EngineEvaluator;
pub use error::Error;
pub use event::Event;
pub use factory::{
    Factory, RunOptions, agent_from_profile, command_from_profile, describe_build, latest_run,
    repo_root,
};
pub use fenced::{AuditSink, FenceHook};
pub use git::{COMMITTER_EMAIL, COMMITTER_NAME};
pub use memory::DecisionMemory;
pub use outcome::{STRENGTH_ERROR, STRENGTH_JSON, build_report, run_dir, write_run_report};
pub use plan::{Plan, Planner, SpecPlanner, Task};
pub use stages::{
    AttemptHook, AttemptMetrics, BoxError, CommandEvaluator, DiffGuard, EvalRequest, EvalStage,
    Evaluator, EventSink, FailedStage, GuardFinding, GuardRequest, HookDecision, LeakClass, Lesson,
    NoEvents, NoGuard, NoHook, NoMemory, Recall, RequirementResult, StrengthRequest, VecEvents,
    Verdict, redact,
};
pub use state::{AttemptRecord, RunState, RunTotals, TaskPhase, TaskState};
