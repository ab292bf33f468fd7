//! Loopback servers for the tests.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use lightsout_eval::{StepLibrary, Suite};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Serves `router` on a free loopback port; returns the base URL. The server lives as long as
/// the test's runtime.
pub(crate) async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

/// A small service under test.
pub(crate) fn target_app() -> Router {
    let counter = Arc::new(AtomicU64::new(0));
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/echo",
            get(
                |Query(q): Query<HashMap<String, String>>, headers: HeaderMap| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    Json(json!({"args": q, "auth": auth}))
                },
            ),
        )
        .route(
            "/items",
            post(|body: String| async move {
                match serde_json::from_str::<Value>(&body) {
                    Ok(Value::Object(mut m)) => {
                        m.insert("id".into(), json!("item-1"));
                        (StatusCode::CREATED, Json(Value::Object(m)))
                    }
                    _ => (StatusCode::BAD_REQUEST, Json(json!({"error": "bad json"}))),
                }
            }),
        )
        .route(
            "/fragile",
            post(|body: String| async move {
                // A deliberately fragile endpoint: huge input is a server error.
                if body.len() > 10_000 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }),
        )
        .route(
            "/flaky",
            get(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n.is_multiple_of(2) {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
}

/// The state of the fake twin.
#[derive(Default)]
pub(crate) struct TwinState {
    pub(crate) resets: AtomicU64,
    pub(crate) state: std::sync::Mutex<serde_json::Map<String, Value>>,
    pub(crate) journal: std::sync::Mutex<Vec<(String, String, String)>>,
    pub(crate) faults: std::sync::Mutex<Vec<Value>>,
    /// The body of `GET /__twin/lifecycle`; `None` answers 404 (an older twin).
    pub(crate) lifecycle: std::sync::Mutex<Option<Value>>,
}

/// A fake twin implementing the `/__twin/` contract (twin-api.md) and one vendor route.
pub(crate) fn twin_app(st: Arc<TwinState>) -> Router {
    Router::new()
        .route(
            "/__twin/reset",
            post(|State(s): State<Arc<TwinState>>| async move {
                s.resets.fetch_add(1, Ordering::SeqCst);
                s.state.lock().unwrap().clear();
                s.journal.lock().unwrap().clear();
                s.faults.lock().unwrap().clear();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/__twin/state",
            get(|State(s): State<Arc<TwinState>>| async move {
                Json(Value::Object(s.state.lock().unwrap().clone()))
            }),
        )
        .route(
            "/__twin/state/{collection}",
            post(
                |State(s): State<Arc<TwinState>>, Path(c): Path<String>, Json(mut obj): Json<Value>| async move {
                    let mut st = s.state.lock().unwrap();
                    let coll = st.entry(c).or_insert_with(|| json!([]));
                    let items = coll.as_array_mut().unwrap();
                    if obj.get("id").is_none() {
                        obj["id"] = json!(format!("U{}", items.len() + 1));
                    }
                    items.push(obj.clone());
                    (StatusCode::CREATED, Json(obj))
                },
            ),
        )
        .route(
            "/__twin/lifecycle",
            get(|State(s): State<Arc<TwinState>>| async move {
                match s.lifecycle.lock().unwrap().clone() {
                    Some(v) => (StatusCode::OK, Json(v)),
                    None => (StatusCode::NOT_FOUND, Json(json!({"error": "unknown control endpoint"}))),
                }
            }),
        )
        .route(
            "/__twin/journal/stats",
            get(|State(s): State<Arc<TwinState>>| async move {
                let n = s.journal.lock().unwrap().len();
                Json(json!({"entries": n, "bytes": 0, "dropped": 0, "max_entries": 100, "max_bytes": 1000}))
            }),
        )
        .route(
            "/__twin/journal/verify",
            post(|State(s): State<Arc<TwinState>>, Json(q): Json<Value>| async move {
                let j = s.journal.lock().unwrap();
                let matched = j
                    .iter()
                    .filter(|(m, p, b)| {
                        Some(m.as_str()) == q["method"].as_str()
                            && Some(p.as_str()) == q["path"].as_str()
                            && q["body_contains"].as_str().is_none_or(|c| b.contains(c))
                    })
                    .count() as u64;
                let expected = q.get("count").and_then(Value::as_u64);
                Json(json!({"matched": matched, "expected": expected, "ok": expected.is_none_or(|e| e == matched)}))
            }),
        )
        .route(
            "/__twin/faults",
            post(|State(s): State<Arc<TwinState>>, Json(f): Json<Value>| async move {
                s.faults.lock().unwrap().push(f);
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/api/chat.postMessage",
            post(|State(s): State<Arc<TwinState>>, body: String| async move {
                if !s.faults.lock().unwrap().is_empty() {
                    return (StatusCode::TOO_MANY_REQUESTS, Json(json!({"ok": false, "error": "ratelimited"})));
                }
                s.journal.lock().unwrap().push(("POST".into(), "/api/chat.postMessage".into(), body));
                (StatusCode::OK, Json(json!({"ok": true})))
            }),
        )
        .with_state(st)
}

/// A suite from in-memory files, resolved against `lib`; panics on load diagnostics.
pub(crate) fn suite(files: &[(&str, &str)], lib: &StepLibrary) -> Suite {
    let mut s = Suite::default();
    let mut diags = Vec::new();
    for (path, src) in files {
        s.add_source(std::path::Path::new(path), src, &mut diags);
    }
    diags.extend(s.resolve(lib));
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == lightsout_spec::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    s
}
