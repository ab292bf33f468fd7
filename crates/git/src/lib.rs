//! This crate provides the one way Lightsout runs `git` in a repository an agent has
//! touched: a [`std::process::Command`] that ignores every piece of configuration that runs
//! code or changes what git reads, in a clean environment that never carries the factory's
//! secrets.
//!
//! # Brief overview
//! - [`command`]: `git <args>` in a directory, with [`CONFIG`] on the command line, the
//!   environment cleared down to [`ENV`] plus `PATH`, and `--no-ext-diff --no-textconv`
//!   added to the commands that print diffs ([`DIFF_COMMANDS`]).
//! - [`drivers_listing`] and [`driver_overrides`]: the repository's filter and merge drivers
//!   (which cannot be switched off by one name, since an agent picks the driver's name),
//!   each blanked through `GIT_CONFIG_COUNT` ([`apply_overrides`]).
//! - [`command_without_drivers`]: both at once, for synchronous callers.
//! - With the `ops` feature: `ops::Git`, the factory's async runner over [`command`]
//!   (worktrees, commits, rebases, compare-and-swap ref updates, a count of the ref-moving
//!   commands it started), and `integrity`, the snapshot of the common git directory taken
//!   before an agent runs and checked and restored after it, with the `[store]` caps.
//! - [`remote`]: clone, fetch and compare-and-swap pushes against a fleet's shared remote, each
//!   allowing only the remote's own transport.
//!
//! `lightsout-factory` (worktrees, commits, rebases, the merge queue) and
//! `lightsout-memory` (the diff guards) both run git through this crate.
//!
//! # Why each setting (git 2.47, <https://git-scm.com/docs>)
//! Configuration is read from, in increasing precedence, the system file, the global file,
//! the repository's `config` (with its `include.path`/`includeIf` files), the worktree's
//! `config.worktree`, `GIT_CONFIG_COUNT` variables and `-c` options
//! (git-config(1), "FILES" and "ENVIRONMENT"; git(1), `-c`). An agent can write the
//! repository's files, so:
//! - system and global files are not read (`GIT_CONFIG_NOSYSTEM=1`, `GIT_CONFIG_GLOBAL=/dev/null`,
//!   git(1) "ENVIRONMENT"), nor the system attributes (`GIT_ATTR_NOSYSTEM=1`);
//! - every key that names a program is overridden with `-c`, which wins over the
//!   repository's files *and everything they include*: `core.fsmonitor` (a hook run on every
//!   index refresh, git-config(1) `core.fsmonitor`), `core.hooksPath=/dev/null` (no hook of
//!   githooks(5) runs: `pre-commit`, `post-commit`, `reference-transaction`, `post-checkout`,
//!   `post-rewrite`, `pre-auto-gc`, ...), `core.pager`, `core.editor`, `sequence.editor`,
//!   `core.askPass`, `credential.helper` (an empty value resets the helper list),
//!   `core.sshCommand`, `diff.external` (set to `false`, so a diff that still asked for it
//!   fails instead of running the agent's program), `gpg.program`, `gpg.ssh.program`,
//!   `gpg.x509.program`, and `protocol.allow=never` (no transport at all: no fetch of
//!   submodules or of a partial clone's missing objects, git-config(1) `protocol.allow`);
//! - keys that change what git reads or writes are pinned: `core.attributesFile=/dev/null`,
//!   `rerere.enabled=false` (recorded resolutions in `rr-cache` would be replayed during a
//!   rebase), `rebase.updateRefs=false` (a rebase would move other branches),
//!   `rebase.autoSquash`, `rebase.autoStash`, `submodule.recurse`, `gc.auto=0` and
//!   `maintenance.auto=false` (no background `gc`), signing and signature display off,
//!   colours off and the `a/`, `b/` prefixes kept (the output is parsed and scanned), and
//!   `safe.bareRepository=explicit` (a bare repository planted in a worktree is never
//!   discovered). `GIT_NO_REPLACE_OBJECTS=1` ignores `refs/replace/` (git(1)), which would
//!   otherwise make a commit read as different content;
//! - filter drivers (`filter.<driver>.clean`, `smudge`, `process`) and merge drivers
//!   (`merge.<driver>.driver`) run programs named in configuration for paths that
//!   gitattributes(5) assign to `<driver>`. The attribute alone runs nothing: a driver the
//!   configuration does not define is a no-op (gitattributes(5), "filter": "if the filter
//!   driver is not defined, the attribute has no effect"). Since the agent chooses the name,
//!   the driver cannot be switched off by name in advance: [`driver_overrides`] reads the
//!   names the configuration defines (`git config --list --name-only`, includes followed)
//!   and blanks each one (`clean`, `smudge` and `process` set empty, `required=false`, the
//!   merge driver set empty: git then uses its built-in merge). Attribute-only settings
//!   (`text`, `eol`, `working-tree-encoding`, `ident`) only convert bytes the agent wrote
//!   anyway. `GIT_ATTR_SOURCE` (git 2.40) was considered and not used: it replaces only the
//!   in-tree `.gitattributes`, `$GIT_DIR/info/attributes` is still read, and its empty tree
//!   is a different object in SHA-256 repositories;
//! - diff drivers (`diff.<driver>.command`, `diff.<driver>.textconv`) are switched off per
//!   command with `--no-ext-diff --no-textconv` (git-diff(1)) on every command of
//!   [`DIFF_COMMANDS`]; `git show <rev>:<path>` runs a textconv otherwise;
//! - the environment is cleared: `PATH` is kept, [`ENV`] is set, and the identity comes from
//!   `GIT_AUTHOR_*`/`GIT_COMMITTER_*`, which win over `user.*`, `author.*` and
//!   `committer.*` in the repository's configuration (git-commit-tree(1)).
//!
//! What stays open: the names of drivers are read just before each command, so an agent
//! writing the configuration at that very moment races the factory; `include.path` files
//! are followed (only for keys not overridden here); `core.worktree`, `extensions.*` and
//! `core.autocrlf` in the repository's configuration still apply. The factory closes these
//! by checking and restoring the common git directory after every attempt
//! (`lightsout-factory`'s `integrity` module), and the fence by mounting it read-only.
//!
//! # Example
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let out = lightsout_git::command(dir.path(), &["init", "-q", "-b", "main"]).output().unwrap();
//! assert!(out.status.success());
//! let out = lightsout_git::command(dir.path(), &["config", "--get", "core.fsmonitor"])
//!     .output()
//!     .unwrap();
//! assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "false");
//! ```

#![deny(missing_docs)]

#[cfg(feature = "ops")]
mod error;
#[cfg(feature = "ops")]
pub mod integrity;
#[cfg(feature = "ops")]
pub mod ops;
pub mod remote;

#[cfg(feature = "ops")]
pub use error::Error;

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};

/// The identity the factory commits with (author and committer name).
pub const COMMITTER_NAME: &str = "lightsout";
/// The e-mail address the factory commits with.
pub const COMMITTER_EMAIL: &str = "lightsout@localhost";

/// `-c key=value` pairs given to every command (they win over every configuration file and
/// what it includes). See the crate docs for the reason of each.
pub const CONFIG: &[(&str, &str)] = &[
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("core.pager", "cat"),
    ("core.editor", "true"),
    ("sequence.editor", "true"),
    ("core.askPass", ""),
    ("credential.helper", ""),
    ("core.sshCommand", "false"),
    ("diff.external", "false"),
    ("gpg.program", "false"),
    ("gpg.ssh.program", "false"),
    ("gpg.x509.program", "false"),
    ("protocol.allow", "never"),
    ("core.attributesFile", "/dev/null"),
    ("rerere.enabled", "false"),
    ("rebase.updateRefs", "false"),
    ("rebase.autoSquash", "false"),
    ("rebase.autoStash", "false"),
    ("submodule.recurse", "false"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("log.showSignature", "false"),
    ("merge.verifySignatures", "false"),
    ("color.ui", "never"),
    ("color.diff", "never"),
    ("color.status", "never"),
    ("diff.noprefix", "false"),
    ("diff.mnemonicPrefix", "false"),
    ("diff.relative", "false"),
    ("safe.bareRepository", "explicit"),
];

/// Environment variables set on every command, on top of `PATH` (everything else of the
/// caller's environment is dropped).
pub const ENV: &[(&str, &str)] = &[
    ("GIT_CONFIG_NOSYSTEM", "1"),
    ("GIT_CONFIG_GLOBAL", "/dev/null"),
    ("GIT_ATTR_NOSYSTEM", "1"),
    ("GIT_TERMINAL_PROMPT", "0"),
    ("GIT_NO_REPLACE_OBJECTS", "1"),
    ("GIT_PROTOCOL_FROM_USER", "0"),
    ("GIT_EDITOR", "true"),
    ("GIT_SEQUENCE_EDITOR", "true"),
    ("GIT_PAGER", "cat"),
    ("GIT_AUTHOR_NAME", COMMITTER_NAME),
    ("GIT_AUTHOR_EMAIL", COMMITTER_EMAIL),
    ("GIT_COMMITTER_NAME", COMMITTER_NAME),
    ("GIT_COMMITTER_EMAIL", COMMITTER_EMAIL),
    ("LC_ALL", "C"),
];

/// Subcommands that print diffs: each gets `--no-ext-diff --no-textconv` right after its
/// name, so no `diff.external`, `diff.<driver>.command` or `diff.<driver>.textconv` runs.
pub const DIFF_COMMANDS: &[&str] = &["diff", "show", "log"];

/// `git <args>` run in `dir`, hardened as the crate docs describe, with stdin closed.
///
/// Filter and merge drivers are not blanked here (that needs the repository's
/// configuration): use [`command_without_drivers`], or [`drivers_listing`] and
/// [`apply_overrides`].
pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("git");
    for (k, v) in CONFIG {
        c.arg("-c").arg(format!("{k}={v}"));
    }
    c.args(with_diff_flags(args))
        .current_dir(dir)
        .env_clear()
        .envs(ENV.iter().copied())
        .stdin(Stdio::null());
    if let Some(path) = std::env::var_os("PATH") {
        c.env("PATH", path);
    }
    c
}

fn with_diff_flags(args: &[&str]) -> Vec<OsString> {
    let mut out: Vec<OsString> = args.iter().map(OsString::from).collect();
    if let Some(first) = args.first()
        && DIFF_COMMANDS.contains(first)
    {
        out.insert(1, "--no-textconv".into());
        out.insert(1, "--no-ext-diff".into());
    }
    out
}

/// The command listing the configuration's key names in `dir` (NUL-separated, includes
/// followed), whose stdout [`driver_overrides`] reads.
pub fn drivers_listing(dir: &Path) -> Command {
    command(dir, &["config", "--list", "--name-only", "-z"])
}

/// Overrides blanking every filter and merge driver named in `listing` (the stdout of
/// [`drivers_listing`]): for `filter.<d>.*`, `clean`, `smudge` and `process` empty and
/// `required=false`; for `merge.<d>.driver`, an empty driver (git's built-in merge is used).
/// Duplicates are removed; the order follows the listing.
pub fn driver_overrides(listing: &[u8]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |k: String, v: &str| {
        if !out.iter().any(|(x, _)| *x == k) {
            out.push((k, v.to_owned()));
        }
    };
    for name in listing.split(|b| *b == 0 || *b == b'\n') {
        let name = String::from_utf8_lossy(name);
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("filter.") {
            // `filter.<driver>.<key>`: the driver name may itself hold dots.
            if let Some(dot) = name.rfind('.').filter(|d| *d > "filter.".len()) {
                let driver = &name["filter.".len()..dot];
                for key in ["clean", "smudge", "process"] {
                    push(format!("filter.{driver}.{key}"), "");
                }
                push(format!("filter.{driver}.required"), "false");
            }
        } else if lower.starts_with("merge.")
            && lower.ends_with(".driver")
            && name.len() > "merge..driver".len()
        {
            push(name.into_owned(), "");
        }
    }
    out
}

/// Adds `overrides` to `cmd` through `GIT_CONFIG_COUNT`, `GIT_CONFIG_KEY_<n>` and
/// `GIT_CONFIG_VALUE_<n>` (git-config(1) "ENVIRONMENT"): they win over every configuration
/// file, and a driver name holding `=` or spaces needs no quoting.
pub fn apply_overrides(cmd: &mut Command, overrides: &[(String, String)]) {
    cmd.env("GIT_CONFIG_COUNT", overrides.len().to_string());
    for (i, (k, v)) in overrides.iter().enumerate() {
        cmd.env(format!("GIT_CONFIG_KEY_{i}"), k);
        cmd.env(format!("GIT_CONFIG_VALUE_{i}"), v);
    }
}

/// [`command`] with every filter and merge driver of `dir`'s configuration blanked
/// (one extra `git config --list` run first).
///
/// # Errors
/// When git cannot be started, or cannot read the configuration (a broken config file):
/// the caller must not run the command then.
pub fn command_without_drivers(dir: &Path, args: &[&str]) -> io::Result<Command> {
    let listing = drivers_listing(dir).output()?;
    if !listing.status.success() {
        return Err(io::Error::other(format!(
            "git cannot read the configuration in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&listing.stderr).trim()
        )));
    }
    let mut c = command(dir, args);
    apply_overrides(&mut c, &driver_overrides(&listing.stdout));
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::PathBuf;

    fn run(c: &mut Command) -> String {
        let o = c.output().expect("git runs");
        assert!(
            o.status.success(),
            "{c:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }

    /// A repository whose configuration points every code-running key at a script that
    /// leaves a marker file and the environment it was given.
    fn poisoned() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let repo = t.path().join("repo");
        fs::create_dir(&repo).unwrap();
        run(&mut command(&repo, &["init", "-q", "-b", "main"]));
        fs::write(repo.join("a.txt"), "one\n").unwrap();
        run(&mut command(&repo, &["add", "-A"]));
        run(&mut command(&repo, &["commit", "-q", "-m", "one"]));
        let marker = t.path().join("marker");
        let script = t.path().join("evil.sh");
        fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"ran $0 $*\" >> '{m}'\nenv >> '{m}'\ncat\n",
                m = marker.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let hooks = t.path().join("hooks");
        fs::create_dir(&hooks).unwrap();
        for h in [
            "pre-commit",
            "post-commit",
            "reference-transaction",
            "post-checkout",
        ] {
            fs::copy(&script, hooks.join(h)).unwrap();
        }
        fs::copy(&script, repo.join(".git/hooks/post-commit")).unwrap();
        let s = script.display();
        let included = t.path().join("included.cfg");
        fs::write(
            &included,
            format!("[core]\n\tpager = {s}\n[filter \"inc\"]\n\tclean = {s}\n"),
        )
        .unwrap();
        let mut cfg = fs::read_to_string(repo.join(".git/config")).unwrap();
        write!(
            cfg,
            "[core]\n\tfsmonitor = {s}\n\thooksPath = {h}\n\tsshCommand = {s}\n\
             [diff]\n\texternal = {s}\n[diff \"t\"]\n\ttextconv = {s}\n\
             [filter \"x.y=z\"]\n\tclean = {s}\n\tsmudge = {s}\n\trequired = true\n\
             [merge \"m\"]\n\tdriver = {s} %O %A %B\n\
             [include]\n\tpath = {i}\n",
            h = hooks.display(),
            i = included.display()
        )
        .unwrap();
        fs::write(repo.join(".git/config"), cfg).unwrap();
        fs::write(
            repo.join(".gitattributes"),
            "*.txt filter=x.y=z diff=t merge=m\n*.md filter=inc\n",
        )
        .unwrap();
        fs::write(repo.join(".git/info/attributes"), "* filter=x.y=z\n").unwrap();
        (t, repo, marker)
    }

    #[test]
    fn a_poisoned_repository_runs_nothing_of_the_agents() {
        let (_t, repo, marker) = poisoned();
        let g = |args: &[&str]| run(&mut command_without_drivers(&repo, args).unwrap());
        fs::write(repo.join("a.txt"), "two\n").unwrap();
        fs::write(repo.join("b.md"), "bee\n").unwrap();
        g(&["add", "-A"]);
        g(&["status", "--porcelain"]);
        g(&["commit", "-q", "-m", "two"]);
        let diff = g(&["diff", "HEAD~1", "HEAD"]);
        assert!(diff.contains("+two"), "{diff}");
        g(&["show", "HEAD:a.txt"]);
        g(&["log", "-p", "-1"]);
        g(&["checkout", "-q", "-b", "side", "HEAD~1"]);
        fs::write(repo.join("a.txt"), "side\n").unwrap();
        g(&["commit", "-q", "-am", "side"]);
        // A conflicting rebase: the merge driver would resolve it; git's own merge stops.
        let o = command_without_drivers(&repo, &["rebase", "main"])
            .unwrap()
            .output()
            .unwrap();
        assert!(!o.status.success());
        g(&["rebase", "--abort"]);
        g(&["reset", "-q", "--hard", "main"]);
        g(&["update-ref", "refs/heads/other", "HEAD"]);
        assert!(
            !marker.exists(),
            "the agent's program ran: {}",
            fs::read_to_string(&marker).unwrap_or_default()
        );
        // The committed blob is what the worktree held (no clean filter rewrote it).
        assert_eq!(g(&["show", "main:a.txt"]), "two");
        // Without the hardening the same repository does run it: the test can fail.
        fs::write(repo.join("a.txt"), "three\n").unwrap();
        let o = Command::new("git")
            .args(["add", "-A"])
            .current_dir(&repo)
            .output()
            .unwrap();
        let _ = o;
        assert!(marker.exists());
    }

    #[test]
    fn the_factorys_environment_never_reaches_git() {
        let t = tempfile::tempdir().unwrap();
        let out = command(t.path(), &["var", "GIT_COMMITTER_IDENT"])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("lightsout <lightsout@localhost>")
        );
        // A shell alias given by us on the command line prints what git's children see.
        let o = command(t.path(), &["-c", "alias.e=!env", "e"])
            .output()
            .unwrap();
        let env = String::from_utf8_lossy(&o.stdout);
        assert!(env.contains("GIT_CONFIG_NOSYSTEM=1"), "{env}");
        for line in env.lines() {
            let name = line.split('=').next().unwrap_or_default();
            assert!(
                name == "PATH"
                    || name.starts_with("GIT_")
                    || ENV.iter().any(|(k, _)| *k == name)
                    || ["PWD", "OLDPWD", "SHLVL", "_"].contains(&name),
                "{name} reached git's children"
            );
        }
    }

    #[test]
    fn driver_names_with_dots_and_equals_are_blanked() {
        let o = driver_overrides(
            b"core.bare\0filter.a.b.clean\0filter.a.b.smudge\0merge.m.driver\0merge.m.name\0diff.t.textconv\0",
        );
        assert_eq!(
            o,
            [
                ("filter.a.b.clean", ""),
                ("filter.a.b.smudge", ""),
                ("filter.a.b.process", ""),
                ("filter.a.b.required", "false"),
                ("merge.m.driver", ""),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn diff_commands_get_no_external_programs() {
        assert_eq!(
            with_diff_flags(&["show", "HEAD:a"]),
            ["show", "--no-ext-diff", "--no-textconv", "HEAD:a"].map(OsString::from)
        );
        assert_eq!(
            with_diff_flags(&["add", "-A"]),
            ["add", "-A"].map(OsString::from)
        );
    }
}
