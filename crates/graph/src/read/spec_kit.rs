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
//! - task ids are `T001`, also with a letter or number suffix (`T009a`, `T007A`, `T009a_2`:
//!   distinct tasks, not placeholders), also in bold or code (`**T001**`, `` `T001` ``), as
//!   many teams write them; `TXXX` is the template's placeholder;
//! - a dependency the author wrote, in the description or the indented lines under it
//!   (`depends on T012, T013`, `blocked by T004`, `**Depends on**: T009`), is an explicit
//!   dependency ([`EdgeKind::Explicit`]), and so is `Blocks: T020` the other way round; a
//!   task named in running prose (`after T003's grep snapshot`, `requires T005`, `needs
//!   T006`) is only a guess, an [`EdgeKind::Inferred`] edge, which never makes a cycle error
//!   of its own;
//! - `[US1]` (and the "User Story N" of the phase heading, for a task without a story label),
//!   `[FR-008]` labels and any `FR-###` in a description are the ids the task traces to
//!   (`US1` matches the spec's `US-1`, see [`crate::canonical_id`]); file paths in a
//!   description (`src/models/user.py`) are what it touches.

use super::{UniqueIds, checkbox, clean_title, lines, span};
use crate::codes;
use crate::task::{EdgeKind, TaskEntry, TaskFormat, TaskList};
use lightsout_spec::{Diagnostic, Severity, Span};
use regex::Regex;
use std::path::Path;
use std::sync::LazyLock;

/// A task id with its suffixes (`T009`, `T009a`, `T009a_2`, `T001.1`), as regex text.
const ID: &str = r"T\d+[A-Za-z]?(?:[._]\d+[A-Za-z]?)?\b";

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|_| unreachable!("static regex"))
}

/// A list of task ids: `T012, T013`, `T010–T015`, `T001 and T002`.
fn id_list() -> String {
    format!(r"({ID}(?:\s*(?:,|and|&|/|–|-|to)\s*{ID})*)")
}

/// Words that state a dependency: whatever they name is a written dependency.
static WRITTEN: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)\b(?:depends on|depend on|dependent on|depends|dependencies|dependency|blocked by|prerequisites?)\s*:?\s*{}",
        id_list()
    ))
});
/// `Blocks: T020`: the named tasks depend on this one.
static BLOCKS: LazyLock<Regex> =
    LazyLock::new(|| regex(&format!(r"(?i)\bblocks\s*:?\s*{}", id_list())));
/// Prose that names a task as something to come first, without saying "depends": a guess.
static INFERRED: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)\b(?:after|requires|required|needs|once|following|builds on|building on|reuses|reusing)\s+{}",
        id_list()
    ))
});
static TASK_REF: LazyLock<Regex> =
    LazyLock::new(|| regex(r"T(\d+)([A-Za-z]?(?:[._]\d+[A-Za-z]?)?)(\s*(?:–|-|to)\s*T(\d+)\b)?"));
static FR: LazyLock<Regex> = LazyLock::new(|| regex(r"\bFR-\d+(?:-\d+)*\b"));
static STORY_HEADING: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b(?:(?i:user\s*story)|US)[\s\-_]*(\d+)\b"));
static PATHLIKE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?:^|[\s`(])((?:[\w.\-\[\]]+/)+[\w.\-\[\]]+)"));

struct Phase {
    story: bool,
    /// Steps: each a list of task indices.
    steps: Vec<Vec<usize>>,
}

/// The task id at the start of a Spec Kit task line's text, and what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskLineId<'a> {
    /// A real id: `T001`, `T009a`, `T007A`, `T009a_2`.
    Id(&'a str),
    /// The template's placeholder: `TXXX`, `Tnnn`, `T###`.
    Placeholder(&'a str),
}

/// Reads the id at the start of `text` (the part of a checkbox line after `- [ ]`), which
/// may be wrapped in emphasis or code (`**T001**`, `**T001:**`, `` `T001` ``) and followed
/// by a separator (`:`, `·`, `—`, `-`). `None` when the line is no task (a checklist item
/// such as `- [ ] **Article VII - Simplicity Gate**`, or `- [ ] Test the login`).
pub(crate) fn task_id(text: &str) -> Option<(TaskLineId<'_>, &str)> {
    let (mark, s) = ["**", "__", "`", "*", "_"]
        .iter()
        .find_map(|m| text.strip_prefix(m).map(|r| (*m, r)))
        .unwrap_or(("", text));
    let b = s.as_bytes();
    if b.first() != Some(&b'T') {
        return None;
    }
    let digits = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    let (id, len) = if digits == 0 {
        let n = b[1..]
            .iter()
            .take_while(|c| matches!(c, b'X' | b'x' | b'N' | b'n' | b'#' | b'?'))
            .count();
        if n < 2 {
            return None;
        }
        (TaskLineId::Placeholder(&s[..=n]), n + 1)
    } else {
        let m = regex_id(s)?;
        (TaskLineId::Id(&s[..m]), m)
    };
    let mut after = &s[len..];
    if after
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || c == '_')
    {
        return None;
    }
    if !mark.is_empty() {
        after = after.strip_prefix([':', '.']).unwrap_or(after);
        after = after.strip_prefix(mark).unwrap_or(after);
    }
    let mut after = after.trim_start();
    loop {
        let next = after
            .strip_prefix([':', '.', '·', '—', '–', '|'])
            .or_else(|| after.strip_prefix("- "));
        match next {
            Some(r) => after = r.trim_start(),
            None => break,
        }
    }
    Some((id, after))
}

static ID_AT_START: LazyLock<Regex> = LazyLock::new(|| regex(&format!("^{ID}")));

/// Length of the task id at the start of `s` (`T009a_2`), when there is one.
fn regex_id(s: &str) -> Option<usize> {
    ID_AT_START.find(s).map(|m| m.end())
}

/// Whether `line` is a Spec Kit task line (`- [ ] T001 ...`, `- [x] **T001** ...`,
/// `- [ ] [P] T001 ...`, or the template's `- [ ] TXXX ...`).
pub(crate) fn is_task_line(line: &str) -> bool {
    checkbox(line).is_some_and(|(_, _, rest)| {
        let mut pre = TaskEntry::new("", "", "");
        task_id(labels(rest.trim_start(), &mut pre)).is_some()
    })
}

/// Task ids named in `list` (`T012, T013`, ranges `T010–T012` expanded), pushed on `out`.
fn task_refs(list: &str, out: &mut Vec<String>) {
    for r in TASK_REF.captures_iter(list) {
        let first = &r[1];
        let suffix = &r[2];
        match r.get(4) {
            Some(end_ref) if suffix.is_empty() => {
                let (Ok(lo), Ok(hi)) = (first.parse::<u32>(), end_ref.as_str().parse::<u32>())
                else {
                    continue;
                };
                if hi >= lo && hi - lo <= 1000 {
                    for k in lo..=hi {
                        out.push(format!("T{k:0width$}", width = first.len()));
                    }
                }
            }
            _ => out.push(format!("T{first}{suffix}")),
        }
    }
}

/// What one line of a task (its first line, or an indented line under it) says about its
/// dependencies and requirements.
#[derive(Default)]
struct Refs {
    written: Vec<String>,
    blocks: Vec<String>,
    inferred: Vec<String>,
}

impl Refs {
    fn scan(&mut self, text: &str) {
        let plain = text.replace(['*', '`'], "");
        for c in WRITTEN.captures_iter(&plain) {
            task_refs(&c[1], &mut self.written);
        }
        for c in BLOCKS.captures_iter(&plain) {
            task_refs(&c[1], &mut self.blocks);
        }
        for c in INFERRED.captures_iter(&plain) {
            task_refs(&c[1], &mut self.inferred);
        }
    }
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_owned());
    }
}

/// Reads the bracketed labels at the start of `desc` (`[P] [US1]`, `` `[api] [P]` ``,
/// `[FR-008, FR-009]`) into `task`; returns the description after them.
fn labels<'a>(mut desc: &'a str, task: &mut TaskEntry) -> &'a str {
    loop {
        // A group of labels in code: `[api] [P]`.
        if let Some(inner) = desc.strip_prefix('`')
            && let Some(end) = inner.find('`')
            && inner[..end].trim_start().starts_with('[')
        {
            let rest = labels(inner[..end].trim(), task);
            if rest.is_empty() {
                desc = inner[end + 1..].trim_start();
                continue;
            }
            return desc;
        }
        let Some(inner) = desc.strip_prefix('[') else {
            return desc;
        };
        let Some(end) = inner.find(']') else {
            return desc;
        };
        let label = inner[..end].trim();
        let frs: Vec<&str> = label.split(',').map(str::trim).collect();
        if label.eq_ignore_ascii_case("P") {
            task.parallel = true;
        } else if crate::canonical_id(label).starts_with("US-") {
            push_unique(&mut task.requirements, label);
        } else if !label.is_empty()
            && frs
                .iter()
                .all(|f| FR.find(f).is_some_and(|m| m.len() == f.len()))
        {
            for f in frs {
                push_unique(&mut task.requirements, f);
            }
        } else if label.is_empty() || label.contains(' ') || label.len() > 12 {
            // Not a label but text in brackets: the description starts here. Other short
            // labels ([Story], [Setup], [P1] priorities) are skipped: they are no ids.
            return desc;
        }
        desc = inner[end + 1..].trim_start();
    }
}

/// Reads a Spec Kit `tasks.md`.
pub fn read(source: &str, spec_id: &str, path: Option<&Path>) -> (TaskList, Vec<Diagnostic>) {
    let mut r = Reader::new(spec_id, path);
    let mut in_fence = false;
    let mut in_comment = false;
    let index = super::LineIndex::new(source);
    for line in lines(source) {
        let trimmed = line.text.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
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
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.starts_with('#') {
            r.heading(trimmed);
            continue;
        }
        r.line(&index, &line);
    }
    let Reader {
        mut list,
        diags,
        mut phases,
        refs,
        ..
    } = r;
    dependencies(&mut list, refs);
    story_phases(&list, &mut phases);
    order_edges(&mut list, &phases);
    (list, diags)
}

/// The state of one pass over a `tasks.md`'s lines.
struct Reader<'p> {
    spec_id: &'p str,
    path: Option<&'p Path>,
    list: TaskList,
    diags: Vec<Diagnostic>,
    ids: UniqueIds,
    phases: Vec<Phase>,
    heading: Option<String>,
    heading_is_story: bool,
    heading_story: Option<String>,
    open_phase: bool,
    /// Whether the next [P] task may join the previous step.
    joinable: bool,
    /// The task whose indented lines follow, and what they say.
    current: Option<usize>,
    refs: Vec<Refs>,
}

impl<'p> Reader<'p> {
    fn new(spec_id: &'p str, path: Option<&'p Path>) -> Self {
        let mut list = TaskList::new(spec_id, TaskFormat::SpecKit);
        list.traces_requirements = false;
        list.path = path.map(Path::to_path_buf);
        Reader {
            spec_id,
            path,
            list,
            diags: Vec::new(),
            ids: UniqueIds::new(),
            phases: Vec::new(),
            heading: None,
            heading_is_story: false,
            heading_story: None,
            open_phase: false,
            joinable: false,
            current: None,
            refs: Vec::new(),
        }
    }

    /// A heading line (`trimmed` starts with `#`): a level-2 heading opens a phase.
    fn heading(&mut self, trimmed: &str) {
        self.current = None;
        let level = trimmed.bytes().take_while(|&b| b == b'#').count();
        let text = trimmed[level..].trim();
        if level <= 2 {
            self.heading = Some(clean_title(text));
            self.heading_story = STORY_HEADING.captures(text).map(|c| format!("US{}", &c[1]));
            self.heading_is_story = self.heading_story.is_some();
            self.open_phase = false;
        }
        self.joinable = false;
    }

    /// A line that is neither a heading nor skipped: a task, a line under one, or prose.
    fn line(&mut self, index: &super::LineIndex<'_>, line: &super::Line<'_>) {
        let trimmed = line.text.trim_start();
        let indented = trimmed.len() < line.text.len();
        let task_line = checkbox(line.text).and_then(|(_, mark, rest)| {
            let rest = rest.trim_start();
            // `[P]` written before the id.
            let mut pre = TaskEntry::new(self.spec_id, "", "");
            let after_labels = labels(rest, &mut pre);
            task_id(after_labels).map(|(id, desc)| (mark, pre, id, desc))
        });
        let Some((mark, pre, id, desc)) = task_line else {
            // An indented line under a task (its wrapped description, a `Depends on:`
            // bullet, a sub-step) belongs to it; anything else ends it.
            match self.current {
                Some(i) if indented => {
                    self.refs[i].scan(trimmed);
                    let task = &mut self.list.tasks[i];
                    for m in FR.find_iter(trimmed) {
                        push_unique(&mut task.requirements, m.as_str());
                    }
                }
                _ => self.current = None,
            }
            return;
        };
        let sp = span(index, line);
        let (task, r) = self.task(sp, mark, pre, id, desc);
        let idx = self.list.tasks.len();
        let parallel = task.parallel;
        self.list.tasks.push(task);
        self.refs.push(r);
        self.current = Some(idx);
        self.place(idx, parallel);
    }

    /// The task of a task line at `sp`, and what its description says about dependencies.
    fn task(
        &mut self,
        sp: Span,
        mark: char,
        pre: TaskEntry,
        id: TaskLineId<'_>,
        desc: &str,
    ) -> (TaskEntry, Refs) {
        let raw_id = match id {
            TaskLineId::Id(id) => id,
            TaskLineId::Placeholder(id) => {
                let mut d = Diagnostic::new(
                    codes::UNREADABLE_TASK,
                    Severity::Warning,
                    sp,
                    format!("task id `{id}` is a template placeholder"),
                    "number the task (`T031`) or delete the sample task",
                );
                if let Some(p) = self.path {
                    d = d.with_path(p);
                }
                self.diags.push(d);
                id
            }
        };
        let id = self
            .ids
            .claim(raw_id.to_owned(), sp, self.path, &mut self.diags);
        let mut task = TaskEntry::new(self.spec_id, id, "");
        task.parallel = pre.parallel;
        task.requirements = pre.requirements;
        let desc = labels(desc, &mut task);
        for m in FR.find_iter(desc) {
            push_unique(&mut task.requirements, m.as_str());
        }
        if let Some(story) = &self.heading_story
            && !task
                .requirements
                .iter()
                .any(|r| crate::canonical_id(r).starts_with("US-"))
        {
            task.requirements.push(story.clone());
        }
        let mut r = Refs::default();
        r.scan(desc);
        for m in PATHLIKE.captures_iter(desc) {
            let p = m[1].trim_end_matches(['.', ',', ')']);
            // Template placeholders (`src/models/[entity].py`) name no real file.
            if p.contains('/') && !p.starts_with("http") && !p.contains(['[', ']', '*', '{']) {
                task.touches.push(p.to_owned());
            }
        }
        task.title = clean_title(desc);
        task.done = matches!(mark, 'x' | 'X');
        task.phase.clone_from(&self.heading);
        task.span = sp;
        task.path.clone_from(&self.list.path);
        (task, r)
    }

    /// Puts task `idx` in the open phase (opening one if needed): a `[P]` task joins the
    /// step of the `[P]` task before it, any other task is a step of its own.
    fn place(&mut self, idx: usize, parallel: bool) {
        if !self.open_phase {
            self.phases.push(Phase {
                story: self.heading_is_story,
                steps: Vec::new(),
            });
            self.open_phase = true;
            self.joinable = false;
        }
        let Some(phase) = self.phases.last_mut() else {
            return;
        };
        if parallel && self.joinable {
            if let Some(step) = phase.steps.last_mut() {
                step.push(idx);
            }
        } else {
            phase.steps.push(vec![idx]);
        }
        self.joinable = parallel;
    }
}

/// Dependencies: written ones on the task (resolved by the graph, which reports a
/// dangling one), `Blocks:` as edges the other way, guesses as inferred edges unless
/// the same dependency is also written.
fn dependencies(list: &mut TaskList, refs: Vec<Refs>) {
    for (i, r) in refs.into_iter().enumerate() {
        let own = list.tasks[i].id.clone();
        for w in &r.written {
            push_unique(&mut list.tasks[i].depends_on, w);
        }
        for b in &r.blocks {
            if *b != own {
                list.edge(&own, b, EdgeKind::Explicit);
            }
        }
        for g in &r.inferred {
            if *g != own && !list.tasks[i].depends_on.contains(g) {
                list.edge(g, &own, EdgeKind::Inferred);
            }
        }
    }
}

/// A phase whose every task carries a story label is a story phase.
fn story_phases(list: &TaskList, phases: &mut [Phase]) {
    for p in phases {
        if !p.story {
            let all: Vec<usize> = p.steps.iter().flatten().copied().collect();
            p.story = !all.is_empty()
                && all.iter().all(|&i| {
                    list.tasks[i]
                        .requirements
                        .iter()
                        .any(|r| crate::canonical_id(r).starts_with("US-"))
                });
        }
    }
}

/// The phase order: each step waits for the step before it in its phase; a story phase
/// waits for the last plain phase, a plain phase for the stories since the last plain one.
fn order_edges(list: &mut TaskList, phases: &[Phase]) {
    let mut edges: Vec<(usize, usize, EdgeKind)> = Vec::new();
    for p in phases {
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
}
