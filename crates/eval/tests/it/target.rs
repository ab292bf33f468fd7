//! Command targets and process steps: started on a free port, probed, and torn down with
//! their whole process group, even when a trial times out.

use crate::support::suite;
use lightsout_eval::{
    CommandTarget, FailureCategory, RunOptions, Runner, StepLibrary, TargetConfig,
};
use std::path::Path;
use std::time::{Duration, Instant};

/// True once `pid` is gone or a zombie (its parent was killed; only init can reap it).
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// Polls until `pid` is dead, for at most 5 s (SIGKILL delivery is asynchronous).
fn wait_dead(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if dead(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    dead(pid)
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_target_runs_on_a_free_port_and_its_group_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    // The target forks a long-lived child into its group, then serves HTTP on {port}.
    let cmd = format!(
        "sleep 300 & echo $! > {}; exec python3 -m http.server {{port}} --bind 127.0.0.1",
        pidfile.display()
    );
    let lib = StepLibrary::builtin();
    let s = suite(
        &[(
            "t.scenario.md",
            "## Scenario: up\nSatisfies: R\n\n- **GIVEN** the service is running\n- **WHEN** I send `GET /`\n- **THEN** the status is 200\n",
        )],
        &lib,
    );
    let mut c = CommandTarget::new(cmd);
    c.cwd = Some(dir.path().to_path_buf());
    let run = Runner::new(lib)
        .unwrap()
        .run(&s, &TargetConfig::Command(c), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        run.scenarios[0].stats.passes, 1,
        "{:?}",
        run.scenarios[0].trials
    );
    assert!(run.target.contains("http.server"));
    assert!(
        wait_dead(read_pid(&pidfile)),
        "the target's child outlived the run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_that_exits_early_is_an_infrastructure_error_with_its_output() {
    let lib = StepLibrary::builtin();
    let s = suite(
        &[(
            "t.scenario.md",
            "## Scenario: up\nSatisfies: R\n\n- **GIVEN** the service is running\n",
        )],
        &lib,
    );
    let c = CommandTarget::new("echo boom-on-{port} >&2; exit 3");
    let err = Runner::new(lib)
        .unwrap()
        .run(&s, &TargetConfig::Command(c), &RunOptions::default())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, lightsout_eval::Error::Target(_)));
    assert!(
        msg.contains("exited before it was ready") && msg.contains("boom-on-"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_steps_check_exit_code_and_output() {
    let lib = StepLibrary::builtin();
    let src = "## Scenario: p\nSatisfies: R\n\n- **WHEN** I run `printf 'hi there'; echo oops >&2; exit 4` as {out}\n- **THEN** the exit code is 4\n- **AND** the output is `hi there`\n- **AND** the error output contains `oops`\n- **WHEN** I run `test '{out}' = 'hi there'`\n- **THEN** the exit code is 0\n";
    let s = suite(&[("p.scenario.md", src)], &lib);
    let run = Runner::new(lib)
        .unwrap()
        .run(
            &s,
            &TargetConfig::Url("http://127.0.0.1:9".into()),
            &RunOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        run.scenarios[0].stats.passes, 1,
        "{:?}",
        run.scenarios[0].trials
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trial_timeout_kills_the_process_group_of_a_running_step() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let lib = StepLibrary::builtin();
    let src = format!(
        "## Scenario: hang\nSatisfies: R\n\n- **WHEN** I run `sleep 300 & echo $! > {}; wait`\n- **THEN** the exit code is 0\n",
        pidfile.display()
    );
    let s = suite(&[("h.scenario.md", &src)], &lib);
    let opts = RunOptions {
        trial_timeout: Duration::from_millis(500),
        ..RunOptions::default()
    };
    let run = Runner::new(lib)
        .unwrap()
        .run(&s, &TargetConfig::Url("http://127.0.0.1:9".into()), &opts)
        .await
        .unwrap();
    assert_eq!(
        run.scenarios[0].trials[0].failure,
        Some(FailureCategory::Timeout)
    );
    assert!(
        wait_dead(read_pid(&pidfile)),
        "the step's grandchild outlived the timeout"
    );
}
