//! Reports used by the tests: a realistic run, a hostile one, and one built from arbitrary strings.

use time::macros::datetime;

use crate::model::{
    AgentKind, AgentLabel, AttemptTrace, DecisionRecord, DecisionStatus, FailureRecord,
    GateOutcome, GateVerdict, Incident, IncidentKind, LessonRecord, Orphans, PolicyRuleRef,
    RequirementOutcome, RunReport, SCHEMA_VERSION, Satisfaction, SpecRef, StrengthOutcome,
    SurvivorRecord, TaskOutcome, TaskStatus, UnknownRequirementRef, VariantChoiceRecord,
    VariantChoices, WeakenedEvidence,
};

fn replay() -> AgentLabel {
    AgentLabel::replay("replay", "examples/url-shortener/trajectory")
}

#[allow(clippy::too_many_arguments)]
fn task(
    id: &str,
    title: &str,
    reqs: &[&str],
    deps: &[&str],
    attempts: u32,
    status: TaskStatus,
    commit: Option<&str>,
    wall_ms: u64,
) -> TaskOutcome {
    TaskOutcome {
        id: id.into(),
        title: title.into(),
        requirements: reqs.iter().map(|s| (*s).to_string()).collect(),
        agent: replay(),
        attempts,
        tokens_in: 12_400 * u64::from(attempts),
        tokens_out: 1_850 * u64::from(attempts),
        cost_usd: 0.0,
        wall_ms,
        merge_commit: commit.map(str::to_string),
        history: (1..=attempts)
            .map(|n| AttemptTrace {
                attempt: n,
                passed: n == attempts && commit.is_some(),
                failed_stage: (n < attempts).then(|| "holdout".to_owned()),
                commit: Some(format!("{n:x}a1b2c3d4e5f60718293a4b5c6d7e8f9012345678")),
            })
            .collect(),
        status,
        depends_on: deps.iter().map(|s| (*s).to_string()).collect(),
        wave: None,
    }
}

/// A realistic finished run of the bundled URL-shortener example.
pub(super) fn sample_report() -> RunReport {
    let mut r = RunReport::new(
        "20261127-060000-a1b2",
        datetime!(2026-11-27 06:00:00 UTC),
        replay(),
    );
    r.finished = Some(datetime!(2026-11-27 06:03:41.250 UTC));
    r.orphans = Orphans {
        coverage_known: true,
        requirements_without_scenarios: vec!["REQ-4".into()],
        scenarios_with_unknown_requirements: vec![UnknownRequirementRef {
            scenario: "S-9f8e7d6c".into(),
            requirements: vec!["REQ-9".into()],
        }],
        tasks_without_requirements: vec![],
    };
    r.specs = vec![SpecRef {
        id: "url-shortener".into(),
        title: "URL shortener".into(),
        version: 1,
        path: Some("specs/url-shortener.md".into()),
    }];
    r.gate = GateVerdict {
        outcome: GateOutcome::Pass,
        reasons: vec![
            "@critical scenarios: Wilson lower bound 0.912 >= 0.900 (40 of 40 trials)".into(),
            "suite satisfaction 1.000 >= 0.950".into(),
            "no regression on the guard bucket".into(),
        ],
        policy: vec![
            PolicyRuleRef {
                rule: "Every @critical scenario has a Wilson lower bound of at least 0.9 over 40 trials."
                    .into(),
                source: "spec specs/url-shortener.md:155; holdout gate.toml".into(),
                trials: Some(40),
            },
            PolicyRuleRef {
                rule: "all scenarios: satisfaction >= 0.95".into(),
                source: "floor".into(),
                trials: None,
            },
        ],
    };
    r.requirements = sample_requirements();
    r.tasks = sample_tasks();
    r.decisions = vec![
        DecisionRecord {
            id: "DEC-1".into(),
            text: "SQLite from the standard library, not an external database, because the service must run with Python alone.".into(),
            status: DecisionStatus::Accepted,
            supersedes: None,
            source: "spec url-shortener".into(),
        },
        DecisionRecord {
            id: "DEC-2".into(),
            text: "Notify Slack after the link is stored, never before.".into(),
            status: DecisionStatus::Accepted,
            supersedes: None,
            source: "spec url-shortener".into(),
        },
    ];
    r.lessons = vec![LessonRecord {
        fingerprint: "REQ-1/status-mismatch".into(),
        text: "Creating a resource answers 201, not 200.".into(),
        requirement: Some("REQ-1".into()),
        task: Some("T2".into()),
    }];
    r.strength = Some(sample_strength());
    r.variant_choices = Some(sample_variant_choices());
    r
}

/// The sample run's tuner choices: one exploit of the incumbent, one exploration.
fn sample_variant_choices() -> VariantChoices {
    let means = |a: f64, b: f64| [("opus".to_owned(), a), ("sonnet".to_owned(), b)].into();
    VariantChoices {
        seed: 7,
        attempts_seen: 42,
        exploration_allowed: 1,
        choices: vec![
            VariantChoiceRecord {
                task: "T1".into(),
                kind: "code".into(),
                variant: "opus".into(),
                default: "opus".into(),
                mode: "exploit".into(),
                reason: "sampled".into(),
                posterior_means: means(0.9, 0.8),
                sampled: [("opus".to_owned(), 0.91), ("sonnet".to_owned(), 0.62)].into(),
                benched: vec!["haiku".into()],
                explanation:
                    "code: opus (least sampled USD per merged task among feasible; default opus)"
                        .into(),
            },
            VariantChoiceRecord {
                task: "T2".into(),
                kind: "code".into(),
                variant: "sonnet".into(),
                default: "opus".into(),
                mode: "explore".into(),
                reason: "sampled".into(),
                posterior_means: means(0.9, 0.8),
                sampled: [("opus".to_owned(), 0.88), ("sonnet".to_owned(), 0.84)].into(),
                benched: vec!["haiku".into()],
                explanation:
                    "code: sonnet (least sampled USD per merged task among feasible; default opus)"
                        .into(),
            },
        ],
    }
}

/// The sample run's three requirements: one flaky, one with a gate reason and no scenario id.
fn sample_requirements() -> Vec<RequirementOutcome> {
    vec![
        RequirementOutcome {
            id: "REQ-1".into(),
            title: "Create a short link".into(),
            satisfaction: Satisfaction::from_counts(40, 40),
            flaky: false,
            attempts: 2,
            scenarios: 4,
            scenario_ids: vec!["S-0a1b2c3d".into(), "S-4e5f6a7b".into()],
            tasks: vec!["T2".into()],
            gate_reasons: vec![],
            failures: vec![FailureRecord {
                task: "T2".into(),
                attempt: 1,
                category: "status mismatch".into(),
                feedback: "REQ-1: 10 of 10 trials failed: status mismatch on a create request"
                    .into(),
            }],
        },
        RequirementOutcome {
            id: "REQ-2".into(),
            title: "Follow a short link".into(),
            satisfaction: Satisfaction::from_counts(29, 30),
            flaky: true,
            attempts: 1,
            scenarios: 3,
            scenario_ids: vec!["S-8c9d0e1f".into()],
            tasks: vec!["T3".into()],
            gate_reasons: vec![],
            failures: vec![],
        },
        RequirementOutcome {
            id: "REQ-3".into(),
            title: "Notify Slack of new links".into(),
            satisfaction: Satisfaction::from_counts(20, 20),
            flaky: false,
            attempts: 2,
            scenarios: 2,
            scenario_ids: vec![],
            tasks: vec!["T4".into()],
            gate_reasons: vec!["REQ-3: no holdout trial ran for it".into()],
            failures: vec![FailureRecord {
                task: "T4".into(),
                attempt: 1,
                category: "twin not called".into(),
                feedback: "REQ-3: 10 of 10 trials failed: expected third-party call not made"
                    .into(),
            }],
        },
    ]
}

/// The sample run's four tasks, T1 → T2 → T4 and T1 → T3, all merged; T2 and T4 took two attempts.
fn sample_tasks() -> Vec<TaskOutcome> {
    vec![
        task(
            "T1",
            "Storage layer",
            &["REQ-1", "REQ-2"],
            &[],
            1,
            TaskStatus::Merged,
            Some("3f9c2e1d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"),
            41_200,
        ),
        task(
            "T2",
            "POST /links",
            &["REQ-1"],
            &["T1"],
            2,
            TaskStatus::Merged,
            Some("9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"),
            63_900,
        ),
        task(
            "T3",
            "GET /{code} redirect",
            &["REQ-2"],
            &["T1"],
            1,
            TaskStatus::Merged,
            Some("1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"),
            38_000,
        ),
        task(
            "T4",
            "Slack notification on create",
            &["REQ-3"],
            &["T2"],
            2,
            TaskStatus::Merged,
            Some("0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"),
            70_150,
        ),
    ]
}

/// The sample run's holdout strength: a seeded sample, two survivors.
fn sample_strength() -> StrengthOutcome {
    StrengthOutcome {
        tool: "cosmic-ray, version 8.7.0".into(),
        build: Some("4f0c2a9e1b7d".into()),
        killed: Satisfaction::from_counts(68, 70),
        timeouts: 14,
        broken: 7,
        generated: 331,
        equivalent: 39,
        sample_seed: Some(1),
        trials: 1,
        duration_ms: 982_000,
        survivors: vec![
            SurvivorRecord {
                file: "app.py".into(),
                line: 88,
                operator: "core/ReplaceComparisonOperator_Gt_GtE".into(),
                occurrence: 0,
            },
            SurvivorRecord {
                file: "shortener/store.py".into(),
                line: 41,
                operator: "core/NumberReplacer".into(),
                occurrence: 1,
            },
        ],
    }
}

/// The sample run with hostile strings in many places, two incidents, and a command agent.
pub(super) fn hostile_report() -> RunReport {
    let mut r = sample_report();
    r.run_id = "r<1>&\"'".into();
    r.requirements[1].title = "</td></tr></table><script>alert('xss')</script>".into();
    r.tasks[2].title = "<img src=http://127.0.0.1:9/pwn.png onerror=alert(1)>".into();
    r.tasks[3].agent = AgentLabel {
        name: "claude-code".into(),
        kind: AgentKind::Command,
        detail: Some("\"><svg onload=alert(1)>".into()),
    };
    r.tasks[3].merge_commit = Some("ééééééééééééééé<b>".into());
    r.lessons[0].text = "</style><style>body{display:none}</style>".into();
    if let Some(st) = &mut r.strength {
        st.survivors[0].file = "<svg onload=alert(1)>.py".into();
        st.tool = "cosmic-ray\u{7}<b>".into();
    }
    r.gate.reasons.push("]]></text><foreignObject>&amp;".into());
    r.incidents = vec![
        Incident {
            kind: IncidentKind::CanaryLeak,
            task: Some("T2".into()),
            location: "diff".into(),
            detail: "holdout canary of suite url-shortener-holdout found in the diff of attempt 2"
                .into(),
        },
        Incident {
            kind: IncidentKind::PolicyViolation,
            task: None,
            location: "environment".into(),
            detail: "<iframe src=\"https://example.invalid\"></iframe>".into(),
        },
    ];
    r
}

/// A report whose every free-text field is taken, in turn, from `strings` (cycling). Task IDs are
/// `"{index}:{string}"` so they stay distinct and the graph's shape does not depend on the strings.
pub(super) fn with_strings(strings: &[String]) -> RunReport {
    let mut it = strings.iter().cycle();
    let mut s = || it.next().cloned().unwrap_or_default();
    let mut r = strings_head(&mut s);
    strings_requirements(&mut r, &mut s);
    strings_tasks(&mut r, &mut s);
    strings_records(&mut r, &mut s);
    r
}

/// [`with_strings`]' agent label of `kind`.
fn strings_label(s: &mut dyn FnMut() -> String, kind: AgentKind) -> AgentLabel {
    AgentLabel {
        name: s(),
        kind,
        detail: Some(s()),
    }
}

/// [`with_strings`]' report without requirements, tasks or records.
fn strings_head(s: &mut dyn FnMut() -> String) -> RunReport {
    RunReport {
        schema_version: SCHEMA_VERSION,
        run_id: s(),
        started: datetime!(2026-11-27 06:00 UTC),
        finished: Some(datetime!(2026-11-27 06:10 UTC)),
        agent: strings_label(s, AgentKind::Replay),
        specs: vec![SpecRef {
            id: s(),
            title: s(),
            version: 2,
            path: Some(s()),
        }],
        gate: GateVerdict {
            outcome: GateOutcome::Fail,
            reasons: vec![s(), s()],
            policy: vec![PolicyRuleRef {
                rule: s(),
                source: s(),
                trials: Some(16),
            }],
        },
        requirements: Vec::new(),
        tasks: Vec::new(),
        orphans: Orphans {
            coverage_known: true,
            requirements_without_scenarios: vec![s()],
            scenarios_with_unknown_requirements: vec![UnknownRequirementRef {
                scenario: s(),
                requirements: vec![s()],
            }],
            tasks_without_requirements: vec![s()],
        },
        decisions: Vec::new(),
        lessons: Vec::new(),
        incidents: Vec::new(),
        not_ready: vec![s()],
        strength: Some(StrengthOutcome {
            tool: s(),
            build: Some(s()),
            killed: Satisfaction::from_counts(9, 10),
            timeouts: 1,
            broken: 2,
            generated: 12,
            equivalent: 1,
            sample_seed: Some(3),
            trials: 1,
            duration_ms: 5_000,
            survivors: vec![SurvivorRecord {
                file: s(),
                line: 7,
                operator: s(),
                occurrence: 0,
            }],
        }),
        weakened: vec![WeakenedEvidence {
            requirement: s(),
            twin: s(),
            state: s(),
            since: Some(s()),
            reason: Some(s()),
            scenarios: vec![s(), s()],
        }],
        variant_choices: Some(VariantChoices {
            seed: 5,
            attempts_seen: 40,
            exploration_allowed: 2,
            choices: vec![VariantChoiceRecord {
                task: s(),
                kind: s(),
                variant: s(),
                default: s(),
                mode: s(),
                reason: s(),
                posterior_means: [(s(), 0.5)].into(),
                sampled: std::collections::BTreeMap::new(),
                benched: vec![s()],
                explanation: s(),
            }],
        }),
    }
}

/// [`with_strings`]' three requirements.
fn strings_requirements(r: &mut RunReport, s: &mut dyn FnMut() -> String) {
    for i in 0..3u32 {
        r.requirements.push(RequirementOutcome {
            id: s(),
            title: s(),
            satisfaction: Satisfaction::from_counts(7 + i, 10),
            flaky: i == 1,
            attempts: i + 1,
            scenarios: 2,
            scenario_ids: vec![s()],
            tasks: vec![s(), s()],
            gate_reasons: vec![s()],
            failures: vec![FailureRecord {
                task: s(),
                attempt: 1,
                category: s(),
                feedback: s(),
            }],
        });
    }
}

/// [`with_strings`]' five tasks, each depending on the two before it; the last also on a task
/// that is not in the report.
fn strings_tasks(r: &mut RunReport, s: &mut dyn FnMut() -> String) {
    let mut ids: Vec<String> = Vec::new();
    for i in 0..5usize {
        let id = format!("{i}:{}", s());
        let mut depends_on: Vec<String> = ids.iter().rev().take(2).cloned().collect();
        if i == 4 {
            depends_on.push(format!("missing:{}", s()));
        }
        r.tasks.push(TaskOutcome {
            id: id.clone(),
            title: s(),
            requirements: vec![s()],
            agent: strings_label(s, AgentKind::Command),
            attempts: 1,
            tokens_in: 10,
            tokens_out: 5,
            cost_usd: 0.01,
            wall_ms: 1_500,
            merge_commit: Some(s()),
            history: vec![AttemptTrace {
                attempt: 1,
                passed: false,
                failed_stage: Some(s()),
                commit: Some(s()),
            }],
            status: TaskStatus::Failed,
            depends_on,
            wave: None,
        });
        ids.push(id);
    }
}

/// [`with_strings`]' decision, lesson and incident.
fn strings_records(r: &mut RunReport, s: &mut dyn FnMut() -> String) {
    r.decisions.push(DecisionRecord {
        id: s(),
        text: s(),
        status: DecisionStatus::Superseded,
        supersedes: Some(s()),
        source: s(),
    });
    r.lessons.push(LessonRecord {
        fingerprint: s(),
        text: s(),
        requirement: Some(s()),
        task: Some(s()),
    });
    r.incidents.push(Incident {
        kind: IncidentKind::VerbatimLeak,
        task: Some(s()),
        location: s(),
        detail: s(),
    });
}
