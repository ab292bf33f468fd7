//! The progress of `lightsout run` on stderr: one live multi-line display on a terminal (an
//! overall bar with the ETA from the critical path, and a line per running task), plain lines
//! otherwise, nothing under `--quiet` or `--format json`.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lightsout_factory::{Event, EventSink, Plan};
use std::collections::{HashMap, HashSet};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The live display (stderr is a terminal).
    Live,
    /// One line per event (stderr is a file or a pipe).
    Lines,
    /// Nothing (`--quiet`, `--format json`).
    Quiet,
}

impl Mode {
    /// The mode for a run printing for people (`human`) unless `quiet`.
    pub(crate) fn pick(human: bool, quiet: bool) -> Self {
        if !human || quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Live
        } else {
            Mode::Lines
        }
    }
}

/// The estimated time to the end of a run: the unfinished part of the critical path (the
/// heaviest chain of unfinished tasks, each weighed by its estimate in hours), times the wall
/// time the finished tasks took per estimated hour. Unknown until a task finished.
#[derive(Debug, Default)]
pub(crate) struct Eta {
    /// Task → (estimate in hours, dependencies).
    tasks: HashMap<String, (f64, Vec<String>)>,
    finished: HashSet<String>,
    started: HashMap<String, Instant>,
    /// Wall time and estimated hours of the finished tasks that started in this process.
    spent: Duration,
    spent_hours: f64,
}

impl Eta {
    /// An estimate over `plan`, with `finished` tasks already done.
    pub(crate) fn new(plan: &Plan, finished: impl IntoIterator<Item = String>) -> Self {
        Eta {
            tasks: plan
                .tasks
                .iter()
                .map(|t| {
                    let w = if t.estimate_hours > 0.0 {
                        t.estimate_hours
                    } else {
                        1.0
                    };
                    (t.id.clone(), (w, t.depends_on.clone()))
                })
                .collect(),
            finished: finished.into_iter().collect(),
            ..Eta::default()
        }
    }

    /// A task's agent started (its first start counts).
    pub(crate) fn start(&mut self, task: &str, at: Instant) {
        self.started.entry(task.to_owned()).or_insert(at);
    }

    /// A task merged, failed or was blocked.
    pub(crate) fn finish(&mut self, task: &str, at: Instant) {
        if !self.finished.insert(task.to_owned()) {
            return;
        }
        if let (Some(s), Some((w, _))) = (self.started.get(task), self.tasks.get(task)) {
            self.spent += at.saturating_duration_since(*s);
            self.spent_hours += w;
        }
    }

    /// The weight, in estimated hours, of the heaviest chain of unfinished tasks.
    pub(crate) fn remaining_hours(&self) -> f64 {
        let mut memo: HashMap<&str, f64> = HashMap::new();
        let mut best = 0.0_f64;
        let mut ids: Vec<&str> = self.tasks.keys().map(String::as_str).collect();
        ids.sort_unstable();
        for id in ids {
            best = best.max(self.chain(id, &mut memo, 0));
        }
        best
    }

    /// The heaviest unfinished chain ending at `id` (depth-bounded: a plan is acyclic, and a
    /// malformed one must not loop).
    fn chain<'a>(&'a self, id: &'a str, memo: &mut HashMap<&'a str, f64>, depth: usize) -> f64 {
        if let Some(v) = memo.get(id) {
            return *v;
        }
        let Some((w, deps)) = self.tasks.get(id) else {
            return 0.0;
        };
        if self.finished.contains(id) || depth > self.tasks.len() {
            return 0.0;
        }
        let before = deps
            .iter()
            .map(|d| self.chain(d, memo, depth + 1))
            .fold(0.0, f64::max);
        let v = before + w;
        memo.insert(id, v);
        v
    }

    /// The time left, once a task finished in this process.
    pub(crate) fn left(&self) -> Option<Duration> {
        (self.spent_hours > 0.0).then(|| {
            self.spent
                .mul_f64((self.remaining_hours() / self.spent_hours).max(0.0))
        })
    }
}

/// Prints `d` as `1h02m`, `3m05s` or `12s`.
fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The run's progress on stderr, fed by the factory's events.
pub(crate) struct Progress {
    mode: Mode,
    repo: PathBuf,
    multi: MultiProgress,
    overall: ProgressBar,
    tasks: Mutex<HashMap<String, ProgressBar>>,
    eta: Mutex<Eta>,
    /// `[run] attempts`: the length of a task's bar.
    attempts: u32,
}

impl Progress {
    /// A display in `mode` for a run of the repository at `repo` (whose journal gives the plan
    /// when the run starts), each task allowed `attempts` attempts.
    pub(crate) fn new(mode: Mode, repo: PathBuf, attempts: u32) -> Self {
        let multi = MultiProgress::with_draw_target(if mode == Mode::Live {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let overall = multi.add(ProgressBar::new(0));
        if let Ok(style) = ProgressStyle::with_template(
            "[{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} tasks  {msg}",
        ) {
            overall.set_style(style.progress_chars("=> "));
        }
        Progress {
            mode,
            repo,
            multi,
            overall,
            tasks: Mutex::new(HashMap::new()),
            eta: Mutex::new(Eta::default()),
            attempts: attempts.max(1),
        }
    }

    /// Prints one line above the live display, or on stderr.
    pub(crate) fn line(&self, s: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Lines => eprintln!("{s}"),
            Mode::Live => {
                let _ = self.multi.println(s);
            }
        }
    }

    /// Clears the live display (before the summary is printed).
    pub(crate) fn finish(&self) {
        for (_, b) in self
            .tasks
            .lock()
            .map(|mut t| t.drain().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            b.finish_and_clear();
        }
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }

    fn task_bar(&self, task: &str) -> ProgressBar {
        let Ok(mut bars) = self.tasks.lock() else {
            return ProgressBar::hidden();
        };
        bars.entry(task.to_owned())
            .or_insert_with(|| {
                // The bar counts attempts used of `[run] attempts`.
                let b = self.multi.add(ProgressBar::new(u64::from(self.attempts)));
                if let Ok(style) = ProgressStyle::with_template(
                    "  {spinner} {prefix:<24} [{bar:10}] {pos}/{len} attempts {elapsed:>4}  {msg}",
                ) {
                    b.set_style(style.progress_chars("=> "));
                }
                b.set_prefix(task.to_owned());
                b.enable_steady_tick(Duration::from_millis(120));
                b
            })
            .clone()
    }

    fn task_done(&self, task: &str) {
        if let Some(b) = self.tasks.lock().ok().and_then(|mut t| t.remove(task)) {
            b.finish_and_clear();
            self.multi.remove(&b);
        }
        self.overall.inc(1);
        if let Ok(mut eta) = self.eta.lock() {
            eta.finish(task, Instant::now());
            self.overall.set_message(match eta.left() {
                Some(d) => format!("ETA {} (critical path)", human_duration(d)),
                None => "ETA after the first task".to_owned(),
            });
        }
    }

    fn started(&self, run_id: &str, tasks: usize, done: usize, resumed: bool) {
        self.overall.set_length(tasks as u64);
        self.overall.set_position(done as u64);
        self.overall.set_message("ETA after the first task");
        if self.mode == Mode::Live {
            self.overall.enable_steady_tick(Duration::from_millis(500));
        }
        let journal = lightsout_factory::run_dir(&self.repo, run_id).join("journal.jsonl");
        if let Ok(entries) = lightsout_factory::journal::read(&journal) {
            let state = lightsout_factory::RunState::replay(&entries);
            let finished = state
                .tasks
                .iter()
                .filter(|t| t.status.is_terminal())
                .map(|t| t.task.id.clone());
            if let Ok(mut eta) = self.eta.lock() {
                *eta = Eta::new(&state.plan(), finished);
            }
        }
        self.line(&format!(
            "{} run {run_id} ({tasks} tasks)",
            if resumed { "resuming" } else { "starting" }
        ));
    }
}

impl EventSink for Progress {
    fn emit(&self, e: &Event) {
        if self.mode == Mode::Quiet {
            return;
        }
        match e {
            Event::RunStarted {
                run_id,
                tasks,
                done,
                resumed,
            } => self.started(run_id, *tasks, *done, *resumed),
            Event::AttemptStarted {
                task,
                attempt,
                agent,
            } => {
                if let Ok(mut eta) = self.eta.lock() {
                    eta.start(task, Instant::now());
                }
                let bar = self.task_bar(task);
                bar.set_position(u64::from(attempt.saturating_sub(1)));
                bar.set_message(format!("attempt {attempt} by {agent}"));
                if self.mode == Mode::Lines {
                    self.line(&format!("  {task}: attempt {attempt} by {agent}"));
                }
            }
            Event::AttemptFinished {
                task,
                attempt,
                passed,
                failed_stage,
                ..
            } => {
                self.task_bar(task).set_position(u64::from(*attempt));
                if !passed {
                    self.line(&format!(
                        "  {task}: attempt {attempt} failed at {}",
                        failed_stage.as_deref().unwrap_or("?")
                    ));
                }
            }
            Event::TaskUnchanged { task, built_by } => {
                // Counted in `RunStarted`'s `done` already: off the critical path, no tick.
                if let Ok(mut eta) = self.eta.lock() {
                    eta.finish(task, Instant::now());
                }
                self.line(&format!(
                    "  {task}: unchanged since run {built_by}, its work is on main"
                ));
            }
            Event::TaskPassed { task } => {
                self.task_bar(task).set_message("passed; waiting to merge");
                if self.mode == Mode::Lines {
                    self.line(&format!("  {task}: passed, queued for merge"));
                }
            }
            Event::Merging { task } => self
                .task_bar(task)
                .set_message("merging (holdout on the merged result)"),
            Event::Merged { task, commit } => {
                self.task_done(task);
                self.line(&format!(
                    "  {task}: merged, main is at {}",
                    &commit[..commit.len().min(10)]
                ));
            }
            Event::MergeReverted { task, .. } => self.line(&format!(
                "  {task}: the merged result regressed; main untouched, back to the agent"
            )),
            Event::ConflictRouted { task, to, files } => self.line(&format!(
                "  {task}: rebase conflict in {}; routed to {to}",
                files.join(", ")
            )),
            Event::TaskFailed { task, reason } => {
                self.task_done(task);
                let first = reason.lines().next().unwrap_or("");
                self.line(&format!("  {task}: FAILED: {first}"));
            }
            Event::TaskBlocked { task, by } => {
                self.task_done(task);
                self.line(&format!("  {task}: blocked by {by}"));
            }
            _ => self.strength(e),
        }
    }
}

impl Progress {
    fn strength(&self, e: &Event) {
        match e {
            Event::StrengthStarted { commit } => {
                self.overall.set_message("measuring the holdout's strength");
                self.line(&format!(
                    "  strength: making mutants of main at {} and judging each with the holdout",
                    &commit[..commit.len().min(10)]
                ));
            }
            Event::StrengthProgress {
                done,
                total,
                killed,
            } => self
                .overall
                .set_message(format!("strength: {done}/{total} mutants, {killed} killed")),
            Event::StrengthMeasured {
                killed,
                total,
                kill_rate,
                lower,
                upper,
            } => self.line(&format!(
                "  strength: {killed} of {total} mutants killed ({:.1}%, Wilson 95% [{lower:.3}, \
                 {upper:.3}]); survivors in the report",
                kill_rate * 100.0
            )),
            Event::StrengthNotMeasured { reason } => self.line(&format!("  strength: {reason}")),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightsout_factory::Task;

    fn task(id: &str, hours: f64, deps: &[&str]) -> Task {
        Task {
            id: id.into(),
            title: id.into(),
            kind: "code".into(),
            spec_id: "s".into(),
            requirement_ids: vec![],
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
            estimate_hours: hours,
            spec_excerpt: String::new(),
            constraints: vec![],
            anti_spec: vec![],
            acceptance_criteria: vec![],
        }
    }

    #[test]
    fn the_eta_follows_the_unfinished_critical_path_at_the_observed_pace() {
        // a(1) → b(3) → d(1) and a → c(1) → d: the critical path is a, b, d = 5 hours.
        let plan = Plan {
            tasks: vec![
                task("a", 1.0, &[]),
                task("b", 3.0, &["a"]),
                task("c", 1.0, &["a"]),
                task("d", 1.0, &["b", "c"]),
            ],
        };
        let mut eta = Eta::new(&plan, []);
        assert!((eta.remaining_hours() - 5.0).abs() < 1e-9);
        assert_eq!(eta.left(), None, "no pace before a task finished");
        let t0 = Instant::now();
        eta.start("a", t0);
        eta.finish("a", t0 + Duration::from_secs(10));
        // 10 s per estimated hour; b and d remain on the critical path: 4 hours, 40 s.
        assert!((eta.remaining_hours() - 4.0).abs() < 1e-9);
        assert_eq!(eta.left(), Some(Duration::from_secs(40)));
        // Finishing a task twice does not count its time twice.
        eta.finish("a", t0 + Duration::from_secs(99));
        assert_eq!(eta.left(), Some(Duration::from_secs(40)));
        for t in ["b", "c", "d"] {
            eta.finish(t, t0);
        }
        assert_eq!(eta.left(), Some(Duration::ZERO));
    }

    #[test]
    fn tasks_finished_before_a_resume_are_off_the_path() {
        let plan = Plan {
            tasks: vec![task("a", 2.0, &[]), task("b", 0.0, &["a"])],
        };
        let eta = Eta::new(&plan, ["a".to_owned()]);
        // An unknown estimate weighs one hour.
        assert!((eta.remaining_hours() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human_duration(Duration::from_secs(12)), "12s");
        assert_eq!(human_duration(Duration::from_secs(185)), "3m05s");
        assert_eq!(human_duration(Duration::from_secs(3720)), "1h02m");
    }
}
