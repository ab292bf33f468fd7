//! The `lightsout` binary: argument parsing and wiring only. Pipeline logic lives in the
//! `lightsout-*` library crates.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI prints by design

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod cmd;

/// mimalloc instead of the system allocator: reading a spec allocates a few thousand small
/// strings (ids, statements, steps), and against glibc malloc mimalloc takes 19% off the
/// parse time of the 43 KB Kiro corpus spec (`benches/spec.rs`, which runs both its sides
/// with it, as this binary does).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Lightsout: run a dark software factory from a spec.
///
/// Exit codes: 0 success / ready / gate passed, 1 problems found / gate failed,
/// 2 usage, I/O or infrastructure error.
#[derive(Debug, Parser)]
#[command(name = "lightsout", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scaffold a project: lightsout.toml, a spec template, a holdout directory beside the
    /// repository, .gitignore. Refuses to overwrite files without --force.
    Init(cmd::init::InitArgs),
    /// Check, show, diff specs and print the spec JSON Schema.
    #[command(subcommand)]
    Spec(cmd::spec::SpecCommand),
    /// Digital twins of third-party services: list, serve, record, drift, import-openapi.
    #[command(subcommand)]
    Twin(cmd::twin::TwinCommand),
    /// Run holdout scenarios against a target, k trials each, and judge the gate.
    Eval(cmd::eval::EvalArgs),
    /// Measure the holdout's strength: mutants of a passing build (cosmic-ray, cargo-mutants),
    /// each judged by the holdout; kill rate, Wilson interval and survivors. Exit 0 measured,
    /// 1 below --min-kill-rate, 2 tool or infrastructure error.
    Strength(cmd::strength::StrengthArgs),
    /// The task graph of specs and task lists: waves, critical path, ready tasks, impact.
    Plan(cmd::plan::PlanArgs),
    /// Decision memory: add, supersede, search, context packs, diff guards, import/export.
    Memory(cmd::memory::MemoryArgs),
    /// Run the factory: agents build the specs' tasks on worktrees, the holdout judges, the
    /// merge queue merges; ends with the gate verdict and report.html. Exit 0 all merged and
    /// the gate not failed, 1 some task or the gate failed, 2 infrastructure error.
    Run(cmd::run::RunArgs),
    /// The spec queue: `queue add SPEC...`, `list`, `remove ID...`, `stop`; `lightsout run
    /// --queue` builds it one spec after another, each in a run with its own report.
    #[command(subcommand)]
    Queue(cmd::queue::QueueCommand),
    /// Write the outcome report of a run (report.html for people, report.json for programs)
    /// and print the gate verdict. Exit 0 gate passed or not evaluated, 1 gate failed.
    Report(cmd::report::ReportArgs),
    /// Replay a finished run offline from what it recorded (its commits and its twins'
    /// exchanges; no agent is called) and compare each evaluation with the run. Exit 0 same
    /// verdict, 1 the first difference, 2 the run cannot be replayed.
    Replay(cmd::replay::ReplayArgs),
    /// Configuration: `config check` prints lightsout.toml as resolved, with where each value
    /// came from.
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
    /// Agents: the adapter contract's schemas (`agent schema`) and `agent check PROFILE`.
    #[command(subcommand)]
    Agent(cmd::agent::AgentCommand),
    /// Prune old runs: their worktrees, `lightsout/<run>/*` branches, the refs that keep
    /// their attempt commits (`refs/lightsout/<run>/`) and their run directories, older than
    /// `--older-than DAYS` or `[gc] keep_days` (30). Main and the input keys are kept.
    Gc(cmd::gc::GcArgs),
    /// Verify and show the hash-chained audit log of a run.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// Roll up the run-metrics store (.lightsout/state.db; an older run's
    /// .lightsout/metrics.jsonl is imported once) per variant and task kind: first-attempt pass and
    /// merge rates with Wilson 95% intervals, median and quartiles of USD and wall time,
    /// USD per merged task, failure categories.
    Metrics(cmd::tune::MetricsArgs),
    /// The tuner: posteriors of the declared [[tuning.variant]]s, the next pick, promotions.
    #[command(subcommand)]
    Tune(cmd::tune::TuneCommand),
    /// One worker of a fleet: claims tasks from a shared store (`--store postgres://…` or a
    /// `SQLite` file) with leases and fencing tokens, `--jobs N` at once, and builds each with
    /// the factory on its own clone of `--repo REMOTE`, merging into the remote's main (the
    /// plans come from `lightsout run --store`), or runs the command after `--` for each, until
    /// none is left; `worker enqueue RUN TASK...` and `worker status RUN` feed and show a run.
    /// Exit 0 all done, 1 some task failed or its claim was lost.
    Worker(cmd::worker::WorkerArgs),
    /// The fleet as its shared store sees it now: workers (from their live leases), each
    /// run's leases with the time left, tasks by status (blocked, ready, claimed, done,
    /// failed) and the critical path of what remains. `--store postgres://…` or a `SQLite`
    /// file, `--run RUN`, `--format text|json`.
    Status(cmd::status::StatusArgs),
}

impl Command {
    /// Whether the command only reads and prints (no child processes, no sockets).
    fn only_prints(&self) -> bool {
        matches!(
            self,
            Self::Spec(_)
                | Self::Plan(_)
                | Self::Memory(_)
                | Self::Report(_)
                | Self::Audit(_)
                | Self::Queue(_)
                | Self::Metrics(_)
                | Self::Tune(_)
        )
    }
}

fn main() -> ExitCode {
    // Inside a sandbox, this binary is first the fence's sandbox entry (lifeline check and
    // Landlock, then `exec` of the agent's program); see `lightsout_fence::entry`.
    let mut args = std::env::args_os().skip(1);
    if args
        .next()
        .is_some_and(|a| a == lightsout_fence::entry::ENTRY_ARG)
    {
        return lightsout_fence::entry::main(args);
    }
    if let Ok(exe) = std::env::current_exe() {
        lightsout_fence::entry::set_program(exe);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if cli.command.only_prints() {
        // `lightsout audit show RUN | head` must end quietly when the reader goes away, as
        // `cat` does, not panic in `println!`. Only for commands that print and exit: the
        // factory, twins and evaluator write to agents' and services' pipes and sockets,
        // where a peer closing early must be an error they handle, never a fatal signal.
        sigpipe::reset();
    }
    let result = match cli.command {
        Command::Init(a) => cmd::init::run(&a),
        Command::Spec(c) => cmd::spec::run(c),
        Command::Twin(c) => cmd::twin::run(c),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Strength(a) => cmd::strength::run(a),
        Command::Plan(a) => cmd::plan::run(a),
        Command::Memory(a) => cmd::memory::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Queue(c) => cmd::queue::run(c),
        Command::Report(a) => cmd::report::run(&a),
        Command::Replay(a) => cmd::replay::run(&a),
        Command::Audit(c) => cmd::audit::run(c),
        Command::Agent(c) => cmd::agent::run(&c),
        Command::Config(c) => cmd::config::run(c),
        Command::Metrics(a) => cmd::tune::metrics(a),
        Command::Tune(c) => cmd::tune::run(c),
        Command::Gc(a) => cmd::gc::run(&a),
        Command::Worker(a) => cmd::worker::run(a),
        Command::Status(a) => cmd::status::run(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
