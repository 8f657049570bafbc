//! The Postgres store's own errors (connecting, lease sessions) and how
//! Postgres's failures are classified.

use sync_core::SyncError;
use sync_store_sql::{sync_error, Dialect, ErrorClass};

use crate::dialect::PgDialect;

/// What went wrong connecting a Postgres store or taking a lease. Messages
/// never hold the connection password: server messages do not echo it,
/// and the URL is only ever shown redacted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Connecting failed. `url` is redacted and `detail` is the driver's
    /// message (with a long enough password scrubbed out, should it ever
    /// echo it).
    #[error("cannot connect to {url}: {detail}")]
    Connect {
        url: String,
        detail: String,
        class: ErrorClass,
    },
    /// A statement of a lease session failed.
    #[error("{doing}: {source}")]
    Lease {
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

/// The SQLSTATE of a database error.
fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// What a caller can do about a sqlx error.
pub(crate) fn classify(e: &sqlx::Error) -> ErrorClass {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => ErrorClass::Temporary,
        sqlx::Error::Database(_) => match sqlstate(e).as_deref() {
            // Connection exceptions, serialization failures and deadlocks,
            // insufficient resources, server shutting down or starting.
            Some(s) if s.starts_with("08") || s.starts_with("53") => ErrorClass::Temporary,
            Some("40001" | "40P01" | "57P01" | "57P02" | "57P03") => ErrorClass::Temporary,
            Some("28000" | "28P01") => ErrorClass::Credentials,
            _ => ErrorClass::Permanent,
        },
        _ => ErrorClass::Permanent,
    }
}

impl From<Error> for SyncError {
    fn from(e: Error) -> Self {
        let class = match &e {
            Error::Connect { class, .. } => *class,
            Error::Lease { source, .. } => classify(source),
        };
        sync_error(PgDialect::STORE, class, e)
    }
}
