//! Plans: the tasks a run works through, and the [`Planner`] that derives them from specs.

use crate::Error;
pub use lightsout_core::{Task, valid_task_id};
use lightsout_spec::{Spec, StepKeyword};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

pub use lightsout_journal::plan::Plan;

/// The checks of a [`Plan`] (it lives in `lightsout-journal`, which journals it; its checks
/// need this crate's scheduler).
///
/// Invariants checked: ids are unique and valid git ref components, every dependency names a
/// task of the plan, and the dependencies form no cycle.
pub trait PlanCheck {
    /// Checks the plan's invariants.
    ///
    /// # Errors
    /// [`Error::Plan`] naming the first problem found.
    fn validate(&self) -> Result<(), Error>;

    /// The critical-path scheduler over this plan (estimates as weights): the factory's one
    /// cycle check, used by [`PlanCheck::validate`] and by the run loop on a journaled plan.
    ///
    /// # Errors
    /// [`Error::Plan`] naming a task on a dependency cycle.
    fn scheduler(&self) -> Result<crate::sched::Scheduler, Error>;
}

impl PlanCheck for Plan {
    fn validate(&self) -> Result<(), Error> {
        let mut seen = BTreeSet::new();
        for t in &self.tasks {
            if !valid_task_id(&t.id) {
                return Err(Error::Plan(format!(
                    "task id `{}` is not usable in a branch name; use letters, digits, `-`, `_` and `.`",
                    t.id
                )));
            }
            if !seen.insert(t.id.as_str()) {
                return Err(Error::Plan(format!("duplicate task id `{}`", t.id)));
            }
        }
        for t in &self.tasks {
            for d in &t.depends_on {
                if !seen.contains(d.as_str()) {
                    return Err(Error::Plan(format!(
                        "task `{}` depends on `{d}`, which is not in the plan",
                        t.id
                    )));
                }
            }
        }
        self.scheduler()?;
        Ok(())
    }

    fn scheduler(&self) -> Result<crate::sched::Scheduler, Error> {
        let w: Vec<f64> = self.tasks.iter().map(|t| t.estimate_hours).collect();
        crate::sched::Scheduler::new(&w, &self.edges()).map_err(|c| {
            Error::Plan(format!(
                "the task dependencies form a cycle through `{}`",
                self.tasks.get(c.0).map_or("?", |t| t.id.as_str())
            ))
        })
    }
}

/// Turns specs into a plan. The factory calls it once per run.
///
/// The default, [`SpecPlanner`], is deterministic; an LLM planner implements the same trait
/// and its output is held to [`PlanCheck::validate`].
pub trait Planner: Send + Sync {
    /// Plans `specs`.
    ///
    /// # Errors
    /// [`Error::Plan`] when the specs cannot be turned into a valid plan.
    fn plan(&self, specs: &[Spec]) -> Result<Plan, Error>;
}

// `&T`, `Box<T>` and `Arc<T>` of an implementation forward to it (the blanket impls, written once).
macro_rules! forward_planner {
    ($($t:ty),*) => {$(
        impl<T: Planner + ?Sized> Planner for $t {
            fn plan(&self, specs: &[Spec]) -> Result<Plan, Error> {
                (**self).plan(specs)
            }
        }
    )*};
}
forward_planner!(&T, Box<T>, std::sync::Arc<T>);

/// The deterministic planner: the author's `## Tasks` when a spec has them, otherwise one
/// task per requirement with the requirements' `Depends on:` lines as dependencies. The
/// dependencies are those of `lightsout-graph`'s task graph (what `lightsout plan` shows),
/// including the edges a task inherits from the requirements it traces. A task's
/// kind is its (first) requirement's first tag (`@docs`), else `code`.
///
/// Specs with `status: accepted` or `superseded`, and tasks checked done (`- [x]`), are
/// skipped. With several specs, task ids are prefixed with the spec id (`shortener-T1`) so
/// they stay unique, and `depends_on` across specs (front matter) makes every task of the
/// dependent spec wait for every task of the spec it depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpecPlanner;

fn render_requirement(spec: &Spec, id: &str, out: &mut String, criteria: &mut Vec<String>) {
    let Some(r) = spec.requirement(id) else {
        return;
    };
    let _ = writeln!(out, "### {}: {}\n\n{}\n", r.id, r.title, r.body.trim());
    for sc in &r.scenarios {
        let mut c = format!("{} ({}):", sc.name, r.id);
        for st in &sc.steps {
            let kw = match st.keyword {
                StepKeyword::Given => "GIVEN",
                StepKeyword::When => "WHEN",
                StepKeyword::Then => "THEN",
                StepKeyword::And => "AND",
                StepKeyword::But => "BUT",
            };
            let _ = write!(c, " {kw} {};", st.text.trim());
        }
        criteria.push(c.trim_end_matches(';').to_owned());
    }
}

/// The task kind: the first requirement tag (`@docs` → `docs`), else `code`. Kinds pick the
/// agent profile (`[agents.kinds]`); a kind with no profile uses the default agent.
fn kind_of(tags: &[String]) -> String {
    tags.first()
        .map(|t| t.trim_start_matches('@').to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "code".into())
}

/// A spec's task id in the plan: prefixed with the spec id when several specs are planned.
fn plan_id(prefix: bool, spec: &Spec, id: &str) -> String {
    if prefix {
        format!("{}-{id}", spec.meta.id)
    } else {
        id.to_owned()
    }
}

/// The tasks of one spec: one per requirement when it has no `## Tasks`, else its open tasks.
fn spec_tasks(spec: &Spec, prefix: bool) -> Vec<Task> {
    let pid = |id: &str| plan_id(prefix, spec, id);
    let constraints: Vec<String> = spec
        .constraints
        .iter()
        .map(|i| format!("{}: {}", i.id, i.text))
        .collect();
    let anti: Vec<String> = spec
        .anti_spec
        .iter()
        .map(|i| format!("{}: {}", i.id, i.text))
        .collect();
    let mut spec_tasks = Vec::new();
    if spec.tasks.is_empty() {
        for r in &spec.requirements {
            let mut excerpt = String::new();
            let mut criteria = Vec::new();
            render_requirement(spec, &r.id, &mut excerpt, &mut criteria);
            let deps = r
                .depends_on
                .iter()
                .filter(|d| !d.contains('#') && spec.requirement(d).is_some())
                .map(|d| pid(d))
                .collect();
            spec_tasks.push(Task {
                id: pid(&r.id),
                title: r.title.clone(),
                kind: kind_of(&r.tags),
                spec_id: spec.meta.id.clone(),
                requirement_ids: vec![r.id.clone()],
                depends_on: deps,
                estimate_hours: r.estimate_hours.unwrap_or(1.0),
                spec_excerpt: excerpt,
                constraints: constraints.clone(),
                anti_spec: anti.clone(),
                acceptance_criteria: criteria,
            });
        }
    } else {
        let done: BTreeSet<&str> = spec
            .tasks
            .iter()
            .filter(|t| t.done)
            .map(|t| t.id.as_str())
            .collect();
        for t in spec.tasks.iter().filter(|t| !t.done) {
            let mut excerpt = String::new();
            let mut criteria = Vec::new();
            for r in &t.requirements {
                render_requirement(spec, r, &mut excerpt, &mut criteria);
            }
            let estimate = t
                .requirements
                .iter()
                .filter_map(|r| spec.requirement(r).and_then(|r| r.estimate_hours))
                .sum::<f64>();
            let tags: Vec<String> = t
                .requirements
                .iter()
                .filter_map(|r| spec.requirement(r))
                .flat_map(|r| r.tags.iter().cloned())
                .collect();
            spec_tasks.push(Task {
                id: pid(&t.id),
                title: t.title.clone(),
                kind: kind_of(&tags),
                spec_id: spec.meta.id.clone(),
                requirement_ids: t.requirements.clone(),
                depends_on: t
                    .depends_on
                    .iter()
                    .filter(|d| !done.contains(d.as_str()))
                    .map(|d| pid(d))
                    .collect(),
                estimate_hours: if estimate > 0.0 { estimate } else { 1.0 },
                spec_excerpt: excerpt,
                constraints: constraints.clone(),
                anti_spec: anti.clone(),
                acceptance_criteria: criteria,
            });
        }
    }
    spec_tasks
}

/// The dependencies `lightsout plan` shows are the ones the run obeys: the task graph of
/// `lightsout-graph` adds the edges a task inherits from its requirements' `Depends on:`
/// lines (T3 traces REQ-3, which depends on REQ-1, which T1 traces: T3 waits for T1).
fn add_graph_edges(spec: &Spec, prefix: bool, spec_tasks: &mut [Task]) {
    let (graph, _) = lightsout_graph::TaskGraph::from_specs(
        std::slice::from_ref(spec),
        &lightsout_graph::Options::default(),
    );
    let gt = graph.tasks();
    for (u, v, _) in graph.edges() {
        let (from, to) = (
            plan_id(prefix, spec, &gt[u].id),
            plan_id(prefix, spec, &gt[v].id),
        );
        if from != to
            && spec_tasks.iter().any(|t| t.id == from)
            && let Some(t) = spec_tasks.iter_mut().find(|t| t.id == to)
            && !t.depends_on.contains(&from)
        {
            t.depends_on.push(from);
        }
    }
}

impl Planner for SpecPlanner {
    fn plan(&self, specs: &[Spec]) -> Result<Plan, Error> {
        use lightsout_spec::SpecStatus;
        let live: Vec<&Spec> = specs
            .iter()
            .filter(|s| !matches!(s.meta.status, SpecStatus::Accepted | SpecStatus::Superseded))
            .collect();
        let prefix = live.len() > 1;
        let mut tasks = Vec::new();
        let mut by_spec: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for spec in &live {
            let mut spec_tasks = spec_tasks(spec, prefix);
            add_graph_edges(spec, prefix, &mut spec_tasks);
            by_spec.insert(
                spec.meta.id.clone(),
                spec_tasks.iter().map(|t| t.id.clone()).collect(),
            );
            tasks.extend(spec_tasks);
        }
        // Spec-level dependencies: every task of a spec waits for every task of the specs it
        // depends on.
        for spec in &live {
            let upstream: Vec<String> = spec
                .meta
                .depends_on
                .iter()
                .filter_map(|d| by_spec.get(d))
                .flatten()
                .cloned()
                .collect();
            if upstream.is_empty() {
                continue;
            }
            for t in tasks.iter_mut().filter(|t| t.spec_id == spec.meta.id) {
                for u in &upstream {
                    if !t.depends_on.contains(u) {
                        t.depends_on.push(u.clone());
                    }
                }
            }
        }
        let plan = Plan { tasks };
        plan.validate()?;
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The run obeys the dependencies `lightsout plan` shows: a task inherits the edges of
    /// the requirements it traces.
    #[test]
    fn tasks_inherit_their_requirements_dependencies() {
        let text = "---\nid: links\ntitle: Links\nkind: feature\nversion: 1\nstatus: ready\n---\n\
                    ## Intent\nShort links.\n\n## Behaviour\n\
                    ### REQ-1: Create\nThe service SHALL create a link.\n\n\
                    ### REQ-2: Redirect\nDepends on: REQ-1\n\nThe service SHALL redirect.\n\n\
                    ## Tasks\n\
                    - [ ] T1: Store (REQ-1)\n\
                    - [ ] T2: Redirect endpoint (REQ-2)\n";
        let (spec, _) = lightsout_spec::parse(text.as_bytes(), None, None);
        let plan = SpecPlanner.plan(&[spec]).unwrap();
        let t2 = &plan.tasks[plan.index("T2").unwrap()];
        assert_eq!(t2.depends_on, vec!["T1".to_owned()]);
        assert!(plan.tasks[plan.index("T1").unwrap()].depends_on.is_empty());
    }

    #[test]
    fn validate_rejects_cycles_and_dangling() {
        let t = |id: &str, deps: &[&str]| Task {
            id: id.into(),
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
            estimate_hours: 1.0,
            ..Task::default()
        };
        let p = Plan {
            tasks: vec![t("A", &["B"]), t("B", &["A"])],
        };
        assert!(p.validate().unwrap_err().to_string().contains("cycle"));
        let p = Plan {
            tasks: vec![t("A", &["Z"])],
        };
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .contains("not in the plan")
        );
        let p = Plan {
            tasks: vec![t("A", &[]), t("A", &[])],
        };
        assert!(p.validate().unwrap_err().to_string().contains("duplicate"));
    }
}
