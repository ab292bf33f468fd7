//! Tapes: every exchange a twin answers, kept in order across resets, so that a finished run
//! can be replayed from what its twins actually said (`lightsout replay`).
//!
//! A twin [records](crate::Twin::record_tape) a tape, or [replays](crate::Twin::replay_tape)
//! one: in replay it still runs its definition (so state, journal and the `/__twin/` control
//! API behave as in the run), but the *response* served for the n-th request is the n-th
//! recorded response, as long as the request is the one recorded at that position. The first
//! request that differs (or a request past the end of the tape) is kept as the tape's
//! [`TapeDivergence`], and from then on the twin answers live.
//!
//! Control-API requests (`/__twin/...`) are not taped: they are the evaluator's, not the
//! service's. Tapes are capped at [`TAPE_MAX_EXCHANGES`] exchanges; a longer tape is marked
//! truncated and cannot be replayed.

use crate::engine::{TwinRequest, TwinResponse};
use crate::record::{
    HOP_HEADERS, Interaction, RecordedRequest, RecordedResponse, body_value, record_request,
};
use serde::{Deserialize, Serialize};

/// Most exchanges one tape keeps; past it the tape is marked truncated.
pub const TAPE_MAX_EXCHANGES: usize = 100_000;

/// The first exchange where a replay did not follow its tape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TapeDivergence {
    /// 1-based position of the exchange on the tape.
    pub exchange: usize,
    /// The request recorded at that position (`None`: the tape had ended).
    pub recorded: Option<RecordedRequest>,
    /// The request the replay received there (`None`: the replay ended before it).
    pub replayed: Option<RecordedRequest>,
}

/// What a tape holds once taken off a twin ([`crate::Twin::take_tape`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TapeReport {
    /// Every exchange served, in order (`recorded_at` is the twin's virtual time, RFC 3339).
    pub exchanges: Vec<Interaction>,
    /// More exchanges happened than [`TAPE_MAX_EXCHANGES`]; the tape is incomplete.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// In replay: the first exchange that did not follow the tape, including recorded
    /// exchanges never requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergence: Option<TapeDivergence>,
}

/// A tape being recorded or replayed.
#[derive(Debug)]
pub(crate) struct Tape {
    expected: Option<Vec<Interaction>>,
    next: usize,
    report: TapeReport,
}

impl Tape {
    pub(crate) fn record() -> Self {
        Tape {
            expected: None,
            next: 0,
            report: TapeReport::default(),
        }
    }

    pub(crate) fn replay(expected: Vec<Interaction>) -> Self {
        Tape {
            expected: Some(expected),
            next: 0,
            report: TapeReport::default(),
        }
    }

    /// Takes the exchange `req` → `live` (what the twin answered) and returns what to serve.
    pub(crate) fn exchange(
        &mut self,
        req: &TwinRequest,
        live: TwinResponse,
        now_ms: u64,
    ) -> TwinResponse {
        let request = record_request(req);
        let mut served = live;
        if let Some(expected) = &self.expected
            && self.report.divergence.is_none()
        {
            match expected.get(self.next) {
                Some(i) if i.request == request => {
                    // A recorded connection fault (status 0) is served live: the twin's
                    // faults are deterministic for the seed.
                    if i.response.status != 0 {
                        served = to_response(&i.response);
                    }
                }
                other => {
                    self.report.divergence = Some(TapeDivergence {
                        exchange: self.next + 1,
                        recorded: other.map(|i| i.request.clone()),
                        replayed: Some(request.clone()),
                    });
                }
            }
            self.next += 1;
        }
        if self.report.exchanges.len() >= TAPE_MAX_EXCHANGES {
            self.report.truncated = true;
        } else {
            self.report.exchanges.push(Interaction {
                recorded_at: rfc3339(now_ms),
                request,
                response: from_response(&served),
            });
        }
        served
    }

    /// Ends the tape: in replay, recorded exchanges never requested are a divergence.
    pub(crate) fn finish(mut self) -> TapeReport {
        if let Some(expected) = &self.expected
            && self.report.divergence.is_none()
            && self.next < expected.len()
        {
            self.report.divergence = Some(TapeDivergence {
                exchange: self.next + 1,
                recorded: Some(expected[self.next].request.clone()),
                replayed: None,
            });
        }
        self.report
    }
}

fn to_response(r: &RecordedResponse) -> TwinResponse {
    let mut resp = TwinResponse::empty(r.status);
    resp.headers = r
        .headers
        .iter()
        .filter(|(k, _)| !HOP_HEADERS.contains(&k.to_ascii_lowercase().as_str()))
        .cloned()
        .collect();
    resp.body = r.body_bytes();
    resp
}

fn from_response(r: &TwinResponse) -> RecordedResponse {
    RecordedResponse {
        status: if r.fault.is_some() { 0 } else { r.status },
        headers: r
            .headers
            .iter()
            .filter(|(k, _)| !HOP_HEADERS.contains(&k.to_ascii_lowercase().as_str()))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
        body: body_value(&r.body),
    }
}

fn rfc3339(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp((ms / 1000).cast_signed())
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use crate::{TwinOptions, TwinRequest, builtin};

    fn post(text: &str) -> TwinRequest {
        let mut req = TwinRequest::new(http::Method::POST, "/api/chat.postMessage");
        req.headers
            .insert("authorization", "Bearer xoxb-twin-bot".parse().unwrap());
        req.headers
            .insert("content-type", "application/json".parse().unwrap());
        req.body = format!(r#"{{"channel":"C0GENERAL1","text":"{text}"}}"#).into();
        req
    }

    #[test]
    fn a_tape_survives_resets_and_replays_what_was_recorded() {
        let slack = builtin::load("slack", TwinOptions::default()).unwrap();
        slack.record_tape();
        let first = slack.handle(&post("a"));
        slack.handle(&TwinRequest::new(http::Method::POST, "/__twin/reset"));
        slack.handle(&post("b"));
        let mut tape = slack.take_tape().unwrap();
        assert_eq!(tape.exchanges.len(), 2, "control calls are not taped");
        assert_eq!(tape.exchanges[0].response.status, first.status);

        // Replay serves the recorded answer, even one edited after the run.
        tape.exchanges[0].response.body = serde_json::json!({"ok": false, "error": "edited"});
        let again = builtin::load("slack", TwinOptions::default()).unwrap();
        again.replay_tape(tape.exchanges.clone());
        assert_eq!(again.handle(&post("a")).body_json()["error"], "edited");
        again.handle(&post("b"));
        assert_eq!(again.take_tape().unwrap().divergence, None);

        // A different request, and a tape not used to its end, are divergences.
        let third = builtin::load("slack", TwinOptions::default()).unwrap();
        third.replay_tape(tape.exchanges.clone());
        third.handle(&post("a"));
        third.handle(&post("changed"));
        let d = third.take_tape().unwrap().divergence.unwrap();
        assert_eq!(d.exchange, 2);
        assert_eq!(d.recorded.unwrap().body["text"], "b");
        assert_eq!(d.replayed.unwrap().body["text"], "changed");

        let fourth = builtin::load("slack", TwinOptions::default()).unwrap();
        fourth.replay_tape(tape.exchanges);
        fourth.handle(&post("a"));
        let d = fourth.take_tape().unwrap().divergence.unwrap();
        assert_eq!((d.exchange, d.replayed), (2, None));
    }
}
