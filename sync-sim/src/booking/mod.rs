//! Simulator of the kennel's hosted booking web app that `sync-source-scraper`
//! scrapes, written from `reference/booking-site.md` (never from the
//! scraper's parser, so that each catches the other's misreading).
//!
//! A loopback web server ([`BookingSim::start`]) with:
//! - a login form (`GET /login`) with hidden inputs, the username field
//!   (named `username` or `email`, [`UsernameField`]) and the password;
//!   `POST /login` with every hidden input and the cookie of the `GET`
//!   answers a 3xx redirect that sets the session cookie; a failure answers
//!   200 with the form again and a message containing "Invalid" or
//!   "incorrect";
//! - sessions that die a configured time after login
//!   ([`BookingSimConfig::session_ttl`]); an expired session is answered by a
//!   redirect to `/login` or by a 200 with the login form ([`ExpiredStyle`]);
//! - schedule pages `/schedule` (the default view) and
//!   `/schedule/days-7/YYYY/M/D` (seven days from that date, query ignored),
//!   on which every appointment active in the window is a
//!   `<a href="/schedule/a/{id}/{timestamp}" data-event_type data-status>`
//!   holding `.event-pet`, `.event-client`, `.day-event-time` and
//!   `.day-event-title`, in varying markup (a day grid, day columns or an
//!   agenda list: no container to rely on), chained by a "next" link;
//! - detail pages `/schedule/a/{id}/{timestamp}` with the reference's markup
//!   (`h1` or `<title>`, `#when-wrapper`, `.appt-change-status`,
//!   `.event-client` with `data-emails`, `.mobile-contact`, `data-address`,
//!   `.event-pet`, `.scheduled-duration`, `.field-label`/`.field-value`,
//!   `.notes-wrapper .note`, `fieldset#confirm-price`), 404 once deleted;
//! - seeded deterministic data in an IANA time zone: boardings of one or
//!   more pets with contacts, fields, notes and line items, and the
//!   reference's non-boardings (daycare, add, switch day, back to N, initial
//!   eval, busy, canceled requests, day-service bookings, short stays);
//! - ground truth ([`RunningBookingSim::boardings`],
//!   [`RunningBookingSim::non_boardings`]), mutations (edits shown only on the
//!   detail page, cancel, delete, add, move, seeded random ones inside or
//!   outside a date horizon), faults ([`Faults`], [`PageFaults`],
//!   [`Latency`]) and counters ([`BookingSimStats`], with pacing breaches
//!   against a [`RateCheck`]).
//!
//! # Choices where the reference is silent
//! Documented so that a test (or a reader of a failing one) can tell what
//! the simulator does; the reference wins wherever it speaks.
//!
//! **Login and sessions**
//! - The login form carries three hidden inputs (`_token`, a one-time nonce;
//!   `form_build_id`; `redirect_to`). `_token` and `form_build_id` must come
//!   back unchanged and `redirect_to` must be present; the nonce is bound to
//!   the `bk_sid` cookie that `GET /login` sets and is used up by any POST.
//!   Some hidden inputs sit before the text fields and some after; attribute
//!   order varies between requests. A submit button and a "remember me"
//!   checkbox are in the form too (neither is needed).
//! - The username input is `type="text" name="username"` or
//!   `type="email" name="email"` ([`BookingSimConfig::username_field`]); the
//!   password input is `type="password"`, its name configurable
//!   ([`BookingSimConfig::password_field`], default `password`).
//! - A bad or missing nonce answers "Invalid security token. Please reload
//!   the page and try again."; bad credentials answer "The username or
//!   password you entered is incorrect." Both are 200 with a fresh form.
//! - Success is a `302 Found` to `/schedule` or `/dashboard` (alternating;
//!   `/dashboard` is a plain page behind the session) that sets `bk_auth`
//!   (and an unimportant `bk_last_login`). With
//!   [`BookingSimConfig::require_both_cookies`] (the default) a page needs
//!   both `bk_sid` (from the `GET`) and `bk_auth` (from the `POST`): "keep
//!   the cookies of both responses".
//! - The TTL runs from login, not from the last request. An expired session
//!   is counted once ([`BookingSimStats::session_expiries`]); the redirect
//!   goes to `/login?redirect_to=<path>`; the 200 style serves the login form
//!   with "Your session has expired. Please log in again." and a new
//!   `bk_sid`. [`ExpiredStyle::Mixed`] alternates, starting with the
//!   redirect. A request without any session is answered the same way but
//!   counted as [`BookingSimStats::unauthenticated`] only.
//!
//! **Schedule pages**
//! - `/schedule` shows the seven days from
//!   [`BookingSimConfig::default_week_start`], or from today (in the
//!   kennel's zone) when it is `None`.
//! - With [`BookingSimConfig::strict_week_paths`] (default) a zero-padded or
//!   signed month/day/year (`/2026/03/02`) or an impossible date is a 404.
//! - The page layout ([`ScheduleLayout`]) varies by week: a table with a cell
//!   a day, a column a day, or an agenda list. In the grid and columns an
//!   appointment appears on every day of the window it is active on (the
//!   same link several times on one page); in the agenda once. Recurring
//!   entries appear once an occurrence, each with its own timestamp.
//! - An appointment is active on the local days from its check-in's to its
//!   check-out's. The link's timestamp is the occurrence's start (Unix
//!   seconds); a detail URL whose timestamp matches no occurrence shows the
//!   first one.
//! - The "next" link varies by week: `.pagination a.next`, an `a[rel=next]`
//!   without a `next` class, or a Bootstrap pager (`li.next >
//!   a.next-week[rel=next]`); a previous link is there too. It points to the
//!   page itself on weeks starting after the data's last day
//!   ([`BookingSimConfig::self_next_after_end`]) and on a seeded share of
//!   weeks ([`BookingSimConfig::self_next_rate`]). Every schedule page, also
//!   an empty week, has the next link and the range label: that is "the
//!   page's usual structure".
//! - `data-event_type` and `data-status` carry numeric codes (invented; the
//!   reference names the attributes only): event types 1 boarding, 2
//!   daycare, 3 evaluation, 4 blocked time, 5 reservation; statuses 1
//!   Scheduled, 2 Confirmed, 3 Checked In, 6 Checked Out, 7 Canceled. Non-
//!   boardings may carry event type 1, so the list does not tell.
//! - `.event-pet` class lists hold more classes at times (`pet-2`,
//!   `primary`, `dog`); `.day-event-title` is empty for a share of the
//!   appointments ([`BookingSimConfig::js_title_rate`]); a busy (blocked)
//!   entry has an empty `.event-pet` and client "Staff".
//! - List time strings, by appointment: multi-day `Apr 01, AM - Apr 13, PM`
//!   (day zero-padded) or `Feb 13, 11:49am ...`; one day `Feb 27, AM - PM` or
//!   `Feb 9, 4:58pm - 7:24pm`; recurring `Pick-Up ( 9 am - 10 am )`.
//! - Cancelled appointments stay on the list with status 7 when
//!   [`BookingSimConfig::list_cancelled`] (default); otherwise they vanish
//!   from it (their detail page still answers). Deleted ones vanish and
//!   their detail page is a 404.
//!
//! **Detail pages**
//! - The appointment's title is the service type: the `h1`, the `<title>`
//!   (`TITLE | Site Name`) and the list's `.day-event-title`. Pages of the
//!   "Boarding (Nights)" type have no `h1`. There is never a second `h1`.
//! - Dated titles agree exactly with the local days of the `#when-wrapper`
//!   timestamps (check-in day, check-out day; the `am`/`PM` parts agree with
//!   the time labels). Stale titles are 30 to 75 days off. Undated titles
//!   ("Boarding", "Holiday stay", "Boarding (Nights)") have no digits.
//! - `#when-wrapper` holds the scheduled check-in and check-out of the
//!   occurrence; the two `.time-label`s (AM before noon) sit in an
//!   `.event-time-scheduled` block inside it, directly inside it, or in an
//!   `.event-time-scheduled` block next to it.
//! - `(Scheduled: N d)` counts local days from check-in to check-out; under
//!   a day it is `N h` (or `N m` under an hour).
//! - The status is the text of `.appt-change-status` (an `<a>` with an icon
//!   before or after the text, or a `<span>`).
//! - Client: `.event-client` text; `data-emails` holds one address (at times
//!   written `data-emails= "..."`); the phone is E.164 in `data-value` of
//!   `a.mobile-contact` (class before or after `data-value`); the header
//!   carries the kennel's own phone and email as decoys. Email, phone and
//!   address are each missing for some clients.
//! - Labelled fields: label texts contain the reference's labels
//!   ("Medications (name, dose, time)"); decoy labels ("Weight", "Emergency
//!   Contact") are mixed in; values hold `<br>` variants between lines.
//!   Booking fields (access, drop off) come first, then each pet's card with
//!   its `.event-pet` and fields. A secondary pet shows only labels its
//!   primary pet shows, so the first field of a label is the primary's.
//! - Notes: one `.note` a note (class `note` alone or `note pinned`), each in
//!   a `.note-item` next to a `.note-meta`; "No notes yet." when none.
//! - Price: the total anchor's classes come in varying order; the total is
//!   `Total $750` or `Total $812.50` (thousands separated only with
//!   [`BookingSimConfig::total_thousands_separator`]); a "Balance due" span
//!   may follow the anchor. The `pets-N` class sits on the wrapper of the
//!   lines (`div.pricing-table`); each line is a `.service-name` span and N
//!   price divs (`data-amount` in dollars with two decimals). All pets of a
//!   line have the same rate and quantity, except after a price edit (the
//!   first pet's div carries the odd cent).
//! - Text: names, titles, notes and values are rendered for a share of the
//!   appointments ([`BookingSimConfig::messy_rate`]) with numeric and named
//!   entities, runs of spaces, tabs, line breaks and `&nbsp;` between words
//!   and around the text.
//!
//! **Ground truth**
//! - Text is canonical: entities decoded, every run of whitespace
//!   (`&nbsp;` included) one space, trimmed; field values and notes are
//!   lines joined with `\n`.
//! - Check-in and check-out are the `#when-wrapper` timestamps; the check-in
//!   day is the check-in's local date; the duration is the text inside
//!   `(Scheduled: ...)`, e.g. `5 d`; the price is the total in dollars; a
//!   line item is the service, the first pet's rate and quantity and the
//!   sum of the pets' amounts.
//! - "Boarding or not" as the simulator reads it: the title contains `d/c`,
//!   the word `dc`, the word `add` (`add-on` counts), `switch day`,
//!   `back to <digit>`, `initial eval`, or is `busy` (any case); the status
//!   is Canceled; every line item is a day service (the word `day` or
//!   `daycare`, a `DC` prefix, the word `pack`); or the stay is shorter than
//!   12 hours. Boarding data avoids every place where readings of these rules
//!   could differ, but two titles test the rules' letter: `B/O Woodchuck ...`
//!   ("dc" inside a word) and `B/O Busy ...` (not exactly "busy") are
//!   boardings.
//! - Instants are kept within the years 1900 to 2200 (an edit or a move
//!   beyond is clamped), so every local time exists and no input panics.
//! - Not simulated: bogus timestamps (the reference's "timestamps far from
//!   the present"); years never appear in list texts or titles.

mod data;
mod html;
mod server;
mod truth;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};

/// How the site answers a request whose session has expired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpiredStyle {
    /// `302 Found` with `Location: /login?redirect_to=...`.
    Redirect,
    /// `200 OK` with the login form in the body.
    LoginFormIn200,
    /// Alternates between the two, starting with the redirect.
    #[default]
    Mixed,
}

/// The name of the login form's username input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UsernameField {
    /// `<input type="text" name="username">`.
    #[default]
    Username,
    /// `<input type="email" name="email">`.
    Email,
}

impl UsernameField {
    /// The input's `name`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Username => "username",
            Self::Email => "email",
        }
    }
}

/// What appointment ids look like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdStyle {
    /// Digits only (`4817263`).
    Numeric,
    /// Eight letters and digits (`C63QgKsK`).
    Alphanumeric,
    /// About half of each.
    #[default]
    Mixed,
}

/// How schedule pages arrange the appointment links.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScheduleLayout {
    /// A table with one cell a day.
    Grid,
    /// One `<section>` a day.
    Columns,
    /// A list under day headings, each appointment once.
    Agenda,
    /// One of the three, chosen by week (seeded).
    #[default]
    Varied,
}

/// Transport-level faults, injected into schedule and detail pages (never
/// into the login pages, so login behaviour stays deterministic).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Share of pages answered with a 500/502/503 HTML error page.
    pub error_5xx_rate: f64,
    /// Share of pages delayed by `slow_delay` (on top of [`Latency`]).
    pub slow_rate: f64,
    /// Delay of a slow page.
    pub slow_delay: Duration,
    /// Share of pages cut off in the middle (no closing `</html>`).
    pub truncated_rate: f64,
    /// Adds per-request clutter (comments and scripts that look like
    /// appointment links, banners, extra classes, whitespace) without
    /// changing the data.
    pub layout_noise: bool,
}

/// Pages whose content is broken the ways the reference says real pages
/// break (each an error for that page, never "no appointments").
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PageFaults {
    /// Share of schedule pages whose appointment cards are there (pets,
    /// clients, times) without their `/schedule/a/` links (a changed layout).
    pub changed_layout_rate: f64,
    /// Share of priced detail pages whose price block keeps its service
    /// names but lost its price divs.
    pub price_divs_missing_rate: f64,
    /// Share of schedule and detail pages answered 200 with a maintenance
    /// page (no schedule or appointment markup at all).
    pub maintenance_rate: f64,
}

/// Time the server takes for every answer (login pages included), drawn
/// uniformly from `min..=max`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// Shortest answer time.
    pub min: Duration,
    /// Longest answer time (`max < min` means `min`).
    pub max: Duration,
}

impl Latency {
    /// Every answer takes `d`.
    pub fn fixed(d: Duration) -> Self {
        Self { min: d, max: d }
    }

    /// Answers take between `min` and `max`.
    pub fn range(min: Duration, max: Duration) -> Self {
        Self { min, max }
    }
}

/// Limits the simulator checks requests against; requests that break them
/// are still served but counted in [`BookingSimStats::breaches`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RateCheck {
    /// Minimum time between two requests (any path).
    pub min_spacing: Option<Duration>,
    /// Requests in any sixty-second window.
    pub per_minute: Option<u32>,
}

/// Configuration of a simulated booking site.
#[derive(Clone, Debug)]
pub struct BookingSimConfig {
    /// Seed of the data and of the injected faults (same seed, same data).
    pub seed: u64,
    /// First day with appointments (local).
    pub start: NaiveDate,
    /// Number of days with appointments.
    pub days: u32,
    /// The kennel's time zone: pages show local times, weeks are local days.
    pub tz: Tz,
    /// Average boardings checking in per day.
    pub boardings_per_day: u32,
    /// Average one-off non-boarding appointments per day (daycare, add,
    /// switch day, back to N, evaluations, busy, canceled requests,
    /// day-service bookings, short stays).
    pub daycare_per_day: u32,
    /// Recurring daycare entries, shown on every week of the data.
    pub recurring_daycare: u32,
    /// What appointment ids look like.
    pub id_style: IdStyle,
    /// The site's name, the ` | Site Name` suffix of every `<title>`.
    pub site_name: String,
    /// The staff login.
    pub username: String,
    /// The staff password.
    pub password: String,
    /// The name of the login form's username input.
    pub username_field: UsernameField,
    /// The name of the login form's password input.
    pub password_field: String,
    /// Pages need both the cookie set by `GET /login` and the one set by a
    /// successful `POST /login`.
    pub require_both_cookies: bool,
    /// How long a session lives after login.
    pub session_ttl: Duration,
    /// How an expired session is answered.
    pub expired_style: ExpiredStyle,
    /// Whether cancelled appointments stay on the schedule (with the
    /// Canceled status code); when false they vanish from it.
    pub list_cancelled: bool,
    /// The first day of `/schedule`; `None`: today in [`Self::tz`].
    pub default_week_start: Option<NaiveDate>,
    /// A zero-padded or signed path segment is a 404 (the site's own links
    /// have no padding).
    pub strict_week_paths: bool,
    /// How schedule pages arrange the links.
    pub schedule_layout: ScheduleLayout,
    /// Weeks starting after the last day of data link "next" to themselves.
    pub self_next_after_end: bool,
    /// Share of weeks (seeded by week) whose "next" link points to the page
    /// itself.
    pub self_next_rate: f64,
    /// Share of appointments whose list title is empty (drawn by JavaScript).
    pub js_title_rate: f64,
    /// Share of appointments whose texts carry entities and odd whitespace.
    pub messy_rate: f64,
    /// `Total $1,250` instead of `Total $1250`.
    pub total_thousands_separator: bool,
    /// Injected transport faults.
    pub faults: Faults,
    /// Injected broken pages.
    pub page_faults: PageFaults,
    /// Answer time of every request.
    pub latency: Latency,
    /// Limits to count breaches against.
    pub rate_check: Option<RateCheck>,
}

impl Default for BookingSimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            start: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
            days: 365,
            tz: chrono_tz::America::New_York,
            boardings_per_day: 6,
            daycare_per_day: 3,
            recurring_daycare: 3,
            id_style: IdStyle::Mixed,
            site_name: "Happy Tails Kennel".into(),
            username: "staff@happytails.test".into(),
            password: "correct horse battery".into(),
            username_field: UsernameField::Username,
            password_field: "password".into(),
            require_both_cookies: true,
            session_ttl: Duration::from_secs(6 * 60),
            expired_style: ExpiredStyle::Mixed,
            list_cancelled: true,
            default_week_start: None,
            strict_week_paths: true,
            schedule_layout: ScheduleLayout::Varied,
            self_next_after_end: true,
            self_next_rate: 0.0,
            js_title_rate: 0.3,
            messy_rate: 0.25,
            total_thousands_separator: false,
            faults: Faults::default(),
            page_faults: PageFaults::default(),
            latency: Latency::default(),
            rate_check: None,
        }
    }
}

/// Counters of what the simulator served, counted as requests arrive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BookingSimStats {
    /// Every request, whatever its path.
    pub requests: u64,
    /// `GET /login`.
    pub login_gets: u64,
    /// `POST /login`.
    pub login_posts: u64,
    /// `GET /schedule` and `GET /schedule/days-7/...`.
    pub schedule_requests: u64,
    /// `GET /schedule/a/...`.
    pub detail_requests: u64,
    /// Any other path.
    pub other_requests: u64,
    /// Successful logins.
    pub logins: u64,
    /// Rejected logins (bad credentials or bad form token).
    pub login_failures: u64,
    /// Sessions found expired (each counted once).
    pub session_expiries: u64,
    /// Requests answered with the login page or a redirect to it because the
    /// session was missing or expired.
    pub unauthenticated: u64,
    /// Answers with status 404.
    pub not_found: u64,
    /// 5xx pages injected.
    pub errors_injected: u64,
    /// Slow pages injected.
    pub slow_injected: u64,
    /// Truncated pages injected.
    pub truncated_injected: u64,
    /// Maintenance pages injected.
    pub maintenance_injected: u64,
    /// Schedule pages served without appointment links.
    pub changed_layout_injected: u64,
    /// Detail pages served without price divs.
    pub price_divs_dropped: u64,
    /// Requests per route: `GET /login`, `POST /login`, `GET /schedule`,
    /// `GET /schedule/days-7`, `GET /schedule/a`, `GET /dashboard`, `other`.
    pub per_path: BTreeMap<String, u64>,
    /// Requests that broke the [`RateCheck`].
    pub breaches: u64,
}

impl BookingSimStats {
    /// Requests counted for a route such as `GET /schedule/days-7`.
    pub fn path(&self, route: &str) -> u64 {
        self.per_path.get(route).copied().unwrap_or(0)
    }

    /// Every fault injected, of any kind.
    pub fn faults_injected(&self) -> u64 {
        self.errors_injected
            + self.slow_injected
            + self.truncated_injected
            + self.maintenance_injected
            + self.changed_layout_injected
            + self.price_divs_dropped
    }
}

/// How the appointment's title relates to its stay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TitleDates {
    /// The title's dates are the local check-in and check-out days.
    Current,
    /// The title has no dates.
    Undated,
    /// The title's dates are more than 20 days off the timestamps.
    Stale,
}

/// One line of a boarding's price block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimLineItem {
    /// The `.service-name` text.
    pub service: String,
    /// The first pet's `data-rate`, in dollars.
    pub rate: f64,
    /// The first pet's `data-qty` divided by 100.
    pub quantity: f64,
    /// The sum of the pets' `data-amount`s, in dollars.
    pub amount: f64,
    /// Each pet's `data-amount`, in page order.
    pub per_pet_amounts: Vec<f64>,
}

/// A pet of a boarding, as its detail page shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimPet {
    /// The `.event-pet` text.
    pub name: String,
    /// Its labelled fields, by the reference's label.
    pub fields: BTreeMap<String, String>,
}

/// A boarding as a correct importer produces it (see "What the source
/// produces" in the reference), plus what tests need to find it on pages.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimBoarding {
    /// The site's appointment id.
    pub appointment_id: String,
    /// The primary pet's name.
    pub pet: String,
    /// Every pet, primary first.
    pub pets: Vec<String>,
    /// Every pet with its fields, primary first.
    pub pet_details: Vec<SimPet>,
    /// Client name.
    pub client: String,
    /// Client email (`data-emails`).
    pub client_email: Option<String>,
    /// Client phone (`.mobile-contact` `data-value`, E.164).
    pub client_phone: Option<String>,
    /// Client address (`data-address`).
    pub client_address: Option<String>,
    /// Service type: the `h1`, else the `<title>` without its suffix.
    pub service: String,
    /// How the title's dates relate to the stay.
    pub title_dates: TitleDates,
    /// Whether the detail page has an `h1`.
    pub has_h1: bool,
    /// Status text of `.appt-change-status`.
    pub status: String,
    /// Check-in (`data-start_scheduled`), UTC.
    pub check_in: DateTime<Utc>,
    /// Check-out (`data-end_scheduled`), UTC; always set.
    pub check_out: Option<DateTime<Utc>>,
    /// Local check-in day in the kennel's time zone.
    pub check_in_day: NaiveDate,
    /// The first `.time-label`: `AM` or `PM`.
    pub check_in_ampm: String,
    /// The second `.time-label`.
    pub check_out_ampm: String,
    /// The text inside `(Scheduled: ...)`, e.g. `5 d`.
    pub duration: String,
    /// The price total in dollars; `None` without a price block.
    pub price: Option<f64>,
    /// The price block's lines, in order.
    pub line_items: Vec<SimLineItem>,
    /// Every `.note`, joined by newlines.
    pub notes: Option<String>,
    /// The labelled fields by the reference's label (the first on the page:
    /// the booking's and the primary pet's).
    pub fields: BTreeMap<String, String>,
    /// The list link's `data-event_type`.
    pub event_type: String,
    /// The list link's `data-status`.
    pub list_status: String,
    /// The detail page's path.
    pub detail_path: String,
    /// Cancelled, deleted, or no longer a boarding since start.
    pub deleted: bool,
}

impl SimBoarding {
    /// The importer's view of this boarding as JSON (timestamps RFC 3339).
    pub fn payload(&self) -> Value {
        let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        json!({
            "appointment_id": self.appointment_id,
            "pet": self.pet,
            "pets": self.pets,
            "client": self.client,
            "client_email": self.client_email,
            "client_phone": self.client_phone,
            "client_address": self.client_address,
            "service": self.service,
            "status": self.status,
            "check_in": ts(self.check_in),
            "check_out": self.check_out.map(ts),
            "check_in_ampm": self.check_in_ampm,
            "check_out_ampm": self.check_out_ampm,
            "duration": self.duration,
            "price": self.price,
            "line_items": self.line_items.iter().map(|l| json!({
                "service": l.service,
                "rate": l.rate,
                "quantity": l.quantity,
                "amount": l.amount,
            })).collect::<Vec<_>>(),
            "notes": self.notes,
            "fields": self.fields,
            "event_type": self.event_type,
        })
    }
}

/// Why an appointment is not a boarding (the reference's rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum NonBoardingReason {
    /// The service type: `d/c`, `dc`, `add`, `switch day`, `back to N`,
    /// `initial eval`, exactly `busy`.
    ServiceType,
    /// Booking status `canceled`: an unconfirmed request.
    CanceledRequest,
    /// Every line item is a day service.
    DayServicesOnly,
    /// Shorter than 12 hours.
    ShortStay,
}

/// An appointment that is not a boarding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimNonBoarding {
    /// The site's appointment id.
    pub appointment_id: String,
    /// Service type (title).
    pub service: String,
    /// Every rule that makes it a non-boarding, in the reference's order.
    pub reasons: Vec<NonBoardingReason>,
    /// Status text.
    pub status: String,
    /// Start (the first occurrence for recurring entries), UTC.
    pub check_in: DateTime<Utc>,
    /// End (of the first occurrence), UTC.
    pub check_out: DateTime<Utc>,
    /// A weekly entry shown on every week.
    pub recurring: bool,
    /// The weekdays of a recurring entry (empty for a one-off).
    pub weekdays: Vec<chrono::Weekday>,
    /// Shown on the schedule.
    pub listed: bool,
    /// Deleted at the site.
    pub removed: bool,
    /// The first occurrence's detail path.
    pub detail_path: String,
}

/// A price line for [`BookingEdit::line_items`] (the same for every pet).
#[derive(Clone, Debug, PartialEq)]
pub struct PriceLineEdit {
    /// The `.service-name`.
    pub service: String,
    /// Rate a pet, in cents.
    pub rate_cents: i64,
    /// Quantity (nights, units); shown times 100 in `data-qty`.
    pub quantity: f64,
}

/// Changes to one appointment; `None` (or empty) leaves a field as it is.
///
/// Pet names, client, service (title), status, check-in and check-out show
/// on the schedule list; price, line items, notes and pet fields show only
/// on the detail page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BookingEdit {
    /// New name of the primary pet.
    pub pet: Option<String>,
    /// New client name.
    pub client: Option<String>,
    /// New title (service type): fixed text from now on.
    pub service: Option<String>,
    /// New status text.
    pub status: Option<String>,
    /// New check-in (a recurring entry becomes a one-off).
    pub check_in: Option<DateTime<Utc>>,
    /// New check-out; `Some(None)` is ignored (the site always has one).
    pub check_out: Option<Option<DateTime<Utc>>>,
    /// New total in cents, reached with a "Price adjustment" line;
    /// `Some(None)` removes the price block (uninvoiced).
    pub price_cents: Option<Option<i64>>,
    /// New price lines (replacing all, applied before `price_cents`).
    pub line_items: Option<Vec<PriceLineEdit>>,
    /// New notes, one `.note` a line; `Some(None)` removes them.
    pub notes: Option<Option<String>>,
    /// Labelled fields to set (`Some`) or remove (`None`), by the
    /// reference's label: booking labels on the booking, pet labels on the
    /// primary pet; another label is added to the primary pet as a decoy.
    pub pet_fields: Vec<(String, Option<String>)>,
}

/// A booking for [`RunningBookingSim::add_booking`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBooking {
    /// Local check-in day.
    pub check_in_day: NaiveDate,
    /// Nights (at least one).
    pub nights: u32,
    /// Pet names, primary first; `None`: the client's own.
    pub pets: Option<Vec<String>>,
    /// Seed of everything else (client, times, title, price).
    pub seed: u64,
}

/// Local check-in days `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Horizon {
    /// First day.
    pub first: NaiveDate,
    /// Last day.
    pub last: NaiveDate,
}

impl Horizon {
    /// `days` days either side of `center`.
    pub fn around(center: NaiveDate, days: u32) -> Self {
        let d = chrono::Duration::days(i64::from(days));
        Self {
            first: center.checked_sub_signed(d).unwrap_or(center),
            last: center.checked_add_signed(d).unwrap_or(center),
        }
    }

    /// Whether `day` is in the horizon.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.first <= day && day <= self.last
    }
}

/// A kind of change [`RunningBookingSim::mutate`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum MutationKind {
    /// Raise the first line's rate by $5 (or invoice an uninvoiced booking):
    /// detail page only.
    Price,
    /// Add a note: detail page only.
    Notes,
    /// Change a labelled field of the primary pet: detail page only.
    PetFields,
    /// Set the status to Canceled.
    Cancel,
    /// Delete the appointment.
    Delete,
    /// Move check-in and check-out by one to three days, either way.
    Move,
    /// Move check-out a day later.
    Extend,
}

impl MutationKind {
    /// Every kind.
    pub const ALL: [MutationKind; 7] = [
        Self::Price,
        Self::Notes,
        Self::PetFields,
        Self::Cancel,
        Self::Delete,
        Self::Move,
        Self::Extend,
    ];
}

/// Seeded random changes for [`RunningBookingSim::mutate`].
#[derive(Clone, Debug, PartialEq)]
pub struct MutationPlan {
    /// Share of the eligible boardings changed.
    pub fraction: f64,
    /// Seed of the choices.
    pub seed: u64,
    /// Only boardings checking in within (or, with `outside`, outside) these
    /// days are eligible; `None`: all.
    pub horizon: Option<Horizon>,
    /// Invert the horizon.
    pub outside: bool,
    /// Kinds to choose from; empty: all.
    pub kinds: Vec<MutationKind>,
    /// New bookings to add, checking in on random days of the data inside
    /// (or outside) the horizon.
    pub additions: u32,
}

impl Default for MutationPlan {
    fn default() -> Self {
        Self {
            fraction: 0.1,
            seed: 0,
            horizon: None,
            outside: false,
            kinds: Vec::new(),
            additions: 0,
        }
    }
}

/// One change made by [`RunningBookingSim::mutate`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Mutation {
    /// Price changed (detail page only).
    PriceChanged(String),
    /// Notes changed (detail page only).
    NotesChanged(String),
    /// A pet field changed (detail page only).
    PetFieldsChanged(String),
    /// Cancelled.
    Cancelled(String),
    /// Deleted (detail page 404, gone from the list).
    Deleted(String),
    /// Check-in and check-out moved.
    Moved(String),
    /// Check-out a day later.
    Extended(String),
    /// A new booking.
    Added(String),
}

impl Mutation {
    /// The appointment changed.
    pub fn id(&self) -> &str {
        match self {
            Self::PriceChanged(id)
            | Self::NotesChanged(id)
            | Self::PetFieldsChanged(id)
            | Self::Cancelled(id)
            | Self::Deleted(id)
            | Self::Moved(id)
            | Self::Extended(id)
            | Self::Added(id) => id,
        }
    }

    /// Whether the schedule list shows the change.
    pub fn shows_on_list(&self) -> bool {
        !matches!(
            self,
            Self::PriceChanged(_) | Self::NotesChanged(_) | Self::PetFieldsChanged(_)
        )
    }
}

/// Anything that names an appointment: its id as text or as a number.
pub trait AppointmentKey {
    /// The id as the site writes it.
    fn appointment_key(&self) -> String;
}

impl AppointmentKey for u64 {
    fn appointment_key(&self) -> String {
        self.to_string()
    }
}

impl AppointmentKey for u32 {
    fn appointment_key(&self) -> String {
        self.to_string()
    }
}

impl AppointmentKey for &str {
    fn appointment_key(&self) -> String {
        (*self).to_string()
    }
}

impl AppointmentKey for String {
    fn appointment_key(&self) -> String {
        self.clone()
    }
}

impl AppointmentKey for &String {
    fn appointment_key(&self) -> String {
        (*self).clone()
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum BookingSimError {
    /// Binding the loopback listener failed.
    #[error("cannot bind the booking simulator to 127.0.0.1: {0}")]
    Bind(#[from] std::io::Error),
}

/// Entry point: starts simulated booking sites.
#[derive(Debug)]
pub struct BookingSim;

impl BookingSim {
    /// Generates the seeded data and serves it on `127.0.0.1:0`.
    pub async fn start(config: BookingSimConfig) -> Result<RunningBookingSim, BookingSimError> {
        let appointments = data::generate(&config);
        let shared = Arc::new(server::Shared::new(config, appointments));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let app = server::router(shared.clone());
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "booking simulator stopped with an error");
            }
        });
        Ok(RunningBookingSim {
            addr,
            shared,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    /// The path of the week page starting on `start` (`/schedule/days-7/Y/M/D`).
    pub fn week_path(start: NaiveDate) -> String {
        html::week_path(start)
    }
}

/// A running simulated site. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningBookingSim {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningBookingSim {
    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The time zone of the site.
    pub fn tz(&self) -> Tz {
        self.shared.config.tz
    }

    /// The configuration the site was started with.
    pub fn config(&self) -> &BookingSimConfig {
        &self.shared.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> BookingSimStats {
        self.shared.lock().stats.clone()
    }

    /// Resets the counters to zero.
    pub fn reset_stats(&self) {
        self.shared.lock().reset_stats();
    }

    /// Replaces the injected transport faults.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    /// Replaces the injected broken pages.
    pub fn set_page_faults(&self, faults: PageFaults) {
        self.shared.lock().page_faults = faults;
    }

    /// Replaces the answer time.
    pub fn set_latency(&self, latency: Latency) {
        self.shared.lock().latency = latency;
    }

    /// Ends every live session now (the next request finds it expired).
    pub fn expire_sessions(&self) {
        self.shared.lock().expire_all();
    }

    /// Every boarding an importer could have seen, sorted by id: the live
    /// ones and, marked deleted with their last data, those cancelled,
    /// deleted or turned into non-boardings since start.
    pub fn boardings(&self) -> Vec<SimBoarding> {
        let inner = self.shared.lock();
        let cfg = &self.shared.config;
        inner
            .appointments
            .values()
            .filter(|a| a.ever_boarding)
            .map(|a| truth::boarding(a, cfg))
            .collect()
    }

    /// The boardings on the site now (not deleted), sorted by id.
    pub fn live_boardings(&self) -> Vec<SimBoarding> {
        self.boardings()
            .into_iter()
            .filter(|b| !b.deleted)
            .collect()
    }

    /// The boarding with this id, if it is or was one.
    pub fn boarding(&self, id: impl AppointmentKey) -> Option<SimBoarding> {
        let inner = self.shared.lock();
        inner
            .appointments
            .get(&id.appointment_key())
            .filter(|a| a.ever_boarding)
            .map(|a| truth::boarding(a, &self.shared.config))
    }

    /// Every appointment that has not been a boarding since start (deleted
    /// ones included, marked), sorted by id. A boarding cancelled or changed
    /// into a non-boarding stays in [`Self::boardings`], marked deleted.
    pub fn non_boardings(&self) -> Vec<SimNonBoarding> {
        let inner = self.shared.lock();
        let cfg = &self.shared.config;
        inner
            .appointments
            .values()
            .filter(|a| !a.ever_boarding)
            .filter_map(|a| truth::non_boarding(a, cfg))
            .collect()
    }

    /// Ids of every appointment (boardings and others) not deleted, sorted.
    pub fn appointment_ids(&self) -> Vec<String> {
        let inner = self.shared.lock();
        inner
            .appointments
            .values()
            .filter(|a| !a.removed)
            .map(|a| a.id.clone())
            .collect()
    }

    /// Cancels an appointment (status Canceled); false when unknown or
    /// deleted.
    pub fn cancel(&self, id: impl AppointmentKey) -> bool {
        self.edit(
            id,
            BookingEdit {
                status: Some(data::CANCELED.to_string()),
                ..BookingEdit::default()
            },
        )
    }

    /// Applies `edit`; false when the appointment is unknown or deleted.
    pub fn edit(&self, id: impl AppointmentKey, edit: BookingEdit) -> bool {
        let tz = self.shared.config.tz;
        let mut inner = self.shared.lock();
        match inner.appointments.get_mut(&id.appointment_key()) {
            Some(a) if !a.removed => {
                truth::apply_edit(a, edit);
                a.ever_boarding |= a.is_boarding(tz);
                true
            }
            _ => false,
        }
    }

    /// Deletes an appointment: it leaves the schedule and its detail page
    /// answers 404. False when unknown or already deleted.
    pub fn delete(&self, id: impl AppointmentKey) -> bool {
        let mut inner = self.shared.lock();
        match inner.appointments.get_mut(&id.appointment_key()) {
            Some(a) if !a.removed => {
                a.removed = true;
                true
            }
            _ => false,
        }
    }

    /// Moves check-in and check-out by `days` local days (a dated title
    /// follows); false when unknown or deleted.
    pub fn move_booking(&self, id: impl AppointmentKey, days: i64) -> bool {
        let tz = self.shared.config.tz;
        let mut inner = self.shared.lock();
        match inner.appointments.get_mut(&id.appointment_key()) {
            Some(a) if !a.removed => {
                truth::shift(a, days, days, tz);
                a.ever_boarding |= a.is_boarding(tz);
                true
            }
            _ => false,
        }
    }

    /// Adds a boarding; returns its id.
    pub fn add_booking(&self, booking: NewBooking) -> String {
        let cfg = &self.shared.config;
        let mut inner = self.shared.lock();
        let a = {
            let taken = |id: &str| inner.appointments.contains_key(id);
            data::new_boarding(
                cfg,
                booking.seed,
                &taken,
                booking.check_in_day,
                booking.nights,
                booking.pets,
            )
        };
        let id = a.id.clone();
        inner.appointments.insert(id.clone(), a);
        id
    }

    /// Seeded random changes to live boardings, as `plan` says; returns what
    /// it did, sorted.
    pub fn mutate(&self, plan: &MutationPlan) -> Vec<Mutation> {
        let cfg = &self.shared.config;
        let tz = cfg.tz;
        let mut rng = StdRng::seed_from_u64(plan.seed);
        let fraction = if plan.fraction.is_finite() {
            plan.fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let kinds: Vec<MutationKind> = if plan.kinds.is_empty() {
            MutationKind::ALL.to_vec()
        } else {
            plan.kinds.clone()
        };
        let eligible = |day: NaiveDate| match plan.horizon {
            None => true,
            Some(h) => h.contains(day) != plan.outside,
        };
        let mut done = Vec::new();
        let mut inner = self.shared.lock();
        let ids: Vec<String> = inner
            .appointments
            .values()
            .filter(|a| a.is_boarding(tz) && a.recurring.is_none())
            .filter(|a| eligible(a.start.with_timezone(&tz).date_naive()))
            .map(|a| a.id.clone())
            .collect();
        for id in ids {
            if !rng.gen_bool(fraction) {
                continue;
            }
            let kind = kinds[rng.gen_range(0..kinds.len())];
            let Some(a) = inner.appointments.get_mut(&id) else {
                continue;
            };
            let m = truth::mutate(a, kind, &mut rng, tz);
            a.ever_boarding |= a.is_boarding(tz);
            done.push(m);
        }
        let days: Vec<NaiveDate> = (0..cfg.days)
            .filter_map(|i| {
                cfg.start
                    .checked_add_signed(chrono::Duration::days(i64::from(i)))
            })
            .filter(|d| eligible(*d))
            .collect();
        for _ in 0..plan.additions {
            let Some(day) = days.get(rng.gen_range(0..days.len().max(1))).copied() else {
                break;
            };
            let seed = rng.gen();
            let nights = rng.gen_range(1..=7);
            let a = {
                let taken = |id: &str| inner.appointments.contains_key(id);
                data::new_boarding(cfg, seed, &taken, day, nights, None)
            };
            done.push(Mutation::Added(a.id.clone()));
            inner.appointments.insert(a.id.clone(), a);
        }
        done.sort();
        done
    }

    /// Changes about `fraction` of the live boardings (any kind, any day),
    /// chosen with `seed`; returns what it did, sorted.
    pub fn mutate_random(&self, fraction: f64, seed: u64) -> Vec<Mutation> {
        self.mutate(&MutationPlan {
            fraction,
            seed,
            ..MutationPlan::default()
        })
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningBookingSim {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests;
