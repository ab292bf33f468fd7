//! Parsers for the usage and cost that CLI agents print.
//!
//! Sources of the formats:
//! - Claude Code, `claude -p --output-format json`: one JSON object `{"type":"result",
//!   "subtype":"success","is_error":false,"result":"...","total_cost_usd":0.01,
//!   "usage":{"input_tokens":..,"cache_creation_input_tokens":..,"cache_read_input_tokens":..,
//!   "output_tokens":..}}` (<https://docs.claude.com/en/docs/claude-code/headless>); with
//!   `--output-format stream-json` the same object is the last line.
//! - Codex, `codex exec --json`: JSON Lines events (`thread.started`, `turn.started`,
//!   `item.completed` with `item.type == "agent_message"`, `turn.completed` with
//!   `usage: {input_tokens, cached_input_tokens, output_tokens}`, `turn.failed`, `error`).
//!   Codex reports no cost. Its `turn.completed` usage is cumulative for the session
//!   (openai/codex issue 17539), so the last one is the total.
//! - Aider: human text lines `Tokens: 2.3k sent, 1.1k cache write, 512 received.` and
//!   `Cost: $0.0012 message, $0.0345 session.` (aider's `base_coder.py`); token counts use
//!   aider's `format_tokens` (`999`, `2.3k`, `12k`, `1.2M`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which output format a CLI agent prints, deciding how usage and cost are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OutputFormat {
    /// Plain text: no usage is parsed; the summary is the last non-empty stdout line.
    #[default]
    Plain,
    /// Claude Code `--output-format json` (or `stream-json`).
    ClaudeJson,
    /// Codex `exec --json` JSON Lines.
    CodexJsonl,
    /// Aider's text output with `Tokens:` and `Cost:` lines.
    Aider,
}

/// What was parsed out of an agent's stdout.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    /// The agent's final message, when found.
    pub summary: Option<String>,
    /// Input tokens (cache reads and writes included).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// USD cost, when reported.
    pub cost_usd: Option<f64>,
    /// An error the agent reported in its own output, when any.
    pub error: Option<String>,
}

/// Parses `stdout` as `format`. Never fails: unparseable output yields what could be read.
pub fn parse_output(format: OutputFormat, stdout: &str) -> Parsed {
    match format {
        OutputFormat::Plain => Parsed {
            summary: last_line(stdout),
            ..Parsed::default()
        },
        OutputFormat::ClaudeJson => parse_claude(stdout),
        OutputFormat::CodexJsonl => parse_codex(stdout),
        OutputFormat::Aider => parse_aider(stdout),
    }
}

fn last_line(s: &str) -> Option<String> {
    s.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

fn u(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn parse_claude(stdout: &str) -> Parsed {
    // The whole output is one object; in stream-json the result is the last line.
    let result = serde_json::from_str::<Value>(stdout.trim())
        .ok()
        .filter(|v| v.get("type").and_then(Value::as_str) == Some("result"))
        .or_else(|| {
            stdout.lines().rev().find_map(|l| {
                serde_json::from_str::<Value>(l.trim())
                    .ok()
                    .filter(|v| v.get("type").and_then(Value::as_str) == Some("result"))
            })
        });
    let Some(r) = result else {
        return Parsed {
            summary: last_line(stdout),
            error: Some("no result object in claude output".into()),
            ..Parsed::default()
        };
    };
    let usage = r.get("usage").cloned().unwrap_or(Value::Null);
    let text = r.get("result").and_then(Value::as_str).map(str::to_owned);
    let is_error = r.get("is_error").and_then(Value::as_bool).unwrap_or(false);
    let subtype = r
        .get("subtype")
        .and_then(Value::as_str)
        .unwrap_or("success");
    Parsed {
        summary: text.clone(),
        input_tokens: u(&usage, "input_tokens")
            + u(&usage, "cache_creation_input_tokens")
            + u(&usage, "cache_read_input_tokens"),
        output_tokens: u(&usage, "output_tokens"),
        cost_usd: r.get("total_cost_usd").and_then(Value::as_f64),
        error: (is_error || subtype != "success")
            .then(|| text.unwrap_or_else(|| format!("claude ended with {subtype}"))),
    }
}

fn parse_codex(stdout: &str) -> Parsed {
    let mut p = Parsed::default();
    for line in stdout.lines() {
        let Ok(ev) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        match ev.get("type").and_then(Value::as_str) {
            Some("item.completed") => {
                let item = ev.get("item").cloned().unwrap_or(Value::Null);
                if item.get("type").and_then(Value::as_str) == Some("agent_message") {
                    p.summary = item.get("text").and_then(Value::as_str).map(str::to_owned);
                }
            }
            Some("turn.completed") => {
                let usage = ev.get("usage").cloned().unwrap_or(Value::Null);
                // `input_tokens` already includes `cached_input_tokens`.
                p.input_tokens = u(&usage, "input_tokens");
                p.output_tokens = u(&usage, "output_tokens");
            }
            Some("turn.failed") => {
                p.error = Some(
                    ev.pointer("/error/message")
                        .and_then(Value::as_str)
                        .unwrap_or("turn failed")
                        .to_owned(),
                );
            }
            Some("error") => {
                p.error = Some(
                    ev.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("error")
                        .to_owned(),
                );
            }
            _ => {}
        }
    }
    p
}

/// Parses one of aider's token counts: `999`, `2.3k`, `12k`, `1.2M`.
fn aider_tokens(s: &str) -> Option<u64> {
    let s = s.trim().replace(',', "");
    let (num, mult) = if let Some(n) = s.strip_suffix('k') {
        (n, 1_000.0)
    } else if let Some(n) = s.strip_suffix('M') {
        (n, 1_000_000.0)
    } else {
        (s.as_str(), 1.0)
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * mult).round() as u64)
}

fn parse_aider(stdout: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut session_cost = None;
    let mut message_costs = 0.0;
    let mut saw_message_cost = false;
    for line in stdout.lines().map(str::trim) {
        // aider prints `Tokens: ...` and `Cost: ...` on one line or on two.
        let tokens_at = line.find("Tokens:").filter(|&i| i == 0);
        let cost_at = line
            .find("Cost:")
            .filter(|&i| i == 0 || tokens_at.is_some());
        if tokens_at.is_none() && cost_at.is_none() {
            if !line.is_empty() {
                p.summary = Some(line.to_owned());
            }
            continue;
        }
        if tokens_at.is_some() {
            let end = cost_at.unwrap_or(line.len());
            let rest = &line["Tokens:".len()..end];
            // `2.3k sent, 1.1k cache write, 512 cache hit, 456 received.`
            for part in rest.trim().trim_end_matches('.').split(',') {
                let Some((count, what)) = part.trim().split_once(' ') else {
                    continue;
                };
                let Some(n) = aider_tokens(count) else {
                    continue;
                };
                match what.trim() {
                    "sent" | "cache write" | "cache hit" => p.input_tokens += n,
                    "received" => p.output_tokens += n,
                    _ => {}
                }
            }
        }
        if let Some(at) = cost_at {
            let rest = &line[at + "Cost:".len()..];
            // `$0.0012 message, $0.0345 session.`
            for part in rest.trim().trim_end_matches('.').split(',') {
                let Some((amount, what)) = part.trim().split_once(' ') else {
                    continue;
                };
                let Ok(v) = amount.trim_start_matches('$').parse::<f64>() else {
                    continue;
                };
                match what.trim() {
                    "session" => session_cost = Some(v),
                    "message" => {
                        message_costs += v;
                        saw_message_cost = true;
                    }
                    _ => {}
                }
            }
        }
    }
    // The session figure is cumulative and rounded less; prefer it.
    p.cost_usd = session_cost.or(saw_message_cost.then_some(message_costs));
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn claude_result_object() {
        let out = r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":2100,"num_turns":3,"result":"Added the endpoint.","session_id":"s","total_cost_usd":0.0421,"usage":{"input_tokens":12,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"output_tokens":345}}"#;
        let p = parse_output(OutputFormat::ClaudeJson, out);
        assert_eq!(p.summary.as_deref(), Some("Added the endpoint."));
        assert_eq!((p.input_tokens, p.output_tokens), (1112, 345));
        assert_eq!(p.cost_usd, Some(0.0421));
        assert_eq!(p.error, None);
    }

    #[test]
    fn claude_error_subtype() {
        let out = r#"{"type":"result","subtype":"error_max_turns","is_error":true,"total_cost_usd":0.5,"usage":{"input_tokens":1,"output_tokens":2}}"#;
        let p = parse_output(OutputFormat::ClaudeJson, out);
        assert_eq!(
            p.error.as_deref(),
            Some("claude ended with error_max_turns")
        );
        assert_eq!(p.cost_usd, Some(0.5));
    }

    #[test]
    fn codex_events() {
        let out = concat!(
            "{\"type\":\"thread.started\",\"thread_id\":\"t\"}\n",
            "{\"type\":\"turn.started\"}\n",
            "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_0\",\"type\":\"reasoning\",\"text\":\"thinking\"}}\n",
            "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_1\",\"type\":\"agent_message\",\"text\":\"Done.\"}}\n",
            "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":26549,\"cached_input_tokens\":22272,\"output_tokens\":1590}}\n",
        );
        let p = parse_output(OutputFormat::CodexJsonl, out);
        assert_eq!(p.summary.as_deref(), Some("Done."));
        assert_eq!(
            (p.input_tokens, p.output_tokens, p.cost_usd),
            (26549, 1590, None)
        );
    }

    #[test]
    fn aider_lines() {
        let out = "Applied edit to src/lib.rs\nTokens: 2.3k sent, 1.1k cache write, 456 received.\nCost: $0.0012 message, $0.0345 session.\nCommit abc123 feat: add\n";
        let p = parse_output(OutputFormat::Aider, out);
        assert_eq!((p.input_tokens, p.output_tokens), (3400, 456));
        assert_eq!(p.cost_usd, Some(0.0345));
        assert_eq!(p.summary.as_deref(), Some("Commit abc123 feat: add"));
        let one_line = "Tokens: 12k sent, 1.2k received. Cost: $0.05 message, $0.11 session.";
        let p = parse_output(OutputFormat::Aider, one_line);
        assert_eq!(
            (p.input_tokens, p.output_tokens, p.cost_usd),
            (12_000, 1200, Some(0.11))
        );
    }

    #[test]
    fn aider_token_suffixes() {
        assert_eq!(aider_tokens("999"), Some(999));
        assert_eq!(aider_tokens("2.3k"), Some(2300));
        assert_eq!(aider_tokens("12k"), Some(12_000));
        assert_eq!(aider_tokens("1.2M"), Some(1_200_000));
        assert_eq!(aider_tokens("-1"), None);
        assert_eq!(aider_tokens("x"), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,300}") {
            for f in [OutputFormat::Plain, OutputFormat::ClaudeJson, OutputFormat::CodexJsonl, OutputFormat::Aider] {
                let _ = parse_output(f, &s);
            }
        }
    }
}
