//! A fleet end to end: the bundled example planned by `lightsout run --store`, built by three
//! `lightsout worker --repo` processes, each with its own clone of one bare remote, against the
//! real Postgres test server (`LIGHTSOUT_TEST_PG_URL`, started by `scripts/pg-start`; without
//! it this test fails). One worker is killed with SIGKILL in the middle of a task.

use assert_cmd::Command;
use lightsout_factory::testing::git;
use lightsout_fleet::testing::fresh_database;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Std};
use std::time::{Duration, Instant};

const RUN: &str = "fleet1";
const TASKS: [&str; 5] = ["REQ-1", "REQ-2", "REQ-3", "REQ-4", "REQ-5"];

/// The lightened bundled example ([`crate::lightened_example`]) pushed to a bare remote.
/// Returns (the seed checkout, the remote, the holdout).
fn example_remote(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (seed, holdout) = crate::lightened_example(dir);
    let remote = dir.join("remote.git");
    git(
        dir,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            remote.to_str().unwrap(),
        ],
    );
    git(
        &seed,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    git(&seed, &["push", "-q", "origin", "main"]);
    (seed, remote, holdout)
}

fn worker(url: &str, remote: &Path, holdout: &Path, dir: &Path, name: &str) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Std::new(env!("CARGO_BIN_EXE_lightsout"))
        .args(["worker", "--store", url, "--repo"])
        .arg(remote)
        .arg("--workdir")
        .arg(dir.join(name))
        .arg("--holdout")
        .arg(holdout)
        // A lease long enough for a heartbeat (every third of it) to get through on a loaded
        // machine, short enough that the killed worker's task is claimed again soon.
        .args(["--jobs", "1", "--lease-ms", "10000", "--poll-ms", "200"])
        .args(["--name", name])
        .env_remove("LIGHTSOUT_HOLDOUT")
        .env("LIGHTSOUT_BIN", env!("CARGO_BIN_EXE_lightsout"))
        .env("LIGHTSOUT_TRIALS", crate::LIGHT_TRIALS)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        // Its own process group: the SIGKILL below takes the worker with its agents, checks
        // and holdout runner, as a machine that dies would.
        .process_group(0)
        .spawn()
        .unwrap()
}

fn status(url: &str) -> String {
    let out = Command::cargo_bin("lightsout")
        .unwrap()
        .args(["worker", "status", "--store", url, RUN])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The row of `task` in `worker status`: (status, worker, attempts).
fn row(shown: &str, task: &str) -> Option<(String, String, u32)> {
    full_row(shown, task).map(|(s, w, _, a)| (s, w, a))
}

/// The row of `task` in `worker status`: (status, worker, fencing token, attempts).
fn full_row(shown: &str, task: &str) -> Option<(String, String, u64, u32)> {
    let l = shown
        .lines()
        .find(|l| l.split_whitespace().next() == Some(task))?;
    let f: Vec<&str> = l.split_whitespace().collect();
    Some((
        f[1].to_owned(),
        f[2].to_owned(),
        f[3].parse().unwrap(),
        f[4].parse().unwrap(),
    ))
}

fn logs(dir: &Path) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for n in ["w1", "w2", "w3"] {
        let log = std::fs::read_to_string(dir.join(format!("{n}.log"))).unwrap_or_default();
        let _ = write!(out, "--- {n}\n{log}");
    }
    out
}

/// Plans and enqueues the example's run in the store at `url` from `seed` (the plan goes to
/// the remote): 5 tasks, only REQ-1 ready.
fn plan_fleet_run(url: &str, seed: &Path) {
    let out = Command::cargo_bin("lightsout")
        .unwrap()
        .current_dir(seed)
        .env_remove("LIGHTSOUT_HOLDOUT")
        .args([
            "run",
            "--store",
            url,
            "--run-id",
            RUN,
            "specs/url-shortener.md",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("5 task(s) planned, 1 ready"), "{text}");
    assert!(text.contains("lightsout worker --store"), "{text}");
    let shown = status(url);
    assert_eq!(row(&shown, "REQ-1").unwrap().0, "ready", "{shown}");
    assert!(
        row(&shown, "REQ-2").is_none(),
        "REQ-2 waits on REQ-1: {shown}"
    );
}

/// Waits until a worker is inside an attempt at REQ-4, then kills it and its children
/// (SIGKILL to its process group). Returns the victim's name.
fn kill_the_worker_inside_req4(url: &str, dir: &Path, workers: &mut [(String, Child)]) -> String {
    let victim = loop {
        if let Some((st, w, token, _)) = full_row(&status(url), "REQ-4")
            && st == "claimed"
        {
            // The worker's run of this claim (`<run>-<task>-<token>`) is inside an attempt.
            let name = w.split('/').next().unwrap().to_owned();
            let journal = dir.join(&name).join(format!(
                "job-0/.lightsout/runs/{RUN}-REQ-4-{token}/journal.jsonl"
            ));
            if std::fs::read_to_string(&journal).is_ok_and(|j| j.contains("\"attempt_started\"")) {
                break name;
            }
        }
        for (n, w) in workers.iter_mut() {
            assert!(
                w.try_wait().unwrap().is_none(),
                "worker {n} ended before REQ-4 was claimed:\n{}",
                logs(dir)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let pid = workers.iter().find(|(n, _)| *n == victim).unwrap().1.id();
    let ok = Std::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status()
        .unwrap();
    assert!(ok.success());
    victim
}

/// The surviving workers ended cleanly, every task is done in the store, and REQ-4 was
/// claimed again by another worker.
fn assert_every_task_done_and_req4_reclaimed(
    url: &str,
    dir: &Path,
    victim: &str,
    codes: &[(String, Option<i32>)],
) {
    let shown = status(url);
    let all = logs(dir);
    assert!(
        codes.iter().all(|(_, c)| *c == Some(0)),
        "{codes:?}\n{shown}\n{all}"
    );
    for task in TASKS {
        let (st, _, _) = row(&shown, task).unwrap_or_else(|| panic!("{task}: {shown}\n{all}"));
        assert_eq!(st, "done", "{task}: {shown}\n{all}");
    }
    let (_, w, attempts) = row(&shown, "REQ-4").unwrap();
    assert!(attempts >= 2, "REQ-4 was claimed again: {shown}");
    assert!(!w.starts_with(&format!("{victim}/")), "{shown}");
}

/// `lightsout status --run` shows every task's journal from the store: each task's entries
/// include the `merged` of the worker that merged it, and REQ-4's also the killed worker's
/// claim run up to its task start (each entry goes to the store before the next is written).
fn assert_the_store_holds_every_workers_journal(url: &str, victim: &str) {
    let out = Command::cargo_bin("lightsout")
        .unwrap()
        .args(["status", "--store", url, "--run", RUN, "--journal", "1000"])
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = j["runs"][0]["journal"].as_array().unwrap();
    let kinds = |task: &str, by: &dyn Fn(&str) -> bool| -> Vec<String> {
        rows.iter()
            .filter(|r| r["task"] == task && by(r["worker"].as_str().unwrap()))
            .map(|r| r["entry"]["entry"].as_str().unwrap().to_owned())
            .collect()
    };
    let killed = |w: &str| w.starts_with(&format!("{victim}/"));
    for task in TASKS {
        let all = kinds(task, &|_| true);
        assert_eq!(
            all.first().map(String::as_str),
            Some("run_started"),
            "{task}: {all:?}"
        );
        assert!(all.iter().any(|k| k == "merged"), "{task}: {all:?}");
    }
    let before_kill = kinds("REQ-4", &killed);
    assert!(
        before_kill.iter().any(|k| k == "task_started"),
        "the killed worker's REQ-4 entries: {before_kill:?}"
    );
    assert!(
        !before_kill.iter().any(|k| k == "merged"),
        "{before_kill:?}"
    );
}

/// The remote's main: one squash commit per task of the run, each exactly once, and the
/// tree the trajectory builds (`expected`); no task branch left.
fn assert_remote_main(dir: &Path, remote: &Path, expected: &str) {
    let all = logs(dir);
    let bare = |args: &[&str]| {
        let mut full = vec!["--git-dir", remote.to_str().unwrap()];
        full.extend_from_slice(args);
        git(dir, &full)
    };
    let trailers = bare(&[
        "log",
        "--first-parent",
        "--format=%(trailers:key=Lightsout-Fleet-Run,valueonly,separator=%x2C) %(trailers:key=Lightsout-Fleet-Task,valueonly,separator=%x2C)",
        "main",
    ]);
    let mut merged: Vec<&str> = trailers
        .lines()
        .filter_map(|l| l.trim().strip_prefix(&format!("{RUN} ")))
        .collect();
    merged.sort_unstable();
    assert_eq!(merged, TASKS, "every task merged exactly once:\n{trailers}");
    assert_eq!(bare(&["rev-parse", "main^{tree}"]), expected, "{all}");
    // Each task's branch was pushed while it was merged and deleted once it was on main
    // (the re-claimed REQ-4's too: its new holder pushed its own head over it, then deleted
    // it); none is left.
    let branches = bare(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/heads/lightsout/",
    ]);
    assert_eq!(branches, "", "no task branch is left after its merge");
}

/// Three workers build the example from one bare remote and one Postgres; the one holding
/// REQ-4 is killed with SIGKILL during its attempt. Its lease lapses, another worker claims
/// REQ-4 again under a higher token, and every task is merged on the remote's main exactly
/// once, with the tree the trajectory builds; the store holds every worker's journal.
#[test]
#[allow(clippy::print_stderr)] // the timings go to the test's output, for the record
fn three_workers_build_the_example_through_a_bare_remote_and_survive_a_kill() {
    let _example = crate::bundled_example_lock();
    let started = Instant::now();
    let url = fresh_database("fleet");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (seed, remote, holdout) = example_remote(dir);
    let expected = crate::trajectory_tree(&seed, "HEAD");
    plan_fleet_run(&url, &seed);

    let mut workers: Vec<(String, Child)> = ["w1", "w2", "w3"]
        .iter()
        .map(|n| ((*n).to_owned(), worker(&url, &remote, &holdout, dir, n)))
        .collect();
    let victim = kill_the_worker_inside_req4(&url, dir, &mut workers);
    let killed_at = started.elapsed();
    let mut codes = Vec::new();
    for (n, mut w) in workers {
        let status = w.wait().unwrap();
        if n != victim {
            codes.push((n, status.code()));
        }
    }
    let finished_at = started.elapsed();
    assert_every_task_done_and_req4_reclaimed(&url, dir, &victim, &codes);
    assert_remote_main(dir, &remote, &expected);
    assert_the_store_holds_every_workers_journal(&url, &victim);
    eprintln!(
        "fleet e2e: worker {victim} killed at {:.1} s; all 5 tasks merged at {:.1} s",
        killed_at.as_secs_f64(),
        finished_at.as_secs_f64()
    );
}

/// `run --store` with a `SQLite` store: the plan goes to the remote, the ready task to the
/// store, and a second plan under the same run id is refused (a run's plan never changes).
#[test]
fn run_store_pushes_the_plan_once_and_enqueues_the_ready_tasks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (seed, remote, _holdout) = example_remote(dir);
    let store = dir.join("claims.db");
    let plan = |run: &str| {
        Command::cargo_bin("lightsout")
            .unwrap()
            .current_dir(&seed)
            .env_remove("LIGHTSOUT_HOLDOUT")
            .args(["run", "--store", store.to_str().unwrap(), "--run-id", run])
            .args(["--format", "json", "specs/url-shortener.md"])
            .output()
            .unwrap()
    };
    let out = plan("r1");
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["tasks"], 5, "{json:#}");
    assert_eq!(json["enqueued"], serde_json::json!(["REQ-1"]), "{json:#}");
    let plan_json = git(
        dir,
        &[
            "--git-dir",
            remote.to_str().unwrap(),
            "cat-file",
            "blob",
            "refs/lightsout/fleet/r1/plan:plan.json",
        ],
    );
    let shared: serde_json::Value = serde_json::from_str(&plan_json).unwrap();
    assert_eq!(shared["run"], "r1");
    assert_eq!(shared["plan"]["tasks"].as_array().unwrap().len(), 5);
    let again = plan("r1");
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("has a plan for run `r1` already"),
        "{again:?}"
    );
    let shown = Command::cargo_bin("lightsout")
        .unwrap()
        .args(["worker", "status", "--store", store.to_str().unwrap(), "r1"])
        .output()
        .unwrap();
    let shown = String::from_utf8(shown.stdout).unwrap();
    assert_eq!(shown.lines().count(), 2, "a header and REQ-1: {shown}");
}

/// `[store] url` of lightsout.toml is the store of `run`, `worker` and `status` when no
/// `--store` is given; `--store` wins over it; a typo in `[store]` is refused with its place.
#[test]
fn the_fleet_store_comes_from_lightsout_toml_unless_store_is_given() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (seed, _remote, _holdout) = example_remote(dir);
    let (from_config, from_flag) = (dir.join("config.db"), dir.join("flag.db"));
    let base = std::fs::read_to_string(seed.join("lightsout.toml")).unwrap();
    // A second config beside the first (same directory, so its paths resolve alike).
    std::fs::write(
        seed.join("fleet.toml"),
        format!("{base}\n[store]\nurl = \"../config.db\"\n"),
    )
    .unwrap();
    let lightsout = |args: &[&str]| {
        Command::cargo_bin("lightsout")
            .unwrap()
            .current_dir(&seed)
            .env_remove("LIGHTSOUT_HOLDOUT")
            .env_remove("LIGHTSOUT_STORE")
            .args(args)
            .output()
            .unwrap()
    };
    let plan = |run: &str, extra: &[&str]| {
        let mut args = vec!["run", "--config", "fleet.toml", "--run-id", run];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--format", "json", "specs/url-shortener.md"]);
        let out = lightsout(&args);
        assert!(out.status.success(), "{out:?}");
    };
    plan("by-config", &[]);
    plan("by-flag", &["--store", from_flag.to_str().unwrap()]);
    let runs = |store: &Path| {
        let s = lightsout_fleet::claims::SqliteClaims::open(store).unwrap();
        lightsout_fleet::claims::ClaimStore::runs(&s).unwrap()
    };
    assert_eq!(runs(&from_config), ["by-config"]);
    assert_eq!(runs(&from_flag), ["by-flag"]);
    // `status` and `worker` read the same [store] url through --config (and lightsout.toml of
    // the directory by default); --store wins.
    let shown = |extra: &[&str]| {
        let mut args = vec!["status", "--format", "json"];
        args.extend_from_slice(extra);
        let out = lightsout(&args);
        assert!(out.status.success(), "{out:?}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(shown(&["--config", "fleet.toml"]), ["by-config"]);
    assert_eq!(
        shown(&[
            "--config",
            "fleet.toml",
            "--store",
            from_flag.to_str().unwrap()
        ]),
        ["by-flag"]
    );
    let out = lightsout(&["worker", "status", "--config", "fleet.toml", "by-config"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("REQ-1"),
        "{out:?}"
    );
    // A typo in [store] is an error with its place, for every command reading the file.
    let typo = format!("{base}\n[store]\nulr = \"../config.db\"\n");
    std::fs::write(seed.join("fleet.toml"), &typo).unwrap();
    let line = typo[..typo.find("ulr").unwrap()].matches('\n').count() + 1;
    for args in [
        &["status", "--config", "fleet.toml"][..],
        &["run", "--config", "fleet.toml", "specs/url-shortener.md"],
    ] {
        let out = lightsout(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {out:?}");
        for want in [
            format!("lightsout.toml:{line}:1"),
            "unknown key `ulr` in [store]".to_owned(),
            "did you mean `url`?".to_owned(),
        ] {
            assert!(err.contains(&want), "{args:?}: `{want}` missing from {err}");
        }
    }
}
