//! Test doubles (feature `testing`): a scripted step whose outcomes are given in advance, so
//! that crates embedding the runner can simulate passing, failing and flaky scenarios without
//! a target.

use crate::FailureCategory;
use crate::steps::{StepArgs, StepFailure, StepHandler};
use crate::world::World;
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::Mutex;

/// A step that returns its scripted outcomes in order (`true` passes, `false` fails with
/// [`FailureCategory::Custom`]), then repeats the last one. An empty script always passes.
#[derive(Debug, Default)]
pub struct ScriptedStep {
    script: Mutex<VecDeque<bool>>,
    last: Mutex<bool>,
}

impl ScriptedStep {
    /// A step with these outcomes.
    pub fn new(outcomes: impl IntoIterator<Item = bool>) -> Self {
        ScriptedStep {
            script: Mutex::new(outcomes.into_iter().collect()),
            last: Mutex::new(true),
        }
    }

    fn next(&self) -> bool {
        let mut last = lightsout_stdx::lock(&self.last);
        let mut script = lightsout_stdx::lock(&self.script);
        if let Some(v) = script.pop_front() {
            *last = v;
        }
        *last
    }
}

#[async_trait]
impl StepHandler for ScriptedStep {
    async fn run(
        &self,
        _world: &mut World,
        _args: &StepArgs,
    ) -> Result<Option<String>, StepFailure> {
        if self.next() {
            Ok(None)
        } else {
            Err(StepFailure::new(
                FailureCategory::Custom,
                "scripted failure",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RunOptions, Runner, StepLibrary, Suite, TargetConfig};
    use std::path::Path;

    #[tokio::test]
    async fn scripted_step_makes_a_flaky_scenario_without_a_target() {
        let mut lib = StepLibrary::empty();
        lib.register(
            "the oracle answers",
            "the oracle answers",
            ScriptedStep::new([true, false, true]),
        )
        .unwrap();
        let mut suite = Suite::default();
        suite.add_source(
            Path::new("o.scenario.md"),
            "## Scenario: o\nSatisfies: REQ-1\n\n- **THEN** the oracle answers\n",
            &mut Vec::new(),
        );
        assert!(suite.resolve(&lib).is_empty());
        // No rules: the sequential gate would stop a clear failure early (1 of 2 cannot reach
        // the floor's 0.95), and this test is about counting a flaky scenario's trials.
        let opts = RunOptions {
            trials: 4,
            max_trials: 4,
            policy: crate::GatePolicy::default(),
            ..RunOptions::default()
        };
        let run = Runner::new(lib)
            .unwrap()
            .run(
                &suite,
                &TargetConfig::Url("http://127.0.0.1:9".into()),
                &opts,
            )
            .await
            .unwrap();
        let s = &run.scenarios[0].stats;
        assert_eq!((s.passes, s.trials, s.flaky), (3, 4, true));
    }
}
