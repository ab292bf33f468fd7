//! Directory walks, with `walkdir`.

use std::ffi::OsStr;
use std::path::Path;

pub use walkdir::{DirEntry, Error};

/// Folders of build output, dependencies and `OpenSpec`'s archive of applied changes, which
/// the walks over a project's specs and task lists never enter.
pub const BUILD_DIRS: &[&str] = &[
    "target",
    "node_modules",
    "archive",
    "vendor",
    "dist",
    "build",
];

/// Whether `name` is one of [`BUILD_DIRS`] (exactly; callers that ignore case pass the
/// name lowercased).
pub fn is_build_dir(name: &str) -> bool {
    BUILD_DIRS.contains(&name)
}

/// The entries below `root` (not `root` itself), depth first, each directory's entries in
/// file-name order. A directory for which `skip_dir` returns true (given its file name) is
/// neither yielded nor entered. Symbolic links are yielded as links and not followed.
///
/// An entry that cannot be read is an `Err` (convert it with `std::io::Error::from`, its
/// path with [`Error::path`]); the walk goes on after it.
pub fn walk(
    root: &Path,
    mut skip_dir: impl FnMut(&OsStr) -> bool,
) -> impl Iterator<Item = Result<DirEntry, Error>> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(move |e| !(e.file_type().is_dir() && skip_dir(e.file_name())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_the_named_folders_and_sorts_by_name() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "b/x.md",
            "a/target/y.md",
            "a/z.md",
            "target/w.md",
            ".hidden/v.md",
            "c.md",
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let got: Vec<String> = walk(d.path(), |n| {
            n.to_str()
                .is_some_and(|n| n.starts_with('.') || is_build_dir(n))
        })
        .map(|e| {
            let e = e.unwrap();
            e.path()
                .strip_prefix(d.path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
        assert_eq!(got, vec!["a", "a/z.md", "b", "b/x.md", "c.md"]);
    }

    #[test]
    fn a_missing_root_is_an_error_with_its_path() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("missing");
        let errs: Vec<Error> = walk(&root, |_| false).filter_map(Result::err).collect();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path(), Some(root.as_path()));
        let io = std::io::Error::from(errs.into_iter().next().unwrap());
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }
}
