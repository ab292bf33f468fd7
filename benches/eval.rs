//! Eval engine benchmark, side by side in one run against the same local `httpbin` (`PyPI`
//! package under gunicorn, one sync worker):
//!
//! - `raw_reqwest_loop`: the limit; the same 10 requests and checks written by hand with
//!   `reqwest` + `serde_json` (goal: our runner within 1.3× of it);
//! - `lightsout_runner`: `Runner::run` on benches/compare/eval/suite (10 scenarios, 1 trial);
//! - `lightsout_cli`: the `lightsout eval` binary as a process, when it has been built;
//! - `behave`: behave (`PyPI`) running the equivalent benches/compare/eval/behave feature as a
//!   process (goal: ours at least 5× faster).
//!
//! Skipped with a message when python3 with httpbin and gunicorn is not installed.
//!
//! `leak_scan`: `LeakScanner::scan` over a 1 MiB agent transcript (the visible spec and
//! service code repeated, one leaked test URL at the end) with the bundled example's holdout
//! and the spec as the allowed corpus (about 100 ms, 10 MiB/s, on the 2-core CI machine
//! under load); `leak_build`: building that scanner (about 4 ms).

#![allow(clippy::print_stderr)] // a bench reports why it skipped
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use criterion::{Criterion, criterion_group, criterion_main};
use lightsout_eval::{LeakScanner, RunOptions, Runner, StepLibrary, Suite, TargetConfig};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Httpbin {
    child: Child,
    url: String,
}

impl Drop for Httpbin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_httpbin() -> Option<Httpbin> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "gunicorn",
            "-b",
            &format!("127.0.0.1:{port}"),
            "httpbin:app",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let url = format!("http://127.0.0.1:{port}");
    let server = Httpbin { child, url };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn compare_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compare/eval")
}

/// The 10 checks of the suite, by hand.
async fn raw_loop(client: &reqwest::Client, base: &str) {
    for i in 1..=5 {
        let r = client
            .get(format!("{base}/get?n={i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["args"]["n"], i.to_string());
    }
    for i in 6..=8 {
        let r = client
            .post(format!("{base}/post"))
            .header("content-type", "application/json")
            .body(format!("{{\"k\":{i}}}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["json"]["k"], i);
    }
    let r = client
        .get(format!("{base}/status/418"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 418);
    let _ = r.bytes().await.unwrap();
    let r = client
        .get(format!("{base}/headers"))
        .header("X-Bench", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["X-Bench"], "1");
}

fn lightsout_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("lightsout");
    bin.exists().then_some(bin)
}

fn bench_eval(c: &mut Criterion) {
    let Some(httpbin) = start_httpbin() else {
        eprintln!(
            "eval bench skipped: python3 -m gunicorn httpbin:app did not start (pip install httpbin gunicorn)"
        );
        return;
    };
    let base = httpbin.url.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lib = StepLibrary::builtin();
    let (suite, diags) = Suite::load_dir(&compare_dir().join("suite"), &lib).unwrap();
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(suite.scenarios.len(), 10);
    let runner = Runner::new(lib).unwrap();
    let target = TargetConfig::Url(base.clone());
    let opts = RunOptions::default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let mut g = c.benchmark_group("eval_httpbin_10_scenarios");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("raw_reqwest_loop", |b| {
        b.to_async(&rt).iter(|| raw_loop(&client, &base));
    });
    g.bench_function("lightsout_runner", |b| {
        b.to_async(&rt).iter(|| async {
            let run = runner.run(&suite, &target, &opts).await.unwrap();
            assert!(run.gate.passed);
        });
    });
    if let Some(bin) = lightsout_bin() {
        g.bench_function("lightsout_cli_process", |b| {
            b.iter(|| {
                let st = Command::new(&bin)
                    .args(["eval", "--scenarios"])
                    .arg(compare_dir().join("suite"))
                    .args(["--url", &base])
                    .stdout(Stdio::null())
                    .status()
                    .unwrap();
                assert!(st.success());
            });
        });
    } else {
        eprintln!(
            "lightsout_cli_process skipped: build the binary first (cargo build --release -p lightsout-cli)"
        );
    }
    let behave_ok = Command::new("behave")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if behave_ok {
        g.bench_function("behave_process", |b| {
            b.iter(|| {
                let st = Command::new("behave")
                    .args(["-q", "--no-summary", "features"])
                    .current_dir(compare_dir().join("behave"))
                    .env("BASE_URL", &base)
                    .stdout(Stdio::null())
                    .status()
                    .unwrap();
                assert!(st.success());
            });
        });
    } else {
        eprintln!("behave_process skipped: pip install behave requests");
    }
    g.finish();
    drop(httpbin);
}

fn bench_leak(c: &mut Criterion) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let (suite, _) = Suite::load_dir(
        &examples.join("url-shortener-holdout"),
        &StepLibrary::builtin(),
    )
    .unwrap();
    let spec =
        std::fs::read_to_string(examples.join("url-shortener/specs/url-shortener.md")).unwrap();
    let code = "def follow(self, code):\n    row = self.db.execute(\"SELECT url FROM links WHERE code = ?\", (code,)).fetchone()\n    if row is None:\n        return self.error(404, \"not_found\")\n    self.send_response(302)\n";
    let mut transcript = String::with_capacity(1 << 20);
    while transcript.len() < (1 << 20) - 100 {
        transcript.push_str(&spec);
        transcript.push_str(code);
    }
    transcript.push_str("\nBASE = 'https://example.com/popular'\n");
    let scanner = LeakScanner::allowing(&suite, [spec.as_str()]);
    assert_eq!(scanner.scan(&transcript).len(), 1);
    let mut g = c.benchmark_group("leak_scan");
    g.sample_size(10)
        .throughput(criterion::Throughput::Bytes(transcript.len() as u64));
    g.bench_function("scan_1mib_transcript", |b| {
        b.iter(|| scanner.scan(&transcript));
    });
    g.finish();
    let mut g = c.benchmark_group("leak_build");
    g.sample_size(10);
    g.bench_function("build_scanner_example_holdout", |b| {
        b.iter(|| LeakScanner::allowing(&suite, [spec.as_str()]));
    });
    g.finish();
}

criterion_group!(benches, bench_eval, bench_leak);
criterion_main!(benches);
