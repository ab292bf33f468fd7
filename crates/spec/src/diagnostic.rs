//! Diagnostics: the one finding type shared by every stage that reads user input.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A byte range in a source file, with the 1-based line and column of its start.
///
/// Invariants: `start <= end`; `start` and `end` are byte offsets into the file as read
/// (UTF-8 after lossless decoding; see [`crate::parse`]); `line >= 1`, `column >= 1`, and the
/// column counts Unicode scalar values from the start of the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// 1-based line of `start`.
    pub line: u32,
    /// 1-based column of `start`, in characters.
    pub column: u32,
}

/// `start..end` clamped to `source` and moved back to char boundaries, with `end >= start`:
/// the byte range every [`Span`] constructor reports.
pub(crate) fn char_range(source: &str, start: usize, end: usize) -> (usize, usize) {
    let clamp = |mut i: usize| {
        i = i.min(source.len());
        while !source.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = clamp(start);
    (start, clamp(end).max(start))
}

impl Span {
    /// Builds a span over `start..end` of `source`, computing line and column.
    ///
    /// Offsets past the end of `source` are clamped to its length, and an offset inside a
    /// multi-byte character is moved back to that character's first byte, so this never panics.
    pub fn from_range(source: &str, start: usize, end: usize) -> Self {
        let (start, end) = char_range(source, start, end);
        let before = &source[..start];
        let line = before.bytes().filter(|&b| b == b'\n').count() as u32 + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = source[line_start..start].chars().count() as u32 + 1;
        Span {
            start,
            end,
            line,
            column,
        }
    }

    /// Length of the span in bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when the span covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// How serious a finding is. `--strict` treats warnings as errors.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Blocks readiness.
    Error,
    /// Blocks readiness only under `--strict`.
    Warning,
    /// Advice; never blocks.
    Info,
}

impl Severity {
    /// The lower-case name used in output (`error`, `warning`, `info`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One finding about an input file, in the style of rustc's diagnostics.
///
/// Codes are stable across releases (`LS0xx` input, `LS1xx` structure, `LS2xx` wording,
/// `LS3xx` references and graph, `LS4xx` gate); see [`crate::codes`] for the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Diagnostic {
    /// Stable code, e.g. `LS101`.
    pub code: String,
    /// How serious it is.
    pub severity: Severity,
    /// The file the finding is in, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Where in the file.
    pub span: Span,
    /// What is wrong, lower case, no trailing period.
    pub message: String,
    /// What to do about it.
    pub help: String,
}

impl Diagnostic {
    /// A new diagnostic with no path.
    pub fn new(
        code: impl Into<String>,
        severity: Severity,
        span: Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code: code.into(),
            severity,
            path: None,
            span,
            message: message.into(),
            help: help.into(),
        }
    }

    /// The same diagnostic, attached to `path`.
    #[must_use]
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_line_and_column_count_characters() {
        let src = "ab\ncé d\n";
        let s = Span::from_range(src, 7, 8);
        assert_eq!((s.line, s.column), (2, 4));
    }

    #[test]
    fn span_clamps_out_of_range_and_mid_char() {
        let src = "é";
        let s = Span::from_range(src, 1, 99);
        assert_eq!((s.start, s.end), (0, 2));
    }
}
