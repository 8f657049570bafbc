//! Conformance checks every [`Store`] and [`CheckpointStore`] must pass.
//!
//! Each check is a plain `async fn` taking the store twice, as a [`Store`]
//! and as a [`CheckpointStore`] (usually the same object), and panics with a
//! message naming the check and what differed. Every check works on its own
//! stream (a random source name), so all of them can share one store, run in
//! any order and run again on the same database.
//!
//! ```
//! # async fn conformance() {
//! // In a store crate's tests: `let store = MyStore::open(...).await?;`
//! let store = sync_core::MemoryStore::new();
//! sync_core::testkit::run_all(&store, &store).await;
//! # }
//! ```
//!
//! What the checks pin down beyond the trait documents:
//! - every commit happens inside a run begun with
//!   [`CheckpointStore::begin_run`] (the engine does so), so a store may
//!   reference the run table from its change log;
//! - a record seen for the first time counts as created (with a `Created`
//!   change log entry without fields), even when it is already marked
//!   deleted;
//! - a record that was deleted and comes back not deleted counts as updated;
//! - a record committed again with the same payload but another unit (it
//!   moved to another day, or from a key to a day) counts as updated and is
//!   stored under its new unit, so per-day counts follow it;
//! - a batch holding a key twice stores its last version, counted once;
//! - timestamps need only survive to the second; `last_changed` must be set
//!   when a record is created or changed and kept when it is unchanged.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::coverage::checkpoint::Coverage;
use crate::coverage::interval::{DayRange, Span};
use crate::domain::record::{diff_payloads, ChangeKind, Record, StoredRecord, StreamId, Unit};
use crate::domain::run::{RecordCounts, RunId, RunReport, RunStatus, SyncMode};
use crate::error::{Result, SyncError};
use crate::limit::budget::BudgetStore;
use crate::limit::limits::RateLimits;
use crate::limit::schedule::{Schedule, SlowDown};
use crate::plan::target::{Batch, BatchSpan};
use crate::store::api::{
    BatchCommit, CheckpointStore, ClaimId, ExistingQuery, Hint, HintQueue, PendingHints,
    RunProgress, Store, WorkQueue, MAX_ATTEMPTS,
};

/// Runs every check, one after the other.
pub async fn run_all(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    idempotent_recommit(store, checkpoints).await;
    checkpoint_with_data(store, checkpoints).await;
    empty_commit_marks_covered(store, checkpoints).await;
    existing_filters(store, checkpoints).await;
    change_detection_and_log(store, checkpoints).await;
    deleted_marking(store, checkpoints).await;
    moved_record_is_updated(store, checkpoints).await;
    duplicate_keys_in_a_batch(store, checkpoints).await;
    coverage_after_partial_runs(store, checkpoints).await;
    clear_coverage(store, checkpoints).await;
    run_history(store, checkpoints).await;
    lease(store, checkpoints).await;
    day_counts(store, checkpoints).await;
    sources_do_not_collide(store, checkpoints).await;
    payload_round_trip(store, checkpoints).await;
    progress_in_the_run_row(store, checkpoints).await;
    batch_in_parts(store, checkpoints).await;
    last_checked_days(store, checkpoints).await;
}

// ---------------------------------------------------------------- helpers

const ENTITY: &str = "visit";

fn unique_stream(check: &str) -> StreamId {
    StreamId::new(
        format!("testkit-{check}-{:08x}", rand::random::<u32>()),
        "records",
    )
}

/// Day `n` of a fixed month (day 1 is 2024-03-01; DST starts in Europe on
/// the 31st, which a store must not care about).
fn day(n: u64) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap_or(NaiveDate::MIN);
    first
        .checked_add_days(Days::new(n.saturating_sub(1)))
        .unwrap_or(first)
}

fn day_span(first: u64, last: u64) -> DayRange {
    match Span::new(day(first), day(last)) {
        Some(span) => span,
        None => panic!("testkit: bad day range {first}..={last}"),
    }
}

fn days(first: u64, last: u64) -> Coverage {
    let mut c = Coverage::default();
    c.days.insert(day_span(first, last));
    c
}

fn keys(first: i64, last: i64) -> Coverage {
    let mut c = Coverage::default();
    if let Some(span) = Span::new(first, last) {
        c.keys.insert(span);
    }
    c
}

fn visit(id: &str, on: u64, payload: Value) -> Record {
    Record::new(ENTITY, id, Unit::Day(day(on)), payload)
}

fn counts(created: u64, updated: u64, unchanged: u64, deleted: u64) -> RecordCounts {
    RecordCounts {
        created,
        updated,
        unchanged,
        deleted,
    }
}

fn ok<T>(check: &str, what: &str, r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("testkit::{check}: {what} failed: {e} ({e:?})"),
    }
}

fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// Begins a run on `stream` as the engine would, started `at`.
async fn begin_at(
    check: &str,
    checkpoints: &dyn CheckpointStore,
    stream: &StreamId,
    at: DateTime<Utc>,
) -> RunReport {
    let report = RunReport::start(
        RunId::generate(at),
        stream.clone(),
        SyncMode::Full,
        "testkit",
        at,
    );
    ok(check, "begin_run", checkpoints.begin_run(&report).await);
    report
}

async fn begin(check: &str, checkpoints: &dyn CheckpointStore, stream: &StreamId) -> RunReport {
    begin_at(check, checkpoints, stream, whole_seconds(Utc::now())).await
}

async fn finish(check: &str, checkpoints: &dyn CheckpointStore, mut report: RunReport) {
    report.status = RunStatus::Completed;
    report.finished_at = Some(whole_seconds(Utc::now()));
    ok(check, "finish_run", checkpoints.finish_run(&report).await);
}

async fn commit(
    check: &str,
    store: &dyn Store,
    run: &RunReport,
    records: &[Record],
    covered: &Coverage,
) -> RecordCounts {
    commit_with(check, store, run, records, covered, RunProgress::default()).await
}

async fn commit_with(
    check: &str,
    store: &dyn Store,
    run: &RunReport,
    records: &[Record],
    covered: &Coverage,
    progress: RunProgress,
) -> RecordCounts {
    let batch = BatchCommit {
        run: &run.id,
        stream: &run.stream,
        records,
        covered,
        progress,
        claim: None,
        finishes_batch: true,
    };
    ok(check, "commit", store.commit(batch).await)
}

/// Commits `records` with `covered` in a run of its own; returns the counts
/// and the run (finished).
async fn commit_in_run(
    check: &str,
    store: &dyn Store,
    checkpoints: &dyn CheckpointStore,
    stream: &StreamId,
    records: &[Record],
    covered: &Coverage,
) -> (RecordCounts, RunReport) {
    let run = begin(check, checkpoints, stream).await;
    let c = commit(check, store, &run, records, covered).await;
    finish(check, checkpoints, run.clone()).await;
    (c, run)
}

async fn stored_by_ids(
    check: &str,
    store: &dyn Store,
    stream: &StreamId,
    entity: &str,
    ids: &[&str],
) -> Vec<StoredRecord> {
    let query = ExistingQuery::ByIds {
        entity: entity.into(),
        ids: ids.iter().map(|s| s.to_string()).collect(),
    };
    let mut found = ok(
        check,
        "existing(ByIds)",
        store.existing(stream, &query).await,
    );
    found.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    found
}

async fn stored_in_days(
    check: &str,
    store: &dyn Store,
    stream: &StreamId,
    entity: &str,
    first: u64,
    last: u64,
) -> Vec<StoredRecord> {
    let range = day_span(first, last);
    let query = ExistingQuery::InDays {
        entity: entity.into(),
        range,
    };
    let mut found = ok(
        check,
        "existing(InDays)",
        store.existing(stream, &query).await,
    );
    found.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    found
}

/// Asserts that `stored` holds exactly `records` (sorted by id), field by
/// field, with `last_changed` set to a plausible time.
fn assert_stored(check: &str, stored: &[StoredRecord], records: &[&Record]) {
    let mut want: Vec<&Record> = records.to_vec();
    want.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    let ids = |s: &[StoredRecord]| s.iter().map(|r| r.external_id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(stored),
        want.iter()
            .map(|r| r.external_id.clone())
            .collect::<Vec<_>>(),
        "testkit::{check}: stored records (by external id) differ from the committed ones"
    );
    let now = Utc::now();
    for (got, want) in stored.iter().zip(want) {
        let id = &want.external_id;
        assert_eq!(got.entity, want.entity, "testkit::{check}: entity of {id}");
        assert_eq!(got.unit, want.unit, "testkit::{check}: unit of {id}");
        assert_eq!(
            got.payload, want.payload,
            "testkit::{check}: payload of {id}"
        );
        assert_eq!(got.hash, want.hash, "testkit::{check}: hash of {id}");
        assert_eq!(
            got.deleted, want.deleted,
            "testkit::{check}: deleted flag of {id}"
        );
        let age = now - got.last_changed;
        assert!(
            age.num_hours().abs() < 24,
            "testkit::{check}: last_changed of {id} is {} (now {now}): not set?",
            got.last_changed
        );
    }
}

async fn assert_coverage(
    check: &str,
    checkpoints: &dyn CheckpointStore,
    stream: &StreamId,
    want: &Coverage,
) {
    let got = ok(check, "coverage", checkpoints.coverage(stream).await);
    assert_eq!(
        &got, want,
        "testkit::{check}: coverage of {stream} (left: stored, right: expected)"
    );
}

// ----------------------------------------------------------------- checks

/// Committing the same records twice creates nothing the second time: zero
/// created or updated, everything unchanged, no change log entries, no
/// duplicate rows.
pub async fn idempotent_recommit(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "idempotent_recommit";
    let stream = unique_stream(CHECK);
    let records = vec![
        visit("v1", 1, json!({"client": "Ann", "price": 100})),
        visit("v2", 1, json!({"client": "Bob", "price": 200})),
        visit("v3", 2, json!({"client": "Cid", "price": 300})),
        Record::new("client", "c1", Unit::Key(1), json!({"name": "Ann"})),
    ];
    let mut covered = days(1, 2);
    covered.extend(&keys(1, 1));
    let (first, _) = commit_in_run(CHECK, store, checkpoints, &stream, &records, &covered).await;
    assert_eq!(first, counts(4, 0, 0, 0), "testkit::{CHECK}: first commit");
    let (second, run2) =
        commit_in_run(CHECK, store, checkpoints, &stream, &records, &covered).await;
    assert_eq!(
        second,
        counts(0, 0, 4, 0),
        "testkit::{CHECK}: second commit of the same records must count all unchanged"
    );
    let changes = ok(
        CHECK,
        "run_changes",
        checkpoints.run_changes(&run2.id).await,
    );
    assert!(
        changes.is_empty(),
        "testkit::{CHECK}: an identical re-commit logged changes: {changes:?}"
    );
    let visits = stored_in_days(CHECK, store, &stream, ENTITY, 1, 2).await;
    assert_stored(CHECK, &visits, &[&records[0], &records[1], &records[2]]);
    let by_id = stored_by_ids(CHECK, store, &stream, ENTITY, &["v1", "v2", "v3"]).await;
    assert_stored(CHECK, &by_id, &[&records[0], &records[1], &records[2]]);
    let clients = stored_by_ids(CHECK, store, &stream, "client", &["c1"]).await;
    assert_stored(CHECK, &clients, &[&records[3]]);
    assert_coverage(CHECK, checkpoints, &stream, &covered).await;
}

/// After a commit, the coverage holds exactly the committed units and
/// `existing` returns the committed records.
pub async fn checkpoint_with_data(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "checkpoint_with_data";
    let stream = unique_stream(CHECK);
    assert_coverage(CHECK, checkpoints, &stream, &Coverage::default()).await;
    let records = vec![
        visit("a", 3, json!({"n": 1})),
        visit("b", 4, json!({"n": 2})),
        visit("c", 5, json!({"n": 3})),
    ];
    let covered = days(3, 5);
    let (c, _) = commit_in_run(CHECK, store, checkpoints, &stream, &records, &covered).await;
    assert_eq!(c, counts(3, 0, 0, 0), "testkit::{CHECK}: counts");
    assert_coverage(CHECK, checkpoints, &stream, &covered).await;
    let stored = stored_in_days(CHECK, store, &stream, ENTITY, 3, 5).await;
    assert_stored(CHECK, &stored, &records.iter().collect::<Vec<_>>());
}

/// A commit without records still marks its units covered (a day without
/// visits is a day done).
pub async fn empty_commit_marks_covered(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "empty_commit_marks_covered";
    let stream = unique_stream(CHECK);
    let mut covered = days(10, 12);
    covered.extend(&keys(100, 199));
    let (c, run) = commit_in_run(CHECK, store, checkpoints, &stream, &[], &covered).await;
    assert_eq!(
        c,
        RecordCounts::default(),
        "testkit::{CHECK}: counts of an empty commit"
    );
    assert_coverage(CHECK, checkpoints, &stream, &covered).await;
    assert!(
        stored_in_days(CHECK, store, &stream, ENTITY, 10, 12)
            .await
            .is_empty(),
        "testkit::{CHECK}: an empty commit stored records"
    );
    let changes = ok(CHECK, "run_changes", checkpoints.run_changes(&run.id).await);
    assert!(
        changes.is_empty(),
        "testkit::{CHECK}: changes logged: {changes:?}"
    );
}

/// `existing` filters by entity, by id and by day range (both ends
/// included), ignores unknown ids and returns deleted records too.
pub async fn existing_filters(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "existing_filters";
    let stream = unique_stream(CHECK);
    let records = vec![
        visit("d1", 1, json!({"x": 1})),
        visit("d2", 2, json!({"x": 2})),
        visit("d3", 3, json!({"x": 3})).deleted(true),
        visit("d4", 4, json!({"x": 4})),
        Record::new("boarding", "d2", Unit::Day(day(2)), json!({"other": true})),
        Record::new("client", "k7", Unit::Key(7), json!({"name": "Kay"})),
    ];
    commit_in_run(CHECK, store, checkpoints, &stream, &records, &days(1, 4)).await;
    let mid = stored_in_days(CHECK, store, &stream, ENTITY, 2, 3).await;
    assert_stored(CHECK, &mid, &[&records[1], &records[2]]);
    let boardings = stored_in_days(CHECK, store, &stream, "boarding", 1, 4).await;
    assert_stored(CHECK, &boardings, &[&records[4]]);
    let by_id = stored_by_ids(CHECK, store, &stream, ENTITY, &["d4", "nope", "d1"]).await;
    assert_stored(CHECK, &by_id, &[&records[0], &records[3]]);
    let none = stored_by_ids(CHECK, store, &stream, ENTITY, &[]).await;
    assert!(
        none.is_empty(),
        "testkit::{CHECK}: no ids asked, got {none:?}"
    );
    let key_records = stored_in_days(CHECK, store, &stream, "client", 1, 31).await;
    assert!(
        key_records.is_empty(),
        "testkit::{CHECK}: a record of a key unit was returned for a day range"
    );
    let clients = stored_by_ids(CHECK, store, &stream, "client", &["k7"]).await;
    assert_stored(CHECK, &clients, &[&records[5]]);
}

/// A changed field is counted as updated and logged with its JSON pointer
/// and both values; a creation is logged as created; a record whose hash is
/// unchanged (only volatile fields differ) is neither counted nor rewritten;
/// a record that moved to another day is found under the new day.
pub async fn change_detection_and_log(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "change_detection_and_log";
    let stream = unique_stream(CHECK);
    let volatile = ["seen_at"];
    let v1 = |id: &str, on: u64, phone: &str, seen: &str| {
        Record::with_volatile(
            ENTITY,
            id,
            Unit::Day(day(on)),
            json!({"status": "booked", "client": {"name": "Ann", "phone": phone}, "seen_at": seen}),
            &volatile,
        )
    };
    let first = vec![v1("a", 1, "111", "10:00"), v1("b", 1, "222", "10:00")];
    let (c, run1) = commit_in_run(CHECK, store, checkpoints, &stream, &first, &days(1, 1)).await;
    assert_eq!(c, counts(2, 0, 0, 0), "testkit::{CHECK}: first commit");
    let mut created = ok(
        CHECK,
        "run_changes",
        checkpoints.run_changes(&run1.id).await,
    );
    created.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    assert_eq!(
        created.len(),
        2,
        "testkit::{CHECK}: creations logged: {created:?}"
    );
    for (change, id) in created.iter().zip(["a", "b"]) {
        assert_eq!(
            (
                change.entity.as_str(),
                change.external_id.as_str(),
                change.kind
            ),
            (ENTITY, id, ChangeKind::Created),
            "testkit::{CHECK}: creation entry"
        );
        assert!(
            change.fields.is_empty(),
            "testkit::{CHECK}: a creation lists no fields, got {:?}",
            change.fields
        );
    }

    // "a": phone changed and moved to day 2; "b": only the volatile field.
    let mut moved = Record::with_volatile(
        ENTITY,
        "a",
        Unit::Day(day(2)),
        json!({"status": "done", "client": {"name": "Ann", "phone": "999"}, "seen_at": "11:00"}),
        &volatile,
    );
    moved.occurred_at = Some(whole_seconds(Utc::now()));
    let same_b = v1("b", 1, "222", "11:00");
    let second = vec![moved.clone(), same_b];
    let (c, run2) = commit_in_run(CHECK, store, checkpoints, &stream, &second, &days(1, 2)).await;
    assert_eq!(c, counts(0, 1, 1, 0), "testkit::{CHECK}: second commit");
    let changes = ok(
        CHECK,
        "run_changes",
        checkpoints.run_changes(&run2.id).await,
    );
    assert_eq!(
        changes.len(),
        1,
        "testkit::{CHECK}: one update logged, got {changes:?}"
    );
    let change = &changes[0];
    assert_eq!(
        (
            change.entity.as_str(),
            change.external_id.as_str(),
            change.kind
        ),
        (ENTITY, "a", ChangeKind::Updated),
        "testkit::{CHECK}: update entry"
    );
    let mut fields = change.fields.clone();
    fields.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(
        fields,
        diff_payloads(&first[0].payload, &moved.payload),
        "testkit::{CHECK}: changed fields (path, old, new)"
    );
    assert!(
        fields
            .iter()
            .any(|f| f.path == "/client/phone" && f.old == json!("111") && f.new == json!("999")),
        "testkit::{CHECK}: /client/phone 111 -> 999 missing from {fields:?}"
    );

    // Unchanged "b" keeps its stored payload (not rewritten with 11:00).
    let day1 = stored_in_days(CHECK, store, &stream, ENTITY, 1, 1).await;
    assert_stored(CHECK, &day1, &[&first[1]]);
    let day2 = stored_in_days(CHECK, store, &stream, ENTITY, 2, 2).await;
    assert_stored(CHECK, &day2, &[&moved]);
}

/// A record newly marked deleted counts as deleted (logged as deleted), stays
/// visible through `existing` with its flag, and counts as unchanged when
/// seen deleted again; coming back counts as updated; a record first seen
/// deleted counts as created.
pub async fn deleted_marking(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "deleted_marking";
    let stream = unique_stream(CHECK);
    let a = visit("a", 1, json!({"status": "booked"}));
    let b = visit("b", 1, json!({"status": "booked"}));
    let covered = days(1, 1);
    commit_in_run(
        CHECK,
        store,
        checkpoints,
        &stream,
        &[a.clone(), b.clone()],
        &covered,
    )
    .await;

    let a_deleted = a.clone().deleted(true);
    let (c, run) = commit_in_run(
        CHECK,
        store,
        checkpoints,
        &stream,
        &[a_deleted.clone(), b.clone()],
        &covered,
    )
    .await;
    assert_eq!(c, counts(0, 0, 1, 1), "testkit::{CHECK}: marking deleted");
    let changes = ok(CHECK, "run_changes", checkpoints.run_changes(&run.id).await);
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.external_id.as_str(), c.kind))
            .collect::<Vec<_>>(),
        vec![("a", ChangeKind::Deleted)],
        "testkit::{CHECK}: change log of the deletion"
    );
    let stored = stored_in_days(CHECK, store, &stream, ENTITY, 1, 1).await;
    assert_stored(CHECK, &stored, &[&a_deleted, &b]);

    let (c, _) = commit_in_run(
        CHECK,
        store,
        checkpoints,
        &stream,
        std::slice::from_ref(&a_deleted),
        &covered,
    )
    .await;
    assert_eq!(
        c,
        counts(0, 0, 1, 0),
        "testkit::{CHECK}: deleted again is unchanged"
    );

    let (c, run) = commit_in_run(
        CHECK,
        store,
        checkpoints,
        &stream,
        std::slice::from_ref(&a),
        &covered,
    )
    .await;
    assert_eq!(
        c,
        counts(0, 1, 0, 0),
        "testkit::{CHECK}: a deleted record that came back"
    );
    let changes = ok(CHECK, "run_changes", checkpoints.run_changes(&run.id).await);
    assert_eq!(
        changes.iter().map(|c| c.kind).collect::<Vec<_>>(),
        vec![ChangeKind::Updated],
        "testkit::{CHECK}: change log of the return"
    );
    let stored = stored_in_days(CHECK, store, &stream, ENTITY, 1, 1).await;
    assert_stored(CHECK, &stored, &[&a, &b]);

    let born_deleted = visit("c", 1, json!({"status": "cancelled"})).deleted(true);
    let (c, run) = commit_in_run(
        CHECK,
        store,
        checkpoints,
        &stream,
        std::slice::from_ref(&born_deleted),
        &covered,
    )
    .await;
    assert_eq!(
        c,
        counts(1, 0, 0, 0),
        "testkit::{CHECK}: first seen deleted is created"
    );
    let changes = ok(CHECK, "run_changes", checkpoints.run_changes(&run.id).await);
    assert_eq!(
        changes.iter().map(|c| c.kind).collect::<Vec<_>>(),
        vec![ChangeKind::Created],
        "testkit::{CHECK}: change log of a record first seen deleted"
    );
    let stored = stored_by_ids(CHECK, store, &stream, ENTITY, &["c"]).await;
    assert_stored(CHECK, &stored, &[&born_deleted]);
}

/// A record committed again with the same payload (same hash) but another
/// unit counts as updated, with an `Updated` change log entry without
/// fields; `existing` and `day_counts` then show it under its new unit, and
/// committing it there again counts as unchanged.
pub async fn moved_record_is_updated(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "moved_record_is_updated";
    let stream = unique_stream(CHECK);
    let payload = json!({"client": "Ann", "status": "booked"});
    let on_day_1 = visit("m", 1, payload.clone());
    let on_day_2 = visit("m", 2, payload.clone());
    let as_key = Record::new(ENTITY, "m", Unit::Key(5), payload);
    assert_eq!(
        on_day_1.hash, on_day_2.hash,
        "testkit::{CHECK}: same payload"
    );
    let mut covered = days(1, 2);
    covered.extend(&keys(5, 5));
    let commit_one = |record: &Record| {
        let records = vec![record.clone()];
        let covered = covered.clone();
        let stream = stream.clone();
        async move { commit_in_run(CHECK, store, checkpoints, &stream, &records, &covered).await }
    };
    let count_days = || async {
        ok(
            CHECK,
            "day_counts",
            store.day_counts(&stream, day_span(1, 2)).await,
        )
    };

    let (c, _) = commit_one(&on_day_1).await;
    assert_eq!(c, counts(1, 0, 0, 0), "testkit::{CHECK}: first commit");

    let (c, run) = commit_one(&on_day_2).await;
    assert_eq!(
        c,
        counts(0, 1, 0, 0),
        "testkit::{CHECK}: same payload on another day must count as updated"
    );
    let changes = ok(CHECK, "run_changes", checkpoints.run_changes(&run.id).await);
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.external_id.as_str(), c.kind, c.fields.len()))
            .collect::<Vec<_>>(),
        vec![("m", ChangeKind::Updated, 0)],
        "testkit::{CHECK}: change log of the move (no field changed)"
    );
    let day1 = stored_in_days(CHECK, store, &stream, ENTITY, 1, 1).await;
    assert_stored(CHECK, &day1, &[]);
    let day2 = stored_in_days(CHECK, store, &stream, ENTITY, 2, 2).await;
    assert_stored(CHECK, &day2, &[&on_day_2]);
    let want: BTreeMap<NaiveDate, u64> = [(day(2), 1)].into_iter().collect();
    assert_eq!(
        count_days().await,
        want,
        "testkit::{CHECK}: day_counts after the move"
    );

    let (c, _) = commit_one(&on_day_2).await;
    assert_eq!(
        c,
        counts(0, 0, 1, 0),
        "testkit::{CHECK}: committed again on its new day"
    );

    let (c, _) = commit_one(&as_key).await;
    assert_eq!(
        c,
        counts(0, 1, 0, 0),
        "testkit::{CHECK}: same payload under a key instead of a day"
    );
    let by_id = stored_by_ids(CHECK, store, &stream, ENTITY, &["m"]).await;
    assert_stored(CHECK, &by_id, &[&as_key]);
    let in_days = stored_in_days(CHECK, store, &stream, ENTITY, 1, 2).await;
    assert_stored(CHECK, &in_days, &[]);
    assert!(
        count_days().await.is_empty(),
        "testkit::{CHECK}: a record moved to a key still counted on a day"
    );
}

/// A batch holding the same key twice stores the last version, counted
/// and logged once.
pub async fn duplicate_keys_in_a_batch(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "duplicate_keys_in_a_batch";
    let stream = unique_stream(CHECK);
    let last_a = visit("a", 2, json!({"v": 3}));
    let records = vec![
        visit("a", 1, json!({"v": 1})),
        visit("b", 1, json!({"v": 2})),
        last_a.clone(),
    ];
    let (c, run) = commit_in_run(CHECK, store, checkpoints, &stream, &records, &days(1, 2)).await;
    assert_eq!(
        c,
        counts(2, 0, 0, 0),
        "testkit::{CHECK}: a key twice in one batch is one record"
    );
    let mut changes = ok(CHECK, "run_changes", checkpoints.run_changes(&run.id).await);
    changes.sort_by(|x, y| x.external_id.cmp(&y.external_id));
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.external_id.as_str(), c.kind))
            .collect::<Vec<_>>(),
        vec![("a", ChangeKind::Created), ("b", ChangeKind::Created)],
        "testkit::{CHECK}: change log"
    );
    let stored = stored_by_ids(CHECK, store, &stream, ENTITY, &["a"]).await;
    assert_stored(CHECK, &stored, &[&last_a]);
}

/// Several commits of separate day and key ranges merge into one coverage
/// with the right gaps; coverage is kept per stream.
pub async fn coverage_after_partial_runs(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "coverage_after_partial_runs";
    let stream = unique_stream(CHECK);
    for covered in [
        days(1, 3),
        days(7, 9),
        keys(1, 10),
        days(4, 4),
        keys(21, 30),
    ] {
        let run = begin(CHECK, checkpoints, &stream).await;
        commit(CHECK, store, &run, &[], &covered).await;
        finish(CHECK, checkpoints, run).await;
    }
    let got = ok(CHECK, "coverage", checkpoints.coverage(&stream).await);
    let day_spans: Vec<_> = got.days.spans().collect();
    let want_days = vec![day_span(1, 4), day_span(7, 9)];
    assert_eq!(
        day_spans, want_days,
        "testkit::{CHECK}: merged day coverage"
    );
    let key_spans: Vec<_> = got.keys.spans().collect();
    assert_eq!(
        key_spans,
        vec![
            Span { first: 1, last: 10 },
            Span {
                first: 21,
                last: 30
            }
        ],
        "testkit::{CHECK}: merged key coverage"
    );
    assert_eq!(
        got.days.gaps(day_span(1, 10)),
        vec![day_span(5, 6), day_span(10, 10)],
        "testkit::{CHECK}: gaps of days 1..=10"
    );
    assert_eq!(
        got.keys.gaps(Span { first: 1, last: 30 }),
        vec![Span {
            first: 11,
            last: 20
        }],
        "testkit::{CHECK}: gaps of keys 1..=30"
    );
    // Same source, another stream: its own (empty) coverage.
    let sibling = StreamId::new(stream.source.clone(), "other");
    assert_coverage(CHECK, checkpoints, &sibling, &Coverage::default()).await;
}

/// `clear_coverage` forgets exactly the given units and keeps the records.
pub async fn clear_coverage(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "clear_coverage";
    let stream = unique_stream(CHECK);
    let records = vec![
        visit("x", 3, json!({"n": 3})),
        visit("y", 8, json!({"n": 8})),
    ];
    let mut covered = days(1, 10);
    covered.extend(&keys(1, 5));
    commit_in_run(CHECK, store, checkpoints, &stream, &records, &covered).await;

    let mut clear = days(3, 4);
    clear.extend(&keys(2, 2));
    clear.extend(&days(20, 25)); // not covered: nothing to forget
    ok(
        CHECK,
        "clear_coverage",
        checkpoints.clear_coverage(&stream, &clear).await,
    );

    let mut want = days(1, 2);
    want.extend(&days(5, 10));
    want.extend(&keys(1, 1));
    want.extend(&keys(3, 5));
    assert_coverage(CHECK, checkpoints, &stream, &want).await;
    let stored = stored_in_days(CHECK, store, &stream, ENTITY, 1, 10).await;
    assert_stored(CHECK, &stored, &[&records[0], &records[1]]);

    // Clearing a stream that has no coverage is not an error.
    let empty = unique_stream(CHECK);
    ok(
        CHECK,
        "clear_coverage (empty)",
        checkpoints.clear_coverage(&empty, &clear).await,
    );
    assert_coverage(CHECK, checkpoints, &empty, &Coverage::default()).await;
}

fn assert_report_eq(check: &str, got: &RunReport, want: &RunReport) {
    let close = |a: DateTime<Utc>, b: DateTime<Utc>| (a - b).num_milliseconds().abs() < 1000;
    assert!(
        close(got.started_at, want.started_at),
        "testkit::{check}: started_at of {} is {}, expected {}",
        want.id,
        got.started_at,
        want.started_at
    );
    match (got.finished_at, want.finished_at) {
        (None, None) => {}
        (Some(a), Some(b)) if close(a, b) => {}
        (a, b) => panic!(
            "testkit::{check}: finished_at of {} is {a:?}, expected {b:?}",
            want.id
        ),
    }
    let mut normalized = got.clone();
    normalized.started_at = want.started_at;
    normalized.finished_at = want.finished_at;
    assert_eq!(&normalized, want, "testkit::{check}: run report round trip");
}

/// Runs are recorded when begun (in progress) and when finished, and read
/// back exactly: newest first, filtered by stream, limit honoured, by id.
pub async fn run_history(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "run_history";
    let _ = store;
    let stream = unique_stream(CHECK);
    let other = unique_stream(CHECK);
    let now = whole_seconds(Utc::now());
    let hours_ago = |h: i64| now - chrono::Duration::hours(h);

    let endings = [
        (RunStatus::Failed, 3),
        (RunStatus::Partial, 2),
        (RunStatus::Completed, 1),
    ];
    let mut finished = Vec::new();
    for (i, (status, ago)) in endings.into_iter().enumerate() {
        let n = i as u64 + 1;
        let mut report = RunReport::start(
            RunId::generate(hours_ago(ago)),
            stream.clone(),
            if i == 2 {
                SyncMode::Delta
            } else {
                SyncMode::Full
            },
            format!("days 2024-03-01..=2024-03-{:02}", n * 10),
            hours_ago(ago),
        );
        ok(CHECK, "begin_run", checkpoints.begin_run(&report).await);
        let in_progress = ok(CHECK, "run", checkpoints.run(&report.id).await);
        let Some(in_progress) = in_progress else {
            panic!(
                "testkit::{CHECK}: run {} not found after begin_run",
                report.id
            );
        };
        assert_report_eq(CHECK, &in_progress, &report);
        assert_eq!(
            in_progress.status,
            RunStatus::InProgress,
            "testkit::{CHECK}: status"
        );

        report.status = status;
        report.finished_at = Some(hours_ago(ago) + chrono::Duration::minutes(10 * n as i64));
        report.counts = counts(10 * n, n, 100 * n, n + 1);
        report.batches_done = 5 * n;
        report.batches_failed = n - 1;
        report.requests = 1000 * n + 7;
        report.rate_limited = 3 * n;
        report.retries = 4 * n;
        report.errors = (0..n - 1)
            .map(|j| {
                format!("batch {j} (days 2024-03-0{j}) failed [bad_data]: «неверно» \"quoted\" 🐕")
            })
            .collect();
        ok(CHECK, "finish_run", checkpoints.finish_run(&report).await);
        finished.push(report);
    }
    let unrelated = begin(CHECK, checkpoints, &other).await;
    finish(CHECK, checkpoints, unrelated.clone()).await;

    let newest_first: Vec<&RunReport> = finished.iter().rev().collect();
    let all = ok(CHECK, "runs", checkpoints.runs(Some(&stream), 10).await);
    assert_eq!(
        all.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        newest_first
            .iter()
            .map(|r| r.id.clone())
            .collect::<Vec<_>>(),
        "testkit::{CHECK}: runs of the stream, newest first"
    );
    for (got, want) in all.iter().zip(&newest_first) {
        assert_report_eq(CHECK, got, want);
    }
    let two = ok(
        CHECK,
        "runs(limit 2)",
        checkpoints.runs(Some(&stream), 2).await,
    );
    assert_eq!(
        two.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        vec![finished[2].id.clone(), finished[1].id.clone()],
        "testkit::{CHECK}: limit 2"
    );
    let any = ok(CHECK, "runs(None)", checkpoints.runs(None, 3).await);
    assert!(
        any.len() <= 3,
        "testkit::{CHECK}: limit 3 gave {} runs",
        any.len()
    );
    assert!(
        any.windows(2).all(|w| w[0].started_at >= w[1].started_at),
        "testkit::{CHECK}: runs(None) not newest first"
    );
    let many = ok(
        CHECK,
        "runs(None, 10000)",
        checkpoints.runs(None, 10_000).await,
    );
    for want in finished.iter().chain([&unrelated]) {
        assert!(
            many.iter().any(|r| r.id == want.id),
            "testkit::{CHECK}: run {} missing from runs(None)",
            want.id
        );
    }
    for want in &finished {
        let got = ok(CHECK, "run", checkpoints.run(&want.id).await);
        let Some(got) = got else {
            panic!("testkit::{CHECK}: run {} not found", want.id);
        };
        assert_report_eq(CHECK, &got, want);
    }
    let unknown = RunId(format!("testkit-unknown-{:08x}", rand::random::<u32>()));
    assert!(
        ok(CHECK, "run(unknown)", checkpoints.run(&unknown).await).is_none(),
        "testkit::{CHECK}: an unknown run id was found"
    );
    let none = ok(
        CHECK,
        "runs(limit 0)",
        checkpoints.runs(Some(&stream), 0).await,
    );
    assert!(none.is_empty(), "testkit::{CHECK}: limit 0 gave runs");
}

/// A second run of the same stream cannot begin while the first is in
/// progress (and leaves no trace); other streams are not blocked; after the
/// first run finishes, the next one begins.
pub async fn lease(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "lease";
    let _ = store;
    let stream = unique_stream(CHECK);
    let first = begin(CHECK, checkpoints, &stream).await;
    let second = RunReport::start(
        RunId::generate(Utc::now()),
        stream.clone(),
        SyncMode::Full,
        "testkit",
        whole_seconds(Utc::now()),
    );
    match checkpoints.begin_run(&second).await {
        Err(SyncError::Busy { .. }) => {}
        other => {
            panic!("testkit::{CHECK}: a second run on a busy stream gave {other:?}, expected Busy")
        }
    }
    assert!(
        ok(CHECK, "run", checkpoints.run(&second.id).await).is_none(),
        "testkit::{CHECK}: a run refused with Busy was recorded"
    );
    // Other streams, even of the same source, are independent.
    let sibling = StreamId::new(stream.source.clone(), "other");
    let third = begin(CHECK, checkpoints, &sibling).await;
    let fourth = begin(CHECK, checkpoints, &unique_stream(CHECK)).await;

    let mut done = first.clone();
    done.status = RunStatus::Cancelled;
    done.finished_at = Some(whole_seconds(Utc::now()));
    ok(CHECK, "finish_run", checkpoints.finish_run(&done).await);
    ok(
        CHECK,
        "begin_run after the lease was released",
        checkpoints.begin_run(&second).await,
    );
    for run in [second, third, fourth] {
        finish(CHECK, checkpoints, run).await;
    }
}

/// `day_counts` counts records that are not deleted, per day of the range,
/// leaving out days without any and days outside the range.
pub async fn day_counts(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "day_counts";
    let stream = unique_stream(CHECK);
    let records = vec![
        visit("a", 1, json!({"n": 1})),
        visit("b", 2, json!({"n": 2})),
        visit("c", 2, json!({"n": 3})),
        visit("d", 2, json!({"n": 4})).deleted(true),
        visit("e", 3, json!({"n": 5})).deleted(true),
        Record::new("boarding", "f", Unit::Day(day(4)), json!({"n": 6})),
        visit("g", 6, json!({"n": 7})),
        Record::new("client", "h", Unit::Key(2), json!({"n": 8})),
    ];
    let mut covered = days(1, 6);
    covered.extend(&keys(2, 2));
    commit_in_run(CHECK, store, checkpoints, &stream, &records, &covered).await;

    let range = day_span(1, 5);
    let got = ok(CHECK, "day_counts", store.day_counts(&stream, range).await);
    let want = [(day(1), 1), (day(2), 2), (day(4), 1)]
        .into_iter()
        .collect();
    assert_eq!(got, want, "testkit::{CHECK}: counts of days 1..=5");

    let empty = ok(
        CHECK,
        "day_counts (other stream)",
        store.day_counts(&unique_stream(CHECK), range).await,
    );
    assert!(
        empty.is_empty(),
        "testkit::{CHECK}: an empty stream counted {empty:?}"
    );
}

/// Records of two sources with the same entity and external id are kept
/// apart.
pub async fn sources_do_not_collide(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "sources_do_not_collide";
    let one = unique_stream(CHECK);
    let two = unique_stream(CHECK);
    let r1 = visit("same-id", 1, json!({"from": "one"}));
    let r2 = visit("same-id", 1, json!({"from": "two"}));
    let (c1, _) = commit_in_run(
        CHECK,
        store,
        checkpoints,
        &one,
        std::slice::from_ref(&r1),
        &days(1, 1),
    )
    .await;
    let (c2, _) = commit_in_run(
        CHECK,
        store,
        checkpoints,
        &two,
        std::slice::from_ref(&r2),
        &days(2, 2),
    )
    .await;
    assert_eq!(c1, counts(1, 0, 0, 0), "testkit::{CHECK}: first source");
    assert_eq!(
        c2,
        counts(1, 0, 0, 0),
        "testkit::{CHECK}: second source (same ids)"
    );
    let got1 = stored_by_ids(CHECK, store, &one, ENTITY, &["same-id"]).await;
    assert_stored(CHECK, &got1, &[&r1]);
    let got2 = stored_by_ids(CHECK, store, &two, ENTITY, &["same-id"]).await;
    assert_stored(CHECK, &got2, &[&r2]);
    assert_coverage(CHECK, checkpoints, &one, &days(1, 1)).await;
    assert_coverage(CHECK, checkpoints, &two, &days(2, 2)).await;
}

/// Payloads with unicode, escapes, nested objects and arrays and large
/// numbers come back exactly, with the same hash, and count as unchanged
/// when committed again.
pub async fn payload_round_trip(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "payload_round_trip";
    let stream = unique_stream(CHECK);
    let payload = json!({
        "name": "Шарик 🐕 naïve \"quoted\" back\\slash\nnew line\ttab",
        "ключ": "значение",
        "": "empty key",
        "nested": {
            "deep": {"list": [1, "two", null, true, {"x": -2.5}], "empty": {}},
            "empty_list": [],
        },
        "max": i64::MAX,
        "min": i64::MIN,
        "huge": u64::MAX,
        "fraction": 0.1,
        "zero": 0,
        "flag": false,
        "nothing": null,
    });
    let record = Record::new(
        ENTITY,
        "ид/with spaces & ünïcode",
        Unit::Day(day(7)),
        payload,
    )
    .occurred_at(whole_seconds(Utc::now()));
    let (c, _) = commit_in_run(
        CHECK,
        store,
        checkpoints,
        &stream,
        std::slice::from_ref(&record),
        &days(7, 7),
    )
    .await;
    assert_eq!(c, counts(1, 0, 0, 0), "testkit::{CHECK}: first commit");
    let stored = stored_by_ids(CHECK, store, &stream, ENTITY, &[&record.external_id]).await;
    assert_stored(CHECK, &stored, &[&record]);
    let (c, _) = commit_in_run(
        CHECK,
        store,
        checkpoints,
        &stream,
        std::slice::from_ref(&record),
        &days(7, 7),
    )
    .await;
    assert_eq!(c, counts(0, 0, 1, 0), "testkit::{CHECK}: commit again");
}

/// Every commit adds its counts and its batch to the run's row and sets the
/// run's request counters, in the same transaction: a run that never
/// finishes (its process was killed) still shows what it stored.
pub async fn progress_in_the_run_row(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "progress_in_the_run_row";
    let stream = unique_stream(CHECK);
    let run = begin(CHECK, checkpoints, &stream).await;
    let first = [
        visit("a", 1, json!({"n": 1})),
        visit("b", 1, json!({"n": 2})),
    ];
    let progress = |requests, rate_limited, retries| RunProgress {
        requests,
        rate_limited,
        retries,
    };
    commit_with(CHECK, store, &run, &first, &days(1, 1), progress(3, 1, 2)).await;
    let second = [
        visit("a", 1, json!({"n": 10})),
        visit("c", 2, json!({"n": 3})),
    ];
    commit_with(CHECK, store, &run, &second, &days(2, 2), progress(7, 1, 4)).await;
    // Counters given out of order never go back.
    commit_with(CHECK, store, &run, &[], &days(3, 3), progress(5, 0, 4)).await;
    let row = ok(CHECK, "run", checkpoints.run(&run.id).await);
    let Some(row) = row else {
        panic!("testkit::{CHECK}: run {} not found", run.id);
    };
    assert_eq!(
        row.status,
        RunStatus::InProgress,
        "testkit::{CHECK}: status"
    );
    assert_eq!(
        row.counts,
        counts(3, 1, 0, 0),
        "testkit::{CHECK}: counts of three commits"
    );
    assert_eq!(row.batches_done, 3, "testkit::{CHECK}: batches stored");
    assert_eq!(
        (row.requests, row.rate_limited, row.retries),
        (7, 1, 4),
        "testkit::{CHECK}: request counters"
    );
    // The final report replaces the running totals.
    let mut done = run.clone();
    done.counts = counts(3, 1, 0, 0);
    done.batches_done = 3;
    done.requests = 8;
    finish(CHECK, checkpoints, done).await;
    let row = ok(CHECK, "run", checkpoints.run(&run.id).await);
    assert_eq!(
        row.map(|r| (r.status, r.requests)),
        Some((RunStatus::Completed, 8)),
        "testkit::{CHECK}: finished row"
    );
}

/// A batch committed in parts: the earlier part stores its records and
/// counts them, covers nothing and is not a stored batch; the last covers
/// the batch's units and counts as one batch.
pub async fn batch_in_parts(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "batch_in_parts";
    let stream = unique_stream(CHECK);
    let run = begin(CHECK, checkpoints, &stream).await;
    let earlier = [
        visit("a", 1, json!({"n": 1})),
        visit("b", 2, json!({"n": 2})),
    ];
    let nothing = Coverage::default();
    let part = BatchCommit {
        run: &run.id,
        stream: &run.stream,
        records: &earlier,
        covered: &nothing,
        progress: RunProgress::default(),
        claim: None,
        finishes_batch: false,
    };
    let c = ok(
        CHECK,
        "commit of the earlier part",
        store.commit(part).await,
    );
    assert_eq!(c, counts(2, 0, 0, 0), "testkit::{CHECK}: earlier part");
    assert_coverage(CHECK, checkpoints, &stream, &nothing).await;
    let found = stored_by_ids(CHECK, store, &stream, ENTITY, &["a", "b"]).await;
    assert_stored(CHECK, &found, &earlier.iter().collect::<Vec<_>>());
    let row = ok(CHECK, "run", checkpoints.run(&run.id).await);
    assert_eq!(
        row.map(|r| (r.counts, r.batches_done)),
        Some((counts(2, 0, 0, 0), 0)),
        "testkit::{CHECK}: run row after the earlier part (counts, batches)"
    );

    let last = [visit("c", 2, json!({"n": 3}))];
    commit(CHECK, store, &run, &last, &days(1, 2)).await;
    assert_coverage(CHECK, checkpoints, &stream, &days(1, 2)).await;
    let row = ok(CHECK, "run", checkpoints.run(&run.id).await);
    assert_eq!(
        row.map(|r| (r.counts, r.batches_done)),
        Some((counts(3, 0, 0, 0), 1)),
        "testkit::{CHECK}: run row after the last part (counts, batches)"
    );
    finish(CHECK, checkpoints, run).await;
}

/// `last_checked` gives, for covered days only, the time of the last commit
/// that covered each day; clearing coverage forgets it.
pub async fn last_checked_days(store: &dyn Store, checkpoints: &dyn CheckpointStore) {
    const CHECK: &str = "last_checked_days";
    let stream = unique_stream(CHECK);
    let before = Utc::now() - chrono::Duration::seconds(1);
    commit_in_run(CHECK, store, checkpoints, &stream, &[], &days(1, 10)).await;
    let middle = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    commit_in_run(CHECK, store, checkpoints, &stream, &[], &days(4, 6)).await;
    let after = Utc::now() + chrono::Duration::seconds(1);

    let got = ok(
        CHECK,
        "last_checked",
        checkpoints.last_checked(&stream, day_span(1, 20)).await,
    );
    // Per day: when it was last checked.
    let mut per_day: BTreeMap<NaiveDate, DateTime<Utc>> = BTreeMap::new();
    for (span, at) in &got {
        for d in span.iter() {
            assert!(
                per_day.insert(d, *at).is_none(),
                "testkit::{CHECK}: day {d} listed twice in {got:?}"
            );
        }
    }
    let listed: Vec<NaiveDate> = per_day.keys().copied().collect();
    let want: Vec<NaiveDate> = day_span(1, 10).iter().collect();
    assert_eq!(listed, want, "testkit::{CHECK}: covered days listed");
    for (d, at) in &per_day {
        let (lo, hi) = if (day(4)..=day(6)).contains(d) {
            (middle, after)
        } else {
            (before, middle + chrono::Duration::seconds(1))
        };
        assert!(
            *at >= lo - chrono::Duration::seconds(1) && *at <= hi,
            "testkit::{CHECK}: day {d} last checked at {at}, expected within {lo}..{hi}"
        );
    }
    let early = per_day[&day(1)];
    let late = per_day[&day(5)];
    assert!(late > early, "testkit::{CHECK}: the re-check is later");

    let inside = ok(
        CHECK,
        "last_checked(part)",
        checkpoints.last_checked(&stream, day_span(5, 8)).await,
    );
    let days_inside: Vec<NaiveDate> = inside.iter().flat_map(|(s, _)| s.iter()).collect();
    assert_eq!(
        days_inside,
        day_span(5, 8).iter().collect::<Vec<_>>(),
        "testkit::{CHECK}: only days of the range"
    );

    ok(
        CHECK,
        "clear_coverage",
        checkpoints.clear_coverage(&stream, &days(1, 2)).await,
    );
    let after_clear = ok(
        CHECK,
        "last_checked",
        checkpoints.last_checked(&stream, day_span(1, 3)).await,
    );
    let left: Vec<NaiveDate> = after_clear.iter().flat_map(|(s, _)| s.iter()).collect();
    assert_eq!(
        left,
        vec![day(3)],
        "testkit::{CHECK}: cleared days forgotten"
    );
}

/// The checks of a [`BudgetStore`]: a key never seen starts empty; an
/// update is kept; updates of one key never interleave, even from many
/// tasks at once (every reservation lands in the one schedule, and together
/// they hold the limits); keys are apart.
pub async fn budget_checks(budgets: &dyn BudgetStore) {
    const CHECK: &str = "budget_checks";
    let key = format!("testkit-budget-{:08x}", rand::random::<u32>());
    assert!(
        ok(CHECK, "schedule", budgets.schedule(&key).await).is_none(),
        "testkit::{CHECK}: a key never used has a schedule"
    );
    let limits = RateLimits::new(Some(5), Some(100));
    let slow = SlowDown::default();
    let first = ok(
        CHECK,
        "update_schedule",
        budgets
            .update_schedule(&key, &mut |s: &mut Schedule, now| {
                s.reserve(&limits, now, &slow);
            })
            .await,
    );
    let (kept, now) = ok(CHECK, "schedule", budgets.schedule(&key).await)
        .unwrap_or_else(|| panic!("testkit::{CHECK}: the schedule was not kept"));
    assert_eq!(kept.grants().count(), 1, "testkit::{CHECK}: one grant kept");
    assert!(
        now >= first,
        "testkit::{CHECK}: the store's clock went back"
    );
    // Forty reservations from eight tasks at once.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        tasks.push(async {
            for _ in 0..5 {
                ok(
                    CHECK,
                    "update_schedule",
                    budgets
                        .update_schedule(&key, &mut |s: &mut Schedule, now| {
                            s.reserve(&limits, now, &slow);
                        })
                        .await,
                );
            }
        });
    }
    futures::future::join_all(tasks).await;
    let (schedule, _) = ok(CHECK, "schedule", budgets.schedule(&key).await)
        .unwrap_or_else(|| panic!("testkit::{CHECK}: the schedule was lost"));
    let grants: Vec<std::time::Duration> = schedule.grants().collect();
    assert_eq!(
        grants.len(),
        41,
        "testkit::{CHECK}: updates interleaved and lost reservations"
    );
    for (i, &t) in grants.iter().enumerate() {
        let in_a_second = grants[i..]
            .iter()
            .take_while(|&&u| u < t + std::time::Duration::from_secs(1))
            .count();
        assert!(
            in_a_second <= 5,
            "testkit::{CHECK}: {in_a_second} grants in one second"
        );
    }
    let other = format!("{key}-other");
    assert!(
        ok(CHECK, "schedule", budgets.schedule(&other).await).is_none(),
        "testkit::{CHECK}: keys are not apart"
    );
}

fn day_batch(index: usize, first: u64, last: u64) -> Batch {
    Batch::new(
        index,
        BatchSpan::Days {
            range: day_span(first, last),
            tz: chrono_tz::UTC,
        },
    )
}

/// The checks of a [`WorkQueue`] over its store: a job is planned once;
/// batches are claimed in order, by one worker at a time; a lease that
/// expires lets another worker take the batch over, a heartbeat keeps it;
/// a batch given back is claimed again, one replaced gives way to its
/// replacements; a batch is done exactly when a commit naming it is stored;
/// a batch claimed [`MAX_ATTEMPTS`] times is given up on; workers' runs take
/// no lease on the stream.
pub async fn queue_checks(
    queue: &dyn WorkQueue,
    store: &dyn Store,
    checkpoints: &dyn CheckpointStore,
) {
    use std::time::Duration;
    const CHECK: &str = "queue_checks";
    let stream = unique_stream(CHECK);
    let job = format!("{stream} testkit job");
    let batches: Vec<Batch> = (0..4)
        .map(|i| day_batch(i, 1 + 2 * i as u64, 2 + 2 * i as u64))
        .collect();
    assert!(ok(
        CHECK,
        "plan_job",
        queue.plan_job(&job, &stream, &batches).await
    ));
    assert!(
        !ok(
            CHECK,
            "plan_job again",
            queue.plan_job(&job, &stream, &batches[..1]).await
        ),
        "testkit::{CHECK}: a job was planned twice"
    );
    let lease = Duration::from_secs(60);
    let a = ok(CHECK, "claim", queue.claim(&job, "a", lease).await).expect("a batch for a");
    let b = ok(CHECK, "claim", queue.claim(&job, "b", lease).await).expect("a batch for b");
    assert_eq!(
        (a.batch.clone(), b.batch.clone()),
        (batches[0].clone(), batches[1].clone()),
        "testkit::{CHECK}: claims out of order"
    );
    assert_ne!(a.id, b.id);
    let p = ok(CHECK, "progress", queue.progress(&job).await);
    assert_eq!(
        (p.pending, p.claimed, p.done),
        (2, 2, 0),
        "testkit::{CHECK}: progress after two claims"
    );

    // A worker's run takes no lease: two at once on one stream.
    let run_a = RunReport {
        worker: Some("a".into()),
        ..RunReport::start(
            RunId::generate(Utc::now()),
            stream.clone(),
            SyncMode::Full,
            "testkit",
            whole_seconds(Utc::now()),
        )
    };
    let run_b = RunReport {
        worker: Some("b".into()),
        ..RunReport::start(
            RunId::generate(Utc::now()),
            stream.clone(),
            SyncMode::Full,
            "testkit",
            whole_seconds(Utc::now()),
        )
    };
    ok(
        CHECK,
        "begin_run (worker a)",
        checkpoints.begin_run(&run_a).await,
    );
    ok(
        CHECK,
        "begin_run (worker b)",
        checkpoints.begin_run(&run_b).await,
    );

    // A commit naming the claim marks it done, with the records.
    let records = [visit("q1", 1, json!({"n": 1}))];
    let covered = a.batch.covered_units();
    ok(
        CHECK,
        "commit",
        store
            .commit(BatchCommit {
                run: &run_a.id,
                stream: &stream,
                records: &records,
                covered: &covered,
                progress: RunProgress::default(),
                claim: Some(a.id),
                finishes_batch: true,
            })
            .await,
    );
    let p = ok(CHECK, "progress", queue.progress(&job).await);
    assert_eq!(
        (p.done, p.claimed),
        (1, 1),
        "testkit::{CHECK}: the commit did not mark its batch done"
    );

    // Given back: claimable again; replaced: its replacements come instead.
    ok(CHECK, "release", queue.release(b.id, "b", &[]).await);
    let again =
        ok(CHECK, "claim", queue.claim(&job, "c", lease).await).expect("the batch given back");
    assert_eq!(
        again.batch, batches[1],
        "testkit::{CHECK}: a batch given back comes first"
    );
    assert_eq!(again.attempts, 1, "testkit::{CHECK}: attempts");
    let halves = [day_batch(10, 3, 3), day_batch(11, 4, 4)];
    ok(
        CHECK,
        "release with replacement",
        queue.release(again.id, "c", &halves).await,
    );
    let mut seen = Vec::new();
    while let Some(c) = ok(
        CHECK,
        "claim",
        queue.claim(&job, "d", Duration::from_millis(500)).await,
    ) {
        seen.push(c);
    }
    let spans: Vec<String> = seen.iter().map(|c| c.batch.span.to_string()).collect();
    assert_eq!(spans.len(), 4, "testkit::{CHECK}: {spans:?}");
    assert!(
        spans.contains(&halves[0].span.to_string()) && spans.contains(&halves[1].span.to_string()),
        "testkit::{CHECK}: replacements missing from {spans:?}"
    );
    assert!(
        !spans.contains(&batches[1].span.to_string()),
        "testkit::{CHECK}: a replaced batch was claimed again"
    );

    // d's leases run out (d died): another worker takes its batches over;
    // a heartbeat would have kept them.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let p = ok(CHECK, "progress", queue.progress(&job).await);
    assert_eq!(p.abandoned, 4, "testkit::{CHECK}: {p:?}");
    let taken =
        ok(CHECK, "claim", queue.claim(&job, "e", lease).await).expect("an abandoned batch");
    assert!(
        seen.iter().any(|c| c.id == taken.id),
        "testkit::{CHECK}: a batch claimed twice at once"
    );
    ok(
        CHECK,
        "heartbeat",
        queue.heartbeat("e", Duration::from_millis(1)).await,
    );
    ok(CHECK, "heartbeat", queue.heartbeat("e", lease).await);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let p = ok(CHECK, "progress", queue.progress(&job).await);
    assert_eq!(
        p.claimed, 1,
        "testkit::{CHECK}: the heartbeat did not keep e's lease: {p:?}"
    );

    // Claimed too often: given up on.
    let spent = format!("{job} spent");
    ok(
        CHECK,
        "plan_job",
        queue.plan_job(&spent, &stream, &batches[..1]).await,
    );
    let mut last: Option<ClaimId> = None;
    for _ in 0..MAX_ATTEMPTS {
        let c = ok(CHECK, "claim", queue.claim(&spent, "f", lease).await).expect("claimable");
        ok(CHECK, "release", queue.release(c.id, "f", &[]).await);
        last = Some(c.id);
    }
    assert!(last.is_some());
    assert!(
        ok(CHECK, "claim", queue.claim(&spent, "f", lease).await).is_none(),
        "testkit::{CHECK}: a batch was claimed more than {MAX_ATTEMPTS} times"
    );
    let p = ok(CHECK, "progress", queue.progress(&spent).await);
    assert_eq!((p.failed, p.pending), (1, 0), "testkit::{CHECK}: {p:?}");
    assert!(p.is_finished());
}

/// Checks a [`HintQueue`]: hints of one entity collapse into one, streams
/// come oldest first, and clearing up to a mark keeps the hints that came
/// after it.
pub async fn hint_checks(hints: &dyn HintQueue) {
    const CHECK: &str = "hint_checks";
    let first = unique_stream(CHECK);
    let second = unique_stream(CHECK);
    let hint = |stream: &StreamId, id: &str| Hint {
        stream: stream.clone(),
        entity: "record".into(),
        external_id: id.into(),
    };
    let mine = |all: Vec<PendingHints>| -> Vec<PendingHints> {
        all.into_iter()
            .filter(|p| p.stream == first || p.stream == second)
            .collect()
    };
    for _ in 0..50 {
        ok(CHECK, "add_hint", hints.add_hint(&hint(&first, "7")).await);
    }
    ok(CHECK, "add_hint", hints.add_hint(&hint(&first, "8")).await);
    ok(CHECK, "add_hint", hints.add_hint(&hint(&second, "1")).await);
    let pending = mine(ok(CHECK, "pending_hints", hints.pending_hints().await));
    assert_eq!(pending.len(), 2, "testkit::{CHECK}: {pending:?}");
    assert_eq!(pending[0].stream, first, "testkit::{CHECK}: oldest first");
    assert_eq!(
        (pending[0].entities, pending[0].received),
        (2, 51),
        "testkit::{CHECK}: 50 hints of one entity are one"
    );
    // A hint that comes while the stream is synced stays for the next time.
    ok(CHECK, "add_hint", hints.add_hint(&hint(&first, "7")).await);
    let cleared = ok(
        CHECK,
        "clear_hints",
        hints.clear_hints(&first, pending[0].up_to).await,
    );
    assert_eq!(cleared, 1, "testkit::{CHECK}: only entity 8 was cleared");
    let pending = mine(ok(CHECK, "pending_hints", hints.pending_hints().await));
    assert_eq!(pending.len(), 2, "testkit::{CHECK}: {pending:?}");
    let again = pending.iter().find(|p| p.stream == first).unwrap();
    // Entity 7 stays, with all its hints counted (50 before, 1 since).
    assert_eq!(
        (again.entities, again.received),
        (1, 51),
        "testkit::{CHECK}: {again:?}"
    );
    ok(
        CHECK,
        "clear_hints",
        hints.clear_hints(&first, again.up_to).await,
    );
    let second_up_to = pending.iter().find(|p| p.stream == second).unwrap().up_to;
    ok(
        CHECK,
        "clear_hints",
        hints.clear_hints(&second, second_up_to).await,
    );
    assert!(
        mine(ok(CHECK, "pending_hints", hints.pending_hints().await)).is_empty(),
        "testkit::{CHECK}: hints left after clearing"
    );
}
