//! A thin async wrapper over the `git` command line (the real thing, no library
//! reimplementation): worktrees, commits, rebases and compare-and-swap ref updates.
//!
//! Every command is built by [`lightsout_git::command`]: no configuration that runs code or
//! changes what git reads takes effect (hooks, `core.fsmonitor`, pagers, editors, external
//! diffs, transports), the repository's filter and merge drivers are blanked by name before
//! each command, and git gets a clean environment, never the factory's own. See the
//! `lightsout-git` crate docs for each setting and its source.

use crate::Error;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::process::Command;

pub use lightsout_git::{COMMITTER_EMAIL, COMMITTER_NAME};

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
pub(crate) fn ref_writes() -> u64 {
    REF_WRITES.load(Ordering::SeqCst)
}

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
        if args.first().is_some_and(|a| REF_WRITERS.contains(a)) {
            REF_WRITES.fetch_add(1, Ordering::SeqCst);
        }
        let mut cmd = lightsout_git::command(&self.dir, args);
        if !args.first().is_some_and(|a| NO_DRIVERS.contains(a)) {
            let listing = Command::from(lightsout_git::drivers_listing(&self.dir))
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
            lightsout_git::apply_overrides(
                &mut cmd,
                &lightsout_git::driver_overrides(&listing.stdout),
            );
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
