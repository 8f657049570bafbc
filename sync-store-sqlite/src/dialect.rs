//! What is SQLite's own: text timestamps, `json_each`, `BEGIN IMMEDIATE`,
//! file leases.

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Sqlite;
use sync_core::{StreamId, SyncError};
use sync_store_sql::{Arg, Dialect, ErrorClass};

use crate::lease::{self, FileLease};

/// The SQLite dialect: where the database file is (`None` in memory).
#[derive(Debug)]
pub(crate) struct SqliteDialect {
    pub(crate) path: Option<PathBuf>,
}

/// UTC, fixed width, so that text order is time order.
fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[async_trait]
impl Dialect for SqliteDialect {
    type Db = Sqlite;
    type Lease = FileLease;

    const STORE: &'static str = "sqlite store";
    // IMMEDIATE takes the write lock at once (waiting up to the busy
    // timeout) instead of failing later when a read turns into a write.
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const FOR_UPDATE: &'static str = "";
    const SKIP_LOCKED: &'static str = "";
    // The machine's clock: every process of one database file shares it.
    const NOW_MICROS: &'static str =
        "CAST(ROUND((julianday('now') - 2440587.5) * 86400000000.0) AS INTEGER)";
    const RUN_SEQUENCE: &'static str = "rowid";
    const WRITES_IN_WITH: bool = false;
    const NAMELESS_VALUES: bool = true;
    const MAX_BIND: usize = 32_766;

    fn location(&self) -> String {
        match &self.path {
            Some(path) => path.display().to_string(),
            None => ":memory:".to_owned(),
        }
    }

    fn time(t: DateTime<Utc>) -> Arg<'static> {
        Arg::Text(ts(t))
    }

    fn json_texts(param: &str) -> String {
        format!("SELECT value FROM json_each({param})")
    }

    fn json_pairs(param: &str) -> String {
        // As the outer loop of a CROSS JOIN: one primary key lookup per pair.
        format!("SELECT value ->> 0 AS entity, value ->> 1 AS external_id FROM json_each({param})")
    }

    fn append_error(param: &str) -> String {
        format!("json_insert(errors, '$[#]', {param})")
    }

    fn classify(error: &sqlx::Error) -> ErrorClass {
        crate::error::classify(error)
    }

    async fn take_lease(&self, stream: &StreamId) -> Result<Option<FileLease>, SyncError> {
        Ok(lease::take(self.path.as_deref(), stream)?)
    }

    async fn release_lease(&self, _run: &str, lease: FileLease) {
        drop(lease);
    }
}
