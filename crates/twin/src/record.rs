//! Record and replay: a proxy that forwards to the real service and stores every exchange in
//! a cassette (written atomically after each exchange), and the cassette format replay reads.

use crate::Error;
use crate::engine::{TwinRequest, TwinResponse};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Mutex;

/// Hop-by-hop and length headers never stored or replayed (RFC 9110 §7.6.1).
pub const HOP_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "content-length",
    "host",
];

/// A recorded request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// Method.
    pub method: String,
    /// Path (no query).
    pub path: String,
    /// Raw query string.
    #[serde(default)]
    pub query: String,
    /// Headers (lower-case names) worth replaying: content-type, accept, authorization.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Body: JSON, a string, or `null`.
    #[serde(default)]
    pub body: Value,
}

/// A recorded response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedResponse {
    /// Status.
    pub status: u16,
    /// Headers (lower-case names), hop-by-hop removed.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Body: JSON when it parsed as JSON, else a string.
    #[serde(default)]
    pub body: Value,
}

impl RecordedResponse {
    /// The body as bytes to send back.
    pub fn body_bytes(&self) -> Bytes {
        match &self.body {
            Value::Null => Bytes::new(),
            Value::String(s) if !self.is_json() => Bytes::from(s.clone()),
            v => Bytes::from(v.to_string()),
        }
    }

    fn is_json(&self) -> bool {
        self.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v.contains("json"))
    }
}

/// One request/response pair with the time it was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// RFC 3339 wall-clock time of the recording.
    pub recorded_at: String,
    /// The request.
    pub request: RecordedRequest,
    /// The response.
    pub response: RecordedResponse,
}

/// A cassette: the upstream it came from and its exchanges in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Cassette {
    /// The upstream base URL.
    pub upstream: String,
    /// Exchanges, in the order they happened.
    pub interactions: Vec<Interaction>,
}

impl Cassette {
    /// Reads a cassette file (JSON).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Json`].
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Json(path.display().to_string(), e))
    }

    /// Writes the cassette atomically (temp file in the same directory, then rename).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Json(path.display().to_string(), e))?;
        write_atomic(path, text.as_bytes())
    }
}

/// Writes `bytes` to `path` via a temp file and a rename, so readers and crashes never see a
/// half-written file ([`lightsout_stdx::write_atomic`]).
///
/// # Errors
/// [`Error::Io`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    lightsout_stdx::write_atomic(path, bytes).map_err(|e| Error::io(path, e))
}

/// Creates `dir/twin.yaml` for a recorded twin (replaying `cassette.json`), unless present.
///
/// # Errors
/// [`Error::Io`].
pub fn write_replay_definition(dir: &Path, name: &str, upstream: &str) -> Result<(), Error> {
    let path = dir.join("twin.yaml");
    if path.exists() {
        return Ok(());
    }
    let date = time::OffsetDateTime::now_utc().date().to_string();
    let def = crate::TwinDef {
        name: name.to_string(),
        description: format!("recorded from {upstream}"),
        provenance: crate::def::Provenance {
            source: format!("recorded exchanges with {upstream} (cassette.json)"),
            date: Some(date),
        },
        replay: Some("cassette.json".into()),
        ..crate::TwinDef::default()
    };
    write_atomic(&path, crate::def::to_yaml(&def)?.as_bytes())
}

/// Turns a request into its recorded form (keeps only headers that change answers).
pub fn record_request(req: &TwinRequest) -> RecordedRequest {
    let keep = ["content-type", "accept", "authorization"];
    RecordedRequest {
        method: req.method.to_string(),
        path: req.path.clone(),
        query: req.query.clone(),
        headers: req
            .headers
            .iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: req.body_json(),
    }
}

/// Sends a recorded request to `base` and returns the recorded form of the answer.
///
/// # Errors
/// [`Error::Upstream`] when the service cannot be reached.
pub async fn send(
    client: &reqwest::Client,
    base: &str,
    req: &RecordedRequest,
) -> Result<RecordedResponse, Error> {
    let url = if req.query.is_empty() {
        format!("{}{}", base.trim_end_matches('/'), req.path)
    } else {
        format!("{}{}?{}", base.trim_end_matches('/'), req.path, req.query)
    };
    let method = reqwest::Method::from_bytes(req.method.as_bytes())
        .map_err(|e| Error::Upstream(e.to_string()))?;
    let mut rb = client.request(method, &url);
    for (k, v) in &req.headers {
        rb = rb.header(k, v);
    }
    match &req.body {
        Value::Null => {}
        Value::String(s) => rb = rb.body(s.clone()),
        v => rb = rb.body(v.to_string()),
    }
    let resp = rb
        .send()
        .await
        .map_err(|e| Error::Upstream(format!("{url}: {e}")))?;
    let status = resp.status().as_u16();
    let headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .filter(|(k, _)| !HOP_HEADERS.contains(&k.as_str()))
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| Error::Upstream(format!("{url}: {e}")))?;
    Ok(RecordedResponse {
        status,
        headers,
        body: body_value(&bytes),
    })
}

/// JSON when the bytes parse as JSON, else a (lossy) string, `null` when empty.
pub fn body_value(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// A recording proxy: forwards every request to `upstream` and appends the exchange to the
/// cassette at `path`, rewriting the file atomically after each exchange (kill -9 safe).
#[derive(Clone, Debug)]
pub struct Recorder {
    upstream: String,
    path: PathBuf,
    client: reqwest::Client,
    cassette: Arc<Mutex<Cassette>>,
}

impl Recorder {
    /// A recorder writing to `path` (appending to an existing cassette there).
    ///
    /// # Errors
    /// [`Error::Io`]/[`Error::Json`] when an existing cassette cannot be read.
    pub fn new(upstream: &str, path: &Path) -> Result<Self, Error> {
        let mut cassette = if path.exists() {
            Cassette::load(path)?
        } else {
            Cassette::default()
        };
        cassette.upstream = upstream.trim_end_matches('/').to_string();
        Ok(Recorder {
            upstream: cassette.upstream.clone(),
            path: path.to_path_buf(),
            client: reqwest::Client::new(),
            cassette: Arc::new(Mutex::new(cassette)),
        })
    }

    /// Forwards one request and records it. Upstream failures answer `502`.
    pub async fn handle(&self, req: &TwinRequest) -> TwinResponse {
        let rec = record_request(req);
        let resp = match send(&self.client, &self.upstream, &rec).await {
            Ok(r) => r,
            Err(e) => {
                return TwinResponse::json(
                    502,
                    &serde_json::json!({"error": "upstream unreachable", "message": e.to_string()}),
                );
            }
        };
        let mut out = TwinResponse::empty(resp.status);
        out.headers.clone_from(&resp.headers);
        out.body = resp.body_bytes();
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut c = self.cassette.lock().await;
        c.interactions.push(Interaction {
            recorded_at: now,
            request: rec,
            response: resp,
        });
        if let Err(e) = c.save(&self.path) {
            tracing::error!("cannot save cassette: {e}");
            return TwinResponse::json(
                500,
                &serde_json::json!({"error": "cassette not saved", "message": e.to_string()}),
            );
        }
        out
    }

    /// Number of exchanges recorded so far.
    pub async fn recorded(&self) -> usize {
        self.cassette.lock().await.interactions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/cassette.json");
        let c = Cassette {
            upstream: "http://x".into(),
            interactions: vec![Interaction {
                recorded_at: "2026-01-01T00:00:00Z".into(),
                request: RecordedRequest {
                    method: "GET".into(),
                    path: "/a".into(),
                    query: String::new(),
                    headers: vec![],
                    body: Value::Null,
                },
                response: RecordedResponse {
                    status: 200,
                    headers: vec![("content-type".into(), "text/plain".into())],
                    body: Value::String("hi".into()),
                },
            }],
        };
        c.save(&p).unwrap();
        assert_eq!(Cassette::load(&p).unwrap(), c);
        assert_eq!(c.interactions[0].response.body_bytes(), Bytes::from("hi"));
        assert_eq!(
            std::fs::read_dir(p.parent().unwrap()).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}
