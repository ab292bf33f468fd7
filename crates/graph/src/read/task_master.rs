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
//!
//! Reading is linear in the size of the file, however it is laid out: tasks and titles are
//! borrowed from the source as [`RawValue`]s, so each task's span is where its title is
//! (no search), and spans are computed with a [`super::LineIndex`].

use crate::codes;
use crate::task::{EdgeKind, TaskEntry, TaskFormat, TaskList};
use lightsout_spec::{Diagnostic, Severity, Span};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::path::Path;

/// The fields of a task (or sub-task) that planning reads; every other field is skipped.
/// Each is optional and loosely typed, so a task with an odd field is still read and the
/// oddity reported, as task-master's own loader tolerates it.
#[derive(Deserialize)]
struct RawTask<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    title: Option<&'a RawValue>,
    #[serde(default)]
    status: Option<Value>,
    #[serde(default)]
    dependencies: Option<Value>,
    #[serde(default, borrow)]
    subtasks: Option<&'a RawValue>,
}

/// A tag's object: `{"tasks": [...], "metadata": {...}}`.
#[derive(Deserialize)]
struct RawTag<'a> {
    #[serde(default, borrow)]
    tasks: Option<&'a RawValue>,
}

/// Reads a task-master `tasks.json`: one [`TaskList`] per tag (`spec_id` for the legacy
/// untagged form and for a file with a single tag).
pub fn read(source: &str, spec_id: &str, path: Option<&Path>) -> (Vec<TaskList>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let index = super::LineIndex::new(source);
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
    let no_tasks = "tasks.json has no `tasks` array (neither `{\"tasks\": [...]}` nor `{\"<tag>\": {\"tasks\": [...]}}`)";
    let root: BTreeMap<String, &RawValue> = match serde_json::from_str(source) {
        Ok(v) => v,
        Err(e) if e.is_data() => {
            err(&mut diags, index.span(0, 0), no_tasks.to_owned());
            return (Vec::new(), diags);
        }
        Err(e) => {
            let line_start = index.line_start(e.line());
            let at = line_start + e.column().saturating_sub(1);
            err(
                &mut diags,
                index.span(at, at),
                format!("tasks.json is not valid JSON: {e}"),
            );
            return (Vec::new(), diags);
        }
    };
    let tagged = tagged_lists(&root, spec_id);
    if tagged.is_empty() {
        err(&mut diags, index.span(0, 0), no_tasks.to_owned());
        return (Vec::new(), diags);
    }
    let reader = Reader {
        source,
        index: &index,
        path,
    };
    let lists = tagged
        .into_iter()
        .map(|(tag, tasks)| reader.list(&tag, &tasks, &mut diags))
        .collect();
    (lists, diags)
}

/// The task arrays of the file, each with its tag: the legacy `{"tasks": [...]}` under
/// `spec_id`, else one per tag (a single tag is named `spec_id`).
fn tagged_lists<'s>(
    root: &BTreeMap<String, &'s RawValue>,
    spec_id: &str,
) -> Vec<(String, Vec<&'s RawValue>)> {
    let mut tagged: Vec<(String, Vec<&RawValue>)> = Vec::new();
    if let Some(tasks) = root.get("tasks").and_then(|r| array(r)) {
        tagged.push((spec_id.to_owned(), tasks));
    } else {
        for (tag, raw) in root {
            if let Ok(RawTag { tasks: Some(t) }) = serde_json::from_str::<RawTag<'_>>(raw.get())
                && let Some(tasks) = array(t)
            {
                tagged.push((tag.clone(), tasks));
            }
        }
        if tagged.len() == 1 {
            spec_id.clone_into(&mut tagged[0].0);
        }
    }
    tagged
}

/// The elements of a JSON array borrowed from the source; `None` when `raw` is no array.
fn array(raw: &RawValue) -> Option<Vec<&RawValue>> {
    serde_json::from_str(raw.get()).ok()
}

struct Reader<'s, 'i> {
    source: &'s str,
    index: &'i super::LineIndex<'s>,
    path: Option<&'s Path>,
}

impl Reader<'_, '_> {
    /// The task list of tag `tag`: its tasks, each followed by its sub-tasks.
    fn list(&self, tag: &str, tasks: &[&RawValue], diags: &mut Vec<Diagnostic>) -> TaskList {
        let mut list = TaskList::new(tag, TaskFormat::TaskMaster);
        list.traces_requirements = false;
        list.path = self.path.map(Path::to_path_buf);
        list.tasks.reserve(tasks.len());
        for (k, raw) in tasks.iter().enumerate() {
            let at = self.span_of(raw);
            let t = match serde_json::from_str::<RawTask<'_>>(raw.get()) {
                Ok(t) => t,
                Err(e) => {
                    self.warn(
                        diags,
                        at,
                        format!(
                            "task #{} of tag `{tag}` is not a task object ({e}); skipped",
                            k + 1
                        ),
                    );
                    continue;
                }
            };
            let Some(id) = id_of(t.id) else {
                self.warn(
                    diags,
                    at,
                    format!("task #{} of tag `{tag}` has no id; skipped", k + 1),
                );
                continue;
            };
            let (title, sp) = self.title(t.title, at);
            let mut task = make(tag, id.clone(), &title, t.status.as_ref(), sp, self.path);
            task.depends_on = self.deps(t.dependencies.as_ref(), None, &[], &id, sp, diags);
            list.tasks.push(task);
            self.subtasks(&mut list, tag, &id, t.subtasks, diags);
        }
        list
    }

    /// The sub-tasks `raw` of task `id` (ids `<id>.<n>`), each with an edge to its parent.
    fn subtasks(
        &self,
        list: &mut TaskList,
        tag: &str,
        id: &str,
        raw: Option<&RawValue>,
        diags: &mut Vec<Diagnostic>,
    ) {
        let subs: Vec<(&RawValue, Option<RawTask<'_>>)> = raw
            .and_then(array)
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s, serde_json::from_str::<RawTask<'_>>(s.get()).ok()))
            .collect();
        let sibling_ids: Vec<String> = subs
            .iter()
            .filter_map(|(_, s)| s.as_ref().and_then(|s| id_of(s.id)))
            .collect();
        for (raw_sub, s) in subs {
            let sat = self.span_of(raw_sub);
            let Some((s, sid)) = s.and_then(|s| id_of(s.id).map(|sid| (s, sid))) else {
                self.warn(
                    diags,
                    sat,
                    format!("a sub-task of task `{id}` has no id; skipped"),
                );
                continue;
            };
            let full = format!("{id}.{sid}");
            let (stitle, ssp) = self.title(s.title, sat);
            let mut sub = make(
                tag,
                full.clone(),
                &stitle,
                s.status.as_ref(),
                ssp,
                self.path,
            );
            sub.depends_on = self.deps(
                s.dependencies.as_ref(),
                Some(id),
                &sibling_ids,
                &full,
                ssp,
                diags,
            );
            list.tasks.push(sub);
            list.edge(&full, id, EdgeKind::Subtask);
        }
    }

    /// The span of a value borrowed from the source.
    fn span_of(&self, raw: &RawValue) -> Span {
        let text = raw.get();
        let start = text
            .as_ptr()
            .addr()
            .checked_sub(self.source.as_ptr().addr())
            .filter(|&s| s + text.len() <= self.source.len())
            .unwrap_or(0);
        self.index.span(start, start + text.len())
    }

    /// The title (empty when absent or not a string) and the span of the task: its title
    /// when it has one, else `fallback` (the task object).
    fn title(&self, raw: Option<&RawValue>, fallback: Span) -> (String, Span) {
        match raw {
            Some(r) => {
                let title = serde_json::from_str::<String>(r.get()).unwrap_or_default();
                (title, self.span_of(r))
            }
            None => (String::new(), fallback),
        }
    }

    fn warn(&self, diags: &mut Vec<Diagnostic>, sp: Span, m: String) {
        let mut d = Diagnostic::new(
            codes::UNREADABLE_TASK,
            Severity::Warning,
            sp,
            m,
            "check the task's fields against task-master's schema",
        );
        if let Some(p) = self.path {
            d = d.with_path(p);
        }
        diags.push(d);
    }

    fn deps(
        &self,
        raw: Option<&Value>,
        parent: Option<&str>,
        siblings: &[String],
        own: &str,
        sp: Span,
        diags: &mut Vec<Diagnostic>,
    ) -> Vec<String> {
        let Some(raw) = raw else {
            return Vec::new();
        };
        let Some(arr) = raw.as_array() else {
            self.warn(
                diags,
                sp,
                format!("`dependencies` of task `{own}` is not an array; ignored"),
            );
            return Vec::new();
        };
        let mut out = Vec::with_capacity(arr.len());
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
                other => self.warn(
                    diags,
                    sp,
                    format!("dependency `{other}` of task `{own}` is not a task id; ignored"),
                ),
            }
        }
        out
    }
}

/// The id of a task: a number as written, or a non-blank string, trimmed.
fn id_of(raw: Option<&RawValue>) -> Option<String> {
    match serde_json::from_str::<Value>(raw?.get()).ok()? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn make(
    tag: &str,
    id: String,
    title: &str,
    status: Option<&Value>,
    sp: Span,
    path: Option<&Path>,
) -> TaskEntry {
    let mut task = TaskEntry::new(tag, id, title.trim());
    let status = status.and_then(Value::as_str).unwrap_or("pending");
    task.done = matches!(status, "done" | "completed" | "cancelled");
    task.span = sp;
    task.path = path.map(Path::to_path_buf);
    task
}
