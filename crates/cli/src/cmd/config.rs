//! `lightsout config check`: reads `lightsout.toml` as `lightsout run` would, and prints the
//! resolved configuration, where each value came from, and whether each agent profile's
//! program can be found.

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use lightsout_factory::config::{Explained, Source, explain};
use std::path::PathBuf;
use std::process::ExitCode;

/// `lightsout config ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Check lightsout.toml: every value as `lightsout run` resolves it and where it came from
    /// (a line of the file, an environment variable, or the default), and each agent profile's
    /// program. Exit 0 valid, 1 invalid or a used agent program missing, 2 unreadable.
    Check(CheckArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Aligned lines for people.
    Human,
    /// One JSON object.
    Json,
}

/// `lightsout config check [--config PATH] [--format human|json]`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The configuration file (default: lightsout.toml at the repository root, else in the
    /// current directory).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// One agent profile as it would run.
#[derive(Debug, serde::Serialize)]
struct Profile {
    name: String,
    preset: String,
    /// Task kinds it serves (`*` for `[agents] default`).
    serves: Vec<String>,
    /// `None` for a replay.
    program: Option<String>,
    args: Vec<String>,
    /// Where the program was found on the agents' PATH.
    found: Option<PathBuf>,
}

fn default_path() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let root = rt
        .block_on(lightsout_factory::repo_root(&cwd))
        .unwrap_or(cwd);
    Ok(root.join("lightsout.toml"))
}

pub(crate) fn run(c: ConfigCommand) -> anyhow::Result<ExitCode> {
    let ConfigCommand::Check(args) = c;
    let path = match args.config {
        Some(p) => p,
        None => default_path()?,
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}; `lightsout init` writes one", path.display()))?;
    let base = path
        .parent()
        .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf);
    let holdout_env = std::env::var("LIGHTSOUT_HOLDOUT").ok();
    let explained = match explain(&text, &base, holdout_env.as_deref()) {
        Ok(e) => e,
        Err(e) => {
            if args.format == Format::Json {
                let out = serde_json::json!({
                    "config": path, "valid": false, "errors": [e.to_string()],
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                eprintln!("error: {e}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    let (profiles, problems) = profiles(&explained.config, &base)?;
    if args.format == Format::Json {
        let out = serde_json::json!({
            "config": path,
            "valid": problems.is_empty(),
            "values": explained.values,
            "agents": profiles,
            "errors": problems,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_human(&path, &explained, &profiles, &problems);
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Each agent profile as it would run, and the problems found: a program not found on the
/// agents' PATH for a profile that serves some task kind.
fn profiles(
    config: &lightsout_factory::config::Config,
    base: &std::path::Path,
) -> anyhow::Result<(Vec<Profile>, Vec<String>)> {
    let env = config.allowed_env(std::env::vars());
    let mut problems = Vec::new();
    let mut profiles = Vec::new();
    for (name, p) in &config.agent {
        let mut serves: Vec<String> = config
            .agents
            .kinds
            .iter()
            .filter(|(_, v)| *v == name)
            .map(|(k, _)| k.clone())
            .collect();
        if config.agents.default.as_deref() == Some(name) {
            serves.push("*".into());
        }
        let command = lightsout_factory::command_from_profile(name, p)?;
        let found = command
            .as_ref()
            .and_then(|c| lightsout_agent::find_program(&c.program, &env, base));
        if let Some(c) = &command
            && found.is_none()
            && !serves.is_empty()
        {
            problems.push(format!(
                "agent profile `{name}`: program `{}` is not found on the agents' PATH ({}); \
                 install it or set program = \"/full/path\" in [agent.{name}]",
                c.program,
                env.get("PATH").map_or("unset", String::as_str)
            ));
        }
        profiles.push(Profile {
            name: name.clone(),
            preset: if p.preset.is_empty() {
                "command".into()
            } else {
                p.preset.clone()
            },
            serves,
            program: command.as_ref().map(|c| c.program.clone()),
            args: command.map(|c| c.args).unwrap_or_default(),
            found,
        });
    }
    Ok((profiles, problems))
}

/// The resolved values with their sources, the agent profiles and the problems, for people.
fn print_human(
    path: &std::path::Path,
    explained: &Explained,
    profiles: &[Profile],
    problems: &[String],
) {
    println!("configuration: {}", path.display());
    let width = explained
        .values
        .iter()
        .map(|v| v.key.len() + v.value.to_string().len() + 3)
        .max()
        .unwrap_or(0)
        .min(72);
    for v in &explained.values {
        let line = if v.value.is_null() {
            format!("{} (unset)", v.key)
        } else {
            format!("{} = {}", v.key, v.value)
        };
        let from = match &v.source {
            Source::Default => "default".to_owned(),
            other => other.to_string(),
        };
        println!("  {line:<width$}  # {from}");
    }
    println!("agents:");
    for p in profiles {
        let serves = if p.serves.is_empty() {
            "no task kind".to_owned()
        } else {
            p.serves.join(", ").replace('*', "every other kind")
        };
        let run = match (&p.program, &p.found) {
            (None, _) => "replays recorded patches".to_owned(),
            (Some(prog), Some(at)) => {
                format!("runs {} {} ({})", prog, p.args.join(" "), at.display())
            }
            (Some(prog), None) => format!("runs {prog}: NOT FOUND on the agents' PATH"),
        };
        println!("  {} ({}) serves {serves}; {run}", p.name, p.preset);
    }
    for e in problems {
        eprintln!("error: {e}");
    }
    if problems.is_empty() {
        println!("ok: the configuration is valid");
    }
}
