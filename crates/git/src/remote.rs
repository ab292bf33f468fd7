//! Git against a remote: clone, fetch and compare-and-swap pushes, for a fleet of workers that
//! share one repository (issue 21).
//!
//! Every command goes through [`crate::command`], so it carries the same hardening as the
//! factory's local git (no hooks, no helpers, no pagers, a clean environment). The one
//! setting relaxed is the transport: [`crate::CONFIG`] sets `protocol.allow=never`, and each
//! command here allows exactly the protocol of the remote it talks to
//! (`protocol.<name>.allow=always`, which wins over `protocol.allow` for that protocol,
//! git-config(1) `protocol.<name>.allow`): `file` for a path or a `file://` URL, `https` for
//! an `https://` URL. Other schemes are refused: `ssh` would need `core.sshCommand`, which the
//! hardening pins to `false`, and plain `http` sends everything in the clear.
//!
//! A clone never shares object files with the remote (`--no-hardlinks`): a worker's clone is
//! where agents work, and a hard-linked object is the same inode as the remote's.
//!
//! Publishing main is a compare-and-swap ([`push_with_lease`]): `git push
//! --force-with-lease=<ref>:<expected>` updates the remote's branch only if it still points at
//! `expected` (git-push(1) `--force-with-lease`); otherwise the push is
//! [`Pushed::Refused`] and the caller redoes its merge on the new main.
//!
//! What stays open: credentials for an `https` remote (the hardening empties
//! `credential.helper`; a token in the URL works but is visible in the process list).
//!
//! # Example
//! ```
//! use lightsout_git::{command, remote};
//! let dir = tempfile::tempdir().unwrap();
//! let bare = dir.path().join("remote.git");
//! let git = |d: &std::path::Path, args: &[&str]| {
//!     assert!(command(d, args).status().unwrap().success());
//! };
//! git(dir.path(), &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()]);
//! let seed = dir.path().join("seed");
//! std::fs::create_dir(&seed).unwrap();
//! git(&seed, &["init", "-q", "-b", "main"]);
//! git(&seed, &["commit", "-q", "--allow-empty", "-m", "one"]);
//! let one = remote::rev(&seed, "HEAD").unwrap();
//! assert_eq!(remote::push_ref(&seed, bare.to_str().unwrap(), &one, "refs/heads/main", false).unwrap(),
//!            remote::Pushed::Accepted);
//! let clone = dir.path().join("clone");
//! remote::clone(bare.to_str().unwrap(), &clone).unwrap();
//! remote::fetch_main(&clone, "main").unwrap();
//! assert_eq!(remote::rev(&clone, "refs/remotes/origin/main").unwrap(), one);
//! ```

use std::io;
use std::path::Path;
use std::process::Output;

/// The remote name a worker's clone uses for its remote.
pub const ORIGIN: &str = "origin";

/// What the remote did with a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The remote's ref now points at the pushed commit.
    Accepted,
    /// The remote refused: its ref is not where the lease expected it (another worker moved
    /// main), or the update is not a fast-forward. The reason is git's.
    Refused(String),
}

/// The `-c protocol.<name>.allow=always` pair for `url`, or an error for a scheme this
/// module does not speak.
///
/// # Errors
/// [`io::ErrorKind::InvalidInput`] for `ssh://`, `git://`, `http://`, `scp`-like
/// `host:path` and any other scheme.
pub fn protocol_for(url: &str) -> io::Result<&'static str> {
    if url.starts_with("https://") {
        return Ok("protocol.https.allow=always");
    }
    if url.starts_with("file://") {
        return Ok("protocol.file.allow=always");
    }
    // A remote name of the repository (`origin`) resolves to its configured URL, which is
    // checked by the caller that configured it; a path is a local repository.
    let scheme_like = url.split_once("://").is_some()
        || url
            .split_once(':')
            .is_some_and(|(host, _)| !host.contains('/') && !host.is_empty());
    if scheme_like {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the remote `{url}` uses a transport the factory does not run (a path, file:// \
                 or https:// only)"
            ),
        ));
    }
    Ok("protocol.file.allow=always")
}

fn run(dir: &Path, url: &str, args: &[&str]) -> io::Result<Output> {
    let allow = protocol_for(url)?;
    let mut full = vec!["-c", allow];
    full.extend_from_slice(args);
    crate::command(dir, &full).output()
}

fn checked(what: &str, dir: &Path, o: &Output) -> io::Result<String> {
    if o.status.success() {
        return Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned());
    }
    Err(io::Error::other(format!(
        "git {what} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&o.stderr).trim()
    )))
}

/// The URL `remote` (a remote name such as [`ORIGIN`], or a URL) stands for in `repo`.
fn url_of(repo: &Path, remote: &str) -> io::Result<String> {
    if remote.contains('/') || remote.contains(':') {
        return Ok(remote.to_owned());
    }
    let o = crate::command(repo, &["remote", "get-url", remote]).output()?;
    checked(&format!("remote get-url {remote}"), repo, &o)
}

/// Clones `url` into `dest` (which must not exist or be empty), with its objects copied, not
/// hard-linked, and the remote named [`ORIGIN`].
///
/// # Errors
/// The scheme is refused ([`protocol_for`]), `dest`'s parent does not exist, or git fails.
pub fn clone(url: &str, dest: &Path) -> io::Result<()> {
    let parent = dest.parent().unwrap_or_else(|| Path::new("."));
    let d = dest.to_string_lossy();
    let o = run(
        parent,
        url,
        &["clone", "-q", "--no-hardlinks", "--origin", ORIGIN, url, &d],
    )?;
    checked(&format!("clone {url}"), parent, &o).map(drop)
}

/// Fetches `refspecs` from `remote` (a remote name or URL) into `repo`.
///
/// # Errors
/// The scheme is refused, or git fails (a refspec whose source does not exist fails).
pub fn fetch(repo: &Path, remote: &str, refspecs: &[&str]) -> io::Result<()> {
    let url = url_of(repo, remote)?;
    let mut args = vec!["fetch", "-q", "--no-tags", "--no-write-fetch-head", remote];
    args.extend_from_slice(refspecs);
    let o = run(repo, &url, &args)?;
    checked(&format!("fetch {remote}"), repo, &o).map(drop)
}

/// Fetches the remote's `main` into `refs/remotes/origin/<main>` (forced: the remote is the
/// authority) and returns the commit it points at.
///
/// # Errors
/// As [`fetch`]; the remote has no branch `main`.
pub fn fetch_main(repo: &Path, main: &str) -> io::Result<String> {
    let spec = format!("+refs/heads/{main}:refs/remotes/{ORIGIN}/{main}");
    fetch(repo, ORIGIN, &[&spec])?;
    rev(repo, &format!("refs/remotes/{ORIGIN}/{main}"))
}

/// Publishes `commit` as branch `branch` of `remote` only if the remote's branch is still at
/// `expected` (a full commit id): `git push --force-with-lease=refs/heads/<branch>:<expected>`.
///
/// # Errors
/// The scheme is refused, or the push failed for another reason than the lease (the remote
/// is unreachable, the commit is unknown).
pub fn push_with_lease(
    repo: &Path,
    remote: &str,
    commit: &str,
    branch: &str,
    expected: &str,
) -> io::Result<Pushed> {
    let dst = format!("refs/heads/{branch}");
    let lease = format!("--force-with-lease={dst}:{expected}");
    push(repo, remote, &[&lease], commit, &dst)
}

/// Pushes `commit` to `refname` of `remote`; `force` replaces whatever is there, otherwise
/// only a new ref or a fast-forward is accepted. A ref that already points at `commit` is
/// [`Pushed::Accepted`] (git reports it "up to date"), so a create-only caller makes its
/// commit unique.
///
/// # Errors
/// As [`push_with_lease`].
pub fn push_ref(
    repo: &Path,
    remote: &str,
    commit: &str,
    refname: &str,
    force: bool,
) -> io::Result<Pushed> {
    let flags: &[&str] = if force { &["--force"] } else { &[] };
    push(repo, remote, flags, commit, refname)
}

fn push(repo: &Path, remote: &str, flags: &[&str], commit: &str, dst: &str) -> io::Result<Pushed> {
    let url = url_of(repo, remote)?;
    let spec = format!("{commit}:{dst}");
    let mut args = vec!["push", "--porcelain", "--no-verify"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[remote, &spec]);
    let o = run(repo, &url, &args)?;
    let out = String::from_utf8_lossy(&o.stdout);
    // Porcelain: `<flag>\t<from>:<to>\t<summary> (<reason>)`; `!` is a rejected ref
    // (git-push(1), "OUTPUT").
    let line = out
        .lines()
        .find(|l| l.split('\t').nth(1).is_some_and(|r| r.ends_with(dst)));
    match line {
        Some(l) if l.starts_with('!') => Ok(Pushed::Refused(
            l.split('\t').nth(2).unwrap_or("rejected").to_owned(),
        )),
        Some(_) if o.status.success() => Ok(Pushed::Accepted),
        _ => Err(io::Error::other(format!(
            "git push {remote} {spec} in {} failed: {}{}",
            repo.display(),
            out.trim(),
            String::from_utf8_lossy(&o.stderr).trim()
        ))),
    }
}

/// The refs of `remote` matching `pattern` (as `git ls-remote`: a glob on the ref's tail),
/// each with the commit it points at.
///
/// # Errors
/// The scheme is refused, or git fails.
pub fn ls_remote(repo: &Path, remote: &str, pattern: &str) -> io::Result<Vec<(String, String)>> {
    let url = url_of(repo, remote)?;
    let o = run(repo, &url, &["ls-remote", "--refs", remote, pattern])?;
    let text = checked(&format!("ls-remote {remote}"), repo, &o)?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(sha, r)| (sha.to_owned(), r.to_owned()))
        .collect())
}

/// The commit `rev` names in `repo`.
///
/// # Errors
/// `rev` names no commit, or git fails.
pub fn rev(repo: &Path, rev: &str) -> io::Result<String> {
    let spec = format!("{rev}^{{commit}}");
    let o = crate::command(repo, &["rev-parse", "--verify", "-q", &spec]).output()?;
    checked(&format!("rev-parse {rev}"), repo, &o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn git(dir: &Path, args: &[&str]) -> String {
        let o = crate::command(dir, args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }

    /// A bare remote with one commit on main, and a clone of it.
    fn setup() -> (tempfile::TempDir, String, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("remote.git");
        git(
            dir.path(),
            &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
        );
        let seed = dir.path().join("seed");
        std::fs::create_dir(&seed).unwrap();
        git(&seed, &["init", "-q", "-b", "main"]);
        std::fs::write(seed.join("a"), "one\n").unwrap();
        git(&seed, &["add", "a"]);
        git(&seed, &["commit", "-q", "-m", "one"]);
        let url = bare.to_string_lossy().into_owned();
        let head = rev(&seed, "HEAD").unwrap();
        assert_eq!(
            push_ref(&seed, &url, &head, "refs/heads/main", false).unwrap(),
            Pushed::Accepted
        );
        let clone_dir = dir.path().join("clone");
        clone(&url, &clone_dir).unwrap();
        (dir, url, clone_dir)
    }

    fn commit_on(repo: &Path, parent: &str, text: &str) -> String {
        git(repo, &["checkout", "-q", "--detach", parent]);
        std::fs::write(repo.join("a"), text).unwrap();
        git(repo, &["commit", "-q", "-am", text]);
        rev(repo, "HEAD").unwrap()
    }

    #[test]
    fn a_push_with_a_stale_lease_is_refused_and_main_stays() {
        let (dir, url, a) = setup();
        let b = dir.path().join("b");
        clone(&url, &b).unwrap();
        let base = fetch_main(&a, "main").unwrap();
        assert_eq!(fetch_main(&b, "main").unwrap(), base);
        // Worker a publishes first; worker b, still expecting `base`, is refused.
        let ca = commit_on(&a, &base, "from a\n");
        let cb = commit_on(&b, &base, "from b\n");
        assert_eq!(
            push_with_lease(&a, ORIGIN, &ca, "main", &base).unwrap(),
            Pushed::Accepted
        );
        let refused = push_with_lease(&b, ORIGIN, &cb, "main", &base).unwrap();
        assert!(matches!(refused, Pushed::Refused(_)), "{refused:?}");
        assert_eq!(fetch_main(&b, "main").unwrap(), ca, "main is a's commit");
        // On the new main, b's redone merge goes through.
        let cb2 = commit_on(&b, &ca, "from b, on a\n");
        assert_eq!(
            push_with_lease(&b, ORIGIN, &cb2, "main", &ca).unwrap(),
            Pushed::Accepted
        );
        let remote_main = git(Path::new(&url), &["--git-dir=.", "rev-parse", "main"]);
        assert_eq!(remote_main, cb2);
    }

    #[test]
    fn a_non_fast_forward_push_without_force_is_refused() {
        let (_dir, _url, a) = setup();
        let base = fetch_main(&a, "main").unwrap();
        let side = commit_on(&a, &base, "side\n");
        assert_eq!(
            push_ref(&a, ORIGIN, &side, "refs/heads/side", false).unwrap(),
            Pushed::Accepted
        );
        let other = commit_on(&a, &base, "other\n");
        assert!(matches!(
            push_ref(&a, ORIGIN, &other, "refs/heads/side", false).unwrap(),
            Pushed::Refused(_)
        ));
        assert_eq!(
            push_ref(&a, ORIGIN, &other, "refs/heads/side", true).unwrap(),
            Pushed::Accepted
        );
        let refs = ls_remote(&a, ORIGIN, "refs/heads/*").unwrap();
        assert!(
            refs.contains(&(other, "refs/heads/side".to_owned())),
            "{refs:?}"
        );
    }

    #[test]
    fn transports_other_than_a_path_file_and_https_are_refused() {
        for url in [
            "ssh://host/repo.git",
            "git@github.com:o/r.git",
            "http://h/r",
            "ext::sh -c x",
        ] {
            assert!(protocol_for(url).is_err(), "{url}");
        }
        for url in [
            "/srv/repo.git",
            "../repo.git",
            "file:///srv/r",
            "https://h/r",
        ] {
            assert!(protocol_for(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn a_clone_shares_no_object_file_with_its_remote() {
        use std::os::unix::fs::MetadataExt as _;
        let (_dir, url, a) = setup();
        let objects = |root: &Path| -> Vec<u64> {
            let mut v = Vec::new();
            let mut stack = vec![root.to_path_buf()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        stack.push(p);
                    } else {
                        v.push(std::fs::metadata(&p).unwrap().ino());
                    }
                }
            }
            v
        };
        let theirs = objects(&Path::new(&url).join("objects"));
        let ours = objects(&a.join(".git/objects"));
        assert!(!ours.is_empty());
        assert!(ours.iter().all(|i| !theirs.contains(i)));
    }
}
