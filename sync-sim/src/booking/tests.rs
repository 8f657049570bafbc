//! Tests of the seeded data itself: the boardings stay clear of every place
//! where readings of the reference's rules could differ, so that a test
//! failing against them points at a real misreading. (The pages are tested
//! through HTTP in `tests/booking_sim.rs`.)

use chrono::{Datelike, Duration as ChronoDuration, NaiveDate};

use super::data::{self, Appointment, Title};
use super::*;

fn generated(seed: u64, tz: Tz) -> Vec<Appointment> {
    data::generate(&BookingSimConfig {
        seed,
        tz,
        start: NaiveDate::from_ymd_opt(2025, 12, 1).unwrap(),
        days: 120,
        ..BookingSimConfig::default()
    })
}

fn zones() -> [(u64, Tz); 3] {
    [
        (1, chrono_tz::America::New_York),
        (2, chrono_tz::Europe::Berlin),
        (3, chrono_tz::Australia::Sydney),
    ]
}

#[test]
fn boardings_avoid_ambiguous_readings() {
    for (seed, tz) in zones() {
        let all = generated(seed, tz);
        let boardings: Vec<&Appointment> = all.iter().filter(|a| a.is_boarding(tz)).collect();
        assert!(boardings.len() > 300, "{}", boardings.len());
        for a in boardings {
            let title = a.title_text(tz).to_lowercase();
            // Substring readings of the service-type rule agree with the
            // word readings, except for the two deliberate cases.
            for part in ["add", "d/c", "switch", "back to", "eval"] {
                assert!(!title.contains(part), "{title}");
            }
            assert!(
                !title.contains("dc") || title.contains("woodchuck"),
                "{title}"
            );
            assert_ne!(title.trim(), "busy");
            assert!(!a.status.to_lowercase().contains("cancel"));
            // Some line is not a day service under any reading.
            if let Some(p) = &a.pricing {
                assert!(p.lines.iter().any(|l| {
                    let s = l.service.to_lowercase();
                    !s.contains("day") && !s.contains("pack") && !s.starts_with("dc")
                }));
            }
            // Not near the 12-hour line.
            assert!(
                a.end - a.start >= ChronoDuration::minutes(13 * 60),
                "{}",
                a.id
            );
            assert!(a.recurring.is_none());
            assert!(!a.pets.is_empty());
        }
    }
}

#[test]
fn titles_agree_with_the_stay_or_are_far_off() {
    for (seed, tz) in zones() {
        for a in generated(seed, tz).iter().filter(|a| a.is_boarding(tz)) {
            let (s, e) = (a.start.with_timezone(&tz), a.end.with_timezone(&tz));
            let text = a.title_text(tz);
            match &a.title {
                Title::Dated { .. } => {
                    let lead = format!("{}/{}", s.month(), s.day());
                    assert!(text.contains(&lead), "{text} {s}");
                    assert!(text.contains(&format!("{}", e.day())), "{text} {e}");
                }
                Title::Stale(t) => {
                    let (m, rest) = t.split_once('/').unwrap();
                    let d: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let (m, d): (u32, u32) = (m.parse().unwrap(), d.parse().unwrap());
                    let off = [s.year() - 1, s.year(), s.year() + 1]
                        .iter()
                        .filter_map(|y| NaiveDate::from_ymd_opt(*y, m, d))
                        .map(|t| (t - s.date_naive()).num_days().abs())
                        .min()
                        .unwrap();
                    assert!(off > 20, "{t} for {s}");
                }
                Title::Fixed(t) => assert!(!t.chars().any(|c| c.is_ascii_digit()), "{t}"),
            }
        }
    }
}

#[test]
fn every_non_boarding_kind_is_generated() {
    let tz = chrono_tz::America::New_York;
    let all = generated(5, tz);
    let mut reasons = std::collections::BTreeSet::new();
    for a in &all {
        reasons.extend(a.reasons(tz));
    }
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(all.iter().any(|a| a.recurring.is_some()));
}

#[test]
fn secondary_pets_show_only_labels_of_the_primary() {
    let tz = chrono_tz::America::New_York;
    for a in generated(6, tz) {
        let Some((primary, rest)) = a.pets.split_first() else {
            continue;
        };
        for p in rest {
            for f in p.fields.iter().filter(|f| f.key.is_some()) {
                assert!(
                    primary.fields.iter().any(|g| g.key == f.key),
                    "{}: {:?}",
                    a.id,
                    f.key
                );
            }
        }
    }
}

#[test]
fn recurring_entries_fall_on_their_weekdays_inside_the_data() {
    let tz = chrono_tz::America::New_York;
    let from = NaiveDate::from_ymd_opt(2025, 11, 24).unwrap();
    let to = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
    for a in generated(7, tz).iter().filter(|a| a.recurring.is_some()) {
        let r = a.recurring.as_ref().unwrap();
        let occ = a.occurrences(tz, from, to);
        assert!(occ.len() > 20);
        for (s, e) in occ {
            let d = s.with_timezone(&tz).date_naive();
            assert!(r.weekdays.contains(&d.weekday()));
            assert!(d >= r.first && d <= r.last);
            assert!(e > s);
            assert_eq!(a.occurrence_at(tz, Some(s.timestamp())).0, s);
        }
    }
}

#[test]
fn ids_are_unique_and_follow_the_style() {
    for (style, numeric) in [
        (IdStyle::Numeric, Some(true)),
        (IdStyle::Alphanumeric, Some(false)),
    ] {
        let all = data::generate(&BookingSimConfig {
            id_style: style,
            days: 60,
            ..BookingSimConfig::default()
        });
        let ids: std::collections::HashSet<&str> = all.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids.len(), all.len());
        for id in ids {
            assert_eq!(
                Some(id.bytes().all(|b| b.is_ascii_digit())),
                numeric,
                "{id}"
            );
        }
    }
}
