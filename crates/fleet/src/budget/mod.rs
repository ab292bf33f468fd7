//! The fleet's shared day budget: a ledger of US dollars, in integer micro-USD (1 USD =
//! 1,000,000), per UTC day, against a cap every worker checks in the same store.
//!
//! Before an attempt a worker [`BudgetStore::reserve`]s what the attempt may cost at most;
//! the store grants it only if the day's spent plus reserved plus the new reservation stays
//! within the cap, atomically (one transaction; on Postgres a conditional `UPDATE` of the
//! day's row, whose row lock serialises concurrent reservers). After the attempt the worker
//! [`BudgetStore::settle`]s the reservation with what the attempt really cost: the reservation
//! leaves `reserved`, the cost joins `spent` (all of it, even past the cap: money spent is
//! spent; the cap stops the *next* reservation). [`BudgetStore::release`] settles at 0.
//!
//! Every call is idempotent, so a call retried after a lost reply (the Postgres backend
//! retries lost connections) counts once: a reservation is named by the caller
//! ([`Reservation::id`], say `run/task/attempt`), reserving a known id returns it as it was
//! granted, and settling a settled reservation changes nothing.
//!
//! [`SqliteBudget`] (one machine, `.lightsout/state.db`) and `PgBudget` (feature `postgres`)
//! implement [`BudgetStore`]; one test suite runs against both.
//!
//! A worker that dies between reserve and settle leaves its reservation held until the day
//! ends (the ledger errs on the side of the cap); [`DayLedger::open`] counts them.

#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::PgBudget;
pub use sqlite::SqliteBudget;

use crate::Error;

/// A grant of part of one day's budget ([`BudgetStore::reserve`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reservation {
    /// The caller's name for it, unique in the store (`run/task/attempt`).
    pub id: String,
    /// The UTC day it counts against (`YYYY-MM-DD`, [`utc_day`]).
    pub day: String,
    /// The amount reserved, in micro-USD.
    pub micro_usd: u64,
}

/// One day's ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct DayLedger {
    /// Settled cost, in micro-USD.
    pub spent_micro_usd: u64,
    /// Reserved and not yet settled, in micro-USD.
    pub reserved_micro_usd: u64,
    /// How many reservations are not yet settled.
    pub open: u64,
}

impl DayLedger {
    /// Spent plus reserved: what the cap is checked against.
    pub fn committed_micro_usd(&self) -> u64 {
        self.spent_micro_usd.saturating_add(self.reserved_micro_usd)
    }
}

/// The shared day budget ([module docs](self)). Each method is one transaction.
pub trait BudgetStore: Send + Sync {
    /// Reserves `micro_usd` of `day`'s budget as `id`, if the day's spent + reserved +
    /// `micro_usd` stays within `cap_micro_usd`; `None` (nothing reserved) otherwise. A known
    /// `id` is returned as it was granted, whatever the ledger says now.
    ///
    /// # Errors
    /// The store cannot be written.
    fn reserve(
        &self,
        day: &str,
        id: &str,
        micro_usd: u64,
        cap_micro_usd: u64,
    ) -> Result<Option<Reservation>, Error>;

    /// Settles `reservation` with what it really cost (`actual_micro_usd`, which may exceed
    /// the reservation); returns the day's ledger after it. Settling a settled reservation
    /// changes nothing (the first settlement stands).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the store holds no reservation of that id; the store cannot
    /// be written.
    fn settle(&self, reservation: &Reservation, actual_micro_usd: u64) -> Result<DayLedger, Error>;

    /// `day`'s ledger (zeros for a day with no reservation).
    ///
    /// # Errors
    /// The store cannot be read.
    fn ledger(&self, day: &str) -> Result<DayLedger, Error>;

    /// [`BudgetStore::settle`] at 0: the attempt did not run, or cost nothing.
    ///
    /// # Errors
    /// As [`BudgetStore::settle`].
    fn release(&self, reservation: &Reservation) -> Result<DayLedger, Error> {
        self.settle(reservation, 0)
    }
}

/// One worker's share of the fleet's day budget: the `[budget.day] usd` cap, checked in the
/// shared store (which every worker's reservations count against) rather than on one machine.
/// Reservations are named `<prefix>/<task>/<attempt>` (the prefix unique per run, so a retry
/// of the same call counts once and two runs never share a name) and count against today's
/// UTC day ([`utc_day`]).
#[derive(Clone)]
pub struct SharedDay {
    store: std::sync::Arc<dyn BudgetStore>,
    cap_micro_usd: u64,
    prefix: String,
}

impl std::fmt::Debug for SharedDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedDay")
            .field("cap_micro_usd", &self.cap_micro_usd)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What [`SharedDay::reserve`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayGrant {
    /// Reserved: settle it after the call.
    Granted(Reservation),
    /// The day's spent + reserved + the amount would pass the cap: nothing reserved. The day
    /// and its ledger as read just after the refusal.
    Refused {
        /// The UTC day.
        day: String,
        /// Its ledger.
        ledger: DayLedger,
    },
}

impl SharedDay {
    /// A share of `store`'s day budget with a cap of `cap_micro_usd` a day, naming its
    /// reservations `<prefix>/…`.
    pub fn new(
        store: std::sync::Arc<dyn BudgetStore>,
        cap_micro_usd: u64,
        prefix: impl Into<String>,
    ) -> Self {
        Self {
            store,
            cap_micro_usd,
            prefix: prefix.into(),
        }
    }

    /// The cap, in micro-USD a day.
    pub fn cap_micro_usd(&self) -> u64 {
        self.cap_micro_usd
    }

    /// Reserves `micro_usd` of today for attempt `attempt` of `task`.
    ///
    /// # Errors
    /// The store cannot be written or read.
    pub fn reserve(&self, task: &str, attempt: u32, micro_usd: u64) -> Result<DayGrant, Error> {
        let day = utc_day();
        let id = format!("{}/{task}/{attempt}", self.prefix);
        if let Some(r) = self
            .store
            .reserve(&day, &id, micro_usd, self.cap_micro_usd)?
        {
            return Ok(DayGrant::Granted(r));
        }
        let ledger = self.store.ledger(&day)?;
        Ok(DayGrant::Refused { day, ledger })
    }

    /// Settles `reservation` with what the call cost; the day's ledger after it.
    ///
    /// # Errors
    /// As [`BudgetStore::settle`].
    pub fn settle(&self, reservation: &Reservation, micro_usd: u64) -> Result<DayLedger, Error> {
        self.store.settle(reservation, micro_usd)
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

/// `v` as a stored integer (micro-USD amounts past `i64::MAX`, some nine trillion USD, are
/// clamped).
pub(crate) fn stored(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn unknown(store: &str, id: &str) -> Error {
    Error::Corrupt {
        store: store.to_owned(),
        message: format!("no budget reservation `{id}` to settle"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_day_reserves_within_the_cap_and_settles_what_was_spent() {
        let dir = tempfile::tempdir().unwrap();
        let store: std::sync::Arc<dyn BudgetStore> =
            std::sync::Arc::new(SqliteBudget::open(&dir.path().join("b.db")).unwrap());
        let a = SharedDay::new(store.clone(), 1_000_000, "run-a");
        let b = SharedDay::new(store, 1_000_000, "run-b");
        let DayGrant::Granted(ra) = a.reserve("T1", 1, 600_000).unwrap() else {
            panic!("within the cap")
        };
        // b's worker sees a's reservation: 600k + 500k would pass the day's 1M.
        let DayGrant::Refused { ledger, .. } = b.reserve("T2", 1, 500_000).unwrap() else {
            panic!("over the cap")
        };
        assert_eq!(ledger.reserved_micro_usd, 600_000);
        let after = a.settle(&ra, 250_000).unwrap();
        assert_eq!(
            (after.spent_micro_usd, after.reserved_micro_usd),
            (250_000, 0)
        );
        assert!(matches!(
            b.reserve("T2", 1, 500_000).unwrap(),
            DayGrant::Granted(_)
        ));
    }
}
