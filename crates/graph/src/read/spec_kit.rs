//! GitHub Spec Kit `tasks.md`
//! (<https://github.com/github/spec-kit/blob/main/templates/tasks-template.md>).
//!
//! ```markdown
//! ## Phase 1: Setup
//! - [ ] T001 Create project structure
//! ## Phase 3: User Story 1 - Sign in (Priority: P1)
//! ### Tests for User Story 1
//! - [ ] T010 [P] [US1] Contract test in tests/contract/test_auth.py
//! ### Implementation for User Story 1
//! - [ ] T012 [P] [US1] Create User model in src/models/user.py
//! - [ ] T014 [US1] Implement AuthService in src/services/auth.py (depends on T012, T013)
//! ```
//!
//! Reading, as the template's "Dependencies & Execution Order" section states it:
//! - `[P]` marks a task that can run beside its neighbours; inside a phase the other tasks
//!   run in order, so each step (one task, or a run of consecutive `[P]` tasks not broken by a
//!   `###` heading) waits for the step before it ([`EdgeKind::Sequence`]);
//! - a level-2 heading with tasks under it is a phase. Setup and Foundational phases run in
//!   order; every user-story phase (heading says "User Story", or all its tasks carry
//!   `[USn]`) waits for the last phase before it that is not a story, and not for other
//!   stories; the next non-story phase (Polish) waits for all of them ([`EdgeKind::Phase`]);
//! - `depends on T012, T013` (also `blocked by`, `after`, `requires`) in a description is
//!   an explicit dependency;
//! - `[US1]` and any `FR-###` in a description are the ids the task traces to; file paths
//!   in a description (`src/models/user.py`) are what it touches.

use super::{UniqueIds, checkbox, clean_title, lines, span};
use crate::codes;
use crate::task::{EdgeKind, Task, TaskFormat, TaskList};
use lightsout_spec::{Diagnostic, Severity};
use regex::Regex;
use std::path::Path;
use std::sync::LazyLock;

static DEPENDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:depends on|dependent on|blocked by|after|requires)\s+(T\d+(?:\s*(?:,|and|&|/|–|-|to)\s*T\d+)*)")
        .unwrap_or_else(|_| unreachable!("static regex"))
});
static TASK_REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"T(\d+)(\s*(?:–|-|to)\s*T(\d+))?").unwrap_or_else(|_| unreachable!("static regex"))
});
static FR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bFR-\d+\b").unwrap_or_else(|_| unreachable!("static regex")));
static PATHLIKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s`(])((?:[\w.\-\[\]]+/)+[\w.\-\[\]]+)")
        .unwrap_or_else(|_| unreachable!("static regex"))
});

struct Phase {
    story: bool,
    /// Steps: each a list of task indices.
    steps: Vec<Vec<usize>>,
}

/// Reads a Spec Kit `tasks.md`.
pub fn read(source: &str, spec_id: &str, path: Option<&Path>) -> (TaskList, Vec<Diagnostic>) {
    let mut list = TaskList::new(spec_id, TaskFormat::SpecKit);
    list.traces_requirements = false;
    list.path = path.map(Path::to_path_buf);
    let mut diags = Vec::new();
    let mut ids = UniqueIds::new();
    let mut phases: Vec<Phase> = Vec::new();
    let mut heading: Option<String> = None;
    let mut heading_is_story = false;
    let mut open_phase = false;
    // whether the next [P] task may join the previous step
    let mut joinable = false;
    let mut in_fence = false;
    let mut in_comment = false;

    let index = super::LineIndex::new(source);
    for line in lines(source) {
        let trimmed = line.text.trim_start();
        if trimmed.starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        if in_comment {
            if trimmed.contains("-->") {
                in_comment = false;
            }
            continue;
        }
        if trimmed.starts_with("<!--") {
            in_comment = !trimmed.contains("-->");
            continue;
        }
        if trimmed.starts_with('#') {
            let level = trimmed.bytes().take_while(|&b| b == b'#').count();
            let text = trimmed[level..].trim();
            if level <= 2 {
                heading = Some(clean_title(text));
                heading_is_story = text.to_ascii_lowercase().contains("user story");
                open_phase = false;
            }
            joinable = false;
            continue;
        }
        let Some((_, mark, rest)) = checkbox(line.text) else {
            continue;
        };
        let rest = rest.trim_start();
        let id_len = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
        let raw_id = &rest[..id_len];
        if !raw_id.starts_with('T') || raw_id.len() < 2 {
            continue;
        }
        let sp = span(&index, &line);
        if !raw_id[1..].bytes().all(|b| b.is_ascii_digit()) {
            let mut d = Diagnostic::new(
                codes::UNREADABLE_TASK,
                Severity::Warning,
                sp,
                format!("task id `{raw_id}` is a template placeholder"),
                "number the task (`T031`) or delete the sample task",
            );
            if let Some(p) = path {
                d = d.with_path(p);
            }
            diags.push(d);
        }
        let id = ids.claim(raw_id.to_owned(), sp, path, &mut diags);
        let mut desc = rest[id_len..].trim_start();
        let mut task = Task::new(spec_id, id, "");
        while let Some(inner) = desc.strip_prefix('[') {
            let Some(end) = inner.find(']') else { break };
            let label = inner[..end].trim();
            if label.eq_ignore_ascii_case("P") {
                task.parallel = true;
            } else if label.starts_with("US")
                && label.len() > 2
                && label[2..].bytes().all(|b| b.is_ascii_digit())
            {
                task.requirements.push(label.to_owned());
            } else if label.is_empty() || label.contains(' ') || label.len() > 12 {
                // Not a label but text in brackets: the description starts here. Other short
                // labels ([Story], [Setup]) are skipped: they are no ids.
                break;
            }
            desc = inner[end + 1..].trim_start();
        }
        for m in FR.find_iter(desc) {
            if !task.requirements.iter().any(|r| r == m.as_str()) {
                task.requirements.push(m.as_str().to_owned());
            }
        }
        for c in DEPENDS.captures_iter(desc) {
            for r in TASK_REF.captures_iter(&c[1]) {
                let first = &r[1];
                match r.get(3) {
                    Some(end_ref) => {
                        let (Ok(lo), Ok(hi)) =
                            (first.parse::<u32>(), end_ref.as_str().parse::<u32>())
                        else {
                            continue;
                        };
                        if hi >= lo && hi - lo <= 1000 {
                            for k in lo..=hi {
                                task.depends_on
                                    .push(format!("T{k:0width$}", width = first.len()));
                            }
                        }
                    }
                    None => task.depends_on.push(format!("T{first}")),
                }
            }
        }
        for m in PATHLIKE.captures_iter(desc) {
            let p = m[1].trim_end_matches(['.', ',', ')']);
            // Template placeholders (`src/models/[entity].py`) name no real file.
            if p.contains('/') && !p.starts_with("http") && !p.contains(['[', ']', '*', '{']) {
                task.touches.push(p.to_owned());
            }
        }
        task.title = clean_title(desc);
        task.done = matches!(mark, 'x' | 'X');
        task.phase.clone_from(&heading);
        task.span = sp;
        task.path.clone_from(&list.path);
        let idx = list.tasks.len();
        let parallel = task.parallel;
        list.tasks.push(task);

        if !open_phase {
            phases.push(Phase {
                story: heading_is_story,
                steps: Vec::new(),
            });
            open_phase = true;
            joinable = false;
        }
        let Some(phase) = phases.last_mut() else {
            continue;
        };
        if parallel && joinable {
            if let Some(step) = phase.steps.last_mut() {
                step.push(idx);
            }
        } else {
            phase.steps.push(vec![idx]);
        }
        joinable = parallel;
    }

    // A phase whose every task carries a story label is a story phase.
    for p in &mut phases {
        if !p.story {
            let all: Vec<usize> = p.steps.iter().flatten().copied().collect();
            p.story = !all.is_empty()
                && all.iter().all(|&i| {
                    list.tasks[i]
                        .requirements
                        .iter()
                        .any(|r| r.starts_with("US"))
                });
        }
    }

    let mut edges: Vec<(usize, usize, EdgeKind)> = Vec::new();
    for p in &phases {
        for w in p.steps.windows(2) {
            for &a in &w[0] {
                for &b in &w[1] {
                    edges.push((a, b, EdgeKind::Sequence));
                }
            }
        }
    }
    let mut last_plain: Option<usize> = None;
    let mut stories_since: Vec<usize> = Vec::new();
    for (k, p) in phases.iter().enumerate() {
        let preds: Vec<usize> = if p.story || stories_since.is_empty() {
            last_plain.into_iter().collect()
        } else {
            stories_since.clone()
        };
        for q in preds {
            let (Some(exits), Some(entries)) = (phases[q].steps.last(), p.steps.first()) else {
                continue;
            };
            for &a in exits {
                for &b in entries {
                    edges.push((a, b, EdgeKind::Phase));
                }
            }
        }
        if p.story {
            stories_since.push(k);
        } else {
            last_plain = Some(k);
            stories_since.clear();
        }
    }
    for (a, b, k) in edges {
        let (from, to) = (list.tasks[a].id.clone(), list.tasks[b].id.clone());
        list.edge(&from, &to, k);
    }
    (list, diags)
}
