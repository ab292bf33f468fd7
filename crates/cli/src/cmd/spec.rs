//! `lightsout spec ...`: argument parsing and wiring of `lightsout-spec`.

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use lightsout_spec::{CheckOptions, Dialect, render};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `lightsout spec` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum SpecCommand {
    /// Check specs for readiness. Exit 0 when every spec is ready, 1 when problems were
    /// found, 2 on a usage or I/O error.
    Check {
        /// Spec files, or directories searched for specs (spec.md, requirements.md,
        /// *.spec.md, *-spec.md, markdown with `id:` front matter).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Treat warnings as blocking.
        #[arg(long)]
        strict: bool,
        /// Also report the rules of this lint group: `pedantic` adds the judgement calls
        /// (weak words, glossary coverage, EARS subjects) and the conventions of one format
        /// applied to another (a scenario per Spec Kit FR or Kiro criterion).
        #[arg(long, value_enum)]
        lint: Vec<LintArg>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
        format: CheckFormat,
        /// Read every file as this dialect instead of detecting it.
        #[arg(long, value_enum)]
        dialect: Option<DialectArg>,
        /// The holdout directory: its scenario files' `Satisfies:` ids (ids only, never
        /// their text) turn on LS103, a requirement without a holdout scenario, as
        /// `lightsout run` does.
        #[arg(long, value_name = "DIR")]
        holdout: Option<PathBuf>,
    },
    /// Print a parsed spec.
    Show {
        /// The spec file.
        path: PathBuf,
        /// `json` (the typed Spec) or `markdown` (re-rendered in the Lightsout format).
        #[arg(long, value_enum, default_value_t = ShowFormat::Json)]
        format: ShowFormat,
        /// Read the file as this dialect instead of detecting it.
        #[arg(long, value_enum)]
        dialect: Option<DialectArg>,
    },
    /// Print the JSON Schema of the documents `spec` commands emit.
    Schema {
        /// Which document.
        #[arg(value_enum, default_value_t = SchemaKind::Spec)]
        which: SchemaKind,
    },
    /// Requirements added, removed and modified between two versions of a spec, by id.
    /// Exit 1 when a requirement changed without a `version` bump.
    Diff {
        /// The old version.
        old: PathBuf,
        /// The new version.
        new: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = DiffFormat::Human)]
        format: DiffFormat,
        /// Read both files as this dialect instead of detecting it.
        #[arg(long, value_enum)]
        dialect: Option<DialectArg>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum CheckFormat {
    Human,
    Json,
    Sarif,
}

/// A lint group of `--lint` (see `lightsout_spec::codes::LintGroup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LintArg {
    /// The rules every check reports (on already; accepted for symmetry).
    Default,
    /// Judgement calls and cross-format conventions.
    Pedantic,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ShowFormat {
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum DiffFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum SchemaKind {
    Spec,
    Diagnostic,
    Report,
    Diff,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum DialectArg {
    Lightsout,
    SpecKit,
    Openspec,
    OpenspecDelta,
    Kiro,
    Nlspec,
}

impl From<DialectArg> for Dialect {
    fn from(d: DialectArg) -> Self {
        match d {
            DialectArg::Lightsout => Dialect::Lightsout,
            DialectArg::SpecKit => Dialect::SpecKit,
            DialectArg::Openspec => Dialect::OpenSpec,
            DialectArg::OpenspecDelta => Dialect::OpenSpecDelta,
            DialectArg::Kiro => Dialect::Kiro,
            DialectArg::Nlspec => Dialect::NlSpec,
        }
    }
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v).context("cannot write to stdout")?;
    writeln!(out).context("cannot write to stdout")?;
    Ok(())
}

fn print_styled(s: &str) -> anyhow::Result<()> {
    // anstream strips the ANSI styles when stdout is not a terminal or NO_COLOR is set.
    let mut out = anstream::stdout().lock();
    out.write_all(s.as_bytes())
        .context("cannot write to stdout")?;
    Ok(())
}

fn read(path: &Path, dialect: Option<Dialect>) -> anyhow::Result<(lightsout_spec::Spec, String)> {
    let (spec, text, _) = lightsout_spec::read(path, dialect)
        .with_context(|| format!("check that {} exists and is readable", path.display()))?;
    Ok((spec, text))
}

pub(crate) fn run(cmd: SpecCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SpecCommand::Check {
            paths,
            strict,
            lint,
            format,
            dialect,
            holdout,
        } => {
            let coverage = match &holdout {
                Some(dir) => Some(
                    lightsout_eval::HoldoutCoverage::of_dir(dir)
                        .with_context(|| format!("reading the holdout {}", dir.display()))?
                        .with_context(|| {
                            format!(
                                "{} holds no scenario naming a requirement (`Satisfies:`); its coverage is unknown",
                                dir.display()
                            )
                        })?
                        .requirements(),
                ),
                None => None,
            };
            let opts = CheckOptions {
                pedantic: lint.contains(&LintArg::Pedantic),
                holdout: coverage,
            };
            let checked =
                lightsout_spec::check_paths(&paths, dialect.map(Into::into), strict, &opts)
                    .context("pass spec files or folders that hold them")?;
            let report = &checked.report;
            match format {
                CheckFormat::Human => {
                    let text =
                        render::human_report(report, &|p| checked.sources.get(p).cloned(), true);
                    print_styled(&text)?;
                }
                CheckFormat::Json => print_json(report)?,
                CheckFormat::Sarif => print_json(&render::sarif(report))?,
            }
            Ok(if report.summary.ready {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        SpecCommand::Show {
            path,
            format,
            dialect,
        } => {
            let (spec, _) = read(&path, dialect.map(Into::into))?;
            match format {
                ShowFormat::Json => print_json(&spec)?,
                ShowFormat::Markdown => print_styled(&render::to_markdown(&spec))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        SpecCommand::Schema { which } => {
            let name = match which {
                SchemaKind::Spec => "spec",
                SchemaKind::Diagnostic => "diagnostic",
                SchemaKind::Report => "report",
                SchemaKind::Diff => "diff",
            };
            let schema = lightsout_spec::schema(name).context("schema generation failed")?;
            print_json(&schema)?;
            Ok(ExitCode::SUCCESS)
        }
        SpecCommand::Diff {
            old,
            new,
            format,
            dialect,
        } => {
            let dialect = dialect.map(Into::into);
            let (a, _) = read(&old, dialect)?;
            let (b, new_text) = read(&new, dialect)?;
            let d = lightsout_spec::diff(&a, &b);
            match format {
                DiffFormat::Human => print_styled(&render::human_diff(&d, &new_text, true))?,
                DiffFormat::Json => print_json(&d)?,
            }
            Ok(if d.diagnostics.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `lightsout spec check --format json` prints for a dialect is what `--dialect`
    /// accepts, for every dialect, and it reads back as the same dialect.
    #[test]
    fn every_dialect_serde_name_is_a_dialect_flag_value() {
        for d in Dialect::ALL {
            let json = serde_json::to_value(d).unwrap_or_default();
            let name = json.as_str().unwrap_or_default();
            let arg = DialectArg::from_str(name, false);
            assert!(arg.is_ok(), "--dialect rejects {name:?}: {arg:?}");
            assert_eq!(arg.map(Dialect::from).ok(), Some(d), "{name}");
        }
        assert_eq!(DialectArg::value_variants().len(), Dialect::ALL.len());
    }
}
