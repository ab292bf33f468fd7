//! This crate binds the stage traits of `lightsout-core` (and the `Evaluator` of
//! `lightsout-eval`, the `EventSink` of `lightsout-journal`) to the workspace's own engines,
//! so that the factory composes them and an adapter author sees worked examples outside the
//! run loop.
//!
//! # Brief overview
//! - [`engine`]: [`EngineEvaluator`], the holdout judged by the eval engine against the
//!   service started from a checkout (twins served, sandboxed behind the fence);
//!   [`redact`], the feedback an agent gets.
//! - [`fenced`]: [`FenceHook`] (budgets reserved and settled around each agent call, leak
//!   scans of what crosses the fence, policy violations) and [`AuditSink`] (the run's events
//!   as entries of the hash-chained audit log).
//! - [`agent_check`]: `lightsout agent check`, one agent on a built-in task behind the fence.
//! - [`instructions`]: the standing instructions written into a worktree for one agent call
//!   and taken out again.
//!
//! Every fallible function returns this crate's [`Error`], whose messages are the factory's
//! own for the same failure.

#![deny(missing_docs)]

pub mod agent_check;
pub mod engine;
mod error;
pub mod fenced;
pub mod instructions;

pub use engine::{EngineEvaluator, redact};
pub use error::Error;
use error::write_atomic;
pub use fenced::{AuditSink, FenceHook};
