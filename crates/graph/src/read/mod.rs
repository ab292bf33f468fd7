//! Readers for the task lists that are graph inputs, and the detection of which one a file is.
//!
//! Every reader takes the file's bytes and returns the [`TaskList`] with the diagnostics it
//! found; none panics on any input (see the `graph_tasks_no_panic` fuzz target). Byte spans
//! point into the source as read (lossy UTF-8 decoding, which keeps offsets of valid text).
//!
//! - [`spec_kit`]: GitHub Spec Kit `tasks.md`
//!   (<https://github.com/github/spec-kit/blob/main/templates/tasks-template.md>).
//! - [`checklist`]: Kiro `tasks.md` (<https://kiro.dev/docs/specs/concepts/>), cc-sdd's
//!   variant (`(P)`, `_Depends:_`), and an OpenSpec change's `tasks.md`
//!   (<https://github.com/Fission-AI/OpenSpec>).
//! - [`task_master`]: task-master's `tasks.json` (<https://github.com/eyaltoledano/claude-task-master>).

pub mod checklist;
pub mod spec_kit;
pub mod task_master;

use crate::task::{TaskFormat, TaskList};
use lightsout_spec::{Diagnostic, Span};
use std::path::Path;

/// Reads a task list in `format` from `source`. `spec_id` names the list (the folder name
/// of a Kiro, Spec Kit or OpenSpec spec, or the task-master tag for tasks.json, where each
/// tag gives one list).
///
/// [`TaskFormat::Requirements`] and [`TaskFormat::Lightsout`] are not files of their own:
/// they come from a parsed spec ([`TaskList::from_spec`]); asking for them here gives an
/// empty list.
pub fn read(
    format: TaskFormat,
    source: &[u8],
    spec_id: &str,
    path: Option<&Path>,
) -> (Vec<TaskList>, Vec<Diagnostic>) {
    let text = String::from_utf8_lossy(source);
    match format {
        TaskFormat::SpecKit => {
            let (l, d) = spec_kit::read(&text, spec_id, path);
            (vec![l], d)
        }
        TaskFormat::Kiro | TaskFormat::OpenSpec => {
            let (l, d) = checklist::read(&text, spec_id, path, format);
            (vec![l], d)
        }
        TaskFormat::TaskMaster => task_master::read(&text, spec_id, path),
        TaskFormat::Requirements | TaskFormat::Lightsout => {
            (vec![TaskList::new(spec_id, format)], Vec::new())
        }
    }
}

/// Guesses the format of a task list file from its name, its siblings and its content:
/// `*.json` is task-master; a `tasks.md` beside `proposal.md` or `.openspec.yaml` is
/// OpenSpec; task ids `T001` make Spec Kit; numbered checkboxes make Kiro.
/// `None` when the file is none of these.
pub fn detect(path: &Path, source: &[u8]) -> Option<TaskFormat> {
    let ext = path.extension()?.to_string_lossy().to_ascii_lowercase();
    if ext == "json" {
        return Some(TaskFormat::TaskMaster);
    }
    if ext != "md" {
        return None;
    }
    let text = String::from_utf8_lossy(source);
    // A Lightsout spec (front matter with an `id:`, and its own `## Tasks` section) is a spec
    // even though its checklist looks like Spec Kit's: its tasks are read from the spec
    // itself (`TaskList::from_spec`). Spec Kit's `tasks.md` has front matter too, without `id:`.
    if is_lightsout_spec(&text) {
        return None;
    }
    let dir = path.parent();
    let beside = |f: &str| dir.is_some_and(|d| d.join(f).exists());
    let speckit = regex_lite_task_id(&text);
    if speckit {
        return Some(TaskFormat::SpecKit);
    }
    let numbered = text.lines().any(checklist::is_numbered_checkbox);
    if beside("proposal.md") || beside(".openspec.yaml") {
        return Some(TaskFormat::OpenSpec);
    }
    if numbered {
        Some(TaskFormat::Kiro)
    } else {
        None
    }
}

fn is_lightsout_spec(text: &str) -> bool {
    let mut lines = text.lines();
    if lines.next().map(str::trim_end) != Some("---") {
        return false;
    }
    let has_id = lines
        .by_ref()
        .take_while(|l| l.trim_end() != "---")
        .any(|l| l.starts_with("id:"));
    has_id && lines.any(|l| l.trim_end().eq_ignore_ascii_case("## tasks"))
}

fn regex_lite_task_id(text: &str) -> bool {
    text.lines().any(spec_kit::is_task_line)
}

/// A line of a source with its byte offset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    pub(crate) text: &'a str,
    pub(crate) start: usize,
}

/// The lines of `source` without their terminators, with byte offsets.
pub(crate) fn lines(source: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for piece in source.split_inclusive('\n') {
        let text = piece.trim_end_matches(['\n', '\r']);
        out.push(Line { text, start });
        start += piece.len();
    }
    out
}

/// Bytes between two character-count checkpoints of a [`LineIndex`].
const CHECKPOINT: usize = 256;

/// Line starts and character-count checkpoints of a source, so a span costs
/// `O(log lines + 256)` whatever the order of the queries and however long the line: a
/// one-line `tasks.json` of 20 MB costs no more per task than an indented one.
///
/// Invariant: [`LineIndex::span`] returns exactly what [`Span::from_range`] returns (which
/// counts from the start of the source for every span, and so is quadratic when used per
/// task).
pub(crate) struct LineIndex<'a> {
    source: &'a str,
    /// Byte offset of the start of each line; `starts[0] == 0`.
    starts: Vec<usize>,
    /// `chars[k]`: number of characters that start before byte `k * CHECKPOINT`; one entry
    /// per checkpoint up to and including `source.len()`.
    chars: Vec<usize>,
}

/// Whether `b` starts a UTF-8 character (is not a continuation byte `0b10xx_xxxx`).
#[allow(clippy::cast_possible_wrap)] // the wrap is the point: continuation bytes are < -0x40
fn starts_char(b: u8) -> bool {
    (b as i8) >= -0x40
}

impl<'a> LineIndex<'a> {
    /// Indexes `source` in one pass.
    pub(crate) fn new(source: &'a str) -> Self {
        let bytes = source.as_bytes();
        let mut starts = vec![0];
        let mut chars = Vec::with_capacity(bytes.len() / CHECKPOINT + 1);
        let mut count = 0usize;
        for (k, chunk) in bytes.chunks(CHECKPOINT).enumerate() {
            chars.push(count);
            count += chunk.iter().filter(|&&b| starts_char(b)).count();
            let base = k * CHECKPOINT;
            starts.extend(
                chunk
                    .iter()
                    .enumerate()
                    .filter(|&(_, &b)| b == b'\n')
                    .map(|(i, _)| base + i + 1),
            );
        }
        // The entry for `source.len()` when it falls on a checkpoint (and for an empty source).
        chars.push(count);
        LineIndex {
            source,
            starts,
            chars,
        }
    }

    /// Number of characters that start before byte `at` (`at <= source.len()`).
    fn chars_before(&self, at: usize) -> usize {
        let k = at / CHECKPOINT;
        self.chars[k]
            + self.source.as_bytes()[k * CHECKPOINT..at]
                .iter()
                .filter(|&&b| starts_char(b))
                .count()
    }

    /// Byte offset of the start of 1-based line `line` (the last line's start when past the
    /// end, 0 for line 0).
    pub(crate) fn line_start(&self, line: usize) -> usize {
        let i = line.saturating_sub(1).min(self.starts.len() - 1);
        self.starts[i]
    }

    /// The span of bytes `start..end`: same result as [`Span::from_range`] (offsets clamped
    /// to the source and moved back to a character boundary, `start <= end`; line and
    /// column 1-based, the column counted in characters).
    pub(crate) fn span(&self, start: usize, end: usize) -> Span {
        let clamp = |mut i: usize| {
            i = i.min(self.source.len());
            while !self.source.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let start = clamp(start);
        let end = clamp(end).max(start);
        let line = self.starts.partition_point(|&s| s <= start);
        let line_start = self.starts[line.saturating_sub(1)];
        let column = self.chars_before(start) - self.chars_before(line_start) + 1;
        Span {
            start,
            end,
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }
}

pub(crate) fn span(index: &LineIndex<'_>, line: &Line<'_>) -> Span {
    index.span(line.start, line.start + line.text.len())
}

/// `(indent, checked-char, rest)` of a `- [ ] ...` line.
pub(crate) fn checkbox(line: &str) -> Option<(usize, char, &str)> {
    let indent = line.len() - line.trim_start().len();
    let t = line.trim_start();
    let t = t
        .strip_prefix("- [")
        .or_else(|| t.strip_prefix("* ["))
        .or_else(|| t.strip_prefix("+ ["))?;
    let mut chars = t.char_indices();
    let (_, mark) = chars.next()?;
    let (i, close) = chars.next()?;
    if close != ']' {
        return None;
    }
    Some((indent, mark, &t[i + 1..]))
}

/// Strips markdown emphasis and code marks from a title, and trims it.
pub(crate) fn clean_title(s: &str) -> String {
    let s = s.trim();
    let mut out = s.replace("**", "");
    out = out.trim().trim_end_matches(':').trim().to_owned();
    out
}

/// Splits a requirement reference list (`1.1, 2.3`, `1.1–1.9`, `12 (descope record)`,
/// `Requirements 3.2`, `FR-001`) into ids, expanding ranges of dotted numbers.
pub(crate) fn requirement_ids(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    for item in list.split([',', ';']) {
        let mut item = item.trim().trim_matches(['_', '*', '`', '.']).trim();
        for prefix in [
            "Requirements",
            "Requirement",
            "Reqs",
            "Req",
            "requirements",
            "requirement",
        ] {
            if let Some(rest) = item.strip_prefix(prefix) {
                item = rest.trim_start_matches([' ', '.', ':']);
                break;
            }
        }
        let Some(first) = id_token(item) else {
            continue;
        };
        let rest = item[first.len()..].trim_start();
        let range_end = rest
            .strip_prefix('–')
            .or_else(|| rest.strip_prefix('—'))
            .or_else(|| rest.strip_prefix('-'))
            .or_else(|| rest.strip_prefix("to "))
            .map(str::trim_start)
            .and_then(id_token);
        match range_end.and_then(|end| expand_range(first, end)) {
            Some(ids) => out.extend(ids),
            None => out.push(first.to_owned()),
        }
    }
    out.dedup();
    out
}

/// The leading requirement id of `s`: dotted numbers (`1.2`) or a prefixed id (`FR-001`,
/// `REQ-3`, `US1`).
fn id_token(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let mut i = 0;
    // optional alphabetic prefix with an optional dash
    while i < b.len() && b[i].is_ascii_alphabetic() {
        i += 1;
    }
    if i > 0 && i < b.len() && (b[i] == b'-' || b[i] == b'_') {
        i += 1;
    }
    let digits_start = i;
    while i < b.len()
        && (b[i].is_ascii_digit()
            || (b[i] == b'.' && i + 1 < b.len() && b[i + 1].is_ascii_digit() && i > digits_start))
    {
        i += 1;
    }
    if i == digits_start {
        return None;
    }
    Some(&s[..i])
}

fn expand_range(first: &str, end: &str) -> Option<Vec<String>> {
    let (fp, fl) = first.rsplit_once('.').unwrap_or(("", first));
    let (ep, el) = end.rsplit_once('.').unwrap_or(("", end));
    if fp != ep
        || !fl.bytes().all(|b| b.is_ascii_digit())
        || !el.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let a: u32 = fl.parse().ok()?;
    let z: u32 = el.parse().ok()?;
    if z < a || z - a > 1000 {
        return None;
    }
    Some(
        (a..=z)
            .map(|k| {
                if fp.is_empty() {
                    k.to_string()
                } else {
                    format!("{fp}.{k}")
                }
            })
            .collect(),
    )
}

/// An estimate in hours from `3h`, `2.5 hours`, `90m`, `1d` (8 h) or a T-shirt size
/// (`XS` 1 h, `S` 2 h, `M` 4 h, `L` 8 h, `XL` 16 h, doubling per size).
pub(crate) fn estimate_hours(s: &str) -> Option<f64> {
    let s = s.trim().trim_matches(['_', '*', '`']).trim();
    if let Some(h) = lightsout_stdx::tshirt_hours(s) {
        return Some(h);
    }
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let n: f64 = s[..end].parse().ok()?;
    let unit = s[end..].trim().to_ascii_lowercase();
    let h = match unit.as_str() {
        "" | "h" | "hr" | "hrs" | "hour" | "hours" => n,
        "m" | "min" | "mins" | "minutes" => n / 60.0,
        "d" | "day" | "days" => n * 8.0,
        _ => return None,
    };
    h.is_finite().then_some(h)
}

/// Makes ids unique within one list: a repeated id becomes `ID~L<line>`, with a
/// duplicate-id error.
pub(crate) struct UniqueIds {
    seen: std::collections::HashSet<String>,
}

impl UniqueIds {
    pub(crate) fn new() -> Self {
        UniqueIds {
            seen: std::collections::HashSet::new(),
        }
    }

    pub(crate) fn claim(
        &mut self,
        id: String,
        span: Span,
        path: Option<&Path>,
        diags: &mut Vec<Diagnostic>,
    ) -> String {
        if self.seen.insert(id.clone()) {
            return id;
        }
        let mut d = Diagnostic::new(
            crate::codes::DUPLICATE_TASK,
            lightsout_spec::Severity::Error,
            span,
            format!("duplicate task id `{id}`"),
            "give every task its own id; references to this id go to its first task",
        );
        if let Some(p) = path {
            d = d.with_path(p);
        }
        diags.push(d);
        let mut unique = format!("{id}~L{}", span.line);
        let mut n = 2;
        while !self.seen.insert(unique.clone()) {
            unique = format!("{id}~L{}.{n}", span.line);
            n += 1;
        }
        unique
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_lists_expand_ranges_and_strip_words() {
        assert_eq!(requirement_ids("1.1, 2.3"), ["1.1", "2.3"]);
        assert_eq!(
            requirement_ids("1.1–1.3, 16.2"),
            ["1.1", "1.2", "1.3", "16.2"]
        );
        assert_eq!(requirement_ids("12 (descope record)"), ["12"]);
        assert_eq!(requirement_ids("Requirements 1.1, 1.2"), ["1.1", "1.2"]);
        assert_eq!(requirement_ids("FR-001, REQ-2"), ["FR-001", "REQ-2"]);
        assert_eq!(requirement_ids("3.1-3.2"), ["3.1", "3.2"]);
        assert!(requirement_ids("none").is_empty());
    }

    #[test]
    fn line_index_agrees_with_span_from_range() {
        let src = "ab\ncé d\n\nxyz";
        let idx = LineIndex::new(src);
        for a in 0..=src.len() + 2 {
            for b in a..=src.len() + 2 {
                assert_eq!(idx.span(a, b), Span::from_range(src, a, b), "{a}..{b}");
            }
        }
    }

    proptest::proptest! {
        /// The incremental spans equal the naive ones (`Span::from_range` counts from the
        /// start of the source every time), on sources longer than several checkpoints,
        /// with multi-byte characters, long and empty lines, queried in any order.
        #[test]
        fn line_index_spans_equal_the_naive_computation(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("\n".to_owned()),
                    proptest::strategy::Just("é".to_owned()),
                    proptest::strategy::Just("😀".to_owned()),
                    "[a-z ]{1,300}",
                ],
                0..40,
            ),
            queries in proptest::collection::vec((0usize..6000, 0usize..400), 1..40),
        ) {
            let src: String = pieces.concat();
            let idx = LineIndex::new(&src);
            for (a, len) in queries {
                let a = a % (src.len() + 2);
                proptest::prop_assert_eq!(idx.span(a, a + len), Span::from_range(&src, a, a + len));
            }
            proptest::prop_assert_eq!(
                idx.span(src.len(), src.len()),
                Span::from_range(&src, src.len(), src.len())
            );
        }
    }

    #[test]
    fn estimates() {
        assert_eq!(estimate_hours("3h"), Some(3.0));
        assert_eq!(estimate_hours("90 min"), Some(1.5));
        assert_eq!(estimate_hours("M"), Some(4.0));
        assert_eq!(estimate_hours("2d"), Some(16.0));
        assert_eq!(estimate_hours("soon"), None);
    }

    #[test]
    fn checkbox_lines() {
        assert_eq!(checkbox("  - [x] 1. a").map(|c| (c.0, c.1)), Some((2, 'x')));
        assert_eq!(checkbox("- [ ]* 2.1 b").map(|c| c.2), Some("* 2.1 b"));
        assert!(checkbox("- plain").is_none());
    }
}
