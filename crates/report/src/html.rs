//! `report.html`: one self-contained page (inline CSS and SVG, no script, no fetch) rendered from a
//! [`RunReport`].
//!
//! Every piece of report text goes through [`Esc`], which escapes `& < > " '` (the five characters
//! OWASP's XSS prevention cheat sheet lists for HTML body and quoted-attribute contexts) and replaces
//! control characters with U+FFFD. The page holds no `<script>`, no URL-bearing attribute other than
//! same-document fragments, and a Content-Security-Policy `<meta>` that forbids every fetch but
//! `data:` images, so even a rendering bug cannot make the page load anything.

use std::fmt::{self, Display, Write as _};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::layout::{HEADER, Layout, NODE_H, NODE_W, layout};
use crate::model::{
    DecisionStatus, GateOutcome, Incident, RequirementOutcome, RunReport, Satisfaction,
    StrengthOutcome, TaskOutcome, VariantChoices,
};

/// The Content-Security-Policy of the page: nothing may be fetched; inline styles and `data:` images
/// only (W3C CSP Level 3, `<meta http-equiv>` delivery).
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// Writes formatted text to a `String` (infallible).
macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {{
        let _ = write!($dst, $($arg)*);
    }};
}

/// Displays a string HTML-escaped for text and double- or single-quoted attribute values.
#[derive(Debug, Clone, Copy)]
pub(super) struct Esc<'a>(pub(super) &'a str);

impl Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut start = 0;
        for (i, c) in self.0.char_indices() {
            let rep = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                '\n' | '\t' => continue,
                c if c.is_control() => "\u{FFFD}",
                _ => continue,
            };
            f.write_str(&self.0[start..i])?;
            f.write_str(rep)?;
            start = i + c.len_utf8();
        }
        f.write_str(&self.0[start..])
    }
}

/// The page's stylesheet. It holds no `<`, `>` or `&` so that the page's only markup is its tags.
const CSS: &str = r"
:root{--fg:#1b1f24;--muted:#57606a;--bg:#fff;--panel:#f6f8fa;--line:#d0d7de;
--ok:#1a7f37;--okbg:#dafbe1;--bad:#cf222e;--badbg:#ffebe9;--warn:#9a6700;--warnbg:#fff8c5;--info:#0969da;--infobg:#ddf4ff}
@media (prefers-color-scheme: dark){:root{--fg:#e6edf3;--muted:#8d96a0;--bg:#0d1117;--panel:#161b22;--line:#30363d;
--ok:#3fb950;--okbg:#12261e;--bad:#f85149;--badbg:#2d1517;--warn:#d29922;--warnbg:#2e2610;--info:#58a6ff;--infobg:#121d2f}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1200px;padding:24px;font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);background:var(--bg)}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
.muted{color:var(--muted)}
.orphan{color:var(--warn)}
.banner{padding:10px 14px;border-radius:6px;margin:12px 0;border:1px solid}
.replay{background:var(--infobg);border-color:var(--info)}
.replay-badge{color:var(--info);border-color:var(--info)}
.alert{background:var(--badbg);border:2px solid var(--bad);border-radius:6px;padding:4px 16px 12px;margin:16px 0}
.alert h2{color:var(--bad);border:0}
.verdict{border-radius:6px;padding:4px 16px 12px;margin:16px 0;border:2px solid}
.verdict.pass{background:var(--okbg);border-color:var(--ok)}.verdict.fail{background:var(--badbg);border-color:var(--bad)}
.verdict.none{background:var(--warnbg);border-color:var(--warn)}
.verdict h2{border:0;margin-top:12px}
dl.summary{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dl.summary dt{color:var(--muted)}dl.summary dd{margin:0}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
th{background:var(--panel);font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;font-weight:600;border:1px solid}
.st-merged,.yes-ok{color:var(--ok);border-color:var(--ok)}
.st-failed,.st-reverted,.st-conflict{color:var(--bad);border-color:var(--bad)}
.st-blocked,.st-pending,.flaky{color:var(--warn);border-color:var(--warn)}
.graph{overflow-x:auto;background:var(--panel);border:1px solid var(--line);border-radius:6px}
.graph svg{display:block}
svg text{font:12px system-ui,sans-serif;fill:var(--fg)}
svg .tid{font-weight:700}
svg .wave{fill:var(--muted);font-size:11px}
svg .node rect{fill:var(--bg);stroke-width:2}
svg .node.st-merged rect{stroke:var(--ok)}
svg .node.st-failed rect,svg .node.st-reverted rect,svg .node.st-conflict rect{stroke:var(--bad)}
svg .node.st-blocked rect,svg .node.st-pending rect{stroke:var(--warn);stroke-dasharray:4 3}
svg .edge{fill:none;stroke:var(--muted);stroke-width:1.5}
svg .edge.back{stroke:var(--bad);stroke-dasharray:5 4}
svg .arrowhead{fill:var(--muted)}
svg.bar .track{fill:var(--line)}svg.bar .band{fill:var(--info);opacity:.45}svg.bar .point{stroke:var(--fg);stroke-width:2}
details summary{cursor:pointer}
ol.failures{margin:4px 0;padding-left:20px}
footer{margin-top:40px;color:var(--muted);font-size:13px}
@media print{.graph{overflow:visible}}
";

/// Renders the whole page. Never panics; every report string is escaped.
pub fn render_html(report: &RunReport) -> String {
    let mut out = String::with_capacity(16 * 1024 + report.tasks.len() * 1024);
    let verdict = verdict_words(report);
    w!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"lightsout report schema {}\">\n\
         <title>Lightsout run {}: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        Esc(CONTENT_SECURITY_POLICY),
        report.schema_version,
        Esc(&report.run_id),
        verdict.title
    );

    w!(
        out,
        "<header>\n<h1>Lightsout run report</h1>\n<p class=\"muted\">Run <code id=\"run-id\">{}</code>",
        Esc(&report.run_id)
    );
    for spec in &report.specs {
        w!(
            out,
            " · spec <code>{}</code> v{} ({})",
            Esc(&spec.id),
            spec.version,
            Esc(&spec.title)
        );
    }
    out.push_str("</p>\n");
    if report.uses_replay() {
        out.push_str(
            "<p class=\"banner replay\" id=\"replay-banner\"><strong>Replay.</strong> This run used \
             a replay agent: it applied a recorded trajectory of patches and called no model. Tokens \
             and costs shown are those recorded in the trajectory.</p>\n",
        );
    }
    out.push_str("</header>\n<main>\n");

    if !report.not_ready.is_empty() {
        not_ready(&mut out, &report.not_ready);
    }
    if !report.incidents.is_empty() {
        incidents(&mut out, &report.incidents);
    }
    gate(&mut out, report, &verdict);
    if !report.weakened.is_empty() {
        weakened(&mut out, &report.weakened);
    }
    summary(&mut out, report);
    requirements(&mut out, &report.requirements);
    traceability(&mut out, report);
    if let Some(st) = &report.strength {
        strength(&mut out, st);
    }
    graph(&mut out, &report.tasks);
    tasks(&mut out, &report.tasks);
    if let Some(vc) = &report.variant_choices {
        variant_choices(&mut out, vc);
    }
    memory(&mut out, report);

    w!(
        out,
        "</main>\n<footer>Generated by Lightsout from <code>report.json</code> (schema version {}). \
         This page is self-contained: it loads nothing from the network.</footer>\n</body>\n</html>\n",
        report.schema_version
    );
    out
}

/// The verdict's words: the `<title>` part, the heading, the recommendation and a CSS class.
struct VerdictWords {
    title: &'static str,
    heading: &'static str,
    advice: String,
    class: &'static str,
}

fn verdict_words(report: &RunReport) -> VerdictWords {
    let n = report.incidents.len();
    match report.gate.outcome {
        GateOutcome::Pass if n == 0 => VerdictWords {
            title: "gate passed",
            heading: "Gate passed",
            advice:
                "Ship: the merged result meets the verification gate and no incident was recorded."
                    .into(),
            class: "pass",
        },
        GateOutcome::Pass => VerdictWords {
            title: "gate passed, incidents recorded",
            heading: "Gate passed, but incidents need a human",
            advice: format!(
                "Hold: the gate passed, but {n} incident(s) above must be reviewed before shipping."
            ),
            class: "fail",
        },
        GateOutcome::Fail => VerdictWords {
            title: "gate failed",
            heading: "Gate failed",
            advice:
                "Refine: the merged result does not meet the verification gate. Read the reasons \
                     and the requirements below, then refine the spec or run again."
                    .into(),
            class: "fail",
        },
        GateOutcome::InsufficientEvidence => VerdictWords {
            title: "insufficient evidence",
            heading: "Insufficient evidence",
            advice: "Hold: nothing failed, but too few holdout trials ran to clear the gate's \
                     bounds. Run again with the trials the rules below ask for before shipping."
                .into(),
            class: "fail",
        },
        GateOutcome::NotEvaluated => VerdictWords {
            title: "gate not evaluated",
            heading: "Gate not evaluated",
            advice: "Incomplete: the run stopped before the final evaluation; resume it before \
                     deciding."
                .into(),
            class: "none",
        },
    }
}

fn incidents(out: &mut String, incidents: &[Incident]) {
    w!(
        out,
        "<section id=\"incidents\" class=\"alert\">\n<h2>Leaks and policy violations ({})</h2>\n\
         <table>\n<thead><tr><th>Kind</th><th>Task</th><th>Where</th><th>Detail</th></tr></thead>\n<tbody>\n",
        incidents.len()
    );
    for i in incidents {
        w!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            Esc(i.kind.label()),
            Esc(i.task.as_deref().unwrap_or("-")),
            Esc(&i.location),
            Esc(&i.detail)
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn not_ready(out: &mut String, findings: &[String]) {
    w!(
        out,
        "<section id=\"not-ready\" class=\"alert\">\n<h2>Built from specs that are not ready ({})</h2>\n\
         <p><strong>This run was started with <code>--allow-not-ready</code>.</strong> \
         <code>lightsout spec check</code> reported these findings; the verdict below judges a \
         build of an unfinished spec.</p>\n<ul>\n",
        findings.len()
    );
    for f in findings {
        w!(out, "<li>{}</li>\n", Esc(f));
    }
    out.push_str("</ul>\n</section>\n");
}

fn policy(out: &mut String, rules: &[crate::PolicyRuleRef]) {
    out.push_str(
        "<h3>Resolved gate policy</h3>\n<table class=\"policy\">\n<thead><tr><th>Rule</th>\
         <th>Trials per scenario</th><th>From</th></tr></thead>\n<tbody>\n",
    );
    for r in rules {
        w!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            Esc(&r.rule),
            r.trials.map_or_else(|| "-".to_owned(), |n| n.to_string()),
            Esc(&r.source)
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn gate(out: &mut String, report: &RunReport, v: &VerdictWords) {
    w!(
        out,
        "<section id=\"verdict\" class=\"verdict {}\">\n<h2>{}</h2>\n<p><strong>{}</strong></p>\n",
        v.class,
        v.heading,
        Esc(&v.advice)
    );
    if !report.gate.reasons.is_empty() {
        out.push_str("<ul class=\"reasons\">\n");
        for r in &report.gate.reasons {
            w!(out, "<li>{}</li>\n", Esc(r));
        }
        out.push_str("</ul>\n");
    }
    if !report.gate.policy.is_empty() {
        policy(out, &report.gate.policy);
    }
    out.push_str("</section>\n");
}

/// The evidence resting on twins that are not fresh: which requirement, which twin in which
/// state since when and why, through which scenarios.
fn weakened(out: &mut String, rows: &[crate::WeakenedEvidence]) {
    w!(
        out,
        "<section id=\"weakened\" class=\"alert\">\n<h2>Evidence resting on stale twins ({})</h2>\n\
         <p class=\"muted\">A suspect twin weakens the evidence of the scenarios that rest on it; a \
         drifted twin fails them; a retired twin stopped them. Re-check the twin against the real \
         service (<code>lightsout twin drift</code>) or re-record it.</p>\n<table>\n<thead><tr>\
         <th>Requirement</th><th>Twin</th><th>State</th><th>Since</th><th>Why</th><th>Scenarios</th>\
         </tr></thead>\n<tbody>\n",
        rows.len()
    );
    for r in rows {
        w!(
            out,
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td><span class=\"badge flaky\">{}</span></td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>\n",
            Esc(&r.requirement),
            Esc(&r.twin),
            Esc(&r.state),
            Esc(r.since.as_deref().unwrap_or("unknown")),
            Esc(r.reason.as_deref().unwrap_or("")),
            Esc(&r.scenarios.join(", "))
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn summary(out: &mut String, report: &RunReport) {
    let t = report.totals();
    w!(
        out,
        "<section id=\"summary\">\n<h2>Summary</h2>\n<dl class=\"summary\">\n\
         <dt>Run</dt><dd><code>{}</code></dd>\n<dt>Started</dt><dd>{}</dd>\n<dt>Finished</dt><dd>{}</dd>\n\
         <dt>Duration</dt><dd>{}</dd>\n<dt>Agent</dt><dd>{}</dd>\n",
        Esc(&report.run_id),
        Esc(&fmt_time(report.started)),
        Esc(&report
            .finished
            .map_or_else(|| "not finished".into(), fmt_time)),
        report.duration_ms().map_or_else(|| "-".into(), fmt_ms),
        Esc(&report.agent.display())
    );
    let sat_reqs = report
        .requirements
        .iter()
        .filter(|r| r.satisfaction.trials > 0 && r.satisfaction.passes == r.satisfaction.trials)
        .count();
    w!(
        out,
        "<dt>Tasks merged</dt><dd>{} of {}{}</dd>\n<dt>Requirements fully satisfied</dt><dd>{} of {}</dd>\n\
         <dt>Agent attempts</dt><dd>{}</dd>\n<dt>Tokens in / out</dt><dd>{} / {}</dd>\n\
         <dt>Cost</dt><dd>{}</dd>\n<dt>Agent wall time</dt><dd>{}</dd>\n</dl>\n</section>\n",
        t.merged,
        t.tasks,
        if t.unchanged > 0 {
            format!(" ({} unchanged, on main from an earlier run)", t.unchanged)
        } else {
            String::new()
        },
        sat_reqs,
        report.requirements.len(),
        t.attempts,
        group(t.tokens_in),
        group(t.tokens_out),
        fmt_usd(t.cost_usd),
        fmt_ms(t.wall_ms)
    );
}

fn requirements(out: &mut String, reqs: &[RequirementOutcome]) {
    out.push_str(
        "<section id=\"requirements\">\n<h2>Requirements</h2>\n<p class=\"muted\">Satisfaction is the \
         share of holdout trials that passed on the merged result, with its Wilson 95% interval (the \
         band in the bar).</p>\n",
    );
    if reqs.is_empty() {
        out.push_str("<p>No requirement was evaluated.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th>Requirement</th><th>Satisfaction</th><th>95% interval</th>\
         <th>Trials</th><th>Flaky</th><th>Attempts</th><th>Tasks</th><th>Failure history (redacted)</th>\
         </tr></thead>\n<tbody>\n",
    );
    for r in reqs {
        let s = &r.satisfaction;
        w!(
            out,
            "<tr class=\"req\"><td><code>{}</code> {}</td><td class=\"num\">",
            Esc(&r.id),
            Esc(&r.title)
        );
        bar(out, s);
        w!(
            out,
            " {}</td><td class=\"num\">[{}, {}]</td><td class=\"num\">{} / {}</td><td>{}</td>\
             <td class=\"num\">{}</td><td>{}</td><td>",
            pct(s.rate),
            unit3(s.lower),
            unit3(s.upper),
            s.passes,
            s.trials,
            if r.flaky {
                "<span class=\"badge flaky\">flaky</span>"
            } else {
                "no"
            },
            r.attempts,
            Esc(&r.tasks.join(", "))
        );
        if r.failures.is_empty() {
            out.push_str("none");
        } else {
            w!(
                out,
                "<details><summary>{} failed attempt(s)</summary><ol class=\"failures\">",
                r.failures.len()
            );
            for f in &r.failures {
                w!(
                    out,
                    "<li><code>{}</code> attempt {}: <strong>{}</strong>: {}</li>",
                    Esc(&f.task),
                    f.attempt,
                    Esc(&f.category),
                    Esc(&f.feedback)
                );
            }
            out.push_str("</ol></details>");
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// The tuner's variant choices: per task the variant, the default, explore or exploit, why,
/// the posterior means and what was benched.
fn variant_choices(out: &mut String, vc: &VariantChoices) {
    w!(
        out,
        "<section id=\"variant-choices\">\n<h2>Variant choices</h2>\n<p class=\"muted\">The tuner \
         chose each task's harness variant among those declared in <code>[tuning]</code> \
         (Thompson sampling; picks off the default allowed: {}; benched variants never picked). \
         Seed {} over {} recorded attempts reproduces these choices.</p>\n<table>\n<thead><tr>\
         <th>Task</th><th>Kind</th><th>Variant</th><th>Default</th><th>Mode</th><th>Why</th>\
         <th>Posterior means</th><th>Benched</th></tr></thead>\n<tbody>\n",
        vc.exploration_allowed,
        vc.seed,
        vc.attempts_seen
    );
    for c in &vc.choices {
        let means: Vec<String> = c
            .posterior_means
            .iter()
            .map(|(v, m)| {
                let sampled = c
                    .sampled
                    .get(v)
                    .map_or_else(String::new, |p| format!(" (sampled {p:.3})"));
                format!("{} {m:.3}{sampled}", Esc(v))
            })
            .collect();
        w!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td><strong>{}</strong></td><td>{}</td>\
             <td>{}</td><td title=\"{}\">{}</td><td>{}</td><td>{}</td></tr>\n",
            Esc(&c.task),
            Esc(&c.kind),
            Esc(&c.variant),
            Esc(&c.default),
            Esc(&c.mode),
            Esc(&c.explanation),
            Esc(&c.reason),
            means.join("; "),
            if c.benched.is_empty() {
                "-".to_owned()
            } else {
                c.benched
                    .iter()
                    .map(|b| Esc(b).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// The holdout's strength: the kill rate with its interval, what was judged, and the survivors.
fn strength(out: &mut String, st: &StrengthOutcome) {
    let k = &st.killed;
    out.push_str(
        "<section id=\"strength\">\n<h2>Holdout strength</h2>\n<p class=\"muted\">Mutants of the \
         merged build (one small change each), each judged by the holdout: the share it killed, \
         with its Wilson 95% interval. Each survivor is a behaviour the holdout does not check; \
         this list is for the people who own the holdout, never for an agent.</p>\n\
         <dl class=\"summary\">\n<dt>Killed</dt><dd>",
    );
    bar(out, k);
    w!(
        out,
        " {} ({} of {}) [{}, {}]</dd>\n<dt>Of which</dt><dd>{} by the time limit, {} where the \
         holdout could not run</dd>\n<dt>Mutants</dt><dd>{} generated, {} left out as equivalent, {}</dd>\n\
         <dt>Tool</dt><dd>{}</dd>\n<dt>Build</dt><dd><code>{}</code></dd>\n<dt>Trials</dt><dd>{} per \
         scenario per mutant</dd>\n<dt>Time</dt><dd>{}</dd>\n</dl>\n",
        pct(k.rate),
        k.passes,
        k.trials,
        unit3(k.lower),
        unit3(k.upper),
        st.timeouts,
        st.broken,
        st.generated,
        st.equivalent,
        st.sample_seed.map_or_else(
            || "all the others judged".to_owned(),
            |seed| format!("a seeded sample judged (seed {seed})")
        ),
        Esc(&st.tool),
        Esc(st.build.as_deref().unwrap_or("unknown")),
        st.trials,
        fmt_ms(st.duration_ms)
    );
    if st.survivors.is_empty() {
        out.push_str("<p>No mutant survived.</p>\n</section>\n");
        return;
    }
    w!(
        out,
        "<h3>Survivors ({})</h3>\n<table>\n<thead><tr><th>File</th><th>Line</th>\
         <th>Operator</th><th>Occurrence</th></tr></thead>\n<tbody>\n",
        st.survivors.len()
    );
    for m in &st.survivors {
        w!(
            out,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td><code>{}</code></td>\
             <td class=\"num\">{}</td></tr>\n",
            Esc(&m.file),
            m.line,
            Esc(&m.operator),
            m.occurrence
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// A 120 px bar: the track, the Wilson interval as a band and the point estimate as a tick.
fn bar(out: &mut String, s: &Satisfaction) {
    const W: f64 = 120.0;
    let x = |v: f64| unit(v) * W;
    let (lo, hi, point) = (x(s.lower), x(s.upper), x(s.rate));
    let band = (hi - lo).max(0.0);
    w!(
        out,
        "<svg class=\"bar\" width=\"120\" height=\"12\" viewBox=\"0 0 120 12\" role=\"img\" \
         aria-label=\"satisfaction {} interval {} to {}\"><rect class=\"track\" x=\"0\" y=\"4\" \
         width=\"120\" height=\"4\"></rect><rect class=\"band\" x=\"{lo:.1}\" y=\"1\" \
         width=\"{band:.1}\" height=\"10\"></rect><line class=\"point\" x1=\"{point:.1}\" y1=\"0\" \
         x2=\"{point:.1}\" y2=\"12\"></line></svg>",
        pct(s.rate),
        unit3(s.lower),
        unit3(s.upper),
    );
}

fn graph(out: &mut String, tasks: &[TaskOutcome]) {
    out.push_str(
        "<section id=\"graph\">\n<h2>Task graph</h2>\n<p class=\"muted\">Columns are waves: every \
         task of a wave could run at once. Arrows point from a dependency to the task that needs it; \
         a dashed red arrow is a dependency that goes against the waves (a cycle or an inconsistent \
         plan).</p>\n",
    );
    if tasks.is_empty() {
        out.push_str("<p>No task was planned.</p>\n</section>\n");
        return;
    }
    let l: Layout = layout(tasks);
    w!(
        out,
        "<div class=\"graph\"><svg id=\"task-graph\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" \
         role=\"img\" aria-label=\"task graph: {2} tasks, {3} dependencies\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path class=\"arrowhead\" d=\"M 0 0 L 10 5 L 0 10 z\">\
         </path></marker></defs>\n",
        l.width,
        l.height,
        tasks.len(),
        l.edges.len()
    );
    for (wave, x) in &l.columns {
        w!(
            out,
            "<text class=\"wave\" x=\"{x}\" y=\"{}\">wave {wave}</text>\n",
            HEADER
        );
    }
    for e in &l.edges {
        w!(
            out,
            "<path class=\"edge{}\" d=\"{}\" marker-end=\"url(#arrow)\"><title>{} before {}</title></path>\n",
            if e.back { " back" } else { "" },
            Esc(&e.d),
            Esc(&tasks[e.from].id),
            Esc(&tasks[e.to].id)
        );
    }
    for n in &l.nodes {
        let t = &tasks[n.task];
        let st = t.status.as_str();
        w!(
            out,
            "<g class=\"node st-{st}\"><title>{}: {} ({st}, {} attempt(s))</title>\
             <rect x=\"{}\" y=\"{}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"6\"></rect>\
             <text x=\"{}\" y=\"{}\"><tspan class=\"tid\">{}</tspan> {st} · {} att.</text>\
             <text x=\"{}\" y=\"{}\">{}</text></g>\n",
            Esc(&t.id),
            Esc(&t.title),
            t.attempts,
            n.x,
            n.y,
            n.x + 10,
            n.y + 19,
            Esc(&truncate(&t.id, 14)),
            t.attempts,
            n.x + 10,
            n.y + 37,
            Esc(&truncate(&t.title, 28))
        );
    }
    out.push_str("</svg></div>\n</section>\n");
}

/// The chain requirement → holdout scenario ids → tasks → attempts and their commits → merge
/// commit → the gate's reasons, then the orphans both ways.
fn traceability(out: &mut String, report: &RunReport) {
    out.push_str(
        "<section id=\"traceability\">\n<h2>Traceability</h2>\n<p class=\"muted\">Each \
         requirement, the holdout scenarios that judge it (opaque ids), the tasks that built it, \
         their attempts with the commit each left, the commit that merged it, and the gate's \
         reasons that name it.</p>\n",
    );
    if !report.requirements.is_empty() {
        out.push_str(
            "<table>\n<thead><tr><th>Requirement</th><th>Scenarios</th><th>Task</th>\
             <th>Attempts (commit)</th><th>Merge commit</th><th>Gate</th></tr></thead>\n<tbody>\n",
        );
        for q in &report.requirements {
            trace_rows(out, report, q);
        }
        out.push_str("</tbody>\n</table>\n");
    }
    orphans(out, &report.orphans);
    out.push_str("</section>\n");
}

fn trace_rows(out: &mut String, report: &RunReport, q: &RequirementOutcome) {
    let tasks: Vec<&TaskOutcome> = q
        .tasks
        .iter()
        .filter_map(|id| report.tasks.iter().find(|t| &t.id == id))
        .collect();
    let span = tasks.len().max(1);
    let scenarios = if q.scenario_ids.is_empty() {
        "<strong class=\"orphan\">none</strong>".to_owned()
    } else {
        q.scenario_ids
            .iter()
            .map(|s| format!("<code>{}</code>", Esc(s)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let gate = if q.gate_reasons.is_empty() {
        let word = match report.gate.outcome {
            GateOutcome::Pass => "pass",
            GateOutcome::Fail => "fail",
            GateOutcome::InsufficientEvidence => "insufficient evidence",
            GateOutcome::NotEvaluated => "not evaluated",
        };
        format!("{word} (run verdict)")
    } else {
        let mut g = String::new();
        for r in &q.gate_reasons {
            w!(g, "<div>{}</div>", Esc(r));
        }
        g
    };
    w!(
        out,
        "<tr class=\"trace\"><td rowspan=\"{span}\"><code>{}</code> {}</td><td rowspan=\"{span}\">{scenarios}</td>",
        Esc(&q.id),
        Esc(&q.title)
    );
    if tasks.is_empty() {
        w!(out, "<td>-</td><td>-</td><td>-</td><td>{gate}</td></tr>\n");
        return;
    }
    for (i, t) in tasks.iter().enumerate() {
        if i > 0 {
            out.push_str("<tr class=\"trace\">");
        }
        w!(out, "<td><code>{}</code></td><td>", Esc(&t.id));
        for a in &t.history {
            let mark = if a.passed {
                "passed".to_owned()
            } else {
                format!("failed at {}", a.failed_stage.as_deref().unwrap_or("?"))
            };
            w!(out, "<div>#{} {} ", a.attempt, Esc(&mark));
            if let Some(c) = &a.commit {
                w!(
                    out,
                    "<code title=\"{}\">{}</code>",
                    Esc(c),
                    Esc(&c.chars().take(10).collect::<String>())
                );
            }
            out.push_str("</div>");
        }
        out.push_str("</td><td>");
        match &t.merge_commit {
            Some(c) => w!(
                out,
                "<code title=\"{}\">{}</code>",
                Esc(c),
                Esc(&c.chars().take(12).collect::<String>())
            ),
            None => out.push('-'),
        }
        out.push_str("</td>");
        if i == 0 {
            w!(out, "<td rowspan=\"{span}\">{gate}</td>");
        }
        out.push_str("</tr>\n");
    }
}

fn orphans(out: &mut String, o: &crate::Orphans) {
    out.push_str("<h3>Orphans</h3>\n");
    if !o.coverage_known {
        out.push_str(
            "<p class=\"muted\">The holdout's coverage is unknown (no scenario files to read): \
             requirements without scenarios and scenarios naming unknown requirements cannot be \
             listed.</p>\n",
        );
    }
    let list = |out: &mut String, title: &str, items: &[String]| {
        if items.is_empty() {
            return;
        }
        w!(out, "<p>{}</p>\n<ul class=\"orphans\">\n", Esc(title));
        for i in items {
            w!(out, "<li><code>{}</code></li>\n", Esc(i));
        }
        out.push_str("</ul>\n");
    };
    list(
        out,
        "Requirements no holdout scenario covers:",
        &o.requirements_without_scenarios,
    );
    let unknown: Vec<String> = o
        .scenarios_with_unknown_requirements
        .iter()
        .map(|u| format!("{} names {}", u.scenario, u.requirements.join(", ")))
        .collect();
    list(out, "Scenarios naming requirements no spec has:", &unknown);
    list(
        out,
        "Tasks serving no requirement:",
        &o.tasks_without_requirements,
    );
    if o.is_clean() {
        out.push_str("<p>None: every requirement has a scenario, every scenario a requirement, every task a requirement.</p>\n");
    }
}

fn tasks(out: &mut String, tasks: &[TaskOutcome]) {
    out.push_str("<section id=\"tasks\">\n<h2>Tasks</h2>\n");
    if tasks.is_empty() {
        out.push_str("<p>No task was planned.</p>\n</section>\n");
        return;
    }
    let waves = crate::layout::effective_waves(tasks);
    out.push_str(
        "<table>\n<thead><tr><th>Task</th><th>Requirements</th><th>Agent</th><th>Status</th>\
         <th>Attempts</th><th>Tokens in</th><th>Tokens out</th><th>Cost</th><th>Wall time</th>\
         <th>Merge commit</th><th>Depends on</th><th>Wave</th></tr></thead>\n<tbody>\n",
    );
    for (t, wave) in tasks.iter().zip(waves) {
        let st = t.status.as_str();
        w!(
            out,
            "<tr class=\"task\"><td><code>{}</code> {}</td><td>{}</td><td>{}</td>\
             <td><span class=\"badge st-{st}\">{st}</span></td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>",
            Esc(&t.id),
            Esc(&t.title),
            Esc(&t.requirements.join(", ")),
            AgentCell(&t.agent),
            t.attempts,
            group(t.tokens_in),
            group(t.tokens_out),
            fmt_usd(t.cost_usd),
            fmt_ms(t.wall_ms)
        );
        match &t.merge_commit {
            Some(c) => w!(
                out,
                "<code title=\"{}\">{}</code>",
                Esc(c),
                Esc(&c.chars().take(12).collect::<String>())
            ),
            None => out.push('-'),
        }
        w!(
            out,
            "</td><td>{}</td><td class=\"num\">{wave}</td></tr>\n",
            Esc(&if t.depends_on.is_empty() {
                "-".to_string()
            } else {
                t.depends_on.join(", ")
            })
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn memory(out: &mut String, report: &RunReport) {
    out.push_str("<section id=\"decisions\">\n<h2>Decisions recorded</h2>\n");
    if report.decisions.is_empty() {
        out.push_str("<p>No decision was recorded.</p>\n");
    } else {
        out.push_str(
            "<table>\n<thead><tr><th>Decision</th><th>Status</th><th>Supersedes</th><th>Source</th>\
             </tr></thead>\n<tbody>\n",
        );
        for d in &report.decisions {
            let status = match d.status {
                DecisionStatus::Proposed => "proposed",
                DecisionStatus::Accepted => "accepted",
                DecisionStatus::Superseded => "superseded",
            };
            w!(
                out,
                "<tr><td><code>{}</code> {}</td><td>{status}</td><td>{}</td><td>{}</td></tr>\n",
                Esc(&d.id),
                Esc(&d.text),
                Esc(d.supersedes.as_deref().unwrap_or("-")),
                Esc(&d.source)
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</section>\n<section id=\"lessons\">\n<h2>Lessons recorded</h2>\n");
    if report.lessons.is_empty() {
        out.push_str("<p>No lesson was recorded.</p>\n");
    } else {
        out.push_str(
            "<table>\n<thead><tr><th>Fingerprint</th><th>Requirement</th><th>Task</th><th>Lesson</th>\
             </tr></thead>\n<tbody>\n",
        );
        for l in &report.lessons {
            w!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                Esc(&l.fingerprint),
                Esc(l.requirement.as_deref().unwrap_or("-")),
                Esc(l.task.as_deref().unwrap_or("-")),
                Esc(&l.text)
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</section>\n");
}

/// A table cell's agent: the name, a `replay` badge for replays, the full label as a tooltip.
struct AgentCell<'a>(&'a crate::model::AgentLabel);

impl Display for AgentCell<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<span title=\"{}\">{}</span>",
            Esc(&self.0.display()),
            Esc(&self.0.name)
        )?;
        if self.0.is_replay() {
            f.write_str(" <span class=\"badge replay-badge\">replay</span>")?;
        }
        Ok(())
    }
}

/// `s` cut to `max` characters, the last replaced by an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A share clamped into `[0, 1]`; non-finite values read as 0.
fn unit(v: f64) -> f64 {
    if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn unit3(v: f64) -> String {
    if v.is_finite() {
        format!("{:.3}", v.clamp(0.0, 1.0))
    } else {
        "n/a".into()
    }
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}%", v.clamp(0.0, 1.0) * 100.0)
    } else {
        "n/a".into()
    }
}

/// USD with 2 decimals, or 4 below one dollar; `n/a` when not finite.
fn fmt_usd(v: f64) -> String {
    if !v.is_finite() {
        "n/a".into()
    } else if v.abs() < 1.0 {
        format!("${v:.4}")
    } else {
        format!("${v:.2}")
    }
}

/// Milliseconds for humans: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
fn fmt_ms(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{} min {:02} s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{} h {:02} min", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// An integer with comma thousands separators.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "unrepresentable time".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{hostile_report, sample_report, with_strings};
    use proptest::prelude::*;

    #[test]
    fn escapes_the_five_characters_and_controls() {
        assert_eq!(
            Esc("<a href='x'>&\"\u{0}\u{7}\u{85}é\n</a>").to_string(),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;\u{FFFD}\u{FFFD}\u{FFFD}é\n&lt;/a&gt;"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(group(0), "0");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(group(999), "999");
        assert_eq!(fmt_ms(850), "850 ms");
        assert_eq!(fmt_ms(12_345), "12.3 s");
        assert_eq!(fmt_ms(245_000), "4 min 05 s");
        assert_eq!(fmt_ms(7_380_000), "2 h 03 min");
        assert_eq!(fmt_usd(0.0123), "$0.0123");
        assert_eq!(fmt_usd(12.5), "$12.50");
        assert_eq!(fmt_usd(f64::NAN), "n/a");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("ééé", 3), "ééé");
        assert_eq!(pct(f64::INFINITY), "n/a");
    }

    #[test]
    fn sample_page_snapshot() {
        insta::assert_snapshot!("sample_page", render_html(&sample_report()));
    }

    #[test]
    fn hostile_page_snapshot() {
        insta::assert_snapshot!("hostile_page", render_html(&hostile_report()));
    }

    #[test]
    fn incidents_come_before_the_verdict() {
        let html = render_html(&hostile_report());
        let inc = html.find("id=\"incidents\"").unwrap();
        let verdict = html.find("id=\"verdict\"").unwrap();
        assert!(inc < verdict);
        assert!(html.contains("Hold: the gate passed, but 2 incident(s)"));
        let clean = render_html(&sample_report());
        assert!(!clean.contains("id=\"incidents\""));
    }

    #[test]
    fn replay_is_labelled() {
        let html = render_html(&sample_report());
        assert!(html.contains("id=\"replay-banner\""));
        assert!(html.contains("replay of a recorded trajectory, no model called"));
    }

    #[test]
    fn page_references_nothing_outside_itself() {
        let html = render_html(&sample_report());
        for needle in [
            "<script", "src=", "href=", "@import", "url(h", "http:", "https:", "//",
        ] {
            assert!(!html.contains(needle), "page contains {needle:?}");
        }
        assert!(html.contains(&Esc(CONTENT_SECURITY_POLICY).to_string()));
    }

    #[test]
    fn empty_report_renders() {
        let mut r = sample_report();
        r.tasks.clear();
        r.requirements.clear();
        r.decisions.clear();
        r.lessons.clear();
        let html = render_html(&r);
        assert!(html.contains("No task was planned."));
        assert!(html.contains("No requirement was evaluated."));
        check_structure(&html).unwrap();
    }

    /// Elements the page may contain.
    const TAGS: &[&str] = &[
        "html", "head", "meta", "title", "style", "body", "header", "main", "footer", "section",
        "h1", "h2", "h3", "p", "strong", "code", "span", "ul", "ol", "li", "dl", "dt", "dd",
        "table", "thead", "tbody", "tr", "th", "td", "details", "summary", "div", "svg", "defs",
        "marker", "path", "g", "rect", "line", "text", "tspan",
    ];
    /// Attributes the page may contain (no event handlers, no `src`, no `href`).
    const ATTRS: &[&str] = &[
        "lang",
        "charset",
        "http-equiv",
        "content",
        "name",
        "id",
        "class",
        "title",
        "rowspan",
        "width",
        "height",
        "viewbox",
        "role",
        "aria-label",
        "x",
        "y",
        "x1",
        "y1",
        "x2",
        "y2",
        "rx",
        "d",
        "marker-end",
        "refx",
        "refy",
        "markerwidth",
        "markerheight",
        "orient",
    ];

    /// Scans the page into tags and checks that only known elements and attributes appear, every
    /// attribute value is double-quoted, text holds no `>` and every `&` starts one of our entities.
    /// Returns the sequence of tag names.
    fn check_structure(html: &str) -> Result<Vec<String>, String> {
        let body = html.strip_prefix("<!DOCTYPE html>\n").ok_or("no doctype")?;
        let mut names = Vec::new();
        let mut rest = body;
        loop {
            let (text, after) = match rest.find('<') {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            if text.contains('>') {
                return Err(format!("stray > in text {text:?}"));
            }
            let mut amp = text;
            while let Some(i) = amp.find('&') {
                amp = &amp[i..];
                if !["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                    .iter()
                    .any(|e| amp.starts_with(e))
                {
                    return Err(format!("bare & in {text:?}"));
                }
                amp = &amp[1..];
            }
            let Some(after) = after else { break };
            let end = after.find('>').ok_or("unterminated tag")?;
            let tag = &after[..end];
            rest = &after[end + 1..];
            let tag = tag.strip_prefix('/').unwrap_or(tag);
            let name_end = tag.find([' ', '\n']).unwrap_or(tag.len());
            let name = &tag[..name_end];
            if !TAGS.contains(&name) {
                return Err(format!("unexpected element {name:?}"));
            }
            let mut attrs = tag[name_end..].trim_start();
            while !attrs.is_empty() {
                let eq = attrs
                    .find("=\"")
                    .ok_or(format!("unquoted attribute in {tag:?}"))?;
                let attr = attrs[..eq].to_ascii_lowercase();
                if !ATTRS.contains(&attr.as_str()) {
                    return Err(format!("unexpected attribute {attr:?}"));
                }
                let value_and_rest = &attrs[eq + 2..];
                let close = value_and_rest.find('"').ok_or("unterminated value")?;
                let value = &value_and_rest[..close];
                if value.contains('<') || value.contains('>') {
                    return Err(format!("raw angle bracket in attribute {value:?}"));
                }
                attrs = value_and_rest[close + 1..].trim_start();
            }
            names.push(format!(
                "{}{name}",
                if after.starts_with('/') { "/" } else { "" }
            ));
        }
        Ok(names)
    }

    #[test]
    fn structure_checker_rejects_injections() {
        assert!(check_structure("<!DOCTYPE html>\n<p>ok</p>").is_ok());
        assert!(check_structure("<!DOCTYPE html>\n<script>x</script>").is_err());
        assert!(check_structure("<!DOCTYPE html>\n<p onclick=\"x\">").is_err());
        assert!(check_structure("<!DOCTYPE html>\n<p>a > b</p>").is_err());
        assert!(check_structure("<!DOCTYPE html>\n<p>a & b</p>").is_err());
        assert!(check_structure("<!DOCTYPE html>\n<p class=x>").is_err());
    }

    #[test]
    fn sample_pages_pass_the_structure_check() {
        check_structure(&render_html(&sample_report())).unwrap();
        check_structure(&render_html(&hostile_report())).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Any strings anywhere in the report: the page keeps exactly the structure it has with
        /// harmless strings in the same places, and holds nothing but known tags and attributes.
        #[test]
        fn strings_never_break_out_of_escaping(
            strings in proptest::collection::vec(
                prop_oneof![
                    any::<String>(),
                    "[<>&\"'/=a-z !-]{0,40}",
                    Just("</title><script>alert(1)</script>".to_string()),
                    Just("\" onload=\"alert(1)".to_string()),
                    Just("]]></text><foreignObject>".to_string()),
                    Just("</style><img src=http://127.0.0.1:9/x>".to_string()),
                ],
                1..40,
            )
        ) {
            let hostile = render_html(&with_strings(&strings));
            let harmless: Vec<String> = strings
                .iter()
                .map(|s| if s.is_empty() { String::new() } else { "x".into() })
                .collect();
            let plain = render_html(&with_strings(&harmless));
            let a = check_structure(&hostile).map_err(TestCaseError::fail)?;
            let b = check_structure(&plain).map_err(TestCaseError::fail)?;
            prop_assert_eq!(a, b);
        }
    }
}
