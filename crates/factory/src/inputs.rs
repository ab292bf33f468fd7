//! Input keys: what makes a task's work reusable by a later run (Bazel's and Nx's action
//! keys, a content hash of everything the work was built from).
//!
//! A task's *own digest* is a SHA-256 of what the agent was told (the task's id, title, kind,
//! requirement ids and the requirements' text as the spec excerpt, constraints, anti-spec
//! and visible criteria), the ids of the holdout scenarios that judge its requirements (ids
//! only: `S-` + a hash of path and name, never scenario text), the agent profile that serves
//! it and the run's resolved gate policy. Its *key* adds the merged commit of each
//! dependency. Keys are kept in [`INPUTS_FILE`] (`.lightsout/inputs.json`, written
//! atomically after every merge): task id → key, own digest, the commit main received and
//! the run that built it.
//!
//! A new run reuses a task when its own digest and its dependencies' commits give the key
//! kept for it and its commit is still on main; every other task is *directly invalidated*,
//! and the tasks downstream of those are found by `lightsout-graph`'s
//! [`TaskGraph::impact`](lightsout_graph::TaskGraph::impact), the same walk as
//! `lightsout plan --impact`. The scenario ids never leave this module except inside a
//! digest.

use crate::Error;
use crate::journal::write_atomic;
use crate::plan::{Plan, Task};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// File name of the input-key store inside `.lightsout/`.
pub const INPUTS_FILE: &str = "inputs.json";

/// Schema tag of [`INPUTS_FILE`].
pub const INPUTS_SCHEMA: &str = "lightsout-inputs/1";

/// What is kept for one merged task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Built {
    /// The task's key: own digest plus its dependencies' merged commits (64 hex digits).
    pub key: String,
    /// The task's own digest (64 hex digits).
    pub own: String,
    /// The commit main received for it (the squashed task commit).
    pub commit: String,
    /// The run that built it.
    pub run: String,
}

/// The name a task is kept under: `<spec id>#<task id>`, so that specs built in runs of
/// their own (a queue of specs, each planned alone) do not share `T1` or `REQ-1`.
pub fn store_id(task: &Task) -> String {
    format!("{}#{}", task.spec_id, task.id)
}

/// The input-key store: [`store_id`] → [`Built`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Inputs {
    /// Always [`INPUTS_SCHEMA`].
    pub schema: String,
    /// Per task, by [`store_id`].
    pub tasks: BTreeMap<String, Built>,
}

/// `.lightsout/inputs.json` of the repository at `repo`.
pub fn inputs_path(repo: &Path) -> PathBuf {
    repo.join(".lightsout").join(INPUTS_FILE)
}

impl Inputs {
    /// Reads the store at `path`; a missing file is an empty store, and so is a file with
    /// another schema or one that does not parse (everything is rebuilt, never reused on a
    /// guess).
    ///
    /// # Errors
    /// [`Error::Io`] when the file exists but cannot be read.
    pub fn read(path: &Path) -> Result<Self, Error> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(serde_json::from_slice::<Inputs>(&bytes)
                .ok()
                .filter(|i| i.schema == INPUTS_SCHEMA)
                .unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Inputs::default()),
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    /// Writes the store to `path` atomically (temporary file, fsync, rename).
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be written.
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let mut me = self.clone();
        INPUTS_SCHEMA.clone_into(&mut me.schema);
        let bytes = serde_json::to_vec_pretty(&me).map_err(|e| Error::Journal {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        write_atomic(path, &bytes)
    }
}

fn field(h: &mut Sha256, name: &str, value: &str) {
    // Length-prefixed, so no two different inputs hash the same byte stream.
    h.update(name.as_bytes());
    h.update((value.len() as u64).to_le_bytes());
    h.update(value.as_bytes());
}

/// The own digest of `task`: its text as the agent sees it, `scenario_ids` (the holdout
/// scenarios of its requirements, in any order), its agent profile (`profile`, any stable
/// rendering of it) and the run's gate policy (`policy`, any stable rendering). 64 hex
/// digits.
pub fn own_digest(task: &Task, scenario_ids: &[String], profile: &str, policy: &str) -> String {
    let mut h = Sha256::new();
    field(&mut h, "schema", INPUTS_SCHEMA);
    field(&mut h, "id", &task.id);
    field(&mut h, "title", &task.title);
    field(&mut h, "kind", &task.kind);
    field(&mut h, "spec", &task.spec_id);
    for r in &task.requirement_ids {
        field(&mut h, "requirement", r);
    }
    let deps: BTreeSet<&String> = task.depends_on.iter().collect();
    for d in deps {
        field(&mut h, "depends_on", d);
    }
    field(&mut h, "excerpt", &task.spec_excerpt);
    for c in &task.constraints {
        field(&mut h, "constraint", c);
    }
    for a in &task.anti_spec {
        field(&mut h, "anti", a);
    }
    for c in &task.acceptance_criteria {
        field(&mut h, "criterion", c);
    }
    let ids: BTreeSet<&String> = scenario_ids.iter().collect();
    for s in ids {
        field(&mut h, "scenario", s);
    }
    field(&mut h, "profile", profile);
    field(&mut h, "policy", policy);
    hex::encode(h.finalize())
}

/// The key of a task with own digest `own` whose dependencies merged as `deps` (dependency
/// id → its commit on main). 64 hex digits.
pub fn key(own: &str, deps: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    field(&mut h, "own", own);
    for (id, commit) in deps {
        field(&mut h, "dep", id);
        field(&mut h, "commit", commit);
    }
    hex::encode(h.finalize())
}

/// The holdout scenario ids per requirement id in the holdout at `dir` (`*.scenario.md` and
/// `*.feature` files); empty for a holdout without scenario files (an external runner's
/// own format). `None` when scenario files exist but cannot be loaded: nothing can then be
/// reused.
pub fn scenario_ids(dir: &Path) -> Option<BTreeMap<String, Vec<String>>> {
    if !dir.is_dir() {
        return Some(BTreeMap::new());
    }
    let library = lightsout_eval::steps::StepLibrary::builtin();
    let (suite, _) = lightsout_eval::scenario::Suite::load_dir(dir, &library).ok()?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in &suite.scenarios {
        for r in &s.satisfies {
            out.entry(r.clone()).or_default().push(s.id.clone());
        }
    }
    Some(out)
}

/// Why a task is rebuilt, or the earlier build it reuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Reused: its key matches and its commit is on main.
    Unchanged(Built),
    /// Rebuilt, with the reason in words.
    Rebuild(String),
}

/// Decides, for every task of `plan`, whether it is rebuilt or reused.
///
/// `own` gives each task's own digest (a task missing from it is rebuilt), `kept` the store,
/// and `on_main` whether a commit is on main. A task is *directly invalidated* when no key
/// is kept for it, its commit left main, or its own digest or its dependencies' kept
/// commits give another key; every task downstream of a directly invalidated one is rebuilt
/// too (`lightsout_graph::TaskGraph::impact`). `force` rebuilds everything.
pub fn decide(
    plan: &Plan,
    own: &BTreeMap<String, String>,
    kept: &Inputs,
    on_main: &dyn Fn(&str) -> bool,
    force: bool,
) -> BTreeMap<String, Decision> {
    let by_id: BTreeMap<&str, &Task> = plan.tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    let kept_of = |id: &str| by_id.get(id).and_then(|t| kept.tasks.get(&store_id(t)));
    let mut direct: BTreeMap<&str, String> = BTreeMap::new();
    for t in &plan.tasks {
        let why = if force {
            Some("--rebuild".to_owned())
        } else {
            match (own.get(&t.id), kept_of(&t.id)) {
                (None, _) => Some("its inputs could not be read".to_owned()),
                (_, None) => Some("never built".to_owned()),
                (Some(o), Some(b)) if *o != b.own => Some("its inputs changed".to_owned()),
                (Some(o), Some(b)) => {
                    let deps: Option<BTreeMap<String, String>> = t
                        .depends_on
                        .iter()
                        .map(|d| kept_of(d).map(|k| (d.clone(), k.commit.clone())))
                        .collect();
                    if deps.is_none_or(|deps| key(o, &deps) != b.key) {
                        Some("a dependency was built again".to_owned())
                    } else if on_main(&b.commit) {
                        None
                    } else {
                        Some("its commit is no longer on main".to_owned())
                    }
                }
            }
        };
        if let Some(why) = why {
            direct.insert(&t.id, why);
        }
    }
    let downstream = downstream(plan, direct.keys().copied());
    plan.tasks
        .iter()
        .map(|t| {
            let d = if let Some(why) = direct.get(t.id.as_str()) {
                Decision::Rebuild(why.clone())
            } else if let Some(via) = downstream.get(&t.id) {
                Decision::Rebuild(format!("depends on {via}, which is rebuilt"))
            } else {
                match kept_of(&t.id) {
                    Some(b) => Decision::Unchanged(b.clone()),
                    None => Decision::Rebuild("never built".to_owned()),
                }
            };
            (t.id.clone(), d)
        })
        .collect()
}

/// Tasks downstream of `changed` (task ids), each with a nearest invalidated predecessor:
/// the plan as a `lightsout-graph` task graph, asked for its impact.
fn downstream<'a>(plan: &Plan, changed: impl Iterator<Item = &'a str>) -> BTreeMap<String, String> {
    // Each task traces a pseudo-requirement of its own (`<id>~`: no `.` after the id, so
    // no dotted-prefix match joins two tasks), and the changed tasks are named by it.
    const SPEC: &str = "plan";
    let mut list = lightsout_graph::TaskList::new(SPEC, lightsout_graph::TaskFormat::Requirements);
    for t in &plan.tasks {
        let mut g = lightsout_graph::TaskEntry::new(SPEC, t.id.clone(), t.title.clone());
        g.requirements = vec![format!("{}~", t.id)];
        g.depends_on.clone_from(&t.depends_on);
        list.tasks.push(g);
    }
    let (graph, _) =
        lightsout_graph::TaskGraph::build(vec![list], &lightsout_graph::Options::default());
    let changed: Vec<String> = changed.map(|c| format!("{SPEC}#{c}~")).collect();
    let ids = graph.tasks();
    graph
        .impact(&changed)
        .into_iter()
        .filter_map(|i| match i {
            lightsout_graph::Impact::Downstream { task, via } => {
                Some((ids[task].id.clone(), ids[via].id.clone()))
            }
            lightsout_graph::Impact::Direct { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, deps: &[&str]) -> Task {
        Task {
            id: id.into(),
            title: format!("{id} title"),
            requirement_ids: vec![format!("REQ-{id}")],
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
            spec_excerpt: format!("{id} SHALL work"),
            estimate_hours: 1.0,
            ..Task::default()
        }
    }

    /// A -> B -> C, D alone; all built once.
    fn built() -> (Plan, BTreeMap<String, String>, Inputs) {
        let plan = Plan {
            tasks: vec![
                task("A", &[]),
                task("B", &["A"]),
                task("C", &["B"]),
                task("D", &[]),
            ],
        };
        let own: BTreeMap<String, String> = plan
            .tasks
            .iter()
            .map(|t| (t.id.clone(), own_digest(t, &[], "replay", "p")))
            .collect();
        let mut kept = Inputs::default();
        for t in &plan.tasks {
            let deps = t
                .depends_on
                .iter()
                .map(|d| (d.clone(), format!("c-{d}")))
                .collect();
            kept.tasks.insert(
                store_id(t),
                Built {
                    key: key(&own[&t.id], &deps),
                    own: own[&t.id].clone(),
                    commit: format!("c-{}", t.id),
                    run: "r1".into(),
                },
            );
        }
        (plan, own, kept)
    }

    fn rebuilt(d: &BTreeMap<String, Decision>) -> Vec<&str> {
        d.iter()
            .filter(|(_, d)| matches!(d, Decision::Rebuild(_)))
            .map(|(k, _)| k.as_str())
            .collect()
    }

    #[test]
    fn nothing_changed_reuses_everything_and_rebuild_forces_all() {
        let (plan, own, kept) = built();
        let d = decide(&plan, &own, &kept, &|_| true, false);
        assert!(rebuilt(&d).is_empty(), "{d:?}");
        let d = decide(&plan, &own, &kept, &|_| true, true);
        assert_eq!(rebuilt(&d), ["A", "B", "C", "D"]);
    }

    #[test]
    fn an_edit_rebuilds_the_task_and_its_dependents_only() {
        let (mut plan, _, kept) = built();
        plan.tasks[1].spec_excerpt = "B SHALL work differently".into();
        let own: BTreeMap<String, String> = plan
            .tasks
            .iter()
            .map(|t| (t.id.clone(), own_digest(t, &[], "replay", "p")))
            .collect();
        let d = decide(&plan, &own, &kept, &|_| true, false);
        assert_eq!(rebuilt(&d), ["B", "C"]);
        assert_eq!(
            d["C"],
            Decision::Rebuild("depends on B, which is rebuilt".into())
        );
    }

    #[test]
    fn scenario_ids_profile_and_policy_are_inputs_and_order_is_not() {
        let t = task("A", &[]);
        let base = own_digest(&t, &["S-1".into(), "S-2".into()], "replay", "p");
        assert_eq!(
            base,
            own_digest(&t, &["S-2".into(), "S-1".into()], "replay", "p")
        );
        assert_ne!(base, own_digest(&t, &["S-1".into()], "replay", "p"));
        assert_ne!(
            base,
            own_digest(&t, &["S-1".into(), "S-2".into()], "claude", "p")
        );
        assert_ne!(
            base,
            own_digest(&t, &["S-1".into(), "S-2".into()], "replay", "q")
        );
    }

    #[test]
    fn work_no_longer_on_main_or_never_built_is_rebuilt() {
        let (plan, own, mut kept) = built();
        let d = decide(&plan, &own, &kept, &|c| c != "c-A", false);
        assert_eq!(rebuilt(&d), ["A", "B", "C"]);
        kept.tasks.remove(&store_id(&plan.tasks[3]));
        let d = decide(&plan, &own, &kept, &|_| true, false);
        assert_eq!(d["D"], Decision::Rebuild("never built".into()));
        assert_eq!(rebuilt(&d), ["D"]);
    }

    /// The bundled holdout: every requirement's scenarios are found by their opaque ids, and
    /// nothing of their text is in what a digest is made of.
    #[test]
    fn scenario_ids_are_opaque_ids_per_requirement() {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/url-shortener-holdout");
        let ids = scenario_ids(&dir).unwrap();
        assert!(ids.contains_key("REQ-2"), "{ids:?}");
        for (req, list) in &ids {
            assert!(!list.is_empty(), "{req}");
            for id in list {
                assert!(
                    id.starts_with("S-") && id.len() == 10,
                    "{req}: `{id}` is not an opaque id"
                );
            }
        }
        assert_eq!(
            scenario_ids(&dir.join("no-such-dir")),
            Some(BTreeMap::new())
        );
    }

    #[test]
    fn the_store_round_trips_and_a_foreign_file_reuses_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(INPUTS_FILE);
        assert_eq!(Inputs::read(&p).unwrap(), Inputs::default());
        let (_, _, kept) = built();
        kept.write(&p).unwrap();
        let back = Inputs::read(&p).unwrap();
        assert_eq!(back.tasks, kept.tasks);
        std::fs::write(&p, "{\"schema\":\"other\",\"tasks\":{}}").unwrap();
        assert!(Inputs::read(&p).unwrap().tasks.is_empty());
        std::fs::write(&p, "not json").unwrap();
        assert!(Inputs::read(&p).unwrap().tasks.is_empty());
    }
}
