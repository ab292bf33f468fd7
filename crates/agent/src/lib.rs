//! This crate provides the agent interface of Lightsout: the one trait the factory calls to
//! get work done on a task, the plain data that crosses it, and the adapters that run real
//! coding agents (Claude Code, Codex, Aider, or any CLI) or replay recorded ones.
//!
//! # Brief overview
//! - [`Agent`]: one required async method, [`Agent::run`], in the manner of tower's `Service`.
//! - [`TaskContext`] (what the agent is told: never holdout text), [`Workspace`] (where it may
//!   act: a worktree, an environment allowlist, [`ProcessLimits`]) and [`AgentReport`] (what it did:
//!   [`Usage`], transcript, [`Outcome`]).
//! - [`CommandAgent`] runs a CLI agent as a fenced child process, with [`Preset`]s for
//!   Claude Code, Codex and Aider; [`parse`] reads their usage and cost output.
//! - [`ReplayAgent`] applies a recorded trajectory of patches, and labels itself as a replay.
//! - The `testing` feature ships test doubles (`testing::FnAgent`, `testing::RecordingAgent`).
//!
//! The factory (`lightsout-factory`) drives agents; this crate knows nothing of task graphs,
//! holdouts or merging.
//!
//! # Example
//! ```
//! use lightsout_agent::{Agent, CommandAgent, TaskContext, Workspace};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let mut ws = Workspace::new(dir.path(), dir.path().join("artifacts"));
//! ws.env.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
//! // A "agent" that reads the prompt on stdin and writes a file into the worktree.
//! let agent = CommandAgent::new("sh", vec!["-c".into(), "cat > task.md; echo done".into()]);
//! let ctx = TaskContext { task_id: "T1".into(), title: "Say hello".into(), attempt: 1, ..Default::default() };
//! let report = agent.run(&ctx, &ws).await.unwrap();
//! assert!(report.outcome.is_completed());
//! assert_eq!(report.summary, "done");
//! assert!(std::fs::read_to_string(dir.path().join("task.md")).unwrap().contains("Say hello"));
//! # });
//! ```

#![deny(missing_docs)]

mod command;
pub mod contract;
mod error;
pub mod parse;
pub mod price;
mod replay;
#[cfg(feature = "testing")]
pub mod testing;
mod types;

pub use command::{
    CommandAgent, Finished, Preset, PromptMode, find_program, prompt_path, transcript_path,
};
pub use error::{AgentError, Error};
pub use parse::OutputFormat;
pub use price::{Price, Prices};
pub use replay::ReplayAgent;
pub use types::{
    AgentReport, Budget, INSTRUCTION_FILES, Outcome, ProcessLimits, PromptVariant,
    TASK_PLACEHOLDER, TaskContext, Usage, Workspace, prompt_for,
};

pub use async_trait::async_trait;
use std::sync::Arc;

/// The Rust adapter of `docs/agents.md` compiles: every `rust` block of that page is a
/// doctest of this crate.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/agents.md")]
pub struct AgentsDoc;

/// A coding agent: given a task and a worktree, it changes the worktree.
///
/// # Contract
/// - [`run`](Agent::run) acts only inside `ws.root` (its worktree) and `ws.artifacts_dir`;
///   it does not commit, push or switch branches (the factory commits what it leaves, and
///   checks that nothing outside the worktree changed).
/// - It sees only what [`TaskContext`] carries: never holdout scenarios.
/// - It returns within `ws.limits.wall_ms` (plus the time to kill a process group).
/// - Poor work is not an error: it returns `Ok` with an [`Outcome`] and the factory's checks
///   decide. `Err` means the call could not be made (a missing binary, an unreadable
///   trajectory), which retrying the same call will not fix.
/// - It may be called concurrently for different tasks, and again for the same task on a
///   later attempt (`ctx.attempt` grows by one each time, `ctx.previous_feedback` set).
#[async_trait]
pub trait Agent: Send + Sync {
    /// Works on `ctx` inside `ws` and reports what happened.
    ///
    /// # Errors
    /// [`Error`] when the agent cannot be run at all.
    async fn run(&self, ctx: &TaskContext, ws: &Workspace) -> Result<AgentReport, Error>;

    /// The agent's label in reports and events. Defaults to `"agent"`.
    fn name(&self) -> String {
        "agent".into()
    }
}

// `&T`, `Box<T>` and `Arc<T>` of an implementation forward to it (the blanket impls, written once).
macro_rules! forward_agent {
    ($($t:ty),*) => {$(
        #[async_trait]
        impl<T: Agent + ?Sized> Agent for $t {
            async fn run(&self, ctx: &TaskContext, ws: &Workspace) -> Result<AgentReport, Error> {
                (**self).run(ctx, ws).await
            }
            fn name(&self) -> String {
                (**self).name()
            }
        }
    )*};
}
forward_agent!(&T, Box<T>, Arc<T>);
