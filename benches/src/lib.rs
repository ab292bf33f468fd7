//! Shared helpers for the Lightsout criterion benches (see `benches/*.rs`).
