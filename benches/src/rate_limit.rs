//! Close to the rate limit: how near the wall time of a rate-limited sync
//! comes to the least time the limits allow.
//!
//! The YClients simulator enforces 20 requests a second and 600 a minute
//! (the documented 5/s and 200/min scaled up for speed) and counts every
//! request arriving while a window is full as a breach (answered 429), per
//! window, and the peaks of arrivals in any one second and any sixty. The
//! real records source pages `GET /records` five records at a time over
//! 10,500 records in two years, so a sync makes more than 2,000 requests;
//! the engine stores them in SQLite. The run is the default one a user
//! gets: the source's own windows (sized by density to fill whole pages,
//! at most 5 pages), several requests in flight as the engine chooses.
//! Two scenarios run at the same time, each against its own simulator and
//! limiter (they share nothing but the CPUs; at 10-20 requests a second
//! the CPU is nearly idle):
//!
//! - 100% of the limits (the aggressive preset: no pause);
//! - the balanced preset (80% of the limits, a 5 s pause after every 3
//!   minutes of work).
//!
//! Two minimums are reported for each: the simple one, `requests / sustained
//! rate` (10/s: 600 a minute, 8/s at 80%), and the exact one, the limiter's
//! own schedule replayed by `sync_core::plan::plan` for the requests the
//! simulator received at the scenario's preset (bursts of 20 a second until
//! 600 are out, then one minute window after another, each window held 2%
//! longer than the server's; the preset's pauses; the last, partial minute
//! ends early, so the exact minimum is shorter). The target (at most 1.05)
//! is checked against the exact minimum, the stricter of the two.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sync_core::plan::{plan, Preset, Workload};
use sync_core::{Engine, Order, RateLimiter, RateLimits, RunStatus, SyncOptions};
use sync_sim::yclients::{SimLimits, SimStats};
use sync_store_sqlite::SqliteStore;

use crate::report::Row;
use crate::sim::{self, SimSetup};
use crate::BoxError;

/// How to run this benchmark alone.
pub const COMMAND: &str = "cargo run --release -p sync-benches --bin rate_limit";

/// Records in the simulator.
pub const RECORDS: usize = 10_500;
/// Records per page: small, so that the sync makes many requests.
pub const PAGE_SIZE: u32 = 5;
/// The target: wall time at most this many times the minimum.
pub const TARGET_RATIO: f64 = 1.05;

/// The limits the simulator enforces (and the "documented" ones the
/// planner and the limiter start from).
pub fn sim_limits() -> SimLimits {
    SimLimits::new(Some(20), Some(600))
}

/// One way of running the same sync.
#[derive(Clone, Debug)]
struct Scenario {
    name: &'static str,
    preset: Preset,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "100% (aggressive), default windows",
            preset: Preset::Aggressive,
        },
        Scenario {
            name: "balanced (80%, 5 s pause), default windows",
            preset: Preset::Balanced,
        },
    ]
}

/// What one scenario measured.
#[derive(Clone, Debug)]
struct Outcome {
    scenario: Scenario,
    batches: u64,
    requests: u64,
    wall: Duration,
    /// `requests / sustained rate` at the scenario's utilization.
    simple_min: Duration,
    /// The limiter's schedule replayed at the scenario's utilization.
    exact_min: Duration,
    /// `requests / sustained rate` at 100% of the limits.
    full_rate_min: Duration,
    stats: SimStats,
    rate_limited: u64,
    retries: u64,
    stored: u64,
    expected: u64,
    status: RunStatus,
}

impl Outcome {
    fn ratio_exact(&self) -> f64 {
        ratio(self.wall, self.exact_min)
    }

    fn ratio_simple(&self) -> f64 {
        ratio(self.wall, self.simple_min)
    }

    fn clean(&self) -> bool {
        self.stats.limit_breaches == 0
            && self.stats.responses_429 == 0
            && self.rate_limited == 0
            && self.status == RunStatus::Completed
            && self.stored == self.expected
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// The limiter's least time for `requests` requests under `limits` at
/// `preset` (its utilization and pauses), from the first request to the
/// last, replayed by the planner.
fn exact_minimum(
    limits: &RateLimits,
    preset: &Preset,
    requests: u64,
) -> Result<Duration, BoxError> {
    let job = Workload::PerItem {
        items: requests,
        requests_per_item: 1.0,
    };
    Ok(plan(limits, &job, preset)?.eta)
}

fn simple_minimum(limits: &RateLimits, utilization: f64, requests: u64) -> Duration {
    let rate = limits
        .scaled(utilization)
        .sustained_rate()
        .unwrap_or(f64::INFINITY);
    Duration::from_secs_f64(requests as f64 / rate)
}

async fn run_scenario(scenario: Scenario) -> Result<Outcome, BoxError> {
    let setup = SimSetup::start(sim::config(RECORDS, 200, sim_limits()), PAGE_SIZE).await?;
    let documented = setup.limits();
    let settings = scenario.preset.settings();
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(dir.path().join("rate.db")).await?);
    let limiter = Arc::new(RateLimiter::new(documented.scaled(settings.utilization)));
    let engine = Engine::new(
        setup.sources.records.clone(),
        store.clone(),
        store.clone(),
        limiter,
    );
    let options = SyncOptions::builder()
        .order(Order::NewestFirst)
        .pace(&settings)
        .build();
    let started = Instant::now();
    let report = engine.run(&setup.target()?, &options).await?;
    let wall = started.elapsed();
    let stats = setup.sim.stats();
    let requests = stats.requests;
    let outcome = Outcome {
        batches: report.batches_done + report.batches_failed,
        requests,
        wall,
        simple_min: simple_minimum(&documented, settings.utilization, requests),
        exact_min: exact_minimum(&documented, &scenario.preset, requests)?,
        full_rate_min: simple_minimum(&documented, 1.0, requests),
        rate_limited: report.rate_limited,
        retries: report.retries,
        stored: report.counts.total(),
        expected: setup.sim.records(sim::COMPANY).len() as u64,
        status: report.status,
        stats,
        scenario,
    };
    store.close().await;
    setup.sim.shutdown().await;
    println!(
        "  done: {} — {} requests in {:.1} s",
        outcome.scenario.name,
        outcome.requests,
        outcome.wall.as_secs_f64()
    );
    Ok(outcome)
}

/// Runs the benchmark, prints its figures and returns its rows.
pub fn run() -> Result<Vec<Row>, BoxError> {
    crate::runtime()?.block_on(run_async())
}

async fn run_async() -> Result<Vec<Row>, BoxError> {
    let limits = sim_limits();
    println!(
        "rate limit: simulator at {}/s and {}/min, {RECORDS} records in pages of {PAGE_SIZE}, \
         SQLite store; {} scenarios at the same time (about 5 minutes)",
        limits.per_second.unwrap_or(0),
        limits.per_minute.unwrap_or(0),
        scenarios().len()
    );
    let tasks: Vec<_> = scenarios()
        .into_iter()
        .map(|s| tokio::spawn(run_scenario(s)))
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await??);
    }

    println!();
    println!(
        "{:<44} {:>7} {:>7} {:>8} {:>9} {:>9} {:>8} {:>8} {:>14} {:>5} {:>11}",
        "scenario",
        "batches",
        "reqs",
        "wall s",
        "N/rate s",
        "exact s",
        "/simple",
        "/exact",
        "breaches s/min",
        "429s",
        "peak s/min"
    );
    for o in &outcomes {
        let peaks = o.stats.max_peaks();
        println!(
            "{:<44} {:>7} {:>7} {:>8.1} {:>9.1} {:>9.1} {:>8.3} {:>8.3} {:>14} {:>5} {:>11}",
            o.scenario.name,
            o.batches,
            o.requests,
            o.wall.as_secs_f64(),
            o.simple_min.as_secs_f64(),
            o.exact_min.as_secs_f64(),
            o.ratio_simple(),
            o.ratio_exact(),
            format!(
                "{} ({}/{})",
                o.stats.limit_breaches, o.stats.breaches_per_second, o.stats.breaches_per_minute
            ),
            o.stats.responses_429,
            format!("{}/{}", peaks.per_second, peaks.per_minute)
        );
        if !o.clean() {
            println!(
                "    NOT CLEAN: status {}, stored {} of {}, {} 429s seen by the source, {} retries",
                o.status, o.stored, o.expected, o.rate_limited, o.retries
            );
        }
    }
    println!(
        "(/simple: wall / (requests / sustained rate); /exact: wall / the limiter's schedule \
         replayed at the preset; breaches: all (per second / per minute window), counted at the \
         simulator; peak: most arrivals in any 1 s / 60 s, limits {} / {})",
        limits.per_second.unwrap_or(0),
        limits.per_minute.unwrap_or(0)
    );

    let mut rows = Vec::new();
    for o in &outcomes {
        let full = o.scenario.preset.settings().utilization >= 1.0;
        if full {
            rows.push(Row::checked(
                format!("rate limit, {}: wall / exact minimum", o.scenario.name),
                format!("<= {TARGET_RATIO}"),
                format!(
                    "{:.3} ({} requests in {} batches, {:.1} s / {:.1} s; vs requests/rate {:.3})",
                    o.ratio_exact(),
                    o.requests,
                    o.batches,
                    o.wall.as_secs_f64(),
                    o.exact_min.as_secs_f64(),
                    o.ratio_simple()
                ),
                o.ratio_exact() <= TARGET_RATIO,
                COMMAND,
            ));
        } else {
            rows.push(Row::info(
                format!("rate limit, {}: wall / minimum", o.scenario.name),
                format!(
                    "{:.3} of the exact minimum at the preset, {:.3} of requests/rate at 80%, \
                     {:.3} of requests/rate at 100% ({} requests in {} batches, {:.1} s)",
                    o.ratio_exact(),
                    o.ratio_simple(),
                    ratio(o.wall, o.full_rate_min),
                    o.requests,
                    o.batches,
                    o.wall.as_secs_f64()
                ),
                COMMAND,
            ));
        }
        rows.push(Row::checked(
            format!("rate limit, {}: breaches / 429s", o.scenario.name),
            "0 / 0",
            format!(
                "{} / {} (per-second window {}, per-minute {}; peaks {} a second, {} a minute)",
                o.stats.limit_breaches,
                o.stats.responses_429,
                o.stats.breaches_per_second,
                o.stats.breaches_per_minute,
                o.stats.max_peaks().per_second,
                o.stats.max_peaks().per_minute
            ),
            o.clean(),
            COMMAND,
        ));
    }
    Ok(rows)
}
