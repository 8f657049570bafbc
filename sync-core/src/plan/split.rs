//! How a target is cut into fixed-size batches: only the parts not yet
//! covered are split, so a resumed run starts where the last one stopped.

use std::num::NonZeroU32;

use crate::coverage::checkpoint::Coverage;
use crate::coverage::interval::{Point, Span};
use crate::plan::target::{Batch, BatchSpan, Order, Target};

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
        .map(|(index, span)| Batch::new(index, span))
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
    use chrono::NaiveDate;

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
        assert_eq!(oldest.iter().map(Batch::unit_count).sum::<u128>(), 10);
        assert!(oldest.iter().enumerate().all(|(i, b)| b.index == i));
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
}
