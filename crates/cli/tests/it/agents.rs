//! End-to-end tests of the adapter contract (docs/agents.md) with the real binary: the
//! documented Python adapter, extracted from the page as printed, run by `lightsout run`
//! behind the fence.

use crate::run::{project, task};
use std::fmt::Write as _;
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

/// A repository whose `lightsout.toml` has the documented adapter as `good` and three broken
/// ones (`lazy` edits nothing, `stuck` never ends, `crash` exits 3), committed.
fn check_project() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("lightsout-agent.py"), documented_python_adapter()).unwrap();
    std::fs::write(repo.join("lazy.sh"), "echo 'nothing to do'\n").unwrap();
    std::fs::write(repo.join("stuck.sh"), "echo thinking; sleep 600 & wait\n").unwrap();
    std::fs::write(
        repo.join("crash.sh"),
        "echo 'starting' ; echo 'error: model not configured' >&2; exit 3\n",
    )
    .unwrap();
    let mut config = String::from(
        "[agents]\ndefault = \"good\"\n\n[agent.good]\npreset = \"command\"\nprogram = \"python3\"\n\
         args = [\"lightsout-agent.py\"]\n\n[agent.ghost]\npreset = \"claude-code\"\n\
         program = \"claude-not-installed-here\"\n",
    );
    for name in ["lazy", "stuck", "crash"] {
        writeln!(
            config,
            "\n[agent.{name}]\npreset = \"command\"\nprogram = \"sh\"\nargs = [\"{name}.sh\"]"
        )
        .unwrap();
    }
    std::fs::write(repo.join("lightsout.toml"), config).unwrap();
    lightsout_factory::testing::git(&repo, &["init", "-q", "-b", "main"]);
    lightsout_factory::testing::git(&repo, &["add", "-A"]);
    lightsout_factory::testing::git(&repo, &["commit", "-qm", "init"]);
    tmp
}

fn agent_check(tmp: &tempfile::TempDir, profile: &str) -> (Option<i32>, serde_json::Value) {
    let out = assert_cmd::Command::cargo_bin("lightsout")
        .unwrap()
        .current_dir(tmp.path().join("repo"))
        .args([
            "agent",
            "check",
            profile,
            "--wall-ms",
            "3000",
            "--format",
            "json",
        ])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), v)
}

/// `(check, status)` of each item.
fn statuses(v: &serde_json::Value) -> Vec<(String, String)> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["check"].as_str().unwrap().to_owned(),
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn status_of(v: &serde_json::Value, check: &str) -> (String, String) {
    let i = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["check"] == check)
        .unwrap();
    (
        i["status"].as_str().unwrap().to_owned(),
        i["detail"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn agent_check_passes_the_documented_adapter_and_diagnoses_broken_ones() {
    let tmp = check_project();
    let (code, good) = agent_check(&tmp, "good");
    assert_eq!(code, Some(0), "{good}");
    assert!(statuses(&good).iter().all(|(_, s)| s == "pass"), "{good}");
    assert!(
        status_of(&good, "edits the worktree")
            .1
            .contains("CHECK-1.md"),
        "{good}"
    );

    // Edits nothing: only that check fails, and it says why in words.
    let (code, lazy) = agent_check(&tmp, "lazy");
    assert_eq!(code, Some(1));
    assert_eq!(status_of(&lazy, "edits the worktree").0, "fail", "{lazy}");
    assert!(
        status_of(&lazy, "edits the worktree")
            .1
            .contains("unchanged"),
        "{lazy}"
    );
    assert_eq!(status_of(&lazy, "exits cleanly").0, "pass", "{lazy}");
    assert_eq!(status_of(&lazy, "reports usage").0, "warn", "{lazy}");

    // Never ends: killed at the wall limit.
    let (code, stuck) = agent_check(&tmp, "stuck");
    assert_eq!(code, Some(1));
    let (s, d) = status_of(&stuck, "finishes within the wall limit");
    assert_eq!(s, "fail", "{stuck}");
    assert!(d.contains("still running after 3000 ms"), "{d}");
    assert_eq!(status_of(&stuck, "starts").0, "pass");

    // Crashes: the exit status and its message.
    let (code, crash) = agent_check(&tmp, "crash");
    assert_eq!(code, Some(1));
    let (s, d) = status_of(&crash, "exits cleanly");
    assert_eq!(s, "fail", "{crash}");
    assert!(
        d.contains("status 3") && d.contains("model not configured"),
        "{d}"
    );
    assert_eq!(
        status_of(&crash, "finishes within the wall limit").0,
        "pass"
    );

    // Not installed: it does not start, and nothing else is claimed.
    let (code, ghost) = agent_check(&tmp, "ghost");
    assert_eq!(code, Some(1));
    let (s, d) = status_of(&ghost, "starts");
    assert_eq!(s, "fail");
    assert!(
        d.contains("claude-not-installed-here") && d.contains("not found"),
        "{d}"
    );
    assert!(
        statuses(&ghost)[1..].iter().all(|(_, s)| s == "skipped"),
        "{ghost}"
    );

    // A profile that does not exist: the check itself cannot run (exit 2), and the error
    // names the nearest profile.
    let out = assert_cmd::Command::cargo_bin("lightsout")
        .unwrap()
        .current_dir(tmp.path().join("repo"))
        .args(["agent", "check", "goood"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[agent.goood]") && err.contains("did you mean `good`"),
        "{err}"
    );

    // The check left no worktree behind.
    let list = lightsout_factory::testing::git(&tmp.path().join("repo"), &["worktree", "list"]);
    assert_eq!(list.lines().count(), 1, "{list}");
}

/// A project whose only task never passes the holdout, run by the `sh` script `agent`
/// (saved beside the repository) with `format`, under a task cap of `usd` and 3 attempts,
/// with `[prices]` for the model `fake-1`: $5 per million input and $50 per million output
/// tokens.
fn capped_project(agent: &str, format: &str, usd: f64) -> crate::run::Project {
    let p = project(&[("REQ-1", "alpha file", &[])], 1, "../holdout");
    p.holdout("REQ-1", "grep -qx alpha a.txt");
    std::fs::write(p.root.join("agent.sh"), agent).unwrap();
    std::fs::write(
        p.repo().join("lightsout.toml"),
        format!(
            "[run]\njobs = 1\nattempts = 3\n\n[agents]\ndefault = \"spender\"\n\n\
             [agent.spender]\npreset = \"command\"\nprogram = \"sh\"\nargs = [\"{}\"]\n\
             format = \"{format}\"\n\n\
             [budget.task]\nusd = {usd}\n\n\
             [prices.\"fake-1\"]\ninput = 5.0\noutput = 50.0\n\n\
             [holdout]\npath = \"../holdout\"\ncommand = \"sh check.sh\"\n",
            p.root.join("agent.sh").display()
        ),
    )
    .unwrap();
    p.commit_all("a spending agent");
    p
}

/// The USD each attempt of `id` was charged.
fn attempt_costs(report: &serde_json::Value, id: &str) -> Vec<f64> {
    task(report, id)["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["usage"]["cost_usd"].as_f64().unwrap_or(0.0))
        .collect()
}

/// A streaming agent that keeps spending: a usage report line (tokens only, priced by
/// `[prices]` at $0.01 a step) every 50 ms, forever. It is stopped before its next step
/// could pass the task cap, so the cap is never exceeded, and the task stops there.
#[test]
fn a_streaming_agent_that_keeps_spending_never_exceeds_the_task_cap() {
    let agent = "i=0\nwhile :; do\n  i=$((i+1))\n  echo \"working, step $i\"\n  \
                 printf '{\"schema\":\"lightsout.report/v1\",\"model\":\"fake-1\",\
                 \"input_tokens\":%d,\"output_tokens\":%d}\\n' $((i*1000)) $((i*100))\n  \
                 sleep 0.05\ndone\n";
    let p = capped_project(agent, "plain", 0.075);
    let out = p
        .run()
        .args(["--run-id", "stream", "--format", "json"])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report = p.report("stream");
    let t = task(&report, "REQ-1");
    assert_eq!(t["status"], "failed", "{stderr}");
    let costs = attempt_costs(&report, "REQ-1");
    assert_eq!(costs.len(), 1, "the task stops at the cap: {costs:?}");
    let spent: f64 = costs.iter().sum();
    assert!(spent > 0.0 && spent <= 0.075, "{costs:?}");
    // Said as it happened, in the task's failure and in the journal.
    let why = t["failure"].as_str().unwrap_or_default();
    assert!(
        why.contains("stopped at $0.07 of cap $0.075 (usd budget of the task REQ-1)"),
        "{why}"
    );
    let journal = std::fs::read_to_string(p.run_dir("stream").join("journal.jsonl")).unwrap();
    assert!(
        journal.contains("stopped at $0.07 of cap $0.075"),
        "{journal}"
    );
    let out = assert_cmd::Command::cargo_bin("lightsout")
        .unwrap()
        .current_dir(p.repo())
        .args(["report", "stream", "--format", "json"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("stopped at $0.07 of cap $0.075"), "{shown}");
}

/// A non-streaming agent reports its spend ($0.06) only when it ends: the cap ($0.10) is
/// checked before each call with a reservation (by default the cap over the 3 attempts,
/// $0.033333), so it is passed by less than one reservation, and the report says so.
#[test]
fn a_non_streaming_agent_exceeds_the_cap_by_at_most_one_reservation_and_says_so() {
    let agent = "echo note > \"note-$LIGHTSOUT_ATTEMPT.txt\"\n\
                 echo '{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\
                 \"result\":\"wrote a note\",\"total_cost_usd\":0.06,\
                 \"usage\":{\"input_tokens\":100,\"output_tokens\":50}}'\n";
    let p = capped_project(agent, "claude-json", 0.10);
    let out = p
        .run()
        .args(["--run-id", "end", "--format", "json"])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report = p.report("end");
    let t = task(&report, "REQ-1");
    assert_eq!(t["status"], "failed", "{stderr}");
    let costs = attempt_costs(&report, "REQ-1");
    // $0.06 fits; $0.06 + the $0.033333 reservation fits, and that call ends at $0.12.
    assert_eq!(costs, vec![0.06, 0.06], "{stderr}");
    let spent: f64 = costs.iter().sum();
    assert!(spent <= 0.10 + 0.033_334, "{costs:?}");
    let why = t["failure"].as_str().unwrap_or_default();
    assert!(
        why.contains(
            "spent $0.12 of cap $0.10 (usd budget of the task REQ-1): the call reported $0.06 \
             when it ended, after reserving $0.033333; over the cap by $0.02, within one \
             reservation"
        ),
        "{why}"
    );
}
