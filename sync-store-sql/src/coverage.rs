//! Coverage (the checkpoint) and when each covered day was last checked.
//!
//! `covered_ranges` holds one row per range a commit covered, with the time
//! of that commit (`checked_at`). Rows may overlap; a later one wins for the
//! days they share. Reading the coverage merges them; now and then the rows
//! of a stream are rewritten as the fewest rows that keep both the coverage
//! and the latest check time of every day (adjacent days checked at the same
//! time share a row), so the number of rows stays about the number of
//! distinct check times, not the number of commits.

use chrono::{DateTime, NaiveDate, Utc};
use sync_core::{Coverage, DayRange, IntervalSet, Span, StreamId, Unit};

use crate::db::{values_sql, Arg, Placeholders, SqlDb};
use crate::dialect::{placeholders, rows_per_statement, Dialect};
use crate::error::{Doing, Error};
use crate::store::SqlStore;

/// A row of covered_ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RangeRow {
    first: Unit,
    last: Unit,
    checked_at: DateTime<Utc>,
}

const RANGE_COLUMNS: &str = "kind, first_day, last_day, first_key, last_key, checked_at";

/// Rows beyond the fewest needed that make reading the coverage rewrite it.
const SLACK_ROWS: usize = 64;

fn read_range<DB: SqlDb>(row: &DB::Row) -> Result<RangeRow, Error> {
    let read = || -> Result<_, sqlx::Error> {
        let kind = DB::text(row, "kind")?;
        let first = Unit::from_parts(
            &kind,
            DB::opt_date(row, "first_day")?,
            DB::opt_int(row, "first_key")?,
        );
        let last = Unit::from_parts(
            &kind,
            DB::opt_date(row, "last_day")?,
            DB::opt_int(row, "last_key")?,
        );
        Ok((kind, first, last, DB::time(row, "checked_at")?))
    };
    let (kind, first, last, checked_at) = read().doing("reading coverage")?;
    match (first, last) {
        (Some(first), Some(last)) if Coverage::default().insert_unit_range(first, last) => {
            Ok(RangeRow {
                first,
                last,
                checked_at,
            })
        }
        _ => Err(Error::Corrupt(format!(
            "covered range of kind {kind:?} without valid bounds"
        ))),
    }
}

/// The coverage of `rows`.
fn union(rows: &[RangeRow]) -> Coverage {
    let mut coverage = Coverage::default();
    for row in rows {
        coverage.insert_unit_range(row.first, row.last);
    }
    coverage
}

/// The latest check time of every covered day of `rows` within `within`:
/// sorted, non-overlapping ranges, adjacent days of the same time joined.
fn latest_checks(rows: &[RangeRow], within: Option<DayRange>) -> Vec<(DayRange, DateTime<Utc>)> {
    let mut days: Vec<(DayRange, DateTime<Utc>)> = rows
        .iter()
        .filter_map(|row| match (row.first, row.last) {
            (Unit::Day(first), Unit::Day(last)) => {
                let first = within.map_or(first, |w| first.max(w.first));
                let last = within.map_or(last, |w| last.min(w.last));
                Span::new(first, last).map(|span| (span, row.checked_at))
            }
            _ => None,
        })
        .collect();
    // Newest first: each row keeps only the days no newer row holds.
    days.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
    let mut painted: IntervalSet<NaiveDate> = IntervalSet::new();
    let mut pieces: Vec<(DayRange, DateTime<Utc>)> = Vec::new();
    for (span, at) in days {
        let fresh = std::iter::once(span)
            .collect::<IntervalSet<NaiveDate>>()
            .subtract(&painted);
        pieces.extend(fresh.spans().map(|s| (s, at)));
        painted.insert(span);
    }
    pieces.sort_by_key(|(span, _)| span.first);
    let mut joined: Vec<(DayRange, DateTime<Utc>)> = Vec::with_capacity(pieces.len());
    for (span, at) in pieces {
        match joined.last_mut() {
            Some((last, t)) if *t == at && last.last.succ_opt() == Some(span.first) => {
                last.last = span.last;
            }
            _ => joined.push((span, at)),
        }
    }
    joined
}

/// The fewest rows that hold the coverage of `rows` less `remove` and the
/// latest check time of every day left. Key ranges keep no time of their
/// own: a merged key range gets the newest time of the rows it came from.
fn compacted(rows: &[RangeRow], remove: &Coverage) -> Vec<RangeRow> {
    let mut out = Vec::new();
    for (span, at) in latest_checks(rows, None) {
        let kept = std::iter::once(span)
            .collect::<IntervalSet<NaiveDate>>()
            .subtract(&remove.days);
        out.extend(kept.spans().map(|s| RangeRow {
            first: Unit::Day(s.first),
            last: Unit::Day(s.last),
            checked_at: at,
        }));
    }
    let key_rows = rows.iter().filter(|r| matches!(r.first, Unit::Key(_)));
    if let Some(newest) = key_rows.clone().map(|r| r.checked_at).max() {
        let keys = union(&key_rows.copied().collect::<Vec<_>>())
            .keys
            .subtract(&remove.keys);
        out.extend(keys.spans().map(|s| RangeRow {
            first: Unit::Key(s.first),
            last: Unit::Key(s.last),
            checked_at: newest,
        }));
    }
    out
}

impl<D: Dialect> SqlStore<D> {
    /// The rows of `coverage`, checked at `at`.
    pub(crate) fn range_rows(coverage: &Coverage, at: DateTime<Utc>) -> Vec<RangeRow> {
        coverage
            .unit_ranges()
            .map(|(first, last)| RangeRow {
                first,
                last,
                checked_at: at,
            })
            .collect()
    }

    /// The statement inserting `rows` of `stream`, its placeholders numbered
    /// from `$first` (or nameless, with `first` 1, where the dialect wants).
    pub(crate) fn ranges_insert<'a>(
        stream: &'a StreamId,
        rows: &[RangeRow],
        first: usize,
    ) -> (String, Vec<Arg<'a>>) {
        let style = match first {
            1 => placeholders::<D>(),
            _ => Placeholders::Numbered,
        };
        let sql = values_sql(
            &format!("INSERT INTO covered_ranges (source, stream, {RANGE_COLUMNS})"),
            style,
            first,
            (8, rows.len()),
            "",
        );
        let mut args = Vec::with_capacity(rows.len() * 8);
        for row in rows {
            let (kind, first_day, first_key) = row.first.parts();
            let (_, last_day, last_key) = row.last.parts();
            args.extend([
                Arg::Str(&stream.source),
                Arg::Str(&stream.stream),
                Arg::Str(kind),
                Arg::OptDate(first_day),
                Arg::OptDate(last_day),
                Arg::OptInt(first_key),
                Arg::OptInt(last_key),
                D::time(row.checked_at),
            ]);
        }
        (sql, args)
    }

    pub(crate) async fn insert_ranges(
        conn: &mut <D::Db as sqlx::Database>::Connection,
        stream: &StreamId,
        rows: &[RangeRow],
    ) -> Result<(), Error> {
        for chunk in rows.chunks(rows_per_statement::<D>(8)) {
            let (sql, args) = Self::ranges_insert(stream, chunk, 1);
            D::Db::execute(conn, &sql, args)
                .await
                .doing("marking units covered")?;
        }
        Ok(())
    }

    /// The stream's coverage; rewrites its rows when many are redundant.
    pub(crate) async fn read_coverage(&self, stream: &StreamId) -> Result<Coverage, Error> {
        let sql =
            format!("SELECT {RANGE_COLUMNS} FROM covered_ranges WHERE source = $1 AND stream = $2");
        let mut conn = self.conn().await?;
        let rows = D::Db::fetch_all(
            &mut *conn,
            &sql,
            vec![Arg::Str(&stream.source), Arg::Str(&stream.stream)],
        )
        .await
        .doing("reading coverage")?;
        drop(conn);
        let rows = rows
            .iter()
            .map(read_range::<D::Db>)
            .collect::<Result<Vec<_>, _>>()?;
        let coverage = union(&rows);
        // Every commit adds rows of its own. The fewest rows needed are at
        // least the merged spans: count the pieces only when that could
        // leave much to merge.
        let spans = coverage.days.spans().count() + coverage.keys.spans().count();
        if rows.len() > spans + SLACK_ROWS
            && rows.len() > compacted(&rows, &Coverage::default()).len() + SLACK_ROWS
        {
            self.rewrite_coverage(stream, &Coverage::default()).await?;
        }
        Ok(coverage)
    }

    /// Rewrites the stream's rows as [`compacted`] ones without `remove`, in
    /// one transaction. Rows are taken with `DELETE ... RETURNING`, so that
    /// ranges committed meanwhile are kept.
    pub(crate) async fn rewrite_coverage(
        &self,
        stream: &StreamId,
        remove: &Coverage,
    ) -> Result<(), Error> {
        let mut tx = self.begin_write("starting to rewrite coverage").await?;
        let sql = format!(
            "DELETE FROM covered_ranges WHERE source = $1 AND stream = $2 \
             RETURNING {RANGE_COLUMNS}"
        );
        let rows = D::Db::fetch_all(
            &mut *tx,
            &sql,
            vec![Arg::Str(&stream.source), Arg::Str(&stream.stream)],
        )
        .await
        .doing("rewriting coverage")?;
        let rows = rows
            .iter()
            .map(read_range::<D::Db>)
            .collect::<Result<Vec<_>, _>>()?;
        Self::insert_ranges(&mut *tx, stream, &compacted(&rows, remove)).await?;
        tx.commit().await.doing("committing the coverage")?;
        Ok(())
    }

    /// When the covered days of `stream` within `range` were last checked.
    pub(crate) async fn read_last_checked(
        &self,
        stream: &StreamId,
        range: DayRange,
    ) -> Result<Vec<(DayRange, DateTime<Utc>)>, Error> {
        let sql = format!(
            "SELECT {RANGE_COLUMNS} FROM covered_ranges \
             WHERE source = $1 AND stream = $2 AND kind = 'day' \
             AND first_day <= $4 AND last_day >= $3"
        );
        let mut conn = self.conn().await?;
        let rows = D::Db::fetch_all(
            &mut *conn,
            &sql,
            vec![
                Arg::Str(&stream.source),
                Arg::Str(&stream.stream),
                Arg::OptDate(Some(range.first)),
                Arg::OptDate(Some(range.last)),
            ],
        )
        .await
        .doing("reading when days were checked")?;
        let rows = rows
            .iter()
            .map(read_range::<D::Db>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(latest_checks(&rows, Some(range)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, d).unwrap()
    }

    fn at(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, s).unwrap()
    }

    fn days(first: u32, last: u32, t: u32) -> RangeRow {
        RangeRow {
            first: Unit::Day(day(first)),
            last: Unit::Day(day(last)),
            checked_at: at(t),
        }
    }

    fn keys(first: i64, last: i64, t: u32) -> RangeRow {
        RangeRow {
            first: Unit::Key(first),
            last: Unit::Key(last),
            checked_at: at(t),
        }
    }

    fn span(first: u32, last: u32) -> DayRange {
        Span::new(day(first), day(last)).unwrap()
    }

    #[test]
    fn a_later_check_replaces_the_days_it_covers() {
        let rows = [
            days(1, 10, 1),
            days(4, 6, 2),
            days(11, 12, 1),
            days(20, 20, 3),
        ];
        assert_eq!(
            latest_checks(&rows, None),
            vec![
                (span(1, 3), at(1)),
                (span(4, 6), at(2)),
                (span(7, 12), at(1)),
                (span(20, 20), at(3)),
            ]
        );
        assert_eq!(
            latest_checks(&rows, Some(span(5, 8))),
            vec![(span(5, 6), at(2)), (span(7, 8), at(1))]
        );
        assert!(latest_checks(&rows, Some(span(15, 19))).is_empty());
    }

    #[test]
    fn compaction_keeps_coverage_and_check_times() {
        let mut rows = vec![keys(1, 5, 1), keys(6, 9, 4)];
        for d in 1..=9 {
            rows.push(days(d, d, 1));
        }
        rows.push(days(1, 9, 2));
        rows.push(days(3, 4, 3));
        let once = compacted(&rows, &Coverage::default());
        assert_eq!(
            once,
            vec![days(1, 2, 2), days(3, 4, 3), days(5, 9, 2), keys(1, 9, 4)]
        );
        assert_eq!(union(&once), union(&rows));
        assert_eq!(latest_checks(&once, None), latest_checks(&rows, None));
        // Compacting again changes nothing.
        assert_eq!(compacted(&once, &Coverage::default()), once);

        let mut remove = Coverage::default();
        remove.days.insert(span(4, 5));
        remove.keys.insert(Span::new(0, 2).unwrap());
        assert_eq!(
            compacted(&rows, &remove),
            vec![days(1, 2, 2), days(3, 3, 3), days(6, 9, 2), keys(3, 9, 4)]
        );
    }
}
