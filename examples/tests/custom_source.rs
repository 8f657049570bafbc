//! The example source works through the engine, so the examples do not rot.

use std::num::NonZeroU32;
use std::sync::Arc;

use sync_core::{
    CheckpointStore, Engine, FetchContext, MemoryStore, RateLimiter, RunStatus, Source, SourceExt,
    Store, SyncOptions, Target,
};
use sync_examples::{sample_csv, CsvBookingsSource};

fn september(tz: sync_core::Tz) -> Target {
    Target::days(
        "2024-09-01".parse().unwrap(),
        "2024-09-30".parse().unwrap(),
        tz,
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn csv_source_syncs_resumes_and_counts_match() {
    let tz = chrono_tz::UTC;
    let source = Arc::new(CsvBookingsSource::new(sample_csv(), tz));
    let store = Arc::new(MemoryStore::new());
    let limiter = Arc::new(RateLimiter::new(source.info().limits));
    let engine = Engine::new(source.clone(), store.clone(), store.clone(), limiter);
    let target = september(tz);
    let options = SyncOptions::default();

    let plan = engine.plan(&target, &options).await.unwrap();
    assert_eq!((plan.units, plan.batches, plan.requests), (30, 5, 5));

    let first = engine.run(&target, &options).await.unwrap();
    assert_eq!(first.status, RunStatus::Completed);
    assert_eq!(first.counts.created, 60);
    assert_eq!(first.batches_done, 5, "weeks, as the source cuts its days");
    assert_eq!(first.requests, plan.requests, "the plan is the run");

    let second = engine.run(&target, &options).await.unwrap();
    assert_eq!(second.batches_done, 0, "everything was covered already");
    assert_eq!(second.requests, 0);

    let stream = source.info().stream;
    let range = target.day_range().unwrap();
    let stored = store.day_counts(&stream, range).await.unwrap();
    let at_source = engine
        .day_counts(range, &options)
        .await
        .unwrap()
        .counts
        .unwrap();
    assert_eq!(stored, at_source);
    // The same without the engine: the bare source, one request, no budget.
    let ctx = FetchContext::new(stream.clone());
    let direct = source.all_day_counts(range, &ctx).await.unwrap().unwrap();
    assert_eq!(direct, at_source);
    assert_eq!(ctx.meter().requests(), 1);
    let coverage = target.coverage(&store.coverage(&stream).await.unwrap());
    assert!(coverage.is_complete());
    assert_eq!(coverage.total(), 30);
}

#[tokio::test(start_paused = true)]
async fn bad_line_is_reported_and_nothing_is_covered() {
    let tz = chrono_tz::UTC;
    let csv = format!("{}oops,2024-09-29,client,notanumber\n", sample_csv());
    let source = Arc::new(CsvBookingsSource::new(csv, tz));
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        store.clone(),
        Arc::new(RateLimiter::unlimited()),
    );
    let options = SyncOptions::builder()
        .batch_size(NonZeroU32::new(7).unwrap())
        .build();
    let report = engine.run(&september(tz), &options).await.unwrap();
    // Every batch parses the whole file, so every batch fails on the bad line.
    assert_eq!(report.status, RunStatus::Partial);
    assert_eq!((report.batches_done, report.batches_failed), (0, 5));
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

#[tokio::test(start_paused = true)]
async fn a_target_in_another_zone_is_refused() {
    let source = Arc::new(CsvBookingsSource::new(sample_csv(), chrono_tz::UTC));
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        store.clone(),
        Arc::new(RateLimiter::unlimited()),
    );
    let err = engine
        .run(
            &september(chrono_tz::Europe::Berlin),
            &SyncOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("time zone"), "{err}");
}
