//! Import (real MADR collection, DECISIONS.md, spec decisions) and export round trips.

use crate::Fixture;
use lightsout_memory::import::SourceKind;
use lightsout_memory::{
    Author, Ecosystem, ExportOptions, Filter, Guard, Identity, Kind, Memory, NewRecord, Provenance,
    RecordId, Scope, Status, from_millis,
};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p)
}

fn imports_the_real_madr_collection_and_searches_it(fx: Fixture) {
    let Fixture { dir: _d, mem, .. } = fx;
    let rep = mem
        .import_path(&fixture("madr"), None, &mut |_, _| {})
        .unwrap();
    assert_eq!(rep.source, SourceKind::Madr);
    assert_eq!((rep.records, rep.created), (7, 7));
    assert!(rep.diagnostics.is_empty(), "{:?}", rep.diagnostics);

    let lic = mem
        .list(Filter::Current { statuses: vec![] }, &[])
        .unwrap()
        .into_iter()
        .find(|r| r.title == "Dual License the Work")
        .unwrap();
    assert_eq!(lic.id, RecordId(1), "keeps the MADR number");
    assert_eq!(
        lic.external_key.as_deref(),
        Some("madr:0001-use-CC0-or-MIT-as-license.md")
    );
    assert!(lic.decision.starts_with("Chosen option: \"Dual license\""));
    assert_eq!(lic.rejected_options.len(), 5);
    assert!(lic.rejected_options.iter().any(|o| o == "BSD3"));
    assert!(
        !lic.rejected_options
            .iter()
            .any(|o| o.contains("Dual license"))
    );

    let hits = mem
        .search(
            "YAML front matter metadata",
            Filter::Current { statuses: vec![] },
            3,
        )
        .unwrap();
    assert_eq!(hits[0].record.title, "Use YAML front matter for metadata");
    let hits = mem
        .search(
            "which license, MIT or CC0",
            Filter::Current { statuses: vec![] },
            3,
        )
        .unwrap();
    assert_eq!(hits[0].record.title, "Dual License the Work");
    let pack = mem
        .context_pack("name the heading for the confirmation check", &[], 300)
        .unwrap();
    assert_eq!(pack.items[0].title, "Use \"Confirmation\" as Heading");

    // Importing again changes nothing.
    let again = mem
        .import_path(&fixture("madr"), None, &mut |_, _| {})
        .unwrap();
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 7));
}

fn imports_a_specs_decisions_section(fx: Fixture) {
    let Fixture { dir, mem, .. } = fx;
    let spec = dir.path().join("standup.md");
    std::fs::write(
        &spec,
        "---\nid: standup-bot\ntitle: Standup bot\nkind: feature\n---\n# Standup bot\n\n## Intent\nx\n\n## Decisions\n- DEC-1: Poll at the posting time instead of subscribing to webhooks, because the service has no public URL.\n- DEC-2: Store state in SQLite. Because one file is enough.\n\n## Verification gate\n- x\n",
    )
    .unwrap();
    let rep = mem.import_path(&spec, None, &mut |_, _| {}).unwrap();
    assert_eq!(rep.source, SourceKind::Spec);
    assert_eq!(rep.created, 2);
    let r = mem.get(rep.ids[1]).unwrap();
    assert_eq!(r.title, "Store state in SQLite");
    assert_eq!(r.provenance.spec.as_deref(), Some("standup-bot"));
    assert_eq!(r.provenance.requirement.as_deref(), Some("DEC-2"));
    assert_eq!(r.external_key.as_deref(), Some("spec:standup-bot#DEC-2"));
}

fn decisions_md_export_is_deterministic_and_written_atomically(fx: Fixture) {
    let Fixture { dir, mem, .. } = fx;
    let mut d = NewRecord::decision("SQLite | not Postgres", "## One file\nNo server.");
    d.guards.push(Guard::ForbidDependency {
        name: "postgres".into(),
        ecosystem: None,
    });
    d.scope.paths.push("src/store/**".into());
    mem.add(d).unwrap();
    let out = dir.path().join("DECISIONS.md");
    mem.export_decisions_md(&out, ExportOptions::default())
        .unwrap();
    let first = std::fs::read_to_string(&out).unwrap();
    mem.export_decisions_md(&out, ExportOptions::default())
        .unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), first);
    assert!(first.contains("| M-1 | decision | accepted | SQLite \\| not Postgres |"));
    assert!(first.contains("\\## One file"), "body headings are escaped");
    assert!(first.contains("```lightsout-guards"));
    // No temporary files left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".lightsout")
        .collect();
    assert_eq!(names, ["DECISIONS.md"]);
}

// ---------- property tests: import → export is stable ----------

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec("[#\\\\*-]{0,2}[ a-zA-Z0-9_.,:;!?()-]{0,24}", 0..5)
        .prop_map(|v| v.join("\n"))
}

fn opt(re: &'static str) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(re)
}

fn guard() -> impl Strategy<Value = Guard> {
    prop_oneof![
        (
            "[a-z][a-z0-9_-]{0,8}",
            proptest::option::of(prop_oneof![
                Just(Ecosystem::Cargo),
                Just(Ecosystem::Npm),
                Just(Ecosystem::Pypi)
            ])
        )
            .prop_map(|(name, ecosystem)| Guard::ForbidDependency { name, ecosystem }),
        "[a-z]{1,5}/\\*\\*".prop_map(|glob| Guard::ForbidPath { glob }),
        (
            "[a-z`\"\\\\.]{1,6}",
            proptest::option::of("[a-z]{1,4}/\\*\\.rs")
        )
            .prop_map(|(r, paths)| Guard::ForbidAdded {
                regex: regex::escape(&r),
                paths
            }),
        ("[a-z]{1,6}", "[a-z]{1,4}/\\*\\.sql")
            .prop_map(|(regex, paths)| Guard::RequireAdded { regex, paths }),
    ]
}

prop_compose! {
    fn record()(
        kind in prop_oneof![Just(Kind::Decision), Just(Kind::Pattern)],
        status in proptest::sample::select(Status::ALL.to_vec()),
        title in "[A-Za-z][A-Za-z0-9 ,.'():|#-]{0,30}",
        context in text(), decision in text(), consequences in text(),
        rejected in proptest::collection::vec("opt [A-Za-z0-9 ,.*-]{0,20}", 0..3),
        paths in proptest::collection::vec("[a-z]{1,5}(/[a-z]{1,5}){0,2}(/\\*\\*)?", 0..3),
        tags in proptest::collection::vec("[a-z][a-z0-9-]{0,8}", 0..3),
        spec in opt("[a-z0-9-]{1,10}"), requirement in opt("[A-Z]{2,4}-[0-9]{1,3}"),
        run in opt("[a-z0-9-]{1,10}"), commit in opt("[0-9a-f]{7,12}"),
        factory in any::<bool>(),
        guards in proptest::collection::vec(guard(), 0..3),
        from in 0i64..4_000_000_000_000, midnight in any::<bool>(),
        to in proptest::option::of(0i64..100_000_000_000),
        supersedes in proptest::option::of(1i64..50), superseded_by in proptest::option::of(1i64..50),
        key in opt("[a-z]{1,5}:[a-z0-9/._-]{1,10}"),
    ) -> NewRecord {
        let from = if midnight { from - from.rem_euclid(86_400_000) } else { from };
        NewRecord {
            kind, status, title, context, decision, consequences,
            rejected_options: rejected,
            scope: Scope { paths, tags },
            provenance: Provenance { spec, requirement, run, commit, author: if factory { Author::Factory } else { Author::Human } },
            guards,
            valid_from: Some(from_millis(from)),
            valid_to: to.map(|d| from_millis(from + d)),
            identity: Identity::New,
            external_key: key,
            id_hint: None,
            supersedes: supersedes.map(RecordId),
            superseded_by: superseded_by.map(RecordId),
        }
    }
}

fn filled(recs: &[NewRecord]) -> Memory {
    let mem = Memory::open_in_memory().unwrap();
    for r in recs {
        mem.add(r.clone()).unwrap();
    }
    mem
}

/// The fields an export carries (not transaction time or versions).
fn comparable(mem: &Memory) -> Vec<NewRecord> {
    mem.current_records()
        .unwrap()
        .iter()
        .map(|r| NewRecord {
            identity: Identity::New,
            id_hint: None,
            ..r.to_new()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn decisions_md_round_trips(recs in proptest::collection::vec(record(), 0..6)) {
        let a = filled(&recs);
        let text1 = a.render_decisions_md(ExportOptions::default()).unwrap();
        let (parsed, diags) = lightsout_memory::import::parse_decisions_md(&text1);
        prop_assert!(diags.is_empty(), "{:?}", diags);
        let b = Memory::open_in_memory().unwrap();
        b.import_records(SourceKind::Decisions, parsed, vec![], &mut |_, _| {}).unwrap();
        let text2 = b.render_decisions_md(ExportOptions::default()).unwrap();
        prop_assert_eq!(&text1, &text2);
        prop_assert_eq!(comparable(&a), comparable(&b));
        // Importing the same file again into the same store changes nothing.
        let (parsed, _) = lightsout_memory::import::parse_decisions_md(&text2);
        let rep = b.import_records(SourceKind::Decisions, parsed, vec![], &mut |_, _| {}).unwrap();
        prop_assert_eq!(rep.unchanged, rep.records);
    }

    #[test]
    fn madr_round_trips(recs in proptest::collection::vec(record(), 0..5)) {
        let a = filled(&recs);
        let d1 = tempfile::tempdir().unwrap();
        let d2 = tempfile::tempdir().unwrap();
        a.export_madr(d1.path(), ExportOptions::default()).unwrap();
        let b = Memory::open_in_memory().unwrap();
        if !recs.is_empty() {
            let rep = b.import_path(d1.path(), Some(SourceKind::Madr), &mut |_, _| {}).unwrap();
            prop_assert!(rep.diagnostics.is_empty(), "{:?}", rep.diagnostics);
        }
        b.export_madr(d2.path(), ExportOptions::default()).unwrap();
        let read = |d: &Path| {
            let mut v: Vec<(String, String)> = std::fs::read_dir(d).unwrap().map(|e| {
                let e = e.unwrap();
                (e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).unwrap())
            }).collect();
            v.sort();
            v
        };
        prop_assert_eq!(read(d1.path()), read(d2.path()));
        prop_assert_eq!(comparable(&a), comparable(&b));
    }

    #[test]
    fn importers_never_panic(s in "(?s).{0,400}", name in "[a-z0-9-]{0,12}\\.md") {
        let _ = lightsout_memory::import::parse_madr(&name, &s);
        let _ = lightsout_memory::import::parse_decisions_md(&s);
        let _ = lightsout_memory::import::parse_spec_decisions("x", &s);
        let _ = lightsout_memory::guard::parse_unified_diff(&s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever a hand-written DECISIONS.md yields, once stored, exports to a document that
    /// reads back to the same export (the fuzz target checks the same on any bytes).
    #[test]
    fn any_imported_decisions_md_exports_stably(
        s in "((## |### |- |```|M-[0-9]: |Status: |Paths: |`|\\\\|#)?[ a-zA-Z0-9:`|*-]{0,12}\n){0,14}",
    ) {
        let (records, _) = lightsout_memory::import::parse_decisions_md(&s);
        let a = Memory::open_in_memory().unwrap();
        if a.import_records(SourceKind::Decisions, records, vec![], &mut |_, _| {}).is_ok() {
            let first = a.render_decisions_md(ExportOptions::default()).unwrap();
            let (again, diags) = lightsout_memory::import::parse_decisions_md(&first);
            prop_assert!(diags.is_empty(), "{:?}", diags);
            let b = Memory::open_in_memory().unwrap();
            b.import_records(SourceKind::Decisions, again, vec![], &mut |_, _| {}).unwrap();
            prop_assert_eq!(first, b.render_decisions_md(ExportOptions::default()).unwrap());
        }
    }
}

crate::both!(
    imports_the_real_madr_collection_and_searches_it,
    imports_a_specs_decisions_section,
    decisions_md_export_is_deterministic_and_written_atomically,
);
