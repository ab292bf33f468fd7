//! The records the memory keeps: decisions, patterns and lessons, with their scope,
//! provenance, guards and the two time axes (valid time and recorded time).

use crate::Error;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;

/// A point in time, UTC. Stored with millisecond precision (Unix epoch milliseconds);
/// serialised as RFC 3339 (`2026-01-03T10:00:00Z`).
pub type Timestamp = OffsetDateTime;

/// Converts a timestamp to Unix epoch milliseconds (the storage unit).
pub fn to_millis(t: Timestamp) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Converts Unix epoch milliseconds to a timestamp; out-of-range values clamp to the epoch.
pub fn from_millis(ms: i64) -> Timestamp {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The current time truncated to milliseconds, so that it survives a store round trip.
pub fn now() -> Timestamp {
    from_millis(to_millis(OffsetDateTime::now_utc()))
}

/// Parses `YYYY-MM-DD` (midnight UTC) or an RFC 3339 date-time.
///
/// # Errors
/// [`Error::Invalid`] when the text is neither.
pub fn parse_time(s: &str) -> Result<Timestamp, Error> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(from_millis(to_millis(t)));
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| {
            Error::Invalid(format!(
                "`{s}` is not a date (YYYY-MM-DD) or an RFC 3339 date-time"
            ))
        })
}

/// Formats a timestamp as `YYYY-MM-DD` when it is midnight UTC, else as RFC 3339 with
/// milliseconds. [`parse_time`] reads both back to the same value.
pub fn format_time(t: Timestamp) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    if t.time() == time::Time::MIDNIGHT {
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        t.format(&fmt).unwrap_or_default()
    } else {
        let fmt = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        t.format(&fmt).unwrap_or_default()
    }
}

/// A record's identity, stable across versions. Displayed as `M-<n>` ("memory record n").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordId(pub i64);

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "M-{}", self.0)
    }
}

impl FromStr for RecordId {
    type Err = Error;
    /// Accepts `M-7`, `m-7` and `7`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let t = s.trim();
        let digits = t
            .strip_prefix("M-")
            .or_else(|| t.strip_prefix("m-"))
            .unwrap_or(t);
        digits
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(RecordId)
            .ok_or_else(|| Error::Invalid(format!("`{s}` is not a record id (like M-7)")))
    }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($(#[$vm])* $var),+ }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            /// The lower-case name used in storage, JSON and markdown.
            pub fn as_str(self) -> &'static str { match self { $($name::$var => $s),+ } }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                let l = s.trim().to_ascii_lowercase();
                $(if l == $s { return Ok($name::$var); })+
                Err(Error::Invalid(format!(
                    "`{}` is not a {}; expected one of: {}", s, stringify!($name).to_lowercase(),
                    [$($s),+].join(", ")
                )))
            }
        }
    };
}

string_enum!(
    /// What a record is.
    Kind {
        /// An architectural or design decision (an ADR).
        Decision => "decision",
        /// A recurring way of doing something in this codebase.
        Pattern => "pattern",
        /// Learned from an eval failure; see [`Fingerprint`].
        Lesson => "lesson",
    }
);

string_enum!(
    /// A record's lifecycle status, as in MADR (<https://adr.github.io/madr/>).
    Status {
        /// Suggested, not yet in force.
        Proposed => "proposed",
        /// In force.
        Accepted => "accepted",
        /// Considered and turned down; never in force.
        Rejected => "rejected",
        /// Was in force until `valid_to`; no replacement.
        Deprecated => "deprecated",
        /// Was in force until `valid_to`; replaced by `superseded_by`.
        Superseded => "superseded",
    }
);

string_enum!(
    /// Who made a record.
    Author {
        /// A person.
        Human => "human",
        /// The factory (an agent run).
        Factory => "factory",
    }
);

/// Where a record applies: repository path globs (gitignore-style `**` globs, matched with
/// `globset`) and free tags. An empty `paths` means "anywhere".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// Path globs relative to the repository root, e.g. `src/store/**`.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Tags, e.g. `storage`.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The spec id (front matter `id`), when the record came from a spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
    /// The requirement or decision id in that spec (`REQ-3`, `DEC-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
    /// The factory run id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The git commit the record refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Who made it.
    pub author: Author,
}

impl Default for Provenance {
    fn default() -> Self {
        Provenance {
            spec: None,
            requirement: None,
            run: None,
            commit: None,
            author: Author::Human,
        }
    }
}

/// A package ecosystem whose manifest a dependency guard reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// `Cargo.toml`: `[dependencies]`, `[dev-dependencies]`, `[build-dependencies]`,
    /// `[target.*.…]` and `[workspace.dependencies]` (keys, and `package = "…"` renames).
    Cargo,
    /// `package.json`: `dependencies`, `devDependencies`, `peerDependencies`,
    /// `optionalDependencies`.
    Npm,
    /// `pyproject.toml`: PEP 621 `[project] dependencies` / `optional-dependencies`,
    /// PEP 735 `[dependency-groups]`, and Poetry's `[tool.poetry.*dependencies]`.
    Pypi,
}

/// A machine-checkable rule a decision carries; [`crate::guard`] checks them against a diff.
///
/// JSON form: `{"rule":"forbid_dependency","name":"postgres"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Guard {
    /// The named package must not be added to any manifest (`Cargo.toml`, `package.json`,
    /// `pyproject.toml`), or only to those of `ecosystem` when given. Names compare after
    /// lower-casing and treating `-`, `_` and `.` alike (PEP 503 normalisation).
    ForbidDependency {
        /// Package name.
        name: String,
        /// Restrict to one ecosystem.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ecosystem: Option<Ecosystem>,
    },
    /// No file matching the glob may be added or changed.
    ForbidPath {
        /// Path glob.
        glob: String,
    },
    /// No added line may match the regex (in files matching `paths`, or the record's scope).
    ForbidAdded {
        /// Regex (Rust `regex` syntax).
        regex: String,
        /// Only files matching this glob.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        paths: Option<String>,
    },
    /// Each changed file matching `paths` that gains lines must gain at least one line that
    /// matches the regex.
    RequireAdded {
        /// Regex (Rust `regex` syntax).
        regex: String,
        /// Files this applies to.
        paths: String,
    },
}

impl fmt::Display for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Guard::ForbidDependency { name, ecosystem } => {
                write!(f, "forbid dependency `{name}`")?;
                if let Some(e) = ecosystem {
                    write!(f, " ({})", serde_json::to_value(e).unwrap_or_default())?;
                }
                Ok(())
            }
            Guard::ForbidPath { glob } => write!(f, "forbid paths `{glob}`"),
            Guard::ForbidAdded { regex, paths } => {
                write!(f, "forbid added lines matching `{regex}`")?;
                if let Some(p) = paths {
                    write!(f, " in `{p}`")?;
                }
                Ok(())
            }
            Guard::RequireAdded { regex, paths } => {
                write!(f, "require an added line matching `{regex}` in `{paths}`")
            }
        }
    }
}

/// How an incoming record is matched to an existing one on import (upsert).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "value")]
pub enum Identity {
    /// Always a new record.
    #[default]
    New,
    /// This store's record id: updated if it exists, created with this id if not.
    Id(RecordId),
    /// An external key (`madr:docs/decisions/0003-x.md`, `spec:shop#DEC-1`): updated if a
    /// current record has it, created otherwise.
    Key(String),
}

/// A record to write: everything but the store-assigned fields.
///
/// Invariants checked on write: `title` is one non-empty line; every scope glob and guard
/// compiles; `valid_to`, when set, is not before `valid_from`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRecord {
    /// Kind.
    pub kind: Kind,
    /// Status; [`Status::Accepted`] by default.
    #[serde(default = "default_status")]
    pub status: Status,
    /// One-line title.
    pub title: String,
    /// The forces at play (markdown).
    #[serde(default)]
    pub context: String,
    /// What was decided (markdown).
    #[serde(default)]
    pub decision: String,
    /// What follows from it (markdown).
    #[serde(default)]
    pub consequences: String,
    /// Options considered and turned down, one line each.
    #[serde(default)]
    pub rejected_options: Vec<String>,
    /// Where it applies.
    #[serde(default)]
    pub scope: Scope,
    /// Where it came from.
    #[serde(default)]
    pub provenance: Provenance,
    /// Machine-checkable rules.
    #[serde(default)]
    pub guards: Vec<Guard>,
    /// Start of valid time; the write time when `None`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub valid_from: Option<Timestamp>,
    /// End of valid time (exclusive); open when `None`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub valid_to: Option<Timestamp>,
    /// How to match an existing record on upsert.
    #[serde(default)]
    pub identity: Identity,
    /// The external key to store on a new record (imports); [`Identity::Key`] implies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_key: Option<String>,
    /// The id to use when a new record is created and the id is free (imports keep the
    /// numbers of `0007-x.md` and `M-7`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_hint: Option<RecordId>,
    /// On import: the id of the record this one supersedes (links only, no status change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<RecordId>,
    /// On import: the id of the record that superseded this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<RecordId>,
}

fn default_status() -> Status {
    Status::Accepted
}

impl NewRecord {
    /// An accepted record of `kind` with `title` and every other field empty.
    pub fn new(kind: Kind, title: impl Into<String>) -> Self {
        NewRecord {
            kind,
            status: Status::Accepted,
            title: title.into(),
            context: String::new(),
            decision: String::new(),
            consequences: String::new(),
            rejected_options: Vec::new(),
            scope: Scope::default(),
            provenance: Provenance::default(),
            guards: Vec::new(),
            valid_from: None,
            valid_to: None,
            identity: Identity::New,
            external_key: None,
            id_hint: None,
            supersedes: None,
            superseded_by: None,
        }
    }

    /// An accepted decision with `title` and `decision` text.
    pub fn decision(title: impl Into<String>, decision: impl Into<String>) -> Self {
        let mut r = NewRecord::new(Kind::Decision, title);
        r.decision = decision.into();
        r
    }
}

/// Counters of a lesson learned from eval failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LessonStats {
    /// `requirement:category`.
    pub fingerprint: String,
    /// Failures seen in total (deduplicated by fingerprint: one lesson, many failures).
    pub failures: u32,
    /// Green runs of the requirement in a row since the last failure.
    pub green_streak: u32,
    /// When the lesson was retired (green long enough), if it is.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub retired_at: Option<Timestamp>,
}

/// One version of a record as stored.
///
/// Bitemporal: `valid_from..valid_to` is when the record was in force in the world
/// (valid time); `recorded_at..recorded_to` is when the store believed this version
/// (transaction time). See Snodgrass, *Developing Time-Oriented Database Applications in SQL*.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Identity across versions.
    pub id: RecordId,
    /// 1-based version number.
    pub version: u32,
    /// Kind.
    pub kind: Kind,
    /// Status in this version.
    pub status: Status,
    /// One-line title.
    pub title: String,
    /// Context (markdown).
    pub context: String,
    /// Decision (markdown).
    pub decision: String,
    /// Consequences (markdown).
    pub consequences: String,
    /// Rejected options, one line each.
    pub rejected_options: Vec<String>,
    /// Scope.
    pub scope: Scope,
    /// Provenance.
    pub provenance: Provenance,
    /// Guards.
    pub guards: Vec<Guard>,
    /// The record this one supersedes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<RecordId>,
    /// The record that supersedes this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<RecordId>,
    /// External key used by imports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_key: Option<String>,
    /// Valid time start.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: Timestamp,
    /// Valid time end (exclusive), when the record stopped being in force.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub valid_to: Option<Timestamp>,
    /// Transaction time start: when this version was written.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: Timestamp,
    /// Transaction time end: when a later version replaced this one (`None` = current).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub recorded_to: Option<Timestamp>,
    /// Lesson counters, for lessons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lesson: Option<LessonStats>,
}

impl Record {
    /// True when the record is accepted and `t` lies in its valid time.
    pub fn in_force_at(&self, t: Timestamp) -> bool {
        let in_time = self.valid_from <= t && self.valid_to.is_none_or(|end| t < end);
        let was_accepted = match self.status {
            Status::Accepted => true,
            // These statuses end an accepted record at `valid_to`.
            Status::Superseded | Status::Deprecated => self.valid_to.is_some(),
            Status::Proposed | Status::Rejected => false,
        };
        in_time && was_accepted
    }

    /// The fields of this record as a [`NewRecord`] that would recreate it.
    pub fn to_new(&self) -> NewRecord {
        NewRecord {
            kind: self.kind,
            status: self.status,
            title: self.title.clone(),
            context: self.context.clone(),
            decision: self.decision.clone(),
            consequences: self.consequences.clone(),
            rejected_options: self.rejected_options.clone(),
            scope: self.scope.clone(),
            provenance: self.provenance.clone(),
            guards: self.guards.clone(),
            valid_from: Some(self.valid_from),
            valid_to: self.valid_to,
            identity: Identity::Id(self.id),
            external_key: self.external_key.clone(),
            id_hint: Some(self.id),
            supersedes: self.supersedes,
            superseded_by: self.superseded_by,
        }
    }
}

/// An eval failure's identity: the requirement and the failure category. The same
/// fingerprint seen twice is one lesson counted twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Requirement id (`REQ-3`, or `spec#REQ-3`).
    pub requirement: String,
    /// Failure category (`timeout`, `wrong-status`, `assertion`...).
    pub category: String,
    /// A one-paragraph description of what went wrong, used as the lesson's context the
    /// first time the fingerprint is seen.
    #[serde(default)]
    pub detail: String,
}

impl Fingerprint {
    /// The dedup key, `requirement:category` (trimmed, lower-cased category).
    pub fn key(&self) -> String {
        format!(
            "{}:{}",
            self.requirement.trim(),
            self.category.trim().to_lowercase()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_id_parses_and_displays() {
        assert_eq!("M-7".parse::<RecordId>().ok(), Some(RecordId(7)));
        assert_eq!("7".parse::<RecordId>().ok(), Some(RecordId(7)));
        assert!("M-x".parse::<RecordId>().is_err());
        assert_eq!(RecordId(12).to_string(), "M-12");
    }

    #[test]
    fn time_formats_round_trip() {
        let t = parse_time("2026-01-03").unwrap();
        assert_eq!(format_time(t), "2026-01-03");
        let t2 = from_millis(1_767_434_400_123);
        assert_eq!(parse_time(&format_time(t2)).unwrap(), t2);
    }

    #[test]
    fn status_parses_case_insensitively() {
        assert_eq!("Accepted".parse::<Status>().ok(), Some(Status::Accepted));
        assert!("maybe".parse::<Status>().is_err());
    }
}
