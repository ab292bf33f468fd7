//! `lightsout gc`: prunes old runs' worktrees, branches, attempt refs and run directories.
//! The pruning lives in `lightsout_factory::gc`.

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use lightsout_factory::Config;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// One line per thing removed, for people.
    Human,
    /// The `GcReport` as JSON on stdout.
    Json,
}

/// `lightsout gc [--older-than DAYS] [--format human|json]`.
#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// Prune runs whose journal was last written at least DAYS days ago (default: `[gc]
    /// keep_days` in lightsout.toml, 30 when unset); 0 prunes every run.
    #[arg(long, value_name = "DAYS")]
    older_than: Option<u32>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// The configuration file (default: lightsout.toml at the repository root).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

pub(crate) fn run(args: &GcArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let cwd = std::env::current_dir().context("reading the current directory")?;
        let repo = lightsout_factory::repo_root(&cwd).await?;
        let path = args
            .config
            .clone()
            .unwrap_or_else(|| repo.join("lightsout.toml"));
        // The configuration is read (strictly) even with --older-than: a typo in it is
        // reported, as every other command reports it.
        let keep_days = if path.is_file() {
            Config::load(&path)?.gc.keep_days
        } else {
            lightsout_factory::config::GcSection::default().keep_days
        };
        let days = args.older_than.unwrap_or(keep_days);
        let older_than = Duration::from_secs(u64::from(days) * 86_400);
        let report = lightsout_factory::gc::gc(&repo, older_than, SystemTime::now()).await?;
        if args.format == Format::Json {
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(ExitCode::SUCCESS);
        }
        for r in &report.runs {
            println!("removed run {r}");
        }
        for w in &report.worktrees {
            println!("removed worktree {}", w.display());
        }
        for r in &report.refs {
            println!("deleted {r}");
        }
        println!(
            "gc: {} run(s) older than {days} day(s) pruned, {} worktree(s) and {} ref(s) removed; {} run(s) kept",
            report.runs.len(),
            report.worktrees.len(),
            report.refs.len(),
            report.kept.len()
        );
        Ok(ExitCode::SUCCESS)
    })
}
