//! Leak detection: finds holdout material in text an agent could see or wrote (a prompt, a
//! diff, a feedback file, a transcript), even when it was reworded on the way.
//!
//! Every text, holdout and scanned alike, is read through one normalisation first
//! (`norm`: Unicode compatibility decomposition, UAX #15, with combining marks and
//! invisible code points dropped, lower case, typographic quotes and dashes folded, words as
//! runs of letters and digits), so case, Unicode form, whitespace, markdown and punctuation
//! changes do not hide a copy. Four checks then run ([`LeakKind`]):
//!
//! 1. **Canary**: a suite's canary strings anywhere, in any case or width, also spelt as
//!    separate words, and their hex tokens alone (`5d1c9a7e`).
//! 2. **Literal**: the distinctive literals of the scenarios (URLs, paths, header values,
//!    JSON values, quoted strings, long numbers, mixed letter-and-digit tokens) at any length,
//!    matched on word boundaries. "Distinctive" is defined in `literal`: `/`, `200`, `GET`,
//!    `true`, `no-store` or `https://example.com/a` are not, `https://example.com/popular` is.
//! 3. **Verbatim**: runs of at least `n` consecutive words ([`DEFAULT_SHINGLE_WORDS`] = 5)
//!    of scenario text, as word shingles (Broder 1997, "On the resemblance and containment of
//!    documents"; the n-gram overlap tests of benchmark contamination, GPT-3's 13-grams and
//!    Llama 2's token overlap). Shingles that occur in the visible texts are removed first.
//!    A run must also carry evidence: `n` words with 2 *content words* of the scenario's
//!    prose, or `n + 1` words with 1. A content word has 3 characters or more, stands
//!    outside code spans and quotes, and is neither an English function word, nor a word of
//!    the built-in step grammar (`I send`, `the JSON at`, `within ... ms`), nor a number the
//!    visible texts show. Words of values alone (`"url": "https://example.com/a"`)
//!    are the literal check's business, not evidence of copied prose.
//! 4. **Near copy**: one scenario name or step of [`NEAR_MIN_WORDS`] words or more with
//!    words changed. Each such unit of
//!    scenario text keeps its *secret bigrams* (word pairs not in the visible texts, with a
//!    content word of prose in them); a window of the scanned text as long as the unit plus 2 words that holds
//!    at least [`NEAR_CONTAINMENT`] of them (and at least [`NEAR_MIN_BIGRAMS`]) is a near
//!    copy. This is Broder's containment `|S(unit) ∩ S(window)| / |S(unit)|`, computed
//!    exactly rather than estimated with `MinHash`, since a suite holds a few hundred units;
//!    one word changed in the middle of an 8-word name keeps 5 of 7 bigrams (0.71).
//!
//! **Allowed text.** Text the agent is meant to see (the visible spec, its task context) is
//! never a leak: [`LeakScanner::allowing`] takes those texts, and every shingle, bigram and
//! literal that occurs in them is subtracted from the holdout's before any scan, and their
//! words are not novel. So an agent that echoes the spec's own example is not flagged even
//! where a scenario repeats that example word for word.
//!
//! **Thresholds and their source.** The values are set on the labelled set in
//! `crates/eval/tests/data/leak/` (holdout scenarios of the bundled examples, copies, partial
//! copies, reformatted copies, one-word substitutions, copied literals, paraphrases, and
//! innocent echoes of the visible spec, service code, tests and prose). The test
//! `it::leak` holds the bounds the issue sets: at least 95% of copies caught, under 2% of
//! innocent text flagged; it prints the share of paraphrases caught. Precision comes first: a
//! false leak fails a run that did nothing wrong.
//!
//! Not detected: paraphrases that keep no distinctive literal and few secret word pairs,
//! translations, and homoglyphs from other scripts (Cyrillic `е` for Latin `e`).

mod literal;
mod norm;

use crate::scenario::Suite;
use aho_corasick::AhoCorasick;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hasher};
use std::path::PathBuf;
use std::sync::LazyLock;

/// Default shingle length, in words.
pub const DEFAULT_SHINGLE_WORDS: usize = 5;

/// Share of a unit's secret bigrams a window must hold to be a near copy.
///
/// Set on the labelled set (see the module docs): at 0.6 a one-word substitution in a unit
/// of 7 words or more is caught, and no innocent sample reaches it.
pub const NEAR_CONTAINMENT: f64 = 0.6;

/// Secret bigrams a unit needs to take part in the near-copy check, and a window needs to
/// match, whatever the share.
pub const NEAR_MIN_BIGRAMS: usize = 3;

/// Words a unit needs to take part in the near-copy check: a shorter name or step
/// (`the status is 401`) is common phrasing, and a copy of it is the verbatim check's call.
pub const NEAR_MIN_WORDS: usize = 6;

/// What was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakKind {
    /// A canary string, or a hex token of one, in any case or spacing.
    Canary,
    /// A run of consecutive words of a scenario's text.
    Verbatim,
    /// A distinctive literal of a scenario (a URL, a path, a header or JSON value, a token).
    Literal,
    /// A scenario name or step with some words changed.
    NearCopy,
}

/// One finding. Offsets are bytes into the scanned text; `start < end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leak {
    /// What kind of match.
    pub kind: LeakKind,
    /// The scenario the text comes from (its opaque id); `None` for a canary.
    pub scenario: Option<String>,
    /// The scenario file it comes from.
    pub path: PathBuf,
    /// Byte offset of the first leaked byte in the scanned text.
    pub start: usize,
    /// Byte offset one past the last leaked byte.
    pub end: usize,
    /// Words in the matched text (0 for a canary).
    pub words: usize,
}

/// A pattern of the literal automaton: what it is and where it comes from.
#[derive(Debug, Clone, Copy)]
enum Pattern {
    /// A canary or one of its hex tokens (index into `canaries`).
    Canary(usize),
    /// A distinctive literal of a scenario (index into `sources`).
    Literal(usize),
}

/// A secret shingle: its scenario, and which of its words (bit `i` for word `i`, the first
/// 64) are content words of the scenario's prose.
#[derive(Debug, Clone, Copy)]
struct Shingle {
    source: usize,
    mask: u64,
}

/// One unit of scenario text for the near-copy check.
#[derive(Debug, Clone)]
struct Unit {
    source: usize,
    words: usize,
    secret: usize,
}

/// Scans text for a suite's canaries, distinctive literals, verbatim runs and near copies,
/// less whatever also occurs in the allowed (visible) texts. See the module docs.
#[derive(Debug, Clone)]
pub struct LeakScanner {
    n: usize,
    canaries: Vec<PathBuf>,
    /// Word sequences of the canaries (hashes), for canaries spelt as separate words.
    canary_words: Vec<(Vec<u64>, usize)>,
    patterns: Vec<Pattern>,
    /// The automaton over `pattern_texts`; `None` when it could not be built (then each
    /// pattern is searched on its own: slower, never weaker).
    automaton: Option<AhoCorasick>,
    pattern_texts: Vec<String>,
    /// Secret `n`-word shingle hash → where it comes from.
    shingles: HashMap<u64, Shingle>,
    /// Secret bigram hash → (unit, bigram index in the unit's secret set).
    bigrams: HashMap<u64, Vec<(u32, u32)>>,
    units: Vec<Unit>,
    sources: Vec<(String, PathBuf)>,
}

/// Words that are no evidence of a copied value ([`literal::STOP`] and [`literal::VOCAB`]).
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    literal::STOP
        .iter()
        .chain(literal::VOCAB)
        .copied()
        .collect()
});

/// Words that are no evidence of copied prose ([`literal::STOP`]).
static STOP: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| literal::STOP.iter().copied().collect());

/// The words of the built-in step grammar (`I send`, `with JSON`, `the status is`,
/// `twin ... received`): shared by every holdout, so no evidence of copied prose.
static GRAMMAR: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let strip =
        regex::Regex::new(r"\(\?P<[^>]*>|\[[^\]]*\]|\\[a-zA-Z]|\{[0-9,]*\}").expect("static regex");
    crate::steps::StepLibrary::builtin()
        .defs()
        .iter()
        .flat_map(|d| norm::word_strings(&strip.replace_all(d.pattern(), " ")))
        .collect()
});

/// Whether `w`, found outside code spans and quotes, is a content word of prose.
fn content(w: &str, allowed: &literal::Allowed) -> bool {
    let n = w.chars().count();
    let visible_number = w.chars().all(|c| c.is_ascii_digit()) && allowed.vocab.contains(w);
    n >= 3 && !visible_number && !STOP.contains(w) && !GRAMMAR.contains(w)
}

fn hash_seq(ws: impl IntoIterator<Item = u64>) -> u64 {
    let mut h = DefaultHasher::new();
    for w in ws {
        h.write_u64(w);
    }
    h.finish()
}

/// The normalised words of `text`, each with whether it stands inside a code span or a
/// double-quoted string (a value, not prose).
fn tagged_words(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    // The delimiter that opened the current value (`` ` `` or `"`), if any.
    let mut open: Option<char> = None;
    let mut from = 0;
    for (i, c) in text.char_indices().chain([(text.len(), '\0')]) {
        let at_end = i == text.len();
        let delimits = at_end || matches!((open, c), (None, '`' | '"')) || open == Some(c);
        if delimits {
            let inside = open.is_some();
            norm::for_each_word(&text[from..i], |_, _, w| out.push((w.to_owned(), inside)));
            open = if open.is_some() || at_end {
                None
            } else {
                Some(c)
            };
            from = (i + c.len_utf8()).min(text.len());
        }
    }
    out
}

/// The text of a scenario the shingle checks read: its name, then its steps.
fn scenario_text(sc: &crate::scenario::Scenario) -> String {
    let mut text = sc.name.clone();
    for st in &sc.steps {
        text.push('\n');
        text.push_str(&st.text);
    }
    text
}

impl LeakScanner {
    /// A scanner for `suite` with [`DEFAULT_SHINGLE_WORDS`]-word shingles and no allowed
    /// texts.
    pub fn from_suite(suite: &Suite) -> Self {
        Self::new(suite, DEFAULT_SHINGLE_WORDS, std::iter::empty::<&str>())
    }

    /// A scanner for `suite` with `n`-word shingles (`n` at least 2) and no allowed texts.
    pub fn with_shingle_words(suite: &Suite, n: usize) -> Self {
        Self::new(suite, n, std::iter::empty::<&str>())
    }

    /// A scanner for `suite` that never flags what also occurs in `visible`: the texts the
    /// agent is meant to see (the spec, its task context). Shingles are
    /// [`DEFAULT_SHINGLE_WORDS`] words long.
    pub fn allowing<S: AsRef<str>>(suite: &Suite, visible: impl IntoIterator<Item = S>) -> Self {
        Self::new(suite, DEFAULT_SHINGLE_WORDS, visible)
    }

    /// A scanner for `suite` with `n`-word shingles (`n` at least 2) that never flags what
    /// also occurs in `visible`.
    pub fn new<S: AsRef<str>>(
        suite: &Suite,
        n: usize,
        visible: impl IntoIterator<Item = S>,
    ) -> Self {
        let n = n.max(2);
        let visible: Vec<S> = visible.into_iter().collect();
        let allowed = literal::Allowed::new(visible.iter().map(AsRef::as_ref));
        let mut allowed_shingles = HashSet::new();
        let mut allowed_bigrams = HashSet::new();
        for v in &visible {
            let ws: Vec<u64> = norm::words(v.as_ref()).iter().map(|w| w.hash).collect();
            allowed_shingles.extend(ws.windows(n).map(|w| hash_seq(w.iter().copied())));
            allowed_bigrams.extend(ws.windows(2).map(|w| hash_seq(w.iter().copied())));
        }
        let mut scanner = LeakScanner {
            n,
            canaries: Vec::new(),
            canary_words: Vec::new(),
            patterns: Vec::new(),
            automaton: None,
            pattern_texts: Vec::new(),
            shingles: HashMap::new(),
            bigrams: HashMap::new(),
            units: Vec::new(),
            sources: Vec::new(),
        };
        let mut texts: Vec<String> = Vec::new();
        for (i, c) in suite.canaries.iter().enumerate() {
            scanner.canaries.push(c.path.clone());
            let compact = norm::compact(&c.value);
            if !compact.is_empty() {
                texts.push(compact);
                scanner.patterns.push(Pattern::Canary(i));
            }
            for atom in literal::canary_atoms(&c.value) {
                texts.push(atom);
                scanner.patterns.push(Pattern::Canary(i));
            }
            let ws: Vec<u64> = norm::words(&c.value).iter().map(|w| w.hash).collect();
            if ws.len() > 1 {
                scanner.canary_words.push((ws, i));
            }
        }
        for sc in &suite.scenarios {
            let idx = scanner.sources.len();
            scanner.sources.push((sc.id.clone(), sc.path.clone()));
            let text = scenario_text(sc);
            scanner.add_literals(idx, sc, &allowed, &mut texts);
            scanner.add_shingles(idx, &text, &allowed, &allowed_shingles);
            for unit in
                std::iter::once(sc.name.as_str()).chain(sc.steps.iter().map(|s| s.text.as_str()))
            {
                scanner.add_unit(idx, unit, &allowed, &allowed_bigrams);
            }
        }
        scanner.automaton = AhoCorasick::new(&texts).ok();
        scanner.pattern_texts = texts;
        scanner
    }

    fn add_literals(
        &mut self,
        idx: usize,
        sc: &crate::scenario::Scenario,
        allowed: &literal::Allowed,
        texts: &mut Vec<String>,
    ) {
        let pieces =
            std::iter::once(sc.name.as_str()).chain(sc.steps.iter().map(|s| s.text.as_str()));
        let mut seen = HashSet::new();
        for piece in pieces {
            for cand in literal::candidates(piece) {
                if let Some(lit) = literal::distinctive(&cand, allowed, &COMMON)
                    && seen.insert(lit.clone())
                {
                    texts.push(lit);
                    self.patterns.push(Pattern::Literal(idx));
                }
            }
        }
    }

    fn add_shingles(
        &mut self,
        idx: usize,
        text: &str,
        allowed: &literal::Allowed,
        allowed_shingles: &HashSet<u64>,
    ) {
        let words = tagged_words(text);
        let hashes: Vec<u64> = words.iter().map(|(w, _)| norm::hash_word(w)).collect();
        for (i, win) in hashes.windows(self.n).enumerate() {
            let h = hash_seq(win.iter().copied());
            if allowed_shingles.contains(&h) {
                continue;
            }
            // Which of its words are content words of prose (as written in the scenario).
            let mask = words[i..i + self.n]
                .iter()
                .take(64)
                .enumerate()
                .filter(|(_, (w, code))| !code && content(w, allowed))
                .fold(0u64, |m, (b, _)| m | (1 << b));
            self.shingles
                .entry(h)
                .or_insert(Shingle { source: idx, mask });
        }
    }

    fn add_unit(
        &mut self,
        idx: usize,
        text: &str,
        allowed: &literal::Allowed,
        allowed_bigrams: &HashSet<u64>,
    ) {
        let words = tagged_words(text);
        let mut secret: Vec<u64> = Vec::new();
        for w in words.windows(2) {
            // A pair counts when one of its words is a content word of prose.
            if !w.iter().any(|(w, code)| !code && content(w, allowed)) {
                continue;
            }
            let h = hash_seq([norm::hash_word(&w[0].0), norm::hash_word(&w[1].0)]);
            if !allowed_bigrams.contains(&h) && !secret.contains(&h) {
                secret.push(h);
            }
        }
        if secret.len() < NEAR_MIN_BIGRAMS || words.len() < NEAR_MIN_WORDS {
            return;
        }
        let Ok(u) = u32::try_from(self.units.len()) else {
            return;
        };
        for (j, h) in secret.iter().enumerate() {
            let j = u32::try_from(j).unwrap_or(u32::MAX);
            self.bigrams.entry(*h).or_default().push((u, j));
        }
        self.units.push(Unit {
            source: idx,
            words: words.len(),
            secret: secret.len(),
        });
    }

    /// Every finding in `text`, in order of position: canaries, distinctive literals,
    /// maximal verbatim runs and near copies. A finding inside a longer one is left out,
    /// except that a canary is always reported.
    pub fn scan(&self, text: &str) -> Vec<Leak> {
        let ws = norm::words(text);
        let mut leaks = self.scan_literals(text, &ws);
        self.scan_canary_words(&ws, &mut leaks);
        self.scan_verbatim(&ws, &mut leaks);
        self.scan_near(&ws, &mut leaks);
        dedup(leaks)
    }

    fn leak(&self, kind: LeakKind, source: usize, start: usize, end: usize, words: usize) -> Leak {
        let (id, path) = &self.sources[source];
        Leak {
            kind,
            scenario: Some(id.clone()),
            path: path.clone(),
            start,
            end,
            words,
        }
    }

    fn canary(&self, i: usize, start: usize, end: usize) -> Leak {
        Leak {
            kind: LeakKind::Canary,
            scenario: None,
            path: self.canaries[i].clone(),
            start,
            end,
            words: 0,
        }
    }

    fn scan_literals(&self, text: &str, ws: &[norm::Word]) -> Vec<Leak> {
        if self.pattern_texts.is_empty() {
            return Vec::new();
        }
        let compact = norm::compact(text);
        let mut hits = Vec::new();
        if let Some(ac) = &self.automaton {
            for m in ac.find_overlapping_iter(&compact) {
                hits.push((m.start(), m.end(), m.pattern().as_usize()));
            }
        } else {
            for (p, pat) in self.pattern_texts.iter().enumerate() {
                for (i, _) in compact.match_indices(pat.as_str()) {
                    hits.push((i, i + pat.len(), p));
                }
            }
        }
        if hits.is_empty() {
            return Vec::new();
        }
        let mut positions: Vec<usize> = hits.iter().flat_map(|&(s, e, _)| [s, e - 1]).collect();
        positions.sort_unstable();
        positions.dedup();
        let orig = norm::compact_to_original(text, &positions);
        let at = |p: usize| orig[positions.binary_search(&p).unwrap_or(0)];
        let mut leaks = Vec::new();
        for (s, e, p) in hits {
            let (start, _) = at(s);
            let (_, end) = at(e - 1);
            match self.patterns.get(p) {
                Some(&Pattern::Canary(i)) => leaks.push(self.canary(i, start, end)),
                Some(&Pattern::Literal(src)) if on_boundaries(text, start, end) => {
                    let words = ws.partition_point(|w| w.start < end)
                        - ws.partition_point(|w| w.end <= start);
                    leaks.push(self.leak(LeakKind::Literal, src, start, end, words));
                }
                _ => {}
            }
        }
        leaks
    }

    fn scan_canary_words(&self, ws: &[norm::Word], leaks: &mut Vec<Leak>) {
        for (seq, i) in &self.canary_words {
            for (k, win) in ws.windows(seq.len()).enumerate() {
                if win.iter().map(|w| w.hash).eq(seq.iter().copied()) {
                    leaks.push(self.canary(*i, ws[k].start, ws[k + seq.len() - 1].end));
                }
            }
        }
    }

    /// Whether a run of `words` words with `novel` content words carries enough evidence.
    fn run_counts(&self, words: usize, novel: usize) -> bool {
        words >= self.n && (novel >= 2 || (novel >= 1 && words > self.n))
    }

    fn scan_verbatim(&self, ws: &[norm::Word], leaks: &mut Vec<Leak>) {
        if ws.len() < self.n {
            return;
        }
        let hits: Vec<Option<Shingle>> = ws
            .windows(self.n)
            .map(|win| {
                self.shingles
                    .get(&hash_seq(win.iter().map(|w| w.hash)))
                    .copied()
            })
            .collect();
        let mut i = 0;
        while i < hits.len() {
            let Some(first) = hits[i] else {
                i += 1;
                continue;
            };
            let start = i;
            while i < hits.len() && hits[i].is_some() {
                i += 1;
            }
            // Windows start..i form a run of words start..i - 1 + n.
            let run = &ws[start..i - 1 + self.n];
            let mut content: Vec<u64> = Vec::new();
            for (k, h) in hits[start..i].iter().flatten().enumerate() {
                for b in 0..self.n.min(64) {
                    if h.mask & (1 << b) != 0 {
                        content.push(run[k + b].hash);
                    }
                }
            }
            content.sort_unstable();
            content.dedup();
            if self.run_counts(run.len(), content.len()) {
                leaks.push(self.leak(
                    LeakKind::Verbatim,
                    first.source,
                    run[0].start,
                    run[run.len() - 1].end,
                    run.len(),
                ));
            }
        }
    }

    fn scan_near(&self, ws: &[norm::Word], leaks: &mut Vec<Leak>) {
        if self.units.is_empty() || ws.len() < 2 {
            return;
        }
        // (unit, text bigram position, unit bigram index)
        let mut hits: Vec<(u32, usize, u32)> = Vec::new();
        for (i, pair) in ws.windows(2).enumerate() {
            if let Some(list) = self.bigrams.get(&hash_seq([pair[0].hash, pair[1].hash])) {
                hits.extend(list.iter().map(|&(u, j)| (u, i, j)));
            }
        }
        hits.sort_unstable();
        for group in hits.chunk_by(|a, b| a.0 == b.0) {
            let unit = &self.units[group[0].0 as usize];
            let need = NEAR_MIN_BIGRAMS.max(near_need(unit.secret));
            if group.len() < need {
                continue;
            }
            let width = unit.words + 2;
            let mut count = vec![0u32; unit.secret];
            let mut distinct = 0usize;
            let mut lo = 0usize;
            let mut last_end = 0usize;
            for hi in 0..group.len() {
                let j = group[hi].2 as usize;
                count[j] += 1;
                if count[j] == 1 {
                    distinct += 1;
                }
                while group[hi].1 + 2 > group[lo].1 + width {
                    let jl = group[lo].2 as usize;
                    count[jl] -= 1;
                    if count[jl] == 0 {
                        distinct -= 1;
                    }
                    lo += 1;
                }
                if distinct >= need {
                    let (first, last) = (group[lo].1, group[hi].1 + 1);
                    if ws[first].start >= last_end {
                        leaks.push(self.leak(
                            LeakKind::NearCopy,
                            unit.source,
                            ws[first].start,
                            ws[last].end,
                            last - first + 1,
                        ));
                        last_end = ws[last].end;
                    }
                }
            }
        }
    }
}

/// Secret bigrams a window must match for a unit with `secret` of them.
fn near_need(secret: usize) -> usize {
    // ceil(secret × NEAR_CONTAINMENT) without float casts: NEAR_CONTAINMENT = 3/5.
    (secret * 3).div_ceil(5)
}

/// Whether `text[start..end]` starts and ends on word boundaries: a literal that begins or
/// ends with a letter or digit is not matched inside a longer word.
fn on_boundaries(text: &str, start: usize, end: usize) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let (before, inside, after) = (&text[..start], &text[start..end], &text[end..]);
    let cut_before = alnum(before.chars().next_back()) && alnum(inside.chars().next());
    let cut_after = alnum(after.chars().next()) && alnum(inside.chars().next_back());
    !cut_before && !cut_after
}

/// Sorts by position and drops a finding that lies inside another (a canary is kept unless
/// inside another canary).
fn dedup(mut leaks: Vec<Leak>) -> Vec<Leak> {
    leaks.sort_by_key(|l| {
        (
            l.start,
            std::cmp::Reverse(l.end),
            l.kind != LeakKind::Canary,
        )
    });
    let mut kept: Vec<Leak> = Vec::with_capacity(leaks.len());
    for l in leaks {
        let inside = kept.iter().rev().any(|k| {
            k.start <= l.start
                && l.end <= k.end
                && (l.kind != LeakKind::Canary || k.kind == LeakKind::Canary)
        });
        if !inside {
            kept.push(l);
        }
    }
    kept.sort_by_key(|l| (l.start, l.end));
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse_markdown;
    use proptest::prelude::*;
    use std::path::Path;

    fn suite() -> Suite {
        let src = "<!-- canary: holdout-canary-42 -->\n## Scenario: an expired token is rejected by the link service\nSatisfies: REQ-3\n\n- **WHEN** I send `POST /links` with header `Authorization: Bearer expired` and JSON `{\"url\":\"https://example.com\"}`\n- **THEN** the status is 401\n";
        let mut s = Suite::default();
        s.add_source(Path::new("a.scenario.md"), src, &mut Vec::new());
        s
    }

    #[test]
    fn finds_canary_and_verbatim_runs_across_formatting() {
        let s = suite();
        let scanner = LeakScanner::from_suite(&s);
        let text = "prompt: holdout-canary-42 ... also: An EXPIRED token is *rejected* by the link service when I send POST /links";
        let leaks = scanner.scan(text);
        assert_eq!(leaks.len(), 2, "{leaks:?}");
        assert_eq!(leaks[0].kind, LeakKind::Canary);
        assert_eq!(&text[leaks[0].start..leaks[0].end], "holdout-canary-42");
        assert_eq!(leaks[1].kind, LeakKind::Verbatim);
        assert!(leaks[1].words >= 8);
        assert!(text[leaks[1].start..leaks[1].end].starts_with("An EXPIRED"));
        assert_eq!(
            leaks[1].scenario.as_deref(),
            Some(s.scenarios[0].id.as_str())
        );
    }

    /// A suite like the bundled example's: a spec-visible example and holdout-only values.
    fn rich_suite() -> Suite {
        let src = "<!-- canary: ls-canary-demo-5d1c9a7e -->\n\
## Scenario: a Slack outage does not fail link creation\nSatisfies: REQ-4\n\n\
- **GIVEN** the service is running\n\
- **WHEN** I send `POST /links` with JSON `{\"url\":\"https://example.com/during-outage\"}`\n\
- **THEN** the status is 201 within 2500 ms\n\
- **AND** twin `slack` state at `$.messages[0].channel` is \"C0GENERAL1\"\n\n\
## Scenario: a custom code is honoured once\nSatisfies: REQ-2\n\n\
- **WHEN** I send `POST /links` with JSON `{\"url\":\"https://example.com/docs\"}`\n\
- **THEN** the status is 201\n";
        let mut s = Suite::default();
        s.add_source(Path::new("b.scenario.md"), src, &mut Vec::new());
        s
    }

    const SPEC: &str = "When a client posts `{\"url\":\"https://example.com/docs\"}` to `/links`, \
        the status is 201. If Slack fails, the service SHALL still answer 201 for the link.";

    fn kinds(scanner: &LeakScanner, text: &str) -> Vec<LeakKind> {
        scanner.scan(text).into_iter().map(|l| l.kind).collect()
    }

    #[test]
    fn reworded_copies_are_caught() {
        let scanner = LeakScanner::allowing(&rich_suite(), [SPEC]);
        // The canary in upper case, spelt as words, or only its hex token.
        for text in [
            "LS-CANARY-DEMO-5D1C9A7E",
            "ls canary demo 5d1c9a7e",
            "seed 0x5d1c9a7e",
        ] {
            assert_eq!(kinds(&scanner, text), [LeakKind::Canary], "{text}");
        }
        // A 6-word partial copy, in another case and with markdown.
        assert_eq!(
            kinds(&scanner, "note: A CUSTOM code is *honoured* once."),
            [LeakKind::Verbatim]
        );
        // A test URL and a token at any length.
        assert_eq!(
            kinds(&scanner, "u = 'https://example.com/during-outage'"),
            [LeakKind::Literal]
        );
        assert_eq!(kinds(&scanner, "CHANNEL=c0general1"), [LeakKind::Literal]);
        // The 8-word name with one word changed in the middle.
        assert_eq!(
            kinds(&scanner, "a Slack outage will not fail link creation"),
            [LeakKind::NearCopy]
        );
    }

    #[test]
    fn visible_text_is_never_a_leak() {
        let suite = rich_suite();
        let scanner = LeakScanner::allowing(&suite, [SPEC]);
        assert!(scanner.scan(SPEC).is_empty(), "{:?}", scanner.scan(SPEC));
        // The spec's example URL is in the scenario too, but visible: not a literal.
        let echo = "resp = post('/links', json={'url': 'https://example.com/docs'})";
        assert!(scanner.scan(echo).is_empty(), "{:?}", scanner.scan(echo));
        // Without the allowed corpus, the scenario's copy of the spec's URL is a literal.
        let blind = LeakScanner::from_suite(&suite);
        assert_eq!(kinds(&blind, echo), [LeakKind::Literal]);
    }

    #[test]
    fn generic_literals_and_words_are_not_leaks() {
        let scanner = LeakScanner::allowing(&rich_suite(), [SPEC]);
        for text in [
            "GET / returned 200 with true",
            "when the status is 201 the link is stored",
            "https://example.com/a",
            "Cache-Control: no-store",
            "the service is running",
        ] {
            assert!(
                scanner.scan(text).is_empty(),
                "{text}: {:?}",
                scanner.scan(text)
            );
        }
    }

    #[test]
    fn findings_point_into_the_original_text() {
        let scanner = LeakScanner::allowing(&rich_suite(), [SPEC]);
        let text = "Ｘ\u{200D} “https://EXAMPLE.com/during-outage” ok";
        let leaks = scanner.scan(text);
        assert_eq!(leaks.len(), 1, "{leaks:?}");
        assert_eq!(
            &text[leaks[0].start..leaks[0].end],
            "https://EXAMPLE.com/during-outage"
        );
    }

    #[test]
    fn short_overlaps_are_not_leaks() {
        let scanner = LeakScanner::from_suite(&suite());
        assert!(
            scanner
                .scan("the status is 401 and the link service is fine")
                .is_empty()
        );
    }

    proptest! {
        #[test]
        fn scan_never_panics_and_offsets_are_char_boundaries(text in "\\PC{0,200}") {
            let scanner = LeakScanner::allowing(&rich_suite(), [SPEC]);
            for l in scanner.scan(&text) {
                prop_assert!(l.start < l.end && l.end <= text.len());
                prop_assert!(text.is_char_boundary(l.start) && text.is_char_boundary(l.end));
            }
        }

        #[test]
        fn any_copied_window_is_found(start in 0usize..20, len in 8usize..14) {
            let (sc, _) = parse_markdown(
                "## Scenario: one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty twentyone twentytwo twentythree\nSatisfies: R\n\n- **THEN** the status is 200\n",
                Path::new("p.scenario.md"),
            );
            let s = Suite { scenarios: sc, ..Suite::default() };
            let name = s.scenarios[0].name.clone();
            let all: Vec<&str> = name.split(' ').collect();
            let end = (start + len).min(all.len());
            prop_assume!(end - start >= 8);
            let copied = all[start..end].join(" ");
            let text = format!("xx {copied} yy");
            let leaks = LeakScanner::from_suite(&s).scan(&text);
            prop_assert_eq!(leaks.len(), 1);
            prop_assert_eq!(&text[leaks[0].start..leaks[0].end], copied.as_str());
        }
    }
}
