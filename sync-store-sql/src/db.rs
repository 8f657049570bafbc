//! How the shared layer talks to a database: statements with numbered
//! placeholders (`$1`, `$2`, ... — both SQLite and Postgres read them),
//! arguments of the few column types the schema uses, and typed reads of
//! result columns.
//!
//! [`SqlDb`] is implemented for every sqlx database that can bind and read
//! those types, so the shared code needs no sqlx trait bounds of its own.

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use serde_json::Value;
use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::types::Json;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

/// One argument of a statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg<'a> {
    /// Text, borrowed.
    Str(&'a str),
    /// Text, owned.
    Text(String),
    /// Text or NULL.
    OptText(Option<String>),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit integer or NULL.
    OptInt(Option<i64>),
    /// A boolean (an integer 0 or 1 in SQLite).
    Bool(bool),
    /// A calendar day or NULL.
    OptDate(Option<NaiveDate>),
    /// A UTC time (`timestamptz`); SQLite stores [`Arg::Text`] instead,
    /// see [`crate::Dialect::time`].
    Time(DateTime<Utc>),
    /// A UTC time or NULL.
    OptTime(Option<DateTime<Utc>>),
    /// JSON (`jsonb` in Postgres, text in SQLite).
    Json(&'a Value),
    /// JSON, owned.
    JsonOwned(Value),
}

/// A sqlx database the shared layer can run its statements on.
///
/// Implemented for every sqlx [`Database`] that binds and reads the column
/// types of [`Arg`] (SQLite and Postgres do); nothing to implement by hand.
pub trait SqlDb: Database {
    /// Runs a statement.
    fn execute<'e>(
        conn: &'e mut Self::Connection,
        sql: &'e str,
        args: Vec<Arg<'e>>,
    ) -> BoxFuture<'e, Result<(), sqlx::Error>>;

    /// Runs a query and returns its rows.
    fn fetch_all<'e>(
        conn: &'e mut Self::Connection,
        sql: &'e str,
        args: Vec<Arg<'e>>,
    ) -> BoxFuture<'e, Result<Vec<Self::Row>, sqlx::Error>>;

    /// A text column.
    fn text(row: &Self::Row, column: &str) -> Result<String, sqlx::Error>;
    /// A text column that may be NULL.
    fn opt_text(row: &Self::Row, column: &str) -> Result<Option<String>, sqlx::Error>;
    /// An integer column.
    fn int(row: &Self::Row, column: &str) -> Result<i64, sqlx::Error>;
    /// An integer column that may be NULL.
    fn opt_int(row: &Self::Row, column: &str) -> Result<Option<i64>, sqlx::Error>;
    /// A boolean column.
    fn boolean(row: &Self::Row, column: &str) -> Result<bool, sqlx::Error>;
    /// A day column that may be NULL.
    fn opt_date(row: &Self::Row, column: &str) -> Result<Option<NaiveDate>, sqlx::Error>;
    /// A time column.
    fn time(row: &Self::Row, column: &str) -> Result<DateTime<Utc>, sqlx::Error>;
    /// A time column that may be NULL.
    fn opt_time(row: &Self::Row, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error>;
    /// A JSON column.
    fn json(row: &Self::Row, column: &str) -> Result<Value, sqlx::Error>;

    /// Applies the migrations of `migrator` that the database lacks.
    fn migrate<'e>(
        conn: &'e mut Self::Connection,
        migrator: &'e Migrator,
    ) -> BoxFuture<'e, Result<(), MigrateError>>;
}

impl<DB> SqlDb for DB
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> NaiveDate: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<&'q Value>: Encode<'q, DB> + Type<DB>,
    for<'q> Value: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<NaiveDate>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'r> bool: Decode<'r, DB>,
    for<'r> NaiveDate: Decode<'r, DB>,
    for<'r> DateTime<Utc>: Decode<'r, DB>,
    for<'r> Value: Decode<'r, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    DB::Connection: Migrate,
{
    fn execute<'e>(
        conn: &'e mut Self::Connection,
        sql: &'e str,
        args: Vec<Arg<'e>>,
    ) -> BoxFuture<'e, Result<(), sqlx::Error>> {
        let query = bind_all::<DB>(sql, args);
        let run = conn.execute(query);
        Box::pin(async move { run.await.map(|_| ()) })
    }

    fn fetch_all<'e>(
        conn: &'e mut Self::Connection,
        sql: &'e str,
        args: Vec<Arg<'e>>,
    ) -> BoxFuture<'e, Result<Vec<Self::Row>, sqlx::Error>> {
        conn.fetch_all(bind_all::<DB>(sql, args))
    }

    fn text(row: &Self::Row, column: &str) -> Result<String, sqlx::Error> {
        row.try_get(column)
    }
    fn opt_text(row: &Self::Row, column: &str) -> Result<Option<String>, sqlx::Error> {
        row.try_get(column)
    }
    fn int(row: &Self::Row, column: &str) -> Result<i64, sqlx::Error> {
        row.try_get(column)
    }
    fn opt_int(row: &Self::Row, column: &str) -> Result<Option<i64>, sqlx::Error> {
        row.try_get(column)
    }
    fn boolean(row: &Self::Row, column: &str) -> Result<bool, sqlx::Error> {
        row.try_get(column)
    }
    fn opt_date(row: &Self::Row, column: &str) -> Result<Option<NaiveDate>, sqlx::Error> {
        row.try_get(column)
    }
    fn time(row: &Self::Row, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
        row.try_get(column)
    }
    fn opt_time(row: &Self::Row, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        row.try_get(column)
    }
    fn json(row: &Self::Row, column: &str) -> Result<Value, sqlx::Error> {
        row.try_get(column)
    }

    fn migrate<'e>(
        conn: &'e mut Self::Connection,
        migrator: &'e Migrator,
    ) -> BoxFuture<'e, Result<(), MigrateError>> {
        Box::pin(migrator.run_direct(conn))
    }
}

fn bind_all<'q, DB>(
    sql: &'q str,
    args: Vec<Arg<'q>>,
) -> sqlx::query::Query<'q, DB, DB::Arguments<'q>>
where
    DB: Database,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> String: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'a> bool: Encode<'a, DB> + Type<DB>,
    for<'a> NaiveDate: Encode<'a, DB> + Type<DB>,
    for<'a> DateTime<Utc>: Encode<'a, DB> + Type<DB>,
    for<'a> Json<&'a Value>: Encode<'a, DB> + Type<DB>,
    for<'a> Value: Encode<'a, DB> + Type<DB>,
    for<'a> Option<i64>: Encode<'a, DB> + Type<DB>,
    for<'a> Option<NaiveDate>: Encode<'a, DB> + Type<DB>,
    for<'a> Option<DateTime<Utc>>: Encode<'a, DB> + Type<DB>,
    for<'a> Option<String>: Encode<'a, DB> + Type<DB>,
{
    let mut query = sqlx::query::<DB>(sql);
    for arg in args {
        query = match arg {
            Arg::Str(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::OptText(v) => query.bind(v),
            Arg::Int(v) => query.bind(v),
            Arg::OptInt(v) => query.bind(v),
            Arg::Bool(v) => query.bind(v),
            Arg::OptDate(v) => query.bind(v),
            Arg::Time(v) => query.bind(v),
            Arg::OptTime(v) => query.bind(v),
            Arg::Json(v) => query.bind(Json(v)),
            Arg::JsonOwned(v) => query.bind(v),
        };
    }
    query
}

/// How a placeholder of a generated statement is written: `$n`, or a
/// nameless `?` where the values come in order (see
/// [`crate::Dialect::NAMELESS_VALUES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placeholders {
    /// `$1`, `$2`, ...
    Numbered,
    /// `?` each.
    Nameless,
}

/// `INSERT`-style text with `rows` rows of `columns` placeholders after
/// `head`, numbered from `$first`, then `tail`:
/// `head VALUES ($1, $2), ($3, $4) tail`.
pub(crate) fn values_sql(
    head: &str,
    style: Placeholders,
    first: usize,
    (columns, rows): (usize, usize),
    tail: &str,
) -> String {
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * columns * 7 + 8);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    let mut n = first;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            match style {
                Placeholders::Numbered => {
                    sql.push('$');
                    sql.push_str(&n.to_string());
                }
                Placeholders::Nameless => sql.push('?'),
            }
            n += 1;
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_numbered_row_by_row() {
        let numbered = Placeholders::Numbered;
        assert_eq!(
            values_sql("INSERT INTO t (a, b)", numbered, 1, (2, 2), "RETURNING a"),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) RETURNING a"
        );
        assert_eq!(
            values_sql("I", numbered, 3, (1, 2), ""),
            "I VALUES ($3), ($4) "
        );
        assert_eq!(
            values_sql("I", Placeholders::Nameless, 1, (2, 1), ""),
            "I VALUES (?, ?) "
        );
    }
}
