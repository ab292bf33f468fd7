//! `lightsout audit ...`: verify and show the hash-chained audit log of a run.

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use lightsout_fence::audit;
use std::path::PathBuf;
use std::process::ExitCode;

/// Output format of `lightsout audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AuditFormat {
    /// Text for a terminal.
    Human,
    /// JSON on stdout.
    Json,
}

/// `lightsout audit` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify a run's audit log: every entry's hash, the chain and the head.
    ///
    /// Exit codes: 0 intact, 1 tampered (an entry edited, inserted, moved, deleted or cut
    /// from the end), 2 the log cannot be read.
    Verify {
        /// A run id (looked up in .lightsout/runs/ID/audit.jsonl), a run directory or
        /// the path of an audit.jsonl file.
        run: String,
        /// Verify RUN's chain in the fleet's Postgres store instead of a file: a
        /// postgres://user@host:port/db URL (RUN is then the run id).
        #[arg(long, value_name = "URL")]
        store: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = AuditFormat::Human)]
        format: AuditFormat,
    },
    /// Print a run's audit entries.
    Show {
        /// A run id, a run directory or the path of an audit.jsonl file.
        run: String,
        /// Only entries of this kind.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(audit::AuditKind::NAMES))]
        kind: Option<String>,
        /// Only entries of this task.
        #[arg(long)]
        task: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = AuditFormat::Human)]
        format: AuditFormat,
    },
}

fn locate(run: &str) -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let path = audit::resolve(run, &cwd);
    if !path.is_file() {
        anyhow::bail!(
            "no audit log at {}: pass a run id from .lightsout/runs (run from the project root), a run directory or an audit.jsonl path",
            path.display()
        );
    }
    Ok(path)
}

pub(crate) fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { run, store, format } => verify(&run, store.as_deref(), format),
        AuditCommand::Show {
            run,
            kind,
            task,
            format,
        } => show(&run, kind.as_deref(), task.as_deref(), format),
    }
}

fn verify(run: &str, store: Option<&str>, format: AuditFormat) -> anyhow::Result<ExitCode> {
    let (path, report) = if let Some(url) = store {
        if !lightsout_tune::store::is_postgres_url(url) {
            anyhow::bail!(
                "--store takes a postgres:// URL; a run's audit file is found by RUN alone"
            );
        }
        let chain = audit::postgres::PgAuditChain::connect(url, 1)?;
        let report = chain.verify(run).with_context(|| {
            format!(
                "cannot verify the audit chain of run {run} on {}",
                chain.server()
            )
        })?;
        (report.path.clone(), report)
    } else {
        let path = locate(run)?;
        let report = audit::verify(&path)
            .with_context(|| format!("cannot verify the audit log {}", path.display()))?;
        (path, report)
    };
    match format {
        AuditFormat::Json => {
            let mut value = serde_json::to_value(&report)?;
            if let Some(map) = value.as_object_mut() {
                map.insert("intact".into(), report.intact().into());
            }
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        AuditFormat::Human => {
            if report.intact() {
                println!(
                    "intact: {} ({} entries, head {})",
                    path.display(),
                    report.entries,
                    report.last_hash.as_deref().unwrap_or("none")
                );
            } else {
                println!(
                    "TAMPERED: {} ({} problem{})",
                    path.display(),
                    report.problems.len(),
                    if report.problems.len() == 1 { "" } else { "s" }
                );
                for p in &report.problems {
                    println!("  {p}");
                }
                println!(
                    "keep the file as evidence; compare its head with the one in the run report"
                );
            }
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
        }
    }
    Ok(if report.intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn show(
    run: &str,
    kind: Option<&str>,
    task: Option<&str>,
    format: AuditFormat,
) -> anyhow::Result<ExitCode> {
    let path = locate(run)?;
    let entries = audit::read(&path).with_context(|| {
        format!(
            "cannot read the audit log {}: run `lightsout audit verify {run}`",
            path.display()
        )
    })?;
    let shown: Vec<&audit::AuditEntry> = entries
        .iter()
        .filter(|e| kind.is_none_or(|k| e.kind.to_string() == k))
        .filter(|e| task.is_none_or(|t| e.task.as_deref() == Some(t)))
        .collect();
    match format {
        AuditFormat::Json => println!("{}", serde_json::to_string_pretty(&shown)?),
        AuditFormat::Human => {
            for e in &shown {
                println!(
                    "{:>5}  {}  {:<11}  {:<10}  [{}]  {}",
                    e.seq,
                    e.ts,
                    e.kind.to_string(),
                    e.task.as_deref().unwrap_or("-"),
                    e.requirements.join(","),
                    e.details
                );
            }
            let report = audit::verify(&path)?;
            if report.intact() {
                eprintln!(
                    "{} of {} entries shown; chain intact",
                    shown.len(),
                    entries.len()
                );
            } else {
                eprintln!(
                    "warning: the chain is broken ({} problems): run `lightsout audit verify {run}`",
                    report.problems.len()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
