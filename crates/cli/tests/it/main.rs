//! End-to-end tests of the real `lightsout` binary, one module per stage.

mod audit;
mod eval;
mod init;
mod memory;
mod plan;
mod report;
mod run;
mod spec;
mod strength;
mod twin;
