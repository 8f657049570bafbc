//! Runs the custom CSV source through the engine into the in-memory store,
//! twice: the second run finds everything covered and sends nothing.
//!
//! `cargo run -p sync-examples --example custom_source`

use std::sync::Arc;

use sync_core::{CheckpointStore, Engine, MemoryStore, RateLimiter, Source, SyncOptions, Target};
use sync_examples::{sample_csv, CsvBookingsSource};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tz = chrono_tz::Europe::Berlin;
    let source = Arc::new(CsvBookingsSource::new(sample_csv(), tz));
    let store = Arc::new(MemoryStore::new());
    let limiter = Arc::new(RateLimiter::new(source.info().limits));
    let engine = Engine::new(source.clone(), store.clone(), store.clone(), limiter);

    let target = Target::days("2024-09-01".parse()?, "2024-09-30".parse()?, tz)?;
    // The source cuts its days into weeks; the defaults do the rest.
    let options = SyncOptions::default();
    let plan = engine.plan(&target, &options).await?;
    println!(
        "plan: {} days in {} batches, {} requests",
        plan.units, plan.batches, plan.requests
    );
    for attempt in 1..=2 {
        let report = engine.run(&target, &options).await?;
        println!(
            "run {attempt}: {} — {} created, {} unchanged, {} batches, {} requests",
            report.status,
            report.counts.created,
            report.counts.unchanged,
            report.batches_done,
            report.requests
        );
    }
    let coverage = target.coverage(&store.coverage(&source.info().stream).await?);
    println!(
        "coverage: {:.1}% ({}/{} days, {} gaps)",
        coverage.percent(),
        coverage.covered(),
        coverage.total(),
        coverage.gap_count()
    );
    Ok(())
}
