//! The holdout's judge as a run's configuration wires it: a holdout runner
//! (`[holdout] command`) or the eval engine (`[target]` with the holdout's scenarios and
//! `[twins]`). [`Factory::new`](crate::Factory::new) and [`replay`](crate::replay::replay) build
//! it here, so that a replay judges exactly as the run did.

use crate::config::Redaction;
use crate::engine::RecordedEngine;
use crate::stages::{
    BoxError, EvalRequest, Evaluator, RequirementResult, StrengthRequest, Verdict, redact,
};
use crate::{Config, EngineEvaluator, Error};
use async_trait::async_trait;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Time limit of one holdout runner invocation (ms).
pub(crate) const RUNNER_TIMEOUT_MS: u64 = 600_000;

/// The configured judge of the holdout.
pub(crate) enum HoldoutJudge {
    /// `[holdout] command`.
    Runner(CommandEvaluator),
    /// `[target]` and `[twins]`.
    Engine(RecordedEngine),
}

/// The judge `config` asks for, with the allowlisted environment `env`; `None` when the config
/// names none (no `[holdout] command`, or no `[target]` or holdout directory). The holdout
/// directory is `[holdout] path`, or `LIGHTSOUT_HOLDOUT` when set.
///
/// # Errors
/// [`Error::Config`] when `[holdout] command` has no holdout directory; the fence's error when
/// its policy is invalid.
pub(crate) fn holdout_judge(
    config: &Config,
    env: &BTreeMap<String, String>,
) -> Result<Option<HoldoutJudge>, Error> {
    let holdout = std::env::var("LIGHTSOUT_HOLDOUT").ok();
    let dir = config.holdout_dir(holdout.as_deref());
    // Where the built-in twins' drift manifests are: both judges read twin lifecycles from
    // here (a holdout runner through `lightsout twin serve`, which reads the variable).
    let twin_state_dir = config.base_dir.join(".lightsout").join("twins");
    if let Some(command) = &config.holdout.command {
        let dir = dir.ok_or_else(|| {
            Error::Config(
                "[holdout] command needs [holdout] path (or LIGHTSOUT_HOLDOUT): the directory \
                 outside the repository that holds the scenarios"
                    .into(),
            )
        })?;
        let mut env = env.clone();
        env.insert(
            "LIGHTSOUT_TWIN_STATE_DIR".to_owned(),
            twin_state_dir.to_string_lossy().into_owned(),
        );
        return Ok(Some(HoldoutJudge::Runner(CommandEvaluator {
            command: command.clone(),
            holdout_dir: dir,
            env,
            redaction: config.holdout.redaction,
            require_all: config.holdout.require_all.unwrap_or(true),
            timeout_ms: RUNNER_TIMEOUT_MS,
        })));
    }
    let (Some(t), Some(dir)) = (&config.target, dir) else {
        return Ok(None);
    };
    // A twin directory is relative to lightsout.toml.
    let twins = config
        .twins
        .iter()
        .map(|(k, v)| {
            let resolved = if v == "builtin" || v.starts_with("http") {
                v.clone()
            } else {
                config.base_dir.join(v).to_string_lossy().into_owned()
            };
            (k.clone(), resolved)
        })
        .collect();
    Ok(Some(HoldoutJudge::Engine(RecordedEngine(
        EngineEvaluator {
            holdout_dir: dir,
            target_command: t.command.clone(),
            ready_path: t.ready_path.clone(),
            ready_timeout_ms: t.ready_timeout_ms,
            trials: config
                .holdout
                .trials
                .unwrap_or(crate::factory::DEFAULT_TRIALS),
            twins,
            twin_state_dir,
            env: env.clone(),
            redaction: config.holdout.redaction,
            require_all: config.holdout.require_all.unwrap_or(true),
            fence: Some(Arc::new(lightsout_fence::policy::Fence::new(
                config.fence.clone(),
            )?)),
        },
    ))))
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
    async fn evaluate(&self, req: &EvalRequest) -> Result<Verdict, BoxError> {
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
    ) -> Result<Option<lightsout_eval::StrengthReport>, BoxError> {
        Ok(self.measure(req).await.map(Some)?)
    }
}

impl CommandEvaluator {
    /// [`Evaluator::measure_strength`], with the factory's error.
    async fn measure(
        &self,
        req: &StrengthRequest,
    ) -> Result<lightsout_eval::StrengthReport, Error> {
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
        lightsout_eval::measure(&req.build, &judge, &req.options)
            .await
            .map_err(|e| Error::Eval(e.to_string()))
    }
}
