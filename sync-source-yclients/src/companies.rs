//! The companies the user manages (`GET /companies?my=1`), as the keys of a
//! source, so that "every company of this account" is listed through the
//! core's budget, retries and session like any other request.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use sync_core::{
    Batch, Cursor, FetchContext, FetchCost, KeyPage, Page, Result, Source, SourceInfo, StreamId,
    SyncError,
};

use crate::core::{ApiRequest, YclientsApi};
use crate::records::list_of;
use crate::LIMITS;

/// The account's companies: [`Source::list_keys`] gives their ids. It has
/// nothing to fetch or store.
#[derive(Debug)]
pub struct YclientsCompanies {
    api: Arc<YclientsApi>,
}

impl YclientsCompanies {
    /// The companies of the user `api` logs in as.
    pub fn new(api: Arc<YclientsApi>) -> Self {
        Self { api }
    }
}

#[async_trait]
impl Source for YclientsCompanies {
    fn info(&self) -> SourceInfo {
        SourceInfo::keys(StreamId::new("yclients", "companies"), 1, true)
            .with_limits(LIMITS)
            .with_budget_key(self.api.budget_key())
            .with_cost(FetchCost {
                login: self.api.login_requests(),
                keys_per_page: 1000,
                ..FetchCost::default()
            })
    }

    async fn login(&self, ctx: &FetchContext) -> Result<()> {
        self.api.login(ctx).await
    }

    async fn fetch_page(&self, _: &Batch, _: Option<&Cursor>, _: &FetchContext) -> Result<Page> {
        Err(SyncError::invalid_input(
            "the company list is not a stream to sync; it only lists company ids",
        ))
    }

    /// `GET /companies?my=1` with both tokens: one list, no paging.
    async fn list_keys(&self, _: Option<&Cursor>, ctx: &FetchContext) -> Result<Option<KeyPage>> {
        let envelope = self
            .api
            .call(
                ctx,
                &ApiRequest::get("/companies".into(), vec![("my", "1".into())]),
            )
            .await?;
        let keys = list_of(envelope.data, "companies")?
            .iter()
            .map(|c| {
                c.get("id")
                    .and_then(|id| match id {
                        Value::Number(n) => n.as_i64(),
                        Value::String(s) => s.trim().parse().ok(),
                        _ => None,
                    })
                    .filter(|&id| id > 0)
                    .ok_or_else(|| {
                        SyncError::bad_data("companies: an item has no positive integer id")
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(KeyPage {
            keys,
            more: Vec::new(),
        }))
    }
}
