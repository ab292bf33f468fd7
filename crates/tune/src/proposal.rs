//! Prompt rewrites as proposals: a new prompt template written by a configured agent from
//! the lessons and the redacted failure categories, kept as a *proposed* variant until a
//! human marks it ready (`lightsout tune accept NAME`) or `[tuning] auto_accept = true`.
//!
//! Files, under `.lightsout/tuning/`:
//! - `proposals/<name>.md`: the template (`{{task}}` stands for the built-in prompt);
//! - `proposals/<name>.input.md`: exactly what the proposing agent was given ([`brief`]);
//! - `proposals.json`: the records ([`Proposals`]), written atomically.
//!
//! **What a proposal is built from.** [`ProposalInput`] has two sources only: failure
//! categories as the run-metrics store counts them (`stage: category`, the redacted
//! category, at most [`MAX_CATEGORY_CHARS`] characters, never feedback text) and lessons as
//! decision memory fingerprints them (`requirement:stage: category` and a failure count,
//! never their detail). No holdout file is read here; the CLI also runs the holdout's leak
//! scanner over the brief and refuses to send it when it flags anything.
//!
//! A proposal becomes a variant ([`with_proposals`]) with the base variant's agent profile
//! and model and its own template; a name already declared in `lightsout.toml` wins over a
//! proposal's.

use crate::Error;
use crate::config::{TuningConfig, Variant, VariantStatus};
use crate::rollup::Rollup;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The longest failure category a brief carries; longer ones are cut (a category is a few
/// words; anything longer is not a category).
pub const MAX_CATEGORY_CHARS: usize = 80;

/// The file the proposing agent writes its template to, in its working directory.
pub const TEMPLATE_FILE: &str = "PROMPT.md";

/// `.lightsout/tuning` of the project at `project`.
pub fn tuning_dir(project: &Path) -> PathBuf {
    project.join(".lightsout").join("tuning")
}

/// One failure category on one task kind and variant, counted over the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryCount {
    /// The task kind.
    pub kind: String,
    /// The variant (or agent label of older lines).
    pub variant: String,
    /// `stage: category`, redacted.
    pub category: String,
    /// Failed attempts in it.
    pub count: u32,
}

/// One lesson of decision memory, by fingerprint only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LessonLine {
    /// `requirement:stage: category`.
    pub fingerprint: String,
    /// Failures seen.
    pub failures: u32,
}

/// Everything a proposal is written from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProposalInput {
    /// The variant the proposal rewrites.
    pub base: String,
    /// The base variant's template, when it has one (a human-written or accepted file).
    pub base_template: Option<String>,
    /// Failure categories, most frequent first.
    pub categories: Vec<CategoryCount>,
    /// Lessons in force, most failures first.
    pub lessons: Vec<LessonLine>,
}

/// `s` cut to `max` characters, on one line.
fn one_line(s: &str, max: usize) -> String {
    let line: String = s
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect();
    line.trim().to_owned()
}

impl ProposalInput {
    /// The input for rewriting `base`: the failure categories of `rollup` (every kind and
    /// variant) and `lessons`, each cut to one line of at most [`MAX_CATEGORY_CHARS`].
    pub fn new(
        base: &str,
        base_template: Option<String>,
        rollup: &Rollup,
        lessons: Vec<LessonLine>,
    ) -> Self {
        let mut categories: Vec<CategoryCount> = rollup
            .groups
            .iter()
            .flat_map(|g| {
                g.failure_categories.iter().map(|(c, n)| CategoryCount {
                    kind: g.kind.clone(),
                    variant: g.variant.clone(),
                    category: one_line(c, MAX_CATEGORY_CHARS),
                    count: *n,
                })
            })
            .collect();
        categories.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.category.cmp(&b.category))
        });
        let mut lessons: Vec<LessonLine> = lessons
            .into_iter()
            .map(|l| LessonLine {
                fingerprint: one_line(&l.fingerprint, 2 * MAX_CATEGORY_CHARS),
                failures: l.failures,
            })
            .collect();
        lessons.sort_by(|a, b| {
            b.failures
                .cmp(&a.failures)
                .then_with(|| a.fingerprint.cmp(&b.fingerprint))
        });
        ProposalInput {
            base: base.to_owned(),
            base_template,
            categories,
            lessons,
        }
    }
}

/// The brief the proposing agent gets (markdown): what to write, where, and the evidence.
/// Built from `input` alone. Deterministic.
pub fn brief(input: &ProposalInput) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "Write a prompt template for coding agents of a software factory, to replace the \
         template of variant `{}`. Write it to the file {TEMPLATE_FILE} in your working \
         directory and change nothing else.\n\n\
         The template is markdown. Put the placeholder {{{{task}}}} where the task goes: the \
         factory replaces it with the task, its requirements, its acceptance criteria and \
         the feedback of the previous attempt. Keep it short. Use the evidence below: address \
         the failure categories that recur and the lessons in force.\n",
        input.base
    );
    match &input.base_template {
        Some(t) => {
            let _ = writeln!(
                b,
                "## The current template\n\n```markdown\n{}\n```\n",
                t.trim()
            );
        }
        None => {
            let _ = writeln!(
                b,
                "## The current template\n\nThe built-in prompt alone ({{{{task}}}}).\n"
            );
        }
    }
    b.push_str("## Failure categories (kind, variant, category: failed attempts)\n\n");
    if input.categories.is_empty() {
        b.push_str("None recorded.\n");
    }
    for c in &input.categories {
        let _ = writeln!(
            b,
            "- {} / {}: {}: {}",
            c.kind, c.variant, c.category, c.count
        );
    }
    b.push_str("\n## Lessons in force (requirement:stage: category: failures)\n\n");
    if input.lessons.is_empty() {
        b.push_str("None recorded.\n");
    }
    for l in &input.lessons {
        let _ = writeln!(b, "- {}: {}", l.fingerprint, l.failures);
    }
    b
}

/// A proposal's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// The variant name it enters the bandit under.
    pub name: String,
    /// The variant it rewrites (its agent profile and model are kept).
    pub base: String,
    /// The agent profile that runs it (the base's).
    pub agent: String,
    /// The model (the base's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The template file, relative to the project (`.lightsout/tuning/proposals/<name>.md`).
    pub prompt: PathBuf,
    /// The `[agent.<name>]` profile that wrote it.
    pub written_by: String,
    /// SHA-256 (hex) of the brief it was written from (`<name>.input.md`).
    pub input_sha256: String,
    /// `proposed` until `lightsout tune accept`, then `ready`.
    pub status: VariantStatus,
}

/// `.lightsout/tuning/proposals.json`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Proposals {
    /// Every proposal, in the order written.
    pub proposals: Vec<Proposal>,
}

impl Proposals {
    /// The records file of the project at `project`.
    pub fn path(project: &Path) -> PathBuf {
        tuning_dir(project).join("proposals.json")
    }

    /// Reads the project's records; none when the file is missing.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be read, [`Error::State`] when it is not a records file.
    pub fn load(project: &Path) -> Result<Self, Error> {
        let path = Self::path(project);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| Error::State {
                path,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    /// Writes the project's records atomically.
    ///
    /// # Errors
    /// [`Error::Io`] when they cannot be written.
    pub fn save(&self, project: &Path) -> Result<(), Error> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Io {
            path: Self::path(project),
            source: e.into(),
        })?;
        bytes.push(b'\n');
        write_atomic(&Self::path(project), &bytes)
    }

    /// The proposal named `name`.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Proposal> {
        self.proposals.iter_mut().find(|p| p.name == name)
    }
}

/// Writes `bytes` to `path` atomically (temporary sibling, fsync, rename).
///
/// # Errors
/// [`Error::Io`] when it cannot be written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    lightsout_stdx::write_atomic(path, bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Whether `name` can name a proposal: letters, digits, `-`, `_`, `.`, not starting with
/// `.`, at most 64 characters (it becomes a file name).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Saves a proposal written from `input_brief`: the template and the brief under
/// `.lightsout/tuning/proposals/`, then the record (status `proposed`). The template file is
/// written before the record, so a record always names a file.
///
/// # Errors
/// [`Error::Config`] for an invalid or taken name (declared in `cfg` or proposed before);
/// [`Error::Io`] when a file cannot be written.
pub fn save_proposal(
    project: &Path,
    cfg: &TuningConfig,
    name: &str,
    base: &Variant,
    written_by: &str,
    input_brief: &str,
    template: &str,
) -> Result<Proposal, Error> {
    use sha2::Digest as _;
    if !valid_name(name) {
        return Err(Error::Config(format!(
            "proposal name `{name}`: use letters, digits, `-`, `_` or `.` (at most 64)"
        )));
    }
    let mut all = Proposals::load(project)?;
    if cfg.variant(name).is_some() || all.proposals.iter().any(|p| p.name == name) {
        return Err(Error::Config(format!(
            "a variant or proposal named `{name}` exists already; choose another --name"
        )));
    }
    let rel = PathBuf::from(".lightsout/tuning/proposals").join(format!("{name}.md"));
    write_atomic(&project.join(&rel), template.as_bytes())?;
    write_atomic(
        &project.join(rel.with_extension("input.md")),
        input_brief.as_bytes(),
    )?;
    let p = Proposal {
        name: name.to_owned(),
        base: base.name.clone(),
        agent: base.agent.clone(),
        model: base.model.clone(),
        prompt: rel,
        written_by: written_by.to_owned(),
        input_sha256: hex(&sha2::Sha256::digest(input_brief.as_bytes())),
        status: VariantStatus::Proposed,
    };
    all.proposals.push(p.clone());
    all.save(project)?;
    Ok(p)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Marks proposal `name` ready: it enters the bandit from the next run on.
///
/// # Errors
/// [`Error::Config`] when there is no such proposal; [`Error::Io`]/[`Error::State`] as
/// [`Proposals::load`] and [`Proposals::save`].
pub fn accept(project: &Path, name: &str) -> Result<Proposal, Error> {
    let mut all = Proposals::load(project)?;
    let names: Vec<String> = all.proposals.iter().map(|p| p.name.clone()).collect();
    let Some(p) = all.get_mut(name) else {
        return Err(Error::Config(format!(
            "no proposal named `{name}` (proposals: {})",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        )));
    };
    p.status = VariantStatus::Ready;
    let p = p.clone();
    all.save(project)?;
    Ok(p)
}

/// `cfg` with the project's proposals added as variants (`prompt` made absolute; a name
/// declared in `lightsout.toml` keeps its declaration). Whether a proposed one may be picked
/// stays [`TuningConfig::eligible`]'s call (`auto_accept`).
///
/// # Errors
/// As [`Proposals::load`].
pub fn with_proposals(mut cfg: TuningConfig, project: &Path) -> Result<TuningConfig, Error> {
    let all = Proposals::load(project)?;
    let declared: std::collections::BTreeSet<String> =
        cfg.variants.iter().map(|v| v.name.clone()).collect();
    for p in all.proposals {
        if declared.contains(&p.name) {
            continue;
        }
        cfg.variants.push(Variant {
            name: p.name,
            agent: p.agent,
            model: p.model,
            prompt: Some(
                std::path::absolute(project.join(&p.prompt)).unwrap_or(project.join(&p.prompt)),
            ),
            status: p.status,
        });
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::parse_jsonl;

    const CFG: &str = r#"
[agent.big]
preset = "claude-code"
[tuning]
incumbent = "A"
[tuning.bounds]
kinds = ["code"]
[[tuning.variant]]
name = "A"
agent = "big"
model = "m1"
"#;

    #[test]
    fn the_brief_holds_categories_and_lesson_fingerprints_only() {
        let line = r#"{"run_id":"r","task_id":"T","attempt":1,"agent":"x","passed":false,"task_kind":"code","variant":"A","failed_stage":"holdout","failure_category":"holdout: status mismatch\nGiven the secret scenario text"}"#;
        let r = crate::rollup::rollup(&parse_jsonl(line).0);
        let input = ProposalInput::new(
            "A",
            None,
            &r,
            vec![LessonLine {
                fingerprint: "REQ-1:holdout: timeout".into(),
                failures: 3,
            }],
        );
        let b = brief(&input);
        assert!(b.contains("- code / A: holdout: status mismatch: 1"), "{b}");
        assert!(b.contains("- REQ-1:holdout: timeout: 3"), "{b}");
        assert!(b.contains("{{task}}"));
        // A category is one line: anything after its first line never reaches the brief.
        assert!(!b.contains("secret scenario"), "{b}");
    }

    #[test]
    fn a_proposal_waits_until_accepted_unless_auto_accept() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::config::load(CFG).unwrap().unwrap();
        let base = cfg.variant("A").unwrap().clone();
        let p = save_proposal(dir.path(), &cfg, "A2", &base, "big", "brief", "T {{task}}").unwrap();
        assert_eq!(p.status, VariantStatus::Proposed);
        assert_eq!(p.model.as_deref(), Some("m1"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join(&p.prompt)).unwrap(),
            "T {{task}}"
        );
        assert!(save_proposal(dir.path(), &cfg, "A2", &base, "big", "b", "t").is_err());
        assert!(save_proposal(dir.path(), &cfg, "A", &base, "big", "b", "t").is_err());
        assert!(save_proposal(dir.path(), &cfg, "../x", &base, "big", "b", "t").is_err());
        let with = with_proposals(cfg.clone(), dir.path()).unwrap();
        let eligible: Vec<&str> = with.eligible().map(|v| v.name.as_str()).collect();
        assert_eq!(eligible, vec!["A"], "proposed: not in the bandit");
        let mut auto = with.clone();
        auto.auto_accept = true;
        assert_eq!(auto.eligible().count(), 2, "auto_accept lets it in");
        accept(dir.path(), "A2").unwrap();
        let with = with_proposals(cfg, dir.path()).unwrap();
        let eligible: Vec<&str> = with.eligible().map(|v| v.name.as_str()).collect();
        assert_eq!(eligible, vec!["A", "A2"], "ready: in the bandit");
        assert!(
            with.variant("A2")
                .unwrap()
                .prompt
                .as_ref()
                .unwrap()
                .is_absolute()
        );
        assert!(accept(dir.path(), "nope").is_err());
    }
}
