//! This crate provides the spec stage of Lightsout: it reads a markdown spec in the Lightsout
//! format, or in the Spec Kit, OpenSpec, Kiro or NLSpec dialects (in English, Chinese,
//! Japanese, German, French or Spanish), into a typed [`Spec`], checks it against the rules
//! of the format its author chose with span-carrying [`Diagnostic`]s (the judgement calls in
//! an opt-in pedantic group, [`codes::LintGroup`]), scores its
//! readiness, diffs two versions by requirement id, and renders all of it for people (rustc
//! style), machines (JSON) and code-scanning UIs (SARIF 2.1.0).
//!
//! # Brief overview
//! - [`parse`] turns bytes into a [`Spec`] and diagnostics; it never panics and never fails:
//!   problems in the input are diagnostics ([`codes`] lists them). [`detect_dialect`] picks
//!   the [`Dialect`] when none is given.
//! - [`discover`] finds the spec files under a directory; [`read`] loads one from disk.
//! - [`check()`] applies the rules of `spec-format.md` to a parsed spec ([`CheckOptions`]
//!   turns the pedantic group on); [`check_project`]
//!   adds the cross-spec rules; [`Readiness`] is the score and verdict.
//! - [`diff()`] compares two versions of a spec by requirement id (`lightsout-graph` uses the
//!   changed ids for `plan --impact`).
//! - [`render`] holds the renderers: human, JSON, SARIF, and the Spec → Lightsout markdown
//!   writer ([`render::to_markdown`]) that makes `show → parse` a round trip.
//! - [`Spec`] and [`Diagnostic`] are plain serde + schemars data shared with the other stages;
//!   [`schema`] publishes their JSON Schema.
//!
//! # Example
//! ```
//! use lightsout_spec::{check, parse, CheckOptions, Readiness};
//!
//! let src = b"---\nid: ping\ntitle: Ping\nkind: constraint\nversion: 1\nstatus: ready\n---\n\
//!     \n## Constraints\n- CON-1: GET /ping answers within 50 ms at p99.\n";
//! let (spec, mut diags) = parse(src, None, None);
//! diags.extend(check(&spec, std::str::from_utf8(src).unwrap(), &CheckOptions::default()));
//! assert_eq!(spec.constraints[0].id, "CON-1");
//! let readiness = Readiness::from_diagnostics(&diags, false);
//! assert!(readiness.ready, "{diags:?}");
//! ```

#![deny(missing_docs)]
// Product names (OpenSpec, CommonMark, serde_norway) read as prose in these docs, not as code.
#![allow(clippy::doc_markdown)]

mod blocks;
mod check;
pub mod codes;
pub mod diagnostic;
mod diff;
mod discover;
mod ears;
mod frontmatter;
mod input;
mod lines;
pub mod model;
mod parse;
pub mod render;

pub use check::{
    CheckOptions, ChecklistItem, Readiness, ReadinessVerdict, check, check_project,
    wilson_max_lower_bound,
};
pub use diagnostic::{Diagnostic, Severity, Span};
pub use diff::{ChangeKind, RequirementChange, SpecDiff, diff};
pub use discover::discover;
pub use input::MAX_INPUT_BYTES;
pub use model::*;
pub use parse::{classify_section, detect_dialect, slug};

use std::path::{Path, PathBuf};

/// Errors of this crate: only I/O on paths the caller named. Problems inside a spec are
/// [`Diagnostic`]s, never errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path could not be read or listed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A path given to [`discover`] does not exist.
    #[error("no such file or directory: {0}")]
    NotFound(PathBuf),
    /// A directory given to [`check_paths`] holds no spec file.
    #[error(
        "no spec files under {0} (looked for spec.md, requirements.md, *.spec.md, *-spec.md and markdown with `id:` front matter)"
    )]
    NoSpecs(PathBuf),
}

/// Parses a spec from raw bytes.
///
/// - `path` is recorded in [`Spec::path`], attached to every diagnostic, and used as a hint for
///   the dialect and the spec id (the file stem, or the folder of `spec.md` /
///   `requirements.md`) when the front matter gives none.
/// - `dialect`: `None` auto-detects ([`detect_dialect`]); `Some` forces it (`--dialect`).
///
/// Never panics and never fails. Empty, binary (NUL bytes), non-UTF-8 and over-large
/// (> [`MAX_INPUT_BYTES`]) inputs give an `LS00x` diagnostic with a location; non-UTF-8 input is
/// still parsed with U+FFFD replacing the invalid bytes, so spans after the first invalid byte
/// are offsets into that decoded text. Spans are byte offsets into the decoded UTF-8 text.
pub fn parse(
    source: &[u8],
    path: Option<&Path>,
    dialect: Option<Dialect>,
) -> (Spec, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let (spec, mut diags) = match input::decode(source, &mut diags) {
        Some(text) => parse::parse_text(&text, path, dialect, diags),
        None => (
            empty_spec(path, dialect.unwrap_or(Dialect::Lightsout)),
            diags,
        ),
    };
    if let Some(p) = path {
        for d in &mut diags {
            d.path = Some(p.to_path_buf());
        }
    }
    (spec, diags)
}

/// Reads and parses the spec at `path`. Returns the decoded text too, which [`check()`] and
/// the human renderer need.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read. Everything about its content is a diagnostic.
pub fn read(
    path: &Path,
    dialect: Option<Dialect>,
) -> Result<(Spec, String, Vec<Diagnostic>), Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (spec, diags) = parse(&bytes, Some(path), dialect);
    let text = if bytes.len() > MAX_INPUT_BYTES || bytes.contains(&0) {
        String::new()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok((spec, text, diags))
}

/// The result of [`check_paths`]: the report and the text of every file read, keyed by path
/// (for the human renderer's snippets).
#[derive(Debug, Clone)]
pub struct Checked {
    /// The report.
    pub report: render::JsonReport,
    /// Every parsed spec, in report order.
    pub specs: Vec<Spec>,
    /// Decoded text of each file (empty for files that were not decoded).
    pub sources: std::collections::BTreeMap<PathBuf, String>,
}

/// Discovers, parses and checks every spec under `paths` (files or directories), then runs
/// the cross-spec rules: what `lightsout spec check` does.
///
/// Files are deduplicated and kept in the order of `paths`, each directory's files sorted.
///
/// # Errors
/// [`Error::NotFound`] / [`Error::Io`] when a path cannot be read, and
/// [`Error::NoSpecs`] when a directory holds no spec file.
pub fn check_paths(
    paths: &[PathBuf],
    dialect: Option<Dialect>,
    strict: bool,
    opts: &CheckOptions,
) -> Result<Checked, Error> {
    let mut files: Vec<PathBuf> = Vec::new();
    for p in paths {
        let found = discover(p)?;
        if found.is_empty() {
            return Err(Error::NoSpecs(p.clone()));
        }
        for f in found {
            if !files.contains(&f) {
                files.push(f);
            }
        }
    }
    let mut reports = Vec::new();
    let mut specs = Vec::new();
    let mut sources = std::collections::BTreeMap::new();
    for f in &files {
        let (spec, text, mut diags) = read(f, dialect)?;
        diags.extend(check(&spec, &text, opts));
        reports.push(render::FileReport::new(&spec, diags, strict));
        sources.insert(f.clone(), text);
        specs.push(spec);
    }
    let project = check_project(&specs);
    Ok(Checked {
        report: render::JsonReport::new(reports, project, strict),
        specs,
        sources,
    })
}

/// The JSON Schema (draft 2020-12, from schemars) of the documents this crate emits:
/// `"spec"` for [`Spec`], `"diagnostic"` for [`Diagnostic`], `"report"` for
/// [`render::JsonReport`]; `None` for any other name.
pub fn schema(name: &str) -> Option<serde_json::Value> {
    let s = match name {
        "spec" => schemars::schema_for!(Spec),
        "diagnostic" => schemars::schema_for!(Diagnostic),
        "report" => schemars::schema_for!(render::JsonReport),
        "diff" => schemars::schema_for!(SpecDiff),
        _ => return None,
    };
    serde_json::to_value(s).ok()
}

fn empty_spec(path: Option<&Path>, dialect: Dialect) -> Spec {
    Spec {
        path: path.map(Path::to_path_buf),
        dialect,
        meta: FrontMatter {
            span: Span {
                start: 0,
                end: 0,
                line: 1,
                column: 1,
            },
            ..FrontMatter::default()
        },
        sections: Vec::new(),
        requirements: Vec::new(),
        anti_spec: Vec::new(),
        constraints: Vec::new(),
        decisions: Vec::new(),
        success_criteria: Vec::new(),
        gate: Vec::new(),
        glossary: Vec::new(),
        open_questions: Vec::new(),
        tasks: Vec::new(),
        acceptance: Vec::new(),
    }
}
