//! `lightsout gc`: prunes what old runs leave in the repository: their worktrees, their
//! branches (`refs/heads/lightsout/<run>/*`), the refs that keep their attempt commits
//! (`refs/lightsout/<run>/*`) and their run directories (`.lightsout/runs/<run>/`).
//!
//! A run's age is the time since its journal was last written (the directory's own time
//! when it has no journal). Branches and refs of a run whose directory is gone are pruned
//! whatever their age: nothing can resume or report that run any more. Main, the input keys
//! (`.lightsout/inputs.json`), the memory and every ref outside those two namespaces are
//! never touched. `gc` holds the run lock, so it never prunes under a running factory.

use crate::Error;
use crate::git::Git;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What one `gc` removed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GcReport {
    /// Run ids whose directory was removed.
    pub runs: Vec<String>,
    /// Worktrees removed.
    pub worktrees: Vec<PathBuf>,
    /// Refs deleted (branches and keep-refs), full names.
    pub refs: Vec<String>,
    /// Runs kept (younger than the retention).
    pub kept: Vec<String>,
}

/// The age of run directory `dir`: now minus the time its journal (else the directory) was
/// last modified; zero for a time in the future.
fn age(dir: &Path, now: SystemTime) -> Duration {
    let written = dir
        .join("journal.jsonl")
        .metadata()
        .or_else(|_| dir.metadata())
        .and_then(|m| m.modified())
        .unwrap_or(now);
    now.duration_since(written).unwrap_or_default()
}

/// The run id a ref of the factory belongs to (`refs/heads/lightsout/<run>/...` or
/// `refs/lightsout/<run>/...`).
fn run_of(refname: &str) -> Option<&str> {
    refname
        .strip_prefix("refs/heads/lightsout/")
        .or_else(|| refname.strip_prefix("refs/lightsout/"))
        .and_then(|rest| rest.split('/').next())
        .filter(|r| !r.is_empty())
}

/// Prunes the runs of the repository at `repo` older than `older_than` (at `now`), and
/// the branches and refs of runs that no longer have a directory.
///
/// # Errors
/// [`Error::Locked`] while a run holds the repository's run lock; [`Error::Git`] or
/// [`Error::Io`] when listing or removing fails.
pub async fn gc(repo: &Path, older_than: Duration, now: SystemTime) -> Result<GcReport, Error> {
    let _lock = crate::factory::lock_repo(repo)?;
    let runs_dir = repo.join(".lightsout").join("runs");
    let mut report = GcReport::default();
    let mut prune = BTreeSet::new();
    let mut live = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir(&runs_dir) {
        for e in entries.flatten() {
            if !e.path().is_dir() {
                continue;
            }
            let id = e.file_name().to_string_lossy().into_owned();
            if age(&e.path(), now) >= older_than {
                prune.insert(id);
            } else {
                live.insert(id);
            }
        }
    }
    let git = Git::new(repo);
    // Worktrees first: a branch checked out in one cannot go before it.
    let list = git.run(&["worktree", "list", "--porcelain"]).await?;
    for wt in list.lines().filter_map(|l| l.strip_prefix("worktree ")) {
        let wt = PathBuf::from(wt);
        let Ok(rest) = wt.strip_prefix(&runs_dir) else {
            continue;
        };
        let run = rest
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        if run.is_some_and(|r| !live.contains(&r)) {
            let w = wt.to_string_lossy().into_owned();
            let _ = git.out(&["worktree", "unlock", &w]).await;
            let o = git
                .out(&["worktree", "remove", "--force", "--force", &w])
                .await?;
            if !o.ok && wt.exists() {
                std::fs::remove_dir_all(&wt).map_err(|e| Error::io("remove worktree", &wt, e))?;
            }
            report.worktrees.push(wt);
        }
    }
    git.run(&["worktree", "prune"]).await?;
    let refs = git
        .run(&[
            "for-each-ref",
            "--format=%(refname)",
            "refs/heads/lightsout/",
            "refs/lightsout/",
        ])
        .await?;
    for r in refs.lines() {
        if run_of(r).is_some_and(|run| !live.contains(run)) {
            git.run(&["update-ref", "-d", r]).await?;
            report.refs.push(r.to_owned());
        }
    }
    for id in &prune {
        let dir = runs_dir.join(id);
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io("remove run directory", &dir, e))?;
        report.runs.push(id.clone());
    }
    report.kept = live.into_iter().collect();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_belong_to_their_run() {
        assert_eq!(run_of("refs/heads/lightsout/r1/T1"), Some("r1"));
        assert_eq!(run_of("refs/lightsout/r1/T1/merged"), Some("r1"));
        assert_eq!(run_of("refs/heads/main"), None);
        assert_eq!(run_of("refs/heads/lightsout/"), None);
    }

    /// An old run's worktree, branch, keep-refs and directory go; a young run's stay; main
    /// and other branches are never touched.
    #[tokio::test]
    async fn prunes_old_runs_and_keeps_young_ones() {
        let t = tempfile::tempdir().unwrap();
        let repo = t.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        let g = Git::new(&repo);
        g.run(&["init", "-q", "-b", "main"]).await.unwrap();
        std::fs::write(repo.join("a.txt"), "a\n").unwrap();
        g.commit_all("a").await.unwrap();
        let runs = repo.join(".lightsout/runs");
        for run in ["old", "young"] {
            let wt = runs.join(run).join("wt/T1");
            std::fs::create_dir_all(wt.parent().unwrap()).unwrap();
            std::fs::write(runs.join(run).join("journal.jsonl"), "").unwrap();
            g.run(&[
                "worktree",
                "add",
                "-q",
                "-b",
                &format!("lightsout/{run}/T1"),
                wt.to_str().unwrap(),
                "main",
            ])
            .await
            .unwrap();
            g.run(&[
                "update-ref",
                &format!("refs/lightsout/{run}/T1/head"),
                "main",
            ])
            .await
            .unwrap();
        }
        g.run(&["branch", "feature"]).await.unwrap();
        g.run(&["update-ref", "refs/lightsout/gone/T9/head", "main"])
            .await
            .unwrap();
        let old = SystemTime::now() - Duration::from_secs(40 * 86_400);
        let f = std::fs::File::options()
            .write(true)
            .open(runs.join("old/journal.jsonl"))
            .unwrap();
        f.set_modified(old).unwrap();
        let r = gc(&repo, Duration::from_secs(30 * 86_400), SystemTime::now())
            .await
            .unwrap();
        assert_eq!(r.runs, ["old"]);
        assert_eq!(r.kept, ["young"]);
        assert_eq!(r.worktrees.len(), 1);
        let left = g
            .run(&["for-each-ref", "--format=%(refname)"])
            .await
            .unwrap();
        let left: Vec<&str> = left.lines().collect();
        assert_eq!(
            left,
            [
                "refs/heads/feature",
                "refs/heads/lightsout/young/T1",
                "refs/heads/main",
                "refs/lightsout/young/T1/head"
            ]
        );
        assert!(!runs.join("old").exists());
        assert!(runs.join("young/wt/T1/a.txt").exists());
        let wts = g.run(&["worktree", "list", "--porcelain"]).await.unwrap();
        assert!(!wts.contains("old"), "{wts}");
    }
}
