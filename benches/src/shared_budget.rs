//! The request budget kept in the store (`SharedBudget`), on a local
//! Postgres: how much of the documented YClients limit several syncs reach
//! together, what restarts cost it, and the latency it adds per request.
//!
//! - **Four at once**: four syncs of four companies (6,300 records each
//!   over 60 days: about 37 requests a company with the default windows)
//!   share one budget at 100% of the documented limits (the aggressive
//!   preset) against the simulator enforcing them (5/s, 200/min, 429
//!   without Retry-After, answers after 5-40 ms). Each sync stands for a
//!   process: its own thread and tokio runtime, its own store connection
//!   pool, sources and budget value; only the database is shared. The rate
//!   is `(n - 1) / (last arrival - first arrival)` at the simulator.
//! - **Restarts**: one company (12,000 records over 60 days) at the default
//!   (balanced) preset; the sync is cut ten times after 0.7-3.9 s by
//!   shutting its runtime down (its tasks dropped where they stand, its
//!   connections closed: what the database sees of a killed process), and
//!   started afresh; then a last run to the end. Breaches and 429s at the
//!   simulator; the store must hold every record once.
//! - **Added latency**: `Budget::acquire` of a `SharedBudget` (one
//!   transaction on the budget's row per acquire when requests come one at
//!   a time) against an in-process `RateLimiter`, both with limits high
//!   enough never to wait (100,000/s, 1,000,000/min), 2,000 acquires each,
//!   a fresh key every 200 (a budget at the documented 200/min keeps at
//!   most ~200 grants in its row: the row stays that size). The added
//!   latency is the difference of the 99th percentiles.
//!
//! The `sync-cli` binary's own figures (processes, SIGKILL) come from
//! `sync-cli/tests/shared_budget.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sync_core::plan::Preset;
use sync_core::{
    Budget, DayRange, Engine, ExistingQuery, RateLimiter, RateLimits, Secret, SharedBudget, Store,
    SyncOptions, Target,
};
use sync_sim::yclients::{Latency, RunningYclientsSim, SimLimits, YclientsSim, YclientsSimConfig};
use sync_source_yclients::{sources_for_companies, YclientsConfig, YclientsRecords};
use sync_store_postgres::PostgresStore;

use crate::pg::{self, FreshDb};
use crate::report::Row;
use crate::BoxError;

/// How to run this benchmark alone.
pub const COMMAND: &str =
    "scripts/with-postgres.sh cargo run --release -p sync-benches --bin shared_budget";

/// The documented limits.
const PER_SECOND: u32 = 5;
const PER_MINUTE: u32 = 200;
/// Cut points of the restart scenario, in milliseconds after each start.
const CUTS_MS: [u64; 10] = [
    700, 1_900, 1_200, 3_100, 900, 2_500, 1_600, 3_900, 1_100, 2_200,
];
/// Acquires timed per budget, and keys (fresh budgets) per kind.
const ACQUIRES_PER_KEY: usize = 200;
const KEYS: usize = 10;

async fn simulator(companies: &[u64], records: usize) -> Result<RunningYclientsSim, BoxError> {
    Ok(YclientsSim::start(YclientsSimConfig {
        seed: 15,
        companies: companies.to_vec(),
        clients: 20,
        records,
        days: 60,
        limits: SimLimits::DOCUMENTED,
        latency: Latency::uniform_ms(5, 40),
        ..YclientsSimConfig::default()
    })
    .await?)
}

fn range(sim: &RunningYclientsSim) -> Result<DayRange, BoxError> {
    let c = sim.config();
    DayRange::new(c.first_day(), c.end_date).ok_or_else(|| "empty day range".into())
}

/// One sync of `company`, as a process would run it: sources, store pool
/// and budget of its own, on the runtime it is called on.
async fn sync_company(
    base_url: &str,
    sim: &YclientsSimConfig,
    db_url: &str,
    company: u64,
    preset: Preset,
) -> Result<(), BoxError> {
    let mut config = YclientsConfig::new(Secret::new(sim.partner_token.clone()), vec![company])
        .with_base_url(base_url)?
        .with_user_token(Secret::new(sim.user_token.clone()));
    config.tz = sim.tz;
    let key = config.budget_key();
    let sources = sources_for_companies(&config)?
        .into_iter()
        .next()
        .ok_or("no company source")?;
    let store = Arc::new(PostgresStore::connect(db_url).await?);
    let pace = preset.settings();
    let limits = RateLimits::new(Some(PER_SECOND), Some(PER_MINUTE)).scaled(pace.utilization);
    let budget: Arc<dyn Budget> = Arc::new(SharedBudget::new(store.clone(), key, limits));
    let engine = Engine::new(
        sources.records.clone(),
        store.clone(),
        store.clone(),
        budget,
    )
    .with_session(sources.session.clone());
    let target = Target::Days {
        range: DayRange::new(sim.first_day(), sim.end_date).ok_or("empty day range")?,
        tz: sim.tz,
    };
    let options = SyncOptions::builder().pace(&pace).build();
    let report = engine.run(&target, &options).await?;
    store.close().await;
    if !report.errors.is_empty() {
        return Err(format!("company {company}: {:?}", report.errors).into());
    }
    Ok(())
}

/// A thread with a runtime of its own, as a process has.
fn process(
    base_url: String,
    sim: YclientsSimConfig,
    db_url: String,
    company: u64,
    preset: Preset,
) -> std::thread::JoinHandle<Result<(), String>> {
    std::thread::spawn(move || {
        let rt = crate::runtime().map_err(|e| e.to_string())?;
        rt.block_on(sync_company(&base_url, &sim, &db_url, company, preset))
            .map_err(|e| e.to_string())
    })
}

/// Arrival times at the simulator, sorted, and the most in any window.
fn peaks(sim: &RunningYclientsSim) -> (Vec<Duration>, usize, usize) {
    let mut t: Vec<Duration> = sim.arrivals().into_iter().map(|a| a.at).collect();
    t.sort();
    let most = |len: Duration| {
        let mut most = 0;
        let mut j = 0;
        for i in 0..t.len() {
            while j < t.len() && t[j] < t[i] + len {
                j += 1;
            }
            most = most.max(j - i);
        }
        most
    };
    let (s, m) = (most(Duration::from_secs(1)), most(Duration::from_secs(60)));
    (t, s, m)
}

async fn stored_records(
    db_url: &str,
    sim: &RunningYclientsSim,
    company: u64,
) -> Result<usize, BoxError> {
    let store = PostgresStore::connect(db_url).await?;
    let rows = store
        .existing(
            &YclientsRecords::stream_id(company),
            &ExistingQuery::InDays {
                entity: "record".into(),
                range: range(sim)?,
            },
        )
        .await?;
    store.close().await;
    let mut ids: Vec<String> = rows.into_iter().map(|r| r.external_id).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    let mut want: Vec<String> = sim
        .records(company)
        .into_iter()
        .map(|v| v["id"].to_string())
        .collect();
    want.sort();
    if ids.len() != n || ids != want {
        return Err(format!(
            "company {company}: {n} rows stored ({} distinct), the simulator has {}",
            ids.len(),
            want.len()
        )
        .into());
    }
    Ok(n)
}

fn four_at_once(rt: &tokio::runtime::Runtime, server: &str) -> Result<Vec<Row>, BoxError> {
    let db = rt.block_on(FreshDb::create_on(server, "bench_budget"))?;
    let companies = [101, 102, 103, 104];
    let sim = rt.block_on(simulator(&companies, 6_300))?;
    let started = Instant::now();
    let handles: Vec<_> = companies
        .iter()
        .map(|&c| {
            process(
                sim.base_url(),
                sim.config().clone(),
                db.url().to_string(),
                c,
                Preset::Aggressive,
            )
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "a sync panicked")??;
    }
    let wall = started.elapsed();
    let s = sim.stats();
    let (t, per_s, per_min) = peaks(&sim);
    let span = t
        .last()
        .zip(t.first())
        .map_or(0.0, |(l, f)| (*l - *f).as_secs_f64());
    let rate = (t.len().saturating_sub(1)) as f64 / span.max(f64::EPSILON);
    let share = rate / f64::from(PER_SECOND);
    let mut stored = 0;
    for c in companies {
        stored += rt.block_on(stored_records(db.url(), &sim, c))?;
    }
    println!(
        "four at once: {} requests in {span:.1} s busy ({:.1} s wall), {rate:.2}/s = {share:.3} \
         of 5/s; peaks {per_s}/s, {per_min}/min; breaches {} (per second {}, per minute {}), \
         429s {}; {stored} records stored, each once",
        s.requests,
        wall.as_secs_f64(),
        s.limit_breaches,
        s.breaches_per_second,
        s.breaches_per_minute,
        s.responses_429
    );
    rt.block_on(db.drop_db())?;
    Ok(vec![
        Row::checked(
            "shared budget: 4 syncs at once (own runtimes, pools, budgets; one Postgres), 100%: rate / limit",
            ">= 0.9",
            format!("{share:.3} ({rate:.2}/s, {} requests in {span:.1} s)", s.requests),
            share >= 0.9,
            COMMAND,
        ),
        Row::checked(
            "shared budget: 4 syncs at once: breaches / 429s at the server",
            "0 / 0",
            format!(
                "{} / {} (peaks {per_s}/s, {per_min}/min)",
                s.limit_breaches, s.responses_429
            ),
            s.limit_breaches == 0 && s.responses_429 == 0,
            COMMAND,
        ),
    ])
}

fn restarts(rt: &tokio::runtime::Runtime, server: &str) -> Result<Vec<Row>, BoxError> {
    let db = rt.block_on(FreshDb::create_on(server, "bench_budget"))?;
    let company = 101;
    let sim = rt.block_on(simulator(&[company], 12_000))?;
    let started = Instant::now();
    for cut in CUTS_MS {
        let life = crate::runtime()?;
        let (url, cfg, db_url) = (sim.base_url(), sim.config().clone(), db.url().to_string());
        let task = life.spawn(async move {
            sync_company(&url, &cfg, &db_url, company, Preset::Balanced)
                .await
                .map_err(|e| e.to_string())
        });
        std::thread::sleep(Duration::from_millis(cut));
        if task.is_finished() {
            // Everything stored already: the next lives re-read nothing.
            life.block_on(task)??;
        }
        // Cut: every task dropped where it stands.
        life.shutdown_background();
    }
    let cutting = started.elapsed();
    let before = sim.stats().requests;
    // The lease of a cut run goes with its connection; give the server a
    // moment to see it closed.
    std::thread::sleep(Duration::from_millis(200));
    process(
        sim.base_url(),
        sim.config().clone(),
        db.url().to_string(),
        company,
        Preset::Balanced,
    )
    .join()
    .map_err(|_| "the last sync panicked")??;
    let s = sim.stats();
    let (_, per_s, per_min) = peaks(&sim);
    let stored = rt.block_on(stored_records(db.url(), &sim, company))?;
    println!(
        "restarts: 10 cuts at {CUTS_MS:?} ms in {:.1} s, then the last run: {} requests ({} in \
         the last run), {:.1} s in all; peaks {per_s}/s, {per_min}/min; breaches {} (per second \
         {}, per minute {}), 429s {}; {stored} records stored, each once (the simulator has {})",
        cutting.as_secs_f64(),
        s.requests,
        s.requests - before,
        started.elapsed().as_secs_f64(),
        s.limit_breaches,
        s.breaches_per_second,
        s.breaches_per_minute,
        s.responses_429,
        sim.records(company).len()
    );
    rt.block_on(db.drop_db())?;
    Ok(vec![
        Row::checked(
            "shared budget: 10 cuts and restarts, balanced: breaches / 429s at the server",
            "0 / 0",
            format!(
                "{} / {} ({} requests; peaks {per_s}/s, {per_min}/min)",
                s.limit_breaches, s.responses_429, s.requests
            ),
            s.limit_breaches == 0 && s.responses_429 == 0,
            COMMAND,
        ),
        Row::checked(
            "shared budget: 10 cuts and restarts: records stored once",
            "= simulator",
            format!("{stored} of {}", sim.records(company).len()),
            stored == sim.records(company).len(),
            COMMAND,
        ),
    ])
}

/// Percentile `p` (0-100) of sorted `xs`.
fn percentile(xs: &[Duration], p: f64) -> Duration {
    if xs.is_empty() {
        return Duration::ZERO;
    }
    let i = ((p / 100.0) * (xs.len() - 1) as f64).round() as usize;
    xs[i.min(xs.len() - 1)]
}

async fn time_acquires(budgets: Vec<Arc<dyn Budget>>) -> Result<Vec<Duration>, BoxError> {
    let mut times = Vec::with_capacity(budgets.len() * ACQUIRES_PER_KEY);
    for budget in budgets {
        for _ in 0..ACQUIRES_PER_KEY {
            let t = Instant::now();
            budget.acquire().await?;
            times.push(t.elapsed());
        }
    }
    times.sort();
    Ok(times)
}

fn added_latency(rt: &tokio::runtime::Runtime, server: &str) -> Result<Vec<Row>, BoxError> {
    let db = rt.block_on(FreshDb::create_on(server, "bench_budget"))?;
    let limits = RateLimits::new(Some(100_000), Some(1_000_000));
    let (shared, local) = rt.block_on(async {
        let store = Arc::new(PostgresStore::connect(db.url()).await?);
        // Warm the pool and the table.
        SharedBudget::new(store.clone(), "warm-up", limits)
            .acquire()
            .await?;
        let shared: Vec<Arc<dyn Budget>> = (0..KEYS)
            .map(|k| {
                Arc::new(SharedBudget::new(
                    store.clone(),
                    format!("bench-{k}"),
                    limits,
                )) as Arc<dyn Budget>
            })
            .collect();
        let local: Vec<Arc<dyn Budget>> = (0..KEYS)
            .map(|_| Arc::new(RateLimiter::new(limits)) as Arc<dyn Budget>)
            .collect();
        let shared = time_acquires(shared).await?;
        let local = time_acquires(local).await?;
        store.close().await;
        Ok::<_, BoxError>((shared, local))
    })?;
    rt.block_on(db.drop_db())?;
    let fmt = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1e3);
    let (s50, s99, smax) = (
        percentile(&shared, 50.0),
        percentile(&shared, 99.0),
        percentile(&shared, 100.0),
    );
    let (l50, l99) = (percentile(&local, 50.0), percentile(&local, 99.0));
    let added = s99.saturating_sub(l99);
    println!(
        "added latency: SharedBudget p50 {} p99 {} max {}; RateLimiter p50 {} p99 {}; \
         added at p99 {} ({} acquires each)",
        fmt(s50),
        fmt(s99),
        fmt(smax),
        fmt(l50),
        fmt(l99),
        fmt(added),
        shared.len()
    );
    Ok(vec![
        Row::checked(
            "shared budget: added latency per request, p99 (SharedBudget on local Postgres - RateLimiter)",
            "<= 2 ms",
            format!(
                "{} (SharedBudget p50 {}, p99 {}, max {}; RateLimiter p99 {})",
                fmt(added),
                fmt(s50),
                fmt(s99),
                fmt(smax),
                fmt(l99)
            ),
            added <= Duration::from_millis(2),
            COMMAND,
        ),
    ])
}

/// Runs the benchmark: the figures printed, the rows returned. Without
/// `DATABASE_URL` it is skipped and says so.
pub fn run() -> Result<Vec<Row>, BoxError> {
    let Some(server) = pg::server_url() else {
        println!("{}", pg::SKIPPED);
        return Ok(Vec::new());
    };
    let rt = crate::runtime()?;
    let mut rows = added_latency(&rt, &server)?;
    rows.extend(four_at_once(&rt, &server)?);
    rows.extend(restarts(&rt, &server)?);
    Ok(rows)
}
