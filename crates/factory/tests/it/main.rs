//! Integration tests of `lightsout-factory` on real temporary git repositories, with the
//! agent and stage test doubles.

mod fence;
mod fleet;
mod git_integrity;
mod run_loop;
mod tuning;

use lightsout_factory::testing::git;
