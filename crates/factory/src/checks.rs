//! Visible checks: the project's own build, test and lint commands from `lightsout.toml`,
//! run with `sh -c` in the worktree. Their output is the project's, not the holdout's, so a
//! failing check's tail goes back to the agent verbatim.

use crate::Error;
use crate::config::CheckConfig;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

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

/// Runs `checks` in order in `dir`; stops at the first failure.
pub(crate) async fn run_checks(
    checks: &[CheckConfig],
    dir: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Option<CheckFailure>, Error> {
    for c in checks {
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&c.run)
            .current_dir(dir)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .output();
        let out = match tokio::time::timeout(Duration::from_millis(c.timeout_ms), child).await {
            Err(_) => {
                return Ok(Some(CheckFailure {
                    feedback: format!(
                        "visible check `{}` (`{}`) timed out after {} ms",
                        c.name, c.run, c.timeout_ms
                    ),
                }));
            }
            Ok(r) => r.map_err(|e| Error::io("run check", dir, e))?,
        };
        if !out.status.success() {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            return Ok(Some(CheckFailure {
                feedback: format!(
                    "visible check `{}` (`{}`) failed with {}:\n{}",
                    c.name,
                    c.run,
                    out.status,
                    tail(text.trim())
                ),
            }));
        }
    }
    Ok(None)
}
