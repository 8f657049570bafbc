//! What is Postgres's own: `timestamptz` and `jsonb`, column arrays
//! (`UNNEST`) for the bulk writes of a commit, advisory-lock leases, and
//! the refusal of NUL characters.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Postgres, Row};
use sync_core::commit::RecordKey;
use sync_core::{Record, StreamId, SyncError};
use sync_store_sql::{
    Arg, Change, Dialect, ErrorClass, WriteContext, RECORD_INSERT_COLUMNS, RECORD_UPDATE_SET,
};

use crate::lease::{self, Session};

/// The Postgres dialect: how to open lease sessions, and where the
/// database is (for messages: `postgres://user@host:port/db`, no password).
pub(crate) struct PgDialect {
    pub(crate) options: Arc<PgConnectOptions>,
    pub(crate) location: String,
}

impl PgDialect {
    pub(crate) fn new(options: Arc<PgConnectOptions>) -> Self {
        let location = format!(
            "postgres://{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("")
        );
        Self { options, location }
    }
}

/// The records to write, one array per column, for `UNNEST`.
const RECORD_ARRAYS: &str = "$4::text[], $5::text[], $6::text[], $7::date[], $8::int8[], \
     $9::timestamptz[], $10::text[], $11::text[], $12::bool[]";

/// The columns of [`RECORD_ARRAYS`].
const RECORD_ARRAY_COLUMNS: &str =
    "entity, external_id, unit_kind, day, key, occurred_at, payload, hash, deleted";

/// The values of [`RECORD_INSERT_COLUMNS`] from a row of [`RECORD_ARRAYS`]
/// (`$1` source, `$2` now, `$3` run).
const FROM_UNNEST: &str = "$1, t.entity, t.external_id, t.unit_kind, t.day, t.key, \
     t.occurred_at, t.payload::jsonb, t.hash, t.deleted, $2, $2, $3, $3";

/// The columns of records to write, as arrays for UNNEST.
struct RecordArrays<'a> {
    entities: Vec<&'a str>,
    ids: Vec<&'a str>,
    unit_kinds: Vec<&'static str>,
    days: Vec<Option<NaiveDate>>,
    unit_keys: Vec<Option<i64>>,
    occurred: Vec<Option<DateTime<Utc>>>,
    payloads: Vec<String>,
    hashes: Vec<String>,
    deleted: Vec<bool>,
}

impl<'a> RecordArrays<'a> {
    fn new(records: impl ExactSizeIterator<Item = &'a Record>) -> Self {
        let n = records.len();
        let mut rows = Self {
            entities: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            unit_kinds: Vec::with_capacity(n),
            days: Vec::with_capacity(n),
            unit_keys: Vec::with_capacity(n),
            occurred: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            hashes: Vec::with_capacity(n),
            deleted: Vec::with_capacity(n),
        };
        for record in records {
            let (unit_kind, day, key) = record.unit.parts();
            rows.entities.push(&record.entity);
            rows.ids.push(&record.external_id);
            rows.unit_kinds.push(unit_kind);
            rows.days.push(day);
            rows.unit_keys.push(key);
            rows.occurred.push(record.occurred_at);
            rows.payloads.push(record.payload.to_string());
            rows.hashes.push(record.hash.to_hex());
            rows.deleted.push(record.deleted);
        }
        rows
    }

    /// `sql` with `$1` source, `$2` now, `$3` run and the arrays `$4..$12`.
    fn bind<'q>(
        &'q self,
        sql: &'q str,
        ctx: &WriteContext<'q>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        sqlx::query(sql)
            .bind(ctx.source)
            .bind(ctx.now)
            .bind(ctx.run)
            .bind(&self.entities)
            .bind(&self.ids)
            .bind(&self.unit_kinds)
            .bind(&self.days)
            .bind(&self.unit_keys)
            .bind(&self.occurred)
            .bind(&self.payloads)
            .bind(&self.hashes)
            .bind(&self.deleted)
    }
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

#[async_trait]
impl Dialect for PgDialect {
    type Db = Postgres;
    type Lease = Session;

    const STORE: &'static str = "postgres store";
    const BEGIN_WRITE: &'static str = "BEGIN";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const BUDGET_TX_SETUP: &'static str = "SET LOCAL synchronous_commit TO OFF";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    // The server's clock, so that machines whose clocks differ agree.
    const NOW_MICROS: &'static str =
        "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)";
    const RUN_SEQUENCE: &'static str = "seq";
    const WRITES_IN_WITH: bool = true;
    const NAMELESS_VALUES: bool = false;
    const MAX_BIND: usize = 65_535;

    fn location(&self) -> String {
        self.location.clone()
    }

    fn time(t: DateTime<Utc>) -> Arg<'static> {
        Arg::Time(t)
    }

    fn json_texts(param: &str) -> String {
        format!("SELECT json_array_elements_text(CAST({param} AS json))")
    }

    fn json_pairs(param: &str) -> String {
        format!(
            "SELECT k ->> 0 AS entity, k ->> 1 AS external_id \
             FROM json_array_elements(CAST({param} AS json)) AS k"
        )
    }

    fn append_error(param: &str) -> String {
        format!("errors || jsonb_build_array(CAST({param} AS text))")
    }

    fn classify(error: &sqlx::Error) -> ErrorClass {
        crate::error::classify(error)
    }

    /// Neither `text` nor `jsonb` can hold a NUL character.
    fn unstorable(record: &Record) -> Option<&'static str> {
        if record.entity.contains('\0') || record.external_id.contains('\0') {
            Some("its entity or id holds a NUL character")
        } else if has_nul(&record.payload) {
            Some("its payload holds a NUL character (\\u0000), which jsonb refuses")
        } else {
            None
        }
    }

    async fn take_lease(&self, stream: &StreamId) -> Result<Option<Session>, SyncError> {
        Ok(lease::try_lock(&self.options, stream).await?)
    }

    async fn release_lease(&self, run: &str, session: Session) {
        lease::release(run, session).await;
    }

    /// One statement for the whole batch, whatever its size.
    async fn insert_absent(
        conn: &mut PgConnection,
        ctx: &WriteContext<'_>,
        records: &[&Record],
    ) -> Result<Option<Vec<RecordKey>>, sqlx::Error> {
        let arrays = RecordArrays::new(records.iter().copied());
        let sql = format!(
            "INSERT INTO records ({RECORD_INSERT_COLUMNS}) \
             SELECT {FROM_UNNEST} FROM UNNEST({RECORD_ARRAYS}) AS t({RECORD_ARRAY_COLUMNS}) \
             ON CONFLICT (source, entity, external_id) DO NOTHING \
             RETURNING entity, external_id"
        );
        let rows = arrays.bind(&sql, ctx).fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| Ok((row.try_get("entity")?, row.try_get("external_id")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map(Some)
    }

    /// Records and change log in one statement.
    async fn write_changes(
        conn: &mut PgConnection,
        ctx: &WriteContext<'_>,
        changes: &[Change<'_>],
    ) -> Result<(), sqlx::Error> {
        let arrays = RecordArrays::new(changes.iter().map(|c| c.record));
        let kinds: Vec<&str> = changes.iter().map(|c| c.kind.as_str()).collect();
        let fields: Vec<String> = changes.iter().map(|c| c.fields.to_string()).collect();
        // Creations are recorded as by the insert: first_run set, no change
        // log row.
        let sql = format!(
            "WITH t AS MATERIALIZED ( \
                 SELECT * FROM UNNEST({RECORD_ARRAYS}, $13::text[], $14::text[]) \
                     AS t({RECORD_ARRAY_COLUMNS}, kind, fields)), \
             written AS ( \
                 INSERT INTO records ({RECORD_INSERT_COLUMNS}) SELECT {FROM_UNNEST} FROM t \
                 ON CONFLICT (source, entity, external_id) DO UPDATE SET {RECORD_UPDATE_SET}) \
             INSERT INTO record_changes (run_id, source, entity, external_id, kind, fields, \
                                         changed_at) \
             SELECT $3, $1, t.entity, t.external_id, t.kind, t.fields::jsonb, $2 FROM t \
             WHERE t.kind <> 'created'"
        );
        arrays
            .bind(&sql, ctx)
            .bind(&kinds)
            .bind(&fields)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}
