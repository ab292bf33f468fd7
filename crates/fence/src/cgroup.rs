//! The process cap: one cgroup per fenced call, so a fork bomb cannot take the machine
//! ([`FenceConfig::max_processes`](super::policy::FenceConfig::max_processes)).
//!
//! `RLIMIT_NPROC` is no help here: it counts per user, and inside a user namespace that root
//! created this kernel (6.18) does not enforce it at all (measured: 20 forks under a limit of
//! 4). The `pids` controller of cgroups counts the tasks of one cgroup and its descendants,
//! whatever their uid or namespaces, and refuses `fork`/`clone` past `pids.max` (`EAGAIN`).
//!
//! # How a call is capped
//! 1. [`CgroupRoot::detect`] finds the hierarchy holding `pids`, at run time: cgroup v2 when
//!    the unified hierarchy has it in `cgroup.controllers`, otherwise cgroup v1's `pids`
//!    hierarchy. The factory's own cgroup there (`/proc/self/cgroup`, mapped through
//!    `/proc/self/mountinfo`) gets a child `lightsout`; on v2 `+pids` is written to the
//!    `cgroup.subtree_control` of both. It creates and removes one probe cgroup, so a
//!    machine that cannot cap is known before any agent runs.
//! 2. Each call gets its own child, `lightsout/<factory pid>-<n>` ([`CgroupRoot::create`]),
//!    with `pids.max` written.
//! 3. The sandbox's first process is the fence's `sh` (see [`sandbox`](super::sandbox)),
//!    still outside the sandbox with the factory's rights: it writes its own PID into the
//!    cgroup's `cgroup.procs` **before** it becomes bubblewrap, so every process the call
//!    ever starts is born inside (no spawn window, and no `unsafe` `pre_exec`). If the write
//!    fails it exits 125 and starts nothing.
//! 4. After the call, [`Cgroup::remove`] reads how many forks were refused (`pids.events`),
//!    kills every process still listed in `cgroup.procs` (`cgroup.kill` on v2) and removes
//!    the directory. Leftovers of a factory that died are removed by the next
//!    [`CgroupRoot::detect`] (the `<pid>` of their name is no longer alive).
//!
//! # Limits, stated plainly
//! - `pids.max` counts **threads** as well as processes.
//! - Inside the sandbox the cgroup file system is read-only (the whole root is), and the
//!   sandbox has its own cgroup namespace: the agent can neither raise the limit nor leave
//!   the cgroup.
//! - On cgroup v2 the factory must own a cgroup where it may enable `pids` (root, or a
//!   delegated cgroup whose processes sit in a leaf); otherwise [`CgroupRoot::detect`] fails
//!   and the fence refuses to start.
//! - The kill reads PIDs from `cgroup.procs` and signals them (cgroup v1 has no
//!   `cgroup.kill`): a PID that exits and is reused in between could be hit. bubblewrap's
//!   PID namespace already ends everything when its init dies; this is the second line.
//!
//! Sources: the kernel's `Documentation/admin-guide/cgroup-v1/pids.rst` and
//! `cgroup-v2.rst` (`pids.max`, `pids.events`, `cgroup.kill`, delegation).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The directory made under the factory's own cgroup; per-call cgroups go inside it.
pub const PARENT: &str = "lightsout";

/// Which cgroup hierarchy holds the `pids` controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hierarchy {
    /// cgroup v1: a hierarchy mounted with the `pids` controller.
    V1,
    /// cgroup v2: the unified hierarchy, `pids` enabled in `cgroup.subtree_control`.
    V2,
}

/// Where the per-call cgroups of this process are made: `<factory's cgroup>/lightsout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupRoot {
    dir: PathBuf,
    hierarchy: Hierarchy,
}

/// Numbers the per-call cgroups of this process.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// The factory's cgroup directories that could hold the cap, best first: the unified
/// hierarchy (v2), then every v1 hierarchy mounted with `pids`. Read from the text of
/// `/proc/self/cgroup` (`ID:CONTROLLERS:PATH` lines) and `/proc/self/mountinfo`
/// (`proc(5)`): the directory is the mount point plus the cgroup's path below the mount's
/// root. A cgroup outside its mount's root (another cgroup namespace) is skipped.
pub fn candidates(proc_cgroup: &str, mountinfo: &str) -> Vec<(PathBuf, Hierarchy)> {
    // (mount point, mount root, fs type, super options)
    let mounts: Vec<(&str, &str, &str, &str)> = mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let options = right.nth(1).unwrap_or("");
            Some((*left.get(4)?, *left.get(3)?, fstype, options))
        })
        .collect();
    let under = |mount: &str, root: &str, path: &str| -> Option<PathBuf> {
        let rel = Path::new(path).strip_prefix(root).ok()?;
        Some(Path::new(mount).join(rel))
    };
    let mut out = Vec::new();
    for line in proc_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            out.extend(
                mounts
                    .iter()
                    .filter(|m| m.2 == "cgroup2")
                    .find_map(|m| under(m.0, m.1, path))
                    .map(|d| (d, Hierarchy::V2)),
            );
        } else if controllers.split(',').any(|c| c == "pids") {
            out.extend(
                mounts
                    .iter()
                    .filter(|m| m.2 == "cgroup" && m.3.split(',').any(|o| o == "pids"))
                    .find_map(|m| under(m.0, m.1, path))
                    .map(|d| (d, Hierarchy::V1)),
            );
        }
    }
    out.sort_by_key(|(_, h)| *h == Hierarchy::V1);
    out
}

/// Writes `text` into the existing file `path` (a cgroup interface file: never created).
fn write_existing(path: &Path, text: &str) -> std::io::Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(text.as_bytes())
}

/// Enables `pids` for the children of the v2 cgroup `dir`, unless it is already.
fn enable_pids(dir: &Path) -> Result<(), String> {
    let control = dir.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&control)
        .map_err(|e| format!("cannot read {}: {e}", control.display()))?;
    if enabled.split_whitespace().any(|c| c == "pids") {
        return Ok(());
    }
    write_existing(&control, "+pids").map_err(|e| {
        format!(
            "cannot enable the pids controller in {}: {e}",
            control.display()
        )
    })
}

impl CgroupRoot {
    /// Finds the hierarchy holding `pids` ([`candidates`] of this process, v2 when its
    /// unified hierarchy offers `pids`) and prepares it with [`CgroupRoot::at`].
    ///
    /// # Errors
    /// What is missing, in words, when no cgroup can be made here.
    pub fn detect() -> Result<Self, String> {
        let read = |p: &str| fs::read_to_string(p).map_err(|e| format!("cannot read {p}: {e}"));
        let found = candidates(&read("/proc/self/cgroup")?, &read("/proc/self/mountinfo")?);
        let usable = found.into_iter().find(|(dir, h)| match h {
            Hierarchy::V2 => fs::read_to_string(dir.join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids")),
            Hierarchy::V1 => dir.is_dir(),
        });
        let Some((dir, hierarchy)) = usable else {
            return Err("no cgroup hierarchy with the pids controller is mounted".into());
        };
        Self::at(&dir, hierarchy)
    }

    /// Prepares per-call cgroups under `base` (the factory's own cgroup in `hierarchy`):
    /// creates `base/lightsout` (on v2 with `pids` enabled on the way), removes the
    /// leftovers of dead factories, and creates and removes one probe cgroup to be sure
    /// the limit can be written. Also the test seam: any directory can be `base`.
    ///
    /// # Errors
    /// What failed, in words (no permission, not a cgroup with `pids`).
    pub fn at(base: &Path, hierarchy: Hierarchy) -> Result<Self, String> {
        if hierarchy == Hierarchy::V2 {
            enable_pids(base)?;
        }
        let dir = base.join(PARENT);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
        if hierarchy == Hierarchy::V2 {
            enable_pids(&dir)?;
        }
        let root = Self { dir, hierarchy };
        root.sweep();
        root.create(1)?.remove(Duration::from_millis(100))?;
        Ok(root)
    }

    /// The directory the per-call cgroups are made in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The hierarchy.
    pub fn hierarchy(&self) -> Hierarchy {
        self.hierarchy
    }

    /// Ends and removes the cgroups of factories that are no longer alive (their name
    /// starts with a PID that `/proc` no longer has). Best effort.
    fn sweep(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let me = std::process::id().to_string();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some((pid, _)) = name.split_once('-') else {
                continue;
            };
            let dead = pid != me
                && pid.bytes().all(|b| b.is_ascii_digit())
                && !Path::new("/proc").join(pid).exists();
            if dead && e.path().is_dir() {
                let _ = Cgroup {
                    dir: e.path(),
                    hierarchy: self.hierarchy,
                    done: false,
                }
                .remove(Duration::from_millis(100));
            }
        }
    }

    /// A new cgroup for one call, `lightsout/<pid>-<n>`, whose processes together may
    /// number at most `max_pids` (threads included).
    ///
    /// # Errors
    /// What failed, in words; nothing is left behind.
    pub fn create(&self, max_pids: u64) -> Result<Cgroup, String> {
        let name = format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = self.dir.join(name);
        fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let cgroup = Cgroup {
            dir,
            hierarchy: self.hierarchy,
            done: false,
        };
        let max = cgroup.dir.join("pids.max");
        write_existing(&max, &max_pids.to_string()).map_err(|e| {
            format!(
                "cannot write {} ({e}): not a cgroup with the pids controller",
                max.display()
            )
        })?;
        Ok(cgroup)
    }
}

/// One call's cgroup. Dropped without [`Cgroup::remove`], it still kills what is inside
/// and removes itself (best effort).
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
    hierarchy: Hierarchy,
    done: bool,
}

impl Cgroup {
    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its `cgroup.procs`: writing a PID there moves that process in.
    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// The PIDs inside (as the factory's PID namespace numbers them).
    pub fn pids(&self) -> Vec<i32> {
        fs::read_to_string(self.procs_file())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// How many `fork`/`clone` calls the limit refused (the `max` line of `pids.events`;
    /// 0 when it cannot be read).
    pub fn refused_forks(&self) -> u64 {
        fs::read_to_string(self.dir.join("pids.events"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("max ")?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Kills every process inside (`SIGKILL`; on v2 `cgroup.kill` first) until none is
    /// left, then removes the directory, trying for at most `grace`.
    ///
    /// # Errors
    /// When processes are still inside after `grace`, or the directory cannot be removed:
    /// what was left, in words (the directory stays).
    pub fn remove(mut self, grace: Duration) -> Result<(), String> {
        self.done = true;
        let until = Instant::now() + grace;
        if self.hierarchy == Hierarchy::V2 {
            let _ = write_existing(&self.dir.join("cgroup.kill"), "1");
        }
        loop {
            let pids = self.pids();
            let removed = if pids.is_empty() {
                match fs::remove_dir(&self.dir) {
                    Ok(()) => return Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            } else {
                for pid in &pids {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(*pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                Ok(())
            };
            if Instant::now() >= until {
                return Err(match removed {
                    Err(e) => format!("cannot remove {}: {e}", self.dir.display()),
                    Ok(()) => format!(
                        "{} processes still in {} after the kill",
                        pids.len(),
                        self.dir.display()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if !self.done {
            let _ = Self {
                dir: self.dir.clone(),
                hierarchy: self.hierarchy,
                done: false,
            }
            .remove(Duration::from_millis(500));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's layout: v1 `pids` and `memory`, an empty unified hierarchy.
    const HYBRID_CGROUP: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/e1\n0::/\n";
    const HYBRID_MOUNTS: &str = "\
30 25 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 25 0:31 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
36 25 0:33 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn both_hierarchies_are_found_unified_first() {
        assert_eq!(
            candidates(HYBRID_CGROUP, HYBRID_MOUNTS),
            vec![
                (PathBuf::from("/sys/fs/cgroup/unified"), Hierarchy::V2),
                (PathBuf::from("/sys/fs/cgroup/pids"), Hierarchy::V1),
            ]
        );
    }

    #[test]
    fn a_unified_only_machine_maps_the_cgroup_path_below_the_mount() {
        let cg = "0::/user.slice/user-1000.slice/session-2.scope\n";
        let mounts = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            candidates(cg, mounts),
            vec![(
                PathBuf::from("/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope"),
                Hierarchy::V2
            )]
        );
        // A mount of a subtree (a container's view) maps the path below its root.
        let mounts = "29 23 0:26 /user.slice /mnt/cg rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            candidates(cg, mounts),
            vec![(
                PathBuf::from("/mnt/cg/user-1000.slice/session-2.scope"),
                Hierarchy::V2
            )]
        );
        // No pids controller anywhere, no cgroup file system: nothing.
        assert!(candidates("4:memory:/\n", HYBRID_MOUNTS).is_empty());
        assert!(candidates(HYBRID_CGROUP, "").is_empty());
    }

    #[test]
    fn a_directory_that_is_not_a_pids_cgroup_is_refused() {
        // The test seam: a plain directory takes the place of the factory's cgroup. Its
        // children have no `pids.max`, so no limit could be set: refused, nothing left.
        let t = tempfile::tempdir().unwrap();
        let err = CgroupRoot::at(t.path(), Hierarchy::V1).unwrap_err();
        assert!(
            err.contains("not a cgroup with the pids controller"),
            "{err}"
        );
        let left: Vec<_> = fs::read_dir(t.path().join(PARENT)).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        // On v2 the parent's controllers are checked first.
        let err = CgroupRoot::at(t.path(), Hierarchy::V2).unwrap_err();
        assert!(err.contains("cgroup.subtree_control"), "{err}");
    }
}
