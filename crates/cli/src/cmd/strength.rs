//! `lightsout strength`: how many mutants of a passing build the holdout kills. Wiring only;
//! the engine is `lightsout_eval::strength`.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use lightsout_eval::strength::{Judge, StrengthProgressFn, read_equivalents};
use lightsout_eval::{
    CommandTarget, MutationTool, RunOptions, Runner, StepLibrary, StrengthConfig, StrengthOptions,
    StrengthProgress, Suite,
};
use lightsout_factory::Config;
use lightsout_spec::Severity;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Output format on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// The figures and a table of the survivors.
    Human,
    /// The strength report document.
    Json,
}

/// Measure the holdout's strength: mutants of a passing build, each judged by the holdout.
///
/// The holdout runs either through its runner command (`--holdout-command`, or `[holdout]
/// command` in lightsout.toml: it gets `LIGHTSOUT_WORKTREE` and prints per-requirement JSON) or
/// with the eval engine (`--target`, or `[target]`, against the scenarios in `--scenarios` or
/// the holdout directory). The survivors name what the holdout does not check: they are for
/// the people who own it, never for an agent.
///
/// Exit codes: 0 measured (and at least --min-kill-rate), 1 below --min-kill-rate,
/// 2 usage, tool or infrastructure error (the holdout failing the unmutated build included).
#[derive(Debug, Args)]
pub(crate) struct StrengthArgs {
    /// The project: a passing build (only read; every mutant runs in its own temporary copy).
    #[arg(default_value = ".", value_name = "DIR")]
    project: PathBuf,
    /// lightsout.toml for `[holdout]`, `[target]` and `[strength]` (default: DIR/lightsout.toml
    /// when it exists).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The holdout directory (default: `[holdout] path`, or `LIGHTSOUT_HOLDOUT`).
    #[arg(long, value_name = "DIR")]
    holdout: Option<PathBuf>,
    /// The holdout's runner command, run in the holdout directory (default: `[holdout]
    /// command`).
    #[arg(long, value_name = "CMD", conflicts_with = "target")]
    holdout_command: Option<String>,
    /// Scenarios for the eval engine (default: the holdout directory).
    #[arg(long, value_name = "DIR")]
    scenarios: Option<PathBuf>,
    /// Command that starts the service in the mutant's directory; `{port}` becomes a free
    /// loopback port (default: `[target] command`).
    #[arg(long, value_name = "CMD")]
    target: Option<String>,
    /// Path probed with GET until the target answers below 500.
    #[arg(long, value_name = "PATH")]
    ready_path: Option<String>,
    /// Seconds to wait for the target to become ready.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    ready_timeout: u64,
    /// A twin: NAME=URL (repeatable); reset before every trial.
    #[arg(long = "twin", value_name = "NAME=URL")]
    twins: Vec<String>,
    /// Mutation tool (default: `[strength] tool`, else detected from the project's files).
    #[arg(long, value_enum)]
    tool: Option<ToolArg>,
    /// Trials per scenario per mutant (default 1: one failure kills).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=20))]
    trials: Option<u32>,
    /// Judge at most N mutants, a seeded sample (default: all, or `[strength] max_mutants`).
    #[arg(long, value_name = "N")]
    max_mutants: Option<usize>,
    /// Seed of the sample (default 1).
    #[arg(long, value_name = "SEED")]
    seed: Option<u64>,
    /// Mutants judged at once (default 1; more can kill mutants by load alone on a small
    /// machine when the holdout checks latency).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Seconds before a mutant's holdout run is stopped and counted as killed (timeout)
    /// (default: four times the unmutated build's run, at least 30).
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Equivalent mutants to leave out, each with its reason (default:
    /// HOLDOUT/equivalent-mutants.toml when it exists).
    #[arg(long, value_name = "FILE")]
    equivalents: Option<PathBuf>,
    /// Mutate only this file or folder, relative to DIR (repeatable; default: every source file
    /// the tool finds, tests excluded).
    #[arg(long = "path", value_name = "PATH")]
    paths: Vec<String>,
    /// Exit 1 when the kill rate is below this fraction (0 to 1).
    #[arg(long, value_name = "RATE")]
    min_kill_rate: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Also write the JSON report here.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Add the figure to the outcome report of a run: RUN is a run id (under
    /// .lightsout/runs/ of the repository holding DIR) or a run directory. The strength report
    /// goes to RUN/eval/strength.json (hidden from agents), report.json and report.html are
    /// written again, and the gate's `min_strength` rules are judged on it when DIR is the
    /// run's merged main, committed (any other build is insufficient evidence).
    #[arg(long, value_name = "RUN")]
    report: Option<String>,
}

/// The mutation tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ToolArg {
    /// Python (`pip install cosmic-ray`).
    CosmicRay,
    /// Rust (`cargo install cargo-mutants`); wired, not yet exercised by the tests.
    CargoMutants,
}

fn load_config(args: &StrengthArgs) -> anyhow::Result<Option<Config>> {
    let path = if let Some(p) = &args.config {
        p.clone()
    } else {
        let p = args.project.join("lightsout.toml");
        if !p.is_file() {
            return Ok(None);
        }
        p
    };
    Ok(Some(Config::load(&path)?))
}

fn strength_section(config: Option<&Config>) -> anyhow::Result<StrengthConfig> {
    let Some(raw) = config.and_then(|c| c.strength.as_ref()) else {
        return Ok(StrengthConfig::default());
    };
    raw.clone()
        .try_into()
        .context("[strength] in lightsout.toml: expected tool, max_mutants, seed, trials, jobs, timeout_s, min_kill_rate, paths, after_run")
}

fn twins(args: &[String]) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for t in args {
        let Some((name, url)) = t.split_once('=') else {
            bail!("--twin `{t}` is not NAME=URL");
        };
        out.insert(
            name.trim().to_owned(),
            url.trim().trim_end_matches('/').to_owned(),
        );
    }
    Ok(out)
}

fn suite_judge(
    args: &StrengthArgs,
    config: Option<&Config>,
    holdout: Option<&Path>,
    command: String,
) -> anyhow::Result<Judge> {
    let Some(dir) = args.scenarios.as_deref().or(holdout) else {
        bail!("pass --scenarios DIR (or --holdout DIR) with --target");
    };
    let library = StepLibrary::builtin();
    let (suite, diags) = Suite::load_dir(dir, &library)
        .with_context(|| format!("reading scenarios from {}", dir.display()))?;
    let errors: Vec<String> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{} [{}] line {}", d.message, d.code, d.span.line))
        .collect();
    if !errors.is_empty() {
        bail!(
            "{} problem(s) in the scenarios in {}: {}; run `lightsout eval` for details",
            errors.len(),
            dir.display(),
            errors.join("; ")
        );
    }
    if suite.scenarios.is_empty() {
        bail!("no scenarios found in {}", dir.display());
    }
    let section = config.and_then(|c| c.target.as_ref());
    let mut target = CommandTarget::new(command);
    target.ready_path = args
        .ready_path
        .clone()
        .or_else(|| section.map(|t| t.ready_path.clone()))
        .unwrap_or_else(|| "/".to_owned());
    target.ready_timeout = section.map_or(Duration::from_secs(args.ready_timeout), |t| {
        Duration::from_millis(t.ready_timeout_ms)
    });
    let opts = RunOptions {
        twins: twins(&args.twins)?,
        ..RunOptions::default()
    };
    Ok(Judge::Suite {
        runner: Arc::new(Runner::new(library)?),
        suite: Arc::new(suite),
        target,
        opts,
        wrap: None,
    })
}

fn judge(
    args: &StrengthArgs,
    config: Option<&Config>,
    holdout: Option<&Path>,
) -> anyhow::Result<Judge> {
    let target = args
        .target
        .clone()
        .or_else(|| config.and_then(|c| c.target.as_ref().map(|t| t.command.clone())));
    let runner = args
        .holdout_command
        .clone()
        .or_else(|| config.and_then(|c| c.holdout.command.clone()));
    match (runner, target) {
        (Some(command), _) if args.target.is_none() => {
            let Some(dir) = holdout else {
                bail!("the holdout runner needs its directory: pass --holdout DIR");
            };
            let bin = std::env::current_exe().context("locating the lightsout binary")?;
            let env = if std::env::var_os("LIGHTSOUT_BIN").is_some() {
                Vec::new()
            } else {
                vec![(
                    "LIGHTSOUT_BIN".to_owned(),
                    bin.to_string_lossy().into_owned(),
                )]
            };
            Ok(Judge::Command {
                command,
                dir: dir.to_path_buf(),
                env,
                clear_env: false,
                prefix: Vec::new(),
            })
        }
        (_, Some(target)) => suite_judge(args, config, holdout, target),
        (_, None) => bail!(
            "no way to run the holdout: pass --holdout-command CMD with --holdout DIR, or --target \
             CMD with --scenarios DIR (or set [holdout] command or [target] in lightsout.toml)"
        ),
    }
}

/// The repository, run id and run directory of `--report RUN`: a run directory
/// (`<repo>/.lightsout/runs/<id>`), or a run id under the repository holding `project`.
async fn run_dir(project: &Path, run: &str) -> anyhow::Result<(PathBuf, String, PathBuf)> {
    let as_dir = Path::new(run);
    if as_dir.join("journal.jsonl").is_file() {
        let dir = as_dir
            .canonicalize()
            .with_context(|| format!("resolving {run}"))?;
        let id = dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .with_context(|| format!("{run} names no run"))?;
        let runs = dir.parent().filter(|p| p.ends_with(".lightsout/runs"));
        let Some(repo) = runs.and_then(Path::parent).and_then(Path::parent) else {
            bail!("{run} is not a run directory (<repo>/.lightsout/runs/<id>)");
        };
        return Ok((repo.to_path_buf(), id, dir));
    }
    let repo = lightsout_factory::repo_root(project).await?;
    let dir = lightsout_factory::run_dir(&repo, run);
    if run.contains(['/', '\\']) || !dir.join("journal.jsonl").is_file() {
        bail!(
            "no run `{run}` in {}: pass a run id (see .lightsout/runs/) or a run directory",
            repo.display()
        );
    }
    Ok((repo, run.to_owned(), dir))
}

fn progress() -> StrengthProgressFn {
    Arc::new(|p: &StrengthProgress| match p {
        StrengthProgress::Started {
            total,
            generated,
            equivalent,
            baseline_ms,
        } => eprintln!(
            "strength: the holdout passes the unmutated build ({:.1} s); judging {total} of \
             {generated} mutants ({equivalent} left out as equivalent{})",
            baseline_ms / 1000.0,
            if generated - equivalent > *total {
                ", the rest a seeded sample"
            } else {
                ""
            }
        ),
        StrengthProgress::Mutant {
            done,
            total,
            killed,
            eta,
        } => {
            let secs = eta.as_secs();
            eprintln!(
                "strength: {done}/{total} mutants, {killed} killed, ETA {}m{:02}s",
                secs / 60,
                secs % 60
            );
        }
        _ => {}
    })
}

#[allow(clippy::needless_pass_by_value)] // clap hands the arguments over by value, as every subcommand's `run`
pub(crate) fn run(args: StrengthArgs) -> anyhow::Result<ExitCode> {
    if !args.project.is_dir() {
        bail!(
            "{} is not a directory; pass the project (a passing build)",
            args.project.display()
        );
    }
    let config = load_config(&args)?;
    let section = strength_section(config.as_ref())?;
    let min_kill_rate = args.min_kill_rate.or(section.min_kill_rate);
    if let Some(r) = min_kill_rate
        && !(0.0..=1.0).contains(&r)
    {
        bail!("--min-kill-rate {r} is not a fraction between 0 and 1 (write 0.9 for 90%)");
    }
    let holdout = args.holdout.clone().or_else(|| {
        let env = std::env::var("LIGHTSOUT_HOLDOUT").ok();
        config.as_ref().and_then(|c| c.holdout_dir(env.as_deref()))
    });
    let judge = judge(&args, config.as_ref(), holdout.as_deref())?;
    let opts = options(&args, &section, holdout.as_deref())?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let run = match &args.report {
        Some(run) => Some(runtime.block_on(run_dir(&args.project, run))?),
        None => None,
    };
    let mut report = runtime.block_on(async {
        tokio::select! {
            r = lightsout_eval::measure(&args.project, &judge, &opts) => r.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted; every mutant's copy was removed")),
        }
    })?;
    report.build = runtime.block_on(lightsout_factory::describe_build(&args.project));
    if let Some((repo, run_id, dir)) = &run {
        let eval = dir.join("eval");
        std::fs::create_dir_all(&eval).with_context(|| format!("creating {}", eval.display()))?;
        lightsout_eval::write_atomic(
            &eval.join(lightsout_factory::STRENGTH_JSON),
            report.to_json()?.as_bytes(),
        )
        .with_context(|| format!("writing the strength report into {}", eval.display()))?;
        let _ = std::fs::remove_file(eval.join(lightsout_factory::STRENGTH_ERROR));
        let (outcome, _, html) = super::report::write(repo, run_id)?;
        eprintln!("{}", super::report::strength_line(&outcome));
        eprintln!("{}", super::report::gate_line(&outcome));
        eprintln!("report: {}", html.display());
    }
    if let Some(path) = &args.output {
        lightsout_eval::write_atomic(path, report.to_json()?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    match args.format {
        Format::Json => println!("{}", report.to_json()?),
        Format::Human => print!("{}", report.to_text()),
    }
    Ok(match min_kill_rate {
        Some(min) if report.kill_rate < min => {
            eprintln!(
                "strength: kill rate {:.1}% is below --min-kill-rate {:.1}%",
                report.kill_rate * 100.0,
                min * 100.0
            );
            ExitCode::from(1)
        }
        _ => ExitCode::SUCCESS,
    })
}

/// The measurement's options: flags first, then `[strength]` of lightsout.toml, then the
/// defaults; the equivalent mutants listed beside the holdout unless `--equivalents` names
/// a file.
fn options(
    args: &StrengthArgs,
    section: &StrengthConfig,
    holdout: Option<&Path>,
) -> anyhow::Result<StrengthOptions> {
    let tool = match (args.tool, &section.tool) {
        (Some(ToolArg::CosmicRay), _) => Some(MutationTool::CosmicRay),
        (Some(ToolArg::CargoMutants), _) => Some(MutationTool::CargoMutants),
        (None, Some(name)) => Some(MutationTool::parse(name).with_context(|| {
            format!("[strength] tool = \"{name}\": expected cosmic-ray or cargo-mutants")
        })?),
        (None, None) => None,
    };
    let equivalents_path = args.equivalents.clone().or_else(|| {
        holdout
            .map(|h| h.join("equivalent-mutants.toml"))
            .filter(|p| p.is_file())
    });
    let equivalents = match &equivalents_path {
        Some(p) => read_equivalents(p).with_context(|| format!("reading {}", p.display()))?,
        None => Vec::new(),
    };
    Ok(StrengthOptions {
        tool,
        trials: args.trials.or(section.trials).unwrap_or(1),
        max_mutants: args.max_mutants.or(section.max_mutants),
        seed: args.seed.or(section.seed).unwrap_or(1),
        jobs: args.jobs.or(section.jobs).unwrap_or(1).max(1),
        timeout: args
            .timeout
            .or(section.timeout_s)
            .map(|s| Duration::from_secs(s.max(1))),
        equivalents,
        paths: if args.paths.is_empty() {
            section.paths.clone().unwrap_or_default()
        } else {
            args.paths.clone()
        },
        progress: Some(progress()),
        scratch: None,
    })
}
