//! `lightsout agent check PROFILE`: runs one configured agent on a tiny built-in task inside
//! the run's fence and says, check by check, what works: it starts, it edits the worktree,
//! it reports usage, it finishes within the wall limit, it exits cleanly.
//!
//! The task runs in a detached worktree of the repository's `HEAD` in a temporary
//! directory (so an adapter committed to the repository is there, as in a run), behind a
//! [`Fence`](lightsout_fence::policy::Fence) built from `[fence]` and `[env]` as for a run
//! (holdout hidden, writes outside the worktree detected), with the instruction layer
//! written. The worktree is removed afterwards; the repository's branches are not touched.

use crate::config::Config;
use crate::{Error, command_from_profile};
pub use lightsout_adapters::agent_check::{AgentCheck, CHECK_FILE, CHECKS, Item, Status};
use std::path::Path;

/// Runs profile `name` of `config` on the built-in task, in a worktree of `repo`'s `HEAD`
/// (an empty repository when `repo` has no commit), with a wall limit of `wall_ms`
/// ([`lightsout_adapters::agent_check::check_command`] on the profile's command).
///
/// # Errors
/// [`Error::Config`] for an unknown profile or a replay profile (it starts no process);
/// [`Error::Adapters`] when the fence cannot be built (bubblewrap missing) or the temporary
/// worktree cannot be made.
pub async fn check_agent(
    config: &Config,
    repo: &Path,
    name: &str,
    wall_ms: u64,
) -> Result<AgentCheck, Error> {
    let command = profile_command(config, name)?;
    Ok(
        lightsout_adapters::agent_check::check_command(config, repo, name, command, wall_ms)
            .await?,
    )
}

/// The command of profile `name`, with the run's prices.
///
/// # Errors
/// [`Error::Config`] for an unknown profile or a replay profile.
fn profile_command(config: &Config, name: &str) -> Result<lightsout_agent::CommandAgent, Error> {
    let profile = config.agent.get(name).ok_or_else(|| {
        Error::Config(format!(
            "no [agent.{name}] profile in lightsout.toml{}",
            crate::config::did_you_mean(name, config.agent.keys().map(String::as_str))
        ))
    })?;
    Ok(command_from_profile(name, profile)?
        .ok_or_else(|| {
            Error::Config(format!(
                "[agent.{name}] is a replay: it starts no process, so there is nothing to check"
            ))
        })?
        .with_prices(config.prices.clone()))
}
