//! Integration tests of lightsout-twin: built-in twins driven over real loopback HTTP,
//! robustness of the server, and drift against a real third-party service (httpbin).

mod drift_httpbin;
mod github;
mod okta;
mod robustness;
mod slack;
mod support;
