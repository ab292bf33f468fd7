//! `lightsout agent`: the adapter contract's schemas, and `agent check` (a configured agent
//! run on a tiny built-in task inside the fence).

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use lightsout_factory::agent_check::{Status, check_agent};
use std::path::PathBuf;
use std::process::ExitCode;

/// `lightsout agent ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Print the JSON Schema of the adapter contract's task file (`lightsout.task/v1`) or of
    /// its usage report line (`lightsout.report/v1`); see docs/agents.md.
    Schema {
        /// Which document.
        #[arg(value_enum, default_value_t = SchemaKind::Task)]
        which: SchemaKind,
    },
    /// Run a configured agent profile on a tiny built-in task inside the fence and say, in
    /// plain words, what works: it starts, edits the worktree, reports usage, finishes within
    /// the wall limit, exits cleanly. Exit 0 all work (a warning allowed), 1 something does
    /// not, 2 the check itself could not run.
    Check(CheckArgs),
}

/// `lightsout agent check PROFILE`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The `[agent.<PROFILE>]` to check.
    #[arg(value_name = "PROFILE")]
    profile: String,
    /// The configuration file (default: lightsout.toml at the repository root).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Wall limit of the check, in ms (default: `[limits] wall_ms`, at most 5 minutes).
    #[arg(long, value_name = "MS")]
    wall_ms: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Lines for people.
    Human,
    /// One JSON object.
    Json,
}

/// The documents of the adapter contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SchemaKind {
    /// The task file, `$LIGHTSOUT_TASK_FILE`.
    Task,
    /// A usage report line printed on stdout.
    Report,
}

pub(crate) fn run(c: &AgentCommand) -> anyhow::Result<ExitCode> {
    match c {
        AgentCommand::Schema { which } => {
            let which = *which;
            let schema = match which {
                SchemaKind::Task => lightsout_agent::contract::task_file_schema(),
                SchemaKind::Report => lightsout_agent::contract::report_line_schema(),
            };
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Check(args) => check(args),
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let repo = rt
        .block_on(lightsout_factory::repo_root(&cwd))
        .unwrap_or(cwd);
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| repo.join("lightsout.toml"));
    let config = lightsout_factory::Config::load(&path)?;
    let wall_ms = args
        .wall_ms
        .unwrap_or_else(|| config.limits.wall_ms.min(300_000));
    let report = rt.block_on(check_agent(&config, &repo, &args.profile, wall_ms))?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "agent check of profile `{}`: {} (wall limit {} ms)",
            report.profile, report.command, report.wall_ms
        );
        for i in &report.items {
            let mark = match i.status {
                Status::Pass => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
                Status::Skipped => "skip",
            };
            println!("  [{mark}] {}: {}", i.check, i.detail);
        }
        if report.passed() {
            println!("the agent is ready for `lightsout run`");
        } else {
            println!("the agent is not ready: fix what failed above, then check again");
        }
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
