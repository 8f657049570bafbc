//! `sync-cli serve`: the dashboard (`sync-dashboard`) over the store the
//! other commands use. Routes live in one place, the dashboard's router;
//! more (a webhook receiver) are added by merging a router into it here.

use std::net::SocketAddr;

use chrono_tz::Tz;
use sync_dashboard::Dashboard;

use crate::cli::{ServeArgs, TargetArgs};
use crate::config::{Settings, StoreSettings};
use crate::error::{CliError, ExitCode};
use crate::stores;
use crate::targets::day_range;

/// Serves the dashboard until Ctrl-C.
pub(crate) async fn run(settings: &Settings, args: ServeArgs) -> Result<ExitCode, CliError> {
    let target = configured_range(settings)?;
    let stores = stores::open(settings).await?;
    let label = match &settings.store {
        StoreSettings::Sqlite { path } => format!("SQLite {}", path.display()),
        // Never the URL itself: its password stays out of pages.
        StoreSettings::Postgres { masked_url, .. } => format!("Postgres {masked_url}"),
    };
    let mut dashboard =
        Dashboard::new(stores.store.clone(), stores.checkpoints.clone()).with_store_label(label);
    if let Some(range) = target {
        dashboard = dashboard.with_target(range);
    }
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::failure(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::failure(format!("cannot read the listening address: {e}")))?;
    outln!("serving on http://{local}")?;
    if !args.bind.is_loopback() {
        note!("warning: the dashboard has no login and {local} is reachable from other machines");
    }
    tracing::info!(address = %local, "dashboard serving");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    sync_dashboard::serve(listener, dashboard.router(), shutdown)
        .await
        .map_err(|e| CliError::failure(format!("the dashboard stopped: {e}")))?;
    note!("dashboard stopped");
    Ok(ExitCode::Success)
}

/// The target range of the settings (`from`/`to` of [sync]), when set: the
/// dashboard measures coverage against it.
fn configured_range(settings: &Settings) -> Result<Option<sync_core::DayRange>, CliError> {
    if settings.from.is_none() {
        return Ok(None);
    }
    let tz = settings
        .source
        .and_then(|kind| settings.tz_of(kind).ok())
        .unwrap_or(Tz::UTC);
    let none = TargetArgs {
        source: None,
        from: None,
        to: None,
        companies: Vec::new(),
    };
    let (first, last) = day_range(settings, &none, tz)?;
    Ok(sync_core::Span::new(first, last))
}
