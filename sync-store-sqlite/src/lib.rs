//! # sync-store-sqlite
//!
//! The default store of the CLI: a [`sync_core::Store`] and
//! [`sync_core::CheckpointStore`] in one SQLite file, so a sync works on a
//! machine without a database server.
//!
//! - The schema is created and migrated when the store opens (migrations
//!   embedded in the crate); several processes may open the same new file
//!   at once.
//! - Records are keyed by (source, entity, external id) with their JSON
//!   payload, content hash, first seen, last changed and a deleted marker.
//!   Views `yclients_clients`, `yclients_visits`, `kennel_boardings` and
//!   `record_day_counts` can be queried directly.
//! - A batch's records, its change log entries and its covered units are
//!   written in one transaction with multi-row statements; unchanged records
//!   are not rewritten.
//! - Runs (counts, requests, 429s, errors, status, start and end) and the
//!   covered ranges are kept; a run holds an OS file lock on its stream
//!   until it finishes, so two runs of one stream never overlap and a killed
//!   process never blocks the next run.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sync_core::SyncError> {
//! let store = sync_store_sqlite::SqliteStore::open("data/sync.db").await?;
//! println!("schema version {}", store.schema_version().await?);
//! # Ok(()) }
//! ```

mod config;
mod error;
mod lease;
mod store;

pub use config::SqliteConfig;
pub use store::SqliteStore;
