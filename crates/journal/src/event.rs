//! The events a run streams to its [`EventSink`]s: progress for the CLI, lines for the report
//! and the audit log. The sink trait lives here, beside the [`Event`] it receives, so that a
//! sink's author depends on this crate and not on the factory.

use crate::journal::Entry;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Something that happened in a run. Serialised with a `type` tag (`{"type":"merged",...}`).
///
/// The events about a step the journal records (`AttemptFinished`, `TaskFailed`,
/// `TaskBlocked`, `Merging`, `MergeReverted`, `ConflictRouted`, `Merged`) are only ever made
/// from their [`Entry`] by [`Event::of_entry`]; the others carry what only the run loop knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum Event {
    /// A run started or resumed.
    RunStarted {
        /// The run id.
        run_id: String,
        /// Tasks in the plan.
        tasks: usize,
        /// Tasks already merged, failed or blocked (non-zero on a resume).
        done: usize,
        /// Whether this is a `--resume`.
        resumed: bool,
    },
    /// A task is not built again: its inputs are unchanged since run `built_by` and its
    /// work is on main.
    TaskUnchanged {
        /// Task id.
        task: String,
        /// The run that built it.
        built_by: String,
    },
    /// A task's dependencies are all merged.
    TaskReady {
        /// The task.
        task: String,
    },
    /// An agent started on a task.
    AttemptStarted {
        /// The task.
        task: String,
        /// 1-based attempt.
        attempt: u32,
        /// The agent label (replays say `(replay)`).
        agent: String,
    },
    /// An attempt ended.
    AttemptFinished {
        /// The task.
        task: String,
        /// 1-based attempt.
        attempt: u32,
        /// Whether it passed checks, guards and holdout.
        passed: bool,
        /// The stage that failed it.
        failed_stage: Option<lightsout_core::FailedStage>,
        /// Its USD cost, when known.
        cost_usd: Option<f64>,
        /// Input + output tokens.
        tokens: u64,
    },
    /// A task passed and entered the merge queue.
    TaskPassed {
        /// The task.
        task: String,
    },
    /// A merge started (rebase, then holdout on the merged result).
    Merging {
        /// The task.
        task: String,
    },
    /// Main fast-forwarded to the task's commit.
    Merged {
        /// The task.
        task: String,
        /// The new main commit.
        commit: String,
    },
    /// The merged result regressed; main was not moved and the task went back to its agent.
    MergeReverted {
        /// The task.
        task: String,
        /// Redacted feedback.
        feedback: String,
    },
    /// The rebase conflicted; the conflict went back to the agent as a task of its own.
    ConflictRouted {
        /// The task.
        task: String,
        /// The new task.
        to: String,
        /// Conflicting files.
        files: Vec<String>,
    },
    /// A task failed for good.
    TaskFailed {
        /// The task.
        task: String,
        /// Why.
        reason: String,
    },
    /// A task cannot run because a dependency failed.
    TaskBlocked {
        /// The task.
        task: String,
        /// The failed dependency.
        by: String,
    },
    /// The holdout's strength is being measured on the merged build (after the last merge).
    StrengthStarted {
        /// The commit measured (main's head).
        commit: String,
    },
    /// One more mutant of the merged build judged.
    StrengthProgress {
        /// Mutants judged so far.
        done: usize,
        /// Mutants to judge.
        total: usize,
        /// Killed so far.
        killed: usize,
    },
    /// The holdout's strength was measured (the survivors are in the run's results, for
    /// humans only).
    StrengthMeasured {
        /// Mutants killed.
        killed: usize,
        /// Mutants judged.
        total: usize,
        /// `killed / total`.
        kill_rate: f64,
        /// Wilson 95% lower bound of the kill rate.
        lower: f64,
        /// Wilson 95% upper bound of the kill rate.
        upper: f64,
    },
    /// The holdout's strength could not be measured.
    StrengthNotMeasured {
        /// Why.
        reason: String,
    },
    /// The run ended.
    RunFinished {
        /// Tasks merged.
        merged: usize,
        /// Tasks failed or blocked.
        failed: usize,
        /// Total USD cost reported by agents.
        cost_usd: f64,
    },
}

impl Event {
    /// The event that journal entry `e` shows, if any. Every event about a step the journal
    /// records is derived here from its entry, never built a second time by the run loop:
    /// the factory journals the entry and emits this. The match is exhaustive, so a new kind
    /// of entry is a compile error here until it is given its event (or none).
    ///
    /// Entries that show none: `RunStarted`, `TaskUnchanged` and `AttemptStarted` (their
    /// events carry what only the run loop knows: counts, the order of the start lines, the
    /// agent's label) and the bookkeeping steps `TaskStarted`, `MergeVerified`,
    /// `CheckoutSyncStarted`, `CheckoutSynced`, `VariantsChosen` (audited, and in the report)
    /// and `RunFinished`.
    pub fn of_entry(e: &Entry) -> Option<Event> {
        Some(match e {
            Entry::AttemptFinished { task, record } => Event::AttemptFinished {
                task: task.clone(),
                attempt: record.attempt,
                passed: record.passed,
                failed_stage: record.failed_stage,
                cost_usd: record.usage.cost_usd,
                tokens: record.usage.input_tokens + record.usage.output_tokens,
            },
            Entry::TaskFailed { task, reason } => Event::TaskFailed {
                task: task.clone(),
                reason: reason.clone(),
            },
            Entry::TaskBlocked { task, by } => Event::TaskBlocked {
                task: task.clone(),
                by: by.clone(),
            },
            Entry::MergeStarted { task, .. } => Event::Merging { task: task.clone() },
            Entry::MergeReverted { task, feedback, .. } => Event::MergeReverted {
                task: task.clone(),
                feedback: feedback.clone(),
            },
            Entry::ConflictRouted {
                task, to, files, ..
            } => Event::ConflictRouted {
                task: task.clone(),
                to: to.id.clone(),
                files: files.clone(),
            },
            Entry::Merged { task, commit } => Event::Merged {
                task: task.clone(),
                commit: commit.clone(),
            },
            Entry::RunStarted { .. }
            | Entry::TaskUnchanged { .. }
            | Entry::AttemptStarted { .. }
            | Entry::TaskStarted { .. }
            | Entry::MergeVerified { .. }
            | Entry::CheckoutSyncStarted { .. }
            | Entry::CheckoutSynced { .. }
            | Entry::VariantsChosen { .. }
            | Entry::RunFinished { .. } => return None,
        })
    }
}

/// Receives the run's events (progress bars, report writers, audit logs). Called inline
/// on the run loop: keep it cheap and non-blocking.
pub trait EventSink: Send + Sync {
    /// One event.
    fn emit(&self, event: &Event);
}

macro_rules! forward_sink {
    ($($t:ty),*) => {$(
        impl<T: EventSink + ?Sized> EventSink for $t {
            fn emit(&self, event: &Event) {
                (**self).emit(event);
            }
        }
    )*};
}
forward_sink!(&T, Box<T>, Arc<T>);

/// Drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: &Event) {}
}

/// Collects events in memory (tests, report builders).
#[derive(Debug, Default)]
pub struct VecEvents(pub std::sync::Mutex<Vec<Event>>);

impl VecEvents {
    /// The events so far.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *lightsout_stdx::lock(&self.0))
    }
}

impl EventSink for VecEvents {
    fn emit(&self, event: &Event) {
        lightsout_stdx::lock(&self.0).push(event.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::AttemptRecord;
    use lightsout_agent::{Outcome, Usage};
    use lightsout_core::{FailedStage, Task};

    /// The bytes of an entry and of the event it shows, as journals and `EventSink`s have
    /// always had them.
    #[test]
    fn entries_show_their_events_with_the_bytes_of_before() {
        let record = AttemptRecord {
            attempt: 2,
            agent: "claude".into(),
            replay: false,
            summary: "did it".into(),
            usage: Usage {
                input_tokens: 100,
                output_tokens: 20,
                cost_usd: Some(0.5),
                wall_ms: 40,
            },
            outcome: Outcome::Completed,
            passed: false,
            failed_stage: Some(FailedStage::Holdout),
            feedback: Some("REQ-1 failed".into()),
            commit: None,
            human_intervened: false,
        };
        let cases = [
            (
                Entry::AttemptFinished {
                    task: "T1".into(),
                    record,
                },
                r#"{"entry":"attempt_finished","task":"T1","record":{"attempt":2,"agent":"claude","replay":false,"summary":"did it","usage":{"input_tokens":100,"output_tokens":20,"cost_usd":0.5,"wall_ms":40},"outcome":{"kind":"completed"},"passed":false,"failed_stage":"holdout","feedback":"REQ-1 failed","human_intervened":false}}"#,
                Some(
                    r#"{"type":"attempt_finished","task":"T1","attempt":2,"passed":false,"failed_stage":"holdout","cost_usd":0.5,"tokens":120}"#,
                ),
            ),
            (
                Entry::MergeStarted {
                    task: "T1".into(),
                    onto: "abc".into(),
                },
                r#"{"entry":"merge_started","task":"T1","onto":"abc"}"#,
                Some(r#"{"type":"merging","task":"T1"}"#),
            ),
            (
                Entry::MergeReverted {
                    task: "T1".into(),
                    commit: "def".into(),
                    feedback: "regressed".into(),
                    regression: vec!["REQ-2".into()],
                },
                r#"{"entry":"merge_reverted","task":"T1","commit":"def","feedback":"regressed","regression":["REQ-2"]}"#,
                Some(r#"{"type":"merge_reverted","task":"T1","feedback":"regressed"}"#),
            ),
            (
                Entry::TaskBlocked {
                    task: "T2".into(),
                    by: "T1".into(),
                },
                r#"{"entry":"task_blocked","task":"T2","by":"T1"}"#,
                Some(r#"{"type":"task_blocked","task":"T2","by":"T1"}"#),
            ),
            (
                Entry::CheckoutSynced {
                    commit: "abc".into(),
                },
                r#"{"entry":"checkout_synced","commit":"abc"}"#,
                None,
            ),
        ];
        for (entry, entry_json, event_json) in cases {
            assert_eq!(serde_json::to_string(&entry).unwrap(), entry_json);
            let event = Event::of_entry(&entry);
            assert_eq!(
                event.map(|e| serde_json::to_string(&e).unwrap()).as_deref(),
                event_json
            );
        }
    }

    #[test]
    fn a_routed_conflict_names_the_new_task_by_id() {
        let entry = Entry::ConflictRouted {
            task: "T1".into(),
            to: Task {
                id: "T1.rebase-1".into(),
                ..Task::default()
            },
            files: vec!["src/a.rs".into()],
            feedback: String::new(),
        };
        assert_eq!(
            Event::of_entry(&entry),
            Some(Event::ConflictRouted {
                task: "T1".into(),
                to: "T1.rebase-1".into(),
                files: vec!["src/a.rs".into()],
            })
        );
    }
}
