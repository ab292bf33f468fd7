//! Helpers of unit and integration tests (feature `testing`; use it as a dev-dependency).

/// Runs `git args...` in `dir` as a test author (name `t`, no signing, no hooks) and returns
/// its stdout, trimmed.
///
/// # Panics
/// When git cannot start or exits non-zero; the message holds the arguments and git's stderr.
pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
