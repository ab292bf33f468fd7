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
    #[command(flatten)]
    store: StoreArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// `--store`: where the run metrics are read from.
#[derive(Debug, Args)]
pub(crate) struct StoreArg {
    /// The run-metrics store to read instead of the project's .lightsout/state.db: a
    /// postgres://user@host:port/db URL (the fleet's shared server) or the path of a
    /// state.db file. Nothing is imported into it.
    #[arg(long, value_name = "URL|PATH")]
    store: Option<String>,
}

/// Arguments of `tune show` and `tune promote`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    common: TuneArgs,
    #[command(flatten)]
    store: StoreArg,
}

/// `lightsout tune ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TuneCommand {
    /// Print each tuned task kind's variants: Beta posterior of the first-attempt pass rate,
    /// Wilson interval, median USD, USD per merged task, probability of being best, benched,
    /// the promotion verdict and what the bandit would pick next. Exit 0, 1 when
    /// lightsout.toml has no [tuning], 2 unreadable.
    Show(ShowArgs),
    /// Apply the promotions the sequential test grants (P(best) at least the declared
    /// confidence, enough first attempts) to .lightsout/tuning.json. Exit 0.
    Promote(ShowArgs),
    /// Ask a configured agent to write a new prompt template for a variant from the lessons
    /// in force and the redacted failure categories only (never holdout text; the brief is
    /// leak-scanned against the holdout before it is sent). Saved as a proposed variant under
    /// .lightsout/tuning/proposals/; it enters the bandit once `tune accept`ed (or with
    /// `[tuning] auto_accept = true`). Exit 0, 1 when lightsout.toml has no [tuning], 2 on error.
    Propose(ProposeArgs),
    /// Mark a proposed variant ready: it enters the bandit from the next run on. Exit 0, 2
    /// when there is no such proposal.
    Accept(AcceptArgs),
}

/// Arguments of `tune propose`.
#[derive(Debug, Args)]
pub(crate) struct ProposeArgs {
    #[command(flatten)]
    common: TuneArgs,
    /// The [agent.<name>] profile that writes the template (default: the base variant's).
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
    /// The variant to rewrite (default: the incumbent); the proposal keeps its profile and
    /// model.
    #[arg(long, value_name = "VARIANT")]
    base: Option<String>,
    /// The proposal's variant name (default: <base>-p<n>).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

/// Arguments of `tune accept`.
#[derive(Debug, Args)]
pub(crate) struct AcceptArgs {
    /// The proposal to mark ready.
    name: String,
    #[command(flatten)]
    common: TuneArgs,
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

/// The roll-up of the run-metrics store `store` names (a `postgres://` URL or a `SQLite` file),
/// else of the project's. A project with no `.lightsout/` yet has no attempts (and gets no
/// store created).
fn read_metrics(project: &Path, store: &StoreArg) -> anyhow::Result<rollup::Rollup> {
    if let Some(location) = &store.store {
        let store = MetricsStore::open_url(location)?;
        return rollup_of(&store);
    }
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
    rollup_of(&store)
}

fn rollup_of(store: &MetricsStore) -> anyhow::Result<rollup::Rollup> {
    let (records, diags) = store.records()?;
    for d in &diags {
        eprintln!(
            "warning: {}: attempt row {}: skipped: {}",
            store.location(),
            d.line,
            d.message
        );
    }
    Ok(rollup::rollup(&records))
}

pub(crate) fn metrics(args: MetricsArgs) -> anyhow::Result<ExitCode> {
    let dir = project(args.project)?;
    let r = read_metrics(&dir, &args.store)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        Format::Human => print!("{}", rollup::render_text(&r)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The project directory, its config, and `[tuning]` with the project's proposals; `None`
/// (after saying so) when there is no `[tuning]`.
fn load_tuning(
    args: &TuneArgs,
) -> anyhow::Result<Option<(PathBuf, lightsout_factory::Config, config::TuningConfig)>> {
    let dir = project(args.project.clone())?;
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| dir.join("lightsout.toml"));
    // The whole file as `lightsout run` reads it, then `[tuning]` typed.
    let full = lightsout_factory::config::Config::load(&config_path)?;
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let Some(cfg) = config::load(&text)? else {
        eprintln!(
            "{}: no [tuning] section: declare [[tuning.variant]]s, an incumbent and \
             [tuning.bounds] kinds to tune (see `lightsout metrics` for the roll-up alone)",
            config_path.display()
        );
        return Ok(None);
    };
    let cfg = lightsout_tune::proposal::with_proposals(cfg, &dir)?;
    Ok(Some((dir, full, cfg)))
}

pub(crate) fn run(cmd: TuneCommand) -> anyhow::Result<ExitCode> {
    let (
        ShowArgs {
            common: args,
            store,
        },
        promote,
    ) = match cmd {
        TuneCommand::Show(a) => (a, false),
        TuneCommand::Promote(a) => (a, true),
        TuneCommand::Propose(a) => return propose(a),
        TuneCommand::Accept(a) => return accept(&a),
    };
    let Some((dir, _, cfg)) = load_tuning(&args)? else {
        return Ok(ExitCode::from(1));
    };
    let r = read_metrics(&dir, &store)?;
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

/// The lessons in force in the project's decision memory, by fingerprint and failure count
/// only (never their text); none without a memory database.
fn lessons(project: &Path) -> anyhow::Result<Vec<lightsout_tune::proposal::LessonLine>> {
    let db = project.join(".lightsout").join("memory.db");
    if !db.is_file() {
        return Ok(Vec::new());
    }
    let mem = lightsout_memory::Memory::open(&db)?;
    let records = mem.list(
        lightsout_memory::Filter::Current {
            statuses: Vec::new(),
        },
        &[lightsout_memory::Kind::Lesson],
    )?;
    Ok(records
        .iter()
        .filter_map(|r| r.lesson.as_ref())
        .filter(|l| l.retired_at.is_none())
        .map(|l| lightsout_tune::proposal::LessonLine {
            fingerprint: l.fingerprint.clone(),
            failures: l.failures,
        })
        .collect())
}

/// Refuses `brief` when the holdout's leak scanner flags anything in it (defence in depth:
/// it is built from redacted categories and lesson fingerprints only).
fn leak_check(
    config: &lightsout_factory::Config,
    project: &Path,
    brief: &str,
) -> anyhow::Result<()> {
    let Some(dir) = config.holdout_dir(std::env::var("LIGHTSOUT_HOLDOUT").ok().as_deref()) else {
        return Ok(());
    };
    if !dir.is_dir() {
        return Ok(());
    }
    let visible: Vec<String> = lightsout_spec::discover(&project.join("specs"))
        .unwrap_or_default()
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    let Some(scan) = lightsout_factory::fenced::suite_scanner_allowing(&dir, &visible)? else {
        return Ok(());
    };
    let found = lightsout_fence::holdout::LeakScan::scan(&scan, brief);
    anyhow::ensure!(
        found.is_empty(),
        "the proposal brief holds holdout text ({}); nothing was sent to an agent",
        found.join("; ")
    );
    Ok(())
}

fn propose(args: ProposeArgs) -> anyhow::Result<ExitCode> {
    let Some((dir, full, cfg)) = load_tuning(&args.common)? else {
        return Ok(ExitCode::from(1));
    };
    let base_name = args.base.unwrap_or_else(|| cfg.incumbent.clone());
    let base = cfg
        .variant(&base_name)
        .cloned()
        .with_context(|| format!("no variant `{base_name}` in [tuning]"))?;
    let base_template = base
        .prompt
        .as_ref()
        .map(|p| {
            let path = full.base_dir.join(p);
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        })
        .transpose()?;
    let input = lightsout_tune::proposal::ProposalInput::new(
        &base.name,
        base_template,
        &read_metrics(&dir, &StoreArg { store: None })?,
        lessons(&dir)?,
    );
    let brief = lightsout_tune::proposal::brief(&input);
    leak_check(&full, &dir, &brief)?;
    let writer = args.agent.unwrap_or_else(|| base.agent.clone());
    let name = args.name.unwrap_or_else(|| {
        // Among len + 1 candidates one is free.
        (1..=cfg.variants.len() + 1)
            .map(|n| format!("{}-p{n}", base.name))
            .find(|n| cfg.variant(n).is_none())
            .unwrap_or_default()
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let template = rt.block_on(lightsout_factory::write_template(
        &full, &dir, &writer, &brief,
    ))?;
    let p = lightsout_tune::proposal::save_proposal(
        &dir, &cfg, &name, &base, &writer, &brief, &template,
    )?;
    match args.common.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&p)?),
        Format::Human => println!(
            "proposed variant {} (from {}, written by {}): {}\n\
             it enters the bandit once ready: `lightsout tune accept {}`{}",
            p.name,
            p.base,
            p.written_by,
            dir.join(&p.prompt).display(),
            p.name,
            if cfg.auto_accept {
                " (auto_accept = true: it enters now)"
            } else {
                ""
            }
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn accept(args: &AcceptArgs) -> anyhow::Result<ExitCode> {
    let dir = project(args.common.project.clone())?;
    let p = lightsout_tune::proposal::accept(&dir, &args.name)?;
    match args.common.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&p)?),
        Format::Human => println!(
            "{} is ready: it enters the bandit from the next run on",
            p.name
        ),
    }
    Ok(ExitCode::SUCCESS)
}
