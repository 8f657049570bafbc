//! [`ScraperSource`]: kennel boardings read from the booking site's pages,
//! one page per request.
//!
//! # A batch
//!
//! A batch is a window of local days, normally the seven days one schedule
//! page shows. Its first request reads the schedule page that starts on the
//! batch's first day (and, for a longer batch, the pages after it, one at a
//! time). Every appointment the page links to becomes a request for its
//! detail page ([`Step::Detail`]), unless the rules below let it be skipped;
//! on the batch's last schedule page, every boarding stored on the batch's
//! days that no page listed becomes a re-check of its detail page
//! ([`Step::Recheck`]): a 404, a cancelled request or an appointment that is
//! no longer a boarding marks it deleted.
//!
//! # Membership
//!
//! A boarding belongs to its local check-in day (in the kennel's zone), so
//! to exactly one batch, whatever weeks it spans. The list cannot tell the
//! check-in day (its time strings have no year, and a boarding that began
//! before the window is listed too), so it is the detail page's. A detail
//! page read by any batch gives its record for the boarding's own day, even
//! when that day is outside the batch (a boarding listed on the week after
//! its check-in): the record is stored under its day and the batch that owns
//! the day finds it stored.
//!
//! # When a detail page is skipped
//!
//! Edits of price, notes and pet fields show only on the detail page, so an
//! unchanged list entry never proves an unchanged appointment. Hence:
//!
//! - a batch that re-checks stored days (`batch.recheck`: a forced run, or a
//!   delta's re-check by age) reads **every** listed detail page, except one
//!   that this same run has just read for a neighbouring week (weeks
//!   overlap: a boarding is listed on every week it spans);
//! - on a first fetch (days not yet covered), with
//!   [`ScraperConfig::reuse_unchanged`] on (the default), a listed
//!   appointment is skipped when its list entry is unchanged and either
//!   - the store holds it as a boarding of a day **outside** the batch: it
//!     belongs to another batch, whose own fetches and re-checks keep it
//!     current; or
//!   - this source read its detail page less than [`REUSE_WITHIN`] ago (in
//!     this process, for a neighbouring batch: weeks overlap): a
//!     non-boarding is skipped, a boarding of the batch's days is the
//!     record as read then (kept in memory, at most a few thousand). This
//!     is checked again right before the request, since the engine reads
//!     neighbouring weeks at the same time; an undated entry (daycare and
//!     recurring entries, listed on every week with another occurrence) that
//!     was no boarding counts as the same entry whatever its occurrence.
//!
//!   Any other listed appointment's detail page is read, also when a stored
//!   copy exists (it may be old).
//!
//! # Boardings and other appointments
//!
//! Non-boardings (daycare, add-ons, evaluations, cancelled requests,
//! day-service bookings, stays under 12 hours) are recognised by the detail
//! page and never stored: they are not records of this stream. A stored
//! boarding that turns into one is marked deleted.
//!
//! # Per-day counts (`verify`)
//!
//! [`Source::day_counts`] reads the schedule pages of the range (one request
//! each, in any order) and counts, per local day, the listed appointments
//! that the store holds as boardings (not deleted), on the day the list's
//! time string starts (`Feb 13, 11:49am ...`; the stored check-in day when
//! the time string has no date). Each appointment is counted on the page
//! whose seven days hold that day, so no appointment is counted twice. After
//! a full sync this equals the store's count of boardings per check-in day;
//! it differs where a stored boarding is no longer listed (deleted at the
//! site) or is listed on another day (moved). Appointments the store does
//! not hold (new bookings, and the non-boardings it never stores) are not
//! counted: the list alone cannot tell a boarding (they are logged).
//!
//! # Payload
//!
//! The boarding payload of the `site` module (`appointment_id`,
//! `service_type`, `status`, `pets`, `client`, `check_in`, `check_out`,
//! `check_in_day`, the AM/PM labels, `dates_from`, `duration`, `price`,
//! `notes`, `fields`), plus `event_type` from the list and the volatile
//! `list_fingerprint` and `detail_path` (the detail page to re-check when
//! the appointment leaves the list).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sync_core::plan::local_day_of;
use sync_core::{
    Batch, BatchSpan, Cursor, DayCounts, DayRange, ExistingQuery, FetchContext, FetchCost, Page,
    Probe, Record, Result, RunMeter, Source, SourceInfo, StoredRecord, StreamId, SyncError, Unit,
    Windows,
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
/// How long a detail page read by this source lets a first fetch of a
/// neighbouring batch skip it (when its list entry is unchanged).
pub const REUSE_WITHIN: Duration = Duration::from_secs(60 * 60);

/// Ids per `ExistingQuery::ByIds` call.
const IDS_PER_QUERY: usize = 500;
/// Detail pages remembered at most (then the oldest are forgotten): a few
/// weeks of appointments, a few megabytes.
const MEMO_MAX: usize = 5_000;
/// Days one schedule page shows.
const WEEK: i64 = 7;

/// Imports kennel boardings by scraping the booking site (see the module
/// documentation for what a batch reads, and when a detail page is skipped).
#[derive(Debug)]
pub struct ScraperSource {
    config: ScraperConfig,
    client: SiteClient,
    stream: StreamId,
    memo: Memo,
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
        #[serde(default)]
        undated: bool,
        stored: Option<Copy>,
    },
    /// A stored boarding the list no longer shows.
    Recheck { id: String, stored: Copy },
}

/// One request of [`Source::day_counts`]: the schedule page from `start`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CountStep {
    start: NaiveDate,
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

/// Detail pages this source read lately: id → what it found.
#[derive(Debug, Default)]
struct Memo(Mutex<HashMap<String, Seen>>);

#[derive(Clone, Debug)]
struct Seen {
    fingerprint: String,
    at: Instant,
    /// The boarding's record as read; `None`: not a boarding.
    record: Option<Record>,
    /// The list entry had no date (a recurring or daycare entry, listed on
    /// every week with another occurrence each time).
    undated: bool,
    /// The run that read it (the engine's meter is one per run).
    run: Weak<RunMeter>,
}

impl Memo {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remember(&self, ctx: &FetchContext, id: &str, entry: &Entry, record: Option<&Record>) {
        let mut m = self.lock();
        if m.len() >= MEMO_MAX && !m.contains_key(id) {
            m.retain(|_, seen| seen.at.elapsed() < REUSE_WITHIN);
            if m.len() >= MEMO_MAX {
                m.clear();
            }
        }
        m.insert(
            id.to_string(),
            Seen {
                fingerprint: entry.fingerprint.clone(),
                at: Instant::now(),
                record: record.cloned(),
                undated: entry.undated,
                run: Arc::downgrade(ctx.meter()),
            },
        );
    }

    /// What the detail page of `id` gave when it was read lately with this
    /// list entry: `Some(None)` for a non-boarding. Lately: by this run
    /// when `this_run`, else less than [`REUSE_WITHIN`] ago. An undated
    /// entry that was no boarding is taken as the same entry whatever its
    /// occurrence (its timestamp and time string change from week to week).
    fn recent(
        &self,
        ctx: &FetchContext,
        id: &str,
        entry: &Entry,
        this_run: bool,
    ) -> Option<Option<Record>> {
        let m = self.lock();
        let seen = m.get(id)?;
        let same = seen.fingerprint == entry.fingerprint
            || (entry.undated && seen.undated && seen.record.is_none());
        let lately = if this_run {
            seen.run
                .upgrade()
                .is_some_and(|run| Arc::ptr_eq(&run, ctx.meter()))
        } else {
            seen.at.elapsed() < REUSE_WITHIN
        };
        (same && lately).then(|| seen.record.clone())
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
            memo: Memo::default(),
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

    /// One schedule page, parsed; a 404 or a page that is not a schedule is
    /// [`SyncError::BadData`] naming the URL.
    async fn schedule_page(
        &self,
        ctx: &FetchContext,
        url: &Url,
    ) -> Result<crate::site::SchedulePage> {
        let body = match self.client.get(ctx, url).await? {
            Fetched::Page(body) => body,
            Fetched::NotFound => {
                return Err(SyncError::bad_data(format!(
                    "schedule page {url} answered 404"
                )))
            }
        };
        Ok(self.client.site().parse_schedule(&body, url)?)
    }

    /// A schedule page of a batch: its listed appointments become detail
    /// requests (or are skipped, see the module documentation), the next
    /// week a request when the batch goes on, and on the batch's last page
    /// the stored boardings no list showed become re-checks.
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
        let page = self.schedule_page(ctx, url).await?;
        let rows: Vec<ListRow> = page
            .rows
            .into_iter()
            .filter(|r| !seen.contains(&r.id))
            .collect();
        let stored = self
            .stored_by_id(ctx, rows.iter().map(|r| r.id.clone()))
            .await?;
        let mut out = Page::default();
        let (mut read, mut skipped) = (0usize, 0usize);
        for row in &rows {
            seen.insert(row.id.clone());
            let known = stored.get(&row.id);
            match self.skip(ctx, batch, range, row, start, known) {
                Skip::No => {
                    read += 1;
                    out.more.push(Cursor::new(Step::Detail {
                        id: row.id.clone(),
                        url: row.detail_url.to_string(),
                        event_type: row.event_type.clone(),
                        fingerprint: row.fingerprint.clone(),
                        undated: row.start_day(start).is_none(),
                        stored: known.map(Copy::from),
                    }));
                }
                Skip::Record(record) => {
                    skipped += 1;
                    out.records.push(record);
                }
                Skip::Nothing => skipped += 1,
            }
        }
        tracing::debug!(url = %url, listed = rows.len(), detail_pages = read, skipped, recheck = batch.recheck, "schedule page");
        let window_end = start + ChronoDuration::days(WEEK - 1);
        if window_end < range.last {
            // Follow the next link when it moves forward without skipping
            // days; otherwise build the next window's URL ourselves.
            let expected = start + ChronoDuration::days(WEEK);
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

    /// Whether a listed appointment's detail page may be skipped (see the
    /// module documentation).
    fn skip(
        &self,
        ctx: &FetchContext,
        batch: &Batch,
        range: DayRange,
        row: &ListRow,
        start: NaiveDate,
        known: Option<&StoredRecord>,
    ) -> Skip {
        if !self.config.reuse_unchanged {
            return Skip::No;
        }
        let stored_live = known.is_some_and(|s| !s.deleted);
        let entry = Entry {
            fingerprint: row.fingerprint.clone(),
            undated: row.start_day(start).is_none(),
        };
        if batch.recheck {
            return self.lately(ctx, batch, range, &row.id, &entry, stored_live);
        }
        let site = self.client.site();
        let row_cancelled = row.status.as_deref().is_some_and(|s| site.is_cancelled(s));
        let elsewhere = known.is_some_and(|s| {
            !s.deleted
                && !row_cancelled
                && !in_range(s.unit, range)
                && s.payload.get("list_fingerprint").and_then(Value::as_str)
                    == Some(row.fingerprint.as_str())
        });
        if elsewhere {
            return Skip::Nothing;
        }
        self.lately(ctx, batch, range, &row.id, &entry, stored_live)
    }

    /// Whether this source read the detail page of `id`, with this list
    /// entry, lately: in this run for a batch that re-checks, else less than
    /// [`REUSE_WITHIN`] ago. A non-boarding that the store holds as a live
    /// boarding is read again (the batch that found it out may have failed
    /// before its deletion was stored).
    fn lately(
        &self,
        ctx: &FetchContext,
        batch: &Batch,
        range: DayRange,
        id: &str,
        entry: &Entry,
        stored_live: bool,
    ) -> Skip {
        if !self.config.reuse_unchanged {
            return Skip::No;
        }
        match self.memo.recent(ctx, id, entry, batch.recheck) {
            Some(Some(record)) if in_range(record.unit, range) => Skip::Record(record),
            Some(Some(_)) => Skip::Nothing,
            Some(None) if !stored_live => Skip::Nothing,
            _ => Skip::No,
        }
    }

    /// Stored boardings with these ids.
    async fn stored_by_id(
        &self,
        ctx: &FetchContext,
        ids: impl Iterator<Item = String>,
    ) -> Result<HashMap<String, StoredRecord>> {
        let ids: Vec<String> = ids.collect();
        let mut by_id = HashMap::new();
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

    /// The payload of `detail` with the list's fields.
    fn payload(&self, id: &str, detail: &Detail, extra: &Extra<'_>) -> Value {
        let mut payload = boarding_payload(id, detail, self.config.tz);
        if let Some(map) = payload.as_object_mut() {
            map.insert("event_type".into(), json!(extra.event_type));
            map.insert("list_fingerprint".into(), json!(extra.fingerprint));
            map.insert("detail_path".into(), json!(extra.detail_path));
        }
        payload
    }

    /// The record of a boarding, on its local check-in day.
    fn record(&self, id: &str, detail: &Detail, extra: &Extra<'_>, url: &Url) -> Result<Record> {
        let Some(stay) = detail.stay else {
            return Err(SyncError::bad_data(format!(
                "page {url}: boarding {id} has no check-in"
            )));
        };
        let payload = self.payload(id, detail, extra);
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

    /// What a detail page says of an appointment with stored copy `known`:
    /// its boarding record (on its own day), the stored copy marked deleted
    /// when it is gone or no longer a boarding, or nothing.
    async fn read(
        &self,
        ctx: &FetchContext,
        id: &str,
        url: &Url,
        window_start: NaiveDate,
        extra: &Extra<'_>,
        known: Option<&Copy>,
    ) -> Result<Option<Record>> {
        let live = known.filter(|s| !s.deleted);
        Ok(match self.detail(ctx, url, window_start).await? {
            None => {
                tracing::debug!(id = %id, url = %url, "appointment gone (404)");
                live.map(|s| copy_record(id, s).deleted(true))
            }
            Some(d) if !d.classification.is_boarding() => {
                self.memo.remember(ctx, id, &extra.entry(), None);
                tracing::debug!(id = %id, why = %d.classification, "not a boarding");
                live.map(|s| {
                    // The stored boarding is one no more: its last data as
                    // the page shows it, on its stored day, deleted.
                    let mut payload = self.payload(id, &d, extra);
                    if payload.get("check_in").is_some_and(Value::is_null) {
                        payload = s.payload.clone();
                    }
                    Record::with_volatile(ENTITY, id, s.unit, payload, VOLATILE_FIELDS)
                        .deleted(true)
                })
            }
            Some(d) => {
                let record = self.record(id, &d, extra, url)?;
                self.memo.remember(ctx, id, &extra.entry(), Some(&record));
                Some(record)
            }
        })
    }

    /// A stored boarding that the list no longer shows: its detail page
    /// decides.
    async fn recheck(
        &self,
        ctx: &FetchContext,
        id: &str,
        stored: &Copy,
        window_start: NaiveDate,
    ) -> Result<Option<Record>> {
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
            undated: false,
            detail_path: path,
        };
        self.read(ctx, id, &url, window_start, &extra, Some(stored))
            .await
    }
}

/// What [`ScraperSource::skip`] decided.
enum Skip {
    /// Read the detail page.
    No,
    /// Skip it; the record as this source read it lately is the batch's.
    Record(Record),
    /// Skip it; another batch holds the record (or it is no boarding).
    Nothing,
}

/// List-side fields of a record.
struct Extra<'a> {
    event_type: Option<&'a str>,
    fingerprint: &'a str,
    undated: bool,
    detail_path: &'a str,
}

impl Extra<'_> {
    fn entry(&self) -> Entry {
        Entry {
            fingerprint: self.fingerprint.to_string(),
            undated: self.undated,
        }
    }
}

/// A list entry, as the memory of detail pages compares it.
struct Entry {
    fingerprint: String,
    undated: bool,
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
    matches!(unit, Unit::Day(d) if range.contains(d))
}

fn detail_path_of(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// The first days of the schedule pages covering `range`, a week apart.
fn week_starts(range: DayRange) -> impl Iterator<Item = NaiveDate> {
    let days = i64::try_from(range.len()).unwrap_or(i64::MAX);
    let weeks = (days + WEEK - 1) / WEEK;
    (0..weeks).filter_map(move |w| {
        range
            .first
            .checked_add_signed(ChronoDuration::days(w.checked_mul(WEEK)?))
    })
}

#[async_trait]
impl Source for ScraperSource {
    fn info(&self) -> SourceInfo {
        SourceInfo::days(
            self.stream.clone(),
            self.config.tz,
            Windows::Fixed { days: WEEK as u32 },
        )
        .with_limits(self.config.limits)
        .with_budget_key(self.config.source_name())
        .with_cost(FetchCost {
            // A schedule page per week, a detail page per appointment, a GET
            // and a POST per login.
            per_window: 1.0,
            per_item: 1.0,
            login: 2,
            ..FetchCost::default()
        })
        .with_session_max_age(self.config.session_max_age)
        .with_probe()
        .with_day_counts()
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
                undated,
                stored,
            } => {
                let url = parse_url(&url)?;
                let detail_path = detail_path_of(&url);
                let extra = Extra {
                    event_type: event_type.as_deref(),
                    fingerprint: &fingerprint,
                    undated,
                    detail_path: &detail_path,
                };
                // A neighbouring batch in flight at the same time may have
                // read the page since this one's schedule page came.
                let live = stored.as_ref().is_some_and(|s| !s.deleted);
                match self.lately(ctx, batch, range, &id, &extra.entry(), live) {
                    Skip::Record(record) => return Ok(Page::last(vec![record])),
                    Skip::Nothing => return Ok(Page::default()),
                    Skip::No => {}
                }
                let record = self
                    .read(ctx, &id, &url, range.first, &extra, stored.as_ref())
                    .await?;
                Ok(Page::last(record.into_iter().collect()))
            }
            Step::Recheck { id, stored } => {
                let record = self.recheck(ctx, &id, &stored, range.first).await?;
                Ok(Page::last(record.into_iter().collect()))
            }
        }
    }

    /// One schedule page (the week in the middle of `range`): the
    /// appointments whose list entry starts within its seven days.
    async fn probe(&self, range: DayRange, ctx: &FetchContext) -> Result<Option<Probe>> {
        let starts: Vec<NaiveDate> = week_starts(range).collect();
        let Some(&start) = starts.get(starts.len() / 2) else {
            return Ok(None);
        };
        let url = self.client.site().week_url(self.client.base_url(), start)?;
        let page = self.schedule_page(ctx, &url).await?;
        let end = start + ChronoDuration::days(WEEK - 1);
        let items = page
            .rows
            .iter()
            .filter_map(|r| r.start_day(start))
            .filter(|d| start <= *d && *d <= end)
            .count();
        tracing::debug!(url = %url, listed = page.rows.len(), starting = items, "probe");
        Ok(Some(Probe {
            items: items as u64,
            days: WEEK as u64,
        }))
    }

    /// Per-day counts from the schedule pages (see the module
    /// documentation for what is counted): one page a request, the first
    /// call naming every other page of the range.
    async fn day_counts(
        &self,
        range: DayRange,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Option<DayCounts>> {
        let (start, more) = match cursor {
            Some(c) => (c.get::<CountStep>()?.start, Vec::new()),
            None => {
                let mut starts = week_starts(range);
                let Some(first) = starts.next() else {
                    return Ok(Some(DayCounts::default()));
                };
                (
                    first,
                    starts
                        .map(|start| Cursor::new(CountStep { start }))
                        .collect(),
                )
            }
        };
        let url = self.client.site().week_url(self.client.base_url(), start)?;
        let page = self.schedule_page(ctx, &url).await?;
        let stored = self
            .stored_by_id(ctx, page.rows.iter().map(|r| r.id.clone()))
            .await?;
        let end = start + ChronoDuration::days(WEEK - 1);
        let mut counts: BTreeMap<NaiveDate, u64> = BTreeMap::new();
        let mut unknown = 0usize;
        for row in &page.rows {
            let Some(s) = stored.get(&row.id) else {
                unknown += 1;
                continue;
            };
            if s.deleted {
                continue;
            }
            let day = row.start_day(start).or(match s.unit {
                Unit::Day(d) => Some(d),
                Unit::Key(_) => None,
            });
            if let Some(day) = day.filter(|d| start <= *d && *d <= end) {
                *counts.entry(day).or_insert(0) += 1;
            }
        }
        tracing::debug!(url = %url, listed = page.rows.len(), not_stored = unknown, "counted a schedule page");
        Ok(Some(DayCounts { counts, more }))
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
