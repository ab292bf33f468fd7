//! [`Prices`]: the `[prices]` table of `lightsout.toml`, which turns the tokens a tool
//! reports into dollars when it reports no cost of its own (Codex reports none; Claude
//! Code's stream reports its cost only in the final result).
//!
//! ```toml
//! [prices."gpt-5-codex"]          # the model name as the tool reports it
//! input = 1.25                    # USD per million input tokens (cache reads included)
//! output = 10.0                   # USD per million output tokens
//!
//! [prices."*"]                    # any model not listed, or a tool that names none
//! input = 3.0
//! output = 15.0
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The key of the price for any model not listed (and for tools that name no model).
pub const ANY_MODEL: &str = "*";

/// The price of one model, in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// USD per million input tokens (cache reads and writes are counted as input).
    pub input: f64,
    /// USD per million output tokens.
    pub output: f64,
}

/// Model name → [`Price`]; the key [`ANY_MODEL`] (`"*"`) prices every other model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Prices(pub BTreeMap<String, Price>);

impl Prices {
    /// Whether no price is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The price of `model`: its own entry, else the [`ANY_MODEL`] entry, else `None`.
    pub fn of(&self, model: Option<&str>) -> Option<Price> {
        model
            .and_then(|m| self.0.get(m))
            .or_else(|| self.0.get(ANY_MODEL))
            .copied()
    }

    /// The cost in USD of `input` and `output` tokens of `model`; `None` when no price
    /// applies (the cost stays unknown).
    pub fn cost(&self, model: Option<&str>, input: u64, output: u64) -> Option<f64> {
        self.of(model)
            .map(|p| (p.input * input as f64 + p.output * output as f64) / 1_000_000.0)
    }

    /// The first entry whose price is negative or not a finite number, as
    /// `(model, "input" | "output")`, for configuration checks.
    pub fn invalid(&self) -> Option<(&str, &'static str)> {
        self.0.iter().find_map(|(m, p)| {
            let bad = |v: f64| !v.is_finite() || v < 0.0;
            if bad(p.input) {
                Some((m.as_str(), "input"))
            } else if bad(p.output) {
                Some((m.as_str(), "output"))
            } else {
                None
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_model_uses_its_price_others_the_wildcard() {
        let p = Prices(BTreeMap::from([
            (
                "gpt-5-codex".to_owned(),
                Price {
                    input: 1.25,
                    output: 10.0,
                },
            ),
            (
                ANY_MODEL.to_owned(),
                Price {
                    input: 3.0,
                    output: 15.0,
                },
            ),
        ]));
        let c = p.cost(Some("gpt-5-codex"), 1_000_000, 100_000).unwrap();
        assert!((c - 2.25).abs() < 1e-9, "{c}");
        let c = p.cost(None, 1_000, 1_000).unwrap();
        assert!((c - 0.018).abs() < 1e-9, "{c}");
        assert_eq!(Prices::default().cost(Some("x"), 1, 1), None);
        let bad = Prices(BTreeMap::from([(
            "m".to_owned(),
            Price {
                input: 1.0,
                output: -1.0,
            },
        )]));
        assert_eq!(bad.invalid(), Some(("m", "output")));
    }
}
