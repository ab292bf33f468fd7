//! The fence wired into the run loop: budgets that fail closed, holdout leak scans, and the
//! hash-chained audit log of every run.

use lightsout_agent::testing::FnAgent;
use lightsout_agent::{AgentReport, Usage};
use lightsout_factory::testing::FnEvaluator;
use lightsout_factory::{
    Config, Error, Factory, Plan, RequirementResult, RunOptions, Task, TaskPhase, Verdict,
};
use lightsout_fence::audit::{self, AuditKind};
use lightsout_fence::budget::Limits;
use std::path::Path;
use std::sync::Arc;

use crate::git;

fn repo(root: &Path) -> std::path::PathBuf {
    let d = root.join("repo");
    std::fs::create_dir_all(&d).unwrap();
    git(&d, &["init", "-q", "-b", "main"]);
    std::fs::write(d.join(".gitignore"), ".lightsout/\n").unwrap();
    git(&d, &["add", "-A"]);
    git(&d, &["commit", "-qm", "init"]);
    d
}

fn task(id: &str, deps: &[&str]) -> Task {
    Task {
        id: id.into(),
        title: format!("write {id}.txt"),
        kind: "code".into(),
        requirement_ids: vec![format!("R-{id}")],
        depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
        estimate_hours: 1.0,
        ..Task::default()
    }
}

/// Passes every requirement `R-<id>` whose `<id>.txt` exists.
fn evaluator()
-> FnEvaluator<impl Fn(&lightsout_factory::EvalRequest) -> Result<Verdict, Error> + Send + Sync> {
    FnEvaluator(|req: &lightsout_factory::EvalRequest| {
        let results: Vec<RequirementResult> = req
            .requirements
            .iter()
            .chain(&req.regression)
            .map(|r| RequirementResult {
                id: r.clone(),
                trials: 1,
                passed: u32::from(
                    req.worktree
                        .join(format!("{}.txt", r.trim_start_matches("R-")))
                        .exists(),
                ),
                category: None,
            })
            .collect();
        Ok(Verdict {
            passed: results.iter().all(|r| r.passed == r.trials),
            feedback: String::new(),
            requirements: results,
        })
    })
}

fn opts(id: &str) -> RunOptions {
    RunOptions {
        run_id: Some(id.into()),
        jobs: Some(1),
        ..RunOptions::default()
    }
}

#[tokio::test]
async fn usage_past_the_task_budget_fails_the_task_names_the_budget_and_is_audited() {
    let d = tempfile::tempdir().unwrap();
    let repo = repo(d.path());
    let mut config = Config::default();
    config.budget.per_task = Limits {
        usd: Some(0.05),
        ..Limits::default()
    };
    // A reports $1.00 for one call, past its $0.05 task budget; C stays within it.
    let agent = Arc::new(FnAgent::new("fake", |ctx, ws| {
        std::fs::write(ws.root.join(format!("{}.txt", ctx.task_id)), "ok").unwrap();
        let mut r = AgentReport::completed("fake", "wrote it");
        r.usage = Usage {
            input_tokens: 10,
            output_tokens: 10,
            cost_usd: Some(if ctx.task_id == "A" { 1.0 } else { 0.01 }),
            wall_ms: 1,
        };
        Ok(r)
    }));
    let factory = Factory::new(&repo, config)
        .unwrap()
        .with_default_agent(agent)
        .with_evaluator(Arc::new(evaluator()));
    let plan = Plan {
        tasks: vec![task("A", &[]), task("B", &["A"]), task("C", &[])],
    };
    let main_before = git(&repo, &["rev-parse", "main"]);
    let state = factory.run(plan, opts("budget")).await.unwrap();

    let a = state.task("A").unwrap();
    assert_eq!(a.status, TaskPhase::Failed);
    assert_eq!(a.attempts.len(), 1, "no retry after the budget ran out");
    let why = a.failure.clone().unwrap_or_default().to_lowercase();
    assert!(why.contains("budget"), "{why}");
    assert!(why.contains("usd") && why.contains("task"), "{why}");
    assert_eq!(state.task("B").unwrap().status, TaskPhase::Blocked);
    let c = state.task("C").unwrap();
    assert_eq!(c.status, TaskPhase::Merged);
    // Only C's work reached main.
    let main_after = git(&repo, &["rev-parse", "main"]);
    assert_ne!(main_before, main_after);
    let files = git(&repo, &["ls-tree", "--name-only", "main"]);
    assert!(files.lines().any(|f| f == "C.txt"), "{files}");
    assert!(!files.lines().any(|f| f == "A.txt"), "{files}");

    let log = repo.join(".lightsout/runs/budget/audit.jsonl");
    let report = audit::verify(&log).unwrap();
    assert!(report.intact(), "{report:?}");
    let entries = audit::read(&log).unwrap();
    let stop = entries
        .iter()
        .find(|e| e.kind == AuditKind::BudgetStop)
        .expect("a budget_stop entry");
    assert_eq!(stop.task.as_deref(), Some("A"));
    assert_eq!(stop.requirements, vec!["R-A".to_owned()]);
    assert_eq!(stop.details["budget"], "usd");
    let kinds = |k: AuditKind| entries.iter().filter(|e| e.kind == k).count();
    assert_eq!(kinds(AuditKind::RunStart), 1);
    assert_eq!(kinds(AuditKind::AgentCall), 2);
    assert_eq!(kinds(AuditKind::Merge), 1);
    assert_eq!(kinds(AuditKind::RunEnd), 1);
    assert!(
        entries
            .iter()
            .filter(|e| e.kind == AuditKind::AgentCall)
            .all(|e| e.requirements.len() == 1)
    );

    // Tampering with one line is detected.
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("\"R-A\"", "\"R-Z\"", 1)).unwrap();
    assert!(!audit::verify(&log).unwrap().intact());
}

#[tokio::test]
async fn a_holdout_canary_in_a_diff_stops_that_task_loudly_and_the_others_merge() {
    let d = tempfile::tempdir().unwrap();
    let repo = repo(d.path());
    let holdout = d.path().join("holdout");
    std::fs::create_dir_all(&holdout).unwrap();
    std::fs::write(
        holdout.join("shorten.feature"),
        "# canary: LSO-CANARY-91b7e2\nFeature: shortener\n\n  Scenario: short links redirect\n    \
         When I send `GET /status/200`\n    Then the status is 200\n",
    )
    .unwrap();
    let mut config = Config::default();
    config.holdout.path = Some(holdout.clone());
    let agent = Arc::new(FnAgent::new("leaky", |ctx, ws| {
        // A's agent somehow got hold of the holdout and pastes its canary into its work.
        let text = if ctx.task_id == "A" {
            "ok\n// LSO-CANARY-91b7e2\n"
        } else {
            "ok\n"
        };
        std::fs::write(ws.root.join(format!("{}.txt", ctx.task_id)), text).unwrap();
        Ok(AgentReport::completed("leaky", "wrote it"))
    }));
    let factory = Factory::new(&repo, config)
        .unwrap()
        .with_default_agent(agent)
        .with_evaluator(Arc::new(evaluator()));
    let state = factory
        .run(
            Plan {
                tasks: vec![task("A", &[]), task("B", &[]), task("C", &["A"])],
            },
            opts("leak"),
        )
        .await
        .unwrap();
    let a = state.task("A").unwrap();
    assert_eq!(a.status, TaskPhase::Failed);
    assert_eq!(a.attempts.len(), 1, "a leak is not retried");
    assert_eq!(a.attempts[0].failed_stage.as_deref(), Some("leak"));
    let why = a.failure.clone().unwrap_or_default();
    assert!(why.contains("holdout leak in diff"), "{why}");
    assert!(why.contains("canary"), "{why}");
    assert_eq!(state.task("C").unwrap().status, TaskPhase::Blocked);
    // The run went on: B merged, and nothing of A reached main.
    assert_eq!(state.task("B").unwrap().status, TaskPhase::Merged);
    let main_files = git(&repo, &["ls-tree", "--name-only", "main"]);
    assert!(main_files.contains("B.txt"), "{main_files}");
    assert!(!main_files.contains("A.txt"), "{main_files}");

    let log = repo.join(".lightsout/runs/leak/audit.jsonl");
    assert!(audit::verify(&log).unwrap().intact());
    let entries = audit::read(&log).unwrap();
    let leak = entries
        .iter()
        .find(|e| e.kind == AuditKind::Leak)
        .expect("a leak entry");
    assert_eq!(leak.task.as_deref(), Some("A"));
    assert_eq!(leak.requirements, vec!["R-A".to_owned()]);
    assert_eq!(leak.details["kind"], "diff");
    // The audit names the hit without copying the holdout text.
    assert!(
        !std::fs::read_to_string(&log)
            .unwrap()
            .contains("LSO-CANARY")
    );
}

#[tokio::test]
async fn a_refused_reservation_stops_the_task_before_the_agent_is_called() {
    let d = tempfile::tempdir().unwrap();
    let repo = repo(d.path());
    let mut config = Config::default();
    config.budget.per_task = Limits {
        attempts: Some(1),
        ..Limits::default()
    };
    // The agent never satisfies the holdout, so the loop would retry up to `[run] attempts`.
    let agent = Arc::new(lightsout_agent::testing::RecordingAgent::new(FnAgent::new(
        "fake",
        |_ctx, ws| {
            std::fs::write(ws.root.join("other.txt"), "x").unwrap();
            Ok(AgentReport::completed("fake", "wrote the wrong file"))
        },
    )));
    let factory = Factory::new(&repo, config)
        .unwrap()
        .with_default_agent(agent.clone())
        .with_evaluator(Arc::new(evaluator()));
    let state = factory
        .run(
            Plan {
                tasks: vec![task("A", &[])],
            },
            opts("attempts"),
        )
        .await
        .unwrap();
    let a = state.task("A").unwrap();
    assert_eq!(a.status, TaskPhase::Failed);
    assert_eq!(agent.calls().len(), 1, "the second call had no reservation");
    let why = a.failure.clone().unwrap_or_default();
    assert!(
        why.contains("attempts budget of the task A ran out"),
        "{why}"
    );
    let log = repo.join(".lightsout/runs/attempts/audit.jsonl");
    assert!(audit::verify(&log).unwrap().intact());
    let entries = audit::read(&log).unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.kind == AuditKind::BudgetStop && e.details["budget"] == "attempts")
    );
}

#[tokio::test]
async fn holdout_text_in_a_prompt_stops_that_task_before_its_agent_is_called() {
    let d = tempfile::tempdir().unwrap();
    let repo = repo(d.path());
    let holdout = d.path().join("holdout");
    std::fs::create_dir_all(&holdout).unwrap();
    std::fs::write(
        holdout.join("a.scenario.md"),
        "<!-- canary: LSO-CANARY-prompt-04 -->\n# Links\n\n## Scenario: create\n\
         - When I send `GET /status/201`\n- Then the status is 201\n",
    )
    .unwrap();
    let mut config = Config::default();
    config.holdout.path = Some(holdout);
    let agent = Arc::new(lightsout_agent::testing::RecordingAgent::new(FnAgent::new(
        "fake",
        |ctx, ws| {
            std::fs::write(ws.root.join(format!("{}.txt", ctx.task_id)), "ok").unwrap();
            Ok(AgentReport::completed("fake", "wrote it"))
        },
    )));
    let factory = Factory::new(&repo, config)
        .unwrap()
        .with_default_agent(agent.clone())
        .with_evaluator(Arc::new(evaluator()));
    let mut t = task("A", &[]);
    t.spec_excerpt = "Build links. (copied from the holdout: LSO-CANARY-prompt-04)".into();
    let main_before = git(&repo, &["rev-parse", "main"]);
    let state = factory
        .run(
            Plan {
                tasks: vec![t, task("B", &[])],
            },
            opts("prompt"),
        )
        .await
        .unwrap();
    let a = state.task("A").unwrap();
    assert_eq!(a.status, TaskPhase::Failed);
    assert_eq!(a.attempts[0].failed_stage.as_deref(), Some("leak"));
    let why = a.failure.clone().unwrap_or_default();
    assert!(why.contains("holdout leak in prompt"), "{why}");
    // A's agent was never called: only B's was.
    let called: Vec<String> = agent.calls().iter().map(|c| c.task_id.clone()).collect();
    assert_eq!(called, vec!["B".to_owned()]);
    assert_eq!(state.task("B").unwrap().status, TaskPhase::Merged);
    assert_ne!(git(&repo, &["rev-parse", "main"]), main_before);
    let entries = audit::read(&repo.join(".lightsout/runs/prompt/audit.jsonl")).unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.kind == AuditKind::Leak && e.details["kind"] == "prompt")
    );
}

/// A hook whose host dies when task B is about to start: the run stops with an error.
struct DiesOnB;

#[async_trait::async_trait]
impl lightsout_factory::AttemptHook for DiesOnB {
    async fn before_attempt(
        &self,
        ctx: &lightsout_agent::TaskContext,
    ) -> Result<lightsout_factory::HookDecision, lightsout_factory::BoxError> {
        if ctx.task_id == "B" {
            return Err(Error::Config("the host went away".into()).into());
        }
        Ok(lightsout_factory::HookDecision::Proceed)
    }
}

#[tokio::test]
async fn the_run_budget_holds_across_a_resume() {
    let d = tempfile::tempdir().unwrap();
    let repo = repo(d.path());
    let mut config = Config::default();
    config.budget.per_run = Limits {
        tokens: Some(1_500),
        ..Limits::default()
    };
    // Every call reports 1000 tokens: A fits the run's 1500, A + B do not.
    let agent = Arc::new(FnAgent::new("fake", |ctx, ws| {
        std::fs::write(ws.root.join(format!("{}.txt", ctx.task_id)), "ok").unwrap();
        let mut r = AgentReport::completed("fake", "wrote it");
        r.usage = Usage {
            input_tokens: 900,
            output_tokens: 100,
            cost_usd: None,
            wall_ms: 1,
        };
        Ok(r)
    }));
    let plan = Plan {
        tasks: vec![task("A", &[]), task("B", &["A"])],
    };
    // The first process dies when B is about to start (an infrastructure error), after A
    // merged.
    let first = Factory::new(&repo, config.clone())
        .unwrap()
        .with_default_agent(agent.clone())
        .with_hook(Arc::new(DiesOnB))
        .with_evaluator(Arc::new(evaluator()));
    assert!(first.run(plan, opts("resume")).await.is_err());

    let second = Factory::new(&repo, config)
        .unwrap()
        .with_default_agent(agent)
        .with_evaluator(Arc::new(evaluator()));
    let state = second.resume("resume", Some(1)).await.unwrap();
    assert_eq!(state.task("A").unwrap().status, TaskPhase::Merged);
    let b = state.task("B").unwrap();
    assert_eq!(b.status, TaskPhase::Failed, "{:?}", b.failure);
    let why = b.failure.clone().unwrap_or_default();
    assert!(why.contains("tokens budget of the run"), "{why}");
}

/// A program that cannot be found is the machine's problem, not the task's: the run is
/// refused before it starts (the CLI exits 2), naming the profile and the program.
#[tokio::test]
async fn a_fenced_agent_that_cannot_start_is_an_infrastructure_error() {
    let d = tempfile::tempdir().unwrap();
    let repo = repo(d.path());
    let config = Config::parse(
        "[agents]\ndefault = \"ghost\"\n[agent.ghost]\npreset = \"command\"\n\
         program = \"/nonexistent/agent\"\n",
        &repo,
    )
    .unwrap();
    let factory = Factory::new(&repo, config)
        .unwrap()
        .with_evaluator(Arc::new(evaluator()));
    let e = factory
        .run(
            Plan {
                tasks: vec![task("A", &[])],
            },
            opts("ghost"),
        )
        .await
        .unwrap_err();
    let why = e.to_string();
    assert!(
        why.contains("cannot start agent `/nonexistent/agent`") && why.contains("`ghost`"),
        "{why}"
    );
    assert!(
        !repo.join(".lightsout/runs/ghost/journal.jsonl").exists(),
        "no run was started"
    );
}
