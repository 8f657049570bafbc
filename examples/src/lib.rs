//! Examples of embedding `sync-core`.
//!
//! [`CsvBookingsSource`] is a complete custom [`Source`] in well under 100
//! lines: swap it in wherever a YClients or scraper source would go. The
//! examples in `examples/` run it through the engine:
//!
//! - `cargo run -p sync-examples --example custom_source`
//! - `cargo run -p sync-examples --example scheduled_service`

use chrono::NaiveDate;
use serde_json::json;
use sync_core::async_trait;
use sync_core::{
    Batch, BatchSpan, Cursor, DayCounts, DayRange, FetchContext, Page, RateLimits, Record, Result,
    Source, SourceInfo, StreamId, SyncError, Tz, Unit, Windows,
};

/// A source reading bookings from CSV text: `id,day,client,amount` per line,
/// each day a local day in the business's time zone.
///
/// Real sources make HTTP requests; this one shows the contract: describe
/// the stream, its days and limits in [`Source::info`], call
/// [`FetchContext::request`] right before each request, and answer one
/// request per call (no retrying, no waiting: the engine wraps the source
/// with retries, sessions and pacing).
#[derive(Debug, Clone)]
pub struct CsvBookingsSource {
    csv: String,
    tz: Tz,
}

impl CsvBookingsSource {
    /// A source over `csv` (no header line) whose days are local to `tz`.
    pub fn new(csv: impl Into<String>, tz: Tz) -> Self {
        Self {
            csv: csv.into(),
            tz,
        }
    }

    /// Every booking of `range`, read from the whole file.
    fn bookings(&self, range: DayRange) -> Result<Vec<(String, NaiveDate, String, f64)>> {
        let mut out = Vec::new();
        for line in self.csv.lines().filter(|l| !l.trim().is_empty()) {
            let bad = |what: &str| SyncError::bad_data(format!("line {line:?}: {what}"));
            let mut f = line.split(',').map(str::trim);
            let id = f
                .next()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| bad("missing id"))?;
            let day: NaiveDate = f
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("bad day"))?;
            let client = f.next().ok_or_else(|| bad("missing client"))?;
            let amount = f
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("bad amount"))?;
            if range.contains(day) {
                out.push((id.to_string(), day, client.to_string(), amount));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Source for CsvBookingsSource {
    fn info(&self) -> SourceInfo {
        let stream = StreamId::new("csv:bookings", "bookings");
        SourceInfo::days(stream, self.tz, Windows::Fixed { days: 7 })
            .with_limits(RateLimits::new(Some(10), None))
            .with_day_counts()
    }

    async fn fetch_page(
        &self,
        batch: &Batch,
        _: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Page> {
        let BatchSpan::Days { range, .. } = batch.span else {
            return Err(SyncError::invalid_input("CSV bookings are synced by day"));
        };
        ctx.request().await?; // one "request" per window: a single page
        let records = self
            .bookings(range)?
            .into_iter()
            .map(|(id, day, client, amount)| {
                let payload = json!({"id": id, "day": day, "client": client, "amount": amount});
                Record::new("booking", id, Unit::Day(day), payload)
            });
        Ok(Page::last(records.collect()))
    }

    async fn day_counts(
        &self,
        range: DayRange,
        _: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Option<DayCounts>> {
        ctx.request().await?;
        let mut counts = DayCounts::default();
        for (_, day, _, _) in self.bookings(range)? {
            *counts.counts.entry(day).or_insert(0) += 1;
        }
        Ok(Some(counts))
    }
}

/// A few weeks of sample bookings, one line per booking.
pub fn sample_csv() -> String {
    let start = NaiveDate::from_ymd_opt(2024, 9, 1).unwrap_or_default();
    (0..60u32)
        .map(|i| {
            let day = start + chrono::Days::new(u64::from(i / 2));
            format!("b{i},{day},client-{},{}.50\n", i % 7, 20 + i)
        })
        .collect()
}
