//! End-to-end tests of the real `lightsout` binary, one module per stage.

mod agents;
mod audit;
mod config;
mod daily;
mod eval;
mod fleet_remote;
mod gate;
mod hostile_fence;
mod hostile_git;
mod init;
mod memory;
mod plan;
mod queue;
mod replay;
mod report;
mod run;
mod spec;
mod status;
mod strength;
mod trace;
mod tune;
mod twin;
mod worker;

/// Held by the tests that run the whole bundled example (the replay's and the fleet's): each
/// starts the example's service many times and measures its latency under load, and two of
/// them side by side on a 2-core CI machine make that scenario fail on a busy neighbour rather
/// than on the build. The other tests still run beside whichever holds it.
pub(crate) fn bundled_example_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The trials per scenario the lightened bundled example asks (see [`lightened_example`]);
/// pass it as `LIGHTSOUT_TRIALS` to every `lightsout` process that judges the example.
pub(crate) const LIGHT_TRIALS: &str = "3";

/// The bundled example and its holdout copied side by side into `dir` (as `scripts/demo` does),
/// with a lighter gate, and the example made a git repository with one commit. Returns (the
/// example's checkout, the holdout).
///
/// The example's gate asks 40 trials of every @critical scenario (a Wilson lower bound of
/// 0.9 needs at least 35 clean ones), which makes one build of the example take about 7
/// minutes in a debug build. The tests that use this copy are about the fleet and replay, not
/// about the gate's evidence, so it asks 3 trials per scenario and a lower bound of 0.4
/// (3/(3+3.84) = 0.44, still a real bound; the runner's default of 5 trials comes down to 3
/// through `LIGHTSOUT_TRIALS`, which `[env] allow` lets through). The example's failing first
/// attempts still fail the holdout with it.
pub(crate) fn lightened_example(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for name in ["url-shortener", "url-shortener-holdout"] {
        let ok = std::process::Command::new("cp")
            .arg("-r")
            .arg(examples.join(name))
            .arg(dir)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let (seed, holdout) = (dir.join("url-shortener"), dir.join("url-shortener-holdout"));
    std::fs::write(
        holdout.join("gate.toml"),
        "# Lightened for the CLI's e2e tests (see crates/cli/tests/it/main.rs).\n\
         [[rule]]\ntext = \"every @critical scenario: Wilson 95% lower bound >= 0.4\"\n\
         tag = \"@critical\"\nmin_lower_bound = 0.4\ntrials = 3\n\n\
         [[rule]]\ntext = \"no regression on scenarios that passed on main\"\n\
         no_regressions = true\n",
    )
    .unwrap();
    let replace = |path: std::path::PathBuf, edits: &[(&str, &str)], what: &str| {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lighter = text.clone();
        for (from, to) in edits {
            lighter = lighter.replace(from, to);
        }
        assert_ne!(
            text, lighter,
            "the example's {what} moved; update this helper"
        );
        std::fs::write(&path, lighter).unwrap();
    };
    replace(
        seed.join("specs/url-shortener.md"),
        &[
            ("at least 0.9 over 40 trials", "at least 0.4 over 3 trials"),
            ("over 10 trials per scenario", "over 3 trials per scenario"),
        ],
        "gate lines",
    );
    replace(
        seed.join("lightsout.toml"),
        &[(
            "\"LIGHTSOUT_BIN\"]",
            "\"LIGHTSOUT_BIN\", \"LIGHTSOUT_TRIALS\"]",
        )],
        "[env] allow",
    );
    lightsout_factory::testing::git(&seed, &["init", "-q", "-b", "main"]);
    lightsout_factory::testing::git(&seed, &["add", "-A"]);
    lightsout_factory::testing::git(&seed, &["commit", "-qm", "url-shortener example"]);
    (seed, holdout)
}

/// The tree the bundled example's trajectory builds from commit `base` of `seed`: every
/// recorded patch applied, task by task, attempt by attempt (the tasks touch disjoint files),
/// in a detached worktree beside `seed`. What `main` must hold after a run of the example,
/// single-machine or fleet.
pub(crate) fn trajectory_tree(seed: &std::path::Path, base: &str) -> String {
    use lightsout_factory::testing::git;
    let trajectory = seed.join("trajectory");
    let scratch = seed.parent().unwrap().join("expected");
    git(
        seed,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            scratch.to_str().unwrap(),
            base,
        ],
    );
    let mut tasks: Vec<std::path::PathBuf> = std::fs::read_dir(&trajectory)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    tasks.sort();
    assert!(
        !tasks.is_empty(),
        "no trajectory in {}",
        trajectory.display()
    );
    for task in tasks {
        let mut patches: Vec<std::path::PathBuf> = std::fs::read_dir(task)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "patch"))
            .collect();
        patches.sort();
        for p in patches {
            git(&scratch, &["apply", p.to_str().unwrap()]);
        }
    }
    git(&scratch, &["add", "-A"]);
    let tree = git(&scratch, &["write-tree"]);
    git(
        seed,
        &["worktree", "remove", "--force", scratch.to_str().unwrap()],
    );
    tree
}
