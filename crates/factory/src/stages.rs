//! The stages the run loop composes, as small traits: [`Evaluator`] (holdout eval),
//! [`DiffGuard`] (memory guards on diffs), [`Recall`] (context packs, metrics, lessons),
//! [`AttemptHook`] (budgets and policy around each agent call) and [`EventSink`] (progress).
//! [`DiffGuard`] and [`Recall`], with the plain data they exchange, live in `lightsout-core`
//! and are re-exported here.
//!
//! Each has a blanket impl for `&T`, `Box<T>` and `Arc<T>`, and a neutral implementation
//! ([`NoGuard`], [`NoMemory`], [`NoHook`], [`NoEvents`]). [`CommandEvaluator`] runs an
//! external holdout runner; the `lightsout-eval` engine implements [`Evaluator`] too.

use crate::Error;
use crate::config::Redaction;
use crate::event::Event;
use async_trait::async_trait;
use lightsout_agent::{AgentReport, TaskContext};
pub use lightsout_core::{
    AttemptMetrics, BoxError, DiffGuard, EvalStage, FailedStage, GuardFinding, GuardRequest,
    HookDecision, LeakClass, Lesson, NoGuard, NoMemory, Recall, RequirementResult, Verdict,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    pub policy: lightsout_eval::GatePolicy,
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
    pub policy: lightsout_eval::GatePolicy,
    /// Tool, sample, seed, trials, jobs, time limit, equivalent mutants, progress.
    pub options: lightsout_eval::StrengthOptions,
}

/// Builds redacted feedback from per-requirement results (`scenario-format.md`):
/// `REQ-3: 2 of 5 trials failed: status mismatch` at the default level.
pub fn redact(results: &[RequirementResult], level: Redaction) -> String {
    let failed: Vec<&RequirementResult> = results
        .iter()
        .filter(|r| r.passed < r.trials || r.trials == 0)
        .collect();
    if failed.is_empty() {
        return String::new();
    }
    if level == Redaction::Full {
        return format!(
            "the holdout suite failed for {} requirement(s)",
            failed.len()
        );
    }
    let mut lines = Vec::new();
    for r in failed {
        let category = r.category.as_deref().unwrap_or("failed");
        let failures = r.trials.saturating_sub(r.passed);
        lines.push(match level {
            Redaction::Category if r.trials == 0 => format!("not verified: {category}"),
            Redaction::Category => {
                format!("{failures} of {} trials failed: {category}", r.trials)
            }
            _ if r.trials == 0 => format!("{}: not verified: {category}", r.id),
            _ => format!(
                "{}: {failures} of {} trials failed: {category}",
                r.id, r.trials
            ),
        });
    }
    lines.dedup();
    lines.join("\n")
}

/// Judges a checkout against the holdout suite the agents never see.
#[async_trait]
pub trait Evaluator: Send + Sync {
    /// Evaluates `req.worktree` for `req.requirements` and `req.regression`.
    ///
    /// # Errors
    /// [`Error`] when the evaluation could not run (not when the software fails it).
    async fn evaluate(&self, req: &EvalRequest) -> Result<Verdict, Error>;

    /// Measures how strong this evaluator's holdout is on the build in `req.build`
    /// (`lightsout_eval::measure`: mutants of the build, each judged by the holdout). The
    /// result names surviving mutants: it is for the humans who own the holdout and never goes
    /// to an agent. `Ok(None)` when this evaluator cannot judge mutants (the default).
    ///
    /// # Errors
    /// [`Error::Eval`] when the measurement could not run (no mutation tool, the holdout does
    /// not pass the unmutated build, an I/O failure).
    async fn measure_strength(
        &self,
        req: &StrengthRequest,
    ) -> Result<Option<lightsout_eval::StrengthReport>, Error> {
        let _ = req;
        Ok(None)
    }
}

#[async_trait]
impl<T: Evaluator + ?Sized> Evaluator for &T {
    async fn evaluate(&self, req: &EvalRequest) -> Result<Verdict, Error> {
        (**self).evaluate(req).await
    }
    async fn measure_strength(
        &self,
        req: &StrengthRequest,
    ) -> Result<Option<lightsout_eval::StrengthReport>, Error> {
        (**self).measure_strength(req).await
    }
}
#[async_trait]
impl<T: Evaluator + ?Sized> Evaluator for Box<T> {
    async fn evaluate(&self, req: &EvalRequest) -> Result<Verdict, Error> {
        (**self).evaluate(req).await
    }
    async fn measure_strength(
        &self,
        req: &StrengthRequest,
    ) -> Result<Option<lightsout_eval::StrengthReport>, Error> {
        (**self).measure_strength(req).await
    }
}
#[async_trait]
impl<T: Evaluator + ?Sized> Evaluator for Arc<T> {
    async fn evaluate(&self, req: &EvalRequest) -> Result<Verdict, Error> {
        (**self).evaluate(req).await
    }
    async fn measure_strength(
        &self,
        req: &StrengthRequest,
    ) -> Result<Option<lightsout_eval::StrengthReport>, Error> {
        (**self).measure_strength(req).await
    }
}

/// An external holdout runner: `sh -c <command>` in the holdout directory.
///
/// It gets `LIGHTSOUT_WORKTREE` (the checkout), `LIGHTSOUT_REQUIREMENTS` (space-separated:
/// the task's and the regression bucket's), `LIGHTSOUT_STAGE` (`candidate`|`merged`),
/// `LIGHTSOUT_TASK`, `LIGHTSOUT_ATTEMPT`, `LIGHTSOUT_RESULTS` (a directory for raw
/// output) and `LIGHTSOUT_GATE` (the run's resolved gate policy as a TOML file that
/// `lightsout eval --gate` reads), plus the allowed environment, and prints one JSON object on
/// stdout:
/// `{"requirements": [{"id": "REQ-1", "trials": 3, "passed": 2, "category": "status mismatch"}],
/// "gate": "passed"}`. `gate` (`passed`, `failed` or `insufficient_evidence`, the status of
/// `lightsout eval`'s verdict under that policy) is optional; when present, anything but
/// `passed` fails the verdict. Each requirement must also have every trial passing.
/// Its stdout and stderr are kept in the results directory, never shown to the agent; the
/// agent sees only [`redact`]ed feedback.
#[derive(Debug, Clone)]
pub struct CommandEvaluator {
    /// Shell command.
    pub command: String,
    /// The holdout directory (working directory of the command).
    pub holdout_dir: PathBuf,
    /// Environment (allowlisted).
    pub env: BTreeMap<String, String>,
    /// Feedback redaction.
    pub redaction: Redaction,
    /// Fail requirements the runner reports nothing for.
    pub require_all: bool,
    /// Time limit in ms.
    pub timeout_ms: u64,
}

#[derive(Deserialize)]
struct RunnerOutput {
    requirements: Vec<RequirementResult>,
    #[serde(default)]
    gate: Option<lightsout_eval::GateStatus>,
}

impl CommandEvaluator {
    /// Runs the runner on `req` (see the type's docs): the verdict, and the gate's status
    /// when the runner printed one. Writes nothing but the runner's gate file and raw log
    /// under `req.artifacts_dir`.
    ///
    /// # Errors
    /// [`Error::Eval`] when the runner times out, exits unsuccessfully or prints no valid
    /// result JSON; [`Error::Io`] when the results directory cannot be written.
    pub(crate) async fn judge(
        &self,
        req: &EvalRequest,
    ) -> Result<(Verdict, Option<lightsout_eval::GateStatus>), Error> {
        let mut wanted: Vec<String> = req.requirements.clone();
        for r in &req.regression {
            if !wanted.contains(r) {
                wanted.push(r.clone());
            }
        }
        tokio::fs::create_dir_all(&req.artifacts_dir)
            .await
            .map_err(|e| Error::io("create eval results dir", &req.artifacts_dir, e))?;
        // One file per evaluation: several run at once and share the directory.
        let gate_file = req.artifacts_dir.join(format!(
            "{}-{}-{}.gate.toml",
            req.task_id,
            req.attempt,
            req.stage.as_str()
        ));
        let policy = req
            .policy
            .to_toml()
            .map_err(|e| Error::Eval(format!("writing the gate policy: {e}")))?;
        crate::journal::write_atomic(&gate_file, policy.as_bytes())?;
        // The runner is trusted but starts the agent's software: the whole tree dies with
        // the factory (a PID namespace whose init has `PR_SET_PDEATHSIG`).
        let mut cmd = match lightsout_fence::sandbox::lifetime_prefix() {
            Some(prefix) => {
                let mut c = tokio::process::Command::new(&prefix[0]);
                c.args(&prefix[1..]).arg("sh");
                c
            }
            None => tokio::process::Command::new("sh"),
        };
        let child = cmd
            .arg("-c")
            .arg(&self.command)
            .current_dir(&self.holdout_dir)
            .env_clear()
            .envs(&self.env)
            .env("LIGHTSOUT_WORKTREE", &req.worktree)
            .env("LIGHTSOUT_REQUIREMENTS", wanted.join(" "))
            .env("LIGHTSOUT_STAGE", req.stage.as_str())
            .env("LIGHTSOUT_TASK", &req.task_id)
            .env("LIGHTSOUT_ATTEMPT", req.attempt.to_string())
            .env("LIGHTSOUT_RESULTS", &req.artifacts_dir)
            .env("LIGHTSOUT_GATE", &gate_file)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(std::time::Duration::from_millis(self.timeout_ms), child)
            .await
            .map_err(|_| {
                Error::Eval(format!(
                    "holdout runner timed out after {} ms",
                    self.timeout_ms
                ))
            })?
            .map_err(|e| Error::io("run holdout runner", &self.holdout_dir, e))?;
        let raw = req.artifacts_dir.join(format!(
            "{}-{}-{}.log",
            req.task_id,
            req.attempt,
            req.stage.as_str()
        ));
        let mut log = out.stdout.clone();
        log.extend_from_slice(b"\n--- stderr ---\n");
        log.extend_from_slice(&out.stderr);
        crate::journal::write_atomic(&raw, &log)?;
        if !out.status.success() {
            return Err(Error::Eval(format!(
                "holdout runner exited with {} (see {})",
                out.status,
                raw.display()
            )));
        }
        let runner_out: RunnerOutput = serde_json::from_slice(&out.stdout).map_err(|e| {
            Error::Eval(format!(
                "holdout runner printed no valid result JSON: {e} (see {})",
                raw.display()
            ))
        })?;
        Ok(self.verdict(&wanted, &runner_out))
    }

    /// The verdict on `wanted` (the task's requirements, then the regression bucket's) from
    /// what the runner printed: each requirement must have run and passed every trial, and
    /// a printed gate status must be `passed`.
    fn verdict(
        &self,
        wanted: &[String],
        runner_out: &RunnerOutput,
    ) -> (Verdict, Option<lightsout_eval::GateStatus>) {
        let mut results = Vec::new();
        for id in wanted {
            match runner_out.requirements.iter().find(|r| &r.id == id) {
                Some(r) => results.push(RequirementResult {
                    passed: r.passed.min(r.trials),
                    ..r.clone()
                }),
                None if self.require_all => results.push(RequirementResult {
                    id: id.clone(),
                    trials: 0,
                    passed: 0,
                    category: Some("no holdout scenario ran".into()),
                }),
                None => {}
            }
        }
        let gate_ok = runner_out
            .gate
            .is_none_or(|g| g == lightsout_eval::GateStatus::Passed);
        let passed = gate_ok && results.iter().all(|r| r.trials > 0 && r.passed == r.trials);
        let mut feedback = redact(&results, self.redaction);
        if !gate_ok && feedback.trim().is_empty() {
            feedback = match runner_out.gate {
                Some(lightsout_eval::GateStatus::InsufficientEvidence) => {
                    "the holdout gate ran too few trials to clear its bounds".to_owned()
                }
                _ => "the holdout gate failed".to_owned(),
            };
        }
        (
            Verdict {
                passed,
                feedback,
                requirements: results,
            },
            runner_out.gate,
        )
    }
}

#[async_trait]
impl Evaluator for CommandEvaluator {
    /// [`CommandEvaluator::judge`], then the evaluation's record for `lightsout replay`
    /// (under `req.artifacts_dir`, hidden from agents and services).
    async fn evaluate(&self, req: &EvalRequest) -> Result<Verdict, Error> {
        let (verdict, gate) = self.judge(req).await?;
        crate::replay::write_runner_record(&self.holdout_dir, req, &verdict, gate).await?;
        Ok(verdict)
    }

    /// Runs the runner on each mutant as on a merged result (`LIGHTSOUT_STAGE=strength`,
    /// every requirement of the run, the run's gate policy), with the allowlisted environment
    /// only and inside the factory's lifetime sandbox.
    async fn measure_strength(
        &self,
        req: &StrengthRequest,
    ) -> Result<Option<lightsout_eval::StrengthReport>, Error> {
        std::fs::create_dir_all(&req.artifacts_dir)
            .map_err(|e| Error::io("create eval results dir", &req.artifacts_dir, e))?;
        let gate_file = req.artifacts_dir.join("strength.gate.toml");
        let policy = req
            .policy
            .to_toml()
            .map_err(|e| Error::Eval(format!("writing the gate policy: {e}")))?;
        crate::journal::write_atomic(&gate_file, policy.as_bytes())?;
        let mut env: Vec<(String, String)> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.push((
            "LIGHTSOUT_REQUIREMENTS".to_owned(),
            req.requirements.join(" "),
        ));
        env.push(("LIGHTSOUT_TASK".to_owned(), "strength".to_owned()));
        env.push(("LIGHTSOUT_ATTEMPT".to_owned(), "0".to_owned()));
        env.push((
            "LIGHTSOUT_GATE".to_owned(),
            gate_file.to_string_lossy().into_owned(),
        ));
        let judge = lightsout_eval::Judge::Command {
            command: self.command.clone(),
            dir: self.holdout_dir.clone(),
            env,
            clear_env: true,
            prefix: lightsout_fence::sandbox::lifetime_prefix().unwrap_or_default(),
        };
        let report = lightsout_eval::measure(&req.build, &judge, &req.options)
            .await
            .map_err(|e| Error::Eval(e.to_string()))?;
        Ok(Some(report))
    }
}

/// Runs around every agent call: the seam for budgets (reserve before, settle after),
/// policy (writes outside the worktree, leak scans) and audit.
#[async_trait]
pub trait AttemptHook: Send + Sync {
    /// Before the agent runs.
    ///
    /// # Errors
    /// [`Error`] when the hook itself fails (the run stops: fail closed).
    async fn before_attempt(&self, ctx: &TaskContext) -> Result<HookDecision, Error> {
        let _ = ctx;
        Ok(HookDecision::Proceed)
    }

    /// After the agent ran (before checks), with its report.
    ///
    /// # Errors
    /// [`Error`] when the hook itself fails (the run stops: fail closed).
    async fn after_attempt(
        &self,
        ctx: &TaskContext,
        report: &AgentReport,
    ) -> Result<HookDecision, Error> {
        let _ = (ctx, report);
        Ok(HookDecision::Proceed)
    }

    /// After the visible checks of an attempt ran (behind the fence): the seam for their
    /// policy violations, which the run leaves in its fence reports for this task and
    /// attempt.
    ///
    /// # Errors
    /// [`Error`] when the hook itself fails (the run stops: fail closed).
    async fn after_checks(&self, ctx: &TaskContext) -> Result<HookDecision, Error> {
        let _ = ctx;
        Ok(HookDecision::Proceed)
    }

    /// After the attempt was committed, with the diff from the task's base to its head
    /// (the text that crosses the fence towards main): the seam for leak scans.
    ///
    /// # Errors
    /// [`Error`] when the hook itself fails or finds holdout text (the run stops: fail
    /// closed).
    async fn inspect_diff(&self, ctx: &TaskContext, diff: &str) -> Result<HookDecision, Error> {
        let _ = (ctx, diff);
        Ok(HookDecision::Proceed)
    }
}

#[async_trait]
impl<T: AttemptHook + ?Sized> AttemptHook for &T {
    async fn before_attempt(&self, ctx: &TaskContext) -> Result<HookDecision, Error> {
        (**self).before_attempt(ctx).await
    }
    async fn after_attempt(&self, c: &TaskContext, r: &AgentReport) -> Result<HookDecision, Error> {
        (**self).after_attempt(c, r).await
    }
    async fn inspect_diff(&self, c: &TaskContext, d: &str) -> Result<HookDecision, Error> {
        (**self).inspect_diff(c, d).await
    }
    async fn after_checks(&self, c: &TaskContext) -> Result<HookDecision, Error> {
        (**self).after_checks(c).await
    }
}
#[async_trait]
impl<T: AttemptHook + ?Sized> AttemptHook for Box<T> {
    async fn before_attempt(&self, ctx: &TaskContext) -> Result<HookDecision, Error> {
        (**self).before_attempt(ctx).await
    }
    async fn after_attempt(&self, c: &TaskContext, r: &AgentReport) -> Result<HookDecision, Error> {
        (**self).after_attempt(c, r).await
    }
    async fn inspect_diff(&self, c: &TaskContext, d: &str) -> Result<HookDecision, Error> {
        (**self).inspect_diff(c, d).await
    }
    async fn after_checks(&self, c: &TaskContext) -> Result<HookDecision, Error> {
        (**self).after_checks(c).await
    }
}
#[async_trait]
impl<T: AttemptHook + ?Sized> AttemptHook for Arc<T> {
    async fn before_attempt(&self, ctx: &TaskContext) -> Result<HookDecision, Error> {
        (**self).before_attempt(ctx).await
    }
    async fn after_attempt(&self, c: &TaskContext, r: &AgentReport) -> Result<HookDecision, Error> {
        (**self).after_attempt(c, r).await
    }
    async fn inspect_diff(&self, c: &TaskContext, d: &str) -> Result<HookDecision, Error> {
        (**self).inspect_diff(c, d).await
    }
    async fn after_checks(&self, c: &TaskContext) -> Result<HookDecision, Error> {
        (**self).after_checks(c).await
    }
}

/// No hook.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHook;

impl AttemptHook for NoHook {}

/// Receives the run's events (progress bars, report writers, audit logs). Called inline
/// on the run loop: keep it cheap and non-blocking.
pub trait EventSink: Send + Sync {
    /// One event.
    fn emit(&self, event: &Event);
}

impl<T: EventSink + ?Sized> EventSink for &T {
    fn emit(&self, event: &Event) {
        (**self).emit(event);
    }
}
impl<T: EventSink + ?Sized> EventSink for Box<T> {
    fn emit(&self, event: &Event) {
        (**self).emit(event);
    }
}
impl<T: EventSink + ?Sized> EventSink for Arc<T> {
    fn emit(&self, event: &Event) {
        (**self).emit(event);
    }
}

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
            final_outcome: Some("failed".into()),
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

    fn r(id: &str, trials: u32, passed: u32, cat: &str) -> RequirementResult {
        RequirementResult {
            id: id.into(),
            trials,
            passed,
            category: Some(cat.into()),
        }
    }

    #[test]
    fn redaction_levels() {
        let res = [r("REQ-1", 5, 5, "-"), r("REQ-3", 5, 3, "status mismatch")];
        assert_eq!(
            redact(&res, Redaction::Requirement),
            "REQ-3: 2 of 5 trials failed: status mismatch"
        );
        assert_eq!(
            redact(&res, Redaction::Category),
            "2 of 5 trials failed: status mismatch"
        );
        assert_eq!(
            redact(&res, Redaction::Full),
            "the holdout suite failed for 1 requirement(s)"
        );
        assert_eq!(redact(&res[..1], Redaction::Requirement), "");
    }
}
