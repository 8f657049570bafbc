//! The engine: drives the batches of one run from a source into a store.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::batch::{Order, Target};
use crate::error::{Result, SyncError};
use crate::limiter::RateLimiter;
use crate::record::StreamId;
use crate::retry::RetryPolicy;
use crate::run::{RecordCounts, RunId, RunReport, SyncMode};
use crate::source::Source;
use crate::store::{CheckpointStore, Store};

/// A callback that receives progress events. It must return quickly.
pub type ProgressFn = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// What the engine reports while it runs.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// The run started; `batches` are still to do.
    RunStarted {
        /// The run.
        run: RunId,
        /// The stream.
        stream: StreamId,
        /// Batches to run.
        batches: usize,
        /// Units in the target.
        units_total: u64,
        /// Units already covered before the run.
        units_covered: u64,
    },
    /// A batch started.
    BatchStarted {
        /// Its index.
        index: usize,
        /// What it covers, for people.
        span: String,
    },
    /// A batch was stored (or counted, in a dry run).
    BatchFinished {
        /// Its index.
        index: usize,
        /// What it covers, for people.
        span: String,
        /// Its record counts.
        counts: RecordCounts,
        /// Units of the target covered now.
        units_covered: u64,
        /// Units in the target.
        units_total: u64,
        /// Estimated time until the run ends.
        eta: Option<Duration>,
    },
    /// A batch failed; its units stay uncovered.
    BatchFailed {
        /// Its index.
        index: usize,
        /// What it covers, for people.
        span: String,
        /// The error, without secrets.
        error: String,
    },
    /// The run ended.
    RunFinished {
        /// Its final report.
        report: RunReport,
    },
}

/// How a run goes.
#[derive(Clone)]
pub struct SyncOptions {
    /// Units (days, keys) per batch.
    pub batch_size: NonZeroU32,
    /// Which end of the target first.
    pub order: Order,
    /// Pause between two batches.
    pub interval: Duration,
    /// Stop after this many batches (the rest waits for the next run).
    pub max_batches: Option<usize>,
    /// Batches in flight at once.
    pub concurrency: NonZeroUsize,
    /// Fetch and count, write nothing (no records, no checkpoint, no run).
    pub dry_run: bool,
    /// Re-sync units that are already covered.
    pub force: bool,
    /// Full or delta.
    pub mode: SyncMode,
    /// In delta mode, how far before the last successful run's start to
    /// look for changes (the source's clock and ours may differ).
    pub delta_overlap: Duration,
    /// Retries of a failed batch.
    pub retry: RetryPolicy,
    /// Cancels the run: the batch in flight is finished or rolled back.
    pub cancel: CancellationToken,
    /// Receives progress events.
    pub progress: Option<ProgressFn>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            batch_size: NonZeroU32::MIN,
            order: Order::default(),
            interval: Duration::ZERO,
            max_batches: None,
            concurrency: NonZeroUsize::MIN,
            dry_run: false,
            force: false,
            mode: SyncMode::Full,
            delta_overlap: Duration::from_secs(10 * 60),
            retry: RetryPolicy::default(),
            cancel: CancellationToken::new(),
            progress: None,
        }
    }
}

impl std::fmt::Debug for SyncOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncOptions")
            .field("batch_size", &self.batch_size)
            .field("order", &self.order)
            .field("interval", &self.interval)
            .field("max_batches", &self.max_batches)
            .field("concurrency", &self.concurrency)
            .field("dry_run", &self.dry_run)
            .field("force", &self.force)
            .field("mode", &self.mode)
            .field("delta_overlap", &self.delta_overlap)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Runs a source into a store, batch by batch, with checkpoints.
#[derive(Clone, Debug)]
pub struct Engine {
    source: Arc<dyn Source>,
    store: Arc<dyn Store>,
    checkpoints: Arc<dyn CheckpointStore>,
    limiter: Arc<RateLimiter>,
}

impl Engine {
    /// An engine for one source and one store. `limiter` is shared with every
    /// other engine that uses the same credentials.
    pub fn new(
        source: Arc<dyn Source>,
        store: Arc<dyn Store>,
        checkpoints: Arc<dyn CheckpointStore>,
        limiter: Arc<RateLimiter>,
    ) -> Self {
        Self {
            source,
            store,
            checkpoints,
            limiter,
        }
    }

    /// Runs `target` and returns the run's report.
    ///
    /// Covered units are skipped (unless `force`); each batch is fetched,
    /// then committed with its checkpoint in one transaction. A batch that
    /// fails (bad data, retries used up) is reported and the run goes on; its
    /// units stay uncovered for the next run. Errors that stop the run
    /// (credentials rejected, store unreachable, another run in progress)
    /// are returned as `Err`, after the run is recorded as failed when it
    /// could be.
    pub async fn run(&self, target: &Target, options: &SyncOptions) -> Result<RunReport> {
        let _ = (
            target,
            options,
            &self.source,
            &self.store,
            &self.checkpoints,
            &self.limiter,
        );
        Err(SyncError::fatal("engine not written yet"))
    }
}
