//! SQLite store tests: the conformance suite and the SQL stores' shared
//! checks (`sync_store_sql::testkit`), then what is SQLite's own: the file
//! and its directory, typed views, migrations from older schema versions,
//! several processes opening one new file, file locks. Each test uses its
//! own temporary directory.

use std::borrow::Cow;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};
use sqlx::migrate::Migrator;
use sqlx::Connection;
use sync_core::{
    BatchCommit, ChangeKind, CheckpointStore, Coverage, ExistingQuery, Record, RecordCounts, RunId,
    RunReport, RunStatus, Span, Store, StreamId, SyncError, SyncMode, Unit,
};
use sync_store_sql::testkit::{self, Harness};
use sync_store_sqlite::{SqliteConfig, SqliteStore};
use tempfile::TempDir;

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

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

async fn open_temp() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("nested/dir/sync.db"))
        .await
        .unwrap();
    (dir, store)
}

async fn begin(store: &SqliteStore, stream: &StreamId, id: &str) -> RunReport {
    let run = RunReport::start(
        RunId(id.into()),
        stream.clone(),
        SyncMode::Full,
        "test",
        Utc::now(),
    );
    store.begin_run(&run).await.unwrap();
    run
}

async fn commit(
    store: &SqliteStore,
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

async fn finish(store: &SqliteStore, mut run: RunReport) {
    run.status = RunStatus::Completed;
    run.finished_at = Some(Utc::now());
    store.finish_run(&run).await.unwrap();
}

async fn count(store: &SqliteStore, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// A store on a new file of its own.
struct Db {
    _dir: TempDir,
    store: SqliteStore,
}

#[async_trait::async_trait]
impl Harness for Db {
    type Store = SqliteStore;

    fn store(&self) -> &SqliteStore {
        &self.store
    }

    async fn open_again(&self) -> SqliteStore {
        let path = self.store.path().unwrap().to_owned();
        SqliteStore::open(path).await.unwrap()
    }

    async fn execute(&self, sql: &str) {
        sqlx::raw_sql(sql).execute(self.store.pool()).await.unwrap();
    }

    async fn count(&self, sql: &str) -> i64 {
        count(&self.store, sql).await
    }

    async fn row_version(&self, external_id: &str) -> String {
        sqlx::query_scalar("SELECT last_changed FROM records WHERE external_id = $1")
            .bind(external_id)
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    async fn logged_paths(&self) -> (String, String) {
        sqlx::query_as(
            "SELECT kind, (SELECT group_concat(value ->> '$.path') FROM json_each(fields)) \
             FROM record_changes WHERE run_id = 'r2'",
        )
        .fetch_one(self.store.pool())
        .await
        .unwrap()
    }

    fn fail_coverage_inserts(&self) -> (&'static str, &'static str) {
        (
            "CREATE TRIGGER fail_coverage BEFORE INSERT ON covered_ranges \
             BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
            "DROP TRIGGER fail_coverage",
        )
    }
}

/// One test per shared check, each on a database of its own.
macro_rules! shared_checks {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (dir, store) = open_temp().await;
                testkit::$check(&Db { _dir: dir, store }).await;
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
async fn conformance_on_a_file() {
    let (_dir, store) = open_temp().await;
    sync_core::testkit::run_all(&store, &store).await;
    // Twice on the same database: checks must not depend on a fresh one.
    sync_core::testkit::run_all(&store, &store).await;
}

#[tokio::test]
async fn budgets_and_the_work_queue_on_a_file() {
    let (_dir, store) = open_temp().await;
    sync_core::testkit::budget_checks(&store).await;
    sync_core::testkit::queue_checks(&store, &store, &store).await;
    sync_core::testkit::hint_checks(&store).await;
}

#[tokio::test]
async fn conformance_in_memory() {
    let store = SqliteStore::in_memory().await.unwrap();
    sync_core::testkit::run_all(&store, &store).await;
}

#[tokio::test]
async fn opening_creates_the_directory_and_reports_the_schema_version() {
    let (dir, store) = open_temp().await;
    assert!(dir.path().join("nested/dir/sync.db").exists());
    assert_eq!(
        store.schema_version().await.unwrap(),
        SqliteStore::latest_schema_version()
    );
    assert!(SqliteStore::latest_schema_version() >= 5);
    // Opening again is a no-op migration.
    drop(store);
    let again = SqliteStore::open(dir.path().join("nested/dir/sync.db"))
        .await
        .unwrap();
    again.migrate().await.unwrap();
    assert_eq!(
        again.schema_version().await.unwrap(),
        SqliteStore::latest_schema_version()
    );
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(again.pool())
        .await
        .unwrap();
    assert_eq!(journal, "wal");
}

fn yclients_samples() -> Vec<Record> {
    let client1 = json!({
        "id": 101, "name": "Анна", "surname": "Иванова", "patronymic": "",
        "phone": 79161234567_i64, "email": "anna@example.com", "sex_id": 2, "birth_date": 0,
        "discount": 5, "comment": "", "visits": 12, "spent": 15400.5, "balance": 0,
        "last_change_date": "2024-05-01T10:00:00+0300", "categories": [], "custom_fields": []
    });
    let client2 = json!({"id": 102, "name": "Bob", "phone": "+7 916 000-00-00", "visits": "3"});
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
        "id": 5002, "staff_id": 8, "staff": {"id": 8, "name": "Oleg"}, "services": [],
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
        "status": "cancelled", "check_in": "2024-05-04T07:00:00Z", "check_out": null,
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
    let (_dir, store) = open_temp().await;
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
        Option<String>,
        bool,
    );
    let clients: Vec<ClientRow> = sqlx::query_as(
        "SELECT source, client_id, name, surname, phone, email, last_change_date, deleted \
         FROM yclients_clients ORDER BY client_id",
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
                None,
                false
            ),
        ]
    );
    let (visits, spent, balance): (i64, f64, i64) =
        sqlx::query_as("SELECT visits, spent, balance FROM yclients_clients WHERE client_id = 101")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!((visits, spent, balance), (12, 15400.5, 0));

    type VisitRow = (
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<String>,
        String,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<String>,
        bool,
    );
    let visits: Vec<VisitRow> = sqlx::query_as(
        "SELECT record_id, client_id, staff_id, staff_name, visit_date, datetime, attendance, \
         visit_id, services, deleted FROM yclients_visits ORDER BY record_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(visits.len(), 2);
    assert_eq!(visits[0].0, Some(5001));
    assert_eq!(visits[0].1, Some(101));
    assert_eq!(visits[0].2, Some(7));
    assert_eq!(visits[0].3.as_deref(), Some("Мария"));
    assert_eq!(visits[0].4, "2024-05-02");
    assert_eq!(visits[0].5.as_deref(), Some("2024-05-02T14:30:00+03:00"));
    assert_eq!((visits[0].6, visits[0].7), (Some(1), Some(9001)));
    let services: Value = serde_json::from_str(visits[0].8.as_deref().unwrap()).unwrap();
    assert_eq!(services[0]["title"], json!("Стрижка"));
    assert!(!visits[0].9);
    assert_eq!(
        (visits[1].0, visits[1].1, visits[1].9),
        (Some(5002), None, true)
    );
    assert_eq!(visits[1].4, "2024-05-03");

    type BoardingRow = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        Option<f64>,
        Option<String>,
        bool,
    );
    let boardings: Vec<BoardingRow> = sqlx::query_as(
        "SELECT appointment_id, pet, client, service, status, check_in, check_out, check_in_day, \
         price, notes, deleted FROM kennel_boardings ORDER BY appointment_id",
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
                Some("2024-05-03T08:00:00Z".into()),
                Some("2024-05-05T17:30:00Z".into()),
                "2024-05-03".into(),
                Some(120.5),
                Some("needs meds".into()),
                false
            ),
            (
                "A-18".into(),
                Some("Mia".into()),
                Some("Kim".into()),
                Some("Daycare".into()),
                Some("cancelled".into()),
                Some("2024-05-04T07:00:00Z".into()),
                None,
                "2024-05-04".into(),
                None,
                None,
                true
            ),
        ]
    );
    // Per-day counts, for comparison with the source.
    let per_day: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT entity, day, records, deleted FROM record_day_counts ORDER BY entity, day",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        per_day,
        vec![
            ("boarding".into(), "2024-05-03".into(), 1, 0),
            ("boarding".into(), "2024-05-04".into(), 0, 1),
            ("record".into(), "2024-05-02".into(), 1, 0),
            ("record".into(), "2024-05-03".into(), 0, 1),
        ]
    );
}

#[tokio::test]
async fn odd_payload_shapes_round_trip_and_do_not_break_the_views() {
    let (_dir, store) = open_temp().await;
    let stream = StreamId::new("yclients:1", "all");
    let payloads = [
        json!([1, "two", {"three": 3}]),
        json!("just a string"),
        json!(42.5),
        Value::Null,
        json!(true),
        json!({"id": "not-a-number", "phone": {"nested": true}, "spent": "lots"}),
        json!({"text": "nul \u{0} inside, quotes ' \" and emoji 🐕"}),
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
    let names: Vec<(i64, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT client_id, name, phone FROM yclients_clients ORDER BY client_id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(names.len(), 7);
    assert!(names[..5]
        .iter()
        .all(|(_, n, p)| n.is_none() && p.is_none()));
    assert_eq!(names[5].2.as_deref(), Some(r#"{"nested":true}"#));
}

#[tokio::test]
async fn a_database_of_an_older_schema_version_is_migrated_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    // Build a version-1 database by hand, as an older release left it.
    let first_only = Migrator {
        migrations: Cow::Owned(vec![MIGRATIONS.iter().next().unwrap().clone()]),
        ..Migrator::DEFAULT
    };
    {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        first_only.run_direct(&mut conn).await.unwrap();
        sqlx::query(
            "INSERT INTO records (source, entity, external_id, unit_kind, day, payload, hash, \
             deleted, first_seen, last_changed) VALUES ('kennel:old', 'boarding', 'B1', 'day', \
             '2023-12-31', '{\"pet\":\"Old Rex\"}', ?1, 0, '2023-12-31T10:00:00.000000Z', \
             '2023-12-31T10:00:00.000000Z')",
        )
        .bind(sync_core::ContentHash::of_json(&json!({"pet": "Old Rex"}), &[]).to_hex())
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.schema_version().await.unwrap(),
        SqliteStore::latest_schema_version()
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
    // The old record is unchanged when fetched again.
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
}

#[tokio::test]
async fn a_database_from_a_newer_release_is_refused() {
    let (dir, store) = open_temp().await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (999, 'from the future', 1, x'00', 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    store.close().await;
    let err = SqliteStore::open(dir.path().join("nested/dir/sync.db"))
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Fatal { .. }), "{err:?}");
    assert!(err.to_string().contains("schema version 999"), "{err}");
}

#[tokio::test]
async fn many_stores_opening_one_new_file_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.db");
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move { SqliteStore::open(path).await })
        })
        .collect();
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.unwrap().unwrap());
    }
    for store in &stores {
        assert_eq!(
            store.schema_version().await.unwrap(),
            SqliteStore::latest_schema_version()
        );
    }
    assert_eq!(
        count(&stores[0], "SELECT COUNT(*) FROM _sqlx_migrations").await,
        MIGRATIONS.iter().count() as i64
    );
    // All of them can write.
    for (i, store) in stores.iter().enumerate() {
        let stream = StreamId::new("race", format!("s{i}"));
        let run = begin(store, &stream, &format!("run-{i}")).await;
        let r = Record::new("e", i.to_string(), Unit::Key(i as i64), json!({"i": i}));
        commit(store, &run, &[r], &Coverage::default())
            .await
            .unwrap();
        finish(store, run).await;
    }
    assert_eq!(count(&stores[0], "SELECT COUNT(*) FROM records").await, 6);
}

#[tokio::test]
async fn a_write_lock_held_elsewhere_gives_a_retryable_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.db");
    let mut config = SqliteConfig::new(&path);
    config.busy_timeout = Duration::from_millis(100);
    let store = SqliteStore::open_with(config).await.unwrap();
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let stream = StreamId::new("src", "records");
    let run = RunReport::start(
        RunId("r".into()),
        stream.clone(),
        SyncMode::Full,
        "t",
        Utc::now(),
    );
    let records = [Record::new("e", "1", Unit::Key(1), json!({}))];
    let err = commit(&store, &run, &records, &Coverage::default())
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Retryable { .. }), "{err:?}");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    commit(&store, &run, &records, &Coverage::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_version_2_database_with_history_and_coverage_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    let up_to_2 = Migrator {
        migrations: Cow::Owned(MIGRATIONS.iter().take(2).cloned().collect()),
        ..Migrator::DEFAULT
    };
    let old = |id: &str, n: i64| {
        Record::new("visit", id, Unit::Day(day("2024-01-01")), json!({ "n": n }))
    };
    let started = "2024-01-02T03:04:05.000006Z";
    {
        // What a version-2 store wrote: records with a change log row for
        // each creation, coverage without check times, the run.
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        up_to_2.run_direct(&mut conn).await.unwrap();
        for record in [old("a", 1), old("b", 2)] {
            sqlx::query(
                "INSERT INTO records (source, entity, external_id, unit_kind, day, payload, hash, \
                 deleted, first_seen, last_changed, last_run) VALUES ('src', 'visit', ?1, 'day', \
                 '2024-01-01', ?2, ?3, 0, ?4, ?4, 'old-run')",
            )
            .bind(&record.external_id)
            .bind(record.payload.to_string())
            .bind(record.hash.to_hex())
            .bind(started)
            .execute(&mut conn)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO record_changes (run_id, source, entity, external_id, kind, changed_at) \
                 VALUES ('old-run', 'src', 'visit', ?1, 'created', ?2)",
            )
            .bind(&record.external_id)
            .bind(started)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO covered_ranges (source, stream, kind, first_day, last_day) \
             VALUES ('src', 'visits', 'day', '2024-01-01', '2024-01-03')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO runs (id, source, stream, mode, target, status, started_at, finished_at) \
             VALUES ('old-run', 'src', 'visits', 'full', 't', 'completed', ?1, ?1)",
        )
        .bind(started)
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.schema_version().await.unwrap(),
        SqliteStore::latest_schema_version()
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
    // Coverage stored before check times: checked when the stream's first
    // run started, at the latest.
    let stream = StreamId::new("src", "visits");
    let range = Span::new(day("2024-01-01"), day("2024-01-31")).unwrap();
    let checked = store.last_checked(&stream, range).await.unwrap();
    assert_eq!(
        checked,
        vec![(
            Span::new(day("2024-01-01"), day("2024-01-03")).unwrap(),
            started.parse().unwrap()
        )]
    );
    // A new run over old and new records: each listed once, creations first.
    let run = begin(&store, &stream, "new-run").await;
    let batch = [old("c", 3), old("a", 1), old("b", 20)];
    assert_eq!(
        commit(&store, &run, &batch, &days("2024-01-02", "2024-01-02"))
            .await
            .unwrap(),
        counts(1, 1, 1, 0)
    );
    finish(&store, run).await;
    assert_eq!(
        listed(store.run_changes(&RunId("new-run".into())).await.unwrap()),
        [
            ("c".to_owned(), ChangeKind::Created),
            ("b".to_owned(), ChangeKind::Updated)
        ]
    );
    let checked = store.last_checked(&stream, range).await.unwrap();
    assert_eq!(checked.len(), 3, "{checked:?}");
    assert!(checked[1].1 > checked[0].1, "{checked:?}");
}

#[tokio::test]
async fn the_kennel_view_reads_the_detail_page_payload() {
    let (_dir, store) = open_temp().await;
    let kennel = StreamId::new("kennel:example.com", "boardings");
    let run = begin(&store, &kennel, "r-k").await;
    commit(
        &store,
        &run,
        &[sync_store_sql::testkit::kennel_detail_record()],
        &Coverage::default(),
    )
    .await
    .unwrap();
    finish(&store, run).await;
    type Row = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<f64>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let row: Row = sqlx::query_as(
        "SELECT pet, client, client_email, client_phone, service, duration, price, notes, \
         json_extract(price_items, '$[0].service'), json_extract(fields, '$.Medications') \
         FROM kennel_boardings",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "Rex, Mia".to_string(),
            Some("John Smith".into()),
            Some("john@example.com".into()),
            Some("+1 555 0100".into()),
            Some("Boarding (Nights)".into()),
            Some("5 nights".into()),
            Some(750.0),
            Some("Feed twice a day".into()),
            Some("Boarding".into()),
            Some("none".into()),
        )
    );
}
