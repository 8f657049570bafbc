//! Wrappers that time a source's requests and a store's commits, forwarding
//! everything else unchanged.
//!
//! Each timed call is kept as an interval, so that a benchmark can tell not
//! only the time summed over every call (calls overlap when several requests
//! are in flight, or a commit runs while the next pages are fetched) but
//! also how much of the wall time some call was under way ([`union`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sync_core::{
    Batch, BatchCommit, CheckpointStore, Coverage, Cursor, DayCounts, DayRange, ExistingQuery,
    FetchContext, KeyPage, Page, Probe, RecordChange, RecordCounts, Result, RunId, RunReport,
    Source, SourceInfo, Store, StoredRecord, StreamId,
};

/// Calls timed by several tasks: each call's start and end.
#[derive(Debug, Default)]
pub struct Stopwatch(Mutex<Vec<(Instant, Instant)>>);

impl Stopwatch {
    fn add(&self, started: Instant) {
        let ended = Instant::now();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((started, ended));
    }

    /// Every call so far, as (start, end).
    pub fn intervals(&self) -> Vec<(Instant, Instant)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The time of every call, summed (overlapping calls count each).
    pub fn total(&self) -> Duration {
        self.intervals().iter().map(|&(a, b)| b - a).sum()
    }

    /// The time at least one call was under way.
    pub fn busy(&self) -> Duration {
        union(&self.intervals())
    }
}

/// The length of the union of `intervals`: the time at least one of them
/// was under way.
pub fn union(intervals: &[(Instant, Instant)]) -> Duration {
    let mut sorted = intervals.to_vec();
    sorted.sort_unstable();
    let mut total = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for (start, end) in sorted {
        current = match current {
            Some((a, b)) if start <= b => Some((a, b.max(end))),
            Some((a, b)) => {
                total += b - a;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((a, b)) = current {
        total += b - a;
    }
    total
}

/// A source whose `fetch_page` calls are timed: each one is one request
/// (its wait for the budget included, which is nothing with an unlimited
/// budget).
#[derive(Debug)]
pub struct TimedSource {
    inner: Arc<dyn Source>,
    /// Time spent in `fetch_page`.
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

    async fn login(&self, ctx: &FetchContext) -> Result<()> {
        self.inner.login(ctx).await
    }

    async fn fetch_page(
        &self,
        batch: &Batch,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Page> {
        let started = Instant::now();
        let out = self.inner.fetch_page(batch, cursor, ctx).await;
        self.fetch.add(started);
        out
    }

    async fn probe(&self, range: DayRange, ctx: &FetchContext) -> Result<Option<Probe>> {
        self.inner.probe(range, ctx).await
    }

    async fn day_counts(
        &self,
        range: DayRange,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Option<DayCounts>> {
        self.inner.day_counts(range, cursor, ctx).await
    }

    async fn list_keys(
        &self,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Option<KeyPage>> {
        self.inner.list_keys(cursor, ctx).await
    }
}

/// A store whose `commit` calls are timed.
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
        self.commit.add(started);
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
    ) -> Result<Vec<(DayRange, DateTime<Utc>)>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_merges_overlaps_and_keeps_gaps() {
        let t = Instant::now();
        let at = |ms: u64| t + Duration::from_millis(ms);
        let calls = [
            (at(0), at(10)),
            (at(5), at(20)),
            (at(30), at(40)),
            (at(32), at(35)),
        ];
        assert_eq!(union(&calls), Duration::from_millis(30));
        assert_eq!(union(&[]), Duration::ZERO);
    }
}
