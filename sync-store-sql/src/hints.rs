//! Hints from webhooks: one row per hinted entity, however many hints it
//! got. Each hint takes the next mark from a single counter row, under that
//! row's lock until its transaction commits, so marks follow commit order:
//! clearing up to a mark read earlier never clears a hint committed later.

use async_trait::async_trait;
use sync_core::{Hint, HintQueue, PendingHints, StreamId};

use crate::db::{Arg, SqlDb};
use crate::dialect::Dialect;
use crate::error::{Doing, Error};
use crate::store::SqlStore;

impl<D: Dialect> SqlStore<D> {
    async fn keep_hint(&self, hint: &Hint) -> Result<(), Error> {
        let mut tx = self.begin_write("keeping a hint").await?;
        let rows = D::Db::fetch_all(
            &mut *tx,
            "UPDATE hint_counter SET mark = mark + 1 WHERE id = 1 RETURNING mark",
            Vec::new(),
        )
        .await
        .doing("numbering a hint")?;
        let mark = match rows.first() {
            Some(row) => D::Db::int(row, "mark").doing("numbering a hint")?,
            None => return Err(Error::Corrupt("the hint counter has no row".into())),
        };
        D::Db::execute(
            &mut *tx,
            "INSERT INTO hints (source, stream, entity, external_id, mark, received) \
             VALUES ($1, $2, $3, $4, $5, 1) \
             ON CONFLICT (source, stream, entity, external_id) \
             DO UPDATE SET mark = excluded.mark, received = hints.received + 1",
            vec![
                Arg::Str(&hint.stream.source),
                Arg::Str(&hint.stream.stream),
                Arg::Str(&hint.entity),
                Arg::Str(&hint.external_id),
                Arg::Int(mark),
            ],
        )
        .await
        .doing("keeping a hint")?;
        tx.commit().await.doing("keeping a hint")
    }

    async fn read_pending_hints(&self) -> Result<Vec<PendingHints>, Error> {
        let mut conn = self.conn().await?;
        let rows = D::Db::fetch_all(
            &mut *conn,
            "SELECT source, stream, COUNT(*) AS entities, CAST(SUM(received) AS BIGINT) AS received, \
             MIN(mark) AS first_mark, MAX(mark) AS up_to \
             FROM hints GROUP BY source, stream ORDER BY MIN(mark)",
            Vec::new(),
        )
        .await
        .doing("reading the hints")?;
        rows.iter()
            .map(|row| {
                let count = |column| {
                    D::Db::int(row, column)
                        .doing("reading the hints")
                        .map(|n| u64::try_from(n).unwrap_or(0))
                };
                Ok(PendingHints {
                    stream: StreamId::new(
                        D::Db::text(row, "source").doing("reading the hints")?,
                        D::Db::text(row, "stream").doing("reading the hints")?,
                    ),
                    entities: count("entities")?,
                    received: count("received")?,
                    up_to: D::Db::int(row, "up_to").doing("reading the hints")?,
                })
            })
            .collect()
    }

    async fn clear_stream_hints(&self, stream: &StreamId, up_to: i64) -> Result<u64, Error> {
        let mut tx = self.begin_write("clearing hints").await?;
        let rows = D::Db::fetch_all(
            &mut *tx,
            "DELETE FROM hints WHERE source = $1 AND stream = $2 AND mark <= $3 RETURNING mark",
            vec![
                Arg::Str(&stream.source),
                Arg::Str(&stream.stream),
                Arg::Int(up_to),
            ],
        )
        .await
        .doing("clearing hints")?;
        tx.commit().await.doing("clearing hints")?;
        Ok(rows.len() as u64)
    }
}

#[async_trait]
impl<D: Dialect> HintQueue for SqlStore<D> {
    async fn add_hint(&self, hint: &Hint) -> sync_core::Result<()> {
        self.keep_hint(hint).await.map_err(Error::into_sync::<D>)
    }

    async fn pending_hints(&self) -> sync_core::Result<Vec<PendingHints>> {
        self.read_pending_hints()
            .await
            .map_err(Error::into_sync::<D>)
    }

    async fn clear_hints(&self, stream: &StreamId, up_to: i64) -> sync_core::Result<u64> {
        self.clear_stream_hints(stream, up_to)
            .await
            .map_err(Error::into_sync::<D>)
    }
}
