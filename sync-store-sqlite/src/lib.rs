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
//!   payload, content hash, first seen, last changed, the run that created
//!   them and a deleted marker. Views `yclients_clients`, `yclients_visits`,
//!   `yclients_visit_details`, `yclients_client_visits`, `kennel_boardings`
//!   and `record_day_counts` can be queried directly (see the README).
//! - Commits, coverage, runs and history are the SQL layer shared with the
//!   Postgres store (`sync-store-sql`); what is SQLite's own is here: the
//!   file and its settings (WAL, busy timeout), text timestamps, `json_each`
//!   and multi-row statements, and leases.
//! - A run holds an OS file lock on its stream until it finishes, so two
//!   runs of one stream never overlap and a killed process never blocks the
//!   next run.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sync_core::SyncError> {
//! let store = sync_store_sqlite::SqliteStore::open("data/sync.db").await?;
//! println!("schema version {}", store.schema_version().await?);
//! # Ok(()) }
//! ```

mod config;
mod dialect;
mod error;
mod lease;
mod store;

pub use config::SqliteConfig;
pub use store::SqliteStore;
