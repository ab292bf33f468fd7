//! Renderers: rustc-style human text, the JSON report, SARIF 2.1.0, and a [`Spec`] back to
//! Lightsout markdown.
//!
//! The human renderer emits ANSI styles (anstyle) when asked to; the CLI writes through
//! `anstream`, which strips them when stdout is not a terminal or `NO_COLOR` is set.

use crate::check::Readiness;
use crate::codes;
use crate::diagnostic::{Diagnostic, Severity};
use crate::diff::{ChangeKind, SpecDiff};
use crate::model::{DeltaOp, Dialect, SectionKind, Spec, SpecKind, SpecStatus, StepKeyword};
use anstyle::{AnsiColor, Effects, Style};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Version of the JSON report's shape; bumped on any breaking change.
pub const REPORT_VERSION: &str = "1";

/// The check result of one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileReport {
    /// The file.
    pub path: Option<PathBuf>,
    /// The dialect it was read as.
    pub dialect: Dialect,
    /// Its spec id.
    pub spec_id: String,
    /// Number of requirements.
    pub requirements: usize,
    /// Number of visible scenarios over all requirements.
    pub scenarios: usize,
    /// Every finding for the file, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    /// Score and verdict of this file.
    pub readiness: Readiness,
}

impl FileReport {
    /// Builds the report of one spec from its diagnostics (sorted here by line, column, code).
    pub fn new(spec: &Spec, mut diagnostics: Vec<Diagnostic>, strict: bool) -> Self {
        sort(&mut diagnostics);
        let readiness = Readiness::from_diagnostics(&diagnostics, strict);
        FileReport {
            path: spec.path.clone(),
            dialect: spec.dialect,
            spec_id: spec.meta.id.clone(),
            requirements: spec.requirements.len(),
            scenarios: spec.requirements.iter().map(|r| r.scenarios.len()).sum(),
            diagnostics,
            readiness,
        }
    }
}

/// The JSON document of `lightsout spec check --format json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JsonReport {
    /// [`REPORT_VERSION`].
    pub version: String,
    /// Whether warnings block (`--strict`).
    pub strict: bool,
    /// One entry per file, in path order.
    pub files: Vec<FileReport>,
    /// Cross-spec findings ([`crate::check_project`]).
    pub project: Vec<Diagnostic>,
    /// Readiness over every finding of every file.
    pub summary: Readiness,
}

impl JsonReport {
    /// Assembles the report; `summary` is computed from all diagnostics.
    pub fn new(files: Vec<FileReport>, mut project: Vec<Diagnostic>, strict: bool) -> Self {
        sort(&mut project);
        let all: Vec<Diagnostic> = files
            .iter()
            .flat_map(|f| f.diagnostics.iter().cloned())
            .chain(project.iter().cloned())
            .collect();
        JsonReport {
            version: REPORT_VERSION.to_owned(),
            strict,
            files,
            project,
            summary: Readiness::from_diagnostics(&all, strict),
        }
    }

    /// Every diagnostic, files first.
    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.files
            .iter()
            .flat_map(|f| f.diagnostics.iter())
            .chain(self.project.iter())
    }
}

/// Sorts diagnostics by path, position, then code: the order every renderer uses.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        (&a.path, a.span.start, &a.code, &a.message).cmp(&(
            &b.path,
            b.span.start,
            &b.code,
            &b.message,
        ))
    });
}

fn style(sev: Severity) -> Style {
    match sev {
        Severity::Error => AnsiColor::BrightRed.on_default().effects(Effects::BOLD),
        Severity::Warning => AnsiColor::BrightYellow.on_default().effects(Effects::BOLD),
        Severity::Info => AnsiColor::BrightCyan.on_default().effects(Effects::BOLD),
    }
}

/// One diagnostic in rustc's layout: header, ` --> path:line:col`, the source line with a
/// caret run under the span, then `= help:`. `source` is the file's text (`""` when not at
/// hand: the snippet is left out). With `color`, ANSI styles are included.
pub fn human_diagnostic(d: &Diagnostic, source: &str, color: bool) -> String {
    let (sev, bold, blue, reset) = if color {
        let b = Style::new().effects(Effects::BOLD);
        let bl = AnsiColor::BrightBlue.on_default().effects(Effects::BOLD);
        (
            style(d.severity).render().to_string(),
            b.render().to_string(),
            bl.render().to_string(),
            "\x1b[0m".to_owned(),
        )
    } else {
        (String::new(), String::new(), String::new(), String::new())
    };
    let mut out = String::new();
    let line_no = d.span.line.to_string();
    let pad = " ".repeat(line_no.len());
    let _ = writeln!(
        out,
        "{sev}{}[{}]{reset}{bold}: {}{reset}",
        d.severity.as_str(),
        d.code,
        d.message
    );
    let path = d
        .path
        .as_deref()
        .map_or_else(|| "<input>".to_owned(), |p| p.display().to_string());
    let _ = writeln!(
        out,
        "{pad}{blue}-->{reset} {path}:{}:{}",
        d.span.line, d.span.column
    );
    if let Some(line) = source_line(source, d.span.start) {
        let col = d.span.column.saturating_sub(1) as usize;
        let line_text = line.trim_end_matches(['\r', '\n']);
        let line_chars = line_text.chars().count();
        let span_chars = source
            .get(d.span.start..d.span.end.min(d.span.start + line_text.len()))
            .map_or(1, |s| s.split('\n').next().unwrap_or("").chars().count())
            .clamp(1, line_chars.saturating_sub(col).max(1));
        let lead: String = line_text
            .chars()
            .take(col)
            .map(|ch| if ch == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = writeln!(out, "{pad} {blue}|{reset}");
        let _ = writeln!(
            out,
            "{blue}{line_no} |{reset} {}",
            line_text
                .replace('\t', "    ")
                .chars()
                .take(200)
                .collect::<String>()
        );
        let lead = lead.replace('\t', "    ");
        let _ = writeln!(
            out,
            "{pad} {blue}|{reset} {lead}{sev}{}{reset}",
            "^".repeat(span_chars.min(200))
        );
        let _ = writeln!(out, "{pad} {blue}|{reset}");
    }
    if !d.help.is_empty() {
        let _ = writeln!(out, "{pad} {blue}={reset} {bold}help{reset}: {}", d.help);
    }
    out
}

fn source_line(source: &str, at: usize) -> Option<&str> {
    if source.is_empty() || at > source.len() {
        return None;
    }
    let start = source.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let end = source
        .get(at..)?
        .find('\n')
        .map_or(source.len(), |i| at + i);
    source.get(start..end)
}

/// The whole human report: every diagnostic, then one status line per file and a summary.
/// `source_of` returns a file's text for its snippets.
pub fn human_report(
    report: &JsonReport,
    source_of: &dyn Fn(&Path) -> Option<String>,
    color: bool,
) -> String {
    let mut out = String::new();
    let (green, red, bold, reset) = if color {
        (
            AnsiColor::BrightGreen
                .on_default()
                .effects(Effects::BOLD)
                .render()
                .to_string(),
            AnsiColor::BrightRed
                .on_default()
                .effects(Effects::BOLD)
                .render()
                .to_string(),
            Style::new().effects(Effects::BOLD).render().to_string(),
            "\x1b[0m".to_owned(),
        )
    } else {
        Default::default()
    };
    for f in &report.files {
        let src = f.path.as_deref().and_then(source_of).unwrap_or_default();
        for d in &f.diagnostics {
            out.push_str(&human_diagnostic(d, &src, color));
            out.push('\n');
        }
    }
    for d in &report.project {
        let src = d.path.as_deref().and_then(source_of).unwrap_or_default();
        out.push_str(&human_diagnostic(d, &src, color));
        out.push('\n');
    }
    for f in &report.files {
        let r = &f.readiness;
        let (c, word) = if r.ready {
            (&green, "ready")
        } else {
            (&red, "not ready")
        };
        let path = f
            .path
            .as_deref()
            .map_or_else(|| "<input>".to_owned(), |p| p.display().to_string());
        let _ = writeln!(
            out,
            "{c}{word:>9}{reset} {path} [{}] {} requirements, {} scenarios, score {:.0}%, {} errors, {} warnings",
            f.dialect.as_str(),
            f.requirements,
            f.scenarios,
            r.score * 100.0,
            r.errors,
            r.warnings
        );
    }
    let s = &report.summary;
    let (c, word) = if s.ready {
        (&green, "ready")
    } else {
        (&red, "not ready")
    };
    let _ = writeln!(
        out,
        "{bold}summary{reset}: {c}{word}{reset}: {} files, score {:.0}%, {} errors, {} warnings{}",
        report.files.len(),
        s.score * 100.0,
        s.errors,
        s.warnings,
        if report.strict {
            " (strict: warnings block)"
        } else {
            ""
        }
    );
    out
}

/// SARIF 2.1.0 (OASIS, <https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html>)
/// with one run, every rule of [`codes::RULES`], and one result per diagnostic. Regions use
/// 1-based lines and Unicode-code-point columns (`columnKind: unicodeCodePoints`) plus the
/// byte offset and length.
pub fn sarif(report: &JsonReport) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = codes::RULES
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.code,
                "name": r.name,
                "shortDescription": { "text": r.description },
                "properties": { "checklist": r.check },
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = report
        .diagnostics()
        .map(|d| {
            let level = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "note",
            };
            let idx = codes::RULES.iter().position(|r| r.code == d.code);
            let mut v = serde_json::json!({
                "ruleId": d.code,
                "level": level,
                "message": { "text": format!("{}\nhelp: {}", d.message, d.help) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(d.path.as_deref()) },
                        "region": {
                            "startLine": d.span.line,
                            "startColumn": d.span.column,
                            "byteOffset": d.span.start,
                            "byteLength": d.span.len(),
                        }
                    }
                }],
            });
            if let (Some(i), Some(obj)) = (idx, v.as_object_mut()) {
                obj.insert("ruleIndex".to_owned(), i.into());
            }
            v
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "lightsout",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/lightsout",
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

fn uri(p: Option<&Path>) -> String {
    let Some(p) = p else {
        return "input.md".to_owned();
    };
    let s = p.to_string_lossy().replace('\\', "/");
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            ' ' => out.push_str("%20"),
            '%' => out.push_str("%25"),
            '#' => out.push_str("%23"),
            '?' => out.push_str("%3F"),
            _ => out.push(ch),
        }
    }
    out.trim_start_matches("./").to_owned()
}

/// The human form of a [`SpecDiff`]: `+ added`, `- removed`, `~ modified (fields)`, then its
/// diagnostics.
pub fn human_diff(d: &SpecDiff, new_source: &str, color: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} v{} → {} v{}",
        d.old_id,
        d.old_version
            .map_or_else(|| "?".to_owned(), |v| v.to_string()),
        d.new_id,
        d.new_version
            .map_or_else(|| "?".to_owned(), |v| v.to_string())
    );
    if d.changes.is_empty() {
        out.push_str("no requirement changed\n");
    }
    for c in &d.changes {
        let (mark, word) = match c.kind {
            ChangeKind::Added => ('+', "added"),
            ChangeKind::Removed => ('-', "removed"),
            ChangeKind::Modified => ('~', "modified"),
        };
        if c.fields.is_empty() {
            let _ = writeln!(out, "{mark} {} ({word})", c.id);
        } else {
            let _ = writeln!(out, "{mark} {} ({word}: {})", c.id, c.fields.join(", "));
        }
    }
    for diag in &d.diagnostics {
        out.push('\n');
        out.push_str(&human_diagnostic(diag, new_source, color));
    }
    out
}

/// Escapes text so that CommonMark reads it back as the same plain text.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(
            ch,
            '\\' | '*' | '_' | '[' | ']' | '<' | '>' | '`' | '#' | '!' | '|' | '~' | '&'
        ) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// [`esc`] for the text of an ATX heading, which ends at the first line break: a multi-line
/// (setext) heading comes out on one line, its breaks made spaces.
fn esc_heading(s: &str) -> String {
    esc(&s.replace(['\r', '\n'], " "))
}

fn kw(k: StepKeyword) -> &'static str {
    match k {
        StepKeyword::Given => "GIVEN",
        StepKeyword::When => "WHEN",
        StepKeyword::Then => "THEN",
        StepKeyword::And => "AND",
        StepKeyword::But => "BUT",
    }
}

fn default_heading(k: SectionKind) -> &'static str {
    match k {
        SectionKind::Intent => "Intent",
        SectionKind::Users => "Users",
        SectionKind::Inputs => "Inputs",
        SectionKind::Outputs => "Outputs",
        SectionKind::Behaviour => "Behaviour",
        SectionKind::AntiSpec => "Anti-spec",
        SectionKind::Constraints => "Constraints",
        SectionKind::Decisions => "Decisions",
        SectionKind::Gate => "Verification gate",
        SectionKind::Glossary => "Glossary",
        SectionKind::OpenQuestions => "Open questions",
        SectionKind::Tasks => "Tasks",
        SectionKind::SuccessCriteria => "Success criteria",
        SectionKind::Other => "Notes",
    }
}

/// Renders `spec` as a Lightsout-format markdown document.
///
/// Round trip: for a spec parsed from Lightsout markdown, parsing the output gives the same
/// [`Spec`] apart from spans and [`Spec::path`]. Prose the model does not hold (the text of
/// Intent, Users, Inputs and Outputs) is not reproduced, only their headings and `N/A` notes.
/// Specs read from other dialects come out in Lightsout form (ids and scenarios kept).
pub fn to_markdown(spec: &Spec) -> String {
    let mut o = String::new();
    front_matter(&mut o, &spec.meta);
    if !spec.meta.title.is_empty() {
        let _ = writeln!(o, "# {}\n", esc_heading(&spec.meta.title));
    }
    let kinds = section_list(spec);
    let mut done: Vec<SectionKind> = Vec::new();
    for (kind, heading, na) in &kinds {
        let _ = writeln!(o, "## {}\n", esc_heading(heading));
        if let Some(r) = na {
            let _ = writeln!(o, "N/A: {}\n", esc(r));
            continue;
        }
        let lower = heading.to_lowercase();
        let delta = ["added", "modified", "removed", "renamed"]
            .into_iter()
            .find(|op| lower.starts_with(op));
        if *kind == SectionKind::Behaviour && delta.is_none() && done.contains(kind) {
            continue;
        }
        if *kind != SectionKind::Behaviour && done.contains(kind) {
            continue;
        }
        done.push(*kind);
        section_body(&mut o, spec, *kind, delta);
    }
    o
}

/// The `---` front matter of `m`, followed by a blank line.
fn front_matter(o: &mut String, m: &crate::model::FrontMatter) {
    o.push_str("---\n");
    let _ = writeln!(o, "id: {}", yaml_str(&m.id));
    let _ = writeln!(o, "title: {}", yaml_str(&m.title));
    let kind = match m.kind {
        SpecKind::Architectural => "architectural",
        SpecKind::Feature => "feature",
        SpecKind::Constraint => "constraint",
    };
    let _ = writeln!(o, "kind: {kind}");
    if let Some(v) = m.version {
        let _ = writeln!(o, "version: {v}");
    }
    let status = match m.status {
        SpecStatus::Draft => "draft",
        SpecStatus::Ready => "ready",
        SpecStatus::Accepted => "accepted",
        SpecStatus::Superseded => "superseded",
    };
    let _ = writeln!(o, "status: {status}");
    let deps: Vec<String> = m.depends_on.iter().map(|d| yaml_str(d)).collect();
    let _ = writeln!(o, "depends_on: [{}]", deps.join(", "));
    if let Some(s) = &m.supersedes {
        let _ = writeln!(o, "supersedes: {}", yaml_str(s));
    }
    o.push_str("---\n\n");
}

/// The sections to write, in order: the spec's own (kind, heading, `N/A` reason), then a
/// default heading for each kind that has content but no section.
fn section_list(spec: &Spec) -> Vec<(SectionKind, String, Option<String>)> {
    let mut kinds: Vec<(SectionKind, String, Option<String>)> = spec
        .sections
        .iter()
        .map(|s| (s.kind, s.heading.clone(), s.not_applicable.clone()))
        .collect();
    let mut need = |k: SectionKind, has: bool| {
        if has && !kinds.iter().any(|s| s.0 == k) {
            kinds.push((k, default_heading(k).to_owned(), None));
        }
    };
    need(SectionKind::Behaviour, !spec.requirements.is_empty());
    need(SectionKind::AntiSpec, !spec.anti_spec.is_empty());
    need(SectionKind::Constraints, !spec.constraints.is_empty());
    need(SectionKind::Decisions, !spec.decisions.is_empty());
    need(
        SectionKind::SuccessCriteria,
        !spec.success_criteria.is_empty(),
    );
    need(SectionKind::Gate, !spec.gate.is_empty());
    need(SectionKind::Glossary, !spec.glossary.is_empty());
    need(
        SectionKind::OpenQuestions,
        spec.open_questions
            .iter()
            .any(|q| !q.id.starts_with("MARKER-")),
    );
    need(SectionKind::Tasks, !spec.tasks.is_empty());
    kinds
}

/// The body of a section of `kind` (for behaviour, the requirements whose delta is `delta`).
fn section_body(o: &mut String, spec: &Spec, kind: SectionKind, delta: Option<&str>) {
    match kind {
        SectionKind::Behaviour => {
            for r in &spec.requirements {
                let op = match &r.delta {
                    None => None,
                    Some(DeltaOp::Added) => Some("added"),
                    Some(DeltaOp::Modified) => Some("modified"),
                    Some(DeltaOp::Removed) => Some("removed"),
                    Some(DeltaOp::Renamed { .. }) => Some("renamed"),
                };
                if op != delta {
                    continue;
                }
                if let Some(DeltaOp::Renamed { from }) = &r.delta {
                    let _ = writeln!(o, "- FROM: `### Requirement: {from}`");
                    let _ = writeln!(o, "- TO: `### Requirement: {}`\n", r.title);
                    continue;
                }
                requirement(o, r);
            }
        }
        SectionKind::AntiSpec => items(o, &spec.anti_spec),
        SectionKind::Constraints => items(o, &spec.constraints),
        SectionKind::Decisions => items(o, &spec.decisions),
        SectionKind::SuccessCriteria => items(o, &spec.success_criteria),
        SectionKind::OpenQuestions => {
            let qs: Vec<_> = spec
                .open_questions
                .iter()
                .filter(|q| !q.id.starts_with("MARKER-"))
                .cloned()
                .collect();
            items(o, &qs);
        }
        SectionKind::Gate => {
            for g in &spec.gate {
                let _ = writeln!(o, "- {}", esc(&g.text));
            }
            o.push('\n');
        }
        SectionKind::Glossary => {
            for t in &spec.glossary {
                let _ = writeln!(o, "- **{}**: {}", esc(&t.term), esc(&t.definition));
            }
            o.push('\n');
        }
        SectionKind::Tasks => tasks(o, &spec.tasks),
        _ => {}
    }
}

/// The task list, one `- [ ] T1: title (REQ-1) depends on T0` line each.
fn tasks(o: &mut String, tasks: &[crate::model::TaskItem]) {
    for t in tasks {
        let mut line = format!(
            "- [{}] {}: {}",
            if t.done { 'x' } else { ' ' },
            t.id,
            esc(&t.title)
        );
        if !t.requirements.is_empty() {
            let _ = write!(line, " ({})", t.requirements.join(", "));
        }
        if !t.depends_on.is_empty() {
            let _ = write!(line, " depends on {}", t.depends_on.join(", "));
        }
        let _ = writeln!(o, "{line}");
    }
    o.push('\n');
}

fn requirement(o: &mut String, r: &crate::model::Requirement) {
    let id_form = r.id.contains('-')
        && r.id.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && r.id
            .split('-')
            .nth(1)
            .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()));
    if id_form {
        if r.title.is_empty() {
            let _ = writeln!(o, "### {}\n", r.id);
        } else {
            let _ = writeln!(o, "### {}: {}\n", r.id, esc_heading(&r.title));
        }
    } else {
        let _ = writeln!(o, "### Requirement: {}\n", esc_heading(&r.title));
    }
    if r.body.trim().is_empty() {
        let s: Vec<&str> = r.statements.iter().map(|s| s.text.as_str()).collect();
        if !s.is_empty() {
            let _ = writeln!(o, "{}\n", esc(&s.join(" ")));
        }
    } else {
        let _ = writeln!(o, "{}\n", r.body.trim());
    }
    for s in &r.scenarios {
        let _ = writeln!(o, "#### Scenario: {}", esc_heading(&s.name));
        for st in &s.steps {
            let _ = writeln!(o, "- **{}** {}", kw(st.keyword), esc(&st.text));
        }
        o.push('\n');
    }
}

fn items(o: &mut String, list: &[crate::model::Item]) {
    for it in list {
        let _ = writeln!(o, "- {}: {}", it.id, esc(&it.text));
    }
    o.push('\n');
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}
