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
//! - A `Target::Keys` range works the same way (ids inside the range).
//! - Delta (`BatchSpan::Changes`): every page again (cheap: `clients / 200`
//!   requests; the store's hash keeps unchanged clients unchanged), or the
//!   deprecated `GET /clients/{id}?changed_after=` list
//!   ([`ClientsDelta::DeprecatedChangedAfter`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sync_core::{
    Batch, BatchSpan, Cursor, FetchContext, FetchCost, KeyPage, Page, Result, Source, SourceInfo,
    StreamId, SyncError,
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
}

/// A page of the deprecated changed-clients list, or of the id listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ListPage {
    page: u32,
}

/// Clients of one company (`Target::Keys` of every id: the engine takes the
/// ids the source lists).
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
        let at = at.unwrap_or(Walk {
            page: self.start_page(lo),
            forward: false,
        });
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
        let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
            return Ok(Page::default());
        };
        self.remember(first, at.page);
        // Clients deleted since the listing shift pages left: step back.
        if !at.forward && at.page > 1 && first > lo {
            return Ok(Page {
                more: vec![Cursor::new(Walk {
                    page: at.page - 1,
                    forward: false,
                })],
                ..Page::default()
            });
        }
        let records = ids
            .into_iter()
            .zip(items)
            .filter(|(id, _)| wanted.contains(*id))
            .map(|(_, item)| client_from_json(item))
            .collect::<Result<Vec<_>>>()?;
        let through = u64::from(at.page) * u64::from(page_size);
        let end_of_list = n < page_size as usize || total.is_some_and(|t| through >= t);
        let more = if last >= hi || end_of_list {
            Vec::new()
        } else {
            vec![Cursor::new(Walk {
                page: at.page + 1,
                forward: true,
            })]
        };
        Ok(Page {
            records,
            more,
            total: None,
        })
    }

    /// One page of the deprecated `GET /clients/{id}?changed_after=` list.
    async fn changed(&self, since: DateTime<Utc>, page: u32, ctx: &FetchContext) -> Result<Page> {
        let count = self.config.clients_page_size.min(200);
        let after = since
            .with_timezone(&self.config.tz)
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string();
        let q = vec![
            ("changed_after", after),
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
        let through = u64::from(page) * u64::from(count);
        let done = n == 0 || total.map_or(n < count as usize, |t| through >= t);
        Ok(Page {
            records: items
                .into_iter()
                .map(client_from_json)
                .collect::<Result<_>>()?,
            more: if done {
                Vec::new()
            } else {
                vec![Cursor::new(ListPage { page: page + 1 })]
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
            BatchSpan::Changes { since, .. } => match self.config.clients_delta {
                ClientsDelta::Rescan => {
                    let at = cursor.map(Cursor::get::<Walk>).transpose()?;
                    self.walk(&Wanted::All, at, ctx).await
                }
                ClientsDelta::DeprecatedChangedAfter => {
                    let page = cursor.map(Cursor::get::<ListPage>).transpose()?;
                    self.changed(*since, page.map_or(1, |p| p.page), ctx).await
                }
            },
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
