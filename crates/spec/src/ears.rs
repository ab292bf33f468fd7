//! Sentences, normative keywords and the EARS patterns (Mavin et al., "Easy Approach to
//! Requirements Syntax", RE 2009, <https://doi.org/10.1109/RE.2009.9>).
//!
//! Hand-written scanners, one pass each over a statement's bytes: they run for every sentence
//! of every requirement, and the regular expressions they replace cost more than the markdown
//! parse itself on criterion-dense specs (`benches/spec.rs`). The tests keep those expressions
//! as oracles and compare them with the scanners on generated text.

use crate::ascii::{folds_to_ascii_letter, letters_at, word_byte};
use crate::model::EarsPattern;

/// The SHALL and MUST words of `text` (see [`is_keyword`]), as the byte offsets where they
/// start, in order.
///
/// Only where [`letters_at`] finds `ha` or `us` (any case) are the neighbouring bytes compared:
/// those are the second and third letters of every keyword, and rare enough in prose that
/// most eight-byte blocks need no closer look.
fn keywords(text: &str) -> impl Iterator<Item = usize> + '_ {
    let bytes = text.as_bytes();
    let at = move |second: usize| {
        let start = second.checked_sub(1)?;
        let len = if bytes.get(second)? | 0x20 == b'h' {
            5
        } else {
            4
        };
        let word = bytes.get(start..start + len)?;
        let before = start.checked_sub(1).and_then(|i| bytes.get(i)).copied();
        let after = bytes.get(start + len).copied();
        (is_keyword(word) && !before.is_some_and(word_byte) && !after.is_some_and(word_byte))
            .then_some(start)
    };
    letters_at(bytes, &[[b'h', b'a'], [b'u', b's']]).filter_map(at)
}

/// Whether `word` is SHALL or MUST in one of the cases specs write them (`SHALL`, `shall`,
/// `Shall`; the same for MUST).
fn is_keyword(word: &[u8]) -> bool {
    matches!(
        word,
        b"SHALL" | b"shall" | b"Shall" | b"MUST" | b"must" | b"Must"
    )
}

/// How many times SHALL or MUST occurs as a whole word in `text` (see [`is_keyword`]).
pub(crate) fn normative_count(text: &str) -> usize {
    keywords(text).count()
}

/// Whether `text` contains SHALL or MUST as a word (any common case).
pub(crate) fn is_normative(text: &str) -> bool {
    keywords(text).next().is_some()
}

/// The EARS pattern of a sentence, from its leading keywords. `None` when the sentence is not
/// normative.
#[cfg(test)]
fn classify(text: &str) -> Option<EarsPattern> {
    is_normative(text).then(|| pattern(text))
}

/// The EARS pattern of a sentence known to be normative (see [`is_normative`]), from its
/// leading keywords.
pub(crate) fn pattern(text: &str) -> EarsPattern {
    // The first word, compared ASCII-case-insensitively on the bytes: no non-ASCII character
    // lower-cases to `when`, `while`, `if` or `where` followed by a space or comma (U+0130
    // lower-cases to `i` plus a combining dot), so this equals comparing the lower-cased text.
    let head = text.trim_start().as_bytes();
    let word = |w: &[u8]| {
        head.get(..w.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(w))
            && matches!(head.get(w.len()), Some(b' ' | b','))
    };
    let has_while = || {
        let bytes = text.as_bytes();
        memchr::memchr2_iter(b'w', b'W', bytes).any(|i| {
            i > 0
                && bytes.get(i - 1) == Some(&b' ')
                && bytes
                    .get(i..i + 6)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"while "))
        })
    };
    let when = word(b"when");
    let kinds = [
        when.then_some(EarsPattern::EventDriven),
        (word(b"while") || when && has_while()).then_some(EarsPattern::StateDriven),
        word(b"if").then_some(EarsPattern::UnwantedBehaviour),
        word(b"where").then_some(EarsPattern::Optional),
    ];
    let mut found = kinds.into_iter().flatten();
    match (found.next(), found.next()) {
        (None, _) => EarsPattern::Ubiquitous,
        (Some(one), None) => one,
        (Some(_), Some(_)) => EarsPattern::Complex,
    }
}

/// The system named in "the <system> shall", when there is one (one to three words).
///
/// The leftmost `the` (any case, at an ASCII word boundary, followed by blanks) that is
/// followed by one to three words of `[A-Za-z0-9_-]` and then `shall` or `must` (any case,
/// ending at a word boundary) names the system; the fewest words win. The words come back
/// joined by single spaces.
pub(crate) fn system(text: &str) -> Option<String> {
    if folds_to_ascii_letter(text) {
        return oracle::system(text);
    }
    let bytes = text.as_bytes();
    let blank = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    // The end of the blank run at `at` (== `at` when there is none).
    let skip_blank = |at: usize| {
        at + bytes
            .get(at..)
            .map_or(0, |r| r.iter().position(|&b| !blank(b)).unwrap_or(r.len()))
    };
    let name_end = |at: usize| {
        at + bytes.get(at..).map_or(0, |r| {
            r.iter().position(|&b| !name_byte(b)).unwrap_or(r.len())
        })
    };
    let keyword_at = |at: usize| {
        [&b"shall"[..], b"must"].iter().any(|k| {
            bytes
                .get(at..at + k.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(k))
                && !bytes.get(at + k.len()).copied().is_some_and(word_byte)
        })
    };
    for t in letters_at(bytes, &[[b't', b'h', b'e']]) {
        let boundary = t == 0 || !bytes.get(t - 1).copied().is_some_and(word_byte);
        if !boundary || !bytes.get(t + 3).copied().is_some_and(blank) {
            continue;
        }
        let first = skip_blank(t + 3);
        let mut at = first;
        for _ in 0..3 {
            let end = name_end(at);
            if end == at {
                break;
            }
            let next = skip_blank(end);
            if next == end {
                // A word must be followed by blanks: `system,` names nothing.
                break;
            }
            if keyword_at(next) {
                let names = text.get(first..end).unwrap_or("");
                return Some(names.split_ascii_whitespace().collect::<Vec<_>>().join(" "));
            }
            at = next;
        }
    }
    None
}

/// The regular expressions the scanners replace: the fallback for text that needs Unicode
/// case folding, and the tests' oracle.
mod oracle {
    use regex::Regex;
    use std::sync::LazyLock;

    static SYSTEM: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)(?-u:\b)the[ \t\r\n]+([A-Za-z0-9_-]+(?:[ \t\r\n]+[A-Za-z0-9_-]+){0,2}?)[ \t\r\n]+(?:shall|must)(?-u:\b)")
            .expect("static regex is valid")
    });

    pub(super) fn system(text: &str) -> Option<String> {
        let caps = SYSTEM.captures_iter(text).next()?;
        Some(
            caps.get(1)?
                .as_str()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        )
    }

    #[cfg(test)]
    pub(super) static NORMATIVE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?-u:\b)(SHALL|MUST|shall|must|Shall|Must)(?-u:\b)")
            .expect("static regex is valid")
    });
}

/// Splits text into sentences: at `.`, `!` or `?` followed by whitespace, and at line
/// breaks that end a sentence. Abbreviations (`e.g.`, `i.e.`, `etc.`, `vs.`) do not split.
/// Returns byte ranges into `text`, trimmed, never empty.
pub(crate) fn sentences(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    // Only `.`, `!`, `?` and `\n` can end a sentence: jump between them.
    let mut stops = memchr::memchr3_iter(b'.', b'!', b'?', bytes).peekable();
    let mut breaks = memchr::memchr_iter(b'\n', bytes).peekable();
    loop {
        let i = match (stops.peek(), breaks.peek()) {
            (Some(&s), Some(&n)) if s < n => stops.next(),
            (Some(_), None) => stops.next(),
            (_, Some(_)) => breaks.next(),
            (None, None) => None,
        };
        let Some(i) = i else { break };
        let end_here = if bytes.get(i) == Some(&b'\n') {
            // A line break ends a sentence only when the next line starts a list-like or
            // capitalised keyword line; otherwise it is a soft wrap.
            let rest = text.get(i + 1..).unwrap_or("").trim_start();
            rest.starts_with(['-', '*']) || rest.is_empty()
        } else {
            let next_ws = bytes.get(i + 1).is_none_or(u8::is_ascii_whitespace);
            next_ws && !abbreviation(text.get(start..=i).unwrap_or(""))
        };
        if end_here {
            push_trimmed(text, start, i + 1, &mut out);
            start = i + 1;
        }
    }
    push_trimmed(text, start, text.len(), &mut out);
    out
}

/// Whether the last word of `sentence` (after a blank or `(`) is an abbreviation that does
/// not end a sentence.
fn abbreviation(sentence: &str) -> bool {
    let last = sentence
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("");
    let is = |a: &str| last.eq_ignore_ascii_case(a);
    [
        "e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.", "no.", "fig.", "e.g.,", "i.e.,",
    ]
    .into_iter()
    .any(is)
        || last.len() == 2 && last.ends_with('.') && last.starts_with(|c: char| c.is_ascii_digit())
}

fn push_trimmed(text: &str, s: usize, e: usize, out: &mut Vec<std::ops::Range<usize>>) {
    let Some(slice) = text.get(s..e) else { return };
    let lead = slice.len() - slice.trim_start().len();
    let t = slice.trim();
    if !t.is_empty() {
        out.push(s + lead..s + lead + t.len());
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ears_patterns() {
        assert_eq!(
            classify("When the posting time arrives, the digest SHALL fetch."),
            Some(EarsPattern::EventDriven)
        );
        assert_eq!(
            classify("If Slack answers 429, then the digest SHALL wait."),
            Some(EarsPattern::UnwantedBehaviour)
        );
        assert_eq!(
            classify("The API shall log."),
            Some(EarsPattern::Ubiquitous)
        );
        assert_eq!(classify("The API should log."), None);
    }

    #[test]
    fn system_names() {
        assert_eq!(
            system("WHEN x THEN the system SHALL y").as_deref(),
            Some("system")
        );
        assert_eq!(
            system("When a link expires, the Link_Store SHALL delete it").as_deref(),
            Some("Link_Store")
        );
        assert_eq!(system("Validation output SHALL include"), None);
    }

    #[test]
    fn sentence_split_keeps_abbreviations() {
        let t = "It SHALL do x, e.g. y. Then z!";
        let s: Vec<_> = sentences(t).into_iter().map(|r| &t[r]).collect();
        assert_eq!(s, ["It SHALL do x, e.g. y.", "Then z!"]);
    }

    /// The first-word rule as it was written before the scanner: lower-case the head, then
    /// compare.
    fn pattern_oracle(text: &str) -> EarsPattern {
        let lower: String = text
            .trim_start()
            .chars()
            .take(8)
            .flat_map(char::to_lowercase)
            .collect();
        let word = |w: &str| {
            lower.starts_with(w)
                && lower
                    .get(w.len()..)
                    .is_some_and(|r| r.starts_with([' ', ',']))
        };
        let has_while = text.to_ascii_lowercase().contains(" while ");
        let mut kinds = Vec::new();
        if word("when") {
            kinds.push(EarsPattern::EventDriven);
        }
        if word("while") || word("when") && has_while {
            kinds.push(EarsPattern::StateDriven);
        }
        if word("if") {
            kinds.push(EarsPattern::UnwantedBehaviour);
        }
        if word("where") {
            kinds.push(EarsPattern::Optional);
        }
        match kinds.as_slice() {
            [] => EarsPattern::Ubiquitous,
            [one] => *one,
            _ => EarsPattern::Complex,
        }
    }

    /// Text made of the words the scanners look at, in any order and case, mostly separated
    /// by single spaces (as statements are).
    fn fragments() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let word = prop::sample::select(vec![
            "the",
            "THE",
            "tHe",
            "system",
            "Link_Store",
            "a-b",
            "x,",
            "9",
            "shall",
            "SHALL",
            "Shall",
            "sHall",
            "must",
            "Must",
            "shalls",
            "when",
            "WHEN",
            "While",
            "while",
            "if",
            "where",
            "then",
            "bathe",
            "_the",
            "(the",
            "é",
            "ſhall",
            "\u{212A}",
            "İf",
            "",
        ]);
        let sep = prop::sample::select(vec![
            " ", " ", " ", " ", "  ", "\t", "\n", "\r", ",", ". ", "-",
        ]);
        prop::collection::vec((word, sep), 0..12)
            .prop_map(|v| v.into_iter().flat_map(|(w, s)| [w, s]).collect())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn scanners_agree_with_the_regular_expressions(text in fragments()) {
            let regex_count = oracle::NORMATIVE.find_iter(&text).count();
            proptest::prop_assert_eq!(normative_count(&text), regex_count);
            proptest::prop_assert_eq!(is_normative(&text), regex_count > 0);
            proptest::prop_assert_eq!(system(&text), oracle::system(&text));
            proptest::prop_assert_eq!(pattern(&text), pattern_oracle(&text));
        }
    }
}
