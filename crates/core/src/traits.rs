//! The stage traits that need nothing beyond this crate's vocabulary: [`DiffGuard`] and
//! [`Recall`]. (The factory's holdout `Evaluator` needs the gate
//! policy of `lightsout-eval`, and the attempt hook the agent's context, so those stay with
//! the factory.)

use crate::{AttemptMetrics, GuardFinding, GuardRequest, Lesson, Task};
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
