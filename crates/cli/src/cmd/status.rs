//! `lightsout status`: the fleet as its shared store sees it now: workers (from their live
//! leases), each run's leases with the time they have left, its tasks by status, and the
//! critical path of what remains when the store knows dependencies and estimates
//! (`lightsout_fleet::status`); with `--run`, the newest entries of each task's journal, from
//! the copy fleet workers keep in the store (`lightsout_fleet::journal`).

use clap::{Args, ValueEnum};
use lightsout_factory::journal::Entry;
use lightsout_fleet::claims::{ClaimStore, PgClaims, SqliteClaims};
use lightsout_fleet::journal::JournalRow;
use lightsout_fleet::status::{FleetStatus, RunStatus, attach_journal, snapshot};
use std::path::PathBuf;
use std::process::ExitCode;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Tables for people.
    Text,
    /// One JSON object on stdout (`lightsout_fleet::status::FleetStatus`).
    Json,
}

/// `lightsout status [--store STORE] [--run RUN] [--format text|json]`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    store: super::worker::StoreArg,
    /// Show only this run (default: every run the store holds).
    #[arg(long)]
    run: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// With --run: how many of each task's newest journal entries to show, from the copy the
    /// fleet's workers keep in the store as they build (0: none).
    #[arg(long, value_name = "N", default_value_t = 3)]
    journal: usize,
}

/// Runs `lightsout status`.
pub(crate) fn run(a: &StatusArgs) -> anyhow::Result<ExitCode> {
    let location = a.store.location()?;
    let store: Box<dyn ClaimStore> = if lightsout_factory::config::is_postgres_url(&location) {
        Box::new(PgClaims::connect(&location, 2)?)
    } else {
        let path = PathBuf::from(&location);
        anyhow::ensure!(
            path.exists(),
            "{}: no such store (a SQLite file, or postgres://…)",
            path.display()
        );
        Box::new(SqliteClaims::open(&path)?)
    };
    let mut status = snapshot(store.as_ref(), a.run.as_deref())?;
    if a.run.is_some() && a.journal > 0 {
        let journal = super::worker::open_journal(&location, 0)?;
        attach_journal(&mut status, journal.as_ref(), a.journal)?;
    }
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        Format::Text => print!("{}", text(&status, a.journal)),
    }
    Ok(ExitCode::SUCCESS)
}

/// `ms` for people: `850 ms`, `12.5 s`, `3.2 min`, `4.0 h`.
fn human_ms(ms: i64) -> String {
    let (sign, ms) = (if ms < 0 { "-" } else { "" }, ms.unsigned_abs());
    #[allow(clippy::cast_precision_loss)] // shown to one decimal
    let f = ms as f64;
    if ms < 1_000 {
        format!("{sign}{ms} ms")
    } else if ms < 60_000 {
        format!("{sign}{:.1} s", f / 1e3)
    } else if ms < 3_600_000 {
        format!("{sign}{:.1} min", f / 6e4)
    } else {
        format!("{sign}{:.1} h", f / 3.6e6)
    }
}

fn text(s: &FleetStatus, per_task: usize) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let live = s.workers.iter().filter(|w| w.live > 0).count();
    let _ = writeln!(o, "workers: {live} live, {} seen", s.workers.len());
    if !s.workers.is_empty() {
        let _ = writeln!(
            o,
            "  {:<28} {:>5} {:>7}  next lapse",
            "worker", "live", "lapsed"
        );
        for w in &s.workers {
            let _ = writeln!(
                o,
                "  {:<28} {:>5} {:>7}  {}",
                w.worker,
                w.live,
                w.lapsed,
                w.next_lapse_in_ms.map_or_else(|| "-".into(), human_ms)
            );
        }
    }
    if s.runs.is_empty() {
        let _ = writeln!(o, "no run in the store");
    }
    for r in &s.runs {
        run_text(&mut o, r, live);
        if let Some(rows) = &r.journal {
            journal_text(&mut o, rows, per_task, s.now_ms);
        }
    }
    o
}

/// A run's newest journal entries per task, as the store holds them, with their age by the
/// store's clock (`now_ms`).
fn journal_text(o: &mut String, rows: &[JournalRow], per_task: usize, now_ms: i64) {
    use std::fmt::Write as _;
    if rows.is_empty() {
        let _ = writeln!(
            o,
            "  journal: no entry in the store yet (workers add each entry as they write it)"
        );
        return;
    }
    let _ = writeln!(o, "  journal, newest {per_task} entries per task:");
    let _ = writeln!(
        o,
        "  {:<20} {:<28} {:>8} {:>5} {:>12}  entry",
        "task", "worker", "token", "seq", "age"
    );
    for r in rows {
        let _ = writeln!(
            o,
            "  {:<20} {:<28} {:>8} {:>5} {:>12}  {}",
            r.task,
            r.worker,
            r.token,
            r.seq,
            human_ms(now_ms.saturating_sub(r.at_ms).max(0)),
            entry_words(&r.entry)
        );
    }
}

/// What a journal entry says in a few words: its kind (the JSON's `entry` tag) and what it is
/// about. An entry this version does not know (written by a newer worker) shows its kind.
fn entry_words(entry: &serde_json::Value) -> String {
    let kind = entry["entry"].as_str().unwrap_or("?");
    let short = |c: &str| c.chars().take(10).collect::<String>();
    let detail = match serde_json::from_value::<Entry>(entry.clone()) {
        Ok(Entry::RunStarted { run_id, .. }) => run_id,
        Ok(Entry::TaskStarted { base, .. }) => format!("from {}", short(&base)),
        Ok(Entry::AttemptStarted { attempt, .. }) => format!("attempt {attempt}"),
        Ok(Entry::AttemptFinished { record, .. }) => match record.failed_stage {
            Some(stage) => format!("attempt {}: failed at {}", record.attempt, stage.as_str()),
            None if record.passed => format!("attempt {}: passed", record.attempt),
            None => format!("attempt {}: failed", record.attempt),
        },
        Ok(Entry::TaskFailed { reason, .. }) => reason
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(72)
            .collect(),
        Ok(Entry::TaskBlocked { by, .. }) => format!("by {by}"),
        Ok(Entry::ConflictRouted { to, .. }) => format!("to {}", to.id),
        // A task already merged, journaled by the run of the task it is a dependency of.
        Ok(Entry::TaskUnchanged { task, commit, .. }) => format!("{task} at {}", short(&commit)),
        Ok(
            Entry::MergeStarted { onto: commit, .. }
            | Entry::MergeVerified { commit, .. }
            | Entry::Merged { commit, .. }
            | Entry::CheckoutSynced { commit },
        ) => short(&commit),
        _ => String::new(),
    };
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} {detail}")
    }
}

fn run_text(o: &mut String, r: &RunStatus, live: usize) {
    use std::fmt::Write as _;
    let c = r.counts;
    let _ = writeln!(
        o,
        "\nrun {}: {} blocked, {} ready, {} claimed, {} done, {} failed",
        r.run, c.blocked, c.ready, c.claimed, c.done, c.failed
    );
    if !r.leases.is_empty() {
        let _ = writeln!(
            o,
            "  {:<20} {:<28} {:>8} {:>7}  left",
            "task", "worker", "token", "attempt"
        );
        for l in &r.leases {
            let left = if l.left_ms > 0 {
                human_ms(l.left_ms)
            } else {
                format!("lapsed {} ago", human_ms(-l.left_ms))
            };
            let _ = writeln!(
                o,
                "  {:<20} {:<28} {:>8} {:>7}  {left}",
                l.task, l.worker, l.token, l.attempt
            );
        }
    }
    if let Some(p) = &r.critical_path {
        #[allow(clippy::cast_possible_wrap)] // estimates are far below i64::MAX ms
        let (cp, work) = (p.estimate_ms as i64, p.remaining_ms as i64);
        let _ = writeln!(
            o,
            "  critical path of what remains: {} ({} of {} remaining work)",
            p.tasks.join(" -> "),
            human_ms(cp),
            human_ms(work)
        );
        if let Some(b) = r.bound_ms {
            #[allow(clippy::cast_possible_wrap)]
            let b = b as i64;
            let _ = writeln!(
                o,
                "  at least {} more with {live} live worker(s): max(critical path, work / workers)",
                human_ms(b)
            );
        }
    }
    for n in &r.notes {
        let _ = writeln!(o, "  note: {n}");
    }
}
