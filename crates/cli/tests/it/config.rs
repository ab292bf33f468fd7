//! End-to-end tests of strict configuration: typos are errors naming the key and the nearest
//! valid one (in `config check` and in `run`), `config check` shows where values come from,
//! `[env]` is the one allowlist, and a missing agent program is an infrastructure error.

use crate::run::{project, task};
use assert_cmd::Command;
use std::time::Duration;

fn lightsout() -> Command {
    Command::cargo_bin("lightsout").unwrap()
}

/// The typos of the issue, each with the suggestion its error must name.
const TYPOS: &[(&str, &str, &str)] = &[
    (
        "[run]\natempts = 1\n",
        "unknown key `atempts` in [run]",
        "did you mean `attempts`?",
    ),
    (
        "[agents]\ndefualt = \"mine\"\n\n[agent.mine]\npreset = \"command\"\nprogram = \"sh\"\n",
        "unknown key `defualt` in [agents]",
        "did you mean `default`?",
    ),
    (
        "[traget]\ncommand = \"python3 app.py --port {port}\"\n",
        "unknown section [traget]",
        "did you mean `target`?",
    ),
];

#[test]
fn every_typo_is_an_error_naming_the_key_and_the_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lightsout.toml");
    for (text, key, hint) in TYPOS {
        std::fs::write(&path, text).unwrap();
        let out = lightsout()
            .args(["config", "check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {stderr}");
        assert!(
            stderr.contains(key) && stderr.contains(hint),
            "{text}: {stderr}"
        );
        let json = lightsout()
            .args(["config", "check", "--format", "json", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(v["valid"], false);
        assert!(v["errors"][0].as_str().unwrap().contains(hint), "{v}");
    }
}

#[test]
fn run_refuses_a_typo_before_anything_starts() {
    let p = project(&[("REQ-1", "alpha file", &[])], 1, "../holdout");
    let config = std::fs::read_to_string(p.repo().join("lightsout.toml")).unwrap();
    std::fs::write(
        p.repo().join("lightsout.toml"),
        config.replace("attempts = 3", "atempts = 1"),
    )
    .unwrap();
    let out = p.run().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("did you mean `attempts`?"), "{stderr}");
    assert!(
        !p.repo().join(".lightsout/runs").exists(),
        "no run was started"
    );
}

#[test]
fn config_check_says_where_each_value_comes_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lightsout.toml");
    std::fs::write(
        &path,
        "[run]\nattempts = 1\n\n[agents]\ndefault = \"sh\"\n\n[agent.sh]\npreset = \"command\"\n\
         program = \"sh\"\n\n[holdout]\npath = \"../h\"\n",
    )
    .unwrap();
    let out = lightsout()
        .args(["config", "check", "--config"])
        .arg(&path)
        .env("LIGHTSOUT_HOLDOUT", "/elsewhere")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("{key} missing:\n{stdout}"))
            .to_owned()
    };
    assert!(
        line("run.attempts").contains("= 1")
            && line("run.attempts").ends_with("# lightsout.toml:2")
    );
    assert!(line("run.jobs").ends_with("# default"), "{stdout}");
    assert!(line("holdout.path").contains("/elsewhere"), "{stdout}");
    assert!(
        line("holdout.path").ends_with("# environment LIGHTSOUT_HOLDOUT"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sh (command) serves every other kind; runs sh"),
        "{stdout}"
    );

    let out = lightsout()
        .args(["config", "check", "--format", "json", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let attempts = v["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["key"] == "run.attempts")
        .unwrap();
    assert_eq!(
        attempts["source"],
        serde_json::json!({"kind": "file", "line": 2})
    );
    assert_eq!(v["valid"], true);
}

#[test]
fn a_missing_agent_program_is_an_infrastructure_error() {
    let p = project(&[("REQ-1", "alpha file", &[])], 1, "../holdout");
    std::fs::write(
        p.repo().join("lightsout.toml"),
        "[agents]\ndefault = \"claude\"\n\n[agent.claude]\npreset = \"claude-code\"\n\
         program = \"claude-not-installed-here\"\n\n[holdout]\npath = \"../holdout\"\n\
         command = \"sh check.sh\"\n",
    )
    .unwrap();
    p.commit_all("claude");
    let out = p.run().args(["--run-id", "nc"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("claude-not-installed-here") && stderr.contains("agent profile `claude`"),
        "{stderr}"
    );
    // `config check` names the same problem.
    let out = lightsout()
        .current_dir(p.repo())
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NOT FOUND")
            || String::from_utf8_lossy(&out.stdout).contains("NOT FOUND")
    );
}

/// A variable `[env] allow` names reaches the agent, behind the real fence; a secret the
/// factory holds does not, unless `[env] pass` names it.
#[test]
fn an_allowed_variable_reaches_the_agent() {
    let p = project(&[("REQ-1", "env file", &[])], 1, "../holdout");
    p.holdout(
        "REQ-1",
        "grep -qx 'E2E_VISIBLE=yes' env.txt && grep -qx 'E2E_PASSED_KEY=k' env.txt && ! grep -q E2E_HIDDEN_TOKEN env.txt",
    );
    std::fs::write(
        p.root.join("agent.sh"),
        "env | grep '^E2E_' | sort > env.txt\n",
    )
    .unwrap();
    std::fs::write(
        p.repo().join("lightsout.toml"),
        format!(
            "[run]\nattempts = 1\n\n[agents]\ndefault = \"sh\"\n\n[agent.sh]\npreset = \"command\"\n\
             program = \"sh\"\nargs = [\"{}\"]\n\n[env]\nallow = [\"PATH\", \"HOME\", \"E2E_VISIBLE\"]\n\
             pass = [\"E2E_PASSED_KEY\"]\n\n[holdout]\npath = \"../holdout\"\ncommand = \"sh check.sh\"\n",
            p.root.join("agent.sh").display()
        ),
    )
    .unwrap();
    p.commit_all("env agent");
    let out = p
        .run()
        .args(["--run-id", "env"])
        .env("E2E_VISIBLE", "yes")
        .env("E2E_PASSED_KEY", "k")
        .env("E2E_HIDDEN_TOKEN", "t")
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(task(&p.report("env"), "REQ-1")["status"], "merged");
    let seen = p.git(&["show", "main:env.txt"]);
    assert_eq!(seen, "E2E_PASSED_KEY=k\nE2E_VISIBLE=yes", "{seen}");
}
