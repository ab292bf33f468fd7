//! A small JSON Schema validator for request bodies: the subset `OpenAPI` 3 request schemas
//! use most (`type`, `required`, `properties`, `additionalProperties: false`, `enum`,
//! `items`, `minLength`, `maxLength`, `minimum`, `maximum`, `nullable`).
//!
//! Source: JSON Schema Validation (draft 2020-12) §6, and `OpenAPI` 3.0.3 §4.7.24 for
//! `nullable`. Keywords outside the subset are ignored (never reported as failures).

use serde_json::Value;

/// Validates `v` against `schema`; returns one message per failure (`/pointer: problem`).
pub fn validate(v: &Value, schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(v, schema, "", &mut out, 0);
    out
}

fn type_ok(v: &Value, t: &str) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    }
}

fn walk(v: &Value, s: &Value, at: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 64 {
        return;
    }
    let Some(s) = s.as_object() else { return };
    if v.is_null() && s.get("nullable").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let here = if at.is_empty() { "/" } else { at };
    match s.get("type") {
        Some(Value::String(t)) if !type_ok(v, t) => {
            out.push(format!("{here}: expected {t}"));
            return;
        }
        Some(Value::Array(ts)) if !ts.iter().filter_map(Value::as_str).any(|t| type_ok(v, t)) => {
            out.push(format!("{here}: wrong type"));
            return;
        }
        _ => {}
    }
    if let Some(Value::Array(e)) = s.get("enum")
        && !e.contains(v)
    {
        out.push(format!("{here}: not one of the allowed values"));
    }
    if let Value::String(text) = v {
        let n = text.chars().count() as u64;
        if s.get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| n < m)
        {
            out.push(format!("{here}: shorter than minLength"));
        }
        if s.get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| n > m)
        {
            out.push(format!("{here}: longer than maxLength"));
        }
    }
    if let Some(x) = v.as_f64() {
        if s.get("minimum")
            .and_then(Value::as_f64)
            .is_some_and(|m| x < m)
        {
            out.push(format!("{here}: below minimum"));
        }
        if s.get("maximum")
            .and_then(Value::as_f64)
            .is_some_and(|m| x > m)
        {
            out.push(format!("{here}: above maximum"));
        }
    }
    if let Value::Object(o) = v {
        if let Some(Value::Array(req)) = s.get("required") {
            for r in req.iter().filter_map(Value::as_str) {
                if !o.contains_key(r) {
                    out.push(format!("{at}/{r}: required property missing"));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, child) in o {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => walk(child, ps, &format!("{at}/{k}"), out, depth + 1),
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    out.push(format!("{at}/{k}: property not allowed"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(a), Some(items)) = (v, s.get("items")) {
        for (i, child) in a.iter().enumerate() {
            walk(child, items, &format!("{at}/{i}"), out, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_every_problem_with_a_pointer() {
        let schema = json!({"type": "object", "required": ["title"], "additionalProperties": false,
            "properties": {"title": {"type": "string", "minLength": 1}, "labels": {"type": "array", "items": {"type": "string"}},
                           "state": {"enum": ["open", "closed"]}}});
        assert!(validate(&json!({"title": "x", "labels": ["a"]}), &schema).is_empty());
        let errs = validate(
            &json!({"labels": [1], "state": "gone", "extra": true}),
            &schema,
        );
        assert_eq!(
            errs,
            [
                "/title: required property missing",
                "/extra: property not allowed",
                "/labels/0: expected string",
                "/state: not one of the allowed values"
            ]
        );
        assert_eq!(validate(&json!(3), &schema), ["/: expected object"]);
    }
}
