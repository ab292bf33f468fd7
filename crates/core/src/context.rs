//! What an agent is told about one attempt ([`TaskContext`], with what is left of its
//! [`Budget`]) and what it reports back ([`AgentReport`], [`Outcome`]): the plain data that
//! crosses the agent interface and the attempt hook (moved from `lightsout-agent`, which
//! re-exports them).

use crate::Usage;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::PathBuf;

/// What is left of a task's budget when an attempt starts.
///
/// `None` means "not capped". Units: attempts (count, including the one starting),
/// tokens (input + output), USD, wall milliseconds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Budget {
    /// Attempts left, counting the one about to start (`>= 1` when an attempt starts).
    pub attempts_left: u32,
    /// Tokens (input + output) left, when capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_left: Option<u64>,
    /// USD left, when capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd_left: Option<f64>,
    /// Wall milliseconds left, when capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms_left: Option<u64>,
}

/// Everything an agent is told about one attempt at one task.
///
/// Invariant: a `TaskContext` never holds holdout text. Holdout scenarios (their names, steps
/// and values) stay with the evaluator; `previous_feedback` carries only the *redacted*
/// feedback (requirement id and failure category, as `scenario-format.md` specifies).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskContext {
    /// The run this attempt belongs to (`.lightsout/runs/<run_id>/`).
    pub run_id: String,
    /// Task id, unique in the run (`T1`, `REQ-2`, `T1.rebase-1` for a routed-back conflict).
    pub task_id: String,
    /// Short task title.
    pub title: String,
    /// Task kind (`code`, `docs`, `test`, `conflict`, ...): selects the agent profile.
    pub kind: String,
    /// Requirement ids the task serves (`REQ-1`, `FR-002`).
    pub requirement_ids: Vec<String>,
    /// The rendered spec excerpt: the requirements' text, as markdown.
    pub spec_excerpt: String,
    /// Constraints (`CON-n: ...`), one per entry.
    pub constraints: Vec<String>,
    /// Anti-spec items (`ANTI-n: ...`), one per entry.
    pub anti_spec: Vec<String>,
    /// The context pack from decision memory (markdown), empty when there is none.
    pub context_pack: String,
    /// The visible acceptance criteria (the spec's own Given/When/Then scenarios), one per entry.
    pub acceptance_criteria: Vec<String>,
    /// Redacted feedback from the previous attempt, `None` on a first attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_feedback: Option<String>,
    /// 1-based attempt number.
    pub attempt: u32,
    /// What is left of the budget.
    pub budget: Budget,
}

/// The files, at the worktree's root, into which the factory writes a task's standing
/// instructions ([`TaskContext::render_instructions`]) for the length of one agent call:
/// `AGENTS.md` (read by Codex and other agents, <https://agents.md>) and `CLAUDE.md` (Claude
/// Code's project memory, <https://docs.claude.com/en/docs/claude-code/memory>).
pub const INSTRUCTION_FILES: &[&str] = &["AGENTS.md", "CLAUDE.md"];

/// The project-memory section of a prompt: the context pack as retrieved, under one
/// `## Project memory` heading (a pack from `lightsout-memory` brings its own).
fn memory_section(pack: &str) -> Option<String> {
    let pack = pack.trim();
    if pack.is_empty() {
        None
    } else if pack.starts_with("## ") {
        Some(format!("{pack}\n"))
    } else {
        Some(format!("## Project memory\n\n{pack}\n"))
    }
}

impl TaskContext {
    /// The context of attempt `attempt` at `task` in run `run_id`: the task's own fields
    /// (id, title, kind, requirements, excerpt, constraints, anti-spec, acceptance
    /// criteria) with the memory's `context_pack`, the previous attempt's redacted
    /// `previous_feedback` and what is left of the `budget`.
    pub fn for_task(
        run_id: impl Into<String>,
        task: &crate::Task,
        context_pack: String,
        previous_feedback: Option<String>,
        attempt: u32,
        budget: Budget,
    ) -> Self {
        TaskContext {
            run_id: run_id.into(),
            task_id: task.id.clone(),
            title: task.title.clone(),
            kind: task.kind.clone(),
            requirement_ids: task.requirement_ids.clone(),
            spec_excerpt: task.spec_excerpt.clone(),
            constraints: task.constraints.clone(),
            anti_spec: task.anti_spec.clone(),
            context_pack,
            acceptance_criteria: task.acceptance_criteria.clone(),
            previous_feedback,
            attempt,
            budget,
        }
    }

    /// Renders the task itself as one markdown prompt, the form CLI agents take on stdin or
    /// in a file: the task, its requirements and acceptance criteria, the previous
    /// attempt's feedback. The standing context (constraints, anti-spec, project memory)
    /// is in [`render_instructions`](Self::render_instructions), which the factory writes
    /// as [`INSTRUCTION_FILES`]. Deterministic (same context, same bytes).
    pub fn render_prompt(&self) -> String {
        let mut p = String::new();
        let _ = writeln!(p, "# Task {}: {}\n", self.task_id, self.title);
        let _ = writeln!(
            p,
            "You are working in a git worktree of the project. Make the change this task asks \
             for, keep the project building and its tests passing, and do not touch files the \
             task does not need.\n"
        );
        if self.has_instructions() {
            let _ = writeln!(
                p,
                "Standing instructions for this task (constraints, what it must not do, the \
                 project's settled decisions and lessons) are in AGENTS.md and CLAUDE.md at the \
                 root of the worktree: follow them.\n"
            );
        }
        if !self.requirement_ids.is_empty() {
            let _ = writeln!(p, "Requirements: {}\n", self.requirement_ids.join(", "));
        }
        if !self.spec_excerpt.trim().is_empty() {
            let _ = writeln!(p, "## Specification\n\n{}\n", self.spec_excerpt.trim());
        }
        push_list(&mut p, "Acceptance criteria", &self.acceptance_criteria);
        if let Some(feedback) = &self.previous_feedback {
            let _ = writeln!(
                p,
                "## Feedback from attempt {}\n\n{}\n",
                self.attempt.saturating_sub(1),
                feedback.trim()
            );
        }
        let _ = writeln!(
            p,
            "Attempt {} ({} left after this one).",
            self.attempt,
            self.budget.attempts_left.saturating_sub(1)
        );
        p
    }

    /// Whether there is standing context to write ([`render_instructions`](Self::render_instructions)).
    pub fn has_instructions(&self) -> bool {
        !(self.constraints.is_empty()
            && self.anti_spec.is_empty()
            && self.context_pack.trim().is_empty())
    }

    /// Renders the task's standing context as markdown, for the instruction files
    /// ([`INSTRUCTION_FILES`]): the rules of the factory, constraints, anti-spec, and the
    /// project memory (settled decisions, patterns, lessons of earlier attempts). Only
    /// [`TaskContext`] fields: never holdout text. Deterministic.
    pub fn render_instructions(&self) -> String {
        let mut p = String::new();
        let _ = writeln!(
            p,
            "# Standing instructions for task {}\n\n\
             Written by the Lightsout factory for this agent call and removed before the \
             factory commits: leave this file as it is. The task itself is in the prompt.\n\n\
             - Work only inside this worktree. Do not commit, push, or change branches, refs, \
             hooks or git configuration: the factory commits what you leave.\n\
             - Keep the project building and its tests passing.\n",
            self.task_id
        );
        push_list(&mut p, "Constraints", &self.constraints);
        push_list(&mut p, "Must not (anti-spec)", &self.anti_spec);
        if let Some(m) = memory_section(&self.context_pack) {
            let _ = writeln!(p, "{m}");
        }
        p
    }
}

fn push_list(p: &mut String, heading: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(p, "## {heading}\n");
    for item in items {
        let _ = writeln!(p, "- {}", item.trim());
    }
    p.push('\n');
}

/// How an agent call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Outcome {
    /// The agent finished and says it did the work (the factory still checks).
    Completed,
    /// The agent ended with an error (non-zero exit, or an error result in its output).
    Failed {
        /// Process exit code, when there was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        /// What went wrong, one line.
        message: String,
    },
    /// The wall-time limit expired; the process group was killed.
    TimedOut,
    /// The output cap was exceeded; the process group was killed.
    OutputCapped,
}

impl Outcome {
    /// Whether the agent finished normally.
    pub fn is_completed(&self) -> bool {
        matches!(self, Outcome::Completed)
    }
}

/// What an agent call produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReport {
    /// Which agent ran (`claude-code`, `codex`, `aider`, `replay`, ...).
    pub agent: String,
    /// True when the work was replayed from a recorded trajectory, not done by a live agent.
    /// Every output that shows the report labels it as a replay.
    pub replay: bool,
    /// One-paragraph summary, from the agent's own final message when it gives one.
    pub summary: String,
    /// Token, cost and time usage.
    pub usage: Usage,
    /// The transcript (captured stdout and stderr), when one was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<PathBuf>,
    /// How the call ended.
    pub outcome: Outcome,
}

impl AgentReport {
    /// A completed report for `agent` with `summary` and zero usage.
    pub fn completed(agent: impl Into<String>, summary: impl Into<String>) -> Self {
        AgentReport {
            agent: agent.into(),
            replay: false,
            summary: summary.into(),
            usage: Usage::default(),
            transcript: None,
            outcome: Outcome::Completed,
        }
    }

    /// The agent label as shown to users: `replay` reports read `<agent> (replay)`.
    pub fn label(&self) -> String {
        if self.replay {
            format!("{} (replay)", self.agent)
        } else {
            self.agent.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_holds_feedback_and_requirements() {
        let ctx = TaskContext {
            task_id: "T1".into(),
            title: "Create links".into(),
            requirement_ids: vec!["REQ-1".into()],
            previous_feedback: Some("REQ-1: 1 of 1 trials failed: status mismatch".into()),
            attempt: 2,
            budget: Budget {
                attempts_left: 2,
                ..Budget::default()
            },
            ..TaskContext::default()
        };
        let p = ctx.render_prompt();
        assert!(p.starts_with("# Task T1: Create links"));
        assert!(p.contains("Requirements: REQ-1"));
        assert!(p.contains("## Feedback from attempt 1"));
        assert!(p.contains("status mismatch"));
        assert!(p.contains("Attempt 2 (1 left after this one)."));
    }

    #[test]
    fn standing_context_goes_to_the_instructions_and_memory_has_one_heading() {
        let ctx = TaskContext {
            task_id: "T1".into(),
            title: "Create links".into(),
            constraints: vec!["CON-1: at most 100 ms".into()],
            anti_spec: vec!["ANTI-1: no new dependencies".into()],
            context_pack: "## Project memory\n\nSettled decisions...\n\n### DEC-1: use SQLite\n"
                .into(),
            acceptance_criteria: vec!["GIVEN a link WHEN fetched THEN 301".into()],
            attempt: 1,
            ..TaskContext::default()
        };
        let p = ctx.render_prompt();
        assert!(p.contains("GIVEN a link"), "{p}");
        assert!(p.contains("AGENTS.md and CLAUDE.md"), "{p}");
        for standing in ["CON-1", "ANTI-1", "DEC-1"] {
            assert!(!p.contains(standing), "{standing} in the prompt:\n{p}");
        }
        let i = ctx.render_instructions();
        for standing in ["## Constraints", "CON-1", "ANTI-1", "### DEC-1: use SQLite"] {
            assert!(i.contains(standing), "{standing} missing:\n{i}");
        }
        assert_eq!(i.matches("## Project memory").count(), 1, "{i}");
        let bare = TaskContext {
            context_pack: "DEC-1: keep it simple".into(),
            ..TaskContext::default()
        };
        assert!(
            bare.render_instructions()
                .contains("## Project memory\n\nDEC-1")
        );
        assert!(!TaskContext::default().has_instructions());
        assert!(!TaskContext::default().render_prompt().contains("AGENTS.md"));
    }

    #[test]
    fn replay_label() {
        let mut r = AgentReport::completed("replay", "x");
        r.replay = true;
        assert_eq!(r.label(), "replay (replay)");
    }
}
