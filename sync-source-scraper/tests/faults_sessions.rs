//! Sessions that end at awkward moments, against a mocked site, with the
//! source inside the core's session and retry wrappers (as the engine runs
//! it).
//!
//! The core logs in again when a page shows the login form, and repeats the
//! request; a second login page right after a fresh login is taken for a
//! session the site does not keep (an authentication error, so that a broken
//! login cannot loop).

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::America::New_York;
use sync_core::{
    Authenticated, Batch, BatchSpan, FetchContext, MemoryStore, RateLimits, RetryPolicy, Retrying,
    Secret, Source, SourceExt, Span, Store,
};
use sync_source_scraper::{ScraperConfig, ScraperSource};
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $name
        ))
    };
}

const WEEK: &str = "/schedule/days-7/2026/2/9";

fn html(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), "text/html; charset=utf-8")
}

/// Every login succeeds (302 elsewhere with a session cookie).
async fn mount_login(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/login"))
        .respond_with(html(fixture!("login.html")))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/login"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", "/schedule")
                .insert_header("set-cookie", "sess=xyz; Path=/; HttpOnly"),
        )
        .mount(server)
        .await;
}

/// The week page answers these in turn (once each), then the empty week.
async fn mount_week_sequence(server: &MockServer, answers: Vec<ResponseTemplate>) {
    for (i, answer) in answers.into_iter().enumerate() {
        Mock::given(method("GET"))
            .and(path(WEEK))
            .respond_with(answer)
            .up_to_n_times(1)
            .with_priority(1 + i as u8)
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(WEEK))
        .respond_with(html(fixture!("week_empty.html")))
        .with_priority(20)
        .mount(server)
        .await;
}

fn source(server: &MockServer) -> ScraperSource {
    let mut c = ScraperConfig::new(
        Url::parse(&server.uri()).unwrap(),
        "staff@example.com",
        Secret::new("pw-faults-1"),
        New_York,
    );
    c.limits = RateLimits::UNLIMITED;
    ScraperSource::new(c).unwrap()
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        jitter: false,
        ..RetryPolicy::default()
    }
}

fn week_batch() -> Batch {
    let day = |d| NaiveDate::from_ymd_opt(2026, 2, d).unwrap();
    Batch::new(
        0,
        BatchSpan::Days {
            range: Span::new(day(9), day(15)).unwrap(),
            tz: New_York,
        },
    )
}

async fn fetch_week(answers: Vec<ResponseTemplate>) -> (sync_core::Result<usize>, u64) {
    let server = MockServer::start().await;
    mount_login(&server).await;
    mount_week_sequence(&server, answers).await;
    let source = source(&server);
    let store = Arc::new(MemoryStore::new());
    let ctx = FetchContext::new(source.stream().clone()).with_store(store as Arc<dyn Store>);
    let stack = Authenticated::new(Retrying::new(&source, retry()));
    stack.login(&ctx).await.unwrap();
    let fetched = stack
        .fetch_batch(&week_batch(), &ctx)
        .await
        .map(|r| r.len());
    let logins = server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/login")
        .count() as u64;
    (fetched, logins)
}

fn expired() -> ResponseTemplate {
    ResponseTemplate::new(302).insert_header("location", "/login?redirect_to=%2Fschedule")
}

/// Control: a session that expires once is renewed and the page read.
#[tokio::test]
async fn session_expired_once_is_renewed() {
    let (fetched, logins) = fetch_week(vec![expired()]).await;
    assert_eq!(fetched.unwrap(), 0);
    assert_eq!(logins, 2);
}

/// Control: 5xx answers alone are retried.
#[tokio::test]
async fn temporary_errors_are_retried() {
    let (fetched, _) =
        fetch_week(vec![ResponseTemplate::new(503), ResponseTemplate::new(502)]).await;
    assert_eq!(fetched.unwrap(), 0);
}

/// The session expires; after the new login the page first fails with a
/// 503, and while that is retried the site ends the new session too. The
/// import should log in once more and read the page. (Today the source
/// gives up with "the site showed the login page again ... right after
/// logging in", which stops the whole run.)
#[tokio::test]
async fn session_ended_while_the_repeated_request_is_retried_is_renewed_again() {
    let (fetched, logins) = fetch_week(vec![
        expired(),
        ResponseTemplate::new(503),
        html(fixture!("login.html")),
    ])
    .await;
    match fetched {
        Ok(n) => assert_eq!(n, 0),
        Err(e) => panic!("the import stopped after {logins} logins: {e}"),
    }
    assert_eq!(logins, 3);
}
