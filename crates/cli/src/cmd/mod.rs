//! One module per subcommand group; each exposes its clap arguments and a `run` function.

pub(crate) mod spec;
