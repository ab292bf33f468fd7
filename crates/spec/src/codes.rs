//! The stable diagnostic codes.
//!
//! Ranges: `LS0xx` input (bytes, encoding, front matter), `LS1xx` structure (sections,
//! requirements, scenarios), `LS2xx` wording (normative keywords, weak words, markers,
//! placeholders, glossary), `LS3xx` references and graph (ids, dangling references, cycles,
//! versions), `LS4xx` verification gate. A code, once published, keeps its meaning; retired
//! codes are not reused.

/// A rule: its code, the checklist item it belongs to, and a one-line description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Stable code, e.g. `LS101`.
    pub code: &'static str,
    /// Short kebab-case name, used as the SARIF rule name.
    pub name: &'static str,
    /// The readiness checklist item the rule counts against.
    pub check: &'static str,
    /// What the rule finds.
    pub description: &'static str,
}

macro_rules! rules {
    ($( $konst:ident = $code:literal, $name:literal, $check:literal, $desc:literal; )*) => {
        $(
            #[doc = concat!("`", $code, "` ", $name, ": ", $desc)]
            pub const $konst: &str = $code;
        )*
        /// Every rule, in code order.
        pub const RULES: &[Rule] = &[
            $( Rule { code: $code, name: $name, check: $check, description: $desc }, )*
        ];
    };
}

rules! {
    EMPTY = "LS001", "empty-file", "readable", "the file is empty or only whitespace";
    NOT_UTF8 = "LS002", "not-utf8", "readable", "the file is not valid UTF-8";
    BINARY = "LS003", "binary-input", "readable", "the file is binary (it contains NUL bytes)";
    TOO_LARGE = "LS004", "too-large", "readable", "the file is larger than the size limit";
    FRONT_MATTER_YAML = "LS005", "front-matter-yaml", "front-matter", "the YAML front matter does not parse";
    FRONT_MATTER_FIELD = "LS006", "front-matter-field", "front-matter", "a front matter field is missing, unknown or has the wrong type";
    IO = "LS009", "io-error", "readable", "the file could not be read";
    MISSING_SECTION = "LS101", "missing-section", "sections", "a section the spec's kind requires is missing";
    NO_SCENARIO = "LS102", "requirement-without-scenario", "scenarios", "a requirement has no visible scenario";
    NO_HOLDOUT = "LS103", "requirement-without-holdout", "holdout", "a requirement has no holdout scenario";
    SCENARIO_INCOMPLETE = "LS104", "scenario-incomplete", "scenario-shape", "a scenario has no WHEN or no THEN step";
    SCENARIO_ORDER = "LS105", "scenario-order", "scenario-shape", "a scenario's steps are out of GIVEN, WHEN, THEN order";
    ANTI_UNCOVERED = "LS106", "anti-spec-uncovered", "anti-spec", "an anti-spec item has no negative scenario or gate check";
    EMPTY_SECTION = "LS107", "empty-section", "sections", "a section has no content and does not say N/A";
    EMPTY_REQUIREMENT = "LS108", "requirement-without-body", "requirements", "a requirement has no text before its scenarios";
    NO_REQUIREMENTS = "LS109", "no-requirements", "requirements", "the behaviour contract has no requirement";
    STEP_OUTSIDE_SCENARIO = "LS110", "step-outside-scenario", "scenario-shape", "a GIVEN/WHEN/THEN bullet sits outside any scenario";
    NO_DELTA = "LS111", "delta-without-operations", "requirements", "a change delta has no ADDED, MODIFIED, REMOVED or RENAMED section";
    NOT_NORMATIVE = "LS201", "requirement-not-normative", "normative", "a requirement has no SHALL or MUST sentence";
    WEAK_WORD = "LS202", "weak-word", "wording", "a weak or vague word in a requirement, constraint or anti-spec item";
    UNMEASURABLE = "LS203", "constraint-unmeasurable", "measurable", "a constraint has no number and unit";
    MARKER = "LS204", "unresolved-marker", "resolved", "a [NEEDS CLARIFICATION], TBD or TODO marker";
    PLACEHOLDER = "LS205", "template-leftover", "resolved", "template text left in place ([FEATURE NAME], <placeholder>)";
    UNUSED_TERM = "LS206", "glossary-term-unused", "glossary", "a glossary term is never used";
    UNKNOWN_SYSTEM = "LS207", "ears-system-not-in-glossary", "glossary", "an EARS sentence names a system that is not in the glossary";
    OPEN_QUESTION = "LS208", "open-question", "resolved", "an open question is not resolved";
    DUPLICATE_ID = "LS301", "duplicate-id", "ids", "two elements share an id";
    DANGLING = "LS302", "dangling-reference", "references", "a reference names an id that does not exist";
    CYCLE = "LS303", "dependency-cycle", "references", "requirements, tasks or specs depend on each other in a cycle";
    DUPLICATE_SPEC = "LS304", "duplicate-spec-id", "ids", "two specs in the project share an id";
    DELTA_TARGET = "LS305", "delta-target-missing", "references", "a change delta modifies, removes or renames a requirement its main spec does not have";
    DELTA_DROPS_SCENARIO = "LS306", "modified-drops-scenario", "references", "a MODIFIED requirement omits a scenario the main spec still has";
    NO_VERSION_BUMP = "LS310", "changed-without-version-bump", "versions", "a requirement changed but the spec version did not go up";
    GATE_INFEASIBLE = "LS401", "gate-infeasible", "gate", "a gate threshold cannot be met with the stated number of trials";
    GATE_RANGE = "LS402", "gate-out-of-range", "gate", "a gate threshold is outside 0..=1";
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
    }
}
