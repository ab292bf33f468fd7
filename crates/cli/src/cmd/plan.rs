//! `lightsout plan ...`: argument parsing and wiring of `lightsout-graph`.

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use lightsout_graph::{Options, TaskGraph, load};
use lightsout_spec::{Diagnostic, Severity, render};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `lightsout plan`: the task graph of specs and task lists.
///
/// Prints the waves (parallel layers), the critical path and the ready tasks, with their
/// requirement ids. Exit 0 when the plan is valid, 1 when problems were found (errors, or
/// warnings under --strict), 2 on a usage or I/O error.
#[derive(Debug, Args)]
#[allow(clippy::doc_markdown)] // product names in --help text, not code
pub(crate) struct PlanArgs {
    /// Spec files, task lists (Spec Kit / Kiro / OpenSpec `tasks.md`, task-master
    /// `tasks.json`), or directories searched for both. All of them make one plan.
    /// Default: `specs/` at the repository root, as `lightsout run` reads it.
    paths: Vec<PathBuf>,
    /// Output format: `dot` opens in Graphviz, `mermaid` renders on GitHub.
    #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
    format: PlanFormat,
    /// Tasks already done (ids, or `spec#id` when an id repeats), besides those checked in
    /// their lists.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    done: Vec<String>,
    /// Drop dangling and self dependencies and break cycles at their weakest edge (list
    /// order before the dependencies you wrote; each repair is reported).
    /// Without it nothing you wrote is repaired; a dependency only guessed from a task's
    /// prose that would close a cycle is always dropped, with a note.
    #[arg(long)]
    repair: bool,
    /// Treat warnings (such as likely merge conflicts) as problems.
    #[arg(long)]
    strict: bool,
    /// List the tasks invalidated by the change from OLD to NEW (spec files or
    /// directories).
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"], conflicts_with = "paths")]
    impact: Option<Vec<PathBuf>>,
}

/// Output formats of `lightsout plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PlanFormat {
    /// For a terminal.
    Human,
    /// The `Plan` (or impact report) as JSON.
    Json,
    /// Graphviz DOT.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

pub(crate) fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let PlanArgs {
        paths,
        format,
        done: done_ids,
        repair,
        strict,
        impact: impact_pair,
    } = args;
    if let Some(pair) = impact_pair {
        return impact(&pair[0], &pair[1], format, repair);
    }
    let paths = if paths.is_empty() {
        vec![super::default_specs_dir()?]
    } else {
        paths
    };
    let loaded = load::load(&paths).context("cannot read the plan's inputs")?;
    // Nothing found at all is a usage error; files found but unreadable are diagnostics,
    // and the empty plan they leave is an error of its own (exit 1), never a success.
    if loaded.lists.is_empty() && loaded.diagnostics.is_empty() {
        anyhow::bail!(
            "no specs or task lists found under {}; pass spec files, tasks.md / tasks.json, or their folders",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let options = Options::default().with_repair(repair);
    let (graph, build_diags) = TaskGraph::build(loaded.lists, &options);
    let mut diags = loaded.diagnostics;
    diags.extend(build_diags);
    render::sort(&mut diags);

    let mut done = HashSet::new();
    for id in &done_ids {
        let id = id.trim();
        if id.is_empty() {
            continue;
        }
        let Some(i) = graph.find(id) else {
            anyhow::bail!(
                "--done names `{id}`, which is no task of this plan; use the ids shown by `lightsout plan` (spec#id when an id repeats)"
            );
        };
        done.insert(i);
    }
    let problems = diags
        .iter()
        .any(|d| d.severity == Severity::Error || (strict && d.severity == Severity::Warning))
        || graph.cycle_count() > 0;
    let plan = graph.plan(&done, diags);

    let mut out = std::io::stdout().lock();
    match format {
        PlanFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &plan).context("cannot write the plan")?;
            writeln!(out)?;
        }
        PlanFormat::Human => {
            print_diagnostics(&plan.diagnostics);
            write!(out, "{}", lightsout_graph::render_human(&plan))?;
        }
        PlanFormat::Dot => {
            print_diagnostics(&plan.diagnostics);
            write!(out, "{}", lightsout_graph::render_dot(&graph, &plan))?;
        }
        PlanFormat::Mermaid => {
            print_diagnostics(&plan.diagnostics);
            write!(out, "{}", lightsout_graph::render_mermaid(&graph, &plan))?;
        }
    }
    out.flush()?;
    Ok(exit(problems))
}

fn exit(problems: bool) -> ExitCode {
    if problems {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Longest source line, in bytes, quoted under a diagnostic; a longer one (a one-line
/// `tasks.json`) is not printed, only its `path:line:column`.
const MAX_QUOTED_LINE: usize = 4096;

/// Whether the line holding byte `at` of `source` is short enough to quote. Looks at most
/// [`MAX_QUOTED_LINE`] bytes each way, so printing many diagnostics of a one-line file of
/// megabytes stays linear.
fn quotable(source: &str, at: usize) -> bool {
    let b = source.as_bytes();
    let at = at.min(b.len());
    let back = &b[at.saturating_sub(MAX_QUOTED_LINE)..at];
    let fwd = &b[at..(at + MAX_QUOTED_LINE).min(b.len())];
    let start_found = back.contains(&b'\n') || at <= MAX_QUOTED_LINE;
    let end_found = fwd.contains(&b'\n') || at + MAX_QUOTED_LINE >= b.len();
    start_found && end_found
}

fn print_diagnostics(diags: &[Diagnostic]) {
    let color = std::io::stderr().is_terminal();
    let mut sources: HashMap<PathBuf, String> = HashMap::new();
    let mut err = std::io::stderr().lock();
    for d in diags {
        let source = d.path.as_ref().map_or("", |p| {
            sources
                .entry(p.clone())
                .or_insert_with(|| std::fs::read_to_string(p).unwrap_or_default())
                .as_str()
        });
        let source = if quotable(source, d.span.start) {
            source
        } else {
            ""
        };
        let _ = write!(err, "{}", render::human_diagnostic(d, source, color));
    }
    let count = |s: Severity| diags.iter().filter(|d| d.severity == s).count();
    if !diags.is_empty() {
        let _ = writeln!(
            err,
            "{} error(s), {} warning(s), {} note(s)\n",
            count(Severity::Error),
            count(Severity::Warning),
            count(Severity::Info)
        );
    }
}

fn impact(old: &Path, new: &Path, format: PlanFormat, repair: bool) -> anyhow::Result<ExitCode> {
    let old_loaded = load::load(&[old.to_path_buf()])
        .with_context(|| format!("cannot read {}", old.display()))?;
    let new_loaded = load::load(&[new.to_path_buf()])
        .with_context(|| format!("cannot read {}", new.display()))?;
    // Changed requirement ids, by spec id, from the spec stage's diff.
    let olds: BTreeMap<&str, &lightsout_spec::Spec> = old_loaded
        .specs
        .iter()
        .map(|s| (s.meta.id.as_str(), s))
        .collect();
    let news: BTreeMap<&str, &lightsout_spec::Spec> = new_loaded
        .specs
        .iter()
        .map(|s| (s.meta.id.as_str(), s))
        .collect();
    let mut changed = Vec::new();
    for (id, n) in &news {
        match olds.get(id) {
            Some(o) => {
                let d = lightsout_spec::diff(o, n);
                changed.extend(d.changes.iter().map(|c| format!("{id}#{}", c.id)));
            }
            None => changed.extend(n.requirements.iter().map(|r| format!("{id}#{}", r.id))),
        }
    }
    for (id, o) in &olds {
        if !news.contains_key(id) {
            changed.extend(o.requirements.iter().map(|r| format!("{id}#{}", r.id)));
        }
    }
    let options = Options::default().with_repair(repair);
    let (old_graph, _) = TaskGraph::build(old_loaded.lists, &options);
    let (new_graph, mut diags) = TaskGraph::build(new_loaded.lists, &options);
    diags.extend(new_loaded.diagnostics);
    render::sort(&mut diags);
    let report = lightsout_graph::impact_report(&old_graph, &new_graph, &changed);
    let mut out = std::io::stdout().lock();
    match format {
        PlanFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report).context("cannot write the report")?;
            writeln!(out)?;
        }
        PlanFormat::Human | PlanFormat::Dot | PlanFormat::Mermaid => {
            print_diagnostics(&diags);
            write!(out, "{}", lightsout_graph::render_impact(&report))?;
        }
    }
    out.flush()?;
    let problems =
        diags.iter().any(|d| d.severity == Severity::Error) || new_graph.cycle_count() > 0;
    Ok(exit(problems))
}
