//! Stable diagnostic codes of the graph stage (`LS35x`–`LS36x`, inside the `LS3xx`
//! "references and graph" block of [`lightsout_spec::Diagnostic`]).

/// A dependency cycle; the message carries the full cycle path `A → B → C → A`. Error.
pub const CYCLE: &str = "LS350";
/// A dependency on a task (or requirement) that does not exist. Error.
pub const DANGLING_DEPENDENCY: &str = "LS351";
/// A task that depends on itself. Error.
pub const SELF_DEPENDENCY: &str = "LS352";
/// A requirement that no task traces to. Warning.
pub const REQUIREMENT_WITHOUT_TASK: &str = "LS353";
/// A task that traces to no requirement, in a format that has requirement links. Warning.
pub const TASK_WITHOUT_REQUIREMENT: &str = "LS354";
/// A task that traces to a requirement id the spec does not define. Error.
pub const UNKNOWN_REQUIREMENT: &str = "LS355";
/// Two tasks with the same id in one list. Error.
pub const DUPLICATE_TASK: &str = "LS356";
/// Two tasks in the same wave whose `Touches:` globs overlap: a likely merge conflict. Warning.
pub const TOUCHES_OVERLAP: &str = "LS357";
/// A `Touches:` glob that does not compile. Warning.
pub const BAD_GLOB: &str = "LS358";
/// A task list line or block that could not be read as written (placeholder id, bad wave
/// block, unknown status). Warning.
pub const UNREADABLE_TASK: &str = "LS359";
/// A task list file that is not valid (task-master JSON that does not parse). Error.
pub const BAD_TASK_LIST: &str = "LS360";
/// A spec whose front-matter `depends_on` names a spec that is not in the plan. Warning.
pub const MISSING_SPEC: &str = "LS361";
/// An `architectural` spec that depends on a `feature` spec (inverted layering). Warning.
pub const INVERTED_LAYERING: &str = "LS362";
/// Requirement coverage could not be checked: the tasks trace to ids the spec does not
/// define (Spec Kit `[US1]` story labels against `FR-###` requirements). Info.
pub const COVERAGE_NOT_CHECKED: &str = "LS363";
/// An edge removed by `--repair` (dangling, self, or the weakest edge of a cycle). Warning.
pub const REPAIRED: &str = "LS364";
/// A task checked done while a task it depends on is not. Info.
pub const DONE_OUT_OF_ORDER: &str = "LS365";
/// A dependency guessed from a task's prose (an [`crate::EdgeKind::Inferred`] edge) that was
/// dropped because it would close a dependency cycle: a guess never makes a cycle error.
/// Info.
pub const INFERRED_DROPPED: &str = "LS366";
/// A task list (or spec) that gives no task, or a plan with no task at all: Warning for one
/// list among others, Error when the whole plan is empty (nothing to run is no success).
pub const NO_TASKS: &str = "LS367";
