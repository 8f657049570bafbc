//! A source that makes YClients-like records on the fly, deterministically,
//! page by page: for measuring the engine and the store without a
//! simulator holding the data in the same process.
//!
//! It describes itself as the YClients records source does: windows sized
//! by density to fill whole pages of [`PAGE_SIZE`], a cheap count probe,
//! and a first page that gives the window's total and lists its other
//! pages.

use async_trait::async_trait;
use chrono::{Days, NaiveDate, TimeZone};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sync_core::{
    Batch, BatchSpan, Cursor, DayRange, FetchContext, Page, Probe, RateLimits, Record, Result,
    Source, SourceInfo, StreamId, SyncError, Target, Tz, Windows,
};

/// Records per page (as YClients' `GET /records` with `count=200`).
pub const PAGE_SIZE: u32 = 200;
/// Most pages a window is planned to fill (as the YClients source).
pub const WINDOW_PAGES: u32 = 5;

/// `records` records spread `per_day` a day over consecutive local days
/// from `first_day` (the last day may hold fewer).
#[derive(Debug, Clone)]
pub struct GeneratedRecords {
    stream: StreamId,
    tz: Tz,
    first_day: NaiveDate,
    per_day: u64,
    records: u64,
}

impl GeneratedRecords {
    /// A source of `records` records, `per_day` a day from 2015-01-01.
    pub fn new(records: u64, per_day: u64) -> Self {
        Self {
            stream: StreamId::new("generated:bench", "records"),
            tz: chrono_tz::Europe::Moscow,
            first_day: NaiveDate::from_ymd_opt(2015, 1, 1).unwrap_or_default(),
            per_day: per_day.max(1),
            records,
        }
    }

    /// How many days the records span.
    pub fn days(&self) -> u64 {
        self.records.div_ceil(self.per_day).max(1)
    }

    /// Every day holding records, as a target.
    pub fn target(&self) -> Target {
        let last = self
            .first_day
            .checked_add_days(Days::new(self.days() - 1))
            .unwrap_or(NaiveDate::MAX);
        Target::Days {
            range: DayRange {
                first: self.first_day,
                last,
            },
            tz: self.tz,
        }
    }

    /// The raw JSON of record `index` on local `day`: the shape
    /// `GET /records` serves (about 600 bytes).
    pub fn payload(&self, index: u64, day: NaiveDate) -> Value {
        let slot = (index % 24) as u32;
        let (hour, minute) = (9 + slot / 2, (slot % 2) * 30);
        let local = day.and_hms_opt(hour, minute, 0).unwrap_or_default();
        let at = self
            .tz
            .from_local_datetime(&local)
            .earliest()
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        let client = 5_000_000 + (index * 7919) % 40_000;
        json!({
            "id": 100_000_000 + index,
            "company_id": 101,
            "staff_id": 10_100 + index % 8,
            "staff": {"id": 10_100 + index % 8, "name": "Алина Мастер"},
            "services": [{"id": 101_001 + index % 12, "title": "Стрижка женская", "cost": 1800, "amount": 1}],
            "client": {"id": client, "name": "Анна Иванова", "phone": format!("+7916{:07}", client % 10_000_000), "email": format!("client{client}@example.test")},
            "date": local.format("%Y-%m-%d %H:%M:%S").to_string(),
            "datetime": at,
            "create_date": "2014-12-20T10:00:00+0300",
            "seance_length": 3600,
            "attendance": 1,
            "visit_id": 1_000_000_000 + index,
            "deleted": index.is_multiple_of(50),
            "last_change_date": "2014-12-21T10:00:00+0300",
            "comment": if index.is_multiple_of(5) { "Первый визит" } else { "" },
        })
    }

    /// The local day of record `index`.
    fn day_of(&self, index: u64) -> NaiveDate {
        self.first_day
            .checked_add_days(Days::new(index / self.per_day))
            .unwrap_or(self.first_day)
    }

    /// The indices of the records on the days of `range`: `start..end`.
    fn indices(&self, range: DayRange) -> (u64, u64) {
        if range.last < self.first_day {
            return (0, 0);
        }
        let offset = |day: NaiveDate| {
            u64::try_from((day - self.first_day).num_days())
                .unwrap_or(0)
                .saturating_mul(self.per_day)
                .min(self.records)
        };
        let start = offset(range.first);
        let end = offset(range.last)
            .saturating_add(self.per_day)
            .min(self.records);
        (start, end.max(start))
    }

    fn record(&self, index: u64) -> Result<Record> {
        let day = self.day_of(index);
        sync_source_yclients::model::record_from_json(self.payload(index, day), self.tz)
    }
}

/// Where a batch's next page starts: the page number (0 is the first).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct At {
    page: u64,
}

#[async_trait]
impl Source for GeneratedRecords {
    fn info(&self) -> SourceInfo {
        SourceInfo::days(
            self.stream.clone(),
            self.tz,
            Windows::ByDensity {
                page_size: PAGE_SIZE,
                max_pages: WINDOW_PAGES,
            },
        )
        .with_limits(RateLimits::UNLIMITED)
        .with_probe()
    }

    async fn fetch_page(
        &self,
        batch: &Batch,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Page> {
        let BatchSpan::Days { range, .. } = &batch.span else {
            return Err(SyncError::invalid_input("generated records come by days"));
        };
        let at = match cursor {
            Some(c) => c.get::<At>()?,
            None => At { page: 0 },
        };
        // One "request" per page, so the run counts requests as usual.
        ctx.request().await?;
        let (start, end) = self.indices(*range);
        let size = u64::from(PAGE_SIZE);
        let from = start.saturating_add(at.page.saturating_mul(size)).min(end);
        let to = from.saturating_add(size).min(end);
        let records = (from..to)
            .map(|i| self.record(i))
            .collect::<Result<Vec<_>>>()?;
        let total = end - start;
        // The first page lists the others, as a paged API's total count
        // does.
        let more = if at.page == 0 {
            (1..total.div_ceil(size))
                .map(|page| Cursor::new(At { page }))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Page {
            records,
            more,
            total: (at.page == 0).then_some(total),
        })
    }

    async fn probe(&self, range: DayRange, ctx: &FetchContext) -> Result<Option<Probe>> {
        ctx.request().await?;
        let (start, end) = self.indices(range);
        Ok(Some(Probe {
            items: end - start,
            days: u64::try_from(range.len()).unwrap_or(u64::MAX),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_core::{SourceExt, Span};

    fn batch(first: NaiveDate, last: NaiveDate) -> Batch {
        Batch::new(
            0,
            BatchSpan::Days {
                range: Span { first, last },
                tz: chrono_tz::Europe::Moscow,
            },
        )
    }

    #[test]
    fn a_window_pages_through_exactly_its_days_records() -> Result<()> {
        let source = GeneratedRecords::new(1_000, 274);
        let ctx = FetchContext::new(source.stream.clone());
        let day = |d: u64| source.first_day + Days::new(d);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| SyncError::fatal(e.to_string()))?;
        rt.block_on(async {
            // Days 1 and 2: records 274..822, three pages.
            let records = source.fetch_batch(&batch(day(1), day(2)), &ctx).await?;
            assert_eq!(records.len(), 548);
            assert_eq!(ctx.meter().requests(), 3);
            let first = source
                .fetch_page(&batch(day(1), day(2)), None, &ctx)
                .await?;
            assert_eq!((first.total, first.more.len()), (Some(548), 2));
            // The last day holds what is left; days past it hold nothing.
            let tail = source.fetch_batch(&batch(day(3), day(400)), &ctx).await?;
            assert_eq!(tail.len(), 1_000 - 3 * 274);
            let before = source
                .fetch_batch(&batch(NaiveDate::MIN, day(0) - Days::new(1)), &ctx)
                .await?;
            assert!(before.is_empty());
            // A page far past the end is empty, not an error.
            let far = Cursor::new(At { page: u64::MAX });
            let page = source
                .fetch_page(&batch(day(0), day(0)), Some(&far), &ctx)
                .await?;
            assert!(page.records.is_empty() && page.more.is_empty());
            let probe = source
                .probe(
                    Span {
                        first: day(0),
                        last: day(9),
                    },
                    &ctx,
                )
                .await?;
            assert_eq!(
                probe,
                Some(Probe {
                    items: 1_000,
                    days: 10
                })
            );
            Ok(())
        })
    }
}
