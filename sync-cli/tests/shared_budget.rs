//! The request budget kept in the store, proven at the server: real
//! `sync-cli` processes (default settings unless a test says otherwise)
//! against the YClients simulator enforcing the documented limits (5
//! requests a second and 200 a minute per IP, 429 without Retry-After),
//! counted where they land: the simulator's breaches per window, its 429s,
//! its requests and their arrival times.
//!
//! - four processes at once on one Postgres store (different companies,
//!   `--preset aggressive`: the whole documented limit shared), and two on
//!   one SQLite file: no window ever over the limit, no 429, and together
//!   at least 90% of the limit over the busy period;
//! - ten SIGKILL-and-restart cycles within about a minute on one store: no
//!   window over the limit, and the resumed run stores every record once;
//! - three `sync-cli worker` processes on one Postgres store syncing twenty
//!   companies (`--company all`), one killed mid-run: every company exact,
//!   every record created once in the change log, and the wall time close
//!   to what the limit allows;
//! - a run refused as busy and a run whose store is unreachable send no
//!   request at all.
//!
//! The Postgres tests use `DATABASE_URL` (`scripts/with-postgres.sh` sets
//! it); without it they fail under `CI` and are skipped, saying so,
//! elsewhere. The tests run one at a time (they time the limit).
//! `RELIABILITY_SEED=<n>` replays the kill times of the restart test.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sync_core::{ChangeKind, RunId, RunReport, RunStatus, SyncMode};
use sync_sim::yclients::{
    Latency, RunningYclientsSim, SimLimits, SimStats, YclientsSim, YclientsSimConfig,
};
use sync_source_yclients::YclientsRecords;

use common::*;

/// The documented limits the simulator enforces.
const PER_SECOND: usize = 5;
const PER_MINUTE: usize = 200;
/// The share of them the default preset (balanced) uses.
const BALANCED: f64 = 0.8;

/// The tests time the limit: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a Postgres server is given; under `CI` its absence is a failure.
fn postgres_given(test: &str) -> bool {
    if std::env::var("DATABASE_URL").is_ok_and(|v| !v.trim().is_empty()) {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: DATABASE_URL is not set; under CI the Postgres tests must run: \
         wrap the command in scripts/with-postgres.sh"
    );
    eprintln!("{test}: SKIPPED: DATABASE_URL is not set (run it through scripts/with-postgres.sh)");
    false
}

/// A simulator holding the documented limits, serving `companies` with
/// `records` records each over `days` days, answering after 5-40 ms.
async fn documented_sim(companies: &[u64], records: usize, days: u32) -> RunningYclientsSim {
    YclientsSim::start(YclientsSimConfig {
        seed: 15,
        companies: companies.to_vec(),
        clients: 20,
        records,
        days,
        partner_token: PARTNER.into(),
        password: PASSWORD.into(),
        user_token: USER_TOKEN.into(),
        limits: SimLimits::DOCUMENTED,
        latency: Latency::uniform_ms(5, 40),
        ..YclientsSimConfig::default()
    })
    .await
    .expect("simulator starts")
}

/// The CLI's environment for the simulator; the companies come as flags.
fn env(sim: &RunningYclientsSim) -> Vec<(String, String)> {
    yclients_env(sim)
        .into_iter()
        .filter(|(k, _)| k != "YCLIENTS_COMPANY_ID")
        .collect()
}

/// `sync-cli <store flags> --no-progress <command> --source yclients` over
/// the simulator's whole range, for `companies`, then `extra`.
fn cli_args(
    sim: &RunningYclientsSim,
    store: &[String],
    command: &str,
    companies: &[String],
    extra: &[&str],
) -> Vec<String> {
    let range = sim_range(sim);
    let mut a = store.to_vec();
    a.extend(args(&[
        "--no-progress",
        command,
        "--source",
        "yclients",
        "--from",
        &range.first.to_string(),
        "--to",
        &range.last.to_string(),
    ]));
    for c in companies {
        a.push("--company".into());
        a.push(c.clone());
    }
    a.extend(args(extra));
    a
}

fn ids(companies: &[u64]) -> Vec<String> {
    companies.iter().map(u64::to_string).collect()
}

// ------------------------------------------------------- at the server

/// Arrival times of every request the simulator received, sorted.
fn arrival_times(sim: &RunningYclientsSim) -> Vec<Duration> {
    let mut t: Vec<Duration> = sim.arrivals().into_iter().map(|a| a.at).collect();
    t.sort();
    t
}

/// The most arrivals in any window `[t, t + len)`.
fn peak(times: &[Duration], len: Duration) -> usize {
    let mut most = 0;
    let mut j = 0;
    for i in 0..times.len() {
        while j < times.len() && times[j] < times[i] + len {
            j += 1;
        }
        most = most.max(j - i);
    }
    most
}

/// What the server saw: no request over a window (its counters and the
/// arrivals themselves), no 429. Returns the stats and the peaks.
fn assert_no_breach(sim: &RunningYclientsSim, context: &str) -> (SimStats, usize, usize) {
    let s = sim.stats();
    let times = arrival_times(sim);
    if s.limit_breaches > 0 {
        let all = sim.arrivals();
        for (i, a) in all.iter().enumerate().filter(|(_, a)| a.over_limit) {
            let from = i.saturating_sub(6);
            let around: Vec<String> = all[from..=i]
                .iter()
                .map(|b| format!("{:.3}", b.at.as_secs_f64()))
                .collect();
            eprintln!(
                "{context}: over the limit at {:.3} s: {around:?}",
                a.at.as_secs_f64()
            );
        }
    }
    let (per_s, per_min) = (
        peak(&times, Duration::from_secs(1)),
        peak(&times, Duration::from_secs(60)),
    );
    assert_eq!(
        (
            s.limit_breaches,
            s.breaches_per_second,
            s.breaches_per_minute,
            s.responses_429
        ),
        (0, 0, 0, 0),
        "{context}: requests over a window (all, per second, per minute) and 429s at the \
         server: {s:#?}"
    );
    let p = s.max_peaks();
    assert!(
        p.per_second as usize <= PER_SECOND && p.per_minute as usize <= PER_MINUTE,
        "{context}: the simulator's peaks {p:?}"
    );
    assert!(
        per_s <= PER_SECOND && per_min <= PER_MINUTE,
        "{context}: {per_s} arrivals in one second, {per_min} in one minute"
    );
    assert_eq!(times.len() as u64, s.requests, "{context}: arrivals");
    (s, per_s, per_min)
}

/// Requests, the busy period (first arrival to last) and the rate over it:
/// `(n - 1) / period`, the gaps between arrivals.
fn busy_rate(sim: &RunningYclientsSim) -> (usize, f64, f64) {
    let t = arrival_times(sim);
    if t.len() < 2 {
        return (t.len(), 0.0, 0.0);
    }
    let span = (t[t.len() - 1] - t[0]).as_secs_f64();
    (t.len(), span, (t.len() - 1) as f64 / span)
}

// --------------------------------------------------------------- store

/// Every record of `company` in the simulator is stored once, equal, and
/// the whole range is covered.
async fn assert_company_exact(
    opened: &Opened,
    sim: &RunningYclientsSim,
    company: u64,
    context: &str,
) {
    let range = sim_range(sim);
    let stream = YclientsRecords::stream_id(company);
    let coverage = opened.checkpoints().coverage(&stream).await.unwrap();
    assert_eq!(
        coverage.days.count_within(range),
        range.len(),
        "{context}: company {company}: coverage {:?}",
        coverage.days
    );
    // Panics on an id stored twice.
    let stored = stored_by_id(opened.store(), &stream, "record", range).await;
    let want: BTreeMap<String, Value> = sim
        .records(company)
        .into_iter()
        .map(|v| (v["id"].to_string(), v))
        .collect();
    assert!(!want.is_empty(), "{context}: company {company} has records");
    let missing = want.keys().filter(|k| !stored.contains_key(*k)).count();
    let extra = stored.keys().filter(|k| !want.contains_key(*k)).count();
    assert_eq!(
        (missing, extra),
        (0, 0),
        "{context}: company {company}: records missing, records extra"
    );
    for (id, v) in &want {
        assert_eq!(&stored[id].payload, v, "{context}: company {company}: {id}");
    }
}

/// The change log of `company`'s records, as the store gives it: what every
/// run of the stream created, updated or deleted, by record.
async fn change_log(opened: &Opened, company: u64) -> BTreeMap<String, Vec<(ChangeKind, String)>> {
    let stream = YclientsRecords::stream_id(company);
    let mut log: BTreeMap<String, Vec<(ChangeKind, String)>> = BTreeMap::new();
    for run in opened
        .checkpoints()
        .runs(Some(&stream), 10_000)
        .await
        .unwrap()
    {
        for change in opened.checkpoints().run_changes(&run.id).await.unwrap() {
            if change.entity == "record" {
                log.entry(change.external_id)
                    .or_default()
                    .push((change.kind, run.id.0.clone()));
            }
        }
    }
    log
}

/// Every record of `company` is in the change log once, as created (by
/// the run recorded as its first), and nothing else is logged (the data did
/// not change). In a Postgres store, also straight from the tables: every
/// record's first run is a run of the stream, and no update or deletion
/// is logged.
async fn assert_created_once(
    opened: &Opened,
    url: Option<&str>,
    sim: &RunningYclientsSim,
    company: u64,
    context: &str,
) {
    let log = change_log(opened, company).await;
    let want: Vec<String> = sim
        .records(company)
        .into_iter()
        .map(|v| v["id"].to_string())
        .collect();
    let missing: Vec<&String> = want.iter().filter(|id| !log.contains_key(*id)).collect();
    let not_once: Vec<(&String, &Vec<(ChangeKind, String)>)> = log
        .iter()
        .filter(|(_, changes)| changes.len() != 1 || changes[0].0 != ChangeKind::Created)
        .collect();
    let unknown = log.len() + missing.len() - want.len();
    assert!(
        missing.is_empty() && not_once.is_empty() && unknown == 0,
        "{context}: company {company}: {} of {} records not in the change log (e.g. {:?}),          {} logged other than created once (e.g. {:?}), {unknown} logged that the simulator          does not have",
        missing.len(),
        want.len(),
        &missing[..missing.len().min(5)],
        not_once.len(),
        &not_once[..not_once.len().min(5)],
    );
    let Some(url) = url else { return };
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let source = format!("yclients:{company}");
    let (orphans,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM records r WHERE r.source = $1 AND r.entity = 'record' \
         AND NOT EXISTS (SELECT 1 FROM runs WHERE runs.id = r.first_run \
                         AND runs.source = r.source AND runs.stream = 'records')",
    )
    .bind(&source)
    .fetch_one(&pool)
    .await
    .unwrap();
    let (logged,): (i64,) = sqlx::query_as("SELECT count(*) FROM record_changes WHERE source = $1")
        .bind(&source)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(
        (orphans, logged),
        (0, 0),
        "{context}: company {company}: records without a first run of the stream, \
         updates or deletions logged"
    );
}

fn wait_ok(child: &mut std::process::Child, dir: &Path, name: &str, limit: Duration) {
    let status = wait_for(child, limit).unwrap_or_else(|| {
        let _ = child.kill();
        panic!(
            "{name} still running after {limit:?}: {}",
            child_text(dir, name)
        )
    });
    assert!(
        status.success(),
        "{name} failed ({status}): {}",
        child_text(dir, name)
    );
}

// ------------------------------------------- several processes, one limit

/// Companies of the shared-limit tests and their size: with the default
/// windows each company takes ~37 requests (a login, a count, pages of
/// about 180 records), so four take ~30 s at 5/s, under the minute
/// window's 200.
const RECORDS_PER_COMPANY: usize = 6_300;
const DAYS: u32 = 60;

fn processes_share_the_limit(
    test: &str,
    rt: &tokio::runtime::Runtime,
    loc: StoreLoc,
    companies: &[u64],
    records: usize,
) {
    let sim = rt.block_on(documented_sim(companies, records, DAYS));
    let dir = tempfile::tempdir().unwrap();
    let env = env(&sim);
    let started = Instant::now();
    let mut children: Vec<(String, std::process::Child)> = companies
        .iter()
        .map(|&c| {
            let name = format!("company-{c}");
            let a = cli_args(
                &sim,
                &loc.flags(),
                "run",
                &ids(&[c]),
                &["--preset", "aggressive"],
            );
            let child = spawn(dir.path(), &name, &a, &env);
            (name, child)
        })
        .collect();
    for (name, child) in &mut children {
        wait_ok(child, dir.path(), name, Duration::from_secs(90));
    }
    let wall = started.elapsed();
    let (stats, per_s, per_min) = assert_no_breach(&sim, test);
    let (n, span, rate) = busy_rate(&sim);
    let share = rate / PER_SECOND as f64;
    eprintln!(
        "{test}: {} processes, {n} requests at the server in {span:.1} s busy ({:.1} s wall): \
         {rate:.2}/s = {share:.3} of the limit; peaks {per_s}/s, {per_min}/min; breaches {} \
         (per second {}, per minute {}), 429s {}",
        companies.len(),
        wall.as_secs_f64(),
        stats.limit_breaches,
        stats.breaches_per_second,
        stats.breaches_per_minute,
        stats.responses_429
    );
    assert!(
        n <= PER_MINUTE,
        "{test}: {n} requests: resize the data so the minute window does not bind"
    );
    assert!(
        span >= 10.0,
        "{test}: the busy period ({span:.1} s) is too short to measure a rate"
    );
    assert!(
        share >= 0.9,
        "{test}: together {rate:.2} requests a second over {span:.1} s, {share:.3} of the \
         limit (want >= 0.9); arrivals per second: {:?}",
        sim.arrivals_per_second()
    );
    rt.block_on(async {
        let opened = loc.open().await;
        for &c in companies {
            assert_company_exact(&opened, &sim, c, test).await;
        }
        opened.close().await;
        if let StoreLoc::Postgres(db) = &loc {
            db.drop_db().await;
        }
    });
}

#[test]
fn four_processes_share_the_documented_limit_on_postgres() {
    let test = "four_processes_postgres";
    if !postgres_given(test) {
        return;
    }
    let _serial = serial();
    let rt = runtime();
    let loc = StoreLoc::Postgres(rt.block_on(PgDb::create()));
    processes_share_the_limit(test, &rt, loc, &[101, 102, 103, 104], RECORDS_PER_COMPANY);
}

#[test]
fn two_processes_share_the_documented_limit_on_sqlite() {
    let _serial = serial();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    processes_share_the_limit(
        "two_processes_sqlite",
        &rt,
        StoreLoc::Sqlite(dir.path().join("sync.db")),
        &[101, 102],
        2 * RECORDS_PER_COMPANY,
    );
}

// ---------------------------------------------------------- restarts

/// Kills, and when each comes after the start.
const KILLS: usize = 10;
const KILL_AFTER_MS: std::ops::Range<u64> = 500..4_500;

#[test]
fn kills_and_restarts_never_exceed_the_limit_and_resume_exactly() {
    let test = "kills_and_restarts_postgres";
    if !postgres_given(test) {
        return;
    }
    let _serial = serial();
    let seed = seed(test);
    let mut rng = StdRng::seed_from_u64(seed);
    let rt = runtime();
    let db = rt.block_on(PgDb::create());
    let url = db.url.clone();
    let loc = StoreLoc::Postgres(db);
    // One company, ~65 requests with the default windows (~16 s at the
    // balanced preset's 4 a second): the ten runs killed after 0.5-4.5 s
    // (each losing its start and the batches in flight) end about when
    // everything is stored; the later ones are forced, so that the kills
    // still land mid-run and re-committed batches are checked too.
    let sim = rt.block_on(documented_sim(&[COMPANY], 12_000, 60));
    let dir = tempfile::tempdir().unwrap();
    let env = env(&sim);
    let started = Instant::now();
    let mut kills = Vec::new();
    let mut complete = false;
    let mut attempt = 0;
    while kills.len() < KILLS {
        attempt += 1;
        assert!(attempt <= 3 * KILLS, "{test}: too many runs ended early");
        let name = format!("run-{attempt}");
        // Once everything is stored, forced runs keep the kills mid-run.
        let extra: &[&str] = if complete { &["--force"] } else { &[] };
        let a = cli_args(&sim, &loc.flags(), "run", &ids(&[COMPANY]), extra);
        let mut child = spawn(dir.path(), &name, &a, &env);
        let delay = rng.gen_range(KILL_AFTER_MS);
        match wait_for(&mut child, Duration::from_millis(delay)) {
            Some(status) => {
                assert!(
                    status.success(),
                    "{test}: {name}: {}",
                    child_text(dir.path(), &name)
                );
                complete = true;
            }
            None => {
                child.kill().expect("SIGKILL");
                child.wait().unwrap();
                kills.push(delay);
            }
        }
    }
    let killing = started.elapsed();
    let before_final = sim.stats().requests;
    let o = run(
        dir.path(),
        &cli_args(&sim, &loc.flags(), "run", &ids(&[COMPANY]), &[]),
        &env,
    );
    assert!(o.status.success(), "{test}: final run: {}", text(&o));
    let (stats, per_s, per_min) = assert_no_breach(&sim, test);
    eprintln!(
        "{test}: seed {seed}: {KILLS} kills at {kills:?} ms in {:.1} s ({} runs finished \
         before their kill), then the resumed run: {} requests ({} in the last run), {:.1} s \
         in all; peaks {per_s}/s, {per_min}/min; breaches {} (per second {}, per minute {}), \
         429s {}",
        killing.as_secs_f64(),
        attempt - KILLS,
        stats.requests,
        stats.requests - before_final,
        started.elapsed().as_secs_f64(),
        stats.limit_breaches,
        stats.breaches_per_second,
        stats.breaches_per_minute,
        stats.responses_429
    );
    rt.block_on(async {
        let opened = loc.open().await;
        assert_company_exact(&opened, &sim, COMPANY, test).await;
        assert_created_once(&opened, Some(&url), &sim, COMPANY, test).await;
        let runs = history(opened.checkpoints()).await;
        assert_eq!(
            runs.last().map(|r| r.status),
            Some(RunStatus::Completed),
            "{test}: {runs:#?}"
        );
        assert!(
            runs.iter().all(|r| r.status != RunStatus::InProgress),
            "{test}: a killed run left in progress: {runs:#?}"
        );
        opened.close().await;
        if let StoreLoc::Postgres(db) = &loc {
            db.drop_db().await;
        }
    });
}

// ----------------------------------------------------------- workers

/// Twenty companies of 600 records over two weeks: a count and four or
/// five pages each, the count asked by every worker as it plans, with
/// every worker's login and company list ~145 requests, ~38 s at the
/// balanced preset's 4 a second: the killed worker's batches come free
/// (its 15 s lease expires) while the others still have work.
const WORKER_COMPANIES: std::ops::RangeInclusive<u64> = 201..=220;
const WORKER_RECORDS: usize = 600;
const WORKER_DAYS: u32 = 14;
/// The workers' start (process, store, login, the company list) and end,
/// on top of the requests' own time.
const STARTUP_ALLOWANCE: Duration = Duration::from_secs(3);

#[test]
fn three_workers_one_killed_sync_twenty_companies_exactly() {
    let test = "three_workers_postgres";
    if !postgres_given(test) {
        return;
    }
    let _serial = serial();
    let rt = runtime();
    let db = rt.block_on(PgDb::create());
    let url = db.url.clone();
    let loc = StoreLoc::Postgres(db);
    let companies: Vec<u64> = WORKER_COMPANIES.collect();
    let sim = rt.block_on(documented_sim(&companies, WORKER_RECORDS, WORKER_DAYS));
    let dir = tempfile::tempdir().unwrap();
    let env = env(&sim);
    let a = cli_args(&sim, &loc.flags(), "worker", &args(&["all"]), &[]);
    let started = Instant::now();
    let mut workers: Vec<(String, std::process::Child)> = (1..=3)
        .map(|i| {
            let name = format!("worker-{i}");
            let child = spawn(dir.path(), &name, &a, &env);
            (name, child)
        })
        .collect();
    // Kill the second worker mid-run, with batches claimed.
    std::thread::sleep(Duration::from_secs(4));
    let (killed, victim) = &mut workers[1];
    assert!(
        victim.try_wait().unwrap().is_none(),
        "{test}: {killed} ended before its kill: {}",
        child_text(dir.path(), killed)
    );
    victim.kill().expect("SIGKILL");
    victim.wait().unwrap();
    let killed_at = started.elapsed();
    for (name, child) in workers.iter_mut().filter(|(n, _)| n != "worker-2") {
        wait_ok(child, dir.path(), name, Duration::from_secs(90));
    }
    let wall = started.elapsed();
    let (stats, per_s, per_min) = assert_no_breach(&sim, test);
    let n = stats.requests as f64;
    let rate = PER_SECOND as f64 * BALANCED;
    let bound = 1.15 * n / rate + STARTUP_ALLOWANCE.as_secs_f64();
    eprintln!(
        "{test}: 3 workers, 20 companies, worker-2 killed at {:.1} s: {} requests, {:.1} s \
         wall; requests / allowed rate = {:.1} s, bound 1.15 x that + {} s = {bound:.1} s; \
         peaks {per_s}/s, {per_min}/min; breaches {}, 429s {}",
        killed_at.as_secs_f64(),
        stats.requests,
        wall.as_secs_f64(),
        n / rate,
        STARTUP_ALLOWANCE.as_secs(),
        stats.limit_breaches,
        stats.responses_429
    );
    assert!(
        stats.requests as f64 <= PER_MINUTE as f64 * BALANCED,
        "{test}: {} requests: resize the data so the minute window does not bind",
        stats.requests
    );
    rt.block_on(async {
        let opened = loc.open().await;
        for &c in &companies {
            assert_company_exact(&opened, &sim, c, test).await;
            assert_created_once(&opened, Some(&url), &sim, c, test).await;
        }
        opened.close().await;
    });
    assert!(
        wall.as_secs_f64() <= bound,
        "{test}: {:.1} s for {} requests at {rate}/s (bound {bound:.1} s); arrivals per \
         second: {:?}",
        wall.as_secs_f64(),
        stats.requests,
        sim.arrivals_per_second()
    );
    rt.block_on(async {
        if let StoreLoc::Postgres(db) = &loc {
            db.drop_db().await;
        }
    });
}

// ------------------------------------------------- refused before sending

/// A run refused because another process holds the stream's lease sends
/// nothing.
fn busy_run_sends_nothing(test: &str, rt: &tokio::runtime::Runtime, loc: StoreLoc) {
    let sim = rt.block_on(documented_sim(&[COMPANY], 200, 10));
    let dir = tempfile::tempdir().unwrap();
    // Another process's run, in progress: this test process holds the lease.
    let holder = rt.block_on(async {
        let opened = loc.open().await;
        let now = Utc::now();
        let run = RunReport::start(
            RunId::generate(now),
            YclientsRecords::stream_id(COMPANY),
            SyncMode::Full,
            "the whole range",
            now,
        );
        opened.checkpoints().begin_run(&run).await.unwrap();
        (opened, run)
    });
    let o = run(
        dir.path(),
        &cli_args(&sim, &loc.flags(), "run", &ids(&[COMPANY]), &[]),
        &env(&sim),
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(5), "{test}: refused as busy: {out}");
    assert!(out.contains("busy"), "{test}: {out}");
    let s = sim.stats();
    eprintln!(
        "{test}: refused as busy ({:?}); requests at the server: {}",
        out.lines().find(|l| l.contains("error")).unwrap_or(""),
        s.requests
    );
    assert_eq!(
        s.requests, 0,
        "{test}: requests sent by a refused run: {s:#?}"
    );
    rt.block_on(async {
        let (opened, _run) = holder;
        opened.close().await;
        if let StoreLoc::Postgres(db) = &loc {
            db.drop_db().await;
        }
    });
}

#[test]
fn a_run_refused_as_busy_sends_nothing_postgres() {
    let test = "busy_postgres";
    if !postgres_given(test) {
        return;
    }
    let _serial = serial();
    let rt = runtime();
    let loc = StoreLoc::Postgres(rt.block_on(PgDb::create()));
    busy_run_sends_nothing(test, &rt, loc);
}

#[test]
fn a_run_refused_as_busy_sends_nothing_sqlite() {
    let _serial = serial();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    busy_run_sends_nothing(
        "busy_sqlite",
        &rt,
        StoreLoc::Sqlite(dir.path().join("sync.db")),
    );
}

#[test]
fn a_run_whose_store_is_unreachable_sends_nothing() {
    let test = "store_unreachable";
    let _serial = serial();
    let rt = runtime();
    let sim = rt.block_on(documented_sim(&[COMPANY], 200, 10));
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 (discard) of loopback here.
    let mut env = env(&sim);
    env.push((
        "DATABASE_URL".into(),
        "postgres://sync:not-the-password@127.0.0.1:9/nowhere".into(),
    ));
    for command in ["run", "worker"] {
        let o = run(
            dir.path(),
            &cli_args(&sim, &[], command, &ids(&[COMPANY]), &[]),
            &env,
        );
        let out = text(&o);
        assert!(!o.status.success(), "{test}: {command}: {out}");
        assert!(out.contains("cannot use the database"), "{test}: {out}");
        assert!(!out.contains("not-the-password"), "{test}: {out}");
        assert_eq!(
            sim.stats().requests,
            0,
            "{test}: {command}: requests sent without a store"
        );
        eprintln!(
            "{test}: {command}: exit {:?}, 0 requests at the server",
            o.status.code()
        );
    }
}
