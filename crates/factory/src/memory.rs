//! [`DecisionMemory`]: `lightsout-memory` (`SQLite`, or `PostgreSQL` on the fleet's store) as the factory's
//! [`Recall`] and [`DiffGuard`].

use crate::stages::{
    AttemptMetrics, BoxError, DiffGuard, GuardFinding, GuardRequest, Lesson, Recall,
};
use crate::{Error, Task};
use async_trait::async_trait;
use lightsout_tune::store::MetricsStore;
use std::path::Path;
use std::sync::Mutex;

/// Decision memory in `.lightsout/memory.db`, or on the fleet's `PostgreSQL` server when the
/// project's `[store] url` is a `postgres://` URL (so every worker shares one memory):
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
    mem: Mutex<lightsout_memory::Memory<lightsout_memory::AnyStore>>,
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
    /// Opens the decision memory: on the `PostgreSQL` server at `store` when it is a
    /// `postgres://` or `postgresql://` URL (the project's `[store] url`; migrations run on
    /// open), else the database at `db` (created). The metrics store stays in `state.db`
    /// beside `db` (importing `metrics.jsonl` there once); context packs get `budget_tokens`.
    ///
    /// # Errors
    /// [`Error::Stage`] when a database or the server cannot be opened or the old metrics
    /// not imported (the server is named without its password).
    pub fn open(db: &Path, store: Option<&str>, budget_tokens: usize) -> Result<Self, Error> {
        if let Some(dir) = db.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        // A lesson retires the first time its requirement passes the holdout: the holdout
        // itself judged enough trials for the gate.
        let mem = match store.filter(|s| lightsout_memory::is_postgres_url(s)) {
            Some(url) => lightsout_memory::Memory::open_location(url),
            None => lightsout_memory::SqliteStore::open(db)
                .map(|s| lightsout_memory::Memory::new(lightsout_memory::AnyStore::Sqlite(s))),
        }
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
        f: impl FnOnce(
            &lightsout_memory::Memory<lightsout_memory::AnyStore>,
        ) -> Result<T, lightsout_memory::Error>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::FailedStage;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Records one failed-checks lesson on REQ-7 through `m`, then drops `m`.
    fn record_one_lesson(m: DecisionMemory, text: &str) {
        block_on(m.record_lesson(&Lesson {
            fingerprint: "0123456789abcdef".into(),
            task_id: "T1".into(),
            requirements: vec!["REQ-7".into()],
            stage: FailedStage::Checks,
            text: text.into(),
        }))
        .unwrap();
        drop(m);
    }

    fn lessons<S: lightsout_memory::Store>(
        mem: &lightsout_memory::Memory<S>,
    ) -> Vec<lightsout_memory::Record> {
        mem.list(
            lightsout_memory::Filter::Current { statuses: vec![] },
            &[lightsout_memory::Kind::Lesson],
        )
        .unwrap()
    }

    /// With a Postgres `[store] url`, a run's lesson lands in the server's memory, where
    /// another worker (another checkout) reads it, and no local `memory.db` is written.
    #[test]
    fn a_postgres_store_url_puts_the_lessons_on_the_server() {
        let url = lightsout_fleet::testing::fresh_database("factory_memory");
        let here = tempfile::tempdir().unwrap();
        let db = here.path().join(".lightsout").join("memory.db");
        let m = DecisionMemory::open(&db, Some(&url), 1000).unwrap();
        record_one_lesson(m, "cargo test failed: overflow in parse_duration");
        assert!(!db.exists(), "the lesson went to a local memory.db");

        let found = lessons(&lightsout_memory::Memory::open_location(&url).unwrap());
        assert_eq!(found.len(), 1, "{found:?}");
        let l = &found[0];
        assert!(
            [&l.title, &l.context, &l.decision]
                .iter()
                .any(|t| t.contains("parse_duration")),
            "{l:?}"
        );
    }

    /// Without a Postgres URL (a `SQLite` claim store) the memory stays in `memory.db`.
    #[test]
    fn without_a_postgres_store_url_the_memory_is_local() {
        let here = tempfile::tempdir().unwrap();
        let db = here.path().join(".lightsout").join("memory.db");
        let m = DecisionMemory::open(&db, Some("state.db"), 1000).unwrap();
        record_one_lesson(m, "cargo test failed");
        assert_eq!(
            lessons(&lightsout_memory::Memory::open(&db).unwrap()).len(),
            1
        );
    }
}
