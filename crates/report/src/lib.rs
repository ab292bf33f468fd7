//! The outcome report of a factory run: `report.json` for programs and `report.html` for the human
//! at the outcome end, who decides from this page alone whether to ship or to refine the spec.
//!
//! [`outcome::build_report`] reads a run directory (the journal, the holdout's result files, the
//! specs, the memory database) and builds the [`RunReport`], plain data; the rest of the crate
//! models it, renders it and writes it, knowing nothing of where the data came from.
//!
//! # Brief overview
//! - [`RunReport`] is the data model of `report.json` (serde, with a JSON Schema from schemars, see
//!   [`json_schema`]), versioned by [`SCHEMA_VERSION`]: the gate verdict with its reasons; per
//!   requirement the satisfaction with its Wilson 95% interval, trials, flaky flag, attempts and
//!   redacted failure history; per task the agent, attempts, tokens, USD cost, wall ms, merge commit,
//!   status, dependencies and wave; decisions and lessons recorded; leaks and policy violations.
//!   A replayed trajectory is labelled [`AgentKind::Replay`] and the page says so.
//! - [`render_html`] renders one self-contained page: inline CSS, the task graph as inline SVG laid
//!   out by wave ([`compute_waves`]), no script, no fetch (a Content-Security-Policy `<meta>`
//!   forbids them, see [`CONTENT_SECURITY_POLICY`]), every string HTML-escaped. Incidents come first.
//! - [`outcome`]: [`build_report`] and [`write_run_report`] for run `<id>` in
//!   `.lightsout/runs/<id>/` ([`run_dir`]).
//! - [`write_report`] writes both files atomically (temporary file, fsync, rename);
//!   [`read_report`] reads `report.json` back, for `lightsout report RUN`.
//!
//! # Example
//! ```
//! use lightsout_report::{
//!     AgentLabel, GateOutcome, RequirementOutcome, RunReport, Satisfaction, read_report, write_report,
//! };
//! use time::macros::datetime;
//!
//! let mut report = RunReport::new(
//!     "2026-11-27-1",
//!     datetime!(2026-11-27 06:00 UTC),
//!     AgentLabel::replay("replay", "examples/url-shortener/trajectory"),
//! );
//! report.gate.outcome = GateOutcome::Pass;
//! report.requirements.push(RequirementOutcome {
//!     id: "REQ-1".into(),
//!     title: "Create a short link".into(),
//!     satisfaction: Satisfaction::from_counts(10, 10),
//!     flaky: false,
//!     attempts: 1,
//!     scenarios: 3,
//!     scenario_ids: vec!["S-0a1b2c3d".into()],
//!     tasks: vec!["T1".into()],
//!     gate_reasons: vec![],
//!     failures: vec![],
//! });
//! let dir = tempfile::tempdir()?;
//! let (json, html) = write_report(dir.path(), &report)?;
//! assert_eq!(read_report(&json)?, report);
//! assert!(std::fs::read_to_string(html)?.contains("Gate passed"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod html;
mod layout;
mod model;
pub mod outcome;

#[cfg(test)]
mod browser_tests;
#[cfg(test)]
mod fixtures;

use std::path::{Path, PathBuf};

pub use html::{CONTENT_SECURITY_POLICY, render_html};
pub use layout::compute_waves;
pub use model::{
    AgentKind, AgentLabel, AttemptTrace, DecisionRecord, DecisionStatus, FailureRecord,
    GateOutcome, GateVerdict, Incident, IncidentKind, LessonRecord, Orphans, PolicyRuleRef,
    RequirementOutcome, RunReport, SCHEMA_VERSION, Satisfaction, SpecRef, StrengthOutcome,
    SurvivorRecord, TaskOutcome, TaskStatus, Totals, UnknownRequirementRef, VariantChoiceRecord,
    VariantChoices, WeakenedEvidence,
};
pub use outcome::{
    COVERAGE_JSON, STRENGTH_ERROR, STRENGTH_JSON, build_report, run_dir, write_run_report,
};

/// File name of the JSON report inside a run directory.
pub const REPORT_JSON: &str = "report.json";
/// File name of the HTML report inside a run directory.
pub const REPORT_HTML: &str = "report.html";

/// Errors from building a report from a run directory ([`outcome`]), writing it or reading it.
/// `lightsout-factory` keeps it whole as its `Error::Report`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// No run with that id, or an id that is not a plain name.
    #[error("no run `{0}` in .lightsout/runs; list them with `ls .lightsout/runs`")]
    UnknownRun(String),
    /// A file of the run directory could not be read, or `eval/coverage.json` written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file beside the journal could not be serialised.
    #[error("journal {path}: {message}")]
    Journal {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A journal line is not an entry; the message names the journal and the line, the
    /// source is the JSON error.
    #[error(transparent)]
    JournalEntry(lightsout_journal::Error),
    /// A report file or its directory could not be written (permissions, disk full, a file in the
    /// way of the directory).
    #[error("cannot write the report file {}; check that the run directory is writable", path.display())]
    Write {
        /// The file or directory being written.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `report.json` could not be read.
    #[error("cannot read the report {}; check the run id (see .lightsout/runs/)", path.display())]
    Read {
        /// The file being read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `report.json` is not a run report.
    #[error("{} is not a valid run report", path.display())]
    Parse {
        /// The file being read.
        path: PathBuf,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
    /// `report.json` was written by a newer Lightsout.
    #[error(
        "{} has schema version {found}, newer than version {supported} that this build reads; upgrade lightsout",
        path.display()
    )]
    Version {
        /// The file being read.
        path: PathBuf,
        /// The document's `schema_version`.
        found: u64,
        /// [`SCHEMA_VERSION`].
        supported: u32,
    },
    /// The report could not be serialised (not expected: every field is plain data).
    #[error("cannot serialise the report")]
    Serialise(#[source] serde_json::Error),
}

impl ReportError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        ReportError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// The journal's errors keep their message: `Io` is [`ReportError::Io`], the others
/// [`ReportError::JournalEntry`].
impl From<lightsout_journal::Error> for ReportError {
    fn from(e: lightsout_journal::Error) -> Self {
        match e {
            lightsout_journal::Error::Io {
                action,
                path,
                source,
            } => ReportError::Io {
                action,
                path,
                source,
            },
            other => ReportError::JournalEntry(other),
        }
    }
}

/// Writes `report.json` and `report.html` into `dir` (created if missing) and returns their paths,
/// JSON first.
///
/// Each file is written to a temporary sibling, flushed to disk and renamed over the target, then the
/// directory is synced, so a reader (or a `kill -9`) sees either the old file or the new one, never a
/// mix. Non-finite numbers (a NaN cost, say) are written as 0 for costs and as the values recomputed
/// from the counts for satisfactions, so that the JSON always reads back.
///
/// # Errors
/// [`ReportError::Write`] when the directory cannot be created or a file cannot be written or renamed.
pub fn write_report(dir: &Path, report: &RunReport) -> Result<(PathBuf, PathBuf), ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let report = sanitised(report);
    let mut json = serde_json::to_vec_pretty(&report).map_err(ReportError::Serialise)?;
    json.push(b'\n');
    let html = render_html(&report);
    let json_path = dir.join(REPORT_JSON);
    let html_path = dir.join(REPORT_HTML);
    write_atomic(&json_path, &json)?;
    write_atomic(&html_path, html.as_bytes())?;
    Ok((json_path, html_path))
}

/// Reads a `report.json` written by [`write_report`].
///
/// # Errors
/// [`ReportError::Read`] when the file cannot be read, [`ReportError::Version`] when its
/// `schema_version` is newer than [`SCHEMA_VERSION`], [`ReportError::Parse`] when it is not a report.
pub fn read_report(path: &Path) -> Result<RunReport, ReportError> {
    let bytes = std::fs::read(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|source| ReportError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
    if let Some(found) = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        && found > u64::from(SCHEMA_VERSION)
    {
        return Err(ReportError::Version {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    serde_json::from_value(value).map_err(|source| ReportError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// The JSON Schema (draft 2020-12, from schemars) of `report.json`.
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(RunReport).to_value()
}

/// Writes `bytes` to `path` with [`lightsout_stdx::write_atomic`]: world-readable like any file
/// the user creates (`0666` less the umask), for sharing.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    lightsout_stdx::write_atomic(path, bytes).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// A copy of `report` whose floating-point fields are all finite.
fn sanitised(report: &RunReport) -> RunReport {
    let mut r = report.clone();
    for c in r
        .variant_choices
        .iter_mut()
        .flat_map(|v| v.choices.iter_mut())
    {
        for p in c.posterior_means.values_mut().chain(c.sampled.values_mut()) {
            if !p.is_finite() {
                *p = 0.0;
            }
        }
    }
    for t in &mut r.tasks {
        if !t.cost_usd.is_finite() {
            t.cost_usd = 0.0;
        }
    }
    for q in &mut r.requirements {
        let s = q.satisfaction;
        if !(s.rate.is_finite() && s.lower.is_finite() && s.upper.is_finite()) {
            q.satisfaction = Satisfaction::from_counts(s.passes, s.trials);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::fixtures::{hostile_report, sample_report};
    use super::*;

    #[test]
    fn writes_both_files_atomically_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("runs").join("r1");
        let report = sample_report();
        let (json, html) = write_report(&run, &report).unwrap();
        assert_eq!(json, run.join("report.json"));
        assert_eq!(html, run.join("report.html"));
        assert_eq!(read_report(&json).unwrap(), report);
        assert!(
            std::fs::read_to_string(&html)
                .unwrap()
                .starts_with("<!DOCTYPE html>")
        );
        // Overwrite in place; no temporary file is left behind.
        let other = hostile_report();
        write_report(&run, &other).unwrap();
        assert_eq!(read_report(&json).unwrap(), other);
        let names: Vec<String> = std::fs::read_dir(&run)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            // The mode a plain `File::create` gives under this process's umask (0644 under
            // the usual 022), not tempfile's 0600.
            let plain = run.join("plain");
            std::fs::File::create(&plain).unwrap();
            let want = std::fs::metadata(&plain).unwrap().permissions().mode();
            std::fs::remove_file(&plain).unwrap();
            let mode = std::fs::metadata(&html).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, want & 0o777);
            assert_ne!(mode & 0o044, 0, "readable by others: {mode:o}");
        }
    }

    #[test]
    fn non_finite_numbers_still_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut report = sample_report();
        report.tasks[0].cost_usd = f64::NAN;
        report.requirements[0].satisfaction.lower = f64::INFINITY;
        let (json, _) = write_report(dir.path(), &report).unwrap();
        let back = read_report(&json).unwrap();
        assert!(back.tasks[0].cost_usd.abs() < f64::EPSILON);
        let s = back.requirements[0].satisfaction;
        assert_eq!(
            s,
            Satisfaction::from_counts(s.passes, s.trials),
            "recomputed from counts"
        );
    }

    #[test]
    fn a_file_in_the_way_is_a_write_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("run");
        std::fs::write(&blocker, "x").unwrap();
        let err = write_report(&blocker, &sample_report()).unwrap_err();
        assert!(matches!(err, ReportError::Write { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("check that the run directory is writable")
        );
    }

    #[test]
    fn newer_schema_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, r#"{"schema_version": 99, "something": "else"}"#).unwrap();
        let err = read_report(&path).unwrap_err();
        assert!(
            matches!(err, ReportError::Version { found: 99, .. }),
            "{err:?}"
        );
        assert!(err.to_string().ends_with("upgrade lightsout"));
        std::fs::write(&path, "not json").unwrap();
        assert!(matches!(
            read_report(&path).unwrap_err(),
            ReportError::Parse { .. }
        ));
        let missing = dir.path().join("nope.json");
        assert!(matches!(
            read_report(&missing).unwrap_err(),
            ReportError::Read { .. }
        ));
    }

    #[test]
    fn schema_names_the_top_level_fields() {
        let schema = json_schema();
        let props = schema["properties"].as_object().unwrap();
        for field in [
            "schema_version",
            "run_id",
            "started",
            "finished",
            "agent",
            "gate",
            "requirements",
            "tasks",
            "decisions",
            "lessons",
            "incidents",
        ] {
            assert!(props.contains_key(field), "schema lacks {field}");
        }
        assert_eq!(schema["properties"]["started"]["format"], "date-time");
    }
}
