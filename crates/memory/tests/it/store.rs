//! Supersede chains, as-of queries on both time axes, never-deleted records, concurrency.

use crate::{Fixture, decision_at};
use lightsout_memory::{
    AnyStore, Change, Error, Filter, Kind, Memory, NewRecord, Outcome, RecordId, Status, Store,
    now, parse_time,
};

fn titles(recs: &[lightsout_memory::Record]) -> Vec<String> {
    recs.iter().map(|r| r.title.clone()).collect()
}

#[allow(clippy::many_single_char_names)] // a, b, c name the chain's links
fn supersede_chain_keeps_every_record_and_links_them(fx: Fixture) {
    let Fixture { dir: _d, mem, .. } = fx;
    let a = mem
        .add(decision_at(
            "Store in JSON files",
            "One file per run.",
            "2024-01-01",
        ))
        .unwrap();
    let b = mem
        .supersede(
            a,
            decision_at("Store in SQLite", "One SQLite file.", "2024-06-01"),
        )
        .unwrap();
    let c = mem
        .supersede(
            b,
            decision_at("Store in SQLite with WAL", "WAL mode.", "2025-01-01"),
        )
        .unwrap();

    // Nothing deleted: all three exist, with their statuses and links.
    let ra = mem.get(a).unwrap();
    let rb = mem.get(b).unwrap();
    let rc = mem.get(c).unwrap();
    assert_eq!((ra.status, ra.superseded_by), (Status::Superseded, Some(b)));
    assert_eq!(
        (rb.status, rb.supersedes, rb.superseded_by),
        (Status::Superseded, Some(a), Some(c))
    );
    assert_eq!((rc.status, rc.supersedes), (Status::Accepted, Some(b)));
    assert_eq!(ra.valid_to, Some(parse_time("2024-06-01").unwrap()));

    // The chain reads the same from any member.
    for id in [a, b, c] {
        let chain: Vec<RecordId> = mem.chain(id).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(chain, [a, b, c]);
    }
    // The old record's history has two versions: accepted, then superseded.
    let h = mem.history(a).unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(
        (h[0].status, h[1].status),
        (Status::Accepted, Status::Superseded)
    );
    assert!(h[0].recorded_to.is_some() && h[1].recorded_to.is_none());

    // Superseding a superseded record is refused and names the replacement.
    let err = mem.supersede(a, NewRecord::decision("x", "y")).unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains(&b.to_string())),
        "{err}"
    );
}

fn as_of_answers_what_was_decided_at_a_time(fx: Fixture) {
    let Fixture { dir: _d, mem, .. } = fx;
    let a = mem
        .add(decision_at("Store in JSON files", "x", "2024-01-01"))
        .unwrap();
    let b = mem
        .supersede(a, decision_at("Store in SQLite", "y", "2024-06-01"))
        .unwrap();
    let other = mem
        .add(decision_at("Use tokio", "z", "2024-03-01"))
        .unwrap();
    mem.deprecate(other).unwrap();

    let at = |d: &str| titles(&mem.as_of(parse_time(d).unwrap()).unwrap());
    assert_eq!(at("2023-12-31"), Vec::<String>::new());
    assert_eq!(at("2024-02-01"), ["Store in JSON files"]);
    assert_eq!(at("2024-04-01"), ["Store in JSON files", "Use tokio"]);
    assert_eq!(at("2024-06-01"), ["Store in SQLite", "Use tokio"]);
    // Now: the deprecated one is gone, the superseded one is gone.
    let now_titles = titles(&mem.as_of(now()).unwrap());
    assert_eq!(now_titles, ["Store in SQLite"]);
    assert_eq!(mem.get(b).unwrap().status, Status::Accepted);
}

fn known_at_answers_what_the_store_believed_then(fx: Fixture) {
    let Fixture { dir: _d, mem, .. } = fx;
    let a = mem.add(NewRecord::decision("Use REST", "x")).unwrap();
    let before = mem.get(a).unwrap().recorded_at;
    let v1_list = mem.list(Filter::KnownAt(before), &[]).unwrap();
    assert_eq!(v1_list.len(), 1);
    assert_eq!(v1_list[0].status, Status::Accepted);
    mem.deprecate(a).unwrap();
    let h = mem.history(a).unwrap();
    // Transaction time: version 1 was believed until version 2 was recorded.
    assert_eq!(h[0].recorded_to, Some(h[1].recorded_at));
    let believed_now = mem.list(Filter::KnownAt(h[1].recorded_at), &[]).unwrap();
    assert_eq!(believed_now[0].status, Status::Deprecated);
    let all = mem.list(Filter::AllVersions, &[]).unwrap();
    assert_eq!(all.len(), 2);
}

fn as_of_commit_uses_the_commit_time(fx: Fixture) {
    let Fixture { dir, mem, .. } = fx;
    let repo = dir.path().join("repo");
    crate::guards::git_init(&repo);
    crate::guards::commit_file(&repo, "a.txt", "a", "first", "2024-02-01T00:00:00Z");
    let a = mem.add(decision_at("Old way", "x", "2024-01-01")).unwrap();
    mem.supersede(a, decision_at("New way", "y", "2024-05-01"))
        .unwrap();
    let recs = mem.as_of_commit(&repo, "HEAD").unwrap();
    assert_eq!(titles(&recs), ["Old way"]);
    assert!(matches!(
        mem.as_of_commit(&repo, "nope"),
        Err(Error::Git(_))
    ));
}

fn upsert_by_key_versions_only_on_change(fx: Fixture) {
    let Fixture { dir: _d, mem, .. } = fx;
    let mut r = NewRecord::decision("Poll", "Poll every minute.");
    r.identity = lightsout_memory::Identity::Key("spec:x#DEC-1".into());
    let id = mem.add(r.clone()).unwrap();
    assert_eq!(mem.add(r.clone()).unwrap(), id);
    assert_eq!(mem.history(id).unwrap().len(), 1);
    r.decision = "Poll every five minutes.".into();
    assert_eq!(mem.add(r).unwrap(), id);
    assert_eq!(mem.history(id).unwrap().len(), 2);
}

fn invalid_records_are_refused_and_nothing_is_written(fx: Fixture) {
    let Fixture { dir: _d, mem, .. } = fx;
    let mut bad = NewRecord::decision("ok", "x");
    bad.scope.paths.push("src/[".into());
    assert!(matches!(mem.add(bad), Err(Error::Glob { .. })));
    assert!(matches!(
        mem.add(NewRecord::decision("  ", "x")),
        Err(Error::Invalid(_))
    ));
    // A batch with one bad change writes none of it.
    let good = NewRecord::decision("good", "x");
    let mut bad = NewRecord::decision("bad", "x");
    bad.guards.push(lightsout_memory::Guard::ForbidAdded {
        regex: "(".into(),
        paths: None,
    });
    assert!(
        mem.store()
            .apply(&[Change::Put(good), Change::Put(bad)])
            .is_err()
    );
    assert!(mem.current_records().unwrap().is_empty());
}

fn status_changes_and_lists(fx: Fixture) {
    let Fixture { dir: _d, mem, .. } = fx;
    let mut p = NewRecord::new(Kind::Pattern, "Errors with thiserror");
    p.status = Status::Proposed;
    let id = mem.add(p).unwrap();
    assert!(
        mem.as_of(now()).unwrap().is_empty(),
        "proposals are not in force"
    );
    assert_eq!(
        mem.set_status(id, Status::Accepted).unwrap(),
        Outcome::Updated
    );
    assert_eq!(
        mem.set_status(id, Status::Accepted).unwrap(),
        Outcome::Unchanged
    );
    assert_eq!(mem.as_of(now()).unwrap().len(), 1);
    assert!(matches!(
        mem.set_status(id, Status::Superseded),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(mem.get(RecordId(99)), Err(Error::NotFound(_))));
}

#[allow(clippy::needless_pass_by_value)] // both! hands every test its fixture
fn threads_with_their_own_connections_lose_no_write(fx: Fixture) {
    std::thread::scope(|s| {
        for t in 0..4 {
            let fx = &fx;
            s.spawn(move || {
                let mem = fx.reopen();
                for i in 0..25 {
                    mem.add(NewRecord::decision(format!("t{t} r{i}"), "x"))
                        .unwrap();
                    mem.record_lesson(lightsout_memory::Fingerprint {
                        requirement: "REQ-1".into(),
                        category: "timeout".into(),
                        detail: String::new(),
                    })
                    .unwrap();
                }
            });
        }
    });
    let mem = fx.reopen();
    let decisions = mem
        .list(Filter::Current { statuses: vec![] }, &[Kind::Decision])
        .unwrap();
    assert_eq!(decisions.len(), 100);
    let lessons = mem
        .list(Filter::Current { statuses: vec![] }, &[Kind::Lesson])
        .unwrap();
    assert_eq!(lessons.len(), 1);
    assert_eq!(lessons[0].lesson.as_ref().unwrap().failures, 100);
    if let AnyStore::Sqlite(s) = mem.store() {
        assert_eq!(s.integrity_check().unwrap(), ["ok"]);
    }
}

#[allow(clippy::needless_pass_by_value)] // both! hands every test its fixture
fn a_newer_schema_is_refused_and_the_current_one_reopens(fx: Fixture) {
    let id = fx.mem.add(NewRecord::decision("Keep me", "x")).unwrap();
    // Reopening runs the migrations again: nothing pending, nothing lost.
    assert_eq!(fx.reopen().get(id).unwrap().title, "Keep me");
    fx.set_schema_version(99);
    let err = fx.try_reopen().unwrap_err();
    assert!(
        matches!(
            err,
            Error::SchemaTooNew {
                found: 99,
                supported: 1
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade lightsout"), "{err}");
}

crate::both!(
    a_newer_schema_is_refused_and_the_current_one_reopens,
    supersede_chain_keeps_every_record_and_links_them,
    threads_with_their_own_connections_lose_no_write,
    as_of_answers_what_was_decided_at_a_time,
    known_at_answers_what_the_store_believed_then,
    as_of_commit_uses_the_commit_time,
    upsert_by_key_versions_only_on_change,
    invalid_records_are_refused_and_nothing_is_written,
    status_changes_and_lists,
);

#[test]
fn an_unreachable_server_is_an_error_that_keeps_the_clients_cause() {
    use std::error::Error as _;
    // Nothing listens on port 1 of the loopback: the connection is refused at once.
    let err =
        lightsout_memory::PgStore::connect("postgres://me:secret@127.0.0.1:1/memory").unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with("postgres 127.0.0.1:1/memory: "),
        "{shown}"
    );
    assert!(!shown.contains("secret"), "{shown}");
    assert!(err.source().is_some(), "{err:?}");
}

/// The server cuts every connection of a store (as a restart or a network cut would): the
/// next write and read reconnect, and nothing is lost or doubled.
#[test]
fn a_postgres_store_reconnects_after_its_connections_are_cut() {
    let name = format!("lightsout_memory_cut_{}", std::process::id());
    let url = format!(
        "{}&application_name={name}",
        lightsout_memory::testing::fresh_schema_url("cut")
    );
    let mem = Memory::open_location(&url).unwrap();
    mem.add(NewRecord::decision("Before the cuts", "x"))
        .unwrap();
    // Several rounds: whether the client notices a cut before its next statement is a
    // race, and each round is another chance to hit a statement on a dead connection.
    for round in 0..5 {
        let cut = terminate_backends(&name);
        assert!(
            cut >= 1,
            "round {round}: no connection of the store was cut"
        );
        mem.add(NewRecord::decision(format!("After cut {round}"), "y"))
            .unwrap();
    }
    terminate_backends(&name);
    let titles: Vec<String> = mem
        .current_records()
        .unwrap()
        .into_iter()
        .map(|r| r.title)
        .collect();
    assert_eq!(
        titles,
        [
            "Before the cuts",
            "After cut 0",
            "After cut 1",
            "After cut 2",
            "After cut 3",
            "After cut 4"
        ]
    );
}

/// Terminates the server's backends whose `application_name` is `name`; returns how many.
fn terminate_backends(name: &str) -> i64 {
    let url = lightsout_memory::testing::require_server_url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        let row = client
            .query_one(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = $1) t",
                &[&name],
            )
            .await
            .unwrap();
        drop(client);
        let _ = driver.await;
        row.get(0)
    })
}
