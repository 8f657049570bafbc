//! The engine against a mockall source: exact call counts.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;

use mockall::{mock, Sequence};
use serde_json::json;
use sync_core::{
    async_trait, Batch, BatchSpan, CheckpointStore, Cursor, DayCounts, DayRange, Engine,
    FetchContext, KeyPage, KeyRange, MemoryStore, Page, Probe, RateLimiter, Record, RunStatus,
    Source, SourceInfo, StreamId, SyncError, SyncOptions, Target, Unit,
};

// mockall cannot mock `Option<&Cursor>` arguments of an `#[async_trait]`
// method (they need a named lifetime it cannot give), so the mock is a
// plain, synchronous API and `Mocked` is the `Source` that calls it.
mock! {
    Api {
        fn info(&self) -> SourceInfo;
        fn login(&self) -> sync_core::Result<()>;
        fn fetch_page(&self, batch: &Batch, cursor: Option<Cursor>) -> sync_core::Result<Page>;
        fn probe(&self, range: DayRange) -> sync_core::Result<Option<Probe>>;
        fn day_counts(&self, range: DayRange, cursor: Option<Cursor>) -> sync_core::Result<Option<DayCounts>>;
        fn list_keys(&self, cursor: Option<Cursor>) -> sync_core::Result<Option<KeyPage>>;
    }
}

struct Mocked(MockApi);

impl std::fmt::Debug for Mocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mocked")
    }
}

#[async_trait]
impl Source for Mocked {
    fn info(&self) -> SourceInfo {
        self.0.info()
    }
    async fn login(&self, ctx: &FetchContext) -> sync_core::Result<()> {
        ctx.request().await?;
        self.0.login()
    }
    async fn fetch_page(
        &self,
        batch: &Batch,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> sync_core::Result<Page> {
        ctx.request().await?;
        self.0.fetch_page(batch, cursor.cloned())
    }
    async fn probe(&self, range: DayRange, ctx: &FetchContext) -> sync_core::Result<Option<Probe>> {
        ctx.request().await?;
        self.0.probe(range)
    }
    async fn day_counts(
        &self,
        range: DayRange,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> sync_core::Result<Option<DayCounts>> {
        ctx.request().await?;
        self.0.day_counts(range, cursor.cloned())
    }
    async fn list_keys(
        &self,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> sync_core::Result<Option<KeyPage>> {
        ctx.request().await?;
        self.0.list_keys(cursor.cloned())
    }
}

fn info() -> SourceInfo {
    SourceInfo::keys(StreamId::new("mock", "clients"), 10, false)
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
    let mut source = MockApi::new();
    let mut seq = Sequence::new();
    source.expect_info().returning(info);
    source
        .expect_login()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| Ok(()));
    source
        .expect_fetch_page()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|batch, cursor| {
            assert!(cursor.is_none(), "one page per batch");
            Ok(Page::last(records_of(batch)))
        });
    source
        .expect_fetch_page()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Err(SyncError::invalid_input("unknown company id 0")));
    // Neither a probe, nor counts, nor a key listing: the source does not
    // say it supports them.
    source.expect_probe().never();
    source.expect_day_counts().never();
    source.expect_list_keys().never();
    let source = Arc::new(Mocked(source));
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        store.clone(),
        Arc::new(RateLimiter::unlimited()),
    );
    let target = Target::Keys(KeyRange { first: 1, last: 50 });
    // One request at a time, so that the sequence of calls is exact.
    let options = SyncOptions::builder()
        .batch_size(NonZeroU32::new(10).unwrap())
        .order(sync_core::Order::OldestFirst)
        .max_in_flight(NonZeroUsize::MIN)
        .build();

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
    Arc::try_unwrap(source).unwrap().0.checkpoint();
}

#[tokio::test(start_paused = true)]
async fn a_listed_keyed_source_is_asked_for_its_keys_once_and_only_those_are_fetched() {
    let mut source = MockApi::new();
    source
        .expect_info()
        .returning(|| SourceInfo::keys(StreamId::new("mock", "listed"), 2, true));
    source.expect_login().times(1).returning(|| Ok(()));
    let mut seq = Sequence::new();
    source
        .expect_list_keys()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|cursor| {
            assert!(cursor.is_none());
            Ok(Some(KeyPage {
                keys: vec![3, 7],
                more: vec![Cursor::new(2)],
            }))
        });
    source
        .expect_list_keys()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|cursor| {
            assert_eq!(cursor.unwrap().get::<u32>().unwrap(), 2);
            Ok(Some(KeyPage {
                keys: vec![9, 400],
                more: Vec::new(),
            }))
        });
    source.expect_fetch_page().times(2).returning(|batch, _| {
        let BatchSpan::KeyList(ids) = &batch.span else {
            panic!("a listed source gets id lists: {:?}", batch.span)
        };
        Ok(Page::last(
            ids.iter()
                .map(|&k| Record::new("client", k.to_string(), Unit::Key(k), json!({"id": k})))
                .collect(),
        ))
    });
    let source = Arc::new(Mocked(source));
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        store.clone(),
        Arc::new(RateLimiter::unlimited()),
    );
    // 400 is listed but outside the target.
    let target = Target::Keys(KeyRange {
        first: 1,
        last: 100,
    });
    let report = engine.run(&target, &SyncOptions::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(report.counts.created, 3);
    assert_eq!(report.batches_done, 2);
    drop(engine);
    Arc::try_unwrap(source).unwrap().0.checkpoint();
}
