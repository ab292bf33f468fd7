//! Integration tests of `lightsout-factory` on real temporary git repositories, with the
//! agent and stage test doubles.

mod run_loop;
