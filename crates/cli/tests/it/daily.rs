//! End-to-end tests of the factory as a daily tool: a second run builds only what an edit
//! invalidated, main receives one squashed commit per task, and `gc` leaves nothing stale.

use crate::run::{Project, change_line, new_file, project};
use assert_cmd::Command;
use serde_json::Value;

/// REQ-1 ← REQ-2 ← REQ-3 (each depends on the one before), REQ-4 alone; every first
/// attempt passes.
fn chain_project() -> Project {
    let p = project(
        &[
            ("REQ-1", "alpha file", &[]),
            ("REQ-2", "beta file", &["REQ-1"]),
            ("REQ-3", "gamma file", &["REQ-2"]),
            ("REQ-4", "delta file", &[]),
        ],
        2,
        "../holdout",
    );
    p.holdout("REQ-1", "grep -qx alpha a.txt");
    p.holdout("REQ-2", "grep -qx beta b.txt");
    p.holdout("REQ-3", "grep -q gamma c.txt");
    p.holdout("REQ-4", "grep -qx delta d.txt");
    p.patch("REQ-1", 1, &new_file("a.txt", "alpha"));
    p.patch("REQ-2", 1, &new_file("b.txt", "beta"));
    p.patch("REQ-3", 1, &new_file("c.txt", "gamma"));
    p.patch("REQ-4", 1, &new_file("d.txt", "delta"));
    p
}

fn json_run(p: &Project, id: &str) -> Value {
    let out = p
        .run()
        .args(["--run-id", id, "--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

/// Task ids in the order the journal of `id` has entries of kind `entry` for them.
fn journaled(p: &Project, id: &str, entry: &str) -> Vec<String> {
    let mut v: Vec<String> = p
        .journal(id)
        .iter()
        .filter(|e| e["entry"] == entry)
        .map(|e| e["task"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

/// The commits main gained after `from`, oldest first: (subject, body with trailers).
fn commits_since(p: &Project, from: &str) -> Vec<String> {
    let out = p.git(&[
        "log",
        "--reverse",
        "--format=%B%x00",
        &format!("{from}..main"),
    ]);
    out.split('\0')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn trailer<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
}

fn report_statuses(p: &Project, id: &str) -> Vec<(String, String)> {
    let r: Value =
        serde_json::from_slice(&std::fs::read(p.run_dir(id).join("report.json")).unwrap()).unwrap();
    let mut v: Vec<(String, String)> = r["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn factory_refs(p: &Project) -> Vec<String> {
    p.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/heads/lightsout/",
        "refs/lightsout/",
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

fn worktrees(p: &Project) -> usize {
    p.git(&["worktree", "list", "--porcelain"])
        .lines()
        .filter(|l| l.starts_with("worktree "))
        .count()
}

/// First run: four tasks, four squashed commits on main since `init`, each with its
/// trailers.
fn assert_one_squashed_commit_per_task(p: &Project, first: &Value, init: &str) {
    assert_eq!(first["totals"]["merged"], 4);
    let msgs = commits_since(p, init);
    assert_eq!(msgs.len(), 4, "{msgs:#?}");
    let mut tasks: Vec<&str> = msgs
        .iter()
        .map(|m| trailer(m, "Lightsout-Task").unwrap())
        .collect();
    tasks.sort_unstable();
    assert_eq!(tasks, ["REQ-1", "REQ-2", "REQ-3", "REQ-4"]);
    for m in &msgs {
        assert!(!m.contains("  "), "a broken line in the message: {m}");
        assert_eq!(trailer(m, "Lightsout-Run"), Some("r1"), "{m}");
        let task = trailer(m, "Lightsout-Task").unwrap();
        assert_eq!(trailer(m, "Lightsout-Requirements"), Some(task), "{m}");
        assert!(
            trailer(m, "Lightsout-Gate").is_some_and(|g| g.starts_with("pass")),
            "{m}"
        );
    }
}

/// Linear history: every commit on main since `init` has one parent.
fn assert_linear_history(p: &Project, init: &str) {
    for line in p
        .git(&["rev-list", "--parents", &format!("{init}..main")])
        .lines()
    {
        assert_eq!(line.split(' ').count(), 2, "a merge commit on main: {line}");
    }
}

/// The attempts of run `r1` stay reachable under refs/lightsout/, not as branches; no
/// worktree left.
fn assert_attempts_kept_under_factory_refs(p: &Project) {
    let refs = factory_refs(p);
    assert!(
        refs.iter().all(|r| r.starts_with("refs/lightsout/r1/")),
        "{refs:#?}"
    );
    for id in ["REQ-1", "REQ-2", "REQ-3", "REQ-4"] {
        let kept = p.git(&["rev-parse", &format!("refs/lightsout/r1/{id}/merged")]);
        // The kept attempt is not on main (main has the squash), yet its tree is.
        let on_main = std::process::Command::new("git")
            .args(["merge-base", "--is-ancestor", &kept, "main"])
            .current_dir(p.repo())
            .status()
            .unwrap()
            .success();
        assert!(!on_main, "{id}'s attempt commit landed on main");
    }
    assert_eq!(worktrees(p), 1);
}

/// Second run (`r2`), nothing changed: nothing is built, main does not move from `head`.
fn assert_nothing_is_built(p: &Project, second: &Value, head: &str) {
    assert_eq!(second["totals"]["unchanged"], 4);
    assert_eq!(second["totals"]["merged"], 0);
    assert_eq!(second["totals"]["attempts"], 0);
    assert_eq!(
        journaled(p, "r2", "task_unchanged"),
        ["REQ-1", "REQ-2", "REQ-3", "REQ-4"]
    );
    assert!(journaled(p, "r2", "task_started").is_empty());
    assert_eq!(p.git(&["rev-parse", "main"]), head);
    assert!(
        report_statuses(p, "r2")
            .iter()
            .all(|(_, s)| s == "unchanged")
    );
}

/// Edits REQ-2's text (and its scenario and recorded work to match).
fn edit_req2(p: &Project) {
    let spec = p.repo().join("specs/demo.md");
    let text = std::fs::read_to_string(&spec).unwrap();
    let edited = text.replace(
        "The system SHALL write the beta file.",
        "The system SHALL write the beta file, second version.",
    );
    assert_ne!(text, edited);
    std::fs::write(&spec, edited).unwrap();
    p.commit_all("spec: REQ-2 asks for the second version");
    p.holdout("REQ-2", "grep -qx 'beta v2' b.txt");
    p.patch("REQ-2", 1, &change_line("b.txt", "beta", "beta v2", &[]));
    p.patch("REQ-3", 1, &change_line("c.txt", "gamma", "gamma v2", &[]));
}

/// After the edit, run `r3` built REQ-2 and its dependent REQ-3 again, REQ-1 and REQ-4
/// not; main since `before` has one commit per rebuilt task, in dependency order.
fn assert_only_req2_and_its_dependent_rebuilt(p: &Project, third: &Value, before: &str) {
    assert_eq!(third["totals"]["merged"], 2);
    assert_eq!(third["totals"]["unchanged"], 2);
    assert_eq!(journaled(p, "r3", "task_unchanged"), ["REQ-1", "REQ-4"]);
    assert_eq!(journaled(p, "r3", "task_started"), ["REQ-2", "REQ-3"]);
    assert_eq!(
        report_statuses(p, "r3"),
        [
            ("REQ-1".into(), "unchanged".into()),
            ("REQ-2".into(), "merged".into()),
            ("REQ-3".into(), "merged".into()),
            ("REQ-4".into(), "unchanged".into()),
        ]
    );
    // One commit per rebuilt task, in dependency order.
    let msgs = commits_since(p, before);
    let tasks: Vec<&str> = msgs
        .iter()
        .map(|m| trailer(m, "Lightsout-Task").unwrap())
        .collect();
    assert_eq!(tasks, ["REQ-2", "REQ-3"]);
    assert_eq!(p.git(&["show", "main:b.txt"]), "beta v2");
    assert_eq!(p.git(&["show", "main:c.txt"]), "gamma v2");
    assert_eq!(p.git(&["show", "main:a.txt"]), "alpha");
}

/// The holdout of run `r3` judged the rebuilt work with the unchanged tasks'
/// requirements, which are on main, as its regression bucket.
fn assert_the_unchanged_tasks_are_the_regression_bucket(p: &Project) {
    let started = p
        .journal("r3")
        .into_iter()
        .find(|e| e["entry"] == "task_started" && e["task"] == "REQ-2")
        .unwrap();
    let mut regression: Vec<&str> = started["regression"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    regression.sort_unstable();
    assert_eq!(regression, ["REQ-1", "REQ-4"]);
}

/// gc: no stale branch, ref, worktree or run directory is left.
fn assert_gc_leaves_nothing_stale(p: &Project) {
    Command::cargo_bin("lightsout")
        .unwrap()
        .current_dir(p.repo())
        .args(["gc", "--older-than", "0"])
        .assert()
        .code(0);
    assert_eq!(factory_refs(p), Vec::<String>::new());
    assert_eq!(worktrees(p), 1);
    let runs = std::fs::read_dir(p.repo().join(".lightsout/runs"))
        .unwrap()
        .count();
    assert_eq!(runs, 0);
}

#[test]
fn an_edit_rebuilds_only_the_invalidated_task_and_its_dependents() {
    let p = chain_project();
    let init = p.git(&["rev-parse", "main"]);

    let first = json_run(&p, "r1");
    assert_one_squashed_commit_per_task(&p, &first, &init);
    assert_linear_history(&p, &init);
    assert_attempts_kept_under_factory_refs(&p);

    let head = p.git(&["rev-parse", "main"]);
    let second = json_run(&p, "r2");
    assert_nothing_is_built(&p, &second, &head);

    edit_req2(&p);
    let before = p.git(&["rev-parse", "main"]);
    let third = json_run(&p, "r3");
    assert_only_req2_and_its_dependent_rebuilt(&p, &third, &before);
    assert_the_unchanged_tasks_are_the_regression_bucket(&p);

    assert_gc_leaves_nothing_stale(&p);
    // Main and the input keys survive gc: the next run still reuses everything.
    assert_eq!(p.git(&["show", "main:b.txt"]), "beta v2");
    let fourth = json_run(&p, "r4");
    assert_eq!(fourth["totals"]["unchanged"], 4);
}

/// `[gc] keep_days` is the retention; an unknown key under `[gc]` is refused with the
/// valid one named. A failed task's worktree and branch stay after its run, for a person to
/// look at, and `gc` removes them with the run.
#[test]
fn gc_keeps_young_runs_and_its_section_is_strict() {
    let p = chain_project();
    // REQ-4's agent never produces anything: it fails.
    std::fs::remove_dir_all(p.root.join("trajectory/REQ-4")).unwrap();
    p.run().args(["--run-id", "r1"]).assert().code(1);
    assert!(p.run_dir("r1").join("wt/REQ-4").is_dir());
    p.git(&["rev-parse", "--verify", "refs/heads/lightsout/r1/REQ-4"]);
    assert_eq!(worktrees(&p), 2);
    let gc = || {
        let mut c = Command::cargo_bin("lightsout").unwrap();
        c.current_dir(p.repo()).arg("gc");
        c
    };
    let out = gc().args(["--format", "json"]).assert().code(0);
    let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(report["kept"], serde_json::json!(["r1"]));
    assert!(!factory_refs(&p).is_empty(), "a young run was pruned");
    let toml = p.repo().join("lightsout.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}\n[gc]\nkeep_dayz = 0\n")).unwrap();
    let err = gc().assert().code(2).get_output().stderr.clone();
    let err = String::from_utf8_lossy(&err);
    assert!(
        err.contains("keep_dayz") && err.contains("keep_days"),
        "{err}"
    );
    std::fs::write(&toml, format!("{text}\n[gc]\nkeep_days = 0\n")).unwrap();
    gc().assert().code(0);
    assert_eq!(factory_refs(&p), Vec::<String>::new());
    assert_eq!(worktrees(&p), 1);
    assert!(!p.run_dir("r1").exists());
}
