//! The simulated site's pages. Text is escaped the way a real template
//! engine does it (sometimes with numeric entities), and optional layout
//! noise adds the clutter real pages carry, without changing the data.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::Rng;

use super::data::{Appointment, Kind};

/// Adds random clutter when layout noise is on; does nothing otherwise.
pub(crate) struct Noise<'a> {
    rng: Option<&'a mut StdRng>,
}

impl<'a> Noise<'a> {
    pub(crate) fn new(rng: Option<&'a mut StdRng>) -> Self {
        Self { rng }
    }

    fn roll(&mut self, p: f64) -> bool {
        self.rng.as_mut().is_some_and(|r| r.gen_bool(p))
    }

    fn number(&mut self) -> u32 {
        self.rng.as_mut().map_or(0, |r| r.gen_range(100..10_000))
    }

    pub(crate) fn is_on(&self) -> bool {
        self.rng.is_some()
    }

    /// An HTML comment, sometimes.
    fn comment(&mut self) -> String {
        if self.roll(0.3) {
            format!(
                "<!-- tpl:{} <a href=\"/schedule/a/1/1\"> -->",
                self.number()
            )
        } else {
            String::new()
        }
    }

    /// An extra class name (leading space), sometimes.
    fn class(&mut self) -> String {
        if self.roll(0.4) {
            format!(" js-hook-{}", self.number())
        } else {
            String::new()
        }
    }

    /// An extra attribute (leading space), sometimes.
    fn attr(&mut self) -> String {
        if self.roll(0.4) {
            format!(" data-track=\"evt-{}\" tabindex=\"0\"", self.number())
        } else {
            String::new()
        }
    }

    /// Whitespace between tags, sometimes a lot.
    fn ws(&mut self) -> &'static str {
        if self.roll(0.5) {
            "\n\t\t   \n  "
        } else {
            ""
        }
    }

    /// A script block whose text looks like markup (parsers must not read it).
    fn script(&mut self) -> String {
        if self.roll(0.5) {
            format!(
                "<script>window.__tpl = \"<a href='/schedule/a/{}/1' data-status='x'><span class='event-pet'>Ghost</span></a><input type='password'>\";</script>",
                self.number()
            )
        } else {
            String::new()
        }
    }

    /// A banner paragraph, sometimes.
    fn banner(&mut self) -> String {
        if self.roll(0.3) {
            "<div class=\"banner\"><p>Holiday hours: we close at 3 pm on Dec 24 &amp; Dec 31.</p></div>"
                .to_string()
        } else {
            String::new()
        }
    }
}

/// Escapes text for HTML; `numeric` uses numeric entities like some
/// template engines do.
pub(crate) fn escape(text: &str, numeric: bool) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match (c, numeric) {
            ('&', false) => out.push_str("&amp;"),
            ('&', true) => out.push_str("&#38;"),
            ('<', false) => out.push_str("&lt;"),
            ('<', true) => out.push_str("&#60;"),
            ('>', false) => out.push_str("&gt;"),
            ('>', true) => out.push_str("&#x3E;"),
            ('"', false) => out.push_str("&quot;"),
            ('"', true) => out.push_str("&#34;"),
            ('\'', _) => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escaped text; when `messy`, with numeric entities, non-breaking spaces and
/// line breaks where the canonical text has single spaces.
fn text(value: &str, messy: bool) -> String {
    let escaped = escape(value, messy);
    if messy {
        format!("\n\t  {}  \n", escaped.replace(' ', " \n\t &nbsp;"))
    } else {
        escaped
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{}\n</body>\n</html>\n",
        escape(title, false),
        body
    )
}

/// The login page: every hidden input must come back with the POST.
pub(crate) fn login_page(nonce: &str, form_id: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| {
            format!(
                "<div class=\"alert alert-danger\" role=\"alert\">{}</div>\n",
                escape(e, false)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<div class=\"login-box\">\n<h1>Staff login</h1>\n{error}<form method=\"post\" action=\"/login\" class=\"login-form\">\n\
<input type=\"hidden\" name=\"_token\" value=\"{nonce}\">\n\
<input type=\"hidden\" name=\"_form_id\" value=\"{form_id}\">\n\
<label>Email or username <input type=\"text\" name=\"username\" autocomplete=\"username\"></label>\n\
<label>Password <input type=\"password\" name=\"password\"></label>\n\
<label><input type=\"checkbox\" name=\"remember\" value=\"1\"> Remember me</label>\n\
<button type=\"submit\">Log in</button>\n</form>\n</div>"
    );
    page("Log in · Happy Tails Kennel", &body)
}

/// An error page for a status code (5xx pages are still HTML).
pub(crate) fn error_page(status: u16, message: &str) -> String {
    page(
        &format!("{status} · Happy Tails Kennel"),
        &format!(
            "<h1>{status} {}</h1>\n<p>Please try again later.</p>",
            escape(message, false)
        ),
    )
}

/// The path of a week page.
pub(crate) fn week_path(start: NaiveDate) -> String {
    use chrono::Datelike;
    format!(
        "/schedule/days-7/{}/{}/{}",
        start.year(),
        start.month(),
        start.day()
    )
}

/// The path of an appointment's detail page.
pub(crate) fn detail_path(a: &Appointment) -> String {
    format!("/schedule/a/{}/{}", a.id, a.timestamp())
}

/// A seven-day schedule page: each day lists the appointments active on it.
pub(crate) fn week_page(
    start: NaiveDate,
    days: &[(NaiveDate, Vec<&Appointment>)],
    tz: Tz,
    noise: &mut Noise<'_>,
) -> String {
    let prev = start - chrono::Duration::days(7);
    let next = start + chrono::Duration::days(7);
    let mut body = String::new();
    let _ = write!(
        body,
        "<header class=\"topbar\"><a href=\"/schedule\">Schedule</a> <a href=\"/logout\">Log out</a></header>\n{}{}\
<div class=\"schedule-week{}\" data-start=\"{start}\">\n<nav class=\"schedule-nav\">\
<a class=\"btn btn-default prev-week\" rel=\"prev\" href=\"{}\">&lsaquo; Prev</a> \
<a class=\"btn btn-default\" href=\"/schedule\">Today</a> \
<a class=\"btn btn-default next-week{}\" rel=\"next\" href=\"{}\"{}>Next &rsaquo;</a></nav>\n",
        noise.banner(),
        noise.script(),
        noise.class(),
        week_path(prev),
        noise.class(),
        week_path(next),
        noise.attr(),
    );
    for (day, appts) in days {
        let _ = write!(
            body,
            "<section class=\"schedule-day{}\" data-date=\"{day}\">{}<h3 class=\"day-header\">{}</h3>\n<ul class=\"day-events\">",
            noise.class(),
            noise.comment(),
            day.format("%a, %b %-d")
        );
        if appts.is_empty() {
            body.push_str("<li class=\"no-events\">No appointments</li>");
        }
        for a in appts {
            let ws = noise.ws();
            let title = if a.title_drawn_by_js {
                String::new()
            } else {
                text(&a.service, a.messy_markup)
            };
            let _ = writeln!(
                body,
                "<li class=\"day-event{cls}\">{ws}{comment}<a href=\"{href}\" class=\"event-link\" data-event_type=\"{et}\" data-status=\"{st}\"{attr}>{ws}\
<span class=\"event-pet\">{pet}</span>{ws} <span class=\"event-client\">{client}</span>{ws}\
<div class=\"day-event-time\">{time}</div>{ws}<div class=\"day-event-title\">{title}</div>{ws}</a>{ws}</li>",
                cls = noise.class(),
                comment = noise.comment(),
                href = detail_path(a),
                et = escape(&a.event_type, false),
                st = status_slug(&a.status),
                attr = noise.attr(),
                pet = text(&a.pet, a.messy_markup),
                client = text(&a.client, a.messy_markup),
                time = list_time(a, tz),
            );
        }
        body.push_str("</ul></section>\n");
    }
    body.push_str("</div>\n");
    body.push_str(&noise.script());
    page(
        &format!("Schedule from {start} · Happy Tails Kennel"),
        &body,
    )
}

/// `Checked In` → `checked_in`.
pub(crate) fn status_slug(status: &str) -> String {
    status.to_lowercase().replace(' ', "_")
}

/// The time string of a list row, in the site's formats (no year).
fn list_time(a: &Appointment, tz: Tz) -> String {
    let start = a.check_in.with_timezone(&tz);
    let hm = |t: DateTime<Tz>| t.format("%-I:%M%P").to_string();
    let ampm = |t: DateTime<Tz>| t.format("%p").to_string();
    match (a.kind, a.check_out.map(|c| c.with_timezone(&tz))) {
        (_, None) => format!("{}, {} -", start.format("%b %-d"), hm(start)),
        (Kind::Daycare, Some(end)) if a.id.is_multiple_of(3) => format!(
            "Pick-Up ( {} - {} )",
            end.format("%-I %P"),
            (end + chrono::Duration::hours(1)).format("%-I %P")
        ),
        (Kind::Daycare, Some(end)) if a.id % 3 == 1 => {
            format!("{}, {} - {}", start.format("%b %d"), ampm(start), ampm(end))
        }
        (_, Some(end)) if end.date_naive() == start.date_naive() => {
            format!("{}, {} - {}", start.format("%b %-d"), hm(start), hm(end))
        }
        (_, Some(end)) if a.id.is_multiple_of(2) => format!(
            "{}, {} - {}, {}",
            start.format("%b %d"),
            ampm(start),
            end.format("%b %d"),
            ampm(end)
        ),
        (_, Some(end)) => format!(
            "{}, {} - {}, {}",
            start.format("%b %-d"),
            hm(start),
            end.format("%b %-d"),
            hm(end)
        ),
    }
}

/// A local date-time as the detail page shows it.
fn detail_time(t: Option<DateTime<Utc>>, tz: Tz, long: bool) -> String {
    match t {
        None => "&mdash;".to_string(),
        Some(t) if long => t
            .with_timezone(&tz)
            .format("%A, %B %-d, %Y at %-I:%M %P")
            .to_string(),
        Some(t) => t
            .with_timezone(&tz)
            .format("%a, %b %-d, %Y %-I:%M %p")
            .to_string(),
    }
}

/// `$1,234.50`, or a dash when there is no price.
fn money(cents: Option<i64>) -> String {
    let Some(cents) = cents else {
        return "&mdash;".to_string();
    };
    let dollars = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in dollars.chars().enumerate() {
        if i > 0 && (dollars.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("${grouped}.{:02}", cents % 100)
}

/// An appointment's detail page. With layout noise, half the pages use a
/// second layout (labels instead of classes, long date format).
pub(crate) fn detail_page(a: &Appointment, tz: Tz, noise: &mut Noise<'_>) -> String {
    let m = a.messy_markup;
    let notes = a
        .notes
        .as_deref()
        .map(|n| format!("<p>{}</p>", text(n, m)))
        .unwrap_or_default();
    let alternative = noise.is_on() && noise.roll(0.5);
    let body = if alternative {
        format!(
            "{banner}{script}<main class=\"appointment-detail v2\" data-appointment-id=\"{id}\"><div class=\"card{cls}\">\n\
<h1 class=\"title\">{service}</h1>{ws}<span class=\"badge appt-change-status\">{status}</span>\n<ul class=\"appt-info\">\n\
<li><strong>Client:</strong> <a class=\"event-client\" href=\"/clients/{cid}\">{client}</a></li>\n\
<li><strong>Pet:</strong> <span class=\"event-pet\">{pet}</span></li>\n\
<li><strong>Check-in:</strong> {cin}</li>\n<li><strong>Check-out:</strong> {cout}</li>\n\
<li><strong>Price:</strong> {price}</li>\n</ul>{comment}\n\
<div class=\"appt-notes\"><h2>Notes</h2>{notes}</div></div></main>",
            banner = noise.banner(),
            script = noise.script(),
            id = a.id,
            cls = noise.class(),
            service = text(&a.service, m),
            ws = noise.ws(),
            status = escape(&a.status, false),
            cid = a.client_id,
            client = text(&a.client, m),
            pet = text(&a.pet, m),
            cin = detail_time(Some(a.check_in), tz, true),
            cout = detail_time(a.check_out, tz, true),
            price = money(a.price_cents),
            comment = noise.comment(),
        )
    } else {
        format!(
            "<header class=\"topbar\"><a href=\"/schedule\">Schedule</a></header>\n{script}\
<main class=\"appointment-detail{cls}\" data-appointment-id=\"{id}\">\n<h1>{service}</h1>\n\
<div class=\"appt-status\">Status: <span class=\"appt-change-status\">{status}</span></div>\n\
<div class=\"appt-people\"><p>Client: <a class=\"event-client\" href=\"/clients/{cid}\">{client}</a></p>{ws}\
<p>Pet: <span class=\"event-pet\">{pet}</span></p></div>\n\
<dl class=\"appt-times\"><dt>Check-in</dt><dd class=\"appt-check-in\">{cin}</dd>\
<dt>Check-out</dt><dd class=\"appt-check-out\">{cout}</dd></dl>\n\
<div class=\"appt-price\">Total: <span class=\"price\">{price}</span></div>{comment}\n\
<div class=\"appt-notes\"><h2>Notes</h2>{notes}</div>\n</main>",
            script = noise.script(),
            cls = noise.class(),
            id = a.id,
            service = text(&a.service, m),
            status = escape(&a.status, false),
            cid = a.client_id,
            client = text(&a.client, m),
            ws = noise.ws(),
            pet = text(&a.pet, m),
            cin = detail_time(Some(a.check_in), tz, false),
            cout = detail_time(a.check_out, tz, false),
            price = money(a.price_cents),
            comment = noise.comment(),
        )
    };
    page(
        &format!("Appointment #{} · Happy Tails Kennel", a.id),
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands() {
        assert_eq!(money(Some(123_450)), "$1,234.50");
        assert_eq!(money(Some(4_599)), "$45.99");
        assert_eq!(money(Some(100_000_000)), "$1,000,000.00");
        assert_eq!(money(None), "&mdash;");
    }

    #[test]
    fn escape_both_styles() {
        assert_eq!(
            escape("A & <b> \"q\" 'x'", false),
            "A &amp; &lt;b&gt; &quot;q&quot; &#39;x&#39;"
        );
        assert_eq!(escape("A & <b>", true), "A &#38; &#60;b&#x3E;");
    }
}
