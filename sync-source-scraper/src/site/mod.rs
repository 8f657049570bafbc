//! Everything specific to the booking site's HTML and URLs: paths, CSS
//! selectors, labels, and the parsers that use them. When the site changes
//! its layout, this module and its config struct [`SiteLayout`] are the one
//! place to touch.
//!
//! What is read where (see `reference/booking-site.md`):
//! - the **schedule list** gives only appointment ids, detail links, the
//!   row's attributes and texts (hashed into a fingerprint) and the next
//!   link; its time strings carry no year and are never parsed;
//! - the **detail page** gives the service type (`h1`), status, client, pet,
//!   check-in and check-out (full local date-times), price and notes.
//!   Selectors are tried first; when a selector finds nothing, a label
//!   ("Check-in:", "Price:") is looked for instead, so small layout changes
//!   do not break the import.
//!
//! **Boardings** are recognised by the service type: it contains
//! [`SiteLayout::boarding_marker`] ("boarding", any case). The list's
//! `data-event_type` cannot be trusted for this (the site labels many
//! entries "reservation"). Other appointments (daycare, grooming) are
//! skipped.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use scraper::{ElementRef, Html, Selector};
use serde_json::json;
use sync_core::ContentHash;
use url::Url;

use crate::error::ScrapeError;

/// Paths, selectors and words that describe the booking site. The defaults
/// match the site as documented; change them when the site changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteLayout {
    /// Path of the login form.
    pub login_path: String,
    /// Path of a seven-day schedule page, with `{year}`, `{month}` and
    /// `{day}` (no zero padding) for its first day.
    pub week_path: String,
    /// Path prefix of appointment detail pages; the id follows it.
    pub detail_prefix: String,
    /// Element holding a schedule page's appointments; a page without it is
    /// not a schedule page (an error, never "no appointments").
    pub schedule_container: String,
    /// One appointment row (a link to its detail page).
    pub row: String,
    /// Pet name inside a row.
    pub row_pet: String,
    /// Client name inside a row.
    pub row_client: String,
    /// Time string inside a row.
    pub row_time: String,
    /// Title inside a row (may be empty: drawn by JavaScript).
    pub row_title: String,
    /// Link to the next window.
    pub next_link: String,
    /// Service type on a detail page.
    pub detail_service: String,
    /// Status on a detail page.
    pub detail_status: String,
    /// Client on a detail page.
    pub detail_client: String,
    /// Pet on a detail page.
    pub detail_pet: String,
    /// Check-in date-time on a detail page.
    pub detail_check_in: String,
    /// Check-out date-time on a detail page.
    pub detail_check_out: String,
    /// Price on a detail page.
    pub detail_price: String,
    /// Notes on a detail page (every match is joined).
    pub detail_notes: String,
    /// Labels of the check-in when its selector finds nothing (lower case).
    pub check_in_labels: Vec<String>,
    /// Labels of the check-out when its selector finds nothing (lower case).
    pub check_out_labels: Vec<String>,
    /// Labels of the price when its selector finds nothing (lower case).
    pub price_labels: Vec<String>,
    /// Elements that may hold the login failure message.
    pub login_error: String,
    /// A service type containing this (any case) is a boarding.
    pub boarding_marker: String,
    /// A status containing one of these (any case) means cancelled.
    pub cancelled_markers: Vec<String>,
    /// Treat a page without a closing `</html>` as truncated.
    pub require_closing_html: bool,
}

impl Default for SiteLayout {
    fn default() -> Self {
        let s = |v: &str| v.to_string();
        let list = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        Self {
            login_path: s("/login"),
            week_path: s("/schedule/days-7/{year}/{month}/{day}"),
            detail_prefix: s("/schedule/a/"),
            schedule_container: s(".schedule-week"),
            row: s("a[href*='/schedule/a/']"),
            row_pet: s(".event-pet"),
            row_client: s(".event-client"),
            row_time: s(".day-event-time"),
            row_title: s(".day-event-title"),
            next_link: s("a[rel~='next'][href], a[class*='next'][href]"),
            detail_service: s("h1"),
            detail_status: s(".appt-change-status"),
            detail_client: s(".event-client"),
            detail_pet: s(".event-pet"),
            detail_check_in: s(".appt-check-in"),
            detail_check_out: s(".appt-check-out"),
            detail_price: s(".appt-price .price"),
            detail_notes: s(".appt-notes p"),
            check_in_labels: list(&["check-in", "check in", "checkin", "drop-off", "arrival"]),
            check_out_labels: list(&["check-out", "check out", "checkout", "pick-up", "departure"]),
            price_labels: list(&["total", "price", "amount"]),
            login_error: s(".alert, .error, .errors, .notice, .message, [role='alert']"),
            boarding_marker: s("boarding"),
            cancelled_markers: list(&["cancel"]),
            require_closing_html: true,
        }
    }
}

/// One appointment row of a schedule page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListRow {
    pub(crate) id: String,
    pub(crate) detail_url: Url,
    pub(crate) event_type: Option<String>,
    pub(crate) status: Option<String>,
    /// Hash of the row's link, attributes and texts: when it is unchanged,
    /// the detail page need not be fetched again.
    pub(crate) fingerprint: String,
}

/// What a schedule page holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SchedulePage {
    pub(crate) rows: Vec<ListRow>,
    pub(crate) next: Option<Url>,
}

/// What a detail page holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Detail {
    pub(crate) service: String,
    pub(crate) status: String,
    pub(crate) client: String,
    pub(crate) pet: String,
    pub(crate) check_in: DateTime<Utc>,
    pub(crate) check_out: Option<DateTime<Utc>>,
    pub(crate) price: Option<f64>,
    pub(crate) notes: Option<String>,
}

/// The login form to post back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoginForm {
    pub(crate) action: Url,
    /// Every hidden input, in page order.
    pub(crate) hidden: Vec<(String, String)>,
    pub(crate) username_field: String,
    pub(crate) password_field: String,
}

#[derive(Debug)]
struct Selectors {
    schedule_container: Selector,
    row: Selector,
    row_pet: Selector,
    row_client: Selector,
    row_time: Selector,
    row_title: Selector,
    next_link: Selector,
    service: Selector,
    status: Selector,
    client: Selector,
    pet: Selector,
    check_in: Selector,
    check_out: Selector,
    price: Selector,
    notes: Selector,
    login_error: Selector,
    form: Selector,
    input: Selector,
    label_candidates: Selector,
}

/// A [`SiteLayout`] with its selectors compiled.
#[derive(Debug)]
pub(crate) struct Site {
    layout: SiteLayout,
    sel: Selectors,
}

fn selector(name: &str, css: &str) -> Result<Selector, ScrapeError> {
    Selector::parse(css).map_err(|e| {
        ScrapeError::Config(format!(
            "site layout `{name}`: invalid CSS selector `{css}`: {e}"
        ))
    })
}

impl Site {
    /// Compiles the selectors of `layout`; an error names the bad one.
    pub(crate) fn new(layout: SiteLayout) -> Result<Self, ScrapeError> {
        let l = &layout;
        let sel = Selectors {
            schedule_container: selector("schedule_container", &l.schedule_container)?,
            row: selector("row", &l.row)?,
            row_pet: selector("row_pet", &l.row_pet)?,
            row_client: selector("row_client", &l.row_client)?,
            row_time: selector("row_time", &l.row_time)?,
            row_title: selector("row_title", &l.row_title)?,
            next_link: selector("next_link", &l.next_link)?,
            service: selector("detail_service", &l.detail_service)?,
            status: selector("detail_status", &l.detail_status)?,
            client: selector("detail_client", &l.detail_client)?,
            pet: selector("detail_pet", &l.detail_pet)?,
            check_in: selector("detail_check_in", &l.detail_check_in)?,
            check_out: selector("detail_check_out", &l.detail_check_out)?,
            price: selector("detail_price", &l.detail_price)?,
            notes: selector("detail_notes", &l.detail_notes)?,
            login_error: selector("login_error", &l.login_error)?,
            form: selector("form", "form")?,
            input: selector("input", "input")?,
            label_candidates: selector(
                "labels",
                "li, p, div, dd, dt, td, th, span, strong, b, label",
            )?,
        };
        for (name, path) in [
            ("login_path", &l.login_path),
            ("detail_prefix", &l.detail_prefix),
        ] {
            if !path.starts_with('/') {
                return Err(ScrapeError::Config(format!(
                    "site layout `{name}` must start with '/': {path}"
                )));
            }
        }
        if !["{year}", "{month}", "{day}"]
            .iter()
            .all(|p| l.week_path.contains(p))
        {
            return Err(ScrapeError::Config(format!(
                "site layout `week_path` needs {{year}}, {{month}} and {{day}}: {}",
                l.week_path
            )));
        }
        Ok(Self { layout, sel })
    }

    fn join(&self, base: &Url, path: &str) -> Result<Url, ScrapeError> {
        base.join(path)
            .map_err(|e| ScrapeError::Config(format!("cannot join {path} to {base}: {e}")))
    }

    /// The login form's URL.
    pub(crate) fn login_url(&self, base: &Url) -> Result<Url, ScrapeError> {
        self.join(base, &self.layout.login_path)
    }

    /// The URL of the seven-day window starting on `start`.
    pub(crate) fn week_url(&self, base: &Url, start: NaiveDate) -> Result<Url, ScrapeError> {
        use chrono::Datelike;
        let path = self
            .layout
            .week_path
            .replace("{year}", &start.year().to_string())
            .replace("{month}", &start.month().to_string())
            .replace("{day}", &start.day().to_string());
        self.join(base, &path)
    }

    /// The first day of the window a schedule URL shows, when it follows
    /// [`SiteLayout::week_path`].
    pub(crate) fn week_start_of(&self, url: &Url) -> Option<NaiveDate> {
        let template: Vec<&str> = self.layout.week_path.trim_matches('/').split('/').collect();
        let path: Vec<&str> = url.path().trim_matches('/').split('/').collect();
        if template.len() != path.len() {
            return None;
        }
        let (mut y, mut m, mut d) = (None, None, None);
        for (t, p) in template.iter().zip(&path) {
            match *t {
                "{year}" => y = p.parse::<i32>().ok(),
                "{month}" => m = p.parse::<u32>().ok(),
                "{day}" => d = p.parse::<u32>().ok(),
                literal if literal != *p => return None,
                _ => {}
            }
        }
        NaiveDate::from_ymd_opt(y?, m?, d?)
    }

    /// Whether `url` is the login page (a redirect there means the session
    /// is gone).
    pub(crate) fn is_login_location(&self, url: &Url) -> bool {
        url.path().trim_end_matches('/') == self.layout.login_path.trim_end_matches('/')
    }

    /// The detail URL for `path` (a stored `detail_path`).
    pub(crate) fn detail_url(&self, base: &Url, path: &str) -> Result<Url, ScrapeError> {
        self.join(base, path)
    }

    /// An error when the page ends early.
    pub(crate) fn check_complete(&self, body: &str, url: &Url) -> Result<(), ScrapeError> {
        if self.layout.require_closing_html && !body.to_ascii_lowercase().contains("</html>") {
            return Err(ScrapeError::Truncated {
                url: url.clone(),
                what: format!("no closing </html> after {} bytes", body.len()),
            });
        }
        Ok(())
    }

    /// Whether the page shows the login form (it has a password input).
    pub(crate) fn is_login_page(&self, body: &str) -> bool {
        let doc = Html::parse_document(body);
        let found = doc.select(&self.sel.input).any(is_password);
        found
    }

    /// Whether a service type is a boarding.
    pub(crate) fn is_boarding(&self, service: &str) -> bool {
        service
            .to_lowercase()
            .contains(&self.layout.boarding_marker.to_lowercase())
    }

    /// Whether a status (detail text or list `data-status`) means cancelled.
    pub(crate) fn is_cancelled(&self, status: &str) -> bool {
        let s = status.to_lowercase();
        self.layout
            .cancelled_markers
            .iter()
            .any(|m| s.contains(&m.to_lowercase()))
    }

    /// The login form: every hidden input, the username (first text or email
    /// input) and password fields, and where to post.
    pub(crate) fn parse_login_form(&self, body: &str, url: &Url) -> Result<LoginForm, ScrapeError> {
        let doc = Html::parse_document(body);
        let form = doc
            .select(&self.sel.form)
            .find(|f| f.select(&self.sel.input).any(is_password))
            .ok_or_else(|| missing(url, "login form (a <form> with a password input)"))?;
        let mut hidden = Vec::new();
        let (mut username_field, mut password_field) = (None, None);
        for input in form.select(&self.sel.input) {
            let Some(name) = input.attr("name").filter(|n| !n.is_empty()) else {
                continue;
            };
            match input
                .attr("type")
                .unwrap_or("text")
                .trim()
                .to_ascii_lowercase()
                .as_str()
            {
                "hidden" => hidden.push((
                    name.to_string(),
                    input.attr("value").unwrap_or("").to_string(),
                )),
                "password" => {
                    password_field.get_or_insert_with(|| name.to_string());
                }
                "text" | "email" | "" => {
                    username_field.get_or_insert_with(|| name.to_string());
                }
                _ => {}
            }
        }
        let action = match form.attr("action").map(str::trim).filter(|a| !a.is_empty()) {
            Some(a) => url
                .join(a)
                .map_err(|e| invalid(url, format!("login form action `{a}` is not a URL: {e}")))?,
            None => url.clone(),
        };
        Ok(LoginForm {
            action,
            hidden,
            username_field: username_field.ok_or_else(|| {
                missing(
                    url,
                    "username input (a text or email input in the login form)",
                )
            })?,
            password_field: password_field.ok_or_else(|| missing(url, "password input"))?,
        })
    }

    /// The message of a rejected login, if the page shows one.
    pub(crate) fn login_error_message(&self, body: &str) -> Option<String> {
        let doc = Html::parse_document(body);
        let from_selector = doc
            .select(&self.sel.login_error)
            .map(text_of)
            .find(|t| !t.is_empty());
        let message = from_selector.or_else(|| {
            doc.select(&self.sel.label_candidates)
                .map(text_of)
                .filter(|t| {
                    let l = t.to_lowercase();
                    l.contains("invalid") || l.contains("incorrect")
                })
                .min_by_key(String::len)
        })?;
        Some(message.chars().take(300).collect())
    }

    /// A schedule page: its appointment rows (deduplicated by id, first row
    /// kept) and the next link.
    pub(crate) fn parse_schedule(
        &self,
        body: &str,
        url: &Url,
    ) -> Result<SchedulePage, ScrapeError> {
        let doc = Html::parse_document(body);
        let container = doc
            .select(&self.sel.schedule_container)
            .next()
            .ok_or_else(|| {
                missing(
                    url,
                    &format!("schedule container `{}`", self.layout.schedule_container),
                )
            })?;
        let mut rows: Vec<ListRow> = Vec::new();
        for a in container.select(&self.sel.row) {
            let row = self.parse_row(a, url)?;
            if !rows.iter().any(|r| r.id == row.id) {
                rows.push(row);
            }
        }
        let next = doc
            .select(&self.sel.next_link)
            .filter_map(|a| a.attr("href"))
            .find_map(|href| url.join(href.trim()).ok());
        Ok(SchedulePage { rows, next })
    }

    fn parse_row(&self, a: ElementRef<'_>, url: &Url) -> Result<ListRow, ScrapeError> {
        let href = a.attr("href").unwrap_or("").trim();
        let detail_url = url
            .join(href)
            .map_err(|e| invalid(url, format!("appointment link `{href}` is not a URL: {e}")))?;
        let id = detail_url
            .path()
            .split_once(self.layout.detail_prefix.as_str())
            .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
            .filter(|id| !id.is_empty())
            .map(|id| id.to_string())
            .ok_or_else(|| {
                invalid(
                    url,
                    format!(
                        "appointment link `{href}` has no id after {}",
                        self.layout.detail_prefix
                    ),
                )
            })?;
        let inner = |sel: &Selector| a.select(sel).next().map(text_of).unwrap_or_default();
        let attr = |name: &str| a.attr(name).map(normalize).filter(|v| !v.is_empty());
        let event_type = attr("data-event_type");
        let status = attr("data-status");
        let fingerprint = ContentHash::of_json(
            &json!({
                "path": detail_url.path(),
                "event_type": event_type,
                "status": status,
                "pet": inner(&self.sel.row_pet),
                "client": inner(&self.sel.row_client),
                "time": inner(&self.sel.row_time),
                "title": inner(&self.sel.row_title),
            }),
            &[],
        )
        .to_hex()[..32]
            .to_string();
        Ok(ListRow {
            id,
            detail_url,
            event_type,
            status,
            fingerprint,
        })
    }

    /// A detail page, with local date-times read in `tz`.
    pub(crate) fn parse_detail(
        &self,
        body: &str,
        url: &Url,
        tz: Tz,
    ) -> Result<Detail, ScrapeError> {
        let doc = Html::parse_document(body);
        let l = &self.layout;
        let required = |sel: &Selector, css: &str, what: &str| {
            first_text(&doc, sel).ok_or_else(|| missing(url, &format!("{what} (`{css}`)")))
        };
        let service = required(&self.sel.service, &l.detail_service, "service type")?;
        let status = required(&self.sel.status, &l.detail_status, "status")?;
        let client = required(&self.sel.client, &l.detail_client, "client")?;
        let pet = required(&self.sel.pet, &l.detail_pet, "pet")?;

        let check_in_text = first_text(&doc, &self.sel.check_in)
            .or_else(|| self.labelled(&doc, &l.check_in_labels))
            .ok_or_else(|| {
                missing(
                    url,
                    &format!(
                        "check-in (`{}` or a \"Check-in:\" label)",
                        l.detail_check_in
                    ),
                )
            })?;
        let check_in = parse_local_datetime(&check_in_text, tz).ok_or_else(|| {
            invalid(
                url,
                format!("check-in `{check_in_text}` is not a date and time"),
            )
        })?;

        let check_out =
            match first_text(&doc, &self.sel.check_out)
                .or_else(|| self.labelled(&doc, &l.check_out_labels))
            {
                Some(t) if is_blank_value(&t) => None,
                Some(t) => Some(parse_local_datetime(&t, tz).ok_or_else(|| {
                    invalid(url, format!("check-out `{t}` is not a date and time"))
                })?),
                None => None,
            };

        let price = match first_text(&doc, &self.sel.price)
            .or_else(|| self.labelled(&doc, &l.price_labels))
        {
            Some(t) => parse_price(&t)
                .map_err(|()| invalid(url, format!("price `{t}` is not a number")))?,
            None => None,
        };

        let notes = normalize(
            &doc.select(&self.sel.notes)
                .map(text_of)
                .collect::<Vec<_>>()
                .join(" "),
        );
        Ok(Detail {
            service,
            status,
            client,
            pet,
            check_in,
            check_out,
            price,
            notes: (!notes.is_empty()).then_some(notes),
        })
    }

    /// The value next to a label: "Label: value" in one element, or a label
    /// element followed by a value element (`<dt>`/`<dd>`, `<th>`/`<td>`).
    /// The smallest element wins, so a container holding many labels does
    /// not.
    fn labelled(&self, doc: &Html, labels: &[String]) -> Option<String> {
        let mut best: Option<(usize, String)> = None;
        for el in doc.select(&self.sel.label_candidates) {
            let text = text_of(el);
            let Some(rest) = strip_label(&text, labels) else {
                continue;
            };
            let value = if rest.is_empty() {
                el.next_siblings()
                    .find_map(ElementRef::wrap)
                    .map(text_of)
                    .unwrap_or_default()
            } else {
                rest.to_string()
            };
            if !value.is_empty() && best.as_ref().is_none_or(|(len, _)| text.len() < *len) {
                best = Some((text.len(), value));
            }
        }
        best.map(|(_, v)| v)
    }
}

fn missing(url: &Url, what: &str) -> ScrapeError {
    ScrapeError::Missing {
        url: url.clone(),
        what: what.to_string(),
    }
}

fn invalid(url: &Url, what: String) -> ScrapeError {
    ScrapeError::Invalid {
        url: url.clone(),
        what,
    }
}

fn is_password(input: ElementRef<'_>) -> bool {
    input
        .attr("type")
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("password"))
}

fn first_text(doc: &Html, sel: &Selector) -> Option<String> {
    doc.select(sel).map(text_of).find(|t| !t.is_empty())
}

/// Collapses every run of whitespace (including non-breaking spaces) into
/// one space and trims the ends. Entities are already decoded by the parser.
pub(crate) fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text of an element and its descendants, without script or style
/// content, normalised.
fn text_of(el: ElementRef<'_>) -> String {
    let mut out = String::new();
    for node in el.descendants() {
        if let Some(text) = node.value().as_text() {
            let hidden = node.ancestors().any(|a| {
                a.value()
                    .as_element()
                    .is_some_and(|e| matches!(e.name(), "script" | "style" | "template"))
            });
            if !hidden {
                out.push_str(text);
            }
        }
    }
    normalize(&out)
}

/// What follows a label at the start of `text` (colons and spaces removed),
/// or `None` when `text` does not start with one of `labels`.
fn strip_label<'t>(text: &'t str, labels: &[String]) -> Option<&'t str> {
    labels.iter().find_map(|label| {
        let head = text.get(..label.len())?;
        if !head.eq_ignore_ascii_case(label) {
            return None;
        }
        let rest = &text[label.len()..];
        if rest.chars().next().is_some_and(char::is_alphanumeric) {
            return None;
        }
        Some(rest.trim_start_matches(|c: char| c == ':' || c.is_whitespace()))
    })
}

/// Values that mean "none": a dash, "n/a", "none", empty.
fn is_blank_value(text: &str) -> bool {
    matches!(
        text.trim().to_lowercase().as_str(),
        "" | "-" | "--" | "—" | "–" | "n/a" | "na" | "none" | "tbd" | "not set"
    )
}

/// A price like `$1,234.50`, `1234.5 USD` or `€ 45`; `Ok(None)` for a dash
/// or "n/a", `Err` when there is no number.
pub(crate) fn parse_price(text: &str) -> Result<Option<f64>, ()> {
    if is_blank_value(text) {
        return Ok(None);
    }
    if text.trim().eq_ignore_ascii_case("free") {
        return Ok(Some(0.0));
    }
    let start = text.find(|c: char| c.is_ascii_digit()).ok_or(())?;
    let number: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '.')
        .filter(|c| *c != ',')
        .collect();
    let number = number.trim_end_matches('.');
    number.parse::<f64>().map(Some).map_err(|_| ())
}

const WEEKDAYS: &[&str] = &[
    "mon",
    "tue",
    "tues",
    "wed",
    "thu",
    "thur",
    "thurs",
    "fri",
    "sat",
    "sun",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Formats tried on the cleaned text (commas removed, weekday dropped,
/// `4:58pm` spelled `4:58 pm`).
const FORMATS: &[&str] = &[
    "%b %d %Y %I:%M %p",
    "%B %d %Y %I:%M %p",
    "%d %b %Y %I:%M %p",
    "%d %B %Y %I:%M %p",
    "%b %d %Y %H:%M",
    "%B %d %Y %H:%M",
    "%d %b %Y %H:%M",
    "%d %B %Y %H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M",
    "%d.%m.%Y %H:%M",
];

/// Reads a local date and time the way the site may write it
/// (`Mon, Feb 9, 2026 4:58 PM`, `Monday, February 9, 2026 at 4:58 pm`,
/// `2026-02-09 16:58`, `02/09/2026 4:58 PM`, RFC 3339) and converts it from
/// `tz` to UTC. A time in a DST gap moves an hour later; an ambiguous one
/// takes the earlier instant.
pub(crate) fn parse_local_datetime(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let text = normalize(text);
    if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
        return Some(t.with_timezone(&Utc));
    }
    let cleaned = clean_datetime(&text);
    let naive = FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&cleaned, f).ok())?;
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + chrono::Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

fn clean_datetime(text: &str) -> String {
    // ISO-like "2026-02-09T16:58": the T becomes a space.
    let text = if text.starts_with(|c: char| c.is_ascii_digit()) {
        text.replacen('T', " ", 1)
    } else {
        text.to_string()
    };
    let lower = text
        .to_lowercase()
        .replace(',', " ")
        .replace("a.m.", "am")
        .replace("p.m.", "pm");
    let mut words: Vec<String> = lower
        .split_whitespace()
        .filter(|w| *w != "at")
        .map(str::to_string)
        .collect();
    if words
        .first()
        .is_some_and(|w| WEEKDAYS.contains(&w.trim_end_matches('.')))
    {
        words.remove(0);
    }
    // "4:58pm" → "4:58 pm"; "4pm" → "4:00 pm".
    let mut out = Vec::with_capacity(words.len() + 1);
    for w in words {
        match w.strip_suffix("am").or_else(|| w.strip_suffix("pm")) {
            Some(time)
                if !time.is_empty() && time.chars().all(|c| c.is_ascii_digit() || c == ':') =>
            {
                let suffix = &w[time.len()..];
                let time = if time.contains(':') {
                    time.to_string()
                } else {
                    format!("{time}:00")
                };
                out.push(time);
                out.push(suffix.to_string());
            }
            _ => out.push(w),
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests;
