//! [`ScraperSource`]: kennel boardings read from the booking site's pages,
//! one page per request.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sync_core::plan::local_day_of;
use sync_core::{
    Batch, BatchSpan, Cursor, DayRange, ExistingQuery, FetchContext, FetchCost, Page, Record,
    Result, Source, SourceInfo, StoredRecord, StreamId, SyncError, Unit, Windows,
};
use url::Url;

use crate::client::{Fetched, SiteClient};
use crate::config::ScraperConfig;
use crate::site::{Detail, ListRow};

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
/// A batch is a week of local days (the site shows seven days a page). Its
/// first request reads the schedule page of the week (and a later week when
/// the batch is longer); each listed appointment's detail page is a request
/// of its own, and so is the re-check of a stored boarding the list no
/// longer shows (a 404 or a cancelled status marks it deleted). Each
/// boarding belongs to its local check-in day, so to exactly one batch,
/// whatever weeks it spans. A detail page is skipped when the stored copy
/// was made from an identical list row, unless the batch re-checks stored
/// days (then every detail page is read again).
///
/// Payload: `appointment_id`, `pet`, `client`, `service`, `status`,
/// `check_in` and `check_out` (RFC 3339, UTC), `price`, `notes`,
/// `event_type`, plus the volatile `list_fingerprint` and `detail_path`
/// (the detail page to re-check when the appointment leaves the list).
#[derive(Debug)]
pub struct ScraperSource {
    config: ScraperConfig,
    client: SiteClient,
    stream: StreamId,
}

/// One request of a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Step {
    /// The schedule page of the seven days from `start`; `seen`: the ids
    /// the batch's earlier schedule pages listed.
    Schedule {
        url: String,
        start: NaiveDate,
        seen: BTreeSet<String>,
    },
    /// An appointment's detail page.
    Detail {
        id: String,
        url: String,
        event_type: Option<String>,
        fingerprint: String,
        stored: Option<Copy>,
    },
    /// A stored boarding the list no longer shows.
    Recheck { id: String, stored: Copy },
}

/// What a request needs of a stored boarding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Copy {
    unit: Unit,
    payload: Value,
    deleted: bool,
}

impl From<&StoredRecord> for Copy {
    fn from(s: &StoredRecord) -> Self {
        Self {
            unit: s.unit,
            payload: s.payload.clone(),
            deleted: s.deleted,
        }
    }
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

    fn days(batch: &Batch) -> Result<DayRange> {
        match &batch.span {
            BatchSpan::Days { range, .. } => Ok(*range),
            other => Err(SyncError::invalid_input(format!(
                "the kennel source fetches days, not {other}"
            ))),
        }
    }

    /// A schedule page: its new rows become detail requests (or records
    /// from their stored copies), the next week a request when the batch
    /// goes on, and on the batch's last page the stored boardings the list
    /// no longer shows become re-checks.
    async fn schedule(
        &self,
        batch: &Batch,
        range: DayRange,
        url: &Url,
        start: NaiveDate,
        mut seen: BTreeSet<String>,
        ctx: &FetchContext,
    ) -> Result<Page> {
        let site = self.client.site();
        let body = match self.client.get(ctx, url).await? {
            Fetched::Page(body) => body,
            Fetched::NotFound => {
                return Err(SyncError::bad_data(format!(
                    "schedule page {url} answered 404"
                )))
            }
        };
        let page = site.parse_schedule(&body, url)?;
        tracing::debug!(url = %url, rows = page.rows.len(), "schedule page");
        let rows: Vec<ListRow> = page
            .rows
            .into_iter()
            .filter(|r| !seen.contains(&r.id))
            .collect();
        let stored = self.stored_by_id(ctx, &rows).await?;
        let mut out = Page::default();
        for row in &rows {
            seen.insert(row.id.clone());
            let known = stored.get(&row.id);
            let row_cancelled = row.status.as_deref().is_some_and(|s| site.is_cancelled(s));
            let reusable = known.filter(|s| {
                !batch.recheck
                    && self.config.reuse_unchanged
                    && s.payload.get("list_fingerprint").and_then(Value::as_str)
                        == Some(row.fingerprint.as_str())
                    && s.deleted == row_cancelled
            });
            match reusable {
                Some(s) => {
                    if in_range(s.unit, range) {
                        out.records.push(from_stored(s));
                    }
                }
                None => out.more.push(Cursor::new(Step::Detail {
                    id: row.id.clone(),
                    url: row.detail_url.to_string(),
                    event_type: row.event_type.clone(),
                    fingerprint: row.fingerprint.clone(),
                    stored: known.map(Copy::from),
                })),
            }
        }
        let window_end = start + ChronoDuration::days(6);
        if window_end < range.last {
            // Follow the next link when it moves forward without skipping
            // days; otherwise build the next window's URL ourselves.
            let expected = start + ChronoDuration::days(7);
            let next = page
                .next
                .and_then(|next| {
                    let next_start = site.week_start_of(&next)?;
                    (next_start > start && next_start <= expected && next != *url)
                        .then_some((next, next_start))
                })
                .map_or_else(
                    || {
                        site.week_url(self.client.base_url(), expected)
                            .map(|u| (u, expected))
                    },
                    Ok,
                )?;
            out.more.push(Cursor::new(Step::Schedule {
                url: next.0.to_string(),
                start: next.1,
                seen,
            }));
            return Ok(out);
        }
        // The last schedule page of the batch: stored boardings of its days
        // that no list showed.
        let in_days = ctx
            .existing(&ExistingQuery::InDays {
                entity: ENTITY.into(),
                range,
            })
            .await?;
        for s in in_days
            .iter()
            .filter(|s| !s.deleted && !seen.contains(&s.external_id))
        {
            out.more.push(Cursor::new(Step::Recheck {
                id: s.external_id.clone(),
                stored: Copy::from(s),
            }));
        }
        Ok(out)
    }

    /// Stored copies of the listed appointments.
    async fn stored_by_id(
        &self,
        ctx: &FetchContext,
        rows: &[ListRow],
    ) -> Result<HashMap<String, StoredRecord>> {
        let mut by_id = HashMap::new();
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        for ids in ids.chunks(IDS_PER_QUERY) {
            let found = ctx
                .existing(&ExistingQuery::ByIds {
                    entity: ENTITY.into(),
                    ids: ids.to_vec(),
                })
                .await?;
            by_id.extend(found.into_iter().map(|r| (r.external_id.clone(), r)));
        }
        Ok(by_id)
    }

    fn record(&self, id: &str, detail: &Detail, extra: Extra<'_>) -> Record {
        let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let payload = json!({
            "appointment_id": id,
            "pet": detail.pet,
            "client": detail.client,
            "service": detail.service,
            "status": detail.status,
            "check_in": ts(detail.check_in),
            "check_out": detail.check_out.map(ts),
            "price": detail.price,
            "notes": detail.notes,
            "event_type": extra.event_type,
            "list_fingerprint": extra.fingerprint,
            "detail_path": extra.detail_path,
        });
        let day = local_day_of(detail.check_in, self.config.tz);
        let cancelled = self.client.site().is_cancelled(&detail.status);
        Record::with_volatile(ENTITY, id, Unit::Day(day), payload, VOLATILE_FIELDS)
            .occurred_at(detail.check_in)
            .deleted(cancelled)
    }

    /// The detail page of an appointment: `None` when it is gone (404).
    async fn detail(&self, ctx: &FetchContext, url: &Url) -> Result<Option<Detail>> {
        match self.client.get(ctx, url).await? {
            Fetched::NotFound => Ok(None),
            Fetched::Page(body) => Ok(Some(self.client.site().parse_detail(
                &body,
                url,
                self.config.tz,
            )?)),
        }
    }

    /// A listed appointment: its boarding record when it belongs to the
    /// batch (or its stored copy did), deleted when it is gone or no longer
    /// a boarding.
    async fn listed(
        &self,
        ctx: &FetchContext,
        range: DayRange,
        step: (&str, &Url, Option<&str>, &str, Option<&Copy>),
    ) -> Result<Option<Record>> {
        let (id, url, event_type, fingerprint, known) = step;
        let site = self.client.site();
        let stored_here = known.filter(|s| in_range(s.unit, range));
        Ok(match self.detail(ctx, url).await? {
            // Gone between the list and the detail page.
            None => stored_here.map(|s| copy_record(id, s).deleted(true)),
            // Was a boarding, is not any more.
            Some(d) if !site.is_boarding(&d.service) => stored_here
                .filter(|s| !s.deleted)
                .map(|s| copy_record(id, s).deleted(true)),
            Some(d) => {
                let detail_path = detail_path_of(url);
                let extra = Extra {
                    event_type,
                    fingerprint,
                    detail_path: &detail_path,
                };
                let record = self.record(id, &d, extra);
                // Membership by check-in day: a boarding that began before
                // the batch belongs to an earlier one. One that moved away
                // is still written, so its stored copy follows.
                (in_range(record.unit, range) || stored_here.is_some()).then_some(record)
            }
        })
    }

    /// A stored boarding that the list no longer shows: its detail page
    /// decides. Gone, cancelled or no longer a boarding → deleted.
    async fn recheck(&self, ctx: &FetchContext, id: &str, stored: &Copy) -> Result<Option<Record>> {
        let p = &stored.payload;
        let Some(path) = p.get("detail_path").and_then(Value::as_str) else {
            tracing::warn!(id = %id, "stored boarding has no detail_path; cannot re-check it");
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
        Ok(Some(match self.detail(ctx, &url).await? {
            Some(d) if self.client.site().is_boarding(&d.service) => self.record(id, &d, extra),
            _ => copy_record(id, stored).deleted(true),
        }))
    }
}

/// List-side fields of a record.
struct Extra<'a> {
    event_type: Option<&'a str>,
    fingerprint: &'a str,
    detail_path: &'a str,
}

/// A record rebuilt from a stored copy carried in a request.
fn copy_record(id: &str, c: &Copy) -> Record {
    from_stored(&StoredRecord {
        entity: ENTITY.into(),
        external_id: id.into(),
        unit: c.unit,
        payload: c.payload.clone(),
        hash: sync_core::ContentHash::of_json(&c.payload, VOLATILE_FIELDS),
        deleted: c.deleted,
        last_changed: Utc::now(),
    })
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
        SourceInfo::days(
            self.stream.clone(),
            self.config.tz,
            Windows::Fixed { days: 7 },
        )
        .with_limits(self.config.limits)
        .with_budget_key(self.config.source_name())
        .with_cost(FetchCost {
            // A schedule page per week, a detail page per appointment.
            per_window: 1.0,
            per_item: 1.0,
            login: 2,
            ..FetchCost::default()
        })
        .with_session_max_age(self.config.session_max_age)
    }

    async fn login(&self, ctx: &FetchContext) -> Result<()> {
        self.client.login(ctx).await
    }

    async fn fetch_page(
        &self,
        batch: &Batch,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Page> {
        let range = Self::days(batch)?;
        if let BatchSpan::Days { tz, .. } = &batch.span {
            check_tz(*tz, self.config.tz)?;
        }
        let step = match cursor {
            Some(c) => c.get::<Step>()?,
            None => Step::Schedule {
                url: self
                    .client
                    .site()
                    .week_url(self.client.base_url(), range.first)?
                    .to_string(),
                start: range.first,
                seen: BTreeSet::new(),
            },
        };
        match step {
            Step::Schedule { url, start, seen } => {
                let url = parse_url(&url)?;
                self.schedule(batch, range, &url, start, seen, ctx).await
            }
            Step::Detail {
                id,
                url,
                event_type,
                fingerprint,
                stored,
            } => {
                let url = parse_url(&url)?;
                let step = (
                    id.as_str(),
                    &url,
                    event_type.as_deref(),
                    fingerprint.as_str(),
                    stored.as_ref(),
                );
                let record = self.listed(ctx, range, step).await?;
                Ok(Page::last(record.into_iter().collect()))
            }
            Step::Recheck { id, stored } => {
                let record = self.recheck(ctx, &id, &stored).await?;
                Ok(Page::last(record.into_iter().collect()))
            }
        }
    }
}

fn parse_url(url: &str) -> Result<Url> {
    Url::parse(url)
        .map_err(|e| SyncError::invalid_input(format!("a cursor with a bad URL {url:?}: {e}")))
}

fn check_tz(batch: Tz, kennel: Tz) -> Result<()> {
    if batch != kennel {
        return Err(SyncError::invalid_input(format!(
            "the batch's time zone {batch} is not the kennel's ({kennel}); days would be cut wrongly"
        )));
    }
    Ok(())
}
