//! One module per subcommand group; each exposes its clap arguments and a `run` function.

pub(crate) mod agent;
pub(crate) mod audit;
pub(crate) mod config;
pub(crate) mod eval;
pub(crate) mod init;
pub(crate) mod memory;
pub(crate) mod plan;
pub(crate) mod replay;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod spec;
pub(crate) mod strength;
pub(crate) mod twin;
