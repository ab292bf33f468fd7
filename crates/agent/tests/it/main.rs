//! Integration tests of `lightsout-agent`: real processes and real git.

mod command;
mod parse;
mod replay;

use lightsout_agent::Workspace;
use std::path::{Path, PathBuf};

/// A workspace on `dir` with `PATH` allowed and an artifacts dir beside it.
pub(crate) fn workspace(dir: &Path) -> Workspace {
    let root = dir.join("wt");
    std::fs::create_dir_all(&root).unwrap();
    let mut ws = Workspace::new(&root, dir.join("artifacts"));
    ws.env
        .insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
    ws
}

pub(crate) fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}
