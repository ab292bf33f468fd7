//! The process fence around one agent call.
//!
//! [`Fence`] turns a [`FenceConfig`] (the `[policy]` table of `lightsout.toml`) into:
//! - **an environment allowlist** ([`EnvPolicy`]): the agent gets a clean environment built
//!   from allowed names, exact pass-through names and explicit values; nothing is inherited
//!   by default, and names that look secret are dropped even when a glob allows them;
//! - **an output cap** in bytes over stdout and stderr together; past it the process group
//!   is killed and [`Violation::OutputCapped`] is reported;
//! - **a wall-time limit** in ms; on timeout the whole process group is killed (the agent is
//!   started with `process_group(0)` and killed with `killpg(SIGKILL)`, POSIX
//!   `setpgid(2)`/`killpg(3)`), and [`Violation::TimedOut`] is reported. Stragglers left
//!   in the group after a normal exit are killed too;
//! - **the worktree as working directory**;
//! - **the bubblewrap [sandbox](super::sandbox)** whenever any isolation is on (the default:
//!   `private_pids = true`): no capabilities, `no_new_privs`, a seccomp filter, its own user,
//!   PID, IPC and UTS namespaces, dying with the factory, a read-only root with only the
//!   worktree writable, its git directories read-only and every [`FenceConfig::hide`]
//!   directory absent. `network = "none"` adds a network namespace with only a loopback,
//!   `network = "hosts"` one whose only way out is the fence's proxy to the named
//!   [`FenceConfig::hosts`]. If bubblewrap cannot start a sandbox, [`Fence::new`] fails with
//!   [`FenceError::IsolationUnavailable`]: the fence never runs an agent with less isolation
//!   than configured. A write outside the worktree fails with `EROFS`, and the refusal the
//!   agent's output shows is reported as [`Violation::OutsideWriteRefused`];
//! - **detection of writes outside the worktree** as a second line: the watched directories
//!   are snapshotted before and after the call and compared; every added, removed or
//!   changed entry is a [`Violation::OutsideWrite`];
//! - **detection of a deleted or damaged `.git`** in the worktree
//!   ([`Violation::GitLinkDeleted`], [`Violation::GitLinkDamaged`]).
//!
//! # Limits, stated plainly
//! - **Only named hosts works through a proxy.** `network = "hosts"` gives the agent a
//!   namespace with no route out and a `CONNECT` proxy that tunnels to the named hosts only
//!   ([`egress`](super::egress)). An agent that ignores `HTTPS_PROXY` reaches nothing;
//!   plain HTTP is refused; the proxy filters by the name the agent asks for, so a named
//!   host's own redirects to other hosts are refused too. It needs root (to enter the
//!   agent's namespace). `network = "inherit"` means the agent can reach any host the
//!   factory can.
//! - **Refusals are seen through the agent's output.** A refused write shows as "Read-only
//!   file system" in what the agent prints; an agent that hides the error is still
//!   contained, just not reported. A syscall the seccomp filter refuses (`EPERM`) is not
//!   reported at all, nor is a read Landlock refuses (`EACCES`) or of a hidden path (absent:
//!   `ENOENT`): Landlock reports denials only to the kernel's audit subsystem (ABI 7,
//!   `log_new_exec`), which is off unless an audit daemon turns it on for the whole machine,
//!   and whose records only root may read (`CAP_AUDIT_READ`); a "Permission denied" in the
//!   output names no path reliably enough to blame one. Without the sandbox (`private_pids = false`, `readonly_outside =
//!   false`, `network = "inherit"`) there is detection only, which compares
//!   `(kind, size, mode, inode, mtime, ctime, link target)` of every entry. Linux sets
//!   `ctime` to the current time on every content or metadata change and a user cannot set
//!   it back, so a write that restores size and mtime (`touch -r`) is still seen. Writes
//!   into paths in [`FenceConfig::watch_ignore`] are not seen.
//! - **Concurrent writers.** Snapshots cannot tell the agent's writes from the factory's own
//!   writes (the journal, the merge queue moving `main`) or another agent's during the
//!   same window: those paths must be ignored (the defaults ignore `.lightsout`,
//!   `.git/objects`, `.git/worktrees`, `.git/logs` and `.git/refs/heads/lightsout`; the run
//!   loop adds the refs, index and lock files it moves) or not moved while agents run. With
//!   the read-only mounts no agent can write to the watched checkout at all, so only the
//!   detection-only setup can blame one agent for another's write.
//! - **Escaped processes.** A process that leaves the group (`setsid`) survives `killpg`. It
//!   is detected when it keeps the output pipes open ([`Violation::EscapedProcess`]);
//!   the sandbox closes the gap, since the whole PID namespace dies with its init.
//!
//! [`FenceError::IsolationUnavailable`]: super::FenceError::IsolationUnavailable

use super::FenceError;
use super::sandbox::{Sandbox, View};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use lightsout_stdx::process::{self, RunError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::ops::ControlFlow;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Environment names passed by default (globs, case-insensitive).
pub const DEFAULT_ENV_ALLOW: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_*", "TERM", "TZ", "TMPDIR",
    "NO_COLOR", "COLUMNS",
];

/// Environment names dropped even when an allow glob matches (globs, case-insensitive).
/// Only an exact name in [`EnvConfig::pass`] gets past these.
pub const DEFAULT_ENV_DENY: &[&str] = &[
    "*KEY*",
    "*SECRET*",
    "*TOKEN*",
    "*PASSWORD*",
    "*PASSWD*",
    "*CREDENTIAL*",
    "*AUTH*",
    "*SESSION*",
    "*COOKIE*",
    "*_PAT",
    "AWS_*",
    "AZURE_*",
    "GOOGLE_*",
    "GITHUB_*",
    "GH_*",
    "SSH_AUTH_SOCK",
    "GPG_AGENT_INFO",
    "LIGHTSOUT_HOLDOUT",
];

/// Paths under a watched directory that are not compared by default (globs over the path
/// relative to the watched directory; a matching directory is not descended).
pub const DEFAULT_WATCH_IGNORE: &[&str] = &[
    ".lightsout",
    ".git/objects",
    ".git/worktrees",
    ".git/logs",
    ".git/refs/heads/lightsout",
];

/// The environment allowlist (`[policy.env]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// Names (globs, case-insensitive) that pass unless they match [`Self::deny`].
    #[serde(default = "default_allow")]
    pub allow: Vec<String>,
    /// Exact names that always pass, even when they look secret: the credentials an agent
    /// needs on purpose (for example `ANTHROPIC_API_KEY`). Each is a deliberate decision.
    #[serde(default)]
    pub pass: Vec<String>,
    /// Names (globs, case-insensitive) that never pass, unless listed in [`Self::pass`].
    #[serde(default = "default_deny")]
    pub deny: Vec<String>,
    /// Variables set to a fixed value (applied last).
    #[serde(default)]
    pub set: BTreeMap<String, String>,
}

fn default_allow() -> Vec<String> {
    DEFAULT_ENV_ALLOW.iter().map(|s| (*s).to_owned()).collect()
}

fn default_deny() -> Vec<String> {
    DEFAULT_ENV_DENY.iter().map(|s| (*s).to_owned()).collect()
}

fn default_watch_ignore() -> Vec<String> {
    DEFAULT_WATCH_IGNORE
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

impl Default for EnvConfig {
    fn default() -> Self {
        Self {
            allow: default_allow(),
            pass: Vec::new(),
            deny: default_deny(),
            set: BTreeMap::new(),
        }
    }
}

/// Outbound network of the agent process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// The agent shares the factory's network: it can reach **any** host the factory can.
    /// Use [`NetworkMode::Hosts`] to restrict it to named hosts.
    Inherit,
    /// A fresh network namespace whose only way out is the fence's `CONNECT` proxy on
    /// `127.0.0.1:3128` (set as `HTTPS_PROXY`, `HTTP_PROXY` and `ALL_PROXY`), which tunnels
    /// to the [`FenceConfig::hosts`] only (see [`egress`](super::egress)). Agents that
    /// ignore the proxy variables reach nothing. Needs the factory to run as root
    /// (`CAP_SYS_ADMIN`, to enter the agent's namespace) and bubblewrap.
    Hosts,
    /// A fresh Linux network namespace with only its own loopback: no outbound connection
    /// of any kind, not even to the host's `127.0.0.1`. The default; with
    /// [`FenceConfig::hosts`] listed and no `network` set, [`NetworkMode::Hosts`] is used.
    #[default]
    None,
}

/// The policy for agent processes (`[policy]` in `lightsout.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FenceConfig {
    /// The environment allowlist.
    #[serde(default)]
    pub env: EnvConfig,
    /// Wall-time limit of one agent call, in ms. Default 30 minutes.
    #[serde(default = "default_wall_ms")]
    pub wall_ms: u64,
    /// Cap on stdout plus stderr of one call, in bytes. Default 16 MiB.
    #[serde(default = "default_output_bytes")]
    pub output_bytes: u64,
    /// Outbound network. Default `"none"` (a network namespace with only a loopback), or
    /// `"hosts"` when [`hosts`](Self::hosts) are listed; `"inherit"` must be asked for.
    #[serde(default)]
    pub network: NetworkMode,
    /// With `network = "hosts"`: the hosts the agent may reach, as `host` (port 443),
    /// `host:port` or `*.domain[:port]`; for example `["api.anthropic.com"]`. Listing hosts
    /// turns the default `network = "none"` into `"hosts"`.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Run the agent in the bubblewrap [sandbox](super::sandbox) (default `true`), which
    /// includes its own PID namespace and `/proc`: it cannot read
    /// `/proc/<factory pid>/environ` (where the factory's own secrets are), see or signal
    /// other processes, and nothing it starts outlives it. Set `false` (with
    /// `readonly_outside = false` and `network = "inherit"`) only where user namespaces are
    /// unavailable; [`Fence::new`] fails rather than silently dropping it.
    #[serde(default = "default_true")]
    pub private_pids: bool,
    /// With [`watch`](Self::watch)ed directories, run the agent in the
    /// [sandbox](super::sandbox) even when `private_pids` is off: everything outside its
    /// worktree is read-only, git metadata included. Writes there are then *prevented*
    /// (`EROFS`), not only detected. Default `true`; [`Fence::new`] fails rather than
    /// silently dropping it.
    #[serde(default = "default_true")]
    pub readonly_outside: bool,
    /// Directories the agent must not even read (the holdout): in the sandbox each is absent
    /// (its parent is an empty read-only tmpfs into which only the other entries are bound).
    #[serde(default)]
    pub hide: Vec<PathBuf>,
    /// Directories the agent must not read although they may contain its worktree (the
    /// factory's `.lightsout`): enforced by Landlock in the [sandbox
    /// entry](super::entry) where the kernel has it (the worktree itself stays readable and
    /// writable). The credentials of [`secret_paths`](super::entry::secret_paths) are
    /// always added.
    #[serde(default)]
    pub unreadable: Vec<PathBuf>,
    /// Directories watched for writes outside the worktree (for example the main checkout
    /// and the directory holding the worktrees). The worktree itself is always excluded.
    #[serde(default)]
    pub watch: Vec<PathBuf>,
    /// Globs over paths relative to a watched directory that are not compared.
    #[serde(default = "default_watch_ignore")]
    pub watch_ignore: Vec<String>,
    /// After the kill, how long to wait for the output pipes to close before reporting an
    /// escaped process, in ms. Default 2000.
    #[serde(default = "default_grace_ms")]
    pub kill_grace_ms: u64,
    /// Most virtual memory, in bytes, of each process an agent (or its checks, or the service
    /// under test) starts: `RLIMIT_AS`, set by the [sandbox entry](super::entry) before it
    /// becomes the program, so an allocation past it fails (`ENOMEM`). `None` (the default):
    /// no limit. Runtimes that reserve large address spaces (the JVM, Go, Node) need room.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// Most processes (threads included) each fenced call may have alive at once: its own
    /// cgroup's `pids.max` ([`cgroup`](super::cgroup)), which the fence's `sh` joins before
    /// it becomes bubblewrap, so a fork bomb's `fork` fails (`EAGAIN`) past it. The fence's
    /// own bubblewrap processes are not counted. A call that hit it is reported
    /// ([`Violation::ProcessCapReached`]); after the call everything left in the cgroup is
    /// killed and the cgroup removed. `None` (the default): no cap. Needs the sandbox and a
    /// cgroup the factory may create: [`Fence::new`] refuses to start otherwise.
    #[serde(default)]
    pub max_processes: Option<u64>,
}

fn default_true() -> bool {
    true
}
fn default_wall_ms() -> u64 {
    30 * 60 * 1000
}
fn default_output_bytes() -> u64 {
    16 * 1024 * 1024
}
fn default_grace_ms() -> u64 {
    2000
}

impl Default for FenceConfig {
    fn default() -> Self {
        Self {
            env: EnvConfig::default(),
            wall_ms: default_wall_ms(),
            output_bytes: default_output_bytes(),
            network: NetworkMode::None,
            hosts: Vec::new(),
            private_pids: true,
            readonly_outside: true,
            hide: Vec::new(),
            unreadable: Vec::new(),
            watch: Vec::new(),
            watch_ignore: default_watch_ignore(),
            kill_grace_ms: default_grace_ms(),
            memory_bytes: None,
            max_processes: None,
        }
    }
}

fn globset(patterns: &[String]) -> Result<GlobSet, FenceError> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let glob = GlobBuilder::new(p)
            .case_insensitive(true)
            .literal_separator(false)
            .build()
            .map_err(|source| FenceError::Pattern {
                pattern: p.clone(),
                source,
            })?;
        b.add(glob);
    }
    b.build().map_err(|source| FenceError::Pattern {
        pattern: patterns.join(", "),
        source,
    })
}

/// The compiled environment allowlist.
#[derive(Debug, Clone)]
pub struct EnvPolicy {
    allow: GlobSet,
    deny: GlobSet,
    pass: Vec<String>,
    set: BTreeMap<String, String>,
}

/// The environment an agent gets, and what was held back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvPlan {
    /// The variables the agent gets, in name order.
    pub vars: Vec<(OsString, OsString)>,
    /// Names held back (values are never kept), in name order: for the audit log.
    pub dropped: Vec<String>,
}

impl EnvPolicy {
    /// Compiles `config`.
    ///
    /// # Errors
    /// [`FenceError::Pattern`] for an invalid glob.
    pub fn new(config: &EnvConfig) -> Result<Self, FenceError> {
        Ok(Self {
            allow: globset(&config.allow)?,
            deny: globset(&config.deny)?,
            pass: config.pass.clone(),
            set: config.set.clone(),
        })
    }

    /// Whether the variable `name` passes.
    pub fn allows(&self, name: &str) -> bool {
        self.pass.iter().any(|p| p == name)
            || (!self.deny.is_match(name) && self.allow.is_match(name))
    }

    /// Builds the agent's environment from `host` (normally `std::env::vars_os()`). Names that
    /// are not valid UTF-8 never pass.
    pub fn plan(&self, host: impl IntoIterator<Item = (OsString, OsString)>) -> EnvPlan {
        let mut vars = BTreeMap::new();
        let mut dropped = Vec::new();
        for (k, v) in host {
            match k.to_str() {
                Some(name) if self.allows(name) => {
                    vars.insert(k, v);
                }
                Some(name) => dropped.push(name.to_owned()),
                None => dropped.push(k.to_string_lossy().into_owned()),
            }
        }
        for (k, v) in &self.set {
            vars.insert(OsString::from(k), OsString::from(v));
        }
        dropped.sort();
        dropped.dedup();
        EnvPlan {
            vars: vars.into_iter().collect(),
            dropped,
        }
    }
}

/// Whether `program` can be executed: a path containing `/` must be a file; a bare name must
/// be a file in one of the `PATH` directories (the default `/usr/bin:/bin` without one).
fn program_exists(program: &OsStr, path_var: Option<&OsStr>) -> bool {
    let p = Path::new(program);
    if p.components().count() > 1 || p.is_absolute() {
        return p.is_file();
    }
    let default = OsStr::new("/usr/bin:/bin");
    std::env::split_paths(path_var.unwrap_or(default)).any(|d| d.join(program).is_file())
}

/// The `sh` script of `network = "hosts"`, run inside the sandbox: waits until the fence's
/// proxy listens in the sandbox's network namespace (a line on the FIFO), then runs the
/// rest: `sh -c SCRIPT net FIFO -- REST...`. bubblewrap has already brought the loopback up.
const NET_SCRIPT: &str = r#"read _ < "$1" || exit 98
shift 2
exec "$@""#;

/// A new FIFO for the [`NET_SCRIPT`] handshake, in its own private directory under the
/// temporary directory; [`Fence::run`] removes the directory.
fn ready_fifo() -> Result<PathBuf, FenceError> {
    let dir = tempfile::Builder::new()
        .prefix("lightsout-fence-")
        .tempdir()
        .map_err(|e| FenceError::io(std::env::temp_dir(), e))?
        .keep();
    let fifo = dir.join("ready");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU)
        .map_err(|e| FenceError::io(&fifo, std::io::Error::from_raw_os_error(e as i32)))?;
    Ok(fifo)
}

/// Opens `fifo` for writing once its reader (the agent's [`NET_SCRIPT`]) has opened it,
/// giving up when the process ends first or after `wait`.
fn open_ready(
    fifo: &Path,
    child: &mut tokio::process::Child,
    wait: Duration,
) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let until = Instant::now() + wait;
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(fifo)
        {
            Ok(f) => return Ok(f),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => {}
            Err(e) => return Err(format!("cannot open the handshake FIFO: {e}")),
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the agent's namespace setup ended early ({status})"
            ));
        }
        if Instant::now() >= until {
            return Err("the agent's namespace setup did not finish in time".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The environment variable that carries the FIFO of [`NET_SCRIPT`] from
/// [`Fence::command`] to [`Fence::run`].
const READY_VAR: &str = "LIGHTSOUT_FENCE_READY";

pub(crate) fn find_tool(name: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = path_var
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The git directories of the worktree `wt` that lie inside it and so must be re-bound
/// read-only over its writable bind: a `.git` directory, or a `.git` file itself and the
/// targets of its `gitdir:` line and its `commondir`. Everything outside the worktree is read-only already
/// (the sandbox's root), so the common git directory of a linked worktree needs nothing: the
/// agent can read the history but cannot write refs, objects, config, hooks or `info/`. The
/// factory makes every commit.
fn git_readonly_paths(wt: &Path) -> Vec<PathBuf> {
    let dot = wt.join(".git");
    let mut out = Vec::new();
    if dot.is_dir() {
        out.push(dot);
    } else if let Ok(text) = std::fs::read_to_string(&dot)
        && let Some(admin) = text.lines().find_map(|l| l.strip_prefix("gitdir: "))
    {
        // The `.git` file itself: rewritten, it would point the factory's next git call
        // in this worktree at a git directory of the agent's choosing. Bound read-only, it
        // cannot be written, removed or renamed (`EROFS`, `EBUSY`: a mount point).
        out.push(dot.clone());
        let admin = wt.join(admin.trim());
        out.extend(admin.parent().and_then(Path::parent).map(Path::to_path_buf));
        out.push(admin);
    }
    out.into_iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .filter(|p| p.starts_with(wt) && p != wt)
        .collect()
}

/// The common git directory of the linked worktree `wt` (from the `gitdir:` line of its
/// `.git` file), canonical; empty for anything else.
fn git_common_paths(wt: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(wt.join(".git")) else {
        return Vec::new();
    };
    let Some(admin) = text.lines().find_map(|l| l.strip_prefix("gitdir: ")) else {
        return Vec::new();
    };
    let admin = wt.join(admin.trim());
    admin
        .parent()
        .and_then(Path::parent)
        .and_then(|common| std::fs::canonicalize(common).ok())
        .into_iter()
        .collect()
}

/// Finds a working sandbox when any isolation is requested.
fn probe_isolation(
    network: NetworkMode,
    private_pids: bool,
    readonly: bool,
) -> Result<Option<Sandbox>, FenceError> {
    if network == NetworkMode::Inherit && !private_pids && !readonly {
        return Ok(None);
    }
    let path = std::env::var_os("PATH");
    if network == NetworkMode::Hosts && !nix::unistd::geteuid().is_root() {
        return Err(FenceError::IsolationUnavailable {
            detail: "network = \"hosts\" needs the factory to run as root (CAP_SYS_ADMIN) \
                     so its proxy can enter the agent's network namespace; use \
                     network = \"none\" or \"inherit\""
                .into(),
        });
    }
    Sandbox::probe(network, path.as_deref()).map(Some)
}

/// The cgroups of the process cap, when [`FenceConfig::max_processes`] asks for it: it needs
/// the sandbox (its `sh` joins the cgroup) and a cgroup this process may create.
fn process_cap_root(
    config: &FenceConfig,
    isolation: Option<&Sandbox>,
) -> Result<Option<Arc<super::cgroup::CgroupRoot>>, FenceError> {
    let Some(max) = config.max_processes else {
        return Ok(None);
    };
    let unavailable = |detail: String| FenceError::ProcessCapUnavailable { detail };
    if max == 0 {
        return Err(unavailable(
            "max_processes = 0 would let no process start; use at least 1".into(),
        ));
    }
    if isolation.is_none() {
        return Err(unavailable(
            "the cap is joined by the sandbox's first process, and the sandbox is off \
             (private_pids = false)"
                .into(),
        ));
    }
    super::cgroup::CgroupRoot::detect()
        .map(|r| Some(Arc::new(r)))
        .map_err(unavailable)
}

/// The fence for agent processes: build it once per run from a [`FenceConfig`], then use
/// [`Fence::command`] (or [`Fence::apply`]) and [`Fence::run`] for each call.
#[derive(Debug, Clone)]
pub struct Fence {
    config: FenceConfig,
    env: EnvPolicy,
    ignore: GlobSet,
    isolation: Option<Sandbox>,
    host_env: Option<Vec<(OsString, OsString)>>,
    hosts: Arc<super::egress::HostList>,
    procs: Option<PathBuf>,
    granted: Vec<PathBuf>,
    cgroups: Option<Arc<super::cgroup::CgroupRoot>>,
    /// Without the sandbox, with a registered [entry](super::entry) program: the lifeline
    /// the entry checks while it waits for its ledger record ([`Fence::with_process_ledger`]).
    lifeline: Option<Arc<super::entry::Lifeline>>,
}

impl Fence {
    /// Compiles `config` and, when isolation is requested, checks that bubblewrap starts a
    /// sandbox here ([`Sandbox::probe`]).
    ///
    /// # Errors
    /// [`FenceError::Pattern`] for an invalid glob; [`FenceError::IsolationUnavailable`] when
    /// namespaces are requested and cannot be created.
    pub fn new(mut config: FenceConfig) -> Result<Self, FenceError> {
        // Listed hosts mean "only these": `none` (the default) becomes `hosts`.
        if config.network == NetworkMode::None && !config.hosts.is_empty() {
            config.network = NetworkMode::Hosts;
        }
        let env = EnvPolicy::new(&config.env)?;
        let ignore = globset(&config.watch_ignore)?;
        let hosts = Arc::new(super::egress::HostList::parse(&config.hosts)?);
        let isolation = probe_isolation(
            config.network,
            config.private_pids,
            config.readonly_outside && !config.watch.is_empty(),
        )?;
        // Limits are set by the sandbox entry; without it they would be silently absent.
        if config.memory_bytes.is_some() && !isolation.as_ref().is_some_and(Sandbox::has_entry) {
            return Err(FenceError::IsolationUnavailable {
                detail: "memory_bytes is set by the sandbox entry, which needs the sandbox \
                         (private_pids = true) and the lightsout binary; remove it from \
                         [fence] or turn the sandbox on"
                    .into(),
            });
        }
        let cgroups = process_cap_root(&config, isolation.as_ref())?;
        let lifeline = match (&isolation, super::entry::program()) {
            (None, Some(_)) => Some(Arc::new(super::entry::Lifeline::new()?)),
            _ => None,
        };
        Ok(Self {
            config,
            env,
            ignore,
            isolation,
            host_env: None,
            hosts,
            procs: None,
            granted: Vec::new(),
            cgroups,
            lifeline,
        })
    }

    /// Uses `vars` instead of the factory's own environment as the source the allowlist
    /// picks from (for tests, or to feed a curated environment).
    #[must_use]
    pub fn with_host_env(mut self, vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        self.host_env = Some(vars.into_iter().collect());
        self
    }

    /// Records every process group [`Fence::run`] starts in the ledger directory `dir`
    /// ([`procs`](super::procs)) until it is reaped, so a resumed run can end what a killed
    /// factory left behind.
    ///
    /// The record follows the spawn. Inside the sandbox a factory killed between the two
    /// leaves nothing (the sandbox dies with it); without the sandbox, a program started
    /// through [`Fence::command`] in a process with a registered [entry](super::entry)
    /// program first runs the entry, which waits for the record and starts nothing if the
    /// factory died before writing it ([`EntryPlan::await_record`](super::entry::EntryPlan::await_record)).
    /// A command built by [`Fence::unsandboxed`] does the same; one only passed through
    /// [`Fence::apply`] keeps that window.
    #[must_use]
    pub fn with_process_ledger(mut self, dir: impl Into<PathBuf>) -> Self {
        self.procs = Some(dir.into());
        self
    }

    /// The same fence letting its processes read `dirs` although they lie inside an
    /// [`unreadable`](FenceConfig::unreadable) directory (the agent's own prompt and task
    /// files in the run's artifacts).
    #[must_use]
    pub fn with_readable(mut self, dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        self.granted.extend(dirs);
        self
    }

    /// The same fence with another wall-time limit (ms) and output cap (bytes), for one
    /// call: the run's [`FencedAgent`](super::agent::FencedAgent) tightens them to the
    /// `[limits]` table and the task's remaining wall budget.
    #[must_use]
    pub fn with_limits(mut self, wall_ms: u64, output_bytes: u64) -> Self {
        self.config.wall_ms = wall_ms;
        self.config.output_bytes = output_bytes;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &FenceConfig {
        &self.config
    }

    /// Whether agent commands run in the bubblewrap [sandbox](super::sandbox), and with
    /// which flags (the mounts of each call's view come after them).
    pub fn isolation_flags(&self) -> Option<Vec<&'static str>> {
        self.isolation.as_ref().map(Sandbox::flags)
    }

    /// The sandbox, when isolation is configured.
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.isolation.as_ref()
    }

    /// The command line a service under test (agent-written code started by the holdout
    /// evaluation) runs under: the sandbox with the worktree **read-only** (nothing the
    /// service writes can reach a later attempt; it has a fresh `/tmp`), the holdout and
    /// the directories in `hidden` absent, and the factory's network (the evaluator reaches
    /// it on loopback) in which, where Landlock handles TCP (ABI 4+), it may **connect only
    /// to `connect_ports`** (the twins'): no other local service, no web port. It may still
    /// bind any port, accept connections, and send UDP (DNS included): Landlock does not
    /// cover UDP. `None` when isolation is off.
    ///
    /// # Errors
    /// [`FenceError::Io`] when the worktree cannot be resolved.
    pub fn service_wrap(
        &self,
        worktree: &Path,
        hidden: &[PathBuf],
        connect_ports: &[u16],
    ) -> Result<Option<Vec<OsString>>, FenceError> {
        let Some(sandbox) = &self.isolation else {
            return Ok(None);
        };
        let mut view = self.view(worktree)?;
        view.connect_ports = Some(connect_ports.to_vec());
        // Read-only now, and readable through Landlock although it may lie inside the
        // factory's unreadable `.lightsout`.
        view.granted.extend(view.writable.iter().cloned());
        view.readable.append(&mut view.writable);
        view.readonly.clear();
        view.hidden.extend(existing_dirs(hidden));
        let cmd = sandbox.with_network(NetworkMode::Inherit).command(&view);
        let mut argv = vec![cmd.get_program().to_os_string()];
        argv.extend(cmd.get_args().map(OsStr::to_os_string));
        Ok(Some(argv))
    }

    /// The view a process working in `worktree` gets: the worktree writable, its git
    /// directories read-only, the [`FenceConfig::hide`] directories absent.
    ///
    /// # Errors
    /// [`FenceError::Io`] when the worktree cannot be resolved.
    pub fn view(&self, worktree: &Path) -> Result<View, FenceError> {
        let wt = std::fs::canonicalize(worktree).map_err(|e| FenceError::io(worktree, e))?;
        // The sandbox's `/tmp` is fresh: what the agent must read there comes back read-only.
        let mut readable = existing_dirs(&self.config.watch);
        readable.extend(git_common_paths(&wt));
        readable.retain(|p| p.starts_with("/tmp"));
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let mut denied: Vec<PathBuf> = self
            .config
            .unreadable
            .iter()
            .filter_map(|d| std::fs::canonicalize(d).ok())
            .collect();
        denied.extend(super::entry::secret_paths(home.as_deref()));
        Ok(View {
            readable,
            readonly: git_readonly_paths(&wt),
            hidden: existing_dirs(&self.config.hide),
            writable: vec![wt.clone()],
            extra: Vec::new(),
            denied,
            granted: self
                .granted
                .iter()
                .filter_map(|d| std::fs::canonicalize(d).ok())
                .collect(),
            connect_ports: None,
            memory_bytes: self.config.memory_bytes,
            cwd: wt,
        })
    }

    /// The environment plan for the next call.
    pub fn env_plan(&self) -> EnvPlan {
        match &self.host_env {
            Some(vars) => self.env.plan(vars.iter().cloned()),
            None => self.env.plan(std::env::vars_os()),
        }
    }

    /// Applies the environment allowlist, the working directory and a new process group to
    /// `cmd`. It does not add namespaces (that needs a wrapper program: use
    /// [`Fence::command`]) and does not enforce limits (use [`Fence::run`]).
    pub fn apply(&self, cmd: &mut Command, worktree: &Path) {
        let plan = self.env_plan();
        cmd.env_clear()
            .envs(plan.vars)
            .current_dir(worktree)
            .process_group(0);
    }

    /// A fenced command for `program args...` in `worktree`: wrapped in the sandbox when
    /// namespaces are configured, with [`Fence::apply`] done. Add more arguments with
    /// [`Command::arg`], or per-call variables with [`Command::env`], as usual.
    ///
    /// # Errors
    /// [`FenceError::Spawn`] (not found) when `program` is neither an existing path nor
    /// found on the `PATH` the agent will get: checked here because, once wrapped in
    /// the sandbox, a missing program would only show as a failed exit.
    pub fn command<I, S>(
        &self,
        program: impl AsRef<OsStr>,
        args: I,
        worktree: &Path,
    ) -> Result<Command, FenceError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let plan = self.env_plan();
        let path_var = plan
            .vars
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_os_str());
        if !program_exists(program.as_ref(), path_var) {
            return Err(FenceError::Spawn {
                program: program.as_ref().to_string_lossy().into_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not found on the agent's PATH",
                ),
            });
        }
        // `network = "hosts"`: the handshake FIFO, set in the environment after `apply`.
        let mut ready = None;
        let mut cmd = match &self.isolation {
            Some(sandbox) => {
                let mut view = self.view(worktree)?;
                let mut net = None;
                if self.config.network == NetworkMode::Hosts {
                    let fifo = ready_fifo()?;
                    view.extra.extend(fifo.parent().map(Path::to_path_buf));
                    net = Some(fifo);
                }
                let mut c = sandbox.command(&view);
                if let Some(fifo) = &net {
                    c.args(["/bin/sh", "-c", NET_SCRIPT, "net"])
                        .arg(fifo)
                        .arg("--");
                }
                ready = net;
                c.arg(program.as_ref());
                c
            }
            None => self.unsandboxed(program.as_ref()),
        };
        cmd.args(args);
        // `apply` clears the environment: the handshake and proxy variables go after it.
        self.apply(&mut cmd, worktree);
        if let Some(fifo) = ready {
            cmd.env(READY_VAR, fifo);
            let proxy = format!("http://127.0.0.1:{}", super::egress::PROXY_PORT);
            for name in [
                "HTTPS_PROXY",
                "https_proxy",
                "HTTP_PROXY",
                "http_proxy",
                "ALL_PROXY",
                "all_proxy",
            ] {
                cmd.env(name, &proxy);
            }
            cmd.env_remove("NO_PROXY").env_remove("no_proxy");
        }
        Ok(cmd)
    }

    /// `program` without the sandbox, for a caller that builds its own command (a visible
    /// check): through the [entry](super::entry) when the calls are recorded in a process
    /// ledger and an entry program is registered, so that the program starts only once its
    /// record is there (see [`Fence::with_process_ledger`]); else `program` itself. Nothing
    /// of [`Fence::apply`] is done.
    pub fn unsandboxed(&self, program: &OsStr) -> Command {
        let (Some(dir), Some(lifeline), Some(entry)) = (
            self.procs.as_ref(),
            self.lifeline.as_ref(),
            super::entry::program(),
        ) else {
            return Command::new(program);
        };
        let plan = super::entry::EntryPlan {
            lifeline: Some(lifeline.path()),
            // The entry runs in the worktree: a relative ledger would be looked for there.
            await_record: Some(std::path::absolute(dir).unwrap_or_else(|_| dir.clone())),
            ..super::entry::EntryPlan::default()
        };
        let mut c = Command::new(entry);
        c.arg(super::entry::ENTRY_ARG)
            .arg(serde_json::to_string(&plan).unwrap_or_default())
            .arg("--")
            .arg(program);
        c
    }

    /// Runs `cmd` (built by [`Fence::command`] or passed through [`Fence::apply`]) to
    /// completion under the limits, feeding `stdin` (or `/dev/null`), and reports.
    ///
    /// The call always ends: at the wall limit or the output cap the whole process group is
    /// killed with `SIGKILL`. The returned [`FencedOutput`] holds at most
    /// [`FenceConfig::output_bytes`] bytes of stdout and stderr together, and a
    /// [`FenceReport`] whose violations fail the attempt.
    ///
    /// The process runs on the shared process-group runner ([`lightsout_stdx::process`]),
    /// driven by a single-thread tokio runtime of the call's own: this call blocks, and must
    /// not be made on a tokio worker thread; from async code run it inside
    /// `tokio::task::spawn_blocking`.
    ///
    /// # Errors
    /// [`FenceError::Spawn`] when the process cannot start; [`FenceError::Io`] when a watched
    /// directory or the worktree cannot be read for the snapshot before the call, or the
    /// process cannot be waited for.
    pub fn run(
        &self,
        cmd: Command,
        stdin: Option<Vec<u8>>,
        worktree: &Path,
    ) -> Result<FencedOutput, FenceError> {
        self.run_watched(cmd, stdin, worktree, None)
    }

    /// [`Fence::run`], with `watch` called on each complete stdout line as it arrives (from
    /// the task that reads the pipe). When it returns a [`Violation`] the whole process
    /// group is killed at once, the violation is reported, and no further line is watched:
    /// this is how a streaming agent is stopped when its reported spend can no longer be
    /// covered by the budget ([`Violation::BudgetStopped`]). Lines longer than 1 MiB are
    /// not watched.
    ///
    /// # Errors
    /// As [`Fence::run`].
    pub fn run_watched(
        &self,
        mut cmd: Command,
        stdin: Option<Vec<u8>>,
        worktree: &Path,
        watch: Option<LineWatch>,
    ) -> Result<FencedOutput, FenceError> {
        let worktree_abs =
            std::fs::canonicalize(worktree).map_err(|e| FenceError::io(worktree, e))?;
        let before = Snapshot::take(&self.config.watch, &self.ignore, &worktree_abs)?;
        let git_before = GitLink::capture(&worktree_abs);
        let cgroup = self.call_cgroup(&mut cmd)?;
        let program = cmd.get_program().to_string_lossy().into_owned();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| FenceError::Spawn {
                program: program.clone(),
                source,
            })?;
        // Phases 1 and 2: the call, then the kill of the group and the drain of its pipes.
        let mut report = FenceReport::default();
        let (out, egress) = runtime
            .block_on(self.call(cmd, stdin, watch, cgroup, &mut report))
            .map_err(|e| match e {
                CallError::Fence(e) => e,
                CallError::Run(RunError::Spawn(source)) => FenceError::Spawn { program, source },
                CallError::Run(RunError::Wait(e)) => FenceError::io(&worktree_abs, e),
            })?;
        drop(runtime);

        if let Some(e) = egress {
            for destination in e.finish() {
                report
                    .violations
                    .push(Violation::EgressDenied { destination });
            }
        }
        if let Some(v) = self.refused_write(&out.stdout, &out.stderr) {
            report.violations.push(v);
        }
        // Phase 3: what changed outside the worktree, and the worktree's `.git`.
        self.outside_writes(&before, &worktree_abs, &mut report);
        if let Some(v) = git_before.check(&worktree_abs) {
            report.violations.push(v);
        }

        Ok(FencedOutput {
            exit: Some(Exit::from(out.status)),
            stdout: out.stdout,
            stderr: out.stderr,
            stdout_bytes: out.stdout_bytes,
            stderr_bytes: out.stderr_bytes,
            wall_ms: u64::try_from(out.wall.as_millis()).unwrap_or(u64::MAX),
            report,
        })
    }

    /// Starts `cmd` on the process-group runner, records it in the process ledger, brings
    /// up its egress proxy, then runs it to the end under the limits with `watch` on its
    /// stdout; the end of `cgroup` runs after the kill of the group. Fills `report` with
    /// what the call itself shows (limits, a watch's stop, stragglers, escaped processes).
    async fn call(
        &self,
        cmd: Command,
        stdin: Option<Vec<u8>>,
        watch: Option<LineWatch>,
        cgroup: Option<super::cgroup::Cgroup>,
        report: &mut FenceReport,
    ) -> Result<(process::Output, Option<super::egress::Egress>), CallError> {
        let ready = cmd
            .get_envs()
            .find(|(k, _)| *k == READY_VAR)
            .and_then(|(_, v)| v.map(PathBuf::from));
        let mut spawned = process::spawn(tokio::process::Command::from(cmd), stdin)?;
        // A record that cannot be written ends the call: no unrecorded call runs. The record
        // is removed when `_recorded` drops, after the group was killed and reaped.
        let _recorded = match (self.procs.as_deref(), spawned.id()) {
            (Some(dir), Some(pid)) => match super::procs::record(dir, pid) {
                Ok(r) => Some(r),
                Err(e) => {
                    spawned.abort().await;
                    return Err(e.into());
                }
            },
            _ => None,
        };
        let egress = match self.start_egress(ready, &mut spawned) {
            Ok(e) => e,
            Err(e) => {
                spawned.abort().await;
                return Err(e.into());
            }
        };
        let limits = process::Limits {
            wall: Duration::from_millis(self.config.wall_ms),
            output_bytes: Some(self.config.output_bytes),
            // Past the cap the agent is ended by the kill alone, and every byte is counted.
            drain: true,
            reader_grace: Duration::from_millis(self.config.kill_grace_ms),
            until: process::Until::Exit,
        };
        let stop = Arc::new(std::sync::Mutex::new(None));
        let mut cgroup_report = FenceReport::default();
        let hooks = process::Hooks {
            stdout: watch.map(|w| watch_lines(w, Arc::clone(&stop))),
            killed: cgroup.map(|cg| {
                let end: Box<dyn FnOnce() + Send + '_> =
                    Box::new(|| self.end_cgroup(cg, &mut cgroup_report));
                end
            }),
        };
        let out = spawned.finish(&limits, hooks).await?;

        report.killed = out.limit.is_some() || out.stopped;
        report.stragglers_killed = out.stragglers;
        let capped = Violation::OutputCapped {
            limit_bytes: self.config.output_bytes,
            seen_bytes: out.output_bytes,
        };
        match out.limit {
            Some(process::Limit::TimedOut) => report.violations.push(Violation::TimedOut {
                limit_ms: self.config.wall_ms,
            }),
            Some(process::Limit::OutputCapped) => report.violations.push(capped.clone()),
            None => {}
        }
        if let Some(v) = lightsout_stdx::lock(&stop).take() {
            report.violations.push(v);
        }
        if out.output_bytes > self.config.output_bytes
            && !report.has(|v| matches!(v, Violation::OutputCapped { .. }))
        {
            report.violations.push(capped);
        }
        report.violations.append(&mut cgroup_report.violations);
        if out.pipes_held {
            report.violations.push(Violation::EscapedProcess {
                detail: "a process outside the agent's process group kept its output open after the kill".into(),
            });
        }
        Ok((out, egress))
    }

    /// `network = "hosts"`: serves the proxy in the agent's namespace, then lets it start
    /// (the handshake FIFO `ready`, named in the command's environment).
    fn start_egress(
        &self,
        ready: Option<PathBuf>,
        spawned: &mut process::Spawned,
    ) -> Result<Option<super::egress::Egress>, FenceError> {
        let Some(fifo) = ready else {
            return Ok(None);
        };
        let pid = spawned.id();
        let started = open_ready(
            &fifo,
            spawned.child_mut(),
            Duration::from_millis(self.config.wall_ms.min(30_000)),
        )
        .map_err(|detail| FenceError::IsolationUnavailable { detail })
        .and_then(|f| {
            // bubblewrap's sandbox init owns the network namespace.
            let init = pid.and_then(super::sandbox::first_child).ok_or_else(|| {
                FenceError::IsolationUnavailable {
                    detail: "the agent's sandbox has no init process".into(),
                }
            })?;
            super::egress::Egress::start(init, Arc::clone(&self.hosts)).map(|e| (f, e))
        });
        if let Some(dir) = fifo.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
        let (mut f, e) = started?;
        let _ = f.write_all(b"go\n");
        Ok(Some(e))
    }

    /// A write the read-only mounts refused shows in the agent's output as EROFS.
    fn refused_write(&self, stdout: &[u8], stderr: &[u8]) -> Option<Violation> {
        self.isolation.as_ref()?;
        let detail = [stderr, stdout].into_iter().find_map(|b| {
            String::from_utf8_lossy(b)
                .lines()
                .find(|l| {
                    l.contains("Read-only file system")
                        // `rm`/`mv` of a path the sandbox bound over (`.git`): a mount point.
                        || l.contains("Device or resource busy")
                })
                .map(|l| l.chars().take(300).collect::<String>())
        })?;
        Some(Violation::OutsideWriteRefused { detail })
    }

    /// Phase 3: what changed in the watched directories since `before`.
    fn outside_writes(&self, before: &Snapshot, worktree_abs: &Path, report: &mut FenceReport) {
        match Snapshot::take(&self.config.watch, &self.ignore, worktree_abs) {
            Ok(after) => {
                let changes = before.diff(&after);
                report.outside_writes_total = changes.len();
                for (path, change) in changes.into_iter().take(MAX_LISTED_WRITES) {
                    report
                        .violations
                        .push(Violation::OutsideWrite { path, change });
                }
            }
            Err(e) => report.violations.push(Violation::WatchFailed {
                detail: e.to_string(),
            }),
        }
    }
}

/// Why [`Fence::call`] failed: the fence's own setup, or the runner.
enum CallError {
    Fence(FenceError),
    Run(RunError),
}

impl From<FenceError> for CallError {
    fn from(e: FenceError) -> Self {
        CallError::Fence(e)
    }
}

impl From<RunError> for CallError {
    fn from(e: RunError) -> Self {
        CallError::Run(e)
    }
}

/// A [`LineWatch`] fed by the runner's stdout chunks: it sees each complete line (up to
/// [`MAX_WATCHED_LINE`] bytes; a longer one is skipped to its end); the violation it
/// returns goes to `stop` and stops the call.
fn watch_lines(
    mut watch: LineWatch,
    stop: Arc<std::sync::Mutex<Option<Violation>>>,
) -> process::ChunkWatch {
    let mut line: Vec<u8> = Vec::new();
    let mut too_long = false;
    Box::new(move |chunk: &[u8]| {
        for part in chunk.split_inclusive(|b| *b == b'\n') {
            if !too_long && line.len() + part.len() <= MAX_WATCHED_LINE + 1 {
                line.extend_from_slice(part);
            } else {
                // Too long to be a usage line: skip to its end.
                too_long = true;
                line.clear();
            }
            if part.ends_with(b"\n") {
                let v = if too_long {
                    None
                } else {
                    watch(String::from_utf8_lossy(&line).trim_end())
                };
                line.clear();
                too_long = false;
                if let Some(v) = v {
                    *lightsout_stdx::lock(&stop) = Some(v);
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    })
}

impl Fence {
    /// The call's own cgroup when [`FenceConfig::max_processes`] is set, named in `cmd`'s
    /// environment for the sandbox's `sh` to join.
    fn call_cgroup(&self, cmd: &mut Command) -> Result<Option<super::cgroup::Cgroup>, FenceError> {
        let (Some(root), Some(max)) = (&self.cgroups, self.config.max_processes) else {
            return Ok(None);
        };
        if !self.isolation.as_ref().is_some_and(|s| s.wraps(cmd)) {
            return Err(FenceError::ProcessCapUnavailable {
                detail: "the command was not built by Fence::command or Sandbox::command, so \
                         nothing would join the cap's cgroup"
                    .into(),
            });
        }
        let cgroup = root
            .create(max.saturating_add(super::sandbox::SANDBOX_OWN_PIDS))
            .map_err(|detail| FenceError::ProcessCapUnavailable { detail })?;
        cmd.env(super::sandbox::CGROUP_VAR, cgroup.procs_file());
        Ok(Some(cgroup))
    }

    /// Reports the forks the cap refused, then kills what is left in the call's cgroup and
    /// removes it; what cannot be removed is an [`Violation::EscapedProcess`].
    fn end_cgroup(&self, cgroup: super::cgroup::Cgroup, report: &mut FenceReport) {
        let refused_forks = cgroup.refused_forks();
        if refused_forks > 0 {
            report.violations.push(Violation::ProcessCapReached {
                limit: self.config.max_processes.unwrap_or(0),
                refused_forks,
                cgroup: cgroup.dir().to_path_buf(),
            });
        }
        let grace = Duration::from_millis(self.config.kill_grace_ms.max(100));
        if let Err(detail) = cgroup.remove(grace) {
            report.violations.push(Violation::EscapedProcess { detail });
        }
    }
}

/// How many outside writes are listed in a report (the total is always given).
pub const MAX_LISTED_WRITES: usize = 100;

/// Watches an agent's stdout line by line ([`Fence::run_watched`]); a returned violation
/// stops the call.
pub type LineWatch = Box<dyn FnMut(&str) -> Option<Violation> + Send>;

/// The longest stdout line a [`LineWatch`] is shown, in bytes.
const MAX_WATCHED_LINE: usize = 1 << 20;

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal number, when a signal ended it (9 after a fence kill).
    pub signal: Option<i32>,
}

impl Exit {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl From<std::process::ExitStatus> for Exit {
    fn from(s: std::process::ExitStatus) -> Self {
        Self {
            code: s.code(),
            signal: s.signal(),
        }
    }
}

/// The result of [`Fence::run`].
#[derive(Debug, Clone)]
pub struct FencedOutput {
    /// How the process ended (`None` if it could not be waited for).
    pub exit: Option<Exit>,
    /// Captured stdout (stdout plus stderr hold at most `output_bytes` together).
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
    /// Bytes the process wrote to stdout, captured or not.
    pub stdout_bytes: u64,
    /// Bytes the process wrote to stderr, captured or not.
    pub stderr_bytes: u64,
    /// Wall time until the process ended, in ms.
    pub wall_ms: u64,
    /// Policy violations.
    pub report: FenceReport,
}

/// The policy violations of one call; any violation fails the attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceReport {
    /// Violations, in the order found.
    pub violations: Vec<Violation>,
    /// Whether the fence killed the process group (timeout or output cap).
    pub killed: bool,
    /// Whether processes were still in the group after the agent exited (and were killed).
    pub stragglers_killed: bool,
    /// Number of outside writes found (at most [`MAX_LISTED_WRITES`] are listed).
    pub outside_writes_total: usize,
}

impl FenceReport {
    /// No violation.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    fn has(&self, f: impl Fn(&Violation) -> bool) -> bool {
        self.violations.iter().any(f)
    }
}

/// What happened to a path outside the worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// It appeared.
    Added,
    /// It disappeared.
    Removed,
    /// Its content or metadata changed (size, mode, inode, mtime, ctime or link target).
    Modified,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Added => "added",
            Self::Removed => "removed",
            Self::Modified => "modified",
        })
    }
}

/// A policy violation; each one fails the attempt and becomes a `policy_hit` audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "violation", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Violation {
    /// The wall-time limit was reached; the process group was killed.
    TimedOut {
        /// The limit, in ms.
        limit_ms: u64,
    },
    /// The output cap was reached; the process group was killed.
    OutputCapped {
        /// The cap, in bytes.
        limit_bytes: u64,
        /// Bytes the process wrote before it died, at least.
        seen_bytes: u64,
    },
    /// A path outside the worktree changed during the call.
    OutsideWrite {
        /// The path.
        path: PathBuf,
        /// How.
        change: Change,
    },
    /// The agent tried to write where the read-only mounts of
    /// [`FenceConfig::readonly_outside`] forbid it: the write was refused (`EROFS`), and its
    /// output says "Read-only file system". Nothing outside the worktree changed.
    OutsideWriteRefused {
        /// The first output line that reports the refusal.
        detail: String,
    },
    /// With `network = "hosts"`, the agent asked the proxy for a destination not in
    /// [`FenceConfig::hosts`]; the proxy refused it (`403`), so nothing was sent there.
    EgressDenied {
        /// `host:port`, or `plain HTTP to <host>`.
        destination: String,
    },
    /// The worktree's `.git` (file or directory) is gone.
    GitLinkDeleted {
        /// The `.git` path.
        path: PathBuf,
    },
    /// The worktree's `.git` changed, or no longer leads to a git directory.
    GitLinkDamaged {
        /// The `.git` path.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The watched directories could not be read after the call, so outside writes cannot
    /// be ruled out (fails closed).
    WatchFailed {
        /// The error.
        detail: String,
    },
    /// A streaming agent's reported spend could no longer be covered by its budget: the
    /// process group was killed before the next step could pass the cap
    /// ([`Reservation::cover`](super::budget::Reservation::cover)).
    BudgetStopped {
        /// The budget, its scope and cap, what the scope had used with the call's spend
        /// when it was stopped (`used`), and the call's largest step (`requested`).
        exceeded: super::budget::BudgetExceeded,
    },
    /// [`FenceConfig::max_processes`] was reached: the kernel refused `refused_forks`
    /// `fork`/`clone` calls (`EAGAIN`). Nothing past the cap ran; the call's cgroup was
    /// emptied and removed afterwards.
    ProcessCapReached {
        /// The cap (processes and threads of the call, the fence's own not counted).
        limit: u64,
        /// How many `fork`/`clone` calls were refused (`pids.events`).
        refused_forks: u64,
        /// The call's cgroup directory (removed after the call).
        cgroup: PathBuf,
    },
    /// A process left the group and kept running after the kill.
    EscapedProcess {
        /// What was seen.
        detail: String,
    },
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TimedOut { limit_ms } => write!(
                f,
                "wall-time limit of {limit_ms} ms reached; process group killed"
            ),
            Self::OutputCapped {
                limit_bytes,
                seen_bytes,
            } => write!(
                f,
                "output cap of {limit_bytes} bytes reached ({seen_bytes} bytes written); process group killed"
            ),
            Self::OutsideWrite { path, change } => {
                write!(f, "write outside the worktree: {} {change}", path.display())
            }
            Self::EgressDenied { destination } => {
                write!(
                    f,
                    "network egress to {destination} refused (not in [fence] hosts)"
                )
            }
            Self::OutsideWriteRefused { detail } => {
                write!(
                    f,
                    "write outside the worktree refused (read-only): {detail}"
                )
            }
            Self::GitLinkDeleted { path } => {
                write!(f, "worktree git link {} deleted", path.display())
            }
            Self::GitLinkDamaged { path, detail } => {
                write!(f, "worktree git link {} damaged: {detail}", path.display())
            }
            Self::BudgetStopped { exceeded } => write!(
                f,
                "{}: its next step could pass the cap; process group killed",
                exceeded.stopped_at()
            ),
            Self::ProcessCapReached {
                limit,
                refused_forks,
                ..
            } => write!(
                f,
                "process cap of {limit} reached: {refused_forks} forks refused"
            ),
            Self::EscapedProcess { detail } => write!(f, "escaped process: {detail}"),
            Self::WatchFailed { detail } => {
                write!(f, "cannot check for writes outside the worktree: {detail}")
            }
        }
    }
}

/// Metadata of one entry in a watched directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Meta {
    kind: u8,
    len: u64,
    mode: u32,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    link: Option<PathBuf>,
}

impl Meta {
    fn of(path: &Path, md: &std::fs::Metadata) -> Self {
        let ft = md.file_type();
        let kind = match (ft.is_symlink(), ft.is_dir()) {
            (true, _) => 2,
            (false, true) => 1,
            (false, false) => 0,
        };
        Self {
            kind,
            // A directory's size changes with its entries, which are compared one by one.
            len: if kind == 1 { 0 } else { md.len() },
            mode: md.mode(),
            ino: md.ino(),
            mtime: if kind == 1 {
                (0, 0)
            } else {
                (md.mtime(), md.mtime_nsec())
            },
            ctime: if kind == 1 {
                (0, 0)
            } else {
                (md.ctime(), md.ctime_nsec())
            },
            link: if kind == 2 {
                std::fs::read_link(path).ok()
            } else {
                None
            },
        }
    }
}

/// Metadata of every entry under the watched directories, by path.
#[derive(Debug, Default)]
struct Snapshot {
    entries: BTreeMap<PathBuf, Meta>,
}

impl Snapshot {
    fn take(roots: &[PathBuf], ignore: &GlobSet, worktree: &Path) -> Result<Self, FenceError> {
        let mut entries = BTreeMap::new();
        for root in roots {
            let root = std::fs::canonicalize(root).map_err(|e| FenceError::io(root, e))?;
            let mut stack = vec![root.clone()];
            while let Some(dir) = stack.pop() {
                let rd = match std::fs::read_dir(&dir) {
                    Ok(rd) => rd,
                    // A directory removed between listing and reading shows up as Removed.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir != root => continue,
                    Err(e) => return Err(FenceError::io(&dir, e)),
                };
                for entry in rd {
                    let entry = entry.map_err(|e| FenceError::io(&dir, e))?;
                    let path = entry.path();
                    if path.starts_with(worktree) {
                        continue;
                    }
                    if let Ok(rel) = path.strip_prefix(&root)
                        && ignore.is_match(rel)
                    {
                        continue;
                    }
                    let Ok(md) = std::fs::symlink_metadata(&path) else {
                        continue;
                    };
                    let meta = Meta::of(&path, &md);
                    if meta.kind == 1 {
                        stack.push(path.clone());
                    }
                    entries.insert(path, meta);
                }
            }
        }
        Ok(Self { entries })
    }

    fn diff(&self, after: &Self) -> Vec<(PathBuf, Change)> {
        let mut out = Vec::new();
        for (path, meta) in &self.entries {
            match after.entries.get(path) {
                None => out.push((path.clone(), Change::Removed)),
                Some(m) if m != meta => out.push((path.clone(), Change::Modified)),
                Some(_) => {}
            }
        }
        for path in after.entries.keys() {
            if !self.entries.contains_key(path) {
                out.push((path.clone(), Change::Added));
            }
        }
        out.sort();
        out
    }
}

/// The worktree's `.git` before the call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GitLink {
    /// A linked worktree: the `.git` file's content.
    File(Vec<u8>),
    /// A full repository: a `.git` directory.
    Dir,
    /// No `.git` before the call (not a git checkout): nothing to check.
    Absent,
}

impl GitLink {
    fn capture(worktree: &Path) -> Self {
        let dot_git = worktree.join(".git");
        match std::fs::symlink_metadata(&dot_git) {
            Ok(md) if md.is_dir() => Self::Dir,
            Ok(_) => std::fs::read(&dot_git).map_or(Self::Absent, Self::File),
            Err(_) => Self::Absent,
        }
    }

    fn check(&self, worktree: &Path) -> Option<Violation> {
        let path = worktree.join(".git");
        let damaged = |detail: &str| {
            Some(Violation::GitLinkDamaged {
                path: path.clone(),
                detail: detail.to_owned(),
            })
        };
        if *self == Self::Absent {
            return None;
        }
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            return Some(Violation::GitLinkDeleted { path });
        };
        match self {
            Self::Absent => None,
            Self::Dir => {
                if !md.is_dir() {
                    damaged("the .git directory was replaced")
                } else if !path.join("HEAD").is_file() {
                    damaged(".git/HEAD is missing")
                } else {
                    None
                }
            }
            Self::File(content) => {
                if !md.is_file() {
                    return damaged("the .git file was replaced");
                }
                match std::fs::read(&path) {
                    Ok(now) if now != *content => damaged("the .git file was rewritten"),
                    Ok(_) => {
                        let text = String::from_utf8_lossy(content);
                        let gitdir = text.trim().strip_prefix("gitdir:").map(str::trim);
                        match gitdir {
                            Some(dir) => {
                                let dir = worktree.join(dir);
                                if dir.join("HEAD").is_file() {
                                    None
                                } else {
                                    damaged("the git directory it points to is gone")
                                }
                            }
                            None => None,
                        }
                    }
                    Err(_) => damaged("the .git file cannot be read"),
                }
            }
        }
    }
}

/// The entries of `dirs` that exist as directories, canonicalized (what the mount script
/// binds or hides; a missing directory has nothing to protect).
fn existing_dirs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    dirs.iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .filter(|d| d.is_dir())
        .collect()
}
#[cfg(test)]
mod tests {
    use super::*;
    use lightsout_stdx::testing::git;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;
    use std::io::{BufRead as _, Read as _};
    use std::sync::atomic::Ordering;

    fn fast(config: FenceConfig) -> FenceConfig {
        FenceConfig {
            wall_ms: 5_000,
            output_bytes: 64 * 1024,
            kill_grace_ms: 2_000,
            ..config
        }
    }

    fn sh(fence: &Fence, script: &str, wt: &Path) -> FencedOutput {
        let cmd = fence.command("sh", ["-c", script], wt).unwrap();
        fence.run(cmd, None, wt).unwrap()
    }

    /// A main repository with one commit and a linked worktree beside it.
    fn repo_with_worktree() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let main = t.path().join("main");
        std::fs::create_dir_all(&main).unwrap();
        git(&main, &["init", "-q", "-b", "main"]);
        std::fs::write(main.join("README.md"), "hello\n").unwrap();
        git(&main, &["add", "."]);
        git(&main, &["commit", "-q", "-m", "init"]);
        let wt = t.path().join("worktrees").join("T1");
        git(
            &main,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "lightsout/r1/T1",
                wt.to_str().unwrap(),
            ],
        );
        (t, main, wt)
    }

    /// `[fence] max_processes` is read strictly: a misspelt key is an error naming the right
    /// one, never a silently absent cap.
    #[test]
    fn max_processes_is_read_strictly() {
        let c: FenceConfig = toml::from_str("max_processes = 16").unwrap();
        assert_eq!(c.max_processes, Some(16));
        let err = toml::from_str::<FenceConfig>("max_process = 16")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown field `max_process`") && err.contains("max_processes"),
            "{err}"
        );
        assert_eq!(FenceConfig::default().max_processes, None);
    }

    /// The cap is never silently absent: without the sandbox (whose `sh` joins the cgroup)
    /// or with a cap of 0 the fence refuses to start, saying what to do.
    #[test]
    fn the_process_cap_refuses_to_start_where_it_cannot_hold() {
        let unsandboxed = FenceConfig {
            private_pids: false,
            readonly_outside: false,
            network: NetworkMode::Inherit,
            max_processes: Some(16),
            ..FenceConfig::default()
        };
        let err = Fence::new(unsandboxed).unwrap_err();
        assert!(
            matches!(&err, FenceError::ProcessCapUnavailable { detail } if detail.contains("sandbox is off")),
            "{err}"
        );
        assert!(err.to_string().contains("remove max_processes"), "{err}");
        let zero = FenceConfig {
            max_processes: Some(0),
            ..FenceConfig::default()
        };
        assert!(matches!(
            Fence::new(zero),
            Err(FenceError::ProcessCapUnavailable { .. })
        ));
    }

    /// A bounded fork bomb in a capped call: 50 forks of sleeping children.
    const FORK_BOMB: &str = r#"exec python3 -c '
import os, time
ok = refused = 0
for _ in range(50):
    try:
        pid = os.fork()
    except OSError:
        refused += 1
        continue
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    ok += 1
print("forked=%d refused=%d" % (ok, refused))
'"#;

    /// Issue 16, point 5: `max_processes` holds a fork bomb inside the sandbox: past the cap
    /// every fork fails, the call reports it, and afterwards nothing of it is alive and its
    /// cgroup is gone. Where no cgroup can be made (an ordinary user, a read-only cgroup
    /// file system), the fence refuses to start instead of running uncapped.
    #[test]
    fn the_process_cap_holds_a_fork_bomb_and_leaves_nothing_behind() {
        let t = tempfile::tempdir().unwrap();
        let config = fast(FenceConfig {
            max_processes: Some(8),
            ..FenceConfig::default()
        });
        // Whether this process may make cgroups is probed on its own; the fence must agree.
        let fence = match (crate::cgroup::CgroupRoot::detect(), Fence::new(config)) {
            (Err(_), Err(FenceError::ProcessCapUnavailable { .. })) => return,
            (Err(why), other) => panic!("no cgroup here ({why}), yet the fence gave {other:?}"),
            (Ok(_), other) => other.unwrap(),
        };
        let out = sh(&fence, FORK_BOMB, t.path());
        // The program is one of the 8; the fence's own bubblewrap processes are not counted.
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "forked=7 refused=43",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hit = out
            .report
            .violations
            .iter()
            .find_map(|v| match v {
                Violation::ProcessCapReached {
                    limit,
                    refused_forks,
                    cgroup,
                } => Some((*limit, *refused_forks, cgroup.clone())),
                _ => None,
            })
            .expect("the cap is reported");
        assert_eq!((hit.0, hit.1), (8, 43));
        assert!(!hit.2.exists(), "{} is left", hit.2.display());
        assert!(
            !out.report
                .has(|v| matches!(v, Violation::EscapedProcess { .. })),
            "{:?}",
            out.report
        );
        // Without the bomb the same fence reports nothing.
        let calm = sh(&fence, "echo calm", t.path());
        assert!(calm.report.is_clean(), "{:?}", calm.report);
    }

    #[test]
    fn clean_run_reports_nothing() {
        let (_t, main, wt) = repo_with_worktree();
        let fence = Fence::new(fast(FenceConfig {
            watch: vec![main.clone(), wt.parent().unwrap().to_path_buf()],
            ..FenceConfig::default()
        }))
        .unwrap();
        // Legitimate work: edit inside the worktree and read its history (the factory makes
        // the commit).
        let out = sh(
            &fence,
            "pwd; echo change >> README.md && git log --oneline -1 >/dev/null && git diff --stat && echo done",
            &wt,
        );
        assert!(out.report.is_clean(), "{:?}", out.report);
        assert_eq!(
            out.exit.map(|e| e.success()),
            Some(true),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with(std::fs::canonicalize(&wt).unwrap().to_str().unwrap()),
            "{text}"
        );
        assert!(text.contains("done"));
    }

    #[test]
    fn stdin_reaches_the_agent() {
        let t = tempfile::tempdir().unwrap();
        let fence = Fence::new(fast(FenceConfig::default())).unwrap();
        let cmd = fence.command("sh", ["-c", "tr a-z A-Z"], t.path()).unwrap();
        let out = fence
            .run(cmd, Some(b"prompt text".to_vec()), t.path())
            .unwrap();
        assert_eq!(out.stdout, b"PROMPT TEXT");
    }

    /// A streaming agent that keeps printing is stopped by its line watch, at once: the
    /// watch sees no line after the one it stopped on, and the wall limit is never reached.
    #[test]
    fn a_line_watch_stops_the_call_at_the_line_it_names() {
        use std::sync::atomic::AtomicUsize;
        let t = tempfile::tempdir().unwrap();
        let fence = Fence::new(fast(FenceConfig::default())).unwrap();
        let cmd = fence
            .command(
                "sh",
                [
                    "-c",
                    "i=0; while :; do i=$((i+1)); echo \"$i\"; sleep 0.01; done",
                ],
                t.path(),
            )
            .unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&seen);
        let stop = crate::budget::BudgetExceeded {
            budget: crate::budget::Budget::Usd,
            scope: crate::budget::Scope::Task("T1".into()),
            limit: 100_000,
            used: 90_000,
            requested: 10_000,
        };
        let v = Violation::BudgetStopped {
            exceeded: stop.clone(),
        };
        let watch: LineWatch = Box::new(move |line: &str| {
            counter.fetch_add(1, Ordering::SeqCst);
            (line == "3").then(|| v.clone())
        });
        let out = fence.run_watched(cmd, None, t.path(), Some(watch)).unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 3);
        assert!(out.report.killed);
        assert_eq!(
            out.report.violations,
            vec![Violation::BudgetStopped { exceeded: stop }]
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("1\n2\n3\n"));
        assert_eq!(
            out.report.violations[0].to_string(),
            "stopped at $0.09 of cap $0.10 (usd budget of the task T1): its next step could \
             pass the cap; process group killed"
        );
    }

    /// Misbehaving agent: loops forever, with a background child holding the output pipe.
    #[test]
    fn endless_loop_is_killed_with_its_whole_group() {
        let t = tempfile::tempdir().unwrap();
        let fence = Fence::new(FenceConfig {
            wall_ms: 200,
            ..fast(FenceConfig::default())
        })
        .unwrap();
        let out = sh(&fence, "sleep 1000 & while :; do :; done", t.path());
        assert_eq!(
            out.report.violations,
            vec![Violation::TimedOut { limit_ms: 200 }]
        );
        assert!(out.report.killed);
        assert_eq!(out.exit.and_then(|e| e.signal), Some(9));
        // Both pipes reached EOF: the background `sleep`, which held them, is dead too.
        assert!(
            !out.report
                .has(|v| matches!(v, Violation::EscapedProcess { .. }))
        );
    }

    /// Misbehaving agent: prints gigabytes.
    #[test]
    fn gigabytes_of_output_are_capped_and_killed() {
        let t = tempfile::tempdir().unwrap();
        let fence = Fence::new(FenceConfig {
            output_bytes: 64 * 1024,
            ..fast(FenceConfig::default())
        })
        .unwrap();
        let out = sh(&fence, "head -c 5000000000 /dev/zero; yes >&2", t.path());
        assert!(out.stdout.len() + out.stderr.len() <= 64 * 1024);
        assert_eq!(out.stdout.len(), 64 * 1024);
        assert!(out.report.killed);
        match out.report.violations.as_slice() {
            [
                Violation::OutputCapped {
                    limit_bytes,
                    seen_bytes,
                },
            ] => {
                assert_eq!(*limit_bytes, 64 * 1024);
                assert!(*seen_bytes > 64 * 1024);
            }
            other => panic!("expected an output cap, got {other:?}"),
        }
        assert_eq!(out.exit.and_then(|e| e.signal), Some(9));
    }

    /// Misbehaving agent: writes into the main checkout, including a sneaky rewrite that
    /// restores size and mtime.
    #[test]
    fn writes_outside_the_worktree_are_detected() {
        let (_t, main, wt) = repo_with_worktree();
        std::fs::write(main.join("config.txt"), "abc\n").unwrap();
        // Detection alone, as where mount namespaces are unavailable.
        let fence = Fence::new(fast(FenceConfig {
            watch: vec![main.clone(), wt.parent().unwrap().to_path_buf()],
            readonly_outside: false,
            private_pids: false,
            network: NetworkMode::Inherit,
            ..FenceConfig::default()
        }))
        .unwrap();
        let out = sh(
            &fence,
            "echo pwned > ../../main/evil.txt; \
             cp -p ../../main/config.txt /tmp/.lso-keep-$$; printf xyz > ../../main/config.txt; \
             echo >> ../../main/config.txt; touch -r /tmp/.lso-keep-$$ ../../main/config.txt; rm -f /tmp/.lso-keep-$$; \
             mkdir ../T2",
            &wt,
        );
        let main = std::fs::canonicalize(&main).unwrap();
        let writes: Vec<(PathBuf, Change)> = out
            .report
            .violations
            .iter()
            .filter_map(|v| match v {
                Violation::OutsideWrite { path, change } => Some((path.clone(), *change)),
                _ => None,
            })
            .collect();
        assert!(
            writes.contains(&(main.join("evil.txt"), Change::Added)),
            "{writes:?}"
        );
        assert!(
            writes.contains(&(main.join("config.txt"), Change::Modified)),
            "{writes:?}"
        );
        assert!(
            writes
                .iter()
                .any(|(p, c)| p.ends_with("worktrees/T2") && *c == Change::Added),
            "{writes:?}"
        );
        assert_eq!(out.report.outside_writes_total, 3);
    }

    /// Misbehaving agent: writes into the main checkout, reads the holdout and commits
    /// itself. The writes never happen, the refusal is reported, the holdout does not exist
    /// in the sandbox, and the git directory is read-only (the factory makes every commit).
    #[test]
    fn readonly_root_refuses_outside_writes_and_the_holdout_is_absent() {
        let (t, main, wt) = repo_with_worktree();
        let holdout = t.path().join("holdout");
        std::fs::create_dir_all(&holdout).unwrap();
        std::fs::write(holdout.join("a.feature"), "Feature: secret scenarios\n").unwrap();
        let head = git(&main, &["rev-parse", "HEAD"]);
        let fence = Fence::new(fast(FenceConfig {
            watch: vec![main.clone(), holdout.clone()],
            hide: vec![holdout.clone()],
            ..FenceConfig::default()
        }))
        .unwrap();
        let out = sh(
            &fence,
            &format!(
                "echo pwned > ../../main/evil.txt; [ -e '{}' ] && echo visible || echo absent; \
                 ls ../../main >/dev/null && echo main-readable; \
                 echo x >> README.md && git -c user.name=a -c user.email=a@b commit -qam w && echo committed; \
                 git update-ref refs/heads/main HEAD~0 2>/dev/null && echo ref-moved; \
                 git config core.fsmonitor evil 2>/dev/null && echo config-written; echo end",
                holdout.display()
            ),
            &wt,
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!main.join("evil.txt").exists());
        assert_eq!(
            text,
            "absent\nmain-readable\nend\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            matches!(out.report.violations.first(), Some(Violation::OutsideWriteRefused { detail }) if detail.contains("evil.txt")),
            "{:?}",
            out.report
        );
        // Outside the sandbox nothing changed.
        assert!(holdout.join("a.feature").is_file());
        assert_eq!(git(&main, &["rev-parse", "HEAD"]), head);
        assert!(
            !std::fs::read_to_string(main.join(".git/config"))
                .unwrap()
                .contains("fsmonitor")
        );
    }

    /// A file beside a hidden directory that disappears between the moment the view is
    /// built and bubblewrap's mounts (an atomic writer's temporary file in the run
    /// directory, beside the hidden `eval/`) neither stops the call nor uncovers the hidden
    /// directory; the siblings that stay are still readable.
    #[test]
    fn a_sibling_of_a_hidden_directory_may_vanish_before_the_sandbox_starts() {
        let (t, main, wt) = repo_with_worktree();
        let run = std::fs::canonicalize(t.path()).unwrap().join("run");
        let hidden = run.join("eval");
        std::fs::create_dir_all(&hidden).unwrap();
        std::fs::write(hidden.join("result.json"), "secret\n").unwrap();
        std::fs::write(run.join("kept.txt"), "kept\n").unwrap();
        let transient = run.join(".state.json.123.tmp");
        std::fs::write(&transient, "transient\n").unwrap();
        let fence = Fence::new(fast(FenceConfig {
            watch: vec![main, t.path().to_path_buf()],
            hide: vec![hidden.clone()],
            ..FenceConfig::default()
        }))
        .unwrap();
        let script = format!(
            "cat '{r}/kept.txt'; [ -e '{h}' ] && echo visible || echo absent; \
             [ -e '{x}' ] && echo transient || echo gone",
            r = run.display(),
            h = hidden.display(),
            x = transient.display()
        );
        let cmd = fence.command("sh", ["-c", &script], &wt).unwrap();
        std::fs::remove_file(&transient).unwrap();
        let out = fence.run(cmd, None, &wt).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "kept\nabsent\ngone\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.report.is_clean(), "{:?}", out.report);
    }

    /// Misbehaving agent that knows how it is fenced: it tries to unmount the tmpfs that
    /// replaces the holdout's parent, to remount the read-only root writable, to make new
    /// namespaces, to trace a process and to open a Unix socket (to reach a host daemon).
    /// No capability and the seccomp filter: every one of these syscalls fails with
    /// `EPERM`, and the holdout stays absent.
    #[test]
    fn mount_namespace_and_ptrace_syscalls_fail_with_eperm() {
        let (t, _main, wt) = repo_with_worktree();
        let holdout = t.path().join("holdout");
        std::fs::create_dir_all(&holdout).unwrap();
        let fence = Fence::new(fast(FenceConfig {
            hide: vec![holdout.clone()],
            ..FenceConfig::default()
        }))
        .unwrap();
        let parent = std::fs::canonicalize(t.path()).unwrap();
        let script = format!(
            r#"import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def err(r):
    return 0 if r == 0 else ctypes.get_errno()
print("umount", err(libc.umount2(b"{p}", 2)))
print("remount", err(libc.mount(None, b"/", None, 32 | 4096 | 16384, None)))
print("mount", err(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)))
print("unshare", err(libc.unshare(0x10000000)))
print("ptrace", err(libc.ptrace(0, 0, None, None)))
fd = libc.socket(1, 1, 0)
print("unix", 0 if fd >= 0 else ctypes.get_errno())
print("holdout", os.path.exists("{h}"))"#,
            p = parent.display(),
            h = holdout.display()
        );
        let cmd = fence.command("python3", ["-c", &script], &wt).unwrap();
        let out = fence.run(cmd, None, &wt).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "umount 1\nremount 1\nmount 1\nunshare 1\nptrace 1\nunix 1\nholdout False\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The seccomp program is a whole number of 8-byte `sock_filter` instructions and names
    /// every denied syscall that exists on this architecture.
    #[test]
    fn seccomp_program_is_well_formed() {
        let bytes = super::super::sandbox::seccomp_program().unwrap();
        assert!(!bytes.is_empty());
        assert_eq!(bytes.len() % 8, 0);
    }

    /// Misbehaving agent: deletes or rewrites `.git` in its worktree (a rewritten `gitdir:`
    /// would point the factory's next git call elsewhere). In the sandbox the `.git` file is
    /// bound read-only: both are refused and reported, and the file is unchanged. Without
    /// the sandbox the change is detected.
    #[test]
    fn deleted_or_damaged_git_link_is_refused_or_detected() {
        let (_t, _main, wt) = repo_with_worktree();
        let link = std::fs::read(wt.join(".git")).unwrap();
        let fence = Fence::new(fast(FenceConfig::default())).unwrap();
        for script in [
            "rm -f .git",
            "echo 'gitdir: /nowhere' > .git",
            "mv .git moved",
        ] {
            let out = sh(&fence, script, &wt);
            assert!(
                matches!(
                    out.report.violations.as_slice(),
                    [Violation::OutsideWriteRefused { .. }]
                ),
                "{script}: {:?}",
                out.report
            );
            assert_eq!(std::fs::read(wt.join(".git")).unwrap(), link, "{script}");
        }

        let open = Fence::new(fast(FenceConfig {
            private_pids: false,
            readonly_outside: false,
            network: NetworkMode::Inherit,
            ..FenceConfig::default()
        }))
        .unwrap();
        let out = sh(&open, "rm -f .git", &wt);
        let wt_abs = std::fs::canonicalize(&wt).unwrap();
        assert_eq!(
            out.report.violations,
            vec![Violation::GitLinkDeleted {
                path: wt_abs.join(".git")
            }]
        );

        let (_t2, _main2, wt2) = repo_with_worktree();
        let out = sh(&open, "echo 'gitdir: /nowhere' > .git", &wt2);
        assert!(
            matches!(out.report.violations.as_slice(), [Violation::GitLinkDamaged { detail, .. }] if detail.contains("rewritten")),
            "{:?}",
            out.report
        );
    }

    /// Misbehaving agent: tries to read an environment secret.
    #[test]
    fn environment_secrets_never_reach_the_agent() {
        let t = tempfile::tempdir().unwrap();
        let host = [
            (
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            ),
            ("LIGHTSOUT_TEST_SECRET", "hunter2-env".into()),
            ("AWS_SECRET_ACCESS_KEY", "hunter2-aws".into()),
            ("OPENAI_API_KEY", "hunter2-openai".into()),
            ("LC_ALL", "C".into()),
            ("ANTHROPIC_API_KEY", "sk-needed".into()),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let mut config = fast(FenceConfig::default());
        // Even a permissive allow glob does not let secret-looking names through...
        config.env.allow.push("*".into());
        // ...only a name passed on purpose does.
        config.env.pass.push("ANTHROPIC_API_KEY".into());
        config.env.set.insert("HOME".into(), "/nonexistent".into());
        let fence = Fence::new(config).unwrap().with_host_env(host);
        let out = sh(&fence, "echo \"s=$LIGHTSOUT_TEST_SECRET\"; env", t.path());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("s=\n"), "{text}");
        assert!(text.contains("ANTHROPIC_API_KEY=sk-needed"), "{text}");
        assert!(text.contains("HOME=/nonexistent"), "{text}");
        assert!(text.contains("LC_ALL=C"), "{text}");
        assert_eq!(
            fence.env_plan().dropped,
            vec![
                "AWS_SECRET_ACCESS_KEY",
                "LIGHTSOUT_TEST_SECRET",
                "OPENAI_API_KEY"
            ]
        );
        // The default allowlist alone drops unknown names too.
        let plain = EnvPolicy::new(&EnvConfig::default()).unwrap();
        assert!(!plain.allows("MY_APP_DSN"));
        assert!(plain.allows("LC_CTYPE"));
        assert!(!plain.allows("GITHUB_TOKEN"));
    }

    #[test]
    fn network_namespace_cuts_even_loopback() {
        let t = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // bash's /dev/tcp opens a TCP connection without extra tools.
        let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected");
        let open = Fence::new(fast(FenceConfig {
            private_pids: false,
            network: NetworkMode::Inherit,
            ..FenceConfig::default()
        }))
        .unwrap();
        assert_eq!(open.isolation_flags(), None);
        let cmd = open.command("bash", ["-c", &script], t.path()).unwrap();
        let out = open.run(cmd, None, t.path()).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "connected");

        let cut = Fence::new(fast(FenceConfig {
            network: NetworkMode::None,
            ..FenceConfig::default()
        }))
        .unwrap();
        assert!(cut.isolation_flags().unwrap().contains(&"--unshare-net"));
        let cmd = cut.command("bash", ["-c", &script], t.path()).unwrap();
        let out = cut.run(cmd, None, t.path()).unwrap();
        assert_eq!(out.stdout, b"");
        assert_ne!(out.exit.and_then(|e| e.code), Some(0));
        drop(listener);
    }

    /// `network = "hosts"`: the agent reaches an allowed host only through the fence's
    /// proxy; another destination and a plain-HTTP request are refused and reported; a
    /// direct connection goes nowhere.
    #[test]
    fn named_hosts_are_reached_through_the_proxy_and_nothing_else() {
        if !nix::unistd::geteuid().is_root() {
            // Root-only by design: the proxy's thread must `setns` into the agent's network
            // namespace, which needs CAP_SYS_ADMIN, and `Fence::new` refuses the mode
            // otherwise (`hosts_mode_is_refused_without_root` covers that case).
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "skipped: network = \"hosts\" needs the factory to run as root (CAP_SYS_ADMIN)"
                );
            }
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = upstream.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in upstream.incoming() {
                let Ok(mut s) = s else { return };
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
            }
        });
        let fence = Fence::new(fast(FenceConfig {
            network: NetworkMode::Hosts,
            hosts: vec![format!("127.0.0.1:{port}")],
            ..FenceConfig::default()
        }))
        .unwrap();
        let script = format!(
            r#"exec 3<>/dev/tcp/127.0.0.1/3128
printf 'CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n' >&3
read -r status <&3; echo "allowed: $status"
read -r blank <&3
printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
echo "body: $(tail -c 5 <&3)"
exec 4<>/dev/tcp/127.0.0.1/3128
printf 'CONNECT example.com:443 HTTP/1.1\r\n\r\n' >&4
read -r status <&4; echo "denied: $status"
exec 6<>/dev/tcp/127.0.0.1/3128
printf 'GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\n\r\n' >&6
read -r status <&6; echo "plain: $status"
(exec 5<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo "direct: open" || echo "direct: refused"
echo "proxy: $HTTPS_PROXY""#
        );
        let cmd = fence.command("bash", ["-c", &script], t.path()).unwrap();
        let out = fence.run(cmd, None, t.path()).unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("allowed: HTTP/1.1 200"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("body: hello"), "{text}");
        assert!(text.contains("denied: HTTP/1.1 403"), "{text}");
        assert!(text.contains("plain: HTTP/1.1 403"), "{text}");
        assert!(text.contains("direct: refused"), "{text}");
        assert!(text.contains("proxy: http://127.0.0.1:3128"), "{text}");
        assert_eq!(
            out.report.violations,
            vec![
                Violation::EgressDenied {
                    destination: "example.com:443".into()
                },
                Violation::EgressDenied {
                    destination: "plain HTTP to example.org".into()
                }
            ]
        );
    }

    /// Not root: `network = "hosts"` is refused when the fence is built, with the reason
    /// and the alternatives, rather than failing at the first call or running unfenced.
    #[test]
    fn hosts_mode_is_refused_without_root() {
        if nix::unistd::geteuid().is_root() {
            // As root the mode works; `named_hosts_are_reached_through_the_proxy_and_nothing_else`.
            return;
        }
        let err = Fence::new(FenceConfig {
            network: NetworkMode::Hosts,
            hosts: vec!["127.0.0.1:9".into()],
            ..FenceConfig::default()
        })
        .unwrap_err();
        assert!(
            matches!(&err, FenceError::IsolationUnavailable { detail } if detail.contains("root")),
            "{err}"
        );
    }

    #[test]
    fn private_pid_namespace_hides_the_factory() {
        let t = tempfile::tempdir().unwrap();
        let fence = Fence::new(fast(FenceConfig {
            private_pids: true,
            network: NetworkMode::None,
            ..FenceConfig::default()
        }))
        .unwrap();
        let me = std::process::id();
        let script = format!(
            "cat /proc/{me}/environ >/dev/null 2>&1 && echo visible || echo hidden; echo pid=$$"
        );
        let out = sh(&fence, &script, t.path());
        let lines: Vec<String> = out.stdout.lines().map(Result::unwrap).collect();
        assert_eq!(
            lines,
            // bubblewrap's init is PID 1, the agent the first process it starts.
            vec!["hidden".to_owned(), "pid=2".to_owned()],
            "{:?}",
            out.report
        );
    }

    #[test]
    fn namespaced_agent_is_still_killed_at_the_wall_limit() {
        let t = tempfile::tempdir().unwrap();
        let fence = Fence::new(FenceConfig {
            wall_ms: 200,
            private_pids: true,
            ..fast(FenceConfig::default())
        })
        .unwrap();
        let out = sh(&fence, "sleep 1000 & while :; do :; done", t.path());
        assert_eq!(
            out.report.violations,
            vec![Violation::TimedOut { limit_ms: 200 }]
        );
    }

    #[test]
    fn escape_from_the_group_is_contained_by_the_pid_namespace() {
        let t = tempfile::tempdir().unwrap();
        let fence = Fence::new(FenceConfig {
            kill_grace_ms: 300,
            ..fast(FenceConfig::default())
        })
        .unwrap();
        assert!(fence.isolation_flags().unwrap().contains(&"--unshare-pid"));
        let out = sh(
            &fence,
            "setsid sh -c 'echo $$ > esc.pid; exec sleep 30' & while [ ! -s esc.pid ]; do :; done; echo started",
            t.path(),
        );
        // The pipes closed: the escaped `sleep` died with the namespace.
        assert!(out.report.is_clean(), "{:?}", out.report);
        assert_eq!(out.stdout, b"started\n");
    }

    #[test]
    fn escaped_process_is_reported_without_a_pid_namespace() {
        let t = tempfile::tempdir().unwrap();
        let fence = Fence::new(FenceConfig {
            kill_grace_ms: 300,
            private_pids: false,
            network: NetworkMode::Inherit,
            ..fast(FenceConfig::default())
        })
        .unwrap();
        // `setsid` leaves the group; the escaped process keeps stdout open. The agent waits
        // until the escape is done before it exits.
        let out = sh(
            &fence,
            "setsid sh -c 'echo $$ > esc.pid; exec sleep 30' & while [ ! -s esc.pid ]; do :; done; echo started",
            t.path(),
        );
        let pid: i32 = std::fs::read_to_string(t.path().join("esc.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        assert!(
            out.report
                .has(|v| matches!(v, Violation::EscapedProcess { .. })),
            "{:?}",
            out.report
        );
    }

    proptest::proptest! {
        /// A name that looks secret never passes unless it is named exactly in `pass`, and
        /// `set` values always win.
        #[test]
        fn secret_looking_names_never_pass(prefix in "[A-Z_]{0,6}", word in proptest::sample::select(vec!["KEY", "SECRET", "TOKEN", "PASSWORD", "CREDENTIAL", "AUTH"]), suffix in "[A-Z_]{0,6}") {
            let name = format!("{prefix}{word}{suffix}");
            let mut config = EnvConfig::default();
            config.allow.push("*".into());
            let policy = EnvPolicy::new(&config).unwrap();
            proptest::prop_assert!(!policy.allows(&name));
            proptest::prop_assert!(!policy.allows(&name.to_lowercase()));
            let plan = policy.plan([(OsString::from(&name), OsString::from("v"))]);
            proptest::prop_assert!(plan.vars.is_empty());
            proptest::prop_assert_eq!(plan.dropped, vec![name.clone()]);
            config.pass.push(name.clone());
            proptest::prop_assert!(EnvPolicy::new(&config).unwrap().allows(&name));
        }
    }

    #[test]
    fn invalid_glob_is_an_error() {
        let mut config = FenceConfig::default();
        config.watch_ignore.push("a[".into());
        assert!(matches!(
            Fence::new(config),
            Err(FenceError::Pattern { .. })
        ));
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let t = tempfile::tempdir().unwrap();
        let fence = Fence::new(fast(FenceConfig::default())).unwrap();
        for program in ["/nonexistent/agent", "no-such-agent-cli"] {
            assert!(matches!(
                fence.command(program, Vec::<String>::new(), t.path()),
                Err(FenceError::Spawn { .. })
            ));
        }
        // A command prepared with `apply` fails at spawn instead.
        let mut cmd = Command::new("/nonexistent/agent");
        fence.apply(&mut cmd, t.path());
        assert!(matches!(
            fence.run(cmd, None, t.path()),
            Err(FenceError::Spawn { .. })
        ));
    }

    #[test]
    fn config_defaults_and_toml_shape() {
        let c: FenceConfig = serde_json::from_str(
            r#"{"network":"none","wall_ms":1000,"env":{"pass":["ANTHROPIC_API_KEY"]}}"#,
        )
        .unwrap();
        assert_eq!(c.network, NetworkMode::None);
        assert!(c.private_pids);
        assert_eq!(c.output_bytes, 16 * 1024 * 1024);
        assert!(c.env.deny.iter().any(|d| d == "*SECRET*"));
        assert!(serde_json::from_str::<FenceConfig>(r#"{"netwrk":"none"}"#).is_err());
    }
}
