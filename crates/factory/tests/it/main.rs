//! Integration tests of `lightsout-factory` on real temporary git repositories, with the
//! agent and stage test doubles.

mod fence;
mod run_loop;

use std::path::Path;
use std::process::Command;

/// Runs `git args...` in `dir` as a test author; panics with git's stderr on failure.
/// Returns stdout, trimmed.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
