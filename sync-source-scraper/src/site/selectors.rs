//! [`Selectors`]: every path, CSS selector, attribute name, label and word
//! the parsers use, in one place, with the real site as the defaults.
//!
//! The struct is meant to be read from a `[kennel.selectors]` TOML section:
//! every key is optional (a missing key keeps its default) and an unknown
//! key is an error, so a typo does not silently keep the default.
//!
//! ```toml
//! [kennel.selectors]
//! service_type = "h1.appt-title"
//! non_boarding_service_patterns = ["d/c", "dc", "add", "switch day*", "back to #", "initial eval*"]
//!
//! [kennel.selectors.field_labels]
//! medications = "Medications"
//! ```
//!
//! [`Selectors::compile`] compiles every CSS selector and word pattern once;
//! an error names the key that is wrong.

use std::collections::BTreeMap;

use scraper::Selector;
use serde::{Deserialize, Serialize};
use sync_core::SyncError;

use super::rules::WordPattern;
use crate::error::ScrapeError;

/// Paths, CSS selectors, attribute names, labels and words that describe
/// the booking site. The defaults are the site as the earlier in-house
/// importer verified it; change a key when the site changes.
///
/// Word patterns (`non_boarding_service_patterns`, `cancelled_status_words`,
/// `day_service_patterns`) are matched case-insensitively as whole words:
/// `dc` matches "DC:FT" but not "DCX". Words in a pattern match any run of
/// whitespace, `#` matches a number, and a trailing `*` lets the last word
/// continue (`initial eval*` matches "Initial Evaluation").
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Selectors {
    // --- Paths ---
    /// Path of the login form. Default `/login`.
    pub login_path: String,
    /// Path of a seven-day schedule page, with `{year}`, `{month}` and
    /// `{day}` (no zero padding) for its first day. Default
    /// `/schedule/days-7/{year}/{month}/{day}`.
    pub week_path: String,
    /// Path prefix of appointment detail pages, followed by
    /// `{appointment_id}/{timestamp}`. Default `/schedule/a/`.
    pub detail_prefix: String,

    // --- Login page ---
    /// Elements that may hold the message of a rejected login.
    pub login_error: String,
    /// Treat a page without a closing `</html>` as truncated. Default true.
    pub require_closing_html: bool,

    // --- Schedule pages ---
    /// An appointment on a schedule page: every match, wherever it sits.
    /// Default `a[href*="/schedule/a/"]`.
    pub appointment_link: String,
    /// Attribute of an appointment link with the event type. Default
    /// `data-event_type`.
    pub link_event_type_attr: String,
    /// Attribute of an appointment link with the status. Default
    /// `data-status`.
    pub link_status_attr: String,
    /// Pet names inside an appointment link (every match). Default
    /// `.event-pet`.
    pub link_pet: String,
    /// Client name inside an appointment link. Default `.event-client`.
    pub link_client: String,
    /// Time string inside an appointment link. Default `.day-event-time`.
    pub link_time: String,
    /// Title inside an appointment link (may be empty: drawn by
    /// JavaScript). Default `.day-event-title`.
    pub link_title: String,
    /// The link to the next window: an `<a>` whose class contains `next`,
    /// or `rel="next"`.
    pub next_link: String,
    /// Structure every schedule page has, with or without appointments (the
    /// week navigation). A page without appointment links is an empty week
    /// only when one of these is on it; otherwise it is not a schedule page.
    pub schedule_markers: Vec<String>,
    /// Parts of appointment cards (pet names, client names, event times).
    /// When one of these is on a page that has no appointment links, the
    /// links changed: an error, never an empty week.
    pub card_markers: Vec<String>,

    // --- Detail pages ---
    /// The service type. Default `h1`.
    pub service_type: String,
    /// Where the service type is read when there is no `h1`. Default
    /// `title`.
    pub page_title: String,
    /// What separates the site's name from the page title; the last such
    /// part is dropped. Default ` | `.
    pub page_title_separator: String,
    /// The element with the scheduled Unix-second timestamps. Default
    /// `#when-wrapper`.
    pub when: String,
    /// Attribute of [`Self::when`] with the scheduled check-in. Default
    /// `data-start_scheduled`.
    pub when_start_attr: String,
    /// Attribute of [`Self::when`] with the scheduled check-out. Default
    /// `data-end_scheduled`.
    pub when_end_attr: String,
    /// Blocks holding the AM/PM labels; the first block with labels is
    /// read. Default `.event-time-scheduled, #when-wrapper`.
    pub time_label_blocks: String,
    /// AM/PM labels inside such a block: first = check-in, second =
    /// check-out. Default `.time-label`.
    pub time_label: String,
    /// The status. Default `.appt-change-status`.
    pub status: String,
    /// The client's name. Default `.event-client`.
    pub client_name: String,
    /// The element carrying the client's email. Default `[data-emails]`.
    pub client_email: String,
    /// Attribute with the client's email. Default `data-emails`.
    pub client_email_attr: String,
    /// The element carrying the client's phone. Default `.mobile-contact`.
    pub client_phone: String,
    /// Attribute with the client's phone. Default `data-value`.
    pub client_phone_attr: String,
    /// The element carrying the client's address. Default `[data-address]`.
    pub client_address: String,
    /// Attribute with the client's address. Default `data-address`.
    pub client_address_attr: String,
    /// The pets, in page order (the first is the primary). Default
    /// `.event-pet`.
    pub pets: String,
    /// The scheduled duration, text like `(Scheduled: 10 d)`. Default
    /// `.scheduled-duration`.
    pub duration: String,
    /// Text before the duration inside the parentheses. Default
    /// `Scheduled:`.
    pub duration_prefix: String,
    /// A field label; its value is the next element. Default
    /// `.field-label`.
    pub field_label: String,
    /// A field value (may contain `<br>`). Default `.field-value`.
    pub field_value: String,
    /// The labelled fields kept: payload key → text the label contains
    /// (any case). The first matching pair on the page wins.
    pub field_labels: BTreeMap<String, String>,
    /// Notes: every match, joined by newlines. Default `.note`.
    pub notes: String,
    /// The price block; without it the price is unknown. Default
    /// `#confirm-price`.
    pub price_fieldset: String,
    /// The total inside the price block (`Total $750`). Default
    /// `a.toggle-field.text.quote`.
    pub price_total: String,
    /// Line-item names inside the price block, in order. Default
    /// `.service-name`.
    pub price_service_name: String,
    /// Line-item prices inside the price block, in order. Default
    /// `div[class~="price"]` (the word `price` in the class list).
    pub price_item: String,
    /// Attribute of a price item: rate in cents. Default `data-rate`.
    pub price_rate_attr: String,
    /// Attribute of a price item: quantity times 100. Default `data-qty`.
    pub price_qty_attr: String,
    /// Attribute of a price item: amount in dollars. Default `data-amount`.
    pub price_amount_attr: String,
    /// Class prefix of the wrapper that says how many price items each
    /// service has (one per pet): `pets-2`. Default `pets-`.
    pub price_pets_class_prefix: String,

    // --- Boarding rules ---
    /// A service type matching one of these word patterns is not a
    /// boarding. Default `d/c`, `dc`, `add`, `switch day*`, `back to #`,
    /// `initial eval*`.
    pub non_boarding_service_patterns: Vec<String>,
    /// A service type equal to one of these (any case, trimmed) is not a
    /// boarding. Default `busy`.
    pub non_boarding_service_exact: Vec<String>,
    /// A status containing one of these words is a cancelled (unconfirmed)
    /// request, not a boarding. Default `canceled`, `cancelled`.
    pub cancelled_status_words: Vec<String>,
    /// A line item matching one of these word patterns is a day service.
    /// Default `day`, `days`, `daycare`, `pack`.
    pub day_service_patterns: Vec<String>,
    /// A line item starting with one of these (any case) is a day service.
    /// Default `DC`.
    pub day_service_prefixes: Vec<String>,
    /// A stay shorter than this is not a boarding. Default 12.
    pub min_stay_hours: u32,
    /// The title's dates are used unless they are more than this many days
    /// from the scheduled timestamps (a stale title). Default 20.
    pub stale_title_days: u32,
    /// Scheduled timestamps further than this from the window being read
    /// are bogus and ignored. Default 730 (two years).
    pub max_timestamp_distance_days: u32,
}

/// The labelled fields the importer kept, by payload key.
pub(crate) const DEFAULT_FIELD_LABELS: &[(&str, &str)] = &[
    ("access_home", "Access Home or Apartment"),
    ("drop_off", "Drop Off"),
    ("birthdate", "Birthdate"),
    ("breeds", "Breed(s)"),
    ("breed_type", "Breed Type"),
    ("food_allergies", "Food Allergies"),
    ("health_mobility", "Health and Mobility"),
    ("medications", "Medications"),
    ("veterinarian", "Veterinarian"),
    ("behavioral", "Behavioral"),
    ("bite_history", "Bite History"),
];

impl Default for Selectors {
    fn default() -> Self {
        let s = |v: &str| v.to_string();
        let list = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        Self {
            login_path: s("/login"),
            week_path: s("/schedule/days-7/{year}/{month}/{day}"),
            detail_prefix: s("/schedule/a/"),
            login_error: s(".alert, .error, .errors, .notice, .message, [role='alert']"),
            require_closing_html: true,
            appointment_link: s("a[href*='/schedule/a/']"),
            link_event_type_attr: s("data-event_type"),
            link_status_attr: s("data-status"),
            link_pet: s(".event-pet"),
            link_client: s(".event-client"),
            link_time: s(".day-event-time"),
            link_title: s(".day-event-title"),
            next_link: s("a[class*='next'][href], a[rel~='next'][href]"),
            schedule_markers: list(&[
                ".pagination",
                "a[href*='/schedule/days-7/']",
                "a[rel~='next'][href]",
            ]),
            card_markers: list(&[
                ".event-pet",
                ".event-client",
                ".day-event-time",
                ".day-event-title",
                "[data-event_type]",
            ]),
            service_type: s("h1"),
            page_title: s("title"),
            page_title_separator: s(" | "),
            when: s("#when-wrapper"),
            when_start_attr: s("data-start_scheduled"),
            when_end_attr: s("data-end_scheduled"),
            time_label_blocks: s(".event-time-scheduled, #when-wrapper"),
            time_label: s(".time-label"),
            status: s(".appt-change-status"),
            client_name: s(".event-client"),
            client_email: s("[data-emails]"),
            client_email_attr: s("data-emails"),
            client_phone: s(".mobile-contact"),
            client_phone_attr: s("data-value"),
            client_address: s("[data-address]"),
            client_address_attr: s("data-address"),
            pets: s(".event-pet"),
            duration: s(".scheduled-duration"),
            duration_prefix: s("Scheduled:"),
            field_label: s(".field-label"),
            field_value: s(".field-value"),
            field_labels: DEFAULT_FIELD_LABELS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            notes: s(".note"),
            price_fieldset: s("#confirm-price"),
            price_total: s("a.toggle-field.text.quote"),
            price_service_name: s(".service-name"),
            price_item: s("div[class~='price']"),
            price_rate_attr: s("data-rate"),
            price_qty_attr: s("data-qty"),
            price_amount_attr: s("data-amount"),
            price_pets_class_prefix: s("pets-"),
            non_boarding_service_patterns: list(&[
                "d/c",
                "dc",
                "add",
                "switch day*",
                "back to #",
                "initial eval*",
            ]),
            non_boarding_service_exact: list(&["busy"]),
            cancelled_status_words: list(&["canceled", "cancelled"]),
            day_service_patterns: list(&["day", "days", "daycare", "pack"]),
            day_service_prefixes: list(&["DC"]),
            min_stay_hours: 12,
            stale_title_days: 20,
            max_timestamp_distance_days: 730,
        }
    }
}

/// Every selector and pattern of a [`Selectors`], compiled.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) login_error: Selector,
    pub(crate) form: Selector,
    pub(crate) input: Selector,
    pub(crate) label_candidates: Selector,
    pub(crate) appointment_link: Selector,
    pub(crate) link_pet: Selector,
    pub(crate) link_client: Selector,
    pub(crate) link_time: Selector,
    pub(crate) link_title: Selector,
    pub(crate) next_link: Selector,
    pub(crate) schedule_markers: Vec<Selector>,
    pub(crate) card_markers: Vec<Selector>,
    pub(crate) service_type: Selector,
    pub(crate) page_title: Selector,
    pub(crate) when: Selector,
    pub(crate) time_label_blocks: Selector,
    pub(crate) time_label: Selector,
    pub(crate) status: Selector,
    pub(crate) client_name: Selector,
    pub(crate) client_email: Selector,
    pub(crate) client_phone: Selector,
    pub(crate) client_address: Selector,
    pub(crate) pets: Selector,
    pub(crate) duration: Selector,
    pub(crate) field_label: Selector,
    pub(crate) field_value: Selector,
    pub(crate) notes: Selector,
    pub(crate) price_fieldset: Selector,
    pub(crate) price_total: Selector,
    pub(crate) price_service_name: Selector,
    pub(crate) price_item: Selector,
    pub(crate) all_elements: Selector,
    pub(crate) non_boarding_service: Vec<WordPattern>,
    pub(crate) day_service: Vec<WordPattern>,
    pub(crate) cancelled_status: Vec<WordPattern>,
}

fn css(key: &str, value: &str) -> Result<Selector, ScrapeError> {
    if value.trim().is_empty() {
        return Err(ScrapeError::BadSelector {
            key: key.to_string(),
            value: value.to_string(),
            reason: "empty".into(),
        });
    }
    Selector::parse(value).map_err(|e| ScrapeError::BadSelector {
        key: key.to_string(),
        value: value.to_string(),
        reason: e.to_string(),
    })
}

fn css_list(key: &str, values: &[String]) -> Result<Vec<Selector>, ScrapeError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| css(&format!("{key}[{i}]"), v))
        .collect()
}

fn patterns(key: &str, values: &[String]) -> Result<Vec<WordPattern>, ScrapeError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            WordPattern::parse(v).ok_or_else(|| ScrapeError::BadSetting {
                key: format!("{key}[{i}]"),
                message: format!("`{v}` is not a word pattern (empty?)"),
            })
        })
        .collect()
}

fn not_empty(key: &str, value: &str) -> Result<(), ScrapeError> {
    if value.trim().is_empty() {
        return Err(ScrapeError::BadSetting {
            key: key.to_string(),
            message: "must not be empty".into(),
        });
    }
    Ok(())
}

impl Selectors {
    /// Checks every key: CSS selectors parse, paths start with `/`, the
    /// week path has its placeholders, word patterns and attribute names are
    /// not empty. The error names the key.
    pub fn check(&self) -> Result<(), SyncError> {
        self.compile().map(|_| ()).map_err(SyncError::from)
    }

    /// Compiles every selector and pattern; an error names the bad key.
    pub(crate) fn compile(&self) -> Result<Compiled, ScrapeError> {
        for (key, path) in [
            ("login_path", &self.login_path),
            ("detail_prefix", &self.detail_prefix),
            ("week_path", &self.week_path),
        ] {
            if !path.starts_with('/') {
                return Err(ScrapeError::BadSetting {
                    key: key.into(),
                    message: format!("must start with '/': `{path}`"),
                });
            }
        }
        if !["{year}", "{month}", "{day}"]
            .iter()
            .all(|p| self.week_path.contains(p))
        {
            return Err(ScrapeError::BadSetting {
                key: "week_path".into(),
                message: format!(
                    "needs {{year}}, {{month}} and {{day}}: `{}`",
                    self.week_path
                ),
            });
        }
        for (key, value) in [
            ("link_event_type_attr", &self.link_event_type_attr),
            ("link_status_attr", &self.link_status_attr),
            ("page_title_separator", &self.page_title_separator),
            ("when_start_attr", &self.when_start_attr),
            ("when_end_attr", &self.when_end_attr),
            ("client_email_attr", &self.client_email_attr),
            ("client_phone_attr", &self.client_phone_attr),
            ("client_address_attr", &self.client_address_attr),
            ("price_rate_attr", &self.price_rate_attr),
            ("price_qty_attr", &self.price_qty_attr),
            ("price_amount_attr", &self.price_amount_attr),
            ("price_pets_class_prefix", &self.price_pets_class_prefix),
        ] {
            not_empty(key, value)?;
        }
        for (key, label) in &self.field_labels {
            not_empty(&format!("field_labels.{key}"), key)?;
            not_empty(&format!("field_labels.{key}"), label)?;
        }
        for (i, word) in self.non_boarding_service_exact.iter().enumerate() {
            not_empty(&format!("non_boarding_service_exact[{i}]"), word)?;
        }
        for (i, word) in self.day_service_prefixes.iter().enumerate() {
            not_empty(&format!("day_service_prefixes[{i}]"), word)?;
        }
        if self.schedule_markers.is_empty() {
            return Err(ScrapeError::BadSetting {
                key: "schedule_markers".into(),
                message: "needs at least one selector, or every page without appointments would \
                          be an error"
                    .into(),
            });
        }
        Ok(Compiled {
            login_error: css("login_error", &self.login_error)?,
            form: css("form", "form")?,
            input: css("input", "input")?,
            label_candidates: css(
                "labels",
                "li, p, div, dd, dt, td, th, span, strong, b, label",
            )?,
            appointment_link: css("appointment_link", &self.appointment_link)?,
            link_pet: css("link_pet", &self.link_pet)?,
            link_client: css("link_client", &self.link_client)?,
            link_time: css("link_time", &self.link_time)?,
            link_title: css("link_title", &self.link_title)?,
            next_link: css("next_link", &self.next_link)?,
            schedule_markers: css_list("schedule_markers", &self.schedule_markers)?,
            card_markers: css_list("card_markers", &self.card_markers)?,
            service_type: css("service_type", &self.service_type)?,
            page_title: css("page_title", &self.page_title)?,
            when: css("when", &self.when)?,
            time_label_blocks: css("time_label_blocks", &self.time_label_blocks)?,
            time_label: css("time_label", &self.time_label)?,
            status: css("status", &self.status)?,
            client_name: css("client_name", &self.client_name)?,
            client_email: css("client_email", &self.client_email)?,
            client_phone: css("client_phone", &self.client_phone)?,
            client_address: css("client_address", &self.client_address)?,
            pets: css("pets", &self.pets)?,
            duration: css("duration", &self.duration)?,
            field_label: css("field_label", &self.field_label)?,
            field_value: css("field_value", &self.field_value)?,
            notes: css("notes", &self.notes)?,
            price_fieldset: css("price_fieldset", &self.price_fieldset)?,
            price_total: css("price_total", &self.price_total)?,
            price_service_name: css("price_service_name", &self.price_service_name)?,
            price_item: css("price_item", &self.price_item)?,
            all_elements: css("*", "*")?,
            non_boarding_service: patterns(
                "non_boarding_service_patterns",
                &self.non_boarding_service_patterns,
            )?,
            day_service: patterns("day_service_patterns", &self.day_service_patterns)?,
            cancelled_status: patterns("cancelled_status_words", &self.cancelled_status_words)?,
        })
    }
}
