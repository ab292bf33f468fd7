//! The run's process ledger, `.lightsout/runs/<id>/procs/`: one file per live process group
//! the fence started, so that `lightsout run --resume` ends what a killed factory left
//! behind before it starts again.
//!
//! Each file is named after the group leader's PID and holds `"<pid> <starttime>"`, the
//! start time in clock ticks since boot from field 22 of `/proc/<pid>/stat` (proc(5)). A
//! leftover is killed only when a process with that PID *and* that start time still exists,
//! so a recycled PID is never hit. The sandbox already dies with the factory
//! (`--die-with-parent`); the ledger covers the rest (a fence with isolation turned off).
//! The record follows the spawn: without the sandbox, the program of a
//! [`Fence::command`](super::policy::Fence::command) starts through the
//! [entry](super::entry), which waits for the record
//! ([`EntryPlan::await_record`](super::entry::EntryPlan::await_record)) and starts nothing
//! if the factory dies first.

use super::FenceError;
use lightsout_stdx::process::kill_group;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};

/// The start time of `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`), or
/// `None` when there is no such process.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// A recorded process group; dropping it removes the record (the group was reaped).
#[derive(Debug)]
pub struct Recorded(PathBuf);

impl Drop for Recorded {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Records the group led by `pid` in the ledger `dir`.
///
/// # Errors
/// [`FenceError::Io`] when the record cannot be written (the call does not start: fail
/// closed, or a leftover could not be found again).
pub fn record(dir: &Path, pid: u32) -> Result<Recorded, FenceError> {
    let start = start_time(pid).unwrap_or(0);
    let path = dir.join(pid.to_string());
    super::write_atomic(&path, format!("{pid} {start}\n").as_bytes())?;
    Ok(Recorded(path))
}

/// Kills every process group recorded in `dir` whose leader is still alive with the
/// recorded start time (`SIGKILL` to the group and to the leader), and removes every record.
/// Returns the PIDs it killed. A missing `dir` means nothing was recorded.
pub fn reap_leftovers(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut killed = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut parts = text.split_whitespace().map(str::parse::<u64>);
        if let (Some(Ok(pid)), Some(Ok(start))) = (parts.next(), parts.next())
            && let Ok(pid) = u32::try_from(pid)
            && start != 0
            && start_time(pid) == Some(start)
            && let Ok(raw) = i32::try_from(pid)
        {
            kill_group(Some(pid));
            let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
            killed.push(pid);
        }
        let _ = std::fs::remove_file(&path);
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt as _;

    #[test]
    fn a_recorded_leftover_is_killed_and_a_recycled_pid_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut left = std::process::Command::new("sleep")
            .arg("600")
            .process_group(0)
            .spawn()
            .unwrap();
        let record = record(dir.path(), left.id()).unwrap();
        // The factory died: the record stays.
        std::mem::forget(record);
        // A record whose start time does not match (a recycled PID) is left alone.
        let mut other = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .unwrap();
        std::fs::write(
            dir.path().join(other.id().to_string()),
            format!("{} 1\n", other.id()),
        )
        .unwrap();
        assert_eq!(reap_leftovers(dir.path()), vec![left.id()]);
        let status = left.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        assert_eq!(other.try_wait().unwrap(), None);
        other.kill().unwrap();
        other.wait().unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_reaped_group_leaves_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let r = record(dir.path(), child.id()).unwrap();
        child.wait().unwrap();
        drop(r);
        assert_eq!(reap_leftovers(dir.path()), Vec::<u32>::new());
    }
}
