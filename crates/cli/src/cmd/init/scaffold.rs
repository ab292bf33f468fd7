//! `lightsout init`'s templates: the files of a new factory project.
//!
//! A project is a git repository with `lightsout.toml` (every setting shown, the optional ones
//! commented out), `specs/<name>.md` (a spec template whose `[BRACKETED]` placeholders fail
//! `lightsout spec check` with LS205 `template-leftover` until they are filled), `.gitignore`
//! (`.lightsout/`, the run directories and memory database), and a holdout directory
//! `../<name>-holdout/` beside the repository (never inside it: agents must not read it) with one
//! example scenario.
//!
//! [`files_for`] lists what would be written, [`existing`] what is already there (`init` refuses to
//! overwrite without `--force`), and [`write`] writes every file atomically.

use lightsout_factory::Error;
use std::path::{Path, PathBuf};

/// One file of the scaffold: where it goes and its content (UTF-8 text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScaffoldFile {
    /// The file, `dir` joined with a relative path (the holdout one starts with `..`).
    pub(crate) path: PathBuf,
    /// Its content.
    pub(crate) content: String,
}

/// A project name from the directory name: lower-case ASCII letters, digits and `-`, or
/// `service` when nothing is left.
pub(crate) fn project_name(dir: &Path) -> String {
    let raw = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut name = String::new();
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c);
        } else if !name.ends_with('-') && !name.is_empty() {
            name.push('-');
        }
    }
    let name = name.trim_end_matches('-').to_owned();
    if name.is_empty() {
        "service".into()
    } else {
        name
    }
}

/// The agent a new project starts with (`lightsout init --agent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum StarterAgent {
    /// Claude Code (`claude -p`), profile `claude`.
    #[default]
    ClaudeCode,
    /// Codex (`codex exec`), profile `codex`.
    Codex,
    /// Aider, profile `aider`.
    Aider,
    /// Your own program: profile `mine` running `python3 lightsout-agent.py`, the Python
    /// adapter of `docs/agents.md`, written beside `lightsout.toml`.
    Command,
}

impl StarterAgent {
    /// The profile `[agents] default` names.
    pub(crate) fn profile(self) -> &'static str {
        match self {
            StarterAgent::ClaudeCode => "claude",
            StarterAgent::Codex => "codex",
            StarterAgent::Aider => "aider",
            StarterAgent::Command => "mine",
        }
    }
}

/// The documentation of the adapter contract, whose Python example `init --agent command`
/// writes: one source, so the file a user gets is the one the docs print.
const AGENTS_DOC: &str = include_str!("../../../../../docs/agents.md");

/// The file name of the Python adapter `init --agent command` writes.
pub(crate) const ADAPTER_FILE: &str = "lightsout-agent.py";

/// The Python adapter of `docs/agents.md`: its first `` ```python `` code block.
pub(crate) fn python_adapter() -> &'static str {
    AGENTS_DOC
        .split_once("```python\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map_or("", |(code, _)| code)
}

/// The configuration text for `agent`: the template with `[agents] default` naming its
/// profile, and that profile's section uncommented.
fn config_for(holdout: &str, agent: StarterAgent) -> String {
    let mut c = CONFIG.replace("{holdout}", holdout).replace(
        "default = \"claude\"",
        &format!("default = \"{}\"", agent.profile()),
    );
    match agent {
        StarterAgent::ClaudeCode => {}
        StarterAgent::Codex => c = c.replace("# [agent.codex]\n# preset", "[agent.codex]\npreset"),
        StarterAgent::Aider => c = c.replace("# [agent.aider]\n# preset", "[agent.aider]\npreset"),
        StarterAgent::Command => {
            c = c.replace(
                "# [agent.replay]",
                &format!(
                    "[agent.mine]\npreset = \"command\"           # your own program: docs/agents.md is its contract\n\
                     program = \"python3\"\n\
                     args = [\"{ADAPTER_FILE}\"]     # relative to the task's worktree (commit the file)\n\n\
                     # [agent.replay]"
                ),
            );
        }
    }
    c
}

/// The files `lightsout init` writes for project `name` in directory `dir` (absolute, so that
/// the holdout directory lands beside it: `<parent of dir>/<name>-holdout/`), starting with
/// `agent`; [`StarterAgent::Command`] adds the Python adapter [`ADAPTER_FILE`].
pub(crate) fn files_for(dir: &Path, name: &str, agent: StarterAgent) -> Vec<ScaffoldFile> {
    let holdout = format!("{name}-holdout");
    let mut files = vec![
        ScaffoldFile {
            path: dir.join("lightsout.toml"),
            content: config_for(&holdout, agent),
        },
        ScaffoldFile {
            path: dir.join("specs").join(format!("{name}.md")),
            content: SPEC.replace("{name}", name),
        },
        ScaffoldFile {
            path: dir.join(".gitignore"),
            content: ".lightsout/\n".into(),
        },
        ScaffoldFile {
            path: dir.join("..").join(&holdout).join("example.scenario.md"),
            content: SCENARIO.into(),
        },
    ];
    if agent == StarterAgent::Command {
        files.push(ScaffoldFile {
            path: dir.join(ADAPTER_FILE),
            content: python_adapter().to_owned(),
        });
    }
    files
}

/// The files of [`files_for`] that already exist.
pub(crate) fn existing(dir: &Path, name: &str, agent: StarterAgent) -> Vec<PathBuf> {
    files_for(dir, name, agent)
        .into_iter()
        .map(|f| f.path)
        .filter(|p| p.exists())
        .collect()
}

/// Writes every file of [`files_for`], creating directories, each atomically (temporary file and
/// rename), overwriting what is there; returns the paths written.
///
/// # Errors
/// [`Error::Io`] when a directory or file cannot be written.
pub(crate) fn write(dir: &Path, name: &str, agent: StarterAgent) -> Result<Vec<PathBuf>, Error> {
    let mut written = Vec::new();
    for f in files_for(dir, name, agent) {
        lightsout_factory::journal::write_atomic(&f.path, f.content.as_bytes())?;
        written.push(f.path);
    }
    Ok(written)
}

const CONFIG: &str = r#"# Lightsout configuration. `lightsout run` reads it from the repository root.
# Lines starting with `# key =` are optional settings shown with their default or an example;
# remove the `# ` to use one.

[run]
jobs = 2                        # agents working at once (`lightsout run --jobs` overrides)
attempts = 3                    # attempts per task, rework after feedback or a regression included
main = "main"                   # the branch passing work fast-forwards

[agents]
# The agent profile used for every task kind not listed in [agents.kinds].
default = "claude"
# [agents.kinds]
# docs = "aider"                # a cheaper agent for lower-stakes task kinds

# Agent profiles. Presets: claude-code, codex, aider, replay, command.
[agent.claude]
preset = "claude-code"          # runs `claude -p --output-format stream-json ...` (see docs/agents.md)
# program = "/usr/local/bin/claude"   # the executable, when it is not on PATH
# args = ["--model", "sonnet"]        # extra arguments
# prompt = "stdin"                     # how the task prompt is passed: stdin | file
# format = "claude-json"               # how the output is read

# [agent.codex]
# preset = "codex"              # `codex exec --json`

# [agent.aider]
# preset = "aider"              # `aider --message-file ... --yes-always --no-auto-commits`

# [agent.replay]
# preset = "replay"             # replays recorded patches, no model called
# trajectory = "trajectory"     # relative to this file: trajectory/<task>/<attempt>.patch

[env]
# The only environment variables agents, checks and the holdout see; secrets are not inherited.
allow = ["PATH", "HOME", "LANG", "TERM"]

[limits]
wall_ms = 1800000               # per agent attempt, ms (30 minutes)
output_bytes = 16777216         # agent output kept, bytes (16 MiB)

# Visible checks, run in the task's worktree after each attempt: your build and tests.
# [[checks]]
# name = "test"
# run = "make test"
# timeout_ms = 600000

[holdout]
# The holdout scenarios, OUTSIDE the repository so that agents never read them.
# LIGHTSOUT_HOLDOUT overrides the path.
path = "../{holdout}"
redaction = "requirement"       # what the agent is told: none | requirement | category | full
# require_all = true            # a requirement without a holdout result fails (fail closed)
# trials = 5                    # trials per scenario when no gate rule asks for more
# command = "sh run.sh"         # an external holdout runner instead of the built-in engine

# How the eval engine starts your software in a worktree ({port} is a free loopback port).
# [target]
# command = "python3 app.py --port {port}"
# ready_path = "/healthz"
# ready_timeout_ms = 30000

# Digital twins of third-party services, served on loopback for each evaluation.
# [twins]
# slack = "builtin"             # or a twin directory, or the URL of a running twin

# More verification gate rules (lightsout-eval's policy). The spec's `## Verification gate`, these
# and the holdout's gate.toml all apply, with a built-in floor: the strictest wins, none is dropped.
# [[gate.rule]]
# tag = "@critical"
# min_lower_bound = 0.9         # each @critical scenario's Wilson lower bound (35 clean trials)
# [[gate.rule]]
# min_strength = 0.8            # the holdout's kill rate of mutants: Wilson lower bound >= 0.8

# How strong the holdout is: mutants of the merged build, each judged by the holdout (Python:
# `pip install cosmic-ray`). `lightsout run` measures it after the last merge when a gate rule has
# min_strength, with `run --strength`, or with after_run = true; `lightsout strength` any time.
# [strength]
# max_mutants = 100             # judge a seeded sample of at most this many
# jobs = 2                      # mutants judged at once
# after_run = false

[memory]
enabled = true                  # .lightsout/memory.db: decisions, context packs, guards, lessons
budget_tokens = 1500            # tokens of a context pack

# Optional caps and sandbox, see the lightsout-factory docs: [budget.task], [budget.run],
# [budget.day] (attempts, wall_ms, tokens, usd) and [fence] (network, wall_ms, output_bytes).
# Agents get no network by default; a real agent needs its API host, for example:
# [fence]
# hosts = ["api.anthropic.com"]  # network = "hosts": only these, through the fence's proxy (root)
"#;

const SPEC: &str = r#"---
id: {name}
title: "[SERVICE TITLE]"
kind: feature
version: 1
status: draft
depends_on: []
---

# [SERVICE TITLE]

## Intent
[Describe in two or three sentences what the service does and why it matters.]

## Users
- **[ROLE]**: [what this user does with the service].

## Inputs
- `GET /healthz` for liveness and readiness probes.
- [List each request, its body fields, limits and the environment variables.]

## Outputs
- JSON bodies with `Content-Type: application/json`.
- [List each answer: status codes, fields, and calls to third-party services.]

## Behaviour

### REQ-1: Serve health
The service SHALL answer `GET /healthz` with status 200 and `{"status":"ok"}` within 500 ms.

#### Scenario: the service reports healthy
- **GIVEN** the service is running
- **WHEN** a client sends `GET /healthz`
- **THEN** the status is 200

### REQ-2: [FIRST BEHAVIOUR]
When [a trigger happens], the service SHALL [respond in a way a test can check].

#### Scenario: [a concrete example of REQ-2]
- **GIVEN** [a starting state]
- **WHEN** [an action]
- **THEN** [an observable result]

## Constraints
- CON-1: `GET /healthz` answers within 500 ms.
- [Add measurable limits: latency, sizes, versions, each with a number and a unit.]

## Verification gate
- Suite satisfaction is at least 0.95 over 10 trials per scenario.
- No regression on scenarios that passed on main.
"#;

const SCENARIO: &str = "# Example holdout scenario
<!-- The factory judges the agents' work with the scenarios in this directory. It lives outside
     the repository so that agents never read it: keep it that way. Each scenario names the
     requirements it checks with `Satisfies:`. -->

## Scenario: the health probe answers ok
Satisfies: REQ-1

- **GIVEN** the service is running
- **WHEN** I send `GET /healthz`
- **THEN** the status is 200 within 500 ms
";

#[cfg(test)]
mod tests {
    use super::*;
    use lightsout_factory::Config;

    #[test]
    fn config_parses_with_the_real_loader() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("shop");
        let written = write(&repo, "shop", StarterAgent::ClaudeCode).unwrap();
        assert_eq!(written.len(), 4);
        let c = Config::load(&repo.join("lightsout.toml")).unwrap();
        assert_eq!(c.run.attempts, 3);
        assert_eq!(c.agents.default.as_deref(), Some("claude"));
        assert!(c.holdout.path.is_some());
        assert!(
            dir.path()
                .join("shop-holdout/example.scenario.md")
                .is_file()
        );
        assert_eq!(
            std::fs::read_to_string(repo.join(".gitignore")).unwrap(),
            ".lightsout/\n"
        );
    }

    #[test]
    fn uncommented_settings_are_valid_toml_and_config() {
        // Every `# key = value` and `# [section]` line, uncommented, still loads.
        let text: String = CONFIG
            .lines()
            .map(|l| {
                let rest = l.strip_prefix("# ").unwrap_or(l);
                let key = rest.split(" = ").next().unwrap_or("");
                let is_setting = (rest.starts_with('[') && !rest.starts_with("[budget"))
                    || (rest.contains(" = ")
                        && key.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
                if l.starts_with("# ") && is_setting {
                    format!("{rest}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert!(text.contains("\n[[checks]]\nname = \"test\""), "{text}");
        let c = Config::parse(&text, Path::new("/p")).unwrap();
        assert_eq!(c.checks.len(), 1);
        assert!(c.agent.contains_key("codex") && c.agent.contains_key("replay"));
    }

    #[test]
    fn existing_lists_only_present_files() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r");
        assert!(existing(&repo, "r", StarterAgent::ClaudeCode).is_empty());
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::write(repo.join(".gitignore"), "target/\n").unwrap();
        assert_eq!(
            existing(&repo, "r", StarterAgent::ClaudeCode),
            vec![repo.join(".gitignore")]
        );
    }

    #[test]
    fn every_starter_agent_gets_a_loadable_config_naming_it() {
        for agent in [
            StarterAgent::ClaudeCode,
            StarterAgent::Codex,
            StarterAgent::Aider,
            StarterAgent::Command,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let repo = dir.path().join("shop");
            let written = write(&repo, "shop", agent).unwrap();
            let c = Config::load(&repo.join("lightsout.toml")).unwrap();
            assert_eq!(c.agents.default.as_deref(), Some(agent.profile()));
            assert!(c.agent.contains_key(agent.profile()), "{agent:?}");
            assert_eq!(
                written.contains(&repo.join(ADAPTER_FILE)),
                agent == StarterAgent::Command
            );
        }
        let adapter = python_adapter();
        assert!(adapter.starts_with("#!/usr/bin/env python3\n"), "{adapter}");
        assert!(adapter.contains("LIGHTSOUT_TASK_FILE") && adapter.contains("sys.exit(0)"));
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(project_name(Path::new("/x/My Shop_2")), "my-shop-2");
        assert_eq!(project_name(Path::new("/")), "service");
        assert_eq!(project_name(Path::new("/x/--")), "service");
    }
}
