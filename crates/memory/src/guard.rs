//! Guards: decisions as executable checks, run against a git diff.
//!
//! The diff is a unified diff (`git diff --no-color -U0 A B`, see
//! <https://git-scm.com/docs/diff-format>). Added lines feed the regex guards; changed paths
//! feed the path guards; changed manifests feed the dependency guards. With a repository at
//! hand the manifests are parsed whole at both revisions and compared (exact); with diff text
//! only, added manifest lines are matched against dependency-declaration patterns (a
//! heuristic, documented on [`declared_in_line`]).

use crate::retrieve::compile_glob;
use crate::{Ecosystem, Error, Guard, Kind, Record, RecordId};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// One added line of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedLine {
    /// 1-based line number in the new file.
    pub line: u32,
    /// The line's text, without the leading `+`.
    pub text: String,
}

/// One file of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    /// Path in the new revision (the old path for a deleted file), relative to the repo root.
    pub path: String,
    /// Path in the old revision when it differs (rename) or the file is new (`None`).
    pub old_path: Option<String>,
    /// True when the file exists in neither the new revision (deleted).
    pub deleted: bool,
    /// Lines added.
    pub added: Vec<AddedLine>,
}

fn strip_diff_path(p: &str) -> Option<String> {
    let p = p.trim_end_matches('\t').trim();
    let p = p.split('\t').next().unwrap_or(p);
    if p == "/dev/null" {
        return None;
    }
    let p = p.trim_matches('"');
    let p = p
        .strip_prefix("a/")
        .or_else(|| p.strip_prefix("b/"))
        .unwrap_or(p);
    Some(p.to_owned())
}

/// Parses a unified diff (as printed by `git diff`) into files and added lines.
///
/// Lenient: unknown lines are skipped, hunk headers drive line numbering, and binary files
/// appear with no added lines. Never panics.
pub fn parse_unified_diff(text: &str) -> Vec<FileDiff> {
    let mut files: Vec<FileDiff> = Vec::new();
    let mut cur: Option<FileDiff> = None;
    let mut old_left = 0u32;
    let mut new_left = 0u32;
    let mut new_line = 0u32;
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if old_left > 0 || new_left > 0 {
            match line.as_bytes().first() {
                Some(b'+') => {
                    if let Some(f) = cur.as_mut() {
                        f.added.push(AddedLine {
                            line: new_line,
                            text: line[1..].to_owned(),
                        });
                    }
                    new_line += 1;
                    new_left = new_left.saturating_sub(1);
                    continue;
                }
                Some(b'-') => {
                    old_left = old_left.saturating_sub(1);
                    continue;
                }
                Some(b' ') | None => {
                    new_line += 1;
                    old_left = old_left.saturating_sub(1);
                    new_left = new_left.saturating_sub(1);
                    continue;
                }
                Some(b'\\') => continue,
                _ => {
                    old_left = 0;
                    new_left = 0;
                }
            }
        }
        if let Some(rest) = line.strip_prefix("diff --git ") {
            if let Some(f) = cur.take() {
                files.push(f);
            }
            // `a/x b/y`: take the b side as a provisional path (quoted paths are rare).
            let path = rest
                .rsplit_once(" b/")
                .map_or_else(|| rest.to_owned(), |(_, b)| b.trim_matches('"').to_owned());
            cur = Some(FileDiff {
                path,
                old_path: None,
                deleted: false,
                added: Vec::new(),
            });
        } else if let Some(rest) = line.strip_prefix("--- ") {
            if cur.is_none() {
                cur = Some(FileDiff {
                    path: String::new(),
                    old_path: None,
                    deleted: false,
                    added: Vec::new(),
                });
            }
            if let Some(f) = cur.as_mut() {
                f.old_path = strip_diff_path(rest);
            }
        } else if let Some(rest) = line.strip_prefix("+++ ") {
            if let Some(f) = cur.as_mut() {
                if let Some(p) = strip_diff_path(rest) {
                    f.path = p;
                } else {
                    f.deleted = true;
                    if let Some(o) = &f.old_path {
                        f.path.clone_from(o);
                    }
                }
            }
        } else if let Some(rest) = line.strip_prefix("@@ ") {
            (old_left, new_left, new_line) = hunk_header(rest);
        } else if let Some(rest) = line.strip_prefix("rename from ") {
            if let Some(f) = cur.as_mut() {
                f.old_path = Some(rest.to_owned());
            }
        } else if let Some(rest) = line.strip_prefix("rename to ") {
            if let Some(f) = cur.as_mut() {
                rest.clone_into(&mut f.path);
            }
        } else if line.starts_with("deleted file mode")
            && let Some(f) = cur.as_mut()
        {
            f.deleted = true;
        }
    }
    if let Some(f) = cur.take() {
        files.push(f);
    }
    files.retain(|f| !f.path.is_empty());
    files
}

/// A hunk header after its `@@ ` (`-a,b +c,d @@`): the old and new line counts, and the
/// first new line number.
fn hunk_header(rest: &str) -> (u32, u32, u32) {
    let mut parts = rest.split_whitespace();
    let old = parts.next().unwrap_or("-0");
    let new = parts.next().unwrap_or("+0");
    let count = |s: &str| -> (u32, u32) {
        // Drop the `-`/`+` sign, whatever character stands there (fuzzing found a
        // multi-byte one: slicing at byte 1 would panic).
        let s = s
            .get(s.chars().next().map_or(0, char::len_utf8)..)
            .unwrap_or("");
        let mut it = s.splitn(2, ',');
        let start = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
        let n = it.next().map_or(1, |x| x.parse().unwrap_or(0));
        (start, n)
    };
    let (_, on) = count(old);
    let (ns, nn) = count(new);
    (on, nn, ns)
}

/// A broken guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The decision whose guard failed.
    pub record: RecordId,
    /// Its title.
    pub title: String,
    /// The guard.
    pub guard: Guard,
    /// The file.
    pub path: String,
    /// The line in the new file, when one line is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// What happened, lower case.
    pub message: String,
}

/// The result of checking a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CheckReport {
    /// Violations, ordered by record, then path and line.
    pub violations: Vec<Violation>,
    /// Guards evaluated.
    pub guards_checked: usize,
    /// Files in the diff.
    pub files: usize,
}

/// Reads a manifest at one side of the diff: `(path, old_side) -> contents`.
pub type ManifestReader<'a> = dyn Fn(&str, bool) -> Option<String> + 'a;

/// The manifest ecosystem of a path, by file name.
pub fn ecosystem_of(path: &str) -> Option<Ecosystem> {
    match path.rsplit('/').next() {
        Some("Cargo.toml") => Some(Ecosystem::Cargo),
        Some("package.json") => Some(Ecosystem::Npm),
        Some("pyproject.toml") => Some(Ecosystem::Pypi),
        _ => None,
    }
}

/// Normalises a package name for comparison: lower case, runs of `-`, `_`, `.` as one `-`
/// (PEP 503, <https://peps.python.org/pep-0503/#normalized-names>; applied to every
/// ecosystem, since `foo_bar` / `foo-bar` confusions are common in Cargo too).
pub fn normalize_name(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

fn pep508_name(spec: &str) -> String {
    spec.trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect()
}

/// The dependency names a manifest declares (normalised), or `None` when it does not parse.
pub fn manifest_dependencies(eco: Ecosystem, text: &str) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    match eco {
        Ecosystem::Cargo => cargo_dependencies(text, &mut out)?,
        Ecosystem::Npm => npm_dependencies(text, &mut out)?,
        Ecosystem::Pypi => pypi_dependencies(text, &mut out)?,
    }
    Some(out)
}

/// The dependency tables of a `Cargo.toml` (targets' and the workspace's too), into `out`.
fn cargo_dependencies(text: &str, out: &mut BTreeSet<String>) -> Option<()> {
    let t: toml::Table = toml::from_str(text).ok()?;
    let mut add_table = |v: Option<&toml::Value>| {
        if let Some(tbl) = v.and_then(toml::Value::as_table) {
            for (k, val) in tbl {
                out.insert(normalize_name(k));
                if let Some(p) = val.get("package").and_then(toml::Value::as_str) {
                    out.insert(normalize_name(p));
                }
            }
        }
    };
    let sections = [
        "dependencies",
        "dev-dependencies",
        "build-dependencies",
        "dev_dependencies",
        "build_dependencies",
    ];
    for s in sections {
        add_table(t.get(s));
    }
    if let Some(targets) = t.get("target").and_then(toml::Value::as_table) {
        for tv in targets.values() {
            for s in sections {
                add_table(tv.get(s));
            }
        }
    }
    add_table(t.get("workspace").and_then(|w| w.get("dependencies")));
    Some(())
}

/// The dependency objects of a `package.json` (and `bundledDependencies`), into `out`.
fn npm_dependencies(text: &str, out: &mut BTreeSet<String>) -> Option<()> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    for s in [
        "dependencies",
        "devDependencies",
        "peerDependencies",
        "optionalDependencies",
    ] {
        if let Some(o) = v.get(s).and_then(serde_json::Value::as_object) {
            out.extend(o.keys().map(|k| normalize_name(k)));
        }
    }
    if let Some(a) = v
        .get("bundledDependencies")
        .and_then(serde_json::Value::as_array)
    {
        out.extend(a.iter().filter_map(|x| x.as_str()).map(normalize_name));
    }
    Some(())
}

/// The PEP 621 dependencies, optional dependencies and groups of a `pyproject.toml`, and
/// Poetry's, into `out`.
fn pypi_dependencies(text: &str, out: &mut BTreeSet<String>) -> Option<()> {
    let t: toml::Table = toml::from_str(text).ok()?;
    let mut add_list = |v: Option<&toml::Value>| {
        for item in v.and_then(toml::Value::as_array).into_iter().flatten() {
            if let Some(s) = item.as_str() {
                out.insert(normalize_name(&pep508_name(s)));
            }
        }
    };
    let project = t.get("project");
    add_list(project.and_then(|p| p.get("dependencies")));
    for tbl in [
        project.and_then(|p| p.get("optional-dependencies")),
        t.get("dependency-groups"),
    ]
    .into_iter()
    .flatten()
    .filter_map(toml::Value::as_table)
    {
        for v in tbl.values() {
            add_list(Some(v));
        }
    }
    let poetry = t.get("tool").and_then(|x| x.get("poetry"));
    let mut keys = |v: Option<&toml::Value>| {
        for k in v
            .and_then(toml::Value::as_table)
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            if k != "python" {
                out.insert(normalize_name(k));
            }
        }
    };
    keys(poetry.and_then(|p| p.get("dependencies")));
    keys(poetry.and_then(|p| p.get("dev-dependencies")));
    if let Some(groups) = poetry
        .and_then(|p| p.get("group"))
        .and_then(toml::Value::as_table)
    {
        for g in groups.values() {
            keys(g.get("dependencies"));
        }
    }
    Some(())
}

/// Dependency names an added manifest line appears to declare, for diff text without a
/// repository (heuristic):
/// - `Cargo.toml` and Poetry: `name = ...` keys, `[dependencies.name]` tables and
///   `package = "name"`;
/// - `package.json`: `"name": ...` keys;
/// - `pyproject.toml`: PEP 508 strings in arrays (`"name>=1",`).
///
/// It cannot tell a dependency table from another table, so `check` only uses it for names
/// a guard forbids.
pub fn declared_in_line(eco: Ecosystem, line: &str) -> Vec<String> {
    let l = line.trim();
    let mut out = Vec::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '/'))
            .collect()
    };
    match eco {
        Ecosystem::Cargo | Ecosystem::Pypi => {
            if let Some(inner) = l.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                if let Some((_, name)) = inner.rsplit_once("dependencies.") {
                    out.push(ident(name.trim_matches('"')));
                }
            } else if let Some((k, v)) = l.split_once('=') {
                let key = k.trim().trim_matches('"');
                if !key.is_empty() && ident(key) == key {
                    out.push(key.to_owned());
                }
                if let Some(rest) = v.split("package").nth(1)
                    && let Some(name) = rest.split('"').nth(1)
                {
                    out.push(name.to_owned());
                }
            }
            if eco == Ecosystem::Pypi
                && let Some(s) = l.strip_prefix('"').or_else(|| l.strip_prefix('\''))
            {
                out.push(pep508_name(s));
            }
        }
        Ecosystem::Npm => {
            if let Some(rest) = l.strip_prefix('"')
                && let Some((name, after)) = rest.split_once('"')
                && after.trim_start().starts_with(':')
            {
                out.push(name.to_owned());
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out.iter().map(|s| normalize_name(s)).collect()
}

/// A guard with its compiled matchers.
struct Compiled<'r> {
    record: &'r Record,
    guard: &'r Guard,
    regex: Option<Regex>,
    paths: Vec<globset::GlobMatcher>,
}

fn compile<'r>(record: &'r Record, guard: &'r Guard) -> Result<Compiled<'r>, Error> {
    let scope_globs = |explicit: Option<&String>| -> Result<Vec<globset::GlobMatcher>, Error> {
        match explicit {
            Some(g) => Ok(vec![compile_glob(g)?]),
            None => record.scope.paths.iter().map(|g| compile_glob(g)).collect(),
        }
    };
    let re = |s: &str| {
        Regex::new(s).map_err(|source| Error::Regex {
            regex: s.to_owned(),
            record: Some(record.id),
            source,
        })
    };
    Ok(match guard {
        Guard::ForbidDependency { .. } => Compiled {
            record,
            guard,
            regex: None,
            paths: Vec::new(),
        },
        Guard::ForbidPath { glob } => Compiled {
            record,
            guard,
            regex: None,
            paths: vec![compile_glob(glob)?],
        },
        Guard::ForbidAdded { regex, paths } => Compiled {
            record,
            guard,
            regex: Some(re(regex)?),
            paths: scope_globs(paths.as_ref())?,
        },
        Guard::RequireAdded { regex, paths } => Compiled {
            record,
            guard,
            regex: Some(re(regex)?),
            paths: scope_globs(Some(paths))?,
        },
    })
}

fn in_paths(paths: &[globset::GlobMatcher], path: &str) -> bool {
    paths.is_empty() || paths.iter().any(|m| m.is_match(path))
}

/// Checks `records`' guards against a parsed diff.
///
/// Only decisions and patterns carry guards that are checked. Path and regex guards with no
/// `paths` of their own look only at files in the record's scope (anywhere when the scope
/// has no paths); dependency guards look at every manifest. `manifests`, when given, reads a
/// manifest at the new (`false`) or old (`true`) side for exact dependency comparison.
///
/// # Errors
/// [`Error::Invalid`] when a stored glob or regex does not compile.
pub fn check(
    records: &[Record],
    files: &[FileDiff],
    manifests: Option<&ManifestReader<'_>>,
) -> Result<CheckReport, Error> {
    let mut report = CheckReport {
        files: files.len(),
        ..CheckReport::default()
    };
    for r in records
        .iter()
        .filter(|r| matches!(r.kind, Kind::Decision | Kind::Pattern))
    {
        for g in &r.guards {
            let c = compile(r, g)?;
            report.guards_checked += 1;
            check_one(&c, files, manifests, &mut report.violations);
        }
    }
    report.violations.sort_by(|a, b| {
        (a.record, &a.path, a.line, &a.message).cmp(&(b.record, &b.path, b.line, &b.message))
    });
    report.violations.dedup();
    Ok(report)
}

fn check_one(
    c: &Compiled<'_>,
    files: &[FileDiff],
    manifests: Option<&ManifestReader<'_>>,
    out: &mut Vec<Violation>,
) {
    let v = |path: &str, line: Option<u32>, message: String| Violation {
        record: c.record.id,
        title: c.record.title.clone(),
        guard: c.guard.clone(),
        path: path.to_owned(),
        line,
        message,
    };
    match c.guard {
        Guard::ForbidDependency { name, ecosystem } => {
            let want = normalize_name(name);
            for f in files.iter().filter(|f| !f.deleted) {
                let Some(eco) = ecosystem_of(&f.path) else {
                    continue;
                };
                if ecosystem.is_some_and(|e| e != eco) {
                    continue;
                }
                let line_of = || {
                    f.added
                        .iter()
                        .find(|l| declared_in_line(eco, &l.text).contains(&want))
                        .or_else(|| {
                            f.added
                                .iter()
                                .find(|l| normalize_name(&l.text).contains(&want))
                        })
                        .map(|l| l.line)
                };
                if adds_dependency(f, eco, &want, manifests) {
                    out.push(v(
                        &f.path,
                        line_of(),
                        format!("adds dependency `{name}`, which this decision forbids"),
                    ));
                }
            }
        }
        Guard::ForbidPath { glob } => {
            for f in files.iter().filter(|f| !f.deleted) {
                if in_paths(&c.paths, &f.path) {
                    out.push(v(
                        &f.path,
                        None,
                        format!("changes `{}`, matching forbidden paths `{glob}`", f.path),
                    ));
                }
            }
        }
        Guard::ForbidAdded { regex, .. } => {
            let Some(re) = &c.regex else { return };
            for f in files
                .iter()
                .filter(|f| !f.deleted && in_paths(&c.paths, &f.path))
            {
                for l in f.added.iter().filter(|l| re.is_match(&l.text)) {
                    out.push(v(
                        &f.path,
                        Some(l.line),
                        format!("adds a line matching forbidden `{regex}`"),
                    ));
                }
            }
        }
        Guard::RequireAdded { regex, paths } => {
            let Some(re) = &c.regex else { return };
            for f in files
                .iter()
                .filter(|f| !f.deleted && !f.added.is_empty() && in_paths(&c.paths, &f.path))
            {
                if !f.added.iter().any(|l| re.is_match(&l.text)) {
                    out.push(v(
                        &f.path,
                        None,
                        format!(
                            "adds lines to a file matching `{paths}` but none matching required `{regex}`"
                        ),
                    ));
                }
            }
        }
    }
}

/// Whether file `f` (a manifest of `eco`) adds dependency `want`: exactly, from both sides'
/// manifests when `manifests` can read them, else by the added lines.
fn adds_dependency(
    f: &FileDiff,
    eco: Ecosystem,
    want: &str,
    manifests: Option<&ManifestReader<'_>>,
) -> bool {
    let exact = manifests.and_then(|read| {
        let new = manifest_dependencies(eco, &read(&f.path, false)?)?;
        let old_path = f.old_path.as_deref().unwrap_or(&f.path);
        let old = read(old_path, true)
            .and_then(|t| manifest_dependencies(eco, &t))
            .unwrap_or_default();
        Some(new.contains(want) && !old.contains(want))
    });
    exact.unwrap_or_else(|| {
        f.added
            .iter()
            .any(|l| declared_in_line(eco, &l.text).iter().any(|d| d == want))
    })
}

/// Runs git hardened by `lightsout-git` (no hooks, external diffs, textconv, drivers or
/// inherited environment): the repository is one an agent wrote to.
fn git(repo: &Path, args: &[&str]) -> Result<std::process::Output, Error> {
    lightsout_git::command(repo, args)
        .output()
        .map_err(|source| Error::GitSpawn { source })
}

/// `git diff --no-color --no-ext-diff -M -U0 base head` in `repo`.
///
/// # Errors
/// [`Error::Git`] when git fails (unknown revision, not a repository); [`Error::GitSpawn`]
/// when git cannot be run.
pub fn git_diff(repo: &Path, base: &str, head: &str) -> Result<String, Error> {
    for rev in [base, head] {
        if rev.starts_with('-') {
            return Err(Error::Invalid(format!("`{rev}` is not a revision")));
        }
    }
    let out = git(
        repo,
        &[
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "-M",
            "-U0",
            base,
            head,
            "--",
        ],
    )?;
    if !out.status.success() {
        return Err(Error::Git(format!(
            "git diff {base} {head} failed in {}: {}",
            repo.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The contents of `path` at `rev`, or `None` when it does not exist there.
pub fn git_show(repo: &Path, rev: &str, path: &str) -> Option<String> {
    let out = git(repo, &["show", &format!("{rev}:{path}")]).ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The committer time of `rev` in `repo`.
///
/// # Errors
/// [`Error::Git`] when the revision is unknown; [`Error::CommitTime`] when git prints no
/// commit time; [`Error::GitSpawn`] when git cannot be run.
pub fn commit_time(repo: &Path, rev: &str) -> Result<crate::Timestamp, Error> {
    if rev.starts_with('-') {
        return Err(Error::Invalid(format!("`{rev}` is not a revision")));
    }
    let out = git(repo, &["show", "-s", "--format=%ct", rev, "--"])?;
    if !out.status.success() {
        return Err(Error::Git(format!(
            "cannot read the commit time of `{rev}`: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let secs: i64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|source| Error::CommitTime {
            rev: rev.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            source,
        })?;
    Ok(crate::from_millis(secs.saturating_mul(1000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `memory_import_no_panic` fuzz target: a hunk header whose range starts
    /// with a multi-byte character instead of `-`/`+`.
    #[test]
    fn a_hunk_header_with_a_multibyte_sign_does_not_panic() {
        let bytes = b"@@ \xd5\xdc\x00\r\xbc\xff\xff\xff\x00+\x00\x00\x00";
        let text = String::from_utf8_lossy(bytes);
        let _ = parse_unified_diff(&text);
        let _ = parse_unified_diff("@@ \u{e9}3,2 \u{fffd}4 @@\n+x\n");
    }

    const DIFF: &str = "diff --git a/Cargo.toml b/Cargo.toml
index 1..2 100644
--- a/Cargo.toml
+++ b/Cargo.toml
@@ -3,0 +4,2 @@ edition = \"2021\"
+[dependencies]
+postgres = \"0.19\"
diff --git a/src/new.rs b/src/new.rs
new file mode 100644
--- /dev/null
+++ b/src/new.rs
@@ -0,0 +1,2 @@
+fn f() { x.unwrap(); }
++++ not a header
";

    #[test]
    fn parses_files_and_added_lines() {
        let f = parse_unified_diff(DIFF);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].path, "Cargo.toml");
        assert_eq!(f[0].added[1].line, 5);
        assert_eq!(f[0].added[1].text, "postgres = \"0.19\"");
        assert_eq!(f[1].path, "src/new.rs");
        assert_eq!(f[1].old_path, None);
        assert_eq!(f[1].added.len(), 2);
        assert_eq!(f[1].added[1].text, "+++ not a header");
    }

    #[test]
    fn manifest_parsers_find_dependencies() {
        let cargo = "[dependencies]\nserde = \"1\"\npg = { package = \"tokio_postgres\", version = \"1\" }\n[target.'cfg(unix)'.dev-dependencies]\nnix = \"1\"\n";
        let d = manifest_dependencies(Ecosystem::Cargo, cargo).unwrap();
        assert!(d.contains("tokio-postgres") && d.contains("nix") && d.contains("serde"));
        let npm = r#"{"dependencies":{"left-pad":"1"},"devDependencies":{"@types/node":"1"}}"#;
        let d = manifest_dependencies(Ecosystem::Npm, npm).unwrap();
        assert!(d.contains("left-pad") && d.contains("@types/node"));
        let py = "[project]\ndependencies = [\"Requests>=2\", \"psycopg2-binary; python_version>'3'\"]\n[tool.poetry.dependencies]\npython = \"^3.11\"\nDjango = \"*\"\n";
        let d = manifest_dependencies(Ecosystem::Pypi, py).unwrap();
        assert!(d.contains("requests") && d.contains("psycopg2-binary") && d.contains("django"));
        assert!(!d.contains("python"));
    }

    #[test]
    fn line_heuristics() {
        assert_eq!(
            declared_in_line(Ecosystem::Cargo, "postgres = \"0.19\""),
            ["postgres"]
        );
        assert_eq!(
            declared_in_line(Ecosystem::Cargo, "[dependencies.Postgres_X]"),
            ["postgres-x"]
        );
        assert_eq!(
            declared_in_line(Ecosystem::Npm, "  \"pg\": \"^8\","),
            ["pg"]
        );
        assert_eq!(
            declared_in_line(Ecosystem::Pypi, "  \"SQLAlchemy>=2\","),
            ["sqlalchemy"]
        );
    }
}
