//! show → parse round trips and no-panic on arbitrary input (proptest).

use lightsout_spec::{Span, Spec, parse, render::to_markdown};
use proptest::prelude::*;
use std::fmt::Write as _;

/// The spec with every span zeroed and the path dropped: what the round trip preserves.
fn strip(spec: &Spec) -> serde_json::Value {
    let mut v = serde_json::to_value(spec).expect("serialize");
    zero(&mut v);
    if let Some(o) = v.as_object_mut() {
        o.remove("path");
    }
    v
}

fn zero(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            if o.contains_key("span") {
                o.insert(
                    "span".into(),
                    serde_json::to_value(Span::default()).expect("span"),
                );
            }
            for x in o.values_mut() {
                zero(x);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(zero),
        _ => {}
    }
}

fn roundtrips(src: &str) -> Result<(), TestCaseError> {
    let (a, _) = parse(src.as_bytes(), None, None);
    let md = to_markdown(&a);
    let (b, _) = parse(md.as_bytes(), None, None);
    prop_assert_eq!(strip(&a), strip(&b), "rendered:\n{}", md);
    Ok(())
}

#[test]
fn bundled_example_roundtrips() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/specs/url-shortener.md");
    let src = std::fs::read_to_string(p).expect("example");
    roundtrips(&src).expect("round trip");
}

fn words() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z]{1,8}|[0-9]{1,3}|`x_y`|\\*|_|#|\\[a\\]|<b>|ms", 1..8)
        .prop_map(|w| w.join(" "))
}

prop_compose! {
    fn requirement(i: usize)(
        title in words(),
        verb in prop::sample::select(vec!["SHALL", "MUST", "shall"]),
        body in words(),
        deps in prop::collection::vec(0usize..5, 0..3),
        scenarios in prop::collection::vec((words(), prop::collection::vec((0usize..5, words()), 0..5)), 0..3),
    ) -> String {
        let mut s = format!("### REQ-{i}: {title}\n");
        if !deps.is_empty() {
            let d: Vec<String> = deps.iter().map(|d| format!("REQ-{d}")).collect();
            let _ = writeln!(s, "Depends on: {}", d.join(", "));
        }
        let _ = write!(s, "When {body}, the service {verb} answer.\n\n");
        for (name, steps) in scenarios {
            let _ = writeln!(s, "#### Scenario: {name}");
            for (k, t) in steps {
                let kw = ["GIVEN", "WHEN", "THEN", "AND", "BUT"][k];
                let _ = writeln!(s, "- **{kw}** {t}");
            }
            s.push('\n');
        }
        s
    }
}

fn doc() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(0usize..1, 0..4).prop_flat_map(|v| {
            let n = v.len();
            (0..n).map(requirement).collect::<Vec<_>>()
        }),
        prop::collection::vec(words(), 0..3),
        prop::collection::vec(words(), 0..3),
        prop::collection::vec((words(), words()), 0..3),
        prop::collection::vec((0.0f64..1.0, 1u32..60), 0..3),
        1u32..9,
    )
        .prop_map(|(reqs, anti, cons, gloss, gate, version)| {
            let mut s = format!("---\nid: gen\ntitle: Generated\nkind: feature\nversion: {version}\nstatus: draft\n---\n\n# Generated\n\n## Intent\nN/A: generated\n\n## Behaviour\n\n");
            for r in reqs {
                s.push_str(&r);
            }
            s.push_str("## Anti-spec\n");
            for (i, a) in anti.iter().enumerate() {
                let _ = writeln!(s, "- ANTI-{i}: {a}");
            }
            s.push_str("\n## Constraints\n");
            for c in &cons {
                let _ = writeln!(s, "- {c} 5 ms");
            }
            s.push_str("\n## Verification gate\n");
            for (p, k) in gate {
                let _ = writeln!(s, "- Wilson lower bound of at least {p:.2} over {k} trials");
            }
            s.push_str("\n## Glossary\n");
            for (t, d) in gloss {
                let _ = writeln!(s, "- **{t}**: {d}");
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn show_then_parse_is_the_same_spec(src in doc()) {
        roundtrips(&src)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let (spec, d) = parse(&bytes, None, None);
        let _ = lightsout_spec::check(&spec, &String::from_utf8_lossy(&bytes), &lightsout_spec::CheckOptions::default());
        for x in d {
            prop_assert!(x.span.start <= x.span.end);
        }
    }

    #[test]
    fn markdown_like_text_never_panics(src in "(#{1,4} |- |\\*\\*|WHEN |THEN |### REQ-1: |#### Scenario: |---\n|[a-z ]{0,10}|\n|`|\\[|\\]|<|>|1\\. ){0,60}") {
        let (spec, _) = parse(src.as_bytes(), None, None);
        let _ = lightsout_spec::check(&spec, &src, &lightsout_spec::CheckOptions::default());
        let _ = to_markdown(&spec);
    }
}

/// The `spec_roundtrip` fuzz target's property: read as Lightsout, render, parse; from then on
/// show → parse is the identity.
fn fuzz_roundtrip(bytes: &[u8]) {
    use lightsout_spec::Dialect;
    let (a, _) = parse(bytes, None, Some(Dialect::Lightsout));
    let once = to_markdown(&a);
    let (b, _) = parse(once.as_bytes(), None, Some(Dialect::Lightsout));
    let twice = to_markdown(&b);
    let (c, _) = parse(twice.as_bytes(), None, Some(Dialect::Lightsout));
    assert_eq!(strip(&b), strip(&c), "once:\n{once}\ntwice:\n{twice}");
}

/// Fuzz finding (`spec_roundtrip`): a heading that ends in an escaped `_` and a carriage
/// return.
#[test]
fn fuzz_heading_with_carriage_returns_roundtrips() {
    fuzz_roundtrip(b"-_-_\rsec-_\rit\r_-_\r--_\r-");
}
