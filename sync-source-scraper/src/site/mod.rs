//! Everything specific to the booking site's HTML and URLs. When the site
//! changes its layout, [`Selectors`] (read from `[kennel.selectors]`) is the
//! one place to touch; the parsers here only use what it names.
//!
//! - [`selectors`]: the configuration, with the real site as the defaults,
//!   compiled once (an error names the bad key).
//! - [`schedule`]: schedule pages: every appointment link wherever it sits,
//!   deduplicated by id, the next link, and telling an empty week from a
//!   page that is not a schedule.
//! - [`detail`]: detail pages: service type, dates, status, client, pets,
//!   duration, labelled fields, notes, price.
//! - [`title_dates`]: the stay written in a title (`2/13-18`, `2/28-3/5`).
//! - [`rules`]: boarding or not, with the reason.
//! - [`payload`]: the boarding record's JSON payload.
//!
//! # Check-in and check-out
//!
//! The stay is read as the in-house importer did: the title's dates
//! (`2/13-18`) are preferred; the `#when-wrapper` timestamps
//! (`data-start_scheduled`, `data-end_scheduled`, Unix seconds) are used
//! instead when the title has no dates, or when the title's check-in is
//! more than 20 days from the timestamps' (a stale title). Timestamps more
//! than two years from the window being read are bogus and ignored. Title
//! dates carry no year: it is the year that puts the check-in closest to
//! the (usable) scheduled check-in, else to the window. A date from the
//! title takes its time of day from the matching timestamp when the
//! timestamps are usable, else it is local midnight. Instants are computed
//! in the kennel's IANA time zone and stored in UTC; the check-in's local
//! day is the day the record belongs to. The AM/PM labels are the first two
//! `.time-label`s of the `.event-time-scheduled` (or `#when-wrapper`) block,
//! else the `am`/`pm` written in the title's dates.
//!
//! # The boarding payload
//!
//! [`payload::boarding_payload`] gives an object with these keys, every key
//! always present (`null` when unknown); the source adds `event_type`,
//! `list_fingerprint` and `detail_path`:
//!
//! | key | value |
//! |---|---|
//! | `appointment_id` | the site's id (string, not always numeric) |
//! | `service_type` | the `h1`, or the `<title>` without ` \| Site Name` |
//! | `status` | `.appt-change-status` text |
//! | `pets` | every `.event-pet` in page order, the primary first, no repeats |
//! | `client` | `{name, email, phone, address}`: `.event-client`, `data-emails`, the `data-value` of `.mobile-contact`, `data-address` |
//! | `check_in`, `check_out` | RFC 3339 UTC, seconds (`2026-02-14T01:00:00Z`) |
//! | `check_in_day` | the check-in's local day, `YYYY-MM-DD` |
//! | `check_in_label`, `check_out_label` | `AM` / `PM` |
//! | `dates_from` | `title`, `timestamps` (no dates in the title) or `timestamps_stale_title` |
//! | `duration` | `.scheduled-duration` without `(Scheduled: …)`, e.g. `10 d` |
//! | `price` | `null` without `#confirm-price`, else `{total_cents, line_items: [{service, rate_cents, quantity, amount_cents, per_pet: [{rate_cents, quantity, amount_cents}]}]}`: cents are integers, `quantity` is `data-qty / 100`; a line item's rate and quantity are its first pet's, its amount the sum over its pets |
//! | `notes` | every `.note`, one per line |
//! | `fields` | the labelled fields by key (`access_home`, `drop_off`, `birthdate`, `breeds`, `breed_type`, `food_allergies`, `health_mobility`, `medications`, `veterinarian`, `behavioral`, `bite_history`); lines of a value are joined by `\n`; absent keys are left out |
//!
//! Text is entity-decoded and whitespace-normalised; the content hash is
//! computed over the payload with keys sorted, so it depends only on these
//! values.
//!
//! # Boarding or not
//!
//! See [`rules`]: the service type (`d/c`, `dc`, `add`, `switch day`,
//! `back to N`, `initial eval`, exactly `busy`), a cancelled request, only
//! day services, a stay under 12 hours. Detail pages give a
//! [`rules::Classification`] rather than a bool, so the source can keep
//! non-boardings apart and log why.

pub(crate) mod detail;
pub(crate) mod payload;
pub(crate) mod rules;
pub(crate) mod schedule;
pub(crate) mod selectors;
pub(crate) mod text;
pub(crate) mod title_dates;

use chrono::NaiveDate;
use scraper::{ElementRef, Html};
use url::Url;

use crate::error::ScrapeError;
use selectors::Compiled;
use text::text_of;

pub(crate) use detail::{Detail, DetailContext};
pub(crate) use schedule::{ListRow, SchedulePage};
pub use selectors::Selectors;

/// The login form to post back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoginForm {
    pub(crate) action: Url,
    /// Every hidden input, in page order.
    pub(crate) hidden: Vec<(String, String)>,
    pub(crate) username_field: String,
    pub(crate) password_field: String,
}

/// [`Selectors`] with everything compiled: the parsers hang off this.
#[derive(Debug)]
pub(crate) struct Site {
    sel: Selectors,
    c: Compiled,
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
        .value()
        .attr("type")
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("password"))
}

impl Site {
    /// Compiles `selectors`; an error names the bad key.
    pub(crate) fn new(selectors: Selectors) -> Result<Self, ScrapeError> {
        let c = selectors.compile()?;
        Ok(Self { sel: selectors, c })
    }

    fn join(&self, base: &Url, path: &str) -> Result<Url, ScrapeError> {
        base.join(path)
            .map_err(|e| ScrapeError::Config(format!("cannot join {path} to {base}: {e}")))
    }

    /// The login form's URL.
    pub(crate) fn login_url(&self, base: &Url) -> Result<Url, ScrapeError> {
        self.join(base, &self.sel.login_path)
    }

    /// The URL of the seven-day window starting on `start`.
    pub(crate) fn week_url(&self, base: &Url, start: NaiveDate) -> Result<Url, ScrapeError> {
        use chrono::Datelike;
        let path = self
            .sel
            .week_path
            .replace("{year}", &start.year().to_string())
            .replace("{month}", &start.month().to_string())
            .replace("{day}", &start.day().to_string());
        self.join(base, &path)
    }

    /// The first day of the window a schedule URL shows, when it follows
    /// [`Selectors::week_path`].
    pub(crate) fn week_start_of(&self, url: &Url) -> Option<NaiveDate> {
        let template: Vec<&str> = self.sel.week_path.trim_matches('/').split('/').collect();
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
        url.path().trim_end_matches('/') == self.sel.login_path.trim_end_matches('/')
    }

    /// The detail URL for `path` (a stored `detail_path`).
    pub(crate) fn detail_url(&self, base: &Url, path: &str) -> Result<Url, ScrapeError> {
        self.join(base, path)
    }

    /// An error when the page ends early.
    pub(crate) fn check_complete(&self, body: &str, url: &Url) -> Result<(), ScrapeError> {
        if self.sel.require_closing_html && !body.to_ascii_lowercase().contains("</html>") {
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
        let found = doc.select(&self.c.input).any(is_password);
        found
    }

    /// Whether a status (detail text or list `data-status`) says the
    /// request was cancelled.
    pub(crate) fn is_cancelled(&self, status: &str) -> bool {
        rules::is_cancelled(status, &self.c.cancelled_status)
    }

    /// The login form: every hidden input, the username (first text or email
    /// input) and password fields, and where to post.
    pub(crate) fn parse_login_form(&self, body: &str, url: &Url) -> Result<LoginForm, ScrapeError> {
        let doc = Html::parse_document(body);
        let form = doc
            .select(&self.c.form)
            .find(|f| f.select(&self.c.input).any(is_password))
            .ok_or_else(|| missing(url, "login form (a <form> with a password input)"))?;
        let mut hidden = Vec::new();
        let (mut username_field, mut password_field) = (None, None);
        for input in form.select(&self.c.input) {
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
            .select(&self.c.login_error)
            .map(text_of)
            .find(|t| !t.is_empty());
        let message = from_selector.or_else(|| {
            doc.select(&self.c.label_candidates)
                .map(text_of)
                .filter(|t| {
                    let l = t.to_lowercase();
                    l.contains("invalid") || l.contains("incorrect")
                })
                .min_by_key(String::len)
        })?;
        Some(message.chars().take(300).collect())
    }
}

#[cfg(test)]
mod tests;
