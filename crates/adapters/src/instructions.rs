//! The instruction layer: a task's standing context written into its worktree as
//! `AGENTS.md` and `CLAUDE.md` ([`lightsout_agent::INSTRUCTION_FILES`]) for the length of
//! one agent call, where Codex, Claude Code and (through `--read`) Aider take standing
//! instructions, and taken out again before the factory commits.
//!
//! A project's own file of that name is kept: the layer is appended to it under a marker,
//! and afterwards the file goes back to what the project had (or, if the agent edited it,
//! to the agent's version without the layer). A file the factory created is removed. A
//! path that is not a regular file (a symlink an earlier attempt committed, a directory) is
//! never written through: the layer skips it.

use crate::Error;
use std::path::{Path, PathBuf};

/// The line that opens the layer inside an instruction file.
pub const MARKER: &str =
    "<!-- lightsout: standing instructions for this agent call; removed before the commit -->";

/// One instruction file as the factory found and wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    path: PathBuf,
    /// The project's content before the call, `None` when the file did not exist.
    original: Option<String>,
    /// The layer block appended (marker included).
    block: String,
}

/// The instruction files written for one call; [`Layer::remove`] undoes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layer {
    written: Vec<Written>,
}

fn regular_or_missing(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => std::fs::read(path)
            .map(|b| Some(String::from_utf8_lossy(&b).into_owned()))
            .map_err(|e| Error::io("read", path, e)),
        Ok(_) => Err(Error::io(
            "refuse to write through",
            path,
            std::io::Error::other("not a regular file"),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("inspect", path, e)),
    }
}

impl Layer {
    /// Writes `text` (the task's [`render_instructions`]) into each instruction file at the
    /// root of `worktree`, atomically (temporary file and rename, so a symlink is replaced,
    /// never followed). Files that are not regular files are skipped. Nothing is written
    /// when `text` is empty.
    ///
    /// [`render_instructions`]: lightsout_agent::TaskContext::render_instructions
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be read or written.
    pub fn write(worktree: &Path, text: &str) -> Result<Self, Error> {
        let mut layer = Layer::default();
        if text.trim().is_empty() {
            return Ok(layer);
        }
        for name in lightsout_agent::INSTRUCTION_FILES {
            let path = worktree.join(name);
            let Ok(original) = regular_or_missing(&path) else {
                continue;
            };
            let block = match &original {
                Some(o) if !o.is_empty() => {
                    let sep = if o.ends_with('\n') { "\n" } else { "\n\n" };
                    format!("{sep}{MARKER}\n{text}")
                }
                _ => format!("{MARKER}\n{text}"),
            };
            let content = format!("{}{block}", original.as_deref().unwrap_or(""));
            crate::write_atomic(&path, content.as_bytes())?;
            layer.written.push(Written {
                path,
                original,
                block,
            });
        }
        Ok(layer)
    }

    /// The files written.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.written.iter().map(|w| w.path.as_path())
    }

    /// Takes the layer out: a file as the factory left it goes back to the project's
    /// content (or away, if the project had none); a file the agent edited keeps its edits
    /// without the layer block; a file the agent deleted stays deleted.
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be restored or removed.
    pub fn remove(self) -> Result<(), Error> {
        for w in self.written {
            let now = match std::fs::symlink_metadata(&w.path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("inspect", &w.path, e)),
                Ok(m) if !m.file_type().is_file() => {
                    // The agent put something else there; the factory's file is gone.
                    if w.original.is_none() && m.file_type().is_symlink() {
                        std::fs::remove_file(&w.path)
                            .map_err(|e| Error::io("remove", &w.path, e))?;
                    }
                    continue;
                }
                Ok(_) => String::from_utf8_lossy(
                    &std::fs::read(&w.path).map_err(|e| Error::io("read", &w.path, e))?,
                )
                .into_owned(),
            };
            let written = format!("{}{}", w.original.as_deref().unwrap_or(""), w.block);
            let restored = if now == written {
                w.original.clone()
            } else if let Some(at) = now.find(&w.block) {
                let rest = format!("{}{}", &now[..at], &now[at + w.block.len()..]);
                (w.original.is_some() || !rest.trim().is_empty()).then_some(rest)
            } else {
                continue;
            };
            match restored {
                Some(text) => crate::write_atomic(&w.path, text.as_bytes())?,
                None => {
                    std::fs::remove_file(&w.path).map_err(|e| Error::io("remove", &w.path, e))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_layer_is_removed_and_a_project_file_restored() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("CLAUDE.md"), "# Ours\nuse tabs\n").unwrap();
        let layer = Layer::write(d.path(), "## Constraints\n- CON-1\n").unwrap();
        let agents = std::fs::read_to_string(d.path().join("AGENTS.md")).unwrap();
        assert!(
            agents.starts_with(MARKER) && agents.contains("CON-1"),
            "{agents}"
        );
        let claude = std::fs::read_to_string(d.path().join("CLAUDE.md")).unwrap();
        assert!(claude.starts_with("# Ours\nuse tabs\n\n") && claude.contains("CON-1"));
        layer.remove().unwrap();
        assert!(!d.path().join("AGENTS.md").exists());
        assert_eq!(
            std::fs::read_to_string(d.path().join("CLAUDE.md")).unwrap(),
            "# Ours\nuse tabs\n"
        );
    }

    #[test]
    fn the_agents_own_edits_survive_without_the_layer() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("CLAUDE.md"), "# Ours\n").unwrap();
        let layer = Layer::write(d.path(), "## Constraints\n- CON-1\n").unwrap();
        let c = std::fs::read_to_string(d.path().join("CLAUDE.md")).unwrap();
        std::fs::write(
            d.path().join("CLAUDE.md"),
            c.replace("# Ours", "# Ours, edited"),
        )
        .unwrap();
        let a = std::fs::read_to_string(d.path().join("AGENTS.md")).unwrap();
        std::fs::write(
            d.path().join("AGENTS.md"),
            format!("{a}\nthe agent's note\n"),
        )
        .unwrap();
        layer.remove().unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("CLAUDE.md")).unwrap(),
            "# Ours, edited\n"
        );
        assert_eq!(
            std::fs::read_to_string(d.path().join("AGENTS.md")).unwrap(),
            "\nthe agent's note\n"
        );
    }

    #[test]
    fn a_symlink_is_never_written_through() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside.md");
        std::fs::write(&outside, "precious\n").unwrap();
        let wt = d.path().join("wt");
        std::fs::create_dir(&wt).unwrap();
        std::os::unix::fs::symlink(&outside, wt.join("AGENTS.md")).unwrap();
        let layer = Layer::write(&wt, "## Constraints\n- CON-1\n").unwrap();
        assert_eq!(layer.paths().count(), 1, "only CLAUDE.md");
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious\n");
        layer.remove().unwrap();
        assert!(wt.join("AGENTS.md").is_symlink());
        assert!(!wt.join("CLAUDE.md").exists());
    }
}
