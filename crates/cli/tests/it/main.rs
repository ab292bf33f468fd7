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

/// Held by the tests that run the whole bundled example (the replay's and the fleet's): each
/// starts the example's service many times and measures its latency under load, and two of
/// them side by side on a 2-core CI machine make that scenario fail on a busy neighbour rather
/// than on the build. The other tests still run beside whichever holds it.
pub(crate) fn bundled_example_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
