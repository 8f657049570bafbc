//! The simulated site's pages, after the reference's description of the real
//! markup. Text is escaped the way template engines do it (sometimes with
//! numeric or named entities and odd whitespace); per-appointment choices
//! (attribute order, extra classes, block variants) come from the
//! appointment's style seed, so the same data renders the same page; the
//! optional layout noise adds per-request clutter without changing the data.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::Rng;

use super::data::{status_code, AmPm, Appointment, Field, ListTime, Mix, PriceLine};

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

    /// An HTML comment that looks like markup, sometimes.
    fn comment(&mut self) -> String {
        if self.roll(0.3) {
            format!(
                "<!-- tpl:{} <a href=\"/schedule/a/X{}/1\"><span class=\"event-pet\">Ghost</span></a> -->",
                self.number(),
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

    /// Whitespace between tags, sometimes a lot.
    fn ws(&mut self) -> &'static str {
        if self.roll(0.5) {
            "\n\t\t   \n  "
        } else {
            ""
        }
    }

    /// A script whose text looks like markup (it is not markup).
    fn script(&mut self) -> String {
        if self.roll(0.5) {
            format!(
                "<script>window.__tpl = \"<a href='/schedule/a/{}/1' data-status='x'><span class='event-pet'>Ghost</span></a><input type='password' name='password'>\";</script>",
                self.number()
            )
        } else {
            String::new()
        }
    }

    /// A banner, sometimes.
    fn banner(&mut self) -> String {
        if self.roll(0.3) {
            "<div class=\"banner alert alert-info\"><p>Holiday hours: we close at 3 pm on Dec 24 &amp; Dec 31.</p></div>"
                .to_string()
        } else {
            String::new()
        }
    }
}

/// Escapes text for HTML with named entities.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text the messy way: numeric and named entities, also for letters
/// that need none.
fn escape_messy(text: &str, m: &mut Mix) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        let coin = m.chance(50);
        match c {
            '&' if coin => out.push_str("&#38;"),
            '&' => out.push_str("&amp;"),
            '<' if coin => out.push_str("&#60;"),
            '<' => out.push_str("&lt;"),
            '>' if coin => out.push_str("&#x3E;"),
            '>' => out.push_str("&gt;"),
            '"' if coin => out.push_str("&#34;"),
            '"' => out.push_str("&quot;"),
            '\'' if coin => out.push_str("&#x27;"),
            '\'' => out.push('\''),
            'é' => out.push_str(if coin { "&eacute;" } else { "&#233;" }),
            'ë' => out.push_str("&euml;"),
            'ñ' => out.push_str("&ntilde;"),
            'ö' => out.push_str("&ouml;"),
            'í' => out.push_str("&iacute;"),
            '–' => out.push_str("&ndash;"),
            _ => out.push(c),
        }
    }
    out
}

/// Element text: escaped; when `messy`, with entities, line breaks, tabs and
/// non-breaking spaces where the canonical text has single spaces, and
/// whitespace around it.
pub(crate) fn text(value: &str, messy: bool, m: &mut Mix) -> String {
    if !messy {
        return escape(value);
    }
    let escaped: Vec<String> = value.split(' ').map(|w| escape_messy(w, m)).collect();
    let mut out = String::from(["\n\t\t", " ", "\n      "][m.below(3)]);
    for (i, w) in escaped.iter().enumerate() {
        if i > 0 {
            out.push_str([" ", "  ", "\n\t ", "&nbsp;", " &#32;", "\t"][m.below(6)]);
        }
        out.push_str(w);
    }
    out.push_str(["\n\t", "  ", "\n    "][m.below(3)]);
    out
}

/// Attribute text: escaped (entities, never whitespace changes).
fn attr(value: &str, messy: bool, m: &mut Mix) -> String {
    if messy {
        escape_messy(value, m)
    } else {
        escape(value)
    }
}

/// `name="value"` pairs in an order chosen by `m`.
fn attrs(pairs: &mut [(String, String)], m: &mut Mix, shuffle: bool) -> String {
    if shuffle {
        for i in (1..pairs.len()).rev() {
            let j = m.below(i + 1);
            pairs.swap(i, j);
        }
    }
    let mut out = String::new();
    for (k, v) in pairs.iter() {
        let _ = write!(out, " {k}=\"{v}\"");
    }
    out
}

fn page(title: &str, body_class: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title}</title>\n<link rel=\"stylesheet\" href=\"/assets/app.css?v=3.14\">\n</head>\n<body class=\"{body_class}\">\n{body}\n</body>\n</html>\n"
    )
}

fn site_header(site: &str, logged_in: bool) -> String {
    let nav = if logged_in {
        "<nav class=\"main-nav\"><a href=\"/dashboard\">Dashboard</a> <a href=\"/schedule\">Schedule</a> <a href=\"/clients\">Clients</a> <a href=\"/logout\">Log out</a></nav>"
    } else {
        ""
    };
    format!(
        "<header class=\"site-header\"><a class=\"brand\" href=\"/\">{}</a> <a class=\"business-phone\" href=\"tel:+15550100100\" data-value=\"+15550100100\">(555) 010-0100</a> <a class=\"business-email\" href=\"mailto:hello@happytails.test\">hello@happytails.test</a>{nav}</header>",
        escape(site)
    )
}

/// What a login form carries.
pub(crate) struct LoginForm<'a> {
    pub(crate) site: &'a str,
    /// Hidden inputs, in order.
    pub(crate) hidden: &'a [(String, String)],
    pub(crate) user_field: &'a str,
    pub(crate) password_field: &'a str,
    /// An error message (failed login).
    pub(crate) error: Option<&'a str>,
    /// A notice (expired session).
    pub(crate) notice: Option<&'a str>,
    /// Varies attribute order and where the hidden inputs sit.
    pub(crate) variant: u64,
}

/// The login page: every hidden input must come back with the POST.
pub(crate) fn login_page(f: &LoginForm<'_>) -> String {
    let mut m = Mix::new(f.variant);
    let user_type = if f.user_field == "email" {
        "email"
    } else {
        "text"
    };
    let mut user = vec![
        ("type".to_string(), user_type.to_string()),
        ("name".to_string(), escape(f.user_field)),
        ("id".to_string(), "user_login".to_string()),
        ("class".to_string(), "input form-control".to_string()),
        ("value".to_string(), String::new()),
        ("autocomplete".to_string(), "username".to_string()),
    ];
    let mut pass = vec![
        ("type".to_string(), "password".to_string()),
        ("name".to_string(), escape(f.password_field)),
        ("id".to_string(), "user_pass".to_string()),
        ("class".to_string(), "input form-control".to_string()),
        ("autocomplete".to_string(), "current-password".to_string()),
    ];
    let shuffle = m.chance(50);
    let user = attrs(&mut user, &mut m, shuffle);
    let pass = attrs(&mut pass, &mut m, shuffle);
    let hidden: Vec<String> = f
        .hidden
        .iter()
        .map(|(k, v)| {
            let mut pairs = vec![
                ("type".to_string(), "hidden".to_string()),
                ("name".to_string(), escape(k)),
                ("value".to_string(), escape(v)),
            ];
            format!("<input{}>", attrs(&mut pairs, &mut m, shuffle))
        })
        .collect();
    // Some hidden inputs before the fields, the rest after.
    let split = m.below(hidden.len() + 1);
    let (before, after) = hidden.split_at(split);
    let mut body = String::new();
    body.push_str(&site_header(f.site, false));
    body.push_str("\n<div id=\"login\" class=\"login-box\">\n<h1>Staff log in</h1>\n");
    if let Some(n) = f.notice {
        let _ = writeln!(body, "<p class=\"message notice\">{}</p>", escape(n));
    }
    if let Some(e) = f.error {
        let _ = writeln!(
            body,
            "<div id=\"login_error\" class=\"alert alert-danger\" role=\"alert\"><strong>Error:</strong> {}</div>",
            escape(e)
        );
    }
    let _ = write!(
        body,
        "<form name=\"loginform\" id=\"loginform\" action=\"/login\" method=\"post\">\n{}\n\
<p><label for=\"user_login\">{}</label>\n<input{user} size=\"20\"></p>\n\
<p><label for=\"user_pass\">Password</label>\n<input{pass} size=\"20\"></p>\n\
<p class=\"forgetmenot\"><input name=\"rememberme\" type=\"checkbox\" id=\"rememberme\" value=\"forever\"> <label for=\"rememberme\">Remember Me</label></p>\n\
{}\n<p class=\"submit\"><button type=\"submit\" class=\"button button-primary\">Log In</button></p>\n</form>\n\
<p id=\"nav\"><a href=\"/lost-password\">Lost your password?</a></p>\n</div>",
        before.join("\n"),
        if user_type == "email" {
            "Email Address"
        } else {
            "Username or Email Address"
        },
        after.join("\n"),
    );
    page(&format!("Log In | {}", escape(f.site)), "login", &body)
}

/// An error page for a status code (5xx pages are still HTML).
pub(crate) fn error_page(site: &str, status: u16, message: &str) -> String {
    page(
        &format!("{status} {} | {}", escape(message), escape(site)),
        "error-page",
        &format!(
            "{}\n<div class=\"error-box\"><h2>{status} {}</h2>\n<p>Sorry, something went wrong on our side. Please try again in a moment.</p></div>",
            site_header(site, false),
            escape(message)
        ),
    )
}

/// The maintenance page: HTML with none of a schedule's or detail's markup.
pub(crate) fn maintenance_page(site: &str) -> String {
    page(
        &format!("Scheduled maintenance | {}", escape(site)),
        "maintenance",
        &format!(
            "<div class=\"maintenance-box\"><img src=\"/assets/logo.png\" alt=\"{0}\">\n<h2>We&rsquo;ll be right back</h2>\n<p>{0} is down for scheduled maintenance. Please check back in a few minutes.</p></div>",
            escape(site)
        ),
    )
}

/// The landing page after login.
pub(crate) fn dashboard_page(site: &str) -> String {
    page(
        &format!("Dashboard | {}", escape(site)),
        "dashboard",
        &format!(
            "{}\n<div class=\"dashboard\"><h2>Welcome back</h2>\n<ul class=\"quick-links\"><li><a href=\"/schedule\">Today&rsquo;s schedule</a></li><li><a href=\"/clients\">Clients</a></li></ul></div>",
            site_header(site, true)
        ),
    )
}

/// The path of a week page (no zero padding).
pub(crate) fn week_path(start: NaiveDate) -> String {
    format!(
        "/schedule/days-7/{}/{}/{}",
        start.year(),
        start.month(),
        start.day()
    )
}

/// The path of an appointment's detail page for one occurrence.
pub(crate) fn detail_path(id: &str, start: DateTime<Utc>) -> String {
    format!("/schedule/a/{}/{}", id, start.timestamp())
}

/// How a schedule page arranges its cards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    Grid,
    Columns,
    Agenda,
}

/// How a schedule page marks its "next" link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pager {
    /// `.pagination a.next`.
    ClassNext,
    /// `a[rel="next"]`, no `next` class.
    RelNext,
    /// A Bootstrap pager: `li.next > a.next-week[rel="next"]`.
    Bootstrap,
}

/// One card on a schedule page: an appointment's occurrence.
pub(crate) struct Card<'a> {
    pub(crate) a: &'a Appointment,
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
}

/// Everything a schedule page needs besides its cards.
pub(crate) struct WeekPage<'a> {
    pub(crate) site: &'a str,
    pub(crate) tz: Tz,
    pub(crate) start: NaiveDate,
    pub(crate) layout: Layout,
    pub(crate) pager: Pager,
    pub(crate) next_href: String,
    pub(crate) prev_href: String,
    /// Cards without their `/schedule/a/` links (a changed layout).
    pub(crate) unlinked: bool,
}

/// The list's time string, in the reference's forms (no year).
pub(crate) fn list_time(style: ListTime, start: DateTime<Tz>, end: DateTime<Tz>) -> String {
    let same_day = start.date_naive() == end.date_naive();
    let clock = |t: DateTime<Tz>| t.format("%-I:%M%P").to_string();
    match style {
        ListTime::PickUp => format!(
            "Pick-Up ( {} {} - {} {} )",
            start.format("%-I"),
            AmPm::of(start).lower(),
            end.format("%-I"),
            AmPm::of(end).lower()
        ),
        ListTime::Labels if same_day => format!(
            "{}, {} - {}",
            start.format("%b %d"),
            AmPm::of(start).upper(),
            AmPm::of(end).upper()
        ),
        ListTime::Labels => format!(
            "{}, {} - {}, {}",
            start.format("%b %d"),
            AmPm::of(start).upper(),
            end.format("%b %d"),
            AmPm::of(end).upper()
        ),
        ListTime::Clock if same_day => format!(
            "{}, {} - {}",
            start.format("%b %-d"),
            clock(start),
            clock(end)
        ),
        ListTime::Clock => format!("{}, {} ...", start.format("%b %-d"), clock(start)),
    }
}

fn card(c: &Card<'_>, page: &WeekPage<'_>, noise: &mut Noise<'_>) -> String {
    let a = c.a;
    let tz = page.tz;
    let mut m = Mix::new(a.style ^ 0xca4d);
    let href = detail_path(&a.id, c.start);
    let mut pairs = vec![
        (
            "class".to_string(),
            format!(
                "day-event a-{}{}{}",
                escape(&a.id),
                [" ", " event-confirmed", " ev-1 has-pets", ""][m.below(4)].trim_end(),
                noise.class()
            ),
        ),
        ("data-id".to_string(), escape(&a.id)),
        ("data-ts".to_string(), c.start.timestamp().to_string()),
        ("data-event_type".to_string(), escape(&a.event_type)),
        (
            "data-status".to_string(),
            status_code(&a.status).to_string(),
        ),
    ];
    if !page.unlinked {
        pairs.push(("href".to_string(), href));
    } else {
        pairs.push((
            "data-url".to_string(),
            format!("/appointments/{}", escape(&a.id)),
        ));
        pairs.push(("role".to_string(), "button".to_string()));
    }
    let shuffle = m.chance(60);
    let attributes = attrs(&mut pairs, &mut m, shuffle);
    let (s, e) = (c.start.with_timezone(&tz), c.end.with_timezone(&tz));
    let time = escape(&list_time(a.list_time, s, e));
    let title = if a.title_js {
        String::new()
    } else {
        text(&a.title_text(tz), a.messy, &mut m)
    };
    let mut pets = String::new();
    for (i, p) in a.pets.iter().enumerate() {
        let extra = [
            format!(" pet-{}", i + 1),
            String::new(),
            format!(" pet-{} primary", i + 1),
            " dog".to_string(),
        ][m.below(4)]
        .clone();
        let _ = write!(
            pets,
            "<span class=\"event-pet{extra}\">{}</span>",
            text(&p.name, a.messy, &mut m)
        );
    }
    if a.pets.is_empty() {
        pets.push_str("<span class=\"event-pet\"></span>");
    }
    let ws = noise.ws();
    let parts = [
        format!("<div class=\"time\"><div class=\"day-event-time\">{time}</div></div>"),
        format!("<div class=\"day-event-title\">{title}</div>"),
        format!(
            "<span class=\"pets\">{ws}<span class=\"event-client-wrapper\"><span class=\"event-client\">{}</span></span>{ws}<div class=\"event-pets\">{pets}</div></span>",
            text(&a.client.name, a.messy, &mut m)
        ),
    ];
    let order: &[usize] = [&[0, 1, 2][..], &[1, 0, 2], &[2, 0, 1], &[0, 2, 1]][m.below(4)];
    let inner: String = order
        .iter()
        .map(|i| format!("\n  {ws}{}", parts[*i]))
        .collect();
    let tag = if page.unlinked { "div" } else { "a" };
    format!("<{tag}{attributes}>{inner}\n</{tag}>")
}

fn pager(p: &WeekPage<'_>) -> String {
    let (prev, next) = (escape(&p.prev_href), escape(&p.next_href));
    match p.pager {
        Pager::ClassNext => format!(
            "<div class=\"pagination\"><a class=\"prev\" href=\"{prev}\">&laquo; Previous</a> <a class=\"next\" href=\"{next}\">Next &raquo;</a></div>"
        ),
        Pager::RelNext => format!(
            "<div class=\"week-nav btn-group\"><a rel=\"prev\" class=\"btn btn-default\" href=\"{prev}\">&lsaquo;</a> <a class=\"btn btn-default\" href=\"/schedule\">Today</a> <a rel=\"next\" class=\"btn btn-default\" href=\"{next}\">&rsaquo;</a></div>"
        ),
        Pager::Bootstrap => format!(
            "<ul class=\"pager\"><li class=\"previous\"><a href=\"{prev}\" class=\"prev-week\">&larr; Prev</a></li><li class=\"next\"><a class=\"next-week\" rel=\"next\" href=\"{next}\">Next &rarr;</a></li></ul>"
        ),
    }
}

/// A seven-day schedule page; `days` holds each day's cards.
pub(crate) fn week_page(
    p: &WeekPage<'_>,
    days: &[(NaiveDate, Vec<Card<'_>>)],
    noise: &mut Noise<'_>,
) -> String {
    let first = p.start;
    let last = days.last().map_or(first, |(d, _)| *d);
    let mut body = String::new();
    body.push_str(&site_header(p.site, true));
    body.push('\n');
    body.push_str(&noise.banner());
    body.push_str(&noise.script());
    let _ = write!(
        body,
        "\n<div id=\"content\" class=\"page-schedule\">\n<div class=\"toolbar\"><span class=\"range-label\">{} &ndash; {}</span> {}</div>\n",
        first.format("%b %-d"),
        last.format("%b %-d"),
        pager(p)
    );
    match p.layout {
        Layout::Grid => {
            body.push_str("<table class=\"table cal-week\">\n<thead><tr>");
            for (day, _) in days {
                let _ = write!(
                    body,
                    "<th class=\"day-head\">{}<br><small>{}/{}</small></th>",
                    day.format("%a"),
                    day.month(),
                    day.day()
                );
            }
            body.push_str("</tr></thead>\n<tbody><tr>\n");
            for (day, cards) in days {
                let _ = write!(
                    body,
                    "<td class=\"day\" data-date=\"{day}\">{}",
                    noise.comment()
                );
                if cards.is_empty() {
                    body.push_str("&nbsp;");
                }
                for c in cards {
                    body.push_str(&card(c, p, noise));
                }
                body.push_str("</td>\n");
            }
            body.push_str("</tr></tbody>\n</table>\n");
        }
        Layout::Columns => {
            body.push_str("<div class=\"week\">\n");
            for (day, cards) in days {
                let _ = write!(
                    body,
                    "<section class=\"day-column\" id=\"d-{day}\"><h4 class=\"day-name\">{}</h4>{}<div class=\"events\">",
                    day.format("%A, %B %-d"),
                    noise.comment()
                );
                for c in cards {
                    body.push('\n');
                    body.push_str(&card(c, p, noise));
                }
                if cards.is_empty() {
                    body.push_str("<p class=\"no-events\">No appointments</p>");
                }
                body.push_str("</div></section>\n");
            }
            body.push_str("</div>\n");
        }
        Layout::Agenda => {
            body.push_str("<div class=\"agenda\">\n");
            let mut seen: Vec<(&str, i64)> = Vec::new();
            let mut any = false;
            for (day, cards) in days {
                let fresh: Vec<&Card<'_>> = cards
                    .iter()
                    .filter(|c| {
                        let key = (c.a.id.as_str(), c.start.timestamp());
                        if seen.contains(&key) {
                            false
                        } else {
                            seen.push(key);
                            true
                        }
                    })
                    .collect();
                if fresh.is_empty() {
                    continue;
                }
                any = true;
                let _ = write!(
                    body,
                    "<h3 class=\"agenda-date\">{}</h3>\n<ul class=\"agenda-items\">",
                    day.format("%A, %B %-d")
                );
                for c in fresh {
                    let _ = write!(body, "\n<li>{}</li>", card(c, p, noise));
                }
                body.push_str("\n</ul>\n");
            }
            if !any {
                body.push_str("<p class=\"agenda-empty\">Nothing scheduled.</p>\n");
            }
            body.push_str("</div>\n");
        }
    }
    body.push_str(&pager(p));
    body.push_str("\n</div>\n");
    body.push_str(&noise.script());
    page(
        &format!("Schedule | {}", escape(p.site)),
        "schedule days-7",
        &body,
    )
}

/// Everything a detail page needs besides the appointment.
pub(crate) struct DetailPage<'a> {
    pub(crate) site: &'a str,
    pub(crate) tz: Tz,
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    /// The price block keeps its service names but loses its price divs.
    pub(crate) drop_price_divs: bool,
    /// `Total $1,250` instead of `Total $1250`.
    pub(crate) thousands: bool,
}

/// `750`, `812.50`, `-12.50` (dollars from cents).
pub(crate) fn dollars(cents: i64, thousands: bool) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let whole = (abs / 100).to_string();
    let whole = if thousands {
        let mut g = String::new();
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i).is_multiple_of(3) {
                g.push(',');
            }
            g.push(c);
        }
        g
    } else {
        whole
    };
    if abs.is_multiple_of(100) {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{:02}", abs % 100)
    }
}

/// `275.00` (the `data-amount` form: dollars, two decimals).
pub(crate) fn amount(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// `(Scheduled: 10 d)`: local days between check-in and check-out, or hours
/// within one day.
pub(crate) fn duration(start: DateTime<Utc>, end: DateTime<Utc>, tz: Tz) -> String {
    let days =
        (end.with_timezone(&tz).date_naive() - start.with_timezone(&tz).date_naive()).num_days();
    if days >= 1 {
        format!("{days} d")
    } else {
        let minutes = (end - start).num_minutes().max(0);
        if minutes >= 60 {
            format!("{} h", (minutes + 30) / 60)
        } else {
            format!("{minutes} m")
        }
    }
}

fn field_pairs(fields: &[Field], messy: bool, m: &mut Mix) -> String {
    let mut out = String::new();
    for f in fields {
        let br = ["<br>", "<br/>", "<br />", "<br>\n        "][m.below(4)];
        let value: Vec<String> = f.lines.iter().map(|l| text(l, messy, m)).collect();
        let ws = ["", "\n      ", " "][m.below(3)];
        let _ = write!(
            out,
            "\n    <div class=\"field\"><div class=\"field-label\">{}</div>{ws}<div class=\"field-value\">{}</div></div>",
            escape(&f.label),
            value.join(br)
        );
    }
    out
}

fn price_block(a: &Appointment, d: &DetailPage<'_>, m: &mut Mix) -> String {
    let Some(p) = &a.pricing else {
        return String::new();
    };
    let total = p.total_cents();
    let anchor_class = [
        "btn toggle-field text quote",
        "toggle-field btn text quote",
        "btn btn-link quote text toggle-field",
    ][m.below(3)];
    let mut out = format!(
        "\n  <fieldset id=\"confirm-price\" class=\"confirm-price{}\">\n    <legend>Price</legend>\n    <div class=\"quote-line\"><a class=\"{anchor_class}\" href=\"#\" data-toggle=\"price-detail\">Total ${} <i class=\"fa fa-caret-down\"></i></a>",
        [" collapsed", "", " invoiced"][m.below(3)],
        dollars(total, d.thousands)
    );
    if m.chance(40) {
        let paid = (total / 4).max(0);
        let _ = write!(
            out,
            " <span class=\"balance\">Deposit ${} &middot; Balance due ${}</span>",
            dollars(paid, d.thousands),
            dollars(total - paid, d.thousands)
        );
    }
    let _ = write!(
        out,
        "</div>\n    <div id=\"price-detail\" class=\"pricing-table pets-{}\">",
        p.pets()
    );
    let mut k = 3 + m.below(5);
    for line in &p.lines {
        let _ = write!(
            out,
            "\n      <div class=\"service-line\"><span class=\"service-name\">{}</span>",
            text(&line.service, a.messy, m)
        );
        if !d.drop_price_divs {
            for (rate, qty) in &line.per_pet {
                k += 1;
                let cents = PriceLine::amount_cents(*rate, *qty);
                let class = [
                    format!("price p-{k} has-outstanding"),
                    format!("price p-{k}"),
                    format!("p-{k} price"),
                    "price".to_string(),
                ][m.below(4)]
                .clone();
                let mut pairs = vec![
                    ("class".to_string(), class),
                    ("data-rate".to_string(), rate.to_string()),
                    ("data-qty".to_string(), qty.to_string()),
                    ("data-amount".to_string(), amount(cents)),
                ];
                let shuffle = m.chance(50);
                let _ = write!(
                    out,
                    "<div{}>${}</div>",
                    attrs(&mut pairs, m, shuffle),
                    amount(cents)
                );
            }
        }
        out.push_str("</div>");
    }
    out.push_str("\n    </div>\n  </fieldset>");
    out
}

/// An appointment's detail page, for one occurrence.
pub(crate) fn detail_page(a: &Appointment, d: &DetailPage<'_>, noise: &mut Noise<'_>) -> String {
    let tz = d.tz;
    let mut m = Mix::new(a.style ^ 0xde7a);
    let msy = a.messy;
    let title = a.title_text(tz);
    let mut body = String::new();
    body.push_str(&site_header(d.site, true));
    body.push_str(&noise.banner());
    body.push_str(&noise.script());
    let _ = write!(
        body,
        "\n<div class=\"container appt-page\">\n<div id=\"appointment\" class=\"appointment{}\" data-appointment=\"{}\">",
        noise.class(),
        escape(&a.id)
    );
    // Title and status.
    body.push_str("\n  <div class=\"appt-header\">");
    if a.h1 {
        let _ = write!(
            body,
            "\n  <h1 class=\"appt-title\">{}</h1>",
            text(&title, msy, &mut m)
        );
    } else {
        body.push_str("\n  <div class=\"appt-type-icon icon-moon\"></div>");
    }
    let status = text(&a.status, msy, &mut m);
    let code = status_code(&a.status);
    let _ = write!(
        body,
        "\n  {}",
        match m.below(3) {
            0 => format!(
                "<a href=\"#\" class=\"appt-change-status btn btn-xs\" data-status=\"{code}\"><i class=\"icon-status\"></i> {status}</a>"
            ),
            1 => format!("<span class=\"label appt-change-status\">{status}</span>"),
            _ => format!(
                "<a class=\"status-{code} appt-change-status\" href=\"#status\">{status} <i class=\"fa fa-caret-down\"></i></a>"
            ),
        }
    );
    body.push_str("\n  </div>");
    // When: timestamps, AM/PM labels, duration.
    let (s, e) = (d.start.with_timezone(&tz), d.end.with_timezone(&tz));
    let labels = format!(
        "<span class=\"date\">{}</span> <span class=\"time the start\"><span class=\"time-label\" title=\"\">{}</span>, </span> <span class=\"to\">to</span> <span class=\"date\">{}</span> <span class=\"time the\"><span class=\"time-label\" title=\"\">{}</span>, </span>",
        s.format("%a, %b %-d"),
        AmPm::of(s).upper(),
        e.format("%a, %b %-d"),
        AmPm::of(e).upper()
    );
    let mut when = vec![
        ("id".to_string(), "when-wrapper".to_string()),
        ("class".to_string(), "when".to_string()),
        (
            "data-start_scheduled".to_string(),
            d.start.timestamp().to_string(),
        ),
        (
            "data-end_scheduled".to_string(),
            d.end.timestamp().to_string(),
        ),
    ];
    let shuffle = m.chance(50);
    let when = attrs(&mut when, &mut m, shuffle);
    let dur = format!(
        "<span class=\"scheduled-duration\">(Scheduled: {})</span>",
        duration(d.start, d.end, tz)
    );
    let _ = write!(
        body,
        "\n  {}",
        match m.below(3) {
            0 => format!(
                "<div{when}>\n    <div class=\"event-time-scheduled\">{labels}</div>\n    {dur}\n  </div>"
            ),
            1 => format!("<div{when}>\n    {labels}\n    {dur}\n  </div>"),
            _ => format!(
                "<div class=\"event-time-scheduled\">{labels}</div>\n  <div{when}>{dur}</div>"
            ),
        }
    );
    // Client.
    let c = &a.client;
    body.push_str("\n  <div class=\"client-info\">");
    let _ = write!(
        body,
        "\n    {}",
        if m.chance(50) {
            format!(
                "<a class=\"event-client\" href=\"/clients/{}\">{}</a>",
                m.next() % 90_000 + 10_000,
                text(&c.name, msy, &mut m)
            )
        } else {
            format!(
                "<span class=\"event-client\">{}</span>",
                text(&c.name, msy, &mut m)
            )
        }
    );
    if let Some(email) = &c.email {
        let eq = if m.chance(30) { "= " } else { "=" };
        let _ = write!(
            body,
            "\n    <button type=\"button\" class=\"btn message-client\" data-emails{eq}\"{}\">Message</button>",
            attr(email, msy, &mut m)
        );
    }
    if let Some(phone) = &c.phone {
        let shown = phone
            .strip_prefix("+1")
            .filter(|p| p.len() == 10)
            .map(|p| format!("({}) {}-{}", &p[..3], &p[3..6], &p[6..]))
            .unwrap_or_else(|| phone.clone());
        let _ = write!(
            body,
            "\n    {}",
            if m.chance(50) {
                format!(
                    "<a class=\"mobile-contact\" data-value=\"{phone}\" href=\"tel:{phone}\">{shown}</a>"
                )
            } else {
                format!(
                    "<a href=\"sms:{phone}\" data-value=\"{phone}\" class=\"mobile-contact\">{shown}</a>"
                )
            }
        );
    }
    if let Some(address) = &c.address {
        let _ = write!(
            body,
            "\n    <div class=\"client-address\" data-address=\"{}\"><i class=\"icon-map\"></i> {}</div>",
            attr(address, msy, &mut m),
            text(address, msy, &mut m)
        );
    }
    body.push_str("\n  </div>");
    // Booking-level fields, then the pets with theirs.
    if !a.access.is_empty() {
        let _ = write!(
            body,
            "\n  <div class=\"appt-fields\">{}\n  </div>",
            field_pairs(&a.access, msy, &mut m)
        );
    }
    body.push_str(&noise.comment());
    body.push_str("\n  <div class=\"appt-pets\">");
    for (i, p) in a.pets.iter().enumerate() {
        let extra = [
            format!(" pet-{}", i + 1),
            String::new(),
            if i == 0 {
                " primary".to_string()
            } else {
                " secondary".to_string()
            },
        ][m.below(3)]
        .clone();
        let _ = write!(
            body,
            "\n   <div class=\"pet-card\"><span class=\"event-pet{extra}\">{}</span><div class=\"pet-fields\">{}\n   </div></div>",
            text(&p.name, msy, &mut m),
            field_pairs(&p.fields, msy, &mut m)
        );
    }
    body.push_str("\n  </div>");
    // Notes.
    body.push_str("\n  <div class=\"notes-wrapper\"><h3>Notes</h3>");
    if a.notes.is_empty() {
        body.push_str("<p class=\"empty\">No notes yet.</p>");
    }
    for (i, n) in a.notes.iter().enumerate() {
        let class = if m.chance(25) { "note pinned" } else { "note" };
        let _ = write!(
            body,
            "\n    <div class=\"note-item\"><div class=\"{class}\">{}</div><span class=\"note-meta\">Staff &middot; #{}</span></div>",
            text(n, msy, &mut m),
            i + 1
        );
    }
    body.push_str("\n  </div>");
    body.push_str(&price_block(a, d, &mut m));
    body.push_str(
        "\n</div>\n</div>\n<footer class=\"site-footer\">&copy; Pet care software</footer>",
    );
    body.push_str(&noise.script());
    page(
        &format!("{} | {}", escape(&title), escape(d.site)),
        "appointment-view",
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_forms() {
        assert_eq!(dollars(75_000, false), "750");
        assert_eq!(dollars(81_250, false), "812.50");
        assert_eq!(dollars(125_000, true), "1,250");
        assert_eq!(dollars(-1_250, false), "-12.50");
        assert_eq!(amount(27_500), "275.00");
        assert_eq!(amount(5), "0.05");
    }

    #[test]
    fn escape_named() {
        assert_eq!(
            escape("A & <b> \"q\" 'x'"),
            "A &amp; &lt;b&gt; &quot;q&quot; &#39;x&#39;"
        );
    }

    #[test]
    fn list_times_take_the_reference_forms() {
        use super::super::data::local;
        let tz = chrono_tz::America::New_York;
        let at = |m, d, min| {
            local(tz, NaiveDate::from_ymd_opt(2026, m, d).unwrap(), min).with_timezone(&tz)
        };
        assert_eq!(
            list_time(
                ListTime::Clock,
                at(2, 9, 16 * 60 + 58),
                at(2, 9, 19 * 60 + 24)
            ),
            "Feb 9, 4:58pm - 7:24pm"
        );
        assert_eq!(
            list_time(ListTime::Clock, at(2, 13, 11 * 60 + 49), at(2, 15, 600)),
            "Feb 13, 11:49am ..."
        );
        assert_eq!(
            list_time(ListTime::Labels, at(2, 27, 480), at(2, 27, 1000)),
            "Feb 27, AM - PM"
        );
        assert_eq!(
            list_time(ListTime::Labels, at(4, 1, 480), at(4, 13, 1000)),
            "Apr 01, AM - Apr 13, PM"
        );
        assert_eq!(
            list_time(ListTime::PickUp, at(4, 1, 540), at(4, 1, 600)),
            "Pick-Up ( 9 am - 10 am )"
        );
    }
}
