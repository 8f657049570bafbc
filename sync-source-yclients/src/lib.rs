//! # sync-source-yclients
//!
//! A [`sync_core::Source`] for the YClients REST API: clients and records
//! (appointments) of one or several companies.
//!
//! - [`YclientsConfig`]: base URL, partner token, user token or
//!   login/password (from the environment, names in [`config::env`], or a
//!   config file), paging and delta settings. `Debug` hides the secrets.
//! - [`YclientsApi`]: the HTTP client shared by every source using the same
//!   credentials (headers, user-token cache, one re-login on 401, retries,
//!   429 reported to the shared limiter).
//! - [`YclientsRecords`]: stream `yclients:<company>/records`, local days.
//! - [`YclientsClients`]: stream `yclients:<company>/clients`, client ids.
//!
//! ## Several companies
//! The documented limits (200 requests a minute, 5 a second) are per IP
//! address: every company synced from one machine shares them. Build one
//! [`YclientsApi`] and one `Arc<RateLimiter>` (from [`LIMITS`] scaled by the
//! chosen preset), then one source pair per company with
//! [`sources_for_companies`], and give every engine the same limiter.
//!
//! ```no_run
//! # async fn demo() -> sync_core::Result<()> {
//! use std::sync::Arc;
//! use sync_core::{plan::Preset, RateLimiter};
//! use sync_source_yclients::{sources_for_companies, YclientsConfig, LIMITS};
//!
//! let config = YclientsConfig::from_env()?;
//! let limiter = Arc::new(RateLimiter::new(LIMITS.scaled(Preset::Balanced.settings().utilization)));
//! for company in sources_for_companies(&config)? {
//!     // Engine::new(company.records.clone(), store, checkpoints, limiter.clone()) ...
//!     let _ = (&company.records, &company.clients, &limiter);
//! }
//! # Ok(()) }
//! ```

pub mod clients;
pub mod config;
mod core;
mod error;
pub mod model;
pub mod records;

use std::sync::Arc;

pub use crate::clients::YclientsClients;
pub use crate::config::{ClientsDelta, RecordsStrategy, YclientsConfig, YclientsFileConfig};
pub use crate::core::{YclientsApi, ACCEPT_V2};
pub use crate::records::{Probe, YclientsRecords};

use sync_core::RateLimits;

/// The documented limits: 5 requests a second and 200 a minute, per IP.
pub const LIMITS: RateLimits = RateLimits {
    per_second: Some(5),
    per_minute: Some(200),
    min_spacing: None,
};

/// The two sources of one company.
#[derive(Clone, Debug)]
pub struct CompanySources {
    /// The company id.
    pub company_id: u64,
    /// Its records (appointments), by local day.
    pub records: Arc<YclientsRecords>,
    /// Its clients, by id.
    pub clients: Arc<YclientsClients>,
}

/// One records source and one clients source per company of `config`, all
/// sharing one [`YclientsApi`] (one user token, one login).
pub fn sources_for_companies(config: &YclientsConfig) -> sync_core::Result<Vec<CompanySources>> {
    let api = Arc::new(YclientsApi::new(config)?);
    let config = Arc::new(config.clone());
    Ok(config
        .company_ids
        .iter()
        .map(|&company_id| CompanySources {
            company_id,
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
        .collect())
}
