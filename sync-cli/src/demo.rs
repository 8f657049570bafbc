//! `sync-cli demo`: the bundled simulators on loopback, a complete sync of
//! both into the embedded SQLite store, then the status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Days;
use sync_core::plan::Preset;
use sync_core::{
    Budget, Engine, RateLimiter, RateLimits, RetryPolicy, RunReport, RunStatus, Secret,
    SessionCache, Source, Span, SyncOptions, Target,
};
use sync_sim::booking::{BookingSim, BookingSimConfig};
use sync_sim::yclients::{SimLimits, YclientsSim, YclientsSimConfig};
use sync_source_scraper::{ScraperConfig, ScraperSource};
use sync_source_yclients::{sources_for_companies, YclientsConfig};

use crate::cli::DemoArgs;
use crate::config::{Settings, StoreSettings, DEFAULT_SQLITE_PATH};
use crate::error::{CliError, ExitCode};
use crate::output::{out, outln};
use crate::{progress, render, stores};

/// The simulated API's limits: the documented 5/s and 200/min, four times
/// faster so the demo ends in seconds. The limiter holds them exactly.
const DEMO_LIMITS: RateLimits = RateLimits {
    per_second: Some(20),
    per_minute: Some(800),
    min_spacing: None,
};

/// Runs the demo.
pub(crate) async fn run(
    settings: &Settings,
    args: DemoArgs,
    plain: bool,
) -> Result<ExitCode, CliError> {
    if args.days == 0 || args.days > 365 {
        return Err(CliError::config("--days must be between 1 and 365"));
    }
    let path = match &settings.store {
        StoreSettings::Sqlite { path } => path.clone(),
        // The demo always uses the embedded store.
        StoreSettings::Postgres { .. } => DEFAULT_SQLITE_PATH.into(),
    };
    let started = Instant::now();
    let stores = stores::open_sqlite(&path).await?;
    outln!("Demo: simulators on 127.0.0.1, store {}", path.display())?;

    let preset = Preset::Balanced;
    let sim_error =
        |e: &dyn std::fmt::Display| CliError::failure(format!("cannot start a simulator: {e}"));

    // --- YClients: clients, then records of the last `days` days. ---
    let ysim = YclientsSim::start(YclientsSimConfig {
        limits: SimLimits::new(DEMO_LIMITS.per_second, DEMO_LIMITS.per_minute),
        ..YclientsSimConfig::default()
    })
    .await
    .map_err(|e| sim_error(&e))?;
    let yc = ysim.config().clone();
    let config = YclientsConfig::new(Secret::new(yc.partner_token.clone()), yc.companies.clone())
        .with_base_url(&ysim.base_url())?
        .with_login(yc.login.clone(), Secret::new(yc.password.clone()));
    let config = YclientsConfig {
        tz: yc.tz,
        ..config
    };
    let budget: Arc<dyn Budget> = Arc::new(RateLimiter::new(
        DEMO_LIMITS.scaled(preset.settings().utilization),
    ));
    let mut reports = Vec::new();
    let last = yc.end_date;
    let first = last - Days::new(u64::from(args.days) - 1);
    let every_client = Target::Keys(Span {
        first: 1,
        last: i64::MAX,
    });
    for company in sources_for_companies(&config)? {
        let session = company.session.clone();
        let clients = company.clients.clone() as Arc<dyn Source>;
        let run = Sync {
            stores: &stores,
            budget: &budget,
            session: &session,
            retry: RetryPolicy::default(),
            plain,
        };
        reports.push(run.sync(clients, &every_client).await?);
        let days = Target::days(first, last, yc.tz)?;
        reports.push(run.sync(company.records.clone(), &days).await?);
    }
    let ystats = ysim.stats();
    ysim.shutdown().await;

    // --- Kennel booking site: boardings of the first `days` days. ---
    let bsim = BookingSim::start(BookingSimConfig {
        days: args.days,
        // Sessions die after 2 s here (about 6 min on the real site), so the
        // demo shows the source noticing and logging in again.
        session_ttl: Duration::from_secs(2),
        ..BookingSimConfig::default()
    })
    .await
    .map_err(|e| sim_error(&e))?;
    let bc = BookingSimConfig::default();
    let base = url::Url::parse(&bsim.base_url())
        .map_err(|e| CliError::failure(format!("simulator URL: {e}")))?;
    let mut kennel = ScraperConfig::new(
        base,
        bc.username.clone(),
        Secret::new(bc.password.clone()),
        bsim.tz(),
    );
    kennel.limits = RateLimits::new(None, None).with_min_spacing(Duration::from_millis(5));
    kennel.session_max_age = Duration::from_secs(60);
    let kennel = Arc::new(ScraperSource::new(kennel)?);
    let kennel_budget: Arc<dyn Budget> = Arc::new(RateLimiter::new(kennel.info().limits));
    let boardings = Target::days(
        bc.start,
        bc.start + Days::new(u64::from(args.days) - 1),
        bsim.tz(),
    )?;
    let session = Arc::new(SessionCache::new());
    let run = Sync {
        stores: &stores,
        budget: &kennel_budget,
        session: &session,
        // The simulator's faults are off; a short retry keeps the demo quick.
        retry: RetryPolicy::default(),
        plain,
    };
    reports.push(run.sync(kennel.clone(), &boardings).await?);
    let bstats = bsim.stats();
    bsim.shutdown().await;

    outln!()?;
    outln!(
        "YClients simulator: {} requests, {} over its limits, {} answered 429.",
        ystats.requests,
        ystats.limit_breaches,
        ystats.responses_429
    )?;
    outln!(
        "Booking-site simulator: {} requests, {} logins, {} expired sessions.",
        bstats.requests,
        bstats.logins,
        bstats.session_expiries
    )?;
    outln!()?;

    // --- Status ---
    for (stream, target) in [
        (
            sync_source_yclients::YclientsRecords::stream_id(yc.companies[0]),
            Target::days(first, last, yc.tz)?,
        ),
        (kennel.info().stream, boardings),
    ] {
        let coverage = stores.checkpoints.coverage(&stream).await?;
        if let Target::Days { range, .. } = target {
            let summary = coverage.days.coverage(range);
            outln!("{stream}")?;
            out!("{}", render::coverage("Historical sync", &summary))?;
            out!(
                "{}",
                render::calendar(&summary, &|d| coverage.days.contains(d))
            )?;
            outln!()?;
        }
    }
    let runs = stores.checkpoints.runs(None, reports.len()).await?;
    out!("{}", render::runs_table(&runs))?;
    outln!(
        "\nDemo finished in {}. Try: sync-cli --sqlite {} history show {}",
        render::human_duration(started.elapsed()),
        path.display(),
        reports.last().map(|r| r.id.0.as_str()).unwrap_or("RUN")
    )?;
    let all_ok = reports.iter().all(|r| r.status == RunStatus::Completed);
    Ok(if all_ok {
        ExitCode::Success
    } else {
        ExitCode::Partial
    })
}

/// What the demo's runs share.
struct Sync<'a> {
    stores: &'a stores::Stores,
    budget: &'a Arc<dyn Budget>,
    session: &'a Arc<SessionCache>,
    retry: RetryPolicy,
    plain: bool,
}

impl Sync<'_> {
    /// One run with the defaults a user gets.
    async fn sync(&self, source: Arc<dyn Source>, target: &Target) -> Result<RunReport, CliError> {
        let label = source.info().stream.to_string();
        let engine = Engine::new(
            source,
            self.stores.store.clone(),
            self.stores.checkpoints.clone(),
            self.budget.clone(),
        )
        .with_session(self.session.clone());
        let options = SyncOptions::builder()
            .retry(self.retry.clone())
            .progress(progress::reporter(label, self.plain))
            .build();
        let report = engine.run(target, &options).await?;
        outln!(
            "{}: {} — {} created, {} updated, {} unchanged; {} requests, {} answered 429",
            report.stream,
            report.status,
            report.counts.created,
            report.counts.updated,
            report.counts.unchanged,
            report.requests,
            report.rate_limited
        )?;
        Ok(report)
    }
}
