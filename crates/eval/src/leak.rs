//! Leak detection: finds holdout material in text an agent could see (a prompt, a diff, a
//! feedback file): the suite's canary strings, and verbatim runs of scenario text of at least
//! `n` words (word shingles, as in Broder's resemblance work and the n-gram overlap checks
//! used for benchmark contamination, e.g. GPT-3's 13-gram and Llama 2's token-overlap tests).

use crate::scenario::Suite;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

/// Default shingle length, in words.
pub const DEFAULT_SHINGLE_WORDS: usize = 8;

/// What was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakKind {
    /// A canary string, verbatim.
    Canary,
    /// A run of at least `n` consecutive words of a scenario's text.
    Verbatim,
}

/// One finding. Offsets are bytes into the scanned text; `start < end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leak {
    /// Canary or verbatim run.
    pub kind: LeakKind,
    /// The scenario the text comes from (its opaque id), for verbatim runs.
    pub scenario: Option<String>,
    /// The scenario file it comes from.
    pub path: PathBuf,
    /// Byte offset of the first leaked byte in the scanned text.
    pub start: usize,
    /// Byte offset one past the last leaked byte.
    pub end: usize,
    /// Words in the run (0 for a canary).
    pub words: usize,
}

/// Scans text for a suite's canaries and verbatim scenario text.
///
/// Words are maximal runs of alphanumeric characters, compared case-insensitively, so
/// punctuation, markdown and whitespace changes do not hide a copy.
#[derive(Debug, Clone)]
pub struct LeakScanner {
    n: usize,
    canaries: Vec<(String, PathBuf)>,
    shingles: HashMap<u64, usize>,
    sources: Vec<(String, PathBuf)>,
}

fn words(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            out.push((s, i, text[s..i].to_lowercase()));
        }
    }
    if let Some(s) = start {
        out.push((s, text.len(), text[s..].to_lowercase()));
    }
    out
}

fn hash_window(ws: &[(usize, usize, String)]) -> u64 {
    let mut h = DefaultHasher::new();
    for (_, _, w) in ws {
        w.hash(&mut h);
    }
    h.finish()
}

impl LeakScanner {
    /// A scanner for `suite` with [`DEFAULT_SHINGLE_WORDS`]-word shingles.
    pub fn from_suite(suite: &Suite) -> Self {
        Self::with_shingle_words(suite, DEFAULT_SHINGLE_WORDS)
    }

    /// A scanner for `suite` with `n`-word shingles (`n` at least 1).
    pub fn with_shingle_words(suite: &Suite, n: usize) -> Self {
        let n = n.max(1);
        let mut scanner = LeakScanner {
            n,
            canaries: suite
                .canaries
                .iter()
                .map(|c| (c.value.clone(), c.path.clone()))
                .collect(),
            shingles: HashMap::new(),
            sources: Vec::new(),
        };
        for sc in &suite.scenarios {
            let idx = scanner.sources.len();
            scanner.sources.push((sc.id.clone(), sc.path.clone()));
            let mut text = sc.name.clone();
            for st in &sc.steps {
                text.push('\n');
                text.push_str(&st.text);
            }
            let ws = words(&text);
            for win in ws.windows(n) {
                scanner.shingles.entry(hash_window(win)).or_insert(idx);
            }
        }
        scanner
    }

    /// Every canary occurrence and every maximal verbatim run in `text`, in order of position.
    pub fn scan(&self, text: &str) -> Vec<Leak> {
        let mut leaks = Vec::new();
        for (canary, path) in &self.canaries {
            for (i, _) in text.match_indices(canary.as_str()) {
                leaks.push(Leak {
                    kind: LeakKind::Canary,
                    scenario: None,
                    path: path.clone(),
                    start: i,
                    end: i + canary.len(),
                    words: 0,
                });
            }
        }
        let ws = words(text);
        let mut run: Option<(usize, usize, usize)> = None; // (first window, last window, source)
        let flush = |run: Option<(usize, usize, usize)>, leaks: &mut Vec<Leak>| {
            if let Some((first, last, src)) = run {
                let (id, path) = &self.sources[src];
                leaks.push(Leak {
                    kind: LeakKind::Verbatim,
                    scenario: Some(id.clone()),
                    path: path.clone(),
                    start: ws[first].0,
                    end: ws[last + self.n - 1].1,
                    words: last - first + self.n,
                });
            }
        };
        if ws.len() >= self.n {
            for (i, win) in ws.windows(self.n).enumerate() {
                match (self.shingles.get(&hash_window(win)), run) {
                    (Some(_), Some((first, last, src))) if last + 1 == i => {
                        run = Some((first, i, src));
                    }
                    (Some(&src), r) => {
                        flush(r, &mut leaks);
                        run = Some((i, i, src));
                    }
                    (None, r) => {
                        flush(r, &mut leaks);
                        run = None;
                    }
                }
            }
        }
        flush(run, &mut leaks);
        leaks.sort_by_key(|l| (l.start, l.end));
        leaks
    }
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
