//! The SQLite store: opening the file, its schema, and the shared SQL layer
//! over it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sync_core::SyncError;
use sync_store_sql::SqlStore;

use crate::config::SqliteConfig;
use crate::dialect::SqliteDialect;
use crate::error::{is_busy, Error};

/// The schema migrations, embedded in the binary.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How often opening retries when another process is creating or
/// migrating the same file at the same moment.
const OPEN_ATTEMPTS: u32 = 40;

/// A [`sync_core::Store`] and [`sync_core::CheckpointStore`] in a SQLite
/// database.
///
/// Cheap to clone (the pool is shared). The schema is created and migrated
/// when the store is opened. Runs take a lease on their stream: an OS file
/// lock next to the database file, released when the run finishes or its
/// process ends.
#[derive(Clone)]
pub struct SqliteStore {
    inner: SqlStore<SqliteDialect>,
}

sync_store_sql::delegate_store!(SqliteStore, inner);

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use sync_store_sql::Dialect;
        f.debug_struct("SqliteStore")
            .field("database", &self.inner.dialect().location())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it and its directory when missing) the database at
    /// `path` with default settings and migrates its schema.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, SyncError> {
        Self::open_with(SqliteConfig::new(path.as_ref())).await
    }

    /// Opens the database described by `config` and migrates its schema.
    ///
    /// Several processes may open the same new file at once: the one that
    /// loses a race for the schema waits and tries again.
    pub async fn open_with(config: SqliteConfig) -> Result<Self, SyncError> {
        if let Some(parent) = config.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                doing: "creating the database directory",
                path: parent.to_owned(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(&config.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(config.busy_timeout)
            .foreign_keys(true);
        let pool_options = SqlitePoolOptions::new().max_connections(config.max_connections.max(1));
        let mut attempt = 0;
        let pool = loop {
            match connect_and_migrate(pool_options.clone(), options.clone()).await {
                Ok(pool) => break pool,
                Err(e) if attempt + 1 < OPEN_ATTEMPTS && is_open_race(&e) => {
                    attempt += 1;
                    tracing::debug!(attempt, error = %e, "database busy while opening; retrying");
                    tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt.min(10))))
                        .await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        Ok(Self::from_parts(pool, Some(config.path)))
    }

    /// A new, empty database in memory (for tests and dry runs); it lives as
    /// long as the store and its clones.
    pub async fn in_memory() -> Result<Self, SyncError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|source| Error::Open {
                doing: "configuring the in-memory database",
                source,
            })?
            .foreign_keys(true);
        // Every connection to `:memory:` is a database of its own: keep
        // exactly one, forever.
        let pool_options = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        let pool = connect_and_migrate(pool_options, options).await?;
        Ok(Self::from_parts(pool, None))
    }

    fn from_parts(pool: SqlitePool, path: Option<PathBuf>) -> Self {
        Self {
            inner: SqlStore::new(pool, SqliteDialect { path }),
        }
    }

    /// Applies the migrations the database lacks (opening does so already).
    pub async fn migrate(&self) -> Result<(), SyncError> {
        self.inner.migrate(&MIGRATOR).await
    }

    /// The version of the newest migration applied to the database.
    pub async fn schema_version(&self) -> Result<i64, SyncError> {
        self.inner.schema_version().await
    }

    /// The schema version this build migrates to.
    pub fn latest_schema_version() -> i64 {
        sync_store_sql::latest_version(&MIGRATOR)
    }

    /// The connection pool, for queries of one's own (reports, benchmarks).
    pub fn pool(&self) -> &SqlitePool {
        self.inner.pool()
    }

    /// The database file (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.inner.dialect().path.as_deref()
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.inner.close().await;
    }
}

async fn connect_and_migrate(
    pool_options: SqlitePoolOptions,
    options: SqliteConnectOptions,
) -> Result<SqlitePool, Error> {
    let pool = pool_options
        .connect_with(options)
        .await
        .map_err(|source| Error::Open {
            doing: "opening the database",
            source,
        })?;
    if let Err(e) = MIGRATOR.run(&pool).await {
        pool.close().await;
        return Err(Error::Migrate(e));
    }
    Ok(pool)
}

/// Whether opening failed because another process was creating or migrating
/// the same database at that moment (trying again will see its work).
fn is_open_race(e: &Error) -> bool {
    let sql = match e {
        Error::Open { source, .. } => source,
        Error::Migrate(MigrateError::Execute(source))
        | Error::Migrate(MigrateError::ExecuteMigration(source, _)) => source,
        _ => return false,
    };
    if is_busy(sql) {
        return true;
    }
    match sql {
        // A table or column the other process created first, or its row in
        // `_sqlx_migrations`.
        sqlx::Error::Database(db) => {
            db.message().contains("already exists")
                || db.message().contains("duplicate column name")
                || db.is_unique_violation()
        }
        _ => false,
    }
}
