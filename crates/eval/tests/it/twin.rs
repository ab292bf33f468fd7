//! Twin steps against a fake twin that speaks the `/__twin/` control API contract.

use crate::support::{TwinState, serve, suite, target_app, twin_app};
use lightsout_eval::{FailureCategory, RunOptions, Runner, StepLibrary, TargetConfig};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

const TWIN: &str = r#"
## Scenario: a message is posted once and a user is seeded
Satisfies: REQ-7

- **GIVEN** twin `slack` has `users` `{"name":"ann"}` as {uid}
- **AND** twin `slack` state at `$.users[0].name` is "ann"
- **AND** twin `slack` state at `$.users[0].id` is "{uid}"
- **WHEN** I send `POST /api/chat.postMessage` to twin `slack` with JSON `{"channel":"C1","text":"hello {uid}"}`
- **THEN** the status is 200
- **AND** twin `slack` received 1 request to `POST /api/chat.postMessage`
- **AND** twin `slack` received a request to `POST /api/chat.postMessage` with body containing `hello U1`
- **AND** twin `slack` received no requests to `GET /api/users.list`

## Scenario: a rate limit fault is injected
Satisfies: REQ-8

- **GIVEN** twin `slack` fails `POST /api/chat.postMessage` with `rate_limit` 1 time
- **WHEN** I send `POST /api/chat.postMessage` to twin `slack` with JSON `{"text":"x"}`
- **THEN** the status is 429
- **AND** twin `slack` received 1 request to `POST /api/chat.postMessage`
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_state_journal_and_faults_through_the_control_api() {
    let url = serve(target_app()).await;
    let st = Arc::new(TwinState::default());
    let twin = serve(twin_app(st.clone())).await;
    let lib = StepLibrary::builtin();
    let s = suite(&[("twin.scenario.md", TWIN)], &lib);
    let mut twins = BTreeMap::new();
    twins.insert("slack".to_owned(), twin);
    let opts = RunOptions {
        trials: 2,
        max_trials: 2,
        twins,
        ..RunOptions::default()
    };
    let run = Runner::new(lib)
        .unwrap()
        .run(&s, &TargetConfig::Url(url), &opts)
        .await
        .unwrap();
    assert_eq!(
        run.scenarios[0].stats.passes, 2,
        "{:#?}",
        run.scenarios[0].trials[0]
    );
    // The second scenario's journal check fails: the faulted call was refused, not journalled.
    let sc = &run.scenarios[1];
    assert_eq!(sc.stats.passes, 0);
    assert_eq!(sc.trials[0].failure, Some(FailureCategory::TwinJournal));
    // Reset before every trial: 2 trials of the first scenario, 1 of the second (its first
    // failure is a clear failure against the floor's 0.95, so the sequential gate stops it).
    assert_eq!(sc.stats.trials, 1);
    assert_eq!(st.resets.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_twin_fails_with_a_hint() {
    let url = serve(target_app()).await;
    let lib = StepLibrary::builtin();
    let s = suite(
        &[(
            "x.scenario.md",
            "## Scenario: x\nSatisfies: R\n\n- **GIVEN** twin `okta` is reset\n",
        )],
        &lib,
    );
    let run = Runner::new(lib)
        .unwrap()
        .run(&s, &TargetConfig::Url(url), &RunOptions::default())
        .await
        .unwrap();
    let f = run.scenarios[0].trials[0].steps[0]
        .failure
        .as_ref()
        .unwrap();
    assert_eq!(f.category, FailureCategory::TwinUnavailable);
    assert!(f.message.contains("--twin okta=URL"), "{}", f.message);
}

/// Runs `files` against the target with the fake Slack twin whose lifecycle is `lifecycle`.
async fn run_with_lifecycle(
    files: &[(&str, &str)],
    lifecycle: Option<serde_json::Value>,
) -> (lightsout_eval::RunResult, Arc<TwinState>, String) {
    let url = serve(target_app()).await;
    let st = Arc::new(TwinState::default());
    *st.lifecycle.lock().unwrap() = lifecycle;
    let twin = serve(twin_app(st.clone())).await;
    let lib = StepLibrary::builtin();
    let files: Vec<(&str, String)> = files
        .iter()
        .map(|(n, t)| (*n, t.replace("TWIN_URL", &twin)))
        .collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let s = suite(&refs, &lib);
    let opts = RunOptions {
        twins: BTreeMap::from([("slack".to_owned(), twin.clone())]),
        ..RunOptions::default()
    };
    let run = Runner::new(lib)
        .unwrap()
        .run(&s, &TargetConfig::Url(url), &opts)
        .await
        .unwrap();
    (run, st, twin)
}

const NAMED: &str = "## Scenario: named\nSatisfies: REQ-1\n\n\
    - **WHEN** I send `POST /api/chat.postMessage` to twin `slack` with JSON `{\"text\":\"x\"}`\n\
    - **THEN** the status is 200\n";
/// Calls the twin by its URL without naming it (as a service under test would).
const CALLED: &str = "## Scenario: called\nSatisfies: REQ-2\n\n\
    - **WHEN** I send `POST TWIN_URL/api/chat.postMessage` with JSON `{\"text\":\"x\"}`\n\
    - **THEN** the status is 200\n";
const APART: &str = "## Scenario: apart\nSatisfies: REQ-3\n\n\
    - **WHEN** I send `GET /health`\n- **THEN** the status is 200\n";

fn lifecycle(status: &str) -> serde_json::Value {
    serde_json::json!({"name": "slack", "status": status, "since": "2026-12-07T01:02:03Z",
        "reason": "marked by hand: Slack added a field"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drifted_twin_fails_the_requirements_that_name_or_call_it_and_only_those() {
    let (run, _, _) = run_with_lifecycle(
        &[
            ("a.scenario.md", NAMED),
            ("b.scenario.md", CALLED),
            ("c.scenario.md", APART),
        ],
        Some(lifecycle("drifted")),
    )
    .await;
    // Every scenario itself passed against the twin...
    assert!(
        run.scenarios
            .iter()
            .all(|s| s.stats.passes == s.stats.trials)
    );
    // ... but two rest on a drifted twin: one names it, one only called it.
    let rests: Vec<(&str, Vec<&str>)> = run
        .scenarios
        .iter()
        .map(|s| {
            (
                s.satisfies[0].as_str(),
                s.stale_twins.iter().map(|t| t.name.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        rests,
        [
            ("REQ-1", vec!["slack"]),
            ("REQ-2", vec!["slack"]),
            ("REQ-3", vec![])
        ]
    );
    assert_eq!(run.twins.len(), 1);
    assert_eq!(run.twins[0].state, lightsout_eval::TwinState::Drifted);
    let weak: Vec<String> = run.weakened().into_iter().map(|w| w.requirement).collect();
    assert_eq!(weak, ["REQ-1", "REQ-2"]);
    assert!(!run.gate.passed);
    let r = run
        .gate
        .reasons
        .iter()
        .find(|r| r.rule == lightsout_eval::gate::TWIN_FIDELITY_RULE)
        .unwrap();
    assert!(
        r.detail
            .contains("REQ-1 FAILS: rests on twin slack (drifted since 2026-12-07)"),
        "{}",
        r.detail
    );
    assert!(r.detail.contains("REQ-2 FAILS"), "{}", r.detail);
    assert!(!r.detail.contains("REQ-3"), "{}", r.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_twin_stops_the_scenarios_that_need_it_with_the_reason() {
    let (run, st, _) = run_with_lifecycle(
        &[
            ("a.scenario.md", NAMED),
            ("b.scenario.md", CALLED),
            ("c.scenario.md", APART),
        ],
        Some(lifecycle("retired")),
    )
    .await;
    let named = &run.scenarios[0];
    assert_eq!((named.stats.passes, named.stats.trials), (0, 1));
    assert_eq!(named.trials[0].failure, Some(FailureCategory::TwinRetired));
    let msg = &named.trials[0].steps[0].failure.as_ref().unwrap().message;
    assert!(
        msg.starts_with("twin slack retired on 2026-12-07: marked by hand: Slack added a field"),
        "{msg}"
    );
    // The named scenario never ran: only the called one's trial reset and called the twin.
    assert_eq!(st.resets.load(Ordering::SeqCst), 2);
    // The scenario that called it without naming it: its trial fails the same way.
    let called = &run.scenarios[1];
    assert_eq!(called.stats.passes, 0);
    assert_eq!(called.trials[0].failure, Some(FailureCategory::TwinRetired));
    assert_eq!(run.scenarios[2].stats.passes, 1);
    assert!(!run.gate.passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspect_weakens_and_an_unknown_lifecycle_weakens_nothing() {
    let (run, _, _) =
        run_with_lifecycle(&[("a.scenario.md", NAMED)], Some(lifecycle("suspect"))).await;
    assert!(run.gate.passed, "{:?}", run.gate);
    assert_eq!(run.weakened().len(), 1);
    let (run, _, _) = run_with_lifecycle(&[("a.scenario.md", NAMED)], None).await;
    assert!(run.gate.passed);
    assert_eq!(run.twins[0].state, lightsout_eval::TwinState::Unknown);
    assert!(run.weakened().is_empty());
}
