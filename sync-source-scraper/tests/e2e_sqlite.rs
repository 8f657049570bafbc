//! A seeded simulated year imported through the engine into SQLite.

mod common;
mod e2e;

use std::sync::Arc;

use sync_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_year_into_sqlite_equals_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("kennel.db"))
        .await
        .unwrap();
    e2e::import_a_year(Arc::new(store)).await;
}
