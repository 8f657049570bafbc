//! Properties of splitting targets into batches: the batches cover exactly
//! the uncovered units, none is too large, the order holds, and day batches
//! map onto contiguous UTC instants in any time zone.

use std::collections::BTreeSet;
use std::num::NonZeroU32;

use chrono::{NaiveDate, TimeDelta, TimeZone};
use chrono_tz::Tz;
use proptest::prelude::*;
use sync_core::plan::{
    local_day_of, local_day_start_utc, local_days_utc_bounds, split, split_uncovered,
};
use sync_core::{Batch, BatchSpan, Coverage, Order, Point, Span, Target};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        // Failures are reported with their minimal input; no files written.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Zones with unusual days: DST at midnight (Santiago), half-hour DST
/// (Lord Howe), a quarter-hour offset (Kathmandu), southern-hemisphere
/// DST, plain DST.
const ZONES: [Tz; 6] = [
    chrono_tz::Europe::Berlin,
    chrono_tz::America::Santiago,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::Asia::Kathmandu,
    chrono_tz::America::New_York,
    chrono_tz::UTC,
];

fn zone() -> impl Strategy<Value = Tz> {
    prop::sample::select(ZONES.to_vec())
}

fn order() -> impl Strategy<Value = Order> {
    prop_oneof![Just(Order::NewestFirst), Just(Order::OldestFirst)]
}

fn size() -> impl Strategy<Value = NonZeroU32> {
    (1u32..8).prop_map(|n| NonZeroU32::new(n).unwrap())
}

/// A first day in a month with DST changes somewhere (March, April,
/// September, October, November) of 2019..=2025.
fn first_day() -> impl Strategy<Value = NaiveDate> {
    (
        2019i32..=2025,
        prop::sample::select(vec![3u32, 4, 9, 10, 11]),
        1u32..=28,
    )
        .prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap())
}

/// Spans of indices around `base` (offsets 0..60), to mark as covered.
fn covered_spans(base: i64) -> impl Strategy<Value = Vec<(i64, i64)>> {
    prop::collection::vec(
        (0i64..60, 0i64..6).prop_map(move |(a, len)| (base + a, base + a + len)),
        0..6,
    )
}

/// Index ranges `(first, last)` of the batches, plus the units of each.
fn batch_units(batches: &[Batch]) -> Vec<(i64, i64, Vec<i64>)> {
    batches
        .iter()
        .map(|b| match &b.span {
            BatchSpan::Days { range, .. } => {
                let (a, z) = (range.first.to_index(), range.last.to_index());
                (a, z, (a..=z).collect())
            }
            BatchSpan::Keys(range) => (
                range.first,
                range.last,
                (range.first..=range.last).collect(),
            ),
            BatchSpan::KeyList(ids) => (
                ids.first().copied().unwrap_or(0),
                ids.last().copied().unwrap_or(0),
                ids.clone(),
            ),
            BatchSpan::Changes { .. } => (0, 0, Vec::new()),
        })
        .collect()
}

/// The batches cover `want` exactly, once each, in pieces of at most `size`,
/// numbered in order and sorted by `order`.
fn check_batches(
    batches: &[Batch],
    want: &BTreeSet<i64>,
    size: NonZeroU32,
    order: Order,
) -> Result<(), TestCaseError> {
    let units = batch_units(batches);
    let mut seen = BTreeSet::new();
    for (i, (b, (_, _, points))) in batches.iter().zip(&units).enumerate() {
        prop_assert_eq!(b.index, i);
        prop_assert!(!points.is_empty(), "empty batch {:?}", b);
        prop_assert!(
            points.len() <= size.get() as usize,
            "batch {:?} larger than {}",
            b,
            size
        );
        prop_assert_eq!(b.unit_count(), points.len() as u128);
        for p in points {
            prop_assert!(
                want.contains(p),
                "batch {:?} holds unit {} not wanted",
                b,
                p
            );
            prop_assert!(seen.insert(*p), "unit {} in two batches", p);
        }
    }
    prop_assert_eq!(&seen, want, "some uncovered unit is in no batch");
    for w in units.windows(2) {
        let ((a_first, a_last, _), (b_first, b_last, _)) = (&w[0], &w[1]);
        match order {
            Order::OldestFirst => prop_assert!(a_last < b_first, "not oldest first: {:?}", batches),
            Order::NewestFirst => prop_assert!(b_last < a_first, "not newest first: {:?}", batches),
        }
    }
    Ok(())
}

/// The uncovered part of `first..=last`, as indices.
fn uncovered(first: i64, last: i64, covered: &[(i64, i64)]) -> BTreeSet<i64> {
    (first..=last)
        .filter(|i| !covered.iter().any(|&(a, z)| a <= *i && *i <= z))
        .collect()
}

/// Each gap of length n is cut into exactly ceil(n / size) batches: no
/// needless small batches.
fn check_batch_count(
    batches: &[Batch],
    want: &BTreeSet<i64>,
    size: NonZeroU32,
) -> Result<(), TestCaseError> {
    let mut expected = 0u64;
    let mut run = 0u64;
    let mut prev: Option<i64> = None;
    for &p in want {
        if prev.is_some_and(|q| q + 1 != p) {
            expected += run.div_ceil(u64::from(size.get()));
            run = 0;
        }
        run += 1;
        prev = Some(p);
    }
    expected += run.div_ceil(u64::from(size.get()));
    prop_assert_eq!(batches.len() as u64, expected);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn key_batches_cover_exactly_the_uncovered_keys(
        (base, first_off, len) in (prop_oneof![Just(-30i64), Just(i64::MIN), Just(i64::MAX - 68)], 0i64..10, 0i64..60),
        covered_offsets in covered_spans(0),
        size in size(),
        order in order(),
    ) {
        let (first, last) = (base + first_off, base + first_off + len);
        let covered: Vec<(i64, i64)> = covered_offsets.iter().map(|&(a, z)| (base + a, base + z)).collect();
        let mut cov = Coverage::default();
        covered.iter().for_each(|&(a, z)| cov.keys.insert(Span::new(a, z).unwrap()));
        let target = Target::Keys(Span::new(first, last).unwrap());
        let batches = split_uncovered(&target, &cov, size, order);
        let want = uncovered(first, last, &covered);
        check_batches(&batches, &want, size, order)?;
        check_batch_count(&batches, &want, size)?;
        // Each batch's covered units are its keys.
        for b in &batches {
            let BatchSpan::Keys(r) = b.span else { return Err(TestCaseError::fail("key batch")) };
            prop_assert_eq!(b.covered_units().keys.spans().collect::<Vec<_>>(), vec![r]);
            prop_assert!(b.utc_bounds().is_none());
        }
        // Splitting with nothing covered covers the whole target.
        let all: BTreeSet<i64> = (first..=last).collect();
        check_batches(&split(&target, size, order), &all, size, order)?;
    }

    #[test]
    fn day_batches_cover_exactly_the_uncovered_days(
        first in first_day(),
        len in 0i64..60,
        covered_offsets in covered_spans(0),
        size in size(),
        order in order(),
        tz in zone(),
    ) {
        let last = first + TimeDelta::days(len);
        let base = first.to_index();
        let covered: Vec<(i64, i64)> = covered_offsets.iter().map(|&(a, z)| (base + a - 3, base + z - 3)).collect();
        let mut cov = Coverage::default();
        for &(a, z) in &covered {
            cov.days.insert(Span::new(NaiveDate::from_index(a).unwrap(), NaiveDate::from_index(z).unwrap()).unwrap());
        }
        let target = Target::days(first, last, tz).unwrap();
        let batches = split_uncovered(&target, &cov, size, order);
        let want = uncovered(base, last.to_index(), &covered);
        check_batches(&batches, &want, size, order)?;
        check_batch_count(&batches, &want, size)?;
        for b in &batches {
            let BatchSpan::Days { tz: batch_tz, .. } = b.span else {
                return Err(TestCaseError::fail("day batch"));
            };
            prop_assert_eq!(batch_tz, tz);
        }
        check_utc_bounds(&batches, tz)?;
    }

    /// Whole runs of days split one day per batch or several: the UTC
    /// bounds of neighbouring days meet exactly, and every local day lasts
    /// 22 to 26 hours.
    #[test]
    fn utc_bounds_of_day_batches_are_contiguous(
        first in first_day(),
        len in 0i64..120,
        size in size(),
        order in order(),
        tz in zone(),
    ) {
        let target = Target::days(first, first + TimeDelta::days(len), tz).unwrap();
        check_utc_bounds(&split(&target, size, order), tz)?;
    }

    /// Zones that skipped a whole local day: Samoa (2011-12-30) and
    /// Kiritimati (1994-12-31). The day before lasts 24 hours, the skipped
    /// day none, and neighbours still meet.
    #[test]
    fn utc_bounds_around_a_skipped_day(
        (tz, skipped) in prop::sample::select(vec![
            (chrono_tz::Pacific::Apia, "2011-12-30"),
            (chrono_tz::Pacific::Kiritimati, "1994-12-31"),
        ]),
        before in 0i64..20,
        len in 0i64..40,
        size in size(),
        order in order(),
    ) {
        let first = skipped.parse::<NaiveDate>().unwrap() - TimeDelta::days(before);
        let target = Target::days(first, first + TimeDelta::days(len), tz).unwrap();
        check_utc_bounds(&split(&target, size, order), tz)?;
    }

    #[test]
    fn key_list_batches_cover_exactly_the_distinct_uncovered_ids(
        ids in prop::collection::vec(-40i64..40, 0..40),
        covered in covered_spans(-40),
        size in size(),
        order in order(),
    ) {
        let mut cov = Coverage::default();
        covered.iter().for_each(|&(a, z)| cov.keys.insert(Span::new(a, z).unwrap()));
        let want: BTreeSet<i64> = ids
            .iter()
            .copied()
            .filter(|i| !covered.iter().any(|&(a, z)| a <= *i && *i <= z))
            .collect();
        let target = Target::KeyList(ids.clone());
        let batches = split_uncovered(&target, &cov, size, order);
        check_batches(&batches, &want, size, order)?;
        prop_assert_eq!(batches.len() as u64, (want.len() as u64).div_ceil(u64::from(size.get())));
        for b in &batches {
            let BatchSpan::KeyList(chunk) = &b.span else { return Err(TestCaseError::fail("id batch")) };
            prop_assert!(chunk.windows(2).all(|w| w[0] < w[1]), "chunk not sorted and distinct: {:?}", chunk);
            let marked: BTreeSet<i64> = b.covered_units().keys.spans().flat_map(|s| s.first..=s.last).collect();
            prop_assert_eq!(marked, chunk.iter().copied().collect::<BTreeSet<_>>());
        }
    }
}

/// Whether any local time of `day` exists in `tz` (checked every quarter
/// hour): false only for a day the zone skipped.
fn day_exists(day: NaiveDate, tz: Tz) -> bool {
    (0..96).any(|q| {
        let t = day.and_time(chrono::NaiveTime::MIN) + TimeDelta::minutes(15 * q);
        tz.from_local_datetime(&t).earliest().is_some()
    })
}

/// UTC bounds of day batches (a day the zone skipped lasts no time): each starts where its first local day starts
/// and ends where the day after its last starts; days last 22 to 26 hours;
/// batches of neighbouring days meet exactly and others do not overlap.
fn check_utc_bounds(batches: &[Batch], tz: Tz) -> Result<(), TestCaseError> {
    let mut spans = Vec::new();
    for b in batches {
        let BatchSpan::Days { range, .. } = b.span else {
            return Err(TestCaseError::fail("day batch"));
        };
        let (start, end) = b.utc_bounds().expect("day batches have UTC bounds");
        prop_assert_eq!(start, local_day_start_utc(range.first, tz));
        if day_exists(range.first, tz) {
            prop_assert_eq!(local_day_of(start, tz), range.first);
        }
        let mut day_start = start;
        for day in range.iter() {
            let (a, z) = local_days_utc_bounds(Span::single(day), tz);
            prop_assert_eq!(
                a,
                day_start,
                "day {} does not start where the previous ended",
                day
            );
            let hours = (z - a).num_minutes() as f64 / 60.0;
            if day_exists(day, tz) {
                prop_assert!(
                    (22.0..=26.0).contains(&hours),
                    "{} in {} lasts {} h",
                    day,
                    tz,
                    hours
                );
                prop_assert_eq!(local_day_of(a, tz), day);
                prop_assert_eq!(local_day_of(z - TimeDelta::seconds(1), tz), day);
            } else {
                prop_assert_eq!(
                    a,
                    z,
                    "{} never happened in {} but lasts {} h",
                    day,
                    tz,
                    hours
                );
            }
            day_start = z;
        }
        prop_assert_eq!(end, day_start);
        spans.push((range, start, end));
    }
    spans.sort_by_key(|(r, _, _)| r.first);
    for w in spans.windows(2) {
        let ((r1, _, end1), (r2, start2, _)) = (&w[0], &w[1]);
        if r1.last.succ_opt() == Some(r2.first) {
            prop_assert_eq!(end1, start2, "{} and {} are neighbours", r1, r2);
        } else {
            prop_assert!(end1 < start2);
        }
    }
    Ok(())
}

/// Samoa skipped Friday 2011-12-30 (it went from 2011-12-29 23:59:59 UTC-10
/// to 2011-12-31 00:00 UTC+14). The day before lasted 24 hours, from
/// 2011-12-29T10:00Z to 2011-12-30T10:00Z, and the skipped day holds no
/// instant at all.
#[test]
fn a_skipped_local_day_holds_no_time() {
    let tz = chrono_tz::Pacific::Apia;
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let (a, z) = local_days_utc_bounds(Span::single(d("2011-12-29")), tz);
    assert_eq!(
        (a, z),
        (at("2011-12-29T10:00:00Z"), at("2011-12-30T10:00:00Z")),
        "Thursday 29th lasted 24 hours"
    );
    let (a, z) = local_days_utc_bounds(Span::single(d("2011-12-30")), tz);
    assert_eq!(a, z, "the skipped Friday has no time: {a}..{z}");
    // Every instant belongs to the local day the bounds put it in.
    let t = at("2011-12-30T05:00:00Z");
    assert_eq!(local_day_of(t, tz), d("2011-12-29"));
}
