//! Holdout protection: where the holdout may live, and what may cross the fence.
//!
//! - [`check_holdout_location`] refuses a holdout directory that overlaps the repository or
//!   any worktree (after canonicalisation, so a symlinked path counts as its target), and a
//!   symlink inside the repository or a worktree that resolves into the holdout.
//! - [`Crossing`] scans every text that crosses the fence towards an agent (prompts,
//!   feedback files) or back from it (diffs, agent output) with a [`LeakScan`]. A hit is a
//!   loud failure: [`FenceError::Leak`], which the factory turns into a failed run and a
//!   `leak` audit entry.
//!
//! The scan itself (canaries, distinctive literals, verbatim runs and near copies of scenario
//! text, less what the agents are meant to see) belongs to the eval stage (`lightsout-eval`'s
//! `LeakScanner`, built by `fenced::suite_scanner`); this module takes it through the small
//! [`LeakScan`] trait so that the fence does not depend on the eval crate. [`Canaries`] is a
//! plain substring scanner for canary strings, used when no eval scanner is wired in.

use super::FenceError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Scans text for holdout material.
///
/// Contract: `scan` returns one human-readable finding per hit (for example
/// `"canary LSO-CANARY-7f3a"` or `"verbatim run of 64 chars from scenario S3"`), and an
/// empty vector when the text is clean. A finding should name the hit, not repeat long
/// holdout text, because findings are written to the audit log. `scan` must not panic on
/// any input.
pub trait LeakScan {
    /// The findings in `text`; empty when clean.
    fn scan(&self, text: &str) -> Vec<String>;
}

// `&T`, `Box<T>` and `Arc<T>` of an implementation forward to it (the blanket impls, written once).
macro_rules! forward_leak_scan {
    ($($t:ty),*) => {$(
        impl<T: LeakScan + ?Sized> LeakScan for $t {
            fn scan(&self, text: &str) -> Vec<String> {
                (**self).scan(text)
            }
        }
    )*};
}
forward_leak_scan!(&T, Box<T>, Arc<T>);

/// Adapts a closure `Fn(&str) -> Vec<String>` into a [`LeakScan`], for example a wrapper
/// around `lightsout-eval`'s `LeakScanner`.
#[derive(Clone, Copy)]
pub struct ScanFn<F>(pub F);

impl<F: Fn(&str) -> Vec<String>> LeakScan for ScanFn<F> {
    fn scan(&self, text: &str) -> Vec<String> {
        (self.0)(text)
    }
}

impl<F> fmt::Debug for ScanFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScanFn(..)")
    }
}

/// A substring scanner for canary strings (case-sensitive, exact).
///
/// Findings are `canary #<index>`, so the canary itself is not copied into logs.
#[derive(Debug, Clone, Default)]
pub struct Canaries(pub Vec<String>);

impl LeakScan for Canaries {
    fn scan(&self, text: &str) -> Vec<String> {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.is_empty() && text.contains(c.as_str()))
            .map(|(i, _)| format!("canary #{i}"))
            .collect()
    }
}

/// What kind of text crossed the fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrossingKind {
    /// A prompt sent to an agent.
    Prompt,
    /// A feedback file handed to an agent after a failed attempt.
    Feedback,
    /// A diff produced by an agent.
    Diff,
    /// What an agent printed (stdout, stderr, transcript).
    AgentOutput,
}

impl fmt::Display for CrossingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Prompt => "prompt",
            Self::Feedback => "feedback",
            Self::Diff => "diff",
            Self::AgentOutput => "agent output",
        })
    }
}

/// A leak found in text crossing the fence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakHit {
    /// What kind of text.
    pub kind: CrossingKind,
    /// Which text: a task id, a file path, `stdout` ...
    pub label: String,
    /// The scanner's findings (never empty).
    pub findings: Vec<String>,
}

impl fmt::Display for LeakHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "holdout leak in {} `{}`: {}; the task is stopped and nothing of it merges, the run ends failed: rotate the holdout canaries and find how the text got out",
            self.kind,
            self.label,
            self.findings.join(", ")
        )
    }
}

impl std::error::Error for LeakHit {}

/// The checkpoint every text crossing the fence goes through.
///
/// Each check counts; [`Crossing::checked`] tells how many texts were scanned, so a report can
/// show that the scan ran.
#[derive(Debug)]
pub struct Crossing<S> {
    scanner: S,
    checked: std::sync::atomic::AtomicU64,
}

impl<S: LeakScan> Crossing<S> {
    /// A checkpoint using `scanner`.
    pub fn new(scanner: S) -> Self {
        Self {
            scanner,
            checked: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Scans `text` of `kind`, labelled `label` in the report.
    ///
    /// # Errors
    /// [`FenceError::Leak`] on any finding.
    pub fn check(&self, kind: CrossingKind, label: &str, text: &str) -> Result<(), FenceError> {
        self.checked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let findings = self.scanner.scan(text);
        if findings.is_empty() {
            Ok(())
        } else {
            Err(FenceError::Leak(LeakHit {
                kind,
                label: label.to_owned(),
                findings,
            }))
        }
    }

    /// Scans bytes (agent output, a diff) decoded as UTF-8 with invalid sequences replaced.
    ///
    /// # Errors
    /// [`FenceError::Leak`] on any finding.
    pub fn check_bytes(
        &self,
        kind: CrossingKind,
        label: &str,
        bytes: &[u8],
    ) -> Result<(), FenceError> {
        self.check(kind, label, &String::from_utf8_lossy(bytes))
    }

    /// Scans the file at `path` (a feedback file, a prompt file); the label is the path.
    ///
    /// # Errors
    /// [`FenceError::Io`] when it cannot be read; [`FenceError::Leak`] on any finding.
    pub fn check_file(&self, kind: CrossingKind, path: &Path) -> Result<(), FenceError> {
        let bytes = std::fs::read(path).map_err(|e| FenceError::io(path, e))?;
        self.check_bytes(kind, &path.display().to_string(), &bytes)
    }

    /// How many texts were scanned so far.
    pub fn checked(&self) -> u64 {
        self.checked.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn canonical(path: &Path) -> Result<PathBuf, FenceError> {
    std::fs::canonicalize(path).map_err(|e| FenceError::io(path, e))
}

/// Checks that the holdout directory is safe to use with `repo` and `worktrees`, and
/// returns its canonical path.
///
/// Refused, with [`FenceError::HoldoutOverlap`]: a holdout inside the repository or a
/// worktree, and also the reverse (a repository or worktree inside the holdout), since an
/// agent can then reach the holdout with `..`. Paths are canonicalised first, so a symlink
/// counts as its target. Refused with [`FenceError::HoldoutSymlink`]: a symlink anywhere
/// in the repository or a worktree (outside `.git`) that resolves into the holdout.
///
/// # Errors
/// The two above, and [`FenceError::Io`] when a path does not exist or cannot be read.
pub fn check_holdout_location(
    holdout: &Path,
    repo: &Path,
    worktrees: &[PathBuf],
) -> Result<PathBuf, FenceError> {
    let holdout = canonical(holdout)?;
    let mut roots = vec![canonical(repo)?];
    for w in worktrees {
        roots.push(canonical(w)?);
    }
    for root in &roots {
        if holdout.starts_with(root) || root.starts_with(&holdout) {
            return Err(FenceError::HoldoutOverlap {
                holdout,
                other: root.clone(),
            });
        }
    }
    for root in &roots {
        find_links_into(root, &holdout)?;
    }
    Ok(holdout)
}

/// Walks `dir` (skipping `.git`, without following symlinked directories) for a symlink that
/// resolves into `holdout`.
fn find_links_into(dir: &Path, holdout: &Path) -> Result<(), FenceError> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| FenceError::io(&d, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| FenceError::io(&d, e))?;
            let path = entry.path();
            let ft = entry.file_type().map_err(|e| FenceError::io(&path, e))?;
            if ft.is_symlink() {
                // A dangling link cannot reach the holdout today; skip it.
                if let Ok(target) = std::fs::canonicalize(&path)
                    && target.starts_with(holdout)
                {
                    return Err(FenceError::HoldoutSymlink {
                        link: path,
                        holdout: holdout.to_path_buf(),
                    });
                }
            } else if ft.is_dir() && entry.file_name() != ".git" {
                stack.push(path);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::policy::{Fence, FenceConfig};
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn holdout_beside_the_repo_is_accepted() {
        let t = tempfile::tempdir().unwrap();
        let repo = t.path().join("repo");
        let holdout = t.path().join("holdout");
        std::fs::create_dir_all(repo.join("src")).unwrap();
        std::fs::create_dir_all(&holdout).unwrap();
        let got = check_holdout_location(&holdout, &repo, &[]).unwrap();
        assert_eq!(got, std::fs::canonicalize(&holdout).unwrap());
    }

    #[test]
    fn holdout_inside_repo_or_worktree_is_refused_even_through_a_symlink() {
        let t = tempfile::tempdir().unwrap();
        let repo = t.path().join("repo");
        let wt = t.path().join("wt");
        std::fs::create_dir_all(repo.join("holdout")).unwrap();
        std::fs::create_dir_all(wt.join("h")).unwrap();
        assert!(matches!(
            check_holdout_location(&repo.join("holdout"), &repo, &[]),
            Err(FenceError::HoldoutOverlap { .. })
        ));
        assert!(matches!(
            check_holdout_location(&wt.join("h"), &repo, std::slice::from_ref(&wt)),
            Err(FenceError::HoldoutOverlap { .. })
        ));
        // A path outside that is a symlink into the repo counts as its target.
        let sneaky = t.path().join("sneaky");
        symlink(repo.join("holdout"), &sneaky).unwrap();
        let err = check_holdout_location(&sneaky, &repo, &[]).unwrap_err();
        assert!(err.to_string().contains("overlaps"), "{err}");
        // The repository inside the holdout is refused too.
        assert!(matches!(
            check_holdout_location(t.path(), &repo, &[]),
            Err(FenceError::HoldoutOverlap { .. })
        ));
    }

    #[test]
    fn symlink_from_repo_into_holdout_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let repo = t.path().join("repo");
        let holdout = t.path().join("holdout");
        std::fs::create_dir_all(repo.join("tests/deep")).unwrap();
        std::fs::create_dir_all(holdout.join("scenarios")).unwrap();
        symlink(holdout.join("scenarios"), repo.join("tests/deep/s")).unwrap();
        match check_holdout_location(&holdout, &repo, &[]) {
            Err(FenceError::HoldoutSymlink { link, .. }) => {
                assert!(link.ends_with("tests/deep/s"));
            }
            other => panic!("expected a symlink refusal, got {other:?}"),
        }
    }

    #[test]
    fn missing_holdout_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        assert!(matches!(
            check_holdout_location(&t.path().join("nope"), t.path(), &[]),
            Err(FenceError::Io { .. })
        ));
    }

    #[test]
    fn crossing_checks_prompts_feedback_and_diffs() {
        let canary = "LSO-CANARY-5f1e0c2a";
        let crossing = Crossing::new(Canaries(vec![canary.into()]));
        crossing
            .check(CrossingKind::Prompt, "T1", "implement the login endpoint")
            .unwrap();
        let t = tempfile::tempdir().unwrap();
        let fb = t.path().join("feedback.md");
        std::fs::write(&fb, format!("scenario failed; expected {canary}")).unwrap();
        let err = crossing
            .check_file(CrossingKind::Feedback, &fb)
            .unwrap_err();
        let FenceError::Leak(hit) = &err else {
            panic!("expected a leak, got {err:?}")
        };
        assert_eq!(hit.kind, CrossingKind::Feedback);
        assert_eq!(hit.findings, vec!["canary #0".to_owned()]);
        assert!(!err.to_string().contains(canary), "{err}");
        assert!(
            crossing
                .check(CrossingKind::Diff, "T1", &format!("+// {canary}\n"))
                .is_err()
        );
        assert_eq!(crossing.checked(), 3);
    }

    #[test]
    fn closure_scanners_plug_in_through_scan_fn() {
        let long_run = ScanFn(|text: &str| {
            if text.contains("the quick brown fox jumps over the lazy dog") {
                vec!["verbatim run of 43 chars from scenario S1".to_owned()]
            } else {
                Vec::new()
            }
        });
        let boxed: Box<dyn LeakScan> = Box::new(long_run);
        let crossing = Crossing::new(&boxed);
        assert!(
            crossing
                .check(
                    CrossingKind::Diff,
                    "T2",
                    "say: the quick brown fox jumps over the lazy dog"
                )
                .is_err()
        );
        assert!(
            crossing
                .check(CrossingKind::Diff, "T2", "brown fox")
                .is_ok()
        );
    }

    /// Misbehaving agent: a real process whose output carries a holdout canary.
    #[test]
    fn agent_output_with_a_canary_is_caught() {
        let t = tempfile::tempdir().unwrap();
        let canary = "LSO-CANARY-0b7d9e44";
        let fence = Fence::new(FenceConfig::default()).unwrap();
        let mut cmd = fence
            .command("sh", ["-c", "echo working; echo \"$0\" >&2"], t.path())
            .unwrap();
        cmd.arg(canary);
        let out = fence.run(cmd, None, t.path()).unwrap();
        assert!(out.report.is_clean(), "{:?}", out.report);
        let crossing = Crossing::new(Canaries(vec![canary.into()]));
        crossing
            .check_bytes(CrossingKind::AgentOutput, "stdout", &out.stdout)
            .unwrap();
        let err = crossing
            .check_bytes(CrossingKind::AgentOutput, "stderr", &out.stderr)
            .unwrap_err();
        assert!(matches!(
            err,
            FenceError::Leak(LeakHit {
                kind: CrossingKind::AgentOutput,
                ..
            })
        ));
    }
}
