//! The core's wrappers on their own: `Retrying`, `Authenticated`, `Paced`,
//! and the order the engine stacks them in. Every test runs on a paused
//! tokio clock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use sync_core::{
    async_trait, Authenticated, Batch, BatchSpan, Budget, Cursor, DayRange, Engine, FetchContext,
    KeyRange, MemoryStore, Paced, Page, Probe, RateLimiter, RateLimits, Record, RetryPolicy,
    Retrying, RunStatus, SessionCache, Source, SourceInfo, StreamId, SyncError, SyncOptions,
    Target, Unit,
};
use tokio::time::Instant;

// ------------------------------------------------------------------ source

/// How the scripted server answers one request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Ok,
    Retryable,
    RateLimited(Option<Duration>),
    /// The session is gone (the server forgets it).
    Expired,
}

/// The server's side of one set of credentials: shared by every source
/// that logs in with them.
#[derive(Debug, Default)]
struct Credentials {
    live: bool,
    logins: u32,
    logged_in_at: Option<Instant>,
    /// The age of the session at each request it served.
    ages: Vec<Duration>,
}

#[derive(Debug)]
struct Script {
    stream: StreamId,
    max_age: Option<Duration>,
    latency: Duration,
    login_latency: Duration,
    /// Answers to the next page requests; then `Ok`.
    answers: Mutex<VecDeque<Answer>>,
    /// Answers to the next logins; then `Ok`.
    login_answers: Mutex<VecDeque<Answer>>,
    /// Requests per page call (a source may need several).
    requests_per_call: u32,
    credentials: Arc<Mutex<Credentials>>,
    /// What happened, in order, shared with a recording budget.
    events: Arc<Mutex<Vec<String>>>,
    calls: AtomicU32,
    probes: AtomicU32,
    /// Logins this source made (the credentials count everyone's).
    own_logins: AtomicU32,
}

impl Script {
    fn new() -> Self {
        Self {
            stream: StreamId::new("script", "things"),
            max_age: None,
            latency: Duration::from_millis(100),
            login_latency: Duration::from_secs(1),
            answers: Mutex::default(),
            login_answers: Mutex::default(),
            requests_per_call: 1,
            credentials: Arc::default(),
            events: Arc::default(),
            calls: AtomicU32::new(0),
            probes: AtomicU32::new(0),
            own_logins: AtomicU32::new(0),
        }
    }

    /// Already logged in (for wrappers that do not log in).
    fn live(self) -> Self {
        self.credentials.lock().unwrap().live = true;
        self
    }

    fn answering(self, answers: impl IntoIterator<Item = Answer>) -> Self {
        self.answers.lock().unwrap().extend(answers);
        self
    }

    fn event(&self, e: impl Into<String>) {
        self.events.lock().unwrap().push(e.into());
    }

    fn logins(&self) -> u32 {
        self.credentials.lock().unwrap().logins
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    fn error(answer: Answer) -> Option<SyncError> {
        match answer {
            Answer::Ok => None,
            Answer::Retryable => Some(SyncError::retryable("503")),
            Answer::RateLimited(retry_after) => Some(SyncError::RateLimited { retry_after }),
            Answer::Expired => Some(SyncError::AuthExpired {
                message: "redirected to the login page".into(),
            }),
        }
    }
}

fn batch() -> Batch {
    Batch::new(0, BatchSpan::Keys(KeyRange { first: 1, last: 3 }))
}

#[async_trait]
impl Source for Script {
    fn info(&self) -> SourceInfo {
        let info = SourceInfo::keys(self.stream.clone(), 3, false).with_probe();
        match self.max_age {
            Some(age) => info.with_session_max_age(age),
            None => info,
        }
    }

    async fn login(&self, ctx: &FetchContext) -> sync_core::Result<()> {
        ctx.request().await?;
        self.event("login");
        tokio::time::sleep(self.login_latency).await;
        let answer = self
            .login_answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Answer::Ok);
        if let Some(e) = Self::error(answer) {
            if matches!(e, SyncError::RateLimited { .. }) {
                self.event("429");
            }
            return Err(e);
        }
        self.own_logins.fetch_add(1, Ordering::SeqCst);
        let mut c = self.credentials.lock().unwrap();
        c.live = true;
        c.logins += 1;
        c.logged_in_at = Some(Instant::now());
        Ok(())
    }

    async fn fetch_page(
        &self,
        batch: &Batch,
        _: Option<&Cursor>,
        ctx: &FetchContext,
    ) -> sync_core::Result<Page> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        for _ in 0..self.requests_per_call {
            ctx.request().await?;
            self.event("request");
        }
        tokio::time::sleep(self.latency).await;
        {
            let mut c = self.credentials.lock().unwrap();
            if !c.live {
                return Err(Self::error(Answer::Expired).unwrap());
            }
            let age = c.logged_in_at.map_or(Duration::ZERO, |t| t.elapsed());
            c.ages.push(age);
        }
        let answer = self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Answer::Ok);
        if answer == Answer::Expired {
            self.credentials.lock().unwrap().live = false;
        }
        if let Some(e) = Self::error(answer) {
            if matches!(e, SyncError::RateLimited { .. }) {
                self.event("429");
            }
            return Err(e);
        }
        let BatchSpan::Keys(range) = batch.span else {
            return Ok(Page::default());
        };
        Ok(Page::last(
            range
                .iter()
                .map(|k| Record::new("thing", k.to_string(), Unit::Key(k), serde_json::json!({})))
                .collect(),
        ))
    }

    async fn probe(&self, _: DayRange, ctx: &FetchContext) -> sync_core::Result<Option<Probe>> {
        ctx.request().await?;
        let n = self.probes.fetch_add(1, Ordering::SeqCst);
        if n < 2 {
            return Err(SyncError::retryable("timeout"));
        }
        Ok(Some(Probe { items: 5, days: 1 }))
    }
}

fn ctx() -> FetchContext {
    FetchContext::new(StreamId::new("script", "things"))
}

fn steady(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        initial_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(8),
        max_rate_limited_retries: 30,
        jitter: false,
        max_elapsed: Duration::from_secs(3600),
    }
}

/// A budget that notes each acquire and each 429 reported, in the order
/// they happen, next to the source's own events.
#[derive(Debug)]
struct Recording {
    inner: RateLimiter,
    events: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Budget for Recording {
    async fn acquire(&self) -> sync_core::Result<()> {
        self.events.lock().unwrap().push("acquire".into());
        self.inner.acquire().await;
        Ok(())
    }
    async fn rate_limited(&self, retry_after: Option<Duration>) -> sync_core::Result<()> {
        self.events.lock().unwrap().push("reported".into());
        self.inner.on_rate_limited(retry_after);
        Ok(())
    }
    fn limits(&self) -> RateLimits {
        self.inner.limits()
    }
    fn name(&self) -> String {
        "recording".into()
    }
}

// ---------------------------------------------------------------- Retrying

#[tokio::test(start_paused = true)]
async fn retrying_counts_each_retry_and_gives_up_after_max_retries() {
    let script = Arc::new(
        Script::new()
            .answering([Answer::Retryable, Answer::Retryable])
            .live(),
    );
    let source = Retrying::new(script.clone(), steady(3));
    let ctx = ctx();
    let started = Instant::now();
    let page = source.fetch_page(&batch(), None, &ctx).await.unwrap();
    assert_eq!(page.records.len(), 3);
    assert_eq!(script.calls(), 3);
    assert_eq!(ctx.meter().retries(), 2);
    assert_eq!(ctx.meter().requests(), 3);
    // Three round trips of 100 ms and backoffs of 1 s and 2 s.
    assert_eq!(started.elapsed(), Duration::from_millis(3300));

    // Every operation is retried the same way: the probe fails twice.
    let probe = source
        .probe(DayRange::single("2024-01-01".parse().unwrap()), &ctx)
        .await
        .unwrap();
    assert_eq!(probe, Some(Probe { items: 5, days: 1 }));
    assert_eq!(ctx.meter().retries(), 4);

    let failing = Retrying::new(
        Script::new().answering([Answer::Retryable; 10]).live(),
        steady(3),
    );
    let ctx = self::ctx();
    let err = failing.fetch_page(&batch(), None, &ctx).await.unwrap_err();
    assert!(matches!(err, SyncError::Retryable { .. }), "{err:?}");
    assert_eq!(
        failing.inner().calls(),
        4,
        "the first attempt and 3 retries"
    );
    assert_eq!(ctx.meter().retries(), 3);

    // What retrying cannot fix is returned at once.
    let expired = Retrying::new(Script::new(), steady(3));
    let err = expired.fetch_page(&batch(), None, &ctx).await.unwrap_err();
    assert!(matches!(err, SyncError::AuthExpired { .. }), "{err:?}");
    assert_eq!(expired.inner().calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn retrying_ends_within_max_elapsed() {
    // Backoffs of 4 s and 8 s: the second would end past 10 s, so the
    // operation gives up after the second attempt.
    let policy = RetryPolicy {
        initial_delay: Duration::from_secs(4),
        max_delay: Duration::from_secs(30),
        max_elapsed: Duration::from_secs(10),
        ..steady(10)
    };
    let source = Retrying::new(
        Script::new().answering([Answer::Retryable; 10]).live(),
        policy,
    );
    let ctx = ctx();
    let started = Instant::now();
    let err = source.fetch_page(&batch(), None, &ctx).await.unwrap_err();
    assert!(matches!(err, SyncError::Retryable { .. }), "{err:?}");
    assert_eq!(source.inner().calls(), 2);
    assert!(started.elapsed() <= Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn retrying_counts_the_pauses_429s_ask_for_against_max_elapsed() {
    // 429s that ask for 60 s each, paced by the budget: with two minutes in
    // all, the operation gives up when the next pause would end past them.
    let policy = RetryPolicy {
        max_elapsed: Duration::from_secs(120),
        ..steady(10)
    };
    let answers = [Answer::RateLimited(Some(Duration::from_secs(60))); 30];
    let budget = Arc::new(RateLimiter::unlimited());
    let mut script = Script::new().answering(answers).live();
    script.latency = Duration::ZERO;
    let script = Arc::new(script);
    let source = Retrying::new(Paced::new(script.clone(), budget.clone()), policy.clone());
    let ctx = self::ctx();
    let started = Instant::now();
    let err = source.fetch_page(&batch(), None, &ctx).await.unwrap_err();
    assert!(matches!(err, SyncError::RateLimited { .. }), "{err:?}");
    let took = started.elapsed();
    assert!(
        took <= policy.max_elapsed,
        "{took:?}: all attempts took longer than {:?}",
        policy.max_elapsed
    );
    assert_eq!(script.calls(), 3);
    assert_eq!(budget.stats().rate_limited, 3);
}

// ----------------------------------------------------------- Authenticated

#[tokio::test(start_paused = true)]
async fn authenticated_logs_in_lazily_and_once_for_many_concurrent_operations() {
    let script = Arc::new(Script::new());
    let source = Authenticated::new(script.clone());
    let ctx = ctx();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(source.cache().logins(), 0, "no login before an operation");
    assert_eq!(ctx.meter().requests(), 0);

    let started = Instant::now();
    let b = batch();
    let results = join_all((0..20).map(|_| source.fetch_page(&b, None, &ctx))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(source.cache().logins(), 1);
    assert_eq!(script.logins(), 1, "one login for twenty operations");
    assert_eq!(script.calls(), 20, "no operation was repeated");
    // The login (1 s), then the twenty at once.
    assert_eq!(started.elapsed(), Duration::from_millis(1100));
    assert_eq!(ctx.meter().requests(), 21);
}

#[tokio::test(start_paused = true)]
async fn authenticated_renews_a_session_older_than_its_max_age_before_the_request() {
    let mut script = Script::new();
    script.max_age = Some(Duration::from_secs(600));
    let script = Arc::new(script);
    let source = Authenticated::new(script.clone());
    let ctx = ctx();
    for wait in [0u64, 300, 290, 30, 500, 200] {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        source.fetch_page(&batch(), None, &ctx).await.unwrap();
    }
    // Logged in at 0 s; requests at about 1, 301, 591 s; at 621 s the
    // session is older than 600 s: renewed first; then about 1122 s and
    // 1322 s (renewed again first).
    assert_eq!(script.logins(), 3);
    let ages = script.credentials.lock().unwrap().ages.clone();
    assert!(
        ages.iter().all(|a| *a < Duration::from_secs(600)),
        "a request went out on a session older than its max age: {ages:?}"
    );
    assert_eq!(script.calls(), 6, "renewal before, not after a failure");
}

#[tokio::test(start_paused = true)]
async fn authenticated_renews_once_on_expiry_and_gives_unauthenticated_when_it_expires_again() {
    let script = Arc::new(Script::new().answering([Answer::Expired]));
    let source = Authenticated::new(script.clone());
    let ctx = ctx();
    source.fetch_page(&batch(), None, &ctx).await.unwrap();
    assert_eq!((script.logins(), script.calls()), (2, 2));
    assert_eq!(ctx.meter().retries(), 1, "the repeated request");

    // Expired again right after the renewal: no loop, the credentials are
    // the problem.
    script
        .answers
        .lock()
        .unwrap()
        .extend([Answer::Expired, Answer::Expired, Answer::Expired]);
    let err = source.fetch_page(&batch(), None, &ctx).await.unwrap_err();
    assert!(matches!(err, SyncError::Unauthenticated { .. }), "{err:?}");
    assert!(err.to_string().contains("again"), "{err}");
    assert_eq!((script.logins(), script.calls()), (3, 4));

    // A login answered "expired" means the credentials do not work.
    let refusing = Arc::new(Script::new());
    refusing
        .login_answers
        .lock()
        .unwrap()
        .push_back(Answer::Expired);
    let refused = Authenticated::new(refusing.clone());
    let err = refused.fetch_page(&batch(), None, &ctx).await.unwrap_err();
    assert!(matches!(err, SyncError::Unauthenticated { .. }), "{err:?}");
    assert_eq!(refusing.calls(), 0, "nothing sent without a session");
}

#[tokio::test(start_paused = true)]
async fn concurrent_operations_that_find_the_session_expired_renew_it_once() {
    let script = Arc::new(Script::new());
    let source = Authenticated::new(script.clone());
    let ctx = ctx();
    source.fetch_page(&batch(), None, &ctx).await.unwrap();
    // The server forgets the session: the next five requests, sent at once,
    // all find it gone.
    script.credentials.lock().unwrap().live = false;
    let b = batch();
    let results = join_all((0..5).map(|_| source.fetch_page(&b, None, &ctx))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(script.logins(), 2, "one renewal for five expired requests");
    assert_eq!(script.calls(), 1 + 5 + 5);
}

#[tokio::test(start_paused = true)]
async fn two_sources_with_the_same_credentials_share_one_session() {
    let credentials: Arc<Mutex<Credentials>> = Arc::default();
    let mut a = Script::new();
    a.credentials = credentials.clone();
    let mut b = Script::new();
    b.stream = StreamId::new("script", "other things");
    b.credentials = credentials.clone();
    let (a, b) = (Arc::new(a), Arc::new(b));
    let cache = Arc::new(SessionCache::new());
    let with_a = Authenticated::with_cache(a.clone(), cache.clone());
    let with_b = Authenticated::with_cache(b.clone(), cache.clone());
    let ctx = ctx();

    let one = batch();
    let (x, y) = tokio::join!(
        with_a.fetch_page(&one, None, &ctx),
        with_b.fetch_page(&one, None, &ctx)
    );
    x.unwrap();
    y.unwrap();
    assert_eq!(cache.logins(), 1);
    assert_eq!(credentials.lock().unwrap().logins, 1, "one login for both");

    // The session expires under b: b renews it, a goes on with the new one.
    credentials.lock().unwrap().live = false;
    with_b.fetch_page(&batch(), None, &ctx).await.unwrap();
    with_a.fetch_page(&batch(), None, &ctx).await.unwrap();
    assert_eq!(cache.logins(), 2);
    assert_eq!(credentials.lock().unwrap().logins, 2);
    assert_eq!(a.calls(), 2, "a never saw the expired session");
    assert_eq!(
        (
            a.own_logins.load(Ordering::SeqCst),
            b.own_logins.load(Ordering::SeqCst)
        ),
        (1, 1),
        "the first login by one, the renewal by the other"
    );
}

// ------------------------------------------------------------------- Paced

#[tokio::test(start_paused = true)]
async fn paced_draws_every_request_from_the_budget_and_reports_each_429() {
    let mut script = Script::new().answering([
        Answer::Ok,
        Answer::RateLimited(Some(Duration::from_secs(5))),
    ]);
    script.requests_per_call = 3;
    script.latency = Duration::ZERO;
    let script = script.live();
    let events = script.events.clone();
    let budget = Arc::new(Recording {
        inner: RateLimiter::new(RateLimits::new(Some(2), None)),
        events: events.clone(),
    });
    let source = Paced::new(script, budget.clone());
    let ctx = ctx();

    let started = Instant::now();
    source.fetch_page(&batch(), None, &ctx).await.unwrap();
    // Three requests at 2 a second: the third waits for the window.
    assert_eq!(started.elapsed(), Duration::from_millis(1020));
    assert_eq!(ctx.meter().requests(), 3);

    let err = source.fetch_page(&batch(), None, &ctx).await.unwrap_err();
    assert!(matches!(err, SyncError::RateLimited { .. }), "{err:?}");
    assert_eq!(ctx.meter().rate_limited(), 1, "counted");
    assert_eq!(budget.inner.stats().rate_limited, 1, "reported");
    // The next request waits for the server's 5 s.
    let t = Instant::now();
    ctx.clone()
        .with_budget(budget.clone())
        .request()
        .await
        .unwrap();
    assert!(t.elapsed() >= Duration::from_secs(5), "{:?}", t.elapsed());
    let events = events.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            "acquire", "request", "acquire", "request", "acquire", "request", // first call
            "acquire", "request", "acquire", "request", "acquire", "request", // second
            "429", "reported", "acquire" // and the request after it
        ]
    );
}

// ------------------------------------------------------------------ order

#[tokio::test(start_paused = true)]
async fn every_attempt_is_paced_and_every_429_reported_in_the_engines_order() {
    let script = Script::new().answering([
        Answer::RateLimited(None),
        Answer::Retryable,
        Answer::RateLimited(Some(Duration::from_secs(2))),
    ]);
    script
        .login_answers
        .lock()
        .unwrap()
        .push_back(Answer::RateLimited(None));
    let events = script.events.clone();
    let budget = Arc::new(Recording {
        inner: RateLimiter::new(RateLimits::new(Some(5), None)),
        events: events.clone(),
    });
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::new(Arc::new(script), store.clone(), store, budget);
    let options = SyncOptions::builder()
        .retry(RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        })
        .build();
    let report = engine
        .run(&Target::Keys(KeyRange { first: 1, last: 3 }), &options)
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{:?}", report.errors);
    let events = events.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            "acquire", "login", "429", "reported", // the login, refused
            "acquire", "login", // and paced again
            "acquire", "request", "429", "reported", //
            "acquire", "request", // 503
            "acquire", "request", "429", "reported", //
            "acquire", "request", // the answer
        ]
    );
    assert_eq!(
        (report.requests, report.rate_limited, report.retries),
        (6, 3, 4)
    );
}
