//! The factory's own checks around each attempt, proven without any sandbox: in-process
//! agents write straight into the common git directory, and the factory finds, undoes and
//! audits each change, fails that attempt at stage `policy`, and the run goes on.

use lightsout_agent::testing::FnAgent;
use lightsout_agent::{AgentReport, TaskContext, Workspace};
use lightsout_factory::testing::FnEvaluator;
use lightsout_factory::{
    Config, Factory, Plan, RequirementResult, RunOptions, Task, TaskPhase, Verdict,
};
use lightsout_fence::audit::{AuditKind, read};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::git;

fn task(id: &str) -> Task {
    Task {
        id: id.into(),
        title: format!("task {id}"),
        kind: "code".into(),
        requirement_ids: vec![format!("R-{id}")],
        estimate_hours: 1.0,
        ..Task::default()
    }
}

fn passing() -> FnEvaluator<
    impl Fn(&lightsout_factory::EvalRequest) -> Result<Verdict, lightsout_factory::Error> + Send + Sync,
> {
    FnEvaluator(|req: &lightsout_factory::EvalRequest| {
        let results: Vec<RequirementResult> = req
            .requirements
            .iter()
            .chain(&req.regression)
            .map(|r| RequirementResult {
                id: r.clone(),
                trials: 1,
                passed: 1,
                category: None,
            })
            .collect();
        Ok(Verdict {
            passed: true,
            feedback: String::new(),
            requirements: results,
        })
    })
}

/// What a hostile agent of class `id` does, given the common git directory and a script
/// that leaves `marker` (and the environment it saw) when anything runs it.
fn hostile(id: &str, ws: &Workspace, common: &Path, script: &Path) {
    let s = script.display();
    let append_config = |text: String| {
        let p = common.join("config");
        let mut c = std::fs::read_to_string(&p).unwrap();
        c.push_str(&text);
        std::fs::write(p, c).unwrap();
    };
    match id {
        "main" => {
            let evil = git(
                &ws.root,
                &["commit-tree", "HEAD^{tree}", "-m", "unverified"],
            );
            git(&ws.root, &["update-ref", "refs/heads/main", &evil]);
        }
        "runref" => {
            git(
                &ws.root,
                &["update-ref", "refs/lightsout/t1/evil/x", "HEAD"],
            );
            git(&ws.root, &["update-ref", "refs/replace/abc", "HEAD"]);
        }
        "selfcommit" => {
            std::fs::write(ws.root.join("self.txt"), "mine\n").unwrap();
            git(&ws.root, &["add", "self.txt"]);
            git(&ws.root, &["commit", "-qm", "by the agent"]);
        }
        "fsmonitor" => append_config(format!("[core]\n\tfsmonitor = {s}\n")),
        "hooks" => {
            let hooks = common.join("hooks");
            for h in ["pre-commit", "post-commit", "reference-transaction"] {
                std::fs::copy(script, hooks.join(h)).unwrap();
            }
            append_config(format!("[core]\n\thooksPath = {}\n", hooks.display()));
        }
        "filter" => {
            append_config(format!(
                "[filter \"evil\"]\n\tclean = {s}\n\tsmudge = {s}\n[diff]\n\texternal = {s}\n"
            ));
            std::fs::write(common.join("info/attributes"), "* filter=evil\n").unwrap();
            std::fs::write(ws.root.join(".gitattributes"), "* filter=evil\n").unwrap();
        }
        "include" => {
            let inc = common.join("info/evil.cfg");
            std::fs::write(&inc, format!("[core]\n\tfsmonitor = {s}\n")).unwrap();
            append_config(format!("[include]\n\tpath = {}\n", inc.display()));
        }
        "big" => {
            // Sparse: 300 MB of apparent size, nothing written to disk.
            let f = std::fs::File::create(ws.root.join("big.bin")).unwrap();
            f.set_len(300 * 1024 * 1024).unwrap();
        }
        _ => std::fs::write(ws.root.join(format!("{id}.txt")), "ok\n").unwrap(),
    }
}

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join(".gitignore"), ".lightsout/\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "init"]);
    let marker = d.path().join("marker");
    let script = d.path().join("evil.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho ran >> '{m}'\nenv >> '{m}'\ncat\n",
            m = marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (d, repo, marker)
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn writes_into_the_git_directory_are_undone_audited_and_the_run_goes_on() {
    let (d, repo, marker) = setup();
    let common = repo.join(".git");
    let script = d.path().join("evil.sh");
    let config_before = std::fs::read(common.join("config")).unwrap();
    let hooks_before = snapshot(&common.join("hooks"));
    let info_before = snapshot(&common.join("info"));
    let classes = [
        "main",
        "runref",
        "selfcommit",
        "fsmonitor",
        "hooks",
        "filter",
        "include",
        "big",
    ];
    let c2 = common.clone();
    let agent = Arc::new(FnAgent::new("hostile", move |ctx: &TaskContext, ws| {
        hostile(&ctx.task_id, ws, &c2, &script);
        Ok(AgentReport::completed("hostile", "done"))
    }));
    let mut config = Config::default();
    config.run.attempts = 1;
    let factory = Factory::new(&repo, config)
        .unwrap()
        .with_default_agent(agent)
        .with_evaluator(Arc::new(passing()));
    let mut tasks: Vec<Task> = classes.iter().map(|c| task(c)).collect();
    tasks.push(task("good"));
    let state = factory
        .run(
            Plan { tasks },
            RunOptions {
                run_id: Some("t1".into()),
                jobs: Some(1),
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();

    for c in classes {
        let t = state.task(c).unwrap();
        assert_eq!(t.status, TaskPhase::Failed, "{c}: {t:?}");
        assert_eq!(t.attempts[0].failed_stage.as_deref(), Some("policy"), "{c}");
        assert!(
            t.attempts[0]
                .feedback
                .as_deref()
                .is_some_and(|f| f.starts_with("policy: ")),
            "{c}: {:?}",
            t.attempts[0].feedback
        );
    }
    let good = state.task("good").unwrap();
    assert_eq!(good.status, TaskPhase::Merged);
    // Nothing of the agent's ran, and the git directory is byte for byte what it was.
    assert!(
        !marker.exists(),
        "{}",
        std::fs::read_to_string(&marker).unwrap_or_default()
    );
    assert_eq!(std::fs::read(common.join("config")).unwrap(), config_before);
    assert_eq!(snapshot(&common.join("hooks")), hooks_before);
    assert_eq!(snapshot(&common.join("info")), info_before);
    // Main is the good task's merge, and nothing of the hostile ones is on it.
    assert_eq!(
        git(&repo, &["rev-parse", "main"]),
        good.merge_commit.clone().unwrap()
    );
    assert_eq!(git(&repo, &["rev-list", "--count", "main"]), "2");
    assert_eq!(
        git(
            &repo,
            &["for-each-ref", "refs/replace", "refs/lightsout/t1/evil"]
        ),
        ""
    );
    git(&repo, &["fsck", "--no-dangling"]);
    // The big file was never committed to any ref.
    let all = git(&repo, &["log", "--all", "--name-only", "--format="]);
    assert!(!all.contains("big.bin"), "{all}");
    // Each class left its evidence in the audit log.
    let entries = read(&repo.join(".lightsout/runs/t1/audit.jsonl")).unwrap();
    let hits = |task: &str| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e.kind == AuditKind::PolicyHit && e.task.as_deref() == Some(task))
            .map(|e| e.details["violation"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(hits("main"), ["git_ref_moved"]);
    assert_eq!(hits("runref"), ["git_ref_created", "git_ref_created"]);
    assert_eq!(hits("selfcommit"), ["git_ref_moved"]);
    assert_eq!(hits("fsmonitor"), ["git_file_changed"]);
    assert!(hits("hooks").len() >= 4, "{:?}", hits("hooks"));
    assert!(hits("filter").contains(&"git_file_changed".to_owned()));
    assert_eq!(hits("include"), ["git_file_changed", "git_file_changed"]);
    assert_eq!(hits("big"), ["file_too_large", "diff_too_large"]);
    assert!(hits("good").is_empty());
    let main_hit = entries
        .iter()
        .find(|e| e.task.as_deref() == Some("main") && e.kind == AuditKind::PolicyHit)
        .unwrap();
    assert_eq!(main_hit.details["name"], "refs/heads/main");
    assert_eq!(main_hit.details["restored"], true);
}

#[tokio::test]
async fn deleted_objects_are_linked_back_and_the_run_goes_on() {
    let (_d, repo, _marker) = setup();
    let common = repo.join(".git");
    let c2 = common.clone();
    let agent = Arc::new(FnAgent::new("hostile", move |ctx: &TaskContext, ws| {
        if ctx.task_id == "objects" {
            std::fs::remove_dir_all(c2.join("objects")).unwrap();
        } else {
            std::fs::write(ws.root.join("good.txt"), "ok\n").unwrap();
        }
        Ok(AgentReport::completed("hostile", "done"))
    }));
    let mut config = Config::default();
    config.run.attempts = 1;
    let factory = Factory::new(&repo, config)
        .unwrap()
        .with_default_agent(agent)
        .with_evaluator(Arc::new(passing()));
    let mut objects = task("objects");
    objects.estimate_hours = 5.0; // first on the critical path
    let state = factory
        .run(
            Plan {
                tasks: vec![objects, task("good")],
            },
            RunOptions {
                run_id: Some("t2".into()),
                jobs: Some(1),
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(state.task("objects").unwrap().status, TaskPhase::Failed);
    assert_eq!(state.task("good").unwrap().status, TaskPhase::Merged);
    git(&repo, &["fsck", "--no-dangling"]);
    let entries = read(&repo.join(".lightsout/runs/t2/audit.jsonl")).unwrap();
    let hit = entries
        .iter()
        .find(|e| e.kind == AuditKind::PolicyHit && e.task.as_deref() == Some("objects"))
        .expect("a policy hit for the deleted objects");
    assert_eq!(hit.details["violation"], "git_objects_deleted");
    assert_eq!(hit.details["restored"], true);
}

#[tokio::test]
async fn a_huge_summary_is_stored_once_in_the_transcript() {
    let (d, repo, _marker) = setup();
    let transcript = d.path().join("transcript.log");
    let huge = "x".repeat(4 * 1024 * 1024);
    std::fs::write(&transcript, &huge).unwrap();
    let t2 = transcript.clone();
    let agent = Arc::new(FnAgent::new("loud", move |_ctx: &TaskContext, ws| {
        std::fs::write(ws.root.join("a.txt"), "ok\n").unwrap();
        let mut r = AgentReport::completed("loud", "x".repeat(4 * 1024 * 1024));
        r.transcript = Some(t2.clone());
        Ok(r)
    }));
    let factory = Factory::new(&repo, Config::default())
        .unwrap()
        .with_default_agent(agent)
        .with_evaluator(Arc::new(passing()));
    let state = factory
        .run(
            Plan {
                tasks: vec![task("a")],
            },
            RunOptions {
                run_id: Some("t3".into()),
                jobs: Some(1),
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
    let summary = &state.task("a").unwrap().attempts[0].summary;
    assert!(
        summary.contains(&transcript.display().to_string()),
        "{}",
        &summary[summary.len() - 200..]
    );
    let run = repo.join(".lightsout/runs/t3");
    for f in ["journal.jsonl", "state.json"] {
        let len = std::fs::metadata(run.join(f)).unwrap().len();
        assert!(len < 256 * 1024, "{f} holds {len} bytes");
    }
}
