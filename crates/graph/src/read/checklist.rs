//! Numbered checklists: Kiro `tasks.md`, cc-sdd's variant of it, and OpenSpec change
//! `tasks.md`.
//!
//! ```markdown
//! - [ ] 1. Set up the project            <- task `1`
//!   - [ ] 1.1 Write the config loader    <- sub-task `1.1` (parent `1`: nested, or by number)
//!     - _Requirements: 1.1, 2.3_         <- traces to requirements 1.1 and 2.3
//!   - [ ]* 1.2 Property test             <- optional (Kiro `[ ]*` or `1.2*`)
//! - [ ] 2. (P) Build the API             <- cc-sdd: may run beside its neighbours
//!   - _Depends: 1.1_                     <- cc-sdd: explicit dependency
//!   - Estimate: 3h / Size: M, Touches: src/api/**
//! ```
//!
//! Task numbers may end a part in a letter (`10a`, `3.6a`, `3.5A.1`): distinct tasks, as
//! teams number follow-ups. A task's parent is the task its checkbox is nested under, else
//! the task its number extends (`2` of `2.1`). `[P]` marks a parallel task like cc-sdd's
//! `(P)`. Fields may be written `_Requirements: 1.1_`, `Requirements: 1.1` or
//! `**Requirements**: 1.1`.
//!
//! Order: Kiro and OpenSpec run tasks one at a time in list order (Kiro docs: "implement one
//! task at a time"), so each task waits for the step before it ([`EdgeKind::Sequence`]); a
//! run of consecutive `(P)` tasks forms one step. A parent waits for its required sub-tasks
//! ([`EdgeKind::Subtask`]), and its first sub-tasks wait for the step before the parent.
//! Optional tasks wait for their step, and nothing waits for them. When the file has a
//! `Task Dependency Graph` JSON block (`{"waves": [{"wave": 1, "tasks": [1, 2]}]}`), its waves
//! order the top-level tasks instead: every task of a wave waits for every task of the wave
//! before it ([`EdgeKind::Wave`]).

use super::{UniqueIds, checkbox, clean_title, estimate_hours, lines, requirement_ids, span};
use crate::codes;
use crate::task::{EdgeKind, TaskEntry, TaskFormat, TaskList};
use lightsout_spec::{Diagnostic, Severity, Span};
use std::collections::HashMap;
use std::path::Path;

/// Whether `line` is a checkbox item whose text starts with a task number (`- [ ] 1. `,
/// `- [x] 2.1 `).
pub fn is_numbered_checkbox(line: &str) -> bool {
    checkbox(line).is_some_and(|(_, _, rest)| {
        let rest = rest.trim_start_matches('*').trim_start();
        rest.as_bytes().first().is_some_and(u8::is_ascii_digit)
    })
}

/// Reads a Kiro (`format == Kiro`) or OpenSpec (`format == OpenSpec`) `tasks.md`.
pub fn read(
    source: &str,
    spec_id: &str,
    path: Option<&Path>,
    format: TaskFormat,
) -> (TaskList, Vec<Diagnostic>) {
    let mut r = Reader::new(spec_id, path, format);
    let all = lines(source);
    let index = super::LineIndex::new(source);
    let mut fence: Option<(String, usize, Vec<&str>)> = None;
    let mut waves_block: Option<(Span, String)> = None;

    for (n, line) in all.iter().enumerate() {
        let trimmed = line.text.trim_start();
        if let Some((lang, start, body)) = &mut fence {
            if trimmed.starts_with("```") {
                if lang.as_str() == "json" {
                    let text = body.join("\n");
                    if text.contains("\"waves\"") {
                        let sp = index.span(all[*start].start, line.start + line.text.len());
                        waves_block = Some((sp, text));
                    }
                }
                fence = None;
            } else {
                body.push(line.text);
            }
            continue;
        }
        if let Some(lang) = trimmed.strip_prefix("```") {
            fence = Some((lang.trim().to_ascii_lowercase(), n, Vec::new()));
            continue;
        }
        if let Some((_, field)) = r.open_field.as_mut() {
            field.push(' ');
            field.push_str(trimmed);
            if trimmed.trim_end().ends_with('_')
                && let Some((ti, f)) = r.open_field.take()
            {
                apply_field(&mut r.list.tasks[ti], &f);
            }
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.starts_with('#') {
            let text = trimmed.trim_start_matches('#').trim();
            r.phase = (!text.is_empty()).then(|| clean_title(text));
            r.stack.clear();
            continue;
        }
        if let Some((indent, mark, rest)) = checkbox(line.text) {
            r.task(&index, line, indent, mark, rest);
            continue;
        }
        r.detail(line.text, trimmed);
    }
    let Reader {
        mut list,
        mut diags,
        open_field,
        unnumbered,
        nested_in,
        ..
    } = r;
    if let Some((ti, f)) = open_field {
        apply_field(&mut list.tasks[ti], &f);
    }
    if unnumbered > 0 && format == TaskFormat::Kiro {
        let mut d = Diagnostic::new(
            codes::UNREADABLE_TASK,
            Severity::Warning,
            Span::default(),
            format!("{unnumbered} task(s) have no number; they were given ids `L<line>`"),
            "number every task (`- [ ] 3. ...`, `- [ ] 3.1 ...`) so others can depend on it",
        );
        if let Some(p) = path {
            d = d.with_path(p);
        }
        diags.push(d);
    }

    let waves = waves_block
        .and_then(|(sp, text)| parse_waves(&text, sp, path, &mut diags).map(|w| (sp, w)));
    order(&mut list, &nested_in, waves, path, &mut diags);
    (list, diags)
}

/// The state of one pass over a checklist's lines.
struct Reader<'p> {
    spec_id: &'p str,
    path: Option<&'p Path>,
    list: TaskList,
    diags: Vec<Diagnostic>,
    ids: UniqueIds,
    phase: Option<String>,
    /// Open tasks by checkbox indent (index in `list.tasks`, indent): a detail line belongs
    /// to the innermost task whose checkbox is indented less than the line.
    stack: Vec<(usize, usize)>,
    /// An open `_Requirements: ..._` field spanning lines.
    open_field: Option<(usize, String)>,
    unnumbered: usize,
    /// Per task: the task its checkbox is nested under, by indentation.
    nested_in: Vec<Option<usize>>,
}

impl<'p> Reader<'p> {
    fn new(spec_id: &'p str, path: Option<&'p Path>, format: TaskFormat) -> Self {
        let mut list = TaskList::new(spec_id, format);
        list.path = path.map(Path::to_path_buf);
        Reader {
            spec_id,
            path,
            list,
            diags: Vec::new(),
            ids: UniqueIds::new(),
            phase: None,
            stack: Vec::new(),
            open_field: None,
            unnumbered: 0,
            nested_in: Vec::new(),
        }
    }

    /// A checkbox line (`- [ ] 1.2 title`) at `indent`: a task, unless it is an unnumbered
    /// checklist inside a task's details.
    fn task(
        &mut self,
        index: &super::LineIndex<'_>,
        line: &super::Line<'_>,
        indent: usize,
        mark: char,
        rest: &str,
    ) {
        let (optional_mark, rest) = match rest.strip_prefix('*') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let rest = rest.trim_start();
        let raw_id = number_id(rest);
        let id_len = raw_id.len();
        let numbered = !raw_id.is_empty();
        if !numbered {
            if self
                .stack
                .last()
                .is_some_and(|&(_, cur_indent)| indent > cur_indent)
            {
                // a checklist inside a task's details, not a task
                return;
            }
            self.unnumbered += 1;
        }
        let mut after = &rest[if numbered { id_len } else { 0 }..];
        if numbered {
            after = after.strip_prefix('.').unwrap_or(after);
        }
        let mut optional = optional_mark;
        if let Some(r) = after.strip_prefix('*') {
            optional = true;
            after = r;
        }
        let mut title = after.trim().to_owned();
        let mut parallel = false;
        if let Some(r) = title
            .strip_prefix("(P)")
            .or_else(|| title.strip_prefix("[P]"))
        {
            parallel = true;
            title = r.trim().to_owned();
        }
        let sp = span(index, line);
        let id = if numbered {
            raw_id.to_owned()
        } else {
            format!("L{}", sp.line)
        };
        let id = self.ids.claim(id, sp, self.path, &mut self.diags);
        let mut t = TaskEntry::new(self.spec_id, id, clean_title(&title));
        t.done = matches!(mark, 'x' | 'X');
        t.optional = optional;
        t.parallel = parallel;
        t.phase.clone_from(&self.phase);
        t.span = sp;
        t.path.clone_from(&self.list.path);
        self.list.tasks.push(t);
        while self.stack.last().is_some_and(|&(_, i)| i >= indent) {
            self.stack.pop();
        }
        self.nested_in.push(self.stack.last().map(|&(p, _)| p));
        self.stack.push((self.list.tasks.len() - 1, indent));
    }

    /// A detail line under a task (`text`, `trimmed` without its indent): a field of the
    /// innermost task indented less, possibly opening a field that spans lines.
    fn detail(&mut self, text: &str, trimmed: &str) {
        let indent = text.len() - trimmed.len();
        while self.stack.last().is_some_and(|&(_, i)| i >= indent) {
            self.stack.pop();
        }
        let Some(&(ti, _)) = self.stack.last() else {
            return;
        };
        let body = trimmed.trim_start_matches(['-', '*', '+']).trim_start();
        let underscored = body.starts_with('_');
        let closed = body.trim_end().len() > 1 && body.trim_end().ends_with('_');
        if underscored && !closed && field_key(body).is_some() {
            self.open_field = Some((ti, body.to_owned()));
            return;
        }
        apply_field(&mut self.list.tasks[ti], body);
    }
}

fn field_key(body: &str) -> Option<(String, &str)> {
    let b = body.trim_start_matches(['_', '*']);
    let (key, value) = b.split_once(':')?;
    // `**Requirements**: 1.2` and `_Requirements_: 1.2` as well as `_Requirements: 1.2_`.
    let key = key.trim_end_matches(['_', '*']);
    if key.len() > 24 || !key.chars().all(|c| c.is_ascii_alphabetic() || c == ' ') {
        return None;
    }
    Some((key.trim().to_ascii_lowercase(), value))
}

fn apply_field(task: &mut TaskEntry, body: &str) {
    let Some((key, value)) = field_key(body) else {
        return;
    };
    // Strip the emphasis the field is wrapped in (`_Requirements: 1.1_`, `**Validates: ...**`),
    // and only that: `Touches: src/**` keeps its globstar.
    let lead = body.trim_start();
    let mut value = value.trim();
    if lead.starts_with("**") {
        value = value.strip_suffix("**").unwrap_or(value);
    } else if lead.starts_with('_') {
        value = value.strip_suffix('_').unwrap_or(value);
    }
    let value = value.trim();
    match key.as_str() {
        "requirements" | "requirement" | "validates" | "traces" => {
            for id in requirement_ids(value) {
                if !task.requirements.contains(&id) {
                    task.requirements.push(id);
                }
            }
        }
        "depends" | "depends on" | "dependencies" => {
            for d in value
                .split([',', ' '])
                .map(|d| d.trim().trim_end_matches('.'))
                .filter(|d| !d.is_empty())
            {
                if d.bytes().next().is_some_and(|b| b.is_ascii_digit()) || d.contains('#') {
                    task.depends_on.push(d.to_owned());
                }
            }
        }
        "touches" => {
            for g in value
                .split(',')
                .map(|g| g.trim().trim_matches('`'))
                .filter(|g| !g.is_empty())
            {
                task.touches.push(g.to_owned());
            }
        }
        "estimate" | "size" | "effort" => {
            if let Some(h) = estimate_hours(value) {
                task.estimate_hours = Some(h);
            }
        }
        _ => {}
    }
}

/// Parses `{"waves": [{"wave": n, "tasks": [..]}]}` into task id lists ordered by wave.
fn parse_waves(
    text: &str,
    sp: Span,
    path: Option<&Path>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Vec<String>>> {
    let bad = |diags: &mut Vec<Diagnostic>, m: String| {
        let mut d = Diagnostic::new(
            codes::UNREADABLE_TASK,
            Severity::Warning,
            sp,
            m,
            "write the block as {\"waves\": [{\"wave\": 1, \"tasks\": [1, 2]}]}; list order is used instead",
        );
        if let Some(p) = path {
            d = d.with_path(p);
        }
        diags.push(d);
    };
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            bad(
                diags,
                format!("task dependency graph block is not valid JSON: {e}"),
            );
            return None;
        }
    };
    let Some(waves) = value.get("waves").and_then(|w| w.as_array()) else {
        bad(
            diags,
            "task dependency graph block has no `waves` array".to_owned(),
        );
        return None;
    };
    let mut out: Vec<(i64, Vec<String>)> = Vec::new();
    for (i, w) in waves.iter().enumerate() {
        let number = w
            .get("wave")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or_else(|| i64::try_from(i).unwrap_or(i64::MAX));
        let tasks = w
            .get("tasks")
            .and_then(|t| t.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|t| match t {
                        serde_json::Value::Number(n) => Some(n.to_string()),
                        serde_json::Value::String(s) => Some(s.trim_end_matches('.').to_owned()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push((number, tasks));
    }
    out.sort_by_key(|w| w.0);
    Some(out.into_iter().map(|w| w.1).collect())
}

/// The task number at the start of `s`: dotted numbers whose parts may end in one letter
/// (`1`, `2.1`, `10a`, `3.6a`, `3.5A.1`: distinct ids, as teams number follow-up tasks); a
/// letter followed by another letter or digit is text (`9am`), not part of the number.
/// Empty when `s` does not start with a digit.
fn number_id(s: &str) -> &str {
    let b = s.as_bytes();
    let (mut i, mut end) = (0, 0);
    loop {
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            break;
        }
        i += digits;
        if b.get(i).is_some_and(u8::is_ascii_alphabetic)
            && !b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)
        {
            i += 1;
        }
        end = i;
        if b.get(i) == Some(&b'.') {
            i += 1;
        } else {
            break;
        }
    }
    &s[..end]
}

fn parent_of(id: &str) -> Option<&str> {
    id.rsplit_once('.').map(|(p, _)| p)
}

/// Adds the sequence / wave / sub-task edges.
fn order(
    list: &mut TaskList,
    nested_in: &[Option<usize>],
    waves: Option<(Span, Vec<Vec<String>>)>,
    path: Option<&Path>,
    diags: &mut Vec<Diagnostic>,
) {
    let index: HashMap<String, usize> = list
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.clone(), i))
        .collect();
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut top = Vec::new();
    for (i, t) in list.tasks.iter().enumerate() {
        // The task the checkbox is nested under (`3.6a` indented under `3.6`, `10a` under
        // `10.`), else the parent by number (`2` of `2.1`).
        let parent = nested_in
            .get(i)
            .copied()
            .flatten()
            .or_else(|| parent_of(&t.id).and_then(|p| index.get(p).copied()));
        match parent {
            Some(p) if p != i => children.entry(p).or_default().push(i),
            _ => top.push(i),
        }
    }
    let mut edges: Vec<(usize, usize, EdgeKind)> = Vec::new();
    for (&p, kids) in &children {
        for &k in kids {
            if !list.tasks[k].optional {
                edges.push((k, p, EdgeKind::Subtask));
            }
        }
    }
    let ctx = Ctx {
        tasks: &list.tasks,
        children: &children,
    };
    match waves {
        Some((sp, waves)) => wave_edges(&ctx, &index, &top, (sp, &waves), path, diags, &mut edges),
        None => {
            ctx.chain(&top, Vec::new(), EdgeKind::Sequence, &mut edges);
        }
    }
    for (f, t, k) in edges {
        let (from, to) = (list.tasks[f].id.clone(), list.tasks[t].id.clone());
        list.edge(&from, &to, k);
    }
}

/// The order a task dependency graph's `waves` give: every task of a wave waits for every
/// required task of the wave before it; a top-level task in no wave is reported and left
/// unordered.
fn wave_edges(
    ctx: &Ctx<'_>,
    index: &HashMap<String, usize>,
    top: &[usize],
    (sp, waves): (Span, &[Vec<String>]),
    path: Option<&Path>,
    diags: &mut Vec<Diagnostic>,
    edges: &mut Vec<(usize, usize, EdgeKind)>,
) {
    let mut placed = vec![false; ctx.tasks.len()];
    let mut prev: Vec<usize> = Vec::new();
    for wave in waves {
        let mut exits = Vec::new();
        for id in wave {
            let Some(&b) = index.get(id) else {
                let mut d = Diagnostic::new(
                    codes::UNREADABLE_TASK,
                    Severity::Warning,
                    sp,
                    format!("task dependency graph names task `{id}`, which is not in the list"),
                    "fix the wave's task list",
                );
                if let Some(p) = path {
                    d = d.with_path(p);
                }
                diags.push(d);
                continue;
            };
            placed[b] = true;
            ctx.block(b, &prev, EdgeKind::Wave, edges);
            if !ctx.tasks[b].optional {
                exits.push(b);
            }
        }
        if !exits.is_empty() {
            prev = exits;
        }
    }
    for &b in top {
        if !placed[b] {
            let mut d = Diagnostic::new(
                codes::UNREADABLE_TASK,
                Severity::Warning,
                ctx.tasks[b].span,
                format!(
                    "task `{}` is in no wave of the task dependency graph; it is left unordered",
                    ctx.tasks[b].id
                ),
                "add it to a wave",
            );
            if let Some(p) = path {
                d = d.with_path(p);
            }
            diags.push(d);
            ctx.block(b, &[], EdgeKind::Wave, edges);
        }
    }
}

struct Ctx<'a> {
    tasks: &'a [TaskEntry],
    children: &'a HashMap<usize, Vec<usize>>,
}

impl Ctx<'_> {
    /// Orders `items` one step after another, starting after `prev`; returns the exits of
    /// the last required step.
    fn chain(
        &self,
        items: &[usize],
        mut prev: Vec<usize>,
        kind: EdgeKind,
        edges: &mut Vec<(usize, usize, EdgeKind)>,
    ) -> Vec<usize> {
        let mut i = 0;
        while i < items.len() {
            let mut j = i + 1;
            if self.tasks[items[i]].parallel {
                while j < items.len() && self.tasks[items[j]].parallel {
                    j += 1;
                }
            }
            let mut exits = Vec::new();
            for &b in &items[i..j] {
                self.block(b, &prev, kind, edges);
                if !self.tasks[b].optional {
                    exits.push(b);
                }
            }
            if !exits.is_empty() {
                prev = exits;
            }
            i = j;
        }
        prev
    }

    /// Orders task `b` (and its sub-tasks) after `prev`.
    fn block(
        &self,
        b: usize,
        prev: &[usize],
        kind: EdgeKind,
        edges: &mut Vec<(usize, usize, EdgeKind)>,
    ) {
        let kids = self.children.get(&b).map_or(&[][..], Vec::as_slice);
        let required_kids = kids.iter().any(|&k| !self.tasks[k].optional);
        if !kids.is_empty() {
            let kind = if kind == EdgeKind::Wave {
                EdgeKind::Wave
            } else {
                EdgeKind::Sequence
            };
            self.chain(kids, prev.to_vec(), kind, edges);
        }
        if !required_kids {
            for &p in prev {
                edges.push((p, b, kind));
            }
        }
    }
}
