//! # sync-core
//!
//! Resumable, rate-limited, checkpointed synchronisation of data from
//! external systems into a database. This crate is pure logic: it does no
//! I/O but time.
//!
//! - [`Source`], [`Store`] and [`CheckpointStore`]: the traits adapters
//!   implement, with one error type, [`SyncError`].
//! - [`batch`]: a target (local days in a time zone, a key range, an id list)
//!   split into batches, skipping what is covered.
//! - [`interval`] and [`coverage`]: covered units, gaps and percentages.
//! - [`plan`]: from documented limits and a workload, the request count,
//!   pacing, batch size and ETA of each preset.
//! - [`limiter`]: the run-time limiter that holds every window at once.
//! - [`retry`]: the retry policy, classified by [`SyncError`].
//! - [`engine`]: drives the batches of a run and records it.
//! - [`commit`]: what a commit does to each record (created, updated,
//!   deleted, unchanged), decided the same way by every store.
//! - [`memory`]: an in-memory store for tests and examples.
//!
//! The invariants this crate guarantees (checkpoint never ahead of data,
//! idempotent commits, limits held, resumable anywhere, bounded memory,
//! every run recorded, local days, no secrets) are listed in the project's
//! design document; each has a test.

pub mod batch;
pub mod commit;
pub mod coverage;
pub mod engine;
pub mod error;
pub mod interval;
pub mod limiter;
pub mod memory;
pub mod plan;
pub mod record;
pub mod retry;
pub mod run;
pub mod secret;
pub mod source;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use batch::{split, split_uncovered, Batch, BatchSpan, Order, Target};
pub use coverage::{Coverage, TargetCoverage};
pub use engine::{Engine, ProgressEvent, SyncOptions};
pub use error::{BoxError, Result, SyncError};
pub use interval::{CoverageSummary, DayRange, IntervalSet, KeyRange, Span};
pub use limiter::{RateLimiter, RateLimits};
pub use memory::{CommitFault, MemoryStore};
pub use plan::{
    PaceSettings, Plan, Preset, Risk, Strategy, StrategyComparison, StrategyEstimate, Workload,
};
pub use record::{
    ChangeKind, ContentHash, FieldChange, Record, RecordChange, StoredRecord, StreamId, Unit,
};
pub use retry::RetryPolicy;
pub use run::{RecordCounts, RunId, RunReport, RunStatus, SyncMode};
pub use secret::Secret;
pub use source::{FetchContext, RunMeter, Source, SourceInfo};
pub use store::{BatchCommit, CheckpointStore, ExistingQuery, RunProgress, Store};

pub use chrono_tz::Tz;
pub use tokio_util::sync::CancellationToken;
