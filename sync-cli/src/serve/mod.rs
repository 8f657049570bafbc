//! `sync-cli serve`: the dashboard (`sync-dashboard`) over the store the
//! other commands use. Routes live in one place, the dashboard's router;
//! more (a webhook receiver) are added by merging a router into it here.

use std::net::SocketAddr;

use chrono_tz::Tz;
use sync_dashboard::Dashboard;

use std::collections::BTreeSet;

use sync_core::{CancellationToken, SyncOptions};

use crate::account::{budget, with_all_companies};
use crate::cli::{ServeArgs, SourceKind, TargetArgs};
use crate::config::{Settings, StoreSettings};
use crate::error::{CliError, ExitCode};
use crate::hooks::{self, HintWorker};
use crate::sources;
use crate::stores;
use crate::targets::{day_range, preset};

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
    let cancel = CancellationToken::new();
    let mut app = dashboard.router();
    let mut hint_loop = None;
    match webhooks(settings, &args, stores, &cancel).await? {
        Some((hooks, worker)) => {
            app = app.merge(hooks);
            hint_loop = Some(tokio::spawn(worker.run(cancel.clone())));
        }
        None => tracing::info!("no YClients account configured: webhooks are off"),
    }
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::failure(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::failure(format!("cannot read the listening address: {e}")))?;
    outln!("serving on http://{local}")?;
    if hint_loop.is_some() {
        outln!("webhooks: POST http://{local}{}", settings.serve.hooks_path)?;
    }
    if !args.bind.is_loopback() {
        note!("warning: the dashboard has no login and {local} is reachable from other machines");
    }
    tracing::info!(address = %local, webhooks = hint_loop.is_some(), "dashboard serving");
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.cancel();
        }
    });
    let stopped = cancel.clone();
    sync_dashboard::serve(listener, app, async move { stopped.cancelled().await })
        .await
        .map_err(|e| CliError::failure(format!("the dashboard stopped: {e}")))?;
    if let Some(hints) = hint_loop {
        let _ = hints.await;
    }
    note!("dashboard stopped");
    Ok(ExitCode::Success)
}

/// The webhook route and the loop that syncs hinted streams, when a YClients
/// account is configured (a partner token and companies); `None` otherwise.
async fn webhooks(
    settings: &Settings,
    args: &ServeArgs,
    stores: stores::Stores,
    cancel: &CancellationToken,
) -> Result<Option<(axum::Router, HintWorker)>, CliError> {
    let configured = settings.yclients.partner_token.is_some()
        && (!args.target.companies.is_empty() || !settings.yclients.company_ids.is_empty());
    if !configured {
        return Ok(None);
    }
    let built = sources::build(SourceKind::YclientsAll, settings, &args.target)?;
    let preset = preset(&settings.preset)?;
    let budget = budget(&built, preset.settings().utilization, &stores, settings);
    let built = with_all_companies(
        SourceKind::YclientsAll,
        settings,
        &args.target,
        built,
        &stores,
        &budget,
    )
    .await?;
    let companies: BTreeSet<u64> = built.companies.iter().map(|c| c.company_id).collect();
    let serve = &settings.serve;
    if serve.hooks_secret.is_none() {
        note!("no webhook secret set (SYNC_HOOKS_SECRET or [serve] hooks_secret_file): anyone who reaches the port can send hints");
    }
    let router = hooks::router(
        &serve.hooks_path,
        stores.hints.clone(),
        companies,
        serve.hooks_secret.clone(),
    );
    let hints = stores.hints.clone();
    let worker = HintWorker {
        companies: built.companies,
        stores,
        hints,
        budget,
        options: SyncOptions::builder()
            .retry(built.retry.clone())
            .pace(&preset.settings())
            .cancel(cancel.clone())
            .build(),
    };
    Ok(Some((router, worker)))
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
