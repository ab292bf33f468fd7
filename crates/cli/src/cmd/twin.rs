//! `lightsout twin ...`: list, status, mark, serve, record, drift, import-openapi. Wiring only;
//! the logic lives in `lightsout-twin`.
//!
//! Every twin has a drift lifecycle (fresh → suspect → drifted → retired, see
//! `lightsout_twin::drift`): a twin directory's in `DIR/manifest.json`, a built-in twin's in
//! `STATE_DIR/NAME/manifest.json`, where the state directory is `--state-dir`, else
//! `LIGHTSOUT_TWIN_STATE_DIR`, else `.lightsout/twins` of the current directory (the project).

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use lightsout_twin::drift::{self, Manifest, Normaliser, Reference};
use lightsout_twin::record::{Cassette, Recorder};
use lightsout_twin::{ServerOptions, TwinDir, TwinOptions, TwinServer, builtin};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum OutputFormat {
    /// Text for people.
    #[default]
    Human,
    /// JSON for programs.
    Json,
}

/// How `twin serve` holds slow clients and how much of the journal it keeps. Absent flags
/// take the defaults of `lightsout_twin::ServerOptions` and `TwinOptions`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct ServeLimits {
    /// Milliseconds a client has to send a whole request head (from connecting, or from the
    /// first byte of a later request on a kept-alive connection) before it is closed
    /// [default: 5000].
    #[arg(long, value_name = "MS")]
    header_read_timeout_ms: Option<u64>,
    /// Milliseconds a kept-alive connection may wait for its next request before it is closed
    /// [default: 30000].
    #[arg(long, value_name = "MS")]
    idle_timeout_ms: Option<u64>,
    /// Most connections at once whose request head is incomplete; the oldest is closed to make
    /// room [default: the soft file-descriptor limit minus 256, or half of it when lower].
    #[arg(long, value_name = "CONNECTIONS")]
    max_half_open: Option<usize>,
    /// Most journal entries kept per twin, oldest dropped first [default: 10000].
    #[arg(long, value_name = "ENTRIES")]
    journal_max_entries: Option<usize>,
    /// Most journal bytes kept per twin (method, path, query, headers and body of each
    /// request), oldest dropped first [default: 67108864, 64 MiB].
    #[arg(long, value_name = "BYTES")]
    journal_max_bytes: Option<usize>,
}

impl ServeLimits {
    fn server(self) -> ServerOptions {
        let d = ServerOptions::default();
        ServerOptions {
            header_read_timeout: self
                .header_read_timeout_ms
                .map_or(d.header_read_timeout, Duration::from_millis),
            idle_timeout: self
                .idle_timeout_ms
                .map_or(d.idle_timeout, Duration::from_millis),
            max_half_open: self.max_half_open.or(d.max_half_open),
        }
    }

    fn twin(self, opts: TwinOptions) -> TwinOptions {
        TwinOptions {
            journal_max_entries: self.journal_max_entries.unwrap_or(opts.journal_max_entries),
            journal_max_bytes: self.journal_max_bytes.unwrap_or(opts.journal_max_bytes),
            ..opts
        }
    }
}

/// Where the manifests of built-in twins are kept.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StateDir {
    /// Directory of the built-in twins' manifests (`DIR/NAME/manifest.json`); a twin directory
    /// keeps its own `manifest.json`.
    #[arg(
        long = "state-dir",
        env = "LIGHTSOUT_TWIN_STATE_DIR",
        default_value = ".lightsout/twins",
        value_name = "DIR"
    )]
    dir: PathBuf,
}

impl StateDir {
    /// The manifest of `twin` (a built-in name or a twin directory), and its name.
    fn manifest_of(&self, twin: &str) -> anyhow::Result<(PathBuf, String)> {
        let p = Path::new(twin);
        if p.is_dir() {
            let d = TwinDir::open(p)?;
            let text = std::fs::read_to_string(&d.definition)
                .with_context(|| format!("cannot read {}", d.definition.display()))?;
            let (def, _) = lightsout_twin::parse_definition(
                &text,
                lightsout_twin::Format::from_path(&d.definition),
            );
            let name = def.map_or_else(|| twin.to_owned(), |d| d.name);
            return Ok((d.manifest, name));
        }
        let def = builtin::definition(twin)?;
        Ok((drift::manifest_path(&self.dir, &def.name), def.name))
    }
}

/// A lifecycle state a human may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum MarkState {
    /// Matches the real service again (after re-recording it).
    Fresh,
    /// Might disagree with the real service: evidence against it is weakened.
    Suspect,
    /// Disagrees with the real service: evidence against it fails the gate.
    Drifted,
    /// Out of service: the scenarios that need it are stopped.
    Retired,
}

impl MarkState {
    fn status(self) -> drift::TwinStatus {
        match self {
            MarkState::Fresh => drift::TwinStatus::Fresh,
            MarkState::Suspect => drift::TwinStatus::Suspect,
            MarkState::Drifted => drift::TwinStatus::Drifted,
            MarkState::Retired => drift::TwinStatus::Retired,
        }
    }
}

/// `lightsout twin` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TwinCommand {
    /// List the built-in twins.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Show each twin's drift lifecycle: state, since when, why, and how many checks and marks.
    ///
    /// Without arguments: every built-in twin. A suspect twin weakens the evidence of the
    /// scenarios that rest on it, a drifted one fails them, a retired one stops them.
    Status {
        /// Built-in twin names or twin directories (default: every built-in twin).
        twins: Vec<String>,
        #[command(flatten)]
        state: StateDir,
        /// Output format: `json` prints an array of `{"name", "status", "since", "reason",
        /// "manifest", "checks", "marks"}`.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Set a twin's lifecycle state by hand, with the reason (kept in its manifest).
    ///
    /// `fresh` brings back a re-recorded twin; `retired` stops every scenario that needs it.
    Mark {
        /// Built-in twin name or twin directory.
        twin: String,
        /// The state to set.
        #[arg(value_enum)]
        state: MarkState,
        /// Why (required): shown wherever the state weakens or stops a verdict.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        state_dir: StateDir,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Serve twins (built-in names or directories with twin.yaml) until Ctrl-C.
    ///
    /// One twin is served at the root; several share the port under /NAME.
    Serve {
        /// Built-in twin names (`lightsout twin list`) or twin directories.
        #[arg(required = true)]
        twins: Vec<String>,
        /// Port on 127.0.0.1 (0 picks a free one; the URL is printed).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Seed for all randomness (ids, latency, random fault bytes).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Start the virtual clock at the current wall-clock time instead of 2026-01-01T00:00:00Z
        /// (use when the system under test checks JWT expiry against real time).
        #[arg(long)]
        wall_clock: bool,
        /// Do not add the definitions' latency.
        #[arg(long)]
        no_latency: bool,
        /// Serve even a twin whose manifest says it is retired (it still reports `retired` at
        /// `GET /__twin/lifecycle`, so `lightsout eval` stops the scenarios that need it).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        state: StateDir,
        #[command(flatten)]
        limits: ServeLimits,
        /// Output format of the start-up line(s).
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Record: proxy to the real service and store every exchange in OUT/cassette.json.
    Record {
        /// Base URL of the real service.
        #[arg(long)]
        upstream: String,
        /// Twin directory to create or extend (twin.yaml, cassette.json).
        #[arg(long)]
        out: PathBuf,
        /// Port on 127.0.0.1 for the proxy (0 picks a free one; the URL is printed).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Twin name written to twin.yaml (default: the directory name).
        #[arg(long)]
        name: Option<String>,
        /// Output format of the start-up line.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Check a twin against the real service (URL) or a cassette; update its manifest.
    ///
    /// Exit 0 when the twin is fresh, 1 when suspect, drifted or retired.
    Drift {
        /// Built-in twin name or twin directory.
        twin: String,
        /// Base URL of the real service, or a cassette file recorded from it.
        #[arg(long)]
        against: String,
        /// Manifest to update (default: DIR/manifest.json of a twin directory, else the built-in
        /// twin's manifest under --state-dir).
        #[arg(long)]
        manifest: Option<PathBuf>,
        #[command(flatten)]
        state: StateDir,
        /// JSON pointers in bodies to ignore (e.g. /origin); repeatable.
        #[arg(long)]
        ignore: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Import an `OpenAPI` 3 document as a skeleton twin.
    ImportOpenapi {
        /// `OpenAPI` 3 file (YAML or JSON).
        file: PathBuf,
        /// Twin name (default: the file stem).
        #[arg(long)]
        name: Option<String>,
        /// Directory to write twin.yaml into (default: print the YAML).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Output format: `json` prints `{"name", "routes", "written", "twin_yaml",
        /// "diagnostics"}` (the YAML inline when no --out is given).
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

pub(crate) fn run(cmd: TwinCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TwinCommand::List { format } => list(format),
        TwinCommand::Status {
            twins,
            state,
            format,
        } => status(&twins, &state, format),
        TwinCommand::Mark {
            twin,
            state,
            reason,
            state_dir,
            format,
        } => mark(&twin, state, &reason, &state_dir, format),
        TwinCommand::ImportOpenapi {
            file,
            name,
            out,
            format,
        } => import(&file, name, out.as_deref(), format),
        other => {
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            rt.block_on(run_async(other))
        }
    }
}

async fn run_async(cmd: TwinCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TwinCommand::Serve {
            twins,
            port,
            host,
            seed,
            wall_clock,
            no_latency,
            force,
            state,
            limits,
            format,
        } => {
            let mut opts = limits.twin(TwinOptions {
                seed,
                latency: !no_latency,
                ..TwinOptions::default()
            });
            if wall_clock {
                opts.clock_start_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(opts.clock_start_ms, |d| d.as_millis() as u64);
            }
            let mut loaded = Vec::new();
            for t in &twins {
                let twin = lightsout_twin::load(t, opts, &state.dir, force)
                    .with_context(|| format!("cannot load twin `{t}`"))?;
                let l = twin.lifecycle();
                if l.status != drift::TwinStatus::Fresh {
                    // Said on stderr too: whoever starts it by hand sees it before trusting it.
                    eprintln!(
                        "warning: {}; a holdout run weakens (suspect), fails (drifted) or stops \
                         (retired) the scenarios that rest on it",
                        l.describe()
                    );
                }
                loaded.push(twin);
            }
            let names: Vec<String> = loaded.iter().map(|t| t.name().to_string()).collect();
            let states: Vec<drift::Lifecycle> =
                loaded.iter().map(lightsout_twin::Twin::lifecycle).collect();
            let server =
                TwinServer::start_with(loaded, SocketAddr::new(host, port), limits.server())
                    .await
                    .with_context(|| {
                        format!("cannot listen on {host}:{port}; pick another --port")
                    })?;
            for (n, l) in names.iter().zip(&states) {
                let url = server.url_of(n).unwrap_or_else(|| server.url());
                match format {
                    OutputFormat::Json => println!(
                        "{}",
                        serde_json::json!({"name": n, "url": url, "seed": seed, "status": l.status, "since": l.since, "reason": l.reason})
                    ),
                    OutputFormat::Human => println!(
                        "twin {n} serving at {url} (seed {seed}; {}; control API at {url}/__twin/)",
                        l.status.as_str()
                    ),
                }
            }
            wait_for_stop().await;
            server.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        TwinCommand::Record {
            upstream,
            out,
            port,
            name,
            format,
        } => {
            let name = name.unwrap_or_else(|| {
                out.file_name().map_or("recorded".into(), |n| {
                    n.to_string_lossy()
                        .to_lowercase()
                        .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
                })
            });
            lightsout_twin::record::write_replay_definition(&out, &name, &upstream)?;
            let recorder = Recorder::new(&upstream, &out.join("cassette.json"))?;
            let server =
                TwinServer::start_recorder(recorder, SocketAddr::from(([127, 0, 0, 1], port)))
                    .await
                    .with_context(|| {
                        format!("cannot listen on port {port}; pick another --port")
                    })?;
            match format {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::json!({"name": name, "url": server.url(), "upstream": upstream, "out": out})
                ),
                OutputFormat::Human => println!(
                    "recording {upstream} through {} into {}",
                    server.url(),
                    out.join("cassette.json").display()
                ),
            }
            wait_for_stop().await;
            server.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        TwinCommand::Drift {
            twin,
            against,
            manifest,
            state,
            ignore,
            format,
        } => drift_cmd(&twin, &against, manifest, &state, ignore, format).await,
        TwinCommand::List { .. }
        | TwinCommand::ImportOpenapi { .. }
        | TwinCommand::Status { .. }
        | TwinCommand::Mark { .. } => Ok(ExitCode::from(2)),
    }
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn list(format: OutputFormat) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    for b in builtin::BUILTINS {
        let def = builtin::definition(b.name)?;
        rows.push(serde_json::json!({"name": def.name, "routes": def.routes.len(), "description": def.description, "source": def.provenance.source}));
    }
    match format {
        OutputFormat::Json => println!("{}", serde_json::Value::Array(rows)),
        OutputFormat::Human => {
            for r in &rows {
                println!(
                    "{:<8} {:>2} routes  {}",
                    r["name"].as_str().unwrap_or_default(),
                    r["routes"],
                    r["description"].as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn status(twins: &[String], state: &StateDir, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let names: Vec<String> = if twins.is_empty() {
        builtin::BUILTINS
            .iter()
            .map(|b| b.name.to_owned())
            .collect()
    } else {
        twins.to_vec()
    };
    let mut rows = Vec::new();
    for t in &names {
        let (path, name) = state.manifest_of(t)?;
        let m = Manifest::load_or_new(&path, &name)?;
        let l = m.lifecycle(path.is_file().then_some(path.as_path()));
        rows.push((l, m.checks.len(), m.marks.len()));
    }
    match format {
        OutputFormat::Json => {
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|(l, checks, marks)| {
                    serde_json::json!({"name": l.name, "status": l.status, "since": l.since,
                        "reason": l.reason, "manifest": l.manifest, "checks": checks, "marks": marks})
                })
                .collect();
            println!("{}", serde_json::Value::Array(v));
        }
        OutputFormat::Human => {
            for (l, checks, marks) in &rows {
                let since = l
                    .since
                    .as_deref()
                    .map_or_else(|| "never checked".to_owned(), |t| format!("since {t}"));
                println!(
                    "{:<8} {:<8} {since}  ({checks} check(s), {marks} mark(s))",
                    l.name,
                    l.status.as_str()
                );
                if let Some(r) = &l.reason {
                    println!("         {r}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn mark(
    twin: &str,
    state: MarkState,
    reason: &str,
    state_dir: &StateDir,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let (path, name) = state_dir.manifest_of(twin)?;
    let mut m = Manifest::load_or_new(&path, &name)?;
    let before = m.status;
    m.mark(state.status(), reason)?;
    m.save(&path)?;
    let l = m.lifecycle(Some(&path));
    match format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({"name": l.name, "from": before, "status": l.status, "since": l.since,
                "reason": l.reason, "manifest": l.manifest})
        ),
        OutputFormat::Human => println!(
            "twin {}: {} -> {} ({})",
            l.name,
            before.as_str(),
            l.status.as_str(),
            path.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn drift_cmd(
    twin: &str,
    against: &str,
    manifest: Option<PathBuf>,
    state: &StateDir,
    ignore: Vec<String>,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let dir = Path::new(twin)
        .is_dir()
        .then(|| TwinDir::open(Path::new(twin)))
        .transpose()?;
    let loaded = match &dir {
        Some(d) => d.load(
            TwinOptions {
                latency: false,
                ..TwinOptions::default()
            },
            true,
        )?,
        None => builtin::load(
            twin,
            TwinOptions {
                latency: false,
                ..TwinOptions::default()
            },
        )?,
    };
    let manifest_path = manifest.unwrap_or_else(|| match &dir {
        Some(d) => d.manifest.clone(),
        None => drift::manifest_path(&state.dir, loaded.name()),
    });
    let live = against.starts_with("http://") || against.starts_with("https://");
    let (reference, probes) = if live {
        let probes = match &dir {
            Some(d) if d.cassette.is_file() => Cassette::load(&d.cassette)?
                .interactions
                .into_iter()
                .map(|i| i.request)
                .collect(),
            Some(d) => anyhow::bail!(
                "{} has no cassette.json to replay; record one with `lightsout twin record`",
                d.dir.display()
            ),
            None => builtin::probes(loaded.name()),
        };
        (Reference::Live(against.to_string()), probes)
    } else {
        let c = Cassette::load(Path::new(against)).with_context(|| {
            format!("--against {against} is neither an http(s) URL nor a readable cassette")
        })?;
        let probes = c.interactions.iter().map(|i| i.request.clone()).collect();
        (Reference::Recorded(c), probes)
    };
    let mut report = drift::check(&loaded, &probes, &reference, &Normaliser { ignore }).await?;
    if !live {
        report.against = against.to_string();
    }
    let mut m = Manifest::load_or_new(&manifest_path, loaded.name())?;
    m.record(&mut report);
    m.save(&manifest_path)?;
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Human => {
            println!(
                "twin {} against {}: fidelity {:.2} over {} exchanges; {} -> {}",
                report.twin,
                report.against,
                report.score,
                report.exchanges,
                report.status_before.as_str(),
                report.status_after.as_str()
            );
            for (ep, s) in &report.endpoints {
                println!(
                    "  {ep:<40} {:>3}/{:<3} {:.2}",
                    s.matched, s.total, s.fidelity
                );
            }
            for d in &report.differences {
                println!(
                    "  #{} {} {}: real {} / twin {}",
                    d.index, d.endpoint, d.pointer, d.real, d.twin
                );
            }
        }
    }
    Ok(if report.status_after == drift::TwinStatus::Fresh {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn import(
    file: &Path,
    name: Option<String>,
    out: Option<&Path>,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = name.unwrap_or_else(|| {
        file.file_stem().map_or("imported".into(), |s| {
            s.to_string_lossy()
                .to_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
        })
    });
    let (def, diags) = lightsout_twin::openapi::import(&text, &name, &file.display().to_string());
    if format == OutputFormat::Human {
        for d in &diags {
            eprintln!(
                "{}:{}:{}: {}[{}]: {} (help: {})",
                file.display(),
                d.span.line,
                d.span.column,
                d.severity.as_str(),
                d.code,
                d.message,
                d.help
            );
        }
    }
    let json = |routes: Option<usize>, written: Option<PathBuf>, yaml: Option<&str>| {
        serde_json::json!({
            "name": name,
            "routes": routes,
            "written": written,
            "twin_yaml": yaml,
            "diagnostics": diags,
        })
    };
    let Some(def) = def else {
        if format == OutputFormat::Json {
            println!("{}", json(None, None, None));
        }
        return Ok(ExitCode::from(1));
    };
    let yaml = lightsout_twin::def::to_yaml(&def)?;
    let written = match out {
        Some(dir) => {
            let path = dir.join("twin.yaml");
            lightsout_twin::record::write_atomic(&path, yaml.as_bytes())?;
            Some(path)
        }
        None => None,
    };
    match (format, &written) {
        (OutputFormat::Json, _) => {
            let inline = written.is_none().then_some(yaml.as_str());
            println!("{}", json(Some(def.routes.len()), written.clone(), inline));
        }
        (OutputFormat::Human, Some(path)) => {
            println!("wrote {} ({} routes)", path.display(), def.routes.len());
        }
        (OutputFormat::Human, None) => print!("{yaml}"),
    }
    Ok(ExitCode::SUCCESS)
}
