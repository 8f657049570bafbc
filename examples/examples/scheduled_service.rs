//! A small service that keeps a store current: it runs a sync of the last
//! week every few seconds, shares one limiter between runs, and stops
//! cleanly on Ctrl-C (or after three rounds, so the example ends).
//!
//! `cargo run -p sync-examples --example scheduled_service`

use std::sync::Arc;
use std::time::Duration;

use sync_core::{CancellationToken, Engine, MemoryStore, RateLimiter, Source, SyncOptions, Target};
use sync_examples::{sample_csv, CsvBookingsSource};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tz = chrono_tz::UTC;
    let source = Arc::new(CsvBookingsSource::new(sample_csv(), tz));
    let store = Arc::new(MemoryStore::new());
    // One limiter for everything that talks to the same server.
    let limiter = Arc::new(RateLimiter::new(source.info().limits.scaled(0.8)));
    let engine = Engine::new(source, store.clone(), store, limiter);

    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_ctrl_c.cancel();
    });

    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    for round in 1..=3 {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        // The last week of the sample data; `force` re-reads it each round
        // so that changes at the source are picked up (unchanged rows are
        // counted, not rewritten).
        let target = Target::days("2024-09-24".parse()?, "2024-09-30".parse()?, tz)?;
        let options = SyncOptions::builder()
            .force(true)
            .cancel(cancel.clone())
            .build();
        let report = engine.run(&target, &options).await?;
        println!(
            "round {round}: {} ({} created, {} updated, {} unchanged)",
            report.status, report.counts.created, report.counts.updated, report.counts.unchanged
        );
    }
    Ok(())
}
