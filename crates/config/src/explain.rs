//! `lightsout config check`: the resolved configuration, value by value, with where each
//! value came from (a line of `lightsout.toml`, an environment variable, or the default).

use super::Config;
use crate::Error;
use serde::Serialize;
use std::path::Path;
use toml::de::{DeTable, DeValue};

/// Where a resolved value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Written in the configuration file, at this 1-based line.
    File {
        /// The line of its key.
        line: usize,
    },
    /// Set by an environment variable of the factory, which wins over the file.
    Environment {
        /// The variable (`LIGHTSOUT_HOLDOUT`).
        variable: String,
    },
    /// Not written anywhere: the built-in default.
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File { line } => write!(f, "lightsout.toml:{line}"),
            Source::Environment { variable } => write!(f, "environment {variable}"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// One resolved value: its dotted key (`run.attempts`, `agent.claude.preset`), the value as
/// JSON, and its [`Source`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Value {
    /// Dotted key path.
    pub key: String,
    /// The resolved value.
    pub value: serde_json::Value,
    /// Where it came from.
    pub source: Source,
}

/// The resolved configuration and the origin of each of its values.
#[derive(Debug, Clone)]
pub struct Explained {
    /// The configuration as `lightsout run` would use it.
    pub config: Config,
    /// Every leaf value in key order (arrays are one value), `fence.env` left out: it is
    /// `[env]`, shown once.
    pub values: Vec<Value>,
}

/// Keys of the file that are spelled otherwise in the resolved form (serde aliases).
const ALIASES: &[(&str, &str)] = &[("fence", "policy")];

/// The line of the key at `path` in the parsed file, when it is written there.
fn line_of(table: &DeTable<'_>, path: &[&str], text: &str) -> Option<usize> {
    let (first, rest) = path.split_first()?;
    let alias = ALIASES.iter().find(|(k, _)| k == first).map(|(_, a)| *a);
    let (key, value) = table
        .iter()
        .find(|(k, _)| k.get_ref() == first || Some(k.get_ref().as_ref()) == alias)?;
    if rest.is_empty() {
        let at = key.span().start.min(text.len());
        return Some(text[..at].matches('\n').count() + 1);
    }
    match value.get_ref() {
        DeValue::Table(t) => line_of(t, rest, text),
        _ => None,
    }
}

fn flatten(prefix: &str, v: serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
    match v {
        serde_json::Value::Object(m) if !m.is_empty() || prefix.is_empty() => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => out.push((prefix.to_owned(), other)),
    }
}

/// Reads `text` (a `lightsout.toml` in `base_dir`) as [`Config::parse`] does and explains
/// every value; `holdout_env` is the value of `LIGHTSOUT_HOLDOUT`, which overrides
/// `[holdout] path`.
///
/// # Errors
/// As [`Config::parse`].
pub fn explain(text: &str, base_dir: &Path, holdout_env: Option<&str>) -> Result<Explained, Error> {
    let config = Config::parse(text, base_dir)?;
    let parsed = DeTable::parse(text)
        .map_err(|e| Error::Config(super::strict::explain_toml_error(&e, text)))?;
    let json = serde_json::to_value(&config)
        .map_err(|e| Error::Config(format!("cannot show the configuration: {e}")))?;
    let mut leaves = Vec::new();
    flatten("", json, &mut leaves);
    let values = leaves
        .into_iter()
        .filter(|(k, _)| !k.starts_with("fence.env."))
        .map(|(key, mut value)| {
            let path: Vec<&str> = key.split('.').collect();
            let mut source = line_of(parsed.get_ref(), &path, text)
                .map_or(Source::Default, |line| Source::File { line });
            if key == "holdout.path"
                && let Some(h) = holdout_env.filter(|h| !h.is_empty())
            {
                value = serde_json::Value::String(h.to_owned());
                source = Source::Environment {
                    variable: "LIGHTSOUT_HOLDOUT".into(),
                };
            }
            Value { key, value, source }
        })
        .collect();
    Ok(Explained { config, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_names_its_line_or_the_default() {
        let text = "[run]\nattempts = 1\n\n[agents]\ndefault = \"c\"\n[agent.c]\npreset = \"claude-code\"\n\n[holdout]\npath = \"../h\"\n";
        let e = explain(text, Path::new("/p"), Some("/elsewhere")).unwrap();
        let get = |k: &str| e.values.iter().find(|v| v.key == k).unwrap().clone();
        assert_eq!(get("run.attempts").source, Source::File { line: 2 });
        assert_eq!(get("run.attempts").value, serde_json::json!(1));
        assert_eq!(get("run.jobs").source, Source::Default);
        assert_eq!(get("agent.c.preset").source, Source::File { line: 7 });
        let h = get("holdout.path");
        assert_eq!(h.value, serde_json::json!("/elsewhere"));
        assert_eq!(h.source.to_string(), "environment LIGHTSOUT_HOLDOUT");
        assert!(get("env.allow").value.as_array().unwrap().len() > 3);
        assert!(!e.values.iter().any(|v| v.key.starts_with("fence.env")));
    }

    #[test]
    fn the_policy_alias_is_found_in_the_file() {
        let e = explain("[policy]\nwall_ms = 5\n", Path::new("."), None).unwrap();
        let v = e.values.iter().find(|v| v.key == "fence.wall_ms").unwrap();
        assert_eq!(v.source, Source::File { line: 2 });
    }
}
