//! The engine against a mockall source: exact call counts.

use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use mockall::{mock, Sequence};
use serde_json::json;
use sync_core::{
    Batch, BatchSpan, CheckpointStore, Engine, FetchContext, KeyRange, MemoryStore, RateLimiter,
    RateLimits, Record, RunStatus, Source, SourceInfo, StreamId, SyncError, SyncOptions, Target,
    Unit,
};

mock! {
    #[derive(Debug)]
    Src {}
    #[async_trait]
    impl Source for Src {
        fn info(&self) -> SourceInfo;
        async fn authenticate(&self, ctx: &FetchContext) -> sync_core::Result<()>;
        fn session_is_stale(&self) -> bool;
        async fn fetch(&self, batch: &Batch, ctx: &FetchContext) -> sync_core::Result<Vec<Record>>;
    }
}

fn info() -> SourceInfo {
    SourceInfo {
        stream: StreamId::new("mock", "clients"),
        limits: RateLimits::UNLIMITED,
        supports_delta: false,
        supports_day_counts: false,
        requests_per_unit: 1.0,
    }
}

fn records_of(batch: &Batch) -> Vec<Record> {
    match &batch.span {
        BatchSpan::Keys(range) => range
            .iter()
            .map(|k| Record::new("client", k.to_string(), Unit::Key(k), json!({"id": k})))
            .collect(),
        _ => Vec::new(),
    }
}

#[tokio::test(start_paused = true)]
async fn invalid_input_from_the_source_stops_the_run_without_fetching_more() {
    let mut source = MockSrc::new();
    let mut seq = Sequence::new();
    source.expect_info().returning(info);
    source.expect_session_is_stale().return_const(false);
    source
        .expect_authenticate()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    source
        .expect_fetch()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|batch, _| Ok(records_of(batch)));
    source
        .expect_fetch()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Err(SyncError::invalid_input("unknown company id 0")));
    let source = Arc::new(source);
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        store.clone(),
        Arc::new(RateLimiter::unlimited()),
    );
    let target = Target::Keys(KeyRange { first: 1, last: 50 });
    let options = SyncOptions {
        batch_size: NonZeroU32::new(10).unwrap(),
        order: sync_core::Order::OldestFirst,
        ..SyncOptions::default()
    };

    let err = engine.run(&target, &options).await.unwrap_err();
    assert!(matches!(err, SyncError::InvalidInput { .. }), "{err:?}");
    let runs = store.runs(None, 5).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert_eq!(runs[0].batches_done, 1);
    assert!(
        runs[0].errors[0].contains("unknown company id 0"),
        "{:?}",
        runs[0].errors
    );
    let covered = store.coverage(&info().stream).await.unwrap();
    assert_eq!(
        covered.keys.spans().collect::<Vec<_>>(),
        [KeyRange { first: 1, last: 10 }]
    );
    // Dropping the engine checks the call counts (no fetch after the error).
    drop(engine);
    Arc::try_unwrap(source).unwrap().checkpoint();
}
