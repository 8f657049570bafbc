//! How to open a SQLite store.

use std::path::PathBuf;
use std::time::Duration;

/// Settings of a [`crate::SqliteStore`] kept in a file.
///
/// Nothing here is secret: a SQLite database has no password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteConfig {
    /// The database file; it and its parent directory are created when
    /// missing.
    pub path: PathBuf,
    /// How long a statement waits for another connection's (or process's)
    /// write lock before it fails as retryable.
    pub busy_timeout: Duration,
    /// Connections in the pool: readers run side by side (WAL mode), writers
    /// take turns.
    pub max_connections: u32,
}

impl SqliteConfig {
    /// Defaults for a database at `path`: 30 s busy timeout, 4 connections.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            busy_timeout: Duration::from_secs(30),
            max_connections: 4,
        }
    }
}
