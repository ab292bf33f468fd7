//! `lightsout agent`: the adapter contract's schemas, and `agent check` (a configured agent
//! run on a tiny built-in task inside the fence).

use clap::{Subcommand, ValueEnum};
use std::process::ExitCode;

/// `lightsout agent ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Print the JSON Schema of the adapter contract's task file (`lightsout.task/v1`) or of
    /// its usage report line (`lightsout.report/v1`); see docs/agents.md.
    Schema {
        /// Which document.
        #[arg(value_enum, default_value_t = SchemaKind::Task)]
        which: SchemaKind,
    },
}

/// The documents of the adapter contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SchemaKind {
    /// The task file, `$LIGHTSOUT_TASK_FILE`.
    Task,
    /// A usage report line printed on stdout.
    Report,
}

pub(crate) fn run(c: &AgentCommand) -> anyhow::Result<ExitCode> {
    match c {
        AgentCommand::Schema { which } => {
            let which = *which;
            let schema = match which {
                SchemaKind::Task => lightsout_agent::contract::task_file_schema(),
                SchemaKind::Report => lightsout_agent::contract::report_line_schema(),
            };
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
