//! The records (appointments) stream: `yclients:<company>/records`, one unit
//! per local visit day.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration as ChronoDuration, Offset, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sync_core::{
    Batch, BatchSpan, Cursor, DayCounts, DayRange, FetchContext, FetchCost, Page, Probe, Record,
    Result, Source, SourceInfo, StreamId, SyncError, Unit, Windows,
};

use crate::config::YclientsConfig;
use crate::core::{ApiRequest, YclientsApi};
use crate::model::record_from_json;
use crate::LIMITS;

/// Most pages one window or change list may have: a `total_count` beyond
/// this is a server that does not page as documented.
const MAX_PAGES: u64 = 10_000;
/// Most pages a window is planned to fill (a window holding more is still
/// paged to its end).
const WINDOW_PAGES: u32 = 5;

/// Which list a request of a batch pages through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum List {
    /// The records of the batch's days.
    Window,
    /// The records changed since the batch's start (delta).
    Changes,
    /// The last days again (delta).
    Recheck,
}

/// One request of a batch: a page of a list, and the list's total count as
/// its first page gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct At {
    list: List,
    page: u64,
    total: Option<u64>,
}

impl At {
    fn first(list: List) -> Self {
        Self {
            list,
            page: 1,
            total: None,
        }
    }

    /// A later page whose list no longer holds what the first page said:
    /// records were added or removed while the pages were fetched, so some
    /// may have moved between pages unseen. The batch fails and is fetched
    /// again by the next run.
    fn check(&self, total: Option<u64>) -> Result<()> {
        match (self.total, total) {
            (Some(first), Some(now)) if first != now => Err(SyncError::bad_data(format!(
                "records: the list changed while it was paged (meta.total_count {first} on page 1, {now} on page {}); the batch is fetched again next run",
                self.page
            ))),
            _ => Ok(()),
        }
    }
}

/// Records of one company, by local visit day.
///
/// - A batch of days: `GET /records/{company}?start_date&end_date&page&count
///   [&with_deleted=1]`. The first page's `meta.total_count` tells how many
///   pages follow; they are asked for all at once (the engine fetches them
///   in parallel).
/// - Delta (`BatchSpan::Changes`): `changed_after` (read as local time of
///   the company, minus a slack for the undocumented zone) with
///   `with_deleted=1`, plus the last `recheck_days` local days again.
/// - The probe: `total_count` of the range with `count=1` (one request).
/// - Day counts: the records of the range page by page, deleted ones left
///   out.
#[derive(Debug)]
pub struct YclientsRecords {
    api: Arc<YclientsApi>,
    company_id: u64,
    config: Arc<YclientsConfig>,
}

impl YclientsRecords {
    /// The records source of `company_id`, using `api` (shared by every
    /// company synced with the same credentials).
    pub fn new(api: Arc<YclientsApi>, config: Arc<YclientsConfig>, company_id: u64) -> Self {
        Self {
            api,
            company_id,
            config,
        }
    }

    /// `yclients:<company>/records`.
    pub fn stream_id(company_id: u64) -> StreamId {
        StreamId::new(format!("yclients:{company_id}"), "records")
    }

    /// The company.
    pub fn company_id(&self) -> u64 {
        self.company_id
    }

    fn path(&self) -> String {
        format!("/records/{}", self.company_id)
    }

    fn window_query(&self, range: DayRange, deleted: bool) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("start_date", range.first.format("%Y-%m-%d").to_string()),
            ("end_date", range.last.format("%Y-%m-%d").to_string()),
        ];
        if deleted && self.config.include_deleted {
            q.push(("with_deleted", "1".into()));
        }
        q
    }

    fn changes_query(&self, since: DateTime<Utc>) -> Vec<(&'static str, String)> {
        let mut q = vec![("changed_after", self.changed_after_param(since))];
        if self.config.include_deleted {
            q.push(("with_deleted", "1".into()));
        }
        q
    }

    /// The last `recheck_days` local days before `until`.
    fn recheck_range(&self, until: DateTime<Utc>) -> Option<DayRange> {
        if self.config.recheck_days == 0 {
            return None;
        }
        let today = until.with_timezone(&self.config.tz).date_naive();
        let first = today - ChronoDuration::days(i64::from(self.config.recheck_days) - 1);
        DayRange::new(first, today)
    }

    /// One page of `GET /records` with `query`: its items and the total.
    async fn page(
        &self,
        ctx: &FetchContext,
        query: &[(&'static str, String)],
        page: u64,
        count: u32,
    ) -> Result<(Vec<Value>, Option<u64>)> {
        let mut q = query.to_vec();
        q.push(("page", page.to_string()));
        q.push(("count", count.to_string()));
        let envelope = self.api.call(ctx, &ApiRequest::get(self.path(), q)).await?;
        let total = envelope.total_count();
        Ok((list_of(envelope.data, "records")?, total))
    }

    /// The further pages after page `page` of a list holding `total` items
    /// (or, without a total, the next page when this one was full).
    fn more_pages(
        &self,
        list: List,
        page: u64,
        total: Option<u64>,
        got: usize,
    ) -> Result<Vec<Cursor>> {
        let count = u64::from(self.config.records_page_size);
        let pages = match total {
            Some(t) => t.div_ceil(count),
            None if got as u64 >= count => page + 1,
            None => page,
        };
        if pages > MAX_PAGES {
            return Err(SyncError::bad_data(format!(
                "records: meta.total_count {} means {pages} pages of {count}, more than {MAX_PAGES}; the server does not page as documented",
                total.unwrap_or(0)
            )));
        }
        if page != 1 {
            // Pages after the first are listed by the first (with a total)
            // or chained one by one (without).
            return Ok(if total.is_none() && pages > page {
                vec![Cursor::new(At {
                    list,
                    page: page + 1,
                    total,
                })]
            } else {
                Vec::new()
            });
        }
        Ok((2..=pages)
            .map(|page| Cursor::new(At { list, page, total }))
            .collect())
    }

    /// The `changed_after` value for changes since `since`: company-local
    /// time without offset (the documented form), moved back by the slack.
    pub fn changed_after_param(&self, since: DateTime<Utc>) -> String {
        changed_after_text(&self.config, since)
    }

    fn records(&self, values: Vec<Value>) -> Result<Vec<Record>> {
        values
            .into_iter()
            .map(|v| record_from_json(v, self.config.tz))
            .collect()
    }
}

/// The `changed_after` value for changes since `since`: company-local time
/// without offset (the documented form), moved back by the configured slack
/// (by default the zone's UTC offset: the zone the server reads it in is
/// not documented).
pub(crate) fn changed_after_text(config: &YclientsConfig, since: DateTime<Utc>) -> String {
    let slack = match config.changed_after_slack {
        Some(s) => ChronoDuration::from_std(s).unwrap_or(ChronoDuration::zero()),
        None => {
            let offset = config.tz.offset_from_utc_datetime(&since.naive_utc()).fix();
            ChronoDuration::seconds(i64::from(offset.local_minus_utc().abs()))
        }
    };
    let at = since.checked_sub_signed(slack).unwrap_or(since);
    at.with_timezone(&config.tz)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// `data` as a list; `null` is an empty list.
pub(crate) fn list_of(data: Value, what: &str) -> Result<Vec<Value>> {
    match data {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        other => Err(SyncError::bad_data(format!(
            "{what}: data is not a list but {}",
            match other {
                Value::Object(_) => "an object",
                Value::String(_) => "a string",
                _ => "a scalar",
            }
        ))),
    }
}

#[async_trait]
impl Source for YclientsRecords {
    fn info(&self) -> SourceInfo {
        SourceInfo::days(
            Self::stream_id(self.company_id),
            self.config.tz,
            Windows::ByDensity {
                page_size: self.config.records_page_size,
                max_pages: WINDOW_PAGES,
            },
        )
        .with_limits(LIMITS)
        .with_budget_key(self.api.budget_key())
        .with_cost(FetchCost {
            login: self.api.login_requests(),
            ..FetchCost::default()
        })
        .with_delta()
        .with_probe()
        .with_day_counts()
    }

    async fn login(&self, ctx: &FetchContext) -> Result<()> {
        self.api.login(ctx).await
    }

    async fn fetch_page(
        &self,
        batch: &Batch,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Page> {
        let count = self.config.records_page_size;
        match &batch.span {
            BatchSpan::Days { range, .. } => {
                let at = match cursor {
                    Some(c) => c.get::<At>()?,
                    None => At::first(List::Window),
                };
                let query = self.window_query(*range, true);
                let (items, total) = self.page(ctx, &query, at.page, count).await?;
                at.check(total)?;
                let more = self.more_pages(List::Window, at.page, total, items.len())?;
                Ok(Page {
                    records: self.records(items)?,
                    more,
                    total: if at.page == 1 { total } else { None },
                })
            }
            BatchSpan::Changes { since, until } => {
                let at = match cursor {
                    Some(c) => c.get::<At>()?,
                    None => At::first(List::Changes),
                };
                let recheck = self.recheck_range(*until);
                let query = match (at.list, recheck) {
                    (List::Recheck, Some(range)) => self.window_query(range, true),
                    _ => self.changes_query(*since),
                };
                let (items, total) = self.page(ctx, &query, at.page, count).await?;
                at.check(total)?;
                let mut more = self.more_pages(at.list, at.page, total, items.len())?;
                if at.list == List::Changes && at.page == 1 && recheck.is_some() {
                    more.push(Cursor::new(At::first(List::Recheck)));
                }
                Ok(Page {
                    records: self.records(items)?,
                    more,
                    total: None,
                })
            }
            other => Err(SyncError::invalid_input(format!(
                "the records stream is cut into days, not {other}"
            ))),
        }
    }

    async fn probe(&self, range: DayRange, ctx: &FetchContext) -> Result<Option<Probe>> {
        let (_, total) = self
            .page(ctx, &self.window_query(range, true), 1, 1)
            .await?;
        let items = total
            .ok_or_else(|| SyncError::bad_data("records: the answer has no meta.total_count"))?;
        Ok(Some(Probe {
            items,
            days: u64::try_from(range.len()).unwrap_or(u64::MAX),
        }))
    }

    async fn day_counts(
        &self,
        range: DayRange,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Option<DayCounts>> {
        let at = match cursor {
            Some(c) => c.get::<At>()?,
            None => At::first(List::Window),
        };
        let page = at.page;
        let count = self.config.records_page_size;
        let (items, total) = self
            .page(ctx, &self.window_query(range, false), page, count)
            .await?;
        at.check(total)?;
        let more = self.more_pages(List::Window, page, total, items.len())?;
        let mut counts = BTreeMap::new();
        for r in self.records(items)? {
            if let (false, Unit::Day(day)) = (r.deleted, r.unit) {
                if range.contains(day) {
                    *counts.entry(day).or_insert(0) += 1;
                }
            }
        }
        Ok(Some(DayCounts { counts, more }))
    }
}
