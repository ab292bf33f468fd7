//! The data model of `report.json`: plain serde types, versioned by [`SCHEMA_VERSION`].

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Version of the `report.json` schema written by this module.
///
/// Bumped on any change that an older reader could misread (a field removed, renamed or given a new
/// meaning). Adding an optional field does not bump it. [`crate::read_report`] refuses documents whose
/// version is newer than this one.
pub const SCHEMA_VERSION: u32 = 1;

/// The outcome of one factory run: everything `report.html` shows, as one serialisable document.
///
/// A human decides "ship or refine the spec" from this document alone, so it carries the intent
/// (requirements and their satisfaction), the work (tasks, attempts, cost), the gate verdict, what the
/// factory learned (decisions and lessons) and anything alarming (incidents: leaks and policy violations).
///
/// Invariants the writer relies on: none. Every string may hold any text (it is escaped on rendering),
/// numbers may be zero, lists may be empty, task dependencies may dangle or form cycles; rendering never
/// panics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunReport {
    /// Version of this document's schema; [`SCHEMA_VERSION`] for documents written by this build.
    pub schema_version: u32,
    /// The run's identifier, as used in `.lightsout/runs/<id>/`.
    pub run_id: String,
    /// When the run started, serialised as RFC 3339 (`2026-11-27T06:00:00Z`).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub started: OffsetDateTime,
    /// When the run finished, serialised as RFC 3339; `null` for a run that has not finished (crashed or
    /// still running).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub finished: Option<OffsetDateTime>,
    /// The run's default agent. A replayed trajectory is labelled [`AgentKind::Replay`] and the page says
    /// so in its header.
    pub agent: AgentLabel,
    /// The specs this run built.
    #[serde(default)]
    pub specs: Vec<SpecRef>,
    /// The verification gate's verdict on the final merged result.
    pub gate: GateVerdict,
    /// One entry per requirement of the specs, in spec order.
    #[serde(default)]
    pub requirements: Vec<RequirementOutcome>,
    /// One entry per task of the task graph, in plan order.
    #[serde(default)]
    pub tasks: Vec<TaskOutcome>,
    /// Decisions recorded in memory during the run (imported from the spec or learned).
    #[serde(default)]
    pub decisions: Vec<DecisionRecord>,
    /// Lessons (failure fingerprints) recorded in memory during the run.
    #[serde(default)]
    pub lessons: Vec<LessonRecord>,
    /// Leaks of holdout text and policy violations. Shown first on the page when there are any.
    #[serde(default)]
    pub incidents: Vec<Incident>,
    /// Findings of specs that `lightsout spec check` called not ready and that were built
    /// anyway (`lightsout run --allow-not-ready`), one line each; a red banner on the page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready: Vec<String>,
    /// Loose ends of the traceability chain, both ways: requirements no holdout scenario
    /// covers, scenarios naming requirements the specs do not have, tasks serving no
    /// requirement.
    #[serde(default)]
    pub orphans: Orphans,
    /// How strong the holdout is on the merged build (mutants it kills), when it was measured
    /// (`lightsout run` after the last merge, or `lightsout strength --report RUN`). Names the
    /// surviving mutants: for the humans who own the holdout, never for an agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<StrengthOutcome>,
}

/// The holdout's strength on the merged build: mutants of it, each judged by the holdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StrengthOutcome {
    /// The mutation tool and its version (`cosmic-ray, version 8.7.0`).
    pub tool: String,
    /// The build measured: a commit, `+dirty` when it had uncommitted changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// Mutants killed (a failing scenario, a timeout, or a build the holdout could not run).
    /// With `total` it gives the kill rate and its Wilson 95% interval.
    pub killed: Satisfaction,
    /// Of the killed, those stopped by the per-mutant time limit.
    pub timeouts: u32,
    /// Of the killed, those the holdout could not run against (the service did not start).
    pub broken: u32,
    /// Mutants the tool generated.
    pub generated: u32,
    /// Of those, left out as equivalent (declared in the holdout's `equivalent-mutants.toml`).
    pub equivalent: u32,
    /// The seed when the judged mutants are a seeded sample of the rest; `None` when all were
    /// judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_seed: Option<u64>,
    /// Trials per scenario per mutant.
    pub trials: u32,
    /// Wall time of the measurement in ms.
    pub duration_ms: u64,
    /// The mutants the holdout did not kill: each one a behaviour it does not check.
    #[serde(default)]
    pub survivors: Vec<SurvivorRecord>,
}

/// A mutant the holdout could not tell from the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SurvivorRecord {
    /// File, relative to the project root.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// The tool's operator (`core/ReplaceComparisonOperator_Gt_GtE`).
    pub operator: String,
    /// Which match of the operator in the file.
    pub occurrence: u32,
}

impl StrengthOutcome {
    /// One line: `67 of 70 mutants killed (95.7%, Wilson 95% [0.881, 0.985]); cosmic-ray ...`.
    pub fn line(&self) -> String {
        use std::fmt::Write as _;
        let k = &self.killed;
        let mut s = format!(
            "{} of {} mutants killed ({:.1}%, Wilson 95% [{:.3}, {:.3}]); {}",
            k.passes,
            k.trials,
            k.rate * 100.0,
            k.lower,
            k.upper,
            self.tool
        );
        if let Some(seed) = self.sample_seed {
            let _ = write!(
                s,
                "; a seeded sample (seed {seed}) of {} generated, {} equivalent left out",
                self.generated, self.equivalent
            );
        } else {
            let _ = write!(
                s,
                "; all of {} generated, {} equivalent left out",
                self.generated, self.equivalent
            );
        }
        let _ = write!(s, "; {} survivor(s)", self.survivors.len());
        s
    }
}

impl RunReport {
    /// Creates an empty report for `run_id` with [`SCHEMA_VERSION`], a gate that was not evaluated and
    /// no requirements, tasks, decisions, lessons or incidents.
    pub fn new(run_id: impl Into<String>, started: OffsetDateTime, agent: AgentLabel) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            run_id: run_id.into(),
            started,
            finished: None,
            agent,
            specs: Vec::new(),
            gate: GateVerdict {
                outcome: GateOutcome::NotEvaluated,
                reasons: Vec::new(),
                policy: Vec::new(),
            },
            requirements: Vec::new(),
            tasks: Vec::new(),
            orphans: Orphans::default(),
            decisions: Vec::new(),
            lessons: Vec::new(),
            incidents: Vec::new(),
            not_ready: Vec::new(),
            strength: None,
        }
    }

    /// Sums of the per-task usage figures (saturating; non-finite costs count as zero).
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for task in &self.tasks {
            t.tasks += 1;
            match task.status {
                TaskStatus::Merged => t.merged += 1,
                TaskStatus::Unchanged => t.unchanged += 1,
                _ => {}
            }
            t.attempts = t.attempts.saturating_add(u64::from(task.attempts));
            t.tokens_in = t.tokens_in.saturating_add(task.tokens_in);
            t.tokens_out = t.tokens_out.saturating_add(task.tokens_out);
            if task.cost_usd.is_finite() {
                t.cost_usd += task.cost_usd;
            }
            t.wall_ms = t.wall_ms.saturating_add(task.wall_ms);
        }
        t
    }

    /// True when the run's agent or any task's agent is a replay of a recorded trajectory.
    pub fn uses_replay(&self) -> bool {
        self.agent.is_replay() || self.tasks.iter().any(|t| t.agent.is_replay())
    }

    /// The run's wall-clock duration in ms (`finished - started`), or `None` when unfinished or when
    /// `finished` precedes `started`.
    pub fn duration_ms(&self) -> Option<u64> {
        let finished = self.finished?;
        let ms = (finished - self.started).whole_milliseconds();
        u64::try_from(ms).ok()
    }
}

/// Sums over a run's tasks, computed by [`RunReport::totals`]; not stored in `report.json`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Number of tasks.
    pub tasks: u64,
    /// Number of tasks whose status is [`TaskStatus::Merged`].
    pub merged: u64,
    /// Number of tasks whose status is [`TaskStatus::Unchanged`].
    pub unchanged: u64,
    /// Agent attempts over all tasks.
    pub attempts: u64,
    /// Input (prompt) tokens over all tasks.
    pub tokens_in: u64,
    /// Output (completion) tokens over all tasks.
    pub tokens_out: u64,
    /// Cost in USD over all tasks.
    pub cost_usd: f64,
    /// Agent wall time in ms summed over all tasks (not the run's makespan).
    pub wall_ms: u64,
}

/// Which agent did the work, labelled so that a replay can never pass for a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentLabel {
    /// The agent's configured name (`claude-code`, `codex`, `aider`, `replay`, ...).
    pub name: String,
    /// What kind of adapter ran it.
    pub kind: AgentKind,
    /// Free text: the model, the CLI version or, for a replay, the trajectory's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AgentLabel {
    /// A label for `ReplayAgent` replaying the trajectory at `trajectory`.
    pub fn replay(name: impl Into<String>, trajectory: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: AgentKind::Replay,
            detail: Some(trajectory.into()),
        }
    }

    /// True for [`AgentKind::Replay`].
    pub fn is_replay(&self) -> bool {
        self.kind == AgentKind::Replay
    }

    /// One line for humans: `name (kind: detail)`; a replay reads
    /// `name (replay of a recorded trajectory, no model called: detail)`.
    pub fn display(&self) -> String {
        let kind = match self.kind {
            AgentKind::Replay => "replay of a recorded trajectory, no model called",
            AgentKind::Command => "command-line agent",
            AgentKind::Http => "HTTP agent",
            AgentKind::TestDouble => "test double",
            AgentKind::Other => "agent",
        };
        match &self.detail {
            Some(d) => format!("{} ({kind}: {d})", self.name),
            None => format!("{} ({kind})", self.name),
        }
    }
}

/// The kind of agent adapter (see the design notes' agent interface).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// `ReplayAgent`: applies recorded patches; no model is called.
    Replay,
    /// `CommandAgent`: a CLI agent such as Claude Code, Codex or Aider.
    Command,
    /// An agent over an HTTP API (OpenAI-compatible).
    Http,
    /// A test double from a `testing` feature.
    TestDouble,
    /// Any other adapter.
    Other,
}

/// A spec the run built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SpecRef {
    /// The spec's front-matter `id`.
    pub id: String,
    /// The spec's title.
    pub title: String,
    /// The spec's front-matter `version`.
    pub version: u32,
    /// The spec's path relative to the repository root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The verification gate's verdict with the reasons behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GateVerdict {
    /// Pass, fail, insufficient evidence or not evaluated.
    pub outcome: GateOutcome,
    /// One line per rule that decided the verdict, e.g.
    /// `@critical: REQ-2 lower bound 0.83 < 0.90`. Redacted: never scenario text.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// The resolved policy the run judged with: every rule and where it came from (the spec's
    /// `## Verification gate`, `[gate]` in `lightsout.toml`, the holdout's `gate.toml`, the
    /// built-in floor).
    #[serde(default)]
    pub policy: Vec<PolicyRuleRef>,
}

/// One rule of the resolved gate policy, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PolicyRuleRef {
    /// The rule, as written or derived (`@critical scenarios: Wilson lower bound >= 0.9`).
    pub rule: String,
    /// Where it came from (`spec specs/x.md:155`, `holdout gate.toml`, `floor`).
    pub source: String,
    /// The fewest trials it asks of each scenario it applies to, when it asks any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trials: Option<u32>,
}

/// The gate's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GateOutcome {
    /// Every gate rule held on the merged result.
    Pass,
    /// At least one rule failed.
    Fail,
    /// Nothing failed, but too few trials ran to clear a rule's bound: not a pass.
    InsufficientEvidence,
    /// The gate did not run (the run stopped before the final eval).
    NotEvaluated,
}

/// Satisfaction of a requirement or suite: `passes / trials` with its Wilson 95% score interval.
///
/// Invariant when built by [`Satisfaction::from_counts`]: `passes <= trials`,
/// `0 <= lower <= rate <= upper <= 1`; `trials == 0` gives `rate = 0` and the interval `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Satisfaction {
    /// Trials that satisfied every step.
    pub passes: u32,
    /// Trials run (trajectories).
    pub trials: u32,
    /// `passes / trials`, in `[0, 1]`.
    pub rate: f64,
    /// Lower end of the Wilson 95% score interval.
    pub lower: f64,
    /// Upper end of the Wilson 95% score interval.
    pub upper: f64,
}

impl Satisfaction {
    /// Builds the rate and Wilson 95% interval from counts (`passes` is capped at `trials`).
    /// The interval is the gate's own, [`lightsout_eval::stats::wilson95`], so a report's
    /// satisfaction carries the very interval the gate judged with.
    ///
    /// The three shares are rounded to 6 decimal places, so that `report.json` holds short numbers
    /// that read back bit for bit.
    ///
    /// Source: E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
    /// JASA 22 (1927); the same figures as statsmodels' `proportion_confint(method="wilson")`.
    pub fn from_counts(passes: u32, trials: u32) -> Self {
        let passes = passes.min(trials);
        let w = lightsout_eval::stats::wilson95(passes, trials);
        let (lower, upper) = (w.low, w.high);
        let rate = if trials == 0 {
            0.0
        } else {
            f64::from(passes) / f64::from(trials)
        };
        Self {
            passes,
            trials,
            rate: round6(rate),
            lower: round6(lower),
            upper: round6(upper),
        }
    }
}

/// `v` rounded to 6 decimal places (the nearest `f64` to the 6-decimal value, which a JSON reader
/// parses back exactly).
fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// The outcome of one requirement: how well the merged result satisfies it, and the road there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequirementOutcome {
    /// The requirement's ID (`REQ-3`, or `spec-id#REQ-3` across specs).
    pub id: String,
    /// The requirement's title.
    pub title: String,
    /// Satisfaction over the holdout scenarios that trace to it, on the final merged result.
    pub satisfaction: Satisfaction,
    /// True when some scenario of this requirement both passed and failed across trials.
    #[serde(default)]
    pub flaky: bool,
    /// Agent attempts spent on the tasks that implement it.
    pub attempts: u32,
    /// Holdout scenarios that trace to it.
    #[serde(default)]
    pub scenarios: u32,
    /// The opaque ids (`S-` + 8 hex digits) of the holdout scenarios that judge it: those whose
    /// `Satisfies:` names it, and any evaluated scenario satisfying it. Ids only, never text.
    #[serde(default)]
    pub scenario_ids: Vec<String>,
    /// The IDs of the tasks that implement it.
    #[serde(default)]
    pub tasks: Vec<String>,
    /// The gate's reasons that name it (the run-wide verdict is [`RunReport::gate`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gate_reasons: Vec<String>,
    /// Failed attempts, oldest first, as the redacted feedback the agent received.
    #[serde(default)]
    pub failures: Vec<FailureRecord>,
}

/// One failed attempt, redacted: names the requirement and the kind of failure, never the holdout
/// scenario's text, steps or values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FailureRecord {
    /// The task whose attempt failed.
    pub task: String,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The failure's category (`status mismatch`, `twin not called`, `visible check`, `merge regression`).
    pub category: String,
    /// The redacted feedback text given to the agent.
    pub feedback: String,
}

/// The outcome of one task of the task graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskOutcome {
    /// The task's ID (`T1`).
    pub id: String,
    /// The task's title.
    pub title: String,
    /// The requirement IDs it implements.
    #[serde(default)]
    pub requirements: Vec<String>,
    /// The agent that ran it.
    pub agent: AgentLabel,
    /// Attempts made (1 when the first attempt passed).
    pub attempts: u32,
    /// Input (prompt) tokens over all attempts, as reported by the agent.
    pub tokens_in: u64,
    /// Output (completion) tokens over all attempts, as reported by the agent.
    pub tokens_out: u64,
    /// Cost in USD over all attempts, as reported by the agent (0 for a replay).
    pub cost_usd: f64,
    /// Agent wall time in ms over all attempts.
    pub wall_ms: u64,
    /// The commit on main that merged it, when merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_commit: Option<String>,
    /// Its attempts, oldest first, each with the commit it left.
    #[serde(default)]
    pub history: Vec<AttemptTrace>,
    /// Where the task ended.
    pub status: TaskStatus,
    /// IDs of the tasks it depends on. May name tasks absent from the report.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// The scheduler's wave (tasks of one wave can run at once). `None` lets the report compute it
    /// from `depends_on` (see [`crate::compute_waves`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<u32>,
}

/// One attempt at a task: the link from a task to the commits its agent made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttemptTrace {
    /// The attempt number, from 1.
    pub attempt: u32,
    /// Whether it passed the visible checks, the guards and the holdout.
    pub passed: bool,
    /// The stage that failed it (`checks`, `guards`, `holdout`, `policy`, `leak`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_stage: Option<String>,
    /// The worktree's commit after the attempt (kept reachable under `refs/lightsout/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// The loose ends of the traceability chain requirement → scenarios → tasks, both ways.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Orphans {
    /// Whether the holdout's coverage was known (it has scenario files). When it is not (a
    /// runner whose scenarios cannot be read), the two scenario lists are empty for want of
    /// evidence, not because nothing is missing.
    pub coverage_known: bool,
    /// Requirements of the built specs that no holdout scenario satisfies.
    #[serde(default)]
    pub requirements_without_scenarios: Vec<String>,
    /// Holdout scenarios naming requirements that no built spec has.
    #[serde(default)]
    pub scenarios_with_unknown_requirements: Vec<UnknownRequirementRef>,
    /// Tasks that serve no requirement.
    #[serde(default)]
    pub tasks_without_requirements: Vec<String>,
}

impl Orphans {
    /// Whether there is no loose end (and the coverage was known).
    pub fn is_clean(&self) -> bool {
        self.coverage_known
            && self.requirements_without_scenarios.is_empty()
            && self.scenarios_with_unknown_requirements.is_empty()
            && self.tasks_without_requirements.is_empty()
    }
}

/// A holdout scenario that names requirements no built spec has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UnknownRequirementRef {
    /// The scenario's opaque id.
    pub scenario: String,
    /// The requirement ids it names that are unknown.
    pub requirements: Vec<String>,
}

/// Where a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Passed the holdout and fast-forwarded onto main.
    Merged,
    /// Not built in this run: its input key is unchanged since an earlier run and that run's
    /// commit is on main.
    Unchanged,
    /// Ran out of attempts or budget.
    Failed,
    /// Merged, then reverted because the merged result regressed.
    Reverted,
    /// Routed back after a merge conflict and not resolved in this run.
    Conflict,
    /// Never ran because a dependency did not merge.
    Blocked,
    /// Not finished when the run stopped.
    Pending,
}

impl TaskStatus {
    /// The lower-case word used on the page and in CSS classes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Merged => "merged",
            Self::Unchanged => "unchanged",
            Self::Failed => "failed",
            Self::Reverted => "reverted",
            Self::Conflict => "conflict",
            Self::Blocked => "blocked",
            Self::Pending => "pending",
        }
    }
}

/// A decision recorded in memory (an ADR-like entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DecisionRecord {
    /// The decision's ID (`DEC-1`).
    pub id: String,
    /// The decision and its reason.
    pub text: String,
    /// Its status in memory.
    pub status: DecisionStatus,
    /// The decision it supersedes, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<String>,
    /// Where it came from (`spec url-shortener`, `run 2026-11-27-1`).
    #[serde(default)]
    pub source: String,
}

/// A decision's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionStatus {
    /// Proposed, not yet settled.
    Proposed,
    /// Settled: the memory guards protect it.
    Accepted,
    /// Replaced by a later decision.
    Superseded,
}

/// A lesson recorded in memory: a failure fingerprint and what it taught.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LessonRecord {
    /// The failure fingerprint (stable across runs).
    pub fingerprint: String,
    /// The lesson, redacted like agent feedback.
    pub text: String,
    /// The requirement it concerns, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
    /// The task it came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// A leak of holdout text or a policy violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Incident {
    /// What happened.
    pub kind: IncidentKind,
    /// The task involved, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Where it was found (`prompt`, `diff`, `feedback`, `audit`).
    pub location: String,
    /// What was found, without repeating the leaked text itself.
    pub detail: String,
}

/// The kind of an [`Incident`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// A holdout canary string appeared where an agent could see it.
    CanaryLeak,
    /// A long verbatim run of holdout scenario text appeared where an agent could see it.
    VerbatimLeak,
    /// A policy from `lightsout.toml` was broken (budget, forbidden path, secret in the environment).
    PolicyViolation,
    /// A memory guard fired: a diff reversed a settled decision.
    GuardViolation,
}

impl IncidentKind {
    /// A short label for humans.
    pub fn label(self) -> &'static str {
        match self {
            Self::CanaryLeak => "canary leak",
            Self::VerbatimLeak => "verbatim holdout leak",
            Self::PolicyViolation => "policy violation",
            Self::GuardViolation => "decision guard",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn totals_sum_and_saturate() {
        let mut r = RunReport::new(
            "r1",
            datetime!(2026-11-27 06:00 UTC),
            AgentLabel::replay("replay", "t.json"),
        );
        let task = TaskOutcome {
            id: "T1".into(),
            title: "t".into(),
            requirements: vec![],
            agent: r.agent.clone(),
            attempts: 2,
            tokens_in: u64::MAX,
            tokens_out: 5,
            cost_usd: f64::NAN,
            wall_ms: 10,
            merge_commit: None,
            history: Vec::new(),
            status: TaskStatus::Merged,
            depends_on: vec![],
            wave: None,
        };
        r.tasks = vec![task.clone(), task];
        let t = r.totals();
        assert_eq!(t.tokens_in, u64::MAX);
        assert_eq!(t.tokens_out, 10);
        assert_eq!(t.attempts, 4);
        assert_eq!(t.merged, 2);
        assert!(t.cost_usd.abs() < f64::EPSILON);
        assert!(r.uses_replay());
    }

    #[test]
    fn duration_is_none_when_unfinished_or_negative() {
        let mut r = RunReport::new(
            "r1",
            datetime!(2026-11-27 06:00 UTC),
            AgentLabel::replay("replay", "t.json"),
        );
        assert_eq!(r.duration_ms(), None);
        r.finished = Some(datetime!(2026-11-27 06:01:02.5 UTC));
        assert_eq!(r.duration_ms(), Some(62_500));
        r.finished = Some(datetime!(2026-11-27 05:00 UTC));
        assert_eq!(r.duration_ms(), None);
    }

    #[test]
    fn replay_label_says_no_model() {
        let l = AgentLabel::replay("replay", "examples/x/trajectory");
        assert!(
            l.display()
                .contains("replay of a recorded trajectory, no model called")
        );
    }

    #[test]
    fn json_uses_rfc3339_and_snake_case() {
        let mut r = RunReport::new(
            "r1",
            datetime!(2026-11-27 06:00 UTC),
            AgentLabel::replay("replay", "t.json"),
        );
        r.finished = Some(datetime!(2026-11-27 06:05 UTC));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["started"], "2026-11-27T06:00:00Z");
        assert_eq!(v["finished"], "2026-11-27T06:05:00Z");
        assert_eq!(v["agent"]["kind"], "replay");
        assert_eq!(v["gate"]["outcome"], "not_evaluated");
        assert_eq!(v["schema_version"], SCHEMA_VERSION);
        let back: RunReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
