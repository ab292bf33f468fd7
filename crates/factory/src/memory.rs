//! [`DecisionMemory`]: `lightsout-memory` (`SQLite` decision memory) as the factory's
//! [`Recall`] and [`DiffGuard`].

use crate::stages::{
    AttemptMetrics, BoxError, DiffGuard, GuardFinding, GuardRequest, Lesson, Recall,
};
use crate::{Error, Task};
use async_trait::async_trait;
use lightsout_tune::store::MetricsStore;
use std::path::Path;
use std::sync::Mutex;

/// Decision memory in `.lightsout/memory.db`:
/// - context packs ([`lightsout_memory::Memory::context_pack`]) built from the task's
///   title, requirements and spec excerpt, within `budget_tokens`;
/// - guards ([`lightsout_memory::Memory::check_diff_text`]) on each attempt's diff: every
///   violation of a settled decision is a blocking finding;
/// - lessons ([`lightsout_memory::Memory::record_lesson`]) keyed by requirement and
///   `stage: category`; a passing attempt records the requirement green, which retires its
///   lessons at once. A task's context pack holds every lesson in force for its
///   requirements, whatever its words.
///
/// Per-attempt metrics go to the run-metrics store ([`MetricsStore`]) in the state database
/// beside the memory database (`.lightsout/state.db`), one transaction per attempt; the
/// `metrics.jsonl` older runs wrote there is imported into it once, when it is opened.
pub struct DecisionMemory {
    mem: Mutex<lightsout_memory::Memory>,
    metrics: Mutex<MetricsStore>,
    budget_tokens: usize,
}

impl std::fmt::Debug for DecisionMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionMemory")
            .field("metrics", &lightsout_stdx::lock(&self.metrics).location())
            .finish_non_exhaustive()
    }
}

fn mem_err(e: impl std::fmt::Display) -> Error {
    Error::Stage {
        stage: "memory",
        message: e.to_string(),
    }
}

impl DecisionMemory {
    /// Opens (creating) the memory database at `db` and the metrics store in `state.db`
    /// beside it (importing `metrics.jsonl` there once); context packs get `budget_tokens`.
    ///
    /// # Errors
    /// [`Error::Stage`] when a database cannot be opened or the old metrics not imported.
    pub fn open(db: &Path, budget_tokens: usize) -> Result<Self, Error> {
        if let Some(dir) = db.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        // A lesson retires the first time its requirement passes the holdout: the holdout
        // itself judged enough trials for the gate.
        let mem = lightsout_memory::Memory::open(db)
            .map_err(mem_err)?
            .with_retire_after(1);
        let mut metrics = MetricsStore::open(&db.with_file_name(lightsout_tune::store::STATE_DB))
            .map_err(mem_err)?;
        metrics
            .import_jsonl(&db.with_file_name(lightsout_tune::store::METRICS_JSONL))
            .map_err(mem_err)?;
        Ok(DecisionMemory {
            mem: Mutex::new(mem),
            metrics: Mutex::new(metrics),
            budget_tokens,
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&lightsout_memory::Memory) -> Result<T, lightsout_memory::Error>,
    ) -> Result<T, Error> {
        let m = lightsout_stdx::lock(&self.mem);
        f(&m).map_err(mem_err)
    }
}

#[async_trait]
impl Recall for DecisionMemory {
    async fn context_pack(&self, task: &Task) -> Result<String, BoxError> {
        let query = format!(
            "{} {} {}",
            task.title,
            task.requirement_ids.join(" "),
            task.spec_excerpt
        );
        let opts = lightsout_memory::PackOptions {
            budget_tokens: self.budget_tokens,
            requirements: task.requirement_ids.clone(),
            ..lightsout_memory::PackOptions::default()
        };
        let pack = self.with(|m| m.context_pack_with(&query, &[], &opts))?;
        Ok(pack.markdown)
    }

    async fn record_attempt(&self, m: &AttemptMetrics) -> Result<(), BoxError> {
        if m.passed {
            for r in &m.requirements {
                self.with(|mem| mem.record_green(r))?;
            }
        }
        lightsout_stdx::lock(&self.metrics)
            .record(m)
            .map_err(mem_err)?;
        Ok(())
    }

    async fn record_lesson(&self, l: &Lesson) -> Result<(), BoxError> {
        let category = l
            .text
            .lines()
            .next()
            .and_then(|first| first.rsplit(": ").next())
            .unwrap_or("failed");
        for r in &l.requirements {
            let fp = lightsout_memory::model::Fingerprint {
                requirement: r.clone(),
                category: format!("{}: {category}", l.stage),
                detail: l.text.clone(),
            };
            self.with(|m| m.record_lesson(fp))?;
        }
        Ok(())
    }
}

#[async_trait]
impl DiffGuard for DecisionMemory {
    async fn check(&self, req: &GuardRequest) -> Result<Vec<GuardFinding>, BoxError> {
        let report = self.with(|m| m.check_diff_text(&req.diff))?;
        Ok(report
            .violations
            .into_iter()
            .map(|v| GuardFinding {
                rule: format!("{} ({})", v.record, v.title),
                message: format!("{}: {}", v.path, v.message),
                blocking: true,
            })
            .collect())
    }
}
