//! `[tuning]` and `[[tuning.variant]]` in `lightsout.toml`: the variants a human declared, the
//! objective, and the bounds the tuner stays inside.
//!
//! ```toml
//! [tuning]
//! incumbent = "opus"          # the variant every comparison is made against
//! seed = 7                    # the bandit's RNG seed (reproducible picks)
//! auto_accept = false         # proposed variants wait for a human (`status = "ready"`)
//!
//! [tuning.objective]
//! minimise = "usd-per-merged-task"
//! margin = 0.10               # first-attempt pass rate may be at most this far below the incumbent's
//! confidence = 0.95           # promotion needs P(best) at least this
//! min_tasks = 20              # and at least this many first attempts of the challenger
//!
//! [tuning.bounds]             # the fence around the tuner (not the sandbox `[fence]`)
//! kinds = ["code", "docs"]    # task kinds it may tune; none when empty
//! max_exploration = 0.2       # at most this share of a run's tasks off the default variant
//! bench_below = 0.5           # benched when the Wilson upper bound of its pass rate is below
//!
//! [[tuning.variant]]
//! name = "opus"
//! agent = "claude"            # an [agent.<name>] profile
//! model = "claude-opus-4"
//! prompt = "prompts/default.md"
//! ```
//!
//! **What `[tuning]` cannot reach.** Every table here refuses keys it does not know, and the
//! settings that keep the factory honest are refused by name with a reason: the holdout, the
//! gate, the budgets, the fence (sandbox, environment, limits) and the store caps
//! ([`PROTECTED`]). A variant is a name, an agent profile, a model and a prompt file: nothing
//! the tuner picks can lower the holdout bar, change the gate, raise a budget or loosen the
//! fence, because none of those is a field of anything it picks.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Keys refused anywhere under `[tuning]`, with the reason: these are set by a human in their
/// own tables and the tuner never changes them.
pub const PROTECTED: &[&str] = &[
    "holdout",
    "gate",
    "budget",
    "budgets",
    "fence",
    "policy",
    "env",
    "limits",
    "store",
    "sandbox",
    "strength",
    "redaction",
    "trials",
    "threshold",
    "attempts",
    "usd",
    "tokens",
    "wall_ms",
    "twins",
];

/// What the tuner minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Minimise {
    /// Expected USD per merged task: the median USD of a first attempt over the first-attempt
    /// pass rate (the expected cost of attempts until one passes, when attempts are
    /// independent).
    #[default]
    UsdPerMergedTask,
}

/// `[tuning.objective]`: minimise [`Minimise`] subject to a first-attempt pass rate at least
/// the incumbent's minus `margin` (a non-inferiority constraint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Objective {
    /// What is minimised.
    pub minimise: Minimise,
    /// Non-inferiority margin on the first-attempt pass rate, in `0..1`: a variant is
    /// feasible when its rate is at least the incumbent's minus this. Default 0.10.
    pub margin: f64,
    /// Posterior probability a challenger must reach to be promoted, in `0.5..1`.
    /// Default 0.95.
    pub confidence: f64,
    /// First attempts a challenger needs on a task kind before it can be promoted.
    /// Default 20.
    pub min_tasks: u32,
}

impl Default for Objective {
    fn default() -> Self {
        Objective {
            minimise: Minimise::UsdPerMergedTask,
            margin: 0.10,
            confidence: 0.95,
            min_tasks: 20,
        }
    }
}

/// `[tuning.bounds]`: the fence around the tuner (distinct from the sandbox, `[fence]`,
/// which `[tuning]` cannot reach).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bounds {
    /// Task kinds the tuner may choose variants for. Empty: none (every task runs the
    /// incumbent's profile as `[agents]` says).
    pub kinds: Vec<String>,
    /// The largest share of a run's tuned tasks, in `0..=1`, that may run a variant other
    /// than the current default. Default 0.2.
    pub max_exploration: f64,
    /// The floor on first-attempt pass rate, in `0..=1`: a variant whose Wilson 95% upper
    /// bound falls below it is benched (never picked). Default 0.5.
    pub bench_below: f64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            kinds: Vec::new(),
            max_exploration: 0.2,
            bench_below: 0.5,
        }
    }
}

/// Whether a variant may enter the bandit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VariantStatus {
    /// A human marked it ready (variants written by hand are ready).
    #[default]
    Ready,
    /// Proposed (by an agent); enters the bandit only with `auto_accept = true`.
    Proposed,
}

/// `[[tuning.variant]]`: an agent profile, a model and a prompt template file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Unique name; metrics lines carry it as `variant`.
    pub name: String,
    /// The `[agent.<name>]` profile that runs it.
    pub agent: String,
    /// The model the profile is asked to use; `None`: the profile's own.
    #[serde(default)]
    pub model: Option<String>,
    /// The prompt template file, relative to `lightsout.toml`; `None`: the built-in prompt.
    #[serde(default)]
    pub prompt: Option<PathBuf>,
    /// `ready` (default) or `proposed`.
    #[serde(default)]
    pub status: VariantStatus,
}

/// `[tuning]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuningConfig {
    /// The incumbent variant: the default until a challenger is promoted, and the reference
    /// of the pass-rate constraint for ever (a promotion never moves the reference, so
    /// promotions cannot ratchet the pass rate down).
    pub incumbent: String,
    /// The bandit's RNG seed. Default 0.
    #[serde(default)]
    pub seed: u64,
    /// Let `proposed` variants into the bandit without a human. Default false.
    #[serde(default)]
    pub auto_accept: bool,
    /// `[tuning.objective]`.
    #[serde(default)]
    pub objective: Objective,
    /// `[tuning.bounds]`.
    #[serde(default)]
    pub bounds: Bounds,
    /// `[[tuning.variant]]`.
    #[serde(default, rename = "variant")]
    pub variants: Vec<Variant>,
}

impl TuningConfig {
    /// The variants the bandit may pick: ready ones, and proposed ones when `auto_accept`.
    pub fn eligible(&self) -> impl Iterator<Item = &Variant> {
        self.variants
            .iter()
            .filter(|v| self.auto_accept || v.status == VariantStatus::Ready)
    }

    /// The variant named `name`.
    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// Whether the tuner may choose for task kind `kind`.
    pub fn tunes(&self, kind: &str) -> bool {
        self.bounds.kinds.iter().any(|k| k == kind)
    }
}

/// A problem in `[tuning]`, at a 1-based line and column of `lightsout.toml` when known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigDiagnostic {
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for ConfigDiagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "lightsout.toml:{l}:{c}: {}", self.message),
            _ => write!(f, "lightsout.toml: {}", self.message),
        }
    }
}

#[derive(Deserialize)]
struct Root {
    #[serde(default)]
    tuning: Option<TuningConfig>,
    #[serde(default)]
    agent: BTreeMap<String, toml::Value>,
}

fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

/// The valid name nearest to `word`, when it is close enough to be a typo (at most 2 edits,
/// Damerau–Levenshtein, and fewer than half its letters).
fn nearest<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c.as_str()))
        .filter(|(d, c)| *d <= 2 && *d * 2 < c.chars().count().max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn explain(e: &toml::de::Error, text: &str) -> ConfigDiagnostic {
    let (line, column) = e
        .span()
        .map(|s| line_col(text, s.start))
        .map_or((None, None), |(l, c)| (Some(l), Some(c)));
    let msg = e.message().trim();
    let message = if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((name, rest)) = rest.split_once('`')
    {
        let expected: Vec<String> = rest
            .split_once("expected")
            .map(|(_, e)| e.split('`').skip(1).step_by(2).map(str::to_owned).collect())
            .unwrap_or_default();
        if PROTECTED.contains(&name.to_lowercase().as_str()) {
            format!(
                "[tuning] cannot reach `{name}`: the holdout, the gate, the budgets and the fence \
                 are set by a human in their own tables and the tuner never changes them; \
                 [tuning] declares variants, the objective and its own bounds only"
            )
        } else {
            let hint = nearest(name, &expected)
                .map_or_else(String::new, |n| format!("; did you mean `{n}`?"));
            format!(
                "unknown key `{name}` under [tuning]{hint} (valid: {})",
                expected.join(", ")
            )
        }
    } else {
        msg.to_owned()
    };
    ConfigDiagnostic {
        line,
        column,
        message,
    }
}

fn check_unit(name: &str, v: f64, open_top: bool, diags: &mut Vec<ConfigDiagnostic>) {
    let ok = v.is_finite() && v >= 0.0 && if open_top { v < 1.0 } else { v <= 1.0 };
    if !ok {
        let range = if open_top {
            "0 ≤ x < 1"
        } else {
            "0 ≤ x ≤ 1"
        };
        diags.push(ConfigDiagnostic {
            line: None,
            column: None,
            message: format!("[tuning] {name} = {v} is out of range ({range})"),
        });
    }
}

/// Reads `[tuning]` from the text of a whole `lightsout.toml` (other tables are not read,
/// except the `[agent.<name>]` names a variant must refer to). `None` when there is no
/// `[tuning]`.
///
/// Every problem comes back as a diagnostic: a TOML or unknown-key error (the first one; with
/// did-you-mean, or the reason a protected key is refused), then every semantic problem at
/// once (duplicate variant names, an incumbent or agent profile that names nothing, values
/// out of range). The config is `None` whenever there is a diagnostic.
pub fn parse(text: &str) -> (Option<TuningConfig>, Vec<ConfigDiagnostic>) {
    let root: Root = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => return (None, vec![explain(&e, text)]),
    };
    let Some(t) = root.tuning else {
        return (None, Vec::new());
    };
    let mut diags = Vec::new();
    let mut d = |message: String| {
        diags.push(ConfigDiagnostic {
            line: None,
            column: None,
            message,
        });
    };
    let mut seen = BTreeSet::new();
    for v in &t.variants {
        if v.name.trim().is_empty() {
            d("[[tuning.variant]] has an empty name".into());
        } else if !seen.insert(v.name.as_str()) {
            d(format!(
                "[[tuning.variant]] name `{}` is declared twice",
                v.name
            ));
        }
        if !root.agent.contains_key(&v.agent) {
            let names: Vec<String> = root.agent.keys().cloned().collect();
            let hint = nearest(&v.agent, &names)
                .map_or_else(String::new, |n| format!("; did you mean `{n}`?"));
            d(format!(
                "[[tuning.variant]] `{}` names agent `{}`, which has no [agent.{}] section{hint}",
                v.name, v.agent, v.agent
            ));
        }
    }
    match t.variant(&t.incumbent) {
        None => {
            let names: Vec<String> = t.variants.iter().map(|v| v.name.clone()).collect();
            let hint = nearest(&t.incumbent, &names)
                .map_or_else(String::new, |n| format!("; did you mean `{n}`?"));
            d(format!(
                "[tuning] incumbent = \"{}\" names no [[tuning.variant]]{hint}",
                t.incumbent
            ));
        }
        Some(v) if v.status == VariantStatus::Proposed => d(format!(
            "[tuning] incumbent `{}` is only proposed; the incumbent must be ready",
            t.incumbent
        )),
        Some(_) => {}
    }
    check_unit("objective.margin", t.objective.margin, true, &mut diags);
    check_unit(
        "bounds.max_exploration",
        t.bounds.max_exploration,
        false,
        &mut diags,
    );
    check_unit(
        "bounds.bench_below",
        t.bounds.bench_below,
        false,
        &mut diags,
    );
    let c = t.objective.confidence;
    if !(c.is_finite() && (0.5..1.0).contains(&c)) {
        diags.push(ConfigDiagnostic {
            line: None,
            column: None,
            message: format!("[tuning] objective.confidence = {c} is out of range (0.5 ≤ x < 1)"),
        });
    }
    if diags.is_empty() {
        (Some(t), diags)
    } else {
        (None, diags)
    }
}

/// [`parse`], with the diagnostics joined into one [`crate::Error::Config`].
///
/// # Errors
/// [`crate::Error::Config`] listing every diagnostic, one per line.
pub fn load(text: &str) -> Result<Option<TuningConfig>, crate::Error> {
    let (c, diags) = parse(text);
    if diags.is_empty() {
        Ok(c)
    } else {
        Err(crate::Error::Config(
            diags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        ))
    }
}

/// [`load`] over the raw `[tuning]` value a parsed `lightsout.toml` kept, with the names of
/// its `[agent.<name>]` profiles (what the factory has once its own config is read). Spans
/// are those of the re-serialised table; the file's own were reported when it was parsed.
///
/// # Errors
/// [`crate::Error::Config`] as [`load`].
pub fn from_value<'a>(
    tuning: &toml::Value,
    agents: impl IntoIterator<Item = &'a str>,
) -> Result<Option<TuningConfig>, crate::Error> {
    let mut root = toml::Table::new();
    root.insert("tuning".into(), tuning.clone());
    root.insert(
        "agent".into(),
        toml::Value::Table(
            agents
                .into_iter()
                .map(|a| (a.to_owned(), toml::Value::Table(toml::Table::new())))
                .collect(),
        ),
    );
    let text = toml::to_string(&root).map_err(|e| crate::Error::Config(e.to_string()))?;
    load(&text)
}
