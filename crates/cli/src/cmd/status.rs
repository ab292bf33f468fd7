//! `lightsout status`: the fleet as its shared store sees it now: workers (from their live
//! leases), each run's leases with the time they have left, its tasks by status, and the
//! critical path of what remains when the store knows dependencies and estimates
//! (`lightsout_fleet::status`).

use clap::{Args, ValueEnum};
use lightsout_fleet::claims::{ClaimStore, PgClaims, SqliteClaims};
use lightsout_fleet::status::{FleetStatus, RunStatus, snapshot};
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
    let status = snapshot(store.as_ref(), a.run.as_deref())?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        Format::Text => print!("{}", text(&status)),
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

fn text(s: &FleetStatus) -> String {
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
    }
    o
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
