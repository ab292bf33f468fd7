//! Retrieval and context packs: BM25 from FTS5, a boost for records whose scope matches the
//! files a task touches, a recency boost and a recurrence boost for lessons; then the best
//! records that fit a token budget, rendered as markdown for an agent's prompt.
//!
//! Scoring (all terms are added; weights are the constants below):
//! - text: `bm25 / best_bm25` among the candidates, in `(0, 1]` ([`W_TEXT`]);
//! - scope: 1 when one of the record's path globs matches a touched path ([`W_SCOPE`]);
//! - recency: `0.5^(age_days / 90)` by `valid_from` ([`W_RECENCY`]);
//! - recurrence (lessons): `ln(1 + failures)` ([`W_RECURRENCE`]).
//!
//! Tokens are estimated as `ceil(characters / 4)`, the rule of thumb OpenAI documents for
//! English text (<https://help.openai.com/en/articles/4936856>); it overestimates code and
//! non-Latin text less than it underestimates it, so keep a margin in the budget.

use crate::store::{Filter, Hit, Query, Store};
use crate::{Error, Kind, Record, RecordId, Timestamp};
use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Weight of the normalised BM25 text score.
pub const W_TEXT: f64 = 1.0;
/// Weight of a scope glob matching a touched path.
pub const W_SCOPE: f64 = 0.8;
/// Weight of recency (half-life 90 days).
pub const W_RECENCY: f64 = 0.3;
/// Weight of a lesson's recurrence, times `ln(1 + failures)`.
pub const W_RECURRENCE: f64 = 0.25;
/// Weight of a lesson recorded for one of the task's requirements
/// ([`PackOptions::requirements`]).
pub const W_REQUIREMENT: f64 = 1.0;
/// Half-life of the recency boost, in days.
pub const RECENCY_HALF_LIFE_DAYS: f64 = 90.0;

/// Most query words used in an FTS5 query.
const MAX_TERMS: usize = 24;

const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "for", "from", "has", "have", "in",
    "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "we", "were", "will",
    "with", "should", "must", "shall", "when", "then", "not", "no", "can", "into", "our", "us",
];

/// Estimated tokens of `text`: `ceil(chars / 4)`.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// The words of `text` used for search: alphanumeric runs of two or more characters,
/// lower-cased, stop words removed, deduplicated in order, at most 24.
pub fn query_terms(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in text.split(|c: char| !c.is_alphanumeric()) {
        if w.chars().count() < 2 {
            continue;
        }
        let w = w.to_lowercase();
        if STOPWORDS.contains(&w.as_str()) || out.contains(&w) {
            continue;
        }
        out.push(w);
        if out.len() == MAX_TERMS {
            break;
        }
    }
    out
}

/// The FTS5 `MATCH` expression for free text: its [`query_terms`], each quoted, joined with
/// `OR` (BM25 then ranks records matching more and rarer terms higher). `None` when the
/// text has no usable word. Never produces FTS5 syntax errors: terms are alphanumeric.
pub fn match_expression(text: &str) -> Option<String> {
    expression(&query_terms(text))
}

/// The FTS5 expression `"a" OR "b" ...` for alphanumeric words; `None` for no words.
pub fn expression(words: &[String]) -> Option<String> {
    if words.is_empty() {
        return None;
    }
    Some(
        words
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(" OR "),
    )
}

/// The distinct lower-cased alphanumeric words (two characters or more) of `text`, as the
/// store counts them for document frequencies (no stop-word removal, no limit).
pub fn index_terms(text: &str) -> std::collections::BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().nth(1).is_some())
        .map(str::to_lowercase)
        .collect()
}

/// Compiles a path glob the way scopes and guards use it: `*` stays within one path
/// component, `**` crosses them (gitignore style, via `globset`).
///
/// # Errors
/// [`Error::Glob`] for a malformed glob.
pub fn compile_glob(glob: &str) -> Result<GlobMatcher, Error> {
    let g = glob.trim().trim_start_matches("./");
    GlobBuilder::new(g)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|source| Error::Glob {
            glob: glob.to_owned(),
            source,
        })
}

/// Options for [`context_pack`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackOptions {
    /// The budget, in estimated tokens ([`estimate_tokens`]), for the whole markdown.
    pub budget_tokens: usize,
    /// Candidates fetched from each source (text, scope) before ranking.
    pub candidates: usize,
    /// The valid-time instant whose records are in force; now when `None`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub at: Option<Timestamp>,
    /// The requirement ids the task serves (`REQ-1`): every lesson in force recorded for one
    /// of them is a candidate whatever the task's words, scored [`W_REQUIREMENT`]. Ids are
    /// rarely searchable words (`REQ-1` has none of two letters but `req`), so text alone
    /// would miss them.
    #[serde(default)]
    pub requirements: Vec<String>,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            budget_tokens: 1500,
            candidates: 32,
            at: None,
            requirements: Vec::new(),
        }
    }
}

/// One record in a context pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackItem {
    /// The record.
    pub id: RecordId,
    /// Its kind.
    pub kind: Kind,
    /// Its title.
    pub title: String,
    /// The ranking score (see the module docs).
    pub score: f64,
    /// Why it was included, one line.
    pub why: String,
    /// Estimated tokens of its rendered block.
    pub tokens: usize,
    /// True when a shortened block was used to fit the budget.
    pub compact: bool,
}

/// A rendered context pack.
///
/// Invariant: `tokens == estimate_tokens(&markdown) <= budget_tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextPack {
    /// Markdown for the agent's prompt (empty when nothing fits or nothing applies).
    pub markdown: String,
    /// The records included, best first.
    pub items: Vec<PackItem>,
    /// Estimated tokens of `markdown`.
    pub tokens: usize,
    /// The budget it was built for.
    pub budget_tokens: usize,
    /// Candidates considered.
    pub considered: usize,
    /// Candidates ranked but left out for lack of budget.
    pub left_out: usize,
}

struct Candidate {
    record: Record,
    bm25: Option<f64>,
}

/// Builds the context pack for a task.
///
/// `task` is free text (title, requirement text); `touched` are repository paths the task is
/// expected to change (`Touches:` in the spec). Only records in force at `opts.at` are used.
///
/// # Errors
/// Store failures.
pub fn context_pack<S: Store + ?Sized>(
    store: &S,
    task: &str,
    touched: &[String],
    opts: &PackOptions,
) -> Result<ContextPack, Error> {
    let at = opts.at.unwrap_or_else(crate::now);
    let filter = Filter::InForce { at };
    let mut cands: BTreeMap<RecordId, Candidate> = BTreeMap::new();
    let text_hits = store.query(&Query {
        text: Some(task.to_owned()),
        ids: Vec::new(),
        kinds: Vec::new(),
        filter: filter.clone(),
        touched: Vec::new(),
        limit: opts.candidates,
    })?;
    for Hit { record, bm25 } in text_hits {
        cands.insert(record.id, Candidate { record, bm25 });
    }
    if !touched.is_empty() {
        let scope_hits = store.query(&Query {
            text: None,
            ids: Vec::new(),
            kinds: Vec::new(),
            filter,
            touched: touched.to_vec(),
            limit: opts.candidates,
        })?;
        for Hit { record, .. } in scope_hits {
            cands
                .entry(record.id)
                .or_insert(Candidate { record, bm25: None });
        }
    }
    if !opts.requirements.is_empty() {
        let lessons = store.query(&Query {
            text: None,
            ids: Vec::new(),
            kinds: vec![Kind::Lesson],
            filter: Filter::InForce { at },
            touched: Vec::new(),
            limit: 0,
        })?;
        for Hit { record, .. } in lessons {
            if lesson_requirement(&record).is_some_and(|r| opts.requirements.iter().any(|q| q == r))
            {
                cands
                    .entry(record.id)
                    .or_insert(Candidate { record, bm25: None });
            }
        }
    }
    let terms = query_terms(task);
    let best = cands
        .values()
        .filter_map(|c| c.bm25)
        .fold(0.0_f64, f64::min);
    let mut ranked: Vec<(f64, String, &Record)> = Vec::new();
    for c in cands.values() {
        let (total, why) = score(c, best, &terms, touched, &opts.requirements, at);
        if total > 0.0 {
            ranked.push((total, why, &c.record));
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.2.id.cmp(&b.2.id)));
    Ok(render(ranked, opts.budget_tokens, cands.len()))
}

/// The requirement a lesson was recorded for.
fn lesson_requirement(r: &Record) -> Option<&str> {
    (r.kind == Kind::Lesson)
        .then_some(r.provenance.requirement.as_deref())
        .flatten()
}

fn score(
    cand: &Candidate,
    best: f64,
    terms: &[String],
    touched: &[String],
    requirements: &[String],
    at: Timestamp,
) -> (f64, String) {
    let r = &cand.record;
    let mut total = 0.0;
    let mut why = Vec::new();
    if let Some(req) = lesson_requirement(r).filter(|req| requirements.iter().any(|q| q == req)) {
        total += W_REQUIREMENT;
        why.push(format!("a lesson of {req}"));
    }
    if let Some(b) = cand.bm25 {
        let t = if best < 0.0 { b / best } else { 0.0 };
        total += W_TEXT * t;
        let hay = format!(
            "{} {} {} {} {} {}",
            r.title,
            r.context,
            r.decision,
            r.consequences,
            r.rejected_options.join(" "),
            r.scope.tags.join(" ")
        )
        .to_lowercase();
        let matched: Vec<&str> = terms
            .iter()
            .filter(|t| {
                let stem: String = t.chars().take(5).collect();
                hay.contains(t.as_str()) || (t.chars().count() > 5 && hay.contains(&stem))
            })
            .take(4)
            .map(String::as_str)
            .collect();
        if matched.is_empty() {
            why.push("matches the task text".to_owned());
        } else {
            why.push(format!("matches \"{}\"", matched.join("\", \"")));
        }
    }
    if !touched.is_empty() {
        'outer: for g in &r.scope.paths {
            // Cheap literal-prefix test first; compile the glob only when it can match.
            let prefix = crate::sqlite::glob_prefix(g);
            let under = |p: &str| {
                prefix.is_empty()
                    || p == prefix
                    || p.strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            };
            if !touched.iter().any(|p| under(p.trim_start_matches("./"))) {
                continue;
            }
            let literal_tree = g
                .strip_suffix("/**")
                .filter(|p| !p.contains(['*', '?', '[', '{', '\\']));
            let m = match literal_tree {
                Some(_) => None,
                None => match compile_glob(g) {
                    Ok(m) => Some(m),
                    Err(_) => continue,
                },
            };
            for p in touched {
                let p = p.trim_start_matches("./");
                let hit = match (&m, literal_tree) {
                    // `dir/**`: everything under `dir`, without compiling a glob.
                    (None, Some(dir)) => p
                        .strip_prefix(dir.trim_start_matches("./"))
                        .is_some_and(|r| r.starts_with('/')),
                    (Some(m), _) => m.is_match(p),
                    (None, None) => false,
                };
                if hit {
                    total += W_SCOPE;
                    why.push(format!("scope `{g}` covers `{p}`"));
                    break 'outer;
                }
            }
        }
    }
    if total <= 0.0 {
        return (0.0, String::new());
    }
    let age_days = ((at - r.valid_from).whole_seconds().max(0) as f64) / 86_400.0;
    total += W_RECENCY * 0.5_f64.powf(age_days / RECENCY_HALF_LIFE_DAYS);
    if age_days < 30.0 {
        why.push(format!("recent ({} days)", age_days.floor()));
    }
    if let Some(l) = &r.lesson {
        total += W_RECURRENCE * f64::from(l.failures).ln_1p();
        if l.failures > 1 {
            why.push(format!("recurring failure ({}×)", l.failures));
        }
    }
    (total, why.join("; "))
}

fn one_line(s: &str, max_chars: usize) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max_chars {
        flat
    } else {
        let cut: String = flat.chars().take(max_chars.saturating_sub(1)).collect();
        format!("{}…", cut.trim_end())
    }
}

fn block(r: &Record, why: &str, compact: bool) -> String {
    let mut b = format!(
        "### {} · {} ({})\nWhy included: {why}.\n",
        r.id,
        one_line(&r.title, 120),
        r.kind
    );
    let text_max = if compact { 160 } else { 600 };
    if !r.decision.trim().is_empty() {
        let label = if r.kind == Kind::Lesson {
            "Lesson"
        } else {
            "Decision"
        };
        let _ = writeln!(b, "{label}: {}", one_line(&r.decision, text_max));
    }
    if !compact {
        if !r.consequences.trim().is_empty() {
            let _ = writeln!(b, "Consequences: {}", one_line(&r.consequences, 300));
        }
        if !r.rejected_options.is_empty() {
            let _ = writeln!(
                b,
                "Rejected: {}",
                one_line(&r.rejected_options.join("; "), 200)
            );
        }
    }
    if !r.guards.is_empty() {
        let g: Vec<String> = r.guards.iter().map(ToString::to_string).collect();
        let _ = writeln!(b, "Enforced: {}", one_line(&g.join("; "), 200));
    }
    b.push('\n');
    b
}

const HEADER: &str = "## Project memory\n\nSettled decisions, patterns and lessons that apply to this task. \
Do not reverse a decision listed here; if one must change, say so and propose a superseding decision.\n\n";

fn render(ranked: Vec<(f64, String, &Record)>, budget: usize, considered: usize) -> ContextPack {
    let mut md = String::new();
    let mut items = Vec::new();
    let mut left_out = 0usize;
    if !ranked.is_empty() && estimate_tokens(HEADER) <= budget {
        md.push_str(HEADER);
        let mut chars = HEADER.chars().count();
        for (score, why, r) in ranked {
            let mut placed = false;
            for compact in [false, true] {
                let b = block(r, &why, compact);
                let b_chars = b.chars().count();
                if (chars + b_chars).div_ceil(4) <= budget {
                    chars += b_chars;
                    items.push(PackItem {
                        id: r.id,
                        kind: r.kind,
                        title: r.title.clone(),
                        score,
                        why: why.clone(),
                        tokens: estimate_tokens(&b),
                        compact,
                    });
                    md.push_str(&b);
                    placed = true;
                    break;
                }
            }
            if !placed {
                left_out += 1;
            }
        }
        if items.is_empty() {
            md.clear();
        } else {
            while md.ends_with("\n\n") {
                md.pop();
            }
        }
    } else {
        left_out = ranked.len();
    }
    ContextPack {
        tokens: estimate_tokens(&md),
        markdown: md,
        items,
        budget_tokens: budget,
        considered,
        left_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_expression_quotes_words_and_drops_syntax() {
        assert_eq!(
            match_expression("Use the \"SQLite\" store; NOT postgres*").as_deref(),
            Some("\"use\" OR \"sqlite\" OR \"store\" OR \"postgres\"")
        );
        assert_eq!(match_expression("a * ("), None);
    }

    #[test]
    fn tokens_are_a_quarter_of_characters_rounded_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("éééé"), 1);
    }

    #[test]
    fn globs_keep_star_within_a_component() {
        let m = compile_glob("src/*.rs").unwrap();
        assert!(m.is_match("src/a.rs"));
        assert!(!m.is_match("src/a/b.rs"));
        assert!(compile_glob("src/**").unwrap().is_match("src/a/b.rs"));
    }
}
