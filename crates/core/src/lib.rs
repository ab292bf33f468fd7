//! This crate provides the vocabulary the Lightsout stages speak to each other: the plain
//! data that crosses a stage boundary and the stage traits an adapter author implements.
//! It depends on serde, schemars and async-trait only, so a memory or guard adapter does not
//! pull in the factory, the evaluator, the twins or tokio.
//!
//! # Brief overview
//! - [`Task`]: one unit of agent work, as the factory runs it and as an agent's
//!   `TaskContext` is built from it; [`TaskId`], [`RequirementId`]; [`valid_task_id`].
//! - [`Usage`]: tokens, USD and wall time of one agent call (USD as `f64`; the fence's budget
//!   ledger converts to micro-USD at its edge).
//! - [`Verdict`], [`RequirementResult`], [`EvalStage`]: what the holdout says.
//! - [`FailedStage`]: the stage that failed an attempt, serialised as today's lower-case
//!   strings (`"holdout"`, `"leak"`, ...); [`LeakClass`]: which kind of holdout text crossed.
//! - [`HookDecision`], [`GuardFinding`], [`GuardRequest`], [`Lesson`].
//! - [`AttemptMetrics`]: one attempt's metrics, one line of `.lightsout/metrics.jsonl`
//!   (read back by `lightsout_tune`), with [`FinalOutcome`].
//! - [`TaskContext`] (what an agent is told about one attempt, with what is left of its
//!   [`Budget`]) and [`AgentReport`] (what it did, how it ended: [`Outcome`]); the `Agent`
//!   trait itself lives in `lightsout-agent`, which re-exports them.
//! - Stage traits: [`DiffGuard`] (settled decisions against a diff), [`Recall`] (context
//!   packs in, metrics and lessons out) and [`AttemptHook`] (budgets, policy and leak scans
//!   around each agent call), each with a neutral implementation ([`NoGuard`], [`NoMemory`],
//!   [`NoHook`]) and forwarding impls for `&T`, `Box<T>` and `Arc<T>`. They fail with a
//!   [`BoxError`], so an adapter keeps its own error type as the source. The holdout's
//!   `Evaluator` lives in `lightsout-eval` (its request carries the eval's gate policy) and
//!   the run's `EventSink` in `lightsout-journal` (beside the `Event`s it receives).
//!
//! # Example
//! ```
//! use lightsout_core::{FailedStage, Usage};
//!
//! let stage: FailedStage = serde_json::from_str("\"leak\"").unwrap();
//! assert_eq!(stage, FailedStage::Leak);
//! assert_eq!(serde_json::to_string(&FailedStage::Holdout).unwrap(), "\"holdout\"");
//! assert_eq!(Usage { input_tokens: 3, output_tokens: 2, ..Usage::default() }.tokens(), 5);
//! ```

#![deny(missing_docs)]

mod context;
mod stage;
mod task;
mod traits;
mod usage;
mod verdict;

pub use context::{AgentReport, Budget, INSTRUCTION_FILES, Outcome, TaskContext};
pub use stage::{
    AttemptMetrics, FailedStage, FinalOutcome, GuardFinding, GuardRequest, HookDecision, LeakClass,
    Lesson, UNRECORDED_KIND, UnknownStage,
};
pub use task::{RequirementId, Task, TaskId, valid_task_id};
pub use traits::{AttemptHook, BoxError, DiffGuard, NoGuard, NoHook, NoMemory, Recall};
pub use usage::Usage;
pub use verdict::{EvalStage, RequirementResult, Verdict};
