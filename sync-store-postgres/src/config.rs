//! How to connect a Postgres store.

use std::fmt;
use std::time::Duration;

/// Settings of a [`crate::PostgresStore`].
///
/// The URL may hold a password: `Debug` shows it as `***`, and nothing the
/// store logs or returns as an error contains it.
#[derive(Clone)]
pub struct PostgresConfig {
    url: String,
    /// Connections in the pool (each active run also holds one more, for
    /// its lease).
    pub max_connections: u32,
    /// How long to wait for a free connection (or a new one) before failing
    /// as retryable.
    pub acquire_timeout: Duration,
    /// How long the first connection, made when the store connects, may
    /// take; a refused connection fails at once.
    pub connect_timeout: Duration,
}

impl PostgresConfig {
    /// Defaults for the server at `url` (`postgres://user:password@host:port/db`):
    /// 8 connections, 30 s to acquire one, 5 s for the first connection.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The URL, password included, for the one place that connects.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The URL with its password replaced by `***`, for people.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// `url` with its password replaced by `***` (and with nothing of it when it
/// cannot be parsed, as a password could be anywhere in it then).
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
                return "<database url>".to_owned();
            }
            // Query parameters may carry a password too (`?password=`).
            let has_secret_param = parsed
                .query_pairs()
                .any(|(k, _)| k.eq_ignore_ascii_case("password"));
            if has_secret_param {
                parsed.set_query(Some("password=***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparsable database url>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_redaction_hide_the_password() {
        let c = PostgresConfig::new("postgres://sync:hunter2@db.example:5432/prod");
        let shown = format!("{c:?} {}", c.redacted_url());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("postgres://sync:***@db.example:5432/prod"),
            "{shown}"
        );
        let q = redact_url("postgres://db/prod?user=a&password=hunter2");
        assert!(!q.contains("hunter2"), "{q}");
        assert_eq!(redact_url("not a url hunter2"), "<unparsable database url>");
        assert_eq!(redact_url("postgres://db/prod"), "postgres://db/prod");
    }
}
