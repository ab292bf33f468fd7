//! Twin definitions: the declarative model read from YAML or TOML, and its parser.
//!
//! A definition names the service it clones, the collections it keeps, the auth it
//! emulates, its rate limits and latency, and an ordered list of routes. The parser returns
//! the definition together with every problem found ([`parse_definition`]).

use lightsout_spec::{Diagnostic, Severity, Span};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Where a behaviour comes from: a vendor documentation URL or a recorded exchange.
///
/// Every route of a built-in twin carries one (issue 5, "Provenance").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Provenance {
    /// Vendor documentation URL, or `cassette:<file>#<index>` for a recorded exchange.
    pub source: String,
    /// ISO date (`YYYY-MM-DD`) the source was read or recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

/// A whole twin definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TwinDef {
    /// Short name, `[a-z0-9-]+`; also the path prefix when several twins share a port.
    pub name: String,
    /// One line on what the twin clones.
    #[serde(default)]
    pub description: String,
    /// Where the twin as a whole comes from (vendor API reference).
    #[serde(default)]
    pub provenance: Provenance,
    /// Collections of JSON objects the routes read and write, by name.
    #[serde(default)]
    pub collections: BTreeMap<String, CollectionDef>,
    /// Auth emulation; absent means no route may ask for auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthDef>,
    /// Named rate limits routes refer to with `rate_limit:`.
    #[serde(default)]
    pub rate_limits: BTreeMap<String, RateLimitDef>,
    /// Latency added before every answer (wall-clock; the virtual clock is not moved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyDef>,
    /// Routes, tried in order; the first whose matchers all hold answers.
    #[serde(default)]
    pub routes: Vec<RouteDef>,
    /// Largest request body accepted, in bytes; larger bodies get `413`. Default 1 MiB.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// Body of the `501` answer for unmodelled endpoints (template). Default: a JSON error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsupported: Option<ResponseDef>,
    /// Cassette file (relative to the definition) to replay for requests no route matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<String>,
}

fn default_body_limit() -> usize {
    1 << 20
}

/// A collection: ordered JSON objects with an id field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CollectionDef {
    /// Field holding the id. Default `id`.
    #[serde(default = "default_id_field")]
    pub id_field: String,
    /// How new ids are made.
    #[serde(default)]
    pub id: IdStrategy,
    /// Objects present after a reset.
    #[serde(default)]
    pub seed: Vec<Value>,
}

fn default_id_field() -> String {
    "id".into()
}

/// How a collection makes ids for new objects. All strategies are deterministic given the seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum IdStrategy {
    /// 1, 2, 3 ... (JSON numbers), continuing after the largest seeded number.
    #[default]
    Sequence,
    /// `prefix` + upper-case alphanumerics from the seeded RNG (Slack's `C0123ABCD` style).
    Prefixed {
        /// Leading text, e.g. `C`.
        prefix: String,
        /// Number of random characters after the prefix.
        #[serde(default = "default_id_len")]
        len: usize,
    },
    /// RFC 4122 version-4 UUIDs from the seeded RNG.
    Uuid,
}

fn default_id_len() -> usize {
    10
}

/// Auth emulation for a twin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuthDef {
    /// Static opaque bearer tokens → who they are and what they may do.
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenGrant>,
    /// Where tokens may be sent besides `Authorization: Bearer`: a form/JSON body field name
    /// (Slack accepts `token` in the body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_field: Option<String>,
    /// JWT issuing and checking; absent means only static tokens are accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtDef>,
    /// `OAuth2` clients for the client-credentials grant, by client id.
    #[serde(default)]
    pub clients: BTreeMap<String, ClientDef>,
    /// The vendor's answer when no credentials are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<ResponseDef>,
    /// The vendor's answer for a bad or expired credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<ResponseDef>,
    /// The vendor's answer for a valid credential without a required scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insufficient_scope: Option<ResponseDef>,
}

/// What a static token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TokenGrant {
    /// Subject (user id) the token acts as.
    #[serde(default)]
    pub subject: String,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// JWT settings (RS256, RFC 7519 / RFC 7515).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct JwtDef {
    /// `iss` claim; `{{base_url}}` is replaced by the twin's URL.
    pub issuer: String,
    /// `aud` claim.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// Lifetime of issued access tokens, in seconds of virtual time.
    #[serde(default = "default_ttl")]
    pub ttl_s: u64,
    /// `kid` of the signing key published in the JWKS.
    #[serde(default = "default_kid")]
    pub kid: String,
}

fn default_audience() -> String {
    "api://default".into()
}
fn default_ttl() -> u64 {
    3600
}
fn default_kid() -> String {
    "lightsout-twin-1".into()
}

/// An `OAuth2` client (RFC 6749 §4.4 client credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClientDef {
    /// The client secret.
    pub secret: String,
    /// Scopes the client may ask for.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Subject put in tokens issued to it. Default: the client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// A fixed-window rate limit on the virtual clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitDef {
    /// Requests allowed per window (`>= 1`).
    pub limit: u64,
    /// Window length in ms of virtual time (`>= 1`).
    pub window_ms: u64,
    /// Which headers to send: `github` (`X-RateLimit-Limit/Remaining/Used/Reset/Resource`
    /// on every answer), `slack` (`Retry-After` on 429 only), `standard` (both families).
    #[serde(default)]
    pub headers: RateHeaders,
    /// Key the window by: `global` or `token` (each credential has its own window).
    #[serde(default)]
    pub per: RatePer,
    /// The vendor's answer when the limit is hit. Default: `429` with `Retry-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseDef>,
}

/// Rate-limit header families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RateHeaders {
    /// `X-RateLimit-*` on every answer (GitHub).
    Github,
    /// `Retry-After` on limited answers only (Slack).
    Slack,
    /// Both.
    #[default]
    Standard,
}

/// What a rate window is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RatePer {
    /// One window for everyone.
    #[default]
    Global,
    /// One window per credential (the bearer token text).
    Token,
}

/// A latency distribution, in ms of wall-clock time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum LatencyDef {
    /// Always `ms`.
    Fixed {
        /// Delay in ms.
        ms: u64,
    },
    /// Uniform in `[min_ms, max_ms]`.
    Uniform {
        /// Lower bound in ms.
        min_ms: u64,
        /// Upper bound in ms (`>= min_ms`).
        max_ms: u64,
    },
    /// Log-normal with the given median (ms) and shape `sigma` (the sd of ln(delay)).
    Lognormal {
        /// Median delay in ms.
        median_ms: f64,
        /// Standard deviation of the natural log of the delay.
        sigma: f64,
    },
}

/// One route: matchers, then an optional action on the state, then a response template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RouteDef {
    /// HTTP method, upper case; `*` or absent matches any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path template: literal segments and `{name}` captures, e.g. `/repos/{owner}/{repo}`.
    pub path: String,
    /// Query parameters that must be present with these values (`*` = present at all).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// Headers (case-insensitive names) that must be present with these values (`*` = present).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A JSON value the request body must contain (object subset match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Where this behaviour comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Require a credential (and these scopes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RouteAuth>,
    /// Name of a rate limit in [`TwinDef::rate_limits`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// JSON Schema (subset: type, required, properties, enum, items) the JSON body must satisfy;
    /// a failure answers `400` (or [`RouteDef::invalid`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<Value>,
    /// The answer when `validate` fails (template; `{{errors}}` lists the problems).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<ResponseDef>,
    /// What to do to the state.
    #[serde(default)]
    pub action: Action,
    /// The answer (template) when the action succeeds.
    #[serde(default)]
    pub response: ResponseDef,
    /// The answer when the action's object or a `require` check is missing. Default 404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_found: Option<ResponseDef>,
    /// Objects that must exist first: collection → `where` filter (templated). Missing → `not_found`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub require: BTreeMap<String, BTreeMap<String, Value>>,
}

/// Route auth requirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RouteAuth {
    /// Scopes the credential must hold (all of them).
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// What a route does to the state before answering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum Action {
    /// Nothing; just answer.
    #[default]
    None,
    /// Insert the request body (merged with `set`) as a new object; exposes `item`.
    /// With `idempotency_header`, a repeated key returns the first answer unchanged.
    Create {
        /// Collection name.
        collection: String,
        /// Fields (templated) set on top of the body.
        #[serde(default)]
        set: BTreeMap<String, Value>,
        /// Header carrying an idempotency key (e.g. `Idempotency-Key`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_header: Option<String>,
    },
    /// Find one object (`where` filter, templated); exposes `item` and sends an `ETag`.
    /// `If-None-Match` with the current `ETag` answers `304`.
    Get {
        /// Collection name.
        collection: String,
        /// Field → templated value every field must equal.
        #[serde(rename = "where")]
        filter: BTreeMap<String, Value>,
    },
    /// Merge-patch (RFC 7396) the found object with the body and `set`; honours `If-Match` (412).
    Update {
        /// Collection name.
        collection: String,
        /// Field → templated value every field must equal.
        #[serde(rename = "where")]
        filter: BTreeMap<String, Value>,
        /// Fields (templated) set after the patch.
        #[serde(default)]
        set: BTreeMap<String, Value>,
    },
    /// Remove the found object; exposes it as `item`.
    Delete {
        /// Collection name.
        collection: String,
        /// Field → templated value every field must equal.
        #[serde(rename = "where")]
        filter: BTreeMap<String, Value>,
    },
    /// Filter and paginate; exposes `items`, `next_cursor`, `total`, and sets `Link` for link style.
    List {
        /// Collection name.
        collection: String,
        /// Field → templated value every field must equal.
        #[serde(default, rename = "where")]
        filter: BTreeMap<String, Value>,
        /// Pagination; absent returns everything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        paginate: Option<Paginate>,
        /// Newest first (reverse insertion order).
        #[serde(default)]
        reverse: bool,
    },
    /// Hand the request to the twin's Rust [`crate::Behaviour`] under this name.
    Custom {
        /// Handler name passed to the behaviour.
        name: String,
    },
}

/// Pagination of a `list` action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paginate {
    /// `cursor` (opaque base64 `next_cursor`, Slack), `offset` (`offset`/`limit`),
    /// or `link` (`page`/`per_page` with an RFC 8288 `Link` header, GitHub).
    pub style: PageStyle,
    /// Query/body parameter carrying the page size.
    #[serde(default = "default_limit_param")]
    pub limit_param: String,
    /// Page size when none is asked for.
    #[serde(default = "default_page")]
    pub default_limit: usize,
    /// Largest page size honoured (larger asks are clamped).
    #[serde(default = "default_max_page")]
    pub max_limit: usize,
}

fn default_limit_param() -> String {
    "limit".into()
}
fn default_page() -> usize {
    100
}
fn default_max_page() -> usize {
    1000
}

/// Pagination styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageStyle {
    /// Opaque cursor (`cursor` parameter in, `next_cursor` out).
    Cursor,
    /// `offset` parameter.
    Offset,
    /// `page` parameter (1-based) with a `Link` header.
    Link,
}

/// A response template. String leaves may hold `{{expr}}` (see [`crate::template`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseDef {
    /// HTTP status.
    #[serde(default = "default_status")]
    pub status: u16,
    /// Headers (values templated).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// JSON body template; `null` means an empty body.
    #[serde(default)]
    pub body: Value,
}

impl Default for ResponseDef {
    fn default() -> Self {
        ResponseDef {
            status: 200,
            headers: BTreeMap::new(),
            body: Value::Null,
        }
    }
}

fn default_status() -> u16 {
    200
}

/// The format of a definition file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML 1.2 (via `serde_norway`).
    Yaml,
    /// TOML 1.0.
    Toml,
}

impl Format {
    /// Guesses the format from a file name (`.toml` → TOML, anything else YAML).
    pub fn from_path(path: &std::path::Path) -> Self {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
        {
            Format::Toml
        } else {
            Format::Yaml
        }
    }
}

/// Diagnostic codes of the twin definition parser.
pub mod codes {
    /// The file is not valid YAML/TOML or does not fit the schema.
    pub const SYNTAX: &str = "LS050";
    /// A path template is malformed.
    pub const PATH: &str = "LS051";
    /// A route refers to an unknown collection or rate limit.
    pub const REFERENCE: &str = "LS052";
    /// A value is out of range.
    pub const RANGE: &str = "LS053";
    /// A route lacks provenance.
    pub const PROVENANCE: &str = "LS054";
}

/// Parses a definition. Returns the definition (when the text fits the schema at all) and
/// every problem found, with spans into `text`.
///
/// Never panics on any input (fuzzed by `twin_definition_no_panic`). A definition is usable
/// when no diagnostic has [`Severity::Error`].
pub fn parse_definition(text: &str, format: Format) -> (Option<TwinDef>, Vec<Diagnostic>) {
    let parsed: Result<TwinDef, (String, Option<usize>)> = match format {
        Format::Yaml => serde_norway::from_str(text)
            .map_err(|e| (e.to_string(), e.location().map(|l| l.index()))),
        Format::Toml => {
            toml::from_str(text).map_err(|e| (e.message().to_string(), e.span().map(|s| s.start)))
        }
    };
    match parsed {
        Ok(def) => {
            let diags = check(&def, text);
            (Some(def), diags)
        }
        Err((msg, at)) => {
            let at = at.unwrap_or(0);
            let span = Span::from_range(text, at, at);
            (
                None,
                vec![Diagnostic::new(
                    codes::SYNTAX,
                    Severity::Error,
                    span,
                    format!("twin definition does not parse: {}", first_line(&msg)),
                    "fix the syntax; see crates/twin/twins/*.yaml for working definitions",
                )],
            )
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_lowercase()
}

/// Span of the first occurrence of `needle` in `text` (or the file start).
fn find_span(text: &str, needle: &str) -> Span {
    match text.find(needle) {
        Some(i) if !needle.is_empty() => Span::from_range(text, i, i + needle.len()),
        _ => Span::from_range(text, 0, 0),
    }
}

/// Writes a definition as YAML (the inverse of [`parse_definition`] with [`Format::Yaml`]).
///
/// # Errors
/// [`crate::Error::Definition`] if serialisation fails (it cannot for definitions built in memory).
pub fn to_yaml(def: &TwinDef) -> Result<String, crate::Error> {
    serde_norway::to_string(def).map_err(|e| crate::Error::Definition(e.to_string()))
}

/// Semantic checks of a parsed definition.
fn check(def: &TwinDef, text: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let err = |code: &str, needle: &str, msg: String, help: &str| {
        Diagnostic::new(code, Severity::Error, find_span(text, needle), msg, help)
    };
    if def.name.is_empty()
        || !def
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        out.push(err(
            codes::RANGE,
            "name",
            format!("twin name {:?} is not [a-z0-9-]+", def.name),
            "use a short lower-case name such as `slack`",
        ));
    }
    for (name, rl) in &def.rate_limits {
        if rl.limit == 0 || rl.window_ms == 0 {
            out.push(err(
                codes::RANGE,
                name,
                format!("rate limit `{name}` needs limit >= 1 and window_ms >= 1"),
                "set both to positive numbers",
            ));
        }
    }
    if let Some(LatencyDef::Uniform { min_ms, max_ms }) = &def.latency
        && min_ms > max_ms
    {
        out.push(err(
            codes::RANGE,
            "latency",
            "uniform latency has min_ms > max_ms".into(),
            "swap the bounds",
        ));
    }
    if let Some(LatencyDef::Lognormal { median_ms, sigma }) = &def.latency
        && !(median_ms.is_finite() && *median_ms >= 0.0 && sigma.is_finite() && *sigma >= 0.0)
    {
        out.push(err(
            codes::RANGE,
            "latency",
            "lognormal latency needs finite median_ms >= 0 and sigma >= 0".into(),
            "use e.g. median_ms: 20, sigma: 0.5",
        ));
    }
    for route in &def.routes {
        check_route(def, route, text, &mut out);
    }
    out
}

/// Semantic checks of one route of `def`: its path template and the rate limit, auth and
/// collections it refers to, and its provenance.
fn check_route(def: &TwinDef, route: &RouteDef, text: &str, out: &mut Vec<Diagnostic>) {
    let err = |code: &str, needle: &str, msg: String, help: &str| {
        Diagnostic::new(code, Severity::Error, find_span(text, needle), msg, help)
    };
    if let Err(msg) = crate::matcher::PathTemplate::parse(&route.path) {
        out.push(err(
            codes::PATH,
            &route.path,
            msg,
            "write paths like `/repos/{owner}/{repo}/issues`",
        ));
    }
    if let Some(rl) = &route.rate_limit
        && !def.rate_limits.contains_key(rl)
    {
        out.push(err(
            codes::REFERENCE,
            rl,
            format!("route {} refers to unknown rate limit `{rl}`", route.path),
            "declare it under `rate_limits:`",
        ));
    }
    if route.auth.is_some() && def.auth.is_none() {
        out.push(err(
            codes::REFERENCE,
            &route.path,
            format!(
                "route {} asks for auth but the twin declares none",
                route.path
            ),
            "add an `auth:` section",
        ));
    }
    let coll = match &route.action {
        Action::Create { collection, .. }
        | Action::Get { collection, .. }
        | Action::Update { collection, .. }
        | Action::Delete { collection, .. }
        | Action::List { collection, .. } => Some(collection),
        Action::None | Action::Custom { .. } => None,
    };
    for c in coll.into_iter().chain(route.require.keys()) {
        if !def.collections.contains_key(c) {
            out.push(err(
                codes::REFERENCE,
                c,
                format!("route {} uses unknown collection `{c}`", route.path),
                "declare it under `collections:`",
            ));
        }
    }
    if route.source.is_none() && def.provenance.source.is_empty() {
        out.push(Diagnostic::new(
            codes::PROVENANCE,
            Severity::Warning,
            find_span(text, &route.path),
            format!("route {} names no source", route.path),
            "add `source:` with the vendor doc URL or the recorded exchange",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_toml_give_the_same_definition() {
        let yaml = "name: demo\nprovenance: {source: https://example.org}\nroutes:\n  - method: GET\n    path: /hello/{who}\n    response: {status: 200, body: {hi: '{{path.who}}'}}\n";
        let toml = "name = \"demo\"\n[provenance]\nsource = \"https://example.org\"\n[[routes]]\nmethod = \"GET\"\npath = \"/hello/{who}\"\n[routes.response]\nstatus = 200\nbody = { hi = \"{{path.who}}\" }\n";
        let (a, da) = parse_definition(yaml, Format::Yaml);
        let (b, db) = parse_definition(toml, Format::Toml);
        assert!(da.is_empty() && db.is_empty(), "{da:?} {db:?}");
        assert_eq!(a, b);
    }

    #[test]
    fn problems_are_reported_with_spans() {
        let yaml = "name: Bad Name\nroutes:\n  - path: /x/{\n    rate_limit: nope\n";
        let (def, diags) = parse_definition(yaml, Format::Yaml);
        assert!(def.is_some());
        let codes: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["LS053", "LS051", "LS052", "LS054"]);
        assert_eq!(diags[2].span.line, 4);
    }

    #[test]
    fn syntax_error_is_a_diagnostic_not_a_panic() {
        let (def, diags) = parse_definition("name: [", Format::Yaml);
        assert!(def.is_none());
        assert_eq!(diags[0].code, "LS050");
    }
}
