//! The built-in steps. Arguments are written in backticks; literals compared with JSON values
//! are JSON (`"text"`, `3`, `true`); a trailing `as {name}` saves the step's value.
//!
//! | Step | Value |
//! |------|-------|
//! | `the service is running` / `the service is still running` | |
//! | ``I send `METHOD /path` `` + `with header `K: V``, `with JSON `{..}``, `with body `..``, `to twin `NAME`` | response body |
//! | `the status is 200` / `4xx`, optionally `within 200 ms` | |
//! | `the response time is under 200 ms` | |
//! | ``the header `K` is `v` `` / `contains` / `is present` / `is absent` | |
//! | ``the JSON at `$.path` is LITERAL`` / `contains LITERAL` / `exists` / `has N items` | |
//! | ``I save the JSON at `$.path` `` (with `as {name}`) | the value |
//! | ``the body contains `text` `` / `does not contain` / `is` / `matches` | |
//! | ``I run `command` `` | standard output |
//! | `the exit code is 0`; ``the output contains `x` ``; ``the error output contains `x` `` | |
//! | ``twin `NAME` is reset``; ``twin `NAME` has `COLLECTION` `{json}` `` | stored id |
//! | ``twin `NAME` state at `$.path` is LITERAL`` | |
//! | ``twin `NAME` received N requests to `METHOD /path` `` (+ ``with body containing `x` ``) | |
//! | ``twin `NAME` fails `METHOD /path` with `rate_limit` `` (or a status code) | |
//! | `twin `NAME` clock advances by N ms`; ``the journal of twin `NAME` is cleared`` | |
//! | ``N clients send `METHOD /path` for T s`` (load) | |
//! | `p99 is under 150 ms` (p50/p90/p95/p99) + `and errors are under 1%`; `errors are under 1%` | |
//! | ``I send malformed variants of `METHOD /path` `` + `with JSON `{..}`` (adversarial) | |
//! | `no response is 5xx` + `and the service is still running` | |
//! | `I wait N ms` | |

// Every step has the same async signature so it fits `Builtin::run`, awaiting or not.
#![allow(clippy::unused_async)]

use crate::steps::{StepArgs, StepFailure, StepHandler, StepLibrary};
use crate::world::{HttpExchange, LoadOutcome, ProcessOutcome, VariantOutcome, World};
use crate::{CheckKind, FailureCategory as F};
use async_trait::async_trait;
use lightsout_stdx::process::{Limits, RunError, Until, run};
use regex::Regex;
use serde_json::Value;
use serde_json_path::JsonPath;
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

type Out = Result<Option<String>, StepFailure>;

/// A built-in step: a plain async function over the world and the arguments.
struct Builtin {
    run: for<'a> fn(&'a mut World, &'a StepArgs) -> crate::steps::StepFuture<'a>,
    validate: fn(&StepArgs) -> Result<(), String>,
}

#[async_trait]
impl StepHandler for Builtin {
    async fn run(&self, world: &mut World, args: &StepArgs) -> Out {
        (self.run)(world, args).await
    }
    fn validate(&self, args: &StepArgs) -> Result<(), String> {
        (self.validate)(args)
    }
}

#[allow(clippy::unnecessary_wraps)] // must match the `validate` fn-pointer signature
fn ok(_: &StepArgs) -> Result<(), String> {
    Ok(())
}

macro_rules! step {
    ($lib:expr, $pat:expr, $ex:expr, $value:expr, $kind:expr, $f:ident) => {
        step!($lib, $pat, $ex, $value, $kind, $f, ok)
    };
    ($lib:expr, $pat:expr, $ex:expr, $value:expr, $kind:expr, $f:ident, $v:ident) => {
        $lib.add_builtin(
            $pat,
            $ex,
            $value,
            $kind,
            Arc::new(Builtin {
                run: |w, a| Box::pin($f(w, a)),
                validate: $v,
            }),
        )
    };
}

const B: CheckKind = CheckKind::Behavioural;

/// Registers every built-in step into `lib`, family by family, in a fixed order.
pub(crate) fn register_all(lib: &mut StepLibrary) {
    register_lifecycle(lib);
    register_http(lib);
    register_processes(lib);
    register_twins(lib);
    register_load(lib);
    register_adversarial(lib);
}

/// Lifecycle: the service under test, waiting.
fn register_lifecycle(lib: &mut StepLibrary) {
    step!(
        lib,
        r"the (?:service|target) is (?:still )?running",
        "the service is running",
        false,
        B,
        service_running
    );
    step!(
        lib,
        r"I wait (?P<ms>\d+) ms",
        "I wait 100 ms",
        false,
        B,
        wait
    );
}

/// HTTP: requests, status, latency, headers, JSON and body checks.
fn register_http(lib: &mut StepLibrary) {
    step!(
        lib,
        r"I send `(?P<method>[A-Z]+) (?P<path>[^`\s]+)`(?P<rest>.*)",
        "I send `GET /get`",
        true,
        B,
        send,
        validate_send
    );
    step!(
        lib,
        r"the status is (?P<status>[1-5](?:\d\d|xx))(?: within (?P<ms>\d+) ms)?",
        "the status is 200",
        false,
        B,
        status_is
    );
    step!(
        lib,
        r"the response (?:time )?is (?:under|within) (?P<ms>\d+) ms",
        "the response time is under 200 ms",
        false,
        B,
        latency_under
    );
    step!(
        lib,
        r"the header `(?P<name>[^`]+)` (?P<op>is|contains|is present|is absent)(?: `(?P<value>[^`]*)`)?",
        "the header `Content-Type` contains `json`",
        false,
        B,
        header_check,
        validate_header
    );
    step!(
        lib,
        r"the JSON at `(?P<path>[^`]+)` (?P<op>is|contains|exists|has) ?(?P<value>.*)",
        "the JSON at `$.url` is \"http://x/get\"",
        false,
        B,
        json_check,
        validate_json_check
    );
    step!(
        lib,
        r"I save the JSON at `(?P<path>[^`]+)`",
        "I save the JSON at `$.origin`",
        true,
        B,
        json_save,
        validate_json_path
    );
    step!(
        lib,
        r"the body (?P<op>contains|does not contain|is|matches) `(?P<value>[^`]*)`",
        "the body contains `text`",
        false,
        B,
        body_check,
        validate_body
    );
}

/// Processes: running commands, exit codes, output.
fn register_processes(lib: &mut StepLibrary) {
    step!(
        lib,
        r"I run `(?P<cmd>[^`]+)`",
        "I run `echo hello`",
        true,
        B,
        run_process
    );
    step!(
        lib,
        r"the exit code is (?P<code>-?\d+)",
        "the exit code is 0",
        false,
        B,
        exit_code
    );
    step!(
        lib,
        r"the (?P<stream>output|error output) (?P<op>contains|does not contain|is) `(?P<value>[^`]*)`",
        "the output contains `hello`",
        false,
        B,
        output_check
    );
}

/// Twins: reset, seed, state, journal, faults, clock.
fn register_twins(lib: &mut StepLibrary) {
    step!(
        lib,
        r"twin `(?P<twin>[^`]+)` is reset",
        "twin `slack` is reset",
        false,
        B,
        twin_reset
    );
    step!(
        lib,
        r"twin `(?P<twin>[^`]+)` has `(?P<coll>[^`]+)` `(?P<json>[^`]+)`",
        "twin `slack` has `users` `{\"name\":\"ann\"}`",
        true,
        B,
        twin_seed,
        validate_twin_seed
    );
    step!(
        lib,
        r"twin `(?P<twin>[^`]+)` state at `(?P<path>[^`]+)` (?P<op>is|contains|exists|has) ?(?P<value>.*)",
        "twin `slack` state at `$.users[0].name` is \"ann\"",
        false,
        B,
        twin_state_check,
        validate_json_check
    );
    step!(
        lib,
        r"twin `(?P<twin>[^`]+)` received (?P<count>\d+|no|a|one) requests? to `(?P<method>[A-Z]+) (?P<path>[^`\s]+)`(?: with body containing `(?P<contains>[^`]*)`)?",
        "twin `slack` received 1 request to `POST /api/chat.postMessage`",
        false,
        B,
        twin_received
    );
    step!(
        lib,
        r"twin `(?P<twin>[^`]+)` fails `(?P<route>[A-Z]+ [^`]+)` with `(?P<fault>[^`]+)`(?: (?P<times>\d+) times?)?",
        "twin `slack` fails `POST /api/chat.postMessage` with `rate_limit`",
        false,
        B,
        twin_fault
    );
    step!(
        lib,
        r"twin `(?P<twin>[^`]+)` clock advances by (?P<ms>\d+) ms",
        "twin `slack` clock advances by 1000 ms",
        false,
        B,
        twin_clock
    );
    step!(
        lib,
        r"the journal of twin `(?P<twin>[^`]+)` is cleared",
        "the journal of twin `slack` is cleared",
        false,
        B,
        twin_journal_clear
    );
}

/// Load: concurrent clients, latency quantiles, error rates.
fn register_load(lib: &mut StepLibrary) {
    step!(
        lib,
        r"(?P<clients>\d+) clients? sends? `(?P<method>[A-Z]+) (?P<path>[^`\s]+)` for (?P<secs>\d+(?:\.\d+)?) ?s(?:econds?)?",
        "10 clients send `GET /get` for 2 s",
        false,
        CheckKind::Load,
        load_run,
        validate_load
    );
    step!(
        lib,
        r"(?P<q>p50|p90|p95|p99|p999) is under (?P<ms>\d+(?:\.\d+)?) ms(?: and errors are under (?P<err>\d+(?:\.\d+)?) ?%)?",
        "p99 is under 150 ms and errors are under 1%",
        false,
        CheckKind::Load,
        load_quantile
    );
    step!(
        lib,
        r"errors are under (?P<err>\d+(?:\.\d+)?) ?%",
        "errors are under 1%",
        false,
        CheckKind::Load,
        load_errors
    );
}

/// Adversarial: malformed variants, no 5xx.
fn register_adversarial(lib: &mut StepLibrary) {
    step!(
        lib,
        r"I send malformed variants of `(?P<method>[A-Z]+) (?P<path>[^`\s]+)`(?: with JSON `(?P<json>[^`]*)`)?",
        "I send malformed variants of `POST /post` with JSON `{\"a\":1}`",
        false,
        CheckKind::Adversarial,
        adversarial_send,
        validate_adversarial
    );
    step!(
        lib,
        r"no response is 5xx(?P<alive> and the (?:service|target) is still running)?",
        "no response is 5xx and the service is still running",
        false,
        CheckKind::Adversarial,
        adversarial_check
    );
}

// ---------------------------------------------------------------- lifecycle

async fn service_running(w: &mut World, _: &StepArgs) -> Out {
    w.target
        .check(&w.client, w.step_timeout)
        .await
        .map_err(|m| StepFailure::new(F::TargetDown, m))?;
    Ok(None)
}

async fn wait(w: &mut World, a: &StepArgs) -> Out {
    let ms: u64 = a.num("ms")?;
    let _ = w;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(None)
}

// ---------------------------------------------------------------- HTTP

static SEND_OPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:with|and)\s+(?P<kind>header|JSON|body)\s+`(?P<value>[^`]*)`|^\s*to twin\s+`(?P<twin>[^`]+)`")
        .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});

/// A parsed request: headers, body and content type, and an optional twin base.
#[derive(Debug, Default)]
struct RequestOpts {
    headers: Vec<(String, String)>,
    body: Option<(Vec<u8>, Option<&'static str>)>,
    twin: Option<String>,
}

fn parse_send_rest(rest: &str) -> Result<RequestOpts, String> {
    let mut opts = RequestOpts::default();
    let mut rest = rest;
    while !rest.trim().is_empty() {
        let Some(c) = SEND_OPT.captures(rest) else {
            return Err(format!(
                "cannot read `{}`; expected `with header `K: V``, `with JSON `...``, `with body `...`` or `to twin `NAME``",
                rest.trim()
            ));
        };
        if let Some(t) = c.name("twin") {
            opts.twin = Some(t.as_str().to_owned());
        } else {
            let value = c["value"].to_owned();
            match &c["kind"] {
                "header" => {
                    let Some((k, v)) = value.split_once(':') else {
                        return Err(format!("header `{value}` has no `:`"));
                    };
                    opts.headers
                        .push((k.trim().to_owned(), v.trim().to_owned()));
                }
                "JSON" => opts.body = Some((value.into_bytes(), Some("application/json"))),
                _ => opts.body = Some((value.into_bytes(), None)),
            }
        }
        rest = &rest[c.get(0).map_or(rest.len(), |m| m.end())..];
    }
    Ok(opts)
}

fn validate_send(a: &StepArgs) -> Result<(), String> {
    let opts = parse_send_rest(a.str("rest"))?;
    if let Some((body, Some(_))) = &opts.body {
        let text = String::from_utf8_lossy(body);
        // Variables may stand for JSON values; check the JSON only when it has none.
        if !text.contains('{') || serde_json::from_str::<Value>(&text).is_ok() || has_vars(&text) {
            return Ok(());
        }
        return Err(format!("the JSON body `{text}` is not valid JSON"));
    }
    Ok(())
}

fn has_vars(text: &str) -> bool {
    static VAR: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\{[A-Za-z_][A-Za-z0-9_.-]*\}").unwrap_or_else(|e| unreachable!("{e}"))
    });
    VAR.is_match(text)
}

fn http_failure(e: &reqwest::Error) -> StepFailure {
    if e.is_timeout() {
        StepFailure::new(F::Timeout, format!("the request timed out: {e}"))
    } else {
        StepFailure::new(F::Connection, format!("the request failed: {e}"))
    }
}

/// Sends one request and reads the whole response.
pub(crate) async fn exchange(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<(Vec<u8>, Option<&'static str>)>,
    timeout: Duration,
) -> Result<HttpExchange, reqwest::Error> {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = client.request(m, url).timeout(timeout);
    let mut has_ct = false;
    for (k, v) in headers {
        has_ct |= k.eq_ignore_ascii_case("content-type");
        req = req.header(k, v);
    }
    if let Some((bytes, ct)) = body {
        if let (Some(ct), false) = (ct, has_ct) {
            req = req.header("content-type", ct);
        }
        req = req.body(bytes);
    }
    let start = Instant::now();
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in resp.headers() {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        map.entry(k.as_str().to_owned())
            .and_modify(|old| {
                old.push_str(", ");
                old.push_str(&v);
            })
            .or_insert(v);
    }
    let body = resp.bytes().await?.to_vec();
    Ok(HttpExchange {
        method: method.to_owned(),
        url: url.to_owned(),
        status,
        headers: map,
        body,
        elapsed: start.elapsed(),
    })
}

async fn send(w: &mut World, a: &StepArgs) -> Out {
    let opts = parse_send_rest(a.str("rest")).map_err(|m| StepFailure::new(F::StepError, m))?;
    let path = a.str("path");
    let url = match &opts.twin {
        Some(t) => format!("{}{}", twin_base(w, t)?, path),
        None => w.url(path),
    };
    let ex = exchange(
        &w.client,
        a.str("method"),
        &url,
        &opts.headers,
        opts.body,
        w.step_timeout,
    )
    .await
    .map_err(|e| http_failure(&e))?;
    let text = ex.text();
    w.last = Some(ex);
    Ok(Some(text))
}

fn last(w: &World) -> Result<&HttpExchange, StepFailure> {
    w.last
        .as_ref()
        .ok_or_else(|| StepFailure::new(F::StepError, "no request has been sent yet"))
}

async fn status_is(w: &mut World, a: &StepArgs) -> Out {
    let ex = last(w)?;
    let want = a.str("status");
    let ok = if let Some(class) = want.strip_suffix("xx") {
        ex.status / 100 == class.parse::<u16>().unwrap_or(0)
    } else {
        want.parse::<u16>().is_ok_and(|s| s == ex.status)
    };
    if !ok {
        return Err(StepFailure::new(
            F::Status,
            format!(
                "expected status {want}, got {} from {} {}",
                ex.status, ex.method, ex.url
            ),
        ));
    }
    if a.get("ms").is_some() {
        check_latency(ex, a.num("ms")?)?;
    }
    Ok(None)
}

fn check_latency(ex: &HttpExchange, ms: u64) -> Result<(), StepFailure> {
    let took = ex.elapsed.as_secs_f64() * 1000.0;
    if took > ms as f64 {
        return Err(StepFailure::new(
            F::Latency,
            format!("expected a response within {ms} ms, it took {took:.1} ms"),
        ));
    }
    Ok(())
}

async fn latency_under(w: &mut World, a: &StepArgs) -> Out {
    check_latency(last(w)?, a.num("ms")?)?;
    Ok(None)
}

fn validate_header(a: &StepArgs) -> Result<(), String> {
    match (a.str("op"), a.get("value")) {
        ("is" | "contains", None) => Err(format!("`{}` needs a value in backticks", a.str("op"))),
        ("is present" | "is absent", Some(_)) => Err(format!("`{}` takes no value", a.str("op"))),
        _ => Ok(()),
    }
}

async fn header_check(w: &mut World, a: &StepArgs) -> Out {
    let ex = last(w)?;
    let name = a.str("name").to_ascii_lowercase();
    let got = ex.headers.get(&name);
    let want = a.str("value");
    let ok = match (a.str("op"), got) {
        ("is present", g) => g.is_some(),
        ("is absent", g) => g.is_none(),
        ("is", Some(g)) => g == want,
        ("contains", Some(g)) => g.to_lowercase().contains(&want.to_lowercase()),
        _ => false,
    };
    if ok {
        Ok(None)
    } else {
        Err(StepFailure::new(
            F::Header,
            format!("header `{name}` {} `{want}`: got {got:?}", a.str("op")),
        ))
    }
}

fn validate_json_path(a: &StepArgs) -> Result<(), String> {
    JsonPath::parse(a.str("path"))
        .map(|_| ())
        .map_err(|e| format!("`{}` is not a JSONPath (RFC 9535): {e}", a.str("path")))
}

fn validate_json_check(a: &StepArgs) -> Result<(), String> {
    validate_json_path(a)?;
    let v = a.str("value").trim();
    match a.str("op") {
        "exists" if !v.is_empty() => Err("`exists` takes no value".to_owned()),
        "is" | "contains" if v.is_empty() => Err(format!("`{}` needs a value", a.str("op"))),
        "has" if !HAS_ITEMS.is_match(v) => Err("write `has N items`".to_owned()),
        _ => Ok(()),
    }
}

static HAS_ITEMS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<n>\d+) (?:items?|entries|entry|keys?|elements?)$")
        .unwrap_or_else(|e| unreachable!("{e}"))
});

/// A JSON literal as written, or the text as a string when it is not JSON.
fn literal(text: &str) -> Value {
    let t = text.trim();
    serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_owned()))
}

fn query<'v>(doc: &'v Value, path: &str) -> Result<Option<&'v Value>, StepFailure> {
    let p = JsonPath::parse(path)
        .map_err(|e| StepFailure::new(F::StepError, format!("bad JSONPath `{path}`: {e}")))?;
    Ok(p.query(doc).first())
}

/// Checks `op value` on the value at `path` of `doc`.
fn json_assert(doc: &Value, path: &str, op: &str, value: &str, cat: F) -> Result<(), StepFailure> {
    let got = query(doc, path)?;
    let fail = |m: String| Err(StepFailure::new(cat, m));
    match (op, got) {
        ("exists", Some(_)) => Ok(()),
        (_, None) => fail(format!("nothing at `{path}`")),
        ("is", Some(g)) => {
            let want = literal(value);
            if *g == want {
                Ok(())
            } else {
                fail(format!("at `{path}` expected {want}, got {g}"))
            }
        }
        ("contains", Some(g)) => {
            let want = literal(value);
            let ok = match (g, &want) {
                (Value::String(s), Value::String(w)) => s.contains(w.as_str()),
                (Value::Array(items), w) => items.contains(w),
                (Value::Object(map), Value::String(k)) => map.contains_key(k),
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                fail(format!(
                    "at `{path}` expected something containing {want}, got {g}"
                ))
            }
        }
        ("has", Some(g)) => {
            let n: usize = HAS_ITEMS
                .captures(value.trim())
                .and_then(|c| c["n"].parse().ok())
                .unwrap_or(usize::MAX);
            let len = match g {
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                Value::String(s) => s.chars().count(),
                _ => usize::MAX - 1,
            };
            if len == n {
                Ok(())
            } else {
                fail(format!("at `{path}` expected {n} items, got {g}"))
            }
        }
        _ => fail(format!("unknown JSON check `{op}`")),
    }
}

fn last_json(w: &World) -> Result<Value, StepFailure> {
    let ex = last(w)?;
    ex.json().ok_or_else(|| {
        StepFailure::new(
            F::Json,
            format!("the response body of {} {} is not JSON", ex.method, ex.url),
        )
    })
}

async fn json_check(w: &mut World, a: &StepArgs) -> Out {
    let doc = last_json(w)?;
    json_assert(&doc, a.str("path"), a.str("op"), a.str("value"), F::Json)?;
    Ok(None)
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn json_save(w: &mut World, a: &StepArgs) -> Out {
    let doc = last_json(w)?;
    let v = query(&doc, a.str("path"))?
        .ok_or_else(|| StepFailure::new(F::Json, format!("nothing at `{}`", a.str("path"))))?;
    Ok(Some(value_text(v)))
}

fn validate_body(a: &StepArgs) -> Result<(), String> {
    if a.str("op") == "matches" {
        Regex::new(a.str("value")).map_err(|e| format!("bad regex: {e}"))?;
    }
    Ok(())
}

fn text_assert(got: &str, op: &str, want: &str, what: &str, cat: F) -> Result<(), StepFailure> {
    let ok = match op {
        "contains" => got.contains(want),
        "does not contain" => !got.contains(want),
        "is" => got.trim_end() == want,
        "matches" => Regex::new(want).is_ok_and(|r| r.is_match(got)),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        let shown: String = got.chars().take(200).collect();
        Err(StepFailure::new(
            cat,
            format!("{what} {op} `{want}`: got `{shown}`"),
        ))
    }
}

async fn body_check(w: &mut World, a: &StepArgs) -> Out {
    let text = last(w)?.text();
    text_assert(
        &text,
        a.str("op"),
        a.str("value"),
        "expected the body",
        F::Body,
    )?;
    Ok(None)
}

// ---------------------------------------------------------------- processes

async fn run_process(w: &mut World, a: &StepArgs) -> Out {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(a.str("cmd")).env("BASE_URL", &w.base_url);
    // Until both pipes close, as `wait_with_output`; the whole group is killed at the end,
    // at the step's timeout, and if the trial times out while we wait.
    let limits = Limits {
        until: Until::Eof,
        ..Limits::wall(w.step_timeout)
    };
    let out = run(cmd, None, &limits).await.map_err(|e| match e {
        RunError::Spawn(e) => {
            StepFailure::new(F::Process, format!("cannot start the command: {e}"))
        }
        RunError::Wait(e) => StepFailure::new(F::Process, format!("waiting for the command: {e}")),
    })?;
    if out.limit.is_some() {
        return Err(StepFailure::new(
            F::Timeout,
            "the command did not finish in time",
        ));
    }
    let outcome = ProcessOutcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let stdout = outcome.stdout.clone();
    w.process = Some(outcome);
    Ok(Some(stdout))
}

fn process(w: &World) -> Result<&ProcessOutcome, StepFailure> {
    w.process
        .as_ref()
        .ok_or_else(|| StepFailure::new(F::StepError, "no command has been run yet"))
}

async fn exit_code(w: &mut World, a: &StepArgs) -> Out {
    let want: i32 = a.num("code")?;
    let got = process(w)?.code;
    if got == Some(want) {
        Ok(None)
    } else {
        Err(StepFailure::new(
            F::Process,
            format!("expected exit code {want}, got {got:?}"),
        ))
    }
}

async fn output_check(w: &mut World, a: &StepArgs) -> Out {
    let p = process(w)?;
    let (text, what) = if a.str("stream") == "output" {
        (&p.stdout, "expected the output")
    } else {
        (&p.stderr, "expected the error output")
    };
    text_assert(text, a.str("op"), a.str("value"), what, F::Output)?;
    Ok(None)
}

// ---------------------------------------------------------------- twins (/__twin/ control API)

fn twin_base(w: &World, name: &str) -> Result<String, StepFailure> {
    w.twins.get(name).cloned().ok_or_else(|| {
        StepFailure::new(
            F::TwinUnavailable,
            format!("no twin named `{name}`; pass --twin {name}=URL"),
        )
    })
}

async fn twin_call(
    w: &World,
    name: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<HttpExchange, StepFailure> {
    let url = format!("{}/__twin/{path}", twin_base(w, name)?);
    let body = body.map(|b| (b.to_string().into_bytes(), Some("application/json")));
    let ex = exchange(&w.client, method, &url, &[], body, w.step_timeout)
        .await
        .map_err(|e| StepFailure::new(F::TwinUnavailable, format!("twin `{name}`: {e}")))?;
    if ex.status >= 300 {
        return Err(StepFailure::new(
            F::TwinUnavailable,
            format!(
                "twin `{name}` answered {} to {method} /__twin/{path}: {}",
                ex.status,
                ex.text()
            ),
        ));
    }
    Ok(ex)
}

async fn twin_reset(w: &mut World, a: &StepArgs) -> Out {
    twin_call(w, a.str("twin"), "POST", "reset", None).await?;
    Ok(None)
}

fn validate_twin_seed(a: &StepArgs) -> Result<(), String> {
    let j = a.str("json");
    if has_vars(j) {
        return Ok(());
    }
    match serde_json::from_str::<Value>(j) {
        Ok(Value::Object(_)) => Ok(()),
        _ => Err(format!("`{j}` is not a JSON object")),
    }
}

async fn twin_seed(w: &mut World, a: &StepArgs) -> Out {
    let obj: Value = serde_json::from_str(a.str("json"))
        .map_err(|e| StepFailure::new(F::StepError, format!("seed is not JSON: {e}")))?;
    let ex = twin_call(
        w,
        a.str("twin"),
        "POST",
        &format!("state/{}", a.str("coll")),
        Some(obj),
    )
    .await?;
    let stored = ex.json().unwrap_or(Value::Null);
    Ok(Some(
        stored
            .get("id")
            .map_or_else(|| stored.to_string(), value_text),
    ))
}

async fn twin_state_check(w: &mut World, a: &StepArgs) -> Out {
    let ex = twin_call(w, a.str("twin"), "GET", "state", None).await?;
    let doc = ex.json().unwrap_or(Value::Null);
    json_assert(
        &doc,
        a.str("path"),
        a.str("op"),
        a.str("value"),
        F::TwinState,
    )?;
    Ok(None)
}

async fn twin_received(w: &mut World, a: &StepArgs) -> Out {
    let count: u64 = match a.str("count") {
        "no" => 0,
        "a" | "one" => 1,
        n => n.parse().unwrap_or(0),
    };
    let mut q = serde_json::json!({
        "method": a.str("method"),
        "path": a.str("path"),
        "count": count,
    });
    if let Some(c) = a.get("contains") {
        q["body_contains"] = Value::String(c.to_owned());
    }
    let ex = twin_call(w, a.str("twin"), "POST", "journal/verify", Some(q)).await?;
    let v = ex.json().unwrap_or(Value::Null);
    if v.get("ok").and_then(Value::as_bool) == Some(true) {
        Ok(None)
    } else {
        let matched = v.get("matched").cloned().unwrap_or(Value::Null);
        Err(StepFailure::new(
            F::TwinJournal,
            format!(
                "twin `{}` expected {count} request(s) to {} {}, matched {matched}",
                a.str("twin"),
                a.str("method"),
                a.str("path")
            ),
        ))
    }
}

async fn twin_fault(w: &mut World, a: &StepArgs) -> Out {
    let fault = a.str("fault");
    let mut body = if let Ok(status) = fault.parse::<u16>() {
        serde_json::json!({"route": a.str("route"), "fault": "status", "status": status})
    } else {
        serde_json::json!({"route": a.str("route"), "fault": fault})
    };
    if let Some(t) = a.get("times") {
        body["times"] = Value::from(t.parse::<u64>().unwrap_or(1));
    }
    twin_call(w, a.str("twin"), "POST", "faults", Some(body)).await?;
    Ok(None)
}

async fn twin_clock(w: &mut World, a: &StepArgs) -> Out {
    let ms: u64 = a.num("ms")?;
    twin_call(
        w,
        a.str("twin"),
        "POST",
        "clock",
        Some(serde_json::json!({"advance_ms": ms})),
    )
    .await?;
    Ok(None)
}

async fn twin_journal_clear(w: &mut World, a: &StepArgs) -> Out {
    twin_call(w, a.str("twin"), "DELETE", "journal", None).await?;
    Ok(None)
}

// ---------------------------------------------------------------- load

fn validate_load(a: &StepArgs) -> Result<(), String> {
    let clients: u32 = a.str("clients").parse().map_err(|_| "bad client count")?;
    let secs: f64 = a.str("secs").parse().map_err(|_| "bad duration")?;
    if clients == 0 || clients > 10_000 {
        return Err("clients must be between 1 and 10000".to_owned());
    }
    if !(secs > 0.0 && secs <= 3600.0) {
        return Err("the duration must be between 0 and 3600 s".to_owned());
    }
    Ok(())
}

async fn load_run(w: &mut World, a: &StepArgs) -> Out {
    let clients: u32 = a.num("clients")?;
    let secs: f64 = a.num("secs")?;
    let method = reqwest::Method::from_bytes(a.str("method").as_bytes())
        .map_err(|_| StepFailure::new(F::StepError, "bad method"))?;
    let url = w.url(a.str("path"));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let timeout = w.step_timeout;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let client = w.client.clone();
        let url = url.clone();
        let method = method.clone();
        tasks.spawn(async move {
            let mut hist = new_histogram();
            let (mut requests, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let sent = Instant::now();
                let res = client
                    .request(method.clone(), &url)
                    .timeout(timeout)
                    .send()
                    .await;
                let failed = match res {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        r.bytes().await.is_err() || !(200..400).contains(&s)
                    }
                    Err(_) => true,
                };
                let us = sent.elapsed().as_micros() as u64;
                let _ = hist.record(us.clamp(1, MAX_US));
                requests += 1;
                errors += u64::from(failed);
            }
            (hist, requests, errors)
        });
    }
    let mut hist = new_histogram();
    let (mut requests, mut errors) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let (client_hist, client_requests, client_errors) = r.map_err(|err| {
            StepFailure::new(F::StepError, format!("a load client crashed: {err}"))
        })?;
        let _ = hist.add(&client_hist);
        requests += client_requests;
        errors += client_errors;
    }
    w.load = Some(LoadOutcome {
        histogram: hist,
        requests,
        errors,
        elapsed: start.elapsed(),
    });
    Ok(None)
}

const MAX_US: u64 = 3_600_000_000;

fn new_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, MAX_US, 3)
        .unwrap_or_else(|e| unreachable!("static histogram bounds: {e}"))
}

fn load_outcome(w: &World) -> Result<&LoadOutcome, StepFailure> {
    w.load
        .as_ref()
        .ok_or_else(|| StepFailure::new(F::StepError, "no load phase has run yet"))
}

fn check_errors(l: &LoadOutcome, max_pct: f64) -> Result<(), StepFailure> {
    let pct = if l.requests == 0 {
        100.0
    } else {
        l.errors as f64 * 100.0 / l.requests as f64
    };
    if pct < max_pct || (l.requests > 0 && l.errors == 0) {
        Ok(())
    } else {
        Err(StepFailure::new(
            F::LoadErrors,
            format!(
                "error rate {pct:.2}% ({} of {} requests) is not under {max_pct}%",
                l.errors, l.requests
            ),
        ))
    }
}

async fn load_quantile(w: &mut World, a: &StepArgs) -> Out {
    let l = load_outcome(w)?;
    let q = match a.str("q") {
        "p50" => 0.50,
        "p90" => 0.90,
        "p95" => 0.95,
        "p999" => 0.999,
        _ => 0.99,
    };
    let limit: f64 = a.num("ms")?;
    if l.requests == 0 {
        return Err(StepFailure::new(F::LoadLatency, "no request completed"));
    }
    let got = l.histogram.value_at_quantile(q) as f64 / 1000.0;
    if got >= limit {
        return Err(StepFailure::new(
            F::LoadLatency,
            format!(
                "{} is {got:.1} ms, not under {limit} ms ({} requests)",
                a.str("q"),
                l.requests
            ),
        ));
    }
    if a.get("err").is_some() {
        check_errors(l, a.num("err")?)?;
    }
    Ok(None)
}

async fn load_errors(w: &mut World, a: &StepArgs) -> Out {
    check_errors(load_outcome(w)?, a.num("err")?)?;
    Ok(None)
}

// ---------------------------------------------------------------- adversarial

fn validate_adversarial(a: &StepArgs) -> Result<(), String> {
    match a.get("json") {
        Some(j) if !has_vars(j) => serde_json::from_str::<Value>(j)
            .map(|_| ())
            .map_err(|e| format!("the base JSON is not valid: {e}")),
        _ => Ok(()),
    }
}

async fn adversarial_send(w: &mut World, a: &StepArgs) -> Out {
    let method = a.str("method").to_owned();
    let base = a.get("json").map(str::to_owned);
    let variants = crate::adversarial::variants(a.str("path"), base.as_deref());
    let mut outcomes = Vec::with_capacity(variants.len());
    for v in variants {
        let url = w.url(&v.path);
        let body = v.body.map(|b| (b, Some(v.content_type)));
        let status = exchange(&w.client, &method, &url, &[], body, w.step_timeout)
            .await
            .ok()
            .map(|ex| ex.status);
        outcomes.push(VariantOutcome {
            family: v.family,
            status,
        });
    }
    w.adversarial = Some(outcomes);
    Ok(None)
}

async fn adversarial_check(w: &mut World, a: &StepArgs) -> Out {
    let outcomes = w.adversarial.as_ref().ok_or_else(|| {
        StepFailure::new(F::StepError, "no malformed variants have been sent yet")
    })?;
    let bad: Vec<String> = outcomes
        .iter()
        .filter(|o| o.status.is_none_or(|s| s >= 500))
        .map(|o| match o.status {
            Some(s) => format!("{} → {s}", o.family),
            None => format!("{} → no response", o.family),
        })
        .collect();
    if !bad.is_empty() {
        return Err(StepFailure::new(
            F::Adversarial,
            format!(
                "{} of {} malformed variants failed: {}",
                bad.len(),
                outcomes.len(),
                bad.join(", ")
            ),
        ));
    }
    if a.get("alive").is_some() {
        w.target
            .check(&w.client, w.step_timeout)
            .await
            .map_err(|m| StepFailure::new(F::TargetDown, format!("after malformed input: {m}")))?;
    }
    Ok(None)
}
