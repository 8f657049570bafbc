//! The store's private error type and how it maps onto [`SyncError`].

use std::path::PathBuf;

use sqlx::migrate::MigrateError;
use sync_core::SyncError;

/// What went wrong in the SQLite store.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A statement failed; `doing` says which step.
    #[error("{doing}: {source}")]
    Sqlx {
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// Migrating the schema failed.
    #[error("migrating the database schema: {0}")]
    Migrate(#[source] MigrateError),
    /// The database was migrated by a newer release.
    #[error(
        "the database has schema version {found}, newer than this program's {latest}; \
         use a newer release"
    )]
    TooNew { found: i64, latest: i64 },
    /// A file next to the database could not be made or opened.
    #[error("{doing} {}: {source}", path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A row holds something this version cannot read.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

/// Adds the step to a sqlx error.
pub(crate) trait Doing<T> {
    /// Names the step that failed.
    fn doing(self, doing: &'static str) -> Result<T, Error>;
}

impl<T> Doing<T> for Result<T, sqlx::Error> {
    fn doing(self, doing: &'static str) -> Result<T, Error> {
        self.map_err(|source| Error::Sqlx { doing, source })
    }
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

fn is_temporary(e: &sqlx::Error) -> bool {
    is_busy(e)
        || matches!(
            e,
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed
        )
}

impl From<Error> for SyncError {
    fn from(e: Error) -> Self {
        let message = format!("sqlite store: {e}");
        let temporary = match &e {
            Error::Sqlx { source, .. } => is_temporary(source),
            Error::Migrate(MigrateError::Execute(source)) => is_temporary(source),
            Error::Io { .. } | Error::Migrate(_) | Error::TooNew { .. } | Error::Corrupt(_) => {
                false
            }
        };
        let source = Some(Box::new(e) as sync_core::BoxError);
        if temporary {
            SyncError::Retryable { message, source }
        } else {
            SyncError::Fatal { message, source }
        }
    }
}
