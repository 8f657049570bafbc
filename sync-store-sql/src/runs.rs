//! The run history: one row per run, its running totals, abandoned runs,
//! and what each run changed.

use chrono::{DateTime, Utc};
use sync_core::{
    BatchCommit, ChangeKind, FieldChange, RecordChange, RecordCounts, RunId, RunReport, RunStatus,
    StreamId, SyncError, SyncMode,
};

use crate::db::{Arg, SqlDb};
use crate::dialect::Dialect;
use crate::error::{Doing, Error};
use crate::records::change_kind;
use crate::store::SqlStore;

/// The error a run left `in_progress` by a dead process gets.
const ABANDONED: &str = "abandoned: the process ended without finishing the run";

const RUN_COLUMNS: &str = "id, source, stream, mode, target, status, started_at, finished_at, \
     created, updated, unchanged, deleted, batches_done, batches_failed, requests, \
     rate_limited, retries, errors, dry_run, worker";

/// A count for a signed integer column (saturating; counts never come near).
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn run_report<DB: SqlDb>(row: &DB::Row) -> Result<RunReport, Error> {
    let count = |name: &str| -> Result<u64, Error> {
        let v = DB::int(row, name).doing("reading a run")?;
        Ok(u64::try_from(v).unwrap_or(0))
    };
    let text = |name: &str| DB::text(row, name).doing("reading a run");
    let id = text("id")?;
    let mode = text("mode")?;
    let status = text("status")?;
    let errors = DB::json(row, "errors").doing("reading a run")?;
    Ok(RunReport {
        stream: StreamId::new(text("source")?, text("stream")?),
        mode: SyncMode::parse(&mode)
            .ok_or_else(|| Error::Corrupt(format!("run {id} has mode {mode:?}")))?,
        target: text("target")?,
        started_at: DB::time(row, "started_at").doing("reading a run")?,
        finished_at: DB::opt_time(row, "finished_at").doing("reading a run")?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| Error::Corrupt(format!("run {id} has status {status:?}")))?,
        counts: RecordCounts {
            created: count("created")?,
            updated: count("updated")?,
            unchanged: count("unchanged")?,
            deleted: count("deleted")?,
        },
        batches_done: count("batches_done")?,
        batches_failed: count("batches_failed")?,
        requests: count("requests")?,
        rate_limited: count("rate_limited")?,
        retries: count("retries")?,
        errors: serde_json::from_value(errors)
            .map_err(|e| Error::Corrupt(format!("errors of run {id}: {e}")))?,
        dry_run: DB::boolean(row, "dry_run").doing("reading a run")?,
        worker: DB::opt_text(row, "worker").doing("reading a run")?,
        id: RunId(id),
    })
}

impl<D: Dialect> SqlStore<D> {
    /// Writes the whole report of `run` (insert or replace).
    pub(crate) async fn upsert_run(&self, run: &RunReport) -> Result<(), Error> {
        let sql = format!(
            "INSERT INTO runs ({RUN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                     $17, $18, $19, $20) \
             ON CONFLICT (id) DO UPDATE SET source = EXCLUDED.source, stream = EXCLUDED.stream, \
             mode = EXCLUDED.mode, target = EXCLUDED.target, status = EXCLUDED.status, \
             started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at, \
             created = EXCLUDED.created, updated = EXCLUDED.updated, \
             unchanged = EXCLUDED.unchanged, deleted = EXCLUDED.deleted, \
             batches_done = EXCLUDED.batches_done, batches_failed = EXCLUDED.batches_failed, \
             requests = EXCLUDED.requests, rate_limited = EXCLUDED.rate_limited, \
             retries = EXCLUDED.retries, errors = EXCLUDED.errors, dry_run = EXCLUDED.dry_run, \
             worker = EXCLUDED.worker"
        );
        let n = |v: u64| Arg::Int(to_i64(v));
        let args = vec![
            Arg::Str(&run.id.0),
            Arg::Str(&run.stream.source),
            Arg::Str(&run.stream.stream),
            Arg::Str(run.mode.as_str()),
            Arg::Str(&run.target),
            Arg::Str(run.status.as_str()),
            D::time(run.started_at),
            D::opt_time(run.finished_at),
            n(run.counts.created),
            n(run.counts.updated),
            n(run.counts.unchanged),
            n(run.counts.deleted),
            n(run.batches_done),
            n(run.batches_failed),
            n(run.requests),
            n(run.rate_limited),
            n(run.retries),
            Arg::JsonOwned(
                run.errors
                    .iter()
                    .cloned()
                    .map(serde_json::Value::String)
                    .collect(),
            ),
            Arg::Bool(run.dry_run),
            Arg::OptText(run.worker.clone()),
        ];
        let mut conn = self.conn().await?;
        D::Db::execute(&mut *conn, &sql, args)
            .await
            .doing("recording the run")
    }

    /// Marks a commit's units covered and adds its counts to its run's row,
    /// in the commit's transaction: records and batches grow, request
    /// counters never go back. One statement where the dialect allows.
    pub(crate) async fn finish_commit(
        conn: &mut <D::Db as sqlx::Database>::Connection,
        batch: &BatchCommit<'_>,
        at: DateTime<Utc>,
        counts: RecordCounts,
    ) -> Result<(), Error> {
        let n = |v: u64| Arg::Int(to_i64(v));
        let stream = batch.stream;
        let progress = batch.progress;
        let mut args = vec![
            Arg::Str(&batch.run.0),
            n(counts.created),
            n(counts.updated),
            n(counts.unchanged),
            n(counts.deleted),
            n(progress.requests),
            n(progress.rate_limited),
            n(progress.retries),
            n(u64::from(batch.finishes_batch)),
        ];
        let ranges = Self::range_rows(batch.covered, at);
        let mut sql = String::new();
        if D::WRITES_IN_WITH && !ranges.is_empty() && ranges.len() * 8 + args.len() <= D::MAX_BIND {
            let (insert, range_args) = Self::ranges_insert(stream, &ranges, args.len() + 1);
            sql = format!("WITH covered AS ({insert}) ");
            args.extend(range_args);
        } else {
            Self::insert_ranges(conn, stream, &ranges).await?;
        }
        sql.push_str(
            "UPDATE runs SET created = created + $2, updated = updated + $3, \
             unchanged = unchanged + $4, deleted = deleted + $5, \
             batches_done = batches_done + $9, \
             requests = CASE WHEN requests < $6 THEN $6 ELSE requests END, \
             rate_limited = CASE WHEN rate_limited < $7 THEN $7 ELSE rate_limited END, \
             retries = CASE WHEN retries < $8 THEN $8 ELSE retries END \
             WHERE id = $1",
        );
        D::Db::execute(conn, &sql, args)
            .await
            .doing("marking the batch covered and adding it to its run")
    }

    /// Marks runs of `stream` other than `run` left in progress as failed:
    /// the caller holds the stream's lease, so no other run of it is alive.
    pub(crate) async fn fail_abandoned(&self, stream: &StreamId, run: &str) -> Result<(), Error> {
        let sql = format!(
            "UPDATE runs SET status = 'failed', finished_at = COALESCE(finished_at, $4), \
             errors = {} \
             WHERE source = $1 AND stream = $2 AND status = 'in_progress' AND id <> $3 \
             AND worker IS NULL",
            D::append_error("$5")
        );
        let args = vec![
            Arg::Str(&stream.source),
            Arg::Str(&stream.stream),
            Arg::Str(run),
            D::time(Utc::now()),
            Arg::Str(ABANDONED),
        ];
        let mut conn = self.conn().await?;
        D::Db::execute(&mut *conn, &sql, args)
            .await
            .doing("marking abandoned runs failed")
    }

    /// The error for a stream whose lease another run holds, naming it.
    pub(crate) async fn busy(&self, stream: &StreamId) -> SyncError {
        // The lease is taken a moment before the holder's run row is written
        // (and stale rows of killed runs are marked first): look a few times
        // so that the message can name the run in progress.
        let sql = format!(
            "SELECT id, started_at FROM runs \
             WHERE source = $1 AND stream = $2 AND status = 'in_progress' \
             ORDER BY started_at DESC, {} DESC LIMIT 1",
            D::RUN_SEQUENCE
        );
        let mut holder: Option<(String, DateTime<Utc>)> = None;
        for _ in 0..20 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let Ok(mut conn) = self.conn().await else {
                break;
            };
            let args = vec![Arg::Str(&stream.source), Arg::Str(&stream.stream)];
            match D::Db::fetch_all(&mut *conn, &sql, args).await {
                Ok(rows) => {
                    holder = rows.first().and_then(|row| {
                        Some((
                            D::Db::text(row, "id").ok()?,
                            D::Db::time(row, "started_at").ok()?,
                        ))
                    });
                    if holder.is_some() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        let message = match holder {
            Some((id, started)) => format!(
                "run {id} (started {}) is still in progress on stream {stream}; \
                 wait for it to end or stop its process",
                started.format("%Y-%m-%dT%H:%M:%SZ")
            ),
            None => format!("another run is starting on stream {stream}; try again when it ends"),
        };
        SyncError::Busy { message }
    }

    /// The most recent runs, newest first.
    pub(crate) async fn read_runs(
        &self,
        stream: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<RunReport>, Error> {
        let limit = Arg::Int(i64::try_from(limit).unwrap_or(i64::MAX));
        let seq = D::RUN_SEQUENCE;
        let (sql, args) = match stream {
            Some(stream) => (
                format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE source = $1 AND stream = $2 \
                     ORDER BY started_at DESC, {seq} DESC LIMIT $3"
                ),
                vec![Arg::Str(&stream.source), Arg::Str(&stream.stream), limit],
            ),
            None => (
                format!(
                    "SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC, {seq} DESC LIMIT $1"
                ),
                vec![limit],
            ),
        };
        let mut conn = self.conn().await?;
        let rows = D::Db::fetch_all(&mut *conn, &sql, args)
            .await
            .doing("reading the run history")?;
        rows.iter().map(run_report::<D::Db>).collect()
    }

    /// One run, if known.
    pub(crate) async fn read_run(&self, id: &RunId) -> Result<Option<RunReport>, Error> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
        let mut conn = self.conn().await?;
        let rows = D::Db::fetch_all(&mut *conn, &sql, vec![Arg::Str(&id.0)])
            .await
            .doing("reading a run")?;
        rows.first().map(run_report::<D::Db>).transpose()
    }

    /// What a run changed: the records it created (by key), then its change
    /// log in order. Records created before `first_run` existed have none:
    /// their creations are in the log instead, so nothing is listed twice.
    pub(crate) async fn read_run_changes(&self, id: &RunId) -> Result<Vec<RecordChange>, Error> {
        let mut conn = self.conn().await?;
        let rows = D::Db::fetch_all(
            &mut *conn,
            "SELECT entity, external_id, kind, fields FROM ( \
                 SELECT entity, external_id, 'created' AS kind, '[]' AS fields, \
                        0 AS part, 0 AS seq \
                 FROM records WHERE first_run = $1 \
                 UNION ALL \
                 SELECT entity, external_id, kind, fields, 1, id \
                 FROM record_changes WHERE run_id = $1) AS c \
             ORDER BY part, seq, entity, external_id",
            vec![Arg::Str(&id.0)],
        )
        .await
        .doing("reading the change log")?;
        changes_of::<D::Db>(&rows)
    }

    /// One page of [`SqlStore::read_run_changes`], in the same order,
    /// without reading the rest: the created records by key (an index on
    /// `first_run, entity, external_id`), then the change log by id.
    pub(crate) async fn read_run_changes_page(
        &self,
        id: &RunId,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<RecordChange>, Error> {
        let int = |n: usize| Arg::Int(i64::try_from(n).unwrap_or(i64::MAX));
        let mut conn = self.conn().await?;
        let rows = D::Db::fetch_all(
            &mut *conn,
            "SELECT entity, external_id FROM records WHERE first_run = $1 \
             ORDER BY entity, external_id LIMIT $2 OFFSET $3",
            vec![Arg::Str(&id.0), int(limit), int(offset)],
        )
        .await
        .doing("reading the change log")?;
        let mut changes = created_of::<D::Db>(&rows)?;
        if changes.len() >= limit {
            return Ok(changes);
        }
        let created = if changes.is_empty() {
            let rows = D::Db::fetch_all(
                &mut *conn,
                "SELECT COUNT(*) AS n FROM records WHERE first_run = $1",
                vec![Arg::Str(&id.0)],
            )
            .await
            .doing("reading the change log")?;
            match rows.first() {
                Some(row) => usize::try_from(D::Db::int(row, "n").doing("reading the change log")?)
                    .unwrap_or(0),
                None => 0,
            }
        } else {
            offset + changes.len()
        };
        let rows = D::Db::fetch_all(
            &mut *conn,
            "SELECT entity, external_id, kind, fields FROM record_changes WHERE run_id = $1 \
             ORDER BY id LIMIT $2 OFFSET $3",
            vec![
                Arg::Str(&id.0),
                int(limit - changes.len()),
                int(offset.saturating_sub(created)),
            ],
        )
        .await
        .doing("reading the change log")?;
        changes.extend(changes_of::<D::Db>(&rows)?);
        Ok(changes)
    }
}

/// Creations (no fields) from rows of `entity, external_id`.
fn created_of<DB: SqlDb>(rows: &[DB::Row]) -> Result<Vec<RecordChange>, Error> {
    let mut changes = Vec::with_capacity(rows.len());
    for row in rows {
        let read = || -> Result<_, sqlx::Error> {
            Ok((DB::text(row, "entity")?, DB::text(row, "external_id")?))
        };
        let (entity, external_id) = read().doing("reading the change log")?;
        changes.push(RecordChange {
            kind: ChangeKind::Created,
            entity,
            external_id,
            fields: Vec::new(),
        });
    }
    Ok(changes)
}

/// Change log entries from rows of `entity, external_id, kind, fields`.
fn changes_of<DB: SqlDb>(rows: &[DB::Row]) -> Result<Vec<RecordChange>, Error> {
    let mut changes = Vec::with_capacity(rows.len());
    for row in rows {
        let read = || -> Result<_, sqlx::Error> {
            Ok((
                DB::text(row, "entity")?,
                DB::text(row, "external_id")?,
                DB::text(row, "kind")?,
                DB::json(row, "fields")?,
            ))
        };
        let (entity, external_id, kind, fields) = read().doing("reading the change log")?;
        let fields: Vec<FieldChange> = serde_json::from_value(fields).map_err(|e| {
            Error::Corrupt(format!("changed fields of {entity}/{external_id}: {e}"))
        })?;
        changes.push(RecordChange {
            kind: change_kind(&kind)?,
            entity,
            external_id,
            fields,
        });
    }
    Ok(changes)
}
