//! task-master's `tasks.json` (<https://github.com/eyaltoledano/claude-task-master>,
//! `.taskmaster/tasks/tasks.json`).
//!
//! ```json
//! {"master": {"tasks": [
//!   {"id": 1, "title": "Set up", "status": "done", "dependencies": [],
//!    "subtasks": [{"id": 1, "title": "Init repo", "status": "done", "dependencies": []}]},
//!   {"id": 2, "title": "API", "status": "pending", "dependencies": [1, "1.1"]}
//! ]}}
//! ```
//!
//! Both the tagged form (one list per tag) and the legacy `{"tasks": [...]}` form are read.
//! Task ids are the numbers as written; a sub-task of task `P` gets id `P.S`. Dependencies of
//! a task are task ids (`1`) or sub-task ids (`"1.2"`); a number in a sub-task's
//! dependencies names a sibling sub-task when one has that id (task-master's convention),
//! else a task. A sub-task finishes before its parent ([`EdgeKind::Subtask`]). Status `done`
//! and `completed` count as done, and so does `cancelled`, which must not block anything.
//! Unlike task-master's own loader, no dependency is dropped: a bad one is reported.

use crate::codes;
use crate::task::{EdgeKind, Task, TaskFormat, TaskList};
use lightsout_spec::{Diagnostic, Severity, Span};
use serde_json::Value;
use std::path::Path;

/// Reads a task-master `tasks.json`: one [`TaskList`] per tag (`spec_id` for the legacy
/// untagged form and for a file with a single tag).
pub fn read(source: &str, spec_id: &str, path: Option<&Path>) -> (Vec<TaskList>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let err = |diags: &mut Vec<Diagnostic>, sp: Span, m: String| {
        let mut d = Diagnostic::new(
            codes::BAD_TASK_LIST,
            Severity::Error,
            sp,
            m,
            "fix the JSON, or regenerate it with `task-master generate`",
        );
        if let Some(p) = path {
            d = d.with_path(p);
        }
        diags.push(d);
    };
    let root: Value = match serde_json::from_str(source) {
        Ok(v) => v,
        Err(e) => {
            let line_start: usize = source
                .split_inclusive('\n')
                .take(e.line().saturating_sub(1))
                .map(str::len)
                .sum();
            let at = line_start + e.column().saturating_sub(1);
            err(
                &mut diags,
                Span::from_range(source, at, at),
                format!("tasks.json is not valid JSON: {e}"),
            );
            return (Vec::new(), diags);
        }
    };
    let mut tagged: Vec<(String, &Vec<Value>)> = Vec::new();
    if let Some(tasks) = root.get("tasks").and_then(Value::as_array) {
        tagged.push((spec_id.to_owned(), tasks));
    } else if let Some(obj) = root.as_object() {
        for (tag, v) in obj {
            if let Some(tasks) = v.get("tasks").and_then(Value::as_array) {
                tagged.push((tag.clone(), tasks));
            }
        }
        if tagged.len() == 1 {
            spec_id.clone_into(&mut tagged[0].0);
        }
    }
    if tagged.is_empty() {
        err(
            &mut diags,
            Span::from_range(source, 0, 0),
            "tasks.json has no `tasks` array (neither `{\"tasks\": [...]}` nor `{\"<tag>\": {\"tasks\": [...]}}`)".to_owned(),
        );
        return (Vec::new(), diags);
    }
    let mut cursor = 0usize;
    let index = super::LineIndex::new(source);
    let mut lists = Vec::new();
    for (tag, tasks) in tagged {
        let mut list = TaskList::new(&tag, TaskFormat::TaskMaster);
        list.traces_requirements = false;
        list.path = path.map(Path::to_path_buf);
        for (k, t) in tasks.iter().enumerate() {
            let Some(id) = id_of(t.get("id")) else {
                warn(
                    &mut diags,
                    path,
                    index.span(cursor, cursor),
                    format!("task #{} of tag `{tag}` has no id; skipped", k + 1),
                );
                continue;
            };
            let title = t.get("title").and_then(Value::as_str).unwrap_or("");
            let sp = locate(&index, source, &mut cursor, title);
            let mut task = make(&tag, id.clone(), title, t, sp, path);
            task.depends_on = deps(t, None, &[], &id, sp, path, &mut diags);
            let subs = t
                .get("subtasks")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            let sibling_ids: Vec<String> = subs.iter().filter_map(|s| id_of(s.get("id"))).collect();
            list.tasks.push(task);
            for s in subs {
                let Some(sid) = id_of(s.get("id")) else {
                    warn(
                        &mut diags,
                        path,
                        sp,
                        format!("a sub-task of task `{id}` has no id; skipped"),
                    );
                    continue;
                };
                let full = format!("{id}.{sid}");
                let stitle = s.get("title").and_then(Value::as_str).unwrap_or("");
                let ssp = locate(&index, source, &mut cursor, stitle);
                let mut sub = make(&tag, full.clone(), stitle, s, ssp, path);
                sub.depends_on = deps(s, Some(&id), &sibling_ids, &full, ssp, path, &mut diags);
                list.tasks.push(sub);
                list.edge(&full, &id, EdgeKind::Subtask);
            }
        }
        lists.push(list);
    }
    (lists, diags)
}

fn warn(diags: &mut Vec<Diagnostic>, path: Option<&Path>, sp: Span, m: String) {
    let mut d = Diagnostic::new(
        codes::UNREADABLE_TASK,
        Severity::Warning,
        sp,
        m,
        "check the task's fields against task-master's schema",
    );
    if let Some(p) = path {
        d = d.with_path(p);
    }
    diags.push(d);
}

fn id_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn make(tag: &str, id: String, title: &str, v: &Value, sp: Span, path: Option<&Path>) -> Task {
    let mut task = Task::new(tag, id, title.trim());
    let status = v.get("status").and_then(Value::as_str).unwrap_or("pending");
    task.done = matches!(status, "done" | "completed" | "cancelled");
    task.span = sp;
    task.path = path.map(Path::to_path_buf);
    task
}

#[allow(clippy::too_many_arguments)]
fn deps(
    v: &Value,
    parent: Option<&str>,
    siblings: &[String],
    own: &str,
    sp: Span,
    path: Option<&Path>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let Some(raw) = v.get("dependencies") else {
        return Vec::new();
    };
    let Some(arr) = raw.as_array() else {
        if !raw.is_null() {
            warn(
                diags,
                path,
                sp,
                format!("`dependencies` of task `{own}` is not an array; ignored"),
            );
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for d in arr {
        match d {
            Value::Number(n) => {
                let n = n.to_string();
                match parent {
                    Some(p) if siblings.contains(&n) => out.push(format!("{p}.{n}")),
                    _ => out.push(n),
                }
            }
            Value::String(s) if !s.trim().is_empty() => out.push(s.trim().to_owned()),
            other => warn(
                diags,
                path,
                sp,
                format!("dependency `{other}` of task `{own}` is not a task id; ignored"),
            ),
        }
    }
    out
}

/// The span of the next `"title": "<title>"` at or after `cursor`; moves the cursor past it.
fn locate(index: &super::LineIndex<'_>, source: &str, cursor: &mut usize, title: &str) -> Span {
    let needle = serde_json::to_string(title).unwrap_or_default();
    let from = (*cursor).min(source.len());
    let hay = source.get(from..).unwrap_or("");
    match hay.find(&needle) {
        Some(i) => {
            let start = from + i;
            let end = start + needle.len();
            *cursor = end;
            index.span(start, end)
        }
        None => index.span(from, from),
    }
}
