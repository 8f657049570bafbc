//! Bad input gives errors, never panics, and leaves the store unchanged.
//!
//! A store is filled by one real run first. Then the binary gets generated
//! garbage (proptest, bounded case counts): dates for `--from`/`--to`,
//! mangled config files, credentials the API rejects, bad numbers and
//! durations. Every answer is an exit code of 1, 2 or 3 with one `error:`
//! line and no panic, and the store (records, checkpoint, run history) is
//! exactly as before. In-process, `Target::days` and the day arithmetic
//! under it get arbitrary dates and time zones.

mod common;

use std::cell::Cell;
use std::num::NonZeroU32;

use chrono::{Datelike, NaiveDate};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sync_core::{Order, Target};

use common::*;

/// Binary runs per generated property (each is a process start).
const PROCESS_CASES: u32 = 40;

/// What the store holds, for before/after comparisons.
async fn snapshot(loc: &StoreLoc, range: sync_core::DayRange) -> String {
    let opened = loc.open().await;
    let records = stored_by_id(opened.store(), &records_stream(), "record", range).await;
    let rows: Vec<String> = records
        .values()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r.external_id,
                r.hash.to_hex(),
                r.deleted,
                r.payload
            )
        })
        .collect();
    let coverage = opened
        .checkpoints()
        .coverage(&records_stream())
        .await
        .unwrap();
    let runs = opened.checkpoints().runs(None, 1000).await.unwrap();
    // A run refused by the server (rejected credentials) is recorded as
    // failed with nothing done: the history says it happened; only such
    // runs may be new.
    let runs: Vec<String> = runs
        .iter()
        .filter(|r| {
            !(r.status == sync_core::RunStatus::Failed
                && r.counts == sync_core::RecordCounts::default())
        })
        .map(|r| format!("{} {} {:?}", r.id.0, r.status, r.counts))
        .collect();
    opened.close().await;
    format!("{}\n{coverage:?}\n{}", rows.join("\n"), runs.join("\n"))
}

/// One invocation: an error exit code, one error line, no panic.
fn assert_refused(what: &str, o: &std::process::Output, codes: &[i32]) {
    let out = text(o);
    assert!(
        o.status.code().is_some_and(|c| codes.contains(&c)),
        "{what}: exit {:?}, expected one of {codes:?}: {out}",
        o.status.code()
    );
    assert!(!out.contains("panicked"), "{what}: {out}");
    assert_eq!(
        out.matches("error:").count(),
        1,
        "{what}: one message: {out}"
    );
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Text that is mostly not a date, sometimes almost one.
fn garbage_date() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\u{0}]{0,20}",
        "[0-9+-]{1,7}-[0-9]{1,3}-[0-9]{1,3}",
        "(19|20|99)[0-9]{2}-(00|13|02|99)-(00|30|31|32)",
        Just("2024-02-30".to_string()),
        Just("+262143-01-01".to_string()),
        Just("today ".to_string()),
        Just("2024-9-1".to_string()),
        Just("２０２４-０１-０１".to_string()),
    ]
}

/// A valid config file with one line replaced or damaged.
fn mangled_config() -> impl Strategy<Value = String> {
    let lines = vec![
        "[store]",
        "sqlite_path = \"data/sync.db\"",
        "[sync]",
        "source = \"yclients\"",
        "from = \"2025-06-01\"",
        "batch_size = 7",
        "interval = \"1s\"",
        "concurrency = 2",
        "[yclients]",
        "company_ids = [101]",
        "tz = \"Europe/Moscow\"",
        "page_size = 200",
        "[log]",
        "level = \"info\"",
    ];
    let n = lines.len();
    (
        0..n,
        prop::sample::select(vec![
            "batch_size = -1",
            "batch_size = 0",
            "concurrency = 0",
            "batch_size = 99999999999999999999",
            "interval = \"forever\"",
            "interval = \"1e308s\"",
            "tz = \"Mars/Olympus\"",
            "company_ids = [\"x\"]",
            "company_ids = []",
            "source = \"gmail\"",
            "from = 20250601",
            "from = \"2025-13-01\"",
            "level = \"((\"",
            "password = \"inline-secret\"",
            "[yclients",
            "= 3",
            "unknown_key = 1",
            "\"\"\"",
            "[sync]",
            "page_size = 0",
        ]),
        "[^\u{0}]{0,12}",
        any::<bool>(),
    )
        .prop_map(move |(at, replacement, noise, use_noise)| {
            let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            l[at] = if use_noise {
                format!("{}{noise}", l[at])
            } else {
                replacement.to_string()
            };
            l.join("\n")
        })
}

#[test]
fn garbage_in_gives_errors_and_leaves_the_store_unchanged() {
    let rt = runtime();
    let sim = rt.block_on(yclients_sim(300, 20));
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLoc::Sqlite(dir.path().join("data/sync.db"));
    let env = yclients_env(&sim);
    let range = sim_range(&sim);
    let (from, to) = (range.first.to_string(), range.last.to_string());
    let run_with = |extra: &[String], env: &[(String, String)]| {
        let mut a = loc.flags();
        a.extend(args(&[
            "--no-progress",
            "run",
            "--source",
            "yclients",
            "--batch-size",
            "5",
        ]));
        a.extend_from_slice(extra);
        run(dir.path(), &a, env)
    };

    // A real run fills the store (half the range, so that more could be
    // written by mistake).
    let half =
        (range.first + chrono::Days::new(u64::try_from(range.len() / 2).unwrap())).to_string();
    let o = run_with(&args(&["--from", &from, "--to", &half]), &env);
    assert!(o.status.success(), "{}", text(&o));
    let before = rt.block_on(snapshot(&loc, range));
    assert!(before.lines().count() > 100, "the store holds data");

    // The API refuses the partner token: should a generated value happen
    // to be valid, the run fails in pre-flight (exit 3), before the store.
    let mut refused = env.clone();
    for (k, v) in refused.iter_mut() {
        if k == "YCLIENTS_PARTNER_TOKEN" {
            *v = "partner-token-the-api-refuses".into();
        }
    }
    let cases = Cell::new(0u32);
    let count = || cases.set(cases.get() + 1);

    // Dates.
    runner(PROCESS_CASES)
        .run(&(garbage_date(), garbage_date()), |(a, b)| {
            count();
            let o = run_with(
                &["--from".into(), a.clone(), "--to".into(), b.clone()],
                &refused,
            );
            assert_refused(&format!("--from {a:?} --to {b:?}"), &o, &[1, 2, 3]);
            Ok(())
        })
        .unwrap();
    // Config files.
    runner(PROCESS_CASES)
        .run(&mangled_config(), |toml| {
            count();
            let file = dir.path().join("mangled.toml");
            std::fs::write(&file, &toml).unwrap();
            let mut extra = vec![
                "--from".to_string(),
                from.clone(),
                "--to".into(),
                to.clone(),
            ];
            extra.insert(0, file.display().to_string());
            extra.insert(0, "--config".into());
            let o = run_with(&extra, &refused);
            assert_refused(&format!("config {toml:?}"), &o, &[1, 2, 3]);
            Ok(())
        })
        .unwrap();
    // Credentials the API rejects (the simulator is up).
    runner(PROCESS_CASES)
        .run(
            &(
                prop::sample::select(vec![
                    "YCLIENTS_PARTNER_TOKEN",
                    "YCLIENTS_PASSWORD",
                    "YCLIENTS_LOGIN",
                ]),
                "[^\u{0}]{1,40}",
            ),
            |(name, value)| {
                count();
                let mut e = env.clone();
                for (k, v) in e.iter_mut() {
                    if k == name {
                        *v = value.clone();
                    }
                }
                let o = run_with(
                    &[
                        "--from".into(),
                        from.clone(),
                        "--to".into(),
                        to.clone(),
                        "--force".into(),
                    ],
                    &e,
                );
                // A blank value counts as unset (a configuration error); a
                // token unfit for a header fails before any request.
                assert_refused(&format!("{name}={value:?}"), &o, &[1, 2, 3]);
                Ok(())
            },
        )
        .unwrap();
    // Numbers and durations.
    runner(PROCESS_CASES)
        .run(
            &(
                prop::sample::select(vec![
                    "--batch-size",
                    "--max-batches",
                    "--interval",
                    "--start-at",
                    "--preset",
                    "--company",
                ]),
                "[^\u{0}]{0,12}",
            ),
            |(flag, value)| {
                // Values that are fine for a flag are not bad input.
                let fine = match flag {
                    "--batch-size" | "--max-batches" | "--company" => {
                        value.trim().parse::<u64>().is_ok_and(|n| n > 0)
                    }
                    _ => false,
                };
                if fine {
                    return Ok(());
                }
                count();
                let o = run_with(
                    &[
                        "--from".into(),
                        from.clone(),
                        flag.to_string(),
                        value.clone(),
                    ],
                    &refused,
                );
                assert_refused(&format!("{flag} {value:?}"), &o, &[1, 2, 3]);
                Ok(())
            },
        )
        .unwrap();

    let after = rt.block_on(snapshot(&loc, range));
    if before != after {
        let was: std::collections::BTreeSet<&str> = before.lines().collect();
        let now: std::collections::BTreeSet<&str> = after.lines().collect();
        panic!(
            "the store changed after bad input: gone {:?}, new {:?}",
            was.difference(&now).collect::<Vec<_>>(),
            now.difference(&was).collect::<Vec<_>>()
        );
    }
    eprintln!(
        "bad input: {} invocations of the binary with garbage, all refused (exit 1/2/3, one \
         message, no panic); store unchanged",
        cases.get()
    );
}

/// Any two dates in chrono's range and any time zone: `Target::days` is
/// `Ok` or `Err`, never a panic, and when small enough its batches cover
/// exactly its days.
#[test]
fn target_days_never_panics() {
    let tzs: Vec<chrono_tz::Tz> = chrono_tz::TZ_VARIANTS.to_vec();
    let min = NaiveDate::MIN.num_days_from_ce();
    let max = NaiveDate::MAX.num_days_from_ce();
    let date = move || {
        prop_oneof![
            (min..=max).prop_map(|d| NaiveDate::from_num_days_from_ce_opt(d).unwrap()),
            (-3i32..3)
                .prop_map(move |d| NaiveDate::from_num_days_from_ce_opt(max + d.min(0)).unwrap()),
            (0i32..3).prop_map(move |d| NaiveDate::from_num_days_from_ce_opt(min + d).unwrap()),
        ]
    };
    let runs = Cell::new(0u32);
    runner(512)
        .run(
            &(
                date(),
                date(),
                prop::sample::select(tzs),
                1u32..40,
                0i64..60,
            ),
            |(a, b, tz, size, span)| {
                runs.set(runs.get() + 1);
                let _ = Target::days(a, b, tz);
                let _ = sync_core::plan::local_day_start_utc(a, tz);
                // A short range near `a`: split into batches.
                if let Some(end) = a.checked_add_signed(chrono::Duration::days(span)) {
                    if let Ok(t) = Target::days(a, end, tz) {
                        let batches = sync_core::plan::split(
                            &t,
                            NonZeroU32::new(size).unwrap(),
                            Order::NewestFirst,
                        );
                        let days: u128 = batches.iter().map(|b| b.unit_count()).sum();
                        prop_assert_eq!(days, t.unit_count());
                        for b in &batches {
                            let _ = b.utc_bounds();
                        }
                    }
                }
                Ok(())
            },
        )
        .unwrap();
    eprintln!(
        "Target::days: {} generated date pairs and zones, no panic",
        runs.get()
    );
}
