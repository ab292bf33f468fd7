//! End-to-end tests of the real `lightsout` binary, one module per stage.

mod spec;
