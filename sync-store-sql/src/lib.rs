//! # sync-store-sql
//!
//! The SQL layer shared by `sync-store-sqlite` and `sync-store-postgres`:
//! one implementation of a [`sync_core::Store`] and
//! [`sync_core::CheckpointStore`] over sqlx, with what differs between the
//! databases behind the [`Dialect`] trait. Users depend on the store crates;
//! this crate is for them.
//!
//! - [`SqlStore`] commits a batch as [`sync_core::commit`] decides (records,
//!   change log, coverage with its check time, the run's running totals, in
//!   one transaction), reads records, coverage and check times, keeps runs,
//!   leases and the history of what each run changed.
//! - [`Dialect`] holds the differences: SQL fragments, how times are stored,
//!   error classes, the lease, and the bulk writes of a commit (multi-row
//!   `VALUES` by default; Postgres sends column arrays instead).
//! - [`SqlDb`] and [`Arg`] let one statement text run on either database
//!   (`$1`-style placeholders).
//!
//! The modules follow the tables: `records` (commits and reads), `coverage`
//! (`covered_ranges`), `runs` (`runs`, `record_changes`), `lease`, `budget`
//! (`budgets`: one schedule per key, read and written under a lock), `queue`
//! (`work_jobs`, `work_queue`, `work_workers`: batches claimed with `FOR
//! UPDATE SKIP LOCKED` in Postgres, under the write lock in SQLite). Times
//! that processes compare (budgets, leases) are the database's clock
//! ([`Dialect::NOW_MICROS`]).

mod budget;
mod coverage;
mod db;
mod dialect;
mod error;
mod hints;
mod lease;
mod queue;
mod records;
mod runs;
mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use db::{Arg, SqlDb};
pub use dialect::{
    Change, Dialect, ErrorClass, WriteContext, RECORD_INSERT_COLUMNS, RECORD_UPDATE_SET,
};
pub use error::{migrate_error, sync_error};
pub use lease::stream_key;
pub use store::{latest_version, SqlStore};

#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use chrono;
    pub use sync_core;
}

/// Implements [`sync_core::Store`] and [`sync_core::CheckpointStore`] for a
/// store type by handing every call to its [`SqlStore`] field:
/// `delegate_store!(SqliteStore, inner);`.
#[macro_export]
macro_rules! delegate_store {
    ($store:ty, $field:ident) => {
        #[$crate::__private::async_trait]
        impl $crate::__private::sync_core::BudgetStore for $store {
            async fn update_schedule(
                &self,
                key: &str,
                update: &mut (dyn for<'s> FnMut(
                    &'s mut $crate::__private::sync_core::Schedule,
                    ::std::time::Duration,
                ) + Send),
            ) -> $crate::__private::sync_core::Result<::std::time::Duration> {
                $crate::__private::sync_core::BudgetStore::update_schedule(
                    &self.$field,
                    key,
                    update,
                )
                .await
            }

            async fn schedule(
                &self,
                key: &str,
            ) -> $crate::__private::sync_core::Result<
                ::std::option::Option<(
                    $crate::__private::sync_core::Schedule,
                    ::std::time::Duration,
                )>,
            > {
                $crate::__private::sync_core::BudgetStore::schedule(&self.$field, key).await
            }
        }

        #[$crate::__private::async_trait]
        impl $crate::__private::sync_core::WorkQueue for $store {
            async fn plan_job(
                &self,
                job: &str,
                stream: &$crate::__private::sync_core::StreamId,
                batches: &[$crate::__private::sync_core::Batch],
            ) -> $crate::__private::sync_core::Result<bool> {
                $crate::__private::sync_core::WorkQueue::plan_job(
                    &self.$field,
                    job,
                    stream,
                    batches,
                )
                .await
            }

            async fn claim(
                &self,
                job: &str,
                worker: &str,
                lease: ::std::time::Duration,
            ) -> $crate::__private::sync_core::Result<
                ::std::option::Option<$crate::__private::sync_core::Claim>,
            > {
                $crate::__private::sync_core::WorkQueue::claim(&self.$field, job, worker, lease)
                    .await
            }

            async fn heartbeat(
                &self,
                worker: &str,
                lease: ::std::time::Duration,
            ) -> $crate::__private::sync_core::Result<()> {
                $crate::__private::sync_core::WorkQueue::heartbeat(&self.$field, worker, lease)
                    .await
            }

            async fn release(
                &self,
                claim: $crate::__private::sync_core::ClaimId,
                worker: &str,
                replacement: &[$crate::__private::sync_core::Batch],
            ) -> $crate::__private::sync_core::Result<()> {
                $crate::__private::sync_core::WorkQueue::release(
                    &self.$field,
                    claim,
                    worker,
                    replacement,
                )
                .await
            }

            async fn progress(
                &self,
                job: &str,
            ) -> $crate::__private::sync_core::Result<$crate::__private::sync_core::JobProgress>
            {
                $crate::__private::sync_core::WorkQueue::progress(&self.$field, job).await
            }
        }

        #[$crate::__private::async_trait]
        impl $crate::__private::sync_core::HintQueue for $store {
            async fn add_hint(
                &self,
                hint: &$crate::__private::sync_core::Hint,
            ) -> $crate::__private::sync_core::Result<()> {
                $crate::__private::sync_core::HintQueue::add_hint(&self.$field, hint).await
            }

            async fn pending_hints(
                &self,
            ) -> $crate::__private::sync_core::Result<
                ::std::vec::Vec<$crate::__private::sync_core::PendingHints>,
            > {
                $crate::__private::sync_core::HintQueue::pending_hints(&self.$field).await
            }

            async fn clear_hints(
                &self,
                stream: &$crate::__private::sync_core::StreamId,
                up_to: i64,
            ) -> $crate::__private::sync_core::Result<u64> {
                $crate::__private::sync_core::HintQueue::clear_hints(&self.$field, stream, up_to)
                    .await
            }
        }

        #[$crate::__private::async_trait]
        impl $crate::__private::sync_core::Store for $store {
            async fn commit(
                &self,
                batch: $crate::__private::sync_core::BatchCommit<'_>,
            ) -> $crate::__private::sync_core::Result<$crate::__private::sync_core::RecordCounts>
            {
                $crate::__private::sync_core::Store::commit(&self.$field, batch).await
            }

            async fn existing(
                &self,
                stream: &$crate::__private::sync_core::StreamId,
                query: &$crate::__private::sync_core::ExistingQuery,
            ) -> $crate::__private::sync_core::Result<
                ::std::vec::Vec<$crate::__private::sync_core::StoredRecord>,
            > {
                $crate::__private::sync_core::Store::existing(&self.$field, stream, query).await
            }

            async fn day_counts(
                &self,
                stream: &$crate::__private::sync_core::StreamId,
                range: $crate::__private::sync_core::DayRange,
            ) -> $crate::__private::sync_core::Result<
                ::std::collections::BTreeMap<$crate::__private::chrono::NaiveDate, u64>,
            > {
                $crate::__private::sync_core::Store::day_counts(&self.$field, stream, range).await
            }
        }

        #[$crate::__private::async_trait]
        impl $crate::__private::sync_core::CheckpointStore for $store {
            async fn coverage(
                &self,
                stream: &$crate::__private::sync_core::StreamId,
            ) -> $crate::__private::sync_core::Result<$crate::__private::sync_core::Coverage> {
                $crate::__private::sync_core::CheckpointStore::coverage(&self.$field, stream).await
            }

            async fn clear_coverage(
                &self,
                stream: &$crate::__private::sync_core::StreamId,
                units: &$crate::__private::sync_core::Coverage,
            ) -> $crate::__private::sync_core::Result<()> {
                $crate::__private::sync_core::CheckpointStore::clear_coverage(
                    &self.$field,
                    stream,
                    units,
                )
                .await
            }

            async fn last_checked(
                &self,
                stream: &$crate::__private::sync_core::StreamId,
                range: $crate::__private::sync_core::DayRange,
            ) -> $crate::__private::sync_core::Result<
                ::std::vec::Vec<(
                    $crate::__private::sync_core::DayRange,
                    $crate::__private::chrono::DateTime<$crate::__private::chrono::Utc>,
                )>,
            > {
                $crate::__private::sync_core::CheckpointStore::last_checked(
                    &self.$field,
                    stream,
                    range,
                )
                .await
            }

            async fn begin_run(
                &self,
                run: &$crate::__private::sync_core::RunReport,
            ) -> $crate::__private::sync_core::Result<()> {
                $crate::__private::sync_core::CheckpointStore::begin_run(&self.$field, run).await
            }

            async fn finish_run(
                &self,
                run: &$crate::__private::sync_core::RunReport,
            ) -> $crate::__private::sync_core::Result<()> {
                $crate::__private::sync_core::CheckpointStore::finish_run(&self.$field, run).await
            }

            async fn runs(
                &self,
                stream: ::std::option::Option<&$crate::__private::sync_core::StreamId>,
                limit: usize,
            ) -> $crate::__private::sync_core::Result<
                ::std::vec::Vec<$crate::__private::sync_core::RunReport>,
            > {
                $crate::__private::sync_core::CheckpointStore::runs(&self.$field, stream, limit)
                    .await
            }

            async fn run(
                &self,
                id: &$crate::__private::sync_core::RunId,
            ) -> $crate::__private::sync_core::Result<
                ::std::option::Option<$crate::__private::sync_core::RunReport>,
            > {
                $crate::__private::sync_core::CheckpointStore::run(&self.$field, id).await
            }

            async fn run_changes(
                &self,
                id: &$crate::__private::sync_core::RunId,
            ) -> $crate::__private::sync_core::Result<
                ::std::vec::Vec<$crate::__private::sync_core::RecordChange>,
            > {
                $crate::__private::sync_core::CheckpointStore::run_changes(&self.$field, id).await
            }

            async fn run_changes_page(
                &self,
                id: &$crate::__private::sync_core::RunId,
                offset: usize,
                limit: usize,
            ) -> $crate::__private::sync_core::Result<
                ::std::vec::Vec<$crate::__private::sync_core::RecordChange>,
            > {
                $crate::__private::sync_core::CheckpointStore::run_changes_page(
                    &self.$field,
                    id,
                    offset,
                    limit,
                )
                .await
            }
        }
    };
}
