//! [`PlanReport`]: the serialisable result of planning, and its renderings (human, DOT, Mermaid).

use crate::graph::{Impact, SpecEntry, TaskGraph, WeightUnit};
use crate::task::{Edge, TaskEntry};
use lightsout_spec::{Diagnostic, Spec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// The critical path, by task key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanPath {
    /// Task keys, first to last.
    pub tasks: Vec<String>,
    /// Summed weight, in `unit`.
    pub length: f64,
    /// Hours, tasks (unit weight), or mixed.
    pub unit: WeightUnit,
}

/// A likely merge conflict, by task key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanConflict {
    /// 1-based wave number.
    pub wave: usize,
    /// First task key.
    pub a: String,
    /// Second task key.
    pub b: String,
    /// The glob of `a` that overlaps.
    pub a_glob: String,
    /// The glob of `b` that overlaps.
    pub b_glob: String,
}

/// Everything `lightsout plan` prints, as data. Tasks are referred to by key
/// (`"{spec_id}#{id}"`) everywhere.
///
/// Invariants when `cycles == 0`: every task key is in exactly one of `waves`; every edge
/// goes from an earlier wave to a later one; `ready` tasks are not done and all their
/// predecessors are. When `cycles > 0`, `waves` is empty and `critical_path` is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanReport {
    /// The specs (or task lists) planned together, architectural ones first.
    pub specs: Vec<SpecEntry>,
    /// All tasks; `depends_on` holds the keys of direct predecessors.
    pub tasks: Vec<TaskEntry>,
    /// All edges, with why each exists.
    pub edges: Vec<Edge>,
    /// The waves (parallel layers), first to last; keys ascending by node order.
    pub waves: Vec<Vec<String>>,
    /// The critical path, when the graph is acyclic.
    pub critical_path: Option<PlanPath>,
    /// Tasks that can start now, given the done ones.
    pub ready: Vec<String>,
    /// Keys of the tasks counted as done (checked in their list, or given).
    pub done: Vec<String>,
    /// Likely merge conflicts (overlapping `Touches:` in one wave).
    pub conflicts: Vec<PlanConflict>,
    /// Number of dependency cycles (0 for a valid plan).
    pub cycles: usize,
    /// Every diagnostic of reading, building and validating.
    pub diagnostics: Vec<Diagnostic>,
}

impl TaskGraph {
    /// The [`PlanReport`] of this graph, with `done` (task indices) counted as done in addition
    /// to the tasks checked done in their lists, and `diagnostics` carried along.
    pub fn plan(&self, done: &HashSet<usize>, diagnostics: Vec<Diagnostic>) -> PlanReport {
        let key = |i: usize| self.tasks()[i].key.clone();
        let waves = self
            .waves()
            .map(|w| {
                w.into_iter()
                    .map(|w| w.into_iter().map(key).collect())
                    .collect()
            })
            .unwrap_or_default();
        let critical_path = self.critical_path().ok().map(|c| PlanPath {
            tasks: c.tasks.into_iter().map(key).collect(),
            length: c.length,
            unit: c.unit,
        });
        let conflicts = self
            .conflicts()
            .unwrap_or_default()
            .into_iter()
            .map(|c| PlanConflict {
                wave: c.wave + 1,
                a: key(c.a),
                b: key(c.b),
                a_glob: c.a_glob,
                b_glob: c.b_glob,
            })
            .collect();
        let done_keys = (0..self.len())
            .filter(|i| done.contains(i) || self.tasks()[*i].done)
            .map(key)
            .collect();
        PlanReport {
            specs: self.specs().to_vec(),
            tasks: self.tasks().to_vec(),
            edges: self
                .edges()
                .map(|(a, b, kind)| Edge {
                    from: key(a),
                    to: key(b),
                    kind,
                })
                .collect(),
            waves,
            critical_path,
            ready: self.ready(done).into_iter().map(key).collect(),
            done: done_keys,
            conflicts,
            cycles: self.cycle_count(),
            diagnostics,
        }
    }
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn fmt_len(p: &PlanPath) -> String {
    match p.unit {
        WeightUnit::Hours => format!("{:.1} h", p.length),
        WeightUnit::Tasks => format!("{} task(s)", p.length),
        WeightUnit::Mixed => format!("{:.1} h (tasks without an estimate count 1 h)", p.length),
    }
}

/// Names to show: task ids for a one-spec plan, keys (`spec#id`) when several specs are
/// planned together.
fn names(plan: &PlanReport) -> HashMap<&str, &str> {
    let single = plan.specs.len() <= 1;
    plan.tasks
        .iter()
        .map(|t| {
            (
                t.key.as_str(),
                if single {
                    t.id.as_str()
                } else {
                    t.key.as_str()
                },
            )
        })
        .collect()
}

/// The plan for a terminal: a summary, the critical path, the ready set, then each wave
/// with its tasks and their requirement ids, then the likely merge conflicts.
pub fn render_human(plan: &PlanReport) -> String {
    let names = names(plan);
    let name = |k: &str| names.get(k).copied().unwrap_or(k).to_owned();
    let by_key: HashMap<&str, &TaskEntry> =
        plan.tasks.iter().map(|t| (t.key.as_str(), t)).collect();
    let done: HashSet<&str> = plan.done.iter().map(String::as_str).collect();
    let mut o = String::new();
    let specs: Vec<String> = plan
        .specs
        .iter()
        .map(|s| {
            format!(
                "{} ({}, {}, {} tasks)",
                s.id,
                kind_str(s.kind),
                s.format.as_str(),
                s.tasks
            )
        })
        .collect();
    let _ = writeln!(
        o,
        "plan: {} task(s), {} edge(s), {} wave(s), {} done",
        plan.tasks.len(),
        plan.edges.len(),
        plan.waves.len(),
        plan.done.len()
    );
    let _ = writeln!(o, "specs: {}", specs.join(", "));
    if plan.cycles > 0 {
        let _ = writeln!(
            o,
            "\n{} dependency cycle(s): no waves or critical path until they are fixed (see the errors above), or plan with --repair",
            plan.cycles
        );
    }
    if let Some(cp) = &plan.critical_path {
        let path: Vec<String> = cp.tasks.iter().map(|k| name(k)).collect();
        let _ = writeln!(o, "critical path ({}): {}", fmt_len(cp), path.join(" → "));
    }
    let ready: Vec<String> = plan.ready.iter().map(|k| name(k)).collect();
    let _ = writeln!(
        o,
        "ready now ({}): {}",
        ready.len(),
        if ready.is_empty() {
            "-".to_owned()
        } else {
            ready.join(", ")
        }
    );
    for (w, wave) in plan.waves.iter().enumerate() {
        let _ = writeln!(o, "\nwave {} ({} task(s))", w + 1, wave.len());
        for k in wave {
            let Some(t) = by_key.get(k.as_str()) else {
                continue;
            };
            let mut line = format!(
                "  {} {}  {}",
                if done.contains(k.as_str()) {
                    "[x]"
                } else {
                    "[ ]"
                },
                name(k),
                short(&t.title, 70)
            );
            if !t.requirements.is_empty() {
                let _ = write!(line, "  ({})", t.requirements.join(", "));
            }
            if let Some(h) = t.estimate_hours {
                let _ = write!(line, "  ~{h} h");
            }
            if t.optional {
                line.push_str("  optional");
            }
            let _ = writeln!(o, "{line}");
        }
    }
    if !plan.conflicts.is_empty() {
        let _ = writeln!(
            o,
            "\nlikely merge conflicts (same wave, overlapping Touches:):"
        );
        for c in &plan.conflicts {
            let _ = writeln!(
                o,
                "  wave {}: {} ({}) and {} ({})",
                c.wave,
                name(&c.a),
                c.a_glob,
                name(&c.b),
                c.b_glob
            );
        }
    }
    o
}

fn kind_str(k: lightsout_spec::SpecKind) -> &'static str {
    match k {
        lightsout_spec::SpecKind::Architectural => "architectural",
        lightsout_spec::SpecKind::Feature => "feature",
        lightsout_spec::SpecKind::Constraint => "constraint",
    }
}

fn display_edges(graph: &TaskGraph) -> Vec<(usize, usize)> {
    graph
        .transitive_reduction()
        .unwrap_or_else(|_| graph.edges().map(|(a, b, _)| (a, b)).collect())
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', " ")
}

/// The plan as a Graphviz DOT digraph: one cluster per spec, done tasks grey, critical path
/// bold red, ready tasks green; edges are the transitive reduction (all edges when cyclic).
/// Render with `dot -Tsvg`.
pub fn render_dot(graph: &TaskGraph, plan: &PlanReport) -> String {
    let names = names(plan);
    let critical: HashSet<&str> = plan
        .critical_path
        .iter()
        .flat_map(|c| c.tasks.iter().map(String::as_str))
        .collect();
    let ready: HashSet<&str> = plan.ready.iter().map(String::as_str).collect();
    let done: HashSet<&str> = plan.done.iter().map(String::as_str).collect();
    let mut o = String::from(
        "digraph plan {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n",
    );
    for (si, s) in plan.specs.iter().enumerate() {
        let _ = writeln!(
            o,
            "  subgraph \"cluster_{si}\" {{\n    label=\"{} ({})\";",
            dot_escape(&s.id),
            kind_str(s.kind)
        );
        for t in plan.tasks.iter().filter(|t| t.spec_id == s.id) {
            let k = t.key.as_str();
            let mut attrs = format!(
                "label=\"{}\\n{}\"",
                dot_escape(names.get(k).unwrap_or(&k)),
                dot_escape(&short(&t.title, 40))
            );
            if critical.contains(k) {
                attrs.push_str(", color=red, penwidth=2");
            }
            if done.contains(k) {
                attrs.push_str(", style=filled, fillcolor=lightgrey");
            } else if ready.contains(k) {
                attrs.push_str(", style=filled, fillcolor=palegreen");
            }
            let _ = writeln!(o, "    \"{}\" [{attrs}];", dot_escape(k));
        }
        o.push_str("  }\n");
    }
    for (a, b) in display_edges(graph) {
        let (ka, kb) = (&graph.tasks()[a].key, &graph.tasks()[b].key);
        let style = if critical.contains(ka.as_str()) && critical.contains(kb.as_str()) {
            " [color=red]"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "  \"{}\" -> \"{}\"{style};",
            dot_escape(ka),
            dot_escape(kb)
        );
    }
    o.push_str("}\n");
    o
}

fn mermaid_escape(s: &str) -> String {
    s.replace('"', "#quot;")
        .replace(['\n', '\r'], " ")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

/// The plan as a Mermaid flowchart (renders on GitHub inside a ```` ```mermaid ```` block):
/// one subgraph per spec, transitive reduction of the edges, critical path and ready tasks
/// styled with classes.
pub fn render_mermaid(graph: &TaskGraph, plan: &PlanReport) -> String {
    let names = names(plan);
    let critical: HashSet<&str> = plan
        .critical_path
        .iter()
        .flat_map(|c| c.tasks.iter().map(String::as_str))
        .collect();
    let ready: HashSet<&str> = plan.ready.iter().map(String::as_str).collect();
    let done: HashSet<&str> = plan.done.iter().map(String::as_str).collect();
    let index: HashMap<&str, usize> = graph
        .tasks()
        .iter()
        .enumerate()
        .map(|(i, t)| (t.key.as_str(), i))
        .collect();
    let mut o = String::from("flowchart LR\n");
    for (si, s) in plan.specs.iter().enumerate() {
        let _ = writeln!(o, "  subgraph s{si}[\"{}\"]", mermaid_escape(&s.id));
        for t in plan.tasks.iter().filter(|t| t.spec_id == s.id) {
            let k = t.key.as_str();
            let Some(i) = index.get(k) else { continue };
            let _ = writeln!(
                o,
                "    n{i}[\"{}: {}\"]",
                mermaid_escape(names.get(k).unwrap_or(&k)),
                mermaid_escape(&short(&t.title, 40))
            );
        }
        o.push_str("  end\n");
    }
    for (a, b) in display_edges(graph) {
        let _ = writeln!(o, "  n{a} --> n{b}");
    }
    o.push_str("  classDef critical stroke:#d00,stroke-width:3px\n  classDef ready fill:#cfc\n  classDef done fill:#ddd\n");
    for (class, set) in [("critical", &critical), ("ready", &ready), ("done", &done)] {
        let mut ids: Vec<usize> = set.iter().filter_map(|k| index.get(k).copied()).collect();
        ids.sort_unstable();
        if !ids.is_empty() {
            let list: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
            let _ = writeln!(o, "  class {} {class}", list.join(","));
        }
    }
    o
}

/// What a spec change invalidates, by task key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ImpactReport {
    /// Requirement ids that changed (added, modified or removed), `spec#REQ` qualified.
    pub changed: Vec<String>,
    /// Invalidated tasks of the new plan, direct ones first, then downstream breadth-first.
    pub tasks: Vec<ImpactedTask>,
    /// Tasks of the old plan that traced to removed requirements (they have no place in the
    /// new plan).
    pub removed: Vec<String>,
}

/// One invalidated task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImpactedTask {
    /// Task key.
    pub task: String,
    /// Its title.
    pub title: String,
    /// The changed requirement it traces to (direct impact).
    pub requirement: Option<String>,
    /// The invalidated task it depends on (downstream impact).
    pub via: Option<String>,
}

/// Requirement ids that differ between two versions of a spec: added, removed, or changed
/// in title, body, scenarios, `Depends on:`, `Touches:` or estimate. Qualified as
/// `spec#REQ`. A stand-in for the spec stage's own diff, used by `lightsout plan --impact`.
pub fn changed_requirements(old: &Spec, new: &Spec) -> Vec<String> {
    let q = |s: &Spec, id: &str| format!("{}#{id}", s.meta.id);
    let mut out = Vec::new();
    for r in &new.requirements {
        match old.requirement(&r.id) {
            None => out.push(q(new, &r.id)),
            Some(o) => {
                let same = o.title == r.title
                    && o.body.trim() == r.body.trim()
                    && o.depends_on == r.depends_on
                    && o.touches == r.touches
                    && o.estimate_hours == r.estimate_hours
                    && o.delta == r.delta
                    && o.scenarios.len() == r.scenarios.len()
                    && o.scenarios.iter().zip(&r.scenarios).all(|(a, b)| {
                        a.name == b.name
                            && a.steps.len() == b.steps.len()
                            && a.steps
                                .iter()
                                .zip(&b.steps)
                                .all(|(x, y)| x.keyword == y.keyword && x.text == y.text)
                    });
                if !same {
                    out.push(q(new, &r.id));
                }
            }
        }
    }
    for r in &old.requirements {
        if new.requirement(&r.id).is_none() {
            out.push(q(old, &r.id));
        }
    }
    out
}

/// Builds the [`ImpactReport`] of `changed` requirement ids: impacted tasks of `new`, and
/// the tasks of `old` that traced to requirements no longer in `new`.
pub fn impact_report(old: &TaskGraph, new: &TaskGraph, changed: &[String]) -> ImpactReport {
    let key = |g: &TaskGraph, i: usize| g.tasks()[i].key.clone();
    let tasks = new
        .impact(changed)
        .into_iter()
        .map(|imp| match imp {
            Impact::Direct { task, requirement } => ImpactedTask {
                task: key(new, task),
                title: new.tasks()[task].title.clone(),
                requirement: Some(requirement),
                via: None,
            },
            Impact::Downstream { task, via } => ImpactedTask {
                task: key(new, task),
                title: new.tasks()[task].title.clone(),
                requirement: None,
                via: Some(key(new, via)),
            },
        })
        .collect();
    let removed = old
        .impact(changed)
        .into_iter()
        .filter_map(|imp| match imp {
            Impact::Direct { task, .. } if new.find(&old.tasks()[task].key).is_none() => {
                Some(key(old, task))
            }
            _ => None,
        })
        .collect();
    ImpactReport {
        changed: changed.to_vec(),
        tasks,
        removed,
    }
}

/// The impact report for a terminal.
pub fn render_impact(report: &ImpactReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "changed requirements ({}): {}",
        report.changed.len(),
        if report.changed.is_empty() {
            "-".to_owned()
        } else {
            report.changed.join(", ")
        }
    );
    let _ = writeln!(o, "invalidated tasks ({}):", report.tasks.len());
    for t in &report.tasks {
        let why = match (&t.requirement, &t.via) {
            (Some(r), _) => format!("traces to {r}"),
            (_, Some(v)) => format!("downstream of {v}"),
            _ => String::new(),
        };
        let _ = writeln!(o, "  {}  {}  ({why})", t.task, short(&t.title, 60));
    }
    if !report.removed.is_empty() {
        let _ = writeln!(
            o,
            "tasks of removed requirements ({}): {}",
            report.removed.len(),
            report.removed.join(", ")
        );
    }
    o
}
