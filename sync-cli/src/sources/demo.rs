//! `sync-cli demo`: the bundled simulators on loopback, a complete sync of
//! both into the embedded SQLite store, then the status.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Days;
use sync_core::plan::Preset;
use sync_core::{
    Engine, FetchContext, Order, RateLimiter, RateLimits, RunReport, RunStatus, Secret, Source,
    SyncOptions, Target,
};
use sync_sim::booking::{BookingSim, BookingSimConfig};
use sync_sim::yclients::{SimLimits, YclientsSim, YclientsSimConfig};
use sync_source_scraper::{ScraperConfig, ScraperSource};
use sync_source_yclients::{sources_for_companies, YclientsConfig};

use crate::cli::DemoArgs;
use crate::config::{Settings, StoreSettings, DEFAULT_SQLITE_PATH};
use crate::error::{CliError, ExitCode};
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
    println!("Demo: simulators on 127.0.0.1, store {}", path.display());

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
    let limiter = Arc::new(RateLimiter::new(
        DEMO_LIMITS.scaled(preset.settings().utilization),
    ));
    let mut reports = Vec::new();
    let last = yc.end_date;
    let first = last - Days::new(u64::from(args.days) - 1);
    for company in sources_for_companies(&config)? {
        let ctx = FetchContext::new(company.clients.info().stream, limiter.clone());
        let clients_target = company.clients.target(&ctx).await?;
        reports.push(
            sync(
                company.clients.clone(),
                &stores,
                &limiter,
                &clients_target,
                200,
                Order::OldestFirst,
                plain,
            )
            .await?,
        );
        let days = Target::days(first, last, yc.tz)?;
        reports.push(
            sync(
                company.records.clone(),
                &stores,
                &limiter,
                &days,
                7,
                Order::NewestFirst,
                plain,
            )
            .await?,
        );
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
    let kennel_limiter = Arc::new(RateLimiter::new(kennel.info().limits));
    let boardings = Target::days(
        bc.start,
        bc.start + Days::new(u64::from(args.days) - 1),
        bsim.tz(),
    )?;
    reports.push(
        sync(
            kennel.clone(),
            &stores,
            &kennel_limiter,
            &boardings,
            7,
            Order::OldestFirst,
            plain,
        )
        .await?,
    );
    let bstats = bsim.stats();
    bsim.shutdown().await;

    println!();
    println!(
        "YClients simulator: {} requests, {} over its limits, {} answered 429.",
        ystats.requests, ystats.limit_breaches, ystats.responses_429
    );
    println!(
        "Booking-site simulator: {} requests, {} logins, {} expired sessions.",
        bstats.requests, bstats.logins, bstats.session_expiries
    );
    println!();

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
            println!("{stream}");
            print!("{}", render::coverage("Historical sync", &summary));
            print!(
                "{}",
                render::calendar(&summary, &|d| coverage.days.contains(d))
            );
            println!();
        }
    }
    let runs = stores.checkpoints.runs(None, reports.len()).await?;
    print!("{}", render::runs_table(&runs));
    println!(
        "\nDemo finished in {}. Try: sync-cli --sqlite {} history show {}",
        progress::human_duration(started.elapsed()),
        path.display(),
        reports.last().map(|r| r.id.0.as_str()).unwrap_or("RUN")
    );
    let all_ok = reports.iter().all(|r| r.status == RunStatus::Completed);
    Ok(if all_ok {
        ExitCode::Success
    } else {
        ExitCode::Partial
    })
}

async fn sync(
    source: Arc<dyn Source>,
    stores: &stores::Stores,
    limiter: &Arc<RateLimiter>,
    target: &Target,
    batch_size: u32,
    order: Order,
    plain: bool,
) -> Result<RunReport, CliError> {
    let engine = Engine::new(
        source.clone(),
        stores.store.clone(),
        stores.checkpoints.clone(),
        limiter.clone(),
    );
    let options = SyncOptions {
        batch_size: NonZeroU32::new(batch_size).unwrap_or(NonZeroU32::MIN),
        order,
        progress: Some(progress::reporter(source.info().stream.to_string(), plain)),
        ..SyncOptions::default()
    };
    let report = engine.run(target, &options).await?;
    println!(
        "{}: {} — {} created, {} updated, {} unchanged; {} requests, {} answered 429",
        report.stream,
        report.status,
        report.counts.created,
        report.counts.updated,
        report.counts.unchanged,
        report.requests,
        report.rate_limited
    );
    Ok(report)
}
