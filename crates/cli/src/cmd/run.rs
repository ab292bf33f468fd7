//! `lightsout run`: parses arguments, loads specs and `lightsout.toml`, wires the factory and
//! shows progress. The run loop lives in `lightsout-factory`; `run --queue` builds the spec
//! queue of `lightsout queue` one entry after another.

use super::progress::{Mode, Progress};
use anyhow::Context as _;
use clap::{Args, ValueEnum};
use lightsout_factory::queue::{QueueChange, QueueEntry, QueueStatus, QueueStore, SqliteQueue};
use lightsout_factory::report::{GateOutcome, RunReport};
use lightsout_factory::{
    Config, Factory, Planner as _, RunOptions, RunState, SpecPlanner, TaskPhase,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Progress and a summary for people.
    Human,
    /// One JSON summary object on stdout.
    Json,
}

/// `lightsout run [SPEC...] [--resume [ID]] [--queue] [--jobs N] [--quiet] [--format human|json]`.
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // command-line switches are bools by nature
pub(crate) struct RunArgs {
    /// Spec files or directories to build (default: `specs/` in the repository).
    #[arg(value_name = "SPEC")]
    specs: Vec<PathBuf>,
    /// Resume a run after a crash or kill; finished tasks are not redone. Without ID: the
    /// latest run, or with --queue the queue entry whose run was interrupted.
    #[arg(long, value_name = "ID", num_args = 0..=1, conflicts_with_all = ["specs", "run_id"])]
    #[allow(clippy::option_option)] // clap's shape for a flag with an optional value
    resume: Option<Option<String>>,
    /// Build the specs of `lightsout queue` one after another, each in a run of its own with
    /// its own report. Stops between specs on `lightsout queue stop` or Ctrl-C (which lets the
    /// current spec finish; a second Ctrl-C stops at once, and `--queue --resume` goes on).
    #[arg(long, conflicts_with_all = ["specs", "run_id"])]
    queue: bool,
    /// Agents working at once (default: `[run] jobs` in lightsout.toml).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: Option<u16>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// No progress on stderr (for CI): only the summary, warnings and errors.
    #[arg(long, short = 'q')]
    quiet: bool,
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
    /// Plan the specs for a fleet instead of building them here: push the plan to the remote
    /// (--repo) and enqueue its tasks in this claim store (`postgres://user@host:port/db`, or
    /// a `SQLite` file), then exit. `lightsout worker --store … --repo …` builds them; a task
    /// is claimable once its dependencies are merged on the remote's main. Default: `[store]
    /// url` of lightsout.toml, when set.
    #[arg(long, value_name = "URL|FILE", conflicts_with_all = ["resume", "queue", "strength", "rebuild"])]
    store: Option<String>,
    /// With --store (or `[store] url`): the remote the workers clone, as a remote name of this
    /// repository, a path or an `https://` URL. Default: `origin`.
    #[arg(long, value_name = "REMOTE")]
    repo: Option<String>,
}

impl RunArgs {
    /// The claim store the run plans for: `--store`, else `[store] url` of `config`; `None`
    /// to build here. A `[store] url` with a flag that builds here (`--resume`, `--queue`,
    /// `--strength`, `--rebuild`) is an error, as it is with `--store`.
    fn fleet_store(&self, config: &Config) -> anyhow::Result<Option<String>> {
        if let Some(s) = &self.store {
            return Ok(Some(s.clone()));
        }
        let Some(url) = config.store_url() else {
            anyhow::ensure!(
                self.repo.is_none(),
                "--repo names the fleet's remote: it needs --store, or [store] url in \
                 lightsout.toml"
            );
            return Ok(None);
        };
        let local = [
            ("--resume", self.resume.is_some()),
            ("--queue", self.queue),
            ("--strength", self.strength),
            ("--rebuild", self.rebuild),
        ];
        if let Some((flag, _)) = local.iter().find(|(_, on)| *on) {
            anyhow::bail!(
                "{flag} builds on this machine, but lightsout.toml's [store] url sends runs to \
                 the fleet ({}); remove [store] url (or use another --config) to build here",
                without_password(&url)
            );
        }
        Ok(Some(url))
    }
}

/// The specs to build, checked as `lightsout spec check` checks them.
struct Loaded {
    specs: Vec<lightsout_spec::Spec>,
    /// One line per error finding (`path:line: LS401 message`) when not ready.
    not_ready: Vec<String>,
    /// The human rendering of the findings, for stderr.
    rendered: String,
}

/// The requirement ids the holdout's scenarios satisfy (ids only: no scenario text reaches the
/// spec stage), which turns on LS103 (a requirement without a holdout scenario). `None` when
/// the holdout has no scenario files to read (a runner command's own checks): unknown, so
/// LS103 stays off.
fn holdout_coverage(config: &Config) -> Option<BTreeSet<String>> {
    let env = std::env::var("LIGHTSOUT_HOLDOUT").ok();
    let dir = config.holdout_dir(env.as_deref())?;
    // An unreadable holdout is the factory's to report, with its reasons, when the run starts.
    let coverage = lightsout_eval::HoldoutCoverage::of_dir(&dir).ok()??;
    Some(coverage.requirements())
}

fn load_specs(
    paths: &[PathBuf],
    repo: &Path,
    holdout: Option<BTreeSet<String>>,
) -> anyhow::Result<Loaded> {
    let paths = if paths.is_empty() {
        vec![repo.join("specs")]
    } else {
        paths.to_vec()
    };
    let checked = lightsout_spec::check_paths(
        &paths,
        None,
        false,
        &lightsout_spec::CheckOptions {
            holdout,
            ..lightsout_spec::CheckOptions::default()
        },
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

/// What building one set of specs ended with.
enum Built {
    /// The specs were not ready and `--allow-not-ready` was not given (the findings were
    /// printed); holds their number.
    NotReady(usize),
    /// The run ended.
    Ran(Box<RunState>),
}

async fn run_async(args: RunArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let repo = lightsout_factory::repo_root(&cwd).await?;
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| repo.join("lightsout.toml"));
    let config = Config::load(&config_path)?;
    let mode = Mode::pick(args.format == Format::Human, args.quiet);
    if let Some(store) = args.fleet_store(&config)? {
        return enqueue_fleet(&args, &repo, &config, &store);
    }
    if args.queue {
        return run_queue(&args, &repo, &config, mode).await;
    }
    let progress = Arc::new(Progress::new(mode, repo.clone(), config.run.attempts));
    let factory = Factory::new(&repo, config.clone())?.with_events(progress.clone());
    let built = match &args.resume {
        Some(id) => {
            let id = match id {
                Some(id) => id.clone(),
                None => lightsout_factory::latest_run(&repo)?
                    .context("no run to resume in .lightsout/runs")?,
            };
            Built::Ran(Box::new(
                factory.resume(&id, args.jobs.map(usize::from)).await?,
            ))
        }
        None => {
            build(
                &factory,
                &config,
                &repo,
                &args.specs,
                &args,
                args.run_id.clone(),
            )
            .await?
        }
    };
    progress.finish();
    let Built::Ran(state) = built else {
        return Ok(ExitCode::from(1));
    };
    let done = conclude(&repo, &state, args.format)?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&done.json)?);
    }
    Ok(if done.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Checks, plans and runs `paths` (default `specs/`) as run `run_id`.
async fn build(
    factory: &Factory,
    config: &Config,
    repo: &Path,
    paths: &[PathBuf],
    args: &RunArgs,
    run_id: Option<String>,
) -> anyhow::Result<Built> {
    let loaded = load_specs(paths, repo, holdout_coverage(config))?;
    if refuse_not_ready(&loaded, args.allow_not_ready) {
        return Ok(Built::NotReady(loaded.not_ready.len()));
    }
    let specs = loaded.specs;
    let gate = spec_gates(&specs, repo);
    let plan = SpecPlanner.plan(&specs)?;
    let paths: Vec<PathBuf> = specs.iter().filter_map(|s| s.path.clone()).collect();
    factory
        .import_spec_decisions(&paths)
        .context("importing the specs' decisions into .lightsout/memory.db")?;
    let state = factory
        .run(
            plan,
            RunOptions {
                run_id,
                jobs: args.jobs.map(usize::from),
                gate,
                not_ready: loaded.not_ready,
                strength: args.strength,
                rebuild: args.rebuild,
                ..RunOptions::default()
            },
        )
        .await?;
    Ok(Built::Ran(Box::new(state)))
}

/// Prints the findings of specs that are not ready; `true` when they stop the run (no
/// `--allow-not-ready`).
fn refuse_not_ready(loaded: &Loaded, allow: bool) -> bool {
    if loaded.not_ready.is_empty() {
        return false;
    }
    eprint!("{}", loaded.rendered);
    if !allow {
        eprintln!(
            "error: {} spec finding(s) make the specs not ready; fix them (see \
             `lightsout spec check`) or build anyway with --allow-not-ready",
            loaded.not_ready.len()
        );
        return true;
    }
    eprintln!("warning: building specs that are not ready (--allow-not-ready); the report says so");
    false
}

/// `lightsout run --store`: plans the specs, pushes the plan to the remote and enqueues the
/// tasks without dependencies in the claim store; the workers do the rest.
fn enqueue_fleet(
    args: &RunArgs,
    repo: &Path,
    config: &Config,
    store: &str,
) -> anyhow::Result<ExitCode> {
    use lightsout_factory::fleet::{self, FleetPlan, GateLayer};
    let loaded = load_specs(&args.specs, repo, holdout_coverage(config))?;
    if refuse_not_ready(&loaded, args.allow_not_ready) {
        return Ok(ExitCode::from(1));
    }
    let gate = spec_gates(&loaded.specs, repo);
    let plan = SpecPlanner.plan(&loaded.specs)?;
    lightsout_factory::PlanCheck::validate(&plan)?;
    let run = args.run_id.clone().unwrap_or_else(fleet::new_run_id);
    anyhow::ensure!(
        lightsout_factory::plan::valid_task_id(&run),
        "run id `{run}` is not usable in a ref name"
    );
    let shared = FleetPlan {
        schema: fleet::PLAN_SCHEMA.to_owned(),
        run: run.clone(),
        gate: gate
            .into_iter()
            .map(|l| GateLayer {
                source: l.source,
                policy: l.policy,
            })
            .collect(),
        not_ready: loaded.not_ready,
        plan,
    };
    let ready = fleet::ready_tasks(&shared.plan, &std::collections::BTreeMap::new());
    // The plan first: a worker that finds the tasks can always read it.
    let to = args.repo.as_deref().unwrap_or("origin");
    fleet::publish_plan(repo, to, &shared).with_context(|| format!("pushing the plan to {to}"))?;
    let claims = super::worker::open(store, 1)?;
    let added = claims.enqueue(&run, &ready)?;
    let remote = fleet::remote_url(repo, to);
    if args.format == Format::Json {
        let out = serde_json::json!({
            "run_id": run,
            "tasks": shared.plan.tasks.len(),
            "enqueued": ready,
            "plan_ref": fleet::plan_ref(&run),
            "remote": remote,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "run {run}: {} task(s) planned, {added} ready and enqueued; plan pushed to {remote} \
             ({})",
            shared.plan.tasks.len(),
            fleet::plan_ref(&run)
        );
        println!(
            "build it with workers, each on a machine of its own or side by side:\n  lightsout \
             worker --store {} --repo {remote} --holdout <HOLDOUT DIR> --jobs <N>\nwatch it with: \
             lightsout worker status --store {} {run}",
            without_password(store),
            without_password(store)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `store` with the password of a `postgres://user:password@…` URL hidden.
fn without_password(store: &str) -> String {
    let Some((scheme, rest)) = store.split_once("://") else {
        return store.to_owned();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split_once(':').map_or(user, |(n, _)| n);
            format!("{scheme}://{name}:***@{host}")
        }
        _ => store.to_owned(),
    }
}

/// The gate rules of the specs, one policy layer per spec naming its file.
fn spec_gates(specs: &[lightsout_spec::Spec], repo: &Path) -> Vec<lightsout_eval::PolicyLayer> {
    specs
        .iter()
        .filter(|s| !s.gate.is_empty())
        .map(|s| {
            let path = s.path.as_deref().map_or_else(
                || s.meta.id.clone(),
                |p| p.strip_prefix(repo).unwrap_or(p).display().to_string(),
            );
            let mut policy = lightsout_eval::GatePolicy::from_spec_rules(&s.gate);
            for (rule, src) in policy.rules.iter_mut().zip(&s.gate) {
                rule.source = Some(format!("spec {path}:{}", src.span.line));
            }
            lightsout_eval::PolicyLayer::new(format!("spec {path}"), policy)
        })
        .collect()
}

/// A run's end: its report written, the summary for people printed (unless JSON), and the
/// summary object for programs.
struct Concluded {
    json: serde_json::Value,
    /// Every task merged and the gate neither failed nor lacked evidence.
    passed: bool,
    /// The gate line, first line only.
    verdict: String,
}

fn conclude(repo: &Path, state: &RunState, format: Format) -> anyhow::Result<Concluded> {
    let (outcome, _json, html) = super::report::write(repo, &state.run_id).with_context(|| {
        format!(
            "the run finished but its report could not be written; retry with `lightsout report {}`",
            state.run_id
        )
    })?;
    warn_leaks(state);
    if format == Format::Human {
        print_human(state, &outcome, &html);
    }
    let t = state.totals();
    Ok(Concluded {
        json: summary_json(state, &outcome, &html),
        passed: t.merged + t.unchanged == t.tasks
            && !matches!(
                outcome.gate.outcome,
                GateOutcome::Fail | GateOutcome::InsufficientEvidence
            ),
        verdict: super::report::gate_line(&outcome)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned(),
    })
}

/// A holdout leak is never a quiet line in a table: it goes to stderr in every format.
fn warn_leaks(state: &RunState) {
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
}

fn uses_replay(state: &RunState) -> bool {
    state
        .tasks
        .iter()
        .flat_map(|s| &s.attempts)
        .any(|a| a.replay)
}

fn summary_json(state: &RunState, outcome: &RunReport, report: &Path) -> serde_json::Value {
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
    serde_json::json!({
        "run_id": state.run_id,
        "replay": uses_replay(state),
        "main": state.main,
        "main_head": state.main_head,
        "totals": state.totals(),
        "tasks": tasks,
        "gate": outcome.gate,
        "report": report,
    })
}

fn print_human(state: &RunState, outcome: &RunReport, report: &Path) {
    let t = state.totals();
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
        if uses_replay(state) {
            " (agent: a REPLAY of a recorded trajectory, not a live agent)"
        } else {
            ""
        }
    );
    for s in &state.tasks {
        let status = match s.status {
            TaskPhase::Merged if s.unchanged.is_some() => "unchanged",
            TaskPhase::Merged => "merged",
            TaskPhase::Failed => "FAILED",
            TaskPhase::Blocked => "blocked",
            TaskPhase::Rerouted => "rerouted",
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
}

/// `lightsout run --queue`: builds the queued specs one after another until the queue is
/// empty or a stop is asked for (`lightsout queue stop`, Ctrl-C) between two specs.
async fn run_queue(
    args: &RunArgs,
    repo: &Path,
    config: &Config,
    mode: Mode,
) -> anyhow::Result<ExitCode> {
    if let Some(Some(id)) = &args.resume {
        anyhow::bail!(
            "with --queue, --resume takes no run id (the queue knows it); use `lightsout run --resume {id}` for one run"
        );
    }
    let store = SqliteQueue::in_repo(repo)?;
    let Some(_runner) = lightsout_factory::queue::runner_lock(repo)? else {
        anyhow::bail!("another `lightsout run --queue` is building this repository's queue");
    };
    // A stop asked for while no runner was active is stale.
    store.apply(&QueueChange::Stop(false))?;
    let stop = Arc::new(AtomicBool::new(false));
    watch_ctrl_c(stop.clone());
    let mut results = Vec::new();
    let mut passed_all = true;
    let mut stopped = false;
    while let Some(entry) = store.next()? {
        if !results.is_empty() && (stop.load(Ordering::SeqCst) || store.stop_requested()?) {
            store.apply(&QueueChange::Stop(false))?;
            stopped = true;
            break;
        }
        let (status, detail, json) = build_entry(args, repo, config, mode, &store, &entry).await?;
        passed_all &= status == QueueStatus::Passed;
        store.apply(&QueueChange::Finish {
            id: entry.id,
            status,
            detail: detail.clone(),
        })?;
        results.push(serde_json::json!({
            "entry": entry.id,
            "spec": entry.spec,
            "status": status,
            "detail": detail,
            "run": json,
        }));
    }
    let left = store
        .entries()?
        .iter()
        .filter(|e| e.status == QueueStatus::Queued)
        .count();
    if args.format == Format::Json {
        let out = serde_json::json!({ "built": results, "stopped": stopped, "queued": left });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "queue: {} spec(s) built, {} still queued{}",
            results.len(),
            left,
            if stopped {
                "; stopped between specs (`lightsout run --queue` goes on)"
            } else {
                ""
            }
        );
    }
    Ok(if passed_all {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The first Ctrl-C asks the queue to stop after the current spec; the second exits at once
/// (as a kill would: `lightsout run --queue --resume` goes on from the journal).
fn watch_ctrl_c(stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.store(true, Ordering::SeqCst);
            eprintln!(
                "stopping after the current spec; Ctrl-C again stops now (then `lightsout run \
                 --queue --resume`)"
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}

/// Builds one queue entry in a run of its own (resuming the run a killed runner left);
/// returns its status, its one-line outcome and its run summary (`null` when it did not run).
async fn build_entry(
    args: &RunArgs,
    repo: &Path,
    config: &Config,
    mode: Mode,
    store: &SqliteQueue,
    entry: &QueueEntry,
) -> anyhow::Result<(QueueStatus, String, serde_json::Value)> {
    let run_id = match (&entry.run_id, entry.status) {
        (Some(id), QueueStatus::Running) => {
            if args.resume.is_none() {
                anyhow::bail!(
                    "queue entry {} ({}) was interrupted in run {id}; go on with `lightsout run \
                     --queue --resume`, or drop it with `lightsout queue remove {}`",
                    entry.id,
                    entry.spec,
                    entry.id
                );
            }
            id.clone()
        }
        _ => lightsout_factory::queue::run_id_for(entry.id),
    };
    store
        .apply(&QueueChange::Start {
            id: entry.id,
            run_id: run_id.clone(),
        })?
        .with_context(|| format!("queue entry {} changed while starting it", entry.id))?;
    if mode != Mode::Quiet {
        eprintln!("queue entry {}: {} (run {run_id})", entry.id, entry.spec);
    }
    let progress = Arc::new(Progress::new(mode, repo.to_owned(), config.run.attempts));
    let factory = Factory::new(repo, config.clone())?.with_events(progress.clone());
    let journal = lightsout_factory::run_dir(repo, &run_id).join("journal.jsonl");
    let started = std::fs::read_to_string(&journal).is_ok_and(|j| j.contains('\n'));
    let built = if started {
        factory
            .resume(&run_id, args.jobs.map(usize::from))
            .await
            .map(|s| Built::Ran(Box::new(s)))
            .map_err(anyhow::Error::from)
    } else {
        build(
            &factory,
            config,
            repo,
            &[repo.join(&entry.spec)],
            args,
            Some(run_id),
        )
        .await
    };
    progress.finish();
    match built {
        Err(e) => {
            let detail = format!("{e:#}");
            store.apply(&QueueChange::Finish {
                id: entry.id,
                status: QueueStatus::Error,
                detail: detail.clone(),
            })?;
            Err(e.context(format!("queue entry {} ({})", entry.id, entry.spec)))
        }
        Ok(Built::NotReady(n)) => Ok((
            QueueStatus::Failed,
            format!(
                "not ready: {n} spec finding(s); see `lightsout spec check {}`",
                entry.spec
            ),
            serde_json::Value::Null,
        )),
        Ok(Built::Ran(state)) => {
            let done = conclude(repo, &state, args.format)?;
            let status = if done.passed {
                QueueStatus::Passed
            } else {
                QueueStatus::Failed
            };
            Ok((status, done.verdict, done.json))
        }
    }
}
