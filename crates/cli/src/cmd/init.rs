//! `lightsout init [DIR] [--force]`: scaffolds a factory project. The files and their templates
//! are in [`scaffold`].

mod scaffold;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

use scaffold::StarterAgent;

/// `lightsout init [DIR] [--force]`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The project directory (created if missing; default: the current directory). The project
    /// name, used for `specs/<name>.md` and the holdout directory `../<name>-holdout/`, is
    /// derived from its name.
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Overwrite files that already exist.
    #[arg(long)]
    force: bool,
    /// The agent the project starts with. `command` also writes `lightsout-agent.py`, the
    /// working Python adapter of docs/agents.md (the adapter contract).
    #[arg(long, value_enum, default_value_t = Starter::ClaudeCode)]
    agent: Starter,
    /// Output format: `json` prints `{"project", "dir", "agent", "written", "next"}`.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// What was written and the next steps, for people.
    Human,
    /// One JSON object on stdout.
    Json,
}

/// `--agent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Starter {
    /// Claude Code (`claude -p`).
    ClaudeCode,
    /// Codex (`codex exec`).
    Codex,
    /// Aider.
    Aider,
    /// Your own program, following docs/agents.md.
    Command,
}

impl From<Starter> for StarterAgent {
    fn from(s: Starter) -> Self {
        match s {
            Starter::ClaudeCode => StarterAgent::ClaudeCode,
            Starter::Codex => StarterAgent::Codex,
            Starter::Aider => StarterAgent::Aider,
            Starter::Command => StarterAgent::Command,
        }
    }
}

pub(crate) fn run(args: &InitArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let dir = std::fs::canonicalize(&args.dir)
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    let name = scaffold::project_name(&dir);
    let agent = StarterAgent::from(args.agent);
    let existing = scaffold::existing(&dir, &name, agent);
    if !existing.is_empty() && !args.force {
        let list: Vec<String> = existing
            .iter()
            .map(|p| format!("  {}", p.display()))
            .collect();
        anyhow::bail!(
            "these files already exist:\n{}\nnothing was written; pass --force to overwrite them",
            list.join("\n")
        );
    }
    let written = scaffold::write(&dir, &name, agent)?;
    let profile = agent.profile();
    let next = [
        format!("fill the [PLACEHOLDERS] in specs/{name}.md, then `lightsout spec check specs/`"),
        format!(
            "write holdout scenarios in ../{name}-holdout/ (outside the repository: agents never see it)"
        ),
        format!(
            "check your agent ([agents] default = \"{profile}\" in lightsout.toml): `lightsout agent check {profile}`"
        ),
        "`git init -b main && git add -A && git commit -m init` (if not a repository yet) and `lightsout run`".to_owned(),
    ];
    if args.format == Format::Json {
        let out = serde_json::json!({
            "project": name,
            "dir": dir,
            "agent": profile,
            "written": written,
            "next": next,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("initialised project `{name}` in {}:", dir.display());
    for p in &written {
        println!("  wrote {}", p.display());
    }
    println!("next:");
    for (i, step) in next.iter().enumerate() {
        println!("  {}. {step}", i + 1);
    }
    Ok(ExitCode::SUCCESS)
}
