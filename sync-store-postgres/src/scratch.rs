//! Throwaway databases for tests and benchmarks.

use sqlx::{Connection, PgConnection};
use sync_core::SyncError;

use crate::config::redact_url as redact;

/// A database of its own on the server named by `DATABASE_URL`, created
/// with a random name so that tests can run in parallel. Drop it with
/// [`ScratchDatabase::drop_db`].
#[derive(Debug)]
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// Creates `<prefix>_<random>` on the server of `DATABASE_URL`. Without
    /// `DATABASE_URL` the error says how to run with a throwaway server.
    pub async fn create(prefix: &str) -> Result<Self, SyncError> {
        let admin_url = std::env::var("DATABASE_URL").map_err(|_| {
            SyncError::invalid_input(
                "DATABASE_URL is not set: this needs a Postgres server where it may CREATE \
                 DATABASE; run it through `scripts/with-postgres.sh` (which starts a throwaway \
                 server) or set DATABASE_URL",
            )
        })?;
        Self::create_on(&admin_url, prefix).await
    }

    /// Creates `<prefix>_<random>` on the server of `admin_url`.
    pub async fn create_on(admin_url: &str, prefix: &str) -> Result<Self, SyncError> {
        let prefix: String = prefix
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let name = format!("{prefix}_{:016x}", rand::random::<u64>());
        let failed = |doing: &str, e: &dyn std::fmt::Display| SyncError::Fatal {
            message: format!("{doing} on {}: {e}", redact(admin_url)),
            source: None,
        };
        let mut admin = PgConnection::connect(admin_url)
            .await
            .map_err(|e| failed("connecting", &e))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .map_err(|e| failed("creating a scratch database", &e))?;
        let _ = admin.close().await;
        let mut url = url::Url::parse(admin_url).map_err(|e| failed("reading the URL", &e))?;
        url.set_path(&format!("/{name}"));
        Ok(Self {
            admin_url: admin_url.to_string(),
            name,
            url: url.to_string(),
        })
    }

    /// The URL of the scratch database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The name of the scratch database.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, closing any connection still open to it.
    pub async fn drop_db(&self) -> Result<(), SyncError> {
        let mut admin = PgConnection::connect(&self.admin_url)
            .await
            .map_err(|e| SyncError::fatal(format!("connecting to drop {}: {e}", self.name)))?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await
        .map_err(|e| SyncError::fatal(format!("dropping {}: {e}", self.name)))?;
        Ok(())
    }
}
