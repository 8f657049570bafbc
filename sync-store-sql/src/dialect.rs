//! What differs between the SQL databases: the [`Dialect`] trait.
//!
//! Everything else (the commit steps, coverage, check times, runs, leases
//! bookkeeping, history) is written once in this crate over [`SqlDb`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Database;
use sync_core::commit::RecordKey;
use sync_core::{ChangeKind, Record, StreamId, SyncError};

use crate::db::{values_sql, Arg, Placeholders, SqlDb};

/// What a caller can do about a failed statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Trying again later may work (the database is unreachable, busy or
    /// restarting, a lock wait timed out).
    Temporary,
    /// The database refused the credentials.
    Credentials,
    /// Trying again will fail the same way.
    Permanent,
}

/// The rows a commit writes, and who writes them.
#[derive(Clone, Copy, Debug)]
pub struct WriteContext<'a> {
    /// The stream's source (the first part of every record key).
    pub source: &'a str,
    /// The run writing (`last_run`, `first_run`, change log).
    pub run: &'a str,
    /// The time of the commit (`first_seen`, `last_changed`, change log).
    pub now: DateTime<Utc>,
}

/// A record to write over (or next to) its stored version, as
/// [`sync_core::commit::plan`] decided.
#[derive(Clone, Debug)]
pub struct Change<'a> {
    /// The new version.
    pub record: &'a Record,
    /// What the commit does to it. Creations get `first_run` and no change
    /// log row; updates and deletions get a change log row.
    pub kind: ChangeKind,
    /// The change log's fields (`[{"path", "old", "new"}, ...]`), from
    /// [`sync_core::commit::changed_fields`].
    pub fields: Value,
}

/// The columns of `records`, in the order [`Dialect::insert_absent`] and
/// [`Dialect::write_changes`] write them.
pub const RECORD_INSERT_COLUMNS: &str = "source, entity, external_id, unit_kind, day, key, \
     occurred_at, payload, hash, deleted, first_seen, last_changed, last_run, first_run";

/// The assignments of an upsert over a stored record: everything but the
/// key, `first_seen` and `first_run`.
pub const RECORD_UPDATE_SET: &str = "unit_kind = EXCLUDED.unit_kind, day = EXCLUDED.day, \
     key = EXCLUDED.key, occurred_at = EXCLUDED.occurred_at, payload = EXCLUDED.payload, \
     hash = EXCLUDED.hash, deleted = EXCLUDED.deleted, last_changed = EXCLUDED.last_changed, \
     last_run = EXCLUDED.last_run";

/// The dialect-specific pieces of a SQL store.
///
/// A dialect is a value kept by [`crate::SqlStore`]: it knows where its
/// database is (for leases and messages). Statements of the shared layer
/// use `$1`-style placeholders and standard SQL; what is not standard is
/// here, as SQL fragments, a few conversions, the lease, and the bulk
/// writes of a commit (a default with multi-row `VALUES`, which a dialect
/// may replace by something faster).
///
/// Where later shared state goes (a rate budget row, a work queue, an event
/// queue), the locking differs: [`Dialect::BEGIN_WRITE`] (SQLite takes the
/// write lock up front) and [`Dialect::FOR_UPDATE`] (Postgres locks the
/// rows read) are the two halves of one read-modify-write.
#[async_trait]
pub trait Dialect: Send + Sync + 'static {
    /// The sqlx database.
    type Db: SqlDb;
    /// A lease held on a stream (released by [`Dialect::release_lease`] or
    /// by dropping it, also when the process dies).
    type Lease: Send + 'static;

    /// The store's name in messages: `"sqlite store"`, `"postgres store"`.
    const STORE: &'static str;
    /// The statement that starts a transaction that writes.
    const BEGIN_WRITE: &'static str;
    /// A statement run first in the transaction that updates a request
    /// budget, or empty. Postgres: `SET LOCAL synchronous_commit TO OFF`,
    /// the commit not waiting for the WAL to reach the disk (the
    /// budget's row is visible to every other process at once all the
    /// same; a server crash can lose its last fraction of a second, which
    /// costs at most one window's worth of early requests after the
    /// server's restart). It is most of an acquire's latency otherwise.
    const BUDGET_TX_SETUP: &'static str = "";
    /// What locks the rows a `SELECT` reads until the transaction ends
    /// (appended to the statement; empty where [`Dialect::BEGIN_WRITE`]
    /// already locks the database).
    const FOR_UPDATE: &'static str;
    /// What ends a `SELECT ... LIMIT 1` that claims a row many processes
    /// race for: `FOR UPDATE SKIP LOCKED` where rows lock one by one, empty
    /// where [`Dialect::BEGIN_WRITE`] locks the whole database.
    const SKIP_LOCKED: &'static str;
    /// An expression: the database's clock, in microseconds since the Unix
    /// epoch (one clock for every process and machine of the store).
    const NOW_MICROS: &'static str;
    /// The column that orders runs begun at the same instant.
    const RUN_SEQUENCE: &'static str;
    /// How many values one statement may bind.
    const MAX_BIND: usize;
    /// Whether a `WITH` clause may hold an `INSERT` (one round trip for
    /// two writes).
    const WRITES_IN_WITH: bool;
    /// Whether statements of many values (multi-row `VALUES`) take nameless
    /// `?` placeholders instead of `$n`. SQLite needs them: it treats `$n`
    /// as names, and finding the names of thousands of parameters at every
    /// execution costs time quadratic in their number.
    const NAMELESS_VALUES: bool;

    /// Where the database is, for people (never a password).
    fn location(&self) -> String;

    /// How a time is stored.
    fn time(t: DateTime<Utc>) -> Arg<'static>;

    /// How a time that may be missing is stored.
    fn opt_time(t: Option<DateTime<Utc>>) -> Arg<'static> {
        match t {
            Some(t) => Self::time(t),
            None => Arg::OptTime(None),
        }
    }

    /// A subquery listing the elements of the JSON array of strings bound
    /// at `param` (one text column).
    fn json_texts(param: &str) -> String;

    /// A subquery listing the `[entity, external_id]` pairs of the JSON
    /// array bound at `param`, as columns `entity` and `external_id`.
    fn json_pairs(param: &str) -> String;

    /// An expression: the JSON array `errors` with the text bound at
    /// `param` appended.
    fn append_error(param: &str) -> String;

    /// What a failed statement means for the caller.
    fn classify(error: &sqlx::Error) -> ErrorClass;

    /// Why `record` cannot be stored as it is, if it cannot.
    fn unstorable(_record: &Record) -> Option<&'static str> {
        None
    }

    /// Takes the lease of `stream` without waiting; `None` when a run of
    /// another store instance or process holds it.
    async fn take_lease(&self, stream: &StreamId) -> Result<Option<Self::Lease>, SyncError>;

    /// Releases a lease taken by `run`.
    async fn release_lease(&self, run: &str, lease: Self::Lease);

    /// Inserts those of `records` whose keys are not stored yet and returns
    /// their keys, leaving stored ones alone; `None` (the default) when the
    /// dialect does not insert first, and every key is looked up instead.
    ///
    /// This only finds out which keys were absent: [`sync_core::commit::plan`]
    /// then counts them as created (nothing stored) with the others. It pays
    /// where a round trip costs more than the rows it returns (a server);
    /// SQLite hands every returned row from its worker thread one by one,
    /// and looks up first.
    async fn insert_absent(
        _conn: &mut <Self::Db as Database>::Connection,
        _ctx: &WriteContext<'_>,
        _records: &[&Record],
    ) -> Result<Option<Vec<RecordKey>>, sqlx::Error> {
        Ok(None)
    }

    /// Writes `changes` (inserted, or updated over the stored record) with
    /// a change log row for each update and deletion.
    async fn write_changes(
        conn: &mut <Self::Db as Database>::Connection,
        ctx: &WriteContext<'_>,
        changes: &[Change<'_>],
    ) -> Result<(), sqlx::Error> {
        for chunk in changes.chunks(rows_per_statement::<Self>(14)) {
            let sql = values_sql(
                &format!("INSERT INTO records ({RECORD_INSERT_COLUMNS})"),
                placeholders::<Self>(),
                1,
                (14, chunk.len()),
                &format!(
                    "ON CONFLICT (source, entity, external_id) DO UPDATE SET {RECORD_UPDATE_SET}"
                ),
            );
            let args = chunk
                .iter()
                .flat_map(|change| record_args::<Self>(ctx, change.record))
                .collect();
            Self::Db::execute(conn, &sql, args).await?;
        }
        let logged: Vec<&Change<'_>> = changes
            .iter()
            .filter(|c| c.kind != ChangeKind::Created)
            .collect();
        for chunk in logged.chunks(rows_per_statement::<Self>(7)) {
            let sql = values_sql(
                "INSERT INTO record_changes \
                 (run_id, source, entity, external_id, kind, fields, changed_at)",
                placeholders::<Self>(),
                1,
                (7, chunk.len()),
                "",
            );
            let mut args = Vec::with_capacity(chunk.len() * 7);
            for change in chunk {
                args.extend([
                    Arg::Str(ctx.run),
                    Arg::Str(ctx.source),
                    Arg::Str(&change.record.entity),
                    Arg::Str(&change.record.external_id),
                    Arg::Str(change.kind.as_str()),
                    Arg::Json(&change.fields),
                    Self::time(ctx.now),
                ]);
            }
            Self::Db::execute(conn, &sql, args).await?;
        }
        Ok(())
    }
}

/// The placeholders of multi-row statements of `D`.
pub(crate) fn placeholders<D: Dialect + ?Sized>() -> Placeholders {
    if D::NAMELESS_VALUES {
        Placeholders::Nameless
    } else {
        Placeholders::Numbered
    }
}

/// Rows of `columns` values that fit in one statement (at most 500).
pub(crate) fn rows_per_statement<D: Dialect + ?Sized>(columns: usize) -> usize {
    (D::MAX_BIND / columns.max(1)).clamp(1, 500)
}

/// The values of [`RECORD_INSERT_COLUMNS`] for `record`.
fn record_args<'a, D: Dialect + ?Sized>(
    ctx: &WriteContext<'a>,
    record: &'a Record,
) -> [Arg<'a>; 14] {
    let (unit_kind, day, key) = record.unit.parts();
    [
        Arg::Str(ctx.source),
        Arg::Str(&record.entity),
        Arg::Str(&record.external_id),
        Arg::Str(unit_kind),
        Arg::OptDate(day),
        Arg::OptInt(key),
        D::opt_time(record.occurred_at),
        Arg::Json(&record.payload),
        Arg::Text(record.hash.to_hex()),
        Arg::Bool(record.deleted),
        D::time(ctx.now),
        D::time(ctx.now),
        Arg::Str(ctx.run),
        Arg::Str(ctx.run),
    ]
}
