//! [`SqliteBudget`]: the [`BudgetStore`] in a `SQLite` file, for one machine. Each call is one
//! `BEGIN IMMEDIATE` transaction (`SQLite` has one writer at a time, so the cap check and the
//! reservation cannot interleave with another's). Claims are live by this machine's clock, the
//! one `SqliteClaims` counts leases by.

use super::{
    BudgetStore, ClaimKey, DayAmounts, DayCaps, DayGrant, DayLedger, Reservation, Unsettled,
    amount, stale_claim, stored, sum, unknown,
};
use crate::Error;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const MIGRATIONS: &[&str] = &[
    // 1: days and reservations, in micro-USD.
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
    // 2: the four day caps (attempts, wall ms, tokens beside micro-USD), and reservations tied
    // to a claim. What is reserved is summed from the unsettled reservations (held or presumed
    // spent, by their claims), so the day's `reserved` and `open` counters go.
    r"
    ALTER TABLE budget_days RENAME COLUMN spent TO spent_micro_usd;
    ALTER TABLE budget_days DROP COLUMN reserved;
    ALTER TABLE budget_days DROP COLUMN open;
    ALTER TABLE budget_days ADD COLUMN spent_attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE budget_days ADD COLUMN spent_wall_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE budget_days ADD COLUMN spent_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE budget_reservations RENAME COLUMN amount TO micro_usd;
    ALTER TABLE budget_reservations RENAME COLUMN actual TO actual_micro_usd;
    ALTER TABLE budget_reservations ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE budget_reservations ADD COLUMN wall_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE budget_reservations ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE budget_reservations ADD COLUMN actual_attempts INTEGER;
    ALTER TABLE budget_reservations ADD COLUMN actual_wall_ms INTEGER;
    ALTER TABLE budget_reservations ADD COLUMN actual_tokens INTEGER;
    ALTER TABLE budget_reservations ADD COLUMN claim_run TEXT;
    ALTER TABLE budget_reservations ADD COLUMN claim_task TEXT;
    ALTER TABLE budget_reservations ADD COLUMN claim_token INTEGER;
    CREATE INDEX budget_reservations_unsettled ON budget_reservations (day)
        WHERE actual_micro_usd IS NULL;
    ",
];

/// The unsettled reservations of day `?1`, each with whether it is held (it has no claim, or
/// its claim is live at `?2`, ms since the epoch, by the claims' rule for a fenced write: task
/// still claimed under that token, lease not lapsed) or presumed spent (its claim was lost).
const UNSETTLED: &str = "SELECT r.claim_run IS NULL OR EXISTS ( \
         SELECT 1 FROM claim_tasks t WHERE t.run_id = r.claim_run AND t.task_id = r.claim_task \
         AND t.token = r.claim_token AND t.status = 'claimed' AND t.lease_until > ?2), \
     r.attempts, r.wall_ms, r.tokens, r.micro_usd \
     FROM budget_reservations r WHERE r.day = ?1 AND r.actual_micro_usd IS NULL";

/// Whether claim `?1`/`?2`/`?3` is live at `?4`.
const LIVE: &str = "SELECT EXISTS (SELECT 1 FROM claim_tasks WHERE run_id = ?1 AND task_id = ?2 \
     AND token = ?3 AND status = 'claimed' AND lease_until > ?4)";

/// The day budget in a `SQLite` file, normally `.lightsout/state.db`.
#[derive(Debug)]
pub struct SqliteBudget {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteBudget {
    /// Opens (creating it and its parent directory when missing) the store at `path` and
    /// brings its budget schema, and the claims schema its ledger reads, up to date.
    ///
    /// # Errors
    /// The file cannot be created or opened, or its budget or claims schema is newer than this
    /// version.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let conn = crate::sqlite::open_migrated(
            path,
            &[
                ("claims", crate::claims::sqlite::MIGRATIONS),
                ("budget", MIGRATIONS),
            ],
        )?;
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

/// Four amount columns from column `i` on, in [`DayAmounts`] order.
fn amounts_at(r: &Row<'_>, i: usize) -> rusqlite::Result<DayAmounts> {
    Ok(DayAmounts {
        attempts: amount(r.get(i)?),
        wall_ms: amount(r.get(i + 1)?),
        tokens: amount(r.get(i + 2)?),
        micro_usd: amount(r.get(i + 3)?),
    })
}

/// The day's settled amounts.
fn spent(conn: &Connection, day: &str) -> rusqlite::Result<DayAmounts> {
    Ok(conn
        .query_row(
            "SELECT spent_attempts, spent_wall_ms, spent_tokens, spent_micro_usd \
             FROM budget_days WHERE day = ?1",
            params![day],
            |r| amounts_at(r, 0),
        )
        .optional()?
        .unwrap_or_default())
}

/// The day's ledger, held and presumed-spent reservations told apart at `now` (ms since the
/// epoch).
fn ledger(conn: &Connection, day: &str, now: i64) -> rusqlite::Result<DayLedger> {
    let spent = spent(conn, day)?;
    let mut st = conn.prepare_cached(UNSETTLED)?;
    let rows = st
        .query_map(params![day, now], |r| {
            Ok(Unsettled {
                live: r.get(0)?,
                amounts: amounts_at(r, 1)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(sum(spent, rows))
}

/// The reservation `id`, if the store has it.
fn known(conn: &Connection, id: &str) -> rusqlite::Result<Option<Reservation>> {
    conn.query_row(
        "SELECT day, attempts, wall_ms, tokens, micro_usd, claim_run, claim_task, claim_token \
         FROM budget_reservations WHERE id = ?1",
        params![id],
        |r| {
            let claim = match (r.get(5)?, r.get(6)?, r.get::<_, Option<i64>>(7)?) {
                (Some(run), Some(task), Some(token)) => Some(ClaimKey {
                    run,
                    task,
                    token: token.cast_unsigned(),
                }),
                _ => None,
            };
            Ok(Reservation {
                id: id.to_owned(),
                day: r.get(0)?,
                amounts: amounts_at(r, 1)?,
                claim,
            })
        },
    )
    .optional()
}

fn store4(a: &DayAmounts) -> [i64; 4] {
    [
        stored(a.attempts),
        stored(a.wall_ms),
        stored(a.tokens),
        stored(a.micro_usd),
    ]
}

impl BudgetStore for SqliteBudget {
    fn reserve(
        &self,
        day: &str,
        id: &str,
        claim: Option<&ClaimKey>,
        amounts: DayAmounts,
        caps: &DayCaps,
    ) -> Result<DayGrant, Error> {
        let mut conn = lightsout_stdx::lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        if let Some(r) = known(&tx, id).map_err(self.err())? {
            return Ok(DayGrant::Granted(r));
        }
        let now = crate::claims::sqlite::now_ms();
        if let Some(c) = claim {
            let live: bool = tx
                .query_row(
                    LIVE,
                    params![c.run, c.task, c.token.cast_signed(), now],
                    |r| r.get(0),
                )
                .map_err(self.err())?;
            if !live {
                return Err(stale_claim(c));
            }
        }
        let l = ledger(&tx, day, now).map_err(self.err())?;
        if let Some(exceeded) = l.check(caps, &amounts) {
            return Ok(DayGrant::Refused {
                day: day.to_owned(),
                exceeded,
                ledger: l,
            });
        }
        tx.execute(
            "INSERT INTO budget_days (day) VALUES (?1) ON CONFLICT DO NOTHING",
            params![day],
        )
        .map_err(self.err())?;
        let [attempts, wall_ms, tokens, micro_usd] = store4(&amounts);
        tx.execute(
            "INSERT INTO budget_reservations \
             (id, day, attempts, wall_ms, tokens, micro_usd, claim_run, claim_task, claim_token) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                id,
                day,
                attempts,
                wall_ms,
                tokens,
                micro_usd,
                claim.map(|c| &c.run),
                claim.map(|c| &c.task),
                claim.map(|c| c.token.cast_signed()),
            ],
        )
        .map_err(self.err())?;
        let granted = known(&tx, id).map_err(self.err())?;
        tx.commit().map_err(self.err())?;
        granted
            .map(DayGrant::Granted)
            .ok_or_else(|| unknown(&self.path.display().to_string(), id))
    }

    fn settle(&self, reservation: &Reservation, actual: DayAmounts) -> Result<DayLedger, Error> {
        let mut conn = lightsout_stdx::lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err())?;
        let row: Option<(String, bool)> = tx
            .query_row(
                "SELECT day, actual_micro_usd IS NOT NULL FROM budget_reservations WHERE id = ?1",
                params![reservation.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.err())?;
        let Some((day, settled)) = row else {
            return Err(unknown(&self.path.display().to_string(), &reservation.id));
        };
        let now = crate::claims::sqlite::now_ms();
        if !settled {
            let [attempts, wall_ms, tokens, micro_usd] = store4(&actual);
            tx.execute(
                "UPDATE budget_reservations SET actual_attempts = ?2, actual_wall_ms = ?3, \
                 actual_tokens = ?4, actual_micro_usd = ?5 WHERE id = ?1",
                params![reservation.id, attempts, wall_ms, tokens, micro_usd],
            )
            .map_err(self.err())?;
            tx.execute(
                "INSERT INTO budget_days (day) VALUES (?1) ON CONFLICT DO NOTHING",
                params![day],
            )
            .map_err(self.err())?;
            // Summed here, saturating, rather than in SQL, where an overflow turns to REAL.
            let spent = spent(&tx, &day).map_err(self.err())?.saturating_add(actual);
            let [attempts, wall_ms, tokens, micro_usd] = store4(&spent);
            tx.execute(
                "UPDATE budget_days SET spent_attempts = ?2, spent_wall_ms = ?3, \
                 spent_tokens = ?4, spent_micro_usd = ?5 WHERE day = ?1",
                params![day, attempts, wall_ms, tokens, micro_usd],
            )
            .map_err(self.err())?;
        }
        let l = ledger(&tx, &day, now).map_err(self.err())?;
        tx.commit().map_err(self.err())?;
        Ok(l)
    }

    fn ledger(&self, day: &str) -> Result<DayLedger, Error> {
        ledger(
            &lightsout_stdx::lock(&self.conn),
            day,
            crate::claims::sqlite::now_ms(),
        )
        .map_err(self.err())
    }
}
