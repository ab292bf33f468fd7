//! The fidelity corpus (`tests/fidelity`, with `tests/corpus`): real public specs in the four
//! dialects and natural-language specs, their hand counts (`fidelity/manifest.tsv`) and hand-labelled
//! diagnostics (`fidelity/labels.tsv`). See `fidelity/README.md`.

use super::corpus_dir;
use lightsout_spec::{CheckOptions, Diagnostic, Severity, check_paths, codes, parse};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// The rows of a tab-separated file, comments (`#`) and blank lines left out.
fn rows(name: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(tests_dir().join("fidelity").join(name)).expect(name);
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// What a user points `spec check` at: each repository's spec folders, one run per
/// repository.
fn spec_roots() -> Vec<Vec<PathBuf>> {
    let f = tests_dir().join("fidelity");
    let mut roots = Vec::new();
    let dirs = |sub: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(f.join(sub))
            .expect(sub)
            .map(|e| e.expect("entry").path())
            .filter(|p| p.is_dir())
            .collect();
        v.sort();
        v
    };
    for repo in dirs("speckit") {
        roots.push(vec![repo.join("specs")]);
    }
    roots.push(vec![corpus_dir().join("kiro")]);
    for repo in dirs("kiro") {
        roots.push(vec![repo.join(".kiro/specs")]);
    }
    // OpenSpec's own repository, at one commit, split between the two folders. Archived
    // changes are skipped by a folder walk, as `openspec validate` skips them; naming the
    // archive reads them.
    let os = f.join("openspec/Fission-AI__OpenSpec/openspec");
    roots.push(vec![
        corpus_dir().join("openspec"),
        os.clone(),
        os.join("changes/archive"),
    ]);
    roots.push(vec![f.join("nlspec")]);
    roots
}

/// `path` relative to `tests/`, with `/` separators.
fn rel(path: &Path) -> String {
    let p = path.strip_prefix(tests_dir()).unwrap_or(path);
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

type Key = (String, u32, String);

fn key(d: &Diagnostic) -> Key {
    let path = d.path.as_deref().map(rel).unwrap_or_default();
    (path, d.span.line, d.code.clone())
}

/// The errors and warnings (infos never block and are not findings) of checking each
/// repository's folders.
fn checked(pedantic: bool) -> Vec<Diagnostic> {
    let opts = CheckOptions {
        pedantic,
        ..CheckOptions::default()
    };
    let mut all = Vec::new();
    for roots in spec_roots() {
        let c = check_paths(&roots, None, false, &opts).expect("corpus checks");
        all.extend(c.report.files.into_iter().flat_map(|f| f.diagnostics));
        all.extend(c.report.project);
    }
    all.retain(|d| d.severity != Severity::Info);
    all
}

#[test]
fn hand_counts_match_for_every_spec() {
    let rows = rows("manifest.tsv");
    let per = |d: &str| rows.iter().filter(|r| r[1] == d).count();
    assert!(per("spec-kit") >= 20 && per("kiro") >= 20 && per("nlspec") >= 3);
    assert!(per("openspec") + per("openspec-delta") >= 20);
    let mut wrong = Vec::new();
    for r in &rows {
        let path = tests_dir().join(&r[0]);
        let bytes = std::fs::read(&path).expect("manifest file");
        let (spec, _) = parse(&bytes, Some(&path), None);
        let stories = spec
            .requirements
            .iter()
            .filter(|q| q.id.starts_with("US-"))
            .count();
        let got = [
            spec.dialect.as_str().to_owned(),
            (spec.requirements.len() - stories).to_string(),
            stories.to_string(),
            spec.requirements
                .iter()
                .map(|q| q.scenarios.len())
                .sum::<usize>()
                .to_string(),
            spec.success_criteria.len().to_string(),
            spec.acceptance.len().to_string(),
        ];
        for (i, g) in got.iter().enumerate() {
            let want = &r[i + 1];
            if want != "-" && want != g {
                wrong.push(format!(
                    "{}: column {} is {g}, hand count {want}",
                    r[0],
                    i + 1
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn default_findings_are_labelled_and_mostly_true() {
    let labels = rows("labels.tsv");
    assert!(labels.len() >= 100, "{} labels", labels.len());
    let after: BTreeMap<Key, &Vec<String>> = labels
        .iter()
        .filter(|r| r[0] == "after")
        .map(|r| ((r[2].clone(), r[3].parse().expect("line"), r[4].clone()), r))
        .collect();
    let found = checked(false);
    let unlabelled: Vec<String> = found
        .iter()
        .filter(|d| !after.contains_key(&key(d)))
        .map(|d| format!("{:?} {}", key(d), d.message))
        .collect();
    assert!(
        unlabelled.is_empty(),
        "label these in fidelity/labels.tsv: {unlabelled:#?}"
    );
    let found_keys: BTreeSet<Key> = found.iter().map(key).collect();
    let stale: Vec<&Key> = after.keys().filter(|k| !found_keys.contains(*k)).collect();
    assert!(
        stale.is_empty(),
        "labelled but no longer reported: {stale:?}"
    );
    let fp = |rs: &mut dyn Iterator<Item = &&Vec<String>>| {
        let (mut n, mut f) = (0usize, 0usize);
        for r in rs {
            n += 1;
            f += usize::from(r[5] == "fp");
        }
        (n, f)
    };
    let (n, f) = fp(&mut after.values());
    assert!(f * 10 <= n, "{f} of {n} default findings are false");
    // Each rule with five or more labelled findings stays within its budget.
    for rule in codes::RULES {
        let (n, f) = fp(&mut after.values().filter(|r| r[4] == rule.code));
        if n >= 5 {
            assert!(
                f as f64 <= rule.budget * n as f64,
                "{}: {f} of {n} false, budget {}",
                rule.code,
                rule.budget
            );
        }
    }
}

#[test]
fn false_alarms_of_the_old_reader_are_gone_and_its_true_findings_stay_reachable() {
    let labels = rows("labels.tsv");
    let before: Vec<&Vec<String>> = labels.iter().filter(|r| r[0] == "before").collect();
    assert!(before.len() >= 100, "{} labels", before.len());
    let default: BTreeSet<Key> = checked(false).iter().map(key).collect();
    let pedantic: BTreeSet<Key> = checked(true).iter().map(key).collect();
    for r in before {
        let k: Key = (r[2].clone(), r[3].parse().expect("line"), r[4].clone());
        match r[5].as_str() {
            "fp" => assert!(!default.contains(&k), "false alarm is back: {r:?}"),
            _ => assert!(
                default.contains(&k) || pedantic.contains(&k),
                "true finding lost: {r:?}"
            ),
        }
    }
}

#[test]
fn every_fidelity_file_reads_without_panic() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "md") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&tests_dir().join("fidelity"), &mut files);
    assert!(files.len() >= 100, "{}", files.len());
    for f in files {
        let bytes = std::fs::read(&f).expect("read");
        let (spec, _) = parse(&bytes, Some(&f), None);
        let text = String::from_utf8_lossy(&bytes);
        let opts = CheckOptions {
            pedantic: true,
            ..CheckOptions::default()
        };
        for d in lightsout_spec::check(&spec, &text, &opts) {
            assert!(
                d.span.start <= d.span.end && d.span.end <= text.len(),
                "{f:?}: {d:?}"
            );
        }
    }
}
