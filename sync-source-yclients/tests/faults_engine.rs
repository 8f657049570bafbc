//! A full records sync through the engine while the simulated API misbehaves:
//! 5% 5xx answers, 2% answers slower than the request timeout, 3% bodies cut
//! short, scattered 429s plus bursts of 429 (with Retry-After always, never,
//! or on every second one), and the user token revoked every 40 requests
//! (mid-batch). The sync still reaches 100% coverage with exactly the
//! simulator's data, the run report counts every 429 and the retries, and
//! the server never saw a request over its limits.

use std::collections::BTreeMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sync_core::{
    CheckpointStore, DayRange, Engine, ExistingQuery, MemoryStore, Order, RateLimiter, RateLimits,
    RetryPolicy, RunStatus, Secret, SlowDown, Store, SyncOptions, Target, Unit,
};
use sync_sim::yclients::{
    Faults, RetryAfter, RunningYclientsSim, SimLimits, YclientsSim, YclientsSimConfig,
};
use sync_source_yclients::{sources_for_companies, YclientsConfig, YclientsRecords};

const COMPANY: u64 = 101;
/// Request timeout of the source; slow answers take far longer.
const TIMEOUT: Duration = Duration::from_millis(250);
/// 429 answers in one burst.
const BURST: u64 = 4;
/// Bursts start when the server has seen this many requests.
const BURSTS_AT: [u64; 3] = [30, 80, 130];

fn base_faults() -> Faults {
    Faults {
        error_5xx_rate: 0.05,
        slow_rate: 0.02,
        slow_delay: Duration::from_millis(1_000),
        truncated_rate: 0.03,
        random_429_rate: 0.01,
        revoke_token_after_requests: Some(40),
        change_during_sync: None,
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 6,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(40),
        ..RetryPolicy::default()
    }
}

/// Turns 429 bursts on and off as the request count passes [`BURSTS_AT`].
async fn burst_controller(sim: Arc<RunningYclientsSim>, stop: tokio_util_stop::Stop) {
    let mut bursts = BURSTS_AT.iter().peekable();
    while !stop.is_set() {
        let stats = sim.stats();
        if let Some(&&at) = bursts.peek() {
            if stats.requests >= at {
                bursts.next();
                let until = stats.responses_429 + BURST;
                sim.set_faults(Faults {
                    random_429_rate: 1.0,
                    ..base_faults()
                });
                while sim.stats().responses_429 < until && !stop.is_set() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                sim.set_faults(base_faults());
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A tiny stop flag (no extra dependency).
mod tokio_util_stop {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[derive(Clone, Default)]
    pub(crate) struct Stop(Arc<AtomicBool>);

    impl Stop {
        pub(crate) fn set(&self) {
            self.0.store(true, Ordering::SeqCst);
        }
        pub(crate) fn is_set(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }
}

async fn faulty_full_sync(retry_after: RetryAfter) {
    let limits = SimLimits {
        retry_after,
        ..SimLimits::new(Some(50), Some(3000))
    };
    let sim = Arc::new(
        YclientsSim::start(YclientsSimConfig {
            seed: 11,
            clients: 80,
            records: 2_400,
            days: 120,
            limits,
            faults: base_faults(),
            ..YclientsSimConfig::default()
        })
        .await
        .unwrap(),
    );
    let cfg = sim.config().clone();
    let mut config = YclientsConfig::new(Secret::new(cfg.partner_token.clone()), vec![COMPANY])
        .with_base_url(&sim.base_url())
        .unwrap()
        .with_login(cfg.login.clone(), Secret::new(cfg.password.clone()));
    config.tz = cfg.tz;
    // Small pages: many requests, so every kind of fault shows up.
    config.records_page_size = 20;
    config.request_timeout = TIMEOUT;
    let source = sources_for_companies(&config).unwrap().remove(0).records;

    // The limiter holds 80% of the server's limits. Its pauses after a 429
    // and its recovery are scaled down with the test (Retry-After is capped
    // at 300 ms; full speed again 300 ms after the pause).
    let limiter = Arc::new(RateLimiter::with_slow_down(
        RateLimits::new(Some(50), Some(3000)).scaled(0.8),
        SlowDown {
            initial_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_millis(300),
            max_retry_after: Duration::from_millis(300),
            recovery: Duration::from_millis(300),
            ..SlowDown::default()
        },
    ));
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::new(source, store.clone(), store.clone(), limiter);
    let range = DayRange::new(cfg.first_day(), cfg.end_date).unwrap();
    let target = Target::Days { range, tz: cfg.tz };
    // Windows of three days: many batches, so faults land mid-batch. The
    // engine retries, logs in again after a 401 and paces; the source makes
    // one attempt per request.
    let options = SyncOptions::builder()
        .batch_size(NonZeroU32::new(3).unwrap())
        .order(Order::NewestFirst)
        .max_in_flight(NonZeroUsize::new(2).unwrap())
        .retry(fast_retry())
        .build();

    let stop = tokio_util_stop::Stop::default();
    let controller = tokio::spawn(burst_controller(sim.clone(), stop.clone()));
    let started = std::time::Instant::now();
    let report = engine.run(&target, &options).await.unwrap();
    stop.set();
    controller.await.unwrap();
    let stats = sim.stats();

    // Complete and exact.
    assert_eq!(report.status, RunStatus::Completed, "{report:#?}");
    assert_eq!(report.batches_failed, 0, "{:?}", report.errors);
    let stream = YclientsRecords::stream_id(COMPANY);
    let coverage = store.coverage(&stream).await.unwrap();
    assert_eq!(
        coverage.days.count_within(range),
        range.len(),
        "100% coverage"
    );
    let stored = store
        .existing(
            &stream,
            &ExistingQuery::InDays {
                entity: "record".into(),
                range,
            },
        )
        .await
        .unwrap();
    let expected: BTreeMap<String, Value> = sim
        .records(COMPANY)
        .into_iter()
        .map(|v| (v["id"].to_string(), v))
        .collect();
    assert_eq!(stored.len(), expected.len(), "record count");
    for r in &stored {
        let want = &expected[&r.external_id];
        assert_eq!(&r.payload, want, "record {}", r.external_id);
        assert_eq!(r.deleted, want["deleted"] == Value::Bool(true));
        let day = want["date"].as_str().unwrap()[..10].parse().unwrap();
        assert_eq!(r.unit, Unit::Day(day));
    }

    // Every fault was met, and the report counts what happened.
    assert!(stats.responses_5xx > 0, "{stats:?}");
    assert!(stats.truncated > 0, "{stats:?}");
    assert!(
        stats.responses_429 >= BURST * BURSTS_AT.len() as u64,
        "every burst was sent: {stats:?}"
    );
    assert!(
        stats.logins >= 2 && stats.responses_401 > 0,
        "token revoked and renewed: {stats:?}"
    );
    assert_eq!(
        report.rate_limited, stats.responses_429,
        "every 429 counted"
    );
    assert_eq!(report.requests, stats.requests, "every request counted");
    let explained = stats.responses_5xx + stats.truncated + stats.responses_429;
    assert!(
        report.retries >= explained,
        "retries {} < 5xx + truncated + 429 = {explained}",
        report.retries
    );
    assert_eq!(
        stats.limit_breaches, 0,
        "no request over the server's limits: {stats:?}"
    );
    eprintln!(
        "yclients faults ({retry_after:?}): {} requests, {} 5xx, {} truncated, {} 429 (0 breaches), \
         {} 401 (token revoked), {} logins, {} retries ({} of them timeouts or dropped answers); \
         {} records exact, {:.1} s",
        stats.requests,
        stats.responses_5xx,
        stats.truncated,
        stats.responses_429,
        stats.responses_401,
        stats.logins,
        report.retries,
        report.retries - explained,
        stored.len(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_with_retry_after_always() {
    faulty_full_sync(RetryAfter::Always).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_without_retry_after() {
    faulty_full_sync(RetryAfter::Never).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_with_retry_after_on_every_second_429() {
    faulty_full_sync(RetryAfter::EveryNth(2)).await;
}
