//! Records: the commit of a batch, and reading stored records back.
//!
//! A commit follows the steps of [`sync_core::commit`]: deduplicate, load
//! the stored versions, let [`commit::plan`] classify, write what it
//! decided. The one shortcut is insert-first: when the stream's last batch
//! was mostly new records, the batch is first inserted where its keys are
//! absent ([`Dialect::insert_absent`]); the keys that insert created had
//! nothing stored, and are given to the plan as such. Either way the counts
//! are the plan's.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{NaiveDate, Utc};
use serde_json::Value;
use sync_core::commit::{self, RecordKey, StoredVersion};
use sync_core::{
    BatchCommit, ChangeKind, ContentHash, DayRange, ExistingQuery, Record, RecordCounts,
    StoredRecord, StreamId, Unit,
};

use crate::db::{Arg, SqlDb};
use crate::dialect::{Change, Dialect, WriteContext};
use crate::error::{Doing, Error};
use crate::lease::stream_key;
use crate::store::SqlStore;

const RECORD_COLUMNS: &str = "r.entity, r.external_id, r.unit_kind, r.day, r.key, r.payload, \
     r.hash, r.deleted, r.last_changed";

fn to_json(value: &impl serde::Serialize) -> String {
    // Serialising strings and string pairs cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

fn stored_record<DB: SqlDb>(row: &DB::Row) -> Result<StoredRecord, Error> {
    let read = || -> Result<_, sqlx::Error> {
        Ok((
            DB::text(row, "entity")?,
            DB::text(row, "external_id")?,
            DB::text(row, "unit_kind")?,
            DB::opt_date(row, "day")?,
            DB::opt_int(row, "key")?,
            DB::text(row, "hash")?,
        ))
    };
    let (entity, external_id, unit_kind, day, key, hash) = read().doing("reading a record")?;
    let unit = Unit::from_parts(&unit_kind, day, key).ok_or_else(|| {
        Error::Corrupt(format!("record {entity}/{external_id} has no valid unit"))
    })?;
    let hash = ContentHash::from_hex(&hash).ok_or_else(|| {
        Error::Corrupt(format!("hash of record {entity}/{external_id}: {hash:?}"))
    })?;
    Ok(StoredRecord {
        unit,
        payload: DB::json(row, "payload").doing("reading a record")?,
        hash,
        deleted: DB::boolean(row, "deleted").doing("reading a record")?,
        last_changed: DB::time(row, "last_changed").doing("reading a record")?,
        entity,
        external_id,
    })
}

fn stored_version<DB: SqlDb>(row: &DB::Row) -> Result<(RecordKey, StoredVersion), sqlx::Error> {
    let unit_kind = DB::text(row, "unit_kind")?;
    Ok((
        (DB::text(row, "entity")?, DB::text(row, "external_id")?),
        StoredVersion {
            hash: ContentHash::from_hex(&DB::text(row, "hash")?),
            deleted: DB::boolean(row, "deleted")?,
            unit: Unit::from_parts(
                &unit_kind,
                DB::opt_date(row, "day")?,
                DB::opt_int(row, "key")?,
            ),
        },
    ))
}

fn key_of(record: &Record) -> (&str, &str) {
    (record.entity.as_str(), record.external_id.as_str())
}

impl<D: Dialect> SqlStore<D> {
    /// The stored rows of `keys` (`columns` of `records AS r`).
    async fn load_keys(
        conn: &mut <D::Db as sqlx::Database>::Connection,
        source: &str,
        keys: &[(&str, &str)],
        columns: &str,
        doing: &'static str,
    ) -> Result<Vec<<D::Db as sqlx::Database>::Row>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {columns} FROM ({}) AS k CROSS JOIN records AS r \
             WHERE r.source = $1 AND r.entity = k.entity AND r.external_id = k.external_id",
            D::json_pairs("$2")
        );
        let pairs = to_json(&keys.iter().map(|(e, id)| [*e, *id]).collect::<Vec<_>>());
        D::Db::fetch_all(conn, &sql, vec![Arg::Str(source), Arg::Text(pairs)])
            .await
            .doing(doing)
    }

    /// Hash, deleted flag and unit of the stored records among `keys`.
    async fn load_versions(
        conn: &mut <D::Db as sqlx::Database>::Connection,
        source: &str,
        keys: &[(&str, &str)],
    ) -> Result<HashMap<RecordKey, StoredVersion>, Error> {
        let rows = Self::load_keys(
            conn,
            source,
            keys,
            "r.entity, r.external_id, r.hash, r.deleted, r.unit_kind, r.day, r.key",
            "loading the stored versions of the batch",
        )
        .await?;
        rows.iter()
            .map(|row| stored_version::<D::Db>(row).doing("reading a stored version"))
            .collect()
    }

    /// The stored payloads of `keys`.
    async fn load_payloads(
        conn: &mut <D::Db as sqlx::Database>::Connection,
        source: &str,
        keys: &[(&str, &str)],
    ) -> Result<HashMap<RecordKey, Value>, Error> {
        let rows = Self::load_keys(
            conn,
            source,
            keys,
            "r.entity, r.external_id, r.payload",
            "loading the stored payloads of changed records",
        )
        .await?;
        let read = |row: &<D::Db as sqlx::Database>::Row| -> Result<_, sqlx::Error> {
            Ok((
                (
                    D::Db::text(row, "entity")?,
                    D::Db::text(row, "external_id")?,
                ),
                D::Db::json(row, "payload")?,
            ))
        };
        rows.iter()
            .map(|row| read(row).doing("reading a stored payload"))
            .collect()
    }

    /// Stores a batch: records, change log, coverage and the run's running
    /// totals, in one transaction.
    pub(crate) async fn commit_batch(&self, batch: BatchCommit<'_>) -> Result<RecordCounts, Error> {
        let unique = commit::dedupe(batch.records);
        for record in &unique {
            if let Some(reason) = D::unstorable(record) {
                return Err(Error::BadRecord {
                    entity: record.entity.replace('\0', "\\0"),
                    external_id: record.external_id.replace('\0', "\\0"),
                    reason,
                });
            }
        }
        let ctx = WriteContext {
            source: &batch.stream.source,
            run: &batch.run.0,
            now: Utc::now(),
        };
        let stream = stream_key(batch.stream);
        let insert_first = !self.mostly_stored(&stream);

        let mut tx = self.begin_write("starting the commit").await?;
        // Keys the insert created: nothing was stored under them.
        let created = if insert_first && !unique.is_empty() {
            D::insert_absent(&mut *tx, &ctx, &unique)
                .await
                .doing("writing the batch's new records")?
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let created: HashSet<(&str, &str)> = created
            .iter()
            .map(|(e, id)| (e.as_str(), id.as_str()))
            .collect();
        let looked_up: Vec<(&str, &str)> = unique
            .iter()
            .map(|r| key_of(r))
            .filter(|key| !created.contains(key))
            .collect();
        let stored = Self::load_versions(&mut *tx, ctx.source, &looked_up).await?;
        let plan = commit::plan(&unique, &stored);
        let old_payloads = Self::load_payloads(&mut *tx, ctx.source, &plan.changed_keys()).await?;
        let changes: Vec<Change<'_>> = plan
            .writes
            .iter()
            .filter(|(record, _)| !created.contains(&key_of(record)))
            .map(|&(record, kind)| {
                let key = (record.entity.clone(), record.external_id.clone());
                let fields = commit::changed_fields(kind, old_payloads.get(&key), &record.payload);
                Change {
                    record,
                    kind,
                    fields: serde_json::to_value(fields).unwrap_or(Value::Array(Vec::new())),
                }
            })
            .collect();
        if !changes.is_empty() {
            D::write_changes(&mut *tx, &ctx, &changes)
                .await
                .doing("writing the batch's changed records")?;
        }
        Self::finish_commit(&mut *tx, &batch, ctx.now, plan.counts).await?;
        if let Some(claim) = batch.claim {
            crate::queue::complete::<D>(&mut tx, claim).await?;
        }
        tx.commit().await.doing("committing the batch")?;

        // A batch mostly of stored records (a re-run, a delta) is likely
        // followed by more: for them a lookup is cheaper than an insert
        // attempt.
        let counts = plan.counts;
        let was_stored = counts.updated + counts.unchanged + counts.deleted;
        self.set_mostly_stored(&stream, was_stored > counts.created);
        Ok(counts)
    }

    /// Records of `stream` that match `query`.
    pub(crate) async fn read_existing(
        &self,
        stream: &StreamId,
        query: &ExistingQuery,
    ) -> Result<Vec<StoredRecord>, Error> {
        let mut conn = self.conn().await?;
        let rows = match query {
            ExistingQuery::ByIds { entity, ids } => {
                let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                ids.sort_unstable();
                ids.dedup();
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT {RECORD_COLUMNS} FROM records AS r \
                     WHERE r.source = $1 AND r.entity = $2 AND r.external_id IN ({}) \
                     ORDER BY r.external_id",
                    D::json_texts("$3")
                );
                let args = vec![
                    Arg::Str(&stream.source),
                    Arg::Str(entity),
                    Arg::Text(to_json(&ids)),
                ];
                D::Db::fetch_all(&mut *conn, &sql, args)
                    .await
                    .doing("loading records by id")?
            }
            ExistingQuery::InDays { entity, range } => {
                let sql = format!(
                    "SELECT {RECORD_COLUMNS} FROM records AS r \
                     WHERE r.source = $1 AND r.entity = $2 AND r.day BETWEEN $3 AND $4 \
                     ORDER BY r.day, r.external_id"
                );
                let args = vec![
                    Arg::Str(&stream.source),
                    Arg::Str(entity),
                    Arg::OptDate(Some(range.first)),
                    Arg::OptDate(Some(range.last)),
                ];
                D::Db::fetch_all(&mut *conn, &sql, args)
                    .await
                    .doing("loading records by day")?
            }
        };
        rows.iter().map(stored_record::<D::Db>).collect()
    }

    /// Records (not deleted) per day of `range`.
    pub(crate) async fn read_day_counts(
        &self,
        stream: &StreamId,
        range: DayRange,
    ) -> Result<BTreeMap<NaiveDate, u64>, Error> {
        let mut conn = self.conn().await?;
        let rows = D::Db::fetch_all(
            &mut *conn,
            "SELECT day, COUNT(*) AS n FROM records \
             WHERE source = $1 AND day BETWEEN $2 AND $3 AND NOT deleted GROUP BY day",
            vec![
                Arg::Str(&stream.source),
                Arg::OptDate(Some(range.first)),
                Arg::OptDate(Some(range.last)),
            ],
        )
        .await
        .doing("counting records per day")?;
        let mut counts = BTreeMap::new();
        for row in &rows {
            let read = || -> Result<_, sqlx::Error> {
                Ok((D::Db::opt_date(row, "day")?, D::Db::int(row, "n")?))
            };
            if let (Some(day), n) = read().doing("counting records per day")? {
                counts.insert(day, u64::try_from(n).unwrap_or(0));
            }
        }
        Ok(counts)
    }
}

/// The kind of a change log row, read back.
pub(crate) fn change_kind(kind: &str) -> Result<ChangeKind, Error> {
    ChangeKind::parse(kind).ok_or_else(|| Error::Corrupt(format!("change of kind {kind:?}")))
}
