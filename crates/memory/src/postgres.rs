//! [`PgStore`]: the [`Store`] on a PostgreSQL server (feature `postgres`), so that every
//! worker of a fleet reads and writes one decision memory.
//!
//! - Client: [`lightsout_fleet::pg::Pg`], the fleet's stores' bridge: tokio-postgres with a
//!   deadpool-postgres pool, driven by a small runtime the store owns; the [`Store`] trait is
//!   blocking, so a call is spawned on that runtime and the caller waits on a channel (it
//!   works from plain threads and from inside another tokio runtime alike).
//! - Concurrency: a write batch is one transaction that first takes
//!   `LOCK TABLE lightsout_memory_records IN EXCLUSIVE MODE`
//!   (<https://www.postgresql.org/docs/current/explicit-locking.html>): writers queue, as
//!   behind SQLite's `BEGIN IMMEDIATE`, so read-modify-write changes (lesson counters, id
//!   allocation) never lose an update; plain reads are not blocked. A writer waits at most
//!   [`crate::sqlite::BUSY_TIMEOUT`] for the lock (`lock_timeout`), as SQLite's busy timeout.
//! - Migrations: run on open by [`lightsout_fleet::pg::migrate`], in one transaction under
//!   the advisory lock the fleet's stores use; the version lives in the `memory` row of `lightsout_schema` (the table the fleet's
//!   stores keep theirs in); a newer version is refused with [`Error::SchemaTooNew`].
//! - Tables are prefixed `lightsout_memory_`, so the memory can share a database (and a
//!   schema) with the fleet's claims, queue and budget. A URL may pick another schema with
//!   `?options=-csearch_path%3Dname`.
//! - Search: a stored generated `tsvector` (configuration `english`) with a GIN index,
//!   ranked by `ts_rank` with the weights [`RANK_WEIGHTS`]; [`Hit::bm25`] is minus that
//!   rank, so lower is better as with SQLite's BM25. Unlike the SQLite store, no common-word
//!   pruning: every query word counts.
//! - A failed or abandoned write batch discards its connection, so the server rolls the
//!   transaction back and the pool never hands out a connection inside one.
//! - Lost connections (a server restart, a network cut) are retried with backoff for
//!   [`RECONNECT_FOR`] ([`lightsout_fleet::pg::retry_blocking`]): a read, or a write batch that failed before its `COMMIT` (nothing was
//!   written; it runs again from its first change, and `progress` counts again). A batch
//!   whose `COMMIT` reply is lost is returned as the error: it may have been applied.

use crate::model::{from_millis, to_millis};
use crate::sqlite::{COLS, ancestors, glob_prefix};
use crate::store::{Applied, Change, Filter, Hit, Query, Store};
use crate::write::{Tx, Version};
use crate::{Error, LessonStats, Provenance, Record, RecordId, Scope, Timestamp};
use deadpool_postgres::Object;
use lightsout_fleet::pg::{Pg, retry_blocking};
use std::future::Future;
use std::pin::Pin;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

pub use lightsout_fleet::pg::RECONNECT_FOR;

/// `ts_rank` weights of the labels D, C, B, A: title is A, decision and tags B, context
/// C, consequences and rejected options D (after SQLite's BM25 weights 10, 5, 4, 2, 1.5, 1).
pub const RANK_WEIGHTS: &str = "{0.15, 0.2, 0.5, 1.0}";

/// Connections one store keeps at most.
const MAX_CONNECTIONS: usize = 4;

const MIGRATIONS: &[&str] = &[
    // 1: records, versions with their search vector, scope prefixes, lessons.
    r"
    CREATE TABLE lightsout_memory_records (
        id BIGINT PRIMARY KEY,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE lightsout_memory_versions (
        vid BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id BIGINT NOT NULL REFERENCES lightsout_memory_records(id),
        version BIGINT NOT NULL,
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
        supersedes BIGINT,
        superseded_by BIGINT,
        external_key TEXT,
        valid_from BIGINT NOT NULL,
        valid_to BIGINT,
        recorded_at BIGINT NOT NULL,
        recorded_to BIGINT,
        fts tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('english'::regconfig, title), 'A')
            || setweight(to_tsvector('english'::regconfig, decision), 'B')
            || setweight(to_tsvector('english'::regconfig, tags), 'B')
            || setweight(to_tsvector('english'::regconfig, context), 'C')
            || setweight(to_tsvector('english'::regconfig, consequences), 'D')
            || setweight(to_tsvector('english'::regconfig, rejected), 'D')
        ) STORED,
        UNIQUE (id, version)
    );
    CREATE UNIQUE INDEX lightsout_memory_versions_current
        ON lightsout_memory_versions(id) WHERE recorded_to IS NULL;
    CREATE INDEX lightsout_memory_versions_status
        ON lightsout_memory_versions(status, kind) WHERE recorded_to IS NULL;
    CREATE INDEX lightsout_memory_versions_key
        ON lightsout_memory_versions(external_key) WHERE recorded_to IS NULL;
    CREATE INDEX lightsout_memory_versions_fts ON lightsout_memory_versions USING GIN (fts);
    CREATE TABLE lightsout_memory_scope_prefixes (
        vid BIGINT NOT NULL REFERENCES lightsout_memory_versions(vid),
        prefix TEXT NOT NULL
    );
    CREATE INDEX lightsout_memory_scope_prefixes_prefix
        ON lightsout_memory_scope_prefixes(prefix, vid);
    CREATE TABLE lightsout_memory_lessons (
        fingerprint TEXT PRIMARY KEY,
        record_id BIGINT NOT NULL UNIQUE REFERENCES lightsout_memory_records(id),
        requirement TEXT NOT NULL,
        category TEXT NOT NULL,
        failures BIGINT NOT NULL,
        green_streak BIGINT NOT NULL,
        first_failed_at BIGINT NOT NULL,
        last_failed_at BIGINT NOT NULL,
        retired_at BIGINT
    );
    CREATE INDEX lightsout_memory_lessons_requirement ON lightsout_memory_lessons(requirement);
    ",
];

/// The schema version this build writes (the `memory` row of `lightsout_schema`).
#[allow(clippy::cast_possible_wrap)] // a handful of migrations
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The name of the memory's row in `lightsout_schema`.
pub const SCHEMA_NAME: &str = "memory";

const FROM: &str =
    "lightsout_memory_versions v LEFT JOIN lightsout_memory_lessons l ON l.record_id = v.id";

type Param = Box<dyn ToSql + Sync + Send>;
type PgResult<T> = Result<T, tokio_postgres::Error>;
type Step<T> = Pin<Box<dyn Future<Output = (Object, PgResult<T>)> + Send>>;

/// A [`Store`] on a PostgreSQL server ([module docs](self)). `Send + Sync`; each call takes
/// a connection from the store's pool.
pub struct PgStore {
    pg: Pg,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("server", &self.pg.server())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the server at `url` (`postgres://user[:password]@host:port/database`, or
    /// the `key=value` form; no TLS) and brings the memory's schema up to date.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed URL; [`Error::Postgres`] / [`Error::Pool`] when
    /// the server cannot be reached or refuses the migration; [`Error::SchemaTooNew`].
    pub fn connect(url: &str) -> Result<Self, Error> {
        // Parsed here first so that a malformed URL stays an `Invalid` input.
        url.parse::<tokio_postgres::Config>()
            .map_err(|e| Error::Invalid(format!("not a postgres URL: {e}")))?;
        let store = PgStore {
            pg: Pg::connect(url, MAX_CONNECTIONS)?,
        };
        store.migrate()?;
        Ok(store)
    }

    /// `host:port/database`, for messages (never the password).
    pub fn server(&self) -> &str {
        self.pg.server()
    }

    /// Runs `fut` on the store's runtime and waits for it.
    fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, lightsout_fleet::Error>> + Send + 'static,
    ) -> Result<T, Error> {
        Ok(self.pg.block(fut)?)
    }

    fn pg_err(&self) -> impl Fn(tokio_postgres::Error) -> lightsout_fleet::Error + Send + 'static {
        let server = self.server().to_owned();
        move |source| lightsout_fleet::Error::Postgres {
            server: server.clone(),
            source,
        }
    }

    /// Runs `op` until it succeeds, fails with an answer, or connections have been failing
    /// for [`RECONNECT_FOR`] (the fleet's policy).
    fn retrying<T>(op: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
        retry_blocking(Error::is_connection, op)
    }

    /// A connection from the pool.
    fn conn(&self) -> Result<Object, Error> {
        let (pool, server) = (self.pg.pool(), self.server().to_owned());
        self.block(async move { lightsout_fleet::pg::conn(&pool, &server).await })
    }

    fn migrate(&self) -> Result<(), Error> {
        let (pool, server) = (self.pg.pool(), self.server().to_owned());
        let migrated = self.block(async move {
            lightsout_fleet::pg::migrate(&pool, &server, SCHEMA_NAME, MIGRATIONS).await
        });
        let Err(e) = migrated else {
            return Ok(());
        };
        // The fleet refuses a newer schema as `Corrupt`; say it as the memory does.
        let (pool, server) = (self.pg.pool(), self.server().to_owned());
        let err = self.pg_err();
        let found = self.block(async move {
            let c = lightsout_fleet::pg::conn(&pool, &server).await?;
            let row = c
                .query_opt(
                    "SELECT version FROM lightsout_schema WHERE name = $1",
                    &[&SCHEMA_NAME],
                )
                .await
                .map_err(err)?;
            Ok(row.map_or(0, |r| i64::from(r.get::<_, i32>(0))))
        });
        match found {
            Ok(found) if found > SCHEMA_VERSION => Err(Error::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            }),
            _ => Err(e),
        }
    }
}

async fn rows(c: &Object, sql: &str, params: &[Param]) -> PgResult<Vec<Row>> {
    let st = c.prepare_cached(sql).await?;
    let refs: Vec<&(dyn ToSql + Sync)> =
        params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
    c.query(&st, &refs).await
}

async fn count(c: &Object, sql: &str, params: &[Param]) -> PgResult<u64> {
    let st = c.prepare_cached(sql).await?;
    let refs: Vec<&(dyn ToSql + Sync)> =
        params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
    c.execute(&st, &refs).await
}

impl Store for PgStore {
    fn apply_batch(
        &self,
        changes: &[Change],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Applied>, Error> {
        // The outer result is retried on a lost connection (nothing was committed); the inner
        // one is the COMMIT's, never retried: when its reply is lost the batch may be applied.
        Self::retrying(|| {
            let mut tx = PgTx::begin(self)?;
            let now = crate::now();
            let mut out = Vec::with_capacity(changes.len());
            for change in changes {
                out.push(crate::write::apply_one(&mut tx, change, now)?);
                progress(out.len());
            }
            Ok(tx.commit().map(|()| out))
        })?
    }

    fn query(&self, q: &Query) -> Result<Vec<Hit>, Error> {
        let Some((sql, params, ranked)) = select(q) else {
            return Ok(Vec::new());
        };
        let params = std::sync::Arc::new(params);
        let found = Self::retrying(|| {
            let c = self.conn()?;
            let err = self.pg_err();
            let (sql, params) = (sql.clone(), params.clone());
            self.block(async move { rows(&c, &sql, &params).await.map_err(err) })
        })?;
        found
            .iter()
            .map(|r| {
                Ok(Hit {
                    record: record(r, self.server())?,
                    bm25: if ranked {
                        Some(get::<f64>(r, 29, self.server())?)
                    } else {
                        None
                    },
                })
            })
            .collect()
    }
}

// ---------- reads ----------

fn push(params: &mut Vec<Param>, p: impl ToSql + Sync + Send + 'static) -> usize {
    params.push(Box::new(p));
    params.len()
}

fn filter_sql(filter: &Filter, params: &mut Vec<Param>) -> String {
    match filter {
        Filter::InForce { at } => {
            let n = push(params, to_millis(*at));
            format!(
                "v.recorded_to IS NULL AND v.valid_from <= ${n} \
                 AND (v.valid_to IS NULL OR v.valid_to > ${n}) \
                 AND (v.status = 'accepted' OR (v.status IN ('superseded', 'deprecated') \
                      AND v.valid_to IS NOT NULL))"
            )
        }
        Filter::Current { statuses } => {
            if statuses.is_empty() {
                "v.recorded_to IS NULL".to_owned()
            } else {
                let list: Vec<String> = statuses.iter().map(|s| s.as_str().to_owned()).collect();
                let n = push(params, list);
                format!("v.recorded_to IS NULL AND v.status = ANY(${n})")
            }
        }
        Filter::KnownAt(at) => {
            let n = push(params, to_millis(*at));
            format!("v.recorded_at <= ${n} AND (v.recorded_to IS NULL OR v.recorded_to > ${n})")
        }
        Filter::AllVersions => "TRUE".to_owned(),
    }
}

/// The statement for `q`, its parameters, and whether it returns a rank (column 29);
/// `None` when the text has no usable word.
fn select(q: &Query) -> Option<(String, Vec<Param>, bool)> {
    let mut params: Vec<Param> = Vec::new();
    let mut conds = vec![filter_sql(&q.filter, &mut params)];
    if !q.ids.is_empty() {
        let ids: Vec<i64> = q.ids.iter().map(|i| i.0).collect();
        let n = push(&mut params, ids);
        conds.push(format!("v.id = ANY(${n})"));
    }
    if !q.kinds.is_empty() {
        let kinds: Vec<String> = q.kinds.iter().map(|k| k.as_str().to_owned()).collect();
        let n = push(&mut params, kinds);
        conds.push(format!("v.kind = ANY(${n})"));
    }
    let (rank, order) = if let Some(text) = &q.text {
        let terms = crate::retrieve::query_terms(text);
        if terms.is_empty() {
            return None;
        }
        // The terms are alphanumeric words: no tsquery operator can slip in.
        let n = push(&mut params, terms.join(" | "));
        conds.push(format!("v.fts @@ to_tsquery('english', ${n})"));
        (
            format!(
                ", (-ts_rank('{RANK_WEIGHTS}', v.fts, to_tsquery('english', ${n})))::float8 AS rank"
            ),
            "rank, v.vid",
        )
    } else if !q.touched.is_empty() {
        let mut prefixes: Vec<String> = q.touched.iter().flat_map(|p| ancestors(p)).collect();
        prefixes.sort();
        prefixes.dedup();
        let n = push(&mut params, prefixes);
        conds.push(format!(
            "v.vid IN (SELECT vid FROM lightsout_memory_scope_prefixes WHERE prefix = ANY(${n}))"
        ));
        (String::new(), "v.vid DESC")
    } else {
        (String::new(), "v.id, v.version")
    };
    let limit = if q.limit == 0 {
        String::new()
    } else {
        format!(" LIMIT {}", q.limit)
    };
    let sql = format!(
        "SELECT {COLS}{rank} FROM {FROM} WHERE {} ORDER BY {order}{limit}",
        conds.join(" AND ")
    );
    Some((sql, params, !rank.is_empty()))
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    r: &'a Row,
    i: usize,
    server: &str,
) -> Result<T, Error> {
    r.try_get(i).map_err(|source| Error::Postgres {
        server: server.to_owned(),
        source,
    })
}

fn json<T: serde::de::DeserializeOwned>(r: &Row, i: usize, server: &str) -> Result<T, Error> {
    Ok(serde_json::from_str(get::<&str>(r, i, server)?)?)
}

fn parse<T: std::str::FromStr<Err = Error>>(r: &Row, i: usize, server: &str) -> Result<T, Error> {
    get::<&str>(r, i, server)?.parse()
}

fn small(r: &Row, i: usize, server: &str) -> Result<u32, Error> {
    let n: i64 = get(r, i, server)?;
    u32::try_from(n).map_err(|_| {
        Error::Invalid(format!(
            "postgres {server}: stored column {} holds {n}, out of range",
            r.columns()[i].name()
        ))
    })
}

fn record(r: &Row, server: &str) -> Result<Record, Error> {
    let time = |i| get::<i64>(r, i, server).map(from_millis);
    let opt_time = |i| get::<Option<i64>>(r, i, server).map(|t| t.map(from_millis));
    let id = |i| get::<Option<i64>>(r, i, server).map(|t| t.map(RecordId));
    let lesson = match get::<Option<String>>(r, 25, server)? {
        Some(fingerprint) => Some(LessonStats {
            fingerprint,
            failures: small(r, 26, server)?,
            green_streak: small(r, 27, server)?,
            retired_at: opt_time(28)?,
        }),
        None => None,
    };
    Ok(Record {
        id: RecordId(get(r, 1, server)?),
        version: small(r, 2, server)?,
        kind: parse(r, 3, server)?,
        status: parse(r, 4, server)?,
        title: get(r, 5, server)?,
        context: get(r, 6, server)?,
        decision: get(r, 7, server)?,
        consequences: get(r, 8, server)?,
        rejected_options: json(r, 9, server)?,
        scope: Scope {
            paths: json(r, 10, server)?,
            tags: json(r, 11, server)?,
        },
        provenance: Provenance {
            spec: get(r, 12, server)?,
            requirement: get(r, 13, server)?,
            run: get(r, 14, server)?,
            commit: get(r, 15, server)?,
            author: parse(r, 16, server)?,
        },
        guards: json(r, 17, server)?,
        supersedes: id(18)?,
        superseded_by: id(19)?,
        external_key: get(r, 20, server)?,
        valid_from: time(21)?,
        valid_to: opt_time(22)?,
        recorded_at: time(23)?,
        recorded_to: opt_time(24)?,
        lesson,
    })
}

// ---------- writes ----------

/// One write transaction: a connection taken out of the pool for its length. Dropped
/// without [`PgTx::commit`], the connection is discarded (the server rolls back).
struct PgTx<'s> {
    store: &'s PgStore,
    conn: Option<Object>,
}

impl<'s> PgTx<'s> {
    fn begin(store: &'s PgStore) -> Result<Self, Error> {
        let mut tx = PgTx {
            store,
            conn: Some(store.conn()?),
        };
        let begin = format!(
            "BEGIN; SET LOCAL lock_timeout = '{}ms'; \
             LOCK TABLE lightsout_memory_records IN EXCLUSIVE MODE",
            crate::sqlite::BUSY_TIMEOUT.as_millis()
        );
        tx.step(|c| {
            Box::pin(async move {
                let r = c.batch_execute(&begin).await;
                (c, r)
            })
        })?;
        Ok(tx)
    }

    fn commit(mut self) -> Result<(), Error> {
        self.step(|c| {
            Box::pin(async move {
                let r = c.batch_execute("COMMIT").await;
                (c, r)
            })
        })?;
        // Back to the pool, outside any transaction.
        drop(self.conn.take());
        Ok(())
    }

    /// Runs one step on the transaction's connection. After a failed step the connection
    /// is discarded and the transaction is over.
    fn step<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(Object) -> Step<T> + Send + 'static,
    ) -> Result<T, Error> {
        let c = self.conn.take().ok_or_else(|| {
            Error::Invalid(format!(
                "postgres {}: the write transaction already failed",
                self.store.server()
            ))
        })?;
        let (c, r) = self.store.block(async move { Ok(f(c).await) })?;
        match r {
            Ok(v) => {
                self.conn = Some(c);
                Ok(v)
            }
            Err(source) => {
                drop(Object::take(c));
                Err(Error::Postgres {
                    server: self.store.server().to_owned(),
                    source,
                })
            }
        }
    }

    fn rows(&mut self, sql: impl Into<String>, params: Vec<Param>) -> Result<Vec<Row>, Error> {
        let sql = sql.into();
        self.step(move |c| {
            Box::pin(async move {
                let r = rows(&c, &sql, &params).await;
                (c, r)
            })
        })
    }

    fn count(&mut self, sql: &'static str, params: Vec<Param>) -> Result<u64, Error> {
        self.step(move |c| {
            Box::pin(async move {
                let r = count(&c, sql, &params).await;
                (c, r)
            })
        })
    }
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            drop(Object::take(c));
        }
    }
}

impl Tx for PgTx<'_> {
    fn current(&mut self, id: RecordId) -> Result<Option<(i64, Record)>, Error> {
        let sql = format!("SELECT {COLS} FROM {FROM} WHERE v.id = $1 AND v.recorded_to IS NULL");
        let found = self.rows(sql, vec![Box::new(id.0)])?;
        let server = self.store.server();
        found
            .first()
            .map(|r| Ok((get(r, 0, server)?, record(r, server)?)))
            .transpose()
    }

    fn current_by_key(&mut self, key: &str) -> Result<Option<RecordId>, Error> {
        let found = self.rows(
            "SELECT id FROM lightsout_memory_versions WHERE external_key = $1 \
             AND recorded_to IS NULL ORDER BY id LIMIT 1",
            vec![Box::new(key.to_owned())],
        )?;
        let server = self.store.server();
        found
            .first()
            .map(|r| get(r, 0, server).map(RecordId))
            .transpose()
    }

    fn allocate(&mut self, hint: Option<RecordId>, now: i64) -> Result<RecordId, Error> {
        if let Some(h) = hint.filter(|h| h.0 > 0) {
            let n = self.count(
                "INSERT INTO lightsout_memory_records (id, created_at) VALUES ($1, $2) \
                 ON CONFLICT (id) DO NOTHING",
                vec![Box::new(h.0), Box::new(now)],
            )?;
            if n == 1 {
                return Ok(h);
            }
        }
        // The next id after the largest (as SQLite's rowid): writers hold the table lock.
        let found = self.rows(
            "INSERT INTO lightsout_memory_records (id, created_at) \
             SELECT coalesce(max(id), 0) + 1, $1 FROM lightsout_memory_records RETURNING id",
            vec![Box::new(now)],
        )?;
        let server = self.store.server();
        match found.first() {
            Some(r) => get(r, 0, server).map(RecordId),
            None => Err(Error::Invalid(format!(
                "postgres {server}: allocating a record id returned nothing"
            ))),
        }
    }

    fn insert_version(&mut self, v: &Version<'_>, now: Timestamp) -> Result<(), Error> {
        let r = v.rec;
        let params: Vec<Param> = vec![
            Box::new(v.id.0),
            Box::new(i64::from(v.number)),
            Box::new(r.kind.as_str()),
            Box::new(r.status.as_str()),
            Box::new(r.title.clone()),
            Box::new(r.context.clone()),
            Box::new(r.decision.clone()),
            Box::new(r.consequences.clone()),
            Box::new(serde_json::to_string(&r.rejected_options)?),
            Box::new(serde_json::to_string(&r.scope.paths)?),
            Box::new(serde_json::to_string(&r.scope.tags)?),
            Box::new(r.provenance.spec.clone()),
            Box::new(r.provenance.requirement.clone()),
            Box::new(r.provenance.run.clone()),
            Box::new(r.provenance.commit.clone()),
            Box::new(r.provenance.author.as_str()),
            Box::new(serde_json::to_string(&r.guards)?),
            Box::new(v.supersedes.map(|i| i.0)),
            Box::new(v.superseded_by.map(|i| i.0)),
            Box::new(v.external_key.map(str::to_owned)),
            Box::new(to_millis(v.valid_from)),
            Box::new(r.valid_to.map(to_millis)),
            Box::new(to_millis(now)),
        ];
        let found = self.rows(
            "INSERT INTO lightsout_memory_versions (id, version, kind, status, title, context, \
             decision, consequences, rejected, scope_paths, tags, spec, requirement, run, \
             git_commit, author, guards, supersedes, superseded_by, external_key, valid_from, \
             valid_to, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
             $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) RETURNING vid",
            params,
        )?;
        let vid: i64 = match found.first() {
            Some(row) => get(row, 0, self.store.server())?,
            None => {
                return Err(Error::Invalid(format!(
                    "postgres {}: inserting a version returned no row id",
                    self.store.server()
                )));
            }
        };
        let mut prefixes: Vec<String> = r.scope.paths.iter().map(|g| glob_prefix(g)).collect();
        prefixes.sort();
        prefixes.dedup();
        if !prefixes.is_empty() {
            self.count(
                "INSERT INTO lightsout_memory_scope_prefixes (vid, prefix) \
                 SELECT $1, unnest($2::text[])",
                vec![Box::new(vid), Box::new(prefixes)],
            )?;
        }
        Ok(())
    }

    fn close_version(&mut self, vid: i64, now: Timestamp) -> Result<(), Error> {
        self.count(
            "UPDATE lightsout_memory_versions SET recorded_to = $1 WHERE vid = $2",
            vec![Box::new(to_millis(now)), Box::new(vid)],
        )?;
        Ok(())
    }

    fn lesson(&mut self, fingerprint: &str) -> Result<Option<(RecordId, bool)>, Error> {
        let found = self.rows(
            "SELECT record_id, retired_at FROM lightsout_memory_lessons WHERE fingerprint = $1",
            vec![Box::new(fingerprint.to_owned())],
        )?;
        let server = self.store.server();
        found
            .first()
            .map(|r| {
                Ok((
                    RecordId(get(r, 0, server)?),
                    get::<Option<i64>>(r, 1, server)?.is_some(),
                ))
            })
            .transpose()
    }

    fn insert_lesson(
        &mut self,
        fingerprint: &str,
        record: RecordId,
        requirement: &str,
        category: &str,
        at: Timestamp,
    ) -> Result<(), Error> {
        self.count(
            "INSERT INTO lightsout_memory_lessons (fingerprint, record_id, requirement, category, \
             failures, green_streak, first_failed_at, last_failed_at) \
             VALUES ($1, $2, $3, $4, 1, 0, $5, $5)",
            vec![
                Box::new(fingerprint.to_owned()),
                Box::new(record.0),
                Box::new(requirement.to_owned()),
                Box::new(category.to_owned()),
                Box::new(to_millis(at)),
            ],
        )?;
        Ok(())
    }

    fn lesson_failed_again(&mut self, fingerprint: &str, at: Timestamp) -> Result<(), Error> {
        self.count(
            "UPDATE lightsout_memory_lessons SET failures = failures + 1, green_streak = 0, \
             last_failed_at = $2, retired_at = NULL WHERE fingerprint = $1",
            vec![Box::new(fingerprint.to_owned()), Box::new(to_millis(at))],
        )?;
        Ok(())
    }

    fn count_green(&mut self, requirement: &str) -> Result<u64, Error> {
        self.count(
            "UPDATE lightsout_memory_lessons SET green_streak = green_streak + 1 \
             WHERE requirement = $1 AND retired_at IS NULL",
            vec![Box::new(requirement.to_owned())],
        )
    }

    fn lessons_due(
        &mut self,
        requirement: &str,
        retire_after: u32,
    ) -> Result<Vec<RecordId>, Error> {
        let found = self.rows(
            "SELECT record_id FROM lightsout_memory_lessons WHERE requirement = $1 \
             AND retired_at IS NULL AND green_streak >= $2 ORDER BY record_id",
            vec![
                Box::new(requirement.to_owned()),
                Box::new(i64::from(retire_after)),
            ],
        )?;
        let server = self.store.server();
        found
            .iter()
            .map(|r| get(r, 0, server).map(RecordId))
            .collect()
    }

    fn retire_lesson(&mut self, record: RecordId, at: Timestamp) -> Result<(), Error> {
        self.count(
            "UPDATE lightsout_memory_lessons SET retired_at = $2 WHERE record_id = $1",
            vec![Box::new(record.0), Box::new(to_millis(at))],
        )?;
        Ok(())
    }
}
