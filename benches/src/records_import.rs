//! A YClients records import as a new user runs it, against the project's
//! simulator at the documented limits (5/s, 200/min; 1,000 clients, 20,000
//! records over 730 days), with the defaults a user gets (windows sized by
//! density, the pipeline, the balanced preset), at 0 ms and 400 ms of
//! latency per answer. Requests, 429s and limit breaches are counted at the
//! simulator.
//!
//! Figures:
//! 1. requests of a full import against `1.1 × (ceil(records / 200) + 3)`,
//!    and its wall time against the least time the limits allow for those
//!    requests (the limiter's schedule replayed at the preset's share, as
//!    `sync_core::plan` does);
//! 2. SIGKILL of `sync-cli run` at a random moment past half of the run:
//!    days covered (each checked exact against the simulator), then the
//!    resumed run: exact, and the windows it redid against those in flight;
//! 3. `plan`'s requests against the run's, for each preset;
//! 4. at 2/s and 60/min with occasional 429s and no `Retry-After`: the
//!    share of the allowed rate the run reaches over its length.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde_json::Value;
use sync_core::plan::{plan, Preset, Workload};
use sync_core::{
    Budget, CheckpointStore, Engine, ExistingQuery, RateLimiter, RateLimits, RunReport, Secret,
    Store, SyncOptions, Target,
};
use sync_sim::yclients::{
    Faults, Latency, RetryAfter, RunningYclientsSim, SimLimits, YclientsSim, YclientsSimConfig,
};
use sync_source_yclients::{sources_for_companies, YclientsConfig, LIMITS};
use sync_store_sqlite::SqliteStore;

use crate::report::Row;
use crate::BoxError;

const PAGE: u64 = 200;
/// How to run this benchmark.
pub const COMMAND: &str =
    "cargo build --release -p sync-cli && cargo run --release -p sync-benches --bin records_import";

/// Runs every scenario; prints the figures and returns the table's rows.
pub async fn run() -> Result<Vec<Row>, BoxError> {
    let mut rows = Vec::new();
    for latency_ms in [0u64, 400] {
        rows.extend(import(latency_ms, Preset::Balanced).await?);
        rows.extend(import(latency_ms, Preset::Aggressive).await?);
    }
    rows.extend(kill_and_resume().await?);
    rows.extend(plan_is_the_run().await?);
    rows.extend(recovery_from_429().await?);
    Ok(rows)
}

fn sim_config(latency_ms: u64) -> YclientsSimConfig {
    YclientsSimConfig {
        latency: if latency_ms == 0 {
            Latency::None
        } else {
            Latency::fixed_ms(latency_ms)
        },
        limits: SimLimits::DOCUMENTED,
        ..YclientsSimConfig::default()
    }
}

fn yclients_config(sim: &RunningYclientsSim) -> Result<YclientsConfig, BoxError> {
    let c = sim.config();
    let config = YclientsConfig::new(Secret::new(c.partner_token.clone()), c.companies.clone())
        .with_base_url(&sim.base_url())?
        .with_login(c.login.clone(), Secret::new(c.password.clone()));
    Ok(YclientsConfig { tz: c.tz, ..config })
}

fn target(sim: &RunningYclientsSim) -> Result<Target, BoxError> {
    let c = sim.config();
    Ok(Target::days(c.first_day(), c.end_date, c.tz)?)
}

/// An engine over the sim's first company's records, a fresh SQLite file in
/// `dir`, and a budget at `preset`'s share of `limits`.
async fn engine(
    sim: &RunningYclientsSim,
    dir: &Path,
    limits: RateLimits,
    preset: Preset,
) -> Result<(Engine, Arc<SqliteStore>), BoxError> {
    let store = Arc::new(SqliteStore::open(dir.join("sync.db")).await?);
    let company = sources_for_companies(&yclients_config(sim)?)?
        .into_iter()
        .next()
        .ok_or("no company")?;
    let budget: Arc<dyn Budget> = Arc::new(RateLimiter::new(
        limits.scaled(preset.settings().utilization),
    ));
    let engine = Engine::new(
        company.records.clone(),
        store.clone(),
        store.clone(),
        budget,
    )
    .with_session(company.session.clone());
    Ok((engine, store))
}

/// The least time `requests` take under `limits` at `preset` (first grant
/// to last), from the limiter's own schedule.
fn least_time(limits: &RateLimits, requests: u64, preset: &Preset) -> Result<Duration, BoxError> {
    let workload = Workload::PerItem {
        items: requests.max(1),
        requests_per_item: 1.0,
    };
    Ok(plan(limits, &workload, preset)?.eta)
}

async fn import(latency_ms: u64, preset: Preset) -> Result<Vec<Row>, BoxError> {
    let sim = YclientsSim::start(sim_config(latency_ms)).await?;
    let dir = tempfile::tempdir()?;
    let (engine, store) = engine(&sim, dir.path(), LIMITS, preset).await?;
    let options = SyncOptions::builder().pace(&preset.settings()).build();
    let started = Instant::now();
    let report = engine.run(&target(&sim)?, &options).await?;
    let wall = started.elapsed();
    let stats = sim.stats();
    let records = sim.records(101).len() as u64;
    let bound = 1.1 * (records.div_ceil(PAGE) + 3) as f64;
    let least = least_time(&LIMITS, stats.requests, &preset)?;
    let ratio = wall.as_secs_f64() / least.as_secs_f64().max(1e-9);
    let exact = store_equals_sim(&sim, store.as_ref(), &target(&sim)?).await?;
    println!(
        "import, {latency_ms} ms latency, {preset}: {} requests at the simulator (the run says {}; bound {bound:.1}), {} batches, {:.1} s; least time for those requests at {preset}: {:.1} s, ratio {ratio:.3}; 429s {}, breaches {}; store exact: {exact}",
        stats.requests,
        report.requests,
        report.batches_done,
        wall.as_secs_f64(),
        least.as_secs_f64(),
        stats.responses_429,
        stats.limit_breaches,
    );
    sim.shutdown().await;
    let label = format!("{latency_ms} ms, {preset}");
    Ok(vec![
        Row::checked(
            format!("records import requests ({label})"),
            format!("<= {bound:.1}"),
            format!("{} (the run counted {})", stats.requests, report.requests),
            stats.requests as f64 <= bound && stats.requests == report.requests,
            COMMAND,
        ),
        Row::checked(
            format!("records import wall / least time ({label})"),
            "<= 1.10",
            format!(
                "{ratio:.3} ({:.1} s / {:.1} s)",
                wall.as_secs_f64(),
                least.as_secs_f64()
            ),
            ratio <= 1.10,
            COMMAND,
        ),
        Row::checked(
            format!("records import 429s / breaches ({label})"),
            "0 / 0",
            format!("{} / {}", stats.responses_429, stats.limit_breaches),
            stats.responses_429 == 0 && stats.limit_breaches == 0 && exact,
            COMMAND,
        ),
    ])
}

/// Whether the store holds exactly the simulator's records of the covered
/// days of `target` (payload, deleted flag, day). Records of days not
/// covered yet (the earlier parts of a large window in flight) must be the
/// simulator's too.
async fn store_equals_sim(
    sim: &RunningYclientsSim,
    store: &SqliteStore,
    target: &Target,
) -> Result<bool, BoxError> {
    let stream = sync_source_yclients::YclientsRecords::stream_id(101);
    let covered = store.coverage(&stream).await?;
    let range = target.day_range().ok_or("a day target")?;
    let tz = sim.config().tz;
    let mut at_sim: BTreeMap<String, (Value, NaiveDate)> = BTreeMap::new();
    for r in sim.records(101) {
        let record = sync_source_yclients::model::record_from_json(r.clone(), tz)?;
        if let sync_core::Unit::Day(day) = record.unit {
            at_sim.insert(record.external_id.clone(), (r, day));
        }
    }
    let stored = store
        .existing(
            &stream,
            &ExistingQuery::InDays {
                entity: "record".to_string(),
                range,
            },
        )
        .await?;
    let of_covered_days = |day: &NaiveDate| covered.days.contains(*day);
    let want: BTreeSet<&str> = at_sim
        .iter()
        .filter(|(_, (_, day))| of_covered_days(day))
        .map(|(id, _)| id.as_str())
        .collect();
    let have: BTreeSet<&str> = stored
        .iter()
        .filter(|s| matches!(s.unit, sync_core::Unit::Day(day) if of_covered_days(&day)))
        .map(|s| s.external_id.as_str())
        .collect();
    if have != want {
        println!(
            "  store holds {} records of covered days, the simulator {}",
            have.len(),
            want.len()
        );
        return Ok(false);
    }
    Ok(stored.iter().all(|s| {
        at_sim.get(&s.external_id).is_some_and(|(payload, day)| {
            &s.payload == payload && s.unit == sync_core::Unit::Day(*day)
        })
    }))
}

fn sync_cli() -> Result<PathBuf, BoxError> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or("no exe dir")?;
    let cli = dir.join("sync-cli");
    if !cli.exists() {
        return Err(format!(
            "{} not found: build it first with `cargo build --release -p sync-cli`",
            cli.display()
        )
        .into());
    }
    Ok(cli)
}

fn cli_run(cli: &Path, sim: &RunningYclientsSim, dir: &Path) -> std::process::Command {
    let c = sim.config();
    let mut cmd = std::process::Command::new(cli);
    // The embedded store in `dir`, even when DATABASE_URL is set.
    cmd.current_dir(dir)
        .env_remove("DATABASE_URL")
        .args(["--no-progress", "run", "--source", "yclients"])
        .args([
            "--from",
            &c.first_day().to_string(),
            "--to",
            &c.end_date.to_string(),
        ])
        .env("YCLIENTS_BASE_URL", sim.base_url())
        .env("YCLIENTS_PARTNER_TOKEN", &c.partner_token)
        .env("YCLIENTS_LOGIN", &c.login)
        .env("YCLIENTS_PASSWORD", &c.password)
        .env("YCLIENTS_COMPANY_ID", "101")
        .env("YCLIENTS_TZ", c.tz.name())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// Batches started and stored in a run's JSON log lines.
fn batches_in_log(log: &Path, run: &str) -> Result<(BTreeSet<String>, BTreeSet<String>), BoxError> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let (mut started, mut stored) = (BTreeSet::new(), BTreeSet::new());
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let fields = &v["fields"];
        if fields["run_id"].as_str() != Some(run) && v["span"]["run_id"].as_str() != Some(run) {
            continue;
        }
        let span = fields["span"].as_str().unwrap_or_default().to_string();
        match fields["message"].as_str() {
            Some("batch started") => {
                started.insert(span);
            }
            Some("batch stored") => {
                stored.insert(span);
            }
            _ => {}
        }
    }
    Ok((started, stored))
}

async fn kill_and_resume() -> Result<Vec<Row>, BoxError> {
    let cli = sync_cli()?;
    let latency_ms = 400;
    // How long an uninterrupted run takes, to kill past its half.
    let clean = {
        let sim = YclientsSim::start(sim_config(latency_ms)).await?;
        let dir = tempfile::tempdir()?;
        let started = Instant::now();
        let status = cli_run(&cli, &sim, dir.path()).status()?;
        let took = started.elapsed();
        let requests = sim.stats().requests;
        sim.shutdown().await;
        if !status.success() {
            return Err(format!("the clean run failed: {status}").into());
        }
        (took, requests)
    };
    let sim = YclientsSim::start(sim_config(latency_ms)).await?;
    let dir = tempfile::tempdir()?;
    let seed: u64 = rand_seed();
    let fraction = 0.5 + (seed % 45) as f64 / 100.0; // 0.50 .. 0.94
    let kill_after = clean.0.mul_f64(fraction);
    let mut child = cli_run(&cli, &sim, dir.path()).spawn()?;
    tokio::time::sleep(kill_after).await;
    child.kill()?;
    child.wait()?;
    let killed_requests = sim.stats().requests;

    let store = SqliteStore::open(dir.path().join("data/sync.db")).await?;
    let stream = sync_source_yclients::YclientsRecords::stream_id(101);
    let target = target(&sim)?;
    let covered = target.coverage(&store.coverage(&stream).await?);
    let covered_share = covered.covered() as f64 / covered.total() as f64;
    let exact_after_kill = store_equals_sim(&sim, &store, &target).await?;
    let killed_run = store.runs(Some(&stream), 1).await?.into_iter().next();
    store.close().await;
    let (started, stored) = match &killed_run {
        Some(r) => batches_in_log(&dir.path().join("logs/sync.log"), &r.id.0)?,
        None => Default::default(),
    };
    let in_flight: BTreeSet<String> = started.difference(&stored).cloned().collect();

    let status = cli_run(&cli, &sim, dir.path()).status()?;
    let store = SqliteStore::open(dir.path().join("data/sync.db")).await?;
    let resumed: Option<RunReport> = store.runs(Some(&stream), 1).await?.into_iter().next();
    let exact = status.success() && store_equals_sim(&sim, &store, &target).await?;
    let complete = target
        .coverage(&store.coverage(&stream).await?)
        .is_complete();
    let total_requests = sim.stats().requests;
    let resumed_batches = resumed.as_ref().map_or(0, |r| r.batches_done);
    // The windows the resumed run fetched again that the killed run had
    // started: the days of the windows in flight at the kill.
    println!(
        "kill at {:.0}% of a clean run ({:.1} s of {:.1} s): {:.1}% of days covered, exact: {exact_after_kill}; {} windows in flight were lost; the resumed run stored {resumed_batches} windows, exact: {exact}, complete: {complete}; requests {killed_requests} + {} = {total_requests} (a clean run: {})",
        fraction * 100.0,
        kill_after.as_secs_f64(),
        clean.0.as_secs_f64(),
        covered_share * 100.0,
        in_flight.len(),
        total_requests - killed_requests,
        clean.1,
    );
    store.close().await;
    sim.shutdown().await;
    Ok(vec![
        Row::checked(
            format!("SIGKILL at {:.0}% of the run: days covered", fraction * 100.0),
            ">= 40%, each exact",
            format!("{:.1}%, exact: {exact_after_kill}", covered_share * 100.0),
            covered_share >= 0.40 && exact_after_kill, COMMAND),
        Row::checked(
            "resumed run after the kill",
            "exact; redoes only the windows in flight",
            format!(
                "exact: {exact}; {} windows were in flight; requests {} in all against {} for a clean run",
                in_flight.len(),
                total_requests,
                clean.1
            ),
            exact && complete, COMMAND),
    ])
}

fn rand_seed() -> u64 {
    std::env::var("BENCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        })
}

async fn plan_is_the_run() -> Result<Vec<Row>, BoxError> {
    let mut rows = Vec::new();
    for preset in Preset::ALL {
        let sim = YclientsSim::start(sim_config(0)).await?;
        let dir = tempfile::tempdir()?;
        let (engine, _store) = engine(&sim, dir.path(), LIMITS, preset).await?;
        // The start time of the night preset is the CLI's business: the
        // engine runs at once.
        let options = SyncOptions::builder().pace(&preset.settings()).build();
        let planned = engine.plan(&target(&sim)?, &options).await?;
        sim.reset_stats();
        let report = engine.run(&target(&sim)?, &options).await?;
        let made = sim.stats().requests;
        let off = (planned.requests as f64 - made as f64).abs() / made.max(1) as f64;
        println!(
            "plan vs run, {preset}: plan {} requests in {} batches, the run made {made} in {} batches ({:+.1}%)",
            planned.requests,
            planned.batches,
            report.batches_done,
            off * 100.0
        );
        sim.shutdown().await;
        rows.push(Row::checked(
            format!("plan's requests vs the run's ({preset})"),
            "within 10%",
            format!(
                "{} planned, {made} made ({:.1}%)",
                planned.requests,
                off * 100.0
            ),
            off <= 0.10,
            COMMAND,
        ));
    }
    Ok(rows)
}

async fn recovery_from_429() -> Result<Vec<Row>, BoxError> {
    let limits = RateLimits::new(Some(2), Some(60));
    let sim = YclientsSim::start(YclientsSimConfig {
        limits: SimLimits {
            retry_after: RetryAfter::Never,
            ..SimLimits::new(limits.per_second, limits.per_minute)
        },
        faults: Faults {
            random_429_rate: 0.03,
            ..Faults::default()
        },
        ..sim_config(0)
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let preset = Preset::Aggressive;
    let (engine, _store) = engine(&sim, dir.path(), limits, preset).await?;
    let options = SyncOptions::builder().pace(&preset.settings()).build();
    let started = Instant::now();
    let report = engine.run(&target(&sim)?, &options).await?;
    let wall = started.elapsed();
    let stats = sim.stats();
    let least = least_time(&limits, stats.requests, &preset)?;
    let share = least.as_secs_f64() / wall.as_secs_f64().max(1e-9);
    println!(
        "429 recovery at 2/s and 60/min: {} requests, {} answered 429 (no Retry-After), {:.1} s against {:.1} s at the allowed rate: {:.1}% of it; run {}",
        stats.requests,
        stats.responses_429,
        wall.as_secs_f64(),
        least.as_secs_f64(),
        share * 100.0,
        report.status
    );
    sim.shutdown().await;
    Ok(vec![Row::checked(
        "rate reached with occasional 429s (2/s, 60/min)",
        ">= 85%",
        format!(
            "{:.1}% ({} requests, {} 429s)",
            share * 100.0,
            stats.requests,
            stats.responses_429
        ),
        share >= 0.85,
        COMMAND,
    )])
}
