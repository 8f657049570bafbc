//! A seeded simulated year imported through the engine into Postgres.
//!
//! Needs DATABASE_URL (a server where it may CREATE DATABASE); run with
//! `scripts/with-postgres.sh cargo test -p sync-source-scraper --test e2e_postgres`.
//! The test works in a fresh database of its own, dropped at the end.

mod common;
mod e2e;

use std::sync::Arc;

use sync_store_postgres::{PostgresStore, ScratchDatabase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_year_into_postgres_equals_the_simulator() {
    let db = ScratchDatabase::create("scraper_e2e")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = PostgresStore::connect(db.url()).await.unwrap();
    e2e::import_a_year(Arc::new(store.clone())).await;
    store.pool().close().await;
    db.drop_db().await.unwrap();
}
