//! In-memory store: a [`Store`] and [`CheckpointStore`] kept in a mutex.
//!
//! It follows the trait documents exactly and passes the conformance checks
//! in `sync_core::testkit`, so tests and examples can use it in place of a
//! database. For tests of error handling it has fault hooks:
//! [`MemoryStore::fail_next_commits`] and [`MemoryStore::set_commit_delay`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::coverage::checkpoint::Coverage;
use crate::coverage::interval::DayRange;
use crate::domain::record::{Record, RecordChange, StoredRecord, StreamId, Unit};
use crate::domain::run::{RecordCounts, RunId, RunReport, RunStatus};
use crate::error::{Result, SyncError};
use crate::limit::budget::BudgetStore;
use crate::limit::schedule::Schedule;
use crate::plan::target::Batch;
use crate::store::api::{
    BatchCommit, CheckpointStore, Claim, ClaimId, ExistingQuery, Hint, HintQueue, JobProgress,
    PendingHints, Store, WorkQueue, MAX_ATTEMPTS,
};
use crate::store::commit::{self, StoredVersion};

/// Which error an injected commit fault returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitFault {
    /// [`SyncError::Retryable`]: a temporary failure (lost connection).
    Retryable,
    /// [`SyncError::Fatal`]: a failure retrying will not fix (disk full).
    Fatal,
}

/// An in-memory [`Store`], [`CheckpointStore`] and [`BudgetStore`], for
/// tests and examples.
///
/// Records are keyed by (stream source, entity, external id); coverage, the
/// run history and leases are kept per stream. Nothing survives the value.
/// Its budgets' clock is the tokio clock (time since the store was made),
/// so tests on a paused clock see budgets wait without waiting.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    origin: tokio::time::Instant,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            origin: tokio::time::Instant::now(),
        }
    }
}

// A summary only: the records' payloads must not reach logs.
impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryStore")
            .field("records", &inner.records.len())
            .field("streams", &inner.coverage.len())
            .field("runs", &inner.runs.len())
            .field("commits", &inner.commits)
            .finish_non_exhaustive()
    }
}

/// (stream source, entity, external id).
type RecordKey = (String, String, String);

fn record_key(source: &str, record: &Record) -> RecordKey {
    (
        source.to_owned(),
        record.entity.clone(),
        record.external_id.clone(),
    )
}

#[derive(Debug, Default)]
struct Inner {
    records: BTreeMap<RecordKey, StoredRecord>,
    coverage: HashMap<StreamId, Coverage>,
    // When each covered day of a stream was last committed.
    checked: HashMap<StreamId, BTreeMap<NaiveDate, DateTime<Utc>>>,
    // Run reports in the order they were begun.
    runs: Vec<RunReport>,
    changes: HashMap<RunId, Vec<RecordChange>>,
    // The run holding the lease of each stream.
    leases: HashMap<StreamId, RunId>,
    commits: u64,
    // Waiting hints: (stream, entity, id) → (mark, repeats); and the last mark.
    hints: BTreeMap<(StreamId, String, String), (i64, u64)>,
    hint_mark: i64,
    faults: VecDeque<CommitFault>,
    commit_delay: Duration,
    budgets: HashMap<String, Schedule>,
    queue: Vec<Queued>,
}

/// A batch in the in-memory work queue.
#[derive(Debug)]
struct Queued {
    id: ClaimId,
    job: String,
    batch: Batch,
    state: QueueState,
    attempts: u32,
}

#[derive(Debug, PartialEq)]
enum QueueState {
    Pending,
    Claimed {
        worker: String,
        until: tokio::time::Instant,
    },
    Done,
    Replaced,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in another test thread must not hide the data from this one.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Test hook: the next `n` calls of [`Store::commit`] fail with `fault`
    /// and change nothing (as a rolled-back transaction would). Faults queue
    /// up: calling this twice makes `n1 + n2` commits fail, in call order.
    pub fn fail_next_commits(&self, n: usize, fault: CommitFault) {
        self.lock().faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Test hook: every commit waits `delay` (on the tokio clock) before it
    /// writes, so a test can cancel a run while a commit is under way.
    pub fn set_commit_delay(&self, delay: Duration) {
        self.lock().commit_delay = delay;
    }

    /// How many commits succeeded so far.
    pub fn commit_count(&self) -> u64 {
        self.lock().commits
    }

    /// Every record stored for `source` (the [`StreamId::source`]), sorted
    /// by entity and external id, deleted ones included.
    pub fn records_of_source(&self, source: &str) -> Vec<StoredRecord> {
        self.lock()
            .records
            .iter()
            .filter(|((s, _, _), _)| s == source)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

fn lease_busy(stream: &StreamId, holder: &RunId) -> SyncError {
    SyncError::Busy {
        message: format!("run {holder} is still in progress on stream {stream}"),
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn commit(&self, batch: BatchCommit<'_>) -> Result<RecordCounts> {
        let delay = self.lock().commit_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut inner = self.lock();
        if let Some(fault) = inner.faults.pop_front() {
            return Err(match fault {
                CommitFault::Retryable => SyncError::retryable("injected commit failure"),
                CommitFault::Fatal => SyncError::fatal("injected commit failure"),
            });
        }
        // Everything below happens under one lock: records, change log and
        // coverage become visible together.
        let source = &batch.stream.source;
        let unique = commit::dedupe(batch.records);
        let stored: HashMap<commit::RecordKey, StoredVersion> = unique
            .iter()
            .filter_map(|r| {
                let old = inner.records.get(&record_key(source, r))?;
                Some((
                    (r.entity.clone(), r.external_id.clone()),
                    StoredVersion::from(old),
                ))
            })
            .collect();
        let plan = commit::plan(&unique, &stored);
        let now = Utc::now();
        let mut changes = Vec::with_capacity(plan.writes.len());
        for &(record, kind) in &plan.writes {
            let key = record_key(source, record);
            let old_payload = inner.records.get(&key).map(|old| &old.payload);
            changes.push(RecordChange {
                entity: record.entity.clone(),
                external_id: record.external_id.clone(),
                kind,
                fields: commit::changed_fields(kind, old_payload, &record.payload),
            });
            let new = StoredRecord {
                entity: record.entity.clone(),
                external_id: record.external_id.clone(),
                unit: record.unit,
                payload: record.payload.clone(),
                hash: record.hash,
                deleted: record.deleted,
                last_changed: now,
            };
            inner.records.insert(key, new);
        }
        if !changes.is_empty() {
            inner
                .changes
                .entry(batch.run.clone())
                .or_default()
                .extend(changes);
        }
        inner
            .coverage
            .entry(batch.stream.clone())
            .or_default()
            .extend(batch.covered);
        let checked = inner.checked.entry(batch.stream.clone()).or_default();
        for span in batch.covered.days.spans() {
            for day in span.iter() {
                checked.insert(day, now);
            }
        }
        if let Some(claim) = batch.claim {
            if let Some(q) = inner.queue.iter_mut().find(|q| q.id == claim) {
                q.state = QueueState::Done;
            }
        }
        if let Some(run) = inner.runs.iter_mut().find(|r| &r.id == batch.run) {
            run.counts += plan.counts;
            run.batches_done += u64::from(batch.finishes_batch);
            run.requests = run.requests.max(batch.progress.requests);
            run.rate_limited = run.rate_limited.max(batch.progress.rate_limited);
            run.retries = run.retries.max(batch.progress.retries);
        }
        inner.commits += 1;
        Ok(plan.counts)
    }

    async fn existing(
        &self,
        stream: &StreamId,
        query: &ExistingQuery,
    ) -> Result<Vec<StoredRecord>> {
        let inner = self.lock();
        Ok(match query {
            ExistingQuery::ByIds { entity, ids } => {
                let mut ids: Vec<&String> = ids.iter().collect();
                ids.sort();
                ids.dedup();
                ids.into_iter()
                    .filter_map(|id| {
                        inner
                            .records
                            .get(&(stream.source.clone(), entity.clone(), id.clone()))
                            .cloned()
                    })
                    .collect()
            }
            ExistingQuery::InDays { entity, range } => inner
                .records
                .iter()
                .filter(|((s, e, _), r)| {
                    s == &stream.source
                        && e == entity
                        && matches!(r.unit, Unit::Day(d) if range.contains(d))
                })
                .map(|(_, r)| r.clone())
                .collect(),
        })
    }

    async fn day_counts(
        &self,
        stream: &StreamId,
        range: DayRange,
    ) -> Result<BTreeMap<NaiveDate, u64>> {
        let inner = self.lock();
        let mut counts = BTreeMap::new();
        for ((source, _, _), record) in &inner.records {
            if source != &stream.source || record.deleted {
                continue;
            }
            if let Unit::Day(day) = record.unit {
                if range.contains(day) {
                    *counts.entry(day).or_insert(0) += 1;
                }
            }
        }
        Ok(counts)
    }
}

#[async_trait]
impl CheckpointStore for MemoryStore {
    async fn coverage(&self, stream: &StreamId) -> Result<Coverage> {
        Ok(self
            .lock()
            .coverage
            .get(stream)
            .cloned()
            .unwrap_or_default())
    }

    async fn clear_coverage(&self, stream: &StreamId, units: &Coverage) -> Result<()> {
        let mut inner = self.lock();
        if let Some(covered) = inner.coverage.get_mut(stream) {
            *covered = covered.subtract(units);
        }
        if let Some(checked) = inner.checked.get_mut(stream) {
            checked.retain(|day, _| !units.days.contains(*day));
        }
        Ok(())
    }

    async fn last_checked(
        &self,
        stream: &StreamId,
        range: DayRange,
    ) -> Result<Vec<(DayRange, DateTime<Utc>)>> {
        let inner = self.lock();
        let mut out: Vec<(DayRange, DateTime<Utc>)> = Vec::new();
        let Some(checked) = inner.checked.get(stream) else {
            return Ok(out);
        };
        for (&day, &at) in checked.range(range.first..=range.last) {
            match out.last_mut() {
                Some((span, t)) if *t == at && span.last.succ_opt() == Some(day) => {
                    span.last = day;
                }
                _ => out.push((DayRange::single(day), at)),
            }
        }
        Ok(out)
    }

    async fn begin_run(&self, run: &RunReport) -> Result<()> {
        let mut inner = self.lock();
        // A worker's run shares the stream with other workers: the queue
        // keeps them apart, batch by batch.
        let holder = match run.worker {
            Some(_) => None,
            None => inner.leases.get(&run.stream),
        };
        if let Some(holder) = holder {
            // In memory every lease belongs to this process, so a lease whose
            // run is still in progress is live.
            let live = inner
                .runs
                .iter()
                .any(|r| &r.id == holder && r.status == RunStatus::InProgress);
            if live {
                return Err(lease_busy(&run.stream, holder));
            }
        }
        if run.worker.is_none() {
            inner.leases.insert(run.stream.clone(), run.id.clone());
        }
        let mut report = run.clone();
        report.status = RunStatus::InProgress;
        report.finished_at = None;
        match inner.runs.iter_mut().find(|r| r.id == run.id) {
            Some(existing) => *existing = report,
            None => inner.runs.push(report),
        }
        Ok(())
    }

    async fn finish_run(&self, run: &RunReport) -> Result<()> {
        let mut inner = self.lock();
        match inner.runs.iter_mut().find(|r| r.id == run.id) {
            Some(existing) => *existing = run.clone(),
            None => inner.runs.push(run.clone()),
        }
        if inner.leases.get(&run.stream) == Some(&run.id) {
            inner.leases.remove(&run.stream);
        }
        Ok(())
    }

    async fn runs(&self, stream: Option<&StreamId>, limit: usize) -> Result<Vec<RunReport>> {
        let inner = self.lock();
        // Newest first by start time; among equal start times, the one begun
        // last first.
        let mut runs: Vec<(usize, &RunReport)> = inner
            .runs
            .iter()
            .enumerate()
            .filter(|(_, r)| stream.is_none_or(|s| &r.stream == s))
            .collect();
        runs.sort_by(|(i, a), (j, b)| b.started_at.cmp(&a.started_at).then(j.cmp(i)));
        Ok(runs
            .into_iter()
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn run(&self, id: &RunId) -> Result<Option<RunReport>> {
        Ok(self.lock().runs.iter().find(|r| &r.id == id).cloned())
    }

    async fn run_changes(&self, id: &RunId) -> Result<Vec<RecordChange>> {
        Ok(self.lock().changes.get(id).cloned().unwrap_or_default())
    }
}

#[async_trait]
impl BudgetStore for MemoryStore {
    async fn update_schedule(
        &self,
        key: &str,
        update: &mut (dyn for<'s> FnMut(&'s mut Schedule, Duration) + Send),
    ) -> Result<Duration> {
        let now = self.origin.elapsed();
        let mut inner = self.lock();
        update(inner.budgets.entry(key.to_owned()).or_default(), now);
        Ok(now)
    }

    async fn schedule(&self, key: &str) -> Result<Option<(Schedule, Duration)>> {
        let now = self.origin.elapsed();
        Ok(self.lock().budgets.get(key).cloned().map(|s| (s, now)))
    }
}

#[async_trait]
impl HintQueue for MemoryStore {
    async fn add_hint(&self, hint: &Hint) -> Result<()> {
        let mut inner = self.lock();
        inner.hint_mark += 1;
        let mark = inner.hint_mark;
        let key = (
            hint.stream.clone(),
            hint.entity.clone(),
            hint.external_id.clone(),
        );
        let entry = inner.hints.entry(key).or_insert((mark, 0));
        *entry = (mark, entry.1 + 1);
        Ok(())
    }

    async fn pending_hints(&self) -> Result<Vec<PendingHints>> {
        let inner = self.lock();
        let mut by_stream: Vec<(i64, PendingHints)> = Vec::new();
        for ((stream, _, _), &(mark, repeats)) in &inner.hints {
            match by_stream.iter_mut().find(|(_, p)| &p.stream == stream) {
                Some((first, p)) => {
                    *first = (*first).min(mark);
                    p.entities += 1;
                    p.received += repeats;
                    p.up_to = p.up_to.max(mark);
                }
                None => by_stream.push((
                    mark,
                    PendingHints {
                        stream: stream.clone(),
                        entities: 1,
                        received: repeats,
                        up_to: mark,
                    },
                )),
            }
        }
        by_stream.sort_by_key(|(first, _)| *first);
        Ok(by_stream.into_iter().map(|(_, p)| p).collect())
    }

    async fn clear_hints(&self, stream: &StreamId, up_to: i64) -> Result<u64> {
        let mut inner = self.lock();
        let before = inner.hints.len();
        inner
            .hints
            .retain(|(s, _, _), &mut (mark, _)| s != stream || mark > up_to);
        Ok((before - inner.hints.len()) as u64)
    }
}

#[async_trait]
impl WorkQueue for MemoryStore {
    async fn plan_job(&self, job: &str, _stream: &StreamId, batches: &[Batch]) -> Result<bool> {
        let mut inner = self.lock();
        if inner.queue.iter().any(|q| q.job == job) {
            return Ok(false);
        }
        for batch in batches {
            let id = ClaimId(inner.queue.len() as i64 + 1);
            inner.queue.push(Queued {
                id,
                job: job.to_owned(),
                batch: batch.clone(),
                state: QueueState::Pending,
                attempts: 0,
            });
        }
        Ok(true)
    }

    async fn claim(&self, job: &str, worker: &str, lease: Duration) -> Result<Option<Claim>> {
        let now = tokio::time::Instant::now();
        let mut inner = self.lock();
        let pick = |q: &Queued, abandoned: bool| {
            q.job == job
                && q.attempts < MAX_ATTEMPTS
                && match &q.state {
                    QueueState::Pending => !abandoned,
                    QueueState::Claimed { until, .. } => abandoned && *until <= now,
                    QueueState::Done | QueueState::Replaced => false,
                }
        };
        let found = inner
            .queue
            .iter()
            .position(|q| pick(q, false))
            .or_else(|| inner.queue.iter().position(|q| pick(q, true)));
        Ok(found.map(|i| {
            let q = &mut inner.queue[i];
            q.attempts += 1;
            q.state = QueueState::Claimed {
                worker: worker.to_owned(),
                until: now + lease,
            };
            Claim {
                id: q.id,
                batch: q.batch.clone(),
                attempts: q.attempts - 1,
            }
        }))
    }

    async fn heartbeat(&self, worker: &str, lease: Duration) -> Result<()> {
        let until = tokio::time::Instant::now() + lease;
        for q in self.lock().queue.iter_mut() {
            if let QueueState::Claimed {
                worker: w,
                until: u,
            } = &mut q.state
            {
                if w == worker {
                    *u = until;
                }
            }
        }
        Ok(())
    }

    async fn release(&self, claim: ClaimId, worker: &str, replacement: &[Batch]) -> Result<()> {
        let mut inner = self.lock();
        let Some(i) = inner.queue.iter().position(|q| q.id == claim) else {
            return Ok(());
        };
        if !matches!(&inner.queue[i].state, QueueState::Claimed { worker: w, .. } if w == worker) {
            return Ok(());
        }
        if replacement.is_empty() {
            inner.queue[i].state = QueueState::Pending;
            return Ok(());
        }
        inner.queue[i].state = QueueState::Replaced;
        let job = inner.queue[i].job.clone();
        for batch in replacement {
            let id = ClaimId(inner.queue.len() as i64 + 1);
            inner.queue.push(Queued {
                id,
                job: job.clone(),
                batch: batch.clone(),
                state: QueueState::Pending,
                attempts: 0,
            });
        }
        Ok(())
    }

    async fn progress(&self, job: &str) -> Result<JobProgress> {
        let now = tokio::time::Instant::now();
        let mut p = JobProgress::default();
        for q in self.lock().queue.iter().filter(|q| q.job == job) {
            match &q.state {
                QueueState::Pending | QueueState::Claimed { .. }
                    if q.attempts >= MAX_ATTEMPTS
                        && !matches!(&q.state, QueueState::Claimed { until, .. } if *until > now) =>
                {
                    p.failed += 1
                }
                QueueState::Pending => p.pending += 1,
                QueueState::Claimed { until, .. } if *until > now => p.claimed += 1,
                QueueState::Claimed { .. } => p.abandoned += 1,
                QueueState::Done => p.done += 1,
                QueueState::Replaced => {}
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::interval::Span;
    use crate::store::api::RunProgress;
    use serde_json::json;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn faults_fail_commits_in_order_and_change_nothing() {
        let store = MemoryStore::new();
        let stream = StreamId::new("s", "x");
        let run = RunId("r".into());
        let records = [Record::new(
            "e",
            "1",
            Unit::Day(day("2024-01-01")),
            json!({"a": 1}),
        )];
        let mut covered = Coverage::default();
        covered.days.insert(Span::single(day("2024-01-01")));
        let commit = BatchCommit {
            run: &run,
            stream: &stream,
            records: &records,
            covered: &covered,
            progress: RunProgress::default(),
            claim: None,
            finishes_batch: true,
        };
        store.fail_next_commits(1, CommitFault::Retryable);
        store.fail_next_commits(1, CommitFault::Fatal);
        assert!(matches!(
            store.commit(commit).await,
            Err(SyncError::Retryable { .. })
        ));
        assert!(matches!(
            store.commit(commit).await,
            Err(SyncError::Fatal { .. })
        ));
        assert!(store.coverage(&stream).await.unwrap().is_empty());
        assert!(store.records_of_source("s").is_empty());
        assert_eq!(store.commit(commit).await.unwrap().created, 1);
        assert_eq!(store.commit_count(), 1);
        assert_eq!(store.records_of_source("s").len(), 1);
    }

    #[test]
    fn debug_shows_no_payload() {
        let store = MemoryStore::new();
        store.lock().records.insert(
            ("s".into(), "e".into(), "1".into()),
            StoredRecord {
                entity: "e".into(),
                external_id: "1".into(),
                unit: Unit::Key(1),
                payload: json!({"phone": "+7 900 123"}),
                hash: crate::ContentHash::of_json(&json!({}), &[]),
                deleted: false,
                last_changed: Utc::now(),
            },
        );
        let debug = format!("{store:?}");
        assert!(debug.contains("records: 1"), "{debug}");
        assert!(!debug.contains("+7 900"), "{debug}");
    }

    #[tokio::test]
    async fn finished_lease_can_be_taken_again() {
        let store = MemoryStore::new();
        let stream = StreamId::new("s", "x");
        let mut a = RunReport::start(
            RunId("a".into()),
            stream.clone(),
            Default::default(),
            "t",
            Utc::now(),
        );
        store.begin_run(&a).await.unwrap();
        a.status = RunStatus::Failed;
        store.finish_run(&a).await.unwrap();
        let b = RunReport::start(
            RunId("b".into()),
            stream,
            Default::default(),
            "t",
            Utc::now(),
        );
        store.begin_run(&b).await.unwrap();
    }
}
