//! The merge queue's target (`lightsout_factory::fleet`): a refused publish redoes the merge
//! on the new main, and a worker's `RemoteMain` pushes to a bare remote only while it holds
//! its claim; a worker's journal entries go to the shared store (`StoreJournal`).

use async_trait::async_trait;
use lightsout_agent::AgentReport;
use lightsout_agent::testing::FnAgent;
use lightsout_factory::fleet::{self, LocalMain, MergeTarget, RemoteMain, StoreJournal};
use lightsout_factory::journal::Mirror as _;
use lightsout_factory::testing::FnEvaluator;
use lightsout_factory::{
    Config, EvalStage, Factory, Plan, RequirementResult, RunOptions, Task, TaskPhase, Verdict,
};
use lightsout_fleet::Error as FleetError;
use lightsout_fleet::claims::{ClaimStore, Keeper, SqliteClaims};
use lightsout_fleet::journal::{ClaimRun, JournalRow, JournalStore, SqliteJournal};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::git;

fn repo(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join(".gitignore"), ".lightsout/\n").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "init"]);
}

fn plan() -> Plan {
    Plan {
        tasks: vec![Task {
            id: "A".into(),
            title: "write A.txt".into(),
            kind: "code".into(),
            requirement_ids: vec!["R-A".into()],
            estimate_hours: 1.0,
            ..Task::default()
        }],
    }
}

/// Writes `A.txt`; the evaluator passes when it is there, and counts the merged-result
/// evaluations.
fn factory(repo: &Path, merged_evals: Arc<AtomicU32>) -> Factory {
    let agent = Arc::new(FnAgent::new("fake", |_, ws| {
        std::fs::write(ws.root.join("A.txt"), "ok").unwrap();
        Ok(AgentReport::completed("fake", "wrote it"))
    }));
    let evaluator = FnEvaluator(move |req: &lightsout_factory::EvalRequest| {
        if req.stage == EvalStage::Merged {
            merged_evals.fetch_add(1, Ordering::SeqCst);
        }
        let ok = req.worktree.join("A.txt").exists();
        Ok(Verdict {
            passed: ok,
            feedback: String::new(),
            requirements: vec![RequirementResult {
                id: "R-A".into(),
                trials: 1,
                passed: u32::from(ok),
                category: None,
            }],
        })
    });
    Factory::new(repo, Config::default())
        .unwrap()
        .with_default_agent(agent)
        .with_evaluator(Arc::new(evaluator))
}

/// Main moves (another worker's merge) between verification and publication, once.
struct MovesOnce {
    moved: AtomicU32,
}

#[async_trait]
impl MergeTarget for MovesOnce {
    async fn onto(
        &self,
        repo: &Path,
        main: &str,
        task: &str,
        head: &str,
    ) -> Result<String, lightsout_factory::Error> {
        LocalMain.onto(repo, main, task, head).await
    }

    async fn publish(
        &self,
        repo: &Path,
        main: &str,
        task: &str,
        onto: &str,
        commit: &str,
    ) -> Result<bool, lightsout_factory::Error> {
        if self.moved.fetch_add(1, Ordering::SeqCst) == 0 {
            let other = repo.join("other");
            let o = other.to_str().unwrap();
            git(repo, &["worktree", "add", "-q", "--detach", o, main]);
            std::fs::write(other.join("other.txt"), "theirs").unwrap();
            git(&other, &["add", "-A"]);
            git(&other, &["commit", "-qm", "another worker's task"]);
            let theirs = git(&other, &["rev-parse", "HEAD"]);
            git(
                repo,
                &["update-ref", &format!("refs/heads/{main}"), &theirs],
            );
            git(repo, &["worktree", "remove", "--force", o]);
            return Ok(false);
        }
        LocalMain.publish(repo, main, task, onto, commit).await
    }

    fn trailers(&self) -> Vec<(String, String)> {
        vec![("Lightsout-Fleet-Run".into(), "r1".into())]
    }
}

#[tokio::test]
async fn a_refused_publish_redoes_the_merge_on_the_new_main() {
    let d = tempfile::tempdir().unwrap();
    repo(d.path());
    let evals = Arc::new(AtomicU32::new(0));
    let target = Arc::new(MovesOnce {
        moved: AtomicU32::new(0),
    });
    let state = factory(d.path(), evals.clone())
        .with_merge_target(target.clone())
        .run(
            plan(),
            RunOptions {
                run_id: Some("t1".into()),
                jobs: Some(1),
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(state.task("A").unwrap().status, TaskPhase::Merged);
    assert_eq!(target.moved.load(Ordering::SeqCst), 2, "published twice");
    assert_eq!(
        evals.load(Ordering::SeqCst),
        2,
        "the merged result was verified again on the new main"
    );
    // Main: init, the other worker's commit, then A's squash on top of it, with both files.
    let log = git(d.path(), &["log", "--format=%s", "main"]);
    assert_eq!(log.lines().count(), 3, "{log}");
    assert!(
        log.lines().nth(1).unwrap().contains("another worker"),
        "{log}"
    );
    let files = git(d.path(), &["ls-tree", "--name-only", "main"]);
    assert!(
        files.contains("A.txt") && files.contains("other.txt"),
        "{files}"
    );
    let body = git(d.path(), &["log", "-1", "--format=%B", "main"]);
    assert!(body.contains("Lightsout-Fleet-Run: r1"), "{body}");
}

/// A bare remote holding `init`, a worker's clone of it, and a claim store with task A of run
/// `r1` claimed for `lease` and kept by a [`Keeper`], as `lightsout worker` keeps it.
fn fleet_setup(
    lease: Duration,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Arc<SqliteClaims>,
    Keeper,
) {
    let d = tempfile::tempdir().unwrap();
    let seed = d.path().join("seed");
    std::fs::create_dir(&seed).unwrap();
    repo(&seed);
    let bare = d.path().join("remote.git");
    git(
        d.path(),
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    git(&seed, &["push", "-q", bare.to_str().unwrap(), "main"]);
    let clone = fleet::ensure_clone(bare.to_str().unwrap(), &d.path().join("clone")).unwrap();
    let store = Arc::new(SqliteClaims::in_repo(d.path()).unwrap());
    store.enqueue("r1", &["A".into()]).unwrap();
    let keeper = Keeper::claim_next(store.clone(), "w", lease)
        .unwrap()
        .unwrap();
    (d, clone, store, keeper)
}

#[tokio::test]
async fn a_worker_pushes_the_verified_merge_to_the_remotes_main_with_its_trailers() {
    let (d, clone, _store, keeper) = fleet_setup(Duration::from_secs(600));
    let before = fleet::sync_to_remote(&clone, "main").await.unwrap();
    let target = RemoteMain::new(keeper.guard(), Duration::from_millis(10));
    let state = factory(&clone, Arc::new(AtomicU32::new(0)))
        .with_merge_target(Arc::new(target))
        .run(
            plan(),
            RunOptions {
                run_id: Some("r1-A-1".into()),
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(state.task("A").unwrap().status, TaskPhase::Merged);
    let bare = d.path().join("remote.git");
    let main = git(&bare, &["--git-dir=.", "rev-parse", "main"]);
    assert_ne!(main, before);
    assert_eq!(git(&bare, &["--git-dir=.", "rev-parse", "main^"]), before);
    let merged = fleet::merged_on(&clone, &main, "r1").await.unwrap();
    assert_eq!(merged.get("A"), Some(&main), "{merged:?}");
    // The task's branch went to the remote while it was merged, and is gone once main moved.
    assert_eq!(
        git(
            &bare,
            &["--git-dir=.", "for-each-ref", "refs/heads/lightsout/"]
        ),
        ""
    );
    keeper
        .finish(&lightsout_fleet::claims::Settle::Done)
        .unwrap();
}

/// The task branch is deleted by compare-and-swap: only while it points at the head the
/// worker pushed; a branch moved since is left alone.
#[test]
fn a_task_branch_is_deleted_only_while_it_points_at_the_merged_head() {
    let (d, clone, _store, _keeper) = fleet_setup(Duration::from_secs(600));
    let bare = d.path().join("remote.git");
    let head = git(&clone, &["rev-parse", "HEAD"]);
    git(
        &clone,
        &["commit", "-q", "--allow-empty", "-m", "someone else's"],
    );
    let other = git(&clone, &["rev-parse", "HEAD"]);
    git(
        &clone,
        &[
            "push",
            "-q",
            "origin",
            &format!("{other}:refs/heads/lightsout/r1/A"),
        ],
    );
    let refused = fleet::delete_task_branch(&clone, "lightsout/r1/A", &head).unwrap();
    assert!(
        matches!(refused, lightsout_git::remote::Pushed::Refused(_)),
        "{refused:?}"
    );
    assert_eq!(
        git(
            &bare,
            &["--git-dir=.", "rev-parse", "refs/heads/lightsout/r1/A"]
        ),
        other
    );
    let deleted = fleet::delete_task_branch(&clone, "lightsout/r1/A", &other).unwrap();
    assert_eq!(deleted, lightsout_git::remote::Pushed::Accepted);
    assert_eq!(
        git(
            &bare,
            &["--git-dir=.", "for-each-ref", "refs/heads/lightsout/"]
        ),
        ""
    );
}

#[tokio::test]
async fn a_worker_whose_lease_lapsed_does_not_move_the_remotes_main() {
    // A lease of zero lapses at once: the claim is no longer held when the merge step asks
    // for the merge lock, nor when it would publish.
    let (d, clone, _store, keeper) = fleet_setup(Duration::ZERO);
    let before = fleet::sync_to_remote(&clone, "main").await.unwrap();
    let target = RemoteMain::new(keeper.guard(), Duration::from_millis(10));
    let err = factory(&clone, Arc::new(AtomicU32::new(0)))
        .with_merge_target(Arc::new(target))
        .run(
            plan(),
            RunOptions {
                run_id: Some("r1-A-1".into()),
                ..RunOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no longer held"), "{err}");
    let bare = d.path().join("remote.git");
    assert_eq!(git(&bare, &["--git-dir=.", "rev-parse", "main"]), before);
}

/// A fleet worker's factory counts `[budget.day]` in the shared store
/// (`Factory::with_day_budget`), tied to its claim: while other workers hold most of today's
/// dollar there, this worker's task stops with the day's budget named before its agent runs
/// (its own machine has spent nothing); once they settle for less, the task runs and its call
/// (one attempt and its cost) is settled in the shared store. The day caps are counted there
/// only: the machine's day ledger file is never written.
#[tokio::test]
async fn a_fleet_workers_day_budget_is_the_shared_stores() {
    use lightsout_fleet::budget::{
        BudgetStore, ClaimKey, DayAmounts, DayCaps, SqliteBudget, utc_day,
    };
    let d = tempfile::tempdir().unwrap();
    let repo_dir = d.path().join("repo");
    std::fs::create_dir(&repo_dir).unwrap();
    repo(&repo_dir);
    let db = d.path().join("state.db");
    let store: Arc<dyn BudgetStore> = Arc::new(SqliteBudget::open(&db).unwrap());
    let claims = SqliteClaims::open(&db).unwrap();
    claims.enqueue("fleet", &["A".into()]).unwrap();
    let claim = claims
        .claim("w", Duration::from_secs(600))
        .unwrap()
        .unwrap();
    let today = utc_day();
    let caps = DayCaps {
        micro_usd: Some(1_000_000),
        ..DayCaps::default()
    };
    let held = DayAmounts {
        attempts: 1,
        micro_usd: 950_000,
        ..DayAmounts::ZERO
    };
    let lightsout_fleet::budget::DayGrant::Granted(others) = store
        .reserve(&today, "other-run/X/1", None, held, &caps)
        .unwrap()
    else {
        panic!("within the cap")
    };
    let calls = Arc::new(AtomicU32::new(0));
    let worker = |calls: Arc<AtomicU32>| {
        let agent = Arc::new(FnAgent::new("fake", move |_, ws| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::fs::write(ws.root.join("A.txt"), "ok").unwrap();
            let mut r = AgentReport::completed("fake", "wrote it");
            r.usage.cost_usd = Some(0.02);
            Ok(r)
        }));
        let config = Config::parse("[budget.day]\nusd = 1.0\nattempts = 5\n", &repo_dir).unwrap();
        Factory::new(&repo_dir, config)
            .unwrap()
            .with_default_agent(agent)
            .with_evaluator(Arc::new(FnEvaluator(
                |req: &lightsout_factory::EvalRequest| {
                    let ok = req.worktree.join("A.txt").exists();
                    Ok(Verdict {
                        passed: ok,
                        feedback: String::new(),
                        requirements: vec![RequirementResult {
                            id: "R-A".into(),
                            trials: 1,
                            passed: u32::from(ok),
                            category: None,
                        }],
                    })
                },
            )))
            .with_day_budget(store.clone(), Some(ClaimKey::from(&claim)))
    };
    let opts = |id: &str| RunOptions {
        run_id: Some(id.into()),
        ..RunOptions::default()
    };
    let state = worker(calls.clone()).run(plan(), opts("r1")).await.unwrap();
    let a = state.task("A").unwrap();
    assert_eq!(a.status, TaskPhase::Failed);
    let why = a.failure.clone().unwrap_or_default();
    assert!(
        why.contains("budget exhausted") && why.contains(&format!("day {today}")),
        "{why}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no agent call");
    store
        .settle(
            &others,
            DayAmounts {
                micro_usd: 100_000,
                ..held
            },
        )
        .unwrap();
    let state = worker(calls.clone()).run(plan(), opts("r2")).await.unwrap();
    assert_eq!(state.task("A").unwrap().status, TaskPhase::Merged);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let day = store.ledger(&today).unwrap();
    assert_eq!(
        (day.spent.micro_usd, day.spent.attempts, day.open),
        (120_000, 2, 0),
        "{day:?}"
    );
    assert!(
        !lightsout_fence::budget::default_ledger_path(&repo_dir).exists(),
        "the day caps are counted on this machine too"
    );
}

/// Journal entries as (seq, the entry's JSON).
type Entries = Vec<(u64, serde_json::Value)>;

/// The store's rows of fleet run `r1` as (seq, entry), and the local journal of claim run
/// `id` in `repo` as the same: what a worker wrote, and what its mirror put in the store.
fn journal_here_and_in_store(
    repo: &Path,
    id: &str,
    store: &dyn JournalStore,
) -> (Entries, Entries) {
    let file = repo.join(format!(".lightsout/runs/{id}/journal.jsonl"));
    let here = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, l)| (i as u64, serde_json::from_str(l).unwrap()))
        .collect();
    let stored = store
        .entries("r1", None)
        .unwrap()
        .into_iter()
        .map(|r| (r.seq, r.entry))
        .collect();
    (here, stored)
}

/// A worker-mode run (the claim kept by a `Keeper`, merged through `RemoteMain`, as `lightsout
/// worker --repo` builds a claim) with the store's journal as its mirror: every entry of its
/// local journal is in the store, in order, under the claim's run, task, token and worker.
#[tokio::test]
async fn a_workers_journal_entries_land_in_the_shared_store() {
    let (d, clone, _claims, keeper) = fleet_setup(Duration::from_secs(600));
    let claim = keeper.claim();
    let store: Arc<dyn JournalStore> =
        Arc::new(SqliteJournal::open(&d.path().join(".lightsout/state.db")).unwrap());
    let id = fleet::claim_run_id(&claim);
    assert_eq!(id, format!("r1-A-{}", claim.token));
    let mirror = Arc::new(StoreJournal::new(store.clone(), ClaimRun::of(&claim, &id)));
    let target = RemoteMain::new(keeper.guard(), Duration::from_millis(10));
    let state = factory(&clone, Arc::new(AtomicU32::new(0)))
        .with_merge_target(Arc::new(target))
        .with_journal_mirror(mirror.clone())
        .run(
            plan(),
            RunOptions {
                run_id: Some(id.clone()),
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(state.task("A").unwrap().status, TaskPhase::Merged);
    let (here, stored) = journal_here_and_in_store(&clone, &id, store.as_ref());
    assert_eq!(stored, here);
    let kinds: Vec<&str> = here
        .iter()
        .map(|(_, e)| e["entry"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"run_started"), "{kinds:?}");
    assert!(kinds.contains(&"merged"), "{kinds:?}");
    for r in store.entries("r1", None).unwrap() {
        assert_eq!(
            (&*r.task, r.token, &*r.worker, &*r.claim_run),
            ("A", claim.token, "w", id.as_str())
        );
    }
    assert_eq!(mirror.backlog(), 0);
    keeper
        .finish(&lightsout_fleet::claims::Settle::Done)
        .unwrap();
}

/// A journal store in front of a real one that fails: the first `lost` appends as a lost
/// connection, and every append of entry `refuse` as a refusal.
struct Flaky {
    inner: SqliteJournal,
    lost: AtomicU32,
    refuse: Option<u64>,
}

impl JournalStore for Flaky {
    fn append(&self, claim: &ClaimRun, seq: u64, entry: &str) -> Result<bool, FleetError> {
        let left = self.lost.load(Ordering::SeqCst);
        if left > 0 {
            self.lost.store(left - 1, Ordering::SeqCst);
            return Err(lightsout_fleet::testing::lost_connection("flaky"));
        }
        if self.refuse == Some(seq) {
            return Err(FleetError::Corrupt {
                store: "flaky".into(),
                message: "refused".into(),
            });
        }
        self.inner.append(claim, seq, entry)
    }

    fn entries(
        &self,
        run: &str,
        newest_per_task: Option<usize>,
    ) -> Result<Vec<JournalRow>, FleetError> {
        self.inner.entries(run, newest_per_task)
    }
}

fn flaky(dir: &Path, lost: u32, refuse: Option<u64>) -> Arc<Flaky> {
    Arc::new(Flaky {
        inner: SqliteJournal::open(&dir.join("journal.db")).unwrap(),
        lost: AtomicU32::new(lost),
        refuse,
    })
}

fn a_claim() -> ClaimRun {
    ClaimRun {
        run: "r1".into(),
        task: "A".into(),
        token: 1,
        worker: "w".into(),
        id: "t1".into(),
    }
}

/// Run `t1` of [`plan`] in `repo` with `mirror`.
async fn run_mirrored(repo: &Path, mirror: Arc<StoreJournal>) -> lightsout_factory::RunState {
    factory(repo, Arc::new(AtomicU32::new(0)))
        .with_journal_mirror(mirror)
        .run(
            plan(),
            RunOptions {
                run_id: Some("t1".into()),
                ..RunOptions::default()
            },
        )
        .await
        .unwrap()
}

/// The store's copy of the journal never fails the run: while the store is unreachable the
/// entries wait (the local journal has them) and go in, in order, once it answers again; a
/// store that never answers leaves the run merged and every entry in the backlog, which
/// `flush` reports.
#[tokio::test]
async fn a_failing_journal_store_does_not_fail_the_run() {
    let d = tempfile::tempdir().unwrap();
    repo(d.path());
    let store = flaky(d.path(), 3, None);
    let mirror = Arc::new(StoreJournal::new(store.clone(), a_claim()));
    let state = run_mirrored(d.path(), mirror.clone()).await;
    assert_eq!(state.task("A").unwrap().status, TaskPhase::Merged);
    assert_eq!(
        store.lost.load(Ordering::SeqCst),
        0,
        "the store failed 3 times"
    );
    let (here, stored) = journal_here_and_in_store(d.path(), "t1", store.as_ref());
    assert!(here.len() > 3, "{here:?}");
    assert_eq!(
        stored, here,
        "every entry, in order, once the store answered"
    );
    assert_eq!(mirror.backlog(), 0);

    // A store that never answers: the run merges all the same.
    let other = d.path().join("other");
    std::fs::create_dir(&other).unwrap();
    repo(&other);
    let down = flaky(&other, u32::MAX, None);
    let mirror = Arc::new(StoreJournal::new(down.clone(), a_claim()));
    let state = run_mirrored(&other, mirror.clone()).await;
    assert_eq!(state.task("A").unwrap().status, TaskPhase::Merged);
    let (here, stored) = journal_here_and_in_store(&other, "t1", down.as_ref());
    assert_eq!((mirror.backlog(), stored.len()), (here.len(), 0));
    assert!(mirror.flush().unwrap_err().is_connection());
}

/// An entry the store refuses outright stays in the backlog without holding up the ones after
/// it; a lost connection holds up the rest (they would wait as long).
#[test]
fn a_refused_entry_does_not_hold_up_the_others() {
    let d = tempfile::tempdir().unwrap();
    let store = flaky(d.path(), 0, Some(1));
    let mirror = StoreJournal::new(store.clone(), a_claim());
    for seq in 0..4 {
        mirror.entry(seq, &format!("{{\"entry\":\"e\",\"n\":{seq}}}"));
    }
    let seqs = |s: &Flaky| -> Vec<u64> {
        s.entries("r1", None)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect()
    };
    assert_eq!(seqs(&store), [0, 2, 3]);
    assert_eq!(mirror.backlog(), 1);
    assert!(!mirror.flush().unwrap_err().is_connection());

    let store = flaky(&d.path().join("lost"), 1, None);
    let mirror = StoreJournal::new(store.clone(), a_claim());
    mirror.entry(0, "{\"entry\":\"e\"}");
    assert_eq!((seqs(&store).len(), mirror.backlog()), (0, 1));
    mirror.entry(1, "{\"entry\":\"f\"}");
    assert_eq!(seqs(&store), [0, 1]);
    assert_eq!(mirror.backlog(), 0);
}
