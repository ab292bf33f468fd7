//! The run plan as journaled: the tasks a run works through, in order, with dependencies.
//!
//! Its checks (ids, dependencies, no cycle) live with the scheduler in `lightsout-factory`
//! (`PlanCheck::validate`); this crate only records and replays a plan.

pub use lightsout_core::{Task, valid_task_id};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An ordered set of tasks with dependencies.
///
/// Invariants (checked by the factory's `PlanCheck::validate` before a run journals it): ids
/// are unique and valid git ref components, every dependency names a task of the plan, and
/// the dependencies form no cycle.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Plan {
    /// Tasks in plan order.
    pub tasks: Vec<Task>,
}

impl Plan {
    /// Index of the task with `id`.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.tasks.iter().position(|t| t.id == id)
    }

    /// Dependency edges as `(dependency index, dependent index)`; a dependency that names no
    /// task of the plan gives no edge.
    pub fn edges(&self) -> Vec<(usize, usize)> {
        let idx: BTreeMap<&str, usize> = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.as_str(), i))
            .collect();
        let mut e = Vec::new();
        for (i, t) in self.tasks.iter().enumerate() {
            for d in &t.depends_on {
                if let Some(&j) = idx.get(d.as_str()) {
                    e.push((j, i));
                }
            }
        }
        e
    }
}
