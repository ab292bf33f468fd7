//! YAML front matter (`---` ... `---`) read with serde_norway, field by field so that each
//! problem gets its own diagnostic.

use crate::codes;
use crate::diagnostic::{Diagnostic, Severity, Span};
use crate::model::{FrontMatter, SpecKind, SpecStatus};
use serde_norway::Value;

/// Splits off front matter. Returns the YAML text's byte range and the range of the whole
/// block (delimiters included), or `None` when the text does not open with `---`.
pub(crate) fn split(text: &str) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let rest = text.get(bom..)?;
    let first_len = if rest.starts_with("---\n") {
        4
    } else if rest.starts_with("---\r\n") {
        5
    } else {
        return None;
    };
    let yaml_start = bom + first_len;
    let mut pos = yaml_start;
    for line in text.get(yaml_start..)?.split_inclusive('\n') {
        let t = line.trim_end_matches(['\r', '\n']);
        if t == "---" || t == "..." {
            return Some((yaml_start..pos, 0..pos + line.len()));
        }
        pos += line.len();
    }
    // Unclosed: the whole rest is YAML; the caller reports it.
    Some((yaml_start..text.len(), 0..text.len()))
}

/// Whether the front matter block opened with `---` but never closed.
pub(crate) fn is_unclosed(text: &str, block: &std::ops::Range<usize>) -> bool {
    block.end == text.len()
        && !text
            .trim_end()
            .lines()
            .last()
            .is_some_and(|l| l.trim() == "---" || l.trim() == "...")
}

/// Reads the front matter in `text[yaml]`. `block` is the whole block's range.
pub(crate) fn read(
    text: &str,
    yaml: std::ops::Range<usize>,
    block: std::ops::Range<usize>,
    diags: &mut Vec<Diagnostic>,
) -> FrontMatter {
    let mut fm = FrontMatter {
        span: Span::from_range(text, block.start, block.end),
        ..FrontMatter::default()
    };
    let src = text.get(yaml.clone()).unwrap_or("");
    if is_unclosed(text, &block) {
        diags.push(Diagnostic::new(
            codes::FRONT_MATTER_YAML,
            Severity::Error,
            Span::from_range(text, 0, 3),
            "front matter opened with `---` is never closed",
            "end the front matter with a line holding only `---`",
        ));
        return fm;
    }
    let value: Value = match serde_norway::from_str(src) {
        Ok(v) => v,
        Err(e) => {
            let at = e.location().map_or(yaml.start, |l| yaml.start + l.index());
            diags.push(Diagnostic::new(
                codes::FRONT_MATTER_YAML,
                Severity::Error,
                Span::from_range(text, at, at + 1),
                format!("invalid front matter YAML: {e}"),
                "fix the YAML between the `---` lines; see spec-format.md for the fields",
            ));
            return fm;
        }
    };
    let Value::Mapping(map) = value else {
        if !matches!(value, Value::Null) {
            diags.push(field_diag(
                text,
                &yaml,
                "front matter is not a mapping of fields",
                "write `key: value` lines such as `id: my-spec`",
            ));
        }
        return fm;
    };
    for (k, v) in &map {
        let Some(key) = k.as_str() else { continue };
        let at = field_span(text, &yaml, key);
        field(&mut fm, key, v, at, diags);
    }
    fm
}

/// Reads field `key` (at `at`) into `fm`, or reports why it cannot.
fn field(fm: &mut FrontMatter, key: &str, v: &Value, at: Span, diags: &mut Vec<Diagnostic>) {
    let bad = |what: &str| {
        Diagnostic::new(
            codes::FRONT_MATTER_FIELD,
            Severity::Error,
            at,
            format!("front matter field `{key}` {what}"),
            "see spec-format.md for the allowed values",
        )
    };
    match key {
        "id" => match scalar(v) {
            Some(s) => fm.id = s,
            None => diags.push(bad("must be a string")),
        },
        "title" => match scalar(v) {
            Some(s) => fm.title = s,
            None => diags.push(bad("must be a string")),
        },
        "kind" => match scalar(v).as_deref() {
            Some("feature") => fm.kind = SpecKind::Feature,
            Some("architectural") => fm.kind = SpecKind::Architectural,
            Some("constraint") => fm.kind = SpecKind::Constraint,
            _ => diags.push(bad("must be one of feature, architectural, constraint")),
        },
        "status" => match scalar(v).as_deref() {
            Some("draft") => fm.status = SpecStatus::Draft,
            Some("ready") => fm.status = SpecStatus::Ready,
            Some("accepted") => fm.status = SpecStatus::Accepted,
            Some("superseded") => fm.status = SpecStatus::Superseded,
            _ => diags.push(bad("must be one of draft, ready, accepted, superseded")),
        },
        "version" => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => fm.version = Some(n),
            None if v.is_null() => {}
            None => diags.push(bad("must be a non-negative integer")),
        },
        "depends_on" => match v {
            Value::Sequence(seq) => {
                for item in seq {
                    match scalar(item) {
                        Some(s) => fm.depends_on.push(s),
                        None => diags.push(bad("must list spec ids as strings")),
                    }
                }
            }
            Value::Null => {}
            other => match scalar(other) {
                Some(s) => fm.depends_on.push(s),
                None => diags.push(bad("must be a list of spec ids")),
            },
        },
        "supersedes" => match v {
            Value::Null => {}
            other => match scalar(other) {
                Some(s) => fm.supersedes = Some(s),
                None => diags.push(bad("must be a spec id or null")),
            },
        },
        _ => diags.push(Diagnostic::new(
            codes::FRONT_MATTER_FIELD,
            Severity::Warning,
            at,
            format!("unknown front matter field `{key}`"),
            "known fields: id, title, kind, version, status, depends_on, supersedes",
        )),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn field_diag(text: &str, yaml: &std::ops::Range<usize>, msg: &str, help: &str) -> Diagnostic {
    Diagnostic::new(
        codes::FRONT_MATTER_FIELD,
        Severity::Error,
        Span::from_range(text, yaml.start, yaml.start),
        msg,
        help,
    )
}

/// The span of `key:` at the start of a line inside the YAML.
fn field_span(text: &str, yaml: &std::ops::Range<usize>, key: &str) -> Span {
    let src = text.get(yaml.clone()).unwrap_or("");
    let mut pos = 0;
    for line in src.split_inclusive('\n') {
        if line.starts_with(key) && line.get(key.len()..).is_some_and(|r| r.starts_with(':')) {
            let s = yaml.start + pos;
            return Span::from_range(text, s, s + key.len());
        }
        pos += line.len();
    }
    Span::from_range(text, yaml.start, yaml.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fm(src: &str) -> (FrontMatter, Vec<Diagnostic>) {
        let mut d = Vec::new();
        let (y, b) = split(src).unwrap_or((0..0, 0..0));
        (read(src, y, b, &mut d), d)
    }

    #[test]
    fn reads_fields() {
        let (f, d) =
            fm("---\nid: a\nversion: 3\nkind: architectural\ndepends_on: [b, c]\n---\n# x\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(f.id, "a");
        assert_eq!(f.version, Some(3));
        assert_eq!(f.kind, SpecKind::Architectural);
        assert_eq!(f.depends_on, ["b", "c"]);
    }

    #[test]
    fn bad_yaml_and_fields_point_at_the_line() {
        let (_, d) = fm("---\nid: [a\n---\n");
        assert_eq!(d[0].code, codes::FRONT_MATTER_YAML);
        let (_, d) = fm("---\nid: a\nkind: epic\n---\n");
        assert_eq!(d[0].code, codes::FRONT_MATTER_FIELD);
        assert_eq!(d[0].span.line, 3);
    }
}
