//! The adapter contract between the factory and a `command` agent, version 1.
//!
//! `docs/agents.md` is the user's guide to it; this module is its one implementation. For each
//! call the factory writes, outside the worktree, in [`Workspace::artifacts_dir`]:
//! - the prompt (`prompt-<task>-<attempt>.md`), markdown, also written to the process's stdin
//!   (or passed as `{prompt_file}` with `prompt = "file"`);
//! - the task file (`task-<task>-<attempt>.json`), a [`TaskFile`] whose `schema` is
//!   [`TASK_SCHEMA`] (`lightsout.task/v1`); its JSON Schema is [`task_file_schema`];
//! - the feedback file (`feedback-<task>-<attempt>.md`) on a retry only: the redacted
//!   feedback of the previous attempt, the same text as in the prompt;
//!
//! and starts the program in the worktree with these variables added to the allowlisted
//! environment (names in [`vars`]): `LIGHTSOUT_CONTRACT`, `LIGHTSOUT_RUN_ID`,
//! `LIGHTSOUT_TASK_ID`, `LIGHTSOUT_ATTEMPT`, `LIGHTSOUT_TASK_FILE`, `LIGHTSOUT_PROMPT_FILE`,
//! `LIGHTSOUT_WORKTREE`, on a retry `LIGHTSOUT_FEEDBACK_FILE`, and under a tuned variant
//! ([`Workspace::variant`]) `LIGHTSOUT_VARIANT` and, when it names one, `LIGHTSOUT_MODEL`
//! (the prompt is then the variant's template, [`crate::PromptVariant::render`]).
//!
//! The answer:
//! - the exit status: `0` means "done, check my work"; any other status (or a signal) is a
//!   failed attempt whose message is the last line of stderr. Either way the factory, never
//!   the agent, commits what the worktree holds;
//! - optionally, usage as [`ReportLine`]s: JSON objects alone on a stdout line with
//!   `"schema": "lightsout.report/v1"` ([`REPORT_SCHEMA`]). Each line gives the totals *so
//!   far* (cumulative), so an agent can print one as it spends and the factory sees spend as
//!   it arrives; the last line counts.
//!
//! Holdout discipline: every field of the task file comes from the [`TaskContext`], which
//! never holds holdout text; the only holdout-derived text is the redacted feedback that the
//! prompt carries too.

use crate::{Budget, Error, TaskContext, Workspace};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The version tag of the task file: `lightsout.task/v1`.
pub const TASK_SCHEMA: &str = "lightsout.task/v1";
/// The version tag of a usage report line: `lightsout.report/v1`.
pub const REPORT_SCHEMA: &str = "lightsout.report/v1";

/// The names of the environment variables of the contract.
pub mod vars {
    /// The contract version, [`TASK_SCHEMA`](super::TASK_SCHEMA).
    pub const CONTRACT: &str = "LIGHTSOUT_CONTRACT";
    /// The run id.
    pub const RUN_ID: &str = "LIGHTSOUT_RUN_ID";
    /// The task id (`REQ-2`, `T1`).
    pub const TASK_ID: &str = "LIGHTSOUT_TASK_ID";
    /// The 1-based attempt number.
    pub const ATTEMPT: &str = "LIGHTSOUT_ATTEMPT";
    /// The absolute path of the task file ([`TaskFile`](super::TaskFile)).
    pub const TASK_FILE: &str = "LIGHTSOUT_TASK_FILE";
    /// The absolute path of the prompt (markdown; also on stdin).
    pub const PROMPT_FILE: &str = "LIGHTSOUT_PROMPT_FILE";
    /// The absolute path of the previous attempt's redacted feedback; unset on attempt 1.
    pub const FEEDBACK_FILE: &str = "LIGHTSOUT_FEEDBACK_FILE";
    /// The worktree (also the working directory).
    pub const WORKTREE: &str = "LIGHTSOUT_WORKTREE";
    /// The tuned variant's name; unset when the factory chose none.
    pub const VARIANT: &str = "LIGHTSOUT_VARIANT";
    /// The model the tuned variant asks for; unset when it names none.
    pub const MODEL: &str = "LIGHTSOUT_MODEL";
}

/// The task file of one call (`$LIGHTSOUT_TASK_FILE`), version [`TASK_SCHEMA`].
///
/// Fields may be added within v1 (readers must ignore unknown fields); a field is never
/// removed or changes meaning without a new version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskFile {
    /// Always [`TASK_SCHEMA`] (`lightsout.task/v1`).
    pub schema: String,
    /// The run this call belongs to.
    pub run_id: String,
    /// Task id, unique in the run.
    pub task_id: String,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Short task title.
    pub title: String,
    /// Task kind (`code`, `docs`, `test`, `conflict`, ...).
    pub kind: String,
    /// Requirement ids the task serves.
    pub requirement_ids: Vec<String>,
    /// The requirements' text from the spec, markdown.
    pub spec_excerpt: String,
    /// The spec's visible acceptance criteria (Given/When/Then), one per entry.
    pub acceptance_criteria: Vec<String>,
    /// Constraints (`CON-n: ...`), one per entry.
    pub constraints: Vec<String>,
    /// Things the work must not do (`ANTI-n: ...`), one per entry.
    pub anti_spec: Vec<String>,
    /// Settled decisions, patterns and lessons from the project's memory, markdown.
    pub context_pack: String,
    /// The redacted feedback of the previous attempt; `null` on attempt 1.
    pub feedback: Option<String>,
    /// What is left of the task's budget (attempts, tokens, USD, wall ms).
    pub budget: Budget,
    /// The worktree: the working directory, and the only tree the agent may change.
    pub worktree: PathBuf,
    /// The prompt file (the same markdown as on stdin).
    pub prompt_file: PathBuf,
}

impl TaskFile {
    /// The task file for `ctx` in `ws` (only [`TaskContext`] fields: never holdout text).
    pub fn new(ctx: &TaskContext, ws: &Workspace) -> Self {
        TaskFile {
            schema: TASK_SCHEMA.into(),
            run_id: ctx.run_id.clone(),
            task_id: ctx.task_id.clone(),
            attempt: ctx.attempt,
            title: ctx.title.clone(),
            kind: ctx.kind.clone(),
            requirement_ids: ctx.requirement_ids.clone(),
            spec_excerpt: ctx.spec_excerpt.clone(),
            acceptance_criteria: ctx.acceptance_criteria.clone(),
            constraints: ctx.constraints.clone(),
            anti_spec: ctx.anti_spec.clone(),
            context_pack: ctx.context_pack.clone(),
            feedback: ctx.previous_feedback.clone(),
            budget: ctx.budget.clone(),
            worktree: ws.root.clone(),
            prompt_file: crate::prompt_path(ctx, ws),
        }
    }
}

/// One usage report an agent prints alone on a stdout line, version [`REPORT_SCHEMA`]:
/// `{"schema":"lightsout.report/v1","input_tokens":1200,"output_tokens":300,"cost_usd":0.01}`.
///
/// Figures are totals for the call so far (cumulative), not increments; the last line wins.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ReportLine {
    /// Always [`REPORT_SCHEMA`] (`lightsout.report/v1`).
    pub schema: String,
    /// Input tokens so far (cache reads and writes included).
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens so far.
    #[serde(default)]
    pub output_tokens: u64,
    /// USD spent so far, when the agent knows it (else the `[prices]` table may price the
    /// tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The model that did the work, for the `[prices]` table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A one-paragraph summary of what the agent did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

impl ReportLine {
    /// Parses one stdout line: `Some` only for a JSON object whose `schema` is
    /// [`REPORT_SCHEMA`] with finite, non-negative figures.
    pub fn parse(line: &str) -> Option<Self> {
        let line = line.trim();
        if !line.starts_with('{') || !line.contains(REPORT_SCHEMA) {
            return None;
        }
        let r: ReportLine = serde_json::from_str(line).ok()?;
        (r.schema == REPORT_SCHEMA && r.cost_usd.is_none_or(|c| c.is_finite() && c >= 0.0))
            .then_some(r)
    }

    /// The last report line of `stdout`, if any.
    pub fn last_in(stdout: &str) -> Option<Self> {
        stdout.lines().rev().find_map(Self::parse)
    }
}

/// The JSON Schema (draft 2020-12) of [`TaskFile`].
pub fn task_file_schema() -> schemars::Schema {
    schemars::schema_for!(TaskFile)
}

/// The JSON Schema (draft 2020-12) of [`ReportLine`].
pub fn report_line_schema() -> schemars::Schema {
    schemars::schema_for!(ReportLine)
}

/// What [`prepare`] wrote for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The prompt (markdown), as written to the prompt file.
    pub prompt: String,
    /// The prompt file.
    pub prompt_file: PathBuf,
    /// The task file.
    pub task_file: PathBuf,
    /// The contract's variables, to add to the agent's environment after the allowlist.
    pub env: Vec<(String, String)>,
}

fn path_for(ctx: &TaskContext, ws: &Workspace, stem: &str, ext: &str) -> PathBuf {
    ws.artifacts_dir.join(format!(
        "{stem}-{}-{}.{ext}",
        crate::command::sanitize(&ctx.task_id),
        ctx.attempt
    ))
}

/// The path of the task file for `ctx` in `ws`: `<artifacts_dir>/task-<task>-<attempt>.json`.
pub fn task_path(ctx: &TaskContext, ws: &Workspace) -> PathBuf {
    path_for(ctx, ws, "task", "json")
}

/// The path of the feedback file: `<artifacts_dir>/feedback-<task>-<attempt>.md`.
pub fn feedback_path(ctx: &TaskContext, ws: &Workspace) -> PathBuf {
    path_for(ctx, ws, "feedback", "md")
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

/// Writes the prompt, task and feedback files of `ctx` into `ws.artifacts_dir` (created if
/// missing) and returns them with the contract's environment variables.
///
/// # Errors
/// [`Error::Io`] when a directory or file cannot be written.
pub async fn prepare(ctx: &TaskContext, ws: &Workspace) -> Result<Prepared, Error> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    tokio::fs::create_dir_all(&ws.artifacts_dir)
        .await
        .map_err(io("create artifacts dir", &ws.artifacts_dir))?;
    let prompt = crate::prompt_for(ctx, ws);
    let prompt_file = absolute(&crate::prompt_path(ctx, ws));
    tokio::fs::write(&prompt_file, prompt.as_bytes())
        .await
        .map_err(io("write prompt", &prompt_file))?;
    let mut task = TaskFile::new(ctx, ws);
    task.worktree = absolute(&task.worktree);
    task.prompt_file.clone_from(&prompt_file);
    let task_file = absolute(&task_path(ctx, ws));
    let json = serde_json::to_vec_pretty(&task).map_err(|e| Error::Io {
        action: "serialise task file",
        path: task_file.clone(),
        source: std::io::Error::other(e),
    })?;
    tokio::fs::write(&task_file, json)
        .await
        .map_err(io("write task file", &task_file))?;
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let mut env = vec![
        (vars::CONTRACT.to_owned(), TASK_SCHEMA.to_owned()),
        (vars::RUN_ID.to_owned(), ctx.run_id.clone()),
        (vars::TASK_ID.to_owned(), ctx.task_id.clone()),
        (vars::ATTEMPT.to_owned(), ctx.attempt.to_string()),
        (vars::TASK_FILE.to_owned(), s(&task_file)),
        (vars::PROMPT_FILE.to_owned(), s(&prompt_file)),
        (vars::WORKTREE.to_owned(), s(&task.worktree)),
    ];
    if let Some(feedback) = &ctx.previous_feedback {
        let f = absolute(&feedback_path(ctx, ws));
        tokio::fs::write(&f, feedback.as_bytes())
            .await
            .map_err(io("write feedback file", &f))?;
        env.push((vars::FEEDBACK_FILE.to_owned(), s(&f)));
    }
    if let Some(v) = &ws.variant {
        env.push((vars::VARIANT.to_owned(), v.name.clone()));
        if let Some(m) = &v.model {
            env.push((vars::MODEL.to_owned(), m.clone()));
        }
    }
    Ok(Prepared {
        prompt,
        prompt_file,
        task_file,
        env,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_are_recognised_only_with_their_schema() {
        let out = "working...\n{\"schema\":\"lightsout.report/v1\",\"input_tokens\":10,\"cost_usd\":0.5}\n\
                   {\"type\":\"other\"}\n{\"schema\":\"lightsout.report/v1\",\"input_tokens\":20,\"output_tokens\":3,\"cost_usd\":0.75,\"summary\":\"ok\"}\ndone\n";
        let r = ReportLine::last_in(out).unwrap();
        assert_eq!((r.input_tokens, r.output_tokens), (20, 3));
        assert_eq!(r.cost_usd, Some(0.75));
        assert_eq!(r.summary.as_deref(), Some("ok"));
        assert_eq!(
            ReportLine::parse("{\"schema\":\"lightsout.report/v2\"}"),
            None
        );
        assert_eq!(
            ReportLine::parse("{\"schema\":\"lightsout.report/v1\",\"cost_usd\":-1}"),
            None
        );
        assert_eq!(ReportLine::parse("not json lightsout.report/v1"), None);
    }

    #[test]
    fn the_schemas_name_every_field() {
        let s = serde_json::to_string(&task_file_schema()).unwrap();
        for f in [
            "task_id",
            "attempt",
            "feedback",
            "requirement_ids",
            "budget",
        ] {
            assert!(s.contains(f), "{f} missing from {s}");
        }
        let r = serde_json::to_string(&report_line_schema()).unwrap();
        assert!(r.contains("cost_usd") && r.contains("input_tokens"));
    }

    #[tokio::test]
    async fn prepare_writes_the_files_and_names_them_in_the_environment() {
        let d = tempfile::tempdir().unwrap();
        let ws = Workspace::new(d.path().join("wt"), d.path().join("art"));
        let mut ctx = TaskContext {
            run_id: "r1".into(),
            task_id: "REQ-2".into(),
            title: "Add".into(),
            attempt: 2,
            previous_feedback: Some("REQ-2: 1 of 1 trials failed: wrong status".into()),
            ..TaskContext::default()
        };
        let p = prepare(&ctx, &ws).await.unwrap();
        let env: std::collections::BTreeMap<_, _> = p.env.iter().cloned().collect();
        assert_eq!(env[vars::TASK_ID], "REQ-2");
        assert_eq!(env[vars::ATTEMPT], "2");
        assert_eq!(env[vars::CONTRACT], TASK_SCHEMA);
        let task: TaskFile =
            serde_json::from_slice(&std::fs::read(&env[vars::TASK_FILE]).unwrap()).unwrap();
        assert_eq!(task.schema, TASK_SCHEMA);
        assert_eq!(task.feedback, ctx.previous_feedback);
        assert_eq!(
            std::fs::read_to_string(&env[vars::FEEDBACK_FILE]).unwrap(),
            "REQ-2: 1 of 1 trials failed: wrong status"
        );
        ctx.attempt = 1;
        ctx.previous_feedback = None;
        let p = prepare(&ctx, &ws).await.unwrap();
        assert!(!p.env.iter().any(|(k, _)| k == vars::FEEDBACK_FILE));
    }

    #[tokio::test]
    async fn a_variant_prompt_wraps_the_task_and_names_variant_and_model() {
        let d = tempfile::tempdir().unwrap();
        let mut ws = Workspace::new(d.path().join("wt"), d.path().join("art"));
        let ctx = TaskContext {
            run_id: "r1".into(),
            task_id: "T1".into(),
            title: "Add the endpoint".into(),
            attempt: 1,
            ..TaskContext::default()
        };
        ws.variant = Some(crate::PromptVariant {
            name: "terse".into(),
            model: Some("small-model".into()),
            template: Some("Be terse.\n\n{{task}}\n\nRun the tests first.".into()),
        });
        let p = prepare(&ctx, &ws).await.unwrap();
        assert!(
            p.prompt
                .starts_with("Be terse.\n\n# Task T1: Add the endpoint")
        );
        assert!(p.prompt.ends_with("Run the tests first.\n"));
        assert_eq!(std::fs::read_to_string(&p.prompt_file).unwrap(), p.prompt);
        let env: std::collections::BTreeMap<_, _> = p.env.iter().cloned().collect();
        assert_eq!(env[vars::VARIANT], "terse");
        assert_eq!(env[vars::MODEL], "small-model");
        // Without the placeholder the task still follows the template.
        ws.variant.as_mut().unwrap().template = Some("Be terse.".into());
        let p = prepare(&ctx, &ws).await.unwrap();
        assert_eq!(p.prompt, format!("Be terse.\n\n{}", ctx.render_prompt()));
        // Without a variant: the built-in prompt and no variant variables.
        ws.variant = None;
        let p = prepare(&ctx, &ws).await.unwrap();
        assert_eq!(p.prompt, ctx.render_prompt());
        assert!(
            !p.env
                .iter()
                .any(|(k, _)| k == vars::VARIANT || k == vars::MODEL)
        );
    }
}
