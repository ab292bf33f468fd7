//! Hermetic replay of a finished run (`lightsout replay RUN`).
//!
//! **What a run records.** Every evaluation by the eval engine (`EngineEvaluator`) writes an
//! [`EvalRecord`] to `.lightsout/runs/<run>/eval/replay/<task>-<attempt>-<stage>.json`: the
//! commit it judged, the requirements and regression bucket it was asked about, each scenario's
//! verdict, the gate's verdict, and for every twin served its source, seed, virtual-clock
//! start and its *tape*: every exchange the service under test had with it, in order, across
//! the per-trial resets ([`lightsout_twin::tape`]). An evaluation by a holdout runner
//! (`[holdout] command`, [`CommandEvaluator`](crate::CommandEvaluator)) writes one too, with
//! [`Judge::Runner`]: the commit, per requirement the trials and passes the runner reported,
//! and the gate's status; no tapes, since the runner serves its own twins. `eval/` is hidden
//! from every agent and every service, so none of it reaches an agent.
//!
//! **What replay does.** It reads the journal and walks the run's evaluations in the order they
//! happened (each attempt that reached the holdout, each merge verification). For each it
//! checks the recorded commit out in a detached worktree, starts the service from it behind
//! the same fence as the run (`Fence::service_wrap`, with the holdout and the whole `eval/`
//! hidden), serves each twin from its definition with the recorded
//! seed and clock while answering every request with the recorded response, re-runs the
//! holdout with the gate policy the journal's `RunStarted` recorded, and compares in this
//! order: the twins' exchanges (the first request that differs from the tape), whether the
//! service started, each scenario's verdict, the gate's verdict, and the decision (the attempt
//! passed or failed the holdout; the merge went ahead or was reverted). It stops at the first
//! difference. Agents are never re-invoked: their work is the recorded commits.
//!
//! A runner-judged run is replayed by running the same runner on each recorded commit, with the
//! run's gate policy and the allowlisted environment, and comparing per requirement (trials and
//! passes), then the gate and the decision. This is as hermetic as the runner: it is offline
//! when the runner serves its twins on loopback (the bundled example's does), but the runner's
//! twin exchanges are not compared, only its verdicts.
//!
//! Everything replay writes goes under `eval/replays/<stamp>/` (the result documents and
//! `replay.json`), except each step's checkout of the recorded commit: the service under test
//! must not see `eval/`, so the checkout is made at `<run>/replay-work/<stamp>/<step>` (as the
//! strength measurement's copies are) and removed when its step ends. It holds only the
//! committed work of the run's own agents.

use crate::engine::{EvalTrace, TwinTapes};
use crate::git::Git;
use crate::journal::{self, Entry};
use crate::judge::{HoldoutJudge, holdout_judge};
use crate::stages::{EvalRequest, EvalStage, Verdict};
use crate::{Config, Error};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Version of the [`EvalRecord`] format.
pub const RECORD_SCHEMA: u32 = 1;

/// A twin as an evaluation served it, with its tape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwinRecord {
    /// How the twin was configured: `builtin`, a directory, or a URL (not served, not taped).
    pub source: String,
    /// The seed of the twin's RNG.
    pub seed: u64,
    /// The virtual clock's start, ms since the Unix epoch.
    pub clock_start_ms: u64,
    /// Every exchange the service had with it.
    pub tape: lightsout_twin::TapeReport,
}

impl TwinRecord {
    /// The options that rebuild the twin as the run served it.
    pub fn options(&self) -> lightsout_twin::TwinOptions {
        lightsout_twin::TwinOptions {
            seed: self.seed,
            clock_start_ms: self.clock_start_ms,
            ..lightsout_twin::TwinOptions::default()
        }
    }
}

/// One scenario's verdict in an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioVerdict {
    /// Scenario id.
    pub id: String,
    /// Trials run.
    pub trials: u32,
    /// Trials passed (`<= trials`).
    pub passes: u32,
}

impl ScenarioVerdict {
    fn describe(&self) -> String {
        let word = if self.trials > 0 && self.passes == self.trials {
            "passed"
        } else {
            "failed"
        };
        format!("{word} ({} of {} trials)", self.passes, self.trials)
    }
}

/// What one evaluation of a run judged, and on what (`eval/replay/<task>-<attempt>-<stage>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// [`RECORD_SCHEMA`].
    pub schema_version: u32,
    /// Task id.
    pub task: String,
    /// 1-based attempt.
    pub attempt: u32,
    /// `candidate` or `merged`.
    pub stage: String,
    /// The commit judged (the worktree's HEAD).
    pub commit: String,
    /// The task's requirements.
    pub requirements: Vec<String>,
    /// The regression bucket.
    pub regression: Vec<String>,
    /// The service did not start.
    #[serde(default)]
    pub not_started: bool,
    /// Each scenario's verdict, in the order they ran.
    #[serde(default)]
    pub scenarios: Vec<ScenarioVerdict>,
    /// The gate's verdict (`None` when no scenario ran).
    #[serde(default)]
    pub gate: Option<GateRecord>,
    /// The evaluation's verdict.
    pub passed: bool,
    /// The twins served, by name.
    #[serde(default)]
    pub twins: BTreeMap<String, TwinRecord>,
    /// SHA-256 of the holdout directory's files (paths and contents) the evaluation judged
    /// with ([`holdout_digest`]).
    #[serde(default)]
    pub holdout: String,
    /// Who judged it. Absent in records of the eval engine (and in records written before
    /// runners were recorded).
    #[serde(default, skip_serializing_if = "Judge::is_engine")]
    pub judge: Judge,
    /// Per requirement, what a holdout runner reported (trials and passes; the failure
    /// category is not recorded: it is the runner's wording, not a verdict). Empty for the
    /// eval engine, whose verdicts are per scenario in [`EvalRecord::scenarios`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirement_results: Vec<ScenarioVerdict>,
}

/// Who judged an evaluation, and so what its record holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Judge {
    /// The eval engine (`[target]` and `[twins]`): scenario verdicts and every twin's tape.
    #[default]
    Engine,
    /// A holdout runner (`[holdout] command`): per-requirement trials and passes and the
    /// gate's status. The runner serves its own twins, so their exchanges are not taped;
    /// replay re-runs the runner on the recorded commit and compares its verdicts.
    Runner,
}

impl Judge {
    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes `&Judge`
    fn is_engine(&self) -> bool {
        *self == Judge::Engine
    }

    fn describe(self) -> &'static str {
        match self {
            Judge::Engine => "the eval engine ([target] and [twins])",
            Judge::Runner => "a holdout runner ([holdout] command)",
        }
    }
}

/// SHA-256 (hex) over every file under `dir`, in path order: each relative path, a NUL, its
/// length and its bytes. Unreadable entries count as their path alone.
pub fn holdout_digest(dir: &Path) -> String {
    use sha2::{Digest as _, Sha256};
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &p, out);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        h.update(f.to_string_lossy().as_bytes());
        h.update([0]);
        if let Ok(bytes) = std::fs::read(dir.join(&f)) {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
    }
    hex::encode(h.finalize())
}

/// The gate's verdict in an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateRecord {
    /// Whether the gate passed.
    pub passed: bool,
    /// Its status (`pass`, `fail`, `insufficient_evidence`).
    pub status: String,
}

fn record_name(task: &str, attempt: u32, stage: &str) -> String {
    format!("{task}-{attempt}-{stage}.json")
}

fn build_record(
    req: &EvalRequest,
    holdout: String,
    commit: String,
    verdict: &Verdict,
    trace: &EvalTrace,
) -> EvalRecord {
    let defaults = lightsout_twin::TwinOptions::default();
    EvalRecord {
        not_started: trace.not_started,
        scenarios: trace
            .run
            .iter()
            .flat_map(|r| &r.scenarios)
            .map(|s| ScenarioVerdict {
                id: s.id.clone(),
                trials: s.stats.trials,
                passes: s.stats.passes,
            })
            .collect(),
        gate: trace.run.as_ref().map(|r| GateRecord {
            passed: r.gate.passed,
            status: serde_json::to_value(r.gate.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        }),
        twins: trace
            .twins
            .iter()
            .map(|(name, (source, tape))| {
                (
                    name.clone(),
                    TwinRecord {
                        source: source.clone(),
                        seed: defaults.seed,
                        clock_start_ms: defaults.clock_start_ms,
                        tape: tape.clone(),
                    },
                )
            })
            .collect(),
        ..record_head(req, holdout, commit, verdict, Judge::Engine)
    }
}

/// What every judge's record holds alike: what was asked, of which commit, with which
/// holdout, and the verdict; the judge's own parts empty.
fn record_head(
    req: &EvalRequest,
    holdout: String,
    commit: String,
    verdict: &Verdict,
    judge: Judge,
) -> EvalRecord {
    EvalRecord {
        schema_version: RECORD_SCHEMA,
        task: req.task_id.clone(),
        attempt: req.attempt,
        stage: req.stage.as_str().to_owned(),
        commit,
        requirements: req.requirements.clone(),
        regression: req.regression.clone(),
        not_started: false,
        scenarios: Vec::new(),
        gate: None,
        passed: verdict.passed,
        twins: BTreeMap::new(),
        holdout,
        judge,
        requirement_results: Vec::new(),
    }
}

/// The record of an evaluation a holdout runner judged: per requirement what it reported, and
/// the gate's status when it printed one.
fn build_runner_record(
    req: &EvalRequest,
    holdout: String,
    commit: String,
    verdict: &Verdict,
    gate: Option<lightsout_eval::GateStatus>,
) -> EvalRecord {
    EvalRecord {
        gate: gate.map(|g| GateRecord {
            passed: g == lightsout_eval::GateStatus::Passed,
            status: g.as_str().to_owned(),
        }),
        requirement_results: verdict
            .requirements
            .iter()
            .map(|r| ScenarioVerdict {
                id: r.id.clone(),
                trials: r.trials,
                passes: r.passed,
            })
            .collect(),
        ..record_head(req, holdout, commit, verdict, Judge::Runner)
    }
}

/// The commit checked out at `worktree`, or empty when it is not a git worktree (a library
/// caller's directory: replay then says the commit is missing).
async fn judged_commit(worktree: &Path) -> String {
    Git::new(worktree)
        .try_rev("HEAD")
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn save_record(req: &EvalRequest, rec: &EvalRecord) -> Result<(), Error> {
    let path =
        req.artifacts_dir
            .join("replay")
            .join(record_name(&rec.task, rec.attempt, &rec.stage));
    let bytes = serde_json::to_vec_pretty(rec).map_err(|e| Error::Eval(e.to_string()))?;
    journal::write_atomic(&path, &bytes)
}

/// Writes the [`EvalRecord`] of an evaluation a holdout runner just made, beside its results.
pub(crate) async fn write_runner_record(
    holdout_dir: &Path,
    req: &EvalRequest,
    verdict: &Verdict,
    gate: Option<lightsout_eval::GateStatus>,
) -> Result<(), Error> {
    let commit = judged_commit(&req.worktree).await;
    let rec = build_runner_record(req, holdout_digest(holdout_dir), commit, verdict, gate);
    save_record(req, &rec)
}

/// Writes the [`EvalRecord`] of an evaluation the run just made, beside its results.
pub(crate) async fn write_record(
    holdout_dir: &Path,
    req: &EvalRequest,
    verdict: &Verdict,
    trace: &EvalTrace,
) -> Result<(), Error> {
    let commit = judged_commit(&req.worktree).await;
    let rec = build_record(req, holdout_digest(holdout_dir), commit, verdict, trace);
    save_record(req, &rec)
}

/// One evaluation replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayStep {
    /// 1-based position among the run's evaluations.
    pub step: usize,
    /// Task id.
    pub task: String,
    /// Attempt.
    pub attempt: u32,
    /// `candidate` or `merged`.
    pub stage: String,
    /// The commit judged.
    pub commit: String,
    /// The decision the run took (`passed the holdout`, `failed the holdout`, `merge`,
    /// `revert`).
    pub decision: String,
}

/// The first step where the replay differs from the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The step it happened in.
    pub step: ReplayStep,
    /// What differs: an exchange of a twin (twin `slack` exchange 3), a scenario, the
    /// service, the gate or the decision.
    pub what: String,
    /// The run's side.
    pub recorded: String,
    /// The replay's side.
    pub replayed: String,
}

/// How a replay ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum ReplayOutcome {
    /// Every step gave what the run recorded.
    Same,
    /// A step differs; the first difference.
    Differs {
        /// The difference.
        difference: Box<Difference>,
    },
    /// The run cannot be replayed.
    Unreplayable {
        /// What is missing.
        missing: String,
    },
}

/// The result of `lightsout replay`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// The run replayed.
    pub run_id: String,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: ReplayOutcome,
    /// The steps replayed, in order (up to and including a differing one).
    pub steps: Vec<ReplayStep>,
    /// Where the replay's results are (under the run's `eval/`, hidden from agents and
    /// services).
    pub out_dir: PathBuf,
}

impl ReplayReport {
    fn unreplayable(run_id: &str, out_dir: PathBuf, missing: String) -> Self {
        ReplayReport {
            run_id: run_id.to_owned(),
            outcome: ReplayOutcome::Unreplayable { missing },
            steps: Vec::new(),
            out_dir,
        }
    }
}

/// An evaluation the journal says happened.
struct Planned {
    task: String,
    attempt: u32,
    stage: EvalStage,
    decision: String,
    /// A merge reverted by the visible checks made no evaluation.
    required: bool,
}

fn planned_steps(entries: &[Entry]) -> Vec<Planned> {
    let mut used: BTreeMap<String, u32> = BTreeMap::new();
    let mut out = Vec::new();
    for e in entries {
        match e {
            Entry::AttemptFinished { task, record } => {
                used.insert(task.clone(), record.attempt);
                if record.passed || record.failed_stage == Some(crate::FailedStage::Holdout) {
                    out.push(Planned {
                        task: task.clone(),
                        attempt: record.attempt,
                        stage: EvalStage::Candidate,
                        decision: candidate_decision(record.passed).into(),
                        required: true,
                    });
                }
            }
            Entry::MergeVerified { task, .. } | Entry::MergeReverted { task, .. } => {
                let merged = matches!(e, Entry::MergeVerified { .. });
                out.push(Planned {
                    task: task.clone(),
                    attempt: used.get(task).copied().unwrap_or(0),
                    stage: EvalStage::Merged,
                    decision: merge_decision(merged).into(),
                    required: merged,
                });
            }
            _ => {}
        }
    }
    out
}

fn candidate_decision(passed: bool) -> &'static str {
    if passed {
        "passed the holdout"
    } else {
        "failed the holdout"
    }
}

fn merge_decision(passed: bool) -> &'static str {
    if passed { "merge" } else { "revert" }
}

/// The holdout's judge as the run configured it, or why the run cannot be replayed.
fn judge_from_config(config: &Config) -> Result<HoldoutJudge, String> {
    if config.holdout.command.is_none()
        && let Some((name, url)) = config.twins.iter().find(|(_, v)| v.starts_with("http"))
    {
        return Err(format!(
            "the exchanges of twin `{name}`: it is a running service at {url}, not served by \
             the run, so the run kept no tape of it"
        ));
    }
    // As `Factory::new` wires it, so the replay judges as the run did.
    match holdout_judge(config, &config.allowed_env(std::env::vars())) {
        Ok(Some(judge)) => Ok(judge),
        Ok(None) => {
            let holdout = std::env::var("LIGHTSOUT_HOLDOUT").ok();
            if config.holdout_dir(holdout.as_deref()).is_none() {
                Err("the holdout: [holdout] path (or LIGHTSOUT_HOLDOUT) is not set".into())
            } else {
                Err("the service's start command: [target] is not set".into())
            }
        }
        Err(e) => Err(format!("the holdout's judge: {e}")),
    }
}

/// Replays run `run_id` of the repository at `repo` with `config` (see the module docs), one
/// recorded evaluation at a time.
///
/// # Errors
/// [`Error`] when git, the file system or the evaluation fails in a way that says nothing
/// about the run (a run that lacks what replay needs is [`ReplayOutcome::Unreplayable`]).
pub async fn replay(repo: &Path, config: &Config, run_id: &str) -> Result<ReplayReport, Error> {
    replay_with_jobs(repo, config, run_id, 1).await
}

/// [`replay`], judging up to `jobs` recorded steps at once (at least 1).
///
/// Faster by about `jobs` on a machine with the cores to spare; but a holdout that measures
/// time (a latency-under-load scenario) sees the neighbouring judges as load, so on a small
/// machine a step can differ for that reason alone. One at a time is the default for that.
///
/// # Errors
/// As [`replay`].
pub async fn replay_with_jobs(
    repo: &Path,
    config: &Config,
    run_id: &str,
    jobs: usize,
) -> Result<ReplayReport, Error> {
    let run_dir = repo.join(".lightsout").join("runs").join(run_id);
    let eval_dir = run_dir.join("eval");
    let stamp = format!(
        "{}-{}",
        time::OffsetDateTime::now_utc().unix_timestamp(),
        std::process::id()
    );
    let out_dir = eval_dir.join("replays").join(stamp);
    let repo_git = Git::new(repo);
    let checked = match check_replayable(&repo_git, config, &run_dir, &eval_dir).await? {
        Ok(c) => c,
        Err(missing) => return Ok(ReplayReport::unreplayable(run_id, out_dir, missing)),
    };
    let results = out_dir.join("results");
    // The service sees none of `eval/` (the run's results and records, the replays'
    // results), as in the run; so its checkout lies outside it, as the strength
    // measurement's copies do, and is removed when its step ends.
    let work = run_dir.join("replay-work").join(
        out_dir
            .file_name()
            .map_or_else(|| "replay".into(), |n| n.to_string_lossy().into_owned()),
    );
    std::fs::create_dir_all(&results).map_err(|e| Error::io("create replay dir", &results, e))?;
    let outcome = replay_steps(
        &Replaying {
            repo: &repo_git,
            run_id,
            run_dir: &run_dir,
            eval_dir: &eval_dir,
            results: &results,
            work: &work,
            judge: &checked.judge,
            policy: &checked.policy,
            jobs: jobs.max(1),
        },
        &checked.steps,
    )
    .await?;
    let report = ReplayReport {
        run_id: run_id.to_owned(),
        outcome: outcome.0,
        steps: outcome.1,
        out_dir: out_dir.clone(),
    };
    write_report(&out_dir, &report)?;
    Ok(report)
}

/// What a replay judges with, read from the run and checked against the repository and
/// the configuration now.
struct Checked {
    /// The gate policy the run judged with.
    policy: lightsout_eval::GatePolicy,
    /// Every recorded evaluation, in the journal's order.
    steps: Vec<(Planned, EvalRecord)>,
    /// The holdout's judge, as the configuration wires it now (the run's kind of judge).
    judge: HoldoutJudge,
}

/// Reads what the run recorded (its journal, gate policy and evaluation records) and checks
/// that the repository still has every judged commit, that the configuration names the
/// run's kind of judge, and that the holdout is the one the run judged with. `Ok(Err(_))`
/// names what the run lacks for a replay.
///
/// # Errors
/// [`Error`] when the journal, a record or git cannot be read, or `eval_dir` created.
async fn check_replayable(
    repo_git: &Git,
    config: &Config,
    run_dir: &Path,
    eval_dir: &Path,
) -> Result<Result<Checked, String>, Error> {
    let journal_path = run_dir.join("journal.jsonl");
    if !journal_path.is_file() {
        return Ok(Err(format!(
            "the run's journal: {} does not exist",
            journal_path.display()
        )));
    }
    let entries = journal::read(&journal_path)?;
    let policy = match recorded_policy(&entries) {
        Ok(p) => p,
        Err(missing) => return Ok(Err(missing)),
    };
    // Load every record first: a run missing one is not replayed at all.
    let steps = match load_records(eval_dir, &entries)? {
        Ok(steps) => steps,
        Err(missing) => return Ok(Err(missing)),
    };
    if let Some(missing) = missing_commit(repo_git, &steps).await? {
        return Ok(Err(missing));
    }
    let (judge, holdout_dir) = match run_judge(config, &steps) {
        Ok(j) => j,
        Err(missing) => return Ok(Err(missing)),
    };
    std::fs::create_dir_all(eval_dir).map_err(|e| Error::io("create eval dir", eval_dir, e))?;
    if let Some(changed) = holdout_changed(&holdout_dir, &steps) {
        return Ok(Err(changed));
    }
    Ok(Ok(Checked {
        policy,
        steps,
        judge,
    }))
}

/// The first recorded commit the repository no longer has, named as a replay's missing
/// piece.
///
/// # Errors
/// [`Error`] when git fails.
async fn missing_commit(
    repo_git: &Git,
    steps: &[(Planned, EvalRecord)],
) -> Result<Option<String>, Error> {
    for (_, rec) in steps {
        if rec.commit.is_empty() || repo_git.try_rev(&rec.commit).await?.is_none() {
            return Ok(Some(format!(
                "commit {} of task {} (attempt {}): it is no longer in the repository",
                rec.commit, rec.task, rec.attempt
            )));
        }
    }
    Ok(None)
}

/// The holdout's judge as the configuration wires it now and the holdout directory it
/// reads, when it is the kind of judge every step of the run was judged by; `Err` names
/// what is missing or differs.
fn run_judge(
    config: &Config,
    steps: &[(Planned, EvalRecord)],
) -> Result<(HoldoutJudge, PathBuf), String> {
    let judge = judge_from_config(config)?;
    let (kind, holdout_dir) = match &judge {
        HoldoutJudge::Engine(e) => (Judge::Engine, e.holdout_dir.clone()),
        HoldoutJudge::Runner(r) => (Judge::Runner, r.holdout_dir.clone()),
    };
    if let Some((_, rec)) = steps.iter().find(|(_, r)| r.judge != kind) {
        return Err(format!(
            "the run's judge: task {} attempt {} was judged by {}, and the configuration \
             now names {}",
            rec.task,
            rec.attempt,
            rec.judge.describe(),
            kind.describe()
        ));
    }
    Ok((judge, holdout_dir))
}

/// The holdout must be the one the run judged with (replay reads it where it is now):
/// `Some` names the first step judged with other holdout files than those in
/// `holdout_dir` now.
fn holdout_changed(holdout_dir: &Path, steps: &[(Planned, EvalRecord)]) -> Option<String> {
    let now = holdout_digest(holdout_dir);
    let (_, rec) = steps
        .iter()
        .find(|(_, r)| !r.holdout.is_empty() && r.holdout != now)?;
    Some(format!(
        "the holdout the run judged with: the files in {} changed since task {} \
         attempt {} was judged (sha256 {} then, {} now)",
        holdout_dir.display(),
        rec.task,
        rec.attempt,
        &rec.holdout[..rec.holdout.len().min(12)],
        &now[..now.len().min(12)]
    ))
}

/// The gate policy the run judged with, from its journal; `Err` names what is missing for a
/// replay (the start entry, a recorded policy, the end of the run).
fn recorded_policy(entries: &[Entry]) -> Result<lightsout_eval::GatePolicy, String> {
    let Some(policy) = entries.iter().find_map(|e| match e {
        Entry::RunStarted { policy, .. } => Some(policy.clone()),
        _ => None,
    }) else {
        return Err("the journal's run_started entry".into());
    };
    if policy.is_empty() {
        return Err(
            "the resolved gate policy: the journal was written before runs recorded it".into(),
        );
    }
    if !entries
        .iter()
        .any(|e| matches!(e, Entry::RunFinished { .. }))
    {
        return Err("the end of the run: it has not finished (resume it first)".into());
    }
    Ok(policy)
}

/// The evaluation record of every planned step, in order; `Err` names the first one that is
/// missing or whose twin tape was cut.
fn load_records(
    eval_dir: &Path,
    entries: &[Entry],
) -> Result<Result<Vec<(Planned, EvalRecord)>, String>, Error> {
    let mut steps = Vec::new();
    for p in planned_steps(entries) {
        let file = eval_dir
            .join("replay")
            .join(record_name(&p.task, p.attempt, p.stage.as_str()));
        let rec: EvalRecord = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Journal {
                path: file.clone(),
                message: e.to_string(),
            })?,
            Err(_) if !p.required => continue,
            Err(_) => {
                return Ok(Err(format!(
                    "the record of task {} attempt {} ({}): {} does not exist (runs made \
                     before replay records were kept cannot be replayed)",
                    p.task,
                    p.attempt,
                    p.stage.as_str(),
                    file.display()
                )));
            }
        };
        if let Some((name, _)) = rec.twins.iter().find(|(_, t)| t.tape.truncated) {
            return Ok(Err(format!(
                "the whole tape of twin `{name}` in {}: it passed {} exchanges and was cut",
                file.display(),
                lightsout_twin::TAPE_MAX_EXCHANGES
            )));
        }
        steps.push((p, rec));
    }
    Ok(Ok(steps))
}

/// What every replayed step shares: where it runs and what judges it.
struct Replaying<'a> {
    repo: &'a Git,
    run_id: &'a str,
    run_dir: &'a Path,
    eval_dir: &'a Path,
    results: &'a Path,
    work: &'a Path,
    judge: &'a HoldoutJudge,
    policy: &'a lightsout_eval::GatePolicy,
    /// How many steps are judged at once (at least 1).
    jobs: usize,
}

/// What one replayed step found: the step, and the first difference from the run, if any
/// (what differs, the recorded side, the replayed side).
type StepResult = (ReplayStep, Option<(String, String, String)>);

/// Judges each recorded step again on a checkout of its commit with the twins replaying their
/// tapes (or the runner run again); stops at the first step whose result differs.
///
/// Steps are independent (each has its own commit, checkout and record), so up to `r.jobs`
/// run at once, as the run itself judged them. They run in batches of `r.jobs` taken in
/// order, and every step of a batch runs to its end: none is cancelled midway (a cancelled
/// runner would leave its service behind). The result is read in step order, so the first
/// difference reported, and the steps listed before it, are those a one-at-a-time replay
/// gives; steps of the same batch after it are judged but not reported.
async fn replay_steps(
    r: &Replaying<'_>,
    steps: &[(Planned, EvalRecord)],
) -> Result<(ReplayOutcome, Vec<ReplayStep>), Error> {
    let mut done = Vec::new();
    let indexed: Vec<_> = steps.iter().enumerate().collect();
    for batch in indexed.chunks(r.jobs.max(1)) {
        let judged = futures_util::future::join_all(
            batch
                .iter()
                .map(|(n, (planned, rec))| replay_step(r, *n, planned, rec)),
        )
        .await;
        for result in judged {
            let (step, diff) = result?;
            done.push(step.clone());
            if let Some((what, recorded, replayed)) = diff {
                let outcome = ReplayOutcome::Differs {
                    difference: Box::new(Difference {
                        step,
                        what,
                        recorded,
                        replayed,
                    }),
                };
                return Ok((outcome, done));
            }
        }
    }
    Ok((ReplayOutcome::Same, done))
}

/// Judges step `n` (0-based) again on its own detached checkout, removed afterwards.
async fn replay_step(
    r: &Replaying<'_>,
    n: usize,
    planned: &Planned,
    rec: &EvalRecord,
) -> Result<StepResult, Error> {
    let step = ReplayStep {
        step: n + 1,
        task: rec.task.clone(),
        attempt: rec.attempt,
        stage: rec.stage.clone(),
        commit: rec.commit.clone(),
        decision: planned.decision.clone(),
    };
    let wt = r.work.join(format!("{}", n + 1));
    let w = wt.to_string_lossy().into_owned();
    r.repo
        .run(&["worktree", "add", "-q", "--detach", &w, &rec.commit])
        .await?;
    let req = EvalRequest {
        run_id: r.run_id.to_owned(),
        task_id: rec.task.clone(),
        attempt: rec.attempt,
        stage: planned.stage,
        worktree: wt.clone(),
        requirements: rec.requirements.clone(),
        regression: rec.regression.clone(),
        artifacts_dir: r.results.to_path_buf(),
        policy: r.policy.clone(),
    };
    let evaluated = match r.judge {
        HoldoutJudge::Engine(engine) => engine
            .evaluate_traced(&req, &TwinTapes::Replay(&rec.twins), Some(r.eval_dir))
            .await
            .map(|(verdict, trace)| {
                let replayed = build_record(
                    &req,
                    rec.holdout.clone(),
                    rec.commit.clone(),
                    &verdict,
                    &trace,
                );
                (verdict, trace, replayed)
            }),
        HoldoutJudge::Runner(runner) => runner.judge(&req).await.map(|(verdict, gate)| {
            let replayed = build_runner_record(
                &req,
                rec.holdout.clone(),
                rec.commit.clone(),
                &verdict,
                gate,
            );
            (verdict, EvalTrace::default(), replayed)
        }),
    };
    let _ = r.repo.out(&["worktree", "remove", "--force", &w]).await;
    let _ = std::fs::remove_dir_all(&wt);
    // Empty once the last step of the replay is done; the others fail harmlessly.
    let _ = std::fs::remove_dir(r.work);
    let _ = std::fs::remove_dir(r.run_dir.join("replay-work"));
    let (verdict, trace, replayed) = evaluated?;
    let decision = match planned.stage {
        EvalStage::Candidate => candidate_decision(verdict.passed),
        EvalStage::Merged => merge_decision(verdict.passed),
    };
    let diff = first_difference(rec, &replayed, &trace, &planned.decision, decision);
    Ok((step, diff))
}

fn write_report(out_dir: &Path, report: &ReplayReport) -> Result<(), Error> {
    let bytes = serde_json::to_vec_pretty(report).map_err(|e| Error::Eval(e.to_string()))?;
    journal::write_atomic(&out_dir.join("replay.json"), &bytes)
}

fn describe_request(r: Option<&lightsout_twin::record::RecordedRequest>) -> String {
    match r {
        None => "no request".into(),
        Some(r) => {
            let mut s = format!("{} {}", r.method, r.path);
            if !r.query.is_empty() {
                s.push('?');
                s.push_str(&r.query);
            }
            if !r.body.is_null() {
                s.push(' ');
                s.push_str(&r.body.to_string());
            }
            s
        }
    }
}

/// The first position where two lists of verdicts (of scenarios, or of a runner's
/// requirements) differ, as (what, recorded, replayed); `noun` names an entry.
fn first_verdict_difference(
    noun: &str,
    recorded: &[ScenarioVerdict],
    replayed: &[ScenarioVerdict],
) -> Option<(String, String, String)> {
    let n = recorded.len().max(replayed.len());
    for i in 0..n {
        match (recorded.get(i), replayed.get(i)) {
            (Some(a), Some(b)) if a.id != b.id => {
                return Some((
                    format!("{noun} {}", i + 1),
                    format!("`{}`", a.id),
                    format!("`{}`", b.id),
                ));
            }
            (Some(a), Some(b)) if a != b => {
                return Some((format!("{noun} `{}`", a.id), a.describe(), b.describe()));
            }
            (Some(a), None) => {
                return Some((format!("{noun} `{}`", a.id), a.describe(), "not run".into()));
            }
            (None, Some(b)) => {
                return Some((format!("{noun} `{}`", b.id), "not run".into(), b.describe()));
            }
            _ => {}
        }
    }
    None
}

/// The first difference between the run's record and the replay's, as (what, recorded,
/// replayed), in the order the module docs give.
fn first_difference(
    recorded: &EvalRecord,
    replayed: &EvalRecord,
    trace: &EvalTrace,
    recorded_decision: &str,
    replayed_decision: &str,
) -> Option<(String, String, String)> {
    for name in recorded.twins.keys() {
        match trace.twins.get(name) {
            None => {
                return Some((
                    format!("twin `{name}`"),
                    "served".into(),
                    "not served (not in [twins] any more)".into(),
                ));
            }
            Some((_, tape)) => {
                // A request that differs comes first; a recorded exchange never requested
                // (the replay asked less) is only reported once the verdicts agree.
                if let Some(d) = tape.divergence.as_ref().filter(|d| d.replayed.is_some()) {
                    return Some((
                        format!("twin `{name}` exchange {}", d.exchange),
                        describe_request(d.recorded.as_ref()),
                        describe_request(d.replayed.as_ref()),
                    ));
                }
            }
        }
    }
    if let Some(name) = trace
        .twins
        .keys()
        .find(|n| !recorded.twins.contains_key(*n))
    {
        return Some((
            format!("twin `{name}`"),
            "not served".into(),
            "served (added to [twins] since the run)".into(),
        ));
    }
    let started = |r: &EvalRecord| {
        if r.not_started {
            "did not start"
        } else {
            "started"
        }
    };
    if recorded.not_started != replayed.not_started {
        return Some((
            "service".into(),
            started(recorded).into(),
            started(replayed).into(),
        ));
    }
    if let Some(d) = first_verdict_difference("scenario", &recorded.scenarios, &replayed.scenarios)
    {
        return Some(d);
    }
    if let Some(d) = first_verdict_difference(
        "requirement",
        &recorded.requirement_results,
        &replayed.requirement_results,
    ) {
        return Some(d);
    }
    let gate = |g: Option<&GateRecord>| g.map_or_else(|| "not judged".into(), |g| g.status.clone());
    if recorded.gate != replayed.gate {
        return Some((
            "gate".into(),
            gate(recorded.gate.as_ref()),
            gate(replayed.gate.as_ref()),
        ));
    }
    for (name, (_, tape)) in &trace.twins {
        if let Some(d) = &tape.divergence {
            return Some((
                format!("twin `{name}` exchange {}", d.exchange),
                describe_request(d.recorded.as_ref()),
                describe_request(d.replayed.as_ref()),
            ));
        }
    }
    if recorded_decision != replayed_decision {
        return Some((
            "decision".into(),
            recorded_decision.into(),
            replayed_decision.into(),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(scenarios: &[(&str, u32, u32)]) -> EvalRecord {
        EvalRecord {
            schema_version: RECORD_SCHEMA,
            task: "T1".into(),
            attempt: 1,
            stage: "candidate".into(),
            commit: "c".into(),
            requirements: vec!["REQ-1".into()],
            regression: vec![],
            not_started: false,
            scenarios: scenarios
                .iter()
                .map(|(id, t, p)| ScenarioVerdict {
                    id: (*id).into(),
                    trials: *t,
                    passes: *p,
                })
                .collect(),
            gate: Some(GateRecord {
                passed: true,
                status: "pass".into(),
            }),
            passed: true,
            twins: BTreeMap::new(),
            holdout: String::new(),
            judge: Judge::Engine,
            requirement_results: Vec::new(),
        }
    }

    fn attempt(task: &str, n: u32, passed: bool, stage: Option<&str>) -> Entry {
        Entry::AttemptFinished {
            task: task.into(),
            record: crate::AttemptRecord {
                attempt: n,
                agent: "replay".into(),
                replay: true,
                summary: String::new(),
                usage: lightsout_agent::Usage::default(),
                outcome: lightsout_agent::Outcome::Completed,
                passed,
                failed_stage: stage.map(|s| s.parse().expect("a stage word")),
                feedback: None,
                commit: None,
                human_intervened: false,
            },
        }
    }

    #[test]
    fn the_evaluations_are_the_attempts_that_reached_the_holdout_and_the_merges() {
        let entries = vec![
            attempt("T1", 1, false, Some("checks")),
            attempt("T1", 2, false, Some("holdout")),
            attempt("T1", 3, true, None),
            Entry::MergeReverted {
                task: "T1".into(),
                commit: "c".into(),
                feedback: String::new(),
                regression: vec![],
            },
            attempt("T1", 4, true, None),
            Entry::MergeVerified {
                task: "T1".into(),
                commit: "d".into(),
            },
        ];
        let got: Vec<(u32, &str, String, bool)> = planned_steps(&entries)
            .iter()
            .map(|p| (p.attempt, p.stage.as_str(), p.decision.clone(), p.required))
            .collect();
        assert_eq!(
            got,
            [
                (2, "candidate", "failed the holdout".to_owned(), true),
                (3, "candidate", "passed the holdout".to_owned(), true),
                // A revert may come from the visible checks, which made no evaluation.
                (3, "merged", "revert".to_owned(), false),
                (4, "candidate", "passed the holdout".to_owned(), true),
                (4, "merged", "merge".to_owned(), true),
            ]
        );
    }

    #[test]
    fn the_first_scenario_that_differs_is_named_with_both_sides() {
        let a = rec(&[("s1", 5, 5), ("s2", 5, 5)]);
        let mut b = rec(&[("s1", 5, 5), ("s2", 1, 0)]);
        b.gate = Some(GateRecord {
            passed: false,
            status: "fail".into(),
        });
        let d = first_difference(&a, &b, &EvalTrace::default(), "merge", "revert").unwrap();
        assert_eq!(
            d,
            (
                "scenario `s2`".into(),
                "passed (5 of 5 trials)".into(),
                "failed (0 of 1 trials)".into()
            )
        );
        assert_eq!(
            first_difference(&a, &a.clone(), &EvalTrace::default(), "merge", "merge"),
            None
        );
        let d = first_difference(&a, &a.clone(), &EvalTrace::default(), "merge", "revert");
        assert_eq!(d.unwrap().0, "decision");
    }
}
