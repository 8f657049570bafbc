//! A one-week and a one-year sync against the booking-site simulator store
//! every boarding exactly (every field the site's reference lists; daycare
//! and other non-boardings left out), with the site's sessions expiring
//! every 20 s and every 360 s; one login per run unless the session
//! expires, and the run's request count is the count the site saw.
//!
//! The 20 s runs are paced so that they last longer than a session: the
//! session expires under them (the only real waits here).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Duration as ChronoDuration;
use common::*;
use sync_core::{CheckpointStore, DayRange, MemoryStore, RunStatus, Store};

struct Outcome {
    report: sync_core::RunReport,
    stats: sync_sim::booking::BookingSimStats,
    seconds: f64,
}

async fn sync_exactly(
    days: u32,
    ttl: Duration,
    spacing: Duration,
    max_age: Option<Duration>,
) -> Outcome {
    let mut sim_config = sim_config(days, days.min(30) / 3, ttl);
    if days > 30 {
        // A year at half the default density: the test stays short.
        sim_config.boardings_per_day = 3;
        sim_config.daycare_per_day = 2;
    }
    let sim = start(sim_config).await;
    let mut config = config(&sim, spacing);
    if let Some(age) = max_age {
        config.session_max_age = age;
    }
    let source = Arc::new(sync_source_scraper::ScraperSource::new(config).unwrap());
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&source, &store);
    let range = data_range(&sim);
    let started = Instant::now();
    let report = engine
        .run(&target(&sim, range), &full(false))
        .await
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let stats = sim.stats();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    assert_eq!(report.batches_failed, 0);
    let coverage = store.coverage(source.stream()).await.unwrap();
    assert_eq!(
        coverage.days.count_within(range),
        range.len(),
        "100% covered"
    );
    let truth = sim.boardings();
    assert!(truth.iter().all(|b| !b.deleted));
    assert_exact(&stored(store.as_ref(), &source, range).await, &truth, range);
    // Created: the boardings of the range, and those of the days before it
    // that the first week lists (read, so stored on their own day).
    let in_range = truth
        .iter()
        .filter(|b| range.contains(b.check_in_day))
        .count() as u64;
    assert!(report.counts.created >= in_range, "{:?}", report.counts);
    let before = DayRange::new(
        range.first - ChronoDuration::days(60),
        range.first - ChronoDuration::days(1),
    )
    .unwrap();
    let outside = store
        .day_counts(source.stream(), before)
        .await
        .unwrap()
        .values()
        .sum::<u64>();
    assert_eq!(
        report.counts.created,
        in_range + outside,
        "{:?}",
        report.counts
    );
    // Non-boardings are never stored.
    let non: Vec<String> = sim
        .non_boardings()
        .into_iter()
        .map(|n| n.appointment_id)
        .collect();
    assert!(non.len() > 3);
    let found = store
        .existing(
            source.stream(),
            &sync_core::ExistingQuery::ByIds {
                entity: "boarding".into(),
                ids: non,
            },
        )
        .await
        .unwrap();
    assert!(found.is_empty(), "non-boardings stored: {found:?}");
    // The site's count is the run's.
    assert_eq!(report.requests, stats.requests, "{stats:?}");
    assert_eq!(stats.login_gets, stats.login_posts);
    assert_eq!(stats.login_failures, 0);
    eprintln!(
        "{days} days, sessions of {ttl:?}: {} boardings exact in {seconds:.1} s; {} requests \
         ({} schedule pages, {} detail pages, {} logins, {} sessions found expired)",
        in_range,
        stats.requests,
        stats.schedule_requests,
        stats.detail_requests,
        stats.logins,
        stats.session_expiries
    );
    sim.shutdown().await;
    Outcome {
        report,
        stats,
        seconds,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_week_with_sessions_of_360_s_is_exact_with_one_login() {
    let o = sync_exactly(7, Duration::from_secs(360), Duration::ZERO, None).await;
    assert_eq!(
        (o.stats.logins, o.stats.login_gets),
        (1, 1),
        "{:?}",
        o.stats
    );
    assert_eq!(o.stats.session_expiries, 0);
    // One schedule page for the week.
    assert_eq!(o.stats.schedule_requests, 1, "{:?}", o.stats);
    assert_eq!(o.report.retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_week_with_sessions_of_20_s_is_exact_through_expiries() {
    // About 60 requests, 400 ms apart: longer than a session.
    let o = sync_exactly(7, Duration::from_secs(20), Duration::from_millis(400), None).await;
    assert!(o.seconds > 20.0, "{} s: no session could expire", o.seconds);
    assert!(o.stats.session_expiries >= 1, "{:?}", o.stats);
    // Each expiry costs one login, no more.
    assert_eq!(
        o.stats.logins,
        1 + o.stats.session_expiries,
        "{:?}",
        o.stats
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_year_with_sessions_of_360_s_is_exact_with_one_login() {
    let o = sync_exactly(365, Duration::from_secs(360), Duration::ZERO, None).await;
    assert!(o.seconds < 330.0);
    assert_eq!(
        (o.stats.logins, o.stats.login_gets),
        (1, 1),
        "{:?}",
        o.stats
    );
    // One schedule page a week.
    assert_eq!(o.stats.schedule_requests, 53, "{:?}", o.stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_year_with_sessions_of_20_s_is_exact_through_expiries() {
    let o = sync_exactly(
        365,
        Duration::from_secs(20),
        Duration::from_millis(10),
        None,
    )
    .await;
    assert!(o.seconds > 20.0, "{} s: no session could expire", o.seconds);
    assert!(o.stats.session_expiries >= 1, "{:?}", o.stats);
    assert_eq!(
        o.stats.logins,
        1 + o.stats.session_expiries,
        "{:?}",
        o.stats
    );
    // Schedule pages read again after an expiry, never more.
    assert!(o.stats.schedule_requests <= 53 + o.stats.session_expiries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_older_than_its_max_age_is_renewed_before_it_expires() {
    // Sessions live 3 s at the site; the source renews after 1 s.
    let o = sync_exactly(
        7,
        Duration::from_secs(3),
        Duration::from_millis(40),
        Some(Duration::from_secs(1)),
    )
    .await;
    assert!(o.seconds > 2.0, "{} s", o.seconds);
    assert_eq!(o.stats.session_expiries, 0, "{:?}", o.stats);
    assert!(o.stats.logins >= 2, "{:?}", o.stats);
}
