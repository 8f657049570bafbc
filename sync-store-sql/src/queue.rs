//! The work queue: jobs, their batches, and the workers that claim them.
//!
//! A batch is claimed by `UPDATE ... WHERE id = (SELECT ... LIMIT 1 FOR
//! UPDATE SKIP LOCKED)` in Postgres (workers never wait for each other's
//! rows), under the database lock in SQLite. A claim holds until its lease
//! ends (`lease_until`, on the database's clock); heartbeats move it on.
//! A batch is done in the transaction that commits its records
//! ([`complete`]).

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::Transaction;
use sync_core::{Batch, Claim, ClaimId, JobProgress, StreamId, WorkQueue, MAX_ATTEMPTS};

use crate::db::{Arg, SqlDb};
use crate::dialect::Dialect;
use crate::error::{Doing, Error};
use crate::store::SqlStore;

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn batch_text(batch: &Batch) -> Result<String, Error> {
    serde_json::to_string(batch).map_err(|e| Error::Corrupt(format!("a batch to queue: {e}")))
}

/// Marks claimed batch `claim` done, inside the commit's transaction.
pub(crate) async fn complete<D: Dialect>(
    tx: &mut Transaction<'static, D::Db>,
    claim: ClaimId,
) -> Result<(), Error> {
    D::Db::execute(
        &mut **tx,
        "UPDATE work_queue SET state = 'done', lease_until = NULL WHERE id = $1",
        vec![Arg::Int(claim.0)],
    )
    .await
    .doing("marking the batch done in the work queue")
}

impl<D: Dialect> SqlStore<D> {
    async fn queue_job(
        &self,
        job: &str,
        stream: &StreamId,
        batches: &[Batch],
    ) -> Result<bool, Error> {
        let mut tx = self.begin_write("planning a job").await?;
        let inserted = D::Db::fetch_all(
            &mut *tx,
            "INSERT INTO work_jobs (job, source, stream, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (job) DO NOTHING RETURNING job",
            vec![
                Arg::Str(job),
                Arg::Str(&stream.source),
                Arg::Str(&stream.stream),
                D::time(Utc::now()),
            ],
        )
        .await
        .doing("planning a job")?;
        if inserted.is_empty() {
            return Ok(false);
        }
        for (position, batch) in batches.iter().enumerate() {
            D::Db::execute(
                &mut *tx,
                "INSERT INTO work_queue (job, position, batch, state, attempts) \
                 VALUES ($1, $2, $3, 'pending', 0)",
                vec![
                    Arg::Str(job),
                    Arg::Int(i64::try_from(position).unwrap_or(i64::MAX)),
                    Arg::Text(batch_text(batch)?),
                ],
            )
            .await
            .doing("queueing a job's batches")?;
        }
        tx.commit().await.doing("planning a job")?;
        Ok(true)
    }

    async fn claim_batch(
        &self,
        job: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Claim>, Error> {
        let now = D::NOW_MICROS;
        let sql = format!(
            "UPDATE work_queue SET state = 'claimed', worker = $2, lease_until = {now} + $3, \
             attempts = attempts + 1 \
             WHERE id = (SELECT id FROM work_queue WHERE job = $1 AND attempts < $4 \
                         AND (state = 'pending' OR (state = 'claimed' AND lease_until <= {now})) \
                         ORDER BY CASE WHEN state = 'pending' THEN 0 ELSE 1 END, position \
                         LIMIT 1{}) \
             RETURNING id, batch, attempts",
            D::SKIP_LOCKED
        );
        let mut tx = self.begin_write("claiming a batch").await?;
        self.seen(&mut tx, worker).await?;
        let rows = D::Db::fetch_all(
            &mut *tx,
            &sql,
            vec![
                Arg::Str(job),
                Arg::Str(worker),
                Arg::Int(micros(lease)),
                Arg::Int(i64::from(MAX_ATTEMPTS)),
            ],
        )
        .await
        .doing("claiming a batch")?;
        tx.commit().await.doing("claiming a batch")?;
        rows.first()
            .map(|row| {
                let id = D::Db::int(row, "id").doing("reading a claimed batch")?;
                let text = D::Db::text(row, "batch").doing("reading a claimed batch")?;
                let batch = serde_json::from_str(&text)
                    .map_err(|e| Error::Corrupt(format!("queued batch {id}: {e}")))?;
                let attempts = D::Db::int(row, "attempts").doing("reading a claimed batch")?;
                Ok(Claim {
                    id: ClaimId(id),
                    batch,
                    attempts: u32::try_from(attempts - 1).unwrap_or(0),
                })
            })
            .transpose()
    }

    /// Records that `worker` is alive now.
    async fn seen(&self, tx: &mut Transaction<'static, D::Db>, worker: &str) -> Result<(), Error> {
        let sql = format!(
            "INSERT INTO work_workers (worker, seen_at) VALUES ($1, {now}) \
             ON CONFLICT (worker) DO UPDATE SET seen_at = {now}",
            now = D::NOW_MICROS
        );
        D::Db::execute(&mut **tx, &sql, vec![Arg::Str(worker)])
            .await
            .doing("recording that the worker is alive")
    }

    async fn renew_leases(&self, worker: &str, lease: Duration) -> Result<(), Error> {
        let sql = format!(
            "UPDATE work_queue SET lease_until = {} + $2 WHERE worker = $1 AND state = 'claimed'",
            D::NOW_MICROS
        );
        let mut tx = self.begin_write("renewing the worker's leases").await?;
        self.seen(&mut tx, worker).await?;
        D::Db::execute(
            &mut *tx,
            &sql,
            vec![Arg::Str(worker), Arg::Int(micros(lease))],
        )
        .await
        .doing("renewing the worker's leases")?;
        tx.commit().await.doing("renewing the worker's leases")
    }

    async fn give_back(
        &self,
        claim: ClaimId,
        worker: &str,
        replacement: &[Batch],
    ) -> Result<(), Error> {
        let mut tx = self.begin_write("giving a batch back").await?;
        if replacement.is_empty() {
            D::Db::execute(
                &mut *tx,
                "UPDATE work_queue SET state = 'pending', worker = NULL, lease_until = NULL \
                 WHERE id = $1 AND worker = $2 AND state = 'claimed'",
                vec![Arg::Int(claim.0), Arg::Str(worker)],
            )
            .await
            .doing("giving a batch back")?;
        } else {
            let rows = D::Db::fetch_all(
                &mut *tx,
                "UPDATE work_queue SET state = 'replaced', lease_until = NULL \
                 WHERE id = $1 AND worker = $2 AND state = 'claimed' RETURNING job, position",
                vec![Arg::Int(claim.0), Arg::Str(worker)],
            )
            .await
            .doing("replacing a batch")?;
            if let Some(row) = rows.first() {
                let job = D::Db::text(row, "job").doing("replacing a batch")?;
                let position = D::Db::int(row, "position").doing("replacing a batch")?;
                for batch in replacement {
                    D::Db::execute(
                        &mut *tx,
                        "INSERT INTO work_queue (job, position, batch, state, attempts) \
                         VALUES ($1, $2, $3, 'pending', 0)",
                        vec![
                            Arg::Str(&job),
                            Arg::Int(position),
                            Arg::Text(batch_text(batch)?),
                        ],
                    )
                    .await
                    .doing("queueing the replacing batches")?;
                }
            }
        }
        tx.commit().await.doing("giving a batch back")
    }

    async fn job_progress(&self, job: &str) -> Result<JobProgress, Error> {
        let now = D::NOW_MICROS;
        let sql = format!(
            "SELECT CASE \
                 WHEN state = 'done' THEN 'done' \
                 WHEN state = 'replaced' THEN 'replaced' \
                 WHEN state = 'claimed' AND lease_until > {now} THEN 'claimed' \
                 WHEN attempts >= $2 THEN 'failed' \
                 WHEN state = 'pending' THEN 'pending' \
                 ELSE 'abandoned' END AS class, \
             COUNT(*) AS n FROM work_queue WHERE job = $1 GROUP BY 1"
        );
        let mut conn = self.conn().await?;
        let rows = D::Db::fetch_all(
            &mut *conn,
            &sql,
            vec![Arg::Str(job), Arg::Int(i64::from(MAX_ATTEMPTS))],
        )
        .await
        .doing("reading a job's progress")?;
        let mut p = JobProgress::default();
        for row in &rows {
            let n =
                u64::try_from(D::Db::int(row, "n").doing("reading a job's progress")?).unwrap_or(0);
            match D::Db::text(row, "class")
                .doing("reading a job's progress")?
                .as_str()
            {
                "done" => p.done += n,
                "claimed" => p.claimed += n,
                "failed" => p.failed += n,
                "pending" => p.pending += n,
                "abandoned" => p.abandoned += n,
                _ => {}
            }
        }
        Ok(p)
    }

    /// Fails the runs of workers not seen for `silent` (they died), so
    /// that the history does not show them in progress forever.
    pub(crate) async fn fail_dead_workers(
        &self,
        stream: &StreamId,
        silent: Duration,
    ) -> Result<(), Error> {
        let sql = format!(
            "UPDATE runs SET status = 'failed', finished_at = COALESCE(finished_at, $3), \
             errors = {} \
             WHERE source = $1 AND stream = $2 AND status = 'in_progress' AND worker IS NOT NULL \
             AND worker IN (SELECT worker FROM work_workers WHERE seen_at < {} - $5)",
            D::append_error("$4"),
            D::NOW_MICROS
        );
        let mut conn = self.conn().await?;
        D::Db::execute(
            &mut *conn,
            &sql,
            vec![
                Arg::Str(&stream.source),
                Arg::Str(&stream.stream),
                D::time(Utc::now()),
                Arg::Str("abandoned: the worker stopped answering without finishing the run"),
                Arg::Int(micros(silent)),
            ],
        )
        .await
        .doing("marking the runs of dead workers failed")
    }
}

#[async_trait]
impl<D: Dialect> WorkQueue for SqlStore<D> {
    async fn plan_job(
        &self,
        job: &str,
        stream: &StreamId,
        batches: &[Batch],
    ) -> sync_core::Result<bool> {
        self.queue_job(job, stream, batches)
            .await
            .map_err(Error::into_sync::<D>)
    }

    async fn claim(
        &self,
        job: &str,
        worker: &str,
        lease: Duration,
    ) -> sync_core::Result<Option<Claim>> {
        self.claim_batch(job, worker, lease)
            .await
            .map_err(Error::into_sync::<D>)
    }

    async fn heartbeat(&self, worker: &str, lease: Duration) -> sync_core::Result<()> {
        self.renew_leases(worker, lease)
            .await
            .map_err(Error::into_sync::<D>)
    }

    async fn release(
        &self,
        claim: ClaimId,
        worker: &str,
        replacement: &[Batch],
    ) -> sync_core::Result<()> {
        self.give_back(claim, worker, replacement)
            .await
            .map_err(Error::into_sync::<D>)
    }

    async fn progress(&self, job: &str) -> sync_core::Result<JobProgress> {
        self.job_progress(job).await.map_err(Error::into_sync::<D>)
    }
}
