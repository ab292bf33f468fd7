//! Fence overheads, each beside its baseline in the same run:
//! - one agent process: `std::process::Command::output` vs `Fence::run` unsandboxed (limits,
//!   env allowlist, group kill), vs `Fence::run` in the bubblewrap sandbox (user, PID, IPC
//!   and UTS namespaces, read-only root, seccomp filter) with the factory's network, vs the
//!   sandbox with a network namespace (the default), vs the full fence of `lightsout run`
//!   (plus the sandbox entry: lifeline check and Landlock; needs the release `lightsout`
//!   binary beside the bench), vs the sandbox with a watched tree of 1,000 and 10,000 files
//!   (two snapshots per call);
//! - audit: a plain JSONL append + `fdatasync` vs `AuditLog::append` (hash chain + head);
//!   `verify` of 10,000 entries;
//! - budget: a `Mutex<u64>` add vs `reserve` + `settle`;
//! - the process cap (`[fence] max_processes`, needs a writable cgroup `pids` controller:
//!   root): `mkdir` + `rmdir` of a plain directory vs creating a call's cgroup with
//!   `pids.max` and emptying and removing it; the sandboxed `Fence::run(true)` without and
//!   with the cap.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use lightsout_fence::audit::{self, AuditKind, AuditLog, AuditRecord};
use lightsout_fence::budget::{BudgetConfig, BudgetLedger, Limits, Spend};
use lightsout_fence::policy::{Fence, FenceConfig, NetworkMode};
use std::hint::black_box;
use std::io::Write as _;
use std::time::Duration;

fn tree(files: usize) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for i in 0..files {
        let d = t.path().join(format!("d{}", i / 100));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i}.rs")), b"fn main() {}\n").unwrap();
    }
    t
}

fn process(c: &mut Criterion) {
    let wt = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("fence/process");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    g.bench_function("baseline std Command::output(true)", |b| {
        b.iter(|| {
            std::process::Command::new("true")
                .current_dir(wt.path())
                .output()
                .unwrap()
        });
    });
    let plain = Fence::new(FenceConfig {
        private_pids: false,
        network: NetworkMode::Inherit,
        ..FenceConfig::default()
    })
    .unwrap();
    g.bench_function("Fence::run(true)", |b| {
        b.iter(|| {
            let cmd = plain.command("true", [""; 0], wt.path()).unwrap();
            plain.run(cmd, None, wt.path()).unwrap()
        });
    });
    let inherit = Fence::new(FenceConfig {
        network: NetworkMode::Inherit,
        ..FenceConfig::default()
    })
    .unwrap();
    g.bench_function(
        "Fence::run(true) bubblewrap sandbox, network=inherit",
        |b| {
            b.iter(|| {
                let cmd = inherit.command("true", [""; 0], wt.path()).unwrap();
                inherit.run(cmd, None, wt.path()).unwrap()
            });
        },
    );
    let netns = Fence::new(FenceConfig::default()).unwrap();
    g.bench_function("Fence::run(true) bubblewrap sandbox + network=none", |b| {
        b.iter(|| {
            let cmd = netns.command("true", [""; 0], wt.path()).unwrap();
            netns.run(cmd, None, wt.path()).unwrap()
        });
    });
    // The full fence of `lightsout run` (the default): the sandbox entry of the release
    // `lightsout` binary beside this bench (`cargo build --release -p lightsout-cli`) checks
    // the lifeline and applies Landlock before the program.
    let exe = std::env::current_exe().unwrap();
    let entry = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|d| d.join("lightsout"))
        .filter(|p| p.is_file());
    if let Some(entry) = entry {
        lightsout_fence::entry::set_program(entry);
        let full = Fence::new(FenceConfig::default()).unwrap();
        let landlock = lightsout_fence::sandbox::landlock();
        g.bench_function(
            format!(
                "Fence::run(true) full fence: sandbox + network=none + entry (Landlock {landlock:?})"
            ),
            |b| {
                b.iter(|| {
                    let cmd = full.command("true", [""; 0], wt.path()).unwrap();
                    full.run(cmd, None, wt.path()).unwrap()
                });
            },
        );
    }
    for n in [1_000usize, 10_000] {
        let watched = tree(n);
        let fence = Fence::new(FenceConfig {
            watch: vec![watched.path().to_path_buf()],
            ..FenceConfig::default()
        })
        .unwrap();
        g.bench_function(format!("Fence::run(true) watching {n} files"), |b| {
            b.iter(|| {
                let cmd = fence.command("true", [""; 0], wt.path()).unwrap();
                fence.run(cmd, None, wt.path()).unwrap()
            });
        });
    }
    g.finish();
}

fn audit_log(c: &mut Criterion) {
    let mut g = c.benchmark_group("fence/audit");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    let t = tempfile::tempdir().unwrap();
    let details = serde_json::json!({"agent": "claude", "attempt": 1, "tokens": 1234, "usd": 0.02});
    let line = format!(
        "{}\n",
        serde_json::json!({"kind": "agent_call", "task": "T1", "details": details})
    );
    let mut plain = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(t.path().join("plain.jsonl"))
        .unwrap();
    g.bench_function("baseline JSONL append + fdatasync", |b| {
        b.iter(|| {
            plain.write_all(line.as_bytes()).unwrap();
            plain.sync_data().unwrap();
        });
    });
    let log = AuditLog::for_run(t.path(), "bench").unwrap();
    g.bench_function("AuditLog::append (chain + fsync + atomic head)", |b| {
        b.iter(|| {
            log.append(AuditRecord::new(
                AuditKind::AgentCall,
                Some("T1"),
                &["REQ-1"],
                details.clone(),
            ))
            .unwrap()
        });
    });
    // A 10,000-entry log for verify, written without fsync cost by copying lines.
    let big = tempfile::tempdir().unwrap();
    let src = AuditLog::for_run(big.path(), "src").unwrap();
    for i in 0..10_000u64 {
        src.append(AuditRecord::new(
            AuditKind::Check,
            Some("T1"),
            &["REQ-1"],
            serde_json::json!({"i": i}),
        ))
        .unwrap();
    }
    g.bench_function("verify 10,000 entries", |b| {
        b.iter(|| black_box(audit::verify(src.path()).unwrap()));
    });
    g.finish();
}

fn budget(c: &mut Criterion) {
    let mut g = c.benchmark_group("fence/budget");
    g.sample_size(30).measurement_time(Duration::from_secs(2));
    let counter = std::sync::Mutex::new(0u64);
    g.bench_function("baseline Mutex<u64> add", |b| {
        b.iter(|| *counter.lock().unwrap() += black_box(7));
    });
    let ledger = BudgetLedger::in_memory(BudgetConfig {
        per_run: Limits {
            tokens: Some(u64::MAX / 2),
            ..Limits::default()
        },
        ..BudgetConfig::default()
    });
    g.bench_function("reserve + settle (in memory)", |b| {
        b.iter(|| {
            let r = ledger.reserve("T1", Spend::tokens(10)).unwrap();
            ledger.settle(r, Spend::tokens(7)).unwrap()
        });
    });
    let t = tempfile::tempdir().unwrap();
    let persisted =
        BudgetLedger::open(BudgetConfig::default(), t.path().join("budget.json")).unwrap();
    g.bench_function(
        "reserve + settle (daily ledger file, 2 atomic writes)",
        |b| {
            b.iter(|| {
                let r = persisted.reserve("T1", Spend::tokens(10)).unwrap();
                persisted.settle(r, Spend::tokens(7)).unwrap()
            });
        },
    );
    g.finish();
}

#[allow(clippy::print_stderr)] // a bench reports why it skipped
fn process_cap(c: &mut Criterion) {
    use lightsout_fence::cgroup::CgroupRoot;
    let root = match CgroupRoot::detect() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fence/cgroup skipped: {e}");
            return;
        }
    };
    let mut g = c.benchmark_group("fence/cgroup");
    g.sample_size(50).measurement_time(Duration::from_secs(3));
    let plain = tempfile::tempdir().unwrap();
    g.bench_function("baseline mkdir + rmdir (tmp)", |b| {
        b.iter(|| {
            let d = plain.path().join("d");
            std::fs::create_dir(&d).unwrap();
            std::fs::remove_dir(&d).unwrap();
        });
    });
    g.bench_function("CgroupRoot::create(pids.max) + Cgroup::remove", |b| {
        b.iter(|| {
            root.create(black_box(16))
                .unwrap()
                .remove(Duration::from_secs(1))
                .unwrap();
        });
    });
    g.finish();
    let wt = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("fence/process-cap");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for (name, cap) in [
        ("Fence::run(true) sandbox, no cap", None),
        ("Fence::run(true) sandbox + max_processes", Some(64)),
    ] {
        let fence = Fence::new(FenceConfig {
            max_processes: cap,
            ..FenceConfig::default()
        })
        .unwrap();
        g.bench_function(name, |b| {
            b.iter(|| {
                let cmd = fence.command("true", [""; 0], wt.path()).unwrap();
                fence.run(cmd, None, wt.path()).unwrap()
            });
        });
    }
    g.finish();
}

criterion_group!(benches, process, audit_log, budget, process_cap);
criterion_main!(benches);
