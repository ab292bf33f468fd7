//! End-to-end tests of `lightsout run`: the real binary, real git repositories, a
//! `ReplayAgent` trajectory and a shell holdout runner outside the repository.

#![allow(clippy::print_stderr)] // the crash test reports its seed for replays

use assert_cmd::Command;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command as Std;
use std::time::{Duration, Instant};

pub(crate) const CANARY: &str = "LIGHTSOUT-CANARY-7f3a91";

/// A project: `repo/` (git, main checked out), `holdout/` and `trajectory/` beside it.
pub(crate) struct Project {
    _dir: tempfile::TempDir,
    pub(crate) root: PathBuf,
}

impl Project {
    pub(crate) fn repo(&self) -> PathBuf {
        self.root.join("repo")
    }

    pub(crate) fn git(&self, args: &[&str]) -> String {
        lightsout_factory::testing::git(&self.repo(), args)
    }

    /// Commits everything in the repository as a test author.
    pub(crate) fn commit_all(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-qm", message]);
    }

    pub(crate) fn run(&self) -> Command {
        let mut c = Command::cargo_bin("lightsout").unwrap();
        c.current_dir(self.repo())
            .arg("run")
            .env_remove("LIGHTSOUT_HOLDOUT");
        c
    }

    pub(crate) fn run_dir(&self, id: &str) -> PathBuf {
        self.repo().join(".lightsout/runs").join(id)
    }

    pub(crate) fn journal(&self, id: &str) -> Vec<Value> {
        std::fs::read_to_string(self.run_dir(id).join("journal.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub(crate) fn report(&self, id: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.run_dir(id).join("state.json")).unwrap())
            .unwrap()
    }

    pub(crate) fn patch(&self, task: &str, attempt: u32, diff: &str) {
        let d = self.root.join("trajectory").join(task);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("{attempt}.patch")), diff).unwrap();
    }

    /// The holdout scenario for `req`: a shell test run in the worktree.
    pub(crate) fn holdout(&self, req: &str, test: &str) {
        std::fs::write(
            self.root.join("holdout/expect").join(format!("{req}.sh")),
            format!("# scenario for {req} ({CANARY})\n{test}\n"),
        )
        .unwrap();
    }
}

pub(crate) fn new_file(path: &str, line: &str) -> String {
    format!(
        "diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+{line}\n"
    )
}

pub(crate) fn change_line(path: &str, old: &str, new: &str, context: &[&str]) -> String {
    let n = context.len() + 1;
    let mut s = format!(
        "diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1,{n} +1,{n} @@\n-{old}\n+{new}\n"
    );
    for c in context {
        s.push(' ');
        s.push_str(c);
        s.push('\n');
    }
    s
}

const RUNNER: &str = r#"# Holdout runner used by the end-to-end tests. canary: LIGHTSOUT-CANARY-7f3a91
H=$(pwd)
cd "$LIGHTSOUT_WORKTREE" || exit 3
printf '{"requirements":['
sep=''
for r in $LIGHTSOUT_REQUIREMENTS; do
  f="$H/expect/$r.sh"
  [ -f "$f" ] || continue
  if sh "$f" >/dev/null 2>&1; then p=1; else p=0; fi
  printf '%s{"id":"%s","trials":1,"passed":%s,"category":"wrong file content"}' "$sep" "$r" "$p"
  sep=','
done
printf ']}\n'
"#;

/// A project whose spec has `reqs` as `(id, title, depends on)`, `jobs` agents, and a
/// holdout runner; scenarios and trajectory are added by each test.
pub(crate) fn project(reqs: &[(&str, &str, &[&str])], jobs: usize, holdout_path: &str) -> Project {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    for d in ["repo/specs", "holdout/expect", "trajectory"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let repo = root.join("repo");
    // A spec that `lightsout spec check` calls ready: `run` builds nothing else.
    let mut spec = String::from(
        "---\nid: demo\ntitle: Demo files\nkind: feature\nversion: 1\nstatus: ready\n---\n\n\
         ## Intent\nWrite a few files.\n\n## Users\n- **Developer**: reads the files.\n\n\
         ## Inputs\n- N/A: nothing is requested; the agents write files.\n\n\
         ## Outputs\n- Files in the repository.\n\n## Behaviour\n",
    );
    for (id, title, deps) in reqs {
        let _ = writeln!(spec, "\n### {id}: {title}");
        if !deps.is_empty() {
            let _ = writeln!(spec, "Depends on: {}\n", deps.join(", "));
        }
        let _ = writeln!(spec, "The system SHALL write the {title}.");
        let _ = writeln!(
            spec,
            "\n#### Scenario: the {title} is written\n- **GIVEN** the repository\n\
             - **WHEN** the task is built\n- **THEN** the {title} exists"
        );
    }
    spec.push_str(
        "\n## Constraints\n- CON-1: Each file is at most 100 bytes.\n\n\
         ## Verification gate\n- No regression on scenarios that passed on main.\n",
    );
    std::fs::write(repo.join("specs/demo.md"), spec).unwrap();
    std::fs::write(repo.join(".gitignore"), ".lightsout/\n").unwrap();
    std::fs::write(
        repo.join("config.txt"),
        "mode=lenient\n1\n2\n3\n4\n5\n6\n7\n8\n9\nend\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("lightsout.toml"),
        format!(
            "[run]\njobs = {jobs}\nattempts = 3\n\n[agents]\ndefault = \"replay\"\n\n\
             [agent.replay]\npreset = \"replay\"\ntrajectory = \"../trajectory\"\n\n\
             [holdout]\npath = \"{holdout_path}\"\ncommand = \"sh check.sh\"\n"
        ),
    )
    .unwrap();
    std::fs::write(root.join("holdout/check.sh"), RUNNER).unwrap();
    let p = Project { _dir: dir, root };
    p.git(&["init", "-q", "-b", "main"]);
    p.commit_all("init");
    p
}

/// Four requirements, REQ-3 after REQ-1 and REQ-2, REQ-2 after REQ-1; REQ-1's first
/// attempt fails the holdout (a typo) and its second fixes it.
fn four_task_project(jobs: usize) -> Project {
    let p = project(
        &[
            ("REQ-1", "alpha file", &[]),
            ("REQ-2", "beta file", &["REQ-1"]),
            ("REQ-3", "gamma file", &["REQ-1", "REQ-2"]),
            ("REQ-4", "delta file", &[]),
        ],
        jobs,
        "../holdout",
    );
    p.holdout("REQ-1", "grep -qx alpha a.txt");
    p.holdout("REQ-2", "grep -qx beta b.txt && grep -qx alpha a.txt");
    p.holdout("REQ-3", "grep -qx gamma c.txt");
    p.holdout("REQ-4", "grep -qx delta d.txt");
    p.patch("REQ-1", 1, &new_file("a.txt", "alhpa"));
    p.patch(
        "REQ-1",
        2,
        "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-alhpa\n+alpha\n",
    );
    p.patch("REQ-2", 1, &new_file("b.txt", "beta"));
    p.patch("REQ-3", 1, &new_file("c.txt", "gamma"));
    p.patch("REQ-4", 1, &new_file("d.txt", "delta"));
    p
}

pub(crate) fn task<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["run"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"]["id"] == id)
        .unwrap_or_else(|| panic!("no task {id}"))
}

#[test]
fn a_multi_task_spec_with_dependencies_runs_through_to_main() {
    let p = four_task_project(2);
    let out = p
        .run()
        .args(["--run-id", "r1", "--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let summary: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(summary["totals"]["merged"], 4);
    assert_eq!(summary["replay"], true, "a replay says so");
    // Main has every file, and the checkout followed it.
    for (f, want) in [
        ("a.txt", "alpha"),
        ("b.txt", "beta"),
        ("c.txt", "gamma"),
        ("d.txt", "delta"),
    ] {
        assert_eq!(p.git(&["show", &format!("main:{f}")]), want);
        assert_eq!(
            std::fs::read_to_string(p.repo().join(f)).unwrap().trim(),
            want
        );
    }
    assert_eq!(p.git(&["status", "--porcelain"]), "");
    // Dependency order: each dependency's merge commit is an ancestor of its dependent's.
    let report = p.report("r1");
    let commit = |id: &str| {
        task(&report, id)["merge_commit"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for (dep, of) in [("REQ-1", "REQ-2"), ("REQ-2", "REQ-3"), ("REQ-1", "REQ-3")] {
        p.git(&["merge-base", "--is-ancestor", &commit(dep), &commit(of)]);
    }
    // Each task ran on its own branch; once merged, its worktree and branch are removed
    // and its attempts kept under refs/lightsout/.
    for id in ["REQ-1", "REQ-2", "REQ-3", "REQ-4"] {
        for kept in ["head", "merged"] {
            p.git(&[
                "rev-parse",
                "--verify",
                &format!("refs/lightsout/r1/{id}/{kept}"),
            ]);
        }
        assert!(!p.run_dir("r1").join("wt").join(id).exists());
    }
    assert_eq!(
        p.git(&[
            "for-each-ref",
            "--format=%(refname)",
            "refs/heads/lightsout/"
        ]),
        ""
    );
    assert_eq!(
        task(&report, "REQ-1")["attempts"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn a_first_attempt_failing_the_holdout_is_retried_with_redacted_feedback() {
    let p = four_task_project(1);
    p.run().args(["--run-id", "r2"]).assert().code(0);
    let journal = p.journal("r2");
    let first = journal
        .iter()
        .find(|e| e["entry"] == "attempt_finished" && e["task"] == "REQ-1")
        .unwrap();
    assert_eq!(first["record"]["passed"], false);
    assert_eq!(first["record"]["failed_stage"], "holdout");
    let feedback = "REQ-1: 1 of 1 trials failed: wrong file content";
    assert_eq!(first["record"]["feedback"], feedback);
    // The second attempt's prompt carries the redacted feedback and nothing of the holdout.
    let prompt =
        std::fs::read_to_string(p.run_dir("r2").join("artifacts/REQ-1/prompt-REQ-1-2.md")).unwrap();
    assert!(prompt.contains("## Feedback from attempt 1"));
    assert!(prompt.contains(feedback));
    for leak in [CANARY, "grep", "scenario for"] {
        assert!(
            !prompt.contains(leak),
            "holdout text `{leak}` reached the agent"
        );
    }
    let first_prompt =
        std::fs::read_to_string(p.run_dir("r2").join("artifacts/REQ-1/prompt-REQ-1-1.md")).unwrap();
    assert!(!first_prompt.contains("Feedback"));
}

#[test]
fn a_regressing_merge_is_reverted_and_routed_back() {
    // REQ-1 needs `mode=lenient`; REQ-2's first attempt sets `mode=strict`. Alone, REQ-2
    // passes; rebased onto main with REQ-1 merged, the merged result fails REQ-1.
    let p = project(
        &[("REQ-1", "alpha file", &[]), ("REQ-2", "beta file", &[])],
        1,
        "../holdout",
    );
    p.holdout(
        "REQ-1",
        "grep -qx alpha a.txt && grep -qx mode=lenient config.txt",
    );
    p.holdout("REQ-2", "grep -qx beta b.txt");
    p.patch("REQ-1", 1, &new_file("a.txt", "alpha"));
    p.patch(
        "REQ-2",
        1,
        &(new_file("b.txt", "beta")
            + &change_line(
                "config.txt",
                "mode=lenient",
                "mode=strict",
                &["1", "2", "3"],
            )),
    );
    p.patch(
        "REQ-2",
        2,
        &change_line(
            "config.txt",
            "mode=strict",
            "mode=lenient",
            &["1", "2", "3"],
        ),
    );
    p.run().args(["--run-id", "r3"]).assert().code(0);
    let journal = p.journal("r3");
    let reverted: Vec<&Value> = journal
        .iter()
        .filter(|e| e["entry"] == "merge_reverted")
        .collect();
    assert_eq!(reverted.len(), 1);
    assert_eq!(reverted[0]["task"], "REQ-2");
    let fb = reverted[0]["feedback"].as_str().unwrap();
    assert!(fb.contains("REQ-1: 1 of 1 trials failed"), "{fb}");
    // Main was never left broken: every commit main ever pointed at passes REQ-1's rule.
    let reflog = p.git(&["reflog", "show", "--format=%H", "refs/heads/main"]);
    assert!(reflog.lines().count() >= 3);
    for c in reflog.lines() {
        let cfg = p.git(&["show", &format!("{c}:config.txt")]);
        assert!(
            cfg.starts_with("mode=lenient"),
            "main pointed at a regressing commit {c}"
        );
    }
    // Routed back: the second attempt got the regression feedback and fixed it.
    let prompt =
        std::fs::read_to_string(p.run_dir("r3").join("artifacts/REQ-2/prompt-REQ-2-2.md")).unwrap();
    assert!(prompt.contains("after rebasing onto main the merged result fails"));
    assert_eq!(p.git(&["show", "main:b.txt"]), "beta");
    assert!(
        p.git(&["show", "main:config.txt"])
            .starts_with("mode=lenient")
    );
}

#[test]
fn a_conflict_is_routed_back_as_a_task_of_its_own() {
    let p = project(
        &[("REQ-1", "first line", &[]), ("REQ-2", "second line", &[])],
        1,
        "../holdout",
    );
    p.holdout("REQ-1", "grep -qx 'from one' shared.txt");
    p.holdout("REQ-2", "grep -qx 'from two' shared.txt");
    p.patch("REQ-1", 1, &new_file("shared.txt", "from one"));
    p.patch("REQ-2", 1, &new_file("shared.txt", "from two"));
    // The conflict task redoes REQ-2 on top of main, which has REQ-1's file.
    p.patch(
        "REQ-2.rebase-1",
        1,
        "diff --git a/shared.txt b/shared.txt\n--- a/shared.txt\n+++ b/shared.txt\n@@ -1 +1,2 @@\n from one\n+from two\n",
    );
    p.run().args(["--run-id", "r4"]).assert().code(0);
    assert_eq!(p.git(&["show", "main:shared.txt"]), "from one\nfrom two");
    let report = p.report("r4");
    assert_eq!(task(&report, "REQ-2")["status"], "merged");
    assert_eq!(task(&report, "REQ-2")["routed_to"], "REQ-2.rebase-1");
    assert_eq!(task(&report, "REQ-2.rebase-1")["parent"], "REQ-2");
    let journal = p.journal("r4");
    let routed = journal
        .iter()
        .find(|e| e["entry"] == "conflict_routed")
        .unwrap();
    assert_eq!(routed["files"], serde_json::json!(["shared.txt"]));
    // The conflicted work is not lost: it is kept under refs/lightsout/, off main; its
    // worktree and branch are gone once the task merged through its conflict task.
    let old = p.git(&["rev-parse", "refs/lightsout/r4/REQ-2/head"]);
    assert!(
        !Std::new("git")
            .args(["merge-base", "--is-ancestor", &old, "main"])
            .current_dir(p.repo())
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(p.git(&["show", &format!("{old}:shared.txt")]), "from two");
    assert!(!p.run_dir("r4").join("wt/REQ-2").exists());
    assert_eq!(
        p.git(&[
            "for-each-ref",
            "--format=%(refname)",
            "refs/heads/lightsout/"
        ]),
        ""
    );
    let prompt = std::fs::read_to_string(
        p.run_dir("r4")
            .join("artifacts/REQ-2.rebase-1/prompt-REQ-2.rebase-1-1.md"),
    )
    .unwrap();
    assert!(prompt.contains("conflicted with main"));
    assert!(prompt.contains("+from two"), "the earlier diff is shown");
}

#[test]
fn a_task_out_of_attempts_fails_and_blocks_its_dependents() {
    let p = project(
        &[
            ("REQ-1", "alpha file", &[]),
            ("REQ-2", "beta file", &["REQ-1"]),
            ("REQ-3", "gamma file", &[]),
        ],
        2,
        "../holdout",
    );
    p.holdout("REQ-1", "grep -qx alpha a.txt");
    p.holdout("REQ-2", "true");
    p.holdout("REQ-3", "grep -qx gamma c.txt");
    p.patch("REQ-1", 1, &new_file("a.txt", "wrong"));
    p.patch("REQ-3", 1, &new_file("c.txt", "gamma"));
    let out = p
        .run()
        .args(["--run-id", "r5", "--format", "json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let s: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(s["totals"]["merged"], 1);
    assert_eq!(s["totals"]["failed"], 1);
    assert_eq!(s["totals"]["blocked"], 1);
    // REQ-1 failed with commits that are not on main: its worktree stays.
    assert!(p.run_dir("r5").join("wt/REQ-1/a.txt").exists());
    assert_eq!(p.git(&["show", "main:c.txt"]), "gamma");
}

#[test]
fn a_holdout_inside_the_repository_is_refused() {
    let p = project(&[("REQ-1", "alpha file", &[])], 1, "inside");
    std::fs::create_dir_all(p.repo().join("inside")).unwrap();
    p.run().assert().code(2).stderr(
        predicates::str::contains("is inside")
            .and(predicates::str::contains("outside the repository")),
    );
    let main = p.git(&["rev-parse", "main"]);
    assert_eq!(p.git(&["rev-list", "--count", &main]), "1");
}

use predicates::prelude::PredicateBooleanExt as _;

/// A small deterministic generator (xorshift64*) for kill points; the seed is printed so a
/// failure can be replayed with `LIGHTSOUT_CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn lightsout_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("lightsout")
}

/// `kill -9`s `lightsout run` (its whole process group, as a crash would) after `delay`,
/// then resumes until it finishes. Returns the number of kills that landed mid-run.
fn crash_and_resume(p: &Project, run_id: &str, delay: Duration) -> bool {
    use std::os::unix::process::CommandExt as _;
    let mut child = Std::new(lightsout_bin())
        .current_dir(p.repo())
        .args(["run", "--run-id", run_id, "--format", "json"])
        .env_remove("LIGHTSOUT_HOLDOUT")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut landed = false;
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break;
        }
        if start.elapsed() >= delay {
            let pgid = nix::unistd::Pid::from_raw(child.id().cast_signed());
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            child.wait().unwrap();
            landed = true;
            break;
        }
        std::thread::yield_now();
    }
    let journal = p.run_dir(run_id).join("journal.jsonl");
    let mut resume = Command::new(lightsout_bin());
    resume.current_dir(p.repo()).env_remove("LIGHTSOUT_HOLDOUT");
    let started = std::fs::read_to_string(&journal).is_ok_and(|j| j.contains('\n'));
    if started {
        resume.args(["run", "--resume", run_id]);
    } else {
        // Killed before the journal existed: nothing to resume, start again.
        resume.args(["run", "--run-id", run_id]);
    }
    let out = resume.output().unwrap();
    assert!(
        out.status.success(),
        "resume failed ({:?}):\n{}\n{}\njournal:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&journal).unwrap_or_default()
    );
    landed
}

fn kills() -> u64 {
    std::env::var("LIGHTSOUT_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

#[test]
fn kill_9_at_random_points_then_resume_finishes_with_the_same_main() {
    // The reference: one uninterrupted run.
    let reference = four_task_project(2);
    let t0 = Instant::now();
    reference.run().args(["--run-id", "ref"]).assert().code(0);
    let span = t0.elapsed();
    let want_tree = reference.git(&["rev-parse", "main^{tree}"]);
    let seed = std::env::var("LIGHTSOUT_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!(
        "crash test seed {seed} (LIGHTSOUT_CRASH_SEED), {} kills",
        kills()
    );
    let mut rng = Rng(seed);
    let mut landed = 0;
    for k in 0..kills() {
        let p = four_task_project(2);
        let delay = Duration::from_micros(rng.next() % (span.as_micros() as u64).max(1));
        landed += u32::from(crash_and_resume(&p, "crash", delay));
        // Same main as the uninterrupted run, and the checkout followed it.
        let tree = p.git(&["rev-parse", "main^{tree}"]);
        if tree != want_tree {
            let files = p.git(&["ls-tree", "-r", "main"]);
            let journal = std::fs::read_to_string(p.run_dir("crash").join("journal.jsonl"))
                .unwrap_or_default();
            panic!("kill {k} at {delay:?}: main differs\n{files}\n{journal}");
        }
        assert_eq!(
            p.git(&["status", "--porcelain"]),
            "",
            "kill {k} at {delay:?}"
        );
        // No task lost, none redone: one merge per task, no attempt after it merged.
        let journal = p.journal("crash");
        for id in ["REQ-1", "REQ-2", "REQ-3", "REQ-4"] {
            let merged_at: Vec<usize> = journal
                .iter()
                .enumerate()
                .filter(|(_, e)| e["entry"] == "merged" && e["task"] == id)
                .map(|(i, _)| i)
                .collect();
            assert_eq!(
                merged_at.len(),
                1,
                "kill {k} at {delay:?}: {id} merged {merged_at:?}"
            );
            assert!(
                !journal[merged_at[0]..]
                    .iter()
                    .any(|e| e["entry"] == "attempt_started" && e["task"] == id),
                "kill {k} at {delay:?}: {id} redone after it merged"
            );
        }
        assert_eq!(p.report("crash")["totals"]["merged"], 4);
    }
    eprintln!("{landed} of {} kills landed mid-run", kills());
}

#[test]
fn the_eval_engine_judges_the_software_served_from_the_worktree() {
    // No external runner: the built-in engine (lightsout-eval) starts the target in each
    // worktree on a free loopback port, serves the Slack twin (lightsout-twin) beside it, and
    // runs the markdown holdout scenarios.
    let p = project(&[("REQ-1", "alpha file", &[])], 1, "../holdout");
    std::fs::write(
        p.repo().join("lightsout.toml"),
        "[run]\njobs = 1\nattempts = 3\n\n[agents]\ndefault = \"replay\"\n\n\
         [agent.replay]\npreset = \"replay\"\ntrajectory = \"../trajectory\"\n\n\
         [holdout]\npath = \"../holdout\"\n\n\
         [target]\ncommand = \"python3 -m http.server {port} --bind 127.0.0.1\"\n\n\
         [twins]\nslack = \"builtin\"\n",
    )
    .unwrap();
    std::fs::write(
        p.root.join("holdout/files.scenario.md"),
        format!(
            "<!-- canary: {CANARY} -->\n## Scenario: the alpha file is served\nSatisfies: REQ-1\n\n\
             - **WHEN** I send `GET /a.txt`\n- **THEN** the status is 200\n\
             - **AND** the body contains `alpha`\n\
             - **AND** twin `slack` received 0 requests to `POST /api/chat.postMessage`\n"
        ),
    )
    .unwrap();
    p.patch("REQ-1", 1, &new_file("a.txt", "alhpa"));
    p.patch(
        "REQ-1",
        2,
        "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-alhpa\n+alpha\n",
    );
    p.run().args(["--run-id", "e1"]).assert().code(0);
    assert_eq!(p.git(&["show", "main:a.txt"]), "alpha");
    let report = p.report("e1");
    let attempts = task(&report, "REQ-1")["attempts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["failed_stage"], "holdout");
    let fb = attempts[0]["feedback"].as_str().unwrap();
    assert!(fb.contains("REQ-1"), "{fb}");
    for leak in [CANARY, "alpha file is served", "/a.txt"] {
        assert!(
            !fb.contains(leak),
            "holdout text `{leak}` in feedback: {fb}"
        );
    }
    // The full result document stays in the run directory, for humans.
    assert!(p.run_dir("e1").join("eval/REQ-1-1-candidate.json").exists());
    let passed: Value = serde_json::from_slice(
        &std::fs::read(p.run_dir("e1").join("eval/REQ-1-2-candidate.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(passed["gate"]["passed"], true);
    assert!(
        passed
            .to_string()
            .contains("twin `slack` received 0 requests")
    );
}

/// The agent of [`misbehaving_agents_are_contained_and_the_run_goes_on`]: one behaviour per
/// task, chosen from the prompt's first line (`# Task REQ-n: ...`), all printing Claude
/// Code's JSON result so that usage is parsed.
const MISBEHAVING_AGENT: &str = r#"read -r first
ok() { printf '{"type":"result","subtype":"success","is_error":false,"result":"done","usage":{"input_tokens":%s,"output_tokens":10}}\n' "${1:-10}"; }
case "$first" in
  *"REQ-1:"*) while :; do :; done ;;
  *"REQ-2:"*) yes gigabytes ;;
  *"REQ-3:"*) echo ok > c.txt; echo pwned > ../../../../../evil.txt; ok ;;
  *"REQ-4:"*) echo ok > d.txt; rm -rf .git; ok ;;
  *"REQ-5:"*)
    echo "secret=$E2E_API_KEY" > e.txt
    # Not in its environment; nor in any process it can see.
    cat /proc/[0-9]*/environ 2>/dev/null | tr '\0' '\n' | grep '^E2E_API_KEY=' >> e.txt
    # Nor can it read the holdout: it does not exist in the agent's sandbox.
    h=../../../../../../holdout
    [ -d ../../../../../../repo ] || echo "no repository beside the holdout" >> e.txt
    [ -e "$h" ] && echo "the holdout is visible at $h" >> e.txt
    ok ;;
  *"REQ-6:"*) echo ok > f.txt; echo "found LIGHTSOUT-CANARY-7f3a91 in a file" >&2; ok ;;
  *"REQ-7:"*) echo ok > g.txt; ok 900000 ;;
  *) echo ok > h.txt; ok ;;
esac
"#;

/// The key `misbehaving_agents_are_contained_and_the_run_goes_on` puts in the factory's
/// environment: it must reach neither an agent nor anything the run writes.
const MISBEHAVING_SECRET: &str = "sk-e2e-3b9f0c71d2";

/// Eight tasks, one misbehaviour each (the last behaves), run by [`MISBEHAVING_AGENT`]
/// under a wall, output and token limit; returns the project and main before the run.
fn misbehaving_project() -> (Project, String) {
    let p = project(
        &[
            ("REQ-1", "loop forever", &[]),
            ("REQ-2", "print gigabytes", &[]),
            ("REQ-3", "write outside", &[]),
            ("REQ-4", "delete git", &[]),
            ("REQ-5", "read a secret", &[]),
            ("REQ-6", "leak the canary", &[]),
            ("REQ-7", "overspend", &[]),
            ("REQ-8", "behave", &[]),
        ],
        2,
        "../holdout",
    );
    for (req, file) in [
        ("REQ-1", "a"),
        ("REQ-2", "b"),
        ("REQ-3", "c"),
        ("REQ-4", "d"),
        ("REQ-6", "f"),
        ("REQ-7", "g"),
        ("REQ-8", "h"),
    ] {
        p.holdout(req, &format!("grep -qx ok {file}.txt"));
    }
    p.holdout(
        "REQ-5",
        "grep -qx 'secret=' e.txt && [ $(wc -l < e.txt) -eq 1 ]",
    );
    // The holdout's canary, for the leak scanner (it reads scenario files).
    std::fs::write(
        p.root.join("holdout/canary.feature"),
        format!(
            "# canary: {CANARY}\nFeature: files\n\n  Scenario: the files exist\n    \
             When I run `true`\n    Then the exit code is 0\n"
        ),
    )
    .unwrap();
    std::fs::write(p.root.join("agent.sh"), MISBEHAVING_AGENT).unwrap();
    // The wall limit is what ends REQ-1's endless loop; 8 s leaves the honest agents room to
    // finish on a busy machine (3 s timed one out under load).
    std::fs::write(
        p.repo().join("lightsout.toml"),
        format!(
            "[run]\njobs = 2\nattempts = 1\n\n[agents]\ndefault = \"bad\"\n\n\
             [agent.bad]\npreset = \"command\"\nprogram = \"sh\"\nargs = [\"{}\"]\n\
             format = \"claude-json\"\n\n\
             [env]\nallow = [\"PATH\", \"HOME\"]\n\n\
             [limits]\nwall_ms = 8000\noutput_bytes = 65536\n\n\
             [budget.task]\ntokens = 10000\n\n\
             [holdout]\npath = \"../holdout\"\ncommand = \"sh check.sh\"\n",
            p.root.join("agent.sh").display()
        ),
    )
    .unwrap();
    p.commit_all("fenced agent");
    let main_before = p.git(&["rev-parse", "main"]);
    (p, main_before)
}

/// Runs `fence` with the secret in the factory's environment; returns its exit code and
/// stderr.
fn run_misbehaving(p: &Project) -> (Option<i32>, String) {
    let out = p
        .run()
        .args(["--run-id", "fence", "--format", "json", "specs/demo.md"])
        .env("E2E_API_KEY", MISBEHAVING_SECRET)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The run fails on the canary leak, says so, and the report holds it as an incident.
fn assert_the_run_fails_on_the_canary_leak(p: &Project, code: Option<i32>, stderr: &str) {
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("HOLDOUT LEAK in task REQ-6"), "{stderr}");
    let outcome: Value =
        serde_json::from_slice(&std::fs::read(p.run_dir("fence").join("report.json")).unwrap())
            .unwrap();
    let incidents = outcome["incidents"].to_string();
    assert!(incidents.contains("canary_leak"), "{incidents}");
}

/// Each misbehaviour failed its own task, at the stage that contains it.
fn assert_each_misbehaviour_failed_its_own_task(report: &Value, stderr: &str) {
    let stage = |id: &str| {
        let t = task(report, id);
        (
            t["status"].as_str().unwrap_or("").to_owned(),
            t["attempts"][0]["failed_stage"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
            t["attempts"][0]["feedback"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        )
    };
    for (id, want_stage, want_text) in [
        ("REQ-1", "agent", "wall-time limit"),
        ("REQ-2", "agent", "printed more than 65536 bytes"),
        ("REQ-3", "policy", "write outside the worktree"),
        // The `.git` link is bound read-only: `rm` is refused (`EBUSY`), not repaired.
        ("REQ-4", "policy", "leave its .git alone"),
        ("REQ-6", "leak", "holdout canary"),
        ("REQ-7", "policy", "tokens budget"),
    ] {
        let (status, s, feedback) = stage(id);
        assert_eq!(
            (status.as_str(), s.as_str()),
            ("failed", want_stage),
            "{id}: {feedback}\n{stderr}"
        );
        assert!(feedback.contains(want_text), "{id}: {feedback}");
    }
}

/// The run went on: the well-behaved tasks merged, the secret never reached the agent.
fn assert_the_well_behaved_tasks_merged(p: &Project, report: &Value, stderr: &str) {
    for id in ["REQ-5", "REQ-8"] {
        assert_eq!(task(report, id)["status"], "merged", "{id}\n{stderr}");
    }
    let files = p.git(&["ls-tree", "--name-only", "main"]);
    assert!(
        files.contains("e.txt") && files.contains("h.txt"),
        "{files}"
    );
    for f in [
        "a.txt", "b.txt", "c.txt", "d.txt", "f.txt", "g.txt", "evil.txt",
    ] {
        assert!(!files.lines().any(|l| l == f), "{f} reached main: {files}");
    }
    assert_eq!(p.git(&["show", "main:e.txt"]), "secret=");
}

/// Main moved only by the merge queue: every new commit is a task's attempt or merge.
fn assert_main_moved_only_by_the_merge_queue(p: &Project, main_before: &str) {
    let log = p.git(&["log", "--format=%s", &format!("{main_before}..main")]);
    assert!(
        log.lines()
            .all(|l| l.contains("REQ-5") || l.contains("REQ-8")),
        "{log}"
    );
}

/// REQ-4's worktree was rebuilt, not left pointing git at the main checkout; and the
/// secret is nowhere in what the run wrote.
fn assert_worktree_rebuilt_and_the_secret_nowhere(p: &Project) {
    let wt = p.run_dir("fence").join("wt/REQ-4");
    assert!(wt.join(".git").is_file());
    let grep = Std::new("grep")
        .args(["-rqF", MISBEHAVING_SECRET])
        .arg(p.repo())
        .status()
        .unwrap();
    assert_eq!(grep.code(), Some(1), "the secret was written somewhere");
}

/// Every containment is in the hash-chained audit log, tied to its requirement.
fn assert_every_containment_is_audited(p: &Project) {
    let audit: Vec<Value> = std::fs::read_to_string(p.run_dir("fence").join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |req: &str, kind: &str, key: &str, what: &str| {
        audit.iter().any(|e| {
            e["kind"] == kind
                && e["task"] == req
                && e["requirements"][0] == req
                && (key.is_empty() || e["details"][key] == what)
        })
    };
    assert!(has("REQ-1", "policy_hit", "violation", "timed_out"));
    assert!(has("REQ-2", "policy_hit", "violation", "output_capped"));
    assert!(has(
        "REQ-3",
        "policy_hit",
        "violation",
        "outside_write_refused"
    ));
    assert!(
        !p.repo().join("evil.txt").exists(),
        "the write was not prevented"
    );
    assert!(has(
        "REQ-4",
        "policy_hit",
        "violation",
        "outside_write_refused"
    ));
    assert!(has("REQ-6", "leak", "kind", "agent_output"));
    assert!(has("REQ-7", "budget_stop", "budget", "tokens"));
    assert!(
        !audit
            .iter()
            .any(|e| e["task"] == "REQ-5" && e["kind"] == "policy_hit")
    );
    Command::cargo_bin("lightsout")
        .unwrap()
        .current_dir(p.repo())
        .args(["audit", "verify", "fence"])
        .assert()
        .success();
}

#[test]
fn misbehaving_agents_are_contained_and_the_run_goes_on() {
    let (p, main_before) = misbehaving_project();
    let (code, stderr) = run_misbehaving(&p);
    assert_the_run_fails_on_the_canary_leak(&p, code, &stderr);
    let report = p.report("fence");
    assert_each_misbehaviour_failed_its_own_task(&report, &stderr);
    assert_the_well_behaved_tasks_merged(&p, &report, &stderr);
    assert_main_moved_only_by_the_merge_queue(&p, &main_before);
    assert_worktree_rebuilt_and_the_secret_nowhere(&p);
    assert_every_containment_is_audited(&p);
}
