//! Retry policy, classified by [`crate::SyncError`].
//!
//! - [`SyncError::Retryable`] (5xx, timeout, dropped connection): wait with
//!   exponential backoff and jitter, at most [`RetryPolicy::max_retries`]
//!   times.
//! - [`SyncError::RateLimited`] (429): try again at once, at most
//!   [`RetryPolicy::max_rate_limited_retries`] times. The waiting is done by
//!   the shared limiter: by convention the source called
//!   [`FetchContext::rate_limited`] when it saw the 429, so the limiter is
//!   paused and the next [`FetchContext::acquire`] waits for it. Sleeping
//!   here as well would wait twice.
//! - Everything else is returned at once: retrying will not help, or (for
//!   [`SyncError::AuthExpired`]) the caller must renew the session first.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::error::{Result, SyncError};
use crate::source::FetchContext;

/// How often and how patiently to retry.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt, for temporary failures.
    pub max_retries: u32,
    /// First backoff delay.
    pub initial_delay: Duration,
    /// Longest backoff delay (before jitter).
    pub max_delay: Duration,
    /// Retries after 429 answers. Larger than `max_retries` because the
    /// limiter paces them, but bounded so that a 429 storm cannot go on
    /// forever.
    pub max_rate_limited_retries: u32,
    /// Add a random share (up to 100%) to each backoff delay, so that
    /// clients that failed together do not retry together.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_rate_limited_retries: 30,
            jitter: true,
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
    /// module documentation). Each retry is counted in `ctx.meter()`. When
    /// the run is cancelled, no further attempt is made and
    /// [`SyncError::Cancelled`] is returned.
    pub async fn retry<T, F, Fut>(&self, ctx: &FetchContext, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut backoff = self.backoff();
        let mut rate_limited_retries: u32 = 0;
        loop {
            let error = match op().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let delay = match &error {
                SyncError::Retryable { .. } => match backoff.next() {
                    Some(delay) => delay,
                    None => return Err(error),
                },
                SyncError::RateLimited { .. } => {
                    if rate_limited_retries >= self.max_rate_limited_retries {
                        return Err(error);
                    }
                    rate_limited_retries += 1;
                    Duration::ZERO
                }
                _ => return Err(error),
            };
            if ctx.cancel_token().is_cancelled() {
                return Err(SyncError::Cancelled);
            }
            ctx.meter().add_retry();
            tracing::debug!(
                stream = %ctx.stream(),
                error_kind = error.kind(),
                delay_ms = delay.as_millis() as u64,
                "retrying"
            );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::RateLimiter;
    use crate::record::StreamId;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use tokio::time::Instant;
    use tokio_util::sync::CancellationToken;

    fn ctx() -> FetchContext {
        FetchContext::new(
            StreamId::new("test", "retry"),
            Arc::new(RateLimiter::unlimited()),
        )
    }

    fn steady(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(4),
            max_rate_limited_retries: 3,
            jitter: false,
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
        assert_eq!(steady(5).retry(&ctx, op).await.unwrap(), 5);
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
        let err = steady(2).retry(&ctx, op).await.unwrap_err();
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
            .retry(&ctx, scripted(vec![retryable; 3], &calls, &times))
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
        assert_eq!(steady(0).retry(&ctx, op).await.unwrap(), 4);
        assert_eq!(
            Instant::now(),
            start,
            "429 retries must leave waiting to the limiter"
        );
        assert_eq!(ctx.meter().retries(), 3);

        let calls2 = Arc::default();
        let op = scripted(vec![rate_limited; 100], &calls2, &times);
        let err = steady(0).retry(&ctx, op).await.unwrap_err();
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
        assert_eq!(steady(2).retry(&ctx, op).await.unwrap(), 6);
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
                .retry(&ctx, scripted(vec![make; 3], &calls, &times))
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
            .retry(&ctx(), scripted(vec![rate_limited], &calls, &times))
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
            .retry(&ctx, scripted(vec![retryable; 10], &calls, &times))
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
            .retry(&ctx, scripted(vec![rate_limited; 10], &calls, &times))
            .await
            .unwrap_err();
        assert!(matches!(err, SyncError::Cancelled), "{err:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
