//! The batches of one run in flight: requests of batches under way first,
//! new batches when the pipeline has room, each batch committed when all
//! its pages are in. Batches come from the run's own plan, or, for a
//! worker, from a queue shared with other workers.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::coverage::checkpoint::Coverage;
use crate::domain::record::{Record, StreamId};
use crate::domain::run::{RecordCounts, RunId, RunReport};
use crate::engine::options::SyncOptions;
use crate::engine::progress::{eta, ProgressEvent};
use crate::error::{Result, SyncError};
use crate::limit::limits::RateLimits;
use crate::plan::job::{Expected, Work};
use crate::plan::target::{Batch, Target};
use crate::source::api::{Cursor, Page, Source};
use crate::source::context::{watched, FetchContext};
use crate::source::paced::Paced;
use crate::source::retry::Retrying;
use crate::source::session::Authenticated;
use crate::store::api::{BatchCommit, ClaimId, ExistingQuery, RunProgress, Store, WorkQueue};
use crate::store::commit;

/// The source as the engine calls it: paced by the budget, each request
/// retried, the session renewed.
pub(crate) type Stack = Authenticated<Retrying<Paced<Arc<dyn Source>>>>;

/// What every task of a run shares, read-only.
pub(crate) struct Env<'a> {
    pub(crate) stack: &'a Stack,
    pub(crate) store: &'a Arc<dyn Store>,
    pub(crate) ctx: &'a FetchContext,
    pub(crate) options: &'a SyncOptions,
    /// The limits of the budget, to size the pipeline.
    pub(crate) limits: RateLimits,
    pub(crate) run: RunId,
    pub(crate) stream: StreamId,
}

impl Env<'_> {
    /// Stores a batch (or counts it, in a dry run), retrying temporary store
    /// failures. Long waits are announced by the caller, which watches the
    /// whole commit, backoffs included.
    async fn commit(&self, batch: &Batch, records: &[Record], part: &Part) -> Result<RecordCounts> {
        let what = || format!("the store to commit {} of {}", batch.span, self.stream);
        let ctx = self.ctx.without_notice();
        if self.options.dry_run {
            return self
                .options
                .retry
                .retry(&ctx, what, || self.classify(records))
                .await;
        }
        let (covered, claim) = match part {
            Part::Earlier(_) => (Coverage::default(), None),
            Part::Last { claim, .. } => (batch.covered_units(), *claim),
        };
        let meter = self.ctx.meter();
        let commit = BatchCommit {
            run: &self.run,
            stream: &self.stream,
            records,
            covered: &covered,
            progress: RunProgress {
                requests: meter.requests(),
                rate_limited: meter.rate_limited(),
                retries: meter.retries(),
            },
            claim,
            finishes_batch: matches!(part, Part::Last { .. }),
        };
        self.options
            .retry
            .retry(&ctx, what, || self.store.commit(commit))
            .await
    }

    /// What committing `records` would do, decided as a commit decides it.
    async fn classify(&self, records: &[Record]) -> Result<RecordCounts> {
        const IDS_PER_QUERY: usize = 500;
        let unique = commit::dedupe(records);
        let mut by_entity: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for r in &unique {
            by_entity
                .entry(r.entity.as_str())
                .or_default()
                .push(r.external_id.clone());
        }
        let mut stored = HashMap::new();
        for (entity, ids) in by_entity {
            for chunk in ids.chunks(IDS_PER_QUERY) {
                let query = ExistingQuery::ByIds {
                    entity: entity.to_string(),
                    ids: chunk.to_vec(),
                };
                for s in self.store.existing(&self.stream, &query).await? {
                    stored.insert(
                        (s.entity.clone(), s.external_id.clone()),
                        commit::StoredVersion::from(&s),
                    );
                }
            }
        }
        Ok(commit::plan(&unique, &stored).counts)
    }
}

/// Where a worker's batches come from.
pub(crate) struct Queue<'a> {
    pub(crate) queue: &'a dyn WorkQueue,
    pub(crate) job: String,
    pub(crate) worker: String,
    pub(crate) lease: Duration,
}

/// Where the batches of a run come from.
enum Feed<'a> {
    /// The run's own plan.
    Local,
    /// A queue shared with other workers.
    Queue(Queue<'a>),
}

/// What the feed has next.
enum Next {
    Batch(Batch, Option<ClaimId>),
    /// Nothing now; other workers still hold batches that may come back.
    Later,
    Done,
}

/// How often a worker that finds nothing to claim looks again.
const LOOK_AGAIN: Duration = Duration::from_secs(2);

/// Records a batch holds before they are stored as a part of it: a batch
/// far larger than a window by density (a few pages; an explicit
/// `--batch-size` of a year) is stored as it comes in, so memory follows
/// the pages in flight, not the batch. Windows by density stay whole.
const PART_RECORDS: usize = 2_000;

/// Records the batches stored in parts may hold together (fetched, or in a
/// part being stored) before only the oldest batch fetches more and no new
/// one starts: a few batches of a year each must not hold a few parts
/// each. Batches of about a window are bounded by the depth alone.
const HELD_RECORDS: usize = 2 * PART_RECORDS;

/// A batch being fetched.
struct Slot {
    batch: Batch,
    claim: Option<ClaimId>,
    /// Requests still to send (`None`: the first).
    pending: VecDeque<Option<Cursor>>,
    in_flight: usize,
    /// Records fetched and not yet stored.
    records: Vec<Record>,
    /// Records of the earlier part being stored (one part at a time; 0:
    /// none).
    storing: usize,
    /// Records and their counts in the parts stored so far.
    stored_records: u64,
    stored_counts: RecordCounts,
    /// The density was learnt from its first page already.
    observed: bool,
    failed: bool,
    started: Instant,
}

impl Slot {
    /// A part of the batch is being stored and the next one is full: the
    /// batch waits for the store before it fetches more.
    fn waits_for_the_store(&self) -> bool {
        self.storing > 0 && self.records.len() >= PART_RECORDS
    }

    /// Records it holds in memory, if it is stored in parts.
    fn held_in_parts(&self) -> usize {
        if self.storing > 0 || self.stored_records > 0 {
            self.records.len() + self.storing
        } else {
            0
        }
    }
}

type PageDone = (u64, Option<Cursor>, Duration, Result<Page>);
type CommitDone = (Batch, Part, Result<RecordCounts>);

/// Which part of its batch a commit stores.
enum Part {
    /// Records of a batch still being fetched (its slot's number): nothing
    /// is covered yet.
    Earlier(u64),
    /// The batch's last (or only) records, with its coverage and claim.
    Last {
        claim: Option<ClaimId>,
        /// What the earlier parts stored.
        earlier: RecordCounts,
    },
}

/// Records to store, and which part of their batch they are.
struct ToStore(Batch, Vec<Record>, Part);

/// What to do about a page, once taken in.
enum AfterPage {
    Nothing,
    Store(ToStore),
    /// Give a worker's batch back to the queue (failed, or replaced).
    Release(ClaimId, Vec<Batch>),
}

/// The batches of one run in flight.
pub(crate) struct Pipeline<'a> {
    env: &'a Env<'a>,
    feed: Feed<'a>,
    pub(crate) work: Work,
    target: &'a Target,
    /// By local sequence number.
    slots: BTreeMap<u64, Slot>,
    next_slot: u64,
    /// Batches fetched whole and being stored: they hold their records too.
    committing: usize,
    /// Units covered so far (before the run, plus every stored batch).
    covered: Coverage,
    units_total: u64,
    batches_expected: u64,
    batches_done: u64,
    /// Round trip of a request (budget waits left out), smoothed.
    round_trip: Option<Duration>,
    started: Instant,
    /// When the current stretch of work began, and the pause after it.
    stretch_began: Instant,
    /// Batches started in the current stretch.
    stretch_batches: usize,
    paused_until: Option<Instant>,
    /// The feed had nothing; look again then.
    look_again: Option<Instant>,
    exhausted: bool,
    stop: CancellationToken,
    pub(crate) fatal: Option<SyncError>,
}

impl<'a> Pipeline<'a> {
    pub(crate) fn new(
        env: &'a Env<'a>,
        work: Work,
        target: &'a Target,
        covered: Coverage,
        expected: Expected,
        stop: CancellationToken,
    ) -> Self {
        let now = Instant::now();
        Self {
            env,
            feed: Feed::Local,
            work,
            target,
            slots: BTreeMap::new(),
            next_slot: 0,
            committing: 0,
            units_total: saturate(target.unit_count()),
            covered,
            batches_expected: expected.batches,
            batches_done: 0,
            round_trip: None,
            started: now,
            stretch_began: now,
            stretch_batches: 0,
            paused_until: None,
            look_again: None,
            exhausted: false,
            stop,
            fatal: None,
        }
    }

    /// Takes batches from `queue` instead of the run's own plan.
    pub(crate) fn with_queue(mut self, queue: Queue<'a>) -> Self {
        self.feed = Feed::Queue(queue);
        self
    }

    /// Requests in flight the round trip needs at the allowed rate.
    fn depth(&self) -> usize {
        let cap = self.env.options.max_in_flight.get();
        let limits = self.env.limits;
        let rate = limits
            .per_second
            .map(f64::from)
            .or_else(|| limits.sustained_rate());
        match (rate, self.round_trip) {
            (None, _) => cap,
            (Some(_), None) => cap.min(2),
            (Some(rate), Some(rtt)) => {
                let need = (rtt.as_secs_f64() * rate).ceil() as usize + 1;
                need.clamp(1, cap)
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.slots.values().map(|s| s.in_flight).sum()
    }

    fn held_in_parts(&self) -> usize {
        self.slots.values().map(Slot::held_in_parts).sum()
    }

    /// The next request to send: the oldest batch's first; only the oldest
    /// batch's when the batches stored in parts hold their most records.
    fn next_request(&mut self) -> Option<(u64, Batch, Option<Cursor>)> {
        let only_the_oldest = self.held_in_parts() >= HELD_RECORDS;
        for (&id, slot) in self.slots.iter_mut() {
            if slot.failed {
                continue;
            }
            if !slot.waits_for_the_store() {
                if let Some(cursor) = slot.pending.pop_front() {
                    slot.in_flight += 1;
                    return Some((id, slot.batch.clone(), cursor));
                }
            }
            if only_the_oldest {
                return None;
            }
        }
        None
    }

    /// Whether another batch may start: memory holds the batches being
    /// fetched and those being stored, so both count against the depth (a
    /// slow store must not let the fetched batches pile up), and none
    /// starts while the batches stored in parts hold their most records (as
    /// they do while one waits for the store).
    fn may_start_batch(&self, now: Instant) -> bool {
        !self.stop.is_cancelled()
            && self.held_in_parts() < HELD_RECORDS
            && !self.exhausted
            && self.paused_until.is_none_or(|p| now >= p)
            && self.look_again.is_none_or(|t| now >= t)
            && self.slots.len() + self.committing <= self.depth()
            && !self.stretch_is_over(now)
    }

    /// Whether the current stretch of work has had its time (and at least
    /// one batch): no batch starts until its pause is over.
    fn stretch_is_over(&self, now: Instant) -> bool {
        let options = self.env.options;
        !options.pause.is_zero()
            && self.stretch_batches > 0
            && now.duration_since(self.stretch_began) >= options.work_between_pauses
    }

    async fn next_batch(&mut self) -> Result<Next> {
        match &self.feed {
            Feed::Local => Ok(match self.work.next_batch() {
                Some(batch) => Next::Batch(batch, None),
                None => Next::Done,
            }),
            Feed::Queue(q) => {
                if let Some(claim) = q.queue.claim(&q.job, &q.worker, q.lease).await? {
                    return Ok(Next::Batch(claim.batch, Some(claim.id)));
                }
                let progress = q.queue.progress(&q.job).await?;
                Ok(if progress.is_finished() {
                    Next::Done
                } else {
                    Next::Later
                })
            }
        }
    }

    /// Starts the next batch; false when there is none now.
    async fn start_batch(&mut self) -> Result<bool> {
        let (batch, claim) = match self.next_batch().await? {
            Next::Batch(batch, claim) => (batch, claim),
            Next::Later => {
                self.look_again = Some(Instant::now() + LOOK_AGAIN);
                return Ok(false);
            }
            Next::Done => {
                self.exhausted = true;
                return Ok(false);
            }
        };
        self.look_again = None;
        self.stretch_batches += 1;
        let span = batch.span.to_string();
        tracing::info!(run_id = %self.env.run, stream = %self.env.stream, batch = batch.index, span = %span, recheck = batch.recheck, "batch started");
        emit(
            self.env.options,
            ProgressEvent::BatchStarted {
                index: batch.index,
                span,
            },
        );
        let id = self.next_slot;
        self.next_slot += 1;
        self.slots.insert(
            id,
            Slot {
                batch,
                claim,
                pending: VecDeque::from([None]),
                in_flight: 0,
                records: Vec::new(),
                storing: 0,
                stored_records: 0,
                stored_counts: RecordCounts::default(),
                observed: false,
                failed: false,
                started: Instant::now(),
            },
        );
        Ok(true)
    }

    /// The batches of a worker that stops: given back at once, so that
    /// other workers need not wait for the lease to expire.
    async fn release_all(&mut self) {
        if let Feed::Queue(q) = &self.feed {
            for slot in self.slots.values() {
                if let Some(claim) = slot.claim {
                    if let Err(e) = q.queue.release(claim, &q.worker, &[]).await {
                        tracing::warn!(error = %e, "could not give a batch back to the queue; its lease will expire");
                    }
                }
            }
        }
    }

    pub(crate) async fn run(&mut self, report: &mut RunReport) {
        let env = self.env;
        let mut pages: FuturesUnordered<BoxFuture<'a, PageDone>> = FuturesUnordered::new();
        let mut commits: FuturesUnordered<BoxFuture<'a, CommitDone>> = FuturesUnordered::new();
        let heartbeat_every = match &self.feed {
            Feed::Queue(q) => q.lease / 3,
            Feed::Local => Duration::from_secs(3600),
        };
        let mut heartbeat = tokio::time::interval(heartbeat_every.max(Duration::from_millis(100)));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut dropped = false;
        loop {
            self.maybe_pause(Instant::now());
            // Fill the pipeline: requests of batches under way first, then
            // new batches.
            while !self.stop.is_cancelled() && self.in_flight() < self.depth() {
                if let Some((id, batch, cursor)) = self.next_request() {
                    pages.push(Box::pin(fetch(env, id, batch, cursor)));
                    continue;
                }
                if !self.may_start_batch(Instant::now()) {
                    break;
                }
                match self.start_batch().await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        self.stop_with(e);
                        break;
                    }
                }
            }
            if self.stop.is_cancelled() && !dropped {
                // Requests in flight are dropped: nothing of their batches
                // was written. Commits under way finish.
                dropped = true;
                pages = FuturesUnordered::new();
                self.release_all().await;
                for slot in std::mem::take(&mut self.slots).into_values() {
                    tracing::info!(run_id = %env.run, stream = %env.stream, batch = slot.batch.index, span = %slot.batch.span, "batch dropped before it was stored");
                }
            }
            if pages.is_empty() && commits.is_empty() {
                let wake = [self.paused_until, self.look_again]
                    .into_iter()
                    .flatten()
                    .filter(|&t| t > Instant::now())
                    .min();
                match wake {
                    Some(until) if !self.stop.is_cancelled() && !self.exhausted => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(until) => {}
                            _ = heartbeat.tick() => self.heartbeat().await,
                            _ = self.stop.cancelled() => {}
                        }
                        continue;
                    }
                    _ if self.look_again.is_some()
                        && !self.stop.is_cancelled()
                        && !self.exhausted =>
                    {
                        continue
                    }
                    _ => break,
                }
            }
            let pause = self.paused_until.filter(|_| pages.is_empty());
            tokio::select! {
                Some(done) = pages.next(), if !pages.is_empty() => {
                    match self.on_page(done, report) {
                        AfterPage::Nothing => {}
                        AfterPage::Store(job) => {
                            self.committing += 1;
                            commits.push(Box::pin(store(env, job)));
                        }
                        AfterPage::Release(claim, replacement) => self.release(claim, &replacement).await,
                    }
                }
                Some(done) = commits.next(), if !commits.is_empty() => {
                    if let Some(job) = self.on_commit(done, report) {
                        self.committing += 1;
                        commits.push(Box::pin(store(env, job)));
                    }
                }
                _ = tokio::time::sleep_until(pause.unwrap_or_else(Instant::now)), if pause.is_some() => {}
                _ = heartbeat.tick(), if matches!(self.feed, Feed::Queue(_)) => self.heartbeat().await,
                _ = self.stop.cancelled(), if !dropped => {}
            }
        }
    }

    fn stop_with(&mut self, error: SyncError) {
        tracing::warn!(run_id = %self.env.run, stream = %self.env.stream, error_kind = error.kind(), error = %error, "run stops");
        self.stop.cancel();
        self.fatal.get_or_insert(error);
    }

    async fn heartbeat(&mut self) {
        if let Feed::Queue(q) = &self.feed {
            if let Err(e) = q.queue.heartbeat(&q.worker, q.lease).await {
                tracing::warn!(worker = %q.worker, error = %e, "could not renew the leases of this worker's batches");
            }
        }
    }

    async fn release(&mut self, claim: ClaimId, replacement: &[Batch]) {
        if let Feed::Queue(q) = &self.feed {
            if let Err(e) = q.queue.release(claim, &q.worker, replacement).await {
                self.stop_with(e);
            }
        }
    }

    /// Takes a page in; says what to do next.
    fn on_page(
        &mut self,
        (id, cursor, round_trip, result): PageDone,
        report: &mut RunReport,
    ) -> AfterPage {
        let env = self.env;
        self.round_trip = Some(match self.round_trip {
            None => round_trip,
            Some(old) => old.mul_f64(0.8) + round_trip.mul_f64(0.2),
        });
        let Some(slot) = self.slots.get_mut(&id) else {
            return AfterPage::Nothing;
        };
        slot.in_flight -= 1;
        if slot.failed {
            if slot.in_flight == 0 {
                self.slots.remove(&id);
            }
            return AfterPage::Nothing;
        }
        let page = match result {
            Ok(page) => page,
            Err(SyncError::Cancelled) => return AfterPage::Nothing,
            Err(error) if stops_the_run(&error) => {
                self.stop_with(error);
                return AfterPage::Nothing;
            }
            Err(error) => {
                slot.failed = true;
                slot.records = Vec::new();
                report.batches_failed += 1;
                let message = batch_error(&slot.batch, &error);
                tracing::warn!(run_id = %env.run, stream = %env.stream, batch = slot.batch.index, span = %slot.batch.span, error_kind = error.kind(), error = %error, "batch failed; its units stay uncovered");
                report.errors.push(message.clone());
                emit(
                    env.options,
                    ProgressEvent::BatchFailed {
                        index: slot.batch.index,
                        span: slot.batch.span.to_string(),
                        error: message,
                    },
                );
                let claim = slot.claim;
                if slot.in_flight == 0 {
                    self.slots.remove(&id);
                }
                return match claim {
                    Some(claim) => AfterPage::Release(claim, Vec::new()),
                    None => AfterPage::Nothing,
                };
            }
        };
        if cursor.is_none() {
            if let Some(total) = page.total {
                if self.work.is_oversized(&slot.batch, total) {
                    let Some(slot) = self.slots.remove(&id) else {
                        return AfterPage::Nothing;
                    };
                    tracing::info!(run_id = %env.run, stream = %env.stream, batch = slot.batch.index, span = %slot.batch.span, records = total, "window far larger than planned; cutting it again");
                    self.work.observe(&slot.batch, total);
                    self.batches_expected += 1;
                    return match slot.claim {
                        Some(claim) => AfterPage::Release(claim, self.work.cut(&slot.batch)),
                        None => {
                            self.work.give_back(slot.batch);
                            self.exhausted = false;
                            AfterPage::Nothing
                        }
                    };
                }
                self.work.observe(&slot.batch, total);
                slot.observed = true;
            }
        }
        slot.records.extend(page.records);
        slot.pending.extend(page.more.into_iter().map(Some));
        match self.next_part(id) {
            Some(job) => AfterPage::Store(job),
            None => AfterPage::Nothing,
        }
    }

    /// What of slot `id` to store now: the rest of it when all its pages
    /// are in and no earlier part is being stored, a part when it holds
    /// enough records, otherwise nothing.
    fn next_part(&mut self, id: u64) -> Option<ToStore> {
        let slot = self.slots.get_mut(&id)?;
        if slot.failed || slot.storing > 0 {
            return None;
        }
        if !slot.pending.is_empty() || slot.in_flight > 0 {
            if slot.records.len() < PART_RECORDS {
                return None;
            }
            let records = std::mem::take(&mut slot.records);
            slot.storing = records.len();
            slot.stored_records += records.len() as u64;
            tracing::debug!(run_id = %self.env.run, batch = slot.batch.index, records = records.len(), "storing a part of a large batch");
            return Some(ToStore(slot.batch.clone(), records, Part::Earlier(id)));
        }
        let slot = self.slots.remove(&id)?;
        let fetched = slot.stored_records + slot.records.len() as u64;
        if !slot.observed {
            self.work.observe(&slot.batch, fetched);
        }
        tracing::debug!(run_id = %self.env.run, batch = slot.batch.index, records = fetched, fetch_ms = slot.started.elapsed().as_millis() as u64, "batch fetched");
        let last = Part::Last {
            claim: slot.claim,
            earlier: slot.stored_counts,
        };
        Some(ToStore(slot.batch, slot.records, last))
    }

    /// Takes a finished commit in; says what to store next (the rest of a
    /// batch whose earlier part was just stored).
    fn on_commit(
        &mut self,
        (batch, part, result): CommitDone,
        report: &mut RunReport,
    ) -> Option<ToStore> {
        self.committing -= 1;
        let env = self.env;
        let index = batch.index;
        match (result, part) {
            (Ok(counts), Part::Earlier(id)) => {
                report.counts += counts;
                let slot = self.slots.get_mut(&id)?;
                slot.storing = 0;
                slot.stored_counts += counts;
                if slot.failed {
                    return None;
                }
                self.next_part(id)
            }
            (Ok(last), Part::Last { earlier, .. }) => {
                report.counts += last;
                let mut counts = earlier;
                counts += last;
                report.batches_done += 1;
                self.batches_done += 1;
                self.covered.extend(&batch.covered_units());
                let span = batch.span.to_string();
                tracing::info!(run_id = %env.run, stream = %env.stream, batch = index, span = %span, created = counts.created, updated = counts.updated, unchanged = counts.unchanged, deleted = counts.deleted, "batch stored");
                let requests = env.ctx.meter().requests();
                let elapsed = self.started.elapsed();
                let left = self.work.expected().requests;
                emit(
                    env.options,
                    ProgressEvent::BatchFinished {
                        index,
                        span,
                        counts,
                        units_covered: saturate(self.target.coverage(&self.covered).covered()),
                        units_total: self.units_total,
                        batches_done: self.batches_done,
                        batches_expected: self.batches_expected.max(self.batches_done),
                        requests,
                        request_rate: requests as f64 / elapsed.as_secs_f64().max(1e-3),
                        eta: eta(requests, left, elapsed),
                    },
                );
                None
            }
            (Err(SyncError::Cancelled), _) => None,
            (Err(error), _) => {
                tracing::warn!(run_id = %env.run, stream = %env.stream, batch = index, span = %batch.span, error_kind = error.kind(), error = %error, "commit failed; run stops");
                self.stop.cancel();
                self.fatal.get_or_insert(error);
                None
            }
        }
    }

    /// After each stretch of work, the preset's pause: it begins when the
    /// last batch of the stretch has ended (stored or failed), so that no
    /// request goes out during it; none follows the last batch of the run.
    fn maybe_pause(&mut self, now: Instant) {
        if self.stop.is_cancelled()
            || !self.stretch_is_over(now)
            || !self.slots.is_empty()
            || self.committing > 0
            || self.exhausted
            || self.work.expected().batches == 0
        {
            return;
        }
        let options = self.env.options;
        tracing::info!(stream = %self.env.stream, pause_ms = options.pause.as_millis() as u64, "pausing between stretches of work");
        self.paused_until = Some(now + options.pause);
        self.stretch_began = now + options.pause;
        self.stretch_batches = 0;
    }
}

/// Sends `event` to the run's progress callback, if any.
pub(crate) fn emit(options: &SyncOptions, event: ProgressEvent) {
    if let Some(progress) = &options.progress {
        progress(&event);
    }
}

/// Sends one request of a batch.
async fn fetch(env: &Env<'_>, id: u64, batch: Batch, cursor: Option<Cursor>) -> PageDone {
    let ctx = env.ctx.for_operation();
    let started = Instant::now();
    let result = env.stack.fetch_page(&batch, cursor.as_ref(), &ctx).await;
    // The round trip, without the time spent waiting for the budget.
    let round_trip = started.elapsed().saturating_sub(ctx.waited());
    (id, cursor, round_trip, result)
}

/// Stores a batch, or a part of it. Not cancellable: a commit under way
/// finishes (or its transaction rolls back), so the checkpoint is never
/// ahead of the data.
async fn store(env: &Env<'_>, ToStore(batch, records, part): ToStore) -> CommitDone {
    let what = || format!("the store to commit {} of {}", batch.span, env.stream);
    let result = watched(env.commit(&batch, &records, &part), what, env.ctx.notice()).await;
    (batch, part, result)
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

pub(crate) fn saturate(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
