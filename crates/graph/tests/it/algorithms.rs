//! Waves, critical path, ready set, impact, transitive reduction, and the renderings.

use crate::{at, build, ids};
use lightsout_graph::{Impact, PlanReport, TaskEntry, TaskFormat, TaskList, WeightUnit};

fn diamond() -> TaskList {
    // A → B → D, A → C → D, A → D (redundant), E alone.
    let mut l = TaskList::new("s", TaskFormat::TaskMaster);
    let mk = |id: &str, deps: &[&str], req: &str, h: Option<f64>| {
        let mut t = TaskEntry::new("s", id, format!("task {id}"));
        t.depends_on = deps.iter().map(|d| (*d).to_owned()).collect();
        t.requirements = vec![req.to_owned()];
        t.estimate_hours = h;
        t
    };
    l.tasks = vec![
        mk("A", &[], "R1", Some(1.0)),
        mk("B", &["A"], "R2", Some(5.0)),
        mk("C", &["A"], "R3", Some(1.0)),
        mk("D", &["B", "C", "A"], "R4", Some(1.0)),
        mk("E", &[], "R5", Some(2.0)),
    ];
    l
}

#[test]
fn waves_critical_path_and_ready_set() {
    let (g, diags) = build(vec![diamond()]);
    assert!(diags.is_empty(), "{diags:#?}");
    let waves: Vec<Vec<String>> = g.waves().unwrap().iter().map(|w| ids(&g, w)).collect();
    assert_eq!(waves, [vec!["A", "E"], vec!["B", "C"], vec!["D"]]);
    let cp = g.critical_path().unwrap();
    assert_eq!(ids(&g, &cp.tasks), ["A", "B", "D"]);
    assert_eq!(cp.length, 7.0);
    assert_eq!(cp.unit, WeightUnit::Hours);
    assert_eq!(ids(&g, &g.ready(&Default::default())), ["A", "E"]);
    let done = [at(&g, "A")].into();
    assert_eq!(ids(&g, &g.ready(&done)), ["B", "C", "E"]);
    let done = [at(&g, "A"), at(&g, "B")].into();
    assert_eq!(ids(&g, &g.ready(&done)), ["C", "E"]);
}

#[test]
fn unit_weights_without_estimates() {
    let mut l = diamond();
    for t in &mut l.tasks {
        t.estimate_hours = None;
    }
    let (g, _) = build(vec![l]);
    let cp = g.critical_path().unwrap();
    assert_eq!(cp.unit, WeightUnit::Tasks);
    assert_eq!(cp.length, 3.0);
    assert_eq!(ids(&g, &cp.tasks), ["A", "B", "D"]);
}

#[test]
fn impact_lists_direct_then_downstream_tasks() {
    let (g, _) = build(vec![diamond()]);
    let imp = g.impact(&["R2".to_owned()]);
    assert_eq!(imp.len(), 2);
    assert_eq!(
        imp[0],
        Impact::Direct {
            task: at(&g, "B"),
            requirement: "R2".into()
        }
    );
    assert_eq!(
        imp[1],
        Impact::Downstream {
            task: at(&g, "D"),
            via: at(&g, "B")
        }
    );
    // Qualified ids only match their spec.
    assert_eq!(g.impact(&["other#R2".to_owned()]), []);
    assert_eq!(g.impact(&["s#R1".to_owned()]).len(), 4);
}

#[test]
fn transitive_reduction_drops_only_implied_edges() {
    let (g, _) = build(vec![diamond()]);
    assert_eq!(g.edge_count(), 5);
    let red = g.transitive_reduction().unwrap();
    let (a, b, c, d) = (at(&g, "A"), at(&g, "B"), at(&g, "C"), at(&g, "D"));
    assert_eq!(red, [(a, b), (a, c), (b, d), (c, d)]);
}

#[test]
fn plan_json_round_trips_and_renderings_name_every_task() {
    let (g, diags) = build(vec![diamond()]);
    let plan = g.plan(&[at(&g, "A")].into(), diags);
    let json = serde_json::to_string(&plan).unwrap();
    let back: PlanReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, plan);
    assert_eq!(plan.ready, ["s#B", "s#C", "s#E"]);
    assert_eq!(plan.done, ["s#A"]);
    assert_eq!(plan.tasks[at(&g, "D")].depends_on, ["s#A", "s#B", "s#C"]);

    let human = lightsout_graph::render_human(&plan);
    assert!(
        human.contains("critical path (7.0 h): A → B → D"),
        "{human}"
    );
    assert!(human.contains("ready now (3): B, C, E"), "{human}");
    assert!(human.contains("wave 3 (1 task(s))"), "{human}");

    let dot = lightsout_graph::render_dot(&g, &plan);
    assert!(dot.starts_with("digraph plan {"));
    assert_eq!(dot.matches(" -> ").count(), 4, "reduced edges only:\n{dot}");
    assert!(dot.contains("\"s#A\" -> \"s#B\" [color=red]"));

    let mermaid = lightsout_graph::render_mermaid(&g, &plan);
    assert!(mermaid.starts_with("flowchart LR"));
    assert_eq!(mermaid.matches(" --> ").count(), 4);
    assert!(mermaid.contains("class n0,n1,n3 critical"), "{mermaid}");
}

#[test]
fn changed_requirements_and_the_impact_report() {
    let old_src = "---\nid: s\ntitle: S\nkind: feature\nversion: 1\n---\n## Behaviour\n### REQ-1: A\nThe system SHALL a.\n\n### REQ-2: B\nThe system SHALL b.\nDepends on: REQ-1\n\n### REQ-3: C\nThe system SHALL c.\n";
    let new_src = "---\nid: s\ntitle: S\nkind: feature\nversion: 2\n---\n## Behaviour\n### REQ-1: A\nThe system SHALL a, quickly.\n\n### REQ-2: B\nThe system SHALL b.\nDepends on: REQ-1\n";
    let (old, _) = lightsout_spec::parse(old_src.as_bytes(), None, None);
    let (new, _) = lightsout_spec::parse(new_src.as_bytes(), None, None);
    let changed = lightsout_graph::changed_requirements(&old, &new);
    assert_eq!(changed, ["s#REQ-1", "s#REQ-3"]);
    let (og, _) = lightsout_graph::TaskGraph::from_specs(&[old], &Default::default());
    let (ng, _) = lightsout_graph::TaskGraph::from_specs(&[new], &Default::default());
    let report = lightsout_graph::impact_report(&og, &ng, &changed);
    let tasks: Vec<&str> = report.tasks.iter().map(|t| t.task.as_str()).collect();
    assert_eq!(tasks, ["s#REQ-1", "s#REQ-2"]);
    assert_eq!(report.tasks[1].via.as_deref(), Some("s#REQ-1"));
    assert_eq!(report.removed, ["s#REQ-3"]);
}
