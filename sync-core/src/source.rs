//! The `Source` trait: where records come from.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use crate::batch::Batch;
use crate::error::{Result, SyncError};
use crate::interval::DayRange;
use crate::limiter::{RateLimiter, RateLimits};
use crate::record::{Record, StoredRecord, StreamId};
use crate::store::{ExistingQuery, Store};

/// What a source is and what it can do, so callers need not guess.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceInfo {
    /// The stream the source fills; checkpoints and runs are kept under it.
    pub stream: StreamId,
    /// The limits the external system documents (before any safety margin).
    pub limits: RateLimits,
    /// Whether [`crate::BatchSpan::Changes`] batches are supported (delta sync).
    pub supports_delta: bool,
    /// Whether [`Source::day_counts`] answers.
    pub supports_day_counts: bool,
    /// How many requests one unit (a day, a key) costs, on average; used by
    /// the planner when nothing better is known.
    pub requests_per_unit: f64,
}

/// A place records come from: an API, a scraped web site, a file.
///
/// Implementations are object-safe and shared as `Arc<dyn Source>`. Each
/// request to the external system must first call
/// [`FetchContext::acquire`], so the shared limiter holds the server's limits,
/// and report 429 answers with [`FetchContext::rate_limited`].
#[async_trait]
pub trait Source: Send + Sync + Debug {
    /// What the source is and can do.
    fn info(&self) -> SourceInfo;

    /// Logs in or renews the session. Called before the first batch, before
    /// a batch when [`Source::session_is_stale`] says so, and once after a
    /// batch failed with [`SyncError::AuthExpired`].
    async fn authenticate(&self, ctx: &FetchContext) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Whether the session should be renewed before the next batch (e.g. it
    /// is older than the server lets sessions live).
    fn session_is_stale(&self) -> bool {
        false
    }

    /// Fetches every record of `batch`. Either all of them or an error: a
    /// partial result must not be returned as if it were whole.
    async fn fetch(&self, batch: &Batch, ctx: &FetchContext) -> Result<Vec<Record>>;

    /// How many records the source holds per local day in `range`, to compare
    /// with the store. `Ok(None)` when the source cannot tell.
    async fn day_counts(
        &self,
        range: DayRange,
        ctx: &FetchContext,
    ) -> Result<Option<BTreeMap<NaiveDate, u64>>> {
        let _ = (range, ctx);
        Ok(None)
    }
}

/// Counters of one run, filled by sources through [`FetchContext`].
#[derive(Debug, Default)]
pub struct RunMeter {
    requests: AtomicU64,
    rate_limited: AtomicU64,
    retries: AtomicU64,
}

impl RunMeter {
    /// Requests made so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    /// 429 answers seen so far.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }
    /// Retries made so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
    /// Counts one retry.
    pub fn add_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a source gets for each call: the shared limiter, the run's counters,
/// read access to what is stored, and the cancellation token.
#[derive(Clone, Debug)]
pub struct FetchContext {
    limiter: Arc<RateLimiter>,
    meter: Arc<RunMeter>,
    store: Option<Arc<dyn Store>>,
    stream: StreamId,
    cancel: CancellationToken,
}

impl FetchContext {
    /// A context for `stream` with `limiter`, no store and a fresh meter.
    pub fn new(stream: StreamId, limiter: Arc<RateLimiter>) -> Self {
        Self {
            limiter,
            meter: Arc::new(RunMeter::default()),
            store: None,
            stream,
            cancel: CancellationToken::new(),
        }
    }

    /// Gives the source read access to the store (for skipping unchanged
    /// detail pages and finding records that vanished).
    pub fn with_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses `meter` for the counters (the engine shares one per run).
    pub fn with_meter(mut self, meter: Arc<RunMeter>) -> Self {
        self.meter = meter;
        self
    }

    /// Uses `cancel` as the cancellation token.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Waits for the limiter before one request and counts the request.
    /// Returns [`SyncError::Cancelled`] if the run is cancelled meanwhile.
    pub async fn acquire(&self) -> Result<()> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(SyncError::Cancelled),
            _ = self.limiter.acquire() => {
                self.meter.requests.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// Reports a 429 answer: the shared limiter pauses and slows down.
    pub fn rate_limited(&self, retry_after: Option<Duration>) {
        self.meter.rate_limited.fetch_add(1, Ordering::Relaxed);
        self.limiter.on_rate_limited(retry_after);
    }

    /// The run's counters.
    pub fn meter(&self) -> &Arc<RunMeter> {
        &self.meter
    }

    /// The shared limiter.
    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    /// The stream being synced.
    pub fn stream(&self) -> &StreamId {
        &self.stream
    }

    /// The run's cancellation token.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Records already stored for this stream that match `query`; empty when
    /// the context has no store.
    pub async fn existing(&self, query: &ExistingQuery) -> Result<Vec<StoredRecord>> {
        match &self.store {
            Some(store) => store.existing(&self.stream, query).await,
            None => Ok(Vec::new()),
        }
    }
}
