//! What a commit does to each record, decided in memory from the stored
//! hashes: created, updated, deleted or unchanged. The database is then
//! written in bulk, only for the records that changed.

use std::collections::HashMap;

use chrono::NaiveDate;
use sync_core::interval::Point;
use sync_core::{
    ChangeKind, ContentHash, Coverage, IntervalSet, Record, RecordCounts, SyncMode, Unit,
};

/// (entity, external id).
pub(crate) type RecordKey = (String, String);

/// What is stored about a record, enough to decide whether it changed.
#[derive(Debug)]
pub(crate) struct Existing {
    /// `None` when the stored hash is unreadable: the record is rewritten.
    pub(crate) hash: Option<ContentHash>,
    pub(crate) deleted: bool,
    pub(crate) unit: Option<Unit>,
}

/// The records of a batch with duplicate keys removed: the last one wins,
/// in the position of the first.
pub(crate) fn dedupe(records: &[Record]) -> Vec<&Record> {
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
pub(crate) fn classify(new: &Record, old: Option<&Existing>) -> Option<ChangeKind> {
    let Some(old) = old else {
        return Some(ChangeKind::Created);
    };
    if new.deleted && !old.deleted {
        return Some(ChangeKind::Deleted);
    }
    let same =
        old.hash == Some(new.hash) && old.deleted == new.deleted && old.unit == Some(new.unit);
    (!same).then_some(ChangeKind::Updated)
}

/// The counts and the records to write for a batch.
pub(crate) struct Plan<'a> {
    pub(crate) counts: RecordCounts,
    pub(crate) writes: Vec<(&'a Record, ChangeKind)>,
}

impl Plan<'_> {
    /// Keys of the written records that were stored before (their old
    /// payloads are needed for the change log).
    pub(crate) fn changed_keys(&self) -> Vec<(&str, &str)> {
        self.writes
            .iter()
            .filter(|(_, kind)| *kind != ChangeKind::Created)
            .map(|(r, _)| (r.entity.as_str(), r.external_id.as_str()))
            .collect()
    }
}

/// Classifies every record of a deduplicated batch.
pub(crate) fn plan<'a>(unique: &[&'a Record], existing: &HashMap<RecordKey, Existing>) -> Plan<'a> {
    let mut counts = RecordCounts::default();
    let mut writes = Vec::new();
    for &record in unique {
        let key = (record.entity.clone(), record.external_id.clone());
        match classify(record, existing.get(&key)) {
            None => counts.unchanged += 1,
            Some(kind) => {
                match kind {
                    ChangeKind::Created => counts.created += 1,
                    ChangeKind::Updated => counts.updated += 1,
                    ChangeKind::Deleted => counts.deleted += 1,
                }
                writes.push((record, kind));
            }
        }
    }
    Plan { counts, writes }
}

/// The `unit_kind`, `day` and `key` columns of a unit.
pub(crate) fn unit_columns(unit: Unit) -> (&'static str, Option<NaiveDate>, Option<i64>) {
    match unit {
        Unit::Day(day) => ("day", Some(day), None),
        Unit::Key(key) => ("key", None, Some(key)),
    }
}

/// The unit stored in the `unit_kind`, `day` and `key` columns.
pub(crate) fn unit_from_columns(
    kind: &str,
    day: Option<NaiveDate>,
    key: Option<i64>,
) -> Option<Unit> {
    match (kind, day, key) {
        ("day", Some(day), _) => Some(Unit::Day(day)),
        ("key", _, Some(key)) => Some(Unit::Key(key)),
        _ => None,
    }
}

/// `set` without the points of `remove`.
pub(crate) fn subtract<T: Point>(set: &IntervalSet<T>, remove: &IntervalSet<T>) -> IntervalSet<T> {
    let mut kept = IntervalSet::new();
    for span in set.spans() {
        for gap in remove.gaps(span) {
            kept.insert(gap);
        }
    }
    kept
}

/// `coverage` without the units of `remove`.
pub(crate) fn subtract_coverage(coverage: &Coverage, remove: &Coverage) -> Coverage {
    Coverage {
        days: subtract(&coverage.days, &remove.days),
        keys: subtract(&coverage.keys, &remove.keys),
    }
}

/// The stored name of a sync mode.
pub(crate) fn mode_str(mode: SyncMode) -> &'static str {
    match mode {
        SyncMode::Full => "full",
        SyncMode::Delta => "delta",
    }
}

/// Parses [`mode_str`].
pub(crate) fn parse_mode(s: &str) -> Option<SyncMode> {
    match s {
        "full" => Some(SyncMode::Full),
        "delta" => Some(SyncMode::Delta),
        _ => None,
    }
}

/// A count for a signed integer column (saturating; counts never come near).
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A count read back from a signed integer column.
pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sync_core::Span;

    fn rec(id: &str, n: i64) -> Record {
        Record::new("e", id, Unit::Key(n), json!({ "n": n }))
    }

    #[test]
    fn dedupe_keeps_the_last_version_in_first_position() {
        let records = [rec("a", 1), rec("b", 2), rec("a", 3)];
        let unique = dedupe(&records);
        assert_eq!(unique.len(), 2);
        assert_eq!(unique[0].payload, json!({"n": 3}));
        assert_eq!(unique[1].external_id, "b");
    }

    #[test]
    fn classification() {
        let r = rec("a", 1);
        let stored = |hash, deleted, unit| Existing {
            hash,
            deleted,
            unit,
        };
        assert_eq!(classify(&r, None), Some(ChangeKind::Created));
        assert_eq!(
            classify(&r, Some(&stored(Some(r.hash), false, Some(r.unit)))),
            None
        );
        assert_eq!(
            classify(&r, Some(&stored(None, false, Some(r.unit)))),
            Some(ChangeKind::Updated)
        );
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
            classify(&r, Some(&stored(Some(r.hash), true, Some(r.unit)))),
            Some(ChangeKind::Updated)
        );
    }

    #[test]
    fn subtract_splits_and_trims() {
        let set: IntervalSet<i64> = [Span::new(1, 10).unwrap(), Span::new(20, 30).unwrap()]
            .into_iter()
            .collect();
        let remove: IntervalSet<i64> = [Span::new(3, 4).unwrap(), Span::new(25, 40).unwrap()]
            .into_iter()
            .collect();
        let kept: Vec<_> = subtract(&set, &remove).spans().collect();
        assert_eq!(
            kept,
            vec![
                Span::new(1, 2).unwrap(),
                Span::new(5, 10).unwrap(),
                Span::new(20, 24).unwrap()
            ]
        );
    }
}
