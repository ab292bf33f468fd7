//! `lightsout eval`: run a holdout suite against a target and judge the gate. Wiring only; the
//! engine is `lightsout-eval`.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use lightsout_eval::{
    CommandTarget, GatePolicy, GateStatus, PolicyLayer, Progress, RedactLevel, RunOptions,
    RunResult, Runner, StepLibrary, Suite, TargetConfig,
};
use lightsout_spec::Severity;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Output format on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// One line per scenario and the gate's reasons.
    Human,
    /// The versioned result document.
    Json,
}

/// Redaction level of the feedback file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Redact {
    /// Nothing hidden (for humans only).
    None,
    /// Requirement ids and failure categories; never scenario text (default).
    Requirement,
    /// Failure categories only.
    Category,
    /// The verdict only.
    Full,
}

/// Run holdout scenarios against a target, k trials each, and judge the gate.
///
/// Exit codes: 0 gate passed, 1 gate failed or insufficient evidence, 2 invalid scenarios or
/// infrastructure error, 3 the target did not start or answer its readiness probe.
#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// Directory of `*.scenario.md` and `*.feature` files (searched recursively).
    #[arg(long, value_name = "DIR")]
    scenarios: PathBuf,
    /// Run only the scenarios that satisfy these requirement ids (repeatable, or separated by
    /// commas or spaces); the gate judges only them. Default: every scenario.
    #[arg(long = "requirement", value_name = "ID")]
    requirements: Vec<String>,
    /// Command that starts the target; `{port}` becomes a free loopback port.
    #[arg(
        long,
        value_name = "CMD",
        required_unless_present = "url",
        conflicts_with = "url"
    )]
    target: Option<String>,
    /// Base URL of an already-running target.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Path probed with GET until the target answers below 500.
    #[arg(long, default_value = "/", value_name = "PATH")]
    ready_path: String,
    /// Seconds to wait for the target to become ready.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    ready_timeout: u64,
    /// A twin: NAME=URL (repeatable); reset before every trial. Its drift lifecycle is read
    /// from `URL/__twin/lifecycle`: the scenarios resting on a suspect twin are weakened, on a
    /// drifted one fail the gate, and those needing a retired one are stopped (the result's
    /// `twins` and each scenario's `stale_twins` say which).
    #[arg(long = "twin", value_name = "NAME=URL")]
    twins: Vec<String>,
    /// Trials per scenario (k).
    #[arg(long, default_value_t = 1, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    trials: u32,
    /// Cap on trials per scenario for the sequential gate (default: --trials, or the trials the
    /// gate's rules ask for when more).
    #[arg(long, value_name = "N")]
    max_trials: Option<u32>,
    /// Gate policy: a TOML or YAML file, or a spec (`.md`) whose Verification gate rules
    /// apply (repeatable). Every rule of every file is kept, with `gate.toml` in the scenarios
    /// directory (when there is one) and the built-in floor (every scenario's satisfaction at
    /// least 0.95, no regressions): the strictest wins.
    #[arg(long, value_name = "FILE")]
    gate: Vec<PathBuf>,
    /// A previous result JSON; scenarios that passed every trial there form the guard bucket.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Write the result JSON here.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Write `JUnit` XML here (flaky trials as reruns).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a markdown summary here.
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
    /// Write the agent feedback file here.
    #[arg(long, value_name = "FILE")]
    feedback: Option<PathBuf>,
    /// Redaction level of the feedback file.
    #[arg(long, value_enum, default_value_t = Redact::Requirement)]
    redact: Redact,
    /// Seconds before a trial is failed as a timeout (and everything it started is killed).
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    trial_timeout: u64,
    /// Stop at the first scenario with a failing trial; the rest are not run (they are absent
    /// from the result and the gate fails). For mutation testing, where one failure decides
    /// (`lightsout strength` sets `LIGHTSOUT_FAIL_FAST=1` for holdout runners).
    #[arg(long)]
    fail_fast: bool,
}

/// The one resolved policy: each `--gate` file, then `<scenarios>/gate.toml`, then the floor.
fn policy(gates: &[PathBuf], scenarios: &Path) -> anyhow::Result<GatePolicy> {
    let mut layers = Vec::new();
    for path in gates {
        if path.extension().is_some_and(|e| e == "md") {
            let (spec, _, _) = lightsout_spec::read(path, None)
                .with_context(|| format!("reading the spec {}", path.display()))?;
            if spec.gate.is_empty() {
                bail!(
                    "{} has no Verification gate rules; add a `## Verification gate` section or pass a TOML policy",
                    path.display()
                );
            }
            layers.push(PolicyLayer::new(
                format!("spec {}", path.display()),
                GatePolicy::from_spec(&spec),
            ));
        } else {
            layers.push(PolicyLayer::new(
                path.display().to_string(),
                GatePolicy::read(path)?,
            ));
        }
    }
    let beside = scenarios.join("gate.toml");
    if beside.is_file() && !gates.iter().any(|g| same_file(g, &beside)) {
        layers.push(PolicyLayer::new(
            beside.display().to_string(),
            GatePolicy::read(&beside)?,
        ));
    }
    Ok(GatePolicy::resolve(layers)?)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn twins(args: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for t in args {
        let Some((name, url)) = t.split_once('=') else {
            bail!("--twin `{t}` is not NAME=URL");
        };
        out.insert(
            name.trim().to_owned(),
            url.trim().trim_end_matches('/').to_owned(),
        );
    }
    Ok(out)
}

fn progress_bar(scenarios: u64) -> ProgressBar {
    let bar = ProgressBar::new(scenarios);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} scenarios {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

#[allow(clippy::needless_pass_by_value)] // clap hands the arguments over by value, as every subcommand's `run`
pub(crate) fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let library = StepLibrary::builtin();
    let Some(suite) = load_suite(&args, &library)? else {
        return Ok(ExitCode::from(2));
    };
    let target = match (&args.target, &args.url) {
        (Some(cmd), _) => {
            let mut c = CommandTarget::new(cmd.clone());
            c.ready_path.clone_from(&args.ready_path);
            c.ready_timeout = Duration::from_secs(args.ready_timeout);
            TargetConfig::Command(c)
        }
        (None, Some(url)) => TargetConfig::Url(url.clone()),
        (None, None) => bail!("pass --target 'CMD {{port}}' or --url URL"),
    };
    let (opts, bar) = run_options(&args, suite.scenarios.len() as u64)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let runner = Runner::new(library)?;
    let result = runtime.block_on(async {
        tokio::select! {
            r = runner.run(&suite, &target, &opts) => r.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted; the target was stopped")),
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let run = match result {
        Ok(run) => run,
        Err(e) => {
            if let Some(lightsout_eval::Error::Target(why)) = e.downcast_ref() {
                // The service under test never answered: the build's fault, not ours (exit 3),
                // so that a holdout runner can report a failed attempt instead of an error.
                eprintln!(
                    "error: the service did not start or answer its readiness probe within {} s: {why}",
                    args.ready_timeout
                );
                return Ok(ExitCode::from(3));
            }
            return Err(e);
        }
    };
    write_outputs(&args, &run)?;
    match args.format {
        Format::Json => println!("{}", run.to_json()?),
        Format::Human => print_human(&run),
    }
    Ok(if run.gate.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The scenarios to run (those of `--requirement`, when given), their problems printed on
/// stderr; `None` when one of them is an error.
fn load_suite(args: &EvalArgs, library: &StepLibrary) -> anyhow::Result<Option<Suite>> {
    let (mut suite, diags) = Suite::load_dir(&args.scenarios, library)
        .with_context(|| format!("reading scenarios from {}", args.scenarios.display()))?;
    if !args.requirements.is_empty() {
        // Only these requirements' scenarios run and are judged, one scenario at a time (a file
        // may hold scenarios of several requirements).
        let wanted: Vec<&str> = args
            .requirements
            .iter()
            .flat_map(|r| r.split([',', ' ']))
            .filter(|r| !r.is_empty())
            .collect();
        suite
            .scenarios
            .retain(|s| s.satisfies.iter().any(|r| wanted.contains(&r.as_str())));
    }
    let mut errors = 0;
    for d in &diags {
        errors += usize::from(d.severity == Severity::Error);
        let path = d.path.as_deref().map(|p| args.scenarios.join(p));
        eprintln!(
            "{}: {} [{}] {}:{}:{}\n  help: {}",
            d.severity.as_str(),
            d.message,
            d.code,
            path.as_deref().unwrap_or(Path::new("?")).display(),
            d.span.line,
            d.span.column,
            d.help
        );
    }
    if errors > 0 {
        eprintln!("error: {errors} problem(s) in the scenarios; fix them and run again");
        return Ok(None);
    }
    if suite.scenarios.is_empty() {
        bail!(
            "no scenarios found in {}; expected *.scenario.md or *.feature files",
            args.scenarios.display()
        );
    }
    Ok(Some(suite))
}

/// The run's options (trials, timeouts, twins, gate policy, baseline, progress) and the
/// progress bar, shown when stderr is a terminal.
fn run_options(
    args: &EvalArgs,
    scenarios: u64,
) -> anyhow::Result<(RunOptions, Option<ProgressBar>)> {
    let baseline = args
        .baseline
        .as_deref()
        .map(RunResult::read)
        .transpose()
        .context("reading the baseline")?;
    let show_progress = std::io::stderr().is_terminal();
    let bar = show_progress.then(|| progress_bar(scenarios));
    let progress = bar.clone().map(|bar| {
        let f: lightsout_eval::ProgressFn = Arc::new(move |p: &Progress| match p {
            Progress::Trial {
                scenario, index, ..
            } => {
                bar.set_message(format!("{scenario} trial {}", index + 1));
            }
            Progress::ScenarioDone { .. } => bar.inc(1),
            _ => {}
        });
        f
    });
    let policy = policy(&args.gate, &args.scenarios)?;
    // Without --max-trials the cap is the larger of --trials and the trials the gate asks for
    // (a rule's `trials`, or what its lower bound needs). A smaller --max-trials is honoured
    // and gives "insufficient evidence", never a pass.
    let asked = policy.max_trials_needed().unwrap_or(0);
    let opts = RunOptions {
        trials: args.trials,
        max_trials: args
            .max_trials
            .unwrap_or(args.trials.max(asked))
            .max(args.trials),
        trial_timeout: Duration::from_secs(args.trial_timeout.max(1)),
        step_timeout: Duration::from_secs(args.trial_timeout.clamp(1, 30)),
        twins: twins(&args.twins)?,
        policy,
        baseline,
        progress,
        fail_fast: args.fail_fast,
    };
    Ok((opts, bar))
}

/// Writes the result files asked for: JSON, `JUnit` XML, markdown summary, agent feedback.
fn write_outputs(args: &EvalArgs, run: &RunResult) -> anyhow::Result<()> {
    if let Some(path) = &args.output {
        lightsout_eval::write_atomic(path, run.to_json()?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        lightsout_eval::write_atomic(path, lightsout_eval::junit(run)?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.summary {
        lightsout_eval::write_atomic(path, lightsout_eval::markdown(run).as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.feedback {
        let level = match args.redact {
            Redact::None => RedactLevel::None,
            Redact::Requirement => RedactLevel::Requirement,
            Redact::Category => RedactLevel::Category,
            Redact::Full => RedactLevel::Full,
        };
        lightsout_eval::write_atomic(path, lightsout_eval::feedback(run, level).as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn print_human(run: &RunResult) {
    for s in &run.scenarios {
        let st = &s.stats;
        let mark = if st.flaky {
            "FLAKY"
        } else if st.passes == st.trials {
            "pass "
        } else {
            "FAIL "
        };
        let reg = if s.regression { " REGRESSION" } else { "" };
        println!(
            "{mark} {} {} [{}] {}: {}/{} satisfaction {:.3} wilson95 [{:.3}, {:.3}]{reg}",
            s.id,
            s.kind.as_str(),
            s.satisfies.join(","),
            s.name,
            st.passes,
            st.trials,
            st.satisfaction,
            st.wilson.low,
            st.wilson.high
        );
        if let Some(f) = s
            .trials
            .iter()
            .find(|t| !t.passed)
            .and_then(|t| t.steps.iter().find_map(|x| x.failure.as_ref()))
        {
            println!("      {:?}: {}", f.category, f.message);
        }
    }
    let sm = &run.summary;
    println!(
        "\n{} scenarios, {} trials, {:.1} s: {} passed, {} failed, {} flaky, {} regressions; suite satisfaction {:.3}",
        sm.scenarios,
        sm.trials,
        run.duration_ms / 1000.0,
        sm.passed,
        sm.failed,
        sm.flaky,
        sm.regressions,
        sm.satisfaction
    );
    for t in &run.twins {
        println!("{}", t.describe());
    }
    for w in run.weakened() {
        println!(
            "  weakened: {} rests on twin {} ({}) via {}",
            w.requirement,
            w.twin.name,
            w.twin.state.as_str(),
            w.scenarios.join(", ")
        );
    }
    for r in &run.gate.reasons {
        let mark = match r.status {
            GateStatus::Passed => "ok  ",
            GateStatus::InsufficientEvidence => "INSUFFICIENT",
            GateStatus::Failed => "FAIL",
        };
        let from = r
            .source
            .as_deref()
            .map_or(String::new(), |s| format!(" [from {s}]"));
        println!("  {mark} {}{from}: {}", r.rule, r.detail);
    }
    println!(
        "gate {}",
        match run.gate.status {
            GateStatus::Passed => "PASSED",
            GateStatus::InsufficientEvidence => "INSUFFICIENT EVIDENCE (not passed)",
            GateStatus::Failed => "FAILED",
        }
    );
}
