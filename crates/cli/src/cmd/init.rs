//! `lightsout init [DIR] [--force]`: scaffolds a factory project. The files come from
//! `lightsout_factory::scaffold`.

use anyhow::Context as _;
use clap::Args;
use lightsout_factory::scaffold;
use std::path::PathBuf;
use std::process::ExitCode;

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
}

pub(crate) fn run(args: &InitArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let dir = std::fs::canonicalize(&args.dir)
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    let name = scaffold::project_name(&dir);
    let existing = scaffold::existing(&dir, &name);
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
    let written = scaffold::write(&dir, &name)?;
    println!("initialised project `{name}` in {}:", dir.display());
    for p in &written {
        println!("  wrote {}", p.display());
    }
    println!(
        "next:\n  1. fill the [PLACEHOLDERS] in specs/{name}.md, then `lightsout spec check specs/`\n  \
         2. write holdout scenarios in ../{name}-holdout/ (outside the repository: agents never see it)\n  \
         3. choose your agent in lightsout.toml ([agents] default), then\n  \
         4. `git init -b main && git add -A && git commit -m init` (if not a repository yet) and `lightsout run`"
    );
    Ok(ExitCode::SUCCESS)
}
