//! The SQLite store: records, change log, coverage and run history in one
//! database file.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};
use sync_core::commit::{self, RecordKey, StoredVersion};
use sync_core::{
    BatchCommit, ChangeKind, CheckpointStore, ContentHash, Coverage, DayRange, ExistingQuery,
    RecordChange, RecordCounts, RunId, RunReport, RunStatus, Store, StoredRecord, StreamId,
    SyncError, SyncMode, Unit,
};

use crate::config::SqliteConfig;
use crate::error::{is_busy, Doing, Error};
use crate::lease::{stream_key, Leases};

/// The schema migrations, embedded in the binary.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Rows per multi-row INSERT of records (13 values a row, well under
/// SQLite's limit of 32766 bound values a statement).
const RECORD_CHUNK: usize = 500;
/// Rows per multi-row INSERT of change log entries and ranges.
const SMALL_ROW_CHUNK: usize = 1000;
/// How often opening retries when another process is creating or
/// migrating the same file at the same moment.
const OPEN_ATTEMPTS: u32 = 40;

/// The error a run left `in_progress` by a dead process gets.
const ABANDONED: &str = "abandoned: the process ended without finishing the run";

/// A [`Store`] and [`CheckpointStore`] in a SQLite database.
///
/// Cheap to clone (the pool is shared). The schema is created and migrated
/// when the store is opened. Runs take a lease on their stream: an OS file
/// lock next to the database file, released when the run finishes or its
/// process ends.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    // `None` for an in-memory database.
    path: Option<PathBuf>,
    leases: Leases,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = match &self.inner.path {
            Some(path) => path.display().to_string(),
            None => ":memory:".to_owned(),
        };
        f.debug_struct("SqliteStore")
            .field("database", &location)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it and its directory when missing) the database at
    /// `path` with default settings and migrates its schema.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, SyncError> {
        Self::open_with(SqliteConfig::new(path.as_ref())).await
    }

    /// Opens the database described by `config` and migrates its schema.
    ///
    /// Several processes may open the same new file at once: the one that
    /// loses a race for the schema waits and tries again.
    pub async fn open_with(config: SqliteConfig) -> Result<Self, SyncError> {
        if let Some(parent) = config.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                doing: "creating the database directory",
                path: parent.to_owned(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(&config.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(config.busy_timeout)
            .foreign_keys(true);
        let pool_options = SqlitePoolOptions::new().max_connections(config.max_connections.max(1));
        let mut attempt = 0;
        let pool = loop {
            match connect_and_migrate(pool_options.clone(), options.clone()).await {
                Ok(pool) => break pool,
                Err(e) if attempt + 1 < OPEN_ATTEMPTS && is_open_race(&e) => {
                    attempt += 1;
                    tracing::debug!(attempt, error = %e, "database busy while opening; retrying");
                    tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt.min(10))))
                        .await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        Ok(Self::from_parts(pool, Some(config.path)))
    }

    /// A new, empty database in memory (for tests and dry runs); it lives as
    /// long as the store and its clones.
    pub async fn in_memory() -> Result<Self, SyncError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .doing("configuring the in-memory database")?
            .foreign_keys(true);
        // Every connection to `:memory:` is a database of its own: keep
        // exactly one, forever.
        let pool_options = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        let pool = connect_and_migrate(pool_options, options).await?;
        Ok(Self::from_parts(pool, None))
    }

    fn from_parts(pool: SqlitePool, path: Option<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                path,
                leases: Leases::default(),
            }),
        }
    }

    /// Applies the migrations the database lacks (opening does so already).
    pub async fn migrate(&self) -> Result<(), SyncError> {
        MIGRATOR
            .run(&self.inner.pool)
            .await
            .map_err(migrate_error)?;
        Ok(())
    }

    /// The version of the newest migration applied to the database.
    pub async fn schema_version(&self) -> Result<i64, SyncError> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.inner.pool)
                .await
                .doing("reading the schema version")?;
        Ok(version.unwrap_or(0))
    }

    /// The schema version this build migrates to.
    pub fn latest_schema_version() -> i64 {
        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// The connection pool, for queries of one's own (reports, benchmarks).
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// The database file (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    async fn write_tx(&self, doing: &'static str) -> Result<Transaction<'static, Sqlite>, Error> {
        // IMMEDIATE takes the write lock at once (waiting up to the busy
        // timeout) instead of failing later when a read turns into a write.
        self.inner
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .doing(doing)
    }
}

async fn connect_and_migrate(
    pool_options: SqlitePoolOptions,
    options: SqliteConnectOptions,
) -> Result<SqlitePool, Error> {
    let pool = pool_options
        .connect_with(options)
        .await
        .doing("opening the database")?;
    if let Err(e) = MIGRATOR.run(&pool).await {
        pool.close().await;
        return Err(migrate_error(e));
    }
    Ok(pool)
}

fn migrate_error(e: MigrateError) -> Error {
    match e {
        MigrateError::VersionMissing(found) => Error::TooNew {
            found,
            latest: SqliteStore::latest_schema_version(),
        },
        e => Error::Migrate(e),
    }
}

/// Whether opening failed because another process was creating or migrating
/// the same database at that moment (trying again will see its work).
fn is_open_race(e: &Error) -> bool {
    let sql = match e {
        Error::Sqlx { source, .. } => source,
        Error::Migrate(MigrateError::Execute(source))
        | Error::Migrate(MigrateError::ExecuteMigration(source, _)) => source,
        _ => return false,
    };
    if is_busy(sql) {
        return true;
    }
    match sql {
        // A table the other process created first, or its row in
        // `_sqlx_migrations`.
        sqlx::Error::Database(db) => {
            db.message().contains("already exists") || db.is_unique_violation()
        }
        _ => false,
    }
}

/// UTC, fixed width, so that text order is time order.
fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn to_json(value: &impl serde::Serialize) -> String {
    // Serialising a serde_json::Value or plain structs of strings cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// A count for a signed integer column (saturating; counts never come near).
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A count read back from a signed integer column.
fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// `[[entity, external_id], ...]` as JSON, for `json_each`.
fn keys_json(keys: &[(&str, &str)]) -> String {
    to_json(&keys.iter().map(|(e, id)| [*e, *id]).collect::<Vec<_>>())
}

// Qualified: json_each has columns named `key` and `value` too.
const RECORD_COLUMNS: &str =
    "r.entity, r.external_id, r.unit_kind, r.day, r.key, r.payload, r.hash, r.deleted, r.last_changed";

fn stored_record(row: &SqliteRow) -> Result<StoredRecord, Error> {
    let entity: String = row.try_get("entity").doing("reading a record")?;
    let external_id: String = row.try_get("external_id").doing("reading a record")?;
    let unit_kind: String = row.try_get("unit_kind").doing("reading a record")?;
    let day: Option<NaiveDate> = row.try_get("day").doing("reading a record")?;
    let key: Option<i64> = row.try_get("key").doing("reading a record")?;
    let payload: String = row.try_get("payload").doing("reading a record")?;
    let hash: String = row.try_get("hash").doing("reading a record")?;
    let unit = Unit::from_parts(&unit_kind, day, key).ok_or_else(|| {
        Error::Corrupt(format!("record {entity}/{external_id} has no valid unit"))
    })?;
    let payload = serde_json::from_str(&payload)
        .map_err(|e| Error::Corrupt(format!("payload of record {entity}/{external_id}: {e}")))?;
    let hash = ContentHash::from_hex(&hash).ok_or_else(|| {
        Error::Corrupt(format!("hash of record {entity}/{external_id}: {hash:?}"))
    })?;
    Ok(StoredRecord {
        unit,
        payload,
        hash,
        deleted: row.try_get("deleted").doing("reading a record")?,
        last_changed: row.try_get("last_changed").doing("reading a record")?,
        entity,
        external_id,
    })
}

/// Hash, deleted flag and unit of the stored records among `keys`.
async fn load_existing(
    tx: &mut Transaction<'static, Sqlite>,
    source: &str,
    keys: &[(&str, &str)],
) -> Result<HashMap<RecordKey, StoredVersion>, Error> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    // CROSS JOIN keeps json_each as the outer loop: one primary key lookup
    // per wanted record.
    let rows = sqlx::query(
        "SELECT r.entity, r.external_id, r.hash, r.deleted, r.unit_kind, r.day, r.key \
         FROM json_each(?2) AS k CROSS JOIN records AS r \
         WHERE r.source = ?1 AND r.entity = k.value ->> 0 AND r.external_id = k.value ->> 1",
    )
    .bind(source)
    .bind(keys_json(keys))
    .fetch_all(&mut **tx)
    .await
    .doing("loading the stored versions of the batch")?;
    let mut existing = HashMap::with_capacity(rows.len());
    for row in rows {
        let read = |row: &SqliteRow| -> Result<(RecordKey, StoredVersion), sqlx::Error> {
            let unit_kind: String = row.try_get("unit_kind")?;
            let hash: String = row.try_get("hash")?;
            Ok((
                (row.try_get("entity")?, row.try_get("external_id")?),
                StoredVersion {
                    hash: ContentHash::from_hex(&hash),
                    deleted: row.try_get("deleted")?,
                    unit: Unit::from_parts(&unit_kind, row.try_get("day")?, row.try_get("key")?),
                },
            ))
        };
        let (key, value) = read(&row).doing("reading a stored version")?;
        existing.insert(key, value);
    }
    Ok(existing)
}

/// The stored payloads of `keys`.
async fn load_payloads(
    tx: &mut Transaction<'static, Sqlite>,
    source: &str,
    keys: &[(&str, &str)],
) -> Result<HashMap<RecordKey, serde_json::Value>, Error> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT r.entity, r.external_id, r.payload \
         FROM json_each(?2) AS k CROSS JOIN records AS r \
         WHERE r.source = ?1 AND r.entity = k.value ->> 0 AND r.external_id = k.value ->> 1",
    )
    .bind(source)
    .bind(keys_json(keys))
    .fetch_all(&mut **tx)
    .await
    .doing("loading the stored payloads of changed records")?;
    Ok(rows
        .into_iter()
        .map(|(entity, id, payload)| {
            let payload = serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null);
            ((entity, id), payload)
        })
        .collect())
}

/// Inserts the covered ranges of `coverage` for `stream`.
async fn insert_ranges(
    tx: &mut Transaction<'static, Sqlite>,
    stream: &StreamId,
    coverage: &Coverage,
) -> Result<(), Error> {
    let ranges: Vec<(Unit, Unit)> = coverage.unit_ranges().collect();
    for chunk in ranges.chunks(SMALL_ROW_CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO covered_ranges (source, stream, kind, first_day, last_day, first_key, last_key) ",
        );
        qb.push_values(chunk, |mut b, &(first, last)| {
            let (kind, first_day, first_key) = first.parts();
            let (_, last_day, last_key) = last.parts();
            b.push_bind(stream.source.as_str())
                .push_bind(stream.stream.as_str())
                .push_bind(kind)
                .push_bind(first_day)
                .push_bind(last_day)
                .push_bind(first_key)
                .push_bind(last_key);
        });
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("marking the batch's units covered")?;
    }
    Ok(())
}

/// The coverage held in `rows` of covered_ranges.
fn coverage_of(rows: &[SqliteRow]) -> Result<Coverage, Error> {
    let mut coverage = Coverage::default();
    for row in rows {
        let read = |row: &SqliteRow| -> Result<(String, Option<Unit>, Option<Unit>), sqlx::Error> {
            let kind: String = row.try_get("kind")?;
            let first =
                Unit::from_parts(&kind, row.try_get("first_day")?, row.try_get("first_key")?);
            let last = Unit::from_parts(&kind, row.try_get("last_day")?, row.try_get("last_key")?);
            Ok((kind, first, last))
        };
        let (kind, first, last) = read(row).doing("reading coverage")?;
        let inserted = match (first, last) {
            (Some(first), Some(last)) => coverage.insert_unit_range(first, last),
            _ => false,
        };
        if !inserted {
            return Err(Error::Corrupt(format!(
                "covered range of kind {kind:?} without valid bounds"
            )));
        }
    }
    Ok(coverage)
}

const SELECT_RANGES: &str = "SELECT kind, first_day, last_day, first_key, last_key \
     FROM covered_ranges WHERE source = ?1 AND stream = ?2";

const RUN_COLUMNS: &str = "id, source, stream, mode, target, status, started_at, finished_at, \
     created, updated, unchanged, deleted, batches_done, batches_failed, requests, \
     rate_limited, retries, errors, dry_run";

fn run_report(row: &SqliteRow) -> Result<RunReport, Error> {
    let get_i64 = |name: &str| -> Result<u64, Error> {
        let v: i64 = row.try_get(name).doing("reading a run")?;
        Ok(to_u64(v))
    };
    let id: String = row.try_get("id").doing("reading a run")?;
    let mode: String = row.try_get("mode").doing("reading a run")?;
    let status: String = row.try_get("status").doing("reading a run")?;
    let errors: String = row.try_get("errors").doing("reading a run")?;
    Ok(RunReport {
        stream: StreamId::new(
            row.try_get::<String, _>("source").doing("reading a run")?,
            row.try_get::<String, _>("stream").doing("reading a run")?,
        ),
        mode: SyncMode::parse(&mode)
            .ok_or_else(|| Error::Corrupt(format!("run {id} has mode {mode:?}")))?,
        target: row.try_get("target").doing("reading a run")?,
        started_at: row.try_get("started_at").doing("reading a run")?,
        finished_at: row.try_get("finished_at").doing("reading a run")?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| Error::Corrupt(format!("run {id} has status {status:?}")))?,
        counts: RecordCounts {
            created: get_i64("created")?,
            updated: get_i64("updated")?,
            unchanged: get_i64("unchanged")?,
            deleted: get_i64("deleted")?,
        },
        batches_done: get_i64("batches_done")?,
        batches_failed: get_i64("batches_failed")?,
        requests: get_i64("requests")?,
        rate_limited: get_i64("rate_limited")?,
        retries: get_i64("retries")?,
        errors: serde_json::from_str(&errors)
            .map_err(|e| Error::Corrupt(format!("errors of run {id}: {e}")))?,
        dry_run: row.try_get("dry_run").doing("reading a run")?,
        worker: None,
        id: RunId(id),
    })
}

impl SqliteStore {
    /// Writes the whole report of `run` (insert or replace).
    async fn upsert_run(&self, run: &RunReport) -> Result<(), Error> {
        let n = to_i64;
        sqlx::query(&format!(
            "INSERT INTO runs ({RUN_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19) \
             ON CONFLICT (id) DO UPDATE SET source = excluded.source, stream = excluded.stream, \
             mode = excluded.mode, target = excluded.target, status = excluded.status, \
             started_at = excluded.started_at, finished_at = excluded.finished_at, \
             created = excluded.created, updated = excluded.updated, unchanged = excluded.unchanged, \
             deleted = excluded.deleted, batches_done = excluded.batches_done, \
             batches_failed = excluded.batches_failed, requests = excluded.requests, \
             rate_limited = excluded.rate_limited, retries = excluded.retries, \
             errors = excluded.errors, dry_run = excluded.dry_run"
        ))
        .bind(&run.id.0)
        .bind(&run.stream.source)
        .bind(&run.stream.stream)
        .bind(run.mode.as_str())
        .bind(&run.target)
        .bind(run.status.as_str())
        .bind(ts(run.started_at))
        .bind(run.finished_at.map(ts))
        .bind(n(run.counts.created))
        .bind(n(run.counts.updated))
        .bind(n(run.counts.unchanged))
        .bind(n(run.counts.deleted))
        .bind(n(run.batches_done))
        .bind(n(run.batches_failed))
        .bind(n(run.requests))
        .bind(n(run.rate_limited))
        .bind(n(run.retries))
        .bind(to_json(&run.errors))
        .bind(run.dry_run)
        .execute(&self.inner.pool)
        .await
        .doing("recording the run")?;
        Ok(())
    }

    /// The error for a stream whose lease another run holds, naming it.
    async fn busy(&self, stream: &StreamId) -> SyncError {
        // The lease is taken a moment before the holder's run row is written
        // (and stale rows of killed runs are marked first): look a few times
        // so that the message can name the run in progress.
        let mut holder: Result<Option<(String, String)>, sqlx::Error> = Ok(None);
        for _ in 0..20 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            holder = sqlx::query_as(
                "SELECT id, started_at FROM runs \
             WHERE source = ?1 AND stream = ?2 AND status = 'in_progress' \
             ORDER BY started_at DESC, rowid DESC LIMIT 1",
            )
            .bind(&stream.source)
            .bind(&stream.stream)
            .fetch_optional(&self.inner.pool)
            .await;
            if !matches!(holder, Ok(None)) {
                break;
            }
        }
        let message = match holder {
            Ok(Some((id, started))) => format!(
                "run {id} (started {started}) is still in progress on stream {stream}; \
                 wait for it to end or stop its process"
            ),
            _ => format!("another run is starting on stream {stream}; try again when it ends"),
        };
        SyncError::Busy { message }
    }

    /// Rewrites the stream's covered ranges as merged spans without `remove`,
    /// in one write transaction.
    async fn rewrite_coverage(&self, stream: &StreamId, remove: &Coverage) -> Result<(), Error> {
        let mut tx = self.write_tx("starting to rewrite coverage").await?;
        let rows = sqlx::query(SELECT_RANGES)
            .bind(&stream.source)
            .bind(&stream.stream)
            .fetch_all(&mut *tx)
            .await
            .doing("reading coverage")?;
        let kept = coverage_of(&rows)?.subtract(remove);
        sqlx::query("DELETE FROM covered_ranges WHERE source = ?1 AND stream = ?2")
            .bind(&stream.source)
            .bind(&stream.stream)
            .execute(&mut *tx)
            .await
            .doing("rewriting coverage")?;
        insert_ranges(&mut tx, stream, &kept).await?;
        tx.commit().await.doing("committing the coverage")?;
        Ok(())
    }

    async fn commit_batch(&self, batch: BatchCommit<'_>) -> Result<RecordCounts, Error> {
        let source = batch.stream.source.as_str();
        let now = ts(Utc::now());
        let unique = commit::dedupe(batch.records);
        let keys: Vec<(&str, &str)> = unique
            .iter()
            .map(|r| (r.entity.as_str(), r.external_id.as_str()))
            .collect();

        let mut tx = self.write_tx("starting the commit").await?;
        let existing = load_existing(&mut tx, source, &keys).await?;
        let plan = commit::plan(&unique, &existing);
        let old_payloads = load_payloads(&mut tx, source, &plan.changed_keys()).await?;

        // Serialise once; the statements borrow these strings.
        let payloads: Vec<String> = plan
            .writes
            .iter()
            .map(|(r, _)| to_json(&r.payload))
            .collect();
        let hashes: Vec<String> = plan.writes.iter().map(|(r, _)| r.hash.to_hex()).collect();
        let occurred: Vec<Option<String>> = plan
            .writes
            .iter()
            .map(|(r, _)| r.occurred_at.map(ts))
            .collect();
        let rows: Vec<usize> = (0..plan.writes.len()).collect();
        for chunk in rows.chunks(RECORD_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO records (source, entity, external_id, unit_kind, day, key, occurred_at, \
                 payload, hash, deleted, first_seen, last_changed, last_run) ",
            );
            qb.push_values(chunk, |mut b, &i| {
                let record = plan.writes[i].0;
                let (unit_kind, day, key) = record.unit.parts();
                b.push_bind(source)
                    .push_bind(record.entity.as_str())
                    .push_bind(record.external_id.as_str())
                    .push_bind(unit_kind)
                    .push_bind(day)
                    .push_bind(key)
                    .push_bind(occurred[i].as_deref())
                    .push_bind(payloads[i].as_str())
                    .push_bind(hashes[i].as_str())
                    .push_bind(record.deleted)
                    .push_bind(now.as_str())
                    .push_bind(now.as_str())
                    .push_bind(batch.run.0.as_str());
            });
            qb.push(
                " ON CONFLICT (source, entity, external_id) DO UPDATE SET \
                 unit_kind = excluded.unit_kind, day = excluded.day, key = excluded.key, \
                 occurred_at = excluded.occurred_at, payload = excluded.payload, \
                 hash = excluded.hash, deleted = excluded.deleted, \
                 last_changed = excluded.last_changed, last_run = excluded.last_run",
            );
            qb.build()
                .execute(&mut *tx)
                .await
                .doing("writing the batch's records")?;
        }

        let fields: Vec<String> = plan
            .writes
            .iter()
            .map(|&(record, kind)| {
                let key = (record.entity.clone(), record.external_id.clone());
                let old = old_payloads.get(&key);
                to_json(&commit::changed_fields(kind, old, &record.payload))
            })
            .collect();
        for chunk in rows.chunks(SMALL_ROW_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO record_changes (run_id, source, entity, external_id, kind, fields, changed_at) ",
            );
            qb.push_values(chunk, |mut b, &i| {
                let (record, kind) = plan.writes[i];
                b.push_bind(batch.run.0.as_str())
                    .push_bind(source)
                    .push_bind(record.entity.as_str())
                    .push_bind(record.external_id.as_str())
                    .push_bind(kind.as_str())
                    .push_bind(fields[i].as_str())
                    .push_bind(now.as_str());
            });
            qb.build()
                .execute(&mut *tx)
                .await
                .doing("writing the change log")?;
        }

        insert_ranges(&mut tx, batch.stream, batch.covered).await?;
        tx.commit().await.doing("committing the batch")?;
        Ok(plan.counts)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, batch: BatchCommit<'_>) -> sync_core::Result<RecordCounts> {
        Ok(self.commit_batch(batch).await?)
    }

    async fn existing(
        &self,
        stream: &StreamId,
        query: &ExistingQuery,
    ) -> sync_core::Result<Vec<StoredRecord>> {
        let rows = match query {
            ExistingQuery::ByIds { entity, ids } => {
                let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                ids.sort_unstable();
                ids.dedup();
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                sqlx::query(&format!(
                    "SELECT {RECORD_COLUMNS} FROM json_each(?3) AS k CROSS JOIN records AS r \
                     WHERE r.source = ?1 AND r.entity = ?2 AND r.external_id = k.value"
                ))
                .bind(&stream.source)
                .bind(entity)
                .bind(to_json(&ids))
                .fetch_all(&self.inner.pool)
                .await
                .doing("loading records by id")?
            }
            ExistingQuery::InDays { entity, range } => sqlx::query(&format!(
                "SELECT {RECORD_COLUMNS} FROM records AS r \
                 WHERE r.source = ?1 AND r.entity = ?2 AND r.day BETWEEN ?3 AND ?4 \
                 ORDER BY r.day, r.external_id"
            ))
            .bind(&stream.source)
            .bind(entity)
            .bind(range.first)
            .bind(range.last)
            .fetch_all(&self.inner.pool)
            .await
            .doing("loading records by day")?,
        };
        Ok(rows.iter().map(stored_record).collect::<Result<_, _>>()?)
    }

    async fn day_counts(
        &self,
        stream: &StreamId,
        range: DayRange,
    ) -> sync_core::Result<BTreeMap<NaiveDate, u64>> {
        let rows: Vec<(NaiveDate, i64)> = sqlx::query_as(
            "SELECT day, COUNT(*) FROM records \
             WHERE source = ?1 AND day BETWEEN ?2 AND ?3 AND deleted = 0 GROUP BY day",
        )
        .bind(&stream.source)
        .bind(range.first)
        .bind(range.last)
        .fetch_all(&self.inner.pool)
        .await
        .doing("counting records per day")?;
        Ok(rows.into_iter().map(|(day, n)| (day, to_u64(n))).collect())
    }
}

#[async_trait]
impl CheckpointStore for SqliteStore {
    // Bridge until the shared SQL layer keeps check times: every covered
    // day counts as checked long ago.
    async fn last_checked(
        &self,
        stream: &StreamId,
        range: sync_core::DayRange,
    ) -> sync_core::Result<Vec<(sync_core::DayRange, DateTime<Utc>)>> {
        let covered = self.coverage(stream).await?;
        Ok(covered
            .days
            .spans()
            .filter_map(|s| sync_core::Span::new(s.first.max(range.first), s.last.min(range.last)))
            .map(|s| (s, DateTime::<Utc>::UNIX_EPOCH))
            .collect())
    }

    async fn coverage(&self, stream: &StreamId) -> sync_core::Result<Coverage> {
        let rows = sqlx::query(SELECT_RANGES)
            .bind(&stream.source)
            .bind(&stream.stream)
            .fetch_all(&self.inner.pool)
            .await
            .doing("reading coverage")?;
        let coverage = coverage_of(&rows)?;
        // Every commit adds its own rows; merge them now and then so that
        // reading stays cheap.
        let merged = coverage.days.spans().count() + coverage.keys.spans().count();
        if rows.len() > 2 * merged + 64 {
            self.rewrite_coverage(stream, &Coverage::default()).await?;
        }
        Ok(coverage)
    }

    async fn clear_coverage(&self, stream: &StreamId, units: &Coverage) -> sync_core::Result<()> {
        Ok(self.rewrite_coverage(stream, units).await?)
    }

    async fn begin_run(&self, run: &RunReport) -> sync_core::Result<()> {
        let taken = self
            .inner
            .leases
            .take(&run.id.0, &run.stream, self.inner.path.as_deref())?;
        if !taken {
            return Err(self.busy(&run.stream).await);
        }
        let recorded = async {
            // Holding the lease proves that no other run of the stream is
            // alive: any left in progress belong to dead processes.
            sqlx::query(
                "UPDATE runs SET status = 'failed', finished_at = COALESCE(finished_at, ?4), \
                 errors = json_insert(errors, '$[#]', ?5) \
                 WHERE source = ?1 AND stream = ?2 AND status = 'in_progress' AND id <> ?3",
            )
            .bind(&run.stream.source)
            .bind(&run.stream.stream)
            .bind(&run.id.0)
            .bind(ts(Utc::now()))
            .bind(ABANDONED)
            .execute(&self.inner.pool)
            .await
            .doing("marking abandoned runs failed")?;
            let mut report = run.clone();
            report.status = RunStatus::InProgress;
            report.finished_at = None;
            self.upsert_run(&report).await
        }
        .await;
        if let Err(e) = recorded {
            self.inner.leases.release(&run.id.0);
            return Err(e.into());
        }
        tracing::debug!(run = %run.id, stream = %stream_key(&run.stream), "lease taken");
        Ok(())
    }

    async fn finish_run(&self, run: &RunReport) -> sync_core::Result<()> {
        let recorded = self.upsert_run(run).await;
        // Release even when recording failed: the lease must not outlive
        // the run.
        self.inner.leases.release(&run.id.0);
        Ok(recorded?)
    }

    async fn runs(
        &self,
        stream: Option<&StreamId>,
        limit: usize,
    ) -> sync_core::Result<Vec<RunReport>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let by_stream = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE source = ?1 AND stream = ?2 \
             ORDER BY started_at DESC, rowid DESC LIMIT ?3"
        );
        let all =
            format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?1");
        let rows = match stream {
            Some(stream) => sqlx::query(&by_stream)
                .bind(&stream.source)
                .bind(&stream.stream)
                .bind(limit),
            None => sqlx::query(&all).bind(limit),
        }
        .fetch_all(&self.inner.pool)
        .await
        .doing("reading the run history")?;
        Ok(rows.iter().map(run_report).collect::<Result<_, _>>()?)
    }

    async fn run(&self, id: &RunId) -> sync_core::Result<Option<RunReport>> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))
            .bind(&id.0)
            .fetch_optional(&self.inner.pool)
            .await
            .doing("reading a run")?;
        Ok(row.as_ref().map(run_report).transpose()?)
    }

    async fn run_changes(&self, id: &RunId) -> sync_core::Result<Vec<RecordChange>> {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT entity, external_id, kind, fields FROM record_changes \
             WHERE run_id = ?1 ORDER BY id",
        )
        .bind(&id.0)
        .fetch_all(&self.inner.pool)
        .await
        .doing("reading the change log")?;
        let mut changes = Vec::with_capacity(rows.len());
        for (entity, external_id, kind, fields) in rows {
            let kind = ChangeKind::parse(&kind)
                .ok_or_else(|| Error::Corrupt(format!("change of kind {kind:?}")))?;
            let fields = serde_json::from_str(&fields).map_err(|e| {
                Error::Corrupt(format!("changed fields of {entity}/{external_id}: {e}"))
            })?;
            changes.push(RecordChange {
                entity,
                external_id,
                kind,
                fields,
            });
        }
        Ok(changes)
    }
}
