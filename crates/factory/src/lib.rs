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
// `lightsout.toml` moved to `lightsout-config`; `lightsout_factory::config::…` paths stay.
pub use lightsout_config as config;
mod engine;
mod error;
mod factory;
/// The fence wired into the run loop ([`FenceHook`], [`AuditSink`], the leak scan of the
/// holdout suite): moved to `lightsout-adapters`; `lightsout_factory::fenced::…` paths stay.
pub mod fenced {
    pub use lightsout_adapters::fenced::*;
}
pub mod fleet;
pub mod gc;
// The async git runner moved to `lightsout-git`; `crate::git::…` paths stay as they were.
use lightsout_git::ops as git;
pub mod inputs;
/// The instruction layer around one agent call: moved to `lightsout-adapters`;
/// `lightsout_factory::instructions::…` paths stay.
pub mod instructions {
    pub use lightsout_adapters::instructions::*;
}
pub use lightsout_git::integrity;
mod judge;
mod memory;
pub mod plan;
mod propose;
pub use lightsout_fleet::queue;
pub mod replay;
pub mod report;
/// The scheduler core (critical-path list scheduling), from `lightsout-graph`.
pub use lightsout_graph::sched;
pub mod stages;
pub use lightsout_journal::{event, state};
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod tuning;

/// The outcome report of a run directory (`lightsout_report::outcome`), with
/// [`build_report`](outcome::build_report) and [`write_run_report`](outcome::write_run_report)
/// returning this crate's [`Error`], the holdout found through `lightsout.toml`.
pub mod outcome {
    pub use lightsout_report::outcome::{COVERAGE_JSON, STRENGTH_ERROR, STRENGTH_JSON, run_dir};
    use std::path::{Path, PathBuf};

    /// Builds the outcome report of run `run_id` in repository `repo`
    /// ([`lightsout_report::build_report`]).
    ///
    /// # Errors
    /// [`Error::UnknownRun`](crate::Error::UnknownRun) when the run id is not a plain name or
    /// has no journal, or when the journal cannot be read: [`Error::Report`](crate::Error::Report)
    /// (the report's error, kept whole).
    pub fn build_report(
        repo: &Path,
        run_id: &str,
    ) -> Result<crate::report::RunReport, crate::Error> {
        Ok(lightsout_report::build_report(repo, run_id)?)
    }

    /// Builds the report of run `run_id` and writes `report.json` and `report.html` into its
    /// run directory atomically ([`lightsout_report::write_run_report`]); returns their paths,
    /// JSON first. The holdout's coverage is frozen first from the holdout directory that
    /// `lightsout.toml` (or `LIGHTSOUT_HOLDOUT`) names, when there is one.
    ///
    /// # Errors
    /// Those of [`build_report`], and [`Error::Report`](crate::Error::Report) when a file
    /// cannot be written.
    pub fn write_run_report(repo: &Path, run_id: &str) -> Result<(PathBuf, PathBuf), crate::Error> {
        let holdout_dir = || {
            let config = crate::Config::load(&repo.join("lightsout.toml")).ok()?;
            let env = std::env::var("LIGHTSOUT_HOLDOUT").ok();
            config.holdout_dir(env.as_deref())
        };
        Ok(lightsout_report::write_run_report(
            repo,
            run_id,
            holdout_dir,
        )?)
    }
}

/// The run journal (`lightsout_journal::journal`), with [`read`](journal::read) and
/// [`write_atomic`](journal::write_atomic) returning this crate's [`Error`].
pub mod journal {
    pub use lightsout_journal::journal::{Entry, Journal, Mirror};
    use std::path::Path;

    /// Reads every complete entry of the journal at `path`, ignoring a partial last line
    /// ([`lightsout_journal::read`]).
    ///
    /// # Errors
    /// [`Error::JournalEntry`](crate::Error::JournalEntry) when a complete line is not a valid
    /// entry or the file cannot be read.
    pub fn read(path: &Path) -> Result<Vec<Entry>, crate::Error> {
        Ok(lightsout_journal::read(path)?)
    }

    /// Writes `bytes` to `path` atomically: a temporary file in the same directory, `fsync`,
    /// then `rename` over `path` ([`lightsout_stdx::write_atomic`]).
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) on any file operation failure.
    pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), crate::Error> {
        Ok(lightsout_journal::write_atomic(path, bytes)?)
    }
}

pub use config::{Config, Redaction};
pub use error::Error;
pub use event::Event;
pub use factory::{
    Factory, RunOptions, agent_from_profile, command_from_profile, describe_build, latest_run,
    repo_root,
};
pub use lightsout_adapters::EngineEvaluator;
pub use lightsout_adapters::{AuditSink, FenceHook};
pub use lightsout_git::{COMMITTER_EMAIL, COMMITTER_NAME};
pub use memory::DecisionMemory;
pub use outcome::{STRENGTH_ERROR, STRENGTH_JSON, build_report, run_dir, write_run_report};
pub use plan::{Plan, PlanCheck, Planner, SpecPlanner, Task};
pub use propose::write_template;
pub use stages::{
    AttemptHook, AttemptMetrics, BoxError, CommandEvaluator, DiffGuard, EvalRequest, EvalStage,
    Evaluator, EventSink, FailedStage, GuardFinding, GuardRequest, HookDecision, LeakClass, Lesson,
    NoEvents, NoGuard, NoHook, NoMemory, Recall, RequirementResult, StrengthRequest, VecEvents,
    Verdict, redact,
};
pub use state::{AttemptRecord, RunState, RunTotals, TaskPhase, TaskState};
