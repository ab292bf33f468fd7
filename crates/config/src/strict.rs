//! Strict reading of `lightsout.toml`: an unknown key or section is an error that names it,
//! where it is, and the nearest valid key (did-you-mean, by Damerau–Levenshtein distance
//! from `strsim`).
//!
//! The valid keys come from serde itself: every table of [`Config`](super::Config) is
//! `deny_unknown_fields`, and serde's error for an unknown field lists the expected ones
//! (``unknown field `x`, expected one of `a`, `b` ``, the wording of
//! `serde::de::Error::unknown_field`), so the list can never drift from the structs.

use crate::Error;

/// The valid name nearest to `word` among `candidates`, when one is close enough to be a
/// typo: at most 2 edits (transpositions count as one) and fewer than half its letters, or
/// the same word in another case.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= 2 && *d * 2 < c.chars().count().max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `" (did you mean `x`?)"` for the nearest candidate, or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    nearest(word, candidates).map_or_else(String::new, |n| format!("; did you mean `{n}`?"))
}

/// 1-based line and column of byte `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

/// The table header (`[run]`, `[agent.claude]`) that holds byte `at`, or `None` at the top
/// level; for a header line itself, the header path without its last component.
fn section_at(text: &str, at: usize) -> Option<String> {
    let at = at.min(text.len());
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let header = |line: &str| {
        let l = line.trim();
        l.starts_with('[')
            .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned())
    };
    let this_line = text[line_start..].lines().next().unwrap_or("");
    if let Some(h) = header(this_line) {
        return h.rsplit_once('.').map(|(parent, _)| parent.to_owned());
    }
    text[..line_start]
        .lines()
        .rev()
        .find_map(|l| header(l).map(|h| h.split('#').next().unwrap_or("").trim().to_owned()))
}

/// The unknown name and the expected ones in serde's message, for an unknown field or
/// variant.
fn unknown(msg: &str) -> Option<(&'static str, String, Vec<String>)> {
    let (what, rest) = if let Some(r) = msg.strip_prefix("unknown field `") {
        ("key", r)
    } else if let Some(r) = msg.strip_prefix("unknown variant `") {
        ("value", r)
    } else {
        return None;
    };
    let (name, rest) = rest.split_once('`')?;
    let expected = rest
        .split_once("expected")
        .map(|(_, e)| e.split('`').skip(1).step_by(2).map(str::to_owned).collect())
        .unwrap_or_default();
    Some((what, name.to_owned(), expected))
}

/// A TOML or serde error of `lightsout.toml` in words: where, what, and for an unknown key
/// or value the nearest valid one and the full list.
pub(super) fn explain_toml_error(e: &toml::de::Error, text: &str) -> String {
    let span = e.span();
    let place = span.as_ref().map_or_else(
        || "lightsout.toml".to_owned(),
        |s| {
            let (l, c) = line_col(text, s.start);
            format!("lightsout.toml:{l}:{c}")
        },
    );
    let msg = e.message().trim();
    let Some((what, name, expected)) = unknown(msg) else {
        return format!("{place}: {msg}");
    };
    let section = span.as_ref().and_then(|s| section_at(text, s.start));
    let is_section = what == "key"
        && span.as_ref().is_some_and(|s| {
            let start = text[..s.start.min(text.len())]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            text[start..].trim_start().starts_with('[')
        });
    let (noun, shown) = match (is_section, &section) {
        (true, Some(parent)) => ("section", format!("[{parent}.{name}]")),
        (true, None) => ("section", format!("[{name}]")),
        (false, _) => (what, format!("`{name}`")),
    };
    let within = section.map_or_else(
        || {
            if is_section {
                String::new()
            } else {
                " at the top level".to_owned()
            }
        },
        |s| {
            if is_section {
                String::new()
            } else {
                format!(" in [{s}]")
            }
        },
    );
    let hint = did_you_mean(&name, expected.iter().map(String::as_str));
    let list = if expected.is_empty() {
        String::new()
    } else {
        format!(" (valid: {})", expected.join(", "))
    };
    format!("{place}: unknown {noun} {shown}{within}{hint}{list}")
}

/// Refuses `[fence.env]` (and `[policy.env]`): the environment has one allowlist, `[env]`.
pub(super) fn refuse_fence_env(text: &str) -> Result<(), Error> {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return Ok(());
    };
    for name in ["fence", "policy"] {
        if table
            .get(name)
            .and_then(toml::Value::as_table)
            .is_some_and(|t| t.contains_key("env"))
        {
            return Err(Error::Config(format!(
                "lightsout.toml: [{name}.env] is not read: the environment has one allowlist, \
                 [env] (allow, pass, deny, set), for agents, checks and the holdout runner; \
                 move these keys to [env]"
            )));
        }
    }
    Ok(())
}

/// Checks `[env]`: its globs compile, and no exact name in `allow` is one that `deny` drops
/// (it would silently never reach anyone): such a name belongs in `pass`.
pub(super) fn check_env(env: &super::EnvConfig) -> Result<(), Error> {
    lightsout_fence::policy::EnvPolicy::new(env)
        .map_err(|e| Error::Config(format!("lightsout.toml: [env]: {e}")))?;
    for name in env
        .allow
        .iter()
        .filter(|n| !n.contains(['*', '?', '[']) && !env.pass.contains(n))
    {
        let denied_by = env.deny.iter().find(|d| {
            globset::GlobBuilder::new(d)
                .case_insensitive(true)
                .build()
                .is_ok_and(|g| g.compile_matcher().is_match(name))
        });
        if let Some(d) = denied_by {
            return Err(Error::Config(format!(
                "lightsout.toml: [env] allow names `{name}`, which looks secret (it matches \
                 deny `{d}`) and so would never be passed; to hand it to the agent on \
                 purpose, name it in [env] pass instead"
            )));
        }
    }
    Ok(())
}

/// Checks `[store] url`: a `postgres://` (or `postgresql://`) URL, or a `SQLite` file (no
/// scheme); anything else is an error naming the value's line and column.
pub(super) fn check_store_url(url: &str, text: &str) -> Result<(), Error> {
    let bad = if url.trim().is_empty() {
        Some("is empty")
    } else if url.contains("://") && !super::is_postgres_url(url) {
        Some("uses a scheme the fleet's store does not speak")
    } else {
        None
    };
    let Some(what) = bad else {
        return Ok(());
    };
    let place = toml::de::DeTable::parse(text)
        .ok()
        .and_then(|t| {
            let (_, store) = t.get_ref().iter().find(|(k, _)| k.get_ref() == "store")?;
            let toml::de::DeValue::Table(store) = store.get_ref() else {
                return None;
            };
            let (_, v) = store.iter().find(|(k, _)| k.get_ref() == "url")?;
            Some(v.span().start)
        })
        .map_or_else(
            || "lightsout.toml".to_owned(),
            |at| {
                let (l, c) = line_col(text, at);
                format!("lightsout.toml:{l}:{c}")
            },
        );
    Err(Error::Config(format!(
        "{place}: [store] url = \"{url}\" {what}: give a postgres://user@host:port/database URL \
         or the path of a SQLite file"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos_only() {
        let keys = ["jobs", "attempts", "main"];
        assert_eq!(nearest("atempts", keys), Some("attempts"));
        assert_eq!(nearest("Jobs", keys), Some("jobs"));
        assert_eq!(nearest("defualt", ["default", "kinds"]), Some("default"));
        assert_eq!(
            nearest("traget", ["target", "twins", "gate"]),
            Some("target")
        );
        assert_eq!(nearest("colour", keys), None);
        assert_eq!(nearest("x", ["y"]), None);
    }

    #[test]
    fn sections_and_positions() {
        let text = "[run]\njobs = 1\n\n[agent.x]\npreset = \"a\"\n";
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(section_at(text, 6).as_deref(), Some("run"));
        assert_eq!(
            section_at(text, text.find("preset").unwrap()).as_deref(),
            Some("agent.x")
        );
        assert_eq!(
            section_at(text, text.find("[agent.x]").unwrap()).as_deref(),
            Some("agent")
        );
        assert_eq!(section_at("a = 1\n", 0), None);
    }
}
