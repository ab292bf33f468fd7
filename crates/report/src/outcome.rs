//! The outcome of a finished (or interrupted) run, as a [`RunReport`]: built from the run
//! directory `.lightsout/runs/<id>/` alone, so that `lightsout report RUN` works long after the
//! run, and written as `report.json` + `report.html` beside the journal.
//!
//! Sources, all read-only:
//! - `journal.jsonl`, replayed into a [`RunState`]: per task the agent, attempts, tokens, USD
//!   cost, agent wall ms, merge commit, status, and every failed attempt's stage and feedback
//!   (the feedback the agent saw, already redacted at the configured level);
//! - `eval/<task>-<attempt>-<stage>.json`, `lightsout-eval`'s versioned [`RunResult`] of each
//!   holdout evaluation: per requirement the latest evaluation that covered it gives its
//!   satisfaction (passes over trials, Wilson 95% interval), scenarios and flaky flag; the
//!   latest evaluation of each task gives the gate verdict;
//! - the specs under `<repo>/specs/`, when they still parse, for spec and requirement titles;
//! - `eval/strength.json` ([`STRENGTH_JSON`]), the holdout's strength on the merged build, or
//!   `eval/strength.error` ([`STRENGTH_ERROR`]): the report shows the figure and its survivors,
//!   and the gate's `min_strength` rules are judged on it (only when it measured main's last
//!   commit; any other build, or none, is insufficient evidence).
//!
//! - `eval/coverage.json` ([`COVERAGE_JSON`]): the holdout's coverage (scenario id →
//!   requirement ids, no scenario text), frozen from the holdout's scenario files when the
//!   report is first written ([`write_run_report`], at the end of `lightsout run`). It gives each
//!   requirement its scenario ids and the orphan lists.
//!
//! Failed attempts at the `policy` or `guards` stage become incidents at the top of the page.

use crate::ReportError as Error;
use crate::{
    self as report, AgentKind, AgentLabel, FailureRecord, GateOutcome, GateVerdict, Incident,
    IncidentKind, RequirementOutcome, RunReport, Satisfaction, SpecRef, TaskOutcome,
};
use lightsout_eval::HoldoutCoverage;
use lightsout_eval::{GateStatus, RunResult};
use lightsout_journal::state::{AttemptRecord, RunState, TaskPhase, TaskState};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// File name of the holdout's strength report (`lightsout_eval::StrengthReport`) in a run's
/// `eval/` directory, written by `lightsout run` after the last merge or by `lightsout strength
/// --report RUN`. `eval/` is hidden from agents: the report names surviving mutants.
pub const STRENGTH_JSON: &str = "strength.json";
/// File name of why the holdout's strength could not be measured, beside [`STRENGTH_JSON`].
pub const STRENGTH_ERROR: &str = "strength.error";

/// File name of the holdout's coverage (`lightsout_eval::HoldoutCoverage`: scenario ids and the
/// requirement ids each satisfies) in a run's `eval/` directory.
pub const COVERAGE_JSON: &str = "coverage.json";

/// The directory of run `run_id`: `<repo>/.lightsout/runs/<run_id>`.
pub fn run_dir(repo: &Path, run_id: &str) -> PathBuf {
    repo.join(".lightsout").join("runs").join(run_id)
}

/// One holdout evaluation file of the run.
struct EvalFile {
    task: String,
    /// `candidate` (the task's branch) or `merged` (the merged result, with every requirement
    /// already on main as the regression bucket).
    stage: String,
    result: RunResult,
}

/// Builds the outcome report of run `run_id` in repository `repo` (see the module docs for the
/// sources). Evaluation files that cannot be read (a newer schema, a torn file from a killed
/// process) are skipped and named in the gate reasons.
///
/// # Errors
/// [`Error::UnknownRun`] when the run id is not a plain name or has no journal;
/// [`Error::JournalEntry`]/[`Error::Io`] when the journal cannot be read.
pub fn build_report(repo: &Path, run_id: &str) -> Result<RunReport, Error> {
    if run_id.is_empty()
        || run_id.starts_with('.')
        || run_id.contains(['/', '\\'])
        || !run_dir(repo, run_id).join("journal.jsonl").is_file()
    {
        return Err(Error::UnknownRun(run_id.to_owned()));
    }
    let dir = run_dir(repo, run_id);
    let entries = lightsout_journal::read(&dir.join("journal.jsonl"))?;
    let state = RunState::replay(&entries);
    let (evals, unreadable) = read_evals(&dir.join("eval"))?;
    let specs = load_specs(repo, &state);
    let strength = read_strength(&dir.join("eval"), &state);
    let coverage = std::fs::read(dir.join("eval").join(COVERAGE_JSON))
        .ok()
        .and_then(|b| serde_json::from_slice::<HoldoutCoverage>(&b).ok());
    let mut report = assemble(&state, &evals, &unreadable, &specs, &strength);
    trace(&mut report, &specs, coverage.as_ref());
    load_memory(repo, &mut report);
    Ok(report)
}

/// Writes `eval/coverage.json` of run `run_id` from the holdout's scenario files, unless it
/// is there already (the coverage the run was judged with stays as it was). Best effort: no
/// holdout directory (`holdout_dir` gives `None`) or no scenario files leave the coverage unknown.
fn freeze_coverage(
    repo: &Path,
    run_id: &str,
    holdout_dir: impl FnOnce() -> Option<PathBuf>,
) -> Result<(), Error> {
    let path = run_dir(repo, run_id).join("eval").join(COVERAGE_JSON);
    if path.exists() {
        return Ok(());
    }
    let Some(dir) = holdout_dir() else {
        return Ok(());
    };
    let Ok(Some(coverage)) = HoldoutCoverage::of_dir(&dir) else {
        return Ok(());
    };
    let bytes = serde_json::to_vec_pretty(&coverage).map_err(|e| Error::Journal {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
    }
    lightsout_journal::write_atomic(&path, &bytes).map_err(Error::from)
}

/// The requirement id without its `spec#` qualifier.
fn bare(id: &str) -> &str {
    id.rsplit_once('#').map_or(id, |(_, r)| r)
}

/// Links each requirement to its scenario ids and the gate's reasons that name it, and lists
/// the orphans both ways.
fn trace(report: &mut RunReport, specs: &Specs, coverage: Option<&HoldoutCoverage>) {
    let covered: BTreeSet<String> = coverage
        .map(HoldoutCoverage::requirements)
        .unwrap_or_default();
    for q in &mut report.requirements {
        if let Some(c) = coverage {
            for s in c.scenarios_of(bare(&q.id)) {
                if !q.scenario_ids.contains(&s) {
                    q.scenario_ids.push(s);
                }
            }
        }
        q.scenario_ids.sort();
        let id = q.id.as_str();
        q.gate_reasons = report
            .gate
            .reasons
            .iter()
            .filter(|r| names(r, id) || names(r, bare(id)))
            .cloned()
            .collect();
    }
    let o = &mut report.orphans;
    o.coverage_known = coverage.is_some();
    o.tasks_without_requirements = report
        .tasks
        .iter()
        .filter(|t| t.requirements.is_empty())
        .map(|t| t.id.clone())
        .collect();
    let Some(c) = coverage else {
        return;
    };
    let mut built: Vec<&str> = specs.built.iter().map(String::as_str).collect();
    for q in &report.requirements {
        if !built.contains(&q.id.as_str()) {
            built.push(&q.id);
        }
    }
    o.requirements_without_scenarios = built
        .into_iter()
        .filter(|id| !covered.contains(bare(id)))
        .map(str::to_owned)
        .collect();
    let known: BTreeSet<&str> = specs
        .all
        .iter()
        .map(|id| bare(id))
        .chain(report.requirements.iter().map(|q| bare(&q.id)))
        .collect();
    for (scenario, reqs) in &c.scenarios {
        let unknown: Vec<String> = reqs
            .iter()
            .filter(|r| !known.contains(r.as_str()))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            o.scenarios_with_unknown_requirements
                .push(report::UnknownRequirementRef {
                    scenario: scenario.clone(),
                    requirements: unknown,
                });
        }
    }
}

/// Whether gate reason `r` is about requirement `id` (`REQ-1: ...`, or `REQ-1` as a word).
fn names(r: &str, id: &str) -> bool {
    r.match_indices(id).any(|(i, _)| {
        let before = r[..i].chars().next_back();
        let after = r[i + id.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_');
        !word(before) && !word(after)
    })
}

/// Builds the report of run `run_id` ([`build_report`]) and writes `report.json` and
/// `report.html` into its run directory atomically; returns their paths, JSON first.
/// `holdout_dir` gives the holdout directory (`lightsout.toml`'s `[holdout] path` or
/// `LIGHTSOUT_HOLDOUT`); it is called only when the coverage is not frozen yet.
///
/// # Errors
/// Those of [`build_report`], and [`Error::Report`] when a file cannot be written.
pub fn write_run_report(
    repo: &Path,
    run_id: &str,
    holdout_dir: impl FnOnce() -> Option<PathBuf>,
) -> Result<(PathBuf, PathBuf), Error> {
    if run_dir(repo, run_id).join("journal.jsonl").is_file()
        && lightsout_core::valid_task_id(run_id)
    {
        freeze_coverage(repo, run_id, holdout_dir)?;
    }
    let report = build_report(repo, run_id)?;
    report::write_report(&run_dir(repo, run_id), &report)
}

/// What the run directory says about the holdout's strength: the report when there is one,
/// and the evidence the `min_strength` rules are judged on.
struct Strength {
    report: Option<lightsout_eval::StrengthReport>,
    evidence: lightsout_eval::StrengthEvidence,
}

fn read_strength(eval_dir: &Path, state: &RunState) -> Strength {
    use lightsout_eval::StrengthEvidence;
    let path = eval_dir.join(STRENGTH_JSON);
    let missing = |why: String| Strength {
        report: None,
        evidence: StrengthEvidence::Missing(why),
    };
    if path.is_file() {
        let report = match lightsout_eval::StrengthReport::read(&path) {
            Ok(r) => r,
            Err(e) => return missing(format!("could not be read: {e}")),
        };
        let head = &state.main_head;
        let evidence = match report.build.as_deref() {
            Some(b) if b == head => StrengthEvidence::of(&report),
            Some(b) => StrengthEvidence::Missing(format!(
                "was measured on {b}, not on the run's merged main {head}"
            )),
            None => StrengthEvidence::Missing(format!(
                "was measured on a build of unknown commit, not on the run's merged main {head}"
            )),
        };
        return Strength {
            report: Some(report),
            evidence,
        };
    }
    if let Ok(why) = std::fs::read_to_string(eval_dir.join(STRENGTH_ERROR)) {
        return missing(first_line(&why));
    }
    let all_merged = state.tasks[..state.planned.min(state.tasks.len())]
        .iter()
        .all(|t| t.status == TaskPhase::Merged);
    missing(if all_merged {
        format!(
            "not measured; measure it with `lightsout strength --report {}` in the merged checkout",
            state.run_id
        )
    } else {
        "not measured: not every task merged".to_owned()
    })
}

/// Reads the evaluations in `eval/`, oldest first by (modification time, name): the engine's
/// `<task>-<attempt>-<stage>.json` files and, for a `[holdout] command` runner such as the
/// examples' `run.sh`, the `*.json` result documents in its `<task>-<attempt>-<stage>.<random>/`
/// directories. Returns the readable ones and the names of the unreadable ones.
fn read_evals(dir: &Path) -> Result<(Vec<EvalFile>, Vec<String>), Error> {
    let mut found: Vec<(std::time::SystemTime, PathBuf, String)> = Vec::new();
    for (path, is_dir) in list(dir)? {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if is_dir {
            // `<task>-<attempt>-<stage>.<random>`; task ids may contain '.' themselves.
            let Some((stem, _)) = name.rsplit_once('.') else {
                continue;
            };
            for (inner, inner_dir) in list(&path)? {
                if !inner_dir && inner.extension().and_then(|e| e.to_str()) == Some("json") {
                    found.push((mtime(&inner), inner, stem.to_owned()));
                }
            }
        } else if name == STRENGTH_JSON {
            // The strength report, not a holdout evaluation.
        } else if let Some(stem) = name.strip_suffix(".json") {
            found.push((mtime(&path), path.clone(), stem.to_owned()));
        }
    }
    found.sort();
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    for (_, path, stem) in found {
        // `<task>-<attempt>-<stage>`; task ids may contain '-', so split from the right.
        let mut parts = stem.rsplitn(3, '-');
        let (Some(stage), Some(_attempt), Some(task)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        match RunResult::read(&path) {
            Ok(result) => files.push(EvalFile {
                task: task.to_owned(),
                stage: stage.to_owned(),
                result,
            }),
            Err(_) => unreadable.push(
                path.strip_prefix(dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned(),
            ),
        }
    }
    Ok((files, unreadable))
}

/// The entries of `dir` with whether each is a directory; empty when `dir` does not exist.
fn list(dir: &Path) -> Result<Vec<(PathBuf, bool)>, Error> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read dir", dir, e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io("read dir", dir, e))?;
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        out.push((entry.path(), is_dir));
    }
    Ok(out)
}

fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
}

/// What the specs under `<repo>/specs/` say, best effort.
#[derive(Default)]
struct Specs {
    /// The specs this run built.
    refs: Vec<SpecRef>,
    /// Requirement id → title, of the specs this run built.
    titles: BTreeMap<String, String>,
    /// Requirement ids of the specs this run built, in spec order.
    built: Vec<String>,
    /// Requirement ids of every spec under `specs/` (a shared holdout also covers specs
    /// built by other runs).
    all: BTreeSet<String>,
}

/// Spec metadata and requirement titles from `<repo>/specs/`, best effort.
fn load_specs(repo: &Path, state: &RunState) -> Specs {
    let wanted: BTreeSet<&str> = state
        .tasks
        .iter()
        .map(|t| t.task.spec_id.as_str())
        .collect();
    let mut out = Specs::default();
    let Ok(files) = lightsout_spec::discover(&repo.join("specs")) else {
        return out;
    };
    for f in files {
        let Ok((spec, _, _)) = lightsout_spec::read(&f, None) else {
            continue;
        };
        out.all
            .extend(spec.requirements.iter().map(|r| r.id.clone()));
        if !wanted.contains(spec.meta.id.as_str()) {
            continue;
        }
        for r in &spec.requirements {
            out.titles.insert(r.id.clone(), r.title.clone());
            out.built.push(r.id.clone());
        }
        out.refs.push(SpecRef {
            id: spec.meta.id.clone(),
            title: spec.meta.title.clone(),
            version: spec.meta.version.unwrap_or(1),
            path: f
                .strip_prefix(repo)
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
        });
    }
    out
}

/// Decisions and lessons of `.lightsout/memory.db` that belong to this run: recorded by it
/// (provenance run) or about its specs (decisions) or requirements (lessons). Best effort: a
/// missing or unreadable database leaves both lists empty.
fn load_memory(repo: &Path, report: &mut RunReport) {
    use lightsout_memory::{Filter, Kind, Memory, Status};
    let path = repo.join(".lightsout").join("memory.db");
    if !path.is_file() {
        return;
    }
    let Ok(mem) = Memory::open(&path) else {
        return;
    };
    let Ok(records) = mem.list(
        Filter::Current {
            statuses: Vec::new(),
        },
        &[Kind::Decision, Kind::Lesson],
    ) else {
        return;
    };
    let run = Some(report.run_id.as_str());
    for r in records {
        let p = &r.provenance;
        let this_run = p.run.as_deref() == run;
        if r.kind == Kind::Decision {
            let about = p
                .spec
                .as_deref()
                .is_some_and(|s| report.specs.iter().any(|x| x.id == s));
            let status = match r.status {
                Status::Proposed => report::DecisionStatus::Proposed,
                Status::Accepted => report::DecisionStatus::Accepted,
                Status::Superseded => report::DecisionStatus::Superseded,
                _ => continue,
            };
            if this_run || about {
                report.decisions.push(report::DecisionRecord {
                    id: format!("D-{}", r.id),
                    // A title cut from the decision itself is not repeated.
                    text: first_line(&if r.decision.starts_with(r.title.trim_end_matches('…')) {
                        r.decision.clone()
                    } else {
                        format!("{}: {}", r.title, r.decision)
                    }),
                    status,
                    supersedes: r.supersedes.map(|i| format!("D-{i}")),
                    source: p.run.clone().or_else(|| p.spec.clone()).unwrap_or_default(),
                });
            }
        } else {
            let about = p
                .requirement
                .as_deref()
                .is_some_and(|q| report.requirements.iter().any(|x| x.id == q));
            if this_run || about {
                // The task that built the requirement (the last one, after any conflict rework).
                let task = p.requirement.as_deref().and_then(|q| {
                    report
                        .requirements
                        .iter()
                        .find(|x| x.id == q)
                        .and_then(|x| x.tasks.last().cloned())
                });
                report.lessons.push(report::LessonRecord {
                    fingerprint: r.external_key.clone().unwrap_or_else(|| r.id.to_string()),
                    text: first_line(&r.title),
                    requirement: p.requirement.clone(),
                    task,
                });
            }
        }
    }
}

/// An RFC 3339 time, to the whole second (the page shows it as written).
fn parse_time(s: &str) -> Option<OffsetDateTime> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    t.replace_nanosecond(0).ok()
}

fn label(a: &AttemptRecord) -> AgentLabel {
    // The factory labels an agent `<profile> (<preset>)`; the report shows the kind itself.
    let name = match a.agent.split_once(" (") {
        Some((profile, rest)) if a.replay && rest == "replay)" => profile.to_owned(),
        _ => a.agent.clone(),
    };
    AgentLabel {
        name,
        kind: if a.replay {
            AgentKind::Replay
        } else {
            AgentKind::Command
        },
        detail: None,
    }
}

/// The run's agent: the one agent used, or the list of them.
fn run_agent(state: &RunState) -> AgentLabel {
    let mut seen: Vec<AgentLabel> = Vec::new();
    for a in state.tasks.iter().flat_map(|t| &t.attempts) {
        let l = label(a);
        if !seen.contains(&l) {
            seen.push(l);
        }
    }
    match seen.len() {
        0 => AgentLabel {
            name: "none".into(),
            kind: AgentKind::Other,
            detail: Some("no attempt was made".into()),
        },
        1 => seen.remove(0),
        _ => AgentLabel {
            name: seen
                .iter()
                .map(|l| l.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            kind: if seen.iter().all(AgentLabel::is_replay) {
                AgentKind::Replay
            } else {
                AgentKind::Other
            },
            detail: None,
        },
    }
}

fn task_status(t: &TaskState) -> report::TaskStatus {
    match t.status {
        TaskPhase::Merged if t.unchanged.is_some() => report::TaskStatus::Unchanged,
        TaskPhase::Merged => report::TaskStatus::Merged,
        TaskPhase::Failed => report::TaskStatus::Failed,
        TaskPhase::Blocked => report::TaskStatus::Blocked,
        TaskPhase::Rerouted => report::TaskStatus::Conflict,
        _ if t.reverts > 0 => report::TaskStatus::Reverted,
        _ => report::TaskStatus::Pending,
    }
}

fn task_outcome(t: &TaskState, run_agent: &AgentLabel) -> TaskOutcome {
    let mut depends_on = t.task.depends_on.clone();
    if let Some(p) = &t.parent
        && !depends_on.contains(p)
    {
        depends_on.push(p.clone());
    }
    TaskOutcome {
        id: t.task.id.clone(),
        title: t.task.title.clone(),
        requirements: t.task.requirement_ids.clone(),
        agent: t.attempts.last().map_or_else(|| run_agent.clone(), label),
        attempts: u32::try_from(t.attempts.len()).unwrap_or(u32::MAX),
        tokens_in: t.attempts.iter().map(|a| a.usage.input_tokens).sum(),
        tokens_out: t.attempts.iter().map(|a| a.usage.output_tokens).sum(),
        cost_usd: t.cost_usd(),
        wall_ms: t.attempts.iter().map(|a| a.usage.wall_ms).sum(),
        merge_commit: t.merge_commit.clone(),
        history: t
            .attempts
            .iter()
            .map(|a| report::AttemptTrace {
                attempt: a.attempt,
                passed: a.passed,
                failed_stage: a.failed_stage.map(|s| s.as_str().to_owned()),
                commit: a.commit.clone(),
            })
            .collect(),
        status: task_status(t),
        depends_on,
        wave: None,
    }
}

/// The first non-empty line of `s`, at most 300 characters.
fn first_line(s: &str) -> String {
    let line = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    line.chars().take(300).collect()
}

fn requirement_outcome(
    id: &str,
    state: &RunState,
    evals: &[EvalFile],
    titles: &BTreeMap<String, String>,
) -> RequirementOutcome {
    let covering: Vec<&TaskState> = state
        .tasks
        .iter()
        .filter(|t| t.task.requirement_ids.iter().any(|r| r == id))
        .collect();
    // The latest evaluation whose scenarios cover the requirement.
    let latest = evals.iter().rev().find(|e| {
        e.result
            .scenarios
            .iter()
            .any(|s| s.satisfies.iter().any(|r| r == id))
    });
    let (mut passes, mut trials, mut scenarios, mut flaky) = (0u32, 0u32, 0u32, false);
    let mut scenario_ids: Vec<String> = Vec::new();
    if let Some(e) = latest {
        for s in e
            .result
            .scenarios
            .iter()
            .filter(|s| s.satisfies.iter().any(|r| r == id))
        {
            if !scenario_ids.contains(&s.id) {
                scenario_ids.push(s.id.clone());
            }
            passes = passes.saturating_add(s.stats.passes);
            trials = trials.saturating_add(s.stats.trials);
            scenarios += 1;
            flaky |= s.stats.flaky;
        }
    }
    let mut failures = Vec::new();
    for t in &covering {
        for a in t.attempts.iter().filter(|a| !a.passed) {
            failures.push(FailureRecord {
                task: t.task.id.clone(),
                attempt: a.attempt,
                category: a
                    .failed_stage
                    .map_or_else(|| "unknown".into(), |s| s.as_str().to_owned()),
                feedback: a.feedback.clone().unwrap_or_default(),
            });
        }
    }
    RequirementOutcome {
        id: id.to_owned(),
        title: titles.get(id).cloned().unwrap_or_else(|| {
            covering
                .first()
                .map_or_else(|| id.to_owned(), |t| t.task.title.clone())
        }),
        satisfaction: Satisfaction::from_counts(passes, trials),
        flaky,
        attempts: u32::try_from(covering.iter().map(|t| t.attempts.len()).sum::<usize>())
            .unwrap_or(u32::MAX),
        scenarios,
        scenario_ids,
        tasks: covering.iter().map(|t| t.task.id.clone()).collect(),
        gate_reasons: Vec::new(),
        failures,
    }
}

/// The run's verdict. The gate of the latest evaluation of a merged result (it ran on main's
/// final content, every merged requirement in its regression bucket) decides, or of the latest
/// evaluation when nothing merged; every planned task must also be merged, every requirement
/// have holdout trials, and the run's `min_strength` rules hold on the holdout's strength measured
/// on main's last commit (`strength`). Earlier evaluations are history (the per-requirement failures), not the
/// verdict: a task evaluated before its dependencies merged fails their scenarios by design.
fn gate(
    state: &RunState,
    requirements: &[RequirementOutcome],
    evals: &[EvalFile],
    unreadable: &[String],
    strength: &lightsout_eval::StrengthEvidence,
) -> GateVerdict {
    let mut reasons = Vec::new();
    let mut failed = false;
    for name in unreadable {
        reasons.push(format!(
            "evaluation file eval/{name} could not be read; skipped"
        ));
    }
    let Some(last) = evals
        .iter()
        .rev()
        .find(|e| e.stage == "merged")
        .or_else(|| evals.last())
    else {
        let planned = &state.tasks[..state.planned.min(state.tasks.len())];
        if !planned.is_empty() && planned.iter().all(|t| t.unchanged.is_some()) {
            reasons.push(
                "every task is unchanged since an earlier run (same input keys, work on main): \
                 nothing was built, so nothing was judged; the earlier runs' reports hold their \
                 verdicts"
                    .into(),
            );
        } else {
            reasons.push("no holdout evaluation ran in this run; configure [holdout] path".into());
        }
        return GateVerdict {
            outcome: GateOutcome::NotEvaluated,
            reasons,
            policy: Vec::new(),
        };
    };
    for t in &state.tasks[..state.planned.min(state.tasks.len())] {
        if t.status != TaskPhase::Merged {
            failed = true;
            let id = &t.task.id;
            reasons.push(t.failure.as_deref().map_or_else(
                || format!("{id}: not merged ({})", task_status(t).as_str()),
                |f| format!("{id}: not merged: {}", first_line(f)),
            ));
        }
    }
    for q in requirements.iter().filter(|q| q.satisfaction.trials == 0) {
        failed = true;
        reasons.push(format!("{}: no holdout trial ran for it", q.id));
    }
    let context = format!("final evaluation ({} {})", last.task, last.stage);
    let mut insufficient = false;
    let strength_reasons = state.policy.evaluate_strength(strength);
    for r in &strength_reasons {
        match r.status {
            GateStatus::Passed => {}
            GateStatus::Failed => {
                failed = true;
                reasons.push(format!("{}: {}", r.rule, r.detail));
            }
            GateStatus::InsufficientEvidence => {
                insufficient = true;
                reasons.push(format!("insufficient evidence: {}: {}", r.rule, r.detail));
            }
        }
    }
    for r in &last.result.gate.reasons {
        match r.status {
            GateStatus::Passed => {}
            GateStatus::Failed => {
                failed = true;
                reasons.push(format!("{context}: {}: {}", r.rule, r.detail));
            }
            GateStatus::InsufficientEvidence => {
                insufficient = true;
                reasons.push(format!(
                    "{context}: insufficient evidence: {}: {}",
                    r.rule, r.detail
                ));
            }
        }
    }
    if !failed && !insufficient && !last.result.gate.passed {
        // A document that says "not passed" without a failing reason (an older writer).
        failed = true;
        reasons.push(format!("{context}: the gate did not pass"));
    }
    if failed || insufficient {
        GateVerdict {
            outcome: if failed {
                GateOutcome::Fail
            } else {
                GateOutcome::InsufficientEvidence
            },
            reasons,
            policy: Vec::new(),
        }
    } else {
        reasons.extend(
            last.result
                .gate
                .reasons
                .iter()
                .chain(&strength_reasons)
                .map(|r| format!("held: {} ({})", r.rule, r.detail)),
        );
        GateVerdict {
            outcome: GateOutcome::Pass,
            reasons,
            policy: Vec::new(),
        }
    }
}

fn incidents(state: &RunState) -> Vec<Incident> {
    let mut out = Vec::new();
    for t in &state.tasks {
        for a in &t.attempts {
            let kind = match a.failed_stage.as_deref() {
                Some("leak")
                    if a.feedback
                        .as_deref()
                        .map(lightsout_core::LeakClass::of_reason)
                        == Some(lightsout_core::LeakClass::Canary) =>
                {
                    IncidentKind::CanaryLeak
                }
                Some("leak") => IncidentKind::VerbatimLeak,
                Some("policy") => IncidentKind::PolicyViolation,
                Some("guards") => IncidentKind::GuardViolation,
                _ => continue,
            };
            out.push(Incident {
                kind,
                task: Some(t.task.id.clone()),
                location: format!("attempt {}", a.attempt),
                detail: first_line(a.feedback.as_deref().unwrap_or(&a.summary)),
            });
        }
    }
    out
}

fn assemble(
    state: &RunState,
    evals: &[EvalFile],
    unreadable: &[String],
    specs: &Specs,
    strength: &Strength,
) -> RunReport {
    let agent = run_agent(state);
    let started = parse_time(&state.started_at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut r = RunReport::new(state.run_id.clone(), started, agent.clone());
    r.finished = state.finished_at.as_deref().and_then(parse_time);
    r.specs.clone_from(&specs.refs);
    let mut req_ids: Vec<&str> = Vec::new();
    for t in &state.tasks {
        for id in &t.task.requirement_ids {
            if !req_ids.contains(&id.as_str()) {
                req_ids.push(id);
            }
        }
    }
    r.requirements = req_ids
        .iter()
        .map(|id| requirement_outcome(id, state, evals, &specs.titles))
        .collect();
    r.tasks = state
        .tasks
        .iter()
        .map(|t| task_outcome(t, &agent))
        .collect();
    r.gate = gate(
        state,
        &r.requirements,
        evals,
        unreadable,
        &strength.evidence,
    );
    r.strength = strength.report.as_ref().map(strength_outcome);
    r.gate.policy = policy_refs(&state.policy);
    r.not_ready.clone_from(&state.not_ready);
    r.incidents = incidents(state);
    r.weakened = weakened(&req_ids, evals);
    r.variant_choices = state
        .variant_choices
        .as_ref()
        .map(|c| report::VariantChoices {
            seed: c.seed,
            attempts_seen: u64::try_from(c.attempts_seen).unwrap_or(u64::MAX),
            exploration_allowed: c.exploration_allowed,
            choices: c
                .choices
                .iter()
                .map(|v| report::VariantChoiceRecord {
                    task: v.task_id.clone(),
                    kind: v.kind.clone(),
                    variant: v.variant.clone(),
                    default: v.default.clone(),
                    mode: v.mode().to_owned(),
                    reason: serde_json::to_value(v.reason)
                        .ok()
                        .and_then(|r| r.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    posterior_means: v.posterior_means.clone(),
                    sampled: v
                        .draws
                        .iter()
                        .map(|d| (d.variant.clone(), d.pass))
                        .collect(),
                    benched: v.benched.clone(),
                    explanation: v.explanation.clone(),
                })
                .collect(),
        });
    r
}

/// Per requirement of the run, the evidence of its latest evaluation (the one its satisfaction
/// comes from) that rests on a twin that is not fresh: the twin's state as the twin reported it
/// when that evaluation ran (`lightsout_eval::twins`), for either judge (the engine's result
/// documents and a runner's alike).
fn weakened(req_ids: &[&str], evals: &[EvalFile]) -> Vec<report::WeakenedEvidence> {
    let mut out = Vec::new();
    for id in req_ids {
        let latest = evals.iter().rev().find(|e| {
            e.result
                .scenarios
                .iter()
                .any(|s| s.satisfies.iter().any(|r| r == id))
        });
        let Some(e) = latest else { continue };
        for w in e.result.weakened() {
            if w.requirement == *id {
                out.push(report::WeakenedEvidence {
                    requirement: w.requirement,
                    twin: w.twin.name,
                    state: w.twin.state.as_str().to_owned(),
                    since: w.twin.since,
                    reason: w.twin.reason,
                    scenarios: w.scenarios,
                });
            }
        }
    }
    out
}

/// The report's view of a strength report: the kill rate with its Wilson interval, the counts
/// and the surviving mutants.
fn strength_outcome(r: &lightsout_eval::StrengthReport) -> report::StrengthOutcome {
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    report::StrengthOutcome {
        tool: r.tool_version.clone(),
        build: r.build.clone(),
        killed: Satisfaction::from_counts(n(r.total - r.survived.min(r.total)), n(r.total)),
        timeouts: n(r.timeouts),
        broken: n(r.broken),
        generated: n(r.generated),
        equivalent: n(r.equivalent.len()),
        sample_seed: r.sample_seed,
        trials: r.trials,
        duration_ms: r.duration_ms.max(0.0).round() as u64,
        survivors: r
            .survivors()
            .map(|m| report::SurvivorRecord {
                file: m.mutant.file.clone(),
                line: m.mutant.line,
                operator: m.mutant.operator.clone(),
                occurrence: m.mutant.occurrence,
            })
            .collect(),
    }
}

/// The resolved policy's rules as the report lists them.
fn policy_refs(policy: &lightsout_eval::GatePolicy) -> Vec<report::PolicyRuleRef> {
    policy
        .rules
        .iter()
        .map(|r| report::PolicyRuleRef {
            rule: lightsout_eval::gate::rule_label(r),
            source: r.source.clone().unwrap_or_else(|| "unknown".to_owned()),
            trials: lightsout_eval::gate::rule_min_trials(r),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightsout_agent::{Outcome, Usage};
    use lightsout_eval::stats::{Sequential, TrialStats};
    use lightsout_eval::{CheckKind, GateReason, GateStatus, ScenarioResult, Summary};
    use lightsout_journal::{Entry, Journal, Plan, Task};

    fn task(id: &str, reqs: &[&str], deps: &[&str]) -> Task {
        Task {
            id: id.into(),
            title: format!("build {id}"),
            spec_id: "shortener".into(),
            requirement_ids: reqs.iter().map(|s| (*s).to_owned()).collect(),
            depends_on: deps.iter().map(|s| (*s).to_owned()).collect(),
            ..Task::default()
        }
    }

    fn attempt(n: u32, passed: bool, stage: Option<&str>, feedback: Option<&str>) -> AttemptRecord {
        AttemptRecord {
            attempt: n,
            agent: "replay".into(),
            replay: true,
            summary: format!("attempt {n}"),
            usage: Usage {
                input_tokens: 100,
                output_tokens: 20,
                cost_usd: Some(0.5),
                wall_ms: 40,
            },
            outcome: Outcome::Completed,
            passed,
            failed_stage: stage.map(|s| s.parse().expect("a stage word")),
            feedback: feedback.map(str::to_owned),
            commit: Some(format!("c{n}")),
            human_intervened: false,
        }
    }

    fn eval(req: &str, passes: u32, trials: u32, gate_ok: bool) -> RunResult {
        let scenario = ScenarioResult {
            id: format!("s-{req}"),
            name: format!("scenario of {req}"),
            path: PathBuf::from("x.feature"),
            satisfies: vec![req.to_owned()],
            tags: vec![],
            kind: CheckKind::Behavioural,
            guard: false,
            regression: false,
            stats: TrialStats::new(passes, trials, trials),
            stopped: Sequential::Done,
            duration_ms: 1.0,
            trials: vec![],
            stale_twins: vec![],
        };
        let scenarios = vec![scenario];
        RunResult {
            schema_version: lightsout_eval::result::SCHEMA_VERSION,
            started_at: "2026-11-27T06:00:00Z".into(),
            duration_ms: 1.0,
            target: "python3 app.py".into(),
            trials,
            max_trials: trials,
            summary: Summary::of(&scenarios),
            scenarios,
            gate: lightsout_eval::GateVerdict {
                passed: gate_ok,
                status: if gate_ok {
                    GateStatus::Passed
                } else {
                    GateStatus::Failed
                },
                reasons: vec![GateReason {
                    rule: "satisfaction >= 0.95".into(),
                    source: Some("floor".into()),
                    passed: gate_ok,
                    status: if gate_ok {
                        GateStatus::Passed
                    } else {
                        GateStatus::Failed
                    },
                    detail: "suite".into(),
                }],
            },
            policy: lightsout_eval::GatePolicy::floor(),
            twins: vec![],
        }
    }

    /// `r` with its scenarios resting on twin `slack` in `state`.
    fn on_twin(mut r: RunResult, state: lightsout_eval::TwinState) -> RunResult {
        let t = lightsout_eval::TwinEvidence {
            name: "slack".into(),
            state,
            since: Some("2026-12-07T01:00:00Z".into()),
            reason: Some("marked by hand: Slack added a field".into()),
        };
        for s in &mut r.scenarios {
            s.stale_twins.push(t.clone());
        }
        r.twins.push(t);
        r
    }

    /// A run of two tasks: T1 fails the holdout once then merges; T2 hits the policy and fails.
    fn fabricate(repo: &Path) {
        let dir = run_dir(repo, "r1");
        let mut j = Journal::open(&dir.join("journal.jsonl")).unwrap();
        let plan = Plan {
            tasks: vec![task("T1", &["REQ-1"], &[]), task("T2", &["REQ-2"], &["T1"])],
        };
        let entries = [
            Entry::RunStarted {
                run_id: "r1".into(),
                at: "2026-11-27T06:00:00Z".into(),
                main: "main".into(),
                base: "b0".into(),
                plan,
                policy: lightsout_eval::GatePolicy::resolve([]).unwrap(),
                not_ready: vec![],
                strength: false,
            },
            Entry::AttemptFinished {
                task: "T1".into(),
                record: attempt(
                    1,
                    false,
                    Some("holdout"),
                    Some("REQ-1: 1 of 3 trials failed"),
                ),
            },
            Entry::AttemptFinished {
                task: "T1".into(),
                record: attempt(2, true, None, None),
            },
            Entry::Merged {
                task: "T1".into(),
                commit: "m1".into(),
            },
            Entry::AttemptFinished {
                task: "T2".into(),
                record: attempt(1, false, Some("policy"), Some("wrote outside the worktree")),
            },
            Entry::TaskFailed {
                task: "T2".into(),
                reason: "policy: wrote outside the worktree".into(),
            },
            Entry::RunFinished {
                at: "2026-11-27T06:01:30Z".into(),
            },
        ];
        for e in &entries {
            j.append(e).unwrap();
        }
        let ev = dir.join("eval");
        std::fs::create_dir_all(&ev).unwrap();
        let write = |name: &str, r: &RunResult| {
            std::fs::write(ev.join(name), serde_json::to_vec(r).unwrap()).unwrap();
        };
        // An older evaluation of REQ-1 against a suspect twin: not the one that counts.
        write(
            "T1-1-candidate.json",
            &on_twin(
                eval("REQ-1", 2, 3, false),
                lightsout_eval::TwinState::Suspect,
            ),
        );
        // Make the order by modification time unambiguous.
        let old = std::fs::File::options()
            .write(true)
            .open(ev.join("T1-1-candidate.json"))
            .unwrap();
        old.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        write("T1-2-merged.json", &eval("REQ-1", 5, 5, true));
        std::fs::write(ev.join("T1-3-merged.json"), "{torn").unwrap();
        // A `[holdout] command` runner's layout: a directory per evaluation.
        let sub = ev.join("T2-1-candidate.x1Y2z3");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            sub.join("holdout-result.json"),
            serde_json::to_vec(&on_twin(
                eval("REQ-2", 1, 4, false),
                lightsout_eval::TwinState::Drifted,
            ))
            .unwrap(),
        )
        .unwrap();
        std::fs::write(sub.join("eval.err"), "").unwrap();
    }

    /// A strength report of `killed` of `total` mutants, measured on `build`.
    fn strength_json(killed: usize, total: usize, build: &str) -> String {
        let w = lightsout_eval::stats::wilson95(
            u32::try_from(killed).unwrap(),
            u32::try_from(total).unwrap(),
        );
        let survivors: Vec<serde_json::Value> = (0..total - killed)
            .map(|i| {
                serde_json::json!({"file": "app.py", "line": 10 + i, "operator": "core/AddNot",
                    "occurrence": 0, "status": "survived", "duration_ms": 1.0})
            })
            .collect();
        serde_json::json!({
            "schema_version": 1, "tool": "cosmic-ray", "tool_version": "cosmic-ray, version 8.7.0",
            "generated": total, "equivalent": [], "sample_seed": null, "total": total,
            "killed": killed, "broken": 0, "timeouts": 0, "survived": total - killed,
            "not_applied": 0, "kill_rate": killed as f64 / total as f64,
            "wilson": {"low": w.low, "high": w.high}, "trials": 1, "timeout_ms": 30000.0,
            "baseline_ms": 1000.0, "duration_ms": 5000.0, "build": build, "mutants": survivors,
        })
        .to_string()
    }

    /// A report's satisfaction carries the very interval the gate judged with, rounded to 6
    /// decimal places and no further.
    #[test]
    fn report_satisfaction_is_the_gates_wilson_interval() {
        let round6 = |v: f64| (v * 1e6).round() / 1e6;
        for trials in 0..=200u32 {
            for passes in 0..=trials {
                let w = lightsout_eval::stats::wilson95(passes, trials);
                let s = Satisfaction::from_counts(passes, trials);
                assert_eq!(
                    (s.lower.to_bits(), s.upper.to_bits()),
                    (round6(w.low).to_bits(), round6(w.high).to_bits()),
                    "{passes} of {trials}"
                );
            }
        }
        // Counts above the trials are capped, as the gate caps them.
        assert_eq!(
            Satisfaction::from_counts(7, 5),
            Satisfaction::from_counts(5, 5)
        );
    }

    #[test]
    fn min_strength_is_judged_on_the_strength_of_the_merged_main_only() {
        let repo = tempfile::tempdir().unwrap();
        fabricate(repo.path());
        // T1 only (merged at m1), with a spec rule asking for strength.
        let dir = run_dir(repo.path(), "r1");
        let entries = lightsout_journal::read(&dir.join("journal.jsonl")).unwrap();
        std::fs::remove_file(dir.join("journal.jsonl")).unwrap();
        let mut j = Journal::open(&dir.join("journal.jsonl")).unwrap();
        let rule = lightsout_eval::GatePolicy::from_toml("[[rule]]\nmin_strength = 0.6\n").unwrap();
        for e in entries {
            let e = match e {
                Entry::RunStarted {
                    run_id,
                    at,
                    main,
                    base,
                    mut plan,
                    not_ready,
                    ..
                } => {
                    plan.tasks.truncate(1);
                    Entry::RunStarted {
                        run_id,
                        at,
                        main,
                        base,
                        plan,
                        policy: lightsout_eval::GatePolicy::resolve([
                            lightsout_eval::PolicyLayer::new("spec specs/x.md:9", rule.clone()),
                        ])
                        .unwrap(),
                        not_ready,
                        strength: false,
                    }
                }
                other => other,
            };
            j.append(&e).unwrap();
        }
        std::fs::remove_file(dir.join("eval").join("T1-3-merged.json")).unwrap();
        let strength = dir.join("eval").join(STRENGTH_JSON);

        let r = build_report(repo.path(), "r1").unwrap();
        assert_eq!(
            r.gate.outcome,
            GateOutcome::InsufficientEvidence,
            "{:?}",
            r.gate
        );
        assert!(r.gate.reasons.join("\n").contains("not measured"));
        assert!(r.strength.is_none());

        // 10 of 10 killed on main's last commit: lower bound 0.72 >= 0.6.
        std::fs::write(&strength, strength_json(10, 10, "m1")).unwrap();
        let r = build_report(repo.path(), "r1").unwrap();
        assert_eq!(r.gate.outcome, GateOutcome::Pass, "{:?}", r.gate);
        let st = r.strength.as_ref().unwrap();
        assert_eq!((st.killed.passes, st.killed.trials), (10, 10));
        assert_eq!(st.build.as_deref(), Some("m1"));

        // The same figure for another build is no evidence about this one.
        std::fs::write(&strength, strength_json(10, 10, "other")).unwrap();
        let r = build_report(repo.path(), "r1").unwrap();
        assert_eq!(r.gate.outcome, GateOutcome::InsufficientEvidence);
        assert!(
            r.gate
                .reasons
                .join("\n")
                .contains("not on the run's merged main m1"),
            "{:?}",
            r.gate.reasons
        );
        assert!(r.strength.is_some(), "the figure is still shown");

        // 5 of 10 killed: below the rule.
        std::fs::write(&strength, strength_json(5, 10, "m1")).unwrap();
        let r = build_report(repo.path(), "r1").unwrap();
        assert_eq!(r.gate.outcome, GateOutcome::Fail);
        assert_eq!(r.strength.as_ref().unwrap().survivors.len(), 5);

        // Why it could not be measured is the reason.
        std::fs::remove_file(&strength).unwrap();
        std::fs::write(
            dir.join("eval").join(STRENGTH_ERROR),
            "could not be measured: cosmic-ray is not installed",
        )
        .unwrap();
        let r = build_report(repo.path(), "r1").unwrap();
        assert_eq!(r.gate.outcome, GateOutcome::InsufficientEvidence);
        assert!(
            r.gate
                .reasons
                .join("\n")
                .contains("cosmic-ray is not installed")
        );
    }

    #[test]
    fn trace_links_scenarios_and_gate_reasons_and_lists_orphans_both_ways() {
        let agent = AgentLabel::replay("replay", "t");
        let mut r = RunReport::new("r", OffsetDateTime::UNIX_EPOCH, agent.clone());
        for (id, reqs) in [
            ("T1", vec!["spec#REQ-1"]),
            ("T2", vec![]),
            ("T3", vec!["REQ-10"]),
        ] {
            let ts = TaskState {
                task: task(id, &reqs, &[]),
                ..TaskState::default()
            };
            r.tasks.push(task_outcome(&ts, &agent));
        }
        for id in ["spec#REQ-1", "REQ-10"] {
            r.requirements.push(requirement_outcome(
                id,
                &RunState::default(),
                &[],
                &BTreeMap::new(),
            ));
        }
        r.gate.reasons = vec![
            "REQ-10: no holdout trial ran for it".into(),
            "final evaluation (T1 merged): REQ-1 failed 2 of 3 trials".into(),
        ];
        let specs = Specs {
            built: vec!["REQ-1".into(), "REQ-10".into(), "REQ-11".into()],
            all: ["REQ-1", "REQ-10", "REQ-11", "REQ-20"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            ..Specs::default()
        };
        let mut coverage = HoldoutCoverage::default();
        coverage
            .scenarios
            .insert("S-00000001".into(), vec!["REQ-1".into()]);
        coverage
            .scenarios
            .insert("S-00000002".into(), vec!["REQ-20".into(), "REQ-7".into()]);
        trace(&mut r, &specs, Some(&coverage));
        // A qualified id finds the scenarios of its bare id; REQ-1 is not REQ-10.
        assert_eq!(r.requirements[0].scenario_ids, ["S-00000001"]);
        assert_eq!(
            r.requirements[0].gate_reasons,
            ["final evaluation (T1 merged): REQ-1 failed 2 of 3 trials"]
        );
        assert_eq!(
            r.requirements[1].gate_reasons,
            ["REQ-10: no holdout trial ran for it"]
        );
        let o = &r.orphans;
        assert!(o.coverage_known);
        assert_eq!(o.requirements_without_scenarios, ["REQ-10", "REQ-11"]);
        // REQ-20 belongs to a spec this run did not build: known, not an orphan.
        assert_eq!(o.scenarios_with_unknown_requirements.len(), 1);
        assert_eq!(
            o.scenarios_with_unknown_requirements[0].scenario,
            "S-00000002"
        );
        assert_eq!(
            o.scenarios_with_unknown_requirements[0].requirements,
            ["REQ-7"]
        );
        assert_eq!(o.tasks_without_requirements, ["T2"]);
        assert!(!o.is_clean());

        // Without coverage nothing is claimed about scenarios.
        let mut r2 = r.clone();
        r2.orphans = report::Orphans::default();
        trace(&mut r2, &specs, None);
        assert!(!r2.orphans.coverage_known);
        assert!(r2.orphans.requirements_without_scenarios.is_empty());
        assert_eq!(r2.orphans.tasks_without_requirements, ["T2"]);
    }

    #[test]
    fn report_from_a_fabricated_run_dir() {
        let repo = tempfile::tempdir().unwrap();
        fabricate(repo.path());
        let r = build_report(repo.path(), "r1").unwrap();
        assert_eq!(r.run_id, "r1");
        assert_eq!(r.duration_ms(), Some(90_000));
        assert!(r.uses_replay());
        assert_eq!(r.agent.kind, AgentKind::Replay);

        let req1 = &r.requirements[0];
        assert_eq!(req1.id, "REQ-1");
        assert_eq!(
            req1.satisfaction,
            Satisfaction::from_counts(5, 5),
            "latest eval"
        );
        assert_eq!((req1.attempts, req1.scenarios, req1.flaky), (2, 1, false));
        assert_eq!(req1.failures.len(), 1);
        assert_eq!(req1.failures[0].category, "holdout");
        assert_eq!(req1.failures[0].feedback, "REQ-1: 1 of 3 trials failed");
        let req2 = &r.requirements[1];
        assert_eq!(
            req2.satisfaction,
            Satisfaction::from_counts(1, 4),
            "runner dir read"
        );
        assert!(req2.flaky);

        let t1 = &r.tasks[0];
        assert_eq!(t1.status, report::TaskStatus::Merged);
        assert_eq!(t1.merge_commit.as_deref(), Some("m1"));
        assert_eq!((t1.attempts, t1.tokens_in, t1.tokens_out), (2, 200, 40));
        assert!((t1.cost_usd - 1.0).abs() < 1e-9);
        assert_eq!(t1.wall_ms, 80);
        assert_eq!(r.tasks[1].status, report::TaskStatus::Failed);
        assert_eq!(r.tasks[1].depends_on, vec!["T1".to_owned()]);

        assert_eq!(r.gate.outcome, GateOutcome::Fail);
        let reasons = r.gate.reasons.join("\n");
        assert!(reasons.contains("T2: not merged: policy"), "{reasons}");
        assert!(
            reasons.contains("T1-3-merged.json could not be read"),
            "{reasons}"
        );

        assert_eq!(r.incidents.len(), 1);
        assert_eq!(r.incidents[0].kind, IncidentKind::PolicyViolation);
        assert_eq!(r.incidents[0].task.as_deref(), Some("T2"));

        // REQ-2's evidence (a runner's result document) rests on a drifted twin; REQ-1's latest
        // evaluation on none (its older one's suspect twin is history).
        assert_eq!(
            r.weakened,
            [report::WeakenedEvidence {
                requirement: "REQ-2".into(),
                twin: "slack".into(),
                state: "drifted".into(),
                since: Some("2026-12-07T01:00:00Z".into()),
                reason: Some("marked by hand: Slack added a field".into()),
                scenarios: vec!["s-REQ-2".into()],
            }]
        );
    }

    #[test]
    fn writes_both_files_and_gate_passes_when_all_merged() {
        let repo = tempfile::tempdir().unwrap();
        fabricate(repo.path());
        // Drop T2 from the story: rewrite the journal with T1 only.
        let dir = run_dir(repo.path(), "r1");
        let entries = lightsout_journal::read(&dir.join("journal.jsonl")).unwrap();
        std::fs::remove_file(dir.join("journal.jsonl")).unwrap();
        let mut j = Journal::open(&dir.join("journal.jsonl")).unwrap();
        for e in entries {
            let e = match e {
                Entry::RunStarted {
                    run_id,
                    at,
                    main,
                    base,
                    mut plan,
                    policy,
                    not_ready,
                    strength,
                } => {
                    plan.tasks.truncate(1);
                    Entry::RunStarted {
                        run_id,
                        at,
                        main,
                        base,
                        plan,
                        policy,
                        not_ready,
                        strength,
                    }
                }
                other => other,
            };
            j.append(&e).unwrap();
        }
        std::fs::remove_file(dir.join("eval").join("T1-3-merged.json")).unwrap();
        std::fs::remove_dir_all(dir.join("eval").join("T2-1-candidate.x1Y2z3")).unwrap();
        let (json, html) = write_run_report(repo.path(), "r1", || None).unwrap();
        let back = report::read_report(&json).unwrap();
        assert_eq!(back.gate.outcome, GateOutcome::Pass, "{:?}", back.gate);
        assert!(
            back.gate
                .reasons
                .iter()
                .any(|r| r == "held: satisfaction >= 0.95 (suite)")
        );
        assert!(std::fs::read_to_string(html).unwrap().contains("REQ-1"));
    }

    #[test]
    fn decisions_and_lessons_of_the_run_come_from_memory() {
        use lightsout_memory::{Kind, Memory, NewRecord};
        let repo = tempfile::tempdir().unwrap();
        fabricate(repo.path());
        let mem = Memory::open(repo.path().join(".lightsout/memory.db")).unwrap();
        let mut d = NewRecord::new(Kind::Decision, "Store links in SQLite");
        d.decision = "stdlib sqlite3, one lock".into();
        d.provenance.run = Some("r1".into());
        mem.add(d).unwrap();
        let mut other = NewRecord::new(Kind::Decision, "Unrelated decision");
        other.provenance.run = Some("another-run".into());
        mem.add(other).unwrap();
        let mut l = NewRecord::new(Kind::Lesson, "REQ-1 has failed with `holdout`");
        l.provenance.requirement = Some("REQ-1".into());
        mem.add(l).unwrap();
        drop(mem);
        let r = build_report(repo.path(), "r1").unwrap();
        assert_eq!(r.decisions.len(), 1, "{:?}", r.decisions);
        assert_eq!(
            r.decisions[0].text,
            "Store links in SQLite: stdlib sqlite3, one lock"
        );
        assert_eq!(r.decisions[0].status, report::DecisionStatus::Accepted);
        assert_eq!(r.lessons.len(), 1);
        assert_eq!(r.lessons[0].requirement.as_deref(), Some("REQ-1"));
        assert_eq!(r.lessons[0].task.as_deref(), Some("T1"));
    }

    #[test]
    fn unknown_or_unsafe_run_ids_are_refused() {
        let repo = tempfile::tempdir().unwrap();
        for id in ["nope", "", "../x", ".hidden"] {
            let err = build_report(repo.path(), id).unwrap_err();
            assert!(matches!(err, Error::UnknownRun(_)), "{id}: {err:?}");
        }
    }

    #[test]
    fn a_run_without_holdout_is_not_evaluated() {
        let repo = tempfile::tempdir().unwrap();
        fabricate(repo.path());
        std::fs::remove_dir_all(run_dir(repo.path(), "r1").join("eval")).unwrap();
        let r = build_report(repo.path(), "r1").unwrap();
        assert_eq!(r.gate.outcome, GateOutcome::NotEvaluated);
        assert_eq!(r.requirements[0].satisfaction.trials, 0);
    }
}
