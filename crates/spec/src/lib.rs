//! This crate provides the spec stage of Lightsout: it reads a markdown spec in the Lightsout
//! format, or in the Spec Kit, OpenSpec or Kiro dialects, into a typed [`Spec`], and checks it
//! with span-carrying [`Diagnostic`]s.
//!
//! # Brief overview
//! - [`Spec`] and its parts ([`Requirement`], [`Scenario`], ...) are plain serde + schemars data.
//! - [`Diagnostic`], [`Span`] and [`Severity`] are shared with `lightsout-graph`.
//!
//! The parser is being built; see the crate README in `crates/README.md`.

#![deny(missing_docs)]

pub mod diagnostic;
pub mod model;

pub use diagnostic::{Diagnostic, Severity, Span};
pub use model::*;
