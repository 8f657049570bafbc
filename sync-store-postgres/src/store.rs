//! The Postgres store: records, change log, coverage and run history.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Connection, Postgres, Row, Transaction};
use sync_core::commit::{self, RecordKey, StoredVersion};
use sync_core::{
    BatchCommit, ChangeKind, CheckpointStore, ContentHash, Coverage, DayRange, ExistingQuery,
    FieldChange, Record, RecordChange, RecordCounts, RunId, RunReport, RunStatus, Store,
    StoredRecord, StreamId, SyncError, SyncMode, Unit,
};

use crate::config::PostgresConfig;
use crate::error::{class, Class, Doing, Error};
use crate::lease::{self, stream_key, Leases};

/// The schema migrations, embedded in the binary.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The error a run left `in_progress` by a dead process gets.
const ABANDONED: &str = "abandoned: the process ended without finishing the run";

/// A [`Store`] and [`CheckpointStore`] in a Postgres database.
///
/// Cheap to clone (the pool is shared). The schema is created and migrated
/// when the store connects (sqlx's migrator holds an advisory lock, so
/// processes starting at once take turns). Runs take a lease on their stream:
/// an advisory lock held by a session of their own until they finish.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    // user@host:port/database, never the password.
    location: String,
    leases: Leases,
    // Streams whose last batch found records stored already: their next
    // batch looks the stored versions up first instead of trying to insert.
    mostly_stored: std::sync::Mutex<HashSet<String>>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.inner.location)
            .finish_non_exhaustive()
    }
}

fn location(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    )
}

impl PostgresStore {
    /// Connects to the server at `url` with default settings and migrates
    /// the schema.
    pub async fn connect(url: &str) -> Result<Self, SyncError> {
        Self::connect_with(PostgresConfig::new(url)).await
    }

    /// Connects as `config` says and migrates the schema.
    ///
    /// A first connection is made alone, within
    /// [`PostgresConfig::connect_timeout`], so that a wrong URL or a server
    /// that is down fails at once (the pool would retry a refused connection
    /// until its acquire timeout).
    pub async fn connect_with(config: PostgresConfig) -> Result<Self, SyncError> {
        let options =
            PgConnectOptions::from_str(config.url()).map_err(|e| connect_error(&config, &e))?;
        check_reachable(&config, &options).await?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(|e| connect_error(&config, &e))?;
        Self::from_pool(pool).await
    }

    /// A store on an existing pool; migrates the schema.
    pub async fn from_pool(pool: PgPool) -> Result<Self, SyncError> {
        let store = Self {
            inner: Arc::new(Inner {
                location: location(&pool.connect_options()),
                pool,
                leases: Leases::default(),
                mostly_stored: std::sync::Mutex::default(),
            }),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the migrations the database lacks (connecting does so
    /// already).
    pub async fn migrate(&self) -> Result<(), SyncError> {
        match MIGRATOR.run(&self.inner.pool).await {
            Ok(()) => Ok(()),
            Err(MigrateError::VersionMissing(found)) => Err(Error::TooNew {
                found,
                latest: Self::latest_schema_version(),
            }
            .into()),
            Err(e) => Err(Error::Migrate(e).into()),
        }
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
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Closes every pooled connection; later calls fail. Leases of runs not
    /// finished stay until their sessions end with the store.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }
}

/// Makes (and closes) one connection within the connect timeout.
async fn check_reachable(config: &PostgresConfig, options: &PgConnectOptions) -> Result<(), Error> {
    let timeout = config.connect_timeout;
    match tokio::time::timeout(timeout, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => {
            // The server answered; a failure to say goodbye does not matter.
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(connect_error(config, &e)),
        Err(_) => Err(Error::Connect {
            url: config.redacted_url(),
            detail: format!("no answer within {} ms", timeout.as_millis()),
            class: Class::Temporary,
        }),
    }
}

/// Passwords shorter than this are not searched for in driver messages:
/// replacing a one-letter password would mangle the whole message. The
/// driver does not echo passwords; this is only a second line of defence.
const MIN_SCRUBBED_PASSWORD: usize = 6;

/// The error for a failed connection: the URL redacted, a refused
/// connection said plainly, a (long enough) password scrubbed from the
/// driver's message should it be there.
fn connect_error(config: &PostgresConfig, e: &sqlx::Error) -> Error {
    let mut detail = match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".to_owned()
        }
        other => other.to_string(),
    };
    for password in url_passwords(config.url()) {
        if password.len() >= MIN_SCRUBBED_PASSWORD && detail.contains(&password) {
            detail = detail.replace(&password, "***");
        }
    }
    Error::Connect {
        url: config.redacted_url(),
        detail,
        class: class(e),
    }
}

/// The passwords a connection URL holds: after the user name, or as a
/// `password` query parameter.
fn url_passwords(url: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(url) else {
        return Vec::new();
    };
    let in_query = url
        .query_pairs()
        .filter(|(k, _)| k.eq_ignore_ascii_case("password"))
        .map(|(_, v)| v.into_owned());
    url.password()
        .map(str::to_owned)
        .into_iter()
        .chain(in_query)
        .collect()
}

/// A record's text can hold no NUL character in Postgres (neither `text`
/// nor `jsonb` stores it).
fn check_storable(record: &Record) -> Result<(), Error> {
    fn has_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(has_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    let bad = |reason| Error::BadRecord {
        entity: record.entity.replace('\0', "\\0"),
        external_id: record.external_id.replace('\0', "\\0"),
        reason,
    };
    if record.entity.contains('\0') || record.external_id.contains('\0') {
        return Err(bad("its entity or id holds a NUL character"));
    }
    if has_nul(&record.payload) {
        return Err(bad(
            "its payload holds a NUL character (\\u0000), which jsonb refuses",
        ));
    }
    Ok(())
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

const RECORD_COLUMNS: &str =
    "entity, external_id, unit_kind, day, key, payload, hash, deleted, last_changed";

fn stored_record(row: &PgRow) -> Result<StoredRecord, Error> {
    let entity: String = row.try_get("entity").doing("reading a record")?;
    let external_id: String = row.try_get("external_id").doing("reading a record")?;
    let unit_kind: String = row.try_get("unit_kind").doing("reading a record")?;
    let hash: String = row.try_get("hash").doing("reading a record")?;
    let unit = Unit::from_parts(
        &unit_kind,
        row.try_get("day").doing("reading a record")?,
        row.try_get("key").doing("reading a record")?,
    )
    .ok_or_else(|| Error::Corrupt(format!("record {entity}/{external_id} has no valid unit")))?;
    let hash = ContentHash::from_hex(&hash).ok_or_else(|| {
        Error::Corrupt(format!("hash of record {entity}/{external_id}: {hash:?}"))
    })?;
    Ok(StoredRecord {
        unit,
        payload: row.try_get("payload").doing("reading a record")?,
        hash,
        deleted: row.try_get("deleted").doing("reading a record")?,
        last_changed: row.try_get("last_changed").doing("reading a record")?,
        entity,
        external_id,
    })
}

/// The entity and external id columns of `keys`, as arrays for UNNEST.
fn key_arrays<'a>(keys: &[(&'a str, &'a str)]) -> (Vec<&'a str>, Vec<&'a str>) {
    keys.iter().copied().unzip()
}

/// Hash, deleted flag and unit of the stored records among `keys`.
async fn load_existing(
    conn: &mut PgConnection,
    source: &str,
    keys: &[(&str, &str)],
) -> Result<HashMap<RecordKey, StoredVersion>, Error> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let (entities, ids) = key_arrays(keys);
    let rows = sqlx::query(
        "SELECT r.entity, r.external_id, r.hash, r.deleted, r.unit_kind, r.day, r.key \
         FROM UNNEST($2::text[], $3::text[]) AS k(entity, external_id) \
         JOIN records AS r ON r.source = $1 AND r.entity = k.entity AND r.external_id = k.external_id",
    )
    .bind(source)
    .bind(entities)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
    .doing("loading the stored versions of the batch")?;
    let mut existing = HashMap::with_capacity(rows.len());
    for row in rows {
        let read = |row: &PgRow| -> Result<(RecordKey, StoredVersion), sqlx::Error> {
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
    conn: &mut PgConnection,
    source: &str,
    keys: &[(&str, &str)],
) -> Result<HashMap<RecordKey, Value>, Error> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let (entities, ids) = key_arrays(keys);
    let rows: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT r.entity, r.external_id, r.payload \
         FROM UNNEST($2::text[], $3::text[]) AS k(entity, external_id) \
         JOIN records AS r ON r.source = $1 AND r.entity = k.entity AND r.external_id = k.external_id",
    )
    .bind(source)
    .bind(entities)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
    .doing("loading the stored payloads of changed records")?;
    Ok(rows
        .into_iter()
        .map(|(entity, id, payload)| ((entity, id), payload))
        .collect())
}

/// Inserts the covered ranges of `coverage` for `stream`, in one statement.
async fn insert_ranges(
    tx: &mut Transaction<'static, Postgres>,
    stream: &StreamId,
    coverage: &Coverage,
) -> Result<(), Error> {
    if coverage.is_empty() {
        return Ok(());
    }
    let ranges = RangeRows::new(coverage);
    sqlx::query(
        "INSERT INTO covered_ranges (source, stream, kind, first_day, last_day, first_key, last_key) \
         SELECT $1, $2, r.kind, r.first_day, r.last_day, r.first_key, r.last_key \
         FROM UNNEST($3::text[], $4::date[], $5::date[], $6::int8[], $7::int8[]) \
              AS r(kind, first_day, last_day, first_key, last_key)",
    )
    .bind(&stream.source)
    .bind(&stream.stream)
    .bind(&ranges.kinds)
    .bind(&ranges.first_days)
    .bind(&ranges.last_days)
    .bind(&ranges.first_keys)
    .bind(&ranges.last_keys)
    .execute(&mut **tx)
    .await
    .doing("writing coverage")?;
    Ok(())
}

/// The coverage held in rows of covered_ranges.
fn coverage_of(rows: &[PgRow]) -> Result<Coverage, Error> {
    let mut coverage = Coverage::default();
    for row in rows {
        let read = |row: &PgRow| -> Result<(String, Option<Unit>, Option<Unit>), sqlx::Error> {
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

const RUN_COLUMNS: &str = "id, source, stream, mode, target, status, started_at, finished_at, \
     created, updated, unchanged, deleted, batches_done, batches_failed, requests, \
     rate_limited, retries, errors, dry_run";

fn run_report(row: &PgRow) -> Result<RunReport, Error> {
    let count = |name: &str| -> Result<u64, Error> {
        let v: i64 = row.try_get(name).doing("reading a run")?;
        Ok(to_u64(v))
    };
    let id: String = row.try_get("id").doing("reading a run")?;
    let mode: String = row.try_get("mode").doing("reading a run")?;
    let status: String = row.try_get("status").doing("reading a run")?;
    let Json(errors): Json<Vec<String>> = row.try_get("errors").doing("reading a run")?;
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
            created: count("created")?,
            updated: count("updated")?,
            unchanged: count("unchanged")?,
            deleted: count("deleted")?,
        },
        batches_done: count("batches_done")?,
        batches_failed: count("batches_failed")?,
        requests: count("requests")?,
        rate_limited: count("rate_limited")?,
        retries: count("retries")?,
        errors,
        dry_run: row.try_get("dry_run").doing("reading a run")?,
        worker: None,
        id: RunId(id),
    })
}

impl PostgresStore {
    /// Writes the whole report of `run` (insert or replace).
    async fn upsert_run(&self, run: &RunReport) -> Result<(), Error> {
        let n = to_i64;
        sqlx::query(&format!(
            "INSERT INTO runs ({RUN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
             ON CONFLICT (id) DO UPDATE SET source = EXCLUDED.source, stream = EXCLUDED.stream, \
             mode = EXCLUDED.mode, target = EXCLUDED.target, status = EXCLUDED.status, \
             started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at, \
             created = EXCLUDED.created, updated = EXCLUDED.updated, unchanged = EXCLUDED.unchanged, \
             deleted = EXCLUDED.deleted, batches_done = EXCLUDED.batches_done, \
             batches_failed = EXCLUDED.batches_failed, requests = EXCLUDED.requests, \
             rate_limited = EXCLUDED.rate_limited, retries = EXCLUDED.retries, \
             errors = EXCLUDED.errors, dry_run = EXCLUDED.dry_run"
        ))
        .bind(&run.id.0)
        .bind(&run.stream.source)
        .bind(&run.stream.stream)
        .bind(run.mode.as_str())
        .bind(&run.target)
        .bind(run.status.as_str())
        .bind(run.started_at)
        .bind(run.finished_at)
        .bind(n(run.counts.created))
        .bind(n(run.counts.updated))
        .bind(n(run.counts.unchanged))
        .bind(n(run.counts.deleted))
        .bind(n(run.batches_done))
        .bind(n(run.batches_failed))
        .bind(n(run.requests))
        .bind(n(run.rate_limited))
        .bind(n(run.retries))
        .bind(Json(&run.errors))
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
        let mut holder: Result<Option<(String, DateTime<Utc>)>, sqlx::Error> = Ok(None);
        for _ in 0..20 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            holder = sqlx::query_as(
                "SELECT id, started_at FROM runs \
             WHERE source = $1 AND stream = $2 AND status = 'in_progress' \
             ORDER BY started_at DESC, seq DESC LIMIT 1",
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
                "run {id} (started {}) is still in progress on stream {stream}; \
                 wait for it to end or stop its process",
                started.format("%Y-%m-%dT%H:%M:%SZ")
            ),
            _ => format!("another run is starting on stream {stream}; try again when it ends"),
        };
        SyncError::Busy { message }
    }

    /// Rewrites the stream's covered ranges as merged spans without `remove`,
    /// in one transaction. Rows are taken with DELETE ... RETURNING, so that
    /// ranges committed meanwhile by others are kept.
    async fn rewrite_coverage(&self, stream: &StreamId, remove: &Coverage) -> Result<(), Error> {
        let mut tx = self
            .inner
            .pool
            .begin()
            .await
            .doing("starting to rewrite coverage")?;
        let rows = sqlx::query(
            "DELETE FROM covered_ranges WHERE source = $1 AND stream = $2 \
             RETURNING kind, first_day, last_day, first_key, last_key",
        )
        .bind(&stream.source)
        .bind(&stream.stream)
        .fetch_all(&mut *tx)
        .await
        .doing("rewriting coverage")?;
        let kept = coverage_of(&rows)?.subtract(remove);
        insert_ranges(&mut tx, stream, &kept).await?;
        tx.commit().await.doing("committing the coverage")?;
        Ok(())
    }

    async fn commit_batch(&self, batch: BatchCommit<'_>) -> Result<RecordCounts, Error> {
        let unique = commit::dedupe(batch.records);
        for record in &unique {
            check_storable(record)?;
        }
        let stream = stream_key(batch.stream);
        let insert_first = !self.stored_before(&stream);
        let mut tx = self.inner.pool.begin().await.doing("starting the commit")?;
        let counts = if insert_first {
            self.insert_then_classify(&mut tx, &batch, &unique).await?
        } else {
            classify_then_write(&mut tx, &batch, &unique).await?
        };
        tx.commit().await.doing("committing the batch")?;
        // A batch mostly of stored records (a re-run, a delta) is likely
        // followed by more: for them a lookup is cheaper than an insert
        // attempt (which parses every payload).
        let stored = counts.updated + counts.unchanged + counts.deleted;
        self.set_stored_before(&stream, stored > counts.created);
        Ok(counts)
    }

    fn stored_before(&self, stream: &str) -> bool {
        self.inner
            .mostly_stored
            .lock()
            .is_ok_and(|set| set.contains(stream))
    }

    fn set_stored_before(&self, stream: &str, stored: bool) {
        if let Ok(mut set) = self.inner.mostly_stored.lock() {
            if stored {
                set.insert(stream.to_owned());
            } else {
                set.remove(stream);
            }
        }
    }

    /// Insert first: on a first insert every record is new, and one
    /// statement writes them with the covered ranges. Only the records
    /// found stored go through classification and the update path.
    async fn insert_then_classify(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        batch: &BatchCommit<'_>,
        unique: &[&Record],
    ) -> Result<RecordCounts, Error> {
        let source = batch.stream.source.as_str();
        let created = insert_new(tx, source, batch, unique).await?;
        let mut counts = RecordCounts {
            created: u64::try_from(created.len()).unwrap_or(u64::MAX),
            ..RecordCounts::default()
        };
        if created.len() < unique.len() {
            let created: HashSet<RecordKey> = created.into_iter().collect();
            let others: Vec<&Record> = unique
                .iter()
                .filter(|r| !created.contains(&(r.entity.clone(), r.external_id.clone())))
                .copied()
                .collect();
            let planned = plan_and_write(tx, batch, &others).await?;
            counts.created += planned.created;
            counts.updated = planned.updated;
            counts.unchanged = planned.unchanged;
            counts.deleted = planned.deleted;
        }
        Ok(counts)
    }
}

/// Looks the stored versions up first, writes what changed (creations
/// included), then the covered ranges.
async fn classify_then_write(
    tx: &mut Transaction<'static, Postgres>,
    batch: &BatchCommit<'_>,
    unique: &[&Record],
) -> Result<RecordCounts, Error> {
    let counts = plan_and_write(tx, batch, unique).await?;
    insert_ranges(tx, batch.stream, batch.covered).await?;
    Ok(counts)
}

/// Classifies `records` against their stored versions as every store does
/// and writes the changed ones with their change log.
async fn plan_and_write(
    tx: &mut Transaction<'static, Postgres>,
    batch: &BatchCommit<'_>,
    records: &[&Record],
) -> Result<RecordCounts, Error> {
    let source = batch.stream.source.as_str();
    let keys: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.entity.as_str(), r.external_id.as_str()))
        .collect();
    let existing = load_existing(tx, source, &keys).await?;
    let plan = commit::plan(records, &existing);
    let old_payloads = load_payloads(tx, source, &plan.changed_keys()).await?;
    write_changes(tx, source, batch.run, &plan.writes, &old_payloads).await?;
    Ok(plan.counts)
}

/// Inserts the records of `unique` not stored yet, and the batch's covered
/// ranges, in one statement; returns the keys of the records it created.
async fn insert_new(
    tx: &mut Transaction<'static, Postgres>,
    source: &str,
    batch: &BatchCommit<'_>,
    unique: &[&Record],
) -> Result<Vec<RecordKey>, Error> {
    let rows = RecordRows::new(unique.iter().copied());
    let ranges = RangeRows::new(batch.covered);
    let created: Vec<RecordKey> = sqlx::query_as(
        "WITH t AS ( \
             SELECT * FROM UNNEST($4::text[], $5::text[], $6::text[], $7::date[], $8::int8[], \
                                  $9::timestamptz[], $10::text[], $11::text[], $12::bool[]) \
                 AS t(entity, external_id, unit_kind, day, key, occurred_at, payload, hash, \
                      deleted)), \
         created AS ( \
             INSERT INTO records (source, entity, external_id, unit_kind, day, key, occurred_at, \
                                  payload, hash, deleted, first_seen, last_changed, last_run, \
                                  first_run) \
             SELECT $1, t.entity, t.external_id, t.unit_kind, t.day, t.key, t.occurred_at, \
                    t.payload::jsonb, t.hash, t.deleted, $2, $2, $3, $3 FROM t \
             ON CONFLICT (source, entity, external_id) DO NOTHING \
             RETURNING entity, external_id), \
         covered AS ( \
             INSERT INTO covered_ranges (source, stream, kind, first_day, last_day, first_key, \
                                         last_key) \
             SELECT $1, $13, r.kind, r.first_day, r.last_day, r.first_key, r.last_key \
             FROM UNNEST($14::text[], $15::date[], $16::date[], $17::int8[], $18::int8[]) \
                  AS r(kind, first_day, last_day, first_key, last_key)) \
         SELECT entity, external_id FROM created",
    )
    .bind(source)
    .bind(Utc::now())
    .bind(&batch.run.0)
    .bind(&rows.entities)
    .bind(&rows.ids)
    .bind(&rows.unit_kinds)
    .bind(&rows.days)
    .bind(&rows.unit_keys)
    .bind(&rows.occurred)
    .bind(&rows.payloads)
    .bind(&rows.hashes)
    .bind(&rows.deleted)
    .bind(&batch.stream.stream)
    .bind(&ranges.kinds)
    .bind(&ranges.first_days)
    .bind(&ranges.last_days)
    .bind(&ranges.first_keys)
    .bind(&ranges.last_keys)
    .fetch_all(&mut **tx)
    .await
    .doing("writing the batch")?;
    Ok(created)
}

/// Writes the changed records of a plan over stored ones, with their change
/// log rows (fields from `old_payloads`), in one statement.
async fn write_changes(
    tx: &mut Transaction<'static, Postgres>,
    source: &str,
    run: &RunId,
    writes: &[(&Record, ChangeKind)],
    old_payloads: &HashMap<RecordKey, Value>,
) -> Result<(), Error> {
    if writes.is_empty() {
        return Ok(());
    }
    let rows = RecordRows::new(writes.iter().map(|&(record, _)| record));
    let kinds: Vec<&str> = writes.iter().map(|(_, kind)| kind.as_str()).collect();
    let fields: Vec<String> = writes
        .iter()
        .map(|&(record, kind)| {
            let key = (record.entity.clone(), record.external_id.clone());
            to_json(&commit::changed_fields(
                kind,
                old_payloads.get(&key),
                &record.payload,
            ))
        })
        .collect();
    // Creations are recorded as by the insert: first_run set, no change
    // log row.
    sqlx::query(
        "WITH t AS MATERIALIZED ( \
             SELECT * FROM UNNEST($4::text[], $5::text[], $6::text[], $7::date[], $8::int8[], \
                                  $9::timestamptz[], $10::text[], $11::text[], $12::bool[], \
                                  $13::text[], $14::text[]) \
                 AS t(entity, external_id, unit_kind, day, key, occurred_at, payload, hash, \
                      deleted, kind, fields)), \
         written AS ( \
             INSERT INTO records (source, entity, external_id, unit_kind, day, key, occurred_at, \
                                  payload, hash, deleted, first_seen, last_changed, last_run, \
                                  first_run) \
             SELECT $1, t.entity, t.external_id, t.unit_kind, t.day, t.key, t.occurred_at, \
                    t.payload::jsonb, t.hash, t.deleted, $2, $2, $3, $3 FROM t \
             ON CONFLICT (source, entity, external_id) DO UPDATE SET \
             unit_kind = EXCLUDED.unit_kind, day = EXCLUDED.day, key = EXCLUDED.key, \
             occurred_at = EXCLUDED.occurred_at, payload = EXCLUDED.payload, \
             hash = EXCLUDED.hash, deleted = EXCLUDED.deleted, \
             last_changed = EXCLUDED.last_changed, last_run = EXCLUDED.last_run) \
         INSERT INTO record_changes (run_id, source, entity, external_id, kind, fields, \
                                     changed_at) \
         SELECT $3, $1, t.entity, t.external_id, t.kind, t.fields::jsonb, $2 FROM t \
         WHERE t.kind <> 'created'",
    )
    .bind(source)
    .bind(Utc::now())
    .bind(&run.0)
    .bind(&rows.entities)
    .bind(&rows.ids)
    .bind(&rows.unit_kinds)
    .bind(&rows.days)
    .bind(&rows.unit_keys)
    .bind(&rows.occurred)
    .bind(&rows.payloads)
    .bind(&rows.hashes)
    .bind(&rows.deleted)
    .bind(&kinds)
    .bind(&fields)
    .execute(&mut **tx)
    .await
    .doing("writing the changed records")?;
    Ok(())
}

/// The columns of records to write, as arrays for UNNEST.
struct RecordRows<'a> {
    entities: Vec<&'a str>,
    ids: Vec<&'a str>,
    unit_kinds: Vec<&'static str>,
    days: Vec<Option<NaiveDate>>,
    unit_keys: Vec<Option<i64>>,
    occurred: Vec<Option<DateTime<Utc>>>,
    payloads: Vec<String>,
    hashes: Vec<String>,
    deleted: Vec<bool>,
}

impl<'a> RecordRows<'a> {
    fn new(records: impl ExactSizeIterator<Item = &'a Record>) -> Self {
        let n = records.len();
        let mut rows = Self {
            entities: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            unit_kinds: Vec::with_capacity(n),
            days: Vec::with_capacity(n),
            unit_keys: Vec::with_capacity(n),
            occurred: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            hashes: Vec::with_capacity(n),
            deleted: Vec::with_capacity(n),
        };
        for record in records {
            let (unit_kind, day, key) = record.unit.parts();
            rows.entities.push(record.entity.as_str());
            rows.ids.push(record.external_id.as_str());
            rows.unit_kinds.push(unit_kind);
            rows.days.push(day);
            rows.unit_keys.push(key);
            rows.occurred.push(record.occurred_at);
            rows.payloads.push(to_json(&record.payload));
            rows.hashes.push(record.hash.to_hex());
            rows.deleted.push(record.deleted);
        }
        rows
    }
}

/// Covered ranges as column arrays for UNNEST.
#[derive(Default)]
struct RangeRows {
    kinds: Vec<&'static str>,
    first_days: Vec<Option<NaiveDate>>,
    last_days: Vec<Option<NaiveDate>>,
    first_keys: Vec<Option<i64>>,
    last_keys: Vec<Option<i64>>,
}

impl RangeRows {
    fn new(coverage: &Coverage) -> Self {
        let mut rows = Self::default();
        for (first, last) in coverage.unit_ranges() {
            let (kind, first_day, first_key) = first.parts();
            let (_, last_day, last_key) = last.parts();
            rows.kinds.push(kind);
            rows.first_days.push(first_day);
            rows.last_days.push(last_day);
            rows.first_keys.push(first_key);
            rows.last_keys.push(last_key);
        }
        rows
    }
}

#[async_trait]
impl Store for PostgresStore {
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
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                sqlx::query(&format!(
                    "SELECT {RECORD_COLUMNS} FROM records \
                     WHERE source = $1 AND entity = $2 AND external_id = ANY($3) \
                     ORDER BY external_id"
                ))
                .bind(&stream.source)
                .bind(entity)
                .bind(ids)
                .fetch_all(&self.inner.pool)
                .await
                .doing("loading records by id")?
            }
            ExistingQuery::InDays { entity, range } => sqlx::query(&format!(
                "SELECT {RECORD_COLUMNS} FROM records \
                 WHERE source = $1 AND entity = $2 AND day BETWEEN $3 AND $4 \
                 ORDER BY day, external_id"
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
             WHERE source = $1 AND day BETWEEN $2 AND $3 AND NOT deleted GROUP BY day",
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
impl CheckpointStore for PostgresStore {
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
        let rows = sqlx::query(
            "SELECT kind, first_day, last_day, first_key, last_key \
             FROM covered_ranges WHERE source = $1 AND stream = $2",
        )
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
        let id = run.id.0.as_str();
        if !self.inner.leases.holds(id, &run.stream) {
            let options = self.inner.pool.connect_options();
            match lease::try_lock(&options, &run.stream).await? {
                Some(conn) => self.inner.leases.keep(id, &run.stream, conn),
                None => return Err(self.busy(&run.stream).await),
            }
        }
        let recorded = async {
            // Holding the lease proves that no other run of the stream is
            // alive: any left in progress belong to dead processes.
            sqlx::query(
                "UPDATE runs SET status = 'failed', finished_at = COALESCE(finished_at, $4), \
                 errors = errors || jsonb_build_array($5::text) \
                 WHERE source = $1 AND stream = $2 AND status = 'in_progress' AND id <> $3",
            )
            .bind(&run.stream.source)
            .bind(&run.stream.stream)
            .bind(id)
            .bind(Utc::now())
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
            self.inner.leases.release(id).await;
            return Err(e.into());
        }
        tracing::debug!(run = %run.id, stream = %stream_key(&run.stream), "lease taken");
        Ok(())
    }

    async fn finish_run(&self, run: &RunReport) -> sync_core::Result<()> {
        let recorded = self.upsert_run(run).await;
        // Release even when recording failed: the lease must not outlive
        // the run.
        self.inner.leases.release(&run.id.0).await;
        Ok(recorded?)
    }

    async fn runs(
        &self,
        stream: Option<&StreamId>,
        limit: usize,
    ) -> sync_core::Result<Vec<RunReport>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let by_stream = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE source = $1 AND stream = $2 \
             ORDER BY started_at DESC, seq DESC LIMIT $3"
        );
        let all =
            format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC, seq DESC LIMIT $1");
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
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
            .bind(&id.0)
            .fetch_optional(&self.inner.pool)
            .await
            .doing("reading a run")?;
        Ok(row.as_ref().map(run_report).transpose()?)
    }

    async fn run_changes(&self, id: &RunId) -> sync_core::Result<Vec<RecordChange>> {
        // Records the run created (by key), then its change log in order.
        // Records created before schema version 3 have no first_run: their
        // creations are in the log instead, so nothing is listed twice.
        let rows: Vec<(String, String, String, Json<Vec<FieldChange>>)> = sqlx::query_as(
            "SELECT entity, external_id, kind, fields FROM ( \
                 SELECT entity, external_id, 'created' AS kind, '[]'::jsonb AS fields, \
                        0 AS part, 0::bigint AS seq \
                 FROM records WHERE first_run = $1 \
                 UNION ALL \
                 SELECT entity, external_id, kind, fields, 1, id \
                 FROM record_changes WHERE run_id = $1) AS c \
             ORDER BY part, seq, entity, external_id",
        )
        .bind(&id.0)
        .fetch_all(&self.inner.pool)
        .await
        .doing("reading the change log")?;
        let mut changes = Vec::with_capacity(rows.len());
        for (entity, external_id, kind, Json(fields)) in rows {
            let kind = ChangeKind::parse(&kind)
                .ok_or_else(|| Error::Corrupt(format!("change of kind {kind:?}")))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message(config: &PostgresConfig, e: sqlx::Error) -> String {
        SyncError::from(connect_error(config, &e)).to_string()
    }

    #[test]
    fn a_long_password_echoed_by_the_driver_is_scrubbed() {
        let config = PostgresConfig::new("postgres://sync:hunter22@db:5432/prod");
        let shown = message(
            &config,
            sqlx::Error::Configuration("bad password hunter22 given".into()),
        );
        assert!(!shown.contains("hunter22"), "{shown}");
        assert!(shown.contains("bad password *** given"), "{shown}");
        assert!(shown.contains("sync:***@db:5432/prod"), "{shown}");

        let config = PostgresConfig::new("postgres://db/prod?user=sync&password=s3cret-word");
        let shown = message(
            &config,
            sqlx::Error::Configuration("echo s3cret-word".into()),
        );
        assert!(!shown.contains("s3cret-word"), "{shown}");
    }

    #[test]
    fn a_short_password_does_not_mangle_the_message() {
        let config = PostgresConfig::new("postgres://sync:p@db:5432/prod");
        let shown = message(&config, sqlx::Error::PoolTimedOut);
        assert!(
            shown.contains("pool timed out while waiting for an open connection"),
            "{shown}"
        );
        assert!(shown.contains("sync:***@db:5432/prod"), "{shown}");
        assert!(!shown.contains("sync:p@"), "{shown}");
    }

    #[test]
    fn a_refused_connection_is_said_plainly_and_is_retryable() {
        let config = PostgresConfig::new("postgres://sync:pw@127.0.0.1:9/prod");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = SyncError::from(connect_error(&config, &sqlx::Error::Io(refused)));
        assert_eq!(
            err.to_string(),
            "temporary failure: postgres store: cannot connect to \
             postgres://sync:***@127.0.0.1:9/prod: connection refused"
        );
        assert!(matches!(err, SyncError::Retryable { .. }), "{err:?}");
    }
}
