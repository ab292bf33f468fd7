//! Budgets that fail closed: attempts, wall time, tokens and USD, capped per task, per run and
//! per UTC calendar day.
//!
//! # Protocol
//! 1. Before every agent call the factory calls [`BudgetLedger::reserve`] with the expected
//!    cost. If any cap would be passed the call is refused with
//!    [`FenceError::BudgetExceeded`], which names the budget, the scope, the limit and what
//!    is used; the call must not start.
//! 2. After the call the factory hands the [`Reservation`] back exactly once:
//!    [`BudgetLedger::settle`] with the usage the agent reported, or
//!    [`BudgetLedger::release`] when the call never started (spawn failure). Both consume
//!    the reservation, so it cannot be settled twice.
//! 3. A retry is a new call: it needs a new reservation, and counts one more attempt.
//!
//! # Dropped reservations
//! Dropping a [`Reservation`] without settling or releasing it (a panic, an early `?`, a
//! cancelled future) charges its *estimate* as if it were the actual usage. The call may
//! have run and the real usage is unknown, so the ledger keeps the conservative figure: the
//! budget is neither refunded (fail open) nor held reserved forever (a leak). Such drops are
//! counted in [`LedgerStats::dropped`].
//!
//! # Daily caps
//! The per-day account is keyed by the UTC calendar day (`YYYY-MM-DD`) and persisted in a
//! small JSON file written atomically (temporary file + `rename`) on every reservation and
//! settlement, so daily caps hold across runs. The file records settled usage *plus*
//! outstanding reservations: after a crash or `kill -9`, reservations that were never
//! settled stay charged at their estimate (fail closed). One factory process should own a
//! ledger file at a time; two processes writing the same file concurrently can lose each
//! other's updates (the last writer wins).
//!
//! A call is charged to the UTC day on which it was reserved, even when it settles after
//! midnight.
//!
//! # Units
//! Tokens are input plus output tokens, wall time is milliseconds, money is micro-USD
//! (`1 USD = 1_000_000`), kept as integers so that sums are exact.

use super::FenceError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
// Every critical section leaves the state consistent, so a poisoned lock is still valid.
use lightsout_stdx::lock;
use std::sync::{Arc, Mutex, MutexGuard};

/// Micro-USD per USD.
pub const MICROS_PER_USD: u64 = 1_000_000;

/// How many days of history the daily ledger file keeps.
const DAYS_KEPT: usize = 62;

/// Converts a cost in USD to micro-USD, rounding up (a cost is never under-counted).
///
/// A negative cost counts as 0; a non-finite cost (NaN, infinity) counts as `u64::MAX`, so
/// that an agent reporting garbage exhausts the budget instead of slipping through.
pub fn usd_to_micros_ceil(usd: f64) -> u64 {
    if !usd.is_finite() {
        return u64::MAX;
    }
    if usd <= 0.0 {
        return 0;
    }
    let micros = usd * MICROS_PER_USD as f64;
    // A sum of prices such as 0.035 + 0.035 lands a hair above the whole micro-USD it
    // means (70000.00000000001): that float noise is not rounded up.
    let nearest = micros.round();
    // `as` saturates for out-of-range floats.
    if (micros - nearest).abs() < 1e-6 {
        nearest as u64
    } else {
        micros.ceil() as u64
    }
}

/// Converts a cap in USD to micro-USD, rounding down (a cap is never exceeded by rounding).
/// A negative or non-finite cap counts as 0: nothing may be spent.
pub fn usd_to_micros_floor(usd: f64) -> u64 {
    if !usd.is_finite() || usd <= 0.0 {
        return 0;
    }
    (usd * MICROS_PER_USD as f64).floor() as u64
}

/// What the ledger counts against a budget: the spend of one agent call, or a sum of calls.
///
/// Units: tokens (input plus output), whole micro-USD, milliseconds. The usage an agent
/// reports ([`lightsout_agent::Usage`], USD as a float, tokens split) enters the ledger
/// through one conversion, `Spend::from`, which rounds the cost up
/// ([`usd_to_micros_ceil`]: fail closed on a cost that is not a number). All fields add
/// with saturation, so a sum never wraps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Spend {
    /// Input plus output tokens.
    #[serde(default)]
    pub tokens: u64,
    /// Cost in micro-USD (`1 USD = 1_000_000`).
    #[serde(default)]
    pub usd_micros: u64,
    /// Wall-clock time in milliseconds.
    #[serde(default)]
    pub wall_ms: u64,
}

impl Spend {
    /// `tokens` tokens and nothing else.
    pub fn tokens(tokens: u64) -> Self {
        Self {
            tokens,
            ..Self::default()
        }
    }

    /// From an agent's figures: `tokens_in + tokens_out`, a USD cost (rounded up to
    /// whole micro-USD, see [`usd_to_micros_ceil`]) and wall milliseconds.
    pub fn from_report(tokens_in: u64, tokens_out: u64, usd: f64, wall_ms: u64) -> Self {
        Self {
            tokens: tokens_in.saturating_add(tokens_out),
            usd_micros: usd_to_micros_ceil(usd),
            wall_ms,
        }
    }

    /// The cost in USD (for display; the ledger itself counts micro-USD).
    pub fn usd(&self) -> f64 {
        self.usd_micros as f64 / MICROS_PER_USD as f64
    }

    /// Component-wise saturating sum.
    #[must_use]
    pub fn saturating_add(self, other: Self) -> Self {
        Self {
            tokens: self.tokens.saturating_add(other.tokens),
            usd_micros: self.usd_micros.saturating_add(other.usd_micros),
            wall_ms: self.wall_ms.saturating_add(other.wall_ms),
        }
    }

    /// Component-wise saturating difference.
    #[must_use]
    pub fn saturating_sub(self, other: Self) -> Self {
        Self {
            tokens: self.tokens.saturating_sub(other.tokens),
            usd_micros: self.usd_micros.saturating_sub(other.usd_micros),
            wall_ms: self.wall_ms.saturating_sub(other.wall_ms),
        }
    }

    fn get(&self, budget: Budget) -> u64 {
        match budget {
            Budget::Attempts => 0,
            Budget::WallMs => self.wall_ms,
            Budget::Tokens => self.tokens,
            Budget::Usd => self.usd_micros,
        }
    }
}

/// The one conversion of an agent's reported usage into the ledger's unit: input plus output
/// tokens, the reported cost rounded up to whole micro-USD (a cost the agent did not report,
/// `None`, counts as 0), and the wall time.
impl From<&lightsout_agent::Usage> for Spend {
    fn from(u: &lightsout_agent::Usage) -> Self {
        Self::from_report(
            u.input_tokens,
            u.output_tokens,
            u.cost_usd.unwrap_or(0.0),
            u.wall_ms,
        )
    }
}

/// Caps for one scope. `None` means unlimited; `Some(0)` means nothing may be spent.
///
/// In `lightsout.toml` (for example under `[budget.task]`):
/// `attempts = 3`, `wall_ms = 600000`, `tokens = 200000`, `usd = 2.5`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Maximum number of agent calls (each retry is one more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u64>,
    /// Maximum wall-clock milliseconds of agent calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<u64>,
    /// Maximum input plus output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// Maximum cost in USD (converted to micro-USD rounding down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd: Option<f64>,
}

impl Limits {
    /// The cap for `budget` in its ledger unit (count, ms, tokens, micro-USD).
    pub fn cap(&self, budget: Budget) -> Option<u64> {
        match budget {
            Budget::Attempts => self.attempts,
            Budget::WallMs => self.wall_ms,
            Budget::Tokens => self.tokens,
            Budget::Usd => self.usd.map(usd_to_micros_floor),
        }
    }
}

/// Budget caps per task, per run and per UTC day (`[budget]` in `lightsout.toml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Caps for each task (all its attempts together).
    #[serde(default, rename = "task")]
    pub per_task: Limits,
    /// Caps for the whole run.
    #[serde(default, rename = "run")]
    pub per_run: Limits,
    /// Caps for one UTC calendar day, across runs (needs a ledger file, see
    /// [`BudgetLedger::open`]).
    #[serde(default, rename = "day")]
    pub per_day: Limits,
    /// What each agent call reserves before it starts (`[budget.call]`).
    #[serde(default, rename = "call")]
    pub per_call: CallEstimate,
}

impl BudgetConfig {
    /// What each agent call reserves before it starts: the `[budget.call]` figures where
    /// set; otherwise, for tokens and USD, a default that lets every attempt of a task fit
    /// under the tightest cap: the task cap divided by `attempts`, and the run and day caps
    /// divided by `attempts × jobs` (so the calls running at once fit too), rounded down but
    /// at least 1 unit under a non-zero cap; 0 where nothing caps the budget. Wall time:
    /// `[budget.call] wall_ms`, else `wall_limit_ms` (the fence's limit of the call).
    ///
    /// `attempts` is the attempts a task may make (`[run] attempts`, lowered to
    /// `[budget.task] attempts` when that is set); `jobs` the calls that run at once.
    pub fn call_reservation(&self, wall_limit_ms: u64, attempts: u64, jobs: u64) -> Spend {
        let attempts = attempts
            .min(self.per_task.attempts.unwrap_or(u64::MAX))
            .max(1);
        let parallel = attempts.saturating_mul(jobs.max(1));
        let default = |budget: Budget| {
            [
                self.per_task.cap(budget).map(|c| (c, attempts)),
                self.per_run.cap(budget).map(|c| (c, parallel)),
                self.per_day.cap(budget).map(|c| (c, parallel)),
            ]
            .into_iter()
            .flatten()
            .map(|(cap, n)| if cap == 0 { 0 } else { (cap / n).max(1) })
            .min()
            .unwrap_or(0)
        };
        Spend {
            tokens: self
                .per_call
                .tokens
                .unwrap_or_else(|| default(Budget::Tokens)),
            usd_micros: self
                .per_call
                .usd
                .map_or_else(|| default(Budget::Usd), usd_to_micros_ceil),
            wall_ms: self.per_call.wall_ms.unwrap_or(wall_limit_ms),
        }
    }
}

/// The expected cost of one agent call, reserved before it starts (`[budget.call]` in
/// `lightsout.toml`, for example `tokens = 50000`, `usd = 0.40`).
///
/// Reserving the most a call may cost keeps every cap safe while calls run in parallel. A
/// call that reports more is still charged in full, and
/// [`Settlement::exceeded_estimate`] says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallEstimate {
    /// Expected wall time in ms; default: the fence's wall-time limit of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<u64>,
    /// Expected input plus output tokens; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// Expected cost in USD (rounded up to micro-USD); default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd: Option<f64>,
}

impl CallEstimate {
    /// The usage to reserve for a call whose wall time is limited to `wall_limit_ms`.
    pub fn usage(&self, wall_limit_ms: u64) -> Spend {
        Spend {
            tokens: self.tokens.unwrap_or(0),
            usd_micros: self.usd.map_or(0, usd_to_micros_ceil),
            wall_ms: self.wall_ms.unwrap_or(wall_limit_ms),
        }
    }
}

/// Which budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// Number of agent calls.
    Attempts,
    /// Wall-clock milliseconds.
    WallMs,
    /// Input plus output tokens.
    Tokens,
    /// Cost in micro-USD.
    Usd,
}

impl Budget {
    /// All budgets, in the order they are checked.
    pub const ALL: [Self; 4] = [Self::Attempts, Self::WallMs, Self::Tokens, Self::Usd];

    fn render(self, value: u64) -> String {
        match self {
            Self::Attempts => format!("{value}"),
            Self::WallMs => format!("{value} ms"),
            Self::Tokens => format!("{value} tokens"),
            Self::Usd => format!("${:.6}", value as f64 / MICROS_PER_USD as f64),
        }
    }
}

impl Budget {
    /// A figure in this budget's unit, USD with 2 to 6 decimals (`$0.07`, `$0.0333`).
    pub fn render_short(self, value: u64) -> String {
        match self {
            Self::Usd => {
                let s = format!("{:.6}", value as f64 / MICROS_PER_USD as f64);
                let t = s.trim_end_matches('0');
                let decimals = t.split_once('.').map_or(0, |(_, d)| d.len());
                format!("${t}{}", "0".repeat(2usize.saturating_sub(decimals)))
            }
            other => other.render(value),
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Attempts => "attempts",
            Self::WallMs => "wall time",
            Self::Tokens => "tokens",
            Self::Usd => "usd",
        })
    }
}

/// The scope of a budget.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "scope", content = "id", rename_all = "snake_case")]
pub enum Scope {
    /// One task, by id.
    Task(String),
    /// The whole run.
    Run,
    /// One UTC calendar day, as `YYYY-MM-DD`.
    Day(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Task(t) => write!(f, "task {t}"),
            Self::Run => f.write_str("run"),
            Self::Day(d) => write!(f, "day {d}"),
        }
    }
}

/// A budget that a reservation would pass, or that settled usage has passed.
///
/// `limit`, `used` and `requested` are in the budget's ledger unit: a count for attempts,
/// milliseconds, tokens, or micro-USD. `used` is settled plus outstanding reservations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetExceeded {
    /// Which budget.
    pub budget: Budget,
    /// Which scope.
    pub scope: Scope,
    /// The cap.
    pub limit: u64,
    /// Used in the scope so far (settled plus reserved).
    pub used: u64,
    /// What was requested (0 when reporting an overrun after settling).
    pub requested: u64,
}

impl fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} budget of the {} ran out: limit {}, used {}",
            self.budget,
            self.scope,
            self.budget.render(self.limit),
            self.budget.render(self.used)
        )?;
        if self.requested > 0 {
            write!(f, ", requested {}", self.budget.render(self.requested))?;
        }
        Ok(())
    }
}

impl BudgetExceeded {
    /// For a call stopped while it ran ([`Reservation::cover`]): `stopped at $0.09 of cap
    /// $0.10 (usd budget of the task T1)`, where the first figure is what the scope had
    /// used with the call's spend so far.
    pub fn stopped_at(&self) -> String {
        format!(
            "stopped at {} of cap {} ({} budget of the {})",
            self.budget.render_short(self.used),
            self.budget.render_short(self.limit),
            self.budget,
            self.scope
        )
    }
}

impl std::error::Error for BudgetExceeded {}

/// Settled and reserved amounts of one scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Account {
    settled_attempts: u64,
    settled: Spend,
    reserved_attempts: u64,
    reserved: Spend,
}

impl Account {
    fn used(&self, budget: Budget) -> u64 {
        match budget {
            Budget::Attempts => self.settled_attempts.saturating_add(self.reserved_attempts),
            _ => self
                .settled
                .get(budget)
                .saturating_add(self.reserved.get(budget)),
        }
    }

    fn reserve(&mut self, estimate: Spend) {
        self.reserved_attempts = self.reserved_attempts.saturating_add(1);
        self.reserved = self.reserved.saturating_add(estimate);
    }

    fn unreserve(&mut self, estimate: Spend) {
        self.reserved_attempts = self.reserved_attempts.saturating_sub(1);
        self.reserved = self.reserved.saturating_sub(estimate);
    }

    fn settle(&mut self, estimate: Spend, actual: Spend) {
        self.unreserve(estimate);
        self.settled_attempts = self.settled_attempts.saturating_add(1);
        self.settled = self.settled.saturating_add(actual);
    }

    fn charged(&self) -> DayRecord {
        DayRecord {
            attempts: self.used(Budget::Attempts),
            usage: self.settled.saturating_add(self.reserved),
        }
    }
}

/// One day in the ledger file: settled usage plus outstanding reservations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct DayRecord {
    attempts: u64,
    #[serde(flatten)]
    usage: Spend,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LedgerFile {
    version: u32,
    /// `YYYY-MM-DD` → charged.
    days: BTreeMap<String, DayRecord>,
}

/// Counters of the reservation protocol.
///
/// Invariant once every reservation is handed back or dropped:
/// `granted == settled + released + dropped`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerStats {
    /// Reservations granted (calls allowed to start).
    pub granted: u64,
    /// Reservations refused with [`FenceError::BudgetExceeded`].
    pub refused: u64,
    /// Reservations settled with actual usage.
    pub settled: u64,
    /// Reservations released unused.
    pub released: u64,
    /// Reservations dropped unsettled (charged at their estimate).
    pub dropped: u64,
    /// Reservations currently outstanding.
    pub outstanding: u64,
    /// Sum of the usage passed to [`BudgetLedger::settle`] plus estimates of dropped
    /// reservations.
    pub charged: Spend,
}

type Clock = Box<dyn Fn() -> time::Date + Send + Sync>;

struct State {
    config: BudgetConfig,
    tasks: HashMap<String, Account>,
    run: Account,
    days: BTreeMap<String, Account>,
    outstanding: HashMap<u64, Outstanding>,
    next_id: u64,
    stats: LedgerStats,
    path: Option<PathBuf>,
    dirty: bool,
    clock: Clock,
}

struct Outstanding {
    task: String,
    day: String,
    estimate: Spend,
}

fn day_key(date: time::Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

impl State {
    fn today(&self) -> String {
        day_key((self.clock)())
    }

    fn scopes(&self, task: &str, day: &str) -> [(Scope, Limits, Account); 3] {
        let task_acc = self.tasks.get(task).copied().unwrap_or_default();
        let day_acc = self.days.get(day).copied().unwrap_or_default();
        [
            (Scope::Task(task.to_owned()), self.config.per_task, task_acc),
            (Scope::Run, self.config.per_run, self.run),
            (Scope::Day(day.to_owned()), self.config.per_day, day_acc),
        ]
    }

    /// Budgets that `estimate` would pass, first one found.
    fn check(&self, task: &str, day: &str, estimate: Spend) -> Option<BudgetExceeded> {
        for (scope, limits, acc) in self.scopes(task, day) {
            for budget in Budget::ALL {
                let Some(limit) = limits.cap(budget) else {
                    continue;
                };
                let used = acc.used(budget);
                let requested = match budget {
                    Budget::Attempts => 1,
                    _ => estimate.get(budget),
                };
                // Fail closed: an exhausted budget refuses even a zero estimate.
                if used >= limit || used.saturating_add(requested) > limit {
                    return Some(BudgetExceeded {
                        budget,
                        scope,
                        limit,
                        used,
                        requested,
                    });
                }
            }
        }
        None
    }

    /// Budgets whose settled plus reserved usage is past the cap.
    fn overruns(&self, task: &str, day: &str) -> Vec<BudgetExceeded> {
        let mut out = Vec::new();
        for (scope, limits, acc) in self.scopes(task, day) {
            for budget in Budget::ALL {
                if let Some(limit) = limits.cap(budget) {
                    let used = acc.used(budget);
                    if used > limit {
                        out.push(BudgetExceeded {
                            budget,
                            scope: scope.clone(),
                            limit,
                            used,
                            requested: 0,
                        });
                    }
                }
            }
        }
        out
    }

    /// Raises reservation `id` to cover `spent + step` in tokens and USD, when every cap
    /// allows it; otherwise changes nothing and names the first budget it would pass.
    fn cover(&mut self, id: u64, spent: Spend, step: Spend) -> Result<Spend, BudgetExceeded> {
        let Some(o) = self.outstanding.get(&id) else {
            return Ok(spent);
        };
        let (task, day, old) = (o.task.clone(), o.day.clone(), o.estimate);
        let want = spent.saturating_add(step);
        let new = Spend {
            tokens: old.tokens.max(want.tokens),
            usd_micros: old.usd_micros.max(want.usd_micros),
            wall_ms: old.wall_ms,
        };
        for (scope, limits, acc) in self.scopes(&task, &day) {
            for budget in [Budget::Tokens, Budget::Usd] {
                let Some(limit) = limits.cap(budget) else {
                    continue;
                };
                // What the scope has used apart from this call, plus what the call spent.
                let others = acc.used(budget).saturating_sub(old.get(budget));
                if others.saturating_add(want.get(budget)) > limit {
                    return Err(BudgetExceeded {
                        budget,
                        scope,
                        limit,
                        used: others.saturating_add(spent.get(budget)),
                        requested: step.get(budget),
                    });
                }
            }
        }
        if new != old {
            let delta = new.saturating_sub(old);
            for acc in [
                self.tasks.entry(task).or_default(),
                &mut self.run,
                self.days.entry(day).or_default(),
            ] {
                acc.reserved = acc.reserved.saturating_add(delta);
            }
            if let Some(o) = self.outstanding.get_mut(&id) {
                o.estimate = new;
            }
            self.dirty = true;
        }
        Ok(new)
    }

    fn finish(&mut self, id: u64, actual: Option<Spend>) -> Option<Outstanding> {
        let o = self.outstanding.remove(&id)?;
        self.stats.outstanding = self.outstanding.len() as u64;
        let accounts = [
            self.tasks.entry(o.task.clone()).or_default(),
            &mut self.run,
            self.days.entry(o.day.clone()).or_default(),
        ];
        for acc in accounts {
            match actual {
                Some(a) => acc.settle(o.estimate, a),
                None => acc.unreserve(o.estimate),
            }
        }
        if let Some(a) = actual {
            self.stats.charged = self.stats.charged.saturating_add(a);
        }
        self.dirty = true;
        Some(o)
    }

    fn persist(&mut self) -> Result<(), FenceError> {
        let Some(path) = self.path.clone() else {
            self.dirty = false;
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        let mut file = LedgerFile {
            version: 1,
            days: BTreeMap::new(),
        };
        for (day, acc) in self.days.iter().rev().take(DAYS_KEPT) {
            file.days.insert(day.clone(), acc.charged());
        }
        let bytes = serde_json::to_vec_pretty(&file).map_err(|source| FenceError::Json {
            path: path.clone(),
            source,
        })?;
        super::write_atomic(&path, &bytes)?;
        self.dirty = false;
        Ok(())
    }
}

/// The budget ledger of one run, shared by every concurrent agent call (`Clone` shares it).
///
/// Invariant: for every scope and budget, settled plus reserved usage stays at or under the
/// cap as long as each call's actual usage stays at or under its estimate. A call that
/// reports more than its estimate is still charged in full (the ledger never hides usage);
/// [`BudgetLedger::settle`] then reports the overrun and every later reservation in that
/// scope is refused.
#[derive(Clone)]
pub struct BudgetLedger {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for BudgetLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = lock(&self.state);
        f.debug_struct("BudgetLedger")
            .field("config", &s.config)
            .field("path", &s.path)
            .field("stats", &s.stats)
            .finish_non_exhaustive()
    }
}

impl BudgetLedger {
    /// A ledger kept in memory only: per-day caps then hold within this process only.
    pub fn in_memory(config: BudgetConfig) -> Self {
        Self::build(config, None, BTreeMap::new())
    }

    /// A ledger whose per-day account is persisted in `path` (for example
    /// `.lightsout/budget.json`). A missing file starts empty.
    ///
    /// # Errors
    /// [`FenceError::Io`] when the file cannot be read, [`FenceError::Json`] when it is not a
    /// ledger file. A damaged ledger is not silently reset: that would lift the daily caps.
    pub fn open(config: BudgetConfig, path: impl Into<PathBuf>) -> Result<Self, FenceError> {
        let path = path.into();
        let days = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: LedgerFile =
                    serde_json::from_slice(&bytes).map_err(|source| FenceError::Json {
                        path: path.clone(),
                        source,
                    })?;
                file.days
                    .into_iter()
                    .map(|(day, rec)| {
                        let acc = Account {
                            settled_attempts: rec.attempts,
                            settled: rec.usage,
                            ..Account::default()
                        };
                        (day, acc)
                    })
                    .collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(FenceError::io(&path, e)),
        };
        Ok(Self::build(config, Some(path), days))
    }

    fn build(config: BudgetConfig, path: Option<PathBuf>, days: BTreeMap<String, Account>) -> Self {
        let state = State {
            config,
            tasks: HashMap::new(),
            run: Account::default(),
            days,
            outstanding: HashMap::new(),
            next_id: 1,
            stats: LedgerStats::default(),
            path,
            dirty: false,
            clock: Box::new(|| time::OffsetDateTime::now_utc().date()),
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// Replaces the clock that names the current UTC day (for tests and simulations).
    #[must_use]
    pub fn with_clock(self, clock: impl Fn() -> time::Date + Send + Sync + 'static) -> Self {
        lock(&self.state).clock = Box::new(clock);
        self
    }

    /// Reserves `estimate` plus one attempt for a call of `task`, in the task, run and day
    /// scopes. The call may start only with the returned [`Reservation`].
    ///
    /// # Errors
    /// [`FenceError::BudgetExceeded`] when a cap would be passed or is already reached (the
    /// first such budget, checked task → run → day and attempts → wall → tokens → USD);
    /// [`FenceError::Io`] when the ledger file cannot be written (nothing is reserved then).
    pub fn reserve(&self, task: &str, estimate: Spend) -> Result<Reservation, FenceError> {
        let mut s = lock(&self.state);
        let day = s.today();
        if let Some(exceeded) = s.check(task, &day, estimate) {
            s.stats.refused += 1;
            return Err(FenceError::BudgetExceeded(exceeded));
        }
        let id = s.next_id;
        s.next_id += 1;
        s.tasks
            .entry(task.to_owned())
            .or_default()
            .reserve(estimate);
        s.run.reserve(estimate);
        s.days.entry(day.clone()).or_default().reserve(estimate);
        s.outstanding.insert(
            id,
            Outstanding {
                task: task.to_owned(),
                day,
                estimate,
            },
        );
        s.dirty = true;
        if let Err(e) = s.persist() {
            // Could not record the reservation durably: undo it and refuse the call.
            s.finish(id, None);
            return Err(e);
        }
        s.stats.granted += 1;
        s.stats.outstanding = s.outstanding.len() as u64;
        Ok(Reservation {
            id,
            task: task.to_owned(),
            estimate,
            ledger: Some(Arc::clone(&self.state)),
        })
    }

    /// Settles `reservation` with the usage the call actually reported, exactly once.
    ///
    /// The full `actual` usage is charged even when it passes a cap; the returned
    /// [`Settlement::overruns`] then lists every budget now past its cap, and every later
    /// [`reserve`](Self::reserve) in those scopes is refused.
    ///
    /// # Errors
    /// [`FenceError::ForeignReservation`] when another ledger granted the reservation (it is
    /// then dropped, which charges its estimate on its own ledger); [`FenceError::Io`] when
    /// the ledger file cannot be written (the settlement is kept in memory and written with
    /// the next change).
    pub fn settle(
        &self,
        mut reservation: Reservation,
        actual: Spend,
    ) -> Result<Settlement, FenceError> {
        if !reservation.is_from(&self.state) {
            return Err(FenceError::ForeignReservation { id: reservation.id });
        }
        reservation.ledger = None;
        let mut s = lock(&self.state);
        let o = s
            .finish(reservation.id, Some(actual))
            .ok_or(FenceError::ForeignReservation { id: reservation.id })?;
        s.stats.settled += 1;
        let overruns = s.overruns(&o.task, &o.day);
        s.persist()?;
        Ok(Settlement {
            id: reservation.id,
            task: o.task,
            estimate: o.estimate,
            charged: actual,
            overruns,
        })
    }

    /// Hands back a reservation whose call never started (for example the agent binary
    /// could not be spawned): the estimate and the attempt are refunded.
    ///
    /// # Errors
    /// As for [`settle`](Self::settle).
    pub fn release(&self, mut reservation: Reservation) -> Result<(), FenceError> {
        if !reservation.is_from(&self.state) {
            return Err(FenceError::ForeignReservation { id: reservation.id });
        }
        reservation.ledger = None;
        let mut s = lock(&self.state);
        s.finish(reservation.id, None)
            .ok_or(FenceError::ForeignReservation { id: reservation.id })?;
        s.stats.released += 1;
        s.persist()
    }

    /// Charges usage that an earlier process of the same run already settled, so that a
    /// `--resume` starts from what the run has spent rather than from zero: one attempt and
    /// `settled` go to the task and run scopes. The day scope is not touched: when day caps
    /// are set the ledger file already holds that day's usage, and without day caps there is
    /// nothing to enforce.
    pub fn restore(&self, task: &str, settled: Spend) {
        let mut guard = lock(&self.state);
        let s = &mut *guard;
        for acc in [s.tasks.entry(task.to_owned()).or_default(), &mut s.run] {
            acc.settled_attempts = acc.settled_attempts.saturating_add(1);
            acc.settled = acc.settled.saturating_add(settled);
        }
    }

    /// Settled plus reserved usage of `task` (all its attempts).
    pub fn task_used(&self, task: &str) -> Spend {
        let s = lock(&self.state);
        s.tasks
            .get(task)
            .map(|a| a.settled.saturating_add(a.reserved))
            .unwrap_or_default()
    }

    /// Attempts of `task` so far, settled plus outstanding.
    pub fn task_attempts(&self, task: &str) -> u64 {
        let s = lock(&self.state);
        s.tasks.get(task).map_or(0, |a| a.used(Budget::Attempts))
    }

    /// Settled plus reserved usage of the run.
    pub fn run_used(&self) -> Spend {
        let s = lock(&self.state);
        s.run.settled.saturating_add(s.run.reserved)
    }

    /// Settled plus reserved usage of the current UTC day (across runs when persisted).
    pub fn day_used(&self) -> Spend {
        let s = lock(&self.state);
        let day = s.today();
        s.days
            .get(&day)
            .map(|a| a.settled.saturating_add(a.reserved))
            .unwrap_or_default()
    }

    /// The budget left for `task`: for each budget the smallest headroom over the task, run
    /// and day scopes, `None` when no scope caps it. This is what `TaskContext` carries as
    /// "budget left".
    pub fn remaining(&self, task: &str) -> Remaining {
        let s = lock(&self.state);
        let day = s.today();
        let mut left = Remaining::default();
        for (_, limits, acc) in s.scopes(task, &day) {
            for budget in Budget::ALL {
                if let Some(limit) = limits.cap(budget) {
                    let head = limit.saturating_sub(acc.used(budget));
                    let slot = match budget {
                        Budget::Attempts => &mut left.attempts,
                        Budget::WallMs => &mut left.wall_ms,
                        Budget::Tokens => &mut left.tokens,
                        Budget::Usd => &mut left.usd_micros,
                    };
                    *slot = Some(slot.map_or(head, |v| v.min(head)));
                }
            }
        }
        left
    }

    /// Counters of the reservation protocol.
    pub fn stats(&self) -> LedgerStats {
        lock(&self.state).stats
    }

    /// The ledger file, when persisted.
    pub fn path(&self) -> Option<PathBuf> {
        lock(&self.state).path.clone()
    }

    /// Writes the ledger file if a change is pending (after a failed write or a dropped
    /// reservation).
    ///
    /// # Errors
    /// [`FenceError::Io`] when the file cannot be written.
    pub fn flush(&self) -> Result<(), FenceError> {
        lock(&self.state).persist()
    }
}

/// The budget left for a task; `None` means uncapped. Units as in [`Limits`], with money in
/// micro-USD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remaining {
    /// Attempts left.
    pub attempts: Option<u64>,
    /// Wall milliseconds left.
    pub wall_ms: Option<u64>,
    /// Tokens left.
    pub tokens: Option<u64>,
    /// Micro-USD left.
    pub usd_micros: Option<u64>,
}

/// The right to make one agent call, granted by [`BudgetLedger::reserve`].
///
/// Hand it back exactly once with [`BudgetLedger::settle`] or [`BudgetLedger::release`].
/// Dropping it unsettled charges the estimate (see the module docs).
#[must_use = "a reservation must be settled or released; dropping it charges its estimate"]
pub struct Reservation {
    id: u64,
    task: String,
    estimate: Spend,
    ledger: Option<Arc<Mutex<State>>>,
}

impl Reservation {
    /// The reservation id, unique within its ledger (for the audit log).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The task it was reserved for.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// The estimate reserved.
    pub fn estimate(&self) -> Spend {
        self.estimate
    }

    /// Covers a running call's spend as it streams in: raises this reservation (in tokens
    /// and USD) to `spent + step`, the call's spend so far plus the largest step it has
    /// taken, when that fits under every cap of the task, run and day, counting what the
    /// other calls use and reserve.
    ///
    /// `Err` means the next step could pass a cap: stop the call now (kill its process
    /// group), and it ends within the cap as long as no step is larger than `step`. The
    /// error's `used` is what the scope has used with the call's spend so far, `requested`
    /// the step ([`BudgetExceeded::stopped_at`] says it in words). Nothing changes then.
    ///
    /// # Errors
    /// [`BudgetExceeded`] as above.
    pub fn cover(&mut self, spent: Spend, step: Spend) -> Result<(), BudgetExceeded> {
        let Some(state) = self.ledger.clone() else {
            return Ok(());
        };
        let mut s = lock(&state);
        let new = s.cover(self.id, spent, step)?;
        self.estimate = new;
        // Best effort, as for a dropped reservation: the next reservation writes it.
        let _ = s.persist();
        Ok(())
    }

    fn is_from(&self, state: &Arc<Mutex<State>>) -> bool {
        self.ledger.as_ref().is_some_and(|l| Arc::ptr_eq(l, state))
    }
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("id", &self.id)
            .field("task", &self.task)
            .field("estimate", &self.estimate)
            .finish_non_exhaustive()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(state) = self.ledger.take() {
            let mut s = lock(&state);
            if s.finish(self.id, Some(self.estimate)).is_some() {
                s.stats.dropped += 1;
                // Best effort: a failed write leaves the ledger dirty; the next reservation
                // writes it before granting anything.
                let _ = s.persist();
            }
        }
    }
}

/// The reservations of the calls running now, by `(task id, attempt)`: the run's
/// `FenceHook` (in `lightsout-factory`) opens one before each call and closes it to settle;
/// the run's [`FencedAgent`](super::agent::FencedAgent)s [cover](Reservation::cover) the
/// spend a streaming agent reports while it runs, and stop it when it cannot be covered.
#[derive(Debug, Default)]
pub struct OpenCalls(Mutex<BTreeMap<(String, u32), Reservation>>);

impl OpenCalls {
    /// Holds `reservation` for `task`'s `attempt` (an earlier one for the same key is
    /// dropped, which charges its estimate).
    pub fn open(&self, task: &str, attempt: u32, reservation: Reservation) {
        let old = self.lock().insert((task.to_owned(), attempt), reservation);
        drop(old);
    }

    /// Takes the reservation of `task`'s `attempt` back, to settle or release it.
    pub fn close(&self, task: &str, attempt: u32) -> Option<Reservation> {
        self.lock().remove(&(task.to_owned(), attempt))
    }

    /// [`Reservation::cover`] on the reservation of `task`'s `attempt`; `None` when no
    /// reservation is open for it (a call outside a run, such as `lightsout agent check`).
    pub fn cover(
        &self,
        task: &str,
        attempt: u32,
        spent: Spend,
        step: Spend,
    ) -> Option<Result<(), BudgetExceeded>> {
        self.lock()
            .get_mut(&(task.to_owned(), attempt))
            .map(|r| r.cover(spent, step))
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, u32), Reservation>> {
        lock(&self.0)
    }
}

/// The outcome of [`BudgetLedger::settle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// The reservation id.
    pub id: u64,
    /// The task.
    pub task: String,
    /// What was reserved.
    pub estimate: Spend,
    /// What was charged: the reported usage, in full.
    pub charged: Spend,
    /// Budgets now past their cap (empty when within budget). Non-empty means the task (or
    /// run, or day) must stop: it fails and blocks its dependents.
    pub overruns: Vec<BudgetExceeded>,
}

impl Settlement {
    /// Whether the call used more than it reserved in any unit.
    pub fn exceeded_estimate(&self) -> bool {
        self.charged.tokens > self.estimate.tokens
            || self.charged.usd_micros > self.estimate.usd_micros
            || self.charged.wall_ms > self.estimate.wall_ms
    }
}

/// Which agent runs which kind of task: cheaper agents for lower-stakes kinds
/// (`[agents]` in `lightsout.toml`, for example `default = "claude"`,
/// `by_kind = { docs = "aider-mini", chore = "aider-mini" }`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRouting {
    /// The agent for task kinds not listed.
    pub default: String,
    /// Task kind → agent name.
    #[serde(default)]
    pub by_kind: BTreeMap<String, String>,
}

impl AgentRouting {
    /// The agent name for a task of `kind` (an unknown kind gets [`Self::default`]).
    pub fn agent_for(&self, kind: &str) -> &str {
        self.by_kind.get(kind).map_or(&self.default, String::as_str)
    }

    /// Agent names that are referenced but not in `known`, for configuration checks.
    pub fn unknown_agents<'a>(&'a self, known: &[&str]) -> Vec<&'a str> {
        let mut out: Vec<&str> = std::iter::once(self.default.as_str())
            .chain(self.by_kind.values().map(String::as_str))
            .filter(|a| !known.contains(a))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The default location of the daily ledger in a project: `<root>/.lightsout/budget.json`.
pub fn default_ledger_path(project_root: &Path) -> PathBuf {
    project_root.join(".lightsout").join("budget.json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::process::Command;
    use time::macros::date;

    fn limits_tokens(t: u64) -> Limits {
        Limits {
            tokens: Some(t),
            ..Limits::default()
        }
    }

    fn exceeded(r: Result<Reservation, FenceError>) -> BudgetExceeded {
        match r {
            Err(FenceError::BudgetExceeded(e)) => e,
            other => panic!("expected a budget stop, got {other:?}"),
        }
    }

    #[test]
    fn attempts_cap_counts_each_retry() {
        let ledger = BudgetLedger::in_memory(BudgetConfig {
            per_task: Limits {
                attempts: Some(2),
                ..Limits::default()
            },
            ..BudgetConfig::default()
        });
        let r1 = ledger.reserve("T1", Spend::tokens(10)).unwrap();
        ledger.settle(r1, Spend::tokens(10)).unwrap();
        let r2 = ledger.reserve("T1", Spend::tokens(10)).unwrap();
        ledger.settle(r2, Spend::tokens(10)).unwrap();
        let e = exceeded(ledger.reserve("T1", Spend::tokens(10)));
        assert_eq!(e.budget, Budget::Attempts);
        assert_eq!(e.scope, Scope::Task("T1".into()));
        assert_eq!((e.limit, e.used), (2, 2));
        // Another task is not affected.
        ledger
            .release(ledger.reserve("T2", Spend::default()).unwrap())
            .unwrap();
        assert_eq!(
            e.to_string(),
            "attempts budget of the task T1 ran out: limit 2, used 2, requested 1"
        );
    }

    #[test]
    fn release_refunds_and_drop_charges_estimate() {
        let ledger = BudgetLedger::in_memory(BudgetConfig {
            per_run: limits_tokens(100),
            ..BudgetConfig::default()
        });
        let r = ledger.reserve("T1", Spend::tokens(60)).unwrap();
        ledger.release(r).unwrap();
        assert_eq!(ledger.run_used(), Spend::default());
        {
            let _dropped = ledger.reserve("T1", Spend::tokens(60)).unwrap();
        }
        assert_eq!(ledger.run_used().tokens, 60);
        assert_eq!(ledger.task_attempts("T1"), 1);
        let stats = ledger.stats();
        assert_eq!((stats.granted, stats.released, stats.dropped), (2, 1, 1));
        assert_eq!(stats.outstanding, 0);
        // 60 used, 60 more would pass the run cap of 100.
        let e = exceeded(ledger.reserve("T2", Spend::tokens(60)));
        assert_eq!(e.scope, Scope::Run);
    }

    #[test]
    fn usd_is_counted_in_micros_and_displayed_in_dollars() {
        let ledger = BudgetLedger::in_memory(BudgetConfig {
            per_task: Limits {
                usd: Some(0.5),
                ..Limits::default()
            },
            ..BudgetConfig::default()
        });
        let r = ledger
            .reserve("T1", Spend::from_report(0, 0, 0.3, 0))
            .unwrap();
        ledger
            .settle(r, Spend::from_report(10, 20, 0.45, 1200))
            .unwrap();
        let e = exceeded(ledger.reserve("T1", Spend::from_report(0, 0, 0.1, 0)));
        assert_eq!(e.budget, Budget::Usd);
        assert_eq!(e.used, 450_000);
        assert!(e.to_string().contains("limit $0.500000"), "{e}");
        assert_eq!(usd_to_micros_ceil(f64::NAN), u64::MAX);
        assert_eq!(usd_to_micros_ceil(0.035 + 0.035), 70_000);
        assert_eq!(usd_to_micros_ceil(0.000_000_1), 1);
        assert_eq!(usd_to_micros_floor(-1.0), 0);
    }

    /// An agent's report enters the ledger through the one conversion: tokens summed, the
    /// cost rounded up to whole micro-USD (garbage fails closed), an unreported cost as 0.
    #[test]
    fn an_agents_usage_enters_the_ledger_rounded_up() {
        let reported = lightsout_agent::Usage {
            input_tokens: 1_000,
            output_tokens: 250,
            cost_usd: Some(0.000_001_5),
            wall_ms: 900,
        };
        assert_eq!(
            Spend::from(&reported),
            Spend {
                tokens: 1_250,
                usd_micros: 2,
                wall_ms: 900,
            }
        );
        let garbage = lightsout_agent::Usage {
            cost_usd: Some(f64::NAN),
            ..reported
        };
        assert_eq!(Spend::from(&garbage).usd_micros, u64::MAX);
        let unreported = lightsout_agent::Usage {
            cost_usd: None,
            ..reported
        };
        assert_eq!(Spend::from(&unreported).usd_micros, 0);
    }

    fn usd(micros: u64) -> Spend {
        Spend {
            usd_micros: micros,
            ..Spend::default()
        }
    }

    #[test]
    fn a_streaming_call_is_covered_while_it_fits_and_stopped_before_the_cap() {
        let ledger = BudgetLedger::in_memory(BudgetConfig {
            per_task: Limits {
                usd: Some(0.10),
                ..Limits::default()
            },
            ..BudgetConfig::default()
        });
        // An earlier call of the task spent $0.03.
        let r = ledger.reserve("T1", usd(10_000)).unwrap();
        ledger.settle(r, usd(30_000)).unwrap();
        let mut r = ledger.reserve("T1", usd(10_000)).unwrap();
        // $0.05 spent, steps of $0.01: $0.03 + $0.06 fits; the reservation grows to $0.06.
        r.cover(usd(50_000), usd(10_000)).unwrap();
        assert_eq!(r.estimate().usd_micros, 60_000);
        assert_eq!(ledger.task_used("T1").usd_micros, 90_000);
        // $0.07 spent: $0.03 + $0.07 + $0.01 would pass $0.10: stop, nothing changes.
        let e = r.cover(usd(70_000), usd(10_000)).unwrap_err();
        assert_eq!(
            (e.budget, e.limit, e.used, e.requested),
            (Budget::Usd, 100_000, 100_000, 10_000)
        );
        assert_eq!(
            e.stopped_at(),
            "stopped at $0.10 of cap $0.10 (usd budget of the task T1)"
        );
        assert_eq!(r.estimate().usd_micros, 60_000);
        // Settled at what it reported: within the cap.
        let s = ledger.settle(r, usd(70_000)).unwrap();
        assert!(s.overruns.is_empty());
        assert_eq!(ledger.task_used("T1").usd_micros, 100_000);
    }

    #[test]
    fn covering_counts_the_other_calls_and_a_grown_reservation_is_charged_when_dropped() {
        let ledger = BudgetLedger::in_memory(BudgetConfig {
            per_run: Limits {
                tokens: Some(1_000),
                ..Limits::default()
            },
            ..BudgetConfig::default()
        });
        let other = ledger.reserve("T2", Spend::tokens(600)).unwrap();
        let mut r = ledger.reserve("T1", Spend::tokens(100)).unwrap();
        r.cover(Spend::tokens(300), Spend::tokens(100)).unwrap();
        assert_eq!(ledger.run_used().tokens, 1_000);
        let e = r.cover(Spend::tokens(350), Spend::tokens(100)).unwrap_err();
        assert_eq!((e.scope, e.used), (Scope::Run, 950));
        drop(r);
        // Dropped unsettled: charged at what it had grown to.
        assert_eq!(ledger.run_used().tokens, 1_000);
        ledger.settle(other, Spend::tokens(10)).unwrap();
        assert_eq!(ledger.run_used().tokens, 410);
        let open = OpenCalls::default();
        assert!(
            open.cover("T9", 1, Spend::tokens(1), Spend::default())
                .is_none()
        );
    }

    #[test]
    fn every_call_reserves_by_default_so_that_all_attempts_fit() {
        let config = BudgetConfig {
            per_task: Limits {
                usd: Some(0.10),
                ..Limits::default()
            },
            per_run: Limits {
                tokens: Some(120_000),
                usd: Some(3.0),
                ..Limits::default()
            },
            ..BudgetConfig::default()
        };
        // Task: $0.10 / 3 attempts; run: $3 / (3 × 2) = $0.50 is looser. Tokens: run only.
        let u = config.call_reservation(60_000, 3, 2);
        assert_eq!(
            u,
            Spend {
                tokens: 20_000,
                usd_micros: 33_333,
                wall_ms: 60_000
            }
        );
        // `[budget.task] attempts` lowers the attempts; `[budget.call]` wins where set.
        let mut c = config;
        c.per_task.attempts = Some(1);
        c.per_call.tokens = Some(5);
        let u = c.call_reservation(60_000, 3, 1);
        assert_eq!((u.tokens, u.usd_micros), (5, 100_000));
        // Nothing capped: nothing reserved but the wall time.
        assert_eq!(
            BudgetConfig::default().call_reservation(1_000, 3, 4),
            Spend {
                wall_ms: 1_000,
                ..Spend::default()
            }
        );
    }

    #[test]
    fn foreign_reservation_is_refused() {
        let a = BudgetLedger::in_memory(BudgetConfig::default());
        let b = BudgetLedger::in_memory(BudgetConfig::default());
        let r = a.reserve("T1", Spend::tokens(5)).unwrap();
        assert!(matches!(
            b.settle(r, Spend::tokens(1)),
            Err(FenceError::ForeignReservation { .. })
        ));
        // The reservation was dropped on its own ledger: charged at its estimate.
        assert_eq!(a.run_used().tokens, 5);
        assert_eq!(a.stats().dropped, 1);
    }

    #[test]
    fn daily_cap_holds_across_runs_and_resets_next_day() {
        let dir = tempfile::tempdir().unwrap();
        let path = default_ledger_path(dir.path());
        let config = BudgetConfig {
            per_day: limits_tokens(1_000),
            ..BudgetConfig::default()
        };
        let run1 = BudgetLedger::open(config, &path)
            .unwrap()
            .with_clock(|| date!(2026 - 11 - 27));
        let r = run1.reserve("T1", Spend::tokens(500)).unwrap();
        run1.settle(r, Spend::tokens(700)).unwrap();
        // A reservation left outstanding by a crashed run stays charged.
        std::mem::forget(run1.reserve("T2", Spend::tokens(200)).unwrap());
        drop(run1);

        let run2 = BudgetLedger::open(config, &path)
            .unwrap()
            .with_clock(|| date!(2026 - 11 - 27));
        assert_eq!(run2.day_used().tokens, 900);
        let e = exceeded(run2.reserve("T9", Spend::tokens(200)));
        assert_eq!(e.scope, Scope::Day("2026-11-27".into()));
        assert_eq!(e.used, 900);
        drop(run2);

        let next_day = BudgetLedger::open(config, &path)
            .unwrap()
            .with_clock(|| date!(2026 - 11 - 28));
        let r = next_day.reserve("T9", Spend::tokens(200)).unwrap();
        next_day.settle(r, Spend::tokens(200)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("2026-11-27") && text.contains("2026-11-28"),
            "{text}"
        );
    }

    #[test]
    fn damaged_ledger_file_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget.json");
        std::fs::write(&path, b"{ not json").unwrap();
        assert!(matches!(
            BudgetLedger::open(BudgetConfig::default(), &path),
            Err(FenceError::Json { .. })
        ));
    }

    #[test]
    fn unwritable_ledger_refuses_the_call() {
        let dir = tempfile::tempdir().unwrap();
        // The ledger path is a directory: the rename over it fails.
        let path = dir.path().join("budget.json");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("x"), b"x").unwrap();
        let ledger = BudgetLedger::in_memory(BudgetConfig::default());
        lock(&ledger.state).path = Some(path);
        assert!(matches!(
            ledger.reserve("T1", Spend::tokens(1)),
            Err(FenceError::Io { .. })
        ));
        assert_eq!(ledger.stats().granted, 0);
        assert_eq!(ledger.run_used(), Spend::default());
    }

    #[test]
    fn routing_sends_low_stakes_kinds_to_cheaper_agents() {
        let routing: AgentRouting = serde_json::from_str(
            r#"{"default":"claude","by_kind":{"docs":"aider-mini","chore":"aider-mini"}}"#,
        )
        .unwrap();
        assert_eq!(routing.agent_for("docs"), "aider-mini");
        assert_eq!(routing.agent_for("feature"), "claude");
        assert_eq!(routing.unknown_agents(&["claude"]), vec!["aider-mini"]);
    }

    #[test]
    fn config_reads_the_documented_keys() {
        let config: BudgetConfig = serde_json::from_str(
            r#"{"task":{"attempts":3,"usd":2.5},"run":{"tokens":200000},"day":{"wall_ms":3600000},
                "call":{"tokens":50000,"usd":0.4}}"#,
        )
        .unwrap();
        assert_eq!(
            config.per_call.usage(600_000),
            Spend {
                tokens: 50_000,
                usd_micros: 400_000,
                wall_ms: 600_000
            }
        );
        assert_eq!(config.per_task.cap(Budget::Usd), Some(2_500_000));
        assert_eq!(config.per_run.cap(Budget::Tokens), Some(200_000));
        assert_eq!(config.per_day.cap(Budget::WallMs), Some(3_600_000));
        assert!(serde_json::from_str::<BudgetConfig>(r#"{"task":{"dollars":1}}"#).is_err());
    }

    /// Misbehaving agent: a real process that reports usage far past its budget.
    #[test]
    fn agent_reporting_usage_past_budget_is_stopped() {
        let ledger = BudgetLedger::in_memory(BudgetConfig {
            per_task: Limits {
                tokens: Some(1_000),
                usd: Some(0.10),
                ..Limits::default()
            },
            ..BudgetConfig::default()
        });
        let r = ledger
            .reserve("T1", Spend::from_report(0, 500, 0.05, 0))
            .unwrap();
        let out = Command::new("sh")
            .args([
                "-c",
                r#"printf '{"input_tokens":4000,"output_tokens":1000,"total_cost_usd":0.75}'"#,
            ])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let actual = Spend::from_report(
            v["input_tokens"].as_u64().unwrap(),
            v["output_tokens"].as_u64().unwrap(),
            v["total_cost_usd"].as_f64().unwrap(),
            0,
        );
        let s = ledger.settle(r, actual).unwrap();
        assert!(s.exceeded_estimate());
        let over: Vec<Budget> = s.overruns.iter().map(|o| o.budget).collect();
        assert_eq!(over, vec![Budget::Tokens, Budget::Usd]);
        assert_eq!(s.overruns[0].used, 5_000);
        // The full usage is charged, and the ledger blocks further calls even at zero cost.
        assert_eq!(ledger.task_used("T1").tokens, 5_000);
        let e = exceeded(ledger.reserve("T1", Spend::default()));
        assert_eq!((e.budget, e.limit, e.used), (Budget::Tokens, 1_000, 5_000));
    }

    #[test]
    fn concurrent_calls_never_pass_the_caps() {
        let ledger = BudgetLedger::in_memory(BudgetConfig {
            per_run: Limits {
                tokens: Some(10_000),
                attempts: Some(50),
                ..Limits::default()
            },
            ..BudgetConfig::default()
        });
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let l = ledger.clone();
                std::thread::spawn(move || {
                    let mut granted = 0u64;
                    for _ in 0..20 {
                        match l.reserve(&format!("T{i}"), Spend::tokens(300)) {
                            Ok(r) => {
                                assert!(l.run_used().tokens <= 10_000);
                                granted += 1;
                                l.settle(r, Spend::tokens(250)).unwrap();
                            }
                            Err(FenceError::BudgetExceeded(_)) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                    granted
                })
            })
            .collect();
        let granted: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(granted <= 39, "{granted}");
        assert_eq!(ledger.run_used().tokens, 250 * granted);
        let s = ledger.stats();
        assert_eq!((s.granted, s.settled, s.outstanding), (granted, granted, 0));
        assert_eq!(s.granted + s.refused, 160);
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Reserve for task `task` with `estimate` tokens, then do `end` with `actual`.
        Call {
            task: u8,
            estimate: u64,
            usd_estimate: u64,
            actual: u64,
            usd_actual: u64,
            end: End,
        },
    }

    #[derive(Debug, Clone, Copy)]
    enum End {
        Settle,
        Release,
        Drop,
        /// Hold it until the end of the script, then settle.
        Hold,
    }

    fn op() -> impl Strategy<Value = Op> {
        (
            0u8..4,
            0u64..400,
            0u64..300_000,
            0u64..600,
            0u64..400_000,
            prop_oneof![
                6 => Just(End::Settle),
                1 => Just(End::Release),
                1 => Just(End::Drop),
                2 => Just(End::Hold)
            ],
        )
            .prop_map(
                |(task, estimate, usd_estimate, actual, usd_actual, end)| Op::Call {
                    task,
                    estimate,
                    usd_estimate,
                    actual,
                    usd_actual,
                    end,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// The sum of settled costs equals the sum of the reported usage (plus the estimates
        /// of dropped reservations, which is what they are charged); no call starts without a
        /// reservation; caps are never passed by settled + reserved while every call stays
        /// within its estimate, and are refused from the first overrun on.
        #[test]
        fn accounting_is_exact_and_caps_hold(ops in proptest::collection::vec(op(), 1..60),
                                             task_cap in 200u64..2_000,
                                             run_cap in 500u64..5_000,
                                             attempts_cap in 1u64..6) {
            let config = BudgetConfig {
                per_task: Limits { attempts: Some(attempts_cap), tokens: Some(task_cap), ..Limits::default() },
                per_run: Limits { tokens: Some(run_cap), usd: Some(2.0), ..Limits::default() },
                per_day: Limits::default(),
                per_call: CallEstimate::default(),
            };
            let ledger = BudgetLedger::in_memory(config);
            let mut reported = Spend::default();
            let mut started = 0u64;
            let mut held = Vec::new();
            let mut overrun_seen = false;
            for Op::Call { task, estimate, usd_estimate, actual, usd_actual, end } in ops {
                let task = format!("T{task}");
                let est = Spend { tokens: estimate, usd_micros: usd_estimate, wall_ms: 0 };
                let before = ledger.stats();
                let Ok(r) = ledger.reserve(&task, est) else {
                    // Refused: nothing was reserved and no call may start.
                    prop_assert_eq!(ledger.stats().granted, before.granted);
                    continue;
                };
                // The "agent call" happens only here, holding the reservation.
                started += 1;
                prop_assert_eq!(ledger.stats().outstanding, before.outstanding + 1);
                if !overrun_seen {
                    let run = ledger.run_used();
                    prop_assert!(run.tokens <= run_cap);
                    prop_assert!(run.usd_micros <= 2_000_000);
                    prop_assert!(ledger.task_used(&task).tokens <= task_cap);
                    prop_assert!(ledger.task_attempts(&task) <= attempts_cap);
                }
                let act = Spend { tokens: actual, usd_micros: usd_actual, wall_ms: 0 };
                match end {
                    End::Settle => {
                        reported = reported.saturating_add(act);
                        let s = ledger.settle(r, act).unwrap();
                        prop_assert_eq!(s.charged, act);
                        if !s.overruns.is_empty() {
                            overrun_seen = true;
                            for o in &s.overruns {
                                let blocked = match &o.scope {
                                    Scope::Task(t) => ledger.reserve(t, Spend::default()),
                                    _ => ledger.reserve("fresh", Spend::default()),
                                };
                                prop_assert!(matches!(blocked, Err(FenceError::BudgetExceeded(_))));
                            }
                        }
                    }
                    End::Release => ledger.release(r).unwrap(),
                    End::Drop => {
                        reported = reported.saturating_add(est);
                        drop(r);
                    }
                    End::Hold => held.push((r, act)),
                }
            }
            for (r, act) in held {
                reported = reported.saturating_add(act);
                ledger.settle(r, act).unwrap();
            }
            let stats = ledger.stats();
            prop_assert_eq!(stats.granted, started);
            prop_assert_eq!(stats.outstanding, 0);
            prop_assert_eq!(stats.granted, stats.settled + stats.released + stats.dropped);
            prop_assert_eq!(stats.charged, reported);
            // Every unit charged is in the run account, and in exactly one task account.
            prop_assert_eq!(ledger.run_used(), reported);
            let per_task = (0..4).map(|t| ledger.task_used(&format!("T{t}")))
                .fold(Spend::default(), Spend::saturating_add);
            prop_assert_eq!(per_task, reported);
        }
    }
}
