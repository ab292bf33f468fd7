//! `lightsout spec ...`.

use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

/// `lightsout spec` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum SpecCommand {
    /// Check specs for readiness.
    Check {
        /// Spec files or directories to search for specs.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

pub(crate) fn run(cmd: SpecCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SpecCommand::Check { paths } => {
            anyhow::bail!("spec check is not built yet ({} paths given)", paths.len())
        }
    }
}
