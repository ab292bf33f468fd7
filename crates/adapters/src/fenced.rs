//! The fence wired into the run loop: [`FenceHook`] (budgets reserved before and settled
//! after every agent call, holdout leak scans of every prompt, feedback text, agent output
//! and diff crossing the fence) and [`AuditSink`] (the run's [`Event`] stream as entries of
//! the hash-chained `.lightsout/runs/<id>/audit.jsonl`).
//!
//! The factory (`lightsout_factory::Factory`) builds both for every run from `[budget]` and
//! the holdout suite; they wrap the hook and event sink the caller configured, which still
//! run.

use crate::Error;
use async_trait::async_trait;
use lightsout_core::{AgentReport, AttemptHook, BoxError, FailedStage, HookDecision, TaskContext};
use lightsout_fence::FenceError;
use lightsout_fence::agent::FenceReports;
use lightsout_fence::audit::{AuditChain, AuditKind, AuditLog, AuditRecord};
use lightsout_fence::budget::{
    Budget, BudgetExceeded, BudgetLedger, OpenCalls, Reservation, Scope, Settlement, Spend,
};
use lightsout_fence::holdout::{Crossing, CrossingKind, LeakScan};
use lightsout_fence::policy::{MAX_LISTED_WRITES, Violation};
use lightsout_fleet::budget::{
    DayAmounts, DayCap, DayCaps, DayExceeded, DayGrant, Reservation as DayReservation, SharedDay,
};
use lightsout_journal::{Event, EventSink};
use lightsout_stdx::lock;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A [`LeakScan`] over the `lightsout-eval` [`LeakScanner`](lightsout_eval::leak::LeakScanner)
/// of a holdout suite: canaries, distinctive literals, verbatim runs and near copies of
/// scenario text, less what the agents are meant to see. Findings name the scenario file,
/// never the holdout text itself.
#[derive(Debug, Clone)]
pub struct SuiteScan(pub lightsout_eval::leak::LeakScanner);

impl LeakScan for SuiteScan {
    fn scan(&self, text: &str) -> Vec<String> {
        use lightsout_eval::leak::LeakKind;
        self.0
            .scan(text)
            .into_iter()
            .map(|l| {
                let file = l.path.file_name().map_or_else(
                    || l.path.display().to_string(),
                    |f| f.to_string_lossy().into_owned(),
                );
                let scenario = l.scenario.as_deref().unwrap_or("?");
                match l.kind {
                    LeakKind::Canary => format!("holdout canary from {file}"),
                    LeakKind::Verbatim => format!(
                        "verbatim run of {} words from scenario {scenario} ({file})",
                        l.words
                    ),
                    LeakKind::Literal => format!(
                        "distinctive value ({} bytes) from scenario {scenario} ({file})",
                        l.end - l.start
                    ),
                    LeakKind::NearCopy => format!(
                        "near copy of {} words of scenario {scenario} ({file})",
                        l.words
                    ),
                }
            })
            .collect()
    }
}

/// The texts the agents of a run are meant to see, which the leak scan never flags: each
/// task's title, spec excerpt, constraints, anti-spec and acceptance criteria, and the spec
/// files under `<repo>/specs` ([`lightsout_spec::discover`]).
///
/// A spec file that cannot be found or read is left out: that makes the scan stricter,
/// never weaker.
pub fn visible_texts(repo: &Path, state: &lightsout_journal::state::RunState) -> Vec<String> {
    let mut out: Vec<String> = lightsout_spec::discover(&repo.join("specs"))
        .unwrap_or_default()
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    for t in &state.tasks {
        let t = &t.task;
        out.push(t.title.clone());
        out.push(t.spec_excerpt.clone());
        out.extend(t.constraints.iter().cloned());
        out.extend(t.anti_spec.iter().cloned());
        out.extend(t.acceptance_criteria.iter().cloned());
    }
    out.sort();
    out.dedup();
    out
}

/// The leak scanner of the run `state` in `repo`: [`suite_scanner_allowing`] the run's
/// [`visible_texts`].
///
/// # Errors
/// As [`suite_scanner_allowing`].
pub fn suite_scanner(
    dir: &Path,
    repo: &Path,
    state: &lightsout_journal::state::RunState,
) -> Result<Option<SuiteScan>, Error> {
    suite_scanner_allowing(dir, &visible_texts(repo, state))
}

/// Loads the holdout suite in `dir` and builds its leak scanner, when `dir` holds
/// scenario files (`*.scenario.md` or `*.feature`, searched recursively); `Ok(None)`
/// otherwise. Nothing that also occurs in `visible` (see [`visible_texts`]) is flagged,
/// apart from canaries.
///
/// # Errors
/// [`Error::Config`] when scenario files exist but the suite cannot be loaded (fail
/// closed: an unreadable holdout cannot be protected).
pub fn suite_scanner_allowing(dir: &Path, visible: &[String]) -> Result<Option<SuiteScan>, Error> {
    fn has_feature(dir: &Path, depth: usize) -> bool {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return false;
        };
        rd.flatten().any(|e| {
            let p = e.path();
            if p.is_dir() {
                depth < 8 && has_feature(&p, depth + 1)
            } else {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.ends_with(".feature") || n.ends_with(".scenario.md")
                })
            }
        })
    }
    if !has_feature(dir, 0) {
        return Ok(None);
    }
    let library = lightsout_eval::steps::StepLibrary::builtin();
    let (suite, _diags) =
        lightsout_eval::scenario::Suite::load_dir(dir, &library).map_err(|e| {
            Error::Config(format!(
                "cannot load the holdout suite in {} for the leak scan: {e}",
                dir.display()
            ))
        })?;
    Ok(Some(SuiteScan(
        lightsout_eval::leak::LeakScanner::allowing(&suite, visible),
    )))
}

/// Task id → requirement ids, for tying audit entries to the intent they serve. Derived
/// tasks (`<task>.rebase-<n>`) resolve to their root task.
#[derive(Debug, Clone, Default)]
pub struct Intent(pub BTreeMap<String, Vec<String>>);

impl Intent {
    fn of(&self, task: &str) -> Vec<&str> {
        let mut t = task;
        loop {
            if let Some(r) = self.0.get(t) {
                return r.iter().map(String::as_str).collect();
            }
            match t.rfind(".rebase-") {
                Some(i) => t = &t[..i],
                None => return Vec::new(),
            }
        }
    }
}

/// Appends to the audit log; a failed append is remembered so the next hook call fails
/// the run (fail closed), since [`EventSink::emit`] cannot return an error.
#[derive(Debug)]
pub struct Audit {
    log: AuditLog,
    intent: Intent,
    broken: Mutex<Option<String>>,
    mirror: Option<Arc<dyn AuditChain>>,
}

impl Audit {
    /// Wraps `log`; `intent` maps task ids to requirement ids.
    pub fn new(log: AuditLog, intent: Intent) -> Self {
        Self {
            log,
            intent,
            broken: Mutex::new(None),
            mirror: None,
        }
    }

    /// Appends every record to `chain` too, after the log (a fleet worker's chain in the
    /// shared store); a failed append to it fails the run closed, as one to the log does.
    #[must_use]
    pub fn with_mirror(mut self, chain: Arc<dyn AuditChain>) -> Self {
        self.mirror = Some(chain);
        self
    }

    /// The log.
    pub fn log(&self) -> &AuditLog {
        &self.log
    }

    /// Appends one record of `kind` about `task` (its requirements from the intent) with
    /// `details`; a failed append makes [`Audit::healthy`] fail.
    pub fn record(&self, kind: AuditKind, task: Option<&str>, details: serde_json::Value) {
        let reqs = task.map(|t| self.intent.of(t)).unwrap_or_default();
        self.append(AuditRecord::new(kind, task, &reqs, details));
    }

    fn append(&self, record: AuditRecord) {
        let mirrored = self.mirror.as_ref().map(|m| (m, record.clone()));
        if let Err(e) = self.log.append(record) {
            lock(&self.broken).get_or_insert_with(|| e.to_string());
            return;
        }
        if let Some((chain, record)) = mirrored
            && let Err(e) = chain.append(record)
        {
            lock(&self.broken).get_or_insert_with(|| format!("its mirror: {e}"));
        }
    }

    /// `Err` once an append failed.
    ///
    /// # Errors
    /// [`Error::Config`] naming the failed append.
    pub fn healthy(&self) -> Result<(), Error> {
        match lock(&self.broken).as_ref() {
            Some(m) => Err(Error::Config(format!(
                "the audit log {} could not be written ({m}); the run stops (fail closed)",
                self.log.path().display()
            ))),
            None => Ok(()),
        }
    }
}

/// Maps the run's events to audit entries (run start/end, checks, evals, merges, reverts),
/// then forwards each event to `inner`.
pub struct AuditSink {
    audit: Arc<Audit>,
    inner: Arc<dyn EventSink>,
}

impl AuditSink {
    /// Audits to `audit`, then forwards to `inner`.
    pub fn new(audit: Arc<Audit>, inner: Arc<dyn EventSink>) -> Self {
        Self { audit, inner }
    }
}

impl EventSink for AuditSink {
    fn emit(&self, event: &Event) {
        let a = &self.audit;
        match event {
            Event::RunStarted {
                run_id,
                tasks,
                resumed,
                ..
            } => {
                // Which Landlock the run's sandboxes enforce (their probe ran before this):
                // the kernel's ABI and whether the requested rights were fully enforced.
                let landlock = match lightsout_fence::sandbox::landlock() {
                    None => json!("not probed (no sandbox entry)"),
                    Some(None) => json!("unavailable (bubblewrap's mounts only)"),
                    Some(Some(report)) => json!(report),
                };
                a.record(
                    AuditKind::RunStart,
                    None,
                    json!({"run_id": run_id, "tasks": tasks, "resumed": resumed, "landlock": landlock}),
                );
            }
            Event::AttemptFinished {
                task,
                attempt,
                passed,
                failed_stage,
                ..
            } => {
                let stage = *failed_stage;
                // Checks ran unless the attempt stopped before them.
                if !matches!(
                    stage,
                    Some(FailedStage::Agent | FailedStage::Policy | FailedStage::Leak)
                ) {
                    a.record(
                        AuditKind::Check,
                        Some(task),
                        json!({"attempt": attempt, "passed": stage != Some(FailedStage::Checks)}),
                    );
                }
                if *passed || stage == Some(FailedStage::Holdout) {
                    a.record(
                        AuditKind::Eval,
                        Some(task),
                        json!({"attempt": attempt, "stage": "candidate", "passed": passed}),
                    );
                }
            }
            Event::Merged { task, commit } => {
                a.record(AuditKind::Merge, Some(task), json!({"commit": commit}));
            }
            Event::MergeReverted { task, feedback } => a.record(
                AuditKind::Revert,
                Some(task),
                json!({"reason": "the merged result failed verification", "feedback_bytes": feedback.len()}),
            ),
            Event::RunFinished {
                merged,
                failed,
                cost_usd,
            } => a.record(
                AuditKind::RunEnd,
                None,
                json!({"merged": merged, "failed": failed, "cost_usd": cost_usd}),
            ),
            _ => {}
        }
        self.inner.emit(event);
    }
}

/// The `[budget.day]` caps in the shared day budget's units (calls, ms, tokens, micro-USD
/// rounded down, as the local ledger counts them): what a fleet worker's
/// [`SharedDay`] checks instead of its local ledger.
pub fn day_caps(per_day: &lightsout_fence::budget::Limits) -> DayCaps {
    DayCaps {
        attempts: per_day.cap(Budget::Attempts),
        wall_ms: per_day.cap(Budget::WallMs),
        tokens: per_day.cap(Budget::Tokens),
        micro_usd: per_day.cap(Budget::Usd),
    }
}

/// One agent call in the shared day budget's units: one attempt plus `spend` (its estimate
/// before the call, what it reported after).
fn day_amounts(spend: Spend) -> DayAmounts {
    DayAmounts {
        attempts: 1,
        wall_ms: spend.wall_ms,
        tokens: spend.tokens,
        micro_usd: spend.usd_micros,
    }
}

/// A cap of the shared day budget as the fence names a budget: the same figures, for the
/// day `day`.
fn day_exceeded(day: String, e: &DayExceeded) -> BudgetExceeded {
    BudgetExceeded {
        budget: match e.cap {
            DayCap::Attempts => Budget::Attempts,
            DayCap::WallMs => Budget::WallMs,
            DayCap::Tokens => Budget::Tokens,
            DayCap::Usd => Budget::Usd,
        },
        scope: Scope::Day(day),
        limit: e.limit,
        used: e.used,
        requested: e.requested,
    }
}

/// The fence around every agent call: reserves the `[budget]` before it, settles the
/// reported usage after it, audits the process fence's violations, scans what crosses the
/// fence for holdout text, and audits each step. Wraps the caller's hook (`inner`), which
/// runs first before and last after.
///
/// Decisions:
/// - an exhausted budget is [`HookDecision::StopTask`] with the budget named (the task fails,
///   its dependents are blocked); in a fleet ([`FenceHook::with_shared_day`]) the day's caps
///   are the shared store's, reserved and settled beside the local ledger;
/// - a process-fence violation ([`FenceReports`], from the run's
///   [`FencedAgent`](lightsout_fence::agent::FencedAgent)s) is audited as a `policy_hit`; a write
///   outside the worktree, a damaged `.git` link, an escaped process or a failed watch is
///   [`HookDecision::FailAttempt`] (the attempt's work is discarded); a timeout or the output
///   cap fails the attempt through the agent's [`Outcome`](lightsout_agent::Outcome);
/// - holdout text in a prompt, feedback, the agent's output (its summary and its whole
///   transcript) or a diff is [`HookDecision::Leak`]: that task stops, the other tasks go on,
///   and the run ends failed.
pub struct FenceHook {
    ledger: Arc<BudgetLedger>,
    estimate: Spend,
    audit: Arc<Audit>,
    crossing: Option<Crossing<Arc<dyn LeakScan + Send + Sync>>>,
    open: Arc<OpenCalls>,
    reports: Arc<FenceReports>,
    inner: Arc<dyn AttemptHook>,
    /// The fleet's day budget, when the run is a fleet worker's.
    day: Option<SharedDay>,
    /// The shared reservations of the calls running now, by task and attempt.
    day_open: Mutex<BTreeMap<(String, u32), DayReservation>>,
}

impl std::fmt::Debug for FenceHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FenceHook")
            .field("ledger", &self.ledger)
            .field("estimate", &self.estimate)
            .finish_non_exhaustive()
    }
}

impl FenceHook {
    /// A hook charging `ledger` (each call reserves `estimate`), auditing to `audit`,
    /// scanning with `scan` when given, around `inner`.
    pub fn new(
        ledger: Arc<BudgetLedger>,
        estimate: Spend,
        audit: Arc<Audit>,
        scan: Option<Arc<dyn LeakScan + Send + Sync>>,
        inner: Arc<dyn AttemptHook>,
    ) -> Self {
        Self {
            ledger,
            estimate,
            audit,
            crossing: scan.map(Crossing::new),
            open: Arc::new(OpenCalls::default()),
            reports: Arc::new(FenceReports::default()),
            inner,
            day: None,
            day_open: Mutex::new(BTreeMap::new()),
        }
    }

    /// Reserves and settles each call against the fleet's shared day budget too (`day`,
    /// whose caps every worker's reservations count against), beside the local ledger: a
    /// call runs only when both grant it. The shared store owns the day's caps; the caller
    /// leaves `[budget.day]` out of the local ledger (see [`day_caps`]), so each cap is
    /// counted in exactly one place.
    #[must_use]
    pub fn with_shared_day(mut self, day: SharedDay) -> Self {
        self.day = Some(day);
        self
    }

    /// Reserves this call (one attempt plus its estimate) in the shared day budget, when there
    /// is one; on a refusal the local reservation (already taken) is released and the task
    /// stops with the cap and the day's ledger named.
    fn reserve_day(&self, ctx: &TaskContext) -> Result<HookDecision, BoxError> {
        let Some(day) = &self.day else {
            return Ok(HookDecision::Proceed);
        };
        let refused = match day.reserve(&ctx.task_id, ctx.attempt, day_amounts(self.estimate)) {
            Ok(DayGrant::Granted(r)) => {
                lock(&self.day_open).insert((ctx.task_id.clone(), ctx.attempt), r);
                return Ok(HookDecision::Proceed);
            }
            Ok(DayGrant::Refused {
                day: date,
                exceeded,
                ledger,
            }) => Ok((day_exceeded(date, &exceeded), ledger)),
            Err(e) => Err(e),
        };
        if let Some(r) = self.open.close(&ctx.task_id, ctx.attempt) {
            self.ledger.release(r)?;
        }
        let (e, ledger) = refused?;
        let reqs: Vec<&str> = ctx.requirement_ids.iter().map(String::as_str).collect();
        self.audit
            .append(AuditRecord::budget_stop(&ctx.task_id, &reqs, &e));
        Ok(HookDecision::StopTask(format!(
            "budget exhausted: {e} (shared by the fleet; the day so far: {ledger})"
        )))
    }

    /// Settles this call's shared day reservation with what it used (one attempt and its
    /// reported usage); a day pushed past a cap stops the task, as a local overrun does (every
    /// cap passed is audited, the first one named).
    fn settle_day(&self, ctx: &TaskContext, actual: Spend) -> Result<HookDecision, BoxError> {
        let Some(day) = &self.day else {
            return Ok(HookDecision::Proceed);
        };
        let Some(r) = lock(&self.day_open).remove(&(ctx.task_id.clone(), ctx.attempt)) else {
            return Ok(HookDecision::Proceed);
        };
        let ledger = day.settle(&r, day_amounts(actual))?;
        let overruns: Vec<BudgetExceeded> = ledger
            .overruns(day.caps())
            .iter()
            .map(|e| day_exceeded(r.day.clone(), e))
            .collect();
        let Some((first, rest)) = overruns.split_first() else {
            return Ok(HookDecision::Proceed);
        };
        let reqs: Vec<&str> = ctx.requirement_ids.iter().map(String::as_str).collect();
        for o in rest {
            self.audit
                .append(AuditRecord::budget_stop(&ctx.task_id, &reqs, o));
        }
        Ok(self.budget_stop(ctx, first))
    }

    /// Takes the process-fence reports from `reports` (shared with the run's fenced agents).
    #[must_use]
    pub fn with_reports(mut self, reports: Arc<FenceReports>) -> Self {
        self.reports = reports;
        self
    }

    /// Holds each call's reservation in `open` (shared with the run's fenced agents, which
    /// cover a streaming agent's spend in it while it runs and stop it when they cannot).
    #[must_use]
    pub fn with_open_calls(mut self, open: Arc<OpenCalls>) -> Self {
        self.open = open;
        self
    }

    /// Scans `text`; on a hit, audits it and returns the reason for [`HookDecision::Leak`].
    fn check(
        &self,
        ctx: &TaskContext,
        kind: CrossingKind,
        label: &str,
        text: &str,
    ) -> Option<String> {
        let c = self.crossing.as_ref()?;
        match c.check(kind, label, text) {
            Ok(()) => None,
            Err(FenceError::Leak(hit)) => {
                let reqs: Vec<&str> = ctx.requirement_ids.iter().map(String::as_str).collect();
                self.audit
                    .append(AuditRecord::leak(&ctx.task_id, &reqs, &hit));
                Some(hit.to_string())
            }
            // `Crossing::check` fails only with a leak; anything else still fails closed.
            Err(e) => Some(format!("the holdout scan failed: {e}")),
        }
    }

    fn budget_stop(&self, ctx: &TaskContext, e: &BudgetExceeded) -> HookDecision {
        let reqs: Vec<&str> = ctx.requirement_ids.iter().map(String::as_str).collect();
        self.audit
            .append(AuditRecord::budget_stop(&ctx.task_id, &reqs, e));
        HookDecision::StopTask(format!("budget exhausted: {e}"))
    }

    /// A call that reported its spend only when it ended passed a cap: the task stops, and
    /// the reason says by how much, against what the call had reserved.
    fn overrun_stop(&self, ctx: &TaskContext, e: &BudgetExceeded, s: &Settlement) -> HookDecision {
        let reqs: Vec<&str> = ctx.requirement_ids.iter().map(String::as_str).collect();
        self.audit
            .append(AuditRecord::budget_stop(&ctx.task_id, &reqs, e));
        let b = e.budget;
        let unit = |u: Spend| match b {
            lightsout_fence::budget::Budget::Tokens => u.tokens,
            lightsout_fence::budget::Budget::Usd => u.usd_micros,
            lightsout_fence::budget::Budget::WallMs => u.wall_ms,
            lightsout_fence::budget::Budget::Attempts => 1,
        };
        let over = e.used.saturating_sub(e.limit);
        let reserved = unit(s.estimate);
        HookDecision::StopTask(format!(
            "budget exhausted: spent {} of cap {} ({b} budget of the {}): the call reported {} \
             when it ended, after reserving {}; over the cap by {}, {} one reservation",
            b.render_short(e.used),
            b.render_short(e.limit),
            e.scope,
            b.render_short(unit(s.charged)),
            b.render_short(reserved),
            b.render_short(over),
            if over <= reserved {
                "within"
            } else {
                "more than"
            }
        ))
    }

    /// Audits the process fence's violations of this attempt and decides on them.
    fn fence_violations(&self, ctx: &TaskContext) -> HookDecision {
        let Some(report) = self.reports.take(&ctx.task_id, ctx.attempt) else {
            return HookDecision::Proceed;
        };
        let reqs: Vec<&str> = ctx.requirement_ids.iter().map(String::as_str).collect();
        let mut failing = Vec::new();
        let mut decision = HookDecision::Proceed;
        for v in &report.violations {
            if let Violation::BudgetStopped { exceeded } = v {
                // Stopped before it could pass a cap: the task stops with the budget named.
                self.audit
                    .append(AuditRecord::budget_stop(&ctx.task_id, &reqs, exceeded));
                decision = decision.worst(HookDecision::StopTask(format!("budget exhausted: {v}")));
                continue;
            }
            self.audit
                .append(AuditRecord::policy_hit(&ctx.task_id, &reqs, v));
            // Limits fail the attempt through its outcome; a refused destination was
            // contained by the refusal itself (agents probe telemetry hosts too).
            if !matches!(
                v,
                Violation::TimedOut { .. }
                    | Violation::OutputCapped { .. }
                    | Violation::EgressDenied { .. }
            ) {
                failing.push(v.to_string());
            }
        }
        if failing.is_empty() {
            return decision;
        }
        if report.outside_writes_total > MAX_LISTED_WRITES {
            failing.push(format!(
                "{} more writes outside the worktree",
                report.outside_writes_total - MAX_LISTED_WRITES
            ));
        }
        decision.worst(HookDecision::FailAttempt(format!(
            "the fence stopped this attempt and discarded its work: {}. Work only inside the \
             worktree and leave its .git alone",
            failing.join("; ")
        )))
    }
}

#[async_trait]
impl AttemptHook for FenceHook {
    async fn before_attempt(&self, ctx: &TaskContext) -> Result<HookDecision, BoxError> {
        self.audit.healthy()?;
        let prompt = [
            ctx.title.as_str(),
            ctx.spec_excerpt.as_str(),
            ctx.context_pack.as_str(),
        ]
        .into_iter()
        .chain(ctx.constraints.iter().map(String::as_str))
        .chain(ctx.anti_spec.iter().map(String::as_str))
        .chain(ctx.acceptance_criteria.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("\n");
        // Nothing reaches the agent once holdout text is found in what it would be given.
        if let Some(r) = self.check(ctx, CrossingKind::Prompt, "prompt", &prompt) {
            return Ok(HookDecision::Leak(r));
        }
        if let Some(f) = &ctx.previous_feedback
            && let Some(r) = self.check(ctx, CrossingKind::Feedback, "feedback", f)
        {
            return Ok(HookDecision::Leak(r));
        }
        let d = self.inner.before_attempt(ctx).await?;
        if d != HookDecision::Proceed {
            return Ok(d);
        }
        match self.ledger.reserve(&ctx.task_id, self.estimate) {
            Ok(r) => {
                self.open.open(&ctx.task_id, ctx.attempt, r);
                self.reserve_day(ctx)
            }
            Err(FenceError::BudgetExceeded(e)) => Ok(self.budget_stop(ctx, &e)),
            Err(e) => Err(e.into()),
        }
    }

    async fn after_attempt(
        &self,
        ctx: &TaskContext,
        report: &AgentReport,
    ) -> Result<HookDecision, BoxError> {
        let actual = Spend::from(&report.usage);
        let reqs: Vec<&str> = ctx.requirement_ids.iter().map(String::as_str).collect();
        let reservation = self.open.close(&ctx.task_id, ctx.attempt);
        let mut decision = HookDecision::Proceed;
        let reserved = reservation.as_ref().map(Reservation::estimate);
        if let Some(r) = reservation {
            let s = self.ledger.settle(r, actual)?;
            if let Some(e) = s.overruns.first() {
                for o in &s.overruns[1..] {
                    self.audit
                        .append(AuditRecord::budget_stop(&ctx.task_id, &reqs, o));
                }
                decision = self.overrun_stop(ctx, e, &s);
            }
        }
        decision = decision.worst(self.settle_day(ctx, actual)?);
        self.audit.append(AuditRecord::new(
            AuditKind::AgentCall,
            Some(&ctx.task_id),
            &reqs,
            json!({
                "attempt": ctx.attempt,
                "agent": report.label(),
                "reserved": reserved,
                "usage": actual,
                "outcome": report.outcome,
            }),
        ));
        decision = decision.worst(self.fence_violations(ctx));
        if let Some(r) = self.check(
            ctx,
            CrossingKind::AgentOutput,
            "agent summary",
            &report.summary,
        ) {
            decision = decision.worst(HookDecision::Leak(r));
        }
        // The whole captured output, not only the summary the agent chose to give.
        if let Some(path) = &report.transcript
            && let Ok(bytes) = std::fs::read(path)
            && let Some(r) = self.check(
                ctx,
                CrossingKind::AgentOutput,
                "agent transcript",
                &String::from_utf8_lossy(&bytes),
            )
        {
            decision = decision.worst(HookDecision::Leak(r));
        }
        self.audit.healthy()?;
        let inner = self.inner.after_attempt(ctx, report).await?;
        Ok(decision.worst(inner))
    }

    async fn after_checks(&self, ctx: &TaskContext) -> Result<HookDecision, BoxError> {
        let decision = self.fence_violations(ctx);
        self.audit.healthy()?;
        Ok(decision.worst(self.inner.after_checks(ctx).await?))
    }

    async fn inspect_diff(&self, ctx: &TaskContext, diff: &str) -> Result<HookDecision, BoxError> {
        if let Some(r) = self.check(
            ctx,
            CrossingKind::Diff,
            &format!("diff of attempt {}", ctx.attempt),
            diff,
        ) {
            return Ok(HookDecision::Leak(r));
        }
        self.inner.inspect_diff(ctx, diff).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain whose every append fails (a store that went away).
    #[derive(Debug)]
    struct Gone;

    impl AuditChain for Gone {
        fn append(&self, _: AuditRecord) -> Result<lightsout_fence::audit::AuditEntry, FenceError> {
            Err(FenceError::AuditBroken {
                path: "store".into(),
                detail: "gone".into(),
            })
        }

        fn verify(&self) -> Result<lightsout_fence::audit::VerifyReport, FenceError> {
            unreachable!("not verified")
        }
    }

    #[test]
    fn a_mirrored_audit_appends_each_record_to_both_chains_and_fails_closed() {
        let t = tempfile::tempdir().unwrap();
        let intent = Intent(BTreeMap::from([("T1".into(), vec!["REQ-1".into()])]));
        let mirror = Arc::new(AuditLog::for_run(&t.path().join("store"), "fleet-run").unwrap());
        let audit = Audit::new(AuditLog::for_run(t.path(), "r1").unwrap(), intent.clone())
            .with_mirror(mirror.clone());
        audit.record(AuditKind::AgentCall, Some("T1"), json!({"attempt": 1}));
        audit.record(AuditKind::Check, Some("T1"), json!({"ok": true}));
        audit.healthy().unwrap();
        let local = AuditChain::verify(audit.log()).unwrap();
        let shared = AuditChain::verify(mirror.as_ref()).unwrap();
        assert!(local.intact() && shared.intact());
        assert_eq!((local.entries, shared.entries), (2, 2));
        let entries = lightsout_fence::audit::read(mirror.path()).unwrap();
        assert_eq!(entries[0].requirements, vec!["REQ-1".to_owned()]);
        assert_eq!(entries[1].kind, AuditKind::Check);
        // A mirror that cannot be written stops the run, as the log would.
        let audit = Audit::new(AuditLog::for_run(t.path(), "r2").unwrap(), intent)
            .with_mirror(Arc::new(Gone));
        audit.record(AuditKind::AgentCall, Some("T1"), json!({}));
        let e = audit.healthy().unwrap_err().to_string();
        assert!(e.contains("mirror") && e.contains("gone"), "{e}");
    }

    #[test]
    fn the_example_spec_does_not_trip_the_example_holdout_scanner() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let spec =
            std::fs::read_to_string(root.join("url-shortener/specs/url-shortener.md")).unwrap();
        let visible = vec![spec.clone()];
        let scan = suite_scanner_allowing(&root.join("url-shortener-holdout"), &visible)
            .unwrap()
            .expect("the example holdout has scenarios");
        assert_eq!(scan.scan(&spec), Vec::<String>::new());
        // The spec's own example, echoed in the holdout's step style, is not a leak ...
        let echo = "- **WHEN** I send `POST /links` with JSON `{\"url\":\"https://example.com/docs\"}`\n- **THEN** the status is 201";
        assert_eq!(scan.scan(echo), Vec::<String>::new());
        // ... while the canary in upper case and a test URL of a scenario are.
        let hits =
            scan.scan("LS-CANARY-URL-SHORTENER-5D1C9A7E; BASE = 'https://example.com/popular'");
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert!(hits[0].starts_with("holdout canary from"), "{hits:?}");
        assert!(hits[1].starts_with("distinctive value"), "{hits:?}");
        assert!(!hits.iter().any(|h| h.contains("popular")), "{hits:?}");
    }

    /// The demo's recorded agent work (patches and summaries) must cross the fence.
    #[test]
    fn the_example_trajectory_is_not_a_leak() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let spec =
            std::fs::read_to_string(root.join("url-shortener/specs/url-shortener.md")).unwrap();
        let scan = suite_scanner_allowing(&root.join("url-shortener-holdout"), &[spec])
            .unwrap()
            .expect("the example holdout has scenarios");
        let dir = root.join("url-shortener/trajectory");
        let mut seen = 0;
        for task in std::fs::read_dir(&dir).unwrap().flatten() {
            if !task.path().is_dir() {
                continue;
            }
            for f in std::fs::read_dir(task.path()).unwrap().flatten() {
                let text = std::fs::read_to_string(f.path()).unwrap();
                assert_eq!(
                    scan.scan(&text),
                    Vec::<String>::new(),
                    "{}",
                    f.path().display()
                );
                seen += 1;
            }
        }
        assert!(seen >= 10, "{seen} trajectory files");
    }

    #[test]
    fn visible_texts_hold_the_specs_and_every_task_context() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("specs")).unwrap();
        std::fs::write(
            t.path().join("specs/a.md"),
            "---\nid: a\n---\n# A\nthe visible intent\n",
        )
        .unwrap();
        let mut state = lightsout_journal::state::RunState::default();
        state.tasks.push(lightsout_journal::state::TaskState {
            task: lightsout_journal::plan::Task {
                id: "T1".into(),
                title: "the title".into(),
                spec_excerpt: "the excerpt".into(),
                constraints: vec!["CON-1: c".into()],
                anti_spec: vec!["ANTI-1: a".into()],
                acceptance_criteria: vec!["GIVEN x".into()],
                ..lightsout_journal::plan::Task::default()
            },
            ..lightsout_journal::state::TaskState::default()
        });
        let v = visible_texts(t.path(), &state);
        for want in [
            "the title",
            "the excerpt",
            "CON-1: c",
            "ANTI-1: a",
            "GIVEN x",
        ] {
            assert!(v.iter().any(|x| x == want), "{want} missing from {v:?}");
        }
        assert!(v.iter().any(|x| x.contains("the visible intent")), "{v:?}");
    }

    /// Two fleet workers' fence hooks share one day budget (3 calls, 1,000 tokens, 1 USD)
    /// beside their own local ledgers, each tied to the worker's claim in the same store: while
    /// worker a's call holds 0.6 USD of the day, worker b's call is refused with the cap, the
    /// day and the day's ledger named; once a settles what its call used, b's call goes through;
    /// b's claim is then lost mid-call (its lease lapses), and its unsettled reservation counts
    /// as spent, so a's next call is refused with what is presumed spent named; b's call, cut off
    /// rather than killed, then settles late for less, its actual amounts replace the presumed
    /// ones, and a's call goes through; a call whose tokens take the day past its cap stops its
    /// task.
    #[tokio::test]
    async fn fleet_workers_reserve_and_settle_the_shared_day_beside_their_ledgers() {
        let w = two_workers_on_one_day();
        b_is_refused_while_a_holds_the_day_then_goes_through(&w).await;
        a_lost_claims_call_is_presumed_spent_until_it_settles_late(&w).await;
        a_call_past_the_days_tokens_stops_its_task(&w).await;
    }

    /// Two fence hooks, a and b, each with its own local ledger and a claim of its own in one
    /// `SQLite` store, sharing its day budget: 3 calls, 1,000 tokens, 1 USD; each call
    /// reserves 300 tokens and 0.6 USD.
    struct TwoWorkers {
        _dir: tempfile::TempDir,
        store: Arc<dyn lightsout_fleet::budget::BudgetStore>,
        claims: lightsout_fleet::claims::SqliteClaims,
        cb: lightsout_fleet::claims::Claim,
        a: FenceHook,
        b: FenceHook,
        today: String,
    }

    fn two_workers_on_one_day() -> TwoWorkers {
        use lightsout_fleet::budget::{ClaimKey, SqliteBudget, utc_day};
        use lightsout_fleet::claims::{ClaimStore, SqliteClaims};
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let store: Arc<dyn lightsout_fleet::budget::BudgetStore> =
            Arc::new(SqliteBudget::open(&db).unwrap());
        let claims = SqliteClaims::open(&db).unwrap();
        claims
            .enqueue("fleet", &["T1".into(), "T2".into()])
            .unwrap();
        let lease = std::time::Duration::from_secs(600);
        let (ca, cb) = (
            claims.claim("a", lease).unwrap().unwrap(),
            claims.claim("b", lease).unwrap().unwrap(),
        );
        let caps = day_caps(&lightsout_fence::budget::Limits {
            attempts: Some(3),
            tokens: Some(1_000),
            usd: Some(1.0),
            wall_ms: None,
        });
        assert_eq!(
            (caps.attempts, caps.tokens, caps.micro_usd, caps.wall_ms),
            (Some(3), Some(1_000), Some(1_000_000), None)
        );
        let hook = |worker: &str, claim: &lightsout_fleet::claims::Claim| {
            let ledger = Arc::new(BudgetLedger::in_memory(
                lightsout_fence::budget::BudgetConfig::default(),
            ));
            let log = AuditLog::open(dir.path().join(format!("{worker}.jsonl"))).unwrap();
            let audit = Arc::new(Audit::new(log, Intent::default()));
            let estimate = Spend {
                usd_micros: 600_000,
                tokens: 300,
                wall_ms: 0,
            };
            let day = SharedDay::new(store.clone(), caps, format!("run-{worker}"))
                .held_by(ClaimKey::from(claim));
            FenceHook::new(
                ledger,
                estimate,
                audit,
                None,
                Arc::new(lightsout_core::NoHook),
            )
            .with_shared_day(day)
        };
        let (a, b) = (hook("a", &ca), hook("b", &cb));
        TwoWorkers {
            _dir: dir,
            store,
            claims,
            cb,
            a,
            b,
            today: utc_day(),
        }
    }

    fn day_ctx(task: &str, attempt: u32) -> TaskContext {
        TaskContext {
            task_id: task.into(),
            attempt,
            ..TaskContext::default()
        }
    }

    fn used(usd: f64, tokens: u64) -> AgentReport {
        let mut r = AgentReport::completed("x", "done");
        r.usage.cost_usd = Some(usd);
        r.usage.input_tokens = tokens;
        r
    }

    /// While a's call holds 0.6 USD of the day, b's call is refused with the cap, the day and
    /// the day's ledger named; once a settles what its call used, b's call goes through.
    async fn b_is_refused_while_a_holds_the_day_then_goes_through(w: &TwoWorkers) {
        let today = &w.today;
        assert_eq!(
            w.a.before_attempt(&day_ctx("T1", 1)).await.unwrap(),
            HookDecision::Proceed
        );
        let refused = w.b.before_attempt(&day_ctx("T2", 1)).await.unwrap();
        assert!(
            matches!(&refused, HookDecision::StopTask(r)
                if r.starts_with("budget exhausted: usd budget")
                    && r.contains(&format!("day {today}"))
                    && r.contains("shared by the fleet")
                    && r.contains("open calls 1, holding (attempts 1, wall time 0 ms, tokens 300, usd $0.600000)")),
            "{refused:?}"
        );
        assert_eq!(
            w.a.after_attempt(&day_ctx("T1", 1), &used(0.25, 600))
                .await
                .unwrap(),
            HookDecision::Proceed
        );
        let day = w.store.ledger(today).unwrap();
        assert_eq!(
            (day.spent.attempts, day.spent.tokens, day.spent.micro_usd),
            (1, 600, 250_000)
        );
        assert_eq!(
            w.b.before_attempt(&day_ctx("T2", 1)).await.unwrap(),
            HookDecision::Proceed
        );
    }

    /// b's claim is lost mid-call: its unsettled reservation counts as spent, so a's next call
    /// is refused with what is presumed spent named; b, cut off rather than killed, then
    /// settles late for less, its actual amounts replace the presumed ones, and a's call goes
    /// through.
    async fn a_lost_claims_call_is_presumed_spent_until_it_settles_late(w: &TwoWorkers) {
        use lightsout_fleet::claims::ClaimStore as _;
        // No settlement yet, and b's lease lapses (a heartbeat of 0 ms). Its reservation is
        // presumed spent: 600 + 300 tokens, and a's 300 more would pass the day's 1,000.
        w.claims
            .heartbeat(&w.cb, std::time::Duration::ZERO)
            .unwrap();
        let refused = w.a.before_attempt(&day_ctx("T1", 2)).await.unwrap();
        assert!(
            matches!(&refused, HookDecision::StopTask(r)
                if r.starts_with("budget exhausted: tokens budget of the day")
                    && r.contains("open calls 0, holding (attempts 0, wall time 0 ms, tokens 0, usd $0.000000); presumed spent by 1 lost claim (attempts 1, wall time 0 ms, tokens 300, usd $0.600000)")),
            "{refused:?}"
        );
        let day = w.store.ledger(&w.today).unwrap();
        assert_eq!((day.open, day.lost, day.presumed_spent.tokens), (0, 1, 300));
        assert_eq!(
            w.b.after_attempt(&day_ctx("T2", 1), &used(0.1, 100))
                .await
                .unwrap(),
            HookDecision::Proceed
        );
        let day = w.store.ledger(&w.today).unwrap();
        assert_eq!(
            (day.spent.tokens, day.presumed_spent.tokens, day.lost),
            (700, 0, 0)
        );
        assert_eq!(
            w.a.before_attempt(&day_ctx("T1", 2)).await.unwrap(),
            HookDecision::Proceed,
            "b's late settlement freed what it did not use"
        );
    }

    /// A call whose tokens take the day past its cap stops its task.
    async fn a_call_past_the_days_tokens_stops_its_task(w: &TwoWorkers) {
        let over =
            w.a.after_attempt(&day_ctx("T1", 2), &used(0.2, 500))
                .await
                .unwrap();
        assert!(
            matches!(&over, HookDecision::StopTask(r)
                if r.starts_with("budget exhausted: tokens budget of the day")),
            "{over:?}"
        );
        let day = w.store.ledger(&w.today).unwrap();
        assert_eq!(
            (day.spent.attempts, day.spent.tokens, day.spent.micro_usd),
            (3, 1_200, 550_000)
        );
        assert_eq!((day.open, day.lost), (0, 0));
    }

    #[test]
    fn intent_resolves_rebase_tasks_to_their_root() {
        let i = Intent(BTreeMap::from([(
            "T1".to_owned(),
            vec!["REQ-1".to_owned()],
        )]));
        assert_eq!(i.of("T1.rebase-2"), vec!["REQ-1"]);
        assert_eq!(i.of("T1.rebase-2.rebase-1"), vec!["REQ-1"]);
        assert!(i.of("T9").is_empty());
    }
}
