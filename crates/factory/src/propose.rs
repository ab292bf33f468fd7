//! `lightsout tune propose`: a configured agent writes a new prompt template from a brief
//! (`lightsout_tune::proposal::brief`: lessons and redacted failure categories only).

use crate::Error;
use crate::config::Config;
use lightsout_agent::Agent;
use std::path::Path;
use std::sync::Arc;

/// Runs profile `profile` of `config` once on `brief` (a [`lightsout_tune::proposal::brief`])
/// in an empty scratch directory, and returns the template it wrote to
/// [`TEMPLATE_FILE`](lightsout_tune::proposal::TEMPLATE_FILE) there. A profile that runs a
/// process runs behind a [`Fence`](lightsout_fence::policy::Fence) built from `[fence]` as
/// for a run, with the holdout hidden and the project's `.lightsout` unreadable; a replay
/// profile applies its trajectory's `propose/1.patch`.
///
/// # Errors
/// [`Error::Config`] for an unknown profile or when the agent wrote no template;
/// [`Error::Fence`] when the fence cannot be built; [`Error::Agent`] when the agent cannot
/// run; [`Error::Io`] when the scratch directory cannot be made.
pub async fn write_template(
    config: &Config,
    repo: &Path,
    profile: &str,
    brief: &str,
) -> Result<String, Error> {
    let p = config.agent.get(profile).ok_or_else(|| {
        Error::Config(format!(
            "no [agent.{profile}] in lightsout.toml to write the proposal"
        ))
    })?;
    let tmp = tempfile::Builder::new()
        .prefix("lightsout-tune-propose-")
        .tempdir()
        .map_err(|e| Error::io("create", &std::env::temp_dir(), e))?;
    let root = tmp
        .path()
        .canonicalize()
        .map_err(|e| Error::io("resolve", tmp.path(), e))?;
    let wt = root.join("work");
    std::fs::create_dir_all(&wt).map_err(|e| Error::io("create", &wt, e))?;
    let agent: Arc<dyn Agent> = match crate::command_from_profile(profile, p)? {
        None => crate::agent_from_profile(profile, p, &config.base_dir)?,
        Some(c) => {
            let mut fc = config.fence.clone();
            fc.watch = vec![root.clone()];
            fc.hide.extend(
                config
                    .holdout_dir(std::env::var("LIGHTSOUT_HOLDOUT").ok().as_deref())
                    .filter(|h| h.is_dir()),
            );
            fc.unreadable.push(repo.join(".lightsout"));
            let fence = Arc::new(lightsout_fence::policy::Fence::new(fc)?);
            Arc::new(lightsout_fence::agent::FencedAgent::new(
                c.with_prices(config.prices.clone()),
                fence,
                Arc::new(lightsout_fence::agent::FenceReports::default()),
            ))
        }
    };
    let ctx = lightsout_agent::TaskContext {
        run_id: "tune-propose".into(),
        task_id: "propose".into(),
        title: "Write a prompt template".into(),
        kind: "tune".into(),
        spec_excerpt: brief.to_owned(),
        acceptance_criteria: vec![format!(
            "GIVEN the evidence above WHEN you are done THEN {} holds the new template",
            lightsout_tune::proposal::TEMPLATE_FILE
        )],
        attempt: 1,
        budget: lightsout_agent::Budget {
            attempts_left: 1,
            ..lightsout_agent::Budget::default()
        },
        ..lightsout_agent::TaskContext::default()
    };
    let mut ws = lightsout_agent::Workspace::new(&wt, root.join("artifacts"));
    ws.env = config.allowed_env(std::env::vars());
    ws.limits = config.limits;
    let report = agent.run(&ctx, &ws).await?;
    let out = wt.join(lightsout_tune::proposal::TEMPLATE_FILE);
    let template = std::fs::read_to_string(&out).unwrap_or_default();
    if template.trim().is_empty() {
        return Err(Error::Config(format!(
            "agent `{profile}` wrote no {} ({:?}: {})",
            lightsout_tune::proposal::TEMPLATE_FILE,
            report.outcome,
            report.summary
        )));
    }
    Ok(template)
}
