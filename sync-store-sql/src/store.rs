//! [`SqlStore`]: a [`Store`] and [`CheckpointStore`] over any [`Dialect`].

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::{Pool, Transaction};
use sync_core::{
    BatchCommit, CheckpointStore, Coverage, DayRange, ExistingQuery, RecordChange, RecordCounts,
    RunId, RunReport, RunStatus, Store, StoredRecord, StreamId, SyncError,
};

use crate::db::SqlDb;
use crate::dialect::Dialect;
use crate::error::{migrate_error, Doing, Error};
use crate::lease::{stream_key, Holder, Leases};

/// A worker not seen for this long is dead: its runs in progress are
/// marked failed when another worker starts on the stream.
const DEAD_WORKER: std::time::Duration = std::time::Duration::from_secs(120);

/// A [`Store`] and [`CheckpointStore`] in a SQL database, the same for
/// every [`Dialect`]: records with their change log, coverage with check
/// times, runs, leases and history.
///
/// Cheap to clone (the pool is shared). The schema must be migrated before
/// use (the store crates do so when they open a database).
pub struct SqlStore<D: Dialect> {
    inner: Arc<Inner<D>>,
}

struct Inner<D: Dialect> {
    pool: Pool<D::Db>,
    dialect: D,
    leases: Leases<D::Lease>,
    // Streams whose last batch found records stored already: their next
    // batch looks the stored versions up first instead of trying to insert.
    mostly_stored: Mutex<HashSet<String>>,
}

impl<D: Dialect> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<D: Dialect> fmt::Debug for SqlStore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("database", &self.inner.dialect.location())
            .field("leases", &self.inner.leases.runs())
            .finish_non_exhaustive()
    }
}

impl<D: Dialect> SqlStore<D> {
    /// A store on `pool`, whose schema is migrated already.
    pub fn new(pool: Pool<D::Db>, dialect: D) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                dialect,
                leases: Leases::default(),
                mostly_stored: Mutex::default(),
            }),
        }
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool<D::Db> {
        &self.inner.pool
    }

    /// The dialect.
    pub fn dialect(&self) -> &D {
        &self.inner.dialect
    }

    /// Applies the migrations of `migrator` that the database lacks; a
    /// database migrated by a newer release is refused.
    pub async fn migrate(&self, migrator: &Migrator) -> Result<(), SyncError> {
        let latest = latest_version(migrator);
        let mut conn = self.conn().await.map_err(Error::into_sync::<D>)?;
        D::Db::migrate(&mut conn, migrator)
            .await
            .map_err(|e| migrate_error::<D>(e, latest))
    }

    /// The version of the newest migration applied to the database.
    pub async fn schema_version(&self) -> Result<i64, SyncError> {
        let read = async {
            let mut conn = self.conn().await?;
            let rows = D::Db::fetch_all(
                &mut *conn,
                "SELECT MAX(version) AS version FROM _sqlx_migrations WHERE success",
                Vec::new(),
            )
            .await
            .doing("reading the schema version")?;
            let version = match rows.first() {
                Some(row) => D::Db::opt_int(row, "version").doing("reading the schema version")?,
                None => None,
            };
            Ok::<_, Error>(version.unwrap_or(0))
        };
        read.await.map_err(Error::into_sync::<D>)
    }

    /// Closes every pooled connection; later calls fail. Leases of runs not
    /// finished stay held until the store is dropped (or its process ends).
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    pub(crate) async fn conn(&self) -> Result<PoolConnection<D::Db>, Error> {
        self.inner
            .pool
            .acquire()
            .await
            .doing("getting a database connection")
    }

    pub(crate) async fn begin_write(
        &self,
        doing: &'static str,
    ) -> Result<Transaction<'static, D::Db>, Error> {
        self.inner
            .pool
            .begin_with(D::BEGIN_WRITE)
            .await
            .doing(doing)
    }

    pub(crate) fn mostly_stored(&self, stream: &str) -> bool {
        self.inner
            .mostly_stored
            .lock()
            .is_ok_and(|set| set.contains(stream))
    }

    pub(crate) fn set_mostly_stored(&self, stream: &str, stored: bool) {
        if let Ok(mut set) = self.inner.mostly_stored.lock() {
            if stored {
                set.insert(stream.to_owned());
            } else {
                set.remove(stream);
            }
        }
    }

    async fn take_lease(&self, run: &RunReport) -> Result<(), SyncError> {
        let id = run.id.0.as_str();
        let key = stream_key(&run.stream);
        match self.inner.leases.holder(id, &key) {
            Holder::This => return Ok(()),
            Holder::Other => return Err(self.busy(&run.stream).await),
            Holder::None => {}
        }
        let Some(lease) = self.inner.dialect.take_lease(&run.stream).await? else {
            return Err(self.busy(&run.stream).await);
        };
        if let Some(previous) = self.inner.leases.keep(id, key, lease) {
            self.inner.dialect.release_lease(id, previous).await;
        }
        Ok(())
    }

    async fn release_lease(&self, run: &str) {
        if let Some(lease) = self.inner.leases.remove(run) {
            self.inner.dialect.release_lease(run, lease).await;
        }
    }
}

#[async_trait]
impl<D: Dialect> Store for SqlStore<D> {
    async fn commit(&self, batch: BatchCommit<'_>) -> sync_core::Result<RecordCounts> {
        self.commit_batch(batch)
            .await
            .map_err(Error::into_sync::<D>)
    }

    async fn existing(
        &self,
        stream: &StreamId,
        query: &ExistingQuery,
    ) -> sync_core::Result<Vec<StoredRecord>> {
        self.read_existing(stream, query)
            .await
            .map_err(Error::into_sync::<D>)
    }

    async fn day_counts(
        &self,
        stream: &StreamId,
        range: DayRange,
    ) -> sync_core::Result<BTreeMap<NaiveDate, u64>> {
        self.read_day_counts(stream, range)
            .await
            .map_err(Error::into_sync::<D>)
    }
}

#[async_trait]
impl<D: Dialect> CheckpointStore for SqlStore<D> {
    async fn coverage(&self, stream: &StreamId) -> sync_core::Result<Coverage> {
        self.read_coverage(stream)
            .await
            .map_err(Error::into_sync::<D>)
    }

    async fn clear_coverage(&self, stream: &StreamId, units: &Coverage) -> sync_core::Result<()> {
        self.rewrite_coverage(stream, units)
            .await
            .map_err(Error::into_sync::<D>)
    }

    async fn last_checked(
        &self,
        stream: &StreamId,
        range: DayRange,
    ) -> sync_core::Result<Vec<(DayRange, DateTime<Utc>)>> {
        self.read_last_checked(stream, range)
            .await
            .map_err(Error::into_sync::<D>)
    }

    async fn begin_run(&self, run: &RunReport) -> sync_core::Result<()> {
        if run.worker.is_some() {
            // A worker's run shares its stream with the other workers: the
            // work queue keeps them apart, batch by batch.
            let mut report = run.clone();
            report.status = RunStatus::InProgress;
            report.finished_at = None;
            let recorded = async {
                self.fail_dead_workers(&run.stream, DEAD_WORKER).await?;
                self.upsert_run(&report).await
            };
            return recorded.await.map_err(Error::into_sync::<D>);
        }
        self.take_lease(run).await?;
        let recorded = async {
            // Holding the lease proves that no other run of the stream is
            // alive: any left in progress belong to dead processes.
            self.fail_abandoned(&run.stream, &run.id.0).await?;
            let mut report = run.clone();
            report.status = RunStatus::InProgress;
            report.finished_at = None;
            self.upsert_run(&report).await
        }
        .await;
        if let Err(e) = recorded {
            self.release_lease(&run.id.0).await;
            return Err(e.into_sync::<D>());
        }
        tracing::debug!(run = %run.id, stream = %stream_key(&run.stream), "lease taken");
        Ok(())
    }

    async fn finish_run(&self, run: &RunReport) -> sync_core::Result<()> {
        let recorded = self.upsert_run(run).await;
        // Release even when recording failed: the lease must not outlive
        // the run.
        self.release_lease(&run.id.0).await;
        recorded.map_err(Error::into_sync::<D>)
    }

    async fn runs(
        &self,
        stream: Option<&StreamId>,
        limit: usize,
    ) -> sync_core::Result<Vec<RunReport>> {
        self.read_runs(stream, limit)
            .await
            .map_err(Error::into_sync::<D>)
    }

    async fn run(&self, id: &RunId) -> sync_core::Result<Option<RunReport>> {
        self.read_run(id).await.map_err(Error::into_sync::<D>)
    }

    async fn run_changes(&self, id: &RunId) -> sync_core::Result<Vec<RecordChange>> {
        self.read_run_changes(id)
            .await
            .map_err(Error::into_sync::<D>)
    }

    async fn run_changes_page(
        &self,
        id: &RunId,
        offset: usize,
        limit: usize,
    ) -> sync_core::Result<Vec<RecordChange>> {
        self.read_run_changes_page(id, offset, limit)
            .await
            .map_err(Error::into_sync::<D>)
    }
}

/// The version of the newest migration of `migrator`: the schema version a
/// build migrates to.
pub fn latest_version(migrator: &Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}
