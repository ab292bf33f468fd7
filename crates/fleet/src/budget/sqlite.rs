//! [`SqliteBudget`]: the [`BudgetStore`] in a `SQLite` file, for one machine. Each call is one
//! `BEGIN IMMEDIATE` transaction (`SQLite` has one writer at a time, so the cap check and the
//! reservation cannot interleave with another's).

use super::{BudgetStore, DayLedger, Reservation, stored, unknown};
use crate::Error;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const MIGRATIONS: &[&str] = &[
    // 1: days and reservations.
    r"
    CREATE TABLE budget_days (
        day TEXT PRIMARY KEY,
        spent INTEGER NOT NULL DEFAULT 0,
        reserved INTEGER NOT NULL DEFAULT 0,
        open INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE budget_reservations (
        id TEXT PRIMARY KEY,
        day TEXT NOT NULL,
        amount INTEGER NOT NULL,
        actual INTEGER
    );
    ",
];

/// The day budget in a `SQLite` file, normally `.lightsout/state.db`.
#[derive(Debug)]
pub struct SqliteBudget {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteBudget {
    /// Opens (creating it and its parent directory when missing) the store at `path` and
    /// brings its budget schema up to date.
    ///
    /// # Errors
    /// The file cannot be created or opened, or its budget schema is newer than this version.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let err = |source| Error::Sqlite {
            path: path.to_owned(),
            source,
        };
        let mut conn = crate::sqlite::open(path).map_err(err)?;
        crate::sqlite::migrate(&mut conn, path, "budget", MIGRATIONS)?;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        |source| Error::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}

fn ledger(conn: &Connection, day: &str) -> rusqlite::Result<DayLedger> {
    Ok(conn
        .query_row(
            "SELECT spent, reserved, open FROM budget_days WHERE day = ?1",
            params![day],
            |r| {
                Ok(DayLedger {
                    spent_micro_usd: r.get::<_, i64>(0)?.cast_unsigned(),
                    reserved_micro_usd: r.get::<_, i64>(1)?.cast_unsigned(),
                    open: r.get::<_, i64>(2)?.cast_unsigned(),
                })
            },
        )
        .optional()?
        .unwrap_or_default())
}

impl BudgetStore for SqliteBudget {
    fn reserve(
        &self,
        day: &str,
        id: &str,
        micro_usd: u64,
        cap_micro_usd: u64,
    ) -> Result<Option<Reservation>, Error> {
        let mut conn = lightsout_stdx::lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        let known = tx
            .query_row(
                "SELECT day, amount FROM budget_reservations WHERE id = ?1",
                params![id],
                |r| {
                    Ok(Reservation {
                        id: id.to_owned(),
                        day: r.get(0)?,
                        micro_usd: r.get::<_, i64>(1)?.cast_unsigned(),
                    })
                },
            )
            .optional()
            .map_err(self.err())?;
        if known.is_some() {
            return Ok(known);
        }
        tx.execute(
            "INSERT INTO budget_days (day) VALUES (?1) ON CONFLICT DO NOTHING",
            params![day],
        )
        .map_err(self.err())?;
        let n = tx
            .execute(
                "UPDATE budget_days SET reserved = reserved + ?2, open = open + 1 \
                 WHERE day = ?1 AND spent + reserved + ?2 <= ?3",
                params![day, stored(micro_usd), stored(cap_micro_usd)],
            )
            .map_err(self.err())?;
        if n == 0 {
            return Ok(None);
        }
        tx.execute(
            "INSERT INTO budget_reservations (id, day, amount) VALUES (?1, ?2, ?3)",
            params![id, day, stored(micro_usd)],
        )
        .map_err(self.err())?;
        tx.commit().map_err(self.err())?;
        Ok(Some(Reservation {
            id: id.to_owned(),
            day: day.to_owned(),
            micro_usd,
        }))
    }

    fn settle(&self, reservation: &Reservation, actual_micro_usd: u64) -> Result<DayLedger, Error> {
        let mut conn = lightsout_stdx::lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        let row: Option<(String, i64, Option<i64>)> = tx
            .query_row(
                "SELECT day, amount, actual FROM budget_reservations WHERE id = ?1",
                params![reservation.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.err())?;
        let Some((day, amount, actual)) = row else {
            return Err(unknown(&self.path.display().to_string(), &reservation.id));
        };
        if actual.is_none() {
            tx.execute(
                "UPDATE budget_reservations SET actual = ?2 WHERE id = ?1",
                params![reservation.id, stored(actual_micro_usd)],
            )
            .map_err(self.err())?;
            tx.execute(
                "UPDATE budget_days SET reserved = reserved - ?2, spent = spent + ?3, \
                 open = open - 1 WHERE day = ?1",
                params![day, amount, stored(actual_micro_usd)],
            )
            .map_err(self.err())?;
        }
        let l = ledger(&tx, &day).map_err(self.err())?;
        tx.commit().map_err(self.err())?;
        Ok(l)
    }

    fn ledger(&self, day: &str) -> Result<DayLedger, Error> {
        ledger(&lightsout_stdx::lock(&self.conn), day).map_err(self.err())
    }
}
