//! [`Usage`]: what one agent call consumed.

use serde::{Deserialize, Serialize};

/// Token and cost usage of one agent call.
///
/// Units: tokens (counts), USD as a float (`cost_usd`, as agents report it), milliseconds.
/// The fence's budget ledger counts its own `Spend` in whole micro-USD; it converts at its
/// edge, once (`lightsout_fence::budget::Spend::from`, rounding the cost up).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Usage {
    /// Input tokens, cache reads and writes included, when the agent reports them.
    pub input_tokens: u64,
    /// Output tokens (reasoning included), when the agent reports them.
    pub output_tokens: u64,
    /// Cost in USD as the agent reports it; `None` when it does not (Codex reports none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Wall-clock time of the call in milliseconds, measured by the adapter.
    pub wall_ms: u64,
}

impl Usage {
    /// Input plus output tokens (saturating).
    pub fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_form_leaves_out_an_unknown_cost() {
        let u = Usage {
            input_tokens: 8,
            output_tokens: 2,
            cost_usd: None,
            wall_ms: 7,
        };
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            r#"{"input_tokens":8,"output_tokens":2,"wall_ms":7}"#
        );
        assert_eq!(u.tokens(), 10);
    }
}
