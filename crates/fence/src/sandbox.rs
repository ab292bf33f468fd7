//! The least-privilege sandbox every process that runs agent-written code goes through:
//! bubblewrap (`bwrap(1)`, Debian's `bubblewrap`) plus a seccomp filter compiled with
//! [`seccompiler`] (Firecracker's).
//!
//! A sandboxed process runs:
//! - in its own **user namespace** as uid/gid 65534 (inside; `--uid`/`--gid`) with **every
//!   capability dropped** (`--cap-drop ALL`) and **no further user namespaces**
//!   (`--disable-userns`), so it cannot `mount`, `umount` or remount anything, whatever it
//!   tries. Outside, its files are its factory's uid (the worktree stays the factory's);
//!   as root that is kernel uid 0 *without* capabilities: it can read files root owns
//!   (owner permission bits) but nothing that needs `CAP_DAC_OVERRIDE`;
//! - with **`no_new_privs`** (bubblewrap sets it) and a **seccomp filter** that returns
//!   `EPERM` for [`DENIED_SYSCALLS`] (`mount`, `umount2`, `pivot_root`, `ptrace`, `unshare`,
//!   `setns`, `keyctl`, `bpf`, `io_uring_*`, kernel modules, ..., and `socket(AF_UNIX)`: no
//!   connection to a host Unix socket such as a container engine's), applied by bubblewrap just before `exec`;
//! - in its own **PID, IPC and (with `network = "none"`/`"hosts"`) network namespaces**, in
//!   a new session (`--new-session`, no `TIOCSTI` into the factory's terminal), and **dying
//!   with its parent** (`--die-with-parent`: `PR_SET_PDEATHSIG` in bubblewrap and in the
//!   namespace's init, so a `kill -9` of the factory takes the whole PID namespace with it);
//! - seeing a **read-only root** (`--ro-bind / /`), a fresh `/proc`, `/dev` and `/tmp`, its
//!   [`View::writable`] directories re-bound writable, the git directories in
//!   [`View::readonly`] re-bound read-only over them, and every [`View::hidden`] directory
//!   **absent**: its parent is replaced by an empty read-only tmpfs into which only the other
//!   entries are bound back, so the path does not exist for the process (there is no mount
//!   over it to remove, and nothing could remove one anyway).
//!
//! # Why a file and `sh` for the seccomp program
//! bubblewrap reads the filter from an inherited file descriptor (`--seccomp FD`). The
//! standard library cannot pass an extra descriptor to a child without `pre_exec`, which is
//! `unsafe`, and the workspace forbids `unsafe`. So the compiled program is written once per
//! [`Sandbox`] to a private temporary file and every sandboxed command starts as
//! `sh -c 'exec "$@" 3<"$0"' FILE bwrap ... --seccomp 3 ...`: the shell opens the file on
//! descriptor 3 and replaces itself with bubblewrap (same PID, so the fence's process-group
//! kill still reaches it). It costs one `exec` per call; see `benches/fence.rs`.
//!
//! # Landlock and the spawn window
//! With a registered [sandbox entry](super::entry) (the `lightsout` binary registers itself)
//! the first program inside is the entry: it refuses to start anything once the factory is
//! gone (the window before bubblewrap's `--die-with-parent` takes effect) and applies
//! Landlock for the view: [`View::hidden`] and [`View::denied`] not readable,
//! [`View::writable`] writable, the rest readable. [`Sandbox::probe`] records which ABI the
//! kernel enforced ([`landlock`]).
//!
//! # Limits, stated plainly
//! - As root, the sandboxed process's kernel uid is 0 without capabilities: without Landlock
//!   it can *read* files root owns outside the hidden paths (`/root`, `/etc/shadow`), not
//!   other users'. With Landlock the factory's state and the known credentials are denied
//!   too; everything else of the root stays readable. It cannot write anything but its
//!   worktree (nor reach host Unix sockets: seccomp).
//! - Without the sandbox entry (a library caller that did not register one), a factory
//!   killed in the moment before bubblewrap sets `--die-with-parent` can orphan the sandbox;
//!   the fence's process ledger ([`procs`](super::procs)) lets `--resume` end it.
//! - A syscall the filter refuses is not reported; only its effects are (a refused write).
//! - Needs unprivileged user namespaces when the factory is not root (some distributions
//!   restrict them with `sysctl` or `AppArmor`): [`Sandbox::probe`] then fails.
//!
//! Sources: bubblewrap(1); seccomp(2); Codex's `linux-sandbox` (the same layering);
//! <https://docs.rs/seccompiler/0.5.0>.

use super::FenceError;
use super::policy::NetworkMode;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

/// The uid and gid a sandboxed process has inside its user namespace (`nobody`/`nogroup`).
pub const SANDBOX_ID: u32 = 65534;

/// The file descriptor bubblewrap reads the seccomp program from.
const SECCOMP_FD: &str = "3";

/// The environment variable that names the `cgroup.procs` file the sandbox's first process
/// joins before it becomes bubblewrap ([`cgroup`](super::cgroup)); set by
/// [`Fence::run`](super::policy::Fence::run), removed before bubblewrap starts.
pub const CGROUP_VAR: &str = "LIGHTSOUT_FENCE_CGROUP";

/// The shell that joins the call's cgroup (when [`CGROUP_VAR`] names one: its own PID, so
/// everything bubblewrap starts is born inside; exit 125 and nothing started when it
/// cannot), opens the seccomp program on [`SECCOMP_FD`] and becomes bubblewrap. `echo` is a
/// builtin: the shell writes its own PID without forking.
const EXEC_WITH_FILTER: &str = r#"if [ -n "${LIGHTSOUT_FENCE_CGROUP-}" ]; then
  echo $$ > "$LIGHTSOUT_FENCE_CGROUP" || { echo "lightsout fence: cannot join the process cap's cgroup $LIGHTSOUT_FENCE_CGROUP" >&2; exit 125; }
  unset LIGHTSOUT_FENCE_CGROUP
fi
exec "$@" 3<"$0""#;

/// Processes of the fence itself in a capped call's cgroup, added to
/// [`FenceConfig::max_processes`](super::policy::FenceConfig::max_processes): bubblewrap
/// outside and its init inside the PID namespace (measured with `pids.current`).
pub const SANDBOX_OWN_PIDS: u64 = 2;

/// The syscalls the seccomp filter refuses with `EPERM`: everything that changes mounts or
/// namespaces, inspects or writes other processes, reaches the kernel keyring, loads code
/// into the kernel or bypasses seccomp (`io_uring`). Names as in `syscalls(2)`.
pub const DENIED_SYSCALLS: &[&str] = &[
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "ptrace",
    "unshare",
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "swapon",
    "swapoff",
    "reboot",
    "process_vm_readv",
    "process_vm_writev",
    "open_by_handle_at",
    "name_to_handle_at",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "fsopen",
    "fsmount",
    "fsconfig",
    "move_mount",
    "open_tree",
    "mount_setattr",
];

/// The syscall number of `name` on this architecture, for [`DENIED_SYSCALLS`].
fn syscall_number(name: &str) -> Option<i64> {
    use nix::libc;
    let n = match name {
        "mount" => libc::SYS_mount,
        "umount2" => libc::SYS_umount2,
        "pivot_root" => libc::SYS_pivot_root,
        "chroot" => libc::SYS_chroot,
        "ptrace" => libc::SYS_ptrace,
        "unshare" => libc::SYS_unshare,
        "setns" => libc::SYS_setns,
        "keyctl" => libc::SYS_keyctl,
        "add_key" => libc::SYS_add_key,
        "request_key" => libc::SYS_request_key,
        "bpf" => libc::SYS_bpf,
        "perf_event_open" => libc::SYS_perf_event_open,
        "kexec_load" => libc::SYS_kexec_load,
        "kexec_file_load" => libc::SYS_kexec_file_load,
        "init_module" => libc::SYS_init_module,
        "finit_module" => libc::SYS_finit_module,
        "delete_module" => libc::SYS_delete_module,
        "swapon" => libc::SYS_swapon,
        "swapoff" => libc::SYS_swapoff,
        "reboot" => libc::SYS_reboot,
        "process_vm_readv" => libc::SYS_process_vm_readv,
        "process_vm_writev" => libc::SYS_process_vm_writev,
        "open_by_handle_at" => libc::SYS_open_by_handle_at,
        "name_to_handle_at" => libc::SYS_name_to_handle_at,
        "userfaultfd" => libc::SYS_userfaultfd,
        "io_uring_setup" => libc::SYS_io_uring_setup,
        "io_uring_enter" => libc::SYS_io_uring_enter,
        "io_uring_register" => libc::SYS_io_uring_register,
        "fsopen" => libc::SYS_fsopen,
        "fsmount" => libc::SYS_fsmount,
        "fsconfig" => libc::SYS_fsconfig,
        "move_mount" => libc::SYS_move_mount,
        "open_tree" => libc::SYS_open_tree,
        "mount_setattr" => libc::SYS_mount_setattr,
        _ => return None,
    };
    Some(n)
}

/// Compiles the seccomp filter: [`DENIED_SYSCALLS`] and `socket(AF_UNIX, ...)` return
/// `EPERM`, every other syscall is allowed; a syscall of another architecture kills the process (seccompiler's arch check).
/// The result is the raw `struct sock_filter` array (8 bytes per instruction, native
/// endianness) bubblewrap's `--seccomp` expects.
///
/// # Errors
/// [`FenceError::IsolationUnavailable`] on an architecture seccompiler does not support.
pub fn seccomp_program() -> Result<Vec<u8>, FenceError> {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let unavailable = |detail: String| FenceError::IsolationUnavailable { detail };
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| {
        unavailable(format!(
            "no seccomp filter for {}: {e}",
            std::env::consts::ARCH
        ))
    })?;
    let mut rules: std::collections::BTreeMap<i64, Vec<seccompiler::SeccompRule>> = DENIED_SYSCALLS
        .iter()
        .filter_map(|n| syscall_number(n))
        .map(|nr| (nr, Vec::new()))
        .collect();
    // `socket(AF_UNIX, ...)`: no connection to a Unix socket of the host (a container
    // engine's, the init system's, an agent's), which a read-only mount does not stop and
    // the factory's uid may own. `socketpair` stays allowed.
    let unix = seccompiler::SeccompCondition::new(
        0,
        seccompiler::SeccompCmpArgLen::Dword,
        seccompiler::SeccompCmpOp::Eq,
        nix::libc::AF_UNIX.cast_unsigned().into(),
    )
    .and_then(|c| seccompiler::SeccompRule::new(vec![c]))
    .map_err(|e| unavailable(format!("cannot build the seccomp filter: {e}")))?;
    rules.insert(nix::libc::SYS_socket, vec![unix]);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(nix::libc::EPERM.cast_unsigned()),
        arch,
    )
    .map_err(|e| unavailable(format!("cannot build the seccomp filter: {e}")))?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e| unavailable(format!("cannot compile the seccomp filter: {e}")))?;
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for i in &program {
        bytes.extend_from_slice(&i.code.to_ne_bytes());
        bytes.push(i.jt);
        bytes.push(i.jf);
        bytes.extend_from_slice(&i.k.to_ne_bytes());
    }
    Ok(bytes)
}

/// What a sandboxed process sees of the file system, besides the read-only root.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Directories bound writable (the worktree), canonical. Bound after the hidden ones.
    pub writable: Vec<PathBuf>,
    /// Paths bound read-only over the writable ones (a `.git` directory inside the worktree,
    /// the worktree's own git directory), canonical.
    pub readonly: Vec<PathBuf>,
    /// Directories that must not exist for the process (the holdout), canonical.
    pub hidden: Vec<PathBuf>,
    /// Directories under the host's `/tmp` the process may read (the repository and its
    /// common git directory when they live there), canonical: bound read-only over the
    /// sandbox's fresh `/tmp` before the hidden ones are removed.
    pub readable: Vec<PathBuf>,
    /// Extra paths bound read-only at the same place (the `network = "hosts"` handshake FIFO,
    /// which lives under the host's `/tmp`).
    pub extra: Vec<PathBuf>,
    /// Paths the process may not read although bubblewrap shows them (they may contain a
    /// writable directory: the factory's `.lightsout`, which holds the worktree; the
    /// credentials of [`secret_paths`](super::entry::secret_paths)), canonical. Enforced by
    /// Landlock in the [sandbox entry](super::entry) where the kernel has it, and only there.
    pub denied: Vec<PathBuf>,
    /// Paths inside [`View::denied`] the process may still read (its prompt and task
    /// files), canonical; Landlock only.
    pub granted: Vec<PathBuf>,
    /// With Landlock ABI 4+: the TCP ports the process may connect to (`None`: any).
    pub connect_ports: Option<Vec<u16>>,
    /// `RLIMIT_AS` of the process, in bytes ([`FenceConfig::memory_bytes`](super::policy::FenceConfig::memory_bytes)).
    pub memory_bytes: Option<u64>,
    /// The working directory inside.
    pub cwd: PathBuf,
}

/// A working bubblewrap and the compiled seccomp filter, shared by the calls of one
/// [`Fence`](super::policy::Fence).
#[derive(Debug, Clone)]
pub struct Sandbox {
    bwrap: PathBuf,
    sh: PathBuf,
    filter: Arc<tempfile::TempPath>,
    network: NetworkMode,
    entry: Option<EntryProgram>,
}

/// The [sandbox entry](super::entry) of a [`Sandbox`]: the program, the factory's lifeline,
/// and what the probe found of Landlock.
#[derive(Debug, Clone)]
struct EntryProgram {
    program: PathBuf,
    lifeline: Arc<super::entry::Lifeline>,
    landlock: Option<super::entry::LandlockReport>,
}

/// The Landlock the last probe found enforced (`None`: no probe with the entry yet).
static LANDLOCK: std::sync::OnceLock<Option<super::entry::LandlockReport>> =
    std::sync::OnceLock::new();

/// Which Landlock the sandboxes of this process enforce, from the first [`Sandbox::probe`]
/// that ran the [sandbox entry](super::entry): `None` when no such probe ran (no entry
/// program registered), `Some(None)` when the kernel has no Landlock.
pub fn landlock() -> Option<Option<super::entry::LandlockReport>> {
    LANDLOCK.get().cloned()
}

impl PartialEq for Sandbox {
    fn eq(&self, other: &Self) -> bool {
        self.bwrap == other.bwrap && self.network == other.network
    }
}

impl Eq for Sandbox {}

impl Sandbox {
    /// Finds `bwrap` on `path_var` (or the usual system directories), compiles and writes the
    /// seccomp filter, and checks that a sandbox really starts here, with a process that
    /// must see its mounts refused.
    ///
    /// # Errors
    /// [`FenceError::IsolationUnavailable`] when bubblewrap is missing or cannot create the
    /// namespaces (for example user namespaces disabled by `sysctl`), with what to do next.
    pub fn probe(
        network: NetworkMode,
        path_var: Option<&std::ffi::OsStr>,
    ) -> Result<Self, FenceError> {
        let unavailable = |detail: String| FenceError::IsolationUnavailable { detail };
        let bwrap = super::policy::find_tool("bwrap", path_var).ok_or_else(|| {
            unavailable(
                "`bwrap` not found: install bubblewrap (`apt-get install bubblewrap`)".into(),
            )
        })?;
        let sh = PathBuf::from("/bin/sh");
        let mut file = tempfile::Builder::new()
            .prefix("lightsout-seccomp-")
            .tempfile()
            .map_err(|e| FenceError::io(std::env::temp_dir(), e))?;
        file.write_all(&seccomp_program()?)
            .and_then(|()| file.flush())
            .map_err(|e| FenceError::io(file.path(), e))?;
        let entry = match super::entry::program() {
            Some(program) => Some(EntryProgram {
                program: program.to_path_buf(),
                lifeline: Arc::new(super::entry::Lifeline::new()?),
                landlock: None,
            }),
            None => None,
        };
        let mut sandbox = Self {
            bwrap,
            sh,
            filter: Arc::new(file.into_temp_path()),
            network,
            entry,
        };
        let dir = tempfile::tempdir().map_err(|e| FenceError::io(std::env::temp_dir(), e))?;
        let wt = std::fs::canonicalize(dir.path()).map_err(|e| FenceError::io(dir.path(), e))?;
        let view = View {
            writable: vec![wt.clone()],
            cwd: wt,
            ..View::default()
        };
        let mut probe = sandbox.command(&view);
        probe
            .args([
                "/bin/sh",
                "-c",
                ": > ok && ! (: > /probe-outside) 2>/dev/null",
            ])
            .stdin(Stdio::null());
        match probe.output() {
            Ok(o) if o.status.success() && dir.path().join("ok").is_file() => {
                sandbox.probe_landlock(&view)?;
                Ok(sandbox)
            }
            Ok(o) => Err(unavailable(format!(
                "bubblewrap could not start a sandbox ({}): {}; allow unprivileged user \
                 namespaces (`sysctl kernel.unprivileged_userns_clone=1`, \
                 `user.max_user_namespaces`) or run where they are allowed",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ))),
            Err(e) => Err(unavailable(format!("cannot run bwrap: {e}"))),
        }
    }

    /// Runs the sandbox entry in probe mode: it applies Landlock and answers which ABI the
    /// kernel enforced. Fails closed when the entry itself fails.
    fn probe_landlock(&mut self, view: &View) -> Result<(), FenceError> {
        let Some(entry) = &self.entry else {
            return Ok(());
        };
        let plan = super::entry::EntryPlan {
            lifeline: Some(entry.lifeline.path()),
            landlock: true,
            writable: view.writable.clone(),
            probe: true,
            ..super::entry::EntryPlan::default()
        };
        let mut c = self.command_with(view);
        c.arg(&entry.program)
            .arg(super::entry::ENTRY_ARG)
            .arg(serde_json::to_string(&plan).unwrap_or_default())
            .stdin(Stdio::null());
        let unavailable = |detail: String| FenceError::IsolationUnavailable { detail };
        let out = c
            .output()
            .map_err(|e| unavailable(format!("cannot run the sandbox entry: {e}")))?;
        if !out.status.success() {
            return Err(unavailable(format!(
                "the sandbox entry {} failed ({}): {}",
                entry.program.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let report: Option<super::entry::LandlockReport> = serde_json::from_slice(&out.stdout)
            .map_err(|e| {
                unavailable(format!(
                    "the sandbox entry answered no Landlock report: {e}"
                ))
            })?;
        let report = report.filter(|r| r.kernel_abi > 0);
        let _ = LANDLOCK.set(report.clone());
        if let Some(e) = &mut self.entry {
            e.landlock = report;
        }
        Ok(())
    }

    /// The Landlock this sandbox enforces (`None`: none, or no sandbox entry).
    pub fn landlock(&self) -> Option<&super::entry::LandlockReport> {
        self.entry.as_ref().and_then(|e| e.landlock.as_ref())
    }

    /// The same sandbox with another network mode (a service under test shares the
    /// factory's network so the evaluator can reach it).
    #[must_use]
    pub fn with_network(&self, network: NetworkMode) -> Self {
        Self {
            network,
            ..self.clone()
        }
    }

    /// Whether the [sandbox entry](super::entry) runs first inside (it applies Landlock and
    /// the memory limit).
    pub fn has_entry(&self) -> bool {
        self.entry.is_some()
    }

    /// Whether `cmd` was built by [`Sandbox::command`]: its program is the fence's `sh`
    /// running the script that joins the call's cgroup.
    pub fn wraps(&self, cmd: &Command) -> bool {
        let mut args = cmd.get_args();
        cmd.get_program() == self.sh.as_os_str()
            && args.next() == Some(std::ffi::OsStr::new("-c"))
            && args.next() == Some(std::ffi::OsStr::new(EXEC_WITH_FILTER))
    }

    /// The flags every sandbox gets (the view's mounts come after them).
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![
            "--unshare-user",
            "--disable-userns",
            "--cap-drop",
            "ALL",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
        ];
        if self.network != NetworkMode::Inherit {
            f.push("--unshare-net");
        }
        f
    }

    /// A command that runs what is appended to it (`program args...`) inside a sandbox
    /// showing `view`: `sh -c 'exec "$@" 3<"$0"' FILTER bwrap FLAGS... --`.
    ///
    /// The caller adds the program and its arguments, the environment and the stdio.
    ///
    /// With a registered [sandbox entry](super::entry), the first program inside is the
    /// entry (`lightsout __sandbox-entry PLAN --`): it checks the factory's lifeline and
    /// applies Landlock for `view`, then becomes the program.
    pub fn command(&self, view: &View) -> Command {
        let mut c = self.command_with(view);
        if let Some(entry) = &self.entry {
            let mut denied = view.hidden.clone();
            denied.extend(view.denied.iter().cloned());
            let plan = super::entry::EntryPlan {
                lifeline: Some(entry.lifeline.path()),
                landlock: entry.landlock.is_some(),
                writable: view.writable.clone(),
                denied,
                readable: view.granted.clone(),
                tcp: view
                    .connect_ports
                    .clone()
                    .map(|connect| super::entry::TcpPorts {
                        bind: None,
                        connect: Some(connect),
                    }),
                memory_bytes: view.memory_bytes,
                probe: false,
                await_record: None,
            };
            c.arg(&entry.program)
                .arg(super::entry::ENTRY_ARG)
                .arg(serde_json::to_string(&plan).unwrap_or_default())
                .arg("--");
        }
        c
    }

    fn command_with(&self, view: &View) -> Command {
        let mut c = Command::new(&self.sh);
        c.arg("-c")
            .arg(EXEC_WITH_FILTER)
            .arg(self.filter.as_os_str())
            .arg(&self.bwrap)
            .args(self.args(view));
        if let Some(e) = &self.entry {
            // The entry program and the lifeline, wherever they live (a fresh `/tmp` hides
            // the host's).
            for p in [e.program.as_path(), e.lifeline.dir()] {
                c.arg("--ro-bind").arg(p).arg(p);
            }
        }
        c.arg("--");
        c
    }

    /// The bubblewrap arguments for `view`, without the program.
    pub fn args(&self, view: &View) -> Vec<OsString> {
        let mut a: Vec<OsString> = self.flags().into_iter().map(OsString::from).collect();
        let id = SANDBOX_ID.to_string();
        a.extend(["--uid", &id, "--gid", &id].map(OsString::from));
        a.extend(
            [
                "--ro-bind",
                "/",
                "/",
                "--dev",
                "/dev",
                "--proc",
                "/proc",
                "--tmpfs",
                "/tmp",
            ]
            .map(OsString::from),
        );
        let bind = |a: &mut Vec<OsString>, flag: &str, p: &Path| {
            a.push(flag.into());
            a.push(p.into());
            a.push(p.into());
        };
        for p in &view.readable {
            bind(&mut a, "--ro-bind", p);
        }
        hide_all(&mut a, &view.hidden);
        let mut bind = |flag: &str, p: &Path| bind(&mut a, flag, p);
        for p in &view.extra {
            bind("--ro-bind", p);
        }
        for p in &view.writable {
            bind("--bind", p);
        }
        for p in &view.readonly {
            bind("--ro-bind", p);
        }
        a.push("--chdir".into());
        a.push(view.cwd.clone().into());
        a.push("--seccomp".into());
        a.push(SECCOMP_FD.into());
        a
    }
}

/// Makes every `hidden` path absent: each parent becomes an empty tmpfs into which every
/// other entry of the parent is bound back read-only (symlinks recreated; an entry removed
/// after it was listed is skipped), then the tmpfs is made read-only. Parents are handled shallowest first, so a hidden path below another
/// parent is still removed. A hidden directory directly under `/` is covered by an empty
/// read-only tmpfs instead (which the capability-less process cannot remove either).
fn hide_all(a: &mut Vec<OsString>, hidden: &[PathBuf]) {
    let mut parents: std::collections::BTreeMap<(usize, &Path), Vec<&std::ffi::OsStr>> =
        std::collections::BTreeMap::new();
    for h in hidden {
        if let (Some(parent), Some(name)) = (h.parent(), h.file_name()) {
            parents
                .entry((parent.components().count(), parent))
                .or_default()
                .push(name);
        }
    }
    let mut push = |items: &[&std::ffi::OsStr]| a.extend(items.iter().map(|s| s.to_os_string()));
    for ((_, parent), names) in parents {
        if parent == Path::new("/") {
            for n in names {
                let h = parent.join(n);
                push(&["--tmpfs".as_ref(), h.as_os_str()]);
                push(&["--remount-ro".as_ref(), h.as_os_str()]);
            }
            continue;
        }
        push(&["--tmpfs".as_ref(), parent.as_os_str()]);
        if let Ok(entries) = std::fs::read_dir(parent) {
            for e in entries.flatten() {
                if names.contains(&e.file_name().as_os_str()) {
                    continue;
                }
                let p = e.path();
                match std::fs::read_link(&p) {
                    Ok(target) => {
                        push(&["--symlink".as_ref(), target.as_os_str(), p.as_os_str()]);
                    }
                    // `-try`: an entry listed here may be gone by the time bubblewrap
                    // mounts (an atomic writer's temporary file); it is then simply absent.
                    Err(_) => push(&["--ro-bind-try".as_ref(), p.as_os_str(), p.as_os_str()]),
                }
            }
        }
        push(&["--remount-ro".as_ref(), parent.as_os_str()]);
    }
}

/// The command-line prefix that ties a *trusted* process tree (the holdout runner, which
/// must read the holdout) to the factory's life without confining it: bubblewrap with
/// `--die-with-parent` and a PID namespace, the whole file system and `/dev` as they are.
/// When the factory dies, so does the namespace's init and with it every process the tree
/// started (services included). Not root: inside a user namespace mapping the same uid.
/// `None` when bubblewrap is not installed (the tree then runs as before, in its own
/// process group only).
pub fn lifetime_prefix() -> Option<Vec<OsString>> {
    let bwrap = super::policy::find_tool("bwrap", std::env::var_os("PATH").as_deref())?;
    let mut v = vec![bwrap.into_os_string()];
    let mut flags = vec!["--die-with-parent", "--unshare-pid"];
    if !nix::unistd::geteuid().is_root() {
        flags.push("--unshare-user");
    }
    flags.extend(["--dev-bind", "/", "/", "--proc", "/proc", "--"]);
    v.extend(flags.into_iter().map(OsString::from));
    Some(v)
}

/// The first child of `pid` (bubblewrap's sandbox init, whose namespaces the sandboxed
/// program shares), from `/proc/<pid>/task/<pid>/children`.
pub(crate) fn first_child(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
