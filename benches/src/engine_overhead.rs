//! Engine overhead: records per second from the YClients simulator (no
//! limit) through the real source and engine into SQLite and Postgres, and
//! where the time goes.
//!
//! 200,000 records over two years, synced in 7-day batches (about 1,900
//! records, 10 pages of 200 each), once with one batch in flight (fetch and
//! store take turns, so the split adds up to the wall time) and once with
//! two (fetch of one batch overlaps the commit of the other).
//!
//! The split: `fetch` is the time inside `Source::fetch` (a timing wrapper
//! around the source), `store` the time inside `Store::commit` (a timing
//! wrapper around the store), `engine` the rest of the wall time. Inside
//! fetch, `transform` (JSON value to typed record, local day, content hash:
//! `sync_source_yclients::model::record_from_json`) is timed separately
//! over the same 200,000 payloads; `HTTP` is fetch minus transform: the
//! client's request and JSON decoding plus the simulator's own work (it runs
//! in the same process, on the same two CPUs, and scans its records for each
//! page).

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sync_core::{CheckpointStore, Engine, Order, RateLimiter, RunStatus, Store, SyncOptions};
use sync_sim::yclients::SimLimits;
use sync_source_yclients::model::record_from_json;
use sync_store_postgres::PostgresStore;
use sync_store_sqlite::SqliteStore;

use crate::pg::{self, FreshDb};
use crate::report::Row;
use crate::sim::{self, SimSetup};
use crate::timing::{TimedSource, TimedStore};
use crate::BoxError;

/// How to run this benchmark alone.
pub const COMMAND: &str =
    "scripts/with-postgres.sh cargo run --release -p sync-benches --bin engine_overhead";
/// Records in the simulator.
pub const RECORDS: usize = 200_000;
/// Days per batch.
pub const BATCH_DAYS: u32 = 7;

/// What one run measured.
#[derive(Clone, Debug)]
struct Measured {
    store: &'static str,
    concurrency: usize,
    records: u64,
    requests: u64,
    wall: Duration,
    fetch: Duration,
    commit: Duration,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.records as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

async fn sync_into<S>(
    setup: &SimSetup,
    store: Arc<S>,
    name: &'static str,
    concurrency: usize,
) -> Result<Measured, BoxError>
where
    S: Store + CheckpointStore + 'static,
{
    setup.sim.reset_stats();
    let source = Arc::new(TimedSource::new(setup.sources.records.clone()));
    let timed = Arc::new(TimedStore::new(store));
    let engine = Engine::new(
        source.clone(),
        timed.clone(),
        timed.clone(),
        Arc::new(RateLimiter::unlimited()),
    );
    let options = SyncOptions {
        batch_size: NonZeroU32::new(BATCH_DAYS).unwrap_or(NonZeroU32::MIN),
        order: Order::NewestFirst,
        concurrency: NonZeroUsize::new(concurrency).unwrap_or(NonZeroUsize::MIN),
        ..SyncOptions::default()
    };
    let started = Instant::now();
    let report = engine.run(&setup.target()?, &options).await?;
    let wall = started.elapsed();
    if report.status != RunStatus::Completed || report.counts.created != RECORDS as u64 {
        return Err(format!(
            "{name}: run ended {} with {:?} ({:?})",
            report.status, report.counts, report.errors
        )
        .into());
    }
    Ok(Measured {
        store: name,
        concurrency,
        records: report.counts.created,
        requests: setup.sim.stats().requests,
        wall,
        fetch: source.fetch.total(),
        commit: timed.commit.total(),
    })
}

async fn sqlite_run(setup: &SimSetup, concurrency: usize) -> Result<Measured, BoxError> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(dir.path().join("overhead.db")).await?);
    let m = sync_into(setup, store.clone(), "sqlite", concurrency).await;
    store.close().await;
    m
}

async fn postgres_run(
    setup: &SimSetup,
    admin_url: &str,
    concurrency: usize,
) -> Result<Measured, BoxError> {
    let db = FreshDb::create_on(admin_url, "overhead").await?;
    let m = async {
        let store = Arc::new(PostgresStore::connect(db.url()).await?);
        let m = sync_into(setup, store.clone(), "postgres", concurrency).await;
        store.close().await;
        m
    }
    .await;
    db.drop_db().await?;
    m
}

/// Time of `record_from_json` per record, over the simulator's payloads.
fn transform_per_record(setup: &SimSetup) -> Result<Duration, BoxError> {
    let values = setup.sim.records(sim::COMPANY);
    let n = values.len().max(1) as u32;
    let tz = setup.sim.config().tz;
    let started = Instant::now();
    let mut hashed = 0u64;
    for v in values {
        let r = record_from_json(v, tz)?;
        hashed += u64::from(r.hash.0[0]);
    }
    let took = started.elapsed();
    std::hint::black_box(hashed);
    Ok(took / n)
}

fn share(part: Duration, whole: Duration) -> f64 {
    100.0 * part.as_secs_f64() / whole.as_secs_f64().max(1e-9)
}

async fn run_async() -> Result<Vec<Row>, BoxError> {
    let started = Instant::now();
    let setup = SimSetup::start(sim::config(RECORDS, 5_000, SimLimits::UNLIMITED), 200).await?;
    println!(
        "engine overhead: {RECORDS} records in the simulator (generated in {:.1} s), no limit, \
         {BATCH_DAYS}-day batches, pages of 200",
        started.elapsed().as_secs_f64()
    );
    let transform = transform_per_record(&setup)?;

    let mut runs = Vec::new();
    for concurrency in [1, 2] {
        runs.push(sqlite_run(&setup, concurrency).await?);
    }
    match pg::server_url() {
        Some(url) => {
            for concurrency in [1, 2] {
                runs.push(postgres_run(&setup, &url, concurrency).await?);
            }
        }
        None => println!("{}", pg::SKIPPED),
    }
    setup.sim.shutdown().await;

    println!();
    println!(
        "{:<9} {:>3} {:>8} {:>7} {:>9} {:>16} {:>16} {:>16} {:>16}",
        "store",
        "in",
        "requests",
        "wall s",
        "rec/s",
        "fetch s (%)",
        " HTTP s (%)",
        " transform s (%)",
        "store s (%)"
    );
    let mut rows = Vec::new();
    for m in &runs {
        let transform_total = transform * m.records as u32;
        let http = m.fetch.saturating_sub(transform_total);
        let engine = m.wall.saturating_sub(m.fetch + m.commit);
        let cell = |d: Duration| format!("{:.2} ({:.0}%)", d.as_secs_f64(), share(d, m.wall));
        println!(
            "{:<9} {:>3} {:>8} {:>7.2} {:>9.0} {:>16} {:>16} {:>16} {:>16}",
            m.store,
            m.concurrency,
            m.requests,
            m.wall.as_secs_f64(),
            m.rate(),
            cell(m.fetch),
            cell(http),
            cell(transform_total),
            cell(m.commit)
        );
        let split = if m.concurrency == 1 {
            format!(
                "fetch {:.0}% (HTTP + simulator {:.0}%, transform {:.0}%), store {:.0}%, engine {:.0}%",
                share(m.fetch, m.wall),
                share(http, m.wall),
                share(transform_total, m.wall),
                share(m.commit, m.wall),
                share(engine, m.wall)
            )
        } else {
            format!(
                "busy time (overlapping): fetch {:.0}%, store {:.0}% of the wall time",
                share(m.fetch, m.wall),
                share(m.commit, m.wall)
            )
        };
        rows.push(Row::info(
            format!(
                "engine overhead: simulator → {} ({}k records, {} batch{} in flight)",
                m.store,
                m.records / 1000,
                m.concurrency,
                if m.concurrency == 1 { "" } else { "es" }
            ),
            format!("{:.0} rec/s; {split}", m.rate()),
            COMMAND,
        ));
    }
    println!(
        "(transform measured apart: {:.1} µs a record; engine = wall - fetch - store, with one \
         batch in flight)",
        transform.as_secs_f64() * 1e6
    );
    Ok(rows)
}

/// Runs the benchmark, prints its figures and returns its rows.
pub fn run() -> Result<Vec<Row>, BoxError> {
    crate::runtime()?.block_on(run_async())
}
