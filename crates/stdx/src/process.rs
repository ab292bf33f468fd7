//! The process-group runner (feature `process`).
//!
//! A child runs in its own process group (`setpgid(0, 0)`, POSIX `setpgid(2)`), so one
//! `killpg(2)` with `SIGKILL` takes it and every descendant that stayed in the group. The
//! runner always sends that kill when the call ends (at a limit, and after a normal exit to
//! reap stragglers), so nothing a call started outlives it unless it left the group
//! (`setsid`); such a process may hold the output pipes open, so the join of the pipe
//! readers after the kill is bounded ([`Limits::reader_grace`]).

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::Command;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// When a call is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Until {
    /// When the leader (the process started) exits; its group is then killed and the
    /// output read so far is kept.
    #[default]
    Exit,
    /// When the leader exits and both output pipes are closed (as
    /// `Child::wait_with_output`): a background process holding a pipe keeps the call going
    /// until the wall limit.
    Eof,
}

/// The limits of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall time from spawn; past it the group is killed and [`Limit::TimedOut`] reported.
    pub wall: Duration,
    /// Bytes of stdout and stderr together; past them the readers stop (the writer then
    /// gets `EPIPE`/`SIGPIPE`), the group is killed and [`Limit::OutputCapped`] reported.
    /// `None`: no cap.
    pub output_bytes: Option<u64>,
    /// How long each pipe reader is awaited after the group is killed.
    pub reader_grace: Duration,
    /// When the call is done.
    pub until: Until,
}

impl Limits {
    /// `wall` as the only limit: no output cap, a 5 s reader grace, done at the leader's
    /// exit.
    pub fn wall(wall: Duration) -> Self {
        Self {
            wall,
            output_bytes: None,
            reader_grace: Duration::from_secs(5),
            until: Until::Exit,
        }
    }
}

/// The limit that stopped a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`Limits::wall`] passed.
    TimedOut,
    /// More than [`Limits::output_bytes`] bytes were written.
    OutputCapped,
}

/// A finished call.
#[derive(Debug)]
pub struct Output {
    /// How the leader ended (after the kill, when a limit stopped it).
    pub status: ExitStatus,
    /// Captured stdout; stdout and stderr hold at most [`Limits::output_bytes`] together.
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
    /// The limit that stopped the call, if one did. The output cap is judged by the bytes
    /// read once both readers are done, not by which event came first: past the cap a
    /// reader drops its pipe, so the process may die of `SIGPIPE` (or just exit) before the
    /// cap is noticed.
    pub limit: Option<Limit>,
    /// Bytes read from stdout and stderr together (may pass the cap by one read).
    pub output_bytes: u64,
}

/// Why a call could not run.
#[derive(Debug)]
pub enum RunError {
    /// The process could not start.
    Spawn(std::io::Error),
    /// Waiting for the process failed.
    Wait(std::io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn(e) => write!(f, "cannot start the process: {e}"),
            RunError::Wait(e) => write!(f, "waiting for the process: {e}"),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Spawn(e) | RunError::Wait(e) => Some(e),
        }
    }
}

/// Sends `SIGKILL` to the process group `pid` leads; nothing when `pid` is `None`. A group
/// already gone (`ESRCH`) is the common, harmless case and is not reported.
pub fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Runs `cmd` in a new process group under `limits`, with `stdin` written to its standard
/// input (then closed) or `/dev/null` when `None`, and stdout and stderr captured.
///
/// The call always ends: at the wall limit or past the output cap the whole group is killed
/// with `SIGKILL`, and after a normal exit too (stragglers). Whatever `cmd` set for its
/// standard streams or process group is replaced. Wrappers (a sandbox such as bubblewrap,
/// `sh -c`) belong in `cmd` itself: the runner treats the program it starts as the leader.
///
/// # Errors
/// [`RunError::Spawn`] when the process cannot start; [`RunError::Wait`] when it cannot be
/// waited for (its group is killed first).
pub async fn run(
    mut cmd: Command,
    stdin: Option<Vec<u8>>,
    limits: &Limits,
) -> Result<Output, RunError> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0)
    .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    let pid = child.id();
    // A call cut short (its future dropped, e.g. by an outer timeout) still kills the group.
    let mut guard = GroupGuard(pid);

    if let (Some(mut pipe), Some(bytes)) = (child.stdin.take(), stdin) {
        tokio::spawn(async move {
            // A process that exits without reading its input is not an error of the call.
            let _ = pipe.write_all(&bytes).await;
            let _ = pipe.shutdown().await;
        });
    }
    let cap = limits.output_bytes.unwrap_or(u64::MAX);
    let total = Arc::new(AtomicU64::new(0));
    let over = Arc::new(Notify::new());
    let mut out = Reader::spawn(child.stdout.take(), &total, cap, &over);
    let mut err = Reader::spawn(child.stderr.take(), &total, cap, &over);

    let mut limit = None;
    let waited = tokio::select! {
        s = async {
            let s = child.wait().await;
            if limits.until == Until::Eof {
                out.join().await;
                err.join().await;
            }
            s
        } => Some(s),
        () = tokio::time::sleep(limits.wall) => { limit = Some(Limit::TimedOut); None }
        () = over.notified() => { limit = Some(Limit::OutputCapped); None }
    };
    // Always clear the whole group: at a limit, and to reap stragglers after a normal exit.
    kill_group(guard.0.take());
    let status = match waited {
        Some(s) => s,
        None => child.wait().await,
    }
    .map_err(RunError::Wait)?;
    // The group is dead, so the pipes reach EOF, unless a process that left the group holds
    // them open: the join is bounded.
    let _ = tokio::time::timeout(limits.reader_grace, out.join()).await;
    let _ = tokio::time::timeout(limits.reader_grace, err.join()).await;
    let output_bytes = total.load(Ordering::SeqCst);
    if limit.is_none() && output_bytes > cap {
        limit = Some(Limit::OutputCapped);
    }
    Ok(Output {
        status,
        stdout: out.buf,
        stderr: err.buf,
        limit,
        output_bytes,
    })
}

/// Kills the process group it holds when dropped.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0.take());
    }
}

/// A pipe reader and what it read once joined.
struct Reader {
    task: Option<JoinHandle<Vec<u8>>>,
    buf: Vec<u8>,
}

impl Reader {
    fn spawn<R: AsyncRead + Unpin + Send + 'static>(
        pipe: Option<R>,
        total: &Arc<AtomicU64>,
        cap: u64,
        over: &Arc<Notify>,
    ) -> Self {
        Self {
            task: pipe.map(|r| tokio::spawn(read_capped(r, total.clone(), cap, over.clone()))),
            buf: Vec::new(),
        }
    }

    /// Waits for the reader. Cancel-safe: cut short, it can be joined again later; once it
    /// finished, a second join returns at once.
    async fn join(&mut self) {
        if let Some(t) = self.task.as_mut() {
            let r = t.await;
            self.task = None;
            self.buf = r.unwrap_or_default();
        }
    }
}

/// Reads `r` into a buffer, counting bytes into `total`; once `total` passes `cap`, signals
/// `over` and stops reading (the writer then gets `EPIPE`/`SIGPIPE`).
async fn read_capped<R: AsyncRead + Unpin>(
    mut r: R,
    total: Arc<AtomicU64>,
    cap: u64,
    over: Arc<Notify>,
) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let before = total.fetch_add(n as u64, Ordering::SeqCst);
                let room = cap.saturating_sub(before) as usize;
                buf.extend_from_slice(&chunk[..n.min(room)]);
                if before.saturating_add(n as u64) > cap {
                    over.notify_one();
                    break;
                }
            }
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    fn limits() -> Limits {
        Limits {
            wall: Duration::from_secs(120),
            output_bytes: None,
            reader_grace: Duration::from_secs(60),
            until: Until::Exit,
        }
    }

    #[tokio::test]
    async fn captures_output_status_and_stdin() {
        let out = run(
            sh("cat; echo err >&2; exit 3"),
            Some(b"hi\n".to_vec()),
            &limits(),
        )
        .await
        .unwrap();
        assert_eq!(out.stdout, b"hi\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.limit, None);
        assert_eq!(out.output_bytes, 7);
    }

    #[tokio::test]
    async fn a_grandchild_holding_the_pipe_is_killed_with_the_group() {
        // The background `sleep` keeps stdout open: the reader reaches EOF (and the output
        // comes back) only because the kill of the group took it; had it survived, the
        // bounded join would give up and the output would be lost.
        let out = run(sh("sleep 1000 & echo started"), None, &limits())
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(out.limit, None);
        assert_eq!(out.stdout, b"started\n", "the grandchild survived the call");
    }

    #[tokio::test]
    async fn output_past_the_cap_is_cut_and_reported() {
        let l = Limits {
            output_bytes: Some(1000),
            ..limits()
        };
        // Endless output: stopped by the cap.
        let out = run(sh("yes"), None, &l).await.unwrap();
        assert_eq!(out.limit, Some(Limit::OutputCapped));
        assert_eq!(out.stdout.len(), 1000);
        assert!(out.output_bytes > 1000);
        // Output past the cap from a process that exits at once (or dies of SIGPIPE) before
        // the cap is noticed: still capped.
        let out = run(sh("head -c 100000 /dev/zero; exit 0"), None, &l)
            .await
            .unwrap();
        assert_eq!(out.limit, Some(Limit::OutputCapped));
        assert_eq!(out.stdout.len(), 1000);
        // Exactly at the cap is not past it.
        let out = run(sh("head -c 1000 /dev/zero"), None, &l).await.unwrap();
        assert_eq!(out.limit, None);
        assert_eq!(out.stdout.len(), 1000);
    }

    #[tokio::test]
    async fn the_wall_limit_kills_the_group() {
        let l = Limits {
            wall: Duration::from_millis(200),
            ..limits()
        };
        let out = run(sh("echo started; sleep 1000; echo never"), None, &l)
            .await
            .unwrap();
        assert_eq!(out.limit, Some(Limit::TimedOut));
        assert_eq!(out.stdout, b"started\n");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(9)
        );
    }

    #[tokio::test]
    async fn until_eof_waits_for_a_background_writer() {
        let l = Limits {
            until: Until::Eof,
            ..limits()
        };
        let out = run(sh("(sleep 0.2; echo late) & echo early"), None, &l)
            .await
            .unwrap();
        assert_eq!(out.stdout, b"early\nlate\n");
        // Done at the leader's exit, the background writer is killed before it writes.
        let out = run(sh("(sleep 1000; echo late) & echo early"), None, &limits())
            .await
            .unwrap();
        assert_eq!(out.stdout, b"early\n");
    }

    #[tokio::test]
    async fn a_call_cut_short_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("held");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // A grandchild `sleep` holds the FIFO's write end: our read reaches EOF when it dies.
        // (Dropping the child kills only the leader `sh`.)
        let script = format!("sleep 1000 > '{}' & wait", fifo.display());
        let call = tokio::spawn(async move { run(sh(&script), None, &limits()).await });
        // A plain thread reads the FIFO (a blocked read must not hold up the runtime).
        let (opened_tx, opened) = tokio::sync::oneshot::channel();
        let (eof_tx, eof) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            // Opening the read end waits for the writer, so the call has started.
            let mut held = std::fs::File::open(&fifo).unwrap();
            let _ = opened_tx.send(());
            let _ = std::io::Read::read_to_end(&mut held, &mut Vec::new());
            let _ = eof_tx.send(());
        });
        opened.await.unwrap();
        call.abort();
        assert!(call.await.unwrap_err().is_cancelled());
        let closed = tokio::time::timeout(Duration::from_secs(60), eof).await;
        assert!(closed.is_ok(), "the group outlived the cancelled call");
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error() {
        let err = run(Command::new("/nonexistent/program"), None, &limits())
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::Spawn(_)), "{err}");
    }
}
