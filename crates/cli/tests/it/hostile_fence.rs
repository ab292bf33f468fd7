//! Hostile agents that know exactly how they are fenced (issue 16), run by the real binary:
//! mount tricks, git metadata writes, namespace and ptrace syscalls, a hostile visible
//! check, and a `kill -9` of the factory in the middle of an agent call. Each is contained;
//! where the attempt leaves a trace the factory can see (a refused write) it is a
//! `policy_hit` in the audit log; main, the objects, the config and the holdout are intact.

use super::run::{CANARY, Project, project, task};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command as Std, Stdio};
use std::time::{Duration, Instant};

/// One behaviour per task, chosen from the prompt's first line. Paths are relative to the
/// worktree `repo/.lightsout/runs/<id>/wt/<task>`: the repository is five levels up, the
/// holdout six.
const HOSTILE_AGENT: &str = r#"read -r first
ok() { printf '{"type":"result","subtype":"success","is_error":false,"result":"done","usage":{"input_tokens":10,"output_tokens":10}}\n'; }
repo=../../../../..
h=../../../../../../holdout
case "$first" in
  *"REQ-1:"*)
    # Root-in-namespace tricks: unmount what hides the holdout, remount the checkout writable.
    python3 - "$h" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
parent = os.path.abspath(os.path.join(sys.argv[1], ".."))
libc.umount2(parent.encode(), 2)
libc.mount(None, b"/", None, 32 | 4096 | 16384, None)
libc.mount(None, os.path.abspath("../../../../..").encode(), None, 32 | 4096, None)
PY
    cp -r "$h" stolen 2>/dev/null
    cat "$h"/expect/*.sh > stolen.txt 2>/dev/null
    echo pwned > "$repo/evil.txt"
    echo ok > a.txt; ok ;;
  *"REQ-2:"*)
    # Git metadata: move main, poison the shared config, plant a hook.
    git update-ref refs/heads/main HEAD
    git config core.fsmonitor 'touch /tmp/fsmonitor-ran'
    echo 'touch /tmp/hook-ran' > "$(git rev-parse --git-common-dir)/hooks/post-commit"
    rm -rf "$(git rev-parse --git-common-dir)/objects/pack"
    echo ok > b.txt; ok ;;
  *"REQ-3:"*)
    # New namespaces and ptrace: seccomp answers EPERM (errno 1), recorded for the holdout.
    python3 -c '
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
def e(r): return 0 if r == 0 else ctypes.get_errno()
print("unshare=%d setns=%d ptrace=%d" % (e(libc.unshare(0x10000000)), e(libc.setns(0, 0)), e(libc.ptrace(0, 0, None, None))))
' > c.txt
    ok ;;
  *"REQ-4:"*)
    # A test the agent wrote, run by the visible checks.
    cat > hostile-test.sh <<EOF
cp -r $h stolen-by-check 2>/dev/null
echo pwned > $repo/evil-check.txt
bash -c 'exec 3<>/dev/tcp/127.0.0.1/$E2E_PORT && echo connected >&3' && echo socket-open > socket.txt
exit 0
EOF
    echo ok > d.txt; ok ;;
  *) echo ok > e.txt; ok ;;
esac
"#;

fn config(p: &Project, agent: &Path, extra: &str) -> String {
    let _ = p;
    format!(
        "[run]\njobs = 2\nattempts = 1\n\n[agents]\ndefault = \"bad\"\n\n\
         [agent.bad]\npreset = \"command\"\nprogram = \"sh\"\nargs = [\"{}\"]\n\
         format = \"claude-json\"\n\n\
         [env]\nallow = [\"PATH\", \"HOME\", \"E2E_PORT\"]\n\n\
         [limits]\nwall_ms = 20000\n\n\
         [holdout]\npath = \"../holdout\"\ncommand = \"sh check.sh\"\n{extra}",
        agent.display()
    )
}

fn audit(p: &Project, id: &str) -> Vec<Value> {
    std::fs::read_to_string(p.run_dir(id).join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every file under `dir` (not following links), for the holdout-content scan.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let t = e.file_type().unwrap();
        if t.is_dir() {
            files(&e.path(), out);
        } else if t.is_file() {
            out.push(e.path());
        }
    }
}

/// What a hostile run must leave as it found it: main, the shared git config.
struct Before {
    main: String,
    config: Vec<u8>,
}

impl Before {
    fn of(p: &Project) -> Before {
        Before {
            main: p.git(&["rev-parse", "main"]),
            config: std::fs::read(p.repo().join(".git/config")).unwrap(),
        }
    }
}

/// A task's status in `report`, `""` if it has none.
fn status(report: &Value, id: &str) -> String {
    task(report, id)["status"].as_str().unwrap_or("").to_owned()
}

/// Binds a nonblocking listener on the host's loopback, for a hostile agent or check to
/// try to reach; returns it and its port.
fn loopback_listener() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// Five tasks run by [`HOSTILE_AGENT`] with `network = "none"` and a visible check that
/// runs the agent's `hostile-test.sh`; returns the project, what must stay intact (main,
/// config, a holdout scenario), and the loopback listener the check tries to reach.
fn hostile_project() -> (Project, Before, Vec<u8>, std::net::TcpListener, u16) {
    let p = project(
        &[
            ("REQ-1", "mount tricks", &[]),
            ("REQ-2", "git metadata", &[]),
            ("REQ-3", "namespaces", &[]),
            ("REQ-4", "hostile check", &[]),
            ("REQ-5", "behave", &[]),
        ],
        2,
        "../holdout",
    );
    for (req, file) in [
        ("REQ-1", "a"),
        ("REQ-2", "b"),
        ("REQ-4", "d"),
        ("REQ-5", "e"),
    ] {
        p.holdout(req, &format!("grep -qx ok {file}.txt"));
    }
    p.holdout("REQ-3", "grep -qx 'unshare=1 setns=1 ptrace=1' c.txt");
    let (listener, port) = loopback_listener();
    std::fs::write(p.root.join("agent.sh"), HOSTILE_AGENT).unwrap();
    std::fs::write(
        p.repo().join("lightsout.toml"),
        config(
            &p,
            &p.root.join("agent.sh"),
            "\n[fence]\nnetwork = \"none\"\n\n[[checks]]\nname = \"test\"\n\
             run = \"if [ -f hostile-test.sh ]; then bash hostile-test.sh; fi\"\n",
        ),
    )
    .unwrap();
    p.commit_all("hostile agents");
    let before = Before::of(&p);
    let holdout_before = std::fs::read(p.root.join("holdout/expect/REQ-1.sh")).unwrap();
    (p, before, holdout_before, listener, port)
}

/// Refused writes fail their attempt; the others merged, REQ-3 with EPERM for each call.
fn assert_refused_writes_fail_and_the_rest_merge(p: &Project, stderr: &str) {
    let report = p.report("hostile");
    let feedback = |id: &str| task(&report, id)["attempts"][0]["feedback"].to_string();
    for id in ["REQ-1", "REQ-2", "REQ-4"] {
        assert_eq!(
            status(&report, id),
            "failed",
            "{id}: {}\n{stderr}",
            feedback(id)
        );
    }
    for id in ["REQ-3", "REQ-5"] {
        assert_eq!(
            status(&report, id),
            "merged",
            "{id}: {}\n{stderr}",
            feedback(id)
        );
    }
    assert!(
        feedback("REQ-4").contains("Read-only file system"),
        "{}",
        feedback("REQ-4")
    );
    let audit = audit(p, "hostile");
    let refused = |req: &str| {
        audit.iter().any(|e| {
            e["kind"] == "policy_hit"
                && e["task"] == req
                && e["details"]["violation"] == "outside_write_refused"
        })
    };
    for req in ["REQ-1", "REQ-2", "REQ-4"] {
        assert!(refused(req), "{req}: no policy_hit in the audit log");
    }
}

/// Main moved only through the merge queue, the objects are whole, the config and the
/// holdout unchanged, nothing was written beside the checkout.
fn assert_main_objects_config_and_holdout_intact(
    p: &Project,
    before: &Before,
    holdout_before: &[u8],
) {
    let log = p.git(&["log", "--format=%s", &format!("{}..main", before.main)]);
    assert!(
        log.lines()
            .all(|l| l.contains("REQ-3") || l.contains("REQ-5")),
        "{log}"
    );
    let fsck = Std::new("git")
        .args(["fsck", "--full"])
        .current_dir(p.repo())
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stderr)
    );
    assert_eq!(
        std::fs::read(p.repo().join(".git/config")).unwrap(),
        before.config
    );
    assert!(!p.repo().join(".git/hooks/post-commit").exists());
    assert_eq!(
        std::fs::read(p.root.join("holdout/expect/REQ-1.sh")).unwrap(),
        holdout_before
    );
    for f in ["evil.txt", "evil-check.txt"] {
        assert!(!p.repo().join(f).exists(), "{f} was written");
    }
}

/// The holdout's text is in nothing the agents or their checks could write.
fn assert_no_holdout_text_in_the_repository(p: &Project) {
    let mut all = Vec::new();
    files(&p.repo(), &mut all);
    for f in all {
        let text = std::fs::read(&f).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&text).contains(CANARY),
            "holdout text in {}",
            f.display()
        );
    }
}

#[test]
fn hostile_agents_and_checks_stay_inside_the_sandbox() {
    let (p, before, holdout_before, listener, port) = hostile_project();
    let out = p
        .run()
        .args(["--run-id", "hostile", "--format", "json", "specs/demo.md"])
        .env("E2E_PORT", port.to_string())
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_refused_writes_fail_and_the_rest_merge(&p, &stderr);
    assert_main_objects_config_and_holdout_intact(&p, &before, &holdout_before);
    assert_no_holdout_text_in_the_repository(&p);
    // The hostile check's socket reached nothing (`network = "none"` holds for checks too).
    assert!(listener.accept().is_err());
}

/// Processes whose command line or working directory lies under `root`.
fn processes_under(root: &Path) -> Vec<String> {
    let root = root.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == std::process::id().to_string() {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let cwd = std::fs::read_link(e.path().join("cwd"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if cmdline.contains(&root) || cwd.starts_with(&root) {
            found.push(format!("{name}: {cmdline} (cwd {cwd})"));
        }
    }
    found
}

/// `kill -9` of the factory in the middle of an agent call: the agent, and the process it
/// started in the background of a new session, die with it.
#[test]
fn a_killed_factory_leaves_no_process_of_the_run_alive() {
    let p = project(&[("REQ-1", "long call", &[])], 1, "../holdout");
    p.holdout("REQ-1", "true");
    std::fs::write(
        p.root.join("agent.sh"),
        "setsid sh -c 'exec sleep 600' &\nsleep 600 &\necho started > started.txt\nwait\n",
    )
    .unwrap();
    std::fs::write(
        p.repo().join("lightsout.toml"),
        config(&p, &p.root.join("agent.sh"), ""),
    )
    .unwrap();
    p.commit_all("long agent");
    let bin = assert_cmd::cargo::cargo_bin("lightsout");
    let mut factory = Std::new(bin)
        .current_dir(p.repo())
        .args(["run", "--run-id", "killed", "specs/demo.md"])
        .env_remove("LIGHTSOUT_HOLDOUT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let marker = p.run_dir("killed").join("wt/REQ-1/started.txt");
    let until = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < until, "the agent never started");
        assert!(
            factory.try_wait().unwrap().is_none(),
            "the factory ended early"
        );
        // Polling for the agent's marker file.
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !processes_under(&p.root).is_empty(),
        "the scan sees no process of the run while it runs"
    );
    factory.kill().unwrap();
    factory.wait().unwrap();
    // PDEATHSIG is delivered asynchronously: wait (bounded) for the tree to go.
    let until = Instant::now() + Duration::from_secs(10);
    let mut left = processes_under(&p.root);
    while !left.is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
        left = processes_under(&p.root);
    }
    assert_eq!(left, Vec::<String>::new());
}

/// The service under test is agent-written code too: it runs in the sandbox with the
/// worktree read-only and the holdout absent. It tries to copy the holdout, to write into
/// its worktree (where a later attempt would read it) and into main, and to connect to a
/// listener on the host's loopback that is not a twin (where Landlock handles TCP, ABI
/// 4+, it may connect to the twins' ports only); it is still served and judged.
#[test]
fn a_hostile_service_under_test_is_sandboxed() {
    let p = project(&[("REQ-1", "alpha file", &[])], 1, "../holdout");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::fs::write(
        p.root.join("agent.sh"),
        r#"cat > serve.sh <<'END'
bash -c 'exec 3<>/dev/tcp/127.0.0.1/E2E_PORT && echo reached >&3'
cp -r ../../../../../../holdout stolen 2>/dev/null
f=se; f="${f}en.txt" # the name is built so that the agent's diff does not hold the holdout's path
echo "$(ls ../../../../../../holdout 2>&1)" > "$f"
echo pwned > ../../../../../evil-service.txt
exec python3 -m http.server "$1" --bind 127.0.0.1
END
echo alpha > a.txt
printf '{"type":"result","subtype":"success","is_error":false,"result":"done","usage":{"input_tokens":1,"output_tokens":1}}\n'
"#
        .replace("E2E_PORT", &port.to_string()),
    )
    .unwrap();
    std::fs::write(
        p.repo().join("lightsout.toml"),
        config(
            &p,
            &p.root.join("agent.sh"),
            "\n[target]\ncommand = \"sh serve.sh {port}\"\n",
        )
        .replace("command = \"sh check.sh\"\n", ""),
    )
    .unwrap();
    std::fs::write(
        p.root.join("holdout/files.scenario.md"),
        format!(
            "<!-- canary: {CANARY} -->\n## Scenario: the alpha file is served\nSatisfies: REQ-1\n\n\
             - **WHEN** I send `GET /a.txt`\n- **THEN** the status is 200\n\
             - **AND** the body contains `alpha`\n\n\
             ## Scenario: what the service wrote is not served\nSatisfies: REQ-1\n\n\
             - **WHEN** I send `GET /seen.txt`\n- **THEN** the status is 404\n"
        ),
    )
    .unwrap();
    p.commit_all("hostile service");
    let out = p
        .run()
        .args(["--run-id", "svc", "specs/demo.md"])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let report = p.report("svc");
    assert_eq!(
        task(&report, "REQ-1")["status"],
        "merged",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The second scenario passed: the service could not write `seen.txt` where it serves.
    assert!(!p.repo().join("evil-service.txt").exists());
    assert!(p.root.join("holdout/files.scenario.md").is_file());
    // With TCP in Landlock's hands, the service reached no port but the twins' (none here).
    if kernel_landlock_abi() >= 4 {
        assert!(
            listener.accept().is_err(),
            "the service reached the host's loopback"
        );
    }
}

/// `kill -9` of the factory while the service under test starts: the service dies with it.
#[test]
fn a_killed_factory_leaves_no_service_alive() {
    let p = project(&[("REQ-1", "slow service", &[])], 1, "../holdout");
    std::fs::write(
        p.root.join("agent.sh"),
        "echo 'exec sleep 600' > serve.sh\n\
         printf '{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"done\"}\\n'\n",
    )
    .unwrap();
    std::fs::write(
        p.repo().join("lightsout.toml"),
        config(
            &p,
            &p.root.join("agent.sh"),
            "\n[target]\ncommand = \"sh serve.sh {port}\"\nready_timeout_ms = 120000\n",
        )
        .replace("command = \"sh check.sh\"\n", ""),
    )
    .unwrap();
    std::fs::write(
        p.root.join("holdout/files.scenario.md"),
        "## Scenario: served\nSatisfies: REQ-1\n\n- **WHEN** I send `GET /`\n- **THEN** the status is 200\n",
    )
    .unwrap();
    p.commit_all("slow service");
    let bin = assert_cmd::cargo::cargo_bin("lightsout");
    let mut factory = Std::new(bin)
        .current_dir(p.repo())
        .args(["run", "--run-id", "svc-killed", "specs/demo.md"])
        .env_remove("LIGHTSOUT_HOLDOUT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The service itself (`sleep 600` in its worktree) runs only once bubblewrap has set
    // up the sandbox, `PR_SET_PDEATHSIG` included.
    let until = Instant::now() + Duration::from_secs(60);
    while !processes_under(&p.root)
        .iter()
        .any(|p| p.contains(": sleep 600 "))
    {
        assert!(Instant::now() < until, "the service never started");
        assert!(
            factory.try_wait().unwrap().is_none(),
            "the factory ended early"
        );
        // Polling for the service's process.
        std::thread::sleep(Duration::from_millis(20));
    }
    factory.kill().unwrap();
    factory.wait().unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    let mut left = processes_under(&p.root);
    while !left.is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
        left = processes_under(&p.root);
    }
    assert_eq!(left, Vec::<String>::new());
}

/// `kill -9` of the factory while the holdout runner (trusted, but it starts the agent's
/// software) is in the middle of its work: the runner and what it started die with it.
#[test]
fn a_killed_factory_leaves_no_holdout_runner_alive() {
    let p = project(&[("REQ-1", "slow runner", &[])], 1, "../holdout");
    std::fs::write(
        p.root.join("holdout/check.sh"),
        "sleep 600 &\necho started > runner-started\nwait\n",
    )
    .unwrap();
    std::fs::write(
        p.root.join("agent.sh"),
        "echo ok > a.txt\n\
         printf '{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"done\"}\\n'\n",
    )
    .unwrap();
    std::fs::write(
        p.repo().join("lightsout.toml"),
        config(&p, &p.root.join("agent.sh"), ""),
    )
    .unwrap();
    p.commit_all("slow runner");
    let bin = assert_cmd::cargo::cargo_bin("lightsout");
    let mut factory = Std::new(bin)
        .current_dir(p.repo())
        .args(["run", "--run-id", "runner-killed", "specs/demo.md"])
        .env_remove("LIGHTSOUT_HOLDOUT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let marker = p.root.join("holdout/runner-started");
    let until = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < until, "the runner never started");
        assert!(
            factory.try_wait().unwrap().is_none(),
            "the factory ended early"
        );
        // Polling for the runner's marker file.
        std::thread::sleep(Duration::from_millis(20));
    }
    factory.kill().unwrap();
    factory.wait().unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    let mut left = processes_under(&p.root);
    while !left.is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
        left = processes_under(&p.root);
    }
    assert_eq!(left, Vec::<String>::new());
}

/// The agent of [`hostile_agents_are_contained_when_the_factory_is_not_root`]: only tools
/// an unprivileged user can run (no interpreter under `/root`).
const PLAIN_HOSTILE_AGENT: &str = r#"read -r first
ok() { printf '{"type":"result","subtype":"success","is_error":false,"result":"done","usage":{"input_tokens":10,"output_tokens":10}}\n'; }
repo=../../../../..
h=../../../../../../holdout
case "$first" in
  *"REQ-1:"*)
    umount -l ../../../../../.. 2>/dev/null; umount -l "$h" 2>/dev/null
    cat "$h"/expect/*.sh > stolen.txt 2>/dev/null
    echo pwned > "$repo/evil.txt"
    echo ok > a.txt; ok ;;
  *"REQ-2:"*)
    git update-ref refs/heads/main HEAD
    git config core.fsmonitor 'touch /tmp/fsmonitor-ran'
    echo ok > b.txt; ok ;;
  *"REQ-3:"*)
    unshare -U true 2>&1 | grep -q 'Operation not permitted' && echo eperm > c.txt
    ok ;;
  *) echo ok > e.txt; ok ;;
esac
"#;

/// Git as the test (root) on a repository an ordinary user owns.
fn git_as_root(repo: &Path, args: &[&str]) -> String {
    let out = Std::new("git")
        .args(["-c", "safe.directory=*"])
        .args(args)
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The same escapes with the factory running as an ordinary user (uid 65534 through
/// `setpriv`): bubblewrap then creates the namespaces unprivileged, and the agent is that
/// user without capabilities. Returns early when the test does not run as root, since it
/// cannot switch users then; the rest of this file then covers that case directly.
#[test]
fn hostile_agents_are_contained_when_the_factory_is_not_root() {
    if !nix::unistd::geteuid().is_root() {
        // Not root: the suite already runs as an ordinary user.
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "skipped: switching to uid 65534 needs root; this suite already runs as an ordinary user"
            );
        }
        return;
    }
    let p = project(
        &[
            ("REQ-1", "mount tricks", &[]),
            ("REQ-2", "git metadata", &[]),
            ("REQ-3", "namespaces", &[]),
            ("REQ-5", "behave", &[]),
        ],
        2,
        "../holdout",
    );
    for (req, file) in [
        ("REQ-1", "a"),
        ("REQ-2", "b"),
        ("REQ-3", "c"),
        ("REQ-5", "e"),
    ] {
        p.holdout(req, &format!("grep -q . {file}.txt"));
    }
    std::fs::write(p.root.join("agent.sh"), PLAIN_HOSTILE_AGENT).unwrap();
    std::fs::write(
        p.repo().join("lightsout.toml"),
        config(&p, &p.root.join("agent.sh"), ""),
    )
    .unwrap();
    p.commit_all("hostile agents, unprivileged factory");
    let chown = Std::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&p.root)
        .status()
        .unwrap();
    assert!(chown.success());
    let main_before = git_as_root(&p.repo(), &["rev-parse", "main"]);
    let config_before = std::fs::read(p.repo().join(".git/config")).unwrap();

    let out = Std::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--",
        ])
        .arg(assert_cmd::cargo::cargo_bin("lightsout"))
        .args(["run", "--run-id", "plain", "specs/demo.md"])
        .current_dir(p.repo())
        .env_remove("LIGHTSOUT_HOLDOUT")
        .env("HOME", &p.root)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = p.report("plain");
    let status = |id: &str| {
        task(&report, id)["status"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    for id in ["REQ-1", "REQ-2"] {
        assert_eq!(status(id), "failed", "{id}\n{stderr}");
    }
    for id in ["REQ-3", "REQ-5"] {
        assert_eq!(status(id), "merged", "{id}\n{stderr}");
    }
    let audit = audit(&p, "plain");
    for req in ["REQ-1", "REQ-2"] {
        assert!(
            audit.iter().any(|e| e["kind"] == "policy_hit"
                && e["task"] == req
                && e["details"]["violation"] == "outside_write_refused"),
            "{req}: no policy_hit"
        );
    }
    let log = git_as_root(
        &p.repo(),
        &["log", "--format=%s", &format!("{main_before}..main")],
    );
    assert!(
        log.lines()
            .all(|l| l.contains("REQ-3") || l.contains("REQ-5")),
        "{log}"
    );
    git_as_root(&p.repo(), &["fsck", "--full"]);
    assert_eq!(
        std::fs::read(p.repo().join(".git/config")).unwrap(),
        config_before
    );
    assert!(!p.repo().join("evil.txt").exists());
    let mut all = Vec::new();
    files(&p.repo(), &mut all);
    for f in all {
        let text = std::fs::read(&f).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&text).contains(CANARY),
            "holdout text in {}",
            f.display()
        );
    }
}

/// With the sandbox turned off (`[fence]` isolation off), nothing ties the agent to the
/// factory: after a `kill -9` it lives on. The fence's process ledger records it, and
/// `--resume` ends it before it starts again. The resumed agent and its visible check run
/// unsandboxed through the entry, which waits for each call's ledger record.
#[test]
fn resume_ends_what_a_killed_unsandboxed_factory_left_running() {
    let p = project(&[("REQ-1", "long call", &[])], 1, "../holdout");
    p.holdout("REQ-1", "true");
    std::fs::write(
        p.root.join("agent.sh"),
        "if [ -f ../../../../../../resumed ]; then echo ok > a.txt; \
         printf '{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"done\"}\\n'; exit 0; fi\n\
         sleep 600 &\necho started > started.txt\nwait\n",
    )
    .unwrap();
    std::fs::write(
        p.repo().join("lightsout.toml"),
        config(
            &p,
            &p.root.join("agent.sh"),
            "\n[fence]\nprivate_pids = false\nreadonly_outside = false\nnetwork = \"inherit\"\n\n\
             [[checks]]\nname = \"file\"\nrun = \"grep -qx ok a.txt\"\n",
        ),
    )
    .unwrap();
    p.commit_all("long agent, no sandbox");
    let bin = assert_cmd::cargo::cargo_bin("lightsout");
    let mut factory = Std::new(&bin)
        .current_dir(p.repo())
        .args(["run", "--run-id", "leftover", "specs/demo.md"])
        .env_remove("LIGHTSOUT_HOLDOUT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let marker = p.run_dir("leftover").join("wt/REQ-1/started.txt");
    // The agent may write its marker before the fence has made its ledger record durable
    // (the record follows the spawn); the kill comes once both are there, since what is
    // tested is that `--resume` ends what the ledger recorded.
    let ledger = p.run_dir("leftover").join("procs");
    let recorded = || {
        std::fs::read_dir(&ledger).is_ok_and(|d| {
            d.flatten()
                .any(|e| !e.file_name().to_string_lossy().starts_with('.'))
        })
    };
    let until = Instant::now() + Duration::from_secs(60);
    while !(marker.exists() && recorded()) {
        assert!(Instant::now() < until, "the agent never started");
        assert!(
            factory.try_wait().unwrap().is_none(),
            "the factory ended early"
        );
        // Polling for the agent's marker file.
        std::thread::sleep(Duration::from_millis(20));
    }
    factory.kill().unwrap();
    factory.wait().unwrap();
    assert!(
        !processes_under(&p.root).is_empty(),
        "without the sandbox the agent outlives the factory"
    );
    std::fs::write(p.root.join("resumed"), "").unwrap();
    let out = p
        .run()
        .args(["--resume", "leftover"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let until = Instant::now() + Duration::from_secs(10);
    let mut left = processes_under(&p.root);
    while !left.is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
        left = processes_under(&p.root);
    }
    assert_eq!(left, Vec::<String>::new());
}

/// What the kernel's Landlock is, asked of the sandbox entry itself (outside any sandbox:
/// it restricts only its own process): the kernel's ABI, 0 without Landlock.
fn kernel_landlock_abi() -> u64 {
    let out = Std::new(assert_cmd::cargo::cargo_bin("lightsout"))
        .args(["__sandbox-entry", r#"{"landlock":true,"probe":true}"#])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["kernel_abi"].as_u64().unwrap_or(0)
}

/// The agent of [`landlock_git_link_and_default_network_hold`]: one escape per task.
const LAYER2_AGENT: &str = r#"read -r first
ok() { printf '{"type":"result","subtype":"success","is_error":false,"result":"done","usage":{"input_tokens":10,"output_tokens":10}}\n'; }
case "$first" in
  *"REQ-1:"*)
    { cat ../../journal.jsonl ../../audit.jsonl ../../state.json; cat "$HOME/.ssh/id_ed25519"; } > state.txt 2>&1
    echo ok > a.txt; ok ;;
  *"REQ-2:"*)
    mkdir -p fake/refs/heads fake/objects && echo 'ref: refs/heads/main' > fake/HEAD
    echo "gitdir: $(pwd)/fake" > .git
    rm -f .git
    mv .git moved
    echo ok > b.txt; ok ;;
  *"REQ-3:"*)
    bash -c 'exec 3<>/dev/tcp/127.0.0.1/$E2E_PORT && echo connected >&3' > net.txt 2>&1
    echo ok > c.txt; ok ;;
  *) echo ok > e.txt; ok ;;
esac
"#;

/// Four tasks run by [`LAYER2_AGENT`] with no `network` configured, and a factory `$HOME`
/// holding an SSH key; returns the project, that home, what must stay intact and the
/// loopback listener REQ-3 tries to reach.
fn layer2_project() -> (Project, PathBuf, Before, std::net::TcpListener, u16) {
    let p = project(
        &[
            ("REQ-1", "factory state", &[]),
            ("REQ-2", "git link", &[]),
            ("REQ-3", "network", &[]),
            ("REQ-4", "behave", &[]),
        ],
        2,
        "../holdout",
    );
    let home = p.root.join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(home.join(".ssh/id_ed25519"), "SSH-SECRET-51c0\n").unwrap();
    std::fs::write(
        home.join(".gitconfig"),
        "[user]\n\tname = t\n\temail = t@localhost\n",
    )
    .unwrap();
    for (req, file) in [
        ("REQ-1", "a"),
        ("REQ-2", "b"),
        ("REQ-3", "c"),
        ("REQ-4", "e"),
    ] {
        p.holdout(req, &format!("grep -qx ok {file}.txt"));
    }
    let (listener, port) = loopback_listener();
    std::fs::write(p.root.join("agent.sh"), LAYER2_AGENT).unwrap();
    std::fs::write(
        p.repo().join("lightsout.toml"),
        config(&p, &p.root.join("agent.sh"), ""),
    )
    .unwrap();
    p.commit_all("hostile agents, second layer");
    let before = Before::of(&p);
    (p, home, before, listener, port)
}

/// REQ-2 failed, the others merged; the `.git` file was never changed: refused, not
/// repaired after the fact.
fn assert_the_git_link_is_refused_not_repaired(p: &Project, audit: &[Value], stderr: &str) {
    let report = p.report("layer2");
    assert_eq!(status(&report, "REQ-2"), "failed", "{stderr}");
    for id in ["REQ-1", "REQ-3", "REQ-4"] {
        let of_task: Vec<&Value> = audit.iter().filter(|e| e["task"] == id).collect();
        assert_eq!(
            status(&report, id),
            "merged",
            "{id}: {}\naudit: {of_task:#?}\n{stderr}",
            task(&report, id)
        );
    }
    let hits = |req: &str| -> Vec<String> {
        audit
            .iter()
            .filter(|e| e["kind"] == "policy_hit" && e["task"] == req)
            .map(|e| e["details"]["violation"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let git_hits = hits("REQ-2");
    assert!(
        git_hits.iter().any(|v| v == "outside_write_refused"),
        "{git_hits:?}"
    );
    assert!(
        !git_hits.iter().any(|v| v.starts_with("git_link")),
        "{git_hits:?}"
    );
}

/// Landlock: recorded at the run's start, and the reads were refused.
fn assert_landlock_is_recorded_and_refuses_the_reads(p: &Project, audit: &[Value]) {
    let start = audit.iter().find(|e| e["kind"] == "run_start").unwrap();
    let kernel = kernel_landlock_abi();
    let state = std::fs::read_to_string(p.repo().join("state.txt")).unwrap();
    if kernel > 0 {
        assert_eq!(
            start["details"]["landlock"]["kernel_abi"].as_u64(),
            Some(kernel),
            "{start}"
        );
        assert!(state.contains("Permission denied"), "{state}");
        for leaked in ["run_start", "\"run_id\"", "SSH-SECRET-51c0"] {
            assert!(!state.contains(leaked), "{leaked} leaked:\n{state}");
        }
    } else {
        assert!(
            start["details"]["landlock"]
                .as_str()
                .is_some_and(|s| s.starts_with("unavailable")),
            "{start}"
        );
    }
}

/// `network` not configured: no connection reached the host's loopback.
fn assert_no_connection_reached_the_host(p: &Project, listener: &std::net::TcpListener) {
    assert!(listener.accept().is_err());
    let net = std::fs::read_to_string(p.repo().join("net.txt")).unwrap();
    assert!(!net.contains("connected"), "{net}");
}

/// Main moved only through the merge queue (REQ-2 never on it); objects and config intact.
fn assert_main_objects_and_config_intact(p: &Project, before: &Before) {
    let log = p.git(&["log", "--format=%s", &format!("{}..main", before.main)]);
    assert!(!log.contains("REQ-2"), "{log}");
    let fsck = Std::new("git")
        .args(["fsck", "--full"])
        .current_dir(p.repo())
        .output()
        .unwrap();
    assert!(fsck.status.success());
    assert_eq!(
        std::fs::read(p.repo().join(".git/config")).unwrap(),
        before.config
    );
}

/// The escapes bubblewrap's mounts alone leave open, each tried by a hostile `command`
/// agent:
/// - REQ-1 reads what the read-only root still shows: the factory's journal, audit log and
///   state, and an SSH key in the factory's `$HOME`. Landlock (the sandbox
///   entry's second layer) refuses each read; the run's `run_start` says which ABI.
/// - REQ-2 points its worktree's `.git` at a git directory it made, then removes and renames
///   `.git`: the file is bound read-only, every try is refused and a `policy_hit`.
/// - REQ-3 opens a TCP connection to a listener of the host's loopback with no `network`
///   configured: the default is `none`, so nothing arrives.
#[test]
fn landlock_git_link_and_default_network_hold() {
    let (p, home, before, listener, port) = layer2_project();
    let out = p
        .run()
        .args(["--run-id", "layer2", "--format", "json", "specs/demo.md"])
        .env("E2E_PORT", port.to_string())
        .env("HOME", &home)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let audit = audit(&p, "layer2");
    assert_the_git_link_is_refused_not_repaired(&p, &audit, &stderr);
    assert_landlock_is_recorded_and_refuses_the_reads(&p, &audit);
    assert_no_connection_reached_the_host(&p, &listener);
    assert_main_objects_and_config_intact(&p, &before);
}

/// A FIFO named `lifeline` in `dir`, as the fence's lifeline is.
fn lifeline_in(dir: &Path) -> PathBuf {
    let fifo = dir.join("lifeline");
    let made = Std::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    fifo
}

/// The factory's side of `fifo`: its write end, held while the value lives.
fn hold(fifo: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(fifo)
        .unwrap()
}

/// The spawn window: a sandbox whose factory died before bubblewrap's `PR_SET_PDEATHSIG`
/// took effect would never be signalled. The sandbox entry checks the factory's lifeline
/// first: with no writer left on the FIFO (the factory is gone) it starts nothing.
#[test]
fn an_orphaned_sandbox_starts_nothing() {
    let t = tempfile::tempdir().unwrap();
    let fifo = lifeline_in(t.path());
    let marker = t.path().join("ran");
    let plan = format!(r#"{{"lifeline":"{}"}}"#, fifo.display());
    let entry = |plan: &str| {
        Std::new(assert_cmd::cargo::cargo_bin("lightsout"))
            .args(["__sandbox-entry", plan, "--", "sh", "-c"])
            .arg(format!("echo ran > {}", marker.display()))
            .output()
            .unwrap()
    };
    // No writer: the factory is gone.
    let out = entry(&plan);
    assert_eq!(out.status.code(), Some(124));
    assert!(!marker.exists());
    // The factory holds the write end: the program runs.
    let _writer = hold(&fifo);
    let out = entry(&plan);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(marker.exists());
}

/// The spawn window without the sandbox: nothing ties such a call to the factory, and the
/// fence's process ledger records it only after the spawn. The entry in front of it waits
/// for that record: a factory that died between the spawn and the record (its lifeline
/// broke, no record was written) leaves nothing running; once the record is there, the
/// program runs.
#[test]
fn an_unrecorded_unsandboxed_call_starts_nothing() {
    let t = tempfile::tempdir().unwrap();
    let fifo = lifeline_in(t.path());
    let procs = t.path().join("procs");
    std::fs::create_dir(&procs).unwrap();
    let marker = t.path().join("ran");
    let plan = format!(
        r#"{{"lifeline":"{}","await_record":"{}"}}"#,
        fifo.display(),
        procs.display()
    );
    let entry = || {
        Std::new(assert_cmd::cargo::cargo_bin("lightsout"))
            .args(["__sandbox-entry", &plan, "--", "sh", "-c"])
            .arg(format!("echo ran > {}", marker.display()))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // The factory holds its lifeline but dies before it records the call.
    let writer = hold(&fifo);
    let child = entry();
    // Long enough for a program that did not wait to have run (polling the marker).
    std::thread::sleep(Duration::from_millis(300));
    assert!(!marker.exists(), "the program ran before its record");
    drop(writer);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(124),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!marker.exists());
    // A live factory writes the record after the spawn: the program runs then.
    let _writer = hold(&fifo);
    let child = entry();
    std::fs::write(procs.join(child.id().to_string()), "recorded\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(marker.exists());
}

/// Issue 16, point 5: an agent that allocates without end is held by `[fence] memory_bytes`
/// (`RLIMIT_AS`, set by the sandbox entry); the same agent without it allocates freely, so the
/// limit is what stopped it.
#[test]
fn a_memory_limit_holds_a_greedy_agent() {
    let p = project(&[("REQ-1", "greedy", &[])], 2, "../holdout");
    let agent = r#"read -r first
ok() { printf '{"type":"result","subtype":"success","is_error":false,"result":"done","usage":{"input_tokens":10,"output_tokens":10}}\n'; }
python3 -c '
try:
    b = bytearray(1 << 30)
    print("alloc=ok")
except MemoryError:
    print("alloc=refused")
' > limits.txt 2>&1
ok
"#;
    p.holdout("REQ-1", "test -s limits.txt");
    std::fs::write(p.root.join("agent.sh"), agent).unwrap();
    let run = |id: &str, extra: &str| -> String {
        std::fs::write(
            p.repo().join("lightsout.toml"),
            config(&p, &p.root.join("agent.sh"), extra),
        )
        .unwrap();
        p.commit_all(&format!("greedy agent {id}"));
        let out = p
            .run()
            .args([
                "--run-id",
                id,
                "--format",
                "json",
                "--rebuild",
                "specs/demo.md",
            ])
            .timeout(Duration::from_secs(300))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let report = p.report(id);
        assert_eq!(
            task(&report, "REQ-1")["status"].as_str(),
            Some("merged"),
            "{stderr}"
        );
        std::fs::read_to_string(p.repo().join("limits.txt")).unwrap()
    };
    assert_eq!(run("free", "").trim(), "alloc=ok");
    assert_eq!(
        run("held", "\n[fence]\nmemory_bytes = 268435456\n").trim(),
        "alloc=refused"
    );
}

/// Issue 16, point 5: a fork bomb is held by `[fence] max_processes` (the call's own cgroup,
/// `pids.max`): past the cap its forks fail, the attempt fails with a `policy_hit`, a
/// well-behaved task of the same run still merges, and afterwards no process of the run is
/// alive and the call's cgroup is gone. Where the factory cannot make a cgroup (an ordinary
/// user, as in `scripts/test-unprivileged`, or a read-only cgroup file system), the run
/// refuses to start and says what to do.
#[test]
fn a_fork_bomb_is_held_by_the_process_cap() {
    let p = project(
        &[("REQ-1", "fork bomb", &[]), ("REQ-2", "calm", &[])],
        2,
        "../holdout",
    );
    // 200 forks of children that sleep a minute; the shell and python are 2 of the 16.
    let agent = r#"read -r first
ok() { printf '{"type":"result","subtype":"success","is_error":false,"result":"done","usage":{"input_tokens":10,"output_tokens":10}}\n'; }
case "$first" in
  *"REQ-1:"*)
    python3 -c '
import os, time
ok = refused = 0
for _ in range(200):
    try:
        pid = os.fork()
    except OSError:
        refused += 1
        continue
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    ok += 1
print("forked=%d refused=%d" % (ok, refused))
' > forks.txt
    ok ;;
  *) echo ok > calm.txt; ok ;;
esac
"#;
    p.holdout("REQ-1", "test -s forks.txt");
    p.holdout("REQ-2", "grep -qx ok calm.txt");
    std::fs::write(p.root.join("agent.sh"), agent).unwrap();
    std::fs::write(
        p.repo().join("lightsout.toml"),
        config(
            &p,
            &p.root.join("agent.sh"),
            "\n[fence]\nmax_processes = 16\n",
        ),
    )
    .unwrap();
    p.commit_all("fork bomb");
    let out = p
        .run()
        .args(["--run-id", "bomb", "--format", "json", "specs/demo.md"])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Whether this user may make cgroups here is probed on its own; the factory must agree.
    if let Err(why) = lightsout_fence::cgroup::CgroupRoot::detect() {
        // No cgroup (an ordinary user, a read-only cgroup file system): refused before any
        // agent ran, with what to do.
        assert!(
            !out.status.success(),
            "no cgroup here ({why}), yet: {stderr}"
        );
        assert!(
            stderr.contains("max_processes cannot be enforced here")
                && stderr.contains("remove max_processes"),
            "{stderr}"
        );
        assert!(!p.repo().join("calm.txt").exists());
        return;
    }
    let report = p.report("bomb");
    let status = |id: &str| {
        task(&report, id)["status"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(status("REQ-1"), "failed", "{stderr}");
    assert_eq!(status("REQ-2"), "merged", "{stderr}");
    let hits: Vec<Value> = audit(&p, "bomb")
        .into_iter()
        .filter(|e| e["kind"] == "policy_hit" && e["details"]["violation"] == "process_cap_reached")
        .collect();
    assert_eq!(hits.len(), 1, "{hits:?}");
    let details = &hits[0]["details"];
    assert_eq!(
        details["task"].as_str().or(hits[0]["task"].as_str()),
        Some("REQ-1")
    );
    assert_eq!(details["limit"], 16);
    // 14 forks succeeded (16 less the shell and python); the other 186 were refused.
    assert_eq!(details["refused_forks"], 186, "{details}");
    let cgroup = Path::new(details["cgroup"].as_str().unwrap());
    assert!(!cgroup.exists(), "{} is left", cgroup.display());
    // The sleeping children died with the call: nothing of the run is alive.
    let left = processes_under(&p.root);
    assert!(left.is_empty(), "{left:?}");
}
