//! Generated malformed variants of a request, for the adversarial check kind.
//!
//! Families follow the usual fuzzing dictionaries (OWASP testing guide input-validation
//! chapter): truncated JSON, wrong types, huge strings, control characters, injection strings,
//! invalid UTF-8 and a lying content type. The set is deterministic so that trials are
//! comparable.

use serde_json::Value;
use std::fmt::Write as _;

/// Size of the generated huge strings, in bytes (256 KiB).
pub const HUGE_LEN: usize = 256 * 1024;

/// Injection payloads: SQL, shell, path traversal, template, JNDI and script.
pub const INJECTIONS: &[&str] = &[
    "' OR '1'='1' --",
    "\"; DROP TABLE users; --",
    "$(id)`id`",
    "../../../../etc/passwd",
    "{{7*7}}${7*7}",
    "${jndi:ldap://127.0.0.1/a}",
    "<script>alert(1)</script>",
    "%00%0d%0aSet-Cookie:x=1",
];

/// Control characters, including NUL, escape and a lone CR/LF.
pub const CONTROL: &str = "\u{0}\u{1}\u{7}\u{8}\u{1b}[31m\r\n\t\u{7f}\u{85}\u{2028}";

/// One malformed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The family (`truncated_json`, `wrong_type`, `huge_string`, `control_chars`,
    /// `injection`, `invalid_utf8`, `wrong_content_type`, `deep_nesting`).
    pub family: &'static str,
    /// Path and query.
    pub path: String,
    /// Body bytes, when any.
    pub body: Option<Vec<u8>>,
    /// Content type for the body.
    pub content_type: &'static str,
}

fn push_json(out: &mut Vec<Variant>, family: &'static str, path: &str, v: &Value) {
    out.push(Variant {
        family,
        path: path.to_owned(),
        body: Some(v.to_string().into_bytes()),
        content_type: "application/json",
    });
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass through).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The malformed variants of a request to `path` with an optional JSON `base` body.
///
/// With a JSON object body, every top-level field is mutated in turn (wrong types, huge,
/// control and injection strings) and the body is truncated at several points. Query
/// parameters in `path` are mutated the same way. Without either, the path itself gets
/// huge, control and injection suffixes. Never empty.
pub fn variants(path: &str, base: Option<&str>) -> Vec<Variant> {
    let mut out = Vec::new();
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    if let Some(text) = base {
        body_variants(&mut out, path, text);
    }
    query_variants(&mut out, route, query, base.is_none());
    out
}

/// Variants of the JSON body `text` of a request to `path`: truncated, mislabelled, not
/// UTF-8, deeply nested, and each top-level field mutated in turn.
fn body_variants(out: &mut Vec<Variant>, path: &str, text: &str) {
    let bytes = text.as_bytes();
    for cut in [1, bytes.len() / 2, bytes.len().saturating_sub(1)] {
        if cut > 0 && cut < bytes.len() {
            out.push(Variant {
                family: "truncated_json",
                path: path.to_owned(),
                body: Some(bytes[..cut].to_vec()),
                content_type: "application/json",
            });
        }
    }
    out.push(Variant {
        family: "wrong_content_type",
        path: path.to_owned(),
        body: Some(bytes.to_vec()),
        content_type: "text/plain",
    });
    out.push(Variant {
        family: "invalid_utf8",
        path: path.to_owned(),
        body: Some(b"{\"a\":\"\xff\xfe\xc3\x28\"}".to_vec()),
        content_type: "application/json",
    });
    let nested = format!("{}{}", "[".repeat(256), "]".repeat(256));
    out.push(Variant {
        family: "deep_nesting",
        path: path.to_owned(),
        body: Some(nested.into_bytes()),
        content_type: "application/json",
    });
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => {
            for key in map.keys() {
                let mut set = |family: &'static str, v: Value| {
                    let mut m = map.clone();
                    m.insert(key.clone(), v);
                    push_json(out, family, path, &Value::Object(m));
                };
                for wrong in [
                    Value::from(12345),
                    Value::Bool(true),
                    Value::Null,
                    Value::Array(vec![]),
                    serde_json::json!({"nested": {}}),
                ] {
                    set("wrong_type", wrong);
                }
                set("huge_string", Value::String("A".repeat(HUGE_LEN)));
                set("control_chars", Value::String(CONTROL.to_owned()));
                for inj in INJECTIONS {
                    set("injection", Value::String((*inj).to_owned()));
                }
            }
        }
        _ => {
            for wrong in [
                Value::from(12345),
                Value::Null,
                serde_json::json!({"a": []}),
            ] {
                push_json(out, "wrong_type", path, &wrong);
            }
        }
    }
}

/// Variants of the query of a request to `route`: each parameter of `query` mutated in
/// turn, or, for a `bare` request (no query, no body), a hostile `q` parameter.
fn query_variants(out: &mut Vec<Variant>, route: &str, query: &str, bare: bool) {
    let params: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let mut hostile: Vec<(&'static str, String)> = vec![
        ("huge_string", "A".repeat(4096)),
        ("control_chars", CONTROL.to_owned()),
    ];
    hostile.extend(INJECTIONS.iter().map(|i| ("injection", (*i).to_owned())));
    if params.is_empty() {
        if bare {
            for (family, value) in &hostile {
                out.push(Variant {
                    family,
                    path: format!("{route}?q={}", encode(value)),
                    body: None,
                    content_type: "application/json",
                });
            }
        }
    } else {
        for i in 0..params.len() {
            for (family, value) in &hostile {
                let q: Vec<String> = params
                    .iter()
                    .enumerate()
                    .map(|(j, (k, v))| {
                        if i == j {
                            format!("{k}={}", encode(value))
                        } else {
                            format!("{k}={v}")
                        }
                    })
                    .collect();
                out.push(Variant {
                    family,
                    path: format!("{route}?{}", q.join("&")),
                    body: None,
                    content_type: "application/json",
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn json_object_gets_every_family() {
        let v = variants("/post", Some(r#"{"name":"ann","age":3}"#));
        for family in [
            "truncated_json",
            "wrong_type",
            "huge_string",
            "control_chars",
            "injection",
            "invalid_utf8",
            "wrong_content_type",
            "deep_nesting",
        ] {
            assert!(v.iter().any(|x| x.family == family), "missing {family}");
        }
        // Truncations really are invalid JSON.
        for t in v.iter().filter(|x| x.family == "truncated_json") {
            assert!(serde_json::from_slice::<Value>(t.body.as_ref().unwrap()).is_err());
        }
    }

    #[test]
    fn query_parameters_are_mutated_and_encoded() {
        let v = variants("/get?a=1&b=2", None);
        assert!(!v.is_empty());
        assert!(
            v.iter()
                .all(|x| x.body.is_none() && x.path.starts_with("/get?a="))
        );
        assert!(
            v.iter()
                .all(|x| !x.path.contains(' ') && !x.path.contains('\n'))
        );
    }

    proptest! {
        #[test]
        fn never_empty_and_paths_stay_printable(path in "/[a-z/?=&]{0,20}", body in proptest::option::of(".{0,40}")) {
            let v = variants(&path, body.as_deref());
            prop_assert!(!v.is_empty());
            for x in &v {
                prop_assert!(x.path.chars().all(|c| c.is_ascii_graphic()));
            }
        }
    }
}
