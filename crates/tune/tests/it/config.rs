use lightsout_tune::config::{self, PROTECTED, VariantStatus};

fn errors(text: &str) -> Vec<String> {
    let (c, d) = config::parse(text);
    assert!(c.is_none() || d.is_empty());
    d.iter().map(ToString::to_string).collect()
}

#[test]
fn a_full_declaration_reads_with_defaults() {
    let cfg = config::load(&crate::toml_with("", "")).unwrap().unwrap();
    assert_eq!(cfg.incumbent, "A");
    assert_eq!(cfg.variants.len(), 3);
    assert_eq!(
        cfg.variant("B").unwrap().prompt.as_deref(),
        Some("prompts/b.md".as_ref())
    );
    assert!((cfg.objective.margin - 0.10).abs() < 1e-12);
    assert!((cfg.objective.confidence - 0.95).abs() < 1e-12);
    assert!((cfg.bounds.max_exploration - 0.3).abs() < 1e-12);
    assert!(cfg.tunes("code") && !cfg.tunes("docs"));
    assert!(!cfg.auto_accept);
}

#[test]
fn no_tuning_table_is_no_config() {
    assert_eq!(config::load("[run]\njobs = 1\n").unwrap(), None);
}

/// The tuner can reach nothing that keeps the factory honest: every such key, at the top of
/// `[tuning]`, in its objective, its bounds or a variant, is refused with the reason.
#[test]
fn holdout_gate_budget_and_fence_keys_are_refused_everywhere_in_tuning() {
    let attempts = [
        ("holdout = { trials = 1 }", ""),
        ("gate = { min_satisfaction = 0.1 }", ""),
        ("budget = { usd = 1000.0 }", ""),
        ("fence = { network = true }", ""),
        ("policy = { network = true }", ""),
        ("env = { allow = [\"*\"] }", ""),
        ("limits = { wall_ms = 99999999 }", ""),
        ("", "budget = 10"),
        ("", "fence = \"off\""),
        ("", "threshold = 0.1"),
    ];
    for (top, bounds) in attempts {
        let errs = errors(&crate::toml_with(top, bounds));
        assert_eq!(errs.len(), 1, "{top} {bounds}: {errs:?}");
        assert!(errs[0].contains("[tuning] cannot reach"), "{errs:?}");
        assert!(errs[0].starts_with("lightsout.toml:"), "a place: {errs:?}");
    }
    // In an objective table and in a variant too.
    let objective = crate::toml_with("[tuning.objective]\nholdout = \"../h\"", "");
    assert!(errors(&objective)[0].contains("cannot reach `holdout`"));
    let variant = crate::toml_with("", "").replace(
        "model = \"tiny\"",
        "model = \"tiny\"\nbudget = { usd = 50.0 }",
    );
    assert!(errors(&variant)[0].contains("cannot reach `budget`"));
    // Every name on the list is refused, whatever its value.
    for key in PROTECTED {
        let errs = errors(&crate::toml_with(&format!("{key} = 1"), ""));
        assert!(
            errs[0].contains(&format!("cannot reach `{key}`")),
            "{key}: {errs:?}"
        );
    }
}

#[test]
fn unknown_keys_name_the_nearest_valid_one_and_the_line() {
    let errs = errors(&crate::toml_with("auto_acept = true", ""));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("unknown key `auto_acept`"), "{errs:?}");
    assert!(errs[0].contains("did you mean `auto_accept`?"), "{errs:?}");
    assert!(errs[0].starts_with("lightsout.toml:14:"), "{errs:?}");
    let errs = errors(&crate::toml_with("", "max_exploraton = 0.5"));
    assert!(
        errs[0].contains("did you mean `max_exploration`?"),
        "{errs:?}"
    );
}

#[test]
fn semantic_problems_come_back_together() {
    let text = crate::toml_with("", "bench_below = 1.5")
        .replace("incumbent = \"A\"", "incumbent = \"AA\"")
        .replace("name = \"C\"", "name = \"B\"")
        .replace(
            "model = \"big\"",
            "model = \"big\"\n[tuning.objective]\nconfidence = 0.2",
        )
        .replace(
            "[[tuning.variant]]\nname = \"A\"\nagent = \"x\"",
            "[[tuning.variant]]\nname = \"A\"\nagent = \"y\"",
        );
    let errs = errors(&text);
    let all = errs.join("\n");
    assert!(
        all.contains("incumbent = \"AA\" names no [[tuning.variant]]"),
        "{all}"
    );
    assert!(all.contains("name `B` is declared twice"), "{all}");
    assert!(
        all.contains("bounds.bench_below = 1.5 is out of range"),
        "{all}"
    );
    assert!(
        all.contains("objective.confidence = 0.2 is out of range"),
        "{all}"
    );
    assert!(
        all.contains("names agent `y`, which has no [agent.y] section"),
        "{all}"
    );
    assert_eq!(errs.len(), 5, "{all}");
}

#[test]
fn proposed_variants_wait_for_a_human_unless_auto_accept() {
    let text = crate::toml_with("", "").replace(
        "model = \"tiny\"",
        "model = \"tiny\"\nstatus = \"proposed\"",
    );
    let cfg = config::load(&text).unwrap().unwrap();
    assert_eq!(cfg.variant("C").unwrap().status, VariantStatus::Proposed);
    let names: Vec<_> = cfg.eligible().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["A", "B"]);
    let text = text.replace("seed = 7", "seed = 7\nauto_accept = true");
    let cfg = config::load(&text).unwrap().unwrap();
    assert_eq!(cfg.eligible().count(), 3);
    // The incumbent must be one a human made ready.
    let text = crate::toml_with("", "")
        .replace("model = \"big\"", "model = \"big\"\nstatus = \"proposed\"");
    assert!(errors(&text)[0].contains("incumbent `A` is only proposed"));
}
