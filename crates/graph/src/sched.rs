//! The scheduler core: a ready set over a task DAG, ordered by critical-path priority.
//!
//! This is list scheduling with the HLFET rule ("highest level first with estimated times",
//! Adam, Chandy and Dickson, CACM 1974): a task's priority is its *bottom level*, the
//! longest weighted path from it to any sink, its own weight included. Whenever an agent is
//! free, the ready task with the highest bottom level starts (ties: lower index first, so the
//! order is deterministic). Graham's bound guarantees a makespan under
//! `total/N + critical path`; on typical graphs HLFET lands within a few per cent of
//! `max(critical path, total/N)` (see `benches/factory.rs` for measured figures).
//!
//! The same [`Scheduler`] drives the real run loop (`crate::Factory`) and the simulation
//! ([`simulate`]) the benchmark uses.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A cycle was found; the payload is one task index on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleAt(pub usize);

#[derive(Debug, Clone, Copy, PartialEq)]
struct Ready {
    prio: f64,
    idx: usize,
}

impl Eq for Ready {}

impl Ord for Ready {
    fn cmp(&self, other: &Self) -> Ordering {
        self.prio
            .total_cmp(&other.prio)
            .then_with(|| other.idx.cmp(&self.idx))
    }
}

impl PartialOrd for Ready {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Where a task is, from the scheduler's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Some dependency is not done yet.
    Waiting,
    /// All dependencies are done; not started.
    Ready,
    /// Handed out by [`Scheduler::pop_ready`], not yet completed or failed.
    Started,
    /// Completed (merged).
    Done,
    /// Failed, or blocked by a failed dependency.
    Failed,
}

/// The ready set of a task DAG.
///
/// Invariants: a task is handed out by [`pop_ready`](Self::pop_ready) at most once, and only
/// after every dependency was [`complete`](Self::complete)d; a failed task's transitive
/// dependents are never handed out.
#[derive(Debug, Clone)]
pub struct Scheduler {
    deps_left: Vec<u32>,
    dependents: Vec<Vec<u32>>,
    prio: Vec<f64>,
    slot: Vec<Slot>,
    ready: BinaryHeap<Ready>,
}

impl Scheduler {
    /// Builds the scheduler for tasks `0..weights.len()` with `edges` as `(dependency,
    /// dependent)` pairs. Weights are estimated durations in any unit (negative and NaN
    /// weights count as 0). Duplicate edges are ignored.
    ///
    /// # Errors
    /// [`CycleAt`] when the edges form a cycle, or an edge names a task out of range (the
    /// payload is then that index).
    pub fn new(weights: &[f64], edges: &[(usize, usize)]) -> Result<Self, CycleAt> {
        let n = weights.len();
        let mut dependents: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut deps_left = vec![0u32; n];
        for &(a, b) in edges {
            if a >= n || b >= n {
                return Err(CycleAt(a.max(b)));
            }
            if a == b {
                return Err(CycleAt(a));
            }
            dependents[a].push(b as u32);
        }
        for d in &mut dependents {
            d.sort_unstable();
            d.dedup();
        }
        for d in &dependents {
            for &b in d {
                deps_left[b as usize] += 1;
            }
        }
        // Kahn's algorithm for a topological order, then bottom levels in reverse.
        let mut indeg = deps_left.clone();
        let mut order = Vec::with_capacity(n);
        let mut stack: Vec<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
        while let Some(i) = stack.pop() {
            order.push(i);
            for &b in &dependents[i] {
                indeg[b as usize] -= 1;
                if indeg[b as usize] == 0 {
                    stack.push(b as usize);
                }
            }
        }
        if order.len() != n {
            let at = (0..n).find(|&i| indeg[i] > 0).unwrap_or(0);
            return Err(CycleAt(at));
        }
        let w = |i: usize| {
            let x = weights[i];
            if x.is_finite() && x > 0.0 { x } else { 0.0 }
        };
        let mut prio = vec![0.0; n];
        for &i in order.iter().rev() {
            let tail = dependents[i]
                .iter()
                .map(|&b| prio[b as usize])
                .fold(0.0, f64::max);
            prio[i] = w(i) + tail;
        }
        let mut ready = BinaryHeap::new();
        let mut slot = vec![Slot::Waiting; n];
        for i in 0..n {
            if deps_left[i] == 0 {
                slot[i] = Slot::Ready;
                ready.push(Ready {
                    prio: prio[i],
                    idx: i,
                });
            }
        }
        Ok(Scheduler {
            deps_left,
            dependents,
            prio,
            slot,
            ready,
        })
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.slot.len()
    }

    /// True when there are no tasks.
    pub fn is_empty(&self) -> bool {
        self.slot.is_empty()
    }

    /// The bottom level of task `i`: its weight plus the heaviest path below it.
    pub fn priority(&self, i: usize) -> f64 {
        self.prio.get(i).copied().unwrap_or(0.0)
    }

    /// The length of the critical path (the largest bottom level).
    pub fn critical_path(&self) -> f64 {
        self.prio.iter().copied().fold(0.0, f64::max)
    }

    /// Where task `i` is.
    pub fn slot(&self, i: usize) -> Slot {
        self.slot.get(i).copied().unwrap_or(Slot::Failed)
    }

    /// Hands out the ready task with the highest priority, marking it started.
    pub fn pop_ready(&mut self) -> Option<usize> {
        // Entries of tasks taken, completed or failed out of turn are skipped (lazy deletion).
        while let Some(r) = self.ready.pop() {
            if self.slot[r.idx] == Slot::Ready {
                self.slot[r.idx] = Slot::Started;
                return Some(r.idx);
            }
        }
        None
    }

    /// Marks task `i` as started without going through the ready set (used when resuming a
    /// run whose journal says `i` was already under way). Returns false when `i` is not ready.
    pub fn take(&mut self, i: usize) -> bool {
        if self.slot.get(i) != Some(&Slot::Ready) {
            return false;
        }
        self.slot[i] = Slot::Started;
        true
    }

    /// Marks task `i` done and returns the dependents whose last dependency it was (now
    /// ready). Completing a task twice, or a failed or waiting one, does nothing.
    pub fn complete(&mut self, i: usize) -> Vec<usize> {
        match self.slot.get(i) {
            Some(Slot::Started | Slot::Ready) => self.finish(i),
            _ => Vec::new(),
        }
    }

    /// Marks task `i` done whatever its state (not failed), as when resuming a run whose
    /// journal says it merged; returns the dependents that became ready.
    pub fn mark_done(&mut self, i: usize) -> Vec<usize> {
        match self.slot.get(i) {
            Some(Slot::Started | Slot::Ready | Slot::Waiting) => self.finish(i),
            _ => Vec::new(),
        }
    }

    fn finish(&mut self, i: usize) -> Vec<usize> {
        self.slot[i] = Slot::Done;
        let mut woke = Vec::new();
        for k in 0..self.dependents[i].len() {
            let b = self.dependents[i][k] as usize;
            self.deps_left[b] = self.deps_left[b].saturating_sub(1);
            if self.deps_left[b] == 0 && self.slot[b] == Slot::Waiting {
                self.slot[b] = Slot::Ready;
                self.ready.push(Ready {
                    prio: self.prio[b],
                    idx: b,
                });
                woke.push(b);
            }
        }
        woke
    }

    /// Marks task `i` failed and every transitive dependent blocked; returns the blocked
    /// dependents (not `i`), in increasing index order.
    pub fn fail(&mut self, i: usize) -> Vec<usize> {
        if i >= self.slot.len() || matches!(self.slot[i], Slot::Done | Slot::Failed) {
            return Vec::new();
        }
        self.slot[i] = Slot::Failed;
        let mut blocked = Vec::new();
        let mut stack: Vec<usize> = self.dependents[i].iter().map(|&b| b as usize).collect();
        while let Some(b) = stack.pop() {
            if matches!(self.slot[b], Slot::Waiting | Slot::Ready) {
                self.slot[b] = Slot::Failed;
                blocked.push(b);
                stack.extend(self.dependents[b].iter().map(|&c| c as usize));
            }
        }
        blocked.sort_unstable();
        blocked
    }
}

/// Result of [`simulate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimResult {
    /// Time when the last task finished.
    pub makespan: f64,
    /// The critical path (longest weighted chain).
    pub critical_path: f64,
    /// Sum of all weights.
    pub total_work: f64,
    /// `max(critical_path, total_work / agents)`: no schedule can beat it.
    pub lower_bound: f64,
    /// Wall nanoseconds spent inside scheduler calls (`pop_ready`, `complete`), the
    /// scheduler's own overhead, excluding building it.
    pub scheduler_ns: u128,
}

impl SimResult {
    /// `makespan / lower_bound` (1.0 is optimal); 1.0 for an empty graph.
    pub fn ratio(&self) -> f64 {
        if self.lower_bound > 0.0 {
            self.makespan / self.lower_bound
        } else {
            1.0
        }
    }
}

/// Simulates `agents` agents working through the DAG (`durations[i]` known exactly, edges as
/// in [`Scheduler::new`]) with the factory's scheduler, in discrete-event time.
///
/// # Errors
/// [`CycleAt`] when the graph has a cycle.
pub fn simulate(
    durations: &[f64],
    edges: &[(usize, usize)],
    agents: usize,
) -> Result<SimResult, CycleAt> {
    #[derive(PartialEq)]
    struct Finish(f64, usize);
    impl Eq for Finish {}
    impl Ord for Finish {
        fn cmp(&self, o: &Self) -> Ordering {
            o.0.total_cmp(&self.0).then_with(|| o.1.cmp(&self.1))
        }
    }
    impl PartialOrd for Finish {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    let agents = agents.max(1);
    let mut s = Scheduler::new(durations, edges)?;
    let total: f64 = durations
        .iter()
        .map(|&d| if d.is_finite() && d > 0.0 { d } else { 0.0 })
        .sum();
    let cp = s.critical_path();
    let mut running: BinaryHeap<Finish> = BinaryHeap::new();
    let mut now = 0.0f64;
    let mut ns = 0u128;
    loop {
        let t0 = std::time::Instant::now();
        while running.len() < agents {
            let Some(i) = s.pop_ready() else { break };
            let d = durations[i];
            running.push(Finish(
                now + if d.is_finite() && d > 0.0 { d } else { 0.0 },
                i,
            ));
        }
        ns += t0.elapsed().as_nanos();
        let Some(Finish(t, i)) = running.pop() else {
            break;
        };
        now = t;
        let t0 = std::time::Instant::now();
        s.complete(i);
        ns += t0.elapsed().as_nanos();
    }
    Ok(SimResult {
        makespan: now,
        critical_path: cp,
        total_work: total,
        lower_bound: cp.max(total / agents as f64),
        scheduler_ns: ns,
    })
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the weights are small integers: sums are exact
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chain_and_fan() {
        // 0 -> 1 -> 3, 0 -> 2 -> 3
        let mut s =
            Scheduler::new(&[1.0, 5.0, 1.0, 1.0], &[(0, 1), (0, 2), (1, 3), (2, 3)]).unwrap();
        assert_eq!(s.critical_path(), 7.0);
        assert_eq!(s.pop_ready(), Some(0));
        assert_eq!(s.pop_ready(), None);
        assert_eq!(s.complete(0), vec![1, 2]);
        // The heavier branch first.
        assert_eq!(s.pop_ready(), Some(1));
        assert_eq!(s.pop_ready(), Some(2));
        s.complete(2);
        assert_eq!(s.pop_ready(), None);
        s.complete(1);
        assert_eq!(s.pop_ready(), Some(3));
    }

    #[test]
    fn cycle_is_refused() {
        assert!(Scheduler::new(&[1.0, 1.0], &[(0, 1), (1, 0)]).is_err());
        assert!(Scheduler::new(&[1.0], &[(0, 0)]).is_err());
        assert!(Scheduler::new(&[1.0], &[(0, 3)]).is_err());
    }

    #[test]
    fn failure_blocks_transitive_dependents() {
        let mut s = Scheduler::new(&[1.0; 4], &[(0, 1), (1, 2), (0, 3)]).unwrap();
        assert_eq!(s.pop_ready(), Some(0));
        assert_eq!(s.fail(0), vec![1, 2, 3]);
        assert_eq!(s.pop_ready(), None);
        assert_eq!(s.slot(2), Slot::Failed);
    }

    fn dag() -> impl Strategy<Value = (Vec<f64>, Vec<(usize, usize)>)> {
        (1usize..40).prop_flat_map(|n| {
            (
                proptest::collection::vec(0.0f64..10.0, n),
                proptest::collection::vec((0..n, 0..n), 0..(n * 2)),
            )
                .prop_map(|(w, e)| {
                    // Orient every edge from lower to higher index: always a DAG.
                    let edges = e
                        .into_iter()
                        .filter(|(a, b)| a != b)
                        .map(|(a, b)| (a.min(b), a.max(b)))
                        .collect();
                    (w, edges)
                })
        })
    }

    proptest! {
        #[test]
        fn every_task_runs_once_after_its_dependencies((w, e) in dag(), agents in 1usize..6) {
            let mut s = Scheduler::new(&w, &e).unwrap();
            let mut done = vec![false; w.len()];
            let mut order = Vec::new();
            loop {
                let mut batch = Vec::new();
                while batch.len() < agents {
                    match s.pop_ready() { Some(i) => batch.push(i), None => break }
                }
                if batch.is_empty() { break }
                for &i in &batch {
                    for &(a, b) in &e {
                        if b == i { prop_assert!(done[a], "{i} before its dependency {a}"); }
                    }
                }
                for i in batch { done[i] = true; order.push(i); s.complete(i); }
            }
            prop_assert_eq!(order.len(), w.len());
        }

        #[test]
        fn simulated_makespan_respects_both_bounds((w, e) in dag(), agents in 1usize..8) {
            let r = simulate(&w, &e, agents).unwrap();
            prop_assert!(r.makespan + 1e-9 >= r.lower_bound);
            // Graham: list scheduling is never worse than total/N + critical path.
            prop_assert!(r.makespan <= r.total_work / agents as f64 + r.critical_path + 1e-9);
        }
    }
}
