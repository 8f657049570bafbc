//! Tests of the booking-site simulator against `reference/booking-site.md`,
//! through real HTTP, reading pages with an HTML parser the way the
//! reference describes them (no adapter types).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use scraper::{ElementRef, Html, Node, Selector};
use sync_sim::booking::{
    BookingEdit, BookingSim, BookingSimConfig, ExpiredStyle, Faults, Horizon, Latency, Mutation,
    MutationKind, MutationPlan, NewBooking, NonBoardingReason, PageFaults, PriceLineEdit,
    RateCheck, RunningBookingSim, ScheduleLayout, SimBoarding, TitleDates, UsernameField,
};

// --- Helpers: a client that reads pages as the reference says ------------

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn config(days: u32) -> BookingSimConfig {
    BookingSimConfig {
        start: day(2026, 3, 2),
        days,
        default_week_start: Some(day(2026, 3, 2)),
        session_ttl: Duration::from_secs(120),
        ..BookingSimConfig::default()
    }
}

async fn start(cfg: BookingSimConfig) -> RunningBookingSim {
    BookingSim::start(cfg).await.unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

/// Text with whitespace (NBSP included) collapsed and trimmed.
fn canon(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn text(el: ElementRef<'_>) -> String {
    canon(&el.text().collect::<String>())
}

/// An element's text with `<br>` as line breaks (other whitespace, line
/// breaks in the source included, is a space), each line canonical.
fn lines(el: ElementRef<'_>) -> String {
    const BR: char = '\u{1}';
    let mut raw = String::new();
    for node in el.descendants() {
        match node.value() {
            Node::Text(t) => raw.push_str(t),
            Node::Element(e) if e.name() == "br" => raw.push(BR),
            _ => {}
        }
    }
    raw.split(BR)
        .map(canon)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

struct LoginPage {
    hidden: Vec<(String, String)>,
    user: String,
    password: String,
}

fn read_login_form(body: &str) -> Option<LoginPage> {
    let doc = Html::parse_document(body);
    let form = doc.select(&sel("form")).next()?;
    let mut hidden = Vec::new();
    let mut user = None;
    let mut password = None;
    for input in form.select(&sel("input")) {
        let v = input.value();
        let name = v.attr("name").unwrap_or_default().to_string();
        match v.attr("type").unwrap_or("text") {
            "hidden" => hidden.push((name, v.attr("value").unwrap_or_default().to_string())),
            "text" | "email" if user.is_none() => user = Some(name),
            "password" => password = Some(name),
            _ => {}
        }
    }
    Some(LoginPage {
        hidden,
        user: user?,
        password: password?,
    })
}

async fn login_as(c: &reqwest::Client, sim: &RunningBookingSim, pass: &str) -> reqwest::Response {
    let base = sim.base_url();
    let page = c.get(format!("{base}/login")).send().await.unwrap();
    assert!(
        page.headers().contains_key("set-cookie"),
        "GET /login sets a cookie"
    );
    let form = read_login_form(&page.text().await.unwrap()).expect("login form");
    let mut fields = form.hidden.clone();
    fields.push((form.user, sim.config().username.clone()));
    fields.push((form.password, pass.to_string()));
    c.post(format!("{base}/login"))
        .form(&fields)
        .send()
        .await
        .unwrap()
}

async fn login(c: &reqwest::Client, sim: &RunningBookingSim) {
    let r = login_as(c, sim, &sim.config().password.clone()).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    assert!(r.headers().contains_key("set-cookie"));
}

async fn get(c: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

fn is_login_page(body: &str) -> bool {
    read_login_form(body).is_some()
}

/// The schedule links of a page, by the reference: every `<a>` whose href
/// contains `/schedule/a/`.
#[derive(Debug, Clone)]
struct Link {
    id: String,
    ts: i64,
    event_type: Option<String>,
    status: Option<String>,
    client: Option<String>,
    time: Option<String>,
    title: Option<String>,
    pet_classes: Vec<String>,
    parent: String,
    html: String,
}

fn read_links(body: &str) -> Vec<Link> {
    let doc = Html::parse_document(body);
    doc.select(&sel("a[href*=\"/schedule/a/\"]"))
        .map(|a| {
            let href = a.value().attr("href").unwrap_or_default();
            let rest = href.split("/schedule/a/").nth(1).unwrap_or_default();
            let mut parts = rest.split('/');
            let id = parts.next().unwrap_or_default().to_string();
            let ts = parts.next().unwrap_or_default();
            assert!(
                !ts.is_empty() && ts.bytes().all(|b| b.is_ascii_digit()),
                "timestamp is digits: {href}"
            );
            let one = |s: &str| a.select(&sel(s)).next().map(text);
            let parent = a
                .parent()
                .and_then(ElementRef::wrap)
                .map(|p| p.value().name().to_string())
                .unwrap_or_default();
            Link {
                id,
                ts: ts.parse().unwrap(),
                event_type: a.value().attr("data-event_type").map(str::to_string),
                status: a.value().attr("data-status").map(str::to_string),
                client: one(".event-client"),
                time: one(".day-event-time"),
                title: one(".day-event-title"),
                pet_classes: a
                    .select(&sel(".event-pet"))
                    .map(|p| p.value().attr("class").unwrap_or_default().to_string())
                    .collect(),
                parent,
                html: a.html(),
            }
        })
        .collect()
}

/// The "next" link, by the reference: an `<a>` whose class contains `next`,
/// or `rel="next"`.
fn next_link(body: &str) -> Option<String> {
    let doc = Html::parse_document(body);
    doc.select(&sel("a[href]"))
        .find(|a| {
            let v = a.value();
            v.attr("rel") == Some("next")
                || v.attr("class")
                    .is_some_and(|c| c.split_whitespace().any(|c| c.contains("next")))
        })
        .and_then(|a| a.value().attr("href").map(str::to_string))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn is_clock(s: &str) -> bool {
    let (t, ap) = s.split_at(s.len().saturating_sub(2));
    (ap == "am" || ap == "pm")
        && t.split_once(':').is_some_and(|(h, m)| {
            h.parse::<u32>().is_ok_and(|h| (1..=12).contains(&h))
                && m.len() == 2
                && m.parse::<u32>().is_ok_and(|m| m < 60)
        })
}

fn is_month_day(s: &str) -> bool {
    s.split_once(' ').is_some_and(|(m, d)| {
        MONTHS.contains(&m) && (1..=2).contains(&d.len()) && d.parse::<u32>().is_ok()
    })
}

/// One of the reference's time strings.
fn time_form(s: &str) -> Option<&'static str> {
    if let Some(inner) = s
        .strip_prefix("Pick-Up ( ")
        .and_then(|r| r.strip_suffix(" )"))
    {
        let ok = inner.split(" - ").all(|p| {
            p.split_once(' ')
                .is_some_and(|(h, ap)| h.parse::<u32>().is_ok() && (ap == "am" || ap == "pm"))
        });
        return ok.then_some("pick-up");
    }
    let (date, rest) = s.split_once(", ")?;
    if !is_month_day(date) {
        return None;
    }
    if let Some(t) = rest.strip_suffix(" ...") {
        return is_clock(t).then_some("open");
    }
    let (a, b) = rest.split_once(" - ")?;
    let label = |x: &str| x == "AM" || x == "PM";
    if label(a) && label(b) {
        return Some("labels, one day");
    }
    if label(a) {
        let (d2, l2) = b.split_once(", ")?;
        return (is_month_day(d2) && label(l2)).then_some("labels");
    }
    (is_clock(a) && is_clock(b)).then_some("clock, one day")
}

/// A detail page read as the reference describes it.
#[derive(Debug, Default)]
struct Detail {
    service: String,
    has_h1: bool,
    start: i64,
    end: i64,
    labels: Vec<String>,
    status: String,
    client: String,
    email: Option<String>,
    phone: Option<String>,
    address: Option<String>,
    pets: Vec<String>,
    duration: String,
    fields: BTreeMap<String, String>,
    notes: Option<String>,
    total: Option<f64>,
    /// (service, rate, quantity, amount summed over the pets)
    lines: Vec<(String, f64, f64, f64)>,
    service_names: usize,
    price_divs: usize,
}

const FIELD_KEYS: [&str; 11] = [
    "Access Home or Apartment",
    "Drop Off",
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

fn read_detail(body: &str, site: &str) -> Detail {
    let doc = Html::parse_document(body);
    let one = |s: &str| doc.select(&sel(s)).next();
    let mut d = Detail::default();
    let h1 = one("h1");
    d.has_h1 = h1.is_some();
    d.service = match h1 {
        Some(h) => text(h),
        None => {
            let t = text(one("title").unwrap());
            t.strip_suffix(&format!(" | {site}"))
                .unwrap_or(&t)
                .to_string()
        }
    };
    let when = one("#when-wrapper").expect("#when-wrapper");
    d.start = when
        .value()
        .attr("data-start_scheduled")
        .unwrap()
        .parse()
        .unwrap();
    d.end = when
        .value()
        .attr("data-end_scheduled")
        .unwrap()
        .parse()
        .unwrap();
    let block = one(".event-time-scheduled").unwrap_or(when);
    d.labels = block.select(&sel(".time-label")).map(text).collect();
    d.status = text(one(".appt-change-status").unwrap());
    d.client = text(one(".event-client").unwrap());
    d.email = one("[data-emails]").and_then(|e| e.value().attr("data-emails").map(canon));
    d.phone = one(".mobile-contact").and_then(|e| e.value().attr("data-value").map(str::to_string));
    d.address = one("[data-address]").and_then(|e| e.value().attr("data-address").map(canon));
    d.pets = doc.select(&sel(".event-pet")).map(text).collect();
    let dur = text(one(".scheduled-duration").unwrap());
    d.duration = dur
        .strip_prefix("(Scheduled:")
        .and_then(|r| r.strip_suffix(')'))
        .map(canon)
        .unwrap_or_default();
    for label in doc.select(&sel(".field-label")) {
        let label_text = text(label);
        let Some(value) = label
            .next_siblings()
            .find_map(ElementRef::wrap)
            .filter(|v| {
                v.value()
                    .has_class("field-value", scraper::CaseSensitivity::CaseSensitive)
            })
        else {
            continue;
        };
        for key in FIELD_KEYS {
            if label_text.contains(key) {
                d.fields
                    .entry(key.to_string())
                    .or_insert_with(|| lines(value));
            }
        }
    }
    let notes: Vec<String> = doc.select(&sel(".notes-wrapper .note")).map(text).collect();
    d.notes = (!notes.is_empty()).then(|| notes.join("\n"));
    if let Some(fs) = one("fieldset#confirm-price") {
        let anchor = fs.select(&sel("a.toggle-field.text.quote")).next().unwrap();
        let t = text(anchor);
        let num: String = t
            .split('$')
            .nth(1)
            .unwrap()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
            .filter(|c| *c != ',')
            .collect();
        d.total = Some(num.parse().unwrap());
        let names: Vec<String> = fs.select(&sel(".service-name")).map(text).collect();
        let divs: Vec<ElementRef<'_>> = fs.select(&sel("div.price")).collect();
        d.service_names = names.len();
        d.price_divs = divs.len();
        let pets = fs
            .descendants()
            .filter_map(ElementRef::wrap)
            .flat_map(|e| e.value().classes().map(str::to_string).collect::<Vec<_>>())
            .find_map(|c| {
                c.strip_prefix("pets-")
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .unwrap_or(1);
        let attr =
            |e: &ElementRef<'_>, k: &str| -> f64 { e.value().attr(k).unwrap().parse().unwrap() };
        for (i, name) in names.into_iter().enumerate() {
            let group = &divs[(i * pets).min(divs.len())..((i + 1) * pets).min(divs.len())];
            if group.is_empty() {
                continue;
            }
            let amount: f64 = group.iter().map(|e| attr(e, "data-amount")).sum();
            d.lines.push((
                name,
                attr(&group[0], "data-rate") / 100.0,
                attr(&group[0], "data-qty") / 100.0,
                amount,
            ));
        }
    }
    d
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.005
}

fn local_day(t: DateTime<Utc>, tz: Tz) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// The stay a dated title encodes (reference "Dates in the title"):
/// `(month, day)` of check-in and check-out.
fn title_dates(title: &str) -> Option<((u32, u32), (u32, u32))> {
    let bytes = title.as_bytes();
    for (i, _) in title.char_indices() {
        if i > 0 && bytes[i - 1].is_ascii_digit() {
            continue;
        }
        let rest = &title[i..];
        let num = |s: &str| -> (Option<u32>, usize) {
            let n: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
            (n.parse().ok(), n.len())
        };
        let (Some(m1), l1) = num(rest) else { continue };
        let Some(r) = rest[l1..].strip_prefix('/') else {
            continue;
        };
        let (Some(d1), l2) = num(r) else { continue };
        let mut r = &r[l2..];
        for suffix in ["am", "pm", "AM", "PM"] {
            if let Some(x) = r.strip_prefix(suffix) {
                r = x;
            }
        }
        let Some(r) = r.strip_prefix('-') else {
            continue;
        };
        let (Some(a), la) = num(r) else { continue };
        let r2 = &r[la..];
        let end = match r2.strip_prefix('/').map(num) {
            Some((Some(d2), _)) => (a, d2),
            _ if a < d1 => (m1 % 12 + 1, a),
            _ => (m1, a),
        };
        return Some(((m1, d1), end));
    }
    None
}

// --- Login and sessions ------------------------------------------------------

#[tokio::test]
async fn login_needs_the_nonce_the_cookie_and_the_password() {
    for field in [UsernameField::Username, UsernameField::Email] {
        let sim = start(BookingSimConfig {
            username_field: field,
            ..config(14)
        })
        .await;
        let base = sim.base_url();
        let (user, pass) = (sim.config().username.clone(), sim.config().password.clone());

        // The form: hidden inputs, the named username field, a password.
        let (status, body) = get(&client(), &format!("{base}/login")).await;
        assert_eq!(status, StatusCode::OK);
        let form = read_login_form(&body).unwrap();
        assert_eq!(form.user, field.name());
        assert_eq!(form.password, "password");
        assert!(!form.hidden.is_empty());
        assert!(body.contains(&format!(
            "type=\"{}\"",
            if field == UsernameField::Email {
                "email"
            } else {
                "text"
            }
        )));

        // Wrong password: 200, the form again, "incorrect".
        let c = client();
        let r = login_as(&c, &sim, "nope").await;
        assert_eq!(r.status(), StatusCode::OK);
        let body = r.text().await.unwrap();
        assert!(
            body.contains("incorrect") || body.contains("Invalid"),
            "{body}"
        );
        assert!(is_login_page(&body));

        // Without the hidden inputs: "Invalid".
        let c = client();
        c.get(format!("{base}/login")).send().await.unwrap();
        let r = c
            .post(format!("{base}/login"))
            .form(&[(field.name(), user.as_str()), ("password", pass.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.text().await.unwrap().contains("Invalid"));

        // Without the cookie of the GET, the nonce is not accepted.
        let (_, body) = get(&client(), &format!("{base}/login")).await;
        let form = read_login_form(&body).unwrap();
        let mut fields = form.hidden.clone();
        fields.push((form.user.clone(), user.clone()));
        fields.push((form.password.clone(), pass.clone()));
        let r = client()
            .post(format!("{base}/login"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);

        // A nonce is used up by its first POST.
        let c = client();
        let (_, body) = get(&c, &format!("{base}/login")).await;
        let form = read_login_form(&body).unwrap();
        let mut fields = form.hidden.clone();
        fields.push((form.user.clone(), user.clone()));
        fields.push((form.password.clone(), "nope".into()));
        c.post(format!("{base}/login"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        let n = fields.len();
        fields[n - 1].1 = pass.clone();
        let r = c
            .post(format!("{base}/login"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "reused nonce");

        // Success: a 3xx that sets the session cookie; pages open.
        let c = client();
        let r = login_as(&c, &sim, &pass).await;
        assert!(r.status().is_redirection());
        let location = r.headers()["location"].to_str().unwrap().to_string();
        assert!(
            location == "/schedule" || location == "/dashboard",
            "{location}"
        );
        assert!(r.headers().get_all("set-cookie").iter().count() >= 1);
        let (status, body) = get(&c, &format!("{base}/schedule")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!read_links(&body).is_empty());

        let stats = sim.stats();
        assert_eq!(stats.logins, 1);
        assert_eq!(stats.login_failures, 5);
        assert_eq!(stats.login_posts, 6);
        assert_eq!(stats.path("POST /login"), 6);
        assert_eq!(stats.login_gets, 6);
    }
}

#[tokio::test]
async fn pages_need_both_cookies() {
    let sim = start(config(14)).await;
    let base = sim.base_url();
    // Log in by hand, keeping only the POST's cookies.
    let plain = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let page = plain.get(format!("{base}/login")).send().await.unwrap();
    let get_cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let form = read_login_form(&page.text().await.unwrap()).unwrap();
    let mut fields = form.hidden.clone();
    fields.push((form.user, sim.config().username.clone()));
    fields.push((form.password, sim.config().password.clone()));
    let r = plain
        .post(format!("{base}/login"))
        .header("cookie", &get_cookie)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
    let post_cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect();
    let only_post = post_cookies.join("; ");
    let both = format!("{get_cookie}; {only_post}");
    let url = format!("{base}/schedule");
    let r = plain
        .get(&url)
        .header("cookie", &only_post)
        .send()
        .await
        .unwrap();
    let ok_with_post_only =
        r.status() == StatusCode::OK && !is_login_page(&r.text().await.unwrap());
    assert!(!ok_with_post_only, "the GET's cookie is needed too");
    let r = plain
        .get(&url)
        .header("cookie", &both)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!read_links(&r.text().await.unwrap()).is_empty());
}

#[tokio::test]
async fn sessions_expire_in_both_styles() {
    for (style, ttl) in [
        (ExpiredStyle::Redirect, Duration::from_millis(1_500)),
        (ExpiredStyle::LoginFormIn200, Duration::from_millis(400)),
        (ExpiredStyle::Mixed, Duration::from_millis(400)),
    ] {
        let sim = start(BookingSimConfig {
            expired_style: style,
            session_ttl: ttl,
            ..config(14)
        })
        .await;
        let c = client();
        let url = format!("{}/schedule/days-7/2026/3/2", sim.base_url());
        let mut answers = Vec::new();
        for _ in 0..2 {
            login(&c, &sim).await;
            let (status, body) = get(&c, &url).await;
            assert_eq!(status, StatusCode::OK);
            assert!(!read_links(&body).is_empty());
            tokio::time::sleep(ttl + Duration::from_millis(150)).await;
            let r = c.get(&url).send().await.unwrap();
            let status = r.status();
            let location = r
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string());
            let body = r.text().await.unwrap();
            if status == StatusCode::OK {
                assert!(is_login_page(&body), "a login form in the 200");
                assert!(read_links(&body).is_empty());
            } else {
                assert!(status.is_redirection(), "{status}");
                assert!(location.unwrap().starts_with("/login"));
            }
            answers.push(status);
        }
        match style {
            ExpiredStyle::Redirect => assert!(answers.iter().all(|s| s.is_redirection())),
            ExpiredStyle::LoginFormIn200 => assert!(answers.iter().all(|s| *s == StatusCode::OK)),
            ExpiredStyle::Mixed => assert_ne!(answers[0], answers[1]),
        }
        let stats = sim.stats();
        assert_eq!(stats.session_expiries, 2, "{style:?}");
        assert_eq!(stats.logins, 2);
        assert_eq!(stats.unauthenticated, 2);
    }
}

#[tokio::test]
async fn expire_sessions_ends_live_sessions_and_no_session_is_no_expiry() {
    let sim = start(config(14)).await;
    let url = format!("{}/schedule", sim.base_url());
    let (status, body) = get(&client(), &url).await;
    assert!(status.is_redirection() || is_login_page(&body));
    assert_eq!(sim.stats().session_expiries, 0);
    assert_eq!(sim.stats().unauthenticated, 1);

    let c = client();
    login(&c, &sim).await;
    assert_eq!(get(&c, &url).await.0, StatusCode::OK);
    sim.expire_sessions();
    let (status, body) = get(&c, &url).await;
    assert!(status.is_redirection() || is_login_page(&body), "{status}");
    assert_eq!(sim.stats().session_expiries, 1);
    login(&c, &sim).await;
    assert_eq!(get(&c, &url).await.0, StatusCode::OK);
}

// --- Schedule pages -------------------------------------------------------------

/// The ids the ground truth says are on the week from `start`.
fn expected_ids(sim: &RunningBookingSim, start: NaiveDate) -> BTreeSet<String> {
    let tz = sim.tz();
    let last = start + chrono::Days::new(6);
    let active =
        |i: DateTime<Utc>, o: DateTime<Utc>| local_day(i, tz) <= last && local_day(o, tz) >= start;
    let mut ids: BTreeSet<String> = sim
        .boardings()
        .into_iter()
        .filter(|b| !b.deleted && active(b.check_in, b.check_out.unwrap()))
        .map(|b| b.appointment_id)
        .collect();
    let data_last = sim.config().start + chrono::Days::new(u64::from(sim.config().days) - 1);
    for n in sim.non_boardings() {
        let on = if n.recurring {
            start
                .iter_days()
                .take(7)
                .filter(|d| *d >= sim.config().start && *d <= data_last)
                .any(|d| n.weekdays.contains(&d.weekday()))
        } else {
            active(n.check_in, n.check_out)
        };
        if n.listed && on {
            ids.insert(n.appointment_id);
        }
    }
    ids
}

#[tokio::test]
async fn weeks_list_every_active_appointment_by_its_link() {
    let sim = start(config(42)).await;
    let c = client();
    login(&c, &sim).await;
    let base = sim.base_url();
    let mut parents = BTreeSet::new();
    let mut forms = BTreeSet::new();
    let mut empty_titles = 0;
    let mut extra_pet_classes = 0;
    let mut seen_twice = BTreeSet::new();
    let mut weeks_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut start_day = day(2026, 3, 2);
    for week in 0..5 {
        let path = BookingSim::week_path(start_day);
        assert!(!path.contains("/03/") && !path.contains("/02"), "{path}");
        let (status, body) = get(&c, &format!("{base}{path}")).await;
        assert_eq!(status, StatusCode::OK);
        let links = read_links(&body);
        let ids: BTreeSet<String> = links.iter().map(|l| l.id.clone()).collect();
        assert_eq!(ids, expected_ids(&sim, start_day), "week {start_day}");
        for l in &links {
            assert!(l.event_type.is_some() && l.status.is_some(), "{}", l.html);
            assert!(
                !l.pet_classes.is_empty() && l.client.is_some(),
                "{}",
                l.html
            );
            let time = l.time.clone().expect("day-event-time");
            forms.insert(time_form(&time).unwrap_or_else(|| panic!("time string {time:?}")));
            assert!(!time.contains("2026") && !time.contains("2025"), "{time}");
            let title = l.title.clone().expect("day-event-title");
            assert!(!title.contains("2026"), "{title}");
            empty_titles += usize::from(title.is_empty());
            extra_pet_classes += l
                .pet_classes
                .iter()
                .filter(|c| c.split_whitespace().count() > 1)
                .count();
            parents.insert(l.parent.clone());
        }
        for id in ids {
            *weeks_of.entry(id).or_default() += 1;
        }
        // Several links of one id on a page (recurring, grid days).
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for l in &links {
            *count.entry(l.id.as_str()).or_default() += 1;
        }
        seen_twice.extend(
            count
                .into_iter()
                .filter(|(_, n)| *n > 1)
                .map(|(id, _)| id.to_string()),
        );
        // The next link leads to the next week.
        let next = next_link(&body).expect("next link");
        start_day = start_day + chrono::Days::new(7);
        assert_eq!(next, BookingSim::week_path(start_day), "week {week}");
    }
    assert_eq!(
        forms,
        [
            "clock, one day",
            "labels",
            "labels, one day",
            "open",
            "pick-up"
        ]
        .into_iter()
        .collect(),
        "every time string form"
    );
    assert!(empty_titles > 0, "titles drawn by JavaScript");
    assert!(extra_pet_classes > 0, "event-pet with more classes");
    assert!(parents.len() >= 2, "no one container: {parents:?}");
    assert!(!seen_twice.is_empty());
    // A boarding spanning weeks is on each week it is active in.
    assert!(weeks_of.values().any(|n| *n >= 2));
    // Ids are not always numeric.
    let ids = sim.appointment_ids();
    assert!(ids.iter().any(|i| i.bytes().all(|b| b.is_ascii_digit())));
    assert!(ids.iter().any(|i| !i.bytes().all(|b| b.is_ascii_digit())));
}

#[tokio::test]
async fn week_paths_queries_and_next_links() {
    let sim = start(config(21)).await;
    let c = client();
    login(&c, &sim).await;
    let base = sim.base_url();
    let week = |p: &str| format!("{base}{p}");

    // `/schedule` is the default view; the query is ignored.
    let (_, default) = get(&c, &week("/schedule")).await;
    let (_, first) = get(&c, &week("/schedule/days-7/2026/3/2")).await;
    assert_eq!(default, first);
    let (_, queried) = get(
        &c,
        &week("/schedule/days-7/2026/3/2?start=2026-01-01&end=2026-12-31"),
    )
    .await;
    assert_eq!(queried, first);

    // Seven days from any date, not only from a week's first day.
    let (_, mid) = get(&c, &week("/schedule/days-7/2026/3/5")).await;
    let ids: BTreeSet<String> = read_links(&mid).into_iter().map(|l| l.id).collect();
    assert_eq!(ids, expected_ids(&sim, day(2026, 3, 5)));

    // No zero padding, no impossible dates.
    for p in [
        "/schedule/days-7/2026/03/02",
        "/schedule/days-7/2026/3/02",
        "/schedule/days-7/2026/2/30",
        "/schedule/days-7/2026/13/1",
        "/schedule/days-7/abc/1/1",
        "/schedule/days-7/2026/3",
        "/schedule/days-7/+2026/3/2",
    ] {
        assert_eq!(get(&c, &week(p)).await.0, StatusCode::NOT_FOUND, "{p}");
    }

    // After the data's last day the next link points to the page itself.
    let after = BookingSim::week_path(day(2026, 4, 20));
    let (_, body) = get(&c, &week(&after)).await;
    assert_eq!(next_link(&body).unwrap(), after);
    assert!(read_links(&body).is_empty());

    // Configured: every week links to itself.
    let looping = start(BookingSimConfig {
        self_next_rate: 1.0,
        ..config(21)
    })
    .await;
    let c2 = client();
    login(&c2, &looping).await;
    for d in [2, 9, 16] {
        let p = BookingSim::week_path(day(2026, 3, d));
        let (_, body) = get(&c2, &format!("{}{p}", looping.base_url())).await;
        assert_eq!(next_link(&body).unwrap(), p);
    }
}

#[tokio::test]
async fn every_layout_holds_the_links() {
    for layout in [
        ScheduleLayout::Grid,
        ScheduleLayout::Columns,
        ScheduleLayout::Agenda,
    ] {
        let sim = start(BookingSimConfig {
            schedule_layout: layout,
            ..config(14)
        })
        .await;
        let c = client();
        login(&c, &sim).await;
        let (_, body) = get(&c, &format!("{}/schedule/days-7/2026/3/9", sim.base_url())).await;
        let ids: BTreeSet<String> = read_links(&body).into_iter().map(|l| l.id).collect();
        assert_eq!(ids, expected_ids(&sim, day(2026, 3, 9)), "{layout:?}");
    }
}

// --- Detail pages -------------------------------------------------------------

fn assert_detail(d: &Detail, b: &SimBoarding, tz: Tz) {
    let id = &b.appointment_id;
    assert_eq!(d.service, b.service, "{id} service");
    assert_eq!(d.has_h1, b.has_h1, "{id} h1");
    assert_eq!(d.start, b.check_in.timestamp(), "{id} start");
    assert_eq!(d.end, b.check_out.unwrap().timestamp(), "{id} end");
    assert_eq!(
        d.labels,
        [b.check_in_ampm.clone(), b.check_out_ampm.clone()],
        "{id}"
    );
    assert_eq!(d.status, b.status, "{id} status");
    assert_eq!(d.client, b.client, "{id} client");
    assert_eq!(d.email, b.client_email, "{id} email");
    assert_eq!(d.phone, b.client_phone, "{id} phone");
    assert_eq!(d.address, b.client_address, "{id} address");
    assert_eq!(d.pets, b.pets, "{id} pets");
    assert_eq!(d.duration, b.duration, "{id} duration");
    assert_eq!(d.fields, b.fields, "{id} fields");
    assert_eq!(d.notes, b.notes, "{id} notes");
    match (d.total, b.price) {
        (Some(x), Some(y)) => assert!(close(x, y), "{id} total {x} {y}"),
        (x, y) => assert_eq!(x, y, "{id} total"),
    }
    assert_eq!(d.lines.len(), b.line_items.len(), "{id} lines");
    for (got, want) in d.lines.iter().zip(&b.line_items) {
        assert_eq!(got.0, want.service, "{id}");
        assert!(
            close(got.1, want.rate) && close(got.2, want.quantity),
            "{id} {got:?} {want:?}"
        );
        assert!(close(got.3, want.amount), "{id} {got:?} {want:?}");
    }
    if let Some(total) = d.total {
        let sum: f64 = d.lines.iter().map(|l| l.3).sum();
        assert!(close(sum, total), "{id}: lines add up to the total");
    }
    // The check-in day is the local day of the timestamp.
    assert_eq!(b.check_in_day, local_day(b.check_in, tz));
    let md = |t: DateTime<Utc>| {
        let l = t.with_timezone(&tz);
        (l.month(), l.day())
    };
    match (b.title_dates, title_dates(&d.service)) {
        (TitleDates::Current, Some((i, o))) => {
            assert_eq!(
                (i, o),
                (md(b.check_in), md(b.check_out.unwrap())),
                "{id} {}",
                d.service
            );
        }
        (TitleDates::Stale, Some((i, _))) => {
            let y = local_day(b.check_in, tz).year();
            let near = [y - 1, y, y + 1]
                .iter()
                .filter_map(|y| NaiveDate::from_ymd_opt(*y, i.0, i.1))
                .map(|t| (t - local_day(b.check_in, tz)).num_days().abs())
                .min()
                .unwrap();
            assert!(
                near > 20,
                "{id} stale title {} only {near} days off",
                d.service
            );
        }
        (TitleDates::Undated, None) => {}
        (kind, dates) => panic!("{id}: {kind:?} title {:?} reads {dates:?}", d.service),
    }
}

#[tokio::test]
async fn detail_pages_show_the_ground_truth() {
    let sim = start(config(21)).await;
    let c = client();
    login(&c, &sim).await;
    let tz = sim.tz();
    let site = sim.config().site_name.clone();
    let window = Horizon {
        first: day(2026, 3, 2),
        last: day(2026, 3, 15),
    };
    let boardings: Vec<SimBoarding> = sim
        .live_boardings()
        .into_iter()
        .filter(|b| window.contains(b.check_in_day))
        .collect();
    assert!(boardings.len() > 40, "{}", boardings.len());
    let (
        mut multi_pet,
        mut no_h1,
        mut stale,
        mut undated,
        mut uninvoiced,
        mut messy,
        mut multi_line,
    ) = (0, 0, 0, 0, 0, 0, 0);
    for b in &boardings {
        let (status, body) = get(&c, &format!("{}{}", sim.base_url(), b.detail_path)).await;
        assert_eq!(status, StatusCode::OK, "{}", b.appointment_id);
        let d = read_detail(&body, &site);
        assert_detail(&d, b, tz);
        multi_pet += usize::from(b.pets.len() > 1);
        no_h1 += usize::from(!b.has_h1);
        stale += usize::from(b.title_dates == TitleDates::Stale);
        undated += usize::from(b.title_dates == TitleDates::Undated);
        uninvoiced += usize::from(b.price.is_none());
        messy += usize::from(body.contains("&nbsp;") || body.contains("&#3"));
        multi_line += usize::from(b.fields.values().any(|v| v.contains('\n')));
    }
    for (what, n) in [
        ("multi-pet", multi_pet),
        ("no h1", no_h1),
        ("stale title", stale),
        ("undated title", undated),
        ("uninvoiced", uninvoiced),
        ("entities and odd whitespace", messy),
        ("values with <br>", multi_line),
    ] {
        assert!(n > 0, "no {what} boarding among {}", boardings.len());
    }
    // The timestamp in a detail URL is not needed to find the appointment.
    let b = &boardings[0];
    let (status, body) = get(
        &c,
        &format!("{}/schedule/a/{}", sim.base_url(), b.appointment_id),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_detail(&read_detail(&body, &site), b, tz);
    // An unknown id or a timestamp that is not digits is a 404.
    for p in [
        "/schedule/a/nope/1",
        &format!("/schedule/a/{}/12x", b.appointment_id),
    ] {
        assert_eq!(
            get(&c, &format!("{}{p}", sim.base_url())).await.0,
            StatusCode::NOT_FOUND
        );
    }
}

fn is_day_service(s: &str) -> bool {
    let words: Vec<String> = s
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words
        .iter()
        .any(|w| w == "day" || w == "daycare" || w == "pack")
        || s.to_lowercase().starts_with("dc")
}

#[tokio::test]
async fn non_boardings_are_the_reference_kinds() {
    let sim = start(config(28)).await;
    let c = client();
    login(&c, &sim).await;
    let site = sim.config().site_name.clone();
    let non = sim.non_boardings();
    let boarding_ids: BTreeSet<String> = sim
        .boardings()
        .into_iter()
        .map(|b| b.appointment_id)
        .collect();
    assert!(non
        .iter()
        .all(|n| !boarding_ids.contains(&n.appointment_id)));
    let mut titles = String::new();
    let mut seen = BTreeSet::new();
    for n in &non {
        titles.push_str(&n.service.to_lowercase());
        titles.push('|');
        for r in &n.reasons {
            if !seen.insert(*r) {
                continue;
            }
            // The first of each kind: its page shows why.
            let (status, body) = get(&c, &format!("{}{}", sim.base_url(), n.detail_path)).await;
            assert_eq!(status, StatusCode::OK);
            let d = read_detail(&body, &site);
            assert_eq!(d.service, n.service);
            match r {
                NonBoardingReason::ServiceType => {}
                NonBoardingReason::CanceledRequest => {
                    assert!(d.status.eq_ignore_ascii_case("canceled"), "{}", d.status)
                }
                NonBoardingReason::DayServicesOnly => {
                    assert!(!d.lines.is_empty());
                    assert!(
                        d.lines.iter().all(|l| is_day_service(&l.0)),
                        "{:?}",
                        d.lines
                    );
                }
                NonBoardingReason::ShortStay => assert!(d.end - d.start < 12 * 3600),
            }
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    for t in [
        "d/c",
        "dc",
        "add",
        "switch day",
        "back to ",
        "initial eval",
        "|busy|",
    ] {
        assert!(titles.contains(t), "no {t:?} title");
    }
    assert!(non.iter().any(|n| n.recurring));
}

#[tokio::test]
async fn data_is_deterministic_and_varied() {
    let a = start(config(28)).await;
    let b = start(config(28)).await;
    let other = start(BookingSimConfig {
        seed: 7,
        ..config(28)
    })
    .await;
    assert_eq!(a.boardings(), b.boardings());
    assert_eq!(a.non_boardings(), b.non_boardings());
    assert_ne!(a.boardings(), other.boardings());
    let boardings = a.boardings();
    assert!(boardings.len() > 28 * 3);
    assert!(boardings.iter().all(|x| !x.deleted));
    let tz = a.tz();
    assert!(boardings
        .iter()
        .any(|x| { local_day(x.check_out.unwrap(), tz) > x.check_in_day + chrono::Days::new(7) }));
    assert!(boardings
        .iter()
        .any(|x| x.line_items.iter().any(|l| l.per_pet_amounts.len() > 1)));
    assert!(boardings
        .iter()
        .any(|x| x.pets.iter().any(|p| p.contains('"') || p.contains('\''))));
    assert!(boardings
        .iter()
        .any(|x| x.client.contains('&') || x.client.contains('<')));
    assert!(boardings.iter().any(|x| x.client_phone.is_none()));
    assert!(boardings.iter().any(|x| x.service.starts_with("B/O ")));
    assert!(boardings
        .iter()
        .all(|x| x.check_out.unwrap() - x.check_in >= chrono::Duration::hours(12)));
}

// --- Mutations -------------------------------------------------------------------

async fn cards_of(
    c: &reqwest::Client,
    sim: &RunningBookingSim,
    id: &str,
    week: NaiveDate,
) -> Vec<String> {
    let (_, body) = get(
        c,
        &format!("{}{}", sim.base_url(), BookingSim::week_path(week)),
    )
    .await;
    read_links(&body)
        .into_iter()
        .filter(|l| l.id == id)
        .map(|l| l.html)
        .collect()
}

fn week_of(d: NaiveDate) -> NaiveDate {
    d - chrono::Days::new(u64::from(d.weekday().num_days_from_monday()))
}

#[tokio::test]
async fn detail_only_edits_leave_the_list_unchanged() {
    let sim = start(config(21)).await;
    let c = client();
    login(&c, &sim).await;
    let tz = sim.tz();
    let site = sim.config().site_name.clone();
    let b = sim
        .live_boardings()
        .into_iter()
        .find(|b| b.check_in_day >= day(2026, 3, 9) && b.price.is_some() && b.notes.is_none())
        .unwrap();
    let id = b.appointment_id.clone();
    let week = week_of(b.check_in_day);
    let before = cards_of(&c, &sim, &id, week).await;
    assert!(!before.is_empty());

    assert!(sim.edit(
        id.as_str(),
        BookingEdit {
            price_cents: Some(Some(123_456)),
            notes: Some(Some("Edited on the detail page\nSecond line & more".into())),
            pet_fields: vec![(
                "Medications".into(),
                Some("Rimadyl 75mg\ntwice a day".into())
            )],
            ..BookingEdit::default()
        }
    ));
    assert_eq!(
        cards_of(&c, &sim, &id, week).await,
        before,
        "the list entry is unchanged"
    );
    let after = sim.boarding(id.as_str()).unwrap();
    assert_eq!(after.price, Some(1234.56));
    assert_eq!(
        after.notes.as_deref(),
        Some("Edited on the detail page\nSecond line & more")
    );
    assert_eq!(after.fields["Medications"], "Rimadyl 75mg\ntwice a day");
    assert!(!after.deleted);
    let (_, body) = get(&c, &format!("{}{}", sim.base_url(), after.detail_path)).await;
    assert_detail(&read_detail(&body, &site), &after, tz);

    // New line items, then no price block at all.
    assert!(sim.edit(
        id.as_str(),
        BookingEdit {
            line_items: Some(vec![
                PriceLineEdit {
                    service: "Boarding (Nights)".into(),
                    rate_cents: 7_250,
                    quantity: 3.0,
                },
                PriceLineEdit {
                    service: "Bath".into(),
                    rate_cents: 2_000,
                    quantity: 1.0,
                },
            ]),
            ..BookingEdit::default()
        }
    ));
    let after = sim.boarding(id.as_str()).unwrap();
    let pets = after.line_items[0].per_pet_amounts.len() as f64;
    assert_eq!(after.price, Some((217.5 + 20.0) * pets));
    let (_, body) = get(&c, &format!("{}{}", sim.base_url(), after.detail_path)).await;
    assert_detail(&read_detail(&body, &site), &after, tz);
    assert!(sim.edit(
        id.as_str(),
        BookingEdit {
            price_cents: Some(None),
            ..BookingEdit::default()
        }
    ));
    let (_, body) = get(&c, &format!("{}{}", sim.base_url(), after.detail_path)).await;
    assert!(read_detail(&body, &site).total.is_none());
    assert_eq!(cards_of(&c, &sim, &id, week).await, before);
}

#[tokio::test]
async fn cancel_delete_add_and_move_show_where_they_should() {
    let sim = start(config(21)).await;
    let c = client();
    login(&c, &sim).await;
    let tz = sim.tz();
    let site = sim.config().site_name.clone();
    let base = sim.base_url();
    let live: Vec<SimBoarding> = sim
        .live_boardings()
        .into_iter()
        .filter(|b| b.check_in_day >= day(2026, 3, 9) && b.check_in_day <= day(2026, 3, 12))
        .collect();
    let (a, d, m) = (&live[0], &live[1], &live[2]);

    // Cancel: a status change, on the list and the detail page.
    assert!(sim.cancel(a.appointment_id.as_str()));
    let week = week_of(a.check_in_day);
    let (_, body) = get(&c, &format!("{base}{}", BookingSim::week_path(week))).await;
    let link = read_links(&body)
        .into_iter()
        .find(|l| l.id == a.appointment_id)
        .unwrap();
    assert_ne!(link.status.as_deref(), Some(a.list_status.as_str()));
    let (_, body) = get(&c, &format!("{base}{}", a.detail_path)).await;
    assert!(read_detail(&body, &site)
        .status
        .eq_ignore_ascii_case("canceled"));
    let t = sim.boarding(a.appointment_id.as_str()).unwrap();
    assert!(t.deleted);

    // Delete: 404, and gone from the list.
    assert!(sim.delete(d.appointment_id.as_str()));
    assert!(!sim.delete(d.appointment_id.as_str()));
    assert_eq!(
        get(&c, &format!("{base}{}", d.detail_path)).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, body) = get(
        &c,
        &format!("{base}{}", BookingSim::week_path(week_of(d.check_in_day))),
    )
    .await;
    assert!(read_links(&body).iter().all(|l| l.id != d.appointment_id));
    assert!(sim.boarding(d.appointment_id.as_str()).unwrap().deleted);
    assert!(!sim.appointment_ids().contains(&d.appointment_id));

    // Move: the link's timestamp and the title follow.
    assert!(sim.move_booking(m.appointment_id.as_str(), 2));
    let moved = sim.boarding(m.appointment_id.as_str()).unwrap();
    assert_eq!(moved.check_in_day, m.check_in_day + chrono::Days::new(2));
    let (_, body) = get(
        &c,
        &format!(
            "{base}{}",
            BookingSim::week_path(week_of(moved.check_in_day))
        ),
    )
    .await;
    let link = read_links(&body)
        .into_iter()
        .find(|l| l.id == m.appointment_id)
        .unwrap();
    assert_eq!(link.ts, moved.check_in.timestamp());
    let (_, body) = get(&c, &format!("{base}{}", moved.detail_path)).await;
    assert_detail(&read_detail(&body, &site), &moved, tz);

    // Add: on the list and with a detail page.
    let id = sim.add_booking(NewBooking {
        check_in_day: day(2026, 3, 11),
        nights: 4,
        pets: Some(vec!["Newbie".into(), "Second".into()]),
        seed: 9,
    });
    let added = sim.boarding(id.as_str()).unwrap();
    assert_eq!(added.pets, ["Newbie", "Second"]);
    assert_eq!(added.check_in_day, day(2026, 3, 11));
    assert!(!added.deleted);
    let (_, body) = get(
        &c,
        &format!("{base}{}", BookingSim::week_path(day(2026, 3, 9))),
    )
    .await;
    assert!(read_links(&body).iter().any(|l| l.id == id));
    let (_, body) = get(&c, &format!("{base}{}", added.detail_path)).await;
    assert_detail(&read_detail(&body, &site), &added, tz);

    // Unknown ids are refused.
    assert!(!sim.cancel("no-such-id"));
    assert!(!sim.edit(0u64, BookingEdit::default()));

    // With `list_cancelled` off a cancellation leaves the list.
    let hidden = start(BookingSimConfig {
        list_cancelled: false,
        ..config(21)
    })
    .await;
    let c2 = client();
    login(&c2, &hidden).await;
    let x = hidden
        .live_boardings()
        .into_iter()
        .find(|b| b.check_in_day >= day(2026, 3, 9))
        .unwrap();
    assert!(hidden.cancel(&x.appointment_id));
    assert!(
        cards_of(&c2, &hidden, &x.appointment_id, week_of(x.check_in_day))
            .await
            .is_empty()
    );
    assert_eq!(
        get(&c2, &format!("{}{}", hidden.base_url(), x.detail_path))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn random_mutations_respect_the_horizon() {
    let cfg = config(42);
    let sim = start(cfg.clone()).await;
    let twin = start(cfg).await;
    let horizon = Horizon::around(day(2026, 3, 20), 10);
    let before: BTreeMap<String, SimBoarding> = sim
        .boardings()
        .into_iter()
        .map(|b| (b.appointment_id.clone(), b))
        .collect();
    let plan = MutationPlan {
        fraction: 0.4,
        seed: 11,
        horizon: Some(horizon),
        additions: 3,
        ..MutationPlan::default()
    };
    let done = sim.mutate(&plan);
    assert_eq!(done, twin.mutate(&plan), "seeded");
    assert!(done.len() > 10, "{}", done.len());
    let after: BTreeMap<String, SimBoarding> = sim
        .boardings()
        .into_iter()
        .map(|b| (b.appointment_id.clone(), b))
        .collect();
    let mut kinds = HashSet::new();
    for m in &done {
        let new = &after[m.id()];
        match m {
            Mutation::Added(_) => assert!(horizon.contains(new.check_in_day)),
            _ => {
                let old = &before[m.id()];
                assert!(horizon.contains(old.check_in_day), "{m:?}");
                assert_ne!(old, new, "{m:?} changed nothing");
            }
        }
        kinds.insert(std::mem::discriminant(m));
    }
    assert_eq!(kinds.len(), 8, "every kind of change");
    let changed = before.iter().filter(|(id, b)| after[*id] != **b).count();
    assert_eq!(
        changed,
        done.iter()
            .filter(|m| !matches!(m, Mutation::Added(_)))
            .count()
    );

    // Outside the horizon: nothing inside changes.
    let outside = sim.mutate(&MutationPlan {
        fraction: 0.3,
        seed: 12,
        horizon: Some(horizon),
        outside: true,
        kinds: vec![MutationKind::Notes, MutationKind::Price],
        ..MutationPlan::default()
    });
    assert!(!outside.is_empty());
    for m in &outside {
        assert!(!horizon.contains(after[m.id()].check_in_day), "{m:?}");
        assert!(!m.shows_on_list());
    }
}

// --- Faults, stats, pacing ----------------------------------------------------

#[tokio::test]
async fn faults_are_injected_and_counted() {
    let sim = start(config(14)).await;
    let c = client();
    login(&c, &sim).await;
    let site = sim.config().site_name.clone();
    let url = format!("{}/schedule/days-7/2026/3/2", sim.base_url());
    let clean = get(&c, &url).await.1;
    let clean_ids: BTreeSet<String> = read_links(&clean).into_iter().map(|l| l.id).collect();

    sim.set_faults(Faults {
        error_5xx_rate: 1.0,
        ..Faults::default()
    });
    let (status, body) = get(&c, &url).await;
    assert!(status.is_server_error());
    assert!(body.contains("<html") && body.contains("</html>"));

    sim.set_faults(Faults {
        truncated_rate: 1.0,
        ..Faults::default()
    });
    let (status, body) = get(&c, &url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.contains("</html>") && !body.is_empty());

    sim.set_faults(Faults {
        slow_rate: 1.0,
        slow_delay: Duration::from_millis(300),
        ..Faults::default()
    });
    let t = Instant::now();
    get(&c, &url).await;
    assert!(t.elapsed() >= Duration::from_millis(300));

    sim.set_faults(Faults {
        layout_noise: true,
        ..Faults::default()
    });
    let noisy = get(&c, &url).await.1;
    let noisy_ids: BTreeSet<String> = read_links(&noisy).into_iter().map(|l| l.id).collect();
    assert_eq!(noisy_ids, clean_ids, "noise changes no data");
    sim.set_faults(Faults::default());

    sim.set_page_faults(PageFaults {
        changed_layout_rate: 1.0,
        ..PageFaults::default()
    });
    let (status, body) = get(&c, &url).await;
    assert_eq!(status, StatusCode::OK);
    let doc = Html::parse_document(&body);
    assert!(read_links(&body).is_empty());
    assert!(
        doc.select(&sel(".event-pet")).next().is_some(),
        "cards without links"
    );

    sim.set_page_faults(PageFaults {
        maintenance_rate: 1.0,
        ..PageFaults::default()
    });
    let (status, body) = get(&c, &url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(read_links(&body).is_empty() && next_link(&body).is_none() && !is_login_page(&body));

    let priced = sim
        .live_boardings()
        .into_iter()
        .find(|b| !b.line_items.is_empty())
        .unwrap();
    sim.set_page_faults(PageFaults {
        price_divs_missing_rate: 1.0,
        ..PageFaults::default()
    });
    let (_, body) = get(&c, &format!("{}{}", sim.base_url(), priced.detail_path)).await;
    let d = read_detail(&body, &site);
    assert!(d.service_names > 0 && d.price_divs == 0);
    sim.set_page_faults(PageFaults::default());

    let s = sim.stats();
    assert_eq!(
        (
            s.errors_injected,
            s.truncated_injected,
            s.slow_injected,
            s.changed_layout_injected,
            s.maintenance_injected,
            s.price_divs_dropped
        ),
        (1, 1, 1, 1, 1, 1)
    );
    assert_eq!(s.faults_injected(), 6);

    // Latency: fixed, then a range, on every answer (login pages too).
    sim.set_latency(Latency::fixed(Duration::from_millis(200)));
    let t = Instant::now();
    get(&client(), &format!("{}/login", sim.base_url())).await;
    assert!(t.elapsed() >= Duration::from_millis(200));
    sim.set_latency(Latency::range(
        Duration::from_millis(100),
        Duration::from_millis(300),
    ));
    for _ in 0..3 {
        let t = Instant::now();
        get(&c, &url).await;
        let e = t.elapsed();
        assert!(
            e >= Duration::from_millis(100) && e < Duration::from_secs(2),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn requests_are_counted_by_kind_and_pacing_is_checked() {
    let sim = start(BookingSimConfig {
        rate_check: Some(RateCheck {
            min_spacing: Some(Duration::from_millis(150)),
            per_minute: Some(6),
        }),
        ..config(14)
    })
    .await;
    let c = client();
    login(&c, &sim).await; // GET + POST, back to back: one spacing breach
    let base = sim.base_url();
    tokio::time::sleep(Duration::from_millis(200)).await;
    get(&c, &format!("{base}/schedule")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b = sim.live_boardings().remove(0);
    get(&c, &format!("{base}{}", b.detail_path)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    get(&c, &format!("{base}/nowhere")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    get(&c, &format!("{base}/schedule/days-7/2026/3/9")).await;
    let s = sim.stats();
    assert_eq!(s.requests, 6);
    assert_eq!((s.login_gets, s.login_posts), (1, 1));
    assert_eq!(
        (s.schedule_requests, s.detail_requests, s.other_requests),
        (2, 1, 1)
    );
    assert_eq!(s.path("GET /schedule/a"), 1);
    assert_eq!(s.path("GET /schedule/days-7"), 1);
    assert_eq!(s.not_found, 1);
    assert_eq!(s.breaches, 1, "{s:?}");
    // The seventh request within a minute breaks the per-minute check.
    tokio::time::sleep(Duration::from_millis(200)).await;
    get(&c, &format!("{base}/login")).await;
    assert_eq!(sim.stats().breaches, 2);
    sim.reset_stats();
    assert_eq!(sim.stats(), Default::default());
}

#[tokio::test]
async fn odd_requests_never_break_the_server() {
    let sim = start(config(14)).await;
    let c = client();
    login(&c, &sim).await;
    let base = sim.base_url();
    for p in [
        "/schedule/days-7/99999999999/1/1",
        "/schedule/days-7/262143/12/31",
        "/schedule/days-7/0/1/1",
        "/schedule/days-7/2026/3/2/extra",
        "/schedule/a/%FF%FE/1",
        "/schedule/a/x/99999999999999999999999",
        "/schedule/a//1",
        "/schedule/a/%2e%2e/1",
        "/schedule/?a=%%%",
        "/schedule?start=%ZZ&end=",
        "/login?x=%00",
        "//",
        "/%",
    ] {
        let r = c.get(format!("{base}{p}")).send().await;
        if let Ok(r) = r {
            assert!(!r.status().is_server_error(), "{p}: {}", r.status());
        }
    }
    for (ctype, body) in [
        ("application/json", "{\"username\":1}".to_string()),
        (
            "application/x-www-form-urlencoded",
            "%%%&&==&_token".to_string(),
        ),
        (
            "application/x-www-form-urlencoded",
            format!("username={}", "x".repeat(100_000)),
        ),
        ("text/plain", "\u{0}\u{1}".to_string()),
    ] {
        let r = c
            .post(format!("{base}/login"))
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(!r.status().is_server_error(), "{ctype}");
    }
    let r = client()
        .get(format!("{base}/schedule"))
        .header(
            "cookie",
            format!("bk_sid={}; bk_auth=\"\"; ; =; x", "z".repeat(4000)),
        )
        .send()
        .await
        .unwrap();
    assert!(!r.status().is_server_error());
    // Still serving.
    let (status, body) = get(&c, &format!("{base}/schedule")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!read_links(&body).is_empty());
}

#[tokio::test]
async fn extreme_edits_still_render() {
    let sim = start(BookingSimConfig {
        tz: chrono_tz::Australia::Sydney,
        ..config(14)
    })
    .await;
    let ids: Vec<String> = sim
        .live_boardings()
        .into_iter()
        .map(|b| b.appointment_id)
        .collect();
    assert!(sim.edit(
        ids[0].as_str(),
        BookingEdit {
            price_cents: Some(Some(i64::MAX)),
            ..BookingEdit::default()
        }
    ));
    assert!(sim.edit(
        ids[1].as_str(),
        BookingEdit {
            line_items: Some(vec![PriceLineEdit {
                service: "x".into(),
                rate_cents: i64::MAX,
                quantity: 1e300,
            }]),
            check_in: Some(DateTime::<Utc>::MIN_UTC),
            check_out: Some(Some(DateTime::<Utc>::MAX_UTC)),
            ..BookingEdit::default()
        }
    ));
    assert!(sim.edit(
        ids[2].as_str(),
        BookingEdit {
            price_cents: Some(Some(i64::MIN)),
            pet_fields: vec![("".into(), Some("".into())), ("Medications".into(), None)],
            notes: Some(Some("\n \n".into())),
            pet: Some("   ".into()),
            ..BookingEdit::default()
        }
    ));
    assert!(sim.move_booking(ids[3].as_str(), i64::MAX));
    assert!(sim.move_booking(ids[4].as_str(), i64::MIN));
    let far = [
        sim.add_booking(NewBooking {
            check_in_day: NaiveDate::MAX,
            nights: u32::MAX,
            pets: Some(Vec::new()),
            seed: 1,
        }),
        sim.add_booking(NewBooking {
            check_in_day: NaiveDate::MIN,
            nights: 0,
            pets: None,
            seed: 2,
        }),
    ];
    let _ = (sim.boardings(), sim.non_boardings());
    let c = client();
    login(&c, &sim).await;
    let base = sim.base_url();
    for id in ids.iter().take(5).chain(&far) {
        let (status, _) = get(&c, &format!("{base}/schedule/a/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{id}");
        let (status, _) = get(&c, &format!("{base}/schedule/a/{id}/8210298412799")).await;
        assert_eq!(status, StatusCode::OK, "{id}");
    }
    for w in ["2026/3/2", "262142/12/20", "1/1/1"] {
        let (status, _) = get(&c, &format!("{base}/schedule/days-7/{w}")).await;
        assert_eq!(status, StatusCode::OK, "{w}");
    }
}
