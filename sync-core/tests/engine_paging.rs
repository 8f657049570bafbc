//! The engine's pipeline against a paged source: pages fetched in parallel,
//! batches stored whole (large ones in parts), memory bounded by the
//! records in flight, windows sized by density, oversized windows cut
//! again, kills and resumes.
//!
//! Every test runs on a paused tokio clock.

use std::collections::{BTreeMap, BTreeSet};
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sync_core::{
    async_trait, Batch, BatchCommit, BatchSpan, CheckpointStore, Coverage, Cursor, DayRange,
    Engine, ExistingQuery, FetchContext, MemoryStore, Page, Probe, RateLimiter, RateLimits, Record,
    RecordChange, RecordCounts, RunId, RunReport, RunStatus, Source, SourceInfo, Store,
    StoredRecord, StreamId, SyncError, SyncOptions, Target, Tz, Unit, Windows,
};
use tokio::time::Instant;

// ------------------------------------------------------------------ source

/// What the paged source's server saw.
#[derive(Debug, Default)]
struct Log {
    /// Page requests.
    requests: u64,
    /// Probe requests.
    probes: u64,
    in_flight: usize,
    max_in_flight: usize,
    /// Per window (its span): pages requested, in order, and pages answered.
    requested: BTreeMap<String, Vec<u64>>,
    answered: BTreeMap<String, BTreeSet<u64>>,
    /// Pages each window has.
    pages: BTreeMap<String, u64>,
    /// Windows stored so far.
    committed: BTreeSet<String>,
    /// Windows held in memory at most at once: some page answered, not
    /// stored yet.
    max_buffered: usize,
    /// Commits of a window some page of which was not answered yet.
    incomplete_commits: Vec<String>,
    /// Records answered and records committed so far, and the most
    /// answered but not yet committed at once.
    answered_records: usize,
    committed_records: usize,
    max_held_records: usize,
}

impl Log {
    fn buffered(&self) -> usize {
        self.answered
            .keys()
            .filter(|w| !self.committed.contains(*w))
            .count()
    }
}

/// A listing of records by local day, `page_size` a page: the first page
/// of a window says how many records it holds and names every other page,
/// so the engine may fetch them all at once.
#[derive(Debug)]
struct Paged {
    stream: StreamId,
    windows: Windows,
    page_size: u32,
    latency: Duration,
    /// Answers the probe with this instead of the truth.
    probe_says: Option<Probe>,
    records: BTreeMap<NaiveDate, Vec<Record>>,
    log: Arc<Mutex<Log>>,
}

impl Paged {
    fn new(
        name: &str,
        windows: Windows,
        page_size: u32,
        counts: &BTreeMap<NaiveDate, u32>,
    ) -> Self {
        let mut records = BTreeMap::new();
        for (&day, &n) in counts {
            let of_day: Vec<Record> = (0..n)
                .map(|i| {
                    Record::new(
                        "booking",
                        format!("{day}-{i}"),
                        Unit::Day(day),
                        json!({"day": day.to_string(), "n": i}),
                    )
                })
                .collect();
            records.insert(day, of_day);
        }
        Self {
            stream: StreamId::new(format!("paged:{name}"), "bookings"),
            windows,
            page_size,
            latency: Duration::from_millis(100),
            probe_says: None,
            records,
            log: Arc::default(),
        }
    }

    fn in_window(&self, range: DayRange) -> Vec<&Record> {
        self.records
            .range(range.first..=range.last)
            .flat_map(|(_, r)| r)
            .collect()
    }

    fn total(&self) -> usize {
        self.records.values().map(Vec::len).sum()
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }
}

/// Counts a request in flight at the server until dropped (answered or
/// abandoned).
struct InFlight<'a>(&'a Mutex<Log>);

impl<'a> InFlight<'a> {
    fn new(log: &'a Mutex<Log>) -> Self {
        let mut l = log.lock().unwrap();
        l.in_flight += 1;
        l.max_in_flight = l.max_in_flight.max(l.in_flight);
        Self(log)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap().in_flight -= 1;
    }
}

#[async_trait]
impl Source for Paged {
    fn info(&self) -> SourceInfo {
        SourceInfo::days(self.stream.clone(), Tz::UTC, self.windows).with_probe()
    }

    async fn fetch_page(
        &self,
        batch: &Batch,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> sync_core::Result<Page> {
        let BatchSpan::Days { range, .. } = batch.span else {
            return Err(SyncError::invalid_input("a day source"));
        };
        let page: u64 = cursor.map(Cursor::get).transpose()?.unwrap_or(0);
        let span = batch.span.to_string();
        ctx.request().await?;
        let guard = InFlight::new(&self.log);
        {
            let mut log = self.log();
            log.requests += 1;
            log.requested.entry(span.clone()).or_default().push(page);
        }
        tokio::time::sleep(self.latency).await;
        let all = self.in_window(range);
        let size = self.page_size as usize;
        let pages = all.len().div_ceil(size).max(1) as u64;
        let records: Vec<Record> = all
            .iter()
            .skip(page as usize * size)
            .take(size)
            .map(|r| (*r).clone())
            .collect();
        drop(guard);
        {
            let mut log = self.log();
            log.pages.insert(span.clone(), pages);
            log.answered.entry(span).or_default().insert(page);
            log.max_buffered = log.max_buffered.max(log.buffered());
            log.answered_records += records.len();
            log.max_held_records = log
                .max_held_records
                .max(log.answered_records - log.committed_records);
        }
        Ok(Page {
            records,
            more: if page == 0 {
                (1..pages).map(Cursor::new).collect()
            } else {
                Vec::new()
            },
            total: Some(all.len() as u64),
        })
    }

    async fn probe(&self, range: DayRange, ctx: &FetchContext) -> sync_core::Result<Option<Probe>> {
        ctx.request().await?;
        let _guard = InFlight::new(&self.log);
        self.log().probes += 1;
        tokio::time::sleep(self.latency).await;
        Ok(Some(self.probe_says.unwrap_or(Probe {
            items: self.in_window(range).len() as u64,
            days: u64::try_from(range.len()).unwrap(),
        })))
    }
}

// ------------------------------------------------------------------- store

/// The in-memory store, watched: a commit of a window that still has pages
/// out is noted, begins can be made to fail, and dead leases taken over.
#[derive(Debug)]
struct Watched {
    inner: MemoryStore,
    log: Arc<Mutex<Log>>,
    fail_begin: AtomicBool,
}

impl Watched {
    fn new(source: &Paged) -> Self {
        Self {
            inner: MemoryStore::new(),
            log: source.log.clone(),
            fail_begin: AtomicBool::new(false),
        }
    }

    /// What a store does at the next start after a process died: the run
    /// it left in progress is marked failed and its lease taken over.
    async fn take_over_dead_leases(&self) {
        for mut run in self.inner.runs(None, 100).await.unwrap() {
            if run.status == RunStatus::InProgress {
                run.status = RunStatus::Failed;
                run.finished_at = Some(Utc::now());
                self.inner.finish_run(&run).await.unwrap();
            }
        }
    }
}

fn window_of(covered: &Coverage) -> Option<String> {
    let spans: Vec<DayRange> = covered.days.spans().collect();
    match spans.as_slice() {
        [one] => Some(format!("days {one}")),
        _ => None,
    }
}

#[async_trait]
impl Store for Watched {
    async fn commit(&self, batch: BatchCommit<'_>) -> sync_core::Result<RecordCounts> {
        let window = window_of(batch.covered);
        if let Some(w) = &window {
            let mut log = self.log.lock().unwrap();
            let answered = log.answered.get(w).map_or(0, |a| a.len() as u64);
            if Some(&answered) != log.pages.get(w) {
                log.incomplete_commits.push(w.clone());
            }
        }
        let records = batch.records.len();
        let counts = self.inner.commit(batch).await?;
        let mut log = self.log.lock().unwrap();
        log.committed_records += records;
        if let Some(w) = window {
            log.committed.insert(w);
        }
        Ok(counts)
    }
    async fn existing(
        &self,
        stream: &StreamId,
        query: &ExistingQuery,
    ) -> sync_core::Result<Vec<StoredRecord>> {
        self.inner.existing(stream, query).await
    }
    async fn day_counts(
        &self,
        stream: &StreamId,
        range: DayRange,
    ) -> sync_core::Result<BTreeMap<NaiveDate, u64>> {
        self.inner.day_counts(stream, range).await
    }
}

#[async_trait]
impl CheckpointStore for Watched {
    async fn coverage(&self, stream: &StreamId) -> sync_core::Result<Coverage> {
        self.inner.coverage(stream).await
    }
    async fn clear_coverage(&self, stream: &StreamId, units: &Coverage) -> sync_core::Result<()> {
        self.inner.clear_coverage(stream, units).await
    }
    async fn last_checked(
        &self,
        stream: &StreamId,
        range: DayRange,
    ) -> sync_core::Result<Vec<(DayRange, DateTime<Utc>)>> {
        self.inner.last_checked(stream, range).await
    }
    async fn begin_run(&self, run: &RunReport) -> sync_core::Result<()> {
        if self.fail_begin.load(Ordering::SeqCst) {
            return Err(SyncError::fatal("the database is closed"));
        }
        self.inner.begin_run(run).await
    }
    async fn finish_run(&self, run: &RunReport) -> sync_core::Result<()> {
        self.inner.finish_run(run).await
    }
    async fn runs(
        &self,
        stream: Option<&StreamId>,
        limit: usize,
    ) -> sync_core::Result<Vec<RunReport>> {
        self.inner.runs(stream, limit).await
    }
    async fn run(&self, id: &RunId) -> sync_core::Result<Option<RunReport>> {
        self.inner.run(id).await
    }
    async fn run_changes(&self, id: &RunId) -> sync_core::Result<Vec<RecordChange>> {
        self.inner.run_changes(id).await
    }
}

// ----------------------------------------------------------------- helpers

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// `n` records on each of `days` days from 2024-01-01.
fn flat(days: u32, n: u32) -> BTreeMap<NaiveDate, u32> {
    (0..days)
        .map(|i| (day("2024-01-01") + chrono::Duration::days(i64::from(i)), n))
        .collect()
}

fn target_of(counts: &BTreeMap<NaiveDate, u32>) -> Target {
    let first = *counts.keys().next().unwrap();
    let last = *counts.keys().last().unwrap();
    Target::days(first, last, Tz::UTC).unwrap()
}

fn engine(source: &Arc<Paged>, store: &Arc<Watched>, budget: RateLimiter) -> Engine {
    Engine::new(
        source.clone(),
        store.clone(),
        store.clone(),
        Arc::new(budget),
    )
}

fn options(max_in_flight: usize) -> SyncOptions {
    SyncOptions::builder()
        .order(sync_core::Order::OldestFirst)
        .max_in_flight(NonZeroUsize::new(max_in_flight).unwrap())
        .build()
}

/// Invariant 1: every covered day holds exactly the source's records, and
/// no other day holds any.
async fn assert_checkpoint_matches_data(store: &Watched, source: &Paged) {
    let covered = store.inner.coverage(&source.stream).await.unwrap();
    let mut stored: BTreeMap<NaiveDate, BTreeSet<String>> = BTreeMap::new();
    for r in store.inner.records_of_source(&source.stream.source) {
        let Unit::Day(d) = r.unit else {
            panic!("a day record")
        };
        stored.entry(d).or_default().insert(r.external_id);
    }
    for (d, records) in &source.records {
        let have = stored.remove(d).unwrap_or_default();
        if covered.days.contains(*d) {
            let want: BTreeSet<String> = records.iter().map(|r| r.external_id.clone()).collect();
            assert_eq!(have, want, "day {d} is covered but its records differ");
        } else {
            assert!(have.is_empty(), "day {d} has records but is not covered");
        }
    }
    assert!(
        stored.is_empty(),
        "records of days the source does not have"
    );
    let incomplete = source.log().incomplete_commits.clone();
    assert!(
        incomplete.is_empty(),
        "windows stored before all their pages were in: {incomplete:?}"
    );
}

async fn assert_all_stored(store: &Watched, source: &Paged) {
    assert_checkpoint_matches_data(store, source).await;
    let covered = store.inner.coverage(&source.stream).await.unwrap();
    let first = *source.records.keys().next().unwrap();
    let last = *source.records.keys().last().unwrap();
    assert!(
        covered
            .days
            .gaps(DayRange::new(first, last).unwrap())
            .is_empty(),
        "days left uncovered"
    );
    assert_eq!(
        store.inner.records_of_source(&source.stream.source).len(),
        source.total()
    );
}

// ------------------------------------------------------------------- tests

#[tokio::test(start_paused = true)]
async fn pages_are_fetched_in_parallel_up_to_the_depth_and_a_batch_is_stored_whole() {
    // Ten days of 130 records, 20 a page: seven pages a day.
    let counts = flat(10, 130);
    let source = Arc::new(Paged::new(
        "parallel",
        Windows::Fixed { days: 1 },
        20,
        &counts,
    ));
    let store = Arc::new(Watched::new(&source));
    let started = Instant::now();
    let report = engine(&source, &store, RateLimiter::unlimited())
        .run(&target_of(&counts), &options(4))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    assert_eq!(report.requests, 70);
    assert_eq!(report.counts.created, 1300);
    assert_all_stored(&store, &source).await;
    let log = source.log();
    assert_eq!(
        log.max_in_flight, 4,
        "as many in flight as allowed, no more"
    );
    // 70 requests of 100 ms, four at a time, the first page of each window
    // before its others: a little over 70 / 4 round trips.
    assert!(
        elapsed >= Duration::from_millis(1800) && elapsed <= Duration::from_millis(2600),
        "{elapsed:?}"
    );
    for (window, pages) in &log.requested {
        assert_eq!(pages[0], 0, "{window}: the first page first");
        assert_eq!(pages.len(), 7, "{window}: each page once");
    }
}

#[tokio::test(start_paused = true)]
async fn the_depth_follows_the_round_trip_times_the_rate() {
    // 10 requests a second and a round trip of 250 ms: 2.5 requests are in
    // flight on average; the engine keeps ceil(2.5) + 1 = 4 started
    // although 8 are allowed, and as the budget spreads the requests 100 ms
    // apart, 3 of them are at the server at once: enough to keep the rate.
    let counts = flat(10, 130);
    let mut source = Paged::new("depth", Windows::Fixed { days: 1 }, 20, &counts);
    source.latency = Duration::from_millis(250);
    let source = Arc::new(source);
    let store = Arc::new(Watched::new(&source));
    let report = engine(
        &source,
        &store,
        RateLimiter::new(RateLimits::new(Some(10), None)),
    )
    .run(&target_of(&counts), &options(8))
    .await
    .unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    assert_all_stored(&store, &source).await;
    assert_eq!(source.log().max_in_flight, 3);
}

#[tokio::test(start_paused = true)]
async fn memory_is_bounded_by_the_batches_in_flight() {
    // Twenty days of five pages each, fetched fast, stored slowly (2 s a
    // commit): the engine must not run ahead of the store holding every
    // fetched window in memory.
    let counts = flat(20, 50);
    let mut source = Paged::new("memory", Windows::Fixed { days: 1 }, 10, &counts);
    source.latency = Duration::from_millis(10);
    let source = Arc::new(source);
    let store = Arc::new(Watched::new(&source));
    store.inner.set_commit_delay(Duration::from_secs(2));
    let report = engine(&source, &store, RateLimiter::unlimited())
        .run(&target_of(&counts), &options(4))
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    assert_all_stored(&store, &source).await;
    let buffered = source.log().max_buffered;
    // The windows being fetched (at most one per request in flight) and the
    // one being stored while the next is fetched.
    assert!(buffered <= 4 + 1, "{buffered} windows held at once");
    assert!(buffered >= 2, "the store and the source work at once");
}

/// Windows of 10,000 records (an explicit batch size of 20 days), 100 a
/// page.
fn large_windows(name: &str, windows: u32) -> (Arc<Paged>, Arc<Watched>, Target, SyncOptions) {
    let counts = flat(20 * windows, 500);
    let mut source = Paged::new(name, Windows::Fixed { days: 1 }, 100, &counts);
    source.latency = Duration::from_millis(10);
    let source = Arc::new(source);
    let store = Arc::new(Watched::new(&source));
    // A store slower than the source: the batches must wait for it.
    store.inner.set_commit_delay(Duration::from_millis(200));
    let mut opts = options(4);
    opts.batch_size = NonZeroU32::new(20);
    (source, store, target_of(&counts), opts)
}

#[tokio::test(start_paused = true)]
async fn a_large_batch_is_stored_in_parts_as_its_pages_come_in() {
    let (source, store, target, opts) = large_windows("parts", 3);
    let report = engine(&source, &store, RateLimiter::unlimited())
        .run(&target, &opts)
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    assert_eq!(report.requests, 300);
    assert_eq!(report.batches_done, 3, "one batch each, however many parts");
    assert_eq!(report.counts.created, 30_000);
    assert_all_stored(&store, &source).await;
    assert!(
        store.inner.commit_count() >= 12,
        "stored in parts of 2,000 to 2,400: {} commits",
        store.inner.commit_count()
    );
    // One bound for all the batches in flight together, not one per batch:
    // 4,000 in the batches stored in parts (fetched, or in a part being
    // stored), the pages in flight and a batch's last part being stored.
    // Without it: 13,800.
    let held = source.log().max_held_records;
    assert!(
        (1_000..=6_000).contains(&held),
        "{held} records held at once of 30,000"
    );
    let row = store.inner.run(&report.id).await.unwrap().unwrap();
    assert_eq!((row.batches_done, row.counts), (3, report.counts));
}

#[tokio::test(start_paused = true)]
async fn a_large_batch_killed_after_some_parts_covers_nothing_and_the_resume_is_exact() {
    let (source, store, target, opts) = large_windows("parts-kill", 1);
    let engine = engine(&source, &store, RateLimiter::unlimited());
    let killed = tokio::time::timeout(Duration::from_millis(300), engine.run(&target, &opts)).await;
    assert!(killed.is_err(), "the run was killed before it ended");
    store.take_over_dead_leases().await;
    let covered = store.inner.coverage(&source.stream).await.unwrap();
    assert!(
        covered.is_empty(),
        "a batch is covered only by its last part"
    );
    let stored = store.inner.records_of_source(&source.stream.source);
    assert!(
        (1_000..10_000).contains(&stored.len()),
        "{} records stored by the killed run's parts",
        stored.len()
    );
    let known: BTreeSet<&str> = source
        .records
        .values()
        .flatten()
        .map(|r| r.external_id.as_str())
        .collect();
    assert!(stored
        .iter()
        .all(|r| known.contains(r.external_id.as_str())));

    let resumed = engine.run(&target, &opts).await.unwrap();
    assert_eq!(resumed.status, RunStatus::Completed, "{:?}", resumed.errors);
    assert_all_stored(&store, &source).await;
    assert_eq!(
        (resumed.counts.created, resumed.counts.unchanged),
        (10_000 - stored.len() as u64, stored.len() as u64),
        "the stored parts are found unchanged, nothing twice"
    );
}

#[tokio::test(start_paused = true)]
async fn density_windows_cost_about_one_request_per_page_and_the_plan_predicts_the_run() {
    // About 20,000 records over 730 days, each on a day drawn uniformly at
    // random; pages of 200.
    let mut rng = StdRng::seed_from_u64(20_000);
    let first = day("2023-01-01");
    let mut counts: BTreeMap<NaiveDate, u32> = (0..730)
        .map(|i| (first + chrono::Duration::days(i), 0))
        .collect();
    for _ in 0..20_000 {
        let d = first + chrono::Duration::days(rng.gen_range(0..730));
        *counts.get_mut(&d).unwrap() += 1;
    }
    let windows = Windows::ByDensity {
        page_size: 200,
        max_pages: 5,
    };
    let source = Arc::new(Paged::new("density", windows, 200, &counts));
    let store = Arc::new(Watched::new(&source));
    let target = target_of(&counts);
    let engine = engine(&source, &store, RateLimiter::unlimited());
    let opts = options(4);

    let plan = engine.plan(&target, &opts).await.unwrap();
    assert_eq!(source.log().probes, 1);
    assert_eq!(plan.requests_to_plan, 1, "the probe");
    let report = engine.run(&target, &opts).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    assert_all_stored(&store, &source).await;

    let records = source.total() as u64;
    let pages = records.div_ceil(200);
    let windows = source.log().requested.len();
    let bound = 1.1 * (pages + 3) as f64;
    println!(
        "density windows: {records} records, {pages} pages' worth; the run made {} requests \
         in {windows} windows (bound {bound:.1}); the plan said {} requests, {} batches, \
         {:?} records",
        report.requests, plan.requests, plan.batches, plan.records
    );
    assert!(
        report.requests as f64 <= bound,
        "{} requests for {pages} pages",
        report.requests
    );
    assert!(windows >= 20, "{windows} windows: checkpoints too coarse");
    let off = (plan.requests as f64 - report.requests as f64).abs() / report.requests as f64;
    assert!(
        off <= 0.10,
        "the plan said {} requests, the run made {}",
        plan.requests,
        report.requests
    );
    assert_eq!(plan.units, 730);
    let planned_records = plan.records.unwrap() as f64;
    assert!((planned_records - records as f64).abs() <= 0.02 * records as f64);
}

#[tokio::test(start_paused = true)]
async fn an_oversized_window_is_cut_again_after_its_first_page() {
    // The probe says the year is nearly empty; it holds 50 records a day.
    let counts = flat(366, 50);
    let windows = Windows::ByDensity {
        page_size: 100,
        max_pages: 5,
    };
    let mut source = Paged::new("oversized", windows, 100, &counts);
    source.probe_says = Some(Probe {
        items: 10,
        days: 366,
    });
    let source = Arc::new(source);
    let store = Arc::new(Watched::new(&source));
    let report = engine(&source, &store, RateLimiter::unlimited())
        .run(&target_of(&counts), &options(4))
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    assert_all_stored(&store, &source).await;
    let log = source.log();
    // The first window planned is the whole year; only its first page was
    // fetched.
    let year = format!(
        "days {}",
        DayRange::new(day("2024-01-01"), day("2024-12-31")).unwrap()
    );
    assert_eq!(log.requested.get(&year).map(Vec::as_slice), Some(&[0][..]));
    for (window, pages) in &log.requested {
        let have = log.pages[window];
        if have > 2 * 5 {
            assert_eq!(pages, &[0], "{window} ({have} pages) was paged");
        }
    }
    // 183 pages of records, the probe, the one wasted first page, and some
    // slack for windows that spill onto one more page.
    let pages = 366 * 50 / 100;
    assert!(
        report.requests <= pages + 1 + 1 + pages / 10,
        "{} requests",
        report.requests
    );
}

#[tokio::test(start_paused = true)]
async fn a_killed_or_cancelled_run_keeps_its_stored_windows_and_a_resumed_run_finishes_exact() {
    let mut rng = StdRng::seed_from_u64(7);
    let first = day("2024-01-01");
    let mut counts: BTreeMap<NaiveDate, u32> = (0..120)
        .map(|i| (first + chrono::Duration::days(i), 0))
        .collect();
    for _ in 0..3000 {
        *counts
            .get_mut(&(first + chrono::Duration::days(rng.gen_range(0..120))))
            .unwrap() += 1;
    }
    let windows = Windows::ByDensity {
        page_size: 50,
        max_pages: 3,
    };
    let source = Arc::new(Paged::new("kill", windows, 50, &counts));
    let store = Arc::new(Watched::new(&source));
    store.inner.set_commit_delay(Duration::from_millis(30));
    let target = target_of(&counts);
    let engine = engine(&source, &store, RateLimiter::unlimited());

    // Stop the run at awkward instants: killed (its future dropped, as when
    // the process dies) or cancelled, with pages and commits in flight.
    let mut stops = 0;
    for (i, after_ms) in [130u64, 370, 555, 810, 1005].into_iter().enumerate() {
        let kill = i % 2 == 0;
        let opts = options(4);
        let run = engine.run(&target, &opts);
        if kill {
            let outcome = tokio::time::timeout(Duration::from_millis(after_ms), run).await;
            if outcome.is_ok() {
                break;
            }
            store.take_over_dead_leases().await;
        } else {
            let cancel = opts.cancel.clone();
            let (report, ()) = tokio::join!(run, async move {
                tokio::time::sleep(Duration::from_millis(after_ms)).await;
                cancel.cancel();
            });
            let report = report.unwrap();
            if report.status == RunStatus::Completed {
                break;
            }
            assert_eq!(report.status, RunStatus::Cancelled);
        }
        stops += 1;
        assert_checkpoint_matches_data(&store, &source).await;
    }
    assert!(stops >= 3, "the runs were stopped before they ended");
    let covered_before = store.inner.coverage(&source.stream).await.unwrap();
    assert!(!covered_before.is_empty(), "something was stored");

    let requested_before: BTreeSet<String> = source.log().requested.keys().cloned().collect();
    let resumed = engine.run(&target, &options(4)).await.unwrap();
    assert_eq!(resumed.status, RunStatus::Completed, "{:?}", resumed.errors);
    assert_all_stored(&store, &source).await;
    assert_eq!(
        resumed.counts.created as usize + covered_records(&store, &source, &covered_before),
        source.total(),
        "nothing stored twice, nothing lost"
    );
    // The resumed run fetched no day already covered.
    for (window, _) in source.log().requested.iter() {
        if requested_before.contains(window) {
            continue;
        }
        let range = parse_window(window);
        assert!(
            range.iter().all(|d| !covered_before.days.contains(d)),
            "{window} was stored already"
        );
    }
}

fn covered_records(store: &Watched, source: &Paged, covered: &Coverage) -> usize {
    store
        .inner
        .records_of_source(&source.stream.source)
        .iter()
        .filter(|r| matches!(r.unit, Unit::Day(d) if covered.days.contains(d)))
        .count()
}

fn parse_window(window: &str) -> DayRange {
    let text = window.trim_start_matches("days ");
    match text.split_once("..=") {
        Some((a, b)) => DayRange::new(day(a), day(b)).unwrap(),
        None => DayRange::single(day(text)),
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_that_fails_at_begin_gets_no_request_sent() {
    let counts = flat(5, 10);
    let source = Arc::new(Paged::new(
        "closed",
        Windows::Fixed { days: 1 },
        20,
        &counts,
    ));
    let store = Arc::new(Watched::new(&source));
    store.fail_begin.store(true, Ordering::SeqCst);
    let err = engine(&source, &store, RateLimiter::unlimited())
        .run(&target_of(&counts), &options(4))
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Fatal { .. }), "{err:?}");
    assert!(err.to_string().contains("closed"), "{err}");
    let sent = {
        let log = source.log();
        (log.requests, log.probes)
    };
    assert_eq!(sent, (0, 0));
    assert!(store.inner.runs(None, 5).await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn batch_size_overrides_density_windows() {
    let counts = flat(30, 10);
    let windows = Windows::ByDensity {
        page_size: 100,
        max_pages: 5,
    };
    let source = Arc::new(Paged::new("fixed", windows, 100, &counts));
    let store = Arc::new(Watched::new(&source));
    let mut opts = options(2);
    opts.batch_size = NonZeroU32::new(7);
    let report = engine(&source, &store, RateLimiter::unlimited())
        .run(&target_of(&counts), &opts)
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    assert_all_stored(&store, &source).await;
    assert_eq!(report.batches_done, 5, "windows of 7 days: 4 and a rest");
    assert_eq!(source.log().probes, 0, "no probe: nothing to size");
    assert_eq!(report.requests, 5);
}
