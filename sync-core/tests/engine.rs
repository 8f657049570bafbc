//! The engine against a scripted source and the in-memory store.
//!
//! Every test runs on a paused tokio clock: waits (limiter, backoff,
//! simulated latency) take no real time.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};
use sync_core::plan::Refresh;
use sync_core::{
    async_trait, Batch, BatchSpan, CancellationToken, CheckpointStore, CommitFault, ContentHash,
    Cursor, Engine, FetchContext, FetchCost, MemoryStore, Page, ProgressEvent, RateLimiter,
    RateLimits, Record, RetryPolicy, RunReport, RunStatus, Source, SourceInfo, StreamId, SyncError,
    SyncMode, SyncOptions, Target, Tz, Unit, Windows,
};
use tokio::time::Instant;

// ------------------------------------------------------------------ source

/// A failure the scripted source answers one request of a batch with.
#[derive(Clone, Copy, Debug)]
enum Fault {
    BadData,
    Retryable,
    Fatal,
    RateLimited(Option<Duration>),
}

impl Fault {
    fn error(self) -> SyncError {
        match self {
            Fault::BadData => SyncError::bad_data("unexpected token '<' in JSON at position 0"),
            Fault::Retryable => SyncError::retryable("502 bad gateway"),
            Fault::Fatal => SyncError::fatal("the source changed its API"),
            Fault::RateLimited(retry_after) => SyncError::RateLimited { retry_after },
        }
    }
}

/// A session that may expire after some requests or go stale after some
/// time, and credentials that may stop working after some logins.
#[derive(Debug, Default)]
struct SessionSim {
    /// Requests a session serves; the next one answers AuthExpired.
    requests_per_session: Option<u32>,
    /// The session should be renewed when older than this (the source says
    /// so as its `session_max_age`).
    stale_after: Option<Duration>,
    /// Logins that succeed; later ones are rejected.
    logins_allowed: Option<u32>,
    logins: u32,
    used: u32,
    logged_in_at: Option<Instant>,
}

/// What the source saw, as its server would count it.
#[derive(Debug, Default)]
struct Log {
    /// Span and time of every page request (`fetch_page` call).
    fetches: Vec<(String, Instant)>,
    /// Whether each page request re-checked stored units.
    rechecks: Vec<bool>,
    authenticates: u32,
    auth_expired: u32,
    /// Requests sent on a session older than `stale_after`.
    stale_requests: u32,
    /// Requests sent (after the budget let them through).
    requests: u64,
    /// 429s answered (faults and the server's own).
    rate_limited: u64,
    /// Page requests the server had seen before (the same page of the same
    /// batch): retries, as the server counts them.
    repeats: u64,
    seen: HashSet<String>,
}

/// A server that counts requests in sliding windows and answers 429 when
/// it throttles itself (or when a window is breached, which must not
/// happen).
#[derive(Debug)]
struct Server {
    start: Instant,
    windows: Vec<(Duration, usize)>,
    /// Offsets from `start` during which every request gets a 429.
    throttled: Vec<(Duration, Duration)>,
    /// Every `burst_every`-th request starts a burst of `burst_len` 429s.
    burst_every: u64,
    burst_len: u64,
    /// Every other 429 says to wait 2 s (else none says how long).
    retry_after_half: bool,
    state: Mutex<ServerState>,
}

#[derive(Debug, Default)]
struct ServerState {
    arrivals: Vec<Instant>,
    breaches: u32,
    sent_429: u64,
    burst_left: u64,
}

impl Server {
    fn new(per_second: usize, per_minute: usize) -> Self {
        Self {
            start: Instant::now(),
            windows: vec![
                (Duration::from_secs(1), per_second),
                (Duration::from_secs(60), per_minute),
            ],
            throttled: Vec::new(),
            burst_every: 0,
            burst_len: 0,
            retry_after_half: true,
            state: Mutex::default(),
        }
    }

    /// One request arrives now: `Err(retry_after)` is a 429.
    fn hit(&self) -> Result<(), Option<Duration>> {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap();
        s.arrivals.push(now);
        let n = s.arrivals.len() as u64;
        let mut breached = false;
        for &(len, max) in &self.windows {
            let inside = s
                .arrivals
                .iter()
                .rev()
                .take_while(|&&t| now.duration_since(t) < len)
                .count();
            breached |= inside > max;
        }
        if breached {
            s.breaches += 1;
        }
        let since_start = now.duration_since(self.start);
        let throttled = self
            .throttled
            .iter()
            .any(|&(from, to)| since_start >= from && since_start < to);
        if self.burst_every > 0 && n.is_multiple_of(self.burst_every) {
            s.burst_left = self.burst_len;
        }
        let in_burst = s.burst_left > 0;
        if in_burst {
            s.burst_left -= 1;
        }
        if breached || throttled || in_burst {
            s.sent_429 += 1;
            let retry_after = (self.retry_after_half && s.sent_429.is_multiple_of(2))
                .then_some(Duration::from_secs(2));
            return Err(retry_after);
        }
        Ok(())
    }
}

/// A source that speaks one request at a time: each `fetch_page` is one
/// attempt of one request, answered from a script. A batch takes
/// `requests_per_fetch` requests: the first page names the others.
#[derive(Debug)]
struct ScriptedSource {
    stream: StreamId,
    tz: Tz,
    /// Records by key (chunks of 10) instead of by day.
    keyed: bool,
    per_day: u32,
    requests_per_fetch: u32,
    latency: Duration,
    supports_delta: bool,
    server: Option<Arc<Server>>,
    faults: Mutex<HashMap<NaiveDate, VecDeque<Fault>>>,
    /// Cancels this token when a batch holding the day is fetched.
    cancel_on: Mutex<Option<(NaiveDate, CancellationToken)>>,
    /// Data version per day: bumping it changes that day's payloads.
    versions: Mutex<HashMap<NaiveDate, u32>>,
    /// What a `Changes` batch returns.
    changes: Mutex<Vec<Record>>,
    session: Mutex<SessionSim>,
    log: Mutex<Log>,
}

impl ScriptedSource {
    fn new(name: &str) -> Self {
        Self {
            stream: StreamId::new(format!("scripted:{name}"), "visits"),
            tz: chrono_tz::Europe::Moscow,
            keyed: false,
            per_day: 3,
            requests_per_fetch: 1,
            latency: Duration::ZERO,
            supports_delta: false,
            server: None,
            faults: Mutex::default(),
            cancel_on: Mutex::default(),
            versions: Mutex::default(),
            changes: Mutex::default(),
            session: Mutex::default(),
            log: Mutex::default(),
        }
    }

    /// The next requests of the batch holding `day` fail with `faults`, in
    /// order; later ones succeed.
    fn fail(&self, day: NaiveDate, faults: impl IntoIterator<Item = Fault>) {
        self.faults
            .lock()
            .unwrap()
            .entry(day)
            .or_default()
            .extend(faults);
    }

    fn bump_version(&self, day: NaiveDate) {
        *self.versions.lock().unwrap().entry(day).or_insert(0) += 1;
    }

    fn fetched_spans(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .fetches
            .iter()
            .map(|(s, _)| s.clone())
            .collect()
    }

    fn authenticates(&self) -> u32 {
        self.log.lock().unwrap().authenticates
    }

    fn requests(&self) -> u64 {
        self.log.lock().unwrap().requests
    }

    /// The records the source holds for `day`.
    fn day_records(&self, day: NaiveDate) -> Vec<Record> {
        let version = self
            .versions
            .lock()
            .unwrap()
            .get(&day)
            .copied()
            .unwrap_or(0);
        let noon = self
            .tz
            .from_local_datetime(&day.and_hms_opt(12, 0, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc);
        (0..self.per_day)
            .map(|i| {
                Record::new(
                    "visit",
                    format!("{day}-{i}"),
                    Unit::Day(day),
                    json!({
                        "day": day.to_string(),
                        "slot": i,
                        "price": 1000 + i * 10 + version,
                        "client": {"name": format!("Client {i}"), "phone": format!("+7 900 {i:03}")},
                    }),
                )
                .occurred_at(noon)
            })
            .collect()
    }

    fn batch_records(&self, batch: &Batch) -> Vec<Record> {
        match &batch.span {
            BatchSpan::Days { range, .. } => {
                range.iter().flat_map(|d| self.day_records(d)).collect()
            }
            BatchSpan::Keys(range) => range.iter().map(key_record).collect(),
            BatchSpan::KeyList(ids) => ids.iter().copied().map(key_record).collect(),
            BatchSpan::Changes { .. } => self.changes.lock().unwrap().clone(),
        }
    }

    fn days_of(batch: &Batch) -> Vec<NaiveDate> {
        batch.days().collect()
    }

    /// Sends one request (`page` of a batch, or a login when `None`):
    /// budget, server, session, latency. One attempt: retrying is the
    /// core's job.
    async fn request(&self, ctx: &FetchContext, page: Option<String>) -> sync_core::Result<()> {
        ctx.request().await?;
        let needs_session = page.is_some();
        {
            let mut log = self.log.lock().unwrap();
            log.requests += 1;
            if let Some(key) = page {
                if !log.seen.insert(key) {
                    log.repeats += 1;
                }
            }
        }
        if let Some(server) = &self.server {
            if let Err(retry_after) = server.hit() {
                self.log.lock().unwrap().rate_limited += 1;
                tokio::time::sleep(self.latency).await;
                return Err(SyncError::RateLimited { retry_after });
            }
        }
        if needs_session {
            let mut s = self.session.lock().unwrap();
            if s.requests_per_session.is_some_and(|n| s.used >= n) {
                self.log.lock().unwrap().auth_expired += 1;
                return Err(SyncError::AuthExpired {
                    message: "redirected to the login page".into(),
                });
            }
            s.used += 1;
            if let (Some(stale), Some(at)) = (s.stale_after, s.logged_in_at) {
                if at.elapsed() >= stale {
                    self.log.lock().unwrap().stale_requests += 1;
                }
            }
        }
        tokio::time::sleep(self.latency).await;
        Ok(())
    }
}

fn key_record(key: i64) -> Record {
    Record::new(
        "client",
        format!("k{key}"),
        Unit::Key(key),
        json!({"key": key, "name": format!("Client {key}")}),
    )
}

#[async_trait]
impl Source for ScriptedSource {
    fn info(&self) -> SourceInfo {
        let mut info = if self.keyed {
            SourceInfo::keys(self.stream.clone(), 10, false)
        } else {
            SourceInfo::days(self.stream.clone(), self.tz, Windows::Fixed { days: 1 })
        };
        info = info.with_cost(FetchCost {
            per_window: f64::from(self.requests_per_fetch),
            login: 1,
            ..FetchCost::default()
        });
        if self.supports_delta {
            info = info.with_delta();
        }
        if let Some(age) = self.session.lock().unwrap().stale_after {
            info = info.with_session_max_age(age);
        }
        info
    }

    async fn login(&self, ctx: &FetchContext) -> sync_core::Result<()> {
        self.log.lock().unwrap().authenticates += 1;
        self.request(ctx, None).await?;
        let mut s = self.session.lock().unwrap();
        if s.logins_allowed.is_some_and(|n| s.logins >= n) {
            return Err(SyncError::Unauthenticated {
                message: "wrong login or password".into(),
            });
        }
        s.logins += 1;
        s.used = 0;
        s.logged_in_at = Some(Instant::now());
        Ok(())
    }

    async fn fetch_page(
        &self,
        batch: &Batch,
        cursor: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> sync_core::Result<Page> {
        let page: u32 = cursor.map(Cursor::get).transpose()?.unwrap_or(0);
        {
            let mut log = self.log.lock().unwrap();
            log.fetches.push((batch.span.to_string(), Instant::now()));
            log.rechecks.push(batch.recheck);
        }
        let days = Self::days_of(batch);
        let cancel = self.cancel_on.lock().unwrap().clone();
        if let Some((day, token)) = cancel {
            if days.contains(&day) {
                token.cancel();
            }
        }
        self.request(ctx, Some(format!("{} #{page}", batch.span)))
            .await?;
        // A request the server answered (not a 429 of its own, not an
        // expired session) meets the next fault of its batch.
        let fault = {
            let mut faults = self.faults.lock().unwrap();
            days.iter()
                .find_map(|d| faults.get_mut(d).and_then(VecDeque::pop_front))
        };
        if let Some(Fault::RateLimited(_)) = fault {
            self.log.lock().unwrap().rate_limited += 1;
        }
        if let Some(fault) = fault {
            return Err(fault.error());
        }
        let n = self.requests_per_fetch.max(1);
        let records = self
            .batch_records(batch)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i as u32 % n == page)
            .map(|(_, r)| r)
            .collect();
        let more = if page == 0 {
            (1..n).map(Cursor::new).collect()
        } else {
            Vec::new()
        };
        Ok(Page {
            records,
            more,
            total: None,
        })
    }
}

// ----------------------------------------------------------------- helpers

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// Days 2024-09-01 ..= 2024-09-(n).
fn september(n: u32) -> Target {
    Target::days(
        day("2024-09-01"),
        NaiveDate::from_ymd_opt(2024, 9, n).unwrap(),
        chrono_tz::Europe::Moscow,
    )
    .unwrap()
}

fn days_of(target: &Target) -> Vec<NaiveDate> {
    match target {
        Target::Days { range, .. } => range.iter().collect(),
        _ => panic!("a day target"),
    }
}

fn engine(source: &Arc<ScriptedSource>, store: &Arc<MemoryStore>) -> Engine {
    Engine::new(
        source.clone(),
        store.clone(),
        store.clone(),
        Arc::new(RateLimiter::unlimited()),
    )
}

/// Batches of `batch_size` units, oldest first, one request in flight at
/// a time (as the engine before the pipeline ran), retries without jitter.
/// Tests that want more in flight set `max_in_flight`.
fn options(batch_size: u32) -> SyncOptions {
    SyncOptions::builder()
        .batch_size(NonZeroU32::new(batch_size).unwrap())
        .order(sync_core::Order::OldestFirst)
        .max_in_flight(NonZeroUsize::MIN)
        .retry(RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        })
        .build()
}

fn in_flight(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

/// A comparable view of a stored or expected record.
type Row = (String, String, Unit, Value, ContentHash, bool);

fn stored_rows(store: &MemoryStore, source: &ScriptedSource) -> Vec<Row> {
    let mut rows: Vec<Row> = store
        .records_of_source(&source.stream.source)
        .into_iter()
        .map(|r| {
            (
                r.entity,
                r.external_id,
                r.unit,
                r.payload,
                r.hash,
                r.deleted,
            )
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    rows
}

fn expected_rows(source: &ScriptedSource, days: &[NaiveDate]) -> Vec<Row> {
    let mut rows: Vec<Row> = days
        .iter()
        .flat_map(|&d| source.day_records(d))
        .map(|r| {
            (
                r.entity,
                r.external_id,
                r.unit,
                r.payload,
                r.hash,
                r.deleted,
            )
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    rows
}

async fn covered_days(store: &MemoryStore, source: &ScriptedSource) -> Vec<NaiveDate> {
    let coverage = store.coverage(&source.stream).await.unwrap();
    coverage
        .days
        .spans()
        .flat_map(|s| s.iter().collect::<Vec<_>>())
        .collect()
}

/// Invariant 1: every covered day has exactly the source's records stored,
/// and no day outside the coverage has any.
async fn assert_checkpoint_matches_data(
    store: &MemoryStore,
    source: &ScriptedSource,
    all: &[NaiveDate],
) {
    let covered = covered_days(store, source).await;
    let stored = stored_rows(store, source);
    for d in all {
        let of_day: Vec<&Row> = stored.iter().filter(|r| r.2 == Unit::Day(*d)).collect();
        if covered.contains(d) {
            let want = expected_rows(source, &[*d]);
            assert_eq!(
                of_day,
                want.iter().collect::<Vec<_>>(),
                "day {d} is covered but its data differs"
            );
        } else {
            assert!(of_day.is_empty(), "day {d} has data but is not covered");
        }
    }
}

fn collect_events(options: &mut SyncOptions) -> Arc<Mutex<Vec<ProgressEvent>>> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    options.progress = Some(Arc::new(move |e: &ProgressEvent| {
        sink.lock().unwrap().push(e.clone())
    }));
    events
}

async fn last_run(store: &MemoryStore, source: &ScriptedSource) -> RunReport {
    store
        .runs(Some(&source.stream), 1)
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("a recorded run")
}

// ------------------------------------------------------------ scenario a

#[tokio::test(start_paused = true)]
async fn resume_after_a_failed_batch_redoes_only_that_batch() {
    let source = Arc::new(ScriptedSource::new("resume"));
    let store = Arc::new(MemoryStore::new());
    let target = september(10);
    let all = days_of(&target);
    source.fail(day("2024-09-05"), [Fault::BadData]);

    let first = engine(&source, &store)
        .run(&target, &options(1))
        .await
        .unwrap();
    assert_eq!(first.status, RunStatus::Partial);
    assert_eq!((first.batches_done, first.batches_failed), (9, 1));
    assert_eq!(first.counts.created, 27);
    let mut want_covered = all.clone();
    want_covered.retain(|d| *d != day("2024-09-05"));
    assert_eq!(covered_days(&store, &source).await, want_covered);
    assert_eq!(source.fetched_spans().len(), 10);

    let second = engine(&source, &store)
        .run(&target, &options(1))
        .await
        .unwrap();
    assert_eq!(second.status, RunStatus::Completed);
    assert_eq!(
        source.fetched_spans()[10..],
        ["days 2024-09-05".to_string()],
        "the second run fetches only the failed batch"
    );
    assert_eq!(second.counts.created, 3);
    assert_eq!(second.counts.updated + second.counts.unchanged, 0);
    assert_eq!(covered_days(&store, &source).await, all);
    let stored = stored_rows(&store, &source);
    assert_eq!(
        stored,
        expected_rows(&source, &all),
        "the store holds exactly the source's data"
    );
    let mut ids: Vec<&String> = stored.iter().map(|r| &r.1).collect();
    ids.dedup();
    assert_eq!(ids.len(), 30, "no duplicates");
}

// ------------------------------------------------------------ scenario b

#[tokio::test(start_paused = true)]
async fn a_429_storm_is_ridden_out_without_breaking_the_server_limits() {
    let limits = RateLimits::new(Some(5), Some(200));
    let mut server = Server::new(5, 200);
    // The server throttles itself for 8 s after 20 s, and every 40th request
    // opens a burst of three 429s.
    server.throttled = vec![(Duration::from_secs(20), Duration::from_secs(28))];
    server.burst_every = 40;
    server.burst_len = 3;
    let server = Arc::new(server);
    let mut source = ScriptedSource::new("storm");
    source.requests_per_fetch = 5;
    source.latency = Duration::from_millis(50);
    source.server = Some(server.clone());
    let source = Arc::new(source);
    let store = Arc::new(MemoryStore::new());
    let limiter = Arc::new(RateLimiter::new(limits));
    let engine = Engine::new(source.clone(), store.clone(), store.clone(), limiter);
    // 60 days of 5 requests each: more than the 200 a minute allows.
    let target = Target::days(
        day("2024-08-01"),
        day("2024-09-29"),
        chrono_tz::Europe::Moscow,
    )
    .unwrap();
    let all = days_of(&target);
    let mut opts = options(1);
    opts.max_in_flight = in_flight(3);

    let started = Instant::now();
    let report = engine.run(&target, &opts).await.unwrap();
    let elapsed = started.elapsed();

    let state = server.state.lock().unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    assert_eq!(state.breaches, 0, "the server saw its limits broken");
    assert!(
        state.sent_429 >= 10,
        "the storm happened: {} 429s",
        state.sent_429
    );
    assert_eq!(
        report.rate_limited, state.sent_429,
        "every 429 is counted once"
    );
    assert_eq!(report.requests, state.arrivals.len() as u64);
    assert_eq!(
        report.requests,
        60 * 5 + 1 + state.sent_429,
        "one retry per 429, plus the login"
    );
    // Retries are the core's now (the source tries each request once), and
    // nothing but 429s failed: one retry each.
    assert_eq!(report.retries, state.sent_429);
    assert_eq!(stored_rows(&store, &source), expected_rows(&source, &all));
    // More than 200 requests at 200/min cannot take less than a minute.
    assert!(elapsed >= Duration::from_secs(60), "{elapsed:?}");
}

// ------------------------------------------------------------ scenario c

#[tokio::test(start_paused = true)]
async fn an_expired_session_is_renewed_and_the_batch_repeated() {
    let source = Arc::new(ScriptedSource::new("expiry"));
    source.session.lock().unwrap().requests_per_session = Some(3);
    let store = Arc::new(MemoryStore::new());
    let target = september(10);

    let report = engine(&source, &store)
        .run(&target, &options(1))
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    // 10 batches, 3 per session: the first login and 3 renewals.
    assert_eq!(source.authenticates(), 4);
    assert_eq!(source.log.lock().unwrap().auth_expired, 3);
    assert_eq!(
        source.fetched_spans().len(),
        13,
        "each expired batch is fetched again once"
    );
    assert_eq!(
        stored_rows(&store, &source),
        expected_rows(&source, &days_of(&target))
    );
}

#[tokio::test(start_paused = true)]
async fn a_stale_session_is_renewed_before_the_batch() {
    let mut source = ScriptedSource::new("stale");
    source.latency = Duration::from_secs(1);
    let source = Arc::new(source);
    source.session.lock().unwrap().stale_after = Some(Duration::from_millis(2500));
    let store = Arc::new(MemoryStore::new());
    let target = september(6);

    let report = engine(&source, &store)
        .run(&target, &options(1))
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    let log = source.log.lock().unwrap();
    assert_eq!(
        log.stale_requests, 0,
        "a request went out on a stale session"
    );
    assert_eq!(log.auth_expired, 0);
    // Login at 0-1 s; batches at 1, 2, 3 s; stale at 3.5 s: login 4-5 s;
    // batches at 5, 6, 7 s.
    assert_eq!(log.authenticates, 2);
}

#[tokio::test(start_paused = true)]
async fn concurrent_batches_renew_an_expired_session_once() {
    let mut source = ScriptedSource::new("stampede");
    source.latency = Duration::from_millis(100);
    let source = Arc::new(source);
    source.session.lock().unwrap().requests_per_session = Some(4);
    let store = Arc::new(MemoryStore::new());
    let target = september(8);
    let mut opts = options(1);
    opts.max_in_flight = in_flight(4);

    let report = engine(&source, &store).run(&target, &opts).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    // The first request to meet the expired session renews it; the
    // others wait for the renewal instead of meeting it too (no request is
    // in flight while a session is renewed).
    assert_eq!(
        source.log.lock().unwrap().auth_expired,
        1,
        "one batch hit the expired session"
    );
    assert_eq!(
        source.authenticates(),
        2,
        "but only one of them logged in again"
    );
    assert_eq!(
        stored_rows(&store, &source),
        expected_rows(&source, &days_of(&target))
    );
}

#[tokio::test(start_paused = true)]
async fn rejected_renewal_fails_the_run_and_is_recorded() {
    let source = Arc::new(ScriptedSource::new("rejected"));
    {
        let mut s = source.session.lock().unwrap();
        s.requests_per_session = Some(2);
        s.logins_allowed = Some(1);
    }
    let store = Arc::new(MemoryStore::new());
    let target = september(5);

    let err = engine(&source, &store)
        .run(&target, &options(1))
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Unauthenticated { .. }), "{err:?}");
    assert_eq!(source.authenticates(), 2);
    let run = last_run(&store, &source).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.finished_at.is_some());
    assert!(
        run.errors.iter().any(|e| e.contains("unauthenticated")),
        "{:?}",
        run.errors
    );
    assert_eq!(run.batches_done, 2);
    assert_eq!(
        covered_days(&store, &source).await,
        [day("2024-09-01"), day("2024-09-02")]
    );
    assert_checkpoint_matches_data(&store, &source, &days_of(&target)).await;
}

#[tokio::test(start_paused = true)]
async fn a_session_that_expires_again_right_away_fails_the_run() {
    let source = Arc::new(ScriptedSource::new("expires-again"));
    source.session.lock().unwrap().requests_per_session = Some(0);
    let store = Arc::new(MemoryStore::new());

    let err = engine(&source, &store)
        .run(&september(3), &options(1))
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Unauthenticated { .. }), "{err:?}");
    assert!(err.to_string().contains("again"), "{err}");
    assert_eq!(source.authenticates(), 2, "one login, one renewal, no loop");
    assert_eq!(last_run(&store, &source).await.status, RunStatus::Failed);
    assert!(covered_days(&store, &source).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_rejected_first_login_fetches_nothing() {
    let source = Arc::new(ScriptedSource::new("no-login"));
    source.session.lock().unwrap().logins_allowed = Some(0);
    let store = Arc::new(MemoryStore::new());

    let err = engine(&source, &store)
        .run(&september(3), &options(1))
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Unauthenticated { .. }), "{err:?}");
    assert!(source.fetched_spans().is_empty());
    let run = last_run(&store, &source).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.errors.len(), 1);
}

// ------------------------------------------------------------ scenario d

#[tokio::test(start_paused = true)]
async fn a_malformed_batch_is_reported_and_earlier_batches_stay() {
    let source = Arc::new(ScriptedSource::new("malformed"));
    let store = Arc::new(MemoryStore::new());
    let target = september(6);
    source.fail(day("2024-09-05"), [Fault::BadData]);
    let mut opts = options(2);
    let events = collect_events(&mut opts);

    let report = engine(&source, &store).run(&target, &opts).await.unwrap();
    assert_eq!(report.status, RunStatus::Partial);
    assert_eq!(report.errors.len(), 1);
    let error = &report.errors[0];
    assert!(
        error.contains("batch 2")
            && error.contains("2024-09-05..=2024-09-06")
            && error.contains("bad_data"),
        "the error names the batch, its span and the kind: {error}"
    );
    assert!(
        error.contains("unexpected token"),
        "and the message: {error}"
    );
    let failed: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::BatchFailed { index, span, error } => {
                Some((*index, span.clone(), error.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        vec![(2, "days 2024-09-05..=2024-09-06".to_string(), error.clone())]
    );
    let earlier: Vec<NaiveDate> = days_of(&september(4));
    assert_eq!(covered_days(&store, &source).await, earlier);
    assert_eq!(
        stored_rows(&store, &source),
        expected_rows(&source, &earlier)
    );
    // The failed batch is not retried within the run: bad data stays bad.
    assert_eq!(source.fetched_spans().len(), 3);
}

// ------------------------------------------------------------ scenario e

#[tokio::test(start_paused = true)]
async fn cancellation_keeps_stored_batches_drops_the_one_in_flight_and_resumes() {
    let mut source = ScriptedSource::new("cancel");
    source.latency = Duration::from_millis(300);
    let source = Arc::new(source);
    let store = Arc::new(MemoryStore::new());
    let target = september(8);
    let all = days_of(&target);
    let mut opts = options(1);
    *source.cancel_on.lock().unwrap() = Some((day("2024-09-04"), opts.cancel.clone()));
    let events = collect_events(&mut opts);

    let report = engine(&source, &store).run(&target, &opts).await.unwrap();
    assert_eq!(report.status, RunStatus::Cancelled);
    assert_eq!(report.batches_done, 3);
    assert_eq!(covered_days(&store, &source).await, all[..3]);
    assert_checkpoint_matches_data(&store, &source, &all).await;
    assert_eq!(last_run(&store, &source).await.status, RunStatus::Cancelled);
    assert!(matches!(
        events.lock().unwrap().last(),
        Some(ProgressEvent::RunFinished { report }) if report.status == RunStatus::Cancelled
    ));

    *source.cancel_on.lock().unwrap() = None;
    let resumed = engine(&source, &store)
        .run(&target, &options(1))
        .await
        .unwrap();
    assert_eq!(resumed.status, RunStatus::Completed);
    assert_eq!(resumed.counts.created, 5 * 3);
    assert_eq!(stored_rows(&store, &source), expected_rows(&source, &all));
}

#[tokio::test(start_paused = true)]
async fn a_commit_under_way_finishes_when_the_run_is_cancelled() {
    let source = Arc::new(ScriptedSource::new("cancel-commit"));
    let store = Arc::new(MemoryStore::new());
    store.set_commit_delay(Duration::from_secs(1));
    let target = september(6);
    let opts = options(1);
    let cancel = opts.cancel.clone();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        cancel.cancel();
    });

    let started = Instant::now();
    let report = engine(&source, &store).run(&target, &opts).await.unwrap();
    canceller.await.unwrap();
    // Changed on purpose: the pipeline fetches the next batch while one is
    // stored, so with one request in flight two batches are stored at a time
    // (it used to be one): batches 0 and 1 stored by 1 s; batches 2 and 3
    // were being stored at 1.5 s and finished at 2 s; nothing after them
    // was fetched.
    assert_eq!(report.status, RunStatus::Cancelled);
    assert_eq!(report.batches_done, 4);
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(covered_days(&store, &source).await, days_of(&september(4)));
    assert_checkpoint_matches_data(&store, &source, &days_of(&target)).await;
    assert_eq!(source.fetched_spans().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_counts_and_writes_nothing() {
    let source = Arc::new(ScriptedSource::new("dry"));
    let store = Arc::new(MemoryStore::new());
    let mut opts = options(3);
    opts.dry_run = true;

    let report = engine(&source, &store)
        .run(&september(9), &opts)
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    assert!(report.dry_run);
    assert_eq!(report.counts.created, 27);
    assert_eq!(report.batches_done, 3);
    assert!(store.records_of_source(&source.stream.source).is_empty());
    assert!(store.coverage(&source.stream).await.unwrap().is_empty());
    assert!(
        store.runs(None, 10).await.unwrap().is_empty(),
        "no run history"
    );
    assert_eq!(store.commit_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn force_resyncs_covered_units_without_duplicates() {
    let source = Arc::new(ScriptedSource::new("force"));
    let store = Arc::new(MemoryStore::new());
    let target = september(5);
    engine(&source, &store)
        .run(&target, &options(2))
        .await
        .unwrap();
    let skipped = engine(&source, &store)
        .run(&target, &options(2))
        .await
        .unwrap();
    assert_eq!(skipped.batches_done, 0);
    assert_eq!(source.fetched_spans().len(), 3);

    let mut opts = options(2);
    opts.force = true;
    source.bump_version(day("2024-09-03"));
    let forced = engine(&source, &store).run(&target, &opts).await.unwrap();
    assert_eq!(forced.batches_done, 3);
    assert_eq!(source.fetched_spans().len(), 6);
    assert_eq!(forced.counts.created, 0);
    assert_eq!(forced.counts.updated, 3, "the changed day");
    assert_eq!(forced.counts.unchanged, 12);
    assert_eq!(
        stored_rows(&store, &source),
        expected_rows(&source, &days_of(&target))
    );
    let changes = store.run_changes(&forced.id).await.unwrap();
    assert_eq!(changes.len(), 3);
    assert!(changes
        .iter()
        .all(|c| c.fields.iter().any(|f| f.path == "/price")));
}

#[tokio::test(start_paused = true)]
async fn max_batches_stops_early_and_the_next_run_goes_on() {
    let source = Arc::new(ScriptedSource::new("max"));
    let store = Arc::new(MemoryStore::new());
    let target = september(10);
    let mut opts = options(2);
    opts.order = sync_core::Order::NewestFirst;
    opts.max_batches = Some(2);

    let first = engine(&source, &store).run(&target, &opts).await.unwrap();
    // Changed on purpose: a run cut short by max_batches leaves work for the
    // next run, so it is partial now (it used to say completed), and it says
    // why.
    assert_eq!(first.status, RunStatus::Partial);
    assert_eq!(first.batches_done, 2);
    assert!(
        first.errors.iter().any(|e| e.contains("max-batches")),
        "{:?}",
        first.errors
    );
    assert_eq!(last_run(&store, &source).await.status, RunStatus::Partial);
    assert_eq!(
        covered_days(&store, &source).await,
        days_of(&target)[6..],
        "the newest four days"
    );
    let second = engine(&source, &store).run(&target, &opts).await.unwrap();
    assert_eq!(second.batches_done, 2);
    assert_eq!(second.status, RunStatus::Partial);
    assert_eq!(
        source.fetched_spans(),
        [
            "days 2024-09-09..=2024-09-10",
            "days 2024-09-07..=2024-09-08",
            "days 2024-09-05..=2024-09-06",
            "days 2024-09-03..=2024-09-04"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn concurrency_gives_the_same_data_as_one_at_a_time() {
    async fn sync_with(concurrency: usize) -> (Vec<Row>, RunReport, u64) {
        let mut source = ScriptedSource::new("concurrency");
        source.latency = Duration::from_millis(70);
        source.requests_per_fetch = 2;
        let source = Arc::new(source);
        source.fail(day("2024-09-07"), [Fault::Retryable, Fault::Retryable]);
        let store = Arc::new(MemoryStore::new());
        let mut opts = options(2);
        opts.max_in_flight = in_flight(concurrency);
        let started = Instant::now();
        let report = engine(&source, &store)
            .run(&september(20), &opts)
            .await
            .unwrap();
        let ms = started.elapsed().as_millis() as u64;
        (stored_rows(&store, &source), report, ms)
    }
    let (one, r1, slow) = sync_with(1).await;
    let (four, r4, fast) = sync_with(4).await;
    assert_eq!(one, four);
    assert_eq!(one.len(), 60);
    assert_eq!(
        (r1.status, r4.status),
        (RunStatus::Completed, RunStatus::Completed)
    );
    assert_eq!(r1.counts, r4.counts);
    assert_eq!((r1.retries, r4.retries), (2, 2));
    assert!(
        fast < slow,
        "four at once is faster: {fast} ms vs {slow} ms"
    );
}

#[tokio::test(start_paused = true)]
async fn delta_falls_back_to_full_then_fetches_changes_since_the_last_completed_run() {
    let mut source = ScriptedSource::new("delta");
    source.supports_delta = true;
    let source = Arc::new(source);
    let store = Arc::new(MemoryStore::new());
    let target = september(3);
    let mut opts = options(3);
    opts.mode = SyncMode::Delta;
    opts.delta_overlap = Duration::from_secs(600);

    let first = engine(&source, &store).run(&target, &opts).await.unwrap();
    assert_eq!(
        first.mode,
        SyncMode::Full,
        "no completed run yet: full sync"
    );
    assert_eq!(first.counts.created, 9);
    assert_eq!(source.fetched_spans(), ["days 2024-09-01..=2024-09-03"]);

    // A later run that only got partway must not move the window forward.
    source.fail(day("2024-09-04"), [Fault::BadData]);
    let partial = engine(&source, &store)
        .run(&september(4), &options(3))
        .await
        .unwrap();
    assert_eq!(partial.status, RunStatus::Partial);

    let mut changed = source.day_records(day("2024-09-02"))[0].clone();
    changed.payload["price"] = json!(5);
    changed.hash = ContentHash::of_json(&changed.payload, &[]);
    let new = source.day_records(day("2024-09-10"))[1].clone();
    *source.changes.lock().unwrap() = vec![changed.clone(), new];

    let before = Utc::now();
    let second = engine(&source, &store).run(&target, &opts).await.unwrap();
    let after = Utc::now();
    assert_eq!(second.mode, SyncMode::Delta);
    assert_eq!(second.status, RunStatus::Completed);
    assert_eq!((second.counts.created, second.counts.updated), (1, 1));
    let spans = source.fetched_spans();
    let last = spans.last().unwrap();
    let since = first.started_at - chrono::Duration::seconds(600);
    assert!(
        last.starts_with(&format!("changes {}..", since.to_rfc3339())),
        "the window starts at the last completed run minus the overlap: {last}"
    );
    let until: chrono::DateTime<Utc> = last.rsplit("..").next().unwrap().parse().unwrap();
    assert!(
        until >= before && until <= after,
        "the window ends now: {until}"
    );
    let stored = store.records_of_source(&source.stream.source);
    assert!(stored
        .iter()
        .any(|r| r.external_id == changed.external_id && r.payload == changed.payload));
}

#[tokio::test(start_paused = true)]
async fn delta_on_a_keyed_source_without_it_is_invalid_input_and_records_nothing() {
    // Changed on purpose: only a keyed source refuses delta now; a day
    // source without a change listing re-checks days by age instead (next
    // test).
    let mut source = ScriptedSource::new("no-delta");
    source.keyed = true;
    let source = Arc::new(source);
    let store = Arc::new(MemoryStore::new());
    let mut opts = options(1);
    opts.mode = SyncMode::Delta;
    let err = engine(&source, &store)
        .run(
            &Target::Keys(sync_core::KeyRange { first: 1, last: 5 }),
            &opts,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::InvalidInput { .. }), "{err:?}");
    assert!(store.runs(None, 10).await.unwrap().is_empty());
    assert!(source.fetched_spans().is_empty());
    assert_eq!(source.requests(), 0);
}

#[tokio::test(start_paused = true)]
async fn delta_on_a_day_source_without_a_change_listing_rechecks_days_by_age() {
    let source = Arc::new(ScriptedSource::new("recheck"));
    let store = Arc::new(MemoryStore::new());
    // Three weeks up to today, in the source's time zone.
    let today = Utc::now().with_timezone(&source.tz).date_naive();
    let first = today - chrono::Duration::days(20);
    let target = Target::days(first, today, source.tz).unwrap();
    let full = engine(&source, &store)
        .run(&target, &options(1))
        .await
        .unwrap();
    assert_eq!(full.counts.created, 21 * 3);
    assert!(source.log.lock().unwrap().rechecks.iter().all(|r| !r));

    // Everything was fetched a moment ago: only the days every delta run
    // re-checks (the last 14 and today) are fetched again; the week before
    // is re-checked weekly.
    source.bump_version(today);
    let mut opts = options(1);
    opts.mode = SyncMode::Delta;
    let delta = engine(&source, &store).run(&target, &opts).await.unwrap();
    assert_eq!(delta.mode, SyncMode::Delta);
    assert_eq!(delta.status, RunStatus::Completed);
    assert_eq!(delta.batches_done, 15);
    assert_eq!((delta.counts.updated, delta.counts.unchanged), (3, 14 * 3));
    {
        let log = source.log.lock().unwrap();
        let again: Vec<&String> = log.fetches[21..].iter().map(|(s, _)| s).collect();
        let want: Vec<String> = (0..=14)
            .map(|back| format!("days {}", today - chrono::Duration::days(14 - back)))
            .collect();
        assert_eq!(again, want.iter().collect::<Vec<_>>());
        assert!(
            log.rechecks[21..].iter().all(|r| *r),
            "re-checks say so to the source"
        );
    }

    // A refresh policy that re-checks nothing old fetches only today.
    let mut opts = options(1);
    opts.mode = SyncMode::Delta;
    opts.refresh = Refresh {
        every_run_back: 0,
        every_run_ahead: 0,
        tiers: Vec::new(),
    };
    let narrow = engine(&source, &store).run(&target, &opts).await.unwrap();
    assert_eq!(narrow.batches_done, 1);
    assert_eq!(
        source.fetched_spans().last().unwrap(),
        &format!("days {today}")
    );
}

#[tokio::test(start_paused = true)]
async fn a_second_run_of_the_same_stream_is_busy() {
    let mut source = ScriptedSource::new("busy");
    source.latency = Duration::from_secs(1);
    let source = Arc::new(source);
    let store = Arc::new(MemoryStore::new());
    let target = september(3);
    let (a, b) = (engine(&source, &store), engine(&source, &store));
    let opts = options(1);

    let (first, second) = tokio::join!(a.run(&target, &opts), async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        b.run(&target, &opts).await
    });
    let first = first.unwrap();
    assert_eq!(first.status, RunStatus::Completed);
    assert!(matches!(second, Err(SyncError::Busy { .. })), "{second:?}");
    assert_eq!(
        store.runs(None, 10).await.unwrap().len(),
        1,
        "the refused run left no trace"
    );
    assert_eq!(source.fetched_spans().len(), 3);
    assert_eq!(source.authenticates(), 1);
    // The refused run sent nothing: every request the source saw is the
    // first run's (its login and three batches).
    assert_eq!(first.requests, 4);
    assert_eq!(source.requests(), first.requests);
}

#[tokio::test(start_paused = true)]
async fn the_run_history_holds_the_report_with_requests_and_429s() {
    let mut source = ScriptedSource::new("history");
    source.requests_per_fetch = 2;
    let source = Arc::new(source);
    source.fail(
        day("2024-09-02"),
        [
            Fault::RateLimited(Some(Duration::from_secs(3))),
            Fault::Retryable,
        ],
    );
    source.fail(day("2024-09-03"), [Fault::BadData]);
    let store = Arc::new(MemoryStore::new());
    let mut opts = options(1);
    let events = collect_events(&mut opts);

    let report = engine(&source, &store)
        .run(&september(4), &opts)
        .await
        .unwrap();
    let stored = store.run(&report.id).await.unwrap().expect("recorded");
    assert_eq!(stored, report);
    assert_eq!(report.status, RunStatus::Partial);
    assert_eq!(report.counts.created, 9);
    assert_eq!(report.rate_limited, 1);
    assert_eq!(report.retries, 2);
    // Changed on purpose: the core retries one request, not the whole batch,
    // and a bad page ends its batch at once. Login, 4 batches of 2 requests,
    // 2 repeats of the first request of 09-02, less the second request of
    // the bad batch of 09-03 (it used to be 1 + 4 * 2 + 2 * 2).
    assert_eq!(report.requests, 1 + 4 * 2 + 2 - 1);
    assert_eq!(report.requests, source.requests());
    assert_eq!(report.batches_done, 3);
    assert_eq!(report.batches_failed, 1);
    assert!(report.finished_at.is_some());

    let events = events.lock().unwrap();
    assert!(matches!(
        events.first(),
        Some(ProgressEvent::RunStarted {
            batches: 4,
            units_total: 4,
            units_covered: 0,
            ..
        })
    ));
    let finished: Vec<(usize, u64, Option<Duration>)> = events
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::BatchFinished {
                index,
                units_covered,
                eta,
                ..
            } => Some((*index, *units_covered, *eta)),
            _ => None,
        })
        .collect();
    assert_eq!(
        finished.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(),
        [(0, 1), (1, 2), (3, 3)]
    );
    assert_eq!(
        finished.last().unwrap().2,
        Some(Duration::ZERO),
        "nothing left at the end"
    );
    assert!(
        matches!(events.last(), Some(ProgressEvent::RunFinished { report: r }) if r == &report)
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_commit_stops_the_run_and_the_checkpoint_is_not_ahead_of_data() {
    let mut source = ScriptedSource::new("commit-fails");
    source.latency = Duration::from_millis(100);
    let source = Arc::new(source);
    let store = Arc::new(MemoryStore::new());
    let target = september(6);
    let mut opts = options(1);
    let hook_store = store.clone();
    opts.progress = Some(Arc::new(move |e: &ProgressEvent| {
        if let ProgressEvent::BatchFinished { index: 1, .. } = e {
            hook_store.fail_next_commits(1, CommitFault::Fatal);
        }
    }));

    let err = engine(&source, &store)
        .run(&target, &opts)
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Fatal { .. }), "{err:?}");
    let run = last_run(&store, &source).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.batches_done, 2);
    assert!(
        run.errors
            .iter()
            .any(|e| e.contains("injected commit failure")),
        "{:?}",
        run.errors
    );
    assert_eq!(covered_days(&store, &source).await, days_of(&september(2)));
    assert_checkpoint_matches_data(&store, &source, &days_of(&target)).await;
    // Changed on purpose: the pipeline fetches the next batch while one is
    // committed, so the batch after the failed commit may have been fetched
    // (it used to be exactly 3); it is never stored, and nothing after it is
    // fetched.
    let fetched = source.fetched_spans().len();
    assert!((3..=4).contains(&fetched), "{:?}", source.fetched_spans());
    assert_eq!(store.commit_count(), 2, "no commit after the failed one");
}

#[tokio::test(start_paused = true)]
async fn a_temporary_commit_failure_is_retried() {
    let source = Arc::new(ScriptedSource::new("commit-retry"));
    let store = Arc::new(MemoryStore::new());
    store.fail_next_commits(2, CommitFault::Retryable);
    let report = engine(&source, &store)
        .run(&september(3), &options(1))
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(report.retries, 2);
    assert_eq!(
        source.fetched_spans().len(),
        3,
        "the records are not fetched again"
    );
    assert_eq!(
        stored_rows(&store, &source),
        expected_rows(&source, &days_of(&september(3)))
    );
}

#[tokio::test(start_paused = true)]
async fn batch_retries_give_up_and_the_batch_fails() {
    let source = Arc::new(ScriptedSource::new("give-up"));
    source.fail(day("2024-09-02"), [Fault::Retryable; 10]);
    let store = Arc::new(MemoryStore::new());
    let mut opts = options(1);
    opts.retry.max_retries = 2;
    let report = engine(&source, &store)
        .run(&september(3), &opts)
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Partial);
    assert_eq!(report.retries, 2);
    assert_eq!(source.fetched_spans().len(), 2 + 3);
    assert!(
        report.errors[0].contains("[retryable]"),
        "{:?}",
        report.errors
    );
    assert_eq!(
        covered_days(&store, &source).await,
        [day("2024-09-01"), day("2024-09-03")]
    );
}

#[tokio::test(start_paused = true)]
async fn a_fatal_source_error_stops_the_run() {
    let mut source = ScriptedSource::new("fatal");
    source.latency = Duration::from_millis(100);
    let source = Arc::new(source);
    source.fail(day("2024-09-03"), [Fault::Fatal]);
    let store = Arc::new(MemoryStore::new());
    let mut opts = options(1);
    opts.max_in_flight = in_flight(2);
    let err = engine(&source, &store)
        .run(&september(10), &opts)
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Fatal { .. }), "{err:?}");
    assert_eq!(last_run(&store, &source).await.status, RunStatus::Failed);
    assert!(
        source.fetched_spans().len() < 6,
        "{:?}",
        source.fetched_spans()
    );
    assert!(!covered_days(&store, &source)
        .await
        .contains(&day("2024-09-03")));
    assert_checkpoint_matches_data(&store, &source, &days_of(&september(10))).await;
}

#[tokio::test(start_paused = true)]
async fn a_pause_follows_each_stretch_of_work_and_the_wait_is_cancellable() {
    let source = Arc::new(ScriptedSource::new("interval"));
    let store = Arc::new(MemoryStore::new());
    // A pause of 10 s after every batch (no work between two pauses but one
    // batch): what the old `interval` of 10 s did.
    let mut opts = options(1);
    opts.pause = Duration::from_secs(10);
    opts.work_between_pauses = Duration::ZERO;
    let start = Instant::now();
    engine(&source, &store)
        .run(&september(4), &opts)
        .await
        .unwrap();
    let starts: Vec<u64> = source
        .log
        .lock()
        .unwrap()
        .fetches
        .iter()
        .map(|(_, at)| at.duration_since(start).as_secs())
        .collect();
    assert_eq!(starts, [0, 10, 20, 30]);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(30),
        "no pause after the last batch"
    );

    // The pause follows the end of a batch: a 4 s batch and a 10 s pause
    // put each fetch 14 s after the previous one (the log notes a fetch
    // when its 4 s request ends).
    let mut slow = ScriptedSource::new("interval-slow");
    slow.latency = Duration::from_secs(4);
    let slow = Arc::new(slow);
    let start = Instant::now();
    engine(&slow, &store)
        .run(&september(3), &opts)
        .await
        .unwrap();
    let starts: Vec<u64> = slow
        .log
        .lock()
        .unwrap()
        .fetches
        .iter()
        .map(|(_, at)| at.duration_since(start).as_secs())
        .collect();
    assert_eq!(starts, [4, 18, 32]);
    assert_eq!(start.elapsed(), Duration::from_secs(36));

    // Stretches of 2.5 s with two requests in flight: batches start while
    // the stretch lasts, the pause begins when its last batch is stored, and
    // no request goes out during it. Login 0-1 s; batches 1-2 and 2-3 s
    // (two at a time); pause 3-13 s; the rest 13-15 s.
    let mut stretched = ScriptedSource::new("stretches");
    stretched.latency = Duration::from_secs(1);
    let stretched = Arc::new(stretched);
    let mut two = options(1);
    two.max_in_flight = in_flight(2);
    two.pause = Duration::from_secs(10);
    two.work_between_pauses = Duration::from_millis(2500);
    let start = Instant::now();
    let report = engine(&stretched, &store)
        .run(&september(8), &two)
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    let starts: Vec<u64> = stretched
        .log
        .lock()
        .unwrap()
        .fetches
        .iter()
        .map(|(_, at)| at.duration_since(start).as_secs())
        .collect();
    assert_eq!(starts, [1, 1, 2, 2, 13, 13, 14, 14]);
    assert_eq!(start.elapsed(), Duration::from_secs(15));

    let source = Arc::new(ScriptedSource::new("interval-cancel"));
    let cancel = opts.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(15)).await;
        cancel.cancel();
    });
    let start = Instant::now();
    let report = engine(&source, &store)
        .run(&september(4), &opts)
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Cancelled);
    assert_eq!(report.batches_done, 2);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(15),
        "the wait for batch 3 was cut short"
    );
}

#[tokio::test(start_paused = true)]
async fn key_targets_and_a_covered_target_make_no_requests() {
    let mut source = ScriptedSource::new("keys");
    source.keyed = true;
    let source = Arc::new(source);
    let store = Arc::new(MemoryStore::new());
    let target = Target::Keys(sync_core::KeyRange { first: 1, last: 25 });
    let report = engine(&source, &store)
        .run(&target, &options(10))
        .await
        .unwrap();
    assert_eq!(report.counts.created, 25);
    assert_eq!(report.target, "keys 1..=25");
    let again = engine(&source, &store)
        .run(&target, &options(10))
        .await
        .unwrap();
    assert_eq!(again.status, RunStatus::Completed);
    assert_eq!((again.batches_done, again.requests), (0, 0));
    assert_eq!(
        source.authenticates(),
        1,
        "no login when there is nothing to fetch"
    );
    assert_eq!(source.requests(), report.requests);
    let rows = stored_rows(&store, &source);
    let ids: BTreeMap<String, Unit> = rows.into_iter().map(|r| (r.1, r.2)).collect();
    assert_eq!(ids.len(), 25);
    assert_eq!(ids.get("k7"), Some(&Unit::Key(7)));
}

#[tokio::test(start_paused = true)]
async fn a_batch_still_fetching_is_dropped_at_once_when_cancelled() {
    let mut source = ScriptedSource::new("drop-fetch");
    // The request is under way (past the limiter) when the run is cancelled.
    source.latency = Duration::from_secs(5);
    let source = Arc::new(source);
    let store = Arc::new(MemoryStore::new());
    let opts = options(1);
    let cancel = opts.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(7500)).await;
        cancel.cancel();
    });
    let start = Instant::now();
    // Login 0-5 s; batch 0 fetches from 5 s and would be done at 10 s.
    let report = engine(&source, &store)
        .run(&september(3), &opts)
        .await
        .unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(7500),
        "the run did not wait for the fetch"
    );
    assert_eq!(report.status, RunStatus::Cancelled);
    assert_eq!(report.batches_done, 0);
    assert!(covered_days(&store, &source).await.is_empty());
    assert!(store.records_of_source(&source.stream.source).is_empty());
    assert_eq!(last_run(&store, &source).await.status, RunStatus::Cancelled);
}

// ------------------------------------------------------------ the new engine

#[tokio::test(start_paused = true)]
async fn a_dry_run_counts_against_what_is_stored() {
    let source = Arc::new(ScriptedSource::new("dry-stored"));
    let store = Arc::new(MemoryStore::new());
    engine(&source, &store)
        .run(&september(5), &options(1))
        .await
        .unwrap();
    let commits = store.commit_count();
    let runs = store.runs(None, 10).await.unwrap().len();
    source.bump_version(day("2024-09-02"));

    // Days 1-5 are stored (day 2 has changed since), 6-10 are not.
    let mut opts = options(2);
    opts.dry_run = true;
    opts.force = true;
    let report = engine(&source, &store)
        .run(&september(10), &opts)
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(
        (
            report.counts.created,
            report.counts.updated,
            report.counts.unchanged
        ),
        (15, 3, 12),
        "classified as the real run would"
    );
    assert_eq!(store.commit_count(), commits, "nothing written");
    assert_eq!(store.runs(None, 10).await.unwrap().len(), runs);
    assert_eq!(covered_days(&store, &source).await, days_of(&september(5)));

    // The real run then counts the same.
    let mut real = options(2);
    real.force = true;
    let done = engine(&source, &store)
        .run(&september(10), &real)
        .await
        .unwrap();
    assert_eq!(done.counts, report.counts);
}

#[tokio::test(start_paused = true)]
async fn waits_longer_than_ten_seconds_are_announced() {
    let source = Arc::new(ScriptedSource::new("waits"));
    // The second batch's request gets a 429 asking for 45 s.
    source.fail(
        day("2024-09-02"),
        [Fault::RateLimited(Some(Duration::from_secs(45)))],
    );
    let store = Arc::new(MemoryStore::new());
    let budget = Arc::new(RateLimiter::unlimited().named("the scripted api"));
    let named = Engine::new(source.clone(), store.clone(), store.clone(), budget);
    let mut opts = options(1);
    let events = collect_events(&mut opts);
    let started = Instant::now();
    let report = named.run(&september(3), &opts).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    assert_eq!(started.elapsed(), Duration::from_secs(45));
    let waits: Vec<(String, Duration)> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::Waiting { what, waited } => Some((what.clone(), *waited)),
            _ => None,
        })
        .collect();
    // After 10 s, and again every 30 s.
    assert_eq!(
        waits,
        [
            (
                "the request budget of the scripted api".to_string(),
                Duration::from_secs(10)
            ),
            (
                "the request budget of the scripted api".to_string(),
                Duration::from_secs(40)
            ),
        ]
    );

    // A wait of less than 10 s says nothing; a slow store is announced too.
    let source = Arc::new(ScriptedSource::new("slow-store"));
    source.fail(
        day("2024-09-02"),
        [Fault::RateLimited(Some(Duration::from_secs(9)))],
    );
    let store = Arc::new(MemoryStore::new());
    store.set_commit_delay(Duration::from_secs(12));
    let mut opts = options(3);
    let events = collect_events(&mut opts);
    engine(&source, &store)
        .run(&september(3), &opts)
        .await
        .unwrap();
    let waits: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::Waiting { what, .. } => Some(what.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        waits,
        [format!(
            "the store to commit days 2024-09-01..=2024-09-03 of {}",
            source.stream
        )]
    );
}

#[tokio::test(start_paused = true)]
async fn the_run_counters_are_what_the_server_counted() {
    let mut source = ScriptedSource::new("counters");
    source.requests_per_fetch = 2;
    source.latency = Duration::from_millis(40);
    let source = Arc::new(source);
    source.fail(day("2024-09-02"), [Fault::RateLimited(None)]);
    source.fail(
        day("2024-09-04"),
        [
            Fault::Retryable,
            Fault::RateLimited(Some(Duration::from_secs(1))),
        ],
    );
    source.fail(day("2024-09-06"), [Fault::Retryable]);
    source.fail(day("2024-09-09"), [Fault::BadData]);
    // A session lasts 13 requests: requests that find it expired are sent
    // again after the renewal. (Three operations of two requests each are
    // in flight; a session shorter than what they need together would
    // expire again under a retried request, which the session wrapper
    // rightly takes for rejected credentials.)
    source.session.lock().unwrap().requests_per_session = Some(13);
    let store = Arc::new(MemoryStore::new());
    let mut opts = options(1);
    opts.max_in_flight = in_flight(3);
    let report = engine(&source, &store)
        .run(&september(10), &opts)
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Partial, "the bad batch");
    let seen = {
        let log = source.log.lock().unwrap();
        assert!(log.auth_expired > 0 && log.repeats > 0);
        (log.requests, log.rate_limited, log.repeats)
    };
    assert_eq!(
        (report.requests, report.rate_limited, report.retries),
        seen,
        "requests, 429s and retries"
    );
    let stored = store.run(&report.id).await.unwrap().unwrap();
    assert_eq!((stored.requests, stored.rate_limited, stored.retries), seen);
}

#[tokio::test(start_paused = true)]
async fn the_pace_recovers_after_occasional_429s() {
    // 2 a second and 60 a minute; every 25th request is refused, without
    // Retry-After. The budget pauses, halves its pace and climbs back, so
    // the run still uses most of what the limits allow.
    let limits = RateLimits::new(Some(2), Some(60));
    let mut server = Server::new(2, 60);
    server.burst_every = 25;
    server.burst_len = 1;
    server.retry_after_half = false;
    let server = Arc::new(server);
    let mut source = ScriptedSource::new("recovery");
    source.latency = Duration::from_millis(50);
    source.server = Some(server.clone());
    let source = Arc::new(source);
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        store.clone(),
        Arc::new(RateLimiter::new(limits)),
    );
    let target = Target::days(day("2024-01-01"), day("2024-09-30"), source.tz).unwrap();
    let started = Instant::now();
    let report = engine.run(&target, &options(1)).await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    let state = server.state.lock().unwrap();
    assert_eq!(state.breaches, 0);
    assert!(state.sent_429 >= 5, "{} 429s", state.sent_429);
    let rate = state.arrivals.len() as f64 / elapsed;
    let allowed = limits.sustained_rate().unwrap();
    println!(
        "429 recovery: {} requests ({} refused) in {elapsed:.1} s: {rate:.3}/s of {allowed:.3}/s \
         ({:.1}%)",
        state.arrivals.len(),
        state.sent_429,
        100.0 * rate / allowed
    );
    assert!(
        rate >= 0.85 * allowed,
        "{rate:.3} requests/s of {allowed:.3} allowed"
    );
}

#[tokio::test(start_paused = true)]
async fn the_plan_prices_the_requests_the_run_makes() {
    let mut source = ScriptedSource::new("plan");
    source.requests_per_fetch = 3;
    let source = Arc::new(source);
    let store = Arc::new(MemoryStore::new());
    engine(&source, &store)
        .run(&september(4), &options(1))
        .await
        .unwrap();
    let engine = engine(&source, &store);
    let opts = options(2);
    let plan = engine.plan(&september(10), &opts).await.unwrap();
    assert_eq!(plan.requests_to_plan, 0, "nothing to ask the source");
    assert_eq!((plan.units, plan.batches), (6, 3));
    let before = source.requests();
    let report = engine.run(&september(10), &opts).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(
        plan.requests, report.requests,
        "a login and three requests for each of three windows"
    );
    assert_eq!(source.requests() - before, report.requests);
    assert_eq!(plan.presets.len(), 4);
}
