//! The GitHub twin over HTTP: issues CRUD, comments, Link pagination to the end,
//! X-RateLimit-* headers, 404 for private repositories.

use crate::support::{client, serve};
use reqwest::Client;
use serde_json::{Value, json};

fn next_link(h: &reqwest::header::HeaderMap) -> Option<String> {
    let link = h.get("link")?.to_str().ok()?;
    link.split(", ")
        .find(|p| p.ends_with("rel=\"next\""))
        .map(|p| p[1..p.find('>').unwrap()].to_string())
}

/// Creates issues "bug 0" to "bug 4" in `repo`: each is 201, numbered in order, and counts
/// against the X-RateLimit-* headers.
async fn create_five_issues(c: &Client, repo: &str) {
    for i in 0..5 {
        let r = c
            .post(format!("{repo}/issues"))
            .header("authorization", "token ghp_twin_octocat")
            .json(&json!({"title": format!("bug {i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert!(
            r.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                < 5000
        );
        assert_eq!(r.headers()["x-ratelimit-limit"], "5000");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["number"], i + 1);
        assert_eq!(body["url"], format!("{repo}/issues/{}", i + 1));
    }
}

/// Link pagination, newest first, to the end.
async fn assert_link_pagination_reaches_the_end(c: &Client, repo: &str) {
    let mut next = Some(format!("{repo}/issues?per_page=2"));
    let mut titles = Vec::new();
    let mut pages = 0;
    while let Some(u) = next {
        let r = c.get(&u).send().await.unwrap();
        assert_eq!(r.status(), 200);
        next = next_link(r.headers());
        let items: Vec<Value> = r.json().await.unwrap();
        titles.extend(
            items
                .iter()
                .map(|i| i["title"].as_str().unwrap().to_string()),
        );
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(titles, ["bug 4", "bug 3", "bug 2", "bug 1", "bug 0"]);
}

/// Update with ETag precondition, then close; closed issues leave the default (open) list.
async fn assert_close_with_etag_leaves_the_open_list(c: &Client, repo: &str) {
    let got = c.get(format!("{repo}/issues/2")).send().await.unwrap();
    let etag = got.headers()["etag"].to_str().unwrap().to_string();
    let stale = c
        .patch(format!("{repo}/issues/2"))
        .bearer_auth("ghp_twin_octocat")
        .header("if-match", "\"stale\"")
        .json(&json!({"state": "closed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let closed: Value = c
        .patch(format!("{repo}/issues/2"))
        .bearer_auth("ghp_twin_octocat")
        .header("if-match", etag)
        .json(&json!({"state": "closed"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(closed["state"], "closed");
    let open: Vec<Value> = c
        .get(format!("{repo}/issues"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(open.len(), 4);
    let all: Vec<Value> = c
        .get(format!("{repo}/issues?state=all"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
}

/// Comments: posted and listed with their author; 404 on an issue that does not exist.
async fn assert_comments_are_posted_and_listed(c: &Client, repo: &str) {
    let cm = c
        .post(format!("{repo}/issues/1/comments"))
        .bearer_auth("ghp_twin_octocat")
        .json(&json!({"body": "same here"}))
        .send()
        .await
        .unwrap();
    assert_eq!(cm.status(), 201);
    let list: Vec<Value> = c
        .get(format!("{repo}/issues/1/comments"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["body"], "same here");
    assert_eq!(list[0]["user"]["login"], "octocat");
    assert_eq!(
        c.post(format!("{repo}/issues/99/comments"))
            .bearer_auth("ghp_twin_octocat")
            .json(&json!({"body": "x"}))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

/// Validation in GitHub's shape.
async fn assert_validation_fails_in_githubs_shape(c: &Client, repo: &str) {
    let bad = c
        .post(format!("{repo}/issues"))
        .bearer_auth("ghp_twin_octocat")
        .json(&json!({"body": "no title"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["message"],
        "Validation Failed"
    );
}

#[tokio::test]
async fn issues_crud_comments_and_link_pagination() {
    let (_twin, server) = serve("github").await;
    let (c, url) = (client(), server.url());
    let repo = format!("{url}/repos/octocat/hello-world");
    create_five_issues(&c, &repo).await;
    assert_link_pagination_reaches_the_end(&c, &repo).await;
    assert_close_with_etag_leaves_the_open_list(&c, &repo).await;
    assert_comments_are_posted_and_listed(&c, &repo).await;
    assert_validation_fails_in_githubs_shape(&c, &repo).await;
}

#[tokio::test]
async fn private_repositories_are_404_and_auth_errors_match_github() {
    let (_twin, server) = serve("github").await;
    let (c, url) = (client(), server.url());
    let private = format!("{url}/repos/octocat/secret-plans");
    let anon = c.get(&private).send().await.unwrap();
    assert_eq!(anon.status(), 404);
    assert_eq!(anon.json::<Value>().await.unwrap()["message"], "Not Found");
    assert_eq!(
        c.get(&private)
            .bearer_auth("ghp_twin_hubot")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        c.get(format!("{private}/issues"))
            .bearer_auth("ghp_twin_hubot")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        c.get(&private)
            .bearer_auth("ghp_twin_octocat")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let bad = c
        .get(&private)
        .bearer_auth("ghp_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["message"],
        "Bad credentials"
    );
    let no_auth = c
        .post(format!("{url}/repos/octocat/hello-world/issues"))
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_auth.status(), 401);
    let no_scope = c
        .post(format!("{url}/repos/octocat/hello-world/issues"))
        .bearer_auth("ghp_twin_hubot")
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_scope.status(), 403);
}
