//! Keeping the copy current against the booking-site simulator: after
//! changes inside the re-check horizon (edits of price and notes that only
//! the detail page shows, cancellations, deletions, new bookings, all
//! checking in within the last or next 10 days), one delta run makes the
//! store equal the site again in far fewer requests than a full run; after
//! such changes anywhere in the range, one forced run does; and `verify`'s
//! per-day counts agree with the store after a full sync, and tell the days
//! where they no longer do.
//!
//! Run with `--nocapture` to see the request counts of each run.

mod common;

use std::sync::Arc;

use chrono::Duration as ChronoDuration;
use common::*;
use sync_core::{CheckpointStore, DayRange, MemoryStore, RunReport, RunStatus, Store, SyncOptions};
use sync_sim::booking::{BookingSimConfig, Horizon, MutationKind, MutationPlan, RunningBookingSim};
use sync_source_scraper::ScraperSource;

/// A year of data, the last 60 days of it ahead of today.
fn year() -> BookingSimConfig {
    let mut c = sim_config(365, 60, std::time::Duration::from_secs(360));
    c.boardings_per_day = 3;
    c.daycare_per_day = 2;
    c
}

struct Kennel {
    sim: RunningBookingSim,
    source: Arc<ScraperSource>,
    store: Arc<MemoryStore>,
    range: DayRange,
}

impl Kennel {
    async fn synced(config: BookingSimConfig) -> (Self, RunReport) {
        let sim = start(config).await;
        let source = source(&sim, std::time::Duration::ZERO);
        let store = Arc::new(MemoryStore::new());
        let range = data_range(&sim);
        let k = Self {
            sim,
            source,
            store,
            range,
        };
        let report = k.run(range, &full(false)).await;
        k.assert_exact().await;
        (k, report)
    }

    async fn run(&self, range: DayRange, options: &SyncOptions) -> RunReport {
        self.sim.reset_stats();
        let report = engine(&self.source, &self.store)
            .run(&target(&self.sim, range), options)
            .await
            .unwrap();
        assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
        assert_eq!(
            report.requests,
            self.sim.stats().requests,
            "the site's count"
        );
        report
    }

    async fn differences(&self) -> Vec<String> {
        let stored = stored(self.store.as_ref(), &self.source, self.range).await;
        differences(&stored, &self.sim.boardings(), self.range)
    }

    async fn assert_exact(&self) {
        let stored = stored(self.store.as_ref(), &self.source, self.range).await;
        assert_exact(&stored, &self.sim.boardings(), self.range);
    }

    /// What a delta run targets when none is given: the stored coverage's
    /// first day up to today and the look-ahead of the re-check schedule.
    async fn delta_range(&self) -> DayRange {
        let covered = self.store.coverage(self.source.stream()).await.unwrap();
        let first = covered.days.spans().next().unwrap().first;
        let ahead = SyncOptions::default().refresh.every_run_ahead;
        DayRange::new(first, today() + ChronoDuration::days(i64::from(ahead))).unwrap()
    }

    /// Days where the source's per-day counts and the store's differ.
    async fn differing_days(&self) -> (usize, u64) {
        let counted = engine(&self.source, &self.store)
            .day_counts(self.range, &full(false))
            .await
            .unwrap();
        let at_source = counted.counts.expect("the kennel source counts days");
        let at_store = self
            .store
            .day_counts(self.source.stream(), self.range)
            .await
            .unwrap();
        let differ = self
            .range
            .iter()
            .filter(|d| at_source.get(d) != at_store.get(d))
            .count();
        (differ, counted.requests)
    }
}

fn in_horizon() -> MutationPlan {
    MutationPlan {
        fraction: 0.25,
        seed: 11,
        horizon: Some(Horizon::around(today(), 10)),
        outside: false,
        kinds: vec![
            MutationKind::Price,
            MutationKind::Notes,
            MutationKind::Cancel,
            MutationKind::Delete,
        ],
        additions: 6,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_delta_run_after_changes_in_the_horizon_makes_the_store_equal_the_site() {
    let (k, first) = Kennel::synced(year()).await;
    let done = k.sim.mutate(&in_horizon());
    let detail_only = done.iter().filter(|m| !m.shows_on_list()).count();
    assert!(detail_only >= 4 && done.len() >= 12, "{done:?}");
    assert!(!k.differences().await.is_empty(), "the changes show");

    let report = k.run(k.delta_range().await, &delta()).await;
    let diff = k.differences().await;
    assert!(
        diff.is_empty(),
        "{} differences after the delta: {:#?}",
        diff.len(),
        &diff[..diff.len().min(8)]
    );
    assert!(
        report.counts.updated >= detail_only as u64,
        "{:?}",
        report.counts
    );
    assert!(
        report.counts.created >= 6 && report.counts.deleted >= 2,
        "{:?}",
        report.counts
    );
    assert!(
        report.requests * 3 < first.requests,
        "delta {} vs full {} requests",
        report.requests,
        first.requests
    );
    let stats = k.sim.stats();
    eprintln!(
        "kennel delta: a full sync of {} days made {} requests; after {} changes checking in \
         within 10 days of today ({detail_only} only on detail pages), one delta run made {} \
         requests ({} schedule pages, {} detail pages, {} logins): {} created, {} updated, {} \
         deleted; store equals the site",
        k.range.len(),
        first.requests,
        done.len(),
        report.requests,
        stats.schedule_requests,
        stats.detail_requests,
        stats.logins,
        report.counts.created,
        report.counts.updated,
        report.counts.deleted,
    );
    // Nothing changed since: the next delta re-reads the same horizon and
    // finds nothing to change.
    let again = k.run(k.delta_range().await, &delta()).await;
    assert_eq!(
        (
            again.counts.created,
            again.counts.updated,
            again.counts.deleted
        ),
        (0, 0, 0)
    );
    k.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_forced_run_after_changes_anywhere_makes_the_store_equal_the_site() {
    let (k, first) = Kennel::synced(year()).await;
    let done = k.sim.mutate(&MutationPlan {
        fraction: 0.03,
        seed: 5,
        horizon: None,
        outside: false,
        kinds: Vec::new(),
        additions: 8,
    });
    let detail_only = done.iter().filter(|m| !m.shows_on_list()).count();
    assert!(detail_only >= 5 && done.len() >= 25, "{done:?}");
    // A plain re-run has nothing to do: every day is covered.
    let plain = k.run(k.range, &full(false)).await;
    assert_eq!((plain.requests, plain.batches_done), (0, 0), "{plain:?}");
    assert!(!k.differences().await.is_empty());

    let forced = k.run(k.range, &full(true)).await;
    let diff = k.differences().await;
    assert!(
        diff.is_empty(),
        "{} differences after --force: {:#?}",
        diff.len(),
        &diff[..diff.len().min(8)]
    );
    assert!(
        forced.counts.updated >= detail_only as u64,
        "{:?}",
        forced.counts
    );
    eprintln!(
        "kennel force: after {} changes anywhere in {} days ({detail_only} only on detail pages), \
         one forced run made {} requests (the first full run {}): {} created, {} updated, {} \
         deleted; store equals the site",
        done.len(),
        k.range.len(),
        forced.requests,
        first.requests,
        forced.counts.created,
        forced.counts.updated,
        forced.counts.deleted,
    );
    k.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_agrees_after_a_full_sync_and_names_the_days_that_changed() {
    let mut config = sim_config(56, 10, std::time::Duration::from_secs(360));
    config.seed = 23;
    let (k, _) = Kennel::synced(config).await;
    let (differ, requests) = k.differing_days().await;
    assert_eq!(differ, 0, "days differ right after a full sync");
    // A schedule page a week (8 weeks) and a login.
    assert_eq!(requests, 8 + 2);
    eprintln!(
        "kennel verify: {} days, 0 differ, {requests} requests",
        k.range.len()
    );

    // Deleted and moved boardings at the site: their days differ.
    let live = k.sim.live_boardings();
    assert!(k.sim.delete(&live[3].appointment_id));
    assert!(k.sim.move_booking(&live[40].appointment_id, 2));
    let (differ, _) = k.differing_days().await;
    assert!((2..=3).contains(&differ), "{differ} days differ");
    k.sim.shutdown().await;
}
