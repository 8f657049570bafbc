//! A full import through the engine while the simulated booking site
//! misbehaves: 5% 5xx pages, 2% pages slower than the request timeout, 3%
//! pages cut off, layout noise on every page, sessions that live 1.5 s and
//! are also ended by the site at other moments (mid-batch). The import still
//! reaches 100% coverage with exactly the site's boardings, the report
//! counts the retries, and the pacing the site checks is never broken.
//!
//! Pages broken the ways the site's pages break (a changed week layout,
//! price blocks without their price items, maintenance pages) fail their
//! batch with a message naming the page, and leave its days uncovered.

mod common;

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use sync_core::{
    CheckpointStore, DayRange, Engine, MemoryStore, Order, RateLimiter, RateLimits, RetryPolicy,
    RunStatus, Secret, SyncOptions, Target,
};
use sync_sim::booking::{
    BookingSim, BookingSimConfig, ExpiredStyle, Faults, PageFaults, RateCheck,
};
use sync_source_scraper::{ScraperConfig, ScraperSource};
use url::Url;

const TIMEOUT: Duration = Duration::from_millis(250);
/// The pacing of the source; the site counts a breach below a third of it
/// (arrival times jitter by a few milliseconds on a busy machine).
const SPACING: Duration = Duration::from_millis(30);

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 6,
        initial_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(20),
        ..RetryPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_expiring_sessions_still_give_exact_data() {
    let first = NaiveDate::from_ymd_opt(2025, 3, 3).unwrap();
    // About 400 requests: every kind of fault shows up.
    let days = 56;
    let sim = Arc::new(
        BookingSim::start(BookingSimConfig {
            seed: 77,
            start: first,
            days,
            boardings_per_day: 4,
            daycare_per_day: 1,
            session_ttl: Duration::from_millis(1_500),
            expired_style: ExpiredStyle::Mixed,
            faults: Faults {
                error_5xx_rate: 0.05,
                slow_rate: 0.02,
                slow_delay: Duration::from_millis(1_000),
                truncated_rate: 0.03,
                layout_noise: true,
            },
            rate_check: Some(RateCheck {
                min_spacing: Some(SPACING / 3),
                per_minute: None,
            }),
            ..BookingSimConfig::default()
        })
        .await
        .unwrap(),
    );
    let defaults = BookingSimConfig::default();
    let mut c = ScraperConfig::new(
        Url::parse(&sim.base_url()).unwrap(),
        defaults.username,
        Secret::new(defaults.password),
        sim.tz(),
    );
    c.limits = RateLimits::UNLIMITED.with_min_spacing(SPACING);
    c.request_timeout = TIMEOUT;
    // Longer than the site's sessions: the source must notice expiry.
    c.session_max_age = Duration::from_secs(60);
    // The engine paces with the limiter it is given: the source's limits.
    let limiter = Arc::new(RateLimiter::new(c.limits));
    let source = Arc::new(ScraperSource::new(c).unwrap());
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::new(source.clone(), store.clone(), store.clone(), limiter);
    let last = first + chrono::Duration::days(i64::from(days) - 1);
    let range = DayRange::new(first, last).unwrap();
    let target = Target::days(first, last, sim.tz()).unwrap();
    let options = SyncOptions::builder()
        .batch_size(NonZeroU32::new(7).unwrap())
        .order(Order::OldestFirst)
        .retry(fast_retry())
        .build();

    // The site also ends every session now and then, whatever its age, but
    // not within 600 ms of a login: a session ended while the request that
    // follows a fresh login is still being retried stops the run (see
    // faults_sessions.rs, which pins that down).
    let stop = Arc::new(AtomicBool::new(false));
    let expirer = {
        let (sim, stop) = (sim.clone(), stop.clone());
        tokio::spawn(async move {
            let mut ended = 0u64;
            let mut logins = 0u64;
            let mut last_login = std::time::Instant::now();
            let mut last_end = std::time::Instant::now();
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let now = std::time::Instant::now();
                let seen = sim.stats().logins;
                if seen != logins {
                    (logins, last_login) = (seen, now);
                }
                if now - last_end >= Duration::from_millis(200)
                    && now - last_login >= Duration::from_millis(600)
                {
                    sim.expire_sessions();
                    last_end = now;
                    ended += 1;
                }
            }
            ended
        })
    };
    let started = std::time::Instant::now();
    let report = engine.run(&target, &options).await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let forced_expiries = expirer.await.unwrap();
    let stats = sim.stats();

    assert_eq!(report.status, RunStatus::Completed, "{report:#?}");
    assert_eq!(report.batches_failed, 0, "{:?}", report.errors);
    let coverage = store.coverage(source.stream()).await.unwrap();
    assert_eq!(
        coverage.days.count_within(range),
        range.len(),
        "100% coverage"
    );

    // Exactly the site's boardings of the range.
    let stored: BTreeMap<String, sync_core::StoredRecord> =
        common::stored(store.as_ref(), &source, range).await;
    common::assert_exact(&stored, &sim.boardings(), range);

    // Every kind of fault was met; the report counts the retries.
    assert!(stats.errors_injected > 0, "{stats:?}");
    assert!(stats.truncated_injected > 0, "{stats:?}");
    assert!(stats.slow_injected > 0, "{stats:?}");
    assert!(stats.session_expiries > 0 && stats.logins >= 2, "{stats:?}");
    // Every 5xx page is retried. Slow and cut-short answers are retried
    // only when they matter: a cut-short redirect or 404, or a login page
    // cut after its form, needs no second try, so those are not counted
    // one for one.
    assert!(
        report.retries >= stats.errors_injected,
        "retries {} < 5xx pages {}",
        report.retries,
        stats.errors_injected
    );
    // A request repeated after its session expired counts as a retry too:
    // every request the site answered with its login page (several in
    // flight may meet one expiry).
    let explained = stats.errors_injected
        + stats.truncated_injected
        + stats.slow_injected
        + stats.unauthenticated;
    assert!(
        report.retries <= explained,
        "retries {} without a fault to explain them ({stats:?})",
        report.retries
    );
    assert_eq!(report.requests, stats.requests, "every request counted");
    // The site runs on the test's runtime, whose two threads also parse the
    // pages (slowly, in a debug build): a task that wakes late for its
    // reserved slot sends right before the next one, and a handler that
    // starts late counts its request late. Allow that for one request in a
    // hundred.
    assert!(
        stats.breaches * 100 <= stats.requests,
        "pacing held: {stats:?}"
    );
    eprintln!(
        "kennel faults: {} requests, {} 5xx, {} truncated, {} slow (timeouts), {} sessions found \
         expired ({forced_expiries} forced ends), {} logins, {} retries; {} boardings exact, {:.1} s",
        stats.requests,
        stats.errors_injected,
        stats.truncated_injected,
        stats.slow_injected,
        stats.session_expiries,
        stats.logins,
        report.retries,
        stored.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Four weeks stored, then the site's pages break: a forced run fails every
/// batch, says why, and changes nothing stored (coverage, check times,
/// records); the pages mended, the next run succeeds.
async fn broken_pages_fail_their_batches(faults: PageFaults, says: &[&str]) {
    let sim = common::start(common::sim_config(28, 7, Duration::from_secs(360))).await;
    let source = common::source(&sim, Duration::ZERO);
    let store = Arc::new(MemoryStore::new());
    let engine = common::engine(&source, &store);
    let range = common::data_range(&sim);
    let target = common::target(&sim, range);
    let first = engine.run(&target, &common::full(false)).await.unwrap();
    assert_eq!(first.status, RunStatus::Completed, "{:?}", first.errors);
    let covered = store.coverage(source.stream()).await.unwrap();
    let checked = store.last_checked(source.stream(), range).await.unwrap();
    let records = common::stored(store.as_ref(), &source, range).await;

    sim.set_page_faults(faults);
    let report = engine.run(&target, &common::full(true)).await.unwrap();
    assert_eq!(report.status, RunStatus::Partial, "{report:#?}");
    assert_eq!(report.batches_done, 0);
    assert_eq!(report.batches_failed, 4);
    assert_eq!(report.errors.len(), 4);
    for e in &report.errors {
        assert!(e.contains("[bad_data]"), "{e}");
        assert!(e.contains(&sim.base_url()), "names the page: {e}");
        for what in says {
            assert!(e.contains(what), "{e}");
        }
    }
    assert_eq!(store.coverage(source.stream()).await.unwrap(), covered);
    assert_eq!(
        store.last_checked(source.stream(), range).await.unwrap(),
        checked
    );
    let after = common::stored(store.as_ref(), &source, range).await;
    assert_eq!(after.len(), records.len());
    assert!(after
        .iter()
        .all(|(id, r)| records[id].hash == r.hash && records[id].deleted == r.deleted));

    // A fresh store (and a fresh source, which has read nothing lately):
    // nothing stored, nothing covered, the run is not complete.
    let source = common::source(&sim, Duration::ZERO);
    let empty = Arc::new(MemoryStore::new());
    let report = common::engine(&source, &empty)
        .run(&target, &common::full(false))
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Partial);
    assert_eq!(report.counts.created, 0);
    assert!(empty
        .coverage(source.stream())
        .await
        .unwrap()
        .days
        .is_empty());

    sim.set_page_faults(PageFaults::default());
    let report = common::engine(&source, &empty)
        .run(&target, &common::full(false))
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    common::assert_exact(
        &common::stored(empty.as_ref(), &source, range).await,
        &sim.boardings(),
        range,
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_week_layout_fails_the_batch_and_leaves_coverage_untouched() {
    broken_pages_fail_their_batches(
        PageFaults {
            changed_layout_rate: 1.0,
            ..PageFaults::default()
        },
        &[
            "is not a schedule page",
            "/schedule/days-7/",
            "layout changed",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_block_without_its_price_items_fails_the_batch() {
    broken_pages_fail_their_batches(
        PageFaults {
            price_divs_missing_rate: 1.0,
            ..PageFaults::default()
        },
        &["/schedule/a/", "no price items"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintenance_page_is_not_an_empty_week() {
    broken_pages_fail_their_batches(
        PageFaults {
            maintenance_rate: 1.0,
            ..PageFaults::default()
        },
        &["is not a schedule page", "usual structure"],
    )
    .await;
}
