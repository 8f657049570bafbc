//! # sync-source-yclients
//!
//! A [`sync_core::Source`] for the YClients REST API: clients and records
//! (appointments) of one or several companies.
//!
//! - [`YclientsConfig`]: base URL, partner token, user token or
//!   login/password (from the environment, names in [`config::env`], or a
//!   config file), paging and delta settings. `Debug` hides the secrets.
//! - [`YclientsApi`]: the HTTP client shared by every source using the same
//!   credentials (headers, the user token, the envelope, errors). It makes
//!   one attempt per request and classifies what went wrong; retries,
//!   logging in again after a 401 and pacing are sync-core's wrappers.
//! - [`YclientsRecords`]: stream `yclients:<company>/records`, local days.
//! - [`YclientsClients`]: stream `yclients:<company>/clients`, client ids.
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
//! use sync_core::{plan::Preset, Engine, MemoryStore, RateLimiter};
//! use sync_source_yclients::{sources_for_companies, YclientsConfig, LIMITS};
//!
//! let config = YclientsConfig::from_env()?;
//! let budget = Arc::new(RateLimiter::new(LIMITS.scaled(Preset::Balanced.settings().utilization)));
//! let store = Arc::new(MemoryStore::new());
//! for company in sources_for_companies(&config)? {
//!     let engine = Engine::new(company.records.clone(), store.clone(), store.clone(), budget.clone())
//!         .with_session(company.session.clone());
//!     let _ = engine;
//! }
//! # Ok(()) }
//! ```

pub mod clients;
pub mod companies;
pub mod config;
mod core;
mod error;
pub mod model;
pub mod records;

use std::sync::Arc;

pub use crate::clients::YclientsClients;
pub use crate::companies::YclientsCompanies;
pub use crate::config::{ClientsDelta, YclientsConfig, YclientsFileConfig};
pub use crate::core::{YclientsApi, ACCEPT_V2};
pub use crate::records::YclientsRecords;

use sync_core::{RateLimits, SessionCache};

/// The documented limits: 5 requests a second and 200 a minute, per IP.
pub const LIMITS: RateLimits = RateLimits {
    per_second: Some(5),
    per_minute: Some(200),
    min_spacing: None,
};

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

/// One records source and one clients source per company of `config`, all
/// sharing one [`YclientsApi`] (one user token) and one session (one login).
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
        })
        .collect()
}
