//! # sync-store-postgres
//!
//! The production store: a [`sync_core::Store`] and
//! [`sync_core::CheckpointStore`] in PostgreSQL.
//!
//! - The schema is created and migrated when the store connects
//!   (migrations embedded in the crate; sqlx's migrator takes an advisory
//!   lock, so processes starting at once take turns).
//! - Records are keyed by (source, entity, external id) with the payload as
//!   `jsonb`, content hash, first seen, last changed and a deleted marker.
//!   Views `yclients_clients`, `yclients_visits`, `yclients_visit_details`,
//!   `yclients_client_visits`, `kennel_boardings` and `record_day_counts`
//!   can be queried directly (see the README for examples).
//! - A batch's records, its change log entries and its covered units are
//!   written in one transaction, each with one `INSERT ... SELECT FROM
//!   UNNEST(...)` statement; unchanged records are not rewritten.
//! - Runs (counts, requests, 429s, errors, status, start and end) and the
//!   covered ranges are kept; a run holds an advisory lock on its stream
//!   until it finishes, so two runs of one stream never overlap and a killed
//!   process never blocks the next run.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sync_core::SyncError> {
//! let store = sync_store_postgres::PostgresStore::connect("postgres://sync@localhost/sync").await?;
//! println!("schema version {}", store.schema_version().await?);
//! # Ok(()) }
//! ```

mod config;
mod dialect;
mod error;
mod lease;
mod scratch;
mod store;

pub use config::PostgresConfig;
pub use scratch::ScratchDatabase;
pub use store::PostgresStore;
