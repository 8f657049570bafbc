//! The engine: drives the batches of one run from a source into a store.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::batch::{split_uncovered, Batch, BatchSpan, Order, Target};
use crate::coverage::Coverage;
use crate::error::{Result, SyncError};
use crate::limiter::RateLimiter;
use crate::record::{Record, StreamId};
use crate::retry::RetryPolicy;
use crate::run::{RecordCounts, RunId, RunReport, RunStatus, SyncMode};
use crate::source::{FetchContext, RunMeter, Source};
use crate::store::{BatchCommit, CheckpointStore, RunProgress, Store};

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
    /// Least time between the starts of two batches (the wait ends early
    /// when the run is cancelled).
    pub interval: Duration,
    /// Stop after this many batches (the rest waits for the next run).
    pub max_batches: Option<usize>,
    /// Batches in flight at once.
    pub concurrency: NonZeroUsize,
    /// Fetch and count, write nothing (no records, no checkpoint, no run).
    /// Every fetched record is counted as created.
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
    ///
    /// A cancelled run ends with `Ok` and status [`RunStatus::Cancelled`]:
    /// batches already stored stay, the batch being fetched is dropped, a
    /// batch being committed finishes. In a dry run every fetched record is
    /// counted as created (what a first import would store) and nothing at
    /// all is written, not even the run history.
    pub async fn run(&self, target: &Target, options: &SyncOptions) -> Result<RunReport> {
        let info = self.source.info();
        if options.mode == SyncMode::Delta && !info.supports_delta {
            return Err(SyncError::invalid_input(format!(
                "delta sync is not supported by the source of stream {}",
                info.stream
            )));
        }
        let started_at = Utc::now();
        let mut report = RunReport::start(
            RunId::generate(started_at),
            info.stream.clone(),
            options.mode,
            describe_target(target),
            started_at,
        );
        report.dry_run = options.dry_run;
        if !options.dry_run {
            if let Err(e) = self.checkpoints.begin_run(&report).await {
                tracing::warn!(
                    run_id = %report.id,
                    stream = %report.stream,
                    error_kind = e.kind(),
                    error = %e,
                    "run not started"
                );
                return Err(e);
            }
        }
        let meter = Arc::new(RunMeter::default());
        let outcome = self.drive(target, options, &mut report, &meter).await;
        self.finish(report, &meter, options, outcome).await
    }

    /// Plans the batches and runs them. `Err` is an error that stopped the
    /// run; batch failures and cancellation are in `report`.
    async fn drive(
        &self,
        target: &Target,
        options: &SyncOptions,
        report: &mut RunReport,
        meter: &Arc<RunMeter>,
    ) -> Result<()> {
        let stream = report.stream.clone();
        // Stops the run: cancelled by the caller or by an error that stops it.
        let stop = options.cancel.child_token();
        let ctx = FetchContext::new(stream.clone(), self.limiter.clone())
            .with_meter(meter.clone())
            .with_store(self.store.clone())
            .with_cancel(stop.clone());

        let covered = self.checkpoints.coverage(&stream).await?;
        let batches = self.plan(target, options, report, &covered).await?;
        let units_total = target.unit_count();
        let units_covered = covered.of_target(target).covered();
        tracing::info!(
            run_id = %report.id,
            stream = %stream,
            mode = ?report.mode,
            target = %report.target,
            batches = batches.len(),
            units_total,
            units_covered,
            dry_run = options.dry_run,
            "run started"
        );
        emit(
            options,
            ProgressEvent::RunStarted {
                run: report.id.clone(),
                stream: stream.clone(),
                batches: batches.len(),
                units_total,
                units_covered,
            },
        );
        if batches.is_empty() {
            return Ok(());
        }

        let session = Session::new(self.source.as_ref(), &options.retry);
        match session.login(&ctx).await {
            Ok(()) => {}
            Err(SyncError::Cancelled) => return Ok(()),
            Err(e) => return Err(e),
        }

        let scope = RunScope {
            run: report.id.clone(),
            stream,
            ctx,
            options,
            session,
            stop: stop.clone(),
        };
        let mut tally = Tally {
            report,
            options,
            target,
            covered,
            units_total,
            progress: Progress {
                total: batches.len(),
                ended: 0,
                busy: Duration::ZERO,
                concurrency: options.concurrency.get(),
            },
            stop: stop.clone(),
            fatal: None,
        };
        let mut pending = batches.into_iter();
        let mut next = pending.next();
        let mut in_flight = FuturesUnordered::new();
        let mut next_start = Instant::now();
        loop {
            let may_start = next.is_some()
                && !stop.is_cancelled()
                && in_flight.len() < options.concurrency.get();
            if !may_start && in_flight.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                Some(outcome) = in_flight.next(), if !in_flight.is_empty() => {
                    tally.record(outcome);
                    // The pause is between batches: after one ends, too.
                    next_start = Instant::now() + options.interval;
                }
                _ = tokio::time::sleep_until(next_start), if may_start => {
                    if let Some(batch) = next.take() {
                        tally.started(&batch);
                        in_flight.push(self.run_batch(&scope, batch));
                        next = pending.next();
                        next_start = Instant::now() + options.interval;
                    }
                }
                _ = stop.cancelled(), if may_start => {}
            }
        }
        match tally.fatal {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The batches of the run: the uncovered parts of the target, or one
    /// change window in delta mode.
    async fn plan(
        &self,
        target: &Target,
        options: &SyncOptions,
        report: &mut RunReport,
        covered: &Coverage,
    ) -> Result<Vec<Batch>> {
        if options.mode == SyncMode::Delta {
            match self.last_completed_run(&report.stream).await? {
                Some(last) => {
                    let overlap = chrono::Duration::from_std(options.delta_overlap)
                        .unwrap_or(chrono::Duration::MAX);
                    let since = last
                        .started_at
                        .checked_sub_signed(overlap)
                        .unwrap_or(DateTime::<Utc>::MIN_UTC);
                    tracing::info!(
                        run_id = %report.id,
                        stream = %report.stream,
                        last_completed_run = %last.id,
                        since = %since.to_rfc3339(),
                        "delta sync of the changes since the last completed run"
                    );
                    let span = BatchSpan::Changes {
                        since,
                        until: Utc::now(),
                    };
                    return Ok(vec![Batch { index: 0, span }]);
                }
                None => {
                    tracing::info!(
                        run_id = %report.id,
                        stream = %report.stream,
                        "no completed run to take changes from: running a full sync instead of a delta"
                    );
                    report.mode = SyncMode::Full;
                }
            }
        }
        let skip = if options.force {
            Coverage::default()
        } else {
            covered.clone()
        };
        let mut batches = split_uncovered(target, &skip, options.batch_size, options.order);
        if let Some(max) = options.max_batches {
            batches.truncate(max);
        }
        Ok(batches)
    }

    async fn last_completed_run(&self, stream: &StreamId) -> Result<Option<RunReport>> {
        // Runs after the last completed one are usually few; look far back.
        const LOOK_BACK: usize = 1000;
        let runs = self.checkpoints.runs(Some(stream), LOOK_BACK).await?;
        Ok(runs.into_iter().find(|r| r.status == RunStatus::Completed))
    }

    /// Fetches and stores one batch. Never panics, never returns early
    /// without saying why.
    async fn run_batch(&self, scope: &RunScope<'_>, batch: Batch) -> BatchOutcome {
        let started = Instant::now();
        // A batch being fetched is dropped when the run stops: nothing of it
        // was written, so it is as if it never started.
        let fetched = tokio::select! {
            biased;
            _ = scope.stop.cancelled() => return BatchOutcome::Dropped { batch },
            fetched = self.fetch_batch(scope, &batch) => fetched,
        };
        let records = match fetched {
            Ok(records) => records,
            Err(
                FetchError::Source(SyncError::Cancelled)
                | FetchError::Session(SyncError::Cancelled),
            ) => return BatchOutcome::Dropped { batch },
            Err(FetchError::Session(error)) => return BatchOutcome::Stopped { batch, error },
            Err(FetchError::Source(error)) if stops_the_run(&error) => {
                return BatchOutcome::Stopped { batch, error }
            }
            Err(FetchError::Source(error)) => {
                return BatchOutcome::Failed {
                    batch,
                    error,
                    elapsed: started.elapsed(),
                }
            }
        };
        if scope.options.dry_run {
            let counts = RecordCounts {
                created: records.len() as u64,
                ..RecordCounts::default()
            };
            return BatchOutcome::Stored {
                batch,
                counts,
                elapsed: started.elapsed(),
            };
        }
        // Not cancellable: a commit under way finishes (or its transaction
        // rolls back), so the checkpoint is never ahead of the data.
        match self.commit(scope, &batch, &records).await {
            Ok(counts) => BatchOutcome::Stored {
                batch,
                counts,
                elapsed: started.elapsed(),
            },
            Err(SyncError::Cancelled) => BatchOutcome::Dropped { batch },
            Err(error) => BatchOutcome::Stopped { batch, error },
        }
    }

    /// The batch's records, renewing the session when it is stale or has
    /// expired.
    async fn fetch_batch(
        &self,
        scope: &RunScope<'_>,
        batch: &Batch,
    ) -> std::result::Result<Vec<Record>, FetchError> {
        let ctx = &scope.ctx;
        scope
            .session
            .refresh_if_stale(ctx)
            .await
            .map_err(FetchError::Session)?;
        let mut renewed = false;
        loop {
            let generation = scope.session.generation();
            let fetched = scope
                .options
                .retry
                .retry(ctx, || self.source.fetch(batch, ctx))
                .await;
            match fetched {
                Err(SyncError::AuthExpired { message }) if renewed => {
                    return Err(FetchError::Session(SyncError::Unauthenticated {
                        message: format!(
                            "the session expired again right after it was renewed: {message}"
                        ),
                    }))
                }
                Err(SyncError::AuthExpired { message }) => {
                    tracing::info!(
                        run_id = %scope.run,
                        stream = %scope.stream,
                        batch = batch.index,
                        reason = %message,
                        "session expired; renewing it"
                    );
                    scope
                        .session
                        .renew_expired(generation, ctx)
                        .await
                        .map_err(FetchError::Session)?;
                    renewed = true;
                }
                other => return other.map_err(FetchError::Source),
            }
        }
    }

    async fn commit(
        &self,
        scope: &RunScope<'_>,
        batch: &Batch,
        records: &[Record],
    ) -> Result<RecordCounts> {
        let covered = batch.covered_units();
        let meter = scope.ctx.meter();
        let commit = BatchCommit {
            run: &scope.run,
            stream: &scope.stream,
            records,
            covered: &covered,
            progress: RunProgress {
                requests: meter.requests(),
                rate_limited: meter.rate_limited(),
                retries: meter.retries(),
            },
        };
        scope
            .options
            .retry
            .retry(&scope.ctx, || self.store.commit(commit))
            .await
    }

    /// Ends the run: final status, counters, run history, last event.
    async fn finish(
        &self,
        mut report: RunReport,
        meter: &RunMeter,
        options: &SyncOptions,
        outcome: Result<()>,
    ) -> Result<RunReport> {
        report.finished_at = Some(Utc::now());
        report.requests = meter.requests();
        report.rate_limited = meter.rate_limited();
        report.retries = meter.retries();
        report.status = match &outcome {
            Err(_) => RunStatus::Failed,
            Ok(()) if options.cancel.is_cancelled() => RunStatus::Cancelled,
            Ok(()) if report.batches_failed > 0 => RunStatus::Partial,
            Ok(()) => RunStatus::Completed,
        };
        if let Err(e) = &outcome {
            report
                .errors
                .push(format!("run stopped [{}]: {e}", e.kind()));
        }
        let mut result = outcome;
        if !options.dry_run {
            if let Err(e) = self.checkpoints.finish_run(&report).await {
                tracing::warn!(
                    run_id = %report.id,
                    stream = %report.stream,
                    error_kind = e.kind(),
                    error = %e,
                    "could not record the end of the run"
                );
                // The first error is the one that explains the run.
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        let duration_ms = report.duration().num_milliseconds();
        if report.status == RunStatus::Completed {
            tracing::info!(
                run_id = %report.id,
                stream = %report.stream,
                status = %report.status,
                created = report.counts.created,
                updated = report.counts.updated,
                unchanged = report.counts.unchanged,
                deleted = report.counts.deleted,
                batches_done = report.batches_done,
                batches_failed = report.batches_failed,
                requests = report.requests,
                rate_limited = report.rate_limited,
                retries = report.retries,
                duration_ms,
                "run finished"
            );
        } else {
            tracing::warn!(
                run_id = %report.id,
                stream = %report.stream,
                status = %report.status,
                created = report.counts.created,
                updated = report.counts.updated,
                unchanged = report.counts.unchanged,
                deleted = report.counts.deleted,
                batches_done = report.batches_done,
                batches_failed = report.batches_failed,
                requests = report.requests,
                rate_limited = report.rate_limited,
                retries = report.retries,
                duration_ms,
                "run finished"
            );
        }
        emit(
            options,
            ProgressEvent::RunFinished {
                report: report.clone(),
            },
        );
        result.map(|()| report)
    }
}

/// What the batches of one run share.
struct RunScope<'a> {
    run: RunId,
    stream: StreamId,
    ctx: FetchContext,
    options: &'a SyncOptions,
    session: Session<'a>,
    stop: CancellationToken,
}

/// The running totals of a run, updated as batches end.
struct Tally<'a> {
    report: &'a mut RunReport,
    options: &'a SyncOptions,
    target: &'a Target,
    /// Units covered so far (before the run, plus every stored batch).
    covered: Coverage,
    units_total: u64,
    progress: Progress,
    /// Cancelled when an error stops the run.
    stop: CancellationToken,
    /// The first error that stopped the run.
    fatal: Option<SyncError>,
}

impl Tally<'_> {
    fn started(&self, batch: &Batch) {
        let span = batch.span.to_string();
        tracing::info!(
            run_id = %self.report.id,
            stream = %self.report.stream,
            batch = batch.index,
            span = %span,
            "batch started"
        );
        emit(
            self.options,
            ProgressEvent::BatchStarted {
                index: batch.index,
                span,
            },
        );
    }

    fn record(&mut self, outcome: BatchOutcome) {
        let report = &mut *self.report;
        match outcome {
            BatchOutcome::Stored {
                batch,
                counts,
                elapsed,
            } => {
                self.progress.record(elapsed);
                report.counts += counts;
                report.batches_done += 1;
                self.covered.extend(&batch.covered_units());
                let span = batch.span.to_string();
                tracing::info!(
                    run_id = %report.id,
                    stream = %report.stream,
                    batch = batch.index,
                    span = %span,
                    created = counts.created,
                    updated = counts.updated,
                    unchanged = counts.unchanged,
                    deleted = counts.deleted,
                    duration_ms = elapsed.as_millis() as u64,
                    "batch stored"
                );
                emit(
                    self.options,
                    ProgressEvent::BatchFinished {
                        index: batch.index,
                        span,
                        counts,
                        units_covered: self.covered.of_target(self.target).covered(),
                        units_total: self.units_total,
                        eta: self.progress.eta(),
                    },
                );
            }
            BatchOutcome::Failed {
                batch,
                error,
                elapsed,
            } => {
                self.progress.record(elapsed);
                report.batches_failed += 1;
                let message = batch_error(&batch, &error);
                tracing::warn!(
                    run_id = %report.id,
                    stream = %report.stream,
                    batch = batch.index,
                    span = %batch.span,
                    error_kind = error.kind(),
                    error = %error,
                    duration_ms = elapsed.as_millis() as u64,
                    "batch failed; its units stay uncovered"
                );
                report.errors.push(message.clone());
                emit(
                    self.options,
                    ProgressEvent::BatchFailed {
                        index: batch.index,
                        span: batch.span.to_string(),
                        error: message,
                    },
                );
            }
            BatchOutcome::Stopped { batch, error } => {
                tracing::warn!(
                    run_id = %report.id,
                    stream = %report.stream,
                    batch = batch.index,
                    span = %batch.span,
                    error_kind = error.kind(),
                    error = %error,
                    "run stops"
                );
                self.stop.cancel();
                if self.fatal.is_none() {
                    self.fatal = Some(error);
                }
            }
            BatchOutcome::Dropped { batch } => {
                tracing::info!(
                    run_id = %report.id,
                    stream = %report.stream,
                    batch = batch.index,
                    span = %batch.span,
                    "batch dropped before it was stored"
                );
            }
        }
    }
}

/// How one batch ended.
enum BatchOutcome {
    /// Fetched and committed (or counted, in a dry run).
    Stored {
        batch: Batch,
        counts: RecordCounts,
        elapsed: Duration,
    },
    /// Failed on its own; the run goes on.
    Failed {
        batch: Batch,
        error: SyncError,
        elapsed: Duration,
    },
    /// Failed in a way that stops the run.
    Stopped { batch: Batch, error: SyncError },
    /// Dropped because the run stopped; nothing was written.
    Dropped { batch: Batch },
}

/// Why a batch could not be fetched: the source's answer, or the session
/// could not be (re)established, which stops the run.
enum FetchError {
    Source(SyncError),
    Session(SyncError),
}

/// Errors of the source that no other batch could get past.
fn stops_the_run(error: &SyncError) -> bool {
    match error {
        SyncError::Retryable { .. } | SyncError::RateLimited { .. } | SyncError::BadData { .. } => {
            false
        }
        SyncError::AuthExpired { .. }
        | SyncError::Unauthenticated { .. }
        | SyncError::InvalidInput { .. }
        | SyncError::Busy { .. }
        | SyncError::Cancelled
        | SyncError::Fatal { .. } => true,
    }
}

/// The session of one run, renewed by one batch at a time (the model is
/// object_store's `TokenCache`: whoever gets the lock first renews, the
/// others find it fresh when they get the lock).
struct Session<'a> {
    source: &'a dyn Source,
    retry: &'a RetryPolicy,
    lock: tokio::sync::Mutex<()>,
    // Successful logins so far; tells a batch whether someone renewed the
    // session after its request failed.
    generation: AtomicU64,
}

impl<'a> Session<'a> {
    fn new(source: &'a dyn Source, retry: &'a RetryPolicy) -> Self {
        Self {
            source,
            retry,
            lock: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Logs in before the first batch.
    async fn login(&self, ctx: &FetchContext) -> Result<()> {
        let _guard = self.lock.lock().await;
        self.authenticate(ctx).await
    }

    /// Renews the session before a batch if the source says it is stale.
    async fn refresh_if_stale(&self, ctx: &FetchContext) -> Result<()> {
        if !self.source.session_is_stale() {
            return Ok(());
        }
        let _guard = self.lock.lock().await;
        if self.source.session_is_stale() {
            tracing::info!(stream = %ctx.stream(), "session is stale; renewing it");
            self.authenticate(ctx).await?;
        }
        Ok(())
    }

    /// Renews the session after a request found it expired, unless another
    /// batch renewed it since that request was sent (`seen` generation).
    async fn renew_expired(&self, seen: u64, ctx: &FetchContext) -> Result<()> {
        let _guard = self.lock.lock().await;
        if self.generation() == seen {
            self.authenticate(ctx).await?;
        }
        Ok(())
    }

    // Call with the lock held.
    async fn authenticate(&self, ctx: &FetchContext) -> Result<()> {
        let result = self
            .retry
            .retry(ctx, || self.source.authenticate(ctx))
            .await;
        match result {
            Ok(()) => {
                self.generation.fetch_add(1, Ordering::AcqRel);
                Ok(())
            }
            // Expired while logging in: the credentials do not work.
            Err(SyncError::AuthExpired { message }) => Err(SyncError::Unauthenticated { message }),
            Err(e) => Err(e),
        }
    }
}

/// Batch durations so far, for the ETA.
struct Progress {
    total: usize,
    ended: usize,
    busy: Duration,
    concurrency: usize,
}

impl Progress {
    fn record(&mut self, elapsed: Duration) {
        self.ended += 1;
        self.busy = self.busy.saturating_add(elapsed);
    }

    /// Average batch duration × batches left ÷ batches at once.
    fn eta(&self) -> Option<Duration> {
        if self.ended == 0 {
            return None;
        }
        let left = self.total.saturating_sub(self.ended) as f64;
        let average = self.busy.as_secs_f64() / self.ended as f64;
        Duration::try_from_secs_f64(average * left / self.concurrency.max(1) as f64).ok()
    }
}

fn emit(options: &SyncOptions, event: ProgressEvent) {
    if let Some(progress) = &options.progress {
        progress(&event);
    }
}

/// A failed batch, for the run report: which batch, the error kind, the
/// message.
fn batch_error(batch: &Batch, error: &SyncError) -> String {
    format!(
        "batch {} ({}) failed [{}]: {error}",
        batch.index,
        batch.span,
        error.kind()
    )
}

/// The target, for people: `days 2024-09-01..=2024-12-31 (Europe/Moscow)`.
fn describe_target(target: &Target) -> String {
    match target {
        Target::Days { range, tz } => format!("days {range} ({tz})"),
        Target::Keys(range) => format!("keys {range}"),
        Target::KeyList(_) => format!("{} ids", target.unit_count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_is_average_times_left_over_concurrency() {
        let mut p = Progress {
            total: 10,
            ended: 0,
            busy: Duration::ZERO,
            concurrency: 2,
        };
        assert_eq!(p.eta(), None);
        p.record(Duration::from_secs(3));
        p.record(Duration::from_secs(5));
        // average 4 s, 8 left, 2 at once.
        assert_eq!(p.eta(), Some(Duration::from_secs(16)));
    }

    #[test]
    fn run_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let store = Arc::new(crate::MemoryStore::new());
        #[derive(Debug)]
        struct Nothing;
        #[async_trait::async_trait]
        impl Source for Nothing {
            fn info(&self) -> crate::SourceInfo {
                crate::SourceInfo {
                    stream: StreamId::new("x", "y"),
                    limits: crate::RateLimits::UNLIMITED,
                    supports_delta: false,
                    supports_day_counts: false,
                    requests_per_unit: 1.0,
                }
            }
            async fn fetch(&self, _: &Batch, _: &FetchContext) -> Result<Vec<Record>> {
                Ok(Vec::new())
            }
        }
        let engine = Engine::new(
            Arc::new(Nothing),
            store.clone(),
            store,
            Arc::new(RateLimiter::unlimited()),
        );
        let target = Target::Keys(crate::KeyRange { first: 1, last: 2 });
        let options = SyncOptions::default();
        let fut = engine.run(&target, &options);
        assert_send(&fut);
    }
}
