//! [`EngineEvaluator`]: the holdout judged by `lightsout-eval`'s engine (scenario files,
//! k trials, Wilson intervals, the gate, redacted feedback) against the software started
//! from the task's worktree. [`redact`] builds the feedback an agent gets from per-requirement
//! results.

use crate::Error;
use async_trait::async_trait;
use lightsout_config::Redaction;
use lightsout_core::{BoxError, RequirementResult, Verdict};
use lightsout_eval::{
    CommandTarget, EvalRequest, Evaluator, RedactLevel, RunOptions, Runner, StepLibrary,
    StrengthRequest, Suite, TargetConfig,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Runs the holdout scenarios in `holdout_dir` with the eval engine.
///
/// For each request it loads the suite, keeps the scenarios that satisfy a requested
/// requirement (the task's and the regression bucket's), starts the target command in the
/// worktree (`{port}` is a free loopback port), runs the trials, and judges with the gate
/// policy. The verdict passes only when the gate passes and, with `require_all`, every
/// requested requirement had at least one scenario. Feedback comes from
/// `lightsout_eval::feedback` at the configured redaction level; the full result document
/// is written to the run's `eval/` directory, never shown to the agent.
#[derive(Debug, Clone)]
pub struct EngineEvaluator {
    /// The holdout directory (`*.scenario.md`, `*.feature`).
    pub holdout_dir: PathBuf,
    /// Shell command starting the software under test (`{port}` substituted), run in the
    /// worktree.
    pub target_command: String,
    /// Readiness probe path.
    pub ready_path: String,
    /// Readiness timeout in ms.
    pub ready_timeout_ms: u64,
    /// Trials per scenario when no gate rule asks for more (the sequential gate may stop a
    /// clear failure earlier). The cap is the larger of this and what the request's policy
    /// needs (`GatePolicy::max_trials_needed`), so no rule is cut short.
    pub trials: u32,
    /// Twins by name: an `http(s)://` base URL of a running twin, `builtin` for a built-in
    /// twin of that name (`slack`, `github`, `okta`), or a twin directory. Non-URL twins are
    /// loaded fresh and served on a loopback port for each evaluation (clean state per
    /// trial run), and the target gets their URLs as `LIGHTSOUT_TWIN_<NAME>_URL`.
    pub twins: BTreeMap<String, String>,
    /// Where the built-in twins' drift manifests are (`DIR/NAME/manifest.json`; the project's
    /// `.lightsout/twins`). Each served twin carries its lifecycle from there (a twin
    /// directory's from its own `manifest.json`) and answers it at `GET /__twin/lifecycle`, so
    /// the eval engine weakens, fails or stops the scenarios resting on a stale twin. A retired
    /// twin is served all the same: its scenarios are stopped with the reason, not the run.
    pub twin_state_dir: PathBuf,
    /// Environment of the target (allowlisted).
    pub env: BTreeMap<String, String>,
    /// Feedback redaction.
    pub redaction: Redaction,
    /// Fail requirements with no scenario.
    pub require_all: bool,
    /// The fence the target runs behind (its sandbox with the worktree read-only and the
    /// factory's network, dying with the factory); `None` runs it directly.
    pub fence: Option<std::sync::Arc<lightsout_fence::policy::Fence>>,
}

fn level(r: Redaction) -> RedactLevel {
    match r {
        Redaction::None => RedactLevel::None,
        Redaction::Requirement => RedactLevel::Requirement,
        Redaction::Category => RedactLevel::Category,
        Redaction::Full => RedactLevel::Full,
    }
}

fn eval_err(e: impl std::fmt::Display) -> Error {
    Error::Eval(e.to_string())
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

/// The feedback an agent gets when the service it built did not start: fixed words and the
/// time limit only (the target's own output stays in the run's `eval/` directory).
pub fn not_started_feedback(ready_timeout_ms: u64) -> String {
    format!(
        "the service did not start or answer its readiness probe within {} s; make sure it \
         starts with the project's start command and answers the readiness path",
        ready_timeout_ms.div_ceil(1000)
    )
}

impl EngineEvaluator {
    /// The verdict for a service that did not start: every requested requirement failed with
    /// no trial, and the reason kept beside the other results (never shown to the agent).
    fn not_started(
        &self,
        req: &EvalRequest,
        wanted: &[String],
        why: &str,
    ) -> Result<Verdict, Error> {
        let log = req.artifacts_dir.join(format!(
            "{}-{}-{}.not-started.log",
            req.task_id,
            req.attempt,
            req.stage.as_str()
        ));
        crate::write_atomic(&log, why.as_bytes())?;
        Ok(Verdict {
            passed: false,
            requirements: wanted
                .iter()
                .map(|id| RequirementResult {
                    id: id.clone(),
                    trials: 0,
                    passed: 0,
                    category: Some("service did not start".into()),
                })
                .collect(),
            feedback: not_started_feedback(self.ready_timeout_ms),
        })
    }

    /// Serves the configured twins; returns name → URL and the server (stopped on drop).
    async fn start_twins(
        &self,
    ) -> Result<
        (
            BTreeMap<String, String>,
            Option<lightsout_twin::ServerHandle>,
        ),
        Error,
    > {
        let (urls, handle, _) = self.start_twins_taped(&TwinTapes::Off).await?;
        Ok((urls, handle))
    }

    /// As [`Self::start_twins`], with every served twin recording or replaying a tape
    /// (`lightsout replay`); returns the served twins too, to take their tapes afterwards.
    ///
    /// # Errors
    /// [`Error::Eval`] when a twin cannot be loaded or served.
    pub async fn start_twins_taped(
        &self,
        tapes: &TwinTapes,
    ) -> Result<
        (
            BTreeMap<String, String>,
            Option<lightsout_twin::ServerHandle>,
            Vec<(String, String, lightsout_twin::Twin)>,
        ),
        Error,
    > {
        let mut urls = BTreeMap::new();
        let mut served = Vec::new();
        for (name, how) in &self.twins {
            if how.starts_with("http://") || how.starts_with("https://") {
                urls.insert(name.clone(), how.trim_end_matches('/').to_owned());
                continue;
            }
            let source = if how == "builtin" {
                name.as_str()
            } else {
                how.as_str()
            };
            let opts = match tapes {
                TwinTapes::Replay(t) => t
                    .get(name)
                    .map_or_else(lightsout_twin::TwinOptions::default, |r| r.options),
                _ => lightsout_twin::TwinOptions::default(),
            };
            // `force`: a retired twin still comes up, saying `retired`, so that the eval engine
            // stops exactly the scenarios that need it with the reason (and the others run).
            let twin = lightsout_twin::load(source, opts, &self.twin_state_dir, true)
                .map_err(|e| Error::Eval(format!("twin `{name}` ({source}): {e}")))?;
            match tapes {
                TwinTapes::Off => {}
                TwinTapes::Record => twin.record_tape(),
                TwinTapes::Replay(t) => {
                    let exchanges = t.get(name).map(|r| r.exchanges.clone());
                    twin.replay_tape(exchanges.unwrap_or_default());
                }
            }
            served.push((name.clone(), twin));
        }
        let handles: Vec<(String, String, lightsout_twin::Twin)> = served
            .iter()
            .map(|(n, t)| (n.clone(), self.twins[n].clone(), t.clone()))
            .collect();
        if served.is_empty() {
            return Ok((urls, None, handles));
        }
        let names: Vec<String> = served.iter().map(|(n, _)| n.clone()).collect();
        let handle = lightsout_twin::TwinServer::start(
            served.into_iter().map(|(_, t)| t).collect(),
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await
        .map_err(|e| Error::Eval(format!("serving twins: {e}")))?;
        for n in names {
            let url = handle.url_of(&n).unwrap_or_else(|| handle.url());
            urls.insert(n, url);
        }
        Ok((urls, Some(handle), handles))
    }
}

impl EngineEvaluator {
    /// The whole holdout suite, or why it cannot be used.
    fn load_suite(&self) -> Result<(StepLibrary, Suite), Error> {
        let library = StepLibrary::builtin();
        let (suite, diags): (Suite, _) =
            Suite::load_dir(&self.holdout_dir, &library).map_err(eval_err)?;
        let errors: Vec<String> = diags
            .iter()
            .filter(|d| d.severity == lightsout_spec::Severity::Error)
            .map(|d| format!("{} {}", d.code, d.message))
            .collect();
        if !errors.is_empty() {
            return Err(Error::Eval(format!(
                "the holdout suite in {} has errors: {}",
                self.holdout_dir.display(),
                errors.join("; ")
            )));
        }
        Ok((library, suite))
    }

    /// How the service of the build in `dir` is started: the target command in `dir`, with
    /// the allowlisted environment (the sandbox is added per build by the caller).
    fn target(&self, dir: &std::path::Path) -> CommandTarget {
        let mut target = CommandTarget::new(self.target_command.clone());
        target.ready_path.clone_from(&self.ready_path);
        target.ready_timeout = Duration::from_millis(self.ready_timeout_ms);
        target.cwd = Some(dir.to_path_buf());
        target.env = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        target
    }
}

impl EngineEvaluator {
    /// [`Evaluator::evaluate`] with the twins' tapes recorded or replayed, and what it did.
    /// `hide` replaces `req.artifacts_dir` as the results directory hidden from the service
    /// (a directory holding it: nested hidden directories cannot both be hidden).
    ///
    /// # Errors
    /// [`Error::Eval`] when the suite cannot be loaded or run, or twins not served;
    /// [`Error::Fence`] when the service's sandbox cannot be built; [`Error::Io`] when a
    /// result cannot be written.
    pub async fn evaluate_traced(
        &self,
        req: &EvalRequest,
        tapes: &TwinTapes,
        hide: Option<&std::path::Path>,
    ) -> Result<(Verdict, EvalTrace), Error> {
        let mut trace = EvalTrace::default();
        let mut wanted: Vec<String> = req.requirements.clone();
        for r in &req.regression {
            if !wanted.contains(r) {
                wanted.push(r.clone());
            }
        }
        let (library, mut suite) = self.load_suite()?;
        suite
            .scenarios
            .retain(|s| s.satisfies.iter().any(|r| wanted.contains(r)));
        let mut results: Vec<RequirementResult> = Vec::new();
        let mut gate_passed = true;
        let mut feedback = String::new();
        if !suite.scenarios.is_empty() {
            let (twin_urls, twin_server, handles) = self.start_twins_taped(tapes).await?;
            let mut target = self.target(&req.worktree);
            if let Some(fence) = &self.fence {
                let hidden = [
                    self.holdout_dir.clone(),
                    hide.map_or_else(|| req.artifacts_dir.clone(), std::path::Path::to_path_buf),
                ];
                target.wrap = fence
                    .service_wrap(&req.worktree, &hidden, &twin_ports(&twin_urls))?
                    .unwrap_or_default();
            }
            let trials = self.trials.max(1);
            let opts = RunOptions {
                trials,
                max_trials: req.policy.max_trials_needed().unwrap_or(0).max(trials),
                twins: twin_urls,
                policy: req.policy.clone(),
                ..RunOptions::default()
            };
            let runner = Runner::new(library).map_err(eval_err)?;
            let ran = runner
                .run(&suite, &TargetConfig::Command(target), &opts)
                .await;
            drop(twin_server);
            for (name, source, twin) in handles {
                if let Some(tape) = twin.take_tape() {
                    trace.twins.insert(name, (source, tape));
                }
            }
            let run = match ran {
                Ok(run) => run,
                // The build's service never came up: a failed attempt the agent can fix,
                // not an aborted run.
                Err(lightsout_eval::Error::Target(why)) => {
                    trace.not_started = true;
                    return Ok((self.not_started(req, &wanted, &why)?, trace));
                }
                Err(e) => return Err(eval_err(e)),
            };
            let raw = req.artifacts_dir.join(format!(
                "{}-{}-{}.json",
                req.task_id,
                req.attempt,
                req.stage.as_str()
            ));
            let bytes = serde_json::to_vec_pretty(&run).map_err(eval_err)?;
            crate::write_atomic(&raw, &bytes)?;
            gate_passed = run.gate.passed;
            feedback = lightsout_eval::feedback(&run, level(self.redaction));
            trace.run = Some(run.clone());
            results = self.requirement_results(&run, &wanted);
        } else if self.require_all {
            results = wanted
                .iter()
                .map(|id| RequirementResult {
                    id: id.clone(),
                    trials: 0,
                    passed: 0,
                    category: Some("no holdout scenario".into()),
                })
                .collect();
        }
        Ok((self.verdict(results, gate_passed, feedback), trace))
    }

    /// Per requirement: the trials and passes of the scenarios that satisfy it, and the first
    /// failure's category. A requirement no scenario ran is left out unless `require_all`.
    fn requirement_results(
        &self,
        run: &lightsout_eval::RunResult,
        wanted: &[String],
    ) -> Vec<RequirementResult> {
        let mut results = Vec::new();
        for id in wanted {
            let mut r = RequirementResult {
                id: id.clone(),
                trials: 0,
                passed: 0,
                category: None,
            };
            for s in run.scenarios.iter().filter(|s| s.satisfies.contains(id)) {
                r.trials += s.stats.trials;
                r.passed += s.stats.passes;
                if r.category.is_none() {
                    r.category = s
                        .trials
                        .iter()
                        .find_map(|t| t.failure)
                        .map(|c| c.describe().to_owned());
                }
            }
            if r.trials > 0 || self.require_all {
                results.push(r);
            }
        }
        results
    }

    /// The verdict: the gate's, failed too when `require_all` and a requirement went
    /// unverified; redacted feedback only when it failed.
    fn verdict(
        &self,
        results: Vec<RequirementResult>,
        gate_passed: bool,
        mut feedback: String,
    ) -> Verdict {
        let unverified: Vec<&RequirementResult> =
            results.iter().filter(|r| r.trials == 0).collect();
        let passed = gate_passed && (!self.require_all || unverified.is_empty());
        if !passed && feedback.trim().is_empty() {
            feedback = redact(&results, self.redaction);
        } else if !unverified.is_empty() && self.require_all {
            let extra = redact(
                &unverified.into_iter().cloned().collect::<Vec<_>>(),
                self.redaction,
            );
            feedback = format!("{}\n{extra}", feedback.trim_end());
        }
        Verdict {
            passed,
            requirements: results,
            feedback: if passed {
                String::new()
            } else {
                feedback.trim().to_owned()
            },
        }
    }
}

/// Whether the served twins record tapes, replay them, or neither.
#[derive(Debug, Clone)]
pub enum TwinTapes {
    /// No tape (strength measurement).
    Off,
    /// Record every twin's exchanges (every evaluation of a run).
    Record,
    /// Replay the recorded tapes, by twin name (a twin with none replays an empty tape with
    /// the default options).
    Replay(BTreeMap<String, ReplayTape>),
}

/// One twin's recorded tape as a replay serves it again.
#[derive(Debug, Clone)]
pub struct ReplayTape {
    /// The options that rebuild the twin as the run served it (seed, clock start).
    pub options: lightsout_twin::TwinOptions,
    /// Every exchange the service had with it, in order.
    pub exchanges: Vec<lightsout_twin::record::Interaction>,
}

/// What an evaluation did besides its verdict: the result document (when scenarios ran) and
/// the tapes of the twins, by twin name, with their source.
#[derive(Debug, Default)]
pub struct EvalTrace {
    /// The eval engine's result document, when scenarios ran.
    pub run: Option<lightsout_eval::RunResult>,
    /// The service under test did not start.
    pub not_started: bool,
    /// Twin name → (its configured source, its tape).
    pub twins: BTreeMap<String, (String, lightsout_twin::TapeReport)>,
}

/// As an [`Evaluator`], the engine judges without taping the twins and writes no replay
/// record; the factory's configured judge wraps it to record each evaluation for
/// `lightsout replay`.
#[async_trait]
impl Evaluator for EngineEvaluator {
    async fn evaluate(&self, req: &EvalRequest) -> Result<Verdict, BoxError> {
        let (verdict, _trace) = self.evaluate_traced(req, &TwinTapes::Off, None).await?;
        Ok(verdict)
    }

    /// Judges each mutant with the whole holdout suite in process, its service started from
    /// the mutant's copy behind the same fence as every evaluated build (the holdout and the
    /// results hidden). The twins are served once for the whole measurement; as every trial
    /// resets them, mutants are then judged one at a time.
    async fn measure_strength(
        &self,
        req: &StrengthRequest,
    ) -> Result<Option<lightsout_eval::StrengthReport>, BoxError> {
        Ok(Some(self.measure(req).await?))
    }
}

impl EngineEvaluator {
    /// [`Evaluator::measure_strength`], with this crate's error.
    ///
    /// # Errors
    /// [`Error::Eval`] when the suite has no scenario or cannot be loaded, or the
    /// measurement cannot run.
    pub async fn measure(
        &self,
        req: &StrengthRequest,
    ) -> Result<lightsout_eval::StrengthReport, Error> {
        let (library, suite) = self.load_suite()?;
        if suite.scenarios.is_empty() {
            return Err(Error::Eval(format!(
                "no holdout scenario in {}",
                self.holdout_dir.display()
            )));
        }
        let (twin_urls, _twin_server) = self.start_twins().await?;
        let ports = twin_ports(&twin_urls);
        let wrap: Option<lightsout_eval::strength::ServiceWrap> = self.fence.clone().map(|fence| {
            let hidden = vec![self.holdout_dir.clone(), req.artifacts_dir.clone()];
            let wrap: lightsout_eval::strength::ServiceWrap = std::sync::Arc::new(move |dir| {
                fence
                    .service_wrap(dir, &hidden, &ports)
                    .map(Option::unwrap_or_default)
                    .map_err(|e| e.to_string())
            });
            wrap
        });
        let shared_twins = !twin_urls.is_empty();
        let judge = lightsout_eval::Judge::Suite {
            runner: std::sync::Arc::new(Runner::new(library).map_err(eval_err)?),
            suite: std::sync::Arc::new(suite),
            target: self.target(&req.build),
            opts: RunOptions {
                twins: twin_urls,
                policy: req.policy.clone(),
                ..RunOptions::default()
            },
            wrap,
        };
        let mut options = req.options.clone();
        if shared_twins {
            options.jobs = 1;
        }
        lightsout_eval::measure(&req.build, &judge, &options)
            .await
            .map_err(eval_err)
    }
}

/// The TCP ports of the twins' URLs (`scheme://host[:port]/...`; 80 or 443 by scheme when
/// none is written): the only ports a sandboxed service under test may connect to.
fn twin_ports(urls: &BTreeMap<String, String>) -> Vec<u16> {
    let mut ports: Vec<u16> = urls
        .values()
        .filter_map(|u| {
            let (scheme, rest) = u.split_once("://")?;
            let authority = rest.split(['/', '?', '#']).next()?;
            let host_port = authority.rsplit('@').next()?;
            match host_port.rsplit_once(':') {
                Some((_, p)) if !p.contains(']') => p.parse().ok(),
                _ => Some(if scheme == "https" { 443 } else { 80 }),
            }
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

#[cfg(test)]
mod tests {
    use super::{Redaction, RequirementResult, redact};

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

    #[test]
    fn twin_ports_reads_the_port_or_the_scheme_default() {
        let urls: super::BTreeMap<String, String> = [
            ("a", "http://127.0.0.1:41234"),
            ("b", "https://api.example.com/v1"),
            ("c", "http://[::1]:9000/x"),
            ("d", "http://[::1]/x"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
        assert_eq!(super::twin_ports(&urls), vec![80, 443, 9000, 41234]);
    }
}
