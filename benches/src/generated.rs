//! A source that makes YClients-like records on the fly, deterministically,
//! batch by batch: for measuring the engine and the store without a
//! simulator holding the data in the same process.

use async_trait::async_trait;
use chrono::{Days, NaiveDate, TimeZone};
use serde_json::{json, Value};
use sync_core::{
    Batch, BatchSpan, FetchContext, RateLimits, Record, Result, Source, SourceInfo, StreamId,
    SyncError, Target, Tz,
};

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
        let last = self.first_day + Days::new(self.days() - 1);
        Target::Days {
            range: sync_core::DayRange {
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

    fn day_records(&self, day: NaiveDate) -> Result<Vec<Record>> {
        let Some(offset) = u64::try_from((day - self.first_day).num_days()).ok() else {
            return Ok(Vec::new());
        };
        let start = offset.saturating_mul(self.per_day);
        let end = (start + self.per_day).min(self.records);
        (start..end)
            .map(|i| sync_source_yclients::model::record_from_json(self.payload(i, day), self.tz))
            .collect()
    }
}

#[async_trait]
impl Source for GeneratedRecords {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            stream: self.stream.clone(),
            limits: RateLimits::UNLIMITED,
            supports_delta: false,
            supports_day_counts: false,
            requests_per_unit: 1.0,
        }
    }

    async fn fetch(&self, batch: &Batch, ctx: &FetchContext) -> Result<Vec<Record>> {
        let BatchSpan::Days { range, .. } = &batch.span else {
            return Err(SyncError::invalid_input("generated records come by days"));
        };
        let mut out = Vec::new();
        for day in range.iter() {
            // One "request" per day, so the run counts requests as usual.
            ctx.acquire().await?;
            out.extend(self.day_records(day)?);
        }
        Ok(out)
    }
}
