//! A run's variant choices: the [`Bandit`] asked once per planned task of a tuned kind, in
//! plan order, before any task starts, with everything needed to explain and reproduce them.
//!
//! [`choose`] snapshots the evidence (per kind and variant: first attempts, first passes,
//! median USD) and the promoted defaults into [`RunChoices`], derives the seed
//! ([`crate::show::seed_for`]: `[tuning] seed` mixed with the attempts recorded) and draws
//! every pick from one `ChaCha8` stream seeded with it. [`replay`] recomputes the picks from
//! a recorded [`RunChoices`] alone (its evidence, defaults, seed and task list), so a run's
//! choices can be checked later, whatever has been recorded since.
//!
//! Invariant: a chosen variant is a declared, eligible variant of a kind in
//! `[tuning.bounds] kinds` (never a benched one unless it is the incumbent, which is never
//! benched); tasks of other kinds get no choice and run the profile `[agents]` names.

use crate::config::TuningConfig;
use crate::rollup::Rollup;
use crate::select::{Bandit, Draw, Evidence, Pick, PickReason, RunExploration};
use crate::state::TuningState;
use rand::SeedableRng as _;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A planned task the run may choose a variant for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTask {
    /// The task id.
    pub task_id: String,
    /// Its kind.
    pub kind: String,
}

/// The variant chosen for one task, and why: what the audit log, the journal and the report
/// record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantChoice {
    /// The task.
    pub task_id: String,
    /// Its kind.
    pub kind: String,
    /// The chosen variant.
    pub variant: String,
    /// The variant's `[agent.<name>]` profile.
    pub agent_profile: String,
    /// The variant's model, when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The variant's prompt template file, relative to `lightsout.toml`, when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<PathBuf>,
    /// The kind's default when chosen (the promoted one, else the incumbent).
    pub default: String,
    /// Why ([`PickReason`]).
    pub reason: PickReason,
    /// Whether it spent exploration (chose other than the default).
    pub explored: bool,
    /// Posterior mean of the first-attempt pass rate of every eligible variant on the kind.
    pub posterior_means: BTreeMap<String, f64>,
    /// Variants benched on the kind (Wilson upper bound under `bench_below`): never picked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub benched: Vec<String>,
    /// The sampled pass rates and objectives compared (empty when nothing was sampled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub draws: Vec<Draw>,
    /// One line for people ([`Pick::explain`]).
    pub explanation: String,
}

impl VariantChoice {
    /// `explore` or `exploit`: whether the pick left the default.
    pub fn mode(&self) -> &'static str {
        if self.explored { "explore" } else { "exploit" }
    }
}

/// Every choice of a run, with the inputs that reproduce them ([`replay`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunChoices {
    /// The seed of the run's `ChaCha8` stream.
    pub seed: u64,
    /// `[tuning] seed` it was derived from.
    pub config_seed: u64,
    /// Attempts recorded in the metrics store when the choices were made.
    pub attempts_seen: usize,
    /// Picks off the default the run may make (`floor(max_exploration × tuned tasks)`).
    pub exploration_allowed: u32,
    /// The evidence the bandit saw: kind → variant → evidence (declared variants only).
    pub evidence: BTreeMap<String, BTreeMap<String, Evidence>>,
    /// Promoted defaults in force: kind → variant.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub defaults: BTreeMap<String, String>,
    /// The tasks asked about, in plan order (tuned kinds only).
    pub tasks: Vec<PlannedTask>,
    /// One choice per task of `tasks`, in the same order.
    pub choices: Vec<VariantChoice>,
}

impl RunChoices {
    /// The choice for `task_id`.
    pub fn for_task(&self, task_id: &str) -> Option<&VariantChoice> {
        self.choices.iter().find(|c| c.task_id == task_id)
    }
}

/// Chooses a variant for every task of `tasks` whose kind `cfg` tunes, from the evidence of
/// `rollup` and the defaults of `state`. Deterministic: the same inputs give the same
/// choices.
pub fn choose(
    cfg: &TuningConfig,
    rollup: &Rollup,
    state: &TuningState,
    tasks: &[PlannedTask],
) -> RunChoices {
    let b = crate::show::bandit(cfg, rollup, state);
    let mut evidence: BTreeMap<String, BTreeMap<String, Evidence>> = BTreeMap::new();
    for kind in &cfg.bounds.kinds {
        for v in &cfg.variants {
            let e = b.evidence(kind, &v.name);
            if e != Evidence::default() {
                evidence
                    .entry(kind.clone())
                    .or_default()
                    .insert(v.name.clone(), e);
            }
        }
    }
    let defaults = state
        .defaults
        .iter()
        .map(|(k, p)| (k.clone(), p.variant.clone()))
        .collect();
    let inputs = RunChoices {
        seed: crate::show::seed_for(cfg, rollup),
        config_seed: cfg.seed,
        attempts_seen: rollup.attempts,
        exploration_allowed: 0,
        evidence,
        defaults,
        tasks: tasks
            .iter()
            .filter(|t| cfg.tunes(&t.kind))
            .cloned()
            .collect(),
        choices: Vec::new(),
    };
    replay(cfg, &inputs)
}

/// The choices `recorded`'s inputs give under `cfg`: its evidence, defaults, seed and tasks
/// (its own choices are ignored and recomputed). Equal to `recorded` exactly when the run
/// chose as the bandit says.
pub fn replay(cfg: &TuningConfig, recorded: &RunChoices) -> RunChoices {
    let mut b = Bandit::new(cfg);
    for (kind, m) in &recorded.evidence {
        for (variant, e) in m {
            b.set_evidence(kind, variant, *e);
        }
    }
    for (kind, v) in &recorded.defaults {
        b.set_default(kind, v);
    }
    let planned = u32::try_from(recorded.tasks.len()).unwrap_or(u32::MAX);
    let mut run = RunExploration::new(cfg.bounds.max_exploration, planned);
    let mut rng = ChaCha8Rng::seed_from_u64(recorded.seed);
    let choices = recorded
        .tasks
        .iter()
        .map(|t| {
            let arms = b.arms(&t.kind);
            let pick = b.pick(&t.kind, &mut run, &mut rng);
            choice(cfg, t, &arms, pick)
        })
        .collect();
    RunChoices {
        exploration_allowed: run.allowed,
        choices,
        ..recorded.clone()
    }
}

fn choice(
    cfg: &TuningConfig,
    t: &PlannedTask,
    arms: &[crate::select::Arm],
    pick: Pick,
) -> VariantChoice {
    let v = cfg.variant(&pick.variant);
    VariantChoice {
        task_id: t.task_id.clone(),
        kind: t.kind.clone(),
        variant: pick.variant.clone(),
        agent_profile: v.map(|v| v.agent.clone()).unwrap_or_default(),
        model: v.and_then(|v| v.model.clone()),
        prompt: v.and_then(|v| v.prompt.clone()),
        default: pick.default.clone(),
        reason: pick.reason,
        explored: pick.explored,
        posterior_means: arms.iter().map(|a| (a.variant.clone(), a.mean)).collect(),
        benched: arms
            .iter()
            .filter(|a| a.benched)
            .map(|a| a.variant.clone())
            .collect(),
        explanation: pick.explain(),
        draws: pick.draws,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::parse_jsonl;

    const CFG: &str = r#"
[agent.big]
preset = "claude-code"
[agent.small]
preset = "claude-code"
[tuning]
incumbent = "A"
seed = 11
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
prompt = "prompts/b.md"
[[tuning.variant]]
name = "C"
agent = "small"
model = "cheapest"
"#;

    fn lines(variant: &str, n: u32, passes: u32, usd: f64) -> String {
        (0..n)
            .map(|i| {
                format!(
                    r#"{{"run_id":"r","task_id":"{variant}{i}","attempt":1,"agent":"x","usage":{{"input_tokens":1,"output_tokens":1,"cost_usd":{usd},"wall_ms":1}},"passed":{},"task_kind":"code","variant":"{variant}"}}"#,
                    i < passes
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn tasks(n: usize) -> Vec<PlannedTask> {
        let mut t: Vec<PlannedTask> = (0..n)
            .map(|i| PlannedTask {
                task_id: format!("T{i}"),
                kind: "code".into(),
            })
            .collect();
        t.push(PlannedTask {
            task_id: "D1".into(),
            kind: "docs".into(),
        });
        t
    }

    fn evidence() -> Rollup {
        // A good and dear, B nearly as good and cheap, C bad: benched.
        let text = [
            lines("A", 30, 27, 1.0),
            lines("B", 30, 25, 0.3),
            lines("C", 20, 2, 0.1),
        ]
        .join("\n");
        crate::rollup::rollup(&parse_jsonl(&text).0)
    }

    #[test]
    fn choices_are_reproducible_from_the_recorded_seed_and_evidence() {
        let cfg = crate::config::load(CFG).unwrap().unwrap();
        let r = evidence();
        let state = TuningState::default();
        let a = choose(&cfg, &r, &state, &tasks(10));
        assert_eq!(a, choose(&cfg, &r, &state, &tasks(10)), "same inputs");
        // Only tuned kinds get a choice.
        assert_eq!(a.choices.len(), 10);
        assert!(a.for_task("D1").is_none());
        // Recorded (as JSON, as the journal keeps it), then replayed alone.
        let back: RunChoices = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(replay(&cfg, &back), a);
        // Another seed, other draws: the seed is what reproduces them.
        let mut other = back.clone();
        other.seed ^= 1;
        let draws = |c: &RunChoices| -> Vec<f64> {
            c.choices
                .iter()
                .flat_map(|c| c.draws.iter().map(|d| d.pass))
                .collect()
        };
        assert_ne!(draws(&replay(&cfg, &other)), draws(&a));
    }

    #[test]
    fn a_benched_variant_is_never_chosen_and_exploration_stays_in_bounds() {
        let cfg = crate::config::load(CFG).unwrap().unwrap();
        let r = evidence();
        for seed in 0..200 {
            let mut cfg = cfg.clone();
            cfg.seed = seed;
            let c = choose(&cfg, &r, &TuningState::default(), &tasks(10));
            assert_eq!(c.exploration_allowed, 5);
            let explored = c.choices.iter().filter(|c| c.explored).count();
            assert!(explored <= 5, "seed {seed}: {explored} explorations");
            for ch in &c.choices {
                assert_eq!(ch.benched, vec!["C".to_owned()], "seed {seed}");
                assert_ne!(ch.variant, "C", "seed {seed}: benched C picked");
                assert!(ch.draws.iter().all(|d| d.variant != "C"));
                assert_eq!(ch.mode(), if ch.explored { "explore" } else { "exploit" });
                let v = cfg.variant(&ch.variant).unwrap();
                assert_eq!(ch.agent_profile, v.agent);
                assert_eq!(ch.model, v.model);
                assert_eq!(ch.prompt, v.prompt);
            }
        }
    }
}
