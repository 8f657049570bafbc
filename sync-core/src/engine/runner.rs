//! The engine: drives the batches of one run from a source into a store,
//! several requests in flight, each batch committed with its checkpoint.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio_util::sync::CancellationToken;

use crate::coverage::interval::DayRange;
use crate::domain::record::StreamId;
use crate::domain::run::{RunId, RunReport, RunStatus, SyncMode};
use crate::engine::options::SyncOptions;
use crate::engine::pipeline::{emit, saturate, Env, Pipeline, Queue, Stack};
use crate::engine::progress::ProgressEvent;
use crate::error::{Result, SyncError};
use crate::limit::budget::Budget;
use crate::plan::job::{JobPlan, Known, Scope, Work};
use crate::plan::pricing::{plan as price, Preset, Workload};
use crate::plan::target::Target;
use crate::source::api::{Probe, Source, SourceExt, SourceInfo, Units, Windows};
use crate::source::context::{FetchContext, RunMeter, WaitNotice, Waiting};
use crate::source::paced::Paced;
use crate::source::retry::{RetryPolicy, Retrying};
use crate::source::session::{Authenticated, SessionCache};
use crate::store::api::{CheckpointStore, Store, WorkQueue};

/// How a worker shares runs with other workers (see
/// [`Engine::run_worker`]).
#[derive(Clone, Debug)]
pub struct Worker {
    /// This worker's name, unique among the workers (e.g. host and pid);
    /// shown in the run history.
    pub id: String,
    /// The queue the workers share (the Postgres store).
    pub queue: Arc<dyn WorkQueue>,
    /// How long a claimed batch stays this worker's without a heartbeat
    /// (heartbeats come every third of it): when the worker dies, another
    /// takes its batches over after this long.
    pub lease: Duration,
}

impl Worker {
    /// A worker named `id` on `queue`, with a 15 s lease.
    pub fn new(id: impl Into<String>, queue: Arc<dyn WorkQueue>) -> Self {
        Self {
            id: id.into(),
            queue,
            lease: Duration::from_secs(15),
        }
    }
}

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

    /// Every key the source lists (through the budget, retries and the
    /// session), with the requests made; `None` for a source that lists
    /// no keys. Nothing is stored.
    pub async fn list_keys(&self, options: &SyncOptions) -> Result<(Option<Vec<i64>>, u64)> {
        let info = self.source.info();
        let ctx = self.context(
            &info.stream,
            options,
            options.cancel.child_token(),
            Arc::default(),
        );
        let keys = self.stack(&options.retry).all_keys(&ctx).await?;
        Ok((keys, ctx.meter().requests()))
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
        self.run_as(target, options, None).await
    }

    /// Runs `target` as one of several workers (processes, machines) that
    /// share `worker.queue`: the first to start plans the batches of the
    /// job (the stream and target) into the queue, and every worker claims
    /// batches from it until none is left. A batch is claimed by one worker
    /// at a time, under a lease its worker renews; a worker that dies loses
    /// its batches to the others when the lease expires. A batch is marked
    /// done in the transaction that stores it. The workers' runs take no
    /// lease on the stream (the queue keeps them apart); each is recorded
    /// with its worker. Share one budget between the workers (a
    /// [`SharedBudget`](crate::SharedBudget) on the same store), so that
    /// together they hold the server's limits.
    pub async fn run_worker(
        &self,
        target: &Target,
        options: &SyncOptions,
        worker: &Worker,
    ) -> Result<RunReport> {
        self.run_as(target, options, Some(worker)).await
    }

    async fn run_as(
        &self,
        target: &Target,
        options: &SyncOptions,
        worker: Option<&Worker>,
    ) -> Result<RunReport> {
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
        report.worker = worker.map(|w| w.id.clone());
        if !options.dry_run {
            if let Err(e) = self.checkpoints.begin_run(&report).await {
                tracing::warn!(run_id = %report.id, stream = %report.stream, error_kind = e.kind(), error = %e, "run not started");
                return Err(e);
            }
        }
        let meter = Arc::new(RunMeter::default());
        let mut cut_short = false;
        let outcome = self
            .drive(
                &info,
                target,
                options,
                &mut report,
                &meter,
                &mut cut_short,
                worker,
            )
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
        if let Some(Some(given)) = plan {
            // A count given for the plan stands for the source's probe.
            known.probe = Some(given);
            work = Work::new(info, target, &scope, &known);
        } else if info.supports_probe
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
    #[allow(clippy::too_many_arguments)]
    async fn drive(
        &self,
        info: &SourceInfo,
        target: &Target,
        options: &SyncOptions,
        report: &mut RunReport,
        meter: &Arc<RunMeter>,
        cut_short: &mut bool,
        worker: Option<&Worker>,
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
            stack: &stack,
            store: &self.store,
            ctx: &ctx,
            options,
            limits: self.budget.limits(),
            run: report.id.clone(),
            stream: info.stream.clone(),
        };
        let mut pipeline = Pipeline::new(&env, prepared.work, &target, covered, expected, stop);
        if let Some(worker) = worker {
            // The first worker to get here queues the job's batches for
            // everyone; the others take theirs from the queue.
            let job = job_name(&info.stream, &target, report.mode, options.force);
            let batches = pipeline.work.clone().drain();
            let planned = worker.queue.plan_job(&job, &info.stream, &batches).await?;
            tracing::info!(run_id = %report.id, stream = %info.stream, worker = %worker.id, job = %job, batches = batches.len(), planned, "worker joins the job");
            pipeline = pipeline.with_queue(Queue {
                queue: worker.queue.as_ref(),
                job,
                worker: worker.id.clone(),
                lease: worker.lease,
            });
        }
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

/// The name of a job in a work queue: what is synced, and how.
fn job_name(stream: &StreamId, target: &Target, mode: SyncMode, force: bool) -> String {
    format!(
        "{stream} {} {}{}",
        describe_target(target),
        mode.as_str(),
        if force { " forced" } else { "" }
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
    use crate::domain::record::{Record, Unit};
    use crate::limit::limiter::RateLimiter;
    use crate::plan::target::Batch;
    use crate::source::api::{Cursor, Page};
    use crate::store::memory::MemoryStore;
    use std::sync::atomic::{AtomicU64, Ordering};

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
        let worker = Worker::new("w", Arc::new(MemoryStore::new()));
        let fut = engine.run_worker(&target, &options, &worker);
        assert_send(&fut);
    }

    /// Three records a day, one request a window of five days, 200 ms a
    /// request.
    #[derive(Debug, Default)]
    struct Days {
        requests: AtomicU64,
    }

    #[async_trait::async_trait]
    impl Source for Days {
        fn info(&self) -> SourceInfo {
            SourceInfo::days(
                StreamId::new("days", "visits"),
                chrono_tz::UTC,
                Windows::Fixed { days: 5 },
            )
        }
        async fn fetch_page(
            &self,
            batch: &Batch,
            _: Option<&Cursor>,
            ctx: &FetchContext,
        ) -> Result<Page> {
            ctx.request().await?;
            self.requests.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            let records = batch
                .days()
                .flat_map(|d| {
                    (0..3).map(move |i| {
                        Record::new(
                            "visit",
                            format!("{d}-{i}"),
                            Unit::Day(d),
                            serde_json::json!({"i": i}),
                        )
                    })
                })
                .collect();
            Ok(Page::last(records))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn workers_share_a_job_and_take_over_from_one_that_dies() {
        let store = Arc::new(MemoryStore::new());
        let source = Arc::new(Days::default());
        let budget: Arc<dyn Budget> = Arc::new(RateLimiter::new(
            crate::limit::limits::RateLimits::new(Some(5), None),
        ));
        let target = Target::days(
            "2024-01-01".parse().unwrap(),
            "2024-04-29".parse().unwrap(),
            chrono_tz::UTC,
        )
        .unwrap();
        let spawn = |id: &str| {
            let engine = Engine::new(source.clone(), store.clone(), store.clone(), budget.clone());
            let worker = Worker {
                lease: Duration::from_secs(3),
                ..Worker::new(id, store.clone())
            };
            let target = target.clone();
            tokio::spawn(async move {
                engine
                    .run_worker(&target, &SyncOptions::default(), &worker)
                    .await
            })
        };
        let a = spawn("a");
        let b = spawn("b");
        let doomed = spawn("doomed");
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Killed: no goodbye, its claims stay until their lease expires.
        doomed.abort();
        let a = a.await.unwrap().unwrap();
        let b = b.await.unwrap().unwrap();
        assert_eq!(a.status, RunStatus::Completed);
        assert_eq!(b.status, RunStatus::Completed);
        let covered = target.coverage(&store.coverage(&source.info().stream).await.unwrap());
        assert!(covered.is_complete(), "{covered:?}");
        let stored = store.records_of_source("days");
        assert_eq!(stored.len(), 120 * 3);
        // Every record created once in the change log: by a, b, or the
        // dead worker before it died (its stored batches count).
        let runs = store.runs(None, 10).await.unwrap();
        let created: u64 = runs.iter().map(|r| r.counts.created).sum();
        assert_eq!(created, 360, "{runs:?}");
        assert!(runs.iter().all(|r| r.worker.is_some()));
        let job = store
            .progress(&job_name(
                &source.info().stream,
                &target,
                SyncMode::Full,
                false,
            ))
            .await
            .unwrap();
        assert_eq!(
            (job.done, job.pending, job.claimed, job.failed),
            (24, 0, 0, 0)
        );
    }
}
