//! `lightsout.toml`: agents per task kind, visible checks, attempts, limits, holdout location.
//!
//! ```toml
//! [run]
//! jobs = 4            # agents at once
//! attempts = 3        # attempts per task (conflict and regression rework included)
//! main = "main"       # the branch passing work merges into
//!
//! [agents]
//! default = "claude"  # profile for every task kind not listed below
//! [agents.kinds]
//! docs = "aider"      # a cheaper agent for lower-stakes kinds
//!
//! [agent.claude]
//! preset = "claude-code"   # claude-code | codex | aider | replay | command
//! # program = "/opt/bin/claude"; args = [...]; prompt = "stdin"|"file"; format = "claude-json"
//! [agent.demo]
//! preset = "replay"
//! trajectory = "trajectory"   # relative to this file
//!
//! [env]                       # the one environment allowlist (agents, checks, holdout runner)
//! allow = ["PATH", "HOME"]    # globs; names matching `deny` (secrets) are dropped
//! pass = ["ANTHROPIC_API_KEY"] # exact names handed to the agent process alone
//!
//! [limits]
//! wall_ms = 1800000
//! output_bytes = 16777216
//!
//! [[checks]]
//! name = "test"
//! run = "cargo test"
//! timeout_ms = 600000
//!
//! [holdout]
//! path = "../holdout"          # outside the repository; LIGHTSOUT_HOLDOUT overrides
//! redaction = "requirement"    # none | requirement | category | full
//! trials = 5                   # eval engine: trials per scenario (default 5; gate rules may ask more)
//! # command = "sh run.sh"      # an external holdout runner instead (see CommandEvaluator)
//!
//! [target]                     # how the eval engine starts the software in a worktree
//! command = "cargo run -q -- --port {port}"
//! ready_path = "/health"
//!
//! [twins]                      # served on loopback for each evaluation
//! slack = "builtin"            # or a twin directory, or the URL of a running twin
//!
//! [gate]                       # lightsout-eval's GatePolicy, as TOML
//!
//! [tuning]                     # lightsout-tune: declared variants, objective, bounds
//! incumbent = "claude"         # (see lightsout_tune::config; cannot reach holdout,
//! [[tuning.variant]]           #  gate, budgets or fence)
//! name = "claude"
//! agent = "claude"
//!
//! [memory]
//! enabled = true               # .lightsout/memory.db: context packs, guards, lessons
//! budget_tokens = 1500
//!
//! [budget.task]                # caps per task; also [budget.run] and [budget.day]
//! attempts = 3
//! usd = 2.50
//! [budget.call]                # what each agent call reserves before it starts
//! tokens = 50000
//! usd = 0.40
//! ```
//! Every table refuses keys it does not know; the error names the key, its line and the
//! nearest valid key ([`strict`]). [`explain`] gives each resolved value with its origin
//! (`lightsout config check`).
//!
//! `[budget]` ([`BudgetConfig`](lightsout_fence::budget::BudgetConfig): `[budget.task]`,
//! `[budget.run]`, `[budget.day]` caps with `attempts`, `wall_ms`, `tokens`, `usd`, and
//! `[budget.call]`, what each agent call reserves) and `[fence]`
//! ([`FenceConfig`](lightsout_fence::policy::FenceConfig)) and `[store]` ([`StoreSection`]:
//! `url`, the fleet's shared store, and the caps of
//! [`StoreCaps`](lightsout_git::integrity::StoreCaps): `max_file_bytes`, `max_diff_bytes`,
//! `max_files`) are optional. Sections other
//! stages own (`[gate]`, `[strength]`, `[tuning]`) are kept as raw TOML for them; `[tuning]` is
//! checked strictly by `lightsout-tune` when the config is parsed.

mod error;
mod explain;
mod strict;

pub use explain::{Explained, Source, Value as ExplainedValue, explain};
pub use strict::{did_you_mean, nearest};

pub use error::Error;
use lightsout_agent::{OutputFormat, ProcessLimits, PromptMode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `[run]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Agents working at once (`--jobs` overrides). At least 1.
    pub jobs: usize,
    /// Attempts per task, counting rework after a regression. At least 1.
    pub attempts: u32,
    /// The branch that passing work fast-forwards.
    pub main: String,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            jobs: 2,
            attempts: 3,
            main: "main".into(),
        }
    }
}

/// `[agents]`: which profile serves which task kind.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentsConfig {
    /// Profile for kinds not listed in `kinds`.
    pub default: Option<String>,
    /// Task kind → profile name.
    pub kinds: BTreeMap<String, String>,
}

/// `[agent.<name>]`: one agent profile.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentProfile {
    /// `claude-code`, `codex`, `aider`, `replay` or `command`.
    pub preset: String,
    /// Program override (presets) or the program (`command`).
    pub program: Option<String>,
    /// Argument override.
    pub args: Option<Vec<String>>,
    /// Prompt mode override.
    pub prompt: Option<PromptMode>,
    /// Output format override.
    pub format: Option<OutputFormat>,
    /// `replay`: the trajectory directory, relative to the config file.
    pub trajectory: Option<PathBuf>,
}

/// `[env]`: the one environment allowlist of a run (agents, visible checks, the holdout
/// runner), in the fence's form: `allow` and `deny` globs, `pass` exact names for the agent
/// process only, `set` fixed values. See [`Config::allowed_env`].
pub use lightsout_fence::policy::EnvConfig;

/// `[[checks]]`: a visible check, run in the worktree with `sh -c`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// Short name (`build`, `test`, `lint`).
    pub name: String,
    /// Shell command.
    pub run: String,
    /// Time limit in ms (default 10 minutes).
    #[serde(default = "default_check_ms")]
    pub timeout_ms: u64,
}

fn default_check_ms() -> u64 {
    600_000
}

/// How much the feedback to an agent may say about holdout failures
/// (`scenario-format.md`, "Results"; the same levels as `lightsout_eval::RedactLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Redaction {
    /// Nothing redacted beyond what the evaluator reports (for humans; the external runner
    /// reports requirement, counts and category only, so this equals `requirement` there).
    None,
    /// The requirement id, trial counts and failure category (the default).
    #[default]
    Requirement,
    /// The failure category and trial counts only, not which requirement.
    Category,
    /// Only that the holdout failed, and how many requirements.
    Full,
}

/// `[holdout]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HoldoutConfig {
    /// The holdout directory (relative to the config file). Must lie outside the repository.
    pub path: Option<PathBuf>,
    /// An external holdout runner, run with `sh -c` in the holdout directory.
    pub command: Option<String>,
    /// Feedback redaction level.
    pub redaction: Redaction,
    /// Fail a requirement the holdout has no result for (default true: fail closed).
    pub require_all: Option<bool>,
    /// Trials per scenario with the eval engine (default 1).
    pub trials: Option<u32>,
}

/// `[target]`: how the eval engine starts the software under test in a worktree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// Shell command; `{port}` becomes a free loopback port.
    pub command: String,
    /// Readiness probe path (default `/`).
    #[serde(default = "default_ready_path")]
    pub ready_path: String,
    /// Readiness timeout in ms (default 30 000).
    #[serde(default = "default_ready_ms")]
    pub ready_timeout_ms: u64,
}

fn default_ready_path() -> String {
    "/".into()
}

fn default_ready_ms() -> u64 {
    30_000
}

/// `[memory]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemorySection {
    /// Use decision memory (`.lightsout/memory.db`) for context packs, guards and lessons.
    pub enabled: bool,
    /// Token budget of a context pack.
    pub budget_tokens: usize,
}

impl Default for MemorySection {
    fn default() -> Self {
        MemorySection {
            enabled: true,
            budget_tokens: 1500,
        }
    }
}

/// `[store]`: where a fleet's shared state lives (`url`), and the caps on what one attempt
/// can make the factory commit ([`StoreCaps`](lightsout_git::integrity::StoreCaps), which this
/// dereferences to).
///
/// ```toml
/// [store]
/// url = "postgres://lightsout@db:5432/factory"   # or a SQLite file, relative to this file
/// max_file_bytes = 10485760
/// ```
///
/// `url` is what `lightsout run`, `lightsout worker` and `lightsout status` use when they are
/// given no `--store` (which wins, and so does `LIGHTSOUT_STORE`): with it, `lightsout run`
/// plans the specs for the fleet instead of building them here. A `postgres://` (or
/// `postgresql://`) URL names a server; anything else without a scheme is a `SQLite` file.
/// Other schemes are refused when the file is read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "StoreToml", into = "StoreToml")]
pub struct StoreSection {
    /// The shared store: a `postgres://` URL or a `SQLite` file (relative to the config file;
    /// [`Config::store_url`] resolves it). `None` when not written.
    pub url: Option<String>,
    /// The caps of `[store]` (`max_file_bytes`, `max_diff_bytes`, `max_files`).
    pub caps: lightsout_git::integrity::StoreCaps,
}

impl std::ops::Deref for StoreSection {
    type Target = lightsout_git::integrity::StoreCaps;

    fn deref(&self) -> &Self::Target {
        &self.caps
    }
}

/// `[store]` as written: one flat table, every key known.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct StoreToml {
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    max_file_bytes: u64,
    max_diff_bytes: u64,
    max_files: u64,
}

impl Default for StoreToml {
    fn default() -> Self {
        StoreSection::default().into()
    }
}

impl From<StoreToml> for StoreSection {
    fn from(t: StoreToml) -> Self {
        Self {
            url: t.url,
            caps: lightsout_git::integrity::StoreCaps {
                max_file_bytes: t.max_file_bytes,
                max_diff_bytes: t.max_diff_bytes,
                max_files: t.max_files,
            },
        }
    }
}

impl From<StoreSection> for StoreToml {
    fn from(s: StoreSection) -> Self {
        Self {
            url: s.url,
            max_file_bytes: s.caps.max_file_bytes,
            max_diff_bytes: s.caps.max_diff_bytes,
            max_files: s.caps.max_files,
        }
    }
}

pub use lightsout_stdx::is_postgres_url;

/// `[gc]`: how long `lightsout gc` keeps a run's worktrees, branches, attempt refs and run
/// directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcSection {
    /// Runs whose journal was last written at least this many days ago are pruned (`gc
    /// --older-than` overrides). Default 30.
    pub keep_days: u32,
}

impl Default for GcSection {
    fn default() -> Self {
        GcSection { keep_days: 30 }
    }
}

/// The whole `lightsout.toml`. Every table refuses keys it does not know
/// (`deny_unknown_fields`): a typo is an error naming the key and the nearest valid one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[run]`.
    pub run: RunConfig,
    /// `[agents]`.
    pub agents: AgentsConfig,
    /// `[agent.<name>]` profiles.
    pub agent: BTreeMap<String, AgentProfile>,
    /// `[env]`.
    pub env: EnvConfig,
    /// `[limits]` for agent processes.
    pub limits: ProcessLimits,
    /// `[[checks]]`.
    pub checks: Vec<CheckConfig>,
    /// `[holdout]`.
    pub holdout: HoldoutConfig,
    /// `[target]`, for the eval engine.
    pub target: Option<TargetSection>,
    /// `[memory]`.
    pub memory: MemorySection,
    /// `[budget]`: attempts, wall time, tokens and USD caps per task, run and UTC day, and
    /// what each agent call reserves (`[budget.task]`, `[budget.run]`, `[budget.day]`,
    /// `[budget.call]`). Default: no caps.
    pub budget: lightsout_fence::budget::BudgetConfig,
    /// `[prices]`: USD per million input and output tokens per model (`"*"` for any other
    /// model), which turns the tokens a tool reports into dollars when it reports no cost
    /// (Codex), so USD budgets see it. Default: empty.
    pub prices: lightsout_agent::Prices,
    /// `[fence]` (alias `[policy]`): the process policy every command agent of a run runs
    /// behind (env allowlist, output cap, wall limit, the bubblewrap sandbox with its
    /// network and PID namespaces and read-only root, watched directories), through
    /// [`FencedAgent`](lightsout_fence::agent::FencedAgent). The run loop watches the
    /// repository and the holdout directory when `watch` is empty, and hides the holdout. The
    /// visible checks and the service under test run behind the same fence.
    /// Default: [`FenceConfig::default`](lightsout_fence::policy::FenceConfig).
    #[serde(alias = "policy")]
    pub fence: lightsout_fence::policy::FenceConfig,
    /// `[store]`: the fleet's shared store (`url`), and caps on what one attempt can make
    /// the factory commit (one file, all files, the number of paths), checked before `git
    /// add`. Default: no `url`, [`StoreCaps::default`](lightsout_git::integrity::StoreCaps)
    /// (10 MiB, 50 MiB, 10,000).
    pub store: StoreSection,
    /// `[gate]`: more gate rules, raw TOML for `lightsout-eval`'s `GatePolicy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<toml::Value>,
    /// `[twins]`: name → `"builtin"`, a twin directory (relative to this file) or a URL.
    pub twins: BTreeMap<String, String>,
    /// `[gc]`: the retention of `lightsout gc`.
    pub gc: GcSection,
    /// `[strength]`: raw TOML for `lightsout strength`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strength: Option<toml::Value>,
    /// `[tuning]` and `[[tuning.variant]]`: raw TOML, read strictly by `lightsout-tune`
    /// ([`lightsout_tune::config::parse`]) when the config is parsed. It declares variants,
    /// the objective and the tuner's bounds, and cannot reach the holdout, the gate, the
    /// budgets or the fence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tuning: Option<toml::Value>,
    /// The directory the config was read from (relative paths resolve against it).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl Config {
    /// Parses `text` (the contents of a `lightsout.toml` in `base_dir`).
    ///
    /// # Errors
    /// [`Error::Config`] with the TOML error and what to fix.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Self, Error> {
        let mut c: Config = toml::from_str(text).map_err(|e| {
            let mut m = strict::explain_toml_error(&e, text);
            if m.contains("expected struct Price") {
                m.push_str(
                    "; a price belongs to a model: [prices.\"<model>\"] with input = and \
                     output = in USD per million tokens ([prices.\"*\"] for any model)",
                );
            }
            Error::Config(m)
        })?;
        strict::refuse_fence_env(text)?;
        lightsout_tune::config::load(text).map_err(|e| Error::Config(e.to_string()))?;
        strict::check_env(&c.env)?;
        // One allowlist: the fence applies `[env]` to every agent process.
        c.fence.env = c.env.clone();
        base_dir.clone_into(&mut c.base_dir);
        if let Some((model, which)) = c.prices.invalid() {
            return Err(Error::Config(format!(
                "[prices.\"{model}\"] {which} must be a number of USD per million tokens, 0 or more"
            )));
        }
        if c.run.jobs == 0 {
            return Err(Error::Config("[run] jobs must be at least 1".into()));
        }
        if let Some(url) = &c.store.url {
            strict::check_store_url(url, text)?;
        }
        if c.run.attempts == 0 {
            return Err(Error::Config("[run] attempts must be at least 1".into()));
        }
        let profiles = || c.agent.keys().map(String::as_str);
        for (kind, profile) in &c.agents.kinds {
            if !c.agent.contains_key(profile) {
                return Err(Error::Config(format!(
                    "[agents.kinds] {kind} = \"{profile}\" names no [agent.{profile}] section{}",
                    strict::did_you_mean(profile, profiles())
                )));
            }
        }
        if let Some(d) = &c.agents.default
            && !c.agent.contains_key(d)
        {
            return Err(Error::Config(format!(
                "[agents] default = \"{d}\" names no [agent.{d}] section{}; add one, e.g. \
                 [agent.{d}] preset = \"claude-code\"",
                strict::did_you_mean(d, profiles())
            )));
        }
        for (name, p) in &c.agent {
            if !p.preset.is_empty() && !PRESETS.contains(&p.preset.as_str()) {
                return Err(Error::Config(format!(
                    "[agent.{name}] preset = \"{}\" is unknown{}; use one of {}",
                    p.preset,
                    strict::did_you_mean(&p.preset, PRESETS.iter().copied()),
                    PRESETS.join(", ")
                )));
            }
        }
        Ok(c)
    }

    /// Reads `path`.
    ///
    /// # Errors
    /// [`Error::Config`] when it is missing or invalid.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "cannot read {}: {e}; run `lightsout init` to create one",
                path.display()
            ))
        })?;
        let base = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Self::parse(&text, &base)
    }

    /// `[store] url` as `lightsout run`, `worker` and `status` use it: a Postgres URL as
    /// written, a `SQLite` file resolved against the config's directory. `None` when not set.
    pub fn store_url(&self) -> Option<String> {
        let url = self.store.url.as_deref()?;
        Some(if is_postgres_url(url) {
            url.to_owned()
        } else {
            self.base_dir.join(url).to_string_lossy().into_owned()
        })
    }

    /// The profile name serving task `kind`.
    pub fn profile_for(&self, kind: &str) -> Option<&str> {
        self.agents
            .kinds
            .get(kind)
            .or(self.agents.default.as_ref())
            .map(String::as_str)
    }

    /// The holdout directory: `LIGHTSOUT_HOLDOUT` when set (`env_override`), else
    /// `[holdout] path` resolved against the config's directory.
    pub fn holdout_dir(&self, env_override: Option<&str>) -> Option<PathBuf> {
        if let Some(p) = env_override.filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        self.holdout.path.as_ref().map(|p| self.base_dir.join(p))
    }

    /// The environment agents, visible checks and the holdout runner get from `from` (the
    /// factory's own environment): the names `[env] allow` lets through and `[env] deny`
    /// does not drop, plus `[env] set`. The exact names of `[env] pass` are not in it: the
    /// fence adds them to the agent process alone.
    pub fn allowed_env<I: IntoIterator<Item = (String, String)>>(
        &self,
        from: I,
    ) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        env.pass.clear();
        // `parse` compiled these globs already; a failure here passes nothing (fail closed).
        let Ok(policy) = lightsout_fence::policy::EnvPolicy::new(&env) else {
            return BTreeMap::new();
        };
        policy
            .plan(from.into_iter().map(|(k, v)| (k.into(), v.into())))
            .vars
            .into_iter()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }
}

/// The preset names an `[agent.<name>]` profile may use.
pub const PRESETS: &[&str] = &["claude-code", "codex", "aider", "replay", "command"];

/// Refuses a holdout directory inside the repository or inside any of its worktrees.
///
/// `roots` are the repository root and every worktree (`git worktree list`). Paths are
/// compared after canonicalisation, so symlinks and `..` cannot smuggle it in.
///
/// # Errors
/// [`Error::HoldoutInRepo`] when `holdout` lies inside one of `roots`; [`Error::Config`]
/// when it does not exist.
pub fn check_holdout_location(holdout: &Path, roots: &[PathBuf]) -> Result<PathBuf, Error> {
    let h = holdout.canonicalize().map_err(|e| {
        Error::Config(format!(
            "holdout directory {}: {e}; create it outside the repository or fix [holdout] path",
            holdout.display()
        ))
    })?;
    for r in roots {
        let Ok(r) = r.canonicalize() else { continue };
        if h.starts_with(&r) {
            return Err(Error::HoldoutInRepo {
                holdout: h,
                root: r,
            });
        }
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config() {
        let c = Config::parse(
            r#"
[run]
jobs = 3
attempts = 2
[agents]
default = "claude"
[agents.kinds]
docs = "cheap"
[agent.claude]
preset = "claude-code"
[agent.cheap]
preset = "aider"
args = ["--model", "haiku"]
[[checks]]
name = "test"
run = "cargo test"
[holdout]
path = "../holdout"
redaction = "category"
[gate]
min_satisfaction = 0.95
"#,
            Path::new("/p"),
        )
        .unwrap();
        assert_eq!(c.run.jobs, 3);
        assert_eq!(c.profile_for("docs"), Some("cheap"));
        assert_eq!(c.profile_for("code"), Some("claude"));
        assert_eq!(c.checks[0].timeout_ms, 600_000);
        assert_eq!(c.holdout.redaction, Redaction::Category);
        assert!(c.gate.is_some());
        assert_eq!(c.holdout_dir(None), Some(PathBuf::from("/p/../holdout")));
        assert_eq!(c.holdout_dir(Some("/h")), Some(PathBuf::from("/h")));
    }

    #[test]
    fn budget_and_fence_sections_are_optional_and_parsed() {
        let c = Config::parse("", Path::new(".")).unwrap();
        assert_eq!(c.budget, lightsout_fence::budget::BudgetConfig::default());
        assert_eq!(c.fence, lightsout_fence::policy::FenceConfig::default());
        let c = Config::parse(
            "[budget.task]\nusd = 0.5\nattempts = 2\n[budget.run]\ntokens = 100000\n\
             [budget.call]\ntokens = 5000\n[fence]\noutput_bytes = 1024\n",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.budget.per_task.usd, Some(0.5));
        assert_eq!(c.budget.per_task.attempts, Some(2));
        assert_eq!(c.budget.per_run.tokens, Some(100_000));
        assert_eq!(c.budget.per_call.tokens, Some(5000));
        assert_eq!(c.fence.output_bytes, 1024);

        let e = Config::parse("[budget.task]\nusdd = 1.0\n", Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("usdd"), "{e}");
        let example = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/url-shortener/lightsout.toml");
        let text = std::fs::read_to_string(&example).unwrap();
        Config::parse(&text, example.parent().unwrap()).unwrap();
    }

    /// The `[fence]` example in README.md parses to what it says.
    #[test]
    fn the_readme_fence_example_parses() {
        let readme =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
                .unwrap();
        let section = readme
            .split("## Running real agents behind the fence")
            .nth(1)
            .expect("the README has the fence section");
        let toml = section
            .split("```toml\n")
            .nth(1)
            .and_then(|s| s.split("```").next())
            .expect("a toml block");
        let c = Config::parse(toml, Path::new(".")).unwrap();
        assert_eq!(c.fence.network, lightsout_fence::policy::NetworkMode::Hosts);
        assert_eq!(c.fence.hosts, vec!["api.anthropic.com".to_owned()]);
        assert_eq!(c.env.pass, vec!["ANTHROPIC_API_KEY".to_owned()]);
        assert_eq!(c.fence.env.pass, c.env.pass);
        assert_eq!(c.budget.per_task.usd, Some(2.5));
        assert_eq!(c.budget.per_call.usd, Some(0.4));
    }

    /// Every typo is an error naming the key, where it is, and the nearest valid key.
    #[test]
    fn typos_are_errors_that_name_the_key_and_the_suggestion() {
        let check = |text: &str, want: &[&str]| {
            let e = Config::parse(text, Path::new(".")).unwrap_err().to_string();
            for w in want {
                assert!(e.contains(w), "`{w}` missing from: {e}");
            }
        };
        check(
            "[run]\natempts = 1\n",
            &[
                "lightsout.toml:2:1",
                "unknown key `atempts` in [run]",
                "did you mean `attempts`?",
            ],
        );
        check(
            "[agents]\ndefualt = \"mine\"\n[agent.mine]\npreset = \"command\"\nprogram = \"x\"\n",
            &[
                "unknown key `defualt` in [agents]",
                "did you mean `default`?",
            ],
        );
        check(
            "[run]\njobs = 1\n\n[traget]\ncommand = \"x\"\n",
            &[
                "lightsout.toml:4:",
                "unknown section [traget]",
                "did you mean `target`?",
            ],
        );
        check(
            "[agent.a]\npreset = \"command\"\nprogramme = \"x\"\n",
            &[
                "unknown key `programme` in [agent.a]",
                "did you mean `program`?",
            ],
        );
        check(
            "[agent.a]\npreset = \"claud-code\"\n",
            &[
                "preset = \"claud-code\" is unknown",
                "did you mean `claude-code`?",
            ],
        );
        check(
            "[agent.a]\npreset = \"claude-code\"\nformat = \"claude-jsn\"\n",
            &["unknown value `claude-jsn`", "did you mean `claude-json`?"],
        );
        check(
            "[agents]\ndefault = \"claud\"\n[agent.claude]\npreset = \"claude-code\"\n",
            &["names no [agent.claud] section", "did you mean `claude`?"],
        );
        check(
            "[budget.task]\nusdd = 1.0\n",
            &["unknown key `usdd` in [budget.task]", "did you mean `usd`?"],
        );
        check("[limits]\nwall_sm = 1\n", &["did you mean `wall_ms`?"]);
        check(
            "[prices.\"gpt-5-codex\"]\ninput = 1.25\nouptut = 10.0\n",
            &["unknown key `ouptut`", "did you mean `output`?"],
        );
        check(
            "[prices]\ninput = 1.0\noutput = 10.0\n",
            &["a price belongs to a model: [prices.\"<model>\"]"],
        );
        check(
            "[prices.\"*\"]\ninput = -1.0\noutput = 10.0\n",
            &["[prices.\"*\"] input must be a number of USD per million tokens"],
        );
        check("[env]\nalow = [\"PATH\"]\n", &["did you mean `allow`?"]);
        check(
            "[holdout]\nredaction = \"requirment\"\n",
            &["did you mean `requirement`?"],
        );
        // `[tuning]` is read strictly by lightsout-tune, and cannot reach the holdout.
        let tuning = "[agent.a]\npreset = \"claude-code\"\n[tuning]\nincumbent = \"v\"\n\
                      [[tuning.variant]]\nname = \"v\"\nagent = \"a\"\n";
        assert!(
            Config::parse(tuning, Path::new("."))
                .unwrap()
                .tuning
                .is_some()
        );
        check(
            &tuning.replace("incumbent", "holdout = \"../h\"\nincumbent"),
            &["lightsout.toml:4:1", "[tuning] cannot reach `holdout`"],
        );
        check(
            &tuning.replace("incumbent", "auto_acept = true\nincumbent"),
            &["did you mean `auto_accept`?"],
        );
    }

    /// `[store] url` names the fleet's store; a typo in `[store]` is caught with its place, a
    /// scheme the store does not speak is refused, and the caps keep their keys.
    #[test]
    fn the_store_section_holds_the_fleets_url_and_the_caps() {
        let c = Config::parse(
            "[store]\nurl = \"postgres://lightsout@db:5432/factory\"\nmax_files = 7\n",
            Path::new("/p"),
        )
        .unwrap();
        assert_eq!(
            c.store_url().as_deref(),
            Some("postgres://lightsout@db:5432/factory")
        );
        assert_eq!(c.store.max_files, 7);
        assert_eq!(
            c.store.max_file_bytes,
            lightsout_git::integrity::StoreCaps::default().max_file_bytes
        );
        // A SQLite file is relative to the config's directory.
        let c = Config::parse("[store]\nurl = \"fleet/state.db\"\n", Path::new("/p")).unwrap();
        assert_eq!(c.store_url().as_deref(), Some("/p/fleet/state.db"));
        assert_eq!(
            Config::parse("", Path::new("/p")).unwrap().store_url(),
            None
        );

        let e = Config::parse(
            "[run]\njobs = 1\n[store]\nulr = \"postgres://h/db\"\n",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        for want in [
            "lightsout.toml:4:1",
            "unknown key `ulr` in [store]",
            "did you mean `url`?",
        ] {
            assert!(e.contains(want), "`{want}` missing from: {e}");
        }
        let e = Config::parse("[store]\nurl = \"mysql://h/db\"\n", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("lightsout.toml:2:7")
                && e.contains("scheme the fleet's store does not speak"),
            "{e}"
        );
    }

    #[test]
    fn prices_are_read_per_model() {
        let c = Config::parse(
            "[prices.\"gpt-5-codex\"]\ninput = 1.25\noutput = 10.0\n[prices.\"*\"]\ninput = 3\noutput = 15\n",
            Path::new("."),
        )
        .unwrap();
        let cost = c
            .prices
            .cost(Some("gpt-5-codex"), 2_000_000, 100_000)
            .unwrap();
        assert!((cost - 3.5).abs() < 1e-9, "{cost}");
        let cost = c.prices.cost(None, 1_000_000, 0).unwrap();
        assert!((cost - 3.0).abs() < 1e-9, "{cost}");
    }

    #[test]
    fn the_environment_has_one_allowlist() {
        // `[fence.env]` is refused: `[env]` is the one place.
        let e = Config::parse("[fence.env]\npass = [\"K\"]\n", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[fence.env] is not read") && e.contains("[env]"),
            "{e}"
        );
        // An exact name that deny would drop is an error pointing to `pass`.
        let e = Config::parse(
            "[env]\nallow = [\"PATH\", \"MY_API_KEY\"]\n",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`MY_API_KEY`") && e.contains("[env] pass"),
            "{e}"
        );
        let c = Config::parse(
            "[env]\nallow = [\"PATH\", \"E2E_*\"]\npass = [\"MY_API_KEY\"]\nset = { CI = \"1\" }\n",
            Path::new("."),
        )
        .unwrap();
        // The fence applies the same table to agents.
        assert_eq!(c.fence.env, c.env);
        let host = [
            ("PATH", "/bin"),
            ("E2E_PORT", "1"),
            ("E2E_TOKEN", "t"),
            ("MY_API_KEY", "k"),
            ("OTHER", "o"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let env = c.allowed_env(host);
        let names: Vec<&str> = env.keys().map(String::as_str).collect();
        // Checks and the holdout get allow - deny + set; `pass` goes to the agent alone.
        assert_eq!(names, ["CI", "E2E_PORT", "PATH"]);
    }

    #[test]
    fn rejects_unknown_profile_and_zero_jobs() {
        let e = Config::parse("[agents]\ndefault = \"x\"\n", Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("names no [agent.x] section"));
        let e = Config::parse("[run]\njobs = 0\n", Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("jobs must be at least 1"));
    }

    #[test]
    fn holdout_inside_the_repo_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path().join("repo");
        std::fs::create_dir_all(repo.join("holdout")).unwrap();
        std::fs::create_dir_all(d.path().join("holdout")).unwrap();
        let roots = vec![repo.clone()];
        assert!(matches!(
            check_holdout_location(&repo.join("holdout"), &roots),
            Err(Error::HoldoutInRepo { .. })
        ));
        // A `..` path that resolves back inside is refused too.
        assert!(check_holdout_location(&repo.join("holdout/../holdout"), &roots).is_err());
        assert!(check_holdout_location(&d.path().join("holdout"), &roots).is_ok());
    }
}
