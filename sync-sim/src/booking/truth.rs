//! Ground truth (what a correct importer produces from the pages) and the
//! changes tests make to the data.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as ChronoDuration, Timelike, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::Rng;

use super::data::{
    clamp_instant, local, status_code, AmPm, Appointment, Field, PriceLine, Pricing, Reason, Title,
    ACCESS_KEYS, CANCELED, PET_KEYS,
};
use super::html::{detail_path, duration};
use super::{
    BookingEdit, BookingSimConfig, Mutation, MutationKind, NonBoardingReason, SimBoarding,
    SimLineItem, SimNonBoarding, SimPet, TitleDates,
};

/// Whitespace collapsed to single spaces, trimmed.
pub(crate) fn canonical(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn fields_map<'a>(fields: impl Iterator<Item = &'a Field>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for f in fields {
        if let Some(key) = &f.key {
            out.entry(key.clone()).or_insert_with(|| f.lines.join("\n"));
        }
    }
    out
}

fn dollars(cents: i64) -> f64 {
    cents as f64 / 100.0
}

pub(crate) fn boarding(a: &Appointment, cfg: &BookingSimConfig) -> SimBoarding {
    let tz = cfg.tz;
    let (s, e) = (a.start.with_timezone(&tz), a.end.with_timezone(&tz));
    let line_items = a
        .pricing
        .as_ref()
        .map(|p| {
            p.lines
                .iter()
                .map(|l| {
                    let (rate, qty) = l.per_pet.first().copied().unwrap_or((0, 0));
                    SimLineItem {
                        service: l.service.clone(),
                        rate: dollars(rate),
                        quantity: qty as f64 / 100.0,
                        amount: dollars(l.total_cents()),
                        per_pet_amounts: l
                            .per_pet
                            .iter()
                            .map(|(r, q)| dollars(PriceLine::amount_cents(*r, *q)))
                            .collect(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let pet_fields = a.pets.iter().flat_map(|p| p.fields.iter());
    SimBoarding {
        appointment_id: a.id.clone(),
        pet: a.pets.first().map(|p| p.name.clone()).unwrap_or_default(),
        pets: a.pets.iter().map(|p| p.name.clone()).collect(),
        pet_details: a
            .pets
            .iter()
            .map(|p| SimPet {
                name: p.name.clone(),
                fields: fields_map(p.fields.iter()),
            })
            .collect(),
        client: a.client.name.clone(),
        client_email: a.client.email.clone(),
        client_phone: a.client.phone.clone(),
        client_address: a.client.address.clone(),
        service: a.title_text(tz),
        title_dates: match &a.title {
            Title::Dated { .. } => TitleDates::Current,
            Title::Fixed(_) => TitleDates::Undated,
            Title::Stale(_) => TitleDates::Stale,
        },
        has_h1: a.h1,
        status: a.status.clone(),
        check_in: a.start,
        check_out: Some(a.end),
        check_in_day: s.date_naive(),
        check_in_ampm: AmPm::of(s).upper().to_string(),
        check_out_ampm: AmPm::of(e).upper().to_string(),
        duration: duration(a.start, a.end, tz),
        price: a.pricing.as_ref().map(|p| dollars(p.total_cents())),
        line_items,
        notes: (!a.notes.is_empty()).then(|| a.notes.join("\n")),
        fields: fields_map(a.access.iter().chain(pet_fields)),
        event_type: a.event_type.clone(),
        list_status: status_code(&a.status).to_string(),
        detail_path: detail_path(&a.id, a.start),
        deleted: !a.is_boarding(tz),
    }
}

pub(crate) fn non_boarding(a: &Appointment, cfg: &BookingSimConfig) -> Option<SimNonBoarding> {
    let tz = cfg.tz;
    let reasons = a.reasons(tz);
    if reasons.is_empty() {
        // A boarding (a deleted one is in the boardings, marked deleted).
        return None;
    }
    let canceled = a.status.trim().eq_ignore_ascii_case(CANCELED);
    Some(SimNonBoarding {
        appointment_id: a.id.clone(),
        service: a.title_text(tz),
        reasons: reasons
            .into_iter()
            .map(|r| match r {
                Reason::ServiceType => NonBoardingReason::ServiceType,
                Reason::Canceled => NonBoardingReason::CanceledRequest,
                Reason::DayServices => NonBoardingReason::DayServicesOnly,
                Reason::Short => NonBoardingReason::ShortStay,
            })
            .collect(),
        status: a.status.clone(),
        check_in: a.start,
        check_out: a.end,
        recurring: a.recurring.is_some(),
        weekdays: a
            .recurring
            .as_ref()
            .map(|r| r.weekdays.clone())
            .unwrap_or_default(),
        listed: !a.removed && (cfg.list_cancelled || !canceled),
        removed: a.removed,
        detail_path: detail_path(&a.id, a.start),
    })
}

/// Moves check-in by `in_days` and check-out by `out_days` local days,
/// keeping the local clock times.
pub(crate) fn shift(a: &mut Appointment, in_days: i64, out_days: i64, tz: Tz) {
    let move_one = |t: DateTime<Utc>, days: i64| {
        let l = t.with_timezone(&tz);
        let minutes = l.hour() * 60 + l.minute();
        match ChronoDuration::try_days(days).and_then(|d| l.date_naive().checked_add_signed(d)) {
            Some(day) => local(tz, day, minutes),
            None => t,
        }
    };
    a.start = move_one(a.start, in_days);
    a.end = move_one(a.end, out_days);
    a.recurring = None;
}

fn set_field(fields: &mut Vec<Field>, key: &str, value: Option<&str>, known: bool) {
    let pos = fields
        .iter()
        .position(|f| f.key.as_deref() == Some(key) || (!known && f.label == key));
    match (pos, value) {
        (Some(i), None) => {
            fields.remove(i);
        }
        (Some(i), Some(v)) => fields[i].lines = lines(v),
        (None, Some(v)) => fields.push(Field {
            key: known.then(|| key.to_string()),
            label: key.to_string(),
            lines: lines(v),
        }),
        (None, None) => {}
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(canonical)
        .filter(|l| !l.is_empty())
        .collect()
}

fn pets_of(a: &Appointment) -> usize {
    a.pricing
        .as_ref()
        .filter(|p| !p.lines.is_empty())
        .map_or(a.pets.len().max(1), Pricing::pets)
}

const ADJUSTMENT: &str = "Price adjustment";

pub(crate) fn apply_edit(a: &mut Appointment, edit: BookingEdit) {
    let BookingEdit {
        pet,
        client,
        service,
        status,
        check_in,
        check_out,
        price_cents,
        line_items,
        notes,
        pet_fields,
    } = edit;
    if let Some(v) = pet {
        match a.pets.first_mut() {
            Some(p) => p.name = canonical(&v),
            None => a.pets.push(super::data::Pet {
                name: canonical(&v),
                fields: Vec::new(),
            }),
        }
    }
    if let Some(v) = client {
        a.client.name = canonical(&v);
    }
    if let Some(v) = service {
        a.title = Title::Fixed(canonical(&v));
        a.h1 = true;
    }
    if let Some(v) = status {
        a.status = canonical(&v);
    }
    if let Some(v) = check_in {
        a.start = clamp_instant(v);
        a.recurring = None;
    }
    if let Some(Some(v)) = check_out {
        a.end = clamp_instant(v);
        a.recurring = None;
    }
    if let Some(items) = line_items {
        let n = pets_of(a);
        a.pricing = Some(Pricing {
            lines: items
                .into_iter()
                .map(|l| {
                    let qty = if l.quantity.is_finite() {
                        (l.quantity * 100.0).round().clamp(-1e12, 1e12) as i64
                    } else {
                        0
                    };
                    PriceLine {
                        service: canonical(&l.service),
                        per_pet: vec![(l.rate_cents, qty); n],
                    }
                })
                .collect(),
        });
    }
    match price_cents {
        None => {}
        Some(None) => a.pricing = None,
        Some(Some(total)) => {
            let n = pets_of(a);
            let mut p = a.pricing.take().unwrap_or(Pricing { lines: Vec::new() });
            p.lines.retain(|l| l.service != ADJUSTMENT);
            let diff = total.saturating_sub(p.total_cents());
            if diff != 0 || p.lines.is_empty() {
                let n = n.max(1);
                let each = diff.div_euclid(n as i64);
                let mut per_pet = vec![(each, 100); n];
                per_pet[0].0 = diff.saturating_sub(each.saturating_mul(n as i64 - 1));
                p.lines.push(PriceLine {
                    service: ADJUSTMENT.to_string(),
                    per_pet,
                });
            }
            a.pricing = Some(p);
        }
    }
    if let Some(v) = notes {
        a.notes = v.as_deref().map(lines).unwrap_or_default();
    }
    for (key, value) in pet_fields {
        let key = canonical(&key);
        let value = value.as_deref();
        if ACCESS_KEYS.contains(&key.as_str()) {
            set_field(&mut a.access, &key, value, true);
        } else if let Some(p) = a.pets.first_mut() {
            let known = PET_KEYS.contains(&key.as_str());
            set_field(&mut p.fields, &key, value, known);
        }
    }
}

/// One random change of `kind` to boarding `a`.
pub(crate) fn mutate(
    a: &mut Appointment,
    kind: MutationKind,
    rng: &mut StdRng,
    tz: Tz,
) -> Mutation {
    let id = a.id.clone();
    match kind {
        MutationKind::Price => {
            match &mut a.pricing {
                Some(p) if !p.lines.is_empty() => {
                    for rp in &mut p.lines[0].per_pet {
                        rp.0 += 500;
                    }
                }
                _ => {
                    let nights = (a.end.with_timezone(&tz).date_naive()
                        - a.start.with_timezone(&tz).date_naive())
                    .num_days()
                    .max(1);
                    a.pricing = Some(Pricing {
                        lines: vec![PriceLine {
                            service: "Boarding (Nights)".into(),
                            per_pet: vec![(6500, nights * 100); a.pets.len().max(1)],
                        }],
                    });
                }
            }
            Mutation::PriceChanged(id)
        }
        MutationKind::Notes => {
            a.notes.push(format!(
                "Update #{}: owner called & moved pick-up later.",
                rng.gen_range(100..1000)
            ));
            Mutation::NotesChanged(id)
        }
        MutationKind::PetFields => {
            let key = PET_KEYS[rng.gen_range(0..PET_KEYS.len())];
            let value = format!("Changed by staff ({})", rng.gen_range(100..1000));
            match a.pets.first_mut() {
                Some(p) => {
                    let at = p.fields.iter().position(|f| f.key.as_deref() == Some(key));
                    match at {
                        Some(i) => p.fields[i].lines = vec![value],
                        None => p.fields.push(Field {
                            key: Some(key.to_string()),
                            label: key.to_string(),
                            lines: vec![value],
                        }),
                    }
                    Mutation::PetFieldsChanged(id)
                }
                None => {
                    a.notes.push(value);
                    Mutation::NotesChanged(id)
                }
            }
        }
        MutationKind::Cancel => {
            a.status = CANCELED.to_string();
            Mutation::Cancelled(id)
        }
        MutationKind::Delete => {
            a.removed = true;
            Mutation::Deleted(id)
        }
        MutationKind::Move => {
            let mut days = rng.gen_range(1..=3);
            if rng.gen_bool(0.5) {
                days = -days;
            }
            shift(a, days, days, tz);
            Mutation::Moved(id)
        }
        MutationKind::Extend => {
            shift(a, 0, 1, tz);
            Mutation::Extended(id)
        }
    }
}
