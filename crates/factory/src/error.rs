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
    /// The outcome report could not be written or read.
    #[error(transparent)]
    Report(crate::report::ReportError),
    /// `lightsout.toml` is missing or invalid.
    #[error("{0}")]
    Config(String),
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
    /// The holdout directory lies inside the repository or a worktree.
    #[error(
        "the holdout directory {holdout} is inside {root}; agents could read it. Move it outside \
         the repository (a sibling folder) and point [holdout] path or LIGHTSOUT_HOLDOUT at it"
    )]
    HoldoutInRepo {
        /// The holdout directory, canonical.
        holdout: PathBuf,
        /// The repository or worktree containing it, canonical.
        root: PathBuf,
    },
    /// The specs cannot be planned.
    #[error("plan: {0}")]
    Plan(String),
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
    /// A journal line is not an entry, or an entry could not be serialised; the message
    /// names the journal and the line, the source is the JSON error.
    #[error(transparent)]
    JournalEntry(lightsout_journal::Error),
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
    /// A stage adapter (a [`lightsout_core`] trait implemented outside this crate) failed
    /// with an error of its own, kept as the source.
    #[error(transparent)]
    Adapter(lightsout_core::BoxError),
}

/// An adapter's boxed error: the factory's own errors come back as they were (a memory stage
/// that failed with [`Error::Stage`] is still that), and so do those of `lightsout-adapters`
/// and the fence (as their variants here); anything else is [`Error::Adapter`].
impl From<lightsout_core::BoxError> for Error {
    fn from(e: lightsout_core::BoxError) -> Self {
        let e = match e.downcast::<Error>() {
            Ok(own) => return *own,
            Err(e) => e,
        };
        let e = match e.downcast::<lightsout_adapters::Error>() {
            Ok(adapter) => return Error::from(*adapter),
            Err(e) => e,
        };
        match e.downcast::<lightsout_fence::FenceError>() {
            Ok(fence) => Error::Fence(*fence),
            Err(other) => Error::Adapter(other),
        }
    }
}

/// The adapters' errors are the factory's variants of the same name, message for message.
impl From<lightsout_adapters::Error> for Error {
    fn from(e: lightsout_adapters::Error) -> Self {
        use lightsout_adapters::Error as A;
        match e {
            A::Config(m) => Error::Config(m),
            A::Eval(m) => Error::Eval(m),
            A::Io {
                action,
                path,
                source,
            } => Error::Io {
                action,
                path,
                source,
            },
            A::Fence(e) => Error::Fence(e),
            A::Git(e) => Error::from(e),
            other => Error::Adapter(Box::new(other)),
        }
    }
}

/// The journal's errors keep their message: `Io` is [`Error::Io`], the others
/// [`Error::JournalEntry`] (with their JSON error as the source).
impl From<lightsout_journal::Error> for Error {
    fn from(e: lightsout_journal::Error) -> Self {
        match e {
            lightsout_journal::Error::Io {
                action,
                path,
                source,
            } => Error::Io {
                action,
                path,
                source,
            },
            other => Error::JournalEntry(other),
        }
    }
}

/// The report's errors about a run directory keep their variant and message; the others are
/// [`Error::Report`].
impl From<crate::report::ReportError> for Error {
    fn from(e: crate::report::ReportError) -> Self {
        use crate::report::ReportError;
        match e {
            ReportError::UnknownRun(id) => Error::UnknownRun(id),
            ReportError::Io {
                action,
                path,
                source,
            } => Error::Io {
                action,
                path,
                source,
            },
            ReportError::Journal { path, message } => Error::Journal { path, message },
            ReportError::JournalEntry(e) => Error::JournalEntry(e),
            other => Error::Report(other),
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

/// The git crate's errors are the factory's variants of the same name, message for message.
impl From<lightsout_git::Error> for Error {
    fn from(e: lightsout_git::Error) -> Self {
        match e {
            lightsout_git::Error::Git { args, dir, stderr } => Error::Git { args, dir, stderr },
            lightsout_git::Error::Io {
                action,
                path,
                source,
            } => Error::Io {
                action,
                path,
                source,
            },
            other => Error::Stage {
                stage: "git",
                message: other.to_string(),
            },
        }
    }
}

/// The config crate's errors are the factory's variants of the same name, message for message.
impl From<lightsout_config::Error> for Error {
    fn from(e: lightsout_config::Error) -> Self {
        match e {
            lightsout_config::Error::Config(m) => Error::Config(m),
            lightsout_config::Error::HoldoutInRepo { holdout, root } => {
                Error::HoldoutInRepo { holdout, root }
            }
            other => Error::Config(other.to_string()),
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
}
