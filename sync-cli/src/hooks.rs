//! YClients webhooks as hints: the route that receives them (answers at
//! once, keeps each event in the store's hint queue, never writes data) and
//! the loop that syncs each hinted stream with a short delta, within the
//! shared request budget. Many events for one entity are one fetch.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use sync_core::{
    Budget, CancellationToken, Engine, HintQueue, RunStatus, Secret, Source, StreamId, SyncMode,
    SyncOptions, Target, Units,
};
use sync_source_yclients::webhook::{parse_event, WebhookHint, MAX_EVENT_BYTES};
use sync_source_yclients::CompanySources;
use tokio::time::Instant;

use crate::stores::Stores;

/// The header a webhook may carry the shared secret in (or `?secret=`).
pub(crate) const SECRET_HEADER: &str = "x-webhook-secret";
/// How often the hint queue is looked at.
const POLL: Duration = Duration::from_millis(500);
/// How long a stream whose sync failed waits before it is tried again.
const BACKOFF: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct Receiver {
    hints: Arc<dyn HintQueue>,
    companies: Arc<BTreeSet<u64>>,
    secret: Option<Arc<Secret>>,
}

/// The webhook route at `path`, keeping hints for `companies` only.
pub(crate) fn router(
    path: &str,
    hints: Arc<dyn HintQueue>,
    companies: BTreeSet<u64>,
    secret: Option<Secret>,
) -> Router {
    let receiver = Receiver {
        hints,
        companies: Arc::new(companies),
        secret: secret.map(Arc::new),
    };
    Router::new()
        .route(path, post(receive))
        .layer(DefaultBodyLimit::max(MAX_EVENT_BYTES))
        .with_state(receiver)
}

fn refuse(status: StatusCode, message: String) -> Response {
    tracing::warn!(status = status.as_u16(), %message, "webhook refused");
    (status, Json(json!({ "error": message }))).into_response()
}

/// Equal without telling how much of it matched by how long it took.
fn same_secret(given: &str, secret: &Secret) -> bool {
    let (a, b) = (given.as_bytes(), secret.expose().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn receive(
    State(receiver): State<Receiver>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(secret) = &receiver.secret {
        let given = headers
            .get(SECRET_HEADER)
            .and_then(|v| v.to_str().ok())
            .or(query.get("secret").map(String::as_str));
        if !given.is_some_and(|g| same_secret(g, secret)) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "missing or wrong webhook secret".into(),
            );
        }
    }
    let event = match parse_event(&body) {
        Ok(event) => event,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("not a webhook event: {e}")),
    };
    match event {
        WebhookHint::Ignored { resource } => {
            tracing::info!(%resource, "webhook for a resource no stream keeps; ignored");
            (StatusCode::ACCEPTED, Json(json!({ "ignored": resource }))).into_response()
        }
        WebhookHint::Fetch { company_id, hint } => {
            if !receiver.companies.contains(&company_id) {
                return refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("company {company_id} is not synced here"),
                );
            }
            match receiver.hints.add_hint(&hint).await {
                Ok(()) => {
                    tracing::info!(stream = %hint.stream, entity = %hint.entity, id = %hint.external_id, "webhook kept as a hint");
                    (StatusCode::ACCEPTED, Json(json!({ "queued": true }))).into_response()
                }
                Err(e) => refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the hint could not be kept: {e}"),
                ),
            }
        }
    }
}

/// What the hint loop syncs with.
pub(crate) struct HintWorker {
    pub(crate) companies: Vec<CompanySources>,
    pub(crate) stores: Stores,
    pub(crate) hints: Arc<dyn HintQueue>,
    pub(crate) budget: Arc<dyn Budget>,
    pub(crate) options: SyncOptions,
}

impl HintWorker {
    /// Syncs hinted streams until `cancel`: each with one delta run (the
    /// catalogue lists whole), its hints cleared when the run completed.
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let mut failed_at: HashMap<StreamId, Instant> = HashMap::new();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
            let pending = match self.hints.pending_hints().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "the hint queue cannot be read; trying again");
                    continue;
                }
            };
            for p in pending {
                if failed_at
                    .get(&p.stream)
                    .is_some_and(|t| t.elapsed() < BACKOFF)
                {
                    continue;
                }
                match self.sync(&p.stream).await {
                    Ok(true) => {
                        failed_at.remove(&p.stream);
                        match self.hints.clear_hints(&p.stream, p.up_to).await {
                            Ok(n) => {
                                tracing::info!(stream = %p.stream, entities = n, hints = p.received, "hinted stream synced")
                            }
                            Err(e) => {
                                tracing::warn!(stream = %p.stream, error = %e, "hints could not be cleared; they will be synced again")
                            }
                        }
                    }
                    Ok(false) => {
                        failed_at.insert(p.stream.clone(), Instant::now());
                    }
                    Err(e) => {
                        tracing::warn!(stream = %p.stream, error = %e, "hinted stream not synced; trying again later");
                        failed_at.insert(p.stream.clone(), Instant::now());
                    }
                }
                if cancel.is_cancelled() {
                    return;
                }
            }
        }
    }

    /// One delta run of `stream`: true when it completed.
    async fn sync(&self, stream: &StreamId) -> sync_core::Result<bool> {
        let Some(company) = self
            .companies
            .iter()
            .find(|c| stream.source == format!("yclients:{}", c.company_id))
        else {
            tracing::warn!(%stream, "a hint for a stream not synced here; dropped");
            return Ok(true);
        };
        let mut runs: Vec<(Arc<dyn Source>, Target, SyncMode, bool)> = company
            .catalogue_runs()
            .into_iter()
            .map(|r| (r.source, r.target, r.mode, r.force))
            .collect();
        let clients = company
            .clients_run(self.stores.checkpoints.as_ref(), SyncMode::Delta, false)
            .await?;
        runs.push((clients.source, clients.target, clients.mode, clients.force));
        let records = company.records.info();
        if let Units::Days { tz, .. } = records.units {
            // A delta: the changes since the last completed run, whatever
            // the range; today stands for the range.
            let today = chrono::Utc::now().with_timezone(&tz).date_naive();
            runs.push((
                company.records.clone(),
                Target::days(today, today, tz)?,
                SyncMode::Delta,
                false,
            ));
        }
        let Some(run) = runs
            .into_iter()
            .find(|(source, ..)| &source.info().stream == stream)
        else {
            tracing::warn!(%stream, "a hint for a stream this company has not; dropped");
            return Ok(true);
        };
        let (source, target, mode, force) = run;
        let mut options = self.options.clone();
        options.mode = mode;
        options.force = force;
        let engine = Engine::new(
            source,
            self.stores.store.clone(),
            self.stores.checkpoints.clone(),
            self.budget.clone(),
        )
        .with_session(company.session.clone());
        let report = engine.run(&target, &options).await?;
        tracing::info!(%stream, run = %report.id, status = %report.status, created = report.counts.created, updated = report.counts.updated, deleted = report.counts.deleted, requests = report.requests, "hinted stream: delta run finished");
        Ok(report.status == RunStatus::Completed)
    }
}
