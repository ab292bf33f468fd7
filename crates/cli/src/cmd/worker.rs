//! `lightsout worker`: one worker of a fleet, claiming tasks from a shared claim store
//! (`lightsout_fleet::claims`); `worker enqueue` and `worker status` to feed and watch a run's
//! tasks.
//!
//! With `--repo REMOTE` (issue 21) each job has its own clone of the remote under `--workdir`
//! and builds each task it claims with the factory's own pipeline (agent → visible checks →
//! holdout, then the merge step on the remote's main: merge lock, fetch, rebase, checks and
//! holdout on the merged result, compare-and-swap push; see `lightsout_factory::fleet`), on
//! the plan `lightsout run --store` pushed; the holdout comes from `--holdout`, outside every
//! clone. When it finds nothing to claim it enqueues the tasks whose dependencies are all
//! merged, waits while other workers hold tasks, and stops when every run is settled. Each
//! claim's run journal is mirrored into the store's shared journal
//! (`lightsout_factory::fleet::StoreJournal`), which `lightsout status --run` reads.
//! Without `--repo`, it runs the command given after `--` for each task.
//!
//! Either way the claim protocol is the same, and it is `lightsout_fleet::claims::Keeper`'s:
//! claim with a lease, heartbeat every third of the lease, complete or fail under the claim's
//! fencing token, and stop the work (and drop the claim) when a heartbeat is refused or has
//! not succeeded before the lease would lapse.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use lightsout_factory::fleet::{self, FleetPlan, RemoteMain, StoreJournal};
use lightsout_factory::{Config, Factory, RunOptions, TaskPhase};
use lightsout_fleet::Error as FleetError;
use lightsout_fleet::budget::{BudgetStore, PgBudget, SqliteBudget};
use lightsout_fleet::claims::{
    ClaimGuard, ClaimStore, Keeper, Lost, PgClaims, Settle, SqliteClaims, TaskStatus,
};
use lightsout_fleet::journal::{ClaimRun, JournalStore, PgJournal, SqliteJournal};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `lightsout worker [--store STORE] [--jobs N] -- COMMAND...`, or a subcommand.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct WorkerArgs {
    #[command(subcommand)]
    command: Option<WorkerCommand>,
    #[command(flatten)]
    run: RunArgs,
}

/// `lightsout worker enqueue|status`.
#[derive(Debug, Subcommand)]
enum WorkerCommand {
    /// Add ready tasks of a run to the store (tasks the run already has are skipped).
    Enqueue(EnqueueArgs),
    /// The tasks of a run: status, worker, fencing token, attempts, lease.
    Status(StatusArgs),
}

/// Where the shared state lives.
#[derive(Debug, Args)]
pub(crate) struct StoreArg {
    /// The claim store: `postgres://user@host:port/database` for a fleet, or a `SQLite` file
    /// for one machine. Default: `[store] url` of lightsout.toml (see --config), else
    /// `.lightsout/state.db`.
    #[arg(long, env = "LIGHTSOUT_STORE")]
    store: Option<String>,
    /// The lightsout.toml whose `[store] url` is the store when --store is not given
    /// (default: lightsout.toml in the current directory or the nearest one above it, up to
    /// the repository's root).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

/// The store used when neither `--store`, `LIGHTSOUT_STORE` nor `[store] url` names one.
pub(crate) const DEFAULT_STORE: &str = ".lightsout/state.db";

impl StoreArg {
    /// The store to open: `--store` (or `LIGHTSOUT_STORE`), else `[store] url` of the
    /// configuration, else [`DEFAULT_STORE`].
    pub(crate) fn location(&self) -> anyhow::Result<String> {
        let cwd = std::env::current_dir().context("reading the current directory")?;
        store_location(self.store.as_deref(), self.config.as_deref(), &cwd)
    }
}

/// The store a command uses, in this order: `flag` (`--store` or `LIGHTSOUT_STORE`), `[store]
/// url` of `config` (default: [`find_config`] from `cwd`), [`DEFAULT_STORE`].
///
/// # Errors
/// The configuration file cannot be read or is invalid (only read when `flag` is `None`).
pub(crate) fn store_location(
    flag: Option<&str>,
    config: Option<&Path>,
    cwd: &Path,
) -> anyhow::Result<String> {
    if let Some(s) = flag {
        return Ok(s.to_owned());
    }
    let path = match config {
        Some(p) => Some(cwd.join(p)),
        None => find_config(cwd),
    };
    if let Some(p) = path
        && let Some(url) = Config::load(&p)?.store_url()
    {
        return Ok(url);
    }
    Ok(DEFAULT_STORE.to_owned())
}

/// The nearest `lightsout.toml` in `from` or above it, stopping at the repository's root (the
/// first directory holding `.git`).
fn find_config(from: &Path) -> Option<PathBuf> {
    for dir in from.ancestors() {
        let file = dir.join("lightsout.toml");
        if file.is_file() {
            return Some(file);
        }
        if dir.join(".git").exists() {
            return None;
        }
    }
    None
}

/// Claim tasks until none is left.
#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    store: StoreArg,
    /// How many tasks to run at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// The lease of each claim, in milliseconds; heartbeats renew it every third of it.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(300..))]
    lease_ms: u64,
    /// This worker's name in the store (default: `<hostname>-<pid>`).
    #[arg(long)]
    name: Option<String>,
    /// Build each task with the factory, on a clone of this remote (a path, `file://` or
    /// `https://` URL), and merge it into the remote's main; the plans come from `lightsout
    /// run --store`.
    #[arg(long, value_name = "REMOTE", conflicts_with = "command")]
    repo: Option<String>,
    /// With --repo: where each job keeps its clone (`<DIR>/job-<n>`).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "lightsout-worker",
        requires = "repo"
    )]
    workdir: PathBuf,
    /// With --repo: the holdout directory, outside every clone (default: the project's
    /// `[holdout] path`, read from the clone's lightsout.toml).
    #[arg(long, value_name = "PATH", requires = "repo")]
    holdout: Option<PathBuf>,
    /// With --repo: how long to wait, in milliseconds, before looking for work again while
    /// other workers hold every open task, and between two tries for the merge lock.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..), requires = "repo")]
    poll_ms: u64,
    /// The command run for each task, with `LIGHTSOUT_RUN`, `LIGHTSOUT_TASK` and
    /// `LIGHTSOUT_FENCING_TOKEN` set; exit 0 completes the task, anything else fails it.
    #[arg(last = true, required_unless_present = "repo", value_name = "COMMAND")]
    command: Vec<String>,
}

/// `lightsout worker enqueue RUN TASK...`.
#[derive(Debug, Args)]
struct EnqueueArgs {
    #[command(flatten)]
    store: StoreArg,
    /// The run.
    run: String,
    /// Task ids, in the order they should be claimed.
    #[arg(required = true)]
    tasks: Vec<String>,
}

/// `lightsout worker status RUN`.
#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    store: StoreArg,
    /// The run.
    run: String,
}

/// Runs `lightsout worker`.
pub(crate) fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(WorkerCommand::Enqueue(a)) => {
            let store = open(&a.store.location()?, 1)?;
            let n = store.enqueue(&a.run, &a.tasks)?;
            println!("{n} task(s) added to run {}", a.run);
            Ok(ExitCode::SUCCESS)
        }
        Some(WorkerCommand::Status(a)) => status(&a),
        None => work(&args.run),
    }
}

/// The claim store at `store`: a Postgres server for `postgres://` URLs, else a `SQLite` file.
pub(crate) fn open(store: &str, jobs: usize) -> anyhow::Result<Arc<dyn ClaimStore>> {
    Ok(if lightsout_factory::config::is_postgres_url(store) {
        Arc::new(PgClaims::connect(store, jobs + 1)?)
    } else {
        Arc::new(SqliteClaims::open(&PathBuf::from(store))?)
    })
}

/// The fleet's shared journal in the store at `store` (the claim store's URL or file).
pub(crate) fn open_journal(store: &str, jobs: usize) -> anyhow::Result<Arc<dyn JournalStore>> {
    Ok(if lightsout_factory::config::is_postgres_url(store) {
        Arc::new(PgJournal::connect(store, jobs + 1)?)
    } else {
        Arc::new(SqliteJournal::open(&PathBuf::from(store))?)
    })
}

/// The fleet's day budget in the store at `store` (the claim store's URL or file).
fn open_budget(store: &str, jobs: usize) -> anyhow::Result<Arc<dyn BudgetStore>> {
    Ok(if lightsout_factory::config::is_postgres_url(store) {
        Arc::new(PgBudget::connect(store, jobs + 1)?)
    } else {
        Arc::new(SqliteBudget::open(&PathBuf::from(store))?)
    })
}

fn status(a: &StatusArgs) -> anyhow::Result<ExitCode> {
    let store = open(&a.store.location()?, 1)?;
    println!(
        "{:<16} {:<8} {:<20} {:>6} {:>8} lease_until_ms",
        "task", "status", "worker", "token", "attempts"
    );
    for t in store.tasks(&a.run)? {
        println!(
            "{:<16} {:<8} {:<20} {:>6} {:>8} {}",
            t.task,
            t.status.as_str(),
            t.worker.as_deref().unwrap_or("-"),
            t.token,
            t.attempts,
            t.lease_until_ms.map_or("-".into(), |m| m.to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// How one task ended for this worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Done,
    Failed,
    /// The claim was lost (refused heartbeat, or no heartbeat in time): the command was
    /// stopped and its work discarded; another worker will claim the task.
    Lost,
}

fn work(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let jobs = usize::from(args.jobs);
    let location = args.store.location()?;
    let store = open(&location, jobs)?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let stop = Arc::new(AtomicBool::new(false));
    let fleet = match &args.repo {
        Some(url) => Some(Arc::new(FleetArgs::new(args, url, &location)?)),
        None => None,
    };
    let ended = rt.block_on(async {
        let flag = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("worker: stopping after the running tasks");
                flag.store(true, Ordering::SeqCst);
            }
        });
        let loops: Vec<_> = (0..jobs)
            .map(|j| {
                let job = Job {
                    store: store.clone(),
                    name: format!("{name}/{j}"),
                    lease: Duration::from_millis(args.lease_ms),
                    command: args.command.clone(),
                    fleet: fleet.clone(),
                    clone: args.workdir.join(format!("job-{j}")),
                };
                let stop = stop.clone();
                tokio::spawn(async move { job.run(&stop).await })
            })
            .collect();
        let mut all = Vec::new();
        for l in loops {
            all.extend(l.await.context("a worker loop panicked")??);
        }
        anyhow::Ok(all)
    })?;
    let count = |e| ended.iter().filter(|&&x| x == e).count();
    let (done, failed, lost) = (count(Ended::Done), count(Ended::Failed), count(Ended::Lost));
    println!("worker {name}: {done} done, {failed} failed, {lost} lost");
    Ok(if failed + lost == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "worker".into(), |h| h.trim().to_owned())
}

struct Job {
    store: Arc<dyn ClaimStore>,
    name: String,
    lease: Duration,
    command: Vec<String>,
    /// With `--repo`: the factory mode's settings.
    fleet: Option<Arc<FleetArgs>>,
    /// With `--repo`: this job's clone.
    clone: PathBuf,
}

impl Job {
    /// Claims and runs tasks until none is claimable (in factory mode: until every run is
    /// settled) or a stop was asked for.
    async fn run(&self, stop: &AtomicBool) -> anyhow::Result<Vec<Ended>> {
        let mut ended = Vec::new();
        let mut sweep = Sweep::default();
        while !stop.load(Ordering::SeqCst) {
            let (store, name, lease) = (self.store.clone(), self.name.clone(), self.lease);
            // The keeper counts the claim's lease from before the call: the local deadline is
            // never later than the store's.
            let keeper =
                tokio::task::spawn_blocking(move || Keeper::claim_next(store, &name, lease))
                    .await??;
            let Some(keeper) = keeper else {
                let Some(fleet) = &self.fleet else { break };
                if self.sweep(&mut sweep).await? {
                    continue;
                }
                if sweep.waiting {
                    tokio::time::sleep(fleet.poll).await;
                    continue;
                }
                break;
            };
            let claim = keeper.claim();
            let end = match &self.fleet {
                Some(fleet) => self.build(fleet, keeper).await?,
                None => self.task(keeper).await?,
            };
            if end == Ended::Done && self.fleet.is_some() {
                // The dependents of a merged task become claimable at once.
                sweep.only = Some(claim.run);
                self.sweep(&mut sweep).await?;
                sweep.only = None;
            }
            ended.push(end);
        }
        Ok(ended)
    }

    /// Runs the command for `keeper`'s claim while the keeper holds it, and settles the claim.
    async fn task(&self, keeper: Keeper) -> anyhow::Result<Ended> {
        let claim = keeper.claim();
        let mut child = tokio::process::Command::new(&self.command[0])
            .args(&self.command[1..])
            .env("LIGHTSOUT_RUN", &claim.run)
            .env("LIGHTSOUT_TASK", &claim.task)
            .env("LIGHTSOUT_FENCING_TOKEN", claim.token.to_string())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.command[0]))?;
        // The wait is dropped when the claim is lost, then `child`: kill_on_drop stops the
        // command.
        let Some(status) = self.hold(&keeper, child.wait()).await else {
            return Ok(Ended::Lost);
        };
        let status = status.context("waiting for the task's command")?;
        let ok = status.success();
        let reason = format!("command exited with {status}");
        self.settle(keeper, ok.then_some(()).ok_or(reason)).await
    }

    /// Ends `keeper`'s claim under its token: done on `Ok`, failed with the reason on `Err`.
    async fn settle(&self, keeper: Keeper, result: Result<(), String>) -> anyhow::Result<Ended> {
        let ok = result.is_ok();
        let settled = tokio::task::spawn_blocking(move || match result {
            Ok(()) => keeper.finish(&Settle::Done),
            Err(reason) => keeper.finish(&Settle::Failed(reason)),
        })
        .await?;
        match settled {
            Ok(()) if ok => Ok(Ended::Done),
            Ok(()) => Ok(Ended::Failed),
            Err(e @ FleetError::Stale { .. }) => {
                eprintln!("worker {}: {e}; its result is discarded", self.name);
                Ok(Ended::Lost)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Drives `work` while `keeper` holds its claim ([`Keeper::hold`]): `work`'s output, or
    /// `None` (with `work` dropped) when a heartbeat was refused or none got through before
    /// the lease would lapse.
    async fn hold<T>(&self, keeper: &Keeper, work: impl Future<Output = T>) -> Option<T> {
        match keeper.hold(work).await {
            Ok(out) => Some(out),
            Err(lost) => {
                let claim = keeper.claim();
                match lost {
                    Lost::Refused => eprintln!(
                        "worker {}: {}; stopping task {}",
                        self.name,
                        keeper.stale(),
                        claim.task
                    ),
                    Lost::Deadline => eprintln!(
                        "worker {}: no heartbeat got through before the lease of task {} \
                         lapsed; stopping it",
                        self.name, claim.task
                    ),
                }
                None
            }
        }
    }
}

/// The factory mode's settings (`--repo`).
struct FleetArgs {
    /// The remote every job clones.
    url: String,
    /// The holdout directory, absolute (`--holdout`), if given.
    holdout: Option<PathBuf>,
    poll: Duration,
    /// The fleet's day budget, in the same store as the claims.
    day_budget: Arc<dyn BudgetStore>,
    /// The fleet's audit chains, when the store is Postgres: each claim's factory run appends
    /// its entries to its fleet run's chain there too.
    audit: Option<lightsout_fence::audit::postgres::PgAuditChain>,
    /// The fleet's shared journal, in the same store as the claims: each claim's factory run
    /// mirrors its journal entries there.
    journal: Arc<dyn JournalStore>,
}

impl FleetArgs {
    fn new(args: &RunArgs, url: &str, store: &str) -> anyhow::Result<Self> {
        let cwd = std::env::current_dir().context("reading the current directory")?;
        // A relative path names a repository from here, not from a job's directory.
        let url = if url.contains("://") {
            url.to_owned()
        } else {
            cwd.join(url).to_string_lossy().into_owned()
        };
        fleet::check_remote(&url)?;
        let holdout = match &args.holdout {
            Some(h) => {
                let h = cwd.join(h);
                anyhow::ensure!(h.is_dir(), "the holdout {} is not a directory", h.display());
                Some(h)
            }
            None => None,
        };
        std::fs::create_dir_all(&args.workdir)
            .with_context(|| format!("creating {}", args.workdir.display()))?;
        Ok(Self {
            url,
            holdout,
            poll: Duration::from_millis(args.poll_ms),
            day_budget: open_budget(store, usize::from(args.jobs))?,
            journal: open_journal(store, usize::from(args.jobs))?,
            audit: if lightsout_factory::config::is_postgres_url(store) {
                Some(lightsout_fence::audit::postgres::PgAuditChain::connect(
                    store,
                    usize::from(args.jobs) + 1,
                )?)
            } else {
                None
            },
        })
    }
}

/// How one claimed task went in factory mode.
enum Built {
    /// Merged into the remote's main by this worker.
    Merged,
    /// On the remote's main already (merged by a worker that died before completing its
    /// claim): completed without building it again.
    OnMain,
    /// The factory failed it (attempts used up, blocked, a leak): the reason.
    Failed(String),
}

/// What a job knows of the fleet's runs between two looks for work.
#[derive(Default)]
struct Sweep {
    plans: BTreeMap<String, FleetPlan>,
    /// Runs with every task settled (done or failed) or blocked by a failed one.
    settled: BTreeSet<String>,
    /// Whether some run has tasks open (ready, or held by a worker).
    waiting: bool,
    /// Look at this run only.
    only: Option<String>,
}

impl Job {
    /// Builds `claim`'s task with the factory on this job's clone while holding the claim,
    /// and settles the claim.
    async fn build(&self, fleet: &Arc<FleetArgs>, keeper: Keeper) -> anyhow::Result<Ended> {
        let claim = keeper.claim();
        eprintln!(
            "worker {}: task {} of run {} (fencing token {}, claim {})",
            self.name, claim.task, claim.run, claim.token, claim.attempt
        );
        // A task of its own, so that nothing the factory does between two awaits can hold up
        // the heartbeats.
        let work = tokio::spawn(build_task(
            fleet.clone(),
            keeper.guard(),
            self.clone.clone(),
        ));
        let abort = work.abort_handle();
        // On a lost claim the factory's run is aborted: its agents and checks are stopped,
        // and its half-done attempt stays in this clone's run directory, never merged (the
        // merge step writes through the keeper's guard, which refuses once it is lost).
        let Some(built) = self.hold(&keeper, work).await else {
            abort.abort();
            return Ok(Ended::Lost);
        };
        let built = built.context("the factory's run panicked")?;
        let result = match built {
            Ok(Built::Merged) => Ok(()),
            Ok(Built::OnMain) => {
                eprintln!(
                    "worker {}: task {} is on main already; completing its claim",
                    self.name, claim.task
                );
                Ok(())
            }
            Ok(Built::Failed(reason)) => Err(reason),
            Err(e) => Err(format!("the worker could not build it: {e:#}")),
        };
        if let Err(reason) = &result {
            eprintln!("worker {}: task {} failed: {reason}", self.name, claim.task);
        }
        self.settle(keeper, result).await
    }
}

/// The factory's run of one claimed task on the clone at `dir`: the clone brought to the
/// remote's main, the run's plan cut down to the task and what is merged, and the factory run
/// with the remote as its merge target.
async fn build_task(
    fleet: Arc<FleetArgs>,
    guard: ClaimGuard,
    dir: PathBuf,
) -> anyhow::Result<Built> {
    let claim = guard.claim();
    let url = fleet.url.clone();
    let clone = tokio::task::spawn_blocking(move || fleet::ensure_clone(&url, &dir)).await??;
    let config_path = clone.join("lightsout.toml");
    let main = Config::load(&config_path)?.run.main;
    let head = fleet::sync_to_remote(&clone, &main).await?;
    let merged = fleet::merged_on(&clone, &head, &claim.run).await?;
    if merged.contains_key(&claim.task) {
        return Ok(Built::OnMain);
    }
    // Read again: main may have changed lightsout.toml.
    let mut config = Config::load(&config_path)?;
    if let Some(h) = &fleet.holdout {
        config.holdout.path = Some(h.clone());
    }
    let (c, run) = (clone.clone(), claim.run.clone());
    let shared = tokio::task::spawn_blocking(move || fleet::fetch_plan(&c, &run)).await??;
    let plan = fleet::task_plan(&shared.plan, &claim.task, &merged)?;
    let target = RemoteMain::new(guard, fleet.poll);
    // `[budget.day]` is the fleet's: reserved and settled in the shared store, tied to this
    // claim (a reservation left unsettled when the claim is lost counts as spent).
    let mut factory = Factory::new(&clone, config)?
        .with_merge_target(Arc::new(target))
        .with_day_budget(
            fleet.day_budget.clone(),
            Some(lightsout_fleet::budget::ClaimKey::from(&claim)),
        );
    if let Some(chain) = &fleet.audit {
        factory = factory.with_audit_mirror(Arc::new(chain.run(&claim.run)));
    }
    // Unique per claim: a re-claimed task starts over in a run of its own.
    let run_id = fleet::claim_run_id(&claim);
    // Every journal entry goes to the store too, after the clone's journal.jsonl.
    let journal = Arc::new(StoreJournal::new(
        fleet.journal.clone(),
        ClaimRun::of(&claim, &run_id),
    ));
    let factory = factory.with_journal_mirror(journal.clone());
    let opts = RunOptions {
        run_id: Some(run_id.clone()),
        jobs: Some(1),
        gate: shared.layers(),
        not_ready: shared.not_ready.clone(),
        rebuild: true,
        merged,
        ..RunOptions::default()
    };
    let ran = factory.run(plan, opts).await;
    flush_journal(&journal, &clone, &run_id).await;
    let state = match ran {
        Ok(state) => state,
        Err(e) => {
            // Another worker may have merged it meanwhile (the merge step refuses a task
            // that is on main already).
            let head = fleet::sync_to_remote(&clone, &main).await?;
            if fleet::merged_on(&clone, &head, &claim.run)
                .await?
                .contains_key(&claim.task)
            {
                return Ok(Built::OnMain);
            }
            return Err(e.into());
        }
    };
    Ok(match state.task(&claim.task) {
        Some(t) if t.status == TaskPhase::Merged => Built::Merged,
        Some(t) => Built::Failed(
            t.failure
                .clone()
                .unwrap_or_else(|| format!("the run ended with the task {:?}", t.status)),
        ),
        None => Built::Failed("the run lost the task".into()),
    })
}

/// Appends to the store what the claim run's journal mirror could not append while it ran;
/// says so on stderr when some entries are still only in the clone's journal.
async fn flush_journal(journal: &Arc<StoreJournal>, clone: &Path, run_id: &str) {
    let mirror = journal.clone();
    let flushed = tokio::task::spawn_blocking(move || mirror.flush()).await;
    if let Ok(Err(e)) = flushed {
        let claim = journal.claim();
        eprintln!(
            "worker {}: {} journal entries of task {} are not in the store ({e}); they are in {}",
            claim.worker,
            journal.backlog(),
            claim.task,
            clone
                .join(".lightsout/runs")
                .join(run_id)
                .join("journal.jsonl")
                .display()
        );
    }
}

impl Job {
    /// Enqueues every task of the fleet's runs (or of `sweep.only`) whose dependencies are
    /// all done, and notes whether some run still has open tasks. Returns whether it
    /// enqueued anything.
    async fn sweep(&self, sweep: &mut Sweep) -> anyhow::Result<bool> {
        let Some(fleet) = self.fleet.clone() else {
            return Ok(false);
        };
        let store = self.store.clone();
        let (url, dir) = (fleet.url.clone(), self.clone.clone());
        let mut state = std::mem::take(sweep);
        let (state, added) = tokio::task::spawn_blocking(move || {
            let clone = fleet::ensure_clone(&url, &dir)?;
            let added = sweep_runs(store.as_ref(), &clone, &mut state)?;
            anyhow::Ok((state, added))
        })
        .await??;
        *sweep = state;
        Ok(added > 0)
    }
}

/// [`Job::sweep`]'s blocking part.
fn sweep_runs(store: &dyn ClaimStore, clone: &Path, sweep: &mut Sweep) -> anyhow::Result<usize> {
    let runs = match &sweep.only {
        Some(run) => vec![run.clone()],
        None => fleet::fleet_runs(clone)?,
    };
    if sweep.only.is_none() {
        sweep.waiting = false;
    }
    let mut added = 0;
    for run in runs {
        if sweep.settled.contains(&run) {
            continue;
        }
        let known: BTreeMap<String, TaskStatus> = store
            .tasks(&run)?
            .into_iter()
            .map(|t| (t.task, t.status))
            .collect();
        if known.is_empty() {
            // Not a run of this store (or not enqueued yet).
            continue;
        }
        if !sweep.plans.contains_key(&run) {
            let plan = fleet::fetch_plan(clone, &run)?;
            sweep.plans.insert(run.clone(), plan);
        }
        let ready = fleet::ready_tasks(&sweep.plans[&run].plan, &known);
        let n = if ready.is_empty() {
            0
        } else {
            store.enqueue(&run, &ready)?
        };
        added += n;
        let open = known
            .values()
            .any(|s| matches!(s, TaskStatus::Ready | TaskStatus::Claimed));
        // `ready` counts even when another worker enqueued it first (n = 0): `known` is a
        // snapshot, and only a run with nothing open and nothing ready in it is settled for
        // good (done and failed are final).
        if open || !ready.is_empty() {
            sweep.waiting = true;
        } else {
            sweep.settled.insert(run);
        }
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store of `worker`, `status` (and `run`): `--store` (or `LIGHTSOUT_STORE`), else
    /// `[store] url` of the nearest lightsout.toml up to the repository's root, else the
    /// default file.
    #[test]
    fn fleet_store_precedence_flag_then_config_then_default() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path().join("repo");
        let sub = repo.join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::create_dir(repo.join(".git")).unwrap();
        let at = |flag: Option<&str>, config: Option<&Path>, cwd: &Path| {
            store_location(flag, config, cwd).unwrap()
        };
        assert_eq!(at(None, None, &sub), DEFAULT_STORE);
        std::fs::write(
            repo.join("lightsout.toml"),
            "[store]\nurl = \"postgres://w@db:5432/fleet\"\n",
        )
        .unwrap();
        assert_eq!(at(None, None, &sub), "postgres://w@db:5432/fleet");
        assert_eq!(at(Some("x.db"), None, &sub), "x.db");
        // An explicit --config, relative to the current directory; a SQLite file in it is
        // relative to that file's directory.
        std::fs::write(sub.join("other.toml"), "[store]\nurl = \"s.db\"\n").unwrap();
        assert_eq!(
            at(None, Some(Path::new("other.toml")), &sub),
            sub.join("s.db").to_string_lossy()
        );
        // A config without [store] url leaves the default.
        std::fs::write(sub.join("lightsout.toml"), "[run]\njobs = 1\n").unwrap();
        assert_eq!(at(None, None, &sub), DEFAULT_STORE);
        // The search stops at the repository's root.
        let outside = d.path().join("elsewhere/repo2");
        std::fs::create_dir_all(outside.join(".git")).unwrap();
        std::fs::write(
            d.path().join("lightsout.toml"),
            "[store]\nurl = \"up.db\"\n",
        )
        .unwrap();
        assert_eq!(at(None, None, &outside), DEFAULT_STORE);
        // A typo is an error, not a silent default.
        std::fs::write(sub.join("lightsout.toml"), "[store]\nurll = \"s.db\"\n").unwrap();
        let e = store_location(None, None, &sub).unwrap_err().to_string();
        assert!(e.contains("did you mean `url`?"), "{e}");
    }
}
