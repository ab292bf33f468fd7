//! Parsers for the usage and cost that CLI agents print, line by line as it arrives
//! ([`StreamParser`]) or all at once ([`parse_output`]).
//!
//! The formats, as the tools print them (fixtures of each, with the sources they follow, are
//! in `tests/fixtures/output/`, see its README):
//! - Claude Code, `claude -p --output-format json`: the result object `{"type":"result",
//!   "subtype":"success","is_error":false,"result":"...","total_cost_usd":0.01,
//!   "usage":{"input_tokens":..,"cache_creation_input_tokens":..,"cache_read_input_tokens":..,
//!   "output_tokens":..},"modelUsage":{"<model>":{..}}}`; Claude Code 2.x prints a JSON array
//!   of the session's messages instead, the result last
//!   (<https://github.com/open-horizon-labs/superego/pull/21>,
//!   <https://github.com/kenn-io/agentsview/issues/328>). Error results have `is_error: true`
//!   and a subtype such as `error_max_turns`, `error_max_budget_usd` or
//!   `error_during_execution`.
//! - Claude Code, `--output-format stream-json --verbose` (`--verbose` is required with
//!   `-p`, <https://github.com/fullsend-ai/fullsend/issues/306>): one JSON object per line,
//!   `system`/`init` (with `model`) first, then `assistant` and `user` messages, the result
//!   last (<https://docs.claude.com/en/docs/claude-code/headless>). Each `assistant` event
//!   carries its API message's `usage`; an API message with several content blocks comes as
//!   several events with the same `message.id` and the same usage, so usage is counted once
//!   per message id. That running total is the spend *as it arrives*; the result's
//!   `total_cost_usd` and `usage` replace it at the end.
//! - Codex, `codex exec --json`: JSON Lines events (`thread.started`, `turn.started`,
//!   `item.started`/`item.updated`/`item.completed`, `turn.completed` with
//!   `usage: {input_tokens, cached_input_tokens, output_tokens}`, `turn.failed` with
//!   `error.message`, `error` with `message`) (<https://github.com/openai/codex/pull/4525>).
//!   The final message is an item of type `agent_message` (`assistant_message` and the key
//!   `item_type` in the first releases of this format). Codex reports no cost. Its
//!   `turn.completed` usage is cumulative for the session (openai/codex issue 17539), so the
//!   last one is the total.
//! - Aider: human text lines `Tokens: 2.3k sent, 1.1k cache write, 512 received.` and
//!   `Cost: $0.0012 message, $0.0345 session.` (aider's `base_coder.py`); token counts use
//!   aider's `format_tokens` (`999`, `2.3k`, `12k`, `1.2M`). A model error shows as a
//!   `litellm.<Kind>Error: ...` line (<https://github.com/Aider-AI/aider/issues/1490>).
//! - Any format: the adapter contract's report lines (`lightsout.report/v1`,
//!   [`crate::contract::ReportLine`]) replace the figures parsed so far.

use crate::contract::ReportLine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Which output format a CLI agent prints, deciding how usage and cost are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OutputFormat {
    /// Plain text: no usage is parsed (except report lines); the summary is the last
    /// non-empty stdout line.
    #[default]
    Plain,
    /// Claude Code `--output-format json` (object or array) or `stream-json`.
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
    /// The model that did the work, when reported (for a price table).
    pub model: Option<String>,
    /// An error the agent reported in its own output, when any.
    pub error: Option<String>,
}

/// Parses `stdout` as `format`. Never fails: unparseable output yields what could be read.
pub fn parse_output(format: OutputFormat, stdout: &str) -> Parsed {
    let mut p = StreamParser::new(format);
    // Claude's `json` format may be one object or array spread over several lines.
    if format == OutputFormat::ClaudeJson
        && let Ok(v) = serde_json::from_str::<Value>(stdout.trim())
    {
        p.claude_value(&v);
    } else {
        for line in stdout.lines() {
            p.line(line);
        }
    }
    p.finish()
}

/// Reads an agent's stdout one line at a time and keeps its spend so far.
///
/// Feed each complete line with [`line`](Self::line); [`spent`](Self::spent) is the usage
/// reported so far (what a budget can act on while the agent runs); [`finish`](Self::finish)
/// gives the whole [`Parsed`] when the output ends, with an error when a structured stream
/// ended before its final event (a truncated stream).
#[derive(Debug, Clone)]
pub struct StreamParser {
    format: OutputFormat,
    p: Parsed,
    /// Claude stream-json: usage per API message id (input, output).
    messages: BTreeMap<String, (u64, u64)>,
    /// Whether the format's final event (Claude's result, Codex's `turn.completed`) came.
    done: bool,
    /// A contract report line overrides the figures of the format.
    report: Option<ReportLine>,
    aider_message_costs: Option<f64>,
    aider_session_cost: Option<f64>,
}

fn u(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn claude_input(usage: &Value) -> u64 {
    u(usage, "input_tokens")
        + u(usage, "cache_creation_input_tokens")
        + u(usage, "cache_read_input_tokens")
}

impl StreamParser {
    /// A parser for `format`.
    pub fn new(format: OutputFormat) -> Self {
        StreamParser {
            format,
            p: Parsed::default(),
            messages: BTreeMap::new(),
            done: false,
            report: None,
            aider_message_costs: None,
            aider_session_cost: None,
        }
    }

    /// Reads one line of stdout (without its newline).
    pub fn line(&mut self, line: &str) {
        let t = line.trim();
        if let Some(r) = ReportLine::parse(t) {
            if r.summary.is_some() {
                self.p.summary.clone_from(&r.summary);
            }
            self.report = Some(r);
            return;
        }
        match self.format {
            OutputFormat::Plain => {
                if !t.is_empty() {
                    self.p.summary = Some(t.to_owned());
                }
            }
            OutputFormat::ClaudeJson => {
                if let Ok(v) = serde_json::from_str::<Value>(t) {
                    self.claude_value(&v);
                }
            }
            OutputFormat::CodexJsonl => {
                if let Ok(v) = serde_json::from_str::<Value>(t) {
                    self.codex_event(&v);
                }
            }
            OutputFormat::Aider => self.aider_line(t),
        }
    }

    /// The usage reported so far: `(input tokens, output tokens, USD if known, model)`.
    pub fn spent(&self) -> Parsed {
        let mut p = self.p.clone();
        if self.format == OutputFormat::ClaudeJson && !self.done {
            p.input_tokens = self.messages.values().map(|m| m.0).sum();
            p.output_tokens = self.messages.values().map(|m| m.1).sum();
        }
        if self.format == OutputFormat::Aider {
            p.cost_usd = self.aider_session_cost.or(self.aider_message_costs);
        }
        if let Some(r) = &self.report {
            p.input_tokens = r.input_tokens;
            p.output_tokens = r.output_tokens;
            p.cost_usd = r.cost_usd.or(p.cost_usd);
            if r.model.is_some() {
                p.model.clone_from(&r.model);
            }
        }
        p
    }

    /// Whether the format's final event came (Claude's result, Codex's `turn.completed` or
    /// `turn.failed`): what follows it is the end of the call, not more spend to stop.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Everything parsed, once the output has ended.
    pub fn finish(self) -> Parsed {
        let mut p = self.spent();
        if !self.done && p.error.is_none() && self.report.is_none() {
            match self.format {
                OutputFormat::ClaudeJson => {
                    p.error = Some(
                        "claude's output ended without a result message (a cut or partial stream)"
                            .into(),
                    );
                }
                OutputFormat::CodexJsonl => {
                    p.error = Some(
                        "codex's output ended before turn.completed (a cut or partial stream)"
                            .into(),
                    );
                }
                _ => {}
            }
        }
        p
    }

    fn claude_value(&mut self, v: &Value) {
        if let Some(events) = v.as_array() {
            for e in events {
                self.claude_value(e);
            }
            return;
        }
        match v.get("type").and_then(Value::as_str) {
            Some("system") => {
                if let Some(m) = v.get("model").and_then(Value::as_str) {
                    self.p.model = Some(m.to_owned());
                }
            }
            Some("assistant") => {
                let Some(msg) = v.get("message") else { return };
                if let Some(m) = msg.get("model").and_then(Value::as_str) {
                    self.p.model = Some(m.to_owned());
                }
                if let Some(usage) = msg.get("usage") {
                    let id = msg
                        .get("id")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("#{}", self.messages.len()), str::to_owned);
                    self.messages
                        .insert(id, (claude_input(usage), u(usage, "output_tokens")));
                }
                let text = msg
                    .get("content")
                    .and_then(Value::as_array)
                    .and_then(|blocks| {
                        blocks
                            .iter()
                            .rev()
                            .filter(|c| c.get("type").and_then(Value::as_str) == Some("text"))
                            .find_map(|c| c.get("text").and_then(Value::as_str))
                    });
                if let Some(text) = text.filter(|t| !t.trim().is_empty()) {
                    self.p.summary = Some(text.to_owned());
                }
            }
            Some("result") => self.claude_result(v),
            _ => {}
        }
    }

    fn claude_result(&mut self, r: &Value) {
        self.done = true;
        let usage = r.get("usage").cloned().unwrap_or(Value::Null);
        let text = r.get("result").and_then(Value::as_str).map(str::to_owned);
        let is_error = r.get("is_error").and_then(Value::as_bool).unwrap_or(false);
        let subtype = r
            .get("subtype")
            .and_then(Value::as_str)
            .unwrap_or("success");
        if let Some(t) = text.clone().filter(|t| !t.trim().is_empty()) {
            self.p.summary = Some(t);
        }
        // The result's usage is the whole session's; streamed figures were a running count.
        let (streamed_in, streamed_out) = self
            .messages
            .values()
            .fold((0, 0), |(i, o), m| (i + m.0, o + m.1));
        self.p.input_tokens = claude_input(&usage).max(streamed_in);
        self.p.output_tokens = u(&usage, "output_tokens").max(streamed_out);
        self.p.cost_usd = r.get("total_cost_usd").and_then(Value::as_f64);
        if let Some(models) = r.get("modelUsage").and_then(Value::as_object) {
            // The model that read the most input did the work (helpers read little).
            let main = models
                .iter()
                .max_by_key(|(_, m)| u(m, "inputTokens") + u(m, "cacheReadInputTokens"))
                .map(|(name, _)| name.clone());
            if main.is_some() {
                self.p.model = main;
            }
        }
        if is_error || subtype != "success" {
            self.p.error = Some(match text.filter(|t| !t.trim().is_empty()) {
                Some(t) => format!("claude ended with {subtype}: {t}"),
                None => format!("claude ended with {subtype}"),
            });
        }
    }

    fn codex_event(&mut self, ev: &Value) {
        match ev.get("type").and_then(Value::as_str) {
            Some("item.completed") => {
                let item = ev.get("item").cloned().unwrap_or(Value::Null);
                let kind = item
                    .get("type")
                    .or_else(|| item.get("item_type"))
                    .and_then(Value::as_str);
                match kind {
                    Some("agent_message" | "assistant_message") => {
                        self.p.summary =
                            item.get("text").and_then(Value::as_str).map(str::to_owned);
                    }
                    Some("error") => {
                        self.p.error = item
                            .get("message")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                    }
                    _ => {}
                }
            }
            Some("turn.completed") => {
                self.done = true;
                let usage = ev.get("usage").cloned().unwrap_or(Value::Null);
                // `input_tokens` already includes `cached_input_tokens`.
                self.p.input_tokens = u(&usage, "input_tokens");
                self.p.output_tokens = u(&usage, "output_tokens");
            }
            Some("turn.failed") => {
                self.done = true;
                self.p.error = Some(
                    ev.pointer("/error/message")
                        .and_then(Value::as_str)
                        .unwrap_or("turn failed")
                        .to_owned(),
                );
            }
            Some("error") => {
                self.p.error = Some(
                    ev.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("error")
                        .to_owned(),
                );
            }
            _ => {}
        }
    }

    fn aider_line(&mut self, line: &str) {
        // aider prints `Tokens: ...` and `Cost: ...` on one line or on two.
        let tokens_at = line.find("Tokens:").filter(|&i| i == 0);
        let cost_at = line
            .find("Cost:")
            .filter(|&i| i == 0 || tokens_at.is_some());
        if tokens_at.is_none() && cost_at.is_none() {
            if let Some(at) = line.find("litellm.")
                && line[at..]
                    .split(':')
                    .next()
                    .is_some_and(|k| k.ends_with("Error"))
            {
                self.p.error = Some(line[at..].to_owned());
            } else if !line.is_empty() {
                self.p.summary = Some(line.to_owned());
            }
            return;
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
                    "sent" | "cache write" | "cache hit" => self.p.input_tokens += n,
                    "received" => self.p.output_tokens += n,
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
                if !v.is_finite() || v < 0.0 {
                    continue;
                }
                match what.trim() {
                    // The session figure is cumulative and rounded less; it wins.
                    "session" => self.aider_session_cost = Some(v),
                    "message" => {
                        *self.aider_message_costs.get_or_insert(0.0) += v;
                    }
                    _ => {}
                }
            }
        }
    }
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
