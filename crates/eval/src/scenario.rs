//! Holdout scenarios: the model, and the loaders for `*.scenario.md` (pulldown-cmark) and
//! `*.feature` (the `gherkin` crate) files.
//!
//! Format: `/work/shared/design/scenario-format.md`. Diagnostic codes are `LS5xx`:
//! - `LS501` unknown step (error, suggests the nearest known step);
//! - `LS502` Gherkin syntax error (error);
//! - `LS503` scenario without steps (error);
//! - `LS504` list item in a scenario that is not a Given/When/Then step (warning);
//! - `LS505` scenario without `Satisfies:` (warning);
//! - `LS506` `as {name}` on a step that yields no value (error);
//! - `LS507` duplicate scenario name in a file (warning);
//! - `LS508` unreadable file (error);
//! - `LS509` step arguments rejected by the step (error).

use crate::Error;
use crate::steps::{Binding, ResolveError, StepLibrary};
use lightsout_spec::{Diagnostic, Severity, Span, StepKeyword};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// The check kind of a scenario, from its steps (or an explicit `Kind:` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// Functional Given/When/Then behaviour (the default).
    Behavioural,
    /// N clients for T seconds with latency-quantile and error-rate thresholds.
    Load,
    /// Generated malformed input; no 5xx and the target survives.
    Adversarial,
}

impl CheckKind {
    /// `behavioural`, `load` or `adversarial`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Behavioural => "behavioural",
            CheckKind::Load => "load",
            CheckKind::Adversarial => "adversarial",
        }
    }
}

/// One step of a holdout scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioStep {
    /// Given/When/Then/And/But.
    pub keyword: StepKeyword,
    /// The text after the keyword, with inline code in backticks.
    pub text: String,
    /// Where it is in its file.
    pub span: Span,
    /// The step definition it resolved to; `None` until [`Suite::resolve`] succeeds for it.
    pub binding: Option<Binding>,
}

/// One holdout scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Opaque stable id, `S-` + 8 hex digits of a hash of file path and name; safe to show to
    /// agents (it reveals nothing of the text).
    pub id: String,
    /// The scenario's name as written. Holdout text: never shown to agents by default.
    pub name: String,
    /// Its file, relative to the suite root.
    pub path: PathBuf,
    /// Requirement ids it traces to (`Satisfies: REQ-3, REQ-4`).
    pub satisfies: Vec<String>,
    /// Tags, each starting with `@` (`@critical`).
    pub tags: Vec<String>,
    /// Its check kind.
    pub kind: CheckKind,
    /// Whether the kind was set explicitly with a `Kind:` line.
    pub kind_explicit: bool,
    /// Steps in order (Gherkin background steps first).
    pub steps: Vec<ScenarioStep>,
    /// Where it is in its file.
    pub span: Span,
}

impl Scenario {
    /// True when the scenario has `tag` (with or without its `@`).
    pub fn has_tag(&self, tag: &str) -> bool {
        let t = tag.trim_start_matches('@');
        self.tags.iter().any(|x| x.trim_start_matches('@') == t)
    }
}

/// A scenario file's canary string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canary {
    /// The file, relative to the suite root.
    pub path: PathBuf,
    /// The canary text (no whitespace).
    pub value: String,
}

/// A set of holdout scenarios loaded from a directory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Suite {
    /// The directory it was loaded from.
    pub root: PathBuf,
    /// Scenarios, in file order then document order.
    pub scenarios: Vec<Scenario>,
    /// Canary strings of the files.
    pub canaries: Vec<Canary>,
}

fn diag(code: &str, sev: Severity, span: Span, msg: String, help: &str, path: &Path) -> Diagnostic {
    Diagnostic::new(code, sev, span, msg, help).with_path(path)
}

impl Suite {
    /// Loads every `*.scenario.md` and `*.feature` file under `dir` (recursively, sorted by
    /// path; hidden directories skipped) and resolves the steps against `library`.
    ///
    /// Problems in the files come back as diagnostics; a suite with error diagnostics must not
    /// be run ([`crate::Runner::run`] refuses it).
    ///
    /// # Errors
    /// [`Error::Io`] when `dir` cannot be listed.
    pub fn load_dir(dir: &Path, library: &StepLibrary) -> Result<(Suite, Vec<Diagnostic>), Error> {
        let mut files = Vec::new();
        collect_files(dir, &mut files)?;
        files.sort();
        let mut suite = Suite {
            root: dir.to_path_buf(),
            ..Suite::default()
        };
        let mut diags = Vec::new();
        for file in files {
            let rel = file.strip_prefix(dir).unwrap_or(&file).to_path_buf();
            let src = match std::fs::read(&file) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => {
                    diags.push(diag(
                        "LS508",
                        Severity::Error,
                        Span::default(),
                        format!("cannot read the file: {e}"),
                        "check the file's permissions",
                        &rel,
                    ));
                    continue;
                }
            };
            suite.add_source(&rel, &src, &mut diags);
        }
        diags.extend(suite.resolve(library));
        Ok((suite, diags))
    }

    /// Parses one file's text into this suite (by extension: `.feature` is Gherkin, anything
    /// else markdown) without resolving steps.
    pub fn add_source(&mut self, path: &Path, src: &str, diags: &mut Vec<Diagnostic>) {
        let is_feature = path.extension().is_some_and(|e| e == "feature");
        let (scenarios, d) = if is_feature {
            parse_feature(src, path)
        } else {
            parse_markdown(src, path)
        };
        diags.extend(d);
        for value in canaries_in(src) {
            self.canaries.push(Canary {
                path: path.to_path_buf(),
                value,
            });
        }
        self.scenarios.extend(scenarios);
    }

    /// Resolves every step against `library`, infers check kinds, and returns the diagnostics
    /// (`LS501`, `LS506`, `LS509`).
    pub fn resolve(&mut self, library: &StepLibrary) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        for sc in &mut self.scenarios {
            let mut kind = CheckKind::Behavioural;
            for step in &mut sc.steps {
                match library.resolve(&step.text) {
                    Ok(b) => {
                        kind = kind.max(library.kind_of(b.def));
                        step.binding = Some(b);
                    }
                    Err(ResolveError::Unknown { suggestion }) => {
                        let help = suggestion.map_or_else(
                            || "register a custom step with StepLibrary::register".to_owned(),
                            |s| format!("the nearest known step is `{s}`"),
                        );
                        diags.push(diag(
                            "LS501",
                            Severity::Error,
                            step.span,
                            format!("unknown step `{}`", step.text),
                            &help,
                            &sc.path,
                        ));
                    }
                    Err(ResolveError::NoValue) => diags.push(diag(
                        "LS506",
                        Severity::Error,
                        step.span,
                        "this step yields no value to save with `as {name}`".to_owned(),
                        "remove `as {...}` or save a value with `I save the JSON at `$.path` as {name}`",
                        &sc.path,
                    )),
                    Err(ResolveError::Invalid(m)) => diags.push(diag(
                        "LS509",
                        Severity::Error,
                        step.span,
                        m,
                        "fix the step's arguments",
                        &sc.path,
                    )),
                }
            }
            if !sc.kind_explicit {
                sc.kind = kind;
            }
        }
        diags
    }

    /// Scenarios whose every step resolved.
    pub fn is_resolved(&self) -> bool {
        self.scenarios
            .iter()
            .all(|s| s.steps.iter().all(|st| st.binding.is_some()))
    }
}

/// Which requirements a holdout's scenarios satisfy, by id only: no name, step or value of a
/// scenario, so it may cross into the spec stage (`lightsout spec check`'s LS103) and the
/// report without carrying holdout text.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HoldoutCoverage {
    /// Scenario id → the requirement ids its `Satisfies:` names, in file order.
    pub scenarios: std::collections::BTreeMap<String, Vec<String>>,
}

impl HoldoutCoverage {
    /// Reads the scenario files (`*.scenario.md`, `*.feature`) under `dir`, steps unresolved.
    /// `None` when there are none, or when none of their scenarios names a requirement (a
    /// runner's holdout whose files only carry canaries): the coverage is then unknown, not
    /// empty.
    ///
    /// # Errors
    /// [`Error::Io`] when `dir` cannot be listed.
    pub fn of_dir(dir: &Path) -> Result<Option<Self>, Error> {
        let mut files = Vec::new();
        collect_files(dir, &mut files)?;
        if files.is_empty() {
            return Ok(None);
        }
        files.sort();
        let mut suite = Suite::default();
        let mut diags = Vec::new();
        for file in files {
            let rel = file.strip_prefix(dir).unwrap_or(&file).to_path_buf();
            // An unreadable file covers nothing; the evaluation itself reports it.
            if let Ok(b) = std::fs::read(&file) {
                suite.add_source(&rel, &String::from_utf8_lossy(&b), &mut diags);
            }
        }
        if suite.scenarios.iter().all(|s| s.satisfies.is_empty()) {
            return Ok(None);
        }
        Ok(Some(HoldoutCoverage {
            scenarios: suite
                .scenarios
                .into_iter()
                .map(|s| (s.id, s.satisfies))
                .collect(),
        }))
    }

    /// Every requirement id some scenario satisfies.
    pub fn requirements(&self) -> std::collections::BTreeSet<String> {
        self.scenarios.values().flatten().cloned().collect()
    }

    /// The scenarios that satisfy requirement `id`, in id order.
    pub fn scenarios_of(&self, id: &str) -> Vec<String> {
        self.scenarios
            .iter()
            .filter(|(_, reqs)| reqs.iter().any(|r| r == id))
            .map(|(s, _)| s.clone())
            .collect()
    }
}

/// The scenario files under `dir`, skipping hidden files and folders.
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let hidden = |name: &std::ffi::OsStr| name.to_string_lossy().starts_with('.');
    for entry in lightsout_stdx::walk::walk(dir, hidden) {
        let entry = entry.map_err(std::io::Error::from)?;
        let name = entry.file_name().to_string_lossy();
        if !entry.file_type().is_dir()
            && !name.starts_with('.')
            && (name.ends_with(".scenario.md") || name.ends_with(".feature"))
        {
            out.push(entry.into_path());
        }
    }
    Ok(())
}

static CANARY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?im)^[ \t]*(?:<!--[ \t]*|#[ \t]*)?canary:[ \t]*([^\s<>]+)")
        .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});

/// Canary strings declared in a file: lines `Canary: X`, `<!-- canary: X -->` or `# canary: X`.
pub fn canaries_in(src: &str) -> Vec<String> {
    CANARY
        .captures_iter(src)
        .map(|c| c[1].to_owned())
        .filter(|v| v.len() >= 4)
        .collect()
}

/// The opaque scenario id: `S-` + the low 32 bits of FNV-1a over `path \0 name`, in hex.
pub fn scenario_id(path: &Path, name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let p = path.to_string_lossy().replace('\\', "/");
    for b in p.bytes().chain([0]).chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("S-{:08x}", (h ^ (h >> 32)) as u32)
}

fn split_list(s: &str) -> Vec<String> {
    s.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn tags_of(s: &str) -> Vec<String> {
    split_list(s)
        .into_iter()
        .map(|t| {
            if t.starts_with('@') {
                t
            } else {
                format!("@{t}")
            }
        })
        .collect()
}

fn kind_of(s: &str) -> Option<CheckKind> {
    match s.trim().to_ascii_lowercase().as_str() {
        "behavioural" | "behavioral" => Some(CheckKind::Behavioural),
        "load" => Some(CheckKind::Load),
        "adversarial" => Some(CheckKind::Adversarial),
        _ => None,
    }
}

static STEP_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)^\s*(given|when|then|and|but)\b[\s:]*(.*)$")
        .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});

fn keyword(word: &str) -> StepKeyword {
    match word.to_ascii_lowercase().as_str() {
        "given" => StepKeyword::Given,
        "when" => StepKeyword::When,
        "then" => StepKeyword::Then,
        "but" => StepKeyword::But,
        _ => StepKeyword::And,
    }
}

/// Metadata lines shared by the file and its scenarios.
#[derive(Debug, Clone, Default)]
struct Meta {
    satisfies: Vec<String>,
    tags: Vec<String>,
    kind: Option<CheckKind>,
    /// The requirement ids came from the file: a scenario's own `Satisfies:` replaces them.
    inherited: bool,
}

impl Meta {
    /// Applies one `Key: value` line; returns false when it is not a metadata line.
    /// A copy for a scenario: its own `Satisfies:` line will replace the file's.
    fn for_scenario(&self) -> Meta {
        Meta {
            inherited: true,
            ..self.clone()
        }
    }

    fn apply(&mut self, line: &str) -> bool {
        let Some((key, value)) = line.split_once(':') else {
            return false;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "satisfies" | "requirements" | "requirement" => {
                if self.inherited {
                    self.satisfies.clear();
                    self.inherited = false;
                }
                self.satisfies.extend(split_list(value));
            }
            "tags" | "tag" => self.tags.extend(tags_of(value)),
            "kind" => self.kind = kind_of(value).or(self.kind),
            "canary" => {}
            _ => return false,
        }
        true
    }
}

struct Builder<'a> {
    path: &'a Path,
    src: &'a str,
    out: Vec<Scenario>,
    diags: Vec<Diagnostic>,
}

impl Builder<'_> {
    fn finish(&mut self, name: String, meta: &Meta, steps: Vec<ScenarioStep>, span: Span) {
        let mut id = scenario_id(self.path, &name);
        if self.out.iter().any(|s| s.name == name) {
            self.diags.push(diag(
                "LS507",
                Severity::Warning,
                span,
                format!("duplicate scenario name `{name}`"),
                "give each scenario in a file its own name; results are keyed by it",
                self.path,
            ));
            id = scenario_id(self.path, &format!("{name}\0{}", span.start));
        }
        if steps.is_empty() {
            self.diags.push(diag(
                "LS503",
                Severity::Error,
                span,
                format!("scenario `{name}` has no steps"),
                "add `- **GIVEN** ...`, `- **WHEN** ...`, `- **THEN** ...` list items",
                self.path,
            ));
        }
        if meta.satisfies.is_empty() {
            self.diags.push(diag(
                "LS505",
                Severity::Warning,
                span,
                format!("scenario `{name}` traces to no requirement"),
                "add a `Satisfies: REQ-n` line so failures name a requirement",
                self.path,
            ));
        }
        let mut tags = meta.tags.clone();
        tags.dedup();
        self.out.push(Scenario {
            id,
            name,
            path: self.path.to_path_buf(),
            satisfies: meta.satisfies.clone(),
            tags,
            kind: meta.kind.unwrap_or(CheckKind::Behavioural),
            kind_explicit: meta.kind.is_some(),
            steps,
            span: Span::from_range(self.src, span.start, span.end),
        });
    }
}

/// Parses a `*.scenario.md` file: `## Scenario: name` headings (any level), `Satisfies:`,
/// `Tags:`, `Kind:` and `Canary:` lines (before the first scenario they apply to the whole
/// file), and `- **GIVEN** ...` list items. Never panics.
pub fn parse_markdown(src: &str, path: &Path) -> (Vec<Scenario>, Vec<Diagnostic>) {
    let mut b = Builder {
        path,
        src,
        out: Vec::new(),
        diags: Vec::new(),
    };
    let mut file_meta = Meta::default();
    let mut cur: Option<Current> = None;
    let mut heading: Option<(u32, usize)> = None;
    let mut buf = String::new();
    let mut item_depth = 0u32;
    let mut item_start = 0usize;
    let mut in_para = false;
    let mut in_code_block = false;
    for (event, range) in Parser::new_ext(src, Options::empty()).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                heading = Some((level as u32, range.start));
                buf.clear();
            }
            Event::End(TagEnd::Heading(_)) => {
                let Some((level, start)) = heading.take() else {
                    continue;
                };
                md_heading(&mut b, &mut cur, &file_meta, buf.trim(), level, start);
            }
            Event::Start(Tag::Item) => {
                item_depth += 1;
                if item_depth == 1 {
                    item_start = range.start;
                    buf.clear();
                }
            }
            Event::End(TagEnd::Item) => {
                item_depth = item_depth.saturating_sub(1);
                if item_depth > 0 {
                    continue;
                }
                let Some(c) = cur.as_mut() else {
                    continue;
                };
                let span = Span::from_range(src, item_start, range.end);
                md_item(&mut b, c, buf.trim(), span);
            }
            Event::Start(Tag::Paragraph) if item_depth == 0 && heading.is_none() => {
                in_para = true;
                buf.clear();
            }
            Event::End(TagEnd::Paragraph) if in_para => {
                in_para = false;
                for line in buf.lines() {
                    match cur.as_mut() {
                        Some(c) => {
                            c.meta.apply(line);
                        }
                        None => {
                            file_meta.apply(line);
                        }
                    }
                }
            }
            Event::Start(Tag::CodeBlock(_)) => in_code_block = true,
            Event::End(TagEnd::CodeBlock) => in_code_block = false,
            Event::Text(t) if !in_code_block => buf.push_str(&t),
            Event::Code(t) => {
                buf.push('`');
                buf.push_str(&t);
                buf.push('`');
            }
            Event::SoftBreak | Event::HardBreak => {
                buf.push(if in_para { '\n' } else { ' ' });
            }
            _ => {}
        }
    }
    if let Some(c) = cur.take() {
        close(&mut b, c, src.len());
    }
    (b.out, b.diags)
}

/// A markdown scenario being read: from its heading to the next heading of its level or
/// higher.
struct Current {
    name: String,
    level: u32,
    meta: Meta,
    steps: Vec<ScenarioStep>,
    start: usize,
}

/// Ends scenario `c` at byte `end`.
fn close(b: &mut Builder<'_>, c: Current, end: usize) {
    let span = Span::from_range(b.src, c.start, end);
    b.finish(c.name, &c.meta, c.steps, span);
}

/// A heading of `level` at byte `start` with `text`: `Scenario: name` (or `Scenario
/// Outline:`, `Example:`) opens a scenario; any heading at the open scenario's level or
/// higher closes it.
fn md_heading(
    b: &mut Builder<'_>,
    cur: &mut Option<Current>,
    file_meta: &Meta,
    text: &str,
    level: u32,
    start: usize,
) {
    let lower = text.to_ascii_lowercase();
    let name = ["scenario outline:", "scenario:", "example:"]
        .iter()
        .find(|p| lower.starts_with(*p))
        .map(|p| text[p.len()..].trim().to_owned());
    if let Some(name) = name {
        if let Some(c) = cur.take() {
            close(b, c, start);
        }
        *cur = Some(Current {
            name,
            level,
            meta: file_meta.for_scenario(),
            steps: Vec::new(),
            start,
        });
    } else if cur.as_ref().is_some_and(|c| level <= c.level)
        && let Some(c) = cur.take()
    {
        close(b, c, start);
    }
}

/// A top-level list item of scenario `c`: a step, else a metadata line, else ignored with
/// a warning.
fn md_item(b: &mut Builder<'_>, c: &mut Current, text: &str, span: Span) {
    if let Some(caps) = STEP_LINE.captures(text) {
        c.steps.push(ScenarioStep {
            keyword: keyword(&caps[1]),
            text: caps[2].split_whitespace().collect::<Vec<_>>().join(" "),
            span,
            binding: None,
        });
    } else if !c.meta.apply(text) {
        b.diags.push(diag(
            "LS504",
            Severity::Warning,
            span,
            "list item is not a Given/When/Then step; it is ignored".to_owned(),
            "start it with **GIVEN**, **WHEN**, **THEN**, **AND** or **BUT**",
            b.path,
        ));
    }
}

static GHERKIN_POS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"at (\d+):(\d+)").unwrap_or_else(|e| unreachable!("static regex: {e}"))
});

fn line_offset(src: &str, line: usize) -> usize {
    if line <= 1 {
        return 0;
    }
    src.match_indices('\n')
        .nth(line - 2)
        .map_or(src.len(), |(i, _)| i + 1)
}

/// Parses a Gherkin `*.feature` file with the `gherkin` crate. Scenario outlines expand one
/// scenario per example row; background steps are prepended; description lines `Satisfies:`,
/// `Kind:` and tags `@satisfies:REQ-1` trace requirements. A docstring is appended to its step
/// as a backtick argument (`with JSON:` + docstring reads as ``with JSON `...` ``). Never panics.
pub fn parse_feature(src: &str, path: &Path) -> (Vec<Scenario>, Vec<Diagnostic>) {
    let mut b = Builder {
        path,
        src,
        out: Vec::new(),
        diags: Vec::new(),
    };
    let feature = match gherkin::Feature::parse(src, gherkin::GherkinEnv::default()) {
        Ok(f) => f,
        Err(e) => {
            let msg = e.to_string();
            let (line, _) = GHERKIN_POS
                .captures(&msg)
                .and_then(|c| Some((c[1].parse::<usize>().ok()?, c[2].parse::<usize>().ok()?)))
                .unwrap_or((1, 1));
            let start = line_offset(src, line);
            let end = src[start..].find('\n').map_or(src.len(), |i| start + i);
            b.diags.push(diag(
                "LS502",
                Severity::Error,
                Span::from_range(src, start, end),
                format!("gherkin syntax error: {msg}"),
                "see https://cucumber.io/docs/gherkin/reference/",
                path,
            ));
            return (b.out, b.diags);
        }
    };
    let mut file_meta = Meta::default();
    for line in feature.description.iter().flat_map(|d| d.lines()) {
        file_meta.apply(line.trim());
    }
    file_meta
        .tags
        .extend(feature.tags.iter().map(|t| format!("@{t}")));
    let mut groups: Vec<(Meta, Vec<gherkin::Step>, &[gherkin::Scenario])> = Vec::new();
    let bg = feature
        .background
        .as_ref()
        .map(|b| b.steps.clone())
        .unwrap_or_default();
    groups.push((file_meta.clone(), bg.clone(), &feature.scenarios));
    for rule in &feature.rules {
        let mut meta = file_meta.clone();
        meta.tags.extend(rule.tags.iter().map(|t| format!("@{t}")));
        let mut steps = bg.clone();
        steps.extend(
            rule.background
                .as_ref()
                .map(|b| b.steps.clone())
                .unwrap_or_default(),
        );
        groups.push((meta, steps, &rule.scenarios));
    }
    for (meta, background, scenarios) in groups {
        for sc in scenarios {
            let mut m = meta.for_scenario();
            for line in sc.description.iter().flat_map(|d| d.lines()) {
                m.apply(line.trim());
            }
            for t in &sc.tags {
                if let Some(req) = t.strip_prefix("satisfies:") {
                    m.apply(&format!("Satisfies: {req}"));
                } else {
                    m.tags.push(format!("@{t}"));
                }
            }
            let span = Span::from_range(src, sc.span.start, sc.span.end);
            let rows: Vec<Vec<(String, String)>> = expand_examples(sc);
            for (i, row) in rows.iter().enumerate() {
                let steps = background
                    .iter()
                    .chain(&sc.steps)
                    .map(|st| gherkin_step(src, st, row))
                    .collect();
                let name = if rows.len() > 1 {
                    format!("{} #{}", sc.name, i + 1)
                } else {
                    sc.name.clone()
                };
                b.finish(name, &m, steps, span);
            }
        }
    }
    (b.out, b.diags)
}

fn expand_examples(sc: &gherkin::Scenario) -> Vec<Vec<(String, String)>> {
    let mut rows = Vec::new();
    for ex in &sc.examples {
        let Some(table) = &ex.table else { continue };
        let Some((head, body)) = table.rows.split_first() else {
            continue;
        };
        for r in body {
            rows.push(head.iter().cloned().zip(r.iter().cloned()).collect());
        }
    }
    if rows.is_empty() {
        rows.push(Vec::new());
    }
    rows
}

fn gherkin_step(src: &str, st: &gherkin::Step, row: &[(String, String)]) -> ScenarioStep {
    let mut text = st.value.trim().to_owned();
    if let Some(doc) = &st.docstring {
        let doc = doc.split_whitespace().collect::<Vec<_>>().join(" ");
        text = format!("{} `{doc}`", text.trim_end_matches(':').trim_end());
    }
    for (k, v) in row {
        text = text.replace(&format!("<{k}>"), v);
    }
    let kw = match st.keyword.trim().to_ascii_lowercase().as_str() {
        "and" | "*" => StepKeyword::And,
        "but" => StepKeyword::But,
        _ => match st.ty {
            gherkin::StepType::Given => StepKeyword::Given,
            gherkin::StepType::When => StepKeyword::When,
            gherkin::StepType::Then => StepKeyword::Then,
        },
    };
    ScenarioStep {
        keyword: kw,
        text,
        span: Span::from_range(src, st.span.start, st.span.end),
        binding: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn coverage_holds_ids_only_and_is_unknown_without_scenario_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("run.sh"), "echo secret-step\n").unwrap();
        assert_eq!(HoldoutCoverage::of_dir(d.path()).unwrap(), None);
        // Scenario files that name no requirement (a runner's canary file) say nothing either.
        std::fs::write(
            d.path().join("canary.feature"),
            "# canary: CANARY-123456\nFeature: files\n\n  Scenario: the files exist\n    \
             When I run `true`\n    Then the exit code is 0\n",
        )
        .unwrap();
        assert_eq!(HoldoutCoverage::of_dir(d.path()).unwrap(), None);
        std::fs::write(
            d.path().join("a.scenario.md"),
            "# A\n\n## Scenario: posting a secret-word link\nSatisfies: REQ-1, REQ-9\n\n\
             - **GIVEN** the service is running\n- **WHEN** I send `GET /secret-path`\n\
             - **THEN** the status is 200\n",
        )
        .unwrap();
        let c = HoldoutCoverage::of_dir(d.path()).unwrap().unwrap();
        assert_eq!(
            c.requirements().into_iter().collect::<Vec<_>>(),
            ["REQ-1", "REQ-9"]
        );
        assert_eq!(c.scenarios.len(), 2);
        let id = c
            .scenarios
            .iter()
            .find(|(_, reqs)| !reqs.is_empty())
            .unwrap()
            .0
            .clone();
        assert!(id.starts_with("S-"), "{id}");
        assert_eq!(c.scenarios_of("REQ-9"), [id]);
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            !json.contains("secret") && !json.contains("CANARY"),
            "{json}"
        );
    }

    const MD: &str = r#"# Links
<!-- canary: c4n4ry-7f3e -->
Tags: @api

## Scenario: an expired token is rejected
Satisfies: REQ-3
Tags: @critical

- **GIVEN** the service is running
- **WHEN** I send `POST /links` with header `Authorization: Bearer {token}` and JSON `{"url":"https://example.com"}`
- **THEN** the status is 401 within 200 ms
- **AND** the JSON at `$.error` is "token_expired"

## Scenario: load
Satisfies: REQ-4

- **WHEN** 5 clients send `GET /x` for 1 s
- **THEN** p99 is under 150 ms and errors are under 1%
"#;

    #[test]
    fn markdown_scenarios_with_meta_steps_and_canary() {
        let (sc, d) = parse_markdown(MD, Path::new("links.scenario.md"));
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(sc.len(), 2);
        assert_eq!(sc[0].name, "an expired token is rejected");
        assert_eq!(sc[0].satisfies, vec!["REQ-3"]);
        assert_eq!(sc[0].tags, vec!["@api", "@critical"]);
        assert_eq!(sc[0].steps.len(), 4);
        assert_eq!(
            sc[0].steps[1].text,
            r#"I send `POST /links` with header `Authorization: Bearer {token}` and JSON `{"url":"https://example.com"}`"#
        );
        assert_eq!(sc[0].steps[2].keyword, StepKeyword::Then);
        assert_eq!(sc[0].steps[0].span.line, 9);
        assert_eq!(canaries_in(MD), vec!["c4n4ry-7f3e"]);
        let mut suite = Suite {
            scenarios: sc,
            ..Suite::default()
        };
        let d = suite.resolve(&StepLibrary::builtin());
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(suite.scenarios[1].kind, CheckKind::Load);
        assert_eq!(suite.scenarios[0].kind, CheckKind::Behavioural);
    }

    #[test]
    fn unknown_step_is_an_error_with_span_and_suggestion() {
        let src = "## Scenario: x\nSatisfies: REQ-1\n\n- **WHEN** I send `GET /get`\n- **THEN** the staus is 200\n";
        let (sc, _) = parse_markdown(src, Path::new("a.scenario.md"));
        let mut suite = Suite {
            scenarios: sc,
            ..Suite::default()
        };
        let d = suite.resolve(&StepLibrary::builtin());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, "LS501");
        assert_eq!(d[0].span.line, 5);
        assert_eq!(
            &src[d[0].span.start..d[0].span.end].trim_end(),
            &"- **THEN** the staus is 200"
        );
        assert!(d[0].help.contains("the status is 200"), "{}", d[0].help);
        assert!(!suite.is_resolved());
    }

    #[test]
    fn feature_file_with_outline_background_and_docstring() {
        let src = r#"# canary: feat-canary-01
@api
Feature: httpbin
  Satisfies: REQ-9

  Background:
    Given the service is running

  @critical @satisfies:REQ-1
  Scenario Outline: status codes
    When I send `GET /status/<code>`
    Then the status is <code>

    Examples:
      | code |
      | 200  |
      | 418  |

  Scenario: post json
    When I send `POST /post` with JSON:
      """
      {"a": 1}
      """
    Then the JSON at `$.json.a` is 1
"#;
        let (sc, d) = parse_feature(src, Path::new("f.feature"));
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(sc.len(), 3);
        assert_eq!(sc[0].steps[1].text, "I send `GET /status/200`");
        assert_eq!(sc[1].steps[2].text, "the status is 418");
        assert_eq!(sc[0].satisfies, vec!["REQ-1"]);
        assert_eq!(sc[2].satisfies, vec!["REQ-9"]);
        assert!(sc[0].has_tag("critical") && sc[0].has_tag("@api"));
        assert_eq!(
            sc[2].steps[1].text,
            r#"I send `POST /post` with JSON `{"a": 1}`"#
        );
        assert_eq!(canaries_in(src), vec!["feat-canary-01"]);
        let mut suite = Suite {
            scenarios: sc,
            ..Suite::default()
        };
        assert!(suite.resolve(&StepLibrary::builtin()).is_empty());
    }

    #[test]
    fn gherkin_syntax_error_is_a_diagnostic() {
        let (sc, d) = parse_feature("Feature: x\n  Scenario\n  Given\n", Path::new("b.feature"));
        assert!(sc.is_empty());
        assert_eq!(d[0].code, "LS502");
    }

    #[test]
    fn ids_are_stable_and_opaque() {
        let a = scenario_id(Path::new("a.scenario.md"), "x");
        assert_eq!(a, scenario_id(Path::new("a.scenario.md"), "x"));
        assert_ne!(a, scenario_id(Path::new("a.scenario.md"), "y"));
        assert!(a.starts_with("S-") && a.len() == 10);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(src in "\\PC{0,300}") {
            let _ = parse_markdown(&src, Path::new("x.scenario.md"));
            let _ = parse_feature(&src, Path::new("x.feature"));
        }

        #[test]
        fn step_spans_lie_inside_the_source(steps in proptest::collection::vec("[a-z `{}$.]{1,30}", 1..6)) {
            let mut src = String::from("## Scenario: p\nSatisfies: REQ-1\n\n");
            for s in &steps {
                src.push_str("- **WHEN** ");
                src.push_str(s);
                src.push('\n');
            }
            let (sc, _) = parse_markdown(&src, Path::new("p.scenario.md"));
            for st in sc.iter().flat_map(|s| &s.steps) {
                prop_assert!(st.span.start <= st.span.end && st.span.end <= src.len());
            }
        }
    }
}
