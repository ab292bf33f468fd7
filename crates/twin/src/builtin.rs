//! Built-in twins: Slack Web API, GitHub REST and an Okta-style OIDC provider.
//!
//! The definitions live in `crates/twin/twins/*.yaml` (compiled in); each route names its
//! source. Slack's methods need conditional logic (parameters from query, form or JSON; `ok:false`
//! error codes), so they are written in Rust behind [`Behaviour`]; GitHub is purely declarative;
//! the OIDC endpoints use the engine's `oauth.*`/`oidc.*` handlers.

use crate::engine::{Behaviour, Context, Twin, TwinOptions, TwinResponse};
use crate::record::RecordedRequest;
use crate::{Error, Format, TwinDef, decode_cursor, encode_cursor, parse_definition};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// A built-in twin's name, one-line description and definition text.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// Name (`slack`, `github`, `okta`).
    pub name: &'static str,
    /// Definition YAML.
    pub yaml: &'static str,
}

/// All built-in twins.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "slack",
        yaml: include_str!("../twins/slack.yaml"),
    },
    Builtin {
        name: "github",
        yaml: include_str!("../twins/github.yaml"),
    },
    Builtin {
        name: "okta",
        yaml: include_str!("../twins/okta.yaml"),
    },
];

/// The parsed definition of a built-in twin.
///
/// # Errors
/// [`Error::UnknownTwin`] for other names; [`Error::Definition`] if a shipped file were broken
/// (a unit test guards against that).
pub fn definition(name: &str) -> Result<TwinDef, Error> {
    let b = BUILTINS
        .iter()
        .find(|b| b.name == name)
        .ok_or_else(|| Error::UnknownTwin(name.to_string()))?;
    let (def, diags) = parse_definition(b.yaml, Format::Yaml);
    match def {
        Some(d) if diags.is_empty() => Ok(d),
        _ => Err(Error::Definition(format!("built-in {name}: {diags:?}"))),
    }
}

/// Builds a built-in twin.
///
/// # Errors
/// As [`definition`].
pub fn load(name: &str, opts: TwinOptions) -> Result<Twin, Error> {
    let def = definition(name)?;
    match name {
        "slack" => Twin::with_behaviour(def, Arc::new(Slack), opts),
        _ => Twin::new(def, opts),
    }
}

/// Probe requests for drift checks of a built-in twin against the real service. They need
/// no credentials, so the real service's documented unauthenticated answers are compared.
pub fn probes(name: &str) -> Vec<RecordedRequest> {
    let get = |path: &str| RecordedRequest {
        method: "GET".into(),
        path: path.into(),
        query: String::new(),
        headers: vec![("accept".into(), "application/json".into())],
        body: Value::Null,
    };
    let post = |path: &str| RecordedRequest {
        method: "POST".into(),
        path: path.into(),
        query: String::new(),
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body: Value::String("channel=C0GENERAL1&text=hi".into()),
    };
    match name {
        "slack" => vec![
            post("/api/chat.postMessage"),
            post("/api/conversations.list"),
            get("/api/users.info"),
        ],
        "github" => vec![
            get("/repos/octocat/secret-plans"),
            get("/repos/octocat/secret-plans/issues"),
        ],
        "okta" => vec![get("/oauth2/default/v1/userinfo")],
        _ => Vec::new(),
    }
}

/// The Slack Web API methods (<https://api.slack.com/methods>).
#[derive(Debug, Clone, Copy, Default)]
pub struct Slack;

fn slack_err(code: &str) -> TwinResponse {
    TwinResponse::json(200, &json!({"ok": false, "error": code}))
}

fn slack_ok(mut body: Value) -> TwinResponse {
    body["ok"] = json!(true);
    // Keep `ok` first as Slack does: rebuild the object with it at the front.
    if let Value::Object(m) = body {
        let mut out = Map::new();
        out.insert("ok".into(), json!(true));
        out.extend(m.into_iter().filter(|(k, _)| k != "ok"));
        return TwinResponse::json(200, &Value::Object(out));
    }
    TwinResponse::json(200, &body)
}

/// Page size from `limit` (default 100; Slack clamps to 1..=1000).
fn slack_limit(cx: &Context<'_>, max: usize) -> usize {
    cx.req
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|&l| l > 0)
        .unwrap_or(100)
        .min(max)
}

/// Resolves `channel` (an id, `name` or `#name`) to the stored channel.
fn find_channel(cx: &Context<'_>) -> Option<Value> {
    let wanted = cx.req.param("channel")?;
    let name = wanted.trim_start_matches('#');
    cx.state
        .items("channels")
        .iter()
        .find(|c| c["id"] == wanted || c["name"] == name)
        .cloned()
}

/// `(start, page, next_cursor)` for cursor pagination over `n` items; `None` = bad cursor.
fn cursor_page(cx: &Context<'_>, n: usize, limit: usize) -> Option<(usize, String)> {
    let start = match cx.req.param("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => decode_cursor(&c).filter(|&s| s <= n)?,
    };
    let next = if start + limit < n {
        encode_cursor(start + limit)
    } else {
        String::new()
    };
    Some((start, next))
}

impl Behaviour for Slack {
    fn handle(&self, name: &str, cx: &mut Context<'_>) -> Option<TwinResponse> {
        Some(match name {
            // https://api.slack.com/methods/chat.postMessage — errors channel_not_found,
            // is_archived, no_text; ts is "<unix seconds>.<6 digits>", unique per channel.
            "chat.postMessage" => post_message(cx)?,
            // https://api.slack.com/methods/conversations.list — cursor pagination,
            // response_metadata.next_cursor empty at the end; exclude_archived.
            "conversations.list" => conversations_list(cx),
            // https://api.slack.com/methods/conversations.history — newest first, has_more,
            // response_metadata.next_cursor; channel_not_found.
            "conversations.history" => conversations_history(cx),
            // https://api.slack.com/methods/users.info — user_not_found.
            "users.info" => {
                let Some(id) = cx.req.param("user") else {
                    return Some(slack_err("user_not_found"));
                };
                match cx
                    .state
                    .items("users")
                    .iter()
                    .find(|u| u["id"] == id.as_str())
                {
                    Some(u) => slack_ok(json!({"user": u})),
                    None => slack_err("user_not_found"),
                }
            }
            // https://api.slack.com/methods/auth.test
            "auth.test" => {
                let user_id = cx.principal.map(|p| p.subject.clone()).unwrap_or_default();
                let user = cx
                    .state
                    .items("users")
                    .iter()
                    .find(|u| u["id"] == user_id.as_str())
                    .cloned()
                    .unwrap_or(Value::Null);
                slack_ok(
                    json!({"url": "https://twin.slack.com/", "team": "Twin Workspace", "user": user["name"], "team_id": "T0TWIN0001", "user_id": user_id}),
                )
            }
            _ => return None,
        })
    }
}

/// `chat.postMessage`: stores the message; `None` when the store refuses it.
fn post_message(cx: &mut Context<'_>) -> Option<TwinResponse> {
    let Some(channel) = find_channel(cx) else {
        return Some(slack_err("channel_not_found"));
    };
    if channel["is_archived"] == true {
        return Some(slack_err("is_archived"));
    }
    let text = cx.req.param("text").unwrap_or_default();
    if text.is_empty() && cx.req.param("blocks").is_none() && cx.req.param("attachments").is_none()
    {
        return Some(slack_err("no_text"));
    }
    let count = cx.state.items("messages").len() as u64;
    let ts = format!(
        "{}.{:06}",
        cx.now_ms / 1000,
        (cx.now_ms % 1000) * 1000 + count % 1000
    );
    let user = cx.principal.map(|p| p.subject.clone()).unwrap_or_default();
    let mut msg =
        json!({"type": "message", "user": user, "text": text, "ts": ts, "channel": channel["id"]});
    if let Some(t) = cx.req.param("thread_ts") {
        msg["thread_ts"] = json!(t);
    }
    let stored = cx.state.insert("messages", msg, cx.rng).ok()?;
    let mut shown = stored.clone();
    if let Value::Object(m) = &mut shown {
        m.remove("channel");
    }
    Some(slack_ok(
        json!({"channel": channel["id"], "ts": stored["ts"], "message": shown}),
    ))
}

/// `conversations.list`: the channels, a page at a time.
fn conversations_list(cx: &mut Context<'_>) -> TwinResponse {
    let exclude = cx
        .req
        .param("exclude_archived")
        .is_some_and(|v| v == "true" || v == "1");
    let all: Vec<Value> = cx
        .state
        .items("channels")
        .iter()
        .filter(|c| !(exclude && c["is_archived"] == true))
        .cloned()
        .collect();
    let limit = slack_limit(cx, 1000);
    let Some((start, next)) = cursor_page(cx, all.len(), limit) else {
        return slack_err("invalid_cursor");
    };
    let page: Vec<Value> = all.into_iter().skip(start).take(limit).collect();
    slack_ok(json!({"channels": page, "response_metadata": {"next_cursor": next}}))
}

/// `conversations.history`: a channel's messages, newest first, a page at a time.
fn conversations_history(cx: &mut Context<'_>) -> TwinResponse {
    let Some(channel) = find_channel(cx) else {
        return slack_err("channel_not_found");
    };
    let mut msgs: Vec<Value> = cx
        .state
        .items("messages")
        .iter()
        .filter(|m| m["channel"] == channel["id"])
        .map(|m| {
            let mut m = m.clone();
            if let Value::Object(o) = &mut m {
                o.remove("channel");
            }
            m
        })
        .collect();
    msgs.reverse();
    let limit = slack_limit(cx, 999);
    let Some((start, next)) = cursor_page(cx, msgs.len(), limit) else {
        return slack_err("invalid_cursor");
    };
    let has_more = !next.is_empty();
    let page: Vec<Value> = msgs.into_iter().skip(start).take(limit).collect();
    slack_ok(
        json!({"messages": page, "has_more": has_more, "pin_count": 0, "response_metadata": {"next_cursor": next}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TwinRequest;

    #[test]
    fn every_builtin_parses_cleanly_and_names_sources() {
        for b in BUILTINS {
            let def = definition(b.name).unwrap();
            assert!(
                def.routes.iter().all(|r| r
                    .source
                    .as_deref()
                    .is_some_and(|s| s.starts_with("https://"))),
                "{}",
                b.name
            );
            load(b.name, TwinOptions::default()).unwrap();
        }
        assert!(matches!(definition("jira"), Err(Error::UnknownTwin(_))));
    }

    #[test]
    fn slack_errors_are_ok_false() {
        let t = load("slack", TwinOptions::default()).unwrap();
        let call = |body: &str, token: Option<&str>| {
            let mut r = TwinRequest::new(http::Method::POST, "/api/chat.postMessage");
            r.headers.insert(
                "content-type",
                "application/x-www-form-urlencoded".parse().unwrap(),
            );
            if let Some(tk) = token {
                r.headers
                    .insert("authorization", format!("Bearer {tk}").parse().unwrap());
            }
            r.body = body.to_string().into();
            t.handle(&r).body_json()
        };
        assert_eq!(
            call("channel=C0GENERAL1&text=x", None)["error"],
            "not_authed"
        );
        assert_eq!(
            call("channel=C0GENERAL1&text=x", Some("xoxb-nope"))["error"],
            "invalid_auth"
        );
        assert_eq!(
            call("channel=C0GENERAL1&text=x", Some("xoxb-twin-readonly"))["error"],
            "missing_scope"
        );
        assert_eq!(
            call("channel=CNOPE&text=x&token=xoxb-twin-bot", None)["error"],
            "channel_not_found"
        );
    }
}
