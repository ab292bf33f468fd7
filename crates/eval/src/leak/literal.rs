//! Distinctive literals of a scenario: the URLs, paths, header values, JSON values, quoted
//! strings and tokens a copy would carry even when every sentence around them is reworded.
//!
//! A literal is *distinctive* when all of these hold (checked on its normalised form with
//! whitespace removed, see [`super::norm`]):
//! - it is structured: it holds a digit or punctuation joining two letters or digits (`/`,
//!   `:`, `=`, `-`, `.` ...; `POST /links` is not joined, `/no/such` is), or it is one token of at least [`LONG_TOKEN`] characters; plain words
//!   (`teal`, `plain text`) are left to the word-shingle check, where a lone common word
//!   cannot trip it;
//! - it is not a well-known protocol value ([`PROTOCOL`]: `no-store`, `text/plain` ...);
//! - it does not occur in the allowed (visible) corpus;
//! - its *novel* characters number at least [`MIN_NOVEL_CHARS`]: the characters of its
//!   alphanumeric tokens of 3 characters or more that are neither in the allowed corpus's
//!   vocabulary nor in [`STOP`] or [`VOCAB`], counting numbers only from [`MIN_NUMBER_DIGITS`] digits
//!   (so `https://example.com/a`, `/status/418`, `200`, `GET` and `true` are not distinctive,
//!   while `https://example.com/popular`, `C0GENERAL1` and `t0k3n` are).

use super::norm;
use regex::Regex;
use std::collections::HashSet;
use std::sync::LazyLock;

/// Novel characters a literal needs to count as distinctive.
pub(super) const MIN_NOVEL_CHARS: usize = 4;
/// Digits a number needs before it counts as novel (`2048` is not, `4815162342` is).
pub(super) const MIN_NUMBER_DIGITS: usize = 6;
/// A single unstructured token this long is distinctive on its own (`zzzzzzzzzzzz`).
pub(super) const LONG_TOKEN: usize = 12;

/// Whole values that protocols and formats define, never evidence of a copy
/// (RFC 9110 field names, RFC 9111 cache directives, common media types and hosts).
const PROTOCOL: &[&str] = &[
    "no-store",
    "no-cache",
    "max-age=0",
    "must-revalidate",
    "no-store,no-cache",
    "keep-alive",
    "chunked",
    "gzip",
    "utf-8",
    "charset=utf-8",
    "text/plain",
    "text/html",
    "text/plain;charset=utf-8",
    "text/html;charset=utf-8",
    "application/json",
    "application/json;charset=utf-8",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "*/*",
    "nosniff",
    "http://localhost",
    "https://localhost",
    "http://127.0.0.1",
    "https://example.com",
    "http://example.com",
    "https://example.org",
    "content-type",
    "content-length",
    "cache-control",
    "user-agent",
    "www-authenticate",
    "x-forwarded-for",
    "x-request-id",
    "x-content-type-options",
];

/// English function words and frequent verbs: no evidence of copied prose.
pub(super) const STOP: &[&str] = &[
    "a", "an", "to", "of", "in", "on", "at", "by", "it", "be", "as", "or", "if", "so", "do", "we",
    "i", "me", "my", "up", "us", "the", "and", "for", "with", "that", "this", "from", "are", "was",
    "were", "is", "not", "but", "all", "any", "one", "two", "its", "his", "her", "our", "their",
    "you", "your", "has", "have", "had", "can", "will", "may", "must", "shall", "should", "would",
    "could", "does", "did", "done", "when", "then", "than", "there", "here", "what", "which",
    "who", "how", "why", "where", "each", "every", "some", "more", "most", "less", "very", "also",
    "only", "into", "onto", "over", "under", "after", "before", "about", "again", "still", "just",
    "like", "make", "made", "get", "got", "set", "use", "used", "new", "old", "out", "off", "own",
    "same", "other", "such", "both", "few", "many", "much", "now", "yes", "no", "too", "via",
    "per", "once", "while", "within", "without", "between", "through", "given", "let", "say",
    "see", "run", "runs", "running", "send", "sends", "sent",
];

/// The vocabulary of HTTP, JSON, URLs and code that any service code or test uses: no
/// evidence of a copied value (together with [`STOP`]).
pub(super) const VOCAB: &[&str] = &[
    "http",
    "https",
    "www",
    "com",
    "org",
    "net",
    "localhost",
    "example",
    "api",
    "url",
    "uri",
    "json",
    "html",
    "xml",
    "text",
    "plain",
    "post",
    "put",
    "patch",
    "delete",
    "head",
    "options",
    "status",
    "error",
    "errors",
    "code",
    "body",
    "header",
    "headers",
    "content",
    "type",
    "length",
    "request",
    "response",
    "true",
    "false",
    "null",
    "none",
    "ok",
    "location",
    "allow",
    "accept",
    "host",
    "origin",
    "agent",
    "user",
    "bearer",
    "basic",
    "authorization",
    "token",
    "cache",
    "control",
    "store",
    "charset",
    "utf",
    "data",
    "form",
    "application",
    "message",
    "name",
    "value",
    "key",
    "keys",
    "id",
    "ids",
    "args",
    "query",
    "path",
    "port",
    "server",
    "client",
    "service",
    "python",
    "python3",
    "import",
    "print",
    "def",
    "return",
    "self",
    "class",
    "sys",
    "argv",
    "exit",
    "str",
    "int",
    "dict",
    "list",
];

/// The visible corpus a literal is tested against.
#[derive(Debug, Clone, Default)]
pub(super) struct Allowed {
    /// Normalised words of the visible texts.
    pub(super) vocab: HashSet<String>,
    /// The visible texts in the compact normalised form, one per entry.
    pub(super) compact: Vec<String>,
}

impl Allowed {
    /// The corpus of `texts`.
    pub(super) fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut a = Allowed::default();
        for t in texts {
            a.vocab.extend(norm::word_strings(t));
            a.compact.push(norm::compact(t));
        }
        a
    }

    fn contains(&self, lit: &str) -> bool {
        self.compact.iter().any(|c| c.contains(lit))
    }
}

static SPAN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"`([^`]+)`").expect("static regex"));
static QUOTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#""([^"\\]{1,400})""#).expect("static regex"));
static URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'`<>]+"#).expect("static regex"));
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\{[A-Za-z_][A-Za-z0-9_]*\}|<[A-Za-z_][A-Za-z0-9_]*>").expect("static regex")
});
static TOKEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9][A-Za-z0-9_+/=-]{4,}").expect("static regex"));

/// Raw literal candidates of one piece of scenario text (a step, a scenario name), before the
/// distinctiveness test.
pub(super) fn candidates(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let push_parts = |s: &str, out: &mut Vec<String>| {
        // A placeholder (`{code}`, `<code>`) stands for a value chosen at run time: the text
        // on either side of it is a literal of its own.
        for piece in PLACEHOLDER.split(s) {
            let piece = piece.trim();
            if !piece.is_empty() {
                out.push(piece.to_owned());
            }
        }
    };
    let prose = SPAN.replace_all(text, " ");
    for cap in SPAN.captures_iter(text) {
        let span = &cap[1];
        push_parts(span, &mut out);
        // `POST /links`, `Authorization: Bearer t0k3n`: the path and the header value.
        for part in span.split_whitespace() {
            if part.starts_with('/') || part.contains("://") {
                push_parts(part, &mut out);
                // Its segments and query values: `/base64/bGlnaHRzb3V0` leaks `bGlnaHRzb3V0`.
                for seg in part.split(['/', '?', '&', '=']) {
                    push_parts(seg, &mut out);
                }
            }
        }
        if let Some((name, value)) = span.split_once(": ")
            && !name.contains(char::is_whitespace)
        {
            push_parts(value, &mut out);
        }
        match serde_json::from_str::<serde_json::Value>(span) {
            Ok(v) => json_strings(&v, &mut |s| push_parts(s, &mut out)),
            Err(_) => {
                for q in QUOTED.captures_iter(span) {
                    push_parts(&q[1], &mut out);
                }
            }
        }
    }
    for q in QUOTED.captures_iter(&prose) {
        push_parts(&q[1], &mut out);
    }
    for u in URL.find_iter(text) {
        push_parts(u.as_str().trim_end_matches(['.', ',', ')', ';']), &mut out);
    }
    for t in TOKEN.find_iter(text) {
        let t = t.as_str();
        if t.chars().any(|c| c.is_ascii_digit()) && t.chars().any(char::is_alphabetic) {
            out.push(t.to_owned());
        }
    }
    out.sort();
    out.dedup();
    out
}

fn json_strings(v: &serde_json::Value, f: &mut impl FnMut(&str)) {
    match v {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_strings(x, f)),
        serde_json::Value::Object(o) => o.values().for_each(|x| json_strings(x, f)),
        serde_json::Value::Number(n) => f(&n.to_string()),
        _ => {}
    }
}

/// Whether a normalised character separates tokens inside a structured literal.
fn structural(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_whitespace()
}

/// The compact normalised form of `raw` when it is distinctive against `allowed`.
pub(super) fn distinctive(raw: &str, allowed: &Allowed, common: &HashSet<&str>) -> Option<String> {
    let lit = norm::compact(raw);
    let tokens = norm::word_strings(raw);
    let has_digit = lit.chars().any(|c| c.is_ascii_digit());
    let inner = lit.trim_matches(structural);
    let spaced: Vec<char> = norm::normalize(raw).chars().collect();
    let joins = spaced
        .windows(3)
        .any(|w| w[0].is_alphanumeric() && structural(w[1]) && w[2].is_alphanumeric());
    let structured =
        has_digit || joins || (tokens.len() == 1 && tokens[0].chars().count() >= LONG_TOKEN);
    if !structured
        || PROTOCOL.contains(&lit.as_str())
        || PROTOCOL.contains(&inner)
        || allowed.contains(&lit)
    {
        return None;
    }
    let novel = novelty(&tokens, allowed, common).max(suffix_novelty(&lit, allowed, common));
    (novel >= MIN_NOVEL_CHARS).then_some(lit)
}

/// The novel characters of what follows the longest prefix of `lit` that the allowed texts
/// hold, counting its tokens even when the visible texts use them elsewhere:
/// `https://example.com/regression` is novel by `regression` when the spec has
/// `https://example.com/docs` and the word "regression" in prose.
fn suffix_novelty(lit: &str, allowed: &Allowed, common: &HashSet<&str>) -> usize {
    // Prefixes that end between tokens: `python` is no prefix of `python3`.
    let chars: Vec<(usize, char)> = lit.char_indices().collect();
    let bounds: Vec<usize> = (0..=chars.len())
        .filter(|&k| {
            k == 0
                || k == chars.len()
                || !chars[k - 1].1.is_alphanumeric()
                || !chars[k].1.is_alphanumeric()
        })
        .map(|k| chars.get(k).map_or(lit.len(), |c| c.0))
        .collect();
    // Prefix containment is monotone, so the longest contained prefix is found by bisection.
    let (mut lo, mut hi) = (0usize, bounds.len() - 1);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if allowed.contains(&lit[..bounds[mid]]) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if lo == 0 {
        return 0; // nothing of it is visible: the token count above already covers it
    }
    let rest = &lit[bounds[lo]..];
    novelty(&norm::word_strings(rest), &Allowed::default(), common)
}

/// The novel characters of `tokens` (see the module docs).
pub(super) fn novelty(tokens: &[String], allowed: &Allowed, common: &HashSet<&str>) -> usize {
    tokens
        .iter()
        .filter(|t| {
            let n = t.chars().count();
            let number = t.chars().all(|c| c.is_ascii_digit());
            n >= 3
                && (!number || n >= MIN_NUMBER_DIGITS)
                && !allowed.vocab.contains(t.as_str())
                && !common.contains(t.as_str())
        })
        .map(|t| t.chars().count())
        .sum()
}

/// The parts of a canary that identify it on their own: its hex or mixed letter-and-digit
/// tokens of 6 characters or more (`5d1c9a7e` of `ls-canary-url-shortener-5d1c9a7e`).
pub(super) fn canary_atoms(canary: &str) -> Vec<String> {
    norm::word_strings(canary)
        .into_iter()
        .filter(|t| t.chars().count() >= 6 && t.chars().any(|c| c.is_ascii_digit()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common() -> HashSet<&'static str> {
        STOP.iter().chain(VOCAB).copied().collect()
    }

    fn check(raw: &str, allowed: &[&str]) -> bool {
        distinctive(raw, &Allowed::new(allowed.iter().copied()), &common()).is_some()
    }

    #[test]
    fn generic_values_are_not_distinctive() {
        for v in [
            "/",
            "200",
            "GET",
            "true",
            "POST /links",
            "https://example.com/a",
            "no-store",
            "text/plain",
            "/status/418",
            "teal",
            "plain text",
            "abc",
            "$.code",
            "[A-Za-z0-9_-]{7}",
            "2500",
        ] {
            assert!(!check(v, &[]), "{v} should not be distinctive");
        }
    }

    #[test]
    fn specific_values_are_distinctive_unless_visible() {
        for v in [
            "https://example.com/popular",
            "C0GENERAL1",
            "t0k3n",
            "launch-plan",
            "zzzzzzzzzzzzzzzz",
            "/basic-auth/ann/s3cret",
            "4815162342",
        ] {
            assert!(check(v, &[]), "{v} should be distinctive");
        }
        assert!(!check(
            "https://example.com/popular",
            &["see https://example.com/popular"]
        ));
        // Words the visible spec uses are not novel.
        assert!(!check("https://example.com/docs", &["the docs"]));
    }

    #[test]
    fn candidates_split_spans_json_and_placeholders() {
        let c = candidates(
            r#"I send `POST /links` with JSON `{"url":"https://example.com/x-y","code":"{first}"}` and the JSON at `$.error` is "code_taken" for C0GENERAL1"#,
        );
        for want in [
            "/links",
            "https://example.com/x-y",
            "code_taken",
            "C0GENERAL1",
            "$.error",
        ] {
            assert!(c.iter().any(|x| x == want), "{want} missing from {c:?}");
        }
        assert!(!c.iter().any(|x| x.contains("{first}")), "{c:?}");
        assert_eq!(
            canary_atoms("ls-canary-url-shortener-5d1c9a7e"),
            vec!["5d1c9a7e"]
        );
    }
}
