//! This crate provides the small helpers that several Lightsout crates need and that belong
//! to none of them, in the manner of rust-analyzer's `stdx` and uv's `uv-fs`: one helper,
//! one place.
//!
//! # Brief overview
//! - [`write_atomic`]: a file written through a temporary file, `fsync` and `rename`, so a
//!   reader or a crash sees the old content or the new, never a mix.
//! - [`lock`]: a `Mutex` guard that ignores poisoning, for data that every critical section
//!   leaves consistent.
//! - [`process::run`] (feature `process`): a child in its own process group with a wall
//!   limit, an output cap, `SIGKILL` to the whole group and a bounded join of its readers.
//! - [`walk`]: directory walks (`walkdir`) sorted by name with a skip policy, and the shared
//!   list of build and dependency folders [`walk::BUILD_DIRS`].
//! - [`tshirt_hours`]: the T-shirt size table of task estimates.
//! - `testing` (feature `testing`): `testing::git`, git run as a test author.
//!
//! It depends on `tempfile` and `walkdir` only (tokio and nix with `process`), and knows
//! nothing of specs, agents, holdouts or git beyond the test helper.
//!
//! # Example
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("state.json");
//! lightsout_stdx::write_atomic(&path, b"{}\n").unwrap();
//! assert_eq!(std::fs::read(&path).unwrap(), b"{}\n");
//! assert_eq!(lightsout_stdx::tshirt_hours("xl"), Some(16.0));
//! ```

#![deny(missing_docs)]

mod estimate;
mod fs;
#[cfg(feature = "process")]
pub mod process;
mod store;
mod sync;
#[cfg(feature = "testing")]
pub mod testing;
pub mod walk;

pub use estimate::tshirt_hours;
pub use fs::write_atomic;
pub use store::{POSTGRES_SCHEMES, is_postgres_url};
pub use sync::lock;
