//! Examples of embedding `sync-core`.
//!
//! [`CsvBookingsSource`] is a complete custom [`Source`] in well under 100
//! lines: swap it in wherever a YClients or scraper source would go. The
//! examples in `examples/` run it through the engine:
//!
//! - `cargo run -p sync-examples --example custom_source`
//! - `cargo run -p sync-examples --example scheduled_service`

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::NaiveDate;
use serde_json::json;
use sync_core::{
    Batch, BatchSpan, FetchContext, RateLimits, Record, Result, Source, SourceInfo, StreamId,
    SyncError, Unit,
};

/// A source reading bookings from CSV text: `id,day,client,amount` per line.
///
/// Real sources make HTTP requests; this one shows the contract: declare the
/// stream and limits in [`Source::info`], call [`FetchContext::acquire`]
/// before each request, return every record of the batch or an error.
#[derive(Debug, Clone)]
pub struct CsvBookingsSource {
    csv: String,
}

impl CsvBookingsSource {
    /// A source over `csv` (no header line).
    pub fn new(csv: impl Into<String>) -> Self {
        Self { csv: csv.into() }
    }

    fn parse_line(line: &str) -> Result<(String, NaiveDate, String, f64)> {
        let bad = |what: &str| SyncError::bad_data(format!("line {line:?}: {what}"));
        let mut f = line.split(',').map(str::trim);
        let id = f
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("missing id"))?;
        let day = f
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad day"))?;
        let client = f.next().ok_or_else(|| bad("missing client"))?;
        let amount = f
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad amount"))?;
        Ok((id.to_string(), day, client.to_string(), amount))
    }
}

#[async_trait]
impl Source for CsvBookingsSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            stream: StreamId::new("csv:bookings", "bookings"),
            limits: RateLimits::new(Some(10), None),
            supports_delta: false,
            supports_day_counts: true,
            requests_per_unit: 1.0,
        }
    }

    async fn fetch(&self, batch: &Batch, ctx: &FetchContext) -> Result<Vec<Record>> {
        let BatchSpan::Days { range, .. } = &batch.span else {
            return Err(SyncError::invalid_input("CSV bookings are synced by day"));
        };
        ctx.acquire().await?; // one "request" per batch
        let mut records = Vec::new();
        for line in self.csv.lines().filter(|l| !l.trim().is_empty()) {
            let (id, day, client, amount) = Self::parse_line(line)?;
            if range.contains(day) {
                let payload = json!({"id": id, "day": day, "client": client, "amount": amount});
                records.push(Record::new("booking", id, Unit::Day(day), payload));
            }
        }
        Ok(records)
    }

    async fn day_counts(
        &self,
        range: sync_core::DayRange,
        _ctx: &FetchContext,
    ) -> Result<Option<BTreeMap<NaiveDate, u64>>> {
        let mut counts = BTreeMap::new();
        for line in self.csv.lines().filter(|l| !l.trim().is_empty()) {
            let (_, day, _, _) = Self::parse_line(line)?;
            if range.contains(day) {
                *counts.entry(day).or_insert(0) += 1;
            }
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
