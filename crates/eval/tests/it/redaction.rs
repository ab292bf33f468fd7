//! The redacted feedback never carries scenario text, steps or values.

use crate::support::{serve, suite, target_app};
use lightsout_eval::result::{Failure, StepResult, TrialResult};
use lightsout_eval::stats::{Sequential, TrialStats};
use lightsout_eval::{
    CheckKind, FailureCategory, GatePolicy, LeakScanner, RedactLevel, RunOptions, RunResult,
    Runner, ScenarioResult, StepLibrary, StepStatus, Summary, TargetConfig, feedback,
};
use lightsout_spec::StepKeyword;
use proptest::prelude::*;

const SECRET_SUITE: &str = r#"<!-- canary: zq-canary-91c2e0 -->
## Scenario: the zqmarmot endpoint rejects purple zqwombat tokens politely
Satisfies: REQ-42
Tags: @critical

- **WHEN** I send `GET /echo?animal=zqmarmot` with header `Authorization: Bearer zqwombat-777`
- **THEN** the status is 418
- **AND** the JSON at `$.args.animal` is "zqotter"

## Scenario: the zqpangolin body must mention zqaardvark somewhere visible
Satisfies: REQ-43

- **WHEN** I send `POST /items` with JSON `{"zqkey":"zqvalue-55"}`
- **THEN** the status is 201
- **AND** the body contains `zqaardvark`
"#;

fn secrets() -> Vec<&'static str> {
    vec![
        "zqmarmot",
        "zqwombat",
        "zqotter",
        "zqpangolin",
        "zqaardvark",
        "zqkey",
        "zqvalue",
        "zq-canary",
        "/echo",
        "/items",
        "418",
        "Bearer",
        "animal",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_feedback_names_requirement_and_category_but_no_scenario_text() {
    let url = serve(target_app()).await;
    let lib = StepLibrary::builtin();
    let s = suite(&[("secret.scenario.md", SECRET_SUITE)], &lib);
    let run = Runner::new(lib)
        .unwrap()
        .run(
            &s,
            &TargetConfig::Url(url),
            &RunOptions {
                trials: 2,
                max_trials: 2,
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(run.summary.failed, 2);
    // The full result does carry the values (so the test is not vacuous) ...
    let json = run.to_json().unwrap();
    assert!(json.contains("zqmarmot") && json.contains("zqaardvark"));
    let none = feedback(&run, RedactLevel::None);
    assert!(none.contains("zqmarmot"), "{none}");

    // ... the default feedback does not.
    let fb = feedback(&run, RedactLevel::default());
    for s in secrets() {
        assert!(!fb.contains(s), "feedback leaks `{s}`:\n{fb}");
    }
    assert!(fb.contains("REQ-42") && fb.contains("REQ-43"), "{fb}");
    // The first failure already puts the Wilson upper bound (0.79) below the floor's 0.95:
    // the sequential gate stops that scenario after one trial.
    assert!(fb.contains("1 of 1 trials failed: status mismatch"), "{fb}");
    // Not even 3 consecutive words of scenario text, and no canary.
    let scanner = LeakScanner::with_shingle_words(&s, 3);
    assert!(
        scanner.scan(&fb).is_empty(),
        "{:?}\n{fb}",
        scanner.scan(&fb)
    );
    // The scanner does catch the unredacted feedback.
    assert!(!LeakScanner::from_suite(&s).scan(&none).is_empty());

    for level in [RedactLevel::Category, RedactLevel::Full] {
        let fb = feedback(&run, level);
        for s in secrets().into_iter().chain(["REQ-42"]) {
            assert!(!fb.contains(s), "{level:?} feedback leaks `{s}`:\n{fb}");
        }
    }
}

fn word() -> impl Strategy<Value = String> {
    "[a-z]{3,9}".prop_map(|w| format!("zq{w}"))
}

fn sentence() -> impl Strategy<Value = String> {
    proptest::collection::vec(word(), 1..10).prop_map(|ws| ws.join(" "))
}

fn scenario(name: String, steps: &[String], msg: &str, passes: u32) -> ScenarioResult {
    let trials: Vec<TrialResult> = (0..3)
        .map(|i| {
            let ok = i < passes;
            TrialResult {
                index: i,
                passed: ok,
                duration_ms: 1.0,
                failure: (!ok).then_some(FailureCategory::Json),
                steps: steps
                    .iter()
                    .enumerate()
                    .map(|(j, t)| StepResult {
                        keyword: StepKeyword::Then,
                        text: t.clone(),
                        status: if ok || j == 0 {
                            StepStatus::Passed
                        } else {
                            StepStatus::Failed
                        },
                        duration_ms: 1.0,
                        failure: (!ok && j == 1).then(|| Failure {
                            category: FailureCategory::Json,
                            message: msg.to_owned(),
                        }),
                    })
                    .collect(),
            }
        })
        .collect();
    ScenarioResult {
        id: lightsout_eval::scenario::scenario_id(std::path::Path::new("p.scenario.md"), &name),
        name,
        path: "p.scenario.md".into(),
        satisfies: vec!["REQ-1".into()],
        tags: vec!["@critical".into()],
        kind: CheckKind::Behavioural,
        guard: true,
        regression: passes < 3,
        stats: TrialStats::new(passes, 3, 3),
        stopped: Sequential::Done,
        duration_ms: 3.0,
        trials,
        // A human's reason for a twin's state is no holdout text, but it stays out of the
        // agents' feedback all the same.
        stale_twins: vec![lightsout_eval::TwinEvidence {
            name: "slack".into(),
            state: lightsout_eval::TwinState::Drifted,
            since: Some("2026-12-07T00:00:00Z".into()),
            reason: Some(format!("marked by hand: {msg}")),
        }],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn redacted_feedback_never_contains_scenario_words(
        items in proptest::collection::vec((sentence(), proptest::collection::vec(sentence(), 2..5), sentence(), 0u32..3), 1..5),
    ) {
        let scenarios: Vec<ScenarioResult> = items
            .into_iter()
            .map(|(n, st, m, p)| scenario(n, &st, &m, p))
            .collect();
        let policy = GatePolicy::from_toml("[[rule]]\ntag = \"@critical\"\nmin_lower_bound = 0.9\n[[rule]]\nno_regressions = true\n").unwrap();
        let run = RunResult {
            schema_version: lightsout_eval::SCHEMA_VERSION,
            started_at: String::new(),
            duration_ms: 1.0,
            target: "http://127.0.0.1:1".into(),
            trials: 3,
            max_trials: 3,
            summary: Summary::of(&scenarios),
            gate: policy.evaluate(&scenarios),
            scenarios,
            policy,
            twins: Vec::new(),
        };
        for level in [RedactLevel::Requirement, RedactLevel::Category, RedactLevel::Full] {
            let fb = feedback(&run, level);
            // Every scenario word starts with `zq`; none may appear.
            prop_assert!(!fb.contains("zq"), "{level:?}:\n{fb}");
        }
    }
}
