//! The one public error type of the crate.
//!
//! Adapters keep their own private error enums and convert them into
//! [`SyncError`]; the variants are chosen so that a caller (the engine, the
//! retry policy, the CLI) can decide what to do: wait and retry, renew the
//! session, slow down, skip a batch, or stop.

use std::time::Duration;

/// A boxed error kept as the source of a [`SyncError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A specialised `Result` for this crate.
pub type Result<T, E = SyncError> = std::result::Result<T, E>;

/// Everything that can go wrong while synchronising, grouped by what a caller
/// should do about it.
///
/// Messages never contain secrets: adapters must not put passwords, tokens or
/// cookies into any variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// A temporary failure (5xx, timeout, dropped connection): retry later.
    #[error("temporary failure: {message}")]
    Retryable {
        /// What failed, for people.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// The session or token is no longer valid: authenticate again once, then
    /// repeat the request.
    #[error("authentication expired: {message}")]
    AuthExpired {
        /// What showed that the session is gone.
        message: String,
    },

    /// The credentials were rejected (wrong password, revoked token, no
    /// access). Authenticating again will not help.
    #[error("authentication failed: {message}")]
    Unauthenticated {
        /// What the server said, without the credentials.
        message: String,
    },

    /// The server refused the request because of its rate limit (HTTP 429).
    #[error("rate limited by the server{}", retry_after_text(.retry_after))]
    RateLimited {
        /// How long the server asked us to wait, when it said so.
        retry_after: Option<Duration>,
    },

    /// The data of one batch could not be understood (malformed JSON or
    /// HTML, a validation error from the server). The batch fails; other
    /// batches go on.
    #[error("bad data: {message}")]
    BadData {
        /// What was wrong and where (URL, field).
        message: String,
        /// The underlying parse error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// The configuration or the input given by the user is invalid. Nothing
    /// was done.
    #[error("invalid input: {message}")]
    InvalidInput {
        /// What was wrong, naming the setting or value.
        message: String,
    },

    /// Another run holds the lease on the same stream.
    #[error("busy: {message}")]
    Busy {
        /// Which run holds the lease.
        message: String,
    },

    /// The run was cancelled (Ctrl-C, cancellation token).
    #[error("cancelled")]
    Cancelled,

    /// Anything else that retrying will not fix.
    #[error("fatal: {message}")]
    Fatal {
        /// What failed.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

fn retry_after_text(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (retry after {:.1}s)", d.as_secs_f64()),
        None => String::new(),
    }
}

impl SyncError {
    /// A [`SyncError::Retryable`] with a message and no source.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable {
            message: message.into(),
            source: None,
        }
    }

    /// A [`SyncError::BadData`] with a message and no source.
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self::BadData {
            message: message.into(),
            source: None,
        }
    }

    /// A [`SyncError::Fatal`] with a message and no source.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::Fatal {
            message: message.into(),
            source: None,
        }
    }

    /// A [`SyncError::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput {
            message: message.into(),
        }
    }

    /// Whether trying the same thing again later may succeed (after waiting,
    /// or after renewing the session).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Retryable { .. } | Self::RateLimited { .. } | Self::AuthExpired { .. }
        )
    }

    /// A short machine-readable name of the variant, for logs and run reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Retryable { .. } => "retryable",
            Self::AuthExpired { .. } => "auth_expired",
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::RateLimited { .. } => "rate_limited",
            Self::BadData { .. } => "bad_data",
            Self::InvalidInput { .. } => "invalid_input",
            Self::Busy { .. } => "busy",
            Self::Cancelled => "cancelled",
            Self::Fatal { .. } => "fatal",
        }
    }
}

/// An error and every cause under it, for messages: `error sending request:
/// client error (Connect): tcp connect error: Connection refused (os error
/// 111)`. Adapters use it where the top error alone says too little (HTTP
/// clients hide the cause).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(SyncError::retryable("x").is_retryable());
        assert!(SyncError::RateLimited { retry_after: None }.is_retryable());
        assert!(!SyncError::bad_data("x").is_retryable());
        assert!(!SyncError::Unauthenticated {
            message: "x".into()
        }
        .is_retryable());
    }

    #[test]
    fn rate_limited_message_names_the_wait() {
        let e = SyncError::RateLimited {
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            e.to_string(),
            "rate limited by the server (retry after 3.0s)"
        );
    }
}
