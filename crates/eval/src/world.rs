//! The per-trial state that steps read and write.

use crate::target::TargetHandle;
use serde_json::Value;
use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// One HTTP request and its response, as the last `I send` step left it.
#[derive(Debug, Clone)]
pub struct HttpExchange {
    /// Request method (`GET`).
    pub method: String,
    /// Request URL as sent.
    pub url: String,
    /// Response status code.
    pub status: u16,
    /// Response headers, names lower case; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// Response body bytes.
    pub body: Vec<u8>,
    /// Time from sending the request to reading the whole body.
    pub elapsed: Duration,
}

impl HttpExchange {
    /// The body as UTF-8, lossily decoded.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON, when it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The outcome of an `I run` step.
#[derive(Debug, Clone)]
pub struct ProcessOutcome {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// Captured standard output (lossy UTF-8).
    pub stdout: String,
    /// Captured standard error (lossy UTF-8).
    pub stderr: String,
}

/// The outcome of a load step: latencies in an HDR histogram (microseconds).
#[derive(Debug, Clone)]
pub struct LoadOutcome {
    /// Latency of every completed request, in µs (3 significant figures).
    pub histogram: hdrhistogram::Histogram<u64>,
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed: transport errors or a status outside 200..=399 (k6's default
    /// `http_req_failed` rule, <https://grafana.com/docs/k6/latest/using-k6/metrics/reference/>).
    pub errors: u64,
    /// Wall time of the load phase.
    pub elapsed: Duration,
}

/// One adversarial variant and how the target answered it.
#[derive(Debug, Clone)]
pub struct VariantOutcome {
    /// Which family the variant belongs to (`truncated_json`, `wrong_type` ...).
    pub family: &'static str,
    /// The status, or `None` when no response arrived (connection reset, timeout).
    pub status: Option<u16>,
}

/// Per-trial state: captured variables, the last HTTP exchange, process and load outcomes,
/// the twins' URLs and a type map for custom steps.
///
/// A fresh `World` is built for every trial, so trials never share variables.
pub struct World {
    /// Captured variables (`as {name}`), substituted into later step arguments as `{name}`.
    pub vars: HashMap<String, String>,
    /// Base URL of the target (`http://127.0.0.1:PORT`, no trailing slash).
    pub base_url: String,
    /// Twin base URLs by name (from `--twin NAME=URL`), no trailing slash.
    pub twins: BTreeMap<String, String>,
    /// The HTTP client (shared connection pool across trials).
    pub client: reqwest::Client,
    /// The last HTTP exchange.
    pub last: Option<HttpExchange>,
    /// The last process run.
    pub process: Option<ProcessOutcome>,
    /// The last load phase.
    pub load: Option<LoadOutcome>,
    /// The last adversarial batch.
    pub adversarial: Option<Vec<VariantOutcome>>,
    /// Liveness of the target.
    pub target: TargetHandle,
    /// Timeout for a single HTTP request or process run.
    pub step_timeout: Duration,
    ext: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("vars", &self.vars)
            .field("base_url", &self.base_url)
            .field("twins", &self.twins)
            .finish_non_exhaustive()
    }
}

impl World {
    /// A fresh world for one trial.
    pub fn new(
        base_url: impl Into<String>,
        twins: BTreeMap<String, String>,
        client: reqwest::Client,
        target: TargetHandle,
    ) -> Self {
        World {
            vars: HashMap::new(),
            base_url: base_url.into(),
            twins,
            client,
            last: None,
            process: None,
            load: None,
            adversarial: None,
            target,
            step_timeout: Duration::from_secs(30),
            ext: HashMap::new(),
        }
    }

    /// Custom-step state of type `T`, created with `Default` on first use.
    pub fn ext_mut<T: Any + Send + Sync + Default>(&mut self) -> &mut T {
        self.ext
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()))
            .downcast_mut::<T>()
            .unwrap_or_else(|| unreachable!("the map is keyed by the type id"))
    }

    /// Replaces `{name}` with the value of captured variable `name`; `{base_url}` and the
    /// twins' `{twin.NAME}` are always defined. Unknown names and braces that are not a bare
    /// identifier (JSON objects) are left as written.
    pub fn substitute(&self, text: &str) -> String {
        if !text.contains('{') {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let end = after.find('}');
            let name = end.map(|e| &after[..e]);
            let value = name.filter(|n| is_var_name(n)).and_then(|n| self.lookup(n));
            if let (Some(v), Some(e)) = (value, end) {
                out.push_str(&v);
                rest = &after[e + 1..];
            } else {
                out.push('{');
                rest = after;
            }
        }
        out.push_str(rest);
        out
    }

    fn lookup(&self, name: &str) -> Option<String> {
        if let Some(v) = self.vars.get(name) {
            return Some(v.clone());
        }
        if name == "base_url" {
            return Some(self.base_url.clone());
        }
        name.strip_prefix("twin.")
            .and_then(|t| self.twins.get(t))
            .cloned()
    }

    /// The URL for `path`: absolute URLs pass through, paths are joined to the base URL.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else if path.starts_with('/') {
            format!("{}{path}", self.base_url)
        } else {
            format!("{}/{path}", self.base_url)
        }
    }
}

/// True for `[A-Za-z_][A-Za-z0-9_.-]*`, the variable names `as {name}` accepts.
pub(crate) fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        let mut twins = BTreeMap::new();
        twins.insert("okta".to_owned(), "http://127.0.0.1:9".to_owned());
        let mut w = World::new(
            "http://127.0.0.1:1",
            twins,
            reqwest::Client::new(),
            TargetHandle::external(),
        );
        w.vars.insert("token".into(), "abc".into());
        w
    }

    #[test]
    fn substitutes_known_names_and_leaves_json_alone() {
        let w = world();
        assert_eq!(w.substitute("Bearer {token}"), "Bearer abc");
        assert_eq!(w.substitute(r#"{"a":{token}}"#), r#"{"a":abc}"#);
        assert_eq!(w.substitute("{unknown} {"), "{unknown} {");
        assert_eq!(w.substitute("{twin.okta}/x"), "http://127.0.0.1:9/x");
        assert_eq!(w.substitute("{base_url}"), "http://127.0.0.1:1");
    }

    #[test]
    fn ext_keeps_state_per_type() {
        let mut w = world();
        *w.ext_mut::<u32>() += 2;
        *w.ext_mut::<u32>() += 3;
        assert_eq!(*w.ext_mut::<u32>(), 5);
    }
}
