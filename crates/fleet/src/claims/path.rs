//! The critical path of what remains of a run, from the dependencies and estimates the store
//! holds ([`critical_path`]).

use super::{TaskRecord, TaskStatus};
use std::collections::HashMap;

/// The longest chain of unfinished tasks of a run, by estimate: the critical path of what
/// remains (`lightsout_graph::CriticalPath` is the one of a whole plan, before it runs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RemainingPath {
    /// The chain's tasks, first to last.
    pub tasks: Vec<String>,
    /// The sum of their estimates, in milliseconds.
    pub estimate_ms: u64,
    /// The sum of the estimates of every unfinished task, in milliseconds.
    pub remaining_ms: u64,
    /// Unfinished tasks without an estimate (counted as 0 in both sums).
    pub unestimated: Vec<String>,
}

/// The critical path of the tasks of one run that are not done (blocked, ready, claimed or
/// failed: a failed task is work that still stands between the run and its end), following
/// the dependencies between them; a task's weight is its [`TaskRecord::estimate_ms`] (0 when
/// unknown, and listed in [`RemainingPath::unestimated`]). `None` when every task is done, or
/// when no unfinished task has an estimate (there is no path to speak of then).
///
/// Dependencies on done tasks, or on tasks not in `tasks`, are ignored; a cycle (which
/// `enqueue_plan` refuses) is broken where it is first met.
pub fn critical_path(tasks: &[TaskRecord]) -> Option<RemainingPath> {
    let open: Vec<&TaskRecord> = tasks
        .iter()
        .filter(|t| t.status != TaskStatus::Done)
        .collect();
    if open.iter().all(|t| t.estimate_ms.is_none()) {
        return None;
    }
    let index: HashMap<&str, usize> = open
        .iter()
        .enumerate()
        .map(|(i, t)| (t.task.as_str(), i))
        .collect();
    // finish[i]: the longest chain ending at i, and its predecessor on it. Depth-first with
    // an explicit stack, so a long chain cannot overflow the thread's stack.
    let mut finish: Vec<Option<(u64, Option<usize>)>> = vec![None; open.len()];
    let mut on_stack = vec![false; open.len()];
    for root in 0..open.len() {
        let mut stack = vec![root];
        while let Some(&i) = stack.last() {
            if finish[i].is_some() {
                stack.pop();
                continue;
            }
            on_stack[i] = true;
            let deps: Vec<usize> = open[i]
                .deps
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .filter(|&j| !on_stack[j] || finish[j].is_some())
                .collect();
            if let Some(&j) = deps.iter().find(|&&j| finish[j].is_none()) {
                stack.push(j);
                continue;
            }
            let best = deps
                .iter()
                .map(|&j| (finish[j].map_or(0, |f| f.0), Some(j)))
                .max_by_key(|&(len, _)| len)
                .unwrap_or((0, None));
            let own = open[i].estimate_ms.unwrap_or(0);
            finish[i] = Some((best.0.saturating_add(own), best.1));
            on_stack[i] = false;
            stack.pop();
        }
    }
    let (mut at, estimate_ms) = finish
        .iter()
        .enumerate()
        .map(|(i, f)| (i, f.map_or(0, |f| f.0)))
        .max_by_key(|&(i, len)| (len, std::cmp::Reverse(i)))?;
    let mut chain = vec![open[at].task.clone()];
    while let Some(prev) = finish[at].and_then(|f| f.1) {
        chain.push(open[prev].task.clone());
        at = prev;
    }
    chain.reverse();
    Some(RemainingPath {
        tasks: chain,
        estimate_ms,
        remaining_ms: open
            .iter()
            .map(|t| t.estimate_ms.unwrap_or(0))
            .fold(0, u64::saturating_add),
        unestimated: open
            .iter()
            .filter(|t| t.estimate_ms.is_none())
            .map(|t| t.task.clone())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(task: &str, status: TaskStatus, deps: &[&str], est: Option<u64>) -> TaskRecord {
        TaskRecord {
            task: task.into(),
            status,
            worker: None,
            token: 0,
            attempts: 0,
            lease_until_ms: None,
            detail: None,
            deps: deps.iter().map(|d| (*d).to_owned()).collect(),
            estimate_ms: est,
            priority: 0,
        }
    }

    #[test]
    fn the_longest_unfinished_chain_by_estimate() {
        use TaskStatus::{Blocked, Claimed, Done, Ready};
        let t = [
            rec("A", Done, &[], Some(100)),
            rec("B", Claimed, &["A"], Some(10)),
            rec("C", Ready, &["A"], Some(3)),
            rec("D", Blocked, &["B", "C"], Some(5)),
            rec("E", Blocked, &["C"], Some(11)),
            rec("F", Ready, &[], None),
        ];
        let cp = critical_path(&t).unwrap();
        // B→D = 15, C→E = 14, C→D = 8; A is done and does not count.
        assert_eq!(cp.tasks, ["B", "D"]);
        assert_eq!(cp.estimate_ms, 15);
        assert_eq!(cp.remaining_ms, 29);
        assert_eq!(cp.unestimated, ["F"]);
    }

    #[test]
    fn no_path_without_estimates_or_work() {
        let t = [rec("A", TaskStatus::Ready, &[], None)];
        assert_eq!(critical_path(&t), None);
        let t = [rec("A", TaskStatus::Done, &[], Some(1))];
        assert_eq!(critical_path(&t), None);
    }
}
