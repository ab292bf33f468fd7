//! `OpenAPI` 3 import: a skeleton twin with one route per operation, validating JSON request
//! bodies against the operation's schema and answering with the documented example.
//!
//! Source: `OpenAPI` Specification 3.0.3 / 3.1.0 (Paths, Operation, Request Body, Responses,
//! Media Type objects; `$ref` to `#/components/...`). Operations without an example answer
//! `501` with `X-Twin-Unsupported`: the importer never invents a body.

use crate::def::{Provenance, ResponseDef, RouteDef, TwinDef};
use lightsout_spec::{Diagnostic, Severity, Span};
use serde_json::Value;
use std::collections::BTreeMap;

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

/// Imports an `OpenAPI` 3 document (YAML or JSON text). Returns the skeleton twin (when the
/// text is an `OpenAPI` 3 document at all) and the problems met.
pub fn import(text: &str, name: &str, source: &str) -> (Option<TwinDef>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let doc: Value = match serde_norway::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            diags.push(Diagnostic::new(
                "LS055",
                Severity::Error,
                Span::from_range(text, 0, 0),
                format!(
                    "openapi document does not parse: {}",
                    e.to_string().to_lowercase()
                ),
                "give a YAML or JSON OpenAPI 3 file",
            ));
            return (None, diags);
        }
    };
    let version = doc
        .get("openapi")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !version.starts_with('3') {
        diags.push(Diagnostic::new(
            "LS055",
            Severity::Error,
            Span::from_range(text, 0, 0),
            "not an openapi 3 document (no `openapi: 3.x`)".to_string(),
            "convert Swagger 2 files with swagger2openapi first",
        ));
        return (None, diags);
    }
    let mut routes = Vec::new();
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (path, item) in &paths {
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            let pointer = format!("#/paths/{}/{m}", path.replace('~', "~0").replace('/', "~1"));
            let validate = op
                .pointer("/requestBody/content/application~1json/schema")
                .map(|s| resolve(&doc, s, 0));
            let (status, example) = first_success(&doc, op);
            let response = if let Some(body) = example {
                ResponseDef {
                    status,
                    headers: BTreeMap::new(),
                    body,
                }
            } else {
                let at = text.find(path.as_str()).unwrap_or(0);
                diags.push(Diagnostic::new(
                    "LS056",
                    Severity::Info,
                    Span::from_range(text, at, at + path.len()),
                    format!(
                        "{} {path} has no example response; the twin answers 501",
                        m.to_uppercase()
                    ),
                    "add an `example` to the response's media type, or write the route by hand",
                ));
                ResponseDef {
                    status: 501,
                    headers: BTreeMap::from([(
                        "X-Twin-Unsupported".to_string(),
                        format!("{} {path}", m.to_uppercase()),
                    )]),
                    body: serde_json::json!({"error": "unsupported", "message": "no example in the OpenAPI document"}),
                }
            };
            routes.push(RouteDef {
                method: Some(m.to_uppercase()),
                path: path.clone(),
                source: Some(format!("{source}{pointer}")),
                validate,
                response,
                ..RouteDef::default()
            });
        }
    }
    let title = doc
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or(name);
    let def = TwinDef {
        name: name.to_string(),
        description: format!("skeleton twin imported from the OpenAPI document of {title}"),
        provenance: Provenance {
            source: source.to_string(),
            date: None,
        },
        routes,
        ..TwinDef::default()
    };
    (Some(def), diags)
}

/// Follows `$ref`s into `#/components/...` (depth-limited so cycles cannot hang).
fn resolve(doc: &Value, v: &Value, depth: usize) -> Value {
    if depth > 16 {
        return Value::Object(serde_json::Map::new());
    }
    match v {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                let target = r
                    .strip_prefix('#')
                    .and_then(|p| doc.pointer(p))
                    .cloned()
                    .unwrap_or(Value::Null);
                return resolve(doc, &target, depth + 1);
            }
            Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), resolve(doc, x, depth + 1)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve(doc, x, depth + 1)).collect()),
        other => other.clone(),
    }
}

fn first_success(doc: &Value, op: &Value) -> (u16, Option<Value>) {
    let Some(responses) = op.get("responses").and_then(Value::as_object) else {
        return (200, None);
    };
    let mut codes: Vec<(&String, &Value)> = responses
        .iter()
        .filter(|(k, _)| k.starts_with('2'))
        .collect();
    codes.sort_by_key(|(k, _)| (*k).clone());
    let Some((code, resp)) = codes.first() else {
        return (200, None);
    };
    let status = code.parse().unwrap_or(200);
    let resp = resolve(doc, resp, 0);
    let media = resp.pointer("/content/application~1json");
    let example = media
        .and_then(|m| m.get("example").cloned())
        .or_else(|| {
            media
                .and_then(|m| m.pointer("/examples").and_then(Value::as_object))
                .and_then(|e| e.values().next())
                .and_then(|e| e.get("value").cloned())
        })
        .or_else(|| media.and_then(|m| m.pointer("/schema/example")).cloned());
    if status == 204 {
        return (204, Some(Value::Null));
    }
    (status, example)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Twin, TwinOptions, TwinRequest};

    const PETS: &str = r##"
openapi: 3.0.3
info: {title: Pets, version: "1"}
paths:
  /pets:
    post:
      requestBody:
        content:
          application/json:
            schema: {$ref: "#/components/schemas/NewPet"}
      responses:
        "201":
          description: created
          content:
            application/json:
              example: {id: 1, name: Rex}
  /pets/{id}:
    get:
      responses:
        "200": {description: ok}
components:
  schemas:
    NewPet: {type: object, required: [name], properties: {name: {type: string}}}
"##;

    #[test]
    fn imports_validates_and_never_invents() {
        let (def, diags) = import(PETS, "pets", "pets.yaml");
        let def = def.unwrap();
        assert_eq!(def.routes.len(), 2);
        assert_eq!(diags.len(), 1, "the example-less GET is reported");
        let t = Twin::new(def, TwinOptions::default()).unwrap();
        let mut ok = TwinRequest::new(http::Method::POST, "/pets");
        ok.body = bytes::Bytes::from(r#"{"name":"Rex"}"#);
        assert_eq!(t.handle(&ok).status, 201);
        let mut bad = TwinRequest::new(http::Method::POST, "/pets");
        bad.body = bytes::Bytes::from(r#"{"name":3}"#);
        let r = t.handle(&bad);
        assert_eq!(r.status, 400);
        assert_eq!(r.body_json()["errors"][0], "/name: expected string");
        let g = t.handle(&TwinRequest::new(http::Method::GET, "/pets/1"));
        assert_eq!(g.status, 501);
        assert!(g.header("x-twin-unsupported").is_some());
        assert!(import("swagger: '2.0'", "x", "x").0.is_none());
    }
}
