//! Exact request shapes and error handling, against wiremock.
//!
//! The sources make one attempt of one request per call. Where a test is
//! about retries, logging in again or pacing, it calls the source through
//! the core's wrappers, stacked as the engine stacks them
//! (`Authenticated<Retrying<Paced<source>>>`): the behaviour is the same as
//! in a run, and the counters are what the server saw.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};
use sync_core::{
    Authenticated, Batch, BatchSpan, DayRange, Engine, FetchContext, MemoryStore, Paced,
    RateLimiter, RateLimits, RetryPolicy, Retrying, Secret, SlowDown, Source, SourceExt, SyncError,
    SyncOptions, Target, Unit,
};
use sync_source_yclients::{YclientsApi, YclientsClients, YclientsConfig, YclientsRecords};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const PARTNER: &str = "partner-SECRET-1";
const USER: &str = "user-SECRET-2";
const PASSWORD: &str = "password-SECRET-3";
const COMPANY: u64 = 101;

/// Matches when the query holds exactly these pairs (any order).
struct ExactQuery(Vec<(String, String)>);

impl Match for ExactQuery {
    fn matches(&self, request: &Request) -> bool {
        let mut got: Vec<(String, String)> = request
            .url
            .query_pairs()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let mut want = self.0.clone();
        got.sort();
        want.sort();
        got == want
    }
}

/// Matches a header's raw value exactly (wiremock's `header` splits on commas,
/// and the Authorization value holds one).
struct RawHeader(&'static str, String);

impl Match for RawHeader {
    fn matches(&self, request: &Request) -> bool {
        request.headers.get(self.0).and_then(|v| v.to_str().ok()) == Some(self.1.as_str())
    }
}

fn auth_is(value: impl Into<String>) -> RawHeader {
    RawHeader("authorization", value.into())
}

fn q(pairs: &[(&str, &str)]) -> ExactQuery {
    ExactQuery(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_rate_limited_retries: 3,
        jitter: false,
        ..RetryPolicy::default()
    }
}

fn config(server: &MockServer) -> YclientsConfig {
    YclientsConfig::new(Secret::new(PARTNER), vec![COMPANY])
        .with_base_url(&format!("{}/api/v1", server.uri()))
        .unwrap()
        .with_user_token(Secret::new(USER))
}

/// A context for one bare call: no budget, a fresh meter.
fn ctx() -> FetchContext {
    FetchContext::new(YclientsRecords::stream_id(COMPANY))
}

fn records_source(c: YclientsConfig) -> YclientsRecords {
    let api = Arc::new(YclientsApi::new(&c).unwrap());
    YclientsRecords::new(api, Arc::new(c), COMPANY)
}

/// The source as the engine calls it: paced by `budget`, retried with
/// [`fast_retry`], its session renewed.
type Stack = Authenticated<Retrying<Paced<Arc<dyn Source>>>>;

fn stack(source: impl Source + 'static, budget: Arc<RateLimiter>) -> Stack {
    let source: Arc<dyn Source> = Arc::new(source);
    Authenticated::new(Retrying::new(Paced::new(source, budget), fast_retry()))
}

fn records_stack(c: YclientsConfig) -> Stack {
    stack(records_source(c), Arc::new(RateLimiter::unlimited()))
}

fn clients_source(c: YclientsConfig) -> YclientsClients {
    let api = Arc::new(YclientsApi::new(&c).unwrap());
    YclientsClients::new(api, Arc::new(c), COMPANY)
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn days_batch(first: &str, last: &str) -> Batch {
    Batch::new(
        0,
        BatchSpan::Days {
            range: DayRange::new(day(first), day(last)).unwrap(),
            tz: chrono_tz::Europe::Moscow,
        },
    )
}

fn record(id: i64, date: &str) -> Value {
    json!({
        "id": id, "company_id": COMPANY, "staff_id": 5, "staff": {"id": 5, "name": "A"},
        "services": [{"id": 1, "title": "Cut", "cost": 1500, "amount": 1}],
        "client": {"id": 77, "name": "Ann", "phone": "+79000000000", "email": ""},
        "date": format!("{date} 10:00:00"), "datetime": format!("{date}T10:00:00+03:00"),
        "create_date": "2024-01-01T10:00:00+0300", "seance_length": 3600, "attendance": 1,
        "visit_id": id + 1000, "deleted": false, "last_change_date": "2024-01-02T10:00:00+0300",
        "comment": ""
    })
}

fn page(data: Vec<Value>, total: u64, page: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(
        json!({"success": true, "data": data, "meta": {"page": page, "total_count": total}}),
    )
}

fn user_auth() -> String {
    format!("Bearer {PARTNER}, User {USER}")
}

#[tokio::test]
async fn records_window_pages_until_total_count_with_exact_requests() {
    let server = MockServer::start().await;
    let mut c = config(&server);
    c.records_page_size = 2;
    for (p, ids) in [(1, vec![1, 2]), (2, vec![3, 4]), (3, vec![5])] {
        let p_text = p.to_string();
        Mock::given(method("GET"))
            .and(path(format!("/api/v1/records/{COMPANY}")))
            .and(header("Accept", "application/vnd.yclients.v2+json"))
            .and(header("Content-Type", "application/json"))
            .and(auth_is(user_auth()))
            .and(q(&[
                ("start_date", "2024-03-01"),
                ("end_date", "2024-03-02"),
                ("with_deleted", "1"),
                ("page", &p_text),
                ("count", "2"),
            ]))
            .respond_with(page(
                ids.iter().map(|&i| record(i, "2024-03-01")).collect(),
                5,
                p,
            ))
            .expect(1)
            .mount(&server)
            .await;
    }
    let source = records_source(c);
    let ctx = ctx();
    let batch = days_batch("2024-03-01", "2024-03-02");
    // Page 1 gives the total and names every further page at once (the
    // engine fetches them in parallel).
    let first = source.fetch_page(&batch, None, &ctx).await.unwrap();
    assert_eq!(first.total, Some(5));
    assert_eq!(first.more.len(), 2);
    assert_eq!(first.records.len(), 2);
    let mut got = first.records;
    for cursor in &first.more {
        let page = source.fetch_page(&batch, Some(cursor), &ctx).await.unwrap();
        assert!(page.more.is_empty(), "later pages add no requests");
        got.extend(page.records);
    }
    let ids: Vec<&str> = got.iter().map(|r| r.external_id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5"]);
    assert_eq!(got[0].unit, Unit::Day(day("2024-03-01")));
    assert_eq!(
        got[0].occurred_at.unwrap(),
        Utc.with_ymd_and_hms(2024, 3, 1, 7, 0, 0).unwrap()
    );
    assert_eq!(got[0].payload, record(1, "2024-03-01"));
    assert_eq!(ctx.meter().requests(), 3);
    let info = source.info();
    assert_eq!(info.stream.to_string(), "yclients:101/records");
    assert_eq!(info.limits, RateLimits::new(Some(5), Some(200)));
}

#[tokio::test]
async fn login_with_password_then_uses_the_user_token() {
    let server = MockServer::start().await;
    let mut c = config(&server);
    c.user_token = None;
    let c = c.with_login("owner@example.test", Secret::new(PASSWORD));
    Mock::given(method("POST"))
        .and(path("/api/v1/auth"))
        .and(auth_is(format!("Bearer {PARTNER}")))
        .and(header("Accept", "application/vnd.yclients.v2+json"))
        .and(body_json(
            json!({"login": "owner@example.test", "password": PASSWORD}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"success": true, "data": {"user_token": "fresh-token"}, "meta": []}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/records/{COMPANY}")))
        .and(auth_is(format!("Bearer {PARTNER}, User fresh-token")))
        .respond_with(page(vec![record(1, "2024-03-01")], 1, 1))
        .expect(1)
        .mount(&server)
        .await;
    let source = records_source(c);
    let ctx = ctx();
    source.login(&ctx).await.unwrap();
    source.login(&ctx).await.unwrap(); // already logged in: no request
    assert_eq!(ctx.meter().requests(), 1);
    assert_eq!(
        source
            .fetch_batch(&days_batch("2024-03-01", "2024-03-01"), &ctx)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(source.info().cost.login, 1, "a login is one request");
}

#[tokio::test]
async fn a_401_logs_in_once_and_retries_a_second_401_stops() {
    let server = MockServer::start().await;
    let c = config(&server).with_login("owner@example.test", Secret::new(PASSWORD));
    let records = format!("/api/v1/records/{COMPANY}");
    Mock::given(method("GET"))
        .and(path(records.as_str()))
        .and(auth_is(user_auth()))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"success": false, "data": null, "meta": {"message": "token expired"}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/auth"))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"success": true, "data": {"user_token": "second-token"}, "meta": []}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(records.as_str()))
        .and(auth_is(format!("Bearer {PARTNER}, User second-token")))
        .respond_with(page(vec![record(1, "2024-03-01")], 1, 1))
        .expect(1)
        .mount(&server)
        .await;
    let source = records_stack(c.clone());
    let first = ctx();
    assert_eq!(
        source
            .fetch_batch(&days_batch("2024-03-01", "2024-03-01"), &first)
            .await
            .unwrap()
            .len(),
        1
    );
    // The rejected request, the login, the request again.
    assert_eq!(first.meter().requests(), 3);
    assert_eq!(
        source.cache().logins(),
        2,
        "the first (token given) and the renewal"
    );

    // Now the new token is rejected too: one re-login, then stop.
    let server = MockServer::start().await;
    let c2 = YclientsConfig {
        base_url: format!("{}/api/v1", server.uri()).parse().unwrap(),
        ..c
    };
    Mock::given(method("GET"))
        .and(path(records.as_str()))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"success": false, "data": null, "meta": {"message": "no"}})),
        )
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/auth"))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"success": true, "data": {"user_token": "third-token"}, "meta": []}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = records_stack(c2)
        .fetch_batch(&days_batch("2024-03-01", "2024-03-01"), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Unauthenticated { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    for secret in [PARTNER, USER, PASSWORD, "third-token"] {
        assert!(!text.contains(secret), "{text}");
    }
}

#[tokio::test]
async fn a_401_without_login_is_unauthenticated_and_a_wrong_password_too() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"success": false, "data": null, "meta": {"message": "bad token"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    // The bare source says the session is gone; through the session
    // wrapper, a source that cannot log in stops with what to set and what
    // the server said.
    let err = records_source(config(&server))
        .fetch_page(&days_batch("2024-03-01", "2024-03-01"), None, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::AuthExpired { .. }), "{err:?}");
    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"success": false, "data": null, "meta": {"message": "bad token"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = records_stack(config(&server))
        .fetch_batch(&days_batch("2024-03-01", "2024-03-01"), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Unauthenticated { .. }), "{err:?}");
    assert!(
        err.to_string().contains("YCLIENTS_LOGIN") && err.to_string().contains("bad token"),
        "{err}"
    );

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/auth"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"success": false, "data": null, "meta": {"message": "Incorrect login or password"}})))
        .expect(1)
        .mount(&server)
        .await;
    let mut c = config(&server).with_login("me", Secret::new(PASSWORD));
    c.user_token = None;
    let err = records_source(c).login(&ctx()).await.unwrap_err();
    assert!(matches!(err, SyncError::Unauthenticated { .. }));
    assert!(err.to_string().contains("Incorrect login"), "{err}");
    assert!(!format!("{err:?}").contains(PASSWORD));
}

#[tokio::test]
async fn licence_and_access_errors_are_unauthenticated_with_the_message() {
    for (status, message) in [(402, "Licence expired"), (403, "No access to the company")] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(status).set_body_json(
                json!({"success": false, "data": null, "meta": {"message": message}}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        // Through the wrappers: not retried, no login (expect(1)).
        let err = records_stack(config(&server))
            .fetch_batch(&days_batch("2024-03-01", "2024-03-01"), &ctx())
            .await
            .unwrap_err();
        assert!(matches!(err, SyncError::Unauthenticated { .. }), "{err:?}");
        assert!(err.to_string().contains(message));
    }
}

#[tokio::test]
async fn a_429_slows_the_shared_limiter_with_and_without_retry_after() {
    for retry_after in [Some("1"), None] {
        let server = MockServer::start().await;
        let mut tpl = ResponseTemplate::new(429).set_body_json(
            json!({"success": false, "data": null, "meta": {"message": "Too many"}}),
        );
        if let Some(v) = retry_after {
            tpl = tpl.insert_header("Retry-After", v);
        }
        Mock::given(method("GET"))
            .respond_with(tpl)
            .up_to_n_times(1)
            .with_priority(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(page(vec![record(1, "2024-03-01")], 1, 1))
            .with_priority(2)
            .expect(1)
            .mount(&server)
            .await;
        let slow = SlowDown {
            initial_backoff: Duration::from_millis(50),
            ..SlowDown::default()
        };
        let limiter = Arc::new(RateLimiter::with_slow_down(RateLimits::UNLIMITED, slow));
        let ctx = ctx();
        let started = std::time::Instant::now();
        let got = stack(records_source(config(&server)), limiter.clone())
            .fetch_batch(&days_batch("2024-03-01", "2024-03-01"), &ctx)
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(ctx.meter().rate_limited(), 1);
        assert_eq!(
            limiter.stats().rate_limited,
            1,
            "the shared budget was told"
        );
        assert_eq!(limiter.stats().granted, 2);
        assert_eq!(ctx.meter().requests(), 2);
        if retry_after.is_some() {
            assert!(
                started.elapsed() >= Duration::from_secs(1),
                "Retry-After is honoured"
            );
        }
    }
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_as_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(page(vec![record(1, "2024-03-01")], 1, 1))
        .with_priority(2)
        .mount(&server)
        .await;
    let ctx = ctx();
    assert_eq!(
        records_stack(config(&server))
            .fetch_batch(&days_batch("2024-03-01", "2024-03-01"), &ctx)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(ctx.meter().retries(), 1);
    assert_eq!(ctx.meter().requests(), 2);

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(3)
        .mount(&server)
        .await;
    // One attempt and two retries (fast_retry), then the error as it was.
    let err = records_stack(config(&server))
        .fetch_batch(&days_batch("2024-03-01", "2024-03-01"), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Retryable { .. }), "{err:?}");
    assert!(err.to_string().contains("500"));
}

#[tokio::test]
async fn validation_errors_are_bad_data_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"success": false, "data": null,
            "meta": {"message": "Validation error", "errors": {"count": ["must be between 1 and 200"]}}})))
        .expect(1)
        .mount(&server)
        .await;
    let err = records_stack(config(&server))
        .fetch_batch(&days_batch("2024-03-01", "2024-03-01"), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::BadData { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("Validation error") && text.contains("must be between 1 and 200"),
        "{text}"
    );
    assert!(
        text.contains("GET /records/101?start_date=2024-03-01"),
        "{text}"
    );
}

#[tokio::test]
async fn malformed_json_is_bad_data_and_truncated_json_is_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"))
        .expect(1)
        .mount(&server)
        .await;
    let err = records_stack(config(&server))
        .fetch_batch(&days_batch("2024-03-01", "2024-03-01"), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::BadData { .. }), "{err:?}");

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"success": true, "data": [{"id": 1, "date": "2024-03"#),
        )
        .expect(3)
        .mount(&server)
        .await;
    let err = records_stack(config(&server))
        .fetch_batch(&days_batch("2024-03-01", "2024-03-01"), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Retryable { .. }), "{err:?}");
    assert!(err.to_string().contains("cut short"));

    // Wrong shapes are errors, never panics.
    for body in [
        json!({"success": true, "data": {"x": 1}, "meta": {}}),
        json!({"success": true, "data": [{"date": "2024-03-01 10:00:00"}]}),
        json!([1, 2]),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
        let err = records_source(config(&server))
            .fetch_batch(&days_batch("2024-03-01", "2024-03-01"), &ctx())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "bad_data", "{err}");
    }
}

#[tokio::test]
async fn missing_optional_fields_are_fine() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"success": true, "data": [
            {"id": 1, "date": "2024-03-01 09:00:00"},
            {"id": "2", "datetime": "2024-03-01T23:30:00+03:00", "deleted": 1, "client": []}
        ], "meta": {"total_count": 2}})),
        )
        .mount(&server)
        .await;
    let got = records_source(config(&server))
        .fetch_batch(&days_batch("2024-03-01", "2024-03-01"), &ctx())
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert!(got[1].deleted);
    assert_eq!(got[1].unit, Unit::Day(day("2024-03-01")));
}

#[tokio::test]
async fn delta_asks_changed_after_in_local_time_minus_slack_and_rechecks_recent_days() {
    let server = MockServer::start().await;
    let mut c = config(&server);
    c.recheck_days = 2;
    c.records_page_size = 200;
    // since 12:00 UTC = 15:00 MSK; minus the 3 h offset as slack = 12:00 MSK.
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/records/{COMPANY}")))
        .and(q(&[
            ("changed_after", "2025-01-10T12:00:00"),
            ("with_deleted", "1"),
            ("page", "1"),
            ("count", "200"),
        ]))
        .respond_with(page(
            vec![record(1, "2024-06-01"), record(2, "2025-01-11")],
            2,
            1,
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/records/{COMPANY}")))
        .and(q(&[
            ("start_date", "2025-01-10"),
            ("end_date", "2025-01-11"),
            ("with_deleted", "1"),
            ("page", "1"),
            ("count", "200"),
        ]))
        .respond_with(page(
            vec![record(2, "2025-01-11"), record(3, "2025-01-10")],
            2,
            1,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let batch = Batch::new(
        0,
        BatchSpan::Changes {
            since: Utc.with_ymd_and_hms(2025, 1, 10, 12, 0, 0).unwrap(),
            until: Utc.with_ymd_and_hms(2025, 1, 11, 9, 0, 0).unwrap(),
        },
    );
    let ctx = ctx();
    let got = records_source(c).fetch_batch(&batch, &ctx).await.unwrap();
    assert_eq!(ctx.meter().requests(), 2, "the changes and the recent days");
    // Record 2 is in both lists: a commit stores it once (the last version
    // wins, see sync_core::commit::dedupe).
    let unique = sync_core::commit::dedupe(&got);
    let mut ids: Vec<&str> = unique.iter().map(|r| r.external_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["1", "2", "3"], "each record once");
}

#[tokio::test]
async fn day_counts_leave_out_deleted_records() {
    let server = MockServer::start().await;
    let mut deleted = record(3, "2024-03-02");
    deleted["deleted"] = json!(true);
    Mock::given(method("GET"))
        .and(q(&[
            ("start_date", "2024-03-01"),
            ("end_date", "2024-03-03"),
            ("page", "1"),
            ("count", "200"),
        ]))
        .respond_with(page(
            vec![
                record(1, "2024-03-01"),
                record(2, "2024-03-01"),
                deleted,
                record(4, "2024-03-03"),
            ],
            4,
            1,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let range = DayRange::new(day("2024-03-01"), day("2024-03-03")).unwrap();
    let counts = records_source(config(&server))
        .all_day_counts(range, &ctx())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        vec![(day("2024-03-01"), 2), (day("2024-03-03"), 1)]
    );
}

fn clients_search(page_no: u64, page_size: u64, fields: Value) -> Value {
    json!({"page": page_no, "page_size": page_size, "fields": fields, "order_by": "id", "order_by_direction": "asc", "filters": []})
}

fn client(id: i64) -> Value {
    json!({"id": id, "name": format!("C{id}"), "phone": 79000000000i64 + id, "birth_date": 0, "last_change_date": "2024-01-01T10:00:00+0300"})
}

#[tokio::test]
async fn clients_listing_then_id_batches_start_at_the_right_page() {
    let server = MockServer::start().await;
    let mut c = config(&server);
    c.clients_page_size = 2;
    let search = format!("/api/v1/company/{COMPANY}/clients/search");
    for (p, ids) in [(1u64, vec![10, 20]), (2, vec![30, 40]), (3, vec![50])] {
        let listing: Vec<Value> = ids.iter().map(|i| json!({"id": i})).collect();
        Mock::given(method("POST"))
            .and(path(search.as_str()))
            .and(auth_is(user_auth()))
            .and(body_json(clients_search(p, 2, json!(["id"]))))
            .respond_with(page(listing, 5, p))
            .expect(1)
            .mount(&server)
            .await;
    }
    let full_fields = json!(sync_source_yclients::model::CLIENT_FIELDS);
    Mock::given(method("POST"))
        .and(path(search.as_str()))
        .and(body_json(clients_search(2, 2, full_fields.clone())))
        .respond_with(page(vec![client(30), client(40)], 5, 2))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(search.as_str()))
        .and(body_json(clients_search(1, 2, full_fields)))
        .respond_with(page(vec![client(10), client(20)], 5, 1))
        .expect(0)
        .mount(&server)
        .await;
    let source = clients_source(c);
    let ctx = ctx();
    let keys = source.all_keys(&ctx).await.unwrap();
    assert_eq!(keys, Some(vec![10, 20, 30, 40, 50]));
    let batch = Batch::new(0, BatchSpan::KeyList(vec![30, 40]));
    let got = source.fetch_batch(&batch, &ctx).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].unit, Unit::Key(30));
    assert_eq!(got[0].entity, "client");
    assert_eq!(got[0].payload, client(30));
    assert_eq!(ctx.meter().requests(), 4);
}

#[tokio::test]
async fn the_planner_prices_date_windows_from_a_probe() {
    // Per-client visit history is never cheaper than date windows (at
    // least one request per client and per 25 visits, against one per 200
    // records), so records are only fetched by date window; the planner
    // prices those from one count of the range.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(q(&[
            ("start_date", "2023-07-01"),
            ("end_date", "2025-06-29"),
            ("with_deleted", "1"),
            ("page", "1"),
            ("count", "1"),
        ]))
        .respond_with(page(vec![record(1, "2024-03-01")], 20_000, 1))
        .expect(2)
        .mount(&server)
        .await;
    let target = Target::days(
        day("2023-07-01"),
        day("2025-06-29"),
        chrono_tz::Europe::Moscow,
    )
    .unwrap();
    let plan_of = |c: YclientsConfig| {
        let target = target.clone();
        async move {
            let store = Arc::new(MemoryStore::new());
            Engine::new(
                Arc::new(records_source(c)),
                store.clone(),
                store,
                Arc::new(RateLimiter::unlimited()),
            )
            .plan(&target, &SyncOptions::default())
            .await
            .unwrap()
        }
    };
    let plan = plan_of(config(&server)).await;
    assert_eq!(plan.records, Some(20_000));
    assert_eq!(plan.requests_to_plan, 1, "one count of the whole range");
    // 20,000 records at 200 a page: 100 pages, windows filling whole pages
    // (a few not quite full), and the count again when the run sizes its
    // windows.
    assert!(
        (101..=115).contains(&plan.requests),
        "{} requests for 100 pages",
        plan.requests
    );
    assert_eq!(plan.units, 730);

    // Pages of 20 records: ten times the requests.
    let mut c = config(&server);
    c.records_page_size = 20;
    let small = plan_of(c).await;
    assert!(
        small.requests >= 1000 && small.requests < 1150,
        "{} requests for 1,000 pages",
        small.requests
    );
}

#[tokio::test]
async fn secrets_stay_out_of_debug_and_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"success": false, "data": null,
            "meta": {"message": format!("bad header Bearer {PARTNER}, User {USER}")}})),
        )
        .mount(&server)
        .await;
    let c = config(&server).with_login("me", Secret::new(PASSWORD));
    let source = records_source(c.clone());
    let err = source
        .fetch_batch(&days_batch("2024-03-01", "2024-03-01"), &ctx())
        .await
        .unwrap_err();
    let everything = format!(
        "{err} {err:?} {c:?} {source:?} {:?}",
        clients_source(c.clone())
    );
    for secret in [PARTNER, USER, PASSWORD] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked: {everything}"
        );
    }
    assert!(err.to_string().contains("bad header Bearer ***"), "{err}");
}
