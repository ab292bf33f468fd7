//! The process-group runner (feature `process`).
//!
//! A child runs in its own process group (`setpgid(0, 0)`, POSIX `setpgid(2)`), so one
//! `killpg(2)` with `SIGKILL` takes it and every descendant that stayed in the group. The
//! runner always sends that kill when the call ends (at a limit, and after a normal exit to
//! reap stragglers), so nothing a call started outlives it unless it left the group
//! (`setsid`); such a process may hold the output pipes open, so the join of the pipe
//! readers after the kill is bounded ([`Limits::reader_grace`]).
//!
//! [`run`] is the whole call. A caller that must act between the start and the first byte
//! of input (record the group, finish setting up a sandbox) uses [`spawn`] and then
//! [`Spawned::finish`], whose [`Hooks`] watch stdout as it arrives and run after the kill.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::ops::ControlFlow;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};
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
    /// Bytes of stdout and stderr together; past them the group is killed and
    /// [`Limit::OutputCapped`] reported. `None`: no cap.
    pub output_bytes: Option<u64>,
    /// What the readers do past the cap. `false`: they stop (the writer then gets
    /// `EPIPE`/`SIGPIPE`, so it may end before the kill). `true`: they go on reading and
    /// discarding until the kill closes the pipes, so the process ends by the kill alone and
    /// every byte it wrote is counted.
    pub drain: bool,
    /// How long the pipe readers are awaited after the group is killed.
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
            drain: false,
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
    /// reader drops its pipe (unless [`Limits::drain`]), so the process may die of
    /// `SIGPIPE` (or just exit) before the cap is noticed.
    pub limit: Option<Limit>,
    /// Whether the stdout watch ([`Hooks::stdout`]) stopped the call, before or after the
    /// leader's exit.
    pub stopped: bool,
    /// Bytes read from stdout and stderr together (may pass the cap by one read; with
    /// [`Limits::drain`], every byte read until the pipes closed).
    pub output_bytes: u64,
    /// Bytes read from stdout, kept or not (0 when its reader was not joined in time).
    pub stdout_bytes: u64,
    /// Bytes read from stderr, kept or not (0 when its reader was not joined in time).
    pub stderr_bytes: u64,
    /// Whether the kill after the leader's normal exit found processes still in its group
    /// (background jobs it left behind). Always `false` when a limit or the watch ended the
    /// call.
    pub stragglers: bool,
    /// Whether a pipe was still open [`Limits::reader_grace`] after the kill: a process
    /// outside the group holds it, and that stream's output is lost.
    pub pipes_held: bool,
    /// Time from spawn until the leader ended.
    pub wall: Duration,
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

/// Sends `SIGKILL` to the process group `pid` leads; nothing when `pid` is `None`. Returns
/// whether the group still had a process to signal: a group already gone (`ESRCH`) is the
/// common, harmless case and is not an error.
pub fn kill_group(pid: Option<u32>) -> bool {
    pid.and_then(|p| i32::try_from(p).ok())
        .is_some_and(|pid| killpg(Pid::from_raw(pid), Signal::SIGKILL).is_ok())
}

/// Called with each chunk read from stdout, as it arrives, from the reader's task.
/// [`ControlFlow::Break`] stops the call: the group is killed at once, from the reader,
/// without waiting for the call's own loop, and no later chunk is shown to the watch.
pub type ChunkWatch = Box<dyn FnMut(&[u8]) -> ControlFlow<()> + Send>;

/// What a caller of [`Spawned::finish`] plugs into the call.
#[derive(Default)]
pub struct Hooks<'a> {
    /// Watches stdout ([`ChunkWatch`]); a stop is reported as [`Output::stopped`].
    pub stdout: Option<ChunkWatch>,
    /// Runs once, right after the final kill of the group and before the pipe readers are
    /// joined: the place to clear what left the group but still holds a pipe (a cgroup).
    pub killed: Option<Box<dyn FnOnce() + Send + 'a>>,
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
    cmd: Command,
    stdin: Option<Vec<u8>>,
    limits: &Limits,
) -> Result<Output, RunError> {
    spawn(cmd, stdin)?.finish(limits, Hooks::default()).await
}

/// The first half of [`run`]: starts `cmd` in a new process group, with its standard input
/// piped when `stdin` is `Some` (written by [`Spawned::finish`]) and its output piped.
///
/// Must be called within a tokio runtime. The wall limit counts from here.
///
/// # Errors
/// [`RunError::Spawn`] when the process cannot start.
pub fn spawn(mut cmd: Command, stdin: Option<Vec<u8>>) -> Result<Spawned, RunError> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0)
    .kill_on_drop(true);
    let started = Instant::now();
    let child = cmd.spawn().map_err(RunError::Spawn)?;
    let pid = child.id();
    Ok(Spawned {
        child,
        // A call cut short (dropped, e.g. by an outer timeout) still kills the group.
        guard: GroupGuard(pid),
        stdin,
        started,
    })
}

/// A process started by [`spawn`], its input not yet written nor its output read. Dropped,
/// it kills its group.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    guard: GroupGuard,
    stdin: Option<Vec<u8>>,
    started: Instant,
}

impl Spawned {
    /// The leader's PID, which is also its process group's ID (`None` once it was reaped).
    pub fn id(&self) -> Option<u32> {
        self.guard.0
    }

    /// The leader, for a caller's setup between the start and the call (`try_wait`).
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Ends a call that will not go on (its caller's setup failed): kills the group and
    /// reaps the leader.
    pub async fn abort(mut self) {
        kill_group(self.guard.0.take());
        let _ = self.child.wait().await;
    }

    /// The second half of [`run`]: writes the input, reads the output under `limits` with
    /// `hooks`, and ends the call as [`run`] does.
    ///
    /// # Errors
    /// [`RunError::Wait`] when the leader cannot be waited for (its group is killed first).
    pub async fn finish(self, limits: &Limits, hooks: Hooks<'_>) -> Result<Output, RunError> {
        let Spawned {
            mut child,
            mut guard,
            stdin,
            started,
        } = self;
        if let (Some(mut pipe), Some(bytes)) = (child.stdin.take(), stdin) {
            tokio::spawn(async move {
                // A process that exits without reading its input is not an error of the call.
                let _ = pipe.write_all(&bytes).await;
                let _ = pipe.shutdown().await;
            });
        }
        let shared = Arc::new(Shared {
            pid: guard.0,
            cap: limits.output_bytes.unwrap_or(u64::MAX),
            drain: limits.drain,
            total: AtomicU64::new(0),
            over: Notify::new(),
            tripped: AtomicBool::new(false),
            stop: Notify::new(),
            stopped: AtomicBool::new(false),
            reaped: AtomicBool::new(false),
        });
        let mut out = Reader::spawn(child.stdout.take(), &shared, hooks.stdout);
        let mut err = Reader::spawn(child.stderr.take(), &shared, None);

        let mut limit = None;
        // The wall limit counts from the spawn, so the caller's setup in between counts too.
        let left = limits.wall.saturating_sub(started.elapsed());
        let waited = tokio::select! {
            s = async {
                let s = child.wait().await;
                if limits.until == Until::Eof {
                    out.join().await;
                    err.join().await;
                }
                s
            } => Some(s),
            () = tokio::time::sleep(left) => { limit = Some(Limit::TimedOut); None }
            () = shared.over.notified() => { limit = Some(Limit::OutputCapped); None }
            () = shared.stop.notified() => None,
        };
        // Always clear the whole group: at a limit, and to reap stragglers after a normal exit.
        let stragglers = kill_group(guard.0.take()) && waited.is_some();
        let status = match waited {
            Some(s) => s,
            None => child.wait().await,
        }
        .map_err(RunError::Wait)?;
        // The group's ID may be reused from here on: the watch no longer kills it.
        shared.reaped.store(true, Ordering::SeqCst);
        let wall = started.elapsed();
        if let Some(killed) = hooks.killed {
            killed();
        }
        // The group is dead, so the pipes reach EOF, unless a process that left the group holds
        // them open: the join is bounded.
        let joined = tokio::time::timeout(limits.reader_grace, async {
            tokio::join!(out.join(), err.join())
        })
        .await;
        let output_bytes = shared.total.load(Ordering::SeqCst);
        let stopped = shared.stopped.load(Ordering::SeqCst);
        if limit.is_none() && output_bytes > shared.cap {
            limit = Some(Limit::OutputCapped);
        }
        Ok(Output {
            status,
            stdout: out.buf,
            stderr: err.buf,
            limit,
            stopped,
            output_bytes,
            stdout_bytes: out.seen,
            stderr_bytes: err.seen,
            stragglers: stragglers && limit.is_none() && !stopped,
            pipes_held: joined.is_err(),
            wall,
        })
    }
}

/// Kills the process group it holds when dropped.
#[derive(Debug)]
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0.take());
    }
}

/// What the readers of one call share.
struct Shared {
    /// The group to kill when the watch stops the call.
    pid: Option<u32>,
    cap: u64,
    drain: bool,
    /// Bytes read from both pipes.
    total: AtomicU64,
    /// Signalled once the total passes the cap.
    over: Notify,
    tripped: AtomicBool,
    /// Signalled when the watch stops the call.
    stop: Notify,
    stopped: AtomicBool,
    /// Set once the leader was reaped.
    reaped: AtomicBool,
}

/// A pipe reader and what it read once joined.
struct Reader {
    task: Option<JoinHandle<(Vec<u8>, u64)>>,
    buf: Vec<u8>,
    seen: u64,
}

impl Reader {
    fn spawn<R: AsyncRead + Unpin + Send + 'static>(
        pipe: Option<R>,
        shared: &Arc<Shared>,
        watch: Option<ChunkWatch>,
    ) -> Self {
        Self {
            task: pipe.map(|r| tokio::spawn(read_pipe(r, Arc::clone(shared), watch))),
            buf: Vec::new(),
            seen: 0,
        }
    }

    /// Waits for the reader. Cancel-safe: cut short, it can be joined again later; once it
    /// finished, a second join returns at once.
    async fn join(&mut self) {
        if let Some(t) = self.task.as_mut() {
            let r = t.await;
            self.task = None;
            (self.buf, self.seen) = r.unwrap_or_default();
        }
    }
}

/// Reads `r` into a buffer of at most the cap's room, counting bytes into the shared total;
/// once the total passes the cap, signals it and stops reading (or, with `drain`, reads on
/// and discards). Shows each chunk to `watch` first; a stop kills the group at once.
/// Returns the buffer and the bytes read.
async fn read_pipe<R: AsyncRead + Unpin>(
    mut r: R,
    shared: Arc<Shared>,
    mut watch: Option<ChunkWatch>,
) -> (Vec<u8>, u64) {
    let mut buf = Vec::new();
    let mut seen = 0u64;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if let Some(w) = watch.as_mut()
            && w(&chunk[..n]).is_break()
        {
            // Kill here, without waiting for the call's loop: the watch stops the call
            // because of what the process might do next.
            if !shared.reaped.load(Ordering::SeqCst) {
                kill_group(shared.pid);
            }
            shared.stopped.store(true, Ordering::SeqCst);
            shared.stop.notify_one();
            watch = None;
        }
        seen += n as u64;
        let before = shared.total.fetch_add(n as u64, Ordering::SeqCst);
        let room = usize::try_from(shared.cap.saturating_sub(before)).unwrap_or(usize::MAX);
        buf.extend_from_slice(&chunk[..n.min(room)]);
        if before.saturating_add(n as u64) > shared.cap {
            if !shared.tripped.swap(true, Ordering::SeqCst) {
                shared.over.notify_one();
            }
            if !shared.drain {
                break;
            }
        }
    }
    (buf, seen)
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
            drain: false,
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
    async fn the_stdout_watch_stops_the_call_and_sees_nothing_after() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = Arc::clone(&seen);
        let hooks = Hooks {
            stdout: Some(Box::new(move |chunk: &[u8]| {
                let mut l = lines.lock().unwrap();
                l.extend_from_slice(chunk);
                if l.ends_with(b"3\n") {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })),
            killed: None,
        };
        let cmd = sh("i=0; while :; do i=$((i+1)); echo $i; sleep 0.01; done");
        let out = spawn(cmd, None)
            .unwrap()
            .finish(&limits(), hooks)
            .await
            .unwrap();
        assert!(out.stopped);
        assert_eq!(out.limit, None);
        assert!(!out.stragglers);
        assert_eq!(seen.lock().unwrap().as_slice(), b"1\n2\n3\n");
        assert!(out.stdout.starts_with(b"1\n2\n3\n"));
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(9)
        );
    }

    #[tokio::test]
    async fn draining_past_the_cap_counts_every_byte_until_the_kill() {
        let l = Limits {
            output_bytes: Some(1000),
            drain: true,
            ..limits()
        };
        // Past the cap the writer is not cut off by a closed pipe (no `SIGPIPE`, so the
        // script never reaches its next line): only the kill ends it.
        let dir = tempfile::tempdir().unwrap();
        let mark = dir.path().join("yes-ended");
        let script = format!("yes; echo $? > '{}'", mark.display());
        let out = run(sh(&script), None, &l).await.unwrap();
        assert_eq!(out.limit, Some(Limit::OutputCapped));
        assert_eq!(out.stdout.len(), 1000);
        assert!(out.stdout_bytes > 1000);
        assert_eq!(out.output_bytes, out.stdout_bytes);
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(9)
        );
        assert!(!mark.exists(), "the writer ended before the kill");
    }

    #[tokio::test]
    async fn stragglers_are_reported_and_the_killed_hook_runs_before_the_join() {
        let mut ran = false;
        let hooks = Hooks {
            stdout: None,
            killed: Some(Box::new(|| ran = true)),
        };
        let out = spawn(sh("sleep 1000 & echo started"), None)
            .unwrap()
            .finish(&limits(), hooks)
            .await
            .unwrap();
        assert!(ran);
        assert!(out.stragglers, "the background sleep was in the group");
        assert!(!out.pipes_held);
        assert_eq!((out.stdout_bytes, out.stderr_bytes), (8, 0));
        let out = run(sh("echo alone"), None, &limits()).await.unwrap();
        assert!(!out.stragglers);
    }

    #[tokio::test]
    async fn a_pipe_held_outside_the_group_is_reported() {
        let l = Limits {
            reader_grace: Duration::from_millis(100),
            ..limits()
        };
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        // `setsid` leaves the group (and the kill) but keeps stdout.
        let script = format!(
            "setsid sh -c 'echo $$ > {}; exec sleep 1000' & sleep 0.1; echo done",
            pidfile.display()
        );
        let out = run(sh(&script), None, &l).await.unwrap();
        assert!(out.pipes_held);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    }

    #[tokio::test]
    async fn an_aborted_call_kills_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 1000 & echo $! > '{}'; wait", pidfile.display());
        let mut spawned = spawn(sh(&script), None).unwrap();
        assert_eq!(spawned.child_mut().try_wait().unwrap(), None);
        let pid = loop {
            if let Some(p) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
            {
                break p;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        spawned.abort().await;
        // The grandchild was killed: gone, or a zombie waiting for its new parent.
        let dead = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
                s.rsplit(") ").next().is_some_and(|r| r.starts_with('Z'))
            })
        };
        for _ in 0..6000 {
            if dead() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the group outlived the abort");
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error() {
        let err = run(Command::new("/nonexistent/program"), None, &limits())
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::Spawn(_)), "{err}");
    }
}
