//! The runner: starts the target, runs every scenario's trials under the sequential gate,
//! and assembles the [`RunResult`].

use crate::Error;
use crate::gate::GatePolicy;
use crate::result::{
    Failure, FailureCategory, RunResult, SCHEMA_VERSION, ScenarioResult, StepResult, StepStatus,
    Summary, TrialResult,
};
use crate::scenario::{Scenario, Suite};
use crate::stats::{Sequential, TrialStats, sequential};
use crate::steps::StepLibrary;
use crate::target::{RunningTarget, TargetConfig, TargetHandle};
use crate::twins::{TwinEvidence, TwinState};
use crate::world::World;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A progress event, for a progress bar.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Progress {
    /// The target is up; `scenarios` will run with at least `trials` trials each.
    Started {
        /// Number of scenarios.
        scenarios: usize,
        /// Requested trials per scenario.
        trials: u32,
    },
    /// A trial finished.
    Trial {
        /// Scenario id.
        scenario: String,
        /// 0-based trial index.
        index: u32,
        /// Whether it passed.
        passed: bool,
    },
    /// A scenario's trials finished.
    ScenarioDone {
        /// Scenario id.
        scenario: String,
        /// Passes.
        passes: u32,
        /// Trials.
        trials: u32,
    },
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Options of a run.
#[derive(Clone)]
pub struct RunOptions {
    /// Trials per scenario (k), at least 1.
    pub trials: u32,
    /// Cap on trials per scenario for the sequential gate; below `trials` means `trials`.
    pub max_trials: u32,
    /// Timeout of one trial; on expiry the trial fails with [`FailureCategory::Timeout`] and
    /// everything it started is killed.
    pub trial_timeout: Duration,
    /// Timeout of one request or process run.
    pub step_timeout: Duration,
    /// Twins by name → base URL; each is reset (`POST /__twin/reset`) before every trial.
    pub twins: BTreeMap<String, String>,
    /// The gate policy (also sets per-tag thresholds and trial counts for the sequential gate).
    pub policy: GatePolicy,
    /// A previous run: scenarios that passed every trial there form the guard bucket.
    pub baseline: Option<RunResult>,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
    /// Stop at the first scenario with a failing trial: the scenarios after it are not run and
    /// are absent from the result. For mutation testing (`lightsout strength`), where one
    /// failure decides; never for a gate verdict on a build.
    pub fail_fast: bool,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("trials", &self.trials)
            .field("max_trials", &self.max_trials)
            .field("trial_timeout", &self.trial_timeout)
            .field("twins", &self.twins)
            .field("policy", &self.policy)
            .field("fail_fast", &self.fail_fast)
            .finish_non_exhaustive()
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            trials: 1,
            max_trials: 1,
            trial_timeout: Duration::from_secs(60),
            step_timeout: Duration::from_secs(30),
            twins: BTreeMap::new(),
            policy: GatePolicy::default_policy(),
            baseline: None,
            progress: None,
            fail_fast: false,
        }
    }
}

/// Runs suites with a step library.
#[derive(Debug, Clone)]
pub struct Runner {
    library: Arc<StepLibrary>,
    client: reqwest::Client,
}

impl Runner {
    /// A runner with `library` and a fresh HTTP client (connection pool shared by all trials;
    /// no proxy, so loopback targets are reached directly; redirects are not followed, so a
    /// scenario sees the real `3xx` and its `Location`).
    ///
    /// # Errors
    /// [`Error::Http`] when the HTTP client cannot be built (TLS backend failure).
    pub fn new(library: StepLibrary) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Runner {
            library: Arc::new(library),
            client,
        })
    }

    /// The step library.
    pub fn library(&self) -> &StepLibrary {
        &self.library
    }

    /// Starts the target, runs the suite, stops the target, and judges the gate.
    ///
    /// The target's process group is killed on every exit path, including cancellation of this
    /// future.
    ///
    /// # Errors
    /// [`Error::InvalidSuite`] when a step did not resolve; [`Error::Target`] when the target
    /// cannot start or become ready; [`Error::Http`] when the client cannot be built.
    pub async fn run(
        &self,
        suite: &Suite,
        target: &TargetConfig,
        opts: &RunOptions,
    ) -> Result<RunResult, Error> {
        if !suite.is_resolved() {
            return Err(Error::InvalidSuite(
                "some steps did not resolve; fix the load diagnostics first".to_owned(),
            ));
        }
        let started_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let start = Instant::now();
        let running = RunningTarget::start(target, &opts.twins, &self.client).await?;
        let lifecycles =
            crate::twins::lifecycles(&self.client, &opts.twins, opts.step_timeout).await;
        if let Some(p) = &opts.progress {
            p(&Progress::Started {
                scenarios: suite.scenarios.len(),
                trials: opts.trials,
            });
        }
        let baseline: HashMap<&str, bool> = opts
            .baseline
            .iter()
            .flat_map(|b| &b.scenarios)
            .map(|s| {
                (
                    s.id.as_str(),
                    s.stats.trials > 0 && s.stats.passes == s.stats.trials,
                )
            })
            .collect();
        let mut results = Vec::with_capacity(suite.scenarios.len());
        for sc in &suite.scenarios {
            let guard = sc.has_tag("@regression") || baseline.get(sc.id.as_str()) == Some(&true);
            let r = self
                .run_scenario(sc, &running, opts, guard, &lifecycles)
                .await;
            let failed = r.stats.passes < r.stats.trials;
            results.push(r);
            if opts.fail_fast && failed {
                break;
            }
        }
        running.stop(Duration::from_secs(3)).await;
        let gate = opts.policy.evaluate(&results);
        let summary = Summary::of(&results);
        Ok(RunResult {
            schema_version: SCHEMA_VERSION,
            started_at,
            duration_ms: ms(start.elapsed()),
            target: match target {
                TargetConfig::Url(u) => u.clone(),
                TargetConfig::Command(c) => c.command.clone(),
            },
            trials: opts.trials.max(1),
            max_trials: opts.max_trials.max(opts.trials).max(1),
            scenarios: results,
            summary,
            gate,
            policy: opts.policy.clone(),
            twins: lifecycles.into_values().collect(),
        })
    }

    async fn run_scenario(
        &self,
        sc: &Scenario,
        target: &RunningTarget,
        opts: &RunOptions,
        guard: bool,
        lifecycles: &BTreeMap<String, TwinEvidence>,
    ) -> ScenarioResult {
        let start = Instant::now();
        // The stale twins its steps name; a retired one stops the scenario before any trial.
        let mut stale: Vec<TwinEvidence> = crate::twins::named_in(sc, opts.twins.keys())
            .iter()
            .filter_map(|n| lifecycles.get(n))
            .filter(|e| e.state.is_stale())
            .cloned()
            .collect();
        if let Some(retired) = stale.iter().find(|e| e.state == TwinState::Retired) {
            let trial = retired_trial(sc, 0, retired);
            return Self::scenario_result(
                sc,
                opts,
                guard,
                start,
                vec![trial],
                0,
                Sequential::Done,
                stale,
            );
        }
        // The stale twins it does not name: a request to one during a trial makes the
        // scenario rest on it too (measured only for stale twins).
        let unnamed: Vec<&TwinEvidence> = lifecycles
            .values()
            .filter(|e| e.state.is_stale() && !stale.iter().any(|x| x.name == e.name))
            .collect();
        let cap = opts.max_trials.max(opts.trials).max(1);
        let min_trials = opts
            .policy
            .trials_for(&sc.tags)
            .unwrap_or(0)
            .max(opts.trials)
            .clamp(1, cap);
        // A scenario with a failing trial is flaky: from then on it must reach the highest
        // bound or satisfaction a rule asks of it on its own trials, so it keeps running while
        // its interval straddles that, up to the cap.
        let threshold = opts.policy.threshold_for(&sc.tags);
        let flaky_threshold = opts.policy.flaky_threshold_for(&sc.tags);
        let mut trials = Vec::new();
        let mut passes = 0u32;
        let stopped = loop {
            let n = trials.len() as u32;
            let aim = if passes < n {
                flaky_threshold
            } else {
                threshold
            };
            let decision = sequential(passes, n, min_trials, cap, aim);
            if decision != Sequential::Continue {
                break decision;
            }
            let mut t = self
                .run_trial(sc, n, &target.base_url, &target.handle, opts)
                .await;
            for e in &unnamed {
                if stale.iter().any(|x| x.name == e.name) {
                    continue;
                }
                let url = &opts.twins[&e.name];
                let called =
                    crate::twins::requests_since_reset(&self.client, url, opts.step_timeout)
                        .await
                        .is_some_and(|c| c > 0);
                if called {
                    stale.push((*e).clone());
                    if e.state == TwinState::Retired {
                        t = retired_trial(sc, n, e);
                    }
                }
            }
            passes += u32::from(t.passed);
            if let Some(p) = &opts.progress {
                p(&Progress::Trial {
                    scenario: sc.id.clone(),
                    index: n,
                    passed: t.passed,
                });
            }
            trials.push(t);
        };
        stale.sort_by(|a, b| a.name.cmp(&b.name));
        Self::scenario_result(sc, opts, guard, start, trials, passes, stopped, stale)
    }

    /// The result of scenario `sc` from its trials, and the progress event that says so.
    #[allow(clippy::too_many_arguments)] // the pieces of one result, each named
    fn scenario_result(
        sc: &Scenario,
        opts: &RunOptions,
        guard: bool,
        start: Instant,
        trials: Vec<TrialResult>,
        passes: u32,
        stopped: Sequential,
        stale_twins: Vec<TwinEvidence>,
    ) -> ScenarioResult {
        let n = trials.len() as u32;
        let stats = TrialStats::new(passes, n, opts.trials.max(1));
        if let Some(p) = &opts.progress {
            p(&Progress::ScenarioDone {
                scenario: sc.id.clone(),
                passes,
                trials: n,
            });
        }
        ScenarioResult {
            id: sc.id.clone(),
            name: sc.name.clone(),
            path: sc.path.clone(),
            satisfies: sc.satisfies.clone(),
            tags: sc.tags.clone(),
            kind: sc.kind,
            guard,
            regression: guard && passes < n,
            stats,
            stopped,
            duration_ms: ms(start.elapsed()),
            trials,
            stale_twins,
        }
    }

    /// Runs one trial of `sc` against `base_url`, with a fresh [`World`].
    pub async fn run_trial(
        &self,
        sc: &Scenario,
        index: u32,
        base_url: &str,
        handle: &TargetHandle,
        opts: &RunOptions,
    ) -> TrialResult {
        let start = Instant::now();
        let mut steps: Vec<StepResult> = sc
            .steps
            .iter()
            .map(|s| StepResult {
                keyword: s.keyword,
                text: s.text.clone(),
                status: StepStatus::Skipped,
                duration_ms: 0.0,
                failure: None,
            })
            .collect();
        let mut current = 0usize;
        let mut step_start = Instant::now();
        let mut world = World::new(
            base_url,
            opts.twins.clone(),
            self.client.clone(),
            handle.clone(),
        );
        world.step_timeout = opts.step_timeout;
        let body = async {
            for name in opts.twins.keys() {
                let url = format!("{}/__twin/reset", opts.twins[name]);
                let ok = self
                    .client
                    .post(&url)
                    .timeout(opts.step_timeout)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if !ok {
                    return Some(Failure {
                        category: FailureCategory::TwinUnavailable,
                        message: format!("twin `{name}` could not be reset at {url}"),
                    });
                }
            }
            for (i, step) in sc.steps.iter().enumerate() {
                current = i;
                step_start = Instant::now();
                let Some(binding) = &step.binding else {
                    return Some(Failure {
                        category: FailureCategory::StepError,
                        message: "the step did not resolve".to_owned(),
                    });
                };
                let outcome = self.library.run(binding, &mut world).await;
                steps[i].duration_ms = ms(step_start.elapsed());
                match outcome {
                    Ok(()) => steps[i].status = StepStatus::Passed,
                    Err(f) => {
                        return Some(Failure {
                            category: f.category,
                            message: f.message,
                        });
                    }
                }
            }
            None
        };
        let failure = match tokio::time::timeout(opts.trial_timeout, body).await {
            Ok(f) => f,
            Err(_) => Some(Failure {
                category: FailureCategory::Timeout,
                message: format!(
                    "the trial did not finish within {} ms",
                    opts.trial_timeout.as_millis()
                ),
            }),
        };
        let category = failure.as_ref().map(|f| f.category);
        if let Some(f) = failure
            && let Some(s) = steps.get_mut(current)
        {
            s.status = StepStatus::Failed;
            s.duration_ms = ms(step_start.elapsed());
            s.failure = Some(f);
        }
        TrialResult {
            index,
            passed: category.is_none(),
            duration_ms: ms(start.elapsed()),
            failure: category,
            steps,
        }
    }
}

/// A failed trial of `sc` that stopped because twin `twin` is retired: every step skipped but
/// the first, which carries the reason (`twin slack retired on DATE: ...`).
fn retired_trial(sc: &Scenario, index: u32, twin: &TwinEvidence) -> TrialResult {
    let mut steps: Vec<StepResult> = sc
        .steps
        .iter()
        .map(|s| StepResult {
            keyword: s.keyword,
            text: s.text.clone(),
            status: StepStatus::Skipped,
            duration_ms: 0.0,
            failure: None,
        })
        .collect();
    let failure = Failure {
        category: FailureCategory::TwinRetired,
        message: format!(
            "{}; the scenario needs it and was stopped instead of judged against a stale imitation",
            twin.describe()
        ),
    };
    if let Some(first) = steps.first_mut() {
        first.status = StepStatus::Failed;
        first.failure = Some(failure);
    }
    TrialResult {
        index,
        passed: false,
        duration_ms: 0.0,
        failure: Some(FailureCategory::TwinRetired),
        steps,
    }
}

/// Milliseconds, rounded to the microsecond.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}
