//! The whole simulated company synced through the engine into Postgres.
//! Needs DATABASE_URL (a server where the test may CREATE DATABASE): run with
//! `scripts/with-postgres.sh cargo test -p sync-source-yclients --test e2e_postgres`.

mod common;

use std::sync::Arc;

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
