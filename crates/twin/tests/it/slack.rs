//! The Slack twin over HTTP: cursor pagination to the end, ok:false errors, 429 then success
//! after Retry-After on the virtual clock.

use crate::support::{advance, client, serve};
use serde_json::{Value, json};

#[tokio::test]
async fn post_then_page_history_to_the_end() {
    let (_twin, server) = serve("slack").await;
    let (c, url) = (client(), server.url());
    for i in 0..7 {
        let r: Value = c
            .post(format!("{url}/api/chat.postMessage"))
            .bearer_auth("xoxb-twin-bot")
            .json(&json!({"channel": "C0GENERAL1", "text": format!("m{i}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["ok"], true, "{r}");
        advance(&c, &url, 1000).await; // stay under the 1/s chat.postMessage limit
    }
    let mut cursor = String::new();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r: Value = c
            .get(format!(
                "{url}/api/conversations.history?channel=C0GENERAL1&limit=3&cursor={cursor}"
            ))
            .bearer_auth("xoxb-twin-bot")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["ok"], true);
        pages += 1;
        seen.extend(
            r["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["text"].as_str().unwrap().to_string()),
        );
        cursor = r["response_metadata"]["next_cursor"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(r["has_more"], !cursor.is_empty());
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        ["m6", "m5", "m4", "m3", "m2", "m1", "m0"],
        "newest first, no gaps or repeats"
    );
    let bad: Value = c
        .get(format!("{url}/api/conversations.list?cursor=zzz"))
        .bearer_auth("xoxb-twin-bot")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bad, json!({"ok": false, "error": "invalid_cursor"}));
}

#[tokio::test]
async fn conversations_list_form_body_and_errors() {
    let (_twin, server) = serve("slack").await;
    let (c, url) = (client(), server.url());
    let r: Value = c
        .post(format!("{url}/api/conversations.list"))
        .form(&[
            ("token", "xoxb-twin-bot"),
            ("exclude_archived", "true"),
            ("limit", "1"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["channels"][0]["name"], "general");
    let next = r["response_metadata"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let r2: Value = c
        .post(format!("{url}/api/conversations.list"))
        .form(&[
            ("token", "xoxb-twin-bot"),
            ("exclude_archived", "true"),
            ("cursor", next.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r2["channels"].as_array().unwrap().len(),
        1,
        "archived channel excluded"
    );
    assert_eq!(r2["response_metadata"]["next_cursor"], "");
    let unauth = c
        .post(format!("{url}/api/users.info"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), 200);
    assert_eq!(
        unauth.json::<Value>().await.unwrap(),
        json!({"ok": false, "error": "not_authed"})
    );
    let u: Value = c
        .get(format!("{url}/api/users.info?user=U0NOBODY"))
        .bearer_auth("xoxb-twin-bot")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(u["error"], "user_not_found");
    let un = c
        .post(format!("{url}/api/files.upload"))
        .send()
        .await
        .unwrap();
    assert_eq!(un.status(), 501);
    assert_eq!(un.headers()["x-twin-unsupported"], "POST /api/files.upload");
}

#[tokio::test]
async fn rate_limited_then_success_after_retry_after_on_the_virtual_clock() {
    let (_twin, server) = serve("slack").await;
    let (c, url) = (client(), server.url());
    let post = || {
        c.post(format!("{url}/api/chat.postMessage"))
            .bearer_auth("xoxb-twin-bot")
            .json(&json!({"channel": "general", "text": "hi"}))
            .send()
    };
    assert_eq!(post().await.unwrap().status(), 200);
    let limited = post().await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_eq!(
        limited.json::<Value>().await.unwrap(),
        json!({"ok": false, "error": "ratelimited"})
    );
    advance(&c, &url, retry * 1000).await;
    let ok = post().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap()["ok"], true);
    // The journal saw all three; verification through the control API.
    let v: Value = c
        .post(format!("{url}/__twin/journal/verify"))
        .json(&json!({"method": "POST", "path": "/api/chat.postMessage", "count": 3}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["ok"], true, "{v}");
}

#[tokio::test]
async fn same_seed_same_ids() {
    let ids = |seed| {
        let t = lightsout_twin::builtin::load(
            "slack",
            lightsout_twin::TwinOptions {
                seed,
                latency: false,
                ..Default::default()
            },
        )
        .unwrap();
        let mut r = lightsout_twin::TwinRequest::new(http::Method::POST, "/__twin/state/channels");
        r.body = r#"{"name":"new"}"#.into();
        t.handle(&r).body_json()["id"].clone()
    };
    assert_eq!(ids(5), ids(5));
    assert_ne!(ids(5), ids(6));
}
