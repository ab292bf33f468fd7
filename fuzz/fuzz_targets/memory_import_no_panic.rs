//! The decision-memory importers and the diff parser never panic on any input; and whatever
//! a DECISIONS.md parse yields, once stored and exported, parses back to the same export.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lightsout_memory::import::{SourceKind, parse_decisions_md, parse_madr, parse_spec_decisions};
use lightsout_memory::{ExportOptions, Memory};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_madr("docs/decisions/0001-fuzz.md", &text);
    let _ = parse_spec_decisions("fuzz", &text);
    let _ = lightsout_memory::guard::parse_unified_diff(&text);
    let (records, _) = parse_decisions_md(&text);
    let Ok(mem) = Memory::open_in_memory() else {
        return;
    };
    // Invalid records are refused as a whole batch; that is fine, it must not panic.
    if mem
        .import_records(SourceKind::Decisions, records, Vec::new(), &mut |_, _| {})
        .is_ok()
    {
        let Ok(first) = mem.render_decisions_md(ExportOptions::default()) else {
            return;
        };
        let (again, diags) = parse_decisions_md(&first);
        assert!(diags.is_empty(), "own export has diagnostics: {diags:?}");
        let fresh = Memory::open_in_memory().expect("in-memory store");
        fresh
            .import_records(SourceKind::Decisions, again, Vec::new(), &mut |_, _| {})
            .expect("own export imports");
        let second = fresh
            .render_decisions_md(ExportOptions::default())
            .expect("render");
        assert_eq!(first, second);
    }
});
