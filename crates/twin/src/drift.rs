//! Drift detection: replay a probe sequence against the real service (or its cassette) and
//! the twin, diff the whole sequences semantically, score fidelity per endpoint, and move the
//! twin through fresh → suspect → drifted → retired in its manifest.
//!
//! # The lifecycle, and where it is kept
//! Every twin, a twin directory or a built-in one, has one [`Manifest`]: `DIR/manifest.json`
//! for a twin directory, `STATE_DIR/NAME/manifest.json` for a built-in twin
//! ([`manifest_path`]; the state directory is `.lightsout/twins` of the project unless told
//! otherwise). A missing manifest is a twin never checked: `fresh`, with no `since`.
//!
//! A twin moves by two roads only, both recorded in the manifest:
//! - a drift check ([`check`] then [`Manifest::record`]) against the real service or a cassette
//!   recorded from it: fresh → suspect on the first disagreement (→ drifted at once when fewer
//!   than half the exchanges match); suspect → drifted on a second disagreement, → fresh on a
//!   clean check; drifted → retired after [`RETIRE_AFTER`] drifted checks in a row. Drifted and
//!   retired never become fresh by a check;
//! - a mark by a human or a policy ([`Manifest::mark`], `lightsout twin mark NAME STATE
//!   --reason ...`), to any state, with a reason that is required. Marking `fresh` is how a
//!   re-recorded twin comes back.
//!
//! [`Lifecycle`] is the view the rest of the factory reads: state, since when, why. A served
//! twin answers it at `GET /__twin/lifecycle`, which is how the eval engine learns whether the
//! evidence a scenario gathered against the twin is weakened (suspect, drifted) or void
//! (retired).

use crate::Error;
use crate::engine::{Twin, TwinRequest};
use crate::record::{Cassette, RecordedRequest, RecordedResponse, body_value, send, write_atomic};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

/// Where a twin stands against the real service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TwinStatus {
    /// The last check matched the real service on every exchange.
    #[default]
    Fresh,
    /// One check disagreed; might be noise or a change.
    Suspect,
    /// Disagreement confirmed (two checks in a row, or most exchanges differ).
    Drifted,
    /// Drifted for [`RETIRE_AFTER`] checks in a row; refuses to serve unless forced.
    Retired,
}

impl TwinStatus {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TwinStatus::Fresh => "fresh",
            TwinStatus::Suspect => "suspect",
            TwinStatus::Drifted => "drifted",
            TwinStatus::Retired => "retired",
        }
    }

    /// The next status after a check with fidelity `score` in `[0, 1]`, given how many
    /// drifted checks came in a row before it.
    ///
    /// fresh → suspect on the first disagreement (→ drifted at once when `score < 0.5`);
    /// suspect → drifted on a second; suspect → fresh on a clean check; drifted → retired after
    /// [`RETIRE_AFTER`] drifted checks in a row; drifted and retired never become fresh by
    /// themselves (re-record the twin and reset its manifest).
    #[must_use]
    pub fn next(self, score: f64, drifted_run: u32) -> TwinStatus {
        let clean = score >= 1.0 - 1e-9;
        match (self, clean) {
            (TwinStatus::Fresh | TwinStatus::Suspect, true) => TwinStatus::Fresh,
            (TwinStatus::Fresh, false) if score >= 0.5 => TwinStatus::Suspect,
            (TwinStatus::Fresh | TwinStatus::Suspect, false) => TwinStatus::Drifted,
            (TwinStatus::Drifted, false) if drifted_run + 1 >= RETIRE_AFTER => TwinStatus::Retired,
            (s, _) => s,
        }
    }
}

/// Drifted checks in a row after which a twin is retired.
pub const RETIRE_AFTER: u32 = 3;

/// Fidelity of one endpoint (`METHOD /path` with numeric segments as `{n}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointScore {
    /// Exchanges checked.
    pub total: usize,
    /// Exchanges that matched after normalisation.
    pub matched: usize,
    /// `matched / total`, in `[0, 1]`.
    pub fidelity: f64,
}

/// One semantic difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// 0-based index of the exchange in the sequence.
    pub index: usize,
    /// Endpoint key.
    pub endpoint: String,
    /// JSON pointer into `{status, content_type, body}` where they differ.
    pub pointer: String,
    /// The real service's value (normalised); `null` when absent.
    pub real: Value,
    /// The twin's value (normalised); `null` when absent.
    pub twin: Value,
}

/// The outcome of one drift check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// Twin name.
    pub twin: String,
    /// What it was checked against (URL or cassette path).
    pub against: String,
    /// Exchanges in the sequence.
    pub exchanges: usize,
    /// Overall fidelity: matched exchanges / exchanges (1.0 for an empty sequence).
    pub score: f64,
    /// Per-endpoint fidelity.
    pub endpoints: BTreeMap<String, EndpointScore>,
    /// Every difference, in sequence order.
    pub differences: Vec<Difference>,
    /// Status before the check.
    pub status_before: TwinStatus,
    /// Status after the check.
    pub status_after: TwinStatus,
}

/// The reference side of a check.
#[derive(Debug, Clone)]
pub enum Reference {
    /// Replay the probes against this live base URL.
    Live(String),
    /// Use the responses recorded in this cassette (its requests are the probes).
    Recorded(Cassette),
}

/// Turns volatile values into placeholders before comparing: UUIDs, RFC 3339 timestamps,
/// values of id-like and time-like keys, plus caller-listed JSON pointers (ignored).
#[derive(Debug, Clone, Default)]
pub struct Normaliser {
    /// JSON pointers (into the body) to drop before comparing, e.g. `/origin`.
    pub ignore: Vec<String>,
}

static UUID: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b").ok()
});
static TIMESTAMP: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?\b").ok()
});

fn is_id_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    k == "id" || k.ends_with("_id") || k == "node_id" || k == "etag" || k == "x-amzn-trace-id"
}

fn is_time_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    k == "ts" || k.ends_with("_at") || k == "date" || k == "iat" || k == "exp" || k == "latest"
}

impl Normaliser {
    /// Normalises a body value.
    pub fn body(&self, v: &Value) -> Value {
        let mut v = norm(v, None);
        for p in &self.ignore {
            remove_pointer(&mut v, p);
        }
        v
    }
}

fn norm(v: &Value, key: Option<&str>) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), norm(x, Some(k))))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| norm(x, None)).collect()),
        Value::Null | Value::Bool(_) => v.clone(),
        _ if key.is_some_and(is_id_key) => Value::String("<id>".into()),
        _ if key.is_some_and(is_time_key) => Value::String("<timestamp>".into()),
        Value::String(s) => {
            let mut s = s.clone();
            if let Some(re) = UUID.as_ref() {
                s = re.replace_all(&s, "<uuid>").into_owned();
            }
            if let Some(re) = TIMESTAMP.as_ref() {
                s = re.replace_all(&s, "<timestamp>").into_owned();
            }
            Value::String(s)
        }
        Value::Number(_) => v.clone(),
    }
}

fn remove_pointer(v: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let target = if parent.is_empty() {
        Some(v)
    } else {
        v.pointer_mut(parent)
    };
    match target {
        Some(Value::Object(o)) => {
            o.remove(last);
        }
        Some(Value::Array(a)) => {
            if let Ok(i) = last.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        _ => {}
    }
}

/// Semantic JSON diff: pointers where `real` and `twin` differ (object keys compared as sets).
pub fn diff(real: &Value, twin: &Value, at: &str, out: &mut Vec<(String, Value, Value)>) {
    match (real, twin) {
        (Value::Object(left), Value::Object(right)) => {
            let keys: std::collections::BTreeSet<&String> =
                left.keys().chain(right.keys()).collect();
            for key in keys {
                let pointer = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (left.get(key), right.get(key)) {
                    (Some(l), Some(r)) => diff(l, r, &pointer, out),
                    (l, r) => out.push((
                        pointer,
                        l.cloned().unwrap_or(Value::Null),
                        r.cloned().unwrap_or(Value::Null),
                    )),
                }
            }
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => {
            for (idx, (l, r)) in left.iter().zip(right).enumerate() {
                diff(l, r, &format!("{at}/{idx}"), out);
            }
        }
        _ if real == twin => {}
        _ => out.push((
            if at.is_empty() {
                "/".into()
            } else {
                at.to_string()
            },
            real.clone(),
            twin.clone(),
        )),
    }
}

/// `METHOD /path` with all-digit segments replaced by `{n}`.
pub fn endpoint_key(method: &str, path: &str) -> String {
    let p: Vec<&str> = path
        .split('/')
        .map(|s| {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                "{n}"
            } else {
                s
            }
        })
        .collect();
    format!("{} {}", method.to_ascii_uppercase(), p.join("/"))
}

fn comparable(r: &RecordedResponse, n: &Normaliser) -> Value {
    let ct = r
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    serde_json::json!({"status": r.status, "content_type": ct, "body": n.body(&r.body)})
}

/// Runs one check: resets the twin, replays `probes` in order against the reference and the
/// twin, and scores the result. The status fields are left for [`Manifest::record`] to fill.
///
/// # Errors
/// [`Error::Upstream`] when the live service cannot be reached.
pub async fn check(
    twin: &Twin,
    probes: &[RecordedRequest],
    reference: &Reference,
    normaliser: &Normaliser,
) -> Result<DriftReport, Error> {
    twin.reset();
    let client = reqwest::Client::new();
    let mut endpoints: BTreeMap<String, EndpointScore> = BTreeMap::new();
    let mut differences = Vec::new();
    let mut matched_total: usize = 0;
    let recorded: Vec<RecordedResponse> = match reference {
        Reference::Recorded(c) => c.interactions.iter().map(|i| i.response.clone()).collect(),
        Reference::Live(_) => Vec::new(),
    };
    for (index, probe) in probes.iter().enumerate() {
        let real = match reference {
            Reference::Live(url) => send(&client, url, probe).await?,
            Reference::Recorded(_) => match recorded.get(index) {
                Some(r) => r.clone(),
                None => break,
            },
        };
        let twin_resp = {
            let mut req = TwinRequest::new(
                http::Method::from_bytes(probe.method.as_bytes()).unwrap_or(http::Method::GET),
                &probe.path,
            );
            req.query.clone_from(&probe.query);
            for (k, v) in &probe.headers {
                if let (Ok(k), Ok(v)) = (
                    http::HeaderName::from_bytes(k.as_bytes()),
                    http::HeaderValue::from_str(v),
                ) {
                    req.headers.insert(k, v);
                }
            }
            req.body = match &probe.body {
                Value::Null => bytes::Bytes::new(),
                Value::String(s) => bytes::Bytes::from(s.clone()),
                v => bytes::Bytes::from(v.to_string()),
            };
            let r = twin.handle(&req);
            RecordedResponse {
                status: r.status,
                headers: r.headers.clone(),
                body: body_value(&r.body),
            }
        };
        let mut d = Vec::new();
        diff(
            &comparable(&real, normaliser),
            &comparable(&twin_resp, normaliser),
            "",
            &mut d,
        );
        let key = endpoint_key(&probe.method, &probe.path);
        let e = endpoints.entry(key.clone()).or_insert(EndpointScore {
            total: 0,
            matched: 0,
            fidelity: 0.0,
        });
        e.total += 1;
        if d.is_empty() {
            e.matched += 1;
            matched_total += 1;
        }
        differences.extend(d.into_iter().map(|(pointer, real, twin)| Difference {
            index,
            endpoint: key.clone(),
            pointer,
            real,
            twin,
        }));
    }
    for e in endpoints.values_mut() {
        e.fidelity = e.matched as f64 / e.total.max(1) as f64;
    }
    let exchanges: usize = endpoints.values().map(|e| e.total).sum();
    let score = if exchanges == 0 {
        1.0
    } else {
        matched_total as f64 / exchanges as f64
    };
    twin.reset();
    Ok(DriftReport {
        twin: twin.name().to_string(),
        against: match reference {
            Reference::Live(u) => u.clone(),
            Reference::Recorded(c) => format!("cassette of {}", c.upstream),
        },
        exchanges,
        score,
        endpoints,
        differences,
        status_before: TwinStatus::Fresh,
        status_after: TwinStatus::Fresh,
    })
}

/// A twin's manifest (`manifest.json` beside its definition, or [`manifest_path`] for a
/// built-in twin): status, since when and why, check history and marks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Manifest {
    /// Twin name.
    pub name: String,
    /// Current status.
    pub status: TwinStatus,
    /// RFC 3339 wall-clock time the twin entered `status`; `None` for a twin never checked
    /// or marked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Why the twin is in `status`: the check that moved it (`drift check against URL:
    /// fidelity 0.40 over 5 exchanges`) or the reason of a mark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Drifted checks in a row (resets on any other outcome).
    #[serde(default)]
    pub drifted_run: u32,
    /// Past checks, oldest first.
    #[serde(default)]
    pub checks: Vec<CheckSummary>,
    /// Marks by a human or a policy, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<Mark>,
}

/// One mark: a human or a policy set the twin's status by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// RFC 3339 wall-clock time of the mark.
    pub at: String,
    /// Status before.
    pub from: TwinStatus,
    /// Status set.
    pub to: TwinStatus,
    /// Why (required, non-empty).
    pub reason: String,
}

/// Where a twin stands, as the factory reads it: the part of a [`Manifest`] a verdict needs.
/// Served at `GET /__twin/lifecycle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// Twin name.
    pub name: String,
    /// Current status.
    pub status: TwinStatus,
    /// RFC 3339 time it entered `status`; `None` when never checked or marked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Why it is in `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The manifest it was read from; `None` for a twin loaded without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

impl Lifecycle {
    /// A twin with no manifest: fresh, never checked.
    pub fn unchecked(name: &str) -> Self {
        Lifecycle {
            name: name.to_string(),
            status: TwinStatus::Fresh,
            since: None,
            reason: None,
            manifest: None,
        }
    }

    /// One line for people: `twin slack drifted since 2026-12-07T01:00:00Z: REASON`.
    pub fn describe(&self) -> String {
        let mut s = format!("twin {} {}", self.name, self.status.as_str());
        if let Some(t) = &self.since {
            s.push_str(" since ");
            s.push_str(t);
        }
        if let Some(r) = &self.reason {
            s.push_str(": ");
            s.push_str(r);
        }
        s
    }
}

/// The manifest of built-in twin `name` under the state directory `state_dir`
/// (`STATE_DIR/NAME/manifest.json`; `lightsout` uses the project's `.lightsout/twins`).
pub fn manifest_path(state_dir: &Path, name: &str) -> std::path::PathBuf {
    state_dir.join(name).join("manifest.json")
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One past check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// RFC 3339 wall-clock time of the check.
    pub at: String,
    /// What it was checked against.
    pub against: String,
    /// Overall fidelity.
    pub score: f64,
    /// Fidelity per endpoint.
    pub endpoints: BTreeMap<String, f64>,
    /// Status after the check.
    pub status: TwinStatus,
}

impl Manifest {
    /// Loads a manifest, or a fresh one named `name` when the file does not exist.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::Json`] for unreadable files.
    pub fn load_or_new(path: &Path, name: &str) -> Result<Self, Error> {
        if !path.exists() {
            return Ok(Manifest {
                name: name.to_string(),
                ..Manifest::default()
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Json(path.display().to_string(), e))
    }

    /// Applies a check's outcome: moves the status and fills the report's status fields.
    /// When the status changes, `since` becomes now and `reason` names the check.
    pub fn record(&mut self, report: &mut DriftReport) {
        report.status_before = self.status;
        let next = self.status.next(report.score, self.drifted_run);
        self.drifted_run = if next == TwinStatus::Drifted {
            self.drifted_run + 1
        } else {
            0
        };
        let at = now_rfc3339();
        if next != self.status || self.since.is_none() {
            self.since = Some(at.clone());
            self.reason = Some(format!(
                "drift check against {}: fidelity {:.2} over {} exchanges",
                report.against, report.score, report.exchanges
            ));
        }
        self.status = next;
        report.status_after = next;
        self.checks.push(CheckSummary {
            at,
            against: report.against.clone(),
            score: report.score,
            endpoints: report
                .endpoints
                .iter()
                .map(|(k, v)| (k.clone(), v.fidelity))
                .collect(),
            status: next,
        });
    }

    /// Sets the status by hand (a human or a policy): `since` becomes now, `reason` the
    /// given one, and the mark is kept in [`Manifest::marks`]. Marking `drifted` counts as one
    /// drifted check toward retirement; any other mark restarts that count.
    ///
    /// # Errors
    /// [`Error::Definition`] when `reason` is empty: a mark must say why.
    pub fn mark(&mut self, status: TwinStatus, reason: &str) -> Result<(), Error> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::Definition(
                "a mark needs a reason (--reason \"...\"): say why the twin is in this state"
                    .into(),
            ));
        }
        let at = now_rfc3339();
        self.marks.push(Mark {
            at: at.clone(),
            from: self.status,
            to: status,
            reason: reason.to_string(),
        });
        self.drifted_run = u32::from(status == TwinStatus::Drifted);
        self.status = status;
        self.since = Some(at);
        self.reason = Some(format!("marked by hand: {reason}"));
        Ok(())
    }

    /// The lifecycle view of this manifest, read from `path`.
    pub fn lifecycle(&self, path: Option<&Path>) -> Lifecycle {
        Lifecycle {
            name: self.name.clone(),
            status: self.status,
            since: self.since.clone(),
            reason: self.reason.clone(),
            manifest: path.map(|p| p.display().to_string()),
        }
    }

    /// Writes the manifest atomically.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Json(path.display().to_string(), e))?;
        write_atomic(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn normaliser_hides_ids_and_timestamps() {
        let n = Normaliser {
            ignore: vec!["/origin".into()],
        };
        let a = json!({"id": 1, "uuid": "6f1c2a4e-9b7d-4c3e-8a2f-0d1e2f3a4b5c", "created_at": "x", "at": "2026-01-01T00:00:00Z", "origin": "1.2.3.4", "k": "v"});
        let b = json!({"id": 9, "uuid": "00000000-0000-4000-8000-000000000000", "created_at": "y", "at": "2025-05-05T10:00:00Z", "origin": "5.6.7.8", "k": "v"});
        assert_eq!(n.body(&a), n.body(&b));
        let mut d = Vec::new();
        diff(&n.body(&a), &n.body(&json!({"k": "w"})), "", &mut d);
        assert!(d.iter().any(|(p, _, _)| p == "/k"));
    }

    #[test]
    fn status_machine() {
        use TwinStatus::*;
        assert_eq!(Fresh.next(1.0, 0), Fresh);
        assert_eq!(Fresh.next(0.9, 0), Suspect);
        assert_eq!(Fresh.next(0.2, 0), Drifted);
        assert_eq!(Suspect.next(1.0, 0), Fresh);
        assert_eq!(Suspect.next(0.9, 0), Drifted);
        assert_eq!(Drifted.next(1.0, 1), Drifted);
        assert_eq!(Drifted.next(0.9, 2), Retired);
        assert_eq!(Retired.next(1.0, 0), Retired);
    }

    proptest! {
        #[test]
        fn status_never_improves_past_suspect(scores in proptest::collection::vec(0.0f64..=1.0, 1..12)) {
            let mut m = Manifest::default();
            let mut worst = TwinStatus::Fresh;
            for s in scores {
                let mut r = DriftReport { twin: String::new(), against: String::new(), exchanges: 1, score: s, endpoints: BTreeMap::new(), differences: vec![], status_before: TwinStatus::Fresh, status_after: TwinStatus::Fresh };
                m.record(&mut r);
                if worst >= TwinStatus::Drifted { prop_assert!(m.status >= worst); }
                worst = worst.max(m.status);
            }
        }

        #[test]
        fn since_and_reason_move_exactly_when_the_status_does(scores in proptest::collection::vec(0.0f64..=1.0, 1..12)) {
            let mut m = Manifest::default();
            for s in scores {
                let before = (m.status, m.since.clone());
                let mut r = DriftReport { twin: String::new(), against: "cassette".into(), exchanges: 4, score: s, endpoints: BTreeMap::new(), differences: vec![], status_before: TwinStatus::Fresh, status_after: TwinStatus::Fresh };
                m.record(&mut r);
                prop_assert!(m.since.is_some());
                if before.0 == m.status && before.1.is_some() {
                    prop_assert_eq!(&before.1, &m.since);
                } else {
                    prop_assert!(m.reason.as_deref().is_some_and(|x| x.contains("drift check against cassette")));
                }
                // Retired only after RETIRE_AFTER drifted checks in a row.
                if m.status == TwinStatus::Retired && before.0 != TwinStatus::Retired {
                    prop_assert_eq!(before.0, TwinStatus::Drifted);
                }
            }
        }

        #[test]
        fn diff_of_a_value_with_itself_is_empty(v in proptest::collection::btree_map("[a-d]", 0i32..4, 0..5)) {
            let v = json!(v);
            let mut d = Vec::new();
            diff(&v, &v, "", &mut d);
            prop_assert!(d.is_empty());
        }
    }
}
