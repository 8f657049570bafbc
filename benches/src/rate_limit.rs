//! Close to the rate limit: how near the wall time of a rate-limited sync
//! comes to the least time the limits allow.
//!
//! The YClients simulator enforces 20 requests a second and 600 a minute
//! (the documented 5/s and 200/min scaled up for speed) and counts every
//! request arriving while a window is full as a breach (answered 429). The
//! real records source pages `GET /records` five records at a time over
//! 10,500 records in two years, so a sync makes more than 2,000 requests;
//! the engine stores them in SQLite. Scenarios run at the same time, each
//! against its own simulator and limiter (they share nothing but the CPUs;
//! at 10-20 requests a second the CPU is nearly idle):
//!
//! - 100% of the limits (safety margin 100%, the aggressive preset) with the
//!   batch size the planner gives (as the CLI does);
//! - 100% of the limits in 1-day batches, two batches in flight (many small
//!   batches, each paying a commit);
//! - the balanced preset (80% of the limits, 5 s between batch starts,
//!   planner batch size).
//!
//! Two minimums are reported for each: the simple one, `requests / sustained
//! rate` (10/s: 600 a minute), and the exact one, the limiter's own schedule
//! replayed by `sync_core::plan` (bursts of 20 a second until 600 are out,
//! then one minute window after another; the last, partial minute ends
//! early, so the exact minimum is shorter). The target (at most 1.05) is
//! checked against the exact minimum, the stricter of the two.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sync_core::plan::{plan, PaceSettings, Preset, Workload};
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

/// How batches are sized.
#[derive(Clone, Copy, Debug)]
enum Batches {
    /// As the planner says for the preset (what the CLI does).
    Planned,
    /// This many days per batch.
    Days(u32),
}

/// One way of running the same sync.
#[derive(Clone, Debug)]
struct Scenario {
    name: &'static str,
    preset: Preset,
    batches: Batches,
    concurrency: usize,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "100% (aggressive), planned batches",
            preset: Preset::Aggressive,
            batches: Batches::Planned,
            concurrency: 1,
        },
        Scenario {
            name: "100%, 1-day batches, 2 in flight",
            preset: Preset::Aggressive,
            batches: Batches::Days(1),
            concurrency: 2,
        },
        Scenario {
            name: "balanced (80%, 5 s interval), planned batches",
            preset: Preset::Balanced,
            batches: Batches::Planned,
            concurrency: 1,
        },
    ]
}

/// What one scenario measured.
#[derive(Clone, Debug)]
struct Outcome {
    scenario: Scenario,
    batch_days: u32,
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
/// `utilization`, from the first request to the last, replayed by the
/// planner (one batch, no pause).
fn exact_minimum(
    limits: &RateLimits,
    utilization: f64,
    requests: u64,
) -> Result<Duration, BoxError> {
    let replay = PaceSettings {
        utilization,
        batch_interval: Duration::ZERO,
        target_batch_duration: Duration::from_secs(365 * 24 * 3600),
        start_at: None,
    };
    let job = Workload::PerItem {
        items: requests,
        requests_per_item: 1.0,
    };
    Ok(plan(limits, &job, &Preset::Custom(replay))?.eta)
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
    let range = setup.range()?;
    let batch_days = match scenario.batches {
        Batches::Days(n) => n,
        Batches::Planned => {
            let job = Workload::Paged {
                records: RECORDS as u64,
                page_size: PAGE_SIZE,
                windows: range.len(),
            };
            plan(&documented, &job, &scenario.preset)?
                .batch_size_nonzero()
                .get()
        }
    };
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(dir.path().join("rate.db")).await?);
    let limiter = Arc::new(RateLimiter::new(documented.scaled(settings.utilization)));
    let engine = Engine::new(
        setup.sources.records.clone(),
        store.clone(),
        store.clone(),
        limiter,
    );
    let options = SyncOptions {
        batch_size: NonZeroU32::new(batch_days).unwrap_or(NonZeroU32::MIN),
        order: Order::NewestFirst,
        interval: settings.batch_interval,
        concurrency: NonZeroUsize::new(scenario.concurrency).unwrap_or(NonZeroUsize::MIN),
        ..SyncOptions::default()
    };
    let started = Instant::now();
    let report = engine.run(&setup.target()?, &options).await?;
    let wall = started.elapsed();
    let stats = setup.sim.stats();
    let requests = stats.requests;
    let outcome = Outcome {
        batch_days,
        batches: report.batches_done + report.batches_failed,
        requests,
        wall,
        simple_min: simple_minimum(&documented, settings.utilization, requests),
        exact_min: exact_minimum(&documented, settings.utilization, requests)?,
        full_rate_min: simple_minimum(&documented, 1.0, requests),
        rate_limited: report.rate_limited,
        stored: report.counts.total(),
        expected: setup.sim.records(sim::COMPANY).len() as u64,
        status: report.status,
        stats,
        scenario,
    };
    store.close().await;
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
         SQLite store; {} scenarios at the same time (about 4 minutes)",
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
        "{:<48} {:>6} {:>7} {:>8} {:>9} {:>9} {:>8} {:>8} {:>9} {:>5}",
        "scenario",
        "batch",
        "reqs",
        "wall s",
        "N/rate s",
        "exact s",
        "/simple",
        "/exact",
        "breaches",
        "429s"
    );
    for o in &outcomes {
        println!(
            "{:<48} {:>5}d {:>7} {:>8.1} {:>9.1} {:>9.1} {:>8.3} {:>8.3} {:>9} {:>5}",
            o.scenario.name,
            o.batch_days,
            o.requests,
            o.wall.as_secs_f64(),
            o.simple_min.as_secs_f64(),
            o.exact_min.as_secs_f64(),
            o.ratio_simple(),
            o.ratio_exact(),
            o.stats.limit_breaches,
            o.stats.responses_429
        );
        if !o.clean() {
            println!(
                "    NOT CLEAN: status {}, stored {} of {}, {} 429s seen by the source",
                o.status, o.stored, o.expected, o.rate_limited
            );
        }
    }
    println!(
        "(/simple: wall / (requests / sustained rate); /exact: wall / the limiter's schedule \
         replayed; batches: {})",
        outcomes
            .iter()
            .map(|o| o.batches.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut rows = Vec::new();
    for o in &outcomes {
        let full = o.scenario.preset.settings().utilization >= 1.0;
        if full {
            rows.push(Row::checked(
                format!("rate limit, {}: wall / exact minimum", o.scenario.name),
                format!("<= {TARGET_RATIO}"),
                format!(
                    "{:.3} ({} requests, {:.1} s / {:.1} s; vs requests/rate {:.3})",
                    o.ratio_exact(),
                    o.requests,
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
                    "{:.3} of the exact minimum at 80%, {:.3} of requests/rate at 80%, \
                     {:.3} of requests/rate at 100% ({} requests, {:.1} s)",
                    o.ratio_exact(),
                    o.ratio_simple(),
                    ratio(o.wall, o.full_rate_min),
                    o.requests,
                    o.wall.as_secs_f64()
                ),
                COMMAND,
            ));
        }
        rows.push(Row::checked(
            format!("rate limit, {}: breaches / 429s", o.scenario.name),
            "0 / 0",
            format!("{} / {}", o.stats.limit_breaches, o.stats.responses_429),
            o.clean(),
            COMMAND,
        ));
    }
    Ok(rows)
}
