//! The rules of `spec-format.md` over a parsed [`Spec`], and the readiness score.

use crate::diagnostic::{Diagnostic, Severity, Span};
use crate::lines::LineCursor;
use crate::model::{DeltaOp, Dialect, SectionKind, Spec, SpecKind, StepKeyword};
use crate::{ascii, codes};
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
}

/// The readiness verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
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
    pub verdict: Verdict,
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
                Verdict::Ready
            } else {
                Verdict::NotReady
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
}

impl Ctx<'_> {
    fn push(
        &mut self,
        code: &str,
        sev: Severity,
        span: Span,
        msg: String,
        help: impl Into<String>,
    ) {
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
/// unresolved markers and template leftovers); they carry `spec.path`.
pub fn check(spec: &Spec, source: &str, opts: &CheckOptions) -> Vec<Diagnostic> {
    let mut c = Ctx {
        spec,
        source,
        lines: LineCursor::new(source),
        out: Vec::new(),
    };
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
        Dialect::OpenSpec | Dialect::Kiro => vec![K::Intent, K::Behaviour],
        Dialect::SpecKit => vec![K::Users, K::Behaviour, K::SuccessCriteria],
        Dialect::OpenSpecDelta => Vec::new(),
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
        if spec.meta.span.is_empty() {
            let top = c.top();
            c.push(
                codes::FRONT_MATTER_FIELD,
                Severity::Error,
                top,
                "spec has no YAML front matter".to_owned(),
                "open the file with `---`, `id: <kebab-case>`, `kind`, `version` and `status`, then `---`",
            );
        } else {
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
    }
    for k in required_sections(spec) {
        if spec.section(k).is_none() {
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
    let spec = c.spec;
    let behaviour_na = spec
        .section(SectionKind::Behaviour)
        .is_some_and(|s| s.not_applicable.is_some());
    if spec.requirements.is_empty()
        && spec.section(SectionKind::Behaviour).is_some()
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
            },
        );
    }
    let loose = matches!(spec.dialect, Dialect::OpenSpec | Dialect::OpenSpecDelta);
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
            if r.statements.is_empty() && r.body.trim().is_empty() {
                c.push(
                    codes::EMPTY_REQUIREMENT,
                    Severity::Error,
                    head(c),
                    format!("requirement `{}` has no text before its scenarios", r.id),
                    "state the behaviour in a sentence: \"When <trigger>, the <system> SHALL <response>.\"",
                );
            } else if !r.statements.iter().any(|s| s.normative) {
                c.push(
                    codes::NOT_NORMATIVE,
                    if loose { Severity::Warning } else { Severity::Error },
                    head(c),
                    format!("requirement `{}` has no SHALL or MUST sentence", r.id),
                    "write the behaviour as \"When <trigger>, the <system> SHALL <response>.\" (EARS)",
                );
            }
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

fn scenario_shape(c: &mut Ctx<'_>, req: &str, s: &crate::model::Scenario) {
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
            format!("scenario {:?} of `{req}` has no {missing}", s.name),
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
    let found: Vec<&str> = weak_matches(text)
        .into_iter()
        .filter(|&(_, end)| {
            !text
                .get(end..)
                .is_some_and(|r| r.starts_with("-forward") || r.starts_with("-path"))
        })
        .filter_map(|(start, end)| text.get(start..end))
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

/// The alternatives of [`WEAK`] in its order, lower case: `-` stands for `[- ]`, and `etc`
/// takes a following `.` as `etc(?-u:\b)\.?` does (see [`weak_at`]).
const WEAK_WORDS: [&str; 37] = [
    "fast",
    "quick",
    "quickly",
    "user-friendly",
    "robust",
    "robustly",
    "etc",
    "as appropriate",
    "as needed",
    "if possible",
    "where possible",
    "should",
    "easy",
    "easily",
    "intuitive",
    "intuitively",
    "efficient",
    "efficiently",
    "flexible",
    "seamless",
    "seamlessly",
    "scalable",
    "reasonable",
    "reasonably",
    "adequate",
    "adequately",
    "sufficient",
    "sufficiently",
    "and so on",
    "state-of-the-art",
    "high-performance",
    "gracefully",
    "properly",
    "appropriate",
    "appropriately",
    "optimal",
    "optimally",
];

/// [`WEAK_WORDS`] by first letter (`a` = 0), each list in the regex's order.
static WEAK_BY_LETTER: LazyLock<Vec<Vec<WeakWord>>> = LazyLock::new(|| {
    let mut by = vec![Vec::new(); 26];
    for w in WEAK_WORDS {
        if let Some(list) = w
            .bytes()
            .next()
            .and_then(|b| by.get_mut(usize::from(b.wrapping_sub(b'a'))))
        {
            list.push(WeakWord::new(w.as_bytes()));
        }
    }
    by
});

/// Bit `b1 & 31` of entry `b0 & 31` set: a weak word starts with the letters `b0 b1` (any
/// case; every weak word starts with two letters). One test turns away most word starts.
static WEAK_PAIRS: LazyLock<[u32; 32]> = LazyLock::new(|| {
    let mut pairs = [0u32; 32];
    for w in WEAK_WORDS {
        if let [b0, b1, ..] = *w.as_bytes()
            && let Some(m) = pairs.get_mut(usize::from(b0 & 31))
        {
            *m |= 1 << (b1 & 31);
        }
    }
    pairs
});

/// One of [`WEAK_WORDS`], with a one-compare prefilter on its first eight bytes.
#[derive(Clone)]
struct WeakWord {
    text: &'static [u8],
    /// The first eight bytes of the text (`-` as 0), as [`load8`]` | 0x20…20` gives them.
    prefix: u64,
    /// `0xff` for each byte of `prefix` to compare: the ones before the end that are not `-`.
    mask: u64,
}

impl WeakWord {
    fn new(text: &'static [u8]) -> Self {
        let (mut prefix, mut mask) = ([0u8; 8], [0u8; 8]);
        for ((p, m), &b) in prefix.iter_mut().zip(&mut mask).zip(text) {
            if b != b'-' {
                (*p, *m) = (b, 0xff);
            }
        }
        WeakWord {
            text,
            prefix: u64::from_le_bytes(prefix),
            mask: u64::from_le_bytes(mask),
        }
    }
}

/// The matches of [`WEAK`] in `text` as byte ranges `(start, end)`, in order. Without a
/// character of [`ascii::FOLDS_TO_ASCII_LETTER`] every match is ASCII and [`weak_scan`] finds the same
/// ones at a fraction of the regex's cost; with one, the regex does it.
fn weak_matches(text: &str) -> Vec<(usize, usize)> {
    if ascii::folds_to_ascii_letter(text) {
        return WEAK.find_iter(text).map(|m| (m.start(), m.end())).collect();
    }
    weak_scan(text.as_bytes())
}

/// The offsets `i` of a text where the byte before `i` (if any) is not a word byte (an ASCII
/// letter or digit, or `_` when `underscore`) and, when `word_only`, the byte at `i` is one.
/// Found 64 bytes at a time, eight by eight (SWAR): byte-wise loops, and bit loops over
/// eight bytes, lost more to mispredicted branches than the rest of `check` cost.
struct WordStarts<'a> {
    bytes: &'a [u8],
    underscore: bool,
    word_only: bool,
    /// The offset of the block `starts` is of.
    base: usize,
    /// Bit `k` set: `base + k` is yet to be yielded.
    starts: u64,
    /// Bit 7 set: the last byte before `next` is a word byte.
    carry: u64,
    /// The offset of the next block.
    next: usize,
}

const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
const ONE_BYTES: u64 = 0x0101_0101_0101_0101;

/// The eight bytes of `bytes` from `at` as a little-endian word (zeros past the end), and how
/// many of them are in `bytes`.
fn load8(bytes: &[u8], at: usize) -> (u64, usize) {
    if let Some(w) = bytes
        .get(at..at + 8)
        .and_then(|c| <[u8; 8]>::try_from(c).ok())
    {
        return (u64::from_le_bytes(w), 8);
    }
    let tail = bytes.get(at..).unwrap_or_default();
    let mut w = [0u8; 8];
    if let Some(head) = w.get_mut(..tail.len()) {
        head.copy_from_slice(tail);
    }
    (u64::from_le_bytes(w), tail.len().min(8))
}

impl<'a> WordStarts<'a> {
    fn new(bytes: &'a [u8], underscore: bool, word_only: bool) -> Self {
        WordStarts {
            bytes,
            underscore,
            word_only,
            base: 0,
            starts: 0,
            carry: 0,
            next: 0,
        }
    }

    /// Bit 7 of each byte set where the byte of `x` is a word byte.
    fn word_mask(&self, x: u64) -> u64 {
        let low = x & !HIGH_BITS;
        // Bit 7 set where a byte of `v` (each < 0x80) is at least `n`; no carry leaves a byte.
        let at_least = |v: u64, n: u8| (v + ONE_BYTES * u64::from(0x80 - n)) & HIGH_BITS;
        // `| 0x20` takes `A..=Z` to `a..=z` and nothing else into that range.
        let lower = low | (ONE_BYTES * 0x20);
        let letter = at_least(lower, b'a') & !at_least(lower, b'z' + 1);
        let digit = at_least(low, b'0') & !at_least(low, b'9' + 1);
        let under = if self.underscore {
            at_least(low, b'_') & !at_least(low, b'_' + 1)
        } else {
            0
        };
        (letter | digit | under) & !x & HIGH_BITS
    }

    /// The start mask of the eight bytes `x` of which the first `len` are in the text, one
    /// bit per byte; they follow the bytes of the last call.
    fn starts8(&mut self, x: u64, len: usize) -> u64 {
        let words = self.word_mask(x);
        // Byte k's predecessor: byte k - 1, or the last byte of the word before.
        let prev = words << 8 | self.carry;
        let here = if self.word_only { words } else { HIGH_BITS };
        // Past the end: nothing.
        let valid = u64::MAX.checked_shr(8 * (8 - len) as u32).unwrap_or(0);
        self.carry = words >> 56;
        // Bit 7 of byte k to bit k.
        (((!prev & here & valid & HIGH_BITS) >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
    }

    /// The start mask of the 64 bytes at `base`, one bit per byte.
    fn starts64(&mut self, base: usize) -> u64 {
        let mut m = 0;
        if let Some(block) = self.bytes.get(base..base + 64) {
            // The common case, in full words.
            for (j, c) in block.chunks_exact(8).enumerate() {
                let x = u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or_default());
                m |= self.starts8(x, 8) << (8 * j);
            }
        } else {
            for j in 0..8 {
                let (x, len) = load8(self.bytes, base + 8 * j);
                m |= self.starts8(x, len) << (8 * j);
            }
        }
        m
    }
}

impl Iterator for WordStarts<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.starts == 0 {
            if self.next >= self.bytes.len() {
                return None;
            }
            self.base = self.next;
            self.starts = self.starts64(self.base);
            self.next += 64;
        }
        let k = self.starts.trailing_zeros() as usize;
        self.starts &= self.starts - 1;
        Some(self.base + k)
    }
}

/// [`WEAK`]'s leftmost-first matches, byte-wise: at each word start the alternatives of its
/// first letter are tried in the regex's order, and the search goes on after a match (a word
/// start is one wherever it is found from, as the bytes alone decide it).
fn weak_scan(bytes: &[u8]) -> Vec<(usize, usize)> {
    let by_letter = &*WEAK_BY_LETTER;
    let pairs = &*WEAK_PAIRS;
    let may_start = |i: usize| match bytes.get(i..i + 2) {
        Some(&[b0, b1]) => pairs
            .get(usize::from(b0 & 31))
            .is_some_and(|m| (m >> (b1 & 31)) & 1 != 0),
        _ => false,
    };
    let mut out = Vec::new();
    let mut from = 0;
    for i in WordStarts::new(bytes, true, true) {
        if i >= from
            && may_start(i)
            && let Some(end) = weak_at(by_letter, bytes, i)
        {
            out.push((i, end));
            from = end;
        }
    }
    out
}

/// The end of the first alternative of [`WEAK_WORDS`] (`by_letter`, see [`WEAK_BY_LETTER`])
/// that matches at `i` (a word start) and ends at a word boundary.
fn weak_at(by_letter: &[Vec<WeakWord>], bytes: &[u8], i: usize) -> Option<usize> {
    let first = bytes.get(i)?.to_ascii_lowercase();
    let list = by_letter.get(usize::from(first.wrapping_sub(b'a')))?;
    // Letters lower-cased (and some other bytes moved, which the exact test below rejects).
    let head = load8(bytes, i).0 | (ONE_BYTES * 0x20);
    list.iter().find_map(|ww| {
        if head & ww.mask != ww.prefix {
            return None;
        }
        let w = ww.text;
        let end = i + w.len();
        let same = bytes.get(i..end)?.iter().zip(w).all(|(&h, &p)| {
            if p == b'-' {
                h == b'-' || h == b' '
            } else {
                h.to_ascii_lowercase() == p
            }
        });
        if !same || bytes.get(end).copied().is_some_and(ascii::word_byte) {
            return None;
        }
        // `\.?` is greedy, but the `(?-u:\b)` after it holds only before a word byte.
        let dot = w == b"etc"
            && bytes.get(end) == Some(&b'.')
            && bytes.get(end + 1).copied().is_some_and(ascii::word_byte);
        Some(end + usize::from(dot))
    })
}

fn items(c: &mut Ctx<'_>) {
    let spec = c.spec;
    for it in &spec.constraints {
        weak_words(c, &it.text, it.span, Severity::Error, "constraint", &it.id);
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

fn glossary(c: &mut Ctx<'_>) {
    let spec = c.spec;
    // The normalised terms, in glossary order.
    let terms: Vec<String> = spec.glossary.iter().map(|t| norm_term(&t.term)).collect();
    if !spec.glossary.is_empty() && !c.source.is_empty() {
        let gloss = spec.section(SectionKind::Glossary).map(|s| s.span);
        let used = used_in_source(c.source, gloss, &terms);
        for (t, n) in spec.glossary.iter().zip(&terms) {
            if n.is_empty() {
                continue;
            }
            if !used.contains(n.as_str()) {
                c.push(
                    codes::UNUSED_TERM,
                    Severity::Warning,
                    t.span,
                    format!("glossary term {:?} is never used", t.term),
                    "use the term where it applies, or remove it from the glossary",
                );
            }
        }
    }
    // EARS system names must be glossary terms (Kiro convention; Lightsout when it has a glossary).
    let applies = spec.dialect == Dialect::Kiro
        || (spec.dialect == Dialect::Lightsout && !spec.glossary.is_empty());
    if !applies {
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

/// Non-ASCII characters whose [`char::to_lowercase`] holds an ASCII character: `İ` (`i̇`)
/// and the Kelvin sign (`k`). A test checks the list over every `char`.
const LOWERS_TO_ASCII: [char; 2] = ['\u{130}', '\u{212a}'];

/// The normalised `terms` (see [`norm_term`]) used in `source` outside the glossary section
/// `gloss`: those [`used_terms`] finds in the [`fold_hay`] of the text before and after the
/// section, joined by a newline.
///
/// When every term is ASCII without a newline and no character of the source lower-cases
/// to something holding ASCII, a term matches the folded text exactly where it matches the
/// source folded byte by byte (any other character folds to non-ASCII bytes, which are not
/// word bytes either way), and [`used_terms_raw`] scans the two parts in place instead.
fn used_in_source<'t>(source: &str, gloss: Option<Span>, terms: &'t [String]) -> BTreeSet<&'t str> {
    let [before, after] = match gloss {
        Some(g) => [
            source.get(..g.start).unwrap_or(""),
            source.get(g.end..).unwrap_or(""),
        ],
        None => [source, ""],
    };
    let raw_exact = terms.iter().all(|t| t.is_ascii() && !t.contains('\n'))
        && !lowers_to_ascii(before)
        && !lowers_to_ascii(after);
    if raw_exact {
        return used_terms_raw(&[before, after], terms);
    }
    let hay = match gloss {
        Some(_) => fold_hay(&[before, "\n", after]),
        None => fold_hay(&[source]),
    };
    used_terms(&hay, terms)
}

/// Whether `text` holds a character of [`LOWERS_TO_ASCII`].
fn lowers_to_ascii(text: &str) -> bool {
    !text.is_ascii()
        && LOWERS_TO_ASCII.iter().any(|ch| {
            let mut buf = [0u8; 4];
            memchr::memmem::find(text.as_bytes(), ch.encode_utf8(&mut buf).as_bytes()).is_some()
        })
}

/// An ASCII byte as [`fold_hay`] maps it: lower case, with `_` and `-` made spaces.
fn fold(b: u8) -> u8 {
    match b {
        b'_' | b'-' => b' ',
        x => x.to_ascii_lowercase(),
    }
}

/// [`used_terms`] over the [`fold_hay`] of `parts` joined by newlines, for ASCII terms and
/// parts without a character that lower-cases to ASCII (see [`used_in_source`]). Each part is
/// scanned in place, folding bytes as it goes, and at a word start one bit test on the first
/// two folded bytes turns away nearly every word; the scan stops once every term is found.
fn used_terms_raw<'t>(parts: &[&str], terms: &'t [String]) -> BTreeSet<&'t str> {
    let mut pending = Pending::new(terms);
    let mut used = BTreeSet::new();
    if pending.left == 0 {
        return used;
    }
    // Most terms start with a letter or digit; then only word starts need a look.
    let word_first = terms
        .iter()
        .all(|t| t.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric()));
    for part in parts {
        // The newline between the parts is not a word byte, as the start of a part is not.
        let bytes = part.as_bytes();
        for i in WordStarts::new(bytes, false, word_first) {
            if pending.may_start(bytes.get(i), bytes.get(i + 1))
                && pending.take_at(bytes, i, &mut used)
                && pending.left == 0
            {
                return used;
            }
        }
    }
    used
}

/// The distinct non-empty terms [`used_terms_raw`] has not found yet.
struct Pending<'t> {
    /// The terms by first byte.
    by_first: Vec<Vec<&'t str>>,
    /// Bit `b0 << 8 | b1` (256 × 256 bits): a term left starts with the bytes `b0 b1`, or is
    /// `b0` alone.
    pairs: Vec<u64>,
    /// How many terms are left.
    left: usize,
}

impl<'t> Pending<'t> {
    fn new(terms: &'t [String]) -> Self {
        let distinct: BTreeSet<&str> = terms
            .iter()
            .map(String::as_str)
            .filter(|t| !t.is_empty())
            .collect();
        let mut p = Pending {
            by_first: vec![Vec::new(); 256],
            pairs: vec![0; 256 * 4],
            left: distinct.len(),
        };
        let mut firsts = BTreeSet::new();
        for t in distinct {
            if let Some(b0) = t.bytes().next()
                && let Some(list) = p.by_first.get_mut(usize::from(b0))
            {
                list.push(t);
                firsts.insert(b0);
            }
        }
        for b0 in firsts {
            p.mark(b0);
        }
        p
    }

    /// Recomputes the bits of row `b0` of [`Pending::pairs`] from the terms left.
    fn mark(&mut self, b0: u8) {
        let base = usize::from(b0) * 4;
        let Some(row) = self.pairs.get_mut(base..base + 4) else {
            return;
        };
        row.fill(0);
        for t in self.by_first.get(usize::from(b0)).into_iter().flatten() {
            match t.as_bytes().get(1) {
                Some(&b1) => {
                    if let Some(w) = row.get_mut(usize::from(b1 >> 6)) {
                        *w |= 1 << (b1 & 63);
                    }
                }
                None => row.fill(u64::MAX),
            }
        }
    }

    /// Whether a term left may start with the raw byte `b` followed by `next`.
    fn may_start(&self, b: Option<&u8>, next: Option<&u8>) -> bool {
        let fold = |b: Option<&u8>| usize::from(b.map_or(0, |&b| fold(b)));
        let key = fold(b) << 8 | fold(next);
        self.pairs
            .get(key >> 6)
            .is_some_and(|w| (w >> (key & 63)) & 1 != 0)
    }

    /// Moves every term left that occurs at `i` of `bytes` as a whole word (a plural `s`
    /// allowed) into `used`; true when one did.
    fn take_at(&mut self, bytes: &[u8], i: usize, used: &mut BTreeSet<&'t str>) -> bool {
        let Some(b0) = bytes.get(i).map(|&b| fold(b)) else {
            return false;
        };
        let Some(list) = self.by_first.get_mut(usize::from(b0)) else {
            return false;
        };
        let before = list.len();
        list.retain(|&t| {
            let hit = term_at(bytes, i, t.as_bytes());
            if hit {
                used.insert(t);
            }
            !hit
        });
        let found = before - list.len();
        if found > 0 {
            self.left -= found;
            self.mark(b0);
        }
        found > 0
    }
}

/// Whether the folded `term` occurs at `i` of the raw `bytes` as a whole word: followed by a
/// non-word byte, or by `s` and a non-word byte (the test of [`used_terms`]).
fn term_at(bytes: &[u8], i: usize, term: &[u8]) -> bool {
    let end = i + term.len();
    let word = |k: usize| bytes.get(k).is_some_and(u8::is_ascii_alphanumeric);
    bytes
        .get(i..end)
        .is_some_and(|w| w.iter().zip(term).all(|(&h, &t)| fold(h) == t))
        && (!word(end) || (bytes.get(end).map(|&b| fold(b)) == Some(b's') && !word(end + 1)))
}

/// The concatenation of `parts`, lower-cased with [`str::to_lowercase`] and with `_` and `-`
/// made spaces, in one pass (the haystack [`used_terms`] searches for glossary terms).
fn fold_hay(parts: &[&str]) -> String {
    // `str::to_lowercase` maps a final `Σ` by its context; only then is the whole string needed.
    if parts.iter().any(|p| p.contains('Σ')) {
        return parts.concat().to_lowercase().replace(['_', '-'], " ");
    }
    let mut out: Vec<u8> = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        let mut rest = *p;
        while !rest.is_empty() {
            // The ASCII run first, byte-wise; then one non-ASCII character.
            let ascii = rest
                .bytes()
                .position(|b| !b.is_ascii())
                .unwrap_or(rest.len());
            let (run, tail) = rest.split_at(ascii);
            let at = out.len();
            out.extend_from_slice(run.as_bytes());
            for b in out.get_mut(at..).unwrap_or(&mut []) {
                *b = fold(*b);
            }
            let mut chars = tail.chars();
            if let Some(ch) = chars.next() {
                // No lower case of a non-ASCII character holds `_` or `-`.
                let mut buf = [0u8; 4];
                for l in ch.to_lowercase() {
                    out.extend_from_slice(l.encode_utf8(&mut buf).as_bytes());
                }
            }
            rest = chars.as_str();
        }
    }
    // Valid: ASCII bytes mapped to ASCII bytes, and whole encoded characters.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The normalised terms that occur in `hay` as whole words (a plural `s` allowed): every
/// occurrence, overlapping ones included, that starts after a non-word byte. One pass over
/// `hay` compares only the terms that begin with the byte at a word start, and stops once
/// every term is found. (An Aho-Corasick automaton found the same occurrences, but stepping it
/// through every byte cost a quarter of `check` on a 40 KB Kiro spec; see `benches/spec.rs`.)
fn used_terms<'t>(hay: &str, terms: &'t [String]) -> BTreeSet<&'t str> {
    let distinct: BTreeSet<&str> = terms
        .iter()
        .map(String::as_str)
        .filter(|t| !t.is_empty())
        .collect();
    // Terms not found yet, by first byte; a found term leaves its list.
    let mut by_first: Vec<Vec<&str>> = vec![Vec::new(); 256];
    for &t in &distinct {
        if let Some(list) = t
            .bytes()
            .next()
            .and_then(|b| by_first.get_mut(usize::from(b)))
        {
            list.push(t);
        }
    }
    let mut left = distinct.len();
    let bytes = hay.as_bytes();
    let word = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    let mut used = BTreeSet::new();
    let mut prev_word = false;
    for (i, &b) in bytes.iter().enumerate() {
        if !prev_word && let Some(list) = by_first.get_mut(usize::from(b)) {
            let rest = bytes.get(i..).unwrap_or(&[]);
            let mut k = 0;
            while let Some(&t) = list.get(k) {
                let end = i + t.len();
                let after = bytes.get(end);
                if rest.starts_with(t.as_bytes())
                    && (!word(after) || (after == Some(&b's') && !word(bytes.get(end + 1))))
                {
                    used.insert(t);
                    list.swap_remove(k);
                    left -= 1;
                } else {
                    k += 1;
                }
            }
            if left == 0 {
                break;
            }
        }
        prev_word = b.is_ascii_alphanumeric();
    }
    used
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
                (Some(other), Some(rid)) if other.requirement(&rid).is_none() => {
                    Some(Diagnostic::new(
                        codes::DANGLING,
                        Severity::Error,
                        span,
                        format!(
                            "{who} refers to `{reference}`, but spec `{sid}` has no requirement `{rid}`"
                        ),
                        "fix the requirement id",
                    ))
                }
                _ => None,
            };
            if let Some(mut d) = diag {
                d.path.clone_from(&s.path);
                out.push(d);
            }
        }
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

/// OpenSpec change deltas against their main specs, as `openspec validate` and `archive` do:
/// MODIFIED, REMOVED and RENAMED need the main spec and the requirement to exist, and a
/// MODIFIED block replaces the whole requirement, so it must keep every scenario.
fn deltas(specs: &[Spec], mains: &HashMap<&str, &Spec>, out: &mut Vec<Diagnostic>) {
    for d in specs.iter().filter(|s| s.dialect == Dialect::OpenSpecDelta) {
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
    fn used_terms_finds_whole_words_plurals_and_overlaps() {
        let terms = [
            "link store",
            "link",
            "store",
            "a a",
            "xlink",
            "link storage",
        ];
        let terms: Vec<String> = terms.iter().map(|t| (*t).to_owned()).collect();
        let text = "the link stores, ba a a. linky";
        let want: BTreeSet<&str> = ["link store", "link", "store", "a a"].into();
        assert_eq!(used_terms(text, &terms), want);
        assert_eq!(used_terms_raw(&[text], &terms), want);
    }

    #[test]
    fn lowers_to_ascii_lists_every_such_char() {
        let found: Vec<char> = (char::MIN..=char::MAX)
            .filter(|ch| !ch.is_ascii() && ch.to_lowercase().any(|l| l.is_ascii()))
            .collect();
        assert_eq!(found, LOWERS_TO_ASCII);
    }

    /// Pieces of text around the weak words: the words, their prefixes and extensions,
    /// separators, case variants, and characters the regex folds or treats as non-words.
    const WEAK_FRAGMENTS: &[&str] = &[
        "fast",
        "Quick",
        "quickly",
        "quickl",
        "user",
        "USER",
        "friendly",
        "robustly",
        "robus",
        "etc",
        "ETC",
        "Etc.",
        "as",
        "AS",
        "appropriate",
        "appropriatel",
        "appropriately",
        "needed",
        "if",
        "possible",
        "where",
        "Should",
        "shoulds",
        "easy",
        "Easily",
        "efficient",
        "efficiently",
        "and",
        "so",
        "on",
        "state",
        "of",
        "the",
        "art",
        "high",
        "performance",
        "gracefully",
        "properly",
        "optimal",
        "optimally",
        "scalable",
        "x",
        "Z",
        "s",
        "ly",
        " ",
        " ",
        " ",
        "-",
        "-",
        ".",
        ".",
        "_",
        "0",
        "7",
        ",",
        "\n",
        "é",
        "✅",
        "-forward",
        "-path",
    ];

    fn regex_weak(text: &str) -> Vec<(usize, usize)> {
        WEAK.find_iter(text).map(|m| (m.start(), m.end())).collect()
    }

    proptest::proptest! {
        #[test]
        fn weak_scan_finds_the_regex_matches(
            parts in proptest::collection::vec(proptest::sample::select(WEAK_FRAGMENTS), 0..40)
        ) {
            let text = parts.concat();
            proptest::prop_assert_eq!(weak_scan(text.as_bytes()), regex_weak(&text));
        }

        #[test]
        fn weak_matches_falls_back_on_folding_chars(
            parts in proptest::collection::vec(
                proptest::sample::select([WEAK_FRAGMENTS, &["ſ", "K", "ſhould", "Kſ"]].concat()),
                0..24,
            )
        ) {
            let text = parts.concat();
            proptest::prop_assert_eq!(weak_matches(&text), regex_weak(&text));
        }

        #[test]
        fn used_in_source_matches_the_folded_search(
            parts in proptest::collection::vec(proptest::sample::select(TERM_FRAGMENTS), 0..40),
            terms in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(TERM_FRAGMENTS), 1..4),
                0..6,
            ),
            cut in 0usize..40,
            len in 0usize..20,
            raw in proptest::bool::ANY,
        ) {
            // `raw`: only what the in-place scan handles, so that it runs.
            let mut source = parts.concat();
            let mut terms: Vec<String> = terms.iter().map(|t| norm_term(&t.concat())).collect();
            if raw {
                source = source.replace(LOWERS_TO_ASCII, "");
                terms.retain(|t| t.is_ascii() && !t.contains('\n'));
            }
            for gloss in [None, Some(Span { start: cut, end: cut + len, line: 1, column: 1 })] {
                let hay = match gloss {
                    Some(g) => fold_hay(&[
                        source.get(..g.start).unwrap_or(""),
                        "\n",
                        source.get(g.end..).unwrap_or(""),
                    ]),
                    None => fold_hay(&[&source]),
                };
                proptest::prop_assert_eq!(
                    used_in_source(&source, gloss, &terms),
                    used_terms(&hay, &terms)
                );
            }
        }

        #[test]
        fn word_starts_are_the_bytewise_ones(
            bytes in proptest::collection::vec(
                proptest::sample::select(&b"aZz09_ -.\n@[`{/:\x00\x7f\x80\xc3\xff"[..]),
                0..200,
            ),
            underscore in proptest::bool::ANY,
            word_only in proptest::bool::ANY,
        ) {
            let word = |b: u8| b.is_ascii_alphanumeric() || (underscore && b == b'_');
            let want: Vec<usize> = (0..bytes.len())
                .filter(|&i| {
                    (i == 0 || !word(bytes[i - 1])) && (!word_only || word(bytes[i]))
                })
                .collect();
            let got: Vec<usize> = WordStarts::new(&bytes, underscore, word_only).collect();
            proptest::prop_assert_eq!(got, want);
        }

    }

    /// Pieces of sources and glossary terms: words, plurals, separators that fold to a space,
    /// and characters whose lower case is or is not ASCII.
    const TERM_FRAGMENTS: &[&str] = &[
        "link", "Link", "LINK", "store", "s", "S", "a", "x", " ", " ", "_", "-", "\n", ".", "1",
        "é", "É", "İ", "K", "Σ", "ſ", "✅",
    ];

    #[test]
    fn fold_hay_matches_to_lowercase_and_replace() {
        for parts in [
            &["Raft_Node-X", "\n", "ÀB_c"][..],
            &["ΟΔΟΣ_Σ", "\n", "KELVIN K"][..],
            &["İstanbul", "\n", ""][..],
        ] {
            let slow = parts.concat().to_lowercase().replace(['_', '-'], " ");
            assert_eq!(fold_hay(parts), slow);
        }
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
