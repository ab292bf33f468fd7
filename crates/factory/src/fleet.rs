//! The factory in a fleet of workers (issue 21): where a merge publishes main, and a run's
//! plan shared through the project's remote.
//!
//! # Where a merge publishes main: [`MergeTarget`]
//! The merge queue asks its target for the commit to merge onto ([`MergeTarget::onto`]),
//! rebases and verifies the task on it exactly as always (visible checks, then the holdout on
//! the merged result), makes the squash commit on it, and hands that to
//! [`MergeTarget::publish`]. Two targets:
//! - [`LocalMain`] (the default, `lightsout run`): main of the repository itself, moved with a
//!   compare-and-swap `git update-ref`.
//! - [`RemoteMain`] (`lightsout worker --repo`): main of the fleet's remote, for one claim kept
//!   by the worker's [`Keeper`](lightsout_fleet::claims::Keeper), written through its
//!   [`ClaimGuard`]. `onto` pushes the task's branch (`lightsout/<run>/<task>`), takes the
//!   fleet's merge lock only while the claim holds ([`ClaimGuard::try_merge_lock`]: fenced by
//!   its token), fetches main and refuses a task that is on main already; `publish` renews the
//!   claim through the keeper ([`ClaimGuard::renew`]: refused once the keeper lost it or the
//!   store refuses the token) and pushes with `--force-with-lease=main:<onto>`, so the remote's
//!   main moves only from the commit the merged result was verified on. A refused push (main
//!   moved under the lock: a holder whose session died) makes the merge queue redo the merge
//!   step on the new main: fetch, rebase, verify again. Once main moved, the task's branch is
//!   deleted from the remote, again by compare-and-swap: only while it still points at the
//!   head this worker pushed and merged ([`delete_task_branch`]); a branch someone moved
//!   since is left alone.
//!
//! # The run's plan: [`FleetPlan`]
//! `lightsout run --store` plans the specs and pushes the plan, its spec gate rules and its
//! not-ready findings as `plan.json` in a commit of its own under
//! [`plan_ref`] (`refs/lightsout/fleet/<run>/plan`) of the remote, then enqueues the tasks
//! without dependencies. A worker reads the plan from there; once it has merged a task it
//! enqueues the tasks whose dependencies are now all done ([`ready_tasks`]), so a task is
//! claimable only when its dependencies are merged on the remote's main. Each task's squash
//! commit on main carries the trailers `Lightsout-Fleet-Run` and `Lightsout-Fleet-Task`
//! ([`merged_on`] reads them), which is how a worker knows what is merged, and why a task
//! is never merged twice: a re-claimed task already on main is completed without building it.
//!
//! # The claim's journal in the store: [`StoreJournal`]
//! A worker builds each claim in a factory run of its own ([`claim_run_id`]), whose journal
//! is on the worker's disk. [`StoreJournal`] is the journal's [`Mirror`]: each entry, once
//! it is in the file, is appended to the fleet's shared journal
//! ([`lightsout_fleet::journal::JournalStore`]) under the claim run and the entry's line, so
//! `lightsout status --run RUN` shows every worker's entries in one place. The file stays
//! the record (`--resume` reads it); the store's copy is a view, so a failed append does not
//! fail the run (unlike the audit chain's mirror, which fails closed: a gap there would hide
//! what an agent did). The entry waits in the mirror's backlog and is appended again, in
//! `seq` order, with the next entry and when the worker [`StoreJournal::flush`]es at the end;
//! appends are idempotent, so one that reached the store before its reply was lost is not
//! stored twice. A store unreachable for longer than a lease also stops the claim's
//! heartbeats, so the worker drops the work soon after; what is left in the backlog then is
//! only in the worker's file.

use crate::Error;
use crate::git::Git;
use crate::journal::Mirror;
use crate::plan::{Plan, PlanCheck as _};
use async_trait::async_trait;
use lightsout_fleet::claims::{Claim, ClaimGuard, MergeLock, TaskStatus};
use lightsout_fleet::journal::{ClaimRun, JournalStore};
use lightsout_git::remote::{self, ORIGIN, Pushed};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where a merge publishes main. See the [module docs](self).
#[async_trait]
pub trait MergeTarget: Send + Sync {
    /// The commit the merge of `task` (whose passing work is `head` in repository `repo`)
    /// goes onto: main as the target has it now. Called at the start of every merge step;
    /// whatever it takes (a lock) is held until [`MergeTarget::end`].
    ///
    /// # Errors
    /// [`Error`] when main cannot be read or fetched, or the task must not be merged here.
    async fn onto(&self, repo: &Path, main: &str, task: &str, head: &str) -> Result<String, Error>;

    /// Moves main from `onto` to `commit` (the squash commit of `task`, whose only parent is
    /// `onto` and whose tree passed the gate). `Ok(false)` when main was no longer at `onto`:
    /// nothing moved, and the merge step is redone on the new main.
    ///
    /// # Errors
    /// [`Error`] when main cannot be moved for another reason.
    async fn publish(
        &self,
        repo: &Path,
        main: &str,
        task: &str,
        onto: &str,
        commit: &str,
    ) -> Result<bool, Error>;

    /// The merge step ended, however: release what [`MergeTarget::onto`] took.
    fn end(&self) {}

    /// Extra `(key, value)` trailers for the squash commit.
    fn trailers(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Main of the repository itself, moved by a compare-and-swap `git update-ref`: what
/// `lightsout run` has always done.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalMain;

#[async_trait]
impl MergeTarget for LocalMain {
    async fn onto(&self, repo: &Path, main: &str, _task: &str, _: &str) -> Result<String, Error> {
        Ok(Git::new(repo).rev(main).await?)
    }

    async fn publish(
        &self,
        repo: &Path,
        main: &str,
        task: &str,
        onto: &str,
        commit: &str,
    ) -> Result<bool, Error> {
        let main_ref = format!("refs/heads/{main}");
        Git::new(repo)
            .run(&[
                "update-ref",
                "-m",
                &format!("lightsout: merge {task}"),
                &main_ref,
                commit,
                onto,
            ])
            .await?;
        Ok(true)
    }
}

/// Main of the fleet's remote (the clone's [`ORIGIN`]), for one claimed task. See the
/// [module docs](self).
pub struct RemoteMain {
    /// The worker's claim on the task, as its keeper holds it.
    guard: ClaimGuard,
    /// How long to wait between two tries for the merge lock.
    poll: Duration,
    held: Mutex<Option<MergeLock>>,
    /// The head pushed as the task's branch by the current merge step.
    pushed: Mutex<Option<String>>,
}

impl std::fmt::Debug for RemoteMain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteMain")
            .field("claim", &self.guard.claim())
            .finish_non_exhaustive()
    }
}

impl RemoteMain {
    /// The target of the claim `guard` stands for (see
    /// [`Keeper::guard`](lightsout_fleet::claims::Keeper::guard)), waiting `poll` between two
    /// tries for the merge lock.
    pub fn new(guard: ClaimGuard, poll: Duration) -> Self {
        Self {
            guard,
            poll,
            held: Mutex::new(None),
            pushed: Mutex::new(None),
        }
    }

    async fn blocking<T: Send + 'static>(
        what: &'static str,
        f: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| stage(format!("{what}: {e}")))?
    }
}

fn stage(message: String) -> Error {
    Error::Stage {
        stage: "fleet",
        message,
    }
}

fn io(what: &'static str, repo: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let repo = repo.to_path_buf();
    move |e| Error::io(what, &repo, e)
}

#[async_trait]
impl MergeTarget for RemoteMain {
    async fn onto(
        &self,
        repo: &Path,
        main: &str,
        _task: &str,
        head: &str,
    ) -> Result<String, Error> {
        let claim = self.guard.claim();
        let (run, task) = (claim.run.clone(), claim.task.clone());
        // The task's branch, for people and for the record while the task is merged: the
        // merge itself pushes main, and deletes the branch once main moved.
        let (r, h, branch) = (
            repo.to_path_buf(),
            head.to_owned(),
            format!("refs/heads/{}", task_branch(&run, &task)),
        );
        Self::blocking("push the task branch", move || {
            remote::push_ref(&r, ORIGIN, &h, &branch, true).map_err(io("push the task branch", &r))
        })
        .await?;
        *lightsout_stdx::lock(&self.pushed) = Some(head.to_owned());
        loop {
            let guard = self.guard.clone();
            let lock = Self::blocking("merge lock", move || {
                guard.try_merge_lock().map_err(|e| match e {
                    lightsout_fleet::Error::Stale { .. } => {
                        stage(format!("the claim is no longer held, not merged: {e}"))
                    }
                    e => stage(format!("the merge lock: {e}")),
                })
            })
            .await?;
            if let Some(lock) = lock {
                *lightsout_stdx::lock(&self.held) = Some(lock);
                break;
            }
            tokio::time::sleep(self.poll).await;
        }
        let (r, m) = (repo.to_path_buf(), main.to_owned());
        let onto = Self::blocking("fetch main", move || {
            remote::fetch_main(&r, &m).map_err(io("fetch main from the remote", &r))
        })
        .await?;
        let merged = merged_on(repo, &onto, &run).await?;
        if let Some(commit) = merged.get(&task) {
            return Err(stage(format!(
                "task {task} of run {run} is on the remote's main already (commit {commit}); \
                 it is not merged twice"
            )));
        }
        Ok(onto)
    }

    async fn publish(
        &self,
        repo: &Path,
        main: &str,
        task: &str,
        onto: &str,
        commit: &str,
    ) -> Result<bool, Error> {
        // Fencing: only the holder of the newest token, within its lease (by the store's clock
        // and by the keeper's), moves main; the renewal gives it a whole lease to do so.
        let guard = self.guard.clone();
        Self::blocking("heartbeat", move || {
            guard
                .renew()
                .map(drop)
                .map_err(|e| stage(format!("the claim is no longer held, main not moved: {e}")))
        })
        .await?;
        let (r, m, o, c) = (
            repo.to_path_buf(),
            main.to_owned(),
            onto.to_owned(),
            commit.to_owned(),
        );
        let pushed = Self::blocking("push main", move || {
            remote::push_with_lease(&r, ORIGIN, &c, &m, &o).map_err(io("push main", &r))
        })
        .await?;
        match pushed {
            Pushed::Accepted => {
                // The clone's main follows the remote's, so the run's own record of main
                // (its `main_head`) and the branch agree.
                Git::new(repo)
                    .run(&[
                        "update-ref",
                        "-m",
                        &format!("lightsout: merge {task} (pushed)"),
                        &format!("refs/heads/{main}"),
                        commit,
                    ])
                    .await?;
                self.clean_up(repo).await;
                Ok(true)
            }
            Pushed::Refused(why) => {
                tracing::warn!(task, why, "the remote's main moved; redoing the merge");
                Ok(false)
            }
        }
    }

    fn end(&self) {
        lightsout_stdx::lock(&self.held).take();
    }

    fn trailers(&self) -> Vec<(String, String)> {
        let claim = self.guard.claim();
        vec![
            (RUN_TRAILER.to_owned(), claim.run),
            (TASK_TRAILER.to_owned(), claim.task),
        ]
    }
}

impl RemoteMain {
    /// Deletes the task's branch from the remote once its merge is on main: only while it
    /// points at the head this merge step pushed. Main has moved already, so a failure is
    /// a warning, never the merge's failure: the branch then stays on the remote (`git push
    /// --delete` removes it by hand).
    async fn clean_up(&self, repo: &Path) {
        let Some(head) = lightsout_stdx::lock(&self.pushed).take() else {
            return;
        };
        let claim = self.guard.claim();
        let branch = task_branch(&claim.run, &claim.task);
        let (r, b, h) = (repo.to_path_buf(), branch.clone(), head.clone());
        let deleted = Self::blocking("delete the task branch", move || {
            delete_task_branch(&r, &b, &h)
        })
        .await;
        match deleted {
            Ok(Pushed::Accepted) => {}
            Ok(Pushed::Refused(why)) => tracing::warn!(
                branch,
                head,
                why,
                "the task's branch moved since it was pushed; left on the remote"
            ),
            Err(e) => tracing::warn!(branch, error = %e, "the task's branch could not be deleted"),
        }
    }
}

/// The branch of the remote a worker pushes fleet run `run`'s task `task` to while it merges
/// it: `lightsout/<run>/<task>` (under `refs/heads/`).
pub fn task_branch(run: &str, task: &str) -> String {
    format!("lightsout/{run}/{task}")
}

/// Deletes branch `branch` (without `refs/heads/`) of the remote of the clone at `repo`
/// ([`ORIGIN`]) only while it points at `expected` (a full commit id): `git push
/// --force-with-lease=refs/heads/<branch>:<expected> origin :refs/heads/<branch>`, git-push(1)'s
/// empty source. [`Pushed::Refused`] when it points elsewhere or is gone.
///
/// # Errors
/// [`Error::Io`] when git fails for another reason than the lease.
pub fn delete_task_branch(repo: &Path, branch: &str, expected: &str) -> Result<Pushed, Error> {
    // An empty source deletes the destination (git-push(1), `<refspec>`).
    remote::push_with_lease(repo, ORIGIN, "", branch, expected)
        .map_err(io("delete the task branch", repo))
}

/// The trailer naming the fleet run of a squash commit.
pub const RUN_TRAILER: &str = "Lightsout-Fleet-Run";
/// The trailer naming the fleet task of a squash commit.
pub const TASK_TRAILER: &str = "Lightsout-Fleet-Task";

/// The tasks of fleet run `run` merged on `rev` (its first-parent history), each with the
/// commit that merged it, read from the squash commits' trailers.
///
/// # Errors
/// [`Error::Git`] when git cannot read the history.
pub async fn merged_on(
    repo: &Path,
    rev: &str,
    run: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let format = format!(
        "--format=%H%x00%(trailers:key={RUN_TRAILER},valueonly,separator=%x2C)%x00\
         %(trailers:key={TASK_TRAILER},valueonly,separator=%x2C)%x1e"
    );
    let out = Git::new(repo)
        .run(&["log", "--first-parent", &format, rev, "--"])
        .await?;
    let mut merged = BTreeMap::new();
    for rec in out.split('\x1e') {
        let mut f = rec.trim().split('\0');
        let (Some(commit), Some(r), Some(t)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if r.trim() == run && !t.trim().is_empty() {
            // The oldest merge wins (log lists the newest first).
            merged.insert(t.trim().to_owned(), commit.trim().to_owned());
        }
    }
    Ok(merged)
}

/// One gate layer of a spec (`lightsout_eval::PolicyLayer`, which is not serialisable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateLayer {
    /// Where the rules come from (`spec specs/x.md`).
    pub source: String,
    /// The rules.
    pub policy: lightsout_eval::GatePolicy,
}

/// A fleet run's plan as `lightsout run --store` pushed it ([module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetPlan {
    /// `lightsout-fleet-plan/1`.
    pub schema: String,
    /// The fleet run's id.
    pub run: String,
    /// The tasks and their dependencies.
    pub plan: Plan,
    /// The specs' gate rules (the first layers of the resolved policy).
    pub gate: Vec<GateLayer>,
    /// Not-ready findings of specs built anyway.
    pub not_ready: Vec<String>,
}

/// The schema of [`FleetPlan`].
pub const PLAN_SCHEMA: &str = "lightsout-fleet-plan/1";

impl FleetPlan {
    /// The gate layers as the factory takes them.
    pub fn layers(&self) -> Vec<lightsout_eval::PolicyLayer> {
        self.gate
            .iter()
            .map(|l| lightsout_eval::PolicyLayer::new(l.source.clone(), l.policy.clone()))
            .collect()
    }
}

/// The remote ref holding fleet run `run`'s plan.
pub fn plan_ref(run: &str) -> String {
    format!("refs/lightsout/fleet/{run}/plan")
}

/// A new fleet run id (UTC date and time, and the process id), as `lightsout run` names runs.
pub fn new_run_id() -> String {
    crate::factory::new_run_id()
}

/// Writes `plan` as `plan.json` in a commit of its own in `repo` and pushes it to
/// [`plan_ref`] of `remote` (a remote name of `repo` or a URL); returns the commit. A run id
/// the remote has already is refused (the push creates the ref, it never replaces one).
///
/// # Errors
/// [`Error::Io`] when the file cannot be written or git fails; [`Error::Config`] when the
/// remote has a plan of that run already.
pub fn publish_plan(repo: &Path, remote: &str, plan: &FleetPlan) -> Result<String, Error> {
    let dir = tempfile::tempdir().map_err(io("make a temporary directory", repo))?;
    let file = dir.path().join("plan.json");
    let bytes = serde_json::to_vec_pretty(plan).map_err(|e| stage(e.to_string()))?;
    std::fs::write(&file, bytes).map_err(io("write", &file))?;
    let git = |args: &[&str], index: Option<&Path>| -> Result<String, Error> {
        let mut c = lightsout_git::command(repo, args);
        if let Some(i) = index {
            c.env("GIT_INDEX_FILE", i);
        }
        let o = c.output().map_err(io("run git", repo))?;
        if !o.status.success() {
            return Err(Error::Git {
                args: args.join(" "),
                dir: repo.to_path_buf(),
                stderr: String::from_utf8_lossy(&o.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let blob = git(&["hash-object", "-w", &file.to_string_lossy()], None)?;
    let index = dir.path().join("index");
    let info = format!("100644,{blob},plan.json");
    git(
        &["update-index", "--add", "--cacheinfo", &info],
        Some(&index),
    )?;
    let tree = git(&["write-tree"], Some(&index))?;
    // The nonce makes each publish a distinct commit: two publishes of one plan within the
    // same second would otherwise make the same commit, and git reports that push as "up to
    // date" rather than refusing it.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let message = format!(
        "lightsout: plan of fleet run {}\n\nPublished-By: pid {} at {nonce} ns",
        plan.run,
        std::process::id()
    );
    let commit = git(&["commit-tree", &tree, "-m", &message], None)?;
    match remote::push_ref(repo, remote, &commit, &plan_ref(&plan.run), false)
        .map_err(io("push the plan", repo))?
    {
        Pushed::Accepted => Ok(commit),
        Pushed::Refused(why) => Err(Error::Config(format!(
            "the remote has a plan for run `{}` already ({why}); pick another --run-id",
            plan.run
        ))),
    }
}

/// Fetches and reads fleet run `run`'s plan into the clone at `repo`.
///
/// # Errors
/// [`Error::Io`] when the remote has no such plan or git fails; [`Error::Plan`] when the file
/// is not a plan this version reads.
pub fn fetch_plan(repo: &Path, run: &str) -> Result<FleetPlan, Error> {
    let r = plan_ref(run);
    remote::fetch(repo, ORIGIN, &[&format!("+{r}:{r}")]).map_err(io("fetch the plan", repo))?;
    let o = lightsout_git::command(repo, &["cat-file", "blob", &format!("{r}:plan.json")])
        .output()
        .map_err(io("read the plan", repo))?;
    if !o.status.success() {
        return Err(Error::Plan(format!("{r} holds no plan.json")));
    }
    let plan: FleetPlan = serde_json::from_slice(&o.stdout)
        .map_err(|e| Error::Plan(format!("{r}: plan.json: {e}")))?;
    if plan.schema != PLAN_SCHEMA || plan.run != run {
        return Err(Error::Plan(format!(
            "{r}: plan.json is `{}` of run `{}`, not {PLAN_SCHEMA} of `{run}`",
            plan.schema, plan.run
        )));
    }
    plan.plan.validate()?;
    Ok(plan)
}

/// The fleet runs whose plans the remote holds.
///
/// # Errors
/// [`Error::Io`] when git cannot list the remote's refs.
pub fn fleet_runs(repo: &Path) -> Result<Vec<String>, Error> {
    let refs = remote::ls_remote(repo, ORIGIN, "refs/lightsout/fleet/*/plan")
        .map_err(io("list the remote's plans", repo))?;
    Ok(refs
        .into_iter()
        .filter_map(|(_, r)| {
            r.strip_prefix("refs/lightsout/fleet/")
                .and_then(|t| t.strip_suffix("/plan"))
                .map(str::to_owned)
        })
        .collect())
}

/// The tasks of `plan` to enqueue now: not in the store yet (`known`: every task the store
/// has, with its status), with every dependency done. In plan order.
pub fn ready_tasks(plan: &Plan, known: &BTreeMap<String, TaskStatus>) -> Vec<String> {
    plan.tasks
        .iter()
        .filter(|t| !known.contains_key(&t.id))
        .filter(|t| {
            t.depends_on
                .iter()
                .all(|d| known.get(d) == Some(&TaskStatus::Done))
        })
        .map(|t| t.id.clone())
        .collect()
}

/// The plan one worker runs for `task`: the task itself and every task already merged
/// (`merged`, which the run journals as unchanged at its commit, so their requirements are
/// the merged result's regression bucket, as in a run on one machine).
///
/// # Errors
/// [`Error::Plan`] when `task` is not in the plan, or one of its dependencies is not merged.
pub fn task_plan(
    plan: &Plan,
    task: &str,
    merged: &BTreeMap<String, String>,
) -> Result<Plan, Error> {
    let t = plan
        .tasks
        .iter()
        .find(|t| t.id == task)
        .ok_or_else(|| Error::Plan(format!("task {task} is not in the run's plan")))?;
    if let Some(d) = t.depends_on.iter().find(|d| !merged.contains_key(*d)) {
        return Err(Error::Plan(format!(
            "task {task} was claimed before its dependency {d} was merged"
        )));
    }
    let keep: BTreeSet<&str> = merged.keys().map(String::as_str).chain([task]).collect();
    Ok(Plan {
        tasks: plan
            .tasks
            .iter()
            .filter(|t| keep.contains(t.id.as_str()))
            .cloned()
            .collect(),
    })
}

/// Checks that `url` names a remote the factory talks to: a path, a `file://` or an
/// `https://` URL (see `lightsout_git::remote`).
///
/// # Errors
/// [`Error::Config`] for any other transport.
pub fn check_remote(url: &str) -> Result<(), Error> {
    remote::protocol_for(url)
        .map(drop)
        .map_err(|e| Error::Config(e.to_string()))
}

/// The URL of `remote` in `repo` when it is the name of one of its remotes, else `remote`.
pub fn remote_url(repo: &Path, remote: &str) -> String {
    match lightsout_git::command(repo, &["remote", "get-url", remote]).output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => remote.to_owned(),
    }
}

/// A worker's clone at `dir`: cloned from `url` when it is not a repository yet, with its
/// checkout detached (main is moved by the merge step, never checked out).
///
/// # Errors
/// [`Error::Io`] when the clone fails.
pub fn ensure_clone(url: &str, dir: &Path) -> Result<PathBuf, Error> {
    if !dir.join(".git").exists() {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        remote::clone(url, dir).map_err(io("clone the remote", dir))?;
    }
    Ok(dir.to_path_buf())
}

/// Brings the clone at `repo` to the remote's main: fetched, the checkout detached at it
/// (files forced), and the local branch `main` set to it. Returns the commit.
///
/// # Errors
/// [`Error::Io`] / [`Error::Git`] when git fails.
pub async fn sync_to_remote(repo: &Path, main: &str) -> Result<String, Error> {
    let (r, m) = (repo.to_path_buf(), main.to_owned());
    let head = tokio::task::spawn_blocking(move || remote::fetch_main(&r, &m))
        .await
        .map_err(|e| stage(e.to_string()))?
        .map_err(io("fetch main from the remote", repo))?;
    let g = Git::new(repo);
    g.run(&["checkout", "-q", "-f", "--detach", &head]).await?;
    g.run(&["update-ref", &format!("refs/heads/{main}"), &head])
        .await?;
    Ok(head)
}

/// The id of the factory run a worker makes for `claim`: `<run>-<task>-<token>`. Unique per
/// claim (a token is never granted twice), so a re-claimed task starts over in a run of its
/// own, and a claim run's journal entries have a key of their own in the store.
pub fn claim_run_id(claim: &Claim) -> String {
    format!("{}-{}-{}", claim.run, claim.task, claim.token)
}

/// A claim run's journal in the fleet's shared store: the [`Mirror`] a worker gives its
/// claim's factory run ([`Factory::with_journal_mirror`](crate::Factory::with_journal_mirror)).
/// See the [module docs](self) for why a failed append waits in a backlog rather than failing
/// the run.
pub struct StoreJournal {
    store: Arc<dyn JournalStore>,
    claim: ClaimRun,
    /// Entries not yet in the store: `seq` → the entry's JSON.
    backlog: Mutex<BTreeMap<u64, String>>,
}

impl std::fmt::Debug for StoreJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreJournal")
            .field("claim", &self.claim)
            .field("backlog", &self.backlog())
            .finish_non_exhaustive()
    }
}

impl StoreJournal {
    /// The journal of `claim`'s run in `store`, with an empty backlog.
    pub fn new(store: Arc<dyn JournalStore>, claim: ClaimRun) -> Self {
        Self {
            store,
            claim,
            backlog: Mutex::new(BTreeMap::new()),
        }
    }

    /// The claim run its entries are appended under.
    pub fn claim(&self) -> &ClaimRun {
        &self.claim
    }

    /// How many entries it was handed that the store does not have yet.
    pub fn backlog(&self) -> usize {
        lightsout_stdx::lock(&self.backlog).len()
    }

    /// Appends the backlog to the store, lowest `seq` first; every entry the store takes
    /// leaves it. After a lost connection (the store retried it for
    /// [`lightsout_fleet::RECONNECT_FOR`] already) it stops: the rest would wait as long.
    /// An entry the store refuses outright (another entry stored at its key) stays too, and
    /// the others go on.
    ///
    /// # Errors
    /// The first error of the store met; the entries not appended stay in the backlog.
    pub fn flush(&self) -> Result<(), lightsout_fleet::Error> {
        let mut backlog = lightsout_stdx::lock(&self.backlog);
        let mut first = None;
        let seqs: Vec<u64> = backlog.keys().copied().collect();
        for seq in seqs {
            let Some(json) = backlog.get(&seq) else {
                continue;
            };
            match self.store.append(&self.claim, seq, json) {
                Ok(_) => {
                    backlog.remove(&seq);
                }
                Err(e) => {
                    let lost = e.is_connection();
                    first.get_or_insert(e);
                    if lost {
                        break;
                    }
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Mirror for StoreJournal {
    fn entry(&self, seq: u64, json: &str) {
        let had_backlog = {
            let mut backlog = lightsout_stdx::lock(&self.backlog);
            let had = !backlog.is_empty();
            backlog.insert(seq, json.to_owned());
            had
        };
        if let Err(e) = self.flush()
            && !had_backlog
        {
            tracing::warn!(
                claim_run = self.claim.id,
                seq,
                error = %e,
                "a journal entry is not in the fleet's store yet; it is kept and appended again"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Task;

    fn task(id: &str, deps: &[&str]) -> Task {
        Task {
            id: id.into(),
            depends_on: deps.iter().map(|d| (*d).into()).collect(),
            ..Task::default()
        }
    }

    fn plan() -> Plan {
        Plan {
            tasks: vec![
                task("A", &[]),
                task("B", &["A"]),
                task("C", &["A"]),
                task("D", &["B", "C"]),
            ],
        }
    }

    #[test]
    fn a_task_is_ready_only_once_every_dependency_is_done() {
        let p = plan();
        let mut known = BTreeMap::new();
        assert_eq!(ready_tasks(&p, &known), ["A"]);
        known.insert("A".to_owned(), TaskStatus::Claimed);
        assert!(ready_tasks(&p, &known).is_empty());
        known.insert("A".to_owned(), TaskStatus::Done);
        assert_eq!(ready_tasks(&p, &known), ["B", "C"]);
        known.insert("B".to_owned(), TaskStatus::Done);
        known.insert("C".to_owned(), TaskStatus::Failed);
        assert!(ready_tasks(&p, &known).is_empty(), "D waits on a failed C");
    }

    #[test]
    fn a_workers_plan_is_the_task_and_what_is_merged() {
        let p = plan();
        let merged: BTreeMap<String, String> = [("A", "a1"), ("B", "b1"), ("C", "c1")]
            .map(|(t, c)| (t.to_owned(), c.to_owned()))
            .into();
        let one = task_plan(&p, "D", &merged).unwrap();
        let ids: Vec<&str> = one.tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["A", "B", "C", "D"]);
        one.validate().unwrap();
        let early: BTreeMap<String, String> = [("A".to_owned(), "a1".to_owned())].into();
        assert!(task_plan(&p, "D", &early).is_err());
        assert!(task_plan(&p, "Z", &merged).is_err());
    }
}
