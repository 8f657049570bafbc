//! End-to-end import of a seeded simulated year through the engine into a
//! store, shared by the SQLite and Postgres tests.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Duration as ChronoDuration, NaiveDate};
use serde_json::Value;
use sync_core::{
    CheckpointStore, Engine, ExistingQuery, Order, RateLimiter, RateLimits, RetryPolicy, RunStatus,
    Secret, Source, Span, Store, StoredRecord, SyncOptions, Target, Unit,
};
use sync_sim::booking::{
    BookingEdit, BookingSim, BookingSimConfig, ExpiredStyle, Faults, RateCheck, RunningBookingSim,
    SimBoarding,
};
use sync_source_scraper::{ScraperConfig, ScraperSource};
use url::Url;

/// Pacing of the test: a few milliseconds apart, no per-minute limit.
const SPACING: Duration = Duration::from_millis(2);

pub(crate) fn sim_config(days: u32) -> BookingSimConfig {
    BookingSimConfig {
        seed: 2024,
        start: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        days,
        boardings_per_day: 2,
        daycare_per_day: 1,
        // Expires many times during the run.
        session_ttl: Duration::from_millis(400),
        expired_style: ExpiredStyle::Mixed,
        faults: Faults {
            error_5xx_rate: 0.02,
            truncated_rate: 0.02,
            slow_rate: 0.005,
            slow_delay: Duration::from_millis(20),
            layout_noise: true,
        },
        // Half the pacing: arrival times at the server jitter by a
        // millisecond or so (the server renders pages, the machine is busy).
        rate_check: Some(RateCheck {
            min_spacing: Some(SPACING / 2),
            per_minute: None,
        }),
        ..BookingSimConfig::default()
    }
}

fn source_for(sim: &RunningBookingSim) -> Arc<ScraperSource> {
    let defaults = BookingSimConfig::default();
    let mut c = ScraperConfig::new(
        Url::parse(&sim.base_url()).unwrap(),
        defaults.username,
        Secret::new(defaults.password),
        sim.tz(),
    );
    c.limits = RateLimits::UNLIMITED.with_min_spacing(SPACING);
    c.retry = fast_retry();
    // Longer than the site's sessions: they expire under the source, which
    // must notice and log in again.
    c.session_max_age = Duration::from_secs(60);
    c.request_timeout = Duration::from_secs(5);
    Arc::new(ScraperSource::new(c).unwrap())
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 6,
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
        jitter: false,
        ..RetryPolicy::default()
    }
}

fn options(force: bool) -> SyncOptions {
    SyncOptions {
        batch_size: NonZeroU32::new(7).unwrap(),
        order: Order::OldestFirst,
        retry: fast_retry(),
        force,
        ..SyncOptions::default()
    }
}

/// The stored boardings, by id.
async fn stored(
    store: &dyn Store,
    source: &ScraperSource,
    first: NaiveDate,
    last: NaiveDate,
) -> BTreeMap<String, StoredRecord> {
    store
        .existing(
            source.stream(),
            &ExistingQuery::InDays {
                entity: "boarding".into(),
                range: Span::new(first, last + ChronoDuration::days(30)).unwrap(),
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.external_id.clone(), r))
        .collect()
}

/// Fails with the differences when the store does not hold exactly the
/// simulator's boardings.
fn assert_same(stored: &BTreeMap<String, StoredRecord>, expected: &[SimBoarding]) {
    let want: BTreeMap<&str, &SimBoarding> = expected
        .iter()
        .map(|b| (b.appointment_id.as_str(), b))
        .collect();
    let missing: Vec<&&str> = want
        .keys()
        .filter(|id| !stored.contains_key(**id))
        .collect();
    let extra: Vec<&String> = stored
        .keys()
        .filter(|id| !want.contains_key(id.as_str()))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    let mut wrong = Vec::new();
    for (id, b) in &want {
        let s = &stored[*id];
        let expected_payload = b.payload();
        let fields_differ: Vec<String> = expected_payload
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, v)| !same_value(v, s.payload.get(k.as_str()).unwrap_or(&Value::Null)))
            .map(|(k, v)| {
                format!(
                    "{k}: want {v}, got {}",
                    s.payload.get(k.as_str()).unwrap_or(&Value::Null)
                )
            })
            .collect();
        if !fields_differ.is_empty()
            || s.deleted != b.deleted
            || s.unit != Unit::Day(b.check_in_day)
        {
            wrong.push(format!(
                "{id}: {fields_differ:?} deleted {} vs {}, unit {:?} vs {}",
                s.deleted, b.deleted, s.unit, b.check_in_day
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} boardings differ, e.g. {:#?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}

// Numbers compare by value (a store may give 157 back for 157.0).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Imports a seeded year, checks the store against the simulator, changes
/// some boardings at the site, imports again and checks that exactly those
/// changes arrived.
pub(crate) async fn import_a_year<S>(store: Arc<S>)
where
    S: Store + CheckpointStore + 'static,
{
    let started = Instant::now();
    let sim = BookingSim::start(sim_config(365)).await.unwrap();
    let source = source_for(&sim);
    let limiter = Arc::new(RateLimiter::new(source.info().limits));
    let engine = Engine::new(source.clone(), store.clone(), store.clone(), limiter);
    let first = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let last = NaiveDate::from_ymd_opt(2025, 12, 31).unwrap();
    let target = Target::days(first, last, sim.tz()).unwrap();

    let report = engine.run(&target, &options(false)).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    assert_eq!(report.batches_failed, 0);
    let expected = sim.boardings();
    assert!(expected.len() > 500, "{}", expected.len());
    assert_eq!(report.counts.created, expected.len() as u64);
    assert_same(
        &stored(store.as_ref(), &source, first, last).await,
        &expected,
    );

    let stats = sim.stats();
    assert!(
        stats.session_expiries >= 3,
        "sessions expired only {} times",
        stats.session_expiries
    );
    assert!(stats.logins > stats.session_expiries / 2, "{stats:?}");
    assert!(
        stats.errors_injected > 0 && stats.truncated_injected > 0,
        "{stats:?}"
    );
    // Every request the site saw went through the limiter...
    assert_eq!(
        report.requests, stats.requests,
        "requests that bypassed the limiter"
    );
    // ...and arrived paced, give or take scheduling jitter at this
    // millisecond scale.
    assert!(
        stats.breaches * 20 <= stats.requests,
        "requests came faster than the pacing: {stats:?}"
    );
    // One week page per 7-day batch (53), plus repeats after an injected
    // fault or an expired session.
    let weeks = stats.path("GET /schedule/days-7");
    let repeats = stats.errors_injected + stats.truncated_injected + stats.unauthenticated;
    assert!((53..=53 + repeats).contains(&weeks), "{stats:?}");
    let details_first = stats.path("GET /schedule/a");
    eprintln!("first import: {:?}, {stats:?}", started.elapsed());

    // Change some boardings at the site: cancel, delete, and edit what the
    // schedule list shows (check-out, pet, check-in on the next day).
    let live: Vec<&SimBoarding> = expected.iter().filter(|b| !b.deleted).collect();
    let id = |i: usize| {
        live[i * 37 % live.len()]
            .appointment_id
            .parse::<u64>()
            .unwrap()
    };
    let mut changed: BTreeSet<String> = BTreeSet::new();
    let mut deleted = 0;
    for i in 0..3 {
        assert!(sim.cancel(id(i)));
        changed.insert(id(i).to_string());
        deleted += 1;
    }
    for i in 3..6 {
        assert!(sim.delete(id(i)));
        changed.insert(id(i).to_string());
        deleted += 1;
    }
    for i in 6..9 {
        let b = live[i * 37 % live.len()];
        let edit = BookingEdit {
            pet: Some(format!("{} & Friend", b.pet)),
            check_out: Some(Some(
                b.check_out.unwrap_or(b.check_in) + ChronoDuration::days(2),
            )),
            ..BookingEdit::default()
        };
        assert!(sim.edit(id(i), edit));
        changed.insert(id(i).to_string());
    }
    let moved = live[9 * 37 % live.len()];
    assert!(sim.edit(
        id(9),
        BookingEdit {
            check_in: Some(moved.check_in + ChronoDuration::days(1)),
            check_out: Some(Some(
                moved.check_out.unwrap_or(moved.check_in) + ChronoDuration::days(1)
            )),
            ..BookingEdit::default()
        }
    ));
    changed.insert(id(9).to_string());
    assert_eq!(changed.len(), 10, "distinct boardings");
    sim.reset_stats();

    let report = engine.run(&target, &options(true)).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    assert_eq!(report.counts.created, 0);
    assert_eq!(report.counts.deleted, deleted);
    assert_eq!(report.counts.updated, 4);
    let changes = store.run_changes(&report.id).await.unwrap();
    let changed_ids: BTreeSet<String> = changes.iter().map(|c| c.external_id.clone()).collect();
    assert_eq!(changed_ids, changed);
    assert_same(
        &stored(store.as_ref(), &source, first, last).await,
        &sim.boardings(),
    );
    let stats = sim.stats();
    assert_eq!(
        report.requests, stats.requests,
        "requests that bypassed the limiter"
    );
    assert!(
        stats.path("GET /schedule/a") < details_first / 2,
        "unchanged rows should not be read again: {} detail pages vs {details_first}",
        stats.path("GET /schedule/a")
    );
    eprintln!("whole test: {:?}, second run {stats:?}", started.elapsed());
    sim.shutdown().await;
}
