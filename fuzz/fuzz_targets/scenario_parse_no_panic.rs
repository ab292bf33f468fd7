//! The scenario loaders never panic: any bytes, read as a `*.scenario.md` (pulldown-cmark) and
//! as a `*.feature` (gherkin), parse to scenarios plus diagnostics whose spans lie inside the
//! input; resolving against the built-in step library and scanning the input for leaks also
//! never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lightsout_eval::{LeakScanner, StepLibrary, Suite};
use std::path::Path;
use std::sync::LazyLock;

static LIB: LazyLock<StepLibrary> = LazyLock::new(StepLibrary::builtin);

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    for name in ["f.scenario.md", "f.feature"] {
        let mut suite = Suite::default();
        let mut diags = Vec::new();
        suite.add_source(Path::new(name), &src, &mut diags);
        diags.extend(suite.resolve(&LIB));
        for d in &diags {
            assert!(
                d.span.start <= d.span.end && d.span.end <= src.len(),
                "{d:?}"
            );
        }
        for st in suite.scenarios.iter().flat_map(|s| &s.steps) {
            assert!(st.span.end <= src.len());
        }
        let _ = LeakScanner::from_suite(&suite).scan(&src);
    }
});
