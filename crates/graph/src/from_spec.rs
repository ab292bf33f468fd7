//! Turning a parsed [`Spec`] into a [`TaskList`], and pairing a task list with its spec.

use crate::task::{Edge, EdgeKind, RequirementRef, TaskEntry, TaskFormat, TaskList};
use lightsout_spec::{DeltaOp, Spec};
use std::collections::HashMap;

impl TaskList {
    /// The tasks of `spec`: its `## Tasks` section when the author wrote one, otherwise one
    /// task per requirement (id = requirement id, `Depends on:` lines as explicit edges).
    ///
    /// Requirements removed by an OpenSpec change delta get no task. Estimates and `Touches:`
    /// of a requirement go to the tasks that trace to it: each of the `n` tasks tracing a
    /// requirement gets `1/n` of its estimate, and all of its globs.
    pub fn from_spec(spec: &Spec) -> TaskList {
        let spec_id = spec.meta.id.clone();
        let mut list = if spec.tasks.is_empty() {
            let mut list = TaskList::new(&spec_id, TaskFormat::Requirements);
            for r in live_requirements(spec) {
                let mut t = TaskEntry::new(&spec_id, &r.id, &r.title);
                t.requirements = vec![r.id.clone()];
                t.depends_on.clone_from(&r.depends_on);
                t.touches.clone_from(&r.touches);
                t.estimate_hours = r.estimate_hours;
                t.span = r.span;
                list.tasks.push(t);
            }
            list
        } else {
            let mut list = TaskList::new(&spec_id, TaskFormat::Lightsout);
            for item in &spec.tasks {
                let mut t = TaskEntry::new(&spec_id, &item.id, &item.title);
                t.requirements.clone_from(&item.requirements);
                t.depends_on.clone_from(&item.depends_on);
                t.done = item.done;
                t.span = item.span;
                list.tasks.push(t);
            }
            list
        };
        list.path.clone_from(&spec.path);
        list.kind = spec.meta.kind;
        list.depends_on_specs.clone_from(&spec.meta.depends_on);
        let requirements = requirement_refs(spec);
        if list.format == TaskFormat::Requirements {
            // The Depends on: lines are already task edges; keep the refs for coverage only.
            list.requirements = Some(
                requirements
                    .into_iter()
                    .map(|mut r| {
                        r.depends_on.clear();
                        r
                    })
                    .collect(),
            );
        } else {
            list.requirements = Some(requirements);
            list.inherit_from_requirements();
        }
        for t in &mut list.tasks {
            t.kind = list.kind;
            t.path.clone_from(&list.path);
        }
        list
    }

    /// Pairs a task list read from a file (Kiro, Spec Kit, OpenSpec `tasks.md`) with the
    /// spec(s) it breaks down: the list takes the spec's kind, front-matter `depends_on` and
    /// requirements (for the coverage checks and requirement edges), and its tasks inherit
    /// `Touches:` and estimates from the requirements they trace to.
    ///
    /// Several specs can be given for an OpenSpec change, whose delta specs all belong to
    /// one `tasks.md`; the first spec's kind and `depends_on` are used.
    #[must_use]
    pub fn with_specs(mut self, specs: &[&Spec]) -> TaskList {
        let Some(first) = specs.first() else {
            return self;
        };
        self.kind = first.meta.kind;
        self.depends_on_specs.clone_from(&first.meta.depends_on);
        let mut reqs = Vec::new();
        for s in specs {
            reqs.extend(requirement_refs(s));
        }
        self.requirements = Some(reqs);
        self.inherit_from_requirements();
        for t in &mut self.tasks {
            t.kind = self.kind;
        }
        self
    }

    fn inherit_from_requirements(&mut self) {
        let Some(reqs) = &self.requirements else {
            return;
        };
        let mut tracing: HashMap<&str, usize> = HashMap::new();
        for t in &self.tasks {
            for r in reqs {
                if t.requirements
                    .iter()
                    .any(|x| crate::graph::trace_matches(&r.id, x))
                {
                    *tracing.entry(r.id.as_str()).or_default() += 1;
                }
            }
        }
        for t in &mut self.tasks {
            let mut hours = t.estimate_hours;
            for r in reqs {
                if !t
                    .requirements
                    .iter()
                    .any(|x| crate::graph::trace_matches(&r.id, x))
                {
                    continue;
                }
                for g in &r.touches {
                    if !t.touches.contains(g) {
                        t.touches.push(g.clone());
                    }
                }
                if t.estimate_hours.is_none()
                    && let Some(h) = r.estimate_hours
                {
                    let n = tracing.get(r.id.as_str()).copied().unwrap_or(1).max(1);
                    *hours.get_or_insert(0.0) += h / n as f64;
                }
            }
            t.estimate_hours = hours;
        }
    }

    /// Adds an edge between two local ids of this list.
    pub(crate) fn edge(&mut self, from: &str, to: &str, kind: EdgeKind) {
        self.edges.push(Edge {
            from: from.to_owned(),
            to: to.to_owned(),
            kind,
        });
    }
}

fn live_requirements(spec: &Spec) -> impl Iterator<Item = &lightsout_spec::Requirement> {
    spec.requirements
        .iter()
        .filter(|r| r.delta != Some(DeltaOp::Removed))
}

fn requirement_refs(spec: &Spec) -> Vec<RequirementRef> {
    live_requirements(spec)
        .map(|r| RequirementRef {
            id: r.id.clone(),
            depends_on: r.depends_on.clone(),
            touches: r.touches.clone(),
            estimate_hours: r.estimate_hours,
            path: spec.path.clone(),
            span: r.span,
        })
        .collect()
}
