//! Postgres first-insert variants: what the store's commit costs, and what
//! each possible change to it would save (the investigation behind the
//! store throughput figures in `benches/README.md`).
//!
//! ```text
//! scripts/with-postgres.sh cargo run --release -p sync-benches --bin pg_variants
//! ```
//! Each variant inserts the same 100,000 visit records in batches of 500,
//! one transaction per batch, into a fresh database with the store's schema
//! (plus the variant's own table where the schema differs), and does what
//! the store does per batch: look up the stored versions of the batch's
//! keys, then write records, change log and covered ranges.

use std::time::Instant;

use chrono::{NaiveDate, Utc};
use sqlx::{Connection, PgConnection};
use sync_benches::pg::{self, FreshDb};
use sync_benches::store_throughput::{postgres_baseline, visit, BASELINE_RECORDS, RECORDS};
use sync_benches::BoxError;
use sync_core::Record;
use sync_store_postgres::PostgresStore;

const BATCH: usize = 500;

/// What a variant changes in the store's write.
#[derive(Clone, Copy, Debug, Default)]
struct Variant {
    name: &'static str,
    /// Write a change log row for created records too (as the store does).
    log_creations: bool,
    /// `synchronous_commit = off` for the session.
    async_commit: bool,
    /// Content hash as 32 bytes of `bytea` instead of 64 hex characters.
    hash_bytea: bool,
    /// Drop the by-day index first.
    no_day_index: bool,
    /// `json` instead of `jsonb` (not a candidate: measures parsing).
    plain_json: bool,
    /// COPY into a temporary table, then one INSERT ... SELECT.
    copy: bool,
    /// Skip the lookup of stored versions (not a candidate: measures it).
    no_lookup: bool,
    /// Insert first (`ON CONFLICT DO NOTHING RETURNING`): the returned
    /// keys are the created records, and only the others would need the
    /// lookup and the update path; on a first insert there are none.
    insert_first: bool,
    /// Key columns in the "C" collation (byte order).
    collate_c: bool,
}

fn variants() -> Vec<Variant> {
    let store = Variant {
        name: "as the store does (by hand)",
        log_creations: true,
        ..Variant::default()
    };
    vec![
        store,
        Variant {
            name: "no change-log row for creations",
            log_creations: false,
            ..store
        },
        Variant {
            name: "synchronous_commit = off",
            async_commit: true,
            ..store
        },
        Variant {
            name: "hash as bytea",
            hash_bytea: true,
            ..store
        },
        Variant {
            name: "no by-day index",
            no_day_index: true,
            ..store
        },
        Variant {
            name: "COPY into a temp table + INSERT SELECT",
            copy: true,
            ..store
        },
        Variant {
            name: "(json, not jsonb: parsing cost)",
            plain_json: true,
            ..store
        },
        Variant {
            name: "(no lookup of stored versions)",
            no_lookup: true,
            ..store
        },
        Variant {
            name: "key columns COLLATE \"C\"",
            collate_c: true,
            ..store
        },
        Variant {
            name: "insert first, log created from RETURNING",
            insert_first: true,
            ..store
        },
        Variant {
            name: "insert first, no log for creations",
            insert_first: true,
            log_creations: false,
            ..store
        },
        Variant {
            name: "insert first, no log for creations, bytea hash",
            insert_first: true,
            log_creations: false,
            hash_bytea: true,
            ..store
        },
        Variant {
            name: "no log for creations + bytea hash",
            log_creations: false,
            hash_bytea: true,
            ..store
        },
        Variant {
            name: "no log for creations + bytea + async commit",
            log_creations: false,
            hash_bytea: true,
            async_commit: true,
            ..store
        },
    ]
}

/// Column arrays of one batch.
struct Columns {
    entities: Vec<String>,
    ids: Vec<String>,
    days: Vec<Option<NaiveDate>>,
    occurred: Vec<Option<chrono::DateTime<Utc>>>,
    payloads: Vec<String>,
    hashes_hex: Vec<String>,
    hashes_raw: Vec<Vec<u8>>,
    deleted: Vec<bool>,
}

fn columns(batch: &[Record]) -> Columns {
    let day = |r: &Record| match r.unit {
        sync_core::Unit::Day(d) => Some(d),
        sync_core::Unit::Key(_) => None,
    };
    Columns {
        entities: batch.iter().map(|r| r.entity.clone()).collect(),
        ids: batch.iter().map(|r| r.external_id.clone()).collect(),
        days: batch.iter().map(day).collect(),
        occurred: batch.iter().map(|r| r.occurred_at).collect(),
        payloads: batch.iter().map(|r| r.payload.to_string()).collect(),
        hashes_hex: batch.iter().map(|r| r.hash.to_hex()).collect(),
        hashes_raw: batch.iter().map(|r| r.hash.0.to_vec()).collect(),
        deleted: batch.iter().map(|r| r.deleted).collect(),
    }
}

/// COPY text format: backslash, tab, newline and carriage return escaped.
fn copy_field(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn copy_text(c: &Columns, bytea: bool) -> String {
    let mut out = String::with_capacity(c.payloads.iter().map(String::len).sum::<usize>() * 2);
    for i in 0..c.ids.len() {
        copy_field(&mut out, &c.entities[i]);
        out.push('\t');
        copy_field(&mut out, &c.ids[i]);
        out.push('\t');
        match c.days[i] {
            Some(d) => out.push_str(&d.to_string()),
            None => out.push_str("\\N"),
        }
        out.push('\t');
        match c.occurred[i] {
            Some(t) => out.push_str(&t.to_rfc3339()),
            None => out.push_str("\\N"),
        }
        out.push('\t');
        copy_field(&mut out, &c.payloads[i]);
        out.push('\t');
        if bytea {
            out.push_str("\\\\x");
        }
        out.push_str(&c.hashes_hex[i]);
        out.push('\t');
        out.push_str(if c.deleted[i] { "t" } else { "f" });
        out.push('\n');
    }
    out
}

async fn prepare(conn: &mut PgConnection, v: &Variant) -> Result<&'static str, BoxError> {
    if v.no_day_index {
        sqlx::query("DROP INDEX records_by_day")
            .execute(&mut *conn)
            .await?;
    }
    if v.async_commit {
        sqlx::query("SET synchronous_commit = off")
            .execute(&mut *conn)
            .await?;
    }
    if v.hash_bytea || v.plain_json || v.collate_c {
        sqlx::query("CREATE TABLE records_v (LIKE records INCLUDING ALL)")
            .execute(&mut *conn)
            .await?;
        if v.hash_bytea {
            sqlx::query(
                "ALTER TABLE records_v ALTER COLUMN hash TYPE bytea USING decode(hash, 'hex')",
            )
            .execute(&mut *conn)
            .await?;
        }
        if v.collate_c {
            for col in ["source", "entity", "external_id"] {
                sqlx::query(&format!(
                    "ALTER TABLE records_v ALTER COLUMN {col} TYPE text COLLATE \"C\""
                ))
                .execute(&mut *conn)
                .await?;
            }
        }
        if v.plain_json {
            sqlx::query("ALTER TABLE records_v ALTER COLUMN payload TYPE json")
                .execute(&mut *conn)
                .await?;
        }
        return Ok("records_v");
    }
    Ok("records")
}

async fn insert_batch(
    conn: &mut PgConnection,
    v: &Variant,
    table: &str,
    batch: &[Record],
    run: &str,
) -> Result<(), BoxError> {
    let c = columns(batch);
    let payload_type = if v.plain_json { "json" } else { "jsonb" };
    let mut tx = conn.begin().await?;
    if !v.no_lookup && !v.insert_first {
        let hash_col = if v.hash_bytea {
            "encode(r.hash, 'hex')"
        } else {
            "r.hash"
        };
        let found: Vec<(String, String, String, bool)> = sqlx::query_as(&format!(
            "SELECT r.entity, r.external_id, {hash_col}, r.deleted \
             FROM UNNEST($2::text[], $3::text[]) AS k(entity, external_id) \
             JOIN {table} AS r ON r.source = $1 AND r.entity = k.entity AND r.external_id = k.external_id"
        ))
        .bind(sync_benches::store_throughput::SOURCE)
        .bind(&c.entities)
        .bind(&c.ids)
        .fetch_all(&mut *tx)
        .await?;
        if !found.is_empty() {
            return Err("records already stored".into());
        }
    }
    let (source_cte, hash_type) = if v.copy {
        sqlx::query(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS t_in (entity text, external_id text, day date, \
             occurred_at timestamptz, payload text, hash {}, deleted bool) ON COMMIT DELETE ROWS",
            if v.hash_bytea { "bytea" } else { "text" }
        ))
        .execute(&mut *tx)
        .await?;
        let mut copy = tx.copy_in_raw("COPY t_in FROM STDIN").await?;
        copy.send(copy_text(&c, v.hash_bytea).into_bytes()).await?;
        copy.finish().await?;
        (
            "SELECT *, 'created'::text AS kind, '[]'::text AS fields FROM t_in".to_string(),
            "",
        )
    } else if v.hash_bytea {
        (
            "SELECT * FROM UNNEST($4::text[], $5::text[], $6::date[], $7::timestamptz[], \
             $8::text[], $9::bytea[], $10::bool[], $11::text[], $12::text[]) \
             AS t(entity, external_id, day, occurred_at, payload, hash, deleted, kind, fields)"
                .to_string(),
            "bytea",
        )
    } else {
        (
            "SELECT * FROM UNNEST($4::text[], $5::text[], $6::date[], $7::timestamptz[], \
             $8::text[], $9::text[], $10::bool[], $11::text[], $12::text[]) \
             AS t(entity, external_id, day, occurred_at, payload, hash, deleted, kind, fields)"
                .to_string(),
            "text",
        )
    };
    let log = if v.insert_first && v.log_creations {
        ", logged AS (INSERT INTO record_changes (run_id, source, entity, external_id, kind, \
         fields, changed_at) SELECT $3, $1, w.entity, w.external_id, 'created', '[]', $2 FROM written AS w)"
    } else if v.insert_first {
        ""
    } else if v.log_creations {
        ", logged AS (INSERT INTO record_changes (run_id, source, entity, external_id, kind, \
         fields, changed_at) SELECT $3, $1, t.entity, t.external_id, t.kind, t.fields::jsonb, $2 FROM t)"
    } else {
        ""
    };
    let conflict = if v.insert_first {
        "ON CONFLICT DO NOTHING RETURNING entity, external_id"
    } else {
        "ON CONFLICT (source, entity, external_id) DO UPDATE SET payload = EXCLUDED.payload, \
         hash = EXCLUDED.hash, deleted = EXCLUDED.deleted, last_changed = EXCLUDED.last_changed, \
         last_run = EXCLUDED.last_run"
    };
    let sql = format!(
        "WITH t AS MATERIALIZED ({source_cte}), \
         written AS (INSERT INTO {table} (source, entity, external_id, unit_kind, day, key, \
             occurred_at, payload, hash, deleted, first_seen, last_changed, last_run) \
             SELECT $1, t.entity, t.external_id, 'day', t.day, NULL, t.occurred_at, \
             t.payload::{payload_type}, t.hash, t.deleted, $2, $2, $3 FROM t \
             {conflict}){log} \
         INSERT INTO covered_ranges (source, stream, kind, first_day, last_day) \
         SELECT $1, 'records', 'day', MIN(t.day), MAX(t.day) FROM t"
    );
    let _ = hash_type;
    let kinds = vec!["created"; c.ids.len()];
    let fields = vec!["[]"; c.ids.len()];
    let q = sqlx::query(&sql)
        .bind(sync_benches::store_throughput::SOURCE)
        .bind(Utc::now())
        .bind(run);
    let q = if v.copy {
        q
    } else {
        let q = q
            .bind(&c.entities)
            .bind(&c.ids)
            .bind(&c.days)
            .bind(&c.occurred)
            .bind(&c.payloads);
        let q = if v.hash_bytea {
            q.bind(&c.hashes_raw)
        } else {
            q.bind(&c.hashes_hex)
        };
        q.bind(&c.deleted).bind(&kinds).bind(&fields)
    };
    q.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

async fn measure(admin: &str, v: &Variant, batches: &[Vec<Record>]) -> Result<f64, BoxError> {
    let db = FreshDb::create_on(admin, "variant").await?;
    let result = async {
        let store = PostgresStore::connect(db.url()).await?;
        store.close().await;
        let mut conn = PgConnection::connect(db.url()).await?;
        let table = prepare(&mut conn, v).await?;
        let started = Instant::now();
        for batch in batches {
            insert_batch(&mut conn, v, table, batch, "variant-run").await?;
        }
        let took = started.elapsed();
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await?;
        if n != RECORDS as i64 {
            return Err(format!("{}: {n} rows stored", v.name).into());
        }
        Ok::<_, BoxError>(RECORDS as f64 / took.as_secs_f64())
    }
    .await;
    db.drop_db().await?;
    result
}

fn main() -> Result<(), BoxError> {
    let Some(admin) = pg::server_url() else {
        println!("{}", pg::SKIPPED);
        return Ok(());
    };
    let records: Vec<Record> = (0..RECORDS).map(visit).collect();
    let batches: Vec<Vec<Record>> = records.chunks(BATCH).map(<[Record]>::to_vec).collect();
    sync_benches::runtime()?.block_on(async {
        let db = FreshDb::create_on(&admin, "naive").await?;
        let store = PostgresStore::connect(db.url()).await?;
        let naive = postgres_baseline(&store, &batches[..BASELINE_RECORDS / BATCH]).await?;
        store.close().await;
        db.drop_db().await?;
        println!(
            "Postgres first insert of {RECORDS} records in batches of {BATCH}, by variant \
             (naive row-by-row baseline: {naive:.0} rows/s):"
        );
        let mut base = None;
        for v in variants() {
            // Twice each, the better kept: the machine is shared.
            let a = measure(&admin, &v, &batches).await?;
            let b = measure(&admin, &v, &batches).await?;
            let rate = a.max(b);
            let base = *base.get_or_insert(rate);
            println!(
                "  {:<48} {:>8.0} rec/s  {:>5.2}x the store  {:>5.1}x naive  (runs: {a:.0}, {b:.0})",
                v.name,
                rate,
                rate / base,
                rate / naive
            );
        }
        Ok::<_, BoxError>(())
    })
}
