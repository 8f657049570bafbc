//! Upsert throughput of the SQLite and Postgres stores.
//!
//! For each store: 100,000 records (YClients-like visits, ~400 bytes of
//! JSON each) committed in batches of 500 through `Store::commit`, first
//! into an empty database, then again (idempotent re-run: everything
//! unchanged); and two row-by-row baselines on fewer records, in a
//! transaction per batch: the naive one (one `INSERT ... ON CONFLICT`
//! statement per record) and one doing the store's work a record at a time
//! (look up the stored hash, upsert, write a change log row).
//!
//! ```text
//! cargo run --release -p sync-benches --bin store_throughput                      # SQLite only
//! scripts/with-postgres.sh cargo run --release -p sync-benches --bin store_throughput
//! ```
//! Postgres is measured when DATABASE_URL is set (a server where the
//! benchmark may create and drop a database).
//!
//! Targets (Postgres first insert): at least 20,000 records a second, and at
//! least 5 times the naive row-by-row baseline.

use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, TimeZone, Utc};
use serde_json::json;
use sync_core::{
    BatchCommit, CheckpointStore, Coverage, Record, RecordCounts, RunId, RunReport, RunStatus,
    Span, Store, StreamId, SyncMode, Unit,
};
use sync_store_postgres::PostgresStore;
use sync_store_sqlite::SqliteStore;

/// Records inserted.
pub const RECORDS: usize = 100_000;
const BATCH: usize = 500;
/// Records of the row-by-row baselines.
pub const BASELINE_RECORDS: usize = 20_000;
/// The source the records belong to.
pub const SOURCE: &str = "yclients:bench";

use crate::report::Row;
use crate::BoxError;

/// How to run this benchmark alone.
pub const COMMAND: &str =
    "scripts/with-postgres.sh cargo run --release -p sync-benches --bin store_throughput";
/// Target: Postgres first insert, records a second.
pub const TARGET_RATE: f64 = 20_000.0;
/// Target: Postgres first insert over the naive row-by-row baseline.
pub const TARGET_RATIO: f64 = 5.0;

/// A YClients-like visit record, ~400 bytes of JSON.
pub fn visit(i: usize) -> Record {
    let first = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default();
    let day = first + Days::new((i / 280) as u64);
    let start = Utc
        .from_local_datetime(
            &day.and_hms_opt(9 + (i % 10) as u32, 0, 0)
                .unwrap_or_default(),
        )
        .single()
        .unwrap_or_default();
    let payload = json!({
        "id": 1_000_000 + i,
        "company_id": 4242,
        "staff_id": 100 + i % 7,
        "staff": {"id": 100 + i % 7, "name": format!("Master {}", i % 7)},
        "services": [{"id": 10 + i % 5, "title": "Haircut and styling", "cost": 1500 + i % 900, "amount": 1}],
        "client": {"id": 50_000 + i % 3000, "name": format!("Client {}", i % 3000), "phone": "+79161234567", "email": "client@example.com"},
        "date": format!("{day} {:02}:00:00", 9 + i % 10),
        "datetime": start.to_rfc3339(),
        "create_date": "2023-12-20T10:00:00+03:00",
        "seance_length": 3600,
        "attendance": 1,
        "visit_id": 2_000_000 + i,
        "deleted": false,
        "last_change_date": "2024-01-02T10:00:00+03:00",
        "comment": "",
    });
    Record::with_volatile(
        "record",
        (1_000_000 + i).to_string(),
        Unit::Day(day),
        payload,
        &["last_change_date"],
    )
    .occurred_at(start)
}

/// The days a batch of records covers.
fn covered(batch: &[Record]) -> Coverage {
    let mut c = Coverage::default();
    for r in batch {
        if let Unit::Day(d) = r.unit {
            c.days.insert(Span::single(d));
        }
    }
    c
}

struct Measured {
    first: f64,
    rerun: f64,
    baseline: f64,
    same_work: f64,
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64().max(1e-9)
}

/// Commits every batch through the store in one run; records per second.
async fn commit_all<S: Store + CheckpointStore>(
    store: &S,
    batches: &[Vec<Record>],
    run: &str,
    expect: fn(&RecordCounts, usize) -> bool,
) -> Result<f64, BoxError> {
    let stream = StreamId::new(SOURCE, "records");
    let mut report = RunReport::start(
        RunId(run.into()),
        stream.clone(),
        SyncMode::Full,
        "bench",
        Utc::now(),
    );
    store.begin_run(&report).await?;
    let started = Instant::now();
    let mut total = RecordCounts::default();
    for batch in batches {
        let c = store
            .commit(BatchCommit {
                run: &report.id,
                stream: &stream,
                records: batch,
                covered: &covered(batch),
                progress: Default::default(),
                claim: None,
                finishes_batch: true,
            })
            .await?;
        total += c;
    }
    let took = started.elapsed();
    let n: usize = batches.iter().map(Vec::len).sum();
    if !expect(&total, n) {
        return Err(format!("run {run}: unexpected counts {total:?} for {n} records").into());
    }
    report.status = RunStatus::Completed;
    report.counts = total;
    report.finished_at = Some(Utc::now());
    store.finish_run(&report).await?;
    Ok(rate(n, took))
}

fn all_created(c: &RecordCounts, n: usize) -> bool {
    c.created == n as u64 && c.total() == n as u64
}

fn all_unchanged(c: &RecordCounts, n: usize) -> bool {
    c.unchanged == n as u64 && c.total() == n as u64
}

/// The values of one record for the naive statement.
struct SqlRow {
    entity: String,
    external_id: String,
    day: NaiveDate,
    occurred_at: String,
    payload: String,
    hash: String,
}

fn row(r: &Record) -> SqlRow {
    let day = match r.unit {
        Unit::Day(d) => d,
        Unit::Key(_) => NaiveDate::default(),
    };
    SqlRow {
        entity: r.entity.clone(),
        external_id: r.external_id.clone(),
        day,
        occurred_at: r.occurred_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        payload: r.payload.to_string(),
        hash: r.hash.to_hex(),
    }
}

const SQLITE_ROW: &str = "INSERT INTO records (source, entity, external_id, unit_kind, day, key, \
     occurred_at, payload, hash, deleted, first_seen, last_changed, last_run) \
     VALUES (?1, ?2, ?3, 'day', ?4, NULL, ?5, ?6, ?7, 0, ?8, ?8, 'baseline') \
     ON CONFLICT (source, entity, external_id) DO UPDATE SET payload = excluded.payload, \
     hash = excluded.hash, last_changed = excluded.last_changed";

const POSTGRES_ROW: &str = "INSERT INTO records (source, entity, external_id, unit_kind, day, key, \
     occurred_at, payload, hash, deleted, first_seen, last_changed, last_run) \
     VALUES ($1, $2, $3, 'day', $4, NULL, $5::timestamptz, $6::jsonb, $7, false, $8, $8, 'baseline') \
     ON CONFLICT (source, entity, external_id) DO UPDATE SET payload = EXCLUDED.payload, \
     hash = EXCLUDED.hash, last_changed = EXCLUDED.last_changed";

async fn sqlite_baseline(store: &SqliteStore, batches: &[Vec<Record>]) -> Result<f64, BoxError> {
    let started = Instant::now();
    let mut n = 0;
    for batch in batches {
        let now = Utc::now().to_rfc3339();
        let mut tx = store.pool().begin().await?;
        for r in batch.iter().map(row) {
            sqlx::query(SQLITE_ROW)
                .bind("baseline:sqlite")
                .bind(&r.entity)
                .bind(&r.external_id)
                .bind(r.day)
                .bind(&r.occurred_at)
                .bind(&r.payload)
                .bind(&r.hash)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            n += 1;
        }
        tx.commit().await?;
    }
    Ok(rate(n, started.elapsed()))
}

const SQLITE_LOOKUP: &str =
    "SELECT hash, deleted FROM records WHERE source = ?1 AND entity = ?2 AND external_id = ?3";
const SQLITE_CHANGE: &str = "INSERT INTO record_changes (run_id, source, entity, external_id, \
     kind, fields, changed_at) VALUES ('baseline', ?1, ?2, ?3, 'created', '[]', ?4)";
const POSTGRES_LOOKUP: &str =
    "SELECT hash, deleted FROM records WHERE source = $1 AND entity = $2 AND external_id = $3";
const POSTGRES_CHANGE: &str = "INSERT INTO record_changes (run_id, source, entity, external_id, \
     kind, fields, changed_at) VALUES ('baseline', $1, $2, $3, 'created', '[]', $4)";

async fn sqlite_same_work(store: &SqliteStore, batches: &[Vec<Record>]) -> Result<f64, BoxError> {
    let source = "baseline:sqlite-same-work";
    let started = Instant::now();
    let mut n = 0;
    for batch in batches {
        let now = Utc::now().to_rfc3339();
        let mut tx = store.pool().begin().await?;
        for r in batch.iter().map(row) {
            let stored: Option<(String, bool)> = sqlx::query_as(SQLITE_LOOKUP)
                .bind(source)
                .bind(&r.entity)
                .bind(&r.external_id)
                .fetch_optional(&mut *tx)
                .await?;
            if stored.is_some_and(|(hash, _)| hash == r.hash) {
                continue;
            }
            sqlx::query(SQLITE_ROW)
                .bind(source)
                .bind(&r.entity)
                .bind(&r.external_id)
                .bind(r.day)
                .bind(&r.occurred_at)
                .bind(&r.payload)
                .bind(&r.hash)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(SQLITE_CHANGE)
                .bind(source)
                .bind(&r.entity)
                .bind(&r.external_id)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            n += 1;
        }
        tx.commit().await?;
    }
    Ok(rate(n, started.elapsed()))
}

async fn postgres_same_work(
    store: &PostgresStore,
    batches: &[Vec<Record>],
) -> Result<f64, BoxError> {
    let source = "baseline:postgres-same-work";
    let started = Instant::now();
    let mut n = 0;
    for batch in batches {
        let now = Utc::now();
        let mut tx = store.pool().begin().await?;
        for r in batch.iter().map(row) {
            let stored: Option<(String, bool)> = sqlx::query_as(POSTGRES_LOOKUP)
                .bind(source)
                .bind(&r.entity)
                .bind(&r.external_id)
                .fetch_optional(&mut *tx)
                .await?;
            if stored.is_some_and(|(hash, _)| hash == r.hash) {
                continue;
            }
            sqlx::query(POSTGRES_ROW)
                .bind(source)
                .bind(&r.entity)
                .bind(&r.external_id)
                .bind(r.day)
                .bind(&r.occurred_at)
                .bind(&r.payload)
                .bind(&r.hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(POSTGRES_CHANGE)
                .bind(source)
                .bind(&r.entity)
                .bind(&r.external_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            n += 1;
        }
        tx.commit().await?;
    }
    Ok(rate(n, started.elapsed()))
}

/// The naive row-by-row baseline on Postgres: one `INSERT ... ON CONFLICT`
/// per record, a transaction per batch; rows a second.
pub async fn postgres_baseline(
    store: &PostgresStore,
    batches: &[Vec<Record>],
) -> Result<f64, BoxError> {
    let started = Instant::now();
    let mut n = 0;
    for batch in batches {
        let now = Utc::now();
        let mut tx = store.pool().begin().await?;
        for r in batch.iter().map(row) {
            sqlx::query(POSTGRES_ROW)
                .bind("baseline:postgres")
                .bind(&r.entity)
                .bind(&r.external_id)
                .bind(r.day)
                .bind(&r.occurred_at)
                .bind(&r.payload)
                .bind(&r.hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            n += 1;
        }
        tx.commit().await?;
    }
    Ok(rate(n, started.elapsed()))
}

async fn measure_sqlite(
    batches: &[Vec<Record>],
    baseline: &[Vec<Record>],
) -> Result<Measured, BoxError> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("bench.db")).await?;
    let first = commit_all(&store, batches, "sqlite-first", all_created).await?;
    let rerun = commit_all(&store, batches, "sqlite-rerun", all_unchanged).await?;
    let same_work = sqlite_same_work(&store, baseline).await?;
    let baseline = sqlite_baseline(&store, baseline).await?;
    store.close().await;
    Ok(Measured {
        first,
        rerun,
        baseline,
        same_work,
    })
}

async fn measure_postgres(
    admin_url: &str,
    batches: &[Vec<Record>],
    baseline: &[Vec<Record>],
) -> Result<Measured, BoxError> {
    let db = crate::pg::FreshDb::create_on(admin_url, "sync_bench").await?;
    let measured = async {
        let store = PostgresStore::connect(db.url()).await?;
        let first = commit_all(&store, batches, "postgres-first", all_created).await?;
        let rerun = commit_all(&store, batches, "postgres-rerun", all_unchanged).await?;
        let same_work = postgres_same_work(&store, baseline).await?;
        let baseline = postgres_baseline(&store, baseline).await?;
        store.close().await;
        Ok::<_, BoxError>(Measured {
            first,
            rerun,
            baseline,
            same_work,
        })
    }
    .await;
    db.drop_db().await?;
    measured
}

fn print_row(name: &str, m: &Measured) {
    println!(
        "{name:<10} {:>12.0} {:>12.0} {:>12.0} {:>8.1}x {:>12.0} {:>8.1}x",
        m.first,
        m.rerun,
        m.baseline,
        m.first / m.baseline.max(1e-9),
        m.same_work,
        m.first / m.same_work.max(1e-9)
    );
}

/// Runs the benchmark, prints its figures and returns its rows.
pub fn run() -> Result<Vec<Row>, BoxError> {
    crate::runtime()?.block_on(run_async())
}

async fn run_async() -> Result<Vec<Row>, BoxError> {
    let records: Vec<Record> = (0..RECORDS).map(visit).collect();
    let bytes: usize = records.iter().map(|r| r.payload.to_string().len()).sum();
    let batches: Vec<Vec<Record>> = records.chunks(BATCH).map(<[Record]>::to_vec).collect();
    // The baseline writes other ids (another source), so it inserts too.
    let baseline: Vec<Vec<Record>> = batches[..BASELINE_RECORDS / BATCH].to_vec();
    println!(
        "store throughput: {RECORDS} records in batches of {BATCH} (payload {} bytes on average), \
         row-by-row baseline on {BASELINE_RECORDS} records; {} CPUs",
        bytes / RECORDS,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let sqlite = measure_sqlite(&batches, &baseline).await?;
    let postgres = match crate::pg::server_url() {
        Some(url) => Some(measure_postgres(&url, &batches, &baseline).await?),
        None => {
            println!("{}", crate::pg::SKIPPED);
            None
        }
    };

    println!();
    println!(
        "{:<10} {:>12} {:>12} {:>12} {:>9} {:>12} {:>9}",
        "store", "first rec/s", "re-run rec/s", "naive rows/s", "ratio", "same-work/s", "ratio"
    );
    print_row("sqlite", &sqlite);
    let mut rows = vec![Row::info(
        "store throughput: SQLite first insert / re-run (100k records, batches of 500)",
        format!(
            "{:.0} / {:.0} rec/s; {:.1}x naive row-by-row, {:.1}x same work row by row",
            sqlite.first,
            sqlite.rerun,
            sqlite.first / sqlite.baseline.max(1e-9),
            sqlite.first / sqlite.same_work.max(1e-9)
        ),
        COMMAND,
    )];
    if let Some(pg) = &postgres {
        print_row("postgres", pg);
        rows.push(Row::checked(
            "store throughput: Postgres first insert (100k records, batches of 500)",
            format!(">= {TARGET_RATE:.0} rec/s"),
            format!("{:.0} rec/s (re-run {:.0} rec/s)", pg.first, pg.rerun),
            pg.first >= TARGET_RATE,
            COMMAND,
        ));
        let ratio = pg.first / pg.baseline.max(1e-9);
        rows.push(Row::checked(
            "store throughput: Postgres first insert / naive row-by-row",
            format!(">= {TARGET_RATIO:.0}x"),
            format!(
                "{ratio:.1}x ({:.0} naive rows/s; {:.1}x the same work row by row)",
                pg.baseline,
                pg.first / pg.same_work.max(1e-9)
            ),
            ratio >= TARGET_RATIO,
            COMMAND,
        ));
    }
    Ok(rows)
}
