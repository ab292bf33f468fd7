//! [`FencedAgent`]: a [`CommandAgent`] whose every call runs behind the process
//! [`Fence`].
//!
//! `lightsout run` wraps each command-line agent profile (`claude-code`, `codex`, `aider`,
//! `command`) in one of these, so the `[fence]` table of `lightsout.toml` applies to every
//! agent process of the run: the environment allowlist, the output cap, the wall-time limit
//! with a process-group kill, the worktree as working directory, the optional network and PID
//! namespaces, and the detection of writes outside the worktree and of a deleted or damaged
//! `.git` link. In-process agents (the `replay` preset, an embedder's own [`Agent`]) start no
//! process and are not wrapped.
//!
//! The call itself reports like [`CommandAgent`] (same prompt file, and
//! [`CommandAgent::finish`] for the transcript, output parsing and outcome). The fence's [`FenceReport`] goes into a shared [`FenceReports`] keyed by task and
//! attempt, where the run's `FenceHook` (in `lightsout-factory`) takes it to audit each violation
//! and fail the attempt.

use super::FenceError;
use super::policy::{Fence, FenceReport, Violation};
use async_trait::async_trait;
use lightsout_agent::{
    Agent, AgentError, AgentReport, CommandAgent, Finished, Outcome, PromptMode, TaskContext,
    Workspace,
};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::{Arc, Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The fence reports of the calls a run made, by `(task id, attempt)`, until the hook takes
/// them. Shared between the run's [`FencedAgent`]s and its `FenceHook` (in `lightsout-factory`).
#[derive(Debug, Default)]
pub struct FenceReports(Mutex<BTreeMap<(String, u32), FenceReport>>);

impl FenceReports {
    /// Stores the report of `task`'s `attempt`, replacing an earlier one.
    pub fn put(&self, task: &str, attempt: u32, report: FenceReport) {
        lock(&self.0).insert((task.to_owned(), attempt), report);
    }

    /// Takes the report of `task`'s `attempt`: `None` when no fenced call was made for it
    /// (an in-process agent) or it was already taken.
    pub fn take(&self, task: &str, attempt: u32) -> Option<FenceReport> {
        lock(&self.0).remove(&(task.to_owned(), attempt))
    }
}

/// A [`CommandAgent`] run through a [`Fence`].
///
/// Per call, the fence's limits are tightened to the [`Workspace::limits`] (`[limits]`) and
/// to the wall time left in the task's budget ([`TaskContext::budget`]), whichever is lower.
/// The environment the allowlist picks from is [`Workspace::env`] (what `[env]` let
/// through) plus the exact names in `[env] pass` taken from the factory's own environment;
/// the fence applies the same `[env]` table again, so a variable reaches the agent exactly
/// when `[env]` lets it through or names it in `pass`. The adapter contract's `LIGHTSOUT_*`
/// variables are added after the allowlist.
#[derive(Debug, Clone)]
pub struct FencedAgent {
    command: CommandAgent,
    fence: Arc<Fence>,
    reports: Arc<FenceReports>,
}

impl FencedAgent {
    /// Runs `command` behind `fence`, storing each call's report in `reports`.
    pub fn new(command: CommandAgent, fence: Arc<Fence>, reports: Arc<FenceReports>) -> Self {
        Self {
            command,
            fence,
            reports,
        }
    }

    /// The agent's configuration.
    pub fn command(&self) -> &CommandAgent {
        &self.command
    }

    fn host_env(&self, ws: &Workspace) -> Vec<(OsString, OsString)> {
        let mut vars: BTreeMap<OsString, OsString> = ws
            .env
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect();
        for name in &self.fence.config().env.pass {
            if let Some(v) = std::env::var_os(name) {
                vars.insert(OsString::from(name), v);
            }
        }
        vars.into_iter().collect()
    }
}

#[async_trait]
impl Agent for FencedAgent {
    async fn run(&self, ctx: &TaskContext, ws: &Workspace) -> Result<AgentReport, AgentError> {
        let c = &self.command;
        if c.program.trim().is_empty() {
            return Err(AgentError::Config("the agent program is empty".into()));
        }
        // The adapter contract (`lightsout_agent::contract`): prompt, task and feedback files
        // outside the worktree, and the variables naming them.
        let prepared = lightsout_agent::contract::prepare(ctx, ws).await?;
        let prompt = prepared.prompt;
        let args = c.args_for(&prepared.prompt_file);

        let config = self.fence.config();
        let wall_ms = [
            Some(config.wall_ms),
            Some(ws.limits.wall_ms),
            ctx.budget.wall_ms_left,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(config.wall_ms);
        let output_bytes = config.output_bytes.min(ws.limits.output_bytes);
        let fence = (*self.fence)
            .clone()
            .with_limits(wall_ms, output_bytes)
            .with_host_env(self.host_env(ws))
            .with_readable([ws.artifacts_dir.clone()]);
        let mut cmd = fence
            .command(&c.program, &args, &ws.root)
            .map_err(|e| match e {
                FenceError::Spawn { program, source } => AgentError::Spawn { program, source },
                other => AgentError::Process(std::io::Error::other(format!(
                    "the fence could not prepare the agent's process: {other}"
                ))),
            })?;
        cmd.envs(prepared.env);
        let stdin = match c.prompt {
            PromptMode::Stdin => Some(prompt.into_bytes()),
            PromptMode::File => None,
        };
        let root = ws.root.clone();
        let out = tokio::task::spawn_blocking(move || fence.run(cmd, stdin, &root))
            .await
            .map_err(|e| AgentError::Process(std::io::Error::other(e.to_string())))?
            .map_err(|e| AgentError::Process(std::io::Error::other(e.to_string())))?;

        let limit = out.report.violations.iter().find_map(|v| match v {
            Violation::TimedOut { .. } => Some(Outcome::TimedOut),
            Violation::OutputCapped { .. } => Some(Outcome::OutputCapped),
            _ => None,
        });
        let report = c
            .finish(
                ctx,
                ws,
                Finished {
                    stdout: &out.stdout,
                    stderr: &out.stderr,
                    exit_code: out.exit.and_then(|e| e.code),
                    success: out.exit.is_some_and(|e| e.success()),
                    limit,
                    wall_ms: out.wall_ms,
                },
            )
            .await?;
        self.reports.put(&ctx.task_id, ctx.attempt, out.report);
        Ok(report)
    }

    fn name(&self) -> String {
        self.command.name.clone()
    }
}
