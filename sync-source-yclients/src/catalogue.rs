//! The company's catalogue: `yclients:<company>/service_categories`,
//! `yclients:<company>/services` and `yclients:<company>/staff`.
//!
//! Each is one list in the usual envelope (`GET /services/{company}`, or
//! `/company/{company}/services` in the newer spelling, see
//! [`CataloguePaths`]): not paged, no change filter. So each run fetches the
//! whole list, and removals show only by absence:
//!
//! - Units are the items' ids ([`Source::list_keys`] lists them: one
//!   request), and the whole list is one batch (one request).
//! - A run is forced ([`Batch::recheck`] on every batch): the core then adds
//!   the stored ids the list no longer holds to the batch, and the source
//!   reports each of them deleted (its stored copy, flagged), as records
//!   deleted at the source are. An item that comes back is updated.
//! - Payloads are the objects as served; staff who were fired or hidden
//!   stay listed by the API and are kept, flagged in their payload.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use sync_core::{
    Batch, BatchSpan, Cursor, ExistingQuery, FetchContext, FetchCost, KeyPage, Page, Record,
    Result, Source, SourceInfo, StreamId, SyncError, Unit,
};

use crate::config::{CataloguePaths, YclientsConfig};
use crate::core::{ApiRequest, YclientsApi};
use crate::model::{
    catalogue_item_from_json, SERVICE_CATEGORY_ENTITY, SERVICE_ENTITY, STAFF_ENTITY,
};
use crate::records::list_of;
use crate::LIMITS;

/// Ids per batch: the whole list is one batch.
const WHOLE_LIST: u32 = 1_000_000;

/// One list of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CatalogueKind {
    /// Service categories (entity `service_category`).
    ServiceCategories,
    /// Services (entity `service`).
    Services,
    /// Staff (entity `staff`).
    Staff,
}

impl CatalogueKind {
    /// Every list, in the order a company sync fetches them (categories
    /// first: services name them).
    pub const ALL: [Self; 3] = [Self::ServiceCategories, Self::Services, Self::Staff];

    /// The stream name: `service_categories`, `services` or `staff`.
    pub fn stream_name(self) -> &'static str {
        match self {
            Self::ServiceCategories => "service_categories",
            Self::Services => "services",
            Self::Staff => "staff",
        }
    }

    /// The entity of its records.
    pub fn entity(self) -> &'static str {
        match self {
            Self::ServiceCategories => SERVICE_CATEGORY_ENTITY,
            Self::Services => SERVICE_ENTITY,
            Self::Staff => STAFF_ENTITY,
        }
    }

    /// The path of the list of `company` in the chosen spelling.
    pub fn path(self, company: u64, paths: CataloguePaths) -> String {
        match paths {
            CataloguePaths::Legacy => format!("/{}/{company}", self.stream_name()),
            CataloguePaths::Company => format!("/company/{company}/{}", self.stream_name()),
        }
    }
}

/// One catalogue list of one company (see the module documentation).
#[derive(Debug)]
pub struct YclientsCatalogue {
    api: Arc<YclientsApi>,
    config: Arc<YclientsConfig>,
    company_id: u64,
    kind: CatalogueKind,
}

impl YclientsCatalogue {
    /// The `kind` list of `company_id`, using `api` (shared by every company
    /// synced with the same credentials).
    pub fn new(
        api: Arc<YclientsApi>,
        config: Arc<YclientsConfig>,
        company_id: u64,
        kind: CatalogueKind,
    ) -> Self {
        Self {
            api,
            config,
            company_id,
            kind,
        }
    }

    /// `yclients:<company>/<stream name>`.
    pub fn stream_id(company_id: u64, kind: CatalogueKind) -> StreamId {
        StreamId::new(format!("yclients:{company_id}"), kind.stream_name())
    }

    /// Which list.
    pub fn kind(&self) -> CatalogueKind {
        self.kind
    }

    /// The company.
    pub fn company_id(&self) -> u64 {
        self.company_id
    }

    /// The whole list, as served: one request.
    async fn list(&self, ctx: &FetchContext) -> Result<Vec<Value>> {
        let path = self.kind.path(self.company_id, self.config.catalogue_paths);
        let envelope = self
            .api
            .call(ctx, &ApiRequest::get(path, Vec::new()))
            .await?;
        list_of(envelope.data, self.kind.stream_name())
    }
}

/// A record stored before that the source no longer has: its stored copy,
/// flagged deleted (same payload and hash, so that finding it gone again
/// changes nothing).
pub(crate) fn gone(stored: sync_core::StoredRecord) -> Record {
    Record {
        entity: stored.entity,
        external_id: stored.external_id,
        unit: stored.unit,
        occurred_at: None,
        payload: stored.payload,
        hash: stored.hash,
        deleted: true,
    }
}

/// The stored records of `entity` among `ids`, as gone (see [`gone`]).
pub(crate) async fn gone_records(
    ctx: &FetchContext,
    entity: &str,
    ids: impl IntoIterator<Item = i64>,
) -> Result<Vec<Record>> {
    let ids: Vec<String> = ids.into_iter().map(|id| id.to_string()).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let stored = ctx
        .existing(&ExistingQuery::ByIds {
            entity: entity.to_string(),
            ids,
        })
        .await?;
    Ok(stored.into_iter().map(gone).collect())
}

#[async_trait]
impl Source for YclientsCatalogue {
    fn info(&self) -> SourceInfo {
        SourceInfo::keys(
            Self::stream_id(self.company_id, self.kind),
            WHOLE_LIST,
            true,
        )
        .with_limits(LIMITS)
        .with_budget_key(self.api.budget_key())
        .with_cost(FetchCost {
            per_window: 1.0,
            login: self.api.login_requests(),
            keys_per_page: WHOLE_LIST,
            ..FetchCost::default()
        })
    }

    async fn login(&self, ctx: &FetchContext) -> Result<()> {
        self.api.login(ctx).await
    }

    /// The whole list (one request), kept to the batch's ids; the batch's
    /// ids the list does not hold are reported gone.
    async fn fetch_page(
        &self,
        batch: &Batch,
        _cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Page> {
        let entity = self.kind.entity();
        let keep: Box<dyn Fn(i64) -> bool + Send + Sync> = match &batch.span {
            BatchSpan::KeyList(ids) => {
                let ids: BTreeSet<i64> = ids.iter().copied().collect();
                Box::new(move |id| ids.contains(&id))
            }
            BatchSpan::Keys(range) => {
                let range = *range;
                Box::new(move |id| range.contains(id))
            }
            other => {
                return Err(SyncError::invalid_input(format!(
                    "the {} stream is cut into ids, not {other}",
                    self.kind.stream_name()
                )))
            }
        };
        let mut listed = BTreeSet::new();
        let mut records = Vec::new();
        for item in self.list(ctx).await? {
            let record = catalogue_item_from_json(entity, item)?;
            if let Unit::Key(id) = record.unit {
                listed.insert(id);
                if keep(id) {
                    records.push(record);
                }
            }
        }
        if let BatchSpan::KeyList(ids) = &batch.span {
            let missing = ids.iter().copied().filter(|id| !listed.contains(id));
            let gone = gone_records(ctx, entity, missing).await?;
            if !gone.is_empty() {
                tracing::info!(stream = %ctx.stream(), gone = gone.len(), "stored {entity} items no longer listed: marked deleted");
            }
            records.extend(gone);
        }
        Ok(Page::last(records))
    }

    /// The ids of the list: one request. Items without a readable id are
    /// left out here; the batch then fails on them, naming what is wrong.
    async fn list_keys(
        &self,
        _cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> Result<Option<KeyPage>> {
        let entity = self.kind.entity();
        let keys = self
            .list(ctx)
            .await?
            .into_iter()
            .filter_map(|item| match catalogue_item_from_json(entity, item) {
                Ok(r) => match r.unit {
                    Unit::Key(id) => Some(id),
                    Unit::Day(_) => None,
                },
                Err(_) => None,
            })
            .collect();
        Ok(Some(KeyPage {
            keys,
            more: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_in_both_spellings() {
        assert_eq!(
            CatalogueKind::Services.path(7, CataloguePaths::Legacy),
            "/services/7"
        );
        assert_eq!(
            CatalogueKind::ServiceCategories.path(7, CataloguePaths::Company),
            "/company/7/service_categories"
        );
        assert_eq!(
            CatalogueKind::Staff.path(7, CataloguePaths::Company),
            "/company/7/staff"
        );
        assert_eq!(
            YclientsCatalogue::stream_id(7, CatalogueKind::Staff).to_string(),
            "yclients:7/staff"
        );
    }
}
