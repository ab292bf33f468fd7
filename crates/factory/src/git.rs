//! A thin async wrapper over the `git` command line (the real thing, no library
//! reimplementation): worktrees, commits, rebases and compare-and-swap ref updates.

use crate::Error;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// The identity the factory commits with (author and committer).
pub const COMMITTER_NAME: &str = "lightsout";
/// The e-mail address the factory commits with.
pub const COMMITTER_EMAIL: &str = "lightsout@localhost";

/// Git run in one directory (a repository or a worktree).
#[derive(Debug, Clone)]
pub(crate) struct Git {
    dir: PathBuf,
}

/// Captured result of a git command that may fail for ordinary reasons (a conflict).
pub(crate) struct Out {
    pub(crate) ok: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Git {
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        Git { dir: dir.into() }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs git and returns its output, whether or not it succeeded.
    pub(crate) async fn out(&self, args: &[&str]) -> Result<Out, Error> {
        let out = Command::new("git")
            .arg("-c")
            .arg(format!("user.name={COMMITTER_NAME}"))
            .arg("-c")
            .arg(format!("user.email={COMMITTER_EMAIL}"))
            .arg("-c")
            .arg("commit.gpgsign=false")
            .arg("-c")
            .arg("core.hooksPath=/dev/null")
            .args(args)
            .current_dir(&self.dir)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_EDITOR", "true")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| Error::Io {
                action: "run git",
                path: self.dir.clone(),
                source: e,
            })?;
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
    pub(crate) async fn run(&self, args: &[&str]) -> Result<String, Error> {
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

    pub(crate) async fn rev(&self, rev: &str) -> Result<String, Error> {
        self.run(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ])
        .await
    }

    pub(crate) async fn try_rev(&self, rev: &str) -> Result<Option<String>, Error> {
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
    pub(crate) async fn is_ancestor(&self, a: &str, b: &str) -> Result<bool, Error> {
        Ok(self.out(&["merge-base", "--is-ancestor", a, b]).await?.ok)
    }

    /// A path inside this checkout's git dir (`rev-parse --git-path`).
    pub(crate) async fn git_path(&self, name: &str) -> Result<PathBuf, Error> {
        let p = self.run(&["rev-parse", "--git-path", name]).await?;
        let p = PathBuf::from(p);
        Ok(if p.is_absolute() { p } else { self.dir.join(p) })
    }

    /// Stages everything and commits it; returns the new HEAD, or `None` when there was
    /// nothing to commit.
    pub(crate) async fn commit_all(&self, message: &str) -> Result<Option<String>, Error> {
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
    pub(crate) async fn conflicted_files(&self) -> Result<Vec<String>, Error> {
        let s = self
            .run(&["diff", "--name-only", "--diff-filter=U"])
            .await?;
        Ok(s.lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// Whether a rebase is in progress in this checkout.
    pub(crate) async fn rebase_in_progress(&self) -> Result<bool, Error> {
        for d in ["rebase-merge", "rebase-apply"] {
            if self.git_path(d).await?.exists() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
