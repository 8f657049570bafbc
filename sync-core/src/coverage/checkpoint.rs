//! What a stream has covered: the checkpoint.

use chrono::NaiveDate;

use crate::coverage::interval::{CoverageSummary, IntervalSet, Span};
use crate::domain::record::Unit;

/// The units of a stream that are stored: days and integer keys.
///
/// This is the checkpoint. A unit enters it only in the same transaction that
/// stores the unit's records (see [`crate::Store::commit`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Covered local days.
    pub days: IntervalSet<NaiveDate>,
    /// Covered integer keys.
    pub keys: IntervalSet<i64>,
}

impl Coverage {
    /// Whether nothing is covered.
    pub fn is_empty(&self) -> bool {
        self.days.is_empty() && self.keys.is_empty()
    }

    /// Adds every unit of `other`.
    pub fn extend(&mut self, other: &Coverage) {
        self.days.extend(&other.days);
        self.keys.extend(&other.keys);
    }

    /// The units of this coverage that `other` does not hold.
    pub fn subtract(&self, other: &Coverage) -> Coverage {
        Coverage {
            days: self.days.subtract(&other.days),
            keys: self.keys.subtract(&other.keys),
        }
    }

    /// Every covered range as its first and last unit (both days or both
    /// keys), days first: the rows a store keeps coverage in, with
    /// [`Unit::parts`] for their columns.
    pub fn unit_ranges(&self) -> impl Iterator<Item = (Unit, Unit)> + '_ {
        let days = self
            .days
            .spans()
            .map(|s| (Unit::Day(s.first), Unit::Day(s.last)));
        let keys = self
            .keys
            .spans()
            .map(|s| (Unit::Key(s.first), Unit::Key(s.last)));
        days.chain(keys)
    }

    /// Adds the units `first..=last` (a range read back from a store's row);
    /// false, adding nothing, when they are of different kinds or `last` is
    /// before `first`.
    pub fn insert_unit_range(&mut self, first: Unit, last: Unit) -> bool {
        match (first, last) {
            (Unit::Day(first), Unit::Day(last)) => Span::new(first, last)
                .map(|s| self.days.insert(s))
                .is_some(),
            (Unit::Key(first), Unit::Key(last)) => Span::new(first, last)
                .map(|s| self.keys.insert(s))
                .is_some(),
            _ => false,
        }
    }
}

/// Coverage of a target, by kind of unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetCoverage {
    /// A day target.
    Days(CoverageSummary<NaiveDate>),
    /// A key target.
    Keys(CoverageSummary<i64>),
}

impl TargetCoverage {
    /// Covered units.
    pub fn covered(&self) -> u128 {
        match self {
            Self::Days(c) => c.covered,
            Self::Keys(c) => c.covered,
        }
    }
    /// Units in the target.
    pub fn total(&self) -> u128 {
        match self {
            Self::Days(c) => c.total,
            Self::Keys(c) => c.total,
        }
    }
    /// Covered share in percent (exactly 100 only when complete).
    pub fn percent(&self) -> f64 {
        match self {
            Self::Days(c) => c.percent(),
            Self::Keys(c) => c.percent(),
        }
    }
    /// Number of gaps (maximal missing ranges).
    pub fn gap_count(&self) -> usize {
        match self {
            Self::Days(c) => c.gaps.len(),
            Self::Keys(c) => c.gaps.len(),
        }
    }

    /// The gaps (maximal missing ranges, sorted), as first and last unit.
    pub fn gaps(&self) -> Vec<(Unit, Unit)> {
        match self {
            Self::Days(c) => c
                .gaps
                .iter()
                .map(|g| (Unit::Day(g.first), Unit::Day(g.last)))
                .collect(),
            Self::Keys(c) => c
                .gaps
                .iter()
                .map(|g| (Unit::Key(g.first), Unit::Key(g.last)))
                .collect(),
        }
    }

    /// Whether every unit of the target is covered.
    pub fn is_complete(&self) -> bool {
        self.gap_count() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtract_removes_days_and_keys_separately() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let mut c = Coverage::default();
        c.days
            .insert(Span::new(d("2024-03-01"), d("2024-03-10")).unwrap());
        c.keys.insert(Span::new(1, 100).unwrap());
        let mut remove = Coverage::default();
        remove.days.insert(Span::single(d("2024-03-05")));
        remove.keys.insert(Span::new(50, 200).unwrap());
        let kept = c.subtract(&remove);
        assert_eq!(
            kept.days.spans().collect::<Vec<_>>(),
            vec![
                Span::new(d("2024-03-01"), d("2024-03-04")).unwrap(),
                Span::new(d("2024-03-06"), d("2024-03-10")).unwrap(),
            ]
        );
        assert_eq!(
            kept.keys.spans().collect::<Vec<_>>(),
            vec![Span::new(1, 49).unwrap()]
        );
        assert!(c.subtract(&c).is_empty());
    }

    #[test]
    fn unit_ranges_round_trip_and_bad_ranges_are_refused() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let mut c = Coverage::default();
        c.days
            .insert(Span::new(d("2024-03-01"), d("2024-03-03")).unwrap());
        c.days.insert(Span::single(d("2024-03-09")));
        c.keys.insert(Span::new(-5, 7).unwrap());
        let ranges: Vec<(Unit, Unit)> = c.unit_ranges().collect();
        assert_eq!(
            ranges,
            [
                (Unit::Day(d("2024-03-01")), Unit::Day(d("2024-03-03"))),
                (Unit::Day(d("2024-03-09")), Unit::Day(d("2024-03-09"))),
                (Unit::Key(-5), Unit::Key(7)),
            ]
        );
        let mut back = Coverage::default();
        for (first, last) in ranges {
            assert!(back.insert_unit_range(first, last));
        }
        assert_eq!(back, c);
        assert!(!back.insert_unit_range(Unit::Key(3), Unit::Key(2)));
        assert!(!back.insert_unit_range(Unit::Day(d("2024-04-01")), Unit::Key(2)));
        assert_eq!(back, c);
    }
}
