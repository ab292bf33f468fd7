//! The crate's one error type.

use std::path::{Path, PathBuf};

/// Why a run could not go on. Task failures (an agent that cannot pass the holdout) are not
/// errors: they are outcomes in the run's state and report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The fence refused or stopped an action (budget, policy, holdout, audit).
    #[error(transparent)]
    Fence(#[from] lightsout_fence::FenceError),
    /// The outcome report could not be built, written or read (an unknown run, an unreadable
    /// journal or run file, a report file that cannot be written).
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// `lightsout.toml` is missing or invalid.
    #[error("{0}")]
    Config(String),
    /// `lightsout.toml` cannot be used as read by `lightsout-config` (invalid, or a holdout
    /// directory inside the repository).
    #[error(transparent)]
    ConfigFile(#[from] lightsout_config::Error),
    /// `lightsout.toml` is invalid, with the error that says how as the source: the message
    /// is the context only (`[gate] in lightsout.toml`), so that a chain printer (`anyhow`'s
    /// `{:#}`) prints the cause once.
    #[error("{context}")]
    ConfigCause {
        /// Where in the configuration.
        context: String,
        /// What is wrong there.
        #[source]
        source: lightsout_core::BoxError,
    },
    /// The specs cannot be planned.
    #[error("plan: {0}")]
    Plan(String),
    /// A git command run through `lightsout-git` failed or could not start.
    #[error(transparent)]
    GitRun(#[from] lightsout_git::Error),
    /// A git command failed.
    #[error("git {args} (in {dir}): {stderr}")]
    Git {
        /// The arguments.
        args: String,
        /// Where it ran.
        dir: PathBuf,
        /// Its stderr.
        stderr: String,
    },
    /// A file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The journal is unreadable or inconsistent.
    #[error("journal {path}: {message}")]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The journal could not be read or appended to, a line is not an entry, or an entry
    /// could not be serialised; the message names the journal (and the line), the source is
    /// the I/O or JSON error.
    #[error(transparent)]
    JournalEntry(#[from] lightsout_journal::Error),
    /// No run with that id.
    #[error("no run `{0}` in .lightsout/runs; list them with `ls .lightsout/runs`")]
    UnknownRun(String),
    /// Another `lightsout run` holds the repository.
    #[error(
        "another lightsout run is active in this repository (lock {0}); wait for it or stop it"
    )]
    Locked(PathBuf),
    /// The holdout evaluation could not run.
    #[error("holdout eval: {0}")]
    Eval(String),
    /// The holdout evaluation could not run, with the error that says why as the source: the
    /// message is the context only (`holdout eval: writing the strength report`), so that a
    /// chain printer (`anyhow`'s `{:#}`) prints the cause once.
    #[error("holdout eval: {context}")]
    EvalCause {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: lightsout_core::BoxError,
    },
    /// A stage (guard, memory, hook) failed.
    #[error("{stage}: {message}")]
    Stage {
        /// Which stage.
        stage: &'static str,
        /// What went wrong.
        message: String,
    },
    /// An agent could not be built from its profile.
    #[error(transparent)]
    Agent(#[from] lightsout_agent::Error),
    /// A stage of `lightsout-adapters` (the engine, the fence hook, the agent check, the
    /// instruction layer) failed.
    #[error(transparent)]
    Adapters(#[from] lightsout_adapters::Error),
    /// A stage adapter (a [`lightsout_core`] trait implemented outside this crate) failed
    /// with an error of its own, kept as the source.
    #[error(transparent)]
    Adapter(lightsout_core::BoxError),
}

/// An adapter's boxed error: the factory's own errors come back as they were (a memory stage
/// that failed with [`Error::Stage`] is still that), those of `lightsout-adapters` and the
/// fence as [`Error::Adapters`] and [`Error::Fence`]; anything else is [`Error::Adapter`].
impl From<lightsout_core::BoxError> for Error {
    fn from(e: lightsout_core::BoxError) -> Self {
        let e = match e.downcast::<Error>() {
            Ok(own) => return *own,
            Err(e) => e,
        };
        let e = match e.downcast::<lightsout_adapters::Error>() {
            Ok(adapter) => return Error::Adapters(*adapter),
            Err(e) => e,
        };
        match e.downcast::<lightsout_fence::FenceError>() {
            Ok(fence) => Error::Fence(*fence),
            Err(other) => Error::Adapter(other),
        }
    }
}

impl Error {
    /// [`Error::ConfigCause`] of `context` and `source`.
    pub(crate) fn config_cause(
        context: impl Into<String>,
        source: impl Into<lightsout_core::BoxError>,
    ) -> Self {
        Error::ConfigCause {
            context: context.into(),
            source: source.into(),
        }
    }

    /// [`Error::EvalCause`] of `context` and `source`.
    pub(crate) fn eval_cause(
        context: impl Into<String>,
        source: impl Into<lightsout_core::BoxError>,
    ) -> Self {
        Error::EvalCause {
            context: context.into(),
            source: source.into(),
        }
    }

    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `anyhow`'s `{:#}` prints: the message, then each source after `: `.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut next = e.source();
        while let Some(s) = next {
            out.push_str(": ");
            out.push_str(&s.to_string());
            next = s.source();
        }
        out
    }

    #[test]
    fn a_config_cause_prints_as_the_message_with_the_cause_did() {
        let cause = || lightsout_eval::GatePolicy::from_toml("[[rule]]\nmin_trials = \"x\"\n");
        let e = Error::config_cause("[gate] in lightsout.toml", cause().unwrap_err());
        assert_eq!(e.to_string(), "[gate] in lightsout.toml");
        assert_eq!(
            chain(&e),
            format!("[gate] in lightsout.toml: {}", cause().unwrap_err())
        );
    }

    #[test]
    fn an_eval_cause_prints_as_the_message_with_the_cause_did() {
        let cause = || serde_json::from_str::<u32>("x").unwrap_err();
        let e = Error::eval_cause("writing the strength report", cause());
        assert_eq!(e.to_string(), "holdout eval: writing the strength report");
        assert_eq!(
            chain(&e),
            format!("holdout eval: writing the strength report: {}", cause())
        );
    }

    /// The other crates' errors are kept whole: the message and the cause chain are theirs,
    /// as they were when the factory copied them variant by variant.
    #[test]
    fn wrapped_errors_print_as_their_crates_print_them() {
        let holdout = || lightsout_config::Error::HoldoutInRepo {
            holdout: "/r/holdout".into(),
            root: "/r".into(),
        };
        let e = Error::from(holdout());
        assert!(matches!(e, Error::ConfigFile(_)));
        assert_eq!(chain(&e), chain(&holdout()));
        assert!(
            e.to_string()
                .starts_with("the holdout directory /r/holdout is inside /r;")
        );

        let git = || lightsout_git::Error::Io {
            action: "run git",
            path: "/r".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let e = Error::from(git());
        assert_eq!(chain(&e), chain(&git()));
        assert!(chain(&e).starts_with("run git /r: "), "{}", chain(&e));

        let boxed: lightsout_core::BoxError = Box::new(lightsout_adapters::Error::Eval("x".into()));
        let e = Error::from(boxed);
        assert!(matches!(e, Error::Adapters(_)));
        assert_eq!(e.to_string(), "holdout eval: x");
    }
}
