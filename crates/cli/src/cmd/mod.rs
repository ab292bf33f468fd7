//! One module per subcommand group; each exposes its clap arguments and a `run` function.

pub(crate) mod agent;
pub(crate) mod audit;
pub(crate) mod config;
pub(crate) mod eval;
pub(crate) mod gc;
pub(crate) mod init;
pub(crate) mod memory;
pub(crate) mod plan;
pub(crate) mod progress;
pub(crate) mod queue;
pub(crate) mod replay;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod spec;
pub(crate) mod status;
pub(crate) mod strength;
pub(crate) mod tune;
pub(crate) mod twin;
pub(crate) mod worker;

/// `specs/` at the repository root, as `lightsout run` reads it when given no spec; `specs/`
/// in the current directory outside a repository.
pub(crate) fn default_specs_dir() -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context as _;
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let root = rt
        .block_on(lightsout_factory::repo_root(&cwd))
        .unwrap_or(cwd);
    Ok(root.join("specs"))
}

/// `run` when given, else the run whose journal was written last
/// ([`lightsout_factory::latest_run`]).
///
/// # Errors
/// When `.lightsout/runs` cannot be read, or holds no run (the message says to start one).
pub(crate) fn run_or_latest(repo: &std::path::Path, run: Option<&str>) -> anyhow::Result<String> {
    use anyhow::Context as _;
    match run {
        Some(run) => Ok(run.to_owned()),
        None => lightsout_factory::latest_run(repo)?.with_context(|| {
            format!(
                "no run in {}; start one with `lightsout run`",
                repo.join(".lightsout/runs").display()
            )
        }),
    }
}
