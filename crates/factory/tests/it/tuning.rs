//! The tuner in the run loop: each task of a tuned kind runs the variant the bandit chose
//! (its profile, prompt template and model); every choice is audited with the seed and
//! evidence that reproduce it; a benched variant is never chosen.

use lightsout_agent::testing::FnAgent;
use lightsout_agent::{AgentReport, Usage};
use lightsout_factory::{
    Config, Factory, Plan, RequirementResult, RunOptions, RunState, Task, TaskPhase, Verdict,
};
use lightsout_tune::choose::{PlannedTask, RunChoices};
use lightsout_tune::config::TuningConfig;
use lightsout_tune::store::MetricsStore;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::git;

const CONFIG: &str = r#"
[agents]
default = "big"

[agent.big]
preset = "replay"
trajectory = "none"

[agent.small]
preset = "replay"
trajectory = "none"

[tuning]
incumbent = "A"
seed = 5

[tuning.bounds]
kinds = ["code"]
max_exploration = 0.5
bench_below = 0.5

[[tuning.variant]]
name = "A"
agent = "big"

[[tuning.variant]]
name = "B"
agent = "small"
model = "cheap"
prompt = "b.md"

[[tuning.variant]]
name = "C"
agent = "small"
model = "hopeless"
"#;

/// Earlier runs' attempts: A good and dear, B nearly as good and cheap, C benched.
fn evidence(repo: &std::path::Path) {
    let (mut store, _) = MetricsStore::open_project(repo).unwrap();
    let mut recs = Vec::new();
    for (variant, n, passes, usd) in [("A", 20, 18, 1.0), ("B", 20, 17, 0.3), ("C", 20, 1, 0.1)] {
        for i in 0..n {
            let line = format!(
                r#"{{"run_id":"old","task_id":"{variant}{i}","attempt":1,"agent":"x","usage":{{"input_tokens":1,"output_tokens":1,"cost_usd":{usd},"wall_ms":1}},"passed":{},"task_kind":"code","variant":"{variant}"}}"#,
                i < passes
            );
            recs.extend(lightsout_tune::record::parse_jsonl(&line).0);
        }
    }
    store.record_all(&recs).unwrap();
}

fn task(id: &str) -> Task {
    Task {
        id: id.into(),
        title: format!("write {id}.txt"),
        kind: "code".into(),
        requirement_ids: vec![format!("R-{id}")],
        estimate_hours: 1.0,
        ..Task::default()
    }
}

/// What each agent call saw: task → (profile, variant name, model, prompt file text).
type Seen = Arc<Mutex<BTreeMap<String, (String, String, Option<String>, String)>>>;

fn agent(profile: &'static str, seen: Seen) -> Arc<dyn lightsout_agent::Agent> {
    Arc::new(FnAgent::new(profile, move |ctx, ws| {
        let v = ws.variant.clone().unwrap_or_default();
        let prompt = lightsout_agent::prompt_for(ctx, ws);
        seen.lock().unwrap().insert(
            ctx.task_id.clone(),
            (profile.to_owned(), v.name, v.model, prompt),
        );
        std::fs::write(ws.root.join(format!("{}.txt", ctx.task_id)), "ok").unwrap();
        let mut r = AgentReport::completed(profile, "wrote it");
        r.usage = Usage {
            input_tokens: 10,
            output_tokens: 1,
            cost_usd: Some(0.01),
            wall_ms: 1,
        };
        Ok(r)
    }))
}

fn evaluator() -> impl lightsout_factory::Evaluator {
    lightsout_factory::testing::FnEvaluator(|req: &lightsout_factory::EvalRequest| {
        let results: Vec<RequirementResult> = req
            .requirements
            .iter()
            .chain(&req.regression)
            .map(|r| RequirementResult {
                id: r.clone(),
                trials: 1,
                passed: 1,
                category: None,
            })
            .collect();
        Ok(Verdict {
            passed: true,
            feedback: String::new(),
            requirements: results,
        })
    })
}

/// How many tasks the tuned run plans: `T1` to `T8`.
const TASKS: usize = 8;

/// A repository with `b.md` (variant B's prompt template) on main and earlier runs'
/// [`evidence`]; a factory over it whose agents record what they saw in `seen`.
fn tuned_factory(repo: &std::path::Path, seen: &Seen) -> Factory {
    git(repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join(".gitignore"), ".lightsout/\n").unwrap();
    std::fs::write(repo.join("b.md"), "Be brief.\n\n{{task}}\n").unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-qm", "init"]);
    evidence(repo);
    let config = Config::parse(CONFIG, repo).unwrap();
    Factory::new(repo, config)
        .unwrap()
        .with_agent("big", agent("big", seen.clone()))
        .with_agent("small", agent("small", seen.clone()))
        .with_evaluator(Arc::new(evaluator()))
}

/// The audit log: a run-level entry with what reproduces the choices, then one per task.
/// Returns the entries and the run-level one as [`RunChoices`] (without choices).
fn assert_the_audit_log_records_the_choices(
    repo: &std::path::Path,
) -> (Vec<serde_json::Value>, RunChoices) {
    let audit = std::fs::read_to_string(repo.join(".lightsout/runs/tuned/audit.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "variant_choice")
        .collect();
    assert_eq!(entries.len(), 1 + TASKS);
    let head = &entries[0]["details"];
    assert!(entries[0]["task"].is_null());
    let recorded = RunChoices {
        seed: head["seed"].as_u64().unwrap(),
        config_seed: head["config_seed"].as_u64().unwrap(),
        attempts_seen: usize::try_from(head["attempts_seen"].as_u64().unwrap()).unwrap(),
        exploration_allowed: 0,
        evidence: serde_json::from_value(head["evidence"].clone()).unwrap(),
        defaults: serde_json::from_value(head["defaults"].clone()).unwrap(),
        tasks: serde_json::from_value::<Vec<PlannedTask>>(head["tasks"].clone()).unwrap(),
        choices: Vec::new(),
    };
    assert_eq!(recorded.attempts_seen, 60);
    assert_eq!(recorded.config_seed, 5);
    (entries, recorded)
}

/// Each audited choice (`entries` after the run-level one) is `again`'s, replayed from the
/// seed and evidence, never the benched C; and the task ran under it. Returns each task's
/// variant.
fn assert_each_task_ran_its_reproduced_choice(
    again: &RunChoices,
    entries: &[serde_json::Value],
    run_seed: u64,
    seen: &Seen,
) -> BTreeMap<String, String> {
    let seen = seen.lock().unwrap().clone();
    let mut variants = BTreeMap::new();
    for (c, e) in again.choices.iter().zip(&entries[1..]) {
        let d = &e["details"];
        assert_eq!(e["task"], c.task_id.as_str());
        assert_eq!(d["variant"], c.variant.as_str(), "{e:#}");
        assert_eq!(d["seed"], run_seed);
        assert_eq!(d["mode"], c.mode());
        assert!(d["posterior_means"]["C"].is_f64(), "{e:#}");
        assert_eq!(d["benched"], serde_json::json!(["C"]), "{e:#}");
        assert_ne!(c.variant, "C", "a benched variant was chosen");
        // The task ran under its choice: the variant's profile, model and template.
        let (profile, name, model, prompt) = &seen[&c.task_id];
        assert_eq!(name, &c.variant);
        assert_eq!(profile, if c.variant == "A" { "big" } else { "small" });
        assert_eq!(
            model.as_deref(),
            if c.variant == "B" {
                Some("cheap")
            } else {
                None
            }
        );
        assert_eq!(
            prompt.starts_with("Be brief.\n\n# Task "),
            c.variant == "B",
            "{prompt}"
        );
        variants.insert(c.task_id.clone(), c.variant.clone());
    }
    assert!(again.choices.iter().filter(|c| c.explored).count() <= 4);
    // Both live variants ran (so the template and model checks above were exercised).
    assert!(variants.values().any(|v| v == "A") && variants.values().any(|v| v == "B"));
    variants
}

/// The journal holds the same choices as `again` with what reproduces them, and the
/// report shows them.
fn assert_the_journal_and_the_report_hold_the_choices(
    repo: &std::path::Path,
    state: &RunState,
    cfg: &TuningConfig,
    again: &RunChoices,
) {
    let journaled = state.variant_choices.clone().expect("choices journaled");
    assert_eq!(journaled.choices, again.choices);
    assert_eq!(lightsout_tune::choose::replay(cfg, &journaled), journaled);
    let report = lightsout_factory::build_report(repo, "tuned").unwrap();
    let vc = report
        .variant_choices
        .clone()
        .expect("a variant choices section");
    assert_eq!(vc.seed, journaled.seed);
    assert_eq!(vc.choices.len(), TASKS);
    for (r, c) in vc.choices.iter().zip(&journaled.choices) {
        assert_eq!(
            (&r.task, &r.variant, r.mode.as_str()),
            (&c.task_id, &c.variant, c.mode())
        );
        assert_eq!(r.benched, vec!["C".to_owned()]);
    }
    let html = lightsout_factory::report::render_html(&report);
    assert!(html.contains("<h2>Variant choices</h2>"));
}

/// The run-metrics store names each attempt's variant (as in `variants`), profile and model.
fn assert_the_metrics_name_each_attempts_variant(
    repo: &std::path::Path,
    variants: &BTreeMap<String, String>,
) {
    let (store, _) = MetricsStore::open_project(repo).unwrap();
    let (recs, _) = store.records().unwrap();
    let run: Vec<_> = recs.iter().filter(|r| r.run_id == "tuned").collect();
    assert_eq!(run.len(), TASKS);
    for r in run {
        assert_eq!(r.variant.as_ref(), variants.get(&r.task_id), "{r:?}");
        assert_eq!(r.task_kind.as_deref(), Some("code"));
    }
}

#[tokio::test]
async fn each_task_runs_its_audited_choice_reproducible_from_the_seed_and_never_a_benched_one() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path();
    let seen: Seen = Arc::default();
    let factory = tuned_factory(repo, &seen);
    let plan = Plan {
        tasks: (1..=TASKS).map(|i| task(&format!("T{i}"))).collect(),
    };
    let state = factory
        .run(
            plan,
            RunOptions {
                run_id: Some("tuned".into()),
                jobs: Some(2),
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
    assert!(state.tasks.iter().all(|t| t.status == TaskPhase::Merged));

    let (entries, recorded) = assert_the_audit_log_records_the_choices(repo);
    // Reproduced from the seed and the recorded evidence alone.
    let cfg = lightsout_tune::config::load(CONFIG).unwrap().unwrap();
    let again = lightsout_tune::choose::replay(&cfg, &recorded);
    assert_eq!(again.exploration_allowed, 4);
    let variants =
        assert_each_task_ran_its_reproduced_choice(&again, &entries, recorded.seed, &seen);
    assert_the_journal_and_the_report_hold_the_choices(repo, &state, &cfg, &again);
    assert_the_metrics_name_each_attempts_variant(repo, &variants);
}
