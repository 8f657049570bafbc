//! The source against the simulator with an in-memory store: cancellations
//! that vanish from the list, edits only the detail page shows, and a wrong
//! password.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use sync_core::{
    Engine, ExistingQuery, MemoryStore, Order, RateLimiter, RetryPolicy, RunStatus, Secret, Source,
    Span, Store, SyncError, SyncOptions, Target,
};
use sync_sim::booking::{BookingEdit, BookingSim, BookingSimConfig, RunningBookingSim};
use sync_source_scraper::{ScraperConfig, ScraperSource};
use url::Url;

fn first() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
}

async fn sim(list_cancelled: bool) -> RunningBookingSim {
    BookingSim::start(BookingSimConfig {
        start: first(),
        days: 28,
        list_cancelled,
        session_ttl: Duration::from_secs(30),
        ..BookingSimConfig::default()
    })
    .await
    .unwrap()
}

fn source(sim: &RunningBookingSim, password: &str, reuse_unchanged: bool) -> Arc<ScraperSource> {
    let mut c = ScraperConfig::new(
        Url::parse(&sim.base_url()).unwrap(),
        BookingSimConfig::default().username,
        Secret::new(password),
        sim.tz(),
    );
    c.limits = sync_core::RateLimits::UNLIMITED;
    c.retry = RetryPolicy::none();
    c.reuse_unchanged = reuse_unchanged;
    Arc::new(ScraperSource::new(c).unwrap())
}

struct Setup {
    engine: Engine,
    store: Arc<MemoryStore>,
    source: Arc<ScraperSource>,
    target: Target,
}

fn setup(sim: &RunningBookingSim, password: &str, reuse_unchanged: bool) -> Setup {
    let source = source(sim, password, reuse_unchanged);
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        store.clone(),
        Arc::new(RateLimiter::unlimited()),
    );
    let target = Target::days(first(), first() + chrono::Duration::days(27), sim.tz()).unwrap();
    Setup {
        engine,
        store,
        source,
        target,
    }
}

fn options(force: bool) -> SyncOptions {
    SyncOptions {
        batch_size: NonZeroU32::new(10).unwrap(),
        order: Order::NewestFirst,
        retry: RetryPolicy::none(),
        force,
        ..SyncOptions::default()
    }
}

async fn stored(s: &Setup, id: &str) -> sync_core::StoredRecord {
    let mut found = s
        .store
        .existing(
            s.source.stream(),
            &ExistingQuery::ByIds {
                entity: "boarding".into(),
                ids: vec![id.to_string()],
            },
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{id}");
    found.remove(0)
}

#[tokio::test]
async fn cancellations_that_vanish_from_the_list_are_found_by_the_recheck() {
    let sim = sim(false).await;
    let s = setup(&sim, &BookingSimConfig::default().password, true);
    let report = s.engine.run(&s.target, &options(false)).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    let boardings = sim.boardings();
    assert_eq!(report.counts.created, boardings.len() as u64);
    assert!(boardings.iter().all(|b| !b.deleted));

    let victim = &boardings[boardings.len() / 2];
    assert!(sim.cancel(&victim.appointment_id));
    let report = s.engine.run(&s.target, &options(true)).await.unwrap();
    assert_eq!(
        (
            report.counts.deleted,
            report.counts.updated,
            report.counts.created
        ),
        (1, 0, 0)
    );
    let r = stored(&s, &victim.appointment_id).await;
    assert!(r.deleted);
    assert_eq!(r.payload["status"], "Cancelled");
}

#[tokio::test]
async fn detail_only_edits_need_a_full_reread() {
    let sim = sim(true).await;
    let s = setup(&sim, &BookingSimConfig::default().password, true);
    s.engine.run(&s.target, &options(false)).await.unwrap();
    let b = sim.boardings().into_iter().find(|b| !b.deleted).unwrap();
    let id: u64 = b.appointment_id.parse().unwrap();
    assert!(sim.edit(
        id,
        BookingEdit {
            notes: Some(Some("Edited on the detail page".into())),
            ..BookingEdit::default()
        }
    ));

    // The list row is unchanged, so the stored copy is reused.
    let report = s.engine.run(&s.target, &options(true)).await.unwrap();
    assert_eq!(report.counts.updated, 0);

    // With reuse off, every detail page is read and the edit arrives.
    let full = setup(&sim, &BookingSimConfig::default().password, false);
    full.engine
        .run(&full.target, &options(false))
        .await
        .unwrap();
    assert_eq!(
        stored(&full, &b.appointment_id).await.payload["notes"],
        "Edited on the detail page"
    );
}

#[tokio::test]
async fn wrong_password_stops_the_run_with_a_clear_message() {
    let sim = sim(true).await;
    let s = setup(&sim, "not the password", true);
    let e = s.engine.run(&s.target, &options(false)).await.unwrap_err();
    assert!(matches!(e, SyncError::Unauthenticated { .. }), "{e:?}");
    assert!(
        e.to_string().contains("Invalid username or password"),
        "{e}"
    );
    assert!(!e.to_string().contains("not the password"));
    assert_eq!(sim.stats().path("GET /schedule/days-7"), 0);
    assert!(s.source.session_is_stale());
}

#[tokio::test]
async fn a_session_ended_by_the_site_is_renewed_within_a_batch() {
    let sim = sim(true).await;
    let s = setup(&sim, &BookingSimConfig::default().password, true);
    let ctx = sync_core::FetchContext::new(
        s.source.stream().clone(),
        Arc::new(RateLimiter::unlimited()),
    );
    s.source.authenticate(&ctx).await.unwrap();
    sim.expire_sessions();
    let batch = sync_core::Batch {
        index: 0,
        span: sync_core::BatchSpan::Days {
            range: Span::new(first(), first() + chrono::Duration::days(6)).unwrap(),
            tz: sim.tz(),
        },
    };
    let records = s.source.fetch(&batch, &ctx).await.unwrap();
    assert!(!records.is_empty());
    let stats = sim.stats();
    assert_eq!((stats.logins, stats.session_expiries), (2, 1));
}
