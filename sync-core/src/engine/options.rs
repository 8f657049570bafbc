//! How a run goes: [`SyncOptions`] and its builder.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::run::SyncMode;
use crate::engine::progress::ProgressEvent;
use crate::plan::job::Refresh;
use crate::plan::pricing::PaceSettings;
use crate::plan::target::Order;
use crate::source::retry::RetryPolicy;

/// A callback that receives progress events. It must return quickly.
pub type ProgressFn = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// How a run goes. Build it with [`SyncOptions::builder`]; every setting
/// has a default, listed on its builder method.
#[derive(Clone)]
#[non_exhaustive]
pub struct SyncOptions {
    /// Units per batch: days per window, keys per chunk. `None` (the
    /// default): as the source describes itself (windows sized by density,
    /// a weekly page, a page of ids).
    pub batch_size: Option<NonZeroU32>,
    /// Which end of the target first.
    pub order: Order,
    /// A pause of this long after every [`SyncOptions::work_between_pauses`]
    /// of work (zero: no pause).
    pub pause: Duration,
    /// How long the run works between two pauses.
    pub work_between_pauses: Duration,
    /// Stop after this many batches (the run is then `partial`).
    pub max_batches: Option<usize>,
    /// Requests in flight at once, at most. The engine keeps as many in
    /// flight as the round trip times the allowed rate needs, up to this.
    pub max_in_flight: NonZeroUsize,
    /// Fetch and count as the real run would (created, updated, unchanged,
    /// deleted against what is stored), write nothing: no records, no
    /// checkpoint, no run.
    pub dry_run: bool,
    /// Fetch again units that are already covered.
    pub force: bool,
    /// Full or delta.
    pub mode: SyncMode,
    /// In delta mode, how far before the last completed run's start to
    /// look for changes (the source's clock and ours may differ).
    pub delta_overlap: Duration,
    /// In delta mode, for day sources that cannot list their changes: which
    /// stored days are fetched again, by age.
    pub refresh: Refresh,
    /// Retries of each request, and of each commit.
    pub retry: RetryPolicy,
    /// Cancels the run: requests in flight are dropped, a commit under way
    /// finishes.
    pub cancel: CancellationToken,
    /// Receives progress events.
    pub progress: Option<ProgressFn>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptionsBuilder::default().build()
    }
}

impl std::fmt::Debug for SyncOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncOptions")
            .field("batch_size", &self.batch_size)
            .field("order", &self.order)
            .field("pause", &self.pause)
            .field("work_between_pauses", &self.work_between_pauses)
            .field("max_batches", &self.max_batches)
            .field("max_in_flight", &self.max_in_flight)
            .field("dry_run", &self.dry_run)
            .field("force", &self.force)
            .field("mode", &self.mode)
            .field("delta_overlap", &self.delta_overlap)
            .field("refresh", &self.refresh)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl SyncOptions {
    /// A builder starting from the defaults.
    pub fn builder() -> SyncOptionsBuilder {
        SyncOptionsBuilder::default()
    }
}

/// Builds [`SyncOptions`]. Each method documents its default.
#[derive(Clone, Debug)]
pub struct SyncOptionsBuilder {
    options: SyncOptions,
}

impl Default for SyncOptionsBuilder {
    fn default() -> Self {
        Self {
            options: SyncOptions {
                batch_size: None,
                order: Order::NewestFirst,
                pause: Duration::ZERO,
                work_between_pauses: Duration::from_secs(180),
                max_batches: None,
                max_in_flight: NonZeroUsize::new(8).unwrap_or(NonZeroUsize::MIN),
                dry_run: false,
                force: false,
                mode: SyncMode::Full,
                delta_overlap: Duration::from_secs(10 * 60),
                refresh: Refresh::default(),
                retry: RetryPolicy::default(),
                cancel: CancellationToken::new(),
                progress: None,
            },
        }
    }
}

impl SyncOptionsBuilder {
    /// Units per batch. Default: as the source describes itself.
    pub fn batch_size(mut self, units: NonZeroU32) -> Self {
        self.options.batch_size = Some(units);
        self
    }

    /// Which end first. Default: newest first (the useful data arrives
    /// first).
    pub fn order(mut self, order: Order) -> Self {
        self.options.order = order;
        self
    }

    /// The pause and how long the run works between two pauses, as a
    /// preset sets them. Default: no pause.
    pub fn pace(mut self, pace: &PaceSettings) -> Self {
        self.options.pause = pace.batch_interval;
        self.options.work_between_pauses = pace.target_batch_duration;
        self
    }

    /// A pause of `pause` after every `work` of work. Default: none.
    pub fn pause(mut self, pause: Duration, work: Duration) -> Self {
        self.options.pause = pause;
        self.options.work_between_pauses = work;
        self
    }

    /// Stop after `n` batches. Default: no limit.
    pub fn max_batches(mut self, n: usize) -> Self {
        self.options.max_batches = Some(n);
        self
    }

    /// Requests in flight at once, at most. Default: 8 (the engine keeps
    /// fewer when the round trip is short).
    pub fn max_in_flight(mut self, n: NonZeroUsize) -> Self {
        self.options.max_in_flight = n;
        self
    }

    /// Count without writing. Default: off.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.options.dry_run = dry_run;
        self
    }

    /// Fetch covered units again. Default: off.
    pub fn force(mut self, force: bool) -> Self {
        self.options.force = force;
        self
    }

    /// Full or delta. Default: full.
    pub fn mode(mut self, mode: SyncMode) -> Self {
        self.options.mode = mode;
        self
    }

    /// How far back before the last completed run a delta looks. Default:
    /// 10 minutes.
    pub fn delta_overlap(mut self, overlap: Duration) -> Self {
        self.options.delta_overlap = overlap;
        self
    }

    /// Re-checks by age in delta mode. Default: [`Refresh::default`].
    pub fn refresh(mut self, refresh: Refresh) -> Self {
        self.options.refresh = refresh;
        self
    }

    /// The retry policy. Default: [`RetryPolicy::default`].
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.options.retry = retry;
        self
    }

    /// The cancellation token. Default: a fresh one.
    pub fn cancel(mut self, cancel: CancellationToken) -> Self {
        self.options.cancel = cancel;
        self
    }

    /// The progress callback. Default: none.
    pub fn progress(mut self, progress: ProgressFn) -> Self {
        self.options.progress = Some(progress);
        self
    }

    /// The options.
    pub fn build(self) -> SyncOptions {
        self.options
    }
}
