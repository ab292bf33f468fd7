//! [`Factory`]: the run loop.
//!
//! One coordinator task owns the [`Scheduler`] and the merge queue; up to `jobs` worker tasks
//! each run one task's attempt loop in its own worktree. Every state change is journaled
//! (append + fsync) *before* the factory relies on it, so a run killed at any instruction
//! resumes from the journal plus what git says.

use crate::checks::run_checks;
use crate::config::{Config, check_holdout_location};
use crate::event::Event;
use crate::fleet::MergeTarget;
use crate::git::Git;
use crate::journal::{Entry, Journal, write_atomic};
use crate::plan::{Plan, PlanCheck as _, Task};
use crate::sched::{Scheduler, Slot};
use crate::stages::{
    AttemptHook, AttemptMetrics, DiffGuard, EvalRequest, EvalStage, Evaluator, EventSink,
    FailedStage, GuardRequest, HookDecision, Lesson, NoEvents, NoGuard, NoHook, NoMemory, Recall,
};
use crate::state::{AttemptRecord, RunState, TaskPhase};
use crate::{Error, journal};
use lightsout_agent::{
    Agent, AgentReport, Budget, CommandAgent, Outcome, Preset, ReplayAgent, TaskContext, Usage,
    Workspace,
};
use lightsout_fence::audit::AuditLog;
use lightsout_fence::budget::BudgetLedger;
use lightsout_stdx::lock;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::task::JoinSet;

/// Options for one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The run id (default: `<UTC date>-<time>-<pid>`).
    pub run_id: Option<String>,
    /// Agents at once (default: `[run] jobs`).
    pub jobs: Option<usize>,
    /// Gate rules from the specs being built (`GatePolicy::from_spec`), first in the resolved
    /// policy; `[gate]` of `lightsout.toml`, the holdout's `gate.toml` and the floor follow.
    pub gate: Vec<lightsout_eval::PolicyLayer>,
    /// Not-ready findings of specs built anyway (`--allow-not-ready`), shown in the report.
    pub not_ready: Vec<String>,
    /// Measure the holdout's strength on the merged build once every task merged (`run
    /// --strength`); it is measured anyway when a gate rule has `min_strength` or
    /// `[strength] after_run = true`.
    pub strength: bool,
    /// Build every task, even those whose input key is unchanged and whose work is on main
    /// (`run --rebuild`). Without it such tasks are journaled as unchanged and not built.
    pub rebuild: bool,
    /// Tasks of the plan already merged on main by someone else (a fleet's other workers),
    /// each with the commit that merged it: journaled as unchanged at that commit before any
    /// work starts, so they count as merged and their requirements join the regression
    /// bucket of the merged result (see [`crate::fleet`]).
    pub merged: BTreeMap<String, String>,
}

/// The factory: agents, stages and configuration for running plans on a repository.
///
/// Build it with [`Factory::new`] and the `with_*` methods, then [`run`](Factory::run) a
/// plan or [`resume`](Factory::resume) a run.
pub struct Factory {
    repo: PathBuf,
    config: Config,
    agents: BTreeMap<String, Arc<dyn Agent>>,
    /// Profiles that run a process: wrapped in the `[fence]` for each run.
    commands: BTreeMap<String, CommandAgent>,
    default_agent: Option<Arc<dyn Agent>>,
    evaluator: Option<Arc<dyn Evaluator>>,
    guard: Arc<dyn DiffGuard>,
    memory: Arc<dyn Recall>,
    hook: Arc<dyn AttemptHook>,
    events: Arc<dyn EventSink>,
    env: BTreeMap<String, String>,
    memory_is_default: bool,
    guard_is_default: bool,
    /// Where merges publish main ([`crate::fleet::LocalMain`] unless a fleet worker says).
    target: Arc<dyn MergeTarget>,
    /// The fleet's shared day budget, when a fleet worker gives one, and the claim its
    /// reservations are tied to.
    day_budget: Option<(
        Arc<dyn lightsout_fleet::budget::BudgetStore>,
        Option<lightsout_fleet::budget::ClaimKey>,
    )>,
    /// A second audit chain every entry is also appended to, when a fleet worker gives one.
    audit_mirror: Option<Arc<dyn lightsout_fence::audit::AuditChain>>,
    /// Where every journal entry goes too, after the file, when a fleet worker gives one.
    journal_mirror: Option<Arc<dyn crate::journal::Mirror>>,
}

impl std::fmt::Debug for Factory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factory")
            .field("repo", &self.repo)
            .field("agents", &self.agents.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Builds the agent for a `[agent.<name>]` profile.
///
/// # Errors
/// [`Error::Config`] for an unknown preset or a replay profile without a trajectory.
pub fn agent_from_profile(
    name: &str,
    p: &crate::config::AgentProfile,
    base_dir: &Path,
) -> Result<Arc<dyn Agent>, Error> {
    if let Some(a) = command_from_profile(name, p)? {
        return Ok(Arc::new(a));
    }
    let dir = p.trajectory.as_ref().ok_or_else(|| {
        Error::Config(format!(
            "[agent.{name}] preset = \"replay\" needs trajectory = \"<dir>\""
        ))
    })?;
    Ok(Arc::new(ReplayAgent::new(base_dir.join(dir))))
}

/// The command line of a `[agent.<name>]` profile; `None` for the `replay` preset, which
/// starts no process.
///
/// # Errors
/// [`Error::Config`] for an unknown preset or a `command` profile without a program.
pub fn command_from_profile(
    name: &str,
    p: &crate::config::AgentProfile,
) -> Result<Option<CommandAgent>, Error> {
    if p.preset == "replay" {
        return Ok(None);
    }
    let mut a = if p.preset == "command" || p.preset.is_empty() {
        let program = p.program.clone().ok_or_else(|| {
            Error::Config(format!(
                "[agent.{name}] needs program = \"...\" (or a preset: claude-code, codex, aider, replay)"
            ))
        })?;
        let mut a = CommandAgent::new(program, Vec::new());
        name.clone_into(&mut a.name);
        a
    } else {
        let preset = Preset::from_name(&p.preset).ok_or_else(|| {
            Error::Config(format!(
                "[agent.{name}] preset = \"{}\" is unknown; use claude-code, codex, aider, replay or command",
                p.preset
            ))
        })?;
        CommandAgent::preset(preset)
    };
    if let Some(prog) = &p.program {
        a.program.clone_from(prog);
    }
    if let Some(args) = &p.args {
        a.args.clone_from(args);
    }
    if let Some(m) = p.prompt {
        a.prompt = m;
    }
    if let Some(f) = p.format {
        a.format = f;
    }
    Ok(Some(a))
}

/// `.git` paths of the main checkout that the factory itself changes while agents run (the
/// merge queue moving main, keep-refs, lock files): not compared by the outside-write
/// detection, on top of [`DEFAULT_WATCH_IGNORE`](lightsout_fence::policy::DEFAULT_WATCH_IGNORE).
/// `.git/config`, `.git/hooks` and `.git/info` stay watched.
const FACTORY_WATCH_IGNORE: &[&str] = &[
    ".git/refs",
    ".git/packed-refs",
    ".git/index",
    ".git/*.lock",
    ".git/ORIG_HEAD",
    ".git/FETCH_HEAD",
    ".git/AUTO_MERGE",
    ".git/COMMIT_EDITMSG",
];

/// Trials per scenario when neither `[holdout] trials` nor a gate rule asks for more.
pub(crate) const DEFAULT_TRIALS: u32 = 5;

impl Factory {
    /// A factory for the repository at `repo` (its top-level directory) with `config`; agents
    /// come from the config's profiles, and no evaluator, guard, memory, hook or event sink.
    ///
    /// # Errors
    /// [`Error::Config`] when an agent profile is invalid.
    pub fn new(repo: impl Into<PathBuf>, config: Config) -> Result<Self, Error> {
        let mut agents = BTreeMap::new();
        let mut commands = BTreeMap::new();
        for (name, p) in &config.agent {
            let agent: Arc<dyn Agent> = match command_from_profile(name, p)? {
                Some(c) => {
                    let c = c.with_prices(config.prices.clone());
                    commands.insert(name.clone(), c.clone());
                    Arc::new(c)
                }
                None => agent_from_profile(name, p, &config.base_dir)?,
            };
            agents.insert(name.clone(), agent);
        }
        let env = config.allowed_env(std::env::vars());
        let evaluator: Option<Arc<dyn Evaluator>> =
            match crate::judge::holdout_judge(&config, &env)? {
                Some(crate::judge::HoldoutJudge::Runner(r)) => Some(Arc::new(r)),
                Some(crate::judge::HoldoutJudge::Engine(e)) => Some(Arc::new(e)),
                None => None,
            };
        Ok(Factory {
            repo: repo.into(),
            config,
            agents,
            commands,
            default_agent: None,
            evaluator,
            guard: Arc::new(NoGuard),
            memory: Arc::new(NoMemory),
            hook: Arc::new(NoHook),
            events: Arc::new(NoEvents),
            env,
            memory_is_default: true,
            guard_is_default: true,
            target: Arc::new(crate::fleet::LocalMain),
            day_budget: None,
            audit_mirror: None,
            journal_mirror: None,
        })
    }

    /// Counts the `[budget.day]` caps (attempts, wall ms, tokens, USD: whichever are set) in
    /// the fleet's shared day budget (`store`, which every worker's reservations count
    /// against) instead of this machine's day ledger: each agent call reserves one attempt and
    /// its estimate there, beside the local ledger, named by the run, task and attempt
    /// ([`lightsout_fleet::budget::SharedDay`]), and tied to `claim` when given (the claim the
    /// worker builds the task under: a reservation still unsettled once that claim is no longer
    /// live counts as spent at its reserved amounts). The task and run caps stay local. Without
    /// `[budget.day]` caps it changes nothing.
    #[must_use]
    pub fn with_day_budget(
        mut self,
        store: Arc<dyn lightsout_fleet::budget::BudgetStore>,
        claim: Option<lightsout_fleet::budget::ClaimKey>,
    ) -> Self {
        self.day_budget = Some((store, claim));
        self
    }

    /// Appends every audit entry of a run to `chain` as well, after the run directory's
    /// `audit.jsonl` (a fleet worker gives its fleet run's chain in the shared store, so the
    /// entries of all workers make one chain there). A failed append fails the run closed, as
    /// a failed write of the file does.
    #[must_use]
    pub fn with_audit_mirror(mut self, chain: Arc<dyn lightsout_fence::audit::AuditChain>) -> Self {
        self.audit_mirror = Some(chain);
        self
    }

    /// Hands every journal entry of a run to `mirror` as well, after it is appended and synced
    /// to the run directory's `journal.jsonl` ([`crate::journal::Mirror`]; a fleet worker gives
    /// a [`crate::fleet::StoreJournal`], its claim run's journal in the shared store). The file
    /// stays the record `--resume` reads; the mirror cannot fail the run.
    #[must_use]
    pub fn with_journal_mirror(mut self, mirror: Arc<dyn crate::journal::Mirror>) -> Self {
        self.journal_mirror = Some(mirror);
        self
    }

    /// Publishes merges through `target` instead of moving the repository's own main (a
    /// fleet worker's [`crate::fleet::RemoteMain`]).
    #[must_use]
    pub fn with_merge_target(mut self, target: Arc<dyn MergeTarget>) -> Self {
        self.target = target;
        self
    }

    /// Uses `agent` for profile `name` (replacing the configured one).
    #[must_use]
    pub fn with_agent(mut self, name: impl Into<String>, agent: Arc<dyn Agent>) -> Self {
        let name = name.into();
        self.commands.remove(&name);
        self.agents.insert(name, agent);
        self
    }

    /// Uses `agent` for every task kind no profile serves.
    #[must_use]
    pub fn with_default_agent(mut self, agent: Arc<dyn Agent>) -> Self {
        self.default_agent = Some(agent);
        self
    }

    /// Uses `e` as the holdout evaluator (required before running).
    #[must_use]
    pub fn with_evaluator(mut self, e: Arc<dyn Evaluator>) -> Self {
        self.evaluator = Some(e);
        self
    }

    /// Uses `g` as the memory guard.
    #[must_use]
    pub fn with_guard(mut self, g: Arc<dyn DiffGuard>) -> Self {
        self.guard = g;
        self.guard_is_default = false;
        self
    }

    /// Uses `m` as decision memory.
    #[must_use]
    pub fn with_memory(mut self, m: Arc<dyn Recall>) -> Self {
        self.memory = m;
        self.memory_is_default = false;
        self
    }

    /// Uses `h` around every agent call (budgets, policy).
    #[must_use]
    pub fn with_hook(mut self, h: Arc<dyn AttemptHook>) -> Self {
        self.hook = h;
        self
    }

    /// Streams events to `s`.
    #[must_use]
    pub fn with_events(mut self, s: Arc<dyn EventSink>) -> Self {
        self.events = s;
        self
    }

    /// Replaces the environment agents and checks get (default: the allowlisted variables of
    /// this process).
    #[must_use]
    pub fn with_env(mut self, env: BTreeMap<String, String>) -> Self {
        self.env = env;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `.lightsout/runs` of the repository.
    pub fn runs_dir(&self) -> PathBuf {
        self.repo.join(".lightsout").join("runs")
    }

    /// The profile that serves `kind`: its `[agents.kinds]` or `[agents] default` profile,
    /// else the only profile when there is exactly one and no default agent was given.
    fn profile_name(&self, kind: &str) -> Option<&str> {
        match self.config.profile_for(kind) {
            Some(p) if self.agents.contains_key(p) => Some(p),
            _ if self.default_agent.is_none() && self.agents.len() == 1 => {
                self.agents.keys().next().map(String::as_str)
            }
            _ => None,
        }
    }

    /// The agent for `kind` out of `agents` (the run's profiles, fenced where they run a
    /// process), else the default agent.
    fn agent_for(
        &self,
        kind: &str,
        agents: &BTreeMap<String, Arc<dyn Agent>>,
    ) -> Result<Arc<dyn Agent>, Error> {
        if let Some(a) = self.profile_name(kind).and_then(|p| agents.get(p)) {
            return Ok(a.clone());
        }
        if let Some(a) = &self.default_agent {
            return Ok(a.clone());
        }
        Err(Error::Config(format!(
            "no agent for task kind `{kind}`: add [agents] default = \"<profile>\" and an \
             [agent.<profile>] section to lightsout.toml"
        )))
    }

    /// Checks the holdout location against the repository and its worktrees.
    async fn check_holdout(&self) -> Result<(), Error> {
        let env = std::env::var("LIGHTSOUT_HOLDOUT").ok();
        let Some(dir) = self.config.holdout_dir(env.as_deref()) else {
            return Ok(());
        };
        let git = Git::new(&self.repo);
        let list = git.run(&["worktree", "list", "--porcelain"]).await?;
        let mut roots = vec![self.repo.clone()];
        roots.extend(
            list.lines()
                .filter_map(|l| l.strip_prefix("worktree "))
                .map(PathBuf::from),
        );
        check_holdout_location(&dir, &roots)?;
        // The fence's own check as well: canonical paths, and symlinks in the repository or
        // a worktree that resolve into the holdout.
        if dir.exists() {
            let existing: Vec<PathBuf> =
                roots[1..].iter().filter(|p| p.exists()).cloned().collect();
            lightsout_fence::holdout::check_holdout_location(&dir, &self.repo, &existing)?;
        }
        Ok(())
    }

    /// The one gate policy of a run: `spec_layers` (the specs' `## Verification gate`), then
    /// `[gate]` of `lightsout.toml`, then the holdout's `gate.toml` when there is one, then the
    /// floor, merged by `lightsout_eval::GatePolicy::resolve` (every rule kept with its
    /// source; the strictest wins).
    ///
    /// # Errors
    /// [`Error::ConfigCause`] when `[gate]` is not a valid policy or the policies do not
    /// resolve, [`Error::Config`] when the holdout's `gate.toml` is not.
    pub fn resolve_gate(
        &self,
        spec_layers: Vec<lightsout_eval::PolicyLayer>,
    ) -> Result<lightsout_eval::GatePolicy, Error> {
        use lightsout_eval::{GatePolicy, PolicyLayer};
        let mut layers = spec_layers;
        if let Some(g) = &self.config.gate {
            let text = toml::to_string(g).map_err(|e| Error::config_cause("[gate]", e))?;
            let p = GatePolicy::from_toml(&text)
                .map_err(|e| Error::config_cause("[gate] in lightsout.toml", e))?;
            layers.push(PolicyLayer::new("lightsout.toml [gate]", p));
        }
        let holdout = std::env::var("LIGHTSOUT_HOLDOUT").ok();
        if let Some(dir) = self.config.holdout_dir(holdout.as_deref()) {
            let file = dir.join("gate.toml");
            if file.is_file() {
                let p = GatePolicy::read(&file).map_err(|e| {
                    Error::Config(format!("the holdout's gate.toml: {e}; fix it or remove it"))
                })?;
                layers.push(PolicyLayer::new("holdout gate.toml", p));
            }
        }
        GatePolicy::resolve(layers).map_err(|e| Error::config_cause("gate policy", e))
    }

    /// Imports the `## Decisions` of the spec files at `specs` into the decision memory
    /// (`.lightsout/memory.db`), so that guards and context packs know them from the first
    /// task on, and the outcome report lists them. Each import is one transaction and
    /// idempotent (an unchanged decision is left as it is); a spec without decisions adds
    /// nothing. Returns the number of decisions created or updated. Does nothing when
    /// `[memory] enabled = false` or another memory was configured.
    ///
    /// # Errors
    /// [`Error::Stage`] when the database cannot be opened or a spec cannot be read.
    pub fn import_spec_decisions(&self, specs: &[PathBuf]) -> Result<usize, Error> {
        if !(self.memory_is_default && self.config.memory.enabled) {
            return Ok(0);
        }
        let db = self.repo.join(".lightsout").join("memory.db");
        if let Some(dir) = db.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        let stage = |e: lightsout_memory::Error| Error::Stage {
            stage: "memory",
            message: e.to_string(),
        };
        let mem = lightsout_memory::Memory::open(&db).map_err(stage)?;
        let mut changed = 0;
        for p in specs {
            let r = mem
                .import_path(p, Some(lightsout_memory::SourceKind::Spec), &mut |_, _| {})
                .map_err(stage)?;
            changed += r.created + r.updated;
        }
        Ok(changed)
    }

    /// Starts a new run of `plan` and drives it to the end.
    ///
    /// # Errors
    /// [`Error`] on an infrastructure failure (git, journal, evaluator, configuration). Task
    /// failures are not errors: see the returned state.
    pub async fn run(&self, plan: Plan, opts: RunOptions) -> Result<RunState, Error> {
        plan.validate()?;
        self.preflight(plan.tasks.iter().map(|t| t.kind.as_str()))?;
        let lock = self.lock()?;
        repair_worktree_admin(&self.repo, &self.runs_dir()).await?;
        self.check_holdout().await?;
        let git = Git::new(&self.repo);
        let main = self.config.run.main.clone();
        let base = git.rev(&main).await.map_err(|_| {
            Error::Config(format!(
                "branch `{main}` has no commit in {}; commit something first, or set [run] main",
                self.repo.display()
            ))
        })?;
        let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);
        if !crate::plan::valid_task_id(&run_id) {
            return Err(Error::Config(format!(
                "run id `{run_id}` is not usable in a branch name"
            )));
        }
        let run_dir = self.runs_dir().join(&run_id);
        let journal_path = run_dir.join("journal.jsonl");
        // A journal without one complete entry is a run killed before it started: reuse it.
        if journal_path.exists() && !journal::read(&journal_path)?.is_empty() {
            return Err(Error::Config(format!(
                "run `{run_id}` exists already; resume it with --resume {run_id}"
            )));
        }
        let policy = self.resolve_gate(opts.gate.clone())?;
        let mut journal = self.open_journal(&run_dir.join("journal.jsonl"))?;
        let start = Entry::RunStarted {
            run_id: run_id.clone(),
            at: now_rfc3339(),
            main,
            base,
            plan,
            policy,
            not_ready: opts.not_ready.clone(),
            strength: opts.strength,
        };
        journal.append(&start)?;
        let mut entries = vec![start];
        let mut unchanged = self.unchanged(&entries[0], opts.rebuild).await?;
        let ours: Vec<Entry> = merged_elsewhere(&entries[0], &opts.merged)
            .into_iter()
            .filter(|e| {
                !unchanged
                    .iter()
                    .any(|u| unchanged_task(u) == unchanged_task(e))
            })
            .collect();
        unchanged.extend(ours);
        for e in unchanged {
            journal.append(&e)?;
            entries.push(e);
        }
        let state = RunState::replay(&entries);
        self.drive(run_dir, journal, state, opts.jobs, false, lock)
            .await
    }

    /// Each task's own input digest (see [`crate::inputs::own_digest`]): its text, the
    /// holdout scenario ids of its requirements, its agent profile and `policy`. Empty when
    /// the holdout's scenario files cannot be loaded: then nothing is reused.
    fn own_digests(
        &self,
        plan: &Plan,
        policy: &lightsout_eval::GatePolicy,
    ) -> BTreeMap<String, String> {
        let holdout = self
            .config
            .holdout_dir(std::env::var("LIGHTSOUT_HOLDOUT").ok().as_deref());
        let scenarios = match holdout {
            Some(dir) => match crate::inputs::scenario_ids(&dir) {
                Some(s) => s,
                None => return BTreeMap::new(),
            },
            None => BTreeMap::new(),
        };
        let policy = serde_json::to_string(policy).unwrap_or_default();
        plan.tasks
            .iter()
            .map(|t| {
                let ids: Vec<String> = t
                    .requirement_ids
                    .iter()
                    .filter_map(|r| scenarios.get(r))
                    .flatten()
                    .cloned()
                    .collect();
                let profile = match self.profile_name(&t.kind) {
                    Some(name) => format!(
                        "{name}:{}",
                        self.config
                            .agent
                            .get(name)
                            .and_then(|p| serde_json::to_string(p).ok())
                            .unwrap_or_default()
                    ),
                    None => "default agent".to_owned(),
                };
                (
                    t.id.clone(),
                    crate::inputs::own_digest(t, &ids, &profile, &policy),
                )
            })
            .collect()
    }

    /// The `TaskUnchanged` entries of a new run (`start` is its `RunStarted`): every task
    /// whose input key matches the one kept in `.lightsout/inputs.json` and whose commit is
    /// on main, unless `rebuild`. The tasks an edit invalidates and everything downstream
    /// of them are built.
    ///
    /// # Errors
    /// [`Error::Io`] when the store exists but cannot be read; [`Error::Git`] when git
    /// cannot tell whether a commit is on main.
    async fn unchanged(&self, start: &Entry, rebuild: bool) -> Result<Vec<Entry>, Error> {
        let Entry::RunStarted {
            plan, policy, main, ..
        } = start
        else {
            return Ok(Vec::new());
        };
        if rebuild {
            return Ok(Vec::new());
        }
        let kept = crate::inputs::Inputs::read(&crate::inputs::inputs_path(&self.repo))?;
        if kept.tasks.is_empty() {
            return Ok(Vec::new());
        }
        let own = self.own_digests(plan, policy);
        let git = Git::new(&self.repo);
        let mut on_main = std::collections::BTreeSet::new();
        for t in &plan.tasks {
            if let Some(b) = kept.tasks.get(&crate::inputs::store_id(t))
                && git.is_ancestor(&b.commit, main).await?
            {
                on_main.insert(b.commit.clone());
            }
        }
        let decisions = crate::inputs::decide(plan, &own, &kept, &|c| on_main.contains(c), false);
        Ok(plan
            .tasks
            .iter()
            .filter_map(|t| match decisions.get(&t.id) {
                Some(crate::inputs::Decision::Unchanged(b)) => Some(Entry::TaskUnchanged {
                    task: t.id.clone(),
                    commit: b.commit.clone(),
                    built_by: b.run.clone(),
                }),
                _ => None,
            })
            .collect())
    }

    /// Resumes run `run_id` from its journal: finished tasks are not redone, an interrupted
    /// attempt is redone from the commit it started at (its partial work kept under
    /// `refs/lightsout/<run>/<task>/interrupted-<n>`).
    ///
    /// # Errors
    /// [`Error::UnknownRun`] when there is no such run; otherwise as [`run`](Self::run).
    pub async fn resume(&self, run_id: &str, jobs: Option<usize>) -> Result<RunState, Error> {
        let run_dir = self.runs_dir().join(run_id);
        let path = run_dir.join("journal.jsonl");
        if !crate::plan::valid_task_id(run_id) || !path.exists() {
            return Err(Error::UnknownRun(run_id.to_owned()));
        }
        let lock = self.lock()?;
        // What the killed factory's fence left running ends before anything else.
        let leftovers = lightsout_fence::procs::reap_leftovers(&run_dir.join("procs"));
        if !leftovers.is_empty() {
            tracing::warn!(
                ?leftovers,
                "killed process groups a previous factory left running"
            );
        }
        repair_worktree_admin(&self.repo, &self.runs_dir()).await?;
        self.check_holdout().await?;
        let journal = self.open_journal(&path)?;
        let entries = journal::read(&path)?;
        if entries.is_empty() {
            return Err(Error::Config(format!(
                "run `{run_id}` was stopped before it started; start it again with \
                 `lightsout run --run-id {run_id}`"
            )));
        }
        if !matches!(entries.first(), Some(Entry::RunStarted { .. })) {
            return Err(Error::Journal {
                path,
                message: "does not start with run_started".into(),
            });
        }
        let state = RunState::replay(&entries);
        self.preflight(state.tasks.iter().map(|t| t.task.kind.as_str()))?;
        self.drive(run_dir, journal, state, jobs, true, lock).await
    }

    /// Checks, before anything is started, that the program of every command profile the
    /// task `kinds` use can be found on the agents' `PATH` (relative paths from the
    /// repository root, as from a worktree).
    ///
    /// # Errors
    /// [`Error::Agent`] ([`lightsout_agent::Error::Spawn`]) naming the profile and program:
    /// an infrastructure error, not a failed task.
    pub fn preflight<'a>(&self, kinds: impl IntoIterator<Item = &'a str>) -> Result<(), Error> {
        let used: std::collections::BTreeSet<&str> = kinds
            .into_iter()
            .filter_map(|k| self.profile_name(k))
            .collect();
        for (name, c) in self
            .commands
            .iter()
            .filter(|(n, _)| used.contains(n.as_str()))
        {
            if lightsout_agent::find_program(&c.program, &self.env, &self.repo).is_none() {
                return Err(Error::Agent(lightsout_agent::Error::Spawn {
                    program: c.program.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!(
                            "agent profile `{name}`: not found on the agents' PATH ({}); install \
                             it, or set program = \"/full/path\" in [agent.{name}]",
                            self.env.get("PATH").map_or("unset", String::as_str)
                        ),
                    ),
                }));
            }
        }
        Ok(())
    }

    fn lock(&self) -> Result<nix::fcntl::Flock<std::fs::File>, Error> {
        lock_repo(&self.repo)
    }

    /// Opens the journal at `path` for appending, with the mirror a fleet worker gave.
    fn open_journal(&self, path: &Path) -> Result<Journal, Error> {
        let journal = Journal::open(path)?;
        Ok(match &self.journal_mirror {
            Some(m) => journal.with_mirror(Arc::clone(m)),
            None => journal,
        })
    }

    /// The run's `[fence]`: watched directories default to the repository and the holdout
    /// directory, the holdout and every run's holdout results (`<run>/eval`) are absent in
    /// the sandbox, and the `.git` paths the factory itself moves are never compared.
    fn fence_config(&self, run_dir: &Path) -> lightsout_fence::policy::FenceConfig {
        let mut fc = self.config.fence.clone();
        let holdout = self
            .config
            .holdout_dir(std::env::var("LIGHTSOUT_HOLDOUT").ok().as_deref())
            .filter(|h| h.is_dir());
        if fc.watch.is_empty() {
            fc.watch.push(self.repo.clone());
            fc.watch.extend(holdout.clone());
        }
        fc.hide.extend(holdout);
        fc.hide.push(run_dir.join("eval"));
        // The factory's state (journals, ledgers, audit logs, memory, every run's worktrees
        // but the agent's own): not readable where Landlock is (the worktree stays writable).
        if let Some(state) = run_dir.ancestors().nth(2)
            && state.file_name() == Some(std::ffi::OsStr::new(".lightsout"))
        {
            fc.unreadable.push(state.to_path_buf());
        }
        if let Some(runs) = run_dir.parent()
            && let Ok(entries) = std::fs::read_dir(runs)
        {
            fc.hide
                .extend(entries.flatten().map(|e| e.path().join("eval")));
        }
        fc.watch_ignore
            .extend(FACTORY_WATCH_IGNORE.iter().map(|s| (*s).to_owned()));
        fc
    }

    /// The tuner's variant choices for the run's tasks still to build, in plan order
    /// ([`crate::tuning`]), and whether they were made now: a resumed run keeps what its
    /// journal holds (none for a run that chose none); a new run asks the tuner. `None`
    /// without `[tuning]` or when no such task's kind is tuned.
    fn variant_choices(
        &self,
        state: &RunState,
        resumed: bool,
    ) -> Result<(Option<lightsout_tune::choose::RunChoices>, bool), Error> {
        if resumed {
            return Ok((state.variant_choices.clone(), false));
        }
        let tasks: Vec<lightsout_tune::choose::PlannedTask> = state
            .tasks
            .iter()
            .filter(|t| t.unchanged.is_none())
            .map(|t| lightsout_tune::choose::PlannedTask {
                task_id: t.task.id.clone(),
                kind: t.task.kind.clone(),
            })
            .collect();
        Ok((
            crate::tuning::choose(&self.config, &self.repo, &tasks)?,
            true,
        ))
    }

    /// The chosen variants made ready to run (agent, template, model). Choices made now are
    /// audited, then journaled (`VariantsChosen`); a kill between the two makes the next
    /// start choose again from the same evidence, so the same choices.
    fn ready_variants(
        &self,
        choices: Option<&lightsout_tune::choose::RunChoices>,
        fresh: bool,
        profiles: &BTreeMap<String, Arc<dyn Agent>>,
        audit: &crate::fenced::Audit,
        journal: &mut Journal,
        state: &mut RunState,
    ) -> Result<BTreeMap<String, crate::tuning::Chosen>, Error> {
        let Some(c) = choices else {
            return Ok(BTreeMap::new());
        };
        let ready = crate::tuning::ready(&self.config, c, profiles)?;
        if fresh {
            crate::tuning::audit(audit, c);
            audit.healthy()?;
            let e = Entry::VariantsChosen { choices: c.clone() };
            journal.append(&e)?;
            state.apply(&e);
        }
        Ok(ready)
    }

    /// The agent profiles for a run: each profile that runs a process is wrapped in a
    /// [`FencedAgent`](lightsout_fence::agent::FencedAgent) behind the run's `[fence]`, which
    /// reports into `reports`. Watched directories default to the repository and the holdout
    /// directory; the `.git` paths the factory itself moves are never compared.
    ///
    /// # Errors
    /// [`Error::Fence`] when the `[fence]` is invalid or asks for namespaces this machine
    /// cannot create (fail closed: no agent runs with less isolation than configured).
    fn fenced_profiles(
        &self,
        reports: &Arc<lightsout_fence::agent::FenceReports>,
        open: &Arc<lightsout_fence::budget::OpenCalls>,
        kinds: &[&str],
        variant_profiles: &std::collections::BTreeSet<String>,
        run_dir: &Path,
    ) -> Result<BTreeMap<String, Arc<dyn Agent>>, Error> {
        let mut profiles = self.agents.clone();
        // Command profiles no task of this plan uses (through `[agents]` or a tuned
        // variant) are left out (fail closed: nothing can reach them unfenced), so a
        // replay-only run needs no namespaces.
        let used: std::collections::BTreeSet<&str> = kinds
            .iter()
            .filter_map(|k| self.profile_name(k))
            .chain(variant_profiles.iter().map(String::as_str))
            .collect();
        profiles
            .retain(|name, _| !self.commands.contains_key(name) || used.contains(name.as_str()));
        if !self.commands.keys().any(|c| used.contains(c.as_str())) {
            return Ok(profiles);
        }
        let fence = Arc::new(
            lightsout_fence::policy::Fence::new(self.fence_config(run_dir))?
                .with_process_ledger(run_dir.join("procs")),
        );
        for (name, c) in self
            .commands
            .iter()
            .filter(|(n, _)| used.contains(n.as_str()))
        {
            profiles.insert(
                name.clone(),
                Arc::new(
                    lightsout_fence::agent::FencedAgent::new(
                        c.clone(),
                        fence.clone(),
                        reports.clone(),
                    )
                    .with_open_calls(open.clone()),
                ),
            );
        }
        Ok(profiles)
    }

    /// The fence around this run: the `[budget]` ledger, the audit log
    /// (`.lightsout/runs/<id>/audit.jsonl`) and the holdout leak scanner, wrapped around the
    /// configured hook and event sink.
    #[allow(clippy::type_complexity)]
    fn fence(
        &self,
        state: &RunState,
        reports: Arc<lightsout_fence::agent::FenceReports>,
        open: Arc<lightsout_fence::budget::OpenCalls>,
        jobs: usize,
    ) -> Result<
        (
            Arc<dyn AttemptHook>,
            Arc<dyn EventSink>,
            Arc<BudgetLedger>,
            Arc<crate::fenced::Audit>,
        ),
        Error,
    > {
        let mut budget = self.config.budget;
        // In a fleet the shared store owns every day cap that is set, the local ledger the task
        // and run caps: each cap is counted in exactly one place.
        let shared_day = match &self.day_budget {
            Some((store, claim))
                if budget.per_day != lightsout_fence::budget::Limits::default() =>
            {
                let caps = crate::fenced::day_caps(&budget.per_day);
                budget.per_day = lightsout_fence::budget::Limits::default();
                let day = lightsout_fleet::budget::SharedDay::new(
                    store.clone(),
                    caps,
                    state.run_id.clone(),
                );
                Some(match claim {
                    Some(c) => day.held_by(c.clone()),
                    None => day,
                })
            }
            _ => None,
        };
        let ledger = if budget.per_day == lightsout_fence::budget::Limits::default() {
            BudgetLedger::in_memory(budget)
        } else {
            BudgetLedger::open(
                budget,
                lightsout_fence::budget::default_ledger_path(&self.repo),
            )?
        };
        // A resumed run starts from what it already spent: the task and run caps hold
        // across `--resume`.
        for t in &state.tasks {
            for a in &t.attempts {
                ledger.restore(&t.task.id, lightsout_fence::budget::Spend::from(&a.usage));
            }
        }
        let ledger = Arc::new(ledger);
        let intent = crate::fenced::Intent(
            state
                .tasks
                .iter()
                .map(|t| (t.task.id.clone(), t.task.requirement_ids.clone()))
                .collect(),
        );
        let log = AuditLog::for_run(&self.repo, &state.run_id)?;
        let mut audit = crate::fenced::Audit::new(log, intent);
        if let Some(chain) = &self.audit_mirror {
            audit = audit.with_mirror(Arc::clone(chain));
        }
        let audit = Arc::new(audit);
        let scan = match self
            .config
            .holdout_dir(std::env::var("LIGHTSOUT_HOLDOUT").ok().as_deref())
        {
            Some(dir) => crate::fenced::suite_scanner(&dir, &self.repo, state)?
                .map(|s| Arc::new(s) as Arc<dyn lightsout_fence::holdout::LeakScan + Send + Sync>),
            None => None,
        };
        // Every call reserves before it starts, by default too (see `call_reservation`); the
        // day's cap counts wherever it is kept.
        let estimate = self.config.budget.call_reservation(
            self.config.limits.wall_ms,
            u64::from(self.config.run.attempts),
            jobs as u64,
        );
        let hook = crate::fenced::FenceHook::new(
            ledger.clone(),
            estimate,
            audit.clone(),
            scan,
            self.hook.clone(),
        )
        .with_reports(reports)
        .with_open_calls(open);
        let hook = match shared_day {
            Some(day) => hook.with_shared_day(day),
            None => hook,
        };
        let events = crate::fenced::AuditSink::new(audit.clone(), self.events.clone());
        Ok((Arc::new(hook), Arc::new(events), ledger, audit))
    }

    /// The memory stages of a run: the configured ones, or decision memory
    /// (`.lightsout/memory.db`, or the `[store] url` server when it is Postgres) as both
    /// context packs and guards when `[memory]` is on and
    /// none was given (a given guard is kept).
    fn memory_stages(&self) -> Result<MemoryStages, Error> {
        if !(self.memory_is_default && self.config.memory.enabled) {
            return Ok((self.memory.clone(), self.guard.clone()));
        }
        let m = Arc::new(crate::memory::DecisionMemory::open(
            &self.repo.join(".lightsout").join("memory.db"),
            self.config.store_url().as_deref(),
            self.config.memory.budget_tokens,
        )?);
        let g: Arc<dyn DiffGuard> = if self.guard_is_default {
            m.clone()
        } else {
            self.guard.clone()
        };
        Ok((m as Arc<dyn Recall>, g))
    }

    async fn drive(
        &self,
        run_dir: PathBuf,
        mut journal: Journal,
        mut state: RunState,
        jobs: Option<usize>,
        resumed: bool,
        _lock: nix::fcntl::Flock<std::fs::File>,
    ) -> Result<RunState, Error> {
        let evaluator = self.evaluator.clone().ok_or_else(|| {
            Error::Config(
                "no holdout evaluator: set [holdout] path and either [target] command (the \
                 built-in eval engine starts your software and runs the scenarios) or \
                 [holdout] command (an external runner)"
                    .into(),
            )
        })?;
        let jobs = jobs.unwrap_or(self.config.run.jobs).max(1);
        let plan = state.plan();
        let reports = Arc::new(lightsout_fence::agent::FenceReports::default());
        let open = Arc::new(lightsout_fence::budget::OpenCalls::default());
        let kinds: Vec<&str> = state.tasks.iter().map(|t| t.task.kind.as_str()).collect();
        let (choices, fresh) = self.variant_choices(&state, resumed)?;
        let profiles = self.fenced_profiles(
            &reports,
            &open,
            &kinds,
            &crate::tuning::profiles(choices.as_ref()),
            &run_dir,
        )?;
        let mut agents = BTreeMap::new();
        for t in &state.tasks {
            if !agents.contains_key(&t.task.kind) {
                agents.insert(
                    t.task.kind.clone(),
                    self.agent_for(&t.task.kind, &profiles)?,
                );
            }
        }
        let (memory, guard) = self.memory_stages()?;
        // The visible checks run the tests the agent wrote: behind the same fence.
        let checks_fence = if self.config.checks.is_empty() {
            None
        } else {
            Some(Arc::new(
                lightsout_fence::policy::Fence::new(self.fence_config(&run_dir))?
                    .with_process_ledger(run_dir.join("procs")),
            ))
        };
        let (hook, events, ledger, audit) = self.fence(&state, reports.clone(), open, jobs)?;
        let variants = self.ready_variants(
            choices.as_ref(),
            fresh,
            &profiles,
            &audit,
            &mut journal,
            &mut state,
        )?;
        // A journal from before policies were recorded resumes with today's resolution.
        let policy = if state.policy.is_empty() {
            self.resolve_gate(Vec::new())?
        } else {
            state.policy.clone()
        };
        let inner = Arc::new(Inner {
            repo: Git::new(&self.repo),
            run_dir: run_dir.clone(),
            run_id: state.run_id.clone(),
            main: state.main.clone(),
            config: self.config.clone(),
            agents: Mutex::new(agents),
            variants,
            fallback: profiles,
            default_agent: self.default_agent.clone(),
            evaluator,
            guard,
            memory,
            hook,
            events,
            ledger,
            audit,
            env: self.env.clone(),
            checks_fence,
            reports,
            journal: Mutex::new(journal),
            state: Mutex::new(state),
            resumed,
            own: self.own_digests(&plan, &policy),
            policy,
            target: self.target.clone(),
        });
        inner.announce_start(plan.tasks.len(), resumed);
        let mut sched = plan.scheduler()?;
        let mut coord = Coordinator {
            inner: inner.clone(),
            plan,
            merge_queue: VecDeque::new(),
            rework: VecDeque::new(),
        };
        coord.recover(&mut sched).await?;
        coord.run(&mut sched, jobs).await?;
        inner.strength_after_run().await?;
        inner.finish().await
    }
}

/// The task of a `TaskUnchanged` entry.
fn unchanged_task(e: &Entry) -> Option<&str> {
    match e {
        Entry::TaskUnchanged { task, .. } => Some(task),
        _ => None,
    }
}

/// The `TaskUnchanged` entries (built by `fleet`) of the tasks of `start`'s plan that
/// `merged` says are on main already, each at its commit.
fn merged_elsewhere(start: &Entry, merged: &BTreeMap<String, String>) -> Vec<Entry> {
    let Entry::RunStarted { plan, .. } = start else {
        return Vec::new();
    };
    plan.tasks
        .iter()
        .filter_map(|t| {
            merged.get(&t.id).map(|commit| Entry::TaskUnchanged {
                task: t.id.clone(),
                commit: commit.clone(),
                built_by: "fleet".into(),
            })
        })
        .collect()
}

/// Takes the repository's run lock (`.lightsout/run.lock`, an exclusive `flock`): one
/// run, resume or `gc` at a time.
///
/// # Errors
/// [`Error::Locked`] when another process holds it; [`Error::Io`] when it cannot be made.
pub(crate) fn lock_repo(repo: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, Error> {
    let dir = repo.join(".lightsout");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    let path = dir.join("run.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| Error::Locked(path))
}

/// Why the worktree at `wt` is no longer a sound git worktree, if it is not: its `.git`
/// link is gone or is not a `gitdir:` file, or git no longer sees `wt` as its own top level
/// (so git commands run there would reach another repository).
async fn worktree_damage(wt: &Path) -> Option<String> {
    let link = wt.join(".git");
    match std::fs::symlink_metadata(&link) {
        Err(_) => return Some(".git was deleted".into()),
        Ok(m) if !m.is_file() => return Some(".git is no longer a gitdir link file".into()),
        Ok(_) => {}
    }
    match std::fs::read_to_string(&link) {
        Ok(t) if t.starts_with("gitdir: ") => {}
        _ => return Some(".git no longer points at the repository".into()),
    }
    let top = Git::new(wt).out(&["rev-parse", "--show-toplevel"]).await;
    let canonical = wt.canonicalize().ok();
    match top {
        Ok(o) if o.ok && canonical.as_deref() == Some(Path::new(o.stdout.trim())) => None,
        _ => Some("git no longer sees the worktree as its own checkout".into()),
    }
}

/// Removes the administrative entries (`.git/worktrees/<name>`) that a `git worktree add`
/// killed half-way left behind for one of the factory's own worktrees (under `runs_dir`):
/// entries whose `commondir`, `gitdir` or `HEAD` file is missing or empty. Git cannot use
/// such an entry, and it makes `git worktree list` fail. Entries of other worktrees are
/// never touched.
async fn repair_worktree_admin(repo: &Path, runs_dir: &Path) -> Result<(), Error> {
    let git = Git::new(repo);
    let common = PathBuf::from(git.run(&["rev-parse", "--git-common-dir"]).await?);
    let common = if common.is_absolute() {
        common
    } else {
        repo.join(common)
    };
    let Ok(entries) = std::fs::read_dir(common.join("worktrees")) else {
        return Ok(());
    };
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    let mut removed = false;
    for e in entries.flatten() {
        let admin = e.path();
        let gitdir = read(admin.join("gitdir"));
        let broken = ["commondir", "gitdir", "HEAD"]
            .iter()
            .any(|f| read(admin.join(f)).trim().is_empty());
        let ours = gitdir.trim().is_empty() || Path::new(gitdir.trim()).starts_with(runs_dir);
        if broken && ours {
            std::fs::remove_dir_all(&admin)
                .map_err(|err| Error::io("remove broken worktree entry", &admin, err))?;
            removed = true;
        }
    }
    if removed {
        git.run(&["worktree", "prune"]).await?;
    }
    Ok(())
}

/// The id of the most recent run of the repository at `repo`: the directory under
/// `.lightsout/runs/` whose `journal.jsonl` was written last (run ids may be chosen by the
/// user, so their names do not sort by time). `None` when no run has a journal.
///
/// # Errors
/// [`Error::Io`] when `.lightsout/runs` exists but cannot be listed.
pub fn latest_run(repo: &Path) -> Result<Option<String>, Error> {
    let runs = repo.join(".lightsout").join("runs");
    let entries = match std::fs::read_dir(&runs) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("list runs", &runs, e)),
    };
    let mut newest: Option<(std::time::SystemTime, String)> = None;
    for entry in entries.flatten() {
        let Ok(meta) = entry.path().join("journal.jsonl").metadata() else {
            continue;
        };
        let Ok(written) = meta.modified() else {
            continue;
        };
        let id = entry.file_name().to_string_lossy().into_owned();
        if newest
            .as_ref()
            .is_none_or(|(t, n)| (written, &id) > (*t, n))
        {
            newest = Some((written, id));
        }
    }
    Ok(newest.map(|(_, id)| id))
}

/// The top-level directory of the git repository containing `dir`.
///
/// # Errors
/// [`Error::Config`] when `dir` is not inside a git repository.
pub async fn repo_root(dir: &Path) -> Result<PathBuf, Error> {
    let o = Git::new(dir).out(&["rev-parse", "--show-toplevel"]).await?;
    if !o.ok {
        return Err(Error::Config(format!(
            "{} is not inside a git repository; run `git init` and commit once, then retry",
            dir.display()
        )));
    }
    Ok(PathBuf::from(o.stdout.trim()))
}

/// The build in `dir` as a strength report names it: `HEAD`'s commit, with `+dirty` when the
/// tree has uncommitted changes (untracked files included, `.lightsout/` excepted); `None`
/// outside a repository or before the first commit.
pub async fn describe_build(dir: &Path) -> Option<String> {
    let git = Git::new(dir);
    let head = git.try_rev("HEAD").await.ok().flatten()?;
    // The factory's own `.lightsout/` is never part of a build (nor copied into a mutant).
    let status = git
        .out(&["status", "--porcelain", "--", ".", ":(exclude).lightsout"])
        .await
        .ok()?;
    Some(if status.ok && status.stdout.trim().is_empty() {
        head
    } else {
        format!("{head}+dirty")
    })
}

pub(crate) fn new_run_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}-{}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        std::process::id()
    )
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A unit of work handed to a worker.
#[derive(Debug, Clone)]
struct Job {
    task: Task,
    worktree: PathBuf,
    base: String,
    regression: Vec<String>,
    first_attempt: u32,
    feedback: Option<String>,
    human_intervened: bool,
}

enum WorkOutcome {
    Passed,
    Failed(String),
}

enum MergeOutcome {
    Merged,
    Rework(Box<Job>),
    Failed(String),
}

struct Inner {
    repo: Git,
    run_dir: PathBuf,
    run_id: String,
    main: String,
    config: Config,
    agents: Mutex<BTreeMap<String, Arc<dyn Agent>>>,
    /// Task id → the variant the tuner chose for it ([`crate::tuning`]).
    variants: BTreeMap<String, crate::tuning::Chosen>,
    fallback: BTreeMap<String, Arc<dyn Agent>>,
    default_agent: Option<Arc<dyn Agent>>,
    evaluator: Arc<dyn Evaluator>,
    guard: Arc<dyn DiffGuard>,
    memory: Arc<dyn Recall>,
    hook: Arc<dyn AttemptHook>,
    events: Arc<dyn EventSink>,
    ledger: Arc<BudgetLedger>,
    audit: Arc<crate::fenced::Audit>,
    env: BTreeMap<String, String>,
    /// The fence the visible checks run behind (`None` without checks).
    checks_fence: Option<Arc<lightsout_fence::policy::Fence>>,
    /// Where fenced processes leave their reports for the hook.
    reports: Arc<lightsout_fence::agent::FenceReports>,
    journal: Mutex<Journal>,
    state: Mutex<RunState>,
    resumed: bool,
    /// The run's resolved gate policy (from its journal).
    policy: lightsout_eval::GatePolicy,
    /// Each planned task's own input digest (see [`crate::inputs`]); a task missing here
    /// leaves no key.
    own: BTreeMap<String, String>,
    /// Where merges publish main.
    target: Arc<dyn MergeTarget>,
}

/// The first line of `s`, trimmed, at most 72 characters (a commit subject).
fn first_line_of(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or("")
        .trim()
        .chars()
        .take(72)
        .collect()
}

/// A run's memory stages: context packs, lessons and metrics; guards on diffs.
type MemoryStages = (Arc<dyn Recall>, Arc<dyn DiffGuard>);

/// Records that the attempt failed at `stage`, with `text` as the next attempt's feedback.
fn fail(rec: &mut AttemptRecord, stage: FailedStage, text: String) {
    rec.failed_stage = Some(stage);
    rec.feedback = Some(text);
}

fn fingerprint(stage: &str, text: &str) -> String {
    let mut h = Sha256::new();
    h.update(stage.as_bytes());
    h.update([0]);
    h.update(text.as_bytes());
    hex::encode(h.finalize())[..16].to_owned()
}

impl Inner {
    /// Tells the event sinks the run (re)started: how many tasks, how many already done,
    /// and on a fresh run the tasks not built again.
    fn announce_start(&self, tasks: usize, resumed: bool) {
        let done = {
            let s = self.state();
            s.tasks[..s.planned]
                .iter()
                .filter(|t| {
                    matches!(
                        t.status,
                        TaskPhase::Merged | TaskPhase::Failed | TaskPhase::Blocked
                    )
                })
                .count()
        };
        self.events.emit(&Event::RunStarted {
            run_id: self.run_id.clone(),
            tasks,
            done,
            resumed,
        });
        if !resumed {
            let unchanged: Vec<(String, String)> = self
                .state()
                .tasks
                .iter()
                .filter_map(|t| Some((t.task.id.clone(), t.unchanged.clone()?)))
                .collect();
            for (task, built_by) in unchanged {
                self.events.emit(&Event::TaskUnchanged { task, built_by });
            }
        }
    }

    /// Journals `e` (append + fsync), applies it to the state and emits its event.
    fn record(&self, e: &Entry) -> Result<(), Error> {
        let mut j = lock(&self.journal);
        j.append(e)?;
        lock(&self.state).apply(e);
        drop(j);
        if let Some(ev) = Event::of_entry(e) {
            self.events.emit(&ev);
        }
        Ok(())
    }

    fn state(&self) -> MutexGuard<'_, RunState> {
        lock(&self.state)
    }

    fn agent(&self, kind: &str) -> Result<Arc<dyn Agent>, Error> {
        if let Some(a) = lock(&self.agents).get(kind) {
            return Ok(a.clone());
        }
        let a = self
            .config
            .profile_for(kind)
            .and_then(|p| self.fallback.get(p).cloned())
            .or_else(|| self.default_agent.clone())
            .ok_or_else(|| Error::Config(format!("no agent for task kind `{kind}`")))?;
        lock(&self.agents).insert(kind.to_owned(), a.clone());
        Ok(a)
    }

    /// The agent for `task` and the variant it runs under: the tuner's choice when it made
    /// one, else the profile of its kind ([`agent`](Self::agent)).
    fn agent_for_task(
        &self,
        task: &Task,
    ) -> Result<(Arc<dyn Agent>, Option<&crate::tuning::Chosen>), Error> {
        match self.variants.get(&task.id) {
            Some(c) => Ok((c.agent.clone(), Some(c))),
            None => Ok((self.agent(&task.kind)?, None)),
        }
    }

    fn branch(&self, task: &str) -> String {
        format!("lightsout/{}/{task}", self.run_id)
    }

    fn worktree(&self, task: &str) -> PathBuf {
        self.run_dir.join("wt").join(task)
    }

    fn artifacts(&self, task: &str) -> PathBuf {
        self.run_dir.join("artifacts").join(task)
    }

    /// Makes sure `wt` is a usable worktree on `branch` (cut from `base` if the branch is
    /// new), clearing what a killed git left behind: stale locks, a half-made worktree, a
    /// rebase in progress.
    async fn prepare_worktree(&self, wt: &Path, branch: &str, base: &str) -> Result<(), Error> {
        let ok = wt.join(".git").exists() && {
            let g = Git::new(wt);
            g.out(&["rev-parse", "--show-toplevel"])
                .await
                .is_ok_and(|o| {
                    o.ok && Path::new(o.stdout.trim()) == wt.canonicalize().unwrap_or_default()
                })
        };
        if ok {
            let g = Git::new(wt);
            for lockname in [
                "index.lock",
                "HEAD.lock",
                "ORIG_HEAD.lock",
                "AUTO_MERGE.lock",
            ] {
                let p = g.git_path(lockname).await?;
                if p.exists() {
                    let _ = std::fs::remove_file(&p);
                }
            }
            if g.rebase_in_progress().await? {
                let o = g.out(&["rebase", "--abort"]).await?;
                if !o.ok {
                    g.run(&["rebase", "--quit"]).await?;
                }
            }
            // A branch ref lock from a killed commit.
            self.clear_ref_lock(&format!("refs/heads/{branch}")).await?;
            // A rebase cut short by a kill (and quit above) can leave HEAD detached at an
            // intermediate commit such as main's, while the branch still names the work as it
            // was before the merge began: a resumed merge must start from the branch, or it
            // judges main's tree as the task's.
            let head_ref = g.out(&["symbolic-ref", "-q", "HEAD"]).await?;
            if head_ref.stdout.trim() != format!("refs/heads/{branch}")
                && self
                    .repo
                    .try_rev(&format!("refs/heads/{branch}"))
                    .await?
                    .is_some()
            {
                g.run(&["checkout", "-q", "-f", branch]).await?;
            }
            return Ok(());
        }
        // A branch ref lock from a killed `worktree add -b`.
        self.clear_ref_lock(&format!("refs/heads/{branch}")).await?;
        let w = wt.to_string_lossy().into_owned();
        let _ = self.repo.out(&["worktree", "unlock", &w]).await;
        let _ = self
            .repo
            .out(&["worktree", "remove", "--force", "--force", &w])
            .await;
        if wt.exists() {
            std::fs::remove_dir_all(wt)
                .map_err(|e| Error::io("remove half-made worktree", wt, e))?;
        }
        self.repo.run(&["worktree", "prune"]).await?;
        if let Some(parent) = wt.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        }
        let exists = self
            .repo
            .try_rev(&format!("refs/heads/{branch}"))
            .await?
            .is_some();
        if exists {
            self.repo
                .run(&["worktree", "add", "-q", &w, branch])
                .await?;
        } else {
            self.repo
                .run(&["worktree", "add", "-q", "-b", branch, &w, base])
                .await?;
        }
        Ok(())
    }

    /// Removes the lock file of `refname` left by a git process killed with the run. Only
    /// called for refs this run owns (its branches and keep-refs), while it holds the run lock.
    async fn clear_ref_lock(&self, refname: &str) -> Result<(), Error> {
        let common = PathBuf::from(self.repo.run(&["rev-parse", "--git-common-dir"]).await?);
        let common = if common.is_absolute() {
            common
        } else {
            self.repo.dir().join(common)
        };
        let lock = common.join(format!("{refname}.lock"));
        if lock.exists() {
            std::fs::remove_file(&lock).map_err(|e| Error::io("remove stale lock", &lock, e))?;
        }
        Ok(())
    }

    /// Keeps `commit` reachable under `refs/lightsout/<run>/<task>/<name>`.
    async fn keep(&self, task: &str, name: &str, commit: &str) -> Result<(), Error> {
        let r = format!("refs/lightsout/{}/{task}/{name}", self.run_id);
        self.clear_ref_lock(&r).await?;
        self.repo.run(&["update-ref", &r, commit]).await?;
        Ok(())
    }

    /// Cuts a fresh worktree for `task` from main and journals `TaskStarted`.
    async fn start_task(&self, task: &Task, feedback: Option<String>) -> Result<Job, Error> {
        let base = self.repo.rev(&self.main).await?;
        let branch = self.branch(&task.id);
        let wt = self.worktree(&task.id);
        self.prepare_worktree(&wt, &branch, &base).await?;
        // A branch left by a run killed before `TaskStarted` was journaled may point at an
        // older main: move it to the current one, keeping any commits it has.
        // A kill inside `git worktree add` can also leave a half-checked-out tree: reset the
        // index and files to `base` whatever HEAD says.
        let g = Git::new(&wt);
        let head = g.rev("HEAD").await?;
        if head != base && !self.repo.is_ancestor(&head, &base).await? {
            self.keep(&task.id, "stale", &head).await?;
        }
        g.run(&["reset", "-q", "--hard", &base]).await?;
        g.run(&["clean", "-q", "-fd"]).await?;
        let regression = self.state().merged_requirements.clone();
        self.record(&Entry::TaskStarted {
            task: task.id.clone(),
            branch,
            worktree: wt.clone(),
            base: base.clone(),
            regression: regression.clone(),
        })?;
        Ok(Job {
            task: task.clone(),
            worktree: wt,
            base,
            regression,
            first_attempt: 1,
            feedback,
            human_intervened: false,
        })
    }

    /// Runs the per-task attempt loop.
    async fn work(self: Arc<Self>, job: Job) -> Result<WorkOutcome, Error> {
        let max = self.config.run.attempts;
        let g = Git::new(&job.worktree);
        let (agent, chosen) = self.agent_for_task(&job.task)?;
        let mut feedback = job.feedback.clone();
        let context_pack = self.memory.context_pack(&job.task).await?;
        let artifacts = self.artifacts(&job.task.id);
        let mut ws = Workspace::new(&job.worktree, &artifacts);
        ws.env.clone_from(&self.env);
        ws.limits = self.config.limits;
        ws.variant = chosen.map(|c| c.prompt.clone());
        for attempt in job.first_attempt..=max {
            let head = g.rev("HEAD").await?;
            self.record(&Entry::AttemptStarted {
                task: job.task.id.clone(),
                attempt,
                head: head.clone(),
            })?;
            let budget = self.attempt_budget(&job.task.id, attempt, max);
            let ctx = TaskContext::for_task(
                self.run_id.clone(),
                &job.task,
                context_pack.clone(),
                feedback.clone(),
                attempt,
                budget,
            );
            let mut rec = AttemptRecord {
                attempt,
                agent: agent.name(),
                replay: false,
                summary: String::new(),
                usage: Usage::default(),
                outcome: Outcome::Completed,
                passed: false,
                failed_stage: None,
                feedback: None,
                commit: Some(head.clone()),
                human_intervened: job.human_intervened || self.resumed,
            };
            self.events.emit(&Event::AttemptStarted {
                task: job.task.id.clone(),
                attempt,
                agent: agent.name(),
            });
            let verdict = self.attempt(&job, &ctx, &ws, &agent, &g, &mut rec).await?;
            let stop = matches!(verdict, Step::Stop);
            let final_outcome = if rec.passed {
                Some(lightsout_core::FinalOutcome::Merged)
            } else if stop || attempt >= max {
                Some(lightsout_core::FinalOutcome::Failed)
            } else {
                None
            };
            self.remember_attempt(&job, chosen, &rec, final_outcome)
                .await?;
            let passed = rec.passed;
            feedback.clone_from(&rec.feedback);
            self.record(&Entry::AttemptFinished {
                task: job.task.id.clone(),
                record: rec,
            })?;
            if passed {
                return Ok(WorkOutcome::Passed);
            }
            if stop {
                return Ok(WorkOutcome::Failed(
                    feedback.unwrap_or_else(|| "stopped by policy".into()),
                ));
            }
        }
        Ok(WorkOutcome::Failed(format!(
            "{max} attempts used; last feedback: {}",
            feedback.unwrap_or_default()
        )))
    }

    /// What is left of `task`'s budget when attempt `attempt` of `max` starts: the ledger's
    /// caps, and attempts no more than the run's `[run] attempts` leave.
    fn attempt_budget(&self, task: &str, attempt: u32, max: u32) -> Budget {
        let left = self.ledger.remaining(task);
        Budget {
            attempts_left: left.attempts.map_or(max - attempt + 1, |a| {
                u32::try_from(a).unwrap_or(u32::MAX).min(max - attempt + 1)
            }),
            tokens_left: left.tokens,
            #[allow(clippy::cast_precision_loss)]
            usd_left: left.usd_micros.map(|m| m as f64 / 1_000_000.0),
            wall_ms_left: left.wall_ms,
        }
    }

    /// Hands attempt `rec` of `job` to memory: its metrics (with the task's `final_outcome`
    /// when this attempt decided it, and the variant `chosen` for it), and its failure as a
    /// lesson for later agents.
    async fn remember_attempt(
        &self,
        job: &Job,
        chosen: Option<&crate::tuning::Chosen>,
        rec: &AttemptRecord,
        final_outcome: Option<lightsout_core::FinalOutcome>,
    ) -> Result<(), Error> {
        self.memory
            .record_attempt(&AttemptMetrics {
                run_id: self.run_id.clone(),
                task_id: job.task.id.clone(),
                requirements: job.task.requirement_ids.clone(),
                attempt: rec.attempt,
                agent: rec.agent.clone(),
                replay: rec.replay,
                usage: rec.usage,
                passed: rec.passed,
                failed_stage: rec.failed_stage,
                human_intervened: rec.human_intervened,
                task_kind: Some(job.task.kind.clone()),
                agent_profile: chosen.map_or_else(
                    || self.config.profile_for(&job.task.kind).map(str::to_owned),
                    |c| Some(c.choice.agent_profile.clone()),
                ),
                model: chosen.and_then(|c| c.choice.model.clone()),
                variant: chosen.map(|c| c.choice.variant.clone()),
                final_outcome,
                failure_category: rec
                    .failed_stage
                    .map(|s| AttemptMetrics::category(s, rec.feedback.as_deref())),
            })
            .await?;
        // A leak's reason names holdout files: it is not a lesson for later agents.
        if let (Some(stage), Some(text)) = (rec.failed_stage, &rec.feedback)
            && stage != FailedStage::Leak
        {
            self.memory
                .record_lesson(&Lesson {
                    fingerprint: fingerprint(stage.as_str(), text),
                    task_id: job.task.id.clone(),
                    requirements: job.task.requirement_ids.clone(),
                    stage,
                    text: text.clone(),
                })
                .await?;
        }
        Ok(())
    }

    /// What a hook decision means for the attempt: `None` to go on, or the step after
    /// recording the failure in `rec` (stage `policy`, or `leak` for holdout text).
    fn decided(d: HookDecision, rec: &mut AttemptRecord) -> Option<Step> {
        let stage = d.failed_stage();
        let (reason, step) = match d {
            HookDecision::Proceed => return None,
            HookDecision::FailAttempt(r) => (r, Step::Next),
            HookDecision::StopTask(r) | HookDecision::Leak(r) => (r, Step::Stop),
        };
        rec.failed_stage = stage;
        rec.feedback = Some(reason);
        Some(step)
    }

    /// The git directory and the run's refs before an attempt of `job`
    /// ([`integrity`](crate::integrity)).
    async fn git_snapshot(&self, job: &Job) -> Result<crate::integrity::Snapshot, Error> {
        let scope = crate::integrity::Scope {
            run_id: self.run_id.clone(),
            main: self.main.clone(),
            task: job.task.id.clone(),
            tasks: self
                .state()
                .tasks
                .iter()
                .map(|t| t.task.id.clone())
                .collect(),
        };
        let copy = self.run_dir.join("objects");
        Ok(crate::integrity::Snapshot::take(&self.repo, &job.worktree, scope, Some(&copy)).await?)
    }

    /// Restores what the attempt changed in the git directory and the run's refs; each
    /// change is a `policy_hit` in the audit log and fails the attempt.
    async fn git_verify(
        &self,
        job: &Job,
        snapshot: &crate::integrity::Snapshot,
    ) -> Result<HookDecision, Error> {
        let main = {
            let s = self.state();
            crate::integrity::MainRecord {
                head: s.main_head.clone(),
                verified: s.tasks.iter().filter_map(|t| t.verified.clone()).collect(),
            }
        };
        let base = self
            .state()
            .task(&job.task.id)
            .and_then(|t| t.base.clone())
            .unwrap_or_else(|| job.base.clone());
        let breaches = snapshot.verify(&self.repo, &main, &base).await?;
        if breaches.is_empty() {
            return Ok(HookDecision::Proceed);
        }
        Ok(HookDecision::FailAttempt(self.audit_breaches(
            &job.task.id,
            &breaches,
            "the factory undid what it could and discarded the attempt's work. The git \
             directory is the factory's: leave refs, config, hooks and objects alone; the \
             factory makes every commit",
        )))
    }

    /// Audits each breach as a `policy_hit` of `task`; returns the attempt's feedback.
    fn audit_breaches(
        &self,
        task: &str,
        breaches: &[crate::integrity::Breach],
        then: &str,
    ) -> String {
        for b in breaches {
            let mut details = serde_json::to_value(b).unwrap_or_default();
            if let serde_json::Value::Object(m) = &mut details {
                m.insert("message".into(), b.to_string().into());
            }
            self.audit.record(
                lightsout_fence::audit::AuditKind::PolicyHit,
                Some(task),
                details,
            );
        }
        let list: Vec<String> = breaches.iter().map(ToString::to_string).collect();
        format!("policy: {}; {then}", list.join("; "))
    }

    /// Rebuilds `job`'s worktree on its branch after an agent damaged it, at `start` (the
    /// attempt's starting commit) when given.
    async fn rebuild_worktree(&self, job: &Job, start: Option<&str>) -> Result<(), Error> {
        let branch = self.branch(&job.task.id);
        self.prepare_worktree(&job.worktree, &branch, &job.base)
            .await?;
        let g = Git::new(&job.worktree);
        if let Some(start) = start {
            g.run(&["reset", "-q", "--hard", start]).await?;
        }
        g.run(&["clean", "-q", "-fd"]).await?;
        Ok(())
    }

    /// One attempt: agent → commit → checks → guards → holdout.
    async fn attempt(
        &self,
        job: &Job,
        ctx: &TaskContext,
        ws: &Workspace,
        agent: &Arc<dyn Agent>,
        g: &Git,
        rec: &mut AttemptRecord,
    ) -> Result<Step, Error> {
        if let Some(step) = Self::decided(self.hook.before_attempt(ctx).await?, rec) {
            return Ok(step);
        }
        let snapshot = self.git_snapshot(job).await?;
        let Some(report) = self.call_agent(job, ctx, ws, agent, &snapshot, rec).await? else {
            return Ok(Step::Stop);
        };
        if let Some(step) = self
            .commit_attempt(job, ctx, g, &report, &snapshot, rec)
            .await?
        {
            return Ok(step);
        }
        self.judge_attempt(job, ctx, ws, g, &report, rec).await
    }

    /// The agent call of an attempt, with the task's standing instructions in the worktree
    /// for its length. `None` when the agent could not run (recorded in `rec`: the task
    /// stops); an agent program that cannot be started is an infrastructure error.
    async fn call_agent(
        &self,
        job: &Job,
        ctx: &TaskContext,
        ws: &Workspace,
        agent: &Arc<dyn Agent>,
        snapshot: &crate::integrity::Snapshot,
        rec: &mut AttemptRecord,
    ) -> Result<Option<AgentReport>, Error> {
        // The standing context goes into the worktree for this call only (`instructions`),
        // and out again before anything looks at or commits the agent's work.
        // Always written (the factory's rules at least): the aider preset reads AGENTS.md.
        let layer = crate::instructions::Layer::write(&job.worktree, &ctx.render_instructions())?;
        let ran = agent.run(ctx, ws).await;
        if std::fs::symlink_metadata(&job.worktree).is_ok_and(|m| m.is_dir()) {
            layer.remove()?;
        }
        let report: AgentReport = match ran {
            Ok(r) => r,
            Err(e) => {
                rec.outcome = Outcome::Failed {
                    exit_code: None,
                    message: e.to_string(),
                };
                // Settles the reservation (nothing was used) and audits the call.
                let failed = AgentReport {
                    agent: agent.name(),
                    replay: false,
                    summary: String::new(),
                    usage: Usage::default(),
                    transcript: None,
                    outcome: rec.outcome.clone(),
                };
                self.hook.after_attempt(ctx, &failed).await?;
                if let HookDecision::FailAttempt(r) = self.git_verify(job, snapshot).await? {
                    fail(rec, FailedStage::Policy, r);
                    return Ok(None);
                }
                // A program that cannot be started is the machine's problem, not the
                // task's: the run stops as an infrastructure error (resumable once fixed).
                if matches!(e, lightsout_agent::Error::Spawn { .. }) {
                    return Err(Error::Agent(e));
                }
                fail(
                    rec,
                    FailedStage::Agent,
                    format!("the agent could not run: {e}"),
                );
                return Ok(None);
            }
        };
        rec.agent = report.label();
        rec.replay = report.replay;
        // The agent's own text is kept once, in its transcript: the journal and state keep
        // at most its head and a reference (path + hash).
        let transcript = report.transcript.as_deref();
        rec.summary = crate::integrity::stored_text(&report.summary, transcript);
        rec.usage = report.usage;
        rec.outcome = match report.outcome.clone() {
            Outcome::Failed { exit_code, message } => Outcome::Failed {
                exit_code,
                message: crate::integrity::stored_text(&message, transcript),
            },
            other => other,
        };
        Ok(Some(report))
    }

    /// After the agent: the hooks' and git's verdicts on what it did, the store caps, then
    /// the commit and the leak scan of its diff. `Some` step when the attempt ends here.
    async fn commit_attempt(
        &self,
        job: &Job,
        ctx: &TaskContext,
        g: &Git,
        report: &AgentReport,
        snapshot: &crate::integrity::Snapshot,
        rec: &mut AttemptRecord,
    ) -> Result<Option<Step>, Error> {
        let after = self.hook.after_attempt(ctx, report).await?;
        // Before any other git command: the git directory back to what the factory left.
        let after = after.worst(self.git_verify(job, snapshot).await?);
        // Before any git command in the worktree: an agent that deleted or rewrote its `.git`
        // would otherwise send `git add -A` and `git commit` up to the main checkout.
        if let Some(problem) = worktree_damage(&job.worktree).await {
            self.rebuild_worktree(job, rec.commit.as_deref()).await?;
            let reason = format!(
                "the agent damaged its worktree ({problem}); the attempt's work was discarded \
                 and the worktree rebuilt from its branch. Leave the worktree's .git alone"
            );
            let d = after.worst(HookDecision::FailAttempt(reason));
            return Ok(Some(Self::decided(d, rec).unwrap_or(Step::Next)));
        }
        if after != HookDecision::Proceed {
            // A policy stop: the attempt's work never reaches the branch.
            if let Some(start) = rec.commit.clone() {
                g.run(&["reset", "-q", "--hard", &start]).await?;
                g.run(&["clean", "-q", "-fd"]).await?;
            }
            return Ok(Some(Self::decided(after, rec).unwrap_or(Step::Next)));
        }
        // Nothing over `[store]` is ever staged: measured from metadata, before `git add`.
        let caps = crate::integrity::over_caps(g, &self.config.store).await?;
        if !caps.is_empty() {
            let reason =
                self.audit_breaches(&job.task.id, &caps, "the attempt's work was not committed");
            if let Some(start) = rec.commit.clone() {
                g.run(&["reset", "-q", "--hard", &start]).await?;
                g.run(&["clean", "-q", "-fd"]).await?;
            }
            fail(rec, FailedStage::Policy, reason);
            return Ok(Some(Step::Next));
        }
        let commit = g
            .commit_all(&format!(
                "lightsout: {} attempt {} ({})\n\nLightsout-Run: {}\nLightsout-Task: {}\nLightsout-Agent: {}",
                ctx.task_id,
                ctx.attempt,
                ctx.title,
                self.run_id,
                ctx.task_id,
                report.label()
            ))
            .await?;
        if let Some(c) = commit {
            rec.commit = Some(c);
        }
        // Everything the attempt committed crosses the fence towards main: scan it.
        let diff_base = self.task_base(job);
        let diff = g.run(&["diff", &diff_base, "HEAD"]).await?;
        Ok(Self::decided(
            self.hook.inspect_diff(ctx, &diff).await?,
            rec,
        ))
    }

    /// The task's base: where its branch was cut (or last rebased), from the run state.
    fn task_base(&self, job: &Job) -> String {
        self.state()
            .task(&job.task.id)
            .and_then(|t| t.base.clone())
            .unwrap_or_else(|| job.base.clone())
    }

    /// The committed attempt judged: the agent's outcome, the visible checks, the guards,
    /// then the holdout on the candidate.
    async fn judge_attempt(
        &self,
        job: &Job,
        ctx: &TaskContext,
        ws: &Workspace,
        g: &Git,
        report: &AgentReport,
        rec: &mut AttemptRecord,
    ) -> Result<Step, Error> {
        match &report.outcome {
            Outcome::Completed => {}
            other => {
                let what = match other {
                    Outcome::Failed { message, .. } => format!("the agent failed: {message}"),
                    Outcome::TimedOut => format!(
                        "the agent ran past its wall-time limit ({} ms) and was stopped",
                        ws.limits.wall_ms
                    ),
                    Outcome::OutputCapped => format!(
                        "the agent printed more than {} bytes and was stopped",
                        ws.limits.output_bytes
                    ),
                    _ => "the agent did not complete".to_owned(),
                };
                fail(rec, FailedStage::Agent, what);
                return Ok(Step::Next);
            }
        }
        let checked = run_checks(
            &self.config.checks,
            &job.worktree,
            &self.env,
            self.checks_fence.as_deref(),
        )
        .await?;
        if !checked.report.is_clean() {
            self.reports.put(&ctx.task_id, ctx.attempt, checked.report);
        }
        if let Some(step) = Self::decided(self.hook.after_checks(ctx).await?, rec) {
            return Ok(step);
        }
        if let Some(f) = checked.failure {
            fail(rec, FailedStage::Checks, f.feedback);
            return Ok(Step::Next);
        }
        let head = g.rev("HEAD").await?;
        let base = self.task_base(job);
        let diff = g.run(&["diff", &base, &head]).await?;
        let findings = self
            .guard
            .check(&GuardRequest {
                task_id: job.task.id.clone(),
                requirements: job.task.requirement_ids.clone(),
                worktree: job.worktree.clone(),
                base,
                head,
                diff,
            })
            .await?;
        let blocking: Vec<String> = findings
            .iter()
            .filter(|f| f.blocking)
            .map(|f| format!("{}: {}", f.rule, f.message))
            .collect();
        if !blocking.is_empty() {
            fail(rec, FailedStage::Guards, blocking.join("\n"));
            return Ok(Step::Next);
        }
        let regression = self
            .state()
            .task(&job.task.id)
            .map_or_else(|| job.regression.clone(), |t| t.regression.clone());
        let v = self
            .evaluator
            .evaluate(&EvalRequest {
                run_id: self.run_id.clone(),
                task_id: job.task.id.clone(),
                attempt: ctx.attempt,
                stage: EvalStage::Candidate,
                worktree: job.worktree.clone(),
                requirements: job.task.requirement_ids.clone(),
                regression,
                artifacts_dir: self.run_dir.join("eval"),
                policy: self.policy.clone(),
            })
            .await?;
        if !v.passed {
            fail(rec, FailedStage::Holdout, v.feedback);
            return Ok(Step::Next);
        }
        rec.passed = true;
        Ok(Step::Next)
    }

    /// Rebases `task` onto main, verifies the merged result, and fast-forwards main; the
    /// step is redone on the new main when the merge target's main moved meanwhile (a
    /// fleet's remote, see [`crate::fleet`]).
    async fn merge(&self, task_id: &str) -> Result<MergeOutcome, Error> {
        const TRIES: u32 = 8;
        for _ in 0..TRIES {
            let step = self.merge_step(task_id).await;
            self.target.end();
            if let Some(outcome) = step? {
                return Ok(outcome);
            }
        }
        Err(Error::Stage {
            stage: "merge",
            message: format!("main moved under each of {TRIES} merges of {task_id}"),
        })
    }

    /// One merge step of `task_id`: `None` when main moved before it could be published.
    async fn merge_step(&self, task_id: &str) -> Result<Option<MergeOutcome>, Error> {
        let (task, wt, attempts_used, merges) = {
            let s = self.state();
            let t = s
                .task(task_id)
                .ok_or_else(|| Error::Plan(format!("unknown task {task_id}")))?;
            (
                t.task.clone(),
                t.worktree.clone().unwrap_or_else(|| self.worktree(task_id)),
                t.attempts.len() as u32,
                t.merges,
            )
        };
        let g = Git::new(&wt);
        let work = g.rev("HEAD").await?;
        let onto = self
            .target
            .onto(self.repo.dir(), &self.main, task_id, &work)
            .await?;
        self.record(&Entry::MergeStarted {
            task: task_id.to_owned(),
            onto: onto.clone(),
        })?;
        let pre = g.rev("HEAD").await?;
        self.keep(task_id, &format!("pre-merge-{}", merges + 1), &pre)
            .await?;
        if !g.is_ancestor(&onto, "HEAD").await? {
            let o = g.out(&["rebase", "-q", &onto]).await?;
            if !o.ok {
                let files = g.conflicted_files().await?;
                let abort = g.out(&["rebase", "--abort"]).await?;
                if !abort.ok {
                    g.run(&["rebase", "--quit"]).await?;
                }
                if files.is_empty() {
                    return Err(Error::Git {
                        args: format!("rebase {onto}"),
                        dir: wt,
                        stderr: o.stderr.trim().to_owned(),
                    });
                }
                return self
                    .route_conflict(task_id, &task, &pre, files)
                    .await
                    .map(Some);
            }
        }
        let head = g.rev("HEAD").await?;
        let merged_reqs = self.state().merged_requirements.clone();
        let (verdict, failure) = match self
            .verify_merged(task_id, &task, &wt, attempts_used, &merged_reqs)
            .await?
        {
            Ok(verdict) => (verdict, None),
            Err(feedback) => (String::new(), Some(feedback)),
        };
        if let Some(feedback) = failure {
            let feedback = format!("after rebasing onto main the merged result fails:\n{feedback}");
            self.record(&Entry::MergeReverted {
                task: task_id.to_owned(),
                commit: head,
                feedback: feedback.clone(),
                regression: merged_reqs.clone(),
            })?;
            if attempts_used >= self.config.run.attempts {
                return Ok(Some(MergeOutcome::Failed(format!(
                    "{attempts_used} attempts used; the merged result regressed: {feedback}"
                ))));
            }
            return Ok(Some(MergeOutcome::Rework(Box::new(Job {
                task,
                worktree: wt,
                base: onto,
                regression: merged_reqs,
                first_attempt: attempts_used + 1,
                feedback: Some(feedback),
                human_intervened: false,
            }))));
        }
        // Main receives one commit for the task: the verified tree, on `onto`, with
        // trailers. The attempts stay reachable under `refs/lightsout/<run>/<task>/`.
        self.keep(task_id, "merged", &head).await?;
        let squash = self
            .squash(task_id, &task, &onto, &head, &verdict, attempts_used)
            .await?;
        self.record(&Entry::MergeVerified {
            task: task_id.to_owned(),
            commit: squash.clone(),
        })?;
        if !self
            .target
            .publish(self.repo.dir(), &self.main, task_id, &onto, &squash)
            .await?
        {
            return Ok(None);
        }
        self.record(&Entry::Merged {
            task: task_id.to_owned(),
            commit: squash.clone(),
        })?;
        self.remember_inputs(task_id, &squash)?;
        self.retire(task_id, &wt).await;
        Ok(Some(MergeOutcome::Merged))
    }

    /// Verifies a rebased task on the merged result: visible checks, then the holdout with
    /// main's requirements (`merged_reqs`) as the regression bucket. `Ok(verdict)` (the
    /// words of the squash commit's gate trailer) when it passes, `Err(feedback)` when not.
    async fn verify_merged(
        &self,
        task_id: &str,
        task: &Task,
        wt: &Path,
        attempts_used: u32,
        merged_reqs: &[String],
    ) -> Result<Result<String, String>, Error> {
        let mut verdict = String::from("pass");
        // Verify the merged result: visible checks, then the holdout with main's
        // requirements as the regression bucket.
        let checked = run_checks(
            &self.config.checks,
            wt,
            &self.env,
            self.checks_fence.as_deref(),
        )
        .await?;
        let failure = if !checked.report.is_clean() {
            let what: Vec<String> = checked
                .report
                .violations
                .iter()
                .map(ToString::to_string)
                .collect();
            Some(format!(
                "the fence stopped the visible checks of the merged result: {}",
                what.join("; ")
            ))
        } else if let Some(f) = checked.failure {
            Some(f.feedback)
        } else {
            let v = self
                .evaluator
                .evaluate(&EvalRequest {
                    run_id: self.run_id.clone(),
                    task_id: task_id.to_owned(),
                    attempt: attempts_used,
                    stage: EvalStage::Merged,
                    worktree: wt.to_path_buf(),
                    requirements: task.requirement_ids.clone(),
                    regression: merged_reqs.to_vec(),
                    artifacts_dir: self.run_dir.join("eval"),
                    policy: self.policy.clone(),
                })
                .await?;
            if v.passed {
                let (passed, trials) = v
                    .requirements
                    .iter()
                    .fold((0u32, 0u32), |(p, t), r| (p + r.passed, t + r.trials));
                verdict = format!(
                    "pass; visible checks and holdout on the merged result, {passed}/{trials} \
                     trials over {} requirement(s), {} of them already on main",
                    v.requirements.len(),
                    merged_reqs.len()
                );
            }
            (!v.passed).then_some(v.feedback)
        };
        Ok(failure.map_or(Ok(verdict), Err))
    }

    /// Makes the one commit main receives for `task_id`: the tree of `head` (the verified,
    /// rebased work) with `onto` as its only parent, and git trailers naming the run, the
    /// task, its requirements, the gate's verdict and where the attempts are kept.
    ///
    /// # Errors
    /// [`Error::Git`] when git cannot write the commit.
    async fn squash(
        &self,
        task_id: &str,
        task: &Task,
        onto: &str,
        head: &str,
        verdict: &str,
        attempts: u32,
    ) -> Result<String, Error> {
        let root = self.state().root_of(task_id).to_owned();
        let tree = format!("{head}^{{tree}}");
        let subject = first_line_of(&task.title);
        let mut message = format!(
            "{root}: {subject}\n\n\
             Built by the Lightsout factory in {attempts} attempt(s); the attempts are kept \
             under refs/lightsout/{run}/{task_id}/.\n\n\
             Lightsout-Run: {run}\n\
             Lightsout-Task: {task_id}\n\
             Lightsout-Requirements: {reqs}\n\
             Lightsout-Gate: {verdict}\n\
             Lightsout-Attempts: refs/lightsout/{run}/{task_id}/merged\n",
            run = self.run_id,
            reqs = if task.requirement_ids.is_empty() {
                "none".to_owned()
            } else {
                task.requirement_ids.join(", ")
            },
        );
        for (key, value) in self.target.trailers() {
            use std::fmt::Write as _;
            let _ = writeln!(message, "{key}: {value}");
        }
        Ok(self
            .repo
            .run(&["commit-tree", &tree, "-p", onto, "-m", &message])
            .await?)
    }

    /// Records `task_id`'s input key with `commit`, the commit main received for it, in
    /// `.lightsout/inputs.json` (see [`crate::inputs`]); a later run reuses it while the key
    /// matches.
    ///
    /// # Errors
    /// [`Error::Io`] when the store cannot be written.
    fn remember_inputs(&self, task_id: &str, commit: &str) -> Result<(), Error> {
        let (root, name, deps) = {
            let s = self.state();
            let root = s.root_of(task_id).to_owned();
            let Some(t) = s.task(&root) else {
                return Ok(());
            };
            let name = crate::inputs::store_id(&t.task);
            let deps: Option<BTreeMap<String, String>> = t
                .task
                .depends_on
                .iter()
                .map(|d| {
                    s.task(d)
                        .and_then(|x| x.merge_commit.clone())
                        .map(|c| (d.clone(), c))
                })
                .collect();
            (root, name, deps)
        };
        let (Some(own), Some(deps)) = (self.own.get(&root), deps) else {
            return Ok(());
        };
        let path = crate::inputs::inputs_path(self.repo.dir());
        let mut kept = crate::inputs::Inputs::read(&path)?;
        kept.tasks.insert(
            name,
            crate::inputs::Built {
                key: crate::inputs::key(own, &deps),
                own: own.clone(),
                commit: commit.to_owned(),
                run: self.run_id.clone(),
            },
        );
        kept.write(&path)
    }

    /// Retires a finished task's worktree and branch: its head is kept under
    /// `refs/lightsout/<run>/<task>/head` first, so every attempt commit stays reachable for
    /// the audit until `lightsout gc` prunes the run. Best effort: what cannot be removed
    /// stays for `gc`.
    async fn retire(&self, task_id: &str, wt: &Path) {
        let branch = format!("refs/heads/{}", self.branch(task_id));
        let Ok(Some(head)) = self.repo.try_rev(&branch).await else {
            return;
        };
        if self.keep(task_id, "head", &head).await.is_err() {
            return;
        }
        if wt.exists() {
            let w = wt.to_string_lossy().into_owned();
            let _ = self.repo.out(&["worktree", "remove", "--force", &w]).await;
        }
        if !wt.exists() {
            let _ = self.repo.out(&["update-ref", "-d", &branch, &head]).await;
        }
    }

    /// At the end of a complete run: retires the worktree and branch of every merged task
    /// still holding one (a task whose conflicted work was redone by its `.rebase-<n>`
    /// task), keeping its head under `refs/lightsout/<run>/<task>/head`. A failed task's
    /// worktree and branch stay for a person to look at, until `lightsout gc`.
    async fn retire_all(&self) {
        let tasks: Vec<(String, Option<PathBuf>)> = self
            .state()
            .tasks
            .iter()
            .filter(|t| t.status == TaskPhase::Merged && t.worktree.is_some())
            .map(|t| (t.task.id.clone(), t.worktree.clone()))
            .collect();
        for (id, wt) in tasks {
            let wt = wt.unwrap_or_else(|| self.worktree(&id));
            self.retire(&id, &wt).await;
        }
        let _ = self.repo.out(&["worktree", "prune"]).await;
    }

    async fn route_conflict(
        &self,
        task_id: &str,
        task: &Task,
        pre: &str,
        files: Vec<String>,
    ) -> Result<MergeOutcome, Error> {
        let (root, n, base) = {
            let s = self.state();
            let root = s.root_of(task_id).to_owned();
            let n = s
                .tasks
                .iter()
                .filter(|t| t.parent.as_deref() == Some(root.as_str()))
                .count() as u32
                + 1;
            let base = s
                .task(task_id)
                .and_then(|t| t.base.clone())
                .unwrap_or_default();
            (root, n, base)
        };
        if n > self.config.run.attempts {
            return Ok(MergeOutcome::Failed(format!(
                "the rebase onto main conflicted {} times (files: {})",
                n - 1,
                files.join(", ")
            )));
        }
        let root_task = self.state().task(&root).map(|t| t.task.clone());
        let root_task = root_task.unwrap_or_else(|| task.clone());
        let mut diff = if base.is_empty() {
            String::new()
        } else {
            Git::new(self.repo.dir()).run(&["diff", &base, pre]).await?
        };
        if diff.len() > 16_000 {
            let mut cut = 16_000;
            while !diff.is_char_boundary(cut) {
                cut -= 1;
            }
            diff.truncate(cut);
            diff.push_str("\n[diff truncated]");
        }
        let child = Task {
            id: format!("{root}.rebase-{n}"),
            title: format!(
                "{} (redo on current main after a conflict)",
                root_task.title
            ),
            ..root_task
        };
        let feedback = format!(
            "Your earlier change for this task (branch {}) conflicted with main, which has moved \
             on, in: {}. Make the change again on top of the current main.\n\nYour earlier \
             diff:\n```diff\n{}\n```",
            self.branch(task_id),
            files.join(", "),
            diff.trim_end()
        );
        self.record(&Entry::ConflictRouted {
            task: task_id.to_owned(),
            to: child.clone(),
            files,
            feedback: feedback.clone(),
        })?;
        let job = self.start_task(&child, Some(feedback)).await?;
        Ok(MergeOutcome::Rework(Box::new(job)))
    }

    /// Whether this run measures the holdout's strength after the last merge: a gate rule
    /// asks for a minimum strength, `run --strength`, or `[strength] after_run = true`.
    fn wants_strength(&self, strength: &lightsout_eval::StrengthConfig) -> bool {
        self.policy.min_strength().is_some()
            || self.state().strength
            || strength.after_run == Some(true)
    }

    /// Measures the holdout's strength on main's last commit once every planned task merged
    /// (see [`wants_strength`](Self::wants_strength)), and writes the report to
    /// `eval/strength.json` in the run directory (or why it could not to
    /// `eval/strength.error`); the outcome report reads both. Nothing of it reaches an agent:
    /// every agent is done, and `eval/` is hidden from agents and services. A measurement of
    /// the same commit already on disk (a resumed run) is kept.
    ///
    /// # Errors
    /// [`Error::Config`] when `[strength]` is invalid; [`Error::Io`] when the result cannot be
    /// written. A measurement that fails is not an error: its reason is recorded.
    async fn strength_after_run(&self) -> Result<(), Error> {
        let section: lightsout_eval::StrengthConfig = match self.config.strength.as_ref() {
            Some(raw) => raw.clone().try_into().map_err(|e| {
                Error::Config(format!(
                    "[strength] in lightsout.toml: {e}; expected tool, max_mutants, seed, \
                     trials, jobs, timeout_s, min_kill_rate, paths, after_run"
                ))
            })?,
            None => lightsout_eval::StrengthConfig::default(),
        };
        if !self.wants_strength(&section) {
            return Ok(());
        }
        // Nothing was built: main is what an earlier run measured, or chose not to.
        {
            let s = self.state();
            if s.planned > 0 && s.tasks[..s.planned].iter().all(|t| t.unchanged.is_some()) {
                return Ok(());
            }
        }
        let (all_merged, commit, requirements) = {
            let s = self.state();
            let merged = s.tasks[..s.planned]
                .iter()
                .all(|t| t.status == TaskPhase::Merged);
            (merged, s.main_head.clone(), s.merged_requirements.clone())
        };
        if !all_merged {
            return Ok(());
        }
        let dir = self.run_dir.join("eval");
        let out = dir.join(crate::outcome::STRENGTH_JSON);
        let err_file = dir.join(crate::outcome::STRENGTH_ERROR);
        if let Ok(done) = lightsout_eval::StrengthReport::read(&out)
            && done.build.as_deref() == Some(commit.as_str())
        {
            return Ok(());
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        let _ = std::fs::remove_file(&err_file);
        self.events.emit(&Event::StrengthStarted {
            commit: commit.clone(),
        });
        match self.measure_strength(&section, &commit, requirements).await {
            Ok(report) => {
                let bytes = report
                    .to_json()
                    .map_err(|e| Error::eval_cause("writing the strength report", e))?;
                write_atomic(&out, bytes.as_bytes())?;
                let killed = report.total - report.survived;
                self.events.emit(&Event::StrengthMeasured {
                    killed,
                    total: report.total,
                    kill_rate: report.kill_rate,
                    lower: report.wilson.low,
                    upper: report.wilson.high,
                });
            }
            Err(why) => {
                let _ = std::fs::remove_file(&out);
                write_atomic(&err_file, why.as_bytes())?;
                self.events
                    .emit(&Event::StrengthNotMeasured { reason: why });
            }
        }
        Ok(())
    }

    /// One strength measurement of `commit`, checked out in a worktree of its own under the
    /// run's hidden `eval/` directory; the error is the reason for the report.
    async fn measure_strength(
        &self,
        section: &lightsout_eval::StrengthConfig,
        commit: &str,
        requirements: Vec<String>,
    ) -> Result<lightsout_eval::StrengthReport, String> {
        let tool = match &section.tool {
            Some(name) => Some(lightsout_eval::MutationTool::parse(name).ok_or_else(|| {
                format!("[strength] tool = \"{name}\": expected cosmic-ray or cargo-mutants")
            })?),
            None => None,
        };
        let holdout = self
            .config
            .holdout_dir(std::env::var("LIGHTSOUT_HOLDOUT").ok().as_deref());
        let equivalents = match holdout
            .map(|h| h.join("equivalent-mutants.toml"))
            .filter(|p| p.is_file())
        {
            Some(p) => lightsout_eval::strength::read_equivalents(&p).map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        let events = self.events.clone();
        let progress: lightsout_eval::strength::StrengthProgressFn =
            Arc::new(move |p: &lightsout_eval::StrengthProgress| {
                if let lightsout_eval::StrengthProgress::Mutant {
                    done,
                    total,
                    killed,
                    ..
                } = p
                {
                    events.emit(&Event::StrengthProgress {
                        done: *done,
                        total: *total,
                        killed: *killed,
                    });
                }
            });
        let options = lightsout_eval::StrengthOptions {
            tool,
            trials: section.trials.unwrap_or(1).max(1),
            max_mutants: section.max_mutants,
            seed: section.seed.unwrap_or(1),
            jobs: section.jobs.unwrap_or(1).max(1),
            timeout: section
                .timeout_s
                .map(|s| std::time::Duration::from_secs(s.max(1))),
            equivalents,
            paths: section.paths.clone().unwrap_or_default(),
            progress: Some(progress),
            // Beside the worktrees, not in the hidden `eval/`: a sandboxed service must see
            // its build. Removed with the copies.
            scratch: Some(self.run_dir.join("strength-work")),
        };
        let artifacts = self.run_dir.join("eval");
        // What a killed measurement left behind goes first.
        let _ = std::fs::remove_dir_all(self.run_dir.join("strength-work"));
        let build = artifacts.join("strength-build");
        let w = build.to_string_lossy().into_owned();
        if build.exists() {
            let _ = self.repo.out(&["worktree", "remove", "--force", &w]).await;
            let _ = std::fs::remove_dir_all(&build);
        }
        self.repo
            .run(&["worktree", "add", "-q", "--detach", &w, commit])
            .await
            .map_err(|e| format!("cannot check out {commit} to measure it: {e}"))?;
        let req = crate::stages::StrengthRequest {
            build: build.clone(),
            requirements,
            artifacts_dir: artifacts.clone(),
            policy: self.policy.clone(),
            options,
        };
        let result = self.evaluator.measure_strength(&req).await;
        let _ = self.repo.out(&["worktree", "remove", "--force", &w]).await;
        let _ = std::fs::remove_dir_all(&build);
        let _ = std::fs::remove_dir_all(self.run_dir.join("strength-work"));
        match result {
            Ok(Some(mut report)) => {
                report.build = Some(commit.to_owned());
                Ok(report)
            }
            Ok(None) => Err(
                "not measured: this run's holdout evaluator cannot judge mutants \
                 (use [holdout] command or [target])"
                    .to_owned(),
            ),
            Err(e) => Err(format!("could not be measured: {e}")),
        }
    }

    /// Final steps: sync the main checkout, write `state.json`, journal the end.
    async fn finish(&self) -> Result<RunState, Error> {
        self.sync_checkout().await?;
        let at = now_rfc3339();
        let complete = self.state().is_complete();
        if complete {
            self.retire_all().await;
            self.record(&Entry::RunFinished { at })?;
        }
        let state = self.state().clone();
        let totals = state.totals();
        self.events.emit(&Event::RunFinished {
            merged: totals.merged,
            failed: totals.failed + totals.blocked,
            cost_usd: totals.cost_usd,
        });
        let report = serde_json::json!({
            "schema": "lightsout-run/1",
            "totals": totals,
            "run": state,
        });
        let bytes = serde_json::to_vec_pretty(&report).map_err(|e| Error::Journal {
            path: self.run_dir.join(crate::state::STATE_FILE),
            message: e.to_string(),
        })?;
        write_atomic(&self.run_dir.join(crate::state::STATE_FILE), &bytes)?;
        Ok(state)
    }

    /// Fast-forwards the main checkout's index and files when main is checked out there.
    async fn sync_checkout(&self) -> Result<(), Error> {
        let head = self.repo.out(&["symbolic-ref", "-q", "HEAD"]).await?;
        if !head.ok || head.stdout.trim() != format!("refs/heads/{}", self.main) {
            return Ok(());
        }
        let (from, to, pending) = {
            let s = self.state();
            (
                s.checkout.clone(),
                s.main_head.clone(),
                s.checkout_sync.clone(),
            )
        };
        let from = match &pending {
            Some((pfrom, pto)) => self.recover_sync(pfrom, pto).await?,
            None => from,
        };
        if from == to && pending.is_none() {
            return Ok(());
        }
        self.record(&Entry::CheckoutSyncStarted {
            from: from.clone(),
            to: to.clone(),
        })?;
        // `read-tree -m` trusts the index's stat data; refresh it so that a file rewritten
        // with the same content does not count as a local change.
        self.repo.out(&["update-index", "-q", "--refresh"]).await?;
        let o = self
            .repo
            .out(&["read-tree", "-m", "-u", &from, &to])
            .await?;
        if !o.ok {
            tracing::warn!(
                "main moved to {to} but the checkout could not follow ({}); run `git reset --keep {}`",
                o.stderr.trim(),
                self.main
            );
            return Ok(());
        }
        self.record(&Entry::CheckoutSynced { commit: to })
    }

    /// Undoes what a killed `read-tree -m -u from to` left half done, and returns the commit
    /// the main checkout's index now matches (`from` or `to`).
    ///
    /// `read-tree -u` writes the changed files first and renames `index.lock` over the index
    /// last, so a `kill -9` between the two leaves the index at `from` while some files are
    /// already `to`'s: git then sees them as local changes (or untracked files) and a second
    /// `read-tree` refuses to overwrite them. A changed path whose file is exactly `to`'s
    /// version (or absent where `to` deleted it) was written by the killed sync, not by a
    /// person, so it is put back to the index's version; any other content is left alone
    /// for the two-way merge to keep or refuse.
    ///
    /// # Errors
    /// [`Error::Git`] when git cannot read the two commits or restore a file;
    /// [`Error::Io`] when a file cannot be read or removed.
    async fn recover_sync(&self, from: &str, to: &str) -> Result<String, Error> {
        // The killed sync's index lock is ours.
        let lock = self.repo.git_path("index.lock").await?;
        if lock.exists() {
            let _ = std::fs::remove_file(&lock);
        }
        let index = self.repo.out(&["write-tree"]).await?;
        let to_tree = self
            .repo
            .run(&["rev-parse", &format!("{to}^{{tree}}")])
            .await?;
        if index.ok && index.stdout.trim() == to_tree {
            // Killed after the index was written: only the journal entry is missing.
            return Ok(to.to_owned());
        }
        let raw = self
            .repo
            .run(&["diff-tree", "-r", "-z", "--no-renames", from, to])
            .await?;
        let root = self.repo.dir().to_path_buf();
        let mut restore = Vec::new();
        let mut remove = Vec::new();
        let mut fields = raw.split('\0').filter(|f| !f.is_empty());
        // `:<old mode> <new mode> <old blob> <new blob> <status>` then the path.
        while let (Some(meta), Some(path)) = (fields.next(), fields.next()) {
            let meta: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
            let [_, new_mode, _, new_blob, status] = meta[..] else {
                continue;
            };
            let file = root.join(path);
            let written = match std::fs::symlink_metadata(&file) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => new_mode == "000000",
                Err(e) => return Err(Error::io("inspect", &file, e)),
                Ok(m) if m.is_file() && new_mode.starts_with("100") => {
                    self.repo.run(&["hash-object", "--", path]).await? == new_blob
                }
                // A symlink, a directory, or a file where `to` has none: not ours to judge.
                Ok(_) => false,
            };
            if !written {
                continue;
            }
            if status == "A" {
                remove.push(file);
            } else {
                restore.push(path);
            }
        }
        for file in remove {
            std::fs::remove_file(&file).map_err(|e| Error::io("remove", &file, e))?;
        }
        for chunk in restore.chunks(256) {
            let mut args = vec!["checkout-index", "-f", "-u", "--"];
            args.extend_from_slice(chunk);
            self.repo.run(&args).await?;
        }
        Ok(from.to_owned())
    }
}

enum Step {
    Next,
    Stop,
}

struct Coordinator {
    inner: Arc<Inner>,
    plan: Plan,
    merge_queue: VecDeque<String>,
    rework: VecDeque<Job>,
}

impl Coordinator {
    fn root_index(&self, id: &str) -> Option<usize> {
        let s = self.inner.state();
        self.plan.index(s.root_of(id))
    }

    /// Rebuilds the scheduler and the queues from the journaled state.
    async fn recover(&mut self, sched: &mut Scheduler) -> Result<(), Error> {
        let snapshot = self.inner.state().clone();
        // A verified merge whose main update may or may not have landed.
        for t in &snapshot.tasks {
            if t.status == TaskPhase::Merging
                && let Some(v) = &t.verified
            {
                let main_ref = format!("refs/heads/{}", self.inner.main);
                // `update-ref` of the branch HEAD points at also locks HEAD (for its
                // reflog), so a kill there can leave either lock behind; both are ours.
                for lock in [format!("{main_ref}.lock"), "HEAD.lock".to_owned()] {
                    let lockp = self.inner.repo.git_path(&lock).await?;
                    if lockp.exists() {
                        let _ = std::fs::remove_file(&lockp);
                    }
                }
                if self.inner.repo.is_ancestor(v, &self.inner.main).await? {
                    self.inner.record(&Entry::Merged {
                        task: t.task.id.clone(),
                        commit: v.clone(),
                    })?;
                    self.inner.remember_inputs(&t.task.id, v)?;
                }
            }
        }
        let snapshot = self.inner.state().clone();
        // Merged first (in any order: the scheduler counts), then failures, then work.
        for (i, t) in snapshot.tasks[..snapshot.planned].iter().enumerate() {
            if t.status == TaskPhase::Merged {
                sched.mark_done(i);
            }
        }
        for (i, t) in snapshot.tasks[..snapshot.planned].iter().enumerate() {
            if matches!(t.status, TaskPhase::Failed | TaskPhase::Blocked) {
                for b in sched.fail(i) {
                    let id = &self.plan.tasks[b].id;
                    if snapshot.task(id).map(|s| s.status) != Some(TaskPhase::Blocked) {
                        self.inner.record(&Entry::TaskBlocked {
                            task: id.clone(),
                            by: t.task.id.clone(),
                        })?;
                    }
                }
            }
        }
        let max = self.inner.config.run.attempts;
        for t in &snapshot.tasks {
            let active = match t.status {
                TaskPhase::Running | TaskPhase::Passed | TaskPhase::Merging => true,
                TaskPhase::Pending => t.parent.is_some(),
                _ => false,
            };
            if !active {
                continue;
            }
            let root = snapshot.root_of(&t.task.id).to_owned();
            if let Some(ri) = self.plan.index(&root) {
                sched.take(ri);
            }
            let Some(wt) = t.worktree.clone() else {
                // Routed conflict task journaled, worktree not started yet.
                let job = self
                    .inner
                    .start_task(&t.task, t.pending_feedback.clone())
                    .await?;
                self.rework.push_back(Job {
                    human_intervened: true,
                    ..job
                });
                continue;
            };
            let branch = t
                .branch
                .clone()
                .unwrap_or_else(|| self.inner.branch(&t.task.id));
            let base = t.base.clone().unwrap_or_else(|| snapshot.base.clone());
            self.inner.prepare_worktree(&wt, &branch, &base).await?;
            match t.status {
                TaskPhase::Passed | TaskPhase::Merging => {
                    self.merge_queue.push_back(t.task.id.clone());
                }
                _ => {
                    let g = Git::new(&wt);
                    if let Some((n, head)) = &t.open_attempt {
                        let now = g.rev("HEAD").await?;
                        if &now != head {
                            self.inner
                                .keep(&t.task.id, &format!("interrupted-{n}"), &now)
                                .await?;
                        }
                        g.run(&["reset", "-q", "--hard", head]).await?;
                        g.run(&["clean", "-q", "-fd"]).await?;
                    }
                    let next = t.attempts.len() as u32 + 1;
                    if next > max {
                        self.fail(sched, &t.task.id, "attempts used up".into())?;
                        continue;
                    }
                    self.rework.push_back(Job {
                        task: t.task.clone(),
                        worktree: wt,
                        base,
                        regression: t.regression.clone(),
                        first_attempt: next,
                        feedback: t.pending_feedback.clone(),
                        human_intervened: true,
                    });
                }
            }
        }
        Ok(())
    }

    fn fail(&self, sched: &mut Scheduler, task: &str, reason: String) -> Result<(), Error> {
        self.inner.record(&Entry::TaskFailed {
            task: task.to_owned(),
            reason,
        })?;
        if let Some(ri) = self.root_index(task) {
            let root = self.plan.tasks[ri].id.clone();
            for b in sched.fail(ri) {
                self.inner.record(&Entry::TaskBlocked {
                    task: self.plan.tasks[b].id.clone(),
                    by: root.clone(),
                })?;
            }
        }
        Ok(())
    }

    async fn run(&mut self, sched: &mut Scheduler, jobs: usize) -> Result<(), Error> {
        let mut set: JoinSet<(String, Result<WorkOutcome, Error>)> = JoinSet::new();
        for i in 0..self.plan.tasks.len() {
            if sched.slot(i) == Slot::Ready {
                self.inner.events.emit(&Event::TaskReady {
                    task: self.plan.tasks[i].id.clone(),
                });
            }
        }
        loop {
            // 1. Keep the agents busy: rework first, then the highest-priority ready task.
            while set.len() < jobs {
                let job = if let Some(job) = self.rework.pop_front() {
                    job
                } else if let Some(i) = sched.pop_ready() {
                    let task = self.plan.tasks[i].clone();
                    self.inner.start_task(&task, None).await?
                } else {
                    break;
                };
                let inner = self.inner.clone();
                let id = job.task.id.clone();
                set.spawn(async move { (id, inner.work(job).await) });
            }
            // 2. One merge at a time, in the order tasks passed (dependencies are merged
            //    before a dependent starts, so this is dependency order).
            if let Some(id) = self.merge_queue.pop_front() {
                match self.inner.merge(&id).await? {
                    MergeOutcome::Merged => {
                        if let Some(ri) = self.root_index(&id) {
                            for b in sched.complete(ri) {
                                self.inner.events.emit(&Event::TaskReady {
                                    task: self.plan.tasks[b].id.clone(),
                                });
                            }
                        }
                    }
                    MergeOutcome::Rework(job) => self.rework.push_back(*job),
                    MergeOutcome::Failed(reason) => self.fail(sched, &id, reason)?,
                }
                continue;
            }
            // 3. Wait for a worker.
            let Some(joined) = set.join_next().await else {
                break;
            };
            let (id, out) = joined.map_err(|e| Error::Stage {
                stage: "worker",
                message: e.to_string(),
            })?;
            match out? {
                WorkOutcome::Passed => {
                    self.inner
                        .events
                        .emit(&Event::TaskPassed { task: id.clone() });
                    self.merge_queue.push_back(id);
                }
                WorkOutcome::Failed(reason) => self.fail(sched, &id, reason)?,
            }
        }
        Ok(())
    }
}
