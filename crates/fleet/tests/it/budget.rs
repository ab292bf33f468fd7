//! One suite for [`BudgetStore`], called once per backend, with the claim store of the same
//! database (a reservation tied to a claim counts only while that claim is live).

use crate::claims::{LONG, assert_stale};
use lightsout_fleet::budget::{
    BudgetStore, ClaimKey, DayAmounts, DayCap, DayCaps, DayGrant, DayLedger, PgBudget, Reservation,
    SqliteBudget,
};
use lightsout_fleet::claims::{Claim, ClaimStore, PgClaims, SqliteClaims};
use lightsout_fleet::testing::fresh_database;
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// One store of each kind over the same database, each call a new handle (a new connection,
/// as a separate worker would have), and raw SQL run on the database (to write an old schema).
#[derive(Clone)]
struct Backend {
    budget: Arc<dyn Fn() -> Box<dyn BudgetStore> + Send + Sync>,
    claims: Arc<dyn Fn() -> Box<dyn ClaimStore> + Send + Sync>,
    raw: Arc<dyn Fn(&str) + Send + Sync>,
    postgres: bool,
}

fn sqlite() -> (tempfile::TempDir, Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (p, q, r) = (path.clone(), path.clone(), path);
    let b = Backend {
        budget: Arc::new(move || Box::new(SqliteBudget::open(&p).unwrap())),
        claims: Arc::new(move || Box::new(SqliteClaims::open(&q).unwrap())),
        raw: Arc::new(move |sql| {
            rusqlite::Connection::open(&r)
                .unwrap()
                .execute_batch(sql)
                .unwrap();
        }),
        postgres: false,
    };
    (dir, b)
}

fn postgres() -> Backend {
    let url = fresh_database("budget");
    let (u, v, w) = (url.clone(), url.clone(), url);
    Backend {
        budget: Arc::new(move || Box::new(PgBudget::connect(&u, 2).unwrap())),
        claims: Arc::new(move || Box::new(PgClaims::connect(&v, 2).unwrap())),
        raw: Arc::new(move |sql| pg_exec(&w, sql)),
        postgres: true,
    }
}

fn pg_exec(url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        c.batch_execute(sql).await.unwrap();
        drop(c);
        let _ = driver.await;
    });
}

const DAY: &str = "2026-12-07";

/// One agent call: one attempt, `wall_ms`, `tokens` and `micro_usd`.
fn call(wall_ms: u64, tokens: u64, micro_usd: u64) -> DayAmounts {
    DayAmounts {
        attempts: 1,
        wall_ms,
        tokens,
        micro_usd,
    }
}

/// `micro_usd` and nothing else (what a store of the previous schema counted).
fn usd(micro_usd: u64) -> DayAmounts {
    DayAmounts {
        micro_usd,
        ..DayAmounts::ZERO
    }
}

/// `caps` with `cap` set to `limit`.
fn with(mut caps: DayCaps, cap: DayCap, limit: u64) -> DayCaps {
    *match cap {
        DayCap::Attempts => &mut caps.attempts,
        DayCap::WallMs => &mut caps.wall_ms,
        DayCap::Tokens => &mut caps.tokens,
        DayCap::Usd => &mut caps.micro_usd,
    } = Some(limit);
    caps
}

/// Caps with only `cap` set, to `limit`.
fn only(cap: DayCap, limit: u64) -> DayCaps {
    with(DayCaps::default(), cap, limit)
}

fn granted(g: DayGrant) -> Reservation {
    match g {
        DayGrant::Granted(r) => r,
        DayGrant::Refused {
            exceeded, ledger, ..
        } => panic!("refused: {exceeded} ({ledger})"),
    }
}

/// Each of the four caps, set alone, grants calls until the next would pass it, then refuses
/// naming that cap with its limit, what the day used and what was asked, and the day's ledger;
/// a call that fits exactly what is left is granted, after which even a request of nothing for
/// that cap is refused (fail closed); a settlement past the cap is an overrun of that cap.
fn each_cap_is_refused_at_its_limit_and_named(b: &Backend) {
    let s = (b.budget)();
    let each = call(300, 300, 300_000);
    for (i, cap) in DayCap::ALL.into_iter().enumerate() {
        let day = format!("2026-12-1{i}");
        let limit = match cap {
            DayCap::Attempts => 3,
            DayCap::Usd => 1_000_000,
            _ => 1_000,
        };
        let caps = only(cap, limit);
        let mut mine = Vec::new();
        for n in 0..3 {
            mine.push(granted(
                s.reserve(&day, &format!("{cap}/{n}"), None, each, &caps)
                    .unwrap(),
            ));
        }
        let DayGrant::Refused {
            day: refused_day,
            exceeded,
            ledger,
        } = s
            .reserve(&day, &format!("{cap}/3"), None, each, &caps)
            .unwrap()
        else {
            panic!("{cap}: a fourth call passes the cap")
        };
        assert_eq!(refused_day, day);
        let used = 3 * each.get(cap);
        assert_eq!(
            (
                exceeded.cap,
                exceeded.limit,
                exceeded.used,
                exceeded.requested
            ),
            (cap, limit, used, each.get(cap)),
            "{cap}"
        );
        assert!(
            exceeded.to_string().contains(&format!("{cap} cap")),
            "{exceeded}"
        );
        let held = DayAmounts {
            attempts: 3,
            wall_ms: 900,
            tokens: 900,
            micro_usd: 900_000,
        };
        assert_eq!(
            ledger,
            DayLedger {
                spent: DayAmounts::ZERO,
                reserved: held,
                open: 3,
                abandoned: 0
            }
        );
        if cap != DayCap::Attempts {
            // What is left (a tenth of a call) fits, exactly.
            let mut rest = DayAmounts::ZERO;
            match cap {
                DayCap::WallMs => rest.wall_ms = 100,
                DayCap::Tokens => rest.tokens = 100,
                _ => rest.micro_usd = 100_000,
            }
            mine.push(granted(
                s.reserve(&day, &format!("{cap}/rest"), None, rest, &caps)
                    .unwrap(),
            ));
        }
        let DayGrant::Refused { exceeded, .. } = s
            .reserve(
                &day,
                &format!("{cap}/nothing"),
                None,
                DayAmounts::ZERO,
                &caps,
            )
            .unwrap()
        else {
            panic!("{cap}: an exhausted cap grants a request of nothing")
        };
        assert_eq!((exceeded.cap, exceeded.used), (cap, limit));
        // Released: the cap is free again; settled past it: an overrun of that cap.
        for r in &mine[1..] {
            s.release(r).unwrap();
        }
        let over = call(1_200, 1_200, 1_200_000);
        let l = s.settle(&mine[0], over).unwrap();
        assert_eq!((l.open, l.spent, l.reserved), (0, over, DayAmounts::ZERO));
        let overruns: Vec<DayCap> = l.overruns(&caps).iter().map(|e| e.cap).collect();
        let expect = if cap == DayCap::Attempts {
            vec![]
        } else {
            vec![cap]
        };
        assert_eq!(overruns, expect, "{cap}");
    }
    // No cap set: nothing is refused.
    let free = DayCaps::default();
    let all = call(u64::MAX, u64::MAX, u64::MAX);
    granted(s.reserve(DAY, "free/1", None, all, &free).unwrap());
    granted(s.reserve(DAY, "free/2", None, all, &free).unwrap());
    assert_eq!(s.ledger(DAY).unwrap().open, 2);
}

/// The four caps, all set, one of them tight; an abandoned reservation (its claim completed
/// before it was settled) of 60% of every cap. 16 workers (each its own connections) claim a
/// task each and reserve at once, tied to their claims, amounts of their own again and again
/// until refused: for each tight cap in turn, no cap is ever passed, the ledger holds exactly
/// the sum granted, every worker was refused by the tight cap and only when it was due, and
/// the tight cap was used to within the smallest call: the abandoned reservation did not
/// count.
fn concurrent_reservers_never_pass_any_cap(b: &Backend) {
    const WORKERS: usize = 16;
    let amount = |w: usize| {
        let w = w as u64;
        call(10 + 3 * w, 100 + 37 * w, 40_000 + 7_919 * w)
    };
    let loose = DayCaps {
        attempts: Some(1_000_000),
        wall_ms: Some(1_000_000_000),
        tokens: Some(1_000_000_000),
        micro_usd: Some(1_000_000_000_000),
    };
    let claims = (b.claims)();
    for (i, tight) in DayCap::ALL.into_iter().enumerate() {
        let day = format!("2026-11-2{i}");
        let limit = [120, 4_000, 40_000, 5_000_000][i];
        let caps = with(loose, tight, limit);
        let run = format!("race-{i}");
        let tasks: Vec<String> = (0..=WORKERS).map(|t| format!("T{t:02}")).collect();
        assert_eq!(claims.enqueue(&run, &tasks).unwrap(), WORKERS + 1);
        // The abandoned reservation: counted while its claim holds, not once it is settled.
        let dead = claims.claim("dead", LONG).unwrap().unwrap();
        let sixty = |cap: DayCap| caps.get(cap).unwrap() * 6 / 10;
        let big = DayAmounts {
            attempts: sixty(DayCap::Attempts),
            wall_ms: sixty(DayCap::WallMs),
            tokens: sixty(DayCap::Tokens),
            micro_usd: sixty(DayCap::Usd),
        };
        let store = (b.budget)();
        let key = ClaimKey::from(&dead);
        granted(
            store
                .reserve(&day, &format!("{run}/dead"), Some(&key), big, &caps)
                .unwrap(),
        );
        assert_eq!(store.ledger(&day).unwrap().reserved, big);
        claims.complete(&dead).unwrap();
        let start = Arc::new(Barrier::new(WORKERS));
        let threads: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (b, start, day) = (b.clone(), start.clone(), day.clone());
                std::thread::spawn(move || {
                    let (budget, claims) = ((b.budget)(), (b.claims)());
                    let claim = claims.claim(&format!("w{w}"), LONG).unwrap().unwrap();
                    let key = ClaimKey::from(&claim);
                    start.wait();
                    let mut mine = Vec::new();
                    loop {
                        let id = format!("{}/{w}/{}", key.run, mine.len());
                        match budget.reserve(&day, &id, Some(&key), amount(w), &caps) {
                            Ok(DayGrant::Granted(r)) => mine.push(r),
                            Ok(DayGrant::Refused { exceeded, .. }) => {
                                return (claim, mine, exceeded.cap);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        let got: Vec<(Claim, Vec<Reservation>, DayCap)> =
            threads.into_iter().map(|h| h.join().unwrap()).collect();
        let sum = got
            .iter()
            .flat_map(|g| &g.1)
            .fold(DayAmounts::ZERO, |a, r| a.saturating_add(r.amounts));
        let l = store.ledger(&day).unwrap();
        for cap in DayCap::ALL {
            assert!(
                sum.get(cap) <= caps.get(cap).unwrap(),
                "{cap}: {} reserved against a cap of {:?}",
                sum.get(cap),
                caps.get(cap)
            );
        }
        assert_eq!(
            (l.reserved, l.open, l.abandoned),
            (sum, got.iter().map(|g| g.1.len() as u64).sum(), 1)
        );
        for (w, (_, _, refused_by)) in got.iter().enumerate() {
            assert_eq!(*refused_by, tight, "worker {w}");
            assert!(
                l.check(&caps, &amount(w)).is_some(),
                "worker {w} was refused in vain"
            );
        }
        let smallest = (0..WORKERS).map(|w| amount(w).get(tight)).min().unwrap();
        assert!(
            limit - sum.get(tight) < smallest,
            "{tight}: {} left unreserved, yet a call of {smallest} was refused",
            limit - sum.get(tight)
        );
        for (c, mine, _) in &got {
            for r in mine {
                store.release(r).unwrap();
            }
            claims.complete(c).unwrap();
        }
        let l = store.ledger(&day).unwrap();
        assert_eq!(
            (l.open, l.reserved, l.spent),
            (0, DayAmounts::ZERO, DayAmounts::ZERO)
        );
    }
}

/// A reservation tied to a claim counts while the claim is live and stops counting once it
/// is not: its worker killed (the lease lapses), the task settled under it. The holder that
/// claims the task again reserves what the dead claim held; a live claim's reservation is
/// never dropped; the old claim can no longer reserve; a late settlement of an abandoned
/// reservation is spent all the same.
fn a_lost_claims_reservation_stops_counting(b: &Backend) {
    let (s, claims) = ((b.budget)(), (b.claims)());
    let caps = DayCaps {
        attempts: Some(2),
        micro_usd: Some(1_000_000),
        ..DayCaps::default()
    };
    let each = call(0, 0, 600_000);
    claims.enqueue("r", &["A".into(), "B".into()]).unwrap();
    let ca = claims.claim("a", LONG).unwrap().unwrap();
    let cb = claims.claim("b", LONG).unwrap().unwrap();
    let (ka, kb) = (ClaimKey::from(&ca), ClaimKey::from(&cb));
    let ra = granted(s.reserve(DAY, "r-A/A/1", Some(&ka), each, &caps).unwrap());
    assert_eq!(ra.claim.as_ref(), Some(&ka));
    let DayGrant::Refused {
        exceeded, ledger, ..
    } = s.reserve(DAY, "r-B/B/1", Some(&kb), each, &caps).unwrap()
    else {
        panic!("a's live reservation holds the day")
    };
    assert_eq!((exceeded.cap, ledger.open), (DayCap::Usd, 1));
    // a is killed: its lease lapses (a heartbeat of 0 ms, so no sleeping for the clock).
    claims.heartbeat(&ca, Duration::ZERO).unwrap();
    let l = s.ledger(DAY).unwrap();
    assert_eq!((l.open, l.abandoned, l.reserved), (0, 1, DayAmounts::ZERO));
    let rb = granted(s.reserve(DAY, "r-B/B/1", Some(&kb), each, &caps).unwrap());
    // The lapsed claim reserves nothing more.
    assert_stale(s.reserve(DAY, "r-A/A/2", Some(&ka), each, &caps));
    // A claims A again, under a greater token; b's live reservation still counts.
    let cc = claims.claim("c", LONG).unwrap().unwrap();
    assert_eq!(cc.task, "A");
    assert!(cc.token > ca.token);
    let kc = ClaimKey::from(&cc);
    let DayGrant::Refused {
        exceeded, ledger, ..
    } = s.reserve(DAY, "r-A2/A/1", Some(&kc), each, &caps).unwrap()
    else {
        panic!("b's live reservation was dropped")
    };
    assert_eq!(
        (exceeded.cap, ledger.open, ledger.abandoned),
        (DayCap::Usd, 1, 1)
    );
    // b's task is settled before its reservation (b died between the two): abandoned too.
    claims.complete(&cb).unwrap();
    let rc = granted(s.reserve(DAY, "r-A2/A/1", Some(&kc), each, &caps).unwrap());
    let l = s.ledger(DAY).unwrap();
    assert_eq!((l.open, l.abandoned, l.reserved), (1, 2, each));
    // a was cut off, not dead: its late settlement is spent, once.
    let late = call(0, 0, 300_000);
    let l = s.settle(&ra, late).unwrap();
    assert_eq!((l.spent, l.abandoned, l.open), (late, 1, 1));
    assert_eq!(
        s.settle(&ra, each).unwrap().spent,
        late,
        "the first settlement stands"
    );
    // 1 attempt spent + c's held = the cap of 2: the next call is refused by attempts.
    let DayGrant::Refused { exceeded, .. } = s
        .reserve(DAY, "r-A2/A/2", Some(&kc), call(0, 0, 1), &caps)
        .unwrap()
    else {
        panic!("the attempts cap is used up")
    };
    assert_eq!(exceeded.cap, DayCap::Attempts);
    s.settle(&rc, each).unwrap();
    s.release(&rb).unwrap();
    let l = s.ledger(DAY).unwrap();
    assert_eq!((l.open, l.abandoned), (0, 0));
    assert_eq!(l.spent, late.saturating_add(each));
}

/// Retried calls count once: reserving a known id returns it as granted (even when the cap
/// would now refuse it), settling twice settles once; a cost past the reservation is spent all
/// the same and stops the next reservation; another day has a ledger of its own; settling an
/// unknown reservation is an error.
fn retried_calls_count_once(b: &Backend) {
    let s = (b.budget)();
    let caps = only(DayCap::Usd, 1_000);
    let r = granted(
        s.reserve(DAY, "run/T1/1", None, call(5, 6, 600), &caps)
            .unwrap(),
    );
    assert_eq!(r.amounts, call(5, 6, 600));
    assert_eq!(
        s.reserve(DAY, "run/T1/1", None, call(0, 0, 900), &caps)
            .unwrap(),
        DayGrant::Granted(r.clone())
    );
    assert_eq!(s.ledger(DAY).unwrap().reserved.micro_usd, 600);
    assert!(matches!(
        s.reserve(DAY, "run/T2/1", None, call(0, 0, 600), &caps)
            .unwrap(),
        DayGrant::Refused { .. }
    ));
    let l = s.settle(&r, call(7, 8, 900)).unwrap();
    assert_eq!((l.spent, l.reserved), (call(7, 8, 900), DayAmounts::ZERO));
    assert_eq!(
        s.settle(&r, call(0, 0, 5)).unwrap().spent.micro_usd,
        900,
        "first settlement stands"
    );
    assert!(matches!(
        s.reserve(DAY, "run/T2/1", None, call(0, 0, 101), &caps)
            .unwrap(),
        DayGrant::Refused { .. }
    ));
    granted(
        s.reserve(DAY, "run/T2/1", None, call(0, 0, 100), &caps)
            .unwrap(),
    );
    granted(
        s.reserve("2026-12-08", "run/T3/1", None, call(0, 0, 1_000), &caps)
            .unwrap(),
    );
    assert_eq!(s.ledger("2026-12-09").unwrap(), DayLedger::default());
    let ghost = Reservation {
        id: "nobody".into(),
        day: DAY.into(),
        amounts: call(0, 0, 1),
        claim: None,
    };
    assert!(s.settle(&ghost, call(0, 0, 1)).is_err());
}

/// A store written by the previous schema (version 1: micro-USD only, the day's counters on
/// its row) opens and migrates: what it spent and what it holds carry over, its held
/// reservation settles into all four amounts, and new reservations carry all four.
fn an_old_schema_store_migrates(b: &Backend) {
    let (days, reservations, fk) = if b.postgres {
        (
            "lightsout_budget_days",
            "lightsout_budget_reservations",
            " REFERENCES lightsout_budget_days (day)",
        )
    } else {
        ("budget_days", "budget_reservations", "")
    };
    (b.raw)(&format!(
        "CREATE TABLE lightsout_schema (name TEXT PRIMARY KEY, version INTEGER NOT NULL);
         INSERT INTO lightsout_schema (name, version) VALUES ('budget', 1);
         CREATE TABLE {days} (
             day TEXT PRIMARY KEY,
             spent BIGINT NOT NULL DEFAULT 0,
             reserved BIGINT NOT NULL DEFAULT 0,
             open BIGINT NOT NULL DEFAULT 0
         );
         CREATE TABLE {reservations} (
             id TEXT PRIMARY KEY,
             day TEXT NOT NULL{fk},
             amount BIGINT NOT NULL,
             actual BIGINT
         );
         INSERT INTO {days} (day, spent, reserved, open) VALUES ('{DAY}', 250000, 600000, 1);
         INSERT INTO {reservations} (id, day, amount, actual) VALUES
             ('old/T0/1', '{DAY}', 250000, 250000), ('old/T1/1', '{DAY}', 600000, NULL);"
    ));
    let s = (b.budget)();
    let l = s.ledger(DAY).unwrap();
    assert_eq!(
        (l.spent, l.reserved, l.open),
        (usd(250_000), usd(600_000), 1)
    );
    let caps = DayCaps {
        micro_usd: Some(1_000_000),
        tokens: Some(1_000),
        ..DayCaps::default()
    };
    // The old held reservation still counts: 250k + 600k + 200k > 1M.
    assert!(matches!(
        s.reserve(DAY, "new/T2/1", None, call(0, 10, 200_000), &caps)
            .unwrap(),
        DayGrant::Refused { .. }
    ));
    let old = granted(
        s.reserve(DAY, "old/T1/1", None, DayAmounts::ZERO, &caps)
            .unwrap(),
    );
    assert_eq!((old.amounts, &old.claim), (usd(600_000), &None));
    let l = s.settle(&old, call(1_200, 900, 500_000)).unwrap();
    assert_eq!((l.spent, l.open), (call(1_200, 900, 750_000), 0));
    drop(s);
    // Opening again changes nothing; the new columns are in use.
    let s = (b.budget)();
    let r = granted(
        s.reserve(DAY, "new/T2/1", None, call(10, 100, 200_000), &caps)
            .unwrap(),
    );
    let DayGrant::Refused { exceeded, .. } = s
        .reserve(DAY, "new/T3/1", None, call(0, 1, 1), &caps)
        .unwrap()
    else {
        panic!("tokens: 900 spent + 100 held is the cap")
    };
    assert_eq!(exceeded.cap, DayCap::Tokens);
    s.release(&r).unwrap();
    assert_eq!(s.ledger(DAY).unwrap().spent, call(1_200, 900, 750_000));
}

both!(
    each_cap_is_refused_at_its_limit_and_named,
    concurrent_reservers_never_pass_any_cap,
    a_lost_claims_reservation_stops_counting,
    retried_calls_count_once,
    an_old_schema_store_migrates
);
