//! Waves and a layered (Sugiyama-style) layout of the task graph, for the inline SVG drawing.
//!
//! Columns are waves: a task sits one column right of its latest dependency. Within a column, tasks
//! are ordered by the barycenter of their dependencies' rows (one left-to-right sweep), which removes
//! most edge crossings in the plans the factory makes. Source of the method: Sugiyama, Tagawa and Toda,
//! "Methods for Visual Understanding of Hierarchical System Structures", IEEE SMC 11 (1981).

use std::collections::{BTreeSet, HashMap};

use crate::model::TaskOutcome;

/// Node width in SVG user units (px).
pub(super) const NODE_W: u64 = 200;
/// Node height in px.
pub(super) const NODE_H: u64 = 48;
/// Horizontal gap between columns in px.
const COL_GAP: u64 = 72;
/// Vertical gap between rows in px.
const ROW_GAP: u64 = 14;
/// Margin around the drawing in px.
const MARGIN: u64 = 16;
/// Height of the "wave N" column headers in px.
pub(super) const HEADER: u64 = 22;

/// Computes each task's wave from `depends_on`, 1-based (as `lightsout plan` prints them), in input
/// order.
///
/// A task with no known dependency is in wave 1; any other task is one wave after its latest
/// dependency (longest-path layering, so a wave's tasks can all run at once). Dependencies on IDs absent
/// from `tasks` and on the task itself are ignored. Tasks on a dependency cycle, and tasks that depend on
/// them, cannot be layered and all go into one wave after the last layered one. When two tasks share
/// an ID, references resolve to the first. Runs in O(tasks + dependencies).
pub fn compute_waves(tasks: &[TaskOutcome]) -> Vec<u32> {
    let index = id_index(tasks);
    let preds = predecessors(tasks, &index);
    let n = tasks.len();
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indegree = vec![0usize; n];
    for (v, ps) in preds.iter().enumerate() {
        indegree[v] = ps.len();
        for &p in ps {
            succs[p].push(v);
        }
    }
    let mut wave: Vec<Option<u32>> = vec![None; n];
    let mut queue: Vec<usize> = (0..n).filter(|&v| indegree[v] == 0).collect();
    let mut head = 0;
    for &v in &queue {
        wave[v] = Some(1);
    }
    while head < queue.len() {
        let v = queue[head];
        head += 1;
        let wv = wave[v].unwrap_or(1);
        for &s in &succs[v] {
            let next = wv.saturating_add(1);
            wave[s] = Some(wave[s].map_or(next, |w| w.max(next)));
            indegree[s] -= 1;
            if indegree[s] == 0 {
                queue.push(s);
            }
        }
    }
    // Every node still with indegree > 0 is on or behind a cycle.
    let last = (0..n)
        .filter(|&v| indegree[v] == 0)
        .filter_map(|v| wave[v])
        .max();
    let cyclic_wave = last.map_or(1, |w| w.saturating_add(1));
    (0..n)
        .map(|v| {
            if indegree[v] == 0 {
                wave[v].unwrap_or(1)
            } else {
                cyclic_wave
            }
        })
        .collect()
}

/// The waves the drawing uses: the scheduler's own when every task carries one, else
/// [`compute_waves`].
pub(super) fn effective_waves(tasks: &[TaskOutcome]) -> Vec<u32> {
    let given: Option<Vec<u32>> = tasks.iter().map(|t| t.wave).collect();
    given.unwrap_or_else(|| compute_waves(tasks))
}

/// A placed node: the task's index in the report and its top-left corner in px.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Node {
    pub(super) task: usize,
    pub(super) x: u64,
    pub(super) y: u64,
}

/// A drawn edge from a dependency to its dependant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Edge {
    /// Index of the dependency in the report's task list.
    pub(super) from: usize,
    /// Index of the dependant.
    pub(super) to: usize,
    /// SVG path data (`M x y C ...`), integers only.
    pub(super) d: String,
    /// True when the edge does not go left to right (inconsistent waves or a cycle).
    pub(super) back: bool,
}

/// The whole drawing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Layout {
    /// One node per task, in task order.
    pub(super) nodes: Vec<Node>,
    /// One edge per distinct known dependency.
    pub(super) edges: Vec<Edge>,
    /// Column headers: the wave number and the column's left x in px.
    pub(super) columns: Vec<(u32, u64)>,
    /// Drawing width in px.
    pub(super) width: u64,
    /// Drawing height in px.
    pub(super) height: u64,
}

/// Lays the task graph out in columns by wave (see the module docs).
pub(super) fn layout(tasks: &[TaskOutcome]) -> Layout {
    let waves = effective_waves(tasks);
    let distinct: BTreeSet<u32> = waves.iter().copied().collect();
    let col_of: HashMap<u32, usize> = distinct.iter().enumerate().map(|(c, &w)| (w, c)).collect();
    let cols: Vec<usize> = waves.iter().map(|w| col_of[w]).collect();
    let index = id_index(tasks);
    let preds = predecessors(tasks, &index);

    // Row order within each column: barycenter of already-placed predecessors, then input order.
    let mut row = vec![0usize; tasks.len()];
    let mut by_col: Vec<Vec<usize>> = vec![Vec::new(); distinct.len()];
    for (t, &c) in cols.iter().enumerate() {
        by_col[c].push(t);
    }
    for (c, members) in by_col.iter_mut().enumerate() {
        let key = |t: usize| -> f64 {
            let placed: Vec<f64> = preds[t]
                .iter()
                .filter(|&&p| cols[p] < c)
                .map(|&p| row[p] as f64)
                .collect();
            if placed.is_empty() {
                f64::INFINITY
            } else {
                placed.iter().sum::<f64>() / placed.len() as f64
            }
        };
        let mut keyed: Vec<(f64, usize)> = members.iter().map(|&t| (key(t), t)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *members = keyed.into_iter().map(|(_, t)| t).collect();
        for (r, &t) in members.iter().enumerate() {
            row[t] = r;
        }
    }

    let col_x = |c: usize| MARGIN + c as u64 * (NODE_W + COL_GAP);
    let row_y = |r: usize| MARGIN + HEADER + r as u64 * (NODE_H + ROW_GAP);
    let nodes: Vec<Node> = (0..tasks.len())
        .map(|t| Node {
            task: t,
            x: col_x(cols[t]),
            y: row_y(row[t]),
        })
        .collect();

    let mut edges = Vec::new();
    for (to, ps) in preds.iter().enumerate() {
        for &from in ps {
            let (a, b) = (&nodes[from], &nodes[to]);
            let forward = cols[from] < cols[to];
            let d = if forward {
                let (x1, y1) = (a.x + NODE_W, a.y + NODE_H / 2);
                let (x2, y2) = (b.x, b.y + NODE_H / 2);
                let mid = COL_GAP / 2;
                format!(
                    "M {x1} {y1} C {} {y1} {} {y2} {x2} {y2}",
                    x1 + mid,
                    x2.saturating_sub(mid)
                )
            } else {
                // Same or earlier column: loop out to the right of both nodes and back in.
                let (x1, y1) = (a.x + NODE_W, a.y + NODE_H / 2);
                let (x2, y2) = (b.x + NODE_W, b.y + NODE_H / 2);
                let bulge = x1.max(x2) + COL_GAP / 2;
                format!("M {x1} {y1} C {bulge} {y1} {bulge} {y2} {x2} {y2}")
            };
            edges.push(Edge {
                from,
                to,
                d,
                back: !forward,
            });
        }
    }

    let rows = by_col.iter().map(Vec::len).max().unwrap_or(0);
    let width = if distinct.is_empty() {
        2 * MARGIN
    } else {
        col_x(distinct.len() - 1) + NODE_W + COL_GAP / 2 + MARGIN
    };
    let height = if rows == 0 {
        2 * MARGIN + HEADER
    } else {
        row_y(rows - 1) + NODE_H + MARGIN
    };
    let columns = distinct
        .iter()
        .enumerate()
        .map(|(c, &w)| (w, col_x(c)))
        .collect();
    Layout {
        nodes,
        edges,
        columns,
        width,
        height,
    }
}

/// Maps each task ID to the index of its first occurrence.
fn id_index(tasks: &[TaskOutcome]) -> HashMap<&str, usize> {
    let mut index = HashMap::with_capacity(tasks.len());
    for (i, t) in tasks.iter().enumerate() {
        index.entry(t.id.as_str()).or_insert(i);
    }
    index
}

/// Known, distinct, non-self predecessors of each task.
fn predecessors(tasks: &[TaskOutcome], index: &HashMap<&str, usize>) -> Vec<Vec<usize>> {
    tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut ps: Vec<usize> = t
                .depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .filter(|&p| p != i)
                .collect();
            ps.sort_unstable();
            ps.dedup();
            ps
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::{AgentLabel, TaskStatus};
    use proptest::prelude::*;

    pub(crate) fn task(id: &str, deps: &[&str]) -> TaskOutcome {
        TaskOutcome {
            id: id.into(),
            title: format!("task {id}"),
            requirements: vec![],
            agent: AgentLabel::replay("replay", "t"),
            attempts: 1,
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: 0.0,
            wall_ms: 0,
            merge_commit: None,
            history: Vec::new(),
            status: TaskStatus::Merged,
            depends_on: deps.iter().map(|d| (*d).to_string()).collect(),
            wave: None,
        }
    }

    #[test]
    fn diamond_has_three_waves() {
        let tasks = [
            task("T1", &[]),
            task("T2", &["T1"]),
            task("T3", &["T1"]),
            task("T4", &["T2", "T3"]),
        ];
        assert_eq!(compute_waves(&tasks), vec![1, 2, 2, 3]);
    }

    #[test]
    fn longest_path_decides_the_wave() {
        let tasks = [
            task("A", &[]),
            task("B", &["A"]),
            task("C", &["B"]),
            task("D", &["A", "C"]),
        ];
        assert_eq!(compute_waves(&tasks), vec![1, 2, 3, 4]);
    }

    #[test]
    fn dangling_self_and_cyclic_dependencies_do_not_panic() {
        let tasks = [
            task("A", &["missing", "A"]),
            task("B", &["C"]),
            task("C", &["B"]),
            task("D", &["C"]),
        ];
        assert_eq!(compute_waves(&tasks), vec![1, 2, 2, 2]);
        let l = layout(&tasks);
        assert_eq!(l.nodes.len(), 4);
        assert!(l.edges.iter().any(|e| e.back));
    }

    #[test]
    fn scheduler_waves_win_when_all_present() {
        let mut tasks = vec![task("A", &[]), task("B", &["A"])];
        tasks[0].wave = Some(1);
        tasks[1].wave = Some(4);
        let l = layout(&tasks);
        assert_eq!(l.columns, vec![(1, MARGIN), (4, MARGIN + NODE_W + COL_GAP)]);
    }

    #[test]
    fn empty_graph_has_a_small_canvas() {
        let l = layout(&[]);
        assert!(l.nodes.is_empty() && l.edges.is_empty());
        assert_eq!((l.width, l.height), (2 * MARGIN, 2 * MARGIN + HEADER));
    }

    #[test]
    fn barycenter_keeps_children_beside_parents() {
        // Without reordering, C (child of B) would sit in row 0 beside A.
        let tasks = [
            task("A", &[]),
            task("B", &[]),
            task("C", &["B"]),
            task("D", &["A"]),
        ];
        let l = layout(&tasks);
        assert_eq!(l.nodes[3].y, l.nodes[0].y, "D beside A");
        assert_eq!(l.nodes[2].y, l.nodes[1].y, "C beside B");
    }

    fn arb_tasks() -> impl Strategy<Value = Vec<TaskOutcome>> {
        (1usize..24).prop_flat_map(|n| {
            proptest::collection::vec(proptest::collection::vec(0..n + 2, 0..4), n).prop_map(
                move |deps| {
                    deps.iter()
                        .enumerate()
                        .map(|(i, ds)| {
                            let names: Vec<String> = ds.iter().map(|d| format!("T{d}")).collect();
                            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                            task(&format!("T{i}"), &refs)
                        })
                        .collect()
                },
            )
        })
    }

    proptest! {
        #[test]
        fn acyclic_edges_go_forward(tasks in arb_tasks()) {
            // Keep only edges to lower indices: a DAG.
            let dag: Vec<TaskOutcome> = tasks
                .into_iter()
                .enumerate()
                .map(|(i, mut t)| {
                    t.depends_on.retain(|d| d[1..].parse::<usize>().is_ok_and(|j| j < i));
                    t
                })
                .collect();
            let waves = compute_waves(&dag);
            for (i, t) in dag.iter().enumerate() {
                for d in &t.depends_on {
                    let j: usize = d[1..].parse().unwrap();
                    prop_assert!(waves[j] < waves[i]);
                }
            }
            let l = layout(&dag);
            prop_assert!(l.edges.iter().all(|e| !e.back));
        }

        #[test]
        fn nodes_never_overlap_and_fit_the_canvas(tasks in arb_tasks()) {
            let l = layout(&tasks);
            prop_assert_eq!(l.nodes.len(), tasks.len());
            for (i, a) in l.nodes.iter().enumerate() {
                prop_assert!(a.x + NODE_W <= l.width && a.y + NODE_H <= l.height);
                for b in &l.nodes[i + 1..] {
                    prop_assert!(a.x != b.x || a.y != b.y);
                }
            }
        }
    }
}
