//! Every file of the real-world corpus reads with no panic and sensible output.

use super::corpus_dir;
use lightsout_spec::{CheckOptions, Dialect, Severity, check, discover, parse, read};
use std::path::{Path, PathBuf};

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("corpus dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// `### Requirement:` and `#### Scenario:` headings outside fenced code blocks.
fn heading_counts(src: &str) -> (usize, usize) {
    let (mut reqs, mut scen, mut fence) = (0, 0, false);
    for line in src.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
            continue;
        }
        if !fence && line.starts_with("### Requirement:") {
            reqs += 1;
        }
        if !fence && line.starts_with("#### Scenario:") {
            scen += 1;
        }
    }
    (reqs, scen)
}

#[test]
fn every_corpus_file_parses_and_checks_without_panic() {
    let mut files = Vec::new();
    all_files(&corpus_dir(), &mut files);
    assert!(files.len() >= 60, "corpus incomplete: {}", files.len());
    for f in files {
        let bytes = std::fs::read(&f).expect("read");
        let (spec, _) = parse(&bytes, Some(&f), None);
        let text = String::from_utf8_lossy(&bytes);
        let diags = check(&spec, &text, &CheckOptions::default());
        for d in diags {
            assert!(
                d.span.start <= d.span.end && d.span.end <= text.len(),
                "{f:?}: {d:?}"
            );
            assert!(d.span.line >= 1 && d.span.column >= 1);
        }
    }
}

#[test]
fn openspec_counts_match_headings() {
    let dir = corpus_dir().join("openspec");
    let files = discover(&dir).expect("discover");
    assert_eq!(files.len(), 19, "12 specs and 7 delta specs: {files:?}");
    for f in files {
        let src = std::fs::read_to_string(&f).expect("read");
        let (spec, _, _) = read(&f, None).expect("read spec");
        let (reqs, scen) = heading_counts(&src);
        let got_scen: usize = spec.requirements.iter().map(|r| r.scenarios.len()).sum();
        assert_eq!(spec.requirements.len(), reqs, "{f:?}");
        assert_eq!(got_scen, scen, "{f:?}");
        let want = if f.to_string_lossy().contains("/changes/") {
            Dialect::OpenSpecDelta
        } else {
            Dialect::OpenSpec
        };
        assert_eq!(spec.dialect, want, "{f:?}");
    }
}

#[test]
fn openspec_cli_validate_has_a_code_fenced_scenario_heading_that_is_not_counted() {
    let f = corpus_dir().join("openspec/specs/cli-validate/spec.md");
    let (spec, _, _) = read(&f, None).expect("read");
    let n: usize = spec.requirements.iter().map(|r| r.scenarios.len()).sum();
    assert_eq!(
        n, 31,
        "32 `#### Scenario:` lines, one of them inside a ``` fence"
    );
    assert_eq!(spec.meta.id, "cli-validate");
    assert_eq!(
        spec.requirements[0].id,
        "validation-shall-provide-actionable-remediation-steps"
    );
}

#[test]
fn openspec_delta_operations_are_read() {
    let f = corpus_dir().join("openspec/changes/add-global-install-scope/specs/cli-init/spec.md");
    let (spec, text, mut d) = read(&f, None).expect("read");
    d.extend(check(&spec, &text, &CheckOptions::default()));
    assert_eq!(spec.dialect, Dialect::OpenSpecDelta);
    assert!(
        spec.requirements
            .iter()
            .all(|r| r.delta == Some(lightsout_spec::DeltaOp::Added))
    );
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn kiro_ears_criteria_are_requirements() {
    let f = corpus_dir().join("kiro/raft-consensus/requirements.md");
    let src = std::fs::read_to_string(&f).expect("read");
    let (spec, _, _) = read(&f, None).expect("read");
    assert_eq!(spec.dialect, Dialect::Kiro);
    // Every numbered criterion under "#### Acceptance Criteria" is a requirement `N.M`.
    let r11 = spec.requirement("1.1").expect("1.1");
    assert!(r11.statements[0].normative);
    assert_eq!(
        r11.statements[0].ears,
        Some(lightsout_spec::EarsPattern::EventDriven)
    );
    assert_eq!(r11.statements[0].system.as_deref(), Some("system"));
    assert_eq!(r11.scenarios[0].steps.len(), 2);
    let criteria = src
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            t.split_once(". ")
                .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty())
                && !l.starts_with(' ')
        })
        .count();
    assert!(
        spec.requirements.len() >= 150,
        "{}",
        spec.requirements.len()
    );
    assert!(
        spec.requirements.len() <= criteria,
        "{} > {criteria}",
        spec.requirements.len()
    );
    assert!(spec.glossary.len() >= 30);
}

#[test]
fn kiro_reports_system_names_missing_from_the_glossary_once_per_name_when_pedantic() {
    let f = corpus_dir().join("kiro/raft-consensus/requirements.md");
    let (spec, text, _) = read(&f, None).expect("read");
    assert!(
        check(&spec, &text, &CheckOptions::default())
            .iter()
            .all(|d| d.code != "LS207"),
        "LS207 is pedantic"
    );
    let pedantic = CheckOptions {
        pedantic: true,
        ..CheckOptions::default()
    };
    let d = check(&spec, &text, &pedantic);
    let sys: Vec<_> = d.iter().filter(|d| d.code == "LS207").collect();
    assert_eq!(sys.len(), 1, "{sys:?}");
    assert!(sys[0].message.contains("\"system\""), "{}", sys[0].message);
}

#[test]
fn spec_kit_template_is_all_leftovers_and_markers() {
    let f = corpus_dir().join("spec-kit/spec-template.md");
    let (spec, text, mut d) = read(&f, None).expect("read");
    d.extend(check(&spec, &text, &CheckOptions::default()));
    assert_eq!(spec.dialect, Dialect::SpecKit);
    assert!(spec.requirement("FR-001").is_some());
    assert!(
        spec.requirement("US-1")
            .is_some_and(|r| r.scenarios.len() == 2)
    );
    assert_eq!(spec.success_criteria.len(), 4);
    let leftovers = d.iter().filter(|d| d.code == "LS205").count();
    let markers = d.iter().filter(|d| d.code == "LS204").count();
    assert!(leftovers >= 10, "{leftovers}");
    assert_eq!(markers, 2, "the two [NEEDS CLARIFICATION] examples");
    assert!(d.iter().any(|d| d.severity == Severity::Error));
}

#[test]
fn discover_skips_companions_and_is_sorted() {
    let files = discover(&corpus_dir()).expect("discover");
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(corpus_dir())
                .expect("prefix")
                .display()
                .to_string()
        })
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.ends_with("spec.md") || n.ends_with("requirements.md")),
        "{names:?}"
    );
    assert_eq!(names.len(), 29);
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted);
}
