//! This crate provides the Lightsout eval engine: holdout scenarios run from the outside
//! against the built software, satisfaction measured over k trials with a Wilson interval,
//! pass@k and pass^k, a gate that returns a verdict with reasons, redacted feedback for agents,
//! and leak detection for holdout text.
//!
//! # Brief overview
//! - [`Suite::load_dir`] reads `*.scenario.md` (pulldown-cmark) and `*.feature` (`gherkin`)
//!   files, resolving every step against a [`StepLibrary`]; an unknown step is an `LS501`
//!   diagnostic that names the nearest known step. The format is described in
//!   `design/scenario-format.md`.
//! - [`StepLibrary::builtin`] holds the built-in steps ([`builtin`] lists them): target
//!   lifecycle, HTTP requests and assertions (status, headers, JSON path, body, latency),
//!   process runs, captured variables (`as {name}`), twin state and journal checks through the
//!   `/__twin/` control API, load (HDR histogram) and adversarial (malformed variants) checks.
//!   Register custom steps with [`StepLibrary::register`] / [`StepLibrary::register_fn`].
//! - [`Runner::run`] starts the target ([`TargetConfig`]: a URL, or a command with `{port}`
//!   run in its own process group and always killed), runs k trials per scenario under the
//!   sequential gate ([`stats::sequential`]), and returns a [`RunResult`] (versioned JSON,
//!   Run → Scenario → Trial → Step) carrying the [`GateVerdict`] of a [`GatePolicy`].
//! - [`twins`] reads each twin's drift lifecycle (`GET /__twin/lifecycle`): a scenario resting
//!   on a suspect twin is weakened, on a drifted one fails the gate, and one needing a retired
//!   twin is stopped with the reason ([`RunResult::weakened`] lists them per requirement).
//! - [`report`] renders `JUnit` XML, a markdown summary and the redacted [`feedback`];
//!   [`LeakScanner`] finds canaries, distinctive literals, verbatim runs and near copies of
//!   scenario text in prompts, diffs and feedback, in any case, Unicode form or punctuation,
//!   and never flags what the allowed (visible) texts also hold.
//! - [`evaluate`] does all of it in one call, for the factory.
//! - [`strength::measure`] measures how strong a holdout is: mutants of a passing build
//!   (`cosmic-ray`, `cargo-mutants`) judged by the holdout, the kill rate with its Wilson
//!   interval and the survivors, for the humans who own the holdout.
//! - The `testing` module (feature `testing`) has `ScriptedStep`, a step with scripted
//!   outcomes, to simulate passing, failing and flaky scenarios without a target.
//!
//! Statistics follow Wilson (1927), Chen et al. (2021) and Yao et al. (2024); see [`stats`].
//! Gate rules take the shape of `lightsout_spec::GateRule`.
//!
//! # Example
//! ```
//! use lightsout_eval::{LeakScanner, StepLibrary, Suite, stats};
//! use std::path::Path;
//!
//! let lib = StepLibrary::builtin();
//! let mut suite = Suite::default();
//! let mut diags = Vec::new();
//! suite.add_source(
//!     Path::new("get.scenario.md"),
//!     "<!-- canary: c-7f3e9a -->\n## Scenario: echo the query\nSatisfies: REQ-1\n\n\
//!      - **WHEN** I send `GET /get?x=1`\n- **THEN** the status is 200\n\
//!      - **AND** the JSON at `$.args.x` is \"1\"\n",
//!     &mut diags,
//! );
//! diags.extend(suite.resolve(&lib));
//! assert!(diags.is_empty());
//! assert!(suite.is_resolved());
//!
//! // 5 of 5 trials: Wilson 95% lower bound 5 / (5 + 1.96²) ≈ 0.566.
//! let ci = stats::wilson95(5, 5);
//! assert!((ci.low - 0.5655).abs() < 1e-3);
//!
//! // The canary is found wherever it is pasted, in any case.
//! let leaks = LeakScanner::from_suite(&suite).scan("see C-7F3E9A in the prompt");
//! assert_eq!(leaks.len(), 1);
//! ```

#![deny(missing_docs)]

pub mod adversarial;
pub mod builtin;
pub mod evaluator;
pub mod gate;
pub mod leak;
pub mod report;
pub mod result;
pub mod runner;
pub mod scenario;
pub mod stats;
pub mod steps;
pub mod strength;
pub mod target;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod twins;
pub mod world;

pub use evaluator::{EvalRequest, Evaluator, StrengthRequest};
pub use gate::{
    GatePolicy, GateReason, GateStatus, GateVerdict, PolicyLayer, PolicyRule, StrengthEvidence,
};
pub use leak::{Leak, LeakKind, LeakScanner};
pub use report::{RedactLevel, feedback, junit, markdown};
pub use result::{
    Failure, FailureCategory, RunResult, SCHEMA_VERSION, ScenarioResult, StepResult, StepStatus,
    Summary, TrialResult, WeakenedEvidence, write_atomic,
};
pub use runner::{Progress, ProgressFn, RunOptions, Runner};
pub use scenario::{CheckKind, HoldoutCoverage, Scenario, ScenarioStep, Suite};
pub use steps::{StepArgs, StepFailure, StepHandler, StepLibrary};
pub use strength::{
    Judge, MutantStatus, MutationTool, StrengthConfig, StrengthOptions, StrengthProgress,
    StrengthReport, measure,
};
pub use target::{CommandTarget, TargetConfig};
pub use twins::{TwinEvidence, TwinState};
pub use world::World;

use lightsout_spec::{Diagnostic, Severity};
use std::path::Path;

/// Errors of the eval engine. Problems in scenario files are diagnostics, not errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// File-system failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// JSON (de)serialisation failure.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// HTTP client failure.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// The target could not be started or did not become ready.
    #[error("target: {0}")]
    Target(String),
    /// A step definition is broken (bad regex, example not matching).
    #[error("step definition: {0}")]
    Step(String),
    /// The suite cannot run.
    #[error("invalid suite: {0}")]
    InvalidSuite(String),
    /// The gate policy or a redaction level is invalid.
    #[error("gate policy: {0}")]
    Policy(String),
    /// A result document has another schema version.
    #[error("result schema: {0}")]
    Schema(String),
    /// `JUnit` serialisation failed.
    #[error("junit: {0}")]
    Junit(String),
    /// Measuring suite strength failed: the mutation tool is missing or failed, or the holdout
    /// does not pass on the unmutated build (the message says which and what to do).
    #[error("suite strength: {0}")]
    Mutation(String),
}

/// Everything the factory needs from one evaluation.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The full result document (holdout text included: keep it away from agents).
    pub run: RunResult,
    /// The gate's verdict (same as `run.gate`).
    pub verdict: GateVerdict,
    /// The feedback text, redacted at the requested level.
    pub feedback: String,
    /// Load diagnostics (warnings; errors abort before running).
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads the suite in `dir`, runs it against `target` with `opts`, and returns the result,
/// the verdict and the feedback redacted at `redact`.
///
/// # Errors
/// [`Error::InvalidSuite`] when loading produced error diagnostics (they are in the message),
/// plus the errors of [`Suite::load_dir`] and [`Runner::run`].
pub async fn evaluate(
    dir: &Path,
    target: &TargetConfig,
    opts: &RunOptions,
    redact: RedactLevel,
) -> Result<Evaluation, Error> {
    let library = StepLibrary::builtin();
    let (suite, diagnostics) = Suite::load_dir(dir, &library)?;
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| {
            format!(
                "{}:{}:{}: {} {} ({})",
                d.path.as_deref().unwrap_or(Path::new("?")).display(),
                d.span.line,
                d.span.column,
                d.code,
                d.message,
                d.help
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(Error::InvalidSuite(errors.join("\n")));
    }
    let runner = Runner::new(library)?;
    let run = runner.run(&suite, target, opts).await?;
    Ok(Evaluation {
        verdict: run.gate.clone(),
        feedback: feedback(&run, redact),
        run,
        diagnostics,
    })
}
