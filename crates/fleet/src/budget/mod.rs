//! The fleet's shared day budget: one ledger per UTC day of the four day caps of
//! `[budget.day]` (agent calls, wall milliseconds, tokens and micro-USD, all integers; 1 USD =
//! 1,000,000 micro-USD), against caps every worker checks in the same store.
//!
//! Before an agent call a worker [`BudgetStore::reserve`]s what the call may use at most (one
//! attempt plus its estimates, [`DayAmounts`]); the store grants it only if, for every cap
//! that is set ([`DayCaps`]), the day's spent plus every unsettled reservation plus the new
//! amount stays within the cap, atomically (one transaction that holds the day's lock: `BEGIN
//! IMMEDIATE` on `SQLite`, the day's row `FOR UPDATE` on Postgres, so concurrent reservers check
//! one after another). A refusal names the first cap it would pass ([`DayExceeded`], caps
//! checked attempts → wall time → tokens → USD) with the day's ledger as the refusing
//! transaction saw it. After the call the worker [`BudgetStore::settle`]s the reservation with
//! what the call really used: the reservation's amounts stop counting and the actual amounts
//! join `spent` (all of them, even past a cap: what is spent is spent; the cap stops the *next*
//! reservation). [`BudgetStore::release`] settles at zero.
//!
//! # A lost claim's reservation is presumed spent
//! A reservation may be tied to the claim of the task it was made for ([`ClaimKey`]: run,
//! task and fencing token, of the claim store in the same database). While it is unsettled
//! and that claim is live (the task is still claimed under that token and its lease has not
//! lapsed by the store's clock, the rule every fenced write of a claim obeys: `claims`' module
//! docs) it is *held* ([`DayLedger::reserved`]). Once the claim is no longer live (the task
//! was claimed again under a greater token, or settled, or its lease lapsed) an unsettled
//! reservation is *presumed spent* at its reserved amounts, for the rest of its day
//! ([`DayLedger::presumed_spent`], [`DayLedger::lost`]). Its worker was killed or cut off
//! mid-call, and nobody is left to settle it; what the call spent before it died is unknown,
//! and its reservation is the upper bound the store has (the fence stops a call before its
//! spend passes what it reserved; only a call that outran its estimate can have spent more: a
//! streaming call, covered while it runs by the task and run caps but not the day's, or one
//! that reports its spend only when it ends). Dropping the reservation would let the day pass
//! its caps by what killed calls spent: the budget fails closed instead.
//!
//! So the caps are checked against the day's settled amounts plus every unsettled
//! reservation, held or presumed spent ([`DayLedger::committed`]); the claims only decide
//! which of the two an unsettled reservation is reported as, when the ledger is summed (no
//! sweeper):
//! - A claim that ends moves its reservations from held to presumed spent at the same amounts,
//!   so the sum a reserver checks under the day's lock changes only by reservations and
//!   settlements, which take that lock too: 16 reservers at once never pass a cap.
//! - A late settlement of a presumed-spent reservation (its worker was cut off, not killed)
//!   records what the call used in `spent`, in place of the presumed amounts.
//! - A reservation can be tied only to a claim that is live in this store when it is made
//!   ([`Error::Stale`] otherwise): a worker whose claim has ended starts no call, and a claim
//!   kept in another store fails loudly instead of looking lost from the start.
//!
//! A reservation with no claim ([`ClaimKey`] `None`) is held until it is settled.
//!
//! Every call is idempotent, so a call retried after a lost reply (the Postgres backend retries
//! lost connections) counts once: a reservation is named by the caller ([`Reservation::id`],
//! say `run/task/attempt`), reserving a known id returns it as it was granted, and settling a
//! settled reservation changes nothing.
//!
//! [`SqliteBudget`] (one machine, `.lightsout/state.db`) and `PgBudget` (feature `postgres`)
//! implement [`BudgetStore`]; one test suite runs against both. Opening either also brings the
//! claims schema of the same database up to date, since the ledger reads the claims.

#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::PgBudget;
pub use sqlite::SqliteBudget;

use crate::Error;
use std::fmt;

/// One of the four day caps, in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayCap {
    /// Agent calls (each call reserves one).
    Attempts,
    /// Wall-clock milliseconds of agent calls.
    WallMs,
    /// Input plus output tokens.
    Tokens,
    /// Cost in micro-USD.
    Usd,
}

impl DayCap {
    /// Every cap, in the order [`DayLedger::check`] checks them.
    pub const ALL: [Self; 4] = [Self::Attempts, Self::WallMs, Self::Tokens, Self::Usd];

    /// `value` in this cap's unit: `3` (attempts), `1200 ms`, `5000 tokens`, `$0.250000`.
    pub fn render(self, value: u64) -> String {
        match self {
            Self::Attempts => format!("{value}"),
            Self::WallMs => format!("{value} ms"),
            Self::Tokens => format!("{value} tokens"),
            Self::Usd => format!("${}.{:06}", value / 1_000_000, value % 1_000_000),
        }
    }
}

impl fmt::Display for DayCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Attempts => "attempts",
            Self::WallMs => "wall time",
            Self::Tokens => "tokens",
            Self::Usd => "usd",
        })
    }
}

/// Amounts of the four day budgets: what a call reserves or used, or a day's sum. Integer
/// units: calls, milliseconds, tokens (input plus output), micro-USD. Sums saturate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct DayAmounts {
    /// Agent calls: 1 for a call, 0 for a released reservation.
    pub attempts: u64,
    /// Wall-clock milliseconds.
    pub wall_ms: u64,
    /// Input plus output tokens.
    pub tokens: u64,
    /// Cost in micro-USD.
    pub micro_usd: u64,
}

impl DayAmounts {
    /// Nothing: what a released reservation used.
    pub const ZERO: Self = Self {
        attempts: 0,
        wall_ms: 0,
        tokens: 0,
        micro_usd: 0,
    };

    /// The amount counted against `cap`.
    pub fn get(&self, cap: DayCap) -> u64 {
        match cap {
            DayCap::Attempts => self.attempts,
            DayCap::WallMs => self.wall_ms,
            DayCap::Tokens => self.tokens,
            DayCap::Usd => self.micro_usd,
        }
    }

    /// Component-wise saturating sum.
    #[must_use]
    pub fn saturating_add(self, other: Self) -> Self {
        Self {
            attempts: self.attempts.saturating_add(other.attempts),
            wall_ms: self.wall_ms.saturating_add(other.wall_ms),
            tokens: self.tokens.saturating_add(other.tokens),
            micro_usd: self.micro_usd.saturating_add(other.micro_usd),
        }
    }
}

/// `attempts 2, wall time 1200 ms, tokens 5000, usd $0.250000`.
impl fmt::Display for DayAmounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = DayCap::ALL
            .iter()
            .map(|c| {
                let v = match c {
                    DayCap::Tokens => self.tokens.to_string(),
                    other => other.render(self.get(*other)),
                };
                format!("{c} {v}")
            })
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// The day caps of `[budget.day]`, in the units of [`DayAmounts`]; `None` is no cap, `Some(0)`
/// allows nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct DayCaps {
    /// Agent calls a day.
    pub attempts: Option<u64>,
    /// Wall-clock milliseconds a day.
    pub wall_ms: Option<u64>,
    /// Tokens a day.
    pub tokens: Option<u64>,
    /// Micro-USD a day.
    pub micro_usd: Option<u64>,
}

impl DayCaps {
    /// The cap on `cap`, if set.
    pub fn get(&self, cap: DayCap) -> Option<u64> {
        match cap {
            DayCap::Attempts => self.attempts,
            DayCap::WallMs => self.wall_ms,
            DayCap::Tokens => self.tokens,
            DayCap::Usd => self.micro_usd,
        }
    }

    /// Whether no cap is set (then the shared store has nothing to count).
    pub fn is_empty(&self) -> bool {
        DayCap::ALL.iter().all(|c| self.get(*c).is_none())
    }
}

/// The claim a reservation is tied to: the task `task` of the fleet run `run` claimed under
/// the fencing token `token` (a [`crate::claims::Claim`] of the claim store in the same
/// database). The reservation is held while that claim is live, and presumed spent once it is
/// not ([module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ClaimKey {
    /// The fleet run.
    pub run: String,
    /// The task.
    pub task: String,
    /// The claim's fencing token.
    pub token: u64,
}

impl From<&crate::claims::Claim> for ClaimKey {
    fn from(c: &crate::claims::Claim) -> Self {
        Self {
            run: c.run.clone(),
            task: c.task.clone(),
            token: c.token,
        }
    }
}

/// A grant of part of one day's budget ([`BudgetStore::reserve`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reservation {
    /// The caller's name for it, unique in the store (`run/task/attempt`).
    pub id: String,
    /// The UTC day it counts against (`YYYY-MM-DD`, [`utc_day`]).
    pub day: String,
    /// The amounts reserved.
    pub amounts: DayAmounts,
    /// The claim it is tied to, if any: held while that claim is live, presumed spent (until
    /// settled) once it is not.
    pub claim: Option<ClaimKey>,
}

/// A cap a reservation would pass, or that a day's committed amounts have passed. `limit`,
/// `used` and `requested` are in the cap's unit ([`DayAmounts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DayExceeded {
    /// Which cap.
    pub cap: DayCap,
    /// The cap's value.
    pub limit: u64,
    /// Spent, held and presumed spent ([`DayLedger::committed`]), before the request.
    pub used: u64,
    /// What was asked for (0 for an overrun found after a settlement).
    pub requested: u64,
}

impl fmt::Display for DayExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the fleet's {} cap of the day ran out: limit {}, used {}",
            self.cap,
            self.cap.render(self.limit),
            self.cap.render(self.used)
        )?;
        if self.requested > 0 {
            write!(f, ", requested {}", self.cap.render(self.requested))?;
        }
        Ok(())
    }
}

/// One day's ledger, in the units of [`DayAmounts`]. Every amount in it counts against the
/// caps ([`DayLedger::committed`]); the fields say why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct DayLedger {
    /// Settled: what calls reported they used.
    pub spent: DayAmounts,
    /// Held: reserved by unsettled reservations whose claim is live (or that have none).
    pub reserved: DayAmounts,
    /// How many reservations are held.
    pub open: u64,
    /// Presumed spent: reserved by unsettled reservations whose claim is no longer live (a
    /// worker killed or cut off mid-call), counted at their reserved amounts, the most those
    /// calls could have spent, until a late settlement replaces them by what was used.
    pub presumed_spent: DayAmounts,
    /// How many reservations are presumed spent (their claims were lost before they settled).
    pub lost: u64,
}

impl DayLedger {
    /// Spent, held and presumed spent: what the caps are checked against.
    pub fn committed(&self) -> DayAmounts {
        self.spent
            .saturating_add(self.reserved)
            .saturating_add(self.presumed_spent)
    }

    /// The first cap (in [`DayCap::ALL`] order) that reserving `amounts` would pass, or that
    /// is used up already (fail closed: an exhausted cap refuses even a zero request); `None`
    /// when every cap that is set allows it.
    pub fn check(&self, caps: &DayCaps, amounts: &DayAmounts) -> Option<DayExceeded> {
        let committed = self.committed();
        DayCap::ALL.into_iter().find_map(|cap| {
            let limit = caps.get(cap)?;
            let (used, requested) = (committed.get(cap), amounts.get(cap));
            (used >= limit || used.saturating_add(requested) > limit).then_some(DayExceeded {
                cap,
                limit,
                used,
                requested,
            })
        })
    }

    /// Every cap the committed amounts have passed (after a settlement past a reservation).
    pub fn overruns(&self, caps: &DayCaps) -> Vec<DayExceeded> {
        let committed = self.committed();
        DayCap::ALL
            .into_iter()
            .filter_map(|cap| {
                let limit = caps.get(cap)?;
                let used = committed.get(cap);
                (used > limit).then_some(DayExceeded {
                    cap,
                    limit,
                    used,
                    requested: 0,
                })
            })
            .collect()
    }
}

impl fmt::Display for DayLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spent ({}); open calls {}, holding ({})",
            self.spent, self.open, self.reserved
        )?;
        if self.lost > 0 {
            write!(
                f,
                "; presumed spent by {} lost claim{} ({})",
                self.lost,
                if self.lost == 1 { "" } else { "s" },
                self.presumed_spent
            )?;
        }
        Ok(())
    }
}

/// What [`BudgetStore::reserve`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayGrant {
    /// Reserved: settle it after the call.
    Granted(Reservation),
    /// A cap would be passed: nothing reserved.
    Refused {
        /// The UTC day.
        day: String,
        /// The first cap it would pass.
        exceeded: DayExceeded,
        /// The day's ledger as the refusing transaction saw it.
        ledger: DayLedger,
    },
}

/// The shared day budget ([module docs](self)). Each method is one transaction.
pub trait BudgetStore: Send + Sync {
    /// Reserves `amounts` of `day`'s budget as `id`, tied to `claim` when given, if
    /// [`DayLedger::check`] of the day's ledger allows it under `caps`; else
    /// [`DayGrant::Refused`] (nothing reserved) with the cap and the ledger. A known `id` is
    /// returned as it was granted, whatever the ledger says now.
    ///
    /// # Errors
    /// [`Error::Stale`] when `claim` is not live in this store (nothing reserved); the store
    /// cannot be written.
    fn reserve(
        &self,
        day: &str,
        id: &str,
        claim: Option<&ClaimKey>,
        amounts: DayAmounts,
        caps: &DayCaps,
    ) -> Result<DayGrant, Error>;

    /// Settles `reservation` with what it really used (`actual`, which may exceed the
    /// reservation); returns the day's ledger after it. Settling a settled reservation
    /// changes nothing (the first settlement stands). A presumed-spent reservation (its claim
    /// lost) may be settled too: what it used is spent, in place of the presumed amounts.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the store holds no reservation of that id; the store cannot
    /// be written.
    fn settle(&self, reservation: &Reservation, actual: DayAmounts) -> Result<DayLedger, Error>;

    /// `day`'s ledger (zeros for a day with no reservation), unsettled reservations reported
    /// as held or presumed spent by the claims as they stand now.
    ///
    /// # Errors
    /// The store cannot be read.
    fn ledger(&self, day: &str) -> Result<DayLedger, Error>;

    /// [`BudgetStore::settle`] at [`DayAmounts::ZERO`]: the call did not run.
    ///
    /// # Errors
    /// As [`BudgetStore::settle`].
    fn release(&self, reservation: &Reservation) -> Result<DayLedger, Error> {
        self.settle(reservation, DayAmounts::ZERO)
    }
}

/// One worker's share of the fleet's day budget: the `[budget.day]` caps, checked in the shared
/// store (which every worker's reservations count against) rather than on one machine.
/// Reservations are named `<prefix>/<task>/<attempt>` (the prefix unique per run, so a retry
/// of the same call counts once and two runs never share a name), count against today's UTC
/// day ([`utc_day`]), and are tied to the worker's claim when [`SharedDay::held_by`] names it.
#[derive(Clone)]
pub struct SharedDay {
    store: std::sync::Arc<dyn BudgetStore>,
    caps: DayCaps,
    prefix: String,
    claim: Option<ClaimKey>,
}

impl fmt::Debug for SharedDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedDay")
            .field("caps", &self.caps)
            .field("prefix", &self.prefix)
            .field("claim", &self.claim)
            .finish_non_exhaustive()
    }
}

impl SharedDay {
    /// A share of `store`'s day budget with the day caps `caps`, naming its reservations
    /// `<prefix>/…`, tied to no claim.
    pub fn new(
        store: std::sync::Arc<dyn BudgetStore>,
        caps: DayCaps,
        prefix: impl Into<String>,
    ) -> Self {
        Self {
            store,
            caps,
            prefix: prefix.into(),
            claim: None,
        }
    }

    /// Ties every reservation to `claim` (the claim the worker builds its task under): each is
    /// held while that claim is live, and presumed spent, unless settled, once it is not.
    #[must_use]
    pub fn held_by(mut self, claim: ClaimKey) -> Self {
        self.claim = Some(claim);
        self
    }

    /// The caps.
    pub fn caps(&self) -> &DayCaps {
        &self.caps
    }

    /// Reserves `amounts` of today for attempt `attempt` of `task`.
    ///
    /// # Errors
    /// As [`BudgetStore::reserve`].
    pub fn reserve(
        &self,
        task: &str,
        attempt: u32,
        amounts: DayAmounts,
    ) -> Result<DayGrant, Error> {
        let id = format!("{}/{task}/{attempt}", self.prefix);
        self.store
            .reserve(&utc_day(), &id, self.claim.as_ref(), amounts, &self.caps)
    }

    /// Settles `reservation` with what the call used; the day's ledger after it.
    ///
    /// # Errors
    /// As [`BudgetStore::settle`].
    pub fn settle(
        &self,
        reservation: &Reservation,
        actual: DayAmounts,
    ) -> Result<DayLedger, Error> {
        self.store.settle(reservation, actual)
    }
}

/// Today's UTC day, `YYYY-MM-DD`: the key of the day a cap applies to.
pub fn utc_day() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}

/// `v` as a stored integer (amounts past `i64::MAX` are clamped).
pub(crate) fn stored(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored integer as an amount (a negative one, which the schema does not allow, as 0).
pub(crate) fn amount(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// One unsettled reservation of a day as the ledger query reads it: whether it is held (its
/// claim is live, or it has none) or presumed spent, and its amounts.
pub(crate) struct Unsettled {
    pub(crate) live: bool,
    pub(crate) amounts: DayAmounts,
}

/// The day's ledger from its settled amounts and its unsettled reservations (every one counts,
/// held or presumed spent).
pub(crate) fn sum(spent: DayAmounts, unsettled: impl IntoIterator<Item = Unsettled>) -> DayLedger {
    let mut l = DayLedger {
        spent,
        ..DayLedger::default()
    };
    for u in unsettled {
        let (amounts, count) = if u.live {
            (&mut l.reserved, &mut l.open)
        } else {
            (&mut l.presumed_spent, &mut l.lost)
        };
        *amounts = amounts.saturating_add(u.amounts);
        *count += 1;
    }
    l
}

pub(crate) fn unknown(store: &str, id: &str) -> Error {
    Error::Corrupt {
        store: store.to_owned(),
        message: format!("no budget reservation `{id}` to settle"),
    }
}

pub(crate) fn stale_claim(claim: &ClaimKey) -> Error {
    Error::Stale {
        run: claim.run.clone(),
        task: claim.task.clone(),
        token: claim.token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(micro_usd: u64) -> DayAmounts {
        DayAmounts {
            attempts: 1,
            micro_usd,
            ..DayAmounts::ZERO
        }
    }

    #[test]
    fn a_shared_day_reserves_within_the_caps_and_settles_what_was_spent() {
        let dir = tempfile::tempdir().unwrap();
        let store: std::sync::Arc<dyn BudgetStore> =
            std::sync::Arc::new(SqliteBudget::open(&dir.path().join("b.db")).unwrap());
        let caps = DayCaps {
            micro_usd: Some(1_000_000),
            attempts: Some(3),
            ..DayCaps::default()
        };
        let a = SharedDay::new(store.clone(), caps, "run-a");
        let b = SharedDay::new(store, caps, "run-b");
        let DayGrant::Granted(ra) = a.reserve("T1", 1, usd(600_000)).unwrap() else {
            panic!("within the caps")
        };
        // b's worker sees a's reservation: 600k + 500k would pass the day's 1M.
        let DayGrant::Refused {
            exceeded, ledger, ..
        } = b.reserve("T2", 1, usd(500_000)).unwrap()
        else {
            panic!("over the cap")
        };
        assert_eq!(exceeded.cap, DayCap::Usd);
        assert_eq!((ledger.reserved, ledger.open), (usd(600_000), 1));
        let after = a.settle(&ra, usd(250_000)).unwrap();
        assert_eq!(
            (after.spent, after.reserved),
            (usd(250_000), DayAmounts::ZERO)
        );
        assert!(matches!(
            b.reserve("T2", 1, usd(500_000)).unwrap(),
            DayGrant::Granted(_)
        ));
    }

    #[test]
    fn the_check_names_the_first_cap_passed_and_fails_closed() {
        let caps = DayCaps {
            attempts: Some(2),
            tokens: Some(100),
            ..DayCaps::default()
        };
        let l = DayLedger {
            spent: DayAmounts {
                attempts: 1,
                tokens: 60,
                ..DayAmounts::ZERO
            },
            ..DayLedger::default()
        };
        let call = |tokens| DayAmounts {
            attempts: 1,
            tokens,
            wall_ms: u64::MAX,
            micro_usd: u64::MAX,
        };
        assert_eq!(l.check(&caps, &call(40)), None, "uncapped wall and USD");
        let e = l.check(&caps, &call(41)).unwrap();
        assert_eq!(
            (e.cap, e.limit, e.used, e.requested),
            (DayCap::Tokens, 100, 60, 41)
        );
        let full = DayLedger {
            spent: DayAmounts {
                attempts: 2,
                tokens: 100,
                ..DayAmounts::ZERO
            },
            ..DayLedger::default()
        };
        let e = full.check(&caps, &DayAmounts::ZERO).unwrap();
        assert_eq!(
            e.cap,
            DayCap::Attempts,
            "an exhausted cap refuses even nothing"
        );
        assert!(e.to_string().contains("attempts cap"), "{e}");
        assert_eq!(full.overruns(&caps), vec![]);
    }

    /// What lost claims' reservations are presumed to have spent counts against the caps beside
    /// what is spent and held, and the ledger says it apart, with its units.
    #[test]
    fn presumed_spent_counts_against_the_caps_and_is_named() {
        let caps = DayCaps {
            micro_usd: Some(1_000_000),
            ..DayCaps::default()
        };
        let l = sum(
            usd(100_000),
            [
                Unsettled {
                    live: true,
                    amounts: usd(200_000),
                },
                Unsettled {
                    live: false,
                    amounts: usd(600_000),
                },
            ],
        );
        assert_eq!(
            (l.reserved, l.open, l.presumed_spent, l.lost),
            (usd(200_000), 1, usd(600_000), 1)
        );
        assert_eq!(
            l.committed(),
            DayAmounts {
                attempts: 3,
                micro_usd: 900_000,
                ..DayAmounts::ZERO
            }
        );
        assert_eq!(l.check(&caps, &usd(100_000)), None);
        let e = l.check(&caps, &usd(100_001)).unwrap();
        assert_eq!((e.cap, e.used), (DayCap::Usd, 900_000));
        assert!(
            l.to_string().ends_with(
                "presumed spent by 1 lost claim (attempts 1, wall time 0 ms, tokens 0, \
                 usd $0.600000)"
            ),
            "{l}"
        );
    }
}
