//! `PgBudget`: the [`BudgetStore`] on a `PostgreSQL` server, one ledger for the whole fleet.
//!
//! - Reserve: one transaction that inserts the reservation (`ON CONFLICT DO NOTHING`: a known
//!   id is returned as granted), then `UPDATE … SET reserved = reserved + $amount WHERE
//!   spent + reserved + $amount <= $cap` on the day's row. Concurrent reservers queue on that
//!   row's lock and each re-checks the condition against the row as the one before left it
//!   (`READ COMMITTED` re-evaluates the `WHERE` of an `UPDATE` on the newest row version), so
//!   the cap holds under any interleaving; a refused reservation rolls back.
//! - Lost connections are retried with backoff for [`crate::RECONNECT_FOR`]; every call is
//!   idempotent, so a retry counts once.

use super::{BudgetStore, DayLedger, Reservation, stored, unknown};
use crate::Error;
use crate::pg::{Pg, conn, migrate, pg_err, retry};

const MIGRATIONS: &[&str] = &[
    // 1: days and reservations.
    r"
    CREATE TABLE lightsout_budget_days (
        day TEXT PRIMARY KEY,
        spent BIGINT NOT NULL DEFAULT 0 CHECK (spent >= 0),
        reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
        open BIGINT NOT NULL DEFAULT 0 CHECK (open >= 0)
    );
    CREATE TABLE lightsout_budget_reservations (
        id TEXT PRIMARY KEY,
        day TEXT NOT NULL REFERENCES lightsout_budget_days (day),
        amount BIGINT NOT NULL CHECK (amount >= 0),
        actual BIGINT
    );
    ",
];

/// The day budget on a `PostgreSQL` server ([module docs](self)).
#[derive(Debug)]
pub struct PgBudget {
    pg: Pg,
}

fn to_ledger(r: &tokio_postgres::Row) -> DayLedger {
    DayLedger {
        spent_micro_usd: r.get::<_, i64>(0).cast_unsigned(),
        reserved_micro_usd: r.get::<_, i64>(1).cast_unsigned(),
        open: r.get::<_, i64>(2).cast_unsigned(),
    }
}

const LEDGER: &str = "SELECT spent, reserved, open FROM lightsout_budget_days WHERE day = $1";

impl PgBudget {
    /// Connects to the server at `url` (`postgres://user[:password]@host:port/database`;
    /// no TLS) with a pool of at most `max_connections`, and brings the schema up to date.
    ///
    /// # Errors
    /// The URL is malformed, the server cannot be reached within [`crate::RECONNECT_FOR`], or
    /// its budget schema is newer than this version knows.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, Error> {
        let pg = Pg::connect(url, max_connections)?;
        let (pool, server) = (pg.pool(), pg.server().to_owned());
        pg.block(async move { retry(|| migrate(&pool, &server, "budget", MIGRATIONS)).await })?;
        Ok(Self { pg })
    }
}

impl BudgetStore for PgBudget {
    fn reserve(
        &self,
        day: &str,
        id: &str,
        micro_usd: u64,
        cap_micro_usd: u64,
    ) -> Result<Option<Reservation>, Error> {
        let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
        let (day, id) = (day.to_owned(), id.to_owned());
        let (amount, cap) = (stored(micro_usd), stored(cap_micro_usd));
        self.pg.block(async move {
            retry(|| async {
                let err = pg_err(&server);
                let mut c = conn(&pool, &server).await?;
                let tx = c.transaction().await.map_err(&err)?;
                tx.execute(
                    "INSERT INTO lightsout_budget_days (day) VALUES ($1) ON CONFLICT DO NOTHING",
                    &[&day],
                )
                .await
                .map_err(&err)?;
                let fresh = tx
                    .execute(
                        "INSERT INTO lightsout_budget_reservations (id, day, amount) \
                         VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                        &[&id, &day, &amount],
                    )
                    .await
                    .map_err(&err)?;
                if fresh == 0 {
                    let r = tx
                        .query_one(
                            "SELECT day, amount FROM lightsout_budget_reservations WHERE id = $1",
                            &[&id],
                        )
                        .await
                        .map_err(&err)?;
                    return Ok(Some(Reservation {
                        id: id.clone(),
                        day: r.get(0),
                        micro_usd: r.get::<_, i64>(1).cast_unsigned(),
                    }));
                }
                let granted = tx
                    .execute(
                        "UPDATE lightsout_budget_days \
                         SET reserved = reserved + $2, open = open + 1 \
                         WHERE day = $1 AND spent + reserved + $2 <= $3",
                        &[&day, &amount, &cap],
                    )
                    .await
                    .map_err(&err)?;
                if granted == 0 {
                    tx.rollback().await.map_err(&err)?;
                    return Ok(None);
                }
                tx.commit().await.map_err(&err)?;
                Ok(Some(Reservation {
                    id: id.clone(),
                    day: day.clone(),
                    micro_usd: amount.cast_unsigned(),
                }))
            })
            .await
        })
    }

    fn settle(&self, reservation: &Reservation, actual_micro_usd: u64) -> Result<DayLedger, Error> {
        let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
        let id = reservation.id.clone();
        let actual = stored(actual_micro_usd);
        self.pg.block(async move {
            retry(|| async {
                let err = pg_err(&server);
                let mut c = conn(&pool, &server).await?;
                let tx = c.transaction().await.map_err(&err)?;
                let Some(r) = tx
                    .query_opt(
                        "SELECT day, amount, actual FROM lightsout_budget_reservations \
                         WHERE id = $1 FOR UPDATE",
                        &[&id],
                    )
                    .await
                    .map_err(&err)?
                else {
                    return Err(unknown(&server, &id));
                };
                let (day, amount): (String, i64) = (r.get(0), r.get(1));
                if r.get::<_, Option<i64>>(2).is_none() {
                    tx.execute(
                        "UPDATE lightsout_budget_reservations SET actual = $2 WHERE id = $1",
                        &[&id, &actual],
                    )
                    .await
                    .map_err(&err)?;
                    tx.execute(
                        "UPDATE lightsout_budget_days SET reserved = reserved - $2, \
                         spent = spent + $3, open = open - 1 WHERE day = $1",
                        &[&day, &amount, &actual],
                    )
                    .await
                    .map_err(&err)?;
                }
                let l = tx.query_one(LEDGER, &[&day]).await.map_err(&err)?;
                tx.commit().await.map_err(&err)?;
                Ok(to_ledger(&l))
            })
            .await
        })
    }

    fn ledger(&self, day: &str) -> Result<DayLedger, Error> {
        let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
        let day = day.to_owned();
        self.pg.block(async move {
            retry(|| async {
                let c = conn(&pool, &server).await?;
                let r = c
                    .query_opt(LEDGER, &[&day])
                    .await
                    .map_err(pg_err(&server))?;
                Ok(r.as_ref().map(to_ledger).unwrap_or_default())
            })
            .await
        })
    }
}
