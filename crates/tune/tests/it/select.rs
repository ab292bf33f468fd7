use lightsout_tune::config;
use lightsout_tune::record::parse_jsonl;
use lightsout_tune::rollup::rollup;
use lightsout_tune::select::{Bandit, Evidence, PickReason, RunExploration};
use lightsout_tune::show;
use lightsout_tune::state::TuningState;
use rand::SeedableRng as _;
use rand_chacha::ChaCha8Rng;

fn cfg(bounds_extra: &str) -> lightsout_tune::TuningConfig {
    config::load(&crate::toml_with("", bounds_extra))
        .unwrap()
        .unwrap()
}

fn ev(n: u32, passes: u32, usd: f64) -> Evidence {
    Evidence {
        first_attempts: n,
        first_passes: passes,
        median_usd: Some(usd),
    }
}

#[test]
fn untried_variants_are_tried_first_in_declaration_order() {
    let c = cfg("");
    let mut b = Bandit::new(&c);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut run = RunExploration::new(1.0, 10);
    let p = b.pick("code", &mut run, &mut rng);
    assert_eq!(
        (p.variant.as_str(), p.reason, p.explored),
        ("A", PickReason::Untried, false)
    );
    b.set_evidence("code", "A", ev(1, 1, 1.0));
    let p = b.pick("code", &mut run, &mut rng);
    assert_eq!(
        (p.variant.as_str(), p.reason, p.explored),
        ("B", PickReason::Untried, true)
    );
    assert_eq!(run.spent, 1);
}

#[test]
fn kinds_outside_the_bounds_keep_the_default_and_spend_nothing() {
    let c = cfg("");
    let b = Bandit::new(&c);
    let mut run = RunExploration::new(1.0, 10);
    let p = b.pick("docs", &mut run, &mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!((p.variant.as_str(), p.reason), ("A", PickReason::NotTuned));
    assert_eq!(run.spent, 0);
    assert!(
        b.promotion("docs", 100, &mut ChaCha8Rng::seed_from_u64(1))
            .is_none()
    );
}

#[test]
fn exploration_stops_at_the_run_allowance() {
    let c = cfg("");
    let mut b = Bandit::new(&c);
    // B is clearly better and feasible: every sample prefers it.
    b.set_evidence("code", "A", ev(400, 360, 1.0));
    b.set_evidence("code", "B", ev(400, 356, 0.3));
    b.set_evidence("code", "C", ev(400, 160, 0.1));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut run = RunExploration::new(0.3, 10);
    assert_eq!(run.allowed, 3);
    let picks: Vec<_> = (0..10)
        .map(|_| b.pick("code", &mut run, &mut rng))
        .collect();
    assert_eq!(picks.iter().filter(|p| p.explored).count(), 3);
    assert!(picks[..3].iter().all(|p| p.variant == "B"));
    assert!(
        picks[3..]
            .iter()
            .all(|p| p.variant == "A" && p.reason == PickReason::ExplorationSpent)
    );
    assert!(
        picks[5].explain().contains("exploration spent"),
        "{}",
        picks[5].explain()
    );
}

#[test]
fn a_variant_below_the_floor_is_benched_but_the_incumbent_never_is() {
    let c = cfg("bench_below = 0.5");
    let mut b = Bandit::new(&c);
    b.set_evidence("code", "A", ev(100, 10, 1.0));
    b.set_evidence("code", "B", ev(100, 90, 0.3));
    b.set_evidence("code", "C", ev(100, 30, 0.01));
    let arms = b.arms("code");
    let benched: Vec<_> = arms
        .iter()
        .filter(|a| a.benched)
        .map(|a| a.variant.as_str())
        .collect();
    assert_eq!(benched, ["C"]);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for _ in 0..200 {
        let p = b.pick("code", &mut RunExploration::new(1.0, 10), &mut rng);
        assert_ne!(p.variant, "C", "a benched variant is never picked");
        assert!(p.draws.iter().all(|d| d.variant != "C"));
    }
}

#[test]
fn an_infeasible_cheap_variant_is_not_picked_or_promoted() {
    let c = cfg("bench_below = 0.0");
    let mut b = Bandit::new(&c);
    // C is the cheapest per merged task (0.25 vs 0.35) but 50 points below A.
    b.set_evidence("code", "A", ev(200, 180, 1.0));
    b.set_evidence("code", "B", ev(200, 170, 0.3));
    b.set_evidence("code", "C", ev(200, 80, 0.1));
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let picks: Vec<_> = (0..200)
        .map(|_| {
            b.pick("code", &mut RunExploration::new(1.0, 10), &mut rng)
                .variant
        })
        .collect();
    assert!(!picks.iter().any(|p| p == "C"));
    let promo = b.promotion("code", 4000, &mut rng).unwrap();
    assert!(promo.p_best["C"] < 1e-12, "{promo:?}");
    assert_eq!(promo.leader, "B");
}

#[test]
fn promotion_needs_the_declared_confidence_and_enough_tasks() {
    let c = cfg("");
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut b = Bandit::new(&c);
    // Little evidence: B leads but is not sure to be within the margin.
    b.set_evidence("code", "A", ev(30, 27, 1.0));
    b.set_evidence("code", "B", ev(15, 12, 0.3));
    b.set_evidence("code", "C", ev(3, 1, 0.1));
    let p = b.promotion("code", 4000, &mut rng).unwrap();
    assert!(p.p_best["B"] > 0.2 && p.p_best["B"] < 0.95, "{p:?}");
    assert_eq!(p.promote, None);
    // Much evidence: promoted.
    b.set_evidence("code", "A", ev(300, 270, 1.0));
    b.set_evidence("code", "B", ev(400, 348, 0.3));
    let p = b.promotion("code", 4000, &mut rng).unwrap();
    assert!(p.p_best["B"] >= 0.95, "{p:?}");
    assert_eq!(p.promote.as_deref(), Some("B"));
    let total: f64 = p.p_best.values().sum();
    assert!((total - 1.0).abs() < 1e-9);
    // The same probability with too few of B's tasks (min_tasks = 20) is not enough.
    let c20 = config::load(&crate::toml_with("[tuning.objective]\nmin_tasks = 500", ""))
        .unwrap()
        .unwrap();
    let mut b20 = Bandit::new(&c20);
    b20.set_evidence("code", "A", ev(300, 270, 1.0));
    b20.set_evidence("code", "B", ev(400, 348, 0.3));
    b20.set_evidence("code", "C", ev(3, 1, 0.1));
    let p = b20.promotion("code", 4000, &mut rng).unwrap();
    assert_eq!((p.leader.as_str(), p.promote), ("B", None));
}

#[test]
fn picks_are_reproducible_from_the_seed() {
    let c = cfg("");
    let mut b = Bandit::new(&c);
    b.set_evidence("code", "A", ev(20, 17, 1.0));
    b.set_evidence("code", "B", ev(20, 16, 0.3));
    b.set_evidence("code", "C", ev(20, 9, 0.1));
    let run = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut r = RunExploration::new(1.0, 50);
        (0..50)
            .map(|_| b.pick("code", &mut r, &mut rng).variant)
            .collect::<Vec<_>>()
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

#[test]
fn only_declared_eligible_variants_can_become_the_default() {
    let c = cfg("");
    let mut b = Bandit::new(&c);
    b.set_default("code", "undeclared-lax-variant");
    assert_eq!(b.default_for("code"), "A");
    b.set_default("code", "B");
    assert_eq!(b.default_for("code"), "B");
}

#[test]
fn show_rolls_metrics_into_posteriors_and_a_next_pick() {
    use std::fmt::Write as _;
    let config = cfg("");
    let mut lines = String::new();
    for (i, (variant, passed, usd)) in [
        ("A", true, 1_000_000),
        ("A", false, 1_000_000),
        ("B", true, 300_000),
        ("C", false, 100_000),
    ]
    .into_iter()
    .enumerate()
    {
        let _ = writeln!(
            lines,
            r#"{{"run_id":"r1","task_id":"T{i}","attempt":1,"agent":"replay","usage":{{"input_tokens":10,"output_tokens":0,"cost_usd":{usd},"wall_ms":5}},"passed":{passed},"task_kind":"code","variant":"{variant}"}}"#
        );
    }
    // A line of an undeclared agent does not enter the bandit.
    lines.push_str(
        r#"{"run_id":"r0","task_id":"T9","attempt":1,"agent":"old","usage":{"input_tokens":0,"output_tokens":0,"wall_ms":1},"passed":true}"#,
    );
    let (recs, diags) = parse_jsonl(&lines);
    assert!(diags.is_empty());
    let r = rollup(&recs);
    let v = show::view(&config, &r, &TuningState::default());
    assert_eq!(v.kinds.len(), 1);
    let k = &v.kinds[0];
    let a = &k.arms[0];
    assert_eq!((a.variant.as_str(), a.alpha, a.beta), ("A", 2.0, 2.0));
    assert_eq!(k.promotion.default, "A");
    assert_eq!(k.promotion.promote, None);
    assert_eq!(
        show::view(&config, &r, &TuningState::default()),
        v,
        "same evidence, same view"
    );
    let text = show::render_text(&v, &config);
    assert!(text.contains("code (default A):"), "{text}");
    assert!(text.contains("next pick: code: "), "{text}");
    assert!(text.contains("promotion: keep A"), "{text}");
}
