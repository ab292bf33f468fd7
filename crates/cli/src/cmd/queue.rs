//! `lightsout queue add|list|remove|stop`: the spec queue that `lightsout run --queue` builds.
//! The queue lives in the state store (`lightsout_factory::queue`).

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use lightsout_factory::queue::{QueueChange, QueueEntry, QueueStore, SqliteQueue};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A table for people.
    Human,
    /// JSON on stdout: the entries touched (add, remove) or all of them (list).
    Json,
}

/// `lightsout queue ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum QueueCommand {
    /// Append specs to the queue, one entry per SPEC (a file, or a folder whose specs make
    /// one plan). Each is built later by `lightsout run --queue` in a run of its own, from
    /// the spec as it is then.
    Add(AddArgs),
    /// The queue: waiting, running and finished entries, with their runs and outcomes.
    List(FormatArg),
    /// Remove entries that are not being built.
    Remove(RemoveArgs),
    /// Ask the running `lightsout run --queue` to stop once its current spec is built.
    Stop(FormatArg),
}

/// `--format`.
#[derive(Debug, Args)]
pub(crate) struct FormatArg {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// `lightsout queue add SPEC...`.
#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// Spec files or folders, inside the repository.
    #[arg(required = true, value_name = "SPEC")]
    specs: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// `lightsout queue remove ID...`.
#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    /// Entry ids, as `lightsout queue list` shows them.
    #[arg(required = true, value_name = "ID")]
    ids: Vec<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

fn repo() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(rt.block_on(lightsout_factory::repo_root(&cwd))?)
}

pub(crate) fn run(c: QueueCommand) -> anyhow::Result<ExitCode> {
    let repo = repo()?;
    let store = SqliteQueue::in_repo(&repo)?;
    match c {
        QueueCommand::Add(a) => add(&repo, &store, &a),
        QueueCommand::List(f) => {
            let entries = store.entries()?;
            match f.format {
                Format::Json => print_json(&entries)?,
                Format::Human if entries.is_empty() => {
                    println!("the queue is empty; add specs with `lightsout queue add SPEC`");
                }
                Format::Human => print_table(&entries),
            }
            Ok(ExitCode::SUCCESS)
        }
        QueueCommand::Remove(a) => remove(&store, &a),
        QueueCommand::Stop(f) => stop(&repo, &store, f.format),
    }
}

/// The spec path as stored: relative to the repository root.
fn stored_path(repo: &Path, spec: &Path) -> anyhow::Result<String> {
    let abs = std::fs::canonicalize(spec)
        .with_context(|| format!("{}: no such spec file or folder", spec.display()))?;
    let root = std::fs::canonicalize(repo).unwrap_or_else(|_| repo.to_owned());
    let rel = abs.strip_prefix(&root).map_err(|_| {
        anyhow::anyhow!(
            "{} is outside the repository {}; queue specs that live in it",
            spec.display(),
            repo.display()
        )
    })?;
    Ok(rel.to_string_lossy().into_owned())
}

fn add(repo: &Path, store: &SqliteQueue, a: &AddArgs) -> anyhow::Result<ExitCode> {
    // Every path is checked before any is added: one bad path adds nothing.
    let paths = a
        .specs
        .iter()
        .map(|s| stored_path(repo, s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut added = Vec::new();
    for p in paths {
        added.push(store.add(&p)?);
    }
    match a.format {
        Format::Json => print_json(&added)?,
        Format::Human => {
            for e in &added {
                println!("queued {} as entry {}", e.spec, e.id);
            }
            println!("build the queue with `lightsout run --queue`");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn remove(store: &SqliteQueue, a: &RemoveArgs) -> anyhow::Result<ExitCode> {
    let mut removed = Vec::new();
    let mut refused = Vec::new();
    for &id in &a.ids {
        match store.apply(&QueueChange::Remove { id })? {
            Some(e) => removed.push(e),
            None => refused.push(id),
        }
    }
    match a.format {
        Format::Json => print_json(&removed)?,
        Format::Human => {
            for e in &removed {
                println!("removed entry {} ({})", e.id, e.spec);
            }
        }
    }
    for id in &refused {
        eprintln!(
            "error: entry {id} is not in the queue, or is being built (stop it with `lightsout queue stop`)"
        );
    }
    Ok(if refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn stop(repo: &Path, store: &SqliteQueue, format: Format) -> anyhow::Result<ExitCode> {
    // The runner holds the lock while it builds; taking it means nobody does.
    let active = lightsout_factory::queue::runner_lock(repo)?.is_none();
    if active {
        store.apply(&QueueChange::Stop(true))?;
    }
    match format {
        Format::Json => println!(
            "{}",
            serde_json::json!({ "runner_active": active, "stop_requested": active })
        ),
        Format::Human if active => {
            println!("the queue runner stops once its current spec is built");
        }
        Format::Human => {
            println!("no `lightsout run --queue` is building this queue; nothing to stop");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn print_table(entries: &[QueueEntry]) {
    println!(
        "{:>4}  {:<8}  {:<32}  {:<28}  outcome",
        "id", "status", "spec", "run"
    );
    for e in entries {
        let status = e.status.as_str();
        println!(
            "{:>4}  {:<8}  {:<32}  {:<28}  {}",
            e.id,
            status,
            e.spec,
            e.run_id.as_deref().unwrap_or("-"),
            e.detail.as_deref().unwrap_or("")
        );
    }
}
