//! Delta cost: after a full sync, 1% of the simulator's records change; a
//! delta run should cost at most 2% of the full run's requests and store
//! exactly the changes.
//!
//! The YClients simulator (20,000 records over two years, no limit) is
//! synced in full, then `change_random` changes 1% of its records (about
//! one in ten of them deleted), then a delta run asks for the records
//! changed since the full run started (less the 10-minute overlap), plus the
//! source's re-check window (the last 3 local days). Two shapes of full run:
//! the source's own windows, as a user gets them (sized by density to fill
//! whole pages of 200, at most 5: close to the cheapest full run, records /
//! 200 requests, which makes the ratio strictest), and an explicit batch
//! size of one day, for comparison. After the delta run the store must
//! equal the simulator exactly (every record's payload and deleted flag),
//! the run must count exactly the changed records as updated or deleted,
//! and its change log must name exactly them.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::sync::Arc;

use serde_json::Value;
use sync_core::{
    CheckpointStore, Engine, ExistingQuery, Order, RateLimiter, RunReport, RunStatus, Store,
    SyncMode, SyncOptions, Unit,
};
use sync_sim::yclients::SimLimits;
use sync_source_yclients::YclientsRecords;
use sync_store_postgres::PostgresStore;
use sync_store_sqlite::SqliteStore;

use crate::pg::{self, FreshDb};
use crate::report::Row;
use crate::sim::{self, SimSetup};
use crate::BoxError;

/// How to run this benchmark alone.
pub const COMMAND: &str =
    "scripts/with-postgres.sh cargo run --release -p sync-benches --bin delta_cost";
/// Records in the simulator.
pub const RECORDS: usize = 20_000;
/// Share of the records changed between the runs.
pub const CHANGED: f64 = 0.01;
/// The target: delta requests at most this share of the full run's.
pub const TARGET_SHARE: f64 = 0.02;

/// How the full run is cut.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// The source's own windows (by density), as a user gets them.
    Default,
    /// One day per batch.
    OneDay,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Self::Default => "default windows",
            Self::OneDay => "1-day batches",
        }
    }

    fn batch_size(self) -> Option<NonZeroU32> {
        match self {
            Self::Default => None,
            Self::OneDay => Some(NonZeroU32::MIN),
        }
    }
}

/// What one full + delta pair measured.
#[derive(Clone, Debug)]
struct Measured {
    store: &'static str,
    shape: Shape,
    full_batches: u64,
    full_requests: u64,
    delta_requests: u64,
    changed: usize,
    delta: RunReport,
    problems: Vec<String>,
}

impl Measured {
    fn share(&self) -> f64 {
        self.delta_requests as f64 / self.full_requests.max(1) as f64
    }
}

/// Differences between the store and the simulator; empty when equal.
async fn compare_with_sim<S: Store>(setup: &SimSetup, store: &S) -> Result<Vec<String>, BoxError> {
    let stored = store
        .existing(
            &YclientsRecords::stream_id(sim::COMPANY),
            &ExistingQuery::InDays {
                entity: "record".into(),
                range: setup.range()?,
            },
        )
        .await?;
    let expected: BTreeMap<String, Value> = setup
        .sim
        .records(sim::COMPANY)
        .into_iter()
        .map(|v| (v["id"].to_string(), v))
        .collect();
    let mut problems = Vec::new();
    if stored.len() != expected.len() {
        problems.push(format!(
            "{} records stored, {} at the source",
            stored.len(),
            expected.len()
        ));
    }
    for r in &stored {
        let Some(want) = expected.get(&r.external_id) else {
            problems.push(format!("record {} is not at the source", r.external_id));
            continue;
        };
        let day = want["date"]
            .as_str()
            .and_then(|d| d.get(..10))
            .and_then(|d| d.parse().ok());
        if &r.payload != want
            || r.deleted != (want["deleted"] == Value::Bool(true))
            || day.map(Unit::Day) != Some(r.unit)
        {
            problems.push(format!("record {} differs from the source", r.external_id));
        }
    }
    problems.truncate(5);
    Ok(problems)
}

async fn full_then_delta<S>(
    store: Arc<S>,
    name: &'static str,
    shape: Shape,
) -> Result<Measured, BoxError>
where
    S: Store + CheckpointStore + 'static,
{
    let setup = SimSetup::start(sim::config(RECORDS, 1_000, SimLimits::UNLIMITED), 200).await?;
    let engine = Engine::new(
        setup.sources.records.clone(),
        store.clone(),
        store.clone(),
        Arc::new(RateLimiter::unlimited()),
    );
    let options = |mode| {
        let options = SyncOptions::builder().order(Order::NewestFirst).mode(mode);
        match shape.batch_size() {
            Some(n) => options.batch_size(n),
            None => options,
        }
        .build()
    };
    let target = setup.target()?;

    let full = engine.run(&target, &options(SyncMode::Full)).await?;
    let full_requests = setup.sim.stats().requests;
    let mut problems = Vec::new();
    if full.status != RunStatus::Completed || full.counts.created != RECORDS as u64 {
        problems.push(format!(
            "full run ended {} with {:?}",
            full.status, full.counts
        ));
    }

    let changed = setup
        .sim
        .change_random(sim::COMPANY, CHANGED, 0.0, 7)
        .records;
    setup.sim.reset_stats();
    let delta = engine.run(&target, &options(SyncMode::Delta)).await?;
    let delta_requests = setup.sim.stats().requests;

    if delta.status != RunStatus::Completed || delta.mode != SyncMode::Delta {
        problems.push(format!(
            "delta run ended {} ({:?})",
            delta.status, delta.mode
        ));
    }
    let c = delta.counts;
    if c.created != 0 || c.updated + c.deleted != changed.len() as u64 {
        problems.push(format!(
            "delta counts {c:?} for {} changed records",
            changed.len()
        ));
    }
    let logged: BTreeSet<String> = store
        .run_changes(&delta.id)
        .await?
        .into_iter()
        .map(|ch| ch.external_id)
        .collect();
    let wanted: BTreeSet<String> = changed.iter().map(i64::to_string).collect();
    if logged != wanted {
        problems.push(format!(
            "change log names {} records, {} changed ({} in common)",
            logged.len(),
            wanted.len(),
            logged.intersection(&wanted).count()
        ));
    }
    problems.extend(compare_with_sim(&setup, store.as_ref()).await?);
    setup.sim.shutdown().await;
    Ok(Measured {
        store: name,
        shape,
        full_batches: full.batches_done,
        full_requests,
        delta_requests,
        changed: changed.len(),
        delta,
        problems,
    })
}

async fn sqlite(shape: Shape) -> Result<Measured, BoxError> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(dir.path().join("delta.db")).await?);
    let m = full_then_delta(store.clone(), "sqlite", shape).await;
    store.close().await;
    m
}

async fn postgres(admin_url: &str, shape: Shape) -> Result<Measured, BoxError> {
    let db = FreshDb::create_on(admin_url, "delta").await?;
    let m = async {
        let store = Arc::new(PostgresStore::connect(db.url()).await?);
        let m = full_then_delta(store.clone(), "postgres", shape).await;
        store.close().await;
        m
    }
    .await;
    db.drop_db().await?;
    m
}

async fn run_async() -> Result<Vec<Row>, BoxError> {
    println!(
        "delta cost: {RECORDS} records in the simulator (no limit), full sync, then {:.0}% \
         changed, then a delta run",
        CHANGED * 100.0
    );
    let mut runs = vec![sqlite(Shape::Default).await?, sqlite(Shape::OneDay).await?];
    match pg::server_url() {
        Some(url) => runs.push(postgres(&url, Shape::Default).await?),
        None => println!("{}", pg::SKIPPED),
    }

    println!();
    println!(
        "{:<9} {:<16} {:>7} {:>9} {:>9} {:>7} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "store",
        "full run",
        "batches",
        "full req",
        "delta req",
        "share",
        "changed",
        "updated",
        "deleted",
        "unchanged",
        "exact"
    );
    let mut rows = Vec::new();
    for m in &runs {
        let c = m.delta.counts;
        println!(
            "{:<9} {:<16} {:>7} {:>9} {:>9} {:>6.2}% {:>8} {:>8} {:>8} {:>9} {:>9}",
            m.store,
            m.shape.name(),
            m.full_batches,
            m.full_requests,
            m.delta_requests,
            m.share() * 100.0,
            m.changed,
            c.updated,
            c.deleted,
            c.unchanged,
            if m.problems.is_empty() { "yes" } else { "NO" }
        );
        for p in &m.problems {
            println!("    problem: {p}");
        }
        rows.push(Row::checked(
            format!(
                "delta cost ({}, full run in {}): delta / full requests",
                m.store,
                m.shape.name()
            ),
            format!("<= {:.0}%", TARGET_SHARE * 100.0),
            format!(
                "{:.2}% ({} / {})",
                m.share() * 100.0,
                m.delta_requests,
                m.full_requests
            ),
            m.share() <= TARGET_SHARE + 1e-12,
            COMMAND,
        ));
        rows.push(Row::checked(
            format!(
                "delta cost ({}, full run in {}): stores exactly the changes",
                m.store,
                m.shape.name()
            ),
            "store = simulator; counts = changes",
            format!(
                "{} changed: {} updated + {} deleted, {} created, {} unchanged re-read; store {} the simulator",
                m.changed,
                c.updated,
                c.deleted,
                c.created,
                c.unchanged,
                if m.problems.is_empty() { "equals" } else { "DIFFERS FROM" }
            ),
            m.problems.is_empty(),
            COMMAND,
        ));
    }
    Ok(rows)
}

/// Runs the benchmark, prints its figures and returns its rows.
pub fn run() -> Result<Vec<Row>, BoxError> {
    crate::runtime()?.block_on(run_async())
}
