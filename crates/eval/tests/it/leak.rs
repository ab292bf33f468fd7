//! The leak scanner measured on a labelled set (`tests/data/leak/`, described in its
//! `README.md`): holdout scenarios of the bundled examples, copies of them in many forms, and
//! innocent text an honest agent writes for the visible spec.
//!
//! Measured on this set (the figures the test prints), with the visible texts as the allowed
//! corpus, against the scanner it replaced (exact canary, verbatim 8-word runs):
//!
//! | label | samples | new scanner | old scanner |
//! |---|---|---|---|
//! | copy (whole scenarios) | 15 | 15 (100%) | 14 (93%) |
//! | partial (5+ words) | 22 | 22 (100%) | 5 (23%) |
//! | reformat (case, Unicode, punctuation) | 16 | 16 (100%) | 2 (13%) |
//! | subst (one word changed) | 16 | 13 (81%) | 0 |
//! | literal (URL, path, token, canary part) | 21 | 20 (95%) | 2 (10%) |
//! | **all copies** | 90 | **86 (95.6%)** | 23 (25.6%) |
//! | paraphrase (not asserted) | 20 | 0 (0%) | 0 (0%) |
//! | grammar only (not asserted) | 4 | 0 | 0 |
//! | **innocent flagged** | 138 | **1 (0.7%)** | 2 (1.4%) |
//!
//! The new scanner's one false positive is httpbin's public `x-more-info: ...rfc2324` teapot
//! header, which the holdout checks and the visible requirements do not state. The old
//! scanner's two are the spec's own examples written in the holdout's step style.
//!
//! The bounds asserted are the ones issue 15 sets: at least 95% of copies caught, under 2% of
//! innocent samples flagged. The share of paraphrases caught is printed, not asserted: a
//! lexical scanner does not catch a paraphrase that keeps no distinctive value.

use lightsout_eval::{LeakScanner, StepLibrary, Suite};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/leak")
}

/// One labelled sample.
struct Sample {
    label: String,
    suite: String,
    note: String,
    text: String,
}

fn samples() -> Vec<Sample> {
    let raw = std::fs::read_to_string(data().join("samples.txt")).unwrap();
    let mut out: Vec<Sample> = Vec::new();
    for line in raw.lines() {
        if let Some(head) = line.strip_prefix("%%% ") {
            let mut parts = head.splitn(3, ' ');
            out.push(Sample {
                label: parts.next().unwrap().to_owned(),
                suite: parts.next().unwrap().to_owned(),
                note: parts.next().unwrap_or("").to_owned(),
                text: String::new(),
            });
        } else {
            let s = out.last_mut().expect("samples.txt starts with a %%% line");
            s.text.push_str(line);
            s.text.push('\n');
        }
    }
    out
}

fn scanners() -> BTreeMap<&'static str, LeakScanner> {
    let lib = StepLibrary::builtin();
    [
        ("us", "url-shortener", "url-shortener.md"),
        ("hb", "httpbin", "httpbin.md"),
    ]
    .into_iter()
    .map(|(key, dir, visible)| {
        let (suite, _) = Suite::load_dir(&data().join("holdout").join(dir), &lib).unwrap();
        assert!(
            suite.scenarios.len() >= 5,
            "{dir}: {}",
            suite.scenarios.len()
        );
        let visible = std::fs::read_to_string(data().join("visible").join(visible)).unwrap();
        (key, LeakScanner::allowing(&suite, [visible]))
    })
    .collect()
}

const COPIES: &[&str] = &["copy", "partial", "reformat", "subst", "literal"];

#[test]
#[allow(clippy::print_stderr, clippy::cast_precision_loss)]
fn leak_scanner_catches_copies_and_spares_innocent_text() {
    let scanners = scanners();
    let samples = samples();
    assert!(samples.len() >= 150, "{} samples", samples.len());
    // label -> (flagged, total)
    let mut tally: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut wrong = Vec::new();
    for s in &samples {
        // Unrelated text (`other`) is scanned against both suites.
        let found: Vec<String> = scanners
            .iter()
            .filter(|(k, _)| s.suite == "other" || s.suite == **k)
            .flat_map(|(_, scanner)| scanner.scan(&s.text))
            .map(|l| format!("{:?} `{}`", l.kind, &s.text[l.start..l.end]))
            .collect();
        let flagged = !found.is_empty();
        let t = tally.entry(s.label.as_str()).or_default();
        t.1 += 1;
        if flagged {
            t.0 += 1;
        }
        let should = COPIES.contains(&s.label.as_str());
        if s.label != "paraphrase" && flagged != should {
            wrong.push(format!("{} {} {}: {found:?}", s.label, s.suite, s.note));
        }
    }
    let share = |labels: &[&str]| {
        let (f, t) = labels
            .iter()
            .filter_map(|l| tally.get(l))
            .fold((0, 0), |(f, t), &(a, b)| (f + a, t + b));
        (f, t, 100.0 * f as f64 / t.max(1) as f64)
    };
    for (label, (f, t)) in &tally {
        eprintln!("{label:<10} {f:>3} of {t:>3} flagged");
    }
    let copies = share(COPIES);
    let innocent = share(&["innocent"]);
    let paraphrase = share(&["paraphrase"]);
    eprintln!(
        "copies caught {:.1}% ({} of {}); paraphrases caught {:.1}% ({} of {}); innocent flagged {:.1}% ({} of {})",
        copies.2,
        copies.0,
        copies.1,
        paraphrase.2,
        paraphrase.0,
        paraphrase.1,
        innocent.2,
        innocent.0,
        innocent.1
    );
    eprintln!("misjudged: {wrong:#?}");
    assert!(innocent.1 >= 100, "{} innocent samples", innocent.1);
    assert!(copies.2 >= 95.0, "copies caught {:.1}% < 95%", copies.2);
    assert!(
        innocent.2 < 2.0,
        "innocent flagged {:.1}% >= 2%",
        innocent.2
    );
}
