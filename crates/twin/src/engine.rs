//! The twin engine: request matching, auth, rate limits, actions, templates, faults, the
//! journal (capped in entries and in bytes, oldest dropped first, see [`JournalStats`]) and
//! the `/__twin/` control API. [`Twin`] is a cheap-to-clone handle and a
//! `tower::Service`.

use crate::auth::{Claims, Keys, TokenProblem};
use crate::def::{
    Action, AuthDef, JwtDef, LatencyDef, PageStyle, Paginate, RateHeaders, RatePer, ResponseDef,
    RouteDef, TwinDef,
};
use crate::matcher::{PathTemplate, constraints_hold, json_contains, parse_query};
use crate::record::Cassette;
use crate::state::{State, etag};
use crate::template::{render, render_text};
use crate::{Error, schema};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
// A panic while holding the runtime's lock cannot leave it half-written in a way that matters
// more than refusing all further requests would, so the guard is recovered (`lock`).
use lightsout_stdx::lock;
use std::sync::{Arc, Mutex, MutexGuard};

/// Default virtual start time: 2026-01-01T00:00:00Z, in ms since the Unix epoch.
pub const DEFAULT_CLOCK_START_MS: u64 = 1_767_225_600_000;

/// Journal entries kept by default (oldest dropped first), so long load runs stay bounded in
/// memory. [`TwinOptions::journal_max_entries`] overrides it.
pub const JOURNAL_CAPACITY: usize = 10_000;

/// Journal bytes kept by default: 64 MiB, counted as [`JournalEntry`] sizes (see
/// [`TwinOptions::journal_max_bytes`]). With the entry cap alone, 2,000 requests with 90 KB
/// of headers each grew a twin to 816 MB (issue 16).
pub const JOURNAL_MAX_BYTES: usize = 64 << 20;

/// Custom behaviour written in Rust, for routes whose action is `{kind: custom, name}`.
///
/// One required method. The engine has already matched the route, checked auth and rate
/// limits; the behaviour reads the request and reads/writes the state through `cx`.
pub trait Behaviour: Send + Sync {
    /// Answers the custom route `name`, or `None` for "not modelled" (the engine then
    /// answers `501` with `X-Twin-Unsupported`).
    fn handle(&self, name: &str, cx: &mut Context<'_>) -> Option<TwinResponse>;
}

// `&T`, `Box<T>` and `Arc<T>` of an implementation forward to it (the blanket impls, written once).
macro_rules! forward_behaviour {
    ($($t:ty),*) => {$(
        impl<T: Behaviour + ?Sized> Behaviour for $t {
            fn handle(&self, name: &str, cx: &mut Context<'_>) -> Option<TwinResponse> {
                (**self).handle(name, cx)
            }
        }
    )*};
}
forward_behaviour!(&T, Box<T>, Arc<T>);

/// What a [`Behaviour`] sees: the request, its path captures, the credential, and mutable
/// access to the state, the seeded RNG and the virtual clock's reading.
pub struct Context<'a> {
    /// The request.
    pub req: &'a TwinRequest,
    /// Path template captures.
    pub captures: &'a BTreeMap<String, String>,
    /// The twin's state.
    pub state: &'a mut State,
    /// The seeded RNG (all randomness must come from here).
    pub rng: &'a mut ChaCha8Rng,
    /// Virtual now, ms since the Unix epoch.
    pub now_ms: u64,
    /// The authenticated principal, when the route asked for auth.
    pub principal: Option<&'a Principal>,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// User or client id.
    pub subject: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The credential text (keys per-token rate windows).
    #[serde(skip)]
    pub token: String,
}

/// A request as the engine sees it (body fully read).
#[derive(Debug, Clone)]
pub struct TwinRequest {
    /// HTTP method.
    pub method: Method,
    /// Path without the query string (percent-encoded as sent).
    pub path: String,
    /// Raw query string without `?` (may be empty).
    pub query: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl TwinRequest {
    /// A request with no headers and no body.
    pub fn new(method: Method, path_and_query: &str) -> Self {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        TwinRequest {
            method,
            path: path.to_string(),
            query: query.to_string(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// The body as JSON: parsed JSON, a form body as an object of strings, else a string
    /// (or `null` when empty).
    pub fn body_json(&self) -> Value {
        if self.body.is_empty() {
            return Value::Null;
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&self.body) {
            return v;
        }
        let ct = self.header("content-type").unwrap_or_default();
        if ct.starts_with("application/x-www-form-urlencoded") {
            return Value::Object(
                url::form_urlencoded::parse(&self.body)
                    .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                    .collect(),
            );
        }
        Value::String(String::from_utf8_lossy(&self.body).into_owned())
    }

    /// A header value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// A parameter from the query, else from a JSON or form body (Slack accepts all three).
    pub fn param(&self, name: &str) -> Option<String> {
        if let Some(v) = parse_query(&self.query).remove(name) {
            return Some(v);
        }
        match self.body_json().get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            v => Some(v.to_string()),
        }
    }

    /// The `Authorization: Bearer` (or GitHub's `token`) credential, if any.
    pub fn bearer(&self) -> Option<String> {
        let h = self.header("authorization")?;
        let (scheme, tok) = h.split_once(' ')?;
        (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
            .then(|| tok.trim().to_string())
    }
}

/// A connection-level fault, after `WireMock`'s `Fault` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionFault {
    /// Close with a TCP RST (`SO_LINGER` 0) before answering (`CONNECTION_RESET_BY_PEER`).
    Reset,
    /// Close without sending a byte (`EMPTY_RESPONSE`).
    Empty,
    /// Send a `200` head with chunked encoding, then a malformed chunk, then close
    /// (`MALFORMED_RESPONSE_CHUNK`).
    MalformedChunk,
    /// Send random bytes, then close (`RANDOM_DATA_THEN_CLOSE`).
    RandomClose,
}

/// An answer from the engine. `fault`, when set, tells the server to break the connection
/// instead of sending this response; `delay_ms` is wall-clock latency to add first.
#[derive(Debug, Clone, PartialEq)]
pub struct TwinResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers in order (names as written).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Bytes,
    /// Connection fault to inject instead of answering.
    pub fault: Option<ConnectionFault>,
    /// Latency to add before answering, in ms of wall-clock time.
    pub delay_ms: u64,
}

impl TwinResponse {
    /// A JSON answer.
    pub fn json(status: u16, body: &Value) -> Self {
        TwinResponse {
            status,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: Bytes::from(body.to_string()),
            fault: None,
            delay_ms: 0,
        }
    }

    /// An empty answer.
    pub fn empty(status: u16) -> Self {
        TwinResponse {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            fault: None,
            delay_ms: 0,
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// First header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (`null` when not JSON).
    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One journal entry (see the control-API contract, `GET /__twin/journal`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// 1-based sequence number since the last reset.
    pub seq: u64,
    /// Virtual time of the request, ms since the Unix epoch.
    pub at_ms: u64,
    /// Method.
    pub method: String,
    /// Path (no query).
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Headers, lower-case names.
    pub headers: BTreeMap<String, String>,
    /// Body as JSON, or as a string when not JSON, or `null`.
    pub body: Value,
    /// Status answered (0 for a connection fault).
    pub status: u16,
}

/// A fault rule (`POST /__twin/faults`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// `"METHOD /path"` (path may be a template), or absent/`*` for every route.
    #[serde(default)]
    pub route: Option<String>,
    /// `rate_limit`, `status`, or a connection fault name.
    pub fault: String,
    /// Status for `status` faults.
    #[serde(default)]
    pub status: Option<u16>,
    /// How many requests it applies to; absent = until cleared.
    #[serde(default)]
    pub times: Option<u32>,
}

/// Options for building a twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwinOptions {
    /// Seed for every random choice (ids, latency, random data).
    pub seed: u64,
    /// Virtual clock start, ms since the Unix epoch.
    pub clock_start_ms: u64,
    /// Add the configured latency (off in tests that want speed).
    pub latency: bool,
    /// Most journal entries kept; the oldest are dropped first. Default [`JOURNAL_CAPACITY`].
    pub journal_max_entries: usize,
    /// Most journal bytes kept, as the sum of [`JournalStats`]-counted entry sizes (method,
    /// path, query, header names and values, raw body); the oldest entries are dropped first,
    /// and an entry larger than the whole cap is not kept. Default [`JOURNAL_MAX_BYTES`].
    pub journal_max_bytes: usize,
}

impl Default for TwinOptions {
    fn default() -> Self {
        TwinOptions {
            seed: 0,
            clock_start_ms: DEFAULT_CLOCK_START_MS,
            latency: true,
            journal_max_entries: JOURNAL_CAPACITY,
            journal_max_bytes: JOURNAL_MAX_BYTES,
        }
    }
}

/// How full the journal is (`GET /__twin/journal/stats`, and the `X-Twin-Journal-*` headers
/// of `GET /__twin/journal`).
///
/// Invariants: `entries <= max_entries` and `bytes <= max_bytes`. Sizes are a pure function
/// of the requests, so the numbers are the same for the same requests on any machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalStats {
    /// Entries kept.
    pub entries: usize,
    /// Bytes kept: for each entry, the lengths of its method, path, query, header names and
    /// values, and raw body, in bytes.
    pub bytes: usize,
    /// Entries dropped (oldest first, or too large to keep) since the journal was last
    /// cleared (`DELETE /__twin/journal` or a reset).
    pub dropped: u64,
    /// The entry cap ([`TwinOptions::journal_max_entries`]).
    pub max_entries: usize,
    /// The byte cap in bytes ([`TwinOptions::journal_max_bytes`]).
    pub max_bytes: usize,
}

/// The request journal, capped in entries and in bytes; the oldest entries go first.
struct Journal {
    /// Entries with their counted size in bytes, oldest first.
    entries: VecDeque<(JournalEntry, usize)>,
    bytes: usize,
    dropped: u64,
    max_entries: usize,
    max_bytes: usize,
}

impl Journal {
    fn new(opts: TwinOptions) -> Self {
        Journal {
            entries: VecDeque::new(),
            bytes: 0,
            dropped: 0,
            max_entries: opts.journal_max_entries,
            max_bytes: opts.journal_max_bytes,
        }
    }

    /// Counted size of a request, in bytes: method, path, query, header names and values,
    /// raw body.
    fn size_of(req: &TwinRequest) -> usize {
        let headers: usize = req
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum();
        req.method.as_str().len() + req.path.len() + req.query.len() + headers + req.body.len()
    }

    /// Appends `entry` of `size` bytes, dropping the oldest entries until both caps hold. An
    /// entry larger than the byte cap on its own (or a cap of 0 entries) is not kept.
    fn push(&mut self, entry: JournalEntry, size: usize) {
        if size > self.max_bytes || self.max_entries == 0 {
            self.dropped += 1;
            return;
        }
        while self.entries.len() >= self.max_entries || self.bytes + size > self.max_bytes {
            let Some((_, old)) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= old;
            self.dropped += 1;
        }
        self.bytes += size;
        self.entries.push_back((entry, size));
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
        self.dropped = 0;
    }

    fn iter(&self) -> impl Iterator<Item = &JournalEntry> {
        self.entries.iter().map(|(e, _)| e)
    }

    fn stats(&self) -> JournalStats {
        JournalStats {
            entries: self.entries.len(),
            bytes: self.bytes,
            dropped: self.dropped,
            max_entries: self.max_entries,
            max_bytes: self.max_bytes,
        }
    }
}

struct CompiledRoute {
    def: RouteDef,
    template: PathTemplate,
    method: Option<Method>,
    key: String,
    /// The answer of a route that cannot vary: no action, auth, rate limit, validation or
    /// `require`, and no `{{placeholder}}` in its response. Rendered once when the twin is
    /// built, so serving it skips the per-request template scope (headers, query, body, state
    /// snapshot) altogether.
    fixed: Option<TwinResponse>,
}

/// Whether a response template holds a `{{placeholder}}` anywhere it is rendered.
fn is_templated(tpl: &ResponseDef) -> bool {
    fn value(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains("{{"),
            Value::Array(a) => a.iter().any(value),
            Value::Object(o) => o.values().any(value),
            _ => false,
        }
    }
    value(&tpl.body) || tpl.headers.values().any(|v| v.contains("{{"))
}

/// The page a `list` request asks for: where it starts, how many items, the next page's
/// cursor and the `Link` header (link style).
struct Page {
    start: usize,
    limit: usize,
    next: Option<String>,
    link: Option<String>,
}

struct Runtime {
    state: State,
    journal: Journal,
    seq: u64,
    faults: Vec<FaultRule>,
    rng: ChaCha8Rng,
    now_ms: u64,
    windows: HashMap<(String, String), (u64, u64)>,
    idempotency: HashMap<String, TwinResponse>,
    replay_counts: HashMap<String, usize>,
    base_url: String,
}

struct Inner {
    def: TwinDef,
    routes: Vec<CompiledRoute>,
    behaviour: Option<Arc<dyn Behaviour>>,
    keys: Option<Keys>,
    replay: Option<Cassette>,
    opts: TwinOptions,
    rt: Mutex<Runtime>,
    /// The tape being recorded or replayed (`lightsout replay`); locked after `rt`.
    tape: Mutex<Option<crate::tape::Tape>>,
    /// Where the twin stands against the real service (`GET /__twin/lifecycle`); never locked
    /// together with another lock.
    lifecycle: Mutex<Option<crate::drift::Lifecycle>>,
}

/// One running twin: definition, state, clock, journal. Cloning shares the same twin.
#[derive(Clone)]
pub struct Twin {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Twin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Twin")
            .field("name", &self.inner.def.name)
            .finish_non_exhaustive()
    }
}

impl Twin {
    /// Builds a twin from a definition.
    ///
    /// # Errors
    /// [`Error::Definition`] when a path template is malformed, [`Error::Key`] when the
    /// signing key cannot be loaded.
    pub fn new(def: TwinDef, opts: TwinOptions) -> Result<Self, Error> {
        Self::build(def, None, None, opts)
    }

    /// Builds a twin whose `custom` routes are answered by `behaviour`.
    ///
    /// # Errors
    /// As [`Twin::new`].
    pub fn with_behaviour(
        def: TwinDef,
        behaviour: Arc<dyn Behaviour>,
        opts: TwinOptions,
    ) -> Result<Self, Error> {
        Self::build(def, Some(behaviour), None, opts)
    }

    /// Builds a twin that replays `cassette` for requests no route matches.
    ///
    /// # Errors
    /// As [`Twin::new`].
    pub fn with_replay(def: TwinDef, cassette: Cassette, opts: TwinOptions) -> Result<Self, Error> {
        Self::build(def, None, Some(cassette), opts)
    }

    fn build(
        def: TwinDef,
        behaviour: Option<Arc<dyn Behaviour>>,
        replay: Option<Cassette>,
        opts: TwinOptions,
    ) -> Result<Self, Error> {
        let mut routes = Vec::with_capacity(def.routes.len());
        for r in &def.routes {
            let template = PathTemplate::parse(&r.path).map_err(Error::Definition)?;
            let method = match r.method.as_deref() {
                None | Some("*") => None,
                Some(m) => Some(
                    Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                        .map_err(|_| Error::Definition(format!("bad method {m:?}")))?,
                ),
            };
            let key = format!("{} {}", r.method.as_deref().unwrap_or("*"), r.path);
            let fixed = (matches!(r.action, Action::None)
                && def.auth.is_none()
                && r.rate_limit.is_none()
                && r.validate.is_none()
                && r.require.is_empty()
                && !is_templated(&r.response))
            .then(|| Self::render_response(&r.response, &Value::Null));
            routes.push(CompiledRoute {
                def: r.clone(),
                template,
                method,
                key,
                fixed,
            });
        }
        let keys = match def.auth.as_ref().and_then(|a| a.jwt.as_ref()) {
            Some(j) => Some(Keys::test_key(&j.kid)?),
            None => None,
        };
        let rt = Mutex::new(Self::fresh_runtime(&def, opts));
        Ok(Twin {
            inner: Arc::new(Inner {
                def,
                routes,
                behaviour,
                keys,
                replay,
                opts,
                rt,
                tape: Mutex::new(None),
                lifecycle: Mutex::new(None),
            }),
        })
    }

    fn fresh_runtime(def: &TwinDef, opts: TwinOptions) -> Runtime {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let state = State::seeded(&def.collections, &mut rng);
        Runtime {
            state,
            journal: Journal::new(opts),
            seq: 0,
            faults: Vec::new(),
            rng,
            now_ms: opts.clock_start_ms,
            windows: HashMap::new(),
            idempotency: HashMap::new(),
            replay_counts: HashMap::new(),
            base_url: String::new(),
        }
    }

    /// The definition.
    pub fn def(&self) -> &TwinDef {
        &self.inner.def
    }

    /// The twin's name.
    pub fn name(&self) -> &str {
        &self.inner.def.name
    }

    /// Sets the URL the twin is reachable at (used in issuer URLs and `Link` headers).
    pub fn set_base_url(&self, url: &str) {
        lock(&self.inner.rt).base_url = url.trim_end_matches('/').to_string();
    }

    /// Back to the seeded start: state, journal, faults, clock, rate windows. Keeps the base URL.
    pub fn reset(&self) {
        let mut rt = lock(&self.inner.rt);
        let base = std::mem::take(&mut rt.base_url);
        *rt = Self::fresh_runtime(&self.inner.def, self.inner.opts);
        rt.base_url = base;
    }

    /// A snapshot of the state (a fork: changes to it do not touch the twin).
    pub fn snapshot(&self) -> State {
        lock(&self.inner.rt).state.clone()
    }

    /// Restores a snapshot taken with [`Twin::snapshot`].
    pub fn restore(&self, state: State) {
        lock(&self.inner.rt).state = state;
    }

    /// A second, independent twin with the same definition and a copy of this one's state,
    /// clock and RNG (journal empty). Useful for one tenant per test.
    ///
    /// # Errors
    /// As [`Twin::new`].
    pub fn fork(&self) -> Result<Twin, Error> {
        let t = Self::build(
            self.inner.def.clone(),
            self.inner.behaviour.clone(),
            self.inner.replay.clone(),
            self.inner.opts,
        )?;
        {
            let src = lock(&self.inner.rt);
            let mut dst = lock(&t.inner.rt);
            dst.state = src.state.clone();
            dst.now_ms = src.now_ms;
            dst.rng = src.rng.clone();
            dst.base_url.clone_from(&src.base_url);
        }
        Ok(t)
    }

    /// Virtual now, ms since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        lock(&self.inner.rt).now_ms
    }

    /// Moves the virtual clock forward by `ms`.
    pub fn advance_ms(&self, ms: u64) {
        let mut rt = lock(&self.inner.rt);
        rt.now_ms = rt.now_ms.saturating_add(ms);
    }

    /// The journal, oldest first.
    pub fn journal(&self) -> Vec<JournalEntry> {
        lock(&self.inner.rt).journal.iter().cloned().collect()
    }

    /// Starts recording a tape of every exchange from now on (control calls excepted),
    /// kept across resets until [`Twin::take_tape`]. See [`crate::tape`].
    pub fn record_tape(&self) {
        *self.tape_lock() = Some(crate::tape::Tape::record());
    }

    /// Starts replaying `exchanges` (a recorded tape): the n-th request is answered with the
    /// n-th recorded response while the requests match. See [`crate::tape`].
    pub fn replay_tape(&self, exchanges: Vec<crate::record::Interaction>) {
        *self.tape_lock() = Some(crate::tape::Tape::replay(exchanges));
    }

    /// Stops the tape and returns it (`None` when none was started).
    pub fn take_tape(&self) -> Option<crate::tape::TapeReport> {
        self.tape_lock().take().map(crate::tape::Tape::finish)
    }

    fn tape_lock(&self) -> MutexGuard<'_, Option<crate::tape::Tape>> {
        lock(&self.inner.tape)
    }

    /// How full the journal is, and how many entries its caps dropped.
    pub fn journal_stats(&self) -> JournalStats {
        lock(&self.inner.rt).journal.stats()
    }

    /// Adds a fault rule.
    pub fn add_fault(&self, rule: FaultRule) {
        lock(&self.inner.rt).faults.push(rule);
    }

    /// Sets where the twin stands against the real service, as its manifest says; served at
    /// `GET /__twin/lifecycle` so that a judge can weaken the evidence gathered against it.
    pub fn set_lifecycle(&self, lifecycle: crate::drift::Lifecycle) {
        *lock(&self.inner.lifecycle) = Some(lifecycle);
    }

    /// Where the twin stands: what [`Twin::set_lifecycle`] set, else
    /// [`Lifecycle::unchecked`](crate::drift::Lifecycle::unchecked) (no manifest).
    pub fn lifecycle(&self) -> crate::drift::Lifecycle {
        lock(&self.inner.lifecycle)
            .clone()
            .unwrap_or_else(|| crate::drift::Lifecycle::unchecked(&self.inner.def.name))
    }

    /// Handles one request: control API, then faults, routes, replay, else `501`.
    pub fn handle(&self, req: &TwinRequest) -> TwinResponse {
        if let Some(rest) = req.path.strip_prefix("/__twin") {
            return self.control(rest, req);
        }
        let mut rt = lock(&self.inner.rt);
        let mut resp = self.dispatch(&mut rt, req);
        if let Some(tape) = lock(&self.inner.tape).as_mut() {
            resp = tape.exchange(req, resp, rt.now_ms);
        }
        rt.seq += 1;
        let entry = JournalEntry {
            seq: rt.seq,
            at_ms: rt.now_ms,
            method: req.method.to_string(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers: req
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: req.body_json(),
            status: if resp.fault.is_some() { 0 } else { resp.status },
        };
        rt.journal.push(entry, Journal::size_of(req));
        resp
    }

    fn dispatch(&self, rt: &mut Runtime, req: &TwinRequest) -> TwinResponse {
        let found = self.inner.routes.iter().find_map(|r| {
            if r.method.as_ref().is_some_and(|m| *m != req.method) {
                return None;
            }
            let caps = r.template.matches(&req.path)?;
            // The query is parsed only for routes that constrain it.
            if !r.def.query.is_empty() {
                let q = parse_query(&req.query);
                if !constraints_hold(&r.def.query, |k| q.get(k).cloned()) {
                    return None;
                }
            }
            if !constraints_hold(&r.def.headers, |k| req.header(&k.to_ascii_lowercase())) {
                return None;
            }
            if let Some(want) = &r.def.body
                && !json_contains(&req.body_json(), want)
            {
                return None;
            }
            Some((r, caps))
        });
        if !rt.faults.is_empty() {
            let concrete = format!("{} {}", req.method, req.path);
            let route_key = found
                .as_ref()
                .map_or(concrete.as_str(), |(r, _)| r.key.as_str());
            if let Some(resp) = self.take_fault(rt, route_key, &concrete) {
                return resp;
            }
        }
        let mut resp = match found {
            Some((route, caps)) => match &route.fixed {
                Some(fixed) => fixed.clone(),
                None => self.run_route(rt, route, &caps, req),
            },
            None => match self.replay(rt, req) {
                Some(r) => r,
                None => self.unsupported(rt, req),
            },
        };
        if self.inner.opts.latency
            && let Some(l) = &self.inner.def.latency
        {
            resp.delay_ms = sample_latency(l, &mut rt.rng);
        }
        resp
    }

    fn take_fault(&self, rt: &mut Runtime, key: &str, concrete: &str) -> Option<TwinResponse> {
        let idx = rt.faults.iter().position(|f| match f.route.as_deref() {
            None | Some("*" | "") => true,
            Some(r) => r == key || r == concrete || fault_template_matches(r, concrete),
        })?;
        let rule = rt.faults[idx].clone();
        if let Some(t) = rule.times {
            if t <= 1 {
                rt.faults.remove(idx);
            } else {
                rt.faults[idx].times = Some(t - 1);
            }
        }
        let fault = match rule.fault.as_str() {
            "reset" => ConnectionFault::Reset,
            "empty" => ConnectionFault::Empty,
            "malformed_chunk" => ConnectionFault::MalformedChunk,
            "random_close" => ConnectionFault::RandomClose,
            "rate_limit" => {
                let lim = self
                    .inner
                    .routes
                    .iter()
                    .find(|r| r.key == key)
                    .and_then(|r| r.def.rate_limit.as_ref())
                    .and_then(|n| self.inner.def.rate_limits.get(n));
                let scope = Self::base_scope(rt, None);
                return Some(
                    match lim.and_then(|l| l.response.as_ref()) {
                        Some(tpl) => Self::render_response(tpl, &scope),
                        None => TwinResponse::json(429, &json!({"error": "rate_limited"})),
                    }
                    .with_header("Retry-After", "1"),
                );
            }
            _ => {
                let status = rule.status.unwrap_or(503);
                return Some(TwinResponse::json(
                    status,
                    &json!({"error": "injected fault", "status": status}),
                ));
            }
        };
        let mut r = TwinResponse::empty(0);
        r.fault = Some(fault);
        Some(r)
    }

    fn unsupported(&self, rt: &Runtime, req: &TwinRequest) -> TwinResponse {
        let what = format!("{} {}", req.method, req.path);
        let mut resp = match &self.inner.def.unsupported {
            Some(tpl) => {
                let scope = Self::base_scope(rt, Some(req));
                Self::render_response(tpl, &scope)
            }
            None => TwinResponse::json(
                501,
                &json!({"error": "unsupported", "message": format!("the {} twin does not model {what}", self.inner.def.name)}),
            ),
        };
        resp.status = 501;
        resp.with_header("X-Twin-Unsupported", what)
    }

    fn replay(&self, rt: &mut Runtime, req: &TwinRequest) -> Option<TwinResponse> {
        let cassette = self.inner.replay.as_ref()?;
        let key = format!("{} {}?{}", req.method, req.path, req.query);
        let body = req.body_json();
        let hits: Vec<_> = cassette
            .interactions
            .iter()
            .filter(|i| {
                i.request.method.eq_ignore_ascii_case(req.method.as_str())
                    && i.request.path == req.path
                    && i.request.query == req.query
                    && (i.request.body.is_null() || i.request.body == body)
            })
            .collect();
        if hits.is_empty() {
            return None;
        }
        let n = rt.replay_counts.entry(key).or_insert(0);
        let hit = hits[(*n).min(hits.len() - 1)];
        *n += 1;
        let mut resp = TwinResponse::empty(hit.response.status);
        for (k, v) in &hit.response.headers {
            if !crate::record::HOP_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                resp.headers.push((k.clone(), v.clone()));
            }
        }
        resp.body = hit.response.body_bytes();
        Some(resp)
    }

    fn base_scope(rt: &Runtime, req: Option<&TwinRequest>) -> Value {
        let now_s = rt.now_ms / 1000;
        let iso = time::OffsetDateTime::from_unix_timestamp(now_s.cast_signed())
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        let mut scope = json!({
            "now_ms": rt.now_ms,
            "now_s": now_s,
            "now_iso": iso,
            "base_url": rt.base_url,
        });
        if let Some(req) = req {
            let headers: Map<String, Value> = req
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
                    )
                })
                .collect();
            let query: Map<String, Value> = parse_query(&req.query)
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            let body = req.body_json();
            scope["request"] = json!({"method": req.method.as_str(), "path": req.path, "query": query, "headers": headers, "body": body});
            scope["query"] = Value::Object(query);
            scope["headers"] = Value::Object(headers);
            scope["body"] = body;
        }
        scope
    }

    fn render_response(tpl: &ResponseDef, scope: &Value) -> TwinResponse {
        let body = render(&tpl.body, scope);
        let mut resp = if body.is_null() {
            TwinResponse::empty(tpl.status)
        } else {
            TwinResponse::json(tpl.status, &body)
        };
        for (k, v) in &tpl.headers {
            let v = render_text(v, scope);
            if let Some(slot) = resp
                .headers
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
            {
                slot.1 = v;
            } else {
                resp.headers.push((k.clone(), v));
            }
        }
        resp
    }

    fn run_route(
        &self,
        rt: &mut Runtime,
        route: &CompiledRoute,
        caps: &BTreeMap<String, String>,
        req: &TwinRequest,
    ) -> TwinResponse {
        let def = &route.def;
        let mut scope = Self::base_scope(rt, Some(req));
        scope["path"] = json!(caps);
        scope["state"] = rt.state.to_json();
        // Auth.
        let principal = match self.route_auth(rt, def, req, &mut scope) {
            Ok(p) => p,
            Err(resp) => return resp,
        };
        if let Some(p) = &principal {
            scope["auth"] = json!(p);
        }
        // Rate limit.
        let rate_headers = match self.rate_limit(rt, def, principal.as_ref(), &mut scope) {
            Ok(h) => h,
            Err(resp) => return resp,
        };
        // Validation.
        if let Some(schema) = &def.validate {
            let errors = schema::validate(&req.body_json(), schema);
            if !errors.is_empty() {
                scope["errors"] = json!(errors);
                let mut resp = match &def.invalid {
                    Some(t) => Self::render_response(t, &scope),
                    None => TwinResponse::json(
                        400,
                        &json!({"error": "invalid_request", "errors": errors}),
                    ),
                };
                resp.headers.extend(rate_headers);
                return resp;
            }
        }
        // Required objects.
        for (coll, filter) in &def.require {
            let f = render_filter(filter, &scope);
            if rt.state.find(coll, &f).is_none() {
                return Self::not_found(def, &scope, rate_headers);
            }
        }
        let mut resp = self.run_action(rt, route, caps, req, principal.as_ref(), &mut scope);
        resp.headers.extend(rate_headers);
        resp
    }

    /// Who sends `req` to the route `def`: `Ok(None)` when the route or the twin has no
    /// auth (or the request sends no token to a route that does not need one), `Err` with
    /// the vendor's answer when a needed token is missing, bad or short of a scope.
    fn route_auth(
        &self,
        rt: &Runtime,
        def: &RouteDef,
        req: &TwinRequest,
        scope: &mut Value,
    ) -> Result<Option<Principal>, TwinResponse> {
        match (&def.auth, &self.inner.def.auth) {
            (Some(ra), Some(auth)) => match self.authenticate(rt, auth, req) {
                Ok(p) => {
                    if let Some(missing) = ra.scopes.iter().find(|s| !p.scopes.contains(s)) {
                        scope["auth_error"] = json!("insufficient_scope");
                        scope["needed"] = json!(missing);
                        scope["provided"] = json!(p.scopes.join(","));
                        return Err(match &auth.insufficient_scope {
                            Some(t) => Self::render_response(t, scope),
                            None => TwinResponse::json(
                                403,
                                &json!({"error": "insufficient_scope", "needed": missing}),
                            )
                            .with_header(
                                "WWW-Authenticate",
                                format!(
                                    "Bearer error=\"insufficient_scope\", scope=\"{}\"",
                                    ra.scopes.join(" ")
                                ),
                            ),
                        });
                    }
                    Ok(Some(p))
                }
                Err(problem) => {
                    scope["auth_error"] = json!(problem);
                    let tpl = if problem == "missing" {
                        &auth.missing
                    } else {
                        &auth.invalid
                    };
                    Err(match tpl {
                        Some(t) => Self::render_response(t, scope),
                        None => TwinResponse::json(401, &json!({"error": problem})).with_header(
                            "WWW-Authenticate",
                            format!(
                                "Bearer error=\"invalid_token\", error_description=\"{problem}\""
                            ),
                        ),
                    })
                }
            },
            (None, Some(auth)) => match self.authenticate(rt, auth, req) {
                Ok(p) => Ok(Some(p)),
                Err("missing") => Ok(None),
                Err(problem) => {
                    scope["auth_error"] = json!(problem);
                    Err(match &auth.invalid {
                        Some(t) => Self::render_response(t, scope),
                        None => TwinResponse::json(401, &json!({"error": problem})),
                    })
                }
            },
            _ => Ok(None),
        }
    }

    /// Counts the request against the route's rate limit, if it has one: the rate-limit
    /// headers to send, or `Err` with the vendor's answer once the window's limit is spent.
    fn rate_limit(
        &self,
        rt: &mut Runtime,
        def: &RouteDef,
        principal: Option<&Principal>,
        scope: &mut Value,
    ) -> Result<Vec<(String, String)>, TwinResponse> {
        let Some(name) = &def.rate_limit else {
            return Ok(Vec::new());
        };
        let Some(lim) = self.inner.def.rate_limits.get(name) else {
            return Ok(Vec::new());
        };
        let mut rate_headers = Vec::new();
        let who = match lim.per {
            RatePer::Global => String::new(),
            RatePer::Token => principal.map(|p| p.token.clone()).unwrap_or_default(),
        };
        let start = rt.now_ms - rt.now_ms % lim.window_ms;
        let reset_ms = start + lim.window_ms;
        let slot = rt.windows.entry((name.clone(), who)).or_insert((start, 0));
        if slot.0 != start {
            *slot = (start, 0);
        }
        let limited = slot.1 >= lim.limit;
        if !limited {
            slot.1 += 1;
        }
        let used = slot.1;
        let retry_s = (reset_ms - rt.now_ms).div_ceil(1000).max(1);
        if matches!(lim.headers, RateHeaders::Github | RateHeaders::Standard) {
            rate_headers.push(("X-RateLimit-Limit".to_string(), lim.limit.to_string()));
            rate_headers.push((
                "X-RateLimit-Remaining".to_string(),
                lim.limit.saturating_sub(used).to_string(),
            ));
            rate_headers.push(("X-RateLimit-Used".to_string(), used.to_string()));
            rate_headers.push((
                "X-RateLimit-Reset".to_string(),
                reset_ms.div_ceil(1000).to_string(),
            ));
            rate_headers.push(("X-RateLimit-Resource".to_string(), name.clone()));
        }
        if limited {
            scope["retry_after_s"] = json!(retry_s);
            let mut resp = match &lim.response {
                Some(t) => Self::render_response(t, scope),
                None => TwinResponse::json(429, &json!({"error": "rate_limited"})),
            };
            if matches!(lim.headers, RateHeaders::Slack | RateHeaders::Standard) {
                resp.headers
                    .push(("Retry-After".to_string(), retry_s.to_string()));
            }
            resp.headers.extend(rate_headers);
            return Err(resp);
        }
        Ok(rate_headers)
    }

    fn not_found(def: &RouteDef, scope: &Value, extra: Vec<(String, String)>) -> TwinResponse {
        let mut resp = match &def.not_found {
            Some(t) => Self::render_response(t, scope),
            None => TwinResponse::json(404, &json!({"error": "not_found"})),
        };
        resp.headers.extend(extra);
        resp
    }

    #[allow(clippy::too_many_arguments)]
    fn run_action(
        &self,
        rt: &mut Runtime,
        route: &CompiledRoute,
        caps: &BTreeMap<String, String>,
        req: &TwinRequest,
        principal: Option<&Principal>,
        scope: &mut Value,
    ) -> TwinResponse {
        let def = &route.def;
        match &def.action {
            Action::None => Self::render_response(&def.response, scope),
            Action::Custom { name } => {
                if let Some(r) = self.builtin_custom(rt, name, req, principal, scope) {
                    return r;
                }
                let Some(b) = &self.inner.behaviour else {
                    return self.unsupported(rt, req);
                };
                let mut cx = Context {
                    req,
                    captures: caps,
                    state: &mut rt.state,
                    rng: &mut rt.rng,
                    now_ms: rt.now_ms,
                    principal,
                };
                match b.handle(name, &mut cx) {
                    Some(r) => r,
                    None => self.unsupported(rt, req),
                }
            }
            Action::Create {
                collection,
                set,
                idempotency_header,
            } => {
                let idem_key = idempotency_header
                    .as_ref()
                    .and_then(|h| req.header(&h.to_ascii_lowercase()))
                    .map(|k| format!("{}\u{0}{k}", route.key));
                Self::create(rt, def, req, scope, collection, set, idem_key)
            }
            Action::Get { collection, filter } => {
                Self::get(rt, def, req, scope, collection, filter)
            }
            Action::Update {
                collection,
                filter,
                set,
            } => Self::update(rt, def, req, scope, collection, filter, set),
            Action::Delete { collection, filter } => {
                let f = render_filter(filter, scope);
                let Some(idx) = rt.state.find(collection, &f) else {
                    return Self::not_found(def, scope, Vec::new());
                };
                scope["item"] = rt.state.remove(collection, idx).unwrap_or(Value::Null);
                Self::render_response(&def.response, scope)
            }
            Action::List {
                collection,
                filter,
                paginate,
                reverse,
            } => {
                let f = render_filter(filter, scope);
                let mut items = rt.state.filter(collection, &f);
                if *reverse {
                    items.reverse();
                }
                let total = items.len();
                scope["total"] = json!(total);
                let mut link = None;
                if let Some(p) = paginate {
                    let page = match Self::page(rt, def, req, scope, p, total) {
                        Ok(page) => page,
                        Err(resp) => return resp,
                    };
                    link = page.link;
                    items = items
                        .into_iter()
                        .skip(page.start)
                        .take(page.limit)
                        .collect();
                    scope["next_cursor"] = page.next.map_or(json!(""), Value::String);
                }
                scope["items"] = Value::Array(items);
                let resp = Self::render_response(&def.response, scope);
                match link {
                    Some(l) if !l.is_empty() => resp.with_header("Link", l),
                    _ => resp,
                }
            }
        }
    }

    /// The `create` action: inserts the request body into `collection`, then applies `set`;
    /// a repeated `idem_key` gets the first answer again.
    fn create(
        rt: &mut Runtime,
        def: &RouteDef,
        req: &TwinRequest,
        scope: &mut Value,
        collection: &str,
        set: &BTreeMap<String, Value>,
        idem_key: Option<String>,
    ) -> TwinResponse {
        if let Some(k) = &idem_key
            && let Some(prev) = rt.idempotency.get(k)
        {
            return prev.clone().with_header("Idempotent-Replayed", "true");
        }
        let obj = match req.body_json() {
            Value::Object(m) => Value::Object(m),
            _ => json!({}),
        };
        let mut item = match rt.state.insert(collection, obj, &mut rt.rng) {
            Ok(i) => i,
            Err(e) => {
                return TwinResponse::json(409, &json!({"error": "conflict", "message": e}));
            }
        };
        if !set.is_empty() {
            // `set` is rendered after the id is assigned, so it can use `{{item.id}}`.
            scope["item"] = item.clone();
            let patch = Value::Object(
                set.iter()
                    .map(|(k, v)| (k.clone(), render(v, scope)))
                    .collect(),
            );
            let idx = rt.state.items(collection).len() - 1;
            item = rt.state.patch(collection, idx, &patch).unwrap_or(item);
        }
        scope["item"] = item.clone();
        let resp = Self::render_response(&def.response, scope).with_header("ETag", etag(&item));
        if let Some(k) = idem_key {
            rt.idempotency.insert(k, resp.clone());
        }
        resp
    }

    /// The `get` action: the first object matching `filter`, `304` when `If-None-Match`
    /// holds its `ETag`.
    fn get(
        rt: &Runtime,
        def: &RouteDef,
        req: &TwinRequest,
        scope: &mut Value,
        collection: &str,
        filter: &BTreeMap<String, Value>,
    ) -> TwinResponse {
        let f = render_filter(filter, scope);
        let Some(item) = rt
            .state
            .find(collection, &f)
            .and_then(|i| rt.state.get(collection, i))
            .cloned()
        else {
            return Self::not_found(def, scope, Vec::new());
        };
        let tag = etag(&item);
        if req.header("if-none-match").as_deref() == Some(tag.as_str()) {
            return TwinResponse::empty(304).with_header("ETag", tag);
        }
        scope["item"] = item;
        Self::render_response(&def.response, scope).with_header("ETag", tag)
    }

    /// The `update` action: patches the first object matching `filter` with the request
    /// body and `set`, `412` when `If-Match` does not hold its `ETag`.
    fn update(
        rt: &mut Runtime,
        def: &RouteDef,
        req: &TwinRequest,
        scope: &mut Value,
        collection: &str,
        filter: &BTreeMap<String, Value>,
        set: &BTreeMap<String, Value>,
    ) -> TwinResponse {
        let f = render_filter(filter, scope);
        let Some(idx) = rt.state.find(collection, &f) else {
            return Self::not_found(def, scope, Vec::new());
        };
        if let Some(want) = req.header("if-match")
            && want != "*"
            && rt.state.get(collection, idx).map(etag).as_deref() != Some(want.as_str())
        {
            return TwinResponse::json(412, &json!({"error": "precondition_failed"}));
        }
        let mut patch = match req.body_json() {
            Value::Object(m) => Value::Object(m),
            _ => json!({}),
        };
        for (k, v) in set {
            patch[k] = render(v, scope);
        }
        let item = rt
            .state
            .patch(collection, idx, &patch)
            .unwrap_or(Value::Null);
        scope["item"] = item.clone();
        Self::render_response(&def.response, scope).with_header("ETag", etag(&item))
    }

    /// The page of `total` items a `list` request asks for, in the style of `p`; `Err`
    /// with the vendor's answer for a cursor this twin did not issue.
    fn page(
        rt: &Runtime,
        def: &RouteDef,
        req: &TwinRequest,
        scope: &mut Value,
        p: &Paginate,
        total: usize,
    ) -> Result<Page, TwinResponse> {
        let limit = req
            .param(&p.limit_param)
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|&l| l > 0)
            .unwrap_or(p.default_limit)
            .min(p.max_limit)
            .max(1);
        let mut link = None;
        let (start, next) = match p.style {
            PageStyle::Cursor => {
                let start = match req.param("cursor").filter(|c| !c.is_empty()) {
                    None => 0,
                    Some(c) => {
                        let Some(s) = decode_cursor(&c) else {
                            scope["errors"] = json!(["invalid_cursor"]);
                            return Err(match &def.invalid {
                                Some(t) => Self::render_response(t, scope),
                                None => {
                                    TwinResponse::json(400, &json!({"error": "invalid_cursor"}))
                                }
                            });
                        };
                        s
                    }
                };
                (
                    start,
                    (start + limit < total).then(|| encode_cursor(start + limit)),
                )
            }
            PageStyle::Offset => {
                let start = req
                    .param("offset")
                    .and_then(|o| o.parse().ok())
                    .unwrap_or(0);
                (
                    start,
                    (start + limit < total).then(|| (start + limit).to_string()),
                )
            }
            PageStyle::Link => {
                let page = req
                    .param("page")
                    .and_then(|o| o.parse::<usize>().ok())
                    .filter(|&p| p > 0)
                    .unwrap_or(1);
                let last = total.div_ceil(limit).max(1);
                link = Some(link_header(
                    &rt.base_url,
                    req,
                    page,
                    last,
                    limit,
                    &p.limit_param,
                ));
                (
                    (page - 1).saturating_mul(limit),
                    (page < last).then(|| (page + 1).to_string()),
                )
            }
        };
        Ok(Page {
            start,
            limit,
            next,
            link,
        })
    }

    /// Authenticates a request: static token, else a JWT signed by this twin.
    fn authenticate(
        &self,
        rt: &Runtime,
        auth: &AuthDef,
        req: &TwinRequest,
    ) -> Result<Principal, &'static str> {
        let token = req
            .bearer()
            .or_else(|| auth.body_field.as_ref().and_then(|f| req.param(f)))
            .filter(|t| !t.is_empty())
            .ok_or("missing")?;
        if let Some(g) = auth.tokens.get(&token) {
            return Ok(Principal {
                subject: g.subject.clone(),
                scopes: g.scopes.clone(),
                token,
            });
        }
        let (Some(jwt), Some(keys)) = (&auth.jwt, &self.inner.keys) else {
            return Err("invalid");
        };
        let iss = jwt.issuer.replace("{{base_url}}", &rt.base_url);
        match keys.verify(&token, &iss, &jwt.audience, rt.now_ms / 1000) {
            Ok(c) => Ok(Principal {
                subject: c.sub,
                scopes: c.scp,
                token,
            }),
            Err(TokenProblem::Expired) => Err("expired"),
            Err(TokenProblem::Invalid) => Err("invalid"),
        }
    }

    /// Engine-provided custom handlers, usable from any definition with `auth.jwt`:
    /// `oauth.token` (RFC 6749 §4.4 client credentials and §4.3 password grant),
    /// `oidc.jwks` (RFC 7517), `oidc.discovery` (`OpenID` Connect Discovery 1.0 §4),
    /// `oidc.userinfo` (`OpenID` Connect Core 1.0 §5.3).
    fn builtin_custom(
        &self,
        rt: &mut Runtime,
        name: &str,
        req: &TwinRequest,
        principal: Option<&Principal>,
        scope: &Value,
    ) -> Option<TwinResponse> {
        let auth = self.inner.def.auth.as_ref()?;
        let jwt = auth.jwt.as_ref()?;
        let keys = self.inner.keys.as_ref()?;
        let iss = jwt.issuer.replace("{{base_url}}", &rt.base_url);
        match name {
            "oidc.jwks" => Some(TwinResponse::json(200, keys.jwks())),
            "oidc.discovery" => Some(discovery(&render_text(&iss, scope))),
            "oauth.token" => Some(match oauth_grant(rt, auth, req) {
                Ok(grant) => issue_token(rt.now_ms / 1000, jwt, keys, &iss, grant)?,
                Err(resp) => resp,
            }),
            "oidc.userinfo" => {
                let p = principal?;
                let mut filter = Map::new();
                filter.insert("sub".into(), json!(p.subject));
                let mut out = json!({"sub": p.subject});
                if let Some(user) = rt.state.filter("users", &filter).into_iter().next() {
                    for k in [
                        "name",
                        "email",
                        "preferred_username",
                        "given_name",
                        "family_name",
                        "email_verified",
                        "zoneinfo",
                        "locale",
                    ] {
                        if let Some(v) = user.get(k) {
                            out[k] = v.clone();
                        }
                    }
                }
                Some(TwinResponse::json(200, &out))
            }
            _ => None,
        }
    }

    /// The control API (`/__twin/...`); see `twin-api.md`.
    fn control(&self, rest: &str, req: &TwinRequest) -> TwinResponse {
        if req.method == http::Method::GET && rest == "/lifecycle" {
            return TwinResponse::json(200, &json!(self.lifecycle()));
        }
        let m = &req.method;
        let body = req.body_json();
        let mut rt = lock(&self.inner.rt);
        match (m.as_str(), rest) {
            ("POST", "/reset") => {
                drop(rt);
                self.reset();
                TwinResponse::empty(204)
            }
            ("GET", "/state") => TwinResponse::json(200, &rt.state.to_json()),
            ("PUT", "/state") => {
                let rt = &mut *rt;
                let mut next = rt.state.clone();
                match next.replace_from_json(&body, &mut rt.rng) {
                    Ok(()) => {
                        rt.state = next;
                        TwinResponse::empty(204)
                    }
                    Err(e) => control_error(&e),
                }
            }
            ("GET", "/journal") => {
                let st = rt.journal.stats();
                let entries: Vec<&JournalEntry> = rt.journal.iter().collect();
                TwinResponse::json(200, &json!(entries))
                    .with_header("X-Twin-Journal-Bytes", st.bytes.to_string())
                    .with_header("X-Twin-Journal-Dropped", st.dropped.to_string())
            }
            ("GET", "/journal/stats") => TwinResponse::json(200, &json!(rt.journal.stats())),
            ("DELETE", "/journal") => {
                rt.journal.clear();
                TwinResponse::empty(204)
            }
            ("POST", "/journal/verify") => verify_journal(&rt.journal, &body),
            ("POST", "/faults") => add_fault(&mut rt.faults, body),
            ("DELETE", "/faults") => {
                rt.faults.clear();
                TwinResponse::empty(204)
            }
            ("GET", "/clock") => TwinResponse::json(200, &json!({"now_ms": rt.now_ms})),
            ("POST", "/clock") => {
                if let Some(a) = body.get("advance_ms").and_then(Value::as_u64) {
                    rt.now_ms = rt.now_ms.saturating_add(a);
                } else if let Some(s) = body.get("set_ms").and_then(Value::as_u64) {
                    rt.now_ms = s;
                } else {
                    return control_error(
                        "clock needs `advance_ms` or `set_ms` (non-negative integers)",
                    );
                }
                TwinResponse::json(200, &json!({"now_ms": rt.now_ms}))
            }
            ("POST", r) if r.starts_with("/state/") => {
                let coll = &r["/state/".len()..];
                if coll.is_empty() || coll.contains('/') || !body.is_object() {
                    return control_error("POST /__twin/state/{collection} takes a JSON object");
                }
                let rt = &mut *rt;
                match rt.state.insert(coll, body, &mut rt.rng) {
                    Ok(v) => TwinResponse::json(201, &v),
                    Err(e) => TwinResponse::json(409, &json!({"error": e})),
                }
            }
            ("GET", "/definition") => TwinResponse::json(200, &json!(self.inner.def)),
            _ => TwinResponse::json(
                404,
                &json!({"error": "unknown control endpoint", "path": format!("/__twin{rest}")}),
            ),
        }
    }
}

/// A `400` answer of the control API.
fn control_error(msg: &str) -> TwinResponse {
    TwinResponse::json(400, &json!({"error": msg}))
}

/// `POST /__twin/journal/verify`: how many journal entries match `method`, `path` (a
/// template) and `body_contains`, and whether that is the expected `count`.
fn verify_journal(journal: &Journal, body: &Value) -> TwinResponse {
    let Some(method) = body.get("method").and_then(Value::as_str) else {
        return control_error("verify needs `method` and `path`");
    };
    let Some(path) = body.get("path").and_then(Value::as_str) else {
        return control_error("verify needs `method` and `path`");
    };
    let Ok(tpl) = PathTemplate::parse(path) else {
        return control_error("`path` is not a path template");
    };
    let contains = body.get("body_contains").and_then(Value::as_str);
    let matched = journal
        .iter()
        .filter(|e| e.method.eq_ignore_ascii_case(method) && tpl.matches(&e.path).is_some())
        .filter(|e| {
            contains.is_none_or(|c| {
                let text = match &e.body {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                text.contains(c)
            })
        })
        .count();
    let expected = body.get("count").and_then(Value::as_u64);
    let ok = expected.is_none_or(|c| c == matched as u64);
    TwinResponse::json(
        200,
        &json!({"matched": matched, "expected": expected, "ok": ok}),
    )
}

/// `POST /__twin/faults`: adds a fault rule of a known kind.
fn add_fault(faults: &mut Vec<FaultRule>, body: Value) -> TwinResponse {
    match serde_json::from_value::<FaultRule>(body) {
        Ok(rule) => {
            const KNOWN: [&str; 6] = [
                "rate_limit",
                "reset",
                "empty",
                "malformed_chunk",
                "random_close",
                "status",
            ];
            if !KNOWN.contains(&rule.fault.as_str()) {
                return control_error(
                    "unknown fault; use rate_limit, reset, empty, malformed_chunk, random_close or status",
                );
            }
            faults.push(rule);
            TwinResponse::empty(204)
        }
        Err(e) => control_error(&format!("bad fault rule: {e}")),
    }
}

/// An `OAuth2` error answer (RFC 6749 §5.2), never cached.
fn oauth_err(status: u16, code: &str, desc: &str) -> TwinResponse {
    TwinResponse::json(status, &json!({"error": code, "error_description": desc}))
        .with_header("Cache-Control", "no-store")
        .with_header("Pragma", "no-cache")
}

/// The `OpenID` Connect discovery document of the issuer at `base`.
fn discovery(base: &str) -> TwinResponse {
    TwinResponse::json(
        200,
        &json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/v1/authorize"),
            "token_endpoint": format!("{base}/v1/token"),
            "userinfo_endpoint": format!("{base}/v1/userinfo"),
            "jwks_uri": format!("{base}/v1/keys"),
            "response_types_supported": ["code", "token", "id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "grant_types_supported": ["client_credentials", "password"],
            "scopes_supported": ["openid", "profile", "email"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": ["iss", "sub", "aud", "iat", "exp", "name", "email", "preferred_username"]
        }),
    )
}

/// What a token request is granted: the client, the subject, the scopes, and the user
/// (password grant).
struct Grant {
    cid: String,
    subject: String,
    scopes: Vec<String>,
    user: Option<Value>,
}

/// Checks a token request (client authentication, grant, asked scopes); `Err` with the
/// `OAuth2` error answer when it fails.
fn oauth_grant(rt: &Runtime, auth: &AuthDef, req: &TwinRequest) -> Result<Grant, TwinResponse> {
    let form = req.body_json();
    let field = |k: &str| form.get(k).and_then(Value::as_str).map(str::to_string);
    let (cid, secret) = match basic_auth(req) {
        Some(p) => p,
        None => (
            field("client_id").unwrap_or_default(),
            field("client_secret").unwrap_or_default(),
        ),
    };
    let Some(client) = auth.clients.get(&cid).filter(|c| c.secret == secret) else {
        return Err(oauth_err(
            401,
            "invalid_client",
            "Client authentication failed.",
        ));
    };
    let asked: Vec<String> = field("scope")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let (subject, allowed, user) = match field("grant_type").as_deref() {
        Some("client_credentials") => (
            client.subject.clone().unwrap_or(cid.clone()),
            client.scopes.clone(),
            None,
        ),
        Some("password") => {
            let u = field("username").unwrap_or_default();
            let pw = field("password").unwrap_or_default();
            let mut filter = Map::new();
            filter.insert("preferred_username".into(), json!(u));
            let Some(user) = rt
                .state
                .filter("users", &filter)
                .into_iter()
                .find(|x| x.get("password").and_then(Value::as_str) == Some(pw.as_str()))
            else {
                return Err(oauth_err(
                    400,
                    "invalid_grant",
                    "The credentials provided were invalid.",
                ));
            };
            let sub = user
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or(&u)
                .to_string();
            (sub, client.scopes.clone(), Some(user))
        }
        Some(_) => {
            return Err(oauth_err(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            ));
        }
        None => {
            return Err(oauth_err(
                400,
                "invalid_request",
                "The request is missing a required parameter: grant_type.",
            ));
        }
    };
    let scopes = if asked.is_empty() {
        allowed.clone()
    } else {
        asked
    };
    if let Some(bad) = scopes.iter().find(|s| !allowed.contains(s)) {
        return Err(oauth_err(
            400,
            "invalid_scope",
            &format!(
                "One or more scopes are not configured for the authorization server resource: {bad}"
            ),
        ));
    }
    Ok(Grant {
        cid,
        subject,
        scopes,
        user,
    })
}

/// The token answer for `grant` at `now_s` (seconds of virtual time): an access token, and
/// an ID token when a user asked for `openid`; `None` when signing fails.
fn issue_token(
    now_s: u64,
    jwt: &JwtDef,
    keys: &Keys,
    iss: &str,
    grant: Grant,
) -> Option<TwinResponse> {
    let Grant {
        cid,
        subject,
        scopes,
        user,
    } = grant;
    let claims = Claims {
        iss: iss.to_owned(),
        sub: subject.clone(),
        aud: jwt.audience.clone(),
        iat: now_s,
        exp: now_s + jwt.ttl_s,
        scope: scopes.join(" "),
        scp: scopes.clone(),
        cid: Some(cid.clone()),
    };
    let token = keys.sign(&claims).ok()?;
    let mut body = json!({"token_type": "Bearer", "expires_in": jwt.ttl_s, "access_token": token, "scope": scopes.join(" ")});
    if let Some(user) = user.filter(|_| scopes.iter().any(|s| s == "openid")) {
        let mut idc =
            json!({"iss": iss, "sub": subject, "aud": cid, "iat": now_s, "exp": now_s + jwt.ttl_s});
        for k in ["name", "email", "preferred_username"] {
            if let Some(v) = user.get(k) {
                idc[k] = v.clone();
            }
        }
        body["id_token"] = json!(keys.sign(&idc).ok()?);
    }
    Some(
        TwinResponse::json(200, &body)
            .with_header("Cache-Control", "no-store")
            .with_header("Pragma", "no-cache"),
    )
}

fn fault_template_matches(rule: &str, concrete: &str) -> bool {
    let (Some((rm, rp)), Some((cm, cp))) = (rule.split_once(' '), concrete.split_once(' ')) else {
        return false;
    };
    (rm == "*" || rm.eq_ignore_ascii_case(cm))
        && PathTemplate::parse(rp).is_ok_and(|t| t.matches(cp).is_some())
}

fn render_filter(filter: &BTreeMap<String, Value>, scope: &Value) -> Map<String, Value> {
    filter
        .iter()
        .map(|(k, v)| (k.clone(), render(v, scope)))
        .collect()
}

fn basic_auth(req: &TwinRequest) -> Option<(String, String)> {
    let h = req.header("authorization")?;
    let (scheme, b64) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((
        crate::matcher::percent_decode(u),
        crate::matcher::percent_decode(p),
    ))
}

/// Slack-style opaque cursor: base64 of `next:<offset>`.
pub fn encode_cursor(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("next:{offset}"))
}

/// Decodes [`encode_cursor`]; `None` for anything else.
pub fn decode_cursor(c: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::STANDARD.decode(c).ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("next:")?
        .parse()
        .ok()
}

/// RFC 8288 `Link` header with `next`, `last`, `first`, `prev` relations, as GitHub sends.
fn link_header(
    base: &str,
    req: &TwinRequest,
    page: usize,
    last: usize,
    per_page: usize,
    per_param: &str,
) -> String {
    let mut q: BTreeMap<String, String> = parse_query(&req.query);
    q.insert(per_param.to_string(), per_page.to_string());
    let mk = |p: usize| {
        let mut q = q.clone();
        q.insert("page".into(), p.to_string());
        let qs: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(q.iter())
            .finish();
        format!("<{base}{}?{qs}>", req.path)
    };
    let mut parts = Vec::new();
    if page > 1 {
        parts.push(format!("{}; rel=\"prev\"", mk(page - 1)));
    }
    if page < last {
        parts.push(format!("{}; rel=\"next\"", mk(page + 1)));
        parts.push(format!("{}; rel=\"last\"", mk(last)));
    }
    if page > 1 {
        parts.push(format!("{}; rel=\"first\"", mk(1)));
    }
    parts.join(", ")
}

/// Draws a delay in ms from a latency distribution using the seeded RNG.
pub fn sample_latency(l: &LatencyDef, rng: &mut impl Rng) -> u64 {
    match *l {
        LatencyDef::Fixed { ms } => ms,
        LatencyDef::Uniform { min_ms, max_ms } => {
            if max_ms <= min_ms {
                min_ms
            } else {
                rng.gen_range(min_ms..=max_ms)
            }
        }
        LatencyDef::Lognormal { median_ms, sigma } => {
            // Box-Muller for a standard normal, then exp(ln(median) + sigma * z).
            let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
            let u2: f64 = rng.gen_range(0.0..1.0);
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let v = median_ms.max(0.0) * (sigma * z).exp();
            if v.is_finite() {
                v.clamp(0.0, 60_000.0).round() as u64
            } else {
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::def::{Format, parse_definition};

    fn twin(yaml: &str) -> Twin {
        let (def, diags) = parse_definition(yaml, Format::Yaml);
        assert!(
            diags
                .iter()
                .all(|d| d.severity != lightsout_spec::Severity::Error),
            "{diags:?}"
        );
        Twin::new(def.unwrap(), TwinOptions::default()).unwrap()
    }

    fn req(method: &str, pq: &str, body: &str) -> TwinRequest {
        let mut r = TwinRequest::new(Method::from_bytes(method.as_bytes()).unwrap(), pq);
        r.body = Bytes::from(body.to_string());
        r
    }

    const CRUD: &str = r"
name: notes
provenance: {source: test}
collections:
  notes: {seed: [{id: 1, text: a}, {id: 2, text: b}, {id: 3, text: c}]}
routes:
  - {method: POST, path: /notes, action: {kind: create, collection: notes, idempotency_header: Idempotency-Key, set: {at: '{{now_s}}'}}, response: {status: 201, body: '{{item}}'}}
  - {method: GET, path: /notes, action: {kind: list, collection: notes, paginate: {style: offset, default_limit: 2}}, response: {body: {items: '{{items}}', next: '{{next_cursor}}'}}}
  - {method: GET, path: '/notes/{id}', action: {kind: get, collection: notes, where: {id: '{{path.id}}'}}, response: {body: '{{item}}'}}
  - {method: PATCH, path: '/notes/{id}', action: {kind: update, collection: notes, where: {id: '{{path.id}}'}}, response: {body: '{{item}}'}}
  - {method: DELETE, path: '/notes/{id}', action: {kind: delete, collection: notes, where: {id: '{{path.id}}'}}, response: {status: 204}}
";

    #[test]
    fn fixed_routes_answer_as_rendered_and_templated_ones_still_render() {
        let t = twin(
            r"
name: fixed
provenance: {source: test}
routes:
  - {method: GET, path: /hello, response: {status: 200, headers: {X-Kind: stub}, body: {hello: world, n: [1, 2]}}}
  - {method: GET, path: /now, response: {body: {now: '{{now_s}}'}}}
  - {method: GET, path: /hdr, response: {headers: {X-At: '{{now_s}}'}, body: {ok: true}}}
",
        );
        let routes = &t.inner.routes;
        assert!(routes[0].fixed.is_some());
        assert!(routes[1].fixed.is_none() && routes[2].fixed.is_none());
        let fixed = t.handle(&req("GET", "/hello?x=1", ""));
        let rendered = Twin::render_response(&routes[0].def.response, &json!({"anything": 1}));
        assert_eq!(fixed, rendered);
        assert_eq!(fixed.body_json(), json!({"hello": "world", "n": [1, 2]}));
        assert_eq!(fixed.header("x-kind"), Some("stub"));
        // Templated routes still see the clock; every request is still journalled.
        let before = t.handle(&req("GET", "/now", "")).body_json()["now"].clone();
        t.advance_ms(5_000);
        let after = t.handle(&req("GET", "/now", "")).body_json()["now"].clone();
        assert_eq!(after.as_u64().unwrap(), before.as_u64().unwrap() + 5);
        let at = t.handle(&req("GET", "/hdr", ""));
        assert_eq!(at.header("X-At"), Some(after.to_string().as_str()));
        assert_eq!(t.journal().len(), 4);
        // A fault rule still applies to a fixed route.
        t.add_fault(FaultRule {
            route: Some("GET /hello".into()),
            fault: "status".into(),
            status: Some(503),
            times: Some(1),
        });
        assert_eq!(t.handle(&req("GET", "/hello", "")).status, 503);
        assert_eq!(t.handle(&req("GET", "/hello", "")).status, 200);
    }

    #[test]
    fn crud_idempotency_etag_and_pagination() {
        let t = twin(CRUD);
        let mut post = req("POST", "/notes", r#"{"text":"d"}"#);
        post.headers
            .insert("idempotency-key", "k1".parse().unwrap());
        let a = t.handle(&post);
        let b = t.handle(&post);
        assert_eq!(a.status, 201);
        assert_eq!(a.body_json()["id"], 4);
        assert_eq!(a.body_json()["at"], DEFAULT_CLOCK_START_MS / 1000);
        assert_eq!(b.body, a.body);
        assert_eq!(b.header("idempotent-replayed"), Some("true"));
        let page1 = t.handle(&req("GET", "/notes", "")).body_json();
        assert_eq!(page1["items"].as_array().unwrap().len(), 2);
        let page2 = t.handle(&req("GET", "/notes?offset=2", "")).body_json();
        assert_eq!(page2["next"], "");
        let got = t.handle(&req("GET", "/notes/2", ""));
        let tag = got.header("etag").unwrap().to_string();
        let mut cond = req("GET", "/notes/2", "");
        cond.headers.insert("if-none-match", tag.parse().unwrap());
        assert_eq!(t.handle(&cond).status, 304);
        let mut stale = req("PATCH", "/notes/2", r#"{"text":"B"}"#);
        stale
            .headers
            .insert("if-match", "\"nope\"".parse().unwrap());
        assert_eq!(t.handle(&stale).status, 412);
        assert_eq!(
            t.handle(&req("PATCH", "/notes/2", r#"{"text":"B"}"#))
                .body_json()["text"],
            "B"
        );
        assert_eq!(t.handle(&req("DELETE", "/notes/2", "")).status, 204);
        assert_eq!(t.handle(&req("GET", "/notes/2", "")).status, 404);
        let un = t.handle(&req("PUT", "/elsewhere", ""));
        assert_eq!(un.status, 501);
        assert_eq!(un.header("x-twin-unsupported"), Some("PUT /elsewhere"));
    }

    fn capped(max_entries: usize, max_bytes: usize) -> Twin {
        let (def, _) = parse_definition(CRUD, Format::Yaml);
        let opts = TwinOptions {
            journal_max_entries: max_entries,
            journal_max_bytes: max_bytes,
            ..TwinOptions::default()
        };
        Twin::new(def.unwrap(), opts).unwrap()
    }

    #[test]
    fn journal_is_capped_in_bytes_oldest_first_with_a_drop_count() {
        // Each request counts GET (3) + /notes/1 (8) + x-pad (5) + its 100-byte value = 116.
        let t = capped(100, 300);
        let mut sent = Vec::new();
        for i in 1..=5 {
            let mut r = req("GET", &format!("/notes/{i}"), "");
            r.headers.insert("x-pad", "p".repeat(100).parse().unwrap());
            sent.push(r.clone());
            t.handle(&r);
        }
        let st = t.journal_stats();
        assert_eq!(
            st,
            JournalStats {
                entries: 2,
                bytes: 232,
                dropped: 3,
                max_entries: 100,
                max_bytes: 300
            }
        );
        let seqs: Vec<u64> = t.journal().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [4, 5], "the oldest go first");
        // The journal answer carries the same numbers; clearing starts the count again.
        let j = t.handle(&req("GET", "/__twin/journal", ""));
        assert_eq!(j.header("x-twin-journal-bytes"), Some("232"));
        assert_eq!(j.header("x-twin-journal-dropped"), Some("3"));
        assert_eq!(j.body_json().as_array().unwrap().len(), 2);
        let stats = t
            .handle(&req("GET", "/__twin/journal/stats", ""))
            .body_json();
        assert_eq!(stats["bytes"], 232);
        assert_eq!(stats["dropped"], 3);
        t.handle(&req("DELETE", "/__twin/journal", ""));
        assert_eq!(t.journal_stats().bytes, 0);
        assert_eq!(t.journal_stats().dropped, 0);
        // An entry larger than the whole cap is not kept, and is counted.
        let mut huge = req("POST", "/notes", "");
        huge.body = Bytes::from(format!("{{\"text\":\"{}\"}}", "x".repeat(400)));
        t.handle(&huge);
        assert_eq!(t.journal_stats().entries, 0);
        assert_eq!(t.journal_stats().dropped, 1);
        // Same requests, same numbers: the sizes are a function of the requests alone.
        let again = capped(100, 300);
        for r in &sent {
            again.handle(r);
        }
        assert_eq!(again.journal_stats(), st);
    }

    #[test]
    fn journal_entry_cap_still_holds() {
        let t = capped(3, usize::MAX);
        for _ in 0..5 {
            t.handle(&req("GET", "/notes", ""));
        }
        let st = t.journal_stats();
        assert_eq!((st.entries, st.dropped), (3, 2));
        assert_eq!(t.journal()[0].seq, 3);
    }

    #[test]
    fn control_api_reset_state_journal_clock_faults() {
        let t = twin(CRUD);
        t.handle(&req("POST", "/notes", r#"{"text":"d"}"#));
        let v = t.handle(&req(
            "POST",
            "/__twin/journal/verify",
            r#"{"method":"POST","path":"/notes","count":1}"#,
        ));
        assert_eq!(
            v.body_json(),
            json!({"matched": 1, "expected": 1, "ok": true})
        );
        assert_eq!(
            t.handle(&req("POST", "/__twin/state/notes", r#"{"text":"seeded"}"#))
                .status,
            201
        );
        assert_eq!(
            t.handle(&req("GET", "/__twin/state", "")).body_json()["notes"]
                .as_array()
                .unwrap()
                .len(),
            5
        );
        let c = t
            .handle(&req("POST", "/__twin/clock", r#"{"advance_ms":1500}"#))
            .body_json();
        assert_eq!(c["now_ms"], DEFAULT_CLOCK_START_MS + 1500);
        t.handle(&req(
            "POST",
            "/__twin/faults",
            r#"{"route":"GET /notes/{id}","fault":"status","status":503,"times":1}"#,
        ));
        assert_eq!(t.handle(&req("GET", "/notes/1", "")).status, 503);
        assert_eq!(t.handle(&req("GET", "/notes/1", "")).status, 200);
        t.handle(&req("POST", "/__twin/faults", r#"{"fault":"reset"}"#));
        assert_eq!(
            t.handle(&req("GET", "/notes/1", "")).fault,
            Some(ConnectionFault::Reset)
        );
        let journal = t.handle(&req("GET", "/__twin/journal", "")).body_json();
        assert_eq!(
            journal.as_array().unwrap().len(),
            4,
            "control calls are not journalled"
        );
        assert_eq!(t.handle(&req("POST", "/__twin/reset", "")).status, 204);
        assert_eq!(t.now_ms(), DEFAULT_CLOCK_START_MS);
        assert!(t.journal().is_empty());
        assert_eq!(t.snapshot().items("notes").len(), 3);
    }

    #[test]
    fn fork_is_independent_and_restore_rolls_back() {
        let t = twin(CRUD);
        let snap = t.snapshot();
        let f = t.fork().unwrap();
        f.handle(&req("DELETE", "/notes/1", ""));
        assert_eq!(t.snapshot().items("notes").len(), 3);
        t.handle(&req("DELETE", "/notes/1", ""));
        t.restore(snap);
        assert_eq!(t.snapshot().items("notes").len(), 3);
    }

    #[test]
    fn latency_is_seeded() {
        let l = LatencyDef::Lognormal {
            median_ms: 20.0,
            sigma: 0.5,
        };
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..5)
                .map(|_| sample_latency(&l, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..100 {
            let v = sample_latency(
                &LatencyDef::Uniform {
                    min_ms: 3,
                    max_ms: 5,
                },
                &mut rng,
            );
            assert!((3..=5).contains(&v));
        }
    }

    #[test]
    fn cursor_round_trip() {
        assert_eq!(decode_cursor(&encode_cursor(42)), Some(42));
        assert_eq!(decode_cursor("garbage"), None);
    }
}
