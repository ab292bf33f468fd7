//! The plain data of a plan: [`TaskEntry`], [`Edge`], [`TaskList`] and their enums.
//!
//! Everything here is serde + schemars data so the factory (and `lightsout plan --format json`)
//! can hand it on unchanged.

use lightsout_spec::{Span, SpecKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where a task list was read from, which decides how its order is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TaskFormat {
    /// No breakdown given: one task per requirement of a spec.
    Requirements,
    /// The Lightsout `## Tasks` section (`- [ ] T1: ... (REQ-1) depends on T0`).
    Lightsout,
    /// GitHub Spec Kit `tasks.md` (`- [ ] T001 [P] [US1] ...`, phases).
    SpecKit,
    /// Kiro (or cc-sdd) `tasks.md` (numbered checkboxes, `_Requirements: 1.1_`).
    Kiro,
    /// An OpenSpec change's `tasks.md` (`## 1. Group`, `- [ ] 1.1 ...`).
    OpenSpec,
    /// task-master's `tasks.json` (`.taskmaster/tasks/tasks.json`).
    TaskMaster,
}

impl TaskFormat {
    /// The kebab-case name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskFormat::Requirements => "requirements",
            TaskFormat::Lightsout => "lightsout",
            TaskFormat::SpecKit => "spec-kit",
            TaskFormat::Kiro => "kiro",
            TaskFormat::OpenSpec => "openspec",
            TaskFormat::TaskMaster => "task-master",
        }
    }
}

/// Why one task must finish before another starts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    /// Written by the author on the task: `depends on T012`, `Blocks: T020` (the other way
    /// round), task-master `dependencies`, Kiro/cc-sdd `_Depends: 1.2_`, a `Depends on:` line
    /// of a default per-requirement task.
    Explicit,
    /// Derived from a requirement's `Depends on:` line: every task tracing the dependent
    /// requirement waits for every task tracing the requirement it depends on.
    Requirement,
    /// A spec's front-matter `depends_on`: the other spec's last tasks come before this
    /// spec's first tasks (an `architectural` spec before the features built on it).
    CrossSpec,
    /// Order of the list itself: a task waits for the step before it (Kiro and OpenSpec run
    /// tasks in order; Spec Kit runs tasks in order except runs of `[P]` tasks).
    Sequence,
    /// Phase order (Spec Kit: Setup, then Foundational, then the user-story phases in
    /// parallel, then Polish).
    Phase,
    /// A wave of a Kiro `Task Dependency Graph` block: every task of wave `k + 1` waits for
    /// every task of wave `k`.
    Wave,
    /// A sub-task finishes before its parent task counts as done (Kiro `2.1` under `2`,
    /// task-master `subtasks`).
    Subtask,
    /// Guessed from the prose of a task, not written as a dependency: Spec Kit's
    /// `after T003's grep snapshot`, `requires T005`. Weaker than every other kind: an
    /// inferred edge never makes a cycle error of its own (one that would close a cycle is
    /// dropped with a [`crate::codes::INFERRED_DROPPED`] note), and nothing is repaired in the
    /// author's edges while dropping an inferred one would do. Sorts last, so a written edge
    /// between the same two tasks wins.
    Inferred,
}

impl EdgeKind {
    /// The kebab-case name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Explicit => "explicit",
            EdgeKind::Requirement => "requirement",
            EdgeKind::CrossSpec => "cross-spec",
            EdgeKind::Sequence => "sequence",
            EdgeKind::Phase => "phase",
            EdgeKind::Wave => "wave",
            EdgeKind::Subtask => "subtask",
            EdgeKind::Inferred => "inferred",
        }
    }

    /// How readily `--repair` drops an edge of this kind to break a cycle, weakest first:
    /// 0 inferred (guessed from prose), 1 list order (sequence, phase, wave), 2 cross-spec
    /// order, 3 sub-task, 4 requirement `Depends on:`, 5 a dependency the author wrote on
    /// the task.
    pub fn strength(self) -> u8 {
        match self {
            EdgeKind::Inferred => 0,
            EdgeKind::Sequence | EdgeKind::Phase | EdgeKind::Wave => 1,
            EdgeKind::CrossSpec => 2,
            EdgeKind::Subtask => 3,
            EdgeKind::Requirement => 4,
            EdgeKind::Explicit => 5,
        }
    }
}

/// One unit of work for one agent.
///
/// Invariants once inside a [`crate::TaskGraph`]: `key` is unique in the graph and equals
/// `"{spec_id}#{id}"` (with a `~L<line>` suffix for a duplicate id, which is also reported);
/// `depends_on` holds the keys of its direct predecessors after resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskEntry {
    /// Id as written in the task list (`T001`, `T009a`, `2.1`, `10a`, `REQ-3`, task-master `7`
    /// or `7.2`).
    pub id: String,
    /// Unique key in a graph: `"{spec_id}#{id}"`. Empty until the task is added to a graph.
    #[serde(default)]
    pub key: String,
    /// One-line title, markdown emphasis stripped.
    pub title: String,
    /// Id of the spec (or task list) the task belongs to.
    pub spec_id: String,
    /// Requirement ids it traces to (`REQ-1`, `FR-001`, Kiro `1.2`, Spec Kit story `US1`),
    /// in the order written, ranges such as `1.1–1.3` expanded.
    pub requirements: Vec<String>,
    /// Before building: dependency references as written (`T012`, `other-spec#T3`,
    /// `other-spec#REQ-1`). After building: keys of the direct predecessors, of every
    /// [`EdgeKind`].
    pub depends_on: Vec<String>,
    /// `Touches:` path globs (gitignore-style, matched with `globset`).
    pub touches: Vec<String>,
    /// Estimate in hours when the spec or list gives one (`Estimate: 3h`, `Size: M`).
    pub estimate_hours: Option<f64>,
    /// Kind of the spec the task belongs to.
    pub kind: SpecKind,
    /// Checked in the list (`- [x]`, task-master `"status": "done"`).
    pub done: bool,
    /// Marked optional (Kiro `- [ ]*`): nothing waits for it.
    pub optional: bool,
    /// Marked as able to run beside its neighbours (Spec Kit `[P]`, cc-sdd `(P)`).
    pub parallel: bool,
    /// Heading of the phase or group it sits under, when any.
    pub phase: Option<String>,
    /// The file it was read from.
    pub path: Option<PathBuf>,
    /// Where it is in that file.
    pub span: Span,
}

impl TaskEntry {
    /// A task with `id` and `title` in `spec_id`, everything else empty.
    pub fn new(
        spec_id: impl Into<String>,
        id: impl Into<String>,
        title: impl Into<String>,
    ) -> Self {
        TaskEntry {
            id: id.into(),
            key: String::new(),
            title: title.into(),
            spec_id: spec_id.into(),
            requirements: Vec::new(),
            depends_on: Vec::new(),
            touches: Vec::new(),
            estimate_hours: None,
            kind: SpecKind::Feature,
            done: false,
            optional: false,
            parallel: false,
            phase: None,
            path: None,
            span: Span::default(),
        }
    }
}

/// A dependency edge: `from` must finish before `to` starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Edge {
    /// Key (in a graph) or local id (in a [`TaskList`]) of the prerequisite.
    pub from: String,
    /// Key or local id of the dependent task.
    pub to: String,
    /// Why.
    pub kind: EdgeKind,
}

/// What the graph needs to know about a requirement of the spec a list belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequirementRef {
    /// Requirement id (`REQ-1`, `FR-001`, `1.2`).
    pub id: String,
    /// Its `Depends on:` references (`REQ-2`, `other-spec#REQ-1`).
    pub depends_on: Vec<String>,
    /// Its `Touches:` globs.
    pub touches: Vec<String>,
    /// Its estimate in hours.
    pub estimate_hours: Option<f64>,
    /// The spec file it is in.
    pub path: Option<PathBuf>,
    /// Where it is in the spec.
    pub span: Span,
}

/// The tasks of one spec (or of one standalone task list), ready to go into a
/// [`crate::TaskGraph`].
///
/// Produced by the readers in [`crate::read`] and by [`TaskList::from_spec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskList {
    /// Spec id (front-matter id, or the folder name of a Kiro/Spec Kit/OpenSpec folder).
    pub spec_id: String,
    /// Kind of the spec; `architectural` lists are planned before the specs depending on them.
    pub kind: SpecKind,
    /// The format the tasks were read from.
    pub format: TaskFormat,
    /// The task list file (or the spec file for [`TaskFormat::Requirements`]).
    pub path: Option<PathBuf>,
    /// Tasks in document order.
    pub tasks: Vec<TaskEntry>,
    /// Edges the format implies (sequence, phase, wave, sub-task), by local task id.
    pub edges: Vec<Edge>,
    /// Front-matter `depends_on`: ids of specs this one is built after.
    pub depends_on_specs: Vec<String>,
    /// Requirements of the paired spec, when one is known; used for the coverage checks
    /// and the `Depends on:` edges between requirements.
    pub requirements: Option<Vec<RequirementRef>>,
    /// Whether the format has a way to link a task to requirements, so a task without one
    /// is worth a warning (Kiro, Lightsout); false for OpenSpec and task-master lists.
    pub traces_requirements: bool,
}

impl TaskList {
    /// An empty list for `spec_id` in `format`.
    pub fn new(spec_id: impl Into<String>, format: TaskFormat) -> Self {
        TaskList {
            spec_id: spec_id.into(),
            kind: SpecKind::Feature,
            format,
            path: None,
            tasks: Vec::new(),
            edges: Vec::new(),
            depends_on_specs: Vec::new(),
            requirements: None,
            traces_requirements: matches!(
                format,
                TaskFormat::Kiro | TaskFormat::Lightsout | TaskFormat::Requirements
            ),
        }
    }
}
