//! The shared layer's private error type and how it maps onto
//! [`SyncError`].

use sqlx::migrate::MigrateError;
use sync_core::SyncError;

use crate::dialect::{Dialect, ErrorClass};

/// What went wrong in a SQL store. Messages never hold a password: database
/// messages do not echo it, and locations are shown without it.
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
    /// A row holds something this version cannot read.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// A record cannot be stored as it is.
    #[error("record {entity}/{external_id} cannot be stored: {reason}")]
    BadRecord {
        entity: String,
        external_id: String,
        reason: &'static str,
    },
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

impl Error {
    /// The error callers see, classified as the dialect says.
    pub(crate) fn into_sync<D: Dialect>(self) -> SyncError {
        let class = match &self {
            Error::Sqlx { source, .. } | Error::Migrate(MigrateError::Execute(source)) => {
                D::classify(source)
            }
            Error::BadRecord { .. } => {
                return SyncError::BadData {
                    message: format!("{}: {self}", D::STORE),
                    source: Some(Box::new(self)),
                }
            }
            Error::Migrate(_) | Error::TooNew { .. } | Error::Corrupt(_) => ErrorClass::Permanent,
        };
        sync_error(D::STORE, class, self)
    }
}

/// `error` as a [`SyncError`] of `class`, its message prefixed with the
/// store's name (for the store crates' own errors).
pub fn sync_error<E>(store: &str, class: ErrorClass, error: E) -> SyncError
where
    E: std::error::Error + Send + Sync + 'static,
{
    let message = format!("{store}: {error}");
    match class {
        ErrorClass::Temporary => SyncError::Retryable {
            message,
            source: Some(Box::new(error)),
        },
        ErrorClass::Credentials => SyncError::Unauthenticated { message },
        ErrorClass::Permanent => SyncError::Fatal {
            message,
            source: Some(Box::new(error)),
        },
    }
}

/// The error of a failed migration: a database migrated by a newer release
/// (whose newest version this build does not know) is said so plainly.
pub fn migrate_error<D: Dialect>(error: MigrateError, latest: i64) -> SyncError {
    match error {
        MigrateError::VersionMissing(found) => Error::TooNew { found, latest },
        other => Error::Migrate(other),
    }
    .into_sync::<D>()
}
