//! Sessions, renewed in one place: the [`Authenticated`] wrapper and the
//! [`SessionCache`] it shares between sources that use the same
//! credentials.
//!
//! The model is object_store's `TokenCache`: renew before expiry, and
//! re-check under the lock, so that whoever gets the lock first logs in and
//! the others find the session fresh.
//!
//! - The first operation logs in (lazily: a run with nothing to do sends
//!   nothing).
//! - An operation finds the session older than
//!   [`SourceInfo::session_max_age`]: it is renewed first.
//! - An operation fails with [`SyncError::AuthExpired`]: the session is
//!   renewed (unless another task renewed it since) and the operation
//!   repeated (counted as a retry in the run's meter). Expired again on
//!   the repeat's first try:
//!   [`SyncError::Unauthenticated`]; expired again after the repeat was
//!   retried for a temporary error (the new session did work): renewed
//!   again, a few times at most.
//! - The login itself fails with `AuthExpired`: the credentials do not work
//!   ([`SyncError::Unauthenticated`]).
//! - No operation is in flight while the session is renewed: a login form
//!   whose token is bound to the session must not see other requests
//!   between its two steps. Operations wait for the renewal, then go on.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::coverage::interval::DayRange;
use crate::error::{Result, SyncError};
use crate::plan::target::Batch;
use crate::source::api::{Cursor, DayCounts, KeyPage, Page, Probe, Source, SourceInfo};
use crate::source::context::FetchContext;

#[derive(Debug, Default)]
struct State {
    /// Successful logins so far.
    generation: u64,
    logged_in_at: Option<Instant>,
}

/// The session of one set of credentials, shared by every source (every
/// company, every stream) that logs in with them.
#[derive(Debug, Default)]
pub struct SessionCache {
    state: Mutex<State>,
    // Operations hold it shared while they run; a login holds it alone.
    gate: tokio::sync::RwLock<()>,
}

impl SessionCache {
    /// A cache with no session yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logins that succeeded so far.
    pub fn logins(&self) -> u64 {
        self.state().generation
    }

    /// The generation of a live session, or `None` when there is none or it
    /// is older than `max_age`.
    fn fresh(&self, max_age: Option<Duration>) -> Option<u64> {
        let s = self.state();
        let at = s.logged_in_at?;
        match max_age {
            Some(age) if at.elapsed() >= age => None,
            _ => Some(s.generation),
        }
    }

    /// Forgets the session: the next operation logs in.
    pub fn invalidate(&self) {
        self.state().logged_in_at = None;
    }
}

/// A source whose session is renewed by the core (see the module
/// documentation).
#[derive(Debug)]
pub struct Authenticated<S> {
    inner: S,
    cache: std::sync::Arc<SessionCache>,
}

impl<S: Source> Authenticated<S> {
    /// Wraps `inner` with a session of its own.
    pub fn new(inner: S) -> Self {
        Self::with_cache(inner, std::sync::Arc::new(SessionCache::new()))
    }

    /// Wraps `inner` with a session shared with other sources.
    pub fn with_cache(inner: S, cache: std::sync::Arc<SessionCache>) -> Self {
        Self { inner, cache }
    }

    /// The session cache.
    pub fn cache(&self) -> &std::sync::Arc<SessionCache> {
        &self.cache
    }

    /// A fresh session: its generation and the shared hold on it, logging
    /// in first (alone) when there is none or it is too old.
    async fn session(
        &self,
        ctx: &FetchContext,
        max_age: Option<Duration>,
    ) -> Result<(u64, tokio::sync::RwLockReadGuard<'_, ()>)> {
        loop {
            let shared = self.cache.gate.read().await;
            if let Some(generation) = self.cache.fresh(max_age) {
                return Ok((generation, shared));
            }
            drop(shared);
            let _alone = self.cache.gate.write().await;
            // Someone else may have logged in while we waited.
            if self.cache.fresh(max_age).is_none() {
                self.log_in(ctx).await?;
            }
        }
    }

    /// Renews the session after an operation found it expired, unless it
    /// was renewed since generation `seen`.
    async fn renew(&self, ctx: &FetchContext, seen: u64) -> Result<()> {
        let _alone = self.cache.gate.write().await;
        if self.cache.state().generation != seen {
            return Ok(());
        }
        self.log_in(ctx).await.map(|_| ())
    }

    // Call with the gate held alone.
    async fn log_in(&self, ctx: &FetchContext) -> Result<u64> {
        match self.inner.login(ctx).await {
            Ok(()) => {
                let mut s = self.cache.state();
                s.generation += 1;
                s.logged_in_at = Some(Instant::now());
                tracing::info!(stream = %ctx.stream(), logins = s.generation, "logged in");
                Ok(s.generation)
            }
            // Expired while logging in: the credentials do not work.
            Err(SyncError::AuthExpired { message }) => Err(SyncError::Unauthenticated { message }),
            Err(e) => Err(e),
        }
    }

    /// Runs `op` with a live session, renewing it when it expired.
    ///
    /// The repeated `op` finding the session expired on its first try means
    /// the fresh session does not work: [`SyncError::Unauthenticated`]. When
    /// it got other answers first (it was retried after a temporary error)
    /// and the session then expired, the session worked: it is renewed
    /// again, up to [`MAX_RENEWALS`] times for one operation.
    async fn around<T, F, Fut>(&self, ctx: &FetchContext, op: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let max_age = self.inner.info().session_max_age;
        let (mut seen, shared) = self.session(ctx, max_age).await?;
        let mut outcome = op().await;
        drop(shared);
        let mut renewals = 0;
        loop {
            let message = match outcome {
                Err(SyncError::AuthExpired { message }) => message,
                other => return other,
            };
            if renewals >= MAX_RENEWALS {
                return Err(SyncError::Unauthenticated {
                    message: format!(
                        "the session expired {renewals} times during one request: {message}"
                    ),
                });
            }
            tracing::info!(stream = %ctx.stream(), reason = %message, "session expired; renewing it");
            self.renew(ctx, seen).await?;
            renewals += 1;
            let (generation, shared) = self.session(ctx, None).await?;
            seen = generation;
            // The request goes out again: a retry, as the server sees it.
            ctx.meter().add_retry();
            let retries = ctx.meter().retries();
            outcome = op().await;
            drop(shared);
            let retried = ctx.meter().retries() > retries;
            if let Err(SyncError::AuthExpired { message }) = &outcome {
                if !retried {
                    return Err(SyncError::Unauthenticated {
                        message: format!(
                            "the session expired again right after it was renewed: {message}"
                        ),
                    });
                }
            }
        }
    }
}

/// Renewals of the session one operation may cause (see
/// [`Authenticated`]'s `around`).
const MAX_RENEWALS: u32 = 3;

#[async_trait]
impl<S: Source> Source for Authenticated<S> {
    fn info(&self) -> SourceInfo {
        self.inner.info()
    }

    /// Logs in now (renewing any session).
    async fn login(&self, ctx: &FetchContext) -> Result<()> {
        let _alone = self.cache.gate.write().await;
        self.log_in(ctx).await.map(|_| ())
    }

    async fn fetch_page(
        &self,
        batch: &Batch,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Page> {
        self.around(ctx, || self.inner.fetch_page(batch, cursor, ctx))
            .await
    }

    async fn probe(&self, range: DayRange, ctx: &FetchContext) -> Result<Option<Probe>> {
        self.around(ctx, || self.inner.probe(range, ctx)).await
    }

    async fn day_counts(
        &self,
        range: DayRange,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Option<DayCounts>> {
        self.around(ctx, || self.inner.day_counts(range, cursor, ctx))
            .await
    }

    async fn list_keys(
        &self,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Option<KeyPage>> {
        self.around(ctx, || self.inner.list_keys(cursor, ctx)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::StreamId;
    use crate::source::api::Windows;
    use crate::source::retry::{RetryPolicy, Retrying};
    use chrono_tz::Tz;
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// Answers each request from a script; logs in always.
    #[derive(Debug, Default)]
    struct Scripted {
        answers: Mutex<VecDeque<Result<Page>>>,
        logins: AtomicU64,
    }

    fn expired() -> Result<Page> {
        Err(SyncError::AuthExpired {
            message: "login page".into(),
        })
    }

    #[async_trait]
    impl Source for Scripted {
        fn info(&self) -> SourceInfo {
            SourceInfo::days(StreamId::new("t", "s"), Tz::UTC, Windows::Fixed { days: 1 })
        }
        async fn login(&self, ctx: &FetchContext) -> Result<()> {
            ctx.request().await?;
            self.logins.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn fetch_page(
            &self,
            _: &Batch,
            _: Option<&Cursor>,
            ctx: &FetchContext,
        ) -> Result<Page> {
            ctx.request().await?;
            let next = self
                .answers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            next.unwrap_or_else(|| Ok(Page::default()))
        }
    }

    async fn fetch(answers: Vec<Result<Page>>) -> (Result<Page>, u64) {
        let source = Scripted {
            answers: Mutex::new(answers.into()),
            ..Scripted::default()
        };
        let policy = RetryPolicy {
            max_retries: 3,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
            jitter: false,
            ..RetryPolicy::default()
        };
        let stack = Authenticated::new(Retrying::new(&source, policy));
        let ctx = FetchContext::new(StreamId::new("t", "s"));
        let batch = Batch::new(
            0,
            crate::plan::target::BatchSpan::Keys(crate::Span::single(1)),
        );
        let got = stack.fetch_page(&batch, None, &ctx).await;
        (got, source.logins.load(Ordering::SeqCst))
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_session_is_renewed_once_and_the_request_repeated() {
        let (got, logins) = fetch(vec![expired()]).await;
        assert!(got.is_ok(), "{got:?}");
        assert_eq!(logins, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_right_after_renewal_is_unauthenticated() {
        let (got, logins) = fetch(vec![expired(), expired()]).await;
        let e = got.unwrap_err();
        assert!(matches!(e, SyncError::Unauthenticated { .. }), "{e:?}");
        assert!(e.to_string().contains("right after"), "{e}");
        assert_eq!(logins, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_again_while_the_repeat_is_retried_is_renewed_again() {
        let (got, logins) = fetch(vec![
            expired(),
            Err(SyncError::retryable("HTTP 503")),
            expired(),
        ])
        .await;
        assert!(got.is_ok(), "{got:?}");
        assert_eq!(logins, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn renewals_of_one_request_are_bounded() {
        let mut answers = vec![expired()];
        for _ in 0..10 {
            answers.push(Err(SyncError::retryable("HTTP 503")));
            answers.push(expired());
        }
        let (got, logins) = fetch(answers).await;
        let e = got.unwrap_err();
        assert!(matches!(e, SyncError::Unauthenticated { .. }), "{e:?}");
        assert_eq!(logins, 1 + u64::from(MAX_RENEWALS));
    }
}
