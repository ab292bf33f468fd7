//! `lightsout run`: parses arguments, loads specs and `lightsout.toml`, wires the factory and
//! shows progress. The run loop lives in `lightsout-factory`.

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lightsout_factory::report::{GateOutcome, RunReport};
use lightsout_factory::{
    Config, Event, EventSink, Factory, Planner as _, RunOptions, RunState, SpecPlanner, TaskStatus,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Progress and a summary for people.
    Human,
    /// One JSON summary object on stdout.
    Json,
}

/// `lightsout run [SPEC...] [--resume ID] [--jobs N] [--format human|json]`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Spec files or directories to build (default: `specs/` in the repository).
    #[arg(value_name = "SPEC")]
    specs: Vec<PathBuf>,
    /// Resume run ID after a crash or kill; finished tasks are not redone.
    #[arg(long, value_name = "ID", conflicts_with_all = ["specs", "run_id"])]
    resume: Option<String>,
    /// Agents working at once (default: `[run] jobs` in lightsout.toml).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: Option<u16>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// The configuration file (default: lightsout.toml at the repository root).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Name the run (default: UTC date, time and process id).
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
    /// Build specs that `lightsout spec check` calls not ready; the report then carries a red
    /// banner naming the findings. Without it, a not-ready spec stops the run (exit 1).
    #[arg(long)]
    allow_not_ready: bool,
    /// Measure the holdout's strength on the merged build once every task merged (mutants of
    /// it, each judged by the holdout; `[strength]` in lightsout.toml bounds it). It is measured
    /// anyway when a gate rule has `min_strength` or `[strength] after_run = true`. The figure
    /// and the surviving mutants go to the report only, never to an agent.
    #[arg(long)]
    strength: bool,
    /// Build every task again. Without it, a task whose input key (its requirements' text,
    /// its holdout scenarios' ids, its dependencies' merged commits, its agent profile and the
    /// gate) is unchanged since the run that built it, and whose commit is still on main, is
    /// reported as unchanged and not built.
    #[arg(long, conflicts_with = "resume")]
    rebuild: bool,
}

/// The specs to build, checked as `lightsout spec check` checks them.
struct Loaded {
    specs: Vec<lightsout_spec::Spec>,
    /// One line per error finding (`path:line: LS401 message`) when not ready.
    not_ready: Vec<String>,
    /// The human rendering of the findings, for stderr.
    rendered: String,
}

/// Progress on stderr: an indicatif bar on a terminal, plain lines otherwise.
struct Progress {
    bar: ProgressBar,
}

impl Progress {
    fn new(human: bool) -> Self {
        let bar = if human {
            ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} tasks {msg}",
        ) {
            bar.set_style(style);
        }
        Progress { bar }
    }

    fn line(&self, human: bool, s: &str) {
        if !human {
            return;
        }
        if self.bar.is_hidden() {
            eprintln!("{s}");
        } else {
            self.bar.println(s);
        }
    }
}

struct Sink {
    progress: Progress,
    human: bool,
}

impl EventSink for Sink {
    fn emit(&self, e: &Event) {
        let p = &self.progress;
        match e {
            Event::RunStarted {
                run_id,
                tasks,
                done,
                resumed,
            } => {
                p.bar.set_length(*tasks as u64);
                p.bar.set_position(*done as u64);
                p.line(
                    self.human,
                    &format!(
                        "{} run {run_id} ({tasks} tasks)",
                        if *resumed { "resuming" } else { "starting" }
                    ),
                );
            }
            Event::AttemptStarted {
                task,
                attempt,
                agent,
            } => {
                p.bar.set_message(format!("{task}: attempt {attempt}"));
                p.line(
                    self.human,
                    &format!("  {task}: attempt {attempt} by {agent}"),
                );
            }
            Event::AttemptFinished {
                task,
                attempt,
                passed: false,
                failed_stage,
                ..
            } => p.line(
                self.human,
                &format!(
                    "  {task}: attempt {attempt} failed at {}",
                    failed_stage.as_deref().unwrap_or("?")
                ),
            ),
            Event::TaskUnchanged { task, built_by } => {
                // Already counted in `RunStarted`'s `done`.
                p.line(
                    self.human,
                    &format!("  {task}: unchanged since run {built_by}, its work is on main"),
                );
            }
            Event::TaskPassed { task } => {
                p.line(self.human, &format!("  {task}: passed, queued for merge"));
            }
            Event::Merged { task, commit } => {
                p.bar.inc(1);
                p.line(
                    self.human,
                    &format!(
                        "  {task}: merged, main is at {}",
                        &commit[..commit.len().min(10)]
                    ),
                );
            }
            Event::MergeReverted { task, .. } => p.line(
                self.human,
                &format!(
                    "  {task}: the merged result regressed; main untouched, back to the agent"
                ),
            ),
            Event::ConflictRouted { task, to, files } => p.line(
                self.human,
                &format!(
                    "  {task}: rebase conflict in {}; routed to {to}",
                    files.join(", ")
                ),
            ),
            Event::TaskFailed { task, reason } => {
                p.bar.inc(1);
                let first = reason.lines().next().unwrap_or("");
                p.line(self.human, &format!("  {task}: FAILED: {first}"));
            }
            Event::TaskBlocked { task, by } => {
                p.bar.inc(1);
                p.line(self.human, &format!("  {task}: blocked by {by}"));
            }
            Event::StrengthStarted { commit } => {
                p.bar.set_message("measuring the holdout's strength");
                p.line(
                    self.human,
                    &format!(
                        "  strength: making mutants of main at {} and judging each with the holdout",
                        &commit[..commit.len().min(10)]
                    ),
                );
            }
            Event::StrengthProgress {
                done,
                total,
                killed,
            } => p.bar.set_message(format!(
                "strength: {done}/{total} mutants, {killed} killed"
            )),
            Event::StrengthMeasured {
                killed,
                total,
                kill_rate,
                lower,
                upper,
            } => p.line(
                self.human,
                &format!(
                    "  strength: {killed} of {total} mutants killed ({:.1}%, Wilson 95% [{lower:.3}, \
                     {upper:.3}]); survivors in the report",
                    kill_rate * 100.0
                ),
            ),
            Event::StrengthNotMeasured { reason } => {
                p.line(self.human, &format!("  strength: {reason}"));
            }
            _ => {}
        }
    }
}

fn load_specs(paths: &[PathBuf], repo: &Path) -> anyhow::Result<Loaded> {
    let paths = if paths.is_empty() {
        vec![repo.join("specs")]
    } else {
        paths.to_vec()
    };
    let checked = lightsout_spec::check_paths(
        &paths,
        None,
        false,
        &lightsout_spec::CheckOptions::default(),
    )
    .context("pass spec files or folders that hold them, or put them in specs/")?;
    let report = &checked.report;
    let mut not_ready = Vec::new();
    if !report.summary.ready {
        let all = report
            .files
            .iter()
            .flat_map(|f| &f.diagnostics)
            .chain(&report.project);
        for d in all.filter(|d| d.severity == lightsout_spec::Severity::Error) {
            let path = d.path.as_deref().map_or_else(String::new, |p| {
                format!("{}:{}: ", p.display(), d.span.line)
            });
            not_ready.push(format!("{path}{} {}", d.code, d.message));
        }
    }
    let rendered = if report.summary.ready {
        String::new()
    } else {
        lightsout_spec::render::human_report(report, &|p| checked.sources.get(p).cloned(), false)
    };
    Ok(Loaded {
        specs: checked.specs,
        not_ready,
        rendered,
    })
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: RunArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let repo = lightsout_factory::repo_root(&cwd).await?;
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| repo.join("lightsout.toml"));
    let config = Config::load(&config_path)?;
    let human = args.format == Format::Human;
    let sink = Arc::new(Sink {
        progress: Progress::new(human),
        human,
    });
    let factory = Factory::new(&repo, config)?.with_events(sink.clone());
    let jobs = args.jobs.map(usize::from);
    let state = if let Some(id) = &args.resume {
        factory.resume(id, jobs).await?
    } else {
        let loaded = load_specs(&args.specs, &repo)?;
        if !loaded.not_ready.is_empty() {
            eprint!("{}", loaded.rendered);
            if !args.allow_not_ready {
                eprintln!(
                    "error: {} spec finding(s) make the specs not ready; fix them (see \
                     `lightsout spec check`) or build anyway with --allow-not-ready",
                    loaded.not_ready.len()
                );
                return Ok(ExitCode::from(1));
            }
            eprintln!(
                "warning: building specs that are not ready (--allow-not-ready); the report says so"
            );
        }
        let specs = loaded.specs;
        let gate = specs
            .iter()
            .filter(|s| !s.gate.is_empty())
            .map(|s| {
                let path = s.path.as_deref().map_or_else(
                    || s.meta.id.clone(),
                    |p| p.strip_prefix(&repo).unwrap_or(p).display().to_string(),
                );
                let mut policy = lightsout_eval::GatePolicy::from_spec_rules(&s.gate);
                for (rule, src) in policy.rules.iter_mut().zip(&s.gate) {
                    rule.source = Some(format!("spec {path}:{}", src.span.line));
                }
                lightsout_eval::PolicyLayer::new(format!("spec {path}"), policy)
            })
            .collect();
        let plan = SpecPlanner.plan(&specs)?;
        let paths: Vec<PathBuf> = specs.iter().filter_map(|s| s.path.clone()).collect();
        factory
            .import_spec_decisions(&paths)
            .context("importing the specs' decisions into .lightsout/memory.db")?;
        factory
            .run(
                plan,
                RunOptions {
                    run_id: args.run_id.clone(),
                    jobs,
                    gate,
                    not_ready: loaded.not_ready,
                    strength: args.strength,
                    rebuild: args.rebuild,
                },
            )
            .await?
    };
    sink.progress.bar.finish_and_clear();
    let (outcome, _json, html) = super::report::write(&repo, &state.run_id).with_context(|| {
        format!(
            "the run finished but its report could not be written; retry with `lightsout report {}`",
            state.run_id
        )
    })?;
    print_summary(&state, &outcome, &html, args.format)?;
    let t = state.totals();
    Ok(
        if t.merged + t.unchanged == t.tasks
            && !matches!(
                outcome.gate.outcome,
                GateOutcome::Fail | GateOutcome::InsufficientEvidence
            )
        {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}

fn print_summary(
    state: &RunState,
    outcome: &RunReport,
    report: &Path,
    format: Format,
) -> anyhow::Result<()> {
    let t = state.totals();
    // A holdout leak is never a quiet line in a table: it goes to stderr in every format.
    for s in &state.tasks {
        for a in s
            .attempts
            .iter()
            .filter(|a| a.failed_stage.as_deref() == Some("leak"))
        {
            eprintln!(
                "error: HOLDOUT LEAK in task {} (attempt {}): {}",
                s.task.id,
                a.attempt,
                a.feedback
                    .as_deref()
                    .unwrap_or("holdout text crossed the fence")
            );
        }
    }
    let replay = state
        .tasks
        .iter()
        .flat_map(|s| &s.attempts)
        .any(|a| a.replay);
    if format == Format::Json {
        let tasks: Vec<_> = state
            .tasks
            .iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.task.id,
                    "status": s.status,
                    "attempts": s.attempts.len(),
                    "agent": s.attempts.last().map(|a| a.agent.clone()),
                    "cost_usd": s.cost_usd(),
                    "tokens": s.tokens(),
                    "merge_commit": s.merge_commit,
                    "unchanged_since": s.unchanged,
                    "failure": s.failure,
                })
            })
            .collect();
        let out = serde_json::json!({
            "run_id": state.run_id,
            "replay": replay,
            "main": state.main,
            "main_head": state.main_head,
            "totals": t,
            "tasks": tasks,
            "gate": outcome.gate,
            "report": report,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "run {}: {} of {} tasks merged, {} unchanged, {} failed, {} blocked; {} attempts, {} tokens, ${:.4}{}",
        state.run_id,
        t.merged,
        t.tasks,
        t.unchanged,
        t.failed,
        t.blocked,
        t.attempts,
        t.tokens,
        t.cost_usd,
        if replay {
            " (agent: a REPLAY of a recorded trajectory, not a live agent)"
        } else {
            ""
        }
    );
    for s in &state.tasks {
        let status = match s.status {
            TaskStatus::Merged if s.unchanged.is_some() => "unchanged",
            TaskStatus::Merged => "merged",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Blocked => "blocked",
            TaskStatus::Rerouted => "rerouted",
            _ => "unfinished",
        };
        println!(
            "  {:<20} {:<10} {} attempt(s) {:<22} {}",
            s.task.id,
            status,
            s.attempts.len(),
            s.attempts.last().map_or("-", |a| a.agent.as_str()),
            s.merge_commit
                .as_deref()
                .map_or_else(
                    || s.failure.clone().unwrap_or_default(),
                    |c| c[..c.len().min(10)].to_owned()
                )
                .lines()
                .next()
                .unwrap_or("")
        );
    }
    println!(
        "{} is at {}",
        state.main,
        &state.main_head[..state.main_head.len().min(10)],
    );
    println!("{}", super::report::gate_line(outcome));
    println!("report: {}", report.display());
    if t.unfinished > 0 {
        println!("resume with: lightsout run --resume {}", state.run_id);
    }
    Ok(())
}
