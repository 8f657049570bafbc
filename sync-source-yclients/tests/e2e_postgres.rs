//! The whole simulated company synced through the engine into Postgres.
//! Needs DATABASE_URL (a server where the test may CREATE DATABASE): run with
//! `scripts/with-postgres.sh cargo test -p sync-source-yclients --test e2e_postgres`.

mod common;

use std::sync::Arc;

use common::company::{scan_every_second_delta, whole_company_then_deltas, ClientRow, VisitRow};
use common::*;
use sync_store_postgres::{PostgresStore, ScratchDatabase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_company_into_postgres_then_delta() {
    let db = ScratchDatabase::create("yclients_e2e")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = Arc::new(PostgresStore::connect(db.url()).await.unwrap());
    let s = start(sim_config(1000, 20_000), true).await;
    full_sync_matches(&s, &store).await;
    delta_stores_exactly_the_changes(&s, &store).await;
    drop(store);
    db.drop_db().await.unwrap();
}

/// The owner views, queried with plain SQL.
async fn views(url: &str) -> (Vec<ClientRow>, Vec<VisitRow>) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let t0 = std::time::Instant::now();
    let source = format!("yclients:{COMPANY}");
    let clients = sqlx::query_as(
        "SELECT client_id, visit_count, spend::float8, first_visit::text, last_visit::text, \
         bookings FROM yclients_client_visits WHERE source = $1 ORDER BY client_id",
    )
    .bind(&source)
    .fetch_all(&pool)
    .await
    .unwrap();
    let visits = sqlx::query_as(
        "SELECT record_id, client_id, client_name, staff_name, service_titles, attendance, deleted \
         FROM yclients_visit_details WHERE source = $1 ORDER BY record_id",
    )
    .bind(&source)
    .fetch_all(&pool)
    .await
    .unwrap();
    eprintln!("TIMING views {:?}", t0.elapsed());
    pool.close().await;
    (clients, visits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_company_with_catalogue_into_postgres_then_deltas() {
    let db = ScratchDatabase::create("yclients_company")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = Arc::new(PostgresStore::connect(db.url()).await.unwrap());
    let s = start_with(sim_config(1000, 20_000), true, scan_every_second_delta).await;
    let url = db.url().to_string();
    whole_company_then_deltas(&s, &store, || views(&url)).await;
    drop(store);
    db.drop_db().await.unwrap();
}
