//! The common git directory is the factory's, not the agent's: what each attempt must leave
//! as it found it, checked and restored after the agent ran, and caps on what an attempt can
//! make the factory store.
//!
//! Before every agent call the run loop takes a [`Snapshot`] of:
//! - refs: main, the run's branches (`refs/heads/lightsout/<run>/*`), its keep-refs
//!   (`refs/lightsout/<run>/*`) and `refs/replace/*`;
//! - files, byte for byte with their mode: the common `config` and `HEAD`, everything under
//!   `hooks/` and `info/`, `objects/info/alternates` and `http-alternates`, the worktree's
//!   administrative files (`commondir`, `gitdir`, `HEAD`, `config.worktree`) and its `.git`
//!   link.
//!
//! - objects: every loose object and pack file, hard-linked into the run's
//!   `.lightsout/runs/<id>/objects/` (new files only; no data is copied).
//!
//! After the call, [`Snapshot::verify`] restores first and reports after: files go back to
//! their bytes (added ones are removed) before any other git command runs, deleted object
//! files are linked back, refs go back to the snapshot (main to the factory's own record of
//! it), then the objects of main and of the attempt's base are looked up (an object
//! rewritten in place is found only there, and cannot be restored). Every difference is a [`Breach`]: the run loop
//! audits each as a `policy_hit` and fails the attempt at stage `policy`.
//!
//! The factory moves refs itself while an attempt runs (other tasks' commits, the merge
//! queue). A change to main is accepted when it lands on a value the factory recorded (its
//! `main_head` or a verified merge); a change to another task's ref is accepted only when
//! the factory ran a ref-moving git command during the attempt
//! ([`ref_writes`](crate::ops::ref_writes)); refs of this task, unknown refs in the run's
//! namespace and replace refs are never accepted.
//!
//! [`StoreCaps`] (`[store]` in `lightsout.toml`) bounds what an attempt can make the factory
//! commit, measured from file metadata before `git add` (nothing is read).

use crate::Error;
use crate::ops::{Git, ref_writes};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// `[store]` in `lightsout.toml`: caps on what one attempt can make the factory commit,
/// checked before `git add` from file metadata. Over a cap, the attempt fails at stage
/// `policy` and nothing is committed.
///
/// ```toml
/// [store]
/// max_file_bytes = 10485760   # 10 MiB: any one new or changed file
/// max_diff_bytes = 52428800   # 50 MiB: all new or changed files together
/// max_files = 10000           # new, changed or deleted paths
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreCaps {
    /// Cap on the size of any one new or changed file, in bytes. Default 10 MiB.
    pub max_file_bytes: u64,
    /// Cap on the summed size of all new or changed files, in bytes. Default 50 MiB.
    pub max_diff_bytes: u64,
    /// Cap on the number of new, changed or deleted paths. Default 10,000.
    pub max_files: u64,
}

impl Default for StoreCaps {
    fn default() -> Self {
        Self {
            max_file_bytes: 10 * 1024 * 1024,
            max_diff_bytes: 50 * 1024 * 1024,
            max_files: 10_000,
        }
    }
}

/// One thing an attempt changed that it must not have, or stored past a cap. Serialised
/// with `"violation"` as tag, like the fence's own violations, for the `policy_hit` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "violation", rename_all = "snake_case")]
pub enum Breach {
    /// A ref was moved.
    GitRefMoved {
        /// The full ref name.
        name: String,
        /// What the factory left (object id).
        expected: String,
        /// What it found (object id).
        found: String,
        /// Whether the ref was put back to `expected`.
        restored: bool,
    },
    /// A ref appeared.
    GitRefCreated {
        /// The full ref name.
        name: String,
        /// Its object id.
        found: String,
        /// Whether it was deleted again.
        restored: bool,
    },
    /// A ref disappeared.
    GitRefDeleted {
        /// The full ref name.
        name: String,
        /// What the factory left (object id).
        expected: String,
        /// Whether it was recreated.
        restored: bool,
    },
    /// A file of the git directory (config, hooks, `info/`, alternates, the worktree's
    /// administrative files) was added, changed or removed.
    GitFileChanged {
        /// The file.
        path: PathBuf,
        /// `added`, `modified` or `removed`.
        change: FileChange,
        /// Whether its snapshot bytes were put back (or the added file removed).
        restored: bool,
    },
    /// Object files (loose objects, packs) were deleted; they were linked back from the
    /// run's hard-link copy of the object store where it had them.
    GitObjectsDeleted {
        /// How many files were missing.
        files: u64,
        /// Whether every one of them was linked back.
        restored: bool,
    },
    /// Objects the factory relies on are missing or unreadable; they cannot be restored.
    GitObjectsDamaged {
        /// What git said.
        detail: String,
    },
    /// One file is over [`StoreCaps::max_file_bytes`].
    FileTooLarge {
        /// The path, relative to the worktree.
        path: String,
        /// Its size in bytes (metadata, not read).
        bytes: u64,
        /// The cap in bytes.
        limit: u64,
    },
    /// All new or changed files together are over [`StoreCaps::max_diff_bytes`].
    DiffTooLarge {
        /// Their summed size in bytes.
        bytes: u64,
        /// The cap in bytes.
        limit: u64,
    },
    /// More paths changed than [`StoreCaps::max_files`].
    TooManyFiles {
        /// Paths changed.
        files: u64,
        /// The cap.
        limit: u64,
    },
}

/// How a file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileChange {
    /// It was not there before.
    Added,
    /// Its bytes or mode differ.
    Modified,
    /// It is gone.
    Removed,
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = |restored: &bool| {
            if *restored {
                "restored"
            } else {
                "NOT restored"
            }
        };
        match self {
            Self::GitRefMoved {
                name,
                expected,
                found,
                restored,
            } => write!(
                f,
                "the ref {name} was moved from {expected} to {found} ({})",
                r(restored)
            ),
            Self::GitRefCreated {
                name,
                found,
                restored,
            } => write!(f, "the ref {name} was created at {found} ({})", r(restored)),
            Self::GitRefDeleted {
                name,
                expected,
                restored,
            } => write!(
                f,
                "the ref {name} (at {expected}) was deleted ({})",
                r(restored)
            ),
            Self::GitFileChanged {
                path,
                change,
                restored,
            } => write!(
                f,
                "the git file {} was {} ({})",
                path.display(),
                match change {
                    FileChange::Added => "added",
                    FileChange::Modified => "modified",
                    FileChange::Removed => "removed",
                },
                r(restored)
            ),
            Self::GitObjectsDeleted { files, restored } => {
                write!(f, "{files} git object files were deleted ({})", r(restored))
            }
            Self::GitObjectsDamaged { detail } => {
                write!(f, "git objects are missing or damaged: {detail}")
            }
            Self::FileTooLarge { path, bytes, limit } => write!(
                f,
                "{path} is {bytes} bytes, over the {limit}-byte cap on one file ([store] max_file_bytes)"
            ),
            Self::DiffTooLarge { bytes, limit } => write!(
                f,
                "the changed files total {bytes} bytes, over the {limit}-byte cap ([store] max_diff_bytes)"
            ),
            Self::TooManyFiles { files, limit } => write!(
                f,
                "{files} paths changed, over the cap of {limit} ([store] max_files)"
            ),
        }
    }
}

/// Who the refs belong to, and which values of main the factory itself may have set.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The run id.
    pub run_id: String,
    /// Main's branch name (without `refs/heads/`).
    pub main: String,
    /// The task of this attempt.
    pub task: String,
    /// Every task id of the run.
    pub tasks: BTreeSet<String>,
}

impl Scope {
    fn main_ref(&self) -> String {
        format!("refs/heads/{}", self.main)
    }
    fn patterns(&self) -> [String; 4] {
        [
            self.main_ref(),
            format!("refs/heads/lightsout/{}", self.run_id),
            format!("refs/lightsout/{}", self.run_id),
            "refs/replace".to_owned(),
        ]
    }
    /// The task a run ref belongs to, if it is one of the run's.
    fn owner<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        let rest = name
            .strip_prefix(&format!("refs/heads/lightsout/{}/", self.run_id))
            .or_else(|| {
                name.strip_prefix(&format!("refs/lightsout/{}/", self.run_id))
                    .and_then(|r| r.rsplit_once('/').map(|(t, _)| t))
            })?;
        self.tasks.contains(rest).then_some(rest)
    }
}

/// What the factory's own records say main may be after the attempt.
#[derive(Debug, Clone, Default)]
pub struct MainRecord {
    /// Main as the factory last merged it: where main is restored to.
    pub head: String,
    /// Commits the factory verified and may be fast-forwarding main to right now.
    pub verified: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum FileSnap {
    Absent,
    /// Bytes and mode, for a regular file up to [`MAX_SNAP_FILE`] bytes.
    Kept {
        bytes: Vec<u8>,
        mode: u32,
    },
    /// Anything else that exists (a larger file, a link): compared by metadata only.
    Other {
        len: u64,
        modified: Option<std::time::SystemTime>,
        mode: u32,
    },
}

/// Files under one snapshot larger than this are not kept (they are compared by size only
/// and cannot be restored): no git administrative file is near it.
const MAX_SNAP_FILE: u64 = 1024 * 1024;
/// Entries walked under `hooks/` or `info/` at most.
const MAX_WALK: usize = 4096;

/// The state an attempt must leave as it found it. See the module docs.
#[derive(Debug)]
pub struct Snapshot {
    common: PathBuf,
    worktree: PathBuf,
    scope: Scope,
    refs: BTreeMap<String, String>,
    files: BTreeMap<PathBuf, FileSnap>,
    walked: Vec<PathBuf>,
    ref_writes: u64,
    objects: Option<PathBuf>,
}

async fn absolute(g: &Git, what: &str) -> Result<PathBuf, Error> {
    let p = PathBuf::from(g.run(&["rev-parse", what]).await?);
    Ok(if p.is_absolute() { p } else { g.dir().join(p) })
}

fn read_snap(p: &Path) -> FileSnap {
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return FileSnap::Absent;
    };
    let other = || FileSnap::Other {
        len: m.len(),
        modified: m.modified().ok(),
        mode: m.permissions().mode(),
    };
    if !m.is_file() || m.len() > MAX_SNAP_FILE {
        return other();
    }
    match std::fs::read(p) {
        Ok(bytes) => FileSnap::Kept {
            bytes,
            mode: m.permissions().mode(),
        },
        Err(_) => other(),
    }
}

/// Every file (and symlink, not followed) under `dir`, up to [`MAX_WALK`] entries; entries
/// that cannot be read are passed over.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in lightsout_stdx::walk::walk(dir, |_| false).flatten() {
        if out.len() >= MAX_WALK {
            return;
        }
        if !e.file_type().is_dir() {
            out.push(e.into_path());
        }
    }
}

impl Snapshot {
    /// Takes the snapshot before an attempt of `scope.task` in `worktree`; `repo` is the
    /// main checkout.
    ///
    /// # Errors
    /// [`Error::Git`] when git cannot name the common directory or list the refs.
    ///
    /// With `objects_copy`, every object file (loose objects and packs) is first hard-linked
    /// into that directory (new files only: one directory walk, no data copied), so a
    /// deleted object can be linked back. Object files are written once and never changed
    /// in place by git, so a link is a copy. Where linking fails (another file system), the
    /// copy is skipped and deletions are only detected.
    pub async fn take(
        repo: &Git,
        worktree: &Path,
        scope: Scope,
        objects_copy: Option<&Path>,
    ) -> Result<Self, Error> {
        let ref_writes = ref_writes();
        let common = absolute(repo, "--git-common-dir").await?;
        let admin = absolute(&Git::new(worktree), "--absolute-git-dir").await?;
        let mut snap = Snapshot {
            refs: list_refs(repo, &scope).await?,
            common,
            worktree: worktree.to_path_buf(),
            scope,
            files: BTreeMap::new(),
            walked: Vec::new(),
            ref_writes,
            objects: None,
        };
        if let Some(copy) = objects_copy
            && link_all(&snap.common.join("objects"), copy)
        {
            snap.objects = Some(copy.to_path_buf());
        }
        let mut paths = vec![
            snap.common.join("config"),
            snap.common.join("HEAD"),
            snap.common.join("objects/info/alternates"),
            snap.common.join("objects/info/http-alternates"),
            worktree.join(".git"),
        ];
        if admin != snap.common {
            for f in ["commondir", "gitdir", "HEAD", "config.worktree"] {
                paths.push(admin.join(f));
            }
        }
        snap.walked = vec![snap.common.join("hooks"), snap.common.join("info")];
        for d in &snap.walked {
            walk(d, &mut paths);
        }
        for p in paths {
            let s = read_snap(&p);
            snap.files.insert(p, s);
        }
        Ok(snap)
    }

    /// Restores what the attempt changed and returns each change. Files first (so no git
    /// command reads a poisoned config), then refs, then the object check of `base` and main.
    ///
    /// # Errors
    /// [`Error::Git`] when the refs cannot be listed at all.
    pub async fn verify(
        &self,
        repo: &Git,
        main: &MainRecord,
        base: &str,
    ) -> Result<Vec<Breach>, Error> {
        let mut out = self.verify_files();
        if let Some(copy) = &self.objects {
            let (missing, restored) = link_missing(copy, &self.common.join("objects"));
            if missing > 0 {
                out.push(Breach::GitObjectsDeleted {
                    files: missing,
                    restored,
                });
            }
        }
        out.extend(self.verify_refs(repo, main).await?);
        for commit in [main.head.as_str(), base] {
            let o = repo
                .out(&["cat-file", "-e", &format!("{commit}^{{tree}}")])
                .await?;
            if !o.ok {
                out.push(Breach::GitObjectsDamaged {
                    detail: format!(
                        "commit {commit} or its tree cannot be read: {}",
                        o.stderr.trim()
                    ),
                });
                break;
            }
        }
        Ok(out)
    }

    fn verify_files(&self) -> Vec<Breach> {
        let mut out = Vec::new();
        let git_link = self.worktree.join(".git");
        for (p, before) in &self.files {
            // A deleted or replaced `.git` link is the run loop's own worktree-damage case.
            if *p == git_link && !std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()) {
                continue;
            }
            let now = read_snap(p);
            if now == *before {
                continue;
            }
            let change = match (before, &now) {
                (FileSnap::Absent, _) => FileChange::Added,
                (_, FileSnap::Absent) => FileChange::Removed,
                _ => FileChange::Modified,
            };
            let restored = restore_file(p, before);
            out.push(Breach::GitFileChanged {
                path: p.clone(),
                change,
                restored,
            });
        }
        let mut now = Vec::new();
        for d in &self.walked {
            if std::fs::symlink_metadata(d).is_ok_and(|m| !m.is_dir()) {
                // `hooks` or `info` replaced by a file or a link: put the directory back.
                let _ = std::fs::remove_file(d);
                let _ = std::fs::create_dir_all(d);
                out.push(Breach::GitFileChanged {
                    path: d.clone(),
                    change: FileChange::Modified,
                    restored: std::fs::symlink_metadata(d).is_ok_and(|m| m.is_dir()),
                });
            }
            walk(d, &mut now);
        }
        for p in now {
            if !self.files.contains_key(&p) {
                let restored = std::fs::remove_file(&p).is_ok();
                out.push(Breach::GitFileChanged {
                    path: p,
                    change: FileChange::Added,
                    restored,
                });
            }
        }
        out
    }

    async fn verify_refs(&self, repo: &Git, main: &MainRecord) -> Result<Vec<Breach>, Error> {
        let now = list_refs(repo, &self.scope).await?;
        let factory_moved_refs = ref_writes() != self.ref_writes;
        let main_ref = self.scope.main_ref();
        let mut out = Vec::new();
        let names: BTreeSet<&String> = self.refs.keys().chain(now.keys()).collect();
        for name in names {
            let (before, after) = (self.refs.get(name), now.get(name));
            if before == after {
                continue;
            }
            let target = if *name == main_ref {
                let ok = after.is_some_and(|a| {
                    *a == main.head || main.verified.contains(a) || before == Some(a)
                });
                if ok {
                    continue;
                }
                Some(&main.head).filter(|h| !h.is_empty()).or(before)
            } else {
                match self.scope.owner(name) {
                    // Another task's ref while the factory moved refs: its own doing.
                    Some(t) if t != self.scope.task && factory_moved_refs => continue,
                    _ => before,
                }
            };
            let restored = restore_ref(repo, &self.common, name, target).await;
            out.push(match (before, after) {
                (Some(b), Some(a)) => Breach::GitRefMoved {
                    name: name.clone(),
                    expected: target.unwrap_or(b).clone(),
                    found: a.clone(),
                    restored,
                },
                (None, Some(a)) => Breach::GitRefCreated {
                    name: name.clone(),
                    found: a.clone(),
                    restored,
                },
                (Some(b), None) => Breach::GitRefDeleted {
                    name: name.clone(),
                    expected: b.clone(),
                    restored,
                },
                (None, None) => continue,
            });
        }
        Ok(out)
    }
}

/// Object files under `objects` (loose objects and packs; not `objects/info`, which is
/// compared byte for byte), relative to it.
fn object_files(objects: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(objects) else {
        return out;
    };
    for d in rd.flatten() {
        let name = d.file_name();
        if name == "info" || !d.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(d.path()) else {
            continue;
        };
        for f in files.flatten() {
            if f.file_type().is_ok_and(|t| t.is_file()) {
                out.push(PathBuf::from(&name).join(f.file_name()));
            }
        }
    }
    out
}

/// Hard-links every object file of `objects` not yet in `copy` into it; `false` when a
/// link cannot be made (the copy is then not used).
fn link_all(objects: &Path, copy: &Path) -> bool {
    for rel in object_files(objects) {
        let to = copy.join(&rel);
        if to.exists() {
            continue;
        }
        if let Some(dir) = to.parent()
            && std::fs::create_dir_all(dir).is_err()
        {
            return false;
        }
        // Temporary packs (`tmp_*`) and lock files are git's work in progress.
        let name = rel.file_name().map(|n| n.to_string_lossy().into_owned());
        let busy = |n: &String| {
            n.starts_with("tmp_") || Path::new(n).extension().is_some_and(|e| e == "lock")
        };
        if name.as_ref().is_some_and(busy) {
            continue;
        }
        match std::fs::hard_link(objects.join(&rel), &to) {
            // Another attempt's snapshot linked it first.
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return false,
            _ => {}
        }
    }
    true
}

/// Links back every file of `copy` missing from `objects`: (missing, all linked back).
fn link_missing(copy: &Path, objects: &Path) -> (u64, bool) {
    let mut missing = 0;
    let mut ok = true;
    for rel in object_files(copy) {
        let to = objects.join(&rel);
        if std::fs::symlink_metadata(&to).is_ok() {
            continue;
        }
        missing += 1;
        let linked = to
            .parent()
            .is_some_and(|d| std::fs::create_dir_all(d).is_ok())
            && std::fs::hard_link(copy.join(&rel), &to).is_ok();
        ok &= linked;
    }
    (missing, ok)
}

/// Refs in `scope` with their object ids. A ref git cannot read is absent here (git warns
/// and skips it), so it shows as deleted and is rewritten.
async fn list_refs(repo: &Git, scope: &Scope) -> Result<BTreeMap<String, String>, Error> {
    let mut args = vec![
        "for-each-ref".to_owned(),
        "--format=%(objectname) %(refname)".to_owned(),
    ];
    args.extend(scope.patterns());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let text = repo.run(&args).await?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(oid, name)| (name.to_owned(), oid.to_owned()))
        .collect())
}

/// Puts `name` back at `target` (or deletes it for `None`): with `git update-ref`, and when
/// git cannot (an unreadable loose ref), by writing the loose ref file itself.
async fn restore_ref(repo: &Git, common: &Path, name: &str, target: Option<&String>) -> bool {
    let o = match target {
        Some(t) => repo.out(&["update-ref", "--no-deref", name, t]).await,
        None => repo.out(&["update-ref", "--no-deref", "-d", name]).await,
    };
    if o.is_ok_and(|o| o.ok) {
        return true;
    }
    let file = common.join(name);
    match target {
        Some(t) => lightsout_stdx::write_atomic(&file, format!("{t}\n").as_bytes()).is_ok(),
        None => std::fs::remove_file(&file).is_ok(),
    }
}

/// Puts the snapshot bytes and mode of `p` back, or removes `p` when it did not exist.
fn restore_file(p: &Path, before: &FileSnap) -> bool {
    if std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()) {
        let _ = std::fs::remove_dir_all(p);
    }
    match before {
        FileSnap::Absent => {
            std::fs::remove_file(p).is_ok() || std::fs::symlink_metadata(p).is_err()
        }
        FileSnap::Kept { bytes, mode } => {
            let _ = std::fs::remove_file(p);
            lightsout_stdx::write_atomic(p, bytes).is_ok()
                && std::fs::set_permissions(p, std::fs::Permissions::from_mode(*mode)).is_ok()
        }
        // Too large to have been kept: cannot be put back.
        FileSnap::Other { .. } => false,
    }
}

/// Checks what an attempt left in `worktree` against `caps` before anything is staged:
/// the paths `git status` reports as new, changed or deleted (untracked files one by one),
/// measured with `symlink_metadata` (a file is never read, so a sparse 300 MB file costs
/// nothing). Returns every cap exceeded, the largest files first.
///
/// # Errors
/// [`Error::Git`] when `git status` fails.
pub async fn over_caps(g: &Git, caps: &StoreCaps) -> Result<Vec<Breach>, Error> {
    let text = g
        .run(&[
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--no-renames",
            "--ignore-submodules=all",
        ])
        .await?;
    let mut files = 0u64;
    let mut total = 0u64;
    let mut large = Vec::new();
    for entry in text.split('\0') {
        let Some(path) = entry.get(3..).filter(|p| !p.is_empty()) else {
            continue;
        };
        files += 1;
        let Ok(m) = std::fs::symlink_metadata(g.dir().join(path)) else {
            continue; // deleted
        };
        let bytes = m.len();
        total = total.saturating_add(bytes);
        if bytes > caps.max_file_bytes {
            large.push(Breach::FileTooLarge {
                path: path.to_owned(),
                bytes,
                limit: caps.max_file_bytes,
            });
        }
    }
    large.sort_by_key(|b| match b {
        Breach::FileTooLarge { bytes, .. } => std::cmp::Reverse(*bytes),
        _ => std::cmp::Reverse(0),
    });
    large.truncate(10);
    if total > caps.max_diff_bytes {
        large.push(Breach::DiffTooLarge {
            bytes: total,
            limit: caps.max_diff_bytes,
        });
    }
    if files > caps.max_files {
        large.push(Breach::TooManyFiles {
            files,
            limit: caps.max_files,
        });
    }
    Ok(large)
}

/// Bytes of an agent's own text (its summary, its error message) the journal and the state
/// keep; the rest stays only in its transcript.
pub const MAX_STORED_TEXT: usize = 4096;

/// `text` as the journal and the state store it: whole up to [`MAX_STORED_TEXT`] bytes,
/// otherwise its head (cut at a character boundary) and a reference to the one full copy:
/// its size, the transcript's path and the SHA-256 of the whole text.
pub fn stored_text(text: &str, transcript: Option<&Path>) -> String {
    use sha2::{Digest as _, Sha256};
    if text.len() <= MAX_STORED_TEXT {
        return text.to_owned();
    }
    let mut cut = MAX_STORED_TEXT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}… [{} bytes in all; the whole text is in the transcript {} (sha256 {})]",
        &text[..cut],
        text.len(),
        transcript.map_or_else(|| "(none)".to_owned(), |p| p.display().to_string()),
        hex::encode(Sha256::digest(text.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};

    #[test]
    fn long_text_is_kept_once_with_a_reference() {
        assert_eq!(stored_text("short", None), "short");
        let long = "é".repeat(MAX_STORED_TEXT);
        let s = stored_text(&long, Some(Path::new("/a/transcript-T1-1.log")));
        assert!(s.len() < MAX_STORED_TEXT + 200, "{}", s.len());
        assert!(s.starts_with(&"é".repeat(MAX_STORED_TEXT / 2)));
        assert!(s.contains(&format!("{} bytes in all", long.len())));
        assert!(s.contains("/a/transcript-T1-1.log"));
        assert!(s.contains(&hex::encode(Sha256::digest(long.as_bytes()))));
    }

    #[test]
    fn run_refs_belong_to_their_task() {
        let scope = Scope {
            run_id: "r".into(),
            main: "main".into(),
            task: "T1".into(),
            tasks: ["T1".to_owned(), "T2".to_owned()].into(),
        };
        assert_eq!(scope.owner("refs/heads/lightsout/r/T2"), Some("T2"));
        assert_eq!(scope.owner("refs/lightsout/r/T1/stale"), Some("T1"));
        assert_eq!(scope.owner("refs/heads/lightsout/r/evil"), None);
        assert_eq!(scope.owner("refs/lightsout/r/evil/x"), None);
        assert_eq!(scope.owner("refs/heads/lightsout/other/T1"), None);
    }
}
