//! The `Store` and `CheckpointStore` traits: where records, checkpoints and
//! the run history are kept.

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::coverage::checkpoint::Coverage;
use crate::coverage::interval::DayRange;
use crate::domain::record::{Record, RecordChange, StoredRecord, StreamId};
use crate::domain::run::{RecordCounts, RunId, RunReport};
use crate::error::Result;
use crate::plan::target::Batch;

/// The run's counters at the time of a commit, written to the run's row in
/// the commit's transaction so that a run killed later still shows what it
/// did up to its last stored batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunProgress {
    /// Requests sent to the source so far (as the server saw them).
    pub requests: u64,
    /// 429 answers so far.
    pub rate_limited: u64,
    /// Retries so far.
    pub retries: u64,
}

/// One batch to store: its records and the units it covers, written together.
#[derive(Clone, Copy, Debug)]
pub struct BatchCommit<'a> {
    /// The run writing it (change log entries point to it).
    pub run: &'a RunId,
    /// The stream.
    pub stream: &'a StreamId,
    /// The records fetched for the batch.
    pub records: &'a [Record],
    /// The units the batch covers; marked covered in the same transaction,
    /// with the time of the commit as their last check.
    pub covered: &'a Coverage,
    /// The run's counters, written to its row in the same transaction: the
    /// row's record counts grow by this commit's counts, its stored batches
    /// by one (when it [finishes](Self::finishes_batch) a batch), and its requests, 429s and retries become these (they only
    /// grow).
    pub progress: RunProgress,
    /// The queued batch this commit completes (a worker's), marked done in
    /// the same transaction: a batch is done exactly when its records are
    /// stored.
    pub claim: Option<ClaimId>,
    /// Whether this commit finishes its batch. A batch too large to hold
    /// in memory is committed in parts as its pages come in: the earlier
    /// parts store records only (nothing covered, no claim, the run's
    /// stored batches do not grow); the last carries the coverage.
    pub finishes_batch: bool,
}

/// Which stored records a source wants to see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExistingQuery {
    /// Records of `entity` with these external ids.
    ByIds {
        /// The kind of entity.
        entity: String,
        /// External ids.
        ids: Vec<String>,
    },
    /// Records of `entity` that belong to these local days (deleted ones
    /// included).
    InDays {
        /// The kind of entity.
        entity: String,
        /// The days, inclusive.
        range: DayRange,
    },
}

/// Where records go.
///
/// Implementations are object-safe and shared as `Arc<dyn Store>`; the same
/// type usually implements [`CheckpointStore`] too. The conformance checks
/// in `sync_core::testkit` (feature `testkit`) say what every implementation
/// must do.
#[async_trait]
pub trait Store: Send + Sync + Debug {
    /// Stores a batch's records and marks its units covered, in one
    /// transaction: either both are durable or neither is.
    ///
    /// Records are keyed by (stream source, entity, external id). A record
    /// whose content hash is unchanged counts as unchanged and is not
    /// rewritten; a changed one is updated and gets a change log entry
    /// naming the fields that changed; a record marked deleted that was not
    /// deleted before counts as deleted; a record moved to another unit
    /// (day or key) counts as updated. A batch holding the same key twice
    /// stores its last version, counted once. Committing the same batch
    /// again changes nothing and counts everything as unchanged.
    /// [`crate::commit`] decides all of this; stores only write.
    async fn commit(&self, batch: BatchCommit<'_>) -> Result<RecordCounts>;

    /// Records already stored for `stream` that match `query`.
    async fn existing(&self, stream: &StreamId, query: &ExistingQuery)
        -> Result<Vec<StoredRecord>>;

    /// How many records (not deleted) the store holds per local day in
    /// `range`; days with none are left out.
    async fn day_counts(
        &self,
        stream: &StreamId,
        range: DayRange,
    ) -> Result<BTreeMap<NaiveDate, u64>>;
}

/// Where checkpoints (coverage) and the run history are kept.
#[async_trait]
pub trait CheckpointStore: Send + Sync + Debug {
    /// The units of `stream` whose records are stored.
    async fn coverage(&self, stream: &StreamId) -> Result<Coverage>;

    /// Forgets the coverage of `units` (to force a re-sync). Records stay.
    async fn clear_coverage(&self, stream: &StreamId, units: &Coverage) -> Result<()>;

    /// When the covered days of `stream` within `range` were last fetched:
    /// sorted, non-overlapping day ranges, each with the time of the last
    /// commit that covered all of it (adjacent days with the same time may
    /// come as one range or several). Days not covered are left out.
    async fn last_checked(
        &self,
        stream: &StreamId,
        range: DayRange,
    ) -> Result<Vec<(DayRange, DateTime<Utc>)>>;

    /// Records the start of a run (status in progress) and takes the lease on
    /// its stream. Fails with [`crate::SyncError::Busy`] while another live
    /// run holds the lease; a lease left by a process that died is taken
    /// over, and that run is marked failed.
    async fn begin_run(&self, run: &RunReport) -> Result<()>;

    /// Records the end of a run (its final report) and releases the lease.
    async fn finish_run(&self, run: &RunReport) -> Result<()>;

    /// The most recent runs, newest first; only those of `stream` when given.
    async fn runs(&self, stream: Option<&StreamId>, limit: usize) -> Result<Vec<RunReport>>;

    /// One run, if known.
    async fn run(&self, id: &RunId) -> Result<Option<RunReport>>;

    /// What a run changed: one entry per record created, updated or deleted.
    async fn run_changes(&self, id: &RunId) -> Result<Vec<RecordChange>>;

    /// One page of [`CheckpointStore::run_changes`], in the same order: at
    /// most `limit` entries after skipping `offset`. For pages of a run
    /// that changed many records; stores should answer it without reading
    /// the whole log (the default does read it all).
    async fn run_changes_page(
        &self,
        id: &RunId,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<RecordChange>> {
        let all = self.run_changes(id).await?;
        Ok(all.into_iter().skip(offset).take(limit).collect())
    }
}

/// How many times a queued batch is claimed before it is given up on
/// (counted as failed): a batch whose data is bad fails every time.
pub const MAX_ATTEMPTS: u32 = 3;

/// The id of a batch in a [`WorkQueue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClaimId(pub i64);

/// A batch a worker claimed from a [`WorkQueue`].
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    /// The queue's id of the batch.
    pub id: ClaimId,
    /// The batch.
    pub batch: Batch,
    /// How many times it was claimed before (by workers that died or
    /// failed it).
    pub attempts: u32,
}

/// How far a queued job is, in batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobProgress {
    /// Not claimed yet (or given back).
    pub pending: u64,
    /// Claimed by a worker whose lease is live.
    pub claimed: u64,
    /// Claimed by a worker whose lease expired: claimable again.
    pub abandoned: u64,
    /// Stored.
    pub done: u64,
    /// Given up on after too many attempts.
    pub failed: u64,
}

impl JobProgress {
    /// Whether nothing is left to do or being done.
    pub fn is_finished(&self) -> bool {
        self.pending == 0 && self.claimed == 0 && self.abandoned == 0
    }
}

/// A queue of batches that several workers share (processes, machines),
/// each batch claimed by one worker at a time under a lease that its
/// worker renews; a batch whose lease expires (its worker died) is claimed
/// again by another. A batch is done in the transaction that commits it
/// ([`BatchCommit::claim`]).
#[async_trait]
pub trait WorkQueue: Send + Sync + Debug {
    /// Queues the batches of `job` (of `stream`) once: when the job has no
    /// batch yet, queues every one of `batches` together and returns true;
    /// when another worker planned it already, queues nothing and returns
    /// false.
    async fn plan_job(&self, job: &str, stream: &StreamId, batches: &[Batch]) -> Result<bool>;

    /// Claims the next batch of `job` for `worker` until `lease` from now:
    /// pending ones first (in the order queued), then abandoned ones;
    /// batches claimed [`MAX_ATTEMPTS`] times already are given up on.
    /// `None` when nothing is claimable now.
    async fn claim(
        &self,
        job: &str,
        worker: &str,
        lease: std::time::Duration,
    ) -> Result<Option<Claim>>;

    /// Extends the lease of every batch `worker` holds to `lease` from now.
    async fn heartbeat(&self, worker: &str, lease: std::time::Duration) -> Result<()>;

    /// Gives a claimed batch back: to be claimed again (it failed), or, with
    /// `replacement`, replaced by those batches (a window cut smaller).
    async fn release(&self, claim: ClaimId, worker: &str, replacement: &[Batch]) -> Result<()>;

    /// How far `job` is.
    async fn progress(&self, job: &str) -> Result<JobProgress>;
}

/// Something at the source may have changed (a webhook said so): a hint to
/// fetch again, never data. Hints of one entity collapse into one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hint {
    /// The stream that holds the entity.
    pub stream: StreamId,
    /// The entity kind, e.g. `record`.
    pub entity: String,
    /// The entity's id at the source.
    pub external_id: String,
}

/// The hints waiting for one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingHints {
    /// The stream.
    pub stream: StreamId,
    /// Entities hinted (each once, however many hints it got).
    pub entities: u64,
    /// Hints received in all.
    pub received: u64,
    /// A mark of the latest hint: [`HintQueue::clear_hints`] with it
    /// clears what was pending when it was read, not what came after.
    pub up_to: i64,
}

/// A durable queue of [`Hint`]s (from webhooks), kept in the store so
/// that hints survive a restart; whoever syncs a hinted stream clears its
/// hints afterwards.
#[async_trait]
pub trait HintQueue: Send + Sync + Debug {
    /// Keeps `hint`; a hint of an entity already waiting only counts as a
    /// repeat (and moves it after the hints pending now).
    async fn add_hint(&self, hint: &Hint) -> Result<()>;

    /// The streams with hints waiting, oldest first.
    async fn pending_hints(&self) -> Result<Vec<PendingHints>>;

    /// Clears the hints of `stream` up to `up_to` (a
    /// [`PendingHints::up_to`]); returns how many entities were cleared.
    async fn clear_hints(&self, stream: &StreamId, up_to: i64) -> Result<u64>;
}
