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
    DeltaOp, Dialect, FrontMatter, GateRule, GlossaryTerm, Item, NormativeLevel, Requirement,
    Section, SectionKind, Spec, SpecKind, SpecStatus, Statement, Step, StepKeyword, TaskItem,
    VisibleScenario,
};
use regex::Regex;
use std::path::Path;
use std::sync::LazyLock;

fn re(s: &str) -> Regex {
    Regex::new(s).expect("static regex is valid")
}

/// `REQ-1: Title`, `FR-001 Title`, `ANTI-2. text`, `FR-011-001`, `FR-010A`, `REQ-2.1`.
static ID_LEAD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^([A-Z][A-Z0-9]*-[0-9]+[A-Za-z0-9]*(?:[-.][0-9]+[A-Za-z0-9]*)*)[ \t\r\n]*(?:[:：.)\-–—][ \t\r\n]*|[ \t\r\n]+|$)",
    )
});
/// Any id-like token: `REQ-1`, `other-spec#REQ-2`, `FR-001`, `FR-011-001`.
static ID_ANY: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?:[a-z0-9][a-z0-9-]*#)?[A-Z][A-Z0-9]*-[0-9]+[A-Za-z0-9]*(?:[-.][0-9]+[A-Za-z0-9]*)*")
});
/// Kiro's `Requirement N[.M...][a][: title]` heading, in the languages Kiro-style generators
/// write it in (cc-sdd's `要件1: ...`, `需求 1`, `Anforderung 1`, `Exigence 1`, `Requisito 1`).
static KIRO_REQ: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:Requirement|要件|需求|要求|Anforderung|Exigence|Requisito)[ \t]*([0-9]+(?:\.[0-9]+)*[a-z]?)[ \t]*(?:[:：.\-–—][ \t]*(.*))?$",
    )
});
/// A user story heading: `User Story 1 - Title (Priority: P1)` in English or in the words of
/// the Spec Kit translations (`用户故事 1 - ... (优先级: P1)`, `ユーザーストーリー 1`,
/// `使用者故事 1`, `Historia de usuario 1`, `Récit utilisateur 1`, `User-Story 1`), or any
/// heading that ends in a `(<word>: P<n>)` priority.
static USER_STORY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^(?:[^\n]*?/[ \t]*)?(?:User[ -]Story|用户故事|用戶故事|使用者故事|ユーザーストーリー|ユーザストーリー|Historia de usuario|Récit utilisateur|Histoire utilisateur|Benutzergeschichte)[ \t]*([0-9]+)[ \t]*(?:[:：\-–—][ \t]*)?(.*?)[ \t]*(?:[(（][^()（）:：]*[:：][ \t]*(P[0-9]+)[ \t]*[)）])?[ \t]*$",
    )
});
/// A heading that ends in a priority: `(Priority: P1)`, `（優先度: P2）`.
static PRIORITY: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(.*?)[ \t]*[(（][^()（）:：]*[:：][ \t]*(P[0-9]+)[ \t]*[)）][ \t]*$"));
static TASK_LEAD: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(T[0-9]+[A-Za-z0-9.]*)[ \t\r\n]*(?:[:.)\-–—][ \t\r\n]*|[ \t\r\n]+)"));
static NUMBER: LazyLock<Regex> = LazyLock::new(|| re(r"([0-9]+(?:\.[0-9]+)?)[ \t\r\n]*(%)?"));
static TRIALS: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)([0-9]+)[ \t\r\n]+(?:trials|runs|attempts)"));
static TAG: LazyLock<Regex> = LazyLock::new(|| re(r"@[A-Za-z][A-Za-z0-9_-]*"));
static MARKER: LazyLock<Regex> =
    LazyLock::new(|| re(r"\[NEEDS CLARIFICATION[^\]]*\]|\b(?:TBD|TODO|FIXME|XXX)\b"));
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

/// [`ID_LEAD`] on `s`.
fn id_lead(s: &str) -> Option<regex::Captures<'_>> {
    ID_LEAD.captures(s)
}

/// Kiro's `Requirement N[.M...][a][: title]` heading ([`KIRO_REQ`]): the number and the
/// title (empty when there is none), or `None`.
fn kiro_req(h: &str) -> Option<(&str, &str)> {
    let c = KIRO_REQ.captures(h)?;
    let group = |i| c.get(i).map_or("", |m: regex::Match<'_>| m.as_str());
    Some((group(1), group(2)))
}

/// A user story heading ([`USER_STORY`]): its number, title and priority (`P1`), or `None`.
fn user_story(h: &str) -> Option<(String, String, Option<String>)> {
    let c = USER_STORY.captures(h)?;
    let group = |i| {
        c.get(i)
            .map(|m: regex::Match<'_>| m.as_str().trim().to_owned())
    };
    Some((group(1)?, group(2).unwrap_or_default(), group(3)))
}

/// Detects the dialect from the text and, as a hint, the file name.
///
/// Rules, first match wins: YAML front matter with an `id:` → Lightsout; an
/// `## ADDED|MODIFIED|REMOVED|RENAMED Requirements` heading → OpenSpec delta;
/// `### Requirement:` → OpenSpec; `### Requirement N` (or `### 要件1`, ...) or `**User Story:**`
/// → Kiro; a user story heading ([`USER_STORY`]), `**FR-` items or a `# Feature Specification`
/// title (or its translations) → Spec Kit; a file under `checklists/` → Spec Kit (a checklist
/// of a feature); numbered sections with a Definition of Done, or a `*-spec.md` name → NLSpec;
/// otherwise the file name (`requirements.md` → Kiro) or Lightsout.
pub fn detect_dialect(text: &str, path: Option<&Path>) -> Dialect {
    let front = frontmatter::split(text);
    if let Some((yaml, _)) = front.clone()
        && text
            .get(yaml)
            .is_some_and(|y| y.lines().any(|l| l.starts_with("id:")))
    {
        return Dialect::Lightsout;
    }
    let (mut openspec, mut kiro, mut speckit) = (false, false, false);
    let (mut numbered, mut done) = (0usize, false);
    let mut fence = false;
    for line in text.lines() {
        let l = line.trim_end();
        if l.trim_start().starts_with("```") || l.trim_start().starts_with("~~~") {
            fence = !fence;
            continue;
        }
        if fence || !l.starts_with('#') {
            continue;
        }
        let level = l.bytes().take_while(|&b| b == b'#').count();
        let h = l.get(level..).unwrap_or("").trim();
        match level {
            1 if SPEC_KIT_TITLES.iter().any(|t| h.starts_with(t)) => speckit = true,
            2 => {
                let upper = h.to_ascii_uppercase();
                if ["ADDED", "MODIFIED", "REMOVED", "RENAMED"]
                    .iter()
                    .any(|op| upper.starts_with(op) && upper.ends_with("REQUIREMENTS"))
                {
                    return Dialect::OpenSpecDelta;
                }
                if section_number(h).is_some() {
                    numbered += 1;
                }
            }
            3 => {
                if h.starts_with("Requirement:") {
                    openspec = true;
                } else if kiro_req(h).is_some() {
                    kiro = true;
                } else if user_story(h).is_some() {
                    speckit = true;
                }
            }
            _ => {}
        }
        if level >= 2 && is_definition_of_done(h) {
            done = true;
        }
    }
    let name = path
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let in_checklists = path
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .is_some_and(|d| d.eq_ignore_ascii_case("checklists"));
    if openspec {
        Dialect::OpenSpec
    } else if kiro || text.contains("**User Story:**") {
        Dialect::Kiro
    } else if speckit || text.contains("**FR-") || in_checklists {
        Dialect::SpecKit
    } else if numbered >= 3 && done
        || (name.ends_with("-spec.md") || name.ends_with("_spec.md")) && front.is_none()
    {
        Dialect::NlSpec
    } else if name == "requirements.md" {
        Dialect::Kiro
    } else if name == "spec.md" && front.is_none() && under(path, "openspec") {
        // A spec of an OpenSpec tree written before `### Requirement:` headings.
        if under(path, "changes") {
            Dialect::OpenSpecDelta
        } else {
            Dialect::OpenSpec
        }
    } else {
        Dialect::Lightsout
    }
}

/// Whether a folder of `path` is named `dir`.
fn under(path: Option<&Path>, dir: &str) -> bool {
    path.and_then(Path::parent)
        .is_some_and(|p| p.components().any(|c| c.as_os_str() == dir))
}

/// The titles Spec Kit's `spec.md` opens with, in English and in the community translations.
const SPEC_KIT_TITLES: &[&str] = &[
    "Feature Specification",
    "功能规格",
    "功能规范",
    "功能規格",
    "功能規範",
    "機能仕様",
    "Especificación de funcionalidad",
    "Spécification de fonctionnalité",
    "Feature-Spezifikation",
];

/// The section number a heading opens with (`3.2` of `3.2 Retry Logic`, `11` of `11. Definition
/// of Done`), or `None`.
pub(crate) fn section_number(heading: &str) -> Option<&str> {
    let end = heading
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_digit() || c == '.'))
        .map_or(heading.len(), |(i, _)| i);
    let number = heading.get(..end)?.trim_end_matches('.');
    let rest = heading.get(end..)?;
    let ok = !number.is_empty()
        && number.starts_with(|c: char| c.is_ascii_digit())
        && !number.contains("..")
        && (rest.is_empty() || rest.starts_with(char::is_whitespace));
    ok.then_some(number)
}

/// Whether a heading names a Definition of Done (any numbering stripped): `Definition of Done`,
/// `DoD`, `完成的定义`, `完成定义`, `完了の定義`, `Definition of Done (DoD)`.
pub(crate) fn is_definition_of_done(heading: &str) -> bool {
    let h = heading
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
        .trim()
        .to_lowercase();
    h.starts_with("definition of done")
        || h == "dod"
        || h.starts_with("完成的定义")
        || h.starts_with("完成定义")
        || h.starts_with("完了の定義")
        || h.starts_with("完了条件")
}

/// Classifies a level-2 heading, case-insensitively, with the synonyms of spec-format.md and
/// of the dialects' templates, in English and in the Chinese, Japanese, German, French and
/// Spanish translations. A bilingual heading (`要件 / Requirements`) is classified by the
/// first of its halves that is known.
pub fn classify_section(heading: &str) -> SectionKind {
    let mut h = heading.to_lowercase();
    for open in ['(', '（', '*'] {
        if let Some(i) = h.find(open) {
            h.truncate(i);
        }
    }
    let h = h.trim().trim_end_matches([':', '：']).trim();
    if h.contains(" / ") {
        return h
            .split(" / ")
            .map(classify_one)
            .find(|k| *k != SectionKind::Other)
            .unwrap_or(SectionKind::Other);
    }
    classify_one(h)
}

fn classify_one(h: &str) -> SectionKind {
    let h = h.trim();
    match h {
        "intent" | "purpose" | "what" | "overview" | "introduction" | "summary" | "概要"
        | "概述" | "简介" | "はじめに" | "目的" | "einleitung" | "überblick" | "introducción"
        | "resumen" => SectionKind::Intent,
        "users"
        | "who"
        | "actors"
        | "user scenarios & testing"
        | "user scenarios and testing"
        | "user scenarios"
        | "user stories"
        | "用户场景与测试"
        | "用户场景 & 测试"
        | "用户场景和测试"
        | "使用者情境與測試"
        | "用户故事"
        | "ユーザーシナリオとテスト"
        | "ユーザーシナリオ & テスト"
        | "ユーザーシナリオ"
        | "ユーザーストーリー"
        | "benutzerszenarien & tests"
        | "scénarios utilisateur et tests"
        | "escenarios de usuario y pruebas" => SectionKind::Users,
        "inputs" => SectionKind::Inputs,
        "outputs" => SectionKind::Outputs,
        "behaviour"
        | "behavior"
        | "requirements"
        | "behaviour contract"
        | "behavior contract"
        | "functional requirements"
        | "需求"
        | "要求"
        | "功能需求"
        | "功能要求"
        | "要件"
        | "機能要件"
        | "anforderungen"
        | "funktionale anforderungen"
        | "exigences"
        | "exigences fonctionnelles"
        | "requisitos"
        | "requisitos funcionales" => SectionKind::Behaviour,
        "anti-spec" | "antispec" | "anti spec" | "must not" | "non-goals" | "non goals"
        | "out of scope" => SectionKind::AntiSpec,
        "constraints" | "non-functional requirements" => SectionKind::Constraints,
        "decisions" | "decision log" => SectionKind::Decisions,
        "verification gate" | "gate" | "evaluation" => SectionKind::Gate,
        "glossary" | "terms" | "definitions" | "术语" | "術語" | "用語集" | "glossar"
        | "glossaire" | "glosario" => SectionKind::Glossary,
        "open questions"
        | "questions"
        | "clarifications"
        | "澄清"
        | "澄清事项"
        | "明確化"
        | "明確化事項"
        | "クラリフィケーション"
        | "klarstellungen"
        | "clarificaciones" => SectionKind::OpenQuestions,
        "tasks" => SectionKind::Tasks,
        "success criteria"
        | "成功标准"
        | "成功標準"
        | "成功基准"
        | "成功基準"
        | "成功指標"
        | "erfolgskriterien"
        | "critères de succès"
        | "criterios de éxito" => SectionKind::SuccessCriteria,
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
    /// The open headings: (level, section number when the heading has one, heading text).
    outline: Vec<(u8, Option<String>, String)>,
    /// The level of the Definition of Done heading the walker is under, if any.
    done_level: Option<u8>,
    /// Whether a `**Scenario N: ...**` line of a user story opened a scenario whose steps
    /// follow as items.
    story_scenario: bool,
    /// Items numbered so far per section path (NLSpec requirement and acceptance ids).
    numbered: std::collections::HashMap<String, usize>,
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
        if dialect == Dialect::Lightsout {
            meta = frontmatter::read(text, yaml, block, &mut diags);
        } else {
            // Another dialect's own metadata (Spec Kit `feature_id:`, ...): not ours to check.
            meta.span = Span::from_range(text, 0, 0);
        }
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
        acceptance: Vec::new(),
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
        outline: Vec::new(),
        done_level: None,
        story_scenario: false,
        numbered: std::collections::HashMap::new(),
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
            Block::Code { .. } | Block::Row { .. } => return,
        };
        let found: Vec<_> = MARKER
            .find_iter(&t.text)
            .filter(|m| {
                !t.in_code(m.start())
                    && !quoted(&t.text, m.start())
                    && !mentioned(&t.text, m.end())
                    && (m.as_str().starts_with('[') || used_as_marker(&t.text, m.start(), m.end()))
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
                && template_placeholder(inner)
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
            Block::Row { cells, range } => self.row(cells, range),
        }
        self.section_has_content = !matches!(b, Block::Heading { level: ..=2, .. });
    }

    fn heading(&mut self, level: u8, t: &Text, range: &std::ops::Range<usize>) {
        let h = t.text.trim();
        while self.outline.last().is_some_and(|o| o.0 >= level) {
            self.outline.pop();
        }
        self.outline
            .push((level, section_number(h).map(str::to_owned), h.to_owned()));
        if self.done_level.is_some_and(|l| level <= l) {
            self.done_level = None;
        }
        if level >= 2 && is_definition_of_done(h) {
            self.done_level = Some(level);
        }
        self.story_scenario = false;
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
        if level == 4
            && self.sub == Sub::Story
            && let Some(name) = strip_ci(h, "Scenario")
        {
            let span = self.span(range);
            let name = name
                .trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ')
                .trim_start_matches([':', '：', '-'])
                .trim()
                .to_owned();
            if let Some(r) = self.spec.requirements.last_mut() {
                r.scenarios.push(VisibleScenario {
                    name,
                    steps: Vec::new(),
                    span,
                });
            }
            self.story_scenario = true;
            return;
        }
        if level == 4 {
            if let Some(name) = strip_ci(h, "Scenario:") {
                if matches!(self.sub, Sub::Requirement | Sub::Scenario) {
                    if self.body_end.is_none() {
                        self.body_end = Some(range.start);
                    }
                    let span = self.span(range);
                    if let Some(r) = self.spec.requirements.last_mut() {
                        r.scenarios.push(VisibleScenario {
                            name: name.trim().to_owned(),
                            steps: Vec::new(),
                            span,
                        });
                    }
                    self.sub = Sub::Scenario;
                }
                return;
            }
            if self.sub == Sub::KiroGroup && acceptance_criteria_heading(h) {
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
        // The first Spec Kit template's `### Primary User Story` and, under it,
        // `### Acceptance Scenarios`.
        if self.dialect == Dialect::SpecKit {
            if h.eq_ignore_ascii_case("Primary User Story") {
                let span = self.span(range);
                self.spec.requirements.push(new_req(
                    "US-1".to_owned(),
                    h.to_owned(),
                    span,
                    Vec::new(),
                ));
                self.req_from_heading = true;
                self.sub = Sub::Story;
                return;
            }
            if h.eq_ignore_ascii_case("Acceptance Scenarios")
                && self
                    .spec
                    .requirements
                    .last()
                    .is_some_and(|r| r.id == "US-1" && r.title == "Primary User Story")
            {
                self.req_from_heading = true;
                self.sub = Sub::Story;
                return;
            }
        }
        // Spec Kit `### User Story N - Title (Priority: P1)`, in any language.
        if let Some((n, title, priority)) = user_story(h).or_else(|| {
            (self.dialect == Dialect::SpecKit)
                .then(|| story_by_priority(h))
                .flatten()
        }) {
            let tags = priority.into_iter().collect();
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
        if self.dialect == Dialect::NlSpec {
            self.nl_paragraph(t, range);
            return;
        }
        match self.sub {
            Sub::Requirement => self.requirement_text(t, range),
            Sub::Story => {
                // `**Scenario 1: Name**` opens a scenario whose steps are the items below it.
                let lead = t.lead_strong().unwrap_or("");
                if let Some(name) = strip_ci(lead, "Scenario") {
                    let span = self.span(range);
                    let name = name
                        .trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ')
                        .trim_start_matches([':', '：', '-'])
                        .trim()
                        .to_owned();
                    if let Some(r) = self.spec.requirements.last_mut() {
                        r.scenarios.push(VisibleScenario {
                            name,
                            steps: Vec::new(),
                            span,
                        });
                    }
                    self.story_scenario = true;
                } else if let Some(r) = self.spec.requirements.last_mut() {
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

    /// The path of the section the walker is in: the number of the nearest numbered heading
    /// (`4.12`), else the slug of the nearest heading, else `0`.
    fn section_path(&self) -> String {
        self.outline
            .iter()
            .rev()
            .find_map(|o| o.1.clone())
            .or_else(|| self.outline.last().map(|o| slug(&o.2)))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "0".to_owned())
    }

    /// The next id `<path>-<n>` of the current section in the series `series`.
    fn next_in_section(&mut self, series: &str) -> String {
        let path = self.section_path();
        let n = self.numbered.entry(format!("{series}:{path}")).or_insert(0);
        *n += 1;
        format!("{path}-{n}")
    }

    /// An NLSpec requirement from the sentence `lr` of `t` when it holds an RFC 2119 keyword
    /// in its marked form (`MUST`, `SHALL`, `SHOULD`, `REQUIRED`; a keyword of a script without
    /// case counts as marked).
    fn nl_requirement(&mut self, t: &Text, lr: std::ops::Range<usize>, span: Span) {
        let Some(text) = t.text.get(lr.clone()) else {
            return;
        };
        let marked = ears::keywords(text)
            .any(|k| k.capitals && k.level != crate::model::NormativeLevel::Optional);
        if !marked || self.done_level.is_some() {
            return;
        }
        let body = join_ws(text);
        let id = self.next_in_section("r");
        let mut req = new_req(id, first_words(&body, 8), span, Vec::new());
        req.body.clone_from(&body);
        self.spec.requirements.push(req);
        self.statements(t, &lr, &(span.start..span.end));
    }

    fn nl_paragraph(&mut self, t: &Text, range: &std::ops::Range<usize>) {
        for s in ears::sentences(&t.text) {
            let span = self.text_span(t, &s, range);
            self.nl_requirement(t, s, span);
        }
    }

    /// A list item of an NLSpec: a checklist item of the Definition of Done is an acceptance
    /// item, any other item with a marked keyword a requirement.
    fn nl_item(&mut self, t: &Text, checked: Option<bool>, span: Span) {
        if self.done_level.is_some() {
            if let Some(done) = checked {
                self.acceptance(join_ws(&t.text), done, span);
            }
            return;
        }
        let lr = 0..t.text.trim_end().len();
        self.nl_requirement(t, lr, span);
    }

    /// An acceptance item of the Definition of Done section the walker is in.
    fn acceptance(&mut self, text: String, done: bool, span: Span) {
        let id = self.next_in_section("a");
        let section = self.outline.last().map(|o| o.2.clone()).unwrap_or_default();
        self.spec.acceptance.push(crate::model::AcceptanceItem {
            id,
            text,
            section,
            done,
            span,
        });
    }

    /// A table row: in an NLSpec's Definition of Done, a row with a `[ ]` or `[x]` cell is an
    /// acceptance item (the parity matrices of the attractor specs).
    fn row(&mut self, cells: &[String], range: &std::ops::Range<usize>) {
        if self.dialect != Dialect::NlSpec || self.done_level.is_none() {
            return;
        }
        let check = |c: &str| match c.trim() {
            "[ ]" => Some(false),
            "[x]" | "[X]" => Some(true),
            _ => None,
        };
        let Some(done) = cells.iter().find_map(|c| check(c)) else {
            return;
        };
        let text = cells
            .iter()
            .filter(|c| check(c).is_none() && !c.trim().is_empty())
            .map(|c| join_ws(c))
            .collect::<Vec<_>>()
            .join(" | ");
        let span = self.span(range);
        self.acceptance(text, done, span);
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
                // Paths are read from the source as written: the plain text has lost the
                // underscores markdown took for emphasis (`__init__.py` reads as `init.py`).
                let raw = t
                    .source_offset(lr.start)
                    .and_then(|at| raw_field(self.text, at, "touches:"));
                let v = raw.unwrap_or(v);
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
            let level = ears::level(&text);
            let normative = level == Some(NormativeLevel::Mandatory);
            new.push(Statement {
                ears: level.is_some().then(|| ears::pattern(&text)),
                system: if normative { ears::system(&text) } else { None },
                normative,
                level,
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
        if self.dialect == Dialect::NlSpec {
            self.nl_item(t, checked, span);
            return;
        }
        if self.sub_item(t, depth, number, span, range) || depth != 1 {
            return;
        }
        self.section_item(t, checked, span, range);
    }

    /// An item read by the subsection it is in (a scenario, a requirement, Kiro criteria, a
    /// user story, renamed requirements); `false` when the subsection leaves it to the section.
    fn sub_item(
        &mut self,
        t: &Text,
        depth: u32,
        number: Option<u64>,
        span: Span,
        range: &std::ops::Range<usize>,
    ) -> bool {
        match self.sub {
            Sub::Scenario => {
                // Nested items under a step are its details, not steps.
                if depth == 1 {
                    self.push_step(t, span);
                }
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
                    return true;
                }
                let lr = 0..t.text.trim_end().len();
                self.statements(t, &lr, range);
            }
            Sub::KiroCriteria if depth == 1 => self.kiro_criterion(t, number, span),
            Sub::KiroGroup if depth == 1 && number.is_some() => {
                // Criteria without their `#### Acceptance Criteria` heading.
                self.kiro_criterion(t, number, span);
            }
            Sub::Story => self.story_item(t, depth, number, span),
            Sub::Renamed => self.renamed_item(t, span),
            _ => return false,
        }
        true
    }

    /// Adds the step item `t` is, if it is one, to the last scenario.
    fn push_step(&mut self, t: &Text, span: Span) {
        if let Some(step) = step_of(t, span)
            && let Some(sc) = self
                .spec
                .requirements
                .last_mut()
                .and_then(|r| r.scenarios.last_mut())
        {
            sc.steps.push(step);
        }
    }

    /// An item under a user story: a step, else a scenario written on one item.
    fn story_item(&mut self, t: &Text, depth: u32, number: Option<u64>, span: Span) {
        // A step of the scenario a `**Scenario N: ...**` line or `#### Scenario N:`
        // heading opened (one step per item, numbered or not).
        let runs = t
            .strong
            .iter()
            .filter(|r| t.text.get((*r).clone()).and_then(keyword_i18n).is_some())
            .count();
        if self.story_scenario && depth == 1 && runs <= 1 {
            self.push_step(t, span);
            return;
        }
        if let Some(steps) = story_steps(t, number, span)
            && let Some(r) = self.spec.requirements.last_mut()
        {
            let name = format!("{} scenario {}", r.id, r.scenarios.len() + 1);
            r.scenarios.push(VisibleScenario { name, steps, span });
        }
    }

    /// A top-level item read by the section it is in.
    fn section_item(
        &mut self,
        t: &Text,
        checked: Option<bool>,
        span: Span,
        range: &std::ops::Range<usize>,
    ) {
        let speckit = self.dialect == Dialect::SpecKit;
        // Spec Kit ids are found by shape in any section: headings in a language the
        // classifier does not know still hold `**FR-001**` and `**SC-001**` items.
        let lead_id = t
            .lead_strong()
            .and_then(id_lead)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_owned());
        let section = match (speckit, lead_id.as_deref()) {
            (true, Some(id))
                if id.starts_with("FR-") && self.section != SectionKind::OpenQuestions =>
            {
                SectionKind::Behaviour
            }
            (true, Some(id)) if id.starts_with("SC-") && self.section == SectionKind::Other => {
                SectionKind::SuccessCriteria
            }
            _ => self.section,
        };
        match section {
            SectionKind::Behaviour => self.behaviour_item(t, lead_id, span, range),
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
            SectionKind::OpenQuestions if checked != Some(true) && !answered(&t.text) => {
                let it = self.id_item(t, span, 4, "Q");
                self.spec.open_questions.push(it);
            }
            SectionKind::Gate => self.gate_line(t, range),
            SectionKind::Glossary => self.glossary_item(t, span),
            SectionKind::Tasks => {
                if let Some(task) = task_of(t, checked, span) {
                    self.spec.tasks.push(task);
                }
            }
            _ => {}
        }
    }

    /// A behaviour item: a requirement when it leads with an id.
    fn behaviour_item(
        &mut self,
        t: &Text,
        lead_id: Option<String>,
        span: Span,
        range: &std::ops::Range<usize>,
    ) {
        let speckit = self.dialect == Dialect::SpecKit;
        // Spec Kit `- **FR-001**: System MUST ...` (or `- FR-001: ...`).
        let plain = (speckit && lead_id.is_none())
            .then(|| id_lead(t.text.trim()))
            .flatten();
        let Some(id) = lead_id.or_else(|| {
            plain
                .as_ref()
                .and_then(|c| c.get(1))
                .map(|m| m.as_str().to_owned())
        }) else {
            return;
        };
        let body = match &plain {
            Some(c) => t
                .text
                .trim()
                .get(c.get(0).map_or(0, |m| m.end())..)
                .unwrap_or("")
                .trim()
                .to_owned(),
            None => t.after_lead_strong().to_owned(),
        };
        let mut req = new_req(id, String::new(), span, Vec::new());
        req.title = first_words(&body, 8);
        req.body.clone_from(&body);
        self.spec.requirements.push(req);
        let start = t.text.len() - t.after_lead_strong().len();
        let lr = start.min(t.text.len())..t.text.trim_end().len().max(start);
        self.statements(t, &lr, range);
    }

    /// A glossary item: `**term**: definition` or `term: definition`.
    fn glossary_item(&mut self, t: &Text, span: Span) {
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
            Some(n) => format!("{}.{n}", self.kiro.0),
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
        let several = ears::mandatory_count(&t.text) > 1
            && ears::sentences(&t.text)
                .into_iter()
                .filter(|r| {
                    t.text
                        .get(r.clone())
                        .is_some_and(|x| ears::mandatory_count(x) > 0)
                })
                .count()
                > 1;
        if several {
            self.spec.requirements.push(req);
            let lr = 0..t.text.trim_end().len();
            self.statements(t, &lr, &(span.start..span.end));
        } else {
            let level = ears::level(&body);
            let normative = level == Some(NormativeLevel::Mandatory);
            req.statements.push(Statement {
                ears: level.is_some().then(|| ears::pattern(&body)),
                system: if normative { ears::system(&body) } else { None },
                normative,
                level,
                text: body,
                span,
            });
            self.spec.requirements.push(req);
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
        let mut scenarios: Vec<VisibleScenario> = Vec::new();
        for line in code.lines() {
            let l = line.trim();
            if let Some(name) =
                strip_ci(l, "Scenario:").or_else(|| strip_ci(l, "Scenario Outline:"))
            {
                scenarios.push(VisibleScenario {
                    name: name.trim().to_owned(),
                    steps: Vec::new(),
                    span,
                });
            } else if let Some((kw, rest)) = l.split_once(char::is_whitespace)
                && let Some(k) = keyword(kw)
            {
                if scenarios.is_empty() {
                    scenarios.push(VisibleScenario {
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

/// Whether an open-question item carries its answer: Spec Kit's clarification log
/// (`- Q: ... → A: ...`), `Answer:` / `A:` lines, `Resolved` / `Decision:` notes, in the
/// languages of the Spec Kit translations (`答:`, `回答:`, `決定:`, `Respuesta:`, `Réponse :`).
fn answered(text: &str) -> bool {
    static ANSWER: LazyLock<Regex> = LazyLock::new(|| {
        re(
            r"(?i)(?:^|[\s>→⇒*])(?:A|Answer|Answered|Resolved|Resolution|Decision|Decided|答|答复|回答|解答|决定|決定|結論|结论|Antwort|Réponse|Respuesta)\**[ \t]*[:：]|→|->|=>|\bresolved\b|✅",
        )
    });
    ANSWER.is_match(text)
}

/// The steps of a Spec Kit acceptance scenario written on one line of a story's list:
/// `**Given** a, **When** b, **Then** c`, with the keywords in English or a translation
/// (`**给定**`/`**当**`/`**那么**`, `**前提**`/`**実行**`/`**結果**`, ...). When no keyword is known
/// but a numbered item holds two or three short bold runs, they are read by position (GIVEN,
/// WHEN, THEN), which is how every translation of the template lays them out.
fn story_steps(t: &Text, number: Option<u64>, span: Span) -> Option<Vec<Step>> {
    let runs: Vec<&str> = t
        .strong
        .iter()
        .filter_map(|r| t.text.get(r.clone()))
        .collect();
    let known = runs.iter().filter(|w| keyword(w).is_some()).count();
    if known >= 2
        || runs
            .iter()
            .any(|w| matches!(keyword(w), Some(StepKeyword::Given | StepKeyword::When)))
    {
        return Some(inline_steps(t, span));
    }
    let short = runs.iter().all(|w| w.trim().chars().count() <= 12);
    if number.is_none() || !(2..=3).contains(&runs.len()) || !short {
        return None;
    }
    let order: &[StepKeyword] = if runs.len() == 3 {
        &[StepKeyword::Given, StepKeyword::When, StepKeyword::Then]
    } else {
        &[StepKeyword::When, StepKeyword::Then]
    };
    Some(inline_steps_as(t, order, span))
}

/// A heading that ends in a priority (`(Prioridad: P1)`) and holds a number: a user story in
/// a language [`USER_STORY`] does not know. Its number, title and priority.
fn story_by_priority(h: &str) -> Option<(String, String, Option<String>)> {
    let c = PRIORITY.captures(h)?;
    let head = c.get(1)?.as_str();
    let digits: String = head
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    if digits.is_empty() {
        return None;
    }
    let title = head
        .split_once(&digits)
        .map_or(head, |(_, t)| t)
        .trim()
        .trim_start_matches([':', '：', '-', '–', '—'])
        .trim();
    Some((
        digits,
        title.to_owned(),
        c.get(2).map(|m| m.as_str().to_owned()),
    ))
}

/// Whether a level-4 heading opens Kiro's acceptance criteria, in the languages Kiro-style
/// generators write it in (`Acceptance Criteria`, `Acceptance Criteria 1`, `受け入れ基準`,
/// `验收标准`, `Akzeptanzkriterien`, `Critères d'acceptation`, `Criterios de aceptación`).
fn acceptance_criteria_heading(h: &str) -> bool {
    let l = h.to_lowercase();
    [
        "acceptance criteria",
        "受け入れ基準",
        "受入基準",
        "受け入れ条件",
        "验收标准",
        "驗收標準",
        "验收条件",
        "akzeptanzkriterien",
        "critères d'acceptation",
        "criterios de aceptación",
    ]
    .iter()
    .any(|p| l.starts_with(p))
}

/// Whether the text inside `[...]` is a placeholder of a dialect's template (Spec Kit's
/// `[FEATURE NAME]`, `[Describe ...]`, `[specific capability, e.g., ...]`, `[###-feature-name]`;
/// Kiro's `[event]`, `[system]`; `[PROJECT_NAME]` tokens), not an author's tag (`[P]`, `[US1]`,
/// `[T009a]`, `[OUT OF SCOPE - MVP]`) or a reference link's text.
fn template_placeholder(inner: &str) -> bool {
    const EXACT: &[&str] = &[
        "feature name",
        "feature",
        "date",
        "initial state",
        "action",
        "expected outcome",
        "expected result",
        "boundary condition",
        "error scenario",
        "entity 1",
        "entity 2",
        "brief title",
        "event",
        "system",
        "response",
        "trigger",
        "precondition",
        "condition",
        "role",
        "capability",
        "benefit",
        "project name",
        "link to spec.md",
        "description",
        "user description",
        "requirement",
        "feature is included",
        "response/action",
    ];
    const PREFIXES: &[&str] = &[
        "Describe ",
        "Explain ",
        "Add more ",
        "What it represents",
        "Brief ",
        "Measurable ",
        "Assumption about",
        "Dependency on",
        "User satisfaction",
        "Business metric",
        "Link to ",
        "specific ",
        "key interaction",
        "data requirement",
        "Insert ",
        "Enter ",
        "Your ",
        "Fill in",
        "Replace ",
    ];
    let t = inner.trim();
    let upper_snake = t.contains('_')
        && t.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    // `[FEATURE NAME]`, `[SERVICE TITLE]`: a capitalised name-of-a-name, as templates write them.
    let words: Vec<&str> = t.split(' ').collect();
    let named_slot = (2..=3).contains(&words.len())
        && words
            .iter()
            .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase()))
        && words.last().is_some_and(|w| matches!(*w, "NAME" | "TITLE"));
    t.contains("e.g.")
        || t.starts_with("###")
        || upper_snake
        || named_slot
        || EXACT.iter().any(|e| t.eq_ignore_ascii_case(e))
        || PREFIXES.iter().any(|p| t.starts_with(p))
}

/// Whether byte `at` of `text` sits inside a double-quoted string on its line (an example of
/// output, not the spec's own words).
fn quoted(text: &str, at: usize) -> bool {
    let before = text.get(..at).unwrap_or("");
    let line = before.rsplit('\n').next().unwrap_or(before);
    line.matches(['"', '“', '”']).count() % 2 == 1
}

/// Whether the marker word `TBD`/`TODO`/`FIXME`/`XXX` at `start..end` of `text` stands as a
/// marker (`TBD`, `TODO: decide`, `(TBD)`, `Owner: TBD.`) rather than as content: a file name
/// (`doc/TODO.md`), one of a list of words (`TODO/FIXME comments`), or a noun in a sentence
/// (`looks for TODO comments`). It must not touch `/`, `.`, `-`, `_` or `\\` before it, and
/// must be followed by the end of the text, a closing or separating mark, or a dash.
fn used_as_marker(text: &str, start: usize, end: usize) -> bool {
    let before = text.get(..start).and_then(|b| b.chars().next_back());
    if before.is_some_and(|c| matches!(c, '/' | '.' | '-' | '_' | '\\' | '`' | '#')) {
        return false;
    }
    // At the start of the text or of a sentence it opens a note (`TODO fix`, `TBD which port`).
    let lead = text.get(..start).unwrap_or("").trim_end();
    if lead.is_empty() || lead.ends_with(['.', '!', '?', ':', '：', '(', '[', '—', '–', '|', '。'])
    {
        return true;
    }
    let rest = text.get(end..).unwrap_or("");
    let mut chars = rest.chars();
    match chars.next() {
        None | Some(':' | '：' | ')' | ']' | '）' | ',' | '，' | ';' | '。' | '(' | '!' | '?') => {
            true
        }
        Some('.') => chars.next().is_none_or(char::is_whitespace),
        Some(c) if c.is_whitespace() => {
            let next = rest.trim_start();
            next.is_empty() || next.starts_with(['-', '–', '—', '(', '\n'])
        }
        _ => false,
    }
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
/// The value of the field `key` (lower case, with its colon) on the source line holding byte
/// `at`, as written: what follows the key up to the end of the line, less a closing `**` when
/// the key was in bold. `None` when the line does not hold the key.
fn raw_field<'t>(source: &'t str, at: usize, key: &str) -> Option<&'t str> {
    let start = source.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let end = source
        .get(at..)?
        .find('\n')
        .map_or(source.len(), |i| at + i);
    let line = source.get(start..end)?.trim_end_matches('\r');
    let k = line.to_ascii_lowercase().find(key)?;
    let bold_key = line.get(..k)?.trim_end().ends_with("**");
    let after = line.get(k + key.len()..)?.trim_start();
    // `**Touches:** a` closes the bold after the key; `**Touches: a**` at the end of the line.
    // A glob's own `**` (`src/**`, `**/*.rs`) is the value's.
    let (v, closes_at_end) = match after.strip_prefix("**") {
        Some(rest) if bold_key => (rest.trim_start(), false),
        _ => (after, bold_key),
    };
    let v = v.trim_end();
    Some(if closes_at_end {
        v.strip_suffix("**").unwrap_or(v)
    } else {
        v
    })
}

pub(crate) fn strip_ci<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..).unwrap_or(""))
}

/// The English Gherkin keyword `word` is (`Given`, `WHEN:`, ...).
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

/// The Gherkin keyword a bold run is, in English or in the Chinese, Japanese, German, French
/// and Spanish of Cucumber's `gherkin-languages.json` and the Spec Kit template translations
/// (`**给定**`, `**前提**`, `**実行**`, `**Wenn**`, `**Quand**`, `**Dado**`, ...).
fn keyword_i18n(word: &str) -> Option<StepKeyword> {
    use StepKeyword::{And, But, Given, Then, When};
    if let Some(k) = keyword(word) {
        return Some(k);
    }
    let w = word
        .trim()
        .trim_end_matches([':', ',', '：', '，', '、'])
        .trim()
        .to_lowercase();
    let table: &[(&str, StepKeyword)] = &[
        ("假如", Given),
        ("假设", Given),
        ("假設", Given),
        ("假定", Given),
        ("给定", Given),
        ("給定", Given),
        ("前提", Given),
        ("当", When),
        ("當", When),
        ("もし", When),
        ("実行", When),
        ("操作", When),
        ("那么", Then),
        ("那麼", Then),
        ("然后", Then),
        ("然後", Then),
        ("则", Then),
        ("則", Then),
        ("ならば", Then),
        ("結果", Then),
        ("期待結果", Then),
        ("而且", And),
        ("并且", And),
        ("並且", And),
        ("同时", And),
        ("かつ", And),
        ("但是", But),
        ("しかし", But),
        ("angenommen", Given),
        ("gegeben sei", Given),
        ("gegeben seien", Given),
        ("wenn", When),
        ("dann", Then),
        ("und", And),
        ("aber", But),
        ("soit", Given),
        ("étant donné", Given),
        ("étant donnée", Given),
        ("etant donné", Given),
        ("quand", When),
        ("lorsque", When),
        ("alors", Then),
        ("et", And),
        ("mais", But),
        ("dado", Given),
        ("dada", Given),
        ("dados", Given),
        ("dadas", Given),
        ("cuando", When),
        ("entonces", Then),
        ("y", And),
        ("pero", But),
    ];
    table.iter().find_map(|&(name, k)| (w == name).then_some(k))
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
        && let Some(k) = keyword_i18n(lead)
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
    join_ws(s.lines().next().unwrap_or(""))
}

/// Steps from one line of inline bold keywords: `**Given** a, **When** b, **Then** c`.
fn inline_steps(t: &Text, span: Span) -> Vec<Step> {
    let marks: Vec<(usize, usize, StepKeyword)> = t
        .strong
        .iter()
        .filter_map(|r| {
            let k = keyword_i18n(t.text.get(r.clone())?)?;
            Some((r.start, r.end, k))
        })
        .collect();
    steps_at(t, marks, span)
}

/// Steps from the bold runs of `t` read by position as the keywords of `order`.
fn inline_steps_as(t: &Text, order: &[StepKeyword], span: Span) -> Vec<Step> {
    let marks = t
        .strong
        .iter()
        .zip(order)
        .map(|(r, &k)| (r.start, r.end, k))
        .collect();
    steps_at(t, marks, span)
}

/// The steps that start at `marks` (bold keyword runs: start, end, keyword) and run to the
/// next mark.
fn steps_at(t: &Text, mut marks: Vec<(usize, usize, StepKeyword)>, span: Span) -> Vec<Step> {
    marks.sort_by_key(|m| m.0);
    let mut steps = Vec::new();
    for (i, &(_, end, k)) in marks.iter().enumerate() {
        let stop = marks.get(i + 1).map_or(t.text.len(), |m| m.0);
        let txt = t.text.get(end..stop).unwrap_or("");
        let txt = txt
            .trim()
            .trim_start_matches([':', '：'])
            .trim()
            .trim_end_matches([',', '，', '、'])
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
fn ears_scenario(body: &str, span: Span) -> Option<VisibleScenario> {
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
    Some(VisibleScenario {
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
    if let Some(h) = lightsout_stdx::tshirt_hours(v) {
        return Some(h);
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

/// `s` with runs of ASCII whitespace made one space and the ends trimmed.
fn join_ws(s: &str) -> String {
    s.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
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
    fn touches_paths_keep_the_underscores_markdown_reads_as_emphasis() {
        let src = "---\nid: todo\ntitle: Todo\n---\n# Todo\n\n## Requirements\n\n\
                   ### REQ-001: Package\nThe system MUST expose a package.\n\n\
                   Touches: todo/__init__.py, todo/__main__.py\n\n\
                   ### REQ-002: More\nThe system MUST do more.\n**Touches:** `a/__b__.py` c/_d_.py\n\n\
                   ### REQ-003: Globs\nThe system MUST do globs.\nTouches: src/api/**, **/*.rs\n\n\
                   ### REQ-004: Bold\nThe system MUST do bold.\n**Touches: src/x/**, y.rs**\n";
        let (spec, _) = crate::parse(src.as_bytes(), None, None);
        let touches: Vec<_> = spec
            .requirements
            .iter()
            .map(|r| r.touches.clone())
            .collect();
        assert_eq!(
            touches,
            [
                vec!["todo/__init__.py", "todo/__main__.py"],
                vec!["a/__b__.py", "c/_d_.py"],
                vec!["src/api/**", "**/*.rs"],
                vec!["src/x/**", "y.rs"],
            ]
        );
    }

    #[test]
    fn ids_with_segments_and_suffixes_read_whole() {
        for (h, id) in [
            ("FR-011-001: x", "FR-011-001"),
            ("FR-010A: x", "FR-010A"),
            ("REQ-2.1 title", "REQ-2.1"),
            ("FR-001. System MUST", "FR-001"),
            ("FR-008a：IAM", "FR-008a"),
        ] {
            let got = id_lead(h)
                .and_then(|c| c.get(1))
                .map(|m| m.as_str().to_owned());
            assert_eq!(got.as_deref(), Some(id), "{h}");
        }
        assert!(id_lead("Req-1").is_none());
    }

    #[test]
    fn kiro_headings_with_letter_suffixes_and_in_other_languages() {
        assert_eq!(kiro_req("Requirement 10a: Retry"), Some(("10a", "Retry")));
        assert_eq!(kiro_req("Requirement 3.6a"), Some(("3.6a", "")));
        assert_eq!(kiro_req("要件1: 市場商品入力"), Some(("1", "市場商品入力")));
        assert_eq!(kiro_req("Requirement: x"), None);
        assert!(acceptance_criteria_heading("Acceptance Criteria 1"));
        assert!(acceptance_criteria_heading("受け入れ基準"));
    }

    #[test]
    fn user_stories_in_several_languages() {
        let s = user_story;
        assert_eq!(
            s("User Story 1 - Title (Priority: P1)"),
            Some(("1".into(), "Title".into(), Some("P1".into())))
        );
        assert_eq!(
            s("用户故事 2 - 基于NIO的事件循环 (优先级: P1)"),
            Some(("2".into(), "基于NIO的事件循环".into(), Some("P1".into())))
        );
        assert_eq!(
            s("ユーザーストーリー 3 - テーブル設計の理解 (優先度: P2)").map(|x| x.2),
            Some(Some("P2".into()))
        );
        assert_eq!(
            story_by_priority("Historia 4 – Exportar (Prioridad: P3)"),
            Some(("4".into(), "Exportar".into(), Some("P3".into())))
        );
        assert_eq!(story_by_priority("Edge Cases"), None);
    }

    #[test]
    fn markers_only_where_they_stand_as_markers() {
        let at = |t: &str, w: &str| {
            let i = t.find(w).unwrap_or(0);
            used_as_marker(t, i, i + w.len())
        };
        assert!(at("TBD", "TBD"));
        assert!(at("Timeout: TBD.", "TBD"));
        assert!(at("TODO: pick a store", "TODO"));
        assert!(at("Owner (TBD)", "TBD"));
        assert!(!at("looks for TODO/FIXME comments", "TODO"));
        assert!(!at("looks for TODO/FIXME comments", "FIXME"));
        assert!(!at("see doc/TODO.md", "TODO"));
        assert!(!at("the TBD values are filled later", "TBD"));
    }

    #[test]
    fn placeholders_are_template_text_not_author_tags() {
        for p in [
            "FEATURE NAME",
            "SERVICE TITLE",
            "###-feature-name",
            "Describe the journey",
            "PROJECT_NAME",
            "specific capability, e.g., x",
            "initial state",
        ] {
            assert!(template_placeholder(p), "{p}");
        }
        for p in [
            "P",
            "US1",
            "T009a",
            "OUT OF SCOPE - MVP",
            "NAME",
            "X",
            "link",
            "FR-001",
        ] {
            assert!(!template_placeholder(p), "{p}");
        }
    }

    #[test]
    fn answered_clarifications() {
        assert!(answered("Q: Which store? → A: SQLite"));
        assert!(answered("Q: tick 周期定多少？→ A: **5 分钟**"));
        assert!(answered("Which store? Answer: SQLite"));
        assert!(!answered("Which store should hold the links?"));
    }

    #[test]
    fn sections_by_number_and_in_other_languages() {
        assert_eq!(section_number("3.2 Retry Logic"), Some("3.2"));
        assert_eq!(section_number("11. Definition of Done"), Some("11"));
        assert_eq!(section_number("2025 roadmap"), Some("2025"));
        assert_eq!(section_number("v2 notes"), None);
        assert!(is_definition_of_done("11. Definition of Done"));
        assert_eq!(classify_section("要件 (mandatory)"), SectionKind::Behaviour);
        assert_eq!(
            classify_section("ユーザーシナリオとテスト / User Scenarios & Testing"),
            SectionKind::Users
        );
        assert_eq!(
            classify_section("成功标准 *(必填)*"),
            SectionKind::SuccessCriteria
        );
        assert_eq!(classify_section("Anforderungen"), SectionKind::Behaviour);
    }
}
