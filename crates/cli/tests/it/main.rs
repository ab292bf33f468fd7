//! End-to-end tests of the real `lightsout` binary, one module per stage.

mod agents;
mod audit;
mod config;
mod eval;
mod gate;
mod hostile_fence;
mod hostile_git;
mod init;
mod memory;
mod plan;
mod replay;
mod report;
mod run;
mod spec;
mod strength;
mod twin;
