//! The audit chain on a `PostgreSQL` server, shared by every worker of a fleet (feature
//! `postgres`).
//!
//! # Tables
//! - `lightsout_audit_entry (run, seq, prev, hash, record)`, key `(run, seq)`: one row per
//!   entry; `record` is the entry's JSON line exactly as the file would hold it (made by
//!   [`seal`], so the same hash), and `seq`, `prev`, `hash` repeat its fields for people
//!   querying the table.
//! - `lightsout_audit_head (run, seq, hash)`: the last entry of each run, written in the
//!   entry's transaction (so, unlike the file's `audit.head`, it never lags).
//!
//! # Appends from many workers
//! An append is one transaction that takes the run's head row `FOR UPDATE` (creating it at
//! `seq = -1`, `hash =` [`GENESIS`] on the first append), seals the entry after it, inserts
//! the row and moves the head. Appenders to one run queue on that row lock, so the run has one
//! chain whatever the number of workers; appends to different runs do not wait on each other.
//! A connection lost before the transaction starts is retried with backoff; one lost during
//! it returns the error (the append is not redone, so an entry is never written twice).
//!
//! # Verify
//! [`PgAuditChain::verify`] reads the rows by `seq` and checks them with
//! [`verify_lines`], the rule of the file's [`verify`](super::verify): an edited row fails
//! its hash, a deleted or moved row breaks the `prev` chain or the `seq` numbers, rows cut
//! from the end disagree with the head. A problem's `line` is the row's position (1-based)
//! and its `seq` the row's. A row whose `seq`, `prev` or `hash` columns disagree with its
//! `record` is a problem too.
//!
//! The same limit as the file's: whoever can rewrite every row *and* the head can forge a
//! consistent chain; anchor the head elsewhere (the run report prints it).

use super::{
    AuditChain, AuditEntry, AuditRecord, GENESIS, Head, Problem, ProblemKind, VerifyReport, seal,
    verify_lines,
};
use crate::FenceError;
use lightsout_fleet::pg::{Pg, conn, migrate, pg_err, retry};
use std::path::PathBuf;
use std::sync::Arc;

const MIGRATIONS: &[&str] = &[r"
CREATE TABLE lightsout_audit_head (
    run  TEXT   PRIMARY KEY,
    seq  BIGINT NOT NULL CHECK (seq >= -1),
    hash TEXT   NOT NULL
);
CREATE TABLE lightsout_audit_entry (
    run    TEXT   NOT NULL,
    seq    BIGINT NOT NULL CHECK (seq >= 0),
    prev   TEXT   NOT NULL,
    hash   TEXT   NOT NULL,
    record TEXT   NOT NULL,
    PRIMARY KEY (run, seq)
);
"];

fn store_err(source: lightsout_fleet::Error) -> FenceError {
    FenceError::AuditStore { source }
}

/// The audit chains of every run on one `PostgreSQL` server ([module docs](self)).
#[derive(Debug, Clone)]
pub struct PgAuditChain {
    pg: Arc<Pg>,
}

impl PgAuditChain {
    /// Connects to the server at `url` (`postgres://user[:password]@host:port/database`, no
    /// TLS) with at most `max_connections` connections, and creates or migrates the tables.
    ///
    /// # Errors
    /// [`FenceError::AuditStore`] when the URL is malformed, the server cannot be reached, or
    /// its audit schema is newer than this build knows.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, FenceError> {
        let pg = Pg::connect(url, max_connections).map_err(store_err)?;
        let (pool, server) = (pg.pool(), pg.server().to_owned());
        pg.block(async move { retry(|| migrate(&pool, &server, "audit", MIGRATIONS)).await })
            .map_err(store_err)?;
        Ok(Self { pg: Arc::new(pg) })
    }

    /// The server, as `host:port/database`.
    pub fn server(&self) -> &str {
        self.pg.server()
    }

    /// The chain of `run`, as an [`AuditChain`].
    pub fn run(&self, run: &str) -> PgRunLog {
        PgRunLog {
            chain: self.clone(),
            run: run.to_owned(),
        }
    }

    /// How a report names the chain of `run`.
    fn source(&self, run: &str) -> PathBuf {
        PathBuf::from(format!(
            "postgres {} lightsout_audit_entry run {run}",
            self.server()
        ))
    }

    /// Appends `record` to the chain of `run` ([module docs](self): one transaction under the
    /// run's head row lock) and returns the entry as written.
    ///
    /// # Errors
    /// [`FenceError::AuditStore`] when the server fails; [`FenceError::AuditBroken`] when the
    /// head row names a `seq` that is not a number of this build (a tampered head).
    pub fn append(&self, run: &str, record: AuditRecord) -> Result<AuditEntry, FenceError> {
        let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
        let run_id = run.to_owned();
        let source = self.source(run);
        self.pg
            .block(async move {
                let err = pg_err(&server);
                let mut c = retry(|| conn(&pool, &server)).await?;
                let tx = c.transaction().await.map_err(&err)?;
                tx.execute(
                    "INSERT INTO lightsout_audit_head (run, seq, hash) VALUES ($1, -1, $2)
                     ON CONFLICT (run) DO NOTHING",
                    &[&run_id, &GENESIS],
                )
                .await
                .map_err(&err)?;
                let head = tx
                    .query_one(
                        "SELECT seq, hash FROM lightsout_audit_head WHERE run = $1 FOR UPDATE",
                        &[&run_id],
                    )
                    .await
                    .map_err(&err)?;
                let (last, prev): (i64, String) = (head.get(0), head.get(1));
                let Ok(seq) = u64::try_from(last + 1) else {
                    return Ok(Err(FenceError::AuditBroken {
                        path: source,
                        detail: format!("the head row names seq {last}"),
                    }));
                };
                let (entry, line) = match seal(record, seq, &prev) {
                    Ok(e) => e,
                    Err(e) => {
                        return Ok(Err(FenceError::Json {
                            path: source,
                            source: e,
                        }));
                    }
                };
                let seq_col = last + 1;
                tx.execute(
                    "INSERT INTO lightsout_audit_entry (run, seq, prev, hash, record)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&run_id, &seq_col, &entry.prev, &entry.hash, &line],
                )
                .await
                .map_err(&err)?;
                tx.execute(
                    "UPDATE lightsout_audit_head SET seq = $2, hash = $3 WHERE run = $1",
                    &[&run_id, &seq_col, &entry.hash],
                )
                .await
                .map_err(&err)?;
                tx.commit().await.map_err(&err)?;
                Ok(Ok(entry))
            })
            .map_err(store_err)?
    }

    /// The rows of `run`'s chain by `seq`, as `(seq, prev, hash, record)`, and its head.
    fn rows(&self, run: &str) -> Result<(Vec<Row>, Option<Head>), FenceError> {
        let (pool, server) = (self.pg.pool(), self.pg.server().to_owned());
        let run = run.to_owned();
        self.pg
            .block(async move {
                retry(|| async {
                    let err = pg_err(&server);
                    let mut c = conn(&pool, &server).await?;
                    // One snapshot for the rows and the head.
                    let tx = c
                        .build_transaction()
                        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                        .read_only(true)
                        .start()
                        .await
                        .map_err(&err)?;
                    let rows = tx
                        .query(
                            "SELECT seq, prev, hash, record FROM lightsout_audit_entry
                             WHERE run = $1 ORDER BY seq",
                            &[&run],
                        )
                        .await
                        .map_err(&err)?;
                    let head = tx
                        .query_opt(
                            "SELECT seq, hash FROM lightsout_audit_head WHERE run = $1",
                            &[&run],
                        )
                        .await
                        .map_err(&err)?;
                    tx.commit().await.map_err(&err)?;
                    let rows = rows
                        .iter()
                        .map(|r| Row {
                            seq: r.get(0),
                            prev: r.get(1),
                            hash: r.get(2),
                            record: r.get(3),
                        })
                        .collect();
                    let head = head.and_then(|h| {
                        let seq: i64 = h.get(0);
                        // seq -1: the head row of a chain whose first append never committed.
                        u64::try_from(seq).ok().map(|seq| Head {
                            seq,
                            hash: h.get(1),
                        })
                    });
                    Ok((rows, head))
                })
                .await
            })
            .map_err(store_err)
    }

    /// Verifies the chain of `run` ([module docs](self)). A run with no entries is an error,
    /// as a missing log file is.
    ///
    /// # Errors
    /// [`FenceError::AuditStore`] when the server fails; [`FenceError::AuditBroken`] when the
    /// store has no entry for `run`.
    pub fn verify(&self, run: &str) -> Result<VerifyReport, FenceError> {
        let (rows, head) = self.rows(run)?;
        let source = self.source(run);
        if rows.is_empty() && head.is_none() {
            return Err(FenceError::AuditBroken {
                path: source,
                detail: format!("no audit entries for run {run}"),
            });
        }
        let lines: Vec<String> = rows.iter().map(|r| r.record.clone()).collect();
        let mut report = verify_lines(source, &lines, head);
        for (i, r) in rows.iter().enumerate() {
            let v: Option<serde_json::Value> = serde_json::from_str(&r.record).ok();
            let field = |k: &str| v.as_ref().and_then(|v| v.get(k).cloned());
            let agrees = field("seq").and_then(|s| s.as_i64()) == Some(r.seq)
                && field("prev")
                    .and_then(|p| p.as_str().map(str::to_owned))
                    .as_deref()
                    == Some(r.prev.as_str())
                && field("hash")
                    .and_then(|h| h.as_str().map(str::to_owned))
                    .as_deref()
                    == Some(r.hash.as_str());
            if !agrees {
                report.problems.push(Problem {
                    line: i + 1,
                    seq: u64::try_from(r.seq).ok(),
                    kind: ProblemKind::HashMismatch,
                    detail: format!(
                        "row seq {} was edited: its seq, prev or hash column disagrees with its record",
                        r.seq
                    ),
                });
            }
        }
        report.problems.sort_by_key(|p| p.line);
        Ok(report)
    }

    /// The entries of `run`'s chain by `seq`, without verifying it (use
    /// [`verify`](Self::verify) for that).
    ///
    /// # Errors
    /// [`FenceError::AuditStore`] when the server fails; [`FenceError::Json`] for a row that
    /// is not an entry.
    pub fn entries(&self, run: &str) -> Result<Vec<AuditEntry>, FenceError> {
        let (rows, _) = self.rows(run)?;
        rows.iter()
            .map(|r| {
                serde_json::from_str(&r.record).map_err(|source| FenceError::Json {
                    path: self.source(run),
                    source,
                })
            })
            .collect()
    }
}

struct Row {
    seq: i64,
    prev: String,
    hash: String,
    record: String,
}

/// One run's chain on a [`PgAuditChain`], as an [`AuditChain`].
#[derive(Debug, Clone)]
pub struct PgRunLog {
    chain: PgAuditChain,
    run: String,
}

impl PgRunLog {
    /// The run.
    pub fn run_id(&self) -> &str {
        &self.run
    }
}

impl AuditChain for PgRunLog {
    fn append(&self, record: AuditRecord) -> Result<AuditEntry, FenceError> {
        self.chain.append(&self.run, record)
    }

    fn verify(&self) -> Result<VerifyReport, FenceError> {
        self.chain.verify(&self.run)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AuditKind, AuditLog};
    use super::*;
    use serde_json::json;

    /// Where a test's chain lives: a run directory's `audit.jsonl`, or a fresh database on the
    /// test server (`LIGHTSOUT_TEST_PG_URL`; without it the test fails, never skips).
    enum At {
        File(tempfile::TempDir),
        Postgres(String),
    }

    impl At {
        fn file() -> Self {
            At::File(tempfile::tempdir().unwrap())
        }

        fn postgres() -> Self {
            At::Postgres(lightsout_fleet::testing::fresh_database("audit"))
        }

        fn open(&self, run: &str) -> Box<dyn AuditChain> {
            match self {
                At::File(dir) => Box::new(AuditLog::for_run(dir.path(), run).unwrap()),
                At::Postgres(url) => Box::new(PgAuditChain::connect(url, 4).unwrap().run(run)),
            }
        }

        /// Replaces the `details` of entry `seq` of `run` behind the writer's back.
        fn tamper(&self, run: &str, seq: u64) {
            let edit = |line: &str| {
                let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
                v["details"] = json!({"attempt": 99, "note": "rewritten"});
                serde_json::to_string(&v).unwrap()
            };
            match self {
                At::File(dir) => {
                    let path = super::super::run_log_path(dir.path(), run);
                    let text = std::fs::read_to_string(&path).unwrap();
                    let lines: Vec<String> = text
                        .lines()
                        .enumerate()
                        .map(|(i, l)| {
                            if i as u64 == seq {
                                edit(l)
                            } else {
                                l.to_owned()
                            }
                        })
                        .collect();
                    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
                }
                At::Postgres(url) => {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let (c, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                            .await
                            .unwrap();
                        let driver = tokio::spawn(connection);
                        let seq = i64::try_from(seq).unwrap();
                        let row = c
                            .query_one(
                                "SELECT record FROM lightsout_audit_entry \
                                 WHERE run = $1 AND seq = $2",
                                &[&run, &seq],
                            )
                            .await
                            .unwrap();
                        let line = edit(row.get(0));
                        let n = c
                            .execute(
                                "UPDATE lightsout_audit_entry SET record = $3 \
                                 WHERE run = $1 AND seq = $2",
                                &[&run, &seq, &line],
                            )
                            .await
                            .unwrap();
                        assert_eq!(n, 1);
                        drop(c);
                        let _ = driver.await;
                    });
                }
            }
        }
    }

    macro_rules! both {
        ($($name:ident),+) => {
            mod file {
                $( #[test] fn $name() { super::$name(&super::At::file()); } )+
            }
            mod postgres {
                $( #[test] fn $name() { super::$name(&super::At::postgres()); } )+
            }
        };
    }

    both!(
        a_chain_of_entries_verifies_and_links,
        a_tampered_entry_fails_verify_named
    );

    fn record(i: usize) -> AuditRecord {
        AuditRecord::new(
            AuditKind::AgentCall,
            Some(&format!("T{i}")),
            &["REQ-1"],
            json!({"attempt": i, "note": format!("entry {i}")}),
        )
    }

    fn a_chain_of_entries_verifies_and_links(at: &At) {
        let log = at.open("r1");
        let entries: Vec<AuditEntry> = (0..3).map(|i| log.append(record(i)).unwrap()).collect();
        assert_eq!(entries[0].prev, GENESIS);
        assert_eq!(entries[1].prev, entries[0].hash);
        assert_eq!(entries[2].seq, 2);
        drop(log);
        // Another run's chain is its own, and reopening continues the first.
        at.open("r2").append(record(9)).unwrap();
        let log = at.open("r1");
        let e3 = log.append(record(3)).unwrap();
        assert_eq!((e3.seq, e3.prev.as_str()), (3, entries[2].hash.as_str()));
        let r = log.verify().unwrap();
        assert!(r.intact(), "{:?}", r.problems);
        assert_eq!(r.entries, 4);
        assert_eq!(r.last_hash.as_deref(), Some(e3.hash.as_str()));
        assert_eq!(at.open("r2").verify().unwrap().entries, 1);
    }

    fn a_tampered_entry_fails_verify_named(at: &At) {
        let log = at.open("r1");
        for i in 0..4 {
            log.append(record(i)).unwrap();
        }
        at.tamper("r1", 2);
        let r = log.verify().unwrap();
        assert!(!r.intact());
        let p = &r.problems[0];
        assert_eq!(
            (p.kind, p.seq, p.line),
            (ProblemKind::HashMismatch, Some(2), 3),
            "{:?}",
            r.problems
        );
        assert!(p.to_string().contains("entry 2 was edited"), "{p}");
    }

    #[test]
    fn two_writers_appending_to_one_run_make_one_valid_chain() {
        const EACH: usize = 25;
        let url = lightsout_fleet::testing::fresh_database("audit");
        let a = PgAuditChain::connect(&url, 2).unwrap();
        let b = PgAuditChain::connect(&url, 2).unwrap();
        let written: Vec<Vec<AuditEntry>> = std::thread::scope(|s| {
            [&a, &b]
                .into_iter()
                .enumerate()
                .map(|(w, chain)| {
                    s.spawn(move || {
                        (0..EACH)
                            .map(|i| chain.append("shared", record(w * 100 + i)).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect()
        });
        let r = a.verify("shared").unwrap();
        assert!(r.intact(), "{:?}", r.problems);
        assert_eq!(r.entries, 2 * EACH as u64);
        // Every entry each writer was given is in the chain, at the seq it was told.
        let stored = b.entries("shared").unwrap();
        for e in written.iter().flatten() {
            assert_eq!(&stored[usize::try_from(e.seq).unwrap()], e);
        }
        let mut seqs: Vec<u64> = written.iter().flatten().map(|e| e.seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (0..2 * EACH as u64).collect::<Vec<_>>());
    }

    #[test]
    fn a_deleted_row_and_a_cut_end_fail_verify() {
        let url = lightsout_fleet::testing::fresh_database("audit");
        let chain = PgAuditChain::connect(&url, 2).unwrap();
        for i in 0..4 {
            chain.append("r1", record(i)).unwrap();
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (c, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            let driver = tokio::spawn(connection);
            c.batch_execute("DELETE FROM lightsout_audit_entry WHERE run = 'r1' AND seq IN (1, 3)")
                .await
                .unwrap();
            drop(c);
            let _ = driver.await;
        });
        let r = chain.verify("r1").unwrap();
        let kinds: Vec<ProblemKind> = r.problems.iter().map(|p| p.kind).collect();
        assert!(kinds.contains(&ProblemKind::ChainBroken), "{kinds:?}");
        assert!(kinds.contains(&ProblemKind::HeadMismatch), "{kinds:?}");
        assert!(matches!(
            chain.verify("no-such-run"),
            Err(FenceError::AuditBroken { .. })
        ));
    }
}
