//! Store tests shared by the SQL stores (feature `testkit`).
//!
//! Each check is a plain `pub async fn` over a [`Harness`]: a fresh, empty
//! database of the store under test, with a few dialect-specific SQL
//! statements. The store crates run every check against their database
//! (see their `tests/`), next to [`sync_core::testkit::run_all`] and their
//! own dialect-specific tests. Checks panic with a message on failure.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};
use serde_json::{json, Value};
use sync_core::{
    BatchCommit, ChangeKind, CheckpointStore, Coverage, ExistingQuery, Record, RecordCounts, RunId,
    RunProgress, RunReport, RunStatus, Span, Store, StreamId, SyncError, SyncMode, Unit,
};

/// A fresh database of the store under test.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The store type.
    type Store: Store + CheckpointStore + 'static;

    /// The store on the database.
    fn store(&self) -> &Self::Store;

    /// Another store instance on the same database (as another process
    /// would open).
    async fn open_again(&self) -> Self::Store;

    /// Runs `sql`, which may hold several statements.
    async fn execute(&self, sql: &str);

    /// The one integer `sql` selects.
    async fn count(&self, sql: &str) -> i64;

    /// Something of the row of record `external_id` that changes whenever
    /// the row is written (`xmin`, or the last change time).
    async fn row_version(&self, external_id: &str) -> String;

    /// The kind and comma-separated field paths of run `r2`'s one change log
    /// row, read with plain SQL.
    async fn logged_paths(&self) -> (String, String);

    /// Statements that make every insert into `covered_ranges` fail with
    /// "disk on fire", and that undo it.
    fn fail_coverage_inserts(&self) -> (&'static str, &'static str);
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap_or_default()
}

fn days(first: &str, last: &str) -> Coverage {
    let mut c = Coverage::default();
    c.days
        .extend(&Span::new(day(first), day(last)).into_iter().collect());
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

async fn begin(store: &dyn CheckpointStore, stream: &StreamId, id: &str) -> RunReport {
    let run = report(stream, id);
    if let Err(e) = store.begin_run(&run).await {
        panic!("begin_run {id}: {e}");
    }
    run
}

async fn commit(
    store: &dyn Store,
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
            progress: RunProgress::default(),
            claim: None,
            finishes_batch: true,
        })
        .await
}

async fn commit_ok(
    store: &dyn Store,
    run: &RunReport,
    records: &[Record],
    covered: &Coverage,
) -> RecordCounts {
    match commit(store, run, records, covered).await {
        Ok(c) => c,
        Err(e) => panic!("commit of run {}: {e}", run.id),
    }
}

async fn finish(store: &dyn CheckpointStore, mut run: RunReport) {
    run.status = RunStatus::Completed;
    run.finished_at = Some(Utc::now());
    if let Err(e) = store.finish_run(&run).await {
        panic!("finish_run {}: {e}", run.id);
    }
}

fn ok<T>(what: &str, r: sync_core::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Duplicates in a batch: the last wins, counted once; committing again
/// rewrites nothing; creations are listed by the run's history, not logged.
pub async fn duplicates_last_one_wins_and_recommit_rewrites_nothing(h: &impl Harness) {
    let store = h.store();
    let stream = StreamId::new("src", "records");
    let run = begin(store, &stream, "r1").await;
    let records = vec![
        Record::new("visit", "1", Unit::Day(day("2024-05-01")), json!({"v": 1})),
        Record::new("visit", "2", Unit::Day(day("2024-05-01")), json!({"v": 2})),
        Record::new("visit", "1", Unit::Day(day("2024-05-02")), json!({"v": 3})),
    ];
    let c = commit_ok(store, &run, &records, &days("2024-05-01", "2024-05-02")).await;
    assert_eq!(c, counts(2, 0, 0, 0));
    let query = ExistingQuery::ByIds {
        entity: "visit".into(),
        ids: vec!["1".into(), "1".into()],
    };
    let stored = ok("existing", store.existing(&stream, &query).await);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].payload, json!({"v": 3}));
    assert_eq!(stored[0].unit, Unit::Day(day("2024-05-02")));

    let before = h.row_version("2").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let c = commit_ok(store, &run, &records[1..], &Coverage::default()).await;
    assert_eq!(c, counts(0, 0, 2, 0));
    assert_eq!(
        before,
        h.row_version("2").await,
        "an unchanged record was rewritten"
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM records").await, 2);
    // Creations are listed from the records (first_run), not logged.
    assert_eq!(h.count("SELECT COUNT(*) FROM record_changes").await, 0);
    let kinds: Vec<ChangeKind> = ok("run_changes", store.run_changes(&run.id).await)
        .into_iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(kinds, [ChangeKind::Created, ChangeKind::Created]);
    finish(store, run).await;
}

/// The change log keeps the old and new value of each changed field, and
/// can be read with plain SQL.
pub async fn change_log_keeps_old_and_new_values_of_each_field(h: &impl Harness) {
    let store = h.store();
    let stream = StreamId::new("src", "records");
    let unit = Unit::Day(day("2024-05-01"));
    let old = json!({"status": "booked", "client": {"phone": "111", "name": "Ann"}, "gone": 1});
    let new =
        json!({"status": "booked", "client": {"phone": "999", "name": "Ann"}, "added": [1, 2]});
    let run1 = begin(store, &stream, "r1").await;
    let first = [Record::new("visit", "7", unit, old)];
    commit_ok(store, &run1, &first, &Coverage::default()).await;
    finish(store, run1).await;
    let run2 = begin(store, &stream, "r2").await;
    let second = [Record::new("visit", "7", unit, new).deleted(true)];
    let c = commit_ok(store, &run2, &second, &Coverage::default()).await;
    assert_eq!(c, counts(0, 0, 0, 1));
    finish(store, run2).await;
    let changes = ok("run_changes", store.run_changes(&RunId("r2".into())).await);
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
    let (kind, paths) = h.logged_paths().await;
    assert_eq!(kind, "deleted");
    assert_eq!(paths, "/added,/client/phone,/gone");
}

/// Pages of a run's changes are slices of the whole list, in its order,
/// across the created records and the change log.
pub async fn run_changes_pages_slice_the_whole_list(h: &impl Harness) {
    let store = h.store();
    let stream = StreamId::new("src", "records");
    let unit = Unit::Day(day("2024-05-01"));
    let run1 = begin(store, &stream, "p1").await;
    let first: Vec<Record> = (0..5)
        .map(|i| Record::new("visit", format!("{i}"), unit, json!({ "n": i })))
        .collect();
    commit_ok(store, &run1, &first, &Coverage::default()).await;
    finish(store, run1).await;
    let run2 = begin(store, &stream, "p2").await;
    let mut second: Vec<Record> = (0..3)
        .map(|i| Record::new("visit", format!("{i}"), unit, json!({ "n": i + 10 })))
        .collect();
    second.extend((5..9).map(|i| Record::new("visit", format!("{i}"), unit, json!({ "n": i }))));
    let c = commit_ok(store, &run2, &second, &Coverage::default()).await;
    assert_eq!(c, counts(4, 3, 0, 0));
    finish(store, run2).await;
    let id = RunId("p2".into());
    let all = ok("run_changes", store.run_changes(&id).await);
    assert_eq!(all.len(), 7);
    for limit in 1..=8 {
        for offset in 0..=8 {
            let page = ok(
                "run_changes_page",
                store.run_changes_page(&id, offset, limit).await,
            );
            let want: Vec<_> = all.iter().skip(offset).take(limit).cloned().collect();
            assert_eq!(page, want, "offset {offset}, limit {limit}");
        }
    }
    let none = ok(
        "run_changes_page",
        store.run_changes_page(&RunId("nope".into()), 0, 10).await,
    );
    assert!(none.is_empty());
}

/// Payloads of every JSON shape come back as they went in, and count as
/// unchanged when committed again.
pub async fn odd_payload_shapes_round_trip(h: &impl Harness) {
    let store = h.store();
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
    let run = begin(store, &stream, "r").await;
    let c = commit_ok(store, &run, &records, &Coverage::default()).await;
    assert_eq!(c, counts(7, 0, 0, 0));
    let query = ExistingQuery::ByIds {
        entity: "client".into(),
        ids: (0..7).map(|i| i.to_string()).collect(),
    };
    let mut stored = ok("existing", store.existing(&stream, &query).await);
    stored.sort_by_key(|r| r.external_id.parse::<i64>().unwrap_or(-1));
    assert_eq!(stored.len(), 7);
    for (got, want) in stored.iter().zip(&records) {
        assert_eq!(got.payload, want.payload);
        assert_eq!(got.hash, want.hash);
    }
    let c = commit_ok(store, &run, &records, &Coverage::default()).await;
    assert_eq!(c, counts(0, 0, 7, 0));
    finish(store, run).await;
}

/// A second run of a stream is refused as busy, naming the first, by this
/// store instance and by another; other streams are free; finishing frees
/// the stream.
pub async fn a_second_run_on_a_stream_is_busy_across_store_instances(h: &impl Harness) {
    let a = h.store();
    let b = h.open_again().await;
    let stream = StreamId::new("yclients:1", "records");
    let first = begin(a, &stream, "run-first").await;
    let second = report(&stream, "run-second");
    match b.begin_run(&second).await {
        Err(SyncError::Busy { message }) => {
            assert!(message.contains("run-first"), "{message}");
            assert!(message.contains("yclients:1/records"), "{message}");
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    // Same store instance, another run: busy as well.
    assert!(matches!(
        a.begin_run(&second).await,
        Err(SyncError::Busy { .. })
    ));
    assert!(ok("run", b.run(&second.id).await).is_none());
    let other = begin(&b, &StreamId::new("yclients:1", "clients"), "run-other").await;
    finish(&b, other).await;
    finish(a, first).await;
    ok("begin_run", b.begin_run(&second).await);
    finish(&b, second).await;
}

/// A run whose process died leaves its lease: the next run takes it over
/// and marks the dead run failed.
pub async fn a_lease_left_by_a_dead_holder_is_taken_over_and_its_run_marked_failed(
    h: &impl Harness,
) {
    let stream = StreamId::new("kennel:x", "boardings");
    {
        let dying = h.open_again().await;
        begin(&dying, &stream, "run-killed").await;
        // Dropped without finish_run, as when its process is killed.
    }
    let next = h.store();
    let run = report(&stream, "run-next");
    // A server may notice a closed session only a moment later.
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
    let killed = ok("run", next.run(&RunId("run-killed".into())).await);
    let Some(killed) = killed else {
        panic!("run-killed is not recorded");
    };
    assert_eq!(killed.status, RunStatus::Failed);
    assert!(killed.finished_at.is_some());
    assert_eq!(
        killed.errors,
        vec!["abandoned: the process ended without finishing the run".to_string()]
    );
    let current = ok("run", next.run(&run.id).await).map(|r| r.status);
    assert_eq!(current, Some(RunStatus::InProgress));
    finish(next, run).await;
}

/// A commit whose last statement fails leaves no records, change log,
/// coverage or run totals; once the fault is gone the same commit works.
pub async fn a_failed_commit_leaves_neither_records_nor_coverage(h: &impl Harness) {
    let store = h.store();
    let stream = StreamId::new("src", "records");
    let run = begin(store, &stream, "r").await;
    let (fail, undo) = h.fail_coverage_inserts();
    h.execute(fail).await;
    let records = vec![
        Record::new("visit", "1", Unit::Day(day("2024-05-01")), json!({"a": 1})),
        Record::new("visit", "2", Unit::Day(day("2024-05-01")), json!({"a": 2})),
    ];
    let covered = days("2024-05-01", "2024-05-01");
    let err = match commit(store, &run, &records, &covered).await {
        Err(e) => e,
        Ok(c) => panic!("the commit succeeded: {c:?}"),
    };
    assert!(matches!(err, SyncError::Fatal { .. }), "{err:?}");
    assert!(err.to_string().contains("disk on fire"), "{err}");
    assert_eq!(h.count("SELECT COUNT(*) FROM records").await, 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM record_changes").await, 0);
    assert!(ok("coverage", store.coverage(&stream).await).is_empty());
    let row = ok("run", store.run(&run.id).await);
    assert_eq!(
        row.map(|r| (r.counts, r.batches_done)),
        Some((RecordCounts::default(), 0)),
        "the run's totals grew without the commit"
    );

    h.execute(undo).await;
    let c = commit_ok(store, &run, &records, &covered).await;
    assert_eq!(c, counts(2, 0, 0, 0));
    assert_eq!(ok("coverage", store.coverage(&stream).await), covered);
    let row = ok("run", store.run(&run.id).await);
    assert_eq!(row.map(|r| r.batches_done), Some(1));
    finish(store, run).await;
}

/// Every commit adds coverage rows; reading the coverage merges them as far
/// as the check times allow (one row per time), and clearing splits ranges.
pub async fn coverage_rows_are_merged_and_clear_splits_ranges(h: &impl Harness) {
    let store = h.store();
    let stream = StreamId::new("src", "records");
    let run = begin(store, &stream, "r").await;
    let first = day("2024-01-01");
    let nth = |i: u64| first + chrono::Days::new(i);
    for i in 0..150u64 {
        let mut c = Coverage::default();
        c.days.insert(Span::single(nth(i)));
        c.keys.insert(Span::single(1000 + i as i64));
        commit_ok(store, &run, &[], &c).await;
    }
    let rows = "SELECT COUNT(*) FROM covered_ranges";
    assert_eq!(h.count(rows).await, 300);
    let coverage = ok("coverage", store.coverage(&stream).await);
    let all_days = Span::new(first, nth(149)).unwrap_or(Span::single(first));
    assert_eq!(coverage.days.spans().collect::<Vec<_>>(), vec![all_days]);
    assert_eq!(
        coverage.keys.spans().collect::<Vec<_>>(),
        vec![Span::new(1000, 1149).unwrap_or(Span::single(1000))]
    );
    // Reading merged the rows: the keys into one; each day keeps its own
    // check time.
    assert_eq!(
        h.count("SELECT COUNT(*) FROM covered_ranges WHERE kind = 'key'")
            .await,
        1
    );
    assert!(h.count(rows).await <= 151, "{} rows", h.count(rows).await);
    assert_eq!(ok("coverage", store.coverage(&stream).await), coverage);
    // Checked again at once: one row for all the days.
    let mut again = Coverage::default();
    again.days.insert(all_days);
    commit_ok(store, &run, &[], &again).await;
    assert_eq!(ok("coverage", store.coverage(&stream).await), coverage);
    assert_eq!(h.count(rows).await, 2);

    let mut clear = Coverage::default();
    clear
        .days
        .insert(Span::new(day("2024-02-01"), day("2024-02-10")).unwrap_or(Span::single(first)));
    clear
        .keys
        .insert(Span::new(0, 1100).unwrap_or(Span::single(0)));
    ok(
        "clear_coverage",
        store.clear_coverage(&stream, &clear).await,
    );
    let after = ok("coverage", store.coverage(&stream).await);
    assert_eq!(
        after.days.spans().collect::<Vec<_>>(),
        vec![
            Span::new(first, day("2024-01-31")).unwrap_or(Span::single(first)),
            Span::new(day("2024-02-11"), nth(149)).unwrap_or(Span::single(first)),
        ]
    );
    assert_eq!(
        after.keys.spans().collect::<Vec<_>>(),
        vec![Span::new(1101, 1149).unwrap_or(Span::single(0))]
    );
    finish(store, run).await;
}

/// Merging coverage rows keeps when each day was last checked.
pub async fn merging_rows_keeps_the_check_times(h: &impl Harness) {
    let store = h.store();
    let stream = StreamId::new("src", "checked");
    let run = begin(store, &stream, "r").await;
    let first = day("2024-03-01");
    let range = Span::new(first, first + chrono::Days::new(99)).unwrap_or(Span::single(first));
    // Many overlapping rows: the whole range, then every day alone, twice.
    let mut all = Coverage::default();
    all.days.insert(range);
    commit_ok(store, &run, &[], &all).await;
    for i in 0..200u64 {
        let mut c = Coverage::default();
        c.days
            .insert(Span::single(first + chrono::Days::new(i % 100)));
        commit_ok(store, &run, &[], &c).await;
    }
    let before = ok("last_checked", store.last_checked(&stream, range).await);
    assert_eq!(before.len(), 100, "{before:?}");
    assert_eq!(h.count("SELECT COUNT(*) FROM covered_ranges").await, 201);
    ok("coverage", store.coverage(&stream).await);
    assert_eq!(h.count("SELECT COUNT(*) FROM covered_ranges").await, 100);
    assert_eq!(
        ok("last_checked", store.last_checked(&stream, range).await),
        before
    );
    finish(store, run).await;
}

/// Records per day, deleted ones left out, for comparison with the source.
pub async fn day_counts_compare_with_the_source(h: &impl Harness) {
    let store = h.store();
    let stream = StreamId::new("kennel:x", "boardings");
    let run = begin(store, &stream, "r").await;
    let records = [
        Record::new(
            "boarding",
            "A-17",
            Unit::Day(day("2024-05-03")),
            json!({"pet": "Rex"}),
        ),
        Record::new(
            "boarding",
            "A-18",
            Unit::Day(day("2024-05-04")),
            json!({"pet": "Mia"}),
        )
        .deleted(true),
    ];
    commit_ok(store, &run, &records, &days("2024-05-01", "2024-05-31")).await;
    let month =
        Span::new(day("2024-05-01"), day("2024-05-31")).unwrap_or(Span::single(day("2024-05-01")));
    let got = ok("day_counts", store.day_counts(&stream, month).await);
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        vec![(day("2024-05-03"), 1)]
    );
    finish(store, run).await;
}

/// A batch of new and stored records, committed after batches of stored
/// ones (the store then looks up first) and after new ones (it inserts
/// first): the counts and the history are the same either way.
pub async fn both_commit_paths_count_alike(h: &impl Harness) {
    let store = h.store();
    let stream = StreamId::new("src", "paths");
    let run = begin(store, &stream, "r").await;
    let rec = |id: &str, n: i64| {
        Record::new("visit", id, Unit::Day(day("2024-01-01")), json!({ "n": n }))
    };
    let covered = days("2024-01-01", "2024-01-01");
    // New records: the next batch inserts first.
    let c = commit_ok(store, &run, &[rec("a", 1), rec("b", 2)], &covered).await;
    assert_eq!(c, counts(2, 0, 0, 0));
    let mixed = [
        rec("a", 1),
        rec("b", 20),
        rec("c", 3),
        rec("d", 4).deleted(true),
    ];
    assert_eq!(
        commit_ok(store, &run, &mixed, &covered).await,
        counts(2, 1, 1, 0)
    );
    // Mostly stored: the next batch looks up first.
    let mixed = [
        rec("a", 1),
        rec("b", 20),
        rec("e", 5),
        rec("c", 30).deleted(true),
    ];
    assert_eq!(
        commit_ok(store, &run, &mixed, &covered).await,
        counts(1, 0, 2, 1)
    );
    let row = ok("run", store.run(&run.id).await);
    assert_eq!(
        row.map(|r| (r.counts, r.batches_done)),
        Some((counts(5, 1, 3, 1), 3)),
        "the run's totals are the commits' counts"
    );
    finish(store, run).await;
    let listed: Vec<(String, ChangeKind)> =
        ok("run_changes", store.run_changes(&RunId("r".into())).await)
            .into_iter()
            .map(|c| (c.external_id, c.kind))
            .collect();
    let want: Vec<(String, ChangeKind)> = [
        ("a", ChangeKind::Created),
        ("b", ChangeKind::Created),
        ("c", ChangeKind::Created),
        ("d", ChangeKind::Created),
        ("e", ChangeKind::Created),
        ("b", ChangeKind::Updated),
        ("c", ChangeKind::Deleted),
    ]
    .into_iter()
    .map(|(id, k)| (id.to_owned(), k))
    .collect();
    assert_eq!(listed, want);
}

/// A boarding as the kennel source stores it from the real site's detail
/// page (the payload of `sync-source-scraper`'s `boarding_payload`).
pub fn kennel_detail_record() -> Record {
    let payload = json!({
        "appointment_id": "C63QgH5K", "service_type": "Boarding (Nights)",
        "status": "Completed", "pets": ["Rex", "Mia"],
        "client": {"name": "John Smith", "email": "john@example.com",
                   "phone": "+1 555 0100", "address": null},
        "check_in": "2025-02-13T15:00:00Z", "check_out": "2025-02-18T17:00:00Z",
        "check_in_day": "2025-02-13", "check_in_label": null, "check_out_label": null,
        "dates_from": "timestamps", "duration": "5 nights",
        "price": {"total_cents": 75000, "line_items": [
            {"service": "Boarding", "rate_cents": 15000, "quantity": 5.0,
             "amount_cents": 75000, "per_pet": []}]},
        "notes": "Feed twice a day", "fields": {"Medications": "none"}
    });
    Record::new(
        "boarding",
        "C63QgH5K",
        Unit::Day(NaiveDate::from_ymd_opt(2025, 2, 13).unwrap_or_default()),
        payload,
    )
    .occurred_at(
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2025, 2, 13, 15, 0, 0)
            .single()
            .unwrap_or_default(),
    )
}
