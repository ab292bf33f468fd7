//! The stable diagnostic codes.
//!
//! Ranges: `LS0xx` input (bytes, encoding, front matter), `LS1xx` structure (sections,
//! requirements, scenarios), `LS2xx` wording (normative keywords, weak words, markers,
//! placeholders, glossary), `LS3xx` references and graph (ids, dangling references, cycles,
//! versions), `LS4xx` verification gate. A code, once published, keeps its meaning; retired
//! codes are not reused.
//!
//! # Lint groups and false-positive budgets
//! As in clippy, rules that are judgement calls sit in an opt-in group: [`LintGroup::Pedantic`]
//! findings are only reported under `spec check --lint pedantic`
//! ([`crate::CheckOptions::pedantic`]). The default group reports what is wrong in the format
//! the author chose. [`group`] says where a rule sits for a dialect:
//!
//! | rule | default in | pedantic in | why |
//! | --- | --- | --- | --- |
//! | `LS102` requirement without scenario | Lightsout, OpenSpec | Spec Kit, Kiro, NLSpec | Spec Kit keeps scenarios in user stories, Kiro's criterion is the test, an NLSpec's Definition of Done is |
//! | `LS105` scenario order | Lightsout | the others | OpenSpec and Spec Kit allow several WHEN/THEN pairs in one scenario |
//! | `LS106` anti-spec uncovered | Lightsout | the others | only the Lightsout format asks for a negative scenario per anti-spec item |
//! | `LS201` not normative | Lightsout, OpenSpec, NLSpec | Spec Kit, Kiro | `openspec validate` demands SHALL/MUST; Spec Kit and Kiro authors state requirements in plain declaratives, often in other languages |
//! | `LS202` weak word | — | all | vagueness is a judgement |
//! | `LS203` constraint unmeasurable | Lightsout | the others | only the Lightsout format asks for a number and a unit |
//! | `LS206` glossary term unused | — | all | a glossary may define context terms |
//! | `LS207` EARS system not in glossary | — | all | ordinary nouns ("the system", "the engine") are not glossary terms |
//!
//! Every rule has a false-positive budget ([`Rule::budget`]): the largest share of its
//! default-group findings on the labelled fidelity corpus (`tests/fidelity`) that may be false.
//! The corpus test holds each rule with at least five labelled findings to its budget, and all
//! default findings together to 10%.

/// A rule: its code, the checklist item it belongs to, and a one-line description.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// Stable code, e.g. `LS101`.
    pub code: &'static str,
    /// Short kebab-case name, used as the SARIF rule name.
    pub name: &'static str,
    /// The readiness checklist item the rule counts against.
    pub check: &'static str,
    /// What the rule finds.
    pub description: &'static str,
    /// The largest share (0..=1) of its default-group findings on the labelled fidelity corpus
    /// that may be false positives.
    pub budget: f64,
}

/// Which set of rules a finding belongs to (clippy's lint groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LintGroup {
    /// Reported by default: the finding is wrong in the format the author chose.
    Default,
    /// Reported only with `--lint pedantic`: a judgement call, or a convention of another
    /// format.
    Pedantic,
}

impl LintGroup {
    /// The name `--lint` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            LintGroup::Default => "default",
            LintGroup::Pedantic => "pedantic",
        }
    }
}

/// The group of rule `code` for a spec of `dialect` (see the table in the module docs).
pub fn group(code: &str, dialect: crate::Dialect) -> LintGroup {
    use crate::Dialect as D;
    let pedantic = match code {
        WEAK_WORD | UNUSED_TERM | UNKNOWN_SYSTEM => true,
        NO_SCENARIO => matches!(dialect, D::SpecKit | D::Kiro | D::NlSpec),
        SCENARIO_ORDER | ANTI_UNCOVERED | UNMEASURABLE => dialect != D::Lightsout,
        NOT_NORMATIVE => matches!(dialect, D::SpecKit | D::Kiro),
        _ => false,
    };
    if pedantic {
        LintGroup::Pedantic
    } else {
        LintGroup::Default
    }
}

macro_rules! rules {
    ($( $konst:ident = $code:literal, $name:literal, $check:literal, $budget:literal, $desc:literal; )*) => {
        $(
            #[doc = concat!("`", $code, "` ", $name, ": ", $desc)]
            pub const $konst: &str = $code;
        )*
        /// Every rule, in code order.
        pub const RULES: &[Rule] = &[
            $( Rule { code: $code, name: $name, check: $check, description: $desc, budget: $budget }, )*
        ];
    };
}

rules! {
    EMPTY = "LS001", "empty-file", "readable", 0.0, "the file is empty or only whitespace";
    NOT_UTF8 = "LS002", "not-utf8", "readable", 0.0, "the file is not valid UTF-8";
    BINARY = "LS003", "binary-input", "readable", 0.0, "the file is binary (it contains NUL bytes)";
    TOO_LARGE = "LS004", "too-large", "readable", 0.0, "the file is larger than the size limit";
    FRONT_MATTER_YAML = "LS005", "front-matter-yaml", "front-matter", 0.0, "the YAML front matter does not parse";
    FRONT_MATTER_FIELD = "LS006", "front-matter-field", "front-matter", 0.05, "a front matter field is missing, unknown or has the wrong type";
    IO = "LS009", "io-error", "readable", 0.0, "the file could not be read";
    MISSING_SECTION = "LS101", "missing-section", "sections", 0.05, "a section the spec's kind requires is missing";
    NO_SCENARIO = "LS102", "requirement-without-scenario", "scenarios", 0.1, "a requirement has no visible scenario";
    NO_HOLDOUT = "LS103", "requirement-without-holdout", "holdout", 0.0, "a requirement has no holdout scenario";
    SCENARIO_INCOMPLETE = "LS104", "scenario-incomplete", "scenario-shape", 0.1, "a scenario has no WHEN or no THEN step";
    SCENARIO_ORDER = "LS105", "scenario-order", "scenario-shape", 0.15, "a scenario's steps are out of GIVEN, WHEN, THEN order";
    ANTI_UNCOVERED = "LS106", "anti-spec-uncovered", "anti-spec", 0.2, "an anti-spec item has no negative scenario or gate check";
    EMPTY_SECTION = "LS107", "empty-section", "sections", 0.1, "a section has no content and does not say N/A";
    EMPTY_REQUIREMENT = "LS108", "requirement-without-body", "requirements", 0.05, "a requirement has no text before its scenarios";
    NO_REQUIREMENTS = "LS109", "no-requirements", "requirements", 0.05, "the behaviour contract has no requirement";
    STEP_OUTSIDE_SCENARIO = "LS110", "step-outside-scenario", "scenario-shape", 0.1, "a GIVEN/WHEN/THEN bullet sits outside any scenario";
    NO_DELTA = "LS111", "delta-without-operations", "requirements", 0.0, "a change delta has no ADDED, MODIFIED, REMOVED or RENAMED section";
    NOT_NORMATIVE = "LS201", "requirement-not-normative", "normative", 0.1, "a requirement has no SHALL or MUST sentence";
    WEAK_WORD = "LS202", "weak-word", "wording", 0.3, "a weak or vague word in a requirement, constraint or anti-spec item";
    UNMEASURABLE = "LS203", "constraint-unmeasurable", "measurable", 0.2, "a constraint has no number and unit";
    MARKER = "LS204", "unresolved-marker", "resolved", 0.05, "a [NEEDS CLARIFICATION], TBD or TODO marker";
    PLACEHOLDER = "LS205", "template-leftover", "resolved", 0.1, "template text left in place ([FEATURE NAME], <placeholder>)";
    UNUSED_TERM = "LS206", "glossary-term-unused", "glossary", 0.3, "a glossary term is never used";
    UNKNOWN_SYSTEM = "LS207", "ears-system-not-in-glossary", "glossary", 0.5, "an EARS sentence names a system that is not in the glossary";
    OPEN_QUESTION = "LS208", "open-question", "resolved", 0.05, "an open question is not resolved";
    DUPLICATE_ID = "LS301", "duplicate-id", "ids", 0.02, "two elements share an id";
    DANGLING = "LS302", "dangling-reference", "references", 0.05, "a reference names an id that does not exist";
    CYCLE = "LS303", "dependency-cycle", "references", 0.02, "requirements, tasks or specs depend on each other in a cycle";
    DUPLICATE_SPEC = "LS304", "duplicate-spec-id", "ids", 0.02, "two specs in the project share an id";
    DELTA_TARGET = "LS305", "delta-target-missing", "references", 0.05, "a change delta modifies, removes or renames a requirement its main spec does not have";
    DELTA_DROPS_SCENARIO = "LS306", "modified-drops-scenario", "references", 0.05, "a MODIFIED requirement omits a scenario the main spec still has";
    NO_VERSION_BUMP = "LS310", "changed-without-version-bump", "versions", 0.05, "a requirement changed but the spec version did not go up";
    GATE_INFEASIBLE = "LS401", "gate-infeasible", "gate", 0.0, "a gate threshold cannot be met with the stated number of trials";
    GATE_RANGE = "LS402", "gate-out-of-range", "gate", 0.0, "a gate threshold is outside 0..=1";
}

/// The rule for `code`, if it exists.
pub fn rule(code: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_sorted_and_in_their_family() {
        for w in RULES.windows(2) {
            assert!(w[0].code < w[1].code, "{} !< {}", w[0].code, w[1].code);
        }
        for r in RULES {
            assert_eq!(r.code.len(), 5);
            assert!(r.code.starts_with("LS"));
        }
        assert_eq!(rule("LS401").map(|r| r.check), Some("gate"));
        assert!(RULES.iter().all(|r| (0.0..=1.0).contains(&r.budget)));
    }
}
