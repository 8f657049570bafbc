//! The work of one run: which units it fetches, cut into batches as it
//! goes. The same code prices a run for `plan` and drives it for `run`, so
//! that the plan's requests are the run's.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::coverage::checkpoint::Coverage;
use crate::coverage::interval::{DayRange, IntervalSet, Span};
use crate::plan::pricing::Plan;
use crate::plan::split::split_uncovered;
use crate::plan::target::{Batch, BatchSpan, Order, Target};
use crate::plan::windows::WindowPlanner;
use crate::source::api::{FetchCost, Probe, SourceInfo, Units, Windows};

/// When days already stored are fetched again by a delta run of a source
/// that cannot list its changes: by age, often for the days around today,
/// rarely for old ones.
#[derive(Clone, Debug, PartialEq)]
pub struct Refresh {
    /// Days before today re-checked at every delta run.
    pub every_run_back: u32,
    /// Days after today re-checked at every delta run (bookings ahead).
    pub every_run_ahead: u32,
    /// Older days: `(days back from today, most age)` tiers, nearest first;
    /// a day is re-checked when its last check is older than the age of the
    /// first tier that reaches back to it. Days beyond every tier are never
    /// re-checked.
    pub tiers: Vec<(u32, Duration)>,
}

impl Default for Refresh {
    /// Every run: the last 14 days and the next 30; weekly for a quarter;
    /// monthly after that.
    fn default() -> Self {
        const DAY: u64 = 24 * 60 * 60;
        Self {
            every_run_back: 14,
            every_run_ahead: 30,
            tiers: vec![
                (90, Duration::from_secs(7 * DAY)),
                (u32::MAX, Duration::from_secs(30 * DAY)),
            ],
        }
    }
}

impl Refresh {
    /// Whether `day`, last checked at `checked`, is due at `now` (`today`
    /// being `now`'s local day).
    pub fn is_due(
        &self,
        day: NaiveDate,
        checked: DateTime<Utc>,
        now: DateTime<Utc>,
        today: NaiveDate,
    ) -> bool {
        let back = (today - day).num_days();
        if back <= i64::from(self.every_run_back) && -back <= i64::from(self.every_run_ahead) {
            return true;
        }
        if back < 0 {
            return false;
        }
        let age = (now - checked).to_std().unwrap_or(Duration::ZERO);
        self.tiers
            .iter()
            .find(|(reach, _)| back <= i64::from(*reach))
            .is_some_and(|(_, max_age)| age >= *max_age)
    }
}

/// What decides the work of a run, besides what is stored.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Scope {
    pub(crate) batch_size: Option<NonZeroU32>,
    pub(crate) order: Order,
    pub(crate) force: bool,
    /// A delta run of a day source without change listing: re-check by age.
    pub(crate) refresh: Option<Refresh>,
    /// A delta run of a source that lists changes: one batch of them.
    pub(crate) changes: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub(crate) max_batches: Option<usize>,
}

/// What was read before the run: from the store and from the source.
#[derive(Clone, Debug, Default)]
pub(crate) struct Known {
    pub(crate) covered: Coverage,
    /// When covered days were last fetched.
    pub(crate) checked: Vec<(DayRange, DateTime<Utc>)>,
    /// The keys the source lists, for a listed keyed source.
    pub(crate) keys: Option<Vec<i64>>,
    pub(crate) probe: Option<Probe>,
    pub(crate) now: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
enum Cut {
    /// Windows sized by density.
    Density { max_pages: u32 },
    /// Windows of this many days.
    Fixed(u64),
}

#[derive(Clone, Debug)]
enum Queue {
    /// Day ranges still to fetch, in fetch order, each with whether it
    /// re-checks stored days. Newest first cuts from the end of each range.
    Days {
        ranges: VecDeque<(DayRange, bool)>,
        tz: Tz,
        order: Order,
        cut: Cut,
    },
    /// Batches made up front (keys, changes).
    Made(VecDeque<Batch>),
}

/// The work of one run (see the module documentation).
#[derive(Clone, Debug)]
pub(crate) struct Work {
    queue: Queue,
    /// Density of items per day: sizes windows and estimates items.
    density: WindowPlanner,
    cost: FetchCost,
    page_size: Option<u32>,
    next_index: usize,
    max_batches: Option<usize>,
    units: u128,
    /// The target as the run sees it: for a listed keyed source, the keys
    /// it lists.
    target: Target,
}

/// What a run is expected to do.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Expected {
    pub(crate) batches: u64,
    pub(crate) requests: f64,
    pub(crate) items: Option<f64>,
}

impl Work {
    /// The work of running `target` for a source described by `info`.
    pub(crate) fn new(info: &SourceInfo, target: &Target, scope: &Scope, known: &Known) -> Self {
        let (page_size, max_pages) = match info.units {
            Units::Days {
                windows:
                    Windows::ByDensity {
                        page_size,
                        max_pages,
                    },
                ..
            } => (Some(page_size), max_pages),
            _ => (None, 1),
        };
        let mut density = WindowPlanner::new(page_size.unwrap_or(1), max_pages);
        if let Some(p) = known.probe {
            density = density.with_probe(p.items, p.days);
        }
        let mut work = Self {
            queue: Queue::Made(VecDeque::new()),
            density,
            cost: info.cost,
            page_size,
            next_index: 0,
            max_batches: scope.max_batches,
            units: 0,
            target: target.clone(),
        };
        if let Some((since, until)) = scope.changes {
            work.queue = Queue::Made(VecDeque::from([Batch::new(
                0,
                BatchSpan::Changes { since, until },
            )]));
            return work;
        }
        match target {
            Target::Days { range, tz } => {
                let (ranges, units) = due_days(*range, *tz, scope, known);
                work.units = units;
                let cut = match (scope.batch_size, info.units) {
                    (Some(n), _) => Cut::Fixed(u64::from(n.get())),
                    (
                        None,
                        Units::Days {
                            windows: Windows::Fixed { days },
                            ..
                        },
                    ) => Cut::Fixed(u64::from(days.max(1))),
                    (
                        None,
                        Units::Days {
                            windows: Windows::ByDensity { max_pages, .. },
                            ..
                        },
                    ) => Cut::Density { max_pages },
                    (None, Units::Keys { .. }) => Cut::Fixed(1),
                };
                work.queue = Queue::Days {
                    ranges,
                    tz: *tz,
                    order: scope.order,
                    cut,
                };
            }
            Target::Keys(_) | Target::KeyList(_) => {
                let chunk = match (scope.batch_size, info.units) {
                    (Some(n), _) => n,
                    (None, Units::Keys { chunk, .. }) => {
                        NonZeroU32::new(chunk).unwrap_or(NonZeroU32::MIN)
                    }
                    (None, Units::Days { .. }) => NonZeroU32::MIN,
                };
                // A listed source's target is what it lists (within the
                // target's keys); a forced run adds the keys stored before
                // that it lists no more, so that the source can say they
                // are gone.
                let target = match (&known.keys, target) {
                    (Some(keys), Target::Keys(range)) => {
                        Target::KeyList(listed_and_gone(keys, &known.covered, scope.force, |k| {
                            range.contains(k)
                        }))
                    }
                    (Some(keys), Target::KeyList(wanted)) => {
                        let wanted: IntervalSet<i64> =
                            wanted.iter().map(|&k| Span::single(k)).collect();
                        Target::KeyList(listed_and_gone(keys, &known.covered, scope.force, |k| {
                            wanted.contains(k)
                        }))
                    }
                    _ => target.clone(),
                };
                let skip = if scope.force {
                    Coverage::default()
                } else {
                    known.covered.clone()
                };
                let batches = split_uncovered(&target, &skip, chunk, scope.order)
                    .into_iter()
                    .map(|mut b| {
                        b.recheck = scope.force;
                        b
                    });
                work.units = target.unit_count() - target.coverage(&skip).covered();
                work.queue = Queue::Made(batches.collect());
                work.target = target;
            }
        }
        work
    }

    /// Units (days, keys) the run will fetch.
    pub(crate) fn units(&self) -> u128 {
        self.units
    }

    /// The target as the run sees it (a listed source's keys in place of a
    /// key range).
    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// The next batch, or `None` when all are out (or `max_batches` are).
    pub(crate) fn next_batch(&mut self) -> Option<Batch> {
        if self.max_batches.is_some_and(|m| self.next_index >= m) {
            return None;
        }
        let mut batch = match &mut self.queue {
            Queue::Made(batches) => batches.pop_front()?,
            Queue::Days {
                ranges,
                tz,
                order,
                cut,
            } => {
                let (range, recheck) = ranges.pop_front()?;
                let len = match cut {
                    Cut::Fixed(n) => *n,
                    Cut::Density { .. } => self.density.next_len(days_in(range)),
                };
                let (take, rest) = cut_range(range, len, *order);
                if let Some(rest) = rest {
                    ranges.push_front((rest, recheck));
                }
                let mut b = Batch::new(
                    0,
                    BatchSpan::Days {
                        range: take,
                        tz: *tz,
                    },
                );
                b.recheck = recheck;
                b
            }
        };
        batch.index = self.next_index;
        self.next_index += 1;
        Some(batch)
    }

    /// Whether more batches would come if `max_batches` allowed them.
    pub(crate) fn is_cut_short(&self) -> bool {
        let left = match &self.queue {
            Queue::Made(b) => !b.is_empty(),
            Queue::Days { ranges, .. } => !ranges.is_empty(),
        };
        left && self.max_batches.is_some_and(|m| self.next_index >= m)
    }

    /// A window whose first page says it holds far more than planned: true
    /// when it should be given back and cut again, smaller.
    pub(crate) fn is_oversized(&self, batch: &Batch, total: u64) -> bool {
        let (
            Queue::Days {
                cut: Cut::Density { max_pages },
                ..
            },
            Some(page),
        ) = (&self.queue, self.page_size)
        else {
            return false;
        };
        let pages = total.div_ceil(u64::from(page.max(1)));
        batch.unit_count() > 1 && pages > 2 * u64::from(*max_pages)
    }

    /// Puts `batch` back to be cut again (its index is not reused).
    pub(crate) fn give_back(&mut self, batch: Batch) {
        if let (Queue::Days { ranges, .. }, BatchSpan::Days { range, .. }) =
            (&mut self.queue, &batch.span)
        {
            ranges.push_front((*range, batch.recheck));
        }
    }

    /// `batch`'s days cut again into windows with what is known now (a
    /// window far larger than planned, handed back to a queue), oldest
    /// first; any other batch as it is.
    pub(crate) fn cut(&self, batch: &Batch) -> Vec<Batch> {
        let BatchSpan::Days { range, tz } = batch.span else {
            return vec![batch.clone()];
        };
        let mut out = Vec::new();
        let mut rest = Some(range);
        while let Some(range) = rest {
            let len = match &self.queue {
                Queue::Days {
                    cut: Cut::Fixed(n), ..
                } => *n,
                _ => self.density.next_len(days_in(range)),
            };
            let (take, left) = cut_range(range, len, Order::OldestFirst);
            let mut b = Batch::new(batch.index, BatchSpan::Days { range: take, tz });
            b.recheck = batch.recheck;
            out.push(b);
            rest = left;
        }
        out
    }

    /// Every batch left, in order (ignoring `max_batches`): what a worker
    /// queues for everyone.
    pub(crate) fn drain(&mut self) -> Vec<Batch> {
        self.max_batches = None;
        std::iter::from_fn(|| self.next_batch()).collect()
    }

    /// Learns the density from a batch that held `items` items.
    pub(crate) fn observe(&mut self, batch: &Batch, items: u64) {
        if let BatchSpan::Days { range, .. } = batch.span {
            self.density.observe(days_in(range), items);
        }
    }

    /// Items per day, as estimated now.
    pub(crate) fn density(&self) -> Option<f64> {
        self.density.density()
    }

    /// What the rest of the work is expected to cost, with what is known
    /// now: batches, requests (pages, per-window and per-item requests), and
    /// items when a density is known.
    pub(crate) fn expected(&self) -> Expected {
        let mut rest = self.clone();
        let (mut batches, mut requests, mut items) = (0u64, 0.0f64, 0.0f64);
        let density = self.density.density();
        while let Some(batch) = rest.next_batch() {
            batches += 1;
            requests += self.cost.per_window;
            match &batch.span {
                BatchSpan::Days { range, .. } => {
                    let days = days_in(*range);
                    let n = density.unwrap_or(0.0) * days as f64;
                    items += n;
                    requests += self.cost.per_item * n;
                    if self.page_size.is_some() {
                        requests += self.density.expected_requests(days);
                    } else if self.cost.per_window == 0.0 && self.cost.per_item == 0.0 {
                        requests += 1.0;
                    }
                }
                _ => {
                    if self.cost.per_window == 0.0 {
                        requests += 1.0;
                    }
                }
            }
        }
        Expected {
            batches,
            requests,
            items: density.map(|_| items),
        }
    }
}

/// Most covered keys a forced run of a listed source adds to what the
/// source lists; coverage holding more than this is a key range, not a set
/// of stored ids, and is left out.
const MAX_GONE_KEYS: u128 = 1_000_000;

/// The keys a listed source lists that `wanted` holds, sorted; with
/// `force`, also the covered keys `wanted` holds that it no longer lists
/// (records stored before: a re-check lets the source report them gone).
fn listed_and_gone(
    listed: &[i64],
    covered: &Coverage,
    force: bool,
    wanted: impl Fn(i64) -> bool,
) -> Vec<i64> {
    let mut keys: Vec<i64> = listed.iter().copied().filter(|&k| wanted(k)).collect();
    if force && covered.keys.len() <= MAX_GONE_KEYS {
        keys.extend(
            covered
                .keys
                .spans()
                .flat_map(|s| s.iter())
                .filter(|&k| wanted(k)),
        );
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The days of `range` in `tz` the run fetches, in fetch order, each range
/// with whether it re-checks stored days; and how many days in all.
fn due_days(
    range: DayRange,
    tz: Tz,
    scope: &Scope,
    known: &Known,
) -> (VecDeque<(DayRange, bool)>, u128) {
    let mut fresh: IntervalSet<NaiveDate> = IntervalSet::new();
    let mut again: IntervalSet<NaiveDate> = IntervalSet::new();
    for gap in known.covered.days.gaps(range) {
        fresh.insert(gap);
    }
    let covered_in_range: Vec<DayRange> = known
        .covered
        .days
        .spans()
        .filter_map(|s| Span::new(s.first.max(range.first), s.last.min(range.last)))
        .collect();
    if scope.force {
        for s in covered_in_range {
            again.insert(s);
        }
    } else if let Some(refresh) = &scope.refresh {
        let now = known.now.unwrap_or_else(Utc::now);
        let today = now.with_timezone(&tz).date_naive();
        for (span, checked) in &known.checked {
            for day in span.iter().filter(|d| range.contains(*d)) {
                if refresh.is_due(day, *checked, now, today) {
                    again.insert_point(day);
                }
            }
        }
        // Covered days the store has no check time for are due too.
        let mut timed: IntervalSet<NaiveDate> = IntervalSet::new();
        for (span, _) in &known.checked {
            timed.insert(*span);
        }
        for s in covered_in_range {
            for gap in timed.gaps(s) {
                again.insert(gap);
            }
        }
    }
    let units = fresh.len() + again.len();
    let mut ranges: Vec<(DayRange, bool)> = fresh
        .spans()
        .map(|s| (s, false))
        .chain(again.spans().map(|s| (s, true)))
        .collect();
    ranges.sort_by_key(|(s, _)| s.first);
    if scope.order == Order::NewestFirst {
        ranges.reverse();
    }
    (ranges.into(), units)
}

fn days_in(range: DayRange) -> u64 {
    u64::try_from(range.len()).unwrap_or(u64::MAX)
}

/// `len` days off `range` from the end it is fetched from, and the rest.
fn cut_range(range: DayRange, len: u64, order: Order) -> (DayRange, Option<DayRange>) {
    let len = i64::try_from(len.max(1)).unwrap_or(i64::MAX);
    if range.len() <= len as u128 {
        return (range, None);
    }
    match order {
        Order::OldestFirst => {
            let last = range.first + chrono::Duration::days(len - 1);
            let rest = Span::new(last + chrono::Duration::days(1), range.last);
            (
                Span {
                    first: range.first,
                    last,
                },
                rest,
            )
        }
        Order::NewestFirst => {
            let first = range.last - chrono::Duration::days(len - 1);
            let rest = Span::new(range.first, first - chrono::Duration::days(1));
            (
                Span {
                    first,
                    last: range.last,
                },
                rest,
            )
        }
    }
}

/// What a run of a target would do, priced at every preset.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct JobPlan {
    /// Units (days, keys) the run would fetch.
    pub units: u128,
    /// Batches (windows, key chunks) it would store.
    pub batches: u64,
    /// Requests it would make, logins, probes and listings included.
    pub requests: u64,
    /// Records it would fetch, when the source could count them.
    pub records: Option<u64>,
    /// Records per day the estimate rests on, when known.
    pub density: Option<f64>,
    /// Requests made to price it (the probe, a key listing, a login).
    pub requests_to_plan: u64,
    /// The run at each named preset, in the order of
    /// [`Preset::ALL`](crate::plan::Preset::ALL).
    pub presets: Vec<Plan>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::StreamId;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn scope() -> Scope {
        Scope {
            batch_size: None,
            order: Order::NewestFirst,
            force: false,
            refresh: None,
            changes: None,
            max_batches: None,
        }
    }

    fn density_info() -> SourceInfo {
        SourceInfo::days(
            StreamId::new("t", "records"),
            Tz::UTC,
            Windows::ByDensity {
                page_size: 200,
                max_pages: 5,
            },
        )
    }

    #[test]
    fn density_windows_tile_the_uncovered_days_newest_first() {
        let target = Target::days(d("2023-07-01"), d("2025-06-30"), Tz::UTC).unwrap();
        let mut known = Known {
            probe: Some(Probe {
                items: 20_000,
                days: 731,
            }),
            ..Known::default()
        };
        known
            .covered
            .days
            .insert(Span::new(d("2024-01-01"), d("2024-01-31")).unwrap());
        let mut work = Work::new(&density_info(), &target, &scope(), &known);
        assert_eq!(work.units(), 731 - 31);
        let expected = work.expected();
        let mut seen: IntervalSet<NaiveDate> = IntervalSet::new();
        let mut last_first = d("2100-01-01");
        let mut n = 0;
        while let Some(b) = work.next_batch() {
            let BatchSpan::Days { range, .. } = b.span else {
                panic!("days")
            };
            assert!(range.last < last_first, "newest first, no overlap");
            assert!(!b.recheck);
            last_first = range.first;
            seen.insert(range);
            assert_eq!(b.index, n);
            n += 1;
        }
        assert_eq!(n as u64, expected.batches);
        assert_eq!(seen.len(), 700);
        assert!(seen.spans().all(|s| !s.contains(d("2024-01-15"))));
        // About one request per page of records, and not much more.
        assert!(
            expected.requests < 110.0 * 700.0 / 731.0,
            "{}",
            expected.requests
        );
    }

    #[test]
    fn fixed_windows_and_max_batches() {
        let target = Target::days(d("2024-01-01"), d("2024-01-31"), Tz::UTC).unwrap();
        let info = SourceInfo::days(StreamId::new("t", "w"), Tz::UTC, Windows::Fixed { days: 7 });
        let mut s = scope();
        s.order = Order::OldestFirst;
        s.max_batches = Some(2);
        let mut work = Work::new(&info, &target, &s, &Known::default());
        let a = work.next_batch().unwrap();
        assert_eq!(a.span.to_string(), "days 2024-01-01..=2024-01-07");
        assert!(work.next_batch().is_some());
        assert!(work.next_batch().is_none());
        assert!(work.is_cut_short());
    }

    #[test]
    fn a_delta_run_rechecks_by_age() {
        let target = Target::days(d("2024-01-01"), d("2024-12-31"), Tz::UTC).unwrap();
        let info = SourceInfo::days(StreamId::new("t", "w"), Tz::UTC, Windows::Fixed { days: 7 });
        let now: DateTime<Utc> = "2024-12-31T12:00:00Z".parse().unwrap();
        let year = Span::new(d("2024-01-01"), d("2024-12-31")).unwrap();
        let mut known = Known {
            now: Some(now),
            ..Known::default()
        };
        known.covered.days.insert(year);
        // Everything checked 10 days ago.
        known.checked = vec![(year, now - chrono::Duration::days(10))];
        let mut s = scope();
        s.refresh = Some(Refresh::default());
        let work = Work::new(&info, &target, &s, &known);
        // The last 14 days (every run) and the quarter before (weekly, 10
        // days old): 90 days plus today; older days are monthly.
        assert_eq!(work.units(), 91);
        let mut w = work.clone();
        let first = w.next_batch().unwrap();
        assert!(first.recheck);
        assert_eq!(first.span.to_string(), "days 2024-12-25..=2024-12-31");
    }

    #[test]
    fn keys_come_from_the_listing() {
        let info = SourceInfo::keys(StreamId::new("t", "k"), 2, true);
        let mut known = Known {
            keys: Some(vec![1, 5, 9, 12, 40]),
            ..Known::default()
        };
        known.covered.keys.insert_point(5);
        let mut s = scope();
        s.order = Order::OldestFirst;
        let mut work = Work::new(&info, &Target::Keys(Span::new(1, 20).unwrap()), &s, &known);
        assert_eq!(work.units(), 3);
        assert_eq!(
            work.next_batch().unwrap().span,
            BatchSpan::KeyList(vec![1, 9])
        );
        assert_eq!(
            work.next_batch().unwrap().span,
            BatchSpan::KeyList(vec![12])
        );
        assert!(work.next_batch().is_none());

        // A forced run fetches again what is stored, and the stored keys
        // the source no longer lists (3, 15), so that it can report them
        // gone; keys outside the target stay out (30).
        known.covered.keys.insert_point(3);
        known.covered.keys.insert_point(15);
        known.covered.keys.insert_point(30);
        s.force = true;
        let range = Span::new(1, 20).unwrap();
        let mut work = Work::new(&info, &Target::Keys(range), &s, &known);
        assert_eq!(work.units(), 6);
        let mut seen = Vec::new();
        while let Some(b) = work.next_batch() {
            assert!(b.recheck);
            let BatchSpan::KeyList(ids) = b.span else {
                panic!("key lists")
            };
            seen.extend(ids);
        }
        assert_eq!(seen, vec![1, 3, 5, 9, 12, 15]);
        let listed = Target::KeyList(vec![3, 9, 30, 40]);
        let work = Work::new(&info, &listed, &s, &known);
        assert_eq!(work.target(), &Target::KeyList(vec![3, 9, 30, 40]));
    }

    #[test]
    fn an_oversized_window_is_cut_again() {
        let target = Target::days(d("2024-01-01"), d("2024-12-31"), Tz::UTC).unwrap();
        let known = Known {
            probe: Some(Probe {
                items: 10,
                days: 366,
            }),
            ..Known::default()
        };
        let mut work = Work::new(&density_info(), &target, &scope(), &known);
        let big = work.next_batch().unwrap();
        assert!(work.is_oversized(&big, 50_000));
        work.observe(&big, 50_000);
        work.give_back(big.clone());
        let next = work.next_batch().unwrap();
        assert!(next.unit_count() < big.unit_count());
        assert_eq!(next.index, 1);
    }
}
