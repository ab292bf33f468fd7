//! The stages the run loop composes, as small traits: [`Evaluator`] (holdout eval),
//! [`DiffGuard`] (memory guards on diffs), [`Recall`] (context packs, metrics, lessons),
//! [`AttemptHook`] (budgets and policy around each agent call) and [`EventSink`] (progress).
//! They live outside the factory, so that an adapter does not depend on it: [`DiffGuard`],
//! [`Recall`] and [`AttemptHook`], with the plain data they exchange, in `lightsout-core`;
//! [`Evaluator`] in `lightsout-eval` (its requests carry the eval's gate policy);
//! [`EventSink`] in `lightsout-journal`, beside the [`Event`](crate::Event) it receives.
//! All are re-exported here.
//!
//! Each has a blanket impl for `&T`, `Box<T>` and `Arc<T>`, and a neutral implementation
//! ([`NoGuard`], [`NoMemory`], [`NoHook`], [`NoEvents`]). [`CommandEvaluator`] runs an
//! external holdout runner; the `lightsout-eval` engine implements [`Evaluator`] too
//! ([`EngineEvaluator`](crate::EngineEvaluator), in `lightsout-adapters`).

pub use crate::judge::CommandEvaluator;
pub use lightsout_adapters::redact;
pub use lightsout_core::{
    AttemptHook, AttemptMetrics, BoxError, DiffGuard, EvalStage, FailedStage, GuardFinding,
    GuardRequest, HookDecision, LeakClass, Lesson, NoGuard, NoHook, NoMemory, Recall,
    RequirementResult, Verdict,
};
pub use lightsout_eval::{EvalRequest, Evaluator, StrengthRequest};
pub use lightsout_journal::{EventSink, NoEvents, VecEvents};

#[cfg(test)]
mod tests {
    use super::*;

    /// The factory writes metrics lines; `lightsout-tune` reads them: every field arrives.
    #[test]
    fn metrics_lines_read_back_in_the_tuner() {
        let m = AttemptMetrics {
            run_id: "r1".into(),
            task_id: "T1".into(),
            requirements: vec!["REQ-1".into()],
            attempt: 2,
            agent: "claude-code".into(),
            replay: false,
            usage: lightsout_core::Usage {
                input_tokens: 8,
                output_tokens: 2,
                cost_usd: Some(0.25),
                wall_ms: 7,
            },
            passed: false,
            failed_stage: Some(FailedStage::Holdout),
            human_intervened: false,
            task_kind: Some("docs".into()),
            agent_profile: Some("claude".into()),
            model: Some("m".into()),
            variant: Some("b".into()),
            final_outcome: Some(lightsout_core::FinalOutcome::Failed),
            failure_category: Some(AttemptMetrics::category(
                FailedStage::Holdout,
                Some("REQ-1: 2 of 5 trials failed: status mismatch\nmore"),
            )),
        };
        let line = serde_json::to_string(&m).unwrap();
        let (recs, diags) = lightsout_tune::record::parse_jsonl(&line);
        assert!(diags.is_empty(), "{diags:?}");
        let r = &recs[0];
        assert_eq!((r.variant_key(), r.kind_key()), ("b", "docs"));
        assert_eq!(r.category_key(), Some("holdout: status mismatch"));
        assert_eq!(
            r.final_outcome,
            Some(lightsout_tune::record::FinalOutcome::Failed)
        );
        assert_eq!((r.usage, r.attempt), (m.usage, 2));
    }
}
