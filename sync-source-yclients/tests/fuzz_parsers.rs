//! Bad JSON never panics, and a batch that fails leaves the store unchanged.
//!
//! - `record_from_json`, `client_from_json` and `parse_api_time` get
//!   arbitrary JSON, mutated real records and arbitrary text (proptest,
//!   bounded case counts): `Ok` or `Err`, never a panic.
//! - The whole HTTP path (envelope, paging, records) gets arbitrary bytes
//!   and mutated real bodies from a mock server: `Ok` or `Err`, never a
//!   panic.
//! - A batch whose answer is malformed fails alone: the store's records and
//!   checkpoint are exactly as before.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use sync_core::{
    Batch, BatchSpan, CheckpointStore, DayRange, Engine, ExistingQuery, FetchContext, RateLimiter,
    RetryPolicy, RunStatus, Secret, SourceExt, Span, Store, SyncOptions, Target,
};
use sync_sim::yclients::{SimLimits, YclientsSim, YclientsSimConfig};
use sync_source_yclients::model::{client_from_json, parse_api_time, record_from_json};
use sync_source_yclients::{sources_for_companies, YclientsConfig, YclientsRecords};
use sync_store_sqlite::SqliteStore;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const COMPANY: u64 = 101;
const CASES: u32 = 512;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,24}".prop_map(Value::String),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}:[0-9]{2})?".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_string()),
                    Just("date".to_string()),
                    Just("datetime".to_string()),
                    Just("deleted".to_string()),
                    Just("client".to_string()),
                    Just("services".to_string()),
                    "[a-z_]{1,10}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A real record as the API serves it.
fn sample_record() -> Value {
    json!({
        "id": 123456, "company_id": COMPANY, "staff_id": 7,
        "staff": {"id": 7, "name": "Анна"},
        "services": [{"id": 1, "title": "Стрижка", "cost": 1500.0, "amount": 1}],
        "client": {"id": 99, "name": "Иван", "phone": "+79990001122", "email": ""},
        "date": "2025-06-30 10:30:00", "datetime": "2025-06-30T10:30:00+03:00",
        "create_date": "2025-06-01T09:00:00+03:00", "seance_length": 3600,
        "attendance": 1, "visit_id": 555, "deleted": false,
        "last_change_date": "2025-06-02T09:00:00+03:00", "comment": "ok"
    })
}

/// A sample record with one field replaced by an arbitrary value (or
/// removed).
fn mutated_record() -> impl Strategy<Value = Value> {
    let fields = sample_record()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect::<Vec<_>>();
    (prop::sample::select(fields), prop::option::of(arb_json())).prop_map(|(field, value)| {
        let mut r = sample_record();
        let m = r.as_object_mut().unwrap();
        match value {
            Some(v) => m.insert(field, v),
            None => m.remove(&field),
        };
        r
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn record_parser_never_panics_on_arbitrary_json(v in arb_json()) {
        let _ = record_from_json(v.clone(), chrono_tz::Europe::Moscow);
        let _ = client_from_json(v);
    }

    #[test]
    fn record_parser_never_panics_on_mutated_records(v in mutated_record()) {
        let tz = chrono_tz::Asia::Kolkata;
        if let Ok(r) = record_from_json(v.clone(), tz) {
            // What it accepts is keyed by the id it read.
            prop_assert!(!r.external_id.is_empty());
            prop_assert_eq!(&r.payload, &v);
        }
        let _ = client_from_json(v);
    }

    #[test]
    fn time_parser_never_panics(text in ".{0,40}", tz in prop::sample::select(vec![
        chrono_tz::UTC, chrono_tz::Europe::Moscow, chrono_tz::America::Sao_Paulo,
        chrono_tz::Pacific::Kiritimati, chrono_tz::America::St_Johns,
    ])) {
        let _ = parse_api_time(&text, tz);
    }

    #[test]
    fn time_parser_never_panics_on_extreme_dates(
        y in -400_000i32..400_000, mo in 0u32..14, d in 0u32..33, h in 0u32..26,
    ) {
        let text = format!("{y:04}-{mo:02}-{d:02} {h:02}:30:00");
        let _ = parse_api_time(&text, chrono_tz::Europe::Moscow);
        let _ = parse_api_time(&format!("{y:04}-{mo:02}-{d:02}T{h:02}:30:00+14:00"), chrono_tz::UTC);
    }
}

// ------------------------------------------------------------ HTTP bodies

/// Answers every request with the body in the cell (page 1) or an empty
/// last page (later pages), so paging always ends.
#[derive(Clone, Default)]
struct Body(Arc<Mutex<(u16, Vec<u8>)>>);

impl Respond for Body {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let later_page = req.url.query_pairs().any(|(k, v)| k == "page" && v != "1");
        if later_page {
            return ResponseTemplate::new(200)
                .set_body_json(json!({"success": true, "data": [], "meta": {"total_count": 0}}));
        }
        let (status, body) = self.0.lock().unwrap().clone();
        ResponseTemplate::new(status).set_body_raw(body, "application/json")
    }
}

fn envelope(records: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "success": true, "data": records, "meta": {"total_count": records.len()}
    }))
    .unwrap()
}

fn config_for(base: &str) -> YclientsConfig {
    let mut c = YclientsConfig::new(Secret::new("partner-fuzz"), vec![COMPANY])
        .with_base_url(base)
        .unwrap()
        .with_user_token(Secret::new("user-fuzz"));
    c.request_timeout = Duration::from_secs(5);
    c
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).unwrap()
}

fn day_batch() -> Batch {
    Batch::new(
        0,
        BatchSpan::Days {
            range: Span::single(day()),
            tz: chrono_tz::Europe::Moscow,
        },
    )
}

/// A mutated body: cut, bytes overwritten, or a JSON fragment spliced in.
fn mutated_body(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (
        0..3u8,
        0..len,
        prop::collection::vec(any::<u8>(), 0..16),
        prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            "\"",
            ",",
            ":",
            "null",
            "-1e999",
            "\"\\ud800\"",
            "true",
            "{\"success\":false}",
            "\"total_count\":\"x\"",
        ]),
    )
        .prop_map(move |(kind, at, bytes, fragment)| {
            let mut b = base.clone();
            match kind {
                0 => b.truncate(at),
                1 => {
                    for (i, x) in bytes.iter().enumerate() {
                        if let Some(slot) = b.get_mut(at + i) {
                            *slot = *x;
                        }
                    }
                }
                _ => {
                    let tail = b.split_off(at);
                    b.extend_from_slice(fragment.as_bytes());
                    b.extend_from_slice(&tail);
                }
            }
            b
        })
}

/// The real records of one day, as the simulator serves them.
async fn real_records() -> Vec<Value> {
    let sim = YclientsSim::start(YclientsSimConfig {
        clients: 30,
        records: 300,
        days: 10,
        limits: SimLimits::UNLIMITED,
        ..YclientsSimConfig::default()
    })
    .await
    .unwrap();
    let day = sim.config().end_date.to_string();
    let records: Vec<Value> = sim
        .records(COMPANY)
        .into_iter()
        .filter(|r| r["date"].as_str().is_some_and(|d| d.starts_with(&day)))
        .collect();
    sim.shutdown().await;
    assert!(!records.is_empty());
    records
}

#[test]
fn http_path_never_panics_on_arbitrary_and_mutated_bodies() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cell = Body::default();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(cell.clone())
            .mount(&server)
            .await;
        server
    });
    let real = rt.block_on(real_records());
    let config = config_for(&format!("{}/api/v1", server.uri()));
    let outcomes = [std::cell::Cell::new(0u32), std::cell::Cell::new(0u32)];
    let check = |status: u16, body: Vec<u8>| {
        *cell.0.lock().unwrap() = (status, body);
        // The bare source: one attempt per request, every page followed. A
        // source per case: a 401 makes a source forget its user token.
        let source = sources_for_companies(&config).unwrap().remove(0).records;
        let ctx = FetchContext::new(YclientsRecords::stream_id(COMPANY));
        let got = rt.block_on(source.fetch_batch(&day_batch(), &ctx));
        let slot = &outcomes[usize::from(got.is_ok())];
        slot.set(slot.get() + 1);
        Ok(())
    };

    // The real body is read.
    check(200, envelope(&real)).unwrap();
    assert_eq!(outcomes[1].get(), 1, "the real body parses");

    // A runner per property: a runner counts its cases across calls.
    let runner = || {
        TestRunner::new(Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        })
    };
    runner()
        .run(&prop::collection::vec(any::<u8>(), 0..200), |bytes| {
            check(200, bytes)
        })
        .unwrap();
    runner()
        .run(&mutated_body(envelope(&real)), |bytes| check(200, bytes))
        .unwrap();
    runner()
        .run(
            &(
                prop::sample::select(vec![
                    200u16, 201, 204, 301, 400, 401, 403, 404, 422, 429, 500, 503,
                ]),
                arb_json(),
            ),
            |(status, v)| check(status, serde_json::to_vec(&v).unwrap()),
        )
        .unwrap();
    runner()
        .run(&prop::collection::vec(mutated_record(), 0..4), |records| {
            check(200, envelope(&records))
        })
        .unwrap();
    let (errors, accepted) = (outcomes[0].get(), outcomes[1].get());
    eprintln!(
        "yclients HTTP fuzz: {} bodies, {errors} errors, {accepted} accepted, no panic",
        errors + accepted
    );
    assert!(errors > 0, "malformed bodies are errors");
}

/// A server that answers every page with the same full page and a huge
/// `total_count` must be noticed within a bounded number of requests (no new
/// record on a page means the paging does not move), not paged a million
/// times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_that_never_moves_is_an_error_in_bounded_time() {
    let server = MockServer::start().await;
    let records: Vec<Value> = (0..5)
        .map(|i| {
            let mut r = sample_record();
            r["id"] = json!(1000 + i);
            r
        })
        .collect();
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"success": true, "data": records, "meta": {"total_count": 1_000_000_000u64}}),
        ))
        .mount(&server)
        .await;
    let mut config = config_for(&format!("{}/api/v1", server.uri()));
    config.records_page_size = 5;
    let source = sources_for_companies(&config).unwrap().remove(0).records;
    let ctx = FetchContext::new(YclientsRecords::stream_id(COMPANY));
    let got = tokio::time::timeout(
        Duration::from_secs(5),
        source.fetch_batch(&day_batch(), &ctx),
    )
    .await;
    let requests = server.received_requests().await.map_or(0, |r| r.len());
    match got {
        Ok(Err(e)) => eprintln!("stuck paging stopped after {requests} requests: {e}"),
        Ok(Ok(r)) => panic!("{} records accepted from a stuck server", r.len()),
        Err(_) => panic!("still paging after 5 s and {requests} requests"),
    }
}

// ------------------------------------------------- a failing batch, store

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_batch_leaves_the_store_unchanged() {
    let cell = Body::default();
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(cell.clone())
        .mount(&server)
        .await;
    let real = real_records().await;
    // The simulator's last day is 2025-06-30, the batch day.
    assert!(real[0]["date"].as_str().unwrap().starts_with("2025-06-30"));
    let source = sources_for_companies(&config_for(&format!("{}/api/v1", server.uri())))
        .unwrap()
        .remove(0)
        .records;
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    let engine = Engine::new(
        source,
        store.clone(),
        store.clone(),
        Arc::new(RateLimiter::unlimited()),
    );
    let target = Target::days(day(), day(), chrono_tz::Europe::Moscow).unwrap();
    let options = |force| {
        SyncOptions::builder()
            .batch_size(NonZeroU32::MIN)
            .force(force)
            .retry(RetryPolicy {
                max_retries: 1,
                initial_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(1),
                ..RetryPolicy::default()
            })
            .build()
    };
    *cell.0.lock().unwrap() = (200, envelope(&real));
    let report = engine.run(&target, &options(false)).await.unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{report:#?}");
    assert_eq!(report.counts.created as usize, real.len());

    let stream = YclientsRecords::stream_id(COMPANY);
    let snapshot = || async {
        let records = store
            .existing(
                &stream,
                &ExistingQuery::InDays {
                    entity: "record".into(),
                    range: DayRange::new(day() - chrono::Duration::days(5), day()).unwrap(),
                },
            )
            .await
            .unwrap();
        let mut rows: Vec<(String, String, Value, bool, String)> = records
            .into_iter()
            .map(|r| {
                (
                    r.external_id,
                    r.hash.to_hex(),
                    r.payload,
                    r.deleted,
                    r.last_changed.to_rfc3339(),
                )
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        (
            rows,
            format!("{:?}", store.coverage(&stream).await.unwrap()),
        )
    };
    let before = snapshot().await;

    // Changed data inside malformed answers: a body that is not JSON, a
    // record without a readable day, a list that is not a list, a body cut
    // short on every attempt.
    let mut changed = real.clone();
    changed[0]["comment"] = json!("changed, but the answer is broken");
    let mut no_day = changed.clone();
    no_day[1]["date"] = json!("someday");
    no_day[1]["datetime"] = json!(null);
    let cut = envelope(&changed);
    let broken: Vec<(&str, Vec<u8>)> = vec![
        ("html instead of JSON", b"<html>maintenance</html>".to_vec()),
        ("a record without a day", envelope(&no_day)),
        (
            "data is not a list",
            br#"{"success":true,"data":{"x":1},"meta":{}}"#.to_vec(),
        ),
        ("cut short", cut[..cut.len() / 2].to_vec()),
    ];
    for (what, body) in broken {
        *cell.0.lock().unwrap() = (200, body);
        let report = engine.run(&target, &options(true)).await.unwrap();
        assert_eq!(report.status, RunStatus::Partial, "{what}: {report:#?}");
        assert_eq!(report.batches_failed, 1, "{what}");
        assert_eq!(report.errors.len(), 1, "{what}: {:?}", report.errors);
        assert_eq!(snapshot().await, before, "{what}: the store changed");
    }
}
