//! The hash-chained audit log of a run: `.lightsout/runs/<id>/audit.jsonl`.
//!
//! # Format
//! One JSON object per line (JSON Lines), appended and `fsync`ed one entry at a time:
//!
//! ```json
//! {"seq":0,"ts":"2026-11-27T05:12:52.123Z","kind":"agent_call","task":"T1","requirements":["REQ-1"],"details":{},"prev":"000…0","hash":"9f2c…"}
//! ```
//!
//! - `seq` counts from 0 without gaps; `prev` is the `hash` of the entry before (64 zeros,
//!   [`GENESIS`], for the first);
//! - `hash` is the lowercase hex SHA-256 (FIPS 180-4) of `lightsout-audit-v1\n` followed by
//!   the entry *without* its `hash` field in canonical JSON: object keys sorted by their
//!   UTF-8 bytes, no whitespace, strings and numbers as `serde_json` writes them (the idea
//!   of RFC 8785, JSON Canonicalization Scheme, without its number and key-order fine
//!   print). The hash covers every field present in the line, known or not.
//! - Every action (an agent call, a check, an eval, a merge, a revert, a budget stop, a
//!   policy hit, a leak) is tied to the task and the requirement ids it serves.
//!
//! Beside the log, `audit.head` holds `{"seq":N,"hash":"…"}` of the last entry, replaced
//! atomically (temporary file + `rename`) after each append.
//!
//! # What [`verify`] detects
//! An edited entry (its hash no longer matches), an inserted, deleted or reordered entry
//! (the `prev` chain or the `seq` numbers break), and entries cut from the end (the head
//! names an entry that is no longer there).
//!
//! # Limits
//! - The chain has no secret: someone who can rewrite the whole file *and* `audit.head` can
//!   forge a consistent log. Keep the head hash somewhere else as well (the run report
//!   prints it) to anchor it.
//! - The head is written just after the entry, so a crash between the two leaves the head
//!   one entry behind; [`verify`] accepts a head that lags by exactly one entry. A forger who
//!   appends a single well-chained entry at the end without touching the head is therefore
//!   not detected; cutting entries is.
//! - A crash in the middle of a write leaves a torn last line without a newline. If the head
//!   does not cover it, [`verify`] reports it as a warning (the entry never completed) and
//!   [`AuditLog::open`] cuts it off before appending.
//! - One process appends to a run's log at a time (the run owns its directory); within the
//!   process [`AuditLog`] is shared behind a mutex.

use super::FenceError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The `prev` of the first entry: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain separation prefix of the entry hash.
const HASH_DOMAIN: &[u8] = b"lightsout-audit-v1\n";

/// The name of the log in a run directory.
pub const LOG_FILE: &str = "audit.jsonl";
/// The name of the head sidecar in a run directory.
pub const HEAD_FILE: &str = "audit.head";

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditKind {
    /// A run started (spec hashes, configuration digest, run id).
    RunStart,
    /// An agent call (agent, attempt, reservation, usage, outcome).
    AgentCall,
    /// A visible check (build, test, lint) ran.
    Check,
    /// A holdout eval ran.
    Eval,
    /// A branch merged into main.
    Merge,
    /// A merge was reverted.
    Revert,
    /// A budget stopped a task, the run or the day.
    BudgetStop,
    /// The process fence found a violation.
    PolicyHit,
    /// Holdout text was found crossing the fence.
    Leak,
    /// The tuner chose a task's harness variant (variant, default, reason, posteriors,
    /// draws, seed).
    VariantChoice,
    /// A run ended.
    RunEnd,
}

impl AuditKind {
    /// Every kind, in the order of the enum.
    pub const ALL: [Self; 11] = [
        Self::RunStart,
        Self::AgentCall,
        Self::Check,
        Self::Eval,
        Self::Merge,
        Self::Revert,
        Self::BudgetStop,
        Self::PolicyHit,
        Self::Leak,
        Self::VariantChoice,
        Self::RunEnd,
    ];

    /// The names as written in the log (`snake_case`), in the order of [`Self::ALL`].
    pub const NAMES: [&'static str; 11] = [
        "run_start",
        "agent_call",
        "check",
        "eval",
        "merge",
        "revert",
        "budget_stop",
        "policy_hit",
        "leak",
        "variant_choice",
        "run_end",
    ];
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = serde_json::to_value(self).unwrap_or(Value::Null);
        f.write_str(v.as_str().unwrap_or("?"))
    }
}

/// What a caller records; [`AuditLog::append`] adds `seq`, `ts`, `prev` and `hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The kind of action.
    pub kind: AuditKind,
    /// The task it served, if any (run-level entries have none).
    pub task: Option<String>,
    /// The requirement ids the task serves (the human-defined intent), sorted as given.
    pub requirements: Vec<String>,
    /// Kind-specific details (free JSON).
    pub details: Value,
}

impl AuditRecord {
    /// A record of `kind` for `task` serving `requirements`, with `details`.
    pub fn new(kind: AuditKind, task: Option<&str>, requirements: &[&str], details: Value) -> Self {
        Self {
            kind,
            task: task.map(str::to_owned),
            requirements: requirements.iter().map(|r| (*r).to_owned()).collect(),
            details,
        }
    }
}

impl AuditRecord {
    /// A `policy_hit` record for a fence violation of `task`.
    pub fn policy_hit(
        task: &str,
        requirements: &[&str],
        violation: &super::policy::Violation,
    ) -> Self {
        let details = serde_json::to_value(violation).unwrap_or(Value::Null);
        Self::new(AuditKind::PolicyHit, Some(task), requirements, details)
    }

    /// A `budget_stop` record: `exceeded` stopped `task` (or the run or the day, as its
    /// scope says).
    pub fn budget_stop(
        task: &str,
        requirements: &[&str],
        exceeded: &super::budget::BudgetExceeded,
    ) -> Self {
        let mut details = serde_json::to_value(exceeded).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut details {
            map.insert("message".into(), Value::String(exceeded.to_string()));
        }
        Self::new(AuditKind::BudgetStop, Some(task), requirements, details)
    }

    /// A `leak` record: holdout text found crossing the fence for `task`.
    pub fn leak(task: &str, requirements: &[&str], hit: &super::holdout::LeakHit) -> Self {
        let details = serde_json::to_value(hit).unwrap_or(Value::Null);
        Self::new(AuditKind::Leak, Some(task), requirements, details)
    }
}

/// One line of `audit.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 0, without gaps.
    pub seq: u64,
    /// When it was appended, RFC 3339 in UTC.
    pub ts: String,
    /// The kind of action.
    pub kind: AuditKind,
    /// The task, if any.
    pub task: Option<String>,
    /// The requirement ids served.
    pub requirements: Vec<String>,
    /// Kind-specific details.
    pub details: Value,
    /// The hash of the previous entry ([`GENESIS`] for the first).
    pub prev: String,
    /// SHA-256 of this entry without `hash`, see the module docs.
    pub hash: String,
}

/// The head sidecar: the last entry appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Its `seq`.
    pub seq: u64,
    /// Its `hash`.
    pub hash: String,
}

/// Writes `value` as canonical JSON: object keys sorted by UTF-8 bytes, no whitespace.
pub fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => {
            let _ = write!(out, "{value}");
        }
        Value::String(s) => {
            let _ = write!(out, "{}", Value::String(s.clone()));
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}", Value::String(k.clone()));
                out.push(':');
                canonical_json(&map[k], out);
            }
            out.push('}');
        }
    }
}

/// The hash of an entry given as a JSON object; a `hash` field in it is ignored.
pub fn entry_hash(entry: &Value) -> String {
    let mut v = entry.clone();
    if let Value::Object(map) = &mut v {
        map.remove("hash");
    }
    let mut text = String::new();
    canonical_json(&v, &mut text);
    let mut h = Sha256::new();
    h.update(HASH_DOMAIN);
    h.update(text.as_bytes());
    hex::encode(h.finalize())
}

/// The log of `run_id` under `project_root`: `.lightsout/runs/<id>/audit.jsonl`.
pub fn run_log_path(project_root: &Path, run_id: &str) -> PathBuf {
    project_root
        .join(".lightsout")
        .join("runs")
        .join(run_id)
        .join(LOG_FILE)
}

/// Resolves what a user typed (`lightsout audit verify RUN_ID_OR_PATH`): an existing file is
/// the log, an existing directory holds `audit.jsonl`, anything else is a run id under
/// `project_root`.
pub fn resolve(arg: &str, project_root: &Path) -> PathBuf {
    let p = Path::new(arg);
    if p.is_file() {
        p.to_path_buf()
    } else if p.is_dir() {
        p.join(LOG_FILE)
    } else {
        run_log_path(project_root, arg)
    }
}

fn head_path(log: &Path) -> PathBuf {
    log.with_file_name(HEAD_FILE)
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

struct Writer {
    file: File,
    next_seq: u64,
    prev: String,
}

/// An append-only, hash-chained audit log, shared by the tasks of one run.
pub struct AuditLog {
    path: PathBuf,
    writer: Mutex<Writer>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens the log of `run_id` under `project_root`, creating it if needed.
    ///
    /// # Errors
    /// As for [`AuditLog::open`].
    pub fn for_run(project_root: &Path, run_id: &str) -> Result<Self, FenceError> {
        Self::open(run_log_path(project_root, run_id))
    }

    /// Opens (creating if needed) the log at `path` for appending. An existing log is
    /// verified first; a torn last line left by a crash is cut off.
    ///
    /// # Errors
    /// [`FenceError::AuditBroken`] when the existing log is not intact (the log is then kept
    /// as it is, as evidence, and nothing is appended); [`FenceError::Io`] on I/O failure.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, FenceError> {
        let path = path.into();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| FenceError::io(dir, e))?;
        }
        let (next_seq, prev) = if path.exists() {
            let report = verify(&path)?;
            if let Some(p) = report.problems.first() {
                return Err(FenceError::AuditBroken {
                    path,
                    detail: p.to_string(),
                });
            }
            if report.torn_tail {
                let keep = report.intact_bytes;
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| FenceError::io(&path, e))?;
                f.set_len(keep).map_err(|e| FenceError::io(&path, e))?;
                f.sync_all().map_err(|e| FenceError::io(&path, e))?;
            }
            (
                report.entries,
                report.last_hash.unwrap_or_else(|| GENESIS.to_owned()),
            )
        } else {
            (0, GENESIS.to_owned())
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| FenceError::io(&path, e))?;
        Ok(Self {
            path,
            writer: Mutex::new(Writer {
                file,
                next_seq,
                prev,
            }),
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` as the next entry: the line is written and `fsync`ed, then the head
    /// sidecar is replaced atomically. Returns the entry as written.
    ///
    /// # Errors
    /// [`FenceError::Io`] when the log or head cannot be written. After a failed write the
    /// log refuses further appends until reopened (reopening verifies it).
    pub fn append(&self, record: AuditRecord) -> Result<AuditEntry, FenceError> {
        let mut w = lightsout_stdx::lock(&self.writer);
        let json = |e: serde_json::Error| FenceError::Json {
            path: self.path.clone(),
            source: e,
        };
        let (entry, mut line) = seal(record, w.next_seq, &w.prev).map_err(json)?;
        line.push('\n');
        if w.prev.is_empty() {
            return Err(FenceError::AuditBroken {
                path: self.path.clone(),
                detail: "an earlier append failed".into(),
            });
        }
        let written = w
            .file
            .write_all(line.as_bytes())
            .and_then(|()| w.file.sync_data());
        if let Err(e) = written {
            // The file may now end in a torn line: stop appending to it.
            w.prev.clear();
            return Err(FenceError::io(&self.path, e));
        }
        w.next_seq += 1;
        w.prev.clone_from(&entry.hash);
        let head = Head {
            seq: entry.seq,
            hash: entry.hash.clone(),
        };
        let bytes = serde_json::to_vec(&head).map_err(json)?;
        super::write_atomic(&head_path(&self.path), &bytes)?;
        Ok(entry)
    }

    /// The head: the last entry appended, if any.
    pub fn head(&self) -> Option<Head> {
        let w = lightsout_stdx::lock(&self.writer);
        w.next_seq.checked_sub(1).map(|seq| Head {
            seq,
            hash: w.prev.clone(),
        })
    }
}

/// What is wrong with a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The line is not a JSON object with `seq`, `prev` and `hash`.
    Unparseable,
    /// The entry's content does not match its hash: it was edited.
    HashMismatch,
    /// `prev` is not the hash of the line before: an entry was inserted, deleted or moved.
    ChainBroken,
    /// `seq` is not one more than the line before.
    SeqMismatch,
    /// The head names an entry past the end, or a different entry: entries were cut from
    /// the end or the head was replaced.
    HeadMismatch,
    /// The head sidecar is missing or unreadable although the log has several entries.
    HeadMissing,
}

/// One problem found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// 1-based line number (0 for problems of the head).
    pub line: usize,
    /// The `seq` the line claims, when readable.
    pub seq: Option<u64>,
    /// What is wrong.
    pub kind: ProblemKind,
    /// Details for a human.
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}", self.line, self.detail)
        } else {
            f.write_str(&self.detail)
        }
    }
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// The log verified.
    pub path: PathBuf,
    /// Complete lines read.
    pub entries: u64,
    /// The hash of the last complete entry.
    pub last_hash: Option<String>,
    /// The head sidecar, when present.
    pub head: Option<Head>,
    /// Whether the file ends in a torn line that the head does not cover (a crash during a
    /// write, not tampering).
    pub torn_tail: bool,
    /// Bytes of the file up to the end of the last complete line.
    pub intact_bytes: u64,
    /// Notes that do not make the log tampered.
    pub warnings: Vec<String>,
    /// Problems; empty means intact.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// No problem found.
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The entry `record` makes at `seq` after the entry hashed `prev`, with its `hash`, and its
/// line (without the newline): the one rule both the file and the Postgres chain append by.
///
/// # Errors
/// The record's details cannot be written as JSON.
pub fn seal(
    record: AuditRecord,
    seq: u64,
    prev: &str,
) -> Result<(AuditEntry, String), serde_json::Error> {
    let mut entry = AuditEntry {
        seq,
        ts: now_rfc3339(),
        kind: record.kind,
        task: record.task,
        requirements: record.requirements,
        details: record.details,
        prev: prev.to_owned(),
        hash: String::new(),
    };
    entry.hash = entry_hash(&serde_json::to_value(&entry)?);
    let line = serde_json::to_string(&entry)?;
    Ok((entry, line))
}

/// A run's hash-chained audit log, wherever it is kept: the run directory's `audit.jsonl`
/// ([`AuditLog`]) or a Postgres table shared by a fleet (`postgres::PgRunLog`, feature
/// `postgres`). Both append by [`seal`] and verify by the same chain rule.
pub trait AuditChain: Send + Sync {
    /// Appends `record` as the run's next entry and returns it as written.
    ///
    /// # Errors
    /// The store cannot be written, or (for the file) the log is not intact.
    fn append(&self, record: AuditRecord) -> Result<AuditEntry, FenceError>;

    /// Verifies the whole chain and its head.
    ///
    /// # Errors
    /// The store cannot be read; problems in the content are in the report.
    fn verify(&self) -> Result<VerifyReport, FenceError>;
}

impl AuditChain for AuditLog {
    fn append(&self, record: AuditRecord) -> Result<AuditEntry, FenceError> {
        AuditLog::append(self, record)
    }

    fn verify(&self) -> Result<VerifyReport, FenceError> {
        verify(&self.path)
    }
}

/// Verifies entries given as complete lines (each one entry's JSON, oldest first) against
/// `head`, by the chain rule of [`verify`]: each entry's hash, its `prev`, its `seq`, and the
/// head naming the last entry (here it may not lag: a store that writes the head in the same
/// transaction as the entry). `source` names the store in the report.
pub fn verify_lines(source: PathBuf, lines: &[String], head: Option<Head>) -> VerifyReport {
    let mut report = VerifyReport {
        path: source,
        entries: 0,
        last_hash: None,
        head: None,
        torn_tail: false,
        intact_bytes: 0,
        warnings: Vec::new(),
        problems: Vec::new(),
    };
    let mut bytes = Vec::new();
    for l in lines {
        // A newline inside a line would split it: the JSON of an entry never has one.
        bytes.extend(l.replace('\n', " ").as_bytes());
        bytes.push(b'\n');
    }
    let (hashes, _) = check_chain(&bytes, &mut report);
    match head {
        Some(h) => {
            report.head = Some(h);
            check_head(&hashes, &mut report);
            if let (Some(h), Some((last, _))) = (&report.head, hashes.last())
                && *last != h.seq
                && report.problems.is_empty()
            {
                report.problems.push(Problem {
                    line: 0,
                    seq: Some(*last),
                    kind: ProblemKind::HeadMismatch,
                    detail: format!(
                        "entry {last} is past the head entry {}: appended outside the chain's writer",
                        h.seq
                    ),
                });
            }
        }
        None if report.entries > 0 => report.problems.push(Problem {
            line: 0,
            seq: None,
            kind: ProblemKind::HeadMissing,
            detail: "the chain's head is missing: entries cut from the end cannot be ruled out"
                .into(),
        }),
        None => {}
    }
    report
}

/// Verifies the log at `path` and its head sidecar.
///
/// # Errors
/// [`FenceError::Io`] when the log cannot be read (a missing log is an error, not an empty
/// log). Problems in the content are not errors: they are in the report.
pub fn verify(path: &Path) -> Result<VerifyReport, FenceError> {
    let bytes = std::fs::read(path).map_err(|e| FenceError::io(path, e))?;
    let mut report = VerifyReport {
        path: path.to_path_buf(),
        entries: 0,
        last_hash: None,
        head: None,
        torn_tail: false,
        intact_bytes: 0,
        warnings: Vec::new(),
        problems: Vec::new(),
    };
    let (hashes, torn) = check_chain(&bytes, &mut report);
    read_head(path, &mut report)?;
    check_head(&hashes, &mut report);
    if let Some(t) = torn {
        check_torn_tail(t, &mut report);
    }
    Ok(report)
}

/// The seq and hash of each complete entry, in order.
type Hashes = Vec<(u64, String)>;

/// Checks each complete line of `bytes` (its hash, its link to the line before, its seq)
/// into `report`; returns the entries' seqs and hashes, and the torn last line if any.
fn check_chain<'a>(bytes: &'a [u8], report: &mut VerifyReport) -> (Hashes, Option<&'a [u8]>) {
    let mut prev = GENESIS.to_owned();
    let mut expected_seq = 0u64;
    let mut offset = 0usize;
    let mut hashes: Hashes = Vec::new();
    let mut torn: Option<&[u8]> = None;
    for (i, raw) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        let line_no = i + 1;
        let Some(line) = raw.strip_suffix(b"\n") else {
            torn = Some(raw);
            break;
        };
        offset += raw.len();
        report.intact_bytes = offset as u64;
        report.entries += 1;
        let parsed: Option<Value> = serde_json::from_slice(line).ok();
        let fields = parsed.as_ref().and_then(|v| {
            Some((
                v.get("seq")?.as_u64()?,
                v.get("prev")?.as_str()?.to_owned(),
                v.get("hash")?.as_str()?.to_owned(),
            ))
        });
        let (Some(value), Some((seq, line_prev, hash))) = (parsed.as_ref(), fields) else {
            report.problems.push(Problem {
                line: line_no,
                seq: None,
                kind: ProblemKind::Unparseable,
                detail: "not an audit entry (JSON object with seq, prev and hash)".into(),
            });
            // Resynchronise on the next line's own claims.
            expected_seq += 1;
            prev.clear();
            continue;
        };
        if entry_hash(value) != hash {
            report.problems.push(Problem {
                line: line_no,
                seq: Some(seq),
                kind: ProblemKind::HashMismatch,
                detail: format!("entry {seq} was edited: its content does not match its hash"),
            });
        }
        if line_prev != prev && !prev.is_empty() {
            report.problems.push(Problem {
                line: line_no,
                seq: Some(seq),
                kind: ProblemKind::ChainBroken,
                detail: format!(
                    "entry {seq} does not follow the line before: an entry was inserted, deleted or moved"
                ),
            });
        }
        if seq != expected_seq {
            report.problems.push(Problem {
                line: line_no,
                seq: Some(seq),
                kind: ProblemKind::SeqMismatch,
                detail: format!("expected seq {expected_seq}, found {seq}"),
            });
        }
        expected_seq = seq.saturating_add(1);
        prev.clone_from(&hash);
        hashes.push((seq, hash.clone()));
        report.last_hash = Some(hash);
    }
    (hashes, torn)
}

/// Reads the head sidecar of the log at `path` into `report`; a missing head is a problem
/// once the log has more than one entry.
fn read_head(path: &Path, report: &mut VerifyReport) -> Result<(), FenceError> {
    let head_file = head_path(path);
    match std::fs::read(&head_file) {
        Ok(b) => match serde_json::from_slice::<Head>(&b) {
            Ok(h) => report.head = Some(h),
            Err(_) => report.problems.push(Problem {
                line: 0,
                seq: None,
                kind: ProblemKind::HeadMissing,
                detail: format!("{} is not a head file", head_file.display()),
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if report.entries > 1 {
                report.problems.push(Problem {
                    line: 0,
                    seq: None,
                    kind: ProblemKind::HeadMissing,
                    detail: format!(
                        "{} is missing: entries cut from the end cannot be ruled out",
                        head_file.display()
                    ),
                });
            } else if report.entries == 1 {
                report
                    .warnings
                    .push("no head file yet (a crash right after the first entry)".into());
            }
        }
        Err(e) => return Err(FenceError::io(&head_file, e)),
    }
    Ok(())
}

/// Checks the head against the entries' `hashes`: it names an entry of the log, the same
/// one, and lags the end by at most one entry.
fn check_head(hashes: &Hashes, report: &mut VerifyReport) {
    let Some(head) = &report.head else {
        return;
    };
    let last_seq = hashes.last().map(|(s, _)| *s);
    match hashes.iter().find(|(s, _)| *s == head.seq) {
        Some((_, h)) if *h != head.hash => report.problems.push(Problem {
            line: 0,
            seq: Some(head.seq),
            kind: ProblemKind::HeadMismatch,
            detail: format!("the head names a different entry {}", head.seq),
        }),
        Some(_) => {
            // The head may lag the log by one entry (crash between append and head write).
            if let Some(last) = last_seq {
                if last > head.seq.saturating_add(1) {
                    report.problems.push(Problem {
                        line: 0,
                        seq: Some(last),
                        kind: ProblemKind::HeadMismatch,
                        detail: format!(
                            "entries after the head entry {} were appended outside the log writer",
                            head.seq
                        ),
                    });
                } else if last == head.seq + 1 {
                    report.warnings.push(format!(
                        "the head lags by one entry (a crash after appending entry {last})"
                    ));
                }
            }
        }
        None => report.problems.push(Problem {
            line: 0,
            seq: Some(head.seq),
            kind: ProblemKind::HeadMismatch,
            detail: format!(
                "the head names entry {} but the log {}: entries were cut from the end",
                head.seq,
                last_seq.map_or_else(|| "is empty".to_owned(), |l| format!("ends at {l}"))
            ),
        }),
    }
}

/// Judges the torn last line `t`: a crash artefact (a warning) only when the head does not
/// claim it and nothing else is wrong; otherwise a problem.
fn check_torn_tail(t: &[u8], report: &mut VerifyReport) {
    // A torn line is a crash artefact only when the head does not claim it.
    let covered = report
        .head
        .as_ref()
        .is_some_and(|h| h.seq >= report.entries);
    if covered || !report.problems.is_empty() {
        report.problems.push(Problem {
            line: report.entries as usize + 1,
            seq: None,
            kind: ProblemKind::Unparseable,
            detail: format!("the log ends in an incomplete line of {} bytes", t.len()),
        });
    } else {
        report.torn_tail = true;
        report.warnings.push(format!(
            "the log ends in an incomplete line of {} bytes (a crash during a write); it is ignored",
            t.len()
        ));
    }
}

/// Reads every complete entry of the log at `path`, without verifying the chain (use
/// [`verify`] for that). A torn last line is skipped.
///
/// # Errors
/// [`FenceError::Io`] when the file cannot be read; [`FenceError::Json`] for a line that is
/// not an entry.
pub fn read(path: &Path) -> Result<Vec<AuditEntry>, FenceError> {
    let bytes = std::fs::read(path).map_err(|e| FenceError::io(path, e))?;
    let mut out = Vec::new();
    for raw in bytes.split_inclusive(|b| *b == b'\n') {
        let Some(line) = raw.strip_suffix(b"\n") else {
            break;
        };
        let entry = serde_json::from_slice(line).map_err(|source| FenceError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        out.push(entry);
    }
    Ok(out)
}

#[cfg(feature = "postgres")]
pub mod postgres;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn write_log(dir: &Path, n: usize) -> PathBuf {
        let log = AuditLog::for_run(dir, "r1").unwrap();
        for i in 0..n {
            let kind = [
                AuditKind::AgentCall,
                AuditKind::Check,
                AuditKind::Eval,
                AuditKind::Merge,
                AuditKind::PolicyHit,
            ][i % 5];
            log.append(AuditRecord::new(
                kind,
                Some(&format!("T{i}")),
                &["REQ-1", "REQ-2"],
                json!({"attempt": i, "note": format!("entry {i}")}),
            ))
            .unwrap();
        }
        log.path().to_path_buf()
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn rewrite(path: &Path, lines: &[String]) {
        let mut s = lines.join("\n");
        if !lines.is_empty() {
            s.push('\n');
        }
        std::fs::write(path, s).unwrap();
    }

    fn kinds(r: &VerifyReport) -> Vec<ProblemKind> {
        r.problems.iter().map(|p| p.kind).collect()
    }

    #[test]
    fn fresh_log_verifies_and_chains() {
        let t = tempfile::tempdir().unwrap();
        let path = write_log(t.path(), 4);
        assert!(path.ends_with(".lightsout/runs/r1/audit.jsonl"));
        let r = verify(&path).unwrap();
        assert!(r.intact(), "{r:?}");
        assert_eq!(r.entries, 4);
        let entries = read(&path).unwrap();
        assert_eq!(entries[0].prev, GENESIS);
        assert_eq!(entries[1].prev, entries[0].hash);
        assert_eq!(entries[2].task.as_deref(), Some("T2"));
        assert_eq!(entries[2].requirements, vec!["REQ-1", "REQ-2"]);
        assert_eq!(r.head.unwrap().hash, entries[3].hash);
        assert!(
            time::OffsetDateTime::parse(
                &entries[0].ts,
                &time::format_description::well_known::Rfc3339
            )
            .is_ok()
        );
    }

    #[test]
    fn reopening_continues_the_chain() {
        let t = tempfile::tempdir().unwrap();
        let path = write_log(t.path(), 2);
        let log = AuditLog::open(&path).unwrap();
        let e = log
            .append(AuditRecord::new(AuditKind::RunEnd, None, &[], json!({})))
            .unwrap();
        assert_eq!(e.seq, 2);
        assert!(verify(&path).unwrap().intact());
    }

    #[test]
    fn tampering_with_one_line_is_detected() {
        let t = tempfile::tempdir().unwrap();
        let path = write_log(t.path(), 5);
        let mut ls = lines(&path);
        ls[2] = ls[2].replace("entry 2", "entry X");
        rewrite(&path, &ls);
        let r = verify(&path).unwrap();
        assert_eq!(kinds(&r), vec![ProblemKind::HashMismatch]);
        assert_eq!(r.problems[0].line, 3);
        // Appending to a tampered log is refused.
        assert!(matches!(
            AuditLog::open(&path),
            Err(FenceError::AuditBroken { .. })
        ));
    }

    #[test]
    fn deleting_one_line_is_detected() {
        let t = tempfile::tempdir().unwrap();
        let path = write_log(t.path(), 5);
        let mut ls = lines(&path);
        ls.remove(1);
        rewrite(&path, &ls);
        let r = verify(&path).unwrap();
        assert!(kinds(&r).contains(&ProblemKind::ChainBroken), "{r:?}");
        assert!(kinds(&r).contains(&ProblemKind::SeqMismatch), "{r:?}");
    }

    #[test]
    fn cutting_the_end_is_detected_by_the_head() {
        let t = tempfile::tempdir().unwrap();
        let path = write_log(t.path(), 5);
        let mut ls = lines(&path);
        ls.truncate(3);
        rewrite(&path, &ls);
        let r = verify(&path).unwrap();
        assert_eq!(kinds(&r), vec![ProblemKind::HeadMismatch]);
        // Deleting the head too does not hide it.
        std::fs::remove_file(head_path(&path)).unwrap();
        assert_eq!(
            kinds(&verify(&path).unwrap()),
            vec![ProblemKind::HeadMissing]
        );
    }

    #[test]
    fn torn_tail_from_a_crash_is_tolerated_and_cut_on_reopen() {
        let t = tempfile::tempdir().unwrap();
        let path = write_log(t.path(), 3);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"seq":3,"ts":"2026"#).unwrap();
        drop(f);
        let r = verify(&path).unwrap();
        assert!(r.intact(), "{r:?}");
        assert!(r.torn_tail);
        let log = AuditLog::open(&path).unwrap();
        log.append(AuditRecord::new(
            AuditKind::Check,
            Some("T9"),
            &[],
            json!({}),
        ))
        .unwrap();
        let r = verify(&path).unwrap();
        assert!(r.intact() && !r.torn_tail, "{r:?}");
        assert_eq!(r.entries, 4);
    }

    #[test]
    fn head_lagging_by_one_is_a_warning() {
        let t = tempfile::tempdir().unwrap();
        let path = write_log(t.path(), 3);
        let head = std::fs::read(head_path(&path)).unwrap();
        let log = AuditLog::open(&path).unwrap();
        log.append(AuditRecord::new(AuditKind::Check, None, &[], json!(1)))
            .unwrap();
        // Simulate the crash window: the head write never happened.
        std::fs::write(head_path(&path), &head).unwrap();
        let r = verify(&path).unwrap();
        assert!(r.intact(), "{r:?}");
        assert_eq!(r.warnings.len(), 1);
    }

    #[test]
    fn fence_outcomes_become_records_tied_to_task_and_requirements() {
        use super::super::budget::{Budget, BudgetExceeded, Scope};
        use super::super::holdout::{CrossingKind, LeakHit};
        use super::super::policy::Violation;
        let t = tempfile::tempdir().unwrap();
        let log = AuditLog::for_run(t.path(), "r2").unwrap();
        let v = Violation::TimedOut { limit_ms: 200 };
        let e = log
            .append(AuditRecord::policy_hit("T1", &["REQ-7"], &v))
            .unwrap();
        assert_eq!(
            e.details,
            json!({"violation": "timed_out", "limit_ms": 200})
        );
        let b = BudgetExceeded {
            budget: Budget::Tokens,
            scope: Scope::Task("T1".into()),
            limit: 10,
            used: 12,
            requested: 0,
        };
        let e = log
            .append(AuditRecord::budget_stop("T1", &["REQ-7"], &b))
            .unwrap();
        assert_eq!(e.kind, AuditKind::BudgetStop);
        assert_eq!(e.details["scope"], json!({"scope": "task", "id": "T1"}));
        assert!(
            e.details["message"]
                .as_str()
                .unwrap()
                .contains("tokens budget of the task T1")
        );
        let hit = LeakHit {
            kind: CrossingKind::Diff,
            label: "T1".into(),
            findings: vec!["canary #0".into()],
        };
        let e = log
            .append(AuditRecord::leak("T1", &["REQ-7"], &hit))
            .unwrap();
        assert_eq!(
            (e.task.as_deref(), e.requirements.as_slice()),
            (Some("T1"), &["REQ-7".to_owned()][..])
        );
        assert!(verify(log.path()).unwrap().intact());
    }

    #[test]
    fn kind_names_match_the_log() {
        for (k, n) in AuditKind::ALL.iter().zip(AuditKind::NAMES) {
            assert_eq!(k.to_string(), n);
            assert_eq!(serde_json::from_value::<AuditKind>(json!(n)).unwrap(), *k);
        }
    }

    #[test]
    fn canonical_json_sorts_keys_and_ignores_layout() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,"x"],"x":null}}"#).unwrap();
        let b: Value =
            serde_json::from_str("{ \"a\": {\"x\": null, \"y\": [1, \"x\"]}, \"b\": 1 }").unwrap();
        let mut s = String::new();
        canonical_json(&a, &mut s);
        assert_eq!(s, r#"{"a":{"x":null,"y":[1,"x"]},"b":1}"#);
        assert_eq!(entry_hash(&a), entry_hash(&b));
    }

    #[test]
    fn missing_log_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        assert!(matches!(
            verify(&t.path().join("nope.jsonl")),
            Err(FenceError::Io { .. })
        ));
        assert_eq!(
            resolve("r7", t.path()),
            t.path().join(".lightsout/runs/r7/audit.jsonl")
        );
    }

    #[derive(Debug, Clone)]
    enum Tamper {
        Edit(usize, String),
        Delete(usize),
        Swap(usize, usize),
        Duplicate(usize),
        Truncate(usize),
        Garbage(usize),
    }

    fn tamper() -> impl Strategy<Value = Tamper> {
        prop_oneof![
            (any::<usize>(), "[a-z]{1,8}").prop_map(|(i, s)| Tamper::Edit(i, s)),
            any::<usize>().prop_map(Tamper::Delete),
            (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Tamper::Swap(i, j)),
            any::<usize>().prop_map(Tamper::Duplicate),
            any::<usize>().prop_map(Tamper::Truncate),
            any::<usize>().prop_map(Tamper::Garbage),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// `verify` never panics, whatever the file holds.
        #[test]
        fn verify_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600),
                               head in proptest::option::of(".{0,80}")) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(LOG_FILE);
            std::fs::write(&path, &bytes).unwrap();
            if let Some(h) = head {
                std::fs::write(head_path(&path), h).unwrap();
            }
            let r = verify(&path).unwrap();
            prop_assert!(r.intact_bytes <= bytes.len() as u64);
        }

        /// Any single edit, deletion, move, insertion or cut of entries is detected; an
        /// untouched log verifies.
        #[test]
        fn any_single_tampering_is_detected(n in 2usize..12, t in tamper()) {
            // The first n lines of a log written once (appends fsync, which is slow to repeat),
            // with the head the writer would have left after n entries.
            static BASE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
            let base = BASE.get_or_init(|| {
                let dir = tempfile::tempdir().unwrap();
                lines(&write_log(dir.path(), 12))
            });
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(LOG_FILE);
            let mut ls = base[..n].to_vec();
            let last: AuditEntry = serde_json::from_str(&ls[n - 1]).unwrap();
            let head = Head { seq: last.seq, hash: last.hash };
            std::fs::write(head_path(&path), serde_json::to_vec(&head).unwrap()).unwrap();
            rewrite(&path, &ls);
            prop_assert!(verify(&path).unwrap().intact());
            match t {
                Tamper::Edit(i, s) => {
                    let i = i % n;
                    let mut v: Value = serde_json::from_str(&ls[i]).unwrap();
                    let field = ["task", "details", "ts", "kind"][i % 4];
                    v[field] = match field {
                        "kind" => json!("merge_x"),
                        _ => json!(s),
                    };
                    ls[i] = serde_json::to_string(&v).unwrap();
                }
                Tamper::Delete(i) => { ls.remove(i % n); }
                Tamper::Swap(i, j) => {
                    let (i, j) = (i % n, j % n);
                    let j = if i == j { (j + 1) % n } else { j };
                    ls.swap(i, j);
                }
                Tamper::Duplicate(i) => { let l = ls[i % n].clone(); ls.insert(i % n, l); }
                Tamper::Truncate(k) => { ls.truncate(k % n); }
                Tamper::Garbage(i) => { ls.insert(i % (n + 1), "{}".into()); }
            }
            rewrite(&path, &ls);
            let r = verify(&path).unwrap();
            prop_assert!(!r.intact(), "undetected: {:?}", r);
        }
    }
}
