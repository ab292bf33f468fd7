//! `lightsout worker`: one worker of a fleet, claiming tasks from a shared claim store
//! (`lightsout_fleet::claims`) and running a command for each; `worker enqueue` and
//! `worker status` to feed and watch a run's tasks.
//!
//! First version (issue 21): the worker runs the command given after `--` for each task it
//! claims, not the factory's agent → holdout → merge pipeline. What it does do is the claim
//! protocol a factory worker will use: claim with a lease, heartbeat every third of the lease,
//! complete or fail under the claim's fencing token, and stop the command (and drop the
//! claim) when a heartbeat is refused or has not succeeded before the lease would lapse.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use lightsout_fleet::Error as FleetError;
use lightsout_fleet::claims::{Claim, ClaimStore, PgClaims, SqliteClaims};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;

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
struct StoreArg {
    /// The claim store: `postgres://user@host:port/database` for a fleet, or a `SQLite` file
    /// for one machine.
    #[arg(long, env = "LIGHTSOUT_STORE", default_value = ".lightsout/state.db")]
    store: String,
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
    /// The command run for each task, with `LIGHTSOUT_RUN`, `LIGHTSOUT_TASK` and
    /// `LIGHTSOUT_FENCING_TOKEN` set; exit 0 completes the task, anything else fails it.
    #[arg(last = true, required = true, value_name = "COMMAND")]
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
            let store = open(&a.store.store, 1)?;
            let n = store.enqueue(&a.run, &a.tasks)?;
            println!("{n} task(s) added to run {}", a.run);
            Ok(ExitCode::SUCCESS)
        }
        Some(WorkerCommand::Status(a)) => status(&a),
        None => work(&args.run),
    }
}

fn open(store: &str, jobs: usize) -> anyhow::Result<Arc<dyn ClaimStore>> {
    Ok(
        if store.starts_with("postgres://") || store.starts_with("postgresql://") {
            Arc::new(PgClaims::connect(store, jobs + 1)?)
        } else {
            Arc::new(SqliteClaims::open(&PathBuf::from(store))?)
        },
    )
}

fn status(a: &StatusArgs) -> anyhow::Result<ExitCode> {
    let store = open(&a.store.store, 1)?;
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
    let store = open(&args.store.store, jobs)?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let stop = Arc::new(AtomicBool::new(false));
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
}

impl Job {
    /// Claims and runs tasks until none is claimable or a stop was asked for.
    async fn run(&self, stop: &AtomicBool) -> anyhow::Result<Vec<Ended>> {
        let mut ended = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let (store, name, lease) = (self.store.clone(), self.name.clone(), self.lease);
            // The claim's lease is counted from before the call: the local deadline is never
            // later than the store's.
            let asked = Instant::now();
            let claim = tokio::task::spawn_blocking(move || store.claim(&name, lease)).await??;
            let Some(claim) = claim else { break };
            ended.push(self.task(claim, asked).await?);
        }
        Ok(ended)
    }

    /// Runs the command for `claim`, heartbeating, and settles the claim.
    async fn task(&self, mut claim: Claim, asked: Instant) -> anyhow::Result<Ended> {
        let mut child = tokio::process::Command::new(&self.command[0])
            .args(&self.command[1..])
            .env("LIGHTSOUT_RUN", &claim.run)
            .env("LIGHTSOUT_TASK", &claim.task)
            .env("LIGHTSOUT_FENCING_TOKEN", claim.token.to_string())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.command[0]))?;
        let mut deadline = asked + self.lease;
        let mut tick = tokio::time::interval(self.lease / 3);
        tick.tick().await;
        let mut beat: Option<(Instant, tokio::task::JoinHandle<Result<Claim, FleetError>>)> = None;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status.context("waiting for the task's command")?,
                _ = tick.tick(), if beat.is_none() => {
                    let (store, held, lease) = (self.store.clone(), claim.clone(), self.lease);
                    let sent = Instant::now();
                    beat = Some((sent, tokio::task::spawn_blocking(move || store.heartbeat(&held, lease))));
                }
                r = async { beat.as_mut().map(|b| &mut b.1).expect("guarded").await }, if beat.is_some() => {
                    let (sent, _) = beat.take().expect("guarded");
                    match r? {
                        Ok(renewed) => {
                            claim = renewed;
                            deadline = sent + self.lease;
                        }
                        Err(e @ FleetError::Stale { .. }) => {
                            eprintln!("worker {}: {e}; stopping task {}", self.name, claim.task);
                            return Ok(Ended::Lost);
                        }
                        Err(e) => eprintln!("worker {}: heartbeat failed: {e:#}", self.name),
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    eprintln!(
                        "worker {}: no heartbeat got through before the lease of task {} lapsed; \
                         stopping it",
                        self.name, claim.task
                    );
                    return Ok(Ended::Lost);
                }
            }
        };
        // `child` is dropped on the early returns above: kill_on_drop stops the command.
        let store = self.store.clone();
        let ok = status.success();
        let settled = tokio::task::spawn_blocking(move || {
            if ok {
                store.complete(&claim)
            } else {
                store.fail(&claim, &format!("command exited with {status}"))
            }
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
}
