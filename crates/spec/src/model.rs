//! The typed `Spec`: plain data, shared with the other stages through serde.
//!
//! Every element carries the [`Span`] of the markdown it came from.

use crate::diagnostic::Span;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The source format a spec was read from.
///
/// Serialises as [`Dialect::as_str`], the name `--dialect` takes (`"openspec"`, not serde's
/// kebab-case `"open-spec"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// The Lightsout format (front matter + the seven questions); see `spec-format.md`.
    Lightsout,
    /// GitHub Spec Kit `spec.md` (`FR-###`, user stories, `SC-###`).
    SpecKit,
    /// OpenSpec `specs/<cap>/spec.md` (`### Requirement:` / `#### Scenario:`).
    #[serde(rename = "openspec")]
    OpenSpec,
    /// An OpenSpec change delta (`## ADDED|MODIFIED|REMOVED|RENAMED Requirements`).
    #[serde(rename = "openspec-delta")]
    OpenSpecDelta,
    /// Kiro `requirements.md` (`### Requirement N`, numbered EARS criteria).
    Kiro,
    /// A natural-language spec in StrongDM's attractor style (`*-spec.md`): numbered sections,
    /// RFC 2119 `MUST`/`SHALL`/`SHOULD` lines as requirements with section-path ids, and a
    /// Definition of Done whose checklist items are [`Spec::acceptance`] items.
    #[serde(rename = "nlspec")]
    NlSpec,
}

impl Dialect {
    /// Every dialect, in declaration order.
    pub const ALL: [Dialect; 6] = [
        Dialect::Lightsout,
        Dialect::SpecKit,
        Dialect::OpenSpec,
        Dialect::OpenSpecDelta,
        Dialect::Kiro,
        Dialect::NlSpec,
    ];

    /// The kebab-case name used on the command line (`--dialect`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Lightsout => "lightsout",
            Dialect::SpecKit => "spec-kit",
            Dialect::OpenSpec => "openspec",
            Dialect::OpenSpecDelta => "openspec-delta",
            Dialect::Kiro => "kiro",
            Dialect::NlSpec => "nlspec",
        }
    }
}

/// What a spec describes; decides which sections are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SpecKind {
    /// Cross-cutting structure; other specs depend on it and are planned after it.
    Architectural,
    /// A user-facing feature; needs all seven questions.
    #[default]
    Feature,
    /// A constraint-only spec.
    Constraint,
}

/// Lifecycle of a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SpecStatus {
    /// Being written.
    #[default]
    Draft,
    /// Ready for the factory.
    Ready,
    /// Built and accepted.
    Accepted,
    /// Replaced by another spec.
    Superseded,
}

/// The YAML front matter (or what a dialect implies in its place).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct FrontMatter {
    /// Kebab-case id, unique in the project. Derived from the path when absent.
    pub id: String,
    /// Human title.
    pub title: String,
    /// What the spec describes.
    pub kind: SpecKind,
    /// Integer version; bump when any requirement changes.
    pub version: Option<u32>,
    /// Lifecycle status.
    pub status: SpecStatus,
    /// Ids of specs this one depends on.
    pub depends_on: Vec<String>,
    /// Id of the spec this one supersedes.
    pub supersedes: Option<String>,
    /// Span of the front matter block, or an empty span at 0 when there is none.
    pub span: Span,
}

/// A level-2 section, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SectionKind {
    /// WHAT: `## Intent` [Purpose, What, Overview].
    Intent,
    /// WHO: `## Users` [Who, Actors].
    Users,
    /// `## Inputs`.
    Inputs,
    /// `## Outputs`.
    Outputs,
    /// RULES: `## Behaviour` [Behavior, Requirements, Behaviour contract].
    Behaviour,
    /// `## Anti-spec` [Must not, Non-goals].
    AntiSpec,
    /// `## Constraints`.
    Constraints,
    /// `## Decisions`.
    Decisions,
    /// EVALUATION: `## Verification gate` [Gate, Evaluation].
    Gate,
    /// `## Glossary`.
    Glossary,
    /// `## Open questions`.
    OpenQuestions,
    /// `## Tasks`.
    Tasks,
    /// Spec Kit `## Success Criteria`.
    SuccessCriteria,
    /// Any other heading.
    Other,
}

/// A section as it appears in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Section {
    /// The classification.
    pub kind: SectionKind,
    /// The heading text as written.
    pub heading: String,
    /// `Some(reason)` when the body is `N/A: <reason>`.
    pub not_applicable: Option<String>,
    /// From the heading to the next heading of the same or higher level.
    pub span: Span,
}

/// The EARS pattern of a requirement sentence (Mavin et al., "Easy Approach to Requirements
/// Syntax", RE 2009).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EarsPattern {
    /// "The <system> shall <response>."
    Ubiquitous,
    /// "When <trigger>, the <system> shall <response>."
    EventDriven,
    /// "While <state>, the <system> shall <response>."
    StateDriven,
    /// "If <condition>, then the <system> shall <response>."
    UnwantedBehaviour,
    /// "Where <feature>, the <system> shall <response>."
    Optional,
    /// Two or more of the keywords above together.
    Complex,
}

/// The strength of a normative keyword (RFC 2119 §1-5), in any of the languages the reader
/// knows (see `ears::KEYWORDS`). Ordered from strongest to weakest.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum NormativeLevel {
    /// MUST, SHALL, REQUIRED, MUST NOT, SHALL NOT (必须, しなければならない, muss, doit, debe).
    Mandatory,
    /// SHOULD, RECOMMENDED, SHOULD NOT (应该, 望ましい, sollte, devrait, debería).
    Recommended,
    /// MAY, OPTIONAL.
    Optional,
}

/// One sentence of a requirement, with its normative keyword when it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Statement {
    /// The sentence text, markdown stripped.
    pub text: String,
    /// Whether it holds a mandatory keyword (SHALL or MUST in any case, or an equivalent in
    /// Chinese, Japanese, German, French or Spanish): `level == Some(Mandatory)`.
    pub normative: bool,
    /// The strongest normative keyword of the sentence, if any.
    #[serde(default)]
    pub level: Option<NormativeLevel>,
    /// EARS pattern when recognised.
    pub ears: Option<EarsPattern>,
    /// The system name after "the" in an EARS sentence, when recognised.
    pub system: Option<String>,
    /// Where it is.
    pub span: Span,
}

/// Given/When/Then keyword of a scenario step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepKeyword {
    /// GIVEN: context.
    Given,
    /// WHEN: the action.
    When,
    /// THEN: the outcome.
    Then,
    /// AND: continues the previous keyword.
    And,
    /// BUT: continues the previous keyword, negatively.
    But,
}

/// One step of a visible scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    /// The keyword.
    pub keyword: StepKeyword,
    /// The text after the keyword.
    pub text: String,
    /// Where it is.
    pub span: Span,
}

/// A visible acceptance scenario (not a holdout one: that is `lightsout_eval::Scenario`).
/// Its JSON Schema keeps the name `Scenario`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "Scenario")]
pub struct VisibleScenario {
    /// Its name.
    pub name: String,
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Where it is.
    pub span: Span,
}

/// The operation of an OpenSpec change delta on a requirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", tag = "op")]
pub enum DeltaOp {
    /// `## ADDED Requirements`.
    Added,
    /// `## MODIFIED Requirements`.
    Modified,
    /// `## REMOVED Requirements`.
    Removed,
    /// `## RENAMED Requirements`: `from` is the old name.
    Renamed {
        /// The previous requirement name.
        from: String,
    },
}

/// One requirement of the behaviour contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Requirement {
    /// Stable id: `REQ-1`, `FR-001`, Kiro `1.2`, or derived from an OpenSpec name.
    pub id: String,
    /// Short title.
    pub title: String,
    /// The body text (markdown as written).
    pub body: String,
    /// SHALL/MUST sentences and their EARS form.
    pub statements: Vec<Statement>,
    /// Visible acceptance scenarios.
    pub scenarios: Vec<VisibleScenario>,
    /// `Depends on:` references: `REQ-2` or `other-spec#REQ-1`.
    pub depends_on: Vec<String>,
    /// `Touches:` path globs.
    pub touches: Vec<String>,
    /// Estimate in hours, when given (`Estimate: 3h`, `Size: M`).
    pub estimate_hours: Option<f64>,
    /// Tags (`@critical`).
    pub tags: Vec<String>,
    /// Set only for OpenSpec change deltas.
    pub delta: Option<DeltaOp>,
    /// Where it is: from its heading to the next requirement.
    pub span: Span,
}

/// A list item with an id: anti-spec, constraint, decision, success criterion, open question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Item {
    /// `ANTI-1`, `CON-2`, `DEC-1`, `SC-001`; derived (`CON-3`) when the author gave none.
    pub id: String,
    /// Text after the id.
    pub text: String,
    /// Where it is.
    pub span: Span,
}

/// A glossary entry: `- **term**: definition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GlossaryTerm {
    /// The term.
    pub term: String,
    /// Its definition.
    pub definition: String,
    /// Where it is.
    pub span: Span,
}

/// One gate threshold parsed from the Verification gate section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GateRule {
    /// The line as written.
    pub text: String,
    /// Required Wilson 95% lower bound (0..=1), when the line states one.
    pub min_lower_bound: Option<f64>,
    /// Number of trials the line states, when it does.
    pub trials: Option<u32>,
    /// Minimum suite satisfaction (0..=1), when the line states one.
    pub min_satisfaction: Option<f64>,
    /// Tag the rule applies to (`@critical`), when any.
    pub tag: Option<String>,
    /// Whether the line demands no regressions.
    pub no_regressions: bool,
    /// Required holdout strength (0..=1): the Wilson 95% lower bound of the share of mutants
    /// the holdout kills, when the line speaks of mutants or strength ("Holdout strength: at
    /// least 90% of mutants killed").
    #[serde(default)]
    pub min_strength: Option<f64>,
    /// Where it is.
    pub span: Span,
}

/// An author-given task from the `## Tasks` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskItem {
    /// `T1`.
    pub id: String,
    /// Text of the task.
    pub title: String,
    /// Requirement ids it traces to.
    pub requirements: Vec<String>,
    /// Task ids it depends on.
    pub depends_on: Vec<String>,
    /// Checked (`- [x]`).
    pub done: bool,
    /// Where it is.
    pub span: Span,
}

/// An acceptance item: one line of a Definition of Done (NLSpec), to be checked off when the
/// implementation meets it.
///
/// NLSpecs put their acceptance checks in `## N. Definition of Done`, as `- [ ]` checklists
/// under numbered subsections and as table rows with a `[ ]` cell. `lightsout-graph` can turn
/// each item into a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AcceptanceItem {
    /// `<section path>-<n>`: the number of the subsection it sits in and its 1-based place
    /// there (`11.3-2` is the second item of section 11.3). Unique within the spec.
    pub id: String,
    /// The item's text, markdown stripped (for a table row, its cells joined by ` | `).
    pub text: String,
    /// The heading of the subsection it sits in, as written (`11.3 Execution Engine`).
    pub section: String,
    /// Checked (`- [x]`).
    pub done: bool,
    /// Where it is.
    pub span: Span,
}

/// A parsed spec in any dialect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Spec {
    /// The file it was read from, when read from a file.
    pub path: Option<PathBuf>,
    /// The format it was read as.
    pub dialect: Dialect,
    /// Front matter, or what the dialect implies.
    pub meta: FrontMatter,
    /// Level-2 sections in order.
    pub sections: Vec<Section>,
    /// The behaviour contract.
    pub requirements: Vec<Requirement>,
    /// `ANTI-n` items.
    pub anti_spec: Vec<Item>,
    /// `CON-n` items.
    pub constraints: Vec<Item>,
    /// `DEC-n` items.
    pub decisions: Vec<Item>,
    /// Spec Kit `SC-###` success criteria.
    pub success_criteria: Vec<Item>,
    /// Gate rules.
    pub gate: Vec<GateRule>,
    /// Glossary entries.
    pub glossary: Vec<GlossaryTerm>,
    /// Open questions and unresolved markers.
    pub open_questions: Vec<Item>,
    /// Author-given tasks.
    pub tasks: Vec<TaskItem>,
    /// Acceptance items of a Definition of Done (NLSpec), in document order; empty for the
    /// other dialects.
    #[serde(default)]
    pub acceptance: Vec<AcceptanceItem>,
}

impl Spec {
    /// The section of `kind`, if present.
    pub fn section(&self, kind: SectionKind) -> Option<&Section> {
        self.sections.iter().find(|s| s.kind == kind)
    }

    /// The requirement with `id`, if any.
    pub fn requirement(&self, id: &str) -> Option<&Requirement> {
        self.requirements.iter().find(|r| r.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_serde_name_is_the_flag_name() {
        for d in Dialect::ALL {
            let json = serde_json::to_value(d).ok();
            assert_eq!(json.as_ref().and_then(|v| v.as_str()), Some(d.as_str()));
            let back: Option<Dialect> = serde_json::from_value(serde_json::json!(d.as_str())).ok();
            assert_eq!(back, Some(d));
        }
        assert_eq!(Dialect::OpenSpec.as_str(), "openspec");
    }

    #[test]
    fn dialect_all_lists_every_variant_once() {
        // A new variant fails this match until it is added to `ALL` (at its declaration index).
        let index = |d: Dialect| match d {
            Dialect::Lightsout => 0,
            Dialect::SpecKit => 1,
            Dialect::OpenSpec => 2,
            Dialect::OpenSpecDelta => 3,
            Dialect::Kiro => 4,
            Dialect::NlSpec => 5,
        };
        for (i, d) in Dialect::ALL.into_iter().enumerate() {
            assert_eq!(index(d), i);
        }
    }

    #[test]
    fn dialect_schema_names_match() {
        let schema = serde_json::to_value(schemars::schema_for!(Dialect)).unwrap_or_default();
        let names: Vec<&str> = schema["oneOf"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v["const"].as_str()).collect())
            .unwrap_or_default();
        let want: Vec<&str> = Dialect::ALL.iter().map(|d| d.as_str()).collect();
        assert_eq!(names, want, "{schema}");
    }
}
