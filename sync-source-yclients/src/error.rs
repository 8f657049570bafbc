//! The adapter's private errors and how they map onto [`SyncError`].
//!
//! | What happened                         | SyncError          |
//! |---------------------------------------|--------------------|
//! | 5xx, 408, timeout, connection failure | `Retryable`        |
//! | body cut short (JSON ends early, or the connection dropped mid-body) | `Retryable` |
//! | 429                                   | `RateLimited`      |
//! | 401, or no user token yet             | `AuthExpired` (the core logs in again once) |
//! | 402 (licence), 403 (no access)        | `Unauthenticated`  |
//! | 400, 422, other 4xx, 404 on a list    | `BadData`          |
//! | malformed JSON (not merely cut short), `success: false`, a record without id or day | `BadData` |
//!
//! Messages name the request (method, path and query: no credentials ever
//! travel there) and what the server said, with any secret redacted.

use std::time::Duration;

use sync_core::SyncError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{what}: server error {status}")]
    Server { what: String, status: u16 },

    #[error("{what}: request failed{}: {}", if *.timeout { " (timeout)" } else { "" }, sync_core::error_chain(source))]
    Transport {
        what: String,
        timeout: bool,
        #[source]
        source: reqwest::Error,
    },

    #[error("{what}: request could not be built: {source}")]
    Build {
        what: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("{what}: response body cut short: {source}")]
    Truncated {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("{what}: malformed JSON: {source}")]
    Malformed {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("{what}: rejected with {status}: {message}")]
    Rejected {
        what: String,
        status: u16,
        message: String,
    },

    #[error("{what}: not found: {message}")]
    NotFound { what: String, message: String },

    #[error("{what}: 401 unauthorized: {message}")]
    Unauthorized { what: String, message: String },

    /// The user token is gone (rejected, or none yet): log in again.
    #[error("{message}")]
    Expired { message: String },

    #[error("{what}: access denied ({status}): {message}")]
    Forbidden {
        what: String,
        status: u16,
        message: String,
    },

    #[error("rate limited")]
    RateLimited { retry_after: Option<Duration> },

    #[error("{what}: unexpected answer: {message}")]
    Unexpected { what: String, message: String },

    /// No permission to send: the run was cancelled or the budget could not
    /// be read.
    #[error("{0}")]
    Budget(SyncError),
}

impl From<Error> for SyncError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::Server { .. } | Error::Truncated { .. } => SyncError::Retryable {
                message,
                source: None,
            },
            Error::Transport { source, .. } => SyncError::Retryable {
                message,
                source: Some(Box::new(source.without_url())),
            },
            Error::Build { .. } => SyncError::fatal(message),
            Error::Malformed { source, .. } => SyncError::BadData {
                message,
                source: Some(Box::new(source)),
            },
            Error::Rejected { .. } | Error::NotFound { .. } | Error::Unexpected { .. } => {
                SyncError::bad_data(message)
            }
            Error::Unauthorized { .. } | Error::Forbidden { .. } => {
                SyncError::Unauthenticated { message }
            }
            Error::Expired { message } => SyncError::AuthExpired { message },
            Error::RateLimited { retry_after } => SyncError::RateLimited { retry_after },
            Error::Budget(e) => e,
        }
    }
}
