//! The engine: drives the batches of one run from a source into a store,
//! several requests in flight, each batch committed with its checkpoint.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::coverage::checkpoint::Coverage;
use crate::coverage::interval::DayRange;
use crate::domain::record::{Record, StreamId};
use crate::domain::run::{RecordCounts, RunId, RunReport, RunStatus, SyncMode};
use crate::engine::options::SyncOptions;
use crate::engine::progress::{eta, ProgressEvent};
use crate::error::{Result, SyncError};
use crate::limit::budget::Budget;
use crate::plan::job::{Expected, JobPlan, Known, Scope, Work};
use crate::plan::pricing::{plan as price, Preset, Workload};
use crate::plan::target::{Batch, Target};
use crate::source::api::{Cursor, Page, Probe, Source, SourceExt, SourceInfo, Units, Windows};
use crate::source::context::{watched, FetchContext, RunMeter, WaitNotice, Waiting};
use crate::source::paced::Paced;
use crate::source::retry::{RetryPolicy, Retrying};
use crate::source::session::{Authenticated, SessionCache};
use crate::store::api::{BatchCommit, CheckpointStore, ExistingQuery, RunProgress, Store};
use crate::store::commit;

/// Whole batches that may wait for (or be in) their commit before a new
/// batch is started: the commit under way and the next one. Fetching goes on
/// for the batches already started, so a store slower than the source holds
/// back the fetching instead of letting fetched batches pile up in memory.
const COMMITS_AHEAD: usize = 2;

/// The source as the engine calls it: paced by the budget, each request
/// retried, the session renewed.
type Stack = Authenticated<Retrying<Paced<Arc<dyn Source>>>>;

/// Runs a source into a store, batch by batch, with checkpoints.
///
/// The engine wraps the source itself (pacing, retries, sessions): give it
/// the bare source. Several requests are in flight at once, as many as the
/// round trip times the allowed rate needs (up to
/// [`SyncOptions::max_in_flight`]); the budget holds every limit whatever
/// the number.
#[derive(Clone, Debug)]
pub struct Engine {
    source: Arc<dyn Source>,
    store: Arc<dyn Store>,
    checkpoints: Arc<dyn CheckpointStore>,
    budget: Arc<dyn Budget>,
    session: Arc<SessionCache>,
}

/// What [`Engine::day_counts`] found at the source.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SourceDayCounts {
    /// Records per local day; `None` when the source cannot tell.
    pub counts: Option<BTreeMap<NaiveDate, u64>>,
    /// Requests it took (logins included).
    pub requests: u64,
}

impl Engine {
    /// An engine for one source and one store. `budget` is shared with every
    /// other engine that talks to the same server.
    pub fn new(
        source: Arc<dyn Source>,
        store: Arc<dyn Store>,
        checkpoints: Arc<dyn CheckpointStore>,
        budget: Arc<dyn Budget>,
    ) -> Self {
        Self {
            source,
            store,
            checkpoints,
            budget,
            session: Arc::new(SessionCache::new()),
        }
    }

    /// Shares `session` with other engines whose sources log in with the
    /// same credentials (one login between them).
    pub fn with_session(mut self, session: Arc<SessionCache>) -> Self {
        self.session = session;
        self
    }

    /// The source, as given.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    fn stack(&self, retry: &RetryPolicy) -> Stack {
        let paced = Paced::new(self.source.clone(), self.budget.clone());
        Authenticated::with_cache(Retrying::new(paced, retry.clone()), self.session.clone())
    }

    /// Prices a run of `target` with `options` without running it: the
    /// units, batches and requests the run would make (cut by the same
    /// planner, from the same probe) and its ETA at every preset.
    ///
    /// Talks to the source as the run would before its first batch (a
    /// login, a count probe, a key listing): those requests are in
    /// [`JobPlan::requests_to_plan`].
    pub async fn plan(&self, target: &Target, options: &SyncOptions) -> Result<JobPlan> {
        self.plan_with(target, options, None).await
    }

    /// Like [`Engine::plan`], with `count` (items over some days, e.g.
    /// records a person knows of) in place of asking the source for one.
    pub async fn plan_with(
        &self,
        target: &Target,
        options: &SyncOptions,
        count: Option<Probe>,
    ) -> Result<JobPlan> {
        let info = self.source.info();
        check_target(&info, target, options.mode)?;
        let ctx = self.context(
            &info.stream,
            options,
            options.cancel.child_token(),
            Arc::default(),
        );
        let stack = self.stack(&options.retry);
        let mut mode = options.mode;
        let prepared = self
            .prepare(&stack, &info, target, options, &ctx, &mut mode, Some(count))
            .await?;
        let expected = prepared.work.expected();
        let made = ctx.meter().requests();
        // The run repeats what the plan did first (login, listing, a probe
        // when it sizes windows with it), unless there is nothing to do.
        let overhead = if expected.batches == 0 {
            0
        } else if made == 0 {
            u64::from(info.cost.login)
        } else {
            made - prepared.probe_for_plan_only
        };
        let requests = (expected.requests.ceil() as u64).saturating_add(overhead);
        let batches = expected.batches.max(1);
        let workload = Workload::PerItem {
            items: batches,
            requests_per_item: (requests.max(1) as f64 / batches as f64).max(f64::MIN_POSITIVE),
        };
        let presets = Preset::ALL
            .iter()
            .map(|preset| price(&info.limits, &workload, preset))
            .collect::<Result<Vec<_>>>()?;
        Ok(JobPlan {
            units: prepared.work.units(),
            batches: expected.batches,
            requests,
            records: expected.items.map(|n| n.round() as u64),
            density: prepared.work.density(),
            requests_to_plan: made,
            presets,
        })
    }

    /// Per-day counts of `range` at the source (through the budget, retries
    /// and the session), to compare with the store.
    pub async fn day_counts(
        &self,
        range: DayRange,
        options: &SyncOptions,
    ) -> Result<SourceDayCounts> {
        let info = self.source.info();
        let ctx = self.context(
            &info.stream,
            options,
            options.cancel.child_token(),
            Arc::default(),
        );
        let counts = self
            .stack(&options.retry)
            .all_day_counts(range, &ctx)
            .await?;
        Ok(SourceDayCounts {
            counts,
            requests: ctx.meter().requests(),
        })
    }

    /// Runs `target` and returns the run's report.
    ///
    /// The stream's lease is taken first: a run refused as busy, or one
    /// whose store cannot be reached, sends nothing to the source. Covered
    /// units are skipped (unless `force`); each batch is fetched page by
    /// page, then committed with its checkpoint in one transaction. A batch
    /// that fails (bad data, retries used up) is reported and the run goes
    /// on; its units stay uncovered for the next run. Errors that stop the
    /// run (credentials rejected, store unreachable, the budget unreadable)
    /// are returned as `Err`, after the run is recorded as failed when it
    /// could be.
    ///
    /// A cancelled run ends with `Ok` and status [`RunStatus::Cancelled`]:
    /// batches already stored stay, requests in flight are dropped, a commit
    /// under way finishes. A run cut short by `max_batches` is
    /// [`RunStatus::Partial`]. A dry run counts what the real run would
    /// (created, updated, unchanged, deleted, against the store) and writes
    /// nothing at all, not even the run history.
    pub async fn run(&self, target: &Target, options: &SyncOptions) -> Result<RunReport> {
        let info = self.source.info();
        check_target(&info, target, options.mode)?;
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
                tracing::warn!(run_id = %report.id, stream = %report.stream, error_kind = e.kind(), error = %e, "run not started");
                return Err(e);
            }
        }
        let meter = Arc::new(RunMeter::default());
        let mut cut_short = false;
        let outcome = self
            .drive(&info, target, options, &mut report, &meter, &mut cut_short)
            .await;
        self.finish(report, &meter, options, outcome, cut_short)
            .await
    }

    fn context(
        &self,
        stream: &StreamId,
        options: &SyncOptions,
        cancel: CancellationToken,
        meter: Arc<RunMeter>,
    ) -> FetchContext {
        let progress = options.progress.clone();
        let notice: WaitNotice = Arc::new(move |w: &Waiting| {
            if let Some(progress) = &progress {
                progress(&ProgressEvent::Waiting {
                    what: w.what.clone(),
                    waited: w.waited,
                });
            }
        });
        FetchContext::new(stream.clone())
            .with_meter(meter)
            .with_store(self.store.clone())
            .with_cancel(cancel)
            .with_notice(notice)
    }

    /// Reads what decides the work (coverage, check times, the last run),
    /// asks the source what it must (its keys, a count), and cuts the work.
    /// `plan` is `Some` for a plan (with a count given, or `None` to ask
    /// the source for one even where the run would not need it).
    #[allow(clippy::too_many_arguments)]
    async fn prepare(
        &self,
        stack: &Stack,
        info: &SourceInfo,
        target: &Target,
        options: &SyncOptions,
        ctx: &FetchContext,
        mode: &mut SyncMode,
        plan: Option<Option<Probe>>,
    ) -> Result<Prepared> {
        let for_plan = plan.is_some();
        let stream = &info.stream;
        let mut known = Known {
            covered: self.checkpoints.coverage(stream).await?,
            now: Some(Utc::now()),
            ..Known::default()
        };
        let mut scope = Scope {
            batch_size: options.batch_size,
            order: options.order,
            force: options.force,
            refresh: None,
            changes: None,
            max_batches: options.max_batches,
        };
        if *mode == SyncMode::Delta && !options.force {
            if info.supports_delta {
                match self.last_completed_run(stream).await? {
                    Some(last) => {
                        let overlap = chrono::Duration::from_std(options.delta_overlap)
                            .unwrap_or(chrono::Duration::MAX);
                        let since = last
                            .started_at
                            .checked_sub_signed(overlap)
                            .unwrap_or(DateTime::<Utc>::MIN_UTC);
                        tracing::info!(stream = %stream, last_completed_run = %last.id, since = %since.to_rfc3339(), "delta: the changes since the last completed run");
                        scope.changes = Some((since, Utc::now()));
                    }
                    None => {
                        tracing::info!(stream = %stream, "no completed run to take changes from: a full sync instead of a delta");
                        *mode = SyncMode::Full;
                    }
                }
            } else if let Some(range) = target.day_range() {
                scope.refresh = Some(options.refresh.clone());
                known.checked = self.checkpoints.last_checked(stream, range).await?;
            }
        }
        if scope.changes.is_none() {
            if let Units::Keys { listed: true, .. } = info.units {
                known.keys = stack.all_keys(ctx).await?;
            }
        }
        let mut work = Work::new(info, target, &scope, &known);
        let by_density = matches!(
            info.units,
            Units::Days {
                windows: Windows::ByDensity { .. },
                ..
            }
        ) && options.batch_size.is_none();
        let mut probe_for_plan_only = 0;
        if info.supports_probe
            && scope.changes.is_none()
            && work.units() > 0
            && (by_density || for_plan)
        {
            if let Some(range) = target.day_range() {
                let before = ctx.meter().requests();
                known.probe = stack.probe(range, ctx).await?;
                if !by_density {
                    probe_for_plan_only = ctx.meter().requests() - before;
                }
                work = Work::new(info, target, &scope, &known);
            }
        }
        Ok(Prepared {
            work,
            probe_for_plan_only,
        })
    }

    async fn last_completed_run(&self, stream: &StreamId) -> Result<Option<RunReport>> {
        // Runs after the last completed one are usually few; look far back.
        const LOOK_BACK: usize = 1000;
        let runs = self.checkpoints.runs(Some(stream), LOOK_BACK).await?;
        Ok(runs.into_iter().find(|r| r.status == RunStatus::Completed))
    }

    /// Prepares the work and runs it. `Err` is an error that stopped the
    /// run; batch failures and cancellation are in `report`.
    async fn drive(
        &self,
        info: &SourceInfo,
        target: &Target,
        options: &SyncOptions,
        report: &mut RunReport,
        meter: &Arc<RunMeter>,
        cut_short: &mut bool,
    ) -> Result<()> {
        // Stops the run: cancelled by the caller or by an error that stops it.
        let stop = options.cancel.child_token();
        let ctx = self.context(&info.stream, options, stop.clone(), meter.clone());
        let stack = self.stack(&options.retry);
        let prepared = match self
            .prepare(&stack, info, target, options, &ctx, &mut report.mode, None)
            .await
        {
            Ok(p) => p,
            Err(SyncError::Cancelled) => return Ok(()),
            Err(e) => return Err(e),
        };
        let covered = self.checkpoints.coverage(&info.stream).await?;
        let target = prepared.work.target().clone();
        let units_total = saturate(target.unit_count());
        let units_covered = saturate(target.coverage(&covered).covered());
        let expected = prepared.work.expected();
        tracing::info!(
            run_id = %report.id,
            stream = %info.stream,
            mode = ?report.mode,
            target = %report.target,
            batches = expected.batches,
            requests_expected = expected.requests.ceil() as u64,
            units_total,
            units_covered,
            dry_run = options.dry_run,
            "run started"
        );
        emit(
            options,
            ProgressEvent::RunStarted {
                run: report.id.clone(),
                stream: info.stream.clone(),
                batches: expected.batches,
                units_total,
                units_covered,
                requests_expected: expected.requests.ceil() as u64 + ctx.meter().requests(),
            },
        );
        let env = Env {
            engine: self,
            stack: &stack,
            ctx: &ctx,
            options,
            run: report.id.clone(),
            stream: info.stream.clone(),
        };
        let mut pipeline = Pipeline::new(&env, prepared.work, &target, covered, expected, stop);
        pipeline.run(report).await;
        *cut_short = pipeline.work.is_cut_short();
        match pipeline.fatal {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Ends the run: final status, counters, run history, last event.
    async fn finish(
        &self,
        mut report: RunReport,
        meter: &RunMeter,
        options: &SyncOptions,
        outcome: Result<()>,
        cut_short: bool,
    ) -> Result<RunReport> {
        report.finished_at = Some(Utc::now());
        report.requests = meter.requests();
        report.rate_limited = meter.rate_limited();
        report.retries = meter.retries();
        report.status = match &outcome {
            Err(_) => RunStatus::Failed,
            Ok(()) if options.cancel.is_cancelled() => RunStatus::Cancelled,
            Ok(()) if report.batches_failed > 0 || cut_short => RunStatus::Partial,
            Ok(()) => RunStatus::Completed,
        };
        if cut_short {
            report
                .errors
                .push("stopped after --max-batches; the rest waits for the next run".into());
        }
        if let Err(e) = &outcome {
            report
                .errors
                .push(format!("run stopped [{}]: {e}", e.kind()));
        }
        let mut result = outcome;
        if !options.dry_run {
            if let Err(e) = self.checkpoints.finish_run(&report).await {
                tracing::warn!(run_id = %report.id, stream = %report.stream, error_kind = e.kind(), error = %e, "could not record the end of the run");
                // The first error is the one that explains the run.
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        let duration_ms = report.duration().num_milliseconds();
        macro_rules! finished {
            ($level:ident) => {
                tracing::$level!(
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
                )
            };
        }
        if report.status == RunStatus::Completed {
            finished!(info);
        } else {
            finished!(warn);
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

/// What [`Engine::prepare`] gives.
struct Prepared {
    work: Work,
    /// Requests the plan made for a probe the run does not need.
    probe_for_plan_only: u64,
}

/// What every task of a run shares, read-only.
struct Env<'a> {
    engine: &'a Engine,
    stack: &'a Stack,
    ctx: &'a FetchContext,
    options: &'a SyncOptions,
    run: RunId,
    stream: StreamId,
}

impl Env<'_> {
    /// Stores a batch (or counts it, in a dry run), retrying temporary store
    /// failures.
    async fn commit(&self, batch: &Batch, records: &[Record]) -> Result<RecordCounts> {
        let what = || format!("the store to commit {} of {}", batch.span, self.stream);
        if self.options.dry_run {
            return self
                .options
                .retry
                .retry(self.ctx, what, || self.classify(records))
                .await;
        }
        let covered = batch.covered_units();
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
        };
        self.options
            .retry
            .retry(self.ctx, what, || self.engine.store.commit(commit))
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
                for s in self.engine.store.existing(&self.stream, &query).await? {
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

/// A batch being fetched.
struct Slot {
    batch: Batch,
    /// Requests still to send (`None`: the first).
    pending: VecDeque<Option<Cursor>>,
    in_flight: usize,
    records: Vec<Record>,
    /// The density was learnt from its first page already.
    observed: bool,
    failed: bool,
    started: Instant,
}

type PageDone = (usize, Option<Cursor>, Duration, Result<Page>);
type CommitDone = (Batch, Result<RecordCounts>);

/// The batches of one run in flight.
struct Pipeline<'a> {
    env: &'a Env<'a>,
    work: Work,
    target: &'a Target,
    /// By batch index.
    slots: BTreeMap<usize, Slot>,
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
    paused_until: Option<Instant>,
    stop: CancellationToken,
    fatal: Option<SyncError>,
}

impl<'a> Pipeline<'a> {
    fn new(
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
            work,
            target,
            slots: BTreeMap::new(),
            units_total: saturate(target.unit_count()),
            covered,
            batches_expected: expected.batches,
            batches_done: 0,
            round_trip: None,
            started: now,
            stretch_began: now,
            paused_until: None,
            stop,
            fatal: None,
        }
    }

    /// Requests in flight the round trip needs at the allowed rate.
    fn depth(&self) -> usize {
        let cap = self.env.options.max_in_flight.get();
        let limits = self.env.engine.budget.limits();
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

    /// The next request to send: the oldest batch's first.
    fn next_request(&mut self) -> Option<(usize, Batch, Option<Cursor>)> {
        for (&index, slot) in self.slots.iter_mut() {
            if slot.failed {
                continue;
            }
            if let Some(cursor) = slot.pending.pop_front() {
                slot.in_flight += 1;
                return Some((index, slot.batch.clone(), cursor));
            }
        }
        None
    }

    /// Whether a new batch may start now, with `committing` whole batches
    /// waiting for (or in) their commit.
    fn may_start_batch(&self, now: Instant, committing: usize) -> bool {
        !self.stop.is_cancelled()
            && self.paused_until.is_none_or(|p| now >= p)
            && self.slots.len() <= self.depth()
            && committing < COMMITS_AHEAD
    }

    fn start_batch(&mut self) -> bool {
        let Some(batch) = self.work.next_batch() else {
            return false;
        };
        let span = batch.span.to_string();
        tracing::info!(run_id = %self.env.run, stream = %self.env.stream, batch = batch.index, span = %span, recheck = batch.recheck, "batch started");
        emit(
            self.env.options,
            ProgressEvent::BatchStarted {
                index: batch.index,
                span,
            },
        );
        self.slots.insert(
            batch.index,
            Slot {
                batch,
                pending: VecDeque::from([None]),
                in_flight: 0,
                records: Vec::new(),
                observed: false,
                failed: false,
                started: Instant::now(),
            },
        );
        true
    }

    async fn run(&mut self, report: &mut RunReport) {
        let env = self.env;
        let mut pages: FuturesUnordered<BoxFuture<'a, PageDone>> = FuturesUnordered::new();
        let mut commits: FuturesUnordered<BoxFuture<'a, CommitDone>> = FuturesUnordered::new();
        let mut dropped = false;
        loop {
            // Fill the pipeline: pages of batches under way first, then new
            // batches.
            while !self.stop.is_cancelled() && self.in_flight() < self.depth() {
                if let Some((index, batch, cursor)) = self.next_request() {
                    pages.push(Box::pin(fetch(env, index, batch, cursor)));
                    continue;
                }
                if !(self.may_start_batch(Instant::now(), commits.len()) && self.start_batch()) {
                    break;
                }
            }
            if self.stop.is_cancelled() && !dropped {
                // Requests in flight are dropped: nothing of their batches
                // was written. Commits under way finish.
                dropped = true;
                pages = FuturesUnordered::new();
                for slot in std::mem::take(&mut self.slots).into_values() {
                    if slot.pending.is_empty() && slot.in_flight == 0 {
                        continue;
                    }
                    tracing::info!(run_id = %env.run, stream = %env.stream, batch = slot.batch.index, span = %slot.batch.span, "batch dropped before it was stored");
                }
            }
            if pages.is_empty() && commits.is_empty() {
                match self.paused_until {
                    Some(until) if !self.stop.is_cancelled() && Instant::now() < until => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(until) => {}
                            _ = self.stop.cancelled() => {}
                        }
                        continue;
                    }
                    _ => break,
                }
            }
            let pause = self.paused_until.filter(|_| pages.is_empty());
            tokio::select! {
                Some(done) = pages.next(), if !pages.is_empty() => {
                    if let Some(ready) = self.on_page(done, report) {
                        commits.push(Box::pin(store(env, ready)));
                    }
                }
                Some(done) = commits.next(), if !commits.is_empty() => self.on_commit(done, report),
                _ = tokio::time::sleep_until(pause.unwrap_or_else(Instant::now)), if pause.is_some() => {}
                _ = self.stop.cancelled(), if !dropped => {}
            }
        }
    }

    /// Takes a page in; gives back a batch that is whole and ready to store.
    fn on_page(
        &mut self,
        (index, cursor, round_trip, result): PageDone,
        report: &mut RunReport,
    ) -> Option<(Batch, Vec<Record>)> {
        let env = self.env;
        self.round_trip = Some(match self.round_trip {
            None => round_trip,
            Some(old) => old.mul_f64(0.8) + round_trip.mul_f64(0.2),
        });
        let slot = self.slots.get_mut(&index)?;
        slot.in_flight -= 1;
        if slot.failed {
            if slot.in_flight == 0 {
                self.slots.remove(&index);
            }
            return None;
        }
        let page = match result {
            Ok(page) => page,
            Err(SyncError::Cancelled) => return None,
            Err(error) if stops_the_run(&error) => {
                tracing::warn!(run_id = %env.run, stream = %env.stream, batch = index, span = %slot.batch.span, error_kind = error.kind(), error = %error, "run stops");
                self.stop.cancel();
                self.fatal.get_or_insert(error);
                return None;
            }
            Err(error) => {
                slot.failed = true;
                slot.records = Vec::new();
                report.batches_failed += 1;
                let message = batch_error(&slot.batch, &error);
                tracing::warn!(run_id = %env.run, stream = %env.stream, batch = index, span = %slot.batch.span, error_kind = error.kind(), error = %error, "batch failed; its units stay uncovered");
                report.errors.push(message.clone());
                emit(
                    env.options,
                    ProgressEvent::BatchFailed {
                        index,
                        span: slot.batch.span.to_string(),
                        error: message,
                    },
                );
                if slot.in_flight == 0 {
                    self.slots.remove(&index);
                }
                return None;
            }
        };
        if cursor.is_none() {
            if let Some(total) = page.total {
                if self.work.is_oversized(&slot.batch, total) {
                    let slot = self.slots.remove(&index)?;
                    tracing::info!(run_id = %env.run, stream = %env.stream, batch = index, span = %slot.batch.span, records = total, "window far larger than planned; cutting it again");
                    self.work.observe(&slot.batch, total);
                    self.batches_expected += 1;
                    self.work.give_back(slot.batch);
                    return None;
                }
                self.work.observe(&slot.batch, total);
                slot.observed = true;
            }
        }
        slot.records.extend(page.records);
        slot.pending.extend(page.more.into_iter().map(Some));
        if !slot.pending.is_empty() || slot.in_flight > 0 {
            return None;
        }
        let slot = self.slots.remove(&index)?;
        if !slot.observed {
            let items = slot.records.len() as u64;
            self.work.observe(&slot.batch, items);
        }
        tracing::debug!(run_id = %env.run, batch = index, records = slot.records.len(), fetch_ms = slot.started.elapsed().as_millis() as u64, "batch fetched");
        Some((slot.batch, slot.records))
    }

    fn on_commit(&mut self, (batch, result): CommitDone, report: &mut RunReport) {
        let env = self.env;
        let index = batch.index;
        match result {
            Ok(counts) => {
                report.counts += counts;
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
                self.maybe_pause();
            }
            Err(SyncError::Cancelled) => {}
            Err(error) => {
                tracing::warn!(run_id = %env.run, stream = %env.stream, batch = index, span = %batch.span, error_kind = error.kind(), error = %error, "commit failed; run stops");
                self.stop.cancel();
                self.fatal.get_or_insert(error);
            }
        }
    }

    /// After each stretch of work, the preset's pause.
    fn maybe_pause(&mut self) {
        let options = self.env.options;
        if options.pause.is_zero() {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.stretch_began) >= options.work_between_pauses {
            tracing::info!(stream = %self.env.stream, pause_ms = options.pause.as_millis() as u64, "pausing between stretches of work");
            self.paused_until = Some(now + options.pause);
            self.stretch_began = now + options.pause;
        }
    }
}

/// Sends one request of a batch.
async fn fetch(env: &Env<'_>, index: usize, batch: Batch, cursor: Option<Cursor>) -> PageDone {
    let ctx = env.ctx.for_operation();
    let started = Instant::now();
    let result = env.stack.fetch_page(&batch, cursor.as_ref(), &ctx).await;
    // The round trip, without the time spent waiting for the budget.
    let round_trip = started.elapsed().saturating_sub(ctx.waited());
    (index, cursor, round_trip, result)
}

/// Stores a whole batch. Not cancellable: a commit under way finishes (or
/// its transaction rolls back), so the checkpoint is never ahead of the
/// data.
async fn store(env: &Env<'_>, (batch, records): (Batch, Vec<Record>)) -> CommitDone {
    let what = || format!("the store to commit {} of {}", batch.span, env.stream);
    let result = watched(env.commit(&batch, &records), what, env.ctx.notice()).await;
    (batch, result)
}

fn emit(options: &SyncOptions, event: ProgressEvent) {
    if let Some(progress) = &options.progress {
        progress(&event);
    }
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

/// The target, for people: `days 2024-09-01..=2024-12-31 (Europe/Moscow)`.
fn describe_target(target: &Target) -> String {
    match target {
        Target::Days { range, tz } => format!("days {range} ({tz})"),
        Target::Keys(range) => format!("keys {range}"),
        Target::KeyList(_) => format!("{} ids", target.unit_count()),
    }
}

fn saturate(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A target the source can fetch, in the source's time zone; delta only
/// where the source can do it.
fn check_target(info: &SourceInfo, target: &Target, mode: SyncMode) -> Result<()> {
    match (info.units, target) {
        (Units::Days { tz, .. }, Target::Days { tz: target_tz, .. }) => {
            if tz != *target_tz {
                return Err(SyncError::invalid_input(format!(
                    "the target's time zone {target_tz} is not the source's ({tz}) for stream {}; days would be cut wrongly",
                    info.stream
                )));
            }
        }
        (Units::Keys { .. }, Target::Keys(_) | Target::KeyList(_)) => {}
        (Units::Days { .. }, _) => {
            return Err(SyncError::invalid_input(format!(
                "stream {} is cut into days; give it a range of days",
                info.stream
            )))
        }
        (Units::Keys { .. }, _) => {
            return Err(SyncError::invalid_input(format!(
                "stream {} is cut into keys; give it keys, not days",
                info.stream
            )))
        }
    }
    if mode == SyncMode::Delta && !info.supports_delta && matches!(info.units, Units::Keys { .. }) {
        return Err(SyncError::invalid_input(format!(
            "delta sync is not supported by the source of stream {}",
            info.stream
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::interval::KeyRange;
    use crate::limit::limiter::RateLimiter;
    use crate::store::memory::MemoryStore;

    #[test]
    fn run_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let store = Arc::new(MemoryStore::new());
        #[derive(Debug)]
        struct Nothing;
        #[async_trait::async_trait]
        impl Source for Nothing {
            fn info(&self) -> SourceInfo {
                SourceInfo::keys(StreamId::new("x", "y"), 10, false)
            }
            async fn fetch_page(
                &self,
                _: &Batch,
                _: Option<&Cursor>,
                _: &FetchContext,
            ) -> Result<Page> {
                Ok(Page::default())
            }
        }
        let engine = Engine::new(
            Arc::new(Nothing),
            store.clone(),
            store,
            Arc::new(RateLimiter::unlimited()),
        );
        let target = Target::Keys(KeyRange { first: 1, last: 2 });
        let options = SyncOptions::default();
        let fut = engine.run(&target, &options);
        assert_send(&fut);
    }

    /// One record per key, at once: far faster than the store commits.
    #[derive(Debug)]
    struct Instant1;

    #[async_trait::async_trait]
    impl Source for Instant1 {
        fn info(&self) -> SourceInfo {
            SourceInfo::keys(StreamId::new("fast", "keys"), 1, false)
        }
        async fn fetch_page(
            &self,
            batch: &Batch,
            _: Option<&Cursor>,
            ctx: &FetchContext,
        ) -> Result<Page> {
            ctx.request().await?;
            let crate::BatchSpan::Keys(range) = &batch.span else {
                return Err(SyncError::invalid_input("keys only"));
            };
            let records = range
                .iter()
                .map(|k| {
                    Record::new(
                        "k",
                        k.to_string(),
                        crate::Unit::Key(k),
                        serde_json::json!({}),
                    )
                })
                .collect();
            Ok(Page::last(records))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn batches_waiting_for_their_commit_stay_few_when_the_store_is_slow() {
        let store = Arc::new(MemoryStore::new());
        store.set_commit_delay(Duration::from_millis(10));
        let engine = Engine::new(
            Arc::new(Instant1),
            store.clone(),
            store.clone(),
            Arc::new(RateLimiter::unlimited()),
        );
        // Batches started and not yet stored, at most, over the run.
        let outstanding = Arc::new(std::sync::Mutex::new((0i64, 0i64)));
        let seen = outstanding.clone();
        let options = SyncOptions::builder()
            .progress(Arc::new(move |e: &ProgressEvent| {
                let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                match e {
                    ProgressEvent::BatchStarted { .. } => s.0 += 1,
                    ProgressEvent::BatchFinished { .. } => s.0 -= 1,
                    _ => {}
                }
                s.1 = s.1.max(s.0);
            }))
            .build();
        let target = Target::Keys(KeyRange {
            first: 1,
            last: 200,
        });
        let report = engine.run(&target, &options).await.unwrap();
        assert_eq!(report.counts.created, 200);
        let most = outstanding.lock().unwrap().1;
        // The requests in flight (8), the batch being committed and the one
        // waiting for it: memory is bounded by those, not by the target.
        let bound = options.max_in_flight.get() as i64 + 1 + COMMITS_AHEAD as i64;
        assert!(
            most <= bound,
            "{most} batches fetched and not stored at once (at most {bound})"
        );
    }
}
