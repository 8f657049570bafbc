//! The simulated kennel's appointments: seeded, deterministic data.

use chrono::{
    DateTime, Duration as ChronoDuration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::BookingSimConfig;

/// Status texts the site shows on detail pages.
pub(crate) const CONFIRMED: &str = "Confirmed";
pub(crate) const PENDING: &str = "Pending";
pub(crate) const CHECKED_IN: &str = "Checked In";
pub(crate) const CHECKED_OUT: &str = "Checked Out";
pub(crate) const CANCELLED: &str = "Cancelled";

/// What kind of appointment; only the service name (detail page `h1`) tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Boarding,
    Daycare,
    Grooming,
}

/// One appointment as the simulated site holds it (canonical text: single
/// spaces, no entities; the pages add the mess).
#[derive(Clone, Debug)]
pub(crate) struct Appointment {
    pub(crate) id: u64,
    pub(crate) kind: Kind,
    pub(crate) service: String,
    pub(crate) event_type: String,
    pub(crate) pet: String,
    pub(crate) client: String,
    pub(crate) client_id: u64,
    pub(crate) status: String,
    pub(crate) check_in: DateTime<Utc>,
    pub(crate) check_out: Option<DateTime<Utc>>,
    pub(crate) price_cents: Option<i64>,
    pub(crate) notes: Option<String>,
    /// Deleted at the site: gone from lists, detail page 404.
    pub(crate) removed: bool,
    /// Cancelled in the seed (before any importer could have seen it).
    pub(crate) seeded_cancelled: bool,
    /// The list title is drawn by JavaScript: empty in the fetched HTML.
    pub(crate) title_drawn_by_js: bool,
    /// Names rendered with odd whitespace and numeric entities.
    pub(crate) messy_markup: bool,
}

impl Appointment {
    pub(crate) fn is_cancelled(&self) -> bool {
        self.status == CANCELLED
    }

    /// First and last local day on which the appointment shows on the
    /// schedule.
    pub(crate) fn local_days(&self, tz: Tz) -> (NaiveDate, NaiveDate) {
        let first = self.check_in.with_timezone(&tz).date_naive();
        let last = self
            .check_out
            .map(|c| c.with_timezone(&tz).date_naive())
            .unwrap_or(first)
            .max(first);
        (first, last)
    }

    /// The `{timestamp}` part of the detail path: the start, in Unix seconds.
    pub(crate) fn timestamp(&self) -> i64 {
        self.check_in.timestamp()
    }
}

const PETS: &[&str] = &[
    "Rex",
    "Bella",
    "Biscuit & Gravy",
    "Mr. O'Malley",
    "Zoë",
    "Lady <Fluff>",
    "Pepper \"Pep\"",
    "Max",
    "Luna",
    "Chewbacca",
    "Sir Barks-a-Lot",
    "Miso",
    "Tofu & Tempeh",
    "Daisy",
    "Otto",
    "Ginger",
    "Señor Woof",
    "Koda",
];

const CLIENTS: &[&str] = &[
    "Smith & Jones",
    "Anne-Marie O'Neil",
    "José García",
    "Lee Chen",
    "Priya Patel",
    "Tom \"TJ\" Jackson",
    "Olga Ivanova",
    "Fitzgerald-Hughes Family",
    "Sam <Admin> Taylor",
    "Ngozi Okafor",
    "Björn Andersson",
    "Maria da Silva",
];

const BOARDING_SERVICES: &[&str] = &[
    "Boarding",
    "Boarding - Standard Run",
    "Boarding - Luxury Suite",
    "Cat Boarding",
    "Holiday Boarding & Bath",
];
const DAYCARE_SERVICES: &[&str] = &["Daycare - Full Day", "Daycare - Half Day", "Doggy Daycare"];
const GROOMING_SERVICES: &[&str] = &["Grooming - Bath & Brush", "Nail Trim"];

const NOTES: &[&str] = &[
    "Needs meds at 8am & 6pm.",
    "Allergic to chicken; <b>no</b> treats please.",
    "Bring own bed. Owner reachable on mobile.",
    "Shy with large dogs – separate play group.",
    "Feed 2 cups twice a day, \"senior\" formula.",
    "Vaccination record on file (exp. 2027).",
];

/// The kind a service name stands for (used when a test renames a service).
pub(crate) fn kind_of_service(service: &str) -> Kind {
    let s = service.to_lowercase();
    if s.contains("boarding") {
        Kind::Boarding
    } else if s.contains("groom") || s.contains("nail") {
        Kind::Grooming
    } else {
        Kind::Daycare
    }
}

/// Generates the seeded data: ids increase with the check-in day.
pub(crate) fn generate(config: &BookingSimConfig) -> Vec<Appointment> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut next_id: u64 = 40_000 + rng.gen_range(0..1_000);
    let mut out = Vec::new();
    for offset in 0..config.days {
        let Some(day) = config
            .start
            .checked_add_signed(ChronoDuration::days(i64::from(offset)))
        else {
            break;
        };
        let boardings = rng.gen_range(0..=2 * config.boardings_per_day);
        let others = rng.gen_range(0..=2 * config.daycare_per_day);
        let mut kinds: Vec<Kind> = std::iter::repeat_n(Kind::Boarding, boardings as usize)
            .chain((0..others).map(|i| {
                if i % 4 == 3 {
                    Kind::Grooming
                } else {
                    Kind::Daycare
                }
            }))
            .collect();
        kinds.shuffle(&mut rng);
        for kind in kinds {
            next_id += rng.gen_range(1..=7);
            out.push(appointment(&mut rng, next_id, kind, day, config.tz));
        }
    }
    out
}

fn appointment(rng: &mut StdRng, id: u64, kind: Kind, day: NaiveDate, tz: Tz) -> Appointment {
    let pick = |rng: &mut StdRng, list: &[&str]| list[rng.gen_range(0..list.len())].to_string();
    let client_index = rng.gen_range(0..CLIENTS.len());
    let (service, event_type) = match kind {
        Kind::Boarding => (
            pick(rng, BOARDING_SERVICES),
            if rng.gen_bool(0.8) {
                "boarding"
            } else {
                "reservation"
            },
        ),
        Kind::Daycare => (
            pick(rng, DAYCARE_SERVICES),
            if rng.gen_bool(0.7) {
                "daycare"
            } else {
                "reservation"
            },
        ),
        Kind::Grooming => (pick(rng, GROOMING_SERVICES), "grooming"),
    };
    let start_minutes = rng.gen_range(7 * 60..=18 * 60);
    let check_in = local(tz, day, start_minutes);
    let (check_out, nights) = match kind {
        Kind::Boarding => {
            if rng.gen_ratio(1, 50) {
                (None, 1)
            } else if rng.gen_ratio(1, 10) {
                // Same-day stay of a few hours.
                let end = (start_minutes + rng.gen_range(60..=240)).min(21 * 60);
                (Some(local(tz, day, end)), 1)
            } else {
                let nights: u32 = if rng.gen_ratio(1, 8) {
                    rng.gen_range(8..=16)
                } else {
                    rng.gen_range(1..=7)
                };
                let out_day = day + ChronoDuration::days(i64::from(nights));
                (
                    Some(local(tz, out_day, rng.gen_range(8 * 60..=17 * 60))),
                    nights,
                )
            }
        }
        Kind::Daycare | Kind::Grooming => {
            let end = (start_minutes + rng.gen_range(60..=8 * 60)).min(21 * 60);
            (Some(local(tz, day, end)), 1)
        }
    };
    let price_cents = if rng.gen_ratio(1, 20) {
        None
    } else {
        let per_unit: i64 = match kind {
            Kind::Boarding => rng.gen_range(45..=85) * 100 + [0, 50, 99][rng.gen_range(0..3)],
            Kind::Daycare => rng.gen_range(25..=40) * 100,
            Kind::Grooming => rng.gen_range(20..=60) * 100,
        };
        Some(per_unit * i64::from(nights))
    };
    let notes = if rng.gen_bool(0.4) {
        Some(pick(rng, NOTES))
    } else {
        None
    };
    let cancelled = rng.gen_ratio(1, 20);
    let status = if cancelled {
        CANCELLED
    } else {
        [CONFIRMED, CONFIRMED, PENDING, CHECKED_IN, CHECKED_OUT][rng.gen_range(0..5)]
    };
    Appointment {
        id,
        kind,
        service,
        event_type: event_type.to_string(),
        pet: pick(rng, PETS),
        client: CLIENTS[client_index].to_string(),
        client_id: 700 + client_index as u64,
        status: status.to_string(),
        check_in,
        check_out,
        price_cents,
        notes,
        removed: false,
        seeded_cancelled: cancelled,
        title_drawn_by_js: rng.gen_ratio(1, 3),
        messy_markup: rng.gen_ratio(1, 4),
    }
}

/// The UTC instant of local `minutes` after midnight on `day`; a time in a
/// DST gap moves an hour later, an ambiguous one takes the first instant.
pub(crate) fn local(tz: Tz, day: NaiveDate, minutes: u32) -> DateTime<Utc> {
    let time = NaiveTime::from_num_seconds_from_midnight_opt(minutes.min(24 * 60 - 1) * 60, 0)
        .unwrap_or(NaiveTime::MIN);
    let naive = NaiveDateTime::new(day, time);
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + ChronoDuration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| naive.and_utc())
}
