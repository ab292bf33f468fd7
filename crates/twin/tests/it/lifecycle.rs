//! The drift lifecycle of built-in twins: read from the same manifest shape user twins use
//! (`STATE_DIR/NAME/manifest.json`), served at `GET /__twin/lifecycle`, a retired twin refused.

use lightsout_twin::drift::{self, Manifest, TwinStatus};
use lightsout_twin::{Error, TwinOptions, TwinRequest};
use std::path::Path;

fn lifecycle_json(twin: &lightsout_twin::Twin) -> serde_json::Value {
    let r = twin.handle(&TwinRequest::new(http::Method::GET, "/__twin/lifecycle"));
    assert_eq!(r.status, 200);
    r.body_json()
}

fn mark(state: &Path, name: &str, status: TwinStatus, reason: &str) {
    let path = drift::manifest_path(state, name);
    let mut m = Manifest::load_or_new(&path, name).unwrap();
    m.mark(status, reason).unwrap();
    m.save(&path).unwrap();
}

#[test]
fn a_builtin_twin_without_a_manifest_is_fresh_and_never_checked() {
    let state = tempfile::tempdir().unwrap();
    let slack = lightsout_twin::load("slack", TwinOptions::default(), state.path(), false).unwrap();
    let l = lifecycle_json(&slack);
    assert_eq!(l["status"], "fresh");
    assert!(
        l.get("since").is_none() && l.get("manifest").is_none(),
        "{l}"
    );
}

#[test]
fn a_builtin_twin_marked_drifted_says_so_with_since_and_reason() {
    let state = tempfile::tempdir().unwrap();
    mark(
        state.path(),
        "slack",
        TwinStatus::Drifted,
        "chat.postMessage now returns a `warning` field",
    );
    let slack = lightsout_twin::load("slack", TwinOptions::default(), state.path(), false).unwrap();
    let l = slack.lifecycle();
    assert_eq!(l.status, TwinStatus::Drifted);
    assert!(l.since.is_some());
    assert!(
        l.reason.as_deref().unwrap().contains("warning` field"),
        "{l:?}"
    );
    assert_eq!(lifecycle_json(&slack)["status"], "drifted");
    // Other built-in twins keep their own state.
    let github =
        lightsout_twin::load("github", TwinOptions::default(), state.path(), false).unwrap();
    assert_eq!(github.lifecycle().status, TwinStatus::Fresh);
}

#[test]
fn a_retired_builtin_twin_is_refused_with_its_date_and_reason_unless_forced() {
    let state = tempfile::tempdir().unwrap();
    mark(
        state.path(),
        "okta",
        TwinStatus::Retired,
        "Okta moved userinfo to v2",
    );
    let err = lightsout_twin::load("okta", TwinOptions::default(), state.path(), false)
        .expect_err("a retired twin is refused");
    assert!(matches!(err, Error::Retired(_)));
    let msg = err.to_string();
    assert!(msg.contains("twin okta retired since "), "{msg}");
    assert!(msg.contains("Okta moved userinfo to v2"), "{msg}");
    let forced = lightsout_twin::load("okta", TwinOptions::default(), state.path(), true).unwrap();
    assert_eq!(lifecycle_json(&forced)["status"], "retired");
}

#[test]
fn a_mark_needs_a_reason_and_is_kept_in_the_manifest() {
    let state = tempfile::tempdir().unwrap();
    let path = drift::manifest_path(state.path(), "github");
    let mut m = Manifest::load_or_new(&path, "github").unwrap();
    assert!(m.mark(TwinStatus::Suspect, "  ").is_err());
    assert_eq!(m.status, TwinStatus::Fresh);
    m.mark(TwinStatus::Suspect, "odd pagination").unwrap();
    m.mark(TwinStatus::Fresh, "re-recorded").unwrap();
    m.save(&path).unwrap();
    let back = Manifest::load_or_new(&path, "github").unwrap();
    assert_eq!(back.status, TwinStatus::Fresh);
    assert_eq!(back.marks.len(), 2);
    assert_eq!(back.marks[0].to, TwinStatus::Suspect);
    assert_eq!(back.reason.as_deref(), Some("marked by hand: re-recorded"));
}

#[test]
fn an_old_manifest_without_since_or_marks_still_reads() {
    let state = tempfile::tempdir().unwrap();
    let path = drift::manifest_path(state.path(), "slack");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        r#"{"name":"slack","status":"suspect","drifted_run":0,"checks":[]}"#,
    )
    .unwrap();
    let slack = lightsout_twin::load("slack", TwinOptions::default(), state.path(), false).unwrap();
    assert_eq!(slack.lifecycle().status, TwinStatus::Suspect);
    assert_eq!(slack.lifecycle().since, None);
}
