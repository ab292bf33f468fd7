//! `lightsout memory ...`: argument parsing and wiring of `lightsout-memory`.

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use lightsout_memory::export::render_record_md;
use lightsout_memory::{
    AnyStore, Author, ExportOptions, Filter, Fingerprint, Guard, Kind, Memory, NewRecord,
    PackOptions, Record, RecordId, SourceKind, SqliteStore, Status, format_time, parse_time,
};
use serde::Serialize;
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The memory on whichever backend `--store` / `--db` names.
type Mem = Memory<AnyStore>;

/// `lightsout memory`: decisions, patterns and lessons kept across factory runs.
///
/// Exit codes: 0 ok; 1 problems found (`check` violations, import errors); 2 usage, I/O or
/// database error.
#[derive(Debug, Args)]
pub(crate) struct MemoryArgs {
    /// The memory database file (created on first use).
    #[arg(
        long,
        global = true,
        env = "LIGHTSOUT_MEMORY_DB",
        default_value = ".lightsout/memory.db"
    )]
    db: PathBuf,
    /// Where the memory lives instead of --db: a `postgres://user@host:port/database` URL
    /// (a memory every worker of a fleet shares; migrations run on first use), or a `SQLite`
    /// file path.
    #[arg(
        long,
        global = true,
        env = "LIGHTSOUT_MEMORY_STORE",
        value_name = "URL|PATH"
    )]
    store: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    format: Format,
    #[command(subcommand)]
    command: MemoryCommand,
}

/// Output formats of `lightsout memory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// For a terminal.
    Human,
    /// JSON on stdout.
    Json,
}

/// `lightsout memory` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum MemoryCommand {
    /// Add a decision, pattern or lesson.
    Add(RecordArgs),
    /// Show a record (current version; `--history` for every version).
    Show {
        /// Record id (`M-7` or `7`).
        id: String,
        /// Every version, oldest first (transaction time).
        #[arg(long)]
        history: bool,
        /// The supersede chain through this record.
        #[arg(long, conflicts_with = "history")]
        chain: bool,
    },
    /// List records: those in force now, or as of a time or commit.
    List(ListArgs),
    /// Full-text search (BM25), best first.
    Search {
        /// Words to search for.
        #[arg(required = true)]
        query: Vec<String>,
        /// At most this many results.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Search every current record, not only those in force.
        #[arg(long)]
        all: bool,
    },
    /// Replace a record by a new one; both are kept and linked.
    Supersede {
        /// The record being replaced.
        old: String,
        #[command(flatten)]
        record: RecordArgs,
    },
    /// Mark a record deprecated: it stays, but is no longer in force.
    Deprecate {
        /// Record id.
        id: String,
    },
    /// The context pack for a task: the records that apply, within a token budget.
    Context {
        /// The task text (title, requirement text).
        #[arg(required = true)]
        task: Vec<String>,
        /// A file the task touches (repeatable); records scoped to it rank higher.
        #[arg(long = "touch", value_name = "PATH")]
        touched: Vec<String>,
        /// Budget in estimated tokens (characters / 4).
        #[arg(long, default_value_t = 1500)]
        budget: usize,
        /// Use the records in force at this time (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Check a git diff against the guards of the decisions in force; exit 1 on a violation.
    Check {
        /// Revisions `A..B` (`git diff A B`); `A` alone means `A..HEAD`.
        #[arg(
            long,
            required_unless_present = "diff_file",
            conflicts_with = "diff_file"
        )]
        diff: Option<String>,
        /// The repository.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Unified diff text from a file, or `-` for stdin (dependency guards then use line
        /// heuristics).
        #[arg(long)]
        diff_file: Option<PathBuf>,
    },
    /// Import a MADR folder, a DECISIONS.md or a spec's `## Decisions`, in one transaction.
    Import {
        /// Folder or file.
        path: PathBuf,
        /// What the source is (guessed when omitted).
        #[arg(long, value_enum)]
        from: Option<SourceArg>,
        /// Progress on stderr: a bar on a terminal (`auto`), one line per record (`lines`),
        /// or none.
        #[arg(long, value_enum, default_value_t = Progress::Auto)]
        progress: Progress,
    },
    /// Export the living DECISIONS.md and/or MADR files, atomically.
    Export {
        /// Where to write DECISIONS.md (`-` for stdout).
        #[arg(long, default_value = "DECISIONS.md")]
        decisions_md: PathBuf,
        /// Also write one MADR file per record into this folder.
        #[arg(long)]
        madr_dir: Option<PathBuf>,
        /// Include lessons.
        #[arg(long)]
        include_lessons: bool,
    },
    /// Record eval outcomes: failures become lessons, green runs retire them.
    #[command(subcommand)]
    Lesson(LessonCommand),
}

/// `lightsout memory lesson` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum LessonCommand {
    /// An eval failure of a requirement, by category (deduplicated and counted).
    Fail {
        /// Requirement id.
        #[arg(long)]
        requirement: String,
        /// Failure category (timeout, wrong-status, assertion...).
        #[arg(long)]
        category: String,
        /// What went wrong, for the lesson's context.
        #[arg(long, default_value = "")]
        detail: String,
    },
    /// A green eval run of a requirement.
    Green {
        /// Requirement id.
        #[arg(long)]
        requirement: String,
        /// Green runs in a row that retire a lesson.
        #[arg(long, default_value_t = lightsout_memory::DEFAULT_RETIRE_AFTER)]
        retire_after: u32,
    },
}

/// Import source kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SourceArg {
    /// A folder of MADR files (`docs/decisions`, `docs/adr`).
    Madr,
    /// A DECISIONS.md.
    Decisions,
    /// A spec's `## Decisions` section.
    Spec,
}

/// Progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Progress {
    /// A bar when stderr is a terminal.
    Auto,
    /// `imported N/M` lines on stderr.
    Lines,
    /// Nothing.
    None,
}

/// The fields of a new record.
#[derive(Debug, Args)]
pub(crate) struct RecordArgs {
    /// A whole record as JSON (a file, or `-` for stdin); the other flags then override it.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Kind.
    #[arg(long, value_enum, default_value_t = KindArg::Decision)]
    kind: KindArg,
    /// One-line title.
    #[arg(long, required_unless_present = "json")]
    title: Option<String>,
    /// The forces at play.
    #[arg(long)]
    context: Option<String>,
    /// What was decided.
    #[arg(long)]
    decision: Option<String>,
    /// What follows from it.
    #[arg(long)]
    consequences: Option<String>,
    /// An option considered and turned down (repeatable).
    #[arg(long = "reject", value_name = "OPTION")]
    rejected: Vec<String>,
    /// A path glob the record applies to (repeatable).
    #[arg(long = "path", value_name = "GLOB")]
    paths: Vec<String>,
    /// A tag (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Status.
    #[arg(long, value_enum)]
    status: Option<StatusArg>,
    /// Valid from (YYYY-MM-DD or RFC 3339); now by default.
    #[arg(long)]
    valid_from: Option<String>,
    /// Provenance: spec id.
    #[arg(long)]
    spec: Option<String>,
    /// Provenance: requirement or decision id in the spec.
    #[arg(long)]
    requirement: Option<String>,
    /// Provenance: factory run id.
    #[arg(long)]
    run: Option<String>,
    /// Provenance: git commit.
    #[arg(long)]
    commit: Option<String>,
    /// Provenance: author.
    #[arg(long, value_enum)]
    author: Option<AuthorArg>,
    /// Guard: forbid this dependency in Cargo.toml / package.json / pyproject.toml.
    #[arg(long, value_name = "NAME")]
    forbid_dependency: Vec<String>,
    /// Guard: forbid changes to paths matching this glob.
    #[arg(long, value_name = "GLOB")]
    forbid_path: Vec<String>,
    /// Guard: forbid added lines matching this regex.
    #[arg(long, value_name = "REGEX")]
    forbid_added: Vec<String>,
    /// Guard: require an added line matching this regex in each changed file of
    /// `--guard-paths`.
    #[arg(long, value_name = "REGEX", requires = "guard_paths")]
    require_added: Vec<String>,
    /// The files the regex guards look at (default: the record's scope).
    #[arg(long, value_name = "GLOB")]
    guard_paths: Option<String>,
}

macro_rules! arg_enum {
    ($name:ident => $target:ident { $($v:ident),+ }) => {
        /// CLI spelling of the library enum.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
        pub(crate) enum $name { $(#[doc = stringify!($v)] $v),+ }
        impl $name {
            fn get(self) -> $target { match self { $($name::$v => $target::$v),+ } }
        }
    };
}
arg_enum!(KindArg => Kind { Decision, Pattern, Lesson });
arg_enum!(StatusArg => Status { Proposed, Accepted, Rejected, Deprecated, Superseded });
arg_enum!(AuthorArg => Author { Human, Factory });

/// `lightsout memory list` arguments.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only this kind (repeatable).
    #[arg(long, value_enum)]
    kind: Vec<KindArg>,
    /// Current records with this status (repeatable), instead of those in force.
    #[arg(long, value_enum)]
    status: Vec<StatusArg>,
    /// Every current record, any status.
    #[arg(long, conflicts_with_all = ["status", "as_of", "as_of_commit"])]
    all: bool,
    /// Records in force at this time (YYYY-MM-DD or RFC 3339).
    #[arg(long, conflicts_with = "as_of_commit")]
    as_of: Option<String>,
    /// Records in force when this commit was made.
    #[arg(long)]
    as_of_commit: Option<String>,
    /// The repository of `--as-of-commit`.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
}

fn id(s: &str) -> anyhow::Result<RecordId> {
    Ok(s.parse()?)
}

fn time(s: &str) -> anyhow::Result<lightsout_memory::Timestamp> {
    Ok(parse_time(s)?)
}

fn read_input(p: &Path) -> anyhow::Result<String> {
    if p.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read stdin")?;
        Ok(s)
    } else {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    }
}

impl RecordArgs {
    fn build(self) -> anyhow::Result<NewRecord> {
        let mut r = match &self.json {
            Some(p) => serde_json::from_str::<NewRecord>(&read_input(p)?)
                .with_context(|| format!("{} is not a record in JSON", p.display()))?,
            None => NewRecord::new(self.kind.get(), String::new()),
        };
        if self.json.is_none() {
            r.kind = self.kind.get();
        }
        if let Some(t) = self.title {
            r.title = t;
        }
        for (dst, src) in [
            (&mut r.context, self.context),
            (&mut r.decision, self.decision),
            (&mut r.consequences, self.consequences),
        ] {
            if let Some(s) = src {
                *dst = s;
            }
        }
        r.rejected_options.extend(self.rejected);
        r.scope.paths.extend(self.paths);
        r.scope.tags.extend(self.tags);
        if let Some(s) = self.status {
            r.status = s.get();
        }
        if let Some(t) = &self.valid_from {
            r.valid_from = Some(time(t)?);
        }
        let p = &mut r.provenance;
        for (dst, src) in [
            (&mut p.spec, self.spec),
            (&mut p.requirement, self.requirement),
            (&mut p.run, self.run),
            (&mut p.commit, self.commit),
        ] {
            if src.is_some() {
                *dst = src;
            }
        }
        if let Some(a) = self.author {
            p.author = a.get();
        }
        for name in self.forbid_dependency {
            r.guards.push(Guard::ForbidDependency {
                name,
                ecosystem: None,
            });
        }
        for glob in self.forbid_path {
            r.guards.push(Guard::ForbidPath { glob });
        }
        for regex in self.forbid_added {
            r.guards.push(Guard::ForbidAdded {
                regex,
                paths: self.guard_paths.clone(),
            });
        }
        for regex in self.require_added {
            r.guards.push(Guard::RequireAdded {
                regex,
                paths: self.guard_paths.clone().unwrap_or_default(),
            });
        }
        Ok(r)
    }
}

fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

fn line(r: &Record) -> String {
    format!(
        "{:<7} {:<8} {:<10} {}  {}",
        r.id.to_string(),
        r.kind.as_str(),
        r.status.as_str(),
        format_time(r.valid_from),
        r.title
    )
}

fn print_records(recs: &[Record], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => print_json(&recs),
        Format::Human => {
            if recs.is_empty() {
                println!("no records; add one with `lightsout memory add --title ...`");
            }
            for r in recs {
                println!("{}", line(r));
            }
            Ok(())
        }
    }
}

#[derive(Serialize)]
struct Written {
    id: RecordId,
    action: &'static str,
}

pub(crate) fn run(args: MemoryArgs) -> anyhow::Result<ExitCode> {
    let format = args.format;
    let mem = match &args.store {
        Some(store) => Memory::open_location(store).with_context(|| {
            format!(
                "cannot open the memory at {}",
                lightsout_memory::redacted_location(store)
            )
        })?,
        None => SqliteStore::open(&args.db)
            .map(|s| Memory::new(AnyStore::Sqlite(s)))
            .with_context(|| format!("cannot open the memory at {}", args.db.display()))?,
    };
    match args.command {
        MemoryCommand::Add(rec) => {
            let id = mem.add(rec.build()?)?;
            print_written(id, "added", format, || format!("added {id}"))?;
        }
        MemoryCommand::Show { id, history, chain } => show(&mem, &id, history, chain, format)?,
        MemoryCommand::List(a) => list(&mem, &a, format)?,
        MemoryCommand::Search { query, limit, all } => search(&mem, &query, limit, all, format)?,
        MemoryCommand::Supersede { old, record } => {
            let old = id(&old)?;
            let new = mem.supersede(old, record.build()?)?;
            print_written(new, "superseded", format, || {
                format!("added {new}, superseding {old}")
            })?;
        }
        MemoryCommand::Deprecate { id: s } => {
            let id = id(&s)?;
            let outcome = mem.deprecate(id)?;
            print_written(id, "deprecated", format, || match outcome {
                lightsout_memory::Outcome::Unchanged => format!("{id} was already deprecated"),
                _ => format!("deprecated {id}"),
            })?;
        }
        MemoryCommand::Context {
            task,
            touched,
            budget,
            as_of,
        } => context(&mem, &task, &touched, budget, as_of.as_deref(), format)?,
        MemoryCommand::Check {
            diff,
            repo,
            diff_file,
        } => return check(&mem, diff, &repo, diff_file.as_deref(), format),
        MemoryCommand::Import {
            path,
            from,
            progress,
        } => return import(&mem, &path, from, progress, format),
        MemoryCommand::Export {
            decisions_md,
            madr_dir,
            include_lessons,
        } => export(&mem, decisions_md, madr_dir, include_lessons, format)?,
        MemoryCommand::Lesson(cmd) => lesson(mem, cmd, format)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Reports a record written by `action`: JSON, or the `human` line on stdout.
fn print_written(
    id: RecordId,
    action: &'static str,
    format: Format,
    human: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    match format {
        Format::Json => print_json(&Written { id, action })?,
        Format::Human => println!("{}", human()),
    }
    Ok(())
}

/// `memory show`: the record, its versions (`history`) or its supersede chain.
fn show(mem: &Mem, s: &str, history: bool, chain: bool, format: Format) -> anyhow::Result<()> {
    let id = id(s)?;
    let recs = if history {
        mem.history(id)?
    } else if chain {
        mem.chain(id)?
    } else {
        vec![mem.get(id)?]
    };
    match format {
        Format::Json if !history && !chain => print_json(&recs[0])?,
        Format::Json => print_json(&recs)?,
        Format::Human => {
            for r in &recs {
                if history {
                    println!(
                        "<!-- version {}, recorded {} -->",
                        r.version,
                        format_time(r.recorded_at)
                    );
                }
                print!("{}", render_record_md(r));
                if let Some(l) = &r.lesson {
                    println!(
                        "\nLesson: {} failures, {} green runs in a row{}",
                        l.failures,
                        l.green_streak,
                        l.retired_at
                            .map(|t| format!(", retired {}", format_time(t)))
                            .unwrap_or_default()
                    );
                }
                println!();
            }
        }
    }
    Ok(())
}

/// `memory list`: the records in force now, or as of a time or commit, or by status.
fn list(mem: &Mem, a: &ListArgs, format: Format) -> anyhow::Result<()> {
    let kinds: Vec<Kind> = a.kind.iter().map(|k| k.get()).collect();
    let filter = if a.all {
        Filter::Current {
            statuses: Vec::new(),
        }
    } else if !a.status.is_empty() {
        Filter::Current {
            statuses: a.status.iter().map(|s| s.get()).collect(),
        }
    } else if let Some(t) = &a.as_of {
        Filter::InForce { at: time(t)? }
    } else if let Some(rev) = &a.as_of_commit {
        Filter::InForce {
            at: lightsout_memory::guard::commit_time(&a.repo, rev)?,
        }
    } else {
        Filter::InForce {
            at: lightsout_memory::now(),
        }
    };
    print_records(&mem.list(filter, &kinds)?, format)
}

/// `memory search`: BM25 hits among the records in force (or every current one with `all`).
fn search(
    mem: &Mem,
    query: &[String],
    limit: usize,
    all: bool,
    format: Format,
) -> anyhow::Result<()> {
    let filter = if all {
        Filter::Current {
            statuses: Vec::new(),
        }
    } else {
        Filter::InForce {
            at: lightsout_memory::now(),
        }
    };
    let hits = mem.search(&query.join(" "), filter, limit)?;
    match format {
        Format::Json => print_json(&hits)?,
        Format::Human => {
            if hits.is_empty() {
                println!("no matches (only records in force are searched; try --all)");
            }
            for h in &hits {
                println!("{:>7.2}  {}", -h.bm25.unwrap_or(0.0), line(&h.record));
            }
        }
    }
    Ok(())
}

/// `memory context`: the context pack for a task within `budget` tokens.
fn context(
    mem: &Mem,
    task: &[String],
    touched: &[String],
    budget: usize,
    as_of: Option<&str>,
    format: Format,
) -> anyhow::Result<()> {
    let opts = PackOptions {
        budget_tokens: budget,
        at: as_of.map(time).transpose()?,
        ..PackOptions::default()
    };
    let pack = mem.context_pack_with(&task.join(" "), touched, &opts)?;
    match format {
        Format::Json => print_json(&pack)?,
        Format::Human => {
            if pack.markdown.is_empty() {
                eprintln!(
                    "nothing in memory applies to this task (or the budget of {budget} tokens is too small)"
                );
            } else {
                println!("{}", pack.markdown);
            }
        }
    }
    Ok(())
}

/// `memory check`: the guards in force against a diff (`A..B` in `repo`, or a diff file);
/// exit 1 on a violation.
fn check(
    mem: &Mem,
    diff: Option<String>,
    repo: &Path,
    diff_file: Option<&Path>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let report = if let Some(p) = diff_file {
        mem.check_diff_text(&read_input(p)?)?
    } else {
        let spec = diff.unwrap_or_default();
        let (base, head) = match spec.split_once("..") {
            Some((a, b)) => (
                a.to_owned(),
                if b.is_empty() { "HEAD" } else { b }.to_owned(),
            ),
            None => (spec.clone(), "HEAD".to_owned()),
        };
        if base.is_empty() || head.starts_with('.') {
            anyhow::bail!("--diff takes `A..B` (two revisions), got `{spec}`");
        }
        mem.check_diff(repo, &base, &head)?
    };
    match format {
        Format::Json => print_json(&report)?,
        Format::Human => {
            for v in &report.violations {
                let at = v.line.map(|l| format!(":{l}")).unwrap_or_default();
                println!(
                    "{}{at}: {} — breaks {} \"{}\" ({})",
                    v.path, v.message, v.record, v.title, v.guard
                );
            }
            println!(
                "{} violation(s); {} guard(s) checked over {} file(s)",
                report.violations.len(),
                report.guards_checked,
                report.files
            );
        }
    }
    if !report.violations.is_empty() {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `memory import`: a MADR folder, a DECISIONS.md or a spec's decisions, in one
/// transaction; exit 1 when an import diagnostic is an error.
fn import(
    mem: &Mem,
    path: &Path,
    from: Option<SourceArg>,
    progress: Progress,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let kind = from.map(|f| match f {
        SourceArg::Madr => SourceKind::Madr,
        SourceArg::Decisions => SourceKind::Decisions,
        SourceArg::Spec => SourceKind::Spec,
    });
    let bar = (progress == Progress::Auto && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template("importing {bar:40} {pos}/{len}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut report_progress = |done: usize, total: usize| match (&bar, progress) {
        (Some(b), _) => {
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
        (None, Progress::Lines) => {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "imported {done}/{total}");
        }
        _ => {}
    };
    let rep = mem
        .import_path(path, kind, &mut report_progress)
        .with_context(|| format!("import of {} failed; nothing was written", path.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for d in &rep.diagnostics {
        eprintln!(
            "{}[{}]: {}:{}:{}: {}\n  help: {}",
            d.severity.as_str(),
            d.code,
            d.path.as_deref().unwrap_or(Path::new("-")).display(),
            d.span.line,
            d.span.column,
            d.message,
            d.help
        );
    }
    match format {
        Format::Json => print_json(&rep)?,
        Format::Human => println!(
            "imported {} record(s) from {}: {} new, {} updated, {} unchanged",
            rep.records,
            path.display(),
            rep.created,
            rep.updated,
            rep.unchanged
        ),
    }
    if rep
        .diagnostics
        .iter()
        .any(|d| d.severity == lightsout_spec::Severity::Error)
    {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `memory export`: DECISIONS.md (`-` for stdout) and, with `madr_dir`, one MADR file per
/// record.
fn export(
    mem: &Mem,
    decisions_md: PathBuf,
    madr_dir: Option<PathBuf>,
    include_lessons: bool,
    format: Format,
) -> anyhow::Result<()> {
    let opts = ExportOptions { include_lessons };
    let mut written = Vec::new();
    if decisions_md.as_os_str() == "-" {
        print!("{}", mem.render_decisions_md(opts)?);
    } else {
        mem.export_decisions_md(&decisions_md, opts)?;
        written.push(decisions_md);
    }
    if let Some(dir) = madr_dir {
        written.extend(mem.export_madr(&dir, opts)?);
    }
    match format {
        Format::Json => print_json(&written)?,
        Format::Human => {
            for p in &written {
                eprintln!("wrote {}", p.display());
            }
        }
    }
    Ok(())
}

/// `memory lesson`: an eval failure becomes (or counts on) a lesson; green runs retire them.
fn lesson(mem: Mem, cmd: LessonCommand, format: Format) -> anyhow::Result<()> {
    match cmd {
        LessonCommand::Fail {
            requirement,
            category,
            detail,
        } => {
            let id = mem.record_lesson(Fingerprint {
                requirement,
                category,
                detail,
            })?;
            let r = mem.get(id)?;
            let failures = r.lesson.as_ref().map_or(0, |l| l.failures);
            match format {
                Format::Json => print_json(&r)?,
                Format::Human => println!("lesson {id}: seen {failures} time(s)"),
            }
        }
        LessonCommand::Green {
            requirement,
            retire_after,
        } => {
            let retired = mem
                .with_retire_after(retire_after)
                .record_green(&requirement)?;
            match format {
                Format::Json => print_json(&retired)?,
                Format::Human => {
                    for id in &retired {
                        println!("retired lesson {id}");
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        memory: MemoryArgs,
    }

    fn run_with(argv: &[&str]) -> ExitCode {
        let cli = Cli::try_parse_from(std::iter::once("memory").chain(argv.iter().copied()))
            .expect("the arguments parse");
        run(cli.memory).expect("the command runs")
    }

    fn titles(mem: &Mem) -> Vec<String> {
        mem.current_records()
            .expect("records")
            .into_iter()
            .map(|r| r.title)
            .collect()
    }

    /// `--store postgres://…` writes to the server, not to the --db file; `--store PATH`
    /// is a `SQLite` file.
    #[test]
    fn memory_store_is_chosen_by_the_url_scheme() {
        let url = lightsout_memory::testing::fresh_schema_url("cli_store");
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("memory.db");
        let db_arg = db.to_str().expect("a UTF-8 path");
        let add = |store: &str, title: &str| {
            run_with(&[
                "--db", db_arg, "--store", store, "--format", "json", "add", "--title", title,
            ])
        };
        assert_eq!(add(&url, "Share the memory in Postgres"), ExitCode::SUCCESS);
        assert!(!db.exists(), "--store overrides --db");
        let pg = Memory::open_location(&url).expect("open the server's memory");
        assert!(matches!(pg.store(), AnyStore::Postgres(_)));
        assert_eq!(titles(&pg), ["Share the memory in Postgres"]);

        let file = dir.path().join("other.db");
        let file_arg = file.to_str().expect("a UTF-8 path");
        assert_eq!(add(file_arg, "Keep this one local"), ExitCode::SUCCESS);
        let local = Memory::open_location(file_arg).expect("open the file");
        assert!(matches!(local.store(), AnyStore::Sqlite(_)));
        assert_eq!(titles(&local), ["Keep this one local"]);
        assert_eq!(titles(&pg), ["Share the memory in Postgres"]);
    }
}
