//! [`TaskGraph`]: building, validation and the algorithms (waves, critical path, ready set,
//! impact, transitive reduction, `Touches:` overlap).

use crate::codes;
use crate::task::{Edge, EdgeKind, TaskEntry, TaskFormat, TaskList};
use crate::touches;
use lightsout_spec::{Diagnostic, Severity, Span, Spec, SpecKind};
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;

/// How a graph is built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Repair what validation finds instead of only reporting it: dangling and self
    /// dependencies are dropped, and each cycle is broken by removing its weakest edge
    /// ([`crate::EdgeKind::strength`]: list order before the dependencies the author wrote).
    /// Every repair is reported as a [`codes::REPAIRED`] warning; without this flag the
    /// errors stand and a cyclic graph has no waves. Off by default: nothing is repaired
    /// silently. Guessed ([`crate::EdgeKind::Inferred`]) edges that would close a cycle are
    /// dropped with or without it, each with a [`codes::INFERRED_DROPPED`] note, so a cycle
    /// left is always one of written edges.
    pub repair: bool,
}

impl Options {
    /// Options with `repair` set as given.
    #[must_use]
    pub fn with_repair(mut self, repair: bool) -> Self {
        self.repair = repair;
        self
    }
}

/// One spec (or standalone task list) in a graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpecEntry {
    /// Spec id.
    pub id: String,
    /// Its kind.
    pub kind: SpecKind,
    /// The format its tasks were read from.
    pub format: TaskFormat,
    /// The task list (or spec) file.
    pub path: Option<PathBuf>,
    /// Number of tasks it contributed.
    pub tasks: usize,
}

/// What the critical path is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WeightUnit {
    /// Every task has an estimate; lengths are hours.
    Hours,
    /// No task has an estimate; every task weighs 1 and lengths count tasks.
    Tasks,
    /// Some tasks have estimates (hours) and the others count 1 hour each.
    Mixed,
}

/// The longest weighted path through the graph: the makespan with unlimited agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CriticalPath {
    /// Task indices from first to last; empty for an empty graph.
    pub tasks: Vec<usize>,
    /// Sum of the weights of `tasks`, in `unit`.
    pub length: f64,
    /// What `length` counts.
    pub unit: WeightUnit,
}

/// A task invalidated by a change, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum Impact {
    /// The task traces to a changed requirement.
    Direct {
        /// Task index.
        task: usize,
        /// The changed requirement it traces to.
        requirement: String,
    },
    /// The task is downstream of an invalidated task.
    Downstream {
        /// Task index.
        task: usize,
        /// Index of the invalidated task it (transitively) depends on, nearest first.
        via: usize,
    },
}

impl Impact {
    /// The index of the invalidated task.
    pub fn task(&self) -> usize {
        match self {
            Impact::Direct { task, .. } | Impact::Downstream { task, .. } => *task,
        }
    }
}

/// Two tasks in one wave whose `Touches:` globs overlap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Conflict {
    /// The wave (0-based).
    pub wave: usize,
    /// First task index (the lower one).
    pub a: usize,
    /// Second task index.
    pub b: usize,
    /// The glob of `a` that overlaps.
    pub a_glob: String,
    /// The glob of `b` that overlaps.
    pub b_glob: String,
}

/// Errors of the graph algorithms.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The graph has cycles, so it has no topological order.
    #[error("the task graph has {0} dependency cycle(s); fix them or build with repair")]
    Cyclic(usize),
    /// A task list file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A spec could not be found or read while loading task lists.
    #[error("cannot read {path}")]
    Spec {
        /// The spec file or the directory searched for specs.
        path: PathBuf,
        /// The spec stage's error.
        #[source]
        source: lightsout_spec::Error,
    },
}

/// A directed acyclic (once valid) graph of tasks on [`petgraph`]: an edge `u → v` means
/// `u` must finish before `v` starts.
///
/// Node `i` of the petgraph graph is `tasks()[i]`; indices follow the input order, with the
/// lists of `architectural` specs first. Built by [`TaskGraph::build`] or
/// [`TaskGraph::from_specs`], which also validate it.
#[derive(Debug, Clone)]
pub struct TaskGraph {
    tasks: Vec<TaskEntry>,
    graph: DiGraph<(), EdgeKind, u32>,
    keys: HashMap<String, usize>,
    by_id: HashMap<String, Vec<usize>>,
    specs: Vec<SpecEntry>,
    /// Number of dependency cycles left (0 once acyclic).
    cycles: usize,
    /// Topological order (Kahn, lowest index first), empty when cyclic.
    order: Vec<u32>,
    /// Wave of each task, empty when cyclic.
    level: Vec<u32>,
    /// Tasks on or behind a cycle (Kahn could not order them); empty when acyclic.
    blocked: Vec<bool>,
}

/// Whether the requirement reference `reference` (as written on a task) covers the
/// requirement `requirement`: equal ids, or one is a dotted prefix of the other (Kiro `1`
/// covers the criteria `1.1`, `1.2`; a task tracing `1.2` covers requirement `1`). User
/// story ids are compared in one form ([`canonical_id`]): Spec Kit's task label `US1`
/// covers the spec's story `US-1`.
pub fn trace_matches(requirement: &str, reference: &str) -> bool {
    let (requirement, reference) = (canonical_id(requirement), canonical_id(reference));
    let (requirement, reference) = (requirement.as_ref(), reference.as_ref());
    requirement == reference
        || (requirement.len() > reference.len()
            && requirement.starts_with(reference)
            && requirement.as_bytes()[reference.len()] == b'.')
        || (reference.len() > requirement.len()
            && reference.starts_with(requirement)
            && reference.as_bytes()[requirement.len()] == b'.')
}

/// The form in which requirement ids are compared: a user story id written `US1`, `US-1`,
/// `US_01`, `us 1` (Spec Kit's `[US1]` task labels, the spec's `### User Story 1`) becomes
/// `US-1`; every other id is returned as written.
pub fn canonical_id(id: &str) -> std::borrow::Cow<'_, str> {
    let b = id.as_bytes();
    if b.len() > 2 && b[..2].eq_ignore_ascii_case(b"US") {
        let digits = id[2..].trim_start_matches(['-', '_', ' ']);
        if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
            let n = digits.trim_start_matches('0');
            let n = if n.is_empty() { "0" } else { n };
            let canonical = format!("US-{n}");
            if canonical != id {
                return std::borrow::Cow::Owned(canonical);
            }
        }
    }
    std::borrow::Cow::Borrowed(id)
}

/// The family of a requirement id, for coverage: its leading letters, upper-cased (`FR` of
/// `FR-001`, `US` of `US-1`, `REQ` of `REQ-3`), empty for a numbered id (Kiro `1.2`).
fn family(id: &str) -> String {
    id.bytes()
        .take_while(u8::is_ascii_alphabetic)
        .map(|b| char::from(b.to_ascii_uppercase()))
        .collect()
}

/// Index of the tasks of one list by the requirement references they carry.
#[derive(Default)]
struct TraceIndex {
    exact: HashMap<String, Vec<usize>>,
    /// Reference `1.2.3` is filed under `1` and `1.2`.
    under: HashMap<String, Vec<usize>>,
}

impl TraceIndex {
    fn add(&mut self, reference: &str, task: usize) {
        let reference = canonical_id(reference);
        let reference = reference.as_ref();
        self.exact
            .entry(reference.to_owned())
            .or_default()
            .push(task);
        for (i, b) in reference.bytes().enumerate() {
            if b == b'.' && i > 0 {
                self.under
                    .entry(reference[..i].to_owned())
                    .or_default()
                    .push(task);
            }
        }
    }

    /// Tasks tracing `requirement`, sorted, without duplicates.
    fn tracing(&self, requirement: &str) -> Vec<usize> {
        let requirement = canonical_id(requirement);
        let requirement = requirement.as_ref();
        let mut out = Vec::new();
        if let Some(v) = self.exact.get(requirement) {
            out.extend_from_slice(v);
        }
        if let Some(v) = self.under.get(requirement) {
            out.extend_from_slice(v);
        }
        for (i, b) in requirement.bytes().enumerate() {
            if b == b'.'
                && i > 0
                && let Some(v) = self.exact.get(&requirement[..i])
            {
                out.extend_from_slice(v);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

struct Builder {
    tasks: Vec<TaskEntry>,
    diags: Vec<Diagnostic>,
    edges: Vec<(u32, u32, EdgeKind)>,
    keys: HashMap<String, usize>,
    by_id: HashMap<String, Vec<usize>>,
    /// Per list: spec id, range of task indices, local id → index, trace index.
    lists: Vec<ListInfo>,
    spec_index: HashMap<String, usize>,
    repair: bool,
}

struct ListInfo {
    spec_id: String,
    kind: SpecKind,
    path: Option<PathBuf>,
    range: std::ops::Range<usize>,
    local: HashMap<String, usize>,
    trace: TraceIndex,
}

fn diag(
    code: &str,
    severity: Severity,
    path: Option<&PathBuf>,
    span: Span,
    message: String,
    help: &str,
) -> Diagnostic {
    let d = Diagnostic::new(code, severity, span, message, help);
    match path {
        Some(p) => d.with_path(p.clone()),
        None => d,
    }
}

impl Builder {
    fn task_diag(
        &self,
        code: &str,
        severity: Severity,
        t: usize,
        message: String,
        help: &str,
    ) -> Diagnostic {
        let task = &self.tasks[t];
        diag(code, severity, task.path.as_ref(), task.span, message, help)
    }

    /// Resolves a reference from a task of list `li`: a local task id, `spec#task`, or a
    /// requirement id (local or `spec#REQ`) standing for the tasks that trace to it.
    fn resolve(&self, li: usize, reference: &str) -> Option<Vec<usize>> {
        let reference = reference.trim();
        if let Some(&i) = self.lists[li].local.get(reference) {
            return Some(vec![i]);
        }
        let (lj, local) = match reference.rsplit_once('#') {
            Some((spec, local)) => (*self.spec_index.get(spec)?, local),
            None => (li, reference),
        };
        if let Some(&i) = self.lists[lj].local.get(local) {
            return Some(vec![i]);
        }
        let traced = self.lists[lj].trace.tracing(local);
        if traced.is_empty() {
            None
        } else {
            Some(traced)
        }
    }

    fn add_list(
        &mut self,
        list: TaskList,
    ) -> (
        Vec<Edge>,
        Option<Vec<crate::task::RequirementRef>>,
        Vec<String>,
        bool,
    ) {
        let li = self.lists.len();
        let start = self.tasks.len();
        let mut local = HashMap::with_capacity(list.tasks.len());
        let mut trace = TraceIndex::default();
        for mut t in list.tasks {
            let idx = self.tasks.len();
            t.spec_id.clone_from(&list.spec_id);
            if t.path.is_none() {
                t.path.clone_from(&list.path);
            }
            let mut key = format!("{}#{}", list.spec_id, t.id);
            if self.keys.contains_key(&key) {
                let d = diag(
                    codes::DUPLICATE_TASK,
                    Severity::Error,
                    t.path.as_ref(),
                    t.span,
                    format!("duplicate task id `{}` in `{}`", t.id, list.spec_id),
                    "give every task its own id; dependencies on this id go to the first task",
                );
                self.diags.push(d);
                key = format!("{key}~L{}", t.span.line);
                let mut n = 2;
                while self.keys.contains_key(&key) {
                    key = format!("{}#{}~L{}.{n}", list.spec_id, t.id, t.span.line);
                    n += 1;
                }
            } else {
                local.insert(t.id.clone(), idx);
            }
            for r in &t.requirements {
                trace.add(r, idx);
            }
            t.key.clone_from(&key);
            self.keys.insert(key, idx);
            self.by_id.entry(t.id.clone()).or_default().push(idx);
            self.tasks.push(t);
        }
        self.spec_index.insert(list.spec_id.clone(), li);
        self.lists.push(ListInfo {
            spec_id: list.spec_id,
            kind: list.kind,
            path: list.path,
            range: start..self.tasks.len(),
            local,
            trace,
        });
        (
            list.edges,
            list.requirements,
            list.depends_on_specs,
            list.traces_requirements,
        )
    }

    fn dangling(&mut self, t: usize, message: String) {
        let (code, severity, help) = if self.repair {
            (
                codes::REPAIRED,
                Severity::Warning,
                "the dependency was dropped by --repair; fix the reference to keep the order",
            )
        } else {
            (
                codes::DANGLING_DEPENDENCY,
                Severity::Error,
                "fix the id, add the missing task, or drop the dependency (or plan with --repair to drop it)",
            )
        };
        let d = self.task_diag(code, severity, t, message, help);
        self.diags.push(d);
    }

    fn task_dependencies(&mut self, li: usize) {
        for t in self.lists[li].range.clone() {
            let deps = std::mem::take(&mut self.tasks[t].depends_on);
            for dep in &deps {
                match self.resolve(li, dep) {
                    None => {
                        let m = format!(
                            "task `{}` depends on `{dep}`, which is no task or requirement in the plan",
                            self.tasks[t].key
                        );
                        self.dangling(t, m);
                    }
                    Some(from) => {
                        if from == [t] {
                            let (code, severity, help) = if self.repair {
                                (
                                    codes::REPAIRED,
                                    Severity::Warning,
                                    "the self dependency was dropped by --repair",
                                )
                            } else {
                                (
                                    codes::SELF_DEPENDENCY,
                                    Severity::Error,
                                    "remove the task from its own dependencies",
                                )
                            };
                            let m = format!("task `{}` depends on itself", self.tasks[t].key);
                            let d = self.task_diag(code, severity, t, m, help);
                            self.diags.push(d);
                        }
                        for f in from {
                            if f != t {
                                self.edges.push((f as u32, t as u32, EdgeKind::Explicit));
                            }
                        }
                    }
                }
            }
            self.tasks[t].depends_on = deps;
        }
    }

    fn list_edges(&mut self, li: usize, edges: &[Edge]) {
        for e in edges {
            let from = self.lists[li].local.get(&e.from).copied();
            let to = self.lists[li].local.get(&e.to).copied();
            match (from, to) {
                (Some(f), Some(t)) => {
                    if f != t {
                        self.edges.push((f as u32, t as u32, e.kind));
                    }
                }
                (None, Some(t)) if e.kind == EdgeKind::Inferred => {
                    // A guess that names no task is no dependency; worth a look, not an error.
                    let m = format!(
                        "task `{}` mentions `{}` in its description as if it depended on it, but `{}` has no such task; no dependency assumed",
                        self.tasks[t].key, e.from, self.lists[li].spec_id
                    );
                    let d = self.task_diag(
                        codes::DANGLING_DEPENDENCY,
                        Severity::Warning,
                        t,
                        m,
                        "fix the task id in the description, or write the dependency explicitly (`depends on T012`)",
                    );
                    self.diags.push(d);
                }
                (_, Some(t)) | (Some(t), None) => {
                    let m = format!(
                        "{} edge `{}` → `{}` names a task that is not in `{}`",
                        e.kind.as_str(),
                        e.from,
                        e.to,
                        self.lists[li].spec_id
                    );
                    self.dangling(t, m);
                }
                // Neither end is a task of this list: nothing to attach the finding to; the
                // readers never produce such an edge.
                (None, None) => {}
            }
        }
    }

    fn requirement_edges(&mut self, li: usize, reqs: &[crate::task::RequirementRef]) {
        for r in reqs {
            if r.depends_on.is_empty() {
                continue;
            }
            let to = self.lists[li].trace.tracing(&r.id);
            for dep in &r.depends_on {
                let (lj, local) = match dep.rsplit_once('#') {
                    Some((spec, local)) => match self.spec_index.get(spec) {
                        Some(&lj) => (lj, local),
                        // Not in this plan: reported once per spec as MISSING_SPEC when the
                        // front matter names it; the spec check reports the reference itself.
                        None => continue,
                    },
                    None => (li, dep.as_str()),
                };
                let from = self.lists[lj].trace.tracing(local);
                for &f in &from {
                    for &t in &to {
                        if f != t {
                            self.edges.push((f as u32, t as u32, EdgeKind::Requirement));
                        }
                    }
                }
            }
        }
    }

    /// Reports inputs that gave no task, and a plan with no task at all (`n` tasks in
    /// `lists`).
    fn empty_inputs(&mut self, lists: &[TaskList], n: usize) {
        let planned = lists.len();
        for list in lists {
            if list.tasks.is_empty() {
                let from = list.path.as_ref().map_or_else(
                    || format!("`{}`", list.spec_id),
                    |p| p.display().to_string(),
                );
                self.diags.push(diag(
                codes::NO_TASKS,
                Severity::Warning,
                list.path.as_ref(),
                Span::default(),
                format!(
                    "no task read from {from} ({}): nothing of it is planned",
                    list.format.as_str()
                ),
                "check the task lines against the format (`- [ ] T001 ...`, `- [ ] 1. ...`), or the spec's requirements",
            ));
            }
        }
        if n == 0 {
            self.diags.push(diag(
                codes::NO_TASKS,
                Severity::Error,
                None,
                Span::default(),
                if planned == 0 {
                    "the plan has no task: no task list or spec was read".to_owned()
                } else {
                    format!("the plan has no task: none of its {planned} input(s) gave one")
                },
                "pass the specs or task lists to plan; an empty plan is not a valid one",
            ));
        }
    }

    fn coverage(
        &mut self,
        li: usize,
        reqs: Option<&[crate::task::RequirementRef]>,
        traces: bool,
        edges: &[Edge],
    ) {
        self.untraced_tasks(li, traces, edges);
        let Some(reqs) = reqs else {
            return;
        };
        if self.uncovered_requirements(li, reqs) {
            self.unknown_requirements(li, reqs);
        }
    }

    /// Tasks of list `li` that trace to no requirement, when the list's format `traces`.
    fn untraced_tasks(&mut self, li: usize, traces: bool, edges: &[Edge]) {
        let range = self.lists[li].range.clone();
        // A parent whose sub-tasks trace requirements traces them too (and vice versa).
        let mut family_traces: HashSet<usize> = HashSet::new();
        for e in edges.iter().filter(|e| e.kind == EdgeKind::Subtask) {
            let (Some(&c), Some(&p)) = (
                self.lists[li].local.get(&e.from),
                self.lists[li].local.get(&e.to),
            ) else {
                continue;
            };
            if !self.tasks[c].requirements.is_empty() {
                family_traces.insert(p);
            }
            if !self.tasks[p].requirements.is_empty() {
                family_traces.insert(c);
            }
        }
        if traces {
            for t in range {
                if self.tasks[t].requirements.is_empty() && !family_traces.contains(&t) {
                    let m = format!("task `{}` traces to no requirement", self.tasks[t].key);
                    let d = self.task_diag(
                        codes::TASK_WITHOUT_REQUIREMENT,
                        Severity::Warning,
                        t,
                        m,
                        "add the requirement ids it implements (Kiro: `_Requirements: 1.1, 2.3_`), so the agent gets the right spec excerpt",
                    );
                    self.diags.push(d);
                }
            }
        }
    }

    /// Requirements of list `li`'s spec that no task covers, in the id families some task
    /// traces; `false` when no task traces any requirement of the spec (coverage not checked).
    fn uncovered_requirements(&mut self, li: usize, reqs: &[crate::task::RequirementRef]) -> bool {
        let range = self.lists[li].range.clone();
        // Coverage is checked per id family (FR, US, REQ, Kiro numbers): a Spec Kit list
        // whose tasks carry story labels covers the stories, and says nothing of the FRs.
        let covered: Vec<bool> = reqs
            .iter()
            .map(|r| !self.lists[li].trace.tracing(&r.id).is_empty())
            .collect();
        let families: HashSet<String> = reqs
            .iter()
            .zip(&covered)
            .filter(|&(_, &c)| c)
            .map(|(r, _)| family(&r.id))
            .collect();
        if families.is_empty() {
            if !reqs.is_empty()
                && range
                    .clone()
                    .any(|t| !self.tasks[t].requirements.is_empty())
            {
                let d = diag(
                    codes::COVERAGE_NOT_CHECKED,
                    Severity::Info,
                    self.lists[li].path.as_ref(),
                    Span::default(),
                    format!(
                        "the tasks of `{}` trace to ids its spec does not define (e.g. story labels); requirement coverage not checked",
                        self.lists[li].spec_id
                    ),
                    "trace tasks to requirement ids (FR-001, REQ-1) to have coverage checked",
                );
                self.diags.push(d);
            }
            return false;
        }
        let mut unchecked: Vec<String> = Vec::new();
        for (r, &is_traced) in reqs.iter().zip(&covered) {
            let fam = family(&r.id);
            if !families.contains(&fam) {
                if !unchecked.contains(&fam) {
                    unchecked.push(fam);
                }
                continue;
            }
            if !is_traced {
                let d = diag(
                    codes::REQUIREMENT_WITHOUT_TASK,
                    Severity::Warning,
                    r.path.as_ref().or(self.lists[li].path.as_ref()),
                    r.span,
                    format!(
                        "requirement `{}` of `{}` has no task",
                        r.id, self.lists[li].spec_id
                    ),
                    "add a task tracing to it, or remove the requirement",
                );
                self.diags.push(d);
            }
        }
        if !unchecked.is_empty() {
            let names: Vec<String> = unchecked
                .iter()
                .map(|f| {
                    if f.is_empty() {
                        "numbered".to_owned()
                    } else {
                        format!("{f}-")
                    }
                })
                .collect();
            let d = diag(
                codes::COVERAGE_NOT_CHECKED,
                Severity::Info,
                self.lists[li].path.as_ref(),
                Span::default(),
                format!(
                    "no task of `{}` traces a {} requirement; their coverage is not checked",
                    self.lists[li].spec_id,
                    names.join(" or ")
                ),
                "trace tasks to these ids too to have their coverage checked",
            );
            self.diags.push(d);
        }
        true
    }

    /// Requirement ids traced by list `li`'s tasks that its spec does not define.
    fn unknown_requirements(&mut self, li: usize, reqs: &[crate::task::RequirementRef]) {
        let range = self.lists[li].range.clone();
        let story = |x: &str| canonical_id(x).starts_with("US-");
        for t in range {
            let unknown: Vec<String> = self.tasks[t]
                .requirements
                .iter()
                .filter(|x| !story(x) && !reqs.iter().any(|r| trace_matches(&r.id, x)))
                .cloned()
                .collect();
            for x in unknown {
                // A bare number is a whole Kiro requirement: one without numbered acceptance
                // criteria (a descope record) is known to the author but not to the model.
                let whole = x.bytes().all(|b| b.is_ascii_digit());
                let m = if whole {
                    format!(
                        "task `{}` traces to requirement `{x}`, which has no acceptance criteria in `{}` (or does not exist)",
                        self.tasks[t].key, self.lists[li].spec_id
                    )
                } else {
                    format!(
                        "task `{}` traces to requirement `{x}`, which `{}` does not define",
                        self.tasks[t].key, self.lists[li].spec_id
                    )
                };
                let d = self.task_diag(
                    codes::UNKNOWN_REQUIREMENT,
                    if whole {
                        Severity::Warning
                    } else {
                        Severity::Error
                    },
                    t,
                    m,
                    "fix the requirement id, or add the requirement to the spec",
                );
                self.diags.push(d);
            }
        }
    }

    fn cross_spec(&mut self, li: usize, depends: &[String]) {
        if depends.is_empty() {
            return;
        }
        let range = self.lists[li].range.clone();
        let intra = |b: &Builder, r: &std::ops::Range<usize>| {
            let mut has_in = vec![false; r.len()];
            let mut has_out = vec![false; r.len()];
            for &(f, t, _) in &b.edges {
                let (f, t) = (f as usize, t as usize);
                if r.contains(&f) && r.contains(&t) {
                    has_out[f - r.start] = true;
                    has_in[t - r.start] = true;
                }
            }
            (has_in, has_out)
        };
        let (has_in, _) = intra(self, &range);
        let sources: Vec<usize> = range
            .clone()
            .filter(|&t| !has_in[t - range.start])
            .collect();
        for dep in depends {
            let Some(&lj) = self.spec_index.get(dep.as_str()) else {
                let d = diag(
                    codes::MISSING_SPEC,
                    Severity::Warning,
                    self.lists[li].path.as_ref(),
                    Span::default(),
                    format!(
                        "`{}` depends on spec `{dep}`, which is not in this plan",
                        self.lists[li].spec_id
                    ),
                    "pass the spec's file or folder too, so its tasks are planned first",
                );
                self.diags.push(d);
                continue;
            };
            if lj == li {
                continue;
            }
            if self.lists[li].kind == SpecKind::Architectural
                && self.lists[lj].kind == SpecKind::Feature
            {
                let d = diag(
                    codes::INVERTED_LAYERING,
                    Severity::Warning,
                    self.lists[li].path.as_ref(),
                    Span::default(),
                    format!(
                        "architectural spec `{}` depends on feature spec `{dep}`",
                        self.lists[li].spec_id
                    ),
                    "architecture comes first: move the shared part into an architectural spec",
                );
                self.diags.push(d);
            }
            let rj = self.lists[lj].range.clone();
            let (_, has_out) = intra(self, &rj);
            let sinks: Vec<usize> = rj
                .clone()
                .filter(|&t| !has_out[t - rj.start] && !self.tasks[t].optional)
                .collect();
            for &f in &sinks {
                for &t in &sources {
                    self.edges.push((f as u32, t as u32, EdgeKind::CrossSpec));
                }
            }
        }
    }
}

impl TaskGraph {
    /// Builds one graph from several task lists (one per spec), validates it, and computes
    /// its topological order and waves.
    ///
    /// Lists of `architectural` specs are placed first. Task keys are `"{spec_id}#{id}"`.
    /// Dependency references resolve, in order, to: a task of the same list; `spec#task`; a
    /// requirement id (local or `spec#REQ`) standing for every task tracing it.
    ///
    /// Diagnostics (codes in [`crate::codes`]): cycles with their full path, dangling and
    /// self dependencies, duplicate ids, requirements with no task, tasks tracing no or
    /// unknown requirements, specs missing from the plan, and `Touches:` overlaps within a
    /// wave. Nothing is repaired unless `options.repair` is set.
    pub fn build(lists: Vec<TaskList>, options: &Options) -> (TaskGraph, Vec<Diagnostic>) {
        let mut lists = lists;
        lists.sort_by_key(|l| l.kind != SpecKind::Architectural);
        let n: usize = lists.iter().map(|l| l.tasks.len()).sum();
        let mut b = Builder {
            tasks: Vec::with_capacity(n),
            diags: Vec::new(),
            edges: Vec::new(),
            keys: HashMap::with_capacity(n),
            by_id: HashMap::with_capacity(n),
            lists: Vec::with_capacity(lists.len()),
            spec_index: HashMap::new(),
            repair: options.repair,
        };
        let mut specs = Vec::with_capacity(lists.len());
        let mut rest = Vec::with_capacity(lists.len());
        b.empty_inputs(&lists, n);
        for list in lists {
            specs.push(SpecEntry {
                id: list.spec_id.clone(),
                kind: list.kind,
                format: list.format,
                path: list.path.clone(),
                tasks: list.tasks.len(),
            });
            rest.push(b.add_list(list));
        }
        b.edges
            .reserve(rest.iter().map(|r| r.0.len()).sum::<usize>() + n * 2);
        for (li, (edges, reqs, _, traces)) in rest.iter().enumerate() {
            b.task_dependencies(li);
            b.list_edges(li, edges);
            if let Some(reqs) = reqs {
                b.requirement_edges(li, reqs);
            }
            b.coverage(li, reqs.as_deref(), *traces, edges);
        }
        for (li, (_, _, depends, _)) in rest.iter().enumerate() {
            b.cross_spec(li, depends);
        }

        // One edge per ordered pair, keeping the most specific kind (Explicit sorts first).
        let mut edges = std::mem::take(&mut b.edges);
        edges.sort_unstable();
        edges.dedup_by_key(|e| (e.0, e.1));
        let mut graph: DiGraph<(), EdgeKind, u32> = DiGraph::with_capacity(n, edges.len());
        for _ in 0..n {
            graph.add_node(());
        }
        for (f, t, k) in edges {
            graph.add_edge(NodeIndex::new(f as usize), NodeIndex::new(t as usize), k);
        }

        let mut g = TaskGraph {
            tasks: b.tasks,
            graph,
            keys: b.keys,
            by_id: b.by_id,
            specs,
            cycles: 0,
            order: Vec::new(),
            level: Vec::new(),
            blocked: Vec::new(),
        };
        let mut diags = b.diags;
        g.settle(options.repair, &mut diags);
        g.fill_depends_on();
        if g.cycles == 0 {
            g.done_order(&mut diags);
            g.touches_overlap(&mut diags);
        }
        (g, diags)
    }

    /// Builds the graph of several parsed specs: each spec's `## Tasks` breakdown, or one
    /// task per requirement (see [`TaskList::from_spec`]). Shorthand for
    /// [`TaskGraph::build`] over [`TaskList::from_spec`] of each.
    pub fn from_specs(specs: &[Spec], options: &Options) -> (TaskGraph, Vec<Diagnostic>) {
        TaskGraph::build(specs.iter().map(TaskList::from_spec).collect(), options)
    }

    /// Kahn's algorithm; on a cycle, first drops each inferred edge that closes one (with a
    /// [`codes::INFERRED_DROPPED`] note), then reports (and with `repair` breaks) every
    /// cycle left, which is made of written edges only.
    fn settle(&mut self, repair: bool, diags: &mut Vec<Diagnostic>) {
        if self.topo() || (self.drop_inferred(diags) && self.topo()) {
            self.cycles = 0;
            return;
        }
        loop {
            let sccs = petgraph::algo::tarjan_scc(&self.graph);
            let cyclic: Vec<Vec<NodeIndex<u32>>> =
                sccs.into_iter().filter(|c| c.len() > 1).collect();
            let mut broken = false;
            for scc in &cyclic {
                let cycle = self.cycle_in(scc);
                let (text, first) = self.cycle_text(&cycle);
                let t = &self.tasks[first];
                if repair {
                    // The weakest edge of the cycle (list order before the author's own
                    // dependencies), the first of them in edge order on a tie.
                    let edges = (0..cycle.len()).filter_map(|i| {
                        let (u, v) = (cycle[i], cycle[(i + 1) % cycle.len()]);
                        self.graph
                            .find_edge(NodeIndex::new(u), NodeIndex::new(v))
                            .map(|e| (u, v, e))
                    });
                    let Some((before, after, edge)) = edges.min_by_key(|&(_, _, e)| {
                        self.graph.edge_weight(e).map_or(u8::MAX, |k| k.strength())
                    }) else {
                        continue;
                    };
                    let kind = self.graph.edge_weight(edge).map_or("", |k| k.as_str());
                    let message = format!(
                        "dependency cycle {text} broken by dropping the dependency of `{}` on `{}` ({kind} edge)",
                        self.tasks[after].key, self.tasks[before].key
                    );
                    self.graph.remove_edge(edge);
                    broken = true;
                    let dependent = &self.tasks[after];
                    diags.push(diag(
                        codes::REPAIRED,
                        Severity::Warning,
                        dependent.path.as_ref(),
                        dependent.span,
                        message,
                        "--repair dropped the weakest edge (list order before the dependencies you wrote); fix the dependencies to choose it yourself",
                    ));
                } else {
                    diags.push(diag(
                        codes::CYCLE,
                        Severity::Error,
                        t.path.as_ref(),
                        t.span,
                        format!("dependency cycle: {text}"),
                        "`A → B` reads \"A depends on B\"; remove one of these dependencies (or plan with --repair to drop the weakest)",
                    ));
                }
            }
            if !broken {
                self.cycles = cyclic.len();
                let mut blocked = vec![true; self.tasks.len()];
                for &i in &self.order {
                    blocked[i as usize] = false;
                }
                self.blocked = blocked;
                self.order.clear();
                self.level.clear();
                return;
            }
            if self.topo() {
                self.cycles = 0;
                return;
            }
        }
    }

    /// A cycle given in edge order (each task before the next) as text in the direction
    /// `lightsout spec check` prints cycles, "depends on": `A → B → C → A` where A depends
    /// on B; rotated to start at the smallest key, as the spec stage starts at the smallest
    /// id. Also returns that first task.
    fn cycle_text(&self, cycle: &[usize]) -> (String, usize) {
        let mut order: Vec<usize> = cycle.iter().rev().copied().collect();
        let at = order
            .iter()
            .enumerate()
            .min_by_key(|&(_, &i)| self.tasks[i].key.as_str())
            .map_or(0, |(k, _)| k);
        order.rotate_left(at);
        let mut names: Vec<&str> = order.iter().map(|&i| self.tasks[i].key.as_str()).collect();
        names.push(names[0]);
        (names.join(" → "), order[0])
    }

    /// Drops every [`EdgeKind::Inferred`] edge that closes a cycle, one note each: inside
    /// each cyclic strongly connected component, the written edges are kept and the
    /// inferred ones added back in index order, each only when its target does not already
    /// reach its source. Afterwards every cycle left is made of written edges only (an
    /// inferred edge on a cycle would have been refused when it was added). True when an
    /// edge was dropped.
    ///
    /// Cost: one reachability search per inferred edge inside a cyclic component, each
    /// linear in the component's size; nothing when the graph is acyclic.
    fn drop_inferred(&mut self, diags: &mut Vec<Diagnostic>) -> bool {
        let sccs = petgraph::algo::tarjan_scc(&self.graph);
        let mut local = vec![usize::MAX; self.tasks.len()];
        let mut dropped: Vec<(usize, usize, Vec<usize>)> = Vec::new();
        for scc in sccs.iter().filter(|c| c.len() > 1) {
            let nodes: Vec<usize> = scc.iter().map(|n| n.index()).collect();
            for (i, &g) in nodes.iter().enumerate() {
                local[g] = i;
            }
            let mut adj: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
            let mut guessed: Vec<(usize, usize)> = Vec::new();
            for &u in &nodes {
                for e in self
                    .graph
                    .edges_directed(NodeIndex::new(u), Direction::Outgoing)
                {
                    let v = petgraph::visit::EdgeRef::target(&e).index();
                    if local[v] == usize::MAX {
                        continue;
                    }
                    if *e.weight() == EdgeKind::Inferred {
                        guessed.push((u, v));
                    } else {
                        adj[local[u]].push(local[v]);
                    }
                }
            }
            guessed.sort_unstable();
            for (u, v) in guessed {
                match path(&adj, local[v], local[u]) {
                    Some(p) => dropped.push((u, v, p.into_iter().map(|i| nodes[i]).collect())),
                    None => adj[local[u]].push(local[v]),
                }
            }
            for &g in &nodes {
                local[g] = usize::MAX;
            }
        }
        for (u, v, p) in &dropped {
            if let Some(e) = self.graph.find_edge(NodeIndex::new(*u), NodeIndex::new(*v)) {
                self.graph.remove_edge(e);
            }
            // `p` runs v ⇝ u along edges; with the guessed u → v it is a cycle, printed in
            // "depends on" order from v: v → u → ... → v.
            let mut names: Vec<&str> = vec![self.tasks[*v].key.as_str()];
            names.extend(p[1..].iter().rev().map(|&i| self.tasks[i].key.as_str()));
            names.push(self.tasks[*v].key.as_str());
            let t = &self.tasks[*v];
            diags.push(diag(
                codes::INFERRED_DROPPED,
                Severity::Info,
                t.path.as_ref(),
                t.span,
                format!(
                    "the dependency of `{}` on `{}`, guessed from the task's description, would close the cycle {}; the guess is dropped",
                    t.key,
                    self.tasks[*u].key,
                    names.join(" → ")
                ),
                "if it is a real dependency, write it as one (`depends on ...`) and fix the cycle; else reword the description",
            ));
        }
        !dropped.is_empty()
    }

    /// Kahn's algorithm with levels; true when every node was ordered.
    fn topo(&mut self) -> bool {
        let n = self.tasks.len();
        let mut indeg = vec![0u32; n];
        for e in self.graph.raw_edges() {
            indeg[e.target().index()] += 1;
        }
        let mut level = vec![0u32; n];
        let mut order: Vec<u32> = Vec::with_capacity(n);
        order.extend((0..n as u32).filter(|&i| indeg[i as usize] == 0));
        let mut head = 0;
        while head < order.len() {
            let u = order[head] as usize;
            head += 1;
            let lu = level[u] + 1;
            for v in self
                .graph
                .neighbors_directed(NodeIndex::new(u), Direction::Outgoing)
            {
                let v = v.index();
                if level[v] < lu {
                    level[v] = lu;
                }
                indeg[v] -= 1;
                if indeg[v] == 0 {
                    order.push(v as u32);
                }
            }
        }
        let ok = order.len() == n;
        self.order = order;
        self.level = level;
        ok
    }

    /// A shortest cycle through the first node of `scc`, as task indices in edge order.
    fn cycle_in(&self, scc: &[NodeIndex<u32>]) -> Vec<usize> {
        let inside: HashSet<usize> = scc.iter().map(|n| n.index()).collect();
        let start = scc.iter().map(|n| n.index()).min().unwrap_or(0);
        let mut parent: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(u) = queue.pop_front() {
            let mut next: Vec<usize> = self
                .graph
                .neighbors_directed(NodeIndex::new(u), Direction::Outgoing)
                .map(NodeIndex::index)
                .filter(|v| inside.contains(v))
                .collect();
            next.sort_unstable();
            for v in next {
                if v == start {
                    let mut path = vec![u];
                    let mut x = u;
                    while x != start {
                        x = parent[&x];
                        path.push(x);
                    }
                    path.reverse();
                    return path;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(v) {
                    e.insert(u);
                    queue.push_back(v);
                }
            }
        }
        vec![start]
    }

    fn fill_depends_on(&mut self) {
        for t in 0..self.tasks.len() {
            let mut preds: Vec<usize> = self
                .graph
                .neighbors_directed(NodeIndex::new(t), Direction::Incoming)
                .map(NodeIndex::index)
                .collect();
            preds.sort_unstable();
            self.tasks[t].depends_on = preds
                .into_iter()
                .map(|p| self.tasks[p].key.clone())
                .collect();
        }
    }

    fn done_order(&self, diags: &mut Vec<Diagnostic>) {
        for (t, task) in self.tasks.iter().enumerate() {
            if !task.done {
                continue;
            }
            let open: Vec<&str> = self
                .graph
                .neighbors_directed(NodeIndex::new(t), Direction::Incoming)
                .filter(|p| !self.tasks[p.index()].done && !self.tasks[p.index()].optional)
                .map(|p| self.tasks[p.index()].key.as_str())
                .collect();
            if !open.is_empty()
                && self
                    .graph
                    .edges_directed(NodeIndex::new(t), Direction::Incoming)
                    .count()
                    > 0
            {
                let mut open = open;
                open.sort_unstable();
                diags.push(diag(
                    codes::DONE_OUT_OF_ORDER,
                    Severity::Info,
                    task.path.as_ref(),
                    task.span,
                    format!(
                        "task `{}` is done but depends on open task(s) {}",
                        task.key,
                        open.join(", ")
                    ),
                    "check the order, or check the prerequisite off too",
                ));
            }
        }
    }

    fn touches_overlap(&self, diags: &mut Vec<Diagnostic>) {
        let Ok(conflicts) = self.conflicts_with(diags) else {
            return;
        };
        for c in conflicts {
            let (a, b) = (&self.tasks[c.a], &self.tasks[c.b]);
            diags.push(diag(
                codes::TOUCHES_OVERLAP,
                Severity::Warning,
                b.path.as_ref(),
                b.span,
                format!(
                    "tasks `{}` and `{}` both run in wave {} and touch overlapping paths (`{}` / `{}`): a likely merge conflict",
                    a.key, b.key, c.wave + 1, c.a_glob, c.b_glob
                ),
                "decide: add a dependency between them, or split the area; nothing is reordered for you",
            ));
        }
    }

    fn conflicts_with(&self, diags: &mut Vec<Diagnostic>) -> Result<Vec<Conflict>, Error> {
        let waves = self.waves()?;
        let mut compiled: HashMap<usize, touches::Area> = HashMap::new();
        for (i, t) in self.tasks.iter().enumerate() {
            if t.touches.is_empty() {
                continue;
            }
            let (area, bad) = touches::Area::new(&t.touches);
            for g in bad {
                diags.push(diag(
                    codes::BAD_GLOB,
                    Severity::Warning,
                    t.path.as_ref(),
                    t.span,
                    format!("`Touches:` glob `{g}` of task `{}` does not compile", t.key),
                    "write a gitignore-style glob such as `src/api/**`",
                ));
            }
            compiled.insert(i, area);
        }
        let mut out = Vec::new();
        for (w, wave) in waves.iter().enumerate() {
            let with: Vec<usize> = wave
                .iter()
                .copied()
                .filter(|i| compiled.contains_key(i))
                .collect();
            for (x, &a) in with.iter().enumerate() {
                for &b in &with[x + 1..] {
                    if let Some((ga, gb)) = compiled[&a].overlap(&compiled[&b]) {
                        out.push(Conflict {
                            wave: w,
                            a,
                            b,
                            a_glob: ga,
                            b_glob: gb,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Pairs of tasks in the same wave whose `Touches:` globs overlap (likely merge
    /// conflicts), lower index first. Overlap is decided by [`crate::touches::Area::overlap`].
    ///
    /// # Errors
    /// [`Error::Cyclic`] when the graph has cycles (there are no waves).
    pub fn conflicts(&self) -> Result<Vec<Conflict>, Error> {
        self.conflicts_with(&mut Vec::new())
    }

    /// The tasks, node `i` being `tasks()[i]`.
    pub fn tasks(&self) -> &[TaskEntry] {
        &self.tasks
    }

    /// The specs (or lists) in the graph, in node order.
    pub fn specs(&self) -> &[SpecEntry] {
        &self.specs
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True when there are no tasks.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Number of edges (after de-duplication and any repair).
    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// The underlying petgraph graph (node weights are `()`, node `i` is `tasks()[i]`).
    pub fn graph(&self) -> &DiGraph<(), EdgeKind, u32> {
        &self.graph
    }

    /// Every edge as `(from, to, kind)`, in insertion order (sorted by `from`, then `to`).
    pub fn edges(&self) -> impl Iterator<Item = (usize, usize, EdgeKind)> + '_ {
        self.graph
            .raw_edges()
            .iter()
            .map(|e| (e.source().index(), e.target().index(), e.weight))
    }

    /// Number of dependency cycles found and left in place (0 when the graph is a DAG).
    pub fn cycle_count(&self) -> usize {
        self.cycles
    }

    /// The index of the task named `reference`: its key (`spec#id`), or its id when only one
    /// task in the graph has that id.
    pub fn find(&self, reference: &str) -> Option<usize> {
        if let Some(&i) = self.keys.get(reference) {
            return Some(i);
        }
        match self.by_id.get(reference).map(Vec::as_slice) {
            Some([i]) => Some(*i),
            _ => None,
        }
    }

    /// The name to show for task `i`: its id when it is unique in the graph, else its key.
    pub fn display_name(&self, i: usize) -> &str {
        let t = &self.tasks[i];
        if self.by_id.get(&t.id).is_some_and(|v| v.len() == 1) {
            &t.id
        } else {
            &t.key
        }
    }

    /// Direct predecessors of task `i` (tasks it waits for), ascending.
    pub fn predecessors(&self, i: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
            .map(NodeIndex::index)
            .collect();
        v.sort_unstable();
        v
    }

    /// Direct successors of task `i` (tasks waiting for it), ascending.
    pub fn successors(&self, i: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
            .map(NodeIndex::index)
            .collect();
        v.sort_unstable();
        v
    }

    /// The wave (0-based topological layer) of each task: 0 for a task with no
    /// predecessors, else one more than its latest predecessor (longest-path layering).
    ///
    /// # Errors
    /// [`Error::Cyclic`] when the graph has cycles.
    pub fn levels(&self) -> Result<&[u32], Error> {
        if self.cycles > 0 {
            return Err(Error::Cyclic(self.cycles));
        }
        Ok(&self.level)
    }

    /// A topological order of the task indices (Kahn's algorithm).
    ///
    /// # Errors
    /// [`Error::Cyclic`] when the graph has cycles.
    pub fn topological_order(&self) -> Result<&[u32], Error> {
        if self.cycles > 0 {
            return Err(Error::Cyclic(self.cycles));
        }
        Ok(&self.order)
    }

    /// The waves: the parallel layers of the plan. Every task is in exactly one wave, every
    /// edge goes from an earlier wave to a later one, and tasks in a wave are ascending by
    /// index (architectural specs first, then document order).
    ///
    /// # Errors
    /// [`Error::Cyclic`] when the graph has cycles.
    pub fn waves(&self) -> Result<Vec<Vec<usize>>, Error> {
        let level = self.levels()?;
        let count = level.iter().max().map_or(0, |&m| m as usize + 1);
        let mut waves = vec![Vec::new(); count];
        for (i, &l) in level.iter().enumerate() {
            waves[l as usize].push(i);
        }
        Ok(waves)
    }

    /// The weight of task `i` on the critical path: its estimate in hours, or 1.
    pub fn weight(&self, i: usize) -> f64 {
        self.tasks[i]
            .estimate_hours
            .filter(|h| h.is_finite() && *h >= 0.0)
            .unwrap_or(1.0)
    }

    /// The critical path: the path whose summed weights ([`TaskGraph::weight`]) are largest,
    /// i.e. the makespan with unlimited agents. Ties go to the lowest task index.
    ///
    /// # Errors
    /// [`Error::Cyclic`] when the graph has cycles.
    pub fn critical_path(&self) -> Result<CriticalPath, Error> {
        let order = self.topological_order()?;
        let n = self.tasks.len();
        let with = self
            .tasks
            .iter()
            .filter(|t| t.estimate_hours.is_some())
            .count();
        let unit = if with == 0 {
            WeightUnit::Tasks
        } else if with == n {
            WeightUnit::Hours
        } else {
            WeightUnit::Mixed
        };
        let mut dist = vec![0f64; n];
        let mut prev = vec![u32::MAX; n];
        for &u in order {
            let u = u as usize;
            dist[u] += self.weight(u);
            let du = dist[u];
            for v in self
                .graph
                .neighbors_directed(NodeIndex::new(u), Direction::Outgoing)
            {
                let v = v.index();
                // Longer wins; on a tie the lowest predecessor index wins, so the result does
                // not depend on petgraph's neighbour order.
                let better = match du.total_cmp(&dist[v]) {
                    std::cmp::Ordering::Greater => true,
                    std::cmp::Ordering::Equal => prev[v] != u32::MAX && (u as u32) < prev[v],
                    std::cmp::Ordering::Less => false,
                };
                if better {
                    dist[v] = du;
                    prev[v] = u as u32;
                }
            }
        }
        let Some((mut end, &length)) =
            dist.iter()
                .enumerate()
                .fold(None, |best: Option<(usize, &f64)>, (i, d)| match best {
                    Some((_, bd)) if *bd >= *d => best,
                    _ => Some((i, d)),
                })
        else {
            return Ok(CriticalPath {
                tasks: Vec::new(),
                length: 0.0,
                unit,
            });
        };
        let mut path = vec![end];
        while prev[end] != u32::MAX {
            end = prev[end] as usize;
            path.push(end);
        }
        path.reverse();
        Ok(CriticalPath {
            tasks: path,
            length,
            unit,
        })
    }

    /// The ready set: tasks not in `done` (and not checked done in their list) whose every
    /// predecessor is done. Optional predecessors do not block. A task on a cycle is never
    /// ready. Ascending by index.
    pub fn ready(&self, done: &HashSet<usize>) -> Vec<usize> {
        let is_done = |i: usize| done.contains(&i) || self.tasks[i].done;
        (0..self.tasks.len())
            .filter(|&i| !is_done(i))
            .filter(|&i| {
                self.graph
                    .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
                    .all(|p| {
                        is_done(p.index())
                            || (self.tasks[p.index()].optional && !self.on_cycle(p.index()))
                    })
            })
            .filter(|&i| !self.on_cycle(i))
            .collect()
    }

    /// Whether task `i` is on a cycle or behind one (Kahn's algorithm could not order it).
    pub fn on_cycle(&self, i: usize) -> bool {
        self.blocked.get(i).copied().unwrap_or(false)
    }

    /// Impact of a spec change: the tasks tracing a changed requirement (`Direct`), then every
    /// task downstream of those (`Downstream`, breadth-first, so `via` is a nearest
    /// invalidated predecessor). `changed` holds requirement ids, bare (`REQ-1`, matched in
    /// every spec) or qualified (`spec#REQ-1`). Works on cyclic graphs too.
    pub fn impact(&self, changed: &[String]) -> Vec<Impact> {
        let mut seen = vec![false; self.tasks.len()];
        let mut out = Vec::new();
        let mut queue = VecDeque::new();
        for (i, t) in self.tasks.iter().enumerate() {
            let hit = changed.iter().find(|c| {
                let (spec, req) = match c.rsplit_once('#') {
                    Some((s, r)) => (Some(s), r),
                    None => (None, c.as_str()),
                };
                spec.is_none_or(|s| s == t.spec_id)
                    && t.requirements.iter().any(|x| trace_matches(req, x))
            });
            if let Some(c) = hit {
                seen[i] = true;
                out.push(Impact::Direct {
                    task: i,
                    requirement: c.clone(),
                });
                queue.push_back(i);
            }
        }
        while let Some(u) = queue.pop_front() {
            for v in self.successors(u) {
                if !seen[v] {
                    seen[v] = true;
                    out.push(Impact::Downstream { task: v, via: u });
                    queue.push_back(v);
                }
            }
        }
        out
    }

    /// The transitive reduction (for display): the fewest edges with the same reachability,
    /// computed with petgraph's Habib–Morvan–Rampon algorithm
    /// (`petgraph::algo::tred`). Pairs `(from, to)`, sorted.
    ///
    /// # Errors
    /// [`Error::Cyclic`] when the graph has cycles.
    pub fn transitive_reduction(&self) -> Result<Vec<(usize, usize)>, Error> {
        let order = self.topological_order()?;
        let toposort: Vec<NodeIndex<u32>> =
            order.iter().map(|&i| NodeIndex::new(i as usize)).collect();
        let (list, _) = petgraph::algo::tred::dag_to_toposorted_adjacency_list::<_, u32>(
            &self.graph,
            &toposort,
        );
        let (reduced, _) = petgraph::algo::tred::dag_transitive_reduction_closure(&list);
        let mut out: Vec<(usize, usize)> = reduced
            .edge_references_pairs()
            .map(|(a, b)| (order[a as usize] as usize, order[b as usize] as usize))
            .collect();
        out.sort_unstable();
        Ok(out)
    }
}

/// A shortest path `from ⇝ to` in `adj` (breadth-first), as the nodes on it, both ends
/// included; `None` when `to` is unreachable.
fn path(adj: &[Vec<usize>], from: usize, to: usize) -> Option<Vec<usize>> {
    let mut parent = vec![usize::MAX; adj.len()];
    parent[from] = from;
    let mut queue = VecDeque::from([from]);
    while let Some(u) = queue.pop_front() {
        if u == to {
            let mut p = vec![to];
            let mut x = to;
            while x != from {
                x = parent[x];
                p.push(x);
            }
            p.reverse();
            return Some(p);
        }
        for &v in &adj[u] {
            if parent[v] == usize::MAX {
                parent[v] = u;
                queue.push_back(v);
            }
        }
    }
    None
}

/// Helper to iterate the edges of petgraph's adjacency `List`.
trait PairEdges {
    fn edge_references_pairs(&self) -> Box<dyn Iterator<Item = (u32, u32)> + '_>;
}

impl PairEdges for petgraph::adj::List<(), u32> {
    fn edge_references_pairs(&self) -> Box<dyn Iterator<Item = (u32, u32)> + '_> {
        use petgraph::visit::IntoNeighbors as _;
        Box::new(
            self.node_indices()
                .flat_map(move |a| self.neighbors(a).map(move |b| (a, b))),
        )
    }
}
