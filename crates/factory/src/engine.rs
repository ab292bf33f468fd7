//! The eval engine as the run's judge: [`RecordedEngine`] wraps the
//! [`EngineEvaluator`](lightsout_adapters::EngineEvaluator) of `lightsout-adapters` so that
//! every evaluation of a run tapes the twins and leaves its record for `lightsout replay`
//! (`crate::replay`), and a replay serves the recorded tapes again.

use crate::replay::TwinRecord;
use crate::stages::{BoxError, EvalRequest, Evaluator, StrengthRequest, Verdict};
use crate::{EngineEvaluator, Error};
use async_trait::async_trait;
pub(crate) use lightsout_adapters::engine::EvalTrace;
use lightsout_adapters::engine::{ReplayTape, TwinTapes as Tapes};
use std::collections::BTreeMap;

/// The tapes a replay serves again, by twin name, as the run recorded them.
pub(crate) enum TwinTapes<'a> {
    /// Replay the recorded tapes.
    Replay(&'a BTreeMap<String, TwinRecord>),
}

/// The eval engine, recording each evaluation (its twins' tapes and its
/// [`EvalRecord`](crate::replay::EvalRecord)) beside its results.
#[derive(Debug, Clone)]
pub(crate) struct RecordedEngine(pub(crate) EngineEvaluator);

impl std::ops::Deref for RecordedEngine {
    type Target = EngineEvaluator;
    fn deref(&self) -> &EngineEvaluator {
        &self.0
    }
}

impl RecordedEngine {
    /// [`EngineEvaluator::evaluate_traced`] with the recorded tapes replayed.
    pub(crate) async fn evaluate_traced(
        &self,
        req: &EvalRequest,
        tapes: &TwinTapes<'_>,
        hide: Option<&std::path::Path>,
    ) -> Result<(Verdict, EvalTrace), Error> {
        let TwinTapes::Replay(records) = tapes;
        let tapes = Tapes::Replay(
            records
                .iter()
                .map(|(name, r)| {
                    let tape = ReplayTape {
                        options: r.options(),
                        exchanges: r.tape.exchanges.clone(),
                    };
                    (name.clone(), tape)
                })
                .collect(),
        );
        Ok(self.0.evaluate_traced(req, &tapes, hide).await?)
    }
}

#[async_trait]
impl Evaluator for RecordedEngine {
    async fn evaluate(&self, req: &EvalRequest) -> Result<Verdict, BoxError> {
        let (verdict, trace) = self.0.evaluate_traced(req, &Tapes::Record, None).await?;
        crate::replay::write_record(&self.holdout_dir, req, &verdict, &trace).await?;
        Ok(verdict)
    }

    async fn measure_strength(
        &self,
        req: &StrengthRequest,
    ) -> Result<Option<lightsout_eval::StrengthReport>, BoxError> {
        self.0.measure_strength(req).await
    }
}
