//! The dialect readers: a flat list of [`Block`]s to a typed [`Spec`].
//!
//! One walker serves all dialects; the dialect only changes how headings and list items are
//! recognised (Kiro's numbered acceptance criteria, Spec Kit's `**FR-001**` items and user
//! stories, OpenSpec's delta sections).

use crate::blocks::{Block, Text, blocks};
use crate::codes;
use crate::diagnostic::{Diagnostic, Severity, Span};
use crate::ears;
use crate::frontmatter;
use crate::model::{
    DeltaOp, Dialect, FrontMatter, GateRule, GlossaryTerm, Item, Requirement, Scenario, Section,
    SectionKind, Spec, SpecKind, SpecStatus, Statement, Step, StepKeyword, TaskItem,
};
use regex::Regex;
use std::path::Path;
use std::sync::LazyLock;

fn re(s: &str) -> Regex {
    Regex::new(s).expect("static regex is valid")
}

/// `REQ-1: Title`, `FR-001 Title`, `ANTI-2. text`.
static ID_LEAD: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^([A-Z][A-Z0-9]*-[0-9]+[A-Za-z0-9]*)[ \t\r\n]*(?:[:.)\-–—][ \t\r\n]*|[ \t\r\n]+|$)")
});
/// Any id-like token: `REQ-1`, `other-spec#REQ-2`, `FR-001`.
static ID_ANY: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:[a-z0-9][a-z0-9-]*#)?[A-Z][A-Z0-9]*-[0-9]+[A-Za-z0-9]*"));
/// The oracle of [`kiro_req`].
#[cfg(test)]
static KIRO_REQ: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^Requirement[ \t\r\n]+([0-9]+(?:\.[0-9]+)*)[ \t\r\n]*(?:[:.\-–—][ \t\r\n]*(.*))?$")
});
static USER_STORY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^User Story[ \t\r\n]+([0-9]+)[ \t\r\n]*(?:[:\-–—][ \t\r\n]*)?(.*?)[ \t\r\n]*(?:\(Priority:[ \t\r\n]*(P[0-9]+)\))?[ \t\r\n]*$",
    )
});
static TASK_LEAD: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(T[0-9]+[A-Za-z0-9.]*)[ \t\r\n]*(?:[:.)\-–—][ \t\r\n]*|[ \t\r\n]+)"));
static NUMBER: LazyLock<Regex> = LazyLock::new(|| re(r"([0-9]+(?:\.[0-9]+)?)[ \t\r\n]*(%)?"));
static TRIALS: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)([0-9]+)[ \t\r\n]+(?:trials|runs|attempts)"));
static TAG: LazyLock<Regex> = LazyLock::new(|| re(r"@[A-Za-z][A-Za-z0-9_-]*"));
static MARKER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\[NEEDS CLARIFICATION[^\]]*\]|(?-u:\b)TBD(?-u:\b)|(?-u:\b)TODO(?-u:\b)|(?-u:\b)FIXME(?-u:\b)",
    )
});
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| re(r"\[([A-Za-z#$][^\[\]\n]{1,100})\]"));
const HTML_TAGS: &[&str] = &[
    "a",
    "b",
    "i",
    "u",
    "s",
    "p",
    "em",
    "strong",
    "code",
    "pre",
    "br",
    "hr",
    "sub",
    "sup",
    "kbd",
    "span",
    "div",
    "img",
    "details",
    "summary",
    "small",
    "mark",
    "del",
    "ins",
    "table",
    "tr",
    "td",
    "th",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "blockquote",
    "picture",
    "source",
    "abbr",
    "q",
];
static ESTIMATE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)^([0-9]+(?:\.[0-9]+)?)[ \t\r\n]*(h|hours?|d|days?|m|min|minutes?)$"));

/// [`ID_LEAD`] on `s`, after checking its fixed start (`[A-Z][A-Z0-9]*-[0-9]`) by hand: most
/// headings and items are not ids, and the check costs less than entering the regex.
fn id_lead(s: &str) -> Option<regex::Captures<'_>> {
    let b = s.as_bytes();
    let name = b
        .iter()
        .position(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit()))
        .unwrap_or(b.len());
    let possible = b.first().is_some_and(u8::is_ascii_uppercase)
        && b.get(name) == Some(&b'-')
        && b.get(name + 1).is_some_and(u8::is_ascii_digit);
    if possible { ID_LEAD.captures(s) } else { None }
}

/// Kiro's `Requirement N[.M...][: title]` heading: the number and the title (empty when
/// there is none), or `None`. Hand-written (the headings of criterion-dense specs made the
/// regex's capture search a visible share of a parse); a test holds it to [`KIRO_REQ`].
///
/// Matches exactly what [`KIRO_REQ`] matches, backtracking included: the number ends after
/// one of its groups of digits, tried longest first, and what follows it must be blanks
/// then the end, or blanks, one of `: . - – —`, blanks and a title without a newline.
fn kiro_req(h: &str) -> Option<(&str, &str)> {
    let blank = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let rest = h.strip_prefix("Requirement")?;
    let body = rest.trim_start_matches(blank);
    if body.len() == rest.len() {
        return None;
    }
    let digits = |from: usize| {
        body.as_bytes()
            .get(from..)
            .map_or(0, |b| b.iter().take_while(|c| c.is_ascii_digit()).count())
    };
    let mut end = digits(0);
    if end == 0 {
        return None;
    }
    while body.as_bytes().get(end) == Some(&b'.') {
        let d = digits(end + 1);
        if d == 0 {
            break;
        }
        end += 1 + d;
    }
    loop {
        let (number, after) = (body.get(..end)?, body.get(end..)?);
        let after = after.trim_start_matches(blank);
        if after.is_empty() {
            return Some((number, ""));
        }
        if let Some(title) = after.strip_prefix([':', '.', '-', '–', '—'])
            && let title = title.trim_start_matches(blank)
            && !title.contains('\n')
        {
            return Some((number, title));
        }
        // Backtrack: the number ends before its last `.`.
        end = number.rfind('.')?;
    }
}

/// [`USER_STORY`] on a heading, after checking its first letter (`u` in any case; no other
/// character case-folds to it).
fn user_story(h: &str) -> Option<regex::Captures<'_>> {
    let possible = h
        .as_bytes()
        .first()
        .is_some_and(|b| b.eq_ignore_ascii_case(&b'u'));
    if possible {
        USER_STORY.captures(h)
    } else {
        None
    }
}

/// Detects the dialect from the text and, as a hint, the file name.
///
/// Rules, first match wins: YAML front matter → Lightsout; an `## ADDED|MODIFIED|REMOVED|RENAMED
/// Requirements` heading → OpenSpec delta; `### Requirement:` → OpenSpec; `### Requirement N`
/// or `**User Story:**` → Kiro; `FR-###`, `### User Story` or `# Feature Specification` →
/// Spec Kit; otherwise the file name (`requirements.md` → Kiro) or Lightsout.
pub fn detect_dialect(text: &str, path: Option<&Path>) -> Dialect {
    if frontmatter::split(text).is_some() {
        return Dialect::Lightsout;
    }
    let mut openspec = false;
    let mut kiro = false;
    let mut speckit = false;
    // Only headings matter below: visit the lines that start with `#`.
    let bytes = text.as_bytes();
    let heading_lines = memchr::memchr_iter(b'#', bytes)
        .filter(|&i| i == 0 || bytes.get(i - 1) == Some(&b'\n'))
        .map(|i| {
            let rest = text.get(i..).unwrap_or("");
            memchr::memchr(b'\n', rest.as_bytes()).map_or(rest, |e| rest.get(..e).unwrap_or(""))
        });
    for line in heading_lines {
        let l = line.trim_end();
        if let Some(h) = l.strip_prefix("## ") {
            let h = h.trim().to_ascii_uppercase();
            if ["ADDED", "MODIFIED", "REMOVED", "RENAMED"]
                .iter()
                .any(|op| h.starts_with(op) && h.ends_with("REQUIREMENTS"))
            {
                return Dialect::OpenSpecDelta;
            }
        }
        if let Some(h) = l.strip_prefix("### ") {
            let h = h.trim();
            if h.starts_with("Requirement:") {
                openspec = true;
            } else if kiro_req(h).is_some() {
                kiro = true;
            } else if user_story(h).is_some() {
                speckit = true;
            }
        }
        if l.starts_with("# Feature Specification") {
            speckit = true;
        }
    }
    // Substrings without a line break: one search of the whole text each, and only when the
    // headings did not decide.
    if openspec {
        Dialect::OpenSpec
    } else if kiro || text.contains("**User Story:**") {
        Dialect::Kiro
    } else if speckit || text.contains("**FR-") {
        Dialect::SpecKit
    } else if path
        .and_then(Path::file_name)
        .is_some_and(|n| n.eq_ignore_ascii_case("requirements.md"))
    {
        Dialect::Kiro
    } else {
        Dialect::Lightsout
    }
}

/// Classifies a level-2 heading, case-insensitively, with the synonyms of spec-format.md.
pub fn classify_section(heading: &str) -> SectionKind {
    let mut h = heading.to_lowercase();
    if let Some(i) = h.find('(') {
        h.truncate(i);
    }
    let h = h.trim().trim_end_matches(':').trim();
    match h {
        "intent" | "purpose" | "what" | "overview" | "introduction" | "summary" => {
            SectionKind::Intent
        }
        "users"
        | "who"
        | "actors"
        | "user scenarios & testing"
        | "user scenarios and testing"
        | "user stories" => SectionKind::Users,
        "inputs" => SectionKind::Inputs,
        "outputs" => SectionKind::Outputs,
        "behaviour"
        | "behavior"
        | "requirements"
        | "behaviour contract"
        | "behavior contract"
        | "functional requirements" => SectionKind::Behaviour,
        "anti-spec" | "antispec" | "anti spec" | "must not" | "non-goals" | "non goals"
        | "out of scope" => SectionKind::AntiSpec,
        "constraints" | "non-functional requirements" => SectionKind::Constraints,
        "decisions" | "decision log" => SectionKind::Decisions,
        "verification gate" | "gate" | "evaluation" => SectionKind::Gate,
        "glossary" | "terms" | "definitions" => SectionKind::Glossary,
        "open questions" | "questions" | "clarifications" => SectionKind::OpenQuestions,
        "tasks" => SectionKind::Tasks,
        "success criteria" => SectionKind::SuccessCriteria,
        _ => delta_op(h).map_or(SectionKind::Other, |_| SectionKind::Behaviour),
    }
}

fn delta_op(lower_heading: &str) -> Option<DeltaOp> {
    let rest = lower_heading.strip_suffix("requirements")?.trim();
    match rest {
        "added" => Some(DeltaOp::Added),
        "modified" => Some(DeltaOp::Modified),
        "removed" => Some(DeltaOp::Removed),
        "renamed" => Some(DeltaOp::Renamed {
            from: String::new(),
        }),
        _ => None,
    }
}

/// Kebab-case slug of a name: lower case, runs of non-alphanumerics to one `-`.
pub fn slug(name: &str) -> String {
    let mut s = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !c.is_ascii() && c.is_alphanumeric() {
            s.extend(c.to_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    while s.ends_with('-') {
        s.pop();
    }
    s
}

/// The spec id implied by a path: the file stem, or the folder name for `spec.md` and
/// `requirements.md`.
fn id_from_path(path: Option<&Path>) -> String {
    let Some(p) = path else {
        return String::new();
    };
    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let generic = ["spec", "requirements", "readme", "index"];
    let name = if generic.contains(&stem.to_ascii_lowercase().as_str()) {
        p.parent()
            .and_then(Path::file_name)
            .and_then(|s| s.to_str())
            .unwrap_or(stem)
    } else {
        stem.strip_suffix(".spec").unwrap_or(stem)
    };
    slug(name)
}

/// Where the walker is inside the current section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    /// Nothing special.
    None,
    /// Inside a requirement heading's body.
    Requirement,
    /// Inside a scenario of the current requirement.
    Scenario,
    /// Kiro `### Requirement N` group, before its acceptance criteria.
    KiroGroup,
    /// Kiro `#### Acceptance Criteria` list.
    KiroCriteria,
    /// Spec Kit user story.
    Story,
    /// OpenSpec RENAMED list.
    Renamed,
}

struct Walker<'a> {
    text: &'a str,
    lines: crate::lines::LineIndex,
    /// Whether the current section has had any block yet (for `N/A:` detection).
    section_has_content: bool,
    dialect: Dialect,
    spec: Spec,
    diags: Vec<Diagnostic>,
    section: SectionKind,
    delta: Option<DeltaOp>,
    sub: Sub,
    /// Kiro group: (number, title, user story).
    kiro: (String, String),
    /// Whether the current requirement's body has reached its scenarios.
    body_end: Option<usize>,
    /// Whether the current requirement came from a heading (so its span runs to the next one).
    req_from_heading: bool,
    rename_from: Option<String>,
    counters: [usize; 6],
    /// Whether the file holds any byte a marker or bracket placeholder could come from (see
    /// [`markers_possible`]); when not, blocks without inline HTML skip the marker scan.
    markers_possible: bool,
}

/// Whether `text` holds `[`, `&` (an entity can decode to `[`), `TBD`, `TODO` or `FIXME`:
/// without them no block's text can hold a marker or a `[placeholder]`. A few SIMD passes over
/// the file replace a scan per block on most specs.
fn markers_possible(text: &str) -> bool {
    static WORDS: LazyLock<[memchr::memmem::Finder<'static>; 3]> =
        LazyLock::new(|| [b"TBD".as_slice(), b"TODO", b"FIXME"].map(memchr::memmem::Finder::new));
    let bytes = text.as_bytes();
    memchr::memchr2(b'[', b'&', bytes).is_some() || WORDS.iter().any(|w| w.find(bytes).is_some())
}

/// Parses decoded text. See [`crate::parse`] for the contract.
pub(crate) fn parse_text(
    text: &str,
    path: Option<&Path>,
    dialect: Option<Dialect>,
    mut diags: Vec<Diagnostic>,
) -> (Spec, Vec<Diagnostic>) {
    let dialect = dialect.unwrap_or_else(|| detect_dialect(text, path));
    let mut meta = FrontMatter::default();
    let mut body_start = 0;
    if let Some((yaml, block)) = frontmatter::split(text) {
        body_start = block.end;
        meta = frontmatter::read(text, yaml, block, &mut diags);
    } else {
        meta.span = Span::from_range(text, 0, 0);
    }
    let spec = Spec {
        path: path.map(Path::to_path_buf),
        dialect,
        meta,
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
    };
    let mut w = Walker {
        text,
        lines: crate::lines::LineIndex::new(text),
        section_has_content: false,
        dialect,
        spec,
        diags,
        section: SectionKind::Other,
        delta: None,
        sub: Sub::None,
        kiro: (String::new(), String::new()),
        body_end: None,
        req_from_heading: false,
        rename_from: None,
        counters: [0; 6],
        markers_possible: markers_possible(text),
    };
    let body = text.get(body_start..).unwrap_or("");
    let mut title = None;
    blocks(body, body_start, |b| {
        w.scan_markers(b);
        if let Block::Heading {
            level: 1, text: t, ..
        } = b
        {
            title.get_or_insert_with(|| t.text.trim().to_owned());
        }
        w.block(b);
    });
    w.close_requirement(text.len());
    w.close_sections(text.len());
    let Walker {
        mut spec, diags, ..
    } = w;
    if spec.meta.id.is_empty() {
        spec.meta.id = id_from_path(path);
    }
    if spec.meta.title.is_empty() {
        let t = title.unwrap_or_default();
        let t = t
            .strip_prefix("Feature Specification:")
            .or_else(|| t.strip_suffix(" Specification"))
            .unwrap_or(&t)
            .trim();
        t.clone_into(&mut spec.meta.title);
    }
    if dialect != Dialect::Lightsout && spec.meta.version.is_none() {
        spec.meta.status = SpecStatus::Draft;
        spec.meta.kind = SpecKind::Feature;
    }
    (spec, diags)
}

impl Walker<'_> {
    fn span(&self, r: &std::ops::Range<usize>) -> Span {
        self.lines.span(self.text, r.start, r.end)
    }

    /// Span of `sub` (a range of `t.text`) in the source, falling back to `fallback`.
    fn text_span(
        &self,
        t: &Text,
        sub: &std::ops::Range<usize>,
        fallback: &std::ops::Range<usize>,
    ) -> Span {
        match (
            t.source_offset(sub.start),
            t.source_offset(sub.end.saturating_sub(1)),
        ) {
            (Some(s), Some(e)) if e >= s => self.lines.span(self.text, s, e + 1),
            (Some(s), _) => self.lines.span(self.text, s, s),
            _ => self.span(fallback),
        }
    }

    fn next(&mut self, which: usize, prefix: &str) -> String {
        let c = self.counters.get_mut(which).map_or(0, |c| {
            *c += 1;
            *c
        });
        format!("{prefix}-{c}")
    }

    fn scan_markers(&mut self, b: &Block) {
        let (t, r) = match b {
            Block::Heading { text, range, .. }
            | Block::Paragraph { text, range }
            | Block::Item { text, range, .. } => (text, range),
            Block::Code { .. } => return,
        };
        if !self.markers_possible && t.html.is_empty() {
            return;
        }
        // Every marker holds `[`, `TBD`, `TODO` or `FIXME`, and every placeholder `[` or inline
        // HTML: most blocks have none of them and skip both expressions.
        let bytes = t.text.as_bytes();
        // Jump between `[`, `D` (TBD, TODO) and `X` (FIXME): capitals D and X are rare in prose,
        // where T and F start every THEN and THE.
        let candidate = memchr::memchr3_iter(b'[', b'D', b'X', bytes).any(|i| {
            let around = |back: usize, word: &[u8]| {
                i.checked_sub(back)
                    .and_then(|s| bytes.get(s..s + word.len()))
                    .is_some_and(|w| w == word)
            };
            bytes.get(i) == Some(&b'[')
                || around(2, b"TBD")
                || around(2, b"TODO")
                || around(2, b"FIXME")
        });
        if t.html.is_empty() && !candidate {
            return;
        }
        let found: Vec<_> = MARKER
            .find_iter(&t.text)
            .filter(|m| {
                !t.in_code(m.start()) && !quoted(&t.text, m.start()) && !mentioned(&t.text, m.end())
            })
            .map(|m| (m.range(), m.as_str().to_owned()))
            .collect();
        for (m, s) in found {
            let id = self.next(5, "MARKER");
            let span = self.text_span(t, &m, r);
            self.spec.open_questions.push(Item { id, text: s, span });
        }
        self.scan_placeholders(t, r);
    }

    /// Template leftovers: `[FEATURE NAME]`, `[Describe ...]`, `<placeholder>`.
    fn scan_placeholders(&mut self, t: &Text, r: &std::ops::Range<usize>) {
        let mut found: Vec<(std::ops::Range<usize>, String)> = Vec::new();
        for m in PLACEHOLDER.find_iter(&t.text) {
            let inner = m.as_str().trim_matches(['[', ']']);
            let before = t.text.get(..m.start()).and_then(|s| s.chars().next_back());
            let standalone = before
                .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | '"' | '\'' | ':' | '*'));
            let marker = inner.starts_with("NEEDS CLARIFICATION");
            // `[A, B, C]` is a list literal, not a placeholder.
            let literal = inner.contains(',') && inner.split(',').all(|p| p.trim().len() <= 2);
            if standalone
                && !marker
                && !literal
                && inner.chars().any(char::is_alphabetic)
                && !t.in_code(m.start())
                && !quoted(&t.text, m.start())
            {
                found.push((m.range(), m.as_str().to_owned()));
            }
        }
        for h in &t.html {
            let Some(tag) = t.text.get(h.clone()) else {
                continue;
            };
            let name = tag
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim_start_matches('/');
            let simple = tag.starts_with('<')
                && tag.ends_with('>')
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ' '))
                && !tag.starts_with("<!");
            // `Future<T>` is a generic type, not a placeholder.
            let generic = name.len() == 1
                || t.text
                    .get(..h.start)
                    .and_then(|b| b.chars().next_back())
                    .is_some_and(|c| c.is_alphanumeric() || matches!(c, ':' | '_'));
            if simple
                && !generic
                && !HTML_TAGS.contains(&name.to_ascii_lowercase().as_str())
                && !quoted(&t.text, h.start)
            {
                found.push((h.clone(), tag.to_owned()));
            }
        }
        for (m, s) in found {
            let span = self.text_span(t, &m, r);
            self.diags.push(Diagnostic::new(
                codes::PLACEHOLDER,
                Severity::Error,
                span,
                format!("template leftover `{s}`"),
                "replace the template text with the spec's own content",
            ));
        }
    }

    fn close_sections(&mut self, end: usize) {
        if let Some(last) = self.spec.sections.last_mut()
            && last.span.end < end
            && last.span.is_empty()
        {
            let s = last.span.start;
            last.span = self.lines.span(self.text, s, end);
        }
    }

    fn close_requirement(&mut self, end: usize) {
        if self.req_from_heading
            && let Some(r) = self.spec.requirements.last_mut()
        {
            r.span = self
                .lines
                .span(self.text, r.span.start, end.max(r.span.start));
            let body_end = self.body_end.unwrap_or(end);
            let head_end = self
                .text
                .get(r.span.start..)
                .and_then(|s| s.find('\n'))
                .map_or(end, |i| r.span.start + i + 1);
            self.text
                .get(head_end.min(body_end)..body_end)
                .unwrap_or("")
                .trim()
                .clone_into(&mut r.body);
        }
        self.req_from_heading = false;
        self.body_end = None;
        if matches!(self.sub, Sub::Requirement | Sub::Scenario) {
            self.sub = Sub::None;
        }
    }

    fn block(&mut self, b: &Block) {
        match b {
            Block::Heading { level, text, range } => self.heading(*level, text, range),
            Block::Paragraph { text, range } => self.paragraph(text, range),
            Block::Item {
                text,
                depth,
                number,
                checked,
                range,
            } => self.item(text, *depth, *number, *checked, range),
            Block::Code { lang, code, range } => self.code(lang, code, range),
        }
        self.section_has_content = !matches!(b, Block::Heading { level: ..=2, .. });
    }

    fn heading(&mut self, level: u8, t: &Text, range: &std::ops::Range<usize>) {
        let h = t.text.trim();
        if level <= 2 {
            self.close_requirement(range.start);
            // Close the previous section's span.
            if let Some(last) = self.spec.sections.last_mut()
                && last.span.is_empty()
            {
                last.span = self.lines.span(self.text, last.span.start, range.start);
            }
            self.sub = Sub::None;
            if level == 1 {
                self.section = SectionKind::Other;
                self.delta = None;
                return;
            }
            self.section = classify_section(h);
            self.delta = delta_op(&h.to_lowercase());
            if matches!(self.delta, Some(DeltaOp::Renamed { .. })) {
                self.sub = Sub::Renamed;
            }
            self.spec.sections.push(Section {
                kind: self.section,
                heading: h.to_owned(),
                not_applicable: None,
                span: self.lines.span(self.text, range.start, range.start),
            });
            return;
        }
        if level == 3 {
            self.heading3(h, t, range);
            return;
        }
        // Level 4 and deeper.
        if level == 4 {
            if let Some(name) = strip_ci(h, "Scenario:") {
                if matches!(self.sub, Sub::Requirement | Sub::Scenario) {
                    if self.body_end.is_none() {
                        self.body_end = Some(range.start);
                    }
                    let span = self.span(range);
                    if let Some(r) = self.spec.requirements.last_mut() {
                        r.scenarios.push(Scenario {
                            name: name.trim().to_owned(),
                            steps: Vec::new(),
                            span,
                        });
                    }
                    self.sub = Sub::Scenario;
                }
                return;
            }
            if self.sub == Sub::KiroGroup && h.eq_ignore_ascii_case("Acceptance Criteria") {
                self.sub = Sub::KiroCriteria;
            }
        }
    }

    fn heading3(&mut self, h: &str, _t: &Text, range: &std::ops::Range<usize>) {
        self.close_requirement(range.start);
        self.sub = Sub::None;
        let in_behaviour = self.section == SectionKind::Behaviour;
        // Kiro `### Requirement N[: title]`.
        if let Some(c) = kiro_req(h)
            && (self.dialect == Dialect::Kiro || !in_behaviour)
        {
            self.kiro = (c.0.to_owned(), c.1.trim().to_owned());
            self.sub = Sub::KiroGroup;
            return;
        }
        // Spec Kit `### User Story N - Title (Priority: P1)`.
        if let Some(c) = user_story(h) {
            let n = c.get(1).map_or("", |m| m.as_str());
            let title = c.get(2).map_or("", |m| m.as_str()).trim().to_owned();
            let tags = c
                .get(3)
                .map(|m| vec![m.as_str().to_owned()])
                .unwrap_or_default();
            let span = self.span(range);
            self.spec
                .requirements
                .push(new_req(format!("US-{n}"), title, span, tags));
            self.req_from_heading = true;
            self.sub = Sub::Story;
            return;
        }
        if !in_behaviour {
            return;
        }
        let (id, title) = if let Some(name) = strip_ci(h, "Requirement:") {
            let name = name.trim();
            (slug(name), name.to_owned())
        } else if let Some(c) = id_lead(h) {
            let id = c.get(1).map_or("", |m| m.as_str()).to_owned();
            let rest = h
                .get(c.get(0).map_or(0, |m| m.end())..)
                .unwrap_or("")
                .trim();
            (id, rest.to_owned())
        } else {
            // A sub-heading such as `### Functional Requirements`.
            return;
        };
        let span = self.span(range);
        let mut req = new_req(id, title, span, Vec::new());
        req.delta.clone_from(&self.delta);
        self.spec.requirements.push(req);
        self.req_from_heading = true;
        self.sub = Sub::Requirement;
    }

    fn paragraph(&mut self, t: &Text, range: &std::ops::Range<usize>) {
        // An `N/A: reason` section body.
        if let Some(sec) = self.spec.sections.last_mut() {
            let first_content =
                sec.not_applicable.is_none() && self.sub == Sub::None && !self.section_has_content;
            if first_content && let Some(reason) = strip_ci(t.text.trim(), "N/A:") {
                if let Some(sec) = self.spec.sections.last_mut() {
                    sec.not_applicable = Some(reason.trim().to_owned());
                }
                return;
            }
        }
        match self.sub {
            Sub::Requirement => self.requirement_text(t, range),
            Sub::Story => {
                if let Some(r) = self.spec.requirements.last_mut() {
                    if !r.body.is_empty() {
                        r.body.push('\n');
                    }
                    r.body.push_str(t.text.trim());
                }
            }
            Sub::Scenario => {
                // Steps written as lines of one paragraph (`**WHEN** x\n**THEN** y`).
                self.steps_from_lines(t, range);
            }
            _ => {
                if self.section == SectionKind::Gate {
                    self.gate_line(t, range);
                }
            }
        }
    }

    fn requirement_text(&mut self, t: &Text, range: &std::ops::Range<usize>) {
        let mut pos = 0;
        let mut prose = Vec::new();
        for line in t.text.split_inclusive('\n') {
            let l = line.trim();
            let lr = pos..pos + line.trim_end().len();
            pos += line.len();
            if let Some(v) = strip_ci(l, "Depends on:") {
                let refs: Vec<String> = ID_ANY
                    .find_iter(v)
                    .map(|m| m.as_str().to_owned())
                    .chain(
                        v.split([',', ' '])
                            .map(str::trim)
                            .filter(|s| s.contains('#') && !ID_ANY.is_match(s))
                            .map(str::to_owned),
                    )
                    .collect();
                if let Some(r) = self.spec.requirements.last_mut() {
                    r.depends_on.extend(refs);
                }
            } else if let Some(v) = strip_ci(l, "Touches:") {
                if let Some(r) = self.spec.requirements.last_mut() {
                    r.touches.extend(
                        v.split([',', ' '])
                            .map(|s| s.trim().trim_matches('`'))
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned),
                    );
                }
            } else if let Some(v) = strip_ci(l, "Estimate:") {
                if let Some(h) = estimate(v.trim())
                    && let Some(r) = self.spec.requirements.last_mut()
                {
                    r.estimate_hours = Some(h);
                }
            } else if let Some(v) = strip_ci(l, "Tags:") {
                if let Some(r) = self.spec.requirements.last_mut() {
                    r.tags
                        .extend(TAG.find_iter(v).map(|m| m.as_str().to_owned()));
                }
            } else if self.delta == Some(DeltaOp::Removed)
                && (l.starts_with("Reason") || l.starts_with("Migration"))
            {
                // OpenSpec REMOVED requirements carry **Reason** and **Migration** lines.
            } else {
                prose.push(lr);
            }
        }
        for lr in prose {
            self.statements(t, &lr, range);
        }
    }

    fn statements(
        &mut self,
        t: &Text,
        lr: &std::ops::Range<usize>,
        range: &std::ops::Range<usize>,
    ) {
        let Some(line) = t.text.get(lr.clone()) else {
            return;
        };
        let mut new = Vec::new();
        for s in ears::sentences(line) {
            let abs = lr.start + s.start..lr.start + s.end;
            let Some(sentence) = t.text.get(abs.clone()) else {
                continue;
            };
            let text = join_ws(sentence);
            let normative = ears::is_normative(&text);
            new.push(Statement {
                ears: normative.then(|| ears::pattern(&text)),
                system: if normative { ears::system(&text) } else { None },
                normative,
                text,
                span: self.text_span(t, &abs, range),
            });
        }
        if let Some(r) = self.spec.requirements.last_mut() {
            r.statements.extend(new);
        }
    }

    fn item(
        &mut self,
        t: &Text,
        depth: u32,
        number: Option<u64>,
        checked: Option<bool>,
        range: &std::ops::Range<usize>,
    ) {
        let span = self.span(range);
        match self.sub {
            Sub::Scenario => {
                if let Some(step) = step_of(t, span)
                    && let Some(sc) = self
                        .spec
                        .requirements
                        .last_mut()
                        .and_then(|r| r.scenarios.last_mut())
                {
                    sc.steps.push(step);
                }
                return;
            }
            Sub::Requirement => {
                if depth == 1 && step_parts(t).is_some() {
                    self.diags.push(Diagnostic::new(
                        codes::STEP_OUTSIDE_SCENARIO,
                        Severity::Warning,
                        span,
                        "scenario step outside any `#### Scenario:` heading",
                        "put the steps under `#### Scenario: <name>`",
                    ));
                    return;
                }
                let lr = 0..t.text.trim_end().len();
                self.statements(t, &lr, range);
                return;
            }
            Sub::KiroCriteria if depth == 1 => {
                self.kiro_criterion(t, number, span);
                return;
            }
            Sub::Story => {
                if t.strong.iter().any(|r| {
                    keyword(t.text.get(r.clone()).unwrap_or("")) == Some(StepKeyword::Given)
                        || keyword(t.text.get(r.clone()).unwrap_or("")) == Some(StepKeyword::When)
                }) {
                    let steps = inline_steps(t, span);
                    if let Some(r) = self.spec.requirements.last_mut() {
                        let name = format!("{} scenario {}", r.id, r.scenarios.len() + 1);
                        r.scenarios.push(Scenario { name, steps, span });
                    }
                }
                return;
            }
            Sub::Renamed => {
                self.renamed_item(t, span);
                return;
            }
            _ => {}
        }
        if depth != 1 {
            return;
        }
        match self.section {
            SectionKind::Behaviour => {
                // Spec Kit `- **FR-001**: System MUST ...`.
                let lead = t.lead_strong().unwrap_or("");
                if let Some(c) = id_lead(lead) {
                    let id = c.get(1).map_or("", |m| m.as_str()).to_owned();
                    let body = t.after_lead_strong().to_owned();
                    let mut req = new_req(id, String::new(), span, Vec::new());
                    req.title = first_words(&body, 8);
                    req.body.clone_from(&body);
                    self.spec.requirements.push(req);
                    let start = t.text.len() - t.after_lead_strong().len();
                    let lr = start.min(t.text.len())..t.text.trim_end().len().max(start);
                    self.statements(t, &lr, range);
                }
            }
            SectionKind::AntiSpec => {
                let it = self.id_item(t, span, 0, "ANTI");
                self.spec.anti_spec.push(it);
            }
            SectionKind::Constraints => {
                let it = self.id_item(t, span, 1, "CON");
                self.spec.constraints.push(it);
            }
            SectionKind::Decisions => {
                let it = self.id_item(t, span, 2, "DEC");
                self.spec.decisions.push(it);
            }
            SectionKind::SuccessCriteria => {
                let it = self.id_item(t, span, 3, "SC");
                self.spec.success_criteria.push(it);
            }
            SectionKind::OpenQuestions if checked != Some(true) => {
                let it = self.id_item(t, span, 4, "Q");
                self.spec.open_questions.push(it);
            }
            SectionKind::Gate => self.gate_line(t, range),
            SectionKind::Glossary => {
                let (term, def) = match t.lead_strong() {
                    Some(term) => (term.trim_end_matches(':').to_owned(), t.after_lead_strong()),
                    None => match t.text.split_once(':') {
                        Some((a, b)) => (a.trim().to_owned(), b.trim()),
                        None => (t.text.trim().to_owned(), ""),
                    },
                };
                if !term.is_empty() {
                    self.spec.glossary.push(GlossaryTerm {
                        term,
                        definition: def.to_owned(),
                        span,
                    });
                }
            }
            SectionKind::Tasks => {
                if let Some(task) = task_of(t, checked, span) {
                    self.spec.tasks.push(task);
                }
            }
            _ => {}
        }
    }

    fn id_item(&mut self, t: &Text, span: Span, counter: usize, prefix: &str) -> Item {
        let lead_src = t.lead_strong().unwrap_or("");
        if let Some(c) = id_lead(lead_src) {
            let id = c.get(1).map_or("", |m| m.as_str()).to_owned();
            return Item {
                id,
                text: join_ws(t.after_lead_strong()),
                span,
            };
        }
        let s = t.text.trim();
        if let Some(c) = id_lead(s) {
            let id = c.get(1).map_or("", |m| m.as_str()).to_owned();
            let rest = s.get(c.get(0).map_or(0, |m| m.end())..).unwrap_or("");
            return Item {
                id,
                text: join_ws(rest),
                span,
            };
        }
        let id = self.next(counter, prefix);
        Item {
            id,
            text: join_ws(s),
            span,
        }
    }

    fn gate_line(&mut self, t: &Text, range: &std::ops::Range<usize>) {
        let line = join_ws(&t.text);
        if line.is_empty() {
            return;
        }
        let lower = line.to_lowercase();
        let trials = TRIALS
            .captures(&line)
            .and_then(|c| c.get(1)?.as_str().parse::<u32>().ok());
        // The first fraction (0.9, 90%) on the line, skipping trial counts.
        let fraction = NUMBER.captures_iter(&line).find_map(|c| {
            let n: f64 = c.get(1)?.as_str().parse().ok()?;
            let pct = c.get(2).is_some();
            let whole = c.get(0)?.as_str().trim();
            let follows = line
                .get(c.get(0)?.end()..)
                .unwrap_or("")
                .trim_start()
                .to_lowercase();
            if follows.starts_with("trial")
                || follows.starts_with("of ")
                || follows.starts_with("run")
            {
                return None;
            }
            if pct {
                Some(n / 100.0)
            } else if whole.contains('.') || n <= 1.0 {
                Some(n)
            } else {
                None
            }
        });
        // A line about mutants is a strength rule; its share may read "90% of mutants".
        let strength = lower.contains("mutant") || lower.contains("strength");
        let share = strength
            .then(|| {
                NUMBER.captures_iter(&line).find_map(|c| {
                    let n: f64 = c.get(1)?.as_str().parse().ok()?;
                    let whole = c.get(0)?.as_str();
                    if c.get(2).is_some() {
                        Some(n / 100.0)
                    } else {
                        (whole.contains('.') || n <= 1.0).then_some(n)
                    }
                })
            })
            .flatten();
        let bound = !strength && (lower.contains("lower bound") || lower.contains("wilson"));
        let satisfaction =
            !strength && (lower.contains("satisfaction") || lower.contains("pass rate"));
        self.spec.gate.push(GateRule {
            min_lower_bound: if bound { fraction } else { None },
            trials,
            min_satisfaction: if satisfaction && !bound {
                fraction
            } else {
                None
            },
            min_strength: share,
            // Strength measures the whole holdout: it has no tag.
            tag: (!strength)
                .then(|| TAG.find(&line).map(|m| m.as_str().to_owned()))
                .flatten(),
            no_regressions: lower.contains("no regression"),
            span: self.span(range),
            text: line,
        });
    }

    fn kiro_criterion(&mut self, t: &Text, number: Option<u64>, span: Span) {
        let n = match number {
            Some(n) => {
                let mut id = self.kiro.0.clone();
                id.push('.');
                push_decimal(&mut id, n);
                id
            }
            None => self.next(4, "AC"),
        };
        let body = join_ws(&t.text);
        let (group, gtitle) = &self.kiro;
        let title = if gtitle.is_empty() {
            let mut title = String::with_capacity(12 + group.len());
            title.push_str("Requirement ");
            title.push_str(group);
            title
        } else {
            gtitle.clone()
        };
        let mut req = new_req(n, title, span, Vec::new());
        req.body.clone_from(&body);
        if let Some(sc) = ears_scenario(&body, span) {
            req.scenarios.push(sc);
        }
        // A Kiro criterion is one statement, even with inner full stops, unless it holds
        // several SHALL sentences.
        // Each SHALL or MUST lies in one sentence, so sentences are only split when there are
        // two or more.
        let keywords = ears::normative_count(&t.text);
        let normative_sentences = if keywords <= 1 {
            keywords
        } else {
            ears::sentences(&t.text)
                .into_iter()
                .filter(|r| t.text.get(r.clone()).is_some_and(ears::is_normative))
                .count()
        };
        if normative_sentences <= 1 {
            // `body` has the same words as `t.text`, so it is normative exactly when a
            // keyword was found.
            let normative = normative_sentences == 1;
            req.statements.push(Statement {
                ears: normative.then(|| ears::pattern(&body)),
                system: if normative { ears::system(&body) } else { None },
                normative,
                text: body,
                span,
            });
            self.spec.requirements.push(req);
        } else {
            self.spec.requirements.push(req);
            let lr = 0..t.text.trim_end().len();
            self.statements(t, &lr, &(span.start..span.end));
        }
    }

    fn renamed_item(&mut self, t: &Text, span: Span) {
        let s = join_ws(&t.text);
        let name_of = |v: &str| {
            let v = v.trim().trim_matches('`').trim();
            let v = v.strip_prefix("###").unwrap_or(v).trim();
            strip_ci(v, "Requirement:").unwrap_or(v).trim().to_owned()
        };
        if let Some(v) = strip_ci(&s, "FROM:") {
            self.rename_from = Some(name_of(v));
        } else if let Some(v) = strip_ci(&s, "TO:") {
            let to = name_of(v);
            let from = self.rename_from.take().unwrap_or_default();
            let mut req = new_req(slug(&to), to, span, Vec::new());
            req.delta = Some(DeltaOp::Renamed { from });
            self.spec.requirements.push(req);
        }
    }

    fn steps_from_lines(&mut self, t: &Text, range: &std::ops::Range<usize>) {
        let span = self.span(range);
        let steps = inline_steps(t, span);
        if let Some(sc) = self
            .spec
            .requirements
            .last_mut()
            .and_then(|r| r.scenarios.last_mut())
        {
            sc.steps.extend(steps);
        }
    }

    fn code(&mut self, lang: &str, code: &str, range: &std::ops::Range<usize>) {
        let gherkin = matches!(
            lang.to_ascii_lowercase().as_str(),
            "gherkin" | "feature" | "cucumber"
        );
        if !gherkin || !matches!(self.sub, Sub::Requirement | Sub::Scenario) {
            return;
        }
        if self.body_end.is_none() {
            self.body_end = Some(range.start);
        }
        let span = self.span(range);
        let mut scenarios: Vec<Scenario> = Vec::new();
        for line in code.lines() {
            let l = line.trim();
            if let Some(name) =
                strip_ci(l, "Scenario:").or_else(|| strip_ci(l, "Scenario Outline:"))
            {
                scenarios.push(Scenario {
                    name: name.trim().to_owned(),
                    steps: Vec::new(),
                    span,
                });
            } else if let Some((kw, rest)) = l.split_once(char::is_whitespace)
                && let Some(k) = keyword(kw)
            {
                if scenarios.is_empty() {
                    scenarios.push(Scenario {
                        name: String::new(),
                        steps: Vec::new(),
                        span,
                    });
                }
                if let Some(sc) = scenarios.last_mut() {
                    sc.steps.push(Step {
                        keyword: k,
                        text: rest.trim().to_owned(),
                        span,
                    });
                }
            }
        }
        if let Some(r) = self.spec.requirements.last_mut() {
            r.scenarios.extend(scenarios);
        }
        self.sub = Sub::Requirement;
    }
}

/// Whether byte `at` of `text` sits inside a double-quoted string on its line (an example of
/// output, not the spec's own words).
fn quoted(text: &str, at: usize) -> bool {
    let before = text.get(..at).unwrap_or("");
    let line = before.rsplit('\n').next().unwrap_or(before);
    line.matches(['"', '“', '”']).count() % 2 == 1
}

/// Whether a marker word is only mentioned ("the TBD placeholder", "TODO comments").
fn mentioned(text: &str, end: usize) -> bool {
    let next = text
        .get(end..)
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_ascii_lowercase();
    matches!(
        next.as_str(),
        "placeholder"
            | "placeholders"
            | "marker"
            | "markers"
            | "comment"
            | "comments"
            | "list"
            | "items"
            | "item"
            | "text"
    )
}

fn new_req(id: String, title: String, span: Span, tags: Vec<String>) -> Requirement {
    Requirement {
        id,
        title,
        body: String::new(),
        statements: Vec::new(),
        scenarios: Vec::new(),
        depends_on: Vec::new(),
        touches: Vec::new(),
        estimate_hours: None,
        tags,
        delta: None,
        span,
    }
}

/// `text` with a case-insensitive ASCII `prefix` removed.
pub(crate) fn strip_ci<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..).unwrap_or(""))
}

fn keyword(word: &str) -> Option<StepKeyword> {
    let w = word.trim().trim_end_matches([':', ',']);
    [
        ("given", StepKeyword::Given),
        ("when", StepKeyword::When),
        ("then", StepKeyword::Then),
        ("and", StepKeyword::And),
        ("but", StepKeyword::But),
    ]
    .into_iter()
    .find_map(|(name, k)| w.eq_ignore_ascii_case(name).then_some(k))
}

/// A step from a list item: `**WHEN** x` (or `WHEN x` with the keyword in capitals).
fn step_of(t: &Text, span: Span) -> Option<Step> {
    step_parts(t).map(|(k, rest)| Step {
        keyword: k,
        text: first_line(rest),
        span,
    })
}

/// The keyword of a step item and the text its first line comes from (no allocation).
fn step_parts(t: &Text) -> Option<(StepKeyword, &str)> {
    if let Some(lead) = t.lead_strong()
        && let Some(k) = keyword(lead)
    {
        return Some((k, t.after_lead_strong()));
    }
    let s = t.text.trim();
    let (w, rest) = s.split_once(char::is_whitespace)?;
    let upper = w.trim_end_matches([':', ',']);
    if upper.chars().all(|c| c.is_ascii_uppercase()) {
        return keyword(upper).map(|k| (k, rest.trim()));
    }
    None
}

fn first_line(s: &str) -> String {
    // `s.lines().next()`: up to the first `\n` and without a `\r` before it, or all of `s`.
    let line = match memchr::memchr(b'\n', s.as_bytes()) {
        Some(i) => {
            let l = s.get(..i).unwrap_or("");
            l.strip_suffix('\r').unwrap_or(l)
        }
        None => s,
    };
    join_ws(line)
}

/// Steps from one line of inline bold keywords: `**Given** a, **When** b, **Then** c`.
fn inline_steps(t: &Text, span: Span) -> Vec<Step> {
    let mut marks: Vec<(usize, usize, StepKeyword)> = t
        .strong
        .iter()
        .filter_map(|r| {
            let k = keyword(t.text.get(r.clone())?)?;
            Some((r.start, r.end, k))
        })
        .collect();
    marks.sort_by_key(|m| m.0);
    let mut steps = Vec::new();
    for (i, &(_, end, k)) in marks.iter().enumerate() {
        let stop = marks.get(i + 1).map_or(t.text.len(), |m| m.0);
        let txt = t.text.get(end..stop).unwrap_or("");
        let txt = txt
            .trim()
            .trim_start_matches(':')
            .trim()
            .trim_end_matches(',')
            .trim();
        steps.push(Step {
            keyword: k,
            text: join_ws(txt),
            span,
        });
    }
    steps
}

/// A scenario derived from an EARS criterion `[GIVEN g] WHEN|IF x THEN the y SHALL z` (Kiro),
/// found with one pass over the words.
fn ears_scenario(body: &str, span: Span) -> Option<Scenario> {
    let (mut given, mut when, mut then) = (None, None, None);
    // The words of `body.split(' ')`, found with a plain loop (words are short, and `split`
    // calls memchr once per word), up to the THEN: nothing after it changes the result.
    let bytes = body.as_bytes();
    let mut at = 0;
    while at <= bytes.len() {
        let next = bytes
            .get(at..)
            .and_then(|r| r.iter().position(|&b| b == b' '))
            .map_or(bytes.len(), |i| at + i);
        let word = body.get(at..next).unwrap_or("").trim_end_matches(',');
        let end = at + word.len();
        if word.eq_ignore_ascii_case("given") && given.is_none() && when.is_none() {
            given = Some((at, end));
        } else if (word.eq_ignore_ascii_case("when") || word.eq_ignore_ascii_case("if"))
            && when.is_none()
        {
            when = Some((at, end));
        } else if word.eq_ignore_ascii_case("then") && when.is_some() && then.is_none() {
            then = Some((at, end));
            break;
        }
        at = next + 1;
    }
    let (w0, w1) = when?;
    let (t0, t1) = then?;
    let mut steps = Vec::new();
    if let Some((_, g1)) = given.filter(|g| g.0 < w0) {
        steps.push(Step {
            keyword: StepKeyword::Given,
            text: body
                .get(g1..w0)?
                .trim()
                .trim_end_matches(',')
                .trim()
                .to_owned(),
            span,
        });
    }
    steps.push(Step {
        keyword: StepKeyword::When,
        text: body
            .get(w1..t0)?
            .trim()
            .trim_end_matches(',')
            .trim()
            .to_owned(),
        span,
    });
    steps.push(Step {
        keyword: StepKeyword::Then,
        text: body.get(t1..)?.trim().to_owned(),
        span,
    });
    Some(Scenario {
        name: "acceptance criterion".to_owned(),
        steps,
        span,
    })
}

fn task_of(t: &Text, checked: Option<bool>, span: Span) -> Option<TaskItem> {
    let s = join_ws(&t.text);
    let c = TASK_LEAD.captures(&s)?;
    let id = c.get(1)?.as_str().to_owned();
    let rest = s.get(c.get(0)?.end()..).unwrap_or("").trim();
    let lower = rest.to_lowercase();
    let (head, deps) = match lower.find("depends on") {
        Some(i) => (
            rest.get(..i).unwrap_or(rest),
            rest.get(i + "depends on".len()..).unwrap_or(""),
        ),
        None => (rest, ""),
    };
    let requirements = head
        .match_indices('(')
        .filter_map(|(i, _)| {
            let inner = head.get(i + 1..)?;
            let close = inner.find(')')?;
            Some(inner.get(..close)?.to_owned())
        })
        .flat_map(|inner| {
            ID_ANY
                .find_iter(&inner)
                .map(|m| m.as_str().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let title = head
        .split(" (")
        .next()
        .unwrap_or(head)
        .trim()
        .trim_end_matches(['.', ','])
        .to_owned();
    let depends_on = deps
        .split([',', ' '])
        .map(|d| d.trim().trim_end_matches('.'))
        .filter(|d| TASK_LEAD.is_match(&format!("{d} ")))
        .map(str::to_owned)
        .collect();
    Some(TaskItem {
        id,
        title,
        requirements,
        depends_on,
        done: checked == Some(true),
        span,
    })
}

fn estimate(v: &str) -> Option<f64> {
    let v = v.trim();
    match v.to_ascii_uppercase().as_str() {
        "XS" => return Some(1.0),
        "S" => return Some(2.0),
        "M" => return Some(4.0),
        "L" => return Some(8.0),
        "XL" => return Some(16.0),
        _ => {}
    }
    let c = ESTIMATE.captures(v)?;
    let n: f64 = c.get(1)?.as_str().parse().ok()?;
    let unit = c.get(2)?.as_str().to_ascii_lowercase();
    Some(match unit.chars().next() {
        Some('d') => n * 8.0,
        Some('m') => n / 60.0,
        _ => n,
    })
}

/// Appends `n` in decimal (what `format!("{n}")` gives, without the formatting machinery,
/// which showed in profiles of criterion-dense specs).
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(digits.get(i..).unwrap_or(&[])).unwrap_or(""));
}

/// Whether `bytes` holds no ASCII whitespace but single spaces (no `\t`, `\n`, `\x0C`, `\r`
/// and no two spaces in a row): text that [`join_ws`] would copy unchanged, as most is.
///
/// Eight bytes at a time (the strings are short, and three `memchr` calls cost more):
/// `!((x | H) - N) & !x & H` marks the ASCII bytes below 0x0E (the four control characters and
/// rarer ones, which send the text to an exact check), and a zero-byte mask of `x ^ spaces`
/// marks the spaces, adjacent ones within a word and across words.
fn single_spaced(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    const LOW7: u64 = ONES * 0x7F;
    let mut prev_space = false;
    let mut chunks = bytes.chunks(8);
    for chunk in chunks.by_ref() {
        // Padding is `x`: neither a space nor a control character.
        let mut w = [b'x'; 8];
        if let Some(head) = w.get_mut(..chunk.len()) {
            head.copy_from_slice(chunk);
        }
        let x = u64::from_le_bytes(w);
        if (!(x | HIGH).wrapping_sub(ONES * 0x0E) & !x & HIGH) != 0 {
            return memchr::memchr3(b'\n', b'\t', b'\r', bytes).is_none()
                && memchr::memchr(0x0C, bytes).is_none()
                && memchr::memmem::find(bytes, b"  ").is_none();
        }
        let y = x ^ (ONES * u64::from(b' '));
        let spaces = !(((y & LOW7).wrapping_add(LOW7)) | y | LOW7);
        if spaces & (spaces >> 8) != 0 || prev_space && spaces & 0x80 != 0 {
            return false;
        }
        prev_space = spaces >> 63 != 0;
    }
    true
}

/// `s` with runs of ASCII whitespace made one space and the ends trimmed (the words of
/// `split_ascii_whitespace` joined by `' '`).
fn join_ws(s: &str) -> String {
    let s = s.trim_ascii();
    let bytes = s.as_bytes();
    if single_spaced(bytes) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    for w in s.split_ascii_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

fn first_words(s: &str, n: usize) -> String {
    let words: Vec<&str> = s.split_whitespace().take(n + 1).collect();
    if words.len() > n {
        format!("{}…", words.get(..n).unwrap_or(&[]).join(" "))
    } else {
        words.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_is_the_first_of_lines() {
        for s in [
            "",
            "a",
            "a\nb",
            "a\r\nb",
            "a\r",
            "a \r\n",
            "\nb",
            "x  y\tz\nw",
        ] {
            assert_eq!(
                first_line(s),
                join_ws(s.lines().next().unwrap_or("")),
                "{s:?}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn single_spaced_is_what_join_ws_leaves_alone(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![" ", "  ", "a", "bc", "\t", "\n", "\r", "\x0C", "\x01", "é", "xyz "]),
                0..24,
            )
        ) {
            // `join_ws` trims before it asks.
            let s = parts.concat();
            let s = s.trim_ascii();
            let expected = s.split_ascii_whitespace().collect::<Vec<_>>().join(" ") == s;
            proptest::prop_assert_eq!(single_spaced(s.as_bytes()), expected, "{:?}", s);
        }

        #[test]
        fn kiro_req_matches_what_its_regex_matches(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    " ", "\t", "\n", "\r", "1", "23", ".", ":", "-", "–", "—", ")", "x", "Title", "é",
                ]),
                0..10,
            ),
            lead in proptest::sample::select(vec!["Requirement", "Requirement ", "Requirement 1", "requirement ", ""]),
        ) {
            let h = format!("{lead}{}", parts.concat());
            proptest::prop_assert_eq!(kiro_req(&h), kiro_req_oracle(&h), "{:?}", h);
        }
    }

    /// [`KIRO_REQ`]'s answer in [`kiro_req`]'s shape.
    fn kiro_req_oracle(h: &str) -> Option<(&str, &str)> {
        let c = KIRO_REQ.captures(h)?;
        let group = |i| c.get(i).map_or("", |m: regex::Match<'_>| m.as_str());
        Some((group(1), group(2)))
    }

    #[test]
    fn push_decimal_writes_what_format_writes() {
        for n in [0, 7, 10, 99, 1234, u64::from(u32::MAX), u64::MAX] {
            let mut s = String::from("x.");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("x.{n}"));
        }
    }

    #[test]
    fn id_prefilters_keep_the_regex_answers() {
        for h in [
            "REQ-1: Title",
            "FR-001 x",
            "A-1",
            "AB1-2x",
            "Req-1",
            "REQ-",
            "REQ-x",
            "-1",
            "R-1.",
            "Requirement 1",
            "Requirement 2.3: Title",
            "Requirement: x",
            "Requirements 1",
            "User Story 1 - Title (Priority: P1)",
            "user story 2",
            "Users",
            "",
        ] {
            let same = |a: Option<regex::Captures<'_>>, b: Option<regex::Captures<'_>>| {
                a.map(|c| c.get(0).map(|m| m.range())) == b.map(|c| c.get(0).map(|m| m.range()))
            };
            assert!(same(id_lead(h), ID_LEAD.captures(h)), "{h}");
            assert_eq!(kiro_req(h), kiro_req_oracle(h), "{h}");
            assert!(same(user_story(h), USER_STORY.captures(h)), "{h}");
        }
    }
}
