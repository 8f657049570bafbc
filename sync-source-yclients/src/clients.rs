//! The clients stream: `yclients:<company>/clients`, one unit per client id.
//!
//! The clients search has no id or change filter; it pages (at most 200 a
//! page) in the order asked for, here by id ascending. So:
//!
//! - The target is the list of client ids ([`YclientsClients::target`]:
//!   a listing with `fields: ["id"]`, `clients / 200` requests), i.e.
//!   `Target::KeyList`. Units are client ids, checkpointed as they are
//!   stored, so a resumed run starts at the first id not stored.
//! - A batch of ids is fetched by walking the id-ordered pages that hold
//!   them. The listing remembers the first id of each page, so a batch
//!   starts at the right page: with batches of 200 ids, oldest first, each
//!   batch is about one request. When clients were deleted since the listing
//!   (pages shift left), the walk steps back a page.
//! - A `Target::Keys` range works the same way (ids inside the range).
//! - Delta (`BatchSpan::Changes`): every page again (cheap: `clients / 200`
//!   requests; the store's hash keeps unchanged clients unchanged), or the
//!   deprecated `GET /clients/{id}?changed_after=` list
//!   ([`ClientsDelta::DeprecatedChangedAfter`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sync_core::{
    Batch, BatchSpan, FetchContext, Record, Result, Source, SourceInfo, StreamId, SyncError, Target,
};

use crate::config::{ClientsDelta, YclientsConfig};
use crate::core::{ApiRequest, YclientsApi};
use crate::model::{client_from_json, CLIENT_FIELDS};
use crate::records::list_of;
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

/// Every client id of a company, ascending (one request per `page_size`
/// clients); records the page of each page's first id in `hints`.
pub(crate) async fn list_client_ids(
    api: &YclientsApi,
    company_id: u64,
    page_size: u32,
    ctx: &FetchContext,
    hints: Option<&PageHints>,
) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    for page in 1u32.. {
        let (items, total) = search_page(api, company_id, page_size, page, &["id"], ctx).await?;
        let n = items.len();
        let page_ids = items.iter().map(id_of).collect::<Result<Vec<_>>>()?;
        if let (Some(h), Some(&first)) = (hints, page_ids.first()) {
            h.lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(first, page);
        }
        ids.extend(page_ids);
        let through = u64::from(page) * u64::from(page_size);
        if n == 0 || n < page_size as usize || total.is_some_and(|t| through >= t) {
            break;
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
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

/// Clients of one company (`Target::KeyList` of client ids, or
/// `Target::Keys`).
#[derive(Debug)]
pub struct YclientsClients {
    api: Arc<YclientsApi>,
    company_id: u64,
    config: Arc<YclientsConfig>,
    hints: PageHints,
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
        }
    }

    /// `yclients:<company>/clients`.
    pub fn stream_id(company_id: u64) -> StreamId {
        StreamId::new(format!("yclients:{company_id}"), "clients")
    }

    /// The company.
    pub fn company_id(&self) -> u64 {
        self.company_id
    }

    /// Every client id, ascending (`clients / page size` requests). Also
    /// teaches the source where each page starts.
    pub async fn client_ids(&self, ctx: &FetchContext) -> Result<Vec<i64>> {
        list_client_ids(
            &self.api,
            self.company_id,
            self.config.clients_page_size,
            ctx,
            Some(&self.hints),
        )
        .await
    }

    /// The target of a full sync: `Target::KeyList` of every client id.
    pub async fn target(&self, ctx: &FetchContext) -> Result<Target> {
        Ok(Target::KeyList(self.client_ids(ctx).await?))
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

    /// Walks the id-ordered pages that may hold `wanted`.
    async fn walk(&self, wanted: &Wanted, ctx: &FetchContext) -> Result<Vec<Value>> {
        let (lo, hi) = wanted.bounds();
        if lo > hi {
            return Ok(Vec::new());
        }
        let page_size = self.config.clients_page_size;
        let mut page = self.start_page(lo);
        let mut moved_forward = false;
        let mut out = Vec::new();
        loop {
            let (items, total) = search_page(
                &self.api,
                self.company_id,
                page_size,
                page,
                CLIENT_FIELDS,
                ctx,
            )
            .await?;
            let n = items.len();
            let ids = items.iter().map(id_of).collect::<Result<Vec<_>>>()?;
            let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
                break;
            };
            self.remember(first, page);
            // Clients deleted since the listing shift pages left: step back.
            if !moved_forward && page > 1 && first > lo {
                page -= 1;
                continue;
            }
            out.extend(
                ids.into_iter()
                    .zip(items)
                    .filter(|(id, _)| wanted.contains(*id))
                    .map(|(_, item)| item),
            );
            let through = u64::from(page) * u64::from(page_size);
            let end_of_list = n < page_size as usize || total.is_some_and(|t| through >= t);
            if last >= hi || end_of_list {
                break;
            }
            page += 1;
            moved_forward = true;
        }
        Ok(out)
    }

    async fn fetch_changed(&self, since: DateTime<Utc>, ctx: &FetchContext) -> Result<Vec<Value>> {
        let count = self.config.clients_page_size.min(200);
        let after = since
            .with_timezone(&self.config.tz)
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string();
        let mut out = Vec::new();
        for page in 1u32.. {
            let q = vec![
                ("changed_after", after.clone()),
                ("page", page.to_string()),
                ("count", count.to_string()),
            ];
            let envelope = self
                .api
                .call(
                    ctx,
                    &ApiRequest::get(format!("/clients/{}", self.company_id), q),
                )
                .await?;
            let total = envelope.total_count();
            let items = list_of(envelope.data, "clients list")?;
            let n = items.len();
            out.extend(items);
            let through = u64::from(page) * u64::from(count);
            if n == 0 || total.map_or(n < count as usize, |t| through >= t) {
                break;
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Source for YclientsClients {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            stream: Self::stream_id(self.company_id),
            limits: LIMITS,
            supports_delta: true,
            supports_day_counts: false,
            requests_per_unit: 1.0 / f64::from(self.config.clients_page_size.max(1)),
        }
    }

    async fn authenticate(&self, ctx: &FetchContext) -> Result<()> {
        self.api.authenticate(ctx).await
    }

    async fn fetch(&self, batch: &Batch, ctx: &FetchContext) -> Result<Vec<Record>> {
        let values = match &batch.span {
            BatchSpan::KeyList(ids) => {
                self.walk(&Wanted::Set(ids.iter().copied().collect()), ctx)
                    .await?
            }
            BatchSpan::Keys(range) => {
                self.walk(&Wanted::Range(range.first, range.last), ctx)
                    .await?
            }
            BatchSpan::Changes { since, .. } => match self.config.clients_delta {
                ClientsDelta::Rescan => self.walk(&Wanted::All, ctx).await?,
                ClientsDelta::DeprecatedChangedAfter => self.fetch_changed(*since, ctx).await?,
            },
            BatchSpan::Days { .. } => {
                return Err(SyncError::invalid_input(
                    "the clients stream is cut into client ids, not days",
                ))
            }
        };
        values.into_iter().map(client_from_json).collect()
    }
}
