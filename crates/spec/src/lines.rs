//! Byte offset → line and column in O(log n), so that spans cost no rescans of the file.

use crate::diagnostic::Span;

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
        let clamp = |mut i: usize| {
            i = i.min(text.len());
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let start = clamp(start);
        let end = clamp(end).max(start);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_span_from_range() {
        let t = "ab\ncé d\n\nxyz";
        let idx = LineIndex::new(t);
        for s in 0..=t.len() + 2 {
            for e in s..=t.len() + 2 {
                assert_eq!(idx.span(t, s, e), Span::from_range(t, s, e), "{s}..{e}");
            }
        }
    }
}
