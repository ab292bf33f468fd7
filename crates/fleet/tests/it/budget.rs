//! One suite for [`BudgetStore`], called once per backend.

use lightsout_fleet::budget::{BudgetStore, DayLedger, PgBudget, Reservation, SqliteBudget};
use lightsout_fleet::testing::fresh_database;
use std::sync::{Arc, Barrier};

type Open = Arc<dyn Fn() -> Box<dyn BudgetStore> + Send + Sync>;

fn sqlite() -> (tempfile::TempDir, Open) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let open: Open = Arc::new(move || Box::new(SqliteBudget::open(&path).unwrap()));
    (dir, open)
}

fn postgres() -> Open {
    let url = fresh_database("budget");
    Arc::new(move || Box::new(PgBudget::connect(&url, 2).unwrap()))
}

const DAY: &str = "2026-12-07";

/// 16 workers (each its own connection) reserve at once, each a fixed amount again and again
/// until refused: the reservations granted never add up past the cap, the ledger holds
/// exactly their sum, and what is left is less than the smallest amount (refusals were due).
/// Settling them (half at half their amount, half released) moves the cost to `spent`, frees
/// the rest, and the freed budget can be reserved again.
fn concurrent_reservers_never_exceed_the_cap(open: &Open) {
    const WORKERS: usize = 16;
    const CAP: u64 = 5_000_000; // 5 USD
    let start = Arc::new(Barrier::new(WORKERS));
    let threads: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (open, start) = (open.clone(), start.clone());
            std::thread::spawn(move || {
                let store = open();
                let amount = 40_000 + 7_919 * w as u64;
                start.wait();
                let mut mine = Vec::new();
                while let Some(r) = store
                    .reserve(DAY, &format!("w{w}/{}", mine.len()), amount, CAP)
                    .unwrap()
                {
                    mine.push(r);
                }
                (amount, mine)
            })
        })
        .collect();
    let got: Vec<(u64, Vec<Reservation>)> =
        threads.into_iter().map(|h| h.join().unwrap()).collect();
    let granted: u64 = got.iter().flat_map(|g| &g.1).map(|r| r.micro_usd).sum();
    let smallest = got.iter().map(|g| g.0).min().unwrap();
    let store = open();
    let l = store.ledger(DAY).unwrap();
    assert!(granted <= CAP, "{granted} reserved against a cap of {CAP}");
    assert_eq!(l.reserved_micro_usd, granted);
    assert_eq!(l.spent_micro_usd, 0);
    assert!(
        CAP - granted < smallest,
        "{} left unreserved, yet a reservation of {smallest} was refused",
        CAP - granted
    );
    let all: Vec<&Reservation> = got.iter().flat_map(|g| &g.1).collect();
    assert_eq!(l.open, all.len() as u64);
    let mut spent = 0;
    for (i, r) in all.iter().enumerate() {
        if i % 2 == 0 {
            store.settle(r, r.micro_usd / 2).unwrap();
            spent += r.micro_usd / 2;
        } else {
            store.release(r).unwrap();
        }
    }
    let l = store.ledger(DAY).unwrap();
    assert_eq!(
        (l.spent_micro_usd, l.reserved_micro_usd, l.open),
        (spent, 0, 0)
    );
    let again = store.reserve(DAY, "after", CAP - spent, CAP).unwrap();
    assert!(again.is_some(), "the freed budget is reservable");
    assert_eq!(store.reserve(DAY, "over", 1, CAP).unwrap(), None);
}

/// Retried calls count once: reserving a known id returns it as granted (even when the cap
/// would now refuse it), settling twice settles once; a cost past the reservation is
/// spent all the same and stops the next reservation; another day has a ledger of its own;
/// settling an unknown reservation is an error.
fn retried_calls_count_once(open: &Open) {
    let s = open();
    let cap = 1_000;
    let r = s.reserve(DAY, "run/T1/1", 600, cap).unwrap().unwrap();
    assert_eq!(
        s.reserve(DAY, "run/T1/1", 600, cap).unwrap(),
        Some(r.clone())
    );
    assert_eq!(s.ledger(DAY).unwrap().reserved_micro_usd, 600);
    assert_eq!(s.reserve(DAY, "run/T2/1", 600, cap).unwrap(), None);
    let l = s.settle(&r, 900).unwrap();
    assert_eq!((l.spent_micro_usd, l.reserved_micro_usd), (900, 0));
    assert_eq!(
        s.settle(&r, 5).unwrap().spent_micro_usd,
        900,
        "first settlement stands"
    );
    assert_eq!(s.reserve(DAY, "run/T2/1", 101, cap).unwrap(), None);
    assert!(s.reserve(DAY, "run/T2/1", 100, cap).unwrap().is_some());
    assert!(
        s.reserve("2026-12-08", "run/T3/1", 1_000, cap)
            .unwrap()
            .is_some()
    );
    assert_eq!(s.ledger("2026-12-09").unwrap(), DayLedger::default());
    let ghost = Reservation {
        id: "nobody".into(),
        day: DAY.into(),
        micro_usd: 1,
    };
    assert!(s.settle(&ghost, 1).is_err());
}

both!(
    concurrent_reservers_never_exceed_the_cap,
    retried_calls_count_once
);
