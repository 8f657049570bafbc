//! Targets, batches and how a target is split into batches.
//!
//! A target is what a run should cover: a range of local days in the
//! business's time zone, a range of integer keys, or an explicit list of ids.
//! It is split into batches of N days or N keys; only the parts not yet
//! covered are split, so a resumed run starts where the last one stopped.

use std::fmt;
use std::num::NonZeroU32;

use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::coverage::Coverage;
use crate::interval::{DayRange, KeyRange, Point, Span};

/// What a run should cover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Local calendar days in the business's IANA time zone, both ends
    /// included.
    Days {
        /// The days, inclusive.
        range: DayRange,
        /// The business's time zone; a "day" is a calendar day there.
        tz: Tz,
    },
    /// An inclusive range of integer keys.
    Keys(KeyRange),
    /// An explicit list of integer ids (duplicates are ignored).
    KeyList(Vec<i64>),
}

impl Target {
    /// Days `first..=last` in `tz`; an error naming both dates when `last` is
    /// before `first`.
    pub fn days(first: NaiveDate, last: NaiveDate, tz: Tz) -> crate::Result<Self> {
        let range = Span::new(first, last).ok_or_else(|| {
            crate::SyncError::invalid_input(format!(
                "date range is inverted: {first} is after {last}"
            ))
        })?;
        Ok(Self::Days { range, tz })
    }

    /// Days `start..end` in `tz`, the end excluded.
    pub fn days_exclusive(start: NaiveDate, end: NaiveDate, tz: Tz) -> crate::Result<Self> {
        let range = Span::from_exclusive(start, end).ok_or_else(|| {
            crate::SyncError::invalid_input(format!(
                "date range {start}..{end} (end excluded) holds no day"
            ))
        })?;
        Ok(Self::Days { range, tz })
    }

    /// Every unit of the target, as a coverage set.
    pub fn units(&self) -> Coverage {
        let mut c = Coverage::default();
        match self {
            Self::Days { range, .. } => c.days.insert(*range),
            Self::Keys(range) => c.keys.insert(*range),
            Self::KeyList(ids) => ids.iter().for_each(|&id| c.keys.insert_point(id)),
        }
        c
    }

    /// How many units (days or keys) the target holds.
    pub fn unit_count(&self) -> u64 {
        match self {
            Self::Days { range, .. } => range.len(),
            Self::Keys(range) => range.len(),
            Self::KeyList(_) => self.units().keys.len(),
        }
    }
}

/// Which end of the target comes first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Most recent days (highest keys) first: the useful data arrives first.
    #[default]
    NewestFirst,
    /// Oldest days (lowest keys) first.
    OldestFirst,
}

/// The part of a target one batch covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchSpan {
    /// Consecutive local days in a time zone.
    Days {
        /// The days, inclusive.
        range: DayRange,
        /// The business's time zone.
        tz: Tz,
    },
    /// A range of keys.
    Keys(KeyRange),
    /// An explicit chunk of ids, sorted and without duplicates.
    KeyList(Vec<i64>),
    /// Everything that changed in `since..until` (delta sync). Covers no unit.
    Changes {
        /// Start of the change window (inclusive).
        since: DateTime<Utc>,
        /// End of the change window (exclusive).
        until: DateTime<Utc>,
    },
}

/// One unit of work: fetched, stored and checkpointed as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Position of the batch in its run, from 0.
    pub index: usize,
    /// What it covers.
    pub span: BatchSpan,
}

impl Batch {
    /// The units this batch marks as covered once its records are stored.
    pub fn covered_units(&self) -> Coverage {
        let mut c = Coverage::default();
        match &self.span {
            BatchSpan::Days { range, .. } => c.days.insert(*range),
            BatchSpan::Keys(range) => c.keys.insert(*range),
            BatchSpan::KeyList(ids) => ids.iter().for_each(|&id| c.keys.insert_point(id)),
            BatchSpan::Changes { .. } => {}
        }
        c
    }

    /// How many units the batch covers.
    pub fn unit_count(&self) -> u64 {
        match &self.span {
            BatchSpan::Days { range, .. } => range.len(),
            BatchSpan::Keys(range) => range.len(),
            BatchSpan::KeyList(ids) => ids.len() as u64,
            BatchSpan::Changes { .. } => 0,
        }
    }

    /// For a day batch, the UTC instants `[start, end)` of its local days
    /// (DST-correct: a day is not always 24 hours).
    pub fn utc_bounds(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        match &self.span {
            BatchSpan::Days { range, tz } => Some(local_days_utc_bounds(*range, *tz)),
            BatchSpan::Changes { since, until } => Some((*since, *until)),
            _ => None,
        }
    }
}

impl fmt::Display for BatchSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Days { range, .. } => write!(f, "days {range}"),
            Self::Keys(range) => write!(f, "keys {range}"),
            Self::KeyList(ids) => match (ids.first(), ids.last()) {
                (Some(a), Some(b)) => write!(f, "{} ids {a}..={b}", ids.len()),
                _ => write!(f, "no ids"),
            },
            Self::Changes { since, until } => {
                write!(f, "changes {}..{}", since.to_rfc3339(), until.to_rfc3339())
            }
        }
    }
}

/// The UTC instant at which local `day` starts in `tz`.
///
/// Midnight may not exist (a DST jump at 00:00) or may exist twice; the day
/// then starts at the first local instant that exists. A day the zone skipped
/// altogether (Samoa's 2011-12-30) lasts no time: it starts where the next
/// day starts.
pub fn local_day_start_utc(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let mut day = day;
    // Zones have skipped at most one whole day; look a few days ahead.
    for _ in 0..4 {
        let mut time = NaiveTime::MIN;
        // DST gaps are at most a few hours; step in quarter hours until one exists.
        for _ in 0..(4 * 24) {
            if let Some(t) = tz.from_local_datetime(&day.and_time(time)).earliest() {
                return t.with_timezone(&Utc);
            }
            time += ChronoDuration::minutes(15);
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    // Unreachable for real zones; fall back to UTC midnight rather than panic.
    day.and_time(NaiveTime::MIN).and_utc()
}

/// The UTC instants `[start, end)` covering local days `range` in `tz`.
pub fn local_days_utc_bounds(range: DayRange, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = local_day_start_utc(range.first, tz);
    let end = match range.last.succ_opt() {
        Some(next) => local_day_start_utc(next, tz),
        None => DateTime::<Utc>::MAX_UTC,
    };
    (start, end)
}

/// The local calendar day of a UTC instant in `tz`.
pub fn local_day_of(instant: DateTime<Utc>, tz: Tz) -> NaiveDate {
    instant.with_timezone(&tz).date_naive()
}

/// Splits the parts of `target` not in `covered` into batches of at most
/// `size` units, in `order`. Batches never straddle a covered unit, so
/// resuming a run redoes nothing that was stored.
///
/// Pass an empty `covered` (or use [`split`]) to split the whole target.
pub fn split_uncovered(
    target: &Target,
    covered: &Coverage,
    size: NonZeroU32,
    order: Order,
) -> Vec<Batch> {
    let size = u64::from(size.get());
    let spans = match target {
        Target::Days { range, tz } => chunk_spans(covered.days.gaps(*range), size, order)
            .into_iter()
            .map(|range| BatchSpan::Days { range, tz: *tz })
            .collect::<Vec<_>>(),
        Target::Keys(range) => chunk_spans(covered.keys.gaps(*range), size, order)
            .into_iter()
            .map(BatchSpan::Keys)
            .collect(),
        Target::KeyList(ids) => {
            let mut ids: Vec<i64> = ids
                .iter()
                .copied()
                .filter(|&id| !covered.keys.contains(id))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            if order == Order::NewestFirst {
                ids.reverse();
            }
            ids.chunks(size as usize)
                .map(|chunk| {
                    let mut chunk = chunk.to_vec();
                    chunk.sort_unstable();
                    BatchSpan::KeyList(chunk)
                })
                .collect()
        }
    };
    spans
        .into_iter()
        .enumerate()
        .map(|(index, span)| Batch { index, span })
        .collect()
}

/// Splits the whole of `target` into batches of at most `size` units.
pub fn split(target: &Target, size: NonZeroU32, order: Order) -> Vec<Batch> {
    split_uncovered(target, &Coverage::default(), size, order)
}

// Cuts each gap into pieces of at most `size` points. Newest-first cuts from
// the end of each gap, so that the first batch holds the latest units.
fn chunk_spans<T: Point>(gaps: Vec<Span<T>>, size: u64, order: Order) -> Vec<Span<T>> {
    let size = i128::from(size);
    let mut out = Vec::new();
    let mut push = |a: i128, b: i128| {
        if let (Some(first), Some(last)) = (T::from_index(a as i64), T::from_index(b as i64)) {
            out.push(Span { first, last });
        }
    };
    match order {
        Order::OldestFirst => {
            for gap in gaps {
                let (mut a, end) = (
                    i128::from(gap.first.to_index()),
                    i128::from(gap.last.to_index()),
                );
                while a <= end {
                    let b = (a + size - 1).min(end);
                    push(a, b);
                    a = b + 1;
                }
            }
        }
        Order::NewestFirst => {
            for gap in gaps.into_iter().rev() {
                let (start, mut b) = (
                    i128::from(gap.first.to_index()),
                    i128::from(gap.last.to_index()),
                );
                while b >= start {
                    let a = (b - size + 1).max(start);
                    push(a, b);
                    b = a - 1;
                }
            }
        }
    }
    out
}

/// Splits a list of ids into chunks of at most `size`, keeping their order.
pub fn chunk_ids<T: Clone>(ids: &[T], size: NonZeroU32) -> Vec<Vec<T>> {
    ids.chunks(size.get() as usize).map(<[T]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }
    fn n(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).unwrap()
    }

    #[test]
    fn days_split_newest_first_and_oldest_first() {
        let t = Target::days(d("2024-09-01"), d("2024-09-10"), chrono_tz::Europe::Moscow).unwrap();
        let newest = split(&t, n(4), Order::NewestFirst);
        let ranges: Vec<String> = newest.iter().map(|b| b.span.to_string()).collect();
        assert_eq!(
            ranges,
            [
                "days 2024-09-07..=2024-09-10",
                "days 2024-09-03..=2024-09-06",
                "days 2024-09-01..=2024-09-02"
            ]
        );
        let oldest = split(&t, n(4), Order::OldestFirst);
        assert_eq!(oldest[0].span.to_string(), "days 2024-09-01..=2024-09-04");
        assert_eq!(oldest[2].span.to_string(), "days 2024-09-09..=2024-09-10");
        assert_eq!(oldest.iter().map(Batch::unit_count).sum::<u64>(), 10);
        assert!(oldest.iter().enumerate().all(|(i, b)| b.index == i));
    }

    #[test]
    fn inverted_and_empty_ranges_are_errors() {
        let tz = chrono_tz::UTC;
        let e = Target::days(d("2024-09-02"), d("2024-09-01"), tz).unwrap_err();
        assert!(
            e.to_string().contains("2024-09-02 is after 2024-09-01"),
            "{e}"
        );
        assert!(Target::days_exclusive(d("2024-09-02"), d("2024-09-02"), tz).is_err());
        let t = Target::days_exclusive(d("2024-09-01"), d("2024-09-03"), tz).unwrap();
        assert_eq!(t.unit_count(), 2);
    }

    #[test]
    fn covered_units_are_skipped_and_never_straddled() {
        let t = Target::Keys(Span::new(1, 10).unwrap());
        let mut covered = Coverage::default();
        covered.keys.insert(Span::new(4, 5).unwrap());
        let batches = split_uncovered(&t, &covered, n(3), Order::OldestFirst);
        let spans: Vec<_> = batches.iter().map(|b| b.span.clone()).collect();
        assert_eq!(
            spans,
            vec![
                BatchSpan::Keys(Span::new(1, 3).unwrap()),
                BatchSpan::Keys(Span::new(6, 8).unwrap()),
                BatchSpan::Keys(Span::new(9, 10).unwrap()),
            ]
        );
    }

    #[test]
    fn key_list_chunks_dedupe_and_skip_covered() {
        let t = Target::KeyList(vec![9, 1, 5, 5, 3, 7, 2]);
        let mut covered = Coverage::default();
        covered.keys.insert_point(3);
        let b = split_uncovered(&t, &covered, n(2), Order::OldestFirst);
        let chunks: Vec<_> = b.iter().map(|b| b.span.clone()).collect();
        assert_eq!(
            chunks,
            vec![
                BatchSpan::KeyList(vec![1, 2]),
                BatchSpan::KeyList(vec![5, 7]),
                BatchSpan::KeyList(vec![9]),
            ]
        );
        assert_eq!(chunk_ids(&[1, 2, 3], n(2)), vec![vec![1, 2], vec![3]]);
    }

    #[test]
    fn dst_days_are_not_24_hours() {
        // Europe/Berlin: 2024-03-31 has 23 hours, 2024-10-27 has 25.
        let tz = chrono_tz::Europe::Berlin;
        let spring = Batch {
            index: 0,
            span: BatchSpan::Days {
                range: Span::single(d("2024-03-31")),
                tz,
            },
        };
        let (a, b) = spring.utc_bounds().unwrap();
        assert_eq!((b - a).num_hours(), 23);
        assert_eq!(a.to_rfc3339(), "2024-03-30T23:00:00+00:00");
        let autumn = local_days_utc_bounds(Span::single(d("2024-10-27")), tz);
        assert_eq!((autumn.1 - autumn.0).num_hours(), 25);
    }

    #[test]
    fn midnight_that_does_not_exist() {
        // America/Santiago skipped 2022-09-11 00:00 (clocks went to 01:00).
        let tz = chrono_tz::America::Santiago;
        let start = local_day_start_utc(d("2022-09-11"), tz);
        assert_eq!(local_day_of(start, tz), d("2022-09-11"));
        assert_eq!(start.to_rfc3339(), "2022-09-11T04:00:00+00:00");
    }
}
