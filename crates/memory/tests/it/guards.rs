//! Guards against real git diffs in temporary repositories.

use crate::Fixture;
use lightsout_memory::{Ecosystem, Guard, NewRecord};
use std::path::Path;
use std::process::Command;

fn git(repo: &Path, args: &[&str], date: &str) {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@localhost",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn git_init(repo: &Path) {
    std::fs::create_dir_all(repo).unwrap();
    git(repo, &["init", "-q", "-b", "main"], "2024-01-01T00:00:00Z");
}

pub(crate) fn commit_file(repo: &Path, path: &str, text: &str, msg: &str, date: &str) {
    let p = repo.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
    git(repo, &["add", "-A"], date);
    git(repo, &["commit", "-q", "-m", msg], date);
}

const DATE: &str = "2024-03-01T00:00:00Z";

fn no_postgres() -> NewRecord {
    let mut d = NewRecord::decision(
        "SQLite, not Postgres",
        "State lives in one SQLite file; no database server.",
    );
    d.guards.push(Guard::ForbidDependency {
        name: "postgres".into(),
        ecosystem: None,
    });
    d
}

fn catches_a_reintroduced_forbidden_dependency_in_a_real_diff(fx: Fixture) {
    let Fixture { dir, mem, .. } = fx;
    let repo = dir.path().join("repo");
    git_init(&repo);
    let base_manifest = "[package]\nname = \"app\"\nversion = \"0.1.0\"\n\n[dependencies]\nserde = \"1\"\npostgres = \"0.19\"\n";
    commit_file(&repo, "Cargo.toml", base_manifest, "with postgres", DATE);
    // The decision is taken and postgres removed...
    let id = mem.add(no_postgres()).unwrap();
    commit_file(
        &repo,
        "Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\n\n[dependencies]\nserde = \"1\"\n",
        "drop postgres",
        DATE,
    );
    git(&repo, &["tag", "clean"], DATE);
    // ...then an agent brings it back, renamed through `package =`.
    commit_file(
        &repo,
        "Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\n\n[dependencies]\nserde = \"1\"\ndb = { package = \"postgres\", version = \"0.19\" }\n",
        "agent change",
        DATE,
    );
    let rep = mem.check_diff(&repo, "clean", "HEAD").unwrap();
    assert_eq!(rep.violations.len(), 1, "{rep:?}");
    let v = &rep.violations[0];
    assert_eq!(
        (v.record, v.path.as_str(), v.line),
        (id, "Cargo.toml", Some(7))
    );
    assert!(v.message.contains("postgres"));

    // Removing it is fine, and so is a diff that only touches other lines.
    assert!(
        mem.check_diff(&repo, "HEAD~2", "clean")
            .unwrap()
            .violations
            .is_empty()
    );
    commit_file(&repo, "src/lib.rs", "pub fn f() {}\n", "code", DATE);
    assert!(
        mem.check_diff(&repo, "HEAD~1", "HEAD")
            .unwrap()
            .violations
            .is_empty()
    );
    // A bad revision is a git error, not a pass.
    assert!(mem.check_diff(&repo, "nope", "HEAD").is_err());
}

fn dependency_guards_read_package_json_and_pyproject(fx: Fixture) {
    let Fixture { dir, mem, .. } = fx;
    let repo = dir.path().join("repo");
    git_init(&repo);
    commit_file(
        &repo,
        "web/package.json",
        "{\"dependencies\":{}}\n",
        "init",
        DATE,
    );
    commit_file(
        &repo,
        "py/pyproject.toml",
        "[project]\nname = \"x\"\ndependencies = []\n",
        "init",
        DATE,
    );
    let mut d = NewRecord::decision("No ORMs", "Plain SQL only.");
    d.guards = vec![
        Guard::ForbidDependency {
            name: "sequelize".into(),
            ecosystem: Some(Ecosystem::Npm),
        },
        Guard::ForbidDependency {
            name: "SQLAlchemy".into(),
            ecosystem: None,
        },
    ];
    mem.add(d).unwrap();
    commit_file(
        &repo,
        "web/package.json",
        "{\n  \"dependencies\": {\n    \"sequelize\": \"^6\"\n  }\n}\n",
        "npm",
        DATE,
    );
    commit_file(
        &repo,
        "py/pyproject.toml",
        "[project]\nname = \"x\"\ndependencies = [\n  \"sqlalchemy>=2\",\n]\n",
        "py",
        DATE,
    );
    let rep = mem.check_diff(&repo, "HEAD~2", "HEAD").unwrap();
    let paths: Vec<&str> = rep.violations.iter().map(|v| v.path.as_str()).collect();
    assert_eq!(paths, ["py/pyproject.toml", "web/package.json"]);
}

fn path_and_line_guards_respect_scope(fx: Fixture) {
    let Fixture { dir, mem, .. } = fx;
    let repo = dir.path().join("repo");
    git_init(&repo);
    commit_file(&repo, "README.md", "x\n", "init", DATE);
    let mut d = NewRecord::decision("No panics in the API layer", "Return errors.");
    d.scope.paths.push("src/api/**".into());
    d.guards.push(Guard::ForbidAdded {
        regex: r"\.unwrap\(\)".into(),
        paths: None,
    });
    d.guards.push(Guard::ForbidPath {
        glob: "legacy/**".into(),
    });
    d.guards.push(Guard::RequireAdded {
        regex: "^-- migrate:".into(),
        paths: "migrations/*.sql".into(),
    });
    let id = mem.add(d).unwrap();
    commit_file(
        &repo,
        "src/api/h.rs",
        "fn h() {\n    x.unwrap();\n}\n",
        "api",
        DATE,
    );
    commit_file(
        &repo,
        "src/cli/m.rs",
        "fn m() { y.unwrap(); }\n",
        "cli (out of scope)",
        DATE,
    );
    commit_file(&repo, "legacy/old.py", "print(1)\n", "legacy", DATE);
    commit_file(
        &repo,
        "migrations/001.sql",
        "CREATE TABLE t (x int);\n",
        "migration",
        DATE,
    );
    let rep = mem.check_diff(&repo, "HEAD~4", "HEAD").unwrap();
    let got: Vec<(String, Option<u32>)> = rep
        .violations
        .iter()
        .map(|v| (v.path.clone(), v.line))
        .collect();
    assert_eq!(
        got,
        [
            ("legacy/old.py".to_owned(), None),
            ("migrations/001.sql".to_owned(), None),
            ("src/api/h.rs".to_owned(), Some(2)),
        ]
    );
    assert!(rep.violations.iter().all(|v| v.record == id));
    assert_eq!(rep.guards_checked, 3);
}

fn superseded_decisions_stop_guarding(fx: Fixture) {
    let Fixture { dir: _d, mem, .. } = fx;
    let id = mem.add(no_postgres()).unwrap();
    let diff = "diff --git a/Cargo.toml b/Cargo.toml\n--- a/Cargo.toml\n+++ b/Cargo.toml\n@@ -1,0 +2 @@\n+postgres = \"0.19\"\n";
    assert_eq!(mem.check_diff_text(diff).unwrap().violations.len(), 1);
    mem.supersede(
        id,
        NewRecord::decision("Postgres after all", "We outgrew SQLite."),
    )
    .unwrap();
    assert!(mem.check_diff_text(diff).unwrap().violations.is_empty());
}

crate::both!(
    catches_a_reintroduced_forbidden_dependency_in_a_real_diff,
    dependency_guards_read_package_json_and_pyproject,
    path_and_line_guards_respect_scope,
    superseded_decisions_stop_guarding,
);
