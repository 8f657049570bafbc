//! The example source works through the engine, so the examples do not rot.

use std::num::NonZeroU32;
use std::sync::Arc;

use sync_core::{
    CheckpointStore, Engine, MemoryStore, RateLimiter, RunStatus, Source, Store, SyncOptions,
    Target,
};
use sync_examples::{sample_csv, CsvBookingsSource};

#[tokio::test]
async fn csv_source_syncs_resumes_and_counts_match() {
    let source = Arc::new(CsvBookingsSource::new(sample_csv()));
    let store = Arc::new(MemoryStore::new());
    let limiter = Arc::new(RateLimiter::unlimited());
    let engine = Engine::new(source.clone(), store.clone(), store.clone(), limiter);
    let tz = chrono_tz::UTC;
    let target = Target::days(
        "2024-09-01".parse().unwrap(),
        "2024-09-30".parse().unwrap(),
        tz,
    )
    .unwrap();
    let options = SyncOptions {
        batch_size: NonZeroU32::new(7).unwrap(),
        ..SyncOptions::default()
    };

    let first = engine.run(&target, &options).await.unwrap();
    assert_eq!(first.status, RunStatus::Completed);
    assert_eq!(first.counts.created, 60);
    assert_eq!(first.batches_done, 5);

    let second = engine.run(&target, &options).await.unwrap();
    assert_eq!(second.batches_done, 0, "everything was covered already");
    assert_eq!(second.requests, 0);

    let stream = source.info().stream;
    let Target::Days { range, .. } = target else {
        unreachable!()
    };
    let stored = store.day_counts(&stream, range).await.unwrap();
    let ctx = sync_core::FetchContext::new(stream.clone(), Arc::new(RateLimiter::unlimited()));
    let at_source = source.day_counts(range, &ctx).await.unwrap().unwrap();
    assert_eq!(stored, at_source);
    assert_eq!(store.coverage(&stream).await.unwrap().days.len(), 30);
}

#[tokio::test]
async fn bad_line_is_reported_and_nothing_is_covered() {
    let csv = format!("{}oops,2024-09-29,client,notanumber\n", sample_csv());
    let source = Arc::new(CsvBookingsSource::new(csv));
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        store.clone(),
        Arc::new(RateLimiter::unlimited()),
    );
    let target = Target::days(
        "2024-09-01".parse().unwrap(),
        "2024-09-30".parse().unwrap(),
        chrono_tz::UTC,
    )
    .unwrap();
    let report = engine
        .run(
            &target,
            &SyncOptions {
                batch_size: NonZeroU32::new(7).unwrap(),
                ..SyncOptions::default()
            },
        )
        .await
        .unwrap();
    // Every batch parses the whole file, so every batch fails on the bad line.
    assert_eq!(report.status, RunStatus::Partial);
    assert!(
        report.errors.iter().any(|e| e.contains("notanumber")),
        "{:?}",
        report.errors
    );
    assert!(store
        .coverage(&source.info().stream)
        .await
        .unwrap()
        .is_empty());
}
