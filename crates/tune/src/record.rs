//! One line of `.lightsout/metrics.jsonl`: the factory's per-attempt metrics, read in every
//! version it has written.
//!
//! The factory appends one JSON object per attempt, a [`lightsout_core::AttemptMetrics`],
//! re-exported here. The fields this crate added (`task_kind`, `agent_profile`, `model`,
//! `variant`, `final_outcome`, `failure_category`) are optional: a line written before them
//! reads with `None`, and [`AttemptMetrics::variant_key`] and [`AttemptMetrics::kind_key`] say
//! what such a line counts as. Unknown fields are ignored, so a newer factory's lines still
//! read.

use serde::Serialize;
use std::path::Path;

/// One attempt, one line of `metrics.jsonl`: the core type the factory writes.
pub use lightsout_core::{AttemptMetrics, FinalOutcome, UNRECORDED_KIND};

/// Tokens, cost and wall time of one attempt: the type the factory writes (`input_tokens`,
/// `output_tokens`, `cost_usd`, `wall_ms`).
pub use lightsout_core::Usage;

/// The USD cost of `u`, when the agent reported one (Codex reports none).
pub fn usd(u: &Usage) -> Option<f64> {
    u.cost_usd.filter(|c| c.is_finite() && *c >= 0.0)
}

/// Input plus output tokens of `u`.
pub fn tokens(u: &Usage) -> u64 {
    u.input_tokens.saturating_add(u.output_tokens)
}

/// A line of `metrics.jsonl` that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineDiagnostic {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

/// Reads `metrics.jsonl` text: the records, and a diagnostic for each line that is not a
/// record (a torn last line after a crash, a hand edit). Blank lines are skipped.
pub fn parse_jsonl(text: &str) -> (Vec<AttemptMetrics>, Vec<LineDiagnostic>) {
    let mut records = Vec::new();
    let mut diags = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<AttemptMetrics>(line) {
            Ok(r) if r.attempt == 0 => diags.push(LineDiagnostic {
                line: i + 1,
                message: "attempt 0: attempts are 1-based".into(),
            }),
            Ok(r) => records.push(r),
            Err(e) => diags.push(LineDiagnostic {
                line: i + 1,
                message: e.to_string(),
            }),
        }
    }
    (records, diags)
}

/// Reads `path` (`.lightsout/metrics.jsonl`); a missing file is no records.
///
/// # Errors
/// [`crate::Error::Io`] when the file exists but cannot be read.
pub fn read_jsonl(path: &Path) -> Result<(Vec<AttemptMetrics>, Vec<LineDiagnostic>), crate::Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_jsonl(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Vec::new(), Vec::new())),
        Err(source) => Err(crate::Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line exactly as the factory wrote it before this crate existed.
    const OLD_LINE: &str = r#"{"run_id":"r1","task_id":"T1","requirements":["REQ-1"],"attempt":1,"agent":"replay","replay":true,"usage":{"input_tokens":100,"output_tokens":20,"cost_usd":0.03,"wall_ms":900},"passed":false,"failed_stage":"holdout","human_intervened":false}"#;

    #[test]
    fn old_lines_read_with_fallback_keys() {
        let (recs, diags) = parse_jsonl(OLD_LINE);
        assert!(diags.is_empty(), "{diags:?}");
        let r = &recs[0];
        assert_eq!(r.variant_key(), "replay");
        assert_eq!(r.kind_key(), UNRECORDED_KIND);
        assert_eq!(r.category_key(), Some("holdout"));
        assert!((usd(&r.usage).unwrap() - 0.03).abs() < 1e-12);
        assert_eq!(tokens(&r.usage), 120);
    }

    #[test]
    fn new_fields_round_trip_and_take_precedence() {
        let mut r = parse_jsonl(OLD_LINE).0.remove(0);
        r.task_kind = Some("docs".into());
        r.agent_profile = Some("cheap".into());
        r.variant = Some("b".into());
        r.failure_category = Some("holdout: timeout".into());
        r.final_outcome = Some(FinalOutcome::Failed);
        let line = serde_json::to_string(&r).unwrap();
        let back = parse_jsonl(&line).0.remove(0);
        assert_eq!(back, r);
        assert_eq!(back.variant_key(), "b");
        assert_eq!(back.kind_key(), "docs");
        assert_eq!(back.category_key(), Some("holdout: timeout"));
    }

    #[test]
    fn torn_and_bad_lines_are_diagnosed_not_fatal() {
        let text = format!(
            "{OLD_LINE}\n\n{{\"run_id\":\"r\n{}\n",
            OLD_LINE.replace("\"attempt\":1", "\"attempt\":0")
        );
        let (recs, diags) = parse_jsonl(&text);
        assert_eq!(recs.len(), 1);
        assert_eq!(diags.iter().map(|d| d.line).collect::<Vec<_>>(), vec![3, 4]);
    }
}
