//! Response templates: JSON values whose string leaves may hold `{{expr}}` placeholders.
//!
//! An expression is a dotted path into the scope, e.g. `{{request.body.text}}`,
//! `{{path.owner}}`, `{{item.id}}`, `{{now_s}}`, with numeric segments indexing arrays
//! (`{{items.0.id}}`). A `|` introduces a fallback used when the path is missing or null:
//! `{{query.limit|100}}` (the fallback is parsed as JSON, else taken as text).
//!
//! A string that is exactly one placeholder is replaced by the JSON value itself (so
//! `"{{items}}"` becomes an array); placeholders inside longer text are interpolated as text.
//!
//! Scope keys set by the engine: `request` (`method`, `path`, `query`, `headers`, `body`),
//! `path` (captures), `query`, `body`, `headers` (lower-case names), `item`, `items`,
//! `next_cursor`, `total`, `state` (collections by name), `now_ms`, `now_s`, `now_iso`,
//! `base_url`, `auth` (`subject`, `scopes`), `errors`.

use serde_json::Value;

/// Renders `tpl` against `scope`. Never fails: a missing path renders as `null` (or `""`
/// inside text).
pub fn render(tpl: &Value, scope: &Value) -> Value {
    match tpl {
        Value::String(s) => render_str(s, scope),
        Value::Array(a) => Value::Array(a.iter().map(|v| render(v, scope)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), render(v, scope)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Renders a string template; an exact single placeholder yields its JSON value.
pub fn render_str(s: &str, scope: &Value) -> Value {
    if !s.contains("{{") {
        return Value::String(s.to_string());
    }
    let trimmed = s.trim();
    if let Some(inner) = trimmed
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        && !inner.contains("{{")
        && !inner.contains("}}")
    {
        return eval(inner, scope);
    }
    Value::String(render_text(s, scope))
}

/// Renders a string template as text (values that are not strings are written as JSON).
pub fn render_text(s: &str, scope: &Value) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        if let Some(end) = after.find("}}") {
            match eval(&after[..end], scope) {
                Value::String(v) => out.push_str(&v),
                Value::Null => {}
                v => out.push_str(&v.to_string()),
            }
            rest = &after[end + 2..];
        } else {
            out.push_str(&rest[start..]);
            rest = "";
        }
    }
    out.push_str(rest);
    out
}

/// Evaluates one expression (`path.to.value|fallback`).
pub fn eval(expr: &str, scope: &Value) -> Value {
    let (path, fallback) = match expr.split_once('|') {
        Some((p, f)) => (p.trim(), Some(f.trim())),
        None => (expr.trim(), None),
    };
    let found = lookup(scope, path).cloned().unwrap_or(Value::Null);
    match (found, fallback) {
        (Value::Null, Some(f)) => {
            serde_json::from_str(f).unwrap_or_else(|_| Value::String(f.to_string()))
        }
        (v, _) => v,
    }
}

/// Follows a dotted path into a JSON value.
pub fn lookup<'a>(mut v: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(v);
    }
    for seg in path.split('.') {
        v = match v {
            Value::Object(o) => o.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn whole_placeholder_keeps_the_type_and_text_interpolates() {
        let scope = json!({"items": [{"id": 1}], "path": {"who": "ada"}, "n": 3});
        let tpl = json!({"all": "{{items}}", "first": "{{items.0.id}}", "hi": "hi {{path.who}} x{{n}}",
                         "missing": "{{nope}}", "fallback": "{{query.limit|100}}", "lit": 5});
        assert_eq!(
            render(&tpl, &scope),
            json!({"all": [{"id": 1}], "first": 1, "hi": "hi ada x3", "missing": null, "fallback": 100, "lit": 5})
        );
    }

    proptest! {
        #[test]
        fn text_without_braces_is_unchanged(s in "[^{}]{0,40}") {
            prop_assert_eq!(render_str(&s, &json!({})), Value::String(s.clone()));
        }

        #[test]
        fn render_never_panics(s in ".{0,60}") {
            let _ = render_str(&s, &json!({"a": [1, {"b": 2}]}));
        }
    }
}
