//! Spec stage: parse + check throughput, side by side with a raw pulldown-cmark parse of the
//! same bytes (the floor any markdown-based checker pays). The old goal of 0.5× the raw
//! parse's throughput is withdrawn: correctness comes first (multilingual keywords, lint groups,
//! structural reading); the goals now are `spec check` at least 20× faster than
//! `openspec validate` (`benches/compare/openspec.sh`) and no row more than 20% slower than
//! the last release.
//!
//! Inputs: the bundled example, the largest Kiro requirements file of the corpus, all 19
//! `OpenSpec` specs (each parsed separately), the attractor natural-language spec, and a Spec Kit feature
//! with Chinese headings (`tests/fidelity`).
//!
//! Rows per input: `pulldown-cmark raw` (the baseline), `lightsout parse+check` (the goal's
//! subject), `parse only` (so that parse and check can be told apart), and `clone` (cloning and
//! dropping the parsed `Spec`: the allocation floor of building the typed model at all).
//! Both sides run on mimalloc, the `lightsout` binary's allocator.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lightsout_spec::{CheckOptions, check, parse};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The allocator of the `lightsout` binary (`crates/cli/src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn openspec_files(dir: &Path, out: &mut Vec<Vec<u8>>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            openspec_files(&p, out);
        } else if p.file_name().is_some_and(|n| n == "spec.md") {
            out.push(std::fs::read(&p).expect("read corpus file"));
        }
    }
}

/// The options `lightsout_spec` parses with (`crates/spec/src/blocks.rs`), so that both sides
/// do the same markdown work.
fn raw(bytes: &[u8]) -> usize {
    use pulldown_cmark::Options;
    let text = std::str::from_utf8(bytes).expect("utf-8");
    let opts = Options::ENABLE_TASKLISTS | Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    pulldown_cmark::Parser::new_ext(text, opts)
        .into_offset_iter()
        .count()
}

fn ours(bytes: &[u8]) -> usize {
    let (spec, mut d) = parse(bytes, None, None);
    let text = std::str::from_utf8(bytes).expect("utf-8");
    d.extend(check(&spec, text, &CheckOptions::default()));
    d.len() + spec.requirements.len()
}

fn bench(c: &mut Criterion) {
    let corpus = root().join("crates/spec/tests/corpus");
    let mut inputs: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "example",
            vec![std::fs::read(root().join("examples/specs/url-shortener.md")).expect("example")],
        ),
        (
            "kiro-raft",
            vec![std::fs::read(corpus.join("kiro/raft-consensus/requirements.md")).expect("kiro")],
        ),
    ];
    let mut os = Vec::new();
    openspec_files(&corpus.join("openspec"), &mut os);
    inputs.push(("openspec-19", os));
    let fidelity = root().join("crates/spec/tests/fidelity");
    inputs.push((
        "nlspec-attractor",
        vec![
            std::fs::read(fidelity.join("nlspec/strongdm__attractor/attractor-spec.md"))
                .expect("nlspec"),
        ],
    ));
    inputs.push((
        "speckit-zh",
        vec![
            std::fs::read(
                fidelity.join("speckit/DerekYRC__mini-netty/specs/001-mini-netty/spec.md"),
            )
            .expect("speckit"),
        ],
    ));

    let mut g = c.benchmark_group("spec");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for (name, files) in &inputs {
        let bytes: usize = files.iter().map(Vec::len).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_with_input(
            BenchmarkId::new("pulldown-cmark raw", name),
            files,
            |b, f| {
                b.iter(|| f.iter().map(|x| raw(black_box(x))).sum::<usize>());
            },
        );
        g.bench_with_input(
            BenchmarkId::new("lightsout parse+check", name),
            files,
            |b, f| {
                b.iter(|| f.iter().map(|x| ours(black_box(x))).sum::<usize>());
            },
        );
        let specs: Vec<_> = files.iter().map(|x| parse(x, None, None).0).collect();
        g.bench_with_input(BenchmarkId::new("clone", name), &specs, |b, f| {
            b.iter(|| {
                f.iter()
                    .map(|x| black_box(x.clone()).requirements.len())
                    .sum::<usize>()
            });
        });
        g.bench_with_input(BenchmarkId::new("parse only", name), files, |b, f| {
            b.iter(|| {
                f.iter()
                    .map(|x| parse(black_box(x), None, None).0.requirements.len())
                    .sum::<usize>()
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
