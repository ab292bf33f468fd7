//! Visible checks: the project's own build, test and lint commands from `lightsout.toml`,
//! run with `sh -c` in the worktree. Their output is the project's, not the holdout's, so a
//! failing check's tail goes back to the agent verbatim.
//!
//! The commands run the tests the agent wrote, so they are agent-written code: with a
//! [`Fence`] they run in the same sandbox as the agent (the worktree writable, the rest
//! read-only, the holdout absent, no capabilities, the seccomp filter, dying with the
//! factory) and the fence's violations come back in [`Checked::report`].

use crate::Error;
use crate::config::CheckConfig;
use lightsout_fence::policy::{Fence, FenceReport, Violation};
use std::collections::BTreeMap;
use std::path::Path;

/// The tail of the output shown to the agent, in bytes.
const TAIL_BYTES: usize = 4000;

/// A failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckFailure {
    pub(crate) feedback: String,
}

fn tail(s: &str) -> &str {
    if s.len() <= TAIL_BYTES {
        return s;
    }
    let mut at = s.len() - TAIL_BYTES;
    while !s.is_char_boundary(at) {
        at += 1;
    }
    &s[at..]
}

/// What [`run_checks`] found.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// The first failing check, if any.
    pub(crate) failure: Option<CheckFailure>,
    /// The fence's policy violations over all checks run (writes refused or seen outside
    /// the worktree, a damaged `.git`): each is a `policy_hit`. Limits (time, output) are
    /// check failures, not policy hits, and are not listed here.
    pub(crate) report: FenceReport,
}

/// Runs `checks` in order in `dir`; stops at the first failure. With `fence`, each check runs
/// behind it ([`Fence::run`]: its sandbox when configured, the check's `timeout_ms` as the
/// wall limit, the fence's output cap); the environment is `env` either way.
pub(crate) async fn run_checks(
    checks: &[CheckConfig],
    dir: &Path,
    env: &BTreeMap<String, String>,
    fence: Option<&Fence>,
) -> Result<Checked, Error> {
    let mut checked = Checked::default();
    let fallback;
    let fence = if let Some(f) = fence {
        f
    } else {
        fallback = Fence::new(lightsout_fence::policy::FenceConfig {
            private_pids: false,
            network: lightsout_fence::policy::NetworkMode::Inherit,
            readonly_outside: false,
            ..lightsout_fence::policy::FenceConfig::default()
        })?;
        &fallback
    };
    for c in checks {
        let f = fence
            .clone()
            .with_limits(c.timeout_ms, fence.config().output_bytes);
        let mut cmd = match f.sandbox() {
            Some(sandbox) => {
                let mut c = sandbox.command(&f.view(dir)?);
                c.arg("sh");
                c
            }
            // Without the sandbox: through the entry, which waits for the ledger's record.
            None => f.unsandboxed("sh".as_ref()),
        };
        cmd.arg("-c")
            .arg(&c.run)
            .current_dir(dir)
            .env_clear()
            .envs(env);
        let dir_owned = dir.to_path_buf();
        let out = tokio::task::spawn_blocking(move || f.run(cmd, None, &dir_owned))
            .await
            .map_err(|e| Error::io("run check", dir, std::io::Error::other(e.to_string())))??;
        let mut limit = None;
        for v in out.report.violations {
            match v {
                Violation::TimedOut { .. } | Violation::OutputCapped { .. } => limit = Some(v),
                other => checked.report.violations.push(other),
            }
        }
        checked.report.outside_writes_total += out.report.outside_writes_total;
        let success = out.exit.is_some_and(|e| e.success());
        if let Some(v) = limit {
            checked.failure = Some(CheckFailure {
                feedback: match v {
                    Violation::TimedOut { .. } => format!(
                        "visible check `{}` (`{}`) timed out after {} ms",
                        c.name, c.run, c.timeout_ms
                    ),
                    _ => format!(
                        "visible check `{}` (`{}`) printed more than {} bytes and was stopped",
                        c.name,
                        c.run,
                        fence.config().output_bytes
                    ),
                },
            });
            return Ok(checked);
        }
        if !success {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            let status = out.exit.map_or_else(
                || "no exit status".to_owned(),
                |e| match (e.code, e.signal) {
                    (Some(code), _) => format!("exit status: {code}"),
                    (None, Some(sig)) => format!("signal: {sig}"),
                    (None, None) => "no exit status".to_owned(),
                },
            );
            checked.failure = Some(CheckFailure {
                feedback: format!(
                    "visible check `{}` (`{}`) failed with {status}:\n{}",
                    c.name,
                    c.run,
                    tail(text.trim())
                ),
            });
            return Ok(checked);
        }
    }
    Ok(checked)
}
