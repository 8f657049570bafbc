//! Core micro-benchmarks: splitting and coverage of 10 years of days and of
//! 10 million ids, interval-set inserts, and the limiter's cost per acquire.
//!
//! ```text
//! cargo bench -p sync-benches
//! ```
//! Short measurements (10 samples, 2 s each) so the suite finishes in a few
//! minutes on two CPUs.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use criterion::{criterion_main, BatchSize, Criterion};
use sync_core::plan::split_uncovered;
use sync_core::{Coverage, IntervalSet, Order, RateLimiter, RateLimits, Span, Target, Tz};

const IDS: i64 = 10_000_000;
const CHUNK: i64 = 200;

fn size(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

fn ten_years() -> Target {
    let first = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap_or_default();
    let last = NaiveDate::from_ymd_opt(2024, 12, 31).unwrap_or_default();
    Target::Days {
        range: Span { first, last },
        tz: Tz::Europe__Moscow,
    }
}

fn ten_million_ids() -> Target {
    Target::Keys(Span {
        first: 0,
        last: IDS - 1,
    })
}

/// Every day of ten years covered but one in ten (365 holes).
fn days_with_holes() -> Coverage {
    let mut c = Coverage::default();
    if let Target::Days { range, .. } = ten_years() {
        for (i, day) in range.iter().enumerate() {
            if i % 10 != 9 {
                c.days.insert_point(day);
            }
        }
    }
    c
}

/// Ten million ids covered in chunks of 200, every other chunk missing
/// (25,000 spans and 25,000 holes: a run where half the batches failed).
fn ids_every_other_chunk() -> Coverage {
    let mut c = Coverage::default();
    let mut start = 0;
    while start < IDS {
        c.keys.insert(Span {
            first: start,
            last: start + CHUNK - 1,
        });
        start += 2 * CHUNK;
    }
    c
}

/// Ten million ids covered but one in a thousand (10,000 holes).
fn ids_with_rare_holes() -> Coverage {
    let mut c = Coverage::default();
    let mut start = 0;
    while start < IDS {
        c.keys.insert(Span {
            first: start,
            last: start + 998,
        });
        start += 1000;
    }
    c
}

fn split(c: &mut Criterion) {
    let mut g = c.benchmark_group("split");
    let days = ten_years();
    let ids = ten_million_ids();
    let empty = Coverage::default();
    let day_holes = days_with_holes();
    let rare = ids_with_rare_holes();
    let half = ids_every_other_chunk();
    g.bench_function("10y days, nothing covered, 1-day batches", |b| {
        b.iter(|| split_uncovered(black_box(&days), &empty, size(1), Order::NewestFirst))
    });
    g.bench_function("10y days, 365 holes, 7-day batches", |b| {
        b.iter(|| split_uncovered(black_box(&days), &day_holes, size(7), Order::NewestFirst))
    });
    g.bench_function("10M ids, nothing covered, 200-id batches", |b| {
        b.iter(|| split_uncovered(black_box(&ids), &empty, size(200), Order::OldestFirst))
    });
    g.bench_function("10M ids, 10k holes, 200-id batches", |b| {
        b.iter(|| split_uncovered(black_box(&ids), &rare, size(200), Order::OldestFirst))
    });
    g.bench_function("10M ids, every other 200 missing, 200-id batches", |b| {
        b.iter(|| split_uncovered(black_box(&ids), &half, size(200), Order::OldestFirst))
    });
    g.finish();
}

fn coverage(c: &mut Criterion) {
    let mut g = c.benchmark_group("coverage");
    let days = ten_years();
    let ids = ten_million_ids();
    let day_holes = days_with_holes();
    let rare = ids_with_rare_holes();
    let half = ids_every_other_chunk();
    g.bench_function("10y days, 365 holes: percent and gaps", |b| {
        b.iter(|| days.coverage(black_box(&day_holes)))
    });
    g.bench_function("10M ids, 10k holes: percent and gaps", |b| {
        b.iter(|| ids.coverage(black_box(&rare)))
    });
    g.bench_function("10M ids, 25k holes: percent and gaps", |b| {
        b.iter(|| ids.coverage(black_box(&half)))
    });
    g.finish();
}

fn chunks(order: &[i64]) -> impl Iterator<Item = Span<i64>> + '_ {
    order.iter().map(|&start| Span {
        first: start,
        last: start + CHUNK - 1,
    })
}

fn interval_set(c: &mut Criterion) {
    let mut g = c.benchmark_group("interval_set");
    let ascending: Vec<i64> = (0..IDS / CHUNK).map(|i| i * CHUNK).collect();
    let descending: Vec<i64> = ascending.iter().rev().copied().collect();
    // Every other chunk first (25,000 spans), then the rest (each merges two).
    let interleaved: Vec<i64> = ascending
        .iter()
        .step_by(2)
        .chain(ascending.iter().skip(1).step_by(2))
        .copied()
        .collect();
    for (name, order) in [
        ("insert 10M ids in 200-id chunks, ascending", &ascending),
        ("insert 10M ids in 200-id chunks, descending", &descending),
        (
            "insert 10M ids in 200-id chunks, every other first",
            &interleaved,
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut set = IntervalSet::<i64>::new();
                for span in chunks(order) {
                    set.insert(span);
                }
                set
            })
        });
    }
    g.finish();
}

/// Runs `iters` acquires on fresh limiters from `make`, `per_limiter` at a
/// time, timing only the acquires.
fn time_acquires(
    rt: &tokio::runtime::Runtime,
    iters: u64,
    per_limiter: u64,
    make: impl Fn() -> RateLimiter,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(per_limiter);
        let limiter = make();
        let started = Instant::now();
        rt.block_on(async {
            for _ in 0..n {
                limiter.acquire().await;
            }
        });
        total += started.elapsed();
        left -= n;
    }
    total
}

fn limiter(c: &mut Criterion) {
    let mut g = c.benchmark_group("limiter");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap_or_else(|e| panic!("no tokio runtime: {e}"));
    g.bench_function("acquire, unlimited", |b| {
        b.iter_custom(|iters| time_acquires(&rt, iters, u64::MAX, RateLimiter::unlimited))
    });
    // Both windows held, never full: 1,000 acquires per fresh limiter of
    // 1,000/s and 60,000/min, so no acquire waits.
    g.bench_function("acquire, 1000/s and 60000/min, far from the limit", |b| {
        b.iter_custom(|iters| {
            time_acquires(&rt, iters, 1_000, || {
                RateLimiter::new(RateLimits::new(Some(1_000), Some(60_000)))
            })
        })
    });
    // The documented YClients limits: 5 acquires per fresh limiter.
    g.bench_function("acquire, 5/s and 200/min, first 5 of a second", |b| {
        b.iter_batched(
            || RateLimiter::new(RateLimits::new(Some(5), Some(200))),
            |limiter| {
                rt.block_on(async {
                    for _ in 0..5 {
                        limiter.acquire().await;
                    }
                });
                limiter
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

/// Every benchmark of this file, with the short configuration.
fn core() {
    let mut c = config().configure_from_args();
    split(&mut c);
    coverage(&mut c);
    interval_set(&mut c);
    limiter(&mut c);
}

criterion_main!(core);
