//! Sentences, normative keywords and the EARS patterns (Mavin et al., "Easy Approach to
//! Requirements Syntax", RE 2009, <https://doi.org/10.1109/RE.2009.9>).
//!
//! Normative keywords are those of RFC 2119 / RFC 8174 (MUST, SHALL, SHOULD, MAY and their
//! negations) and their usual renderings in Chinese, Japanese, German, French and Spanish
//! requirement documents (see [`KEYWORDS`]). One Aho-Corasick automaton finds them all in one
//! pass; a Latin-script keyword counts only as a whole word.

use crate::model::{EarsPattern, NormativeLevel};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::sync::LazyLock;

/// Which forms of a keyword count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// Any case (`must`, `Must`, `MUST`): the word is unambiguous in requirement text.
    Any,
    /// Capitals only (`SHOULD`, `MAY`): RFC 8174 §2 gives the lower-case words their plain
    /// English meaning.
    Upper,
}

/// The keywords: text, level, which case counts. Longer phrases come first where one holds
/// another, and the automaton takes the leftmost-longest match.
///
/// Sources: RFC 2119 and RFC 8174 (English); GB/T 1.1-2020 §9 (Chinese: 应/应当/必须 for
/// requirements, 宜 for recommendations, 可 for permissions, 不应/不得 for prohibitions); JIS Z
/// 8301:2019 附属書 H (Japanese: しなければならない/してはならない, ものとする, 望ましい); DIN 820-2
/// (German: muss/darf nicht, soll/sollte, kann); ISO/IEC Directives Part 2 French verbal forms
/// (doit/ne doit pas, il convient, peut) and their Spanish UNE renderings (debe/no debe,
/// debería, puede).
const KEYWORDS: &[(&str, NormativeLevel, Case)] = {
    use Case::{Any, Upper};
    use NormativeLevel::{Mandatory as M, Optional as O, Recommended as R};
    &[
        // English (RFC 2119).
        ("must not", M, Any),
        ("must", M, Any),
        ("shall not", M, Any),
        ("shall", M, Any),
        ("REQUIRED", M, Upper),
        ("SHOULD NOT", R, Upper),
        ("SHOULD", R, Upper),
        ("RECOMMENDED", R, Upper),
        ("MAY", O, Upper),
        ("OPTIONAL", O, Upper),
        // Chinese, simplified and traditional.
        ("必须", M, Any),
        ("必須", M, Any),
        ("应当", M, Any),
        ("應當", M, Any),
        ("不得", M, Any),
        ("不应", M, Any),
        ("不應", M, Any),
        ("务必", M, Any),
        ("務必", M, Any),
        ("禁止", M, Any),
        ("应该", R, Any),
        ("應該", R, Any),
        ("建议", R, Any),
        ("建議", R, Any),
        // Japanese.
        ("なければならない", M, Any),
        ("なければなりません", M, Any),
        ("なくてはならない", M, Any),
        ("ねばならない", M, Any),
        ("てはならない", M, Any),
        ("てはなりません", M, Any),
        ("ものとする", M, Any),
        ("必要がある", M, Any),
        ("必要があります", M, Any),
        ("べきである", R, Any),
        ("べきです", R, Any),
        ("望ましい", R, Any),
        ("推奨", R, Any),
        // German (DIN 820-2).
        ("muss", M, Any),
        ("müssen", M, Any),
        ("MÜSSEN", M, Any),
        ("darf nicht", M, Any),
        ("dürfen nicht", M, Any),
        ("DÜRFEN NICHT", M, Any),
        ("soll", R, Any),
        ("sollen", R, Any),
        ("sollte", R, Any),
        ("sollten", R, Any),
        // French.
        ("ne doit pas", M, Any),
        ("ne doivent pas", M, Any),
        ("doit", M, Any),
        ("doivent", M, Any),
        ("devrait", R, Any),
        ("devraient", R, Any),
        // Spanish.
        ("no debe", M, Any),
        ("no deben", M, Any),
        ("debe", M, Any),
        ("deben", M, Any),
        ("debería", R, Any),
        ("deberían", R, Any),
        ("DEBERÍA", R, Any),
        ("DEBERÍAN", R, Any),
    ]
};

static AUTOMATON: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostLongest)
        .build(KEYWORDS.iter().map(|k| k.0))
        .expect("static keyword automaton builds")
});

/// One normative keyword found in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keyword {
    /// Byte offset where it starts.
    pub(crate) start: usize,
    /// Byte offset where it ends.
    pub(crate) end: usize,
    /// What it asks for.
    pub(crate) level: NormativeLevel,
    /// Whether it is written in capitals (`MUST`, not `must`): RFC 2119's marked form.
    pub(crate) capitals: bool,
}

/// Every normative keyword of `text`, in order (see [`KEYWORDS`]).
pub(crate) fn keywords(text: &str) -> impl Iterator<Item = Keyword> + '_ {
    AUTOMATON.find_iter(text).filter_map(move |m| {
        let (word, level, case) = *KEYWORDS.get(m.pattern().as_usize())?;
        let found = text.get(m.range())?;
        let latin = word
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() && !is_cjk(c));
        if latin {
            let before = text.get(..m.start())?.chars().next_back();
            let after = text.get(m.end()..)?.chars().next();
            if before.is_some_and(char::is_alphanumeric) || after.is_some_and(char::is_alphanumeric)
            {
                return None;
            }
        }
        let capitals = !found.chars().any(char::is_lowercase);
        if case == Case::Upper && !capitals {
            return None;
        }
        Some(Keyword {
            start: m.start(),
            end: m.end(),
            level,
            capitals,
        })
    })
}

/// Whether `c` is a Han, kana or Hangul character (scripts without word spaces).
fn is_cjk(c: char) -> bool {
    matches!(u32::from(c), 0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xac00..=0xd7af | 0xf900..=0xfaff)
}

/// The strongest level among the keywords of `text`.
pub(crate) fn level(text: &str) -> Option<NormativeLevel> {
    keywords(text).map(|k| k.level).min()
}

/// How many mandatory keywords (`MUST`, `SHALL` and their equivalents) `text` holds.
pub(crate) fn mandatory_count(text: &str) -> usize {
    keywords(text)
        .filter(|k| k.level == NormativeLevel::Mandatory)
        .count()
}

/// The EARS pattern of a normative sentence, from its leading keywords.
pub(crate) fn pattern(text: &str) -> EarsPattern {
    let head = text.trim_start();
    let word = |w: &str| {
        head.get(..w.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(w))
            && matches!(head.as_bytes().get(w.len()), Some(b' ' | b','))
    };
    let when = word("when");
    let kinds = [
        when.then_some(EarsPattern::EventDriven),
        (word("while") || when && head.to_ascii_lowercase().contains(" while "))
            .then_some(EarsPattern::StateDriven),
        word("if").then_some(EarsPattern::UnwantedBehaviour),
        word("where").then_some(EarsPattern::Optional),
    ];
    let mut found = kinds.into_iter().flatten();
    match (found.next(), found.next()) {
        (None, _) => EarsPattern::Ubiquitous,
        (Some(one), None) => one,
        (Some(_), Some(_)) => EarsPattern::Complex,
    }
}

/// The system named in "the <system> shall|must", when there is one (one to three words of
/// `[A-Za-z0-9_-]`; the leftmost `the`, then the fewest words, win). The words come back
/// joined by single spaces.
pub(crate) fn system(text: &str) -> Option<String> {
    static SYSTEM: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"(?i)\bthe[ \t\r\n]+([A-Za-z0-9_-]+(?:[ \t\r\n]+[A-Za-z0-9_-]+){0,2}?)[ \t\r\n]+(?:shall|must)\b")
            .expect("static regex is valid")
    });
    let caps = SYSTEM.captures_iter(text).next()?;
    Some(
        caps.get(1)?
            .as_str()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Splits text into sentences: at `.`, `!`, `?` (and `。`, `！`, `？`) followed by whitespace or
/// the end (CJK stops need no space), and at line breaks that start a list-like line.
/// Abbreviations (`e.g.`, `i.e.`, `etc.`, `vs.`) do not split. Returns byte ranges into `text`,
/// trimmed, never empty.
pub(crate) fn sentences(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        let end_here = match c {
            '\n' => {
                let rest = text.get(i + 1..).unwrap_or("").trim_start();
                rest.starts_with(['-', '*']) || rest.is_empty()
            }
            '。' | '！' | '？' => true,
            '.' | '!' | '?' => {
                next.is_none_or(char::is_whitespace)
                    && !abbreviation(text.get(start..=i).unwrap_or(""))
            }
            _ => false,
        };
        if end_here {
            let e = i + c.len_utf8();
            push_trimmed(text, start, e, &mut out);
            start = e;
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
    use NormativeLevel::{Mandatory, Optional, Recommended};

    #[test]
    fn ears_patterns() {
        assert_eq!(
            pattern("When the posting time arrives, the digest SHALL fetch."),
            EarsPattern::EventDriven
        );
        assert_eq!(
            pattern("If Slack answers 429, then the digest SHALL wait."),
            EarsPattern::UnwantedBehaviour
        );
        assert_eq!(pattern("The API shall log."), EarsPattern::Ubiquitous);
        assert_eq!(level("The API should log."), None);
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
    fn sentence_split_keeps_abbreviations_and_splits_cjk_stops() {
        let t = "It SHALL do x, e.g. y. Then z!";
        let s: Vec<_> = sentences(t).into_iter().map(|r| &t[r]).collect();
        assert_eq!(s, ["It SHALL do x, e.g. y.", "Then z!"]);
        let t = "系统必须记录。用户可以登录。";
        let s: Vec<_> = sentences(t).into_iter().map(|r| &t[r]).collect();
        assert_eq!(s, ["系统必须记录。", "用户可以登录。"]);
    }

    #[test]
    fn keywords_in_six_languages() {
        for (text, want) in [
            ("The service SHALL answer.", Some(Mandatory)),
            ("Users must sign in.", Some(Mandatory)),
            ("The page SHOULD load.", Some(Recommended)),
            ("The page should load.", None),
            ("The client MAY retry.", Some(Optional)),
            ("You may go.", None),
            ("mustard and shallow water", None),
            ("系统必须在交易时段内拉取快照", Some(Mandatory)),
            ("系統應當記錄事件", Some(Mandatory)),
            (
                "システムはパスワードを検証しなければならない",
                Some(Mandatory),
            ),
            ("APIキーを保存してはならない", Some(Mandatory)),
            ("応答は1秒以内であることが望ましい", Some(Recommended)),
            (
                "Das System muss die Anfrage protokollieren.",
                Some(Mandatory),
            ),
            ("Die Seite sollte schnell laden.", Some(Recommended)),
            (
                "Le système doit journaliser chaque requête.",
                Some(Mandatory),
            ),
            ("El sistema debe registrar cada solicitud.", Some(Mandatory)),
            ("El sistema debería responder.", Some(Recommended)),
            ("Le système ne doit pas planter.", Some(Mandatory)),
            ("El deber del sistema", None),
        ] {
            assert_eq!(level(text), want, "{text}");
        }
        assert_eq!(mandatory_count("It MUST x and SHALL y, SHOULD z."), 2);
    }
}
