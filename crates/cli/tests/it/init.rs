//! End-to-end tests of `lightsout init`: the real binary in a temporary directory.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::Path;

/// The spec template's placeholders and what a user would write instead.
pub(crate) const FILL: &[(&str, &str)] = &[
    ("[SERVICE TITLE]", "Greeting service"),
    (
        "[Describe in two or three sentences what the service does and why it matters.]",
        "A tiny HTTP service that greets people by name, so that the team has a checked example.",
    ),
    ("[ROLE]", "Visitor"),
    (
        "[what this user does with the service]",
        "asks for a greeting with curl",
    ),
    (
        "[List each request, its body fields, limits and the environment variables.]",
        "`GET /hello/{name}` where `{name}` is 1 to 40 ASCII letters.",
    ),
    (
        "[List each answer: status codes, fields, and calls to third-party services.]",
        "`200 OK` with a `greeting` field for a valid name.",
    ),
    ("[FIRST BEHAVIOUR]", "Greet by name"),
    (
        "[a trigger happens]",
        "a client sends `GET /hello/{name}` with a valid name",
    ),
    (
        "[respond in a way a test can check]",
        "answer 200 with `greeting` equal to `Hello, {name}!`",
    ),
    ("[a concrete example of REQ-2]", "Ada is greeted"),
    ("[a starting state]", "the service is running"),
    ("[an action]", "a client sends `GET /hello/Ada`"),
    ("[an observable result]", "the status is 200"),
    (
        "[Add measurable limits: latency, sizes, versions, each with a number and a unit.]",
        "CON-2: Names are at most 40 characters.",
    ),
];

fn lightsout(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("lightsout").unwrap();
    c.current_dir(dir);
    c
}

#[test]
fn scaffolds_a_project_whose_spec_passes_once_filled() {
    let tmp = tempfile::tempdir().unwrap();
    lightsout(tmp.path())
        .args(["init", "greeter"])
        .assert()
        .success()
        .stdout(predicate::str::contains("initialised project `greeter`"));
    let repo = tmp.path().join("greeter");
    for f in ["lightsout.toml", "specs/greeter.md", ".gitignore"] {
        assert!(repo.join(f).is_file(), "{f} missing");
    }
    assert!(
        tmp.path()
            .join("greeter-holdout/example.scenario.md")
            .is_file(),
        "the holdout is a sibling of the repository"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join(".gitignore")).unwrap(),
        ".lightsout/\n"
    );

    // The template fails `spec check` clearly while its placeholders are there...
    lightsout(&repo)
        .args(["spec", "check", "specs/greeter.md"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("LS205").and(predicate::str::contains("[SERVICE TITLE]")));

    // ...and passes once they are filled.
    let spec = repo.join("specs/greeter.md");
    let mut text = std::fs::read_to_string(&spec).unwrap();
    for (from, to) in FILL {
        assert!(text.contains(from), "template lacks {from}");
        text = text.replace(from, to);
    }
    std::fs::write(&spec, text).unwrap();
    lightsout(&repo)
        .args(["spec", "check", "specs/greeter.md"])
        .assert()
        .success();
}

#[test]
fn refuses_to_overwrite_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("shop");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join(".gitignore"), "target/\n").unwrap();
    lightsout(&repo).arg("init").assert().code(2).stderr(
        predicate::str::contains("pass --force").and(predicate::str::contains(".gitignore")),
    );
    assert_eq!(
        std::fs::read_to_string(repo.join(".gitignore")).unwrap(),
        "target/\n",
        "nothing written"
    );
    assert!(!repo.join("lightsout.toml").exists());
    lightsout(&repo)
        .args(["init", "--force"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(repo.join(".gitignore")).unwrap(),
        ".lightsout/\n"
    );
    assert!(repo.join("specs/shop.md").is_file());
}

/// `init --format json` says what it wrote, for scripts; nothing else on stdout.
#[test]
fn init_prints_what_it_wrote_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("lightsout")
        .unwrap()
        .current_dir(tmp.path())
        .args(["init", "greeter", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("stdout is one JSON object");
    assert_eq!(v["project"], "greeter");
    let written: Vec<&str> = v["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(written.iter().any(|p| p.ends_with("lightsout.toml")), "{v}");
    for p in written {
        assert!(Path::new(p).is_file(), "{p}");
    }
    assert!(!v["next"].as_array().unwrap().is_empty());
}
