//! The dialects as their authors write them: what a user of each format relies on.

use super::{codes, run};
use lightsout_spec::{CheckOptions, Dialect, check, discover, parse};
use std::path::Path;

fn read_as(src: &str, path: &str) -> (lightsout_spec::Spec, Vec<lightsout_spec::Diagnostic>) {
    let (spec, mut d) = parse(src.as_bytes(), Some(Path::new(path)), None);
    d.extend(check(&spec, src, &CheckOptions::default()));
    (spec, d)
}

const SPEC_KIT_ZH: &str = "# 功能规格说明: 简单计数器

## Clarifications

### Session 2025-12-16

- Q: 计数器是否持久化？→ A: 是，保存在本地文件。

## 用户场景与测试 *(必填)*

### 用户故事 1 - 计数 (优先级: P1)

用户点击按钮使计数加一。

**验收场景**:

1. **给定** 计数为 0, **当** 用户点击按钮, **那么** 计数为 1
2. **Given** 计数为 1, **When** 用户重置, **Then** 计数为 0

## 需求 *(必填)*

### 功能需求

- **FR-001**: 系统必须在每次点击后将计数加一
- **FR-001a**: 系统必须在重启后恢复计数
- **FR-002**: 用户可以重置计数

## 成功标准 *(必填)*

- **SC-001**: 点击后 100 毫秒内显示新计数
";

#[test]
fn a_chinese_spec_kit_feature_gives_its_frs_stories_and_nothing_to_fix() {
    let (spec, d) = read_as(SPEC_KIT_ZH, "specs/001-counter/spec.md");
    assert_eq!(spec.dialect, Dialect::SpecKit);
    let ids: Vec<&str> = spec.requirements.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["US-1", "FR-001", "FR-001a", "FR-002"]);
    assert_eq!(spec.requirements[0].scenarios.len(), 2);
    assert_eq!(spec.requirements[0].tags, ["P1"]);
    assert!(spec.requirements[1].statements[0].normative, "必须 is MUST");
    assert_eq!(spec.success_criteria.len(), 1);
    // The answered clarification is no open question; FR-002 without MUST is no error by
    // default (pedantic only), and a scenario per FR is not Spec Kit's way.
    assert!(d.is_empty(), "{d:#?}");
}

#[test]
fn a_japanese_kiro_spec_reads_its_criteria() {
    let src = "# Requirements Document\n\n## Introduction\n計算エンジン。\n\n## Requirements\n\n\
        ### 要件1: 日付\n\n**目的:** 開発者として日付型が欲しい\n\n#### 受け入れ基準\n\n\
        1. システムは日付を ISO 8601 で出力しなければならない\n2. システムは不正な日付を拒否する\n\n\
        ### Requirement 10a: Retry\n\n#### Acceptance Criteria\n\n1. WHEN a call fails THEN the client SHALL retry\n";
    let (spec, d) = read_as(src, ".kiro/specs/date/requirements.md");
    assert_eq!(spec.dialect, Dialect::Kiro);
    let ids: Vec<&str> = spec.requirements.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["1.1", "1.2", "10a.1"]);
    assert!(spec.requirements[0].statements[0].normative);
    assert!(d.is_empty(), "{d:#?}");
}

#[test]
fn marker_words_as_content_are_not_markers_but_real_markers_are() {
    let src = "---\nid: lint\ntitle: Lint\nkind: constraint\nversion: 1\nstatus: ready\n---\n\n## Constraints\n\
        - CON-1: The linter looks for TODO/FIXME comments in at most 200 files.\n\
        - CON-2: It reads doc/TODO.md in under 5 ms.\n- CON-3: Requests time out after 5 s; owner: TBD.\n";
    let (_, d) = run(src);
    assert_eq!(codes(&d), ["LS204"], "{d:#?}");
    assert!(d[0].message.contains("TBD"));
}

#[test]
fn nlspec_requirements_have_section_path_ids_and_done_items_are_acceptance() {
    let src = "# Widget Specification\n\n## 1. Overview\n\nA widget.\n\n## 2. Behaviour\n\n### 2.1 Loading\n\n\
        The loader MUST read the file. It should be quick.\n\n- Handlers SHOULD NOT block.\n\n\
        ```\nclient MUST NOT see this\n```\n\n## 3. Definition of Done\n\n### 3.1 Loading\n\n\
        - [ ] Loads a file\n- [x] Rejects a missing file\n\n| Case | Pass |\n|---|---|\n| Empty file | [ ] |\n";
    let (spec, d) = read_as(src, "widget-spec.md");
    assert_eq!(spec.dialect, Dialect::NlSpec);
    let ids: Vec<&str> = spec.requirements.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["2.1-1", "2.1-2"]);
    let acc: Vec<(&str, &str, bool)> = spec
        .acceptance
        .iter()
        .map(|a| (a.id.as_str(), a.text.as_str(), a.done))
        .collect();
    assert_eq!(
        acc,
        [
            ("3.1-1", "Loads a file", false),
            ("3.1-2", "Rejects a missing file", true),
            ("3.1-3", "Empty file", false),
        ]
    );
    assert!(d.is_empty(), "{d:#?}");
}

#[test]
fn discover_finds_nlspecs_and_skips_spec_kit_checklists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let feature = dir.path().join("specs/001-x");
    std::fs::create_dir_all(feature.join("checklists")).expect("mkdir");
    std::fs::write(feature.join("spec.md"), SPEC_KIT_ZH).expect("write");
    std::fs::write(
        feature.join("checklists/requirements.md"),
        "# Specification Quality Checklist\n- [x] ok\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("attractor-spec.md"), "# A\n").expect("write");
    let found: Vec<String> = discover(dir.path())
        .expect("discover")
        .iter()
        .map(|p| {
            p.strip_prefix(dir.path())
                .expect("prefix")
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(found, ["attractor-spec.md", "specs/001-x/spec.md"]);
}

#[test]
fn multi_segment_ids_are_not_duplicates() {
    let src = "# Feature Specification: X\n\n## User Scenarios & Testing\n\n### User Story 1 - A (Priority: P1)\n\nA.\n\n\
        ## Requirements\n\n- **FR-011-001**: System MUST a\n- **FR-011-002**: System MUST b\n- **FR-011**: System MUST c\n";
    let (spec, d) = read_as(src, "specs/001-x/spec.md");
    let ids: Vec<&str> = spec.requirements.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["US-1", "FR-011-001", "FR-011-002", "FR-011"]);
    assert!(d.is_empty(), "{d:#?}");
}

#[test]
fn pedantic_lints_are_opt_in() {
    let src = "---\nid: p\ntitle: P\nkind: constraint\nversion: 1\nstatus: ready\n---\n\n## Constraints\n\
        - CON-1: Pages load fast, within 200 ms.\n";
    let (spec, d) = run(src);
    assert!(d.is_empty(), "{d:#?}");
    let opts = CheckOptions {
        pedantic: true,
        ..CheckOptions::default()
    };
    assert_eq!(codes(&check(&spec, src, &opts)), ["LS202"]);
}

#[test]
fn a_spec_kit_feature_in_a_language_without_a_dictionary_still_yields_its_structure() {
    // Korean: no heading of this feature is in the classifier's dictionary.
    let src = "# 기능 명세: 카운터\n\n## 사용자 시나리오 및 테스트\n\n### 사용자 스토리 1 - 증가 (우선순위: P1)\n\n\
        버튼을 누르면 하나 증가한다.\n\n1. **전제** 카운트가 0, **만약** 버튼을 누르면, **그러면** 카운트는 1\n\n\
        ## 요구사항\n\n- **FR-001**: 시스템은 카운트를 저장해야 한다\n\n## 성공 기준\n\n- **SC-001**: 100ms 이내 표시\n";
    let (spec, d) = read_as(src, "specs/001-counter/spec.md");
    assert_eq!(spec.dialect, Dialect::SpecKit);
    let ids: Vec<&str> = spec.requirements.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["US-1", "FR-001"]);
    assert_eq!(
        spec.requirements[0].scenarios[0].steps.len(),
        3,
        "bold runs read by position"
    );
    assert_eq!(spec.success_criteria.len(), 1);
    assert!(d.is_empty(), "{d:#?}");
}

#[test]
fn openspec_renamed_requirements_point_at_their_old_name() {
    let main = "# cli\n\n## Purpose\nThe CLI.\n\n## Requirements\n\n### Requirement: Old Name\nThe CLI SHALL x.\n\n\
        #### Scenario: s\n- **WHEN** a\n- **THEN** b\n";
    let delta = "## RENAMED Requirements\n\n- FROM: `### Requirement: Old Name`\n- TO: `### Requirement: New Name`\n\n\
        - FROM: `### Requirement: Gone`\n- TO: `### Requirement: Elsewhere`\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let m = dir.path().join("openspec/specs/cli/spec.md");
    let c = dir.path().join("openspec/changes/rename/specs/cli/spec.md");
    for (p, s) in [(&m, main), (&c, delta)] {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, s).expect("write");
    }
    let checked = lightsout_spec::check_paths(
        &[dir.path().join("openspec")],
        None,
        false,
        &CheckOptions::default(),
    )
    .expect("check");
    let delta_spec = checked
        .specs
        .iter()
        .find(|s| s.dialect == Dialect::OpenSpecDelta)
        .expect("delta");
    assert_eq!(delta_spec.requirements[0].id, "new-name");
    assert_eq!(
        delta_spec.requirements[0].delta,
        Some(lightsout_spec::DeltaOp::Renamed {
            from: "Old Name".to_owned()
        })
    );
    let project: Vec<&str> = checked
        .report
        .project
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(
        project,
        ["LS305"],
        "only `Gone` is missing from the main spec"
    );
}
