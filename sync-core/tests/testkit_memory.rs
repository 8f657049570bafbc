//! The conformance suite against the in-memory store.

use sync_core::{testkit, MemoryStore};

#[tokio::test]
async fn memory_store_passes_the_conformance_suite() {
    let store = MemoryStore::new();
    testkit::run_all(&store, &store).await;
}

#[tokio::test]
async fn checks_can_share_one_store_and_run_twice() {
    let store = MemoryStore::new();
    testkit::run_all(&store, &store).await;
    testkit::run_all(&store, &store).await;
}

#[tokio::test]
async fn memory_store_passes_the_budget_and_queue_checks() {
    let store = MemoryStore::new();
    testkit::budget_checks(&store).await;
    testkit::queue_checks(&store, &store, &store).await;
    testkit::hint_checks(&store).await;
    // Twice on one store: the checks leave nothing behind that trips them.
    testkit::hint_checks(&store).await;
}
