//! Plans out of the real task lists in `tests/corpus` (copied from `../shared/corpus`): task
//! counts match the files, and no edge the files state is lost. Expected values are computed
//! here from the raw text, independently of the readers.

use crate::{at, reaches};
use lightsout_graph::{EdgeKind, Options, TaskFormat, TaskGraph, load, read};
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn kiro_dirs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(corpus().join("kiro"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("tasks.md").is_file())
        .collect();
    v.sort();
    v
}

/// Checkbox lines outside fenced blocks whose text starts with a number: the tasks.
fn numbered_checkbox_lines(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut fence = false;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("```") {
            fence = !fence;
            continue;
        }
        if fence || !(t.starts_with("- [") && t.len() > 6 && &t[4..5] == "]") {
            continue;
        }
        let rest = t[5..].trim_start_matches('*').trim_start();
        let id: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let id = id.trim_end_matches('.').to_owned();
        if !id.is_empty() {
            out.push((n + 1, line.len() - t.len(), id));
        }
    }
    out
}

/// The `waves` of a `Task Dependency Graph` JSON block, when the file has one.
fn waves_block(text: &str) -> Option<Vec<Vec<String>>> {
    let start = text.find("```json")?;
    let body = &text[start + 7..];
    let end = body.find("```")?;
    let v: serde_json::Value = serde_json::from_str(&body[..end]).ok()?;
    let mut waves: Vec<(i64, Vec<String>)> = v["waves"]
        .as_array()?
        .iter()
        .map(|w| {
            (
                w["wave"].as_i64().unwrap(),
                w["tasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            )
        })
        .collect();
    waves.sort_by_key(|w| w.0);
    Some(waves.into_iter().map(|w| w.1).collect())
}

fn kiro_graph(dir: &Path) -> (TaskGraph, Vec<lightsout_spec::Diagnostic>) {
    let loaded = load::load(&[dir.to_path_buf()]).unwrap();
    assert_eq!(loaded.lists.len(), 1, "{}", dir.display());
    let (g, mut d) = TaskGraph::build(loaded.lists, &Options::default());
    d.extend(loaded.diagnostics);
    (g, d)
}

#[test]
fn kiro_task_counts_match_the_files() {
    let dirs = kiro_dirs();
    assert_eq!(dirs.len(), 9);
    let mut total = 0;
    for dir in dirs {
        let text = std::fs::read_to_string(dir.join("tasks.md")).unwrap();
        let expected = numbered_checkbox_lines(&text);
        let (g, _) = kiro_graph(&dir);
        let got: Vec<&str> = g.tasks().iter().map(|t| t.id.as_str()).collect();
        let want: Vec<&str> = expected.iter().map(|e| e.2.as_str()).collect();
        assert_eq!(got, want, "{}", dir.display());
        assert_eq!(g.cycle_count(), 0, "{}", dir.display());
        total += got.len();
    }
    // 17 + 19 + 7 + 18 + 89 + 45 + 119 + 14 + 74, counted with grep on the files.
    assert_eq!(total, 402);
}

#[test]
fn kiro_dependency_graph_waves_are_all_kept() {
    let mut checked = 0;
    for dir in kiro_dirs() {
        let text = std::fs::read_to_string(dir.join("tasks.md")).unwrap();
        let Some(waves) = waves_block(&text) else {
            continue;
        };
        let (g, _) = kiro_graph(&dir);
        for pair in waves.windows(2) {
            for a in &pair[0] {
                for b in &pair[1] {
                    let (Some(x), Some(y)) = (g.find(a), g.find(b)) else {
                        panic!("{}: wave task {a} or {b} missing", dir.display());
                    };
                    assert!(
                        reaches(&g, x, y),
                        "{}: {a} must come before {b}",
                        dir.display()
                    );
                    checked += 1;
                }
            }
        }
        // Waves of the graph follow the block's order for top-level tasks.
        let level = g.levels().unwrap();
        for pair in waves.windows(2) {
            let max_a = pair[0].iter().map(|a| level[at(&g, a)]).max().unwrap();
            let min_b = pair[1].iter().map(|b| level[at(&g, b)]).min().unwrap();
            assert!(max_a < min_b, "{}", dir.display());
        }
    }
    // alibaba 2+2+2+2+2+1+1 ... summed over the four files with a block.
    assert!(checked >= 60, "{checked}");
}

#[test]
fn kiro_subtasks_finish_before_their_parent_and_lists_keep_their_order() {
    for dir in kiro_dirs() {
        let text = std::fs::read_to_string(dir.join("tasks.md")).unwrap();
        let lines = numbered_checkbox_lines(&text);
        let (g, _) = kiro_graph(&dir);
        let ids: Vec<&str> = lines.iter().map(|l| l.2.as_str()).collect();
        for id in &ids {
            if let Some((parent, _)) = id.rsplit_once('.')
                && ids.contains(&parent)
            {
                let (c, p) = (at(&g, id), at(&g, parent));
                let direct = g
                    .edges()
                    .any(|(a, b, k)| a == c && b == p && k == EdgeKind::Subtask);
                assert!(direct, "{}: {id} → {parent}", dir.display());
            }
        }
        if waves_block(&text).is_none() {
            // Kiro runs tasks in order: each top-level task reaches the next one.
            let top: Vec<&str> = ids
                .iter()
                .copied()
                .filter(|id| id.rsplit_once('.').is_none_or(|(p, _)| !ids.contains(&p)))
                .collect();
            for w in top.windows(2) {
                assert!(
                    reaches(&g, at(&g, w[0]), at(&g, w[1])),
                    "{}: {} before {}",
                    dir.display(),
                    w[0],
                    w[1]
                );
            }
        }
    }
}

#[test]
fn kiro_requirement_links_are_read_with_ranges_expanded() {
    let dir = corpus().join("kiro/alibaba-cloud-services");
    let (g, diags) = kiro_graph(&dir);
    let t = &g.tasks()[at(&g, "0")];
    // The field sits after the sub-tasks, at the parent's detail indent.
    assert_eq!(t.requirements, ["1.3", "2.2", "6.1", "7.1", "8.1", "17.2"]);
    assert!(g.tasks()[at(&g, "0.5")].requirements.is_empty());
    let t1 = &g.tasks()[at(&g, "1")];
    assert_eq!(t1.requirements.len(), 9 + 2 + 2);
    // A field spanning two lines.
    let t3 = &g.tasks()[at(&g, "3")];
    assert!(
        t3.requirements.contains(&"10.2".to_owned()),
        "{:?}",
        t3.requirements
    );
    assert_eq!(t3.requirements.len(), 3 + 3 + 4 + 5 + 6 + 4 + 2 + 2);
    // Task 4 is descoped and sits in no wave: reported, not placed silently.
    assert!(
        diags
            .iter()
            .any(|d| d.code == "LS359" && d.message.contains("`4`")),
        "{diags:#?}"
    );
    // Requirement 10.3 has no task; requirement 12 has no criteria.
    assert!(
        diags
            .iter()
            .any(|d| d.code == "LS353" && d.message.contains("`10.3`"))
    );
    assert!(
        diags
            .iter()
            .any(|d| d.code == "LS355" && d.message.contains("`12`"))
    );
}

#[test]
fn every_requirements_line_is_attached_to_a_task() {
    for dir in kiro_dirs() {
        let text = std::fs::read_to_string(dir.join("tasks.md")).unwrap();
        let (g, _) = kiro_graph(&dir);
        let all: std::collections::HashSet<&str> = g
            .tasks()
            .iter()
            .flat_map(|t| t.requirements.iter().map(String::as_str))
            .collect();
        for line in text.lines() {
            let Some(i) = line
                .find("_Requirements: ")
                .or_else(|| line.find("Validates: Requirements "))
            else {
                continue;
            };
            let rest = &line[i..];
            let rest = &rest[rest.find(": ").unwrap() + 2..];
            let rest = rest.trim_start_matches("Requirements ").trim_start();
            let first: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let first = first.trim_end_matches('.');
            if first.is_empty() {
                continue; // `_Requirements: (documentation)_` names no id
            }
            assert!(
                all.contains(first),
                "{}: `{first}` of {line:?} attached to no task",
                dir.display()
            );
        }
    }
}

#[test]
fn spec_kit_template_phases_stories_and_explicit_dependencies() {
    let path = corpus().join("spec-kit/tasks-template.md");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(read::detect(&path, &bytes), Some(TaskFormat::SpecKit));
    let text = String::from_utf8(bytes.clone()).unwrap();
    let expected = text.lines().filter(|l| l.starts_with("- [ ] T")).count();
    let (lists, rdiags) = read::read(TaskFormat::SpecKit, &bytes, "template", Some(&path));
    let (g, diags) = crate::build(lists);
    assert_eq!(g.len(), expected);
    assert_eq!(g.len(), 34);
    // The six `TXXX` placeholders: one placeholder warning each, five duplicate errors.
    assert_eq!(rdiags.iter().filter(|d| d.code == "LS359").count(), 6);
    assert_eq!(rdiags.iter().filter(|d| d.code == "LS356").count(), 5);
    assert!(diags.iter().all(|d| d.code != "LS351"), "{diags:#?}");
    // T014 "(depends on T012, T013)".
    for dep in ["T012", "T013"] {
        let e = g
            .edges()
            .find(|&(a, b, _)| a == at(&g, dep) && b == at(&g, "T014"));
        assert_eq!(e.map(|e| e.2), Some(EdgeKind::Explicit), "{dep}");
    }
    // Setup, then Foundational, then the three stories side by side, then Polish.
    let w = g.levels().unwrap();
    assert!(w[at(&g, "T001")] < w[at(&g, "T004")]);
    for story_first in ["T010", "T018", "T024"] {
        assert!(reaches(&g, at(&g, "T009"), at(&g, story_first)));
        assert_eq!(w[at(&g, story_first)], w[at(&g, "T010")]);
    }
    assert!(!reaches(&g, at(&g, "T017"), at(&g, "T018")));
    assert!(!reaches(&g, at(&g, "T023"), at(&g, "T024")));
    for story_last in ["T017", "T023", "T028"] {
        assert!(reaches(&g, at(&g, story_last), at(&g, "TXXX")));
    }
    // [P] runs: T012 and T013 side by side, T005 and T006 side by side.
    assert_eq!(w[at(&g, "T012")], w[at(&g, "T013")]);
    assert_eq!(w[at(&g, "T005")], w[at(&g, "T006")]);
    // A `###` heading breaks a [P] run: tests before implementation.
    assert!(reaches(&g, at(&g, "T011"), at(&g, "T012")));
    assert_eq!(g.tasks()[at(&g, "T010")].requirements, ["US1"]);
}

#[test]
fn openspec_change_tasks_are_counted_and_ordered() {
    let dir = corpus().join("openspec/changes/add-global-install-scope");
    let text = std::fs::read_to_string(dir.join("tasks.md")).unwrap();
    let expected = text.lines().filter(|l| l.starts_with("- [")).count();
    let groups = text.lines().filter(|l| l.starts_with("## ")).count();
    let loaded = load::load(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(
        loaded.lists.len(),
        1,
        "delta specs pair with the change's tasks.md"
    );
    assert_eq!(loaded.lists[0].format, TaskFormat::OpenSpec);
    assert!(
        loaded.lists[0]
            .requirements
            .as_ref()
            .is_some_and(|r| !r.is_empty())
    );
    let (g, diags) = TaskGraph::build(loaded.lists, &Options::default());
    assert_eq!(g.len(), expected);
    assert_eq!(g.len(), 38);
    assert_eq!(groups, 8);
    let phases: std::collections::BTreeSet<&str> = g
        .tasks()
        .iter()
        .filter_map(|t| t.phase.as_deref())
        .collect();
    assert_eq!(phases.len(), 8);
    // OpenSpec applies tasks in order: one chain, no edge lost.
    assert_eq!(g.edge_count(), expected - 1);
    assert_eq!(g.waves().unwrap().len(), expected);
    assert!(
        diags
            .iter()
            .all(|d| d.severity != lightsout_spec::Severity::Error),
        "{diags:#?}"
    );
}

#[test]
fn the_whole_corpus_is_one_acyclic_plan() {
    let loaded = load::load(&[corpus()]).unwrap();
    let (g, diags) = TaskGraph::build(loaded.lists, &Options::default());
    assert_eq!(g.cycle_count(), 0);
    // Nine Kiro folders and the OpenSpec change (its delta specs pair with its tasks.md).
    assert_eq!(
        g.specs().len(),
        10,
        "{:?}",
        g.specs().iter().map(|s| &s.id).collect::<Vec<_>>()
    );
    assert_eq!(g.len(), 402 + 38);
    assert!(
        diags.iter().all(|d| d.code != "LS351" && d.code != "LS350"),
        "{diags:#?}"
    );
    let waves = g.waves().unwrap();
    assert_eq!(waves.iter().map(Vec::len).sum::<usize>(), g.len());
}
