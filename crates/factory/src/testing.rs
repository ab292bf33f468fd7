//! Test doubles of the stage traits (enabled by the `testing` feature).

use crate::stages::{
    AttemptMetrics, BoxError, DiffGuard, EvalRequest, Evaluator, GuardFinding, GuardRequest,
    Lesson, Recall, Verdict,
};
use crate::{Error, Task};
use async_trait::async_trait;
use std::sync::Mutex;

/// An evaluator whose verdict is a closure of the request.
pub struct FnEvaluator<F>(pub F);

impl<F> std::fmt::Debug for FnEvaluator<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnEvaluator")
    }
}

#[async_trait]
impl<F> Evaluator for FnEvaluator<F>
where
    F: Fn(&EvalRequest) -> Result<Verdict, Error> + Send + Sync,
{
    async fn evaluate(&self, req: &EvalRequest) -> Result<Verdict, BoxError> {
        Ok((self.0)(req)?)
    }
}

/// A guard whose findings are a closure of the request.
pub struct FnGuard<F>(pub F);

impl<F> std::fmt::Debug for FnGuard<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnGuard")
    }
}

#[async_trait]
impl<F> DiffGuard for FnGuard<F>
where
    F: Fn(&GuardRequest) -> Vec<GuardFinding> + Send + Sync,
{
    async fn check(&self, req: &GuardRequest) -> Result<Vec<GuardFinding>, BoxError> {
        Ok((self.0)(req))
    }
}

/// Memory that serves a fixed context pack and records what it is given.
#[derive(Debug, Default)]
pub struct RecordingMemory {
    /// The context pack returned for every task.
    pub pack: String,
    /// Attempts recorded, in order.
    pub attempts: Mutex<Vec<AttemptMetrics>>,
    /// Lessons recorded, in order.
    pub lessons: Mutex<Vec<Lesson>>,
}

#[async_trait]
impl Recall for RecordingMemory {
    async fn context_pack(&self, _task: &Task) -> Result<String, BoxError> {
        Ok(self.pack.clone())
    }
    async fn record_attempt(&self, m: &AttemptMetrics) -> Result<(), BoxError> {
        lightsout_stdx::lock(&self.attempts).push(m.clone());
        Ok(())
    }
    async fn record_lesson(&self, l: &Lesson) -> Result<(), BoxError> {
        lightsout_stdx::lock(&self.lessons).push(l.clone());
        Ok(())
    }
}

pub use lightsout_stdx::testing::git;
