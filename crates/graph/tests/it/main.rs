//! Integration tests of `lightsout-graph`: one binary, one module per topic.

// Graph tests name nodes a, b, c, d; critical-path lengths here are exact small integers;
// `&Default::default()` reads better than the type name for an empty done set.
#![allow(
    clippy::many_single_char_names,
    clippy::float_cmp,
    clippy::default_trait_access
)]

mod algorithms;
mod corpus;
mod properties;
mod readers;
mod validation;

use lightsout_graph::{Options, TaskGraph, TaskList};

/// Builds a graph without repair.
pub(crate) fn build(lists: Vec<TaskList>) -> (TaskGraph, Vec<lightsout_spec::Diagnostic>) {
    TaskGraph::build(lists, &Options::default())
}

/// The ids of `idx` in `graph`.
pub(crate) fn ids(graph: &TaskGraph, idx: &[usize]) -> Vec<String> {
    idx.iter().map(|&i| graph.tasks()[i].id.clone()).collect()
}

/// Index of the task with `id`, panicking with a message when absent.
pub(crate) fn at(graph: &TaskGraph, id: &str) -> usize {
    graph.find(id).unwrap_or_else(|| panic!("no task `{id}`"))
}

/// Whether `to` is reachable from `from`.
pub(crate) fn reaches(graph: &TaskGraph, from: usize, to: usize) -> bool {
    petgraph::algo::has_path_connecting(
        graph.graph(),
        petgraph::graph::NodeIndex::new(from),
        petgraph::graph::NodeIndex::new(to),
        None,
    )
}

/// Codes of `diags`, sorted.
pub(crate) fn codes(diags: &[lightsout_spec::Diagnostic]) -> Vec<String> {
    let mut c: Vec<String> = diags.iter().map(|d| d.code.clone()).collect();
    c.sort();
    c
}
