//! Sets of points (days or integer keys) kept as merged inclusive ranges.
//!
//! This is the data structure behind checkpoints, coverage and gaps: a
//! checkpoint is the set of units already stored, the gaps of a target are
//! the parts of the target the set does not contain.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// A point of a coverage space: a local calendar day or an integer key.
///
/// Points map one-to-one onto consecutive integers, so that "the next day"
/// and "the next key" are both `index + 1`.
pub trait Point: Copy + Ord + fmt::Debug + Send + Sync + 'static {
    /// The integer position of the point.
    fn to_index(self) -> i64;
    /// The point at an integer position, if there is one.
    fn from_index(index: i64) -> Option<Self>;
}

impl Point for i64 {
    fn to_index(self) -> i64 {
        self
    }
    fn from_index(index: i64) -> Option<Self> {
        Some(index)
    }
}

impl Point for NaiveDate {
    fn to_index(self) -> i64 {
        i64::from(self.num_days_from_ce())
    }
    fn from_index(index: i64) -> Option<Self> {
        i32::try_from(index)
            .ok()
            .and_then(NaiveDate::from_num_days_from_ce_opt)
    }
}

/// An inclusive range of points: `first..=last`, never empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Span<T> {
    /// The first point in the range.
    pub first: T,
    /// The last point in the range (inclusive).
    pub last: T,
}

/// An inclusive range of local calendar days.
pub type DayRange = Span<NaiveDate>;
/// An inclusive range of integer keys (ids).
pub type KeyRange = Span<i64>;

impl<T: Point> Span<T> {
    /// `first..=last`, or `None` when `last` is before `first`.
    pub fn new(first: T, last: T) -> Option<Self> {
        (first <= last).then_some(Self { first, last })
    }

    /// The range holding one point.
    pub fn single(point: T) -> Self {
        Self {
            first: point,
            last: point,
        }
    }

    /// The range `start..end` with an exclusive end, or `None` when it is
    /// empty.
    pub fn from_exclusive(start: T, end: T) -> Option<Self> {
        let last = T::from_index(end.to_index().checked_sub(1)?)?;
        Self::new(start, last)
    }

    /// How many points the range holds: exact for any range (the range of
    /// every `i64` holds 2^64).
    pub fn len(&self) -> u128 {
        span_len(self.first.to_index(), self.last.to_index())
    }

    /// Always false: a span holds at least one point. Present for clippy's
    /// `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether the range holds `point`.
    pub fn contains(&self, point: T) -> bool {
        self.first <= point && point <= self.last
    }

    /// The points of the range, in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = T> {
        (self.first.to_index()..=self.last.to_index()).filter_map(T::from_index)
    }
}

impl<T: fmt::Display + PartialEq> fmt::Display for Span<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}..={}", self.first, self.last)
        }
    }
}

/// A set of points stored as sorted, merged, non-adjacent inclusive ranges.
///
/// Inserting is idempotent and order-independent: the set depends only on
/// which points were inserted.
#[derive(Clone, PartialEq, Eq)]
pub struct IntervalSet<T> {
    // first index -> last index (inclusive); ranges never touch or overlap.
    ranges: BTreeMap<i64, i64>,
    _point: std::marker::PhantomData<T>,
}

impl<T> Default for IntervalSet<T> {
    fn default() -> Self {
        Self {
            ranges: BTreeMap::new(),
            _point: std::marker::PhantomData,
        }
    }
}

impl<T: Point> fmt::Debug for IntervalSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.spans()).finish()
    }
}

impl<T: Point> IntervalSet<T> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every point of `span`.
    pub fn insert(&mut self, span: Span<T>) {
        let (mut first, mut last) = (span.first.to_index(), span.last.to_index());
        // Merge with a range that starts before and touches or overlaps.
        if let Some((&s, &e)) = self.ranges.range(..=first).next_back() {
            if e >= first.saturating_sub(1) {
                first = s;
                last = last.max(e);
            }
        }
        // Absorb every range that starts inside or right after the new one.
        let absorbed: Vec<i64> = self
            .ranges
            .range(first..=last.saturating_add(1))
            .map(|(&s, _)| s)
            .collect();
        for s in absorbed {
            if let Some(e) = self.ranges.remove(&s) {
                last = last.max(e);
            }
        }
        self.ranges.insert(first, last);
    }

    /// Adds one point.
    pub fn insert_point(&mut self, point: T) {
        self.insert(Span::single(point));
    }

    /// Adds every point of another set.
    pub fn extend(&mut self, other: &IntervalSet<T>) {
        for span in other.spans() {
            self.insert(span);
        }
    }

    /// Whether the set holds `point`.
    pub fn contains(&self, point: T) -> bool {
        let i = point.to_index();
        self.ranges
            .range(..=i)
            .next_back()
            .is_some_and(|(_, &e)| e >= i)
    }

    /// Whether the set holds no point.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many points the set holds.
    pub fn len(&self) -> u128 {
        self.ranges.iter().map(|(&s, &e)| span_len(s, e)).sum()
    }

    /// The merged ranges, sorted.
    pub fn spans(&self) -> impl Iterator<Item = Span<T>> + '_ {
        self.ranges.iter().filter_map(|(&s, &e)| {
            Some(Span {
                first: T::from_index(s)?,
                last: T::from_index(e)?,
            })
        })
    }

    /// How many points of `target` the set holds.
    pub fn count_within(&self, target: Span<T>) -> u128 {
        let (t0, t1) = (target.first.to_index(), target.last.to_index());
        let mut n: u128 = 0;
        // The range that starts before the target may reach into it.
        let before = self.ranges.range(..t0).next_back();
        for (&s, &e) in before.into_iter().chain(self.ranges.range(t0..=t1)) {
            let (a, b) = (s.max(t0), e.min(t1));
            if a <= b {
                n += span_len(a, b);
            }
        }
        n
    }

    /// The parts of `target` the set does not hold, as sorted, maximal ranges.
    pub fn gaps(&self, target: Span<T>) -> Vec<Span<T>> {
        let (t0, t1) = (target.first.to_index(), target.last.to_index());
        let mut gaps = Vec::new();
        let mut cursor = t0; // first index not yet accounted for
        let before = self.ranges.range(..t0).next_back();
        for (&s, &e) in before.into_iter().chain(self.ranges.range(t0..=t1)) {
            if e < cursor {
                continue;
            }
            if s > cursor {
                push_span(&mut gaps, cursor, s - 1);
            }
            if e >= t1 {
                return gaps;
            }
            cursor = e + 1;
        }
        push_span(&mut gaps, cursor, t1);
        gaps
    }

    /// The points of this set that `other` does not hold (to forget part of
    /// a checkpoint, for instance).
    pub fn subtract(&self, other: &IntervalSet<T>) -> IntervalSet<T> {
        let mut kept = IntervalSet::new();
        for span in self.spans() {
            for gap in other.gaps(span) {
                kept.insert(gap);
            }
        }
        kept
    }

    /// Coverage of `target`: covered points, total, percent and gaps.
    pub fn coverage(&self, target: Span<T>) -> CoverageSummary<T> {
        let covered = self.count_within(target);
        let total = target.len();
        CoverageSummary {
            target,
            covered,
            total,
            gaps: self.gaps(target),
        }
    }
}

// At most 2^64 (every i64), so a set's total fits a u128 with room to spare.
fn span_len(first: i64, last: i64) -> u128 {
    (i128::from(last) - i128::from(first) + 1).unsigned_abs()
}

fn push_span<T: Point>(out: &mut Vec<Span<T>>, first: i64, last: i64) {
    if first > last {
        return;
    }
    if let (Some(first), Some(last)) = (T::from_index(first), T::from_index(last)) {
        out.push(Span { first, last });
    }
}

impl<T: Point> FromIterator<Span<T>> for IntervalSet<T> {
    fn from_iter<I: IntoIterator<Item = Span<T>>>(iter: I) -> Self {
        let mut set = Self::new();
        for span in iter {
            set.insert(span);
        }
        set
    }
}

/// How much of a target range is covered, and what is missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoverageSummary<T> {
    /// The range asked about.
    pub target: Span<T>,
    /// Points of the target that are covered.
    pub covered: u128,
    /// Points in the target.
    pub total: u128,
    /// The missing parts, sorted and maximal.
    pub gaps: Vec<Span<T>>,
}

impl<T> CoverageSummary<T> {
    /// Covered share in percent, rounded down to two decimals, so that it is
    /// exactly `100.0` if and only if nothing is missing.
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            return 100.0;
        }
        let basis_points = self.covered.saturating_mul(10_000) / self.total;
        basis_points as f64 / 100.0
    }

    /// Whether every point of the target is covered.
    pub fn is_complete(&self) -> bool {
        self.covered == self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(spans: &[(i64, i64)]) -> IntervalSet<i64> {
        spans
            .iter()
            .map(|&(a, b)| Span::new(a, b).unwrap())
            .collect()
    }

    #[test]
    fn insert_merges_overlapping_and_adjacent() {
        let s = set(&[(1, 3), (5, 6), (4, 4), (10, 12), (11, 20)]);
        assert_eq!(
            s.spans().collect::<Vec<_>>(),
            vec![Span::new(1, 6).unwrap(), Span::new(10, 20).unwrap()]
        );
        assert_eq!(s.len(), 6 + 11);
    }

    #[test]
    fn insert_swallows_many_ranges() {
        let s = set(&[(1, 1), (3, 3), (5, 5), (7, 7), (0, 8)]);
        assert_eq!(
            s.spans().collect::<Vec<_>>(),
            vec![Span::new(0, 8).unwrap()]
        );
    }

    #[test]
    fn gaps_and_coverage() {
        let s = set(&[(-5, 2), (5, 6), (9, 30)]);
        let target = Span::new(0, 10).unwrap();
        assert_eq!(
            s.gaps(target),
            vec![Span::new(3, 4).unwrap(), Span::new(7, 8).unwrap()]
        );
        let c = s.coverage(target);
        assert_eq!((c.covered, c.total), (7, 11));
        assert_eq!(c.percent(), 63.63);
        assert!(!c.is_complete());
    }

    #[test]
    fn subtract_splits_trims_and_drops_ranges() {
        let s = set(&[(1, 10), (20, 30), (40, 45)]);
        let remove = set(&[(3, 4), (25, 42), (100, 200)]);
        assert_eq!(
            s.subtract(&remove).spans().collect::<Vec<_>>(),
            vec![
                Span::new(1, 2).unwrap(),
                Span::new(5, 10).unwrap(),
                Span::new(20, 24).unwrap(),
                Span::new(43, 45).unwrap(),
            ]
        );
        assert_eq!(s.subtract(&IntervalSet::new()), s);
        assert!(s.subtract(&s).is_empty());
        assert!(IntervalSet::<i64>::new().subtract(&s).is_empty());
        let whole = set(&[(i64::MIN, i64::MAX)]);
        assert_eq!(
            whole.subtract(&set(&[(i64::MIN + 1, i64::MAX)])),
            set(&[(i64::MIN, i64::MIN)])
        );
    }

    #[test]
    fn percent_is_not_rounded_up_to_100() {
        let c = CoverageSummary {
            target: Span::new(0, 0).unwrap(),
            covered: 999_999,
            total: 1_000_000,
            gaps: vec![Span::new(0, 0).unwrap()],
        };
        assert!(c.percent() < 100.0);
    }

    #[test]
    fn extreme_keys_do_not_overflow() {
        let s = set(&[(i64::MIN, i64::MAX)]);
        assert_eq!(s.len(), 1u128 << 64);
        assert!(s.gaps(Span::new(i64::MIN, i64::MAX).unwrap()).is_empty());
        let s = set(&[(i64::MAX, i64::MAX)]);
        assert_eq!(
            s.gaps(Span::new(i64::MAX - 2, i64::MAX).unwrap()),
            vec![Span::new(i64::MAX - 2, i64::MAX - 1).unwrap()]
        );
    }

    #[test]
    fn days_use_calendar_order() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let mut s = IntervalSet::new();
        s.insert(Span::new(d("2024-02-27"), d("2024-02-29")).unwrap());
        s.insert_point(d("2024-03-01"));
        assert_eq!(
            s.spans().collect::<Vec<_>>(),
            vec![Span::new(d("2024-02-27"), d("2024-03-01")).unwrap()]
        );
        assert!(s.contains(d("2024-02-29")));
        assert!(!s.contains(d("2024-03-02")));
    }

    #[test]
    fn a_gap_of_one_key_in_all_of_i64_is_not_complete() {
        let all = Span::new(i64::MIN, i64::MAX).unwrap();
        let s = set(&[(i64::MIN + 1, i64::MAX)]);
        let c = s.coverage(all);
        assert_eq!((c.covered, c.total), ((1u128 << 64) - 1, 1u128 << 64));
        assert!(!c.is_complete());
        assert!(c.percent() < 100.0);
        assert_eq!(c.gaps, vec![Span::single(i64::MIN)]);
    }

    #[test]
    fn exclusive_end() {
        assert_eq!(Span::from_exclusive(3, 3), None);
        assert_eq!(Span::from_exclusive(3, 5), Span::new(3, 4));
    }
}
