//! What a stream has covered: the checkpoint.

use chrono::NaiveDate;

use crate::batch::Target;
use crate::interval::{CoverageSummary, IntervalSet, Span};

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

    /// How many units of `target` are covered, of how many, and the gaps.
    pub fn of_target(&self, target: &Target) -> TargetCoverage {
        match target {
            Target::Days { range, .. } => TargetCoverage::Days(self.days.coverage(*range)),
            Target::Keys(range) => TargetCoverage::Keys(self.keys.coverage(*range)),
            Target::KeyList(ids) => {
                let wanted: IntervalSet<i64> = ids.iter().map(|&id| Span::single(id)).collect();
                let covered = wanted.spans().map(|s| self.keys.count_within(s)).sum();
                let mut gaps = Vec::new();
                for s in wanted.spans() {
                    gaps.extend(self.keys.gaps(s));
                }
                let total = wanted.len();
                let target = match (wanted.spans().next(), wanted.spans().last()) {
                    (Some(a), Some(b)) => Span {
                        first: a.first,
                        last: b.last,
                    },
                    _ => Span::single(0),
                };
                TargetCoverage::Keys(CoverageSummary {
                    target,
                    covered,
                    total,
                    gaps,
                })
            }
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
    pub fn covered(&self) -> u64 {
        match self {
            Self::Days(c) => c.covered,
            Self::Keys(c) => c.covered,
        }
    }
    /// Units in the target.
    pub fn total(&self) -> u64 {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_list_coverage_counts_only_listed_ids() {
        let mut c = Coverage::default();
        c.keys.insert(Span::new(1, 3).unwrap());
        let t = Target::KeyList(vec![2, 3, 10, 11, 20]);
        let TargetCoverage::Keys(s) = c.of_target(&t) else {
            panic!("key target gives key coverage")
        };
        assert_eq!((s.covered, s.total), (2, 5));
        assert_eq!(s.gaps, vec![Span::new(10, 11).unwrap(), Span::single(20)]);
    }
}
