//! The [`Source`] trait: where records come from, one request at a time.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::coverage::interval::DayRange;
use crate::domain::record::{Record, StreamId};
use crate::error::{Result, SyncError};
use crate::limit::limits::RateLimits;
use crate::plan::target::Batch;
use crate::source::context::FetchContext;

/// What a source is and can do, so that the core plans, paces and renews
/// sessions for it instead of guessing. Built with [`SourceInfo::days`] or
/// [`SourceInfo::keys`] and the `with_*` methods.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SourceInfo {
    /// The stream the source fills; checkpoints and runs are kept under it.
    pub stream: StreamId,
    /// The units its records belong to, and how the core cuts them.
    pub units: Units,
    /// The limits the external system documents (before any safety margin).
    pub limits: RateLimits,
    /// What the server counts its limits by (e.g. `yclients:api.yclients.com`
    /// for a limit per IP address): sources with the same key share one
    /// budget.
    pub budget_key: String,
    /// What fetching costs, in requests, for the planner.
    pub cost: FetchCost,
    /// Whether [`crate::BatchSpan::Changes`] batches are supported (delta).
    pub supports_delta: bool,
    /// Whether [`Source::day_counts`] answers.
    pub supports_day_counts: bool,
    /// Whether [`Source::probe`] answers (a cheap count for the planner).
    pub supports_probe: bool,
    /// How long a session may be used before it is renewed; `None` when
    /// sessions do not age (tokens without an expiry).
    pub session_max_age: Option<Duration>,
}

/// The units a source's records belong to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Units {
    /// Local calendar days in the business's IANA time zone.
    Days {
        /// The business's time zone: a "day" is a calendar day there.
        tz: Tz,
        /// How the core cuts a range of days into windows.
        windows: Windows,
    },
    /// Integer keys (ids), fetched `chunk` at a time.
    Keys {
        /// Keys per batch.
        chunk: u32,
        /// Whether the source lists its keys ([`Source::list_keys`]); the
        /// target is then the keys it lists. A forced run (every batch a
        /// [re-check](crate::Batch::recheck)) also fetches the covered keys
        /// it no longer lists: the source finds their records gone and
        /// reports them deleted (their stored copies are in
        /// [`FetchContext::existing`]).
        listed: bool,
    },
}

/// How a range of days is cut into windows (batches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Windows {
    /// The source lists records page by page: windows are sized from the
    /// density of records per day (first from [`Source::probe`], then from
    /// the windows just fetched) to fill whole pages, at most `max_pages`.
    ByDensity {
        /// Records per page.
        page_size: u32,
        /// Most pages a window is planned to fill (a window that holds more
        /// is still paged to its end).
        max_pages: u32,
    },
    /// Windows of `days` days (e.g. a weekly schedule page).
    Fixed {
        /// Days per window.
        days: u32,
    },
}

/// What fetching costs, in requests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FetchCost {
    /// Requests one window (or key chunk) costs besides its pages and items:
    /// e.g. one schedule page.
    pub per_window: f64,
    /// Requests per item listed in a window: e.g. one detail page each.
    pub per_item: f64,
    /// Requests one login makes.
    pub login: u32,
    /// Items per page of [`Source::list_keys`] (for keyed sources).
    pub keys_per_page: u32,
}

impl Default for FetchCost {
    fn default() -> Self {
        Self {
            per_window: 0.0,
            per_item: 0.0,
            login: 0,
            keys_per_page: 1,
        }
    }
}

impl SourceInfo {
    /// A source of records by local day in `tz`, cut into `windows`, with
    /// no documented limit and nothing optional supported.
    pub fn days(stream: StreamId, tz: Tz, windows: Windows) -> Self {
        Self::with_units(stream, Units::Days { tz, windows })
    }

    /// A source of records by integer key, fetched `chunk` at a time.
    pub fn keys(stream: StreamId, chunk: u32, listed: bool) -> Self {
        Self::with_units(
            stream,
            Units::Keys {
                chunk: chunk.max(1),
                listed,
            },
        )
    }

    fn with_units(stream: StreamId, units: Units) -> Self {
        let budget_key = stream.source.clone();
        Self {
            stream,
            units,
            limits: RateLimits::UNLIMITED,
            budget_key,
            cost: FetchCost::default(),
            supports_delta: false,
            supports_day_counts: false,
            supports_probe: false,
            session_max_age: None,
        }
    }

    /// Sets the documented limits.
    pub fn with_limits(mut self, limits: RateLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets what the server counts its limits by.
    pub fn with_budget_key(mut self, key: impl Into<String>) -> Self {
        self.budget_key = key.into();
        self
    }

    /// Sets the cost model.
    pub fn with_cost(mut self, cost: FetchCost) -> Self {
        self.cost = cost;
        self
    }

    /// Says delta batches are supported.
    pub fn with_delta(mut self) -> Self {
        self.supports_delta = true;
        self
    }

    /// Says [`Source::day_counts`] answers.
    pub fn with_day_counts(mut self) -> Self {
        self.supports_day_counts = true;
        self
    }

    /// Says [`Source::probe`] answers.
    pub fn with_probe(mut self) -> Self {
        self.supports_probe = true;
        self
    }

    /// Sets how long a session lives before it is renewed.
    pub fn with_session_max_age(mut self, age: Duration) -> Self {
        self.session_max_age = Some(age);
        self
    }

    /// The time zone of a day source.
    pub fn tz(&self) -> Option<Tz> {
        match self.units {
            Units::Days { tz, .. } => Some(tz),
            Units::Keys { .. } => None,
        }
    }
}

/// Where a batch's next request stands: opaque to the core, meaningful to
/// the source that made it (a page number, a URL, a list of detail pages).
#[derive(Clone, Debug, PartialEq)]
pub struct Cursor(Value);

impl Cursor {
    /// A cursor holding `state`.
    pub fn new(state: impl Serialize) -> Self {
        Self(serde_json::to_value(state).unwrap_or(Value::Null))
    }

    /// The state back, as the type it was made from; a cursor that does not
    /// hold one is [`SyncError::InvalidInput`] (it came from another source).
    pub fn get<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.0.clone()).map_err(|e| {
            SyncError::invalid_input(format!("a cursor this source did not make: {e}"))
        })
    }

    /// The state as JSON.
    pub fn value(&self) -> &Value {
        &self.0
    }
}

/// One answer of [`Source::fetch_page`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    /// The records this request gave.
    pub records: Vec<Record>,
    /// The further requests the batch needs, each fetched once, in any
    /// order, possibly at the same time; the batch is whole when every one
    /// of them (and those they add) is fetched.
    pub more: Vec<Cursor>,
    /// How many records the whole batch holds, when the source says (a
    /// list's total count): the engine learns the density from it.
    pub total: Option<u64>,
}

impl Page {
    /// A page holding `records` and nothing more to fetch.
    pub fn last(records: Vec<Record>) -> Self {
        Self {
            records,
            ..Self::default()
        }
    }
}

/// What [`Source::probe`] counted: `items` in `days` days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Items (records, appointments) counted.
    pub items: u64,
    /// Days they were counted in.
    pub days: u64,
}

/// One answer of [`Source::day_counts`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DayCounts {
    /// Records per local day seen by this request (days without any may be
    /// left out); added up over every request of the range.
    pub counts: BTreeMap<NaiveDate, u64>,
    /// Further requests for the range, as in [`Page::more`].
    pub more: Vec<Cursor>,
}

/// One answer of [`Source::list_keys`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyPage {
    /// Keys listed by this request.
    pub keys: Vec<i64>,
    /// Further requests, as in [`Page::more`].
    pub more: Vec<Cursor>,
}

/// A place records come from: an API, a scraped web site, a file.
///
/// A source speaks its protocol and nothing else. Each operation is **one
/// attempt of one request** (a login may take a few): no retry, no waiting,
/// no renewal of the session. The core wraps sources to add those
/// ([`Retrying`](crate::Retrying), [`Authenticated`](crate::Authenticated),
/// [`Paced`](crate::Paced); the [`Engine`](crate::Engine) does it for you).
/// What a source must do:
///
/// - call [`FetchContext::request`] right before each request it sends (it
///   waits for the shared budget and counts the request);
/// - classify what went wrong: [`SyncError::Retryable`] (5xx, timeout, cut
///   off), [`SyncError::AuthExpired`] (the session is gone),
///   [`SyncError::RateLimited`] with the server's `Retry-After` (see
///   [`parse_retry_after`](crate::parse_retry_after)), [`SyncError::BadData`]
///   naming what and where, [`SyncError::Fatal`].
///
/// Implementations are object-safe and shared as `Arc<dyn Source>`. Write
/// them with `#[async_trait]` (re-exported by this crate):
///
/// ```
/// use sync_core::{async_trait, Batch, Cursor, FetchContext, Page, Record, Result};
/// use sync_core::{Source, SourceInfo, StreamId, Tz, Unit, Windows};
///
/// #[derive(Debug)]
/// struct OneRecordADay;
///
/// #[async_trait]
/// impl Source for OneRecordADay {
///     fn info(&self) -> SourceInfo {
///         SourceInfo::days(StreamId::new("demo", "days"), Tz::UTC, Windows::Fixed { days: 7 })
///     }
///
///     async fn fetch_page(&self, batch: &Batch, _: Option<&Cursor>, ctx: &FetchContext) -> Result<Page> {
///         ctx.request().await?; // one (imaginary) request for the whole window
///         let records = batch
///             .days()
///             .map(|day| Record::new("day", day.to_string(), Unit::Day(day), serde_json::json!({})))
///             .collect();
///         Ok(Page::last(records))
///     }
/// }
/// ```
#[async_trait]
pub trait Source: Send + Sync + Debug {
    /// What the source is and can do.
    fn info(&self) -> SourceInfo;

    /// Logs in, or renews the session: one attempt. The core decides when
    /// (before the first request, when the session is older than
    /// [`SourceInfo::session_max_age`], after [`SyncError::AuthExpired`]).
    /// A source without sessions keeps the default, which does nothing.
    async fn login(&self, ctx: &FetchContext) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Fetches one page of `batch`: the first when `cursor` is `None`, else
    /// the one `cursor` (from an earlier [`Page::more`]) names.
    async fn fetch_page(
        &self,
        batch: &Batch,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Page>;

    /// A cheap count of the items in `range` (one request), for planning;
    /// `Ok(None)` when the source cannot tell.
    async fn probe(&self, range: DayRange, ctx: &FetchContext) -> Result<Option<Probe>> {
        let _ = (range, ctx);
        Ok(None)
    }

    /// Per-day counts of the records the source holds in `range`, one
    /// request at a time like [`Source::fetch_page`]; `Ok(None)` when the
    /// source cannot tell.
    async fn day_counts(
        &self,
        range: DayRange,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Option<DayCounts>> {
        let _ = (range, cursor, ctx);
        Ok(None)
    }

    /// The keys of a keyed source that lists them, one request at a time;
    /// `Ok(None)` when it does not list them.
    async fn list_keys(
        &self,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Option<KeyPage>> {
        let _ = (cursor, ctx);
        Ok(None)
    }
}

macro_rules! forward_source {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<S: Source + ?Sized> Source for $ty {
            fn info(&self) -> SourceInfo {
                (**self).info()
            }
            async fn login(&self, ctx: &FetchContext) -> Result<()> {
                (**self).login(ctx).await
            }
            async fn fetch_page(
                &self,
                batch: &Batch,
                cursor: Option<&Cursor>,
                ctx: &FetchContext,
            ) -> Result<Page> {
                (**self).fetch_page(batch, cursor, ctx).await
            }
            async fn probe(&self, range: DayRange, ctx: &FetchContext) -> Result<Option<Probe>> {
                (**self).probe(range, ctx).await
            }
            async fn day_counts(
                &self,
                range: DayRange,
                cursor: Option<&Cursor>,
                ctx: &FetchContext,
            ) -> Result<Option<DayCounts>> {
                (**self).day_counts(range, cursor, ctx).await
            }
            async fn list_keys(
                &self,
                cursor: Option<&Cursor>,
                ctx: &FetchContext,
            ) -> Result<Option<KeyPage>> {
                (**self).list_keys(cursor, ctx).await
            }
        }
    )*};
}

forward_source!(Arc<S>, Box<S>, &S);

/// Conveniences on every [`Source`]: whole batches, all keys, all counts.
/// They fetch one request after another; the engine fetches in parallel.
#[async_trait]
pub trait SourceExt: Source {
    /// Every record of `batch`, following every [`Page::more`].
    async fn fetch_batch(&self, batch: &Batch, ctx: &FetchContext) -> Result<Vec<Record>> {
        let mut page = self.fetch_page(batch, None, ctx).await?;
        let mut records = std::mem::take(&mut page.records);
        let mut pending = page.more;
        while let Some(cursor) = pending.pop() {
            let page = self.fetch_page(batch, Some(&cursor), ctx).await?;
            records.extend(page.records);
            pending.extend(page.more);
        }
        Ok(records)
    }

    /// Every key the source lists; `Ok(None)` when it lists none.
    async fn all_keys(&self, ctx: &FetchContext) -> Result<Option<Vec<i64>>> {
        let Some(page) = self.list_keys(None, ctx).await? else {
            return Ok(None);
        };
        let mut keys = page.keys;
        let mut pending = page.more;
        while let Some(cursor) = pending.pop() {
            if let Some(page) = self.list_keys(Some(&cursor), ctx).await? {
                keys.extend(page.keys);
                pending.extend(page.more);
            }
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(Some(keys))
    }

    /// Per-day counts over the whole of `range`; `Ok(None)` when the source
    /// cannot tell.
    async fn all_day_counts(
        &self,
        range: DayRange,
        ctx: &FetchContext,
    ) -> Result<Option<BTreeMap<NaiveDate, u64>>> {
        let Some(first) = self.day_counts(range, None, ctx).await? else {
            return Ok(None);
        };
        let mut counts = first.counts;
        let mut pending = first.more;
        while let Some(cursor) = pending.pop() {
            if let Some(page) = self.day_counts(range, Some(&cursor), ctx).await? {
                for (day, n) in page.counts {
                    *counts.entry(day).or_insert(0) += n;
                }
                pending.extend(page.more);
            }
        }
        counts.retain(|day, _| range.contains(*day));
        Ok(Some(counts))
    }
}

impl<S: Source + ?Sized> SourceExt for S {}
