//! End-to-end tests of the real `lightsout` binary, one module per stage.

mod agents;
mod audit;
mod config;
mod daily;
mod eval;
mod fleet_remote;
mod gate;
mod hostile_fence;
mod hostile_git;
mod init;
mod memory;
mod plan;
mod queue;
mod replay;
mod report;
mod run;
mod spec;
mod status;
mod strength;
mod trace;
mod tune;
mod twin;
mod worker;
