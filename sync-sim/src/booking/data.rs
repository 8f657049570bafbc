//! The simulated kennel's appointments: the data model, the seeded
//! deterministic generator, and the simulator's own reading of the
//! reference's "boarding or not" rules (used for the ground truth only).

use std::collections::HashSet;

use chrono::{
    DateTime, Datelike, Duration as ChronoDuration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Utc, Weekday,
};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::{BookingSimConfig, IdStyle};

/// Status texts of `.appt-change-status`.
pub(crate) const SCHEDULED: &str = "Scheduled";
pub(crate) const CONFIRMED: &str = "Confirmed";
pub(crate) const CHECKED_IN: &str = "Checked In";
pub(crate) const CHECKED_OUT: &str = "Checked Out";
/// The booking status of an unconfirmed request, and of a cancellation.
pub(crate) const CANCELED: &str = "Canceled";

/// The list's `data-status` code of a status text (the codes are the
/// simulator's invention: the reference names the attribute only).
pub(crate) fn status_code(status: &str) -> &'static str {
    match status.trim().to_ascii_lowercase().as_str() {
        "scheduled" => "1",
        "confirmed" => "2",
        "checked in" => "3",
        "checked out" => "6",
        "canceled" | "cancelled" => "7",
        _ => "9",
    }
}

/// The labels of the reference's "Labelled fields", in page order.
pub(crate) const ACCESS_KEYS: [&str; 2] = ["Access Home or Apartment", "Drop Off"];
/// Pet labels of the reference's "Labelled fields".
pub(crate) const PET_KEYS: [&str; 9] = [
    "Birthdate",
    "Breed(s)",
    "Breed Type",
    "Food Allergies",
    "Health and Mobility",
    "Medications",
    "Veterinarian",
    "Behavioral",
    "Bite History",
];

/// The label texts the pages show for a reference label (each contains it).
pub(crate) fn label_variants(key: &str) -> &'static [&'static str] {
    match key {
        "Access Home or Apartment" => &[
            "Access Home or Apartment",
            "How do we Access Home or Apartment?",
        ],
        "Drop Off" => &["Drop Off", "Drop Off Instructions"],
        "Birthdate" => &["Birthdate"],
        "Breed(s)" => &["Breed(s)"],
        "Breed Type" => &["Breed Type"],
        "Food Allergies" => &["Food Allergies", "Food Allergies / Sensitivities"],
        "Health and Mobility" => &["Health and Mobility", "Health and Mobility Concerns"],
        "Medications" => &["Medications", "Medications (name, dose, time)"],
        "Veterinarian" => &["Veterinarian", "Veterinarian Name & Phone"],
        "Behavioral" => &["Behavioral", "Behavioral Notes"],
        "Bite History" => &["Bite History", "Bite History?"],
        _ => &[],
    }
}

/// A small deterministic generator for per-appointment rendering choices
/// (splitmix64), so the same data renders the same page.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mix(u64);

impl Mix {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// True with `percent` per cent.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Morning or afternoon, as the site's time labels show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AmPm {
    Am,
    Pm,
}

impl AmPm {
    pub(crate) fn of(t: DateTime<Tz>) -> Self {
        use chrono::Timelike;
        if t.hour() < 12 {
            Self::Am
        } else {
            Self::Pm
        }
    }

    pub(crate) fn upper(self) -> &'static str {
        match self {
            Self::Am => "AM",
            Self::Pm => "PM",
        }
    }

    pub(crate) fn lower(self) -> &'static str {
        match self {
            Self::Am => "am",
            Self::Pm => "pm",
        }
    }
}

/// How a dated title encodes the stay (the reference's examples).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DatedStyle {
    /// `2/13-18`, `1/28-3` (rolls into the next month), `2/28-3/5`.
    Range,
    /// `2/14-15am`, `1/31-2/1pm`: the check-out label appended.
    RangeOutLabel,
    /// `3/3-19 (Thur)`: the check-out weekday appended.
    RangeWeekday,
    /// `B/O Pepper 2/9PM-17`: a leading label and the check-in label.
    BoardingOf,
    /// `2/28-3/5` always, even where `2/28-5` would do.
    Explicit,
    /// `1/31-2/1pm`: explicit, with the check-out label.
    ExplicitOutLabel,
}

/// The appointment's title: the detail page's `h1` (or `<title>`), the
/// list's `.day-event-title`, and the service type of the ground truth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Title {
    /// Computed from the current check-in and check-out (follows moves).
    Dated {
        style: DatedStyle,
        /// The name after `B/O`.
        label: String,
    },
    /// Fixed text: undated titles, titles set by an edit.
    Fixed(String),
    /// Dates of another stay, more than 20 days off the timestamps.
    Stale(String),
}

/// Which of the reference's list time strings an appointment shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListTime {
    /// `Apr 01, AM - Apr 13, PM` (or `Feb 27, AM - PM` on one day).
    Labels,
    /// `Feb 13, 11:49am ...` (or `Feb 9, 4:58pm - 7:24pm` on one day).
    Clock,
    /// `Pick-Up ( 9 am - 10 am )`: recurring entries, no date.
    PickUp,
}

/// A weekly recurring entry (daycare), shown on every week of the data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Recurring {
    pub(crate) weekdays: Vec<Weekday>,
    pub(crate) first: NaiveDate,
    pub(crate) last: NaiveDate,
    pub(crate) start_minutes: u32,
    pub(crate) end_minutes: u32,
}

/// One labelled field: `<div class="field-label">` and `<div class="field-value">`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    /// The reference label it answers to (`None`: a label the reference does
    /// not list).
    pub(crate) key: Option<String>,
    /// The label text shown.
    pub(crate) label: String,
    /// The value, one entry a line (`<br>` between them).
    pub(crate) lines: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pet {
    pub(crate) name: String,
    pub(crate) fields: Vec<Field>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Client {
    pub(crate) name: String,
    pub(crate) email: Option<String>,
    /// E.164, the `data-value` of `.mobile-contact`.
    pub(crate) phone: Option<String>,
    pub(crate) address: Option<String>,
}

/// One service of the price block; one `(rate cents, qty × 100)` a pet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PriceLine {
    pub(crate) service: String,
    pub(crate) per_pet: Vec<(i64, i64)>,
}

impl PriceLine {
    /// The amount of one pet's price div, in cents.
    pub(crate) fn amount_cents(rate: i64, qty: i64) -> i64 {
        rate.saturating_mul(qty).saturating_add(50).div_euclid(100)
    }

    pub(crate) fn total_cents(&self) -> i64 {
        self.per_pet
            .iter()
            .map(|(r, q)| Self::amount_cents(*r, *q))
            .fold(0, i64::saturating_add)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pricing {
    pub(crate) lines: Vec<PriceLine>,
}

impl Pricing {
    pub(crate) fn total_cents(&self) -> i64 {
        self.lines
            .iter()
            .map(PriceLine::total_cents)
            .fold(0, i64::saturating_add)
    }

    /// The `pets-N` of the wrapper: price divs per service.
    pub(crate) fn pets(&self) -> usize {
        self.lines.first().map_or(1, |l| l.per_pet.len().max(1))
    }
}

/// One appointment as the simulated site holds it (canonical text: single
/// spaces, no entities; the pages add the mess).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Appointment {
    pub(crate) id: String,
    pub(crate) title: Title,
    /// False for the page type without `h1` ("Boarding (Nights)").
    pub(crate) h1: bool,
    /// The list's title is drawn by JavaScript: empty in the fetched HTML.
    pub(crate) title_js: bool,
    pub(crate) event_type: String,
    pub(crate) status: String,
    /// Check-in (the first occurrence for recurring entries).
    pub(crate) start: DateTime<Utc>,
    /// Check-out (of the first occurrence for recurring entries).
    pub(crate) end: DateTime<Utc>,
    pub(crate) recurring: Option<Recurring>,
    pub(crate) list_time: ListTime,
    pub(crate) client: Client,
    pub(crate) pets: Vec<Pet>,
    /// Booking-level labelled fields (access, drop off, others).
    pub(crate) access: Vec<Field>,
    pub(crate) notes: Vec<String>,
    pub(crate) pricing: Option<Pricing>,
    /// Deleted at the site: gone from lists, detail page 404.
    pub(crate) removed: bool,
    /// Was a boarding at some time since start (so the ground truth keeps it).
    pub(crate) ever_boarding: bool,
    /// Rendering choices (attribute order, extra classes, layout variants).
    pub(crate) style: u64,
    /// Texts rendered with entities and odd whitespace.
    pub(crate) messy: bool,
}

/// Why an appointment is not a boarding (the reference's rules, in order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Reason {
    ServiceType,
    Canceled,
    DayServices,
    Short,
}

impl Appointment {
    /// The title text as the pages show it (canonical).
    pub(crate) fn title_text(&self, tz: Tz) -> String {
        match &self.title {
            Title::Fixed(t) | Title::Stale(t) => t.clone(),
            Title::Dated { style, label } => dated_title(
                *style,
                label,
                self.start.with_timezone(&tz),
                self.end.with_timezone(&tz),
            ),
        }
    }

    /// Local days `[first, last]` on which a one-off appointment is active.
    pub(crate) fn local_days(&self, tz: Tz) -> (NaiveDate, NaiveDate) {
        let first = self.start.with_timezone(&tz).date_naive();
        let last = self.end.with_timezone(&tz).date_naive().max(first);
        (first, last)
    }

    /// The occurrences `(start, end)` active on local days `from..=to`.
    pub(crate) fn occurrences(
        &self,
        tz: Tz,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        match &self.recurring {
            None => {
                let (first, last) = self.local_days(tz);
                if first <= to && last >= from {
                    vec![(self.start, self.end)]
                } else {
                    Vec::new()
                }
            }
            Some(r) => {
                let lo = from.max(r.first);
                let hi = to.min(r.last);
                let mut out = Vec::new();
                let mut day = lo;
                while day <= hi {
                    if r.weekdays.contains(&day.weekday()) {
                        out.push((
                            local(tz, day, r.start_minutes),
                            local(tz, day, r.end_minutes),
                        ));
                    }
                    match day.succ_opt() {
                        Some(d) => day = d,
                        None => break,
                    }
                }
                out
            }
        }
    }

    /// The occurrence a detail URL's timestamp names (the first one when it
    /// names none).
    pub(crate) fn occurrence_at(&self, tz: Tz, ts: Option<i64>) -> (DateTime<Utc>, DateTime<Utc>) {
        if let (Some(r), Some(ts)) = (&self.recurring, ts) {
            if let Some(at) = DateTime::<Utc>::from_timestamp(ts, 0) {
                let day = clamp_instant(at).with_timezone(&tz).date_naive();
                if let Some(found) = self
                    .occurrences(tz, day.max(r.first), day.min(r.last))
                    .into_iter()
                    .find(|(s, _)| s.timestamp() == ts)
                {
                    return found;
                }
            }
        }
        (self.start, self.end)
    }

    /// Why it is not a boarding; empty for a boarding.
    pub(crate) fn reasons(&self, tz: Tz) -> Vec<Reason> {
        let mut out = Vec::new();
        if title_is_non_boarding(&self.title_text(tz)) {
            out.push(Reason::ServiceType);
        }
        if self.status.trim().eq_ignore_ascii_case(CANCELED) {
            out.push(Reason::Canceled);
        }
        if let Some(p) = &self.pricing {
            if !p.lines.is_empty() && p.lines.iter().all(|l| is_day_service(&l.service)) {
                out.push(Reason::DayServices);
            }
        }
        if self.end - self.start < ChronoDuration::hours(12) {
            out.push(Reason::Short);
        }
        out
    }

    pub(crate) fn is_boarding(&self, tz: Tz) -> bool {
        !self.removed && self.reasons(tz).is_empty()
    }
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

fn has_word(text: &str, word: &str) -> bool {
    words(text).any(|w| w.eq_ignore_ascii_case(word))
}

/// The reference's service-type rule: `d/c` or `dc` (as a word), `add`,
/// `switch day`, `back to N`, `initial eval`, or exactly `busy`.
pub(crate) fn title_is_non_boarding(title: &str) -> bool {
    let t = title.split_whitespace().collect::<Vec<_>>().join(" ");
    let lower = t.to_lowercase();
    if lower.contains("d/c") || has_word(&lower, "dc") || has_word(&lower, "add") {
        return true;
    }
    if lower.contains("switch day") || lower.contains("initial eval") || lower == "busy" {
        return true;
    }
    lower.match_indices("back to ").any(|(i, m)| {
        lower[i + m.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// The reference's day services: `day`, `daycare`, a `DC` prefix, `pack`.
pub(crate) fn is_day_service(service: &str) -> bool {
    let s = service.trim();
    has_word(s, "day")
        || has_word(s, "daycare")
        || s.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("dc"))
        || has_word(s, "pack")
}

fn weekday_suffix(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Mon",
        Weekday::Tue => "Tues",
        Weekday::Wed => "Wed",
        Weekday::Thu => "Thur",
        Weekday::Fri => "Fri",
        Weekday::Sat => "Sat",
        Weekday::Sun => "Sun",
    }
}

/// Whether `e` falls in the calendar month right after `s`'s.
fn next_month(s: NaiveDate, e: NaiveDate) -> bool {
    let (y, m) = if s.month() == 12 {
        (s.year() + 1, 1)
    } else {
        (s.year(), s.month() + 1)
    };
    e.year() == y && e.month() == m
}

/// A dated title for a stay, in one of the reference's forms. The dates are
/// the local days of check-in and check-out; no year.
pub(crate) fn dated_title(
    style: DatedStyle,
    label: &str,
    start: DateTime<Tz>,
    end: DateTime<Tz>,
) -> String {
    let (s, e) = (start.date_naive(), end.date_naive());
    let same_month = s.year() == e.year() && s.month() == e.month();
    let short_end = (same_month && e.day() > s.day())
        || (!matches!(style, DatedStyle::Explicit | DatedStyle::ExplicitOutLabel)
            && next_month(s, e)
            && e.day() < s.day());
    let end_part = if same_month && e.day() == s.day() {
        String::new()
    } else if short_end {
        format!("-{}", e.day())
    } else {
        format!("-{}/{}", e.month(), e.day())
    };
    let (m1, d1) = (s.month(), s.day());
    match style {
        DatedStyle::Range | DatedStyle::Explicit => format!("{m1}/{d1}{end_part}"),
        DatedStyle::RangeOutLabel | DatedStyle::ExplicitOutLabel => {
            format!("{m1}/{d1}{end_part}{}", AmPm::of(end).lower())
        }
        DatedStyle::RangeWeekday => {
            format!("{m1}/{d1}{end_part} ({})", weekday_suffix(e.weekday()))
        }
        DatedStyle::BoardingOf => {
            format!("B/O {label} {m1}/{d1}{}{end_part}", AmPm::of(start).upper())
        }
    }
}

/// Instants stay within these days, so that local times always exist.
pub(crate) const FIRST_DAY: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
/// See [`FIRST_DAY`].
pub(crate) const LAST_DAY: NaiveDate = NaiveDate::from_ymd_opt(2200, 12, 31).unwrap();

/// An instant moved into `FIRST_DAY..=LAST_DAY`.
pub(crate) fn clamp_instant(t: DateTime<Utc>) -> DateTime<Utc> {
    let lo = FIRST_DAY.and_time(NaiveTime::MIN).and_utc();
    let hi = LAST_DAY.and_time(NaiveTime::MIN).and_utc();
    t.clamp(lo, hi)
}

/// `day` plus `days` (the last representable day when that overflows).
pub(crate) fn plus_days(day: NaiveDate, days: i64) -> NaiveDate {
    ChronoDuration::try_days(days)
        .and_then(|d| day.checked_add_signed(d))
        .unwrap_or(if days < 0 {
            NaiveDate::MIN
        } else {
            NaiveDate::MAX
        })
}

/// The UTC instant of local `minutes` after midnight on `day`; a time in a
/// DST gap moves an hour later, an ambiguous one takes the first instant.
pub(crate) fn local(tz: Tz, day: NaiveDate, minutes: u32) -> DateTime<Utc> {
    let day = day.clamp(FIRST_DAY, LAST_DAY);
    let time = NaiveTime::from_num_seconds_from_midnight_opt(minutes.min(24 * 60 - 1) * 60, 0)
        .unwrap_or(NaiveTime::MIN);
    let naive = NaiveDateTime::new(day, time);
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            naive
                .checked_add_signed(ChronoDuration::hours(1))
                .and_then(|n| tz.from_local_datetime(&n).earliest())
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| naive.and_utc())
}

// --- Seeded data -----------------------------------------------------------

const PET_NAMES: &[&str] = &[
    "Luna",
    "Max",
    "Bella",
    "Cooper",
    "Daisy",
    "Charlie",
    "Biscuit",
    "Mochi",
    "Pepper",
    "Zoë",
    "Señor Woof",
    "Mr. O'Malley",
    "Lady \"Fluff\"",
    "Koda",
    "Otis",
    "Winnie",
    "Tofu",
    "Ginger",
    "Bear",
    "Scout",
    "Nala",
    "Olive",
    "Chewbacca",
    "Sir Barks-a-Lot",
    "Rosie",
    "Finn",
    "Juniper",
    "Pickles",
    // "dc" inside a word: not the `dc` of the service-type rule.
    "Woodchuck",
    // A pet called Busy: "B/O Busy ..." is not exactly `busy`.
    "Busy",
];

const FIRST_NAMES: &[&str] = &[
    "Anne-Marie",
    "José",
    "Lee",
    "Priya",
    "Tom \"TJ\"",
    "Björn",
    "Ngozi",
    "Maria",
    "Olga",
    "Kenji",
    "Chloé",
    "Sam",
    "Rachel",
    "Marcus",
    "Hannah",
    "Diego",
];

const LAST_NAMES: &[&str] = &[
    "O'Neil",
    "García",
    "Chen",
    "Patel",
    "Jackson",
    "Andersson",
    "Okafor",
    "da Silva",
    "Ivanova",
    "Watanabe",
    "Dubois",
    "<Admin> Taylor",
    "Fitzgerald-Hughes",
    "Smith & Jones",
    "Nguyen",
    "Kowalski",
];

const STREETS: &[&str] = &[
    "Elm St.",
    "Maple Ave",
    "Oak Ridge Rd",
    "Willow Ln, Apt 3 & 4",
    "Birch Ct #12",
    "Cedar \"Old Mill\" Way",
    "Lakeshore Dr",
];

const CITIES: &[&str] = &[
    "Springfield, MA 01101",
    "Asheville, NC 28801",
    "Portland, ME 04101",
    "Burlington, VT 05401",
    "Ithaca, NY 14850",
];

const BREEDS: &[&str] = &[
    "Golden Retriever",
    "Labrador Retriever / Poodle mix",
    "Cavalier King Charles Spaniel",
    "German Shepherd",
    "Beagle",
    "Mixed (shelter says \"terrier-ish\")",
    "Bernese Mountain Dog",
];

const NOTE_TEXTS: &[&str] = &[
    "Needs meds at 8am & 6pm.",
    "Allergic to chicken; <b>no</b> treats please.",
    "Bring own bed. Owner reachable on mobile.",
    "Shy with large dogs – separate play group.",
    "Feed 2 cups twice a day, \"senior\" formula.",
    "Vaccination record on file (exp. 2027).",
    "Owner's sister will pick up.",
    "Paid deposit by card; balance at pick-up.",
    "Loves belly rubs!",
];

const BOARDING_SERVICES: &[&str] = &[
    "Boarding (Nights)",
    "Boarding",
    "Overnight Boarding",
    "Boarding - Luxury Suite",
    "Cat Boarding",
];

const DAY_SERVICES: &[&str] = &[
    "Daycare",
    "DC Full Day",
    "DC Half Day",
    "Day Visit",
    "Pack Walk",
    "Pack Group",
];

/// Undated boarding titles (the timestamps give the stay).
const UNDATED_TITLES: &[&str] = &[
    "Boarding",
    "Holiday stay",
    "Overnight stay",
    "Extended stay",
];

/// The "Boarding (Nights)" page type: no `h1`, the title in `<title>` only.
pub(crate) const NIGHTS_TITLE: &str = "Boarding (Nights)";

struct Gen<'a> {
    rng: StdRng,
    config: &'a BookingSimConfig,
    ids: HashSet<String>,
    clients: Vec<(Client, Vec<Pet>)>,
}

/// Generates the seeded data.
pub(crate) fn generate(config: &BookingSimConfig) -> Vec<Appointment> {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(config.seed),
        config,
        ids: HashSet::new(),
        clients: Vec::new(),
    };
    let client_count = 12 + (config.boardings_per_day as usize).min(50) * 4;
    for i in 0..client_count {
        let c = g.client(i);
        g.clients.push(c);
    }
    let mut out = Vec::new();
    let Some(last) = config
        .start
        .checked_add_signed(ChronoDuration::days(i64::from(config.days.max(1)) - 1))
    else {
        return out;
    };
    for _ in 0..config.recurring_daycare {
        out.push(g.recurring(config.start, last));
    }
    for offset in 0..config.days {
        let Some(day) = config
            .start
            .checked_add_signed(ChronoDuration::days(i64::from(offset)))
        else {
            break;
        };
        let boardings = g.rng.gen_range(0..=2 * config.boardings_per_day);
        let others = g.rng.gen_range(0..=2 * config.daycare_per_day);
        let mut kinds: Vec<bool> = std::iter::repeat_n(true, boardings as usize)
            .chain(std::iter::repeat_n(false, others as usize))
            .collect();
        kinds.shuffle(&mut g.rng);
        for boarding in kinds {
            let a = if boarding {
                g.boarding(day)
            } else {
                g.non_boarding(day)
            };
            out.push(a);
        }
    }
    let tz = config.tz;
    for a in &mut out {
        a.ever_boarding = a.is_boarding(tz);
    }
    out
}

/// A new boarding for [`super::RunningBookingSim::add_booking`].
pub(crate) fn new_boarding(
    config: &BookingSimConfig,
    seed: u64,
    taken: &dyn Fn(&str) -> bool,
    day: NaiveDate,
    nights: u32,
    pets: Option<Vec<String>>,
) -> Appointment {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed ^ 0xadd_b00c),
        config,
        ids: HashSet::new(),
        clients: Vec::new(),
    };
    let which = g.rng.gen_range(0..1000);
    let c = g.client(which);
    g.clients.push(c);
    let mut a = loop {
        let a = g.boarding(day);
        if !taken(&a.id) {
            break a;
        }
    };
    let tz = config.tz;
    let out_day = plus_days(day, i64::from(nights.clamp(1, 60)));
    let out_minutes = g.rng.gen_range(16..=22) * 30;
    a.end = local(tz, out_day, out_minutes);
    if let Some(names) = pets.filter(|p| !p.is_empty()) {
        a.pets = names
            .into_iter()
            .map(|name| Pet {
                name,
                fields: Vec::new(),
            })
            .collect();
    }
    if let Some(p) = &mut a.pricing {
        let n = a.pets.len();
        let nights = i64::from(nights.clamp(1, 60));
        for line in &mut p.lines {
            let (rate, qty) = line.per_pet.first().copied().unwrap_or((5000, 100));
            let qty = if line.service.contains("oarding") {
                nights * 100
            } else {
                qty
            };
            line.per_pet = vec![(rate, qty); n];
        }
    }
    a.ever_boarding = a.is_boarding(tz);
    a
}

impl Gen<'_> {
    fn pick(&mut self, list: &[&str]) -> String {
        list.choose(&mut self.rng)
            .copied()
            .unwrap_or("")
            .to_string()
    }

    fn id(&mut self) -> String {
        loop {
            let numeric = match self.config.id_style {
                IdStyle::Numeric => true,
                IdStyle::Alphanumeric => false,
                IdStyle::Mixed => self.rng.gen_bool(0.5),
            };
            let id = if numeric {
                self.rng.gen_range(100_000..10_000_000u32).to_string()
            } else {
                const CHARS: &[u8] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                let mut s: String = (0..8)
                    .map(|_| char::from(CHARS[self.rng.gen_range(0..CHARS.len())]))
                    .collect();
                if s.bytes().all(|b| b.is_ascii_digit()) {
                    s.replace_range(0..1, "K");
                }
                s
            };
            if self.ids.insert(id.clone()) {
                return id;
            }
        }
    }

    fn client(&mut self, i: usize) -> (Client, Vec<Pet>) {
        let first = FIRST_NAMES[i % FIRST_NAMES.len()];
        let last = LAST_NAMES[(i / FIRST_NAMES.len() + i * 7) % LAST_NAMES.len()];
        let name = format!("{first} {last}");
        let slug: String = format!("{first}.{last}")
            .chars()
            .filter_map(|c| match c {
                'a'..='z' | '0'..='9' | '.' | '-' => Some(c),
                'A'..='Z' => Some(c.to_ascii_lowercase()),
                'é' | 'è' => Some('e'),
                'ö' => Some('o'),
                'í' => Some('i'),
                _ => None,
            })
            .collect();
        let email = if self.rng.gen_ratio(1, 15) {
            None
        } else if self.rng.gen_ratio(1, 6) {
            Some(format!("{slug}+dogs{i}@example.org"))
        } else {
            Some(format!("{slug}{i}@example.com"))
        };
        let phone = (!self.rng.gen_ratio(1, 12)).then(|| {
            format!(
                "+1{}{:07}",
                [555, 617, 828, 207][self.rng.gen_range(0..4)],
                self.rng.gen_range(0..10_000_000u32)
            )
        });
        let address = (!self.rng.gen_ratio(1, 10)).then(|| {
            format!(
                "{} {}, {}",
                self.rng.gen_range(1..2000),
                self.pick(STREETS),
                self.pick(CITIES)
            )
        });
        let pet_count = match self.rng.gen_range(0..100) {
            0..=64 => 1,
            65..=89 => 2,
            _ => 3,
        };
        let mut pets: Vec<Pet> = Vec::new();
        for _ in 0..pet_count {
            let mut name = self.pick(PET_NAMES);
            if pets.iter().any(|x| x.name == name) {
                name = format!("{name} Jr.");
            }
            pets.push(Pet {
                name,
                fields: Vec::new(),
            });
        }
        // Secondary pets show a subset of the primary pet's fields, so "the
        // first field with this label" is the primary pet's.
        let primary = self.pet_fields(None);
        let keys: Vec<Option<String>> = primary.iter().map(|f| f.key.clone()).collect();
        for (i, pet) in pets.iter_mut().enumerate() {
            pet.fields = if i == 0 {
                primary.clone()
            } else {
                self.pet_fields(Some(&keys))
            };
        }
        (
            Client {
                name,
                email,
                phone,
                address,
            },
            pets,
        )
    }

    fn field(&mut self, key: Option<&str>, label: &str, lines: Vec<String>) -> Field {
        let label = match key {
            Some(k) => {
                let variants = label_variants(k);
                variants
                    .choose(&mut self.rng)
                    .copied()
                    .unwrap_or(label)
                    .to_string()
            }
            None => label.to_string(),
        };
        Field {
            key: key.map(str::to_string),
            label,
            lines,
        }
    }

    fn pet_fields(&mut self, only: Option<&[Option<String>]>) -> Vec<Field> {
        let mut out = Vec::new();
        let wanted = |k: &str| only.is_none_or(|o| o.iter().any(|x| x.as_deref() == Some(k)));
        for key in PET_KEYS {
            let present = if only.is_some() {
                wanted(key) && self.rng.gen_ratio(4, 5)
            } else {
                self.rng.gen_ratio(5, 6)
            };
            if !present {
                continue;
            }
            let lines: Vec<String> = match key {
                "Birthdate" => {
                    let (m, d, y) = (
                        self.rng.gen_range(1..=12u32),
                        self.rng.gen_range(1..=28u32),
                        self.rng.gen_range(2010..=2024),
                    );
                    let text = match NaiveDate::from_ymd_opt(y, m, d) {
                        Some(date) if self.rng.gen_bool(0.5) => {
                            date.format("%B %-d, %Y").to_string()
                        }
                        _ => format!("{m:02}/{d:02}/{y}"),
                    };
                    vec![text]
                }
                "Breed(s)" => vec![self.pick(BREEDS)],
                "Breed Type" => vec![self.pick(&["Large", "Medium", "Small", "Toy", "Giant"])],
                "Food Allergies" => vec![self.pick(&[
                    "None",
                    "Chicken",
                    "Grain-free diet, no chicken",
                    "Beef & dairy",
                ])],
                "Health and Mobility" => match self.rng.gen_range(0..3) {
                    0 => vec!["Healthy, high energy".into()],
                    1 => vec!["Hip dysplasia".into(), "No stairs please".into()],
                    _ => vec!["Deaf in one ear".into()],
                },
                "Medications" => match self.rng.gen_range(0..3) {
                    0 => vec!["None".into()],
                    1 => vec!["Apoquel 16mg".into(), "once daily with food".into()],
                    _ => vec![
                        "Carprofen 75 mg <2x/day>".into(),
                        "Fish oil".into(),
                        "Eye drops (left eye)".into(),
                    ],
                },
                "Veterinarian" => vec![self.pick(&[
                    "Maple Animal Hospital, (555) 987-6543",
                    "Dr. Ruiz @ Northside Vet",
                    "Paws & Claws Clinic",
                ])],
                "Behavioral" => vec![self.pick(&[
                    "Friendly with other dogs",
                    "Resource guards toys",
                    "Nervous around men in hats",
                ])],
                _ => vec![self.pick(&["None", "Nipped a groomer (2022)", "No"])],
            };
            out.push(self.field(Some(key), key, lines));
        }
        if only.is_none() && self.rng.gen_ratio(1, 2) {
            let (label, value) = [
                ("Weight", "45 lbs"),
                ("Color", "Brown & white"),
                ("Spayed/Neutered", "Yes"),
                ("Gender", "Female"),
            ][self.rng.gen_range(0..4)];
            let at = self.rng.gen_range(0..=out.len());
            out.insert(at, self.field(None, label, vec![value.to_string()]));
        }
        out
    }

    fn access_fields(&mut self) -> Vec<Field> {
        let mut out = Vec::new();
        if self.rng.gen_ratio(3, 4) {
            let lines = match self.rng.gen_range(0..3) {
                0 => vec!["Gate code is 1234".into(), "Key under the mat".into()],
                1 => vec!["Lockbox on side door, code 4455".into()],
                _ => vec![
                    "Ring twice & wait".into(),
                    "Cat must NOT get out".into(),
                    "Alarm: 9-8-7-6".into(),
                ],
            };
            out.push(self.field(Some(ACCESS_KEYS[0]), ACCESS_KEYS[0], lines));
        }
        if self.rng.gen_ratio(3, 4) {
            let v = self.pick(&[
                "Please arrive between 4-6 PM",
                "Front desk; leash at the hook",
                "Owner drops off at 7:30am sharp",
            ]);
            out.push(self.field(Some(ACCESS_KEYS[1]), ACCESS_KEYS[1], vec![v]));
        }
        if self.rng.gen_ratio(1, 3) {
            let v = self.pick(&["Jane (sister), +1 555 010 2222", "Neighbour in #4"]);
            out.push(self.field(None, "Emergency Contact", vec![v]));
        }
        out
    }

    fn notes(&mut self) -> Vec<String> {
        let n = match self.rng.gen_range(0..10) {
            0..=3 => 0,
            4..=7 => 1,
            8 => 2,
            _ => 3,
        };
        let mut notes: Vec<String> = NOTE_TEXTS
            .choose_multiple(&mut self.rng, n)
            .map(|s| s.to_string())
            .collect();
        notes.dedup();
        notes
    }

    fn shared(&mut self, id: String, start: DateTime<Utc>, end: DateTime<Utc>) -> Appointment {
        let ci = self.rng.gen_range(0..self.clients.len().max(1));
        let (client, pets) = self.clients.get(ci).cloned().unwrap_or_else(|| {
            (
                Client {
                    name: "Walk-in".into(),
                    email: None,
                    phone: None,
                    address: None,
                },
                vec![Pet {
                    name: "Rex".into(),
                    fields: Vec::new(),
                }],
            )
        });
        // A booking brings one or more of the client's pets, primary first.
        let take = self.rng.gen_range(1..=pets.len().max(1));
        let pets: Vec<Pet> = pets.into_iter().take(take).collect();
        let access = self.access_fields();
        let notes = self.notes();
        Appointment {
            id,
            title: Title::Fixed(String::new()),
            h1: true,
            title_js: self.rng.gen_bool(self.config.js_title_rate.clamp(0.0, 1.0)),
            event_type: "1".into(),
            status: [SCHEDULED, CONFIRMED, CONFIRMED, CHECKED_IN, CHECKED_OUT]
                [self.rng.gen_range(0..5)]
            .to_string(),
            start,
            end,
            recurring: None,
            list_time: ListTime::Labels,
            client,
            pets,
            access,
            notes,
            pricing: None,
            removed: false,
            ever_boarding: false,
            style: self.rng.gen(),
            messy: self.rng.gen_bool(self.config.messy_rate.clamp(0.0, 1.0)),
        }
    }

    /// A boarding stay: check-in on `day`, one night or more, at least 12 h.
    fn boarding(&mut self, day: NaiveDate) -> Appointment {
        let tz = self.config.tz;
        let id = self.id();
        let in_minutes = if self.rng.gen_bool(0.5) {
            self.rng.gen_range(14..=23) * 30 // 7:00-11:30
        } else {
            self.rng.gen_range(30..=37) * 30 // 15:00-18:30
        };
        let nights: i64 = if self.rng.gen_ratio(1, 8) {
            self.rng.gen_range(8..=16)
        } else {
            self.rng.gen_range(1..=7)
        };
        let out_minutes = if self.rng.gen_bool(0.6) {
            self.rng.gen_range(16..=23) * 30 // 8:00-11:30
        } else {
            self.rng.gen_range(28..=36) * 30 // 14:00-18:00
        };
        let clock = self.rng.gen_ratio(1, 4);
        let jitter = if clock { self.rng.gen_range(0..30) } else { 0 };
        let start = local(tz, day, in_minutes + jitter);
        let end = local(tz, plus_days(day, nights), out_minutes);
        let mut a = self.shared(id, start, end);
        a.list_time = if clock {
            ListTime::Clock
        } else {
            ListTime::Labels
        };
        let (s, e) = (start.with_timezone(&tz), end.with_timezone(&tz));
        let cross = s.month() != e.month();
        let label = a.pets.first().map_or("Rex".to_string(), |p| p.name.clone());
        let roll = self.rng.gen_range(0..100);
        a.title = match roll {
            0..=29 => Title::Dated {
                style: DatedStyle::Range,
                label,
            },
            30..=44 => Title::Dated {
                style: DatedStyle::RangeOutLabel,
                label,
            },
            45..=52 => Title::Dated {
                style: DatedStyle::RangeWeekday,
                label,
            },
            53..=64 => Title::Dated {
                style: DatedStyle::BoardingOf,
                label,
            },
            65..=74 if cross => Title::Dated {
                style: if roll % 2 == 0 {
                    DatedStyle::Explicit
                } else {
                    DatedStyle::ExplicitOutLabel
                },
                label,
            },
            65..=74 => Title::Dated {
                style: DatedStyle::Range,
                label,
            },
            75..=81 => {
                a.h1 = false;
                Title::Fixed(NIGHTS_TITLE.to_string())
            }
            82..=89 => Title::Fixed(self.pick(UNDATED_TITLES)),
            _ => {
                // A stale title: dates of an earlier booking, more than 20
                // days before the stay (the pages' timestamps are right).
                let back = ChronoDuration::days(self.rng.gen_range(30..=75));
                match (s.checked_sub_signed(back), e.checked_sub_signed(back)) {
                    (Some(s), Some(e)) => Title::Stale(dated_title(DatedStyle::Range, "", s, e)),
                    _ => Title::Fixed(self.pick(UNDATED_TITLES)),
                }
            }
        };
        a.event_type = if self.rng.gen_ratio(9, 10) { "1" } else { "5" }.into();
        if !self.rng.gen_ratio(1, 10) {
            a.pricing = Some(self.boarding_pricing(a.pets.len(), nights));
        }
        a
    }

    fn boarding_pricing(&mut self, pets: usize, nights: i64) -> Pricing {
        let pets = pets.max(1);
        let main = self.pick(BOARDING_SERVICES);
        let rate = self.rng.gen_range(45..=85) * 100 + [0, 50, 0][self.rng.gen_range(0..3)];
        let mut lines = vec![PriceLine {
            service: main,
            per_pet: vec![(rate, nights * 100); pets],
        }];
        let extras: &[(&str, i64, bool)] = &[
            ("Bath", 3500, false),
            ("Nail Trim", 1500, false),
            ("Holiday Surcharge", 1000, true),
            ("Daycare", 3800, false),
            ("Late Check-out", 2000, false),
            ("Medication Administration", 500, true),
        ];
        for (name, rate, per_night) in extras {
            if self.rng.gen_ratio(1, 6) {
                let qty = if *per_night { nights * 100 } else { 100 };
                lines.push(PriceLine {
                    service: (*name).to_string(),
                    per_pet: vec![(*rate, qty); pets],
                });
            }
        }
        Pricing { lines }
    }

    fn day_pricing(&mut self, pets: usize, days: i64) -> Pricing {
        let pets = pets.max(1);
        let count = self.rng.gen_range(1..=2);
        let lines = DAY_SERVICES
            .choose_multiple(&mut self.rng, count)
            .map(|s| PriceLine {
                service: (*s).to_string(),
                per_pet: vec![(3800, days.max(1) * 100); pets],
            })
            .collect();
        Pricing { lines }
    }

    /// A recurring daycare entry: on set weekdays, every week of the data.
    fn recurring(&mut self, first: NaiveDate, last: NaiveDate) -> Appointment {
        let tz = self.config.tz;
        let id = self.id();
        let (title, weekdays): (&str, Vec<Weekday>) = match self.rng.gen_range(0..4) {
            0 => (
                "D/C M/T/W/TH",
                vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu],
            ),
            1 => (
                "DC:FT",
                vec![
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                ],
            ),
            2 => ("D/C T/TH", vec![Weekday::Tue, Weekday::Thu]),
            _ => ("dc MWF", vec![Weekday::Mon, Weekday::Wed, Weekday::Fri]),
        };
        let start_minutes = self.rng.gen_range(8..=10) * 60;
        let end_minutes = start_minutes + 60;
        let mut day = first;
        while !weekdays.contains(&day.weekday()) && day < last {
            day = day.succ_opt().unwrap_or(day);
        }
        let start = local(tz, day, start_minutes);
        let end = local(tz, day, end_minutes);
        let mut a = self.shared(id, start, end);
        a.title = Title::Fixed(title.to_string());
        a.event_type = "2".into();
        a.status = CONFIRMED.into();
        a.list_time = ListTime::PickUp;
        a.recurring = Some(Recurring {
            weekdays,
            first,
            last,
            start_minutes,
            end_minutes,
        });
        if self.rng.gen_bool(0.5) {
            a.pricing = Some(self.day_pricing(a.pets.len(), 1));
        }
        a
    }

    /// One of the reference's non-boardings, on `day`.
    fn non_boarding(&mut self, day: NaiveDate) -> Appointment {
        let tz = self.config.tz;
        let kind = self.rng.gen_range(0..12);
        match kind {
            // A boarding in every way but its booking status.
            0 => {
                let mut a = self.boarding(day);
                a.status = CANCELED.into();
                a
            }
            // Every line item a day service, on a dated multi-day title.
            1 => {
                let id = self.id();
                let days = self.rng.gen_range(2..=5);
                let start = local(tz, day, 8 * 60);
                let end = local(tz, plus_days(day, days), 17 * 60);
                let mut a = self.shared(id, start, end);
                a.title = Title::Dated {
                    style: DatedStyle::Range,
                    label: String::new(),
                };
                a.event_type = "2".into();
                a.pricing = Some(self.day_pricing(a.pets.len(), days + 1));
                a
            }
            // Shorter than 12 hours, nothing else gives it away.
            2 => {
                let id = self.id();
                let in_minutes = self.rng.gen_range(7..=10) * 60;
                let hours = self.rng.gen_range(3..=10);
                let start = local(tz, day, in_minutes);
                let end = local(tz, day, in_minutes + hours * 60);
                let mut a = self.shared(id, start, end);
                if self.rng.gen_bool(0.5) {
                    a.h1 = false;
                    a.title = Title::Fixed(NIGHTS_TITLE.into());
                } else {
                    a.title = Title::Fixed("Trial stay".into());
                }
                a.list_time = ListTime::Clock;
                a
            }
            _ => {
                let id = self.id();
                let (title, event_type, in_min, len_min, priced, busy) = match kind {
                    3..=5 => {
                        let t = [
                            format!("D/C {}/{}", day.month(), day.day()),
                            "DC FT".to_string(),
                            "d/c drop-in".to_string(),
                            format!("DC {}", weekday_suffix(day.weekday())),
                        ][self.rng.gen_range(0..4)]
                        .clone();
                        (t, "2", 7 * 60 + 30, 10 * 60, true, false)
                    }
                    6 => {
                        let t = self.pick(&["add Bath", "Add: nail trim", "add-on walk"]);
                        (t, "2", 13 * 60, 60, false, false)
                    }
                    7 => {
                        let t = self.pick(&["switch day (Tue to Thu)", "Switch day"]);
                        (t, "2", 8 * 60, 9 * 60, false, false)
                    }
                    8 => {
                        let t = format!(
                            "{} {}",
                            self.pick(&["back to", "Back to"]),
                            self.rng.gen_range(2..=4)
                        );
                        (t, "2", 8 * 60, 9 * 60, false, false)
                    }
                    9 | 10 => {
                        let t = self.pick(&["Initial Eval", "Initial Evaluation", "initial eval"]);
                        (t, "3", 10 * 60, 90, false, false)
                    }
                    _ => {
                        let t = self.pick(&["busy", "Busy"]);
                        (t, "4", 12 * 60, 180, false, true)
                    }
                };
                let jitter = self.rng.gen_range(0..60);
                let start = local(tz, day, in_min + jitter);
                let end = local(tz, day, in_min + jitter + len_min);
                let mut a = self.shared(id, start, end);
                a.title = Title::Fixed(title);
                a.event_type = event_type.into();
                a.list_time = if len_min >= 9 * 60 {
                    ListTime::Labels
                } else {
                    ListTime::Clock
                };
                if priced {
                    a.pricing = Some(self.day_pricing(a.pets.len(), 1));
                }
                if busy {
                    // Blocked staff time: no client, no pets.
                    a.client = Client {
                        name: "Staff".into(),
                        email: None,
                        phone: None,
                        address: None,
                    };
                    a.pets.clear();
                    a.access.clear();
                    a.notes.clear();
                }
                a
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(tz: Tz, y: i32, m: u32, d: u32, h: u32) -> DateTime<Tz> {
        local(tz, NaiveDate::from_ymd_opt(y, m, d).unwrap(), h * 60).with_timezone(&tz)
    }

    #[test]
    fn dated_titles_take_the_reference_forms() {
        let tz = chrono_tz::America::New_York;
        let t = |style, s, e| dated_title(style, "Pepper", s, e);
        assert_eq!(
            t(
                DatedStyle::Range,
                at(tz, 2026, 2, 13, 16),
                at(tz, 2026, 2, 18, 10)
            ),
            "2/13-18"
        );
        assert_eq!(
            t(
                DatedStyle::RangeOutLabel,
                at(tz, 2026, 2, 14, 16),
                at(tz, 2026, 2, 15, 9)
            ),
            "2/14-15am"
        );
        assert_eq!(
            t(
                DatedStyle::RangeWeekday,
                at(tz, 2026, 3, 3, 9),
                at(tz, 2026, 3, 19, 9)
            ),
            "3/3-19 (Thur)"
        );
        assert_eq!(
            t(
                DatedStyle::BoardingOf,
                at(tz, 2026, 2, 9, 17),
                at(tz, 2026, 2, 17, 9)
            ),
            "B/O Pepper 2/9PM-17"
        );
        assert_eq!(
            t(
                DatedStyle::Explicit,
                at(tz, 2026, 2, 28, 9),
                at(tz, 2026, 3, 5, 9)
            ),
            "2/28-3/5"
        );
        // An end day below the start day rolls into the next month.
        assert_eq!(
            t(
                DatedStyle::Range,
                at(tz, 2026, 1, 28, 9),
                at(tz, 2026, 2, 3, 9)
            ),
            "1/28-3"
        );
        assert_eq!(
            t(
                DatedStyle::ExplicitOutLabel,
                at(tz, 2026, 1, 31, 9),
                at(tz, 2026, 2, 1, 15)
            ),
            "1/31-2/1pm"
        );
        assert_eq!(
            t(
                DatedStyle::RangeOutLabel,
                at(tz, 2026, 1, 31, 9),
                at(tz, 2026, 2, 1, 15)
            ),
            "1/31-1pm"
        );
        assert_eq!(
            t(
                DatedStyle::Range,
                at(tz, 2025, 12, 30, 9),
                at(tz, 2026, 1, 4, 9)
            ),
            "12/30-4"
        );
    }

    #[test]
    fn non_boarding_rules() {
        for t in [
            "D/C M/T/W/TH",
            "DC:FT",
            "dc MWF",
            "add Bath",
            "Add: nail trim",
            "add-on walk",
            "switch day (Tue to Thu)",
            "back to 3",
            "Initial Evaluation",
            "busy",
            "Busy",
        ] {
            assert!(title_is_non_boarding(t), "{t}");
        }
        for t in [
            "2/13-18",
            "B/O Woodchuck 2/9PM-17",
            "B/O Busy 3/2PM-6",
            "Boarding (Nights)",
            "Holiday stay",
            "back to back",
        ] {
            assert!(!title_is_non_boarding(t), "{t}");
        }
        for s in [
            "Daycare",
            "DC Full Day",
            "Day Visit",
            "Pack Walk",
            "DC Half Day",
        ] {
            assert!(is_day_service(s), "{s}");
        }
        for s in [
            "Boarding (Nights)",
            "Holiday Surcharge",
            "Bath",
            "Cat Boarding",
        ] {
            assert!(!is_day_service(s), "{s}");
        }
    }
}
