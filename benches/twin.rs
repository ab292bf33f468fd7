//! Twin engine speed: in-process request handling (no socket), the `tower::Service` path, and
//! loopback HTTP against the twin side by side with a bare hyper server answering the same
//! bytes (the floor any HTTP stub can reach on this machine). Peer servers (Mountebank,
//! `WireMock`) are compared with wrk in `benches/compare/twin.sh`.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{Criterion, criterion_group, criterion_main};
use lightsout_twin::{
    Format, Twin, TwinOptions, TwinRequest, TwinServer, builtin, parse_definition,
};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

const STUB: &str = "name: stub\nprovenance: {source: bench}\nroutes:\n  - {method: GET, path: /hello, response: {status: 200, body: {hello: world}}}\n";

fn opts() -> TwinOptions {
    TwinOptions {
        latency: false,
        ..TwinOptions::default()
    }
}

fn stub() -> Twin {
    let (def, _) = parse_definition(STUB, Format::Yaml);
    Twin::new(def.expect("stub parses"), opts()).expect("stub builds")
}

fn in_process(c: &mut Criterion) {
    let mut g = c.benchmark_group("twin/in_process");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);
    let s = stub();
    let req = TwinRequest::new(http::Method::GET, "/hello");
    g.bench_function("stub_route", |b| b.iter(|| black_box(s.handle(&req))));
    let gh = builtin::load("github", opts()).expect("github");
    let req = TwinRequest::new(http::Method::GET, "/repos/octocat/hello-world");
    g.bench_function("github_get_repo", |b| b.iter(|| black_box(gh.handle(&req))));
    // Without rate limits, so the measured loop is not answered 429.
    let mut def = builtin::definition("slack").expect("slack");
    def.rate_limits.clear();
    for r in &mut def.routes {
        r.rate_limit = None;
    }
    let slack =
        Twin::with_behaviour(def, std::sync::Arc::new(builtin::Slack), opts()).expect("slack");
    for i in 0..200 {
        let mut r = TwinRequest::new(http::Method::POST, "/__twin/state/messages");
        r.body = format!(
            r#"{{"ts":"1700000000.{i:06}","channel":"C0GENERAL1","type":"message","text":"m{i}"}}"#
        )
        .into();
        slack.handle(&r);
    }
    let mut req = TwinRequest::new(
        http::Method::GET,
        "/api/conversations.history?channel=C0GENERAL1&limit=50",
    );
    req.headers.insert(
        "authorization",
        "Bearer xoxb-twin-bot".parse().expect("header"),
    );
    g.bench_function("slack_history_page_of_50_from_200", |b| {
        b.iter(|| black_box(slack.handle(&req)));
    });
    g.finish();
}

fn tower_service(c: &mut Criterion) {
    use tower::ServiceExt as _;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let s = stub();
    let mut g = c.benchmark_group("twin/tower");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);
    g.bench_function("oneshot_stub_route", |b| {
        b.to_async(&rt).iter(|| {
            let s = s.clone();
            async move {
                let req = http::Request::get("/hello")
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .expect("request");
                black_box(s.oneshot(req).await.expect("infallible"))
            }
        });
    });
    g.finish();
}

/// A bare hyper server that always answers the stub's bytes: the floor for loopback HTTP.
async fn bare_hyper() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    let mut r = http::Response::new(http_body_util::Full::new(
                        bytes::Bytes::from_static(br#"{"hello":"world"}"#),
                    ));
                    r.headers_mut().insert(
                        "content-type",
                        http::HeaderValue::from_static("application/json; charset=utf-8"),
                    );
                    Ok::<_, std::convert::Infallible>(r)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

fn loopback(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (server, bare) = rt.block_on(async {
        let server = TwinServer::start(vec![stub()], SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("serve");
        (server, bare_hyper().await)
    });
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let mut g = c.benchmark_group("twin/loopback_http_get");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);
    for (name, url) in [
        ("lightsout_twin", format!("{}/hello", server.url())),
        ("bare_hyper_floor", format!("http://{bare}/hello")),
    ] {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    black_box(
                        client
                            .get(url)
                            .send()
                            .await
                            .expect("send")
                            .bytes()
                            .await
                            .expect("body"),
                    )
                }
            });
        });
    }
    g.finish();
    drop(server);
}

criterion_group!(benches, in_process, tower_service, loopback);
criterion_main!(benches);
