//! Suite strength: how many mutants of a passing build the holdout kills.
//!
//! A holdout that passes good software is only half a gate; it must also fail bad software.
//! [`measure`] makes mutants of a passing build with the language's own mutation tool
//! ([`MutationTool`]: `cosmic-ray` for Python, `cargo-mutants` for Rust), applies each one to its
//! own temporary copy of the project (the user's tree is only read), runs the holdout against
//! it through a [`Judge`], and returns a [`StrengthReport`]: killed, survived, timeouts, the kill
//! rate with its Wilson 95% interval, and every survivor (file, line, operator).
//!
//! The survivors describe exactly what the holdout does not check: they are for the humans who
//! own the holdout and must never reach an agent.
//!
//! Mutation testing as the measure of a test suite's strength: `DeMillo`, Lipton and Sayward,
//! "Hints on test data selection" (1978); the tools: <https://cosmic-ray.readthedocs.io>,
//! <https://mutants.rs>.

use crate::stats::{Interval, wilson95};
use crate::{CommandTarget, Error, RunOptions, Runner, Suite, TargetConfig};
use lightsout_stdx::process::{Limits, RunError, Until, run};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Version of the [`StrengthReport`] JSON document.
pub const STRENGTH_SCHEMA_VERSION: u32 = 1;

/// Directory names never copied into a mutant's project nor searched for sources.
const SKIP_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".lightsout",
    "target",
    "node_modules",
    "__pycache__",
    ".venv",
    "venv",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
];

/// A mutation tool, one per language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MutationTool {
    /// Python: `cosmic-ray` (<https://github.com/sixty-north/cosmic-ray>), `pip install cosmic-ray`.
    /// Mutants are listed with `cosmic-ray init` + `dump` and applied with `cosmic-ray apply`.
    CosmicRay,
    /// Rust: `cargo-mutants` (<https://mutants.rs>), `cargo install cargo-mutants`. Mutants are
    /// listed with `cargo mutants --list --json` and applied by replacing the listed span.
    /// Wired but not exercised by the tests.
    CargoMutants,
}

impl MutationTool {
    /// The tool for the project in `dir`: `Cargo.toml` means Rust, `pyproject.toml`,
    /// `setup.py` or any `*.py` file means Python. `None` when neither is found (JS/TS projects
    /// included: Stryker is not wired yet).
    pub fn detect(dir: &Path) -> Option<Self> {
        if dir.join("Cargo.toml").is_file() {
            return Some(MutationTool::CargoMutants);
        }
        if dir.join("pyproject.toml").is_file()
            || dir.join("setup.py").is_file()
            || !python_sources(dir).is_empty()
        {
            return Some(MutationTool::CosmicRay);
        }
        None
    }

    /// The name used on the command line and in `[strength] tool`.
    pub fn as_str(self) -> &'static str {
        match self {
            MutationTool::CosmicRay => "cosmic-ray",
            MutationTool::CargoMutants => "cargo-mutants",
        }
    }

    /// Parses [`MutationTool::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "cosmic-ray" | "cosmic_ray" | "python" => Some(MutationTool::CosmicRay),
            "cargo-mutants" | "rust" => Some(MutationTool::CargoMutants),
            _ => None,
        }
    }

    fn install_hint(self) -> &'static str {
        match self {
            MutationTool::CosmicRay => "install it with `pip install cosmic-ray`",
            MutationTool::CargoMutants => "install it with `cargo install cargo-mutants`",
        }
    }

    /// The tool's version line (`cosmic-ray, version 8.7.0`).
    ///
    /// # Errors
    /// [`Error::Mutation`] when the tool is not installed.
    pub async fn version(self) -> Result<String, Error> {
        let out = match self {
            MutationTool::CosmicRay => {
                tool_output(self, "cosmic-ray", &["--version"], None).await?
            }
            MutationTool::CargoMutants => {
                tool_output(self, "cargo", &["mutants", "--version"], None).await?
            }
        };
        Ok(out.trim().to_owned())
    }
}

/// One mutant: a single small change at `file:line`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mutant {
    /// Path relative to the project root, `/`-separated.
    pub file: String,
    /// 1-based line of the change.
    pub line: u32,
    /// The tool's operator name (`core/ReplaceComparisonOperator_Gt_Lt`, `replace fn body`).
    pub operator: String,
    /// Which match of the operator in the file (cosmic-ray's occurrence; the list index for
    /// cargo-mutants). With `file` and `operator` it names the mutant for the tool.
    pub occurrence: u32,
    /// What the change does, when the tool says (cargo-mutants' replacement text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip)]
    splice: Option<Splice>,
}

impl Mutant {
    /// `file:line operator #occurrence`, for people.
    pub fn label(&self) -> String {
        format!(
            "{}:{} {} #{}",
            self.file, self.line, self.operator, self.occurrence
        )
    }

    fn key(&self) -> String {
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.file, self.line, self.operator, self.occurrence
        )
    }
}

/// A span replacement (cargo-mutants): 1-based lines, 1-based columns counted in chars.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Splice {
    start: (usize, usize),
    end: (usize, usize),
    replacement: String,
}

/// A mutant the holdout owners declared equivalent (no change a client can observe), read
/// from `equivalent-mutants.toml` beside the holdout. It is matched on all four of file, line,
/// operator and occurrence, so an entry goes stale (and the mutant counts again) when the code
/// moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EquivalentMutant {
    /// Path relative to the project root.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// The tool's operator name.
    pub operator: String,
    /// The tool's occurrence.
    pub occurrence: u32,
    /// Why no client can tell the mutant from the original (required, non-empty).
    pub why: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EquivalentsFile {
    #[serde(default)]
    mutant: Vec<EquivalentMutant>,
}

/// Reads an equivalent-mutants file (`[[mutant]]` tables with `file`, `line`, `operator`,
/// `occurrence` and `why`).
///
/// # Errors
/// [`Error::Io`] when it cannot be read, [`Error::Mutation`] when it is not valid TOML of that
/// shape or an entry has an empty `why`.
pub fn read_equivalents(path: &Path) -> Result<Vec<EquivalentMutant>, Error> {
    let text = std::fs::read_to_string(path)?;
    let file: EquivalentsFile =
        toml::from_str(&text).map_err(|e| Error::Mutation(format!("{}: {e}", path.display())))?;
    if let Some(e) = file.mutant.iter().find(|e| e.why.trim().is_empty()) {
        return Err(Error::Mutation(format!(
            "{}: the entry for {}:{} {} #{} has no `why`; write why no client can observe it",
            path.display(),
            e.file,
            e.line,
            e.operator,
            e.occurrence
        )));
    }
    Ok(file.mutant)
}

/// `[strength]` in `lightsout.toml`: defaults for `lightsout strength` (flags override them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StrengthConfig {
    /// `cosmic-ray` or `cargo-mutants` (default: detected from the project's files).
    pub tool: Option<String>,
    /// Judge at most this many mutants (a seeded sample).
    pub max_mutants: Option<usize>,
    /// Seed of the sample.
    pub seed: Option<u64>,
    /// Trials per scenario per mutant.
    pub trials: Option<u32>,
    /// Mutants judged at once.
    pub jobs: Option<usize>,
    /// Per-mutant limit in seconds.
    pub timeout_s: Option<u64>,
    /// Exit 1 below this kill rate, in `0..=1`.
    pub min_kill_rate: Option<f64>,
    /// Mutate only these files or folders, relative to the project (default: every source file
    /// the tool finds, tests excluded).
    pub paths: Option<Vec<String>>,
    /// `lightsout run` measures the strength of the merged build after the last merge (it
    /// always does when a gate rule has `min_strength`; `run --strength` asks for it too).
    pub after_run: Option<bool>,
}

/// What a judge decided about one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Every scenario passed.
    Pass,
    /// Something failed; the text says what (scenario ids, requirement ids or the exit code).
    Fail(String),
    /// The holdout could not run against this build (the runner exited 2, the service did not
    /// start); counted as a kill for a mutant, an error for the unmutated build.
    Broken(String),
}

/// Runs the holdout against one copy of the project.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // one judge per measurement, cloned once per mutant
pub enum Judge {
    /// An external holdout runner (`[holdout] command`, e.g. `sh run.sh`), run with `sh -c` in
    /// `dir` with `LIGHTSOUT_WORKTREE` set to the build to judge, `LIGHTSOUT_TRIALS` and
    /// `LIGHTSOUT_MAX_TRIALS` to the trials (a runner should cap every scenario's trials at it,
    /// whatever its gate file asks), `LIGHTSOUT_RESULTS` to a scratch directory,
    /// `LIGHTSOUT_STAGE=strength` and `LIGHTSOUT_FAIL_FAST=1` (it may stop at the first failing
    /// scenario: one failure kills the mutant). It prints `{"requirements": [{"id", "trials", "passed"}]}`;
    /// a requirement with fewer passes than trials, or exit code 1, fails the build.
    Command {
        /// Shell command.
        command: String,
        /// Working directory (the holdout directory).
        dir: PathBuf,
        /// Extra environment.
        env: Vec<(String, String)>,
        /// Start the runner with `env` and the `LIGHTSOUT_*` variables only, not this process's
        /// environment (the factory's allowlist).
        clear_env: bool,
        /// Program and arguments put before `sh -c` (the factory's lifetime sandbox, so that
        /// the runner and the service it starts die with it); empty for none.
        prefix: Vec<std::ffi::OsString>,
    },
    /// The eval engine in process: `suite` against `target` started in the build's directory
    /// (its `cwd` is replaced by the mutant's copy).
    Suite {
        /// The runner (step library).
        runner: Arc<Runner>,
        /// The holdout scenarios.
        suite: Arc<Suite>,
        /// How to start the service; `{port}` as for `lightsout eval`.
        target: CommandTarget,
        /// Twins, policy; trials and timeouts are set per run.
        opts: RunOptions,
        /// The sandbox command line the service of a build runs under ([`CommandTarget::wrap`]),
        /// made for each mutant's directory; `None` runs it directly.
        wrap: Option<ServiceWrap>,
    },
}

/// Makes the sandbox command line ([`CommandTarget::wrap`]) for the service of the build in
/// the given directory, or says why it cannot (the measurement then stops: fail closed).
pub type ServiceWrap = Arc<dyn Fn(&Path) -> Result<Vec<std::ffi::OsString>, String> + Send + Sync>;

impl std::fmt::Debug for Judge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Judge::Command { command, dir, .. } => f
                .debug_struct("Command")
                .field("command", command)
                .field("dir", dir)
                .finish_non_exhaustive(),
            Judge::Suite { target, .. } => f
                .debug_struct("Suite")
                .field("target", target)
                .finish_non_exhaustive(),
        }
    }
}

impl Judge {
    /// Judges the build in `build` with `trials` trials per scenario, killing everything it
    /// started after `timeout` (then the answer is `Ok(None)`).
    ///
    /// # Errors
    /// I/O errors starting the runner; engine errors other than a target that did not start.
    pub async fn judge(
        &self,
        build: &Path,
        trials: u32,
        timeout: Duration,
    ) -> Result<Option<Judgement>, Error> {
        match self {
            Judge::Command {
                command,
                dir,
                env,
                clear_env,
                prefix,
            } => {
                let how = RunnerCommand {
                    command,
                    dir,
                    env,
                    clear_env: *clear_env,
                    prefix,
                };
                judge_command(&how, build, trials, timeout).await
            }
            Judge::Suite {
                runner,
                suite,
                target,
                opts,
                wrap,
            } => {
                let mut target = target.clone();
                target.cwd = Some(build.to_path_buf());
                if let Some(wrap) = wrap {
                    target.wrap = wrap(build).map_err(|e| {
                        Error::Mutation(format!(
                            "cannot sandbox the service of {}: {e}",
                            build.display()
                        ))
                    })?;
                }
                let mut opts = opts.clone();
                opts.trials = trials;
                opts.max_trials = trials;
                opts.trial_timeout = timeout;
                opts.step_timeout = opts.step_timeout.min(timeout);
                opts.baseline = None;
                opts.progress = None;
                // One failure kills the mutant: the scenarios after it need not run.
                opts.fail_fast = true;
                let cfg = TargetConfig::Command(target);
                let run = tokio::time::timeout(timeout, runner.run(suite, &cfg, &opts)).await;
                match run {
                    Err(_) => Ok(None),
                    Ok(Err(Error::Target(e))) => Ok(Some(Judgement::Broken(e))),
                    Ok(Err(e)) => Err(e),
                    Ok(Ok(run)) => {
                        let failed: Vec<&str> = run
                            .scenarios
                            .iter()
                            .filter(|s| s.stats.passes < s.stats.trials)
                            .map(|s| s.id.as_str())
                            .collect();
                        Ok(Some(if failed.is_empty() {
                            Judgement::Pass
                        } else {
                            Judgement::Fail(format!("failed: {}", failed.join(", ")))
                        }))
                    }
                }
            }
        }
    }
}

/// How [`Judge::Command`] starts its runner.
struct RunnerCommand<'a> {
    command: &'a str,
    dir: &'a Path,
    env: &'a [(String, String)],
    clear_env: bool,
    prefix: &'a [std::ffi::OsString],
}

async fn judge_command(
    how: &RunnerCommand<'_>,
    build: &Path,
    trials: u32,
    timeout: Duration,
) -> Result<Option<Judgement>, Error> {
    let RunnerCommand {
        command,
        dir,
        env,
        clear_env,
        prefix,
    } = *how;
    let results = tempfile::tempdir()?;
    let mut cmd = match prefix.split_first() {
        Some((program, args)) => {
            let mut c = tokio::process::Command::new(program);
            c.args(args).arg("sh");
            c
        }
        None => tokio::process::Command::new("sh"),
    };
    if clear_env {
        cmd.env_clear();
    }
    cmd.arg("-c")
        .arg(command)
        .current_dir(dir)
        .env("LIGHTSOUT_WORKTREE", build)
        .env("LIGHTSOUT_TRIALS", trials.to_string())
        .env("LIGHTSOUT_MAX_TRIALS", trials.to_string())
        .env("LIGHTSOUT_RESULTS", results.path())
        .env("LIGHTSOUT_STAGE", "strength")
        .env("LIGHTSOUT_FAIL_FAST", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Until both pipes close, as `wait_with_output`; the whole group is killed at the end.
    let limits = Limits {
        until: Until::Eof,
        ..Limits::wall(timeout)
    };
    let out = match run(cmd, None, &limits).await {
        Ok(out) if out.limit.is_some() => return Ok(None),
        Ok(out) => out,
        Err(RunError::Spawn(e)) => {
            return Err(Error::Mutation(format!(
                "cannot start the holdout runner `{command}` in {}: {e}",
                dir.display()
            )));
        }
        Err(RunError::Wait(e)) => return Err(e.into()),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let code = out.status.code().unwrap_or(-1);
    if !(0..2).contains(&code) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Ok(Some(Judgement::Broken(format!(
            "holdout runner exit {code}: {}",
            tail(&stderr, 300)
        ))));
    }
    Ok(Some(runner_judgement(&stdout, code)))
}

/// The judgement of a runner's output (`code` is 0 or 1): the last `{"requirements": [...],
/// "gate": ...}` line decides. A requirement with fewer passes than trials fails the build;
/// one with no trial but a category (`service did not start`) means the holdout could not
/// run against it (broken, a kill for a mutant, never a pass); a `"gate": "failed"` or exit
/// code 1 fails it. A requirement with no trial and no category (not reached after a failure
/// under `LIGHTSOUT_FAIL_FAST`, or without a scenario) decides nothing.
fn runner_judgement(stdout: &str, code: i32) -> Judgement {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        #[serde(default)]
        trials: u64,
        #[serde(default)]
        passed: u64,
        #[serde(default)]
        category: Option<String>,
    }
    #[derive(Deserialize)]
    struct Doc {
        requirements: Vec<Row>,
        #[serde(default)]
        gate: Option<String>,
    }
    let Some(doc) = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Doc>(l.trim()).ok())
    else {
        return Judgement::Broken(format!(
            "holdout runner exit {code} printed no {{\"requirements\": [...]}} line: {}",
            tail(stdout, 200)
        ));
    };
    let failed: Vec<&str> = doc
        .requirements
        .iter()
        .filter(|r| r.passed < r.trials)
        .map(|r| r.id.as_str())
        .collect();
    if !failed.is_empty() {
        return Judgement::Fail(format!("failed: {}", failed.join(", ")));
    }
    let unverified: Vec<String> = doc
        .requirements
        .iter()
        .filter(|r| r.trials == 0)
        .filter_map(|r| Some(format!("{}: {}", r.id, r.category.as_deref()?)))
        .collect();
    if !unverified.is_empty() {
        return Judgement::Broken(format!("not verified: {}", unverified.join("; ")));
    }
    if doc.gate.as_deref() == Some("failed") {
        return Judgement::Fail("the holdout runner's gate failed".to_owned());
    }
    if code == 1 {
        return Judgement::Fail("holdout runner exit 1".to_owned());
    }
    Judgement::Pass
}

fn tail(s: &str, max_chars: usize) -> String {
    let s = s.trim();
    let n = s.chars().count();
    s.chars().skip(n.saturating_sub(max_chars)).collect()
}

/// How [`measure`] runs.
#[derive(Clone)]
pub struct StrengthOptions {
    /// The tool; `None` detects it with [`MutationTool::detect`].
    pub tool: Option<MutationTool>,
    /// Trials per scenario for each mutant (1 to 3 is plenty: a kill needs one failure).
    pub trials: u32,
    /// Judge at most this many mutants, drawn deterministically with `seed`.
    pub max_mutants: Option<usize>,
    /// Seed of the sample.
    pub seed: u64,
    /// Mutants judged at once (each in its own copy and with its own service).
    pub jobs: usize,
    /// Per-mutant limit; `None` is four times the unmutated build's run, at least 30 s.
    pub timeout: Option<Duration>,
    /// Mutants declared equivalent; left out of the count.
    pub equivalents: Vec<EquivalentMutant>,
    /// Mutate only these files or folders (relative to the project, `/`-separated); empty
    /// means every source file the tool finds.
    pub paths: Vec<String>,
    /// Called after the baseline and after every mutant.
    pub progress: Option<StrengthProgressFn>,
    /// The directory the temporary copies are made under (default: the system's temporary
    /// directory); removed with them.
    pub scratch: Option<PathBuf>,
}

impl Default for StrengthOptions {
    fn default() -> Self {
        StrengthOptions {
            tool: None,
            trials: 1,
            max_mutants: None,
            seed: 1,
            jobs: 1,
            timeout: None,
            equivalents: Vec::new(),
            paths: Vec::new(),
            progress: None,
            scratch: None,
        }
    }
}

impl std::fmt::Debug for StrengthOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrengthOptions")
            .field("tool", &self.tool)
            .field("trials", &self.trials)
            .field("max_mutants", &self.max_mutants)
            .field("seed", &self.seed)
            .field("jobs", &self.jobs)
            .field("timeout", &self.timeout)
            .field("equivalents", &self.equivalents.len())
            .finish_non_exhaustive()
    }
}

/// Progress callback.
pub type StrengthProgressFn = Arc<dyn Fn(&StrengthProgress) + Send + Sync>;

/// Progress of [`measure`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StrengthProgress {
    /// Mutants listed (after exclusions and sampling), and the baseline passed in `baseline_ms`.
    Started {
        /// Mutants to judge.
        total: usize,
        /// Mutants the tool generated.
        generated: usize,
        /// Of those, left out as equivalent.
        equivalent: usize,
        /// The unmutated build's run, in ms.
        baseline_ms: f64,
    },
    /// One more mutant judged.
    Mutant {
        /// Judged so far.
        done: usize,
        /// To judge in all.
        total: usize,
        /// Killed so far (timeouts and broken builds included).
        killed: usize,
        /// Estimated time left, from the mean time per mutant so far.
        eta: Duration,
    },
}

/// What happened to one mutant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MutantStatus {
    /// A scenario failed.
    Killed,
    /// The holdout could not run against it (the service did not start, the runner exited 2).
    Broken,
    /// It ran past the per-mutant limit and was killed.
    Timeout,
    /// Every scenario passed: the holdout cannot tell it from the original.
    Survived,
    /// The tool could not apply it (a tool bug); left out of every count but `not_applied`.
    NotApplied,
}

impl MutantStatus {
    /// True when the holdout killed it (a failure, a broken build or a timeout).
    pub fn is_kill(self) -> bool {
        matches!(
            self,
            MutantStatus::Killed | MutantStatus::Broken | MutantStatus::Timeout
        )
    }
}

/// One judged mutant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MutantResult {
    /// The mutant.
    #[serde(flatten)]
    pub mutant: Mutant,
    /// The outcome.
    pub status: MutantStatus,
    /// What failed (requirement or scenario ids, the runner's error); empty when it survived.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Wall time of its holdout run, in ms.
    pub duration_ms: f64,
}

/// The strength of a holdout, for the humans who own it (it names what the holdout misses:
/// never show it to an agent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrengthReport {
    /// [`STRENGTH_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The tool.
    pub tool: MutationTool,
    /// Its version line.
    pub tool_version: String,
    /// Mutants the tool generated.
    pub generated: usize,
    /// Mutants left out as equivalent (with the reasons from the file).
    pub equivalent: Vec<EquivalentMutant>,
    /// `Some(seed)` when only `total` of the remaining mutants were drawn.
    pub sample_seed: Option<u64>,
    /// Mutants judged.
    pub total: usize,
    /// Killed by a failing scenario.
    pub killed: usize,
    /// Killed because the holdout could not run against them.
    pub broken: usize,
    /// Killed by the per-mutant timeout.
    pub timeouts: usize,
    /// Survived.
    pub survived: usize,
    /// Listed by the tool but not applicable (the tool failed on them); not in `total`.
    pub not_applied: usize,
    /// `(killed + broken + timeouts) / total`, in `0..=1` (0 when `total` is 0).
    pub kill_rate: f64,
    /// Wilson 95% interval of the kill rate.
    pub wilson: Interval,
    /// Trials per scenario per mutant.
    pub trials: u32,
    /// The per-mutant limit, in ms.
    pub timeout_ms: f64,
    /// The unmutated build's holdout run, in ms.
    pub baseline_ms: f64,
    /// Wall time of the whole measurement, in ms.
    pub duration_ms: f64,
    /// The build measured, when known: a git commit, with `+dirty` when the tree had
    /// uncommitted changes. Set by the caller (`lightsout run` and `lightsout strength`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// Every judged mutant, in file and line order.
    pub mutants: Vec<MutantResult>,
}

impl StrengthReport {
    /// The survivors, in file and line order.
    pub fn survivors(&self) -> impl Iterator<Item = &MutantResult> {
        self.mutants
            .iter()
            .filter(|m| m.status == MutantStatus::Survived)
    }

    /// The report as pretty JSON.
    ///
    /// # Errors
    /// [`Error::Json`] (not expected for this type).
    pub fn to_json(&self) -> Result<String, Error> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Reads a report written by [`to_json`](Self::to_json) (`lightsout strength --format
    /// json`, or `eval/strength.json` in a run directory).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; [`Error::Mutation`] when it is not a
    /// strength report, or one of a newer schema than [`STRENGTH_SCHEMA_VERSION`].
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)?;
        let report: StrengthReport = serde_json::from_str(&text).map_err(|e| {
            Error::Mutation(format!("{} is not a strength report: {e}", path.display()))
        })?;
        if report.schema_version > STRENGTH_SCHEMA_VERSION {
            return Err(Error::Mutation(format!(
                "{} has strength schema version {}, newer than {STRENGTH_SCHEMA_VERSION}; \
                 upgrade lightsout",
                path.display(),
                report.schema_version
            )));
        }
        Ok(report)
    }

    /// A text table: the figures, then one line per survivor.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "tool        {}", self.tool_version);
        let _ = write!(s, "mutants     {} judged", self.total);
        if let Some(seed) = self.sample_seed {
            let _ = write!(
                s,
                " (a seeded sample, seed {seed}, of {} generated)",
                self.generated
            );
        } else {
            let _ = write!(s, " of {} generated", self.generated);
        }
        if !self.equivalent.is_empty() {
            let _ = write!(s, ", {} excluded as equivalent", self.equivalent.len());
        }
        s.push('\n');
        let _ = writeln!(s, "killed      {}", self.killed);
        let _ = writeln!(
            s,
            "broken      {} (the holdout could not run: counted as killed)",
            self.broken
        );
        let _ = writeln!(s, "timeouts    {} (counted as killed)", self.timeouts);
        let _ = writeln!(s, "survived    {}", self.survived);
        if self.not_applied > 0 {
            let _ = writeln!(
                s,
                "not applied {} (the tool failed to apply them; left out of the count)",
                self.not_applied
            );
        }
        let _ = writeln!(
            s,
            "kill rate   {:.1}%  wilson95 [{:.3}, {:.3}]",
            self.kill_rate * 100.0,
            self.wilson.low,
            self.wilson.high
        );
        let _ = writeln!(
            s,
            "time        {:.0} s ({} trial(s) per scenario, baseline {:.1} s, limit {:.0} s per mutant)",
            self.duration_ms / 1000.0,
            self.trials,
            self.baseline_ms / 1000.0,
            self.timeout_ms / 1000.0
        );
        if self.survived > 0 {
            let _ = writeln!(
                s,
                "\nsurvivors (the holdout cannot tell these from the build):"
            );
            let _ = writeln!(
                s,
                "  {:<28} {:>5}  {:<45} occurrence",
                "file", "line", "operator"
            );
            for m in self.survivors() {
                let _ = writeln!(
                    s,
                    "  {:<28} {:>5}  {:<45} {}",
                    m.mutant.file, m.mutant.line, m.mutant.operator, m.mutant.occurrence
                );
            }
        }
        s
    }
}

/// Measures the strength of the holdout behind `judge` on the passing build in `project`.
///
/// Steps: copy `project` (without `.git`, `target`, `node_modules`, virtualenvs) to a
/// temporary base; list the mutants with the tool; drop the declared equivalents; draw the
/// seeded sample; judge the unmutated base (it must pass); then judge each mutant in a fresh
/// copy of the base, `jobs` at once, each under the time limit.
///
/// # Errors
/// [`Error::Mutation`] when no tool fits or it is missing or fails, or when the holdout does not
/// pass on the unmutated build; [`Error::Io`] on copy failures; errors of [`Judge::judge`].
pub async fn measure(
    project: &Path,
    judge: &Judge,
    opts: &StrengthOptions,
) -> Result<StrengthReport, Error> {
    let started = Instant::now();
    let tool = match opts.tool {
        Some(t) => t,
        None => MutationTool::detect(project).ok_or_else(|| {
            Error::Mutation(format!(
                "no mutation tool fits {}: expected Python (*.py, cosmic-ray) or Rust \
                 (Cargo.toml, cargo-mutants); JS/TS (Stryker) is not wired yet",
                project.display()
            ))
        })?,
    };
    let tool_version = tool.version().await?;
    let mut scratch = tempfile::Builder::new();
    scratch.prefix("lightsout-strength-");
    let scratch = match &opts.scratch {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            scratch.tempdir_in(dir)?
        }
        None => scratch.tempdir()?,
    };
    let base = scratch.path().join("base");
    copy_project(project, &base)?;
    let all: Vec<Mutant> = list_mutants(tool, &base, scratch.path(), &opts.paths)
        .await?
        .into_iter()
        .filter(|m| in_paths(&m.file, &opts.paths))
        .collect();
    let generated = all.len();
    let (equivalent, candidates) = split_equivalents(all, &opts.equivalents);
    let (mutants, sample_seed) = match opts.max_mutants {
        Some(n) if n < candidates.len() => (sample(candidates, n, opts.seed), Some(opts.seed)),
        _ => (candidates, None),
    };
    let trials = opts.trials.max(1);
    let t0 = Instant::now();
    let baseline_ms = judge_baseline(judge, &base, trials, opts, t0).await?;
    let timeout = opts
        .timeout
        .unwrap_or_else(|| (t0.elapsed() * 4).max(Duration::from_secs(30)));
    if let Some(p) = &opts.progress {
        p(&StrengthProgress::Started {
            total: mutants.len(),
            generated,
            equivalent: equivalent.len(),
            baseline_ms,
        });
    }
    let mut results = judge_all(
        tool,
        mutants,
        judge,
        &base,
        scratch.path(),
        trials,
        timeout,
        opts,
    )
    .await?;
    sort_results(&mut results);
    Ok(summarise(
        tool,
        tool_version,
        generated,
        equivalent,
        sample_seed,
        results,
        trials,
        timeout,
        baseline_ms,
        ms(started.elapsed()),
    ))
}

/// Judges the unmutated build at `base` (started at `t0`): its time in ms; an error unless
/// the holdout passes on it.
async fn judge_baseline(
    judge: &Judge,
    base: &Path,
    trials: u32,
    opts: &StrengthOptions,
    t0: Instant,
) -> Result<f64, Error> {
    let baseline = judge
        .judge(
            base,
            trials,
            opts.timeout.unwrap_or(Duration::from_secs(600)),
        )
        .await?;
    let baseline_ms = ms(t0.elapsed());
    match baseline {
        Some(Judgement::Pass) => Ok(baseline_ms),
        Some(Judgement::Fail(d) | Judgement::Broken(d)) => Err(Error::Mutation(format!(
            "the holdout does not pass on the unmutated build ({d}); strength is measured on \
             a passing build: fix the build or the holdout first"
        ))),
        None => Err(Error::Mutation(
            "the holdout timed out on the unmutated build; raise --timeout".to_owned(),
        )),
    }
}

/// Orders results by mutant: file, line, operator, occurrence.
fn sort_results(results: &mut [MutantResult]) {
    results.sort_by(|a, b| {
        (
            &a.mutant.file,
            a.mutant.line,
            &a.mutant.operator,
            a.mutant.occurrence,
        )
            .cmp(&(
                &b.mutant.file,
                b.mutant.line,
                &b.mutant.operator,
                b.mutant.occurrence,
            ))
    });
}

#[allow(clippy::too_many_arguments)] // the steps of `measure`, kept out of its body
fn summarise(
    tool: MutationTool,
    tool_version: String,
    generated: usize,
    equivalent: Vec<EquivalentMutant>,
    sample_seed: Option<u64>,
    mutants: Vec<MutantResult>,
    trials: u32,
    timeout: Duration,
    baseline_ms: f64,
    duration_ms: f64,
) -> StrengthReport {
    let count = |s: MutantStatus| mutants.iter().filter(|m| m.status == s).count();
    let not_applied = count(MutantStatus::NotApplied);
    let total = mutants.len() - not_applied;
    let survived = count(MutantStatus::Survived);
    let kills = total - survived;
    let (k, n) = (
        u32::try_from(kills).unwrap_or(u32::MAX),
        u32::try_from(total).unwrap_or(u32::MAX),
    );
    StrengthReport {
        schema_version: STRENGTH_SCHEMA_VERSION,
        tool,
        tool_version,
        generated,
        equivalent,
        sample_seed,
        total,
        killed: count(MutantStatus::Killed),
        broken: count(MutantStatus::Broken),
        timeouts: count(MutantStatus::Timeout),
        survived,
        not_applied,
        kill_rate: if total == 0 {
            0.0
        } else {
            f64::from(k) / f64::from(n)
        },
        wilson: wilson95(k, n),
        trials,
        timeout_ms: ms(timeout),
        baseline_ms,
        duration_ms,
        build: None,
        mutants,
    }
}

#[allow(clippy::too_many_arguments)] // the steps of `measure`, kept out of its body
async fn judge_all(
    tool: MutationTool,
    mutants: Vec<Mutant>,
    judge: &Judge,
    base: &Path,
    scratch: &Path,
    trials: u32,
    timeout: Duration,
    opts: &StrengthOptions,
) -> Result<Vec<MutantResult>, Error> {
    let total = mutants.len();
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, m) in mutants.into_iter().enumerate() {
        let sem = Arc::clone(&sem);
        let judge = judge.clone();
        let base = base.to_path_buf();
        let dir = scratch.join(format!("mutant-{i}"));
        set.spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .map_err(|e| Error::Mutation(format!("job pool closed: {e}")))?;
            let r = judge_one(tool, m, &judge, &base, &dir, trials, timeout).await;
            let _ = std::fs::remove_dir_all(&dir);
            r
        });
    }
    let started = Instant::now();
    let mut out = Vec::with_capacity(total);
    let mut killed = 0;
    while let Some(joined) = set.join_next().await {
        let r = joined.map_err(|e| Error::Mutation(format!("a mutant's job failed: {e}")))??;
        killed += usize::from(r.status.is_kill());
        out.push(r);
        if let Some(p) = &opts.progress {
            let done = out.len();
            let per = started.elapsed() / u32::try_from(done).unwrap_or(u32::MAX);
            let left = u32::try_from(total - done).unwrap_or(u32::MAX);
            p(&StrengthProgress::Mutant {
                done,
                total,
                killed,
                eta: per * left,
            });
        }
    }
    Ok(out)
}

async fn judge_one(
    tool: MutationTool,
    mutant: Mutant,
    judge: &Judge,
    base: &Path,
    dir: &Path,
    trials: u32,
    timeout: Duration,
) -> Result<MutantResult, Error> {
    copy_project(base, dir)?;
    if let Err(e) = apply(tool, &mutant, dir).await {
        return Ok(MutantResult {
            mutant,
            status: MutantStatus::NotApplied,
            detail: e.to_string(),
            duration_ms: 0.0,
        });
    }
    let t0 = Instant::now();
    let verdict = judge.judge(dir, trials, timeout).await?;
    let (status, detail) = match verdict {
        None => (
            MutantStatus::Timeout,
            format!("no verdict within {:.0} s", timeout.as_secs_f64()),
        ),
        Some(Judgement::Pass) => (MutantStatus::Survived, String::new()),
        Some(Judgement::Fail(d)) => (MutantStatus::Killed, d),
        Some(Judgement::Broken(d)) => (MutantStatus::Broken, d),
    };
    Ok(MutantResult {
        mutant,
        status,
        detail,
        duration_ms: ms(t0.elapsed()),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn split_equivalents(
    all: Vec<Mutant>,
    equivalents: &[EquivalentMutant],
) -> (Vec<EquivalentMutant>, Vec<Mutant>) {
    let mut used = Vec::new();
    let mut keep = Vec::new();
    for m in all {
        match equivalents.iter().find(|e| {
            e.file == m.file
                && e.line == m.line
                && e.operator == m.operator
                && e.occurrence == m.occurrence
        }) {
            Some(e) => used.push(e.clone()),
            None => keep.push(m),
        }
    }
    (used, keep)
}

/// The first `n` mutants ordered by a seeded hash of their identity: the same seed and the
/// same code give the same sample, whatever order the tool listed them in.
fn sample(mut mutants: Vec<Mutant>, n: usize, seed: u64) -> Vec<Mutant> {
    mutants.sort_by_cached_key(|m| (splitmix64(seed ^ fnv1a(m.key().as_bytes())), m.key()));
    mutants.truncate(n);
    mutants
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `SplitMix64`'s output function (Steele, Lea and Flood, 2014).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------- files

/// Copies the project tree from `from` to `to` (created), skipping [`SKIP_DIRS`] and any
/// `.git` file; symbolic links are copied as links.
fn copy_project(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(to)?;
    let skip = |name: &std::ffi::OsStr| SKIP_DIRS.iter().any(|s| name == *s);
    for entry in lightsout_stdx::walk::walk(from, skip) {
        let entry = entry.map_err(std::io::Error::from)?;
        if entry.file_name() == ".git" {
            // A worktree's `.git` is a file pointing at the repository: never copied.
            continue;
        }
        let src = entry.path();
        let dst = to.join(src.strip_prefix(from).unwrap_or(src));
        let kind = entry.file_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&dst)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(src)?, &dst)?;
        } else {
            std::fs::copy(src, &dst)?;
        }
    }
    Ok(())
}

/// The Python files to mutate under `dir`, relative and `/`-separated, sorted: every `*.py`
/// except tests (`tests/`, `test/`, `test_*.py`, `*_test.py`, `conftest.py`) and `setup.py`.
fn python_sources(dir: &Path) -> Vec<String> {
    let skip = |name: &std::ffi::OsStr| {
        let name = name.to_string_lossy();
        SKIP_DIRS.contains(&name.as_ref())
            || name.starts_with('.')
            || name == "tests"
            || name == "test"
    };
    let mut out: Vec<String> = lightsout_stdx::walk::walk(dir, skip)
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy();
            entry.file_type().is_file()
                && Path::new(name.as_ref())
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("py"))
                && !name.starts_with("test_")
                && !name.ends_with("_test.py")
                && name != "conftest.py"
                && name != "setup.py"
        })
        .filter_map(|entry| {
            let rel = entry.path().strip_prefix(dir).ok()?;
            Some(rel.to_string_lossy().into_owned())
        })
        .collect();
    out.sort();
    out
}

// ---------------------------------------------------------------- tools

async fn tool_output(
    tool: MutationTool,
    program: &str,
    args: &[&str],
    cwd: Option<&Path>,
) -> Result<String, Error> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let out = cmd.output().await.map_err(|e| {
        Error::Mutation(format!(
            "cannot run `{program}` ({}): {e}; {}",
            tool.as_str(),
            tool.install_hint()
        ))
    })?;
    if !out.status.success() {
        return Err(Error::Mutation(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 600)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// True when `file` is one of `paths` or lies under one of them (always when `paths` is empty).
fn in_paths(file: &str, paths: &[String]) -> bool {
    paths.is_empty()
        || paths.iter().any(|p| {
            let p = p.trim_start_matches("./").trim_end_matches('/');
            file == p
                || file
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
}

async fn list_mutants(
    tool: MutationTool,
    base: &Path,
    scratch: &Path,
    paths: &[String],
) -> Result<Vec<Mutant>, Error> {
    match tool {
        MutationTool::CosmicRay => list_cosmic_ray(base, scratch, paths).await,
        MutationTool::CargoMutants => {
            let out =
                tool_output(tool, "cargo", &["mutants", "--list", "--json"], Some(base)).await?;
            parse_cargo_mutants(&out)
        }
    }
}

async fn list_cosmic_ray(
    base: &Path,
    scratch: &Path,
    paths: &[String],
) -> Result<Vec<Mutant>, Error> {
    let modules: Vec<String> = python_sources(base)
        .into_iter()
        .filter(|f| in_paths(f, paths))
        .collect();
    if modules.is_empty() {
        return Err(Error::Mutation(format!(
            "no Python files to mutate in {} (tests, setup.py and hidden folders are skipped)",
            base.display()
        )));
    }
    // The session lives outside the base so that it is not copied into the mutants; the test
    // command is never run (we only list and apply).
    let config = scratch.join("cosmic-ray.toml");
    let session = scratch.join("session.sqlite");
    let toml = format!(
        "[cosmic-ray]\nmodule-path = {}\ntimeout = 60.0\nexcluded-modules = []\n\
         test-command = \"false\"\n\n[cosmic-ray.distributor]\nname = \"local\"\n",
        serde_json::to_string(&modules)?
    );
    std::fs::write(&config, toml)?;
    let (config, session) = (config.to_string_lossy(), session.to_string_lossy());
    let cr = MutationTool::CosmicRay;
    tool_output(cr, "cosmic-ray", &["init", &config, &session], Some(base)).await?;
    let dump = tool_output(cr, "cosmic-ray", &["dump", &session], Some(base)).await?;
    parse_cosmic_ray_dump(&dump)
}

/// Parses `cosmic-ray dump` (one `[work_item, result]` JSON array per line).
fn parse_cosmic_ray_dump(dump: &str) -> Result<Vec<Mutant>, Error> {
    #[derive(Deserialize)]
    struct Mutation {
        module_path: String,
        operator_name: String,
        occurrence: u32,
        start_pos: (u32, u32),
    }
    #[derive(Deserialize)]
    struct WorkItem {
        mutations: Vec<Mutation>,
    }
    let mut out = Vec::new();
    for line in dump.lines().filter(|l| !l.trim().is_empty()) {
        let (item, _result): (WorkItem, serde_json::Value) = serde_json::from_str(line)
            .map_err(|e| Error::Mutation(format!("unexpected `cosmic-ray dump` line: {e}")))?;
        for m in item.mutations {
            out.push(Mutant {
                file: m.module_path.replace('\\', "/"),
                line: m.start_pos.0,
                operator: m.operator_name,
                occurrence: m.occurrence,
                description: None,
                splice: None,
            });
        }
    }
    Ok(out)
}

/// Parses `cargo mutants --list --json` (an array of mutants with `file`, `span`, `genre`
/// and `replacement`).
fn parse_cargo_mutants(json: &str) -> Result<Vec<Mutant>, Error> {
    #[derive(Deserialize)]
    struct Pos {
        line: usize,
        column: usize,
    }
    #[derive(Deserialize)]
    struct Span {
        start: Pos,
        end: Pos,
    }
    #[derive(Deserialize)]
    struct Item {
        file: String,
        span: Span,
        #[serde(default)]
        genre: String,
        #[serde(default)]
        replacement: String,
    }
    let items: Vec<Item> = serde_json::from_str(json)
        .map_err(|e| Error::Mutation(format!("unexpected `cargo mutants --list --json`: {e}")))?;
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, it)| Mutant {
            file: it.file,
            line: u32::try_from(it.span.start.line).unwrap_or(u32::MAX),
            operator: it.genre,
            occurrence: u32::try_from(i).unwrap_or(u32::MAX),
            description: Some(it.replacement.clone()),
            splice: Some(Splice {
                start: (it.span.start.line, it.span.start.column),
                end: (it.span.end.line, it.span.end.column),
                replacement: it.replacement,
            }),
        })
        .collect())
}

async fn apply(tool: MutationTool, m: &Mutant, dir: &Path) -> Result<(), Error> {
    match (tool, &m.splice) {
        (MutationTool::CosmicRay, _) => {
            let occ = m.occurrence.to_string();
            tool_output(
                tool,
                "cosmic-ray",
                &["apply", &m.file, &m.operator, &occ],
                Some(dir),
            )
            .await?;
            Ok(())
        }
        (MutationTool::CargoMutants, Some(s)) => {
            let path = dir.join(&m.file);
            let text = std::fs::read_to_string(&path)?;
            let mutated = splice(&text, s).ok_or_else(|| {
                Error::Mutation(format!("the span of {} is outside the file", m.label()))
            })?;
            std::fs::write(&path, mutated)?;
            Ok(())
        }
        (MutationTool::CargoMutants, None) => Err(Error::Mutation(format!(
            "{} has no span to replace",
            m.label()
        ))),
    }
}

/// `text` with the span replaced; `None` when the span is outside it.
fn splice(text: &str, s: &Splice) -> Option<String> {
    let offset = |(line, col): (usize, usize)| -> Option<usize> {
        let mut at = 0;
        for (i, l) in text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                let within = l
                    .char_indices()
                    .nth(col.checked_sub(1)?)
                    .map_or(l.len(), |c| c.0);
                return Some(at + within);
            }
            at += l.len();
        }
        None
    };
    let (a, b) = (offset(s.start)?, offset(s.end)?);
    (a <= b).then(|| format!("{}{}{}", &text[..a], s.replacement, &text[b..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mutant(file: &str, line: u32, op: &str, occ: u32) -> Mutant {
        Mutant {
            file: file.into(),
            line,
            operator: op.into(),
            occurrence: occ,
            description: None,
            splice: None,
        }
    }

    #[test]
    fn cosmic_ray_dump_lines_become_mutants() {
        let dump = r#"[{"job_id": "7f", "mutations": [{"module_path": "shortener/http.py", "operator_name": "core/AddNot", "occurrence": 1, "start_pos": [65, 11], "end_pos": [65, 48], "operator_args": {}, "definition_name": "json"}]}, null]"#;
        let m = parse_cosmic_ray_dump(dump).unwrap();
        assert_eq!(m, vec![mutant("shortener/http.py", 65, "core/AddNot", 1)]);
    }

    #[test]
    fn sample_is_seeded_and_independent_of_listing_order() {
        let all: Vec<Mutant> = (0..50).map(|i| mutant("a.py", i, "op", 0)).collect();
        let mut rev = all.clone();
        rev.reverse();
        let a = sample(all.clone(), 10, 7);
        assert_eq!(a.len(), 10);
        assert_eq!(a, sample(rev, 10, 7));
        assert_ne!(a, sample(all, 10, 8));
    }

    #[test]
    fn equivalents_match_on_all_four_fields() {
        let eq = EquivalentMutant {
            file: "a.py".into(),
            line: 3,
            operator: "op".into(),
            occurrence: 1,
            why: "timeout constant".into(),
        };
        let all = vec![
            mutant("a.py", 3, "op", 1),
            mutant("a.py", 4, "op", 1),
            mutant("a.py", 3, "op", 2),
        ];
        let (used, keep) = split_equivalents(all, std::slice::from_ref(&eq));
        assert_eq!(used, vec![eq]);
        assert_eq!(keep.len(), 2);
    }

    #[test]
    fn an_equivalent_without_a_reason_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("eq.toml");
        std::fs::write(
            &p,
            "[[mutant]]\nfile = \"a.py\"\nline = 1\noperator = \"op\"\noccurrence = 0\nwhy = \" \"\n",
        )
        .unwrap();
        let e = read_equivalents(&p).unwrap_err().to_string();
        assert!(e.contains("no `why`"), "{e}");
    }

    #[test]
    fn runner_output_names_the_failing_requirements() {
        let out = "noise\n{\"requirements\": [{\"id\": \"REQ-1\", \"trials\": 2, \"passed\": 2}, {\"id\": \"REQ-2\", \"trials\": 2, \"passed\": 1}]}\n";
        assert_eq!(
            runner_judgement(out, 1),
            Judgement::Fail("failed: REQ-2".to_owned())
        );
        assert!(matches!(
            runner_judgement("no json", 0),
            Judgement::Broken(_)
        ));
        // A service that did not start verified nothing: never a pass.
        let down = r#"{"gate": "failed", "requirements": [{"id": "REQ-1", "trials": 0, "passed": 0, "category": "service did not start"}]}"#;
        assert!(
            matches!(runner_judgement(down, 0), Judgement::Broken(ref d) if d.contains("service did not start")),
            "{:?}",
            runner_judgement(down, 0)
        );
        // Requirements not reached after a failure (fail fast) decide nothing on their own.
        let ok = r#"{"gate": "passed", "requirements": [{"id": "REQ-1", "trials": 1, "passed": 1}, {"id": "REQ-2", "trials": 0, "passed": 0}]}"#;
        assert_eq!(runner_judgement(ok, 0), Judgement::Pass);
        let gate =
            r#"{"gate": "failed", "requirements": [{"id": "REQ-1", "trials": 1, "passed": 1}]}"#;
        assert!(matches!(runner_judgement(gate, 0), Judgement::Fail(_)));
        let insufficient = r#"{"gate": "insufficient_evidence", "requirements": [{"id": "REQ-1", "trials": 1, "passed": 1}]}"#;
        assert_eq!(runner_judgement(insufficient, 0), Judgement::Pass);
    }

    #[test]
    fn splice_replaces_a_span_by_line_and_column() {
        let s = Splice {
            start: (2, 5),
            end: (2, 10),
            replacement: "0".into(),
        };
        assert_eq!(
            splice("fn a() {}\n    x + 1;\n", &s).as_deref(),
            Some("fn a() {}\n    0;\n")
        );
        let out = Splice {
            start: (9, 1),
            end: (9, 2),
            replacement: String::new(),
        };
        assert_eq!(splice("a\n", &out), None);
    }

    #[test]
    fn paths_select_files_and_folders() {
        let paths = vec!["pkg/".to_owned(), "./app.py".to_owned()];
        assert!(in_paths("pkg/a.py", &paths));
        assert!(in_paths("app.py", &paths));
        assert!(!in_paths("pkgx/a.py", &paths));
        assert!(!in_paths("other.py", &paths));
        assert!(in_paths("other.py", &[]));
    }

    #[test]
    fn python_sources_skip_tests_and_hidden_folders() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "app.py",
            "pkg/mod.py",
            "tests/test_app.py",
            "pkg/test_mod.py",
            ".venv/x.py",
            "setup.py",
            "README.md",
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x = 1\n").unwrap();
        }
        assert_eq!(python_sources(dir.path()), vec!["app.py", "pkg/mod.py"]);
    }
}
