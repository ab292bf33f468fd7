//! This crate provides the factory's self-tuning inside a declared fence: the roll-up of run
//! metrics, the variants a human declares in `[tuning]`, and the choice among them from
//! evidence.
//!
//! # Brief overview
//! - [`record`]: one line of `.lightsout/metrics.jsonl` ([`AttemptMetrics`]), read in every
//!   version the factory has written.
//! - [`rollup`]: [`Rollup`] per variant and task kind, with Wilson 95% intervals
//!   ([`lightsout_eval::stats::Interval`]) on rates and [`Quantiles`] on cost, tokens and time
//!   (`lightsout metrics`).
//! - [`config`]: `[tuning]` and `[[tuning.variant]]` ([`TuningConfig`]), strict, with no way to
//!   reach the holdout, the gate, the budgets or the fence.
//! - [`select`]: the constrained Thompson-sampling [`Bandit`] and its promotion test.
//! - [`choose`]: a run's choices, one per task of a tuned kind, reproducible from the
//!   recorded seed and evidence.
//! - [`state`]: `.lightsout/tuning.json`, the promoted defaults.
//! - [`store`]: the run-metrics store, a table of the project's state database
//!   (`.lightsout/state.db`), which imports the older `metrics.jsonl` once.
//! - [`show`]: `lightsout tune show`.
//! - [`proposal`]: prompt rewrites written by an agent from lessons and redacted failure
//!   categories, proposed until a human accepts them.
//! - [`sim`]: replay agents of known quality, to measure convergence and regret.
//!
//! The crate knows nothing of git, agents, processes or the holdout: it reads metrics lines
//! and a config, and returns variant names with reasons.
//!
//! # Example
//! ```
//! use lightsout_tune::{config, rollup, select::{Bandit, RunExploration}};
//! use rand::SeedableRng as _;
//!
//! let toml = r#"
//! [agent.claude]
//! preset = "claude-code"
//! [tuning]
//! incumbent = "a"
//! [tuning.bounds]
//! kinds = ["code"]
//! [[tuning.variant]]
//! name = "a"
//! agent = "claude"
//! [[tuning.variant]]
//! name = "b"
//! agent = "claude"
//! model = "cheaper"
//! "#;
//! let cfg = config::load(toml).unwrap().unwrap();
//! let lines = r#"{"run_id":"r","task_id":"T1","attempt":1,"agent":"claude-code","usage":{"input_tokens":900,"output_tokens":100,"cost_usd":1.0,"wall_ms":30000},"passed":true,"task_kind":"code","variant":"a"}"#;
//! let (records, _) = lightsout_tune::record::parse_jsonl(lines);
//! let r = rollup::rollup(&records);
//! assert_eq!(r.group("a", "code").unwrap().first_attempt_pass.successes, 1);
//! let bandit = Bandit::from_rollup(&cfg, &r);
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
//! let pick = bandit.pick("code", &mut RunExploration::new(0.5, 10), &mut rng);
//! assert_eq!(pick.variant, "b"); // b has never been tried: it is tried once first
//! ```

#![deny(missing_docs)]

pub mod choose;
pub mod config;
pub mod proposal;
pub mod record;
pub mod rollup;
pub mod select;
pub mod show;
pub mod sim;
pub mod state;
pub mod store;

pub use config::TuningConfig;
pub use record::AttemptMetrics;
pub use rollup::{Quantiles, Rate, Rollup};
pub use select::Bandit;

use std::path::PathBuf;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `[tuning]` is invalid; the message lists every problem, one per line.
    #[error("{0}")]
    Config(String),
    /// `.lightsout/tuning.json` is not a tuning state.
    #[error("{}: not a tuning state: {message}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}
