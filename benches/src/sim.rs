//! The YClients simulator on loopback, and the real YClients source pointed
//! at it.

use std::time::Duration;

use sync_core::{DayRange, RateLimits, Secret, Target};
use sync_sim::yclients::{RunningYclientsSim, SimLimits, YclientsSim, YclientsSimConfig};
use sync_source_yclients::{sources_for_companies, CompanySources, YclientsConfig};

use crate::BoxError;

/// The company every benchmark syncs.
pub const COMPANY: u64 = 101;

/// A simulator config with `records` records over the default two years,
/// `clients` clients and `limits`.
pub fn config(records: usize, clients: usize, limits: SimLimits) -> YclientsSimConfig {
    YclientsSimConfig {
        records,
        clients,
        limits,
        ..YclientsSimConfig::default()
    }
}

/// A running simulator and the sources of its company.
#[derive(Debug)]
pub struct SimSetup {
    /// The simulator.
    pub sim: RunningYclientsSim,
    /// The records and clients sources, pointed at it.
    pub sources: CompanySources,
}

impl SimSetup {
    /// Starts the simulator and builds the sources with pages of
    /// `records_page_size` records.
    pub async fn start(
        config: YclientsSimConfig,
        records_page_size: u32,
    ) -> Result<Self, BoxError> {
        let sim = YclientsSim::start(config).await?;
        let cfg = sim.config().clone();
        let mut source = YclientsConfig::new(Secret::new(cfg.partner_token.clone()), vec![COMPANY])
            .with_base_url(&sim.base_url())?
            .with_user_token(Secret::new(cfg.user_token.clone()));
        source.tz = cfg.tz;
        source.records_page_size = records_page_size;
        source.request_timeout = Duration::from_secs(30);
        let sources = sources_for_companies(&source)?
            .into_iter()
            .next()
            .ok_or("no company source")?;
        Ok(Self { sim, sources })
    }

    /// Every day the simulator has records for.
    pub fn range(&self) -> Result<DayRange, BoxError> {
        let c = self.sim.config();
        DayRange::new(c.first_day(), c.end_date).ok_or_else(|| "empty day range".into())
    }

    /// The whole range as a target in the company's time zone.
    pub fn target(&self) -> Result<Target, BoxError> {
        Ok(Target::Days {
            range: self.range()?,
            tz: self.sim.config().tz,
        })
    }

    /// The limits the simulator enforces, as the limiter takes them.
    pub fn limits(&self) -> RateLimits {
        let l = self.sim.config().limits;
        RateLimits::new(l.per_second, l.per_minute)
    }
}
