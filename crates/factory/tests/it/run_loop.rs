use lightsout_agent::testing::{FnAgent, RecordingAgent};
use lightsout_agent::{AgentReport, Usage};
use lightsout_factory::testing::{FnEvaluator, FnGuard, RecordingMemory};
use lightsout_factory::{
    Config, Event, Factory, GuardFinding, Plan, RequirementResult, RunOptions, Task, TaskPhase,
    VecEvents, Verdict,
};
use std::sync::Arc;

use crate::git;

fn repo() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    git(d.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(d.path().join(".gitignore"), ".lightsout/\n").unwrap();
    git(d.path(), &["add", "-A"]);
    git(d.path(), &["commit", "-qm", "init"]);
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

/// Passes a requirement `R-<id>` when `<id>.txt` holds `ok`.
fn evaluator() -> FnEvaluator<
    impl Fn(&lightsout_factory::EvalRequest) -> Result<Verdict, lightsout_factory::Error> + Send + Sync,
> {
    FnEvaluator(|req: &lightsout_factory::EvalRequest| {
        let mut results = Vec::new();
        for r in req.requirements.iter().chain(&req.regression) {
            let file = req
                .worktree
                .join(format!("{}.txt", r.trim_start_matches("R-")));
            let ok = std::fs::read_to_string(file).is_ok_and(|s| s.trim() == "ok");
            results.push(RequirementResult {
                id: r.clone(),
                trials: 1,
                passed: u32::from(ok),
                category: Some("wrong content".into()),
            });
        }
        let passed = results.iter().all(|r| r.passed == r.trials);
        Ok(Verdict {
            passed,
            feedback: lightsout_factory::redact(
                &results,
                lightsout_factory::Redaction::Requirement,
            ),
            requirements: results,
        })
    })
}

#[tokio::test]
async fn events_memory_and_context_flow_through_the_loop() {
    let d = repo();
    // B's first attempt writes the wrong content; the second is right.
    let agent = Arc::new(RecordingAgent::new(FnAgent::new("fake", |ctx, ws| {
        let content = if ctx.task_id == "B" && ctx.attempt == 1 {
            "nope"
        } else {
            "ok"
        };
        std::fs::write(ws.root.join(format!("{}.txt", ctx.task_id)), content).unwrap();
        let mut r = AgentReport::completed("fake", "wrote it");
        r.usage = Usage {
            input_tokens: 100,
            output_tokens: 10,
            cost_usd: Some(0.01),
            wall_ms: 1,
        };
        Ok(r)
    })));
    let memory = Arc::new(RecordingMemory {
        pack: "DEC-1: keep it simple".into(),
        ..Default::default()
    });
    let events = Arc::new(VecEvents::default());
    let factory = Factory::new(d.path(), Config::default())
        .unwrap()
        .with_default_agent(agent.clone())
        .with_evaluator(Arc::new(evaluator()))
        .with_memory(memory.clone())
        .with_events(events.clone());
    let plan = Plan {
        tasks: vec![task("A", &[]), task("B", &["A"]), task("C", &[])],
    };
    let state = factory
        .run(
            plan,
            RunOptions {
                run_id: Some("t1".into()),
                jobs: Some(2),
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
    assert!(state.tasks.iter().all(|t| t.status == TaskPhase::Merged));
    assert_eq!(state.totals().attempts, 4);
    assert!((state.totals().cost_usd - 0.04).abs() < 1e-9);
    // B started only after A merged: A's file is in B's base.
    let b = state.task("B").unwrap();
    git(
        d.path(),
        &[
            "merge-base",
            "--is-ancestor",
            state.task("A").unwrap().merge_commit.as_deref().unwrap(),
            b.base.as_deref().unwrap(),
        ],
    );
    // The agent saw the context pack, and B's retry saw the redacted feedback.
    let calls = agent.calls();
    assert!(
        calls
            .iter()
            .all(|c| c.context_pack == "DEC-1: keep it simple")
    );
    let retry = calls
        .iter()
        .find(|c| c.task_id == "B" && c.attempt == 2)
        .unwrap();
    assert_eq!(
        retry.previous_feedback.as_deref(),
        Some("R-B: 1 of 1 trials failed: wrong content")
    );
    // Memory got every attempt's metrics and one lesson.
    assert_eq!(memory.attempts.lock().unwrap().len(), 4);
    let lessons = memory.lessons.lock().unwrap().clone();
    assert_eq!(lessons.len(), 1);
    assert_eq!(lessons[0].stage, "holdout");
    assert_eq!(lessons[0].fingerprint.len(), 16);
    // The event stream tells the story in order.
    let ev = events.take();
    assert!(matches!(
        ev.first(),
        Some(Event::RunStarted {
            tasks: 3,
            resumed: false,
            ..
        })
    ));
    assert!(matches!(
        ev.last(),
        Some(Event::RunFinished {
            merged: 3,
            failed: 0,
            ..
        })
    ));
    let pos = |f: &dyn Fn(&Event) -> bool| ev.iter().position(f).unwrap();
    let a_merged = pos(&|e| matches!(e, Event::Merged { task, .. } if task == "A"));
    let b_ready = pos(&|e| matches!(e, Event::TaskReady { task } if task == "B"));
    assert!(a_merged < b_ready);
    // Resuming a finished run redoes nothing.
    let again = factory.resume("t1", None).await.unwrap();
    assert_eq!(again.totals().attempts, 4);
    assert_eq!(agent.calls().len(), calls.len());
}

#[tokio::test]
async fn a_blocking_guard_finding_fails_the_attempt() {
    let d = repo();
    let agent = Arc::new(FnAgent::new("fake", |ctx, ws| {
        std::fs::write(ws.root.join(format!("{}.txt", ctx.task_id)), "ok").unwrap();
        Ok(AgentReport::completed("fake", "x"))
    }));
    let guard = FnGuard(|req: &lightsout_factory::GuardRequest| {
        if req.diff.contains("A.txt") {
            vec![GuardFinding {
                rule: "DEC-1".into(),
                message: "A.txt is settled".into(),
                blocking: true,
            }]
        } else {
            Vec::new()
        }
    });
    let mut config = Config::default();
    config.run.attempts = 2;
    let factory = Factory::new(d.path(), config)
        .unwrap()
        .with_default_agent(agent)
        .with_evaluator(Arc::new(evaluator()))
        .with_guard(Arc::new(guard))
        .with_memory(Arc::new(RecordingMemory::default()));
    let plan = Plan {
        tasks: vec![task("A", &[]), task("B", &["A"])],
    };
    let state = factory
        .run(
            plan,
            RunOptions {
                run_id: Some("g".into()),
                jobs: Some(1),
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
    let a = state.task("A").unwrap();
    assert_eq!(a.status, TaskPhase::Failed);
    assert_eq!(a.attempts[0].failed_stage.as_deref(), Some("guards"));
    assert_eq!(
        a.attempts[0].feedback.as_deref(),
        Some("DEC-1: A.txt is settled")
    );
    assert_eq!(state.task("B").unwrap().status, TaskPhase::Blocked);
    assert_eq!(
        git(d.path(), &["rev-list", "--count", "main"]),
        "1",
        "main untouched"
    );
}

#[test]
fn a_specs_decisions_are_imported_into_the_decision_memory_once() {
    let r = repo();
    let spec = r.path().join("links.md");
    std::fs::write(
        &spec,
        "---\nid: links\ntitle: Links\nkind: feature\nversion: 1\nstatus: ready\n---\n\
         ## Intent\nShort links.\n\n## Decisions\n\
         - DEC-1: SQLite stores the links, not Postgres, because one instance serves the team.\n\
         - DEC-2: Redirects use 302, because browsers cache 301 answers.\n",
    )
    .unwrap();
    let factory = Factory::new(r.path(), Config::default()).unwrap();
    assert_eq!(
        factory
            .import_spec_decisions(std::slice::from_ref(&spec))
            .unwrap(),
        2
    );
    // Unchanged decisions are not imported twice.
    assert_eq!(factory.import_spec_decisions(&[spec]).unwrap(), 0);
    let mem = lightsout_memory::Memory::open(r.path().join(".lightsout/memory.db")).unwrap();
    let records = mem.current_records().unwrap();
    let text: Vec<String> = records
        .iter()
        .map(|d| format!("{} {}", d.title, d.decision))
        .collect();
    assert_eq!(records.len(), 2, "{text:?}");
    assert!(text.iter().any(|t| t.contains("SQLite")), "{text:?}");
    assert!(text.iter().any(|t| t.contains("302")), "{text:?}");
}

/// Cuts a finished run's journal back to just before its checkout sync was confirmed, as a
/// `kill -9` inside `git read-tree -u` would leave it.
fn unconfirm_sync(repo: &std::path::Path, run: &str) {
    let path = repo.join(".lightsout/runs").join(run).join("journal.jsonl");
    let journal = std::fs::read_to_string(&path).unwrap();
    let mut kept = String::new();
    for l in journal.lines() {
        if !l.contains("\"checkout_synced\"") && !l.contains("\"run_finished\"") {
            kept.push_str(l);
            kept.push('\n');
        }
    }
    assert!(kept.contains("\"checkout_sync_started\""), "{journal}");
    std::fs::write(&path, kept).unwrap();
}

/// The index matches main, and the only differences are a person's: keep.txt edited and
/// notes.txt added.
fn only_the_users_edits_remain(repo: &std::path::Path) {
    assert_eq!(git(repo, &["diff", "--cached", "--name-status"]), "");
    assert_eq!(git(repo, &["diff", "--name-status"]), "M\tkeep.txt");
    let untracked = git(repo, &["ls-files", "--others", "--exclude-standard"]);
    assert_eq!(untracked, "notes.txt");
}

#[tokio::test]
async fn a_checkout_sync_killed_half_way_is_finished_on_resume_and_user_edits_survive() {
    let d = repo();
    for (f, body) in [
        ("old.txt", "old"),
        ("gone.txt", "gone"),
        ("keep.txt", "keep"),
    ] {
        std::fs::write(d.path().join(f), body).unwrap();
    }
    git(d.path(), &["add", "-A"]);
    git(d.path(), &["commit", "-qm", "base files"]);
    let base = git(d.path(), &["rev-parse", "HEAD"]);
    // A adds, modifies and deletes; B adds.
    let agent = Arc::new(FnAgent::new("fake", |ctx, ws| {
        std::fs::write(ws.root.join(format!("{}.txt", ctx.task_id)), "ok").unwrap();
        if ctx.task_id == "A" {
            std::fs::write(ws.root.join("old.txt"), "new").unwrap();
            std::fs::remove_file(ws.root.join("gone.txt")).unwrap();
        }
        Ok(AgentReport::completed("fake", "wrote it"))
    }));
    let factory = Factory::new(d.path(), Config::default())
        .unwrap()
        .with_default_agent(agent)
        .with_evaluator(Arc::new(evaluator()));
    let plan = Plan {
        tasks: vec![task("A", &[]), task("B", &["A"])],
    };
    let opts = RunOptions {
        run_id: Some("sync".into()),
        jobs: Some(1),
        ..RunOptions::default()
    };
    factory.run(plan, opts).await.unwrap();
    assert_eq!(git(d.path(), &["status", "--porcelain"]), "");

    // Killed after read-tree wrote some of main's files but before it replaced the index:
    // the index is still at the base, A.txt and old.txt are main's, gone.txt is already
    // deleted, and B.txt was not written yet. Meanwhile a person edited keep.txt and
    // added notes.txt.
    unconfirm_sync(d.path(), "sync");
    git(d.path(), &["read-tree", &base]);
    std::fs::remove_file(d.path().join("B.txt")).unwrap();
    std::fs::write(d.path().join("keep.txt"), "mine").unwrap();
    std::fs::write(d.path().join("notes.txt"), "mine").unwrap();
    let before = git(d.path(), &["status", "--porcelain"]);
    assert!(before.contains("?? A.txt"), "{before}");
    factory.resume("sync", None).await.unwrap();
    only_the_users_edits_remain(d.path());
    for (f, body) in [("A.txt", "ok"), ("B.txt", "ok"), ("old.txt", "new")] {
        assert_eq!(std::fs::read_to_string(d.path().join(f)).unwrap(), body);
    }
    assert!(!d.path().join("gone.txt").exists());
    assert_eq!(
        std::fs::read_to_string(d.path().join("keep.txt")).unwrap(),
        "mine"
    );

    // Killed after the index was replaced but before the journal said so.
    unconfirm_sync(d.path(), "sync");
    factory.resume("sync", None).await.unwrap();
    only_the_users_edits_remain(d.path());
}

/// Lessons one run records reach the next run's agent (in the instruction layer and the
/// task's context pack, once), and retire when the task passes; the layer is never
/// committed.
#[tokio::test]
async fn lessons_reach_the_next_run_and_retire_when_the_task_passes() {
    let d = repo();
    let config = Config::parse("[run]\nattempts = 1\n", d.path()).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let run = |id: &'static str, content: &'static str| {
        let seen = seen.clone();
        let agent = Arc::new(FnAgent::new("fake", move |ctx, ws| {
            let layer = std::fs::read_to_string(ws.root.join("AGENTS.md")).unwrap_or_default();
            seen.lock().unwrap().push((ctx.context_pack.clone(), layer));
            std::fs::write(ws.root.join(format!("{}.txt", ctx.task_id)), content).unwrap();
            Ok(AgentReport::completed("fake", "wrote it"))
        }));
        let factory = Factory::new(d.path(), config.clone())
            .unwrap()
            .with_default_agent(agent)
            .with_evaluator(Arc::new(evaluator()));
        async move {
            factory
                .run(
                    Plan {
                        tasks: vec![task("A", &[])],
                    },
                    RunOptions {
                        run_id: Some(id.into()),
                        // The third run builds the unchanged task again to see its lessons.
                        rebuild: true,
                        ..RunOptions::default()
                    },
                )
                .await
                .unwrap()
        }
    };
    let first = run("r1", "nope").await;
    assert_eq!(first.task("A").unwrap().status, TaskPhase::Failed);
    let second = run("r2", "ok").await;
    assert_eq!(second.task("A").unwrap().status, TaskPhase::Merged);
    let third = run("r3", "ok").await;
    assert_eq!(third.task("A").unwrap().status, TaskPhase::Merged);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let lesson = "R-A has failed with `holdout: wrong content`";
    assert!(
        !seen[0].0.contains(lesson),
        "no lesson before the first failure"
    );
    assert!(
        seen[1].0.contains(lesson),
        "run 2's context pack: {}",
        seen[1].0
    );
    assert!(
        seen[1].1.contains(lesson),
        "run 2's AGENTS.md: {}",
        seen[1].1
    );
    assert_eq!(
        seen[1].1.matches("## Project memory").count(),
        1,
        "{}",
        seen[1].1
    );
    assert!(
        !seen[2].0.contains(lesson),
        "retired once A passed: {}",
        seen[2].0
    );
    // The layer was never committed.
    let files = git(d.path(), &["ls-tree", "-r", "--name-only", "main"]);
    assert!(
        !files.contains("AGENTS.md") && !files.contains("CLAUDE.md"),
        "{files}"
    );
}
