//! `lightsout metrics` and `lightsout tune ...`: the run-metrics roll-up and the tuner's
//! posteriors, next pick and promotions (`lightsout-tune`).

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use lightsout_tune::{config, rollup, show, state::TuningState, store::MetricsStore};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A table for people.
    Human,
    /// One JSON object.
    Json,
}

/// `lightsout metrics [--project DIR] [--format human|json]`.
#[derive(Debug, Args)]
pub(crate) struct MetricsArgs {
    /// The project (default: the repository root, else the current directory); reads the
    /// run-metrics store in DIR/.lightsout/state.db (importing an older
    /// DIR/.lightsout/metrics.jsonl into it once).
    #[arg(long, value_name = "DIR")]
    project: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// `lightsout tune ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TuneCommand {
    /// Print each tuned task kind's variants: Beta posterior of the first-attempt pass rate,
    /// Wilson interval, median USD, USD per merged task, probability of being best, benched,
    /// the promotion verdict and what the bandit would pick next. Exit 0, 1 when
    /// lightsout.toml has no [tuning], 2 unreadable.
    Show(TuneArgs),
    /// Apply the promotions the sequential test grants (P(best) at least the declared
    /// confidence, enough first attempts) to .lightsout/tuning.json. Exit 0.
    Promote(TuneArgs),
}

/// Arguments of `tune show` and `tune promote`.
#[derive(Debug, Args)]
pub(crate) struct TuneArgs {
    /// The project (default: the repository root, else the current directory).
    #[arg(long, value_name = "DIR")]
    project: Option<PathBuf>,
    /// The configuration file (default: DIR/lightsout.toml).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

fn project(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(d) = dir {
        return Ok(d);
    }
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(rt
        .block_on(lightsout_factory::repo_root(&cwd))
        .unwrap_or(cwd))
}

/// The roll-up of the project's run-metrics store. A project with no `.lightsout/` yet has
/// no attempts (and gets no store created).
fn read_metrics(project: &Path) -> anyhow::Result<rollup::Rollup> {
    let dir = project.join(".lightsout");
    if !dir.is_dir() {
        return Ok(rollup::rollup(&[]));
    }
    let (store, imported) = MetricsStore::open_project(project)?;
    let jsonl = dir.join(lightsout_tune::store::METRICS_JSONL);
    for d in &imported.skipped {
        eprintln!(
            "warning: {}:{}: skipped: {}",
            jsonl.display(),
            d.line,
            d.message
        );
    }
    let (records, diags) = store.records()?;
    for d in &diags {
        eprintln!(
            "warning: {}: attempt row {}: skipped: {}",
            store.path().display(),
            d.line,
            d.message
        );
    }
    Ok(rollup::rollup(&records))
}

pub(crate) fn metrics(args: MetricsArgs) -> anyhow::Result<ExitCode> {
    let dir = project(args.project)?;
    let r = read_metrics(&dir)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        Format::Human => print!("{}", rollup::render_text(&r)),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run(cmd: TuneCommand) -> anyhow::Result<ExitCode> {
    let (args, promote) = match cmd {
        TuneCommand::Show(a) => (a, false),
        TuneCommand::Promote(a) => (a, true),
    };
    let dir = project(args.project)?;
    let config_path = args.config.unwrap_or_else(|| dir.join("lightsout.toml"));
    // The whole file as `lightsout run` reads it, then `[tuning]` typed.
    lightsout_factory::config::Config::load(&config_path)?;
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let Some(cfg) = config::load(&text)? else {
        eprintln!(
            "{}: no [tuning] section: declare [[tuning.variant]]s, an incumbent and \
             [tuning.bounds] kinds to tune (see `lightsout metrics` for the roll-up alone)",
            config_path.display()
        );
        return Ok(ExitCode::from(1));
    };
    let r = read_metrics(&dir)?;
    let state_path = dir.join(".lightsout").join("tuning.json");
    let mut state = TuningState::load(&state_path)?;
    let view = show::view(&cfg, &r, &state);
    if promote {
        let mut promoted = Vec::new();
        for k in &view.kinds {
            if let Some(v) = &k.promotion.promote {
                let arm = k.arms.iter().find(|a| &a.variant == v);
                state.defaults.insert(
                    k.kind.clone(),
                    lightsout_tune::state::Promoted {
                        variant: v.clone(),
                        replaced: k.promotion.default.clone(),
                        p_best: k.promotion.p_best.get(v).copied().unwrap_or(0.0),
                        first_attempts: arm.map_or(0, |a| a.evidence.first_attempts),
                    },
                );
                promoted.push(k);
            }
        }
        if !promoted.is_empty() {
            state.save(&state_path)?;
        }
        match args.format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&state)?),
            Format::Human => {
                for k in &view.kinds {
                    match &k.promotion.promote {
                        Some(v) => println!(
                            "{}: {v} promoted over {} (P(best) {:.3})",
                            k.kind,
                            k.promotion.default,
                            k.promotion.p_best.get(v).copied().unwrap_or(0.0)
                        ),
                        None => println!("{}: {} stays the default", k.kind, k.promotion.default),
                    }
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&view)?),
        Format::Human => print!("{}", show::render_text(&view, &cfg)),
    }
    Ok(ExitCode::SUCCESS)
}
