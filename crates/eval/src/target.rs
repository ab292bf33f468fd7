//! The system under test: an already-running URL, or a command started on a free loopback
//! port, probed until ready, and torn down with its whole process group.

use crate::Error;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to reach the target.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetConfig {
    /// An already-running service at this base URL (`http://127.0.0.1:8080`).
    Url(String),
    /// A command to start per run.
    Command(CommandTarget),
}

/// A target started from a shell command.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandTarget {
    /// Shell command (`sh -c`); every `{port}` becomes the chosen free loopback port, which is
    /// also exported as `PORT`. Twins are exported as `LIGHTSOUT_TWIN_<NAME>_URL`.
    pub command: String,
    /// Path probed with `GET` until any response below 500 arrives (`/` by default).
    pub ready_path: String,
    /// How long to wait for readiness before giving up.
    pub ready_timeout: Duration,
    /// Working directory, when not the current one.
    pub cwd: Option<PathBuf>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// A command line the target runs under, as `WRAP... sh -c COMMAND`: for example a
    /// sandbox (`bwrap ... --`) that confines the service and dies with this process. Empty
    /// (the default): `sh -c COMMAND` directly.
    pub wrap: Vec<std::ffi::OsString>,
}

impl CommandTarget {
    /// A command target with the defaults: probe `/`, wait up to 30 s.
    pub fn new(command: impl Into<String>) -> Self {
        CommandTarget {
            command: command.into(),
            ready_path: "/".to_owned(),
            ready_timeout: Duration::from_secs(30),
            cwd: None,
            env: Vec::new(),
            wrap: Vec::new(),
        }
    }
}

/// A cheap, cloneable view of the target that steps use to ask whether it is still alive.
#[derive(Debug, Clone)]
pub struct TargetHandle {
    child: Option<Arc<Mutex<tokio::process::Child>>>,
    probe_url: Option<String>,
}

impl TargetHandle {
    /// A handle for a target this crate did not start: only the HTTP probe decides liveness.
    pub fn external() -> Self {
        TargetHandle {
            child: None,
            probe_url: None,
        }
    }

    /// A handle that probes `url` for liveness.
    pub fn probing(url: impl Into<String>) -> Self {
        TargetHandle {
            child: None,
            probe_url: Some(url.into()),
        }
    }

    /// True when the process (if we started it) has not exited.
    pub fn process_alive(&self) -> bool {
        let Some(child) = &self.child else {
            return true;
        };
        let Ok(mut guard) = child.lock() else {
            return false;
        };
        matches!(guard.try_wait(), Ok(None))
    }

    /// True when the process is alive and the readiness probe answers below 500.
    ///
    /// # Errors
    /// Returns a description of what is wrong.
    pub async fn check(&self, client: &reqwest::Client, timeout: Duration) -> Result<(), String> {
        if !self.process_alive() {
            return Err("the target process has exited".to_owned());
        }
        if let Some(url) = &self.probe_url {
            match client.get(url).timeout(timeout).send().await {
                Ok(r) if r.status().as_u16() < 500 => {}
                Ok(r) => return Err(format!("the readiness probe answered {}", r.status())),
                Err(e) => return Err(format!("the readiness probe failed: {e}")),
            }
        }
        Ok(())
    }
}

/// A started (or adopted) target. Dropping it kills the whole process group with `SIGKILL`;
/// [`RunningTarget::stop`] first asks politely with `SIGTERM`.
#[derive(Debug)]
pub struct RunningTarget {
    /// Base URL, no trailing slash.
    pub base_url: String,
    /// Liveness handle for steps.
    pub handle: TargetHandle,
    pgid: Option<i32>,
    log_file: Option<tempfile::NamedTempFile>,
}

/// Picks a free loopback TCP port by binding port 0 and releasing it.
///
/// # Errors
/// [`Error::Io`] when no socket can be bound.
pub fn free_port() -> Result<u16, Error> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

impl RunningTarget {
    /// Starts (or adopts) the target and waits for readiness.
    ///
    /// For a command: picks a free port, runs `sh -c COMMAND` as the leader of a new process
    /// group with output to a temporary log, and polls `GET ready_path` every 50 ms.
    ///
    /// # Errors
    /// [`Error::Target`] when the process cannot start, exits before it is ready, or is not
    /// ready within the timeout (the message carries the tail of its output).
    pub async fn start(
        config: &TargetConfig,
        twins: &std::collections::BTreeMap<String, String>,
        client: &reqwest::Client,
    ) -> Result<Self, Error> {
        match config {
            TargetConfig::Url(url) => {
                let base_url = url.trim_end_matches('/').to_owned();
                Ok(RunningTarget {
                    handle: TargetHandle::probing(format!("{base_url}/")),
                    base_url,
                    pgid: None,
                    log_file: None,
                })
            }
            TargetConfig::Command(cmd) => Self::spawn(cmd, twins, client).await,
        }
    }

    async fn spawn(
        cfg: &CommandTarget,
        twins: &std::collections::BTreeMap<String, String>,
        client: &reqwest::Client,
    ) -> Result<Self, Error> {
        let port = free_port()?;
        let command = cfg.command.replace("{port}", &port.to_string());
        let log = tempfile::NamedTempFile::new()?;
        let mut cmd = match cfg.wrap.split_first() {
            Some((program, args)) => {
                let mut c = tokio::process::Command::new(program);
                c.args(args).arg("sh");
                c
            }
            None => tokio::process::Command::new("sh"),
        };
        cmd.arg("-c")
            .arg(&command)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.reopen()?))
            .stderr(Stdio::from(log.reopen()?))
            .process_group(0)
            .kill_on_drop(true);
        for (name, url) in twins {
            let var = format!(
                "LIGHTSOUT_TWIN_{}_URL",
                name.to_ascii_uppercase().replace(['-', '.'], "_")
            );
            cmd.env(var, url);
        }
        for (k, v) in &cfg.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &cfg.cwd {
            cmd.current_dir(dir);
        }
        let child = cmd
            .spawn()
            .map_err(|e| Error::Target(format!("cannot start `{command}`: {e}")))?;
        let pgid = child.id().map(u32::cast_signed);
        let base_url = format!("http://127.0.0.1:{port}");
        let probe = format!("{base_url}/{}", cfg.ready_path.trim_start_matches('/'));
        let target = RunningTarget {
            base_url,
            handle: TargetHandle {
                child: Some(Arc::new(Mutex::new(child))),
                probe_url: Some(probe.clone()),
            },
            pgid,
            log_file: Some(log),
        };
        let deadline = Instant::now() + cfg.ready_timeout;
        loop {
            if !target.handle.process_alive() {
                return Err(Error::Target(format!(
                    "`{command}` exited before it was ready; its output ends with:\n{}",
                    target.log_tail()
                )));
            }
            if let Ok(r) = client
                .get(&probe)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                && r.status().as_u16() < 500
            {
                return Ok(target);
            }
            if Instant::now() >= deadline {
                return Err(Error::Target(format!(
                    "`{command}` was not ready at {probe} within {} ms; its output ends with:\n{}",
                    cfg.ready_timeout.as_millis(),
                    target.log_tail()
                )));
            }
            // Polling interval of the readiness probe (not a stand-in for synchronisation).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last 2 KiB of the target's combined output, for error messages.
    pub fn log_tail(&self) -> String {
        let Some(log) = &self.log_file else {
            return String::new();
        };
        let Ok(mut f) = log.reopen() else {
            return String::new();
        };
        let len = f.seek(SeekFrom::End(0)).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(2048)));
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// The process group id, when this crate started the target.
    pub fn process_group(&self) -> Option<i32> {
        self.pgid
    }

    /// Stops the target: `SIGTERM` to the process group, up to `grace` for the leader to exit,
    /// then `SIGKILL` to the group, which also takes any child that ignored `SIGTERM`.
    pub async fn stop(mut self, grace: Duration) {
        if let Some(pgid) = self.pgid {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline && self.handle.process_alive() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            self.reap();
            self.pgid = None;
        }
    }

    fn reap(&self) {
        if let Some(child) = &self.handle.child
            && let Ok(mut c) = child.lock()
        {
            let _ = c.start_kill();
            let _ = c.try_wait();
        }
    }
}

impl Drop for RunningTarget {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            self.reap();
        }
    }
}
