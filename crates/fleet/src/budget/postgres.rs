//! `PgBudget`: the [`BudgetStore`] on a `PostgreSQL` server, one ledger for the whole fleet.
//!
//! - Reserve: one transaction that takes the day's row `FOR UPDATE` (created first if
//!   missing), then sums the day's unsettled reservations (held or presumed spent, told apart
//!   by their claims by the server's clock), checks the caps and inserts the reservation. Concurrent reservers of a day queue
//!   on that row's lock, and each sum is a statement that starts after the reserver before it
//!   committed (`READ COMMITTED` takes a snapshot per statement), so it sees every reservation
//!   granted before it: the caps hold under any interleaving. A refused reservation rolls back.
//! - Settle takes the same lock (the day's row, then the reservation), so a settlement and a
//!   reservation of one day never interleave either; one lock order, no deadlock between them.
//! - Lost connections are retried with backoff for [`crate::RECONNECT_FOR`]; every call is
//!   idempotent, so a retry counts once.

use super::{
    BudgetStore, ClaimKey, DayAmounts, DayCaps, DayGrant, DayLedger, Reservation, Unsettled,
    amount, stale_claim, stored, sum, unknown,
};
use crate::Error;
use crate::pg::{Pg, conn, migrate, pg_err, retry};
use deadpool_postgres::Transaction;

const MIGRATIONS: &[&str] = &[
    // 1: days and reservations, in micro-USD.
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
    // 2: the four day caps (attempts, wall ms, tokens beside micro-USD), and reservations tied
    // to a claim. What is reserved is summed from the unsettled reservations (held or presumed
    // spent, by their claims), so the day's `reserved` and `open` counters go.
    r"
    ALTER TABLE lightsout_budget_days RENAME COLUMN spent TO spent_micro_usd;
    ALTER TABLE lightsout_budget_days DROP COLUMN reserved, DROP COLUMN open,
        ADD COLUMN spent_attempts BIGINT NOT NULL DEFAULT 0 CHECK (spent_attempts >= 0),
        ADD COLUMN spent_wall_ms BIGINT NOT NULL DEFAULT 0 CHECK (spent_wall_ms >= 0),
        ADD COLUMN spent_tokens BIGINT NOT NULL DEFAULT 0 CHECK (spent_tokens >= 0);
    ALTER TABLE lightsout_budget_reservations RENAME COLUMN amount TO micro_usd;
    ALTER TABLE lightsout_budget_reservations RENAME COLUMN actual TO actual_micro_usd;
    ALTER TABLE lightsout_budget_reservations
        ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        ADD COLUMN wall_ms BIGINT NOT NULL DEFAULT 0 CHECK (wall_ms >= 0),
        ADD COLUMN tokens BIGINT NOT NULL DEFAULT 0 CHECK (tokens >= 0),
        ADD COLUMN actual_attempts BIGINT,
        ADD COLUMN actual_wall_ms BIGINT,
        ADD COLUMN actual_tokens BIGINT,
        ADD COLUMN claim_run TEXT,
        ADD COLUMN claim_task TEXT,
        ADD COLUMN claim_token BIGINT;
    CREATE INDEX lightsout_budget_reservations_unsettled
        ON lightsout_budget_reservations (day) WHERE actual_micro_usd IS NULL;
    ",
];

/// The unsettled reservations of day `$1`, each with whether it is held (it has no claim, or
/// its claim is live by the server's clock, by the claims' rule for a fenced write: task still
/// claimed under that token, lease not lapsed) or presumed spent (its claim was lost).
const UNSETTLED: &str = "SELECT r.claim_run IS NULL OR EXISTS ( \
         SELECT 1 FROM lightsout_tasks t WHERE t.run_id = r.claim_run \
         AND t.task_id = r.claim_task AND t.token = r.claim_token AND t.status = 'claimed' \
         AND t.lease_until > clock_timestamp()), \
     r.attempts, r.wall_ms, r.tokens, r.micro_usd \
     FROM lightsout_budget_reservations r WHERE r.day = $1 AND r.actual_micro_usd IS NULL";

/// Whether claim `$1`/`$2`/`$3` is live.
const LIVE: &str = "SELECT EXISTS (SELECT 1 FROM lightsout_tasks WHERE run_id = $1 \
     AND task_id = $2 AND token = $3 AND status = 'claimed' AND lease_until > clock_timestamp())";

const SPENT: &str = "SELECT spent_attempts, spent_wall_ms, spent_tokens, spent_micro_usd \
     FROM lightsout_budget_days WHERE day = $1";

/// The day budget on a `PostgreSQL` server: a [`BudgetStore`](super::BudgetStore).
#[derive(Debug)]
pub struct PgBudget {
    pg: Pg,
}

/// Four amount columns from column `i` on, in [`DayAmounts`] order.
fn amounts_at(r: &tokio_postgres::Row, i: usize) -> DayAmounts {
    DayAmounts {
        attempts: amount(r.get(i)),
        wall_ms: amount(r.get(i + 1)),
        tokens: amount(r.get(i + 2)),
        micro_usd: amount(r.get(i + 3)),
    }
}

fn store4(a: &DayAmounts) -> [i64; 4] {
    [
        stored(a.attempts),
        stored(a.wall_ms),
        stored(a.tokens),
        stored(a.micro_usd),
    ]
}

/// The day's ledger, as one transaction's statements see it now.
async fn ledger(tx: &Transaction<'_>, day: &str) -> Result<DayLedger, tokio_postgres::Error> {
    let spent = tx
        .query_opt(SPENT, &[&day])
        .await?
        .map(|r| amounts_at(&r, 0))
        .unwrap_or_default();
    let rows = tx.query(UNSETTLED, &[&day]).await?;
    Ok(sum(
        spent,
        rows.iter().map(|r| Unsettled {
            live: r.get(0),
            amounts: amounts_at(r, 1),
        }),
    ))
}

/// The reservation `id`, if the store has it.
async fn known(
    tx: &Transaction<'_>,
    id: &str,
) -> Result<Option<Reservation>, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            "SELECT day, attempts, wall_ms, tokens, micro_usd, claim_run, claim_task, \
             claim_token FROM lightsout_budget_reservations WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(row.map(|r| {
        let claim = match (r.get(5), r.get(6), r.get::<_, Option<i64>>(7)) {
            (Some(run), Some(task), Some(token)) => Some(ClaimKey {
                run,
                task,
                token: token.cast_unsigned(),
            }),
            _ => None,
        };
        Reservation {
            id: id.to_owned(),
            day: r.get(0),
            amounts: amounts_at(&r, 1),
            claim,
        }
    }))
}

impl PgBudget {
    /// Connects to the server at `url` (`postgres://user[:password]@host:port/database`;
    /// no TLS) with a pool of at most `max_connections`, and brings the budget schema, and the
    /// claims schema its ledger reads, up to date.
    ///
    /// # Errors
    /// The URL is malformed, the server cannot be reached within [`crate::RECONNECT_FOR`], or
    /// its budget or claims schema is newer than this version knows.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, Error> {
        let pg = Pg::connect(url, max_connections)?;
        let (pool, server) = (pg.pool(), pg.server().to_owned());
        pg.block(async move {
            retry(|| async {
                migrate(
                    &pool,
                    &server,
                    "claims",
                    crate::claims::postgres::MIGRATIONS,
                )
                .await?;
                migrate(&pool, &server, "budget", MIGRATIONS).await
            })
            .await
        })?;
        Ok(Self { pg })
    }
}

impl BudgetStore for PgBudget {
    fn reserve(
        &self,
        day: &str,
        id: &str,
        claim: Option<&ClaimKey>,
        amounts: DayAmounts,
        caps: &DayCaps,
    ) -> Result<DayGrant, Error> {
        let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
        let (day, id, claim, caps) = (day.to_owned(), id.to_owned(), claim.cloned(), *caps);
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
                // The day's lock: reservers and settlements of the day queue here.
                tx.execute(
                    "SELECT 1 FROM lightsout_budget_days WHERE day = $1 FOR UPDATE",
                    &[&day],
                )
                .await
                .map_err(&err)?;
                // Under the lock, so a call of the same id in flight at once (a retry after a
                // lost reply) is seen as granted, never refused by its own reservation.
                if let Some(r) = known(&tx, &id).await.map_err(&err)? {
                    return Ok(DayGrant::Granted(r));
                }
                if let Some(k) = &claim {
                    let live: bool = tx
                        .query_one(LIVE, &[&k.run, &k.task, &k.token.cast_signed()])
                        .await
                        .map_err(&err)?
                        .get(0);
                    if !live {
                        return Err(stale_claim(k));
                    }
                }
                let l = ledger(&tx, &day).await.map_err(&err)?;
                if let Some(exceeded) = l.check(&caps, &amounts) {
                    tx.rollback().await.map_err(&err)?;
                    return Ok(DayGrant::Refused {
                        day: day.clone(),
                        exceeded,
                        ledger: l,
                    });
                }
                let [attempts, wall_ms, tokens, micro_usd] = store4(&amounts);
                tx.execute(
                    "INSERT INTO lightsout_budget_reservations (id, day, attempts, wall_ms, \
                     tokens, micro_usd, claim_run, claim_task, claim_token) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
                    &[
                        &id,
                        &day,
                        &attempts,
                        &wall_ms,
                        &tokens,
                        &micro_usd,
                        &claim.as_ref().map(|k| k.run.as_str()),
                        &claim.as_ref().map(|k| k.task.as_str()),
                        &claim.as_ref().map(|k| k.token.cast_signed()),
                    ],
                )
                .await
                .map_err(&err)?;
                // The reservation as stored: this one, or one of the same id a concurrent call
                // inserted first.
                let granted = known(&tx, &id).await.map_err(&err)?;
                tx.commit().await.map_err(&err)?;
                granted
                    .map(DayGrant::Granted)
                    .ok_or_else(|| unknown(&server, &id))
            })
            .await
        })
    }

    fn settle(&self, reservation: &Reservation, actual: DayAmounts) -> Result<DayLedger, Error> {
        let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
        let id = reservation.id.clone();
        self.pg.block(async move {
            retry(|| async {
                let err = pg_err(&server);
                let mut c = conn(&pool, &server).await?;
                let tx = c.transaction().await.map_err(&err)?;
                let Some(r) = tx
                    .query_opt(
                        "SELECT day FROM lightsout_budget_reservations WHERE id = $1",
                        &[&id],
                    )
                    .await
                    .map_err(&err)?
                else {
                    return Err(unknown(&server, &id));
                };
                let day: String = r.get(0);
                // The day's lock first, as a reservation takes it; then the reservation as it
                // stands under it.
                let spent = tx
                    .query_opt(&format!("{SPENT} FOR UPDATE"), &[&day])
                    .await
                    .map_err(&err)?
                    .map(|r| amounts_at(&r, 0))
                    .unwrap_or_default();
                let settled: bool = tx
                    .query_one(
                        "SELECT actual_micro_usd IS NOT NULL FROM lightsout_budget_reservations \
                         WHERE id = $1",
                        &[&id],
                    )
                    .await
                    .map_err(&err)?
                    .get(0);
                if !settled {
                    let [attempts, wall_ms, tokens, micro_usd] = store4(&actual);
                    tx.execute(
                        "UPDATE lightsout_budget_reservations SET actual_attempts = $2, \
                         actual_wall_ms = $3, actual_tokens = $4, actual_micro_usd = $5 \
                         WHERE id = $1",
                        &[&id, &attempts, &wall_ms, &tokens, &micro_usd],
                    )
                    .await
                    .map_err(&err)?;
                    // Summed here, saturating, rather than in SQL, where a BIGINT overflows.
                    let [attempts, wall_ms, tokens, micro_usd] =
                        store4(&spent.saturating_add(actual));
                    tx.execute(
                        "UPDATE lightsout_budget_days SET spent_attempts = $2, \
                         spent_wall_ms = $3, spent_tokens = $4, spent_micro_usd = $5 \
                         WHERE day = $1",
                        &[&day, &attempts, &wall_ms, &tokens, &micro_usd],
                    )
                    .await
                    .map_err(&err)?;
                }
                let l = ledger(&tx, &day).await.map_err(&err)?;
                tx.commit().await.map_err(&err)?;
                Ok(l)
            })
            .await
        })
    }

    fn ledger(&self, day: &str) -> Result<DayLedger, Error> {
        let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
        let day = day.to_owned();
        self.pg.block(async move {
            retry(|| async {
                let err = pg_err(&server);
                let mut c = conn(&pool, &server).await?;
                let tx = c.transaction().await.map_err(&err)?;
                let l = ledger(&tx, &day).await.map_err(&err)?;
                tx.commit().await.map_err(&err)?;
                Ok(l)
            })
            .await
        })
    }
}
