//! The twin definition parser (YAML and TOML) never panics on any bytes; every diagnostic
//! span lies inside the input; a definition without errors builds a twin that answers a
//! request, a control call and an unmodelled path without panicking; the OpenAPI importer
//! never panics either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lightsout_twin::{Format, Twin, TwinOptions, TwinRequest, parse_definition};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for format in [Format::Yaml, Format::Toml] {
        let (def, diags) = parse_definition(&text, format);
        for d in &diags {
            assert!(d.span.start <= d.span.end && d.span.end <= text.len(), "{d:?}");
        }
        let usable = diags.iter().all(|d| d.severity != lightsout_spec::Severity::Error);
        if let (Some(def), true) = (def, usable) {
            let opts = TwinOptions { latency: false, ..TwinOptions::default() };
            if let Ok(twin) = Twin::new(def.clone(), opts) {
                for route in def.routes.iter().take(8) {
                    let method = route.method.as_deref().unwrap_or("GET");
                    let method = http::Method::from_bytes(method.as_bytes()).unwrap_or(http::Method::GET);
                    let mut req = TwinRequest::new(method, &route.path.replace(['{', '}'], ""));
                    req.body = bytes::Bytes::copy_from_slice(data);
                    let _ = twin.handle(&req);
                }
                let _ = twin.handle(&TwinRequest::new(http::Method::GET, "/__twin/state"));
                let _ = twin.handle(&TwinRequest::new(http::Method::GET, "/no/such/path"));
            }
        }
    }
    let _ = lightsout_twin::openapi::import(&text, "fuzz", "fuzz");
});
