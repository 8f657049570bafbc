//! Building sources from the settings: the one place that knows every
//! adapter's configuration. Nothing here plans or talks to a source: the
//! sources describe themselves, and the engine plans from that.

use std::sync::Arc;
use std::time::Duration;

use sync_core::{RateLimits, RetryPolicy, Secret, SessionCache, Source, StreamId};
use sync_source_scraper::{ScraperConfig, ScraperSource};
use sync_source_yclients::{
    sources_for_companies, CatalogueKind, CompanySources, YclientsCatalogue, YclientsClients,
    YclientsConfig, YclientsRecords,
};

use crate::cli::{Company, SourceKind, TargetArgs};
use crate::config::Settings;
use crate::error::CliError;

/// One stream ready to run.
pub(crate) struct Stream {
    /// The bare source (the engine adds retries, sessions and pacing).
    pub(crate) source: Arc<dyn Source>,
    /// The session of its credentials, shared with the other streams that
    /// log in with them.
    pub(crate) session: Arc<SessionCache>,
}

/// The streams of one command, and how to treat their server.
pub(crate) struct Built {
    /// One stream per company (YClients), every stream of every company
    /// (YClients, whole company), or one (kennel).
    pub(crate) streams: Vec<Stream>,
    /// The YClients companies' sources (empty for the kennel): they say how
    /// a whole-company sync and the clients stream run.
    pub(crate) companies: Vec<CompanySources>,
    /// The limits the external system documents.
    pub(crate) documented_limits: RateLimits,
    /// What the server counts its limits by.
    pub(crate) budget_key: String,
    /// The retry policy that suits the server.
    pub(crate) retry: RetryPolicy,
}

/// The limits the external system documents (the kennel site's are the
/// polite pacing of the earlier importer, adjustable in [kennel]).
pub(crate) fn documented_limits(kind: SourceKind, settings: &Settings) -> RateLimits {
    match kind {
        SourceKind::Yclients | SourceKind::YclientsClients | SourceKind::YclientsAll => {
            sync_source_yclients::LIMITS
        }
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

/// Builds the streams of `kind` from the settings; a missing credential or
/// a bad setting is a configuration error naming it.
pub(crate) fn build(
    kind: SourceKind,
    settings: &Settings,
    args: &TargetArgs,
) -> Result<Built, CliError> {
    let documented_limits = documented_limits(kind, settings);
    match kind {
        SourceKind::Yclients | SourceKind::YclientsClients | SourceKind::YclientsAll => {
            let config = yclients_config(settings, args)?;
            let budget_key = config.budget_key();
            let companies = if config.company_ids.is_empty() {
                Vec::new()
            } else {
                sources_for_companies(&config)?
            };
            let mut streams = Vec::new();
            for c in &companies {
                let sources: Vec<Arc<dyn Source>> = match kind {
                    SourceKind::Yclients => vec![c.records.clone()],
                    SourceKind::YclientsClients => vec![c.clients.clone()],
                    _ => {
                        let mut all: Vec<Arc<dyn Source>> = c
                            .catalogue
                            .iter()
                            .map(|s| s.clone() as Arc<dyn Source>)
                            .collect();
                        all.push(c.clients.clone());
                        all.push(c.records.clone());
                        all
                    }
                };
                streams.extend(sources.into_iter().map(|source| Stream {
                    source,
                    session: c.session.clone(),
                }));
            }
            Ok(Built {
                streams,
                companies,
                documented_limits,
                budget_key,
                retry: RetryPolicy::default(),
            })
        }
        SourceKind::Kennel => {
            let config = kennel_config(settings)?;
            let budget_key = config.source_name();
            let source = ScraperSource::new(config)?;
            Ok(Built {
                streams: vec![Stream {
                    source: Arc::new(source),
                    session: Arc::new(SessionCache::new()),
                }],
                companies: Vec::new(),
                documented_limits,
                budget_key,
                retry: ScraperConfig::polite_retry(),
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
    config.clients_delta = y.clients_delta;
    config.clients_full_scan = y.clients_full_scan;
    config.catalogue_paths = y.catalogue_paths;
    config.budget_key = y.budget_key.clone();
    if config.company_ids.is_empty() {
        // `--company all`: the companies come from the account.
        config.validate_account()?;
    } else {
        config.validate()?;
    }
    Ok(config)
}

/// The companies given; none for `--company all` (listed later, through
/// the budget, by the command).
fn company_ids(settings: &Settings, args: &TargetArgs) -> Result<Vec<u64>, CliError> {
    if args.all_companies() {
        if args.companies.len() > 1 {
            return Err(CliError::config(
                "--company all stands alone: give `all` or a list of ids",
            ));
        }
        return Ok(Vec::new());
    }
    let ids: Vec<u64> = if args.companies.is_empty() {
        settings.yclients.company_ids.clone()
    } else {
        args.companies
            .iter()
            .filter_map(|c| match c {
                Company::Id(id) => Some(*id),
                Company::All => None,
            })
            .collect()
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
    let base = kennel_url(settings)?;
    let username = k.username.clone().ok_or_else(|| {
        CliError::config("missing credential: set KENNEL_USERNAME or username in [kennel]")
    })?;
    let password: Secret = k.password.clone().ok_or_else(|| {
        CliError::config("missing credential: set KENNEL_PASSWORD (or password_file in [kennel])")
    })?;
    let tz = crate::config::parse_tz(&k.tz, "[kennel] tz / KENNEL_TZ")?;
    let mut config = ScraperConfig::new(base, username, password, tz);
    config.limits = kennel_limits(settings);
    config.selectors = k.selectors.clone();
    if let Some(secs) = k.session_max_age_secs {
        config.session_max_age = Duration::from_secs(secs);
    }
    config.validate()?;
    Ok(config)
}

fn kennel_url(settings: &Settings) -> Result<url::Url, CliError> {
    let base = settings.kennel.base_url.as_deref().ok_or_else(|| {
        CliError::config("no kennel site: set KENNEL_BASE_URL or base_url in [kennel]")
    })?;
    url::Url::parse(base)
        .map_err(|e| CliError::config(format!("kennel base URL {base:?} is not a URL: {e}")))
}

/// The streams of `kind`, without credentials (for `status`), each with
/// whether it is kept by day (else by id).
pub(crate) fn streams(
    kind: SourceKind,
    settings: &Settings,
    args: &TargetArgs,
) -> Result<Vec<(StreamId, bool)>, CliError> {
    Ok(match kind {
        SourceKind::Yclients => company_ids(settings, args)?
            .into_iter()
            .map(|c| (YclientsRecords::stream_id(c), true))
            .collect(),
        SourceKind::YclientsClients => company_ids(settings, args)?
            .into_iter()
            .map(|c| (YclientsClients::stream_id(c), false))
            .collect(),
        SourceKind::YclientsAll => company_ids(settings, args)?
            .into_iter()
            .flat_map(|c| {
                CatalogueKind::ALL
                    .iter()
                    .map(move |&k| (YclientsCatalogue::stream_id(c, k), false))
                    .chain([
                        (YclientsClients::stream_id(c), false),
                        (YclientsRecords::stream_id(c), true),
                    ])
            })
            .collect(),
        SourceKind::Kennel => {
            let source = kennel_source_name(&kennel_url(settings)?);
            vec![(StreamId::new(source, sync_source_scraper::STREAM), true)]
        }
    })
}

/// `kennel:` and the site's host (and port): the source's name and its
/// budget key.
fn kennel_source_name(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("unknown");
    match url.port() {
        Some(port) => format!("kennel:{host}:{port}"),
        None => format!("kennel:{host}"),
    }
}

/// The budget key of `kind`'s server, without credentials (for `status`).
pub(crate) fn budget_key(kind: SourceKind, settings: &Settings) -> Result<String, CliError> {
    match kind {
        SourceKind::Kennel => Ok(kennel_source_name(&kennel_url(settings)?)),
        _ => {
            let y = &settings.yclients;
            if let Some(key) = &y.budget_key {
                return Ok(key.clone());
            }
            let url = url::Url::parse(&y.base_url).map_err(|e| {
                CliError::config(format!(
                    "YClients base URL {:?} is not a URL: {e}",
                    y.base_url
                ))
            })?;
            Ok(sync_source_yclients::default_budget_key(&url))
        }
    }
}
