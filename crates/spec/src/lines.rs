//! Byte offset → line and column in O(log n), so that spans cost no rescans of the file.

use crate::diagnostic::Span;

/// The byte offsets where each line of a text starts.
#[derive(Debug, Clone)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes `text` (one pass).
    pub(crate) fn new(text: &str) -> Self {
        const ONES: u64 = 0x0101_0101_0101_0101;
        let mut starts = Vec::with_capacity(text.len() / 32 + 1);
        starts.push(0);
        // Eight bytes at a time: a word without a `\n` (the common case) costs a few ALU ops;
        // memchr per line was slower on lines this short.
        let bytes = text.as_bytes();
        let mut base = 0;
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            if let Some(head) = w.get_mut(..chunk.len()) {
                head.copy_from_slice(chunk);
            }
            // Zero bytes of `x` are `\n` bytes of the chunk (padding zeros become 0x0a).
            let x = u64::from_le_bytes(w) ^ (ONES * u64::from(b'\n'));
            if x.wrapping_sub(ONES) & !x & (ONES << 7) != 0 {
                starts.extend(
                    chunk
                        .iter()
                        .enumerate()
                        .filter(|&(_, &b)| b == b'\n')
                        .map(|(i, _)| base + i + 1),
                );
            }
            base += chunk.len();
        }
        LineIndex { starts }
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
        let line_idx = self
            .starts
            .partition_point(|&s| s <= start)
            .saturating_sub(1);
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
