//! One test per rule: a minimal ready spec, changed in one place, must give that code.

use super::{codes, run, run_pedantic};
use lightsout_spec::{CheckOptions, Readiness, Severity, check, parse};

const BASE: &str = "---
id: ping
title: Ping
kind: feature
version: 1
status: ready
---
# Ping

## Intent
Answer health probes.

## Users
- **Operator**: probes the service.

## Inputs
`GET /ping`.

## Outputs
`200 pong`.

## Behaviour

### REQ-1: Answer a probe
When a probe arrives, the service SHALL answer 200 with `pong`.

#### Scenario: probe
- **GIVEN** the service runs
- **WHEN** an operator sends `GET /ping`
- **THEN** the status is 200

## Anti-spec
- ANTI-1: The service MUST NOT answer a probe with 5xx; see the gate.

## Constraints
- CON-1: p99 latency of `GET /ping` is below 5 ms.

## Verification gate
- Every scenario has a Wilson lower bound of at least 0.7 over 10 trials.
- ANTI-1 is checked by a holdout scenario.

## Glossary
- **probe**: one `GET /ping` request.
- **service**: the HTTP server.
";

fn with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    BASE.replacen(from, to, 1)
}

#[test]
fn base_spec_is_ready_even_under_strict() {
    let (spec, d) = run(BASE);
    assert!(d.is_empty(), "{d:#?}");
    assert_eq!(
        spec.requirements[0].statements[0].system.as_deref(),
        Some("service")
    );
    let r = Readiness::from_diagnostics(&d, true);
    assert!(r.ready);
    assert!((r.score - 1.0).abs() < f64::EPSILON);
}

#[test]
fn missing_required_section() {
    let (_, d) = run(&with("## Users\n- **Operator**: probes the service.\n", ""));
    assert_eq!(codes(&d), ["LS101"]);
    assert!(d[0].message.contains("## Users"));
}

#[test]
fn not_applicable_section_is_not_missing_nor_empty() {
    let (spec, d) = run(&with("`GET /ping`.", "N/A: probes carry no input"));
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(
        spec.sections[2].not_applicable.as_deref(),
        Some("probes carry no input")
    );
}

#[test]
fn empty_section_is_a_warning() {
    let (_, d) = run(&with("`200 pong`.", ""));
    assert_eq!(codes(&d), ["LS107"]);
    assert_eq!(d[0].severity, Severity::Warning);
}

#[test]
fn requirement_without_shall() {
    let (_, d) = run(&with("the service SHALL answer", "the service answers"));
    assert_eq!(codes(&d), ["LS201"]);
}

#[test]
fn requirement_without_scenario() {
    let src = with(
        "#### Scenario: probe\n- **GIVEN** the service runs\n- **WHEN** an operator sends `GET /ping`\n- **THEN** the status is 200\n",
        "",
    );
    let (_, d) = run(&src);
    assert!(codes(&d).contains(&"LS102"), "{d:?}");
}

#[test]
fn holdout_coverage_when_known() {
    let (spec, _) = parse(BASE.as_bytes(), None, None);
    let opts = CheckOptions {
        holdout: Some(std::collections::BTreeSet::new()),
        ..CheckOptions::default()
    };
    let d = check(&spec, BASE, &opts);
    assert_eq!(codes(&d), ["LS103"]);
    let opts = CheckOptions {
        holdout: Some(["REQ-1".to_owned()].into()),
        ..CheckOptions::default()
    };
    assert!(check(&spec, BASE, &opts).is_empty());
}

#[test]
fn weak_word_severity_depends_on_the_section() {
    let (_, d) = run_pedantic(&with(
        "the service SHALL answer 200",
        "the service SHALL quickly answer 200",
    ));
    assert_eq!(codes(&d), ["LS202"]);
    assert_eq!(d[0].severity, Severity::Error);
    // The caret is on the word itself.
    let src = with(
        "the service SHALL answer 200",
        "the service SHALL quickly answer 200",
    );
    assert_eq!(&src[d[0].span.start..d[0].span.end], "quickly");
    let (_, d) = run_pedantic(&with(
        "MUST NOT answer a probe",
        "MUST NOT easily answer a probe",
    ));
    assert_eq!(codes(&d), ["LS202"]);
    assert_eq!(d[0].severity, Severity::Warning);
    let (_, d) = run_pedantic(&with(
        "## Intent\nAnswer health probes.",
        "## Intent\nAnswer health probes fast.",
    ));
    assert!(
        d.is_empty(),
        "prose sections are not checked for weak words: {d:?}"
    );
}

#[test]
fn should_in_a_behaviour_contract_is_an_error() {
    let (_, d) = run_pedantic(&with(
        "the service SHALL answer 200 with `pong`.",
        "the service SHALL answer 200. It should log.",
    ));
    assert_eq!(codes(&d), ["LS202"]);
    assert!(d[0].help.contains("SHALL"));
}

#[test]
fn constraint_without_number_and_unit() {
    let (_, d) = run(&with("is below 5 ms", "is low"));
    assert_eq!(codes(&d), ["LS203"]);
}

#[test]
fn unresolved_markers_and_open_questions() {
    for marked in [
        "Answer health probes. TBD which port.",
        "TBD: answer health probes.",
        "Answer health probes. TODO which port.",
        "Answer health probes (FIXME: which port).",
        "Answer health probes; FIXME",
    ] {
        let (_, d) = run(&with("Answer health probes.", marked));
        assert_eq!(codes(&d), ["LS204"], "{marked}");
    }
    let (_, d) = run(&with(
        "Answer health probes.",
        "Answer [NEEDS CLARIFICATION: which probes?] health probes.",
    ));
    assert_eq!(codes(&d), ["LS204"]);
    let (_, d) = run(&format!(
        "{BASE}\n## Open questions\n- Q-1: Which port?\n- [x] Q-2: Which path?\n"
    ));
    assert_eq!(codes(&d), ["LS208"]);
}

#[test]
fn template_leftovers() {
    let (_, d) = run(&with(
        "Answer health probes.",
        "Answer [FEATURE NAME] probes for <placeholder>.",
    ));
    assert_eq!(codes(&d), ["LS205", "LS205"]);
}

#[test]
fn duplicate_ids() {
    let (_, d) = run(&with(
        "- CON-1: p99 latency of `GET /ping` is below 5 ms.",
        "- CON-1: p99 latency of `GET /ping` is below 5 ms.\n- CON-1: p50 latency is below 1 ms.",
    ));
    assert_eq!(codes(&d), ["LS301"]);
}

#[test]
fn dangling_reference_and_cycle() {
    let (_, d) = run(&with(
        "### REQ-1: Answer a probe\n",
        "### REQ-1: Answer a probe\nDepends on: REQ-9\n",
    ));
    assert_eq!(codes(&d), ["LS302"]);
    let src = with("### REQ-1: Answer a probe\n", "### REQ-1: Answer a probe\nDepends on: REQ-2\n")
        .replace(
            "## Anti-spec",
            "### REQ-2: Log a probe\nDepends on: REQ-1\nWhen a probe arrives, the service SHALL log it.\n\n#### Scenario: log\n- **WHEN** a probe arrives\n- **THEN** the log has 1 line\n\n## Anti-spec",
        );
    let (_, d) = run(&src);
    assert_eq!(codes(&d), ["LS303"]);
    assert!(
        d[0].message.contains("REQ-1 → REQ-2 → REQ-1"),
        "{}",
        d[0].message
    );
}

#[test]
fn scenario_shape() {
    let (_, d) = run(&with("- **THEN** the status is 200\n", ""));
    assert_eq!(codes(&d), ["LS104"]);
    let (_, d) = run(&with(
        "- **THEN** the status is 200\n",
        "- **THEN** the status is 200\n- **GIVEN** later context\n",
    ));
    assert_eq!(codes(&d), ["LS105"]);
}

#[test]
fn anti_spec_without_negative_scenario_or_gate() {
    let (_, d) = run(&with("- ANTI-1 is checked by a holdout scenario.\n", ""));
    assert_eq!(codes(&d), ["LS106"]);
}

#[test]
fn glossary_term_never_used() {
    let (_, d) = run_pedantic(&with(
        "- **service**: the HTTP server.\n",
        "- **service**: the HTTP server.\n- **canary**: a test probe.\n",
    ));
    assert_eq!(codes(&d), ["LS206"]);
}

#[test]
fn ears_system_name_not_in_glossary() {
    let (_, d) = run_pedantic(&with("- **service**: the HTTP server.\n", ""));
    assert!(codes(&d).contains(&"LS207"), "{d:?}");
}

#[test]
fn infeasible_gate() {
    let src = with("at least 0.7 over 10 trials", "at least 0.9 over 10 trials");
    let (_, d) = run(&src);
    assert_eq!(codes(&d), ["LS401"]);
    assert!(d[0].message.contains("0.72"), "{}", d[0].message);
    assert!(d[0].help.contains("35 trials"), "{}", d[0].help);
    let (_, d) = run(&with(
        "at least 0.7 over 10 trials",
        "at least 0.9 over 35 trials",
    ));
    assert!(d.is_empty(), "{d:?}");
    let (_, d) = run(&with(
        "at least 0.7 over 10 trials",
        "at least 1.5 over 10 trials",
    ));
    assert_eq!(codes(&d), ["LS402"]);
}

#[test]
fn a_strength_gate_line_is_a_min_strength_rule() {
    let line = "- Every scenario has a Wilson lower bound of at least 0.7 over 10 trials.\n";
    let src = with(
        line,
        &format!(
            "{line}- Holdout strength: the Wilson lower bound of mutants killed is at least 85% of \
             mutants, for @critical and all.\n"
        ),
    );
    let (spec, d) = run(&src);
    assert!(d.is_empty(), "{d:?}");
    let g = &spec.gate[1];
    assert_eq!(g.min_strength, Some(0.85));
    assert_eq!(
        g.min_lower_bound, None,
        "a strength line is not a scenario bound"
    );
    assert_eq!(g.min_satisfaction, None);
    assert_eq!(g.tag, None, "strength measures the whole holdout");
    assert_eq!(spec.gate[0].min_strength, None);
    let (_, d) = run(&with(
        line,
        &format!("{line}- At least 1.5 of the mutants are killed.\n"),
    ));
    assert_eq!(codes(&d), ["LS402"]);
}

#[test]
fn front_matter_problems() {
    let (_, d) = run(&with("kind: feature", "kind: epic"));
    assert_eq!(codes(&d), ["LS006"]);
    assert_eq!(d[0].span.line, 4);
    let (_, d) = run(&with("id: ping", "id: [ping"));
    assert!(codes(&d).contains(&"LS005"), "{d:?}");
    assert!(d.iter().all(|d| d.span.line >= 1));
}

#[test]
fn bad_inputs_are_diagnostics_with_a_location() {
    let cases: [(&[u8], &str); 3] = [
        (b"", "LS001"),
        (b"# a\0b", "LS003"),
        (b"# T\n\xff\xfe", "LS002"),
    ];
    for (bytes, code) in cases {
        let (_, d) = parse(bytes, None, None);
        assert!(d.iter().any(|d| d.code == code), "{code}: {d:?}");
        assert!(d.iter().all(|d| d.span.line >= 1 && d.span.column >= 1));
    }
    let big = vec![b'a'; 50 * 1024 * 1024];
    let (_, d) = parse(&big, None, None);
    assert_eq!(codes(&d), ["LS004"]);
    assert!(d[0].message.contains("52428800"), "{}", d[0].message);
}

#[test]
fn diff_by_id_flags_a_missing_version_bump() {
    let (old, _) = parse(BASE.as_bytes(), None, None);
    let changed = with("answer 200 with `pong`", "answer 204");
    let (new, _) = parse(changed.as_bytes(), None, None);
    let d = lightsout_spec::diff(&old, &new);
    assert_eq!(d.changed_ids(), ["REQ-1"]);
    assert_eq!(d.changes[0].fields, ["body"]);
    assert_eq!(codes(&d.diagnostics), ["LS310"]);
    let bumped = changed.replace("version: 1", "version: 2");
    let (new, _) = parse(bumped.as_bytes(), None, None);
    assert!(lightsout_spec::diff(&old, &new).diagnostics.is_empty());
    // Moving text around a requirement is not a change to it.
    let moved = BASE.replace("## Intent\n", "## Intent\nMore words.\n");
    let (new, _) = parse(moved.as_bytes(), None, None);
    assert!(lightsout_spec::diff(&old, &new).is_empty());
}

#[test]
fn generics_and_quoted_output_are_not_template_leftovers() {
    let (_, d) = run(&with(
        "Answer health probes.",
        "Answer probes with `Future<T>`-like Future<T> values and print \"Created: <tools>\" for [A, B, C].",
    ));
    assert!(d.is_empty(), "{d:?}");
}
