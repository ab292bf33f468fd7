//! A thin async wrapper over the `git` command line (the real thing, no library
//! reimplementation): worktrees, commits, rebases and compare-and-swap ref updates.
//!
//! Every command is built by [`crate::command`]: no configuration that runs code or
//! changes what git reads takes effect (hooks, `core.fsmonitor`, pagers, editors, external
//! diffs, transports), the repository's filter and merge drivers are blanked by name before
//! each command, and git gets a clean environment, never the factory's own. See the
//! `lightsout-git` crate docs for each setting and its source.

use crate::Error;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::process::Command;

/// Subcommands that only read refs, objects or configuration: they never run a filter or
/// merge driver, so they skip the extra `git config --list` that blanks drivers.
const NO_DRIVERS: &[&str] = &[
    "rev-parse",
    "merge-base",
    "cat-file",
    "for-each-ref",
    "symbolic-ref",
    "update-ref",
    "config",
    "fsck",
    "var",
];

/// Subcommands that can move refs; each one run bumps [`ref_writes`].
const REF_WRITERS: &[&str] = &[
    "update-ref",
    "commit",
    "rebase",
    "reset",
    "worktree",
    "branch",
    "merge",
    "cherry-pick",
    "revert",
    "checkout",
    "switch",
    "symbolic-ref",
    "tag",
    "am",
    "stash",
];

static REF_WRITES: AtomicU64 = AtomicU64::new(0);

/// How many ref-moving git commands the factory has started in this process so far. The
/// integrity check compares it before and after an attempt: when it did not change, every
/// ref that moved during the attempt was moved by someone other than the factory.
pub fn ref_writes() -> u64 {
    REF_WRITES.load(Ordering::SeqCst)
}

/// Git run in one directory (a repository or a worktree).
#[derive(Debug, Clone)]
pub struct Git {
    dir: PathBuf,
}

/// Captured result of a git command that may fail for ordinary reasons (a conflict).
pub struct Out {
    /// Whether git exited with status 0.
    pub ok: bool,
    /// Its stdout, lossily decoded.
    pub stdout: String,
    /// Its stderr, lossily decoded.
    pub stderr: String,
}

impl Git {
    /// Git run in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Git { dir: dir.into() }
    }

    /// The directory git runs in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs git and returns its output, whether or not it succeeded.
    pub async fn out(&self, args: &[&str]) -> Result<Out, Error> {
        if args.first().is_some_and(|a| REF_WRITERS.contains(a)) {
            REF_WRITES.fetch_add(1, Ordering::SeqCst);
        }
        let mut cmd = crate::command(&self.dir, args);
        if !args.first().is_some_and(|a| NO_DRIVERS.contains(a)) {
            let listing = Command::from(crate::drivers_listing(&self.dir))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output()
                .await
                .map_err(|e| Error::Io {
                    action: "run git",
                    path: self.dir.clone(),
                    source: e,
                })?;
            // Outside a repository there is nothing to list; inside one, a configuration
            // git cannot read fails the command itself below.
            crate::apply_overrides(&mut cmd, &crate::driver_overrides(&listing.stdout));
        }
        let out = Command::from(cmd).output().await.map_err(|e| Error::Io {
            action: "run git",
            path: self.dir.clone(),
            source: e,
        })?;
        if args.first().is_some_and(|a| REF_WRITERS.contains(a)) {
            REF_WRITES.fetch_add(1, Ordering::SeqCst);
        }
        Ok(Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs git and returns its trimmed stdout.
    ///
    /// # Errors
    /// [`Error::Git`] when git exits non-zero.
    pub async fn run(&self, args: &[&str]) -> Result<String, Error> {
        let o = self.out(args).await?;
        if o.ok {
            Ok(o.stdout.trim_end().to_owned())
        } else {
            Err(Error::Git {
                args: args.join(" "),
                dir: self.dir.clone(),
                stderr: o.stderr.trim().to_owned(),
            })
        }
    }

    /// The commit `rev` names (`rev-parse --verify rev^{commit}`).
    ///
    /// # Errors
    /// [`Error::Git`] when `rev` names no commit.
    pub async fn rev(&self, rev: &str) -> Result<String, Error> {
        self.run(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ])
        .await
    }

    /// The commit `rev` names, or `None` when it names none.
    pub async fn try_rev(&self, rev: &str) -> Result<Option<String>, Error> {
        let o = self
            .out(&[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{rev}^{{commit}}"),
            ])
            .await?;
        Ok(o.ok.then(|| o.stdout.trim().to_owned()))
    }

    /// Whether `a` is an ancestor of (or equal to) `b`.
    pub async fn is_ancestor(&self, a: &str, b: &str) -> Result<bool, Error> {
        Ok(self.out(&["merge-base", "--is-ancestor", a, b]).await?.ok)
    }

    /// A path inside this checkout's git dir (`rev-parse --git-path`).
    pub async fn git_path(&self, name: &str) -> Result<PathBuf, Error> {
        let p = self.run(&["rev-parse", "--git-path", name]).await?;
        let p = PathBuf::from(p);
        Ok(if p.is_absolute() { p } else { self.dir.join(p) })
    }

    /// Stages everything and commits it; returns the new HEAD, or `None` when there was
    /// nothing to commit.
    pub async fn commit_all(&self, message: &str) -> Result<Option<String>, Error> {
        self.run(&["add", "-A"]).await?;
        let status = self.run(&["status", "--porcelain"]).await?;
        if status.trim().is_empty() {
            return Ok(None);
        }
        self.run(&["commit", "-q", "--no-verify", "-m", message])
            .await?;
        Ok(Some(self.rev("HEAD").await?))
    }

    /// Files with conflicts in the current merge/rebase state.
    pub async fn conflicted_files(&self) -> Result<Vec<String>, Error> {
        let s = self
            .run(&["diff", "--name-only", "--diff-filter=U"])
            .await?;
        Ok(s.lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// Whether a rebase is in progress in this checkout.
    pub async fn rebase_in_progress(&self) -> Result<bool, Error> {
        for d in ["rebase-merge", "rebase-apply"] {
            if self.git_path(d).await?.exists() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;
    use std::os::unix::fs::PermissionsExt as _;

    /// The factory's own git calls in a repository whose configuration an agent poisoned
    /// (and which the integrity check has not restored yet, as for another task's calls while
    /// an agent runs) run none of the agent's programs and hand git none of the factory's
    /// environment.
    #[tokio::test]
    async fn the_factorys_git_runs_nothing_of_a_poisoned_repository() {
        let t = tempfile::tempdir().unwrap();
        let repo = t.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        let g = Git::new(&repo);
        g.run(&["init", "-q", "-b", "main"]).await.unwrap();
        std::fs::write(repo.join("a.txt"), "one\n").unwrap();
        g.commit_all("one").await.unwrap();
        let marker = t.path().join("marker");
        let script = t.path().join("evil.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho ran >> '{m}'\nenv >> '{m}'\ncat\n",
                m = marker.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let s = script.display();
        let hooks = t.path().join("hooks");
        std::fs::create_dir(&hooks).unwrap();
        for h in ["pre-commit", "post-commit", "reference-transaction"] {
            std::fs::copy(&script, hooks.join(h)).unwrap();
        }
        let inc = t.path().join("inc.cfg");
        std::fs::write(&inc, format!("[filter \"inc\"]\n\tclean = {s}\n")).unwrap();
        let cfg_path = repo.join(".git/config");
        let mut cfg = std::fs::read_to_string(&cfg_path).unwrap();
        write!(
            cfg,
            "[core]\n\tfsmonitor = {s}\n\thooksPath = {h}\n[diff]\n\texternal = {s}\n\
             [filter \"x\"]\n\tclean = {s}\n\tsmudge = {s}\n\trequired = true\n\
             [include]\n\tpath = {i}\n",
            h = hooks.display(),
            i = inc.display()
        )
        .unwrap();
        std::fs::write(&cfg_path, cfg).unwrap();
        std::fs::write(
            repo.join(".gitattributes"),
            "*.txt filter=x\n*.md filter=inc\n",
        )
        .unwrap();
        std::fs::write(repo.join("a.txt"), "two\n").unwrap();
        std::fs::write(repo.join("b.md"), "bee\n").unwrap();
        let head = g.commit_all("two").await.unwrap().unwrap();
        let diff = g.run(&["diff", "HEAD~1", &head]).await.unwrap();
        assert!(diff.contains("+two"), "{diff}");
        g.run(&["reset", "-q", "--hard", "HEAD~1"]).await.unwrap();
        g.run(&["update-ref", "refs/heads/x", &head]).await.unwrap();
        assert!(
            !marker.exists(),
            "{}",
            std::fs::read_to_string(&marker).unwrap_or_default()
        );
        assert_eq!(
            g.run(&["show", &format!("{head}:a.txt")]).await.unwrap(),
            "two"
        );
    }
}
