//! The source against the simulator with an in-memory store: a wrong
//! password, a run with nothing to do, cancellations that vanish from the
//! list, and the plan that prices a full run and a delta.

mod common;

use std::time::Duration;

use common::*;
use sync_core::{MemoryStore, RunStatus, Secret, SyncError};
use sync_sim::booking::BookingSimConfig;
use sync_source_scraper::ScraperSource;

fn four_weeks(list_cancelled: bool) -> BookingSimConfig {
    BookingSimConfig {
        list_cancelled,
        ..sim_config(28, 7, Duration::from_secs(360))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_stops_the_run_after_one_login_with_the_site_message() {
    let sim = start(four_weeks(true)).await;
    let mut config = config(&sim, Duration::ZERO);
    config.password = Secret::new("not the password");
    let source = std::sync::Arc::new(ScraperSource::new(config).unwrap());
    let store = std::sync::Arc::new(MemoryStore::new());
    let e = engine(&source, &store)
        .run(&target(&sim, data_range(&sim)), &full(false))
        .await
        .unwrap_err();
    assert!(matches!(e, SyncError::Unauthenticated { .. }), "{e:?}");
    assert!(e.to_string().contains("incorrect"), "{e}");
    assert!(!e.to_string().contains("not the password"), "{e}");
    let stats = sim.stats();
    assert_eq!((stats.login_gets, stats.login_posts), (1, 1), "{stats:?}");
    assert_eq!(stats.requests, 2);
    let runs = sync_core::CheckpointStore::runs(store.as_ref(), None, 1)
        .await
        .unwrap();
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert_eq!(runs[0].requests, 2, "the site's count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_nothing_to_do_sends_nothing_and_one_login_serves_a_run() {
    let sim = start(four_weeks(true)).await;
    let source = source(&sim, Duration::ZERO);
    let store = std::sync::Arc::new(MemoryStore::new());
    let engine = engine(&source, &store);
    let t = target(&sim, data_range(&sim));
    let first = engine.run(&t, &full(false)).await.unwrap();
    let stats = sim.stats();
    assert_eq!(first.requests, stats.requests);
    assert_eq!(
        (stats.login_gets, stats.login_posts, stats.logins),
        (1, 1, 1)
    );
    sim.reset_stats();
    let again = engine.run(&t, &full(false)).await.unwrap();
    assert_eq!(again.status, RunStatus::Completed);
    assert_eq!((again.requests, again.batches_done), (0, 0));
    assert_eq!(sim.stats().requests, 0, "not even a login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellations_that_vanish_from_the_list_are_found_by_the_recheck() {
    let sim = start(four_weeks(false)).await;
    let source = source(&sim, Duration::ZERO);
    let store = std::sync::Arc::new(MemoryStore::new());
    let engine = engine(&source, &store);
    let range = data_range(&sim);
    let t = target(&sim, range);
    engine.run(&t, &full(false)).await.unwrap();
    let live = sim.live_boardings();
    let victims: Vec<String> = [2, 20, 40]
        .iter()
        .map(|i| live[*i % live.len()].appointment_id.clone())
        .collect();
    for id in &victims {
        assert!(sim.cancel(id));
    }
    sim.delete(&live[30].appointment_id);
    let report = engine.run(&t, &full(true)).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    assert_eq!(report.counts.deleted, 4, "{:?}", report.counts);
    assert_eq!(report.counts.created, 0);
    assert_exact(
        &stored(store.as_ref(), &source, range).await,
        &sim.boardings(),
        range,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_prices_a_full_run_and_a_delta() {
    let mut c = sim_config(84, 35, Duration::from_secs(360));
    c.seed = 3;
    let sim = start(c).await;
    let source = source(&sim, Duration::ZERO);
    let store = std::sync::Arc::new(MemoryStore::new());
    let engine = engine(&source, &store);
    let range = data_range(&sim);
    let t = target(&sim, range);
    let plan = engine.plan(&t, &full(false)).await.unwrap();
    // A login and one schedule page sampled.
    assert_eq!(plan.requests_to_plan, 3);
    assert_eq!(plan.batches, 12);
    sim.reset_stats();
    let run = engine.run(&t, &full(false)).await.unwrap();
    let off = (plan.requests as f64 - run.requests as f64).abs() / run.requests as f64;
    eprintln!(
        "kennel plan: full run of {} days planned at {} requests, made {}",
        range.len(),
        plan.requests,
        run.requests
    );
    assert!(
        off < 0.35,
        "planned {} requests, made {}",
        plan.requests,
        run.requests
    );

    let delta_plan = engine.plan(&t, &delta()).await.unwrap();
    sim.reset_stats();
    let delta_run = engine.run(&t, &delta()).await.unwrap();
    eprintln!(
        "kennel plan: delta planned at {} requests ({} days re-checked), made {}",
        delta_plan.requests, delta_plan.units, delta_run.requests
    );
    // The last 14 days and the next 30 are due (of the 84).
    assert_eq!(delta_plan.units, 45);
    let off =
        (delta_plan.requests as f64 - delta_run.requests as f64).abs() / delta_run.requests as f64;
    assert!(
        off < 0.35,
        "planned {}, made {}",
        delta_plan.requests,
        delta_run.requests
    );
    assert!(delta_run.requests < run.requests * 2 / 3);
}
