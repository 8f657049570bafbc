//! The SQLite store's own errors (opening the file, lease files) and how
//! SQLite's failures are classified.

use std::path::PathBuf;

use sqlx::migrate::MigrateError;
use sync_core::SyncError;
use sync_store_sql::{sync_error, Dialect, ErrorClass};

use crate::dialect::SqliteDialect;
use crate::store::SqliteStore;

/// What went wrong opening a SQLite store or taking a lease.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Opening the database failed.
    #[error("{doing}: {source}")]
    Open {
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// Migrating the schema failed.
    #[error("migrating the database schema: {0}")]
    Migrate(#[source] MigrateError),
    /// A file next to the database could not be made or opened.
    #[error("{doing} {}: {source}", path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Whether SQLite said another connection holds a lock (retrying helps).
pub(crate) fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            // Primary result codes SQLITE_BUSY (5) and SQLITE_LOCKED (6),
            // with any extended code.
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
        _ => false,
    }
}

/// Busy or locked databases and lost connections are temporary; the rest
/// is not.
pub(crate) fn classify(e: &sqlx::Error) -> ErrorClass {
    let temporary = is_busy(e)
        || matches!(
            e,
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed
        );
    if temporary {
        ErrorClass::Temporary
    } else {
        ErrorClass::Permanent
    }
}

impl From<Error> for SyncError {
    fn from(e: Error) -> Self {
        match e {
            Error::Migrate(e) => sync_store_sql::migrate_error::<SqliteDialect>(
                e,
                SqliteStore::latest_schema_version(),
            ),
            Error::Open { ref source, .. } => {
                let class = classify(source);
                sync_error(SqliteDialect::STORE, class, e)
            }
            Error::Io { .. } => sync_error(SqliteDialect::STORE, ErrorClass::Permanent, e),
        }
    }
}
