//! The rules of `spec-format.md` over a parsed [`Spec`], and the readiness score.

use crate::codes;
use crate::diagnostic::{Diagnostic, Severity, Span};
use crate::lines::LineCursor;
use crate::model::{DeltaOp, Dialect, SectionKind, Spec, SpecKind, StepKeyword};
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

/// z² for a two-sided 95% interval (z = 1.959964).
const Z2: f64 = 1.959_964 * 1.959_964;

static WEAK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?-u:\b)(fast|quick|quickly|user[- ]friendly|robust|robustly|etc(?-u:\b)\.?|as appropriate|as needed|if possible|where possible|should|easy|easily|intuitive|intuitively|efficient|efficiently|flexible|seamless|seamlessly|scalable|reasonable|reasonably|adequate|adequately|sufficient|sufficiently|and so on|state[- ]of[- ]the[- ]art|high[- ]performance|gracefully|properly|appropriate|appropriately|optimal|optimally)(?-u:\b)",
    )
    .expect("static regex is valid")
});
static MEASURE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)[0-9]+(?:[.,][0-9]+)?[ \t\r\n]*(?:%|percent|ms|milliseconds?|µs|us|ns|s|sec|secs|seconds?|min|mins|minutes?|h|hrs?|hours?|days?|weeks?|months?|years?|b|bytes?|kb|mb|gb|tb|kib|mib|gib|tib|rps|qps|req/s|requests?|calls?|messages?|connections?|users?|items?|issues?|links?|characters?|chars?|lines?|files?|retries|attempts?|times|trials|usd|\$|€|x(?-u:\b)|×|cores?|threads?|nodes?|replicas?|entries|rows?|records?|tokens?)(?-u:\b)|\$[ \t\r\n]*[0-9]",
    )
    .expect("static regex is valid")
});

/// Options for [`check()`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Requirement ids covered by at least one holdout scenario. `Some` turns on
    /// [`codes::NO_HOLDOUT`]; `None` (the default) means the holdout is not known here.
    pub holdout: Option<BTreeSet<String>>,
    /// Also report the [`codes::LintGroup::Pedantic`] findings (`spec check --lint pedantic`):
    /// judgement calls such as weak words and glossary coverage, and conventions of one
    /// format applied to another (see [`codes::group`]).
    pub pedantic: bool,
}

/// The readiness verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(rename = "Verdict")]
pub enum ReadinessVerdict {
    /// No errors (and, under `--strict`, no warnings).
    Ready,
    /// At least one blocking finding.
    NotReady,
}

/// One item of the readiness checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChecklistItem {
    /// The item's name (`sections`, `scenarios`, `gate`, ...); see [`codes::Rule::check`].
    pub check: String,
    /// True when no error or warning counts against it.
    pub met: bool,
    /// Number of errors and warnings against it.
    pub findings: usize,
}

/// Readiness: the share of the checklist met, and a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Readiness {
    /// Share of checklist items met, 0..=1.
    pub score: f64,
    /// The verdict.
    pub verdict: ReadinessVerdict,
    /// `verdict == Ready`, for convenience.
    pub ready: bool,
    /// Error count.
    pub errors: usize,
    /// Warning count.
    pub warnings: usize,
    /// Info count.
    pub infos: usize,
    /// Every checklist item in a fixed order.
    pub checklist: Vec<ChecklistItem>,
}

impl Readiness {
    /// Scores `diags` (the parse and check diagnostics of one spec, or of many). Errors
    /// always block; warnings block only when `strict`; infos never do. An item of the
    /// checklist is met when no error or warning of its codes was found.
    pub fn from_diagnostics(diags: &[Diagnostic], strict: bool) -> Self {
        let mut order: Vec<&'static str> = Vec::new();
        for r in codes::RULES {
            if !order.contains(&r.check) {
                order.push(r.check);
            }
        }
        let mut counts: HashMap<&str, usize> = HashMap::new();
        let (mut errors, mut warnings, mut infos) = (0, 0, 0);
        for d in diags {
            match d.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
                Severity::Info => infos += 1,
            }
            if d.severity != Severity::Info
                && let Some(r) = codes::rule(&d.code)
            {
                *counts.entry(r.check).or_default() += 1;
            }
        }
        let checklist: Vec<ChecklistItem> = order
            .iter()
            .map(|c| {
                let findings = counts.get(c).copied().unwrap_or(0);
                ChecklistItem {
                    check: (*c).to_owned(),
                    met: findings == 0,
                    findings,
                }
            })
            .collect();
        let met = checklist.iter().filter(|c| c.met).count();
        let score = if checklist.is_empty() {
            1.0
        } else {
            met as f64 / checklist.len() as f64
        };
        let ready = errors == 0 && (!strict || warnings == 0);
        Readiness {
            score,
            verdict: if ready {
                ReadinessVerdict::Ready
            } else {
                ReadinessVerdict::NotReady
            },
            ready,
            errors,
            warnings,
            infos,
            checklist,
        }
    }
}

/// The highest Wilson 95% lower bound `k` trials can reach: all `k` pass, giving
/// `k / (k + z²)` with z = 1.96 (Wilson, "Probable inference", JASA 1927). 10 trials → 0.72;
/// 0.9 needs 35 trials.
pub fn wilson_max_lower_bound(k: u32) -> f64 {
    let k = f64::from(k);
    k / (k + Z2)
}

/// Fewest trials whose all-pass Wilson lower bound reaches `p` (`None` for `p >= 1`).
fn trials_needed(p: f64) -> Option<u32> {
    if p >= 1.0 {
        return None;
    }
    if p <= 0.0 {
        return Some(1);
    }
    let k = (Z2 * p / (1.0 - p)).ceil();
    (k < f64::from(u32::MAX)).then_some(k as u32)
}

struct Ctx<'a> {
    spec: &'a Spec,
    source: &'a str,
    lines: LineCursor<'a>,
    out: Vec<Diagnostic>,
    pedantic: bool,
}

impl Ctx<'_> {
    /// Whether findings of rule `code` are reported for this spec (its group is on).
    fn enabled(&self, code: &str) -> bool {
        self.pedantic || codes::group(code, self.spec.dialect) == codes::LintGroup::Default
    }

    /// Records a finding, unless its rule's group is off.
    fn push(
        &mut self,
        code: &str,
        sev: Severity,
        span: Span,
        msg: String,
        help: impl Into<String>,
    ) {
        if !self.enabled(code) {
            return;
        }
        let mut d = Diagnostic::new(code, sev, span, msg, help);
        d.path.clone_from(&self.spec.path);
        self.out.push(d);
    }

    /// The span of `word` (case-insensitive) inside `within`, or `within`.
    fn find_in(&self, within: Span, word: &str) -> Span {
        let slice = self.source.get(within.start..within.end).unwrap_or("");
        let lower = slice.to_lowercase();
        if lower.len() == slice.len()
            && let Some(i) = lower.find(&word.to_lowercase())
        {
            let s = within.start + i;
            return self.lines.span(s, s + word.len());
        }
        within
    }

    fn top(&self) -> Span {
        if self.spec.meta.span.is_empty() {
            self.lines
                .span(0, self.source.find('\n').unwrap_or(self.source.len()))
        } else {
            self.spec.meta.span
        }
    }
}

/// Applies the rules of `spec-format.md` to `spec`.
///
/// `source` is the text the spec was parsed from (for exact spans of words and for glossary
/// use); pass `""` when it is not at hand, and word-level spans fall back to the element's.
/// The diagnostics complement those of [`crate::parse`] (which reports input problems,
/// unresolved markers and template leftovers); they carry `spec.path`. Findings of the
/// pedantic group ([`codes::group`]) are left out unless `opts.pedantic`.
pub fn check(spec: &Spec, source: &str, opts: &CheckOptions) -> Vec<Diagnostic> {
    let mut c = Ctx {
        spec,
        source,
        lines: LineCursor::new(source),
        out: Vec::new(),
        pedantic: opts.pedantic,
    };
    if archived(spec) {
        // An applied change, kept as history in the format of its day (`openspec validate`
        // skips it too): only its ids and references are checked.
        ids(&mut c);
        references(&mut c);
        return c.out;
    }
    sections(&mut c);
    requirements(&mut c, opts);
    items(&mut c);
    glossary(&mut c);
    ids(&mut c);
    references(&mut c);
    gate(&mut c);
    markers(&mut c);
    c.out
}

fn required_sections(spec: &Spec) -> Vec<SectionKind> {
    use SectionKind as K;
    match spec.dialect {
        Dialect::Lightsout => match spec.meta.kind {
            SpecKind::Feature => vec![
                K::Intent,
                K::Users,
                K::Inputs,
                K::Outputs,
                K::Behaviour,
                K::Gate,
                K::Constraints,
            ],
            SpecKind::Architectural => vec![K::Intent, K::Decisions, K::Constraints],
            SpecKind::Constraint => vec![K::Constraints],
        },
        Dialect::OpenSpec => vec![K::Intent, K::Behaviour],
        Dialect::Kiro => vec![K::Behaviour],
        // Success criteria came with a later Spec Kit template; specs written before it have
        // none, and are not wrong for that.
        Dialect::SpecKit => vec![K::Users, K::Behaviour],
        Dialect::OpenSpecDelta | Dialect::NlSpec => Vec::new(),
    }
}

/// Whether `spec` has a section of `kind`: a heading classified so, or, outside the Lightsout
/// format, the content that section holds wherever the author put it (headings in another
/// language are not always classified, the ids and list shapes are).
fn has_section(spec: &Spec, kind: SectionKind) -> bool {
    if spec.section(kind).is_some() {
        return true;
    }
    if spec.dialect == Dialect::Lightsout {
        return false;
    }
    let story = |r: &&crate::model::Requirement| r.id.starts_with("US-");
    match kind {
        SectionKind::Behaviour => spec.requirements.iter().any(|r| !story(&r)),
        SectionKind::Users => spec.requirements.iter().any(|r| story(&r)),
        SectionKind::SuccessCriteria => !spec.success_criteria.is_empty(),
        _ => false,
    }
}

fn section_name(k: SectionKind, d: Dialect) -> &'static str {
    use SectionKind as K;
    match (k, d) {
        (K::Intent, Dialect::OpenSpec) => "## Purpose",
        (K::Intent, Dialect::Kiro) => "## Introduction",
        (K::Behaviour, Dialect::Lightsout) => "## Behaviour",
        (K::Behaviour, _) => "## Requirements",
        (K::Users, Dialect::SpecKit) => "## User Scenarios & Testing",
        (K::Intent, _) => "## Intent",
        (K::Users, _) => "## Users",
        (K::Inputs, _) => "## Inputs",
        (K::Outputs, _) => "## Outputs",
        (K::AntiSpec, _) => "## Anti-spec",
        (K::Constraints, _) => "## Constraints",
        (K::Decisions, _) => "## Decisions",
        (K::Gate, _) => "## Verification gate",
        (K::Glossary, _) => "## Glossary",
        (K::OpenQuestions, _) => "## Open questions",
        (K::Tasks, _) => "## Tasks",
        (K::SuccessCriteria, _) => "## Success Criteria",
        (K::Other, _) => "a section",
    }
}

fn sections(c: &mut Ctx<'_>) {
    let spec = c.spec;
    if spec.dialect == Dialect::Lightsout {
        front_matter_fields(c);
    }
    for k in required_sections(spec) {
        if !has_section(spec, k) {
            let top = c.top();
            let name = section_name(k, spec.dialect);
            c.push(
                codes::MISSING_SECTION,
                Severity::Error,
                top,
                format!("missing required section `{name}`"),
                format!("add `{name}` (or `{name}` with `N/A: <reason>` when it does not apply)"),
            );
        }
    }
    if spec.dialect == Dialect::OpenSpecDelta
        && !spec
            .sections
            .iter()
            .any(|s| s.kind == SectionKind::Behaviour)
    {
        let top = c.top();
        c.push(
            codes::NO_DELTA,
            Severity::Error,
            top,
            "change delta has no `## ADDED|MODIFIED|REMOVED|RENAMED Requirements` section"
                .to_owned(),
            "start the delta with `## ADDED Requirements` (or MODIFIED, REMOVED, RENAMED)",
        );
    }
    empty_sections(c);
}

/// A Lightsout spec's front matter: present, with a kebab-case `id` and a `version`.
fn front_matter_fields(c: &mut Ctx<'_>) {
    let spec = c.spec;
    if spec.meta.span.is_empty() {
        let top = c.top();
        c.push(
            codes::FRONT_MATTER_FIELD,
            Severity::Error,
            top,
            "spec has no YAML front matter".to_owned(),
            "open the file with `---`, `id: <kebab-case>`, `kind`, `version` and `status`, then `---`",
        );
        return;
    }
    let id = &spec.meta.id;
    let kebab = !id.is_empty()
        && id
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if !kebab {
        let top = c.top();
        c.push(
            codes::FRONT_MATTER_FIELD,
            Severity::Error,
            top,
            format!("front matter `id` {id:?} is missing or not kebab-case"),
            "use lower-case words joined by `-`, e.g. `id: url-shortener`",
        );
    }
    if spec.meta.version.is_none() {
        let top = c.top();
        c.push(
            codes::FRONT_MATTER_FIELD,
            Severity::Warning,
            top,
            "front matter has no `version`".to_owned(),
            "add `version: 1` and bump it whenever a requirement changes",
        );
    }
}

/// Sections (other than notes and `N/A` ones) with nothing but their heading and comments.
fn empty_sections(c: &mut Ctx<'_>) {
    let spec = c.spec;
    for s in &spec.sections {
        if s.kind == SectionKind::Other || s.not_applicable.is_some() {
            continue;
        }
        let body = c.source.get(s.span.start..s.span.end).unwrap_or("");
        let has_content = body
            .split_once('\n')
            .map_or("", |(_, rest)| rest)
            .lines()
            .any(|l| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with("<!--") && !t.ends_with("-->")
            });
        if !has_content && !c.source.is_empty() {
            let span = c.lines.span(
                s.span.start,
                s.span.start
                    + c.source
                        .get(s.span.start..)
                        .and_then(|t| t.find('\n'))
                        .unwrap_or(0),
            );
            c.push(
                codes::EMPTY_SECTION,
                Severity::Warning,
                span,
                format!("section `{}` is empty", s.heading),
                "write it, or say `N/A: <reason>` when it does not apply",
            );
        }
    }
}

fn requirements(c: &mut Ctx<'_>, opts: &CheckOptions) {
    no_requirements(c);
    let spec = c.spec;
    for r in &spec.requirements {
        if matches!(r.delta, Some(DeltaOp::Removed | DeltaOp::Renamed { .. })) {
            continue;
        }
        // The heading line, computed only for a finding.
        let head_end = r.span.start
            + c.source
                .get(r.span.start..r.span.end)
                .and_then(|t| t.find('\n'))
                .unwrap_or(r.span.len());
        let head = |c: &Ctx<'_>| c.lines.span(r.span.start, head_end);
        let story = spec.dialect == Dialect::SpecKit && r.id.starts_with("US-");
        if !story {
            requirement_text(c, r, &head);
        }
        if r.scenarios.is_empty() {
            let (sev, help) = match spec.dialect {
                Dialect::SpecKit => (
                    Severity::Warning,
                    "Spec Kit ties scenarios to user stories; name the FR in a story's acceptance scenario or add one",
                ),
                Dialect::Kiro => (
                    Severity::Warning,
                    "write the criterion as \"WHEN <trigger> THEN the <system> SHALL <response>\" so it can be tested",
                ),
                _ => (
                    Severity::Error,
                    "add `#### Scenario: <name>` with `- **GIVEN**`, `- **WHEN**`, `- **THEN**` steps",
                ),
            };
            c.push(
                codes::NO_SCENARIO,
                sev,
                head(c),
                format!("requirement `{}` has no scenario", r.id),
                help,
            );
        }
        if let Some(h) = &opts.holdout
            && !story
            && !h.contains(&r.id)
        {
            c.push(
                codes::NO_HOLDOUT,
                Severity::Error,
                head(c),
                format!("requirement `{}` has no holdout scenario", r.id),
                format!("add a holdout scenario with `Satisfies: {}`", r.id),
            );
        }
        for s in &r.scenarios {
            scenario_shape(c, &r.id, s);
        }
        for st in &r.statements {
            weak_words(c, &st.text, st.span, Severity::Error, "requirement", &r.id);
        }
    }
}

/// A behaviour contract (section or NLSpec acceptance list) without any requirement.
fn no_requirements(c: &mut Ctx<'_>) {
    let spec = c.spec;
    let behaviour_na = spec
        .section(SectionKind::Behaviour)
        .is_some_and(|s| s.not_applicable.is_some());
    let nl_empty = spec.dialect == Dialect::NlSpec && spec.acceptance.is_empty();
    if spec.requirements.is_empty()
        && (spec.section(SectionKind::Behaviour).is_some() || nl_empty)
        && !behaviour_na
    {
        let span = spec
            .section(SectionKind::Behaviour)
            .map_or(c.top(), |s| s.span);
        let span = c.lines.span(
            span.start,
            span.start
                + c.source
                    .get(span.start..)
                    .and_then(|t| t.find('\n'))
                    .unwrap_or(0),
        );
        c.push(
            codes::NO_REQUIREMENTS,
            Severity::Error,
            span,
            "the behaviour contract has no requirement".to_owned(),
            match spec.dialect {
                Dialect::OpenSpec | Dialect::OpenSpecDelta => {
                    "add `### Requirement: <name>` headings"
                }
                Dialect::Kiro => "add `### Requirement N` with numbered acceptance criteria",
                Dialect::SpecKit => "add `- **FR-001**: System MUST ...` items",
                Dialect::Lightsout => {
                    "add `### REQ-1: <title>` headings with a SHALL sentence and a scenario"
                }
                Dialect::NlSpec => {
                    "state requirements as MUST/SHALL lines, or add a `## Definition of Done` checklist"
                }
            },
        );
    }
}

/// A requirement's own text: present, and normative (a SHALL or MUST sentence in Lightsout,
/// any normative keyword elsewhere); `head` gives the span of its heading line.
fn requirement_text(
    c: &mut Ctx<'_>,
    r: &crate::model::Requirement,
    head: &dyn Fn(&Ctx<'_>) -> Span,
) {
    let spec = c.spec;
    let loose = matches!(spec.dialect, Dialect::OpenSpec | Dialect::OpenSpecDelta);
    if r.statements.is_empty() && r.body.trim().is_empty() {
        c.push(
            codes::EMPTY_REQUIREMENT,
            Severity::Error,
            head(c),
            format!("requirement `{}` has no text before its scenarios", r.id),
            "state the behaviour in a sentence: \"When <trigger>, the <system> SHALL <response>.\"",
        );
    } else if spec.dialect == Dialect::Lightsout && !r.statements.iter().any(|s| s.normative) {
        c.push(
            codes::NOT_NORMATIVE,
            Severity::Error,
            head(c),
            format!("requirement `{}` has no SHALL or MUST sentence", r.id),
            "write the behaviour as \"When <trigger>, the <system> SHALL <response>.\" (EARS)",
        );
    } else if spec.dialect != Dialect::Lightsout
        && r.statements.iter().all(|s| s.level.is_none())
        && c.enabled(codes::NOT_NORMATIVE)
    {
        c.push(
            codes::NOT_NORMATIVE,
            if loose { Severity::Warning } else { Severity::Error },
            head(c),
            format!(
                "requirement `{}` has no normative keyword (SHALL, MUST, SHOULD, MAY or their equivalent)",
                r.id
            ),
            "write the behaviour as \"When <trigger>, the <system> SHALL <response>.\" (EARS)",
        );
    }
}

fn scenario_shape(c: &mut Ctx<'_>, req: &str, s: &crate::model::VisibleScenario) {
    let mut found_when = false;
    let mut found_outcome = false;
    let mut stage = StepKeyword::Given;
    let mut order_bad: Option<Span> = None;
    for st in &s.steps {
        match st.keyword {
            StepKeyword::Given => {
                if stage != StepKeyword::Given {
                    order_bad.get_or_insert(st.span);
                }
            }
            StepKeyword::When => {
                if stage == StepKeyword::Then {
                    order_bad.get_or_insert(st.span);
                }
                found_when = true;
                stage = StepKeyword::When;
            }
            StepKeyword::Then => {
                if !found_when {
                    order_bad.get_or_insert(st.span);
                }
                found_outcome = true;
                stage = StepKeyword::Then;
            }
            StepKeyword::And | StepKeyword::But => {}
        }
    }
    if !found_when || !found_outcome {
        let missing = match (found_when, found_outcome) {
            (false, false) => "WHEN and THEN steps",
            (false, true) => "a WHEN step",
            _ => "a THEN step",
        };
        c.push(
            codes::SCENARIO_INCOMPLETE,
            Severity::Error,
            s.span,
            format!("scenario {:?} of `{req}` lacks {missing}", s.name),
            "write `- **WHEN** <action>` then `- **THEN** <observable outcome>`",
        );
    } else if let Some(at) = order_bad {
        c.push(
            codes::SCENARIO_ORDER,
            Severity::Warning,
            at,
            format!("scenario {:?} of `{req}` has steps out of GIVEN, WHEN, THEN order", s.name),
            "keep one GIVEN* WHEN+ THEN+ sequence per scenario; split a second WHEN/THEN pair into its own scenario",
        );
    }
}

fn weak_words(c: &mut Ctx<'_>, text: &str, span: Span, sev: Severity, what: &str, id: &str) {
    if !c.enabled(codes::WEAK_WORD) {
        return;
    }
    let found: Vec<&str> = WEAK
        .find_iter(text)
        .filter(|m| {
            !text
                .get(m.end()..)
                .is_some_and(|r| r.starts_with("-forward") || r.starts_with("-path"))
        })
        .map(|m| m.as_str())
        .collect();
    for w in found {
        let at = c.find_in(span, w);
        let help = if w.eq_ignore_ascii_case("should") {
            "say SHALL (required) or MAY (optional); \"should\" leaves the agent to guess"
                .to_owned()
        } else {
            format!("replace {w:?} with something measurable (a number and a unit) or observable")
        };
        c.push(
            codes::WEAK_WORD,
            sev,
            at,
            format!("weak word {w:?} in {what} `{id}`"),
            help,
        );
    }
}

fn items(c: &mut Ctx<'_>) {
    let spec = c.spec;
    for it in &spec.constraints {
        weak_words(c, &it.text, it.span, Severity::Error, "constraint", &it.id);
        if !c.enabled(codes::UNMEASURABLE) {
            continue;
        }
        if !MEASURE.is_match(&it.text) {
            c.push(
                codes::UNMEASURABLE,
                Severity::Warning,
                it.span,
                format!("constraint `{}` has no number and unit", it.id),
                "state a measurable bound, e.g. `p99 latency of POST /links < 150 ms`",
            );
        }
    }
    for it in &spec.anti_spec {
        if !c.enabled(codes::ANTI_UNCOVERED) && !c.enabled(codes::WEAK_WORD) {
            break;
        }
        weak_words(
            c,
            &it.text,
            it.span,
            Severity::Warning,
            "anti-spec item",
            &it.id,
        );
        if !anti_covered(spec, &it.id, &it.text) {
            c.push(
                codes::ANTI_UNCOVERED,
                Severity::Warning,
                it.span,
                format!("anti-spec item `{}` has no negative scenario or gate check", it.id),
                format!(
                    "add a scenario whose THEN shows it does not happen (name `{}` in it), or a gate line for it",
                    it.id
                ),
            );
        }
    }
    for sc in &spec.success_criteria {
        weak_words(
            c,
            &sc.text,
            sc.span,
            Severity::Warning,
            "success criterion",
            &sc.id,
        );
    }
}

const STOP: &[&str] = &[
    "the", "that", "this", "with", "from", "than", "more", "must", "shall", "not", "into", "when",
    "then", "have", "been", "their", "there", "which", "other", "only", "does", "will", "each",
];

fn significant(text: &str) -> BTreeSet<String> {
    text.split(|ch: char| !ch.is_alphanumeric())
        .filter(|w| w.len() >= 4)
        .map(str::to_lowercase)
        .filter(|w| !STOP.contains(&w.as_str()))
        .collect()
}

fn anti_covered(spec: &Spec, id: &str, text: &str) -> bool {
    let mentions = |s: &str| s.contains(id);
    if spec.gate.iter().any(|g| mentions(&g.text)) {
        return true;
    }
    let words = significant(text);
    for r in &spec.requirements {
        for s in &r.scenarios {
            if mentions(&s.name) || s.steps.iter().any(|st| mentions(&st.text)) {
                return true;
            }
            let negative = s.steps.iter().any(|st| {
                matches!(
                    st.keyword,
                    StepKeyword::Then | StepKeyword::And | StepKeyword::But
                ) && {
                    let l = format!(" {} ", st.text.to_lowercase());
                    [
                        " not ",
                        " no ",
                        " never ",
                        " rejected",
                        " refuse",
                        " without ",
                        " nothing ",
                        " only ",
                        " at most ",
                    ]
                    .iter()
                    .any(|n| l.contains(n))
                }
            });
            if negative {
                let mut sw = significant(&s.name);
                for st in &s.steps {
                    sw.extend(significant(&st.text));
                }
                if words.intersection(&sw).count() >= 2 {
                    return true;
                }
            }
        }
    }
    false
}

fn norm_term(s: &str) -> String {
    let s = s.to_lowercase().replace(['_', '-'], " ");
    let s = s.trim().trim_matches('`').trim();
    s.strip_suffix('s').unwrap_or(s).to_owned()
}

/// The forms a glossary term may be used in, normalised ([`norm_term`]): the term without
/// its parentheses, each alternative of `A / B` or `A or B`, each parenthesised abbreviation of
/// the term (`Protocol Buffers (protobuf)`), and a one-word abbreviation the definition gives in
/// parentheses (`**Protocol Buffers**: Google's format (protobuf) for ...`).
fn term_forms(term: &str, definition: &str) -> Vec<String> {
    let mut forms = Vec::new();
    let mut add = |s: &str| {
        let n = norm_term(s);
        if !n.is_empty() && !forms.contains(&n) {
            forms.push(n);
        }
    };
    let bare: String = {
        let mut out = String::new();
        let mut depth = 0usize;
        for ch in term.chars() {
            match ch {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                _ if depth == 0 => out.push(ch),
                _ => {}
            }
        }
        out
    };
    add(&bare);
    for alt in bare
        .split(" / ")
        .chain(bare.split(" or "))
        .chain(bare.split('/'))
    {
        add(alt);
    }
    let parens = |s: &str| -> Vec<String> {
        s.split('(')
            .skip(1)
            .filter_map(|p| p.split_once(')').map(|(inner, _)| inner.trim().to_owned()))
            .collect()
    };
    for p in parens(term) {
        for alt in p.split([',', '/']) {
            add(alt.trim().trim_start_matches("e.g.").trim());
        }
    }
    let first = definition.split(". ").next().unwrap_or("");
    for p in parens(first) {
        if !p.contains(char::is_whitespace) {
            add(&p);
        }
    }
    forms
}

fn glossary(c: &mut Ctx<'_>) {
    let spec = c.spec;
    if !c.enabled(codes::UNUSED_TERM) && !c.enabled(codes::UNKNOWN_SYSTEM) {
        return;
    }
    // The normalised terms, in glossary order.
    let terms: Vec<String> = spec.glossary.iter().map(|t| norm_term(&t.term)).collect();
    if !spec.glossary.is_empty() && !c.source.is_empty() && c.enabled(codes::UNUSED_TERM) {
        let gloss = spec.section(SectionKind::Glossary).map(|s| s.span);
        let forms: Vec<Vec<String>> = spec
            .glossary
            .iter()
            .map(|t| term_forms(&t.term, &t.definition))
            .collect();
        let all: Vec<String> = forms.iter().flatten().cloned().collect();
        let used = used_in_source(c.source, gloss, &all);
        for (t, f) in spec.glossary.iter().zip(&forms) {
            if f.is_empty() || f.iter().any(|x| used.contains(x.as_str())) {
                continue;
            }
            c.push(
                codes::UNUSED_TERM,
                Severity::Warning,
                t.span,
                format!("glossary term {:?} is never used", t.term),
                "use the term where it applies, or remove it from the glossary",
            );
        }
    }
    // EARS system names must be glossary terms (Kiro convention; Lightsout when it has a glossary).
    let applies = spec.dialect == Dialect::Kiro
        || (spec.dialect == Dialect::Lightsout && !spec.glossary.is_empty());
    if !applies || !c.enabled(codes::UNKNOWN_SYSTEM) {
        return;
    }
    let terms: BTreeSet<&str> = terms.iter().map(String::as_str).collect();
    // Whether a system name is known, once per distinct name (most sentences say "system").
    let mut known_memo: BTreeMap<&str, bool> = BTreeMap::new();
    let mut unknown: BTreeMap<String, (Span, usize)> = BTreeMap::new();
    let mut order = Vec::new();
    for r in &spec.requirements {
        for st in &r.statements {
            let Some(sys) = &st.system else { continue };
            let known = *known_memo.entry(sys.as_str()).or_insert_with(|| {
                let n = norm_term(sys);
                terms.contains(n.as_str()) || terms.iter().any(|t| n.ends_with(t) && !t.is_empty())
            });
            if !known {
                let e = unknown.entry(sys.clone()).or_insert_with(|| {
                    order.push(sys.clone());
                    (st.span, 0)
                });
                e.1 += 1;
            }
        }
    }
    for sys in order {
        if let Some(&(span, n)) = unknown.get(&sys) {
            let at = c.find_in(span, &sys);
            c.push(
                codes::UNKNOWN_SYSTEM,
                Severity::Warning,
                at,
                format!(
                    "EARS system name {sys:?} is not in the glossary ({n} sentence{})",
                    if n == 1 { "" } else { "s" }
                ),
                "name the component with a glossary term (\"THE Link_Store SHALL ...\") or add the term to `## Glossary`",
            );
        }
    }
}

/// The normalised `terms` (see [`norm_term`]) used in `source` outside the glossary section
/// `gloss`, as whole words (a plural `s` allowed), case-insensitively, with `_` and `-` read as
/// spaces.
fn used_in_source<'t>(source: &str, gloss: Option<Span>, terms: &'t [String]) -> BTreeSet<&'t str> {
    let hay = match gloss {
        Some(g) => fold_hay(&[
            source.get(..g.start).unwrap_or(""),
            "\n",
            source.get(g.end..).unwrap_or(""),
        ]),
        None => fold_hay(&[source]),
    };
    used_terms(&hay, terms)
}

/// The concatenation of `parts`, lower-cased with [`str::to_lowercase`] and with `_` and `-`
/// made spaces (the haystack [`used_terms`] searches for glossary terms).
fn fold_hay(parts: &[&str]) -> String {
    parts.concat().to_lowercase().replace(['_', '-'], " ")
}

/// The normalised terms that occur in `hay` as whole words (a plural `s` allowed): an
/// occurrence that starts after a non-alphanumeric character and ends before one (or before
/// `s` and one).
fn used_terms<'t>(hay: &str, terms: &'t [String]) -> BTreeSet<&'t str> {
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    terms
        .iter()
        .map(String::as_str)
        .filter(|t| !t.is_empty())
        .filter(|t| {
            // Every occurrence, overlapping ones included.
            let mut from = 0;
            while let Some(i) = hay.get(from..).and_then(|h| h.find(*t)).map(|i| from + i) {
                let before = hay.get(..i).and_then(|b| b.chars().next_back());
                let mut after = hay.get(i + t.len()..).unwrap_or("").chars();
                let a0 = after.next();
                if !word(before) && (!word(a0) || (a0 == Some('s') && !word(after.next()))) {
                    return true;
                }
                from = i + hay
                    .get(i..)
                    .and_then(|r| r.chars().next())
                    .map_or(1, char::len_utf8);
            }
            false
        })
        .collect()
}

fn ids(c: &mut Ctx<'_>) {
    let spec = c.spec;
    let groups: Vec<(&str, Vec<(&str, Span)>)> = vec![
        (
            "requirement",
            spec.requirements
                .iter()
                .map(|r| (r.id.as_str(), r.span))
                .collect(),
        ),
        (
            "anti-spec item",
            spec.anti_spec
                .iter()
                .map(|i| (i.id.as_str(), i.span))
                .collect(),
        ),
        (
            "constraint",
            spec.constraints
                .iter()
                .map(|i| (i.id.as_str(), i.span))
                .collect(),
        ),
        (
            "decision",
            spec.decisions
                .iter()
                .map(|i| (i.id.as_str(), i.span))
                .collect(),
        ),
        (
            "success criterion",
            spec.success_criteria
                .iter()
                .map(|i| (i.id.as_str(), i.span))
                .collect(),
        ),
        (
            "task",
            spec.tasks.iter().map(|t| (t.id.as_str(), t.span)).collect(),
        ),
        (
            "glossary term",
            spec.glossary
                .iter()
                .map(|t| (t.term.as_str(), t.span))
                .collect(),
        ),
    ];
    for (what, list) in groups {
        // Duplicates are rare: one sort says whether there is any.
        let mut sorted: Vec<&str> = list.iter().map(|&(id, _)| id).collect();
        sorted.sort_unstable();
        if sorted.windows(2).all(|w| w.first() != w.get(1)) {
            continue;
        }
        let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
        for (id, span) in list {
            if let Some(first) = seen.get(id) {
                let line = first.line;
                c.push(
                    codes::DUPLICATE_ID,
                    Severity::Error,
                    span,
                    format!("duplicate {what} id `{id}` (first on line {line})"),
                    "give each element its own id; ids are how tasks, diffs and holdout scenarios refer to it",
                );
            } else {
                seen.insert(id, span);
            }
        }
    }
}

fn references(c: &mut Ctx<'_>) {
    let spec = c.spec;
    // Without a reference there is nothing to resolve and no cycle: skip building the sets.
    let req_deps = spec.requirements.iter().any(|r| !r.depends_on.is_empty());
    let task_deps = spec.tasks.iter().any(|t| !t.depends_on.is_empty());
    if !req_deps && !task_deps && spec.tasks.iter().all(|t| t.requirements.is_empty()) {
        return;
    }
    let req_ids: BTreeSet<&str> = spec.requirements.iter().map(|r| r.id.as_str()).collect();
    for r in &spec.requirements {
        for d in &r.depends_on {
            if !d.contains('#') && !req_ids.contains(d.as_str()) {
                let at = c.find_in(r.span, d);
                c.push(
                    codes::DANGLING,
                    Severity::Error,
                    at,
                    format!(
                        "requirement `{}` depends on `{d}`, which does not exist",
                        r.id
                    ),
                    "fix the id, or write `other-spec#REQ-n` for a requirement of another spec",
                );
            }
        }
    }
    let task_ids: BTreeSet<&str> = spec.tasks.iter().map(|t| t.id.as_str()).collect();
    for t in &spec.tasks {
        for rq in &t.requirements {
            if !rq.contains('#') && !req_ids.contains(rq.as_str()) {
                let at = c.find_in(t.span, rq);
                c.push(
                    codes::DANGLING,
                    Severity::Error,
                    at,
                    format!(
                        "task `{}` traces to `{rq}`, which is not a requirement here",
                        t.id
                    ),
                    "fix the requirement id in the parentheses",
                );
            }
        }
        for d in &t.depends_on {
            if !task_ids.contains(d.as_str()) {
                let at = c.find_in(t.span, d);
                c.push(
                    codes::DANGLING,
                    Severity::Error,
                    at,
                    format!("task `{}` depends on `{d}`, which is not a task here", t.id),
                    "fix the task id after `depends on`",
                );
            }
        }
    }
    if req_deps {
        let edges: Vec<Node<'_>> = spec
            .requirements
            .iter()
            .map(|r| (r.id.as_str(), r.depends_on.as_slice(), r.span))
            .collect();
        report_cycles(
            c,
            &edges,
            "requirement",
            "remove one `Depends on:` edge of the cycle; a cycle has no build order",
        );
    }
    if task_deps {
        let edges: Vec<Node<'_>> = spec
            .tasks
            .iter()
            .map(|t| (t.id.as_str(), t.depends_on.as_slice(), t.span))
            .collect();
        report_cycles(c, &edges, "task", "remove one `depends on` of the cycle");
    }
}

/// One [`codes::CYCLE`] error per dependency cycle among `edges` (`what`: "requirement" or
/// "task").
fn report_cycles(c: &mut Ctx<'_>, edges: &[Node<'_>], what: &str, help: &str) {
    for (cycle, span) in cycles(edges) {
        c.push(
            codes::CYCLE,
            Severity::Error,
            span,
            format!("{what} dependency cycle: {}", cycle.join(" → ")),
            help,
        );
    }
}

/// A node of a dependency graph: its id, the ids it depends on, and its span.
pub(crate) type Node<'a> = (&'a str, &'a [String], Span);

/// Every elementary cycle found by DFS back edges, each once (rotated to start at its
/// smallest id), with the path closed (`A → B → A`) and the span of its first node.
pub(crate) fn cycles(nodes: &[Node<'_>]) -> Vec<(Vec<String>, Span)> {
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.0, i)).collect();
    let adj: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            n.1.iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect();
    // 0 = unvisited, 1 = on stack, 2 = done.
    let mut state = vec![0u8; nodes.len()];
    let mut found: BTreeSet<Vec<usize>> = BTreeSet::new();
    let mut out = Vec::new();
    for start in 0..nodes.len() {
        if state.get(start) != Some(&0) {
            continue;
        }
        // Iterative DFS: (node, next edge index).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        if let Some(s) = state.get_mut(start) {
            *s = 1;
        }
        while let Some(&mut (n, ref mut ei)) = stack.last_mut() {
            let next = adj.get(n).and_then(|a| a.get(*ei)).copied();
            *ei += 1;
            if let Some(m) = next {
                match state.get(m).copied() {
                    Some(0) => {
                        if let Some(s) = state.get_mut(m) {
                            *s = 1;
                        }
                        stack.push((m, 0));
                    }
                    Some(1) => {
                        let pos = stack.iter().position(|&(x, _)| x == m).unwrap_or(0);
                        let mut cyc: Vec<usize> = stack
                            .get(pos..)
                            .unwrap_or(&[])
                            .iter()
                            .map(|&(x, _)| x)
                            .collect();
                        let min_at = cyc
                            .iter()
                            .enumerate()
                            .min_by_key(|&(_, &x)| nodes[x].0)
                            .map_or(0, |(i, _)| i);
                        cyc.rotate_left(min_at);
                        if found.insert(cyc.clone()) {
                            let mut names: Vec<String> =
                                cyc.iter().map(|&x| nodes[x].0.to_owned()).collect();
                            if let Some(first) = names.first().cloned() {
                                names.push(first);
                            }
                            let span = cyc.first().map_or(Span::default(), |&x| nodes[x].2);
                            out.push((names, span));
                        }
                    }
                    _ => {}
                }
            } else {
                if let Some(s) = state.get_mut(n) {
                    *s = 2;
                }
                stack.pop();
            }
        }
    }
    out
}

fn gate(c: &mut Ctx<'_>) {
    let spec = c.spec;
    for g in &spec.gate {
        for (what, v) in [
            ("lower bound", g.min_lower_bound),
            ("satisfaction", g.min_satisfaction),
            ("strength", g.min_strength),
        ] {
            if let Some(v) = v
                && !(0.0..=1.0).contains(&v)
            {
                c.push(
                    codes::GATE_RANGE,
                    Severity::Error,
                    g.span,
                    format!("gate {what} {v} is outside 0..=1"),
                    "write the threshold as a share (0.9) or a percentage (90%)",
                );
            }
        }
        if let (Some(p), Some(k)) = (g.min_lower_bound, g.trials) {
            let max = wilson_max_lower_bound(k);
            if p > max && p <= 1.0 {
                let need = trials_needed(p).map_or_else(
                    || "no number of trials reaches 1.0".to_owned(),
                    |n| format!("a bound of {p} needs at least {n} trials"),
                );
                c.push(
                    codes::GATE_INFEASIBLE,
                    Severity::Error,
                    g.span,
                    format!(
                        "gate cannot be met: {k} passes out of {k} trials give a Wilson 95% lower bound of {max:.3}, below {p}"
                    ),
                    format!("{need}, or lower the bound to at most {:.2}", (max * 100.0).floor() / 100.0),
                );
            }
        }
    }
}

fn markers(c: &mut Ctx<'_>) {
    let spec = c.spec;
    for q in &spec.open_questions {
        if q.id.starts_with("MARKER-") {
            c.push(
                codes::MARKER,
                Severity::Error,
                q.span,
                format!("unresolved marker `{}`", q.text),
                "answer it in the spec and remove the marker; the factory fills gaps wrongly, with confidence",
            );
        } else {
            c.push(
                codes::OPEN_QUESTION,
                Severity::Error,
                q.span,
                format!("open question `{}` is not resolved: {}", q.id, q.text),
                "answer it and move the answer into the spec, or tick it (`- [x]`) once resolved",
            );
        }
    }
}

/// Cross-spec rules over every spec of a project: duplicate spec ids ([`codes::DUPLICATE_SPEC`]),
/// `depends_on`/`supersedes` and `other-spec#REQ-n` references ([`codes::DANGLING`]: an error
/// when the spec is present but lacks the requirement, a warning when the spec is not among
/// `specs`), and cycles between specs ([`codes::CYCLE`]). OpenSpec change deltas are left
/// out: they share their capability's id by design.
pub fn check_project(specs: &[crate::model::Spec]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mains: Vec<&Spec> = specs
        .iter()
        .filter(|s| s.dialect != Dialect::OpenSpecDelta && !s.meta.id.is_empty())
        .collect();
    let mut by_id: HashMap<&str, &Spec> = HashMap::new();
    for s in &mains {
        if let Some(first) = by_id.get(s.meta.id.as_str()) {
            let mut d = Diagnostic::new(
                codes::DUPLICATE_SPEC,
                Severity::Error,
                s.meta.span,
                format!(
                    "spec id `{}` is also used by {}",
                    s.meta.id,
                    first
                        .path
                        .as_deref()
                        .map_or_else(|| "another spec".to_owned(), |p| p.display().to_string())
                ),
                "give each spec a unique `id` in its front matter",
            );
            d.path.clone_from(&s.path);
            out.push(d);
        } else {
            by_id.insert(&s.meta.id, s);
        }
    }
    for s in &mains {
        dangling(s, &by_id, &mut out);
    }
    deltas(specs, &by_id, &mut out);
    let edges: Vec<Node<'_>> = mains
        .iter()
        .map(|s| {
            (
                s.meta.id.as_str(),
                s.meta.depends_on.as_slice(),
                s.meta.span,
            )
        })
        .collect();
    for (cycle, span) in cycles(&edges) {
        let path = by_id
            .get(cycle.first().map_or("", String::as_str))
            .and_then(|s| s.path.clone());
        let mut d = Diagnostic::new(
            codes::CYCLE,
            Severity::Error,
            span,
            format!("spec dependency cycle: {}", cycle.join(" → ")),
            "remove one `depends_on` entry of the cycle",
        );
        d.path = path;
        out.push(d);
    }
    out
}

/// The `depends_on`/`supersedes` and `other-spec#REQ-n` references of spec `s` that do not
/// resolve among `by_id` ([`codes::DANGLING`]).
fn dangling(s: &Spec, by_id: &HashMap<&str, &Spec>, out: &mut Vec<Diagnostic>) {
    let refs = s
        .meta
        .depends_on
        .iter()
        .chain(s.meta.supersedes.iter())
        .map(|r| (r.clone(), s.meta.span, None::<&str>))
        .chain(s.requirements.iter().flat_map(|r| {
            r.depends_on
                .iter()
                .filter(|d| d.contains('#'))
                .map(move |d| (d.clone(), r.span, Some(r.id.as_str())))
        }));
    for (reference, span, from_req) in refs.collect::<Vec<_>>() {
        let (sid, rid) = match reference.split_once('#') {
            Some((a, b)) => (a.to_owned(), Some(b.to_owned())),
            None => (reference.clone(), None),
        };
        let who = from_req.map_or_else(
            || format!("spec `{}`", s.meta.id),
            |r| format!("requirement `{r}`"),
        );
        let diag = match (by_id.get(sid.as_str()), rid) {
            (None, _) => Some(Diagnostic::new(
                codes::DANGLING,
                Severity::Warning,
                span,
                format!("{who} refers to spec `{sid}`, which is not among the specs checked"),
                "check the folder that holds it too, or fix the id",
            )),
            (Some(other), Some(rid)) if other.requirement(&rid).is_none() => Some(Diagnostic::new(
                codes::DANGLING,
                Severity::Error,
                span,
                format!(
                    "{who} refers to `{reference}`, but spec `{sid}` has no requirement `{rid}`"
                ),
                "fix the requirement id",
            )),
            _ => None,
        };
        if let Some(mut d) = diag {
            d.path.clone_from(&s.path);
            out.push(d);
        }
    }
}

/// Whether `spec` is a file of an archived OpenSpec change (`changes/archive/<date>-<id>/`):
/// it was applied to the main spec as it was then, so today's main spec need not match it.
fn archived(spec: &Spec) -> bool {
    spec.path.as_deref().is_some_and(|p| {
        let parts: Vec<_> = p
            .components()
            .map(std::path::Component::as_os_str)
            .collect();
        parts
            .windows(2)
            .any(|w| w[0] == "changes" && w[1] == "archive")
    })
}

/// OpenSpec change deltas against their main specs, as `openspec validate` and `archive` do:
/// MODIFIED, REMOVED and RENAMED need the main spec and the requirement to exist, and a
/// MODIFIED block replaces the whole requirement, so it must keep every scenario.
fn deltas(specs: &[Spec], mains: &HashMap<&str, &Spec>, out: &mut Vec<Diagnostic>) {
    for d in specs
        .iter()
        .filter(|s| s.dialect == Dialect::OpenSpecDelta && !archived(s))
    {
        let main = mains
            .get(d.meta.id.as_str())
            .filter(|m| m.dialect == Dialect::OpenSpec);
        for r in &d.requirements {
            let (target, what) = match &r.delta {
                Some(DeltaOp::Modified) => (r.id.clone(), "modifies"),
                Some(DeltaOp::Removed) => (r.id.clone(), "removes"),
                Some(DeltaOp::Renamed { from }) => (crate::parse::slug(from), "renames"),
                _ => continue,
            };
            let mut push = |code: &str, sev: Severity, msg: String, help: &str| {
                let mut x = Diagnostic::new(code, sev, r.span, msg, help);
                x.path.clone_from(&d.path);
                out.push(x);
            };
            let Some(main) = main else {
                push(
                    codes::DELTA_TARGET,
                    Severity::Info,
                    format!(
                        "delta {what} `{target}` but capability `{}` has no main spec among the specs checked",
                        d.meta.id
                    ),
                    "check the main spec too (`openspec/specs/<capability>/spec.md`); for a new capability use ADDED only",
                );
                continue;
            };
            let Some(base) = main.requirement(&target) else {
                push(
                    codes::DELTA_TARGET,
                    Severity::Error,
                    format!(
                        "delta {what} `{target}`, which the main spec `{}` does not have",
                        main.meta.id
                    ),
                    "copy the requirement header exactly as the main spec writes it",
                );
                continue;
            };
            if r.delta == Some(DeltaOp::Modified) {
                let kept: BTreeSet<&str> = r.scenarios.iter().map(|s| s.name.as_str()).collect();
                for s in &base.scenarios {
                    if !kept.contains(s.name.as_str()) {
                        push(
                            codes::DELTA_DROPS_SCENARIO,
                            Severity::Error,
                            format!(
                                "MODIFIED `{}` drops scenario {:?} that the main spec still has",
                                r.id, s.name
                            ),
                            "a MODIFIED block replaces the whole requirement: copy every scenario you keep",
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glossary_forms_include_abbreviations_and_alternatives() {
        let f = term_forms("Protocol Buffers (protobuf)", "the wire format");
        assert_eq!(f, ["protocol buffer", "protobuf"]);
        let f = term_forms("Amazon Ion / Ion", "");
        assert!(f.contains(&"ion".to_owned()), "{f:?}");
        let f = term_forms("Raft_Log", "the replicated log (RL) of entries");
        assert_eq!(f, ["raft log", "rl"]);
    }

    #[test]
    fn used_terms_finds_whole_words_plurals_and_overlaps() {
        let terms = [
            "link store",
            "link",
            "store",
            "a a",
            "xlink",
            "link storage",
            "é",
        ];
        let terms: Vec<String> = terms.iter().map(|t| (*t).to_owned()).collect();
        let text = "the link stores, ba a a. linky é";
        let want: BTreeSet<&str> = ["link store", "link", "store", "a a", "é"].into();
        assert_eq!(used_terms(text, &terms), want);
    }

    #[test]
    fn wilson_bounds_match_the_format() {
        assert!((wilson_max_lower_bound(10) - 0.7225).abs() < 1e-3);
        assert!(wilson_max_lower_bound(35) >= 0.9);
        assert!(wilson_max_lower_bound(34) < 0.9);
        assert_eq!(trials_needed(0.9), Some(35));
    }

    #[test]
    fn cycles_are_found_once_with_their_path() {
        let deps = |d: &[&str]| -> Vec<String> { d.iter().map(|x| (*x).to_owned()).collect() };
        let on = [deps(&["C"]), deps(&["B"]), deps(&["A"]), deps(&["D"])];
        let span = Span::default();
        let c = cycles(&[
            ("B", &on[0], span),
            ("A", &on[1], span),
            ("C", &on[2], span),
            ("D", &on[3], span),
        ]);
        let paths: Vec<String> = c.into_iter().map(|(p, _)| p.join(" → ")).collect();
        assert_eq!(paths, ["A → B → C → A", "D → D"]);
    }
}
