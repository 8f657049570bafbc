//! The commands: each validates its input first, then opens the store, and
//! only then lets the engine talk to the source, so that bad input or an
//! unreachable store writes nothing and sends nothing.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;

use chrono::{DateTime, NaiveTime, Utc};
use sync_core::plan::{self, JobPlan, PaceSettings, Preset, Workload};
use sync_core::{
    Budget, CancellationToken, CheckpointStore, Engine, Order, Probe, RateLimits, RunId, RunReport,
    RunStatus, SyncMode, SyncOptions, Target, Tz, Units, Worker,
};
use sync_source_yclients::{CompanySources, YclientsClients};

use crate::account::{budget, with_all_companies};
use crate::cli::{
    Cli, Command, Company, ConfigAction, ConfigArgs, HistoryArgs, HistoryCommand, PlanArgs,
    RunArgs, SourceKind, TargetArgs,
};
use crate::config::{parse_duration, Settings};
use crate::error::{CliError, ExitCode};
use crate::output::{note, out, outln};
use crate::progress;
use crate::render;
use crate::sources::{self, Built, Stream};
use crate::stores::{self, Stores};
use crate::targets::{day_range, preset, source_kind, target};

/// Runs the command given on the command line.
pub(crate) async fn dispatch(cli: Cli, settings: Settings) -> Result<ExitCode, CliError> {
    let plain = cli.no_progress;
    match cli.command {
        Command::Plan(args) => plan_command(&settings, args).await,
        Command::Run(args) => run_command(&settings, args, plain, None).await,
        Command::Worker(args) => {
            let lease = parse_duration(&args.lease, "--lease")?;
            if lease < std::time::Duration::from_secs(1) {
                return Err(CliError::config("--lease must be at least 1s"));
            }
            let id = args.id.clone().unwrap_or_else(default_worker_id);
            run_command(&settings, args.run, plain, Some(WorkerSpec { id, lease })).await
        }
        Command::Status(args) => status_command(&settings, &args).await,
        Command::History(args) => history_command(&settings, args).await,
        Command::Verify(args) => verify_command(&settings, &args).await,
        Command::Config(args) => config_command(&settings, args),
        Command::Demo(args) => crate::demo::run(&settings, args, plain).await,
        Command::Serve(args) => crate::serve::run(&settings, args).await,
    }
}

/// One stream to run (or price), and how.
struct Job {
    stream: Stream,
    target: Target,
    mode: SyncMode,
    force: bool,
    /// Why it runs this way, when the source says.
    note: Option<String>,
    /// The clients source, for a clients stream (it says which delta it
    /// used).
    clients: Option<Arc<YclientsClients>>,
    /// The YClients company: companies run side by side.
    company: Option<u64>,
}

impl Job {
    fn from_run(company: &CompanySources, run: sync_source_yclients::StreamRun) -> Self {
        let is_clients = run.source.info().stream == YclientsClients::stream_id(company.company_id);
        Self {
            stream: Stream {
                source: run.source,
                session: company.session.clone(),
            },
            target: run.target,
            mode: run.mode,
            force: run.force,
            note: run.note,
            clients: is_clients.then(|| company.clients.clone()),
            company: Some(company.company_id),
        }
    }
}

/// The jobs of a command: every stream of `built` with `target`, `mode`
/// and `force`; for a whole YClients company and for YClients clients, as
/// the adapter says (the catalogue whole every run, clients deltas with a
/// periodic full scan, from the run history in `checkpoints`).
async fn jobs(
    kind: SourceKind,
    built: &Built,
    checkpoints: &dyn CheckpointStore,
    target: &Target,
    mode: SyncMode,
    force: bool,
) -> Result<Vec<Job>, CliError> {
    let mut jobs = Vec::new();
    match kind {
        SourceKind::YclientsAll => {
            for company in &built.companies {
                for run in company
                    .runs(checkpoints, target.clone(), mode, force)
                    .await?
                {
                    jobs.push(Job::from_run(company, run));
                }
            }
        }
        SourceKind::YclientsClients => {
            for company in &built.companies {
                let run = company.clients_run(checkpoints, mode, force).await?;
                jobs.push(Job::from_run(company, run));
            }
        }
        SourceKind::Yclients => {
            for company in &built.companies {
                jobs.push(Job {
                    stream: Stream {
                        source: company.records.clone(),
                        session: company.session.clone(),
                    },
                    target: target.clone(),
                    mode,
                    force,
                    note: None,
                    clients: None,
                    company: Some(company.company_id),
                });
            }
        }
        SourceKind::Kennel => {
            for stream in &built.streams {
                jobs.push(Job {
                    stream: Stream {
                        source: stream.source.clone(),
                        session: stream.session.clone(),
                    },
                    target: target.clone(),
                    mode,
                    force,
                    note: None,
                    clients: None,
                    company: None,
                });
            }
        }
    }
    Ok(jobs)
}

/// How `worker` shares its runs.
struct WorkerSpec {
    id: String,
    lease: std::time::Duration,
}

/// The host name and process id: unique among the workers of one store.
fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "worker".to_string());
    format!("{host}-{}", std::process::id())
}

/// `run`, or `worker` when `worker` is given: the runs of the streams, one
/// after another.
async fn run_command(
    settings: &Settings,
    args: RunArgs,
    plain: bool,
    worker: Option<WorkerSpec>,
) -> Result<ExitCode, CliError> {
    // Validate everything before touching the store or the network.
    let kind = source_kind(settings, &args.target)?;
    let tz = settings.tz_of(kind)?;
    let preset = preset(args.preset.as_deref().unwrap_or(&settings.preset))?;
    let mut pace = preset.settings();
    let mode = if args.delta {
        SyncMode::Delta
    } else {
        SyncMode::Full
    };
    let target = target(kind, settings, &args.target, tz, mode)?;
    if let Some(text) = args.interval.as_deref().or(settings.interval.as_deref()) {
        pace.batch_interval = parse_duration(text, "--interval")?;
    }
    if let Some(text) = &args.start_at {
        pace.start_at = Some(parse_time(text)?);
    }
    let batch_size = match args.batch_size.or(settings.batch_size) {
        Some(0) => return Err(CliError::config("--batch-size must be at least 1")),
        n => n.and_then(NonZeroU32::new),
    };
    if args.max_batches == Some(0) {
        return Err(CliError::config("--max-batches must be at least 1"));
    }
    if args.resume {
        note!("resuming is the default: the run starts where the stored checkpoint ends");
    }
    let built = sources::build(kind, settings, &args.target)?;
    let stores = stores::open(settings).await?;
    let worker = match worker {
        None => None,
        Some(spec) => {
            let Some(queue) = stores.queue.clone() else {
                return Err(CliError::config(
                    "workers share their work through the Postgres store (set DATABASE_URL); the embedded SQLite store serves one process at a time: use `run`",
                ));
            };
            if args.dry_run {
                return Err(CliError::config(
                    "a worker cannot make a dry run: use `run --dry-run`",
                ));
            }
            note!("worker {} on the queue of the Postgres store", spec.id);
            let mut w = Worker::new(spec.id, queue);
            w.lease = spec.lease;
            Some(w)
        }
    };
    let budget = budget(&built, pace.utilization, &stores, settings);
    let built = with_all_companies(kind, settings, &args.target, built, &stores, &budget).await?;

    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            note!("Ctrl-C: finishing or rolling back the batch in flight...");
            on_ctrl_c.cancel();
        }
    });

    if let Some(start) = pace.next_start(Utc::now(), tz) {
        if wait_until(start, tz, &cancel).await.is_err() {
            note!("cancelled before the start time");
            return Ok(ExitCode::Cancelled);
        }
    }

    let jobs = jobs(
        kind,
        &built,
        stores.checkpoints.as_ref(),
        &target,
        mode,
        args.force,
    )
    .await?;
    let shared = RunShared {
        settings,
        args: &args,
        kind,
        preset,
        pace: &pace,
        batch_size,
        built: &built,
        stores: &stores,
        budget: &budget,
        worker: worker.as_ref(),
        cancel: &cancel,
        plain,
    };
    // Companies proceed side by side, as far as their shared budget allows;
    // the streams of one company one after another, in the order given.
    let mut groups: Vec<Vec<&Job>> = Vec::new();
    for job in &jobs {
        match groups.iter_mut().find(|g| g[0].company == job.company) {
            Some(group) => group.push(job),
            None => groups.push(vec![job]),
        }
    }
    let outcomes = futures::future::join_all(groups.into_iter().map(|group| {
        let shared = &shared;
        async move {
            let mut reports = Vec::new();
            for job in group {
                let report = run_job(shared, job).await;
                let stop = match &report {
                    Ok(r) => r.status == RunStatus::Cancelled || shared.cancel.is_cancelled(),
                    Err(_) => true,
                };
                reports.push(report);
                if stop {
                    break;
                }
            }
            reports
        }
    }))
    .await;
    let mut worst = ExitCode::Success;
    let mut requests = 0;
    let mut runs = 0;
    let mut first_error = None;
    for report in outcomes.into_iter().flatten() {
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        requests += report.requests;
        runs += 1;
        let code = match report.status {
            RunStatus::Completed => ExitCode::Success,
            RunStatus::Partial => ExitCode::Partial,
            RunStatus::Cancelled => ExitCode::Cancelled,
            RunStatus::Failed | RunStatus::InProgress => ExitCode::Failure,
        };
        if code != ExitCode::Success && worst == ExitCode::Success {
            worst = code;
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if runs > 1 {
        outln!("{runs} streams, {requests} requests in all")?;
    }
    Ok(worst)
}

/// What every run of a `run` (or `worker`) command shares.
struct RunShared<'a> {
    settings: &'a Settings,
    args: &'a RunArgs,
    kind: SourceKind,
    preset: Preset,
    pace: &'a PaceSettings,
    batch_size: Option<NonZeroU32>,
    built: &'a Built,
    stores: &'a Stores,
    budget: &'a Arc<dyn Budget>,
    worker: Option<&'a Worker>,
    cancel: &'a CancellationToken,
    plain: bool,
}

/// Runs one stream and prints its summary.
async fn run_job(shared: &RunShared<'_>, job: &Job) -> Result<RunReport, CliError> {
    let RunShared {
        settings,
        args,
        kind,
        preset,
        pace,
        batch_size,
        built,
        stores,
        budget,
        worker,
        cancel,
        plain,
    } = *shared;
    let info = job.stream.source.info();
    let mut options = SyncOptions::builder()
        .order(if args.oldest_first {
            Order::OldestFirst
        } else {
            Order::NewestFirst
        })
        .pace(pace)
        .dry_run(args.dry_run)
        .force(job.force)
        .mode(job.mode)
        .retry(built.retry.clone())
        .refresh(settings.kennel.recheck.clone())
        .cancel(cancel.clone())
        .progress(progress::reporter(info.stream.to_string(), plain));
    // In a whole-company sync, --batch-size is days per window of the
    // records; the other streams cut their ids as they describe.
    let by_day = matches!(info.units, Units::Days { .. });
    if let Some(n) = batch_size.filter(|_| by_day || kind != SourceKind::YclientsAll) {
        options = options.batch_size(n);
    }
    if let Some(n) = args.max_batches {
        options = options.max_batches(n);
    }
    if let Some(n) = settings.concurrency.and_then(NonZeroUsize::new) {
        options = options.max_in_flight(n);
    }
    let options = options.build();
    let engine = engine(&job.stream, stores, budget);
    if let Some(note) = &job.note {
        outln!("{}: {note}", info.stream)?;
    }
    tracing::info!(stream = %info.stream, preset = %preset, ?batch_size, mode = ?job.mode, force = job.force, dry_run = args.dry_run, worker = worker.map(|w| w.id.as_str()), "starting run");
    let report = match worker {
        None => engine.run(&job.target, &options).await?,
        Some(w) => engine.run_worker(&job.target, &options, w).await?,
    };
    print_run_summary(&report)?;
    if let (SyncMode::Delta, Some(used)) = (
        report.mode,
        job.clients.as_ref().and_then(|c| c.delta_used()),
    ) {
        outln!("  clients delta: {used}")?;
    }
    Ok(report)
}

fn engine(stream: &sources::Stream, stores: &Stores, budget: &Arc<dyn Budget>) -> Engine {
    Engine::new(
        stream.source.clone(),
        stores.store.clone(),
        stores.checkpoints.clone(),
        budget.clone(),
    )
    .with_session(stream.session.clone())
}

fn print_run_summary(r: &RunReport) -> Result<(), CliError> {
    outln!(
        "{}: run {} {} — {} created, {} updated, {} unchanged, {} deleted; {} batches stored, {} failed; {} requests, {} answered 429",
        r.stream,
        r.id,
        r.status,
        r.counts.created,
        r.counts.updated,
        r.counts.unchanged,
        r.counts.deleted,
        r.batches_done,
        r.batches_failed,
        r.requests,
        r.rate_limited
    )?;
    for e in &r.errors {
        outln!("  error: {e}")?;
    }
    if r.dry_run {
        outln!("  (dry run: nothing was written)")?;
    }
    Ok(())
}

fn parse_time(text: &str) -> Result<NaiveTime, CliError> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M").map_err(|_| {
        CliError::config(format!(
            "--start-at {text:?} is not a time: use HH:MM, e.g. 01:30"
        ))
    })
}

// Sleeps until `start`; Err if cancelled first.
async fn wait_until(start: DateTime<Utc>, tz: Tz, cancel: &CancellationToken) -> Result<(), ()> {
    let wait = (start - Utc::now()).to_std().unwrap_or_default();
    note!(
        "waiting until {} ({}) to start",
        start.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z"),
        render::human_duration(wait)
    );
    tracing::info!(start_at = %start.to_rfc3339(), "waiting for the start time");
    tokio::select! {
        _ = cancel.cancelled() => Err(()),
        _ = tokio::time::sleep(wait) => Ok(()),
    }
}

/// `args` with one made-up company, to learn the names of a kind's streams.
fn example_company(args: &TargetArgs) -> TargetArgs {
    let mut args = args.clone();
    args.companies = vec![Company::Id(1)];
    args
}

async fn status_command(settings: &Settings, args: &TargetArgs) -> Result<ExitCode, CliError> {
    let kind = source_kind(settings, args)?;
    let tz = settings.tz_of(kind)?;
    let target = target(kind, settings, args, tz, SyncMode::Full)?;
    let stores = stores::open(settings).await?;
    let mut streams = sources::streams(kind, settings, args)?;
    if args.all_companies() {
        // The companies synced so far are the ones in the run history.
        let prefix = sources::streams(kind, settings, &example_company(args))?;
        let mut seen = std::collections::BTreeSet::new();
        for run in stores.checkpoints.runs(None, 10_000).await? {
            for (template, by_day) in &prefix {
                if run.stream.stream == template.stream
                    && run.stream.source.starts_with("yclients:")
                    && seen.insert(run.stream.clone())
                {
                    streams.push((run.stream.clone(), *by_day));
                }
            }
        }
        streams.sort_by_key(|s| s.0.to_string());
    }
    for (stream, by_day) in &streams {
        let coverage = stores.checkpoints.coverage(stream).await?;
        outln!("{stream}")?;
        match &target {
            Target::Days { range, .. } if *by_day => {
                let summary = coverage.days.coverage(*range);
                out!("{}", render::coverage("Historical sync", &summary))?;
                out!(
                    "{}",
                    render::calendar(&summary, &|d| coverage.days.contains(d))
                )?;
            }
            _ => {
                // Ids come from the source; the store knows which it has.
                outln!("Ids stored: {}", coverage.keys.len())?;
            }
        }
        let runs = stores.checkpoints.runs(Some(stream), 5).await?;
        outln!("Last runs:")?;
        out!("{}", render::runs_table(&runs))?;
        outln!()?;
    }
    let key = sources::budget_key(kind, settings)?;
    let limits = sources::documented_limits(kind, settings);
    let schedule = stores.budgets.schedule(&key).await?;
    outln!("{}", render::budget_use(&key, &limits, schedule.as_ref()))?;
    Ok(ExitCode::Success)
}

async fn history_command(settings: &Settings, args: HistoryArgs) -> Result<ExitCode, CliError> {
    let stores = stores::open(settings).await?;
    match args.show {
        None => {
            let runs = stores.checkpoints.runs(None, args.limit).await?;
            out!("{}", render::runs_table(&runs))?;
        }
        Some(HistoryCommand::Show { run, limit }) => {
            let id = RunId(run.clone());
            let Some(report) = stores.checkpoints.run(&id).await? else {
                return Err(CliError::config(format!(
                    "no run {run:?}: `sync-cli history` lists the runs"
                )));
            };
            let changes = stores.checkpoints.run_changes(&id).await?;
            out!("{}", render::run_detail(&report, &changes, limit))?;
        }
    }
    Ok(ExitCode::Success)
}

async fn verify_command(settings: &Settings, args: &TargetArgs) -> Result<ExitCode, CliError> {
    let kind = source_kind(settings, args)?;
    let tz = settings.tz_of(kind)?;
    let (first, last) = day_range(settings, args, tz)?;
    let range = sync_core::Span::new(first, last)
        .ok_or_else(|| CliError::config("date range is inverted"))?;
    let built = sources::build(kind, settings, args)?;
    let stores = stores::open(settings).await?;
    let budget = budget(&built, 1.0, &stores, settings);
    let built = with_all_companies(kind, settings, args, built, &stores, &budget).await?;
    let options = SyncOptions::builder().retry(built.retry.clone()).build();
    let mut mismatched_total = 0usize;
    for stream in &built.streams {
        let info = stream.source.info();
        let id = info.stream;
        if kind == SourceKind::YclientsAll && !info.supports_day_counts {
            // A company's catalogue and clients are not kept by day.
            continue;
        }
        let engine = engine(stream, &stores, &budget);
        let at_source = engine.day_counts(range, &options).await?;
        let Some(counts) = at_source.counts else {
            return Err(CliError::config(format!(
                "{id}: this source cannot report per-day counts"
            )));
        };
        let stored = stores.store.day_counts(&id, range).await?;
        let mismatched: Vec<_> = range
            .iter()
            .map(|day| {
                let source = counts.get(&day).copied().unwrap_or(0);
                let store = stored.get(&day).copied().unwrap_or(0);
                (day, source, store)
            })
            .filter(|(_, a, b)| a != b)
            .collect();
        outln!(
            "{id}: {} days checked, {} differ ({} requests made)",
            range.len(),
            mismatched.len(),
            at_source.requests
        )?;
        if !mismatched.is_empty() {
            outln!("  {:<12} {:>8} {:>8}", "DAY", "SOURCE", "STORED")?;
            for (day, a, b) in &mismatched {
                outln!("  {:<12} {a:>8} {b:>8}", day.to_string())?;
            }
        }
        tracing::info!(stream = %id, days = range.len() as u64, mismatched = mismatched.len(), requests = at_source.requests, "verify finished");
        mismatched_total += mismatched.len();
    }
    Ok(if mismatched_total == 0 {
        ExitCode::Success
    } else {
        ExitCode::Partial
    })
}

fn config_command(settings: &Settings, args: ConfigArgs) -> Result<ExitCode, CliError> {
    match args.action.unwrap_or(ConfigAction::Show) {
        ConfigAction::Show => {
            let text = toml::to_string_pretty(settings)
                .map_err(|e| CliError::failure(format!("cannot show the configuration: {e}")))?;
            out!("{text}")?;
        }
        ConfigAction::Presets => {
            outln!(
                "{:<13} {:>11} {:>11} {:>14} {:>9}",
                "PRESET",
                "UTILIZATION",
                "PAUSE",
                "PAUSE EVERY",
                "START AT"
            )?;
            for p in Preset::ALL {
                let s = p.settings();
                outln!(
                    "{:<13} {:>10.0}% {:>11} {:>14} {:>9}",
                    p.to_string(),
                    s.utilization * 100.0,
                    render::human_duration(s.batch_interval),
                    render::human_duration(s.target_batch_duration),
                    s.start_at
                        .map(|t| t.format("%H:%M").to_string())
                        .unwrap_or_else(|| "now".into())
                )?;
            }
            outln!("(current: {})", settings.preset)?;
        }
        ConfigAction::Apply { preset: name } => {
            let p = preset(&name)?;
            let path = settings
                .config_file
                .clone()
                .unwrap_or_else(|| std::path::PathBuf::from("sync.toml"));
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => {
                    return Err(CliError::config(format!(
                        "cannot read {}: {e}",
                        path.display()
                    )))
                }
            };
            let mut doc = text.parse::<toml_edit::DocumentMut>().map_err(|e| {
                CliError::config(format!("config file {} is invalid: {e}", path.display()))
            })?;
            if !doc.contains_table("sync") {
                doc["sync"] = toml_edit::table();
            }
            doc["sync"]["preset"] = toml_edit::value(p.to_string());
            std::fs::write(&path, doc.to_string())
                .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
            outln!("preset {p} written to {}", path.display())?;
        }
    }
    Ok(ExitCode::Success)
}

async fn plan_command(settings: &Settings, args: PlanArgs) -> Result<ExitCode, CliError> {
    let kind = source_kind(settings, &args.target)?;
    let tz = settings.tz_of(kind)?;
    let mode = if args.delta {
        SyncMode::Delta
    } else {
        SyncMode::Full
    };
    let target = target(kind, settings, &args.target, tz, mode)?;
    let documented = sources::documented_limits(kind, settings);
    let limits = RateLimits {
        per_second: args.per_second.or(documented.per_second),
        per_minute: args.per_minute.or(documented.per_minute),
        min_spacing: documented.min_spacing,
    };
    let count = match (args.records, target.day_range()) {
        (Some(items), Some(range)) => Some(Probe {
            items,
            days: u64::try_from(range.len()).unwrap_or(u64::MAX),
        }),
        (Some(_), None) => {
            return Err(CliError::config(
                "--records applies to day sources (records in the range)",
            ))
        }
        (None, _) => None,
    };
    let built = sources::build(kind, settings, &args.target)?;
    let stores = stores::open(settings).await?;
    let budget = budget(&built, 1.0, &stores, settings);
    let built = with_all_companies(kind, settings, &args.target, built, &stores, &budget).await?;
    outln!("Limits: {}", describe_limits(&limits))?;
    let jobs = jobs(
        kind,
        &built,
        stores.checkpoints.as_ref(),
        &target,
        mode,
        args.force,
    )
    .await?;
    let (mut requests, mut to_plan) = (0, 0);
    for job in &jobs {
        let info = job.stream.source.info();
        let options = SyncOptions::builder()
            .retry(built.retry.clone())
            .refresh(settings.kennel.recheck.clone())
            .mode(job.mode)
            .force(job.force)
            .build();
        // A count of records in days applies to the streams kept by day.
        let count = match info.units {
            Units::Days { .. } => count,
            Units::Keys { .. } => None,
        };
        let plan = engine(&job.stream, &stores, &budget)
            .plan_with(&job.target, &options, count)
            .await?;
        print_plan(&info.stream.to_string(), &job.target, &limits, &plan)?;
        if let Some(note) = &job.note {
            outln!("({note})")?;
        }
        requests += plan.requests;
        to_plan += plan.requests_to_plan;
    }
    if jobs.len() > 1 {
        outln!()?;
        outln!(
            "All {} streams: {requests} requests (asking the source for the plans took {to_plan})",
            jobs.len()
        )?;
    }
    Ok(ExitCode::Success)
}

fn print_plan(
    stream: &str,
    target: &Target,
    limits: &RateLimits,
    p: &JobPlan,
) -> Result<(), CliError> {
    outln!()?;
    outln!("{stream}: {}", describe(target))?;
    let records = match (p.records, p.density) {
        (Some(r), Some(d)) => format!(", about {r} records ({d:.1} a day)"),
        _ => String::new(),
    };
    outln!(
        "To fetch: {} units in {} batches{records}; {} requests (asking the source for the plan took {})",
        p.units, p.batches, p.requests, p.requests_to_plan
    )?;
    outln!(
        "{:<13} {:>9} {:>10} {:>10} {:>7} {:>7}",
        "PRESET",
        "REQUESTS",
        "PACE",
        "ETA",
        "BUDGET",
        "RISK"
    )?;
    let workload = Workload::PerItem {
        items: p.batches.max(1),
        requests_per_item: (p.requests.max(1) as f64 / p.batches.max(1) as f64)
            .max(f64::MIN_POSITIVE),
    };
    for preset in Preset::ALL {
        let row = plan::plan(limits, &workload, &preset)?;
        outln!(
            "{:<13} {:>9} {:>10} {:>10} {:>6.0}% {:>7}",
            row.preset.name(),
            p.requests,
            row.rate_per_minute
                .map(|r| format!("{r:.0}/min"))
                .unwrap_or_else(|| "unlimited".into()),
            render::human_duration(row.eta),
            row.budget_use.unwrap_or(0.0) * 100.0,
            row.risk.to_string()
        )?;
    }
    outln!(
        "Recommended preset: {}",
        plan::recommend(limits, &workload)?
    )?;
    Ok(())
}

fn describe(target: &Target) -> String {
    match target {
        Target::Days { range, tz } => format!("days {range} ({tz})"),
        Target::Keys(_) | Target::KeyList(_) => "every id the source lists".into(),
    }
}

fn describe_limits(l: &RateLimits) -> String {
    let mut parts = Vec::new();
    if let Some(n) = l.per_second {
        parts.push(format!("{n}/s"));
    }
    if let Some(n) = l.per_minute {
        parts.push(format!("{n}/min"));
    }
    if let Some(d) = l.min_spacing {
        parts.push(format!("{} between requests", render::human_duration(d)));
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}
