//! What every call to a source gets: the budget to wait for, the run's
//! counters, read access to the store, cancellation, and where to say that
//! a wait is long.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::domain::record::{StoredRecord, StreamId};
use crate::error::{Result, SyncError};
use crate::limit::budget::Budget;
use crate::store::api::{ExistingQuery, Store};

/// Waits longer than this are announced (and then every 30 s).
pub(crate) const NOTICE_AFTER: Duration = Duration::from_secs(10);
/// How often a wait that goes on is announced again.
pub(crate) const NOTICE_EVERY: Duration = Duration::from_secs(30);

/// A wait that has lasted long enough to be worth saying.
#[derive(Clone, Debug, PartialEq)]
pub struct Waiting {
    /// What is being waited for, for people (no secrets).
    pub what: String,
    /// How long it has lasted so far.
    pub waited: Duration,
}

/// Receives [`Waiting`] notices. It must return quickly.
pub type WaitNotice = Arc<dyn Fn(&Waiting) + Send + Sync>;

/// Awaits `fut`; when it takes longer than [`NOTICE_AFTER`], tells `notice`
/// (and logs) what it waits for, again every [`NOTICE_EVERY`].
pub(crate) async fn watched<F: Future>(
    fut: F,
    what: impl Fn() -> String,
    notice: Option<&WaitNotice>,
) -> F::Output {
    watched_apart(fut, what, notice, || Duration::ZERO).await
}

/// As [`watched`], leaving out of the wait the time `apart` says was spent
/// waiting for something announced on its own (the budget), so that one
/// wait is not announced twice, the second time as something else.
pub(crate) async fn watched_apart<F: Future>(
    fut: F,
    what: impl Fn() -> String,
    notice: Option<&WaitNotice>,
    apart: impl Fn() -> Duration,
) -> F::Output {
    tokio::pin!(fut);
    let started = Instant::now();
    let mut threshold = NOTICE_AFTER;
    loop {
        // Never in the past while the wait is below the threshold.
        let at = started + threshold + apart();
        tokio::select! {
            biased;
            out = &mut fut => return out,
            _ = tokio::time::sleep_until(at) => {
                let waited = started.elapsed().saturating_sub(apart());
                if waited < threshold {
                    continue;
                }
                let waiting = Waiting { what: what(), waited };
                tracing::warn!(waiting_for = %waiting.what, waited_s = waiting.waited.as_secs(), "still waiting");
                if let Some(notice) = notice {
                    notice(&waiting);
                }
                threshold += NOTICE_EVERY;
            }
        }
    }
}

/// Counters of one run, as the source's server saw them.
#[derive(Debug, Default)]
pub struct RunMeter {
    requests: AtomicU64,
    rate_limited: AtomicU64,
    retries: AtomicU64,
}

impl RunMeter {
    /// Requests sent so far (logins and probes included).
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
    pub(crate) fn add_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn add_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a source gets for each call.
#[derive(Clone)]
pub struct FetchContext {
    stream: StreamId,
    meter: Arc<RunMeter>,
    budget: Option<Arc<dyn Budget>>,
    store: Option<Arc<dyn Store>>,
    cancel: CancellationToken,
    notice: Option<WaitNotice>,
    /// Time this operation spent waiting for the budget, in nanoseconds.
    waited: Arc<AtomicU64>,
    /// When the budget wait under way began, if one is.
    waiting_since: Arc<Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for FetchContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchContext")
            .field("stream", &self.stream)
            .field("meter", &self.meter)
            .field("budget", &self.budget)
            .field("store", &self.store.is_some())
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl FetchContext {
    /// A context for `stream`: no budget (requests go at once), no store, a
    /// fresh meter.
    pub fn new(stream: StreamId) -> Self {
        Self {
            stream,
            meter: Arc::new(RunMeter::default()),
            budget: None,
            store: None,
            cancel: CancellationToken::new(),
            notice: None,
            waited: Arc::default(),
            waiting_since: Arc::default(),
        }
    }

    /// The same context, timing its budget waits apart (see
    /// [`FetchContext::waited`]).
    pub fn for_operation(&self) -> Self {
        Self {
            waited: Arc::default(),
            waiting_since: Arc::default(),
            ..self.clone()
        }
    }

    /// How long requests made with this context (since
    /// [`FetchContext::for_operation`]) waited for the budget.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited.load(Ordering::Relaxed))
    }

    /// [`FetchContext::waited`] plus the budget wait under way, if any.
    pub(crate) fn waited_so_far(&self) -> Duration {
        let since = *self.waiting_since.lock().unwrap_or_else(|e| e.into_inner());
        self.waited() + since.map_or(Duration::ZERO, |t| t.elapsed())
    }

    /// Draws every request from `budget` (what [`Paced`](crate::Paced) does).
    pub fn with_budget(mut self, budget: Arc<dyn Budget>) -> Self {
        self.budget = Some(budget);
        self
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

    /// Sends notices of long waits to `notice`.
    pub fn with_notice(mut self, notice: WaitNotice) -> Self {
        self.notice = Some(notice);
        self
    }

    /// Call right before each request: waits for the budget (a wait of more
    /// than 10 s is announced) and counts the request. Returns
    /// [`SyncError::Cancelled`] if the run is cancelled first, and the
    /// budget's error if it cannot be read.
    pub async fn request(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(SyncError::Cancelled);
        }
        if let Some(budget) = &self.budget {
            let _timing = BudgetWait::begin(self);
            let wait = watched(
                budget.acquire(),
                || format!("the request budget of {}", budget.name()),
                self.notice.as_ref(),
            );
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Err(SyncError::Cancelled),
                granted = wait => granted?,
            }
        }
        self.meter.requests.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The run's counters.
    pub fn meter(&self) -> &Arc<RunMeter> {
        &self.meter
    }

    /// The budget requests are drawn from, if any.
    pub fn budget(&self) -> Option<&Arc<dyn Budget>> {
        self.budget.as_ref()
    }

    /// The stream being synced.
    pub fn stream(&self) -> &StreamId {
        &self.stream
    }

    /// The run's cancellation token.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    pub(crate) fn notice(&self) -> Option<&WaitNotice> {
        self.notice.as_ref()
    }

    /// The same context, announcing no wait (the caller announces them).
    pub(crate) fn without_notice(&self) -> Self {
        Self {
            notice: None,
            ..self.clone()
        }
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

/// Times one budget wait of a context, however it ends.
struct BudgetWait<'a> {
    ctx: &'a FetchContext,
    started: Instant,
}

impl<'a> BudgetWait<'a> {
    fn begin(ctx: &'a FetchContext) -> Self {
        let started = Instant::now();
        ctx.waiting_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(started);
        Self { ctx, started }
    }
}

impl Drop for BudgetWait<'_> {
    fn drop(&mut self) {
        let waited = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.ctx.waited.fetch_add(waited, Ordering::Relaxed);
        let mut since = self
            .ctx
            .waiting_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *since == Some(self.started) {
            *since = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::limiter::RateLimiter;
    use crate::limit::limits::RateLimits;
    use std::sync::Mutex;

    #[tokio::test(start_paused = true)]
    async fn requests_are_counted_and_paced() {
        let budget = Arc::new(RateLimiter::new(RateLimits::new(Some(2), None)));
        let ctx = FetchContext::new(StreamId::new("t", "s")).with_budget(budget);
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            ctx.request().await.unwrap();
        }
        assert_eq!(ctx.meter().requests(), 5);
        // 2 at once, 2 after 1.02 s, the fifth after 2.04 s.
        assert_eq!(start.elapsed(), Duration::from_millis(2040));
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_wait_is_announced() {
        let budget = Arc::new(RateLimiter::new(RateLimits::new(None, None)).named("test api"));
        budget.on_rate_limited(Some(Duration::from_secs(45)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let ctx = FetchContext::new(StreamId::new("t", "s"))
            .with_budget(budget)
            .with_notice(Arc::new(move |w: &Waiting| {
                sink.lock().unwrap().push(w.clone())
            }));
        ctx.request().await.unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].what, "the request budget of test api");
        assert_eq!(seen[0].waited, NOTICE_AFTER);
        assert_eq!(seen[1].waited, NOTICE_AFTER + NOTICE_EVERY);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_run_sends_nothing() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let ctx = FetchContext::new(StreamId::new("t", "s")).with_cancel(cancel);
        assert!(matches!(ctx.request().await, Err(SyncError::Cancelled)));
        assert_eq!(ctx.meter().requests(), 0);
    }
}
