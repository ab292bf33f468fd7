//! The stage traits that need nothing beyond this crate's vocabulary: [`DiffGuard`],
//! [`Recall`] and [`AttemptHook`]. (The holdout's `Evaluator` needs the gate policy of
//! `lightsout-eval` and lives there; the run's `EventSink` lives beside its `Event` in
//! `lightsout-journal`.)

use crate::{
    AgentReport, AttemptMetrics, GuardFinding, GuardRequest, HookDecision, Lesson, Task,
    TaskContext,
};
use async_trait::async_trait;
use std::sync::Arc;

/// The error a stage adapter fails with: its own error type, boxed, kept as the source (the
/// factory reports it with its cause chain and gives back its own errors unchanged).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Checks a task's diff against settled decisions (did it reverse one?).
#[async_trait]
pub trait DiffGuard: Send + Sync {
    /// Inspects `req`.
    ///
    /// # Errors
    /// The adapter's error when the guard cannot run (not when it finds something).
    async fn check(&self, req: &GuardRequest) -> Result<Vec<GuardFinding>, BoxError>;
}

macro_rules! forward_guard {
    ($($t:ty),*) => {$(
        #[async_trait]
        impl<T: DiffGuard + ?Sized> DiffGuard for $t {
            async fn check(&self, req: &GuardRequest) -> Result<Vec<GuardFinding>, BoxError> {
                (**self).check(req).await
            }
        }
    )*};
}
forward_guard!(&T, Box<T>, Arc<T>);

/// No guards.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGuard;

#[async_trait]
impl DiffGuard for NoGuard {
    async fn check(&self, _req: &GuardRequest) -> Result<Vec<GuardFinding>, BoxError> {
        Ok(Vec::new())
    }
}

/// Decision memory as the factory uses it: context packs in, metrics and lessons out.
#[async_trait]
pub trait Recall: Send + Sync {
    /// The context pack for `task` (markdown), empty when memory has nothing.
    ///
    /// # Errors
    /// The adapter's error when memory cannot be read.
    async fn context_pack(&self, task: &Task) -> Result<String, BoxError>;

    /// Records one attempt's metrics.
    ///
    /// # Errors
    /// The adapter's error when memory cannot be written.
    async fn record_attempt(&self, m: &AttemptMetrics) -> Result<(), BoxError>;

    /// Records a lesson.
    ///
    /// # Errors
    /// The adapter's error when memory cannot be written.
    async fn record_lesson(&self, l: &Lesson) -> Result<(), BoxError>;
}

macro_rules! forward_recall {
    ($($t:ty),*) => {$(
        #[async_trait]
        impl<T: Recall + ?Sized> Recall for $t {
            async fn context_pack(&self, task: &Task) -> Result<String, BoxError> {
                (**self).context_pack(task).await
            }
            async fn record_attempt(&self, m: &AttemptMetrics) -> Result<(), BoxError> {
                (**self).record_attempt(m).await
            }
            async fn record_lesson(&self, l: &Lesson) -> Result<(), BoxError> {
                (**self).record_lesson(l).await
            }
        }
    )*};
}
forward_recall!(&T, Box<T>, Arc<T>);

/// No memory: empty context packs; metrics and lessons stay in the journal and report only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMemory;

#[async_trait]
impl Recall for NoMemory {
    async fn context_pack(&self, _task: &Task) -> Result<String, BoxError> {
        Ok(String::new())
    }
    async fn record_attempt(&self, _m: &AttemptMetrics) -> Result<(), BoxError> {
        Ok(())
    }
    async fn record_lesson(&self, _l: &Lesson) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Runs around every agent call: the seam for budgets (reserve before, settle after),
/// policy (writes outside the worktree, leak scans) and audit. Every method defaults to
/// [`HookDecision::Proceed`].
#[async_trait]
pub trait AttemptHook: Send + Sync {
    /// Before the agent runs.
    ///
    /// # Errors
    /// The adapter's error when the hook itself fails (the run stops: fail closed).
    async fn before_attempt(&self, ctx: &TaskContext) -> Result<HookDecision, BoxError> {
        let _ = ctx;
        Ok(HookDecision::Proceed)
    }

    /// After the agent ran (before checks), with its report.
    ///
    /// # Errors
    /// The adapter's error when the hook itself fails (the run stops: fail closed).
    async fn after_attempt(
        &self,
        ctx: &TaskContext,
        report: &AgentReport,
    ) -> Result<HookDecision, BoxError> {
        let _ = (ctx, report);
        Ok(HookDecision::Proceed)
    }

    /// After the visible checks of an attempt ran (behind the fence): the seam for their
    /// policy violations, which the run leaves in its fence reports for this task and
    /// attempt.
    ///
    /// # Errors
    /// The adapter's error when the hook itself fails (the run stops: fail closed).
    async fn after_checks(&self, ctx: &TaskContext) -> Result<HookDecision, BoxError> {
        let _ = ctx;
        Ok(HookDecision::Proceed)
    }

    /// After the attempt was committed, with the diff from the task's base to its head
    /// (the text that crosses the fence towards main): the seam for leak scans.
    ///
    /// # Errors
    /// The adapter's error when the hook itself fails or finds holdout text (the run stops:
    /// fail closed).
    async fn inspect_diff(&self, ctx: &TaskContext, diff: &str) -> Result<HookDecision, BoxError> {
        let _ = (ctx, diff);
        Ok(HookDecision::Proceed)
    }
}

macro_rules! forward_hook {
    ($($t:ty),*) => {$(
        #[async_trait]
        impl<T: AttemptHook + ?Sized> AttemptHook for $t {
            async fn before_attempt(&self, ctx: &TaskContext) -> Result<HookDecision, BoxError> {
                (**self).before_attempt(ctx).await
            }
            async fn after_attempt(
                &self,
                c: &TaskContext,
                r: &AgentReport,
            ) -> Result<HookDecision, BoxError> {
                (**self).after_attempt(c, r).await
            }
            async fn after_checks(&self, c: &TaskContext) -> Result<HookDecision, BoxError> {
                (**self).after_checks(c).await
            }
            async fn inspect_diff(
                &self,
                c: &TaskContext,
                d: &str,
            ) -> Result<HookDecision, BoxError> {
                (**self).inspect_diff(c, d).await
            }
        }
    )*};
}
forward_hook!(&T, Box<T>, Arc<T>);

/// No hook: every attempt proceeds.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHook;

impl AttemptHook for NoHook {}
