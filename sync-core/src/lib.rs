//! # sync-core
//!
//! Resumable, rate-limited, checkpointed synchronisation of data from
//! external systems into a database. This crate is pure logic: it does no
//! I/O but time.
//!
//! The tree follows the flow of a run:
//!
//! - **plan** ([`plan`]): a [`Target`] (local days in a time zone, a key
//!   range, an id list) becomes [`Batch`]es: windows sized by the density of
//!   records to fill whole pages, a weekly page, a page of ids; only what is
//!   not [covered](Coverage) yet (or is due for a re-check). The same
//!   planner prices a run at each pace [preset](plan::Preset).
//! - **engine** ([`Engine`]): several requests in flight, each batch
//!   committed with its checkpoint, progress events, the run recorded.
//! - **source** ([`Source`]): adapters speak their protocol, one request at
//!   a time; the core adds retries ([`Retrying`]), sessions
//!   ([`Authenticated`]) and pacing ([`Paced`]) by wrapping them, and the
//!   request [`Budget`] ([`RateLimiter`] in memory) holds every limit.
//! - **store** ([`Store`], [`CheckpointStore`]): records, checkpoints and
//!   the run history; [`commit`] decides what a commit does to each record,
//!   the same for every store; [`MemoryStore`] for tests and examples;
//!   `testkit` (feature `testkit`) is the conformance suite every store
//!   passes.
//!
//! The invariants this crate guarantees (checkpoint never ahead of data,
//! idempotent commits, limits held, resumable anywhere, bounded memory,
//! every run recorded, local days, no secrets, the plan is the run) are
//! listed in the project's design document; each has a test.

mod coverage;
mod domain;
mod engine;
mod error;
mod limit;
pub mod plan;
mod secret;
mod source;
mod store;

pub use store::commit;
#[cfg(feature = "testkit")]
pub use store::testkit;

pub use coverage::checkpoint::{Coverage, TargetCoverage};
pub use coverage::interval::{CoverageSummary, DayRange, IntervalSet, KeyRange, Point, Span};
pub use domain::record::{
    diff_payloads, ChangeKind, ContentHash, FieldChange, Record, RecordChange, StoredRecord,
    StreamId, Unit,
};
pub use domain::run::{RecordCounts, RunId, RunReport, RunStatus, SyncMode};
pub use engine::options::{ProgressFn, SyncOptions, SyncOptionsBuilder};
pub use engine::progress::ProgressEvent;
pub use engine::runner::{Engine, SourceDayCounts, Worker};
pub use error::{error_chain, BoxError, Result, SyncError};
pub use limit::budget::{Budget, BudgetStore};
pub use limit::limiter::{LimiterStats, RateLimiter};
pub use limit::limits::RateLimits;
pub use limit::schedule::{Schedule, SlowDown};
pub use limit::shared::SharedBudget;
pub use plan::target::{Batch, BatchSpan, Order, Target};
pub use secret::Secret;
pub use source::api::{
    Cursor, DayCounts, FetchCost, KeyPage, Page, Probe, Source, SourceExt, SourceInfo, Units,
    Windows,
};
pub use source::context::{FetchContext, RunMeter, WaitNotice, Waiting};
pub use source::paced::Paced;
pub use source::retry::{RetryPolicy, Retrying};
pub use source::retry_after::parse_retry_after;
pub use source::session::{Authenticated, SessionCache};
pub use store::api::{
    BatchCommit, CheckpointStore, Claim, ClaimId, ExistingQuery, Hint, HintQueue, JobProgress,
    PendingHints, RunProgress, Store, WorkQueue, MAX_ATTEMPTS,
};
pub use store::memory::{CommitFault, MemoryStore};

pub use async_trait::async_trait;
pub use chrono_tz::Tz;
pub use tokio_util::sync::CancellationToken;
