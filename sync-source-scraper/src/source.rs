//! [`ScraperSource`]: kennel boardings read from the booking site's pages.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use sync_core::batch::local_day_of;
use sync_core::{
    Batch, BatchSpan, DayRange, ExistingQuery, FetchContext, Record, Result, Source, SourceInfo,
    StoredRecord, StreamId, SyncError, Unit,
};
use url::Url;

use crate::client::{Fetched, SiteClient};
use crate::config::ScraperConfig;
use crate::site::payload::boarding_payload;
use crate::site::{Detail, DetailContext, ListRow};

/// The entity the source produces.
pub const ENTITY: &str = "boarding";
/// The stream name within the source.
pub const STREAM: &str = "boardings";
/// Payload fields left out of the content hash: they change without the
/// boarding changing.
pub const VOLATILE_FIELDS: &[&str] = &["list_fingerprint", "detail_path"];

/// Ids per `ExistingQuery::ByIds` call.
const IDS_PER_QUERY: usize = 500;

/// Imports kennel boardings by scraping the booking site.
///
/// For a batch of local days it reads the seven-day schedule pages that
/// cover them (each once, following the next links), then each listed
/// appointment's detail page, and returns one `boarding` record per boarding
/// whose local check-in day is in the batch (so every boarding belongs to
/// exactly one batch, whatever weeks it spans). It skips a detail page when
/// the stored copy was made from an identical list row, and re-checks stored
/// boardings that no longer appear on the list: a 404 or a cancelled status
/// marks them deleted.
///
/// Payload: the boarding payload of the `site` module (`appointment_id`,
/// `service_type`, `status`, `pets`, `client`, `check_in`, `check_out`,
/// `check_in_day`, the AM/PM labels, `dates_from`, `duration`, `price`,
/// `notes`, `fields`), plus `event_type` from the list and the volatile
/// `list_fingerprint` and `detail_path` (the detail page to re-check when
/// the appointment leaves the list).
#[derive(Debug)]
pub struct ScraperSource {
    config: ScraperConfig,
    client: SiteClient,
    stream: StreamId,
}

impl ScraperSource {
    /// A source for `config` (validated; selectors compiled).
    pub fn new(config: ScraperConfig) -> Result<Self> {
        config.validate()?;
        let client = SiteClient::new(&config)?;
        let stream = StreamId::new(config.source_name(), STREAM);
        Ok(Self {
            config,
            client,
            stream,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ScraperConfig {
        &self.config
    }

    /// The stream this source fills (`kennel:<host>/boardings`).
    pub fn stream(&self) -> &StreamId {
        &self.stream
    }

    /// Every schedule row shown in the windows that cover `range`, by id.
    async fn list_rows(
        &self,
        ctx: &FetchContext,
        range: DayRange,
    ) -> Result<BTreeMap<String, ListRow>> {
        let site = self.client.site();
        let base = self.client.base_url();
        let mut start = range.first;
        let mut url = site.week_url(base, start)?;
        let mut visited: HashSet<Url> = HashSet::new();
        let mut rows = BTreeMap::new();
        loop {
            visited.insert(url.clone());
            let body = match self.client.get(ctx, &url).await? {
                Fetched::Page(body) => body,
                Fetched::NotFound => {
                    return Err(SyncError::bad_data(format!(
                        "schedule page {url} answered 404"
                    )))
                }
            };
            let page = site.parse_schedule(&body, &url)?;
            tracing::debug!(url = %url, rows = page.rows.len(), "schedule page");
            for row in page.rows {
                rows.entry(row.id.clone()).or_insert(row);
            }
            let window_end = start + ChronoDuration::days(6);
            if window_end >= range.last {
                return Ok(rows);
            }
            // Follow the next link when it moves forward without skipping
            // days; otherwise (missing, pointing to itself or back, or
            // skipping) build the next window's URL ourselves.
            let expected = start + ChronoDuration::days(7);
            let followed = page.next.and_then(|next| {
                let next_start = site.week_start_of(&next)?;
                (next_start > start && next_start <= expected && !visited.contains(&next))
                    .then_some((next, next_start))
            });
            (url, start) = match followed {
                Some(found) => found,
                None => {
                    tracing::warn!(url = %url, "next link missing or not forward; building the next week's URL");
                    (site.week_url(base, expected)?, expected)
                }
            };
        }
    }

    /// Stored boardings of the batch's days, plus stored copies of listed
    /// appointments that belong to other days.
    async fn stored(
        &self,
        ctx: &FetchContext,
        range: DayRange,
        rows: &BTreeMap<String, ListRow>,
    ) -> Result<(Vec<StoredRecord>, HashMap<String, StoredRecord>)> {
        let in_days = ctx
            .existing(&ExistingQuery::InDays {
                entity: ENTITY.into(),
                range,
            })
            .await?;
        let mut by_id: HashMap<String, StoredRecord> = in_days
            .iter()
            .map(|r| (r.external_id.clone(), r.clone()))
            .collect();
        if self.config.reuse_unchanged {
            let unknown: Vec<String> = rows
                .keys()
                .filter(|id| !by_id.contains_key(*id))
                .cloned()
                .collect();
            for ids in unknown.chunks(IDS_PER_QUERY) {
                let found = ctx
                    .existing(&ExistingQuery::ByIds {
                        entity: ENTITY.into(),
                        ids: ids.to_vec(),
                    })
                    .await?;
                by_id.extend(found.into_iter().map(|r| (r.external_id.clone(), r)));
            }
        }
        Ok((in_days, by_id))
    }

    fn record(&self, id: &str, detail: &Detail, extra: Extra<'_>) -> Result<Record> {
        let Some(stay) = detail.stay else {
            return Err(SyncError::bad_data(format!(
                "boarding {id} has no check-in ({})",
                extra.detail_path
            )));
        };
        let mut payload = boarding_payload(id, detail, self.config.tz);
        if let Some(map) = payload.as_object_mut() {
            map.insert("event_type".into(), json!(extra.event_type));
            map.insert("list_fingerprint".into(), json!(extra.fingerprint));
            map.insert("detail_path".into(), json!(extra.detail_path));
        }
        let day = local_day_of(stay.check_in, self.config.tz);
        Ok(
            Record::with_volatile(ENTITY, id, Unit::Day(day), payload, VOLATILE_FIELDS)
                .occurred_at(stay.check_in),
        )
    }

    /// The detail page of an appointment: `None` when it is gone (404).
    async fn detail(
        &self,
        ctx: &FetchContext,
        url: &Url,
        window_start: NaiveDate,
    ) -> Result<Option<Detail>> {
        let dctx = DetailContext {
            tz: self.config.tz,
            window_start,
        };
        match self.client.get(ctx, url).await? {
            Fetched::NotFound => Ok(None),
            Fetched::Page(body) => Ok(Some(self.client.site().parse_detail(&body, url, dctx)?)),
        }
    }

    /// A stored boarding that the list no longer shows: its detail page
    /// decides. Gone, cancelled or no longer a boarding → deleted.
    async fn recheck(
        &self,
        ctx: &FetchContext,
        stored: &StoredRecord,
        window_start: NaiveDate,
    ) -> Result<Option<Record>> {
        let p = &stored.payload;
        let path = p.get("detail_path").and_then(Value::as_str);
        let Some(path) = path else {
            tracing::warn!(id = %stored.external_id, "stored boarding has no detail_path; cannot re-check it");
            return Ok(None);
        };
        let url = self
            .client
            .site()
            .detail_url(self.client.base_url(), path)?;
        let extra = Extra {
            event_type: p.get("event_type").and_then(Value::as_str),
            fingerprint: p
                .get("list_fingerprint")
                .and_then(Value::as_str)
                .unwrap_or(""),
            detail_path: path,
        };
        Ok(Some(match self.detail(ctx, &url, window_start).await? {
            Some(d) if d.classification.is_boarding() => {
                self.record(&stored.external_id, &d, extra)?
            }
            Some(d) => {
                tracing::debug!(id = %stored.external_id, why = %d.classification, "stored boarding is no longer one");
                from_stored(stored).deleted(true)
            }
            None => from_stored(stored).deleted(true),
        }))
    }
}

/// List-side fields of a record.
struct Extra<'a> {
    event_type: Option<&'a str>,
    fingerprint: &'a str,
    detail_path: &'a str,
}

/// A record rebuilt from its stored copy (hash recomputed from the payload).
fn from_stored(s: &StoredRecord) -> Record {
    let mut r = Record::with_volatile(
        ENTITY,
        s.external_id.clone(),
        s.unit,
        s.payload.clone(),
        VOLATILE_FIELDS,
    )
    .deleted(s.deleted);
    r.occurred_at = s
        .payload
        .get("check_in")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    r
}

fn in_range(unit: Unit, range: DayRange) -> bool {
    matches!(unit, Unit::Day(d) if range.first <= d && d <= range.last)
}

fn detail_path_of(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

#[async_trait]
impl Source for ScraperSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            stream: self.stream.clone(),
            limits: self.config.limits,
            supports_delta: false,
            supports_day_counts: false,
            // A seventh of a week page plus the detail pages of a day's
            // boardings and daycare entries, on a first import.
            requests_per_unit: 8.0,
        }
    }

    async fn authenticate(&self, ctx: &FetchContext) -> Result<()> {
        self.client.login(ctx).await
    }

    fn session_is_stale(&self) -> bool {
        self.client.session_is_stale()
    }

    async fn fetch(&self, batch: &Batch, ctx: &FetchContext) -> Result<Vec<Record>> {
        let (range, tz) = match &batch.span {
            BatchSpan::Days { range, tz } => (*range, *tz),
            other => {
                return Err(SyncError::invalid_input(format!(
                    "the kennel source fetches day batches only, not {other}"
                )))
            }
        };
        check_tz(tz, self.config.tz)?;
        self.client.ensure_fresh(ctx).await?;

        let rows = self.list_rows(ctx, range).await?;
        let (in_days, stored) = self.stored(ctx, range, &rows).await?;
        let site = self.client.site();
        let mut out: BTreeMap<String, Record> = BTreeMap::new();
        let mut details = 0usize;

        for (id, row) in &rows {
            let known = stored.get(id);
            let row_cancelled = row.status.as_deref().is_some_and(|s| site.is_cancelled(s));
            if let Some(s) = known.filter(|s| {
                self.config.reuse_unchanged
                    && s.payload.get("list_fingerprint").and_then(Value::as_str)
                        == Some(row.fingerprint.as_str())
                    && s.deleted == row_cancelled
            }) {
                if in_range(s.unit, range) {
                    out.insert(id.clone(), from_stored(s));
                }
                continue;
            }
            details += 1;
            let detail_path = detail_path_of(&row.detail_url);
            match self.detail(ctx, &row.detail_url, range.first).await? {
                // Gone between the list and the detail page.
                None => {
                    if let Some(s) = known.filter(|s| in_range(s.unit, range)) {
                        out.insert(id.clone(), from_stored(s).deleted(true));
                    }
                }
                Some(d) if !d.classification.is_boarding() => {
                    tracing::debug!(id = %id, why = %d.classification, "skipped");
                    // Was a boarding, is not any more.
                    if let Some(s) = known.filter(|s| in_range(s.unit, range) && !s.deleted) {
                        out.insert(id.clone(), from_stored(s).deleted(true));
                    }
                }
                Some(d) => {
                    let extra = Extra {
                        event_type: row.event_type.as_deref(),
                        fingerprint: &row.fingerprint,
                        detail_path: &detail_path,
                    };
                    let record = self.record(id, &d, extra)?;
                    // Membership by check-in day: a boarding that began
                    // before the batch belongs to an earlier one. One that
                    // moved away is still written, so its stored copy follows.
                    if in_range(record.unit, range)
                        || known.is_some_and(|s| in_range(s.unit, range))
                    {
                        out.insert(id.clone(), record);
                    }
                }
            }
        }

        // Stored boardings of these days that the list no longer shows.
        let mut rechecked = 0usize;
        for s in in_days
            .iter()
            .filter(|s| !s.deleted && !rows.contains_key(&s.external_id))
        {
            rechecked += 1;
            if let Some(record) = self.recheck(ctx, s, range.first).await? {
                out.insert(s.external_id.clone(), record);
            }
        }
        tracing::debug!(
            batch = %batch.span,
            listed = rows.len(),
            details,
            rechecked,
            records = out.len(),
            "batch fetched"
        );
        Ok(out.into_values().collect())
    }
}

fn check_tz(batch: Tz, kennel: Tz) -> Result<()> {
    if batch != kennel {
        return Err(SyncError::invalid_input(format!(
            "the batch's time zone {batch} is not the kennel's ({kennel}); days would be cut wrongly"
        )));
    }
    Ok(())
}
