//! Sentences, normative keywords and the EARS patterns (Mavin et al., "Easy Approach to
//! Requirements Syntax", RE 2009, <https://doi.org/10.1109/RE.2009.9>).

use crate::model::EarsPattern;
use regex::Regex;
use std::sync::LazyLock;

static NORMATIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)(SHALL|MUST|shall|must|Shall|Must)(?-u:\b)")
        .expect("static regex is valid")
});
/// "the <system> shall": the system is the last one to three words after a "the".
static SYSTEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)the[ \t\r\n]+([A-Za-z0-9_-]+(?:[ \t\r\n]+[A-Za-z0-9_-]+){0,2}?)[ \t\r\n]+(?:shall|must)(?-u:\b)")
        .expect("static regex is valid")
});

/// Whether `text` contains SHALL or MUST as a word (any common case).
pub(crate) fn is_normative(text: &str) -> bool {
    NORMATIVE.is_match(text)
}

/// The EARS pattern of a sentence, from its leading keywords. `None` when the sentence is not
/// normative.
pub(crate) fn classify(text: &str) -> Option<EarsPattern> {
    is_normative(text).then(|| pattern(text))
}

/// The EARS pattern of a sentence known to be normative ([`classify`] without the check).
pub(crate) fn pattern(text: &str) -> EarsPattern {
    // Only the first word and ` while ` are looked at, so only the head is lower-cased (char by
    // char: `str::to_lowercase` differs only for a final `Σ`, which never matches an ASCII
    // word), and ` while ` is found ASCII-case-insensitively (no non-ASCII character lower-cases
    // to one of its letters followed by another of them).
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
    let has_while = || {
        text.as_bytes()
            .windows(7)
            .any(|w| w.first() == Some(&b' ') && w.eq_ignore_ascii_case(b" while "))
    };
    let mut kinds = Vec::new();
    if word("when") {
        kinds.push(EarsPattern::EventDriven);
    }
    if word("while") || word("when") && has_while() {
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

/// The system named in "the <system> shall", when there is one (one to three words).
pub(crate) fn system(text: &str) -> Option<String> {
    let caps = SYSTEM.captures_iter(text).next()?;
    Some(
        caps.get(1)?
            .as_str()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Splits text into sentences: at `.`, `!` or `?` followed by whitespace, and at line
/// breaks that end a sentence. Abbreviations (`e.g.`, `i.e.`, `etc.`, `vs.`) do not split.
/// Returns byte ranges into `text`, trimmed, never empty.
pub(crate) fn sentences(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let end_here = match b {
            b'.' | b'!' | b'?' => {
                let next_ws = bytes.get(i + 1).is_none_or(u8::is_ascii_whitespace);
                next_ws && !abbreviation(text.get(start..=i).unwrap_or(""))
            }
            b'\n' => {
                // A line break ends a sentence only when the next line starts a list-like or
                // capitalised keyword line; otherwise it is a soft wrap.
                let rest = text.get(i + 1..).unwrap_or("").trim_start();
                rest.starts_with(['-', '*']) || rest.is_empty()
            }
            _ => false,
        };
        if end_here {
            push_trimmed(text, start, i + 1, &mut out);
            start = i + 1;
        }
        i += 1;
    }
    push_trimmed(text, start, text.len(), &mut out);
    out
}

fn abbreviation(sentence: &str) -> bool {
    let last = sentence
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(
        last.as_str(),
        "e.g." | "i.e." | "etc." | "vs." | "cf." | "approx." | "no." | "fig." | "e.g.," | "i.e.,"
    ) || last.len() == 2 && last.ends_with('.') && last.starts_with(|c: char| c.is_ascii_digit())
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
}
