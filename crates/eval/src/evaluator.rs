//! The holdout as a stage of the run loop: [`Evaluator`] judges a checkout ([`EvalRequest`])
//! and may measure the holdout's strength ([`StrengthRequest`]). It lives here rather than in
//! `lightsout-core` because both requests carry this crate's [`GatePolicy`] (an evaluator
//! judges with the run's policy and nothing weaker) and the strength measurement answers with
//! its [`StrengthReport`]; the verdict it returns is core's plain data.

use crate::{GatePolicy, StrengthOptions, StrengthReport};
use async_trait::async_trait;
use lightsout_core::{BoxError, EvalStage, Verdict};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// What to evaluate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRequest {
    /// The run.
    pub run_id: String,
    /// The task (a routed-back conflict task has its own id).
    pub task_id: String,
    /// 1-based attempt.
    pub attempt: u32,
    /// Candidate or merged result.
    pub stage: EvalStage,
    /// The checkout to evaluate (the task's worktree).
    pub worktree: PathBuf,
    /// The task's own requirements.
    pub requirements: Vec<String>,
    /// Requirements already merged at the worktree's base: they must still pass (the
    /// regression bucket, SWE-bench's `PASS_TO_PASS`).
    pub regression: Vec<String>,
    /// A directory for the evaluator's raw results (outside the worktree).
    pub artifacts_dir: PathBuf,
    /// The run's resolved gate policy: the evaluator judges with it (trial counts included)
    /// and with nothing weaker.
    pub policy: GatePolicy,
}

/// What to measure the holdout's strength on: the merged build after the last merge.
#[derive(Debug, Clone)]
pub struct StrengthRequest {
    /// A copy of the merged build (main's last commit); only read.
    pub build: PathBuf,
    /// Every requirement of the run (what the holdout is asked to check).
    pub requirements: Vec<String>,
    /// A directory for the evaluator's raw results (hidden from agents and services, as the
    /// other evaluation results are). The mutant copies go to `options.scratch`, which must
    /// not lie inside it (a sandboxed service could not see its own build).
    pub artifacts_dir: PathBuf,
    /// The run's resolved gate policy (trial counts come from it, as in every evaluation).
    pub policy: GatePolicy,
    /// Tool, sample, seed, trials, jobs, time limit, equivalent mutants, progress.
    pub options: StrengthOptions,
}

/// Judges a checkout against the holdout suite the agents never see.
#[async_trait]
pub trait Evaluator: Send + Sync {
    /// Evaluates `req.worktree` for `req.requirements` and `req.regression`.
    ///
    /// # Errors
    /// The adapter's error when the evaluation could not run (not when the software fails
    /// it).
    async fn evaluate(&self, req: &EvalRequest) -> Result<Verdict, BoxError>;

    /// Measures how strong this evaluator's holdout is on the build in `req.build`
    /// ([`measure`](crate::measure): mutants of the build, each judged by the holdout). The
    /// result names surviving mutants: it is for the humans who own the holdout and never goes
    /// to an agent. `Ok(None)` when this evaluator cannot judge mutants (the default).
    ///
    /// # Errors
    /// The adapter's error when the measurement could not run (no mutation tool, the holdout
    /// does not pass the unmutated build, an I/O failure).
    async fn measure_strength(
        &self,
        req: &StrengthRequest,
    ) -> Result<Option<StrengthReport>, BoxError> {
        let _ = req;
        Ok(None)
    }
}

macro_rules! forward_evaluator {
    ($($t:ty),*) => {$(
        #[async_trait]
        impl<T: Evaluator + ?Sized> Evaluator for $t {
            async fn evaluate(&self, req: &EvalRequest) -> Result<Verdict, BoxError> {
                (**self).evaluate(req).await
            }
            async fn measure_strength(
                &self,
                req: &StrengthRequest,
            ) -> Result<Option<StrengthReport>, BoxError> {
                (**self).measure_strength(req).await
            }
        }
    )*};
}
forward_evaluator!(&T, Box<T>, Arc<T>);
