//! Search and context packs: ranking signals, in-force filtering, the token budget.

use crate::{Fixture, decision_at};
use lightsout_memory::retrieve::estimate_tokens;
use lightsout_memory::{Filter, Memory, NewRecord, PackOptions, Status, now};
use proptest::prelude::*;

fn scope_matching_lifts_a_record_and_says_why(fx: Fixture) {
    let Fixture { dir: _d, mem, .. } = fx;
    let mut api = NewRecord::decision(
        "Errors are JSON problem details",
        "Use RFC 9457 bodies for errors.",
    );
    api.scope.paths.push("src/api/**".into());
    let api = mem.add(api).unwrap();
    let other = mem
        .add(NewRecord::decision(
            "Errors in the CLI are plain text errors",
            "Print errors errors errors.",
        ))
        .unwrap();
    let pack = mem
        .context_pack("return errors", &["src/api/users.rs".into()], 1000)
        .unwrap();
    let ids: Vec<_> = pack.items.iter().map(|i| i.id).collect();
    assert_eq!(ids, [api, other]);
    assert!(
        pack.items[0]
            .why
            .contains("scope `src/api/**` covers `src/api/users.rs`")
    );
    assert!(pack.markdown.contains(&format!(
        "### {api} · Errors are JSON problem details (decision)"
    )));
    assert!(pack.markdown.contains("Why included: matches \"errors\""));
    // A scope-only record (no text match) still comes in through the scope.
    let pack = mem
        .context_pack("zzz unrelated words", &["src/api/x.rs".into()], 1000)
        .unwrap();
    assert_eq!(pack.items.len(), 1);
    assert_eq!(pack.items[0].id, api);
}

fn only_records_in_force_unless_asked(fx: Fixture) {
    let Fixture { dir: _d, mem, .. } = fx;
    let old = mem
        .add(decision_at("Cache with redis", "Use redis.", "2024-01-01"))
        .unwrap();
    mem.supersede(
        old,
        decision_at("Cache in process", "No redis.", "2024-02-01"),
    )
    .unwrap();
    let mut proposed = NewRecord::decision("Cache with memcached", "Maybe memcached.");
    proposed.status = Status::Proposed;
    mem.add(proposed).unwrap();
    let pack = mem
        .context_pack("cache redis memcached", &[], 1000)
        .unwrap();
    let titles: Vec<_> = pack.items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(titles, ["Cache in process"]);
    // Asked otherwise: every current version, or as of an earlier time.
    let all = mem
        .search("cache", Filter::Current { statuses: vec![] }, 10)
        .unwrap();
    assert_eq!(all.len(), 3);
    let then = mem
        .context_pack_with(
            "cache",
            &[],
            &PackOptions {
                at: Some(lightsout_memory::parse_time("2024-01-15").unwrap()),
                ..PackOptions::default()
            },
        )
        .unwrap();
    assert_eq!(then.items[0].title, "Cache with redis");
    assert!(now() > lightsout_memory::parse_time("2024-02-01").unwrap());
}

fn context_pack_respects_its_budget(fx: Fixture) {
    let Fixture { dir: _d, mem, .. } = fx;
    for i in 0..40 {
        let mut d = NewRecord::decision(
            format!("Storage rule {i}"),
            "Keep storage access behind the Store trait; ".repeat(i % 7 + 1),
        );
        d.consequences = "More code in the store module. ".repeat(i % 5 + 1);
        mem.add(d).unwrap();
    }
    for budget in [0, 10, 60, 150, 400, 2000] {
        let pack = mem
            .context_pack("storage store trait", &[], budget)
            .unwrap();
        assert_eq!(pack.tokens, estimate_tokens(&pack.markdown));
        assert!(pack.tokens <= budget, "budget {budget}: {}", pack.tokens);
        assert_eq!(pack.items.len() + pack.left_out, pack.considered);
        if budget >= 150 {
            assert!(
                !pack.items.is_empty(),
                "budget {budget} fits at least one record"
            );
        }
    }
    assert!(
        mem.context_pack("storage", &[], 0)
            .unwrap()
            .markdown
            .is_empty()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn pack_never_exceeds_budget(
        texts in proptest::collection::vec("[a-z ]{0,300}", 1..12),
        budget in 0usize..600,
        query in "[a-z ]{0,40}",
    ) {
        let mem = Memory::open_in_memory().unwrap();
        for (i, t) in texts.iter().enumerate() {
            mem.add(NewRecord::decision(format!("r{i} {}", t.chars().take(20).collect::<String>()), t.clone())).unwrap();
        }
        let pack = mem.context_pack(&query, &[], budget).unwrap();
        prop_assert!(pack.tokens <= budget);
        prop_assert_eq!(pack.tokens, estimate_tokens(&pack.markdown));
    }
}

fn lessons_of_the_tasks_requirements_come_in_whatever_its_words(fx: Fixture) {
    let Fixture { dir: _d, mem, .. } = fx;
    let fp = |req: &str| lightsout_memory::model::Fingerprint {
        requirement: req.into(),
        category: "holdout: wrong status".into(),
        detail: format!("{req}: 1 of 1 trials failed: wrong status"),
    };
    let ours = mem.record_lesson(fp("REQ-1")).unwrap();
    mem.record_lesson(fp("REQ-2")).unwrap();
    let opts = PackOptions {
        requirements: vec!["REQ-1".into()],
        ..PackOptions::default()
    };
    let pack = mem
        .context_pack_with("zzz unrelated words", &[], &opts)
        .unwrap();
    let ids: Vec<_> = pack.items.iter().map(|i| i.id).collect();
    assert_eq!(ids, [ours]);
    assert!(
        pack.items[0].why.contains("a lesson of REQ-1"),
        "{:?}",
        pack.items[0]
    );
    // Without the requirement, the words alone do not find it.
    let pack = mem.context_pack("zzz unrelated words", &[], 1000).unwrap();
    assert!(pack.items.is_empty());
}

crate::both!(
    scope_matching_lifts_a_record_and_says_why,
    only_records_in_force_unless_asked,
    context_pack_respects_its_budget,
    lessons_of_the_tasks_requirements_come_in_whatever_its_words,
);
