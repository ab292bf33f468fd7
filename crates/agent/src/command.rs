//! [`CommandAgent`]: any CLI coding agent run as a child process.

use crate::parse::{OutputFormat, parse_output};
use crate::price::Prices;
use crate::{Agent, AgentReport, Error, Outcome, TaskContext, Usage, Workspace};
use async_trait::async_trait;
use lightsout_stdx::process::{Limit, Limits, RunError, Until, run};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::process::Command;

/// How the prompt reaches the agent process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptMode {
    /// Written to the process's stdin, which is then closed.
    #[default]
    Stdin,
    /// Written to `<artifacts_dir>/prompt-<task>-<attempt>.md`; the path replaces
    /// `{prompt_file}` in the arguments. Stdin is closed (`/dev/null`).
    File,
}

/// A built-in agent configuration: the command line each tool needs to edit files headless
/// inside the factory's fence, which is the sandbox (each tool's own permission prompts
/// would stop a headless run, and their own sandboxes cannot nest inside bubblewrap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Preset {
    /// Claude Code in print mode, streaming: `claude -p --output-format stream-json
    /// --verbose --permission-mode bypassPermissions --max-turns 50`, prompt on stdin.
    /// `stream-json` needs `--verbose` with `-p`; `bypassPermissions` lets it edit files
    /// and run commands without asking, which only the fence makes safe; `--max-turns`
    /// bounds a run (<https://docs.claude.com/en/docs/claude-code/headless>,
    /// <https://docs.claude.com/en/docs/claude-code/cli-reference>). It reads `CLAUDE.md`.
    ClaudeCode,
    /// `OpenAI` Codex: `codex exec --json --sandbox danger-full-access -`, prompt on stdin
    /// (`-`). `exec` never asks for approval; Codex's own Landlock/seccomp sandbox cannot
    /// run inside the fence's, and its docs advise `danger-full-access` where the
    /// environment sandboxes it (<https://github.com/openai/codex/blob/main/docs/config.md>,
    /// openai/codex issue 9292). It reads `AGENTS.md`.
    Codex,
    /// Aider: `aider --message-file {prompt_file} --yes-always --no-auto-commits
    /// --no-check-update --read AGENTS.md`: one message then exit, every confirmation
    /// answered yes, no commits of its own (the factory commits; git metadata is read-only
    /// in the fence), no update check, and the instruction layer as a read-only file
    /// (<https://aider.chat/docs/scripting.html>, <https://aider.chat/docs/usage/conventions.html>).
    Aider,
}

impl Preset {
    /// The preset's kebab-case name (`claude-code`, `codex`, `aider`).
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::ClaudeCode => "claude-code",
            Preset::Codex => "codex",
            Preset::Aider => "aider",
        }
    }

    /// Parses a preset name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "claude-code" | "claude" => Some(Preset::ClaudeCode),
            "codex" => Some(Preset::Codex),
            "aider" => Some(Preset::Aider),
            _ => None,
        }
    }
}

/// A CLI agent run as a child process in the worktree.
///
/// The fence around each call (the source of each behaviour in brackets):
/// - the working directory is the worktree ([`Workspace::root`]);
/// - the environment is cleared and set to [`Workspace::env`] only (an allowlist);
/// - the process gets its own process group (`setpgid(0, 0)`), and on timeout, on output past
///   the cap, and after it exits, the whole group is sent `SIGKILL` (`killpg(2)`), so
///   grandchildren cannot outlive the call;
/// - stdout + stderr are captured up to [`ProcessLimits::output_bytes`](crate::ProcessLimits) bytes and
///   written to a transcript in [`Workspace::artifacts_dir`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandAgent {
    /// The label used in reports (`claude-code`, `my-agent`).
    pub name: String,
    /// The program to run, looked up on the allowed `PATH` (or an absolute path).
    pub program: String,
    /// Its arguments; `{prompt_file}` is replaced by the prompt file's path.
    pub args: Vec<String>,
    /// How the prompt is passed.
    pub prompt: PromptMode,
    /// How stdout is parsed.
    pub format: OutputFormat,
    /// Turns reported tokens into USD when the tool reports no cost (`[prices]`).
    #[serde(default, skip_serializing_if = "Prices::is_empty")]
    pub prices: Prices,
}

impl CommandAgent {
    /// A plain agent: `program args...`, prompt on stdin, no usage parsing.
    pub fn new(program: impl Into<String>, args: Vec<String>) -> Self {
        let program = program.into();
        CommandAgent {
            name: Path::new(&program)
                .file_name()
                .map_or_else(|| program.clone(), |n| n.to_string_lossy().into_owned()),
            program,
            args,
            prompt: PromptMode::Stdin,
            format: OutputFormat::Plain,
            prices: Prices::default(),
        }
    }

    /// The agent for `preset`, with its documented command line.
    pub fn preset(preset: Preset) -> Self {
        let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
        match preset {
            Preset::ClaudeCode => CommandAgent {
                name: preset.as_str().into(),
                program: "claude".into(),
                args: s(&[
                    "-p",
                    "--output-format",
                    "stream-json",
                    "--verbose",
                    "--permission-mode",
                    "bypassPermissions",
                    "--max-turns",
                    "50",
                ]),
                prompt: PromptMode::Stdin,
                format: OutputFormat::ClaudeJson,
                prices: Prices::default(),
            },
            Preset::Codex => CommandAgent {
                name: preset.as_str().into(),
                program: "codex".into(),
                args: s(&["exec", "--json", "--sandbox", "danger-full-access", "-"]),
                prompt: PromptMode::Stdin,
                format: OutputFormat::CodexJsonl,
                prices: Prices::default(),
            },
            Preset::Aider => CommandAgent {
                name: preset.as_str().into(),
                program: "aider".into(),
                args: s(&[
                    "--message-file",
                    "{prompt_file}",
                    "--yes-always",
                    "--no-auto-commits",
                    "--no-check-update",
                    "--read",
                    "AGENTS.md",
                ]),
                prompt: PromptMode::File,
                format: OutputFormat::Aider,
                prices: Prices::default(),
            },
        }
    }

    /// The arguments of one call: `{prompt_file}` replaced by `prompt_file`.
    pub fn args_for(&self, prompt_file: &Path) -> Vec<String> {
        self.args
            .iter()
            .map(|a| a.replace("{prompt_file}", &prompt_file.to_string_lossy()))
            .collect()
    }

    /// The same agent pricing reported tokens with `prices` when the tool reports no cost.
    #[must_use]
    pub fn with_prices(mut self, prices: Prices) -> Self {
        self.prices = prices;
        self
    }

    /// The same agent running `program` instead (e.g. an absolute path to `claude`).
    #[must_use]
    pub fn with_program(mut self, program: impl Into<String>) -> Self {
        self.program = program.into();
        self
    }
}

pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

async fn write_file(path: &Path, bytes: &[u8], action: &'static str) -> Result<(), Error> {
    tokio::fs::write(path, bytes)
        .await
        .map_err(|source| Error::Io {
            action,
            path: path.to_owned(),
            source,
        })
}

/// How a CLI agent process ended, for [`CommandAgent::finish`].
#[derive(Debug, Clone)]
pub struct Finished<'a> {
    /// Captured stdout (possibly cut at the output cap).
    pub stdout: &'a [u8],
    /// Captured stderr.
    pub stderr: &'a [u8],
    /// The exit code, when the process exited (not killed by a signal).
    pub exit_code: Option<i32>,
    /// Whether it exited with status 0.
    pub success: bool,
    /// The limit that stopped it ([`Outcome::TimedOut`] or [`Outcome::OutputCapped`]), if one did.
    pub limit: Option<Outcome>,
    /// Wall time of the call, in ms.
    pub wall_ms: u64,
}

impl CommandAgent {
    /// Turns a finished process into the call's [`AgentReport`]: writes the transcript
    /// ([`transcript_path`]: stdout, then stderr), parses stdout as [`CommandAgent::format`]
    /// for the summary, usage and an error result, and decides the [`Outcome`]: the limit
    /// that stopped it, else `Failed` on a non-zero exit (with the agent's error or the last
    /// stderr line) or on an error result in structured output, else `Completed`.
    ///
    /// Shared by [`CommandAgent`]'s own runner and by runners that start the process another
    /// way (the factory's fenced runner).
    ///
    /// # Errors
    /// [`Error::Io`] when the transcript cannot be written.
    pub async fn finish(
        &self,
        ctx: &TaskContext,
        ws: &Workspace,
        f: Finished<'_>,
    ) -> Result<AgentReport, Error> {
        let transcript = transcript_path(ctx, ws);
        let mut t = Vec::with_capacity(f.stdout.len() + f.stderr.len() + 64);
        t.extend_from_slice(b"--- stdout ---\n");
        t.extend_from_slice(f.stdout);
        t.extend_from_slice(b"\n--- stderr ---\n");
        t.extend_from_slice(f.stderr);
        write_file(&transcript, &t, "write transcript").await?;

        let stdout = String::from_utf8_lossy(f.stdout);
        let mut parsed = parse_output(self.format, &stdout);
        // Plain output: the summary is the last line that is not a contract report line.
        if self.format == OutputFormat::Plain
            && crate::contract::ReportLine::last_in(&stdout).is_some_and(|r| r.summary.is_none())
        {
            parsed.summary = stdout
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| !l.is_empty() && crate::contract::ReportLine::parse(l).is_none())
                .map(str::to_owned);
        }
        let outcome = if let Some(o) = f.limit {
            o
        } else if !f.success {
            Outcome::Failed {
                exit_code: f.exit_code,
                message: parsed.error.clone().unwrap_or_else(|| {
                    let stderr = String::from_utf8_lossy(f.stderr);
                    let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
                    format!(
                        "exited with {}{}",
                        f.exit_code
                            .map_or_else(|| "a signal".to_owned(), |c| format!("status {c}")),
                        last.map(|l| format!(": {}", l.trim())).unwrap_or_default()
                    )
                }),
            }
        } else if let Some(e) = parsed
            .error
            .clone()
            .filter(|_| self.format != OutputFormat::Plain)
        {
            Outcome::Failed {
                exit_code: f.exit_code,
                message: e,
            }
        } else {
            Outcome::Completed
        };
        Ok(AgentReport {
            agent: self.name.clone(),
            replay: false,
            summary: parsed.summary.unwrap_or_default(),
            usage: Usage {
                input_tokens: parsed.input_tokens,
                output_tokens: parsed.output_tokens,
                cost_usd: parsed.cost_usd.or_else(|| {
                    self.prices.cost(
                        parsed.model.as_deref(),
                        parsed.input_tokens,
                        parsed.output_tokens,
                    )
                }),
                wall_ms: f.wall_ms,
            },
            transcript: Some(transcript),
            outcome,
        })
    }
}

#[async_trait]
impl Agent for CommandAgent {
    async fn run(&self, ctx: &TaskContext, ws: &Workspace) -> Result<AgentReport, Error> {
        if self.program.trim().is_empty() {
            return Err(Error::Config("the agent program is empty".into()));
        }
        let started = Instant::now();
        let prepared = crate::contract::prepare(ctx, ws).await?;
        let prompt = prepared.prompt;
        let args = self.args_for(&prepared.prompt_file);

        let mut cmd = Command::new(&self.program);
        cmd.args(&args)
            .current_dir(&ws.root)
            .env_clear()
            .envs(&ws.env)
            .envs(prepared.env);
        let stdin = match self.prompt {
            PromptMode::Stdin => Some(prompt.into_bytes()),
            PromptMode::File => None,
        };
        // The whole group is killed at a limit and after the exit; the output cap is judged
        // by the bytes read once both readers are done (see `lightsout_stdx::process::run`).
        let limits = Limits {
            wall: Duration::from_millis(ws.limits.wall_ms),
            output_bytes: Some(ws.limits.output_bytes),
            drain: false,
            reader_grace: Duration::from_secs(5),
            until: Until::Exit,
        };
        let out = run(cmd, stdin, &limits).await.map_err(|e| match e {
            RunError::Spawn(source) => Error::Spawn {
                program: self.program.clone(),
                source,
            },
            RunError::Wait(e) => Error::Process(e),
        })?;
        let limit_hit = out.limit.map(|l| match l {
            Limit::TimedOut => Outcome::TimedOut,
            Limit::OutputCapped => Outcome::OutputCapped,
        });
        let wall_ms = started.elapsed().as_millis() as u64;

        self.finish(
            ctx,
            ws,
            Finished {
                stdout: &out.stdout,
                stderr: &out.stderr,
                exit_code: out.status.code(),
                success: out.status.success(),
                limit: limit_hit,
                wall_ms,
            },
        )
        .await
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

/// Where `program` would be found with the `PATH` of `env` (`/usr/bin:/bin` without one): a
/// name with a `/` is taken as a path (relative to the working directory `cwd`), a bare
/// name is looked up in each `PATH` directory in order. `None` when no such executable
/// file exists.
pub fn find_program(
    program: &str,
    env: &std::collections::BTreeMap<String, String>,
    cwd: &Path,
) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = cwd.join(program);
        return executable(&p).then_some(p);
    }
    let path = env.get("PATH").map_or("/usr/bin:/bin", String::as_str);
    std::env::split_paths(path)
        .map(|d| cwd.join(d).join(program))
        .find(|p| executable(p))
}

/// The path of the prompt file written for `ctx` in `ws` (by [`CommandAgent`] and
/// [`ReplayAgent`](crate::ReplayAgent)): `<artifacts_dir>/prompt-<task>-<attempt>.md`.
pub fn prompt_path(ctx: &TaskContext, ws: &Workspace) -> PathBuf {
    ws.artifacts_dir.join(format!(
        "prompt-{}-{}.md",
        sanitize(&ctx.task_id),
        ctx.attempt
    ))
}

/// The path of the transcript [`CommandAgent`] writes for `ctx` in `ws`.
pub fn transcript_path(ctx: &TaskContext, ws: &Workspace) -> PathBuf {
    ws.artifacts_dir.join(format!(
        "transcript-{}-{}.log",
        sanitize(&ctx.task_id),
        ctx.attempt
    ))
}
