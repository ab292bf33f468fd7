//! This crate provides the fence between Lightsout's agents and the rest of the machine:
//! the bubblewrap + seccomp sandbox, the process policy, budgets, holdout protection, the
//! named-hosts egress proxy, the process ledger and the hash-chained audit log.
//!
//! A factory that runs with the lights off must fail closed. Everything in this crate is
//! written so that a missing piece of information stops work instead of letting it through.
//! It depends on no other Lightsout crate but `lightsout-agent` (for [`agent::FencedAgent`]);
//! `lightsout-factory` wires it into the run loop.
//!
//! # Brief overview
//! - [`budget`]: [`budget::BudgetLedger`] caps attempts, wall time (ms), tokens and USD per
//!   task, per run and per UTC day. Every agent call [reserves](budget::BudgetLedger::reserve)
//!   its expected cost first and [settles](budget::BudgetLedger::settle) the actual usage
//!   after; [`budget::BudgetConfig::call_reservation`] is what a call reserves (by default
//!   too). While a streaming agent runs, [`budget::OpenCalls`] holds its reservation and
//!   [`budget::Reservation::cover`] grows it with the spend it reports, or says to stop it
//!   before its next step could pass a cap. [`budget::AgentRouting`] maps task kinds to
//!   (cheaper) agents.
//! - [`policy`]: [`policy::Fence`] runs one agent process behind an environment allowlist, an
//!   output cap (bytes), a wall-time limit that kills the whole process group, the worktree as
//!   working directory, the bubblewrap sandbox (no network, private PID space), and
//!   detection of writes outside the worktree and of a deleted or damaged `.git` link. The
//!   outcome is a [`policy::FenceReport`] of [`policy::Violation`]s.
//! - [`sandbox`]: [`sandbox::Sandbox`], bubblewrap plus a seccomp filter: no capabilities, a
//!   read-only root with only the worktree writable, the holdout absent, dying with the
//!   factory; [`sandbox::lifetime_prefix`] ties a trusted process tree to the factory's life.
//! - [`cgroup`]: the process cap ([`policy::FenceConfig::max_processes`]): one cgroup per
//!   call with `pids.max`, joined before the sandbox starts, emptied and removed after.
//! - [`entry`]: the sandbox entry, the first program inside bubblewrap (a mode of the
//!   `lightsout` binary): it starts nothing once the factory is gone ([`entry::Lifeline`])
//!   and applies Landlock as a second layer ([`entry::EntryPlan`], [`entry::LandlockReport`]).
//! - [`procs`]: the run's process ledger; `--resume` ends the leftovers of a killed factory.
//! - [`holdout`]: refuses a holdout directory that overlaps the repository or a worktree
//!   ([`holdout::check_holdout_location`]) and scans every prompt, feedback file and diff that
//!   crosses the fence ([`holdout::Crossing`]) with a caller-supplied [`holdout::LeakScan`].
//! - [`agent`]: [`agent::FencedAgent`], a command-line agent whose every call runs behind
//!   the [`policy::Fence`]; `lightsout run` wraps each command agent profile in one.
//! - [`egress`]: the `CONNECT` proxy of `network = "hosts"` (hyper), served inside the
//!   agent's network namespace; it tunnels to the [`egress::HostList`] only.
//! - [`audit`]: the hash-chained `.lightsout/runs/<id>/audit.jsonl`
//!   ([`audit::AuditLog`]) and its verifier ([`audit::verify`]).
//!
//! All fallible functions return [`FenceError`].
//!
//! # Example
//! ```
//! use lightsout_fence::budget::{BudgetConfig, BudgetLedger, Limits, Spend};
//!
//! let config = BudgetConfig {
//!     per_task: Limits { attempts: Some(2), tokens: Some(1_000), ..Limits::default() },
//!     ..BudgetConfig::default()
//! };
//! let ledger = BudgetLedger::in_memory(config);
//! let reservation = ledger.reserve("T1", Spend::tokens(400))?;
//! // ... run the agent here ...
//! let settled = ledger.settle(reservation, Spend::tokens(350))?;
//! assert!(settled.overruns.is_empty());
//! assert_eq!(ledger.task_used("T1").tokens, 350);
//! # Ok::<(), lightsout_fence::FenceError>(())
//! ```

#![deny(missing_docs)]

pub mod agent;
pub mod audit;
pub mod budget;
pub mod cgroup;
pub mod egress;
pub mod entry;
pub mod holdout;
pub mod policy;
pub mod procs;
pub mod sandbox;

use std::path::{Path, PathBuf};

/// Every failure of the fence.
///
/// Messages are lower case with no trailing period. Variants that stop work on purpose
/// ([`FenceError::BudgetExceeded`], [`FenceError::Leak`], [`FenceError::HoldoutOverlap`],
/// [`FenceError::HoldoutSymlink`]) carry the data a run report needs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FenceError {
    /// A file or directory could not be read or written.
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file of the fence (ledger, audit log, head) could not be parsed or written.
    #[error("invalid json in {}: {source}", path.display())]
    Json {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A budget would be exceeded by the requested reservation; the call must not start.
    #[error("{0}")]
    BudgetExceeded(budget::BudgetExceeded),
    /// A reservation was settled or released on a ledger that did not grant it.
    #[error("reservation {id} was not granted by this ledger")]
    ForeignReservation {
        /// The reservation id.
        id: u64,
    },
    /// Holdout text (a canary or a long verbatim run) was found in text crossing the fence.
    #[error("{0}")]
    Leak(holdout::LeakHit),
    /// The holdout directory overlaps the repository or a worktree.
    #[error(
        "holdout directory {} overlaps {}: move the holdout outside the repository and every worktree",
        holdout.display(),
        other.display()
    )]
    HoldoutOverlap {
        /// The canonical holdout path.
        holdout: PathBuf,
        /// The canonical repository or worktree path it overlaps.
        other: PathBuf,
    },
    /// A symlink inside the repository or a worktree resolves into the holdout directory.
    #[error(
        "symlink {} resolves into the holdout directory {}: remove the link",
        link.display(),
        holdout.display()
    )]
    HoldoutSymlink {
        /// The symlink found.
        link: PathBuf,
        /// The canonical holdout path.
        holdout: PathBuf,
    },
    /// A glob pattern in the configuration is invalid.
    #[error("invalid pattern `{pattern}`: {source}")]
    Pattern {
        /// The pattern as written.
        pattern: String,
        /// The underlying error.
        #[source]
        source: globset::Error,
    },
    /// The requested namespace isolation cannot be set up on this machine; the fence refuses
    /// to run the agent unisolated.
    #[error(
        "namespace isolation is unavailable ({detail}): install bubblewrap (`bwrap`) and allow user namespaces, or turn the isolation off in `[fence]` of lightsout.toml (`private_pids = false`, `readonly_outside = false`, `network = \"inherit\"`), knowing what each one stops protecting"
    )]
    IsolationUnavailable {
        /// What was tried and what failed.
        detail: String,
    },
    /// `[fence] max_processes` is set but no cgroup with the `pids` controller can be made
    /// here; the fence refuses to run agents without the cap.
    #[error(
        "[fence] max_processes cannot be enforced here ({detail}): run the factory as root on a machine with a writable cgroup `pids` controller (cgroup v1, or v2 with `pids` in cgroup.controllers), give an ordinary user a delegated cgroup v2 subtree (for example `systemd-run --user --scope -p Delegate=yes lightsout run ...`), or remove max_processes from [fence] of lightsout.toml"
    )]
    ProcessCapUnavailable {
        /// What was tried and what failed.
        detail: String,
    },
    /// The agent process could not be started.
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An audit log cannot be appended to because it is not intact.
    #[error("audit log {} is not intact ({detail}): run `lightsout audit verify` and keep the file as evidence", path.display())]
    AuditBroken {
        /// The log file.
        path: PathBuf,
        /// The first problem found.
        detail: String,
    },
    /// The Postgres audit chain's server failed or could not be reached
    /// ([`audit::postgres::PgAuditChain`]).
    #[cfg(feature = "postgres")]
    #[error("audit store: {source}")]
    AuditStore {
        /// The cause (it names the server as `host:port/database`, never the password).
        #[source]
        source: lightsout_fleet::Error,
    },
}

impl FenceError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// [`lightsout_stdx::write_atomic`] with the error as [`FenceError::Io`] on `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FenceError> {
    lightsout_stdx::write_atomic(path, bytes).map_err(|e| FenceError::io(path, e))
}

#[cfg(test)]
mod tests {
    //! The bar of issue 8 at the fence level: seven misbehaving agents, run as real
    //! processes in real git worktrees through the budget ledger, the process fence, the
    //! crossing scanner and the audit log. Each is contained and recorded against its task
    //! and requirement; main's branch does not move; a well-behaved task still runs.

    use super::FenceError;
    use super::audit::{AuditKind, AuditLog, AuditRecord, verify};
    use super::budget::{BudgetConfig, BudgetLedger, Limits, Spend};
    use super::holdout::{Canaries, Crossing, CrossingKind};
    use super::policy::{Fence, FenceConfig};
    use serde_json::json;
    use std::ffi::OsString;

    use lightsout_stdx::testing::git;

    const CANARY: &str = "LSO-CANARY-9c41d2";

    /// The misbehaving agents: task, requirement, and the script each runs.
    const TASKS: [(&str, &str, &str); 8] = [
        ("T1", "REQ-1", "while :; do :; done"),
        ("T2", "REQ-2", "yes gigabytes"),
        ("T3", "REQ-3", "echo pwned > ../../main/evil.txt"),
        ("T4", "REQ-4", "rm -f .git"),
        ("T5", "REQ-5", "echo \"secret=$LIGHTSOUT_TEST_SECRET\""),
        ("T6", "REQ-6", "echo \"$CANARY_FROM_TEST\""),
        ("T7", "REQ-7", "printf '{\"tokens\":900000}'"),
        (
            "T8",
            "REQ-8",
            "echo ok > done.txt && printf '{\"tokens\":120}'",
        ),
    ];

    /// A main repository with one commit under `root`: its path and its head.
    fn main_repo(root: &std::path::Path) -> (std::path::PathBuf, String) {
        let main = root.join("main");
        std::fs::create_dir_all(&main).unwrap();
        git(&main, &["init", "-q", "-b", "main"]);
        std::fs::write(main.join("README.md"), "hello\n").unwrap();
        git(&main, &["add", "."]);
        git(&main, &["commit", "-q", "-m", "init"]);
        let head = git(&main, &["rev-parse", "main"]);
        (main, head)
    }

    /// The fence of the test: short limits, `main` and `worktrees` watched, a secret in the
    /// host environment and the canary passed on purpose.
    fn test_fence(main: &std::path::Path, worktrees: &std::path::Path) -> Fence {
        let host_env = [
            (
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            ),
            ("LIGHTSOUT_TEST_SECRET", "hunter2".into()),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let mut config = FenceConfig {
            wall_ms: 400,
            output_bytes: 32 * 1024,
            kill_grace_ms: 2_000,
            watch: vec![main.to_path_buf(), worktrees.to_path_buf()],
            ..FenceConfig::default()
        };
        // The canary reaches T6 through a variable the test passes on purpose, standing in for
        // holdout text that leaked into its context.
        config
            .env
            .set
            .insert("CANARY_FROM_TEST".into(), CANARY.into());
        Fence::new(config).unwrap().with_host_env(host_env)
    }

    /// What the factory does around one call: a worktree, a reservation, the fenced run,
    /// the settlement, and the audit entries for the call, its violations, overruns and leaks.
    struct Harness {
        main: std::path::PathBuf,
        worktrees: std::path::PathBuf,
        fence: Fence,
        ledger: BudgetLedger,
        crossing: Crossing<Canaries>,
        log: AuditLog,
    }

    impl Harness {
        fn run(&self, task: &str, req: &str, script: &str) {
            let wt = self.worktrees.join(task);
            let branch = format!("lightsout/r1/{task}");
            git(
                &self.main,
                &["worktree", "add", "-q", "-b", &branch, wt.to_str().unwrap()],
            );
            let reservation = self.ledger.reserve(task, Spend::tokens(1_000)).unwrap();
            let cmd = self.fence.command("sh", ["-c", script], &wt).unwrap();
            let out = self.fence.run(cmd, None, &wt).unwrap();
            let reported: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(json!({}));
            let usage = Spend {
                tokens: reported["tokens"].as_u64().unwrap_or(0),
                wall_ms: out.wall_ms,
                usd_micros: 0,
            };
            let settled = self.ledger.settle(reservation, usage).unwrap();
            let log = &self.log;
            log.append(AuditRecord::new(
                AuditKind::AgentCall,
                Some(task),
                &[req],
                json!({"exit": out.exit, "tokens": usage.tokens, "clean": out.report.is_clean()}),
            ))
            .unwrap();
            for v in &out.report.violations {
                log.append(AuditRecord::policy_hit(task, &[req], v))
                    .unwrap();
            }
            for o in &settled.overruns {
                log.append(AuditRecord::budget_stop(task, &[req], o))
                    .unwrap();
            }
            for (label, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
                if let Err(FenceError::Leak(hit)) =
                    self.crossing
                        .check_bytes(CrossingKind::AgentOutput, label, bytes)
                {
                    log.append(AuditRecord::leak(task, &[req], &hit)).unwrap();
                }
            }
            if task == "T5" {
                assert_eq!(out.stdout, b"secret=\n");
            }
        }
    }

    /// The entries of `task` other than its agent call: kind and violation or budget name.
    fn stops(entries: &[super::audit::AuditEntry], task: &str) -> Vec<(AuditKind, String)> {
        entries
            .iter()
            .filter(|e| e.task.as_deref() == Some(task) && e.kind != AuditKind::AgentCall)
            .map(|e| {
                let what = e.details["violation"]
                    .as_str()
                    .or(e.details["budget"].as_str())
                    .unwrap_or("")
                    .to_owned();
                (e.kind, what)
            })
            .collect()
    }

    #[test]
    fn misbehaving_agents_are_contained_and_audited() {
        let t = tempfile::tempdir().unwrap();
        let (main, main_head) = main_repo(t.path());
        let worktrees = t.path().join("worktrees");
        let h = Harness {
            fence: test_fence(&main, &worktrees),
            ledger: BudgetLedger::in_memory(BudgetConfig {
                per_task: Limits {
                    tokens: Some(10_000),
                    ..Limits::default()
                },
                ..BudgetConfig::default()
            }),
            crossing: Crossing::new(Canaries(vec![CANARY.into()])),
            log: AuditLog::for_run(t.path(), "r1").unwrap(),
            main: main.clone(),
            worktrees: worktrees.clone(),
        };
        for (task, req, script) in TASKS {
            h.run(task, req, script);
        }

        let entries = super::audit::read(h.log.path()).unwrap();
        let stops = |task: &str| stops(&entries, task);
        assert_eq!(
            stops("T1"),
            vec![(AuditKind::PolicyHit, "timed_out".into())]
        );
        assert_eq!(
            stops("T2"),
            vec![(AuditKind::PolicyHit, "output_capped".into())]
        );
        // The watched directories are mounted read-only for the agent: the write is refused.
        assert_eq!(
            stops("T3"),
            vec![(AuditKind::PolicyHit, "outside_write_refused".into())]
        );
        assert!(!main.join("evil.txt").exists());
        // The `.git` file is bound read-only: the removal is refused (`EBUSY`) and reported.
        assert_eq!(
            stops("T4"),
            vec![(AuditKind::PolicyHit, "outside_write_refused".into())]
        );
        assert!(worktrees.join("T4/.git").is_file());
        assert_eq!(stops("T5"), vec![]);
        assert_eq!(stops("T6"), vec![(AuditKind::Leak, String::new())]);
        assert_eq!(stops("T7"), vec![(AuditKind::BudgetStop, "tokens".into())]);
        assert_eq!(stops("T8"), vec![]);
        // Each entry is tied to its task's requirement.
        assert!(
            entries.iter().all(
                |e| e.requirements == vec![format!("REQ-{}", &e.task.as_deref().unwrap()[1..])]
            )
        );
        // The over-budget task is blocked; the others can go on.
        assert!(matches!(
            h.ledger.reserve("T7", Spend::default()),
            Err(FenceError::BudgetExceeded(_))
        ));
        h.ledger
            .release(h.ledger.reserve("T8", Spend::tokens(10)).unwrap())
            .unwrap();
        assert!(worktrees.join("T8/done.txt").is_file());
        // Main's branch never moved, and the log is intact.
        assert_eq!(git(&main, &["rev-parse", "main"]), main_head);
        assert!(verify(h.log.path()).unwrap().intact());
    }
}
