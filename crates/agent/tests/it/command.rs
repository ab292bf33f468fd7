use crate::{fixture, workspace};
use lightsout_agent::{Agent, CommandAgent, Outcome, Preset, TaskContext};

fn ctx() -> TaskContext {
    TaskContext {
        task_id: "T1".into(),
        title: "Write hello".into(),
        requirement_ids: vec!["REQ-1".into()],
        attempt: 1,
        ..TaskContext::default()
    }
}

#[tokio::test]
async fn claude_preset_reads_the_prompt_on_stdin_and_parses_cost() {
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace(dir.path());
    let agent = CommandAgent::preset(Preset::ClaudeCode).with_program(fixture("fake-claude"));
    let r = agent.run(&ctx(), &ws).await.unwrap();
    assert_eq!(r.outcome, Outcome::Completed);
    assert_eq!(r.agent, "claude-code");
    assert!(!r.replay);
    assert_eq!(r.summary, "Created hello.txt.");
    assert_eq!(r.usage.input_tokens, 12_040);
    assert_eq!(r.usage.output_tokens, 512);
    assert_eq!(r.usage.cost_usd, Some(0.0375));
    let seen = std::fs::read_to_string(ws.root.join("prompt-seen.md")).unwrap();
    assert!(seen.contains("# Task T1: Write hello"));
    let transcript = std::fs::read_to_string(r.transcript.unwrap()).unwrap();
    assert!(transcript.contains("total_cost_usd"));
    assert!(
        !ws.root.join("transcript-T1-1.log").exists(),
        "transcripts stay out of the worktree"
    );
}

#[tokio::test]
async fn codex_preset_parses_jsonl_usage_and_reports_no_cost() {
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace(dir.path());
    let agent = CommandAgent::preset(Preset::Codex).with_program(fixture("fake-codex"));
    let r = agent.run(&ctx(), &ws).await.unwrap();
    assert_eq!(r.outcome, Outcome::Completed);
    assert_eq!(r.summary, "Wrote hello.txt.");
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (24_763, 122));
    assert_eq!(r.usage.cost_usd, None);
    assert!(ws.root.join("hello.txt").exists());
}

#[tokio::test]
async fn aider_preset_passes_the_prompt_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace(dir.path());
    let agent = CommandAgent::preset(Preset::Aider).with_program(fixture("fake-aider"));
    let r = agent.run(&ctx(), &ws).await.unwrap();
    assert_eq!(r.outcome, Outcome::Completed);
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (5700, 310));
    assert_eq!(r.usage.cost_usd, Some(0.02));
    let seen = std::fs::read_to_string(ws.root.join("prompt-seen.md")).unwrap();
    assert!(seen.contains("Requirements: REQ-1"));
}

#[tokio::test]
async fn the_environment_is_an_allowlist() {
    // SAFETY of the test: set_var is process-global; the variable name is unique to this test.
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace(dir.path());
    let agent = CommandAgent::new(
        "sh",
        vec!["-c".into(), "env > env.txt; pwd > pwd.txt".into()],
    );
    let r = agent.run(&ctx(), &ws).await.unwrap();
    assert_eq!(r.outcome, Outcome::Completed);
    let env = std::fs::read_to_string(ws.root.join("env.txt")).unwrap();
    let names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
    // Only PATH was allowed, plus the contract's own LIGHTSOUT_* variables; sh itself adds
    // PWD/SHLVL/_ and nothing from our environment.
    for n in &names {
        assert!(
            ["PATH", "PWD", "SHLVL", "_", "OLDPWD"].contains(n) || n.starts_with("LIGHTSOUT_"),
            "leaked {n}"
        );
    }
    assert!(env.contains("LIGHTSOUT_TASK_ID=T1\n"), "{env}");
    assert!(env.contains("LIGHTSOUT_ATTEMPT=1\n"), "{env}");
    assert!(!env.contains("CARGO_MANIFEST_DIR"));
    let pwd = std::fs::read_to_string(ws.root.join("pwd.txt")).unwrap();
    assert_eq!(
        std::fs::canonicalize(pwd.trim()).unwrap(),
        std::fs::canonicalize(&ws.root).unwrap()
    );
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let mut ws = workspace(dir.path());
    ws.limits.wall_ms = 300;
    // The grandchild records its pid, then both wait far past the limit.
    let agent = CommandAgent::new(
        "sh",
        vec![
            "-c".into(),
            "sleep 600 & echo $! > grandchild.pid; wait".into(),
        ],
    );
    let r = agent.run(&ctx(), &ws).await.unwrap();
    assert_eq!(r.outcome, Outcome::TimedOut);
    let pid = std::fs::read_to_string(ws.root.join("grandchild.pid")).unwrap();
    let pid: i32 = pid.trim().parse().unwrap();
    // The grandchild was killed with the group: it is gone or a zombie awaiting its reaper.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next();
    assert!(
        matches!(state, None | Some("Z")),
        "grandchild still running: {stat}"
    );
}

#[tokio::test]
async fn output_past_the_cap_is_cut_and_the_agent_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut ws = workspace(dir.path());
    ws.limits.output_bytes = 64 * 1024;
    let agent = CommandAgent::new("sh", vec!["-c".into(), "yes gigabytes".into()]);
    let r = agent.run(&ctx(), &ws).await.unwrap();
    assert_eq!(r.outcome, Outcome::OutputCapped);
    let len = std::fs::metadata(r.transcript.unwrap()).unwrap().len();
    assert!(
        len <= 64 * 1024 + 64,
        "transcript holds at most the cap: {len}"
    );
}

#[tokio::test]
async fn a_failing_agent_is_an_outcome_and_a_missing_one_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace(dir.path());
    let agent = CommandAgent::new("sh", vec!["-c".into(), "echo oops >&2; exit 3".into()]);
    let r = agent.run(&ctx(), &ws).await.unwrap();
    assert_eq!(
        r.outcome,
        Outcome::Failed {
            exit_code: Some(3),
            message: "exited with status 3: oops".into()
        }
    );
    let missing = CommandAgent::new("/nonexistent/agent", vec![]);
    let e = missing.run(&ctx(), &ws).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot start agent `/nonexistent/agent`")
    );
}
