use crate::workspace;
use lightsout_agent::{Agent, Outcome, ReplayAgent, TaskContext};
use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn replays_patches_per_attempt_and_labels_itself() {
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace(dir.path());
    git(&ws.root, &["init", "-q"]);
    std::fs::write(ws.root.join("a.txt"), "one\n").unwrap();
    let traj = dir.path().join("trajectory");
    std::fs::create_dir_all(traj.join("T1")).unwrap();
    std::fs::write(
        traj.join("T1/1.patch"),
        "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-one\n+two\n",
    )
    .unwrap();
    std::fs::write(
        traj.join("T1/1.json"),
        r#"{"summary":"changed one to two","input_tokens":100,"output_tokens":20,"cost_usd":0.001}"#,
    )
    .unwrap();
    let agent = ReplayAgent::new(&traj);
    let mut ctx = TaskContext {
        task_id: "T1".into(),
        attempt: 1,
        ..TaskContext::default()
    };
    let r = agent.run(&ctx, &ws).await.unwrap();
    assert_eq!(r.outcome, Outcome::Completed);
    assert!(r.replay);
    assert_eq!(r.label(), "replay (replay)");
    assert!(r.summary.starts_with("[replay] applied"));
    assert_eq!((r.usage.input_tokens, r.usage.cost_usd), (100, Some(0.001)));
    assert_eq!(
        std::fs::read_to_string(ws.root.join("a.txt")).unwrap(),
        "two\n"
    );

    // Applying attempt 1 again fails cleanly (all-or-nothing) and leaves the file alone.
    let r = agent.run(&ctx, &ws).await.unwrap();
    assert!(matches!(r.outcome, Outcome::Failed { .. }));
    assert_eq!(
        std::fs::read_to_string(ws.root.join("a.txt")).unwrap(),
        "two\n"
    );

    // No recorded attempt 2: the attempt fails, still labelled a replay.
    ctx.attempt = 2;
    let r = agent.run(&ctx, &ws).await.unwrap();
    assert!(r.replay && r.summary.starts_with("[replay] no recorded patch"));
    assert!(matches!(r.outcome, Outcome::Failed { .. }));
}

#[tokio::test]
async fn a_corrupt_trajectory_names_its_file_and_keeps_the_json_error() {
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace(dir.path());
    let traj = dir.path().join("trajectory");
    std::fs::create_dir_all(traj.join("T1")).unwrap();
    std::fs::write(traj.join("T1/1.json"), "{not json").unwrap();
    let ctx = TaskContext {
        task_id: "T1".into(),
        attempt: 1,
        ..TaskContext::default()
    };
    let e = ReplayAgent::new(&traj).run(&ctx, &ws).await.unwrap_err();
    let meta = traj.join("T1/1.json");
    assert!(
        e.to_string().starts_with(&format!(
            "invalid agent configuration: {}: ",
            meta.display()
        )),
        "{e}"
    );
    let source = std::error::Error::source(&e).expect("the JSON error is kept");
    assert!(source.is::<serde_json::Error>());
}
