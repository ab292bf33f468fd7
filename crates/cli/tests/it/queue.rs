//! `lightsout queue` and `lightsout run --queue` end to end: the real binary, a replay agent
//! and a shell holdout runner (the helpers of `run.rs`), a queue of three specs.

use crate::run::{Project, new_file, project};
use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

/// A spec `id` with one requirement `req` asking for `title`, ready to build.
fn spec(id: &str, req: &str, title: &str) -> String {
    format!(
        "---\nid: {id}\ntitle: {title}\nkind: feature\nversion: 1\nstatus: ready\n---\n\n\
         ## Intent\nWrite the {title}.\n\n## Users\n- **Developer**: reads the file.\n\n\
         ## Inputs\n- N/A: nothing is requested; the agents write files.\n\n\
         ## Outputs\n- A file in the repository.\n\n## Behaviour\n\n### {req}: {title}\n\
         The system SHALL write the {title}.\n\n#### Scenario: the {title} is written\n\
         - **GIVEN** the repository\n- **WHEN** the task is built\n- **THEN** the {title} exists\n\n\
         ## Constraints\n- CON-1: Each file is at most 100 bytes.\n\n\
         ## Verification gate\n- No regression on scenarios that passed on main.\n"
    )
}

/// Three specs `a`, `b`, `c` (REQ-1, REQ-2, REQ-3 writing a.txt, b.txt, c.txt). The holdout
/// of `blocking` first touches `<root>/started-<req>` and then waits for `<root>/release`,
/// so a test can act while that spec is being built.
fn three_specs(blocking: &str) -> Project {
    let p = project(&[], 1, "../holdout");
    std::fs::remove_file(p.repo().join("specs/demo.md")).unwrap();
    for (id, req, title, file, word) in [
        ("a", "REQ-1", "alpha file", "a.txt", "alpha"),
        ("b", "REQ-2", "beta file", "b.txt", "beta"),
        ("c", "REQ-3", "gamma file", "c.txt", "gamma"),
    ] {
        std::fs::write(
            p.repo().join(format!("specs/{id}.md")),
            spec(id, req, title),
        )
        .unwrap();
        p.patch(req, 1, &new_file(file, word));
        let check = format!("grep -qx {word} {file}");
        if req == blocking {
            let root = p.root.display();
            p.holdout(
                req,
                &format!(
                    "touch '{root}/started-{req}'\nwhile [ ! -f '{root}/release' ]; do sleep 0.05; done\n{check}"
                ),
            );
        } else {
            p.holdout(req, &check);
        }
    }
    p.commit_all("three specs");
    p
}

fn lightsout(p: &Project) -> Command {
    let mut c = Command::cargo_bin("lightsout").unwrap();
    c.current_dir(p.repo()).env_remove("LIGHTSOUT_HOLDOUT");
    c
}

fn queue_json(p: &Project) -> Vec<Value> {
    let out = lightsout(p)
        .args(["queue", "list", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Starts `lightsout run --queue` in its own process group and waits until the holdout of
/// `req` started (the file it touches appears), or panics when the runner exits first.
fn spawn_until_started(p: &Project, req: &str) -> std::process::Child {
    use std::os::unix::process::CommandExt as _;
    let mut child = Std::new(assert_cmd::cargo::cargo_bin("lightsout"))
        .current_dir(p.repo())
        .args(["run", "--queue", "--format", "json"])
        .env_remove("LIGHTSOUT_HOLDOUT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let marker: PathBuf = p.root.join(format!("started-{req}"));
    while !marker.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the queue runner exited ({status}) before {req}'s holdout started:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

fn release(root: &Path) {
    std::fs::write(root.join("release"), "").unwrap();
}

#[test]
fn a_queue_of_three_specs_runs_to_the_end_across_a_kill_9_and_resume() {
    let p = three_specs("REQ-2");
    let added = lightsout(&p)
        .args(["queue", "add", "specs/a.md", "specs/b.md", "specs/c.md"])
        .args(["--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let added: Value = serde_json::from_slice(&added).unwrap();
    assert_eq!(added[2]["spec"], "specs/c.md");
    assert!(queue_json(&p).iter().all(|e| e["status"] == "queued"));

    // kill -9 the runner (its whole process group, as a crash would) while spec b is judged.
    let mut child = spawn_until_started(&p, "REQ-2");
    let pgid = nix::unistd::Pid::from_raw(child.id().cast_signed());
    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    let q = queue_json(&p);
    let status: Vec<&str> = q.iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["passed", "running", "queued"]);
    let b_run = q[1]["run_id"].as_str().unwrap().to_owned();

    // Without --resume the runner refuses to start over an interrupted entry.
    lightsout(&p)
        .args(["run", "--queue"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("lightsout run --queue --resume"));

    release(&p.root);
    let out = lightsout(&p)
        .args(["run", "--queue", "--resume", "--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["stopped"], false);
    assert_eq!(out["queued"], 0);
    let built: Vec<&str> = out["built"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["spec"].as_str().unwrap())
        .collect();
    assert_eq!(built, ["specs/b.md", "specs/c.md"]);
    // Spec b's run was resumed, not started again.
    assert_eq!(out["built"][0]["run"]["run_id"], b_run.as_str());

    // Every spec passed in a run of its own, each with its own report.
    let q = queue_json(&p);
    let mut runs = Vec::new();
    for e in &q {
        assert_eq!(e["status"], "passed", "{e}");
        let run = e["run_id"].as_str().unwrap().to_owned();
        assert!(p.run_dir(&run).join("report.json").is_file(), "{run}");
        assert!(p.run_dir(&run).join("report.html").is_file(), "{run}");
        runs.push(run);
    }
    runs.dedup();
    assert_eq!(runs.len(), 3);
    for (f, want) in [("a.txt", "alpha"), ("b.txt", "beta"), ("c.txt", "gamma")] {
        assert_eq!(p.git(&["show", &format!("main:{f}")]), want);
    }
    // Spec b's task merged once, across the kill.
    let journal = std::fs::read_to_string(p.run_dir(&b_run).join("journal.jsonl")).unwrap();
    assert_eq!(
        journal.matches(r#""entry":"merged""#).count(),
        1,
        "{journal}"
    );
}

#[test]
fn a_stop_lets_the_current_spec_finish_and_leaves_the_rest_queued() {
    let p = three_specs("REQ-1");
    lightsout(&p)
        .args(["queue", "stop"])
        .assert()
        .success()
        .stdout(predicates::str::contains("nothing to stop"));
    lightsout(&p)
        .args(["queue", "add", "specs/a.md", "specs/b.md"])
        .assert()
        .success();
    let child = spawn_until_started(&p, "REQ-1");
    lightsout(&p)
        .args(["queue", "stop"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "stops once its current spec is built",
        ));
    // A running entry cannot be removed.
    lightsout(&p)
        .args(["queue", "remove", "1"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("being built"));
    release(&p.root);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out["stopped"], true);
    assert_eq!(out["queued"], 1);
    let q = queue_json(&p);
    assert_eq!(q[0]["status"], "passed");
    assert_eq!(q[1]["status"], "queued");
    assert_eq!(p.git(&["show", "main:a.txt"]), "alpha");
    // The rest can be dropped.
    lightsout(&p)
        .args(["queue", "remove", "2", "--format", "json"])
        .assert()
        .success()
        .stdout(predicates::str::contains("specs/b.md"));
    assert_eq!(queue_json(&p).len(), 1);
}

#[test]
fn adding_a_path_outside_the_repository_adds_nothing() {
    let p = three_specs("none");
    let outside = p.root.join("holdout/check.sh");
    lightsout(&p)
        .args(["queue", "add", "specs/a.md"])
        .arg(&outside)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("outside the repository"));
    lightsout(&p)
        .args(["queue", "list"])
        .assert()
        .success()
        .stdout(predicates::str::contains("the queue is empty"));
}

#[test]
fn ctrl_c_lets_the_current_spec_finish_and_stops_the_queue() {
    let p = three_specs("REQ-1");
    lightsout(&p)
        .args(["queue", "add", "specs/a.md", "specs/b.md"])
        .assert()
        .success();
    let child = spawn_until_started(&p, "REQ-1");
    let pid = nix::unistd::Pid::from_raw(child.id().cast_signed());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    release(&p.root);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["stopped"], true, "{json}");
    let q = queue_json(&p);
    assert_eq!(q[0]["status"], "passed");
    assert_eq!(q[1]["status"], "queued");
    // The next runner goes on with the rest.
    lightsout(&p).args(["run", "--queue"]).assert().code(0);
    assert_eq!(queue_json(&p)[1]["status"], "passed");
    assert_eq!(p.git(&["show", "main:b.txt"]), "beta");
}
