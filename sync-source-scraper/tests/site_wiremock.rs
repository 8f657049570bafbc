//! The source against a mocked site whose pages are shaped exactly like the
//! examples of the site's markup the earlier importer recorded (the
//! fixtures): login, expired sessions in both forms, paging, dedupe, when a
//! detail page is read again, vanished appointments, and pages that do not
//! parse. The source runs inside the core's retry and session wrappers, as
//! the engine runs it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use chrono_tz::America::Los_Angeles;
use serde_json::json;
use sync_core::{
    Authenticated, Batch, BatchCommit, BatchSpan, CheckpointStore, Coverage, DayRange,
    FetchContext, MemoryStore, RateLimits, Record, RetryPolicy, Retrying, RunId, RunReport, Secret,
    Source, SourceExt, Span, Store, SyncError, SyncMode, Unit,
};
use sync_source_scraper::{ScraperConfig, ScraperSource};
use url::Url;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const PASSWORD: &str = "pa55 w0rd!";

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $name
        ))
    };
}

/// Matches requests that carry a cookie `name=value`.
struct HasCookie(&'static str);

impl Match for HasCookie {
    fn matches(&self, req: &Request) -> bool {
        req.headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .any(|pair| pair.trim() == self.0)
    }
}

fn html(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), "text/html; charset=utf-8")
}

fn redirect(to: &str) -> ResponseTemplate {
    ResponseTemplate::new(302).insert_header("location", to)
}

fn config(server: &MockServer) -> ScraperConfig {
    let mut c = ScraperConfig::new(
        Url::parse(&server.uri()).unwrap(),
        "staff@example.com",
        Secret::new(PASSWORD),
        Los_Angeles,
    );
    c.limits = RateLimits::UNLIMITED;
    c
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        jitter: false,
        ..RetryPolicy::default()
    }
}

/// The source as the engine calls it: retried, its session kept by the
/// core.
struct Kennel {
    source: Arc<ScraperSource>,
    stack: Authenticated<Retrying<Arc<ScraperSource>>>,
    ctx: FetchContext,
    store: Arc<MemoryStore>,
}

impl Kennel {
    fn new(config: ScraperConfig, store: &Arc<MemoryStore>) -> Self {
        let source = Arc::new(ScraperSource::new(config).unwrap());
        let stack = Authenticated::new(Retrying::new(source.clone(), retry()));
        let ctx = Self::context(&source, store);
        Self {
            source,
            stack,
            ctx,
            store: store.clone(),
        }
    }

    fn context(source: &ScraperSource, store: &Arc<MemoryStore>) -> FetchContext {
        FetchContext::new(source.stream().clone()).with_store(store.clone() as Arc<dyn Store>)
    }

    /// The batch fetched by another run (every run has its own meter).
    async fn fetch_in_a_new_run(&self, batch: &Batch) -> sync_core::Result<Vec<Record>> {
        let ctx = Self::context(&self.source, &self.store);
        let mut records = self.stack.fetch_batch(batch, &ctx).await?;
        records.sort_by(|a, b| a.external_id.cmp(&b.external_id));
        Ok(records)
    }

    async fn login(&self) -> sync_core::Result<()> {
        self.stack.login(&self.ctx).await
    }

    /// Every record of the batch, sorted by id.
    async fn fetch(&self, batch: &Batch) -> sync_core::Result<Vec<Record>> {
        let mut records = self.stack.fetch_batch(batch, &self.ctx).await?;
        records.sort_by(|a, b| a.external_id.cmp(&b.external_id));
        Ok(records)
    }

    fn logins(&self) -> u64 {
        self.stack.cache().logins()
    }
}

fn kennel(server: &MockServer, store: &Arc<MemoryStore>) -> Kennel {
    Kennel::new(config(server), store)
}

fn new_store() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new())
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 2, d).unwrap()
}

fn batch(first: u32, last: u32) -> Batch {
    Batch::new(
        0,
        BatchSpan::Days {
            range: Span::new(day(first), day(last)).unwrap(),
            tz: Los_Angeles,
        },
    )
}

/// The same days, re-checked (a forced run or a delta's re-check).
fn recheck(first: u32, last: u32) -> Batch {
    let mut b = batch(first, last);
    b.recheck = true;
    b
}

/// The login form and a successful POST (302 + session cookie); the POST
/// must carry every hidden input and the cookie of the GET.
async fn mount_login(server: &MockServer, expected_logins: u64) {
    Mock::given(method("GET"))
        .and(path("/login"))
        .respond_with(html(fixture!("login.html")).insert_header("set-cookie", "pre=abc; Path=/"))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/login"))
        .and(HasCookie("pre=abc"))
        .and(body_string_contains("utf8=%E2%9C%93"))
        .and(body_string_contains(
            "authenticity_token=Zm9v%2BYmFy%2F%3D%3D",
        ))
        .and(body_string_contains("return_to=&"))
        .and(body_string_contains("user%5Bemail%5D=staff%40example.com"))
        .and(body_string_contains("user%5Bpassword%5D=pa55+w0rd%21"))
        .respond_with(
            redirect("/schedule").insert_header("set-cookie", "sess=xyz; Path=/; HttpOnly"),
        )
        .expect(expected_logins)
        .mount(server)
        .await;
}

async fn mount_page(server: &MockServer, p: &str, body: &str, expected: u64) {
    Mock::given(method("GET"))
        .and(path(p))
        .and(HasCookie("sess=xyz"))
        .respond_with(html(body))
        .expect(expected)
        .mount(server)
        .await;
}

/// The detail pages of `week.html`: two boardings (2049317 checks in on
/// Feb 9, C63QgKsL on Feb 13), a daycare entry, a cancelled request and a
/// boarding of March.
const NIGHTS: &str = "/schedule/a/2049317/1770685080";
const BOARDING: &str = "/schedule/a/C63QgKsL/1770944400";
const DAYCARE: &str = "/schedule/a/C63QgDC1/1770656400";
const CANCELLED: &str = "/schedule/a/C63QgCnX/1770739200";
const MARCH: &str = "/schedule/a/C63QfyoF/1774998000";

async fn mount_details(server: &MockServer, expected: u64) {
    for (p, body) in [
        (NIGHTS, fixture!("detail_nights.html")),
        (BOARDING, fixture!("detail_boarding.html")),
        (DAYCARE, fixture!("detail_daycare.html")),
        (CANCELLED, fixture!("detail_cancelled.html")),
        (MARCH, fixture!("detail_stale_title.html")),
    ] {
        mount_page(server, p, body, expected).await;
    }
}

async fn commit(store: &MemoryStore, source: &ScraperSource, records: &[Record], range: DayRange) {
    let run = RunId::generate(Utc::now());
    let mut report = RunReport::start(
        run.clone(),
        source.stream().clone(),
        SyncMode::Full,
        "test",
        Utc::now(),
    );
    store.begin_run(&report).await.unwrap();
    let mut covered = Coverage::default();
    covered.days.insert(range);
    store
        .commit(BatchCommit {
            run: &run,
            stream: source.stream(),
            records,
            covered: &covered,
            progress: Default::default(),
            claim: None,
            finishes_batch: true,
        })
        .await
        .unwrap();
    report.finished_at = Some(Utc::now());
    report.status = sync_core::RunStatus::Completed;
    store.finish_run(&report).await.unwrap();
}

fn ids(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.external_id.as_str()).collect()
}

fn in_days(records: &[Record], first: u32, last: u32) -> Vec<&str> {
    let range = Span::new(day(first), day(last)).unwrap();
    records
        .iter()
        .filter(|r| matches!(r.unit, Unit::Day(d) if range.contains(d)))
        .map(|r| r.external_id.as_str())
        .collect()
}

#[tokio::test]
async fn imports_the_boardings_read_each_on_its_own_check_in_day() {
    let server = MockServer::start().await;
    mount_login(&server, 1).await;
    mount_page(
        &server,
        "/schedule/days-7/2026/2/9",
        fixture!("week.html"),
        1,
    )
    .await;
    mount_details(&server, 1).await;
    let k = kennel(&server, &new_store());
    k.login().await.unwrap();

    let records = k.fetch(&batch(9, 15)).await.unwrap();
    // C63QgDC1 is daycare and C63QgCnX a cancelled request: no records.
    // C63QfyoF (listed with a stale title) checks in in March: its record
    // is on its own day, outside the batch.
    assert_eq!(ids(&records), ["2049317", "C63QfyoF", "C63QgKsL"]);
    assert_eq!(in_days(&records, 9, 15), ["2049317", "C63QgKsL"]);
    let march = &records[1];
    assert_eq!(
        march.unit,
        Unit::Day(NaiveDate::from_ymd_opt(2026, 3, 10).unwrap())
    );
    let r = &records[2];
    assert_eq!(r.entity, "boarding");
    assert_eq!(r.unit, Unit::Day(day(13)));
    assert_eq!(
        r.occurred_at.unwrap().to_rfc3339(),
        "2026-02-14T01:00:00+00:00"
    );
    assert!(!r.deleted);
    let p = &r.payload;
    assert_eq!(p["appointment_id"], "C63QgKsL");
    assert_eq!(p["pets"], json!(["Luna"]));
    assert_eq!(p["client"]["name"], "John Smith");
    assert_eq!(p["client"]["phone"], "+14155550100");
    assert_eq!(p["service_type"], "2/13-18");
    assert_eq!(p["status"], "Scheduled");
    assert_eq!(p["check_in"], "2026-02-14T01:00:00Z");
    assert_eq!(p["check_out"], "2026-02-18T18:00:00Z");
    assert_eq!(p["check_in_day"], "2026-02-13");
    assert_eq!(p["dates_from"], "title");
    assert_eq!(p["price"]["total_cents"], json!(35000));
    assert_eq!(
        p["notes"],
        "Luna loves belly rubs!\nFeed twice a day & walk at 6pm\nBring her blanket"
    );
    assert_eq!(p["fields"]["breeds"], "Golden Retriever");
    assert_eq!(p["event_type"], "1");
    assert_eq!(p["detail_path"], BOARDING);
    assert_eq!(p["list_fingerprint"].as_str().unwrap().len(), 32);
    let nights = &records[0];
    assert_eq!(nights.unit, Unit::Day(day(9)));
    assert_eq!(nights.payload["pets"], json!(["Biscuit", "Gravy & Co"]));
    assert_eq!(nights.payload["dates_from"], "timestamps");
    // A login (form and POST), the week page, five detail pages.
    assert_eq!(k.ctx.meter().requests(), 2 + 1 + 5);
    assert_eq!(k.logins(), 1);
}

#[tokio::test]
async fn wrong_password_is_unauthenticated_with_the_site_message_and_no_password() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/login"))
        .respond_with(html(fixture!("login.html")))
        .mount(&server)
        .await;
    let echoed = fixture!("login_failed.html").replace(
        "Incorrect   email or&nbsp;password.",
        &format!("Incorrect password “{PASSWORD}” for this account."),
    );
    Mock::given(method("POST"))
        .and(path("/login"))
        .respond_with(html(&echoed))
        .expect(1)
        .mount(&server)
        .await;
    let k = kennel(&server, &new_store());
    let e = k.login().await.unwrap_err();
    assert!(matches!(e, SyncError::Unauthenticated { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("login rejected for user staff@example.com"),
        "{msg}"
    );
    assert!(msg.contains("Incorrect password"), "{msg}");
    assert!(
        !msg.contains(PASSWORD) && !format!("{e:?}").contains(PASSWORD),
        "{msg}"
    );
    assert!(!format!("{:?}", k.source).contains(PASSWORD));
    assert_eq!(k.logins(), 0);
}

#[tokio::test]
async fn plain_failed_login_page_gives_the_site_message() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/login"))
        .respond_with(html(fixture!("login.html")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/login"))
        .respond_with(html(fixture!("login_failed.html")))
        .mount(&server)
        .await;
    let k = kennel(&server, &new_store());
    let e = k.login().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "authentication failed: login rejected for user staff@example.com: Incorrect email or password."
    );
}

/// The week page first answers with `expired`, then with the page.
async fn expired_once(expired: ResponseTemplate) {
    let server = MockServer::start().await;
    mount_login(&server, 2).await;
    Mock::given(method("GET"))
        .and(path("/schedule/days-7/2026/2/9"))
        .respond_with(expired)
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_page(
        &server,
        "/schedule/days-7/2026/2/9",
        fixture!("week_empty.html"),
        1,
    )
    .await;
    let k = kennel(&server, &new_store());
    let records = k.fetch(&batch(9, 15)).await.unwrap();
    assert!(records.is_empty());
    assert_eq!(k.logins(), 2);
    server.verify().await;
}

#[tokio::test]
async fn expired_session_by_redirect_logs_in_once_and_repeats() {
    expired_once(redirect("/login?redirect_to=%2Fschedule")).await;
}

#[tokio::test]
async fn expired_session_as_login_form_in_200_logs_in_once_and_repeats() {
    expired_once(html(fixture!("login.html"))).await;
}

#[tokio::test]
async fn login_page_after_a_fresh_login_is_an_authentication_error() {
    for expired in [redirect("/login"), html(fixture!("login.html"))] {
        let server = MockServer::start().await;
        mount_login(&server, 2).await;
        Mock::given(method("GET"))
            .and(path("/schedule/days-7/2026/2/9"))
            .respond_with(expired)
            .expect(2)
            .mount(&server)
            .await;
        let k = kennel(&server, &new_store());
        k.login().await.unwrap();
        let e = k.fetch(&batch(9, 9)).await.unwrap_err();
        assert!(matches!(e, SyncError::Unauthenticated { .. }), "{e:?}");
        assert!(e.to_string().contains("expired again"), "{e}");
        assert!(e.to_string().contains("/schedule/days-7/2026/2/9"), "{e}");
        server.verify().await;
    }
}

#[tokio::test]
async fn a_session_older_than_its_max_age_is_renewed_before_the_next_request() {
    let server = MockServer::start().await;
    mount_login(&server, 2).await;
    mount_page(
        &server,
        "/schedule/days-7/2026/2/9",
        fixture!("week_empty.html"),
        3,
    )
    .await;
    let mut c = config(&server);
    c.session_max_age = Duration::from_millis(300);
    let k = Kennel::new(c, &new_store());
    k.fetch(&batch(9, 9)).await.unwrap();
    // Fresh: no second login.
    k.fetch(&batch(9, 9)).await.unwrap();
    assert_eq!(k.logins(), 1);
    tokio::time::sleep(Duration::from_millis(350)).await;
    k.fetch(&batch(9, 9)).await.unwrap();
    assert_eq!(k.logins(), 2);
    server.verify().await;
}

#[tokio::test]
async fn next_link_to_the_page_itself_does_not_loop() {
    let server = MockServer::start().await;
    mount_login(&server, 1).await;
    let self_link = fixture!("week_empty.html")
        .replace("/schedule/days-7/2026/2/16", "/schedule/days-7/2026/2/9");
    mount_page(&server, "/schedule/days-7/2026/2/9", &self_link, 1).await;
    mount_page(&server, "/schedule/days-7/2026/2/16", &self_link, 1).await;
    let k = kennel(&server, &new_store());
    let records = k.fetch(&batch(9, 22)).await.unwrap();
    assert!(records.is_empty());
    server.verify().await;
}

#[tokio::test]
async fn weeks_follow_the_next_link_and_multi_day_boardings_are_fetched_once() {
    // The site's next link may point to any start within the next seven
    // days; both weeks list every appointment again.
    let first =
        fixture!("week.html").replace("/schedule/days-7/2026/2/16", "/schedule/days-7/2026/2/14");
    let second =
        fixture!("week.html").replace("/schedule/days-7/2026/2/16", "/schedule/days-7/2026/2/21");
    let server = MockServer::start().await;
    mount_login(&server, 1).await;
    mount_page(&server, "/schedule/days-7/2026/2/9", &first, 1).await;
    mount_page(&server, "/schedule/days-7/2026/2/14", &second, 1).await;
    mount_details(&server, 1).await;
    let k = kennel(&server, &new_store());
    // Feb 9..=Feb 20: the window of the 9th, then the one the link names (14th).
    let records = k.fetch(&batch(9, 20)).await.unwrap();
    assert_eq!(in_days(&records, 9, 20), ["2049317", "C63QgKsL"]);
    server.verify().await;
}

#[tokio::test]
async fn a_first_fetch_reuses_what_this_source_just_read_and_a_recheck_reads_it_all_again() {
    let server = MockServer::start().await;
    mount_login(&server, 1).await;
    mount_page(
        &server,
        "/schedule/days-7/2026/2/9",
        fixture!("week.html"),
        4,
    )
    .await;
    // Two first fetches read each detail page once (the second takes the
    // stored copies and skips the non-boardings read a moment ago); the
    // re-check reads them all again.
    mount_details(&server, 2).await;
    let store = new_store();
    let k = kennel(&server, &store);
    let b = batch(9, 15);
    let range = Span::new(day(9), day(15)).unwrap();
    let first = k.fetch(&b).await.unwrap();
    commit(&store, &k.source, &first, range).await;
    let second = k.fetch(&b).await.unwrap();
    assert_eq!(ids(&second), in_days(&first, 9, 15));
    for a in &second {
        let b = first
            .iter()
            .find(|r| r.external_id == a.external_id)
            .unwrap();
        assert_eq!((a.hash, a.deleted, a.unit), (b.hash, b.deleted, b.unit));
        assert_eq!(a.payload, b.payload);
        assert_eq!(a.occurred_at, b.occurred_at);
    }
    // Within the same run, a re-check takes what the run read already.
    let same_run = k.fetch(&recheck(9, 15)).await.unwrap();
    assert_eq!(ids(&same_run), in_days(&first, 9, 15));
    let third = k.fetch_in_a_new_run(&recheck(9, 15)).await.unwrap();
    assert_eq!(ids(&third), ids(&first));
    server.verify().await;
}

#[tokio::test]
async fn a_stored_copy_of_another_batch_is_not_read_again_on_a_first_fetch() {
    let server = MockServer::start().await;
    mount_login(&server, 2).await;
    let week = fixture!("week.html");
    Mock::given(method("GET"))
        .and(path("/schedule/days-7/2026/2/9"))
        .respond_with(html(week))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let changed = week.replace("Feb 9, 4:58pm - 7:24pm", "Feb 9, 4:58pm - 8:00pm");
    mount_page(&server, "/schedule/days-7/2026/2/9", &changed, 1).await;
    // The changed list entry is read again; C63QgKsL (Feb 13) and C63QfyoF
    // (March) are stored on other days than the batch's one: not read
    // again. The daycare and the cancelled request are read again: this is
    // another source (another process), which has not read them lately.
    mount_page(&server, NIGHTS, fixture!("detail_nights.html"), 2).await;
    mount_page(&server, BOARDING, fixture!("detail_boarding.html"), 1).await;
    mount_page(&server, DAYCARE, fixture!("detail_daycare.html"), 2).await;
    mount_page(&server, CANCELLED, fixture!("detail_cancelled.html"), 2).await;
    mount_page(&server, MARCH, fixture!("detail_stale_title.html"), 1).await;
    let store = new_store();
    let k = kennel(&server, &store);
    let first = k.fetch(&batch(9, 9)).await.unwrap();
    commit(&store, &k.source, &first, Span::single(day(9))).await;
    let again = kennel(&server, &store);
    let second = again.fetch(&batch(9, 9)).await.unwrap();
    assert_eq!(ids(&second), ["2049317"]);
    assert_ne!(
        first[0].payload["list_fingerprint"],
        second[0].payload["list_fingerprint"]
    );
    assert_eq!(first[0].hash, second[0].hash, "the fingerprint is volatile");
    server.verify().await;
}

#[tokio::test]
async fn an_edit_only_the_detail_page_shows_is_seen_by_a_recheck() {
    let server = MockServer::start().await;
    mount_login(&server, 1).await;
    mount_page(
        &server,
        "/schedule/days-7/2026/2/9",
        fixture!("week.html"),
        2,
    )
    .await;
    Mock::given(method("GET"))
        .and(path(BOARDING))
        .respond_with(html(fixture!("detail_boarding.html")))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let repriced = fixture!("detail_boarding.html")
        .replace("Total $350", "Total $375")
        .replace(
            "Luna loves belly rubs!",
            "Luna loves belly rubs! Bath on Friday.",
        );
    assert_ne!(repriced, fixture!("detail_boarding.html"));
    mount_page(&server, BOARDING, &repriced, 1).await;
    for (p, body) in [
        (NIGHTS, fixture!("detail_nights.html")),
        (DAYCARE, fixture!("detail_daycare.html")),
        (CANCELLED, fixture!("detail_cancelled.html")),
        (MARCH, fixture!("detail_stale_title.html")),
    ] {
        mount_page(&server, p, body, 2).await;
    }
    let store = new_store();
    let k = kennel(&server, &store);
    let range = Span::new(day(9), day(15)).unwrap();
    let first = k.fetch(&batch(9, 15)).await.unwrap();
    commit(&store, &k.source, &first, range).await;
    let second = k.fetch_in_a_new_run(&recheck(9, 15)).await.unwrap();
    let luna = second.iter().find(|r| r.external_id == "C63QgKsL").unwrap();
    assert_eq!(luna.payload["price"]["total_cents"], json!(37500));
    assert!(luna.payload["notes"]
        .as_str()
        .unwrap()
        .contains("Bath on Friday."));
    server.verify().await;
}

#[tokio::test]
async fn vanished_appointments_are_rechecked_and_marked_deleted() {
    let server = MockServer::start().await;
    mount_login(&server, 1).await;
    Mock::given(method("GET"))
        .and(path("/schedule/days-7/2026/2/9"))
        .respond_with(html(fixture!("week.html")))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    // The second time the week shows nothing: 2049317 is deleted (404),
    // C63QgKsL became a cancelled request (its page says so).
    mount_page(
        &server,
        "/schedule/days-7/2026/2/9",
        fixture!("week_empty.html"),
        2,
    )
    .await;
    Mock::given(method("GET"))
        .and(path(NIGHTS))
        .respond_with(html(fixture!("detail_nights.html")))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(NIGHTS))
        .respond_with(ResponseTemplate::new(404).set_body_string("<html><h1>Not found</h1></html>"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(BOARDING))
        .respond_with(html(fixture!("detail_boarding.html")))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let cancelled = fixture!("detail_boarding.html").replace(
        "<i class=\"icon-status\"></i> Scheduled",
        "Request canceled",
    );
    assert_ne!(cancelled, fixture!("detail_boarding.html"));
    mount_page(&server, BOARDING, &cancelled, 1).await;
    mount_page(&server, DAYCARE, fixture!("detail_daycare.html"), 1).await;
    mount_page(&server, CANCELLED, fixture!("detail_cancelled.html"), 1).await;
    mount_page(&server, MARCH, fixture!("detail_stale_title.html"), 1).await;
    let store = new_store();
    let k = kennel(&server, &store);
    let range = Span::new(day(9), day(15)).unwrap();
    let first = k.fetch(&batch(9, 15)).await.unwrap();
    assert_eq!(in_days(&first, 9, 15), ["2049317", "C63QgKsL"]);
    assert!(first.iter().all(|r| !r.deleted));
    commit(&store, &k.source, &first, range).await;

    let second = k.fetch(&batch(9, 15)).await.unwrap();
    assert_eq!(ids(&second), ["2049317", "C63QgKsL"]);
    assert!(second.iter().all(|r| r.deleted), "{second:?}");
    assert_eq!(
        second[0].payload, first[0].payload,
        "a 404 keeps the last known data"
    );
    let luna = first.iter().find(|r| r.external_id == "C63QgKsL").unwrap();
    assert_eq!(second[1].unit, luna.unit, "kept on its day");
    assert_eq!(second[1].payload["status"], "Request canceled");
    assert_eq!(second[1].payload["pets"], luna.payload["pets"]);
    commit(&store, &k.source, &second, range).await;

    // Already known as deleted: not re-checked again (no more detail mocks).
    let third = k.fetch(&batch(9, 15)).await.unwrap();
    assert!(third.is_empty(), "{third:?}");
    server.verify().await;
}

#[tokio::test]
async fn missing_field_is_bad_data_naming_the_url_and_the_field() {
    let server = MockServer::start().await;
    mount_login(&server, 1).await;
    mount_page(
        &server,
        "/schedule/days-7/2026/2/9",
        fixture!("week.html"),
        1,
    )
    .await;
    mount_page(&server, NIGHTS, fixture!("detail_missing_when.html"), 1).await;
    for (p, body) in [
        (BOARDING, fixture!("detail_boarding.html")),
        (DAYCARE, fixture!("detail_daycare.html")),
        (CANCELLED, fixture!("detail_cancelled.html")),
        (MARCH, fixture!("detail_stale_title.html")),
    ] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(html(body))
            .mount(&server)
            .await;
    }
    let k = kennel(&server, &new_store());
    let e = k.fetch(&batch(9, 9)).await.unwrap_err();
    assert!(matches!(e, SyncError::BadData { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("{}{NIGHTS}", server.uri())), "{msg}");
    assert!(
        msg.contains("missing check-in and check-out: no dates in the title"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_price_block_without_its_price_items_is_bad_data() {
    let server = MockServer::start().await;
    mount_login(&server, 1).await;
    mount_page(
        &server,
        "/schedule/days-7/2026/2/9",
        fixture!("week.html"),
        1,
    )
    .await;
    mount_page(&server, BOARDING, fixture!("detail_price_no_divs.html"), 1).await;
    for (p, body) in [
        (NIGHTS, fixture!("detail_nights.html")),
        (DAYCARE, fixture!("detail_daycare.html")),
        (CANCELLED, fixture!("detail_cancelled.html")),
        (MARCH, fixture!("detail_stale_title.html")),
    ] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(html(body))
            .mount(&server)
            .await;
    }
    let k = kennel(&server, &new_store());
    let e = k.fetch(&batch(9, 15)).await.unwrap_err();
    assert!(matches!(e, SyncError::BadData { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("{}{BOARDING}", server.uri())),
        "{msg}"
    );
    assert!(msg.contains("no price items"), "{msg}");
}

#[tokio::test]
async fn a_page_that_is_not_a_schedule_is_an_error_not_an_empty_week() {
    for (page, what) in [
        (fixture!("week_maintenance.html"), "usual structure"),
        (fixture!("week_cards_no_links.html"), "layout changed"),
    ] {
        let server = MockServer::start().await;
        mount_login(&server, 1).await;
        mount_page(&server, "/schedule/days-7/2026/2/9", page, 1).await;
        let k = kennel(&server, &new_store());
        let e = k.fetch(&batch(9, 9)).await.unwrap_err();
        assert!(matches!(e, SyncError::BadData { .. }), "{e:?}");
        assert!(e.to_string().contains("is not a schedule page"), "{e}");
        assert!(e.to_string().contains(what), "{e}");
        assert!(e.to_string().contains("/schedule/days-7/2026/2/9"), "{e}");
    }
}

#[tokio::test]
async fn truncated_pages_are_retried_then_fail() {
    let server = MockServer::start().await;
    mount_login(&server, 1).await;
    mount_page(
        &server,
        "/schedule/days-7/2026/2/9",
        fixture!("week_truncated.html"),
        3,
    )
    .await;
    let k = kennel(&server, &new_store());
    let e = k.fetch(&batch(9, 9)).await.unwrap_err();
    assert!(matches!(e, SyncError::Retryable { .. }), "{e:?}");
    assert!(e.to_string().contains("truncated"), "{e}");
    assert_eq!(k.ctx.meter().retries(), 2);
    server.verify().await;
}

#[tokio::test]
async fn server_errors_and_truncation_are_retried_until_the_page_is_whole() {
    let server = MockServer::start().await;
    mount_login(&server, 1).await;
    Mock::given(method("GET"))
        .and(path("/schedule/days-7/2026/2/9"))
        .respond_with(ResponseTemplate::new(503).set_body_string("<html><h1>503</h1></html>"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/schedule/days-7/2026/2/9"))
        .respond_with(html(fixture!("week_truncated.html")))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    mount_page(
        &server,
        "/schedule/days-7/2026/2/9",
        fixture!("week_empty.html"),
        1,
    )
    .await;
    let k = kennel(&server, &new_store());
    let records = k.fetch(&batch(9, 9)).await.unwrap();
    assert!(records.is_empty());
    assert_eq!(k.ctx.meter().retries(), 2);
    server.verify().await;
}

#[tokio::test]
async fn per_day_counts_come_from_the_list_for_the_boardings_the_store_holds() {
    let server = MockServer::start().await;
    mount_login(&server, 1).await;
    mount_page(
        &server,
        "/schedule/days-7/2026/2/9",
        fixture!("week.html"),
        4,
    )
    .await;
    mount_details(&server, 1).await;
    let store = new_store();
    let k = kennel(&server, &store);
    let range = Span::new(day(9), day(15)).unwrap();
    // Nothing stored: nothing counted (the list cannot tell a boarding).
    let counts = k
        .stack
        .all_day_counts(range, &k.ctx)
        .await
        .unwrap()
        .unwrap();
    assert!(counts.is_empty(), "{counts:?}");
    let records = k.fetch(&batch(9, 15)).await.unwrap();
    commit(&store, &k.source, &records, range).await;
    let counts = k
        .stack
        .all_day_counts(range, &k.ctx)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        counts,
        store.day_counts(k.source.stream(), range).await.unwrap()
    );
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [(day(9), 1), (day(13), 1)]
    );
    // A probe counts what the list dates within the week.
    let probe = k.stack.probe(range, &k.ctx).await.unwrap().unwrap();
    assert_eq!(probe.days, 7);
    assert!(probe.items >= 2, "{probe:?}");
    server.verify().await;
}

#[tokio::test]
async fn only_day_batches_in_the_kennel_time_zone() {
    let server = MockServer::start().await;
    let k = kennel(&server, &new_store());
    let keys = Batch::new(0, BatchSpan::Keys(Span::new(1, 2).unwrap()));
    assert_eq!(
        k.source
            .fetch_page(&keys, None, &k.ctx)
            .await
            .unwrap_err()
            .kind(),
        "invalid_input"
    );
    let other_tz = Batch::new(
        0,
        BatchSpan::Days {
            range: Span::single(day(9)),
            tz: chrono_tz::Europe::Berlin,
        },
    );
    let e = k
        .source
        .fetch_page(&other_tz, None, &k.ctx)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Europe/Berlin"), "{e}");
    let info = k.source.info();
    assert_eq!(
        info.stream.to_string(),
        format!("kennel:127.0.0.1:{}/boardings", server.address().port())
    );
    assert_eq!(
        (info.cost.per_window, info.cost.per_item, info.cost.login),
        (1.0, 1.0, 2)
    );
    assert!(info.supports_day_counts && info.supports_probe && !info.supports_delta);
    assert_eq!(info.session_max_age, Some(Duration::from_secs(330)));
    assert!(server.received_requests().await.unwrap().is_empty());
}
