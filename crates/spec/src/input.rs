//! Bytes to text: size limit, binary detection, UTF-8 decoding, with diagnostics that point at
//! the offending byte.

use crate::codes;
use crate::diagnostic::{Diagnostic, Severity, Span};
use std::borrow::Cow;

/// Largest input the parser reads, in bytes (16 MiB). Larger inputs get [`codes::TOO_LARGE`].
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

/// The decoded text, or `None` when the input is not parsed at all.
pub(crate) fn decode<'a>(bytes: &'a [u8], diags: &mut Vec<Diagnostic>) -> Option<Cow<'a, str>> {
    if bytes.len() > MAX_INPUT_BYTES {
        diags.push(Diagnostic::new(
            codes::TOO_LARGE,
            Severity::Error,
            span_at(bytes, MAX_INPUT_BYTES),
            format!(
                "file is {} bytes, over the {MAX_INPUT_BYTES}-byte limit for a spec",
                bytes.len()
            ),
            "split the spec into several specs linked with `depends_on`",
        ));
        return None;
    }
    if let Some(nul) = memchr0(bytes) {
        diags.push(Diagnostic::new(
            codes::BINARY,
            Severity::Error,
            span_at(bytes, nul),
            format!("file is binary: NUL byte at offset {nul}"),
            "pass a markdown spec (UTF-8 text), not a binary file",
        ));
        return None;
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(e) => {
            let at = e.valid_up_to();
            diags.push(Diagnostic::new(
                codes::NOT_UTF8,
                Severity::Error,
                span_at(bytes, at),
                format!(
                    "file is not valid UTF-8: invalid byte 0x{:02x} at offset {at}",
                    bytes.get(at).copied().unwrap_or(0)
                ),
                "re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`); it was read with \
                 U+FFFD in place of invalid bytes, so later offsets may shift",
            ));
            String::from_utf8_lossy(bytes)
        }
    };
    if text.trim().is_empty() {
        diags.push(Diagnostic::new(
            codes::EMPTY,
            Severity::Error,
            Span::from_range(&text, 0, text.len()),
            "file is empty",
            "write the spec, starting from `examples/specs/` or `lightsout spec schema`",
        ));
        return None;
    }
    Some(text)
}

fn memchr0(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(0, bytes)
}

/// A one-byte span at byte `at` of possibly non-UTF-8 `bytes`, with its line and column.
pub(crate) fn span_at(bytes: &[u8], at: usize) -> Span {
    let at = at.min(bytes.len());
    let before = bytes.get(..at).unwrap_or(bytes);
    // One pass over at most MAX_INPUT_BYTES, once per bad input: not worth a bytecount dependency.
    #[allow(clippy::naive_bytecount)]
    let line = before.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let col_bytes = before.get(line_start..).unwrap_or(&[]);
    let column = String::from_utf8_lossy(col_bytes).chars().count() as u32 + 1;
    Span {
        start: at,
        end: (at + 1).min(bytes.len()).max(at),
        line,
        column,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_points_at_the_byte() {
        let mut d = Vec::new();
        let t = decode(b"# ok\nab\xffc\n", &mut d);
        assert!(t.is_some());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, codes::NOT_UTF8);
        assert_eq!((d[0].span.line, d[0].span.column), (2, 3));
    }

    #[test]
    fn binary_and_empty_are_not_parsed() {
        let mut d = Vec::new();
        assert!(decode(b"abc\0def", &mut d).is_none());
        assert!(decode(b"  \n ", &mut d).is_none());
        let c: Vec<_> = d.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(c, [codes::BINARY, codes::EMPTY]);
    }
}
