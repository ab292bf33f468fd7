//! `lightsout replay RUN`: re-runs a finished run's evaluations offline from what it recorded
//! and says whether it ends with the same verdict. The replay lives in
//! `lightsout_factory::replay`.

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use lightsout_factory::Config;
use lightsout_factory::replay::{ReplayOutcome, ReplayReport};
use std::path::PathBuf;
use std::process::ExitCode;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// One line per step and the verdict.
    Human,
    /// The replay report as one JSON object on stdout.
    Json,
}

/// `lightsout replay [RUN] [--format human|json] [--config PATH] [--jobs N]`.
#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The run id (a directory name under .lightsout/runs/); the latest run when omitted.
    #[arg(value_name = "RUN")]
    run: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// The configuration file (default: lightsout.toml at the repository root).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Recorded evaluations judged at once. More is faster, but a scenario that measures
    /// latency sees the other judges as load.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
}

fn print_human(report: &ReplayReport) {
    for s in &report.steps {
        println!(
            "step {}: {} attempt {} {} at {}: {}",
            s.step,
            s.task,
            s.attempt,
            s.stage,
            &s.commit[..s.commit.len().min(12)],
            s.decision
        );
    }
    match &report.outcome {
        ReplayOutcome::Same => println!(
            "same verdict: {} evaluation(s) of run {} replayed offline",
            report.steps.len(),
            report.run_id
        ),
        ReplayOutcome::Differs { difference: d } => {
            println!(
                "differs at step {} ({} attempt {} {}): {}",
                d.step.step, d.step.task, d.step.attempt, d.step.stage, d.what
            );
            println!("  run:    {}", d.recorded);
            println!("  replay: {}", d.replayed);
        }
        ReplayOutcome::Unreplayable { missing } => {
            println!("cannot replay run {}: missing {missing}", report.run_id);
        }
    }
}

pub(crate) fn run(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let repo = rt.block_on(lightsout_factory::repo_root(&cwd))?;
    let run = super::run_or_latest(&repo, args.run.as_deref())?;
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| repo.join("lightsout.toml"));
    let config = Config::load(&config_path)?;
    let report = rt.block_on(lightsout_factory::replay::replay_with_jobs(
        &repo,
        &config,
        &run,
        usize::from(args.jobs),
    ))?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Human => print_human(&report),
    }
    Ok(match report.outcome {
        ReplayOutcome::Same => ExitCode::SUCCESS,
        ReplayOutcome::Differs { .. } => ExitCode::from(1),
        ReplayOutcome::Unreplayable { .. } => ExitCode::from(2),
    })
}
