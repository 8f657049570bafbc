//! Appointment detail pages: [`Detail`] and how each part is read.
//!
//! Required parts depend on what the page turns out to be (see
//! [`super::rules`]): the service type is always required; a page whose
//! service type already says "not a boarding" is read leniently (its other
//! parts may be missing or unreadable: they are left empty). For every other
//! page the status is required; unless it is a cancelled request the price
//! block must be readable; unless every line item is a day service the stay
//! (check-in and check-out) must be known; and a boarding needs at least one
//! pet and the client's name. A required part that is missing or unreadable
//! is an error naming the URL and the element.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use scraper::{ElementRef, Html};
use url::Url;

use super::rules::{self, Classification, NotBoarding};
use super::text::{attr, clip, first_text, normalize, text_lines, text_of};
use super::title_dates::{self, TitleDates};
use super::{invalid, missing, Site};
use crate::error::ScrapeError;

/// What a detail page is read against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DetailContext {
    /// The kennel's time zone: local days and the times of title dates.
    pub(crate) tz: Tz,
    /// The first day of the window being read: titles carry no year, and
    /// timestamps far from it are bogus.
    pub(crate) window_start: NaiveDate,
}

/// The client of an appointment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Client {
    /// Name (`.event-client`).
    pub(crate) name: Option<String>,
    /// Email (`data-emails`).
    pub(crate) email: Option<String>,
    /// Phone, as the raw `data-value` of `.mobile-contact`.
    pub(crate) phone: Option<String>,
    /// Address (`data-address`).
    pub(crate) address: Option<String>,
}

/// Where the check-in and check-out dates came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DatesFrom {
    /// The dates written in the title (times of day from the timestamps
    /// when they are usable, else local midnight).
    Title,
    /// The scheduled timestamps: the title has no dates.
    Timestamps,
    /// The scheduled timestamps: the title's dates are more than
    /// `stale_title_days` away from them (a stale title).
    StaleTitle,
}

impl DatesFrom {
    /// The payload's `dates_from` value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Title => "title",
            Self::Timestamps => "timestamps",
            Self::StaleTitle => "timestamps_stale_title",
        }
    }
}

/// Check-in and check-out as instants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stay {
    /// Check-in (UTC); its local day is the record's day.
    pub(crate) check_in: DateTime<Utc>,
    /// Check-out (UTC).
    pub(crate) check_out: DateTime<Utc>,
    /// Which source decided the dates.
    pub(crate) dates_from: DatesFrom,
}

impl Stay {
    /// Minutes from check-in to check-out.
    pub(crate) fn minutes(&self) -> i64 {
        (self.check_out - self.check_in).num_minutes()
    }
}

/// One pet's part of a line item (a `price` div).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PetPrice {
    /// Rate in cents (`data-rate`).
    pub(crate) rate_cents: i64,
    /// Quantity times 100 (`data-qty`).
    pub(crate) quantity_hundredths: i64,
    /// Amount in cents (`data-amount` is dollars).
    pub(crate) amount_cents: i64,
}

/// One service of the price.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LineItem {
    /// The service's name (`.service-name`).
    pub(crate) service: String,
    /// The first pet's rate, in cents.
    pub(crate) rate_cents: i64,
    /// The first pet's quantity, times 100.
    pub(crate) quantity_hundredths: i64,
    /// The amount over every pet, in cents.
    pub(crate) amount_cents: i64,
    /// Each pet's price div, in page order (one unless `pets-N`).
    pub(crate) per_pet: Vec<PetPrice>,
}

/// The price block (`#confirm-price`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Price {
    /// The total, in cents.
    pub(crate) total_cents: i64,
    /// The services, in page order.
    pub(crate) line_items: Vec<LineItem>,
}

/// Everything a detail page says about an appointment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Detail {
    /// The service type (`h1`, or the page title without the site name).
    pub(crate) service_type: String,
    /// The status (`.appt-change-status`).
    pub(crate) status: Option<String>,
    /// Every pet in page order, the primary first, without repeats.
    pub(crate) pets: Vec<String>,
    /// The client.
    pub(crate) client: Client,
    /// Check-in and check-out.
    pub(crate) stay: Option<Stay>,
    /// The first AM/PM label (check-in).
    pub(crate) check_in_label: Option<String>,
    /// The second AM/PM label (check-out).
    pub(crate) check_out_label: Option<String>,
    /// The scheduled duration, e.g. `10 d`.
    pub(crate) duration: Option<String>,
    /// The price; `None` when the page has no price block.
    pub(crate) price: Option<Price>,
    /// Every note, joined by newlines.
    pub(crate) notes: Option<String>,
    /// The labelled fields by configured key (first match on the page).
    pub(crate) fields: BTreeMap<String, String>,
    /// Boarding or not, and why.
    pub(crate) classification: Classification,
}

/// The scheduled timestamps of `#when-wrapper`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Timestamps {
    /// No such element.
    Absent,
    /// The element, but an attribute is missing or not Unix seconds.
    Unreadable(String),
    /// Both instants.
    Read(DateTime<Utc>, DateTime<Utc>),
}

/// A fixed-point number: `value × 10^scale`, rounded half away from zero.
/// Accepts an optional sign, digits with thousands commas, and decimals.
pub(crate) fn parse_fixed(text: &str, scale: u32) -> Option<i64> {
    let t = text.trim();
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let int: String = int.chars().filter(|c| *c != ',').collect();
    if (int.is_empty() && frac.is_empty())
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || int.len() > 15
    {
        return None;
    }
    let mut value: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let digits: Vec<i64> = frac.bytes().map(|b| i64::from(b - b'0')).collect();
    for i in 0..scale as usize {
        value = value
            .checked_mul(10)?
            .checked_add(*digits.get(i).unwrap_or(&0))?;
    }
    if digits.get(scale as usize).is_some_and(|d| *d >= 5) {
        value = value.checked_add(1)?;
    }
    Some(if negative { -value } else { value })
}

/// The amount in a total's text (`Total $1,234.50`), in cents: the number
/// after the first `$`, else the first number.
pub(crate) fn parse_total(text: &str) -> Option<i64> {
    let from = text
        .find('$')
        .map(|i| i + 1)
        .or_else(|| text.find(|c: char| c.is_ascii_digit()))?;
    let rest = text[from..].trim_start();
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '.')
        .collect();
    parse_fixed(number.trim_end_matches(['.', ',']), 2)
}

/// A local date and time as an instant: a time in a DST gap moves an hour
/// later, an ambiguous one takes the earlier instant.
fn local_instant(tz: Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::new(date, time);
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            let later = naive.checked_add_signed(Duration::hours(1))?;
            tz.from_local_datetime(&later).earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

impl Site {
    /// The service type: the first non-empty `h1`, else the page title
    /// without its last ` | Site Name` part.
    fn service_type(&self, doc: &Html) -> Option<String> {
        first_text(doc, &self.c.service_type).or_else(|| {
            let title = first_text(doc, &self.c.page_title)?;
            let sep = self.sel.page_title_separator.trim();
            let kept = match title.rfind(sep) {
                Some(i) if !sep.is_empty() => title[..i].trim().to_string(),
                _ => title,
            };
            (!kept.is_empty()).then_some(kept)
        })
    }

    fn timestamps(&self, doc: &Html) -> Timestamps {
        let Some(when) = doc.select(&self.c.when).next() else {
            return Timestamps::Absent;
        };
        let read = |name: &str| -> Result<DateTime<Utc>, String> {
            let raw = when
                .value()
                .attr(name)
                .ok_or_else(|| format!("`{}` has no {name}", self.sel.when))?;
            let value = raw.trim();
            let secs = (!value.is_empty()
                && value.len() <= 12
                && value.bytes().all(|b| b.is_ascii_digit()))
            .then(|| value.parse::<i64>().ok())
            .flatten()
            .ok_or_else(|| {
                format!(
                    "`{}` {name} `{}` is not Unix seconds",
                    self.sel.when,
                    clip(raw, 40)
                )
            })?;
            DateTime::from_timestamp(secs, 0)
                .ok_or_else(|| format!("`{}` {name} `{value}` is out of range", self.sel.when))
        };
        match (
            read(&self.sel.when_start_attr),
            read(&self.sel.when_end_attr),
        ) {
            (Ok(start), Ok(end)) => Timestamps::Read(start, end),
            (Err(e), _) | (_, Err(e)) => Timestamps::Unreadable(e),
        }
    }

    /// Check-in and check-out, by the importer's rule: the title's dates,
    /// unless the (usable) timestamps are more than `stale_title_days` away
    /// or the title has none; timestamps further than
    /// `max_timestamp_distance_days` from the window are bogus.
    fn stay(
        &self,
        service_type: &str,
        timestamps: &Timestamps,
        ctx: DetailContext,
        url: &Url,
    ) -> Result<Stay, ScrapeError> {
        let tz = ctx.tz;
        let max = i64::from(self.sel.max_timestamp_distance_days);
        let local_day = |t: DateTime<Utc>| t.with_timezone(&tz).date_naive();
        let usable = match timestamps {
            Timestamps::Read(start, end)
                if [start, end]
                    .iter()
                    .all(|t| (local_day(**t) - ctx.window_start).num_days().abs() <= max) =>
            {
                Some((*start, *end))
            }
            _ => None,
        };
        let title: Option<TitleDates> = title_dates::find(service_type);
        let anchor = usable.map_or(ctx.window_start, |(start, _)| local_day(start));
        let resolved = title.as_ref().and_then(|t| t.resolve(anchor));

        match (resolved, usable) {
            (Some((day_in, day_out)), Some((start, end))) => {
                let gap = (day_in - local_day(start)).num_days().abs();
                if gap > i64::from(self.sel.stale_title_days) {
                    return Ok(Stay {
                        check_in: start,
                        check_out: end,
                        dates_from: DatesFrom::StaleTitle,
                    });
                }
                let at =
                    |day, t: DateTime<Utc>| local_instant(tz, day, t.with_timezone(&tz).time());
                match (at(day_in, start), at(day_out, end)) {
                    (Some(check_in), Some(check_out)) => Ok(Stay {
                        check_in,
                        check_out,
                        dates_from: DatesFrom::Title,
                    }),
                    _ => Err(invalid(
                        url,
                        format!("title dates of `{service_type}` have no instant in {tz}"),
                    )),
                }
            }
            (Some((day_in, day_out)), None) => {
                let midnight = NaiveTime::MIN;
                match (
                    local_instant(tz, day_in, midnight),
                    local_instant(tz, day_out, midnight),
                ) {
                    (Some(check_in), Some(check_out)) => Ok(Stay {
                        check_in,
                        check_out,
                        dates_from: DatesFrom::Title,
                    }),
                    _ => Err(invalid(
                        url,
                        format!("title dates of `{service_type}` have no instant in {tz}"),
                    )),
                }
            }
            (None, Some((check_in, check_out))) => Ok(Stay {
                check_in,
                check_out,
                dates_from: DatesFrom::Timestamps,
            }),
            (None, None) => {
                let title_part = match &title {
                    Some(t) => format!("the title's dates `{}` are not real dates", t.text),
                    None => format!("no dates in the title `{}`", clip(service_type, 80)),
                };
                let ts_part = match timestamps {
                    Timestamps::Absent => format!("no `{}`", self.sel.when),
                    Timestamps::Unreadable(why) => why.clone(),
                    Timestamps::Read(start, end) => format!(
                        "`{}` timestamps {} and {} are more than {max} days from the window \
                         ({})",
                        self.sel.when,
                        start.timestamp(),
                        end.timestamp(),
                        ctx.window_start
                    ),
                };
                let what = format!("check-in and check-out: {title_part} and {ts_part}");
                Err(match timestamps {
                    Timestamps::Absent => missing(url, &what),
                    _ => invalid(url, what),
                })
            }
        }
    }

    /// The AM/PM labels of the first block that has any.
    fn time_labels(&self, doc: &Html) -> (Option<String>, Option<String>) {
        for block in doc.select(&self.c.time_label_blocks) {
            let labels: Vec<String> = block
                .select(&self.c.time_label)
                .map(|l| text_of(l).to_uppercase())
                .filter(|l| !l.is_empty())
                .collect();
            if !labels.is_empty() {
                let mut labels = labels.into_iter();
                return (labels.next(), labels.next());
            }
        }
        (None, None)
    }

    fn attr_of(&self, doc: &Html, sel: &scraper::Selector, name: &str) -> Option<String> {
        doc.select(sel).find_map(|el| attr(el, name))
    }

    fn client(&self, doc: &Html) -> Client {
        Client {
            name: first_text(doc, &self.c.client_name),
            email: self.attr_of(doc, &self.c.client_email, &self.sel.client_email_attr),
            phone: self.attr_of(doc, &self.c.client_phone, &self.sel.client_phone_attr),
            address: self.attr_of(doc, &self.c.client_address, &self.sel.client_address_attr),
        }
    }

    fn pets(&self, doc: &Html) -> Vec<String> {
        let mut pets: Vec<String> = Vec::new();
        for name in doc.select(&self.c.pets).map(text_of) {
            if !name.is_empty() && !pets.contains(&name) {
                pets.push(name);
            }
        }
        pets
    }

    /// `(Scheduled: 10 d)` → `10 d`; other text is kept without
    /// parentheses.
    fn duration(&self, doc: &Html) -> Option<String> {
        let text = first_text(doc, &self.c.duration)?;
        let inner = text
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim();
        let prefix = self.sel.duration_prefix.trim();
        let value = match inner.get(..prefix.len()) {
            Some(head) if !prefix.is_empty() && head.eq_ignore_ascii_case(prefix) => {
                inner[prefix.len()..].trim()
            }
            _ => inner,
        };
        (!value.is_empty()).then(|| normalize(value))
    }

    /// Every label/value pair whose label contains a configured label;
    /// the first pair per key wins.
    fn fields(&self, doc: &Html) -> BTreeMap<String, String> {
        let wanted: Vec<(&String, String)> = self
            .sel
            .field_labels
            .iter()
            .map(|(k, l)| (k, normalize(l).to_lowercase()))
            .collect();
        let mut out = BTreeMap::new();
        for label in doc.select(&self.c.field_label) {
            let text = text_of(label).to_lowercase();
            let Some(value) = label
                .next_siblings()
                .find_map(ElementRef::wrap)
                .filter(|v| self.c.field_value.matches(v))
                .map(text_lines)
                .filter(|v| !v.is_empty())
            else {
                continue;
            };
            for (key, _) in wanted.iter().filter(|(_, l)| text.contains(l.as_str())) {
                out.entry((*key).clone()).or_insert_with(|| value.clone());
            }
        }
        out
    }

    /// Every note (outermost matches only), joined by newlines.
    fn notes(&self, doc: &Html) -> Option<String> {
        let notes: Vec<String> = doc
            .select(&self.c.notes)
            .filter(|n| {
                !n.ancestors()
                    .filter_map(ElementRef::wrap)
                    .any(|a| self.c.notes.matches(&a))
            })
            .map(text_lines)
            .filter(|n| !n.is_empty())
            .collect();
        (!notes.is_empty()).then(|| notes.join("\n"))
    }

    /// The price block: `Ok(None)` without one.
    fn price(&self, doc: &Html, url: &Url) -> Result<Option<Price>, ScrapeError> {
        let s = &self.sel;
        let Some(fieldset) = doc.select(&self.c.price_fieldset).next() else {
            return Ok(None);
        };
        let total_el = fieldset.select(&self.c.price_total).next().ok_or_else(|| {
            missing(
                url,
                &format!(
                    "price total (`{}` in `{}`)",
                    s.price_total, s.price_fieldset
                ),
            )
        })?;
        let total_text = text_of(total_el);
        let total_cents = parse_total(&total_text).ok_or_else(|| {
            invalid(
                url,
                format!("price total `{}` has no amount", clip(&total_text, 80)),
            )
        })?;
        let names: Vec<String> = fieldset
            .select(&self.c.price_service_name)
            .map(text_of)
            .collect();
        let divs: Vec<ElementRef<'_>> = fieldset.select(&self.c.price_item).collect();
        if !names.is_empty() && divs.is_empty() {
            return Err(invalid(
                url,
                format!(
                    "price block `{}` names {} service(s) but has no price items (`{}`): the \
                     layout changed",
                    s.price_fieldset,
                    names.len(),
                    s.price_item
                ),
            ));
        }
        let pets = self.pets_per_service(fieldset, url)?;
        if divs.len() != names.len() * pets {
            return Err(invalid(
                url,
                format!(
                    "price block `{}` has {} service name(s) and {} price item(s); expected {} \
                     per service",
                    s.price_fieldset,
                    names.len(),
                    divs.len(),
                    pets
                ),
            ));
        }
        let read = |div: ElementRef<'_>, name: &str, scale: u32, service: &str| {
            let raw = div
                .value()
                .attr(name)
                .ok_or_else(|| missing(url, &format!("{name} on the price item of `{service}`")))?;
            parse_fixed(raw, scale).ok_or_else(|| {
                invalid(
                    url,
                    format!("{name} `{}` of `{service}` is not a number", clip(raw, 40)),
                )
            })
        };
        let mut line_items = Vec::with_capacity(names.len());
        for (service, group) in names.into_iter().zip(divs.chunks(pets)) {
            let per_pet = group
                .iter()
                .map(|div| {
                    Ok(PetPrice {
                        rate_cents: read(*div, &s.price_rate_attr, 0, &service)?,
                        quantity_hundredths: read(*div, &s.price_qty_attr, 0, &service)?,
                        amount_cents: read(*div, &s.price_amount_attr, 2, &service)?,
                    })
                })
                .collect::<Result<Vec<_>, ScrapeError>>()?;
            let amount_cents = per_pet
                .iter()
                .try_fold(0i64, |sum, p| sum.checked_add(p.amount_cents))
                .ok_or_else(|| invalid(url, format!("amounts of `{service}` overflow")))?;
            line_items.push(LineItem {
                rate_cents: per_pet[0].rate_cents,
                quantity_hundredths: per_pet[0].quantity_hundredths,
                amount_cents,
                service,
                per_pet,
            });
        }
        Ok(Some(Price {
            total_cents,
            line_items,
        }))
    }

    /// N of a `pets-N` class in the price block (1 without one).
    fn pets_per_service(&self, fieldset: ElementRef<'_>, url: &Url) -> Result<usize, ScrapeError> {
        let prefix = &self.sel.price_pets_class_prefix;
        let mut found: Vec<usize> = Vec::new();
        let elements = std::iter::once(fieldset).chain(fieldset.select(&self.c.all_elements));
        for el in elements {
            for class in el.value().classes() {
                let Some(n) = class.strip_prefix(prefix.as_str()) else {
                    continue;
                };
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                let n: usize = n.parse().unwrap_or(0);
                if !(1..=50).contains(&n) {
                    return Err(invalid(
                        url,
                        format!("price block class `{class}`: bad pet count"),
                    ));
                }
                if !found.contains(&n) {
                    found.push(n);
                }
            }
        }
        match found.as_slice() {
            [] => Ok(1),
            [n] => Ok(*n),
            many => Err(invalid(
                url,
                format!("price block has several pet counts ({many:?}) in `{prefix}N` classes"),
            )),
        }
    }

    /// A detail page, read and classified (see the module docs for which
    /// parts are required when).
    pub(crate) fn parse_detail(
        &self,
        body: &str,
        url: &Url,
        ctx: DetailContext,
    ) -> Result<Detail, ScrapeError> {
        let doc = Html::parse_document(body);
        let s = &self.sel;
        let service_type = self.service_type(&doc).ok_or_else(|| {
            missing(
                url,
                &format!(
                    "service type (`{}`, or the `{}` text)",
                    s.service_type, s.page_title
                ),
            )
        })?;
        let status = first_text(&doc, &self.c.status);
        let pets = self.pets(&doc);
        let client = self.client(&doc);
        let (check_in_label, check_out_label) = self.time_labels(&doc);
        let timestamps = self.timestamps(&doc);
        let stay = self.stay(&service_type, &timestamps, ctx, url);
        let price = self.price(&doc, url);
        let title_halves = title_dates::find(&service_type);
        let half = |h: Option<title_dates::Half>| h.map(|h| h.label().to_string());
        let check_in_label =
            check_in_label.or_else(|| half(title_halves.as_ref().and_then(|t| t.start_half)));
        let check_out_label =
            check_out_label.or_else(|| half(title_halves.as_ref().and_then(|t| t.end_half)));

        let mut detail = Detail {
            service_type,
            status,
            pets,
            client,
            stay: None,
            check_in_label,
            check_out_label,
            duration: self.duration(&doc),
            price: None,
            notes: self.notes(&doc),
            fields: self.fields(&doc),
            classification: Classification::Boarding,
        };
        let lenient = |detail: &mut Detail,
                       why: NotBoarding,
                       stay: Result<Stay, ScrapeError>,
                       price: Result<Option<Price>, ScrapeError>| {
            for e in [stay.as_ref().err(), price.as_ref().err()]
                .into_iter()
                .flatten()
            {
                tracing::debug!(url = %url, reason = %why, error = %e, "not a boarding; part left empty");
            }
            detail.stay = stay.ok();
            detail.price = price.ok().flatten();
            detail.classification = Classification::NotBoarding(why);
        };

        // 1. The service type.
        if let Some(rule) = rules::service_type_rule(
            &detail.service_type,
            &self.c.non_boarding_service,
            &s.non_boarding_service_exact,
        ) {
            let why = NotBoarding::ServiceType {
                service_type: detail.service_type.clone(),
                rule,
            };
            lenient(&mut detail, why, stay, price);
            return Ok(detail);
        }
        // 2. A cancelled request.
        let status = detail
            .status
            .clone()
            .ok_or_else(|| missing(url, &format!("status (`{}`)", s.status)))?;
        if rules::is_cancelled(&status, &self.c.cancelled_status) {
            lenient(&mut detail, NotBoarding::Cancelled { status }, stay, price);
            return Ok(detail);
        }
        // 3. Only day services.
        let price = price?;
        let day_services = price.as_ref().filter(|p| {
            !p.line_items.is_empty()
                && p.line_items.iter().all(|i| {
                    rules::is_day_service(&i.service, &self.c.day_service, &s.day_service_prefixes)
                })
        });
        if let Some(p) = day_services {
            let why = NotBoarding::DayServicesOnly {
                services: p.line_items.iter().map(|i| i.service.clone()).collect(),
            };
            lenient(&mut detail, why, stay, Ok(price));
            return Ok(detail);
        }
        detail.price = price;
        // 4. A short stay.
        let stay = stay?;
        detail.stay = Some(stay);
        let minutes = stay.minutes();
        if minutes < i64::from(s.min_stay_hours) * 60 {
            detail.classification = Classification::NotBoarding(NotBoarding::ShortStay {
                minutes,
                min_hours: s.min_stay_hours,
            });
            return Ok(detail);
        }
        // A boarding: who and for whom.
        if detail.pets.is_empty() {
            return Err(missing(url, &format!("pet (`{}`)", s.pets)));
        }
        if detail.client.name.is_none() {
            return Err(missing(url, &format!("client (`{}`)", s.client_name)));
        }
        Ok(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_numbers() {
        assert_eq!(parse_fixed("7500", 0), Some(7500));
        assert_eq!(parse_fixed(" 750.00 ", 2), Some(75000));
        assert_eq!(parse_fixed("1,234.5", 2), Some(123450));
        assert_eq!(parse_fixed("12.345", 2), Some(1235));
        assert_eq!(parse_fixed("12.344", 2), Some(1234));
        assert_eq!(parse_fixed("-5", 2), Some(-500));
        assert_eq!(parse_fixed(".5", 2), Some(50));
        assert_eq!(parse_fixed("150", 0), Some(150));
        assert_eq!(parse_fixed("7500.6", 0), Some(7501));
        for bad in [
            "",
            "-",
            ".",
            "1e5",
            "abc",
            "12a",
            "1.2.3",
            "9999999999999999",
            "$5",
        ] {
            assert_eq!(parse_fixed(bad, 2), None, "{bad:?}");
        }
    }

    #[test]
    fn totals() {
        assert_eq!(parse_total("Total $750"), Some(75000));
        assert_eq!(parse_total("Total $1,234.50"), Some(123450));
        assert_eq!(parse_total("Total $ 99.5"), Some(9950));
        assert_eq!(parse_total("Total 80"), Some(8000));
        assert_eq!(parse_total("Total $750."), Some(75000));
        assert_eq!(parse_total("Total"), None);
        assert_eq!(parse_total("Total $-1e309"), None);
    }
}
