//! The run journal: `.lightsout/runs/<id>/journal.jsonl`, one [`Entry`] per line, appended
//! and `fsync`ed before the factory acts on it, so a run killed at any point (`kill -9`)
//! resumes from it ([`RunState::replay`](crate::RunState)).
//!
//! A kill in the middle of an append leaves at most one partial last line; [`read`]
//! ignores it and [`Journal::open`] truncates it away before appending again.

use crate::Error;
use crate::plan::{Plan, Task};
use crate::state::AttemptRecord;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// One journal line. Serialised with an `entry` tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "entry")]
#[non_exhaustive]
pub enum Entry {
    /// The run began: its plan and main's commit at the start.
    RunStarted {
        /// Run id.
        run_id: String,
        /// Start time, RFC 3339.
        at: String,
        /// The main branch name.
        main: String,
        /// Main's commit at the start.
        base: String,
        /// The plan.
        plan: Plan,
        /// The resolved gate policy every evaluation of the run judges with, each rule with
        /// its source (empty in journals written before it was recorded).
        #[serde(default, skip_serializing_if = "lightsout_eval::GatePolicy::is_empty")]
        policy: lightsout_eval::GatePolicy,
        /// Findings of specs that were not ready and built anyway (`--allow-not-ready`), one
        /// line each; the report shows them in a red banner.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        not_ready: Vec<String>,
        /// Measure the holdout's strength on the merged build after the last merge (`run
        /// --strength`), whatever the policy and `[strength] after_run` say.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        strength: bool,
    },
    /// A task is not built again: its input key matches the one kept from `built_by` and its
    /// commit is on main (see `lightsout_factory::inputs`). It counts as merged at `commit`.
    TaskUnchanged {
        /// Task id.
        task: String,
        /// The commit main received for it in `built_by`.
        commit: String,
        /// The run that built it.
        built_by: String,
    },
    /// A task got its worktree.
    TaskStarted {
        /// Task id.
        task: String,
        /// Branch `lightsout/<run>/<task>`.
        branch: String,
        /// Worktree path.
        worktree: PathBuf,
        /// The commit it was cut from.
        base: String,
        /// Requirements already merged at `base` (the regression bucket).
        regression: Vec<String>,
    },
    /// An attempt began with the worktree at `head`.
    AttemptStarted {
        /// Task id.
        task: String,
        /// 1-based attempt.
        attempt: u32,
        /// Worktree HEAD before the agent ran.
        head: String,
    },
    /// An attempt ended.
    AttemptFinished {
        /// Task id.
        task: String,
        /// What happened.
        record: AttemptRecord,
    },
    /// A task failed for good.
    TaskFailed {
        /// Task id.
        task: String,
        /// Why.
        reason: String,
    },
    /// A task was blocked by a failed dependency.
    TaskBlocked {
        /// Task id.
        task: String,
        /// The failed dependency.
        by: String,
    },
    /// A merge began.
    MergeStarted {
        /// Task id.
        task: String,
        /// Main's commit the branch is rebased onto.
        onto: String,
    },
    /// The merged result regressed: main was not moved; the task goes back to its agent.
    MergeReverted {
        /// Task id.
        task: String,
        /// The rebased head (kept on the task branch).
        commit: String,
        /// Redacted feedback.
        feedback: String,
        /// Requirements merged at the new base.
        regression: Vec<String>,
    },
    /// The rebase conflicted: `to` is a new task that redoes the work on current main.
    ConflictRouted {
        /// The conflicted task (the root task id).
        task: String,
        /// The new task.
        to: Task,
        /// Conflicting files.
        files: Vec<String>,
        /// The feedback the new task starts with (the conflict and the earlier diff).
        #[serde(default)]
        feedback: String,
    },
    /// The merged result passed the holdout; main is about to move to `commit`.
    MergeVerified {
        /// Task id.
        task: String,
        /// The rebased head.
        commit: String,
    },
    /// Main moved to `commit`.
    Merged {
        /// Task id.
        task: String,
        /// Main's new commit.
        commit: String,
    },
    /// The main checkout is being fast-forwarded from `from` to `to`.
    CheckoutSyncStarted {
        /// Old commit.
        from: String,
        /// New commit.
        to: String,
    },
    /// The main checkout matches `commit`.
    CheckoutSynced {
        /// The commit.
        commit: String,
    },
    /// The run ended (it may be resumed later only if tasks remain).
    RunFinished {
        /// End time, RFC 3339.
        at: String,
    },
}

/// An open journal, appending.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
}

/// Reads every complete entry of the journal at `path`, ignoring a partial last line.
///
/// # Errors
/// [`Error::Line`] when a complete line is not a valid entry, [`Error::Io`] when the file
/// cannot be read.
pub fn read(path: &Path) -> Result<Vec<Entry>, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read journal", path, e))?;
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => &bytes[..=i],
        None => &bytes[..0],
    };
    let mut out = Vec::new();
    for (n, line) in complete.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let e: Entry = serde_json::from_slice(line).map_err(|source| Error::Line {
            path: path.to_owned(),
            line: n + 1,
            source,
        })?;
        out.push(e);
    }
    Ok(out)
}

impl Journal {
    /// Opens (creating) the journal at `path` for appending, first cutting off a partial
    /// last line left by a crash.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be opened.
    pub fn open(path: &Path) -> Result<Self, Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create run dir", dir, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io("open journal", path, e))?;
        let bytes = std::fs::read(path).map_err(|e| Error::io("read journal", path, e))?;
        let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if keep != bytes.len() {
            file.set_len(keep as u64)
                .map_err(|e| Error::io("truncate journal", path, e))?;
        }
        Ok(Journal {
            path: path.to_owned(),
            file,
        })
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry` as one line and `fsync`s it.
    ///
    /// # Errors
    /// [`Error::Io`] when writing or syncing fails, [`Error::Serialise`] when the entry cannot
    /// be serialised (not expected: entries are plain data).
    pub fn append(&mut self, entry: &Entry) -> Result<(), Error> {
        let mut line = serde_json::to_vec(entry).map_err(|source| Error::Serialise {
            path: self.path.clone(),
            source,
        })?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::io("append to journal", &self.path, e))
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, `fsync`,
/// then `rename` over `path` ([`lightsout_stdx::write_atomic`]).
///
/// # Errors
/// [`Error::Io`] on any file operation failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    lightsout_stdx::write_atomic(path, bytes).map_err(|e| Error::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_last_line_is_ignored_and_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.jsonl");
        let mut j = Journal::open(&p).unwrap();
        let e = Entry::TaskFailed {
            task: "T1".into(),
            reason: "x".into(),
        };
        j.append(&e).unwrap();
        drop(j);
        // A crash in the middle of the second append.
        let mut file = OpenOptions::new().append(true).open(&p).unwrap();
        file.write_all(b"{\"entry\":\"task_fa").unwrap();
        drop(file);
        assert_eq!(read(&p).unwrap(), vec![e.clone()]);
        let mut j = Journal::open(&p).unwrap();
        j.append(&e).unwrap();
        assert_eq!(read(&p).unwrap(), vec![e.clone(), e]);
    }

    #[test]
    fn corrupt_complete_line_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("j.jsonl");
        std::fs::write(&p, "not json\n").unwrap();
        assert!(read(&p).unwrap_err().to_string().contains("line 1"));
    }

    /// The message names the journal and the line; the JSON error is the source, so a chain
    /// printer (`anyhow`'s `{:#}`) prints what the message alone used to: the cause once.
    #[test]
    fn a_corrupt_line_keeps_the_json_error_as_its_source() {
        use std::error::Error as _;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("j.jsonl");
        std::fs::write(
            &p,
            "{\"entry\":\"checkout_synced\",\"commit\":\"abc\"}\nnot json\n",
        )
        .unwrap();
        let err = read(&p).unwrap_err();
        let cause = serde_json::from_slice::<Entry>(b"not json").unwrap_err();
        assert_eq!(err.to_string(), format!("journal {}: line 2", p.display()));
        assert_eq!(
            err.source().map(ToString::to_string),
            Some(cause.to_string())
        );
        assert!(err.source().and_then(|s| s.source()).is_none());
    }

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.json");
        write_atomic(&p, b"1").unwrap();
        write_atomic(&p, b"2").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"2");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
