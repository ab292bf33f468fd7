//! Lessons from eval failures: dedup, counts, retirement, recurrence in context packs.

use crate::Fixture;
use lightsout_memory::{Error, Fingerprint, Kind, Memory, NewRecord, Status};

fn fp(req: &str, cat: &str) -> Fingerprint {
    Fingerprint {
        requirement: req.into(),
        category: cat.into(),
        detail: format!("{req} timed out waiting for the Slack twin"),
    }
}

fn failures_are_deduplicated_and_counted(fx: Fixture) {
    let Fixture { dir: _d, mem, .. } = fx;
    let a = mem.record_lesson(fp("REQ-1", "timeout")).unwrap();
    let b = mem.record_lesson(fp("REQ-1", "Timeout ")).unwrap();
    let c = mem.record_lesson(fp("REQ-1", "wrong-status")).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let l = mem.get(a).unwrap();
    assert_eq!(l.kind, Kind::Lesson);
    assert_eq!(l.lesson.as_ref().unwrap().failures, 2);
    assert!(l.context.contains("timed out"));
    assert!(matches!(
        mem.record_lesson(fp("", "x")),
        Err(Error::Invalid(_))
    ));
}

fn retired_after_n_green_runs_in_a_row_and_revived_by_a_new_failure(fx: Fixture) {
    let Fixture { dir: _d, mem, .. } = fx;
    let mem = Memory::new(mem.store()).with_retire_after(3);
    let id = mem.record_lesson(fp("REQ-2", "timeout")).unwrap();
    assert!(mem.record_green("REQ-2").unwrap().is_empty());
    assert!(mem.record_green("REQ-2").unwrap().is_empty());
    // A failure in between resets the streak.
    mem.record_lesson(fp("REQ-2", "timeout")).unwrap();
    assert!(mem.record_green("REQ-2").unwrap().is_empty());
    assert!(mem.record_green("REQ-2").unwrap().is_empty());
    assert_eq!(mem.record_green("REQ-2").unwrap(), [id]);
    let l = mem.get(id).unwrap();
    assert_eq!(l.status, Status::Deprecated);
    assert!(l.lesson.as_ref().unwrap().retired_at.is_some());
    assert!(
        mem.context_pack("REQ-2 timeout", &[], 1000)
            .unwrap()
            .items
            .is_empty()
    );
    // Green runs of other requirements do nothing; a new failure brings it back.
    assert!(mem.record_green("REQ-9").unwrap().is_empty());
    mem.record_lesson(fp("REQ-2", "timeout")).unwrap();
    let l = mem.get(id).unwrap();
    assert_eq!(l.status, Status::Accepted);
    assert_eq!(l.lesson.as_ref().unwrap().failures, 3);
    assert_eq!(l.lesson.as_ref().unwrap().green_streak, 0);
}

fn recurring_lessons_rank_higher_in_context_packs(fx: Fixture) {
    let Fixture { dir: _d, mem, .. } = fx;
    let once = mem.record_lesson(fp("REQ-3", "timeout")).unwrap();
    let often = mem.record_lesson(fp("REQ-4", "timeout")).unwrap();
    for _ in 0..6 {
        mem.record_lesson(fp("REQ-4", "timeout")).unwrap();
    }
    mem.add(NewRecord::decision("Unrelated", "Nothing about it."))
        .unwrap();
    let pack = mem.context_pack("fix the timeout", &[], 2000).unwrap();
    let ids: Vec<_> = pack.items.iter().map(|i| i.id).collect();
    assert_eq!(ids, [often, once]);
    assert!(
        pack.items[0].why.contains("recurring failure (7×)"),
        "{}",
        pack.items[0].why
    );
}

crate::both!(
    failures_are_deduplicated_and_counted,
    retired_after_n_green_runs_in_a_row_and_revived_by_a_new_failure,
    recurring_lessons_rank_higher_in_context_packs,
);
