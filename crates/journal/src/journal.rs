//! The run journal: `.lightsout/runs/<id>/journal.jsonl`, one [`Entry`] per line, appended
//! and `fsync`ed before the factory acts on it, so a run killed at any point (`kill -9`)
//! resumes from it ([`RunState::replay`](crate::RunState)).
//!
//! A kill in the middle of an append leaves at most one partial last line; [`read`]
//! ignores it and [`Journal::open`] truncates it away before appending again.
//!
//! A journal may have a [`Mirror`] ([`Journal::with_mirror`]): each entry goes to it after it
//! is on disk, numbered by its line (a fleet worker copies its claims' journals into the
//! fleet's shared store this way). The file stays the record a run resumes from.

use crate::Error;
use crate::plan::{Plan, Task};
use crate::state::AttemptRecord;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// The tuner chose the harness variant of each task of a tuned kind
    /// (`lightsout_tune::choose`), with the seed, evidence, defaults and task list that
    /// reproduce the choices (`lightsout_tune::choose::replay`). Journaled once, before any
    /// task starts; a resumed run keeps these choices.
    VariantsChosen {
        /// The choices and what reproduces them.
        choices: lightsout_tune::choose::RunChoices,
    },
    /// The run ended (it may be resumed later only if tasks remain).
    RunFinished {
        /// End time, RFC 3339.
        at: String,
    },
}

/// Receives each entry of a [`Journal`] once it is appended and synced to the file: a copy
/// of the journal elsewhere (a fleet's shared store). The file is the record; a mirror is a
/// view of it.
///
/// Contract: `entry` cannot fail the append (the entry is on disk already, and the run goes
/// on): an implementation that cannot write keeps what it could not and writes it later, or
/// reports it on its own channel. It is called once per append, in `seq` order, while the
/// journal is borrowed for the append (so not concurrently for one journal); `seq`s go on
/// from the file's line count when a journal is reopened (`--resume`).
pub trait Mirror: Send + Sync {
    /// Entry `seq` (its 0-based line in the journal file) was appended as the JSON text
    /// `json` (the line without its newline).
    fn entry(&self, seq: u64, json: &str);
}

macro_rules! forward_mirror {
    ($($t:ty),*) => {$(
        impl<T: Mirror + ?Sized> Mirror for $t {
            fn entry(&self, seq: u64, json: &str) {
                (**self).entry(seq, json);
            }
        }
    )*};
}
forward_mirror!(&T, Box<T>, Arc<T>);

/// An open journal, appending.
pub struct Journal {
    path: PathBuf,
    file: File,
    /// The line the next entry is written on, 0-based: the complete lines in the file.
    next: u64,
    mirror: Option<Arc<dyn Mirror>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("next", &self.next)
            .field("mirrored", &self.mirror.is_some())
            .finish_non_exhaustive()
    }
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
        let next = memchr::memchr_iter(b'\n', &bytes[..keep]).count() as u64;
        Ok(Journal {
            path: path.to_owned(),
            file,
            next,
            mirror: None,
        })
    }

    /// Hands every entry appended from now on to `mirror` too, after the file has it
    /// ([`Mirror`]).
    #[must_use]
    pub fn with_mirror(mut self, mirror: Arc<dyn Mirror>) -> Self {
        self.mirror = Some(mirror);
        self
    }

    /// The 0-based line the next entry goes on (its `seq` for a [`Mirror`]).
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry` as one line and `fsync`s it, then hands it to the [`Mirror`], if any.
    ///
    /// # Errors
    /// [`Error::Io`] when writing or syncing fails, [`Error::Serialise`] when the entry cannot
    /// be serialised (not expected: entries are plain data). Never for the mirror.
    pub fn append(&mut self, entry: &Entry) -> Result<(), Error> {
        let mut line = serde_json::to_string(entry).map_err(|source| Error::Serialise {
            path: self.path.clone(),
            source,
        })?;
        line.push('\n');
        let seq = self.next;
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| Error::io("append to journal", &self.path, e))?;
        // The line is in the file (a failed sync below stops the run; a reopen counts again).
        self.next += 1;
        self.file
            .sync_data()
            .map_err(|e| Error::io("append to journal", &self.path, e))?;
        if let Some(m) = &self.mirror {
            m.entry(seq, line.trim_end_matches('\n'));
        }
        Ok(())
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

    /// What a mirror was handed.
    #[derive(Default)]
    struct Seen(std::sync::Mutex<Vec<(u64, String)>>);

    impl Mirror for Seen {
        fn entry(&self, seq: u64, json: &str) {
            self.0.lock().unwrap().push((seq, json.to_owned()));
        }
    }

    /// The mirror gets each entry after the file has it, numbered by its line, as the line's
    /// JSON; a reopened journal (a resumed run, after a kill that left a partial line) goes on
    /// from the file's complete lines.
    #[test]
    fn a_mirror_gets_each_entry_after_the_file_numbered_by_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.jsonl");
        let seen = Arc::new(Seen::default());
        let e = |n: u32| Entry::TaskFailed {
            task: format!("T{n}"),
            reason: "x".into(),
        };
        let mut j = Journal::open(&p).unwrap().with_mirror(seen.clone());
        assert_eq!(j.next_seq(), 0);
        j.append(&e(0)).unwrap();
        j.append(&e(1)).unwrap();
        drop(j);
        let mut file = OpenOptions::new().append(true).open(&p).unwrap();
        file.write_all(b"{\"entry\":\"task_fa").unwrap();
        drop(file);
        let mut j = Journal::open(&p).unwrap().with_mirror(seen.clone());
        assert_eq!(j.next_seq(), 2);
        j.append(&e(2)).unwrap();
        let lines: Vec<String> = std::fs::read_to_string(&p)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        let got = seen.0.lock().unwrap().clone();
        assert_eq!(
            got,
            lines
                .into_iter()
                .enumerate()
                .map(|(i, l)| (i as u64, l))
                .collect::<Vec<_>>()
        );
        assert_eq!(read(&p).unwrap(), vec![e(0), e(1), e(2)]);
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
