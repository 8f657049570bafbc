//! End-to-end import of a seeded simulated year through the engine into a
//! SQL store, shared by the SQLite and Postgres tests: exact data despite
//! faults and expiring sessions, the site's request count, a forced run
//! after changes anywhere, and per-day counts that agree with the store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sync_core::{CheckpointStore, RunStatus, Store};
use sync_sim::booking::{Faults, MutationPlan};

use crate::common::*;

/// Imports a seeded year, checks the store against the simulator, changes
/// some boardings at the site (anywhere, detail-only edits included),
/// forces a re-sync and checks again; then compares per-day counts.
pub(crate) async fn import_a_year<S>(store: Arc<S>)
where
    S: Store + CheckpointStore + 'static,
{
    let started = Instant::now();
    let mut config = sim_config(365, 30, Duration::from_secs(3));
    config.boardings_per_day = 2;
    config.daycare_per_day = 1;
    config.faults = Faults {
        error_5xx_rate: 0.02,
        truncated_rate: 0.02,
        layout_noise: true,
        ..Faults::default()
    };
    let sim = start(config).await;
    let source = source(&sim, Duration::from_millis(2));
    let engine = engine(&source, &store);
    let range = data_range(&sim);
    let t = target(&sim, range);

    let report = engine.run(&t, &full(false)).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    assert_eq!(report.batches_failed, 0);
    assert_exact(
        &stored(store.as_ref(), &source, range).await,
        &sim.boardings(),
        range,
    );
    let stats = sim.stats();
    assert!(stats.session_expiries >= 1, "{stats:?}");
    assert!(
        stats.errors_injected > 0 && stats.truncated_injected > 0,
        "{stats:?}"
    );
    assert_eq!(report.requests, stats.requests, "the site's count");
    eprintln!(
        "first import: {:.1} s, {stats:?}",
        started.elapsed().as_secs_f64()
    );

    let done = sim.mutate(&MutationPlan {
        fraction: 0.03,
        seed: 9,
        additions: 5,
        ..MutationPlan::default()
    });
    assert!(done.len() > 20, "{done:?}");
    sim.reset_stats();
    let report = engine.run(&t, &full(true)).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    assert_exact(
        &stored(store.as_ref(), &source, range).await,
        &sim.boardings(),
        range,
    );
    assert_eq!(report.requests, sim.stats().requests, "the site's count");
    let changes = store.run_changes(&report.id).await.unwrap();
    assert!(changes.len() >= done.len() / 2, "{} changes", changes.len());

    let counted = engine.day_counts(range, &full(false)).await.unwrap();
    let at_source = counted.counts.unwrap();
    let at_store = store.day_counts(source.stream(), range).await.unwrap();
    let differ: Vec<_> = range
        .iter()
        .filter(|d| at_source.get(d) != at_store.get(d))
        .collect();
    assert!(differ.is_empty(), "days differ: {differ:?}");
    eprintln!("whole test: {:.1} s", started.elapsed().as_secs_f64());
    sim.shutdown().await;
}
