//! Integration tests of lightsout-twin: built-in twins driven over real loopback HTTP,
//! robustness of the server, and drift against a real third-party service (httpbin).

// Tests compare exact fractions (1.0, 0.0) on purpose; httpbin's child process is waited for
// in `Drop` (the lint cannot see that); prose in test docs names tools without backticks.
#![allow(clippy::float_cmp, clippy::zombie_processes, clippy::doc_markdown)]

mod connections;
mod drift_httpbin;
mod github;
mod lifecycle;
mod okta;
mod robustness;
mod slack;
mod slow_clients;
mod support;
