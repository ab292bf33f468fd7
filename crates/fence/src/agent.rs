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
use super::budget::{OpenCalls, Spend};
use super::policy::{Fence, FenceReport, LineWatch, Violation};
use async_trait::async_trait;
use lightsout_agent::parse::StreamParser;
use lightsout_agent::{
    Agent, AgentError, AgentReport, CommandAgent, Finished, Outcome, Prices, PromptMode,
    TaskContext, Workspace,
};
use lightsout_stdx::lock;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::{Arc, Mutex};

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
    open: Option<Arc<OpenCalls>>,
}

impl FencedAgent {
    /// Runs `command` behind `fence`, storing each call's report in `reports`.
    pub fn new(command: CommandAgent, fence: Arc<Fence>, reports: Arc<FenceReports>) -> Self {
        Self {
            command,
            fence,
            reports,
            open: None,
        }
    }

    /// Watches each call's spend as it streams in against its reservation in `open`
    /// (opened by the run's `FenceHook`): the agent's stdout is parsed line by line as its
    /// [`format`](CommandAgent::format) (report lines of the adapter contract in any format),
    /// tokens are priced with the agent's [`prices`](CommandAgent::prices) when no cost is
    /// reported, and when the spend so far plus the largest step between two reports cannot
    /// be [covered](super::budget::Reservation::cover) under the task, run and day caps, the process group
    /// is killed ([`Violation::BudgetStopped`]). The format's final event (Claude's result,
    /// Codex's `turn.completed`) ends the call and stops nothing: what it reports is settled
    /// after the call.
    #[must_use]
    pub fn with_open_calls(mut self, open: Arc<OpenCalls>) -> Self {
        self.open = Some(open);
        self
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
        let watch = self.open.clone().map(|open| {
            spend_watch(
                open,
                StreamParser::new(c.format),
                c.prices.clone(),
                ctx.task_id.clone(),
                ctx.attempt,
            )
        });
        let out = tokio::task::spawn_blocking(move || fence.run_watched(cmd, stdin, &root, watch))
            .await
            .map_err(|e| AgentError::Process(std::io::Error::other(e)))?
            .map_err(|e| AgentError::Process(std::io::Error::other(e)))?;

        let limit = out.report.violations.iter().find_map(|v| match v {
            Violation::TimedOut { .. } => Some(Outcome::TimedOut),
            Violation::OutputCapped { .. } => Some(Outcome::OutputCapped),
            Violation::BudgetStopped { .. } => Some(Outcome::Failed {
                exit_code: None,
                message: v.to_string(),
            }),
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

/// The [`LineWatch`] of one call: parses each stdout line with `parser`, and covers the
/// spend so far plus the largest step between two reports in the call's open reservation
/// (the first report has no step before it: it is covered alone).
fn spend_watch(
    open: Arc<OpenCalls>,
    mut parser: StreamParser,
    prices: Prices,
    task: String,
    attempt: u32,
) -> LineWatch {
    let mut last: Option<Spend> = None;
    let mut step = Spend::default();
    Box::new(move |line: &str| {
        parser.line(line);
        if parser.is_done() {
            return None;
        }
        let p = parser.spent();
        let usd = p
            .cost_usd
            .or_else(|| prices.cost(p.model.as_deref(), p.input_tokens, p.output_tokens));
        let spent = Spend::from_report(p.input_tokens, p.output_tokens, usd.unwrap_or(0.0), 0);
        if last == Some(spent) || spent == Spend::default() {
            return None;
        }
        if let Some(before) = last {
            let d = spent.saturating_sub(before);
            step = Spend {
                tokens: step.tokens.max(d.tokens),
                usd_micros: step.usd_micros.max(d.usd_micros),
                wall_ms: 0,
            };
        }
        last = Some(spent);
        match open.cover(&task, attempt, spent, step)? {
            Ok(()) => None,
            Err(exceeded) => Some(Violation::BudgetStopped { exceeded }),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{Budget, BudgetConfig, BudgetLedger, Limits};
    use lightsout_agent::{OutputFormat, Price};

    /// Claude Code's `stream-json` as recorded in the agent crate's fixtures: two API
    /// messages (the first in two events with the same id), then the result.
    fn claude_stream() -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../agent/tests/fixtures/output/claude-stream.jsonl");
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Sonnet 4.5 at $3 / $15 per million input / output tokens.
    fn sonnet() -> Prices {
        Prices(BTreeMap::from([(
            "claude-sonnet-4-5-20250929".to_owned(),
            Price {
                input: 3.0,
                output: 15.0,
            },
        )]))
    }

    /// Feeds the stream to a watch of task T1 under a task cap of `usd`; the index and the
    /// violation of the line that stopped it, if one did.
    fn watch_stream(usd: f64) -> Option<(usize, Violation)> {
        let ledger = BudgetLedger::in_memory(BudgetConfig {
            per_task: Limits {
                usd: Some(usd),
                ..Limits::default()
            },
            ..BudgetConfig::default()
        });
        let open = Arc::new(OpenCalls::default());
        open.open("T1", 1, ledger.reserve("T1", Spend::default()).unwrap());
        let mut w = spend_watch(
            open,
            StreamParser::new(OutputFormat::ClaudeJson),
            sonnet(),
            "T1".into(),
            1,
        );
        claude_stream()
            .iter()
            .enumerate()
            .find_map(|(i, l)| w(l).map(|v| (i, v)))
    }

    #[test]
    fn claude_stream_json_is_priced_as_it_arrives_and_stopped_before_the_cap() {
        // Message 1: 6,020 input + 200 output tokens = $0.02106; message 2 brings the call
        // to 12,040 + 512 = $0.0438, a step of $0.02274: under a $0.05 cap the next step
        // could pass it, so the call stops at the fifth line.
        let (line, v) = watch_stream(0.05).expect("stopped");
        assert_eq!(line, 4);
        let Violation::BudgetStopped { exceeded } = &v else {
            panic!("{v:?}")
        };
        assert_eq!(
            (exceeded.budget, exceeded.used, exceeded.requested),
            (Budget::Usd, 43_800, 22_740)
        );
        assert!(
            v.to_string()
                .starts_with("stopped at $0.0438 of cap $0.05 (usd budget of the task T1)"),
            "{v}"
        );
        // Under $0.10 it runs to its result, which ends the call and stops nothing (the
        // result's own cost is settled after the call).
        assert_eq!(watch_stream(0.10), None);
        assert_eq!(watch_stream(0.067), None);
    }
}
