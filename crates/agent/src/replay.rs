//! [`ReplayAgent`]: applies a recorded trajectory of patches instead of calling a live agent.

use crate::{Agent, AgentReport, Error, Outcome, TaskContext, Usage, Workspace};
use async_trait::async_trait;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio::process::Command;

/// Replays a recorded trajectory: for task `T` at attempt `n`, it runs
/// `git apply <dir>/<T>/<n>.patch` in the worktree.
///
/// Layout of a trajectory directory:
/// ```text
/// <dir>/<task-id>/1.patch      unified diff (`git diff` output) applied at attempt 1
/// <dir>/<task-id>/1.json       optional: {"summary": "...", "input_tokens": 1200,
///                              "output_tokens": 300, "cost_usd": 0.01} as recorded
/// <dir>/<task-id>/2.patch      attempt 2 (typically the fix after feedback)
/// ```
/// A missing patch makes the attempt fail (the recorded agent gave up there); a patch that
/// does not apply fails it too (`git apply` is all-or-nothing, so the worktree is unchanged).
///
/// Every report it returns has `agent = "replay"` and `replay = true`, and its summary starts
/// with `[replay]`, so no output can pass a replay off as a live agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayAgent {
    dir: PathBuf,
}

#[derive(Debug, Deserialize, Default)]
struct Recorded {
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cost_usd: Option<f64>,
}

impl ReplayAgent {
    /// A replay of the trajectory in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ReplayAgent { dir: dir.into() }
    }

    /// The trajectory directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The patch replayed for `task_id` at `attempt` (1-based).
    pub fn patch_path(&self, task_id: &str, attempt: u32) -> PathBuf {
        self.dir.join(task_id).join(format!("{attempt}.patch"))
    }
}

#[async_trait]
impl Agent for ReplayAgent {
    async fn run(&self, ctx: &TaskContext, ws: &Workspace) -> Result<AgentReport, Error> {
        let started = Instant::now();
        // Keep the prompt a live agent would have been given, beside its transcript, so a
        // replay shows what crossed the interface (feedback included).
        tokio::fs::create_dir_all(&ws.artifacts_dir)
            .await
            .map_err(|source| Error::Io {
                action: "create artifacts dir",
                path: ws.artifacts_dir.clone(),
                source,
            })?;
        let prompt_file = crate::command::prompt_path(ctx, ws);
        tokio::fs::write(&prompt_file, crate::prompt_for(ctx, ws))
            .await
            .map_err(|source| Error::Io {
                action: "write prompt",
                path: prompt_file.clone(),
                source,
            })?;
        let patch = self.patch_path(&ctx.task_id, ctx.attempt);
        let meta_path = patch.with_extension("json");
        let recorded: Recorded = match tokio::fs::read(&meta_path).await {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| Error::Trajectory {
                path: meta_path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Recorded::default(),
            Err(source) => {
                return Err(Error::Io {
                    action: "read trajectory",
                    path: meta_path,
                    source,
                });
            }
        };
        let mut report = AgentReport {
            agent: "replay".into(),
            replay: true,
            summary: String::new(),
            usage: Usage {
                input_tokens: recorded.input_tokens,
                output_tokens: recorded.output_tokens,
                cost_usd: recorded.cost_usd,
                wall_ms: 0,
            },
            transcript: None,
            outcome: Outcome::Completed,
        };
        if !tokio::fs::try_exists(&patch).await.unwrap_or(false) {
            report.summary = format!(
                "[replay] no recorded patch for {} attempt {}",
                ctx.task_id, ctx.attempt
            );
            report.outcome = Outcome::Failed {
                exit_code: None,
                message: format!("the trajectory has no {}", patch.display()),
            };
            report.usage.wall_ms = started.elapsed().as_millis() as u64;
            return Ok(report);
        }
        // Hardened (no hooks, drivers or inherited environment): the worktree is one
        // earlier agents wrote to.
        let mut apply = lightsout_git::command(&ws.root, &["apply", "--whitespace=nowarn"]);
        apply.arg(&patch);
        let out = Command::from(apply)
            .output()
            .await
            .map_err(|source| Error::Spawn {
                program: "git".into(),
                source,
            })?;
        report.usage.wall_ms = started.elapsed().as_millis() as u64;
        if out.status.success() {
            report.summary = format!(
                "[replay] applied {}{}",
                patch.display(),
                recorded
                    .summary
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default()
            );
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            report.summary = format!("[replay] {} did not apply", patch.display());
            report.outcome = Outcome::Failed {
                exit_code: out.status.code(),
                message: format!("git apply failed: {}", stderr.trim()),
            };
        }
        Ok(report)
    }

    fn name(&self) -> String {
        "replay".into()
    }
}
