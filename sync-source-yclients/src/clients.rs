//! The clients stream: `yclients:<company>/clients`, one unit per client id.
//!
//! The clients search has no id or change filter; it pages (at most 200 a
//! page) in the order asked for, here by id ascending. So:
//!
//! - The target is the list of client ids ([`Source::list_keys`]: a
//!   listing with `fields: ["id"]`, `clients / 200` requests; the engine
//!   asks for it after taking the stream's lease). Units are client ids,
//!   checkpointed as they are stored, so a resumed run starts at the first
//!   id not stored.
//! - A batch of ids is fetched by walking the id-ordered pages that hold
//!   them. The listing remembers the first id of each page, so a batch
//!   starts at the right page: with batches of 200 ids, oldest first, each
//!   batch is about one request. When clients were deleted since the listing
//!   (pages shift left), the walk steps back a page.
//! - A client of the batch that the pages do not hold is gone: when it was
//!   stored, it is reported deleted (its stored copy, flagged). A page
//!   proves absence only between its first and last id (and below page 1,
//!   and past the end of the list), and between two pages only when the
//!   list's `total_count` did not move between them.
//! - A full scan is a forced full run: every listed client fetched again,
//!   and the stored ones no longer listed (the core adds them to the
//!   batches) found gone.
//! - Delta (`BatchSpan::Changes`): the deprecated
//!   `GET /clients/{id}?changed_after=` list ([`ClientsDelta::ChangedAfter`],
//!   the only documented client delta); where it answers 404, that run walks
//!   every page of the search instead ([`ClientsDeltaUsed`] says which was
//!   used). Neither sees deleted clients: a full scan is due every so often
//!   ([`full_scan_due`]). [`ClientsDelta::Rescan`] always walks every page.
//! - Items of the deprecated list are kept to the fields the search is
//!   asked for ([`CLIENT_FIELDS`]), so that a client stored from either list
//!   has the same payload and hash.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sync_core::{
    Batch, BatchSpan, Cursor, FetchContext, FetchCost, KeyPage, Page, Record, Result, RunReport,
    RunStatus, Source, SourceInfo, StreamId, SyncError, SyncMode,
};

use crate::catalogue::gone_records;
use crate::config::{ClientsDelta, FullScanSchedule, YclientsConfig};
use crate::core::{ApiRequest, YclientsApi};
use crate::model::{client_from_json, CLIENT_ENTITY, CLIENT_FIELDS};
use crate::records::{changed_after_text, list_of};
use crate::LIMITS;

/// First id on each page of the id-ordered search → page number.
type PageHints = Mutex<BTreeMap<i64, u32>>;

fn id_of(v: &Value) -> Result<i64> {
    let id = v.get("id").and_then(|id| match id {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    id.ok_or_else(|| SyncError::bad_data("clients search: an item has no integer id"))
}

async fn search_page(
    api: &YclientsApi,
    company_id: u64,
    page_size: u32,
    page: u32,
    fields: &[&str],
    ctx: &FetchContext,
) -> Result<(Vec<Value>, Option<u64>)> {
    let body = json!({
        "page": page,
        "page_size": page_size,
        "fields": fields,
        "order_by": "id",
        "order_by_direction": "asc",
        "filters": [],
    });
    let envelope = api
        .call(
            ctx,
            &ApiRequest::post(format!("/company/{company_id}/clients/search"), body),
        )
        .await?;
    let total = envelope.total_count();
    Ok((list_of(envelope.data, "clients search")?, total))
}

/// Which ids a walk keeps.
enum Wanted {
    All,
    Range(i64, i64),
    Set(BTreeSet<i64>),
}

impl Wanted {
    fn bounds(&self) -> (i64, i64) {
        match self {
            Self::All => (i64::MIN, i64::MAX),
            Self::Range(a, b) => (*a, *b),
            Self::Set(s) => (
                s.first().copied().unwrap_or(i64::MAX),
                s.last().copied().unwrap_or(i64::MIN),
            ),
        }
    }

    fn contains(&self, id: i64) -> bool {
        match self {
            Self::All => true,
            Self::Range(a, b) => (*a..=*b).contains(&id),
            Self::Set(s) => s.contains(&id),
        }
    }
}

/// Where a walk of the id-ordered search stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Walk {
    page: u32,
    /// Moved forward already (then it never steps back again).
    forward: bool,
    /// The last id of the page before (moving forward).
    #[serde(default)]
    after: Option<i64>,
    /// `meta.total_count` of the page before.
    #[serde(default)]
    total: Option<u64>,
}

impl Walk {
    fn at(page: u32) -> Self {
        Self {
            page,
            forward: false,
            after: None,
            total: None,
        }
    }
}

/// A page of the deprecated changed-clients list, or of the id listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ListPage {
    page: u32,
}

/// Where a delta batch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
enum DeltaAt {
    /// A page of the deprecated `changed_after` list.
    ChangedAfter { page: u32 },
    /// A page of the walk over the whole search.
    Scan { walk: Walk },
}

/// How the last delta run of a clients stream found its changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientsDeltaUsed {
    /// The deprecated `changed_after` list.
    ChangedAfter,
    /// The deprecated list answered 404: every page of the search instead.
    ScanListGone,
    /// Every page of the search, as configured ([`ClientsDelta::Rescan`]).
    Rescan,
}

impl fmt::Display for ClientsDeltaUsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ChangedAfter => "changes from GET /clients?changed_after= (the deprecated list)",
            Self::ScanListGone => {
                "the deprecated changed_after list is gone (404): every client page scanned instead"
            }
            Self::Rescan => "every client page scanned (clients_delta = rescan)",
        })
    }
}

/// Whether the next delta run of a clients stream should be a full scan,
/// by `schedule`, given the stream's `runs` (newest first, as the run
/// history lists them); the reason when it should. A full scan is a
/// completed full run (every client run of a company sync in full mode is
/// forced, see [`crate::CompanySources::clients_run`]).
pub fn full_scan_due(
    schedule: FullScanSchedule,
    runs: &[RunReport],
    now: DateTime<Utc>,
) -> Option<String> {
    let completed = |r: &&RunReport| r.status == RunStatus::Completed && !r.dry_run;
    let Some(last) = runs
        .iter()
        .filter(completed)
        .find(|r| r.mode == SyncMode::Full)
    else {
        return Some("no full scan of the clients yet".into());
    };
    if let Some(days) = schedule.every_days {
        let age = now.signed_duration_since(last.started_at);
        if age >= chrono::Duration::days(i64::from(days)) {
            return Some(format!(
                "the last full scan of the clients is {} days old (every {days} days)",
                age.num_days()
            ));
        }
    }
    if let Some(every) = schedule.every_runs {
        let deltas = runs
            .iter()
            .take_while(|r| r.id != last.id)
            .filter(completed)
            .filter(|r| r.mode == SyncMode::Delta)
            .count();
        if deltas >= every as usize {
            return Some(format!(
                "{deltas} delta runs since the last full scan of the clients (every {every})"
            ));
        }
    }
    None
}

/// `item` kept to [`CLIENT_FIELDS`] (objects only; anything else as is).
fn search_fields_only(item: Value) -> Value {
    match item {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| CLIENT_FIELDS.contains(&k.as_str()))
                .collect(),
        ),
        other => other,
    }
}

/// Clients of one company (`Target::Keys` of every id: the engine takes the
/// ids the source lists).
#[derive(Debug)]
pub struct YclientsClients {
    api: Arc<YclientsApi>,
    company_id: u64,
    config: Arc<YclientsConfig>,
    hints: PageHints,
    delta_used: Mutex<Option<ClientsDeltaUsed>>,
}

impl YclientsClients {
    /// The clients source of `company_id`, using `api` (shared by every
    /// company synced with the same credentials).
    pub fn new(api: Arc<YclientsApi>, config: Arc<YclientsConfig>, company_id: u64) -> Self {
        Self {
            api,
            company_id,
            config,
            hints: Mutex::new(BTreeMap::new()),
            delta_used: Mutex::new(None),
        }
    }

    /// How the last delta batch of this source found its changes (`None`
    /// before any).
    pub fn delta_used(&self) -> Option<ClientsDeltaUsed> {
        *self.delta_used.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn used(&self, how: ClientsDeltaUsed) {
        *self.delta_used.lock().unwrap_or_else(|e| e.into_inner()) = Some(how);
    }

    /// `yclients:<company>/clients`.
    pub fn stream_id(company_id: u64) -> StreamId {
        StreamId::new(format!("yclients:{company_id}"), "clients")
    }

    /// The company.
    pub fn company_id(&self) -> u64 {
        self.company_id
    }

    fn start_page(&self, lo: i64) -> u32 {
        let hints = self.hints.lock().unwrap_or_else(|e| e.into_inner());
        hints.range(..=lo).next_back().map_or(1, |(_, &p)| p)
    }

    fn remember(&self, first_id: i64, page: u32) {
        self.hints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(first_id, page);
    }

    /// One page of a walk over the id-ordered pages that may hold `wanted`.
    async fn walk(&self, wanted: &Wanted, at: Option<Walk>, ctx: &FetchContext) -> Result<Page> {
        let (lo, hi) = wanted.bounds();
        if lo > hi {
            return Ok(Page::default());
        }
        let page_size = self.config.clients_page_size;
        let at = at.unwrap_or(Walk::at(self.start_page(lo)));
        let (items, total) = search_page(
            &self.api,
            self.company_id,
            page_size,
            at.page,
            CLIENT_FIELDS,
            ctx,
        )
        .await?;
        let n = items.len();
        let ids = items.iter().map(id_of).collect::<Result<Vec<_>>>()?;
        let through = u64::from(at.page) * u64::from(page_size);
        let end_of_list = n < page_size as usize || total.is_some_and(|t| through >= t);
        let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
            // An empty page: past the end of the list (or an empty list).
            if at.page > 1 && !at.forward {
                return Ok(Page {
                    more: vec![Cursor::new(Walk::at(at.page - 1))],
                    ..Page::default()
                });
            }
            let low = match (at.page, at.after) {
                (1, _) => Some(i64::MIN),
                (_, Some(after)) if at.total.is_some() && at.total == total => {
                    Some(after.saturating_add(1))
                }
                _ => None,
            };
            let gone = match low {
                Some(low) => self.gone(wanted, low, i64::MAX, &[], ctx).await?,
                None => Vec::new(),
            };
            return Ok(Page::last(gone));
        };
        self.remember(first, at.page);
        // Clients deleted since the listing shift pages left: step back.
        if !at.forward && at.page > 1 && first > lo {
            return Ok(Page {
                more: vec![Cursor::new(Walk::at(at.page - 1))],
                ..Page::default()
            });
        }
        // Where this page proves that a missing client is gone.
        let low = match at.after {
            _ if at.page == 1 => i64::MIN,
            Some(after) if at.total.is_some() && at.total == total => after.saturating_add(1),
            _ => first,
        };
        let high = if end_of_list { i64::MAX } else { last };
        let mut records = self.gone(wanted, low, high, &ids, ctx).await?;
        for (id, item) in ids.iter().zip(items) {
            if wanted.contains(*id) {
                records.push(client_from_json(item)?);
            }
        }
        let more = if last >= hi || end_of_list {
            Vec::new()
        } else {
            vec![Cursor::new(Walk {
                page: at.page + 1,
                forward: true,
                after: Some(last),
                total,
            })]
        };
        Ok(Page {
            records,
            more,
            total: None,
        })
    }

    /// The stored clients of a batch of ids (`wanted`) within `low..=high`
    /// that `seen` (a page's ids) does not hold: gone.
    async fn gone(
        &self,
        wanted: &Wanted,
        low: i64,
        high: i64,
        seen: &[i64],
        ctx: &FetchContext,
    ) -> Result<Vec<Record>> {
        let Wanted::Set(ids) = wanted else {
            return Ok(Vec::new());
        };
        let seen: BTreeSet<i64> = seen.iter().copied().collect();
        let missing: Vec<i64> = ids
            .range(low..=high)
            .copied()
            .filter(|id| !seen.contains(id))
            .collect();
        let gone = gone_records(ctx, CLIENT_ENTITY, missing).await?;
        if !gone.is_empty() {
            tracing::info!(stream = %ctx.stream(), gone = gone.len(), "stored clients the search no longer holds: marked deleted");
        }
        Ok(gone)
    }

    /// One page of the deprecated `GET /clients/{id}?changed_after=` list;
    /// on a 404 of its first page, the start of a walk over every page.
    async fn changed(&self, since: DateTime<Utc>, page: u32, ctx: &FetchContext) -> Result<Page> {
        let count = self.config.clients_page_size.min(200);
        let q = vec![
            ("changed_after", changed_after_text(&self.config, since)),
            ("page", page.to_string()),
            ("count", count.to_string()),
        ];
        let request = ApiRequest::get(format!("/clients/{}", self.company_id), q);
        let Some(envelope) = self.api.call_unless_gone(ctx, &request).await? else {
            if page > 1 {
                return Err(SyncError::bad_data(format!(
                    "GET /clients/{}: page {page} answered 404 after page 1 answered; the batch is fetched again next run",
                    self.company_id
                )));
            }
            self.used(ClientsDeltaUsed::ScanListGone);
            tracing::warn!(stream = %ctx.stream(), "the deprecated clients list answered 404 (gone): scanning every client page for this run instead; deleted clients wait for the next full scan");
            return Ok(Page {
                more: vec![Cursor::new(DeltaAt::Scan { walk: Walk::at(1) })],
                ..Page::default()
            });
        };
        if page == 1 {
            self.used(ClientsDeltaUsed::ChangedAfter);
            tracing::info!(stream = %ctx.stream(), changed = ?envelope.total_count(), "clients delta from the deprecated changed_after list");
        }
        let total = envelope.total_count();
        let items = list_of(envelope.data, "clients list")?;
        let n = items.len();
        let through = u64::from(page) * u64::from(count);
        let done = n == 0 || total.map_or(n < count as usize, |t| through >= t);
        Ok(Page {
            records: items
                .into_iter()
                .map(|item| client_from_json(search_fields_only(item)))
                .collect::<Result<_>>()?,
            more: if done {
                Vec::new()
            } else {
                vec![Cursor::new(DeltaAt::ChangedAfter { page: page + 1 })]
            },
            total: None,
        })
    }
}

#[async_trait]
impl Source for YclientsClients {
    fn info(&self) -> SourceInfo {
        SourceInfo::keys(
            Self::stream_id(self.company_id),
            self.config.clients_page_size,
            true,
        )
        .with_limits(LIMITS)
        .with_budget_key(self.api.budget_key())
        .with_cost(FetchCost {
            per_window: 1.0,
            login: self.api.login_requests(),
            keys_per_page: self.config.clients_page_size,
            ..FetchCost::default()
        })
        .with_delta()
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
        match &batch.span {
            BatchSpan::KeyList(ids) => {
                let at = cursor.map(Cursor::get::<Walk>).transpose()?;
                self.walk(&Wanted::Set(ids.iter().copied().collect()), at, ctx)
                    .await
            }
            BatchSpan::Keys(range) => {
                let at = cursor.map(Cursor::get::<Walk>).transpose()?;
                self.walk(&Wanted::Range(range.first, range.last), at, ctx)
                    .await
            }
            BatchSpan::Changes { since, .. } => {
                let at = match cursor.map(Cursor::get::<DeltaAt>).transpose()? {
                    Some(at) => at,
                    None if self.config.clients_delta == ClientsDelta::Rescan => {
                        self.used(ClientsDeltaUsed::Rescan);
                        DeltaAt::Scan { walk: Walk::at(1) }
                    }
                    None => DeltaAt::ChangedAfter { page: 1 },
                };
                match at {
                    DeltaAt::ChangedAfter { page } => self.changed(*since, page, ctx).await,
                    DeltaAt::Scan { walk } => {
                        let mut page = self.walk(&Wanted::All, Some(walk), ctx).await?;
                        page.more = page
                            .more
                            .iter()
                            .map(|c| {
                                c.get::<Walk>()
                                    .map(|walk| Cursor::new(DeltaAt::Scan { walk }))
                            })
                            .collect::<Result<_>>()?;
                        Ok(page)
                    }
                }
            }
            BatchSpan::Days { .. } => Err(SyncError::invalid_input(
                "the clients stream is cut into client ids, not days",
            )),
        }
    }

    /// Every client id, ascending: the search with `fields: ["id"]`, one
    /// request per page; the first page lists the others. Also teaches the
    /// source where each page starts.
    async fn list_keys(
        &self,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Option<KeyPage>> {
        let page = cursor
            .map(Cursor::get::<ListPage>)
            .transpose()?
            .map_or(1, |p| p.page);
        let page_size = self.config.clients_page_size;
        let (items, total) =
            search_page(&self.api, self.company_id, page_size, page, &["id"], ctx).await?;
        let keys = items.iter().map(id_of).collect::<Result<Vec<_>>>()?;
        if let Some(&first) = keys.first() {
            self.remember(first, page);
        }
        let more = match (page, total) {
            (1, Some(t)) => {
                let pages = t.div_ceil(u64::from(page_size.max(1)));
                if pages > 100_000 {
                    return Err(SyncError::bad_data(format!(
                        "clients search: meta.total_count {t} is beyond any company"
                    )));
                }
                (2..=pages as u32)
                    .map(|page| Cursor::new(ListPage { page }))
                    .collect()
            }
            (_, None) if keys.len() >= page_size as usize => {
                vec![Cursor::new(ListPage { page: page + 1 })]
            }
            _ => Vec::new(),
        };
        Ok(Some(KeyPage { keys, more }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_core::RunId;

    fn run(n: u32, mode: SyncMode, status: RunStatus, days_ago: i64) -> RunReport {
        let at = "2025-06-30T12:00:00Z".parse::<DateTime<Utc>>().unwrap()
            - chrono::Duration::days(days_ago);
        let mut r = RunReport::start(
            RunId(format!("run-{n}")),
            YclientsClients::stream_id(1),
            mode,
            "keys",
            at,
        );
        r.status = status;
        r
    }

    #[test]
    fn a_full_scan_is_due_by_days_or_by_delta_runs() {
        let now = "2025-06-30T12:00:01Z".parse::<DateTime<Utc>>().unwrap();
        let weekly = FullScanSchedule::default();
        assert!(full_scan_due(weekly, &[], now).is_some(), "no scan yet");
        // Newest first: two deltas after a full run three days ago.
        let runs = vec![
            run(4, SyncMode::Delta, RunStatus::Completed, 1),
            run(3, SyncMode::Delta, RunStatus::Failed, 2),
            run(2, SyncMode::Delta, RunStatus::Completed, 2),
            run(1, SyncMode::Full, RunStatus::Completed, 3),
        ];
        assert_eq!(full_scan_due(weekly, &runs, now), None);
        let by_runs = FullScanSchedule {
            every_days: None,
            every_runs: Some(2),
        };
        let why = full_scan_due(by_runs, &runs, now).unwrap();
        assert!(why.contains("2 delta runs"), "{why}");
        let by_days = FullScanSchedule {
            every_days: Some(3),
            every_runs: None,
        };
        let why = full_scan_due(by_days, &runs, now).unwrap();
        assert!(why.contains("3 days old"), "{why}");
        // A full run that did not complete is not a scan.
        let runs = vec![
            run(2, SyncMode::Full, RunStatus::Partial, 0),
            run(1, SyncMode::Full, RunStatus::Completed, 8),
        ];
        assert!(full_scan_due(weekly, &runs, now).is_some());
        let never = FullScanSchedule {
            every_days: None,
            every_runs: None,
        };
        assert_eq!(full_scan_due(never, &runs, now), None);
    }

    #[test]
    fn deprecated_list_items_keep_the_search_fields() {
        let item = json!({"id": 1, "name": "A", "visits": 3, "extra": {"x": 1}});
        assert_eq!(
            search_fields_only(item),
            json!({"id": 1, "name": "A", "visits": 3})
        );
        assert_eq!(search_fields_only(json!([1])), json!([1]));
    }
}
