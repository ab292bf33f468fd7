//! Request matchers: path templates, query and header constraints, JSON body subsets.

use serde_json::Value;
use std::collections::BTreeMap;

/// A parsed path template such as `/repos/{owner}/{repo}/issues`.
///
/// Invariant: every segment is either a literal or a named capture matching exactly one
/// non-empty path segment. A trailing `{name*}` captures the rest of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Capture(String),
    Rest(String),
}

impl PathTemplate {
    /// Parses a template.
    ///
    /// # Errors
    /// A message when the template does not start with `/`, has an unbalanced brace or an
    /// empty capture name, or a `{rest*}` capture that is not last.
    pub fn parse(template: &str) -> Result<Self, String> {
        if !template.starts_with('/') {
            return Err(format!("path template {template:?} must start with `/`"));
        }
        let parts: Vec<&str> = template[1..].split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if let Some(name) = inner.strip_suffix('*') {
                    if i + 1 != parts.len() || name.is_empty() {
                        return Err(format!(
                            "`{{{inner}}}` must be the last segment of {template:?}"
                        ));
                    }
                    segments.push(Segment::Rest(name.to_string()));
                } else if inner.is_empty() || inner.contains(['{', '}']) {
                    return Err(format!(
                        "empty or nested capture in path template {template:?}"
                    ));
                } else {
                    segments.push(Segment::Capture(inner.to_string()));
                }
            } else if part.contains(['{', '}']) {
                return Err(format!("unbalanced brace in path template {template:?}"));
            } else {
                segments.push(Segment::Literal((*part).to_string()));
            }
        }
        Ok(PathTemplate { segments })
    }

    /// Matches a request path (no query), returning the captures (percent-decoded).
    pub fn matches(&self, path: &str) -> Option<BTreeMap<String, String>> {
        let path = path.strip_prefix('/')?;
        let mut parts = path.split('/');
        let mut caps = BTreeMap::new();
        for seg in &self.segments {
            match seg {
                Segment::Literal(l) => {
                    if parts.next()? != l {
                        return None;
                    }
                }
                Segment::Capture(name) => {
                    let p = parts.next()?;
                    if p.is_empty() {
                        return None;
                    }
                    caps.insert(name.clone(), percent_decode(p));
                }
                Segment::Rest(name) => {
                    let rest: Vec<&str> = parts.by_ref().collect();
                    caps.insert(name.clone(), percent_decode(&rest.join("/")));
                    return Some(caps);
                }
            }
        }
        if parts.next().is_some() {
            return None;
        }
        Some(caps)
    }
}

/// Decodes `%XX` escapes and `+` (as space, for form bodies) leniently: bad escapes stay as is.
pub fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Parses `a=1&b=2` into a map (last value wins).
pub fn parse_query(q: &str) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// True when every constraint holds; `*` means "present with any value".
pub fn constraints_hold(
    wanted: &BTreeMap<String, String>,
    lookup: impl Fn(&str) -> Option<String>,
) -> bool {
    wanted.iter().all(|(k, v)| match lookup(k) {
        Some(actual) => v == "*" || actual == *v,
        None => false,
    })
}

/// JSON subset match: every key of an object in `want` must be in `have` with a matching
/// value; arrays must match element-wise in length and order; scalars must be equal.
pub fn json_contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| h.get(k).is_some_and(|hv| json_contains(hv, wv))),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(a, b)| json_contains(a, b))
        }
        _ => have == want,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn captures_and_literals() {
        let t = PathTemplate::parse("/repos/{owner}/{repo}/issues").unwrap();
        let caps = t.matches("/repos/acme/rocket%20ship/issues").unwrap();
        assert_eq!(caps["owner"], "acme");
        assert_eq!(caps["repo"], "rocket ship");
        assert!(t.matches("/repos/acme/x/issues/1").is_none());
        assert!(t.matches("/repos/acme//issues").is_none());
        let rest = PathTemplate::parse("/files/{p*}").unwrap();
        assert_eq!(rest.matches("/files/a/b/c").unwrap()["p"], "a/b/c");
    }

    #[test]
    fn bad_templates_are_rejected() {
        for t in ["x", "/a/{", "/a/{}", "/{a*}/b", "/a}b"] {
            assert!(PathTemplate::parse(t).is_err(), "{t}");
        }
    }

    #[test]
    fn body_subset() {
        let have = json!({"a": 1, "b": {"c": [1, 2], "d": "x"}});
        assert!(json_contains(&have, &json!({"b": {"c": [1, 2]}})));
        assert!(!json_contains(&have, &json!({"b": {"c": [1]}})));
        assert!(!json_contains(&have, &json!({"z": 1})));
    }

    proptest! {
        #[test]
        fn a_template_matches_the_path_it_was_built_from(segs in proptest::collection::vec("[a-z0-9]{1,8}", 1..6), mask in any::<u8>()) {
            let mut tpl = String::new();
            let mut path = String::new();
            for (i, s) in segs.iter().enumerate() {
                path.push('/');
                path.push_str(s);
                tpl.push('/');
                if mask & (1 << (i % 8)) != 0 { tpl.push_str("{p"); tpl.push_str(&i.to_string()); tpl.push('}'); } else { tpl.push_str(s); }
            }
            let t = PathTemplate::parse(&tpl).unwrap();
            let caps = t.matches(&path).unwrap();
            for (i, s) in segs.iter().enumerate() {
                if let Some(v) = caps.get(&format!("p{i}")) { prop_assert_eq!(v, s); }
            }
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = PathTemplate::parse(&s).map(|t| t.matches(&s));
        }
    }
}
