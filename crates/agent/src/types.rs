//! The plain-data types that cross the agent interface: [`TaskContext`] in, [`Workspace`]
//! around, [`AgentReport`] out. `TaskContext`, `Budget`, `AgentReport` and `Outcome` live in
//! `lightsout-core` (the attempt hook speaks them too) and are re-exported here.

pub use lightsout_core::{AgentReport, Budget, INSTRUCTION_FILES, Outcome, TaskContext, Usage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Resource limits for one agent process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessLimits {
    /// Wall-clock limit in milliseconds; on expiry the whole process group is killed.
    pub wall_ms: u64,
    /// Cap on captured stdout + stderr in bytes; past it the process group is killed.
    pub output_bytes: u64,
}

impl Default for ProcessLimits {
    /// 30 minutes and 16 MiB.
    fn default() -> Self {
        ProcessLimits {
            wall_ms: 30 * 60 * 1000,
            output_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Where and how an agent may act.
///
/// Invariant: `root` is a git worktree the agent owns for this task; `artifacts_dir` lies
/// outside it (prompts and transcripts never land in the diff).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    /// The worktree: the agent's working directory and the only tree it may change.
    pub root: PathBuf,
    /// The whole environment of the agent process (an allowlist, already resolved): nothing
    /// else is inherited, so secrets stay out unless named.
    pub env: BTreeMap<String, String>,
    /// Limits on the agent process.
    pub limits: ProcessLimits,
    /// A directory outside the worktree for prompt files and transcripts.
    pub artifacts_dir: PathBuf,
    /// The harness variant the call runs under (`[[tuning.variant]]`), when the factory's
    /// tuner chose one: its prompt template and model. `None`: the built-in prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<PromptVariant>,
}

/// A harness variant as an agent call sees it: its name, the model it asks for and its
/// prompt template (the text of the variant's template file).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PromptVariant {
    /// The variant's name (`LIGHTSOUT_VARIANT`).
    pub name: String,
    /// The model to use (`LIGHTSOUT_MODEL`); `None`: the profile's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The prompt template (markdown). `{{task}}` stands for the built-in prompt
    /// ([`TaskContext::render_prompt`]); a template without it is followed by the built-in
    /// prompt, so the task, its feedback and its attempt count always reach the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// The placeholder of [`PromptVariant::template`] the built-in prompt replaces.
pub const TASK_PLACEHOLDER: &str = "{{task}}";

impl PromptVariant {
    /// The prompt of `ctx` under this variant: the template with [`TASK_PLACEHOLDER`]
    /// replaced by the built-in prompt, or the template then the built-in prompt, or the
    /// built-in prompt alone when there is no template. Deterministic.
    pub fn render(&self, ctx: &TaskContext) -> String {
        let task = ctx.render_prompt();
        match self.template.as_deref().map(str::trim_end) {
            None | Some("") => task,
            Some(t) if t.contains(TASK_PLACEHOLDER) => {
                t.replace(TASK_PLACEHOLDER, task.trim_end()) + "\n"
            }
            Some(t) => format!("{t}\n\n{task}"),
        }
    }
}

/// The prompt an agent call gets: `ws`'s variant's ([`PromptVariant::render`]), else the
/// built-in [`TaskContext::render_prompt`].
pub fn prompt_for(ctx: &TaskContext, ws: &Workspace) -> String {
    ws.variant
        .as_ref()
        .map_or_else(|| ctx.render_prompt(), |v| v.render(ctx))
}

impl Workspace {
    /// A workspace at `root` with an empty environment, default limits and
    /// `artifacts_dir` as given.
    pub fn new(root: impl Into<PathBuf>, artifacts_dir: impl Into<PathBuf>) -> Self {
        Workspace {
            root: root.into(),
            env: BTreeMap::new(),
            limits: ProcessLimits::default(),
            artifacts_dir: artifacts_dir.into(),
            variant: None,
        }
    }
}
