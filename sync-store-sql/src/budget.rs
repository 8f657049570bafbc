//! The request budgets: one row per key holding its schedule, read and
//! written under a lock, on the database's clock.

use std::time::Duration;

use async_trait::async_trait;
use sync_core::{BudgetStore, Schedule};

use crate::db::{Arg, SqlDb};
use crate::dialect::Dialect;
use crate::error::{Doing, Error};
use crate::store::SqlStore;

fn clock(micros: i64) -> Duration {
    Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

/// A stored schedule; one that cannot be read (written by another release)
/// starts empty rather than stopping every sync: the worst it costs is one
/// window's worth of requests too early.
fn schedule_of(key: &str, text: &str) -> Schedule {
    serde_json::from_str(text).unwrap_or_else(|e| {
        tracing::warn!(budget = %key, error = %e, "the stored request budget cannot be read; starting it afresh");
        Schedule::new()
    })
}

impl<D: Dialect> SqlStore<D> {
    async fn update_budget(
        &self,
        key: &str,
        update: &mut (dyn for<'s> FnMut(&'s mut Schedule, Duration) + Send),
    ) -> Result<Duration, Error> {
        let mut tx = self.begin_write("locking the request budget").await?;
        if !D::BUDGET_TX_SETUP.is_empty() {
            D::Db::execute(&mut *tx, D::BUDGET_TX_SETUP, Vec::new())
                .await
                .doing("starting the request budget's transaction")?;
        }
        let select = format!(
            "SELECT state, {} AS now FROM budgets WHERE key = $1{}",
            D::NOW_MICROS,
            D::FOR_UPDATE
        );
        let mut rows = D::Db::fetch_all(&mut *tx, &select, vec![Arg::Str(key)])
            .await
            .doing("reading the request budget")?;
        if rows.is_empty() {
            // First use of the key: make its row, then lock it (another
            // process may have made it meanwhile).
            D::Db::execute(
                &mut *tx,
                "INSERT INTO budgets (key, state) VALUES ($1, '{}') ON CONFLICT (key) DO NOTHING",
                vec![Arg::Str(key)],
            )
            .await
            .doing("creating the request budget")?;
            rows = D::Db::fetch_all(&mut *tx, &select, vec![Arg::Str(key)])
                .await
                .doing("reading the request budget")?;
        }
        let row = rows
            .first()
            .ok_or_else(|| Error::Corrupt(format!("request budget {key:?} has no row")))?;
        let now = clock(D::Db::int(row, "now").doing("reading the database clock")?);
        let mut schedule = schedule_of(
            key,
            &D::Db::text(row, "state").doing("reading the request budget")?,
        );
        update(&mut schedule, now);
        let state = serde_json::to_string(&schedule)
            .map_err(|e| Error::Corrupt(format!("request budget {key:?}: {e}")))?;
        D::Db::execute(
            &mut *tx,
            "UPDATE budgets SET state = $2 WHERE key = $1",
            vec![Arg::Str(key), Arg::Text(state)],
        )
        .await
        .doing("writing the request budget")?;
        tx.commit().await.doing("writing the request budget")?;
        Ok(now)
    }

    async fn read_budget(&self, key: &str) -> Result<Option<(Schedule, Duration)>, Error> {
        let sql = format!(
            "SELECT state, {} AS now FROM budgets WHERE key = $1",
            D::NOW_MICROS
        );
        let mut conn = self.conn().await?;
        let rows = D::Db::fetch_all(&mut *conn, &sql, vec![Arg::Str(key)])
            .await
            .doing("reading the request budget")?;
        rows.first()
            .map(|row| {
                let now = clock(D::Db::int(row, "now").doing("reading the database clock")?);
                let state = D::Db::text(row, "state").doing("reading the request budget")?;
                Ok((schedule_of(key, &state), now))
            })
            .transpose()
    }
}

#[async_trait]
impl<D: Dialect> BudgetStore for SqlStore<D> {
    async fn update_schedule(
        &self,
        key: &str,
        update: &mut (dyn for<'s> FnMut(&'s mut Schedule, Duration) + Send),
    ) -> sync_core::Result<Duration> {
        self.update_budget(key, update)
            .await
            .map_err(Error::into_sync::<D>)
    }

    async fn schedule(&self, key: &str) -> sync_core::Result<Option<(Schedule, Duration)>> {
        self.read_budget(key).await.map_err(Error::into_sync::<D>)
    }
}
