//! Pacing, written once: the [`Paced`] wrapper draws every request of a
//! source from a [`Budget`] and tells the budget about every 429.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::coverage::interval::DayRange;
use crate::error::{Result, SyncError};
use crate::limit::budget::Budget;
use crate::plan::target::Batch;
use crate::source::api::{Cursor, DayCounts, KeyPage, Page, Probe, Source, SourceInfo};
use crate::source::context::FetchContext;

/// A source whose requests are paced by a shared [`Budget`].
///
/// Each [`FetchContext::request`] the source makes waits for the budget;
/// each [`SyncError::RateLimited`] it returns is counted and reported to the
/// budget (which pauses, honouring `Retry-After`, and slows down everyone
/// who shares it). Put it inside [`Retrying`](crate::Retrying), so that
/// every attempt is paced and every 429 reported.
#[derive(Debug)]
pub struct Paced<S> {
    inner: S,
    budget: Arc<dyn Budget>,
}

impl<S: Source> Paced<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, budget: Arc<dyn Budget>) -> Self {
        Self { inner, budget }
    }

    /// The budget.
    pub fn budget(&self) -> &Arc<dyn Budget> {
        &self.budget
    }

    async fn around<T, F, Fut>(&self, ctx: &FetchContext, op: F) -> Result<T>
    where
        F: FnOnce(FetchContext) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let paced = ctx.clone().with_budget(self.budget.clone());
        let result = op(paced).await;
        if let Err(SyncError::RateLimited { retry_after }) = &result {
            ctx.meter().add_rate_limited();
            tracing::warn!(
                stream = %ctx.stream(),
                retry_after_ms = retry_after.map(|d| d.as_millis() as u64),
                "429 from the server; slowing down"
            );
            self.budget.rate_limited(*retry_after).await?;
        }
        result
    }
}

#[async_trait]
impl<S: Source> Source for Paced<S> {
    fn info(&self) -> SourceInfo {
        self.inner.info()
    }

    async fn login(&self, ctx: &FetchContext) -> Result<()> {
        self.around(ctx, |ctx| async move { self.inner.login(&ctx).await })
            .await
    }

    async fn fetch_page(
        &self,
        batch: &Batch,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Page> {
        self.around(ctx, |ctx| async move {
            self.inner.fetch_page(batch, cursor, &ctx).await
        })
        .await
    }

    async fn probe(&self, range: DayRange, ctx: &FetchContext) -> Result<Option<Probe>> {
        self.around(
            ctx,
            |ctx| async move { self.inner.probe(range, &ctx).await },
        )
        .await
    }

    async fn day_counts(
        &self,
        range: DayRange,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Option<DayCounts>> {
        self.around(ctx, |ctx| async move {
            self.inner.day_counts(range, cursor, &ctx).await
        })
        .await
    }

    async fn list_keys(
        &self,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Option<KeyPage>> {
        self.around(ctx, |ctx| async move {
            self.inner.list_keys(cursor, &ctx).await
        })
        .await
    }
}
