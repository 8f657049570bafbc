//! Shared by the end-to-end tests: a simulator, the sources, the engine, and
//! an exact comparison of what was stored with what the simulator holds.

#![allow(dead_code)]

pub(crate) mod company;

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sync_core::plan::Preset;
use sync_core::{
    CheckpointStore, DayRange, Engine, ExistingQuery, KeyRange, Order, RateLimiter, RateLimits,
    RetryPolicy, RunReport, RunStatus, Secret, Store, SyncMode, SyncOptions, Target, Unit,
};
use sync_sim::yclients::{RunningYclientsSim, SimLimits, YclientsSim, YclientsSimConfig};
use sync_source_yclients::{
    sources_for_companies, CompanySources, YclientsClients, YclientsConfig, YclientsRecords,
};

pub(crate) const COMPANY: u64 = 101;

/// The documented limits scaled up tenfold, so tests finish fast; the
/// limiter holds them at the default (balanced) safety margin.
pub(crate) fn fast_limits() -> SimLimits {
    SimLimits::new(Some(50), Some(2000))
}

pub(crate) struct Setup {
    pub(crate) sim: RunningYclientsSim,
    pub(crate) limiter: Arc<RateLimiter>,
    pub(crate) sources: CompanySources,
}

pub(crate) fn sim_config(clients: usize, records: usize) -> YclientsSimConfig {
    YclientsSimConfig {
        clients,
        records,
        limits: fast_limits(),
        ..YclientsSimConfig::default()
    }
}

/// Starts the simulator and builds the sources; with `login`, the source
/// logs in with login and password instead of being given a user token.
pub(crate) async fn start(sim: YclientsSimConfig, login: bool) -> Setup {
    start_with(sim, login, |_| {}).await
}

/// Like [`start`], with `tweak` applied to the sources' configuration.
pub(crate) async fn start_with(
    sim: YclientsSimConfig,
    login: bool,
    tweak: impl FnOnce(&mut YclientsConfig),
) -> Setup {
    let sim = YclientsSim::start(sim).await.unwrap();
    let cfg = sim.config().clone();
    let mut config = YclientsConfig::new(Secret::new(cfg.partner_token.clone()), vec![COMPANY])
        .with_base_url(&sim.base_url())
        .unwrap();
    config = if login {
        config.with_login(cfg.login.clone(), Secret::new(cfg.password.clone()))
    } else {
        config.with_user_token(Secret::new(cfg.user_token.clone()))
    };
    config.tz = cfg.tz;
    config.request_timeout = Duration::from_secs(10);
    tweak(&mut config);
    let sources = sources_for_companies(&config).unwrap().remove(0);
    let sim_limits = RateLimits::new(cfg.limits.per_second, cfg.limits.per_minute);
    let utilization = Preset::Balanced.settings().utilization;
    let limiter = Arc::new(RateLimiter::new(sim_limits.scaled(utilization)));
    Setup {
        sim,
        limiter,
        sources,
    }
}

pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        ..RetryPolicy::default()
    }
}

/// Options of a test run: batches as the source describes them (windows
/// sized by density, pages of client ids), two requests in flight at most.
pub(crate) fn options(order: Order, mode: SyncMode) -> SyncOptions {
    SyncOptions::builder()
        .order(order)
        .mode(mode)
        .max_in_flight(NonZeroUsize::new(2).unwrap())
        .retry(fast_retry())
        .build()
}

/// An engine for `source` over `store`, paced by the setup's limiter and
/// sharing the company's session.
pub(crate) fn engine<S: Store + CheckpointStore + 'static>(
    s: &Setup,
    source: Arc<dyn sync_core::Source>,
    store: &Arc<S>,
) -> Engine {
    Engine::new(source, store.clone(), store.clone(), s.limiter.clone())
        .with_session(s.sources.session.clone())
}

pub(crate) fn whole_range(s: &Setup) -> DayRange {
    DayRange::new(s.sim.config().first_day(), s.sim.config().end_date).unwrap()
}

pub(crate) async fn sync_records<S: Store + CheckpointStore + 'static>(
    s: &Setup,
    store: &Arc<S>,
    mode: SyncMode,
) -> RunReport {
    let range = whole_range(s);
    let target = Target::Days {
        range,
        tz: s.sim.config().tz,
    };
    engine(s, s.sources.records.clone(), store)
        .run(&target, &options(Order::NewestFirst, mode))
        .await
        .unwrap()
}

pub(crate) async fn sync_clients<S: Store + CheckpointStore + 'static>(
    s: &Setup,
    store: &Arc<S>,
    mode: SyncMode,
) -> RunReport {
    // Every client id: the engine asks the source which exist.
    let target = Target::Keys(KeyRange {
        first: 1,
        last: i64::MAX,
    });
    engine(s, s.sources.clients.clone(), store)
        .run(&target, &options(Order::OldestFirst, mode))
        .await
        .unwrap()
}

pub(crate) fn assert_clean(report: &RunReport) {
    assert_eq!(report.status, RunStatus::Completed, "{report:#?}");
    assert_eq!(report.batches_failed, 0, "{:?}", report.errors);
    assert_eq!(
        report.rate_limited, 0,
        "no 429 at the default safety margin"
    );
}

pub(crate) fn assert_no_breach(s: &Setup) {
    let stats = s.sim.stats();
    assert_eq!(stats.limit_breaches, 0, "{stats:?}");
    assert_eq!(stats.responses_429, 0, "{stats:?}");
}

/// Every record and client the simulator holds is stored, exactly as served
/// (payload, deleted flag, day), and nothing else.
pub(crate) async fn assert_store_equals_sim<S: Store>(s: &Setup, store: &S) {
    let range = whole_range(s);
    let stored = store
        .existing(
            &YclientsRecords::stream_id(COMPANY),
            &ExistingQuery::InDays {
                entity: "record".into(),
                range,
            },
        )
        .await
        .unwrap();
    let expected: BTreeMap<String, Value> = s
        .sim
        .records(COMPANY)
        .into_iter()
        .map(|v| (v["id"].to_string(), v))
        .collect();
    assert_eq!(stored.len(), expected.len(), "record count");
    for r in &stored {
        let want = expected
            .get(&r.external_id)
            .unwrap_or_else(|| panic!("record {} is not at the source", r.external_id));
        assert_eq!(&r.payload, want, "record {}", r.external_id);
        assert_eq!(
            r.deleted,
            want["deleted"] == Value::Bool(true),
            "deleted flag of {}",
            r.external_id
        );
        let day = want["date"].as_str().unwrap()[..10].parse().unwrap();
        assert_eq!(r.unit, Unit::Day(day));
    }

    let clients = s.sim.clients(COMPANY);
    let ids: Vec<String> = clients.iter().map(|c| c["id"].to_string()).collect();
    let stored = store
        .existing(
            &YclientsClients::stream_id(COMPANY),
            &ExistingQuery::ByIds {
                entity: "client".into(),
                ids,
            },
        )
        .await
        .unwrap();
    let stored: BTreeMap<String, Value> = stored
        .into_iter()
        .map(|r| (r.external_id, r.payload))
        .collect();
    assert_eq!(stored.len(), clients.len(), "client count");
    for c in clients {
        assert_eq!(
            stored.get(&c["id"].to_string()),
            Some(&c),
            "client {}",
            c["id"]
        );
    }
}

/// A full sync of records and clients, then exact equality, no breach.
pub(crate) async fn full_sync_matches<S: Store + CheckpointStore + 'static>(
    s: &Setup,
    store: &Arc<S>,
) {
    let records = sync_records(s, store, SyncMode::Full).await;
    assert_clean(&records);
    assert_eq!(
        records.counts.created as usize,
        s.sim.records(COMPANY).len()
    );
    let clients = sync_clients(s, store, SyncMode::Full).await;
    assert_clean(&clients);
    assert_eq!(
        clients.counts.created as usize,
        s.sim.clients(COMPANY).len()
    );
    assert_store_equals_sim(s, store.as_ref()).await;
    assert_no_breach(s);
}

/// After a full sync: 1% of records change at the source; a delta run
/// fetches only those (a few requests) and stores exactly the changes.
pub(crate) async fn delta_stores_exactly_the_changes<S: Store + CheckpointStore + 'static>(
    s: &Setup,
    store: &Arc<S>,
) {
    let full_requests = s.sim.stats().endpoint("records");
    let changed = s.sim.change_random(COMPANY, 0.01, 0.0, 99);
    s.sim.reset_stats();
    let report = sync_records(s, store, SyncMode::Delta).await;
    assert_clean(&report);
    assert_eq!(report.mode, SyncMode::Delta);
    let c = report.counts;
    assert_eq!((c.created, c.unchanged), (0, 0), "{c:?}");
    assert_eq!(
        (c.updated + c.deleted) as usize,
        changed.records.len(),
        "{c:?}"
    );
    let delta_requests = s.sim.stats().requests;
    assert!(
        delta_requests <= 4 && delta_requests * 10 < full_requests,
        "{delta_requests} vs {full_requests}"
    );
    let changes = CheckpointStore::run_changes(store.as_ref(), &report.id)
        .await
        .unwrap();
    let mut ids: Vec<i64> = changes
        .iter()
        .map(|c| c.external_id.parse().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, changed.records);
    assert_store_equals_sim(s, store.as_ref()).await;

    // Only the volatile last_change_date moves: fetched again, all unchanged.
    // (The overlap before the last run's start also re-reads the changes
    // above: unchanged too.)
    let touched = s.sim.touch_random(COMPANY, 0.005, 5);
    let reread: std::collections::BTreeSet<i64> =
        touched.iter().chain(&changed.records).copied().collect();
    let report = sync_records(s, store, SyncMode::Delta).await;
    assert_clean(&report);
    assert_eq!(
        report.counts.unchanged as usize,
        reread.len(),
        "{:?}",
        report.counts
    );
    assert_eq!(
        report.counts.updated + report.counts.created + report.counts.deleted,
        0
    );
    assert_no_breach(s);
}
