//! The commands: each validates its input first, then opens the store and
//! the source, so that bad input writes nothing.

use std::num::{NonZeroU32, NonZeroUsize};
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sync_core::plan::{self, Preset};
use sync_core::{
    CancellationToken, Engine, Order, RunId, RunReport, RunStatus, Source, SyncMode, SyncOptions,
    Target, Tz,
};

use crate::cli::{
    Cli, Command, ConfigAction, ConfigArgs, HistoryArgs, HistoryCommand, PlanArgs, RunArgs,
    SourceKind, TargetArgs,
};
use crate::config::{parse_day, parse_duration, Settings};
use crate::error::{CliError, ExitCode};
use crate::progress;
use crate::render;
use crate::sources::{self, BuiltSources};
use crate::stores;

/// Clients per batch: one search page.
const CLIENTS_PER_BATCH: u32 = 200;

/// Runs the command given on the command line.
pub(crate) async fn dispatch(cli: Cli, settings: Settings) -> Result<ExitCode, CliError> {
    let plain = cli.no_progress;
    match cli.command {
        Command::Plan(args) => plan_command(&settings, args).await,
        Command::Run(args) => run_command(&settings, args, plain).await,
        Command::Status(args) => status_command(&settings, &args).await,
        Command::History(args) => history_command(&settings, args).await,
        Command::Verify(args) => verify_command(&settings, &args).await,
        Command::Config(args) => config_command(&settings, args),
        Command::Demo(args) => crate::sources::demo::run(&settings, args, plain).await,
    }
}

/// The source named by the flag or the config file.
pub(crate) fn source_kind(settings: &Settings, args: &TargetArgs) -> Result<SourceKind, CliError> {
    args.source.or(settings.source).ok_or_else(|| {
        CliError::config(
            "no source given: pass --source yclients, --source yclients-clients or --source kennel \
             (or set `source` in the [sync] section of the config file)",
        )
    })
}

/// The local day range of the target, from flags or the config file.
pub(crate) fn day_range(
    settings: &Settings,
    args: &TargetArgs,
    tz: Tz,
) -> Result<(NaiveDate, NaiveDate), CliError> {
    let from = args
        .from
        .as_deref()
        .or(settings.from.as_deref())
        .ok_or_else(|| {
            CliError::config("no start date: pass --from YYYY-MM-DD (or set `from` in [sync])")
        })?;
    let to = args
        .to
        .as_deref()
        .or(settings.to.as_deref())
        .unwrap_or("today");
    let first = parse_day(from, "--from", tz)?;
    let last = parse_day(to, "--to", tz)?;
    if last < first {
        return Err(CliError::config(format!(
            "date range is inverted: --from {first} is after --to {last}"
        )));
    }
    Ok((first, last))
}

/// The preset named by the flag, the environment or the config file.
pub(crate) fn preset(name: &str) -> Result<Preset, CliError> {
    Preset::from_str(name).map_err(CliError::from)
}

async fn run_command(
    settings: &Settings,
    args: RunArgs,
    plain: bool,
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
    let target = sources::target(kind, settings, &args.target, tz, mode)?;
    let interval = match args.interval.as_deref().or(settings.interval.as_deref()) {
        Some(text) => parse_duration(text, "--interval")?,
        None => pace.batch_interval,
    };
    if let Some(text) = &args.start_at {
        pace.start_at = Some(parse_time(text)?);
    }
    let batch_size_flag = args.batch_size.or(settings.batch_size);
    if batch_size_flag == Some(0) {
        return Err(CliError::config("--batch-size must be at least 1"));
    }
    if args.max_batches == Some(0) {
        return Err(CliError::config("--max-batches must be at least 1"));
    }
    let built = sources::build(kind, settings, &args.target, pace.utilization)?;
    let batch_days = batch_size_flag.unwrap_or(1);
    if mode == SyncMode::Full {
        sources::preflight(&built, &target, &preset, batch_days).await?;
    } else {
        sources::preflight(&built, &Target::KeyList(Vec::new()), &preset, batch_days).await?;
    }
    let stores = stores::open(settings).await?;

    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("Ctrl-C: finishing or rolling back the batch in flight...");
            on_ctrl_c.cancel();
        }
    });

    if let Some(start) = pace.next_start(Utc::now(), tz) {
        if wait_until(start, tz, &cancel).await.is_err() {
            eprintln!("cancelled before the start time");
            return Ok(ExitCode::Cancelled);
        }
    }

    let mut worst = ExitCode::Success;
    for (i, source) in built.sources.iter().enumerate() {
        // Clients are synced by id: the list comes from the source, and
        // id-ordered batches of one search page cost one request each.
        let (target, order, default_batch) = match built.clients.get(i) {
            Some(clients) if mode == SyncMode::Full => (
                sources::client_target(clients, built.limiter.clone()).await?,
                Order::OldestFirst,
                Some(CLIENTS_PER_BATCH),
            ),
            _ => (
                target.clone(),
                if args.oldest_first {
                    Order::OldestFirst
                } else {
                    Order::NewestFirst
                },
                None,
            ),
        };
        let batch_size = match batch_size_flag.or(default_batch) {
            Some(n) => n,
            None => planned_batch_size(source.as_ref(), &target, &built, &preset)?,
        };
        let options = SyncOptions {
            batch_size: NonZeroU32::new(batch_size).unwrap_or(NonZeroU32::MIN),
            order,
            interval,
            max_batches: args.max_batches,
            concurrency: NonZeroUsize::new(settings.concurrency).unwrap_or(NonZeroUsize::MIN),
            dry_run: args.dry_run,
            force: args.force,
            mode,
            cancel: cancel.clone(),
            progress: Some(progress::reporter(source.info().stream.to_string(), plain)),
            ..SyncOptions::default()
        };
        let engine = Engine::new(
            source.clone(),
            stores.store.clone(),
            stores.checkpoints.clone(),
            built.limiter.clone(),
        );
        tracing::info!(stream = %source.info().stream, preset = %preset, batch_size, ?mode, dry_run = args.dry_run, "starting run");
        let report = engine.run(&target, &options).await?;
        print_run_summary(&report);
        let code = match report.status {
            RunStatus::Completed => ExitCode::Success,
            RunStatus::Partial => ExitCode::Partial,
            RunStatus::Cancelled => ExitCode::Cancelled,
            RunStatus::Failed | RunStatus::InProgress => ExitCode::Failure,
        };
        if code != ExitCode::Success && worst == ExitCode::Success {
            worst = code;
        }
        if report.status == RunStatus::Cancelled {
            break;
        }
    }
    Ok(worst)
}

// Days per batch from the plan of the preset: a batch should take about the
// preset's target batch duration at the paced rate.
fn planned_batch_size(
    source: &dyn Source,
    target: &Target,
    built: &BuiltSources,
    preset: &Preset,
) -> Result<u32, CliError> {
    let info = source.info();
    let units = target.unit_count().max(1);
    let workload = plan::Workload::PerItem {
        items: units,
        requests_per_item: info.requests_per_unit.max(0.01),
    };
    let p = plan::plan(&built.documented_limits, &workload, preset)?;
    Ok(p.batch_size_nonzero().get())
}

fn print_run_summary(r: &RunReport) {
    println!(
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
    );
    for e in &r.errors {
        println!("  error: {e}");
    }
    if r.dry_run {
        println!("  (dry run: nothing was written)");
    }
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
    eprintln!(
        "waiting until {} ({}) to start",
        start.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z"),
        progress::human_duration(wait)
    );
    tracing::info!(start_at = %start.to_rfc3339(), "waiting for the start time");
    tokio::select! {
        _ = cancel.cancelled() => Err(()),
        _ = tokio::time::sleep(wait) => Ok(()),
    }
}

async fn status_command(settings: &Settings, args: &TargetArgs) -> Result<ExitCode, CliError> {
    let kind = source_kind(settings, args)?;
    let tz = settings.tz_of(kind)?;
    let target = sources::target(kind, settings, args, tz, SyncMode::Full)?;
    let streams = sources::streams(kind, settings, args)?;
    let stores = stores::open(settings).await?;
    for stream in &streams {
        let coverage = stores.checkpoints.coverage(stream).await?;
        println!("{stream}");
        match &target {
            Target::Days { range, .. } => {
                let summary = coverage.days.coverage(*range);
                print!("{}", render::coverage("Historical sync", &summary));
                print!(
                    "{}",
                    render::calendar(&summary, &|d| coverage.days.contains(d))
                );
            }
            _ => {
                // Client ids come from the source; the store knows which it has.
                println!("Client ids stored: {}", coverage.keys.len());
            }
        }
        let runs = stores.checkpoints.runs(Some(stream), 5).await?;
        println!("Last runs:");
        print!("{}", render::runs_table(&runs));
        println!();
    }
    Ok(ExitCode::Success)
}

async fn history_command(settings: &Settings, args: HistoryArgs) -> Result<ExitCode, CliError> {
    let stores = stores::open(settings).await?;
    match args.show {
        None => {
            let runs = stores.checkpoints.runs(None, args.limit).await?;
            print!("{}", render::runs_table(&runs));
        }
        Some(HistoryCommand::Show { run, limit }) => {
            let id = RunId(run.clone());
            let Some(report) = stores.checkpoints.run(&id).await? else {
                return Err(CliError::config(format!(
                    "no run {run:?}: `sync-cli history` lists the runs"
                )));
            };
            let changes = stores.checkpoints.run_changes(&id).await?;
            print!("{}", render::run_detail(&report, &changes, limit));
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
    let built = sources::build(kind, settings, args, 1.0)?;
    let stores = stores::open(settings).await?;
    let mut mismatched_total = 0usize;
    for source in &built.sources {
        let stream = source.info().stream;
        let ctx = sync_core::FetchContext::new(stream.clone(), built.limiter.clone())
            .with_store(stores.store.clone());
        source.authenticate(&ctx).await?;
        let Some(at_source) = source.day_counts(range, &ctx).await? else {
            return Err(CliError::config(format!(
                "{stream}: this source cannot report per-day counts"
            )));
        };
        let stored = stores.store.day_counts(&stream, range).await?;
        let mut mismatched = Vec::new();
        for day in range.iter() {
            let (a, b) = (
                at_source.get(&day).copied().unwrap_or(0),
                stored.get(&day).copied().unwrap_or(0),
            );
            if a != b {
                mismatched.push((day, a, b));
            }
        }
        println!(
            "{stream}: {} days checked, {} differ ({} requests made)",
            range.len(),
            mismatched.len(),
            ctx.meter().requests()
        );
        if !mismatched.is_empty() {
            println!("  {:<12} {:>8} {:>8}", "DAY", "SOURCE", "STORED");
            for (day, a, b) in &mismatched {
                println!("  {:<12} {a:>8} {b:>8}", day.to_string());
            }
        }
        tracing::info!(stream = %stream, days = range.len(), mismatched = mismatched.len(), "verify finished");
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
            print!("{text}");
        }
        ConfigAction::Presets => {
            println!(
                "{:<13} {:>11} {:>14} {:>14} {:>9}",
                "PRESET", "UTILIZATION", "BATCH PAUSE", "BATCH LENGTH", "START AT"
            );
            for p in Preset::ALL {
                let s = p.settings();
                println!(
                    "{:<13} {:>10.0}% {:>14} {:>14} {:>9}",
                    p.to_string(),
                    s.utilization * 100.0,
                    progress::human_duration(s.batch_interval),
                    progress::human_duration(s.target_batch_duration),
                    s.start_at
                        .map(|t| t.format("%H:%M").to_string())
                        .unwrap_or_else(|| "now".into())
                );
            }
            println!("(current: {})", settings.preset);
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
            println!("preset {p} written to {}", path.display());
        }
    }
    Ok(ExitCode::Success)
}

async fn plan_command(settings: &Settings, args: PlanArgs) -> Result<ExitCode, CliError> {
    let kind = source_kind(settings, &args.target)?;
    let built_limits = sources::documented_limits(kind, settings);
    let limits = sync_core::RateLimits {
        per_second: args.per_second.or(built_limits.per_second),
        per_minute: args.per_minute.or(built_limits.per_minute),
        min_spacing: built_limits.min_spacing,
    };
    let strategies = sources::plan_strategies(kind, settings, &args).await?;
    let preset = preset(&settings.preset)?;
    let comparison = plan::compare_strategies(&limits, &preset, &strategies)?;
    let cheapest = &strategies[comparison.cheapest_index];
    println!("Limits: {}", describe_limits(&limits));
    println!("Ways of fetching (at preset {preset}):");
    for (i, e) in comparison.estimates.iter().enumerate() {
        println!(
            "  {} {:<32} {:>8} requests  ETA {}",
            if i == comparison.cheapest_index {
                "*"
            } else {
                " "
            },
            e.name,
            e.requests,
            progress::human_duration(e.eta)
        );
    }
    println!(
        "Cheaper: {} ({} requests)",
        comparison.cheapest().name,
        comparison.cheapest().requests
    );
    println!();
    let plans = plan::plan_all(&limits, &cheapest.workload)?;
    println!(
        "{:<13} {:>9} {:>10} {:>8} {:>8} {:>11} {:>10} {:>7} {:>7}",
        "PRESET", "REQUESTS", "PACE", "BATCH", "BATCHES", "INTERVAL", "ETA", "BUDGET", "RISK"
    );
    for p in &plans {
        println!(
            "{:<13} {:>9} {:>10} {:>8} {:>8} {:>11} {:>10} {:>6.0}% {:>7}",
            p.preset.name(),
            p.requests,
            p.rate_per_minute
                .map(|r| format!("{r:.0}/min"))
                .unwrap_or_else(|| "unlimited".into()),
            p.batch_size,
            p.batches,
            progress::human_duration(p.batch_interval),
            progress::human_duration(p.eta),
            p.budget_use.unwrap_or(0.0) * 100.0,
            p.risk.to_string()
        );
    }
    let recommended = plan::recommend(&limits, &cheapest.workload)?;
    println!("Recommended preset: {recommended}");
    Ok(ExitCode::Success)
}

fn describe_limits(l: &sync_core::RateLimits) -> String {
    let mut parts = Vec::new();
    if let Some(n) = l.per_second {
        parts.push(format!("{n}/s"));
    }
    if let Some(n) = l.per_minute {
        parts.push(format!("{n}/min"));
    }
    if let Some(d) = l.min_spacing {
        parts.push(format!("{} between requests", progress::human_duration(d)));
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}
