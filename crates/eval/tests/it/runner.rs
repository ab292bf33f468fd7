//! The runner against a real loopback axum service.

use crate::support::{serve, suite, target_app};
use lightsout_eval::stats::Sequential;
use lightsout_eval::{
    CheckKind, FailureCategory, GatePolicy, RunOptions, Runner, StepFailure, StepLibrary,
    StepStatus, TargetConfig,
};
use std::time::Duration;

const BEHAVIOUR: &str = r#"
## Scenario: echo with a captured token
Satisfies: REQ-1
Tags: @critical

- **GIVEN** the service is running
- **WHEN** I send `POST /items` with JSON `{"name":"ann"}`
- **THEN** the status is 201 within 5000 ms
- **AND** the JSON at `$.name` is "ann"
- **AND** I save the JSON at `$.id` as {item}
- **WHEN** I send `GET /echo?item={item}` with header `Authorization: Bearer {item}`
- **THEN** the status is 2xx
- **AND** the header `content-type` contains `json`
- **AND** the JSON at `$.args.item` is "item-1"
- **AND** the JSON at `$.auth` is "Bearer item-1"
- **AND** the body contains `item-1`
- **AND** the response time is under 5000 ms

## Scenario: a bad body is refused
Satisfies: REQ-2

- **WHEN** I send `POST /items` with body `not json`
- **THEN** the status is 400
- **AND** the JSON at `$.error` exists
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behavioural_scenarios_pass_with_captured_variables() {
    let url = serve(target_app()).await;
    let lib = StepLibrary::builtin();
    let s = suite(&[("a.scenario.md", BEHAVIOUR)], &lib);
    let runner = Runner::new(lib).unwrap();
    let opts = RunOptions {
        trials: 3,
        max_trials: 3,
        ..RunOptions::default()
    };
    let run = runner
        .run(&s, &TargetConfig::Url(url), &opts)
        .await
        .unwrap();
    for sc in &run.scenarios {
        let fails: Vec<_> = sc
            .trials
            .iter()
            .flat_map(|t| &t.steps)
            .filter_map(|s| s.failure.as_ref())
            .collect();
        assert_eq!(sc.stats.passes, 3, "{}: {fails:?}", sc.name);
        assert!(
            sc.trials
                .iter()
                .all(|t| t.steps.iter().all(|s| s.status == StepStatus::Passed))
        );
    }
    assert!(run.gate.passed);
    assert!((run.summary.satisfaction - 1.0).abs() < f64::EPSILON);
    // The document round-trips.
    let back: lightsout_eval::RunResult = serde_json::from_str(&run.to_json().unwrap()).unwrap();
    assert_eq!(back, run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_scenario_is_flagged_and_sequential_gate_extends_to_the_cap() {
    let url = serve(target_app()).await;
    let lib = StepLibrary::builtin();
    let src = "## Scenario: flaky\nSatisfies: REQ-9\nTags: @critical\n\n- **WHEN** I send `GET /flaky`\n- **THEN** the status is 200\n";
    let s = suite(&[("f.scenario.md", src)], &lib);
    let runner = Runner::new(lib).unwrap();
    let opts = RunOptions {
        trials: 4,
        max_trials: 12,
        policy: GatePolicy::from_toml("[[rule]]\ntag = \"@critical\"\nmin_lower_bound = 0.5\n")
            .unwrap(),
        ..RunOptions::default()
    };
    let run = runner
        .run(&s, &TargetConfig::Url(url), &opts)
        .await
        .unwrap();
    let sc = &run.scenarios[0];
    // Alternating pass/fail keeps the interval around 0.5 straddling the threshold: the
    // sequential gate runs to the cap.
    assert_eq!(sc.stats.trials, 12);
    assert_eq!(sc.stats.passes, 6);
    assert_eq!(sc.stopped, Sequential::Done);
    assert!(sc.stats.flaky);
    assert_eq!(run.summary.flaky, 1);
    assert!(!run.gate.passed);
    assert_eq!(sc.trials[1].failure, Some(FailureCategory::Status));
    // JUnit shows the failed trials as flaky reruns of a passing test case.
    let xml = lightsout_eval::junit(&run).unwrap();
    assert_eq!(xml.matches("<flakyFailure").count(), 6, "{xml}");
    assert!(!xml.contains("<failure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_gate_stops_early_once_clear() {
    let url = serve(target_app()).await;
    let lib = StepLibrary::builtin();
    let src = "## Scenario: steady\nSatisfies: REQ-1\nTags: @critical\n\n- **WHEN** I send `GET /health`\n- **THEN** the status is 200\n";
    let s = suite(&[("s.scenario.md", src)], &lib);
    let runner = Runner::new(lib).unwrap();
    let opts = RunOptions {
        trials: 2,
        max_trials: 100,
        policy: GatePolicy::from_toml("[[rule]]\ntag = \"@critical\"\nmin_lower_bound = 0.8\n")
            .unwrap(),
        ..RunOptions::default()
    };
    let run = runner
        .run(&s, &TargetConfig::Url(url), &opts)
        .await
        .unwrap();
    // 16/16 is the first k with k/(k+3.84) >= 0.8.
    assert_eq!(run.scenarios[0].stats.trials, 16);
    assert_eq!(run.scenarios[0].stopped, Sequential::ClearPass);
    assert!(run.gate.passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_and_adversarial_checks_run_and_judge() {
    let url = serve(target_app()).await;
    let lib = StepLibrary::builtin();
    let src = r#"
## Scenario: load
Satisfies: REQ-5

- **WHEN** 3 clients send `GET /health` for 0.3 s
- **THEN** p99 is under 2000 ms and errors are under 1%

## Scenario: malformed items
Satisfies: REQ-6

- **WHEN** I send malformed variants of `POST /items` with JSON `{"name":"ann"}`
- **THEN** no response is 5xx and the service is still running

## Scenario: fragile endpoint
Satisfies: REQ-7

- **WHEN** I send malformed variants of `POST /fragile` with JSON `{"name":"ann"}`
- **THEN** no response is 5xx
"#;
    let s = suite(&[("l.scenario.md", src)], &lib);
    assert_eq!(s.scenarios[0].kind, CheckKind::Load);
    assert_eq!(s.scenarios[1].kind, CheckKind::Adversarial);
    let runner = Runner::new(lib).unwrap();
    let run = runner
        .run(&s, &TargetConfig::Url(url), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        run.scenarios[0].stats.passes, 1,
        "{:?}",
        run.scenarios[0].trials
    );
    assert_eq!(
        run.scenarios[1].stats.passes, 1,
        "{:?}",
        run.scenarios[1].trials
    );
    assert_eq!(run.scenarios[2].stats.passes, 0);
    let f = run.scenarios[2].trials[0].steps[1]
        .failure
        .as_ref()
        .unwrap();
    assert_eq!(f.category, FailureCategory::Adversarial);
    assert!(f.message.contains("huge_string → 500"), "{}", f.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_step_skips_the_rest_and_names_the_category() {
    let url = serve(target_app()).await;
    let lib = StepLibrary::builtin();
    let src = "## Scenario: wrong\nSatisfies: REQ-3\n\n- **WHEN** I send `GET /health`\n- **THEN** the status is 404\n- **AND** the body is `ok`\n";
    let s = suite(&[("w.scenario.md", src)], &lib);
    let run = Runner::new(lib)
        .unwrap()
        .run(&s, &TargetConfig::Url(url), &RunOptions::default())
        .await
        .unwrap();
    let t = &run.scenarios[0].trials[0];
    assert_eq!(t.failure, Some(FailureCategory::Status));
    let st: Vec<_> = t.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        st,
        vec![StepStatus::Passed, StepStatus::Failed, StepStatus::Skipped]
    );
    assert!(!run.gate.passed);
    let md = lightsout_eval::markdown(&run);
    assert!(
        md.contains("gate FAILED") && md.contains("| wrong `S-"),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trial_timeout_fails_the_trial_as_timeout() {
    let url = serve(target_app()).await;
    let lib = StepLibrary::builtin();
    let src = "## Scenario: slow\nSatisfies: REQ-4\n\n- **WHEN** I send `GET /slow`\n- **THEN** the status is 200\n";
    let s = suite(&[("t.scenario.md", src)], &lib);
    let opts = RunOptions {
        trial_timeout: Duration::from_millis(300),
        ..RunOptions::default()
    };
    let run = Runner::new(lib)
        .unwrap()
        .run(&s, &TargetConfig::Url(url), &opts)
        .await
        .unwrap();
    let t = &run.scenarios[0].trials[0];
    assert_eq!(t.failure, Some(FailureCategory::Timeout));
    assert_eq!(t.steps[0].status, StepStatus::Failed);
    assert_eq!(t.steps[1].status, StepStatus::Skipped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_steps_registered_through_the_api() {
    let url = serve(target_app()).await;
    let mut lib = StepLibrary::builtin();
    lib.register_fn(r"the tally is (?P<n>\d+)", "the tally is 3", |w, a| {
        let want: u32 = a.num("n")?;
        let got = *w.ext_mut::<u32>();
        if got == want {
            Ok(None)
        } else {
            Err(StepFailure::new(
                FailureCategory::Custom,
                format!("tally {got} != {want}"),
            ))
        }
    })
    .unwrap();
    lib.register_fn(
        r"I add (?P<n>\d+) to the tally",
        "I add 2 to the tally",
        |w, a| {
            *w.ext_mut::<u32>() += a.num::<u32>("n")?;
            Ok(Some(w.ext_mut::<u32>().to_string()))
        },
    )
    .unwrap();
    let src = "## Scenario: tally\nSatisfies: REQ-8\n\n- **GIVEN** I add 2 to the tally\n- **AND** I add 3 to the tally as {t}\n- **WHEN** I send `GET /echo?t={t}`\n- **THEN** the tally is 5\n- **AND** the JSON at `$.args.t` is \"5\"\n";
    let s = suite(&[("c.scenario.md", src)], &lib);
    let opts = RunOptions {
        trials: 2,
        max_trials: 2,
        ..RunOptions::default()
    };
    let run = Runner::new(lib)
        .unwrap()
        .run(&s, &TargetConfig::Url(url), &opts)
        .await
        .unwrap();
    // Each trial has a fresh world: the tally restarts at 0.
    assert_eq!(
        run.scenarios[0].stats.passes, 2,
        "{:?}",
        run.scenarios[0].trials
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_is_a_guard_scenario_failing_now() {
    let url = serve(target_app()).await;
    let lib = StepLibrary::builtin();
    let ok = "## Scenario: health\nSatisfies: REQ-1\n\n- **WHEN** I send `GET /health`\n- **THEN** the status is 200\n";
    let s = suite(&[("r.scenario.md", ok)], &lib);
    let runner = Runner::new(lib.clone()).unwrap();
    let baseline = runner
        .run(&s, &TargetConfig::Url(url.clone()), &RunOptions::default())
        .await
        .unwrap();
    assert!(!baseline.scenarios[0].guard);
    // Same scenario (same id), now broken.
    let broken = ok.replace("200", "201");
    let s2 = suite(&[("r.scenario.md", &broken)], &lib);
    let opts = RunOptions {
        baseline: Some(baseline),
        ..RunOptions::default()
    };
    let run = runner
        .run(&s2, &TargetConfig::Url(url), &opts)
        .await
        .unwrap();
    assert!(run.scenarios[0].guard && run.scenarios[0].regression);
    assert_eq!(run.summary.regressions, 1);
    let reason = run
        .gate
        .reasons
        .iter()
        .find(|r| r.rule == "no regressions")
        .unwrap();
    assert!(!reason.passed && reason.detail.contains(&run.scenarios[0].id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresolved_suite_is_refused() {
    let lib = StepLibrary::builtin();
    let mut s = lightsout_eval::Suite::default();
    s.add_source(
        std::path::Path::new("u.scenario.md"),
        "## Scenario: u\nSatisfies: R\n\n- **WHEN** I teleport\n",
        &mut Vec::new(),
    );
    let d = s.resolve(&lib);
    assert_eq!(d[0].code, "LS501");
    let err = Runner::new(lib)
        .unwrap()
        .run(
            &s,
            &TargetConfig::Url("http://127.0.0.1:9".into()),
            &RunOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, lightsout_eval::Error::InvalidSuite(_)),
        "{err}"
    );
}
