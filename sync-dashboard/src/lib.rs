//! # sync-dashboard
//!
//! A small read-only web dashboard over the store a sync writes to: every
//! stream's coverage of its day target, a calendar of stored and missing
//! days with per-day counts, the run history with what each run changed
//! field by field, and the runs in progress, refreshed every second. Every
//! page has a JSON twin under `/api`.
//!
//! The dashboard reads through the [`Store`] and [`CheckpointStore`] traits
//! only, so it works over any store. Every page is bounded: lists are
//! paginated, a calendar reads one year, a run's changes are read a page at
//! a time ([`CheckpointStore::run_changes_page`]).
//!
//! All routes are declared in [`Dashboard::router`]; a caller adds its own
//! (a webhook receiver, say) by merging another [`axum::Router`] into it.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<sync_core::MemoryStore>) -> std::io::Result<()> {
//! let dashboard = sync_dashboard::Dashboard::new(store.clone(), store);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! sync_dashboard::serve(listener, dashboard.router(), std::future::pending()).await
//! # }
//! ```

mod api;
mod calendar;
mod data;
mod error;
mod html;
mod live;
mod overview;
mod runs;

use std::future::Future;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use sync_core::{CheckpointStore, DayRange, Store};

/// What the pages read: the store (records and checkpoints, usually the
/// same object) and how to describe it.
#[derive(Clone, Debug)]
pub struct Dashboard {
    inner: Arc<Inner>,
}

#[derive(Clone, Debug)]
struct Inner {
    store: Arc<dyn Store>,
    checkpoints: Arc<dyn CheckpointStore>,
    target: Option<DayRange>,
    store_label: String,
}

impl Dashboard {
    /// A dashboard over `store` and `checkpoints`. Without a configured
    /// target ([`Dashboard::with_target`]), a day stream's coverage is
    /// measured over the span from its first to its last covered day.
    pub fn new(store: Arc<dyn Store>, checkpoints: Arc<dyn CheckpointStore>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                checkpoints,
                target: None,
                store_label: String::new(),
            }),
        }
    }

    /// Measures the coverage of every day stream against `range` (the
    /// configured target range).
    pub fn with_target(mut self, range: DayRange) -> Self {
        self.inner_mut().target = Some(range);
        self
    }

    /// Names the store in the page footer (e.g. the SQLite file or the
    /// database URL with its password masked; never give a secret here).
    pub fn with_store_label(mut self, label: impl Into<String>) -> Self {
        self.inner_mut().store_label = label.into();
        self
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.inner)
    }

    /// Every route of the dashboard, pages and JSON API. Routes added
    /// later (a webhook receiver) belong here or in a router merged into
    /// this one.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(overview::page))
            .route("/streams/{stream}/calendar", get(calendar::page))
            .route("/streams/{stream}/days/{date}", get(calendar::day_page))
            .route("/runs", get(runs::list_page))
            .route("/runs/{id}", get(runs::detail_page))
            .route("/live", get(live::page))
            .route("/api/streams", get(api::streams))
            .route("/api/streams/{stream}/calendar", get(api::calendar))
            .route("/api/streams/{stream}/days/{date}", get(api::day))
            .route("/api/runs", get(api::runs))
            .route("/api/runs/{id}", get(api::run))
            .route("/api/live", get(api::live))
            .fallback(error::not_found)
            .with_state(self.clone())
    }
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
