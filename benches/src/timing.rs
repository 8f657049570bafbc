//! Wrappers that time a source's fetches and a store's commits, forwarding
//! everything else unchanged.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::NaiveDate;
use sync_core::{
    Batch, BatchCommit, CheckpointStore, Coverage, DayRange, ExistingQuery, FetchContext, Record,
    RecordChange, RecordCounts, Result, RunId, RunReport, Source, SourceInfo, Store, StoredRecord,
    StreamId,
};

/// Time accumulated by several tasks, in nanoseconds.
#[derive(Debug, Default)]
pub struct Stopwatch(AtomicU64);

impl Stopwatch {
    fn add(&self, d: Duration) {
        self.0.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The total so far.
    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

/// A source whose `fetch` calls are timed (summed over every call).
#[derive(Debug)]
pub struct TimedSource {
    inner: Arc<dyn Source>,
    /// Time spent in `fetch`.
    pub fetch: Stopwatch,
}

impl TimedSource {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Source>) -> Self {
        Self {
            inner,
            fetch: Stopwatch::default(),
        }
    }
}

#[async_trait]
impl Source for TimedSource {
    fn info(&self) -> SourceInfo {
        self.inner.info()
    }

    async fn authenticate(&self, ctx: &FetchContext) -> Result<()> {
        self.inner.authenticate(ctx).await
    }

    fn session_is_stale(&self) -> bool {
        self.inner.session_is_stale()
    }

    async fn fetch(&self, batch: &Batch, ctx: &FetchContext) -> Result<Vec<Record>> {
        let started = Instant::now();
        let out = self.inner.fetch(batch, ctx).await;
        self.fetch.add(started.elapsed());
        out
    }

    async fn day_counts(
        &self,
        range: DayRange,
        ctx: &FetchContext,
    ) -> Result<Option<BTreeMap<NaiveDate, u64>>> {
        self.inner.day_counts(range, ctx).await
    }
}

/// A store whose `commit` calls are timed (summed over every call).
#[derive(Debug)]
pub struct TimedStore<S> {
    inner: Arc<S>,
    /// Time spent in `commit`.
    pub commit: Stopwatch,
}

impl<S> TimedStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: Arc<S>) -> Self {
        Self {
            inner,
            commit: Stopwatch::default(),
        }
    }
}

#[async_trait]
impl<S: Store> Store for TimedStore<S> {
    async fn commit(&self, batch: BatchCommit<'_>) -> Result<RecordCounts> {
        let started = Instant::now();
        let out = self.inner.commit(batch).await;
        self.commit.add(started.elapsed());
        out
    }

    async fn existing(
        &self,
        stream: &StreamId,
        query: &ExistingQuery,
    ) -> Result<Vec<StoredRecord>> {
        self.inner.existing(stream, query).await
    }

    async fn day_counts(
        &self,
        stream: &StreamId,
        range: DayRange,
    ) -> Result<BTreeMap<NaiveDate, u64>> {
        self.inner.day_counts(stream, range).await
    }
}

#[async_trait]
impl<S: CheckpointStore> CheckpointStore for TimedStore<S> {
    async fn coverage(&self, stream: &StreamId) -> Result<Coverage> {
        self.inner.coverage(stream).await
    }

    async fn clear_coverage(&self, stream: &StreamId, units: &Coverage) -> Result<()> {
        self.inner.clear_coverage(stream, units).await
    }

    async fn last_checked(
        &self,
        stream: &StreamId,
        range: DayRange,
    ) -> Result<Vec<(DayRange, chrono::DateTime<chrono::Utc>)>> {
        self.inner.last_checked(stream, range).await
    }

    async fn begin_run(&self, run: &RunReport) -> Result<()> {
        self.inner.begin_run(run).await
    }

    async fn finish_run(&self, run: &RunReport) -> Result<()> {
        self.inner.finish_run(run).await
    }

    async fn runs(&self, stream: Option<&StreamId>, limit: usize) -> Result<Vec<RunReport>> {
        self.inner.runs(stream, limit).await
    }

    async fn run(&self, id: &RunId) -> Result<Option<RunReport>> {
        self.inner.run(id).await
    }

    async fn run_changes(&self, id: &RunId) -> Result<Vec<RecordChange>> {
        self.inner.run_changes(id).await
    }
}
