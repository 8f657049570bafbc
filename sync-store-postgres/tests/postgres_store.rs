//! Postgres store tests against a real server: conformance, bulk commit
//! semantics, typed views, migrations, leases and transaction atomicity.
//!
//! They need DATABASE_URL (a server where they may CREATE DATABASE); run
//! them with `scripts/with-postgres.sh cargo test -p sync-store-postgres`.
//! Each test works in a fresh database of its own.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};
use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};
use sync_core::{
    BatchCommit, ChangeKind, CheckpointStore, Coverage, ExistingQuery, Record, RecordCounts, RunId,
    RunReport, RunStatus, Span, Store, StreamId, SyncError, SyncMode, Unit,
};
use sync_store_postgres::{PostgresConfig, PostgresStore, ScratchDatabase};

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// Numeric columns are read as text (`::text`) to avoid a decimal crate.
type Numeric = Option<String>;

/// A database of its own, dropped by [`TestDb::drop_db`].
struct TestDb {
    scratch: ScratchDatabase,
    url: String,
}

impl TestDb {
    async fn new() -> Self {
        let scratch = ScratchDatabase::create("sync_test")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let url = scratch.url().to_string();
        Self { scratch, url }
    }

    async fn store(&self) -> PostgresStore {
        PostgresStore::connect(&self.url).await.unwrap()
    }

    async fn drop_db(self) {
        self.scratch.drop_db().await.unwrap();
    }
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn days(first: &str, last: &str) -> Coverage {
    let mut c = Coverage::default();
    c.days.insert(Span::new(day(first), day(last)).unwrap());
    c
}

fn counts(created: u64, updated: u64, unchanged: u64, deleted: u64) -> RecordCounts {
    RecordCounts {
        created,
        updated,
        unchanged,
        deleted,
    }
}

fn report(stream: &StreamId, id: &str) -> RunReport {
    RunReport::start(
        RunId(id.into()),
        stream.clone(),
        SyncMode::Full,
        "test",
        Utc::now(),
    )
}

async fn begin(store: &PostgresStore, stream: &StreamId, id: &str) -> RunReport {
    let run = report(stream, id);
    store.begin_run(&run).await.unwrap();
    run
}

async fn commit(
    store: &PostgresStore,
    run: &RunReport,
    records: &[Record],
    covered: &Coverage,
) -> sync_core::Result<RecordCounts> {
    store
        .commit(BatchCommit {
            run: &run.id,
            stream: &run.stream,
            records,
            covered,
            progress: Default::default(),
            claim: None,
        })
        .await
}

async fn finish(store: &PostgresStore, mut run: RunReport) {
    run.status = RunStatus::Completed;
    run.finished_at = Some(Utc::now());
    store.finish_run(&run).await.unwrap();
}

async fn count(store: &PostgresStore, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn conformance() {
    let db = TestDb::new().await;
    let store = db.store().await;
    sync_core::testkit::run_all(&store, &store).await;
    // Twice on the same database: checks must not depend on a fresh one.
    sync_core::testkit::run_all(&store, &store).await;
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn connecting_migrates_and_reports_the_schema_version() {
    let db = TestDb::new().await;
    let store = db.store().await;
    assert_eq!(PostgresStore::latest_schema_version(), 3);
    assert_eq!(store.schema_version().await.unwrap(), 3);
    store.migrate().await.unwrap();
    let again = db.store().await;
    assert_eq!(again.schema_version().await.unwrap(), 3);
    let payload_type: String = sqlx::query_scalar(
        "SELECT data_type FROM information_schema.columns \
         WHERE table_name = 'records' AND column_name = 'payload'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(payload_type, "jsonb");
    store.close().await;
    again.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn duplicates_in_a_batch_last_one_wins_and_recommit_rewrites_nothing() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let stream = StreamId::new("src", "records");
    let run = begin(&store, &stream, "r1").await;
    let records = vec![
        Record::new("visit", "1", Unit::Day(day("2024-05-01")), json!({"v": 1})),
        Record::new("visit", "2", Unit::Day(day("2024-05-01")), json!({"v": 2})),
        Record::new("visit", "1", Unit::Day(day("2024-05-02")), json!({"v": 3})),
    ];
    let c = commit(&store, &run, &records, &days("2024-05-01", "2024-05-02"))
        .await
        .unwrap();
    assert_eq!(c, counts(2, 0, 0, 0));
    let stored = store
        .existing(
            &stream,
            &ExistingQuery::ByIds {
                entity: "visit".into(),
                ids: vec!["1".into(), "1".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].payload, json!({"v": 3}));
    assert_eq!(stored[0].unit, Unit::Day(day("2024-05-02")));

    let xmin = |store: PostgresStore| async move {
        let v: String =
            sqlx::query_scalar("SELECT xmin::text FROM records WHERE external_id = '2'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        v
    };
    let before = xmin(store.clone()).await;
    let c = commit(&store, &run, &records[1..], &Coverage::default())
        .await
        .unwrap();
    assert_eq!(c, counts(0, 0, 2, 0));
    // The row version is the same: an unchanged record is not rewritten.
    assert_eq!(before, xmin(store.clone()).await);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM records").await, 2);
    // Creations are listed from the records (first_run), not logged.
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM record_changes").await,
        0
    );
    let kinds: Vec<ChangeKind> = store
        .run_changes(&run.id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(kinds, [ChangeKind::Created, ChangeKind::Created]);
    finish(&store, run).await;
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn change_log_keeps_old_and_new_values_of_each_field() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let stream = StreamId::new("src", "records");
    let unit = Unit::Day(day("2024-05-01"));
    let old = json!({"status": "booked", "client": {"phone": "111", "name": "Ann"}, "gone": 1});
    let new =
        json!({"status": "booked", "client": {"phone": "999", "name": "Ann"}, "added": [1, 2]});
    let run1 = begin(&store, &stream, "r1").await;
    commit(
        &store,
        &run1,
        &[Record::new("visit", "7", unit, old)],
        &Coverage::default(),
    )
    .await
    .unwrap();
    finish(&store, run1).await;
    let run2 = begin(&store, &stream, "r2").await;
    let c = commit(
        &store,
        &run2,
        &[Record::new("visit", "7", unit, new).deleted(true)],
        &Coverage::default(),
    )
    .await
    .unwrap();
    assert_eq!(c, counts(0, 0, 0, 1));
    finish(&store, run2).await;
    let changes = store.run_changes(&RunId("r2".into())).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].kind, ChangeKind::Deleted);
    let fields: Vec<(String, Value, Value)> = changes[0]
        .fields
        .iter()
        .map(|f| (f.path.clone(), f.old.clone(), f.new.clone()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("/added".into(), Value::Null, json!([1, 2])),
            ("/client/phone".into(), json!("111"), json!("999")),
            ("/gone".into(), json!(1), Value::Null),
        ]
    );
    // Readable with plain SQL too.
    let (kind, paths): (String, String) = sqlx::query_as(
        "SELECT kind, (SELECT string_agg(f ->> 'path', ',') FROM jsonb_array_elements(fields) f) \
         FROM record_changes WHERE run_id = 'r2'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(kind, "deleted");
    assert_eq!(paths, "/added,/client/phone,/gone");
    store.close().await;
    db.drop_db().await;
}

fn yclients_samples() -> Vec<Record> {
    let client1 = json!({
        "id": 101, "name": "Анна", "surname": "Иванова", "patronymic": "",
        "phone": 79161234567_i64, "email": "anna@example.com", "sex_id": 2, "birth_date": 0,
        "discount": 5, "comment": "", "visits": 12, "spent": 15400.5, "balance": 0,
        "last_change_date": "2024-05-01T10:00:00+0300", "categories": [], "custom_fields": []
    });
    let client2 = json!({"id": 102, "name": "Bob", "phone": "+7 916 000-00-00", "visits": "3", "spent": "n/a"});
    let visit1 = json!({
        "id": 5001, "company_id": 42, "staff_id": 7, "staff": {"id": 7, "name": "Мария"},
        "services": [{"id": 1, "title": "Стрижка", "cost": 1500, "amount": 1}],
        "client": {"id": 101, "name": "Анна", "phone": "+79161234567", "email": ""},
        "date": "2024-05-02 14:30:00", "datetime": "2024-05-02T14:30:00+03:00",
        "create_date": "2024-04-20T09:00:00+03:00", "seance_length": 3600, "attendance": 1,
        "visit_id": 9001, "deleted": false, "last_change_date": "2024-05-02T15:00:00+03:00",
        "comment": ""
    });
    let visit2 = json!({
        "id": 5002, "staff_id": "8", "staff": {"id": 8, "name": "Oleg"}, "services": [],
        "client": null, "date": "2024-05-03 09:00:00", "datetime": "2024-05-03T09:00:00+03:00",
        "attendance": -1, "visit_id": 0, "deleted": true
    });
    vec![
        Record::new("client", "101", Unit::Key(101), client1),
        Record::new("client", "102", Unit::Key(102), client2),
        Record::new("record", "5001", Unit::Day(day("2024-05-02")), visit1)
            .occurred_at(Utc.with_ymd_and_hms(2024, 5, 2, 11, 30, 0).unwrap()),
        Record::new("record", "5002", Unit::Day(day("2024-05-03")), visit2)
            .occurred_at(Utc.with_ymd_and_hms(2024, 5, 3, 6, 0, 0).unwrap())
            .deleted(true),
    ]
}

fn kennel_samples() -> Vec<Record> {
    let b1 = json!({
        "appointment_id": "A-17", "pet": "Rex", "client": "John Smith",
        "service": "Boarding (large dog)", "status": "checked in",
        "check_in": "2024-05-03T08:00:00Z", "check_out": "2024-05-05T17:30:00Z",
        "price": 120.5, "notes": "needs meds", "event_type": "boarding", "list_fingerprint": "f1"
    });
    let b2 = json!({
        "appointment_id": "A-18", "pet": "Mia", "client": "Kim", "service": "Daycare",
        "status": "cancelled", "check_in": "2024-05-04T07:00:00Z", "check_out": "garbage",
        "price": null, "notes": null, "event_type": null, "list_fingerprint": "f2"
    });
    vec![
        Record::with_volatile(
            "boarding",
            "A-17",
            Unit::Day(day("2024-05-03")),
            b1,
            &["list_fingerprint"],
        )
        .occurred_at(Utc.with_ymd_and_hms(2024, 5, 3, 8, 0, 0).unwrap()),
        Record::with_volatile(
            "boarding",
            "A-18",
            Unit::Day(day("2024-05-04")),
            b2,
            &["list_fingerprint"],
        )
        .occurred_at(Utc.with_ymd_and_hms(2024, 5, 4, 7, 0, 0).unwrap())
        .deleted(true),
    ]
}

#[tokio::test]
async fn typed_views_show_the_fields_of_each_entity() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let yc = StreamId::new("yclients:42", "all");
    let run = begin(&store, &yc, "r-yc").await;
    commit(&store, &run, &yclients_samples(), &Coverage::default())
        .await
        .unwrap();
    finish(&store, run).await;
    let kennel = StreamId::new("kennel:example.com", "boardings");
    let run = begin(&store, &kennel, "r-k").await;
    commit(&store, &run, &kennel_samples(), &Coverage::default())
        .await
        .unwrap();
    finish(&store, run).await;

    type ClientRow = (
        String,
        i64,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Numeric,
        Numeric,
        Option<String>,
        bool,
    );
    let clients: Vec<ClientRow> = sqlx::query_as(
        "SELECT source, client_id, name, surname, phone, email, visits, spent::text, \
         balance::text, last_change_date, deleted FROM yclients_clients ORDER BY client_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        clients,
        vec![
            (
                "yclients:42".into(),
                101,
                Some("Анна".into()),
                Some("Иванова".into()),
                Some("79161234567".into()),
                Some("anna@example.com".into()),
                Some(12),
                Some("15400.5".into()),
                Some("0".into()),
                Some("2024-05-01T10:00:00+0300".into()),
                false
            ),
            (
                "yclients:42".into(),
                102,
                Some("Bob".into()),
                None,
                Some("+7 916 000-00-00".into()),
                None,
                Some(3),
                None,
                None,
                None,
                false
            ),
        ]
    );

    type VisitRow = (
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<Value>,
        bool,
    );
    let visits: Vec<VisitRow> = sqlx::query_as(
        "SELECT record_id, client_id, staff_id, staff_name, visit_date, datetime, attendance, \
         visit_id, services, deleted FROM yclients_visits ORDER BY record_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        visits,
        vec![
            (
                Some(5001),
                Some(101),
                Some(7),
                Some("Мария".into()),
                Some("2024-05-02".into()),
                Some("2024-05-02T14:30:00+03:00".into()),
                Some(1),
                Some(9001),
                Some(json!([{"id": 1, "title": "Стрижка", "cost": 1500, "amount": 1}])),
                false
            ),
            (
                Some(5002),
                None,
                Some(8),
                Some("Oleg".into()),
                Some("2024-05-03".into()),
                Some("2024-05-03T09:00:00+03:00".into()),
                Some(-1),
                Some(0),
                Some(json!([])),
                true
            ),
        ]
    );

    type BoardingRow = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<chrono::DateTime<Utc>>,
        Option<chrono::DateTime<Utc>>,
        NaiveDate,
        Numeric,
        Option<String>,
        bool,
    );
    let boardings: Vec<BoardingRow> = sqlx::query_as(
        "SELECT appointment_id, pet, client, service, status, check_in, check_out, check_in_day, \
         price::text, notes, deleted FROM kennel_boardings ORDER BY appointment_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        boardings,
        vec![
            (
                "A-17".into(),
                Some("Rex".into()),
                Some("John Smith".into()),
                Some("Boarding (large dog)".into()),
                Some("checked in".into()),
                Some(Utc.with_ymd_and_hms(2024, 5, 3, 8, 0, 0).unwrap()),
                Some(Utc.with_ymd_and_hms(2024, 5, 5, 17, 30, 0).unwrap()),
                day("2024-05-03"),
                Some("120.5".into()),
                Some("needs meds".into()),
                false
            ),
            (
                "A-18".into(),
                Some("Mia".into()),
                Some("Kim".into()),
                Some("Daycare".into()),
                Some("cancelled".into()),
                Some(Utc.with_ymd_and_hms(2024, 5, 4, 7, 0, 0).unwrap()),
                None,
                day("2024-05-04"),
                None,
                None,
                true
            ),
        ]
    );
    let per_day: Vec<(String, NaiveDate, i64, i64)> = sqlx::query_as(
        "SELECT entity, day, records, deleted FROM record_day_counts ORDER BY entity, day",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        per_day,
        vec![
            ("boarding".into(), day("2024-05-03"), 1, 0),
            ("boarding".into(), day("2024-05-04"), 0, 1),
            ("record".into(), day("2024-05-02"), 1, 0),
            ("record".into(), day("2024-05-03"), 0, 1),
        ]
    );
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn odd_payload_shapes_round_trip_and_nul_is_refused_as_bad_data() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let stream = StreamId::new("yclients:1", "all");
    let payloads = [
        json!([1, "two", {"three": 3}]),
        json!("just a string"),
        json!(42.5),
        Value::Null,
        json!(true),
        json!({"id": "not-a-number", "phone": {"nested": true}, "spent": "lots", "visits": 1.5}),
        json!({"text": "quotes ' \" and emoji 🐕", "big": 1e300, "neg": -0.0}),
    ];
    let records: Vec<Record> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| Record::new("client", i.to_string(), Unit::Key(i as i64), p.clone()))
        .collect();
    let run = begin(&store, &stream, "r").await;
    assert_eq!(
        commit(&store, &run, &records, &Coverage::default())
            .await
            .unwrap(),
        counts(7, 0, 0, 0)
    );
    let ids: Vec<String> = (0..7).map(|i| i.to_string()).collect();
    let mut stored = store
        .existing(
            &stream,
            &ExistingQuery::ByIds {
                entity: "client".into(),
                ids,
            },
        )
        .await
        .unwrap();
    stored.sort_by_key(|r| r.external_id.parse::<i64>().unwrap());
    for (got, want) in stored.iter().zip(&records) {
        assert_eq!(got.payload, want.payload);
        assert_eq!(got.hash, want.hash);
    }
    assert_eq!(
        commit(&store, &run, &records, &Coverage::default())
            .await
            .unwrap(),
        counts(0, 0, 7, 0)
    );
    let rows: Vec<(i64, Option<String>, Option<i64>, Numeric)> = sqlx::query_as(
        "SELECT client_id, name, visits, spent::text FROM yclients_clients ORDER BY client_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 7);
    assert!(rows
        .iter()
        .all(|(_, n, v, s)| n.is_none() && v.is_none() && s.is_none()));

    // jsonb cannot hold \u0000: the batch is refused as bad data, whole.
    let nul = vec![
        Record::new("client", "100", Unit::Key(100), json!({"ok": true})),
        Record::new("client", "101", Unit::Key(101), json!({"text": "a\u{0}b"})),
    ];
    let mut covered = Coverage::default();
    covered.keys.insert(Span::new(100, 101).unwrap());
    let err = commit(&store, &run, &nul, &covered).await.unwrap_err();
    assert!(matches!(err, SyncError::BadData { .. }), "{err:?}");
    assert!(err.to_string().contains("client/101"), "{err}");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM records").await, 7);
    assert!(store.coverage(&stream).await.unwrap().is_empty());
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_database_of_an_older_schema_version_is_migrated_and_keeps_its_data() {
    let db = TestDb::new().await;
    let first_only = Migrator {
        migrations: Cow::Owned(vec![MIGRATIONS.iter().next().unwrap().clone()]),
        ..Migrator::DEFAULT
    };
    {
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        first_only.run_direct(&mut conn).await.unwrap();
        sqlx::query(
            "INSERT INTO records (source, entity, external_id, unit_kind, day, payload, hash, \
             deleted, first_seen, last_changed) VALUES ('kennel:old', 'boarding', 'B1', 'day', \
             '2023-12-31', '{\"pet\":\"Old Rex\"}', $1, false, now(), now())",
        )
        .bind(sync_core::ContentHash::of_json(&json!({"pet": "Old Rex"}), &[]).to_hex())
        .execute(&mut conn)
        .await
        .unwrap();
        let version: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(version, 1);
        conn.close().await.unwrap();
    }
    let store = db.store().await;
    assert_eq!(store.schema_version().await.unwrap(), 3);
    let stream = StreamId::new("kennel:old", "boardings");
    let stored = store
        .existing(
            &stream,
            &ExistingQuery::InDays {
                entity: "boarding".into(),
                range: Span::new(day("2023-12-01"), day("2023-12-31")).unwrap(),
            },
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].payload, json!({"pet": "Old Rex"}));
    let pet: String = sqlx::query_scalar("SELECT pet FROM kennel_boardings")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(pet, "Old Rex");
    let run = begin(&store, &stream, "r").await;
    let again = Record::new(
        "boarding",
        "B1",
        Unit::Day(day("2023-12-31")),
        json!({"pet": "Old Rex"}),
    );
    assert_eq!(
        commit(&store, &run, &[again], &Coverage::default())
            .await
            .unwrap(),
        counts(0, 0, 1, 0)
    );
    finish(&store, run).await;
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_version_2_database_with_history_migrates_and_lists_its_old_creations_once() {
    let db = TestDb::new().await;
    let up_to_2 = Migrator {
        migrations: Cow::Owned(MIGRATIONS.iter().take(2).cloned().collect()),
        ..Migrator::DEFAULT
    };
    let old = |id: &str, n: i64| {
        Record::new("visit", id, Unit::Day(day("2024-01-01")), json!({ "n": n }))
    };
    {
        // What a version-2 store wrote: the records, and a change log row
        // for each creation.
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        up_to_2.run_direct(&mut conn).await.unwrap();
        for record in [old("a", 1), old("b", 2)] {
            sqlx::query(
                "INSERT INTO records (source, entity, external_id, unit_kind, day, payload, hash, \
                 deleted, first_seen, last_changed, last_run) VALUES ('src', 'visit', $1, 'day', \
                 '2024-01-01', $2, $3, false, now(), now(), 'old-run')",
            )
            .bind(&record.external_id)
            .bind(&record.payload)
            .bind(record.hash.to_hex())
            .execute(&mut conn)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO record_changes (run_id, source, entity, external_id, kind, changed_at) \
                 VALUES ('old-run', 'src', 'visit', $1, 'created', now())",
            )
            .bind(&record.external_id)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        conn.close().await.unwrap();
    }
    let store = db.store().await;
    assert_eq!(store.schema_version().await.unwrap(), 3);
    let listed = |changes: Vec<sync_core::RecordChange>| -> Vec<(String, ChangeKind)> {
        changes
            .into_iter()
            .map(|c| (c.external_id, c.kind))
            .collect()
    };
    assert_eq!(
        listed(store.run_changes(&RunId("old-run".into())).await.unwrap()),
        [
            ("a".to_owned(), ChangeKind::Created),
            ("b".to_owned(), ChangeKind::Created)
        ]
    );

    // A new run over old and new records: each listed once, creations first.
    let stream = StreamId::new("src", "visits");
    let run = begin(&store, &stream, "new-run").await;
    let batch = [old("c", 3), old("a", 1), old("b", 20), old("d", 4)];
    assert_eq!(
        commit(&store, &run, &batch, &days("2024-01-01", "2024-01-01"))
            .await
            .unwrap(),
        counts(2, 1, 1, 0)
    );
    // After a batch of stored records the store looks up before writing:
    // creations there are recorded alike.
    let covered = days("2024-01-01", "2024-01-01");
    assert_eq!(
        commit(&store, &run, &[old("a", 1)], &covered)
            .await
            .unwrap(),
        counts(0, 0, 1, 0)
    );
    assert_eq!(
        commit(&store, &run, &[old("e", 5), old("a", 1)], &covered)
            .await
            .unwrap(),
        counts(1, 0, 1, 0)
    );
    finish(&store, run).await;
    assert_eq!(
        listed(store.run_changes(&RunId("new-run".into())).await.unwrap()),
        [
            ("c".to_owned(), ChangeKind::Created),
            ("d".to_owned(), ChangeKind::Created),
            ("e".to_owned(), ChangeKind::Created),
            ("b".to_owned(), ChangeKind::Updated)
        ]
    );
    assert_eq!(
        listed(store.run_changes(&RunId("old-run".into())).await.unwrap()).len(),
        2
    );
    // Creations are no longer logged: the new records' first_run says it.
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM record_changes WHERE kind = 'created' AND run_id = 'new-run'"
        )
        .await,
        0
    );
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_database_from_a_newer_release_is_refused() {
    let db = TestDb::new().await;
    let store = db.store().await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (999, 'from the future', true, '\\x00', 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    store.close().await;
    let err = PostgresStore::connect(&db.url).await.unwrap_err();
    assert!(matches!(err, SyncError::Fatal { .. }), "{err:?}");
    assert!(err.to_string().contains("schema version 999"), "{err}");
    db.drop_db().await;
}

#[tokio::test]
async fn many_processes_connecting_to_a_new_database_at_once_all_succeed() {
    let db = TestDb::new().await;
    let connects: Vec<_> = (0..6)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { PostgresStore::connect(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for c in connects {
        stores.push(c.await.unwrap().unwrap());
    }
    for store in &stores {
        assert_eq!(store.schema_version().await.unwrap(), 3);
    }
    assert_eq!(
        count(&stores[0], "SELECT COUNT(*) FROM _sqlx_migrations").await,
        3
    );
    for store in &stores {
        store.close().await;
    }
    db.drop_db().await;
}

#[tokio::test]
async fn a_second_run_on_a_stream_is_busy_across_store_instances() {
    let db = TestDb::new().await;
    let a = db.store().await;
    let b = db.store().await;
    let stream = StreamId::new("yclients:1", "records");
    let first = begin(&a, &stream, "run-first").await;
    let second = report(&stream, "run-second");
    match b.begin_run(&second).await {
        Err(SyncError::Busy { message }) => {
            assert!(message.contains("run-first"), "{message}");
            assert!(message.contains("yclients:1/records"), "{message}");
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    assert!(matches!(
        a.begin_run(&second).await,
        Err(SyncError::Busy { .. })
    ));
    assert!(b.run(&second.id).await.unwrap().is_none());
    let other = begin(&b, &StreamId::new("yclients:1", "clients"), "run-other").await;
    finish(&b, other).await;
    finish(&a, first).await;
    b.begin_run(&second).await.unwrap();
    finish(&b, second).await;
    a.close().await;
    b.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_lease_left_by_a_dead_holder_is_taken_over_and_its_run_marked_failed() {
    let db = TestDb::new().await;
    let stream = StreamId::new("kennel:x", "boardings");
    {
        let dying = db.store().await;
        begin(&dying, &stream, "run-killed").await;
        // Dropped without finish_run: its lease session ends, as when the
        // process is killed.
    }
    let next = db.store().await;
    let run = report(&stream, "run-next");
    // The server notices the closed session within moments.
    let mut attempts = 0;
    loop {
        match next.begin_run(&run).await {
            Ok(()) => break,
            Err(SyncError::Busy { .. }) if attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the lease of a dead run was not taken over: {e}"),
        }
    }
    let killed = next
        .run(&RunId("run-killed".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(killed.status, RunStatus::Failed);
    assert!(killed.finished_at.is_some());
    assert_eq!(
        killed.errors,
        vec!["abandoned: the process ended without finishing the run".to_string()]
    );
    assert_eq!(
        next.run(&run.id).await.unwrap().unwrap().status,
        RunStatus::InProgress
    );
    finish(&next, run).await;
    next.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_failed_commit_leaves_neither_records_nor_coverage() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let stream = StreamId::new("src", "records");
    let run = begin(&store, &stream, "r").await;
    sqlx::raw_sql(
        "CREATE FUNCTION fail_coverage() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$; \
         CREATE TRIGGER fail_coverage BEFORE INSERT ON covered_ranges \
         FOR EACH ROW EXECUTE FUNCTION fail_coverage();",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let records = vec![
        Record::new("visit", "1", Unit::Day(day("2024-05-01")), json!({"a": 1})),
        Record::new("visit", "2", Unit::Day(day("2024-05-01")), json!({"a": 2})),
    ];
    let covered = days("2024-05-01", "2024-05-01");
    let err = commit(&store, &run, &records, &covered).await.unwrap_err();
    assert!(matches!(err, SyncError::Fatal { .. }), "{err:?}");
    assert!(err.to_string().contains("disk on fire"), "{err}");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM records").await, 0);
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM record_changes").await,
        0
    );
    assert!(store.coverage(&stream).await.unwrap().is_empty());

    sqlx::query("DROP TRIGGER fail_coverage ON covered_ranges")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(
        commit(&store, &run, &records, &covered).await.unwrap(),
        counts(2, 0, 0, 0)
    );
    assert_eq!(store.coverage(&stream).await.unwrap(), covered);
    finish(&store, run).await;
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn coverage_rows_are_merged_and_clear_splits_ranges() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let stream = StreamId::new("src", "records");
    let run = begin(&store, &stream, "r").await;
    let first = day("2024-01-01");
    for i in 0..150u64 {
        let mut c = Coverage::default();
        c.days.insert(Span::single(first + chrono::Days::new(i)));
        c.keys.insert(Span::single(1000 + i as i64));
        commit(&store, &run, &[], &c).await.unwrap();
    }
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM covered_ranges").await,
        300
    );
    let coverage = store.coverage(&stream).await.unwrap();
    assert_eq!(
        coverage.days.spans().collect::<Vec<_>>(),
        vec![Span::new(first, first + chrono::Days::new(149)).unwrap()]
    );
    assert_eq!(
        coverage.keys.spans().collect::<Vec<_>>(),
        vec![Span::new(1000, 1149).unwrap()]
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM covered_ranges").await,
        2
    );
    assert_eq!(store.coverage(&stream).await.unwrap(), coverage);

    let mut clear = Coverage::default();
    clear
        .days
        .insert(Span::new(day("2024-02-01"), day("2024-02-10")).unwrap());
    clear.keys.insert(Span::new(0, 1100).unwrap());
    store.clear_coverage(&stream, &clear).await.unwrap();
    let after = store.coverage(&stream).await.unwrap();
    assert_eq!(
        after.days.spans().collect::<Vec<_>>(),
        vec![
            Span::new(first, day("2024-01-31")).unwrap(),
            Span::new(day("2024-02-11"), first + chrono::Days::new(149)).unwrap()
        ]
    );
    assert_eq!(
        after.keys.spans().collect::<Vec<_>>(),
        vec![Span::new(1101, 1149).unwrap()]
    );
    finish(&store, run).await;
    store.close().await;
    db.drop_db().await;
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_refused_connection_fails_at_once_with_a_readable_message() {
    // Default settings: the pool alone would wait its whole acquire timeout.
    let port = closed_port();
    let config = PostgresConfig::new(format!("postgres://sync:p@127.0.0.1:{port}/sync"));
    let started = Instant::now();
    let err = PostgresStore::connect_with(config).await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}: {err}");
    let shown = err.to_string();
    assert!(
        shown.contains(&format!(
            "cannot connect to postgres://sync:***@127.0.0.1:{port}/sync: connection refused"
        )),
        "{shown}"
    );
    // The one-letter password was not substring-replaced all over the text,
    // and the URL shows it redacted.
    assert!(!shown.contains("sync:p@"), "{shown}");
    assert!(!format!("{err:?}").contains("sync:p@"), "{err:?}");
    assert!(!shown.contains("***ool"), "{shown}");
    assert!(matches!(err, SyncError::Retryable { .. }), "{err:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_fails_after_the_connect_timeout() {
    // Accepts TCP connections (the kernel does) but never speaks Postgres.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut config = PostgresConfig::new(format!("postgres://sync@127.0.0.1:{port}/sync"));
    config.connect_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = PostgresStore::connect_with(config).await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}: {err}");
    assert!(err.to_string().contains("no answer within 300 ms"), "{err}");
    assert!(matches!(err, SyncError::Retryable { .. }), "{err:?}");
    drop(silent);
}

#[tokio::test]
async fn connection_errors_are_retryable_and_never_show_the_password() {
    // Nothing listens on port 1.
    let mut config = PostgresConfig::new("postgres://sync:hunter2@127.0.0.1:1/sync");
    config.acquire_timeout = Duration::from_secs(2);
    assert!(!format!("{config:?}").contains("hunter2"));
    let err = PostgresStore::connect_with(config).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("sync:***@127.0.0.1:1"), "{shown}");
    assert!(matches!(err, SyncError::Retryable { .. }), "{err:?}");

    // A store's Debug names the database, never the password.
    let db = TestDb::new().await;
    let store = db.store().await;
    let debug = format!("{store:?}");
    assert!(debug.contains(db.scratch.name()), "{debug}");
    store.close().await;
    db.drop_db().await;
}
