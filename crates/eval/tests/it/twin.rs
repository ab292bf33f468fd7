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
