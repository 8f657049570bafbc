//! Properties of interval sets, gaps and coverage, checked against a naive
//! model (a `BTreeSet` of point indices) on small ranges, for integer keys
//! (also next to `i64::MIN` and `i64::MAX`) and for calendar days.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use proptest::prelude::*;
use sync_core::{Coverage, IntervalSet, Point, Span, Target, TargetCoverage, Unit};

/// Offsets of generated points from a base: small, so the model stays cheap
/// and spans overlap, touch and leave gaps often.
const REACH: i64 = 80;
const MAX_LEN: i64 = 12;
/// The largest offset a span can reach: bases leave exactly this much room.
const TOP: i64 = REACH - 1 + MAX_LEN - 1;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        // Failures are reported with their minimal input; no files written.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A span `base + a ..= base + a + len` (the base is chosen so that it never
/// overflows; the largest base reaches the top of the space exactly).
fn span_at<T: Point>(base: i64) -> impl Strategy<Value = Span<T>> {
    (0..REACH, 0..MAX_LEN).prop_map(move |(a, len)| {
        let first = T::from_index(base + a).expect("base leaves room");
        let last = T::from_index(base + a + len).expect("base leaves room");
        Span::new(first, last).expect("first <= last")
    })
}

/// Spans and a target around one base point.
fn case<T: Point>(base: i64) -> impl Strategy<Value = (Vec<Span<T>>, Span<T>)> {
    (
        prop::collection::vec(span_at::<T>(base), 0..10),
        (0..REACH, 0..(REACH + MAX_LEN)).prop_map(move |(a, len)| {
            let first = T::from_index(base + a).expect("room");
            let last = T::from_index(base + (a + len).min(TOP)).expect("room");
            Span::new(first, last).expect("ordered")
        }),
    )
}

/// Bases for keys: ordinary keys and both ends of `i64`.
fn key_base() -> impl Strategy<Value = i64> {
    prop_oneof![Just(-40), Just(i64::MIN), Just(i64::MAX - TOP),]
}

/// Bases for days: a recent year, a leap February, and the ends of the
/// calendar chrono can represent.
fn day_base() -> impl Strategy<Value = i64> {
    let d = |s: &str| s.parse::<NaiveDate>().unwrap().to_index();
    prop_oneof![
        Just(d("2024-01-20")),
        Just(d("2023-12-31")),
        Just(NaiveDate::MIN.to_index()),
        Just(NaiveDate::MAX.to_index() - TOP),
    ]
}

fn model<T: Point>(spans: &[Span<T>]) -> BTreeSet<i64> {
    spans
        .iter()
        .flat_map(|s| s.first.to_index()..=s.last.to_index())
        .collect()
}

fn idx<T: Point>(s: &Span<T>) -> (i64, i64) {
    (s.first.to_index(), s.last.to_index())
}

/// Ranges are sorted, disjoint and non-adjacent (so they are maximal).
fn assert_canonical<T: Point>(ranges: &[Span<T>]) -> Result<(), TestCaseError> {
    for w in ranges.windows(2) {
        let ((_, a_last), (b_first, _)) = (idx(&w[0]), idx(&w[1]));
        prop_assert!(
            i128::from(a_last) + 1 < i128::from(b_first),
            "ranges overlap or touch: {:?}",
            ranges
        );
    }
    Ok(())
}

/// Every property of one set and one target.
fn check_set_and_target<T: Point>(spans: &[Span<T>], target: Span<T>) -> Result<(), TestCaseError> {
    let set: IntervalSet<T> = spans.iter().copied().collect();
    let model = model(spans);
    let (t0, t1) = idx(&target);
    let in_target: BTreeSet<i64> = (t0..=t1).collect();

    // The set holds exactly the model's points, as canonical ranges.
    let ranges: Vec<Span<T>> = set.spans().collect();
    assert_canonical(&ranges)?;
    prop_assert_eq!(&self::model(&ranges), &model);
    prop_assert_eq!(set.len(), model.len() as u128);
    prop_assert_eq!(set.is_empty(), model.is_empty());
    let probe_lo = t0
        .min(model.first().copied().unwrap_or(t0))
        .saturating_sub(2);
    let probe_hi = t1
        .max(model.last().copied().unwrap_or(t1))
        .saturating_add(2);
    for i in probe_lo..=probe_hi {
        if let Some(p) = T::from_index(i) {
            prop_assert_eq!(set.contains(p), model.contains(&i), "contains({:?})", p);
        }
    }

    // Covered points and gaps partition the target.
    let covered: BTreeSet<i64> = model.intersection(&in_target).copied().collect();
    prop_assert_eq!(set.count_within(target), covered.len() as u128);
    let gaps = set.gaps(target);
    assert_canonical(&gaps)?;
    let mut gap_points = BTreeSet::new();
    for g in &gaps {
        let (g0, g1) = idx(g);
        prop_assert!(
            t0 <= g0 && g1 <= t1,
            "gap {:?} outside target {:?}",
            g,
            target
        );
        for i in g0..=g1 {
            prop_assert!(!model.contains(&i), "gap {:?} holds covered point {}", g, i);
            prop_assert!(gap_points.insert(i), "point {} in two gaps", i);
        }
        // Maximal: the points just outside a gap are covered or outside the target.
        for edge in [i128::from(g0) - 1, i128::from(g1) + 1] {
            if let Ok(e) = i64::try_from(edge) {
                prop_assert!(
                    !in_target.contains(&e) || model.contains(&e),
                    "gap {:?} not maximal",
                    g
                );
            }
        }
    }
    let union: BTreeSet<i64> = covered.union(&gap_points).copied().collect();
    prop_assert_eq!(&union, &in_target);
    let gap_total: u128 = gaps.iter().map(Span::len).sum();
    prop_assert_eq!(covered.len() as u128 + gap_total, target.len());

    // The summary agrees, and its percent is 100 exactly when nothing is missing.
    let summary = set.coverage(target);
    prop_assert_eq!(summary.covered, covered.len() as u128);
    prop_assert_eq!(summary.total, target.len());
    prop_assert_eq!(&summary.gaps, &gaps);
    let percent = summary.percent();
    prop_assert!((0.0..=100.0).contains(&percent), "percent {}", percent);
    prop_assert_eq!(
        percent == 100.0,
        gaps.is_empty(),
        "percent {} with gaps {:?}",
        percent,
        gaps
    );
    prop_assert_eq!(summary.is_complete(), gaps.is_empty());
    Ok(())
}

/// The set depends only on which points were inserted: not on the order of
/// the spans, duplicates, or how they were grouped.
fn check_order_independent<T: Point>(
    spans: &[Span<T>],
    shuffled: &[Span<T>],
) -> Result<(), TestCaseError> {
    let reference: IntervalSet<T> = spans.iter().copied().collect();
    let permuted: IntervalSet<T> = shuffled.iter().copied().collect();
    prop_assert_eq!(&permuted, &reference);

    let twice: IntervalSet<T> = shuffled.iter().chain(spans).copied().collect();
    prop_assert_eq!(&twice, &reference);

    let mut again = reference.clone();
    for s in shuffled {
        again.insert(*s);
    }
    prop_assert_eq!(&again, &reference);

    let (left, right) = shuffled.split_at(shuffled.len() / 2);
    let mut merged: IntervalSet<T> = right.iter().copied().collect();
    merged.extend(&left.iter().copied().collect());
    prop_assert_eq!(&merged, &reference);

    let mut by_point = IntervalSet::new();
    for s in shuffled.iter().rev() {
        for i in s.first.to_index()..=s.last.to_index() {
            by_point.insert_point(T::from_index(i).expect("in range"));
        }
    }
    prop_assert_eq!(&by_point, &reference);
    prop_assert_eq!(model(&reference.spans().collect::<Vec<_>>()), model(spans));
    Ok(())
}

/// A base, then spans and a target around it, then a permutation of the spans.
fn keys_case() -> impl Strategy<Value = (Vec<Span<i64>>, Span<i64>, Vec<Span<i64>>)> {
    key_base()
        .prop_flat_map(case::<i64>)
        .prop_flat_map(|(spans, target)| {
            let shuffled = Just(spans.clone()).prop_shuffle();
            (Just(spans), Just(target), shuffled)
        })
}

fn days_case(
) -> impl Strategy<Value = (Vec<Span<NaiveDate>>, Span<NaiveDate>, Vec<Span<NaiveDate>>)> {
    day_base()
        .prop_flat_map(case::<NaiveDate>)
        .prop_flat_map(|(spans, target)| {
            let shuffled = Just(spans.clone()).prop_shuffle();
            (Just(spans), Just(target), shuffled)
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn keys_partition_target_and_match_model((spans, target, _) in keys_case()) {
        check_set_and_target(&spans, target)?;
    }

    #[test]
    fn keys_insert_is_idempotent_and_order_independent((spans, _, shuffled) in keys_case()) {
        check_order_independent(&spans, &shuffled)?;
    }

    #[test]
    fn days_partition_target_and_match_model((spans, target, _) in days_case()) {
        check_set_and_target(&spans, target)?;
    }

    #[test]
    fn days_insert_is_idempotent_and_order_independent((spans, _, shuffled) in days_case()) {
        check_order_independent(&spans, &shuffled)?;
    }

    /// Coverage of a day target through `Target::coverage` is the interval
    /// set's coverage, and its gaps are the set's gaps.
    #[test]
    fn target_coverage_matches_set_coverage((spans, target, _) in days_case()) {
        let mut c = Coverage::default();
        spans.iter().for_each(|s| c.days.insert(*s));
        let t = Target::Days { range: target, tz: chrono_tz::UTC };
        let TargetCoverage::Days(s) = t.coverage(&c) else {
            return Err(TestCaseError::fail("a day target gives day coverage"));
        };
        prop_assert_eq!(&s, &c.days.coverage(target));
        let tc = t.coverage(&c);
        prop_assert_eq!(tc.percent() == 100.0, tc.gap_count() == 0);
        prop_assert_eq!(tc.is_complete(), tc.gap_count() == 0);
        let gaps: Vec<(Unit, Unit)> = c
            .days
            .gaps(target)
            .into_iter()
            .map(|g| (Unit::Day(g.first), Unit::Day(g.last)))
            .collect();
        prop_assert_eq!(tc.gaps(), gaps);
        prop_assert_eq!(t.day_range(), Some(target));
    }

    /// For an id list: covered ids plus the ids in gaps are exactly the
    /// distinct ids, each once; gaps hold only listed, uncovered ids.
    #[test]
    fn key_list_coverage_partitions_the_ids(
        ids in prop::collection::vec(-20i64..20, 0..40),
        covered in prop::collection::vec(
            (-25i64..25, 0i64..4).prop_map(|(a, len)| Span::new(a, a + len).unwrap()),
            0..6,
        ),
    ) {
        let mut c = Coverage::default();
        covered.iter().for_each(|s| c.keys.insert(*s));
        let cov_model = model(&covered);
        let distinct: BTreeSet<i64> = ids.iter().copied().collect();
        let t = Target::KeyList(ids.clone());
        let TargetCoverage::Keys(s) = t.coverage(&c) else {
            return Err(TestCaseError::fail("an id list gives key coverage"));
        };
        prop_assert_eq!(s.total, distinct.len() as u128);
        prop_assert_eq!(t.unit_count(), distinct.len() as u128);
        let want_covered = distinct.iter().filter(|i| cov_model.contains(i)).count() as u128;
        prop_assert_eq!(s.covered, want_covered);
        assert_canonical(&s.gaps)?;
        let mut in_gaps = BTreeSet::new();
        for g in &s.gaps {
            for i in g.first..=g.last {
                prop_assert!(distinct.contains(&i) && !cov_model.contains(&i), "gap {:?}", g);
                prop_assert!(in_gaps.insert(i));
            }
        }
        let uncovered: BTreeSet<i64> = distinct.difference(&cov_model).copied().collect();
        prop_assert_eq!(&in_gaps, &uncovered);
        let percent = s.percent();
        prop_assert!((0.0..=100.0).contains(&percent));
        prop_assert_eq!(percent == 100.0, s.gaps.is_empty());
    }

    /// On large targets the percent is never rounded up: with anything
    /// missing it stays below 100, and it is within 0.01 below the exact
    /// share.
    #[test]
    fn percent_never_overstates_coverage(
        total in 1i64..50_000_000,
        missing in prop::collection::vec(0.0f64..1.0, 0..4),
    ) {
        let target = Span::new(0, total - 1).unwrap();
        let mut holes = IntervalSet::new();
        for m in &missing {
            holes.insert_point((m * total as f64) as i64);
        }
        // The whole target but the holes.
        let kept: IntervalSet<i64> = holes.gaps(target).into_iter().collect();
        let c = kept.coverage(target);
        let exact = 100.0 * c.covered as f64 / total as f64;
        prop_assert_eq!(c.covered, (total as u128) - holes.len());
        prop_assert!(c.percent() <= exact + 1e-9, "{} > {}", c.percent(), exact);
        prop_assert!(c.percent() > exact - 0.01 - 1e-9, "{} vs {}", c.percent(), exact);
        prop_assert_eq!(c.percent() == 100.0, holes.is_empty());
        prop_assert_eq!(c.gaps, holes.spans().collect::<Vec<_>>());
    }
}
