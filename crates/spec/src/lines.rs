//! Byte offset → line and column for [`Span`]s, two ways for two access patterns, both giving
//! what [`Span::from_range`] gives:
//! - [`LineIndex`]: the line starts, indexed in one pass; the walker asks for a span of nearly
//!   every block, in document order, so the index pays for itself.
//! - [`LineCursor`]: newlines counted from the offset asked for last; `check` asks only for
//!   its findings' spans, often none, so it builds nothing up front.

use crate::diagnostic::{Span, char_range};
use std::cell::Cell;

/// The byte offsets where each line of a text starts.
#[derive(Debug, Clone)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
    /// The line index of the last [`LineIndex::span`] answer.
    last: std::cell::Cell<usize>,
}

impl LineIndex {
    /// Indexes `text` (one SIMD pass of `memchr` over its bytes).
    pub(crate) fn new(text: &str) -> Self {
        // Spec lines are short: reserve for one every 24 bytes rather than grow the vector.
        let mut starts = Vec::with_capacity(text.len() / 24 + 1);
        starts.push(0);
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        LineIndex {
            starts,
            last: std::cell::Cell::new(0),
        }
    }

    /// The same span as [`Span::from_range`] (clamped, moved to char boundaries), computed
    /// from the index.
    pub(crate) fn span(&self, text: &str, start: usize, end: usize) -> Span {
        let (start, end) = char_range(text, start, end);
        // Spans are asked for mostly in document order: try the line of the last answer and
        // the one after it before a binary search.
        let hint = self.last.get();
        let on = |i: usize| {
            self.starts.get(i).is_some_and(|&s| s <= start)
                && self.starts.get(i + 1).is_none_or(|&n| start < n)
        };
        let line_idx = if on(hint) {
            hint
        } else if on(hint + 1) {
            hint + 1
        } else {
            self.starts
                .partition_point(|&s| s <= start)
                .saturating_sub(1)
        };
        self.last.set(line_idx);
        let line_start = self.starts.get(line_idx).copied().unwrap_or(0).min(start);
        let column = text.get(line_start..start).map_or(0, |s| s.chars().count()) as u32 + 1;
        Span {
            start,
            end,
            line: line_idx as u32 + 1,
            column,
        }
    }
}

/// Line and column of byte offsets of one text, as [`Span::from_range`] gives them. The
/// newlines are counted (memchr) from the offset asked for last, so a check that reports
/// nothing pays nothing, and findings in file order cost one pass over the text in all
/// (an index of line starts cost a full pass before the first span).
pub(crate) struct LineCursor<'a> {
    text: &'a str,
    /// The offset asked for last, and the number of newlines before it.
    at: Cell<(usize, usize)>,
}

impl<'a> LineCursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        LineCursor {
            text,
            at: Cell::new((0, 0)),
        }
    }

    /// The span of `start..end`, clamped and moved back to char boundaries.
    pub(crate) fn span(&self, start: usize, end: usize) -> Span {
        let text = self.text;
        let (start, end) = char_range(text, start, end);
        let bytes = text.as_bytes();
        let newlines = |a: usize, b: usize| {
            memchr::memchr_iter(b'\n', bytes.get(a..b).unwrap_or_default()).count()
        };
        let (at, before) = self.at.get();
        let line = if start >= at {
            before + newlines(at, start)
        } else {
            before.saturating_sub(newlines(start, at))
        };
        self.at.set((start, line));
        let line_start =
            memchr::memrchr(b'\n', bytes.get(..start).unwrap_or_default()).map_or(0, |i| i + 1);
        let column = text.get(line_start..start).map_or(0, |s| s.chars().count());
        Span {
            start,
            end,
            line: line as u32 + 1,
            column: column as u32 + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_agree_with_span_from_range_everywhere() {
        let t = "ab\ncé d\n\nxyz";
        let index = LineIndex::new(t);
        let cursor = LineCursor::new(t);
        for s in 0..=t.len() + 2 {
            for e in s..=t.len() + 2 {
                assert_eq!(index.span(t, s, e), Span::from_range(t, s, e), "{s}..{e}");
                assert_eq!(cursor.span(s, e), Span::from_range(t, s, e), "{s}..{e}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn line_cursor_agrees_with_span_from_range(
            parts in proptest::collection::vec(
                proptest::sample::select(&["ab", "c", " ", "\n", "é", "✅", "\r\n"][..]),
                0..30,
            ),
            ranges in proptest::collection::vec((0usize..80, 0usize..80), 1..8),
        ) {
            let text = parts.concat();
            let lines = LineCursor::new(&text);
            for (s, e) in ranges {
                proptest::prop_assert_eq!(lines.span(s, e), Span::from_range(&text, s, e));
            }
        }
    }
}
