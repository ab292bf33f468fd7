//! One suite for [`BudgetStore`], called once per backend, with the claim store of the same
//! database (a reservation tied to a claim is held while that claim is live, and presumed spent
//! at its reserved amounts once the claim is lost before it settled).

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
                presumed_spent: DayAmounts::ZERO,
                lost: 0,
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

/// The four caps, all set, one of them tight; a reservation of 60% of every cap tied to a
/// claim that is lost (its task settled under it) before the reservation settles, as the race
/// starts. 16 workers (each its own connections) claim a task each and reserve at once, tied to
/// their claims, amounts of their own again and again until refused: for each tight cap in
/// turn, no cap is ever passed counting the lost reservation, the ledger holds exactly the sum
/// granted and reports the lost reservation as presumed spent, every worker was refused by the
/// tight cap and only when it was due, and the tight cap was used to within the smallest call.
/// The lost reservation still counts once the others are released.
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
        // The lost reservation: held while its claim is live, presumed spent once the claim
        // is settled before it.
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
        let start = Arc::new(Barrier::new(WORKERS + 1));
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
        // The dead claim's task is settled while the workers reserve: its reservation goes
        // from held to presumed spent in the middle of the race.
        start.wait();
        claims.complete(&dead).unwrap();
        let got: Vec<(Claim, Vec<Reservation>, DayCap)> =
            threads.into_iter().map(|h| h.join().unwrap()).collect();
        let sum = got
            .iter()
            .flat_map(|g| &g.1)
            .fold(DayAmounts::ZERO, |a, r| a.saturating_add(r.amounts));
        let l = store.ledger(&day).unwrap();
        for cap in DayCap::ALL {
            let used = sum.saturating_add(big).get(cap);
            assert!(
                used <= caps.get(cap).unwrap(),
                "{cap}: {used} reserved and presumed spent against a cap of {:?}",
                caps.get(cap)
            );
        }
        assert_eq!(
            (l.reserved, l.open, l.presumed_spent, l.lost),
            (sum, got.iter().map(|g| g.1.len() as u64).sum(), big, 1)
        );
        for (w, (_, _, refused_by)) in got.iter().enumerate() {
            assert_eq!(*refused_by, tight, "worker {w}");
            assert!(
                l.check(&caps, &amount(w)).is_some(),
                "worker {w} was refused in vain"
            );
        }
        let smallest = (0..WORKERS).map(|w| amount(w).get(tight)).min().unwrap();
        let left = limit - sum.get(tight) - big.get(tight);
        assert!(
            left < smallest,
            "{tight}: {left} left unreserved, yet a call of {smallest} was refused"
        );
        for (c, mine, _) in &got {
            for r in mine {
                store.release(r).unwrap();
            }
            claims.complete(c).unwrap();
        }
        let l = store.ledger(&day).unwrap();
        assert_eq!(
            (l.open, l.reserved, l.spent, l.presumed_spent, l.lost),
            (0, DayAmounts::ZERO, DayAmounts::ZERO, big, 1),
            "the lost reservation counts for the rest of its day"
        );
    }
}

/// For each cap alone: a reservation tied to a claim is held while the claim is live; once the
/// claim is lost before the reservation settles (its worker killed mid-call: the lease lapses),
/// the reservation is presumed spent at its reserved amounts and still counts against the cap,
/// the ledger reporting it apart from what is held. The old claim reserves nothing more; the
/// worker that claims the task again reserves only what remains (one unit more is refused, and
/// the refusal's ledger names what is presumed spent); the old worker, cut off rather than
/// killed, settles late, and its actual amounts replace the presumed ones (once: the first
/// settlement stands), which frees the difference; the new holder's task settled before its
/// reservations (it died between the two) leaves them presumed spent too.
fn a_lost_claims_reservation_counts_as_spent(b: &Backend) {
    let (s, claims) = ((b.budget)(), (b.claims)());
    for (i, cap) in DayCap::ALL.into_iter().enumerate() {
        let case = LostCase::new(i, cap);
        let (ca, ra) = a_claim_lost_mid_call_is_presumed_spent(&*s, &*claims, &case);
        let (cc, rc) = the_next_holder_reserves_only_what_remains(&*s, &*claims, &case, &ca);
        a_late_settlement_replaces_what_was_presumed(&*s, &*claims, &case, &ra, &cc, &rc);
    }
}

/// One cap of [`a_lost_claims_reservation_counts_as_spent`]: its day, limit and run, and
/// six tenths (`big`), four tenths (`rest`) and two tenths (`late`) of each limit, in every
/// unit; `over` is `rest` and one unit more of the cap.
struct LostCase {
    cap: DayCap,
    day: String,
    limit: u64,
    caps: DayCaps,
    run: String,
    big: DayAmounts,
    rest: DayAmounts,
    late: DayAmounts,
    over: DayAmounts,
}

impl LostCase {
    fn new(i: usize, cap: DayCap) -> Self {
        let limit = [5, 1_000, 1_000, 1_000_000][i];
        let rest = DayAmounts {
            attempts: 2,
            wall_ms: 400,
            tokens: 400,
            micro_usd: 400_000,
        };
        let mut over = rest;
        match cap {
            DayCap::Attempts => over.attempts += 1,
            DayCap::WallMs => over.wall_ms += 1,
            DayCap::Tokens => over.tokens += 1,
            DayCap::Usd => over.micro_usd += 1,
        }
        Self {
            cap,
            day: format!("2026-10-0{i}"),
            limit,
            caps: only(cap, limit),
            run: format!("lost-{i}"),
            big: DayAmounts {
                attempts: 3,
                wall_ms: 600,
                tokens: 600,
                micro_usd: 600_000,
            },
            rest,
            late: DayAmounts {
                attempts: 1,
                wall_ms: 200,
                tokens: 200,
                micro_usd: 200_000,
            },
            over,
        }
    }
}

/// a's reservation is held while its claim is live; a is killed mid-call (its lease lapses)
/// and the reservation is presumed spent; the old claim reserves nothing more.
fn a_claim_lost_mid_call_is_presumed_spent(
    s: &dyn BudgetStore,
    claims: &dyn ClaimStore,
    c: &LostCase,
) -> (Claim, Reservation) {
    let (cap, day, caps, run, big) = (c.cap, &c.day, &c.caps, &c.run, c.big);
    claims.enqueue(run, &["A".into()]).unwrap();
    let ca = claims.claim("a", LONG).unwrap().unwrap();
    let ka = ClaimKey::from(&ca);
    let ra = granted(
        s.reserve(day, &format!("{run}/a/1"), Some(&ka), big, caps)
            .unwrap(),
    );
    assert_eq!(ra.claim.as_ref(), Some(&ka));
    let l = s.ledger(day).unwrap();
    assert_eq!(
        (l.reserved, l.open, l.presumed_spent, l.lost),
        (big, 1, DayAmounts::ZERO, 0),
        "{cap}: a live claim's reservation is held"
    );
    // a is killed mid-call: its lease lapses (a heartbeat of 0 ms, so no sleeping).
    claims.heartbeat(&ca, Duration::ZERO).unwrap();
    assert_eq!(
        s.ledger(day).unwrap(),
        DayLedger {
            spent: DayAmounts::ZERO,
            reserved: DayAmounts::ZERO,
            open: 0,
            presumed_spent: big,
            lost: 1,
        },
        "{cap}: a lost claim's reservation is presumed spent"
    );
    assert_stale(s.reserve(day, &format!("{run}/a/2"), Some(&ka), c.rest, caps));
    (ca, ra)
}

/// c claims A again, under a greater token: it may reserve only what remains (one unit more
/// is refused, and the refusal's ledger names what is presumed spent).
fn the_next_holder_reserves_only_what_remains(
    s: &dyn BudgetStore,
    claims: &dyn ClaimStore,
    c: &LostCase,
    ca: &Claim,
) -> (Claim, Reservation) {
    let (cap, day, caps, run, limit) = (c.cap, &c.day, &c.caps, &c.run, c.limit);
    let cc = claims.claim("c", LONG).unwrap().unwrap();
    assert_eq!((cc.task.as_str(), cc.token > ca.token), ("A", true));
    let kc = ClaimKey::from(&cc);
    let DayGrant::Refused {
        exceeded, ledger, ..
    } = s
        .reserve(day, &format!("{run}/c/1"), Some(&kc), c.over, caps)
        .unwrap()
    else {
        panic!("{cap}: the lost reservation no longer counts")
    };
    assert_eq!(
        (
            exceeded.cap,
            exceeded.limit,
            exceeded.used,
            exceeded.requested
        ),
        (cap, limit, c.big.get(cap), c.over.get(cap)),
        "{cap}"
    );
    assert_eq!((ledger.presumed_spent, ledger.lost), (c.big, 1), "{cap}");
    assert!(
        ledger.to_string().contains(
            "presumed spent by 1 lost claim (attempts 3, wall time 600 ms, tokens 600, usd \
             $0.600000)"
        ),
        "{ledger}"
    );
    let rc = granted(
        s.reserve(day, &format!("{run}/c/1"), Some(&kc), c.rest, caps)
            .unwrap(),
    );
    let DayGrant::Refused { exceeded, .. } = s
        .reserve(
            day,
            &format!("{run}/c/2"),
            Some(&kc),
            DayAmounts::ZERO,
            caps,
        )
        .unwrap()
    else {
        panic!("{cap}: held and presumed spent fill the cap")
    };
    assert_eq!((exceeded.cap, exceeded.used), (cap, limit));
    (cc, rc)
}

/// a was cut off, not killed: its late settlement replaces the presumed amounts (once: the
/// first settlement stands), which frees the difference; c's task settled before its
/// reservations (it died between the two) leaves them presumed spent too.
fn a_late_settlement_replaces_what_was_presumed(
    s: &dyn BudgetStore,
    claims: &dyn ClaimStore,
    c: &LostCase,
    ra: &Reservation,
    cc: &Claim,
    rc: &Reservation,
) {
    let (cap, day, caps, run, limit) = (c.cap, &c.day, &c.caps, &c.run, c.limit);
    let (rest, late) = (c.rest, c.late);
    let kc = ClaimKey::from(cc);
    let l = s.settle(ra, late).unwrap();
    assert_eq!(
        (l.spent, l.presumed_spent, l.lost, l.reserved, l.open),
        (late, DayAmounts::ZERO, 0, rest, 1),
        "{cap}"
    );
    assert_eq!(
        s.settle(ra, c.big).unwrap().spent,
        late,
        "{cap}: the first settlement stands"
    );
    // What the late settlement freed (big - late = rest) can be reserved again, no more.
    let DayGrant::Refused { .. } = s
        .reserve(day, &format!("{run}/c/2"), Some(&kc), c.over, caps)
        .unwrap()
    else {
        panic!("{cap}: more than the late settlement freed was granted")
    };
    let rc2 = granted(
        s.reserve(day, &format!("{run}/c/2"), Some(&kc), rest, caps)
            .unwrap(),
    );
    // c's task is settled before its reservations (c died between the two): they are
    // presumed spent too, and the day stays full.
    claims.complete(cc).unwrap();
    let l = s.ledger(day).unwrap();
    assert_eq!(
        (l.spent, l.reserved, l.open, l.presumed_spent, l.lost),
        (late, DayAmounts::ZERO, 0, rest.saturating_add(rest), 2),
        "{cap}"
    );
    assert_eq!(l.committed().get(cap), limit, "{cap}");
    assert!(l.check(caps, &DayAmounts::ZERO).is_some(), "{cap}");
    // Late settlements of both: what they used is spent, nothing is presumed.
    s.settle(rc, late).unwrap();
    let l = s.release(&rc2).unwrap();
    assert_eq!(
        (l.spent, l.presumed_spent, l.lost),
        (late.saturating_add(late), DayAmounts::ZERO, 0),
        "{cap}"
    );
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
    a_lost_claims_reservation_counts_as_spent,
    retried_calls_count_once,
    an_old_schema_store_migrates
);
