//! Opening the store named by the settings.

use std::sync::Arc;

use sync_core::{BudgetStore, CheckpointStore, Store, WorkQueue};
use sync_store_postgres::PostgresStore;
use sync_store_sqlite::SqliteStore;

use crate::config::{Settings, StoreSettings};
use crate::error::CliError;

/// The store in each of its roles (one object).
pub(crate) struct Stores {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) checkpoints: Arc<dyn CheckpointStore>,
    /// Request budgets shared by every process using the store.
    pub(crate) budgets: Arc<dyn BudgetStore>,
    /// The work queue workers share: Postgres only (the embedded SQLite
    /// store serves one process at a time).
    pub(crate) queue: Option<Arc<dyn WorkQueue>>,
}

impl Stores {
    fn from<S: Store + CheckpointStore + BudgetStore + WorkQueue + 'static>(
        s: S,
        shares_work: bool,
    ) -> Self {
        let s = Arc::new(s);
        Self {
            store: s.clone(),
            checkpoints: s.clone(),
            budgets: s.clone(),
            queue: shares_work.then_some(s as Arc<dyn WorkQueue>),
        }
    }
}

/// Opens (and migrates) the configured store. An unreachable database is an
/// error naming it, with any password masked.
pub(crate) async fn open(settings: &Settings) -> Result<Stores, CliError> {
    match &settings.store {
        StoreSettings::Sqlite { path } => open_sqlite(path).await,
        StoreSettings::Postgres { masked_url, url } => {
            let store = PostgresStore::connect(url.expose()).await.map_err(|e| {
                CliError::failure(format!("cannot use the database at {masked_url}: {e}"))
            })?;
            Ok(Stores::from(store, true))
        }
    }
}

/// Opens (and migrates) a SQLite store.
pub(crate) async fn open_sqlite(path: &std::path::Path) -> Result<Stores, CliError> {
    let store = SqliteStore::open(path).await.map_err(|e| {
        CliError::failure(format!(
            "cannot use the SQLite database {}: {e}",
            path.display()
        ))
    })?;
    Ok(Stores::from(store, false))
}
