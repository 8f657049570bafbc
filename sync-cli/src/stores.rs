//! Opening the store named by the settings.

use std::sync::Arc;

use sync_core::{CheckpointStore, Store};
use sync_store_postgres::PostgresStore;
use sync_store_sqlite::SqliteStore;

use crate::config::{Settings, StoreSettings};
use crate::error::CliError;

/// The store, as records store and as checkpoint store (the same object).
pub(crate) struct Stores {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) checkpoints: Arc<dyn CheckpointStore>,
}

impl Stores {
    fn from<S: Store + CheckpointStore + 'static>(s: S) -> Self {
        let s = Arc::new(s);
        Self {
            store: s.clone(),
            checkpoints: s,
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
            Ok(Stores::from(store))
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
    Ok(Stores::from(store))
}
