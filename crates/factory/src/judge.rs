//! The holdout's judge as a run's configuration wires it: a holdout runner
//! (`[holdout] command`) or the eval engine (`[target]` with the holdout's scenarios and
//! `[twins]`). [`Factory::new`](crate::Factory::new) and [`replay`](crate::replay::replay) build
//! it here, so that a replay judges exactly as the run did.

use crate::engine::EngineEvaluator;
use crate::stages::CommandEvaluator;
use crate::{Config, Error};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Time limit of one holdout runner invocation (ms).
pub(crate) const RUNNER_TIMEOUT_MS: u64 = 600_000;

/// The configured judge of the holdout.
pub(crate) enum HoldoutJudge {
    /// `[holdout] command`.
    Runner(CommandEvaluator),
    /// `[target]` and `[twins]`.
    Engine(EngineEvaluator),
}

/// The judge `config` asks for, with the allowlisted environment `env`; `None` when the config
/// names none (no `[holdout] command`, or no `[target]` or holdout directory). The holdout
/// directory is `[holdout] path`, or `LIGHTSOUT_HOLDOUT` when set.
///
/// # Errors
/// [`Error::Config`] when `[holdout] command` has no holdout directory; the fence's error when
/// its policy is invalid.
pub(crate) fn holdout_judge(
    config: &Config,
    env: &BTreeMap<String, String>,
) -> Result<Option<HoldoutJudge>, Error> {
    let holdout = std::env::var("LIGHTSOUT_HOLDOUT").ok();
    let dir = config.holdout_dir(holdout.as_deref());
    // Where the built-in twins' drift manifests are: both judges read twin lifecycles from
    // here (a holdout runner through `lightsout twin serve`, which reads the variable).
    let twin_state_dir = config.base_dir.join(".lightsout").join("twins");
    if let Some(command) = &config.holdout.command {
        let dir = dir.ok_or_else(|| {
            Error::Config(
                "[holdout] command needs [holdout] path (or LIGHTSOUT_HOLDOUT): the directory \
                 outside the repository that holds the scenarios"
                    .into(),
            )
        })?;
        let mut env = env.clone();
        env.insert(
            "LIGHTSOUT_TWIN_STATE_DIR".to_owned(),
            twin_state_dir.to_string_lossy().into_owned(),
        );
        return Ok(Some(HoldoutJudge::Runner(CommandEvaluator {
            command: command.clone(),
            holdout_dir: dir,
            env,
            redaction: config.holdout.redaction,
            require_all: config.holdout.require_all.unwrap_or(true),
            timeout_ms: RUNNER_TIMEOUT_MS,
        })));
    }
    let (Some(t), Some(dir)) = (&config.target, dir) else {
        return Ok(None);
    };
    // A twin directory is relative to lightsout.toml.
    let twins = config
        .twins
        .iter()
        .map(|(k, v)| {
            let resolved = if v == "builtin" || v.starts_with("http") {
                v.clone()
            } else {
                config.base_dir.join(v).to_string_lossy().into_owned()
            };
            (k.clone(), resolved)
        })
        .collect();
    Ok(Some(HoldoutJudge::Engine(EngineEvaluator {
        holdout_dir: dir,
        target_command: t.command.clone(),
        ready_path: t.ready_path.clone(),
        ready_timeout_ms: t.ready_timeout_ms,
        trials: config
            .holdout
            .trials
            .unwrap_or(crate::factory::DEFAULT_TRIALS),
        twins,
        twin_state_dir,
        env: env.clone(),
        redaction: config.holdout.redaction,
        require_all: config.holdout.require_all.unwrap_or(true),
        fence: Some(Arc::new(lightsout_fence::policy::Fence::new(
            config.fence.clone(),
        )?)),
    })))
}
