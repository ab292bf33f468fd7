//! End-to-end tests of the real `lightsout` binary, one module per stage.

mod eval;
mod memory;
mod plan;
mod spec;
mod run;
mod twin;
mod audit;
