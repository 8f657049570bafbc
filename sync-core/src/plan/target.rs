//! Targets and batches: what a run should cover, and the units of work it
//! is cut into.
//!
//! A target is a range of local days in the business's time zone, a range
//! of integer keys, or an explicit list of ids. A batch is one unit of work:
//! fetched, stored and checkpointed as a whole.

use std::fmt;

use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::coverage::checkpoint::{Coverage, TargetCoverage};
use crate::coverage::interval::{CoverageSummary, DayRange, IntervalSet, KeyRange, Span};

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

    /// How many units (days or keys) the target holds: exact, whatever the
    /// range (the keys of all of `i64` are 2^64).
    pub fn unit_count(&self) -> u128 {
        match self {
            Self::Days { range, .. } => range.len(),
            Self::Keys(range) => range.len(),
            Self::KeyList(_) => self.units().keys.len(),
        }
    }

    /// The days of a day target (`None` for keys).
    pub fn day_range(&self) -> Option<DayRange> {
        match self {
            Self::Days { range, .. } => Some(*range),
            _ => None,
        }
    }

    /// The time zone of a day target (`None` for keys).
    pub fn tz(&self) -> Option<Tz> {
        match self {
            Self::Days { tz, .. } => Some(*tz),
            _ => None,
        }
    }

    /// How much of the target `covered` holds: covered and total units and
    /// the gaps. For a [`Target::KeyList`] the summary's `target` is the
    /// smallest range holding every id, and `total` the number of distinct
    /// ids (not the length of that range); its gaps are the missing ids, as
    /// maximal runs of consecutive ids.
    pub fn coverage(&self, covered: &Coverage) -> TargetCoverage {
        match self {
            Self::Days { range, .. } => TargetCoverage::Days(covered.days.coverage(*range)),
            Self::Keys(range) => TargetCoverage::Keys(covered.keys.coverage(*range)),
            Self::KeyList(ids) => {
                let wanted: IntervalSet<i64> = ids.iter().map(|&id| Span::single(id)).collect();
                let covered_ids = wanted.spans().map(|s| covered.keys.count_within(s)).sum();
                let gaps = wanted.spans().flat_map(|s| covered.keys.gaps(s)).collect();
                let target = match (wanted.spans().next(), wanted.spans().last()) {
                    (Some(a), Some(b)) => Span {
                        first: a.first,
                        last: b.last,
                    },
                    _ => Span::single(0),
                };
                TargetCoverage::Keys(CoverageSummary {
                    target,
                    covered: covered_ids,
                    total: wanted.len(),
                    gaps,
                })
            }
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Position of the batch in its run, from 0.
    pub index: usize,
    /// What it covers.
    pub span: BatchSpan,
    /// The batch fetches again units that are stored already (a forced run
    /// or a re-check by age): a source must not reuse stored copies to save
    /// requests, since what changed may show only on the pages it skips.
    #[serde(default)]
    pub recheck: bool,
}

impl Batch {
    /// Batch `index` covering `span`, a first fetch.
    pub fn new(index: usize, span: BatchSpan) -> Self {
        Self {
            index,
            span,
            recheck: false,
        }
    }

    /// The days of a day batch, in order (none for other batches).
    pub fn days(&self) -> impl DoubleEndedIterator<Item = NaiveDate> {
        let range = match &self.span {
            BatchSpan::Days { range, .. } => Some(*range),
            _ => None,
        };
        range.into_iter().flat_map(|r| r.iter())
    }

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
    pub fn unit_count(&self) -> u128 {
        match &self.span {
            BatchSpan::Days { range, .. } => range.len(),
            BatchSpan::Keys(range) => range.len(),
            BatchSpan::KeyList(ids) => ids.len() as u128,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
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
    fn dst_days_are_not_24_hours() {
        // Europe/Berlin: 2024-03-31 has 23 hours, 2024-10-27 has 25.
        let tz = chrono_tz::Europe::Berlin;
        let spring = Batch::new(
            0,
            BatchSpan::Days {
                range: Span::single(d("2024-03-31")),
                tz,
            },
        );
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
    #[test]
    fn key_list_coverage_counts_only_listed_ids() {
        let mut c = Coverage::default();
        c.keys.insert(Span::new(1, 3).unwrap());
        let t = Target::KeyList(vec![2, 3, 10, 11, 20]);
        let TargetCoverage::Keys(s) = t.coverage(&c) else {
            panic!("key target gives key coverage")
        };
        assert_eq!((s.covered, s.total), (2, 5));
        assert_eq!(s.gaps, vec![Span::new(10, 11).unwrap(), Span::single(20)]);
    }
}
