//! Engine overhead: records per second from the YClients simulator (no
//! limit) through the real source and engine into SQLite and Postgres, and
//! where the time goes.
//!
//! 200,000 records over two years (about 274 a day), synced as a user
//! syncs them: the source's own windows (sized by density to fill whole
//! pages of 200, at most 5 pages: about 2 days, 550 records), once with one
//! request in flight, once with two and once with the engine's default (up
//! to 8; with no limit it keeps all 8 busy). Even with one request in
//! flight the engine commits a batch while it fetches the next one's pages.
//!
//! The split: a timing wrapper around the source keeps the start and end of
//! every `Source::fetch_page` (one request each), one around the store every
//! `Store::commit`. Reported: the time summed over the requests, and the
//! share of the wall time during which at least one request was under way,
//! at least one commit, both, and neither (*engine*: the engine between a
//! page and the next request or commit, plus the run's start and end; its
//! work while requests or commits are under way is not seen apart). Inside
//! a request, `transform` (JSON value to typed record, local day, content
//! hash: `sync_source_yclients::model::record_from_json`) is timed
//! separately over the same 200,000 payloads; `HTTP` is the summed request
//! time minus transform: the client's request and JSON decoding plus the
//! simulator's own work (it runs in the same process, on the same two CPUs,
//! and scans its records for each page).

use std::num::NonZeroUsize;
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
use crate::timing::{union, TimedSource, TimedStore};
use crate::BoxError;

/// How to run this benchmark alone.
pub const COMMAND: &str =
    "scripts/with-postgres.sh cargo run --release -p sync-benches --bin engine_overhead";
/// Records in the simulator.
pub const RECORDS: usize = 200_000;
/// Requests in flight measured: one, two, and the engine's default (`None`).
pub const IN_FLIGHT: [Option<usize>; 3] = [Some(1), Some(2), None];

/// What one run measured.
#[derive(Clone, Debug)]
struct Measured {
    store: &'static str,
    in_flight: Option<usize>,
    records: u64,
    requests: u64,
    batches: u64,
    wall: Duration,
    /// Request time summed over every request.
    fetch: Duration,
    /// Wall time with at least one request under way.
    fetching: Duration,
    /// Wall time with at least one commit under way.
    committing: Duration,
    /// Wall time with at least one request or commit under way.
    busy: Duration,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.records as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    fn in_flight_name(&self) -> String {
        match self.in_flight {
            Some(1) => "1 request in flight".into(),
            Some(n) => format!("{n} requests in flight"),
            None => "requests in flight as the engine chooses (default, up to 8)".into(),
        }
    }

    /// Wall time with both a request and a commit under way.
    fn both(&self) -> Duration {
        (self.fetching + self.committing).saturating_sub(self.busy)
    }
}

async fn sync_into<S>(
    setup: &SimSetup,
    store: Arc<S>,
    name: &'static str,
    in_flight: Option<usize>,
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
    let mut options = SyncOptions::builder().order(Order::NewestFirst);
    if let Some(n) = in_flight.and_then(NonZeroUsize::new) {
        options = options.max_in_flight(n);
    }
    let options = options.build();
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
    let fetches = source.fetch.intervals();
    let commits = timed.commit.intervals();
    let all: Vec<_> = fetches.iter().chain(&commits).copied().collect();
    Ok(Measured {
        store: name,
        in_flight,
        records: report.counts.created,
        requests: setup.sim.stats().requests,
        batches: report.batches_done,
        wall,
        fetch: source.fetch.total(),
        fetching: union(&fetches),
        committing: union(&commits),
        busy: union(&all),
    })
}

async fn sqlite_run(setup: &SimSetup, in_flight: Option<usize>) -> Result<Measured, BoxError> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(dir.path().join("overhead.db")).await?);
    let m = sync_into(setup, store.clone(), "sqlite", in_flight).await;
    store.close().await;
    m
}

async fn postgres_run(
    setup: &SimSetup,
    admin_url: &str,
    in_flight: Option<usize>,
) -> Result<Measured, BoxError> {
    let db = FreshDb::create_on(admin_url, "overhead").await?;
    let m = async {
        let store = Arc::new(PostgresStore::connect(db.url()).await?);
        let m = sync_into(setup, store.clone(), "postgres", in_flight).await;
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
         the source's own windows (by density), pages of 200",
        started.elapsed().as_secs_f64()
    );
    let transform = transform_per_record(&setup)?;

    let mut runs = Vec::new();
    for in_flight in IN_FLIGHT {
        runs.push(sqlite_run(&setup, in_flight).await?);
    }
    match pg::server_url() {
        Some(url) => {
            for in_flight in IN_FLIGHT {
                runs.push(postgres_run(&setup, &url, in_flight).await?);
            }
        }
        None => println!("{}", pg::SKIPPED),
    }
    setup.sim.shutdown().await;

    println!();
    println!(
        "{:<9} {:>4} {:>8} {:>7} {:>7} {:>8} {:>14} {:>14} {:>14} {:>9} {:>9} {:>9} {:>9}",
        "store",
        "in",
        "requests",
        "batches",
        "wall s",
        "rec/s",
        "requests s",
        "HTTP s",
        "transform s",
        "fetching",
        "storing",
        "both",
        "neither"
    );
    let mut rows = Vec::new();
    for m in &runs {
        let transform_total = transform
            .checked_mul(u32::try_from(m.records).unwrap_or(u32::MAX))
            .unwrap_or(Duration::MAX);
        let http = m.fetch.saturating_sub(transform_total);
        let neither = m.wall.saturating_sub(m.busy);
        let secs = |d: Duration| format!("{:.2}", d.as_secs_f64());
        let pct = |d: Duration| format!("{:.0}%", share(d, m.wall));
        println!(
            "{:<9} {:>4} {:>8} {:>7} {:>7.2} {:>8.0} {:>14} {:>14} {:>14} {:>9} {:>9} {:>9} {:>9}",
            m.store,
            m.in_flight.map_or("auto".to_string(), |n| n.to_string()),
            m.requests,
            m.batches,
            m.wall.as_secs_f64(),
            m.rate(),
            secs(m.fetch),
            secs(http),
            secs(transform_total),
            pct(m.fetching),
            pct(m.committing),
            pct(m.both()),
            pct(neither)
        );
        rows.push(Row::info(
            format!(
                "engine overhead: simulator → {} ({}k records, {})",
                m.store,
                m.records / 1000,
                m.in_flight_name()
            ),
            format!(
                "{:.0} rec/s; of the wall time: requests under way {:.0}%, commits {:.0}%, \
                 both {:.0}%, neither (engine) {:.0}%; request time {:.1} s summed \
                 (HTTP + simulator {:.1} s, transform {:.1} s)",
                m.rate(),
                share(m.fetching, m.wall),
                share(m.committing, m.wall),
                share(m.both(), m.wall),
                share(neither, m.wall),
                m.fetch.as_secs_f64(),
                http.as_secs_f64(),
                transform_total.as_secs_f64()
            ),
            COMMAND,
        ));
    }
    println!(
        "(transform measured apart: {:.1} µs a record; fetching / storing / both / neither: share \
         of the wall time with a request / a commit / both / nothing under way)",
        transform.as_secs_f64() * 1e6
    );
    Ok(rows)
}

/// Runs the benchmark, prints its figures and returns its rows.
pub fn run() -> Result<Vec<Row>, BoxError> {
    crate::runtime()?.block_on(run_async())
}
