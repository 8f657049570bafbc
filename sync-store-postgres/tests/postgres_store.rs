//! Postgres store tests against a real server: the conformance suite and
//! the SQL stores' shared checks (`sync_store_sql::testkit`), then what is
//! Postgres's own: typed views over jsonb, NUL characters, migrations from
//! older schema versions, concurrent migrations, connection failures.
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
use sync_store_sql::testkit::{self, Harness};

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
            finishes_batch: true,
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

/// A store on a database of its own.
struct Db {
    db: TestDb,
    store: PostgresStore,
}

#[async_trait::async_trait]
impl Harness for Db {
    type Store = PostgresStore;

    fn store(&self) -> &PostgresStore {
        &self.store
    }

    async fn open_again(&self) -> PostgresStore {
        self.db.store().await
    }

    async fn execute(&self, sql: &str) {
        sqlx::raw_sql(sql).execute(self.store.pool()).await.unwrap();
    }

    async fn count(&self, sql: &str) -> i64 {
        count(&self.store, sql).await
    }

    async fn row_version(&self, external_id: &str) -> String {
        sqlx::query_scalar("SELECT xmin::text FROM records WHERE external_id = $1")
            .bind(external_id)
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    async fn logged_paths(&self) -> (String, String) {
        sqlx::query_as(
            "SELECT kind, (SELECT string_agg(f ->> 'path', ',') FROM jsonb_array_elements(fields) f) \
             FROM record_changes WHERE run_id = 'r2'",
        )
        .fetch_one(self.store.pool())
        .await
        .unwrap()
    }

    fn fail_coverage_inserts(&self) -> (&'static str, &'static str) {
        (
            "CREATE FUNCTION fail_coverage() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$; \
             CREATE TRIGGER fail_coverage BEFORE INSERT ON covered_ranges \
             FOR EACH ROW EXECUTE FUNCTION fail_coverage();",
            "DROP TRIGGER fail_coverage ON covered_ranges",
        )
    }
}

/// One test per shared check, each on a database of its own.
macro_rules! shared_checks {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let db = TestDb::new().await;
                let store = db.store().await;
                let h = Db { db, store };
                testkit::$check(&h).await;
                h.store.close().await;
                h.db.drop_db().await;
            }
        )*
    };
}

shared_checks!(
    duplicates_last_one_wins_and_recommit_rewrites_nothing,
    change_log_keeps_old_and_new_values_of_each_field,
    run_changes_pages_slice_the_whole_list,
    odd_payload_shapes_round_trip,
    a_second_run_on_a_stream_is_busy_across_store_instances,
    a_lease_left_by_a_dead_holder_is_taken_over_and_its_run_marked_failed,
    a_failed_commit_leaves_neither_records_nor_coverage,
    coverage_rows_are_merged_and_clear_splits_ranges,
    merging_rows_keeps_the_check_times,
    day_counts_compare_with_the_source,
    both_commit_paths_count_alike,
);

#[tokio::test]
async fn budgets_and_the_work_queue() {
    let db = TestDb::new().await;
    let store = db.store().await;
    sync_core::testkit::budget_checks(&store).await;
    sync_core::testkit::queue_checks(&store, &store, &store).await;
    sync_core::testkit::hint_checks(&store).await;
    store.close().await;
    db.drop_db().await;
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
    assert!(PostgresStore::latest_schema_version() >= 5);
    assert_eq!(
        store.schema_version().await.unwrap(),
        PostgresStore::latest_schema_version()
    );
    store.migrate().await.unwrap();
    let again = db.store().await;
    assert_eq!(
        again.schema_version().await.unwrap(),
        PostgresStore::latest_schema_version()
    );
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
    assert_eq!(
        store.schema_version().await.unwrap(),
        PostgresStore::latest_schema_version()
    );
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
    assert_eq!(
        store.schema_version().await.unwrap(),
        PostgresStore::latest_schema_version()
    );
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
        assert_eq!(
            store.schema_version().await.unwrap(),
            PostgresStore::latest_schema_version()
        );
    }
    // Every migration applied once, however many processes raced.
    assert_eq!(
        count(&stores[0], "SELECT COUNT(*) FROM _sqlx_migrations").await,
        count(
            &stores[0],
            "SELECT COUNT(DISTINCT version) FROM _sqlx_migrations"
        )
        .await,
    );
    for store in &stores {
        store.close().await;
    }
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

#[tokio::test]
async fn coverage_of_a_version_3_database_gets_a_check_time() {
    let db = TestDb::new().await;
    let up_to_3 = Migrator {
        migrations: Cow::Owned(MIGRATIONS.iter().take(3).cloned().collect()),
        ..Migrator::DEFAULT
    };
    let started = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
    {
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        up_to_3.run_direct(&mut conn).await.unwrap();
        sqlx::query(
            "INSERT INTO covered_ranges (source, stream, kind, first_day, last_day) \
             VALUES ('src', 'visits', 'day', '2024-01-01', '2024-01-03')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO runs (id, source, stream, mode, target, status, started_at) \
             VALUES ('old-run', 'src', 'visits', 'full', 't', 'completed', $1)",
        )
        .bind(started)
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let store = db.store().await;
    assert_eq!(
        store.schema_version().await.unwrap(),
        PostgresStore::latest_schema_version()
    );
    let stream = StreamId::new("src", "visits");
    let range = Span::new(day("2024-01-01"), day("2024-01-31")).unwrap();
    assert_eq!(
        store.last_checked(&stream, range).await.unwrap(),
        vec![(
            days("2024-01-01", "2024-01-03")
                .days
                .spans()
                .next()
                .unwrap(),
            started
        )]
    );
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn the_kennel_view_reads_the_detail_page_payload() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let kennel = StreamId::new("kennel:example.com", "boardings");
    let run = begin(&store, &kennel, "r-k").await;
    commit(
        &store,
        &run,
        &[testkit::kennel_detail_record()],
        &Coverage::default(),
    )
    .await
    .unwrap();
    finish(&store, run).await;
    type Row = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Numeric,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<chrono::DateTime<Utc>>,
    );
    let row: Row = sqlx::query_as(
        "SELECT pet, client, client_email, client_phone, service, duration, price::text, notes, \
         price_items -> 0 ->> 'service', fields ->> 'Medications', check_out \
         FROM kennel_boardings",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            Some("Rex, Mia".to_string()),
            Some("John Smith".into()),
            Some("john@example.com".into()),
            Some("+1 555 0100".into()),
            Some("Boarding (Nights)".into()),
            Some("5 nights".into()),
            Some("750.00".into()),
            Some("Feed twice a day".into()),
            Some("Boarding".into()),
            Some("none".into()),
            Some(Utc.with_ymd_and_hms(2025, 2, 18, 17, 0, 0).unwrap()),
        )
    );
    db.drop_db().await;
}
