//! Runs the custom CSV source through the engine into the in-memory store,
//! twice: the second run finds everything covered and fetches nothing.
//!
//! `cargo run -p sync-examples --example custom_source`

use std::num::NonZeroU32;
use std::sync::Arc;

use sync_core::{CheckpointStore, Engine, MemoryStore, RateLimiter, Source, SyncOptions, Target};
use sync_examples::{sample_csv, CsvBookingsSource};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let source = Arc::new(CsvBookingsSource::new(sample_csv()));
    let store = Arc::new(MemoryStore::new());
    let limiter = Arc::new(RateLimiter::new(source.info().limits));
    let engine = Engine::new(source.clone(), store.clone(), store.clone(), limiter);

    let target = Target::days(
        "2024-09-01".parse()?,
        "2024-09-30".parse()?,
        chrono_tz::Europe::Berlin,
    )?;
    let options = SyncOptions {
        batch_size: NonZeroU32::new(7).unwrap_or(NonZeroU32::MIN),
        ..SyncOptions::default()
    };
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
    let coverage = store
        .coverage(&source.info().stream)
        .await?
        .of_target(&target);
    println!(
        "coverage: {:.1}% ({}/{} days)",
        coverage.percent(),
        coverage.covered(),
        coverage.total()
    );
    Ok(())
}
