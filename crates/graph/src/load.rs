//! Finding the specs and task lists under paths, reading them, and pairing each task list
//! with the spec it breaks down.
//!
//! - A task list file (`tasks.md`, or any markdown that [`crate::read::detect`] recognises,
//!   and any `*.json` given by name; `tasks.json` when searching) is read in its format. Its
//!   spec is, for a Kiro folder, the `requirements.md` beside it; for a Spec Kit feature
//!   folder, the `spec.md` beside it; for an OpenSpec change (a folder with `proposal.md` or
//!   `.openspec.yaml`), every `specs/*/spec.md` delta under it. The list is named after its
//!   folder (the Kiro spec name, the Spec Kit feature, the OpenSpec change).
//! - Every other spec file (found by [`lightsout_spec::discover`]) gives its own list
//!   ([`TaskList::from_spec`]).
//!
//! Directories are searched recursively, skipping `.git`, `target`, `node_modules` and
//! OpenSpec's `archive`; hidden folders such as `.kiro` and `.taskmaster` are searched for
//! task lists.

use crate::graph::Error;
use crate::read;
use crate::task::{TaskFormat, TaskList};
use lightsout_spec::{Diagnostic, Severity, Spec};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What [`load`] found.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// One list per spec or task list file, in path order.
    pub lists: Vec<TaskList>,
    /// The parsed specs (for `--impact`, and for callers that want them).
    pub specs: Vec<Spec>,
    /// Input-level errors from parsing the specs (the spec stage's `LS0xx`), and the task
    /// list readers' diagnostics. Findings of `spec check` are not repeated here.
    pub diagnostics: Vec<Diagnostic>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn is_task_list_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("tasks.md") || name.eq_ignore_ascii_case("tasks.json")
}

/// Every task list under `dir`, skipping `.git` and [`lightsout_stdx::walk::BUILD_DIRS`]
/// (other hidden folders are searched: `.taskmaster/tasks/tasks.json`).
fn walk_task_lists(dir: &Path, out: &mut BTreeSet<PathBuf>) -> Result<(), Error> {
    let skip = |name: &std::ffi::OsStr| {
        name == ".git"
            || name
                .to_str()
                .is_some_and(lightsout_stdx::walk::is_build_dir)
    };
    for e in lightsout_stdx::walk::walk(dir, skip) {
        let e = e.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            io(&path)(e.into())
        })?;
        if !e.file_type().is_dir() && is_task_list_name(&e.file_name().to_string_lossy()) {
            out.insert(e.into_path());
        }
    }
    Ok(())
}

fn folder_name(dir: &Path) -> String {
    // `.taskmaster/tasks/tasks.json` is named after the project folder.
    let mut d = dir;
    loop {
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "tasks" || name == ".taskmaster" {
            match d.parent() {
                Some(p) => d = p,
                None => return "tasks".to_owned(),
            }
            continue;
        }
        if name.is_empty() || name == "." {
            return std::env::current_dir()
                .ok()
                .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "tasks".to_owned());
        }
        return name;
    }
}

fn is_openspec_change(dir: &Path) -> bool {
    dir.join("proposal.md").is_file() || dir.join(".openspec.yaml").is_file()
}

/// The spec files a task list at `list` breaks down.
fn paired_specs(list: &Path, format: TaskFormat, specs: &BTreeSet<PathBuf>) -> Vec<PathBuf> {
    let Some(dir) = list.parent() else {
        return Vec::new();
    };
    match format {
        TaskFormat::OpenSpec => specs
            .iter()
            .filter(|s| s.starts_with(dir.join("specs")))
            .cloned()
            .collect(),
        TaskFormat::Kiro | TaskFormat::SpecKit => ["requirements.md", "spec.md"]
            .iter()
            .map(|n| dir.join(n))
            .filter(|p| p.is_file())
            .take(1)
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads every spec and task list under `paths` (files or directories) into task lists.
///
/// # Errors
/// [`Error::Io`] when a path does not exist or cannot be read, [`Error::Spec`] when a spec
/// under it cannot be found or read. Problems inside the files are diagnostics.
pub fn load(paths: &[PathBuf]) -> Result<Loaded, Error> {
    let mut task_files: BTreeSet<PathBuf> = BTreeSet::new();
    let mut spec_files: BTreeSet<PathBuf> = BTreeSet::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(io(p))?;
        if meta.is_dir() {
            add_dir(p, &mut task_files, &mut spec_files)?;
        } else {
            add_file(p, &mut task_files, &mut spec_files)?;
        }
    }
    // Task files that are not tasks.md/tasks.json were given by name; others must be task lists.
    task_files.retain(|t| !spec_files.contains(t));

    let mut out = Loaded::default();
    let mut consumed: BTreeSet<PathBuf> = BTreeSet::new();
    let mut parsed = Parsed::default();
    for t in &task_files {
        let bytes = std::fs::read(t).map_err(io(t))?;
        let Some(format) = read::detect(t, &bytes) else {
            let d = Diagnostic::new(
                crate::codes::UNREADABLE_TASK,
                Severity::Warning,
                lightsout_spec::Span::default(),
                "no task list format recognised (Spec Kit `T001`, Kiro/OpenSpec numbered checkboxes, task-master JSON); file skipped",
                "check the file, or pass the spec instead",
            )
            .with_path(t.clone());
            out.diagnostics.push(d);
            continue;
        };
        let dir = t.parent().unwrap_or(Path::new("."));
        let id = folder_name(dir);
        let (lists, diags) = read::read(format, &bytes, &id, Some(t));
        out.diagnostics.extend(diags);
        let pair = paired_specs(t, format, &spec_files);
        let mut specs = Vec::new();
        for s in &pair {
            specs.push(parsed.parse(s, &mut out.diagnostics)?);
            consumed.insert(s.clone());
        }
        let refs: Vec<&Spec> = specs.iter().collect();
        for list in lists {
            out.lists.push(list.with_specs(&refs));
        }
        out.specs.extend(specs);
    }
    for s in &spec_files {
        if consumed.contains(s) {
            continue;
        }
        let spec = parsed.parse(s, &mut out.diagnostics)?;
        out.lists.push(TaskList::from_spec(&spec));
        out.specs.push(spec);
    }
    Ok(out)
}

/// The task lists and specs under directory `p`.
fn add_dir(
    p: &Path,
    task_files: &mut BTreeSet<PathBuf>,
    spec_files: &mut BTreeSet<PathBuf>,
) -> Result<(), Error> {
    walk_task_lists(p, task_files)?;
    let found = lightsout_spec::discover(p).map_err(|source| Error::Spec {
        path: p.to_path_buf(),
        source,
    })?;
    spec_files.extend(found);
    // Spec folders under hidden folders (`.kiro/specs/x`) that discover skips.
    for t in task_files.clone() {
        if let Some(d) = t.parent() {
            for n in ["requirements.md", "spec.md"] {
                if d.join(n).is_file() {
                    spec_files.insert(d.join(n));
                }
            }
        }
    }
    Ok(())
}

/// File `p` named on its own: a task list (with the specs beside it) or a spec (with the
/// task list beside it).
fn add_file(
    p: &Path,
    task_files: &mut BTreeSet<PathBuf>,
    spec_files: &mut BTreeSet<PathBuf>,
) -> Result<(), Error> {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bytes = std::fs::read(p).map_err(io(p))?;
    if is_task_list_name(&name)
        || name.to_ascii_lowercase().ends_with(".json")
        || read::detect(p, &bytes)
            .is_some_and(|f| f != TaskFormat::Kiro || name.to_ascii_lowercase().contains("task"))
    {
        task_files.insert(p.to_path_buf());
        if let Some(d) = p.parent() {
            for n in ["requirements.md", "spec.md"] {
                if d.join(n).is_file() {
                    spec_files.insert(d.join(n));
                }
            }
            if is_openspec_change(d)
                && d.join("specs").is_dir()
                && let Ok(found) = lightsout_spec::discover(&d.join("specs"))
            {
                spec_files.extend(found);
            }
        }
    } else {
        spec_files.insert(p.to_path_buf());
        // A Kiro `requirements.md` or Spec Kit `spec.md` named alone still gets its
        // folder's breakdown.
        let lower = name.to_ascii_lowercase();
        if (lower == "requirements.md" || lower == "spec.md")
            && let Some(t) = p.parent().map(|d| d.join("tasks.md"))
            && t.is_file()
        {
            task_files.insert(t);
        }
    }
    Ok(())
}

/// Specs parsed so far, by path: a spec paired with two task lists is read once.
#[derive(Default)]
struct Parsed(std::collections::BTreeMap<PathBuf, Spec>);

impl Parsed {
    /// The spec at `p`, parsed on first use; its input-level errors go to `diags`.
    fn parse(&mut self, p: &Path, diags: &mut Vec<Diagnostic>) -> Result<Spec, Error> {
        if let Some(s) = self.0.get(p) {
            return Ok(s.clone());
        }
        let (spec, _text, d) = lightsout_spec::read(p, None).map_err(|source| Error::Spec {
            path: p.to_path_buf(),
            source,
        })?;
        // Only input-level errors (LS0xx: empty, binary, not UTF-8, too large); the rest is
        // `spec check`'s business.
        diags.extend(
            d.into_iter()
                .filter(|d| d.severity == Severity::Error && d.code.starts_with("LS0")),
        );
        self.0.insert(p.to_path_buf(), spec.clone());
        Ok(spec)
    }
}
