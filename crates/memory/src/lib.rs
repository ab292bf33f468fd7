//! This crate provides Lightsout's decision memory: decisions, patterns and lessons that
//! persist across factory runs in a SQLite file (or on a PostgreSQL server, feature
//! `postgres`), so that a run does not quietly reverse the architecture of the last one.
//!
//! # Brief overview
//! - [`Memory`] is the API the factory and the `lightsout memory` command use: open a store,
//!   [`Memory::add`], [`Memory::supersede`], [`Memory::context_pack`],
//!   [`Memory::check_diff`], [`Memory::record_lesson`], [`Memory::record_green`],
//!   [`Memory::import_path`], [`Memory::export_decisions_md`].
//! - [`Store`] is the storage trait (two required methods); [`SqliteStore`] implements it
//!   on a real SQLite file (bundled SQLite, WAL, FTS5, versioned migrations), and
//!   `PgStore` (feature `postgres`) on a PostgreSQL server shared by a fleet. Both share the
//!   write rules (versions, supersede, lessons); [`AnyStore::open`] picks one by the
//!   location's scheme (`postgres://` or a file path).
//! - [`Record`] is one version of a decision, pattern or lesson. Records are never deleted;
//!   time is kept twice (valid time `valid_from..valid_to`, transaction time
//!   `recorded_at..recorded_to`), so "what was decided as of T / commit X" is answerable
//!   ([`Memory::as_of`], [`Memory::as_of_commit`]).
//! - [`retrieve`] ranks records (FTS5 BM25 + scope + recency + lesson recurrence) and builds
//!   token-budgeted [`ContextPack`]s; [`guard`] checks a git diff against decisions' [`Guard`]s;
//!   [`import`] and [`export`] read and write MADR folders, `DECISIONS.md` and specs'
//!   `## Decisions` sections.
//!
//! Sibling crates: specs come from `lightsout-spec` (whose [`Diagnostic`] type the importers
//! use); the factory (`lightsout-factory`) calls this crate between attempts.
//!
//! # Example
//! ```
//! use lightsout_memory::{Guard, Memory, NewRecord};
//!
//! # fn main() -> Result<(), lightsout_memory::Error> {
//! let mem = Memory::open_in_memory()?;
//! let mut d = NewRecord::decision("SQLite, not Postgres", "Store state in one SQLite file.");
//! d.scope.paths.push("src/store/**".into());
//! d.guards.push(Guard::ForbidDependency { name: "postgres".into(), ecosystem: None });
//! let id = mem.add(d)?;
//!
//! let pack = mem.context_pack("add a table to the sqlite store", &["src/store/db.rs".into()], 400)?;
//! assert_eq!(pack.items[0].id, id);
//! assert!(pack.tokens <= 400);
//!
//! let diff = "diff --git a/Cargo.toml b/Cargo.toml\n--- a/Cargo.toml\n+++ b/Cargo.toml\n@@ -1,0 +2 @@\n+postgres = \"0.19\"\n";
//! let report = mem.check_diff_text(diff)?;
//! assert_eq!(report.violations[0].record, id);
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]
// Product names (SQLite, OpenAI, MADR) read better without backticks in prose.
#![allow(clippy::doc_markdown)]

pub mod error;
pub mod export;
pub mod guard;
pub mod import;
pub mod model;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod retrieve;
pub mod sqlite;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod write;

pub use error::Error;
pub use export::ExportOptions;
pub use guard::{CheckReport, Violation};
pub use import::SourceKind;
pub use lightsout_spec::Diagnostic;
pub use model::{
    Author, Ecosystem, Fingerprint, Guard, Identity, Kind, LessonStats, NewRecord, Provenance,
    Record, RecordId, Scope, Status, Timestamp, format_time, from_millis, now, parse_time,
    to_millis,
};
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
pub use retrieve::{ContextPack, PackItem, PackOptions};
pub use sqlite::SqliteStore;
pub use store::{Applied, Change, Filter, Hit, Outcome, Query, Store};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Green runs in a row that retire a lesson, unless [`Memory::with_retire_after`] says otherwise.
pub const DEFAULT_RETIRE_AFTER: u32 = 3;

/// Returns `rec` with its text normalised: line endings to `\n`, title, body fields, options,
/// tags, globs and provenance trimmed. Stores apply this before [`validate`].
pub fn normalize(rec: &NewRecord) -> NewRecord {
    let clean = |s: &str| {
        s.replace("\r\n", "\n")
            .replace('\r', "\n")
            .trim()
            .to_owned()
    };
    let opt = |s: &Option<String>| {
        s.as_deref()
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
    };
    let mut r = rec.clone();
    r.title = clean(&r.title);
    r.context = clean(&r.context);
    r.decision = clean(&r.decision);
    r.consequences = clean(&r.consequences);
    r.rejected_options = r.rejected_options.iter().map(|o| clean(o)).collect();
    r.scope.paths = r.scope.paths.iter().map(|p| p.trim().to_owned()).collect();
    r.scope.tags = r.scope.tags.iter().map(|p| p.trim().to_owned()).collect();
    r.provenance.spec = opt(&r.provenance.spec);
    r.provenance.requirement = opt(&r.provenance.requirement);
    r.provenance.run = opt(&r.provenance.run);
    r.provenance.commit = opt(&r.provenance.commit);
    r.external_key = opt(&r.external_key);
    r
}

/// Checks a record's invariants (see [`NewRecord`]).
///
/// # Errors
/// [`Error::Invalid`] naming the first broken one; [`Error::Glob`] / [`Error::Regex`] for a
/// glob or a guard's regex that does not parse.
pub fn validate(rec: &NewRecord) -> Result<(), Error> {
    let bad = |m: String| Err(Error::Invalid(m));
    let one_line = |s: &str| !s.contains(['\n', '\r']);
    if rec.title.trim().is_empty() || !one_line(&rec.title) {
        return bad("a record needs a one-line, non-empty title".into());
    }
    for o in &rec.rejected_options {
        if o.trim().is_empty() || !one_line(o) {
            return bad(format!("rejected option `{o}` must be one non-empty line"));
        }
    }
    for p in &rec.scope.paths {
        if p.is_empty() || p.contains(['`', '\n']) {
            return bad(format!(
                "scope glob `{p}` must be non-empty, one line, no backticks"
            ));
        }
        retrieve::compile_glob(p)?;
    }
    for t in &rec.scope.tags {
        if t.is_empty() || t.contains(|c: char| c.is_whitespace() || c == '`' || c == ',') {
            return bad(format!(
                "tag `{t}` must be one word (no spaces, commas or backticks)"
            ));
        }
    }
    let p = &rec.provenance;
    for v in [
        &p.spec,
        &p.requirement,
        &p.run,
        &p.commit,
        &rec.external_key,
    ]
    .into_iter()
    .flatten()
    {
        if v.contains(['\n', '\r']) {
            return bad(format!("`{v}` must be one line"));
        }
    }
    for g in &rec.guards {
        match g {
            Guard::ForbidDependency { name, .. } => {
                if guard::normalize_name(name).is_empty() {
                    return bad("a forbidden dependency needs a name".into());
                }
            }
            Guard::ForbidPath { glob } => {
                retrieve::compile_glob(glob)?;
            }
            Guard::ForbidAdded { regex, paths } => {
                regex::Regex::new(regex).map_err(|source| Error::Regex {
                    regex: regex.clone(),
                    record: None,
                    source,
                })?;
                if let Some(p) = paths {
                    retrieve::compile_glob(p)?;
                }
            }
            Guard::RequireAdded { regex, paths } => {
                regex::Regex::new(regex).map_err(|source| Error::Regex {
                    regex: regex.clone(),
                    record: None,
                    source,
                })?;
                retrieve::compile_glob(paths)?;
            }
        }
    }
    if let (Some(from), Some(to)) = (rec.valid_from, rec.valid_to)
        && to < from
    {
        return bad("valid_to is before valid_from".into());
    }
    Ok(())
}

/// The outcome of an import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// What the source was read as.
    pub source: SourceKind,
    /// Records read from the source.
    pub records: usize,
    /// New records.
    pub created: usize,
    /// Records that got a new version.
    pub updated: usize,
    /// Records already identical.
    pub unchanged: usize,
    /// The ids touched, in source order.
    pub ids: Vec<RecordId>,
    /// Problems in the source text, with file paths.
    pub diagnostics: Vec<Diagnostic>,
}

/// The decision memory: a [`Store`] plus the operations the factory and CLI need.
///
/// Cheap to share: wrap it in an `Arc` for several tasks; the SQLite store serialises its
/// own access, and several processes may open the same file.
#[derive(Debug)]
pub struct Memory<S = SqliteStore> {
    store: S,
    retire_after: u32,
}

impl Memory<SqliteStore> {
    /// Opens (or creates) the SQLite store at `path` (by convention `.lightsout/memory.db`).
    ///
    /// # Errors
    /// See [`SqliteStore::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Ok(Memory::new(SqliteStore::open(path)?))
    }

    /// A memory on an in-memory SQLite database, for tests and examples.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn open_in_memory() -> Result<Self, Error> {
        Ok(Memory::new(SqliteStore::open_in_memory()?))
    }
}

pub use lightsout_stdx::is_postgres_url;

/// `location` for messages: the password of a `postgres://user:password@…` URL replaced
/// by `***`; a path unchanged.
pub fn redacted_location(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_owned();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split_once(':').map_or(user, |(n, _)| n);
            format!("{scheme}://{name}:***@{host}{tail}")
        }
        _ => location.to_owned(),
    }
}

/// The store a location names: a SQLite file, or (feature `postgres`) a PostgreSQL server.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// A SQLite file.
    Sqlite(SqliteStore),
    /// A PostgreSQL server.
    #[cfg(feature = "postgres")]
    Postgres(PgStore),
}

impl AnyStore {
    /// Opens the store at `location`: a PostgreSQL server for a `postgres://` or
    /// `postgresql://` URL ([`is_postgres_url`]), else the SQLite file at that path (created
    /// with its folder when missing). Migrations run on open.
    ///
    /// # Errors
    /// As [`SqliteStore::open`] or `PgStore::connect`; [`Error::Invalid`] for a Postgres URL
    /// when this build lacks the `postgres` feature.
    pub fn open(location: &str) -> Result<Self, Error> {
        if is_postgres_url(location) {
            #[cfg(feature = "postgres")]
            return Ok(AnyStore::Postgres(PgStore::connect(location)?));
            #[cfg(not(feature = "postgres"))]
            return Err(Error::Invalid(
                "this build of lightsout-memory has no Postgres support (feature `postgres`)"
                    .into(),
            ));
        }
        Ok(AnyStore::Sqlite(SqliteStore::open(location)?))
    }
}

impl Store for AnyStore {
    fn apply_batch(
        &self,
        changes: &[Change],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Applied>, Error> {
        match self {
            AnyStore::Sqlite(s) => s.apply_batch(changes, progress),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.apply_batch(changes, progress),
        }
    }

    fn query(&self, query: &Query) -> Result<Vec<Hit>, Error> {
        match self {
            AnyStore::Sqlite(s) => s.query(query),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.query(query),
        }
    }
}

impl Memory<AnyStore> {
    /// Opens the store at `location` ([`AnyStore::open`]): `postgres://…` for a server,
    /// else a SQLite file path.
    ///
    /// # Errors
    /// See [`AnyStore::open`].
    pub fn open_location(location: &str) -> Result<Self, Error> {
        Ok(Memory::new(AnyStore::open(location)?))
    }
}

fn first_id(applied: Vec<Applied>) -> Result<RecordId, Error> {
    applied
        .into_iter()
        .next()
        .and_then(|a| a.ids.into_iter().next())
        .ok_or_else(|| Error::Invalid("the store returned no id".into()))
}

impl<S: Store> Memory<S> {
    /// Wraps a store.
    pub fn new(store: S) -> Self {
        Memory {
            store,
            retire_after: DEFAULT_RETIRE_AFTER,
        }
    }

    /// Sets how many green runs in a row retire a lesson (at least 1).
    #[must_use]
    pub fn with_retire_after(mut self, n: u32) -> Self {
        self.retire_after = n.max(1);
        self
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Adds (or, with an [`Identity`] other than `New`, upserts) a record; returns its id.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a record breaking its invariants; store errors.
    pub fn add(&self, rec: NewRecord) -> Result<RecordId, Error> {
        first_id(self.store.apply(&[Change::Put(rec)])?)
    }

    /// Supersedes `old` with `new` (see [`Change::Supersede`]); returns the new id.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Conflict`] when `old` is already superseded or was
    /// rejected, [`Error::Invalid`].
    pub fn supersede(&self, old: RecordId, new: NewRecord) -> Result<RecordId, Error> {
        first_id(self.store.apply(&[Change::Supersede {
            old,
            new: Box::new(new),
        }])?)
    }

    /// Changes a record's status now (deprecate, accept a proposal, reject).
    ///
    /// # Errors
    /// As [`Change::SetStatus`].
    pub fn set_status(&self, id: RecordId, status: Status) -> Result<Outcome, Error> {
        let a = self.store.apply(&[Change::SetStatus {
            id,
            status,
            at: None,
        }])?;
        Ok(a.first().map_or(Outcome::Unchanged, |a| a.outcome))
    }

    /// Deprecates a record now: it stays, but is no longer in force.
    ///
    /// # Errors
    /// As [`Memory::set_status`].
    pub fn deprecate(&self, id: RecordId) -> Result<Outcome, Error> {
        self.set_status(id, Status::Deprecated)
    }

    /// The current version of a record.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub fn get(&self, id: RecordId) -> Result<Record, Error> {
        self.store
            .query(&Query::by_id(id))?
            .into_iter()
            .next()
            .map(|h| h.record)
            .ok_or(Error::NotFound(id))
    }

    /// Every version of a record, oldest first.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is none.
    pub fn history(&self, id: RecordId) -> Result<Vec<Record>, Error> {
        let v: Vec<Record> = self
            .store
            .query(&Query {
                filter: Filter::AllVersions,
                ..Query::by_id(id)
            })?
            .into_iter()
            .map(|h| h.record)
            .collect();
        if v.is_empty() {
            return Err(Error::NotFound(id));
        }
        Ok(v)
    }

    /// The supersede chain through `id`: from the oldest ancestor to the newest replacement.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub fn chain(&self, id: RecordId) -> Result<Vec<Record>, Error> {
        let mut cur = self.get(id)?;
        let mut seen = std::collections::HashSet::new();
        seen.insert(cur.id);
        while let Some(prev) = cur.supersedes {
            if !seen.insert(prev) {
                break;
            }
            match self.get(prev) {
                Ok(r) => cur = r,
                Err(Error::NotFound(_)) => break,
                Err(e) => return Err(e),
            }
        }
        let mut out = vec![cur];
        while let Some(next) = out.last().and_then(|r| r.superseded_by) {
            if out.iter().any(|r| r.id == next) {
                break;
            }
            match self.get(next) {
                Ok(r) => out.push(r),
                Err(Error::NotFound(_)) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Records matching `filter` (and `kinds`, all when empty), by id.
    ///
    /// # Errors
    /// Store errors.
    pub fn list(&self, filter: Filter, kinds: &[Kind]) -> Result<Vec<Record>, Error> {
        Ok(self
            .store
            .query(&Query {
                kinds: kinds.to_vec(),
                filter,
                ..Query::in_force()
            })?
            .into_iter()
            .map(|h| h.record)
            .collect())
    }

    /// Full-text search (BM25, best first).
    ///
    /// # Errors
    /// Store errors.
    pub fn search(&self, text: &str, filter: Filter, limit: usize) -> Result<Vec<Hit>, Error> {
        self.store.query(&Query {
            text: Some(text.to_owned()),
            filter,
            limit,
            ..Query::in_force()
        })
    }

    /// What was in force at `t`, as known now (valid time).
    ///
    /// # Errors
    /// Store errors.
    pub fn as_of(&self, t: Timestamp) -> Result<Vec<Record>, Error> {
        self.list(Filter::InForce { at: t }, &[])
    }

    /// What was in force when commit `rev` of `repo` was made (its committer time).
    ///
    /// # Errors
    /// [`Error::Git`] for an unknown revision; store errors.
    pub fn as_of_commit(&self, repo: &Path, rev: &str) -> Result<Vec<Record>, Error> {
        self.as_of(guard::commit_time(repo, rev)?)
    }

    /// The context pack for a task within `budget_tokens` (see [`retrieve`]).
    ///
    /// # Errors
    /// Store errors.
    pub fn context_pack(
        &self,
        task: &str,
        touched: &[String],
        budget_tokens: usize,
    ) -> Result<ContextPack, Error> {
        self.context_pack_with(
            task,
            touched,
            &PackOptions {
                budget_tokens,
                ..PackOptions::default()
            },
        )
    }

    /// [`Memory::context_pack`] with every option.
    ///
    /// # Errors
    /// Store errors.
    pub fn context_pack_with(
        &self,
        task: &str,
        touched: &[String],
        opts: &PackOptions,
    ) -> Result<ContextPack, Error> {
        retrieve::context_pack(&self.store, task, touched, opts)
    }

    fn guarded(&self) -> Result<Vec<Record>, Error> {
        Ok(self
            .list(
                Filter::InForce { at: now() },
                &[Kind::Decision, Kind::Pattern],
            )?
            .into_iter()
            .filter(|r| !r.guards.is_empty())
            .collect())
    }

    /// Checks the guards of the decisions in force against `git diff base head` in `repo`,
    /// reading manifests at both revisions for exact dependency comparison.
    ///
    /// # Errors
    /// [`Error::Git`], store errors, [`Error::Regex`] for a stored bad regex.
    pub fn check_diff(&self, repo: &Path, base: &str, head: &str) -> Result<CheckReport, Error> {
        let text = guard::git_diff(repo, base, head)?;
        let files = guard::parse_unified_diff(&text);
        let read =
            |path: &str, old: bool| guard::git_show(repo, if old { base } else { head }, path);
        guard::check(&self.guarded()?, &files, Some(&read))
    }

    /// Checks the guards against unified diff text (dependency guards use line heuristics).
    ///
    /// # Errors
    /// Store errors, [`Error::Regex`] for a stored bad regex.
    pub fn check_diff_text(&self, diff: &str) -> Result<CheckReport, Error> {
        let files = guard::parse_unified_diff(diff);
        guard::check(&self.guarded()?, &files, None)
    }

    /// Records an eval failure; returns the lesson's id (the same for the same fingerprint).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty requirement or category; store errors.
    pub fn record_lesson(&self, fingerprint: Fingerprint) -> Result<RecordId, Error> {
        first_id(self.store.apply(&[Change::LessonFailed {
            fingerprint,
            at: None,
        }])?)
    }

    /// Records a green eval run of `requirement`; returns the lessons it retired.
    ///
    /// # Errors
    /// Store errors.
    pub fn record_green(&self, requirement: &str) -> Result<Vec<RecordId>, Error> {
        let a = self.store.apply(&[Change::Green {
            requirement: requirement.to_owned(),
            retire_after: self.retire_after,
            at: None,
        }])?;
        Ok(a.into_iter().flat_map(|a| a.ids).collect())
    }

    /// Imports records parsed elsewhere, in one transaction.
    ///
    /// # Errors
    /// As [`Store::apply_batch`]; nothing is written on error.
    pub fn import_records(
        &self,
        source: SourceKind,
        records: Vec<NewRecord>,
        diagnostics: Vec<Diagnostic>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ImportReport, Error> {
        let total = records.len();
        // Records that ask for an id (MADR numbers, `M-n`) go first, so that a record without
        // one cannot take a number another record of the same import wants.
        let mut order: Vec<usize> = (0..total).collect();
        order.sort_by_key(|&i| records[i].id_hint.is_none());
        let mut slots: Vec<Option<NewRecord>> = records.into_iter().map(Some).collect();
        let changes: Vec<Change> = order
            .iter()
            .filter_map(|&i| slots[i].take().map(Change::Put))
            .collect();
        let applied_in_order = self
            .store
            .apply_batch(&changes, &mut |done| progress(done, total))?;
        let mut applied: Vec<Option<Applied>> = vec![None; total];
        for (&i, a) in order.iter().zip(applied_in_order) {
            applied[i] = Some(a);
        }
        let applied = applied.into_iter().flatten();
        let mut rep = ImportReport {
            source,
            records: total,
            created: 0,
            updated: 0,
            unchanged: 0,
            ids: Vec::new(),
            diagnostics,
        };
        for a in applied {
            match a.outcome {
                Outcome::Created => rep.created += 1,
                Outcome::Updated => rep.updated += 1,
                Outcome::Unchanged => rep.unchanged += 1,
            }
            rep.ids.extend(a.ids);
        }
        Ok(rep)
    }

    /// Imports a MADR folder, a `DECISIONS.md` or a spec's `## Decisions` (`kind` guessed by
    /// [`import::detect`] when `None`), in one transaction: a killed import leaves the store
    /// as it was. `progress(done, total)` is called inside the transaction.
    ///
    /// For a folder, `docs/decisions/` or `docs/adr/` inside it are used when present;
    /// record files are read recursively (MADR category subfolders), sorted by path.
    ///
    /// # Errors
    /// [`Error::Io`] reading the source; store errors.
    pub fn import_path(
        &self,
        path: &Path,
        kind: Option<SourceKind>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ImportReport, Error> {
        let read = |p: &Path| -> Result<String, Error> {
            std::fs::read(p)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| Error::io(p, e))
        };
        let text = if path.is_dir() {
            None
        } else {
            Some(read(path)?)
        };
        let kind = kind.unwrap_or_else(|| import::detect(path, text.as_deref()));
        let (records, diags) = match (kind, text) {
            (SourceKind::Madr, _) => {
                let root = ["docs/decisions", "docs/adr"]
                    .iter()
                    .map(|d| path.join(d))
                    .find(|p| p.is_dir())
                    .unwrap_or_else(|| path.to_path_buf());
                let mut files = Vec::new();
                collect_md(&root, &root, &mut files, 0)?;
                files.sort();
                let mut recs = Vec::new();
                let mut diags = Vec::new();
                for (rel, full) in files {
                    let (r, d) = import::parse_madr(&rel, &read(&full)?);
                    recs.extend(r);
                    diags.extend(d.into_iter().map(|d| d.with_path(&full)));
                }
                (recs, diags)
            }
            (SourceKind::Decisions, Some(t)) => {
                let (r, d) = import::parse_decisions_md(&t);
                (r, d.into_iter().map(|d| d.with_path(path)).collect())
            }
            (SourceKind::Spec, Some(t)) => {
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let (r, d) = import::parse_spec_decisions(&stem, &t);
                (r, d.into_iter().map(|d| d.with_path(path)).collect())
            }
            (_, None) => {
                return Err(Error::Invalid(format!(
                    "{} is a folder; only MADR imports read folders",
                    path.display()
                )));
            }
        };
        self.import_records(kind, records, diags, progress)
    }

    /// All current records, for export.
    ///
    /// # Errors
    /// Store errors.
    pub fn current_records(&self) -> Result<Vec<Record>, Error> {
        self.list(
            Filter::Current {
                statuses: Vec::new(),
            },
            &[],
        )
    }

    /// Renders the living `DECISIONS.md` (see [`export::render_decisions_md`]).
    ///
    /// # Errors
    /// Store errors.
    pub fn render_decisions_md(&self, opts: ExportOptions) -> Result<String, Error> {
        Ok(export::render_decisions_md(&self.current_records()?, opts))
    }

    /// Writes the living `DECISIONS.md` to `path` atomically.
    ///
    /// # Errors
    /// Store and I/O errors.
    pub fn export_decisions_md(&self, path: &Path, opts: ExportOptions) -> Result<(), Error> {
        export::write_atomic(path, &self.render_decisions_md(opts)?)
    }

    /// Writes one MADR file per record into `dir` (see [`export::write_madr_dir`]).
    ///
    /// # Errors
    /// Store and I/O errors.
    pub fn export_madr(&self, dir: &Path, opts: ExportOptions) -> Result<Vec<PathBuf>, Error> {
        export::write_madr_dir(dir, &self.current_records()?, opts)
    }
}

fn collect_md(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, PathBuf)>,
    depth: usize,
) -> Result<(), Error> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if depth < 2 && !name.starts_with('.') {
                collect_md(root, &p, out, depth + 1)?;
            }
        } else if import::is_madr_record_file(&name) {
            let rel = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, p));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_errors_keep_their_source_and_their_message() {
        use std::error::Error as _;
        let mut bad = NewRecord::decision("ok", "x");
        bad.scope.paths.push("src/[".into());
        let err = validate(&bad).unwrap_err();
        let source = err.source().expect("the glob parser's error");
        assert!(source.is::<globset::Error>());
        assert_eq!(
            err.to_string(),
            format!("invalid input: bad glob `src/[`: {source}")
        );

        let mut bad = NewRecord::decision("ok", "x");
        bad.guards.push(Guard::ForbidAdded {
            regex: "(".into(),
            paths: None,
        });
        let err = validate(&bad).unwrap_err();
        let source = err.source().expect("the regex compiler's error");
        assert!(source.is::<regex::Error>());
        assert_eq!(
            err.to_string(),
            format!("invalid input: bad regex `(`: {source}")
        );
    }

    #[test]
    fn locations_are_shown_without_their_password() {
        assert_eq!(
            redacted_location("postgres://me:s3cr@t@db.example:5432/lo?sslmode=disable"),
            "postgres://me:***@db.example:5432/lo?sslmode=disable"
        );
        assert_eq!(
            redacted_location("postgresql://me@db/lo"),
            "postgresql://me@db/lo"
        );
        assert_eq!(
            redacted_location(".lightsout/memory.db"),
            ".lightsout/memory.db"
        );
    }

    #[test]
    fn stores_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Memory<AnyStore>>();
    }

    #[test]
    fn a_path_opens_sqlite_and_only_postgres_urls_go_to_a_server() {
        assert!(is_postgres_url("postgres://h/db") && is_postgres_url("postgresql://h/db"));
        assert!(!is_postgres_url("sqlite:memory.db") && !is_postgres_url("pg/memory.db"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/memory.db");
        let store = AnyStore::open(p.to_str().unwrap()).unwrap();
        assert!(matches!(store, AnyStore::Sqlite(_)));
        assert!(p.exists());
    }
}
