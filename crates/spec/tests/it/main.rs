//! Integration tests of `lightsout-spec`: the real-world corpus, the rules, and round trips.

mod corpus;
mod dialects;
mod fidelity;
mod roundtrip;
mod rules;

use lightsout_spec::{CheckOptions, Diagnostic, Spec, check, parse};
use std::path::{Path, PathBuf};

/// The corpus copied from ../shared/corpus (licences beside each folder).
pub(crate) fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// Parses and checks `src` as given, returning the spec and every diagnostic.
pub(crate) fn run(src: &str) -> (Spec, Vec<Diagnostic>) {
    let (spec, mut d) = parse(src.as_bytes(), Some(Path::new("t.md")), None);
    d.extend(check(&spec, src, &CheckOptions::default()));
    (spec, d)
}

/// As [`run`], with the pedantic lint group on (`--lint pedantic`).
pub(crate) fn run_pedantic(src: &str) -> (Spec, Vec<Diagnostic>) {
    let (spec, mut d) = parse(src.as_bytes(), Some(Path::new("t.md")), None);
    let opts = CheckOptions {
        pedantic: true,
        ..CheckOptions::default()
    };
    d.extend(check(&spec, src, &opts));
    (spec, d)
}

/// The codes of `diags`, sorted.
pub(crate) fn codes(diags: &[Diagnostic]) -> Vec<&str> {
    let mut c: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
    c.sort_unstable();
    c
}
