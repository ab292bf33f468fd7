//! Drift against a real service nobody here wrote: httpbin (PyPI) under gunicorn.
//! Record → fresh; then an upstream that changes one field → suspect → drifted → retired,
//! with the diff; a retired twin refuses to load unless forced.

use crate::support::{Httpbin, client, opts};
use bytes::Bytes;
use http_body_util::Full;
use lightsout_twin::drift::{self, Manifest, Normaliser, Reference, TwinStatus};
use lightsout_twin::record::{Cassette, Recorder, write_replay_definition};
use lightsout_twin::{Error, TwinDir, TwinServer};
use serde_json::{Value, json};
use std::net::SocketAddr;

/// A proxy in front of httpbin that renames the slideshow's author ("a second version").
async fn altering_proxy(upstream: String) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let upstream = upstream.clone();
                        async move {
                            let url = format!(
                                "{upstream}{}",
                                req.uri().path_and_query().map_or("/", |p| p.as_str())
                            );
                            let method = req.method().clone();
                            let mut headers = req.headers().clone();
                            headers.remove("host");
                            let body = http_body_util::BodyExt::collect(req.into_body())
                                .await
                                .unwrap()
                                .to_bytes();
                            let r = reqwest::Client::new()
                                .request(method, url)
                                .headers(headers)
                                .body(body)
                                .send()
                                .await
                                .unwrap();
                            let status = r.status();
                            let ct = r.headers().get("content-type").cloned();
                            let mut bytes = r.bytes().await.unwrap();
                            if let Ok(mut v) = serde_json::from_slice::<Value>(&bytes)
                                && v.pointer("/slideshow/author").is_some()
                            {
                                v["slideshow"]["author"] = json!("Someone Else");
                                bytes = Bytes::from(v.to_string());
                            }
                            let mut out = http::Response::new(Full::new(bytes));
                            *out.status_mut() = status;
                            if let Some(ct) = ct {
                                out.headers_mut().insert("content-type", ct);
                            }
                            Ok::<_, std::convert::Infallible>(out)
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn record_fresh_then_drift_to_retired() {
    let httpbin = Httpbin::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Record through the proxy.
    write_replay_definition(dir.path(), "httpbin", &httpbin.url).unwrap();
    let recorder = Recorder::new(&httpbin.url, &dir.path().join("cassette.json")).unwrap();
    let proxy = TwinServer::start_recorder(recorder, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let c = client();
    let p = proxy.url();
    assert_eq!(
        c.get(format!("{p}/get?probe=1"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(format!("{p}/uuid")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.post(format!("{p}/post"))
            .json(&json!({"a": 1}))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(format!("{p}/json")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.get(format!("{p}/status/418"))
            .send()
            .await
            .unwrap()
            .status(),
        418
    );
    proxy.shutdown().await;
    let cassette = Cassette::load(&dir.path().join("cassette.json")).unwrap();
    assert_eq!(cassette.interactions.len(), 5);
    let probes: Vec<_> = cassette
        .interactions
        .iter()
        .map(|i| i.request.clone())
        .collect();

    // The recorded twin replays; checked against the live service it is fresh.
    let tdir = TwinDir::open(dir.path()).unwrap();
    let twin = tdir.load(opts(), false).unwrap();
    let norm = Normaliser::default();
    let mut manifest = Manifest::load_or_new(&tdir.manifest, "httpbin").unwrap();
    let mut report = drift::check(&twin, &probes, &Reference::Live(httpbin.url.clone()), &norm)
        .await
        .unwrap();
    manifest.record(&mut report);
    manifest.save(&tdir.manifest).unwrap();
    assert_eq!(report.score, 1.0, "{:#?}", report.differences);
    assert_eq!(report.status_after, TwinStatus::Fresh);

    // The upstream changes one field: suspect, with the diff pointing at it.
    let (alt, _task) = altering_proxy(httpbin.url.clone()).await;
    let changed = Reference::Live(format!("http://{alt}"));
    let mut report = drift::check(&twin, &probes, &changed, &norm).await.unwrap();
    manifest.record(&mut report);
    assert_eq!(
        report.status_after,
        TwinStatus::Suspect,
        "{:#?}",
        report.differences
    );
    assert_eq!(report.endpoints["GET /json"].fidelity, 0.0);
    assert_eq!(report.endpoints["GET /get"].fidelity, 1.0);
    assert_eq!(report.differences.len(), 1);
    let d = &report.differences[0];
    assert_eq!(
        (d.endpoint.as_str(), d.pointer.as_str()),
        ("GET /json", "/body/slideshow/author")
    );
    assert_eq!(d.real, json!("Someone Else"));
    assert_eq!(d.twin, json!("Yours Truly"));
    // Confirmed on the next check: drifted; two more: retired.
    for want in [
        TwinStatus::Drifted,
        TwinStatus::Drifted,
        TwinStatus::Retired,
    ] {
        let mut r = drift::check(&twin, &probes, &changed, &norm).await.unwrap();
        manifest.record(&mut r);
        assert_eq!(r.status_after, want);
    }
    manifest.save(&tdir.manifest).unwrap();
    assert!(matches!(tdir.load(opts(), false), Err(Error::Retired(_))));
    assert!(
        tdir.load(opts(), true).is_ok(),
        "--force serves a retired twin"
    );
}
