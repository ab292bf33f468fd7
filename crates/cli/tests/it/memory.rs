//! `lightsout memory ...` end to end: the real binary on a real database file and real git
//! repositories, several processes at once, and a `kill -9` in the middle of an import.

use assert_cmd::Command;
use lightsout_factory::testing::git;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("lightsout")
}

/// `lightsout memory --db <db> ...`.
fn mem(db: &Path) -> Command {
    let mut c = Command::new(bin());
    c.env("NO_COLOR", "1").arg("memory").arg("--db").arg(db);
    c
}

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).expect("stdout is JSON")
}

fn commit(repo: &Path, path: &str, text: &str) {
    let p = repo.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", path]);
}

fn ids(v: &serde_json::Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

/// Adds decision A (from 2024-01-01), supersedes it by B (from 2024-06-01, with a path and a
/// forbidden dependency), adds C and deprecates it. Returns their ids.
fn add_supersede_and_deprecate(db: &Path) -> (i64, i64, i64) {
    let out = mem(db)
        .args([
            "add",
            "--title",
            "Store in JSON files",
            "--decision",
            "One file per run.",
        ])
        .args(["--valid-from", "2024-01-01", "--format", "json"])
        .assert()
        .success();
    let a = json(&out.get_output().stdout)["id"].as_i64().unwrap();
    let out = mem(db)
        .args(["supersede", &format!("M-{a}"), "--title", "Store in SQLite"])
        .args([
            "--decision",
            "One SQLite file, WAL mode.",
            "--path",
            "src/store/**",
        ])
        .args([
            "--forbid-dependency",
            "postgres",
            "--valid-from",
            "2024-06-01",
            "--format",
            "json",
        ])
        .assert()
        .success();
    let b = json(&out.get_output().stdout)["id"].as_i64().unwrap();
    let t = mem(db)
        .args(["add", "--title", "Use tokio", "--format", "json"])
        .assert()
        .success();
    let c = json(&t.get_output().stdout)["id"].as_i64().unwrap();
    mem(db)
        .args(["deprecate", &c.to_string()])
        .assert()
        .success();

    (a, b, c)
}

/// `list` now, as of a past date and with `--all`; `show --chain` and `--history`.
fn assert_lists_and_history(db: &Path, (a, b, c): (i64, i64, i64)) {
    let now = mem(db)
        .args(["list", "--format", "json"])
        .assert()
        .success();
    assert_eq!(ids(&json(&now.get_output().stdout)), [b]);
    let then = mem(db)
        .args(["list", "--as-of", "2024-03-01", "--format", "json"])
        .assert()
        .success();
    assert_eq!(ids(&json(&then.get_output().stdout)), [a]);
    let all = mem(db)
        .args(["list", "--all", "--format", "json"])
        .assert()
        .success();
    assert_eq!(ids(&json(&all.get_output().stdout)), [a, b, c]);

    let chain = mem(db)
        .args(["show", &a.to_string(), "--chain", "--format", "json"])
        .assert()
        .success();
    assert_eq!(ids(&json(&chain.get_output().stdout)), [a, b]);
    let hist = mem(db)
        .args(["show", &a.to_string(), "--history", "--format", "json"])
        .assert()
        .success();
    let hist = json(&hist.get_output().stdout);
    assert_eq!(hist[1]["status"], "superseded");
}

/// `search` finds B first; a context pack for a path B governs leads with B, in budget.
fn assert_search_and_context(db: &Path, b: i64) {
    let hits = mem(db)
        .args(["search", "sqlite", "file", "--format", "json"])
        .assert()
        .success();
    let hits = json(&hits.get_output().stdout);
    assert_eq!(hits[0]["record"]["id"].as_i64(), Some(b));

    let pack = mem(db)
        .args([
            "context",
            "add",
            "a",
            "table",
            "--touch",
            "src/store/db.rs",
            "--budget",
            "300",
            "--format",
            "json",
        ])
        .assert()
        .success();
    let pack = json(&pack.get_output().stdout);
    assert_eq!(pack["items"][0]["id"].as_i64(), Some(b));
    assert!(pack["tokens"].as_u64().unwrap() <= 300);
}

/// `export --decisions-md` names B; importing the export into a fresh store and exporting
/// again gives the same bytes.
fn assert_export_round_trips(dir: &Path, db: &Path, b: i64) {
    let md = dir.join("DECISIONS.md");
    mem(db)
        .args(["export", "--decisions-md"])
        .arg(&md)
        .assert()
        .success();
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains(&format!("## M-{b}: Store in SQLite")));
    // Import of its own export into a fresh store, then export again: same bytes.
    let db2 = dir.join("other.db");
    mem(&db2).arg("import").arg(&md).assert().success();
    let again = mem(&db2)
        .args(["export", "--decisions-md", "-"])
        .assert()
        .success();
    assert_eq!(String::from_utf8_lossy(&again.get_output().stdout), text);
}

#[test]
fn add_supersede_deprecate_list_show_search_export() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(".lightsout/memory.db");
    let (a, b, c) = add_supersede_and_deprecate(&db);
    assert_lists_and_history(&db, (a, b, c));
    assert_search_and_context(&db, b);
    assert_export_round_trips(dir.path(), &db, b);

    // Usage errors exit 2 and say what to do.
    mem(&db)
        .args(["show", "M-99"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("memory list --all"));
}

#[test]
fn check_exits_1_when_a_diff_reintroduces_a_forbidden_dependency() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    commit(
        &repo,
        "Cargo.toml",
        "[package]\nname = \"a\"\n\n[dependencies]\nserde = \"1\"\n",
    );
    mem(&db)
        .args([
            "add",
            "--title",
            "SQLite, not Postgres",
            "--forbid-dependency",
            "postgres",
        ])
        .assert()
        .success();
    commit(&repo, "src/lib.rs", "pub fn ok() {}\n");
    mem(&db)
        .args(["check", "--diff", "HEAD~1..HEAD", "--repo"])
        .arg(&repo)
        .assert()
        .code(0);
    commit(
        &repo,
        "Cargo.toml",
        "[package]\nname = \"a\"\n\n[dependencies]\nserde = \"1\"\npostgres = \"0.19\"\n",
    );
    let out = mem(&db)
        .args([
            "check",
            "--diff",
            "HEAD~2..HEAD",
            "--format",
            "json",
            "--repo",
        ])
        .arg(&repo)
        .assert()
        .code(1);
    let rep = json(&out.get_output().stdout);
    assert_eq!(rep["violations"][0]["record"], 1);
    assert_eq!(rep["violations"][0]["path"], "Cargo.toml");
    assert_eq!(rep["violations"][0]["line"], 6);
    mem(&db)
        .args(["check", "--diff", "HEAD~1..HEAD", "--repo"])
        .arg(&repo)
        .assert()
        .code(1)
        .stdout(predicates::str::contains(
            "breaks M-1 \"SQLite, not Postgres\"",
        ));
    mem(&db)
        .args(["check", "--diff", "nope..HEAD", "--repo"])
        .arg(&repo)
        .assert()
        .code(2);
}

#[test]
fn imports_a_real_madr_collection_and_searches_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let madr = Path::new(env!("CARGO_MANIFEST_DIR")).join("../memory/tests/fixtures/madr");
    let out = mem(&db)
        .arg("import")
        .arg(&madr)
        .args(["--format", "json"])
        .assert()
        .success();
    let rep = json(&out.get_output().stdout);
    assert_eq!(
        (rep["source"].as_str(), rep["created"].as_u64()),
        (Some("madr"), Some(7))
    );
    let hits = mem(&db)
        .args(["search", "dashes", "filenames", "--format", "json"])
        .assert()
        .success();
    assert_eq!(
        json(&hits.get_output().stdout)[0]["record"]["title"],
        "Use Dashes in Filenames"
    );
}

#[test]
fn four_processes_writing_at_once_lose_nothing() {
    const PER_IMPORT: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    mem(&db).args(["list"]).assert().success(); // create and migrate once
    std::thread::scope(|s| {
        for p in 0..4 {
            let (db, dir) = (&db, dir.path());
            s.spawn(move || {
                let file = dir.join(format!("p{p}.md"));
                let mut text = String::from("# Decisions\n");
                for i in 0..PER_IMPORT {
                    let _ = write!(text, "\n## Process {p} decision {i}\n\nBody {i}.\n");
                }
                std::fs::write(&file, text).unwrap();
                mem(db)
                    .arg("import")
                    .arg(&file)
                    .args(["--progress", "none"])
                    .assert()
                    .success();
                for i in 0..5 {
                    mem(db)
                        .args(["add", "--title", &format!("p{p} added {i}")])
                        .assert()
                        .success();
                    mem(db)
                        .args([
                            "lesson",
                            "fail",
                            "--requirement",
                            "REQ-1",
                            "--category",
                            "timeout",
                        ])
                        .assert()
                        .success();
                }
            });
        }
    });
    let all = mem(&db)
        .args(["list", "--all", "--kind", "decision", "--format", "json"])
        .assert()
        .success();
    let all = json(&all.get_output().stdout);
    assert_eq!(all.as_array().unwrap().len(), 4 * (PER_IMPORT + 5));
    let lessons = mem(&db)
        .args(["list", "--kind", "lesson", "--format", "json"])
        .assert()
        .success();
    let lessons = json(&lessons.get_output().stdout);
    assert_eq!(lessons.as_array().unwrap().len(), 1);
    assert_eq!(lessons[0]["lesson"]["failures"], 20);
    let store = lightsout_memory::SqliteStore::open(&db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), ["ok"]);
}

#[test]
fn kill_9_during_a_large_import_leaves_the_database_as_it_was() {
    const N: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    mem(&db)
        .args(["add", "--title", "Existing decision", "--decision", "Kept."])
        .assert()
        .success();
    mem(&db)
        .args(["add", "--title", "Another one"])
        .assert()
        .success();
    let before = mem(&db)
        .args(["export", "--decisions-md", "-"])
        .assert()
        .success();
    let before = before.get_output().stdout.clone();

    let big = dir.path().join("DECISIONS.md");
    let mut text = String::with_capacity(N * 40);
    for i in 0..N {
        let _ = write!(
            text,
            "## Imported decision {i}\n\nBody of decision {i}.\n\n"
        );
    }
    std::fs::write(&big, text).unwrap();

    let mut child = std::process::Command::new(bin())
        .args(["memory", "--db"])
        .arg(&db)
        .arg("import")
        .arg(&big)
        .args(["--progress", "lines"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // One progress line per record, written inside the transaction. Once we stop reading,
    // the pipe fills (64 KiB, ~3,600 lines) and the child blocks before it can commit, so
    // the kill always lands mid-transaction.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "import ended before progress"
        );
        if line.starts_with("imported 500/") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());

    let store = lightsout_memory::SqliteStore::open(&db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), ["ok"]);
    drop(store);
    let after = mem(&db)
        .args(["export", "--decisions-md", "-"])
        .assert()
        .success();
    assert_eq!(
        String::from_utf8_lossy(&after.get_output().stdout),
        String::from_utf8_lossy(&before)
    );
    let all = mem(&db)
        .args(["list", "--all", "--format", "json"])
        .assert()
        .success();
    assert_eq!(json(&all.get_output().stdout).as_array().unwrap().len(), 2);
}
