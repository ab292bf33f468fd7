//! `lightsout agent check PROFILE`: runs one configured agent on a tiny built-in task inside
//! the run's fence and says, check by check, what works: it starts, it edits the worktree,
//! it reports usage, it finishes within the wall limit, it exits cleanly.
//!
//! The task runs in a detached worktree of the repository's `HEAD` in a temporary
//! directory (so an adapter committed to the repository is there, as in a run), behind a
//! [`Fence`](lightsout_fence::policy::Fence) built from `[fence]` and `[env]` as for a run
//! (holdout hidden, writes outside the worktree detected), with the instruction layer
//! written. The worktree is removed afterwards; the repository's branches are not touched.

use crate::Error;
use lightsout_agent::parse::StreamParser;
use lightsout_agent::{Agent, AgentReport, Budget, Outcome, TaskContext, Workspace};
use lightsout_config::Config;
use lightsout_fence::agent::{FenceReports, FencedAgent};
use lightsout_fence::policy::{Fence, Violation};
use lightsout_git::ops::Git;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

/// The file the built-in task asks for, and its content.
pub const CHECK_FILE: &str = "lightsout-check.txt";

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Works.
    Pass,
    /// Works, with a limit the user should know of (no usage reported).
    Warn,
    /// Does not work: a run with this agent will fail.
    Fail,
    /// Not checked, because an earlier check failed.
    Skipped,
}

/// One check: what was checked, how it came out, and the evidence in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// What is checked (`starts`, `edits the worktree`, ...).
    pub check: &'static str,
    /// How it came out.
    pub status: Status,
    /// What was seen.
    pub detail: String,
}

/// The result of `agent check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentCheck {
    /// The profile checked.
    pub profile: String,
    /// The command line it runs (`program args...`).
    pub command: String,
    /// The wall limit the check ran with, in ms.
    pub wall_ms: u64,
    /// The five checks, in order.
    pub items: Vec<Item>,
}

impl AgentCheck {
    /// Whether no check failed (warnings allowed).
    pub fn passed(&self) -> bool {
        !self.items.iter().any(|i| i.status == Status::Fail)
    }
}

/// The names of the checks, in order.
pub const CHECKS: [&str; 5] = [
    "starts",
    "edits the worktree",
    "reports usage",
    "finishes within the wall limit",
    "exits cleanly",
];

fn item(check: &'static str, status: Status, detail: impl Into<String>) -> Item {
    Item {
        check,
        status,
        detail: detail.into(),
    }
}

/// The built-in task.
fn task() -> TaskContext {
    TaskContext {
        run_id: "agent-check".into(),
        task_id: "CHECK-1".into(),
        title: format!("Create {CHECK_FILE}"),
        kind: "code".into(),
        requirement_ids: vec!["CHECK-1".into()],
        spec_excerpt: format!(
            "### CHECK-1: Create {CHECK_FILE}\nThe repository SHALL contain a file named \
             `{CHECK_FILE}` at its root whose only line is `ok`. Change nothing else."
        ),
        acceptance_criteria: vec![format!(
            "GIVEN the repository WHEN the task is done THEN {CHECK_FILE} holds the line ok"
        )],
        attempt: 1,
        budget: Budget {
            attempts_left: 1,
            ..Budget::default()
        },
        ..TaskContext::default()
    }
}

/// The stdout part of a transcript written by [`CommandAgent::finish`](lightsout_agent::CommandAgent::finish).
fn transcript_stdout(path: &Path) -> String {
    let t = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let body = t.strip_prefix("--- stdout ---\n").unwrap_or(&t);
    body.rsplit_once("\n--- stderr ---\n")
        .map_or(body, |(out, _)| out)
        .to_owned()
}

/// Runs `command` (the command of profile `name` of `config`, with the run's prices) on the
/// built-in task, in a worktree of `repo`'s `HEAD` (an empty repository when `repo` has no
/// commit), with a wall limit of `wall_ms`. (`lightsout_factory::agent_check::check_agent`
/// builds the command from the profile.)
///
/// # Errors
/// [`Error::Fence`] when the fence cannot be built (bubblewrap missing); [`Error::Git`] or
/// [`Error::Io`] when the temporary worktree cannot be made.
pub async fn check_command(
    config: &Config,
    repo: &Path,
    name: &str,
    command: lightsout_agent::CommandAgent,
    wall_ms: u64,
) -> Result<AgentCheck, Error> {
    let mut check = AgentCheck {
        profile: name.to_owned(),
        command: std::iter::once(command.program.as_str())
            .chain(command.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        wall_ms,
        items: Vec::new(),
    };
    let env = config.allowed_env(std::env::vars());
    let Some(found) = lightsout_agent::find_program(&command.program, &env, repo) else {
        check.items.push(item(
            "starts",
            Status::Fail,
            format!(
                "`{}` is not found on the agents' PATH ({}); install it, or set program = \
                 \"/full/path\" in [agent.{name}]",
                command.program,
                env.get("PATH").map_or("unset", String::as_str)
            ),
        ));
        skip_rest(&mut check);
        return Ok(check);
    };

    let tmp = tempfile::Builder::new()
        .prefix("lightsout-agent-check-")
        .tempdir()
        .map_err(|e| Error::io("create", &std::env::temp_dir(), e))?;
    let root = tmp
        .path()
        .canonicalize()
        .map_err(|e| Error::io("resolve", tmp.path(), e))?;
    let wt = root.join("worktree");
    let from_repo = make_worktree(repo, &wt).await?;

    let fence = Arc::new(Fence::new(check_fence_config(
        config, repo, &root, from_repo, wall_ms,
    ))?);
    let reports = Arc::new(FenceReports::default());
    let agent = FencedAgent::new(command, fence, reports.clone());

    let ctx = task();
    let mut ws = Workspace::new(&wt, root.join("artifacts"));
    ws.env = env;
    ws.limits.wall_ms = wall_ms;
    ws.limits.output_bytes = config.limits.output_bytes;
    let layer = crate::instructions::Layer::write(&wt, &ctx.render_instructions())?;
    let ran = agent.run(&ctx, &ws).await;
    if std::fs::symlink_metadata(&wt).is_ok_and(|m| m.is_dir()) {
        layer.remove()?;
    }
    let report = match ran {
        Ok(r) => r,
        Err(e) => {
            check.items.push(item(
                "starts",
                Status::Fail,
                format!("it could not be started: {e}"),
            ));
            skip_rest(&mut check);
            cleanup(repo, &wt, from_repo).await;
            return Ok(check);
        }
    };
    check.items.push(item(
        "starts",
        Status::Pass,
        format!("{} started inside the fence", found.display()),
    ));
    check.items.push(edits_item(&wt).await);
    check.items.push(usage_item(&report, &agent));
    check.items.push(wall_item(&report, wall_ms));
    let violations = failing_violations(&reports, &ctx);
    check.items.push(exit_item(&report, &violations, config));
    cleanup(repo, &wt, from_repo).await;
    Ok(check)
}

/// The check's `[fence]`: the run's, with the wall limit, the temporary `root` (and `repo`
/// when the worktree comes from it) watched, the holdout hidden and the worktree's own git
/// paths not compared.
fn check_fence_config(
    config: &Config,
    repo: &Path,
    root: &Path,
    from_repo: bool,
    wall_ms: u64,
) -> lightsout_fence::policy::FenceConfig {
    let mut fc = config.fence.clone();
    fc.wall_ms = wall_ms;
    if fc.watch.is_empty() {
        fc.watch.push(root.to_path_buf());
        fc.watch.extend(from_repo.then(|| repo.to_path_buf()));
    }
    let holdout = config
        .holdout_dir(std::env::var("LIGHTSOUT_HOLDOUT").ok().as_deref())
        .filter(|h| h.is_dir());
    fc.hide.extend(holdout);
    fc.watch_ignore.extend(
        [".git/worktrees", ".git/index", ".git/*.lock", ".git/logs"]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    fc
}

/// Edits: what git sees changed in the worktree `wt` (the instruction layer is gone by now).
async fn edits_item(wt: &Path) -> Item {
    let status = Git::new(wt)
        .out(&["status", "--porcelain", "--untracked-files=all"])
        .await
        .map(|o| o.stdout)
        .unwrap_or_default();
    let changed: Vec<&str> = status
        .lines()
        .filter_map(|l| l.get(3..))
        .filter(|p| !p.is_empty())
        .collect();
    let did_task = std::fs::read_to_string(wt.join(CHECK_FILE)).is_ok_and(|s| s.trim() == "ok");
    if changed.is_empty() {
        item(
            "edits the worktree",
            Status::Fail,
            "the worktree is unchanged after the call: the agent wrote no file (does its \
             permission mode let it edit without asking?)",
        )
    } else {
        let shown: Vec<&str> = changed.iter().take(5).copied().collect();
        item(
            "edits the worktree",
            Status::Pass,
            format!(
                "{} path(s) changed ({}){}",
                changed.len(),
                shown.join(", "),
                if did_task {
                    format!("; {CHECK_FILE} holds `ok` as asked")
                } else {
                    String::new()
                }
            ),
        )
    }
}

/// Usage: a report line, tokens or a cost in what the agent printed.
fn usage_item(report: &AgentReport, agent: &FencedAgent) -> Item {
    let stdout = report
        .transcript
        .as_deref()
        .map(transcript_stdout)
        .unwrap_or_default();
    let mut parser = StreamParser::new(agent.command().format);
    for line in stdout.lines() {
        parser.line(line);
    }
    let mut seen = parser.spent();
    seen.cost_usd = seen.cost_usd.or_else(|| {
        agent
            .command()
            .prices
            .cost(seen.model.as_deref(), seen.input_tokens, seen.output_tokens)
    });
    let reported = lightsout_agent::contract::ReportLine::last_in(&stdout).is_some()
        || seen.input_tokens + seen.output_tokens > 0
        || seen.cost_usd.is_some();
    if reported {
        item(
            "reports usage",
            Status::Pass,
            format!(
                "{} input + {} output tokens{}",
                seen.input_tokens,
                seen.output_tokens,
                seen.cost_usd.map_or_else(
                    || ", no cost (set [prices])".to_owned(),
                    |c| format!(", ${c:.4}")
                )
            ),
        )
    } else {
        item(
            "reports usage",
            Status::Warn,
            "no usage in its output: token and USD budgets cannot see what it spends (print \
             lightsout.report/v1 lines, docs/agents.md)",
        )
    }
}

/// Whether the call finished within `wall_ms`.
fn wall_item(report: &AgentReport, wall_ms: u64) -> Item {
    if report.outcome == Outcome::TimedOut {
        item(
            "finishes within the wall limit",
            Status::Fail,
            format!("still running after {wall_ms} ms: the fence killed its process group"),
        )
    } else {
        item(
            "finishes within the wall limit",
            Status::Pass,
            format!("done in {} ms of {wall_ms} ms", report.usage.wall_ms),
        )
    }
}

/// The fence's violations for the check's call that fail it (its limits show in the
/// outcome; a refused destination was contained by the refusal itself).
fn failing_violations(reports: &FenceReports, ctx: &TaskContext) -> Vec<String> {
    reports
        .take(&ctx.task_id, ctx.attempt)
        .map(|r| {
            r.violations
                .iter()
                .filter(|v| {
                    !matches!(
                        v,
                        Violation::TimedOut { .. }
                            | Violation::OutputCapped { .. }
                            | Violation::EgressDenied { .. }
                    )
                })
                .map(ToString::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the call exited cleanly: completed, with no failing `violations`.
fn exit_item(report: &AgentReport, violations: &[String], config: &Config) -> Item {
    match (&report.outcome, violations.is_empty()) {
        (Outcome::Completed, true) => item(
            "exits cleanly",
            Status::Pass,
            "exit status 0, nothing left running, nothing written outside the worktree",
        ),
        (Outcome::Failed { message, .. }, _) => item(
            "exits cleanly",
            Status::Fail,
            format!("it reported a failure: {message}"),
        ),
        (Outcome::TimedOut, _) => item(
            "exits cleanly",
            Status::Fail,
            "it was killed at the wall limit",
        ),
        (Outcome::OutputCapped, _) => item(
            "exits cleanly",
            Status::Fail,
            format!(
                "it printed more than {} bytes and was killed",
                config.limits.output_bytes
            ),
        ),
        (_, false) => item(
            "exits cleanly",
            Status::Fail,
            format!("the fence saw: {}", violations.join("; ")),
        ),
        _ => item("exits cleanly", Status::Fail, "it did not complete"),
    }
}

fn skip_rest(check: &mut AgentCheck) {
    for name in &CHECKS[check.items.len()..] {
        check.items.push(item(
            name,
            Status::Skipped,
            "not checked: the agent did not start",
        ));
    }
}

/// A detached worktree of `repo`'s `HEAD` at `wt`; `false` (and an empty repository with one
/// commit) when `repo` has no commit to check out.
async fn make_worktree(repo: &Path, wt: &Path) -> Result<bool, Error> {
    let g = Git::new(repo);
    let has_head = g
        .out(&["rev-parse", "--verify", "-q", "HEAD"])
        .await
        .is_ok_and(|o| o.ok);
    let w = wt.to_string_lossy().into_owned();
    if has_head
        && g.out(&["worktree", "add", "-q", "--detach", &w, "HEAD"])
            .await
            .is_ok_and(|o| o.ok)
    {
        return Ok(true);
    }
    std::fs::create_dir_all(wt).map_err(|e| Error::io("create", wt, e))?;
    let g = Git::new(wt);
    g.run(&["init", "-q", "-b", "main"]).await?;
    std::fs::write(wt.join("README.md"), "# agent check\n")
        .map_err(|e| Error::io("write", &wt.join("README.md"), e))?;
    g.commit_all("agent check").await?;
    Ok(false)
}

async fn cleanup(repo: &Path, wt: &Path, from_repo: bool) {
    if from_repo {
        let w = wt.to_string_lossy().into_owned();
        let g = Git::new(repo);
        let _ = g
            .out(&["worktree", "remove", "--force", "--force", &w])
            .await;
        let _ = g.out(&["worktree", "prune"]).await;
    }
}
