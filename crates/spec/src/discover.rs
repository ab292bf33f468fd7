//! Finding spec files on disk.

use crate::Error;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Files that sit beside specs but are not specs.
const NOT_SPECS: &[&str] = &[
    "readme.md",
    "changelog.md",
    "license.md",
    "source.md",
    "design.md",
    "tasks.md",
    "proposal.md",
    "plan.md",
    "agents.md",
    "claude.md",
    "contributing.md",
];

/// The spec files at `path`.
///
/// - A file is returned as itself, whatever its name (the caller named it).
/// - A directory is searched recursively, skipping hidden folders and `target`,
///   `node_modules`, `archive` (OpenSpec's applied changes, which `openspec validate` skips too;
///   name an archived change's folder to check it), `vendor`, `dist`, `build`. A markdown file
///   there is a spec when it is named `spec.md` or `requirements.md` (OpenSpec, Spec Kit, Kiro)
///   outside a `checklists/` folder (Spec Kit's quality checklists), ends in `.spec.md`,
///   `-spec.md` or `_spec.md` (NLSpecs such as `attractor-spec.md`), or opens with YAML front
///   matter with an `id:` (the Lightsout format) and is not a known companion file
///   (`README.md`, `design.md`, `tasks.md`, `proposal.md`, ...).
///
/// The result is sorted by path and has no duplicates, so output is deterministic.
///
/// # Errors
/// [`Error::NotFound`] when `path` does not exist; [`Error::Io`] when a directory cannot be
/// listed or a candidate file cannot be opened.
pub fn discover(path: &Path) -> Result<Vec<PathBuf>, Error> {
    let meta = std::fs::metadata(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound(path.to_path_buf())
        } else {
            Error::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    walk(path, &mut out)?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// Hidden folders and [`lightsout_stdx::walk::BUILD_DIRS`] (version control, build output,
/// dependencies, and OpenSpec's archive of applied changes) are never searched; names are
/// compared lowercased.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let skip = |name: &std::ffi::OsStr| {
        let name = name.to_string_lossy().to_lowercase();
        name.starts_with('.') || lightsout_stdx::walk::is_build_dir(&name)
    };
    for e in lightsout_stdx::walk::walk(dir, skip) {
        let e = e.map_err(|e| Error::Io {
            path: e.path().unwrap_or(dir).to_path_buf(),
            source: e.into(),
        })?;
        let name = e.file_name().to_string_lossy().to_lowercase();
        if !e.file_type().is_dir() && is_spec(e.path(), &name)? {
            out.push(e.into_path());
        }
    }
    Ok(())
}

fn is_spec(p: &Path, lower_name: &str) -> Result<bool, Error> {
    if !Path::new(lower_name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("md"))
    {
        return Ok(false);
    }
    // Spec Kit's `checklists/requirements.md` is a checklist of its feature, not a Kiro spec.
    let in_checklists = p
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d.eq_ignore_ascii_case("checklists"));
    if in_checklists {
        return Ok(false);
    }
    if lower_name == "spec.md"
        || lower_name == "requirements.md"
        || lower_name.ends_with(".spec.md")
        || lower_name.ends_with("-spec.md")
        || lower_name.ends_with("_spec.md")
    {
        return Ok(true);
    }
    if NOT_SPECS.contains(&lower_name) {
        return Ok(false);
    }
    // Lightsout specs open with front matter that has an `id:`: read the first 4 KiB only.
    let mut head = Vec::with_capacity(4096);
    let f = std::fs::File::open(p).map_err(|source| Error::Io {
        path: p.to_path_buf(),
        source,
    })?;
    f.take(4096)
        .read_to_end(&mut head)
        .map_err(|source| Error::Io {
            path: p.to_path_buf(),
            source,
        })?;
    let text = String::from_utf8_lossy(&head);
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return Ok(false);
    };
    Ok(rest
        .lines()
        .take_while(|l| l.trim_end() != "---")
        .any(|l| l.starts_with("id:")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_path_is_not_found() {
        let r = discover(Path::new("/definitely/not/here/spec.md"));
        assert!(matches!(r, Err(Error::NotFound(_))));
    }
}
