//! The tuner in the run loop: which declared `[[tuning.variant]]` each task runs under.
//!
//! When `[tuning]` declares variants and `[tuning.bounds] kinds` names a task's kind, the
//! run asks [`lightsout_tune::choose`] once, before any task starts, for every planned task
//! of such a kind (Thompson sampling over the evidence in the run-metrics store, within the
//! declared exploration share, benched variants left out; the default otherwise). Each
//! choice, with why (posterior means, the draws, explore or exploit, what is benched, the
//! seed), is written to the run's hash-chained audit log ([`AuditKind::VariantChoice`]) and
//! kept for the journal and the report; the task's agent is the variant's profile, its prompt
//! the variant's template ([`PromptVariant`]) and its model `LIGHTSOUT_MODEL`.
//!
//! Tasks of other kinds run the profile `[agents]` names, as without `[tuning]`.

use crate::Error;
use crate::config::Config;
use lightsout_agent::{Agent, PromptVariant};
use lightsout_fence::audit::AuditKind;
use lightsout_tune::choose::{PlannedTask, RunChoices, VariantChoice};
use lightsout_tune::{TuningConfig, rollup, state::TuningState, store::MetricsStore};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

/// A task's chosen variant, ready to run: the choice, the agent of its profile and what the
/// agent call gets (template text, model).
#[derive(Clone)]
pub(crate) struct Chosen {
    /// The choice as recorded.
    pub choice: VariantChoice,
    /// The variant's profile's agent (fenced where it runs a process).
    pub agent: Arc<dyn Agent>,
    /// The prompt template and model the call gets.
    pub prompt: PromptVariant,
}

/// `[tuning]` of `config`, with the project's proposals as variants
/// ([`lightsout_tune::proposal::with_proposals`]: a proposed one enters the bandit only once
/// accepted or under `auto_accept`); `None` without `[tuning]`.
///
/// # Errors
/// [`Error::Config`] when `[tuning]` or the proposals cannot be read.
pub(crate) fn tuning_config(config: &Config, repo: &Path) -> Result<Option<TuningConfig>, Error> {
    let Some(v) = &config.tuning else {
        return Ok(None);
    };
    let Some(cfg) = lightsout_tune::config::from_value(v, config.agent.keys().map(String::as_str))
        .map_err(|e| Error::Config(e.to_string()))?
    else {
        return Ok(None);
    };
    lightsout_tune::proposal::with_proposals(cfg, repo)
        .map(Some)
        .map_err(|e| Error::Config(e.to_string()))
}

/// The choices for the planned `tasks` (plan order) from the evidence in the project's
/// run-metrics store and the promoted defaults of `.lightsout/tuning.json`; `None` without
/// `[tuning]` or when no task's kind is tuned.
///
/// # Errors
/// [`Error::Config`] when `[tuning]` is invalid; [`Error::Stage`] (`tune`) when the store or
/// the tuning state cannot be read.
pub(crate) fn choose(
    config: &Config,
    repo: &Path,
    tasks: &[PlannedTask],
) -> Result<Option<RunChoices>, Error> {
    let Some(cfg) = tuning_config(config, repo)? else {
        return Ok(None);
    };
    if !tasks.iter().any(|t| cfg.tunes(&t.kind)) {
        return Ok(None);
    }
    let tune_err = |e: &dyn std::fmt::Display| Error::Stage {
        stage: "tune",
        message: e.to_string(),
    };
    let (store, _) = MetricsStore::open_project(repo).map_err(|e| tune_err(&e))?;
    let (records, _) = store.records().map_err(|e| tune_err(&e))?;
    let state = TuningState::load(&repo.join(".lightsout").join("tuning.json"))
        .map_err(|e| tune_err(&e))?;
    Ok(Some(lightsout_tune::choose::choose(
        &cfg,
        &rollup::rollup(&records),
        &state,
        tasks,
    )))
}

/// The profiles the choices run (they must be fenced and reachable like `[agents]`'s).
pub(crate) fn profiles(choices: Option<&RunChoices>) -> BTreeSet<String> {
    choices
        .map(|c| c.choices.iter().map(|c| c.agent_profile.clone()).collect())
        .unwrap_or_default()
}

/// Writes the run's `variant_choice` audit entries: first one without a task holding what
/// reproduces the choices (seed, evidence, defaults, tasks: [`lightsout_tune::choose::replay`]),
/// then one per choice with why, so the audit log alone says what was chosen, why, and how
/// to reproduce it.
pub(crate) fn audit(audit: &crate::fenced::Audit, choices: &RunChoices) {
    audit.record(
        AuditKind::VariantChoice,
        None,
        serde_json::json!({
            "seed": choices.seed,
            "config_seed": choices.config_seed,
            "attempts_seen": choices.attempts_seen,
            "exploration_allowed": choices.exploration_allowed,
            "evidence": choices.evidence,
            "defaults": choices.defaults,
            "tasks": choices.tasks,
        }),
    );
    for c in &choices.choices {
        audit.record(
            AuditKind::VariantChoice,
            Some(&c.task_id),
            serde_json::json!({
                "kind": c.kind,
                "variant": c.variant,
                "agent_profile": c.agent_profile,
                "model": c.model,
                "prompt": c.prompt,
                "default": c.default,
                "reason": c.reason,
                "mode": c.mode(),
                "posterior_means": c.posterior_means,
                "benched": c.benched,
                "draws": c.draws,
                "explanation": c.explanation,
                "seed": choices.seed,
                "config_seed": choices.config_seed,
                "attempts_seen": choices.attempts_seen,
                "exploration_allowed": choices.exploration_allowed,
            }),
        );
    }
}

/// Each choice made ready: its profile's agent out of `agents` and its template read from
/// the file it names (relative to `lightsout.toml`).
///
/// # Errors
/// [`Error::Config`] when a variant's profile has no agent or its template cannot be read.
pub(crate) fn ready(
    config: &Config,
    choices: &RunChoices,
    agents: &BTreeMap<String, Arc<dyn Agent>>,
) -> Result<BTreeMap<String, Chosen>, Error> {
    let mut templates: BTreeMap<&Path, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for c in &choices.choices {
        let agent = agents.get(&c.agent_profile).cloned().ok_or_else(|| {
            Error::Config(format!(
                "[[tuning.variant]] `{}` names agent `{}`, which has no [agent.{}] section",
                c.variant, c.agent_profile, c.agent_profile
            ))
        })?;
        let template = match &c.prompt {
            None => None,
            Some(p) => {
                if let Some(t) = templates.get(p.as_path()) {
                    Some(t.clone())
                } else {
                    let path = config.base_dir.join(p);
                    let t = std::fs::read_to_string(&path).map_err(|e| {
                        Error::Config(format!(
                            "[[tuning.variant]] `{}`: prompt template {}: {e}",
                            c.variant,
                            path.display()
                        ))
                    })?;
                    templates.insert(p.as_path(), t.clone());
                    Some(t)
                }
            }
        };
        out.insert(
            c.task_id.clone(),
            Chosen {
                choice: c.clone(),
                agent,
                prompt: PromptVariant {
                    name: c.variant.clone(),
                    model: c.model.clone(),
                    template,
                },
            },
        );
    }
    Ok(out)
}
