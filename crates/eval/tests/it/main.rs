//! Integration tests of `lightsout-eval`: the runner against real loopback servers (an axum
//! target and an axum twin speaking the `/__twin/` control API), real processes, and the
//! redaction and leak guarantees.

mod support;

mod leak;
mod redaction;
mod runner;
mod target;
mod twin;
