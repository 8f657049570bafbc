//! # sync-source-yclients
//!
//! [`sync_core::Source`]s for the YClients REST API: the whole of one or
//! several companies (records, clients, services, service categories and
//! staff).
//!
//! - [`YclientsConfig`]: base URL, partner token, user token or
//!   login/password (from the environment, names in [`config::env`], or a
//!   config file), paging and delta settings. `Debug` hides the secrets.
//! - [`YclientsApi`]: the HTTP client shared by every source using the same
//!   credentials (headers, the user token, the envelope, errors). It makes
//!   one attempt per request and classifies what went wrong; retries,
//!   logging in again after a 401 and pacing are sync-core's wrappers.
//! - [`YclientsRecords`]: stream `yclients:<company>/records`, local days.
//! - [`YclientsClients`]: stream `yclients:<company>/clients`, client ids;
//!   deltas by the deprecated `changed_after` list, with a periodic full
//!   scan for deletions.
//! - [`YclientsCatalogue`]: streams `yclients:<company>/service_categories`,
//!   `/services` and `/staff`, each fetched whole every run, removals found
//!   by absence.
//! - [`CompanySources::runs`]: the streams of a whole company sync, in
//!   order, each with how it runs.
//!
//! Every stream of a company stores its records under the source
//! `yclients:<company>`, so records, clients and the catalogue of a company
//! can be joined in the store (the stores' `yclients_visit_details` and
//! `yclients_client_visits` views do).
//!
//! ## Several companies
//! The documented limits (200 requests a minute, 5 a second) are per IP
//! address: every company synced from one machine shares them. Build the
//! sources of every company with [`sources_for_companies`] (they share one
//! [`YclientsApi`] and one session), and give every engine the same budget
//! (a shared one from the store, or one `RateLimiter` from [`LIMITS`]
//! scaled by the chosen preset) and the same session.
//!
//! ```no_run
//! # async fn demo() -> sync_core::Result<()> {
//! use std::sync::Arc;
//! use sync_core::{plan::Preset, Engine, MemoryStore, RateLimiter, SyncMode, SyncOptions, Target};
//! use sync_source_yclients::{sources_for_companies, YclientsConfig, LIMITS};
//!
//! let config = YclientsConfig::from_env()?;
//! let budget = Arc::new(RateLimiter::new(LIMITS.scaled(Preset::Balanced.settings().utilization)));
//! let store = Arc::new(MemoryStore::new());
//! let days = Target::days("2024-01-01".parse().unwrap(), "2024-12-31".parse().unwrap(), config.tz)?;
//! for company in sources_for_companies(&config)? {
//!     for run in company.runs(store.as_ref(), days.clone(), SyncMode::Delta, false).await? {
//!         let engine = Engine::new(run.source.clone(), store.clone(), store.clone(), budget.clone())
//!             .with_session(company.session.clone());
//!         let options = SyncOptions::builder().mode(run.mode).force(run.force).build();
//!         engine.run(&run.target, &options).await?;
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod catalogue;
pub mod clients;
pub mod companies;
pub mod config;
mod core;
mod error;
pub mod model;
pub mod records;
pub mod webhook;

use std::sync::Arc;

pub use crate::catalogue::{CatalogueKind, YclientsCatalogue};
pub use crate::clients::{full_scan_due, ClientsDeltaUsed, YclientsClients};
pub use crate::companies::YclientsCompanies;
pub use crate::config::{
    default_budget_key, CataloguePaths, ClientsDelta, FullScanSchedule, YclientsConfig,
    YclientsFileConfig,
};
pub use crate::core::{YclientsApi, ACCEPT_V2};
pub use crate::records::YclientsRecords;

use sync_core::{CheckpointStore, KeyRange, RateLimits, SessionCache, Source, SyncMode, Target};

/// The documented limits: 5 requests a second and 200 a minute, per IP.
pub const LIMITS: RateLimits = RateLimits {
    per_second: Some(5),
    per_minute: Some(200),
    min_spacing: None,
};

/// Runs looked back at to decide whether a clients full scan is due.
const HISTORY: usize = 1000;

/// The sources of one company.
#[derive(Clone, Debug)]
pub struct CompanySources {
    /// The company id.
    pub company_id: u64,
    /// The session of the credentials, shared by every company's sources:
    /// give it to each engine (`Engine::with_session`).
    pub session: Arc<SessionCache>,
    /// Its records (appointments), by local day.
    pub records: Arc<YclientsRecords>,
    /// Its clients, by id.
    pub clients: Arc<YclientsClients>,
    /// Its catalogue lists, in the order of [`CatalogueKind::ALL`].
    pub catalogue: Vec<Arc<YclientsCatalogue>>,
    config: Arc<YclientsConfig>,
}

/// One stream of a company sync, and how to run it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StreamRun {
    /// The bare source (the engine adds retries, sessions and pacing).
    pub source: Arc<dyn Source>,
    /// What to run.
    pub target: Target,
    /// Full or delta.
    pub mode: SyncMode,
    /// Fetch again what is stored (the catalogue every run, a clients full
    /// scan).
    pub force: bool,
    /// Why it runs this way, for people, when it is not plain.
    pub note: Option<String>,
}

/// Every id: the target of a listed stream (the engine takes the ids the
/// source lists).
fn every_id() -> Target {
    Target::Keys(KeyRange {
        first: 1,
        last: i64::MAX,
    })
}

impl CompanySources {
    /// The catalogue lists, each fetched whole (a forced full run: removals
    /// show by absence), categories first.
    pub fn catalogue_runs(&self) -> Vec<StreamRun> {
        self.catalogue
            .iter()
            .map(|c| StreamRun {
                source: c.clone(),
                target: every_id(),
                mode: SyncMode::Full,
                force: true,
                note: None,
            })
            .collect()
    }

    /// How the clients run: a full run is a full scan (forced: every client
    /// again, deleted ones found); a delta run uses the clients delta,
    /// unless `force` or the configured schedule makes it a full scan (the
    /// stream's run history in `checkpoints` says when the last was).
    pub async fn clients_run(
        &self,
        checkpoints: &dyn CheckpointStore,
        mode: SyncMode,
        force: bool,
    ) -> sync_core::Result<StreamRun> {
        let scan = |note: String| StreamRun {
            source: self.clients.clone(),
            target: every_id(),
            mode: SyncMode::Full,
            force: true,
            note: Some(note),
        };
        if mode == SyncMode::Full {
            return Ok(scan("full scan of the clients".into()));
        }
        if force {
            return Ok(scan("full scan of the clients (--force)".into()));
        }
        let runs = checkpoints
            .runs(Some(&YclientsClients::stream_id(self.company_id)), HISTORY)
            .await?;
        Ok(
            match full_scan_due(self.config.clients_full_scan, &runs, chrono::Utc::now()) {
                Some(reason) => {
                    tracing::info!(company = self.company_id, %reason, "clients: a full scan instead of a delta");
                    scan(format!("full scan of the clients: {reason}"))
                }
                None => StreamRun {
                    source: self.clients.clone(),
                    target: every_id(),
                    mode: SyncMode::Delta,
                    force: false,
                    note: None,
                },
            },
        )
    }

    /// The streams of a whole company sync in order: the catalogue (small,
    /// and what records point at), the clients, then the records of
    /// `records` (days) with `mode` and `force` as given.
    pub async fn runs(
        &self,
        checkpoints: &dyn CheckpointStore,
        records: Target,
        mode: SyncMode,
        force: bool,
    ) -> sync_core::Result<Vec<StreamRun>> {
        let mut runs = self.catalogue_runs();
        runs.push(self.clients_run(checkpoints, mode, force).await?);
        runs.push(StreamRun {
            source: self.records.clone(),
            target: records,
            mode,
            force,
            note: None,
        });
        Ok(runs)
    }
}

/// The source listing the companies the user of `config` manages
/// (`GET /companies?my=1`), and the session it logs in with (give the same
/// session to the companies' sources, see [`sources_for`]).
pub fn account(
    config: &YclientsConfig,
) -> sync_core::Result<(Arc<YclientsApi>, Arc<SessionCache>, YclientsCompanies)> {
    let api = Arc::new(YclientsApi::new(config)?);
    let session = Arc::new(SessionCache::new());
    let companies = YclientsCompanies::new(api.clone());
    Ok((api, session, companies))
}

/// The sources of every company of `config`, all sharing one
/// [`YclientsApi`] (one user token) and one session (one login).
pub fn sources_for_companies(config: &YclientsConfig) -> sync_core::Result<Vec<CompanySources>> {
    config.validate()?;
    let api = Arc::new(YclientsApi::new(config)?);
    let session = Arc::new(SessionCache::new());
    Ok(sources_for(&api, &session, config, &config.company_ids))
}

/// The sources of `companies`, on an `api` and a `session` already made
/// (e.g. by [`account`], after listing the account's companies).
pub fn sources_for(
    api: &Arc<YclientsApi>,
    session: &Arc<SessionCache>,
    config: &YclientsConfig,
    companies: &[u64],
) -> Vec<CompanySources> {
    let config = Arc::new(config.clone());
    companies
        .iter()
        .map(|&company_id| CompanySources {
            company_id,
            session: session.clone(),
            records: Arc::new(YclientsRecords::new(
                api.clone(),
                config.clone(),
                company_id,
            )),
            clients: Arc::new(YclientsClients::new(
                api.clone(),
                config.clone(),
                company_id,
            )),
            catalogue: CatalogueKind::ALL
                .iter()
                .map(|&kind| {
                    Arc::new(YclientsCatalogue::new(
                        api.clone(),
                        config.clone(),
                        company_id,
                        kind,
                    ))
                })
                .collect(),
            config: config.clone(),
        })
        .collect()
}
