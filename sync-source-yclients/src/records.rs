//! The records (appointments) stream: `yclients:<company>/records`, one unit
//! per local visit day.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Offset, TimeZone, Utc};
use serde_json::{json, Value};
use sync_core::plan::{compare_strategies, Preset, Strategy, StrategyComparison, Workload};
use sync_core::{
    Batch, BatchSpan, DayRange, FetchContext, RateLimits, Record, Result, Source, SourceInfo,
    StreamId, SyncError,
};
use tokio::sync::Mutex;

use crate::clients::list_client_ids;
use crate::config::{RecordsStrategy, YclientsConfig};
use crate::core::{ApiRequest, YclientsApi};
use crate::model::{record_from_json, ApiRecord};
use crate::LIMITS;

/// Visits a page of the visit-history search holds (documented).
pub const VISITS_PAGE_SIZE: u64 = 25;
// A guard against a server that never stops paging.
const MAX_PAGES: u32 = 1_000_000;

/// What a cheap probe learned about a company: totals the planner prices
/// the strategies with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Clients of the company (`meta.total_count` of the search).
    pub clients: u64,
    /// Records in the probed range.
    pub records: u64,
}

/// Records of one company, by local visit day (`Target::Days`).
///
/// - Full sync of a day batch: `GET /records/{company}?start_date&end_date
///   &page&count[&with_deleted=1]`, paged until `meta.total_count`; or, with
///   [`RecordsStrategy::ClientHistory`], the visit history of every client.
/// - Delta (`BatchSpan::Changes`): `changed_after` (read as local time of
///   the company, minus a slack for the undocumented zone) with
///   `with_deleted=1`, plus the last `recheck_days` local days again.
/// - `day_counts`: the records endpoint over the range, deleted ones left out.
#[derive(Debug)]
pub struct YclientsRecords {
    api: Arc<YclientsApi>,
    company_id: u64,
    config: Arc<YclientsConfig>,
    strategy: RwLock<RecordsStrategy>,
    client_ids: Mutex<Option<Arc<Vec<i64>>>>,
}

impl YclientsRecords {
    /// The records source of `company_id`, using `api` (shared by every
    /// company synced with the same credentials).
    pub fn new(api: Arc<YclientsApi>, config: Arc<YclientsConfig>, company_id: u64) -> Self {
        let strategy = RwLock::new(config.records_strategy);
        Self {
            api,
            company_id,
            config,
            strategy,
            client_ids: Mutex::new(None),
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

    /// The strategy used for day batches.
    pub fn strategy(&self) -> RecordsStrategy {
        *self.strategy.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the strategy used for day batches.
    pub fn set_strategy(&self, strategy: RecordsStrategy) {
        *self.strategy.write().unwrap_or_else(|e| e.into_inner()) = strategy;
    }

    /// Two cheap requests: the number of clients, and of records in `range`.
    pub async fn probe(&self, range: DayRange, ctx: &FetchContext) -> Result<Probe> {
        let clients = self
            .api
            .call(
                ctx,
                &ApiRequest::post(
                    format!("/company/{}/clients/search", self.company_id),
                    json!({"page": 1, "page_size": 1, "fields": ["id"], "order_by": "id", "order_by_direction": "asc", "filters": []}),
                ),
            )
            .await?
            .total_count()
            .ok_or_else(|| SyncError::bad_data("clients search: no meta.total_count"))?;
        let mut q = self.window_query(range);
        q.push(("page", "1".into()));
        q.push(("count", "1".into()));
        let records = self
            .api
            .call(ctx, &ApiRequest::get(self.records_path(), q))
            .await?
            .total_count()
            .ok_or_else(|| SyncError::bad_data("records: no meta.total_count"))?;
        Ok(Probe { clients, records })
    }

    /// Prices both strategies for `range_days` days cut into batches of
    /// `batch_days`, at `preset` of `limits`.
    pub fn price(
        &self,
        probe: &Probe,
        range_days: u64,
        batch_days: u32,
        limits: &RateLimits,
        preset: &Preset,
    ) -> Result<StrategyComparison> {
        let windows = range_days.max(1).div_ceil(u64::from(batch_days.max(1)));
        let by_window = Strategy::new(
            "records by date window",
            Workload::Paged {
                records: probe.records,
                page_size: self.config.records_page_size,
                windows,
            },
        );
        // Per client and window: at least one request, one more per 25
        // visits; plus the id listing, shared by all.
        let clients = probe.clients.max(1) as f64;
        let per_window = probe.records as f64 / clients / windows as f64;
        let pages = (per_window / VISITS_PAGE_SIZE as f64).ceil().max(1.0);
        let per_client = windows as f64 * pages + 1.0 / f64::from(self.config.clients_page_size);
        let history = Strategy::new(
            "visit history per client",
            Workload::PerItem {
                items: probe.clients.max(1),
                requests_per_item: per_client,
            },
        );
        compare_strategies(limits, preset, &[by_window, history])
    }

    /// Probes the company, prices both strategies, and uses the cheapest
    /// from now on. With no client, records by date window.
    pub async fn choose_strategy(
        &self,
        range: DayRange,
        batch_days: u32,
        preset: &Preset,
        ctx: &FetchContext,
    ) -> Result<(RecordsStrategy, StrategyComparison)> {
        let probe = self.probe(range, ctx).await?;
        let comparison = self.price(&probe, range.len(), batch_days, &LIMITS, preset)?;
        let chosen = if probe.clients == 0 || comparison.cheapest_index == 0 {
            RecordsStrategy::DateWindow
        } else {
            RecordsStrategy::ClientHistory
        };
        tracing::info!(
            company = self.company_id,
            clients = probe.clients,
            records = probe.records,
            strategy = ?chosen,
            "records strategy chosen"
        );
        self.set_strategy(chosen);
        Ok((chosen, comparison))
    }

    fn records_path(&self) -> String {
        format!("/records/{}", self.company_id)
    }

    fn window_query(&self, range: DayRange) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("start_date", range.first.format("%Y-%m-%d").to_string()),
            ("end_date", range.last.format("%Y-%m-%d").to_string()),
        ];
        if self.config.include_deleted {
            q.push(("with_deleted", "1".into()));
        }
        q
    }

    /// Pages `GET /records` with `query` until `meta.total_count` is reached.
    async fn page_records(
        &self,
        ctx: &FetchContext,
        query: Vec<(&'static str, String)>,
    ) -> Result<Vec<Value>> {
        let count = self.config.records_page_size;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut page: u32 = 1;
        loop {
            let mut q = query.clone();
            q.push(("page", page.to_string()));
            q.push(("count", count.to_string()));
            let envelope = self
                .api
                .call(ctx, &ApiRequest::get(self.records_path(), q))
                .await?;
            let total = envelope.total_count();
            let items = list_of(envelope.data, "records")?;
            let n = items.len();
            let before = out.len();
            for item in items {
                // A record that moved to a later page while we paged is kept once.
                let first_time = item.get("id").is_none_or(|id| seen.insert(id.to_string()));
                if first_time {
                    out.push(item);
                }
            }
            // A page of nothing new means the server's paging does not
            // advance: stop instead of asking for the same page forever.
            if n > 0 && out.len() == before {
                return Err(SyncError::bad_data(format!(
                    "records: page {page} repeats only records already seen; the server's paging does not advance"
                )));
            }
            let through = u64::from(page) * u64::from(count);
            let done = match total {
                Some(t) => through >= t || n == 0,
                None => n < count as usize,
            };
            if done {
                return Ok(out);
            }
            page += 1;
            if page > MAX_PAGES {
                return Err(SyncError::bad_data(
                    "records: the server keeps answering more pages",
                ));
            }
        }
    }

    async fn fetch_window(&self, range: DayRange, ctx: &FetchContext) -> Result<Vec<Value>> {
        self.page_records(ctx, self.window_query(range)).await
    }

    async fn fetch_history(&self, range: DayRange, ctx: &FetchContext) -> Result<Vec<Value>> {
        let ids = self.cached_client_ids(ctx).await?;
        let (first, last) = (
            range.first.format("%Y-%m-%d").to_string(),
            range.last.format("%Y-%m-%d").to_string(),
        );
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for &client in ids.iter() {
            let mut from = Value::String(first.clone());
            let mut to = Value::String(last.clone());
            for _ in 0..MAX_PAGES {
                let body = json!({
                    "client_id": client, "client_phone": null, "from": from, "to": to,
                    "payment_statuses": [], "attendance": null,
                });
                let envelope = self
                    .api
                    .call(
                        ctx,
                        &ApiRequest::post(
                            format!("/company/{}/clients/visits/search", self.company_id),
                            body,
                        ),
                    )
                    .await?;
                let items = match envelope.data {
                    Value::Object(mut m) => {
                        list_of(m.remove("records").unwrap_or(Value::Null), "visit history")?
                    }
                    other => list_of(other, "visit history")?,
                };
                for item in items {
                    let in_range = serde_json::from_value::<ApiRecord>(item.clone())
                        .ok()
                        .and_then(|r| r.local_day(self.config.tz))
                        .is_some_and(|d| range.contains(d));
                    let id = item.get("id").map(Value::to_string).unwrap_or_default();
                    if in_range && seen.insert(id) {
                        out.push(item);
                    }
                }
                let cursor = envelope
                    .meta
                    .get("dateCursor")
                    .cloned()
                    .unwrap_or(Value::Null);
                let Some(next_to) = cursor.get("to").filter(|v| !v.is_null()).cloned() else {
                    break;
                };
                if next_to == to {
                    return Err(SyncError::bad_data(
                        "visit history: the date cursor does not move",
                    ));
                }
                if let Some(f) = cursor.get("from").filter(|v| !v.is_null()) {
                    from = f.clone();
                }
                to = next_to;
            }
        }
        Ok(out)
    }

    async fn cached_client_ids(&self, ctx: &FetchContext) -> Result<Arc<Vec<i64>>> {
        let mut cache = self.client_ids.lock().await;
        if let Some(ids) = cache.as_ref() {
            return Ok(ids.clone());
        }
        let ids = Arc::new(
            list_client_ids(
                &self.api,
                self.company_id,
                self.config.clients_page_size,
                ctx,
                None,
            )
            .await?,
        );
        *cache = Some(ids.clone());
        Ok(ids)
    }

    /// The `changed_after` value for changes since `since`: company-local
    /// time without offset (the documented form), moved back by the slack.
    pub fn changed_after_param(&self, since: DateTime<Utc>) -> String {
        let slack = match self.config.changed_after_slack {
            Some(s) => ChronoDuration::from_std(s).unwrap_or(ChronoDuration::zero()),
            None => {
                let offset = self
                    .config
                    .tz
                    .offset_from_utc_datetime(&since.naive_utc())
                    .fix();
                ChronoDuration::seconds(i64::from(offset.local_minus_utc().abs()))
            }
        };
        let at = since.checked_sub_signed(slack).unwrap_or(since);
        at.with_timezone(&self.config.tz)
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    }

    async fn fetch_changes(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        ctx: &FetchContext,
    ) -> Result<Vec<Value>> {
        let mut q = vec![("changed_after", self.changed_after_param(since))];
        if self.config.include_deleted {
            q.push(("with_deleted", "1".into()));
        }
        let mut values = self.page_records(ctx, q).await?;
        if self.config.recheck_days > 0 {
            let today = until.with_timezone(&self.config.tz).date_naive();
            let first = today - ChronoDuration::days(i64::from(self.config.recheck_days) - 1);
            if let Some(range) = DayRange::new(first, today) {
                values.extend(self.fetch_window(range, ctx).await?);
            }
        }
        Ok(values)
    }

    fn to_records(&self, values: Vec<Value>) -> Result<Vec<Record>> {
        // The last copy of a record wins (the re-check window is fetched last).
        let mut by_id: HashMap<String, usize> = HashMap::new();
        let mut out: Vec<Record> = Vec::with_capacity(values.len());
        for v in values {
            let r = record_from_json(v, self.config.tz)?;
            match by_id.get(&r.external_id) {
                Some(&i) => out[i] = r,
                None => {
                    by_id.insert(r.external_id.clone(), out.len());
                    out.push(r);
                }
            }
        }
        Ok(out)
    }
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
        SourceInfo {
            stream: Self::stream_id(self.company_id),
            limits: LIMITS,
            supports_delta: true,
            supports_day_counts: true,
            // About 27 records a day at 200 a page.
            requests_per_unit: 0.15,
        }
    }

    async fn authenticate(&self, ctx: &FetchContext) -> Result<()> {
        self.api.authenticate(ctx).await
    }

    async fn fetch(&self, batch: &Batch, ctx: &FetchContext) -> Result<Vec<Record>> {
        let values = match &batch.span {
            BatchSpan::Days { range, tz } => {
                if *tz != self.config.tz {
                    return Err(SyncError::invalid_input(format!(
                        "the target's time zone {tz} is not the company's ({})",
                        self.config.tz
                    )));
                }
                match self.strategy() {
                    RecordsStrategy::DateWindow => self.fetch_window(*range, ctx).await?,
                    RecordsStrategy::ClientHistory => self.fetch_history(*range, ctx).await?,
                }
            }
            BatchSpan::Changes { since, until } => self.fetch_changes(*since, *until, ctx).await?,
            other => {
                return Err(SyncError::invalid_input(format!(
                    "the records stream is cut into days, not {other}"
                )))
            }
        };
        self.to_records(values)
    }

    async fn day_counts(
        &self,
        range: DayRange,
        ctx: &FetchContext,
    ) -> Result<Option<BTreeMap<NaiveDate, u64>>> {
        let q = vec![
            ("start_date", range.first.format("%Y-%m-%d").to_string()),
            ("end_date", range.last.format("%Y-%m-%d").to_string()),
        ];
        let mut counts = BTreeMap::new();
        for v in self.page_records(ctx, q).await? {
            let r = record_from_json(v, self.config.tz)?;
            if let (false, sync_core::Unit::Day(day)) = (r.deleted, r.unit) {
                if range.contains(day) {
                    *counts.entry(day).or_insert(0) += 1;
                }
            }
        }
        Ok(Some(counts))
    }
}
