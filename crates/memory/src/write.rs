//! The write rules every backend shares: upserts, supersede, status changes and lessons, on
//! top of [`Tx`], the handful of row operations a backend provides inside one write
//! transaction. Keeping the rules here means both backends version, link and count records
//! exactly alike; only the SQL differs.

use crate::model::to_millis;
use crate::store::{Applied, Change, Outcome};
use crate::{
    Author, Error, Fingerprint, Identity, Kind, NewRecord, Record, RecordId, Status, Timestamp,
};

/// The row operations of one write transaction (isolated from other writers: the backend
/// serialises write batches).
pub(crate) trait Tx {
    /// The current version of `id` and its row id (`vid`).
    fn current(&mut self, id: RecordId) -> Result<Option<(i64, Record)>, Error>;
    /// The lowest id whose current version has this external key.
    fn current_by_key(&mut self, key: &str) -> Result<Option<RecordId>, Error>;
    /// A new record id: `hint` when it is positive and free, else the next one.
    fn allocate(&mut self, hint: Option<RecordId>, now_ms: i64) -> Result<RecordId, Error>;
    /// Writes one version (and its search and scope-prefix entries).
    fn insert_version(&mut self, v: &Version<'_>, now: Timestamp) -> Result<(), Error>;
    /// Ends the transaction time of version row `vid` at `now`.
    fn close_version(&mut self, vid: i64, now: Timestamp) -> Result<(), Error>;
    /// The lesson of a fingerprint key: its record and whether it is retired.
    fn lesson(&mut self, fingerprint: &str) -> Result<Option<(RecordId, bool)>, Error>;
    /// Counts a lesson's first failure.
    fn insert_lesson(
        &mut self,
        fingerprint: &str,
        record: RecordId,
        requirement: &str,
        category: &str,
        at: Timestamp,
    ) -> Result<(), Error>;
    /// Counts one more failure: resets the green streak and un-retires the lesson.
    fn lesson_failed_again(&mut self, fingerprint: &str, at: Timestamp) -> Result<(), Error>;
    /// Adds one green run to every live lesson of `requirement`; returns how many.
    fn count_green(&mut self, requirement: &str) -> Result<u64, Error>;
    /// The live lessons of `requirement` with `green_streak >= retire_after`, by id.
    fn lessons_due(&mut self, requirement: &str, retire_after: u32)
    -> Result<Vec<RecordId>, Error>;
    /// Marks a lesson retired at `at`.
    fn retire_lesson(&mut self, record: RecordId, at: Timestamp) -> Result<(), Error>;
}

/// The stored fields of one version.
pub(crate) struct Version<'a> {
    pub(crate) id: RecordId,
    pub(crate) number: u32,
    pub(crate) rec: &'a NewRecord,
    pub(crate) valid_from: Timestamp,
    pub(crate) supersedes: Option<RecordId>,
    pub(crate) superseded_by: Option<RecordId>,
    pub(crate) external_key: Option<&'a str>,
}

/// Writes a new version of `old` (current row `vid`) with `new`'s fields.
fn revise<T: Tx + ?Sized>(
    tx: &mut T,
    vid: i64,
    old: &Record,
    new: &NewRecord,
    now: Timestamp,
) -> Result<(), Error> {
    tx.close_version(vid, now)?;
    tx.insert_version(
        &Version {
            id: old.id,
            number: old.version + 1,
            rec: new,
            valid_from: new.valid_from.unwrap_or(old.valid_from),
            supersedes: new.supersedes.or(old.supersedes),
            superseded_by: new.superseded_by.or(old.superseded_by),
            external_key: old.external_key.as_deref(),
        },
        now,
    )
}

fn same_content(old: &Record, new: &NewRecord) -> bool {
    let o = old.to_new();
    o.kind == new.kind
        && o.status == new.status
        && o.title == new.title
        && o.context == new.context
        && o.decision == new.decision
        && o.consequences == new.consequences
        && o.rejected_options == new.rejected_options
        && o.scope == new.scope
        && o.provenance == new.provenance
        && o.guards == new.guards
        && new.valid_from.is_none_or(|t| t == old.valid_from)
        && o.valid_to == new.valid_to
        && new.supersedes.is_none_or(|s| Some(s) == old.supersedes)
        && new
            .superseded_by
            .is_none_or(|s| Some(s) == old.superseded_by)
}

fn create<T: Tx + ?Sized>(
    tx: &mut T,
    rec: &NewRecord,
    key: Option<&str>,
    id: Option<RecordId>,
    supersedes: Option<RecordId>,
    now: Timestamp,
) -> Result<RecordId, Error> {
    let id = tx.allocate(id.or(rec.id_hint), to_millis(now))?;
    tx.insert_version(
        &Version {
            id,
            number: 1,
            rec,
            valid_from: rec.valid_from.unwrap_or(now),
            supersedes: supersedes.or(rec.supersedes),
            superseded_by: rec.superseded_by,
            external_key: key.or(rec.external_key.as_deref()),
        },
        now,
    )?;
    Ok(id)
}

pub(crate) fn apply_one<T: Tx + ?Sized>(
    tx: &mut T,
    change: &Change,
    now: Timestamp,
) -> Result<Applied, Error> {
    match change {
        Change::Put(rec) => put(tx, rec, now),
        Change::Supersede { old, new } => supersede(tx, *old, new, now),
        Change::SetStatus { id, status, at } => {
            set_status(tx, *id, *status, at.unwrap_or(now), now)
        }
        Change::LessonFailed { fingerprint, at } => {
            lesson_failed(tx, fingerprint, at.unwrap_or(now), now)
        }
        Change::Green {
            requirement,
            retire_after,
            at,
        } => green(
            tx,
            requirement,
            (*retire_after).max(1),
            at.unwrap_or(now),
            now,
        ),
    }
}

/// [`Change::Put`]: creates the record, or revises the one with its id or key when the
/// content differs.
fn put<T: Tx + ?Sized>(tx: &mut T, rec: &NewRecord, now: Timestamp) -> Result<Applied, Error> {
    let rec = &crate::normalize(rec);
    crate::validate(rec)?;
    let (existing, key) = match &rec.identity {
        Identity::New => (None, None),
        Identity::Id(id) => (Some(*id), None),
        Identity::Key(k) => (tx.current_by_key(k)?, Some(k.as_str())),
    };
    if let Some(id) = existing
        && let Some((vid, old)) = tx.current(id)?
    {
        if same_content(&old, rec) {
            return Ok(Applied {
                ids: vec![id],
                outcome: Outcome::Unchanged,
            });
        }
        revise(tx, vid, &old, rec, now)?;
        return Ok(Applied {
            ids: vec![id],
            outcome: Outcome::Updated,
        });
    }
    let want = match &rec.identity {
        Identity::Id(id) => Some(*id),
        _ => None,
    };
    let id = create(tx, rec, key, want, None, now)?;
    Ok(Applied {
        ids: vec![id],
        outcome: Outcome::Created,
    })
}

/// [`Change::Supersede`]: creates `new` and closes `old` (in force until `new` starts),
/// unless `old` is already superseded or was rejected.
fn supersede<T: Tx + ?Sized>(
    tx: &mut T,
    old: RecordId,
    new: &NewRecord,
    now: Timestamp,
) -> Result<Applied, Error> {
    let new = &crate::normalize(new);
    crate::validate(new)?;
    let (vid, prev) = tx.current(old)?.ok_or(Error::NotFound(old))?;
    match prev.status {
        Status::Superseded => {
            let by = prev
                .superseded_by
                .map_or_else(|| "another record".to_owned(), |b| b.to_string());
            return Err(Error::Conflict(format!(
                "{old} is already superseded by {by}; supersede {by} instead"
            )));
        }
        Status::Rejected => {
            return Err(Error::Conflict(format!(
                "{old} was rejected and was never in force; add a new record instead"
            )));
        }
        _ => {}
    }
    let at = new.valid_from.unwrap_or(now);
    let mut new_rec = new.clone();
    new_rec.valid_from = Some(at);
    let key = match &new.identity {
        Identity::Key(k) => Some(k.as_str()),
        _ => None,
    };
    let new_id = create(tx, &new_rec, key, None, Some(old), now)?;
    let mut closed = prev.to_new();
    closed.status = Status::Superseded;
    closed.valid_to = Some(prev.valid_to.map_or(at, |t| t.min(at)).max(prev.valid_from));
    closed.superseded_by = Some(new_id);
    revise(tx, vid, &prev, &closed, now)?;
    Ok(Applied {
        ids: vec![new_id],
        outcome: Outcome::Created,
    })
}

/// [`Change::SetStatus`] at time `at`: deprecating ends the record's validity, accepting
/// (re)starts it; superseding goes through [`Change::Supersede`].
fn set_status<T: Tx + ?Sized>(
    tx: &mut T,
    id: RecordId,
    status: Status,
    at: Timestamp,
    now: Timestamp,
) -> Result<Applied, Error> {
    let (vid, prev) = tx.current(id)?.ok_or(Error::NotFound(id))?;
    if status == Status::Superseded {
        return Err(Error::Invalid(
            "use supersede to mark a record superseded, so that its replacement is linked".into(),
        ));
    }
    if prev.status == status {
        return Ok(Applied {
            ids: vec![id],
            outcome: Outcome::Unchanged,
        });
    }
    if prev.status == Status::Superseded {
        return Err(Error::Conflict(format!(
            "{id} is superseded; change its replacement instead"
        )));
    }
    let mut next = prev.to_new();
    next.status = status;
    match status {
        Status::Deprecated => {
            next.valid_to = Some(at.max(prev.valid_from));
        }
        Status::Accepted => {
            if prev.status != Status::Deprecated {
                next.valid_from = Some(at);
            }
            next.valid_to = None;
        }
        _ => {}
    }
    revise(tx, vid, &prev, &next, now)?;
    Ok(Applied {
        ids: vec![id],
        outcome: Outcome::Updated,
    })
}

fn lesson_failed<T: Tx + ?Sized>(
    tx: &mut T,
    fp: &Fingerprint,
    at: Timestamp,
    now: Timestamp,
) -> Result<Applied, Error> {
    let key = fp.key();
    if fp.requirement.trim().is_empty() || fp.category.trim().is_empty() {
        return Err(Error::Invalid(
            "a failure fingerprint needs a requirement and a category".into(),
        ));
    }
    match tx.lesson(&key)? {
        None => {
            let requirement = fp.requirement.trim();
            let category = fp.category.trim().to_lowercase();
            let mut rec = NewRecord::new(
                Kind::Lesson,
                format!("{requirement} has failed with `{category}`"),
            );
            fp.detail.trim().clone_into(&mut rec.context);
            rec.decision = format!(
                "Work on {requirement} has failed its evaluation with `{category}` before; \
                 check for that failure before declaring the task done."
            );
            rec.scope.tags = vec![requirement.to_owned(), category.clone()];
            rec.provenance.requirement = Some(requirement.to_owned());
            rec.provenance.author = Author::Factory;
            rec.valid_from = Some(at);
            let lesson_key = format!("lesson:{key}");
            let id = create(tx, &rec, Some(&lesson_key), None, None, now)?;
            tx.insert_lesson(&key, id, requirement, &category, at)?;
            Ok(Applied {
                ids: vec![id],
                outcome: Outcome::Created,
            })
        }
        Some((id, retired)) => {
            tx.lesson_failed_again(&key, at)?;
            if retired && let Some((vid, prev)) = tx.current(id)? {
                let mut next = prev.to_new();
                next.status = Status::Accepted;
                next.valid_from = Some(at);
                next.valid_to = None;
                revise(tx, vid, &prev, &next, now)?;
            }
            Ok(Applied {
                ids: vec![id],
                outcome: Outcome::Updated,
            })
        }
    }
}

fn green<T: Tx + ?Sized>(
    tx: &mut T,
    requirement: &str,
    retire_after: u32,
    at: Timestamp,
    now: Timestamp,
) -> Result<Applied, Error> {
    let requirement = requirement.trim();
    let n = tx.count_green(requirement)?;
    let due = tx.lessons_due(requirement, retire_after)?;
    let mut retired = Vec::new();
    for id in due {
        tx.retire_lesson(id, at)?;
        if let Some((vid, prev)) = tx.current(id)? {
            let mut next = prev.to_new();
            next.status = Status::Deprecated;
            next.valid_to = Some(at.max(prev.valid_from));
            revise(tx, vid, &prev, &next, now)?;
        }
        retired.push(id);
    }
    Ok(Applied {
        ids: retired,
        outcome: if n == 0 {
            Outcome::Unchanged
        } else {
            Outcome::Updated
        },
    })
}
