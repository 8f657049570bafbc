//! Retries, written once: the [`RetryPolicy`] and the [`Retrying`] wrapper.
//!
//! - [`SyncError::Retryable`] (5xx, timeout, dropped connection): wait with
//!   exponential backoff and jitter, at most [`RetryPolicy::max_retries`]
//!   times.
//! - [`SyncError::RateLimited`] (429): try again at once, at most
//!   [`RetryPolicy::max_rate_limited_retries`] times. The waiting is done by
//!   the budget: [`Paced`](crate::Paced) reported the 429 to it, so the next
//!   [`FetchContext::request`] waits for the pause. Sleeping here as well
//!   would wait twice.
//! - Everything else is returned at once: retrying will not help, or (for
//!   [`SyncError::AuthExpired`]) the session must be renewed first, which
//!   [`Authenticated`](crate::Authenticated) does.
//!
//! All attempts of one operation together take at most
//! [`RetryPolicy::max_elapsed`]: a dead endpoint fails in the time the
//! policy states. The pause a 429's `Retry-After` asks for counts as the
//! wait before its retry, although the budget, not this loop, waits it out.
//! Waits longer than a few seconds are announced.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::time::Instant;

use crate::coverage::interval::DayRange;
use crate::error::{Result, SyncError};
use crate::plan::target::Batch;
use crate::source::api::{Cursor, DayCounts, KeyPage, Page, Probe, Source, SourceInfo};
use crate::source::context::{watched_apart, FetchContext, Waiting, NOTICE_AFTER, NOTICE_EVERY};

/// How often and how patiently to retry one operation.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt, for temporary failures.
    pub max_retries: u32,
    /// First backoff delay.
    pub initial_delay: Duration,
    /// Longest backoff delay (before jitter).
    pub max_delay: Duration,
    /// Retries after 429 answers. Larger than `max_retries` because the
    /// budget paces them, but bounded so that a 429 storm cannot go on
    /// forever.
    pub max_rate_limited_retries: u32,
    /// Add a random share (up to 100%) to each backoff delay, so that
    /// clients that failed together do not retry together.
    pub jitter: bool,
    /// The most time all attempts of one operation may take together,
    /// waits included: no retry starts that would end later.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// Five retries from 0.5 s doubling up to 30 s (with jitter), thirty
    /// after 429s, two minutes in all.
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_rate_limited_retries: 30,
            jitter: true,
            max_elapsed: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Never retry: the first error is returned.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            max_rate_limited_retries: 0,
            ..Self::default()
        }
    }

    /// The backoff delays before each retry of a temporary failure.
    fn backoff(&self) -> impl Iterator<Item = Duration> {
        let builder = ExponentialBuilder::default()
            .with_min_delay(self.initial_delay)
            .with_max_delay(self.max_delay.max(self.initial_delay))
            .with_max_times(self.max_retries as usize);
        let builder = if self.jitter {
            builder.with_jitter()
        } else {
            builder
        };
        builder.build()
    }

    /// Runs `op` until it succeeds, retrying as the policy says (see the
    /// module documentation). Each retry is counted in `ctx.meter()`; an
    /// attempt that takes longer than a few seconds, or a backoff that does,
    /// is announced with `what` (for people: "page 2 of days ...").
    /// When the run is cancelled, no further attempt is made and
    /// [`SyncError::Cancelled`] is returned.
    pub async fn retry<T, F, Fut>(
        &self,
        ctx: &FetchContext,
        what: impl Fn() -> String,
        mut op: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let started = Instant::now();
        let mut backoff = self.backoff();
        let mut rate_limited_retries: u32 = 0;
        let mut attempts: u32 = 0;
        // Retries that together last long are announced too, not only
        // single long waits.
        let mut next_notice = started + NOTICE_AFTER;
        loop {
            attempts += 1;
            // A wait for the budget inside the attempt is announced by the
            // budget; only the time the answer takes counts here.
            let before = ctx.waited_so_far();
            let attempt = watched_apart(
                op(),
                || format!("an answer to {}", what()),
                ctx.notice(),
                || ctx.waited_so_far().saturating_sub(before),
            );
            let error = match attempt.await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            // `delay` is slept here; `wait` is how long the retry will wait
            // before it is sent, in the budget too (the pause a 429's
            // Retry-After asks for).
            let (delay, wait) = match &error {
                SyncError::Retryable { .. } => match backoff.next() {
                    Some(delay) => (delay, delay),
                    None => return Err(error),
                },
                SyncError::RateLimited { retry_after } => {
                    if rate_limited_retries >= self.max_rate_limited_retries {
                        return Err(error);
                    }
                    rate_limited_retries += 1;
                    (Duration::ZERO, retry_after.unwrap_or_default())
                }
                _ => return Err(error),
            };
            if started.elapsed() + wait > self.max_elapsed {
                tracing::warn!(
                    stream = %ctx.stream(),
                    what = %what(),
                    error_kind = error.kind(),
                    max_elapsed_s = self.max_elapsed.as_secs(),
                    "giving up: the retry time budget is spent"
                );
                return Err(error);
            }
            if ctx.cancel_token().is_cancelled() {
                return Err(SyncError::Cancelled);
            }
            ctx.meter().add_retry();
            tracing::debug!(
                stream = %ctx.stream(),
                what = %what(),
                error_kind = error.kind(),
                delay_ms = delay.as_millis() as u64,
                "retrying"
            );
            if Instant::now() + delay >= next_notice {
                next_notice = Instant::now() + delay + NOTICE_EVERY;
                let waiting = Waiting {
                    what: format!(
                        "the retry of {} in {:.0} s (attempts so far: {attempts}; the last failed: {error})",
                        what(),
                        delay.as_secs_f64()
                    ),
                    waited: started.elapsed(),
                };
                tracing::warn!(waiting_for = %waiting.what, "backing off");
                if let Some(notice) = ctx.notice() {
                    notice(&waiting);
                }
            }
            if !delay.is_zero() {
                tokio::select! {
                    biased;
                    _ = ctx.cancel_token().cancelled() => return Err(SyncError::Cancelled),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// A source whose operations are retried by a [`RetryPolicy`].
#[derive(Debug)]
pub struct Retrying<S> {
    inner: S,
    policy: RetryPolicy,
}

impl<S: Source> Retrying<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        Self { inner, policy }
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

/// "page 2 of days 2024-01-01..=2024-01-07 of yclients:1/records".
pub(crate) fn describe_page(batch: &Batch, cursor: Option<&Cursor>, stream: &str) -> String {
    match cursor {
        None => format!("the first request of {} of {stream}", batch.span),
        Some(c) => format!("request {} of {} of {stream}", c.value(), batch.span),
    }
}

#[async_trait]
impl<S: Source> Source for Retrying<S> {
    fn info(&self) -> SourceInfo {
        self.inner.info()
    }

    async fn login(&self, ctx: &FetchContext) -> Result<()> {
        let what = || format!("the login to {}", ctx.stream().source);
        self.policy.retry(ctx, what, || self.inner.login(ctx)).await
    }

    async fn fetch_page(
        &self,
        batch: &Batch,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Page> {
        let what = || describe_page(batch, cursor, &ctx.stream().to_string());
        self.policy
            .retry(ctx, what, || self.inner.fetch_page(batch, cursor, ctx))
            .await
    }

    async fn probe(&self, range: DayRange, ctx: &FetchContext) -> Result<Option<Probe>> {
        let what = || format!("the count of {range} of {}", ctx.stream());
        self.policy
            .retry(ctx, what, || self.inner.probe(range, ctx))
            .await
    }

    async fn day_counts(
        &self,
        range: DayRange,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Option<DayCounts>> {
        let what = || format!("the day counts of {range} of {}", ctx.stream());
        self.policy
            .retry(ctx, what, || self.inner.day_counts(range, cursor, ctx))
            .await
    }

    async fn list_keys(
        &self,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Option<KeyPage>> {
        let what = || format!("the key list of {}", ctx.stream());
        self.policy
            .retry(ctx, what, || self.inner.list_keys(cursor, ctx))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::StreamId;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use tokio::time::Instant;
    use tokio_util::sync::CancellationToken;

    fn ctx() -> FetchContext {
        FetchContext::new(StreamId::new("test", "retry"))
    }

    fn steady(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(4),
            max_rate_limited_retries: 3,
            jitter: false,
            max_elapsed: Duration::from_secs(3600),
        }
    }

    /// An operation that fails with `errors` in turn, then succeeds with the
    /// number of calls; records when each call happened.
    fn scripted(
        errors: Vec<fn() -> SyncError>,
        calls: &Arc<AtomicU32>,
        times: &Arc<std::sync::Mutex<Vec<Instant>>>,
    ) -> impl FnMut() -> std::future::Ready<Result<u32>> {
        let (calls, times) = (calls.clone(), times.clone());
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            times.lock().unwrap().push(Instant::now());
            std::future::ready(match errors.get(n as usize) {
                Some(make) => Err(make()),
                None => Ok(n + 1),
            })
        }
    }

    fn what() -> String {
        "the test operation".into()
    }

    fn retryable() -> SyncError {
        SyncError::retryable("503")
    }
    fn rate_limited() -> SyncError {
        SyncError::RateLimited { retry_after: None }
    }

    #[tokio::test(start_paused = true)]
    async fn temporary_failures_back_off_exponentially_up_to_the_cap() {
        let (calls, times) = (Arc::default(), Arc::default());
        let ctx = ctx();
        let op = scripted(vec![retryable; 4], &calls, &times);
        let start = Instant::now();
        assert_eq!(steady(5).retry(&ctx, what, op).await.unwrap(), 5);
        let gaps: Vec<Duration> = times
            .lock()
            .unwrap()
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect();
        let secs = |s: u64| Duration::from_secs(s);
        assert_eq!(gaps, [secs(1), secs(2), secs(4), secs(4)]);
        assert_eq!(Instant::now() - start, secs(11));
        assert_eq!(ctx.meter().retries(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn temporary_failures_give_up_after_max_retries() {
        let (calls, times) = (Arc::default(), Arc::default());
        let ctx = ctx();
        let op = scripted(vec![retryable; 10], &calls, &times);
        let err = steady(2).retry(&ctx, what, op).await.unwrap_err();
        assert!(matches!(err, SyncError::Retryable { .. }), "{err:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(ctx.meter().retries(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_stays_within_one_delay() {
        let (calls, times) = (Arc::default(), Arc::default());
        let ctx = ctx();
        let policy = RetryPolicy {
            jitter: true,
            ..steady(3)
        };
        policy
            .retry(&ctx, what, scripted(vec![retryable; 3], &calls, &times))
            .await
            .unwrap();
        let times = times.lock().unwrap();
        for (i, base) in [1u64, 2, 4].into_iter().enumerate() {
            let gap = times[i + 1] - times[i];
            let base = Duration::from_secs(base);
            assert!(gap >= base && gap < base * 2, "retry {i}: {gap:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_retries_do_not_sleep_and_are_bounded() {
        let (calls, times) = (Arc::default(), Arc::default());
        let ctx = ctx();
        let start = Instant::now();
        let op = scripted(vec![rate_limited; 3], &calls, &times);
        assert_eq!(steady(0).retry(&ctx, what, op).await.unwrap(), 4);
        assert_eq!(
            Instant::now(),
            start,
            "429 retries must leave waiting to the limiter"
        );
        assert_eq!(ctx.meter().retries(), 3);

        let calls2 = Arc::default();
        let op = scripted(vec![rate_limited; 100], &calls2, &times);
        let err = steady(0).retry(&ctx, what, op).await.unwrap_err();
        assert!(matches!(err, SyncError::RateLimited { .. }), "{err:?}");
        assert_eq!(
            calls2.load(Ordering::SeqCst),
            4,
            "first attempt + 3 retries"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_and_temporary_budgets_are_separate() {
        let (calls, times) = (Arc::default(), Arc::default());
        let ctx = ctx();
        let errors: Vec<fn() -> SyncError> = vec![
            rate_limited,
            retryable,
            rate_limited,
            rate_limited,
            retryable,
        ];
        let op = scripted(errors, &calls, &times);
        assert_eq!(steady(2).retry(&ctx, what, op).await.unwrap(), 6);
        assert_eq!(ctx.meter().retries(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_return_at_once() {
        let makers: [fn() -> SyncError; 5] = [
            || SyncError::bad_data("x"),
            || SyncError::fatal("x"),
            || SyncError::AuthExpired {
                message: "x".into(),
            },
            || SyncError::Unauthenticated {
                message: "x".into(),
            },
            || SyncError::invalid_input("x"),
        ];
        for make in makers {
            let (calls, times) = (Arc::default(), Arc::default());
            let ctx = ctx();
            let kind = make().kind();
            let err = RetryPolicy::default()
                .retry(&ctx, what, scripted(vec![make; 3], &calls, &times))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), kind);
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{kind} was retried");
            assert_eq!(ctx.meter().retries(), 0);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn none_never_retries() {
        let (calls, times) = (Arc::default(), Arc::default());
        let err = RetryPolicy::none()
            .retry(&ctx(), what, scripted(vec![rate_limited], &calls, &times))
            .await
            .unwrap_err();
        assert!(matches!(err, SyncError::RateLimited { .. }));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_stops_the_backoff_wait() {
        let (calls, times) = (Arc::default(), Arc::default());
        let cancel = CancellationToken::new();
        let ctx = ctx().with_cancel(cancel.clone());
        let canceller = {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(2500)).await;
                cancel.cancel();
            })
        };
        let start = Instant::now();
        let err = steady(10)
            .retry(&ctx, what, scripted(vec![retryable; 10], &calls, &times))
            .await
            .unwrap_err();
        canceller.await.unwrap();
        assert!(matches!(err, SyncError::Cancelled), "{err:?}");
        // Attempts at 0 s and 1 s; the 2 s wait is cut short at 2.5 s.
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(Instant::now() - start, Duration::from_millis(2500));
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_once_cancelled() {
        let (calls, times) = (Arc::default(), Arc::default());
        let cancel = CancellationToken::new();
        cancel.cancel();
        let ctx = ctx().with_cancel(cancel);
        let err = steady(10)
            .retry(&ctx, what, scripted(vec![rate_limited; 10], &calls, &times))
            .await
            .unwrap_err();
        assert!(matches!(err, SyncError::Cancelled), "{err:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_time_budget_ends_the_retries() {
        let (calls, times) = (Arc::default(), Arc::default());
        let ctx = ctx();
        let policy = RetryPolicy {
            max_elapsed: Duration::from_secs(5),
            ..steady(10)
        };
        let start = Instant::now();
        let err = policy
            .retry(&ctx, what, scripted(vec![retryable; 10], &calls, &times))
            .await
            .unwrap_err();
        assert!(matches!(err, SyncError::Retryable { .. }), "{err:?}");
        // Attempts at 0, 1 and 3 s; the next would wait 4 s more, past 5 s.
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(Instant::now() - start, Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_attempt_and_a_long_backoff_are_announced() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let ctx = ctx().with_notice(Arc::new(move |w: &Waiting| {
            sink.lock().unwrap().push(w.what.clone())
        }));
        let policy = RetryPolicy {
            initial_delay: Duration::from_secs(20),
            max_delay: Duration::from_secs(20),
            ..steady(1)
        };
        let attempts = Arc::new(AtomicU32::new(0));
        let n = attempts.clone();
        let result = policy
            .retry(&ctx, what, move || {
                let n = n.clone();
                async move {
                    if n.fetch_add(1, Ordering::SeqCst) == 0 {
                        tokio::time::sleep(Duration::from_secs(12)).await;
                        Err(retryable())
                    } else {
                        Ok(())
                    }
                }
            })
            .await;
        assert!(result.is_ok());
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0], "an answer to the test operation");
        assert!(
            seen[1].starts_with("the retry of the test operation in 20 s (attempts so far: 1"),
            "{seen:?}"
        );
    }
}
