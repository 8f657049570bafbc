//! What a commit does to each record, decided in memory from what is stored;
//! stores then write only what changed.
//!
//! Every [`Store`](crate::Store) commits a batch in the same steps, so that
//! all of them count alike:
//!
//! 1. [`dedupe`] the batch: a source may return a record twice, and the last
//!    version wins;
//! 2. load the [`StoredVersion`] of each key of the batch;
//! 3. [`plan`] the commit: each record is created, updated, deleted or
//!    unchanged ([`classify`]), which gives the counts to return and the
//!    records to write;
//! 4. write [`CommitPlan::writes`] with their change log entries
//!    ([`changed_fields`], from the stored payloads of
//!    [`CommitPlan::changed_keys`]); unchanged records are not rewritten.

use std::collections::HashMap;

use serde_json::Value;

use crate::domain::record::{
    diff_payloads, ChangeKind, ContentHash, FieldChange, Record, StoredRecord, Unit,
};
use crate::domain::run::RecordCounts;

/// A record's key within a source: (entity, external id).
pub type RecordKey = (String, String);

/// What is stored about a record: enough to decide whether it changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredVersion {
    /// The stored content hash; `None` when it cannot be read, so that the
    /// record is rewritten.
    pub hash: Option<ContentHash>,
    /// Whether the record is marked deleted.
    pub deleted: bool,
    /// The stored day or key; `None` when it cannot be read, so that the
    /// record is rewritten.
    pub unit: Option<Unit>,
}

impl From<&StoredRecord> for StoredVersion {
    fn from(stored: &StoredRecord) -> Self {
        Self {
            hash: Some(stored.hash),
            deleted: stored.deleted,
            unit: Some(stored.unit),
        }
    }
}

/// The records of a batch with duplicate keys removed: the last version of
/// a key wins, in the position of its first.
pub fn dedupe(records: &[Record]) -> Vec<&Record> {
    let mut position: HashMap<(&str, &str), usize> = HashMap::with_capacity(records.len());
    let mut unique: Vec<&Record> = Vec::with_capacity(records.len());
    for record in records {
        let key = (record.entity.as_str(), record.external_id.as_str());
        match position.get(&key) {
            Some(&i) => unique[i] = record,
            None => {
                position.insert(key, unique.len());
                unique.push(record);
            }
        }
    }
    unique
}

/// What committing `new` does, given what is stored; `None` means unchanged.
///
/// - nothing stored: created (even when `new` is already deleted);
/// - newly marked deleted: deleted;
/// - same hash, deleted flag and unit: unchanged;
/// - anything else (another hash, back from deleted, moved to another day
///   or key): updated, so that per-day counts follow the move.
pub fn classify(new: &Record, stored: Option<&StoredVersion>) -> Option<ChangeKind> {
    let Some(stored) = stored else {
        return Some(ChangeKind::Created);
    };
    if new.deleted && !stored.deleted {
        return Some(ChangeKind::Deleted);
    }
    let same = stored.hash == Some(new.hash)
        && stored.deleted == new.deleted
        && stored.unit == Some(new.unit);
    (!same).then_some(ChangeKind::Updated)
}

/// A batch's commit, decided: the counts to return and the records to write.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommitPlan<'a> {
    /// Created, updated, unchanged and deleted records of the batch.
    pub counts: RecordCounts,
    /// The records to write (every one not unchanged), in batch order, each
    /// with its change log kind.
    pub writes: Vec<(&'a Record, ChangeKind)>,
}

impl CommitPlan<'_> {
    /// The (entity, external id) of the written records that were stored
    /// before: their stored payloads are needed for the change log.
    pub fn changed_keys(&self) -> Vec<(&str, &str)> {
        self.writes
            .iter()
            .filter(|(_, kind)| *kind != ChangeKind::Created)
            .map(|(r, _)| (r.entity.as_str(), r.external_id.as_str()))
            .collect()
    }
}

/// Classifies every record of a deduplicated batch (see [`dedupe`]) against
/// the stored versions of its keys.
pub fn plan<'a>(
    unique: &[&'a Record],
    stored: &HashMap<RecordKey, StoredVersion>,
) -> CommitPlan<'a> {
    let mut plan = CommitPlan::default();
    for &record in unique {
        let key = (record.entity.clone(), record.external_id.clone());
        let Some(kind) = classify(record, stored.get(&key)) else {
            plan.counts.unchanged += 1;
            continue;
        };
        match kind {
            ChangeKind::Created => plan.counts.created += 1,
            ChangeKind::Updated => plan.counts.updated += 1,
            ChangeKind::Deleted => plan.counts.deleted += 1,
        }
        plan.writes.push((record, kind));
    }
    plan
}

/// The fields a change log entry lists: none for a creation, otherwise the
/// differences from the stored payload (`None`, an unreadable one, counts
/// as `null`).
pub fn changed_fields(
    kind: ChangeKind,
    stored_payload: Option<&Value>,
    new_payload: &Value,
) -> Vec<FieldChange> {
    match kind {
        ChangeKind::Created => Vec::new(),
        ChangeKind::Updated | ChangeKind::Deleted => {
            diff_payloads(stored_payload.unwrap_or(&Value::Null), new_payload)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(id: &str, n: i64) -> Record {
        Record::new("e", id, Unit::Key(n), json!({ "n": n }))
    }

    fn stored(hash: Option<ContentHash>, deleted: bool, unit: Option<Unit>) -> StoredVersion {
        StoredVersion {
            hash,
            deleted,
            unit,
        }
    }

    fn key(id: &str) -> RecordKey {
        ("e".to_owned(), id.to_owned())
    }

    #[test]
    fn dedupe_keeps_the_last_version_in_first_position() {
        let records = [rec("a", 1), rec("b", 2), rec("a", 3)];
        let unique = dedupe(&records);
        assert_eq!(unique.len(), 2);
        assert_eq!(unique[0].payload, json!({"n": 3}));
        assert_eq!(unique[1].external_id, "b");
        let other_entity = Record::new("f", "a", Unit::Key(1), json!({}));
        assert_eq!(dedupe(&[rec("a", 1), other_entity]).len(), 2);
    }

    #[test]
    fn classification() {
        let r = rec("a", 1);
        assert_eq!(classify(&r, None), Some(ChangeKind::Created));
        assert_eq!(
            classify(&r.clone().deleted(true), None),
            Some(ChangeKind::Created)
        );
        assert_eq!(
            classify(&r, Some(&stored(Some(r.hash), false, Some(r.unit)))),
            None
        );
        assert_eq!(
            classify(&r, Some(&stored(None, false, Some(r.unit)))),
            Some(ChangeKind::Updated)
        );
        assert_eq!(
            classify(&r, Some(&stored(Some(r.hash), false, None))),
            Some(ChangeKind::Updated)
        );
        // Same payload, other unit: updated (the record moved).
        assert_eq!(
            classify(&r, Some(&stored(Some(r.hash), false, Some(Unit::Key(9))))),
            Some(ChangeKind::Updated)
        );
        assert_eq!(
            classify(
                &r.clone().deleted(true),
                Some(&stored(Some(r.hash), false, Some(r.unit)))
            ),
            Some(ChangeKind::Deleted)
        );
        assert_eq!(
            classify(
                &r.clone().deleted(true),
                Some(&stored(Some(r.hash), true, Some(r.unit)))
            ),
            None
        );
        assert_eq!(
            classify(&r, Some(&stored(Some(r.hash), true, Some(r.unit)))),
            Some(ChangeKind::Updated)
        );
    }

    #[test]
    fn plan_counts_and_lists_writes_in_batch_order() {
        let (a, b, c, d) = (rec("a", 1), rec("b", 2), rec("c", 3), rec("d", 4));
        let stored_versions: HashMap<RecordKey, StoredVersion> = [
            (key("b"), StoredVersion::from(&stored_record(&b))),
            (
                key("c"),
                stored(Some(rec("c", 99).hash), false, Some(c.unit)),
            ),
            (key("d"), stored(Some(d.hash), false, Some(d.unit))),
        ]
        .into_iter()
        .collect();
        let d_deleted = d.clone().deleted(true);
        let unique = [&a, &b, &c, &d_deleted];
        let plan = plan(&unique, &stored_versions);
        assert_eq!(
            plan.counts,
            RecordCounts {
                created: 1,
                updated: 1,
                unchanged: 1,
                deleted: 1
            }
        );
        let written: Vec<(&str, ChangeKind)> = plan
            .writes
            .iter()
            .map(|(r, k)| (r.external_id.as_str(), *k))
            .collect();
        assert_eq!(
            written,
            [
                ("a", ChangeKind::Created),
                ("c", ChangeKind::Updated),
                ("d", ChangeKind::Deleted)
            ]
        );
        assert_eq!(plan.changed_keys(), [("e", "c"), ("e", "d")]);
    }

    #[test]
    fn changed_fields_are_empty_for_creations() {
        let old = json!({"n": 1});
        let new = json!({"n": 2});
        assert!(changed_fields(ChangeKind::Created, Some(&old), &new).is_empty());
        let updated = changed_fields(ChangeKind::Updated, Some(&old), &new);
        assert_eq!(updated, diff_payloads(&old, &new));
        assert_eq!(updated.len(), 1);
        assert_eq!(
            changed_fields(ChangeKind::Deleted, None, &new),
            diff_payloads(&Value::Null, &new)
        );
    }

    fn stored_record(r: &Record) -> StoredRecord {
        StoredRecord {
            entity: r.entity.clone(),
            external_id: r.external_id.clone(),
            unit: r.unit,
            payload: r.payload.clone(),
            hash: r.hash,
            deleted: r.deleted,
            last_changed: chrono::Utc::now(),
        }
    }
}
