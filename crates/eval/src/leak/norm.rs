//! Normalisation: the one way the scanner reads both holdout text and scanned text, so that a
//! change of case, Unicode form, whitespace or typographic punctuation does not hide a copy.
//!
//! Per character of the input, in order:
//! 1. default-ignorable code points (zero-width joiners, soft hyphens, bidi controls,
//!    variation selectors, tags) are dropped (Unicode `Default_Ignorable_Code_Point`,
//!    UAX #44), except the zero-width space, which marks a word break and reads as a space;
//! 2. the compatibility decomposition (NFKD, UAX #15, through `unicode-normalization`) is
//!    taken and its combining marks are dropped, so `ﬁ` reads `fi`, full-width `Ａ` reads `A`,
//!    `é` reads `e` and a no-break space reads as a space;
//! 3. typographic quotes and dashes fold to `'`, `"` and `-`;
//! 4. letters are lower-cased (Unicode default case mapping), with `ß` read as `ss` and final
//!    sigma as sigma, the two full case folds that lower-casing misses.
//!
//! Working per character keeps every normalised character tied to the byte range of the
//! original character it came from, so findings point into the scanned text.

use std::hash::{DefaultHasher, Hasher};
use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Whether `c` is a default-ignorable code point (invisible, dropped before matching).
fn is_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200C}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

fn fold_punct(c: char) -> char {
    match c {
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' => '\'',
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{00AB}'
        | '\u{00BB}' => '"',
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' => '-',
        // A zero-width space marks a word break (UAX #14), so it reads as a space.
        c if c.is_whitespace() || c == '\u{200B}' => ' ',
        c => c,
    }
}

/// Calls `f(c)` for each normalised character of the original character `c`.
fn fold(c: char, f: &mut impl FnMut(char)) {
    if c.is_ascii() {
        f(fold_punct(c.to_ascii_lowercase()));
        return;
    }
    if is_ignorable(c) {
        return;
    }
    if c == '\u{200B}' {
        f(' ');
        return;
    }
    decompose_compatible(c, |d| {
        if is_combining_mark(d) {
            return;
        }
        for l in fold_punct(d).to_lowercase() {
            match l {
                'ß' => {
                    f('s');
                    f('s');
                }
                'ς' => f('σ'),
                l => f(l),
            }
        }
    });
}

/// Calls `f(start, end, c)` for every normalised character `c` of `text`, where
/// `start..end` is the byte range of the original character it comes from. Whitespace comes
/// out as `' '`.
pub(super) fn walk(text: &str, mut f: impl FnMut(usize, usize, char)) {
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        fold(c, &mut |n| f(i, end, n));
    }
}

/// The normalised form of `text` as a string (whitespace runs kept as single spaces).
pub(super) fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    walk(text, |_, _, c| {
        if c != ' ' || !out.ends_with(' ') {
            out.push(c);
        }
    });
    out
}

/// The normalised form of `text` with all whitespace removed: the view literals are
/// matched in.
pub(super) fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    walk(text, |_, _, c| {
        if c != ' ' {
            out.push(c);
        }
    });
    out
}

/// A word of scanned text: a maximal run of alphanumeric normalised characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Word {
    /// Byte offset of its first original character.
    pub start: usize,
    /// Byte offset one past its last original character.
    pub end: usize,
    /// Hash of its normalised text ([`hash_word`]).
    pub hash: u64,
}

/// The stable hash of one normalised word.
pub(super) fn hash_word(w: &str) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(w.as_bytes());
    h.finish()
}

/// Calls `f(start, end, word)` for every word of `text` (normalised, alphanumeric runs).
pub(super) fn for_each_word(text: &str, mut f: impl FnMut(usize, usize, &str)) {
    let mut buf = String::new();
    let mut span: Option<(usize, usize)> = None;
    walk(text, |s, e, c| {
        if c.is_alphanumeric() {
            buf.push(c);
            span = Some(span.map_or((s, e), |(s0, _)| (s0, e)));
        } else if let Some((s0, e0)) = span.take() {
            f(s0, e0, &buf);
            buf.clear();
        }
    });
    if let Some((s0, e0)) = span {
        f(s0, e0, &buf);
    }
}

/// The words of `text` with their hashes.
pub(super) fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    for_each_word(text, |start, end, w| {
        out.push(Word {
            start,
            end,
            hash: hash_word(w),
        });
    });
    out
}

/// The normalised words of `text` as strings.
pub(super) fn word_strings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_word(text, |_, _, w| out.push(w.to_owned()));
    out
}

/// Maps byte offsets of [`compact`]`(text)` back to `text`.
///
/// `positions` must be sorted ascending. The answer holds, for each, the byte range in `text`
/// of the original character whose normalised form covers that compact offset, and
/// `(text.len(), text.len())` past the end.
pub(super) fn compact_to_original(text: &str, positions: &[usize]) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(positions.len());
    let mut at = 0usize; // compact byte offset of the next normalised character
    let mut next = positions.iter().peekable();
    walk(text, |s, e, c| {
        if c == ' ' {
            return;
        }
        let after = at + c.len_utf8();
        while next.peek().is_some_and(|&&p| p < after) {
            next.next();
            out.push((s, e));
        }
        at = after;
    });
    for _ in next {
        out.push((text.len(), text.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_unicode_and_punctuation_forms_read_the_same() {
        assert_eq!(normalize("ＬＳ-Canary"), "ls-canary");
        assert_eq!(normalize("“café”  —\u{200D}x\u{200B}y"), "\"cafe\" -x y");
        assert_eq!(normalize("STRAẞE ﬁne"), "strasse fine");
        assert_eq!(compact("a b\u{00A0}c\td"), "abcd");
    }

    #[test]
    fn words_keep_their_original_offsets() {
        let text = "Héllo, WORLD\u{200D}wide";
        let ws: Vec<(usize, usize)> = words(text).iter().map(|w| (w.start, w.end)).collect();
        assert_eq!(ws, vec![(0, 6), (8, 20)]);
        assert_eq!(word_strings(text), vec!["hello", "worldwide"]);
        assert_eq!(words("HELLO")[0].hash, hash_word("hello"));
    }

    #[test]
    fn compact_offsets_map_back() {
        let text = "x  Ａb c";
        // compact: "xabc"; 'a' is at compact byte 1, 'c' at 3.
        assert_eq!(compact(text), "xabc");
        assert_eq!(
            compact_to_original(text, &[1, 3, 4]),
            vec![(3, 6), (8, 9), (9, 9)]
        );
    }
}
