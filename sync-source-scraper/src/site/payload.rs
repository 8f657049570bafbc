//! The boarding record's payload, built from a [`Detail`] (field names in
//! the module docs of [`super`]).

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};

use super::detail::{Detail, PetPrice};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A quantity times 100 as a number (`1000` → `10.0`, `150` → `1.5`).
fn quantity(hundredths: i64) -> f64 {
    hundredths as f64 / 100.0
}

fn pet_price(p: &PetPrice) -> Value {
    json!({
        "rate_cents": p.rate_cents,
        "quantity": quantity(p.quantity_hundredths),
        "amount_cents": p.amount_cents,
    })
}

/// The payload of the boarding `appointment_id` read from `detail`, with
/// local days in `tz`. Every key is always present (`null` when unknown),
/// strings are normalised by the parser and lists keep page order, so the
/// same page always gives the same payload and content hash.
pub(crate) fn boarding_payload(appointment_id: &str, detail: &Detail, tz: Tz) -> Value {
    let stay = detail.stay.as_ref();
    let price = detail.price.as_ref().map(|p| {
        json!({
            "total_cents": p.total_cents,
            "line_items": p.line_items.iter().map(|i| json!({
                "service": i.service,
                "rate_cents": i.rate_cents,
                "quantity": quantity(i.quantity_hundredths),
                "amount_cents": i.amount_cents,
                "per_pet": i.per_pet.iter().map(pet_price).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    });
    let fields: Map<String, Value> = detail
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "appointment_id": appointment_id,
        "service_type": detail.service_type,
        "status": detail.status,
        "pets": detail.pets,
        "client": {
            "name": detail.client.name,
            "email": detail.client.email,
            "phone": detail.client.phone,
            "address": detail.client.address,
        },
        "check_in": stay.map(|s| ts(s.check_in)),
        "check_out": stay.map(|s| ts(s.check_out)),
        "check_in_day": stay.map(|s| s.check_in.with_timezone(&tz).date_naive().to_string()),
        "check_in_label": detail.check_in_label,
        "check_out_label": detail.check_out_label,
        "dates_from": stay.map(|s| s.dates_from.as_str()),
        "duration": detail.duration,
        "price": price,
        "notes": detail.notes,
        "fields": fields,
    })
}
