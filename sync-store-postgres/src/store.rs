//! The Postgres store: connecting, its schema, and the shared SQL layer
//! over it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;
use sync_core::SyncError;
use sync_store_sql::{Dialect, ErrorClass, SqlStore};

use crate::config::PostgresConfig;
use crate::dialect::PgDialect;
use crate::error::{classify, Error};

/// The schema migrations, embedded in the binary.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// A [`sync_core::Store`] and [`sync_core::CheckpointStore`] in a Postgres
/// database.
///
/// Cheap to clone (the pool is shared). The schema is created and migrated
/// when the store connects (sqlx's migrator holds an advisory lock, so
/// processes starting at once take turns). Runs take a lease on their stream:
/// an advisory lock held by a session of their own until they finish.
#[derive(Clone)]
pub struct PostgresStore {
    inner: SqlStore<PgDialect>,
}

sync_store_sql::delegate_store!(PostgresStore, inner);

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.inner.dialect().location())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the server at `url` with default settings and migrates
    /// the schema.
    pub async fn connect(url: &str) -> Result<Self, SyncError> {
        Self::connect_with(PostgresConfig::new(url)).await
    }

    /// Connects as `config` says and migrates the schema.
    ///
    /// A first connection is made alone, within
    /// [`PostgresConfig::connect_timeout`], so that a wrong URL or a server
    /// that is down fails at once (the pool would retry a refused connection
    /// until its acquire timeout).
    pub async fn connect_with(config: PostgresConfig) -> Result<Self, SyncError> {
        let options =
            PgConnectOptions::from_str(config.url()).map_err(|e| connect_error(&config, &e))?;
        check_reachable(&config, &options).await?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(|e| connect_error(&config, &e))?;
        Self::from_pool(pool).await
    }

    /// A store on an existing pool; migrates the schema.
    pub async fn from_pool(pool: PgPool) -> Result<Self, SyncError> {
        let dialect = PgDialect::new(Arc::new(pool.connect_options().as_ref().clone()));
        let store = Self {
            inner: SqlStore::new(pool, dialect),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the migrations the database lacks (connecting does so
    /// already).
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
    pub fn pool(&self) -> &PgPool {
        self.inner.pool()
    }

    /// Closes every pooled connection; later calls fail. Leases of runs not
    /// finished stay until their sessions end with the store.
    pub async fn close(&self) {
        self.inner.close().await;
    }
}

/// Makes (and closes) one connection within the connect timeout.
async fn check_reachable(config: &PostgresConfig, options: &PgConnectOptions) -> Result<(), Error> {
    let timeout = config.connect_timeout;
    match tokio::time::timeout(timeout, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => {
            // The server answered; a failure to say goodbye does not matter.
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(connect_error(config, &e)),
        Err(_) => Err(Error::Connect {
            url: config.redacted_url(),
            detail: format!("no answer within {} ms", timeout.as_millis()),
            class: ErrorClass::Temporary,
        }),
    }
}

/// Passwords shorter than this are not searched for in driver messages:
/// replacing a one-letter password would mangle the whole message. The
/// driver does not echo passwords; this is only a second line of defence.
const MIN_SCRUBBED_PASSWORD: usize = 6;

/// The error for a failed connection: the URL redacted, a refused
/// connection said plainly, a (long enough) password scrubbed from the
/// driver's message should it be there.
fn connect_error(config: &PostgresConfig, e: &sqlx::Error) -> Error {
    let mut detail = match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".to_owned()
        }
        other => other.to_string(),
    };
    for password in url_passwords(config.url()) {
        if password.len() >= MIN_SCRUBBED_PASSWORD && detail.contains(&password) {
            detail = detail.replace(&password, "***");
        }
    }
    Error::Connect {
        url: config.redacted_url(),
        detail,
        class: classify(e),
    }
}

/// The passwords a connection URL holds: after the user name, or as a
/// `password` query parameter.
fn url_passwords(url: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(url) else {
        return Vec::new();
    };
    let in_query = url
        .query_pairs()
        .filter(|(k, _)| k.eq_ignore_ascii_case("password"))
        .map(|(_, v)| v.into_owned());
    url.password()
        .map(str::to_owned)
        .into_iter()
        .chain(in_query)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(config: &PostgresConfig, e: sqlx::Error) -> String {
        SyncError::from(connect_error(config, &e)).to_string()
    }

    #[test]
    fn a_long_password_echoed_by_the_driver_is_scrubbed() {
        let config = PostgresConfig::new("postgres://sync:hunter22@db:5432/prod");
        let shown = message(
            &config,
            sqlx::Error::Configuration("bad password hunter22 given".into()),
        );
        assert!(!shown.contains("hunter22"), "{shown}");
        assert!(shown.contains("bad password *** given"), "{shown}");
        assert!(shown.contains("sync:***@db:5432/prod"), "{shown}");

        let config = PostgresConfig::new("postgres://db/prod?user=sync&password=s3cret-word");
        let shown = message(
            &config,
            sqlx::Error::Configuration("echo s3cret-word".into()),
        );
        assert!(!shown.contains("s3cret-word"), "{shown}");
    }

    #[test]
    fn a_short_password_does_not_mangle_the_message() {
        let config = PostgresConfig::new("postgres://sync:p@db:5432/prod");
        let shown = message(&config, sqlx::Error::PoolTimedOut);
        assert!(
            shown.contains("pool timed out while waiting for an open connection"),
            "{shown}"
        );
        assert!(shown.contains("sync:***@db:5432/prod"), "{shown}");
        assert!(!shown.contains("sync:p@"), "{shown}");
    }

    #[test]
    fn a_refused_connection_is_said_plainly_and_is_retryable() {
        let config = PostgresConfig::new("postgres://sync:pw@127.0.0.1:9/prod");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = SyncError::from(connect_error(&config, &sqlx::Error::Io(refused)));
        assert_eq!(
            err.to_string(),
            "temporary failure: postgres store: cannot connect to \
             postgres://sync:***@127.0.0.1:9/prod: connection refused"
        );
        assert!(matches!(err, SyncError::Retryable { .. }), "{err:?}");
    }
}
