//! The rest of a company against wiremock: the catalogue lists (exact
//! requests in both spellings, removals found by absence), the clients delta
//! through the deprecated `changed_after` list and its fallback when the
//! list is gone, and clients found gone by a full scan.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use sync_core::{
    Batch, BatchCommit, BatchSpan, Coverage, Engine, ExistingQuery, FetchContext, KeyRange,
    MemoryStore, RateLimiter, Record, RunId, RunProgress, Secret, Source, SourceExt, Store,
    SyncMode, SyncOptions, Target, Unit,
};
use sync_source_yclients::model::{CLIENT_FIELDS, VOLATILE_FIELDS};
use sync_source_yclients::{
    CatalogueKind, CataloguePaths, ClientsDelta, ClientsDeltaUsed, YclientsApi, YclientsCatalogue,
    YclientsClients, YclientsConfig,
};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const PARTNER: &str = "partner-SECRET-1";
const USER: &str = "user-SECRET-2";
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

fn q(pairs: &[(&str, &str)]) -> ExactQuery {
    ExactQuery(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// The raw `Authorization` value (wiremock's `header` splits on commas).
struct Auth(String);

impl Match for Auth {
    fn matches(&self, request: &Request) -> bool {
        request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some(self.0.as_str())
    }
}

fn user_auth() -> Auth {
    Auth(format!("Bearer {PARTNER}, User {USER}"))
}

fn config(server: &MockServer) -> YclientsConfig {
    YclientsConfig::new(Secret::new(PARTNER), vec![COMPANY])
        .with_base_url(&format!("{}/api/v1", server.uri()))
        .unwrap()
        .with_user_token(Secret::new(USER))
}

fn list(data: Vec<Value>) -> ResponseTemplate {
    let total = data.len();
    ResponseTemplate::new(200)
        .set_body_json(json!({"success": true, "data": data, "meta": {"total_count": total}}))
}

fn page(data: Vec<Value>, total: u64) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"success": true, "data": data, "meta": {"total_count": total}}))
}

fn catalogue(c: YclientsConfig, kind: CatalogueKind) -> YclientsCatalogue {
    let api = Arc::new(YclientsApi::new(&c).unwrap());
    YclientsCatalogue::new(api, Arc::new(c), COMPANY, kind)
}

fn clients(c: YclientsConfig) -> YclientsClients {
    let api = Arc::new(YclientsApi::new(&c).unwrap());
    YclientsClients::new(api, Arc::new(c), COMPANY)
}

fn service(id: i64, title: &str) -> Value {
    json!({"id": id, "title": title, "category_id": 9, "price_min": 1500, "price_max": 2000,
           "duration": 3600, "active": 1, "staff": [{"id": 5, "seance_length": 3600}],
           "weight": 0, "api_id": ""})
}

fn client(id: i64) -> Value {
    json!({"id": id, "name": format!("C{id}"), "phone": 79000000000i64 + id,
           "last_change_date": "2025-01-10T12:00:00+0300"})
}

/// Stores `records` for `source`'s stream, as an earlier run would have.
async fn seed(store: &MemoryStore, source: &dyn Source, records: Vec<Record>) {
    let stream = source.info().stream;
    let mut covered = Coverage::default();
    for r in &records {
        if let Unit::Key(k) = r.unit {
            covered.keys.insert_point(k);
        }
    }
    store
        .commit(BatchCommit {
            run: &RunId("seed".into()),
            stream: &stream,
            records: &records,
            covered: &covered,
            progress: RunProgress::default(),
            claim: None,
            finishes_batch: true,
        })
        .await
        .unwrap();
}

fn ctx_with(store: &Arc<MemoryStore>, source: &dyn Source) -> FetchContext {
    FetchContext::new(source.info().stream).with_store(store.clone())
}

#[tokio::test]
async fn catalogue_lists_are_one_request_each_in_both_spellings() {
    for (paths, kind, want) in [
        (
            CataloguePaths::Legacy,
            CatalogueKind::Services,
            "/api/v1/services/101",
        ),
        (
            CataloguePaths::Legacy,
            CatalogueKind::ServiceCategories,
            "/api/v1/service_categories/101",
        ),
        (
            CataloguePaths::Legacy,
            CatalogueKind::Staff,
            "/api/v1/staff/101",
        ),
        (
            CataloguePaths::Company,
            CatalogueKind::Services,
            "/api/v1/company/101/services",
        ),
        (
            CataloguePaths::Company,
            CatalogueKind::Staff,
            "/api/v1/company/101/staff",
        ),
    ] {
        let server = MockServer::start().await;
        let items = vec![
            json!({"id": 1, "title": "A", "name": "A", "fired": 0}),
            json!({"id": "2", "title": "B", "name": "B", "fired": 1, "hidden": 1}),
        ];
        Mock::given(method("GET"))
            .and(path(want))
            .and(user_auth())
            .and(q(&[]))
            .respond_with(list(items.clone()))
            .expect(2)
            .mount(&server)
            .await;
        let mut c = config(&server);
        c.catalogue_paths = paths;
        let source = catalogue(c, kind);
        let ctx = FetchContext::new(source.info().stream);
        let keys = source.all_keys(&ctx).await.unwrap();
        assert_eq!(keys, Some(vec![1, 2]), "{want}");
        let batch = Batch::new(0, BatchSpan::KeyList(vec![1, 2]));
        let got = source.fetch_batch(&batch, &ctx).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].entity, kind.entity());
        assert_eq!(
            (got[1].external_id.as_str(), got[1].unit),
            ("2", Unit::Key(2))
        );
        assert_eq!(got[1].payload, items[1], "stored as served");
        assert!(!got[1].deleted, "fired or hidden staff are kept, flagged");
        assert_eq!(ctx.meter().requests(), 2);
        let info = source.info();
        assert_eq!(
            info.stream.to_string(),
            format!("yclients:101/{}", kind.stream_name())
        );
        assert!(!info.supports_delta);
    }
}

#[tokio::test]
async fn catalogue_items_no_longer_listed_are_reported_deleted_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/services/101"))
        .respond_with(list(vec![
            service(1, "Cut"),
            service(3, "Colour, new title"),
        ]))
        .mount(&server)
        .await;
    let source = catalogue(config(&server), CatalogueKind::Services);
    let store = Arc::new(MemoryStore::new());
    let stored = |id: i64, title: &str| {
        Record::with_volatile(
            "service",
            id.to_string(),
            Unit::Key(id),
            service(id, title),
            VOLATILE_FIELDS,
        )
    };
    seed(
        &store,
        &source,
        vec![stored(1, "Cut"), stored(2, "Shave"), stored(3, "Colour")],
    )
    .await;

    // A forced run: the core puts the stored ids the list lost in the batch.
    let batch = Batch {
        recheck: true,
        ..Batch::new(0, BatchSpan::KeyList(vec![1, 2, 3]))
    };
    let ctx = ctx_with(&store, &source);
    let got = source.fetch_batch(&batch, &ctx).await.unwrap();
    assert_eq!(ctx.meter().requests(), 1, "the whole list, one request");
    let by_id = |id: &str| got.iter().find(|r| r.external_id == id).unwrap();
    assert!(!by_id("1").deleted && !by_id("3").deleted);
    let gone = by_id("2");
    assert!(gone.deleted);
    assert_eq!(gone.payload, service(2, "Shave"), "its stored copy");

    // Through the engine: 2 is deleted, 3 updated, 1 unchanged; once more,
    // everything unchanged.
    let engine = Engine::new(
        Arc::new(source),
        store.clone(),
        store.clone(),
        Arc::new(RateLimiter::unlimited()),
    );
    let target = Target::Keys(KeyRange {
        first: 1,
        last: i64::MAX,
    });
    let options = SyncOptions::builder().force(true).build();
    let report = engine.run(&target, &options).await.unwrap();
    let c = report.counts;
    assert_eq!(
        (c.created, c.updated, c.unchanged, c.deleted),
        (0, 1, 1, 1),
        "{c:?}"
    );
    assert_eq!(report.requests, 2, "the listing and the list");
    let again = engine.run(&target, &options).await.unwrap();
    assert_eq!(again.counts.unchanged, 3, "{:?}", again.counts);
    assert_eq!(
        again.counts.updated + again.counts.deleted + again.counts.created,
        0
    );
    let stored = store
        .existing(
            &YclientsCatalogue::stream_id(COMPANY, CatalogueKind::Services),
            &ExistingQuery::ByIds {
                entity: "service".into(),
                ids: vec!["2".into()],
            },
        )
        .await
        .unwrap();
    assert!(stored[0].deleted);
}

#[tokio::test]
async fn a_catalogue_item_without_an_id_fails_the_batch_not_the_listing() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(list(vec![service(1, "Cut"), json!({"title": "no id"})]))
        .mount(&server)
        .await;
    let source = catalogue(config(&server), CatalogueKind::Services);
    let ctx = FetchContext::new(source.info().stream);
    assert_eq!(source.all_keys(&ctx).await.unwrap(), Some(vec![1]));
    let err = source
        .fetch_batch(&Batch::new(0, BatchSpan::KeyList(vec![1])), &ctx)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "bad_data", "{err}");
    assert!(err.to_string().contains("service"), "{err}");
}

fn changes() -> Batch {
    Batch::new(
        0,
        BatchSpan::Changes {
            since: Utc.with_ymd_and_hms(2025, 1, 10, 12, 0, 0).unwrap(),
            until: Utc.with_ymd_and_hms(2025, 1, 11, 9, 0, 0).unwrap(),
        },
    )
}

#[tokio::test]
async fn clients_delta_asks_the_deprecated_list_in_local_time_minus_slack() {
    let server = MockServer::start().await;
    let mut c = config(&server);
    c.clients_page_size = 2;
    // 12:00 UTC is 15:00 in Moscow; minus the 3 h offset as slack.
    for (p, ids) in [("1", vec![5, 7]), ("2", vec![9])] {
        Mock::given(method("GET"))
            .and(path("/api/v1/clients/101"))
            .and(user_auth())
            .and(q(&[
                ("changed_after", "2025-01-10T12:00:00"),
                ("page", p),
                ("count", "2"),
            ]))
            .respond_with(page(
                ids.iter()
                    .map(|&i| {
                        let mut v = client(i);
                        v["not_a_search_field"] = json!(1);
                        v
                    })
                    .collect(),
                3,
            ))
            .expect(1)
            .mount(&server)
            .await;
    }
    let source = clients(c);
    let ctx = FetchContext::new(source.info().stream);
    let got = source.fetch_batch(&changes(), &ctx).await.unwrap();
    let ids: Vec<&str> = got.iter().map(|r| r.external_id.as_str()).collect();
    assert_eq!(ids, ["5", "7", "9"]);
    assert_eq!(got[0].payload, client(5), "kept to the search's fields");
    assert!(got[0]
        .payload
        .as_object()
        .unwrap()
        .keys()
        .all(|k| CLIENT_FIELDS.contains(&k.as_str())));
    assert_eq!(source.delta_used(), Some(ClientsDeltaUsed::ChangedAfter));
    assert_eq!(ctx.meter().requests(), 2);
}

#[tokio::test]
async fn clients_delta_scans_every_page_when_the_deprecated_list_is_gone() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/clients/101"))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"success": false, "data": null, "meta": {"message": "Not found"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let search = |p: u64| {
        json!({"page": p, "page_size": 2, "fields": CLIENT_FIELDS, "order_by": "id",
               "order_by_direction": "asc", "filters": []})
    };
    for (p, ids) in [(1, vec![5, 7]), (2, vec![9])] {
        Mock::given(method("POST"))
            .and(path("/api/v1/company/101/clients/search"))
            .and(body_json(search(p)))
            .respond_with(page(ids.into_iter().map(client).collect(), 3))
            .expect(1)
            .mount(&server)
            .await;
    }
    let mut c = config(&server);
    c.clients_page_size = 2;
    let source = clients(c);
    let ctx = FetchContext::new(source.info().stream);
    let got = source.fetch_batch(&changes(), &ctx).await.unwrap();
    let mut ids: Vec<&str> = got.iter().map(|r| r.external_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["5", "7", "9"]);
    assert_eq!(source.delta_used(), Some(ClientsDeltaUsed::ScanListGone));
    assert!(source.delta_used().unwrap().to_string().contains("404"));
    assert_eq!(ctx.meter().requests(), 3, "the 404, then two pages");

    // Configured to rescan: the list is not asked at all.
    let mut c = config(&server);
    c.clients_page_size = 2;
    c.clients_delta = ClientsDelta::Rescan;
    server.reset().await;
    for (p, ids) in [(1, vec![5, 7]), (2, vec![9])] {
        Mock::given(method("POST"))
            .and(body_json(search(p)))
            .respond_with(page(ids.into_iter().map(client).collect(), 3))
            .expect(1)
            .mount(&server)
            .await;
    }
    let source = clients(c);
    assert_eq!(
        source
            .fetch_batch(&changes(), &FetchContext::new(source.info().stream))
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(source.delta_used(), Some(ClientsDeltaUsed::Rescan));
}

/// A walk over pages of two with `pages` (ids, total_count) answers, for a
/// batch of `batch` ids all stored before: the ids reported gone.
async fn gone_after_walk(pages: Vec<(Vec<i64>, u64)>, batch: Vec<i64>) -> Vec<i64> {
    let server = MockServer::start().await;
    for (i, (ids, total)) in pages.into_iter().enumerate() {
        Mock::given(method("POST"))
            .and(body_json(
                json!({"page": i + 1, "page_size": 2, "fields": CLIENT_FIELDS,
                "order_by": "id", "order_by_direction": "asc", "filters": []}),
            ))
            .respond_with(page(ids.into_iter().map(client).collect(), total))
            .mount(&server)
            .await;
    }
    let mut c = config(&server);
    c.clients_page_size = 2;
    let source = clients(c);
    let store = Arc::new(MemoryStore::new());
    let stored = batch
        .iter()
        .map(|&id| {
            Record::with_volatile(
                "client",
                id.to_string(),
                Unit::Key(id),
                client(id),
                VOLATILE_FIELDS,
            )
        })
        .collect();
    seed(&store, &source, stored).await;
    let batch = Batch {
        recheck: true,
        ..Batch::new(0, BatchSpan::KeyList(batch))
    };
    let got = source
        .fetch_batch(&batch, &ctx_with(&store, &source))
        .await
        .unwrap();
    let mut gone: Vec<i64> = got
        .iter()
        .filter(|r| r.deleted)
        .map(|r| r.external_id.parse().unwrap())
        .collect();
    gone.sort_unstable();
    let live = got.iter().filter(|r| !r.deleted).count();
    assert_eq!(live + gone.len(), got.len());
    gone
}

#[tokio::test]
async fn a_full_scan_reports_clients_gone_only_where_the_pages_prove_it() {
    // Within a page, below page 1 and past the end of the list: gone.
    assert_eq!(
        gone_after_walk(
            vec![(vec![10, 30], 3), (vec![40], 3)],
            vec![5, 10, 20, 30, 40, 50]
        )
        .await,
        vec![5, 20, 50]
    );
    // Between two pages while the total stays: gone.
    assert_eq!(
        gone_after_walk(vec![(vec![10, 20], 4), (vec![40, 50], 4)], vec![20, 30, 40]).await,
        vec![30]
    );
    // Between two pages whose totals differ, a client may have moved to the
    // page already read: not reported (the next scan decides).
    assert_eq!(
        gone_after_walk(vec![(vec![10, 20], 5), (vec![40, 50], 4)], vec![20, 30, 40]).await,
        Vec::<i64>::new()
    );
    // An empty list: every stored client of the batch is gone.
    assert_eq!(
        gone_after_walk(vec![(vec![], 0)], vec![1, 2]).await,
        vec![1, 2]
    );
}

#[tokio::test]
async fn a_clients_full_scan_through_the_engine_marks_deleted_clients() {
    let server = MockServer::start().await;
    let mount = |ids: Vec<i64>| {
        let server = &server;
        async move {
            server.reset().await;
            let n = ids.len() as u64;
            Mock::given(method("POST"))
                .and(path("/api/v1/company/101/clients/search"))
                .and(body_json(
                    json!({"page": 1, "page_size": 200, "fields": ["id"],
                    "order_by": "id", "order_by_direction": "asc", "filters": []}),
                ))
                .respond_with(page(ids.iter().map(|&i| json!({"id": i})).collect(), n))
                .mount(server)
                .await;
            Mock::given(method("POST"))
                .and(path("/api/v1/company/101/clients/search"))
                .and(body_json(
                    json!({"page": 1, "page_size": 200, "fields": CLIENT_FIELDS,
                    "order_by": "id", "order_by_direction": "asc", "filters": []}),
                ))
                .respond_with(page(ids.into_iter().map(client).collect(), n))
                .mount(server)
                .await;
        }
    };
    mount(vec![1, 2, 3]).await;
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::new(
        Arc::new(clients(config(&server))),
        store.clone(),
        store.clone(),
        Arc::new(RateLimiter::unlimited()),
    );
    let target = Target::Keys(KeyRange {
        first: 1,
        last: i64::MAX,
    });
    let full = SyncOptions::builder().mode(SyncMode::Full);
    let first = engine.run(&target, &full.clone().build()).await.unwrap();
    assert_eq!(first.counts.created, 3);
    mount(vec![1, 3, 4]).await;
    let scan = engine
        .run(&target, &full.force(true).build())
        .await
        .unwrap();
    let c = scan.counts;
    assert_eq!(
        (c.created, c.updated, c.unchanged, c.deleted),
        (1, 0, 2, 1),
        "{c:?}"
    );
    assert_eq!(scan.requests, 2, "the listing and one page");
}
