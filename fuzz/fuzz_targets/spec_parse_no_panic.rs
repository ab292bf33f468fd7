//! `lightsout_spec::parse` + `check` never panic on any bytes, and every diagnostic's span
//! lies inside the decoded text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightsout_spec::{CheckOptions, check, parse};

fuzz_target!(|data: &[u8]| {
    let (spec, mut diags) = parse(data, None, None);
    let text = String::from_utf8_lossy(data);
    diags.extend(check(&spec, &text, &CheckOptions::default()));
    for d in &diags {
        assert!(d.span.start <= d.span.end);
        assert!(d.span.line >= 1 && d.span.column >= 1);
    }
    let _ = lightsout_spec::render::to_markdown(&spec);
});
