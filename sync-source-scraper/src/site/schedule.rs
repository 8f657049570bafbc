//! Schedule pages: the appointment links wherever they sit, and the next
//! link.
//!
//! **Empty week or changed layout?** A page with appointment links is a
//! schedule page. A page without any is an empty week only when it still
//! has a schedule page's usual structure ([`super::Selectors::schedule_markers`]:
//! the pagination, links to other weeks, a `rel="next"` link; or a next link
//! to a week path) and shows no
//! part of an appointment card ([`super::Selectors::card_markers`]: pet or
//! client names, event times or titles, `data-event_type`). Cards without
//! links mean the links changed; no structure at all means the page is not a
//! schedule (a maintenance page, an error page): both are errors naming the
//! URL and what was missing. Links that match the appointment selector but
//! have no `{id}/{timestamp}` (a "new appointment" button) are skipped; when
//! the appointment links themselves change form, their cards show it.

use chrono::{Datelike, NaiveDate};
use scraper::{ElementRef, Html};
use serde_json::json;
use sync_core::ContentHash;
use url::Url;

use super::text::{attr, clip, text_of};
use super::Site;
use crate::error::ScrapeError;

/// One appointment link of a schedule page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListRow {
    /// The appointment id (not always numeric).
    pub(crate) id: String,
    /// The timestamp after the id in the link (digits).
    pub(crate) timestamp: String,
    /// The detail page, on the schedule page's origin (query kept, fragment
    /// dropped).
    pub(crate) detail_url: Url,
    /// `data-event_type`.
    pub(crate) event_type: Option<String>,
    /// `data-status`.
    pub(crate) status: Option<String>,
    /// The pet names in the link.
    pub(crate) pets: Vec<String>,
    /// The client name in the link.
    pub(crate) client: Option<String>,
    /// The time string (`Feb 13, 11:49am ...`, `Pick-Up ( 9 am - 10 am )`);
    /// no year, never parsed.
    pub(crate) time: Option<String>,
    /// The title (a date-range label); `None` when empty (drawn by
    /// JavaScript).
    pub(crate) title: Option<String>,
    /// Hash of everything above: when it is unchanged, the list entry is.
    pub(crate) fingerprint: String,
}

/// English month names, matched by their first three letters.
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

impl ListRow {
    /// The local day the list's time string starts on (`Feb 13, 11:49am
    /// ...`, `Apr 01, AM - Apr 13, PM`): its month name and day, in the year
    /// that puts it nearest to `window_start` (the list writes no year).
    /// `None` when the time string starts with no date (`Pick-Up ( 9 am -
    /// 10 am )`: daycare and recurring entries).
    pub(crate) fn start_day(&self, window_start: NaiveDate) -> Option<NaiveDate> {
        list_start_day(self.time.as_deref()?, window_start)
    }

    fn with_fingerprint(mut self) -> Self {
        let value = json!({
            "path": self.detail_url.path(),
            "timestamp": self.timestamp,
            "event_type": self.event_type,
            "status": self.status,
            "pets": self.pets,
            "client": self.client,
            "time": self.time,
            "title": self.title,
        });
        self.fingerprint = ContentHash::of_json(&value, &[]).to_hex()[..32].to_string();
        self
    }
}

/// See [`ListRow::start_day`].
pub(crate) fn list_start_day(time: &str, window_start: NaiveDate) -> Option<NaiveDate> {
    let mut words = time
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty());
    let month_word = words.next()?.to_ascii_lowercase();
    if month_word.len() < 3 || !month_word.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let month = MONTHS.iter().position(|m| month_word.starts_with(m))? as u32 + 1;
    let day_word = words.next()?;
    if day_word.is_empty() || day_word.len() > 2 || !day_word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let day: u32 = day_word.parse().ok()?;
    let year = window_start.year();
    [year - 1, year, year + 1]
        .into_iter()
        .filter_map(|y| NaiveDate::from_ymd_opt(y, month, day))
        .min_by_key(|d| (*d - window_start).num_days().abs())
}

/// What a schedule page holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SchedulePage {
    /// The appointments, deduplicated by id (the first link kept), in page
    /// order.
    pub(crate) rows: Vec<ListRow>,
    /// The next window, when the page links to one other than itself.
    pub(crate) next: Option<Url>,
}

impl Site {
    /// A schedule page: its appointment links and the next link; an error
    /// when the page is not recognisably a schedule page (see the module
    /// docs).
    pub(crate) fn parse_schedule(
        &self,
        body: &str,
        url: &Url,
    ) -> Result<SchedulePage, ScrapeError> {
        let doc = Html::parse_document(body);
        let mut rows: Vec<ListRow> = Vec::new();
        let mut malformed: Vec<String> = Vec::new();
        for a in doc.select(&self.c.appointment_link) {
            match self.parse_row(a, url) {
                Some(row) if rows.iter().any(|r| r.id == row.id) => {}
                Some(row) => rows.push(row),
                None => malformed.push(a.value().attr("href").unwrap_or("").to_string()),
            }
        }
        let next = self.next_link(&doc, url);
        if !malformed.is_empty() {
            tracing::debug!(url = %url, links = ?malformed, "links without an appointment id and timestamp skipped");
        }
        if !rows.is_empty() {
            return Ok(SchedulePage { rows, next });
        }
        let s = &self.sel;
        let cards: Vec<&str> = self
            .c
            .card_markers
            .iter()
            .zip(&s.card_markers)
            .filter(|(sel, _)| doc.select(sel).next().is_some())
            .map(|(_, css)| css.as_str())
            .collect();
        if !cards.is_empty() {
            return Err(ScrapeError::NotSchedule {
                url: url.clone(),
                what: format!(
                    "it shows appointment cards ({}) but no appointment links (`{}` with \
                     {}{{id}}/{{timestamp}}{}): the layout changed",
                    cards.join(", "),
                    s.appointment_link,
                    s.detail_prefix,
                    match malformed.first() {
                        Some(href) =>
                            format!("; {} link(s) like `{}`", malformed.len(), clip(href, 80)),
                        None => String::new(),
                    }
                ),
            });
        }
        let structure = self
            .c
            .schedule_markers
            .iter()
            .any(|sel| doc.select(sel).next().is_some())
            || next
                .as_ref()
                .is_some_and(|n| self.week_start_of(n).is_some());
        if !structure {
            return Err(ScrapeError::NotSchedule {
                url: url.clone(),
                what: format!(
                    "no appointment links (`{}`) and none of a schedule page's usual structure \
                     ({}, or a next link to {})",
                    s.appointment_link,
                    s.schedule_markers.join(", "),
                    s.week_path
                ),
            });
        }
        Ok(SchedulePage { rows, next })
    }

    /// An appointment link: `None` when its path has no
    /// `{detail_prefix}{id}/{timestamp}`.
    fn parse_row(&self, a: ElementRef<'_>, url: &Url) -> Option<ListRow> {
        let href = a.value().attr("href")?.trim();
        let linked = url.join(href).ok()?;
        if !matches!(linked.scheme(), "http" | "https") {
            return None;
        }
        // Detail pages live on the site being read: an absolute link is
        // re-based onto the page's origin (no session requests elsewhere).
        let mut detail_url = url.clone();
        detail_url.set_path(linked.path());
        detail_url.set_query(linked.query());
        detail_url.set_fragment(None);
        let prefix = self.sel.detail_prefix.as_str();
        let path = detail_url.path();
        let rest = &path[path.find(prefix)? + prefix.len()..];
        let mut parts = rest.split('/');
        let id = parts.next().filter(|id| !id.is_empty())?.to_string();
        let timestamp = parts
            .next()
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))?
            .to_string();
        let inner = |sel: &scraper::Selector| a.select(sel).map(text_of).find(|t| !t.is_empty());
        let pets = a
            .select(&self.c.link_pet)
            .map(text_of)
            .filter(|t| !t.is_empty())
            .collect();
        Some(
            ListRow {
                id,
                timestamp,
                event_type: attr(a, &self.sel.link_event_type_attr),
                status: attr(a, &self.sel.link_status_attr),
                pets,
                client: inner(&self.c.link_client),
                time: inner(&self.c.link_time),
                title: inner(&self.c.link_title),
                detail_url,
                fingerprint: String::new(),
            }
            .with_fingerprint(),
        )
    }

    /// The first next link that is an http(s) URL other than the page
    /// itself.
    fn next_link(&self, doc: &Html, url: &Url) -> Option<Url> {
        let mut here = url.clone();
        here.set_fragment(None);
        doc.select(&self.c.next_link)
            .filter_map(|a| a.value().attr("href"))
            .filter_map(|href| url.join(href.trim()).ok())
            .map(|mut next| {
                next.set_fragment(None);
                next
            })
            .find(|next| matches!(next.scheme(), "http" | "https") && *next != here)
    }
}
