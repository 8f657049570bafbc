//! The dashboard's answer times on a store of one million records.
//!
//! A SQLite store is filled through `Store::commit` (batches of 5,000
//! YClients-like visits, about 1,370 a day over two years, as one import
//! run), then a second run changes 10,000 of them (one field each, so its
//! change log has field changes). The dashboard's router
//! (`sync_dashboard::Dashboard::router`) is served in-process on loopback,
//! and every page and API route is fetched over HTTP: one warm-up, then the
//! median and the slowest of 5.
//!
//! ```text
//! cargo run --release -p sync-benches --bin dashboard
//! ```
//!
//! Target: every page answers in under 200 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Utc};
use serde_json::json;
use sync_core::{
    BatchCommit, CheckpointStore, Coverage, Record, RecordCounts, RunId, RunReport, RunStatus,
    Span, Store, StreamId, SyncMode, Unit,
};
use sync_store_sqlite::SqliteStore;

use crate::report::Row;
use crate::BoxError;

/// Records in the store.
pub const RECORDS: usize = 1_000_000;
/// Records a day.
const PER_DAY: usize = 1_370;
const BATCH: usize = 5_000;
/// Records the second run changes.
const CHANGED: usize = 10_000;
/// Target answer time of every page.
pub const TARGET: Duration = Duration::from_millis(200);
/// How to run this benchmark alone.
pub const COMMAND: &str = "cargo run --release -p sync-benches --bin dashboard";
const SOURCE: &str = "yclients:bench";

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default()
}

/// Visit `i` (the store-throughput benchmark's record), on day
/// `i / PER_DAY`; `edit` changes its comment.
fn visit(i: usize, edit: bool) -> Record {
    let mut r = crate::store_throughput::visit(i);
    let day = first_day() + Days::new((i / PER_DAY) as u64);
    r.unit = Unit::Day(day);
    if edit {
        r.payload["comment"] = json!("moved by phone");
        r = Record::with_volatile(
            r.entity,
            r.external_id,
            r.unit,
            r.payload,
            &["last_change_date"],
        );
    }
    r
}

fn covered(batch: &[Record]) -> Coverage {
    let mut c = Coverage::default();
    for r in batch {
        if let Unit::Day(d) = r.unit {
            c.days.insert(Span::single(d));
        }
    }
    c
}

async fn one_run(
    store: &SqliteStore,
    id: &str,
    records: impl Iterator<Item = Record>,
) -> Result<RecordCounts, BoxError> {
    let stream = StreamId::new(SOURCE, "records");
    let mut report = RunReport::start(
        RunId(id.into()),
        stream.clone(),
        SyncMode::Full,
        "bench",
        Utc::now(),
    );
    store.begin_run(&report).await?;
    let mut total = RecordCounts::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut records = records.peekable();
    while records.peek().is_some() {
        batch.clear();
        batch.extend(records.by_ref().take(BATCH));
        total += store
            .commit(BatchCommit {
                run: &report.id,
                stream: &stream,
                records: &batch,
                covered: &covered(&batch),
                progress: Default::default(),
                claim: None,
                finishes_batch: true,
            })
            .await?;
        report.batches_done += 1;
    }
    report.status = RunStatus::Completed;
    report.counts = total;
    report.finished_at = Some(Utc::now());
    store.finish_run(&report).await?;
    Ok(total)
}

/// Median and slowest of 5 fetches of `url` (after one warm-up), and the
/// size of the answer.
async fn time(
    client: &reqwest::Client,
    url: &str,
) -> Result<(Duration, Duration, usize), BoxError> {
    let mut times = Vec::new();
    let mut size = 0;
    for i in 0..6 {
        let t = Instant::now();
        let r = client.get(url).send().await?;
        let status = r.status();
        let body = r.bytes().await?;
        let took = t.elapsed();
        if !status.is_success() {
            return Err(format!("{url}: {status}").into());
        }
        size = body.len();
        if i > 0 {
            times.push(took);
        }
    }
    times.sort();
    Ok((times[times.len() / 2], times[times.len() - 1], size))
}

/// Runs the benchmark, prints its figures and returns its rows.
pub fn run() -> Result<Vec<Row>, BoxError> {
    crate::runtime()?.block_on(run_async())
}

async fn run_async() -> Result<Vec<Row>, BoxError> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(dir.path().join("dashboard.db")).await?);
    println!(
        "dashboard: filling a SQLite store with {RECORDS} records ({PER_DAY} a day, batches of {BATCH})..."
    );
    let t = Instant::now();
    let import = one_run(
        &store,
        "bench-import",
        (0..RECORDS).map(|i| visit(i, false)),
    )
    .await?;
    let fill = t.elapsed();
    println!(
        "  import: {} created in {:.1} s ({:.0} records/s)",
        import.created,
        fill.as_secs_f64(),
        RECORDS as f64 / fill.as_secs_f64()
    );
    let step = RECORDS / CHANGED;
    let edits = one_run(
        &store,
        "bench-edits",
        (0..CHANGED).map(|k| visit(k * step, true)),
    )
    .await?;
    println!("  edits: {} updated", edits.updated);
    if import.created != RECORDS as u64 || edits.updated != CHANGED as u64 {
        return Err(format!("unexpected counts: {import:?}, {edits:?}").into());
    }

    let dashboard = sync_dashboard::Dashboard::new(store.clone(), store.clone())
        .with_store_label("SQLite (benchmark)");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sync_dashboard::serve(listener, dashboard.router(), async {
        let _ = stopped.await;
    }));
    let stream = "yclients%3Abench%2Frecords";
    let mid_day = first_day() + Days::new(200);
    let pages = [
        "/".to_string(),
        "/api/streams".into(),
        format!("/streams/{stream}/calendar?year=2024"),
        format!("/api/streams/{stream}/calendar?year=2024"),
        format!("/streams/{stream}/days/{mid_day}"),
        format!("/streams/{stream}/days/{mid_day}?page=20"),
        "/runs".into(),
        "/api/runs".into(),
        "/runs/bench-import".into(),
        "/runs/bench-import?page=5000".into(),
        "/api/runs/bench-import?page=9999".into(),
        "/runs/bench-edits".into(),
        "/runs/bench-edits?page=100".into(),
        "/live".into(),
        "/api/live".into(),
    ];
    let client = reqwest::Client::new();
    println!();
    println!(
        "{:<58} {:>10} {:>10} {:>10}",
        "page", "median", "slowest", "bytes"
    );
    let mut slowest = (Duration::ZERO, String::new());
    for page in &pages {
        let (median, max, size) = time(&client, &format!("{base}{page}")).await?;
        println!(
            "{page:<58} {:>8.1}ms {:>8.1}ms {size:>10}",
            median.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
        if max > slowest.0 {
            slowest = (max, page.clone());
        }
    }
    let _ = stop.send(());
    let _ = server.await;
    store.close().await;
    Ok(vec![
        Row::info(
            "dashboard: filling SQLite with 1M records through commit (batches of 5,000)",
            format!(
                "{:.1} s ({:.0} records/s)",
                fill.as_secs_f64(),
                RECORDS as f64 / fill.as_secs_f64()
            ),
            COMMAND,
        ),
        Row::checked(
            format!(
                "dashboard: slowest page on 1M records ({} routes, slowest of 5 each)",
                pages.len()
            ),
            format!("< {} ms", TARGET.as_millis()),
            format!("{:.1} ms ({})", slowest.0.as_secs_f64() * 1e3, slowest.1),
            slowest.0 < TARGET,
            COMMAND,
        ),
    ])
}
