//! This crate provides the planning stage of Lightsout: it turns specs and their task lists
//! into one task graph on [`petgraph`], validates it, and answers the questions a factory
//! asks before any agent writes a line: which tasks exist and what each traces to, what can
//! run in parallel (waves), what bounds the makespan (critical path), what can start now
//! (ready set), and what a spec change invalidates (impact).
//!
//! # Brief overview
//! - [`TaskEntry`], [`Edge`], [`TaskList`]: plain serde data. A [`TaskList`] holds the tasks of one
//!   spec; it comes from a parsed [`lightsout_spec::Spec`] ([`TaskList::from_spec`]: the
//!   `## Tasks` section, else one task per requirement) or from a task list file read by
//!   [`read`] (Spec Kit and Kiro `tasks.md`, OpenSpec change `tasks.md`, task-master
//!   `tasks.json`), paired with its spec by [`TaskList::with_specs`].
//! - [`TaskGraph`]: built from several lists at once ([`TaskGraph::build`],
//!   [`TaskGraph::from_specs`]); validation reports [`lightsout_spec::Diagnostic`]s (codes in
//!   [`codes`]): cycles with their full path, dangling and self dependencies, requirements
//!   with no task, tasks tracing no (or an unknown) requirement, overlapping `Touches:` in a
//!   wave. Nothing the author wrote is repaired unless [`Options::repair`] is set; a
//!   dependency guessed from prose ([`EdgeKind::Inferred`]) that would close a cycle is
//!   dropped with a note, never reported as a cycle.
//! - Algorithms on [`TaskGraph`]: [`TaskGraph::waves`], [`TaskGraph::critical_path`],
//!   [`TaskGraph::ready`], [`TaskGraph::impact`], [`TaskGraph::transitive_reduction`],
//!   [`TaskGraph::conflicts`].
//! - [`PlanReport`]: all of it as one serialisable value, rendered by [`render_human`],
//!   [`render_dot`] (Graphviz) and [`render_mermaid`] (GitHub); [`ImpactReport`] for
//!   `lightsout plan --impact`.
//! - [`load`]: finds the specs and task lists under paths (a Kiro folder, a Spec Kit feature
//!   folder, an OpenSpec change, a `tasks.json`, Lightsout spec files) and pairs them.
//!
//! Edges run from prerequisite to dependent. An `architectural` spec's tasks come before the
//! tasks of the specs that list it in `depends_on`.
//!
//! # Example
//! ```
//! use lightsout_graph::{read, Options, TaskFormat, TaskGraph};
//! use std::collections::HashSet;
//!
//! let tasks_md = "\
//! - [ ] 1. Storage layer
//!   - _Requirements: 1.1_
//! - [ ] 2. (P) HTTP API
//!   - _Requirements: 2.1_
//! - [ ] 3. (P) CLI
//!   - _Requirements: 2.2_
//! - [ ] 4. Docs
//!   - _Requirements: 3.1_
//! ";
//! let (lists, diags) = read::read(TaskFormat::Kiro, tasks_md.as_bytes(), "shortener", None);
//! assert!(diags.is_empty());
//! let (graph, diags) = TaskGraph::build(lists, &Options::default());
//! assert!(diags.is_empty());
//!
//! // 1, then 2 and 3 side by side (cc-sdd `(P)`), then 4.
//! let waves: Vec<Vec<&str>> = graph
//!     .waves()?
//!     .iter()
//!     .map(|w| w.iter().map(|&i| graph.tasks()[i].id.as_str()).collect())
//!     .collect();
//! assert_eq!(waves, [vec!["1"], vec!["2", "3"], vec!["4"]]);
//! assert_eq!(graph.critical_path()?.length, 3.0);
//!
//! let done: HashSet<usize> = [graph.find("1").unwrap()].into();
//! let ready: Vec<&str> = graph.ready(&done).iter().map(|&i| graph.tasks()[i].id.as_str()).collect();
//! assert_eq!(ready, ["2", "3"]);
//! # Ok::<(), lightsout_graph::Error>(())
//! ```

#![deny(missing_docs)]
// Product names (OpenSpec, GitHub, Graphviz) read as prose in these docs, not as code.
#![allow(clippy::doc_markdown)]

pub mod codes;
mod from_spec;
mod graph;
pub mod load;
mod plan;
pub mod read;
pub mod sched;
mod task;
pub mod touches;

pub use graph::{
    Conflict, CriticalPath, Error, Impact, Options, SpecEntry, TaskGraph, WeightUnit, canonical_id,
    trace_matches,
};
pub use plan::{
    ImpactReport, ImpactedTask, PlanConflict, PlanPath, PlanReport, changed_requirements,
    impact_report, render_dot, render_human, render_impact, render_mermaid,
};
pub use task::{Edge, EdgeKind, RequirementRef, TaskEntry, TaskFormat, TaskList};
