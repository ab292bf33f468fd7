//! This crate provides digital twins of third-party HTTP services: behavioural clones that a
//! dark factory's holdout scenarios run against instead of the real Slack, GitHub or Okta.
//!
//! # Brief overview
//!
//! - [`TwinDef`] is a twin definition (YAML or TOML, see [`parse_definition`]): routes with
//!   matchers, response templates ([`template`]), stateful collections with CRUD actions,
//!   id generation, idempotency keys, `ETags`, and cursor/offset/`Link` pagination; auth
//!   emulation ([`auth`]: static bearer tokens, `OAuth2` client credentials and OIDC with RS256
//!   JWTs and a JWKS); rate limits with the vendor's headers; latency distributions.
//! - [`Twin`] runs a definition: a `tower::Service` (in process, no socket) with a virtual
//!   clock, one seed for all randomness, snapshot/fork/restore, a request journal and the
//!   `/__twin/` control API. Custom behaviour is Rust code behind the one-method
//!   [`Behaviour`] trait. Anything not modelled answers `501` with `X-Twin-Unsupported`.
//! - [`TwinServer`] serves twins over HTTP/1.1 (hyper) on a port, several per process,
//!   and injects `WireMock`'s four connection faults. It holds slow clients
//!   ([`ServerOptions`]): a request head must arrive within 5 s, a kept-alive connection may
//!   wait 30 s between requests, and at most a set number of connections may be half-open
//!   (head not yet complete), the oldest closed first, so a slow-loris client cannot keep a
//!   normal request from being answered. The journal is capped in entries and in bytes
//!   ([`TwinOptions::journal_max_bytes`], [`JournalStats`]).
//! - [`builtin`] holds the built-in Slack, GitHub and Okta-style OIDC twins, each route
//!   naming its source.
//! - [`record`] proxies to the real service and stores cassettes; [`openapi`] imports an
//!   `OpenAPI` 3 document as a skeleton twin; [`drift`] replays probes against the real
//!   service and the twin, scores fidelity and moves the twin fresh → suspect → drifted →
//!   retired in its [`drift::Manifest`]. Built-in twins follow the same lifecycle from
//!   `STATE_DIR/NAME/manifest.json` ([`load`]); a loaded twin answers it at
//!   `GET /__twin/lifecycle`, and a retired one is refused unless forced.
//!
//! Diagnostics use [`lightsout_spec::Diagnostic`], shared with the other stages.
//!
//! # Example
//!
//! ```
//! use lightsout_twin::{TwinOptions, TwinRequest, builtin};
//!
//! let slack = builtin::load("slack", TwinOptions::default()).unwrap();
//! let mut req = TwinRequest::new(http::Method::POST, "/api/chat.postMessage");
//! req.headers.insert("authorization", "Bearer xoxb-twin-bot".parse().unwrap());
//! req.headers.insert("content-type", "application/json".parse().unwrap());
//! req.body = r#"{"channel":"C0GENERAL1","text":"hello"}"#.into();
//! let resp = slack.handle(&req);
//! assert_eq!(resp.status, 200);
//! assert_eq!(resp.body_json()["ok"], true);
//!
//! let unknown = slack.handle(&TwinRequest::new(http::Method::POST, "/api/files.upload"));
//! assert_eq!(unknown.status, 501);
//! assert!(unknown.header("x-twin-unsupported").is_some());
//! ```

#![deny(missing_docs)]

pub mod auth;
pub mod builtin;
mod conns;
pub mod def;
pub mod drift;
mod engine;
pub mod matcher;
pub mod openapi;
pub mod record;
pub mod schema;
mod server;
pub mod state;
pub mod tape;
pub mod template;

pub use conns::{
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, FD_RESERVE, MIN_HALF_OPEN_AGE, ServerOptions,
};
pub use def::{Format, TwinDef, parse_definition};
pub use engine::{
    Behaviour, ConnectionFault, Context, DEFAULT_CLOCK_START_MS, FaultRule, JOURNAL_CAPACITY,
    JOURNAL_MAX_BYTES, JournalEntry, JournalStats, Principal, Twin, TwinOptions, TwinRequest,
    TwinResponse, decode_cursor, encode_cursor, sample_latency,
};
pub use server::{ServerHandle, TwinServer, Universe, to_http};
pub use tape::{TAPE_MAX_EXCHANGES, TapeDivergence, TapeReport};

use std::path::{Path, PathBuf};

/// Errors of the twin crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or address involved.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A JSON file did not parse.
    #[error("{0}: {1}")]
    Json(String, #[source] serde_json::Error),
    /// A definition is unusable (the message says why).
    #[error("invalid twin definition: {0}")]
    Definition(String),
    /// An RSA key could not be loaded or used.
    #[error("signing key: {0}")]
    Key(String),
    /// The real service could not be reached.
    #[error("upstream: {0}")]
    Upstream(String),
    /// No built-in twin and no twin directory has this name.
    #[error("no twin named `{0}`; run `lightsout twin list`, or pass a directory with twin.yaml")]
    UnknownTwin(String),
    /// The twin's manifest says it is retired; the message is its
    /// [`drift::Lifecycle::describe`] (`twin slack retired since DATE: REASON`).
    #[error(
        "{0}; it no longer imitates the real service: re-record it and mark it fresh \
         (`lightsout twin mark NAME fresh --reason ...`), or pass --force"
    )]
    Retired(String),
}

impl Error {
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

/// Files of a twin directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwinDir {
    /// The directory.
    pub dir: PathBuf,
    /// `twin.yaml`, `twin.yml` or `twin.toml`.
    pub definition: PathBuf,
    /// `manifest.json` (may not exist yet).
    pub manifest: PathBuf,
    /// `cassette.json` (may not exist).
    pub cassette: PathBuf,
}

impl TwinDir {
    /// Locates the files of the twin in `dir`.
    ///
    /// # Errors
    /// [`Error::UnknownTwin`] when `dir` has no definition file.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let definition = ["twin.yaml", "twin.yml", "twin.toml"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| Error::UnknownTwin(dir.display().to_string()))?;
        Ok(TwinDir {
            dir: dir.to_path_buf(),
            definition,
            manifest: dir.join("manifest.json"),
            cassette: dir.join("cassette.json"),
        })
    }

    /// Loads the twin with its lifecycle from `manifest.json` ([`Twin::lifecycle`]). Refuses
    /// a retired twin unless `force`.
    ///
    /// # Errors
    /// [`Error::Definition`] with the rendered diagnostics when the definition has errors,
    /// [`Error::Retired`], and I/O errors.
    pub fn load(&self, opts: TwinOptions, force: bool) -> Result<Twin, Error> {
        let text = std::fs::read_to_string(&self.definition)
            .map_err(|e| Error::io(&self.definition, e))?;
        let (def, diags) = parse_definition(&text, Format::from_path(&self.definition));
        let errors: Vec<String> = diags
            .iter()
            .filter(|d| d.severity == lightsout_spec::Severity::Error)
            .map(|d| {
                format!(
                    "{}:{}:{}: {} [{}]",
                    self.definition.display(),
                    d.span.line,
                    d.span.column,
                    d.message,
                    d.code
                )
            })
            .collect();
        let def = match def {
            Some(d) if errors.is_empty() => d,
            _ => return Err(Error::Definition(errors.join("; "))),
        };
        let lifecycle = lifecycle_of(&self.manifest, &def.name)?;
        if lifecycle.status == drift::TwinStatus::Retired && !force {
            return Err(Error::Retired(lifecycle.describe()));
        }
        let twin = match &def.replay {
            Some(file) => {
                let cassette = record::Cassette::load(&self.dir.join(file))?;
                Twin::with_replay(def, cassette, opts)
            }
            None => Twin::new(def, opts),
        }?;
        twin.set_lifecycle(lifecycle);
        Ok(twin)
    }
}

/// The lifecycle in the manifest at `path` ([`drift::Lifecycle::unchecked`] when it does not
/// exist).
fn lifecycle_of(path: &Path, name: &str) -> Result<drift::Lifecycle, Error> {
    Ok(if path.is_file() {
        drift::Manifest::load_or_new(path, name)?.lifecycle(Some(path))
    } else {
        drift::Lifecycle::unchecked(name)
    })
}

/// Loads a twin by built-in name or directory path (see [`TwinDir`]), with its lifecycle
/// ([`Twin::lifecycle`], served at `GET /__twin/lifecycle`): a twin directory's from
/// `DIR/manifest.json`, a built-in twin's from [`drift::manifest_path`]`(state_dir, NAME)`
/// (`lightsout` passes the project's `.lightsout/twins`). Built-in and user twins follow the
/// same lifecycle: a retired one is refused unless `force`.
///
/// # Errors
/// As [`TwinDir::load`] and [`builtin::load`]; [`Error::Retired`].
pub fn load(
    name_or_dir: &str,
    opts: TwinOptions,
    state_dir: &Path,
    force: bool,
) -> Result<Twin, Error> {
    let p = Path::new(name_or_dir);
    if p.is_dir() {
        return TwinDir::open(p)?.load(opts, force);
    }
    let def = builtin::definition(name_or_dir)?;
    let lifecycle = lifecycle_of(&drift::manifest_path(state_dir, &def.name), &def.name)?;
    if lifecycle.status == drift::TwinStatus::Retired && !force {
        return Err(Error::Retired(lifecycle.describe()));
    }
    let twin = builtin::load(name_or_dir, opts)?;
    twin.set_lifecycle(lifecycle);
    Ok(twin)
}
