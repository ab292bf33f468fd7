//! Comparing two versions of a spec by requirement id.

use crate::codes;
use crate::diagnostic::{Diagnostic, Severity};
use crate::model::{Requirement, Spec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a requirement changed between two versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Only in the new version.
    Added,
    /// Only in the old version.
    Removed,
    /// In both, with a different title, body, scenarios, dependencies, touches or tags.
    Modified,
}

/// One changed requirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RequirementChange {
    /// The requirement id.
    pub id: String,
    /// What happened to it.
    pub kind: ChangeKind,
    /// Which parts differ, for `modified`: any of `title`, `body`, `scenarios`,
    /// `depends_on`, `touches`, `tags`, `estimate`.
    pub fields: Vec<String>,
}

/// The difference between two versions of a spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SpecDiff {
    /// Spec id of the old version.
    pub old_id: String,
    /// Spec id of the new version.
    pub new_id: String,
    /// Front matter `version` of the old and new versions.
    pub old_version: Option<u32>,
    /// See `old_version`.
    pub new_version: Option<u32>,
    /// Changed requirements: added and modified in the new file's order, then removed in the
    /// old file's order.
    pub changes: Vec<RequirementChange>,
    /// Findings about the change itself ([`codes::NO_VERSION_BUMP`]), located in the new file.
    pub diagnostics: Vec<Diagnostic>,
}

impl SpecDiff {
    /// Ids of added and modified requirements: the ones whose tasks must be (re)built.
    pub fn changed_ids(&self) -> Vec<&str> {
        self.changes
            .iter()
            .filter(|c| c.kind != ChangeKind::Removed)
            .map(|c| c.id.as_str())
            .collect()
    }

    /// True when no requirement changed.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Compares `old` and `new` by requirement id. Spans are ignored: moving a requirement or
/// editing text around it is not a change to it. When any requirement was added, removed or
/// modified and `new`'s front matter `version` is not greater than `old`'s, the diff carries
/// an [`codes::NO_VERSION_BUMP`] error at the new front matter (the format says: bump the
/// version when any requirement changes).
pub fn diff(old: &Spec, new: &Spec) -> SpecDiff {
    let mut changes = Vec::new();
    for n in &new.requirements {
        match old.requirement(&n.id) {
            None => changes.push(RequirementChange {
                id: n.id.clone(),
                kind: ChangeKind::Added,
                fields: Vec::new(),
            }),
            Some(o) => {
                let fields = changed_fields(o, n);
                if !fields.is_empty() {
                    changes.push(RequirementChange {
                        id: n.id.clone(),
                        kind: ChangeKind::Modified,
                        fields,
                    });
                }
            }
        }
    }
    for o in &old.requirements {
        if new.requirement(&o.id).is_none() {
            changes.push(RequirementChange {
                id: o.id.clone(),
                kind: ChangeKind::Removed,
                fields: Vec::new(),
            });
        }
    }
    let mut diagnostics = Vec::new();
    let bumped = match (old.meta.version, new.meta.version) {
        (Some(a), Some(b)) => b > a,
        (None, Some(_)) => true,
        _ => false,
    };
    if !changes.is_empty() && !bumped {
        let n = changes.len();
        let ids: Vec<&str> = changes.iter().take(5).map(|c| c.id.as_str()).collect();
        let shown = match (old.meta.version, new.meta.version) {
            (Some(a), Some(b)) => format!("version {a} → {b}"),
            (_, None) => "no `version` in the new front matter".to_owned(),
            (None, Some(b)) => format!("version {b}"),
        };
        let mut d = Diagnostic::new(
            codes::NO_VERSION_BUMP,
            Severity::Error,
            new.meta.span,
            format!(
                "{n} requirement{} changed ({}{}) but the spec version was not bumped ({shown})",
                if n == 1 { "" } else { "s" },
                ids.join(", "),
                if n > 5 { ", ..." } else { "" }
            ),
            format!(
                "set `version: {}` in the front matter",
                old.meta.version.map_or(1, |v| v + 1)
            ),
        );
        d.path.clone_from(&new.path);
        diagnostics.push(d);
    }
    SpecDiff {
        old_id: old.meta.id.clone(),
        new_id: new.meta.id.clone(),
        old_version: old.meta.version,
        new_version: new.meta.version,
        changes,
        diagnostics,
    }
}

fn changed_fields(o: &Requirement, n: &Requirement) -> Vec<String> {
    let mut f = Vec::new();
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    if norm(&o.title) != norm(&n.title) {
        f.push("title");
    }
    if norm(&o.body) != norm(&n.body) {
        f.push("body");
    }
    let steps = |r: &Requirement| {
        r.scenarios
            .iter()
            .map(|s| {
                let steps: Vec<_> = s
                    .steps
                    .iter()
                    .map(|st| (st.keyword, norm(&st.text)))
                    .collect();
                (norm(&s.name), steps)
            })
            .collect::<Vec<_>>()
    };
    if steps(o) != steps(n) {
        f.push("scenarios");
    }
    if o.depends_on != n.depends_on {
        f.push("depends_on");
    }
    if o.touches != n.touches {
        f.push("touches");
    }
    if o.tags != n.tags {
        f.push("tags");
    }
    if o.estimate_hours != n.estimate_hours {
        f.push("estimate");
    }
    f.into_iter().map(str::to_owned).collect()
}
