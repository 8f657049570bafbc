//! The adapter's private error enum, converted into [`SyncError`] at the
//! crate boundary.
//!
//! Decisions worth knowing:
//! - A **truncated page** (no closing `</html>`) is [`SyncError::Retryable`]:
//!   a cut-off transfer is usually a dropped connection or an overloaded
//!   server, and the same page is normally whole on the next try. If it stays
//!   truncated after the retry policy's attempts, the batch fails with that
//!   message.
//! - A **page that parses but lacks what we need** (not a schedule page, no
//!   check-in, price names without prices, a timestamp we cannot read) is
//!   [`SyncError::BadData`] naming the URL and the missing element: retrying
//!   will not change the layout.
//! - Messages carry URLs and the username, never the password or cookies.

use std::time::Duration;

use sync_core::SyncError;
use url::Url;

/// What went wrong while talking to the booking site.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScrapeError {
    /// The login form came back (or we were sent back to it) after posting
    /// the credentials.
    #[error("login rejected for user {user}: {message}")]
    LoginRejected { user: String, message: String },

    /// A 5xx answer (the site's error pages are still HTML).
    #[error("HTTP {status} from {url}")]
    Server { status: u16, url: Url },

    /// The request failed before an answer arrived (timeout, connection).
    #[error("request to {url} failed{}: {}", if *.timeout { " (timed out)" } else { "" }, sync_core::error_chain(source))]
    Transport {
        url: Url,
        timeout: bool,
        #[source]
        source: reqwest::Error,
    },

    /// The page ended early.
    #[error("page {url} is truncated: {what}")]
    Truncated { url: Url, what: String },

    /// The page parsed but lacks something we need.
    #[error("page {url}: missing {what}")]
    Missing { url: Url, what: String },

    /// The page has the element but its content cannot be read.
    #[error("page {url}: {what}")]
    Invalid { url: Url, what: String },

    /// A page fetched as a schedule page is not one (a maintenance page, a
    /// changed layout): never read as an empty week.
    #[error("page {url} is not a schedule page: {what}")]
    NotSchedule { url: Url, what: String },

    /// An answer we do not know how to handle.
    #[error("unexpected HTTP {status} from {url}")]
    UnexpectedStatus { status: u16, url: Url },

    /// HTTP 429.
    #[error("rate limited")]
    RateLimited { retry_after: Option<Duration> },

    /// Bad configuration (URLs, credentials missing).
    #[error("{0}")]
    Config(String),

    /// A configured CSS selector that does not parse.
    #[error("selectors.{key}: invalid CSS selector `{value}`: {reason}")]
    BadSelector {
        key: String,
        value: String,
        reason: String,
    },

    /// Another configured site setting that is wrong.
    #[error("selectors.{key}: {message}")]
    BadSetting { key: String, message: String },
}

impl From<ScrapeError> for SyncError {
    fn from(e: ScrapeError) -> Self {
        let message = e.to_string();
        match e {
            ScrapeError::LoginRejected { .. } => SyncError::Unauthenticated { message },
            ScrapeError::Server { .. } | ScrapeError::Truncated { .. } => {
                SyncError::retryable(message)
            }
            ScrapeError::Transport { source, .. } => SyncError::Retryable {
                message,
                source: Some(Box::new(source)),
            },
            ScrapeError::Missing { .. }
            | ScrapeError::Invalid { .. }
            | ScrapeError::NotSchedule { .. }
            | ScrapeError::UnexpectedStatus { .. } => SyncError::bad_data(message),
            ScrapeError::RateLimited { retry_after } => SyncError::RateLimited { retry_after },
            ScrapeError::Config(_)
            | ScrapeError::BadSelector { .. }
            | ScrapeError::BadSetting { .. } => SyncError::invalid_input(message),
        }
    }
}
