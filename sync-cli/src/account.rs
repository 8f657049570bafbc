//! The account a command runs under: its request budget (kept in the
//! store unless configured otherwise) and, for `--company all`, the
//! companies it manages.

use std::sync::Arc;

use sync_core::{Budget, Engine, RateLimiter, SharedBudget, SyncOptions};

use crate::cli::{Company, SourceKind, TargetArgs};
use crate::config::{BudgetPlace, Settings};
use crate::error::CliError;
use crate::output::note;
use crate::sources::{self, Built};
use crate::stores::Stores;

/// The request budget of the streams: the documented limits at the
/// preset's share, kept in the store (shared by every process that uses it)
/// unless `[sync] budget = "process"` says otherwise.
pub(crate) fn budget(
    built: &Built,
    utilization: f64,
    stores: &Stores,
    settings: &Settings,
) -> Arc<dyn Budget> {
    let limits = built.documented_limits.scaled(utilization);
    match settings.budget {
        BudgetPlace::Store => Arc::new(SharedBudget::new(
            stores.budgets.clone(),
            built.budget_key.clone(),
            limits,
        )),
        BudgetPlace::Process => Arc::new(RateLimiter::new(limits).named(built.budget_key.clone())),
    }
}

/// With `--company all`, the streams of every company the account manages
/// (listed through the budget: one request); otherwise `built` as it is.
pub(crate) async fn with_all_companies(
    kind: SourceKind,
    settings: &Settings,
    args: &TargetArgs,
    built: Built,
    stores: &Stores,
    budget: &Arc<dyn Budget>,
) -> Result<Built, CliError> {
    if !args.all_companies() || kind == SourceKind::Kennel {
        return Ok(built);
    }
    let config = sources::yclients_config(settings, args)?;
    let (_, session, companies) = sync_source_yclients::account(&config)?;
    let engine = Engine::new(
        Arc::new(companies),
        stores.store.clone(),
        stores.checkpoints.clone(),
        budget.clone(),
    )
    .with_session(session);
    let options = SyncOptions::builder().retry(built.retry.clone()).build();
    let (keys, _) = engine.list_keys(&options).await?;
    let ids: Vec<u64> = keys
        .unwrap_or_default()
        .into_iter()
        .filter_map(|k| u64::try_from(k).ok())
        .collect();
    if ids.is_empty() {
        return Err(CliError::failure(
            "--company all: the account manages no company (GET /companies?my=1 listed none)",
        ));
    }
    let shown: Vec<String> = ids.iter().map(u64::to_string).collect();
    note!(
        "--company all: {} companies ({})",
        ids.len(),
        shown.join(", ")
    );
    tracing::info!(companies = ?ids, "the account's companies");
    let mut args = args.clone();
    args.companies = ids.into_iter().map(Company::Id).collect();
    sources::build(kind, settings, &args)
}
