//! End-to-end tests of the adapter contract (docs/agents.md) with the real binary: the
//! documented Python adapter, extracted from the page as printed, run by `lightsout run`
//! behind the fence.

use crate::run::{project, task};
use std::path::Path;
use std::time::Duration;

/// The first `` ```python `` code block of `docs/agents.md`, the adapter it tells users to
/// save as `lightsout-agent.py`.
pub(crate) fn documented_python_adapter() -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/agents.md"))
            .unwrap();
    let (_, rest) = doc
        .split_once("```python\n")
        .expect("docs/agents.md has the Python adapter");
    rest.split_once("```").unwrap().0.to_owned()
}

/// The `[agent.mine]` profile as the page prints it.
fn documented_profile() -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/agents.md"))
            .unwrap();
    let (_, rest) = doc
        .split_once("and name it in `lightsout.toml`:\n\n```toml\n")
        .expect("docs/agents.md names the adapter's profile");
    rest.split_once("```").unwrap().0.to_owned()
}

#[test]
fn the_documented_python_adapter_works_as_printed() {
    let p = project(
        &[("REQ-1", "alpha notes", &[]), ("REQ-2", "beta notes", &[])],
        2,
        "../holdout",
    );
    // REQ-1 passes only once the adapter has read the feedback of its first attempt;
    // REQ-2 passes at once.
    p.holdout(
        "REQ-1",
        "grep -q 'Requirements: REQ-1' REQ-1.md && grep -q 'after this feedback' REQ-1.md",
    );
    p.holdout("REQ-2", "grep -qx '# beta notes' REQ-2.md");
    std::fs::write(
        p.repo().join("lightsout-agent.py"),
        documented_python_adapter(),
    )
    .unwrap();
    let config = std::fs::read_to_string(p.repo().join("lightsout.toml")).unwrap();
    let config = config.replace("[agents]\ndefault = \"replay\"\n", &documented_profile());
    assert!(config.contains("[agent.mine]"), "{config}");
    std::fs::write(p.repo().join("lightsout.toml"), config).unwrap();
    p.commit_all("the documented adapter");

    let out = p
        .run()
        .args(["--run-id", "py", "--format", "json"])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report = p.report("py");
    let r1 = task(&report, "REQ-1");
    assert_eq!(r1["status"], "merged", "{stderr}");
    assert_eq!(r1["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(r1["attempts"][0]["failed_stage"], "holdout");
    assert_eq!(r1["attempts"][1]["summary"], "wrote the notes");
    assert_eq!(r1["attempts"][1]["usage"]["cost_usd"], 0.0);
    assert_eq!(task(&report, "REQ-2")["status"], "merged");
    // The feedback the adapter read is the redacted one, and the notes reached main.
    let notes = p.git(&["show", "main:REQ-1.md"]);
    assert!(notes.contains("Attempt 2, after this feedback:"), "{notes}");
    assert!(notes.contains("REQ-1"), "{notes}");
    assert!(!notes.contains(crate::run::CANARY), "{notes}");
    // The task file the adapter read is schema v1 and lies outside the worktree.
    let task_file = p.run_dir("py").join("artifacts/REQ-1/task-REQ-1-2.json");
    let t: serde_json::Value = serde_json::from_slice(&std::fs::read(&task_file).unwrap()).unwrap();
    assert_eq!(t["schema"], "lightsout.task/v1");
    assert_eq!(t["attempt"], 2);
    assert!(t["feedback"].as_str().unwrap().contains("REQ-1"), "{t}");
}

#[test]
fn init_with_the_command_agent_writes_the_documented_adapter() {
    let tmp = tempfile::tempdir().unwrap();
    assert_cmd::Command::cargo_bin("lightsout")
        .unwrap()
        .current_dir(tmp.path())
        .args(["init", "shop", "--agent", "command"])
        .assert()
        .success();
    let repo = tmp.path().join("shop");
    assert_eq!(
        std::fs::read_to_string(repo.join("lightsout-agent.py")).unwrap(),
        documented_python_adapter()
    );
    let config = std::fs::read_to_string(repo.join("lightsout.toml")).unwrap();
    assert!(config.contains("default = \"mine\""), "{config}");
    assert!(
        config.contains("[agent.mine]\npreset = \"command\""),
        "{config}"
    );
}
