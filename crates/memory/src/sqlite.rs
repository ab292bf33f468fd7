//! [`SqliteStore`]: the [`Store`] on a real SQLite file (bundled SQLite, WAL, FTS5).
//!
//! - Journal: WAL (<https://sqlite.org/wal.html>) with `synchronous = NORMAL`: a crash or
//!   `kill -9` loses no committed transaction and never corrupts the file; readers never
//!   block the writer.
//! - Concurrency: every write batch is a `BEGIN IMMEDIATE` transaction, and the connection
//!   waits up to [`BUSY_TIMEOUT`] for another process's write lock
//!   (<https://sqlite.org/c3ref/busy_timeout.html>), so concurrent writers queue instead of
//!   failing, and read-modify-write changes (lesson counters) never lose an update.
//! - Migrations: `PRAGMA user_version` holds the schema version; pending migrations run in
//!   one immediate transaction, so two processes opening a fresh file do not race.
//! - Search: a contentless FTS5 table (<https://sqlite.org/fts5.html>) over title, context,
//!   decision, consequences, rejected options and tags, ranked by `bm25()` with column
//!   weights [`BM25_WEIGHTS`].

use crate::model::{from_millis, to_millis};
use crate::store::{Applied, Change, Filter, Hit, Query, Store};
use crate::write::{Tx, Version};
use crate::{Error, LessonStats, Provenance, Record, RecordId, Scope, Timestamp};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How long a writer waits for another process's lock before failing with `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// FTS5 `bm25()` column weights: title, context, decision, consequences, rejected, tags.
pub const BM25_WEIGHTS: &str = "bm25(10.0, 2.0, 5.0, 1.5, 1.0, 4.0)";

/// Candidates fetched from the FTS index before filtering, per result wanted.
const OVERFETCH: usize = 2;

const MIGRATIONS: &[&str] = &[
    // 1: records, versions, full-text index, scope prefixes, lessons.
    r"
    CREATE TABLE records (
        id INTEGER PRIMARY KEY,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE record_versions (
        vid INTEGER PRIMARY KEY,
        id INTEGER NOT NULL REFERENCES records(id),
        version INTEGER NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        title TEXT NOT NULL,
        context TEXT NOT NULL,
        decision TEXT NOT NULL,
        consequences TEXT NOT NULL,
        rejected TEXT NOT NULL,
        scope_paths TEXT NOT NULL,
        tags TEXT NOT NULL,
        spec TEXT,
        requirement TEXT,
        run TEXT,
        git_commit TEXT,
        author TEXT NOT NULL,
        guards TEXT NOT NULL,
        supersedes INTEGER,
        superseded_by INTEGER,
        external_key TEXT,
        valid_from INTEGER NOT NULL,
        valid_to INTEGER,
        recorded_at INTEGER NOT NULL,
        recorded_to INTEGER,
        UNIQUE (id, version)
    );
    CREATE UNIQUE INDEX record_versions_current ON record_versions(id) WHERE recorded_to IS NULL;
    CREATE INDEX record_versions_status ON record_versions(status, kind) WHERE recorded_to IS NULL;
    CREATE INDEX record_versions_key ON record_versions(external_key) WHERE recorded_to IS NULL;
    CREATE TABLE scope_prefixes (
        vid INTEGER NOT NULL REFERENCES record_versions(vid),
        prefix TEXT NOT NULL
    );
    CREATE INDEX scope_prefixes_prefix ON scope_prefixes(prefix, vid);
    CREATE TABLE lessons (
        fingerprint TEXT PRIMARY KEY,
        record_id INTEGER NOT NULL REFERENCES records(id),
        requirement TEXT NOT NULL,
        category TEXT NOT NULL,
        failures INTEGER NOT NULL,
        green_streak INTEGER NOT NULL,
        first_failed_at INTEGER NOT NULL,
        last_failed_at INTEGER NOT NULL,
        retired_at INTEGER
    );
    CREATE INDEX lessons_requirement ON lessons(requirement);
    CREATE UNIQUE INDEX lessons_record ON lessons(record_id);
    CREATE TABLE term_df (
        term TEXT PRIMARY KEY,
        df INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE VIRTUAL TABLE records_fts USING fts5(
        title, context, decision, consequences, rejected, tags,
        content = '', tokenize = 'porter unicode61'
    );
    ",
];

/// The schema version this build writes (`PRAGMA user_version`).
#[allow(clippy::cast_possible_wrap)] // a handful of migrations
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) const COLS: &str = "v.vid, v.id, v.version, v.kind, v.status, v.title, v.context, v.decision, \
    v.consequences, v.rejected, v.scope_paths, v.tags, v.spec, v.requirement, v.run, \
    v.git_commit, v.author, v.guards, v.supersedes, v.superseded_by, v.external_key, \
    v.valid_from, v.valid_to, v.recorded_at, v.recorded_to, l.fingerprint, l.failures, \
    l.green_streak, l.retired_at";

/// A [`Store`] on one SQLite file. `Send + Sync`: one connection behind a mutex; open one
/// store per process (or per thread that needs parallel reads).
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed, with its parent folder) the database at `path`, switches
    /// it to WAL and runs pending migrations.
    ///
    /// # Errors
    /// I/O creating the folder, SQLite errors, [`Error::SchemaTooNew`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Invalid(format!(
                "{} cannot use WAL journal mode (got {mode}); put it on a local disk",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Reads go through a memory map and a 16 MiB page cache instead of a pread per page
        // (<https://sqlite.org/mmap.html>); retrieval touches scattered pages of a large file.
        conn.pragma_update(None, "mmap_size", 256 * 1024 * 1024)?;
        conn.pragma_update(None, "cache_size", -16_000)?;
        Self::init(conn)
    }

    /// An in-memory store (no file, no WAL), for tests and examples.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn open_in_memory() -> Result<Self, Error> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, Error> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open (rusqlite rolls
        // back on drop), so a poisoned lock is safe to reuse.
        lightsout_stdx::lock(&self.conn)
    }

    /// The raw FTS5 query that retrieval wraps: `MATCH` + `ORDER BY rank LIMIT n` on the
    /// index alone, returning `(version row id, bm25)`. Exposed so benches can compare
    /// retrieval against it.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn raw_fts(&self, text: &str, limit: usize) -> Result<Vec<(i64, f64)>, Error> {
        let conn = self.lock();
        let Some(expr) = match_plan(&conn, text)? else {
            return Ok(Vec::new());
        };
        let mut st = conn.prepare_cached(
            "SELECT rowid, rank FROM records_fts WHERE records_fts MATCH ?1 ORDER BY rank LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = st.query_map(params![expr, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// [`SqliteStore::raw_fts`] with every query word (no document-frequency pruning): the
    /// naive `OR` query, for comparison in benches.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn raw_fts_unpruned(&self, text: &str, limit: usize) -> Result<Vec<(i64, f64)>, Error> {
        let Some(expr) = crate::retrieve::match_expression(text) else {
            return Ok(Vec::new());
        };
        let conn = self.lock();
        let mut st = conn.prepare_cached(
            "SELECT rowid, rank FROM records_fts WHERE records_fts MATCH ?1 ORDER BY rank LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = st.query_map(params![expr, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Runs `PRAGMA integrity_check` and returns its lines (`["ok"]` when sound).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn integrity_check(&self) -> Result<Vec<String>, Error> {
        let conn = self.lock();
        let mut st = conn.prepare("PRAGMA integrity_check")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for m in MIGRATIONS.iter().skip(found as usize) {
        tx.execute_batch(m)?;
    }
    if found == 0 {
        tx.execute(
            "INSERT INTO records_fts(records_fts, rank) VALUES ('rank', ?1)",
            [BM25_WEIGHTS],
        )?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

impl Store for SqliteStore {
    fn apply_batch(
        &self,
        changes: &[Change],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Applied>, Error> {
        let mut conn = self.lock();
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = crate::now();
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            out.push(crate::write::apply_one(&mut tx, change, now)?);
            progress(out.len());
        }
        tx.commit()?;
        Ok(out)
    }

    fn query(&self, q: &Query) -> Result<Vec<Hit>, Error> {
        let conn = self.lock();
        query(&conn, q)
    }
}

// ---------- reads ----------

fn filter_sql(filter: &Filter, params: &mut Vec<Value>) -> String {
    match filter {
        Filter::InForce { at } => {
            params.push(Value::Integer(to_millis(*at)));
            let n = params.len();
            format!(
                "v.recorded_to IS NULL AND v.valid_from <= ?{n} \
                 AND (v.valid_to IS NULL OR v.valid_to > ?{n}) \
                 AND (v.status = 'accepted' OR (v.status IN ('superseded', 'deprecated') \
                      AND v.valid_to IS NOT NULL))"
            )
        }
        Filter::Current { statuses } => {
            if statuses.is_empty() {
                "v.recorded_to IS NULL".to_owned()
            } else {
                let list: Vec<String> = statuses
                    .iter()
                    .map(|s| format!("'{}'", s.as_str()))
                    .collect();
                format!("v.recorded_to IS NULL AND v.status IN ({})", list.join(","))
            }
        }
        Filter::KnownAt(at) => {
            params.push(Value::Integer(to_millis(*at)));
            let n = params.len();
            format!("v.recorded_at <= ?{n} AND (v.recorded_to IS NULL OR v.recorded_to > ?{n})")
        }
        Filter::AllVersions => "1".to_owned(),
    }
}

fn extra_sql(q: &Query, params: &mut Vec<Value>) -> String {
    let mut s = String::new();
    if !q.ids.is_empty() {
        let ids: Vec<String> = q.ids.iter().map(|i| i.0.to_string()).collect();
        let _ = write!(s, " AND v.id IN ({})", ids.join(","));
    }
    if !q.kinds.is_empty() {
        let ks: Vec<String> = q
            .kinds
            .iter()
            .map(|k| format!("'{}'", k.as_str()))
            .collect();
        let _ = write!(s, " AND v.kind IN ({})", ks.join(","));
    }
    let _ = params;
    s
}

fn limit_sql(limit: usize) -> String {
    if limit == 0 {
        String::new()
    } else {
        format!(" LIMIT {limit}")
    }
}

/// Most words in one FTS5 query.
const MAX_QUERY_TERMS: usize = 8;

/// The FTS5 expression for `text`: its words, rarest first by document frequency, at most
/// [`MAX_QUERY_TERMS`]; words found in more than `max(1% of versions, 1000)` versions are
/// dropped while a rarer word remains. Common words add little to BM25 (their IDF is near
/// zero) but cost a scan of long posting lists; this is the "common terms" pruning of search
/// engines (Lucene's `CommonTermsQuery`).
fn match_plan(conn: &Connection, text: &str) -> Result<Option<String>, Error> {
    let terms = crate::retrieve::query_terms(text);
    if terms.is_empty() {
        return Ok(None);
    }
    let n: i64 = conn.query_row(
        "SELECT coalesce(max(vid), 0) FROM record_versions",
        [],
        |r| r.get(0),
    )?;
    let cap = (n / 100).max(1000);
    let mut st = conn.prepare_cached("SELECT df FROM term_df WHERE term = ?1")?;
    let mut with_df = Vec::with_capacity(terms.len());
    for (i, t) in terms.iter().enumerate() {
        let df: i64 = st.query_row([t], |r| r.get(0)).optional()?.unwrap_or(0);
        with_df.push((df, i, t.as_str()));
    }
    with_df.sort_unstable();
    let rare = with_df.iter().filter(|(df, _, _)| *df <= cap).count();
    let keep = if rare == 0 {
        2.min(with_df.len())
    } else {
        rare.min(MAX_QUERY_TERMS)
    };
    let mut kept: Vec<(usize, &str)> = with_df[..keep].iter().map(|(_, i, t)| (*i, *t)).collect();
    kept.sort_unstable();
    let words: Vec<String> = kept.into_iter().map(|(_, t)| t.to_owned()).collect();
    Ok(crate::retrieve::expression(&words))
}

fn query(conn: &Connection, q: &Query) -> Result<Vec<Hit>, Error> {
    if let Some(text) = &q.text {
        let Some(expr) = match_plan(conn, text)? else {
            return Ok(Vec::new());
        };
        return text_query(conn, q, &expr);
    }
    let mut params = Vec::new();
    let filter = filter_sql(&q.filter, &mut params);
    let extra = extra_sql(q, &mut params);
    let sql = if q.touched.is_empty() {
        format!(
            "SELECT {COLS} FROM record_versions v LEFT JOIN lessons l ON l.record_id = v.id \
             WHERE {filter}{extra} ORDER BY v.id, v.version{}",
            limit_sql(q.limit)
        )
    } else {
        let mut prefixes: Vec<String> = q.touched.iter().flat_map(|p| ancestors(p)).collect();
        prefixes.sort();
        prefixes.dedup();
        if q.limit > 0 {
            // Fast path: the newest matching versions straight from the (prefix, vid) index,
            // then the filter; falls back to every match when the filter dropped too many.
            let fetch = (q.limit * OVERFETCH).max(32);
            let marks: Vec<String> = (1..=prefixes.len()).map(|i| format!("?{i}")).collect();
            let mut st = conn.prepare_cached(&format!(
                "SELECT DISTINCT vid FROM scope_prefixes WHERE prefix IN ({}) \
                 ORDER BY vid DESC LIMIT {fetch}",
                marks.join(",")
            ))?;
            let vids: Vec<i64> = st
                .query_map(rusqlite::params_from_iter(prefixes.iter()), |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            if vids.is_empty() {
                return Ok(Vec::new());
            }
            let list: Vec<String> = vids.iter().map(ToString::to_string).collect();
            let sql = format!(
                "SELECT {COLS} FROM record_versions v NOT INDEXED LEFT JOIN lessons l ON l.record_id = v.id \
                 WHERE v.vid IN ({}) AND {filter}{extra} ORDER BY v.vid DESC LIMIT {}",
                list.join(","),
                q.limit
            );
            let mut st = conn.prepare(&sql)?;
            let hits: Vec<Hit> = st
                .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    Ok(Hit {
                        record: row_to_record(r)?,
                        bm25: None,
                    })
                })?
                .collect::<Result<_, _>>()?;
            if hits.len() >= q.limit || vids.len() < fetch {
                return Ok(hits);
            }
        }
        let mut marks = Vec::new();
        for p in prefixes {
            params.push(Value::Text(p));
            marks.push(format!("?{}", params.len()));
        }
        let marks = marks.join(",");
        format!(
            "SELECT {COLS} FROM record_versions v LEFT JOIN lessons l ON l.record_id = v.id \
             WHERE v.vid IN (SELECT vid FROM scope_prefixes WHERE prefix IN ({marks})) \
             AND {filter}{extra} ORDER BY v.vid DESC{}",
            limit_sql(q.limit)
        )
    };
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(params), |r| {
        Ok(Hit {
            record: row_to_record(r)?,
            bm25: None,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn text_query(conn: &Connection, q: &Query, expr: &str) -> Result<Vec<Hit>, Error> {
    let mut params = vec![Value::Text(expr.to_owned())];
    let filter = filter_sql(&q.filter, &mut params);
    let extra = extra_sql(q, &mut params);
    if q.limit > 0 {
        // Fast path: exactly the raw FTS5 query (the index's top candidates by rank), then
        // the versions by primary key and the filter. Falls back to filtering every match
        // when too many candidates were filtered out.
        let fetch = (q.limit * OVERFETCH).max(32);
        let mut st = conn.prepare_cached(
            "SELECT rowid, rank FROM records_fts WHERE records_fts MATCH ?1 ORDER BY rank LIMIT ?2",
        )?;
        let top: Vec<(i64, f64)> = st
            .query_map(
                params![expr, i64::try_from(fetch).unwrap_or(i64::MAX)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect::<Result<_, _>>()?;
        if top.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = top.iter().map(|(v, _)| v.to_string()).collect();
        let sql = format!(
            "SELECT {COLS} FROM record_versions v NOT INDEXED LEFT JOIN lessons l ON l.record_id = v.id \
             WHERE ?1 IS NOT NULL AND v.vid IN ({}) AND {filter}{extra}",
            list.join(",")
        );
        let mut st = conn.prepare(&sql)?;
        let mut by_vid: std::collections::HashMap<i64, Record> = st
            .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                Ok((r.get::<_, i64>(0)?, row_to_record(r)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut hits = Vec::with_capacity(q.limit);
        for (vid, rank) in &top {
            if hits.len() == q.limit {
                break;
            }
            if let Some(record) = by_vid.remove(vid) {
                hits.push(Hit {
                    record,
                    bm25: Some(*rank),
                });
            }
        }
        if hits.len() >= q.limit || top.len() < fetch {
            return Ok(hits);
        }
    }
    let sql = format!(
        "SELECT {COLS}, records_fts.rank FROM records_fts \
         JOIN record_versions v ON v.vid = records_fts.rowid \
         LEFT JOIN lessons l ON l.record_id = v.id \
         WHERE records_fts MATCH ?1 AND {filter}{extra} ORDER BY records_fts.rank{}",
        limit_sql(q.limit)
    );
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(params), |r| {
        Ok(Hit {
            record: row_to_record(r)?,
            bm25: Some(r.get(29)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `src/api/x.rs` → `["", "src", "src/api", "src/api/x.rs"]`.
pub(crate) fn ancestors(path: &str) -> Vec<String> {
    let path = path.trim_start_matches("./").trim_matches('/');
    let mut out = vec![String::new()];
    let mut acc = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(part);
        out.push(acc.clone());
    }
    out
}

/// The literal directory prefix of a glob: the path components before the first one with a
/// glob metacharacter. `src/store/**` → `src/store`; `**/*.rs` → ``; `Cargo.toml` →
/// `Cargo.toml`.
pub(crate) fn glob_prefix(glob: &str) -> String {
    let glob = glob.trim_start_matches("./").trim_start_matches('/');
    let mut parts = Vec::new();
    for part in glob.split('/') {
        if part.is_empty() {
            continue;
        }
        if part.contains(['*', '?', '[', '{', '\\']) {
            break;
        }
        parts.push(part);
    }
    parts.join("/")
}

fn json_col<T: serde::de::DeserializeOwned>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    serde_json::from_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn parse_col<T: std::str::FromStr<Err = Error>>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    s.parse().map_err(|e: Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn row_to_record(r: &Row<'_>) -> rusqlite::Result<Record> {
    let lesson = match r.get::<_, Option<String>>(25)? {
        Some(fingerprint) => Some(LessonStats {
            fingerprint,
            failures: r.get(26)?,
            green_streak: r.get(27)?,
            retired_at: r.get::<_, Option<i64>>(28)?.map(from_millis),
        }),
        None => None,
    };
    Ok(Record {
        id: RecordId(r.get(1)?),
        version: r.get(2)?,
        kind: parse_col(r, 3)?,
        status: parse_col(r, 4)?,
        title: r.get(5)?,
        context: r.get(6)?,
        decision: r.get(7)?,
        consequences: r.get(8)?,
        rejected_options: json_col(r, 9)?,
        scope: Scope {
            paths: json_col(r, 10)?,
            tags: json_col(r, 11)?,
        },
        provenance: Provenance {
            spec: r.get(12)?,
            requirement: r.get(13)?,
            run: r.get(14)?,
            commit: r.get(15)?,
            author: parse_col(r, 16)?,
        },
        guards: json_col(r, 17)?,
        supersedes: r.get::<_, Option<i64>>(18)?.map(RecordId),
        superseded_by: r.get::<_, Option<i64>>(19)?.map(RecordId),
        external_key: r.get(20)?,
        valid_from: from_millis(r.get(21)?),
        valid_to: r.get::<_, Option<i64>>(22)?.map(from_millis),
        recorded_at: from_millis(r.get(23)?),
        recorded_to: r.get::<_, Option<i64>>(24)?.map(from_millis),
        lesson,
    })
}

// ---------- writes ----------

impl Tx for Transaction<'_> {
    fn current(&mut self, id: RecordId) -> Result<Option<(i64, Record)>, Error> {
        let sql = format!(
            "SELECT {COLS} FROM record_versions v LEFT JOIN lessons l ON l.record_id = v.id \
             WHERE v.id = ?1 AND v.recorded_to IS NULL"
        );
        let mut st = self.prepare_cached(&sql)?;
        Ok(st
            .query_row([id.0], |r| Ok((r.get(0)?, row_to_record(r)?)))
            .optional()?)
    }

    fn current_by_key(&mut self, key: &str) -> Result<Option<RecordId>, Error> {
        let mut st = self.prepare_cached(
            "SELECT id FROM record_versions WHERE external_key = ?1 AND recorded_to IS NULL \
             ORDER BY id LIMIT 1",
        )?;
        Ok(st.query_row([key], |r| r.get(0)).optional()?.map(RecordId))
    }

    fn allocate(&mut self, hint: Option<RecordId>, now: i64) -> Result<RecordId, Error> {
        if let Some(h) = hint.filter(|h| h.0 > 0) {
            let n = self.execute(
                "INSERT OR IGNORE INTO records(id, created_at) VALUES (?1, ?2)",
                params![h.0, now],
            )?;
            if n == 1 {
                return Ok(h);
            }
        }
        self.execute(
            "INSERT INTO records(id, created_at) VALUES (NULL, ?1)",
            params![now],
        )?;
        Ok(RecordId(self.last_insert_rowid()))
    }
    fn insert_version(&mut self, v: &Version<'_>, now: Timestamp) -> Result<(), Error> {
        let r = v.rec;
        let mut st = self.prepare_cached(
            "INSERT INTO record_versions (id, version, kind, status, title, context, decision, \
             consequences, rejected, scope_paths, tags, spec, requirement, run, git_commit, author, \
             guards, supersedes, superseded_by, external_key, valid_from, valid_to, recorded_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
             ?18, ?19, ?20, ?21, ?22, ?23)",
        )?;
        st.execute(params![
            v.id.0,
            v.number,
            r.kind.as_str(),
            r.status.as_str(),
            r.title,
            r.context,
            r.decision,
            r.consequences,
            serde_json::to_string(&r.rejected_options)?,
            serde_json::to_string(&r.scope.paths)?,
            serde_json::to_string(&r.scope.tags)?,
            r.provenance.spec,
            r.provenance.requirement,
            r.provenance.run,
            r.provenance.commit,
            r.provenance.author.as_str(),
            serde_json::to_string(&r.guards)?,
            v.supersedes.map(|i| i.0),
            v.superseded_by.map(|i| i.0),
            v.external_key,
            to_millis(v.valid_from),
            r.valid_to.map(to_millis),
            to_millis(now),
        ])?;
        let vid = self.last_insert_rowid();
        let mut fts = self.prepare_cached(
            "INSERT INTO records_fts(rowid, title, context, decision, consequences, rejected, tags) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        fts.execute(params![
            vid,
            r.title,
            r.context,
            r.decision,
            r.consequences,
            r.rejected_options.join("\n"),
            r.scope.tags.join(" "),
        ])?;
        let mut terms = std::collections::BTreeSet::new();
        for field in [&r.title, &r.context, &r.decision, &r.consequences] {
            terms.extend(crate::retrieve::index_terms(field));
        }
        for o in r.rejected_options.iter().chain(&r.scope.tags) {
            terms.extend(crate::retrieve::index_terms(o));
        }
        let mut df = self.prepare_cached(
            "INSERT INTO term_df(term, df) VALUES (?1, 1) ON CONFLICT(term) DO UPDATE SET df = df + 1",
        )?;
        for t in terms {
            df.execute([t])?;
        }
        let mut prefixes: Vec<String> = r.scope.paths.iter().map(|g| glob_prefix(g)).collect();
        prefixes.sort();
        prefixes.dedup();
        let mut sp =
            self.prepare_cached("INSERT INTO scope_prefixes(vid, prefix) VALUES (?1, ?2)")?;
        for p in prefixes {
            sp.execute(params![vid, p])?;
        }
        Ok(())
    }

    fn close_version(&mut self, vid: i64, now: Timestamp) -> Result<(), Error> {
        self.execute(
            "UPDATE record_versions SET recorded_to = ?1 WHERE vid = ?2",
            params![to_millis(now), vid],
        )?;
        Ok(())
    }

    fn lesson(&mut self, fingerprint: &str) -> Result<Option<(RecordId, bool)>, Error> {
        let row: Option<(i64, Option<i64>)> = self
            .query_row(
                "SELECT record_id, retired_at FROM lessons WHERE fingerprint = ?1",
                [fingerprint],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.map(|(id, retired)| (RecordId(id), retired.is_some())))
    }

    fn insert_lesson(
        &mut self,
        fingerprint: &str,
        record: RecordId,
        requirement: &str,
        category: &str,
        at: Timestamp,
    ) -> Result<(), Error> {
        self.execute(
            "INSERT INTO lessons (fingerprint, record_id, requirement, category, failures, \
             green_streak, first_failed_at, last_failed_at) VALUES (?1, ?2, ?3, ?4, 1, 0, ?5, ?5)",
            params![fingerprint, record.0, requirement, category, to_millis(at)],
        )?;
        Ok(())
    }

    fn lesson_failed_again(&mut self, fingerprint: &str, at: Timestamp) -> Result<(), Error> {
        self.execute(
            "UPDATE lessons SET failures = failures + 1, green_streak = 0, \
             last_failed_at = ?2, retired_at = NULL WHERE fingerprint = ?1",
            params![fingerprint, to_millis(at)],
        )?;
        Ok(())
    }

    fn count_green(&mut self, requirement: &str) -> Result<u64, Error> {
        let n = self.execute(
            "UPDATE lessons SET green_streak = green_streak + 1 \
             WHERE requirement = ?1 AND retired_at IS NULL",
            [requirement],
        )?;
        Ok(n as u64)
    }

    fn lessons_due(
        &mut self,
        requirement: &str,
        retire_after: u32,
    ) -> Result<Vec<RecordId>, Error> {
        let mut st = self.prepare_cached(
            "SELECT record_id FROM lessons WHERE requirement = ?1 AND retired_at IS NULL \
             AND green_streak >= ?2 ORDER BY record_id",
        )?;
        let due = st
            .query_map(params![requirement, retire_after], |r| {
                r.get(0).map(RecordId)
            })?
            .collect::<Result<_, _>>()?;
        Ok(due)
    }

    fn retire_lesson(&mut self, record: RecordId, at: Timestamp) -> Result<(), Error> {
        self.execute(
            "UPDATE lessons SET retired_at = ?2 WHERE record_id = ?1",
            params![record.0, to_millis(at)],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewRecord;

    #[test]
    fn glob_prefixes() {
        assert_eq!(glob_prefix("src/store/**"), "src/store");
        assert_eq!(glob_prefix("**/*.rs"), "");
        assert_eq!(glob_prefix("./Cargo.toml"), "Cargo.toml");
        assert_eq!(glob_prefix("src/*/mod.rs"), "src");
    }

    #[test]
    fn ancestors_of_a_path() {
        assert_eq!(
            ancestors("src/api/x.rs"),
            ["", "src", "src/api", "src/api/x.rs"]
        );
    }

    #[test]
    fn common_words_are_pruned_from_text_queries_when_rarer_ones_remain() {
        let s = SqliteStore::open_in_memory().unwrap();
        let mut batch: Vec<Change> = (0..1001)
            .map(|i| Change::Put(NewRecord::decision(format!("common {i}"), "x")))
            .collect();
        batch.push(Change::Put(NewRecord::decision("common rare", "x")));
        s.apply(&batch).unwrap();
        let conn = s.lock();
        assert_eq!(
            match_plan(&conn, "common rare").unwrap().as_deref(),
            Some("\"rare\"")
        );
        // Only common words: the rarest are kept.
        assert_eq!(
            match_plan(&conn, "common").unwrap().as_deref(),
            Some("\"common\"")
        );
        drop(conn);
        let q = Query {
            text: Some("common rare".into()),
            limit: 5,
            ..Query::all_current()
        };
        let hits = s.query(&q).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].record.title, "common rare");
    }

    #[test]
    fn migrations_are_idempotent_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.db");
        drop(SqliteStore::open(&p).unwrap());
        let s = SqliteStore::open(&p).unwrap();
        let v: i64 = s
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        assert_eq!(s.integrity_check().unwrap(), ["ok"]);
    }
}
