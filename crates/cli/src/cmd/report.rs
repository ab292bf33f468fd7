//! `lightsout report RUN`: writes the outcome report (`report.json` + `report.html`) of a run
//! from its run directory. The report is built by `lightsout_factory::outcome` and written by
//! `lightsout_report`.

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use lightsout_report::{GateOutcome, RunReport};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// The gate verdict and the two report paths.
    Human,
    /// `{"report_json": PATH, "report_html": PATH, "report": {...}}` on stdout.
    Json,
}

/// `lightsout report [RUN] [--format human|json]`.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The run id (a directory name under .lightsout/runs/); the latest run when omitted.
    #[arg(value_name = "RUN")]
    run: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// The one line that says whether to ship:
/// `gate: PASS|FAIL|INSUFFICIENT EVIDENCE|NOT EVALUATED (...)`, a line for a build of specs
/// that were not ready, and the holdout's strength line ([`strength_line`]).
pub(crate) fn gate_line(report: &RunReport) -> String {
    let t = report.totals();
    let verdict = match report.gate.outcome {
        GateOutcome::Pass => "PASS",
        GateOutcome::Fail => "FAIL",
        GateOutcome::InsufficientEvidence => "INSUFFICIENT EVIDENCE",
        GateOutcome::NotEvaluated => "NOT EVALUATED",
    };
    let mut line = format!(
        "gate: {verdict} ({} of {} tasks merged{}, {} requirements",
        t.merged,
        t.tasks,
        if t.unchanged > 0 {
            format!(", {} unchanged", t.unchanged)
        } else {
            String::new()
        },
        report.requirements.len()
    );
    if report.uses_replay() {
        line.push_str("; agent: a replay of a recorded trajectory, no model called");
    }
    line.push(')');
    if let Some(first) = report.not_ready.first() {
        line.push_str("\n  NOT READY: built with --allow-not-ready despite ");
        line.push_str(&report.not_ready.len().to_string());
        line.push_str(" spec finding(s), first: ");
        line.push_str(first);
    }
    if let Some(t) = trace_line(report) {
        line.push('\n');
        line.push_str(&t);
    }
    line.push('\n');
    line.push_str(&strength_line(report));
    if report.gate.outcome != GateOutcome::Pass
        && let Some(first) = report.gate.reasons.first()
    {
        line.push_str("\n  first reason: ");
        line.push_str(first);
    }
    line
}

/// `orphans: requirements without a holdout scenario: REQ-3; ...`, when the traceability chain
/// has loose ends (the lists are in the report).
pub(crate) fn trace_line(report: &RunReport) -> Option<String> {
    let o = &report.orphans;
    let mut parts = Vec::new();
    if !o.requirements_without_scenarios.is_empty() {
        parts.push(format!(
            "requirements without a holdout scenario: {}",
            o.requirements_without_scenarios.join(", ")
        ));
    }
    if !o.scenarios_with_unknown_requirements.is_empty() {
        let unknown: Vec<String> = o
            .scenarios_with_unknown_requirements
            .iter()
            .map(|u| format!("{} ({})", u.scenario, u.requirements.join(", ")))
            .collect();
        parts.push(format!(
            "scenarios naming unknown requirements: {}",
            unknown.join(", ")
        ));
    }
    if !o.tasks_without_requirements.is_empty() {
        parts.push(format!(
            "tasks serving no requirement: {}",
            o.tasks_without_requirements.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| format!("orphans: {}", parts.join("; ")))
}

/// `strength: 67 of 70 mutants killed (95.7%, Wilson 95% [0.881, 0.985]); ...`, or `strength:
/// not measured` with how to measure it.
pub(crate) fn strength_line(report: &RunReport) -> String {
    match &report.strength {
        Some(st) => {
            let mut s = format!("strength: {}", st.line());
            if let Some(b) = &st.build {
                s.push_str("; build ");
                s.push_str(&b[..b.len().min(12)]);
            }
            s
        }
        None => format!(
            "strength: not measured (`lightsout strength --report {}` in the merged checkout)",
            report.run_id
        ),
    }
}

/// Builds and writes the report of `run_id`; returns it with its JSON and HTML paths.
pub(crate) fn write(repo: &Path, run_id: &str) -> anyhow::Result<(RunReport, PathBuf, PathBuf)> {
    let (json, html) = lightsout_factory::write_run_report(repo, run_id)
        .with_context(|| format!("writing the report of run {run_id}"))?;
    let report = lightsout_report::read_report(&json)?;
    Ok((report, json, html))
}

pub(crate) fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let repo = rt.block_on(lightsout_factory::repo_root(&cwd))?;
    let run = super::run_or_latest(&repo, args.run.as_deref())?;
    let (report, json, html) = write(&repo, &run)?;
    match args.format {
        Format::Json => {
            let out = serde_json::json!({
                "report_json": json,
                "report_html": html,
                "report": report,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Human => {
            if args.run.is_none() {
                println!("run {run} (the latest)");
            }
            println!("{}", gate_line(&report));
            println!("report: {}", html.display());
            println!("json:   {}", json.display());
        }
    }
    Ok(
        if matches!(
            report.gate.outcome,
            GateOutcome::Fail | GateOutcome::InsufficientEvidence
        ) {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    )
}
