//! The sandbox entry: the first program bubblewrap runs inside the sandbox, before the
//! agent's (or check's, or service's) own program. It adds the two things bubblewrap cannot:
//!
//! 1. **A lifeline check** that closes the spawn window. bubblewrap sets
//!    `PR_SET_PDEATHSIG` a moment after it starts; a factory killed in that moment leaves a
//!    sandbox no signal will ever reach. The factory holds the write end of a FIFO open for
//!    as long as it lives ([`Lifeline`]); the entry runs only after bubblewrap's
//!    `PR_SET_PDEATHSIG` is in place, opens the FIFO's read end without blocking and reads:
//!    end of file means no writer, so the factory is gone and the entry exits
//!    ([`FACTORY_GONE`]) instead of running anything. A factory dying after the check kills
//!    the sandbox through the death signal.
//! 2. **Landlock** (`landlock(7)`, through the [`landlock`] crate) where the kernel has it,
//!    as a second layer under bubblewrap's mounts: read, write and execute rights for
//!    [`EntryPlan::writable`] (the worktree; plus the sandbox's own `/tmp` and `/dev`; when
//!    a denied path lies under `/tmp`, a scratch directory there given as `TMPDIR`),
//!    read and execute rights for everything else **except** [`EntryPlan::denied`] and
//!    what lies below it (the holdout, the factory's `.lightsout` run directories, the
//!    credentials in [`secret_paths`]), which the process cannot even read, whatever
//!    mount it finds or makes. Landlock only grants rights under a rule, so "all but the
//!    denied paths" is spelled as rules on every sibling of each denied path and of its
//!    ancestors ([`readable_roots`]). With [`EntryPlan::tcp`] the TCP ports are handled too
//!    (ABI 4+): bind and connect only to the listed ports. Scopes (ABI 6+) cut abstract Unix
//!    sockets and signals to processes outside the sandbox. Best effort: the rules are those
//!    of [`TESTED_ABI`]; an older kernel enforces the subset it knows, and the factory
//!    records which ABI was enforced ([`LandlockReport`], in the run's `run_start` audit
//!    entry). Without Landlock (`CONFIG_SECURITY_LANDLOCK` off, or not in the boot's `lsm=`),
//!    bubblewrap's mounts are the only file-system layer.
//!
//! The entry is a mode of the `lightsout` binary (`lightsout __sandbox-entry PLAN -- PROGRAM
//! ARGS...`, see [`ENTRY_ARG`]): Landlock must be applied by the sandboxed process itself,
//! before `exec`, and the workspace forbids the `unsafe` `pre_exec` that would do it in the
//! factory's child. The binary registers itself with [`set_program`]; a process that did not
//! (a library test) runs sandboxes without the entry, bubblewrap alone.
//!
//! Sources: `landlock(7)`; <https://docs.kernel.org/userspace-api/landlock.html>;
//! <https://docs.rs/landlock/0.4.8>; `fifo(7)` (a read of a FIFO with no writer returns end of
//! file); `PR_SET_PDEATHSIG` in `prctl(2)`.

use super::FenceError;
use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible as _, LandlockStatus, NetPort,
    Ruleset, RulesetAttr as _, RulesetCreatedAttr as _, RulesetStatus, Scope, path_beneath_rules,
};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;

/// The first argument that turns the `lightsout` binary into the sandbox entry.
pub const ENTRY_ARG: &str = "__sandbox-entry";

/// The Landlock ABI whose rights the entry asks for (Linux 6.12): file system rights of ABI 1
/// to 5 (including `refer`, `truncate` and `ioctl_dev`), TCP bind/connect (ABI 4) and the
/// abstract-socket and signal scopes (ABI 6). Newer rights are not asked for until tested.
pub const TESTED_ABI: ABI = ABI::V6;

/// The exit status of the entry when the factory is gone before the program started.
pub const FACTORY_GONE: u8 = 124;

/// The exit status of the entry when it cannot do what the plan asks (a bad plan, Landlock
/// refused, the program cannot be executed).
pub const ENTRY_FAILED: u8 = 125;

static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Registers `exe` (the running `lightsout` binary, which answers [`ENTRY_ARG`] with
/// [`main`]) as the sandbox entry of every [`Sandbox`](super::sandbox::Sandbox) built after
/// this call. Returns `false` when one was registered already (the first one stays).
pub fn set_program(exe: PathBuf) -> bool {
    PROGRAM.set(exe).is_ok()
}

/// The registered entry program, if any.
pub fn program() -> Option<&'static Path> {
    PROGRAM.get().map(PathBuf::as_path)
}

/// TCP ports a sandboxed process may bind and connect to (Landlock ABI 4+); `None` leaves
/// that operation unrestricted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpPorts {
    /// Ports it may bind.
    #[serde(default)]
    pub bind: Option<Vec<u16>>,
    /// Ports it may connect to (the twins').
    #[serde(default)]
    pub connect: Option<Vec<u16>>,
}

/// What the entry does before it becomes the program; passed as one JSON argument.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryPlan {
    /// The factory's [`Lifeline`] FIFO (bound read-only into the sandbox).
    #[serde(default)]
    pub lifeline: Option<PathBuf>,
    /// Apply Landlock.
    #[serde(default)]
    pub landlock: bool,
    /// Directories the process may write (the worktree), canonical. `/tmp` and `/dev` (the
    /// sandbox's own) are always writable.
    #[serde(default)]
    pub writable: Vec<PathBuf>,
    /// Paths the process may not even read, canonical.
    #[serde(default)]
    pub denied: Vec<PathBuf>,
    /// Paths inside a denied one that the process may still read (the agent's own prompt
    /// and task files), canonical.
    #[serde(default)]
    pub readable: Vec<PathBuf>,
    /// With Landlock ABI 4+: the only TCP ports it may bind and connect to; `None` leaves
    /// TCP alone (the network namespace decides).
    #[serde(default)]
    pub tcp: Option<TcpPorts>,
    /// `RLIMIT_AS` to set, in bytes.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// Print the [`LandlockReport`] as JSON on stdout and exit 0 instead of running a
    /// program (the fence's probe).
    #[serde(default)]
    pub probe: bool,
    /// The fence's process ledger ([`procs`](super::procs)): run the program only once
    /// the record of this process (the file named after its PID) is there, and exit with
    /// [`FACTORY_GONE`] if the lifeline breaks first. This closes the window between the
    /// spawn and the record for a call without the sandbox, which nothing else ties to the
    /// factory: a factory killed in it leaves nothing running and nothing unrecorded.
    #[serde(default)]
    pub await_record: Option<PathBuf>,
}

/// How long the entry waits for its ledger record before it gives up
/// ([`EntryPlan::await_record`]); the factory writes it right after the spawn.
const AWAIT_RECORD_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits until `dir` holds the record of this process, polling every millisecond while
/// the lifeline holds. `Ok(false)`: the factory is gone.
fn await_record(dir: &Path, fifo: Option<&Path>) -> Result<bool, String> {
    let record = dir.join(std::process::id().to_string());
    let until = std::time::Instant::now() + AWAIT_RECORD_FOR;
    loop {
        if record.is_file() {
            return Ok(true);
        }
        if let Some(fifo) = fifo {
            match factory_alive(fifo) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => return Err(format!("cannot read the lifeline {}: {e}", fifo.display())),
            }
        }
        if std::time::Instant::now() > until {
            return Err(format!(
                "no process-ledger record {} after {AWAIT_RECORD_FOR:?}",
                record.display()
            ));
        }
        // Polling: the record is a file the factory renames into place.
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Which Landlock the kernel enforced for a sandbox (from the entry's probe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockReport {
    /// The kernel's Landlock ABI as the crate sees it (0: none), capped at the newest the
    /// crate knows.
    pub kernel_abi: u32,
    /// The ABI whose rights were asked for ([`TESTED_ABI`]).
    pub requested_abi: u32,
    /// `fully_enforced`, `partially_enforced` (an older kernel: its subset) or
    /// `not_enforced` (no Landlock: bubblewrap's mounts only).
    pub ruleset: String,
}

/// The factory's side of the lifeline: a FIFO in a private directory whose write end stays
/// open while this value lives (and so while the factory lives; the kernel closes it when
/// the factory dies, `kill -9` included).
#[derive(Debug)]
pub struct Lifeline {
    dir: tempfile::TempDir,
    _writer: std::fs::File,
}

impl Lifeline {
    /// Creates the FIFO and opens it for reading and writing (a FIFO opened `O_RDWR` does
    /// not wait for a peer, `fifo(7)`), close-on-exec so no child inherits the write end.
    ///
    /// # Errors
    /// [`FenceError::Io`] when the directory or the FIFO cannot be made.
    pub fn new() -> Result<Self, FenceError> {
        let dir = tempfile::Builder::new()
            .prefix("lightsout-lifeline-")
            .tempdir()
            .map_err(|e| FenceError::io(std::env::temp_dir(), e))?;
        let fifo = dir.path().join("lifeline");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU)
            .map_err(|e| FenceError::io(&fifo, std::io::Error::from_raw_os_error(e as i32)))?;
        // The sandboxed process may run as another uid (65534 when the factory is not
        // root): it must be able to open the FIFO for reading.
        let world = |p: &Path, mode| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                .map_err(|e| FenceError::io(p, e))
        };
        world(dir.path(), 0o755)?;
        world(&fifo, 0o644)?;
        let writer = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .map_err(|e| FenceError::io(&fifo, e))?;
        Ok(Self {
            dir,
            _writer: writer,
        })
    }

    /// The FIFO's path.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("lifeline")
    }

    /// The directory holding the FIFO (bound read-only into each sandbox).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Whether the factory still holds the lifeline at `fifo`: a non-blocking read sees
/// `EAGAIN` while a writer exists and end of file once none does.
fn factory_alive(fifo: &Path) -> std::io::Result<bool> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(fifo)?;
    let mut b = [0u8; 1];
    match f.read(&mut b) {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(true),
        Err(e) => Err(e),
    }
}

/// Credentials of the factory's user that no sandboxed process may read, when they exist:
/// SSH, GPG, cloud and registry credentials under `home`, and the host's shadow files and
/// SSH host keys. Canonical paths.
pub fn secret_paths(home: Option<&Path>) -> Vec<PathBuf> {
    const IN_HOME: &[&str] = &[
        ".ssh",
        ".gnupg",
        ".aws",
        ".azure",
        ".kube",
        ".docker",
        ".netrc",
        ".git-credentials",
        ".npmrc",
        ".pypirc",
        ".password-store",
        ".config/gcloud",
        ".config/gh",
        ".config/hub",
        ".local/share/keyrings",
        ".cargo/credentials",
        ".cargo/credentials.toml",
    ];
    const ON_HOST: &[&str] = &["/etc/shadow", "/etc/gshadow", "/etc/ssh", "/root/.ssh"];
    let mut out: Vec<PathBuf> = home
        .into_iter()
        .flat_map(|h| IN_HOME.iter().map(move |n| h.join(n)))
        .chain(ON_HOST.iter().map(PathBuf::from))
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The paths that, given read rights with everything below them, cover the whole file
/// system except `denied` and what lies below it: every entry of `/` and, inside each
/// ancestor of a denied path, every entry but the one that leads to it. Symbolic links are
/// skipped (what they point to is covered, or not, by its own path).
pub fn readable_roots(denied: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(dir: &Path, denied: &[PathBuf], out: &mut Vec<PathBuf>) {
        if denied.iter().any(|d| d == dir) {
            return;
        }
        if !denied.iter().any(|d| d.starts_with(dir)) {
            out.push(dir.to_path_buf());
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_symlink()) {
                continue;
            }
            walk(&e.path(), denied, out);
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/"), denied, &mut out);
    out
}

fn status_name(s: &RulesetStatus) -> &'static str {
    match s {
        RulesetStatus::FullyEnforced => "fully_enforced",
        RulesetStatus::PartiallyEnforced => "partially_enforced",
        RulesetStatus::NotEnforced => "not_enforced",
    }
}

/// The scratch directory under the sandbox's `/tmp` when `/tmp` itself cannot be readable
/// (see [`restrict`]); the program gets it as `TMPDIR`.
pub const SCRATCH: &str = ".lightsout-scratch";

/// Applies the plan's Landlock ruleset to this process (and so to everything it execs).
/// Returns the report and, when `/tmp` could not be given whole, the scratch directory.
fn restrict(plan: &EntryPlan) -> Result<(LandlockReport, Option<PathBuf>), String> {
    let abi = TESTED_ABI;
    let err = |e: landlock::RulesetError| format!("landlock: {e}");
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .map_err(err)?
        .scope(Scope::from_all(abi))
        .map_err(err)?;
    if let Some(tcp) = &plan.tcp {
        if tcp.bind.is_some() {
            ruleset = ruleset.handle_access(AccessNet::BindTcp).map_err(err)?;
        }
        if tcp.connect.is_some() {
            ruleset = ruleset.handle_access(AccessNet::ConnectTcp).map_err(err)?;
        }
    }
    let mut created = ruleset.create().map_err(err)?;
    let mut writable: Vec<PathBuf> = plan.writable.clone();
    writable.push(PathBuf::from("/dev"));
    // The sandbox's `/tmp` is its own tmpfs, but the host directories bound into it (a
    // repository under the host's `/tmp`) would inherit a rule on `/tmp` itself. When a
    // denied path lies there, `/tmp` gets the rights to create, write and remove without
    // the rights to read, its entries are readable one by one (`readable_roots`), and a
    // scratch directory below it, made here and given as `TMPDIR`, gets every right.
    let tmp = Path::new("/tmp");
    let scratch = if plan.denied.iter().any(|d| d.starts_with(tmp)) {
        let dir = tmp.join(SCRATCH);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        writable.push(dir.clone());
        created = created
            .add_rules(path_beneath_rules([tmp], AccessFs::from_write(abi)))
            .map_err(err)?;
        Some(dir)
    } else {
        writable.push(tmp.to_path_buf());
        None
    };
    // Directories stay listable everywhere (a rule's rights reach every directory below
    // it, so listing the ancestors of a denied path means listing all): names in a denied
    // directory can be seen, never what its files hold.
    created = created
        .add_rules(path_beneath_rules(["/"], AccessFs::ReadDir))
        .map_err(err)?;
    created = created
        .add_rules(path_beneath_rules(
            readable_roots(&plan.denied),
            AccessFs::from_read(abi),
        ))
        .map_err(err)?
        .add_rules(path_beneath_rules(writable, AccessFs::from_all(abi)))
        .map_err(err)?
        .add_rules(path_beneath_rules(
            plan.readable.clone(),
            AccessFs::from_read(abi),
        ))
        .map_err(err)?;
    if let Some(tcp) = &plan.tcp {
        for p in tcp.bind.iter().flatten() {
            created = created
                .add_rule(NetPort::new(*p, AccessNet::BindTcp))
                .map_err(err)?;
        }
        for p in tcp.connect.iter().flatten() {
            created = created
                .add_rule(NetPort::new(*p, AccessNet::ConnectTcp))
                .map_err(err)?;
        }
    }
    let status = created.restrict_self().map_err(err)?;
    let kernel_abi = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => effective_abi as u32,
        _ => 0,
    };
    Ok((
        LandlockReport {
            kernel_abi,
            requested_abi: abi as u32,
            ruleset: status_name(&status.ruleset).to_owned(),
        },
        scratch,
    ))
}

/// The entry's `main`: `args` are what follows [`ENTRY_ARG`]: the [`EntryPlan`] as JSON,
/// then `--`, the program and its arguments. It returns only when it does not become the
/// program: [`FACTORY_GONE`], [`ENTRY_FAILED`] (with a line on stderr), or 0 after a probe.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let mut args = args.into_iter();
    let fail = |m: &str| {
        #[allow(clippy::print_stderr)] // the entry's only channel is the sandbox's stderr
        {
            eprintln!("lightsout sandbox entry: {m}");
        }
        ExitCode::from(ENTRY_FAILED)
    };
    let Some(plan) = args.next() else {
        return fail("no plan");
    };
    let plan: EntryPlan = match serde_json::from_str(&plan.to_string_lossy()) {
        Ok(p) => p,
        Err(e) => return fail(&format!("invalid plan: {e}")),
    };
    if let Some(fifo) = &plan.lifeline {
        match factory_alive(fifo) {
            Ok(true) => {}
            Ok(false) => return ExitCode::from(FACTORY_GONE),
            Err(e) => return fail(&format!("cannot read the lifeline {}: {e}", fifo.display())),
        }
    }
    if let Some(dir) = &plan.await_record {
        match await_record(dir, plan.lifeline.as_deref()) {
            Ok(true) => {}
            Ok(false) => return ExitCode::from(FACTORY_GONE),
            Err(e) => return fail(&e),
        }
    }
    let (report, scratch) = if plan.landlock {
        match restrict(&plan) {
            Ok((r, scratch)) => (Some(r), scratch),
            Err(e) => return fail(&e),
        }
    } else {
        (None, None)
    };
    if plan.probe {
        let json = serde_json::to_string(&report).unwrap_or_default();
        #[allow(clippy::print_stdout)] // the probe's answer
        {
            println!("{json}");
        }
        return ExitCode::SUCCESS;
    }
    if args.next().is_some_and(|a| a != "--") {
        return fail("expected `--` before the program");
    }
    let Some(program) = args.next() else {
        return fail("no program");
    };
    if let Err(e) = set_limits(&plan) {
        return fail(&e);
    }
    let mut cmd = std::process::Command::new(&program);
    cmd.args(args);
    if let Some(dir) = scratch {
        cmd.env("TMPDIR", dir);
    }
    let e = std::os::unix::process::CommandExt::exec(&mut cmd);
    fail(&format!("cannot run {}: {e}", program.to_string_lossy()))
}

/// Sets the plan's memory limit (soft and hard, so the program cannot raise it) on this
/// process; it passes to the program across `exec` and to its children, each of which gets
/// its own `RLIMIT_AS` of that size.
fn set_limits(plan: &EntryPlan) -> Result<(), String> {
    use nix::sys::resource::{Resource, setrlimit};
    if let Some(v) = plan.memory_bytes {
        setrlimit(Resource::RLIMIT_AS, v, v)
            .map_err(|e| format!("cannot set memory_bytes (RLIMIT_AS) to {v}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_roots_cover_all_but_the_denied_subtree() {
        let t = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(t.path()).unwrap();
        for d in ["a/holdout/x", "a/keep", "b"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        std::os::unix::fs::symlink(base.join("a/holdout"), base.join("a/link")).unwrap();
        let roots = readable_roots(&[base.join("a/holdout")]);
        assert!(roots.contains(&base.join("a/keep")));
        assert!(roots.contains(&base.join("b")));
        assert!(roots.iter().all(|r| !r.starts_with(base.join("a/holdout"))));
        assert!(!roots.contains(&base.join("a/link")));
        // No root is an ancestor of the denied path.
        assert!(roots.iter().all(|r| !base.join("a/holdout").starts_with(r)));
        // Everything outside the denied path's ancestors is one rule: `/usr` itself.
        assert!(roots.contains(&PathBuf::from("/usr")));
    }

    #[test]
    fn lifeline_tells_a_live_factory_from_a_gone_one() {
        let l = Lifeline::new().unwrap();
        let fifo = l.path();
        assert!(factory_alive(&fifo).unwrap());
        // A second FIFO with no writer: what a sandbox sees after the factory died.
        let t = tempfile::tempdir().unwrap();
        let dead = t.path().join("dead");
        nix::unistd::mkfifo(&dead, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(!factory_alive(&dead).unwrap());
    }

    #[test]
    fn plan_round_trips_as_json() {
        let plan = EntryPlan {
            lifeline: Some("/tmp/x/lifeline".into()),
            landlock: true,
            writable: vec!["/w".into()],
            denied: vec!["/h".into()],
            readable: vec!["/h/own".into()],
            tcp: Some(TcpPorts {
                bind: None,
                connect: Some(vec![9000]),
            }),
            memory_bytes: Some(1 << 30),
            probe: false,
            await_record: Some("/r/procs".into()),
        };
        let text = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<EntryPlan>(&text).unwrap(), plan);
    }
}
