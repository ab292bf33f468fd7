//! show → parse round trip: for any input read as a Lightsout spec, rendering the parsed spec
//! back to markdown and parsing that gives the same spec, spans and path aside.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightsout_spec::{Dialect, Spec, parse, render::to_markdown};

fn strip(spec: &Spec) -> serde_json::Value {
    fn zero(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(o) => {
                o.remove("span");
                o.values_mut().for_each(zero);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(zero),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(spec).expect("a Spec always serializes");
    zero(&mut v);
    if let Some(o) = v.as_object_mut() {
        o.remove("path");
    }
    v
}

fuzz_target!(|data: &[u8]| {
    let (a, _) = parse(data, None, Some(Dialect::Lightsout));
    let once = to_markdown(&a);
    let (b, _) = parse(once.as_bytes(), None, Some(Dialect::Lightsout));
    // The first rendering normalises what the model does not hold (prose, markdown styling);
    // from there on, show → parse must be the identity.
    let twice = to_markdown(&b);
    let (c, _) = parse(twice.as_bytes(), None, Some(Dialect::Lightsout));
    assert_eq!(strip(&b), strip(&c), "rendered:\n{twice}");
});
