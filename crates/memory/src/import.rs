//! Import: MADR files (<https://adr.github.io/madr/>, versions 2 to 4, and Nygard-style
//! ADRs), a `DECISIONS.md` (this crate's export, or a hand-written one with one `##` entry per
//! decision), and the `## Decisions` section of a spec (`- DEC-1: ...` lines).
//!
//! The parsers are pure (`&str` in, records and diagnostics out) and never panic; problems
//! in the text become [`Diagnostic`]s with spans, and the parser keeps going.
//!
//! Diagnostic codes: `MEM001` unreadable front matter, `MEM002` no title, `MEM003` unknown
//! status, `MEM004` bad date, `MEM005` bad guards block, `MEM006` decision item without id,
//! `MEM007` bad metadata value.

use crate::export::{GUARDS_FENCE, MadrExtra, is_fence, unescape_body};
use crate::{Author, Guard, Identity, Kind, NewRecord, RecordId, Status, parse_time};
use lightsout_spec::{Diagnostic, Severity, Span};

/// A line of the input with its byte offset.
#[derive(Clone, Copy)]
struct Line<'a> {
    text: &'a str,
    start: usize,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for l in text.split('\n') {
        out.push(Line {
            text: l.strip_suffix('\r').unwrap_or(l),
            start,
        });
        start += l.len() + 1;
    }
    out
}

fn diag(
    src: &str,
    line: Line<'_>,
    code: &str,
    sev: Severity,
    msg: String,
    help: &str,
) -> Diagnostic {
    Diagnostic::new(
        code,
        sev,
        Span::from_range(src, line.start, line.start + line.text.len()),
        msg,
        help,
    )
}

/// A section: heading text (lower-cased, trimmed) and its body lines.
struct Section<'a> {
    heading: Line<'a>,
    name: String,
    body: Vec<Line<'a>>,
}

/// Splits `ls` at headings of exactly `level` `#`s (outside code fences).
fn split_sections<'a>(ls: &[Line<'a>], level: usize) -> (Vec<Line<'a>>, Vec<Section<'a>>) {
    let marker = format!("{} ", "#".repeat(level));
    let mut pre = Vec::new();
    let mut secs: Vec<Section<'a>> = Vec::new();
    let mut fence = false;
    for &l in ls {
        if is_fence(l.text) {
            fence = !fence;
        }
        if !fence && l.text.starts_with(&marker) {
            let name = l.text[marker.len()..].trim().to_owned();
            secs.push(Section {
                heading: l,
                name,
                body: Vec::new(),
            });
            continue;
        }
        match secs.last_mut() {
            Some(s) => s.body.push(l),
            None => pre.push(l),
        }
    }
    (pre, secs)
}

fn body_text(ls: &[Line<'_>]) -> String {
    let joined = ls.iter().map(|l| l.text).collect::<Vec<_>>().join("\n");
    unescape_body(joined.trim_matches(|c| c == '\n' || c == ' ' || c == '\t' || c == '\r'))
        .trim()
        .to_owned()
}

fn list_items(ls: &[Line<'_>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut fence = false;
    for l in ls {
        if is_fence(l.text) {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        if let Some(rest) = l
            .text
            .strip_prefix("* ")
            .or_else(|| l.text.strip_prefix("- "))
        {
            out.push(rest.trim().to_owned());
        } else if l.text.starts_with("  ")
            && !l.text.trim().is_empty()
            && let Some(last) = out.last_mut()
        {
            last.push(' ');
            last.push_str(l.text.trim());
        }
    }
    out
}

fn guards_from(src: &str, ls: &[Line<'_>], diags: &mut Vec<Diagnostic>) -> (Vec<Guard>, String) {
    let mut guards = Vec::new();
    let mut prose = Vec::new();
    let mut i = 0;
    while i < ls.len() {
        let l = ls[i];
        if l.text.trim() == format!("```{GUARDS_FENCE}") {
            let mut j = i + 1;
            while j < ls.len() && !is_fence(ls[j].text) {
                j += 1;
            }
            let json = ls[i + 1..j.min(ls.len())]
                .iter()
                .map(|l| l.text)
                .collect::<Vec<_>>()
                .join("\n");
            match serde_json::from_str::<Vec<Guard>>(&json) {
                Ok(g) => guards.extend(g),
                Err(e) => diags.push(diag(
                    src,
                    l,
                    "MEM005",
                    Severity::Error,
                    format!("guards block is not a JSON array of guards: {e}"),
                    "write guards as [{\"rule\":\"forbid_dependency\",\"name\":\"postgres\"}]",
                )),
            }
            i = j + 1;
            continue;
        }
        prose.push(l);
        i += 1;
    }
    let mut text = body_text(&prose);
    if text.starts_with("Checked by `lightsout memory check`:") {
        text = text["Checked by `lightsout memory check`:".len()..]
            .trim()
            .to_owned();
    }
    (guards, text)
}

/// Parses a status word. `superseded by ADR-0005` gives `(Superseded, Some(5))`; unknown
/// words give `None`.
fn parse_status(s: &str) -> Option<(Status, Option<i64>)> {
    let l = s.trim().to_lowercase();
    if let Some(rest) = l.strip_prefix("superseded") {
        let digits: String = rest
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(char::is_ascii_digit)
            .collect();
        return Some((Status::Superseded, digits.parse().ok()));
    }
    let word = l.split_whitespace().next().unwrap_or("");
    match word {
        "accepted" | "approved" | "adopted" | "done" => Some((Status::Accepted, None)),
        "proposed" | "draft" | "open" | "in" => Some((Status::Proposed, None)),
        "rejected" | "declined" => Some((Status::Rejected, None)),
        "deprecated" | "retired" => Some((Status::Deprecated, None)),
        _ => None,
    }
}

fn yaml_str(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses one MADR file. `rel_path` (relative to the imported folder) gives the external key
/// `madr:<rel_path>` and, from a leading `NNNN-`, the preferred id. A file this crate
/// exported (front matter `lightsout.id`) is matched by that id instead, so that
/// export → import → export is stable.
pub fn parse_madr(rel_path: &str, src: &str) -> (Option<NewRecord>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let all = lines(src);
    let (front, body_start) = madr_front_matter(src, &all, &mut diags);
    let body = &all[body_start.min(all.len())..];
    let (pre, secs) = split_sections(body, 2);
    let get = |k: &str| {
        front
            .as_ref()
            .and_then(|m| m.get(serde_norway::Value::String(k.into())))
    };
    let extra: MadrExtra = get("lightsout")
        .and_then(|v| serde_norway::from_value(v.clone()).ok())
        .unwrap_or_default();

    let stem = rel_path
        .rsplit('/')
        .next()
        .unwrap_or(rel_path)
        .trim_end_matches(".md");
    let title = madr_title(src, &all, &pre, stem, &mut diags);
    if title.trim().is_empty() {
        return (None, diags);
    }
    let kind = extra
        .kind
        .as_deref()
        .and_then(|k| k.parse::<Kind>().ok())
        .unwrap_or(Kind::Decision);
    let mut rec = NewRecord::new(kind, title);

    // MADR 2 style metadata lines (`* Status: accepted`) before the first section.
    let mut status_src: Option<(String, Line<'_>)> =
        get("status").and_then(yaml_str).map(|s| (s, all[0]));
    let mut date_src: Option<(String, Line<'_>)> =
        get("date").and_then(yaml_str).map(|s| (s, all[0]));
    let mut makers: Option<String> = get("decision-makers").and_then(yaml_str);
    for &l in &pre {
        let t = l.text.trim_start_matches(['*', '-', ' ']);
        if let Some((k, v)) = t.split_once(':') {
            let v = v.trim().to_owned();
            match k.trim().to_lowercase().as_str() {
                "status" if status_src.is_none() => status_src = Some((v, l)),
                "date" if date_src.is_none() => date_src = Some((v, l)),
                "deciders" | "decision-makers" if makers.is_none() => makers = Some(v),
                _ => {}
            }
        }
    }

    let options = madr_sections(src, &secs, &mut rec, &mut status_src, &mut diags);

    // Rejected options: the considered ones that were not chosen.
    let chosen = chosen_option(&rec.decision);
    let plain = |s: &str| strip_links(s).to_lowercase();
    for o in options {
        let is_chosen = match &chosen {
            Some(c) => plain(&o).contains(&plain(c)),
            None => o == rec.title,
        };
        if !is_chosen {
            rec.rejected_options.push(o);
        }
    }

    if let Some((s, l)) = status_src {
        madr_status(src, &s, l, extra.id.is_none(), &mut rec, &mut diags);
    }
    if let Some((d, l)) = date_src
        && !d.is_empty()
    {
        match parse_time(&d) {
            Ok(t) => rec.valid_from = Some(t),
            Err(_) => diags.push(diag(
                src,
                l,
                "MEM004",
                Severity::Warning,
                format!("`{d}` is not a date"),
                "write dates as YYYY-MM-DD",
            )),
        }
    }
    if makers.is_some_and(|m| m.trim().eq_ignore_ascii_case("factory")) {
        rec.provenance.author = Author::Factory;
    }
    madr_extra(&mut rec, extra, rel_path, stem);
    (Some(rec), diags)
}

/// The YAML front matter of a MADR file (`all`, its lines), if any, and the index of the
/// first body line.
fn madr_front_matter(
    src: &str,
    all: &[Line<'_>],
    diags: &mut Vec<Diagnostic>,
) -> (Option<serde_norway::Mapping>, usize) {
    let mut front: Option<serde_norway::Mapping> = None;
    let mut body_start = 0;
    if all.first().is_some_and(|l| l.text.trim_end() == "---")
        && let Some(end) = all.iter().skip(1).position(|l| l.text.trim_end() == "---")
    {
        let end = end + 1;
        let yaml = all[1..end]
            .iter()
            .map(|l| l.text)
            .collect::<Vec<_>>()
            .join("\n");
        match serde_norway::from_str::<serde_norway::Value>(&yaml) {
            Ok(serde_norway::Value::Mapping(m)) => front = Some(m),
            Ok(serde_norway::Value::Null) => {}
            Ok(_) => diags.push(diag(
                src,
                all[0],
                "MEM001",
                Severity::Warning,
                "front matter is not a mapping".into(),
                "write `key: value` lines between the `---` fences",
            )),
            Err(e) => diags.push(diag(
                src,
                all[0],
                "MEM001",
                Severity::Warning,
                format!("front matter is not valid YAML: {e}"),
                "fix the YAML between the `---` fences",
            )),
        }
        body_start = end + 1;
    }
    (front, body_start)
}

/// The title: the first `# ` line before the first section (`pre`), else the file name
/// `stem` without its number.
fn madr_title(
    src: &str,
    all: &[Line<'_>],
    pre: &[Line<'_>],
    stem: &str,
    diags: &mut Vec<Diagnostic>,
) -> String {
    let mut fence = false;
    let mut title_line = None;
    for &l in pre {
        if is_fence(l.text) {
            fence = !fence;
        }
        if !fence && l.text.starts_with("# ") {
            title_line = Some(l);
            break;
        }
    }
    if let Some(l) = title_line {
        l.text[2..].trim().to_owned()
    } else {
        let anchor = all.first().copied().unwrap_or(Line { text: "", start: 0 });
        diags.push(diag(
            src,
            anchor,
            "MEM002",
            Severity::Warning,
            "no `# title` line; using the file name".into(),
            "start the record with `# <short title of the decision>`",
        ));
        stem.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-')
            .replace('-', " ")
    }
}

/// Reads the `##` sections into `rec` (a `## Status` section into `status_src` when no
/// status was given before); returns the considered options.
fn madr_sections<'a>(
    src: &str,
    secs: &[Section<'a>],
    rec: &mut NewRecord,
    status_src: &mut Option<(String, Line<'a>)>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let mut options: Vec<String> = Vec::new();
    for s in secs {
        let name = s.name.to_lowercase();
        match name.as_str() {
            "context and problem statement" | "context" | "context and problem" => {
                rec.context = body_text(&s.body);
            }
            "decision drivers" => {
                let t = body_text(&s.body);
                if !t.is_empty() {
                    if !rec.context.is_empty() {
                        rec.context.push_str("\n\n");
                    }
                    rec.context.push_str("Decision drivers:\n\n");
                    rec.context.push_str(&t);
                }
            }
            "considered options" => options = list_items(&s.body),
            "status" if status_src.is_none() => {
                *status_src = Some((body_text(&s.body), s.heading));
            }
            "consequences" => rec.consequences = body_text(&s.body),
            "decision outcome" | "decision" => madr_outcome(src, &s.body, rec, diags),
            _ => {}
        }
    }
    options
}

/// The `## Decision Outcome` section: the decision, then its `### Confirmation` (guards)
/// and `### Consequences` subsections.
fn madr_outcome(src: &str, body: &[Line<'_>], rec: &mut NewRecord, diags: &mut Vec<Diagnostic>) {
    let (lead, subs) = split_sections(body, 3);
    rec.decision = body_text(&lead);
    for sub in subs {
        let sn = sub.name.to_lowercase();
        if sn == "confirmation" {
            let (g, prose) = guards_from(src, &sub.body, diags);
            rec.guards.extend(g);
            if !prose.is_empty() {
                push_para(&mut rec.consequences, &format!("Confirmation: {prose}"));
            }
        } else if sn.contains("consequences") {
            let t = body_text(&sub.body);
            if sn == "consequences" {
                push_para(&mut rec.consequences, &t);
            } else {
                push_para(&mut rec.consequences, &format!("{}:\n\n{t}", sub.name));
            }
        }
    }
}

/// Sets the record's status from the status text `s` (at line `l`); an unknown one is
/// reported and imported as proposed. A foreign `superseded by ADR-N` is kept as text.
fn madr_status(
    src: &str,
    s: &str,
    l: Line<'_>,
    foreign: bool,
    rec: &mut NewRecord,
    diags: &mut Vec<Diagnostic>,
) {
    match parse_status(s) {
        Some((st, by)) => {
            rec.status = st;
            if foreign {
                // Foreign numbering: keep it as text, not as a link to our ids.
                if let Some(by) = by {
                    push_para(&mut rec.context, &format!("Superseded by ADR-{by:04}."));
                }
            }
        }
        None => diags.push(diag(
            src,
            l,
            "MEM003",
            Severity::Warning,
            format!("unknown status `{s}`; imported as proposed"),
            "use proposed, accepted, rejected, deprecated or superseded",
        )),
    }
    if parse_status(s).is_none() {
        rec.status = Status::Proposed;
    }
}

/// The `lightsout:` front matter of a file this crate exported (scope, provenance, links,
/// id); for any other file, the identity `madr:<rel_path>` and the id hint of its number.
fn madr_extra(rec: &mut NewRecord, extra: MadrExtra, rel_path: &str, stem: &str) {
    if let Some(t) = extra.valid_to.as_deref().and_then(|t| parse_time(t).ok()) {
        rec.valid_to = Some(t);
    }
    rec.scope.paths = extra.paths;
    rec.scope.tags = extra.tags;
    rec.provenance.spec = extra.spec;
    rec.provenance.requirement = extra.requirement;
    rec.provenance.run = extra.run;
    rec.provenance.commit = extra.commit;
    if let Some(id) = extra.id.filter(|i| *i > 0) {
        rec.identity = Identity::Id(RecordId(id));
        rec.id_hint = Some(RecordId(id));
        rec.external_key = extra.key;
        rec.supersedes = extra.supersedes.map(RecordId);
        rec.superseded_by = extra.superseded_by.map(RecordId);
    } else {
        rec.identity = Identity::Key(format!("madr:{rel_path}"));
        let digits: String = stem.chars().take_while(char::is_ascii_digit).collect();
        rec.id_hint = digits.parse().ok().filter(|n| *n > 0).map(RecordId);
    }
}

/// Reverses [`crate::export::code_span`]; a value with no code span is taken as it is.
fn unquote_code(v: &str) -> String {
    if let Some(inner) = v.strip_prefix("`` ").and_then(|x| x.strip_suffix(" ``")) {
        return inner.to_owned();
    }
    v.strip_prefix('`')
        .and_then(|x| x.strip_suffix('`'))
        .unwrap_or(v)
        .to_owned()
}

fn push_para(dst: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    if !dst.is_empty() {
        dst.push_str("\n\n");
    }
    dst.push_str(text);
}

/// `[text](url)` → `text`, and drops backticks and quotes.
fn strip_links(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(j) = after.find("](")
            && let Some(k) = after[j + 2..].find(')')
        {
            out.push_str(&after[..j]);
            rest = &after[j + 2 + k + 1..];
        } else {
            out.push('[');
            rest = after;
        }
    }
    out.push_str(rest);
    out.replace(['`', '"', '\''], "")
}

/// `Chosen option: "X", because ...` → `X`.
fn chosen_option(decision: &str) -> Option<String> {
    let i = decision.find("Chosen option:")?;
    let rest = decision[i + "Chosen option:".len()..].trim_start();
    let name = if let Some(r) = rest.strip_prefix('"') {
        r.split('"').next()?.to_owned()
    } else {
        rest.split([',', '\n']).next()?.trim().to_owned()
    };
    let name = strip_links(&name).trim().to_owned();
    (!name.is_empty()).then_some(name)
}

/// Parses a `DECISIONS.md`: every `## ` heading starts an entry. `## M-7: Title` (this
/// crate's export) keeps id 7; other headings create records, keyed `decisions:<title>`.
/// Metadata lines (`- Status: accepted`) before the first `###` fill the fields; `###
/// Context|Decision|Consequences|Rejected options|Guards` fill the rest. An entry with no
/// `###` sections takes its whole body as the decision text.
pub fn parse_decisions_md(src: &str) -> (Vec<NewRecord>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let all = lines(src);
    let (_, entries) = split_sections(&all, 2);
    let mut out = Vec::new();
    for e in entries {
        let (id, title) = match e.name.split_once(": ") {
            Some((idt, t)) if idt.starts_with("M-") => match idt.parse::<RecordId>() {
                Ok(id) => (Some(id), t.trim().to_owned()),
                Err(_) => (None, e.name.clone()),
            },
            _ => (None, e.name.clone()),
        };
        if title.is_empty() {
            continue;
        }
        let mut rec = NewRecord::new(Kind::Decision, title.clone());
        match id {
            Some(id) => {
                rec.identity = Identity::Id(id);
                rec.id_hint = Some(id);
            }
            None => rec.identity = Identity::Key(format!("decisions:{title}")),
        }
        let (meta, subs) = split_sections(&e.body, 3);
        for &l in &meta {
            decisions_meta(src, l, &mut rec, &mut diags);
        }
        if subs.is_empty() {
            let meta_free: Vec<Line<'_>> = meta
                .iter()
                .copied()
                .filter(|l| !l.text.starts_with("- ") || !l.text.contains(':'))
                .collect();
            rec.decision = body_text(&meta_free);
        }
        for s in subs {
            match s.name.to_lowercase().as_str() {
                "context" => rec.context = body_text(&s.body),
                "decision" => rec.decision = body_text(&s.body),
                "consequences" => rec.consequences = body_text(&s.body),
                "rejected options" | "considered options" | "rejected" => {
                    rec.rejected_options = list_items(&s.body);
                }
                "guards" | "confirmation" => {
                    let (g, _) = guards_from(src, &s.body, &mut diags);
                    rec.guards = g;
                }
                _ => {}
            }
        }
        out.push(rec);
    }
    (out, diags)
}

/// A `- key: value` metadata line of a DECISIONS.md entry, read into `rec`; a value
/// that does not parse is reported.
fn decisions_meta(src: &str, line: Line<'_>, rec: &mut NewRecord, diags: &mut Vec<Diagnostic>) {
    let Some(field) = line.text.strip_prefix("- ") else {
        return;
    };
    let Some((k, v)) = field.split_once(':') else {
        return;
    };
    let v = v.trim();
    let unq = unquote_code(v);
    let codes = || -> Vec<String> {
        v.split("`, `")
            .map(|s| s.trim().trim_matches('`').to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let bad = |what: &str, diags: &mut Vec<Diagnostic>| {
        diags.push(diag(
            src,
            line,
            "MEM007",
            Severity::Warning,
            format!("`{v}` is not a valid {what}"),
            "see `lightsout memory export` for the expected form",
        ));
    };
    match k.trim().to_lowercase().as_str() {
        "kind" => match v.parse() {
            Ok(k) => rec.kind = k,
            Err(_) => bad("kind", diags),
        },
        "status" => match parse_status(v) {
            Some((s, _)) => rec.status = s,
            None => bad("status", diags),
        },
        "valid from" | "date" => match parse_time(v) {
            Ok(t) => rec.valid_from = Some(t),
            Err(_) => bad("date", diags),
        },
        "valid to" => match parse_time(v) {
            Ok(t) => rec.valid_to = Some(t),
            Err(_) => bad("date", diags),
        },
        "paths" => rec.scope.paths = codes(),
        "tags" => rec.scope.tags = codes(),
        "spec" => rec.provenance.spec = Some(unq),
        "requirement" => rec.provenance.requirement = Some(unq),
        "run" => rec.provenance.run = Some(unq),
        "commit" => rec.provenance.commit = Some(unq),
        "author" => match v.parse() {
            Ok(a) => rec.provenance.author = a,
            Err(_) => bad("author", diags),
        },
        "supersedes" => match v.parse() {
            Ok(i) => rec.supersedes = Some(i),
            Err(_) => bad("record id", diags),
        },
        "superseded by" => match v.parse() {
            Ok(i) => rec.superseded_by = Some(i),
            Err(_) => bad("record id", diags),
        },
        "key" => rec.external_key = Some(unq),
        _ => {}
    }
}

/// Parses the `## Decisions` section of a spec (see the spec format): each list item
/// `- DEC-1: SQLite, not Postgres. Because ...` becomes an accepted decision keyed
/// `spec:<spec id>#DEC-1`, with the first sentence as its title and the whole text as the
/// decision. `spec_id` is the front matter `id` when present, else `fallback_id`.
pub fn parse_spec_decisions(fallback_id: &str, src: &str) -> (Vec<NewRecord>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let all = lines(src);
    let mut spec_id = fallback_id.to_owned();
    let mut body_start = 0;
    if all.first().is_some_and(|l| l.text.trim_end() == "---")
        && let Some(end) = all.iter().skip(1).position(|l| l.text.trim_end() == "---")
    {
        let end = end + 1;
        for l in &all[1..end] {
            if let Some(v) = l.text.strip_prefix("id:") {
                let v = v
                    .split('#')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches(['"', '\'']);
                if !v.is_empty() {
                    v.clone_into(&mut spec_id);
                }
            }
        }
        body_start = end + 1;
    }
    let (_, secs) = split_sections(&all[body_start.min(all.len())..], 2);
    let mut out = Vec::new();
    for s in secs
        .iter()
        .filter(|s| s.name.eq_ignore_ascii_case("decisions"))
    {
        let mut items: Vec<(Line<'_>, String)> = Vec::new();
        for &l in &s.body {
            if let Some(rest) = l
                .text
                .strip_prefix("- ")
                .or_else(|| l.text.strip_prefix("* "))
            {
                items.push((l, rest.trim().to_owned()));
            } else if l.text.starts_with(' ')
                && !l.text.trim().is_empty()
                && let Some((_, t)) = items.last_mut()
            {
                t.push(' ');
                t.push_str(l.text.trim());
            }
        }
        for (l, text) in items {
            let stripped = text.trim_start_matches("**");
            let Some((id, rest)) = stripped.split_once(':').filter(|(id, _)| {
                let id = id.trim_end_matches("**");
                let mut parts = id.splitn(2, '-');
                let (a, b) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                !a.is_empty()
                    && a.chars().all(|c| c.is_ascii_uppercase())
                    && !b.is_empty()
                    && b.chars().all(|c| c.is_ascii_digit())
            }) else {
                diags.push(diag(
                    src,
                    l,
                    "MEM006",
                    Severity::Warning,
                    "decision item has no id".into(),
                    "write decisions as `- DEC-1: <decision>. Because <reason>`",
                ));
                continue;
            };
            let id = id.trim_end_matches("**").to_owned();
            let body = rest.trim_start_matches("**").trim().to_owned();
            if body.is_empty() {
                continue;
            }
            let first = body
                .split_once(". ")
                .map_or(body.as_str(), |(a, _)| a)
                .trim_end_matches('.');
            let title: String = if first.chars().count() > 100 {
                let cut: String = first.chars().take(99).collect();
                format!("{}…", cut.trim_end())
            } else {
                first.to_owned()
            };
            let mut rec = NewRecord::new(Kind::Decision, title);
            rec.decision = body;
            rec.identity = Identity::Key(format!("spec:{spec_id}#{id}"));
            rec.provenance.spec = Some(spec_id.clone());
            rec.provenance.requirement = Some(id);
            out.push(rec);
        }
    }
    (out, diags)
}

/// What kind of source a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A folder of MADR files.
    Madr,
    /// A `DECISIONS.md`.
    Decisions,
    /// A spec with a `## Decisions` section.
    Spec,
}

/// Guesses the kind of an import source: a folder is MADR; a file named `DECISIONS.md`
/// (any case) is a decision log; a markdown file with front matter and a `## Decisions`
/// section is a spec; anything else is read as a decision log.
pub fn detect(path: &std::path::Path, text: Option<&str>) -> SourceKind {
    if path.is_dir() {
        return SourceKind::Madr;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if name == "decisions.md" {
        return SourceKind::Decisions;
    }
    if let Some(t) = text
        && t.starts_with("---")
        && t.lines()
            .any(|l| l.trim().eq_ignore_ascii_case("## decisions"))
    {
        return SourceKind::Spec;
    }
    SourceKind::Decisions
}

/// True for MADR folder files that are not records: templates, indexes, READMEs.
pub fn is_madr_record_file(name: &str) -> bool {
    let l = name.to_lowercase();
    std::path::Path::new(&l)
        .extension()
        .is_some_and(|e| e == "md")
        && !l.starts_with("adr-template")
        && !l.starts_with("template")
        && l != "index.md"
        && l != "readme.md"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn madr_chosen_and_rejected_options() {
        let src = "---\nstatus: accepted\ndate: 2024-05-01\n---\n# Use SQLite\n\n## Context and Problem Statement\n\nWe need storage.\n\n## Considered Options\n\n* [SQLite](https://sqlite.org)\n* Postgres\n\n## Decision Outcome\n\nChosen option: \"SQLite\", because it is embedded.\n\n### Consequences\n\n* Good, because no server.\n";
        let (r, d) = parse_madr("0003-use-sqlite.md", src);
        let r = r.unwrap();
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(r.title, "Use SQLite");
        assert_eq!(r.rejected_options, ["Postgres"]);
        assert_eq!(r.context, "We need storage.");
        assert_eq!(r.consequences, "* Good, because no server.");
        assert_eq!(r.id_hint, Some(RecordId(3)));
        assert_eq!(r.identity, Identity::Key("madr:0003-use-sqlite.md".into()));
        assert_eq!(r.valid_from, Some(parse_time("2024-05-01").unwrap()));
    }

    #[test]
    fn madr2_metadata_lines_and_bad_status() {
        let src = "# Title\n\n* Status: maybe\n* Date: 2020-13-45\n\n## Context\n\nx\n";
        let (r, d) = parse_madr("x.md", src);
        assert_eq!(r.unwrap().status, Status::Proposed);
        let codes: Vec<&str> = d.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["MEM003", "MEM004"]);
        assert_eq!(d[0].span.line, 3);
    }

    #[test]
    fn spec_decisions_become_keyed_records() {
        let src = "---\nid: shop\n---\n# Shop\n\n## Decisions\n- DEC-1: SQLite, not Postgres. Because one file.\n- DEC-2: Poll,\n  not webhooks.\n- no id here\n\n## Constraints\n- CON-1: x\n";
        let (r, d) = parse_spec_decisions("fallback", src);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].title, "SQLite, not Postgres");
        assert_eq!(r[0].identity, Identity::Key("spec:shop#DEC-1".into()));
        assert_eq!(r[1].decision, "Poll, not webhooks.");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, "MEM006");
    }

    #[test]
    fn hand_written_decisions_md() {
        let src = "# Log\n\n## Use tabs\n\nBecause.\n\n## M-4: Keep it\n\n- Status: deprecated\n\n### Decision\n\nKept.\n";
        let (r, d) = parse_decisions_md(src);
        assert!(d.is_empty());
        assert_eq!(r[0].decision, "Because.");
        assert_eq!(r[0].identity, Identity::Key("decisions:Use tabs".into()));
        assert_eq!(r[1].identity, Identity::Id(RecordId(4)));
        assert_eq!(r[1].status, Status::Deprecated);
    }
}
