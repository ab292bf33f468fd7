//! Issue 16, "Git is the factory's, not the agent's" and "caps on what an agent can make us
//! store", end to end: the real `lightsout` binary runs one hostile `command` agent per
//! class of attack on the common git directory, plus one that writes a 300 MB (sparse)
//! file. Each is contained whether the sandbox prevents the write or the factory finds and
//! undoes it: nothing of the agent runs in the factory's git, main and the objects are
//! intact (`git fsck`), the config is byte for byte what it was, the audit log holds a
//! `policy_hit` for the task, and the run goes on for the others.

use assert_cmd::Command;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command as Std;
use std::time::Duration;

const SECRET: &str = "sk-hostile-git-51c0e2";

const RUNNER: &str = r#"H=$(pwd)
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

/// Every hostile task also writes the file its holdout wants: if the attack went
/// unnoticed, the task would merge, and the test would fail.
const AGENT: &str = r#"read -r first
ok() { printf '{"type":"result","subtype":"success","is_error":false,"result":"done","usage":{"input_tokens":10,"output_tokens":10}}\n'; }
common=$(git rev-parse --path-format=absolute --git-common-dir)
cfg() { git config -f "$common/config" "$@"; }
case "$first" in
  *"REQ-1:"*) echo ok > a.txt
    c=$(git -c user.name=x -c user.email=x@x commit-tree 'HEAD^{tree}' -p HEAD -m unverified)
    git update-ref refs/heads/main "${c:-HEAD}" ;;
  *"REQ-2:"*) echo ok > b.txt
    git update-ref refs/heads/lightsout/hg/evil HEAD
    git update-ref refs/lightsout/hg/evil/keep HEAD ;;
  *"REQ-3:"*) echo ok > c.txt; rm -rf "$common/objects" ;;
  *"REQ-4:"*) echo ok > d.txt; cfg core.fsmonitor "$EVIL" ;;
  *"REQ-5:"*) echo ok > e.txt
    for h in pre-commit post-commit reference-transaction post-checkout; do
      cp "$EVIL" "$common/hooks/$h"
    done
    cfg core.hooksPath "$common/hooks" ;;
  *"REQ-6:"*) echo ok > f.txt
    printf '[core]\n\tfsmonitor = %s\n' "$EVIL" > "$common/info/inc.cfg"
    cfg include.path "$common/info/inc.cfg" ;;
  *"REQ-7:"*) echo ok > g.txt
    cfg filter.evil.clean "$EVIL"; cfg filter.evil.smudge "$EVIL"; cfg diff.external "$EVIL"
    echo '* filter=evil' > .gitattributes; echo '* filter=evil' > "$common/info/attributes" ;;
  *"REQ-8:"*) echo ok > h.txt; truncate -s 300M big.bin ;;
  *) echo ok > i.txt ;;
esac
ok
"#;

fn git(repo: &Path, args: &[&str]) -> String {
    lightsout_factory::testing::git(repo, args)
}

/// Every file under `dir` with its bytes, sorted.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

/// One task per class of attack: its requirement, title and the file its holdout wants.
/// The first eight are hostile; the last behaves.
const CLASSES: [(&str, &str, &str); 9] = [
    ("REQ-1", "move main", "a"),
    ("REQ-2", "write run refs", "b"),
    ("REQ-3", "delete objects", "c"),
    ("REQ-4", "set fsmonitor", "d"),
    ("REQ-5", "install hooks", "e"),
    ("REQ-6", "include config", "f"),
    ("REQ-7", "install a filter", "g"),
    ("REQ-8", "store a huge file", "h"),
    ("REQ-9", "behave", "i"),
];

/// The project in a temporary directory: `repo` (spec, config, one commit on main),
/// `holdout` beside it, the hostile agent, and the `evil.sh` program that leaves `marker`
/// behind if anything ever runs it.
struct Project {
    _dir: tempfile::TempDir,
    root: PathBuf,
    repo: PathBuf,
    marker: PathBuf,
    evil: PathBuf,
}

/// What the factory's git directory held before the run.
struct GitBefore {
    main: String,
    config: Vec<u8>,
    hooks: Vec<(PathBuf, Vec<u8>)>,
    info: Vec<(PathBuf, Vec<u8>)>,
}

/// What `lightsout run` left: its stderr, run directory, `state.json` and audit log.
struct Run {
    stderr: String,
    dir: PathBuf,
    report: Value,
    audit: Vec<Value>,
}

impl Run {
    fn task(&self, id: &str) -> Value {
        self.report["run"]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["task"]["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no task {id}"))
    }
}

fn hostile_git_project() -> Project {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let repo = root.join("repo");
    for d in ["repo/specs", "holdout/expect"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    // A spec that `lightsout spec check` calls ready (as in `run.rs`).
    let mut spec = String::from(
        "---\nid: demo\ntitle: Hostile git\nkind: feature\nversion: 1\nstatus: ready\n---\n\n\
         ## Intent\nWrite a few files.\n\n## Users\n- **Developer**: reads the files.\n\n\
         ## Inputs\n- N/A: nothing is requested; the agents write files.\n\n\
         ## Outputs\n- Files in the repository.\n\n## Behaviour\n",
    );
    for (id, title, file) in CLASSES {
        let _ = write!(
            spec,
            "\n### {id}: {title}\nThe system SHALL write the {title} file.\n\n\
             #### Scenario: the {title} file is written\n- **GIVEN** the repository\n\
             - **WHEN** the task is built\n- **THEN** the {title} file exists\n"
        );
        std::fs::write(
            root.join(format!("holdout/expect/{id}.sh")),
            format!("grep -qx ok {file}.txt\n"),
        )
        .unwrap();
    }
    spec.push_str(
        "\n## Constraints\n- CON-1: Each file is at most 100 bytes.\n\n\
         ## Verification gate\n- No regression on scenarios that passed on main.\n",
    );
    std::fs::write(repo.join("specs/demo.md"), spec).unwrap();
    std::fs::write(repo.join(".gitignore"), ".lightsout/\n").unwrap();
    std::fs::write(root.join("holdout/check.sh"), RUNNER).unwrap();
    let marker = root.join("marker");
    let evil = root.join("evil.sh");
    std::fs::write(
        &evil,
        format!(
            "#!/bin/sh\necho \"ran $0 $*\" >> '{m}'\nenv >> '{m}'\ncat\n",
            m = marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&evil, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let agent = root.join("agent.sh");
    std::fs::write(&agent, AGENT).unwrap();
    std::fs::write(
        repo.join("lightsout.toml"),
        format!(
            "[run]\njobs = 1\nattempts = 1\n\n[agents]\ndefault = \"bad\"\n\n\
             [agent.bad]\npreset = \"command\"\nprogram = \"sh\"\nargs = [\"{}\"]\n\
             format = \"claude-json\"\n\n\
             [env]\nallow = [\"PATH\", \"HOME\", \"EVIL\"]\n\n\
             [limits]\nwall_ms = 20000\n\n\
             [holdout]\npath = \"../holdout\"\ncommand = \"sh check.sh\"\n",
            agent.display()
        ),
    )
    .unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "init"]);
    Project {
        _dir: dir,
        root,
        repo,
        marker,
        evil,
    }
}

fn snapshot_git(repo: &Path) -> GitBefore {
    let common = repo.join(".git");
    GitBefore {
        main: git(repo, &["rev-parse", "main"]),
        config: std::fs::read(common.join("config")).unwrap(),
        hooks: files(&common.join("hooks")),
        info: files(&common.join("info")),
    }
}

fn run_hostile(p: &Project) -> Run {
    let out = Command::cargo_bin("lightsout")
        .unwrap()
        .current_dir(&p.repo)
        .args(["run", "--run-id", "hg", "--format", "json", "specs/demo.md"])
        .env_remove("LIGHTSOUT_HOLDOUT")
        .env("EVIL", &p.evil)
        .env("E2E_FACTORY_SECRET", SECRET)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let run_dir = p.repo.join(".lightsout/runs/hg");
    let report: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("state.json")).unwrap_or_default())
            .unwrap_or_else(|e| panic!("no state.json ({e}): {stderr}"));
    let audit: Vec<Value> = std::fs::read_to_string(run_dir.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Run {
        stderr,
        dir: run_dir,
        report,
        audit,
    }
}

/// Nothing of the agent's ran in the factory's git, and no secret reached anything.
fn assert_nothing_ran_outside_and_no_secret_leaked(p: &Project) {
    assert!(
        !p.marker.exists(),
        "the agent's program ran outside the fence:\n{}",
        std::fs::read_to_string(&p.marker).unwrap_or_default()
    );
    let grep = Std::new("grep")
        .args(["-rqF", SECRET])
        .arg(&p.root)
        .status()
        .unwrap();
    assert_eq!(
        grep.code(),
        Some(1),
        "the factory's secret was written somewhere"
    );
}

/// The git directory is what it was: config, hooks and info byte for byte, the objects
/// whole, main moved only by the merge queue.
fn assert_git_dir_untouched(repo: &Path, before: &GitBefore, stderr: &str) {
    let common = repo.join(".git");
    assert_eq!(
        String::from_utf8_lossy(&std::fs::read(common.join("config")).unwrap()),
        String::from_utf8_lossy(&before.config)
    );
    assert_eq!(files(&common.join("hooks")), before.hooks);
    assert_eq!(files(&common.join("info")), before.info);
    git(repo, &["fsck", "--no-dangling"]);
    let log = git(
        repo,
        &["log", "--format=%s", &format!("{}..main", before.main)],
    );
    assert!(
        !log.is_empty() && log.lines().all(|l| l.contains("REQ-9")),
        "main: {log}\n{stderr}"
    );
    assert_eq!(
        git(
            repo,
            &[
                "for-each-ref",
                "refs/lightsout/hg/evil",
                "refs/heads/lightsout/hg/evil"
            ]
        ),
        ""
    );
}

/// The 300 MB file was refused from its size: it is in no commit, and no object of that
/// size was ever written.
fn assert_huge_file_never_stored(repo: &Path) {
    let all = git(repo, &["log", "--all", "--name-only", "--format="]);
    assert!(!all.contains("big.bin"), "{all}");
    let sizes = git(
        repo,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectsize)",
        ],
    );
    assert!(
        sizes
            .lines()
            .all(|s| s.parse::<u64>().unwrap() < 1024 * 1024),
        "{sizes}"
    );
}

/// Each hostile task failed at stage `policy` with a policy hit in the audit log; the
/// well-behaved one merged.
fn assert_hostile_tasks_failed_at_policy(run: &Run) {
    let (audit, stderr) = (&run.audit, &run.stderr);
    for (id, title, _) in &CLASSES[..8] {
        let t = run.task(id);
        assert_eq!(t["status"], "failed", "{id} ({title}): {t:#}\n{stderr}");
        assert_eq!(
            t["attempts"][0]["failed_stage"], "policy",
            "{id} ({title}): {:#}",
            t["attempts"][0]
        );
        assert!(
            audit
                .iter()
                .any(|e| e["kind"] == "policy_hit" && e["task"] == *id),
            "{id} ({title}) has no policy_hit"
        );
    }
    assert_eq!(run.task("REQ-9")["status"], "merged", "{stderr}");
    let hit = |id: &str, violation: &str| {
        audit.iter().any(|e| {
            e["kind"] == "policy_hit" && e["task"] == id && e["details"]["violation"] == violation
        })
    };
    assert!(hit("REQ-8", "file_too_large"));
}

/// Each hostile task is an incident of the report, naming what was undone.
fn assert_incidents_name_what_was_undone(run: &Run) {
    let outcome: Value =
        serde_json::from_slice(&std::fs::read(run.dir.join("report.json")).unwrap()).unwrap();
    let incidents = outcome["incidents"].to_string();
    // Moving main is prevented by the sandbox's read-only git directory where there is one
    // (bubblewrap), and detected and undone by the factory's integrity check otherwise.
    let main_move = outcome["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["task"] == "REQ-1")
        .map(|i| i["detail"].to_string())
        .unwrap_or_default();
    assert!(
        main_move.contains("the ref refs/heads/main was moved")
            || main_move.contains("refused (read-only)"),
        "{incidents}"
    );
    assert!(incidents.contains("big.bin"), "{incidents}");
}

/// The run ended, and its log is intact.
fn assert_run_ended_with_its_log_intact(repo: &Path, run: &Run) {
    assert!(
        run.audit.iter().any(|e| e["kind"] == "run_end"),
        "{}",
        run.stderr
    );
    Command::cargo_bin("lightsout")
        .unwrap()
        .current_dir(repo)
        .args(["audit", "verify", "hg"])
        .assert()
        .success();
}

#[test]
fn hostile_writes_into_git_are_contained_and_the_run_goes_on() {
    let project = hostile_git_project();
    let before = snapshot_git(&project.repo);
    let run = run_hostile(&project);
    assert_nothing_ran_outside_and_no_secret_leaked(&project);
    assert_git_dir_untouched(&project.repo, &before, &run.stderr);
    assert_huge_file_never_stored(&project.repo);
    assert_hostile_tasks_failed_at_policy(&run);
    assert_incidents_name_what_was_undone(&run);
    assert_run_ended_with_its_log_intact(&project.repo, &run);
}
