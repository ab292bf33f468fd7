//! The crate's one error type.

use std::path::PathBuf;

/// Why `lightsout.toml` (or the holdout location it names) cannot be used. `lightsout-factory`
/// keeps it whole as its `Error::ConfigFile`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `lightsout.toml` is missing or invalid.
    #[error("{0}")]
    Config(String),
    /// The holdout directory lies inside the repository or a worktree.
    #[error(
        "the holdout directory {holdout} is inside {root}; agents could read it. Move it outside \
         the repository (a sibling folder) and point [holdout] path or LIGHTSOUT_HOLDOUT at it"
    )]
    HoldoutInRepo {
        /// The holdout directory, canonical.
        holdout: PathBuf,
        /// The repository or worktree containing it, canonical.
        root: PathBuf,
    },
}
