//! The output parsers on the recorded shapes of each preset's real output
//! (`tests/fixtures/output/`, sources in its README): success, error results, and streams
//! cut short; and the spend a streaming parser sees as lines arrive.

use lightsout_agent::parse::{OutputFormat, Parsed, StreamParser, parse_output};
use std::path::PathBuf;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/output")
            .join(name),
    )
    .unwrap()
}

fn parse(format: OutputFormat, name: &str) -> Parsed {
    parse_output(format, &fixture(name))
}

#[test]
fn claude_stream_json() {
    let p = parse(OutputFormat::ClaudeJson, "claude-stream.jsonl");
    assert_eq!(p.error, None);
    assert_eq!(p.summary.as_deref(), Some("Created hello.txt."));
    assert_eq!((p.input_tokens, p.output_tokens), (12_040, 512));
    assert_eq!(p.cost_usd, Some(0.0375));
    assert_eq!(p.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
}

#[test]
fn claude_json_object_and_array() {
    let p = parse(OutputFormat::ClaudeJson, "claude-json.json");
    assert_eq!(p.error, None);
    assert_eq!(p.summary.as_deref(), Some("Added the endpoint."));
    assert_eq!(
        (p.input_tokens, p.output_tokens, p.cost_usd),
        (1112, 345, Some(0.0421))
    );
    // Claude Code 2.x: one array, the result last; the working model is the one that read
    // the most, not the helper.
    let p = parse(OutputFormat::ClaudeJson, "claude-json-array.json");
    assert_eq!(p.error, None);
    assert_eq!(
        p.summary.as_deref(),
        Some("Done: the handler returns 404 now.")
    );
    assert_eq!((p.input_tokens, p.output_tokens), (9503, 80));
    assert_eq!(p.cost_usd, Some(0.0912));
    assert_eq!(p.model.as_deref(), Some("claude-opus-4-5-20251101"));
}

#[test]
fn claude_error_results() {
    let p = parse(OutputFormat::ClaudeJson, "claude-error-max-turns.json");
    assert_eq!(
        p.error.as_deref(),
        Some("claude ended with error_max_turns")
    );
    assert_eq!(
        p.cost_usd,
        Some(0.5),
        "an error result still reports its cost"
    );
    let p = parse(OutputFormat::ClaudeJson, "claude-stream-auth-error.jsonl");
    assert_eq!(
        p.error.as_deref(),
        Some("claude ended with success: Invalid API key · Please run /login")
    );
    assert_eq!(p.cost_usd, Some(0.0));
}

#[test]
fn claude_truncated_stream_keeps_the_spend_so_far() {
    let p = parse(OutputFormat::ClaudeJson, "claude-stream-truncated.jsonl");
    assert!(
        p.error.as_deref().unwrap().contains("without a result"),
        "{p:?}"
    );
    // The first API message, counted once although it came as two events.
    assert_eq!((p.input_tokens, p.output_tokens), (6020, 200));
    assert_eq!(p.cost_usd, None);
    assert_eq!(p.summary.as_deref(), Some("I'll create the file."));
}

#[test]
fn claude_spend_is_seen_as_it_arrives() {
    let mut s = StreamParser::new(OutputFormat::ClaudeJson);
    let mut seen = Vec::new();
    for line in fixture("claude-stream.jsonl").lines() {
        s.line(line);
        let p = s.spent();
        seen.push((p.input_tokens, p.output_tokens, p.cost_usd));
    }
    assert_eq!(
        seen,
        [
            (0, 0, None),
            (6020, 200, None),
            (6020, 200, None),
            (6020, 200, None),
            (12_040, 512, None),
            (12_040, 512, Some(0.0375)),
        ]
    );
}

#[test]
fn codex_exec_json() {
    let p = parse(OutputFormat::CodexJsonl, "codex-exec.jsonl");
    assert_eq!(p.error, None);
    assert_eq!(p.summary.as_deref(), Some("Wrote hello.txt."));
    assert_eq!(
        (p.input_tokens, p.output_tokens, p.cost_usd),
        (24_763, 122, None)
    );
    let p = parse(OutputFormat::CodexJsonl, "codex-exec-first-release.jsonl");
    assert_eq!(p.error, None);
    assert_eq!(p.summary.as_deref(), Some("Listed the files."));
    assert_eq!((p.input_tokens, p.output_tokens), (8000, 50));
}

#[test]
fn codex_failures_and_cut_streams() {
    let p = parse(OutputFormat::CodexJsonl, "codex-turn-failed.jsonl");
    assert!(
        p.error
            .as_deref()
            .unwrap()
            .starts_with("stream disconnected before completion"),
        "{p:?}"
    );
    let p = parse(OutputFormat::CodexJsonl, "codex-exec-truncated.jsonl");
    assert!(
        p.error
            .as_deref()
            .unwrap()
            .contains("before turn.completed"),
        "{p:?}"
    );
    assert_eq!((p.input_tokens, p.output_tokens), (0, 0));
}

#[test]
fn aider_text() {
    let p = parse(OutputFormat::Aider, "aider.txt");
    assert_eq!(p.error, None);
    assert_eq!((p.input_tokens, p.output_tokens), (5700, 310));
    assert_eq!(p.cost_usd, Some(0.02));
    let p = parse(OutputFormat::Aider, "aider-two-messages.txt");
    assert_eq!((p.input_tokens, p.output_tokens), (27_100, 2100));
    assert_eq!(p.cost_usd, Some(0.11), "the session figure is cumulative");
    let p = parse(OutputFormat::Aider, "aider-auth-error.txt");
    assert!(
        p.error
            .as_deref()
            .unwrap()
            .starts_with("litellm.AuthenticationError:"),
        "{p:?}"
    );
}

#[test]
fn aider_session_cost_is_seen_as_it_arrives() {
    let mut s = StreamParser::new(OutputFormat::Aider);
    let mut costs = Vec::new();
    for line in fixture("aider-two-messages.txt").lines() {
        s.line(line);
        costs.push(s.spent().cost_usd);
    }
    assert_eq!(costs[4], Some(0.05));
    assert_eq!(costs.last().copied().flatten(), Some(0.11));
}

/// Every fixture cut after any byte parses without a panic, and a structured stream cut
/// before its end is an error, never a success with zero spend passed off as complete.
#[test]
fn every_cut_of_every_fixture_parses() {
    for (format, name) in [
        (OutputFormat::ClaudeJson, "claude-stream.jsonl"),
        (OutputFormat::ClaudeJson, "claude-json-array.json"),
        (OutputFormat::CodexJsonl, "codex-exec.jsonl"),
        (OutputFormat::Aider, "aider-two-messages.txt"),
    ] {
        let text = fixture(name);
        let last_newline = text.trim_end().rfind('\n').unwrap_or(0);
        for cut in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
            let p = parse_output(format, &text[..cut]);
            if format != OutputFormat::Aider && cut <= last_newline {
                assert!(p.error.is_some(), "{name} cut at {cut} passed as complete");
            }
        }
    }
}
