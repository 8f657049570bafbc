//! Properties of rate planning: no input makes it panic, batches cover every
//! unit, slower paces never finish sooner, and the ETA is what the real
//! limiter takes.

use std::time::Duration;

use proptest::prelude::*;
use sync_core::plan::{plan, PaceSettings, Preset, Workload};
use sync_core::{RateLimiter, RateLimits};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn any_limits() -> impl Strategy<Value = RateLimits> {
    (
        prop::option::of(prop_oneof![Just(0u32), 1u32..20, Just(u32::MAX)]),
        prop::option::of(prop_oneof![Just(0u32), 1u32..1000, Just(u32::MAX)]),
        prop::option::of(prop_oneof![
            Just(Duration::ZERO),
            (1u64..5000).prop_map(Duration::from_millis),
            Just(Duration::MAX),
        ]),
    )
        .prop_map(|(per_second, per_minute, min_spacing)| RateLimits {
            per_second,
            per_minute,
            min_spacing,
        })
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-1.0),
        Just(0.0),
        Just(1e-300),
        Just(1.0),
        0.0f64..2.0,
        0.0f64..1e6,
    ]
}

fn any_workload() -> impl Strategy<Value = Workload> {
    prop_oneof![
        (prop_oneof![0u64..5000, Just(u64::MAX)], any_f64()).prop_map(|(items, rpi)| {
            Workload::PerItem {
                items,
                requests_per_item: rpi,
            }
        }),
        (
            prop_oneof![0u64..100_000, Just(u64::MAX)],
            prop_oneof![Just(0u32), 1u32..500],
            prop_oneof![Just(0u64), 1u64..400, Just(u64::MAX)],
        )
            .prop_map(|(records, page_size, windows)| Workload::Paged {
                records,
                page_size,
                windows,
            }),
    ]
}

fn any_preset() -> impl Strategy<Value = Preset> {
    prop_oneof![
        prop::sample::select(Preset::ALL.to_vec()),
        (any_f64(), 0u64..120_000, 0u64..600_000).prop_map(|(utilization, pause, batch)| {
            Preset::Custom(PaceSettings {
                utilization,
                batch_interval: Duration::from_millis(pause),
                target_batch_duration: Duration::from_millis(batch),
                start_at: None,
            })
        }),
    ]
}

fn custom(utilization: f64, pause: Duration, batch: Duration) -> Preset {
    Preset::Custom(PaceSettings {
        utilization,
        batch_interval: pause,
        target_batch_duration: batch,
        start_at: None,
    })
}

proptest! {
    #![proptest_config(config(512))]

    /// Any input gives a plan or an error, never a panic; a plan's batches
    /// cover every unit without a needless extra batch.
    #[test]
    fn never_panics_and_batches_cover_all_units(
        limits in any_limits(),
        workload in any_workload(),
        preset in any_preset(),
    ) {
        let Ok(p) = plan(&limits, &workload, &preset) else { return Ok(()) };
        prop_assert_eq!(p.units, workload.units());
        prop_assert_eq!(p.requests, workload.requests().unwrap());
        prop_assert!(p.batch_size >= 1);
        if p.units == 0 {
            prop_assert_eq!(p.batches, 0);
        } else {
            prop_assert!(p.batch_size <= p.units);
            prop_assert!(u128::from(p.batch_size) * u128::from(p.batches) >= u128::from(p.units));
            prop_assert!(u128::from(p.batch_size) * u128::from(p.batches - 1) < u128::from(p.units));
        }
        if let Some(u) = p.budget_use {
            prop_assert!(u > 0.0 && u <= 1.0 + 1e-9, "budget use {}", u);
        }
        prop_assert_eq!(p.rate_per_second.is_none(), p.eta.is_zero() && p.pacing.is_zero() && p.rate_per_minute.is_none());
    }

    /// At a lower utilization (same pauses) no job finishes sooner.
    #[test]
    fn eta_never_shrinks_as_utilization_falls(
        limits in any_limits(),
        items in 1u64..3000,
        rpi in 0.1f64..3.0,
        high in 0.05f64..=1.0,
        factor in 0.05f64..=1.0,
    ) {
        let workload = Workload::PerItem { items, requests_per_item: rpi };
        let batch = Duration::from_secs(240);
        let fast = plan(&limits, &workload, &custom(high, Duration::ZERO, batch));
        let slow = plan(&limits, &workload, &custom(high * factor, Duration::ZERO, batch));
        if let (Ok(fast), Ok(slow)) = (fast, slow) {
            prop_assert!(fast.eta <= slow.eta, "{:?} at {} > {:?} at {}", fast.eta, high, slow.eta, high * factor);
            prop_assert!(fast.pacing <= slow.pacing);
            prop_assert!(fast.batch_size >= slow.batch_size);
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// The ETA is exactly what a run takes with the real limiter (no
    /// latency): requests batch by batch, the pause after each batch
    /// counted from its last request.
    #[test]
    fn eta_is_what_the_limiter_takes(
        per_second in prop::option::of(1u32..8),
        per_minute in prop::option::of(1u32..120),
        spacing_ms in prop::option::of((0u64..40).prop_map(|n| n * 50)),
        utilization in prop::sample::select(vec![1.0, 0.5, 0.25]),
        items in 1u64..250,
        pause_s in 0u64..90,
        batch_s in 1u64..120,
    ) {
        let limits = RateLimits {
            per_second,
            per_minute,
            min_spacing: spacing_ms.map(Duration::from_millis),
        };
        let workload = Workload::PerItem { items, requests_per_item: 1.0 };
        let pause = Duration::from_secs(pause_s);
        let preset = custom(utilization, pause, Duration::from_secs(batch_s));
        let p = plan(&limits, &workload, &preset).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let took = rt.block_on(async {
            let limiter = RateLimiter::new(p.limits);
            let start = tokio::time::Instant::now();
            let mut left = items;
            let mut first = true;
            while left > 0 {
                if !first {
                    tokio::time::sleep(pause).await;
                }
                first = false;
                for _ in 0..left.min(p.batch_size) {
                    limiter.acquire().await;
                }
                left -= left.min(p.batch_size);
            }
            tokio::time::Instant::now() - start
        });
        // The limiter's timer wakes on whole milliseconds, and each pause
        // starts from such a wake: up to a millisecond per batch.
        let batches = items.div_ceil(p.batch_size.max(1));
        prop_assert!(
            p.eta.abs_diff(took) <= Duration::from_millis(2 + batches),
            "planned {:?}, took {:?}: {:?}, {} items, batches of {}",
            p.eta, took, p.limits, items, p.batch_size
        );
    }
}
