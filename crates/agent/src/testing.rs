//! Test doubles of [`Agent`] (enabled by the `testing` feature), in the manner of tower-test.

use crate::{Agent, AgentReport, Error, TaskContext, Workspace};
use async_trait::async_trait;
use std::sync::Mutex;

/// An agent whose behaviour is a closure: it may write files into `ws.root` and returns the
/// report (or error) the test wants.
pub struct FnAgent<F> {
    name: String,
    f: F,
}

impl<F> FnAgent<F>
where
    F: Fn(&TaskContext, &Workspace) -> Result<AgentReport, Error> + Send + Sync,
{
    /// An agent named `name` running `f` on each call.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        FnAgent {
            name: name.into(),
            f,
        }
    }
}

impl<F> std::fmt::Debug for FnAgent<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnAgent")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<F> Agent for FnAgent<F>
where
    F: Fn(&TaskContext, &Workspace) -> Result<AgentReport, Error> + Send + Sync,
{
    async fn run(&self, ctx: &TaskContext, ws: &Workspace) -> Result<AgentReport, Error> {
        (self.f)(ctx, ws)
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}

/// Wraps an agent and records every [`TaskContext`] it is given, in call order.
#[derive(Debug, Default)]
pub struct RecordingAgent<A> {
    inner: A,
    calls: Mutex<Vec<TaskContext>>,
}

impl<A: Agent> RecordingAgent<A> {
    /// Records calls to `inner`.
    pub fn new(inner: A) -> Self {
        RecordingAgent {
            inner,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// The contexts seen so far.
    pub fn calls(&self) -> Vec<TaskContext> {
        lightsout_stdx::lock(&self.calls).clone()
    }
}

#[async_trait]
impl<A: Agent> Agent for RecordingAgent<A> {
    async fn run(&self, ctx: &TaskContext, ws: &Workspace) -> Result<AgentReport, Error> {
        lightsout_stdx::lock(&self.calls).push(ctx.clone());
        self.inner.run(ctx, ws).await
    }
    fn name(&self) -> String {
        self.inner.name()
    }
}

/// An agent that always completes without touching the worktree.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopAgent;

#[async_trait]
impl Agent for NoopAgent {
    async fn run(&self, _ctx: &TaskContext, _ws: &Workspace) -> Result<AgentReport, Error> {
        Ok(AgentReport::completed("noop", "did nothing"))
    }
    fn name(&self) -> String {
        "noop".into()
    }
}
