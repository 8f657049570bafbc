//! Throwaway Postgres databases on the server named by `DATABASE_URL`.

use sqlx::{Connection, PgConnection};

use crate::BoxError;

/// The server to benchmark on, if `DATABASE_URL` is set.
pub fn server_url() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// The message printed when Postgres parts are skipped.
pub const SKIPPED: &str = "DATABASE_URL is not set: Postgres skipped \
     (run through scripts/with-postgres.sh to include it)";

/// A database created for one benchmark and dropped by [`FreshDb::drop_db`].
#[derive(Debug)]
pub struct FreshDb {
    admin_url: String,
    name: String,
    /// The URL of the new database.
    pub url: String,
}

impl FreshDb {
    /// Creates a database with a unique name (prefix `tag`) on `admin_url`.
    pub async fn create(admin_url: &str, tag: &str) -> Result<Self, BoxError> {
        let name = format!(
            "bench_{tag}_{}_{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros()
        );
        let mut admin = PgConnection::connect(admin_url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let mut url = url::Url::parse(admin_url)?;
        url.set_path(&format!("/{name}"));
        Ok(Self {
            admin_url: admin_url.to_string(),
            name,
            url: url.to_string(),
        })
    }

    /// Drops the database (closing any connection left to it).
    pub async fn drop_db(self) -> Result<(), BoxError> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await?;
        Ok(())
    }
}
