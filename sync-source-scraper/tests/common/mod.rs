//! What the tests against the booking-site simulator share: a simulator, the
//! source and an engine set for speed, and the field-by-field comparison of
//! the store with the simulator's ground truth.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, SecondsFormat, Utc};
use serde_json::{json, Value};
use sync_core::{
    CheckpointStore, DayRange, Engine, ExistingQuery, Order, RateLimiter, RateLimits, RetryPolicy,
    Secret, Source, Store, StoredRecord, SyncMode, SyncOptions, Target, Unit,
};
use sync_sim::booking::{BookingSim, BookingSimConfig, RunningBookingSim, SimBoarding};
use sync_source_scraper::{ScraperConfig, ScraperSource};
use url::Url;

/// Today, in the simulator's zone (the default one).
pub fn today() -> NaiveDate {
    Utc::now()
        .with_timezone(&BookingSimConfig::default().tz)
        .date_naive()
}

/// A simulated site with `days` days of data, the last `ahead` of them
/// after today; sessions live `ttl`.
pub fn sim_config(days: u32, ahead: u32, ttl: Duration) -> BookingSimConfig {
    let start = today() - ChronoDuration::days(i64::from(days) - i64::from(ahead) - 1);
    BookingSimConfig {
        seed: 7,
        start,
        days,
        session_ttl: ttl,
        ..BookingSimConfig::default()
    }
}

pub async fn start(config: BookingSimConfig) -> RunningBookingSim {
    BookingSim::start(config).await.unwrap()
}

/// The days the simulator has data for.
pub fn data_range(sim: &RunningBookingSim) -> DayRange {
    let c = sim.config();
    let last = c.start + ChronoDuration::days(i64::from(c.days) - 1);
    DayRange::new(c.start, last).unwrap()
}

/// The source for `sim`, paced `spacing` apart.
pub fn source(sim: &RunningBookingSim, spacing: Duration) -> Arc<ScraperSource> {
    Arc::new(ScraperSource::new(config(sim, spacing)).unwrap())
}

pub fn config(sim: &RunningBookingSim, spacing: Duration) -> ScraperConfig {
    let c = sim.config();
    let mut config = ScraperConfig::new(
        Url::parse(&sim.base_url()).unwrap(),
        c.username.clone(),
        Secret::new(c.password.clone()),
        sim.tz(),
    );
    config.limits = if spacing.is_zero() {
        RateLimits::UNLIMITED
    } else {
        RateLimits::UNLIMITED.with_min_spacing(spacing)
    };
    config.request_timeout = Duration::from_secs(10);
    config
}

/// An engine for `source` into `store`, paced by the source's limits.
pub fn engine<S>(source: &Arc<ScraperSource>, store: &Arc<S>) -> Engine
where
    S: Store + CheckpointStore + 'static,
{
    let limiter = Arc::new(RateLimiter::new(source.info().limits));
    Engine::new(source.clone(), store.clone(), store.clone(), limiter)
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 6,
        initial_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(20),
        jitter: false,
        ..RetryPolicy::default()
    }
}

/// A full run (`force`: every day again), four requests in flight.
pub fn full(force: bool) -> SyncOptions {
    SyncOptions::builder()
        .order(Order::NewestFirst)
        .retry(fast_retry())
        .max_in_flight(NonZeroUsize::new(4).unwrap())
        .force(force)
        .build()
}

/// A delta run (re-checks by age, the default schedule).
pub fn delta() -> SyncOptions {
    SyncOptions::builder()
        .order(Order::NewestFirst)
        .retry(fast_retry())
        .max_in_flight(NonZeroUsize::new(4).unwrap())
        .mode(SyncMode::Delta)
        .build()
}

pub fn target(sim: &RunningBookingSim, range: DayRange) -> Target {
    Target::days(range.first, range.last, sim.tz()).unwrap()
}

/// The stored boardings whose check-in day is in `range`, by id.
pub async fn stored(
    store: &dyn Store,
    source: &ScraperSource,
    range: DayRange,
) -> BTreeMap<String, StoredRecord> {
    store
        .existing(
            source.stream(),
            &ExistingQuery::InDays {
                entity: "boarding".into(),
                range,
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.external_id.clone(), r))
        .collect()
}

/// The payload key of each labelled field the site shows.
const FIELD_KEYS: &[(&str, &str)] = &[
    ("Access Home or Apartment", "access_home"),
    ("Drop Off", "drop_off"),
    ("Birthdate", "birthdate"),
    ("Breed(s)", "breeds"),
    ("Breed Type", "breed_type"),
    ("Food Allergies", "food_allergies"),
    ("Health and Mobility", "health_mobility"),
    ("Medications", "medications"),
    ("Veterinarian", "veterinarian"),
    ("Behavioral", "behavioral"),
    ("Bite History", "bite_history"),
];

fn cents(dollars: f64) -> Value {
    json!((dollars * 100.0).round() as i64)
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What the source should have stored for `b`: every field the site's
/// reference lists, in the payload's shape.
pub fn expected_payload(b: &SimBoarding) -> BTreeMap<&'static str, Value> {
    let fields: serde_json::Map<String, Value> = b
        .fields
        .iter()
        .map(|(label, value)| {
            let key = FIELD_KEYS
                .iter()
                .find(|(l, _)| l == label)
                .map_or(label.as_str(), |(_, k)| k);
            (key.to_string(), json!(value))
        })
        .collect();
    let price = b.price.map(|total| {
        json!({
            "total_cents": cents(total),
            "line_items": b.line_items.iter().map(|l| json!({
                "service": l.service,
                "rate_cents": cents(l.rate),
                "quantity": l.quantity,
                "amount_cents": cents(l.amount),
                "per_pet": l.per_pet_amounts.iter().map(|a| cents(*a)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    });
    BTreeMap::from([
        ("appointment_id", json!(b.appointment_id)),
        ("service_type", json!(b.service)),
        ("status", json!(b.status)),
        ("pets", json!(b.pets)),
        ("client.name", json!(b.client)),
        ("client.email", json!(b.client_email)),
        ("client.phone", json!(b.client_phone)),
        ("client.address", json!(b.client_address)),
        ("check_in", json!(ts(b.check_in))),
        ("check_out", json!(b.check_out.map(ts))),
        ("check_in_day", json!(b.check_in_day.to_string())),
        ("check_in_label", json!(b.check_in_ampm)),
        ("check_out_label", json!(b.check_out_ampm)),
        ("duration", json!(b.duration)),
        ("price", json!(price)),
        ("notes", json!(b.notes)),
        ("fields", Value::Object(fields)),
        ("event_type", json!(b.event_type)),
    ])
}

/// The stored payload's value at `key` (`client.name`: a nested key); the
/// price's per-pet parts reduced to their amounts, as the simulator gives.
fn got(payload: &Value, key: &str) -> Value {
    let mut v = payload;
    for part in key.split('.') {
        v = v.get(part).unwrap_or(&Value::Null);
    }
    if key == "price" {
        let mut price = v.clone();
        if let Some(items) = price.get_mut("line_items").and_then(Value::as_array_mut) {
            for item in items {
                if let Some(per_pet) = item.get_mut("per_pet") {
                    let amounts: Vec<Value> = per_pet
                        .as_array()
                        .map(|a| a.iter().map(|p| p["amount_cents"].clone()).collect())
                        .unwrap_or_default();
                    *per_pet = json!(amounts);
                }
            }
        }
        return price;
    }
    v.clone()
}

// Numbers compare by value (a store may give 157 back for 157.0).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

/// The differences between the store and the site's boardings checking in
/// within `range` (empty: the store is exact). Live boardings are compared
/// field by field, with their day; boardings cancelled, deleted or no longer
/// boardings must be stored and marked deleted.
pub fn differences(
    stored: &BTreeMap<String, StoredRecord>,
    truth: &[SimBoarding],
    range: DayRange,
) -> Vec<String> {
    let want: BTreeMap<&str, &SimBoarding> = truth
        .iter()
        .filter(|b| range.contains(b.check_in_day))
        .map(|b| (b.appointment_id.as_str(), b))
        .collect();
    let mut out = Vec::new();
    for id in stored.keys().filter(|id| !want.contains_key(id.as_str())) {
        out.push(format!(
            "{id}: stored, not a boarding of the site in {range}"
        ));
    }
    for (id, b) in &want {
        let Some(s) = stored.get(*id) else {
            if !b.deleted {
                out.push(format!("{id}: missing"));
            }
            continue;
        };
        if s.deleted != b.deleted {
            out.push(format!(
                "{id}: deleted {} at the store, {} at the site",
                s.deleted, b.deleted
            ));
            continue;
        }
        if b.deleted {
            continue;
        }
        if s.unit != Unit::Day(b.check_in_day) {
            out.push(format!("{id}: day {:?}, want {}", s.unit, b.check_in_day));
        }
        for (key, want) in expected_payload(b) {
            let have = got(&s.payload, key);
            if !same(&want, &have) {
                out.push(format!("{id}.{key}: want {want}, got {have}"));
            }
        }
    }
    out
}

/// Fails with the first differences when the store is not exact.
pub fn assert_exact(
    stored: &BTreeMap<String, StoredRecord>,
    truth: &[SimBoarding],
    range: DayRange,
) {
    let diff = differences(stored, truth, range);
    assert!(
        diff.is_empty(),
        "{} differences, e.g. {:#?}",
        diff.len(),
        &diff[..diff.len().min(8)]
    );
    let live = truth
        .iter()
        .filter(|b| range.contains(b.check_in_day) && !b.deleted)
        .count();
    assert!(live > 0, "no boarding in {range} to compare");
}
