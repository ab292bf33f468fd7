//! Integration tests of `lightsout-tune`: the `[tuning]` fence, selection, convergence.

mod config;
mod select;
mod sim;

/// A `lightsout.toml` with three variants on one agent profile and `extra` appended to
/// `[tuning]`'s tables as given.
pub(crate) fn toml_with(tuning_extra: &str, bounds_extra: &str) -> String {
    format!(
        r#"
[run]
jobs = 2

[agent.x]
preset = "replay"

[holdout]
trials = 5

[tuning]
incumbent = "A"
seed = 7
{tuning_extra}

[tuning.bounds]
kinds = ["code"]
max_exploration = 0.3
{bounds_extra}

[[tuning.variant]]
name = "A"
agent = "x"
model = "big"

[[tuning.variant]]
name = "B"
agent = "x"
model = "small"
prompt = "prompts/b.md"

[[tuning.variant]]
name = "C"
agent = "x"
model = "tiny"
"#
    )
}
