//! The whole simulated company synced through the engine into SQLite.
//!
//! `cargo test -p sync-source-yclients --test e2e_sqlite -- --nocapture`
//! prints the request counts of a full company sync and of the delta runs
//! after it.

mod common;

use std::sync::Arc;

use common::company::{scan_every_second_delta, whole_company_then_deltas, ClientRow, VisitRow};
use common::*;
use sync_core::{Source, SyncMode};
use sync_sim::yclients::{ChangeDuringSync, Faults};
use sync_source_yclients::YclientsRecords;
use sync_store_sqlite::SqliteStore;

async fn sqlite() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("sync.db")).await.unwrap();
    (dir, Arc::new(store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_company_into_sqlite_then_delta() {
    let s = start(sim_config(1000, 20_000), false).await;
    let (_dir, store) = sqlite().await;
    full_sync_matches(&s, &store).await;

    // The source's day counts agree with the store's (last 60 days).
    let range = sync_core::DayRange::new(
        s.sim.config().end_date - chrono::Duration::days(59),
        s.sim.config().end_date,
    )
    .unwrap();
    let at_source = engine(&s, s.sources.records.clone(), &store)
        .day_counts(
            range,
            &options(sync_core::Order::NewestFirst, SyncMode::Full),
        )
        .await
        .unwrap();
    assert!(at_source.requests > 0);
    let at_source = at_source.counts.unwrap();
    let stored =
        sync_core::Store::day_counts(store.as_ref(), &YclientsRecords::stream_id(COMPANY), range)
            .await
            .unwrap();
    assert_eq!(at_source, stored);
    assert!(!stored.is_empty());

    delta_stores_exactly_the_changes(&s, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_changes_during_the_sync_are_survived() {
    let mut cfg = sim_config(300, 5000);
    cfg.faults = Faults {
        // About 40 requests: rates high enough that some faults are met.
        error_5xx_rate: 0.1,
        truncated_rate: 0.1,
        slow_rate: 0.05,
        slow_delay: std::time::Duration::from_millis(30),
        revoke_token_after_requests: Some(20),
        change_during_sync: Some(ChangeDuringSync {
            every_requests: 15,
            fraction: 0.002,
        }),
        ..Faults::default()
    };
    let s = start(cfg, true).await;
    let (_dir, store) = sqlite().await;
    let records = sync_records(&s, &store, SyncMode::Full).await;
    assert_clean(&records);
    assert!(records.retries > 0, "faults were met and retried");
    let clients = sync_clients(&s, &store, SyncMode::Full).await;
    assert_clean(&clients);
    let stats = s.sim.stats();
    assert!(
        stats.logins >= 2 && stats.responses_5xx + stats.truncated > 0,
        "{stats:?}"
    );

    // Data changed while we synced; a delta run catches up exactly.
    s.sim.set_faults(Faults::default());
    let delta = sync_records(&s, &store, SyncMode::Delta).await;
    assert_clean(&delta);
    assert!(delta.counts.updated + delta.counts.deleted > 0);
    assert_store_equals_sim(&s, store.as_ref()).await;
    assert_no_breach(&s);
    assert!(s.sources.records.info().supports_delta);
}

/// The owner views, queried with plain SQL on the database file.
async fn views(path: &std::path::Path) -> (Vec<ClientRow>, Vec<VisitRow>) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let source = format!("yclients:{COMPANY}");
    let clients = sqlx::query_as(
        "SELECT client_id, visit_count, CAST(spend AS REAL), first_visit, last_visit, bookings \
         FROM yclients_client_visits WHERE source = ?1 ORDER BY client_id",
    )
    .bind(&source)
    .fetch_all(&pool)
    .await
    .unwrap();
    let visits = sqlx::query_as(
        "SELECT record_id, client_id, client_name, staff_name, service_titles, attendance, deleted \
         FROM yclients_visit_details WHERE source = ?1 ORDER BY record_id",
    )
    .bind(&source)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    (clients, visits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_company_with_catalogue_into_sqlite_then_deltas() {
    let s = start_with(sim_config(1000, 20_000), false, scan_every_second_delta).await;
    let (dir, store) = sqlite().await;
    let path = dir.path().join("sync.db");
    whole_company_then_deltas(&s, &store, || views(&path)).await;
}
