//! How far the evidence gathered against a twin can be trusted: each twin's drift lifecycle
//! (fresh → suspect → drifted → retired), read from the twin itself at `GET /__twin/lifecycle`,
//! and which scenarios rest on which twin.
//!
//! A scenario **rests on** a twin when one of its steps names it (``twin `slack` ...``, or
//! `{twin.slack}` in an argument) or when the twin received a request during one of its trials
//! (the service under test called it). The second is measured only for twins that are not
//! fresh (`GET /__twin/journal/stats` after each trial), so a run whose twins are all fresh
//! costs nothing more.
//!
//! What each state does to a verdict (see [`crate::gate`]):
//! - `fresh`: nothing;
//! - `suspect`: the scenarios resting on it are *weakened*: the gate names them in a reason
//!   that still holds, unless a rule `fail_on_twin = "suspect"` makes them fail;
//! - `drifted`: the scenarios resting on it fail the gate. A drift is a confirmed
//!   disagreement with the real service, so a pass against it proves nothing about the real
//!   one; no rule can loosen this;
//! - `retired`: the scenarios that name it are not run (one failed trial with the reason,
//!   category [`FailureCategory::TwinRetired`](crate::FailureCategory::TwinRetired)), a trial
//!   that called it fails the same way, and the gate fails them;
//! - `unknown`: the twin does not answer `GET /__twin/lifecycle` (not a Lightsout twin, or an
//!   older one): listed in the result, weakens nothing.

use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where a twin stands against the real service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TwinState {
    /// Its last check matched the real service, or it was never checked.
    Fresh,
    /// One check disagreed, or a human marked it so: evidence against it is weakened.
    Suspect,
    /// Disagreement confirmed: evidence against it fails the gate.
    Drifted,
    /// Retired: the scenarios that need it are stopped.
    Retired,
    /// It did not say (no `GET /__twin/lifecycle`).
    Unknown,
}

impl TwinState {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TwinState::Fresh => "fresh",
            TwinState::Suspect => "suspect",
            TwinState::Drifted => "drifted",
            TwinState::Retired => "retired",
            TwinState::Unknown => "unknown",
        }
    }

    /// Parses `fresh`, `suspect`, `drifted`, `retired` (any case).
    pub fn parse(s: &str) -> Option<TwinState> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fresh" => Some(TwinState::Fresh),
            "suspect" => Some(TwinState::Suspect),
            "drifted" => Some(TwinState::Drifted),
            "retired" => Some(TwinState::Retired),
            _ => None,
        }
    }

    /// True for suspect, drifted and retired: evidence against the twin is not what a fresh
    /// twin gives.
    pub fn is_stale(self) -> bool {
        matches!(
            self,
            TwinState::Suspect | TwinState::Drifted | TwinState::Retired
        )
    }
}

/// One twin as a run saw it: its name (as the run calls it) and lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwinEvidence {
    /// The twin's name in the run (`--twin NAME=URL`).
    pub name: String,
    /// Its state.
    pub state: TwinState,
    /// RFC 3339 time it entered the state, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Why it is in the state (a drift check's result or a human's reason), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl TwinEvidence {
    /// `twin slack drifted since 2026-12-07: REASON` (the date part of `since` only).
    pub fn describe(&self) -> String {
        let mut s = format!("twin {} {}", self.name, self.state.as_str());
        if let Some(t) = &self.since {
            let date = t.split('T').next().unwrap_or(t);
            if self.state == TwinState::Retired {
                s.push_str(" on ");
            } else {
                s.push_str(" since ");
            }
            s.push_str(date);
        }
        if let Some(r) = &self.reason {
            s.push_str(": ");
            s.push_str(r);
        }
        s
    }
}

/// The body of `GET /__twin/lifecycle` (`lightsout_twin::drift::Lifecycle`).
#[derive(Deserialize)]
struct LifecycleBody {
    status: String,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// Asks each twin for its lifecycle (`GET URL/__twin/lifecycle`), by name. A twin that does
/// not answer 200 with a known status is [`TwinState::Unknown`].
pub async fn lifecycles(
    client: &reqwest::Client,
    twins: &BTreeMap<String, String>,
    timeout: Duration,
) -> BTreeMap<String, TwinEvidence> {
    let mut out = BTreeMap::new();
    for (name, url) in twins {
        let body = async {
            let r = client
                .get(format!("{url}/__twin/lifecycle"))
                .timeout(timeout)
                .send()
                .await
                .ok()?;
            if !r.status().is_success() {
                return None;
            }
            r.json::<LifecycleBody>().await.ok()
        }
        .await;
        let ev = match body.and_then(|b| TwinState::parse(&b.status).map(|s| (s, b))) {
            Some((state, b)) => TwinEvidence {
                name: name.clone(),
                state,
                since: b.since,
                reason: b.reason,
            },
            None => TwinEvidence {
                name: name.clone(),
                state: TwinState::Unknown,
                since: None,
                reason: None,
            },
        };
        out.insert(name.clone(), ev);
    }
    out
}

/// The twins among `names` that a step of `sc` names: ``twin `NAME` ``, ``to twin `NAME` ``
/// or `{twin.NAME}`.
pub fn named_in<'a>(sc: &Scenario, names: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| {
            let quoted = format!("twin `{n}`");
            let var = format!("{{twin.{n}}}");
            sc.steps
                .iter()
                .any(|s| s.text.contains(&quoted) || s.text.contains(&var))
        })
        .cloned()
        .collect()
}

/// How many requests twin `url` received since its last reset (`GET URL/__twin/journal/stats`:
/// entries kept plus dropped); `None` when it does not say.
pub async fn requests_since_reset(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Option<u64> {
    let r = client
        .get(format!("{url}/__twin/journal/stats"))
        .timeout(timeout)
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    let v: serde_json::Value = r.json().await.ok()?;
    Some(v.get("entries")?.as_u64()? + v.get("dropped").and_then(serde_json::Value::as_u64)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_the_state_date_and_reason() {
        let e = TwinEvidence {
            name: "slack".into(),
            state: TwinState::Retired,
            since: Some("2026-12-07T01:02:03Z".into()),
            reason: Some("marked by hand: API v2".into()),
        };
        assert_eq!(
            e.describe(),
            "twin slack retired on 2026-12-07: marked by hand: API v2"
        );
        let d = TwinEvidence {
            state: TwinState::Drifted,
            ..e
        };
        assert!(
            d.describe()
                .starts_with("twin slack drifted since 2026-12-07")
        );
    }

    #[test]
    fn states_parse_and_order_from_fresh_to_retired() {
        for s in ["fresh", "suspect", "drifted", "retired"] {
            assert_eq!(TwinState::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(TwinState::parse("unknown"), None);
        assert!(TwinState::Fresh < TwinState::Suspect);
        assert!(TwinState::Suspect < TwinState::Drifted);
        assert!(TwinState::Drifted < TwinState::Retired);
        assert!(!TwinState::Fresh.is_stale() && !TwinState::Unknown.is_stale());
    }
}
