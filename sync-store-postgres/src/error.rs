//! The store's private error type and how it maps onto [`SyncError`].

use sqlx::migrate::MigrateError;
use sync_core::SyncError;

/// What went wrong in the Postgres store. Messages never hold the
/// connection password: server messages do not echo it, and the URL is only
/// ever shown redacted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A statement failed; `doing` says which step.
    #[error("{doing}: {source}")]
    Sqlx {
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// Connecting failed. `url` is redacted and `detail` is the driver's
    /// message (with a long enough password scrubbed out, should it ever
    /// echo it).
    #[error("cannot connect to {url}: {detail}")]
    Connect {
        url: String,
        detail: String,
        class: Class,
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

/// The SQLSTATE of a database error.
fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// What a caller can do about a sqlx error.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Class {
    Temporary,
    Credentials,
    Permanent,
}

/// Classifies a sqlx error.
pub(crate) fn class(e: &sqlx::Error) -> Class {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => Class::Temporary,
        sqlx::Error::Database(_) => match sqlstate(e).as_deref() {
            // Connection exceptions, serialization failures and deadlocks,
            // insufficient resources, server shutting down or starting.
            Some(s) if s.starts_with("08") || s.starts_with("53") => Class::Temporary,
            Some("40001" | "40P01" | "57P01" | "57P02" | "57P03") => Class::Temporary,
            Some("28000" | "28P01") => Class::Credentials,
            _ => Class::Permanent,
        },
        _ => Class::Permanent,
    }
}

impl From<Error> for SyncError {
    fn from(e: Error) -> Self {
        let message = format!("postgres store: {e}");
        let class = match &e {
            Error::Sqlx { source, .. } => class(source),
            Error::Connect { class, .. } => *class,
            Error::Migrate(MigrateError::Execute(source)) => class(source),
            Error::BadRecord { .. } => {
                return SyncError::BadData {
                    message,
                    source: Some(Box::new(e)),
                }
            }
            Error::Migrate(_) | Error::TooNew { .. } | Error::Corrupt(_) => Class::Permanent,
        };
        let source = Some(Box::new(e) as sync_core::BoxError);
        match class {
            Class::Temporary => SyncError::Retryable { message, source },
            Class::Credentials => SyncError::Unauthenticated { message },
            Class::Permanent => SyncError::Fatal { message, source },
        }
    }
}
