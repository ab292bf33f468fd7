//! End-to-end tests of the real `lightsout` binary, one module per stage.

mod audit;
mod eval;
mod memory;
mod plan;
mod run;
mod spec;
mod twin;
