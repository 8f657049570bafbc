//! Building sources from the settings: the one place that knows every
//! adapter's configuration.

pub(crate) mod demo;

use std::sync::Arc;
use std::time::Duration;

use sync_core::plan::{Strategy, Workload};
use sync_core::{
    FetchContext, RateLimiter, RateLimits, Secret, Source, Span, StreamId, SyncMode, Target, Tz,
};
use sync_source_scraper::{ScraperConfig, ScraperSource};
use sync_source_yclients::{
    sources_for_companies, YclientsClients, YclientsConfig, YclientsRecords,
};

use crate::cli::{PlanArgs, SourceKind, TargetArgs};
use crate::commands::day_range;
use crate::config::Settings;
use crate::error::CliError;

/// Sources ready to run, sharing one limiter (one set of credentials).
pub(crate) struct BuiltSources {
    /// One source per company (YClients) or one (kennel).
    pub(crate) sources: Vec<Arc<dyn Source>>,
    /// Client sources, for their id-list targets (YClients clients only).
    pub(crate) clients: Vec<Arc<YclientsClients>>,
    /// Record sources, to choose their fetching strategy (YClients only).
    pub(crate) records: Vec<Arc<YclientsRecords>>,
    /// The shared limiter, at the preset's share of the documented limits.
    pub(crate) limiter: Arc<RateLimiter>,
    /// The limits the external system documents.
    pub(crate) documented_limits: RateLimits,
}

/// The limits the external system documents (the kennel site's are the
/// polite pacing of the earlier importer, adjustable in [kennel]).
pub(crate) fn documented_limits(kind: SourceKind, settings: &Settings) -> RateLimits {
    match kind {
        SourceKind::Yclients | SourceKind::YclientsClients => sync_source_yclients::LIMITS,
        SourceKind::Kennel => kennel_limits(settings),
    }
}

fn kennel_limits(settings: &Settings) -> RateLimits {
    let mut limits = ScraperConfig::polite_limits();
    if let Some(ms) = settings.kennel.min_spacing_ms {
        limits.min_spacing = (ms > 0).then(|| Duration::from_millis(ms));
    }
    if let Some(n) = settings.kennel.per_minute {
        limits.per_minute = (n > 0).then_some(n);
    }
    limits
}

/// Builds the sources of `kind` from the settings; a missing credential or
/// a bad setting is a configuration error naming it.
pub(crate) fn build(
    kind: SourceKind,
    settings: &Settings,
    args: &TargetArgs,
    utilization: f64,
) -> Result<BuiltSources, CliError> {
    let documented = documented_limits(kind, settings);
    let limiter = Arc::new(RateLimiter::new(documented.scaled(utilization)));
    match kind {
        SourceKind::Yclients | SourceKind::YclientsClients => {
            let config = yclients_config(settings, args)?;
            let companies = sources_for_companies(&config)?;
            let mut sources: Vec<Arc<dyn Source>> = Vec::new();
            let mut clients = Vec::new();
            let mut records = Vec::new();
            for c in companies {
                if kind == SourceKind::Yclients {
                    sources.push(c.records.clone());
                    records.push(c.records.clone());
                } else {
                    sources.push(c.clients.clone());
                    clients.push(c.clients.clone());
                }
            }
            Ok(BuiltSources {
                sources,
                clients,
                records,
                limiter,
                documented_limits: documented,
            })
        }
        SourceKind::Kennel => {
            let config = kennel_config(settings)?;
            let source = ScraperSource::new(config)?;
            Ok(BuiltSources {
                sources: vec![Arc::new(source)],
                clients: Vec::new(),
                records: Vec::new(),
                limiter,
                documented_limits: documented,
            })
        }
    }
}

/// The YClients configuration from the settings.
pub(crate) fn yclients_config(
    settings: &Settings,
    args: &TargetArgs,
) -> Result<YclientsConfig, CliError> {
    let y = &settings.yclients;
    let partner = y.partner_token.clone().ok_or_else(|| {
        CliError::config(
            "missing credential: set YCLIENTS_PARTNER_TOKEN (or partner_token_file in [yclients])",
        )
    })?;
    let companies = company_ids(settings, args)?;
    let mut config = YclientsConfig::new(partner, companies).with_base_url(&y.base_url)?;
    config.tz = crate::config::parse_tz(&y.tz, "[yclients] tz / YCLIENTS_TZ")?;
    match (&y.login, &y.password, &y.user_token) {
        (Some(login), Some(password), _) => config = config.with_login(login.clone(), password.clone()),
        (_, _, Some(token)) => config = config.with_user_token(token.clone()),
        (Some(_), None, None) => {
            return Err(CliError::config(
                "missing credential: YCLIENTS_LOGIN is set but YCLIENTS_PASSWORD is not (or password_file in [yclients])",
            ))
        }
        _ => {
            return Err(CliError::config(
                "missing credential: set YCLIENTS_USER_TOKEN, or YCLIENTS_LOGIN and YCLIENTS_PASSWORD",
            ))
        }
    }
    if let Some(n) = y.page_size {
        config.records_page_size = n;
    }
    if let Some(n) = y.recheck_days {
        config.recheck_days = n;
    }
    config.validate()?;
    Ok(config)
}

fn company_ids(settings: &Settings, args: &TargetArgs) -> Result<Vec<u64>, CliError> {
    let ids = if args.companies.is_empty() {
        settings.yclients.company_ids.clone()
    } else {
        args.companies.clone()
    };
    if ids.is_empty() {
        return Err(CliError::config(
            "no company: pass --company ID, or set YCLIENTS_COMPANY_ID or company_ids in [yclients]",
        ));
    }
    Ok(ids)
}

/// The kennel booking-site configuration from the settings.
pub(crate) fn kennel_config(settings: &Settings) -> Result<ScraperConfig, CliError> {
    let k = &settings.kennel;
    let base = k.base_url.as_deref().ok_or_else(|| {
        CliError::config("no kennel site: set KENNEL_BASE_URL or base_url in [kennel]")
    })?;
    let base = url::Url::parse(base)
        .map_err(|e| CliError::config(format!("kennel base URL {base:?} is not a URL: {e}")))?;
    let username = k.username.clone().ok_or_else(|| {
        CliError::config("missing credential: set KENNEL_USERNAME or username in [kennel]")
    })?;
    let password: Secret = k.password.clone().ok_or_else(|| {
        CliError::config("missing credential: set KENNEL_PASSWORD (or password_file in [kennel])")
    })?;
    let tz = crate::config::parse_tz(&k.tz, "[kennel] tz / KENNEL_TZ")?;
    let mut config = ScraperConfig::new(base, username, password, tz);
    config.limits = kennel_limits(settings);
    if let Some(secs) = k.session_max_age_secs {
        config.session_max_age = Duration::from_secs(secs);
    }
    config.validate()?;
    Ok(config)
}

/// The streams of `kind`, without credentials (for `status`).
pub(crate) fn streams(
    kind: SourceKind,
    settings: &Settings,
    args: &TargetArgs,
) -> Result<Vec<StreamId>, CliError> {
    Ok(match kind {
        SourceKind::Yclients => company_ids(settings, args)?
            .into_iter()
            .map(YclientsRecords::stream_id)
            .collect(),
        SourceKind::YclientsClients => company_ids(settings, args)?
            .into_iter()
            .map(YclientsClients::stream_id)
            .collect(),
        SourceKind::Kennel => {
            let base = settings.kennel.base_url.as_deref().ok_or_else(|| {
                CliError::config("no kennel site: set KENNEL_BASE_URL or base_url in [kennel]")
            })?;
            let url = url::Url::parse(base).map_err(|e| {
                CliError::config(format!("kennel base URL {base:?} is not a URL: {e}"))
            })?;
            let host = url.host_str().unwrap_or("unknown");
            let source = match url.port() {
                Some(port) => format!("kennel:{host}:{port}"),
                None => format!("kennel:{host}"),
            };
            vec![StreamId::new(source, sync_source_scraper::STREAM)]
        }
    })
}

/// The target of a run: local days for records and boardings. Client
/// targets are id lists that only the source can give, see
/// [`client_target`]; here they are the whole key space.
pub(crate) fn target(
    kind: SourceKind,
    settings: &Settings,
    args: &TargetArgs,
    tz: Tz,
    mode: SyncMode,
) -> Result<Target, CliError> {
    match kind {
        SourceKind::YclientsClients => Ok(Target::Keys(Span {
            first: 1,
            last: i64::MAX,
        })),
        _ => {
            // A delta run needs no range; the default target is still shown.
            if mode == SyncMode::Delta && args.from.is_none() && settings.from.is_none() {
                let today = chrono::Utc::now().with_timezone(&tz).date_naive();
                return Ok(Target::days(today, today, tz)?);
            }
            let (first, last) = day_range(settings, args, tz)?;
            Ok(Target::days(first, last, tz)?)
        }
    }
}

/// Talks to the source before anything is written, so that a wrong
/// password or an unreachable source is reported without touching the
/// store: logs in, and for YClients records probes the counts of the target
/// range and picks the cheaper way of fetching them.
pub(crate) async fn preflight(
    built: &BuiltSources,
    target: &Target,
    preset: &sync_core::plan::Preset,
    batch_days: u32,
) -> Result<(), CliError> {
    let named = |source: &dyn Source, e: sync_core::SyncError| {
        let mut err = CliError::from(e);
        err.message = format!("{}: {}", source.info().stream.source, err.message);
        err
    };
    for source in &built.sources {
        let ctx = FetchContext::new(source.info().stream, built.limiter.clone());
        source
            .authenticate(&ctx)
            .await
            .map_err(|e| named(source.as_ref(), e))?;
    }
    if let Target::Days { range, .. } = target {
        for records in &built.records {
            let ctx = FetchContext::new(records.info().stream, built.limiter.clone());
            let (strategy, comparison) = records
                .choose_strategy(*range, batch_days, preset, &ctx)
                .await
                .map_err(|e| named(records.as_ref(), e))?;
            eprintln!(
                "{}: fetching {strategy:?} ({} requests, the cheaper way)",
                records.info().stream,
                comparison.cheapest().requests
            );
        }
    }
    Ok(())
}

/// The id list of one company's clients (costs a few requests).
pub(crate) async fn client_target(
    clients: &YclientsClients,
    limiter: Arc<RateLimiter>,
) -> Result<Target, CliError> {
    let ctx = FetchContext::new(YclientsClients::stream_id(clients.company_id()), limiter);
    Ok(clients.target(&ctx).await?)
}

/// The ways of fetching to price for `plan`: from the counts given, or
/// asked of the source.
pub(crate) async fn plan_strategies(
    kind: SourceKind,
    settings: &Settings,
    args: &PlanArgs,
) -> Result<Vec<Strategy>, CliError> {
    match kind {
        SourceKind::Yclients | SourceKind::YclientsClients => {
            let tz = settings.tz_of(kind)?;
            let (clients, records, days) = match (args.clients, args.records) {
                (Some(c), Some(r)) => {
                    let days = match day_range(settings, &args.target, tz) {
                        Ok((a, b)) => (b - a).num_days() as u64 + 1,
                        Err(_) => 365,
                    };
                    (c, r, days)
                }
                _ => {
                    let (first, last) = day_range(settings, &args.target, tz)?;
                    let range = Span::new(first, last)
                        .ok_or_else(|| CliError::config("date range is inverted"))?;
                    let built = build(kind, settings, &args.target, 1.0)?;
                    let config = yclients_config(settings, &args.target)?;
                    let companies = sources_for_companies(&config)?;
                    let company = companies
                        .first()
                        .ok_or_else(|| CliError::config("no company configured"))?;
                    let ctx = FetchContext::new(
                        YclientsRecords::stream_id(company.company_id),
                        built.limiter.clone(),
                    );
                    let probe = company.records.probe(range, &ctx).await?;
                    (
                        args.clients.unwrap_or(probe.clients),
                        args.records.unwrap_or(probe.records),
                        range.len(),
                    )
                }
            };
            let page = settings.yclients.page_size.unwrap_or(200).max(1);
            Ok(vec![
                Strategy::new(
                    "records by date window (1 day)",
                    Workload::Paged {
                        records,
                        page_size: page,
                        windows: days.max(1),
                    },
                ),
                Strategy::new(
                    "visit history per client",
                    Workload::PerItem {
                        items: clients,
                        // 25 visits a page; at least one request per client.
                        requests_per_item: (records as f64 / clients.max(1) as f64 / 25.0)
                            .ceil()
                            .max(1.0),
                    },
                ),
            ])
        }
        SourceKind::Kennel => {
            let tz = settings.tz_of(kind)?;
            let (first, last) = day_range(settings, &args.target, tz)?;
            let days = (last - first).num_days() as u64 + 1;
            // One schedule page a week, one detail page per boarding.
            let boardings = args.records.unwrap_or(days * 6);
            let weeks = days.div_ceil(7);
            Ok(vec![Strategy::new(
                "weekly schedule + detail pages",
                Workload::PerItem {
                    items: days,
                    requests_per_item: (weeks + boardings) as f64 / days.max(1) as f64,
                },
            )])
        }
    }
}
