//! Files.

use std::fs::File;
use std::io::{self, Write as _};
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file in the same directory (created
/// with its parents when missing), written, `fsync`ed, renamed over `path` (POSIX
/// `rename(2)` is atomic), then the directory `fsync`ed so the rename itself survives a
/// crash. A reader or a `kill -9` at any point sees the old content or the new one, never a
/// mix; on an error the old file is left as it was and the temporary file is removed.
///
/// The new file gets the mode a plain `File::create` would (`0666` less the umask), not
/// the old file's. Model: uv's `uv_fs::write_atomic`.
///
/// # Errors
/// The first I/O error: the directory cannot be created or written, the disk is full, or
/// `path` names a directory.
pub fn write_atomic(path: &Path, bytes: impl AsRef<[u8]>) -> io::Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes.as_ref()))
}

/// [`write_atomic`] with the content written by `write` into the temporary file.
fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        // tempfile creates 0600; a plain `File::create` gives 0666 less the umask.
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    // On any error below the temporary file is dropped, which removes it.
    let mut tmp = builder.tempfile_in(dir)?;
    write(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // Make the rename itself durable; a directory that cannot be opened is not an error
    // (the content is written, only its durability across a crash is weaker).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_replaces_and_leaves_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/dir/state.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, "two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(names(&d.path().join("sub/dir")), vec!["state.json"]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.json");
        write_atomic(&p, b"old").unwrap();
        let err = write_atomic_with(&p, |f| {
            f.write_all(b"half of the ne")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(names(d.path()), vec!["state.json"]);
    }

    #[test]
    fn a_directory_in_the_way_is_an_error_and_stays() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("taken");
        std::fs::create_dir_all(p.join("inner")).unwrap();
        assert!(write_atomic(&p, b"x").is_err());
        assert!(p.join("inner").is_dir());
        assert_eq!(names(d.path()), vec!["taken"]);
    }

    #[cfg(unix)]
    #[test]
    fn the_mode_is_that_of_a_plain_create() {
        use std::os::unix::fs::PermissionsExt as _;
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        let atomic = d.path().join("atomic");
        write_atomic(&atomic, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&atomic), mode(&plain));
    }
}
